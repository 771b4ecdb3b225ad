//! The Dockerfile syntax: directives, comments, line continuations, JSON
//! and shell forms, flags and heredocs, into one [`Node`] per instruction.
//!
//! This follows BuildKit's `frontend/dockerfile/parser`: the same line
//! joining, the same per-instruction argument splitting (what the corpus'
//! `result` files show) and the same heredoc rules. Unlike BuildKit, an
//! unknown instruction is an error here rather than at the next layer.

use std::fmt;

use crate::shell::Lexer;

/// An inline file: `<<EOF` ... `EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`), also the source name in `COPY <<EOF /dst`.
    pub name: String,
    /// The body, each line ending with `\n`.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`): no variable expansion.
    pub expand: bool,
    /// `<<-EOF`: leading tabs were stripped from the body.
    pub chomp: bool,
}

/// A syntax error, naming the line and the instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    /// The instruction keyword as written, upper-cased, when known.
    pub instruction: Option<String>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.instruction {
            Some(i) => write!(f, "Dockerfile:{}: {i}: {}", self.line, self.message),
            None => write!(f, "Dockerfile:{}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    pub(crate) fn new(line: usize, instruction: Option<&str>, message: impl Into<String>) -> Self {
        ParseError {
            line,
            instruction: instruction.map(str::to_uppercase),
            message: message.into(),
        }
    }
}

/// One instruction, split the way BuildKit's parser splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// 1-based line of its last line (heredoc bodies included).
    pub end_line: usize,
    /// Lower-case: "from", "run", ...
    pub keyword: String,
    /// e.g. `["--from=build", "--chown=1:1"]`, as written.
    pub flags: Vec<String>,
    /// As in the corpus `result` files (after the flags): one string for a
    /// shell form, the elements of a JSON array, `name value "="` triples
    /// for ENV and LABEL, `type command` for HEALTHCHECK; empty for ONBUILD
    /// (see [`Node::trigger`]).
    pub args: Vec<String>,
    /// The exec (JSON array) form was used.
    pub json: bool,
    /// The instruction as written, continuation lines joined.
    pub original: String,
    pub heredocs: Vec<Heredoc>,
    /// ONBUILD only: the trigger instruction.
    pub trigger: Option<Box<Node>>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub nodes: Vec<Node>,
    /// The escape character (`# escape=` directive; `\` by default).
    pub escape: char,
    /// Things accepted but worth a word (empty continuation lines).
    pub warnings: Vec<String>,
}

/// Parses a Dockerfile's text into nodes. A file with no instruction, an
/// unknown instruction, a bad directive, an ENV/LABEL without a value, a
/// JSON array of non-strings and an unterminated heredoc are errors.
pub fn parse(src: &str) -> Result<Parsed, ParseError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines: Vec<&str> = src.split_inclusive('\n').collect();
    let mut d = Directives::default();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let token = d
            .process_line(lines[i], true)
            .map_err(|m| ParseError::new(i + 1, None, m))?;
        i += 1;
        let start = i;
        let (first, mut end_of_line) = d.trim_continuation(&token);
        if end_of_line && first.is_empty() {
            continue;
        }
        let mut line = first;
        let mut empty_continuation = false;
        while !end_of_line && i < lines.len() {
            let raw = lines[i];
            let token = d
                .process_line(raw, false)
                .map_err(|m| ParseError::new(i + 1, None, m))?;
            i += 1;
            if is_comment(raw) {
                continue;
            }
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (more, eol) = d.trim_continuation(&token);
            end_of_line = eol;
            line.push_str(&more);
        }
        if empty_continuation {
            warnings.push(format!(
                "line {start}: empty continuation line found in: {line} \
                 (empty continuation lines will become errors in a future release)"
            ));
        }
        let mut node = node_from_line(&line, d.escape, start)?;
        if node.can_contain_heredoc() && line.contains("<<") {
            let docs = heredocs_from_line(&line)
                .map_err(|m| ParseError::new(start, Some(&node.keyword), m))?;
            for mut doc in docs {
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(trim_newline(raw));
                    if raw.ends_with('\n') {
                        doc.content.push('\n');
                    }
                }
                if !terminated {
                    return Err(ParseError::new(
                        start,
                        Some(&node.keyword),
                        format!("unterminated heredoc {}", doc.name),
                    ));
                }
                if doc.chomp {
                    doc.content = chomp_heredoc(&doc.content);
                }
                node.heredocs.push(doc);
            }
        }
        node.line = start;
        node.end_line = i;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(ParseError::new(i.max(1), None, "file with no instructions"));
    }
    Ok(Parsed {
        nodes,
        escape: d.escape,
        warnings,
    })
}

