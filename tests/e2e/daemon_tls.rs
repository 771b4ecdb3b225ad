//! tcp:// with TLS that verifies clients: the docker CLI with a certificate
//! the daemon's CA signed gets in; without one, or with one another CA
//! signed, or in plain HTTP, it does not (an attacker on the network is
//! refused at the handshake).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{wait_timeout, Env, Run};
use crate::daemon::{ok, Daemon};
use crate::distribution::free_port;

/// A CA, the daemon's certificate for 127.0.0.1 and a client's certificate
/// that the CA signed; and a rogue CA with its own client certificate.
fn make_certificates(dir: &Path) {
    let script = r#"
set -e
gen() { openssl req -newkey rsa:2048 -nodes -keyout "$1-key.pem" -subj "/CN=$2" -out "$1.csr" 2>/dev/null; }
for ca in ca rogue-ca; do
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout $ca-key.pem -subj "/CN=$ca" -out $ca.pem 2>/dev/null
done
gen server 127.0.0.1
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 -extfile server.ext -out server.pem 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
gen client client
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 -extfile client.ext -out client.pem 2>/dev/null
gen rogue rogue
openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca-key.pem -CAcreateserial -days 1 -extfile client.ext -out rogue.pem 2>/dev/null
"#;
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tcp_with_client_certificates() {
    let env = Env::new();
    let certs = env.workdir().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certificates(&certs);
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let c = |name: &str| certs.join(name).to_string_lossy().into_owned();
    let d = Daemon::start_with(
        &env,
        &[
            "-H",
            &tcp,
            "--tlsverify",
            "--tlscacert",
            &c("ca.pem"),
            "--tlscert",
            &c("server.pem"),
            "--tlskey",
            &c("server-key.pem"),
        ],
    );
    // The docker CLI as a remote user types it.
    let docker = |tls: &[&str], args: &[&str]| -> Run {
        let mut cmd = d.command(&[]);
        cmd.env_remove("DOCKER_HOST")
            .args(["-H", &tcp])
            .args(tls)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        wait_timeout(&mut child, Duration::from_secs(30))
    };
    let (ca, cert, key) = (c("ca.pem"), c("client.pem"), c("client-key.pem"));
    let good = [
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
    ];
    assert_eq!(
        ok(docker(&good, &["version", "--format", "{{.Server.Os}}"])),
        "linux\n"
    );
    assert_eq!(
        ok(docker(
            &good,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "echo",
                "over tls"
            ]
        )),
        "over tls\n"
    );
    // Attach and exec take the TLS connection over as they take a socket.
    ok(docker(
        &good,
        &[
            "run",
            "-d",
            "--name",
            "t",
            "--network",
            "none",
            "busybox",
            "sleep",
            "60",
        ],
    ));
    assert_eq!(ok(docker(&good, &["exec", "t", "hostname"])).len(), 13);
    ok(docker(&good, &["rm", "-f", "t"]));

    // No client certificate: refused at the handshake.
    let r = docker(&["--tlsverify", "--tlscacert", &ca], &["version"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("Server:"), "{r:?}");
    // A certificate another CA signed: refused.
    let (rc, rk) = (c("rogue.pem"), c("rogue-key.pem"));
    let r = docker(
        &[
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &rc,
            "--tlskey",
            &rk,
        ],
        &["ps"],
    );
    assert_ne!(r.code, 0, "{r:?}");
    // Plain HTTP and curl without a certificate get nothing.
    for args in [
        vec!["-sf".to_string(), format!("http://127.0.0.1:{port}/_ping")],
        vec![
            "-sf".to_string(),
            "--cacert".to_string(),
            ca.clone(),
            format!("https://127.0.0.1:{port}/containers/json"),
        ],
    ] {
        let out = Command::new("curl")
            .args(&args)
            .args(["--max-time", "10"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "curl {args:?} got in");
        assert!(out.stdout.is_empty(), "curl {args:?}: {:?}", out.stdout);
    }
    // curl with the client certificate gets in.
    let out = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "10",
            "--cacert",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
        ])
        .arg(format!("https://127.0.0.1:{port}/_ping"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK");
    d.stop();
    env.assert_clean();
}

#[test]
fn tcp_without_client_verification_is_refused() {
    let env = Env::new();
    let port = free_port().to_string();
    let tcp = format!("tcp://127.0.0.1:{port}");
    for args in [
        vec!["daemon", "-H", &tcp],
        vec![
            "daemon",
            "-H",
            &tcp,
            "--tls",
            "--tlscert",
            "c.pem",
            "--tlskey",
            "k.pem",
        ],
        vec![
            "daemon",
            "-H",
            &tcp,
            "--tlsverify",
            "--tlscert",
            "c.pem",
            "--tlskey",
            "k.pem",
        ],
    ] {
        let r = env.berth(&args);
        assert_ne!(r.code, 0, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("tcp:// needs TLS")
                || r.stderr.contains("only with client certificates")
                || r.stderr.contains("--tlsverify needs --tlscacert"),
            "{args:?}: {r:?}"
        );
        // Nothing listens.
        assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
    }
}
