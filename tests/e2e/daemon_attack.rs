//! `berth daemon` against hostile clients: a host user outside the socket's
//! group, a request body far larger than any the API takes, and archives
//! for `docker cp` whose paths climb out (`../`, absolute names, a symlink
//! to `/` then a file through it).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::Env;
use crate::daemon::{ok, Daemon};

/// curl on the daemon's socket as `uid` with `groups` (setpriv).
fn curl_as(uid: u32, groups: &str, socket: &str, url: &str) -> std::process::Output {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(match groups {
            "" => vec!["--clear-groups".to_string()],
            g => vec![format!("--groups={g}")],
        })
        .args([
            "--",
            "curl",
            "-s",
            "--max-time",
            "10",
            "--unix-socket",
            socket,
        ])
        .arg(url)
        .output()
        .expect("setpriv (util-linux)")
}

#[test]
fn the_socket_is_roots_and_its_groups_alone() {
    let env = Env::new();
    // A directory other users may search, as /run is.
    let dir = tempfile::Builder::new()
        .prefix("berth-sock-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("api.sock");
    let d = Daemon::start_on(&env, socket.clone(), &["-G", "4242"]);
    let meta = std::fs::metadata(&socket).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.mode() & 0o777, meta.uid(), meta.gid()),
        (0o660, 0, 4242)
    );
    let s = socket.to_string_lossy();
    // nobody, in no group: refused by the kernel before a byte is read.
    let out = curl_as(65534, "", &s, "http://d/containers/json");
    assert!(!out.status.success(), "nobody got in: {out:?}");
    assert!(out.stdout.is_empty());
    // The group's member gets in.
    let out = curl_as(65534, "4242", &s, "http://d/_ping");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK", "{out:?}");
    d.stop();
    assert!(!socket.exists(), "the socket outlived the daemon");
    env.assert_clean();
}

#[test]
fn hostile_bodies_and_archive_paths_are_refused_or_confined() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let s = d.socket.to_string_lossy().into_owned();
    let work = env.workdir();
    let curl = |args: &[&str]| -> (String, String) {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "60",
                "--unix-socket",
                &s,
                "-w",
                "\n%{http_code}",
            ])
            .args(args)
            .current_dir(&work)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (body.to_string(), code.to_string())
    };
    // 64 MiB of JSON to create a container: refused unread, and the daemon
    // goes on.
    let huge = work.join("huge.json");
    let mut body = String::from("{\"Image\":\"busybox\",\"Cmd\":[\"");
    body.push_str(&"A".repeat(64 << 20));
    body.push_str("\"]}");
    std::fs::write(&huge, body).unwrap();
    let (_, code) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        "@huge.json",
        "http://d/containers/create",
    ]);
    assert_eq!(code, "413", "a 64 MiB create body was taken");
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "");
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]));
    // An archive whose entries climb out of where docker cp puts them.
    let victim = work.join("victim");
    std::fs::create_dir(&victim).unwrap();
    let script = format!(
        r#"
import io, sys, tarfile
t = tarfile.open("evil.tar", "w")
def add(name, data=b"x", **kw):
    i = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(i, k, v)
    i.size = len(data) if i.type == tarfile.REGTYPE else 0
    t.addfile(i, io.BytesIO(data) if i.type == tarfile.REGTYPE else None)
add("../../../../../../../../{v}/dotdot")
add("{v}/absolute")
add("up", type=tarfile.SYMTYPE, linkname="/")
add("up/{v}/through-link")
add("rel", type=tarfile.SYMTYPE, linkname="../../../../../../../..")
add("rel/{v}/through-rel")
t.close()
"#,
        v = victim.display().to_string().trim_start_matches('/')
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (_, code) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/x-tar",
        "--data-binary",
        "@evil.tar",
        "http://d/containers/box/archive?path=/tmp",
    ]);
    assert!(code == "200" || code == "400", "{code}");
    // A container path that climbs: still inside the container.
    let (_, code) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "@evil.tar",
        &format!(
            "http://d/containers/box/archive?path=/../../../../..{}",
            victim.display()
        ),
    ]);
    assert!(code == "200" || code == "400" || code == "404", "{code}");
    let planted: Vec<_> = std::fs::read_dir(&victim)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        planted.is_empty(),
        "the archive wrote on the host: {planted:?}"
    );
    // A plain archive lands where docker cp puts it.
    std::fs::write(work.join("ok.txt"), "fine\n").unwrap();
    let out = Command::new("tar")
        .args(["-cf", "ok.tar", "ok.txt"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (_, code) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "@ok.tar",
        "http://d/containers/box/archive?path=/tmp",
    ]);
    assert_eq!(code, "200");
    assert_eq!(
        ok(d.docker(&["exec", "box", "cat", "/tmp/ok.txt"])),
        "fine\n"
    );
    // docker cp from the container never follows a link out of it.
    ok(d.docker(&["exec", "box", "ln", "-s", "/etc", "/tmp/out"]));
    let got = d.docker_in(&work, &["cp", "box:/tmp/out/hostname", "copied"]);
    if got.code == 0 {
        let copied = std::fs::read_to_string(work.join("copied")).unwrap();
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        assert_ne!(copied, host, "docker cp read the host's /etc/hostname");
    }
    ok(d.docker(&["rm", "-f", "box"]));
    let tmp = env.root.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch left: {left:?}");
    d.stop();
    env.assert_clean();
}
