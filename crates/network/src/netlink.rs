//! Links, addresses and routes through rtnetlink: the bridge on the host, and
//! a veth pair whose inside end becomes a container's `eth0`.
//!
//! Calls are made on a current-thread runtime: this adds no thread to the
//! (single-threaded) processes that create containers. A netlink socket
//! belongs to the network namespace it was opened in, so configuring a
//! container opens one there (switching this thread's namespace and back).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, OwnedFd};

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkInfo};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{Error, Result};

pub struct Netlink {
    rt: tokio::runtime::Runtime,
    handle: Handle,
}

fn open_ns(path: &str) -> Result<OwnedFd> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(Error::io(format!("open {path}")))
}

impl Netlink {
    /// A netlink connection in this thread's network namespace.
    pub fn new() -> Result<Netlink> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(Error::io("start netlink runtime"))?;
        let handle = rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok::<_, std::io::Error>(handle)
        });
        let handle = handle.map_err(Error::io("open netlink socket"))?;
        Ok(Netlink { rt, handle })
    }

    /// A connection inside the network namespace of process `pid`.
    pub fn in_netns_of(pid: i32) -> Result<Netlink> {
        let here = open_ns("/proc/thread-self/ns/net")?;
        let there = open_ns(&format!("/proc/{pid}/ns/net"))?;
        setns(there.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netlink {
            op: format!("enter the network namespace of {pid}"),
            errno: Some(e),
            message: e.desc().into(),
        })?;
        let made = Netlink::new();
        setns(here.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netlink {
            op: "return to the host network namespace".into(),
            errno: Some(e),
            message: e.desc().into(),
        })?;
        made
    }

    /// The index of link `name`, if it exists.
    pub fn index(&self, name: &str) -> Result<Option<u32>> {
        let h = self.handle.clone();
        let name = name.to_string();
        self.rt.block_on(async move {
            let mut links = h.link().get().match_name(name.clone()).execute();
            match links.try_next().await {
                Ok(Some(l)) => Ok(Some(l.header.index)),
                Ok(None) => Ok(None),
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => {
                    Ok(None)
                }
                Err(e) => Err(Error::netlink(format!("look up link {name}"))(e)),
            }
        })
    }

    /// The IPv4 addresses of link `name` with their prefix lengths
    /// (`172.17.0.1/16`); `None` when there is no such link.
    pub fn ipv4_addresses(&self, name: &str) -> Result<Option<Vec<Ipv4Net>>> {
        let Some(idx) = self.index(name)? else {
            return Ok(None);
        };
        let h = self.handle.clone();
        let op = format!("list the addresses of {name}");
        self.rt.block_on(async move {
            let mut msgs = h.address().get().set_link_index_filter(idx).execute();
            let mut out = Vec::new();
            while let Some(msg) = msgs.try_next().await.map_err(Error::netlink(op.clone()))? {
                for attr in &msg.attributes {
                    if let AddressAttribute::Address(IpAddr::V4(a)) = attr {
                        let net = Ipv4Net::new(*a, msg.header.prefix_len).map_err(|e| {
                            Error::BadAddress {
                                link: name.to_string(),
                                address: a.to_string(),
                                reason: e.to_string(),
                            }
                        })?;
                        if !out.contains(&net) {
                            out.push(net);
                        }
                    }
                }
            }
            Ok(Some(out))
        })
    }

    /// Makes bridge `name` with address `gateway/prefix` and brings it up,
    /// unless it exists. Returns whether it was created. A bridge that exists
    /// must have that address: a container attached to it would otherwise
    /// route through a gateway nobody answers for.
    pub fn ensure_bridge(&self, name: &str, gateway: Ipv4Addr, subnet: &Ipv4Net) -> Result<bool> {
        if let Some(found) = self.ipv4_addresses(name)? {
            let wanted = Ipv4Net::new(gateway, subnet.prefix_len())
                .map_err(|e| Error::Invalid(format!("gateway {gateway}: {e}")))?;
            if !found.contains(&wanted) {
                return Err(Error::BridgeAddress {
                    bridge: name.to_string(),
                    found,
                    wanted,
                });
            }
            return Ok(false);
        }
        let h = self.handle.clone();
        self.rt
            .block_on(h.link().add(LinkBridge::new(name).build()).execute())
            .map_err(Error::netlink(format!("create bridge {name}")))?;
        let idx = self.index(name)?.ok_or_else(|| Error::LinkNotFound {
            what: "bridge",
            name: name.to_string(),
        })?;
        self.rt
            .block_on(
                h.address()
                    .add(idx, IpAddr::V4(gateway), subnet.prefix_len())
                    .execute(),
            )
            .map_err(Error::netlink(format!("address bridge {name}")))?;
        self.rt
            .block_on(
                h.link()
                    .set(LinkUnspec::new_with_index(idx).up().build())
                    .execute(),
            )
            .map_err(Error::netlink(format!("bring up {name}")))?;
        Ok(true)
    }

    /// Deletes link `name`; a missing link is not an error.
    pub fn delete(&self, name: &str) -> Result<()> {
        let Some(idx) = self.index(name)? else {
            return Ok(());
        };
        let h = self.handle.clone();
        match self.rt.block_on(h.link().del(idx).execute()) {
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => Ok(()),
            r => r.map_err(Error::netlink(format!("delete link {name}"))),
        }
    }

    /// Creates the veth pair `host`/`peer` in one request: `host` attached
    /// to `bridge` and up, `peer` made directly in the network namespace of
    /// `pid`. (Moving a link between namespaces afterwards costs an RCU grace
    /// period, ~15 ms.) A stale `host` of the same name (a namespace the
    /// kernel has not finished destroying) is removed first.
    pub fn add_veth(&self, bridge: &str, host: &str, peer: &str, pid: i32) -> Result<()> {
        let br = self.index(bridge)?.ok_or_else(|| Error::LinkNotFound {
            what: "bridge",
            name: bridge.to_string(),
        })?;
        let mut msg = LinkVeth::new(host, peer).controller(br).up().build();
        for attr in msg.attributes.iter_mut() {
            if let LinkAttribute::LinkInfo(infos) = attr {
                for info in infos.iter_mut() {
                    if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = info {
                        p.attributes.push(LinkAttribute::NetNsPid(pid as u32));
                    }
                }
            }
        }
        let h = self.handle.clone();
        let create = |m| self.rt.block_on(h.link().add(m).execute());
        match create(msg.clone()) {
            Err(rtnetlink::Error::NetlinkError(e))
                if e.raw_code() == -(nix::errno::Errno::EEXIST as i32) =>
            {
                self.delete(host)?;
                create(msg)
            }
            r => r,
        }
        .map_err(Error::netlink(format!("create veth {host} on {bridge}")))
    }

    /// Inside a container's namespace: renames `peer` to `ifname`, gives it
    /// `ip/prefix` and `mac`, brings it and `lo` up and, when `gateway` is
    /// given, routes everything through it.
    pub fn configure_inside(
        &self,
        peer: &str,
        ifname: &str,
        ip: Ipv4Addr,
        prefix: u8,
        mac: [u8; 6],
        gateway: Option<Ipv4Addr>,
    ) -> Result<()> {
        let h = self.handle.clone();
        let idx = self.index(peer)?.ok_or_else(|| Error::LinkNotFound {
            what: "the container's link",
            name: peer.to_string(),
        })?;
        self.rt
            .block_on(
                h.link()
                    .set(
                        LinkUnspec::new_with_index(idx)
                            .name(ifname.to_string())
                            .address(mac.to_vec())
                            .build(),
                    )
                    .execute(),
            )
            .map_err(Error::netlink(format!("rename {peer} to {ifname}")))?;
        self.rt
            .block_on(h.address().add(idx, IpAddr::V4(ip), prefix).execute())
            .map_err(Error::netlink(format!("address {ifname}")))?;
        self.rt
            .block_on(
                h.link()
                    .set(LinkUnspec::new_with_index(idx).up().build())
                    .execute(),
            )
            .map_err(Error::netlink(format!("bring up {ifname}")))?;
        self.up("lo")?;
        if let Some(gw) = gateway {
            self.rt
                .block_on(
                    h.route()
                        .add(RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build())
                        .execute(),
                )
                .map_err(Error::netlink(format!("default route via {gw}")))?;
        }
        Ok(())
    }

    /// Brings link `name` up.
    pub fn up(&self, name: &str) -> Result<()> {
        let idx = self.index(name)?.ok_or_else(|| Error::LinkNotFound {
            what: "link",
            name: name.to_string(),
        })?;
        let h = self.handle.clone();
        self.rt
            .block_on(
                h.link()
                    .set(LinkUnspec::new_with_index(idx).up().build())
                    .execute(),
            )
            .map_err(Error::netlink(format!("bring up {name}")))
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

/// Sets a sysctl under /proc/sys (`net/ipv4/ip_forward`), if not already set.
pub fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{key}");
    if std::fs::read_to_string(&path)
        .map(|v| v.trim() == value)
        .unwrap_or(false)
    {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(Error::io(format!("write {path}")))
}
