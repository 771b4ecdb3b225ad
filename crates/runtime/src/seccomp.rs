//! `linux.seccomp` compiled to a BPF program (by libseccomp), and loaded
//! into the container's process before it executes its program.
//!
//! Compiling is the expensive part (docker's profile takes milliseconds), so
//! callers may compile once and hand the program in (the engine keeps one
//! per profile on disk); loading is one system call.

use std::io::{Read, Seek};
use std::os::fd::AsFd;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use crate::error::{Error, Result};

fn invalid(m: String) -> Error {
    Error::InvalidSpec(format!("linux.seccomp: {m}"))
}

/// docker's and the spec's errno default for an ERRNO action: EPERM.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(DEFAULT_ERRNO) as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(DEFAULT_ERRNO) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(invalid(
                "SCMP_ACT_NOTIFY is not supported (no seccomp agent)".into(),
            ))
        }
    })
}

fn compare(op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (ScmpCompareOp, u64) {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // The spec's value is the mask, valueTwo the value compared.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0))
        }
    }
}

/// The architecture's libseccomp name (`SCMP_ARCH_X86_64`), as the spec
/// spells it.
fn arch(a: &oci_spec::runtime::Arch) -> Result<ScmpArch> {
    let name = serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    name.parse::<ScmpArch>()
        .map_err(|e| invalid(format!("architecture {name}: {e}")))
}

/// Compiles the spec's filter for this machine: the BPF instructions, as
/// the kernel takes them.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<u8>> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |e: libseccomp::error::SeccompError| invalid(format!("{what}: {e}"))
    };
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new_filter(default).map_err(fail("create filter"))?;
    // The runtime sets no_new_privs itself, as the spec says.
    ctx.set_ctl_nnp(false).map_err(fail("no_new_privs"))?;
    // A binary tree of syscall numbers rather than one long list: when the
    // filter is loaded the kernel runs it once per syscall number to find
    // the always-allowed ones, which over docker's ~980-instruction list
    // took ~1 ms of every start; a tree also decides each call in a few
    // jumps. libseccomp before 2.5 lacks it and keeps the list.
    if let Err(e) = ctx.set_ctl_optimize(OPTIMIZE) {
        tracing::debug!("seccomp: no binary tree: {e}");
    }
    for a in s.architectures().as_deref().unwrap_or_default() {
        let a = arch(a)?;
        if a != ScmpArch::native() {
            ctx.add_arch(a).map_err(fail("add architecture"))?;
        }
    }
    for rule in s.syscalls().as_deref().unwrap_or_default() {
        let act = action(rule.action(), rule.errno_ret())?;
        // A rule that does what the default does adds nothing (and
        // libseccomp refuses it).
        if act == default {
            continue;
        }
        let args = rule.args().as_deref().unwrap_or_default();
        let conds: Vec<ScmpArgCompare> = args
            .iter()
            .map(|a| {
                let (op, datum) = compare(a.op(), a.value(), a.value_two());
                ScmpArgCompare::new(a.index() as u32, op, datum)
            })
            .collect();
        // Conditions on one argument are alternatives: one rule each.
        let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
        indexes.sort();
        indexes.dedup();
        let groups: Vec<Vec<ScmpArgCompare>> = if indexes.len() == conds.len() {
            vec![conds]
        } else {
            conds.into_iter().map(|c| vec![c]).collect()
        };
        for name in rule.names() {
            // Names this architecture lacks (socketcall on x86_64, ...)
            // are skipped, as docker does.
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                continue;
            };
            for g in &groups {
                let added = if g.is_empty() {
                    ctx.add_rule(act, sys)
                } else {
                    ctx.add_rule_conditional(act, sys, g)
                };
                added.map_err(fail(&format!("rule for {name}")))?;
            }
        }
    }
    let mut out = memfd()?;
    ctx.export_bpf(&mut out).map_err(fail("export"))?;
    out.rewind()
        .map_err(|e| invalid(format!("read the program: {e}")))?;
    let mut prog = Vec::new();
    out.read_to_end(&mut prog)
        .map_err(|e| invalid(format!("read the program: {e}")))?;
    if prog.is_empty() || prog.len() % std::mem::size_of::<libc::sock_filter>() != 0 {
        return Err(invalid(format!(
            "compiled program has {} bytes",
            prog.len()
        )));
    }
    Ok(prog)
}

/// libseccomp's optimization level 2: a binary tree.
const OPTIMIZE: u32 = 2;

/// The libseccomp this program was built with and the form it compiles to
/// (a compiled program may differ from one to the next).
pub fn compiler_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}+o{OPTIMIZE}", v.major, v.minor, v.micro))
        .unwrap_or_default()
}

fn memfd() -> Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(
        c"berth-seccomp",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(Error::sys("memfd_create"))?;
    let _ = fd.as_fd();
    Ok(std::fs::File::from(fd))
}

/// Installs `prog` in the calling process. Without no_new_privs set this
/// needs CAP_SYS_ADMIN, so the child loads it while it still has it.
pub(crate) fn load(prog: &[u8]) -> std::result::Result<(), nix::errno::Errno> {
    let len = prog.len() / std::mem::size_of::<libc::sock_filter>();
    let fprog = libc::sock_fprog {
        len: len as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) reads `len` sock_filter
    // structs from `filter`, which points into `prog`, alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::last())
    }
}
