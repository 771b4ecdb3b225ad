//! Device rules on cgroup v2. v2 has no devices.allow/deny: the kernel asks
//! a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the cgroup instead.
//! The program is built from the rules as runc's `devicefilter.go` builds
//! it: the rules are checked last to first, the first that matches decides
//! (so the last matching rule wins, as on v1), and what no rule matches is
//! denied. An allow matches a request asking for nothing it does not name; a
//! deny matches one asking for any access it names (v1's partial match, which
//! runc's device emulator keeps: denying `w` refuses an open for `rw`).
//!
//! Hand-assembled (nine opcodes) rather than built with `aya`: aya brings an
//! ELF loader, maps, BTF and async support for a program of a few
//! instructions per rule. The kernel effects are five bpf(2) commands.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::DeviceRule;

/// Installs the program for a cgroup's device rules. The real one is
/// [`Bpf`]; tests of the v2 backend against a fake cgroupfs record instead.
pub(crate) trait DeviceFilter: Send + Sync {
    fn install(&self, cgroup: &Path, rules: &[DeviceRule]) -> io::Result<()>;
}

/// Loads the program with bpf(2) and attaches it to the cgroup.
pub(crate) struct Bpf;

impl DeviceFilter for Bpf {
    fn install(&self, cgroup: &Path, rules: &[DeviceRule]) -> io::Result<()> {
        install(cgroup, rules)
    }
}

/// One eBPF instruction as the kernel reads it (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// The destination register in the low nibble, the source in the high.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
/// `BPF_LDX | BPF_MEM | BPF_W`: dst = *(u32 *)(src + off).
const LDX_W: u8 = 0x61;
/// `BPF_ALU | BPF_AND | BPF_K`: dst &= imm (32 bits).
const AND_K: u8 = 0x54;
/// `BPF_ALU | BPF_RSH | BPF_K`: dst >>= imm (32 bits).
const RSH_K: u8 = 0x74;
/// `BPF_ALU | BPF_MOV | BPF_K`: dst = imm (32 bits).
const MOV_K: u8 = 0xb4;
/// `BPF_ALU | BPF_MOV | BPF_X`: dst = src (32 bits).
const MOV_X: u8 = 0xbc;
/// `BPF_JMP | BPF_JNE | BPF_K`: if dst != imm, skip `off` instructions.
const JNE_K: u8 = 0x55;
/// `BPF_JMP | BPF_JNE | BPF_X`: if dst != src, skip `off` instructions.
const JNE_X: u8 = 0x5d;
/// `BPF_JMP | BPF_JEQ | BPF_K`: if dst == imm, skip `off` instructions.
const JEQ_K: u8 = 0x15;
/// `BPF_JMP | BPF_EXIT`: return r0.
const EXIT: u8 = 0x95;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
// the device type in access_type's low 16 bits, the access in the high 16.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

fn access_mask(access: &str) -> i32 {
    access.chars().fold(0, |m, c| {
        m | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

/// A major or minor the program compares: `None` for a wildcard (the spec
/// writes a missing number; runc's configs write -1).
fn number(rule: &DeviceRule, v: Option<i64>) -> io::Result<Option<i32>> {
    match v {
        None => Ok(None),
        Some(v) if v < 0 => Ok(None),
        Some(v) => i32::try_from(v).map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("device rule {}: {v} is not a device number", rule.line()),
            )
        }),
    }
}

/// Whether a rule matches every device and every access (`a *:* rwm`).
fn covers_all(r: &DeviceRule) -> bool {
    r.kind == 'a'
        && !matches!(r.major, Some(m) if m >= 0)
        && !matches!(r.minor, Some(m) if m >= 0)
        && access_mask(&r.access) == ACC_ALL
}

