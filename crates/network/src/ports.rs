//! `-p` / `--publish` specs: `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`, with ranges.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port. `host_port` 0 means "pick a free one".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

fn invalid(msg: String) -> Error {
    Error::Invalid(msg)
}

fn port_range(s: &str, spec: &str, zero_ok: bool) -> Result<(u16, u16)> {
    let one = |p: &str| -> Result<u16> {
        let n: u32 = p
            .parse()
            .map_err(|_| invalid(format!("invalid port \"{p}\" in \"{spec}\"")))?;
        if n > 65535 || (n == 0 && !zero_ok) {
            return Err(invalid(format!(
                "invalid port \"{p}\" in \"{spec}\": ports are 1-65535"
            )));
        }
        Ok(n as u16)
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err(invalid(format!("invalid port range \"{s}\" in \"{spec}\"")));
            }
            Ok((a, b))
        }
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
    }
}

pub fn parse_proto(s: &str) -> Result<Proto> {
    match s {
        "" | "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        other => Err(invalid(format!("invalid proto: {other}"))),
    }
}

/// Parses one `-p` value into its mappings (several for a range).
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>> {
    let (addr, proto) = spec.rsplit_once('/').unwrap_or((spec, ""));
    let proto = parse_proto(proto)?;
    let parts: Vec<&str> = addr.split(':').collect();
    let (ip, host, container) = match parts[..] {
        [c] => (None, "", c),
        [h, c] => (None, h, c),
        [ip, h, c] => (Some(ip), h, c),
        _ => return Err(invalid(format!("invalid publish spec: \"{spec}\""))),
    };
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| invalid(format!("invalid IP address \"{ip}\" in \"{spec}\"")))?,
        ),
    };
    let (c0, c1) = port_range(container, spec, false)?;
    let (h0, h1) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host, spec, false)?
    };
    let count = c1 - c0;
    if !host.is_empty() && h1 - h0 != count && h0 != h1 {
        return Err(invalid(format!(
            "invalid ranges in \"{spec}\": host and container ranges differ in size"
        )));
    }
    Ok((0..=count)
        .map(|i| PortMapping {
            host_ip,
            host_port: match (host.is_empty(), h0 == h1) {
                (true, _) => 0,
                (false, true) if count == 0 => h0,
                // A single host port for a container range is docker's "any one
                // of"; here the host range must match.
                (false, _) => h0 + i,
            },
            container_port: c0 + i,
            proto,
        })
        .collect())
}

/// `80/tcp` (an image's ExposedPorts key) -> (80, tcp).
pub fn parse_exposed(key: &str) -> Result<(u16, Proto)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let (port, _) = port_range(p, key, false)?;
    Ok((port, parse_proto(proto)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let v = parse_publish(spec).unwrap();
        assert_eq!(v.len(), 1);
        v[0].clone()
    }

    #[test]
    fn publish_forms() {
        let m = one("4000:80");
        assert_eq!(
            (m.host_ip, m.host_port, m.container_port, m.proto),
            (None, 4000, 80, Proto::Tcp)
        );
        let m = one("127.0.0.1:4001:80");
        assert_eq!(m.host_ip, Some(Ipv4Addr::LOCALHOST));
        let m = one("4002:80/udp");
        assert_eq!((m.host_port, m.proto), (4002, Proto::Udp));
        assert_eq!(one("80").host_port, 0);
        assert_eq!(one("127.0.0.1::80").host_port, 0);
        let r = parse_publish("8000-8002:80-82").unwrap();
        assert_eq!(
            r.iter()
                .map(|m| (m.host_port, m.container_port))
                .collect::<Vec<_>>(),
            vec![(8000, 80), (8001, 81), (8002, 82)]
        );
    }

    #[test]
    fn publish_errors() {
        let err = |s: &str| parse_publish(s).unwrap_err().to_string();
        assert!(err("70000:80").contains("ports are 1-65535"));
        assert!(err("4000:0").contains("ports are 1-65535"));
        assert!(err("x:80").contains("invalid port"));
        assert!(err("4000:80/sctpx").contains("invalid proto"));
        assert!(err("1.2.3:4000:80").contains("invalid IP address"));
        assert!(err("8000-8001:80-83").contains("ranges differ"));
        assert!(err("a:b:c:d").contains("invalid publish spec"));
        assert_eq!(parse_exposed("80/tcp").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_exposed("53/udp").unwrap(), (53, Proto::Udp));
    }
}
