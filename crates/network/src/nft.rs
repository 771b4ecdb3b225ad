//! NAT and port publishing with nftables, through the `nft` binary: each
//! operation is one script applied atomically (`nft -f -`).
//!
//! One table, `ip berth`, holds everything. Published ports are elements of
//! maps that two DNAT rules look up (so adding or removing a port is adding or
//! deleting an element, never a rule), container subnets and bridges are
//! elements of sets the masquerade rules use. Only the isolation rule of each
//! user network is a rule of its own.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;
use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::ports::Proto;

pub const TABLE: &str = "berth";

const BASE: &str = r#"
add table ip berth
add set ip berth nets { type ipv4_addr; flags interval; }
add set ip berth bridges { type ifname; }
add map ip berth any_tcp { type inet_service : ipv4_addr . inet_service; }
add map ip berth any_udp { type inet_service : ipv4_addr . inet_service; }
add map ip berth ip_tcp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
add map ip berth ip_udp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
add chain ip berth ports
add rule ip berth ports dnat ip to ip daddr . tcp dport map @ip_tcp
add rule ip berth ports dnat ip to ip daddr . udp dport map @ip_udp
add rule ip berth ports dnat ip to tcp dport map @any_tcp
add rule ip berth ports dnat ip to udp dport map @any_udp
add chain ip berth prerouting { type nat hook prerouting priority dstnat; policy accept; }
add rule ip berth prerouting fib daddr type local jump ports
add chain ip berth output { type nat hook output priority -100; policy accept; }
add rule ip berth output fib daddr type local jump ports
add chain ip berth postrouting { type nat hook postrouting priority srcnat; policy accept; }
add rule ip berth postrouting ip saddr @nets ip daddr != @nets masquerade
add rule ip berth postrouting oifname @bridges ct status dnat ip saddr 127.0.0.0/8 masquerade
add rule ip berth postrouting oifname @bridges ct status dnat ip saddr @nets masquerade
add chain ip berth forward { type filter hook forward priority filter; policy accept; }
"#;

/// Bridges have route_localnet (so a port published on 127.0.0.1 reaches a
/// container), which would also let a container send to the host's
/// loopback-only services (CVE-2020-8558): what arrives on a bridge for
/// 127.0.0.0/8 is dropped unless it belongs to a published port's
/// connection. Last in the table, so its presence says the table is whole.
const INPUT: &str = r#"
add chain ip berth input { type filter hook input priority filter; policy accept; }
add rule ip berth input iifname @bridges ip daddr 127.0.0.0/8 ct status & dnat == 0 drop
"#;

