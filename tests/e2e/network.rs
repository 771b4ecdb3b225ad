//! Networking: the default bridge, published ports, the four modes, user
//! networks with names, teardown after SIGKILL. Traffic only goes to this
//! env's bridge, its containers and loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{eventually, Env};

fn ok(env: &Env, args: &[&str]) -> String {
    let r = env.berth(args);
    assert_eq!(r.code, 0, "{args:?}: {r:?}");
    r.stdout
}

/// A host port unlikely to be used by another test run.
fn port(offset: u16) -> u16 {
    20000 + (std::process::id() % 20000) as u16 + offset
}

/// GET / over plain TCP; `None` if nothing answers.
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

const WEB: &str =
    "mkdir /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www";

fn gateway(env: &Env, network: &str) -> String {
    ok(
        env,
        &[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            network,
        ],
    )
    .trim()
    .to_string()
}

fn nft_ruleset() -> String {
    let o = std::process::Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn bridge_gives_an_address_a_route_and_etc_files() {
    let env = Env::new();
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "--hostname",
            "x",
            "--add-host",
            "h1:10.1.2.3",
            "--dns",
            "10.0.0.2",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ip route; cat /etc/hostname /etc/hosts /etc/resolv.conf",
        ],
    );
    let subnet = ok(
        &env,
        &[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
            "bridge",
        ],
    );
    let gw = gateway(&env, "bridge");
    let prefix = subnet
        .trim()
        .rsplit_once('.')
        .unwrap()
        .0
        .rsplit_once('.')
        .unwrap()
        .0;
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");
    assert!(out.contains(&format!("default via {gw} dev eth0")), "{out}");
    assert!(out.contains("10.1.2.3\th1\n"), "{out}");
    assert!(
        out.contains("\tx\n") && out.contains("x\n127.0.0.1\tlocalhost"),
        "{out}"
    );
    assert!(
        out.contains("nameserver 10.0.0.2\n") && !out.contains("127.0.0.53"),
        "{out}"
    );
    // The bridge (this env's) has the gateway address and answers pings.
    let out = ok(&env, &["run", "--rm", "busybox", "ping", "-c1", "-W2", &gw]);
    assert!(out.contains("1 packets received"), "{out}");
    let addr = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", &env.bridge])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&addr.stdout).contains(&format!("inet {gw}/")));
    // --network none: only lo.
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ],
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    env.assert_clean();
}

#[test]
fn published_ports_reach_the_container_without_a_proxy() {
    let env = Env::new();
    let (p1, p2) = (port(0), port(1));
    let any = format!("{p1}:80");
    let local = format!("127.0.0.1:{p2}:80");
    ok(
        &env,
        &[
            "run", "-d", "--name", "web", "-p", &any, "-p", &local, "busybox", "sh", "-c", WEB,
        ],
    );
    let gw = gateway(&env, "bridge");
    let body = eventually(Duration::from_secs(10), "httpd", || {
        http_get(&format!("127.0.0.1:{p1}"))
    });
    assert!(body.contains("hello-from-web"), "{body}");
    // A host address other than loopback, and the localhost-only mapping.
    assert!(http_get(&format!("{gw}:{p1}"))
        .unwrap()
        .contains("hello-from-web"));
    assert!(http_get(&format!("127.0.0.1:{p2}"))
        .unwrap()
        .contains("hello-from-web"));
    assert!(
        http_get(&format!("{gw}:{p2}")).is_none(),
        "127.0.0.1-only port reached on {gw}"
    );
    // No process listens for the port: the kernel's DNAT does the work.
    let ss = std::process::Command::new("ss")
        .args(["-ltnH"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&ss.stdout).contains(&format!(":{p1} ")));
    // From another container, through the host address (hairpin).
    let req = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gw} {p1}");
    let out = ok(&env, &["run", "--rm", "busybox", "sh", "-c", &req]);
    assert!(out.contains("hello-from-web"), "{out}");
    // container: mode shares web's stack.
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 80",
        ],
    );
    assert!(out.contains("hello-from-web"), "{out}");
    assert_eq!(
        ok(&env, &["port", "web"]),
        format!("80/tcp -> 0.0.0.0:{p1}\n80/tcp -> 127.0.0.1:{p2}\n")
    );
    assert!(ok(&env, &["ps"]).contains(&format!("0.0.0.0:{p1}->80/tcp")));
    // A port taken, a port out of range: refused, nothing changes.
    let r = env.berth(&["run", "--rm", "-p", &any, "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "Bind for 0.0.0.0:{p1} failed: port is already allocated"
        )),
        "{r:?}"
    );
    let r = env.berth(&["run", "--rm", "-p", "70000:80", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("ports are 1-65535"), "{r:?}");
    assert_eq!(ok(&env, &["ps", "-aq"]).lines().count(), 1);
    ok(&env, &["rm", "-f", "web"]);
    // Gone with the container.
    assert!(http_get(&format!("127.0.0.1:{p1}")).is_none());
    assert!(!nft_ruleset().contains(&format!("{p1} :")));
    env.assert_clean();
}

