//! Networks: the default bridge and user-defined ones, address leases,
//! published ports, and the /etc/hosts entries containers on a user network
//! get for each other.
//!
//! A network is a JSON record under `<root>/networks/`. A container's
//! endpoints (its address on each network) and published ports live in its
//! state while it runs, written under the state lock: an address is free when
//! no running container's record holds it, so leases come back when the
//! container's exit is recorded, and concurrent starts never share one.
//! Kernel objects (bridges, nftables) are shared by every Berth state root on
//! the host, so creating them holds a host-wide lock.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_network::netlink::{self, Netlink};
use berth_network::nft::{self, Dnat};
use berth_network::ports::{PortMapping, Proto};
use berth_network::{ipam, Ipv4Net};
use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};

use crate::containers::ContainerRecord;
use crate::error::{Error, Result};
use crate::{Engine, NetworkMode, Status};

/// The name of the default network, as docker calls it.
pub const DEFAULT_NETWORK: &str = "bridge";
const HOST_LOCK: &str = "/run/lock/berth-network.lock";
/// Where `run -p CONTAINER_PORT` picks host ports from (docker's range).
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The bridge's interface name.
    pub bridge: String,
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `--ip-range`: the part of the subnet containers' addresses come from.
    #[serde(default)]
    pub ip_range: Option<Ipv4Net>,
    /// `--aux-address NAME=IP`: addresses never given to a container.
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// `--internal`: no route out, no masquerade, nothing forwarded in.
    #[serde(default)]
    pub internal: bool,
    /// `-o KEY=VALUE` driver options (com.docker.network.bridge.name).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// A container's address on one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub bridge: String,
    /// The host end of the veth pair.
    pub veth: String,
    pub aliases: Vec<String>,
    /// On an internal network: no default route through its gateway.
    #[serde(default)]
    pub internal: bool,
}

impl Endpoint {
    /// Container `id`'s endpoint number `index`, at `ip` on `n`.
    fn new(n: &Network, ip: Ipv4Addr, id: &str, index: usize, aliases: Vec<String>) -> Endpoint {
        Endpoint {
            network_id: n.id.clone(),
            network: n.name.clone(),
            ip,
            prefix: n.subnet.prefix_len(),
            gateway: n.gateway,
            mac: ipam::mac_for(ip)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            bridge: n.bridge.clone(),
            veth: format!("vb{}{index}", &id[..10]),
            aliases,
            internal: n.internal,
        }
    }
}

/// A running container's endpoints and published ports, as kept beside its
/// record (see `Engine::note_held`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Held {
    endpoints: Vec<Endpoint>,
    ports: Vec<PublishedPort>,
}

const HELD_FILE: &str = "network.json";

/// A published port of a running container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
    pub container_ip: Ipv4Addr,
}

impl PublishedPort {
    fn dnat(&self) -> Dnat {
        Dnat {
            host_ip: self.host_ip,
            host_port: self.host_port,
            proto: self.proto,
            to: self.container_ip,
            to_port: self.container_port,
        }
    }

    /// `0.0.0.0:4000` (docker's `port` output).
    pub fn host(&self) -> String {
        format!(
            "{}:{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port
        )
    }
}

/// A container's leased endpoints and ports, with the netlink connection
/// that ensured their bridges and will wire them.
#[derive(Default)]
pub(crate) struct Lease {
    pub netlink: Option<Netlink>,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<PublishedPort>,
    /// Set once the ports are published: a start that failed before must
    /// not withdraw them (the map's keys may be another state root's).
    pub published: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub labels: BTreeMap<String, String>,
    /// `--ip-range`, inside the subnet.
    pub ip_range: Option<Ipv4Net>,
    /// `--aux-address NAME=IP`, inside the subnet.
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    pub internal: bool,
    /// `-o KEY=VALUE`: com.docker.network.bridge.name (the bridge's interface
    /// name) is honoured; other keys are refused.
    pub options: BTreeMap<String, String>,
}

/// The driver options `network create -o` takes.
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

fn net_err(e: berth_network::Error) -> Error {
    Error::Network(e)
}

fn host_lock() -> Result<Flock<fs::File>> {
    let path = PathBuf::from(HOST_LOCK);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    crate::lock_file(&path)
}

#[derive(Debug, Clone)]
pub(crate) struct NetworkStore {
    dir: PathBuf,
}

impl NetworkStore {
    pub(crate) fn open(root: &std::path::Path) -> Result<NetworkStore> {
        let dir = root.join("networks");
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        Ok(NetworkStore { dir })
    }

    fn list(&self) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(Error::io("read", &self.dir))? {
            let p = e.map_err(Error::io("read", &self.dir))?.path();
            if p.extension().is_some_and(|x| x == "json") {
                let data = fs::read(&p).map_err(Error::io("read", &p))?;
                let n: Network = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
                    path: p.clone(),
                    message: e.to_string(),
                })?;
                out.push(n);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn find(&self, key: &str) -> Result<Network> {
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
            return Ok(n.clone());
        }
        let m: Vec<&Network> = all.iter().filter(|n| n.id.starts_with(key)).collect();
        match m[..] {
            [one] if !key.is_empty() => Ok(one.clone()),
            _ => Err(Error::NetworkNotFound(key.to_string())),
        }
    }

    fn save(&self, n: &Network) -> Result<()> {
        let path = self.dir.join(format!("{}.json", n.id));
        let json = serde_json::to_vec_pretty(n).map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(berth_image::write_atomic(&path, &json)?)
    }

    fn remove(&self, n: &Network) -> Result<()> {
        let path = self.dir.join(format!("{}.json", n.id));
        fs::remove_file(&path).map_err(Error::io("remove", &path))
    }
}

