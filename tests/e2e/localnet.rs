//! A container cannot reach the host's loopback-only services (the
//! CVE-2020-8558 class): bridges route 127.0.0.0/8 for ports published on
//! 127.0.0.1, and nothing else that arrives on a bridge for 127.0.0.0/8 is
//! delivered.

use std::net::UdpSocket;
use std::time::Duration;

use crate::common::Env;

/// What a host socket bound to `addr` receives within `wait`.
fn listen(addr: &str) -> (UdpSocket, u16) {
    let s = UdpSocket::bind(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

fn received(s: &UdpSocket) -> Option<String> {
    let mut buf = [0u8; 128];
    s.recv_from(&mut buf)
        .ok()
        .map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn a_container_cannot_send_to_the_hosts_loopback() {
    let env = Env::new();
    let bin = env.workdir().join("bin");
    std::fs::create_dir(&bin).unwrap();
    crate::exec_attack::build_static("localnet_send", &bin, "send");
    let volume = format!("{}:/x:ro", bin.display());
    // The container's gateway is the bridge's address on the host.
    let r = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip route | awk '/default/{print $3}'",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let gateway = r.stdout.trim().to_string();
    assert!(!gateway.is_empty(), "{r:?}");

    // The control: the same frame, addressed to the bridge's own address,
    // arrives (so the frame is well made and the sender works).
    let (control, port) = listen(&format!("{gateway}:0"));
    let r = env.berth(&[
        "run",
        "--rm",
        "-v",
        &volume,
        "busybox",
        "/x/send",
        &gateway,
        &gateway,
        &port.to_string(),
        "control",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(received(&control).as_deref(), Some("control"));

    // The attack: a raw frame (CAP_NET_RAW is a default capability) to the
    // gateway's MAC with destination 127.0.0.1, for a host service that
    // listens on the loopback only.
    let (secret, port) = listen("127.0.0.1:0");
    let r = env.berth(&[
        "run",
        "--rm",
        "-v",
        &volume,
        "busybox",
        "/x/send",
        &gateway,
        "127.0.0.1",
        &port.to_string(),
        "attack",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "sent\n", "{r:?}");
    assert_eq!(
        received(&secret),
        None,
        "a container reached 127.0.0.1 on the host"
    );
    env.assert_clean();
}