impl Node {
    /// The corpus `result` line: `(copy ["--from=x"] "a" "/b")`.
    pub fn to_sexp(&self) -> String {
        format!("({})", self.dump())
    }

    fn dump(&self) -> String {
        let mut s = self.keyword.clone();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", flags.join(" ")));
        }
        if let Some(trigger) = &self.trigger {
            s.push_str(&format!(" ({})", trigger.dump()));
        }
        for arg in &self.args {
            s.push(' ');
            s.push_str(&go_quote(arg));
        }
        s
    }

    /// RUN, COPY and ADD (also as an ONBUILD trigger) in shell form.
    fn can_contain_heredoc(&self) -> bool {
        let node = match &self.trigger {
            Some(t) if self.keyword == "onbuild" => t,
            _ => self,
        };
        matches!(node.keyword.as_str(), "run" | "copy" | "add") && !node.json
    }
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if !is_go_printable(c) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint` for non-ASCII characters:
/// controls, separators other than the space, and common format characters
/// are not printable.
fn is_go_printable(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

/// Parser directives (`# escape=`, `# syntax=`, `# check=`), only before
/// anything else.
struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            done: false,
            seen: Vec::new(),
        }
    }
}

impl Directives {
    /// Newline trimmed, leading blanks trimmed for a first line, a comment
    /// blanked; directives noted on the way.
    fn process_line(&mut self, raw: &str, strip_left: bool) -> Result<String, String> {
        let mut token = trim_newline(raw);
        if strip_left {
            token = token.trim_start();
        }
        self.directive(token)?;
        Ok(if token.starts_with('#') {
            String::new()
        } else {
            token.to_string()
        })
    }

    fn directive(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = parse_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_lowercase();
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        self.seen.push(name.clone());
        if name == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(format!(
                        "invalid escape token '{other}' does not match ` or \\"
                    ))
                }
            };
        }
        Ok(())
    }

    /// Removes a trailing escape (plus blanks) that continues the line:
    /// not when the escape is itself escaped (`\\`). The bool is true at
    /// the end of the instruction.
    fn trim_continuation(&self, line: &str) -> (String, bool) {
        let body = line.trim_end_matches([' ', '\t']);
        let Some(before) = body.strip_suffix(self.escape) else {
            return (line.to_string(), true);
        };
        if before.is_empty() {
            return (String::new(), false);
        }
        if before.ends_with(self.escape) {
            return (line.to_string(), true);
        }
        (before.to_string(), false)
    }
}

/// `#\s*name\s*=\s*value\s*`
fn parse_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

fn trim_newline(raw: &str) -> &str {
    raw.trim_end_matches(['\r', '\n'])
}

fn is_comment(raw: &str) -> bool {
    trim_newline(raw).trim_start().starts_with('#')
}

/// `<<-EOF`: strips leading tabs from every line.
fn chomp_heredoc(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// BuildKit's whitespace: `[\t\v\f\r ]+`.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

fn split_blanks(s: &str) -> Vec<String> {
    s.split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits at the first run of blanks.
fn split_once_blanks(s: &str) -> Option<(&str, &str)> {
    let i = s.find(is_blank)?;
    let rest = &s[i..];
    Some((&s[..i], rest.trim_start_matches(is_blank)))
}

fn node_from_line(line: &str, escape: char, start: usize) -> Result<Node, ParseError> {
    let trimmed = line.trim();
    let (cmd, rest) = split_once_blanks(trimmed).unwrap_or((trimmed, ""));
    let (rest, flags) = extract_flags(rest);
    let rest = rest.trim();
    let keyword = cmd.to_lowercase();
    let fail = |m: String| ParseError::new(start, Some(cmd), m);
    let mut node = Node {
        line: start,
        end_line: start,
        keyword: keyword.clone(),
        flags,
        args: Vec::new(),
        json: false,
        original: line.to_string(),
        heredocs: Vec::new(),
        trigger: None,
    };
    match keyword.as_str() {
        "add" | "copy" | "volume" => {
            (node.args, node.json) = maybe_json_to_list(rest).map_err(fail)?;
        }
        "cmd" | "entrypoint" | "run" | "shell" => {
            (node.args, node.json) = maybe_json(rest).map_err(fail)?;
        }
        "arg" => node.args = parse_words(rest, escape),
        "env" => node.args = name_val(rest, "ENV", escape).map_err(fail)?,
        "label" => node.args = name_val(rest, "LABEL", escape).map_err(fail)?,
        "expose" | "from" => node.args = split_blanks(rest),
        "healthcheck" => (node.args, node.json) = health(rest).map_err(fail)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !rest.is_empty() {
                node.args = vec![rest.to_string()];
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                node.trigger = Some(Box::new(node_from_line(rest, escape, start)?));
            }
        }
        _ => return Err(fail(format!("unknown instruction: {}", cmd.to_uppercase()))),
    }
    Ok(node)
}

/// Leading `--name[=value]` words; `--` ends them. Returns the rest.
fn extract_flags(line: &str) -> (&str, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i == chars.len() {
            return ("", flags);
        }
        let is_flag = chars[i].1 == '-' && chars.get(i + 1).is_some_and(|c| c.1 == '-');
        if !is_flag {
            return (&line[chars[i].0..], flags);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        while i < chars.len() {
            let c = chars[i].1;
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    blank_ok = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if i + 1 < chars.len() {
                        i += 1;
                        word.push(chars[i].1);
                    } else if quote.is_some() {
                        quote = None;
                    }
                }
                _ => word.push(c),
            }
            i += 1;
        }
        if word == "--" {
            let rest = chars.get(i).map_or("", |c| &line[c.0..]);
            return (rest, flags);
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
    }
}

