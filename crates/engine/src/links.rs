//! docker's legacy links (`--link NAME[:ALIAS]`): the linking container
//! gets an /etc/hosts entry for the linked one (`IP ALIAS HOSTNAME NAME`),
//! and on the default bridge docker's environment variables for it
//! (`ALIAS_NAME`, `ALIAS_PORT_80_TCP_ADDR`, ..., `ALIAS_ENV_X`). The linked
//! container must be running when the linking one starts, and both must be
//! on a network they share.

use serde::{Deserialize, Serialize};

use crate::config::{ContainerOptions, NetworkMode};
use crate::containers::ContainerRecord;
use crate::error::{Error, Result};
use crate::Engine;

/// One `--link`: the container named, and the name it is known by here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub name: String,
    pub alias: String,
}

impl Link {
    /// `NAME[:ALIAS]` (a leading `/` is dropped, as docker drops it).
    pub fn parse(s: &str) -> Result<Link> {
        let (name, alias) = s.split_once(':').unwrap_or((s, s));
        let name = name.trim_start_matches('/');
        let alias = alias.trim_start_matches('/');
        if name.is_empty() || alias.is_empty() || alias.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "invalid argument \"{s}\" for \"--link\" flag: bad format for links: {s}"
            )));
        }
        Ok(Link {
            name: name.to_string(),
            alias: alias.to_string(),
        })
    }
}

/// What the linking container learns about a linked one.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub alias: String,
    /// The linked container's name, without `/`.
    pub name: String,
    pub ip: std::net::Ipv4Addr,
    /// `80/tcp`-style exposed ports.
    pub ports: Vec<String>,
    /// The linked container's environment (image's and its own `-e`).
    pub env: Vec<String>,
}

/// docker's link variables for `t`, seen from container `me` (its name).
pub(crate) fn env_for(me: &str, t: &Target) -> Vec<String> {
    let prefix: String = t
        .alias
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut out = vec![format!("{prefix}_NAME=/{me}/{}", t.alias)];
    let mut ports: Vec<(u16, String)> = t
        .ports
        .iter()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            Some((n.parse().ok()?, proto.to_string()))
        })
        .collect();
    ports.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| (a.1 != "tcp").cmp(&(b.1 != "tcp")))
    });
    ports.dedup();
    if let Some((n, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{}:{n}", t.ip));
    }
    for (n, proto) in &ports {
        let p = format!("{prefix}_PORT_{n}_{}", proto.to_ascii_uppercase());
        out.push(format!("{p}={proto}://{}:{n}", t.ip));
        out.push(format!("{p}_ADDR={}", t.ip));
        out.push(format!("{p}_PORT={n}"));
        out.push(format!("{p}_PROTO={proto}"));
    }
    for e in &t.env {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        // As docker: what every container has says nothing about the link.
        if matches!(k, "HOME" | "PATH" | "HOSTNAME") || k.is_empty() {
            continue;
        }
        out.push(format!("{prefix}_ENV_{k}={v}"));
    }
    out
}

impl Engine {
    /// At create: links need a bridge network and a container to link to.
    pub(crate) fn check_links(&self, opts: &ContainerOptions) -> Result<()> {
        if opts.links.is_empty() {
            return Ok(());
        }
        match &opts.network {
            NetworkMode::Host => {
                return Err(Error::InvalidArgument(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior".into(),
                ))
            }
            NetworkMode::None | NetworkMode::Container(_) => {
                return Err(Error::InvalidArgument(
                    "conflicting options: container type network can't be used with links. This would result in undefined behavior".into(),
                ))
            }
            _ => {}
        }
        for l in &opts.links {
            self.containers.find(&l.name).map_err(|_| {
                Error::InvalidArgument(format!("could not get container for {}", l.name))
            })?;
        }
        Ok(())
    }

