//! Typed instructions, made from the parser's nodes. Arguments stay as
//! written (quotes and `$VAR`s included): the executor expands them with
//! [`crate::shell`] against the build's variables at the step that uses them.
//!
//! The checks are BuildKit's (`frontend/dockerfile/instructions/parse.go`):
//! argument counts, known flags per instruction, stage names, HEALTHCHECK
//! durations, ONBUILD triggers. Flags Berth accepts but does not act on are
//! named where they are parsed (RUN `--mount`/`--security`, ADD `--checksum`).

use std::time::Duration;

use crate::parser::{parse, parse_heredoc, Heredoc, Node, ParseError};

/// A command in shell form (run through the SHELL, `/bin/sh -c` by default)
/// or exec form (a JSON array, run as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// ADD and COPY.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Sources as written (globs and `$VAR`s unexpanded); for a heredoc
    /// source, the heredoc's name.
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=<stage|image>` (COPY only).
    pub from: Option<String>,
    /// `--chown=user[:group]`
    pub chown: Option<String>,
    /// `--chmod=<octal>`
    pub chmod: Option<String>,
    /// `--link` (accepted; Berth's layers are always independent of the parent).
    pub link: bool,
    /// Inline files (`COPY <<EOF /dest`).
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK's options and command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Command,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run {
        command: Command,
        /// Heredocs of the instruction (`RUN <<EOF`): with a shell-form
        /// command that is only the heredoc marker, the heredoc is the script.
        heredocs: Vec<Heredoc>,
        /// `--network=default|none|host`
        network: Option<String>,
    },
    Cmd(Command),
    Entrypoint(Command),
    /// Key/value pairs, both as written (`ENV a b` gives one pair).
    Env(Vec<(String, String)>),
    /// Names with optional defaults, as written.
    Arg(Vec<(String, Option<String>)>),
    Add(CopySpec),
    Copy(CopySpec),
    Workdir(String),
    /// Ports as written (`80`, `80/udp`, `$PORT`, ranges).
    Expose(Vec<String>),
    User(String),
    /// Paths (JSON array or whitespace separated).
    Volume(Vec<String>),
    Label(Vec<(String, String)>),
    Maintainer(String),
    /// The trigger's text, e.g. `RUN make` (validated when parsed: not
    /// FROM, MAINTAINER or ONBUILD).
    Onbuild(String),
    Shell(Vec<String>),
    Stopsignal(String),
    /// `HEALTHCHECK NONE` is `None`.
    Healthcheck(Option<Healthcheck>),
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// The instruction as written, continuation lines joined (`RUN make all`);
    /// what `Step N/M :` prints.
    pub original: String,
    pub instruction: Instruction,
}

/// `FROM <base> [AS <name>]` and the steps up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The stage's name, lower-cased (`AS Build` -> `build`).
    pub name: Option<String>,
    /// The base as written (may hold `$VAR`s from the ARGs before the first FROM).
    pub base: String,
    /// `--platform=...` as written.
    pub platform: Option<String>,
    /// The FROM line.
    pub line: usize,
    pub original: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dockerfile {
    /// The escape character (`# escape=` directive; `\` by default).
    pub escape: char,
    /// ARGs before the first FROM (usable in FROM lines).
    pub meta_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

/// Parses a whole Dockerfile. An empty file, one without FROM, or an
/// instruction before the first FROM (other than ARG) is an error.
pub fn parse_dockerfile(src: &str) -> Result<Dockerfile, ParseError> {
    let parsed = parse(src)?;
    let mut df = Dockerfile {
        escape: parsed.escape,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for node in &parsed.nodes {
        if node.keyword == "from" {
            let stage = stage(node)?;
            if let Some(name) = &stage.name {
                if df.stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                    return Err(fail(node, format!("duplicate stage name {name:?}")));
                }
            }
            df.stages.push(stage);
            continue;
        }
        match df.stages.last_mut() {
            Some(stage) => stage.steps.push(step(node)?),
            None if node.keyword == "arg" => df.meta_args.extend(args(node)?),
            None => {
                return Err(fail(
                    node,
                    format!(
                        "no build stage in current context: {} before the first FROM \
                         (only ARG may come before FROM)",
                        node.keyword.to_uppercase()
                    ),
                ))
            }
        }
    }
    if df.stages.is_empty() {
        let line = parsed.nodes.first().map_or(1, |n| n.line);
        return Err(ParseError::new(
            line,
            None,
            "no build stage in current context: the Dockerfile has no FROM instruction",
        ));
    }
    Ok(df)
}

