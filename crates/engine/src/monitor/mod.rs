//! The per-container monitor: a small program of its own (Berth's executable
//! started as `berth-monitor`, like containerd's shim or conmon) that owns
//! every process of its container. It starts the container, owns its stdio,
//! writes its log, reaps it, records how it ended, restarts it as its restart
//! policy says, and runs each `exec` in it.
//!
//! # Process model
//!
//! - The engine, in whatever process and thread calls it, starts a monitor
//!   with a plain fork and exec of [`crate::EngineConfig::monitor_program`]
//!   (`std::process::Command`, never a fork of the caller that goes on
//!   running the caller's code). Its only inputs are explicit: the engine's
//!   configuration (JSON, absolute paths), the container's ID, the report
//!   pipe on fd 3 and, for `run`/`start -a`, the attached client's socket on
//!   fd 4. Its environment is `PATH` alone; every other descriptor is closed
//!   before the exec; stdio is /dev/null.
//! - The program forks once and the first process exits, so the caller reaps
//!   it at once and the monitor lives on as init's child (or the nearest
//!   subreaper's), in a session of its own. Killing the caller, even with
//!   SIGKILL, never touches the container.
//! - The monitor is single-threaded (the runtime refuses to create a
//!   container or exec a process from more threads), a child subreaper, and
//!   not dumpable: the processes it starts in the container stay non-dumpable
//!   until their execve, so nothing in the container can open their /proc
//!   entries (descriptors, memory, environment, this executable) in between.
//!   Its warnings go to `<root>/containers/<id>/monitor.log`.
//! - The container's init and every exec are the monitor's children. An exec
//!   gets pipes or a terminal made by the monitor, never its caller's files.
//! - A monitor that dies (SIGKILL) leaves a container whose init the engine
//!   still reaches through its pid: the next command that finds it running
//!   starts a monitor that adopts it ([`adopt`]: its log, attach, wait and
//!   exit code again), and the next that finds neither alive records the
//!   exit (unknown if nobody saw it) and releases what it held
//!   ([`Engine::reap_orphans`]).
//!
//! # Protocol
//!
//! Commands reach the monitor through a unix socket,
//! `<runroot>/monitors/<id>.sock`, framed as [`proto`] describes (docker's
//! attach-stream header; version [`proto::VERSION`] in every request). A
//! client's first frame is its request:
//! - `attach {stdin}`: the container's output as STDOUT/STDERR frames; STDIN,
//!   STDIN_EOF (close stdin) and RESIZE frames go to it; EXIT at the end.
//! - `wait`: an EXIT frame with the exit code when the container ends.
//! - `exec {exec_id, detach}`: runs the exec recorded in
//!   `containers/<id>/execs/<exec_id>.json`; an EXEC_REPLY frame says whether
//!   it started (its pid) or why not (and the exit code docker gives that);
//!   then, unless detached, its output, and STDIN, STDIN_EOF, RESIZE and
//!   SIGNAL frames from the client go to it; EXIT with its exit code at the
//!   end. The monitor records its pid, and its exit code when it ends, in the
//!   exec's record, so a later inspect reads them.
//!
//! The engine sends signals to the container's init itself, by pidfd (so
//! they work without a monitor), and reads stats from the container's
//! cgroup.
//!
//! # Locks
//!
//! Taken in this order, never the other way: the host's network lock
//! (`/run/lock/berth-network.lock`: bridges, leases, nftables), then the
//! container records' lock (`<root>/containers/.lock`: every
//! read-modify-write of a record, names, volume use), then the image store's
//! (its metadata lock, and the collector's lock that writers share). A monitor
//! takes the records' lock to record a start or an exit, the network lock
//! first when it releases leases. Exec records have one writer at a time
//! (the engine until the exec is started, then its monitor) and are
//! replaced atomically.
//!
//! It stays small: one poll loop, fixed buffers, no allocation per byte.

mod adopt;
mod exec;
mod health;
pub mod proto;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_runtime::{ExitStatus, Stdio};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::{fork, ForkResult};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::logs::{LogWriter, Stream};
use crate::{Engine, Running};
use proto::Request;

/// Output queued for one client beyond which the container's output is not
/// read until the client catches up.
const CLIENT_BACKLOG: usize = 1 << 20;
/// How long a finished monitor waits for its clients to take the last output.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// What the monitor tells the command that forked it.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    Started { pid: i32 },
    Failed { message: String, code: i32 },
}

/// A container started under a monitor.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// The container's init, as the host sees it.
    pub pid: i32,
}

struct Client {
    /// Stable while the monitor runs (an exec names its client by it).
    id: u64,
    sock: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    request: Option<Request>,
    gone: bool,
}

