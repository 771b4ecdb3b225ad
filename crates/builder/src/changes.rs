//! The Dockerfile instructions that only edit an image's runtime config:
//! docker's `--change` set (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
//! STOPSIGNAL, USER, VOLUME, WORKDIR). One implementation for `commit -c`,
//! `import -c` and the build's steps: each change is parsed by the Dockerfile
//! parser and applied by [`apply`], which the executor calls too.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::config::ImageConfig;
use crate::context;
use crate::instructions::{parse_instruction, Command, Instruction};
use crate::shell;

/// What a `--change` may be, for the message that refuses anything else.
const SUPPORTED: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR";

/// A `--change` that is not a config-only Dockerfile instruction, or is one
/// with bad arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --change {change:?}: {message}")]
pub struct ChangeError {
    /// The change as the user typed it.
    pub change: String,
    pub message: String,
}

/// Applies `changes` (Dockerfile lines, as `commit -c` and `import -c` take
/// them) in order to `config`, an image's runtime config (the image config's
/// `config` object; fields Berth does not know, like Healthcheck, are kept).
/// Words expand against the config's environment, as docker's do.
pub fn apply_changes(
    config: &mut Map<String, Value>,
    changes: &[String],
) -> Result<(), ChangeError> {
    let mut doc = ImageConfig(json!({ "config": config.clone() }));
    let mut cmd_set = false;
    for change in changes {
        let fail = |message: String| ChangeError {
            change: change.clone(),
            message,
        };
        let step = parse_instruction(change).map_err(|e| fail(e.message))?;
        let vars = doc.env_pairs();
        apply(&mut doc, &step.instruction, &vars, '\\', &mut cmd_set).map_err(fail)?;
    }
    if let Some(Value::Object(m)) = doc.0.get_mut("config") {
        *config = std::mem::take(m);
    }
    Ok(())
}

/// Applies one config-only instruction to `config`, its words expanded
/// against `vars` (later entries win) with `escape`. `cmd_set` says whether
/// CMD was set before in this build stage (or list of changes): ENTRYPOINT
/// then keeps it, else clears it. Returns the instruction as docker's
/// history writes it (`CMD ["sh" "-c" "x"]`, `ENV A=1 B=2`). Any other
/// instruction is refused.
pub(crate) fn apply(
    config: &mut ImageConfig,
    instruction: &Instruction,
    vars: &[(String, String)],
    escape: char,
    cmd_set: &mut bool,
) -> Result<String, String> {
    let expand = |word: &str, vars: &[(String, String)]| {
        shell::expand_word(word, vars, escape).map_err(|e| e.to_string())
    };
    let expand_words =
        |text: &str| shell::expand_words(text, vars, escape).map_err(|e| e.to_string());
    let shell = config.shell();
    let argv = |c: &Command| -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
        }
    };
    Ok(match instruction {
        Instruction::Cmd(c) => {
            let v = argv(c);
            config.set("Cmd", json!(v));
            *cmd_set = true;
            format!("CMD {}", quoted_list(&v))
        }
        Instruction::Entrypoint(c) => {
            let v = argv(c);
            config.set("Entrypoint", json!(v));
            if !*cmd_set {
                config.set("Cmd", Value::Null);
            }
            format!("ENTRYPOINT {}", quoted_list(&v))
        }
        Instruction::Env(pairs) => {
            // Later pairs of the same ENV see earlier ones.
            let mut vars = vars.to_vec();
            let text = set_pairs(pairs, &mut vars, expand, |k, v| config.set_env(k, v))?;
            format!("ENV {text}")
        }
        Instruction::Label(pairs) => {
            let mut vars = vars.to_vec();
            let text = set_pairs(pairs, &mut vars, expand, |k, v| {
                config.insert("Labels", k, json!(v))
            })?;
            format!("LABEL {text}")
        }
        Instruction::Workdir(w) => {
            let w = expand(w, vars)?;
            let joined = Path::new(&config.workdir()).join(&w);
            let clean = context::clean(&joined.to_string_lossy()).unwrap_or_default();
            let dir = format!("/{}", clean.display());
            config.set("WorkingDir", json!(dir));
            format!("WORKDIR {dir}")
        }
        Instruction::Expose(ports) => {
            let mut keys = Vec::new();
            for p in ports {
                for word in expand_words(p)? {
                    for key in exposed_ports(&word)? {
                        config.insert("ExposedPorts", &key, json!({}));
                        keys.push(key);
                    }
                }
            }
            format!("EXPOSE {}", keys.join(" "))
        }
        Instruction::User(u) => {
            let u = expand(u, vars)?;
            config.set("User", json!(u));
            format!("USER {u}")
        }
        Instruction::Volume(vols) => {
            let mut paths = Vec::new();
            for v in vols {
                for p in expand_words(v)? {
                    if p.is_empty() {
                        return Err("VOLUME specified can not be an empty string".into());
                    }
                    config.insert("Volumes", &p, json!({}));
                    paths.push(p);
                }
            }
            format!("VOLUME {}", quoted_list(&paths))
        }
        Instruction::Stopsignal(s) => {
            let s = expand(s, vars)?;
            berth_engine::parse_signal(&s).map_err(|e| e.to_string())?;
            config.set("StopSignal", json!(s));
            format!("STOPSIGNAL {s}")
        }
        Instruction::Onbuild(trigger) => {
            let mut triggers = config.on_build();
            triggers.push(trigger.clone());
            config.set("OnBuild", json!(triggers));
            format!("ONBUILD {trigger}")
        }
        other => {
            return Err(format!(
                "{} is not supported: use {SUPPORTED}",
                keyword(other)
            ))
        }
    })
}

