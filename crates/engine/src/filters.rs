//! docker's container list filters (`ps --filter`, `GET /containers/json
//! ?filters=`), one implementation for every face. Values of one key are
//! alternatives; different keys all apply.

use regex::Regex;

use crate::containers::{ContainerRecord, Status};
use crate::error::{Error, Result};
use crate::Engine;

const KEYS: [&str; 13] = [
    "status", "name", "id", "exited", "ancestor", "label", "before", "since", "volume", "network",
    "publish", "expose", "is-task",
];

const STATUSES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Whether `labels` has `want` (`key` or `key=value`).
pub fn label_matches(labels: &std::collections::BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

#[derive(Debug, Default)]
pub struct ContainerFilter {
    items: Vec<(String, String)>,
    names: Vec<Regex>,
}

impl ContainerFilter {
    /// `key=value` pairs as `--filter` gives them.
    pub fn parse<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let bad = |m: String| Error::InvalidArgument(m);
        let mut out = ContainerFilter::default();
        for (k, v) in items {
            if !KEYS.contains(&k) {
                return Err(bad(format!("invalid filter '{k}'")));
            }
            if k == "status" && !STATUSES.contains(&v) {
                return Err(bad(format!("invalid filter 'status={v}'")));
            }
            if k == "name" {
                out.names.push(
                    Regex::new(v.trim_start_matches('/'))
                        .map_err(|e| bad(format!("invalid filter 'name={v}': {e}")))?,
                );
            }
            out.items.push((k.to_string(), v.to_string()));
        }
        Ok(out)
    }

    /// From `key=value` words (`ps --filter`).
    pub fn from_words(words: &[String]) -> Result<Self> {
        let pairs = words
            .iter()
            .map(|w| {
                w.split_once('=').ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "bad format of filter (expected name=value): {w}"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Self::parse(pairs)
    }

    pub fn has(&self, key: &str) -> bool {
        self.items.iter().any(|(k, _)| k == key)
    }

    pub fn matches(&self, engine: &Engine, c: &ContainerRecord) -> bool {
        let keys: std::collections::BTreeSet<&str> =
            self.items.iter().map(|(k, _)| k.as_str()).collect();
        keys.into_iter().all(|key| {
            if key == "name" {
                return self.names.iter().any(|r| r.is_match(&c.name));
            }
            if key == "label" {
                // Every label filter applies (docker ANDs them).
                return self
                    .items
                    .iter()
                    .filter(|(k, _)| k == "label")
                    .all(|(_, v)| label_matches(&c.options.labels, v));
            }
            self.items
                .iter()
                .filter(|(k, _)| k == key)
                .any(|(_, v)| Self::one(engine, c, key, v))
        })
    }

    fn one(engine: &Engine, c: &ContainerRecord, key: &str, v: &str) -> bool {
        let created = |other: &str| engine.container(other).ok().map(|o| o.created);
        match key {
            "status" => c.state.status.as_str() == v,
            "id" => c.id.starts_with(v),
            "exited" => c.state.status == Status::Exited && v.parse() == Ok(c.state.exit_code),
            "ancestor" => {
                c.image == v
                    || engine
                        .images()
                        .resolve(v)
                        .is_ok_and(|i| i.id.to_string() == c.image_id)
            }
            "before" => created(v).is_some_and(|t| c.created < t),
            "since" => created(v).is_some_and(|t| c.created > t),
            "volume" => c.mounts.iter().any(|m| {
                m.name.as_deref() == Some(v) || m.destination == v || m.source.as_os_str() == v
            }),
            "network" => c
                .state
                .endpoints
                .iter()
                .any(|e| e.network == v || e.network_id.starts_with(v)),
            "publish" | "expose" => {
                let (port, proto) = v.split_once('/').unwrap_or((v, "tcp"));
                c.state.ports.iter().any(|p| {
                    let n = if key == "publish" {
                        p.host_port
                    } else {
                        p.container_port
                    };
                    n.to_string() == port && p.proto.as_str() == proto
                }) || (key == "expose"
                    && c.options.expose.iter().any(|e| {
                        crate::config::parse_expose(e)
                            .is_ok_and(|ps| ps.contains(&format!("{port}/{proto}")))
                    }))
            }
            "is-task" => v == "false",
            _ => false,
        }
    }
}

/// docker's prune filters (`container/image/network/volume/system prune
/// --filter`): `until=` (a time or a duration before now: only what was
/// created before it), `label=KEY[=VALUE]` and `label!=KEY[=VALUE]`. All of
/// them apply.
#[derive(Debug, Default, Clone)]
pub struct PruneFilter {
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// (wanted label, whether it must be absent)
    labels: Vec<(String, bool)>,
}

impl PruneFilter {
    /// From `key=value` words; `until` is refused where docker refuses it
    /// (volumes: `allow_until` false).
    pub fn from_words(words: &[String], allow_until: bool) -> Result<Self> {
        let mut out = PruneFilter::default();
        for w in words {
            let (k, v) = w.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!("bad format of filter (expected name=value): {w}"))
            })?;
            // `label!=x` splits at its '=': the key ends in '!'.
            match k {
                "until" if allow_until => {
                    out.until = Some(crate::logs::parse_time(v, chrono::Utc::now())?);
                }
                "label" => out.labels.push((v.to_string(), false)),
                "label!" => out.labels.push((v.to_string(), true)),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "invalid filter '{}'",
                        k.trim_end_matches('!')
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Whether an object created at `created` (RFC 3339) with `labels` is
    /// one the prune may remove.
    pub fn matches(
        &self,
        created: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        if let Some(until) = self.until {
            match chrono::DateTime::parse_from_rfc3339(created) {
                Ok(t) if t.with_timezone(&chrono::Utc) < until => {}
                _ => return false,
            }
        }
        self.labels
            .iter()
            .all(|(want, absent)| label_matches(labels, want) != *absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_parse_errors() {
        let mut l = std::collections::BTreeMap::new();
        l.insert("tier".to_string(), "web".to_string());
        assert!(label_matches(&l, "tier"));
        assert!(label_matches(&l, "tier=web"));
        assert!(!label_matches(&l, "tier=db"));
        assert!(!label_matches(&l, "team"));
        let e = ContainerFilter::parse([("colour", "blue")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'colour'");
        let e = ContainerFilter::parse([("status", "sleeping")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'status=sleeping'");
        assert!(ContainerFilter::parse([("name", "web[")]).is_err());
        assert!(ContainerFilter::from_words(&["nameweb".into()]).is_err());
    }

    #[test]
    fn prune_filters() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut l = std::collections::BTreeMap::new();
        l.insert("keep".to_string(), "yes".to_string());
        let old = "2020-01-01T00:00:00Z";
        let new = chrono::Utc::now().to_rfc3339();
        let f = PruneFilter::from_words(&words(&["until=1h"]), true).unwrap();
        assert!(f.matches(old, &l) && !f.matches(&new, &l));
        let f = PruneFilter::from_words(&words(&["label!=keep"]), true).unwrap();
        assert!(!f.matches(old, &l) && f.matches(old, &Default::default()));
        let f = PruneFilter::from_words(&words(&["label=keep=yes"]), true).unwrap();
        assert!(f.matches(old, &l) && !f.matches(old, &Default::default()));
        let f = PruneFilter::from_words(&words(&["label!=keep=no"]), true).unwrap();
        assert!(f.matches(old, &l));
        let e = PruneFilter::from_words(&words(&["until=1h"]), false).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'until'");
        assert!(PruneFilter::from_words(&words(&["colour=red"]), true).is_err());
        assert!(PruneFilter::from_words(&words(&["until=soon"]), true).is_err());
    }
}