    /// Every link of `rec`, resolved: each linked container must be running
    /// on a network `rec` is on (its own, or one `network connect` added).
    pub(crate) fn link_targets(&self, rec: &ContainerRecord) -> Result<Vec<Target>> {
        if rec.options.links.is_empty() {
            return Ok(Vec::new());
        }
        let nets = self.container_networks(rec)?;
        if nets.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for l in &rec.options.links {
            let linked = self.containers.find(&l.name)?;
            if !linked.state.status.is_active() {
                return Err(Error::Conflict(format!(
                    "Cannot link to a non running container: /{} AS /{}/{}",
                    linked.name, rec.name, l.alias
                )));
            }
            let ep = linked
                .state
                .endpoints
                .iter()
                .find(|e| nets.iter().any(|n| n.id == e.network_id))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "Cannot link to /{}, as it does not belong to the network {}",
                        linked.name, nets[0].name
                    ))
                })?;
            let image = self.images.resolve(&linked.image_id)?;
            let cfg = image.config.config().clone().unwrap_or_default();
            let mut ports: Vec<String> = cfg.exposed_ports().clone().unwrap_or_default();
            for e in &linked.options.expose {
                ports.extend(crate::config::parse_expose(e)?);
            }
            let env = crate::spec::environment(
                cfg.env().as_deref().unwrap_or_default(),
                &linked.options.env,
                &[],
            );
            out.push(Target {
                alias: l.alias.clone(),
                name: linked.name.clone(),
                ip: ep.ip,
                ports,
                env,
            });
        }
        Ok(out)
    }

    /// The link variables a container starts with: docker sets them on the
    /// default bridge only (user networks resolve names instead).
    pub(crate) fn link_env(&self, rec: &ContainerRecord) -> Result<Vec<String>> {
        if rec.options.network != NetworkMode::Bridge {
            // Still checked: a linked container must be running.
            self.link_targets(rec)?;
            return Ok(Vec::new());
        }
        Ok(self
            .link_targets(rec)?
            .iter()
            .flat_map(|t| env_for(&rec.name, t))
            .collect())
    }

    /// `rm --link /CONTAINER/ALIAS`: the link goes, both containers stay
    /// (it takes effect at the container's next start).
    pub fn remove_link(&self, path: &str) -> Result<()> {
        let bad = || {
            Error::InvalidArgument(format!(
                "Conflict, cannot remove the default link name: {path}"
            ))
        };
        let (owner, alias) = path
            .trim_start_matches('/')
            .split_once('/')
            .ok_or_else(bad)?;
        self.update(owner, |r| {
            let before = r.options.links.len();
            r.options.links.retain(|l| l.alias != alias);
            if r.options.links.len() == before {
                return Err(Error::InvalidArgument(format!("No such link: {path}")));
            }
            Ok(())
        })
        .map(drop)
    }

    /// /etc/hosts lines for `rec`'s links: `IP ALIAS HOSTNAME NAME`.
    pub(crate) fn link_hosts(&self, rec: &ContainerRecord) -> String {
        let mut out = String::new();
        for t in self.link_targets(rec).unwrap_or_default() {
            let hostname = self
                .containers
                .find(&t.name)
                .ok()
                .map(|c| {
                    c.options
                        .hostname
                        .clone()
                        .unwrap_or_else(|| c.id[..12].to_string())
                })
                .unwrap_or_default();
            let mut names = vec![t.alias.clone()];
            if !hostname.is_empty() && hostname != t.alias {
                names.push(hostname);
            }
            if t.name != t.alias {
                names.push(t.name.clone());
            }
            out.push_str(&format!("{}\t{}\n", t.ip, names.join(" ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let l = Link::parse("db:database").unwrap();
        assert_eq!((l.name.as_str(), l.alias.as_str()), ("db", "database"));
        let l = Link::parse("/db").unwrap();
        assert_eq!((l.name.as_str(), l.alias.as_str()), ("db", "db"));
        assert!(Link::parse(":x").is_err());
        assert!(Link::parse("db:").is_err());
    }

    #[test]
    fn docker_s_variables() {
        let t = Target {
            alias: "my-db".into(),
            name: "db".into(),
            ip: "172.17.0.2".parse().unwrap(),
            ports: vec!["5432/tcp".into(), "53/udp".into()],
            env: vec!["PATH=/bin".into(), "PASSWORD=x=y".into()],
        };
        let env = env_for("web", &t);
        assert_eq!(
            env,
            vec![
                "MY_DB_NAME=/web/my-db",
                "MY_DB_PORT=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_ENV_PASSWORD=x=y",
            ]
        );
    }
}
