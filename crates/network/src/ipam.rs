//! IPv4 address management: choosing a subnet that clashes with nothing on
//! the host, and handing out addresses from it.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Where default subnets come from, in order: docker's 172.17-31.0.0/16,
/// then 10.88-10.99.0.0/16.
pub fn candidate_subnets() -> impl Iterator<Item = Ipv4Net> {
    let docker = (17..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let tens = (88..=99).map(|b| Ipv4Net::new(Ipv4Addr::new(10, b, 0, 0), 16));
    docker.chain(tens).filter_map(|n| n.ok())
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first candidate subnet that overlaps none of `taken` (routes and
/// other networks). The default route (0.0.0.0/0) does not count.
pub fn choose_subnet(taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    candidate_subnets().find(|c| {
        !taken
            .iter()
            .filter(|t| t.prefix_len() > 0)
            .any(|t| overlaps(c, t))
    })
}

/// The gateway of a subnet: its first host address.
pub fn gateway(subnet: &Ipv4Net) -> Ipv4Addr {
    subnet.hosts().next().unwrap_or(subnet.network())
}

/// The lowest free host address of `subnet`, never the gateway.
pub fn allocate(subnet: &Ipv4Net, gateway: Ipv4Addr, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    allocate_in(subnet, None, gateway, used)
}

/// The lowest free host address of `subnet` within `range` (docker's
/// `--ip-range`, a part of the subnet containers' addresses come from),
/// never the gateway.
pub fn allocate_in(
    subnet: &Ipv4Net,
    range: Option<&Ipv4Net>,
    gateway: Ipv4Addr,
    used: &HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    subnet
        .hosts()
        .find(|a| *a != gateway && !used.contains(a) && range.is_none_or(|r| r.contains(a)))
}

/// Whether `name` can be a network interface's name (the kernel's rule:
/// 1 to 15 bytes, no '/', no whitespace, not "." or "..").
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// The IPv4 routes of this network namespace (from /proc/net/route).
pub fn host_routes() -> Vec<Ipv4Net> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_routes(&text)
}

fn parse_routes(text: &str) -> Vec<Ipv4Net> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = Ipv4Addr::from(hex(f.get(1)?)?);
            let mask = Ipv4Addr::from(hex(f.get(7)?)?);
            Ipv4Net::with_netmask(dest, mask).ok()
        })
        .collect()
}

/// A docker-style MAC for an address: 02:42 followed by the address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_avoid_routes_and_other_networks() {
        assert_eq!(choose_subnet(&[]), Some(net("172.17.0.0/16")));
        let taken = [net("0.0.0.0/0"), net("172.17.5.0/24"), net("172.16.0.0/12")];
        assert_eq!(choose_subnet(&taken[..2]), Some(net("172.18.0.0/16")));
        assert_eq!(choose_subnet(&taken), Some(net("10.88.0.0/16")));
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.88.1.0/24")));
        assert!(!overlaps(&net("10.88.0.0/16"), &net("10.89.0.0/24")));
    }

    #[test]
    fn addresses_are_unique_and_skip_the_gateway() {
        let s = net("10.89.0.0/29");
        let gw = gateway(&s);
        assert_eq!(gw, Ipv4Addr::new(10, 89, 0, 1));
        let mut used = HashSet::new();
        let mut got = Vec::new();
        while let Some(a) = allocate(&s, gw, &used) {
            used.insert(a);
            got.push(a.octets()[3]);
        }
        assert_eq!(got, vec![2, 3, 4, 5, 6]);
        used.remove(&Ipv4Addr::new(10, 89, 0, 4));
        assert_eq!(allocate(&s, gw, &used), Some(Ipv4Addr::new(10, 89, 0, 4)));
    }

    #[test]
    fn ranges_and_reserved_addresses() {
        let s = net("10.90.0.0/24");
        let gw = gateway(&s);
        let range = net("10.90.0.128/25");
        let mut used = HashSet::new();
        assert_eq!(
            allocate_in(&s, Some(&range), gw, &used),
            Some(Ipv4Addr::new(10, 90, 0, 128))
        );
        used.insert(Ipv4Addr::new(10, 90, 0, 128));
        assert_eq!(
            allocate_in(&s, Some(&range), gw, &used),
            Some(Ipv4Addr::new(10, 90, 0, 129))
        );
        let tiny = net("10.90.0.254/31");
        used.insert(Ipv4Addr::new(10, 90, 0, 254));
        assert_eq!(allocate_in(&s, Some(&tiny), gw, &used), None);
        assert!(valid_ifname("br-web") && valid_ifname("a234567890abcde"));
        assert!(!valid_ifname("a234567890abcdef") && !valid_ifname("a/b") && !valid_ifname(""));
    }

    #[test]
    fn reads_proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            parse_routes(text),
            vec![net("0.0.0.0/0"), net("192.168.2.0/24")]
        );
    }
}