enum JsonError {
    NotJson,
    NotStrings,
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

fn parse_json(rest: &str) -> Result<Vec<String>, JsonError> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Err(JsonError::NotJson);
    }
    let values: Vec<serde_json::Value> =
        serde_json::from_str(rest).map_err(|_| JsonError::NotJson)?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonError::NotStrings),
        })
        .collect()
}

/// A JSON array of strings, or the text as one shell-form argument.
fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Ok(list) => Ok((list, true)),
        Err(JsonError::NotStrings) => Err(NOT_STRINGS.to_string()),
        Err(JsonError::NotJson) => Ok((vec![rest.to_string()], false)),
    }
}

/// A JSON array of strings, or the blank-separated words.
fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json(rest) {
        Ok(list) => Ok((list, true)),
        Err(JsonError::NotStrings) => Err(NOT_STRINGS.to_string()),
        Err(JsonError::NotJson) => Ok((split_blanks(rest), false)),
    }
}

/// `TYPE rest`: the type word, then the rest as a maybe-JSON command.
fn health(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    let (typ, cmd) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim_start()),
        None => (rest, ""),
    };
    let (mut cmd, json) = maybe_json(cmd)?;
    let mut args = vec![typ.to_string()];
    args.append(&mut cmd);
    Ok((args, json))
}

/// Words separated by blanks, quotes and escapes kept as written.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match quote {
            None => {
                if c.is_whitespace() {
                    if in_word && (blank_ok || !word.is_empty()) {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    if i == chars.len() {
                        continue; // an escape at the end is dropped
                    }
                    word.push(c);
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    if i == chars.len() {
                        quote = None;
                        continue;
                    }
                    word.push(c);
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(c);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `name value` (one pair, separator "") or
/// `name=value ...` (separator "="), as `name value sep` triples.
fn name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        return match split_once_blanks(rest) {
            Some((name, value)) if !value.is_empty() => {
                Ok(vec![name.to_string(), value.to_string(), String::new()])
            }
            _ => Err(format!("{key} must have two arguments")),
        };
    }
    let mut args = Vec::new();
    for word in &words {
        let Some((name, value)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
            ));
        };
        args.extend([name.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(args)
}

/// The heredocs a line opens, in order: each word (quotes and escapes kept)
/// of the form `[n]<<[-]WORD`.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let lexer = Lexer {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset_env: false,
    };
    let words = lexer.process(line, &[]).map(|(_, w)| w).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Whether `word` is a heredoc marker, and which (no content yet).
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let mut lexer = Lexer {
        escape: '\\',
        raw_quotes: false,
        raw_escapes: false,
        skip_unset_env: true,
    };
    let (_, words) = lexer.process(rest, &[]).map_err(|e| e.0)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lexer.raw_quotes = true;
    let (_, raw_words) = lexer.process(rest, &[]).map_err(|e| e.0)?;
    if raw_words.len() != 1 {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let name = words[0].clone();
    let expand = quotes(&name) == quotes(&raw_words[0]);
    Ok(Some(Heredoc {
        name,
        content: String::new(),
        expand,
        chomp,
    }))
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
