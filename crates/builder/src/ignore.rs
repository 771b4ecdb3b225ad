//! `.dockerignore`: which context files the build never sees.
//!
//! Docker's rules (moby/patternmatcher and its `ignorefile` reader): one
//! pattern per line; lines starting with `#` are comments; blank lines are
//! skipped; patterns are cleaned like Go's `filepath.Clean` and a leading
//! `/` is dropped, so `/foo/`, `./foo` and `foo` are the same. `!pattern`
//! re-includes what earlier patterns excluded; the last matching pattern
//! wins. `*` matches within one path element, `?` one character other than
//! `/`, `[a-z]`/`[^a-z]` a class, `\` escapes, and `**` any number of
//! directories (`**/*.log`, `dir/**`, `**`). A pattern that matches a
//! directory also excludes everything below it (`foo` excludes `foo/bar`).

/// The compiled patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    exceptions: bool,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without its `!`.
    text: String,
    exception: bool,
    kind: Kind,
}

/// How a pattern matches, as patternmatcher sorts them: plain text is
/// compared exactly, `prefix/**` and `**suffix` by prefix and suffix, the
/// rest through the token matcher.
#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// `[...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` or a `**` inside a pattern: nothing, or anything ending in `/`.
    AnyDirs,
    /// A trailing `**` after other wildcards: anything.
    Any,
}

impl Ignore {
    /// Reads a `.dockerignore`'s text. A malformed pattern (an unterminated
    /// `[`, a trailing `\`, a lone `!`) is an error naming it.
    pub fn parse(content: &str) -> Result<Ignore, String> {
        let content = content.strip_prefix('\u{feff}').unwrap_or(content);
        let mut ignore = Ignore::default();
        for line in content.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err("illegal exclusion pattern: \"!\"".to_string());
                }
            }
            let mut text = clean(pattern);
            if text.len() > 1 && text.starts_with('/') {
                text.remove(0);
            }
            validate(&text).map_err(|e| format!("bad pattern {line:?}: {e}"))?;
            let kind = compile(&text);
            ignore.exceptions |= exception;
            ignore.patterns.push(Pattern {
                text,
                exception,
                kind,
            });
        }
        Ok(ignore)
    }

    /// Whether the context-relative path (forward slashes, no leading "./")
    /// is excluded: the last pattern matching the path or one of its parent
    /// directories decides.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let path = path.trim_start_matches('/');
        if path.is_empty() || path == "." {
            return false;
        }
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut matched = false;
        for pattern in &self.patterns {
            // An exclusion only matters while unmatched, an exception
            // only once matched.
            if pattern.exception != matched {
                continue;
            }
            if pattern.matches(path) || parents.iter().any(|p| pattern.matches(p)) {
                matched = !pattern.exception;
            }
        }
        matched
    }

    /// Whether any `!` exception exists (then an excluded directory must
    /// still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.exceptions
    }

    /// Whether an exception could bring back something below the excluded
    /// directory `dir` (which must then still be walked): an exception
    /// whose leading elements match `dir`'s and that has more elements, or
    /// that holds a `**` in time.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir = clean(dir);
        let parts: Vec<&str> = dir
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            let elements: Vec<&str> = p.text.split('/').collect();
            for (i, d) in parts.iter().enumerate() {
                match elements.get(i) {
                    Some(e) if e.contains("**") => return true,
                    Some(e) if compile(e).matches(e, d) => {}
                    _ => return false,
                }
            }
            elements.len() > parts.len()
        })
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        self.kind.matches(&self.text, path)
    }
}

impl Kind {
    fn matches(&self, text: &str, path: &str) -> bool {
        match self {
            Kind::Exact => path == text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Tokens(toks) => {
                let chars: Vec<char> = path.chars().collect();
                let mut memo = vec![None; (toks.len() + 1) * (chars.len() + 1)];
                match_at(toks, 0, &chars, 0, &mut memo)
            }
        }
    }
}

