//! Variable expansion and word splitting of instruction arguments, as the
//! Dockerfile's shell-like lexer does it (BuildKit's
//! `frontend/dockerfile/shell/lex.go`, unix flavour).
//!
//! Quotes are removed, the escape character escapes the next character
//! (inside double quotes only `"`, `$` and the escape character itself),
//! and `$NAME`, `${NAME}` and the `${NAME<op>word}` forms are expanded:
//!
//! | form | value |
//! |---|---|
//! | `${V:-w}` / `${V-w}` | `w` when `V` is empty or unset / unset |
//! | `${V:+w}` / `${V+w}` | `w` when `V` is non-empty / set, else empty |
//! | `${V:?m}` / `${V?m}` | error `m` when `V` is empty or unset / unset |
//! | `${V#p}` / `${V##p}` | `V` without its shortest / longest prefix matching glob `p` |
//! | `${V%p}` / `${V%%p}` | `V` without its shortest / longest suffix matching glob `p` |
//! | `${V/p/r}` / `${V//p/r}` | first / every longest match of glob `p` replaced by `r` |
//!
//! Positional and special parameters (`$1`, `$@`, `$#`, ...) are never set.

use std::fmt;

/// An expansion that cannot be done: unterminated quote, bad `${...}`,
/// `${V:?msg}` on an unset variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError(pub String);

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShellError {}

/// Expands one word: quotes removed, escapes processed, `$VAR` / `${VAR}` /
/// `${VAR:-default}` / `${VAR-default}` / `${VAR:+alt}` / `${VAR+alt}` /
/// `${VAR:?msg}` / `${VAR?msg}` / `${VAR#pattern}` / `${VAR%pattern}` /
/// `${VAR/pat/repl}` expanded from `env` (a list of (name, value), later
/// entries win).
pub fn expand_word(
    word: &str,
    env: &[(String, String)],
    escape: char,
) -> Result<String, ShellError> {
    Lexer::new(escape).process(word, env).map(|(word, _)| word)
}

/// Expands and splits into words: unquoted expansions and unquoted blanks
/// split words, quoted text never does (`a"${X}"b` stays one word).
pub fn expand_words(
    text: &str,
    env: &[(String, String)],
    escape: char,
) -> Result<Vec<String>, ShellError> {
    Lexer::new(escape)
        .process(text, env)
        .map(|(_, words)| words)
}

/// The lexer with BuildKit's knobs, for the parser's own uses (heredoc
/// markers are found with quotes and escapes kept).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lexer {
    pub escape: char,
    /// Keep the quote characters in the output.
    pub raw_quotes: bool,
    /// Keep the escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
}

impl Lexer {
    pub(crate) fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
        }
    }

    /// The whole text as one word, and split into words.
    pub(crate) fn process(
        &self,
        src: &str,
        env: &[(String, String)],
    ) -> Result<(String, Vec<String>), ShellError> {
        let mut sw = ShellWord {
            chars: src.chars().collect(),
            pos: 0,
            env,
            lexer: *self,
        };
        sw.process_stop_on(None, self.raw_escapes)
            .map_err(|e| ShellError(format!("failed to process {src:?}: {}", e.0)))
    }
}

/// Words being collected: unquoted blanks end a word, quoted text and
/// escaped characters never do.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct ShellWord<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a [(String, String)],
    lexer: Lexer,
}