/// Parses one instruction (an ONBUILD trigger) with the default escape.
pub fn parse_instruction(text: &str) -> Result<Step, ParseError> {
    let parsed = parse(text)?;
    match parsed.nodes.as_slice() {
        [node] if node.keyword == "from" => Err(fail(node, "FROM is not a build step")),
        [node] => step(node),
        nodes => Err(ParseError::new(
            nodes.get(1).map_or(1, |n| n.line),
            None,
            format!("expected one instruction, found {}", nodes.len()),
        )),
    }
}

fn fail(node: &Node, message: impl Into<String>) -> ParseError {
    ParseError::new(node.line, Some(&node.keyword), message)
}

fn upper(node: &Node) -> String {
    node.keyword.to_uppercase()
}

fn stage(node: &Node) -> Result<Stage, ParseError> {
    let flags = Flags::parse(node, &[("platform", Kind::Str)])?;
    let (base, name) = match node.args.as_slice() {
        [base] => (base.clone(), None),
        [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
            (base.clone(), Some(name.to_lowercase()))
        }
        _ => return Err(fail(node, "FROM requires either one or three arguments")),
    };
    if let Some(name) = &name {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !valid {
            return Err(fail(
                node,
                format!(
                    "invalid name for build stage: {name:?}, name can't start with a number \
                     or contain symbols"
                ),
            ));
        }
    }
    Ok(Stage {
        name,
        base,
        platform: flags.string("platform"),
        line: node.line,
        original: node.original.clone(),
        steps: Vec::new(),
    })
}

fn step(node: &Node) -> Result<Step, ParseError> {
    Ok(Step {
        line: node.line,
        original: node.original.clone(),
        instruction: instruction(node)?,
    })
}

fn instruction(node: &Node) -> Result<Instruction, ParseError> {
    let none = |node: &Node| Flags::parse(node, &[]);
    Ok(match node.keyword.as_str() {
        "run" => run(node)?,
        "cmd" => {
            none(node)?;
            Instruction::Cmd(command(node))
        }
        "entrypoint" => {
            none(node)?;
            Instruction::Entrypoint(command(node))
        }
        "env" => {
            none(node)?;
            Instruction::Env(key_values(node)?)
        }
        "label" => {
            none(node)?;
            Instruction::Label(key_values(node)?)
        }
        "arg" => {
            none(node)?;
            Instruction::Arg(args(node)?)
        }
        "add" => Instruction::Add(copy_spec(node, true)?),
        "copy" => Instruction::Copy(copy_spec(node, false)?),
        "workdir" => Instruction::Workdir(exactly_one(node)?),
        "user" => Instruction::User(exactly_one(node)?),
        "stopsignal" => Instruction::Stopsignal(exactly_one(node)?),
        "maintainer" => Instruction::Maintainer(exactly_one(node)?),
        "expose" => {
            none(node)?;
            Instruction::Expose(at_least_one(node)?)
        }
        "volume" => {
            none(node)?;
            let mut volumes = Vec::new();
            for v in at_least_one(node)? {
                let v = v.trim();
                if v.is_empty() {
                    return Err(fail(node, "VOLUME specified can not be an empty string"));
                }
                volumes.push(v.to_string());
            }
            Instruction::Volume(volumes)
        }
        "shell" => {
            none(node)?;
            let args = at_least_one(node)?;
            if !node.json {
                return Err(fail(
                    node,
                    "SHELL requires the arguments to be in JSON form",
                ));
            }
            Instruction::Shell(args)
        }
        "onbuild" => onbuild(node)?,
        "healthcheck" => healthcheck(node)?,
        "from" => return Err(fail(node, "FROM is not a build step")),
        other => {
            return Err(fail(
                node,
                format!("unknown instruction: {}", other.to_uppercase()),
            ))
        }
    })
}

