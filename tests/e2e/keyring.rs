//! Keyrings: a key the host user keeps in their session keyring is not
//! in reach of a container started (or exec'd into) from that session.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::common::{Env, Run};

/// Makes `cmd` start in a session keyring of its own that holds the key
/// `berth-host-secret` (as a user's login session would hold one).
fn with_host_key(cmd: &mut Command) {
    // SAFETY: raw keyctl/add_key system calls between fork and exec, on
    // constant strings; nothing else runs there.
    unsafe {
        cmd.pre_exec(|| {
            let name = c"berth-test-session";
            if libc::syscall(
                libc::SYS_keyctl,
                1i64, /* JOIN_SESSION_KEYRING */
                name.as_ptr(),
            ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            let (typ, desc, data) = (c"user", c"berth-host-secret", b"s3cret");
            let id = libc::syscall(
                libc::SYS_add_key,
                typ.as_ptr(),
                desc.as_ptr(),
                data.as_ptr(),
                data.len(),
                -3i64, /* the session keyring */
            );
            if id < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn run(mut cmd: Command) -> Run {
    with_host_key(&mut cmd);
    cmd.stdin(Stdio::null()).output().unwrap().into()
}

#[test]
fn the_host_session_keyring_stays_on_the_host() {
    let env = Env::new();
    let bin = env.workdir().join("bin");
    std::fs::create_dir(&bin).unwrap();
    crate::exec_attack::build_static("keyspy", &bin, "keyspy");
    // The control: a host process of that session reads the key.
    let r = run(Command::new(bin.join("keyspy")));
    assert_eq!(r.stdout, "read:s3cret\n", "{r:?}");
    let volume = format!("{}:/x:ro", bin.display());
    // A container started from that session.
    let r = run(env.command(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &volume,
        "busybox",
        "/x/keyspy",
    ]));
    assert_eq!(r.stdout, "notfound\n", "{r:?}");
    // A process exec'd into a container from that session.
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "k",
        "--network",
        "none",
        "-v",
        &volume,
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(env.command(&["exec", "k", "/x/keyspy"]));
    assert_eq!(r.stdout, "notfound\n", "{r:?}");
    assert_eq!(env.berth(&["rm", "-f", "k"]).code, 0);
    env.assert_clean();
}