/// The program for `rules`, in order: later rules override earlier ones, and
/// a device no rule names is denied.
pub fn program(rules: &[DeviceRule]) -> io::Result<Vec<Insn>> {
    // A rule for every device decides for all the rules before it: it
    // becomes the answer for what the later rules do not name.
    let (default, rules) = match rules.iter().rposition(covers_all) {
        Some(i) => (rules[i].allow, &rules[i + 1..]),
        None => (false, rules),
    };
    let mut p = vec![
        // r2 = type, r3 = access, r4 = major, r5 = minor.
        insn(LDX_W, R2, R1, 0, 0),
        insn(AND_K, R2, 0, 0, 0xffff),
        insn(LDX_W, R3, R1, 0, 0),
        insn(RSH_K, R3, 0, 0, 16),
        insn(LDX_W, R4, R1, 4, 0),
        insn(LDX_W, R5, R1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let access = access_mask(&r.access);
        if access == 0 {
            // Names no access: matches no request.
            continue;
        }
        // Each check jumps past the block when the request does not match;
        // the offsets are filled in once the block's length is known.
        let mut block = Vec::new();
        match r.kind {
            'b' => block.push(insn(JNE_K, R2, 0, 0, DEV_BLOCK)),
            'c' => block.push(insn(JNE_K, R2, 0, 0, DEV_CHAR)),
            _ => {}
        }
        if access != ACC_ALL {
            block.push(insn(MOV_X, R1, R3, 0, 0));
            block.push(insn(AND_K, R1, 0, 0, access));
            block.push(if r.allow {
                // Allows only what asks for nothing the rule does not name.
                insn(JNE_X, R1, R3, 0, 0)
            } else {
                // Denies what asks for any access the rule names.
                insn(JEQ_K, R1, 0, 0, 0)
            });
        }
        if let Some(m) = number(r, r.major)? {
            block.push(insn(JNE_K, R4, 0, 0, m));
        }
        if let Some(m) = number(r, r.minor)? {
            block.push(insn(JNE_K, R5, 0, 0, m));
        }
        block.push(insn(MOV_K, R0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if matches!(ins.code, JNE_K | JNE_X | JEQ_K) {
                // Relative to the next instruction: lands on the next block.
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(MOV_K, R0, 0, 0, i32::from(default)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    Ok(p)
}

/// Runs `program` on one request, as the kernel would: `kind` is `b` or
/// `c`, `access` one or more of `rwm`; returns whether it is allowed. For
/// tests of the generated programs: it knows only the opcodes above.
#[cfg(test)]
fn run(program: &[Insn], kind: char, major: u32, minor: u32, access: &str) -> bool {
    let ty = if kind == 'b' { DEV_BLOCK } else { DEV_CHAR } as u32;
    let ctx = [ty | ((access_mask(access) as u32) << 16), major, minor];
    let mut reg = [0u64; 11];
    let mut pc = 0;
    loop {
        let i = program[pc];
        let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
        pc += 1;
        match i.code {
            LDX_W => {
                assert_eq!(src, 1, "loads read the context");
                reg[dst] = u64::from(ctx[i.off as usize / 4]);
            }
            AND_K => reg[dst] = u64::from(reg[dst] as u32 & i.imm as u32),
            RSH_K => reg[dst] = u64::from((reg[dst] as u32) >> i.imm),
            MOV_K => reg[dst] = u64::from(i.imm as u32),
            MOV_X => reg[dst] = u64::from(reg[src] as u32),
            JNE_K if reg[dst] != i.imm as i64 as u64 => pc += i.off as usize,
            JNE_X if reg[dst] != reg[src] => pc += i.off as usize,
            JEQ_K if reg[dst] == i.imm as i64 as u64 => pc += i.off as usize,
            JNE_K | JNE_X | JEQ_K => {}
            EXIT => return reg[0] == 1,
            other => panic!("opcode {other:#x}"),
        }
    }
}

// bpf(2) commands and constants (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The name the kernel keeps with Berth's program: how an update finds the
/// program it replaces.
pub const PROGRAM_NAME: &str = "berth_devices";

// The parts of `union bpf_attr` each command reads, every byte a named
// field (no padding the kernel would read as garbage). The kernel zeroes
// what a shorter attr leaves out.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetInfo {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The head of `struct bpf_prog_info`, up to the name.
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, fully initialised repr(C) value with the
    // layout of the union bpf_attr member `cmd` reads, and its size is
    // passed with it; the pointers inside it point at live buffers of the
    // lengths stated beside them.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) just returned this descriptor; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn context(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Loads the program; the verifier's log is in the error when it refuses.
fn load(insns: &[Insn]) -> io::Result<OwnedFd> {
    let license = b"Apache\0";
    let mut name = [0u8; 16];
    name[..PROGRAM_NAME.len()].copy_from_slice(PROGRAM_NAME.as_bytes());
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    let e = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(owned(fd)),
        Err(e) => e,
    };
    if !matches!(e.raw_os_error(), Some(libc::EACCES | libc::EINVAL)) {
        return Err(context("load the device program", e));
    }
    // Again with the verifier's log, to say why.
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
        return Ok(owned(fd));
    }
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    Err(io::Error::new(
        e.kind(),
        format!(
            "load the device program: {e}: {}",
            String::from_utf8_lossy(&log[..end]).trim()
        ),
    ))
}

/// The ids of the device programs attached to the cgroup itself.
pub fn attached(cgroup: &Path) -> io::Result<Vec<u32>> {
    query(&File::open(cgroup)?)
}

fn query(dir: &File) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = Query {
            target_fd: dir.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // More than fit: the kernel says how many.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0; attr.prog_cnt as usize];
            }
            Err(e) => return Err(context("query the device programs", e)),
        }
    }
}

/// A program by id, with its name; `None` when it is gone meanwhile.
fn open_program(id: u32) -> io::Result<Option<(OwnedFd, String)>> {
    let mut attr = GetFdById {
        prog_id: id,
        ..Default::default()
    };
    let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
        Ok(fd) => owned(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(context("open device program", e)),
    };
    let mut info = ProgInfo::default();
    let mut attr = GetInfo {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map_err(|e| context("read device program", e))?;
    let end = info.name.iter().position(|b| *b == 0).unwrap_or(16);
    let name = String::from_utf8_lossy(&info.name[..end]).into_owned();
    Ok(Some((fd, name)))
}

/// Builds the program for `rules`, attaches it to the cgroup directory, then
/// detaches the Berth program it replaces (an update). In between both run
/// and a request must pass both, so there is no moment without rules.
pub fn install(cgroup: &Path, rules: &[DeviceRule]) -> io::Result<()> {
    let insns = program(rules)?;
    let prog = load(&insns)?;
    let dir = File::open(cgroup)?;
    let before = query(&dir)?;
    let mut attr = Attach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| context("attach the device program", e))?;
    for id in before {
        let Some((old, name)) = open_program(id)? else {
            continue;
        };
        if name != PROGRAM_NAME {
            continue;
        }
        let mut attr = Attach {
            target_fd: dir.as_raw_fd() as u32,
            attach_bpf_fd: old.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
        };
        bpf(BPF_PROG_DETACH, &mut attr)
            .map_err(|e| context(&format!("detach the old device program {id}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    fn deny_all() -> DeviceRule {
        rule(false, 'a', None, None, "rwm")
    }

    #[test]
    fn default_is_deny() {
        let p = program(&[]).unwrap();
        assert!(!run(&p, 'c', 1, 3, "r"));
        assert!(!run(&p, 'b', 8, 0, "m"));
    }

    #[test]
    fn deny_all_then_allow_one() {
        let p = program(&[deny_all(), rule(true, 'c', Some(1), Some(3), "rwm")]).unwrap();
        assert!(run(&p, 'c', 1, 3, "rw"));
        assert!(run(&p, 'c', 1, 3, "m"));
        assert!(!run(&p, 'c', 1, 5, "r"));
        assert!(!run(&p, 'b', 1, 3, "r"), "the type counts");
        assert!(!run(&p, 'b', 7, 0, "m"));
    }

    #[test]
    fn the_last_matching_rule_wins() {
        let rules = [
            deny_all(),
            rule(true, 'c', Some(1), None, "rwm"),
            rule(false, 'c', Some(1), Some(5), "rwm"),
        ];
        let p = program(&rules).unwrap();
        assert!(run(&p, 'c', 1, 3, "r"));
        assert!(!run(&p, 'c', 1, 5, "r"));
        // An allow after the deny wins again.
        let mut more = rules.to_vec();
        more.push(rule(true, 'c', Some(1), Some(5), "r"));
        let p = program(&more).unwrap();
        assert!(run(&p, 'c', 1, 5, "r"));
        assert!(!run(&p, 'c', 1, 5, "w"), "the allow names only r");
        assert!(!run(&p, 'c', 1, 5, "rw"), "a request asks for all it names");
    }

    #[test]
    fn a_deny_refuses_any_request_asking_for_what_it_names() {
        let p = program(&[
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'c', Some(1), Some(5), "w"),
        ])
        .unwrap();
        assert!(run(&p, 'c', 1, 5, "r"));
        assert!(!run(&p, 'c', 1, 5, "w"));
        assert!(!run(&p, 'c', 1, 5, "rw"), "an open for rw asks for w");
        let deny = p.iter().find(|i| i.code == JEQ_K).unwrap();
        assert_eq!((deny.regs, deny.imm), (R1, 0));
    }

    #[test]
    fn allow_all_makes_denies_the_exceptions() {
        let p = program(&[
            deny_all(),
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'b', Some(8), None, "w"),
        ])
        .unwrap();
        assert!(run(&p, 'c', 1, 5, "rw"));
        assert!(run(&p, 'b', 8, 1, "r"));
        assert!(!run(&p, 'b', 8, 1, "w"));
        // The rules before a rule for every device are left out.
        let shorter = program(&[
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'b', Some(8), None, "w"),
        ])
        .unwrap();
        assert_eq!(p, shorter);
    }

    #[test]
    fn wildcards_and_mknod() {
        // runc's defaults: mknod of any node, reads and writes of few.
        let p = program(&[
            deny_all(),
            rule(true, 'c', None, None, "m"),
            rule(true, 'b', Some(-1), Some(-1), "m"),
            rule(true, 'c', Some(136), None, "rwm"),
        ])
        .unwrap();
        assert!(run(&p, 'b', 7, 0, "m"));
        assert!(!run(&p, 'b', 7, 0, "r"));
        assert!(run(&p, 'c', 136, 4, "rw"));
        assert!(!run(&p, 'c', 137, 4, "rw"));
    }

    #[test]
    fn encoding() {
        let p = program(&[deny_all(), rule(true, 'c', Some(1), Some(3), "r")]).unwrap();
        // Six loads, then: type, three access checks, major, minor, r0, exit.
        assert_eq!(p.len(), 6 + 8 + 2);
        let at = |code, regs, off, imm| Insn {
            code,
            regs,
            off,
            imm,
        };
        assert_eq!(p[0], at(0x61, 0x12, 0, 0));
        assert_eq!(p[6], at(0x55, 0x02, 7, 2));
        assert_eq!(p[9], at(0x5d, 0x31, 4, 0));
        assert_eq!(p[12], at(0xb4, 0x00, 0, 1));
        assert_eq!(p[15], at(0x95, 0, 0, 0));
        assert_eq!(size_of::<Insn>(), 8);
    }

    #[test]
    fn numbers_out_of_range_are_refused() {
        let err = program(&[rule(true, 'c', Some(1 << 40), None, "r")]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
