//! docker parity, the remaining parts: legacy links, stop timeouts, log
//! drivers, prune filters, `system prune`, `system df -v`, network IPAM
//! options, `search`, build's flags for RUN steps, and flag forms docker
//! users type. Each checks the effect in the container or on the host.

use std::time::{Duration, Instant};

use crate::common::{cgroup_v2, Env, BERTH};

fn ok(r: &crate::common::Run) -> String {
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.clone()
}

fn refused(r: &crate::common::Run, says: &str) {
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(says), "expected {says:?}: {r:?}");
}

#[test]
fn links_give_the_linked_containers_address_and_variables() {
    let env = Env::new();
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "db",
        "-e",
        "SECRET=s3",
        "--expose",
        "5432",
        "busybox",
        "sleep",
        "300",
    ]));
    let ip = env.inspect("db", "{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty());
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--name",
        "web",
        "--link",
        "db:mydb",
        "busybox",
        "sh",
        "-c",
        "env; cat /etc/hosts; ping -c1 -W2 mydb >/dev/null && echo reached",
    ]));
    for want in [
        format!("MYDB_PORT_5432_TCP_ADDR={ip}"),
        format!("MYDB_PORT=tcp://{ip}:5432"),
        "MYDB_PORT_5432_TCP_PORT=5432".to_string(),
        "MYDB_PORT_5432_TCP_PROTO=tcp".to_string(),
        "MYDB_NAME=/web/mydb".to_string(),
        "MYDB_ENV_SECRET=s3".to_string(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want} missing: {out}");
    }
    let id12 = env.inspect("db", "{{.Id}}")[..12].to_string();
    assert!(
        out.contains(&format!("{ip}\tmydb {id12} db")),
        "hosts entry: {out}"
    );
    assert!(out.contains("reached"), "{out}");
    // inspect shows the link as docker does; a stopped target is refused at
    // start, and `rm --link` takes the link away.
    ok(&env.berth(&[
        "create", "--name", "web2", "--link", "db", "busybox", "true",
    ]));
    assert_eq!(
        env.inspect("web2", "{{json .HostConfig.Links}}"),
        r#"["/db:/web2/db"]"#
    );
    ok(&env.berth(&["stop", "-t", "0", "db"]));
    refused(
        &env.berth(&["start", "web2"]),
        "Cannot link to a non running container: /db AS /web2/db",
    );
    ok(&env.berth(&["rm", "--link", "/web2/db"]));
    assert_eq!(env.inspect("web2", "{{json .HostConfig.Links}}"), "null");
    ok(&env.berth(&["start", "web2"]));
    refused(
        &env.berth(&["run", "--rm", "--link", "nosuch", "busybox", "true"]),
        "could not get container for nosuch",
    );
    refused(
        &env.berth(&[
            "run",
            "--rm",
            "--network",
            "host",
            "--link",
            "db",
            "busybox",
            "true",
        ]),
        "host type networking can't be used with links",
    );
    ok(&env.berth(&["rm", "-f", "db", "web2"]));
    env.assert_clean();
}

#[test]
fn stop_timeout_bounds_the_wait_for_a_container_that_ignores_sigterm() {
    let env = Env::new();
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--stop-timeout",
        "1",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]));
    assert_eq!(env.inspect("stubborn", "{{.Config.StopTimeout}}"), "1");
    let start = Instant::now();
    ok(&env.berth(&["stop", "stubborn"]));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "stop took {took:?} (the default would be 10s)"
    );
    assert_eq!(env.inspect("stubborn", "{{.State.ExitCode}}"), "137");
    // docker's deprecated `--time` spelling is the same flag.
    ok(&env.berth(&["start", "stubborn"]));
    let start = Instant::now();
    ok(&env.berth(&["stop", "--time", "0", "stubborn"]));
    assert!(start.elapsed() < Duration::from_secs(3));
    ok(&env.berth(&["rm", "stubborn"]));
    env.assert_clean();
}

