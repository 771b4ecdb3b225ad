//! `network create/ls/inspect/rm/prune/connect/disconnect`.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use berth_engine::{Engine, NetworkRequest};
use serde_json::json;

use crate::cli::{NetworkCommand, NetworkCreateArgs, NetworkLsArgs};
use crate::commands::report;
use crate::format;
use crate::template::Format;

pub fn dispatch(engine: &Engine, c: NetworkCommand) -> Result<i32> {
    match c {
        NetworkCommand::Create(a) => create(engine, *a),
        NetworkCommand::Ls(a) => ls(engine, a),
        NetworkCommand::Inspect(a) => {
            let fmt = a.format.as_deref().map(Format::parse).transpose()?;
            let mut docs = Vec::new();
            let mut code = 0;
            for key in &a.networks {
                match engine.network(key) {
                    Ok(n) => docs.push(engine.inspect_network(&n)?),
                    Err(e) if e.kind() == berth_engine::ErrorKind::NotFound => {
                        match engine.inspect_builtin_network(key)? {
                            Some(doc) => docs.push(doc),
                            None => {
                                report(&e.into());
                                code = 1;
                            }
                        }
                    }
                    Err(e) => {
                        report(&e.into());
                        code = 1;
                    }
                }
            }
            crate::image_cmds::print_docs(fmt.as_ref(), &docs)?;
            Ok(code)
        }
        NetworkCommand::Rm(a) => {
            let mut code = 0;
            for key in &a.networks {
                match engine.network_remove(key) {
                    Ok(_) => println!("{key}"),
                    // -f: a network that is not there is not an error.
                    Err(e) if a.force && e.kind() == berth_engine::ErrorKind::NotFound => {}
                    Err(e) => {
                        report(&e.into());
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCommand::Prune(a) => {
            let filter = berth_engine::filters::PruneFilter::from_words(&a.filter, true)?;
            let removed = engine.network_prune_filtered(&filter)?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
            Ok(0)
        }
        NetworkCommand::Connect(a) => {
            let refused = [
                ("--ip6", a.ip6.is_some(), "no IPv6 networks yet"),
                (
                    "--link-local-ip",
                    !a.link_local_ip.is_empty(),
                    "no link-local addresses",
                ),
                (
                    "--driver-opt",
                    !a.driver_opt.is_empty(),
                    "the bridge driver takes no endpoint options",
                ),
            ];
            if let Some((flag, _, why)) = refused.iter().find(|(_, given, _)| *given) {
                anyhow::bail!("{flag} is not supported by Berth ({why})");
            }
            let links = a
                .link
                .iter()
                .map(|l| berth_engine::Link::parse(l))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            engine.network_connect_with(&a.network, &a.container, &a.alias, a.ip, &links)?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            engine.network_disconnect(&a.network, &a.container)?;
            Ok(0)
        }
    }
}

fn create(engine: &Engine, a: NetworkCreateArgs) -> Result<i32> {
    let subnet = a
        .subnet
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|_| anyhow!("invalid subnet {s}: use CIDR notation (10.89.0.0/24)"))
        })
        .transpose()?;
    let gateway = a
        .gateway
        .as_deref()
        .map(|g| g.parse().map_err(|_| anyhow!("invalid gateway {g}")))
        .transpose()?;
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let refused = [
        ("--ipv6", a.ipv6, "no IPv6 networks yet"),
        ("--ingress", a.ingress, "a swarm feature"),
        ("--config-only", a.config_only, "a swarm feature"),
        ("--config-from", a.config_from.is_some(), "a swarm feature"),
        (
            "--ipam-opt",
            !a.ipam_opt.is_empty(),
            "the default IPAM driver has no options",
        ),
        (
            "--ipam-driver",
            a.ipam_driver != "default",
            "only the default IPAM driver exists",
        ),
        (
            "--scope",
            a.scope.as_deref().is_some_and(|s| s != "local"),
            "networks are local",
        ),
    ];
    if let Some((flag, _, why)) = refused.iter().find(|(_, given, _)| *given) {
        anyhow::bail!("{flag} is not supported by Berth ({why})");
    }
    let ip_range = a
        .ip_range
        .as_deref()
        .map(|r| {
            r.parse()
                .map_err(|_| anyhow!("invalid ip-range {r}: use CIDR notation (10.89.0.128/25)"))
        })
        .transpose()?;
    let mut aux_addresses = BTreeMap::new();
    for kv in &a.aux_address {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| {
                anyhow!("invalid argument \"{kv}\" for \"--aux-address\" flag: expected NAME=IP")
            })?;
        let ip = v.parse().map_err(|_| {
            anyhow!(
                "invalid argument \"{kv}\" for \"--aux-address\" flag: {v} is not an IPv4 address"
            )
        })?;
        aux_addresses.insert(k.to_string(), ip);
    }
    let mut options = BTreeMap::new();
    for kv in &a.opt {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        options.insert(k.to_string(), v.to_string());
    }
    let n = engine.network_create(NetworkRequest {
        name: a.name,
        driver: Some(a.driver),
        subnet,
        gateway,
        labels,
        ip_range,
        aux_addresses,
        internal: a.internal,
        options,
    })?;
    println!("{}", n.id);
    Ok(0)
}