/// Exec form for a JSON array, else the rest of the line as written.
fn command(node: &Node) -> Command {
    if node.json {
        Command::Exec(node.args.clone())
    } else {
        Command::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

/// RUN: `--network` is kept; `--mount` and `--security` are accepted
/// (validated for form) and not acted on: a cache, bind, secret or ssh mount
/// is not provided to the command, and `--security=insecure` does not add
/// privileges.
fn run(node: &Node) -> Result<Instruction, ParseError> {
    let flags = Flags::parse(
        node,
        &[
            ("network", Kind::Str),
            ("mount", Kind::Strs),
            ("security", Kind::Str),
        ],
    )?;
    let network = flags.string("network");
    if let Some(n) = &network {
        if !matches!(n.as_str(), "default" | "none" | "host") {
            return Err(fail(node, format!("unsupported network mode {n:?}")));
        }
    }
    if let Some(s) = flags.string("security") {
        if !matches!(s.as_str(), "sandbox" | "insecure") {
            return Err(fail(node, format!("unsupported security mode {s:?}")));
        }
    }
    let command = command(node);
    let empty = match &command {
        Command::Exec(args) => args.is_empty(),
        Command::Shell(s) => s.trim().is_empty(),
    };
    if empty {
        return Err(fail(node, "RUN requires at least one argument"));
    }
    Ok(Instruction::Run {
        command,
        heredocs: node.heredocs.clone(),
        network,
    })
}

/// ENV and LABEL: the parser's `name value sep` triples as pairs.
fn key_values(node: &Node) -> Result<Vec<(String, String)>, ParseError> {
    if node.args.is_empty() {
        return Err(fail(
            node,
            format!("{} requires at least one argument", upper(node)),
        ));
    }
    if !node.args.len().is_multiple_of(3) {
        return Err(fail(
            node,
            format!("Bad input to {}, too many arguments", upper(node)),
        ));
    }
    let mut pairs = Vec::new();
    for triple in node.args.chunks(3) {
        if triple[0].is_empty() {
            return Err(fail(
                node,
                format!("{} names can not be blank", upper(node)),
            ));
        }
        pairs.push((triple[0].clone(), triple[1].clone()));
    }
    Ok(pairs)
}

/// ARG: `name` or `name=default`, as written.
fn args(node: &Node) -> Result<Vec<(String, Option<String>)>, ParseError> {
    if node.args.is_empty() {
        return Err(fail(node, "ARG requires at least one argument"));
    }
    node.args
        .iter()
        .map(|a| {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            if name.is_empty() {
                return Err(fail(node, "ARG names can not be blank"));
            }
            Ok((name.to_string(), value))
        })
        .collect()
}

fn exactly_one(node: &Node) -> Result<String, ParseError> {
    Flags::parse(node, &[])?;
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(fail(
            node,
            format!("{} requires exactly one argument", upper(node)),
        )),
    }
}

fn at_least_one(node: &Node) -> Result<Vec<String>, ParseError> {
    if node.args.is_empty() {
        return Err(fail(
            node,
            format!("{} requires at least one argument", upper(node)),
        ));
    }
    Ok(node.args.clone())
}

/// ADD and COPY. COPY takes `--from`, `--chown`, `--chmod`, `--link`; ADD
/// takes `--chown`, `--chmod`, `--link` and `--checksum` (accepted, not
/// verified). `--parents`, `--exclude` and ADD's `--keep-git-dir` are
/// refused as unsupported.
fn copy_spec(node: &Node, add: bool) -> Result<CopySpec, ParseError> {
    let kw = upper(node);
    let mut known = vec![
        ("chown", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("exclude", Kind::Strs),
    ];
    if add {
        known.extend([("checksum", Kind::Str), ("keep-git-dir", Kind::Bool)]);
    } else {
        known.extend([("from", Kind::Str), ("parents", Kind::Bool)]);
    }
    let flags = Flags::parse(node, &known)?;
    for unsupported in ["parents", "exclude", "keep-git-dir"] {
        if flags.has(unsupported) {
            return Err(fail(node, format!("{kw} --{unsupported} is not supported")));
        }
    }
    let Some((dest, sources)) = node.args.split_last() else {
        return Err(fail(node, format!("{kw} requires at least two arguments")));
    };
    if sources.is_empty() {
        return Err(fail(
            node,
            format!(
                "{kw} requires at least two arguments, but only one was provided. \
                 Destination could not be determined"
            ),
        ));
    }
    if !node.json && heredoc_name(dest).is_some() {
        return Err(fail(
            node,
            format!("{kw} cannot accept a heredoc as a destination"),
        ));
    }
    let sources = sources
        .iter()
        .map(|s| match heredoc_name(s) {
            Some(name) if !node.json => name,
            _ => s.clone(),
        })
        .collect();
    Ok(CopySpec {
        sources,
        dest: dest.clone(),
        from: flags.string("from").filter(|f| !f.is_empty()),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        heredocs: node.heredocs.clone(),
    })
}

fn heredoc_name(word: &str) -> Option<String> {
    parse_heredoc(word).ok().flatten().map(|h| h.name)
}

/// ONBUILD: the trigger's text (heredoc bodies appended, so that
/// [`parse_instruction`] gives them back); ONBUILD, FROM and MAINTAINER are
/// refused as triggers.
fn onbuild(node: &Node) -> Result<Instruction, ParseError> {
    Flags::parse(node, &[])?;
    let Some(trigger) = &node.trigger else {
        return Err(fail(node, "ONBUILD requires at least one argument"));
    };
    match trigger.keyword.as_str() {
        "onbuild" => {
            return Err(fail(
                node,
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ))
        }
        "from" | "maintainer" => {
            return Err(fail(
                node,
                format!("{} isn't allowed as an ONBUILD trigger", upper(trigger)),
            ))
        }
        _ => {}
    }
    let original = node.original.trim_start();
    let mut text = original
        .get(node.keyword.len()..)
        .unwrap_or_default()
        .trim_start()
        .to_string();
    for doc in &node.heredocs {
        text.push('\n');
        text.push_str(&doc.content);
        text.push_str(&doc.name);
    }
    Ok(Instruction::Onbuild(text))
}

/// HEALTHCHECK NONE, or `[--interval=D --timeout=D --start-period=D
/// --start-interval=D --retries=N] CMD command`. A zero duration is kept
/// as zero (the image config's "inherit").
fn healthcheck(node: &Node) -> Result<Instruction, ParseError> {
    let Some(kind) = node.args.first() else {
        return Err(fail(node, "HEALTHCHECK requires at least one argument"));
    };
    let kind = kind.to_uppercase();
    if kind == "NONE" {
        if node.args.len() != 1 {
            return Err(fail(node, "HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(Instruction::Healthcheck(None));
    }
    let flags = Flags::parse(
        node,
        &[
            ("interval", Kind::Str),
            ("timeout", Kind::Str),
            ("start-period", Kind::Str),
            ("start-interval", Kind::Str),
            ("retries", Kind::Str),
        ],
    )?;
    if kind != "CMD" {
        return Err(fail(
            node,
            format!("Unknown type {kind:?} in HEALTHCHECK (try CMD)"),
        ));
    }
    let rest = &node.args[1..];
    let test = if node.json {
        Command::Exec(rest.to_vec())
    } else {
        Command::Shell(rest.join(" "))
    };
    let empty = match &test {
        Command::Exec(a) => a.is_empty(),
        Command::Shell(s) => s.trim().is_empty(),
    };
    if empty {
        return Err(fail(node, "Missing command after HEALTHCHECK CMD"));
    }
    let interval = |name: &str| -> Result<Option<Duration>, ParseError> {
        let Some(value) = flags.string(name).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let d = parse_go_duration(&value).map_err(|e| fail(node, format!("--{name}: {e}")))?;
        if d != Duration::ZERO && d < Duration::from_millis(1) {
            return Err(fail(
                node,
                format!("Interval {name:?} cannot be less than 1ms"),
            ));
        }
        Ok(Some(d))
    };
    let retries = match flags.string("retries").filter(|v| !v.is_empty()) {
        None => None,
        Some(r) => {
            let n: i64 = r
                .parse()
                .map_err(|_| fail(node, format!("--retries: invalid number {r:?}")))?;
            if n < 0 {
                return Err(fail(node, format!("--retries cannot be negative ({n})")));
            }
            Some(u32::try_from(n).map_err(|_| fail(node, format!("--retries: {n} is too large")))?)
        }
    };
    Ok(Instruction::Healthcheck(Some(Healthcheck {
        test,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    })))
}

pub(crate) use berth_engine::units::parse_go_duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Str,
    Strs,
}

/// An instruction's `--name[=value]` flags, checked like BuildKit's BFlags:
/// unknown names, missing values and repeats are errors.
struct Flags {
    values: Vec<(&'static str, String)>,
}

impl Flags {
    fn parse(node: &Node, known: &[(&'static str, Kind)]) -> Result<Flags, ParseError> {
        let mut values: Vec<(&'static str, String)> = Vec::new();
        for flag in &node.flags {
            let Some(body) = flag.strip_prefix("--") else {
                return Err(fail(node, format!("arg should start with -- : {flag}")));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(name, kind)) = known.iter().find(|(k, _)| *k == name) else {
                return Err(fail(node, format!("unknown flag: {name}")));
            };
            if kind != Kind::Strs && values.iter().any(|(n, _)| *n == name) {
                return Err(fail(node, format!("duplicate flag specified: {name}")));
            }
            let value = match (kind, value) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some("")) => {
                    return Err(fail(node, format!("missing a value on flag: {name}")))
                }
                (Kind::Bool, Some(v)) => match v.to_lowercase().as_str() {
                    "true" => "true".to_string(),
                    "false" => "false".to_string(),
                    _ => {
                        return Err(fail(
                            node,
                            format!("expecting boolean value for flag {name}, not: {v}"),
                        ))
                    }
                },
                (_, None) => return Err(fail(node, format!("missing a value on flag: {name}"))),
                (_, Some(v)) => v.to_string(),
            };
            values.push((name, value));
        }
        Ok(Flags { values })
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    fn bool(&self, name: &str) -> bool {
        self.string(name).is_some_and(|v| v == "true")
    }

    fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(n, v)| *n == name && v != "false")
    }
}

#[cfg(test)]
#[path = "instructions_tests.rs"]
mod tests;