/// Runs `nft` with `args`, feeding it `script` on stdin.
fn nft(args: &[&str], script: Option<&str>) -> Result<String> {
    let mut child = Command::new("nft")
        .args(args)
        // The kernel's errors in the C locale's words (see `errno_of`).
        .env("LC_ALL", "C")
        .stdin(if script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NftMissing,
            _ => Error::io("run nft")(e),
        })?;
    if let (Some(s), Some(mut stdin)) = (script, child.stdin.take()) {
        stdin
            .write_all(s.as_bytes())
            .map_err(Error::io("write to nft"))?;
    }
    let out = child.wait_with_output().map_err(Error::io("run nft"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // "/dev/stdin:1:25-26: Error: Could not process rule: File exists",
        // then the offending line: the message from "Error" on.
        let first = err
            .lines()
            .find_map(|l| l.find("Error").map(|at| &l[at..]))
            .unwrap_or(err.trim());
        return Err(Error::Nft {
            errno: errno_of(first),
            message: first.to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The errno nft reports for a rule the kernel refused: its message ends
/// with the errno's description ("Error: Could not process rule: File
/// exists"). nft speaks only text; this reads it back once, here, so that
/// callers match a kind and never the words.
fn errno_of(message: &str) -> Option<Errno> {
    const KNOWN: [Errno; 11] = [
        Errno::EEXIST,
        Errno::ENOENT,
        Errno::EBUSY,
        Errno::EINVAL,
        Errno::EPERM,
        Errno::ENOSPC,
        Errno::ENOMEM,
        Errno::ENOBUFS,
        Errno::EOPNOTSUPP,
        Errno::ERANGE,
        Errno::EAFNOSUPPORT,
    ];
    let (_, said) = message.rsplit_once(": ")?;
    KNOWN.into_iter().find(|e| e.desc() == said.trim())
}

fn apply(script: &str) -> Result<()> {
    nft(&["-f", "-"], Some(script)).map(drop)
}

/// Creates the table, its sets, maps and rules unless it exists. Callers
/// serialise this (the engine's network lock).
pub fn ensure_table() -> Result<()> {
    if nft(&["list", "chain", "ip", TABLE, "input"], None).is_ok() {
        return Ok(());
    }
    // A table an older Berth made lacks only the input chain (re-adding
    // BASE would repeat its rules).
    if nft(&["list", "table", "ip", TABLE], None).is_ok() {
        return apply(INPUT);
    }
    apply(&format!("{BASE}{INPUT}"))
}

/// Registers a network: its subnet is masqueraded, its bridge is isolated
/// from the other networks' bridges. An `internal` network (docker's
/// `--internal`) is not masqueraded and nothing is forwarded into or out of
/// its bridge: its containers reach each other and nothing else.
pub fn add_network(bridge: &str, subnet: &Ipv4Net, internal: bool) -> Result<()> {
    let tag = format!("comment \"isolate {bridge}\"");
    let mut script = format!("add element ip berth bridges {{ \"{bridge}\" }}\n");
    if internal {
        script.push_str(&format!(
            "add rule ip berth forward iifname \"{bridge}\" oifname != \"{bridge}\" drop {tag}\n\
             add rule ip berth forward oifname \"{bridge}\" iifname != \"{bridge}\" drop {tag}\n"
        ));
    } else {
        script.push_str(&format!(
            "add element ip berth nets {{ {subnet} }}\n\
             add rule ip berth forward iifname \"{bridge}\" oifname @bridges oifname != \"{bridge}\" drop {tag}\n"
        ));
    }
    apply(&script)
}

/// Undoes [`add_network`]; what is already gone is skipped.
pub fn remove_network(bridge: &str, subnet: &Ipv4Net) -> Result<()> {
    let mut errors = Vec::new();
    if let Ok(listing) = nft(&["-a", "list", "chain", "ip", TABLE, "forward"], None) {
        let tag = format!("comment \"isolate {bridge}\"");
        for line in listing.lines().filter(|l| l.contains(&tag)) {
            if let Some(handle) = line.rsplit("# handle ").next() {
                let cmd = format!("delete rule ip berth forward handle {}\n", handle.trim());
                if let Err(e) = apply(&cmd) {
                    errors.push(e);
                }
            }
        }
    }
    delete_each(
        [
            format!("delete element ip berth nets {{ {subnet} }}\n"),
            format!("delete element ip berth bridges {{ \"{bridge}\" }}\n"),
        ],
        errors,
    )
}

/// Applies each deletion on its own, so one already gone does not stop
/// the others; reports what failed for another reason.
fn delete_each(cmds: impl IntoIterator<Item = String>, mut errors: Vec<Error>) -> Result<()> {
    for cmd in cmds {
        match apply(&cmd) {
            // nft says ENOENT, or (newer versions) "does not exist".
            Err(e)
                if e.errno() == Some(Errno::ENOENT) || e.to_string().contains("does not exist") => {
            }
            Err(e) => errors.push(e),
            Ok(()) => {}
        }
    }
    Error::all(errors)
}

/// A published port as nft sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub to: Ipv4Addr,
    pub to_port: u16,
}

impl Dnat {
    fn map(&self) -> String {
        let kind = if self.host_ip.is_some() { "ip" } else { "any" };
        format!("{kind}_{}", self.proto.as_str())
    }

    fn key(&self) -> String {
        match self.host_ip {
            Some(ip) => format!("{ip} . {}", self.host_port),
            None => self.host_port.to_string(),
        }
    }
}

/// Publishes ports, all or none: an element that exists already (a port
/// published by someone else) fails the whole batch.
pub fn add_ports(ports: &[Dnat]) -> Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let script: String = ports
        .iter()
        .map(|p| {
            format!(
                "create element ip berth {} {{ {} : {} . {} }}\n",
                p.map(),
                p.key(),
                p.to,
                p.to_port
            )
        })
        .collect();
    apply(&script)
}

/// Withdraws published ports, going on past any that is already gone.
pub fn remove_ports(ports: &[Dnat]) -> Result<()> {
    delete_each(
        ports
            .iter()
            .map(|p| format!("delete element ip berth {} {{ {} }}\n", p.map(), p.key())),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_answer_is_read_back_from_nfts_words() {
        // What nft 1.0 prints (C locale) for an element that exists and one
        // that does not.
        assert_eq!(
            errno_of("Error: Could not process rule: File exists"),
            Some(Errno::EEXIST)
        );
        assert_eq!(
            errno_of("Error: Could not process rule: No such file or directory"),
            Some(Errno::ENOENT)
        );
        assert_eq!(errno_of("Error: syntax error, unexpected newline"), None);
        assert_eq!(
            errno_of("Error: No such file or directory; did you mean table ‘x’?"),
            None
        );
    }
}