fn ls(engine: &Engine, a: NetworkLsArgs) -> Result<i32> {
    // The default network exists from the first listing on, as in docker.
    let _ = engine.network(berth_engine::DEFAULT_NETWORK);
    // docker's network filters: name (substring), id (prefix), driver,
    // label (key or key=value), type (builtin or custom), dangling.
    let mut filters: Vec<(String, String)> = Vec::new();
    for f in &a.filter {
        let Some((k, v)) = f.split_once('=') else {
            anyhow::bail!("bad format of filter (expected name=value): {f}");
        };
        if !matches!(
            k,
            "name" | "id" | "driver" | "label" | "type" | "dangling" | "scope"
        ) {
            anyhow::bail!("invalid filter '{k}'");
        }
        filters.push((k.to_string(), v.to_string()));
    }
    let used: Vec<String> = if filters.iter().any(|(k, _)| k == "dangling") {
        engine
            .containers()?
            .iter()
            .flat_map(|c| c.state.endpoints.iter().map(|e| e.network_id.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let mut nets: Vec<(
        String,
        String,
        String,
        std::collections::BTreeMap<String, String>,
    )> = engine
        .networks()?
        .into_iter()
        .map(|n| (n.id, n.name, n.driver, n.labels))
        .collect();
    nets.push((
        engine.builtin_network_id("host")?,
        "host".into(),
        "host".into(),
        Default::default(),
    ));
    nets.push((
        engine.builtin_network_id("none")?,
        "none".into(),
        "null".into(),
        Default::default(),
    ));
    let builtin = |name: &str| matches!(name, "bridge" | "host" | "none");
    let keys: std::collections::BTreeSet<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    let mut rows: Vec<(String, String, String)> = nets
        .into_iter()
        .filter(|(id, name, driver, labels)| {
            keys.iter().all(|key| {
                let mut vals = filters.iter().filter(|(k, _)| k == key).map(|(_, v)| v);
                match *key {
                    "label" => vals.all(|v| berth_engine::filters::label_matches(labels, v)),
                    _ => vals.any(|v| match *key {
                        "name" => name.contains(v.as_str()),
                        "id" => id.starts_with(v.as_str()),
                        "driver" => driver == v,
                        "scope" => v == "local",
                        "type" => (v == "builtin") == builtin(name),
                        "dangling" => {
                            let dangling = !builtin(name) && !used.contains(id);
                            (v == "true" || v == "1") == dangling
                        }
                        _ => false,
                    }),
                }
            })
        })
        .map(|(id, name, driver, _)| (id, name, driver))
        .collect();
    rows.sort_by(|x, y| x.1.cmp(&y.1));
    let short = |id: &str| {
        if a.no_trunc {
            id.to_string()
        } else {
            id[..12].to_string()
        }
    };
    if a.quiet {
        for r in &rows {
            println!("{}", short(&r.0));
        }
        return Ok(0);
    }
    let rows: Vec<_> = rows
        .iter()
        .map(|(id, name, driver)| {
            let id = short(id);
            let doc = json!({"ID": id, "Name": name, "Driver": driver, "Scope": "local"});
            (vec![id, name.clone(), driver.clone(), "local".into()], doc)
        })
        .collect();
    format::print_list(
        a.format.as_deref(),
        &["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
        |f| match f {
            "ID" => "NETWORK ID",
            "Name" => "NAME",
            "Driver" => "DRIVER",
            "Scope" => "SCOPE",
            other => other,
        },
        &rows,
    )?;
    Ok(0)
}