#[test]
fn user_networks_resolve_names_and_are_isolated() {
    let env = Env::new();
    let sub = format!(
        "10.{}.{}.0/24",
        100 + std::process::id() % 100,
        std::process::id() % 250
    );
    ok(&env, &["network", "create", "appnet", "--subnet", &sub]);
    let r = env.berth(&["network", "create", "clash", "--subnet", &sub]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("overlaps"), "{r:?}");
    ok(&env, &["network", "create", "othernet"]);
    ok(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "db",
            "--network",
            "appnet",
            "--network-alias",
            "database",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "sh",
            "-c",
            "ping -c1 -W5 db && ping -c1 -W5 database",
        ],
    );
    assert_eq!(out.matches("1 packets received").count(), 2, "{out}");
    let db_ip = ok(
        &env,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.appnet.IPAddress}}",
            "db",
        ],
    );
    let db_ip = db_ip.trim();
    assert!(out.contains(&format!("PING db ({db_ip})")), "{out}");
    // Another network cannot reach it.
    let r = env.berth(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        db_ip,
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    // Connected to othernet too, it gets an eth1 there.
    ok(&env, &["network", "connect", "othernet", "db"]);
    let out = ok(&env, &["exec", "db", "ip", "-4", "-o", "addr"]);
    assert!(out.contains("eth1"), "{out}");
    ok(&env, &["network", "disconnect", "othernet", "db"]);
    assert!(!ok(&env, &["exec", "db", "ip", "-o", "link"]).contains("eth1"));
    let r = env.berth(&["network", "rm", "appnet"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("has active endpoints"), "{r:?}");
    let r = env.berth(&["run", "--rm", "--network", "nope", "busybox", "true"]);
    assert_eq!(
        (r.code, r.stderr.trim()),
        (125, "berth: network nope not found")
    );
    let r = env.berth(&["network", "rm", "bridge"]);
    assert!(r.stderr.contains("pre-defined network"), "{r:?}");
    ok(&env, &["rm", "-f", "db"]);
    let bridges: Vec<String> = ["appnet", "othernet"]
        .iter()
        .map(|n| {
            ok(
                &env,
                &[
                    "network",
                    "inspect",
                    "-f",
                    "{{index .Options \"com.docker.network.bridge.name\"}}",
                    n,
                ],
            )
            .trim()
            .to_string()
        })
        .collect();
    assert_eq!(
        ok(&env, &["network", "rm", "appnet", "othernet"]),
        "appnet\nothernet\n"
    );
    for b in bridges {
        assert!(
            !std::path::Path::new(&format!("/sys/class/net/{b}")).exists(),
            "{b} left"
        );
        assert!(!nft_ruleset().contains(&b), "rules for {b} left");
    }
    assert!(!nft_ruleset().contains(&sub));
    env.assert_clean();
}

#[test]
fn concurrent_runs_get_unique_addresses() {
    let env = Env::new();
    let children: Vec<_> = (0..20)
        .map(|_| env.spawn(&["run", "-d", "busybox", "sleep", "60"]))
        .collect();
    let mut ids = Vec::new();
    for mut c in children {
        let r = crate::common::wait_timeout(&mut c, Duration::from_secs(60));
        assert_eq!(r.code, 0, "{r:?}");
        ids.push(r.stdout.trim().to_string());
    }
    let mut ips: Vec<String> = ids
        .iter()
        .map(|id| env.inspect(id, "{{.NetworkSettings.IPAddress}}"))
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    assert_eq!(env.bridge_members().len(), 20);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    ok(&env, &args);
    // The leases came back: the next container gets the first address again.
    let first = ok(
        &env,
        &[
            "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
        ],
    );
    assert!(first.contains(".0.2/"), "{first}");
    env.assert_clean();
}

#[test]
fn a_killed_container_and_monitor_are_cleaned_up() {
    let env = Env::new();
    let p = port(2);
    let spec = format!("{p}:80");
    let id = ok(&env, &["run", "-d", "-p", &spec, "busybox", "sleep", "60"]);
    let id = id.trim();
    // The container killed from the host: its monitor tears down.
    let pid: i32 = env.inspect(id, "{{.State.Pid}}").parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(Duration::from_secs(10), "exit recorded", || {
        (env.inspect(id, "{{.State.Status}}") == "exited").then_some(())
    });
    env.wait_no_bridge_members();
    assert!(!nft_ruleset().contains(&format!("{p} :")));
    assert_eq!(env.inspect(id, "{{.NetworkSettings.IPAddress}}"), "");
    // Monitor and container both killed: the next command cleans up.
    ok(&env, &["start", id]);
    assert_eq!(env.bridge_members().len(), 1);
    let rec = std::fs::read_to_string(env.root.join("containers").join(id).join("container.json"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&rec).unwrap();
    for key in ["monitor_pid", "pid"] {
        let pid = v["state"][key].as_i64().unwrap() as i32;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    eventually(Duration::from_secs(10), "orphan reaped", || {
        ok(&env, &["ps"]);
        (env.inspect(id, "{{.State.Status}}") == "exited").then_some(())
    });
    env.wait_no_bridge_members();
    assert!(!nft_ruleset().contains(&format!("{p} :")));
    ok(&env, &["rm", id]);
    env.assert_clean();
}

fn subnet(env: &Env) -> String {
    ok(
        env,
        &[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
            "bridge",
        ],
    )
    .trim()
    .to_string()
}

#[test]
fn a_second_root_adopts_an_existing_bridge_and_its_subnet() {
    let a = Env::new();
    ok(&a, &["run", "--rm", "busybox", "true"]);
    let (a_subnet, a_gw) = (subnet(&a), gateway(&a, "bridge"));
    // Another state root with the same bridge name: it must take the
    // bridge's subnet, not the next free one, or its containers would route
    // through a gateway nobody answers for.
    let b = Env::sharing_bridge(&a);
    let out = ok(&b, &["run", "--rm", "busybox", "ping", "-c1", "-W2", &a_gw]);
    assert!(out.contains("1 packets received"), "{out}");
    assert_eq!(subnet(&b), a_subnet);
    assert_eq!(gateway(&b, "bridge"), a_gw);
    b.assert_clean();
    a.assert_clean();
}

/// Published ports are host-wide: a port another state root published is
/// refused by the kernel (the nft element exists), with docker's message.
#[test]
fn a_port_another_root_published_is_refused() {
    let a = Env::new();
    let p = port(3);
    let publish = format!("{p}:80");
    ok(
        &a,
        &[
            "run", "-d", "--name", "web", "-p", &publish, "busybox", "sleep", "60",
        ],
    );
    let b = Env::sharing_bridge(&a);
    let r = b.berth(&["run", "--rm", "-p", &publish, "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "Bind for 0.0.0.0:{p} failed: port is already allocated"
        )),
        "{r:?}"
    );
    assert_eq!(ok(&b, &["ps", "-aq"]), "");
    // a's mapping survives b's refused start (whose batch added nothing).
    let ip = a.inspect("web", "{{.NetworkSettings.IPAddress}}");
    let map = std::process::Command::new("nft")
        .args(["list", "map", "ip", "berth", "any_tcp"])
        .output()
        .unwrap();
    let map = String::from_utf8_lossy(&map.stdout);
    assert!(map.contains(&format!("{p} : {ip} . 80")), "{map}");
    ok(&a, &["rm", "-f", "web"]);
    b.assert_clean();
    a.assert_clean();
}

#[test]
fn a_bridge_with_another_subnet_is_refused() {
    let a = Env::new();
    let c = Env::new();
    ok(&a, &["run", "--rm", "busybox", "true"]);
    ok(&c, &["run", "--rm", "busybox", "true"]);
    let (a_subnet, c_subnet) = (subnet(&a), subnet(&c));
    assert_ne!(a_subnet, c_subnet);
    // A's record now names C's subnet, as when A's bridge was deleted and
    // made anew by another root. The record is changed, not the bridge: a
    // subnet freed on the host could be taken by a test running meanwhile.
    let record = std::fs::read_dir(a.root.join("networks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let original = std::fs::read_to_string(&record).unwrap();
    let (a_gw, c_gw) = (gateway(&a, "bridge"), gateway(&c, "bridge"));
    let swapped = original
        .replace(&format!("\"{a_subnet}\""), &format!("\"{c_subnet}\""))
        .replace(&format!("\"{a_gw}\""), &format!("\"{c_gw}\""));
    assert_ne!(swapped, original);
    std::fs::write(&record, swapped).unwrap();
    let r = a.berth(&["run", "--rm", "busybox", "true"]);
    assert_ne!(r.code, 0, "{r:?}");
    for part in [a.bridge.as_str(), &a_subnet, &c_subnet, "--bridge"] {
        assert!(r.stderr.contains(part), "{part} not in {r:?}");
    }
    // A's own record again, for its cleanup (its subnet's NAT entries).
    std::fs::write(&record, original).unwrap();
    // Nothing was attached to the bridge, and nothing is left.
    a.assert_clean();
    c.assert_clean();
}