#[test]
fn log_drivers_none_and_local() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hi",
    ]);
    // The attached run still shows the output; nothing is kept.
    assert_eq!(ok(&r), "hi\n");
    refused(
        &env.berth(&["logs", "quiet"]),
        "configured logging driver does not support reading",
    );
    assert_eq!(
        env.inspect("quiet", "{{.HostConfig.LogConfig.Type}}|{{.LogPath}}"),
        "none|"
    );
    let id = env.inspect("quiet", "{{.Id}}");
    let dir = env.root.join("containers").join(&id);
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("log") && n != "monitor.log")
        .collect();
    assert!(
        logs.is_empty(),
        "log files with --log-driver none: {logs:?}"
    );

    // local: readable, kept under local-logs/, rotated by its options.
    ok(&env.berth(&[
        "run",
        "--name",
        "kept",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
    ]));
    let out = ok(&env.berth(&["logs", "--tail", "1", "kept"]));
    assert_eq!(out, "line-199\n");
    let path = env.inspect("kept", "{{.LogPath}}");
    assert!(path.ends_with("/local-logs/container.log"), "{path}");
    let files: Vec<_> = std::fs::read_dir(std::path::Path::new(&path).parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert!(files.len() == 2, "max-file=2 keeps two files: {files:?}");
    assert!(files.iter().all(|n| *n <= 2048), "max-size=2k: {files:?}");
    assert_eq!(
        env.inspect("kept", "{{.HostConfig.LogConfig.Type}}"),
        "local"
    );
    refused(
        &env.berth(&["run", "--rm", "--log-driver", "syslog", "busybox", "true"]),
        "no log driver named 'syslog'",
    );
    refused(
        &env.berth(&[
            "run",
            "--rm",
            "--log-driver",
            "none",
            "--log-opt",
            "max-size=1k",
            "busybox",
            "true",
        ]),
        "unknown log opt 'max-size' for none log driver",
    );
    ok(&env.berth(&["rm", "quiet", "kept"]));
    env.assert_clean();
}