/// Makes the kernel side of a network exist: bridge, forwarding, NAT sets.
fn ensure_kernel(nl: &Netlink, n: &Network) -> Result<()> {
    let created = nl
        .ensure_bridge(&n.bridge, n.gateway, &n.subnet)
        .map_err(|e| bridge_err(n, e))?;
    if !created {
        return Ok(());
    }
    let done = (|| {
        netlink::sysctl("net/ipv4/ip_forward", "1")?;
        // Lets localhost reach published ports (DNAT from 127.0.0.1).
        netlink::sysctl(&format!("net/ipv4/conf/{}/route_localnet", n.bridge), "1")?;
        nft::ensure_table()?;
        nft::add_network(&n.bridge, &n.subnet, n.internal)
    })();
    if let Err(e) = done {
        let _ = nl.delete(&n.bridge);
        return Err(net_err(e));
    }
    Ok(())
}

/// What docker checks of `--ip-range`, `--aux-address` and `-o` before a
/// network is made: ranges and auxiliary addresses need `--subnet` and must
/// lie in it, option keys must be ones the bridge driver knows.
fn check_ipam(req: &NetworkRequest) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidArgument(m));
    for (k, v) in &req.options {
        match k.as_str() {
            BRIDGE_NAME_OPTION if !ipam::valid_ifname(v) => {
                return bad(format!(
                    "invalid bridge name {v:?}: an interface name of 1 to 15 characters"
                ));
            }
            BRIDGE_NAME_OPTION => {}
            other => {
                return bad(format!(
                    "network option {other:?} is not supported (com.docker.network.bridge.name is)"
                ))
            }
        }
    }
    if req.ip_range.is_none() && req.aux_addresses.is_empty() {
        return Ok(());
    }
    let Some(subnet) = req.subnet.map(|s| s.trunc()) else {
        return bad("invalid pool request: an --ip-range or --aux-address needs a --subnet".into());
    };
    if let Some(r) = req.ip_range {
        if !subnet.contains(&r.trunc()) {
            return bad(format!("no matching subnet for range {r}"));
        }
    }
    for (name, ip) in &req.aux_addresses {
        if !subnet.contains(ip) {
            return bad(format!("no matching subnet for aux-address {name}={ip}"));
        }
    }
    Ok(())
}

/// The subnet (the one asked for, or the first private /16 that overlaps
/// none of `taken`) and gateway of a new network.
fn addressing(req: &NetworkRequest, taken: &[Ipv4Net]) -> Result<(Ipv4Net, Ipv4Addr)> {
    let subnet = match req.subnet {
        Some(s) => {
            let s = s.trunc();
            if let Some(t) = taken
                .iter()
                .filter(|t| t.prefix_len() > 0)
                .find(|t| ipam::overlaps(&s, t))
            {
                return Err(Error::Conflict(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({s} overlaps {t})"
                )));
            }
            if s.prefix_len() > 30 {
                return Err(Error::InvalidArgument(format!("subnet {s} is too small")));
            }
            s
        }
        None => ipam::choose_subnet(taken).ok_or_else(|| {
            Error::Conflict("could not find an available, non-overlapping IPv4 address pool".into())
        })?,
    };
    let gateway = match req.gateway {
        Some(g) if subnet.contains(&g) => g,
        Some(g) => {
            return Err(Error::InvalidArgument(format!(
                "gateway {g} is not in subnet {subnet}"
            )))
        }
        None => ipam::gateway(&subnet),
    };
    Ok((subnet, gateway))
}

/// A bridge that exists with another address than the network's gateway is
/// a conflict the user must resolve: bridges are host-wide, so another state
/// root (or an earlier one, since removed) may have made it.
fn bridge_err(n: &Network, e: berth_network::Error) -> Error {
    let berth_network::Error::BridgeAddress { bridge, found, .. } = &e else {
        return net_err(e);
    };
    let has = match found.first() {
        Some(a) => format!("subnet {} (address {a})", a.trunc()),
        None => "no IPv4 address".into(),
    };
    let advice = if n.name == DEFAULT_NETWORK {
        format!(
            "give this state root a bridge of its own with --bridge NAME, or delete {bridge} \
             (ip link delete {bridge}) when nothing uses it"
        )
    } else {
        format!("delete {bridge} (ip link delete {bridge}) when nothing uses it")
    };
    Error::Conflict(format!(
        "bridge {bridge} exists with {has}, but network {} here has subnet {} \
         (gateway {}): containers attached to it could not reach their gateway; {advice}",
        n.name, n.subnet, n.gateway
    ))
}