/// Expands ENV/LABEL pairs, hands each to `set` (each pair visible to the
/// next through `vars`) and returns them as `k=v k2=v2`.
fn set_pairs(
    pairs: &[(String, String)],
    vars: &mut Vec<(String, String)>,
    expand: impl Fn(&str, &[(String, String)]) -> Result<String, String>,
    mut set: impl FnMut(&str, &str),
) -> Result<String, String> {
    let mut text = Vec::new();
    for (k, v) in pairs {
        let k = expand(k, vars)?;
        let v = expand(v, vars)?;
        if k.is_empty() {
            return Err("names can not be blank".into());
        }
        set(&k, &v);
        vars.push((k.clone(), v.clone()));
        text.push(format!("{k}={v}"));
    }
    Ok(text.join(" "))
}

/// The keyword of an instruction, as Dockerfiles write it.
pub(crate) fn keyword(i: &Instruction) -> &'static str {
    match i {
        Instruction::Run { .. } => "RUN",
        Instruction::Cmd(_) => "CMD",
        Instruction::Entrypoint(_) => "ENTRYPOINT",
        Instruction::Env(_) => "ENV",
        Instruction::Arg(_) => "ARG",
        Instruction::Add(_) => "ADD",
        Instruction::Copy(_) => "COPY",
        Instruction::Workdir(_) => "WORKDIR",
        Instruction::Expose(_) => "EXPOSE",
        Instruction::User(_) => "USER",
        Instruction::Volume(_) => "VOLUME",
        Instruction::Label(_) => "LABEL",
        Instruction::Maintainer(_) => "MAINTAINER",
        Instruction::Onbuild(_) => "ONBUILD",
        Instruction::Shell(_) => "SHELL",
        Instruction::Stopsignal(_) => "STOPSIGNAL",
        Instruction::Healthcheck(_) => "HEALTHCHECK",
    }
}

/// A list as docker's history writes it: Go's `%q` of each item.
pub(crate) fn quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

/// The `ExposedPorts` keys of an EXPOSE word: `80`, `53/udp`, `8000-8002`.
pub(crate) fn exposed_ports(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