#[test]
fn prune_filters_and_system_prune() {
    let env = Env::new();
    for (name, label) in [("old", "keep=no"), ("kept", "keep=yes")] {
        ok(&env.berth(&["create", "--name", name, "-l", label, "busybox", "true"]));
    }
    ok(&env.berth(&["network", "create", "--label", "keep=yes", "netkeep"]));
    ok(&env.berth(&["network", "create", "netgo"]));
    // `until` keeps what is newer than the time given.
    let out = ok(&env.berth(&["container", "prune", "-f", "--filter", "until=1h"]));
    assert!(!out.contains(&env.inspect("old", "{{.Id}}")), "{out}");
    let names = |env: &Env| ok(&env.berth(&["ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(names(&env).lines().count(), 2);
    ok(&env.berth(&["container", "prune", "-f", "--filter", "label!=keep=yes"]));
    assert_eq!(names(&env).trim(), "kept");
    ok(&env.berth(&["network", "prune", "-f", "--filter", "label=keep"]));
    let nets = ok(&env.berth(&["network", "ls", "--format", "{{.Name}}"]));
    assert!(
        !nets.contains("netkeep") && nets.contains("netgo"),
        "{nets}"
    );
    refused(
        &env.berth(&["image", "prune", "-f", "--filter", "colour=red"]),
        "invalid filter 'colour'",
    );
    // A dangling image, an anonymous volume, a stopped container: system
    // prune asks first, then removes them all but what the filter keeps.
    ok(&env.berth(&["run", "--name", "c1", "busybox", "sh", "-c", "echo x > /f"]));
    // Committed without a name: a dangling image.
    ok(&env.berth(&["commit", "c1"]));
    ok(&env.berth(&["run", "--name", "c2", "-v", "/data", "busybox", "true"]));
    ok(&env.berth(&["rm", "c2"]));
    let mut child = env.command(&["system", "prune", "--volumes"]);
    let answer = child
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut answer = answer;
    {
        use std::io::Write;
        answer.stdin.take().unwrap().write_all(b"n\n").unwrap();
    }
    let said = answer.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&said.stdout).into_owned();
    assert!(said.contains("WARNING! This will remove:"), "{said}");
    assert!(said.contains("all anonymous volumes not used"), "{said}");
    assert_eq!(names(&env).lines().count(), 2, "a 'no' removed nothing");
    let out = ok(&env.berth(&[
        "system",
        "prune",
        "-f",
        "--volumes",
        "--filter",
        "label!=keep=yes",
    ]));
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains("Deleted Volumes:"), "{out}");
    assert!(out.contains("Deleted Networks:\nnetgo"), "{out}");
    assert!(out.contains("Deleted Images:"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(names(&env).trim(), "kept");
    assert_eq!(ok(&env.berth(&["volume", "ls", "-q"])), "");
    let images = ok(&env.berth(&["images", "-q"]));
    assert_eq!(
        images.lines().count(),
        1,
        "busybox stays (in use): {images}"
    );
    ok(&env.berth(&["rm", "kept"]));
    env.assert_clean();
}

#[test]
fn system_df_verbose_lists_each_image_container_and_volume() {
    let env = Env::new();
    ok(&env.berth(&[
        "run",
        "--name",
        "writer",
        "-v",
        "vol1:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /big; echo x > /data/f",
    ]));
    let out = ok(&env.berth(&["system", "df", "-v"]));
    let sections = [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ];
    let mut at = 0;
    for s in sections {
        let i = out[at..]
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing: {out}"))
            + at;
        at = i;
    }
    assert!(
        out.contains("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{out}"
    );
    assert!(
        out.contains("SHARED SIZE   UNIQUE SIZE   CONTAINERS"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.ends_with(" writer"))
        .unwrap_or_else(|| panic!("no row for the container: {out}"));
    assert!(row.contains("\"sh -c head -c 30000…\""), "{row}");
    assert!(row.contains("kB"), "its writable layer: {row}");
    let vol = out.lines().find(|l| l.starts_with("vol1 ")).unwrap();
    assert_eq!(
        vol.split_whitespace().collect::<Vec<_>>(),
        ["vol1", "1", "2B"]
    );
    let json = ok(&env.berth(&["system", "df", "--format", "json"]));
    assert_eq!(json.lines().count(), 4, "{json}");
    assert!(json.contains(r#""Type":"Local Volumes""#), "{json}");
    ok(&env.berth(&["rm", "writer"]));
    ok(&env.berth(&["volume", "rm", "vol1"]));
    env.assert_clean();
}

#[test]
fn network_create_ipam_options_reach_the_kernel() {
    let env = Env::new();
    let bridge = format!("{}n", env.bridge);
    ok(&env.berth(&[
        "network",
        "create",
        "--subnet",
        "10.231.9.0/24",
        "--gateway",
        "10.231.9.254",
        "--ip-range",
        "10.231.9.64/26",
        "--aux-address",
        "router=10.231.9.64",
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        "--label",
        "tier=back",
        "--internal",
        "inner",
    ]));
    // The bridge has the name asked for, and the gateway's address.
    let link = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &bridge])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout).into_owned();
    assert!(link.contains("10.231.9.254/24"), "{link}");
    let ipam = ok(&env.berth(&[
        "network",
        "inspect",
        "--format",
        "{{json .IPAM.Config}} {{.Internal}} {{index .Options \"com.docker.network.bridge.name\"}} {{.Labels.tier}}",
        "inner",
    ]));
    assert_eq!(
        ipam.trim(),
        format!(
            r#"[{{"AuxiliaryAddresses":{{"router":"10.231.9.64"}},"Gateway":"10.231.9.254","IPRange":"10.231.9.64/26","Subnet":"10.231.9.0/24"}}] true {bridge} back"#
        )
    );
    // Addresses come from the range, past the reserved one; an internal
    // network has no way out: no default route, so a host address outside
    // its subnet is unreachable (the default bridge's gateway here), while
    // the same container on the default network reaches it.
    let outside = env.inspect_network_gateway();
    let probe = format!("ip -4 addr show eth0; ip route; ping -c1 -W2 {outside} >/dev/null 2>&1 && echo reached || echo unreachable");
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "busybox",
        "sh",
        "-c",
        &probe,
    ]));
    assert!(out.contains("inet 10.231.9.65/24"), "{out}");
    assert!(!out.contains("default"), "{out}");
    assert!(out.contains("unreachable"), "{out}");
    let out = ok(&env.berth(&["run", "--rm", "busybox", "sh", "-c", &probe]));
    assert!(
        out.contains("default via") && out.contains("reached"),
        "{out}"
    );
    assert!(!out.contains("unreachable"), "{out}");
    refused(
        &env.berth(&[
            "run",
            "--rm",
            "--network",
            "inner",
            "--ip",
            "10.231.9.64",
            "busybox",
            "true",
        ]),
        "Address already in use",
    );
    for (args, says) in [
        (&["--ip-range", "10.231.10.0/26"][..], "needs a --subnet"),
        (
            &["--subnet", "10.231.11.0/24", "--ip-range", "10.231.12.0/26"],
            "no matching subnet for range",
        ),
        (
            &["-o", "com.docker.network.bridge.name=much-too-long-name"],
            "invalid bridge name",
        ),
        (
            &["-o", "com.docker.network.driver.mtu=1400"],
            "not supported",
        ),
        (&["--ipv6"], "--ipv6 is not supported"),
    ] {
        let mut line = vec!["network", "create"];
        line.extend(args);
        line.push("bad");
        refused(&env.berth(&line), says);
    }
    ok(&env.berth(&["network", "rm", "inner"]));
    let gone = std::process::Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "bridge {bridge} left behind");
    env.assert_clean();
}

