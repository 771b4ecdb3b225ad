//! `--change` instructions (`import -c`, `commit -c`): Dockerfile lines that
//! edit an image's runtime config.

use std::collections::HashMap;

use oci_spec::image::Config;

use crate::error::{Error, Result};

fn bad(change: &str, why: &str) -> Error {
    Error::InvalidChange {
        change: change.to_string(),
        reason: why.to_string(),
    }
}

/// A JSON array (exec form), or the shell form run by `/bin/sh -c`.
fn command(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), rest.to_string()]
}

/// Words of `rest`, or the elements of a JSON array.
fn words(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    rest.split_whitespace().map(str::to_string).collect()
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// `k=v k2="v 2"` pairs, or the legacy `k v` form.
fn pairs(change: &str, rest: &str) -> Result<Vec<(String, String)>> {
    if !rest.contains('=') {
        return match rest.split_once(char::is_whitespace) {
            Some((k, v)) => Ok(vec![(k.to_string(), unquote(v))]),
            None => Err(bad(change, "needs a name and a value")),
        };
    }
    let mut out = Vec::new();
    let mut chars = rest.trim().chars().peekable();
    while chars.peek().is_some() {
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let mut val = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            chars.next();
            match (quote, c) {
                (None, '"') | (None, '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, c) => val.push(c),
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if key.trim().is_empty() {
            return Err(bad(change, "a name is empty"));
        }
        out.push((key.trim().to_string(), val));
    }
    Ok(out)
}

/// Applies `changes` to `config`.
pub fn apply(config: &mut Config, changes: &[String]) -> Result<()> {
    for change in changes {
        let t = change.trim();
        let (instr, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let rest = rest.trim();
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.set_cmd(Some(command(rest)));
            }
            "ENTRYPOINT" => {
                config.set_entrypoint(Some(command(rest)));
            }
            "WORKDIR" => {
                config.set_working_dir(Some(rest.to_string()));
            }
            "USER" => {
                config.set_user(Some(rest.to_string()));
            }
            "STOPSIGNAL" => {
                config.set_stop_signal(Some(rest.to_string()));
            }
            "ENV" => {
                let mut env = config.env().clone().unwrap_or_default();
                for (k, v) in pairs(change, rest)? {
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                config.set_env(Some(env));
            }
            "LABEL" => {
                let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
                for (k, v) in pairs(change, rest)? {
                    labels.insert(unquote(&k), v);
                }
                config.set_labels(Some(labels));
            }
            "EXPOSE" => {
                let mut ports = config.exposed_ports().clone().unwrap_or_default();
                for p in words(rest) {
                    let p = if p.contains('/') { p } else { format!("{p}/tcp") };
                    if !ports.contains(&p) {
                        ports.push(p);
                    }
                }
                config.set_exposed_ports(Some(ports));
            }
            "VOLUME" => {
                let mut vols = config.volumes().clone().unwrap_or_default();
                for v in words(rest) {
                    if !vols.contains(&v) {
                        vols.push(v);
                    }
                }
                config.set_volumes(Some(vols));
            }
            other => {
                return Err(bad(
                    change,
                    &format!("{other} is not supported: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(changes: &[&str]) -> Config {
        let mut c = Config::default();
        apply(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        c
    }

    #[test]
    fn docker_change_forms() {
        let c = cfg(&[
            r#"CMD ["cat","/etc/motd"]"#,
            "ENTRYPOINT echo hi",
            "ENV A=1 B=\"two words\"",
            "ENV C 3",
            "WORKDIR /w",
            "USER nobody",
            "EXPOSE 80 53/udp",
            "LABEL k=v",
            "VOLUME /data",
        ]);
        assert_eq!(c.cmd().as_deref().unwrap(), ["cat", "/etc/motd"]);
        assert_eq!(
            c.entrypoint().as_deref().unwrap(),
            ["/bin/sh", "-c", "echo hi"]
        );
        assert_eq!(c.env().as_deref().unwrap(), ["A=1", "B=two words", "C=3"]);
        assert_eq!(c.working_dir().as_deref(), Some("/w"));
        assert_eq!(c.user().as_deref(), Some("nobody"));
        assert_eq!(c.exposed_ports().as_deref().unwrap(), ["80/tcp", "53/udp"]);
        assert_eq!(c.labels().as_ref().unwrap()["k"], "v");
        assert_eq!(c.volumes().as_deref().unwrap(), ["/data"]);
        let c2 = {
            let mut c2 = c.clone();
            apply(&mut c2, &["ENV A=9".to_string()]).unwrap();
            c2
        };
        assert_eq!(c2.env().as_deref().unwrap(), ["B=two words", "C=3", "A=9"]);
    }

    #[test]
    fn unknown_instructions_are_named() {
        let mut c = Config::default();
        let e = apply(&mut c, &["RUN rm -rf /".to_string()]).unwrap_err();
        assert!(e.to_string().contains("RUN is not supported"), "{e}");
    }
}