fn match_at(toks: &[Tok], t: usize, s: &[char], p: usize, memo: &mut Vec<Option<bool>>) -> bool {
    let key = t * (s.len() + 1) + p;
    if let Some(known) = memo[key] {
        return known;
    }
    let result = match toks.get(t) {
        None => p == s.len(),
        Some(Tok::Star) => {
            let mut q = p;
            loop {
                if match_at(toks, t + 1, s, q, memo) {
                    break true;
                }
                if q == s.len() || s[q] == '/' {
                    break false;
                }
                q += 1;
            }
        }
        Some(Tok::Any) => (p..=s.len()).any(|q| match_at(toks, t + 1, s, q, memo)),
        Some(Tok::AnyDirs) => {
            match_at(toks, t + 1, s, p, memo)
                || (p..s.len()).any(|q| s[q] == '/' && match_at(toks, t + 1, s, q + 1, memo))
        }
        Some(tok) => {
            s.get(p).is_some_and(|&c| match tok {
                Tok::Lit(l) => c == *l,
                Tok::One => c != '/',
                Tok::Class { negated, ranges } => {
                    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
                }
                Tok::Star | Tok::Any | Tok::AnyDirs => false,
            }) && match_at(toks, t + 1, s, p + 1, memo)
        }
    };
    memo[key] = Some(result);
    result
}

/// patternmatcher's compile: the match kind of a cleaned pattern.
fn compile(text: &str) -> Kind {
    #[derive(PartialEq)]
    enum K {
        Exact,
        Prefix,
        Suffix,
        Tokens,
    }
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut kind = K::Exact;
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    // A trailing `**` matches everything below.
                    if kind == K::Exact {
                        kind = K::Prefix;
                    } else {
                        toks.push(Tok::Any);
                        kind = K::Tokens;
                    }
                } else {
                    toks.push(Tok::AnyDirs);
                    kind = K::Tokens;
                }
                if start == 0 {
                    kind = K::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                kind = K::Tokens;
            }
            '?' => {
                toks.push(Tok::One);
                kind = K::Tokens;
            }
            '[' => {
                // validate() made sure the class is well formed.
                if let Ok((tok, used)) = class(&chars[i..]) {
                    toks.push(tok);
                    i += used;
                }
                kind = K::Tokens;
            }
            '\\' => {
                // patternmatcher would compare `a\*b` as text; matching
                // the escaped character is what the pattern means.
                if kind == K::Exact {
                    kind = K::Tokens;
                }
                match chars.get(i) {
                    Some(&next) => {
                        toks.push(Tok::Lit(next));
                        i += 1;
                    }
                    None => toks.push(Tok::Lit('\\')),
                }
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    match kind {
        K::Exact => Kind::Exact,
        K::Prefix => Kind::Prefix(text[..text.len() - 2].to_string()),
        K::Suffix => Kind::Suffix(text[2..].to_string()),
        K::Tokens => Kind::Tokens(toks),
    }
}

/// A `[...]` class after its `[`: the token and the characters used, or
/// the reason it is malformed.
fn class(chars: &[char]) -> Result<(Tok, usize), &'static str> {
    let mut i = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let one = |i: &mut usize| -> Result<char, &'static str> {
        let c = *chars.get(*i).ok_or("unterminated [")?;
        *i += 1;
        match c {
            '-' | ']' => Err("character class item starts with - or ]"),
            '\\' => {
                let c = *chars.get(*i).ok_or("trailing \\ in class")?;
                *i += 1;
                Ok(c)
            }
            c => Ok(c),
        }
    };
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Tok::Class { negated, ranges }, i + 1));
        }
        let lo = one(&mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = one(&mut i)?;
            if hi < lo {
                return Err("character range out of order");
            }
        }
        ranges.push((lo, hi));
    }
}

/// The syntax check Go's `filepath.Match` does.
fn validate(text: &str) -> Result<(), &'static str> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 == chars.len() {
                    return Err("trailing \\");
                }
                i += 2;
            }
            '[' => {
                let (_, used) = class(&chars[i + 1..])?;
                i += 1 + used;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `path.Clean`: collapses `//`, removes `.` elements and resolves
/// `..`, drops a trailing `/`; the empty path is `.`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
#[path = "ignore_tests.rs"]
mod tests;