impl Env {
    /// The default network's gateway: a host address.
    fn inspect_network_gateway(&self) -> String {
        // The default network exists once something listed it.
        ok(&self.berth(&["network", "ls"]));
        ok(&self.berth(&[
            "network",
            "inspect",
            "--format",
            "{{(index .IPAM.Config 0).Gateway}}",
            "bridge",
        ]))
        .trim()
        .to_string()
    }
}

#[test]
fn search_lists_a_registry_catalog() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let port = crate::distribution::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = std::process::Command::new(BERTH)
        .args(["registry", "serve", "--addr", &addr, "--root"])
        .arg(dir.path().join("root"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::distribution::wait_listening(&addr, &mut server);
    for repo in ["team/busybox", "team/other", "busyboxes"] {
        let name = format!("{addr}/{repo}:1");
        ok(&env.berth(&["tag", "busybox", &name]));
        ok(&env.berth(&["push", "-q", &name]));
    }
    let out = ok(&env.berth(&["search", &format!("{addr}/busybox")]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"],
        "{out}"
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [format!("{addr}/busyboxes"), format!("{addr}/team/busybox")],
        "{out}"
    );
    let one = ok(&env.berth(&[
        "search",
        "--limit",
        "1",
        "--format",
        "{{.Name}}",
        &format!("{addr}/team"),
    ]));
    assert_eq!(one.lines().count(), 1, "{one}");
    let none = ok(&env.berth(&[
        "search",
        "--filter",
        "is-official=true",
        &format!("{addr}/busybox"),
    ]));
    assert_eq!(none.lines().count(), 1, "only the header: {none}");
    // Docker Hub lists no catalog: a clear error, no traffic.
    refused(
        &env.berth(&["search", "busybox"]),
        "has no catalog to search",
    );
    let _ = server.kill();
    let _ = server.wait();
    // A server that is not a registry (no catalog) gives the same words.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = listener.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for _ in 0..4 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    refused(
        &env.berth(&["search", &format!("{other}/x")]),
        "has no catalog to search",
    );
    drop(t);
    env.assert_clean();
}

#[test]
fn build_gives_run_steps_the_resource_flags() {
    let env = Env::new();
    let dir = env.workdir();
    let memory_file = if cgroup_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let shares_file = if cgroup_v2() {
        "/sys/fs/cgroup/cpu.weight"
    } else {
        "/sys/fs/cgroup/cpu/cpu.shares"
    };
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM busybox\n\
             RUN cat {memory_file} > /mem; cat {shares_file} > /shares; \
             grep buildhost /etc/hosts > /hosts; ulimit -n > /nofile; \
             df -k /dev/shm | tail -1 > /shm\n\
             RUN true\n"
        ),
    )
    .unwrap();
    let r = env.berth_in(
        &dir,
        &[
            "build",
            "-q",
            "--memory",
            "64m",
            "--cpu-shares",
            "512",
            "--add-host",
            "buildhost:10.1.2.3",
            "--ulimit",
            "nofile=321:321",
            "--shm-size",
            "16m",
            "--iidfile",
            "iid",
            "-t",
            "limited",
            ".",
        ],
    );
    let id = ok(&r);
    let iid = std::fs::read_to_string(dir.join("iid")).unwrap();
    assert_eq!(iid.trim(), id.trim());
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "limited",
        "sh",
        "-c",
        "cat /mem /shares /hosts /nofile /shm",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "67108864", "{out}");
    // cgroup v2 maps shares 512 to weight 20 (as runc does).
    let shares = if cgroup_v2() { "20" } else { "512" };
    assert_eq!(lines[1], shares, "{out}");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["10.1.2.3", "buildhost"]
    );
    assert_eq!(lines[3], "321", "{out}");
    assert!(lines[4].contains("16384"), "{out}");
    refused(
        &env.berth_in(&dir, &["build", "--squash", "."]),
        "--squash is not supported",
    );
    // The first RUN step's image is build cache: --keep-storage keeps it
    // while it fits, a prune to nothing removes it.
    let kept = ok(&env.berth(&["builder", "prune", "-f", "--keep-storage", "1g"]));
    assert!(kept.ends_with("Total reclaimed space: 0B\n"), "{kept}");
    let gone = ok(&env.berth(&["builder", "prune", "-f", "--keep-storage", "0"]));
    assert!(gone.contains("Deleted build cache objects"), "{gone}");
    env.assert_clean();
}