/// The subnet and gateway of the default network's bridge where it exists
/// with an address already (made by another state root on this host, or by
/// this one before its state was removed), as dockerd adopts docker0's.
fn adopted_bridge(nl: &Netlink, bridge: &str) -> Result<Option<(Ipv4Net, Ipv4Addr)>> {
    let found = nl.ipv4_addresses(bridge).map_err(net_err)?;
    Ok(found
        .and_then(|a| a.first().copied())
        .map(|a| (a.trunc(), a.addr())))
}

/// Removes a network's kernel side, going on past failures.
fn remove_kernel(n: &Network) -> Vec<berth_network::Error> {
    let mut errors = Vec::new();
    if let Err(e) = nft::remove_network(&n.bridge, &n.subnet) {
        errors.push(e);
    }
    match Netlink::new() {
        Ok(nl) => {
            if let Err(e) = nl.delete(&n.bridge) {
                errors.push(e);
            }
        }
        Err(e) => errors.push(e),
    }
    errors
}

/// Sets up a started container's endpoints and ports inside the namespace
/// of `pid` (the runtime's prestart hook).
fn setup(
    host: &Netlink,
    pid: i32,
    endpoints: &[Endpoint],
    ports: &[PublishedPort],
) -> Result<(), String> {
    let mut inside = None;
    for (i, ep) in endpoints.iter().enumerate() {
        let peer = format!("vp{}", &ep.veth[2..]);
        host.add_veth(&ep.bridge, &ep.veth, &peer, pid)
            .map_err(|e| e.to_string())?;
        if inside.is_none() {
            inside = Some(Netlink::in_netns_of(pid).map_err(|e| e.to_string())?);
        }
        let nl = inside.as_ref().ok_or("no netlink connection")?;
        let mac = parse_mac(&ep.mac).unwrap_or_else(|| ipam::mac_for(ep.ip));
        // The default route goes through the first network that has a way out.
        let router = endpoints.iter().position(|e| !e.internal);
        let gw = (router == Some(i)).then_some(ep.gateway);
        nl.configure_inside(&peer, &format!("eth{i}"), ep.ip, ep.prefix, mac, gw)
            .map_err(|e| e.to_string())?;
    }
    let dnats: Vec<Dnat> = ports.iter().map(PublishedPort::dnat).collect();
    if !dnats.is_empty() {
        let _lock = host_lock().map_err(|e| e.to_string())?;
        nft::ensure_table().map_err(|e| e.to_string())?;
        nft::add_ports(&dnats).map_err(|e| match e.kind() {
            // A port of the batch is published already (by another state root).
            berth_network::ErrorKind::AlreadyExists => Error::PortAllocated {
                ports: ports
                    .iter()
                    .map(PublishedPort::host)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .to_string(),
            _ => e.to_string(),
        })?;
    }
    Ok(())
}

/// Removes a container's veths and published ports, going on past failures.
/// With `veths` false the veths are left to the kernel, which destroys them
/// with the container's network namespace (deleting one here waits for an
/// RCU grace period, 15-20 ms on the exit path).
fn teardown(
    endpoints: &[Endpoint],
    ports: &[PublishedPort],
    veths: bool,
) -> Vec<berth_network::Error> {
    let mut errors = Vec::new();
    let dnats: Vec<Dnat> = ports.iter().map(PublishedPort::dnat).collect();
    if !dnats.is_empty() {
        if let Err(e) = nft::remove_ports(&dnats) {
            errors.push(e);
        }
    }
    if veths && !endpoints.is_empty() {
        match Netlink::new() {
            Ok(nl) => {
                for ep in endpoints {
                    // Usually gone with the container's namespace already.
                    if let Err(e) = nl.delete(&ep.veth) {
                        errors.push(e);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    errors
}

/// The lowest address of `n` no container but `except` holds.
fn free_ip(records: &[ContainerRecord], n: &Network, except: &str) -> Result<Ipv4Addr> {
    let used: HashSet<Ipv4Addr> = records
        .iter()
        .filter(|o| o.id != except)
        .flat_map(|o| o.state.endpoints.iter())
        .filter(|e| e.network_id == n.id)
        .map(|e| e.ip)
        .chain(n.aux_addresses.values().copied())
        .collect();
    ipam::allocate_in(&n.subnet, n.ip_range.as_ref(), n.gateway, &used).ok_or_else(|| {
        Error::Conflict(format!("no available IPv4 addresses on network {}", n.name))
    })
}

/// `02:42:0a:00:00:02` as bytes.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Rewrites a file a running container has bind-mounted (so it cannot be
/// replaced by a rename): unchanged content is left alone, and new content
/// is written over the old before the file is cut to its length, so a
/// process reading it meanwhile never finds it empty (truncating first
/// made a peer's name briefly unresolvable while another container started).
fn rewrite_in_place(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if fs::read(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(content)?;
    f.set_len(content.len() as u64)
}

/// `--ip`: the address asked for, if it is in the network's subnet, not its
/// gateway or network address, and free.
fn chosen_ip(
    records: &[ContainerRecord],
    n: &Network,
    except: &str,
    ip: Ipv4Addr,
) -> Result<Ipv4Addr> {
    if !n.subnet.contains(&ip) || ip == n.subnet.network() || ip == n.subnet.broadcast() {
        return Err(Error::InvalidArgument(format!(
            "no configured subnet or ip-range contain the IP address {ip}"
        )));
    }
    let used = ip == n.gateway
        || n.aux_addresses.values().any(|a| *a == ip)
        || records
            .iter()
            .filter(|o| o.id != except)
            .flat_map(|o| o.state.endpoints.iter())
            .any(|e| e.network_id == n.id && e.ip == ip);
    if used {
        return Err(Error::Conflict(format!("Address already in use: {ip}")));
    }
    Ok(ip)
}

/// Whether two published ports would take the same host port.
fn clash(a: &PublishedPort, b: &PortMapping) -> bool {
    a.proto == b.proto
        && a.host_port == b.host_port
        && (a.host_ip.is_none() || b.host_ip.is_none() || a.host_ip == b.host_ip)
}

/// Whether nothing on the host listens on `port`.
fn port_free(port: u16, proto: Proto) -> bool {
    match proto {
        Proto::Tcp => std::net::TcpListener::bind(("0.0.0.0", port)).is_ok(),
        Proto::Udp => std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok(),
    }
}

impl Engine {
    pub fn networks(&self) -> Result<Vec<Network>> {
        self.networks.list()
    }

    /// The ID of the built-in `host` or `none` network: random, made once
    /// per state root and kept (`<root>/networks/builtin/NAME`), as docker's
    /// daemon gives them IDs of their own.
    pub fn builtin_network_id(&self, name: &str) -> Result<String> {
        if !matches!(name, "host" | "none") {
            return Err(Error::NetworkNotFound(name.to_string()));
        }
        let dir = self.networks.dir.join("builtin");
        let path = dir.join(name);
        if let Ok(id) = fs::read_to_string(&path) {
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(id);
            }
        }
        let _lock = self.lock_containers()?;
        if let Ok(id) = fs::read_to_string(&path) {
            if id.len() == 64 {
                return Ok(id);
            }
        }
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let id = hex::encode(crate::random_bytes::<32>()?);
        berth_image::write_atomic(&path, id.as_bytes())?;
        Ok(id)
    }

    pub fn network(&self, key: &str) -> Result<Network> {
        if key == DEFAULT_NETWORK {
            if let Ok(n) = self.networks.find(key) {
                return Ok(n);
            }
            return self.default_network();
        }
        self.networks.find(key)
    }

    /// The default bridge network, created on first use.
    fn default_network(&self) -> Result<Network> {
        if let Ok(n) = self.networks.find(DEFAULT_NETWORK) {
            return Ok(n);
        }
        self.network_create(NetworkRequest {
            name: DEFAULT_NETWORK.into(),
            ..Default::default()
        })
    }

    /// Creates a bridge network; its subnet is the one asked for or the
    /// first private /16 that overlaps no route and no other network.
    pub fn network_create(&self, req: NetworkRequest) -> Result<Network> {
        if !crate::names::valid(&req.name) {
            return Err(Error::InvalidArgument(format!(
                "invalid network name \"{}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        if matches!(req.name.as_str(), "host" | "none") {
            return Err(Error::Conflict(format!(
                "{} is a pre-defined network and cannot be created",
                req.name
            )));
        }
        match req.driver.as_deref() {
            None | Some("bridge") => {}
            Some(d) => {
                return Err(Error::InvalidArgument(format!(
                    "network driver \"{d}\" is not supported (bridge is)"
                )))
            }
        }
        check_ipam(&req)?;
        let _host = host_lock()?;
        let _lock = self.lock_containers()?;
        let existing = self.networks.list()?;
        if let Some(bridge) = req.options.get(BRIDGE_NAME_OPTION) {
            let taken = existing.iter().any(|n| &n.bridge == bridge)
                || *bridge == self.config.bridge
                || Netlink::new()
                    .and_then(|nl| nl.index(bridge))
                    .map_err(net_err)?
                    .is_some();
            if taken {
                return Err(Error::Conflict(format!(
                    "bridge name {bridge} is already in use on this host"
                )));
            }
        }
        if let Some(n) = existing.iter().find(|n| n.name == req.name) {
            if n.name == DEFAULT_NETWORK {
                // Another command made the default network meanwhile.
                return Ok(n.clone());
            }
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let nl = Netlink::new().map_err(net_err)?;
        let adopted = if req.name == DEFAULT_NETWORK && req.subnet.is_none() {
            adopted_bridge(&nl, &self.config.bridge)?
        } else {
            None
        };
        if let Some((subnet, _)) = &adopted {
            if let Some(other) = existing.iter().find(|n| ipam::overlaps(subnet, &n.subnet)) {
                return Err(Error::Conflict(format!(
                    "bridge {} has subnet {subnet}, which overlaps network {} ({}) here",
                    self.config.bridge, other.name, other.subnet
                )));
            }
        }
        let (subnet, gateway) = match adopted {
            Some(a) => a,
            None => {
                let mut taken = ipam::host_routes();
                taken.extend(existing.iter().map(|n| n.subnet));
                addressing(&req, &taken)?
            }
        };
        let id = hex::encode(crate::random_bytes::<32>()?);
        let bridge = if req.name == DEFAULT_NETWORK {
            self.config.bridge.clone()
        } else if let Some(name) = req.options.get(BRIDGE_NAME_OPTION) {
            name.clone()
        } else {
            format!("br-{}", &id[..12])
        };
        let n = Network {
            name: req.name,
            id,
            driver: "bridge".into(),
            subnet,
            gateway,
            bridge,
            created: crate::now(),
            labels: req.labels,
            ip_range: req.ip_range,
            aux_addresses: req.aux_addresses,
            internal: req.internal,
            options: req.options,
        };
        ensure_kernel(&nl, &n)?;
        if let Err(e) = self.networks.save(&n) {
            // An adopted bridge is another state root's to remove.
            if adopted.is_none() {
                remove_kernel(&n);
            }
            return Err(e);
        }
        self.emit_network(&n, "create", None);
        Ok(n)
    }

    /// A network's event: its name and type as attributes, the container's
    /// ID for connect and disconnect, as docker's.
    fn emit_network(&self, n: &Network, action: &str, container: Option<&str>) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), n.name.clone());
        attrs.insert("type".to_string(), "bridge".to_string());
        if let Some(c) = container {
            attrs.insert("container".to_string(), c.to_string());
        }
        self.emit("network", action, &n.id, attrs);
    }

    /// The running containers with an endpoint on network `id`.
    fn network_users(&self, id: &str) -> Result<Vec<ContainerRecord>> {
        Ok(self
            .containers
            .list()?
            .into_iter()
            .filter(|r| r.state.endpoints.iter().any(|e| e.network_id == id))
            .collect())
    }

    /// Removes a user network no running container is connected to.
    pub fn network_remove(&self, key: &str) -> Result<String> {
        if matches!(key, "host" | "none" | DEFAULT_NETWORK) {
            return Err(Error::Conflict(format!(
                "{key} is a pre-defined network and cannot be removed"
            )));
        }
        let n = self.networks.find(key)?;
        if n.name == DEFAULT_NETWORK {
            return Err(Error::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        self.reap_orphans();
        let _host = host_lock()?;
        let _lock = self.lock_containers()?;
        let users = self.network_users(&n.id)?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.name,
                n.id,
                users
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let removed = berth_network::Error::all(remove_kernel(&n));
        self.networks.remove(&n)?;
        self.emit_network(&n, "destroy", None);
        removed?;
        Ok(n.name)
    }

    /// Removes every user network without running containers.
    pub fn network_prune(&self) -> Result<Vec<String>> {
        self.network_prune_filtered(&crate::filters::PruneFilter::default())
    }

    /// `network prune --filter until=/label=`: only the networks `filter` picks.
    pub fn network_prune_filtered(
        &self,
        filter: &crate::filters::PruneFilter,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in self.networks.list()? {
            if n.name == DEFAULT_NETWORK
                || !filter.matches(&n.created, &n.labels)
                || !self.network_users(&n.id)?.is_empty()
            {
                continue;
            }
            out.push(self.network_remove(&n.id)?);
        }
        Ok(out)
    }

    /// The networks a container joins, in order (the first one routes).
    pub(crate) fn container_networks(&self, rec: &ContainerRecord) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        match &rec.options.network {
            NetworkMode::Bridge => out.push(self.default_network()?),
            NetworkMode::Named(n) => out.push(self.networks.find(n)?),
            _ => return Ok(out),
        }
        for extra in &rec.options.extra_networks {
            let n = self.network(extra)?;
            if !out.iter().any(|o| o.id == n.id) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Checks at create time that the network mode can work.
    pub(crate) fn check_network(&self, opts: &crate::ContainerOptions) -> Result<()> {
        self.check_links(opts)?;
        match &opts.network {
            NetworkMode::Named(n) => self.networks.find(n).map(drop),
            NetworkMode::Container(c) => self.containers.find(c).map(drop),
            _ => Ok(()),
        }
    }

    /// Before a start: leases an address on each network and resolves the
    /// published ports, recorded in the container's state.
    pub(crate) fn lease(&self, rec: &ContainerRecord, exposed: &[String]) -> Result<Lease> {
        let nets = self.container_networks(rec)?;
        if nets.is_empty() {
            if !rec.options.publish.is_empty() && rec.options.network != NetworkMode::Host {
                tracing::warn!("published ports are ignored without a bridge network");
            }
            return Ok(Lease::default());
        }
        let netlink = Netlink::new().map_err(net_err)?;
        {
            let _host = host_lock()?;
            for n in &nets {
                ensure_kernel(&netlink, n)?;
            }
        }
        let mut wanted = rec.options.publish.clone();
        if rec.options.publish_all {
            for key in exposed {
                let (port, proto) = berth_network::ports::parse_exposed(key).map_err(net_err)?;
                if !wanted
                    .iter()
                    .any(|w| w.container_port == port && w.proto == proto)
                {
                    wanted.push(PortMapping {
                        host_ip: None,
                        host_port: 0,
                        container_port: port,
                        proto,
                    });
                }
            }
        }
        let (rec, out) = self.update(&rec.id, |r| {
            let others = self.records_with_leases()?;
            let mut endpoints = Vec::new();
            for (i, n) in nets.iter().enumerate() {
                let asked = match i {
                    0 => r.options.ip,
                    _ => r.options.extra_ips.get(&n.name).copied(),
                };
                let ip = match asked {
                    Some(ip) => chosen_ip(&others, n, &r.id, ip)?,
                    None => free_ip(&others, n, &r.id)?,
                };
                let mut aliases = if n.name == DEFAULT_NETWORK {
                    Vec::new()
                } else {
                    r.options.network_aliases.clone()
                };
                aliases.dedup();
                let mut e = Endpoint::new(n, ip, &r.id, i, aliases);
                if let Some(mac) = r.options.mac_address.as_ref().filter(|_| i == 0) {
                    e.mac = mac.to_ascii_lowercase();
                }
                endpoints.push(e);
            }
            let taken: Vec<PublishedPort> = others
                .iter()
                .filter(|o| o.id != r.id)
                .flat_map(|o| o.state.ports.iter().cloned())
                .collect();
            let mut ports: Vec<PublishedPort> = Vec::new();
            for w in &wanted {
                let mut w = w.clone();
                if w.host_port == 0 {
                    w.host_port = EPHEMERAL
                        .clone()
                        .find(|p| {
                            let mut c = w.clone();
                            c.host_port = *p;
                            !taken.iter().chain(ports.iter()).any(|t| clash(t, &c))
                                && port_free(*p, w.proto)
                        })
                        .ok_or_else(|| Error::Conflict("no free host port".into()))?;
                } else if taken.iter().chain(ports.iter()).any(|t| clash(t, &w)) {
                    return Err(Error::PortAllocated {
                        ports: format!(
                            "{}:{}",
                            w.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                            w.host_port
                        ),
                    });
                }
                ports.push(PublishedPort {
                    host_ip: w.host_ip,
                    host_port: w.host_port,
                    container_port: w.container_port,
                    proto: w.proto,
                    container_ip: endpoints[0].ip,
                });
            }
            r.state.endpoints = endpoints.clone();
            r.state.ports = ports.clone();
            Ok((endpoints, ports))
        })?;
        self.note_held(&rec);
        Ok(Lease {
            netlink: Some(netlink),
            endpoints: out.0,
            ports: out.1,
            published: Default::default(),
        })
    }

    /// The runtime hook that wires the leased endpoints into the container.
    pub(crate) fn prestart(lease: Lease) -> Option<berth_runtime::Prestart> {
        let nl = lease.netlink?;
        if lease.endpoints.is_empty() {
            return None;
        }
        Some(Box::new(move |pid| {
            setup(&nl, pid.as_raw(), &lease.endpoints, &lease.ports)?;
            lease
                .published
                .store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }))
    }

    /// Removes a container's veths and published ports.
    pub(crate) fn release_kernel(&self, endpoints: &[Endpoint], ports: &[PublishedPort]) {
        for e in teardown(endpoints, ports, true) {
            tracing::warn!("network teardown: {e}");
        }
    }

    /// At the exit of container `id`: its published ports go now; its veths
    /// go with its network namespace, unless a running container joined that
    /// namespace (`--network container:`) and keeps it alive.
    pub(crate) fn release_at_exit(
        &self,
        id: &str,
        endpoints: &[Endpoint],
        ports: &[PublishedPort],
    ) {
        // Only a container with veths needs the look at the others.
        let shared = !endpoints.is_empty()
            && self.containers.list().is_ok_and(|all| {
                all.iter().any(|o| {
                    o.id != id
                        && o.state.status.is_active()
                        && matches!(&o.options.network, NetworkMode::Container(c)
                        if self.containers.find(c).is_ok_and(|t| t.id == id))
                })
            });
        for e in teardown(endpoints, ports, shared) {
            tracing::warn!("network teardown: {e}");
        }
    }

    /// Removes a container's veths and ports and updates its peers' hosts
    /// files (its leases are given back with its record's state).
    pub(crate) fn release(&self, endpoints: &[Endpoint], ports: &[PublishedPort]) {
        self.release_kernel(endpoints, ports);
        let nets: Vec<String> = endpoints.iter().map(|e| e.network_id.clone()).collect();
        self.refresh_hosts(&nets);
    }

    /// The /etc/hosts lines a container gets: its own address and, on user
    /// networks, every running peer's name, aliases and short ID.
    pub(crate) fn hosts_entries(&self, rec: &ContainerRecord, hostname: &str) -> String {
        let mut out = String::new();
        for h in &rec.options.add_hosts {
            if let Some((name, ip)) = h.split_once(':') {
                out.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        if let Some(ep) = rec.state.endpoints.first() {
            out.push_str(&format!("{}\t{hostname}\n", ep.ip));
        }
        out.push_str(&self.link_hosts(rec));
        let user_nets: Vec<&Endpoint> = rec
            .state
            .endpoints
            .iter()
            .filter(|e| e.network != DEFAULT_NETWORK)
            .collect();
        if user_nets.is_empty() {
            return out;
        }
        for peer in self.containers.list().unwrap_or_default() {
            if peer.id == rec.id || !peer.state.status.is_active() {
                continue;
            }
            for pe in &peer.state.endpoints {
                if user_nets.iter().any(|e| e.network_id == pe.network_id) {
                    let mut names = vec![peer.name.clone()];
                    names.extend(pe.aliases.iter().cloned());
                    names.push(peer.id[..12].to_string());
                    out.push_str(&format!("{}\t{}\n", pe.ip, names.join(" ")));
                }
            }
        }
        out
    }

    /// Rewrites, in place, the /etc/hosts of running containers on these
    /// networks (the file is bind-mounted, so its inode must stay).
    pub(crate) fn refresh_hosts(&self, network_ids: &[String]) {
        if network_ids.is_empty() {
            return;
        }
        let Ok(_lock) = self.lock_containers() else {
            return;
        };
        for rec in self.containers.list().unwrap_or_default() {
            if !rec.state.status.is_active()
                || !rec
                    .state
                    .endpoints
                    .iter()
                    .any(|e| network_ids.contains(&e.network_id) && e.network != DEFAULT_NETWORK)
            {
                continue;
            }
            let path = self.run_dir(&rec.id).join("hosts");
            let hostname = rec
                .options
                .hostname
                .clone()
                .unwrap_or_else(|| rec.id[..12].to_string());
            let text = crate::etc::hosts_text(&self.hosts_entries(&rec, &hostname));
            if let Err(e) = rewrite_in_place(&path, text.as_bytes()) {
                tracing::debug!("update {}: {e}", path.display());
            }
        }
    }

    /// Writes what a starting container holds on the host (its endpoints
    /// and published ports) into its run directory too, beside its record:
    /// if the record is damaged, its ports can still be withdrawn. The file
    /// goes with the run directory when the container ends.
    fn note_held(&self, rec: &ContainerRecord) {
        let held = Held {
            endpoints: rec.state.endpoints.clone(),
            ports: rec.state.ports.clone(),
        };
        let path = self.run_dir(&rec.id).join(HELD_FILE);
        let written = serde_json::to_vec(&held)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                berth_image::replace_file(&path, &json).map_err(std::io::Error::other)
            });
        if let Err(e) = written {
            tracing::warn!("write {}: {e}", path.display());
        }
    }

    /// Every container record, a damaged one with the endpoints and ports
    /// its run directory says it holds: its address and ports stay taken
    /// until it is removed.
    fn records_with_leases(&self) -> Result<Vec<ContainerRecord>> {
        let mut all = self.containers.list()?;
        for r in all.iter_mut().filter(|r| r.damaged.is_some()) {
            let (endpoints, ports) = self.held_network(&r.id);
            r.state.endpoints = endpoints;
            r.state.ports = ports;
        }
        Ok(all)
    }

    /// What container `id`, whose record may be damaged, holds on the host
    /// as its run directory says (nothing once it has ended).
    pub(crate) fn held_network(&self, id: &str) -> (Vec<Endpoint>, Vec<PublishedPort>) {
        let path = self.run_dir(id).join(HELD_FILE);
        fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Held>(&b).ok())
            .map(|h| (h.endpoints, h.ports))
            .unwrap_or_default()
    }

    /// Heals containers whose monitor is gone (killed with SIGKILL): one
    /// that still runs gets a new monitor; one whose processes are gone too
    /// has its exit recorded (its code if its init is still a zombie, else
    /// unknown), and what it held is released.
    pub fn reap_orphans(&self) {
        let Ok(all) = self.containers.list() else {
            return;
        };
        for rec in all {
            if rec.state.status.is_active()
                && !crate::lifecycle::monitor_alive(rec.state.monitor_pid)
                && self.init_runs(&rec)
            {
                self.adopt_orphan(&rec.id);
                continue;
            }
            if rec.state.status.is_active()
                && !crate::lifecycle::monitor_alive(rec.state.monitor_pid)
                && !self.init_runs(&rec)
            {
                let settled = self.update(&rec.id, |r| {
                    if !r.state.status.is_active()
                        || crate::lifecycle::monitor_alive(r.state.monitor_pid)
                        || self.init_runs(r)
                    {
                        return Ok(None);
                    }
                    // One that waited to restart keeps the code of its last run.
                    if r.state.status != Status::Restarting {
                        r.state.exit_code = crate::lifecycle::zombie_exit_code(r.state.pid)
                            .unwrap_or(crate::EXIT_UNKNOWN);
                        if r.state.exit_code == crate::EXIT_UNKNOWN {
                            r.state.error = crate::containers::EXIT_UNKNOWN_WHY.into();
                        }
                    }
                    r.state.status = Status::Exited;
                    r.state.pid = 0;
                    r.state.monitor_pid = 0;
                    r.state.finished_at = Some(crate::now());
                    let held = (
                        std::mem::take(&mut r.state.endpoints),
                        std::mem::take(&mut r.state.ports),
                    );
                    Ok(Some(held))
                });
                if let Ok((_, Some((eps, ports)))) = settled {
                    self.release(&eps, &ports);
                    self.clean_after_monitor(&rec.id);
                }
            }
        }
    }

    /// What a killed monitor would have removed at its container's exit:
    /// the run directory, the cgroup (with anything left in it) and the
    /// socket.
    pub(crate) fn clean_after_monitor(&self, id: &str) {
        self.remove_run_dir(id);
        if let Ok(cg) = self.cgroup(id) {
            if cg.pids().is_ok_and(|p| !p.is_empty()) {
                let _ = cg.freeze(false);
                let _ = cg.kill_all();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while cg.pids().is_ok_and(|p| !p.is_empty()) && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            if let Err(e) = cg.remove() {
                tracing::warn!("remove cgroup of {id}: {e}");
            }
        }
        let sock = self
            .config
            .runroot
            .join("monitors")
            .join(format!("{id}.sock"));
        let _ = fs::remove_file(sock);
    }

    /// `network connect`: joins a container (now, if it runs) to a network.
    pub fn network_connect(&self, net: &str, key: &str, aliases: &[String]) -> Result<()> {
        self.network_connect_with(net, key, aliases, None, &[])
    }

    /// `network connect` with docker's `--ip` (an address of the network's
    /// subnet, kept for later starts) and `--link NAME[:ALIAS]`.
    pub fn network_connect_with(
        &self,
        net: &str,
        key: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
        links: &[crate::links::Link],
    ) -> Result<()> {
        let n = self.network(net)?;
        if let Some(ip) = ip {
            if n.name == DEFAULT_NETWORK {
                return Err(Error::InvalidArgument(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            chosen_ip(&self.records_with_leases()?, &n, "", ip)?;
        }
        for l in links {
            self.containers.find(&l.name).map_err(|_| {
                Error::InvalidArgument(format!("could not get container for {}", l.name))
            })?;
        }
        let rec = self.containers.find(key)?;
        if matches!(
            rec.options.network,
            NetworkMode::Host | NetworkMode::None | NetworkMode::Container(_)
        ) {
            return Err(Error::Conflict(format!(
                "container {} uses the network of its host, none or another container: it cannot be connected",
                rec.name
            )));
        }
        let primary = self.container_networks(&rec)?;
        if primary.iter().any(|p| p.id == n.id) {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        let (rec, ()) = self.update(&rec.id, |r| {
            r.options.extra_networks.push(n.name.clone());
            if let Some(ip) = ip {
                r.options.extra_ips.insert(n.name.clone(), ip);
            }
            for l in links {
                if !r.options.links.contains(l) {
                    r.options.links.push(l.clone());
                }
            }
            for a in aliases {
                if !r.options.network_aliases.contains(a) {
                    r.options.network_aliases.push(a.clone());
                }
            }
            Ok(())
        })?;
        self.emit_network(&n, "connect", Some(&rec.id));
        if rec.state.status != Status::Running || rec.state.pid <= 0 {
            return Ok(());
        }
        let host = Netlink::new().map_err(net_err)?;
        {
            let _host = host_lock()?;
            ensure_kernel(&host, &n)?;
        }
        let pid = rec.state.pid;
        let index = rec.state.endpoints.len();
        let (_, ep) = self.update(&rec.id, |r| {
            let ip = match ip {
                Some(ip) => chosen_ip(&self.records_with_leases()?, &n, &r.id, ip)?,
                None => free_ip(&self.records_with_leases()?, &n, "")?,
            };
            let ep = Endpoint::new(&n, ip, &r.id, index, r.options.network_aliases.clone());
            r.state.endpoints.push(ep.clone());
            Ok(ep)
        })?;
        let wired = (|| {
            let peer = format!("vp{}", &ep.veth[2..]);
            host.add_veth(&ep.bridge, &ep.veth, &peer, pid)
                .map_err(net_err)?;
            let inside = Netlink::in_netns_of(pid).map_err(net_err)?;
            inside
                .configure_inside(
                    &peer,
                    &format!("eth{index}"),
                    ep.ip,
                    ep.prefix,
                    ipam::mac_for(ep.ip),
                    None,
                )
                .map_err(net_err)
        })();
        if let Err(e) = wired {
            let _ = self.update(&rec.id, |r| {
                r.state.endpoints.retain(|x| x != &ep);
                Ok(())
            });
            self.release(std::slice::from_ref(&ep), &[]);
            return Err(e);
        }
        self.refresh_hosts(std::slice::from_ref(&n.id));
        Ok(())
    }

    /// `network disconnect`.
    pub fn network_disconnect(&self, net: &str, key: &str) -> Result<()> {
        let n = self.network(net)?;
        let rec = self.containers.find(key)?;
        let primary = match &rec.options.network {
            NetworkMode::Bridge => n.name == DEFAULT_NETWORK,
            NetworkMode::Named(p) => p == &n.name || p == &n.id,
            _ => false,
        };
        if primary {
            return Err(Error::Conflict(format!(
                "container {} joined {} with --network: it cannot be disconnected from it",
                rec.name, n.name
            )));
        }
        let (_, dropped) = self.update(&rec.id, |r| {
            let before = r.options.extra_networks.len();
            r.options
                .extra_networks
                .retain(|x| x != &n.name && x != &n.id);
            if before == r.options.extra_networks.len() {
                return Err(Error::Conflict(format!(
                    "container {} is not connected to network {}",
                    r.name, n.name
                )));
            }
            let (gone, kept): (Vec<Endpoint>, Vec<Endpoint>) =
                std::mem::take(&mut r.state.endpoints)
                    .into_iter()
                    .partition(|e| e.network_id == n.id);
            r.state.endpoints = kept;
            Ok(gone)
        })?;
        self.release(&dropped, &[]);
        self.emit_network(&n, "disconnect", Some(&rec.id));
        Ok(())
    }
}
