//! `run -it`: a real terminal, its size, raw mode and ^C.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::pty::{openpty, Winsize};

use crate::common::{eventually, wait_timeout, Env};

/// `berth args...` on a new terminal of `rows` x 111: the child, the
/// terminal's master side, and everything it has shown so far.
pub(crate) struct Terminal {
    pub(crate) child: std::process::Child,
    pub(crate) master: std::fs::File,
    pub(crate) screen: Arc<Mutex<String>>,
    pub(crate) reader: std::thread::JoinHandle<()>,
}

impl Terminal {
    pub(crate) fn wait_for(&self, what: &str) {
        eventually(
            Duration::from_secs(20),
            &format!("{what:?} on the terminal"),
            || self.screen.lock().unwrap().contains(what).then_some(()),
        );
    }
}

fn on_terminal(env: &Env, args: &[&str]) -> Terminal {
    on_terminal_cmd(env.command(args))
}

/// Runs `cmd` with a new terminal as its controlling terminal and stdio.
pub(crate) fn on_terminal_cmd(mut cmd: std::process::Command) -> Terminal {
    let ws = Winsize {
        ws_row: 33,
        ws_col: 111,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(&ws, None).unwrap();
    let slave: OwnedFd = pty.slave;
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and TIOCSCTTY are async-signal-safe and touch only the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    // Our copies of the slave must go, or the master never sees the end.
    drop(cmd);
    let master = std::fs::File::from(pty.master);
    let screen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let screen = screen.clone();
        let mut m = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = m.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    Terminal {
        child,
        master,
        screen,
        reader,
    }
}

#[test]
fn interactive_shell_with_a_terminal() {
    let env = Env::new();
    let Terminal {
        mut child,
        mut master,
        screen,
        reader,
    } = on_terminal(&env, &["run", "--rm", "-it", "busybox", "sh"]);
    let wait_for = |what: &str| {
        eventually(
            Duration::from_secs(20),
            &format!("{what:?} on the terminal"),
            || screen.lock().unwrap().contains(what).then_some(()),
        );
    };
    master
        .write_all(b"tty; stty size; echo TERM=$TERM\n")
        .unwrap();
    wait_for("/dev/pts/0");
    wait_for("33 111");
    wait_for("TERM=xterm");
    // ^C reaches the container's foreground process, not berth.
    master.write_all(b"sleep 60\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    master.write_all(&[3]).unwrap();
    master.write_all(b"echo rc=$?\n").unwrap();
    wait_for("rc=130");
    master.write_all(b"exit 3\n").unwrap();
    let r = wait_timeout(&mut child, Duration::from_secs(20));
    assert_eq!(r.code, 3, "{}", screen.lock().unwrap());
    drop(master);
    let _ = reader.join();
    env.assert_clean();
}

#[test]
fn detach_keys_leave_the_container_running() {
    let env = Env::new();
    let mut t = on_terminal(&env, &["run", "-it", "--name", "d", "busybox", "sh"]);
    // The prompt comes once berth has put the terminal in raw mode.
    t.wait_for("/ # ");
    t.master.write_all(b"echo rea''dy\n").unwrap();
    t.wait_for("ready");
    // ctrl-p ctrl-q: berth ends, the shell goes on.
    t.master.write_all(&[0x10, 0x11]).unwrap();
    let r = wait_timeout(&mut t.child, Duration::from_secs(20));
    assert_eq!(r.code, 0);
    assert_eq!(env.inspect("d", "{{.State.Status}}"), "running");
    let r = env.berth(&["exec", "d", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    drop(t.master);
    let _ = t.reader.join();
    assert_eq!(env.berth(&["rm", "-f", "d"]).code, 0);
    env.assert_clean();
}

#[test]
fn pull_on_a_terminal_draws_progress_bars() {
    let reg = crate::distribution::DockerRegistry::start(None);
    let env = Env::new();
    let name = format!("{}/me/bars:v1", reg.addr);
    assert_eq!(env.berth(&["tag", "busybox", &name]).code, 0);
    assert_eq!(env.berth(&["push", &name]).code, 0);
    let env2 = Env::empty();
    let Terminal {
        mut child,
        master,
        screen,
        reader,
    } = on_terminal(&env2, &["pull", &name]);
    let r = wait_timeout(&mut child, Duration::from_secs(30));
    drop(master);
    let _ = reader.join();
    let shown = screen.lock().unwrap().clone();
    assert_eq!(r.code, 0, "{shown}");
    // Bars are redrawn in place (cursor control), not printed line by line.
    assert!(shown.contains("\x1b["), "{shown:?}");
    assert!(shown.contains("Pull complete"), "{shown:?}");
    assert!(
        shown.contains("Status: Downloaded newer image"),
        "{shown:?}"
    );
    // Without a terminal the same pull prints docker's status lines.
    let plain = env2.berth(&["pull", &name]);
    assert!(!plain.stdout.contains('\x1b'), "{plain:?}");
}