impl Client {
    fn new(id: u64, sock: UnixStream, request: Option<Request>) -> Client {
        let _ = sock.set_nonblocking(true);
        Client {
            id,
            sock,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            request,
            gone: false,
        }
    }

    fn attached(&self) -> bool {
        matches!(self.request, Some(Request::Attach { .. })) && !self.gone
    }

    fn flush(&mut self) {
        while !self.outbuf.is_empty() && !self.gone {
            match self.sock.write(&self.outbuf) {
                Ok(0) => self.gone = true,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => self.gone = true,
            }
        }
    }
}

/// The container's stdio as the monitor holds it.
struct Io {
    /// stdout pipe, or the terminal's master side.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// Where input for the container goes (pipe, or a copy of the master).
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    stdin_eof: bool,
    tty: bool,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::io("create", "pipe")(e.into()))
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
    );
}

/// Reads what is there: `None` at the end (EOF, or EIO from a terminal whose
/// every slave is closed), `Some(0)` when nothing is ready.
fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Option<usize> {
    match nix::unistd::read(fd.as_raw_fd(), buf) {
        Ok(0) => None,
        Ok(n) => Some(n),
        Err(Errno::EINTR) | Err(Errno::EAGAIN) => Some(0),
        Err(_) => None,
    }
}

/// Gives back memory the monitor inherited from the command that forked it
/// and no longer needs: free heap, and the resident pages of read-only file
/// mappings (program text, libraries), which fault back in from the page
/// cache for the little code the poll loop runs. Mappings holding private
/// (anonymous) pages, such as relocated data, are left alone.
fn trim_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize, bool)> = None;
    let mut zap = Vec::new();
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = parts.next().unwrap_or_default();
                let inode = parts.nth(2).unwrap_or("0");
                let path = parts.next().unwrap_or_default();
                let file = inode != "0" && path.starts_with('/');
                current = Some((start, end, file && !perms.contains('w')));
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some((start, end, true)) = current.take() {
                if parts.next() == Some("0") {
                    zap.push((start, end - start));
                }
            }
        }
    }
    for (start, len) in zap {
        // SAFETY: these mappings are read-only, file-backed and hold no
        // private pages: dropping their page table entries loses nothing,
        // the kernel maps the file's pages again on the next access.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    }
}

/// A session keyring of the container's own (as runc gives each container
/// one): the monitor's, so the init and every exec start in it and never in
/// the keyring of the session that started them (a user's keys stay theirs).
fn join_session_keyring(id: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let short = id.get(..12).unwrap_or(id);
    let Ok(name) = std::ffi::CString::new(format!("_ses.{short}")) else {
        return;
    };
    // SAFETY: keyctl with a constant operation and a NUL-terminated name
    // that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        tracing::warn!(
            "a session keyring of the container's own: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Closes every descriptor from `first` on. Async-signal-safe: it runs
/// between fork and exec.
fn close_from(first: i32) {
    // SAFETY: close_range takes plain integers; it only closes descriptors.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) };
    if r != 0 {
        // Kernels before 5.9: every descriptor up to the usual limit.
        for fd in first..4096 {
            // SAFETY: as above, closing descriptors only.
            unsafe { libc::close(fd) };
        }
    }
}

/// The directory of monitor sockets, and a socket's address through a
/// descriptor of it: `/proc/self/fd/N/<id>.sock` stays short whatever the
/// runroot's length (unix socket paths are limited to 107 bytes).
pub(crate) struct SocketDir {
    dir: File,
}

impl SocketDir {
    pub(crate) fn open(engine: &Engine) -> Result<SocketDir> {
        let path = engine.config.runroot.join("monitors");
        std::fs::create_dir_all(&path).map_err(Error::io("create", &path))?;
        let dir = File::open(&path).map_err(Error::io("open", &path))?;
        Ok(SocketDir { dir })
    }

    pub(crate) fn path(&self, id: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{id}.sock", self.dir.as_raw_fd()))
    }
}

/// The name a monitor runs under (its `argv[0]`): Berth's program started
/// this way is a monitor, not the CLI.
pub const PROGRAM_NAME: &str = "berth-monitor";

/// The descriptors a monitor is handed: the report pipe, and the attached
/// client's socket when there is one.
const REPORT_FD: i32 = 3;
const ATTACH_FD: i32 = 4;

/// Whether this process was started as a monitor (see [`PROGRAM_NAME`]).
pub fn is_monitor(args: &[std::ffi::OsString]) -> bool {
    args.first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == PROGRAM_NAME)
}

