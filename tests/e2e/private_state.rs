//! The store against another user of the host: a setuid file a hostile
//! image or a container's root planted, a secret in a container's record and
//! log. None of it is reachable by a host user who is not root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::Env;

/// `args` run as `nobody` (uid and gid 65534, no groups), by a shell that
/// is already nobody (setpriv's own exec of its command is not the user's).
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["/bin/sh", "-c", "exec \"$@\"", "sh"])
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

fn find(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(find(&p, name));
            } else if e.file_name() == name {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_host_user_reaches_nothing_in_the_store() {
    let env = Env::new();
    // Only Berth's own modes stand between the user and the store: its
    // parent directory is open to everyone.
    let parent = env.root.parent().unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.image_from(
        "cp /bin/busybox /suid-layer && chmod 4755 /suid-layer",
        &[],
        "hostile",
    );
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "none",
        "-e",
        "DB_PASSWORD=hunter2",
        "hostile",
        "sh",
        "-c",
        "echo secret-in-log; cp /bin/busybox /suid-upper; chmod 4755 /suid-upper; sleep 100",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    crate::common::eventually(
        std::time::Duration::from_secs(10),
        "the planted file",
        || (!find(&env.root.join("containers"), "suid-upper").is_empty()).then_some(()),
    );
    let planted: Vec<PathBuf> = find(&env.root.join("image/layers"), "suid-layer")
        .into_iter()
        .chain(find(&env.root.join("containers"), "suid-upper"))
        .collect();
    assert_eq!(planted.len(), 2, "{planted:?}");
    for d in [&env.root, &env.runroot] {
        let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    // The setuid files cannot be run, the record, the spec and the log
    // cannot be read.
    for f in &planted {
        let out = as_nobody(&[f.to_str().unwrap(), "id", "-u"]);
        assert!(!out.status.success(), "{} ran: {out:?}", f.display());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{out:?}"
        );
    }
    let cdir = env.root.join("containers").join(&id);
    let secrets = [
        cdir.join("container.json"),
        cdir.join(format!("{id}-json.log")),
        env.runroot.join("containers").join(&id).join("config.json"),
    ];
    for f in &secrets {
        assert!(f.exists(), "{}", f.display());
        let out = as_nobody(&["cat", f.to_str().unwrap()]);
        assert!(!out.status.success(), "{} was read", f.display());
    }
    // Root still reads them; the container still runs as any user.
    let r = env.berth(&[
        "exec",
        "-u",
        "1000",
        "c",
        "sh",
        "-c",
        "echo $DB_PASSWORD; id -u",
    ]);
    assert_eq!(r.stdout, "hunter2\n1000\n", "{r:?}");
    assert_eq!(env.berth(&["rm", "-f", "c"]).code, 0);
    env.assert_clean();
}

#[test]
fn an_older_store_is_tightened() {
    let env = Env::new();
    std::fs::set_permissions(&env.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(env.berth(&["images", "-q"]).code, 0);
    let mode = std::fs::metadata(&env.root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}