#[test]
fn flag_forms_docker_users_type() {
    let env = Env::new();
    refused(
        &env.berth(&[
            "pull",
            "--disable-content-trust=false",
            "127.0.0.1:1/busybox",
        ]),
        "content trust is not supported",
    );
    ok(&env.berth(&[
        "import",
        "--platform",
        "linux",
        crate::common::busybox_tar().to_str().unwrap(),
        "bb2",
    ]));
    refused(
        &env.berth(&[
            "import",
            "--platform",
            "windows/amd64",
            crate::common::busybox_tar().to_str().unwrap(),
            "bb3",
        ]),
        "not supported",
    );
    let with = ok(&env.berth(&["completion", "fish"]));
    let without = ok(&env.berth(&["completion", "fish", "--no-descriptions"]));
    assert!(
        with.contains("Stop one or more running containers"),
        "descriptions by default"
    );
    assert!(!without.contains("Stop one or more running containers"));
    assert!(without.contains("run"), "{without}");
    ok(&env.berth(&["version", "--kubeconfig", "/nonexistent"]));
    ok(&env.berth(&["tag", "busybox", "spare:1"]));
    assert_eq!(
        ok(&env.berth(&["rmi", "--no-prune", "spare:1"])),
        "Untagged: spare:1\n"
    );
    let r = env.berth(&[
        "network",
        "inspect",
        "--verbose",
        "--format",
        "{{.Name}}",
        "bridge",
    ]);
    assert_eq!(ok(&r).trim(), "bridge");
    env.assert_clean();
}