/// A monitor's whole life as a program: `args` as it was started with
/// (see [`Invocation`]); its warnings go to its log file. Returns its exit
/// code. Both `berth-monitor`, the small executable installed beside
/// `berth`, and `berth` itself started under that name call this.
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let invocation = match Invocation::parse(args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    {
        use tracing_subscriber::filter::{LevelFilter, Targets};
        use tracing_subscriber::prelude::*;
        // Fixed targets, no directive parsing: this runs at every start.
        let filter = Targets::new()
            .with_default(LevelFilter::WARN)
            .with_target("libcgroups", LevelFilter::ERROR)
            .with_target("rustls", LevelFilter::OFF);
        // One per process, for its whole life.
        let log: &'static LazyLog = Box::leak(Box::new(LazyLog {
            path: invocation.log_path(),
            file: std::sync::OnceLock::new(),
        }));
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || log)
                    .with_ansi(false)
                    .with_filter(filter),
            )
            .try_init();
    }
    invocation.run()
}

/// The monitor's warnings go to this file in the container's directory.
const LOG_NAME: &str = "monitor.log";

/// The monitor's log file, made at its first warning: most monitors never
/// write one, and a file made on a disk per container start costs more
/// than its write.
struct LazyLog {
    path: PathBuf,
    file: std::sync::OnceLock<Option<File>>,
}

