//! docker-compose 1.29 (Debian's `docker-compose`) against `berth daemon`:
//! a two-service project whose services reach each other by name on the
//! project's network; and `docker network connect/disconnect` with aliases.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{eventually, wait_timeout, Env, Run};
use crate::daemon::{ok, Daemon};

fn compose(d: &Daemon, dir: &Path, args: &[&str]) -> Run {
    let mut child = Command::new("docker-compose")
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker-compose (scripts/setup.sh installs Debian's)");
    wait_timeout(&mut child, Duration::from_secs(60))
}

const PROJECT: &str = r#"version: "3"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www"]
  client:
    image: busybox
    depends_on: [web]
    command: ["sh", "-c", "until wget -qO- http://web/; do sleep 0.2; done; exec sleep 1000"]
"#;

#[test]
fn docker_compose_up_ps_logs_down() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let dir = env.workdir().join("shop");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), PROJECT).unwrap();
    let r = compose(&d, &dir, &["up", "-d"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Creating shop_web_1"), "{r:?}");
    let ps = compose(&d, &dir, &["ps"]);
    assert_eq!(ps.code, 0, "{ps:?}");
    for name in ["shop_web_1", "shop_client_1"] {
        let line = ps.stdout.lines().find(|l| l.starts_with(name));
        assert!(line.is_some_and(|l| l.contains(" Up")), "{ps:?}");
    }
    // The client reached the web service by its name.
    eventually(
        Duration::from_secs(20),
        "the client's fetch in its logs",
        || {
            let r = compose(&d, &dir, &["logs", "--no-color", "client"]);
            (r.code == 0 && r.stdout.contains("client_1  | hello-from-web")).then_some(())
        },
    );
    // compose's labels, as the docker CLI filters them.
    let names = ok(d.docker(&[
        "ps",
        "--filter",
        "label=com.docker.compose.project=shop",
        "--filter",
        "label=com.docker.compose.service=web",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(names, "shop_web_1\n");

    // Another network joined with an alias reaches web by that alias; once
    // disconnected, it does not.
    ok(d.docker(&["network", "create", "extra"]));
    ok(d.docker(&[
        "network",
        "connect",
        "--alias",
        "shopfront",
        "extra",
        "shop_web_1",
    ]));
    let aliases = ok(d.docker(&[
        "inspect",
        "shop_web_1",
        "--format",
        "{{json .NetworkSettings.Networks.extra.Aliases}}",
    ]));
    assert!(aliases.contains("\"shopfront\""), "{aliases}");
    let fetch = [
        "run",
        "--rm",
        "--network",
        "extra",
        "busybox",
        "wget",
        "-qO-",
        "http://shopfront/",
    ];
    assert_eq!(ok(d.docker(&fetch)), "hello-from-web\n");
    ok(d.docker(&["network", "disconnect", "extra", "shop_web_1"]));
    // Gone from the network: no peer there knows the alias any more (the
    // name is not looked up, which would ask the host's nameserver).
    let hosts = ok(d.docker(&[
        "run",
        "--rm",
        "--network",
        "extra",
        "busybox",
        "cat",
        "/etc/hosts",
    ]));
    assert!(!hosts.contains("shopfront"), "{hosts}");
    let nets = ok(d.docker(&[
        "inspect",
        "shop_web_1",
        "--format",
        "{{json .NetworkSettings.Networks}}",
    ]));
    assert!(!nets.contains("\"extra\""), "{nets}");
    ok(d.docker(&["network", "rm", "extra"]));

    let r = compose(&d, &dir, &["down", "-t", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Removing network shop_default"), "{r:?}");
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "");
    let nets = ok(d.docker(&["network", "ls", "--format", "{{.Name}}"]));
    assert!(!nets.contains("shop_default"), "{nets}");
    d.stop();
    env.assert_clean();
}