#[test]
fn list_fields_templates_and_units_as_docker_prints_them() {
    let env = Env::new();
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "tier=front",
        "--expose",
        "80",
        "-p",
        "127.0.0.1::81",
        "-v",
        "webvol:/data",
        "busybox",
        "sleep",
        "120",
    ]));
    let out = ok(&env.berth(&[
        "ps",
        "--format",
        "{{.Ports}}|{{.Networks}}|{{.Label \"tier\"}}|{{.Labels}}|{{.LocalVolumes}}|{{.Mounts}}",
    ]));
    let f: Vec<&str> = out.trim().split('|').collect();
    assert!(
        f[0].starts_with("127.0.0.1:") && f[0].ends_with("->81/tcp, 80/tcp"),
        "published, then exposed-only: {out}"
    );
    assert_eq!(
        &f[1..],
        ["bridge", "front", "tier=front", "1", "webvol"],
        "{out}"
    );
    let size = ok(&env.berth(&["ps", "--size", "--format", "{{.Size}}"]));
    assert!(
        size.trim().starts_with("0B (virtual ") && size.trim().ends_with("MB)"),
        "{size}"
    );
    // stats: docker's binary units.
    let mem = ok(&env.berth(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "web"]));
    let (used, limit) = mem.trim().split_once(" / ").unwrap();
    assert!(used.ends_with("iB") && limit.ends_with("GiB"), "{mem}");
    // top: columns 20 wide, as docker's.
    let top = ok(&env.berth(&["top", "web"]));
    assert_eq!(top.lines().next().unwrap().find("PID"), Some(20), "{top}");
    // The host and none networks have IDs of their own, kept.
    let ids = |env: &Env| {
        ok(&env.berth(&[
            "network",
            "ls",
            "--no-trunc",
            "--format",
            "{{.Name}} {{.ID}}",
        ]))
    };
    let first = ids(&env);
    for name in ["host", "none"] {
        let id = first
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {first}"));
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        assert_ne!(id, name.repeat(16));
        let inspected = ok(&env.berth(&["network", "inspect", "--format", "{{.Id}}", name]));
        assert_eq!(inspected.trim(), id, "network inspect {name}");
    }
    assert_eq!(ids(&env), first, "IDs are kept");
    // --format json: one object per row in lists, the array for inspect.
    for line in [
        &["ps", "--format", "json"][..],
        &["images", "--format", "json"],
        &["network", "ls", "--format", "json"],
        &["volume", "ls", "--format", "json"],
        &["stats", "--no-stream", "--format", "json"],
        &["history", "--format", "json", "busybox"],
        &["system", "df", "--format", "json"],
    ] {
        let out = ok(&env.berth(line));
        for l in out.lines() {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{line:?}: {e}: {l}"));
            assert!(v.is_object(), "{line:?}: {l}");
        }
    }
    let out = ok(&env.berth(&["inspect", "--format", "json", "web"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v[0]["Name"], "/web");
    // Template errors in docker's words.
    refused(
        &env.berth(&["inspect", "--format", "{{.Missing}}", "web"]),
        "template: :1:2: executing \"\" at <.Missing>: map has no entry for key \"Missing\"",
    );
    refused(
        &env.berth(&["ps", "--format", "{{.ID"]),
        "template parsing error: template: :1: unclosed action",
    );
    refused(
        &env.berth(&["images", "--format", "{{nofunc .ID}}"]),
        "function \"nofunc\" not defined",
    );
    ok(&env.berth(&["rm", "-f", "web"]));
    ok(&env.berth(&["volume", "rm", "webvol"]));
    env.assert_clean();
}

#[test]
fn man_pages_for_every_command() {
    let env = Env::empty();
    let dir = env.workdir();
    let r = env.berth_in(&dir, &["man-pages", "man"]);
    ok(&r);
    let page = |name: &str| {
        std::fs::read_to_string(dir.join("man").join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}"))
    };
    let run = page("berth-run");
    assert!(run.contains(".TH BERTH-RUN 1"), "{run}");
    assert!(
        run.contains("Create and run a new container from an image"),
        "{run}"
    );
    assert!(
        run.contains("\\-\\-stop\\-timeout"),
        "the options are listed"
    );
    for name in [
        "berth",
        "berth-container-run",
        "berth-network-create",
        "berth-system-df",
        "berth-search",
    ] {
        assert!(page(name).contains(".TH"), "{name}");
    }
    // Each command's help opens with its own description.
    for (cmd, about) in [
        ("run", "Create and run a new container from an image"),
        ("update", "Update configuration of one or more containers"),
        ("build", "Build an image from a Dockerfile"),
    ] {
        let help = ok(&env.berth(&[cmd, "--help"]));
        assert_eq!(help.lines().next(), Some(about), "{help}");
    }
}

#[test]
fn network_connect_takes_an_address_and_links() {
    let env = Env::new();
    ok(&env.berth(&["network", "create", "--subnet", "10.231.13.0/24", "side"]));
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "side",
        "busybox",
        "sleep",
        "120",
    ]));
    let db_ip = env.inspect("db", "{{.NetworkSettings.Networks.side.IPAddress}}");
    ok(&env.berth(&["run", "-d", "--name", "app", "busybox", "sleep", "120"]));
    ok(&env.berth(&[
        "network",
        "connect",
        "--ip",
        "10.231.13.77",
        "--link",
        "db:store",
        "side",
        "app",
    ]));
    let out = ok(&env.berth(&["exec", "app", "sh", "-c", "ip -4 addr; cat /etc/hosts"]));
    assert!(out.contains("inet 10.231.13.77/24"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{db_ip}\tstore "))),
        "the link's name: {out}"
    );
    assert_eq!(
        env.inspect("app", "{{.NetworkSettings.Networks.side.IPAddress}}"),
        "10.231.13.77"
    );
    // The address is kept: a restart gets it again.
    ok(&env.berth(&["restart", "-t", "0", "app"]));
    assert_eq!(
        env.inspect("app", "{{.NetworkSettings.Networks.side.IPAddress}}"),
        "10.231.13.77"
    );
    ok(&env.berth(&["run", "-d", "--name", "other", "busybox", "sleep", "120"]));
    refused(
        &env.berth(&[
            "network",
            "connect",
            "--ip",
            "10.231.13.77",
            "side",
            "other",
        ]),
        "Address already in use",
    );
    refused(
        &env.berth(&["network", "connect", "--ip", "10.231.14.5", "side", "other"]),
        "no configured subnet",
    );
    refused(
        &env.berth(&["network", "connect", "--ip6", "fd00::5", "side", "other"]),
        "--ip6 is not supported",
    );
    ok(&env.berth(&["rm", "-f", "db", "app", "other"]));
    ok(&env.berth(&["network", "rm", "side"]));
    env.assert_clean();
}