impl Write for &LazyLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let file = self.file.get_or_init(|| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok()
        });
        match file {
            Some(f) => (&*f).write(buf),
            // The container's directory is gone (removed): nowhere to log.
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A monitor's inputs, all explicit: `berth-monitor CONFIG-JSON ID ROWS,COLS|-
/// attach|adopt|-`, with the report pipe on fd 3 and an attached client on
/// fd 4 (`attach`). `adopt` takes over a running container whose monitor was
/// killed (see [`adopt`]).
pub struct Invocation {
    config: crate::EngineConfig,
    id: String,
    console_size: Option<(u16, u16)>,
    attach: bool,
    adopt: bool,
}

impl Invocation {
    pub fn parse(args: &[std::ffi::OsString]) -> std::result::Result<Invocation, String> {
        let arg = |i: usize| {
            args.get(i)
                .and_then(|a| a.to_str())
                .ok_or_else(|| format!("{PROGRAM_NAME}: argument {i} is missing"))
        };
        let config = serde_json::from_str(arg(1)?)
            .map_err(|e| format!("{PROGRAM_NAME}: the engine configuration: {e}"))?;
        let id = arg(2)?.to_string();
        if !crate::names::valid_id(&id) {
            return Err(format!("{PROGRAM_NAME}: {id:?} is not a container ID"));
        }
        let console_size = match arg(3)? {
            "-" => None,
            s => {
                let (r, c) = s
                    .split_once(',')
                    .ok_or_else(|| format!("{PROGRAM_NAME}: console size {s:?}"))?;
                let parse = |v: &str| {
                    v.parse::<u16>()
                        .map_err(|_| format!("{PROGRAM_NAME}: console size {s:?}"))
                };
                Some((parse(r)?, parse(c)?))
            }
        };
        Ok(Invocation {
            config,
            id,
            console_size,
            attach: arg(4)? == "attach",
            adopt: arg(4)? == "adopt",
        })
    }

    /// Where the monitor writes its warnings: beside the container's record,
    /// so they outlive it until the container is removed.
    pub fn log_path(&self) -> PathBuf {
        self.config
            .root
            .join("containers")
            .join(&self.id)
            .join(LOG_NAME)
    }

    /// The monitor's life; returns its exit code. Call it first thing in a
    /// program of its own: it forks (its starter waits for that first process
    /// only, and the monitor goes on as nobody's child but init's).
    pub fn run(self) -> i32 {
        // SAFETY: this program has just been started for this and has one
        // thread; the parent only leaves.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {}
            Ok(ForkResult::Parent { .. }) => return 0,
            Err(_) => return 1,
        }
        // SAFETY: fd 3 (and 4) were handed to this program by its starter
        // for it to own; nothing else in this process uses them.
        let report = unsafe { OwnedFd::from_raw_fd(REPORT_FD) };
        let attach = self
            .attach
            // SAFETY: as above.
            .then(|| unsafe { OwnedFd::from_raw_fd(ATTACH_FD) });
        for fd in [Some(&report), attach.as_ref()].into_iter().flatten() {
            let _ = nix::fcntl::fcntl(
                fd.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
        }
        let engine = match crate::Engine::open(self.config) {
            Ok(e) => e,
            Err(e) => {
                let message = serde_json::to_vec(&Report::Failed {
                    message: e.to_string(),
                    code: 125,
                })
                .unwrap_or_default();
                let _ = File::from(report).write_all(&message);
                return 1;
            }
        };
        if self.adopt {
            return engine.adopt(&self.id, report);
        }
        engine.monitor(&self.id, attach, self.console_size, Some(report), false)
    }
}

impl Engine {
    /// Starts a container under a new monitor and returns once it runs (or
    /// failed to start). With `attach`, one end of a socket pair, the monitor
    /// treats it as an attached client from the first byte of output.
    ///
    /// The monitor is a program of its own ([`PROGRAM_NAME`]), started with
    /// fork and exec from any thread: it gets the engine's configuration, the
    /// container's ID and the descriptors above, an environment of its own,
    /// and nothing else of this process.
    pub fn start_monitored(
        &self,
        key: &str,
        attach: Option<OwnedFd>,
        console_size: Option<(u16, u16)>,
    ) -> Result<Started> {
        let rec = self.containers.find(key)?;
        if !rec.state.status.can_start() {
            return Err(self.not_startable(&rec));
        }
        let mode = if attach.is_some() { "attach" } else { "-" };
        self.launch_monitor(&rec.id, attach, console_size, mode)
    }

    /// Starts a monitor program for container `id` in `mode` (`attach`,
    /// `adopt` or `-`) and waits for its report.
    fn launch_monitor(
        &self,
        id: &str,
        attach: Option<OwnedFd>,
        console_size: Option<(u16, u16)>,
        mode: &str,
    ) -> Result<Started> {
        let (report_r, report_w) = pipe()?;
        let config = serde_json::to_string(&self.config).map_err(|e| Error::Corrupt {
            path: self.config.root.clone(),
            message: e.to_string(),
        })?;
        let program = &self.config.monitor_program;
        let mut cmd = std::process::Command::new(program);
        cmd.arg0(PROGRAM_NAME)
            .arg(config)
            .arg(id)
            .arg(match console_size {
                Some((rows, cols)) => format!("{rows},{cols}"),
                None => "-".into(),
            })
            .arg(mode)
            .env_clear()
            .env("PATH", crate::spec::DEFAULT_PATH)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let handed = [
            Some((report_w.as_raw_fd(), REPORT_FD)),
            attach.as_ref().map(|a| (a.as_raw_fd(), ATTACH_FD)),
        ];
        // SAFETY: between fork and exec the closure only calls fcntl and
        // dup2, which are async-signal-safe, on descriptors this process owns.
        unsafe {
            cmd.pre_exec(move || {
                // Copies first (above the targets), so that moving one into
                // place never overwrites another still to move.
                let mut copies = Vec::with_capacity(2);
                for (fd, target) in handed.iter().flatten() {
                    let copy = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                    if copy < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    copies.push((copy, *target));
                }
                for (copy, target) in copies {
                    if libc::dup2(copy, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // Nothing else of this process reaches the monitor, whatever
                // its caller left open without close-on-exec (a terminal, a
                // jobserver pipe).
                close_from(ATTACH_FD + 1);
                Ok(())
            })
        };
        let mut first = cmd
            .spawn()
            .map_err(Error::io("start the monitor", program))?;
        drop(report_w);
        drop(attach);
        // The report first: the first process's exit (it forks the monitor
        // and leaves) overlaps the container's start instead of delaying it.
        let mut buf = Vec::new();
        let _ = File::from(report_r).read_to_end(&mut buf);
        let status = first
            .wait()
            .map_err(Error::io("wait for the monitor's start", program))?;
        match serde_json::from_slice::<Report>(&buf) {
            Ok(Report::Started { pid }) => Ok(Started { pid }),
            Ok(Report::Failed { message, code }) => Err(Error::StartFailed { message, code }),
            Err(_) => Err(Error::StartFailed {
                message: format!(
                    "the container's monitor ended before reporting ({status}; see {})",
                    self.containers.dir(id).join(LOG_NAME).display()
                ),
                code: 125,
            }),
        }
    }

    /// The monitor's life; returns its exit code. `restarting`: it takes
    /// over a container that its restart policy starts again.
    fn monitor(
        &self,
        id: &str,
        attach: Option<OwnedFd>,
        console_size: Option<(u16, u16)>,
        report: Option<OwnedFd>,
        restarting: bool,
    ) -> i32 {
        become_monitor(id);
        let mut report = report.map(File::from);
        let send = |report: &mut Option<File>, r: Report| {
            if let Some(mut f) = report.take() {
                let _ = f.write_all(&serde_json::to_vec(&r).unwrap_or_default());
            }
        };
        let setup = (|| {
            let dir = SocketDir::open(self)?;
            let path = dir.path(id);
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).map_err(Error::io("listen on", &path))?;
            listener
                .set_nonblocking(true)
                .map_err(Error::io("listen on", &path))?;
            Ok::<_, Error>((dir, listener))
        })();
        let (dir, listener) = match setup {
            Ok(x) => x,
            Err(e) => {
                send(
                    &mut report,
                    Report::Failed {
                        message: e.to_string(),
                        code: 125,
                    },
                );
                return 1;
            }
        };
        let sock_path = dir.path(id);
        let mut m = Monitor::new(listener, false);
        if let Some(fd) = attach {
            let (stdin, owned) = self
                .containers
                .load(id)
                .map(|r| (r.options.interactive, r.options.ends_with_client))
                .unwrap_or((false, false));
            let cid = m.client_id();
            m.clients.push(Client::new(
                cid,
                UnixStream::from(fd),
                Some(Request::Attach { stdin }),
            ));
            if owned {
                m.owner = Some(cid);
            }
        }
        let mut restarting = restarting;
        let mut backoff = Duration::from_millis(100);
        loop {
            let started_at = Instant::now();
            let (running, mut io, mut log) =
                match self.monitored_start(id, console_size, restarting) {
                    Ok(x) => x,
                    Err(e) => {
                        send(
                            &mut report,
                            Report::Failed {
                                message: e.to_string(),
                                code: crate::exit_code_for(&e),
                            },
                        );
                        let _ = std::fs::remove_file(&sock_path);
                        m.finish_clients(None);
                        return 1;
                    }
                };
            send(
                &mut report,
                Report::Started {
                    pid: running.container.pid().as_raw(),
                },
            );
            let status = m.serve(self, &running, &mut io, &mut log);
            let oom = running.container.cgroup().oom_kills() > 0;
            if let Err(e) = running.container.destroy() {
                tracing::warn!("remove cgroup: {e}");
            }
            // Everything in the container is gone now: read its output to
            // the end, and what its execs wrote.
            m.drain(&mut io, &mut log);
            m.end_execs(self);
            let _ = log.flush_partial();
            drop(io);
            let code = status.code();
            let rec = self.record_exit(id, code, oom);
            let again = match &rec {
                Ok(Some(r)) => r.options.restart.should_restart(
                    code,
                    r.state.restart_count,
                    r.state.manually_stopped,
                ),
                _ => false,
            };
            if again {
                m.end_streams(code);
                if started_at.elapsed() > Duration::from_secs(10) {
                    backoff = Duration::from_millis(100);
                }
                if self.mark_restarting(id).is_err() {
                    break;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(60));
                restarting = true;
                continue;
            }
            let mut removed = None;
            if let Ok(Some(r)) = &rec {
                if r.options.auto_remove || m.owner_gone {
                    match self.remove_stopped(id, true) {
                        Ok(r) => removed = Some(r),
                        Err(e) => tracing::warn!("remove container {id}: {e}"),
                    }
                }
            }
            let _ = std::fs::remove_file(&sock_path);
            // The container is gone from every listing: its clients learn
            // the exit now, and its files are deleted after.
            m.finish_clients(Some(code));
            if let Some(r) = removed {
                r.delete();
            }
            break;
        }
        0
    }
}

/// What a monitor process is, whatever it serves: a session leader, a
/// child subreaper (processes of the container that outlive their parents
/// are reaped here), not dumpable, in a session keyring of the container's
/// own, with the signals it handles blocked.
fn become_monitor(id: &str) {
    let _ = nix::unistd::setsid();
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // SAFETY: as above. Not dumpable: a process this monitor starts in
    // the container (its init, each exec) stays so until its execve, so
    // nothing in the container can open its /proc entries (descriptors,
    // memory, exe: this program) in between.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    join_session_keyring(id);
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

struct Monitor {
    trimmed: bool,
    /// When to give memory back next (a second into the container's run,
    /// and a second after each exec ends).
    trim_at: Instant,
    listener: UnixListener,
    clients: Vec<Client>,
    buf: Vec<u8>,
    next_client: u64,
    /// The container's exec processes, which this monitor started and owns.
    execs: Vec<exec::Exec>,
    /// Exec requests read, to start once the current events are handled:
    /// (client, exec ID, detach).
    pending_execs: Vec<(u64, String, bool)>,
    /// The client the container lives for (`ends_with_client`).
    owner: Option<u64>,
    /// That client went away before the container ended: it was killed.
    owner_gone: bool,
}

impl Monitor {
    /// A monitor listening on `listener`, with no client yet; `trimmed`
    /// when its memory need not be given back once more.
    fn new(listener: UnixListener, trimmed: bool) -> Monitor {
        Monitor {
            trimmed,
            trim_at: Instant::now(),
            listener,
            clients: Vec::new(),
            buf: vec![0u8; 32 * 1024],
            next_client: 1,
            execs: Vec::new(),
            pending_execs: Vec::new(),
            owner: None,
            owner_gone: false,
        }
    }

    /// Runs until the container's init exits.
    fn serve(
        &mut self,
        engine: &Engine,
        running: &Running,
        io: &mut Io,
        log: &mut LogWriter,
    ) -> ExitStatus {
        let c = &running.container;
        // Memory is trimmed once the container has run for a second, off the
        // path of short-lived containers.
        self.trim_at = Instant::now() + Duration::from_secs(1);
        let mut health = health::Checker::new(engine, &running.id);
        loop {
            if !self.trimmed && Instant::now() >= self.trim_at {
                self.trimmed = true;
                trim_memory();
            }
            if let Ok(Some(status)) = c.try_wait() {
                if let Some(h) = &mut health {
                    h.stop();
                }
                return status;
            }
            if let Some(h) = &mut health {
                h.tick(engine, running);
            }
            self.start_pending_execs(engine, running);
            self.reap_execs(engine);
            self.clients.retain(|c| !c.gone);
            if let Some(owner) = self.owner {
                if !self.owner_gone && !self.clients.iter().any(|c| c.id == owner) {
                    // Its client went away (a build killed or cancelled):
                    // the container goes too.
                    self.owner_gone = true;
                    let _ = running.container.signal(Signal::SIGKILL);
                    let _ = running.container.cgroup().kill_all();
                }
            }
            let backlog = self.clients.iter().any(|c| c.outbuf.len() > CLIENT_BACKLOG);
            let mut fds = Vec::with_capacity(6 + self.clients.len());
            // Where each of ours sits in `fds`: listener, pidfd, out, err, stdin.
            let mut slots = [usize::MAX; 5];
            slots[0] = fds.len();
            fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
            if let Some(p) = c.pidfd() {
                slots[1] = fds.len();
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            if !backlog {
                if let Some(o) = &io.out {
                    slots[2] = fds.len();
                    fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
                }
                if let Some(e) = &io.err {
                    slots[3] = fds.len();
                    fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
                }
            }
            if let (Some(i), false) = (&io.stdin, io.stdin_buf.is_empty()) {
                slots[4] = fds.len();
                fds.push(PollFd::new(i.as_fd(), PollFlags::POLLOUT));
            }
            let first_exec = fds.len();
            let exec_slots: Vec<exec::Slots> = self
                .execs
                .iter()
                .map(|e| e.poll_fds(&mut fds, backlog))
                .collect();
            let first_client = fds.len();
            for cl in &self.clients {
                let mut f = PollFlags::POLLIN;
                if !cl.outbuf.is_empty() {
                    f |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(cl.sock.as_fd(), f));
            }
            let timeout_ms: Option<u16> =
                if c.pidfd().is_none() || self.execs.iter().any(|e| !e.has_pidfd()) {
                    Some(100)
                } else if !self.trimmed {
                    Some(250)
                } else {
                    None
                };
            // The next health check is due no later than this.
            let health_ms = health
                .as_ref()
                .map(|h| (h.wait().as_millis().min(60_000) as u16).max(1));
            let timeout = match (timeout_ms, health_ms) {
                (Some(a), Some(b)) => PollTimeout::from(a.min(b)),
                (Some(a), None) | (None, Some(a)) => PollTimeout::from(a),
                (None, None) => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            let revents: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            let ready = |slot: usize| slot != usize::MAX && !revents[slot].is_empty();
            if ready(slots[2]) {
                self.pump(io, log, Stream::Stdout);
            }
            if ready(slots[3]) {
                self.pump(io, log, Stream::Stderr);
            }
            if ready(slots[4]) {
                io.write_stdin();
            }
            self.exec_events(&revents[first_exec..first_client], &exec_slots);
            for (i, r) in revents[first_client..].iter().enumerate() {
                if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.read_client(i, io);
                }
                if r.contains(PollFlags::POLLOUT) {
                    self.clients[i].flush();
                }
            }
            if ready(slots[0]) {
                while let Ok((sock, _)) = self.listener.accept() {
                    let id = self.client_id();
                    self.clients.push(Client::new(id, sock, None));
                }
            }
        }
    }

    /// Copies what one output stream has to the log and the attached clients.
    fn pump(&mut self, io: &mut Io, log: &mut LogWriter, stream: Stream) {
        let fd = match stream {
            Stream::Stdout => &mut io.out,
            Stream::Stderr => &mut io.err,
        };
        let Some(f) = fd else { return };
        match read_some(f.as_fd(), &mut self.buf) {
            None => *fd = None,
            Some(0) => {}
            Some(n) => self.emit(log, stream, n),
        }
    }

    fn emit(&mut self, log: &mut LogWriter, stream: Stream, n: usize) {
        let data = &self.buf[..n];
        if let Err(e) = log.write(stream, data) {
            tracing::warn!("write log: {e}");
        }
        let kind = match stream {
            Stream::Stdout => proto::STDOUT,
            Stream::Stderr => proto::STDERR,
        };
        for cl in self.clients.iter_mut().filter(|c| c.attached()) {
            cl.outbuf.extend_from_slice(&proto::header(kind, n));
            cl.outbuf.extend_from_slice(data);
            cl.flush();
        }
    }

    /// After the exit: whatever the streams still hold, without waiting.
    fn drain(&mut self, io: &mut Io, log: &mut LogWriter) {
        for (stream, fd) in [
            (Stream::Stdout, io.out.take()),
            (Stream::Stderr, io.err.take()),
        ] {
            let Some(fd) = fd else { continue };
            set_nonblocking(fd.as_fd());
            while let Some(n) = read_some(fd.as_fd(), &mut self.buf) {
                if n == 0 {
                    break;
                }
                self.emit(log, stream, n);
            }
        }
    }

    fn read_client(&mut self, i: usize, io: &mut Io) {
        let Monitor {
            clients,
            execs,
            pending_execs,
            ..
        } = self;
        let cl = &mut clients[i];
        let mut buf = [0u8; 16 * 1024];
        match cl.sock.read(&mut buf) {
            Ok(0) => {
                cl.gone = true;
                return;
            }
            Ok(n) => cl.inbuf.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                return
            }
            Err(_) => {
                cl.gone = true;
                return;
            }
        }
        let mut used = 0;
        loop {
            let (kind, payload, n) = match proto::parse(&cl.inbuf[used..]) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    cl.gone = true;
                    break;
                }
            };
            used += n;
            let exec_client = matches!(cl.request, Some(Request::Exec { .. }));
            match kind {
                proto::REQUEST if cl.request.is_none() => match proto::decode_request(payload) {
                    Ok(Request::Exec { exec_id, detach }) => {
                        pending_execs.push((cl.id, exec_id.clone(), detach));
                        cl.request = Some(Request::Exec { exec_id, detach });
                    }
                    Ok(r) => cl.request = Some(r),
                    Err(why) => {
                        tracing::warn!("a client's request: {why}");
                        cl.outbuf
                            .extend_from_slice(&proto::encode(proto::ERROR, why.as_bytes()));
                        cl.flush();
                        cl.gone = true;
                    }
                },
                proto::STDIN | proto::STDIN_EOF | proto::RESIZE | proto::SIGNAL if exec_client => {
                    let cid = cl.id;
                    if let Some(e) = execs.iter_mut().find(|e| e.client == Some(cid)) {
                        e.input(kind, payload);
                    }
                }
                proto::STDIN if matches!(cl.request, Some(Request::Attach { stdin: true })) => {
                    io.stdin_buf.extend_from_slice(payload);
                    io.write_stdin();
                }
                // A terminal has no end of input; a pipe closes once drained.
                proto::STDIN_EOF
                    if !io.tty && matches!(cl.request, Some(Request::Attach { stdin: true })) =>
                {
                    io.stdin_eof = true;
                    io.write_stdin();
                }
                proto::RESIZE => {
                    if let (true, Some(m), [a, b, c, d]) = (io.tty, &io.out, payload) {
                        let rows = u16::from_be_bytes([*a, *b]);
                        let cols = u16::from_be_bytes([*c, *d]);
                        let _ = berth_runtime::set_winsize(m.as_fd(), rows, cols);
                    }
                }
                _ => {}
            }
        }
        cl.inbuf.drain(..used);
    }

    /// Sends the exit code to every client that asked for something (after
    /// its last output) and lets them go.
    fn end_streams(&mut self, code: i32) {
        let frame = proto::encode(proto::EXIT, &proto::exit_payload(code));
        for cl in self
            .clients
            .iter_mut()
            .filter(|c| c.request.is_some() && !matches!(c.request, Some(Request::Exec { .. })))
        {
            cl.outbuf.extend_from_slice(&frame);
        }
        self.flush_all();
        self.clients.retain(|c| c.request.is_none());
    }

    /// Ends every client, clients still connecting included: the exit code,
    /// or only their last output if the container never ran.
    fn finish_clients(&mut self, code: Option<i32>) {
        while let Ok((sock, _)) = self.listener.accept() {
            let id = self.client_id();
            self.clients
                .push(Client::new(id, sock, Some(Request::Wait)));
        }
        match code {
            Some(code) => self.end_streams(code),
            None => self.flush_all(),
        }
    }

    fn flush_all(&mut self) {
        let deadline = Instant::now() + FLUSH_LIMIT;
        loop {
            self.clients.iter_mut().for_each(Client::flush);
            let pending: Vec<&Client> = self
                .clients
                .iter()
                .filter(|c| !c.gone && !c.outbuf.is_empty())
                .collect();
            if pending.is_empty() || Instant::now() >= deadline {
                return;
            }
            let mut fds: Vec<PollFd> = pending
                .iter()
                .map(|c| PollFd::new(c.sock.as_fd(), PollFlags::POLLOUT))
                .collect();
            let _ = poll(&mut fds, PollTimeout::from(100u8));
        }
    }
}

impl Io {
    fn empty(tty: bool) -> Io {
        Io {
            out: None,
            err: None,
            stdin: None,
            stdin_buf: Vec::new(),
            stdin_eof: false,
            tty,
        }
    }

    /// The stdio a process of the container gets from the monitor, and the
    /// monitor's ends of it: pipes (stdin a pipe with `stdin`, else
    /// /dev/null), or nothing yet with a terminal (the runtime opens it in
    /// the container and hands back its master).
    fn new(tty: bool, stdin: bool) -> Result<(Stdio, Io)> {
        if tty {
            return Ok((Stdio::default(), Io::empty(true)));
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (stdin_r, stdin_w) = if stdin {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            let null = File::open("/dev/null").map_err(Error::io("open", "/dev/null"))?;
            (OwnedFd::from(null), None)
        };
        let mut io = Io::empty(false);
        io.out = Some(out_r);
        io.err = Some(err_r);
        io.stdin = stdin_w;
        let stdio = Stdio {
            stdin: Some(stdin_r),
            stdout: Some(out_w),
            stderr: Some(err_w),
        };
        Ok((stdio, io))
    }

    fn write_stdin(&mut self) {
        if let Some(fd) = &self.stdin {
            while !self.stdin_buf.is_empty() {
                match nix::unistd::write(fd, &self.stdin_buf) {
                    Ok(n) => {
                        self.stdin_buf.drain(..n);
                    }
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => return,
                    Err(_) => {
                        // The container closed its stdin.
                        self.stdin_buf.clear();
                        self.stdin = None;
                        return;
                    }
                }
            }
        }
        if self.stdin_eof && self.stdin_buf.is_empty() {
            self.stdin = None;
        }
    }
}

impl Engine {
    /// Starts the container with stdio the monitor owns.
    fn monitored_start(
        &self,
        id: &str,
        console_size: Option<(u16, u16)>,
        restarting: bool,
    ) -> Result<(Running, Io, LogWriter)> {
        let rec = self.containers.load(id)?;
        let o = &rec.options;
        let log = match self.containers.log_path(id, o.log.driver) {
            Some(path) => LogWriter::open(&path, o.log.clone())?,
            None => LogWriter::open(std::path::Path::new(""), o.log.clone())?,
        };
        let (stdio, mut io) = Io::new(o.tty, o.interactive)?;
        let mut running = self.start(id, stdio, console_size, restarting)?;
        if let Some(master) = running.container.take_pty_master() {
            if o.interactive {
                io.stdin = master.try_clone().ok();
            }
            io.out = Some(master);
        }
        for fd in [&io.out, &io.err].into_iter().flatten() {
            set_nonblocking(fd.as_fd());
        }
        if let Some(fd) = &io.stdin {
            set_nonblocking(fd.as_fd());
        }
        Ok((running, io, log))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_file_is_made_at_the_first_write_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_NAME);
        let log = LazyLog {
            path: path.clone(),
            file: std::sync::OnceLock::new(),
        };
        assert!(!path.exists(), "made before anything was written");
        (&log).write_all(b"first\n").unwrap();
        (&log).write_all(b"second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\nsecond\n");
        // A removed container's directory: the warning goes nowhere.
        let gone = LazyLog {
            path: dir.path().join("gone").join(LOG_NAME),
            file: std::sync::OnceLock::new(),
        };
        (&gone).write_all(b"lost\n").unwrap();
        assert!(!dir.path().join("gone").exists());
    }
}