fn err<T>(msg: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError(msg.into()))
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn get_env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Processes up to `stop` (consumed) or the end when `stop` is None.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let saved = self.lexer.raw_escapes;
        self.lexer.raw_escapes = raw_escapes;
        let out = self.stop_on(stop);
        self.lexer.raw_escapes = saved;
        out
    }

    fn stop_on(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' => {
                    let value = self.single_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' => {
                    let value = self.double_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.next();
                    let mut ch = ch;
                    if ch == self.lexer.escape {
                        if self.lexer.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape escapes the next character; at the end it vanishes.
                        match self.next() {
                            None => break,
                            Some(next) => {
                                ch = next;
                                words.add_raw_char(ch);
                            }
                        }
                    } else {
                        words.add_char(ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    /// `'...'`: everything literal, no escapes at all.
    fn single_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching single-quote",
                    )
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    /// `"..."`: `$` expands; the escape only escapes `"`, `$` and itself.
    fn double_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching double-quote",
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.lexer.escape {
                        if self.lexer.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape at the very end is dropped (the
                            // missing quote is reported next round).
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.next();
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// A name (letters, digits, `_`), a run of digits (a positional
    /// parameter) or one special parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    /// The word of a `${NAME<op>word}` up to its `}`.
    fn modifier_word(&mut self, raw_escapes: bool) -> Result<String, ShellError> {
        match self.process_stop_on(Some('}'), raw_escapes) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => err("syntax error: missing '}'"),
            Err(e) => Err(e),
        }
    }

    fn process_dollar(&mut self) -> Result<String, ShellError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v.to_string(),
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            Some(_) => {}
        }
        let name = self.process_name();
        let op = self.next();
        let raw = self.lexer.raw_escapes;
        match op {
            None => err("syntax error: missing '}'"),
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v.to_string(),
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => self.colon_form(&name, raw),
            Some(op @ ('+' | '-' | '?')) => {
                let word = self.modifier_word(raw)?;
                let value = self.get_env(&name).map(str::to_string);
                if value.is_none() && self.lexer.skip_unset_env {
                    return Ok(format!("${{{name}{op}{word}}}"));
                }
                match (op, value) {
                    ('+', Some(_)) => Ok(word),
                    ('+', None) => Ok(String::new()),
                    ('-', Some(v)) | ('?', Some(v)) => Ok(v),
                    ('-', None) => Ok(word),
                    _ => {
                        let msg = if word.is_empty() {
                            "is not allowed to be unset"
                        } else {
                            &word
                        };
                        err(format!("{name}: {msg}"))
                    }
                }
            }
            Some(op @ ('#' | '%')) => self.trim_form(&name, op),
            Some('/') => self.replace_form(&name, raw),
            Some(other) => err(format!("unsupported modifier ({other}) in substitution")),
        }
    }

    /// `${NAME:-w}`, `${NAME:+w}`, `${NAME:?m}` after the `:`.
    fn colon_form(&mut self, name: &str, raw: bool) -> Result<String, ShellError> {
        let modifier = self.next();
        let word = self.modifier_word(raw)?;
        let set = self.get_env(name).map(str::to_string);
        if set.is_none() && self.lexer.skip_unset_env {
            let m = modifier.map(String::from).unwrap_or_default();
            return Ok(format!("${{{name}:{m}{word}}}"));
        }
        let value = set.clone().unwrap_or_default();
        match modifier {
            Some('+') => Ok(if value.is_empty() {
                String::new()
            } else {
                word
            }),
            Some('-') => Ok(if value.is_empty() { word } else { value }),
            Some('?') => {
                if value.is_empty() {
                    let default = if set.is_none() {
                        "is not allowed to be unset"
                    } else {
                        "is not allowed to be empty"
                    };
                    let msg = if word.is_empty() { default } else { &word };
                    return err(format!("{name}: {msg}"));
                }
                Ok(value)
            }
            other => err(format!(
                "unsupported modifier ({}) in substitution",
                other.map(String::from).unwrap_or_default()
            )),
        }
    }

    /// `${NAME#p}`, `${NAME##p}`, `${NAME%p}`, `${NAME%%p}` after the op.
    fn trim_form(&mut self, name: &str, op: char) -> Result<String, ShellError> {
        let longest = self.peek() == Some(op);
        if longest {
            self.next();
        }
        let pattern = self.modifier_word(true)?;
        let Some(value) = self.get_env(name).map(str::to_string) else {
            if self.lexer.skip_unset_env {
                let op = if longest {
                    format!("{op}{op}")
                } else {
                    op.to_string()
                };
                return Ok(format!("${{{name}{op}{pattern}}}"));
            }
            return Ok(String::new());
        };
        let glob = Glob::compile(&pattern, self.lexer.escape);
        Ok(if op == '#' {
            glob.trim_prefix(&value, longest)
        } else {
            glob.trim_suffix(&value, longest)
        })
    }

    /// `${NAME/p/r}`, `${NAME//p/r}` after the first `/`.
    fn replace_form(&mut self, name: &str, raw: bool) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => {
                return err("syntax error: missing '/' in ${NAME/pattern/replacement}")
            }
            Err(e) => return Err(e),
        };
        let replacement = self.modifier_word(raw)?;
        let Some(value) = self.get_env(name).map(str::to_string) else {
            if self.lexer.skip_unset_env {
                let op = if all { "//" } else { "/" };
                return Ok(format!("${{{name}{op}{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let glob = Glob::compile(&pattern, self.lexer.escape);
        Ok(glob.replace(&value, &replacement, all))
    }
}

/// A shell glob for the `#`, `%` and `/` forms: `*` any string, `?` any
/// character, `[...]` a class (`[!...]`/`[^...]` negated), the escape
/// character makes the next character literal.
#[derive(Debug)]
struct Glob(Vec<GlobTok>);

#[derive(Debug)]
enum GlobTok {
    Lit(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    fn compile(pattern: &str, escape: char) -> Glob {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            match ch {
                '*' => toks.push(GlobTok::Star),
                '?' => toks.push(GlobTok::Any),
                '[' => match Self::class(&chars[i..], escape) {
                    Some((tok, used)) => {
                        toks.push(tok);
                        i += used;
                    }
                    // An unclosed `[` is literal, as in sh.
                    None => toks.push(GlobTok::Lit('[')),
                },
                c if c == escape => match chars.get(i) {
                    Some(&next) => {
                        toks.push(GlobTok::Lit(next));
                        i += 1;
                    }
                    None => toks.push(GlobTok::Lit(c)),
                },
                c => toks.push(GlobTok::Lit(c)),
            }
        }
        Glob(toks)
    }

    /// A class after its `[`: the token and how many characters it used.
    fn class(chars: &[char], escape: char) -> Option<(GlobTok, usize)> {
        let mut i = 0;
        let negated = matches!(chars.first(), Some('!' | '^'));
        if negated {
            i += 1;
        }
        let mut ranges = Vec::new();
        loop {
            let mut lo = *chars.get(i)?;
            i += 1;
            if lo == ']' && !ranges.is_empty() {
                return Some((GlobTok::Class { negated, ranges }, i));
            }
            if lo == escape {
                lo = *chars.get(i)?;
                i += 1;
            }
            let mut hi = lo;
            if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                hi = *chars.get(i + 1)?;
                i += 2;
                if hi == escape {
                    hi = *chars.get(i)?;
                    i += 1;
                }
            }
            ranges.push((lo, hi));
        }
    }

    fn matches(&self, s: &[char]) -> bool {
        let mut memo = vec![None; (self.0.len() + 1) * (s.len() + 1)];
        self.at(0, 0, s, &mut memo)
    }

    fn at(&self, t: usize, p: usize, s: &[char], memo: &mut Vec<Option<bool>>) -> bool {
        let key = t * (s.len() + 1) + p;
        if let Some(known) = memo[key] {
            return known;
        }
        let result = match self.0.get(t) {
            None => p == s.len(),
            Some(GlobTok::Star) => (p..=s.len()).any(|q| self.at(t + 1, q, s, memo)),
            Some(tok) => {
                s.get(p).is_some_and(|&c| match tok {
                    GlobTok::Lit(l) => c == *l,
                    GlobTok::Any => true,
                    GlobTok::Class { negated, ranges } => {
                        ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
                    }
                    GlobTok::Star => false,
                }) && self.at(t + 1, p + 1, s, memo)
            }
        };
        memo[key] = Some(result);
        result
    }

    fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let found = if longest {
            (0..=chars.len())
                .rev()
                .find(|&end| self.matches(&chars[..end]))
        } else {
            (0..=chars.len()).find(|&end| self.matches(&chars[..end]))
        };
        match found {
            Some(end) => chars[end..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let found = if longest {
            (0..=chars.len()).find(|&start| self.matches(&chars[start..]))
        } else {
            (0..=chars.len())
                .rev()
                .find(|&start| self.matches(&chars[start..]))
        };
        match found {
            Some(start) => chars[..start].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Replaces the leftmost-longest match (every one with `all`).
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        if self.0.is_empty() {
            return value.to_string();
        }
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut start = 0;
        let mut replaced = false;
        while start <= chars.len() && (all || !replaced) {
            let end = (start..=chars.len())
                .rev()
                .find(|&end| self.matches(&chars[start..end]));
            match end {
                Some(end) => {
                    out.push_str(replacement);
                    replaced = true;
                    if end == start {
                        // An empty match: keep one character and go on.
                        out.extend(chars.get(start));
                        start += 1;
                    } else {
                        start = end;
                    }
                }
                None => {
                    out.extend(chars.get(start));
                    start += 1;
                }
            }
        }
        out.extend(chars.get(start..).unwrap_or_default());
        out
    }
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
