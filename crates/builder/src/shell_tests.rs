use super::*;

use crate::test_corpus as corpus;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn word(w: &str, e: &[(&str, &str)]) -> Result<String, ShellError> {
    expand_word(w, &env(e), '\\')
}

#[test]
fn corpus_env_var_test() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("shell/envVarTest")).expect("read envVarTest");
    let env = env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 3, "line {}: {line:?}", n + 1);
        let (platform, input, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        assert!(platform == "A" || platform == "U", "line {}", n + 1);
        let got = expand_word(input, &env, '\\');
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(g), e) => e != "error" && g == e,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} -> {got:?}, want {expected:?}",
                n + 1
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 200, "only {checked} cases");
}

#[test]
fn corpus_words_test() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("shell/wordsTest")).expect("read wordsTest");
    let mut env: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(def) = line.strip_prefix("ENV ") {
            let def = def.trim_start_matches(' ');
            let (k, v) = def.split_once('=').expect("ENV k=v");
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 2, "line {}: {line:?}", n + 1);
        let input = parts[0].trim();
        let expected: Vec<String> = parts[1]
            .trim_start_matches(' ')
            .split(',')
            .map(str::to_string)
            .collect();
        let got = match expand_words(input, &env, '\\') {
            Ok(w) => w,
            Err(_) => vec!["error".to_string()],
        };
        if got != expected {
            failures.push(format!(
                "line {}: {input:?} -> {got:?}, want {expected:?}",
                n + 1
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 20);
}

#[test]
fn default_forms() {
    let e = [("SET", "v"), ("EMPTY", "")];
    assert_eq!(word("${UNSET:-d}", &e).unwrap(), "d");
    assert_eq!(word("${EMPTY:-d}", &e).unwrap(), "d");
    assert_eq!(word("${SET:-d}", &e).unwrap(), "v");
    assert_eq!(word("${UNSET-d}", &e).unwrap(), "d");
    assert_eq!(word("${EMPTY-d}", &e).unwrap(), "");
    assert_eq!(word("${SET-d}", &e).unwrap(), "v");
}

#[test]
fn alternative_forms() {
    let e = [("SET", "v"), ("EMPTY", "")];
    assert_eq!(word("${UNSET:+a}", &e).unwrap(), "");
    assert_eq!(word("${EMPTY:+a}", &e).unwrap(), "");
    assert_eq!(word("${SET:+a}", &e).unwrap(), "a");
    assert_eq!(word("${UNSET+a}", &e).unwrap(), "");
    assert_eq!(word("${EMPTY+a}", &e).unwrap(), "a");
    assert_eq!(word("${SET+a}", &e).unwrap(), "a");
}

#[test]
fn error_forms() {
    let e = [("SET", "v"), ("EMPTY", "")];
    assert_eq!(word("${SET:?boom}", &e).unwrap(), "v");
    let msg = word("${UNSET:?boom}", &e).unwrap_err().to_string();
    assert!(msg.contains("UNSET: boom"), "{msg}");
    let msg = word("${EMPTY:?}", &e).unwrap_err().to_string();
    assert!(msg.contains("EMPTY: is not allowed to be empty"), "{msg}");
    assert_eq!(word("${EMPTY?}", &e).unwrap(), "");
    let msg = word("${UNSET?}", &e).unwrap_err().to_string();
    assert!(msg.contains("UNSET: is not allowed to be unset"), "{msg}");
}

#[test]
fn nested_defaults_and_quotes() {
    let e = [("A", "x y")];
    assert_eq!(word("${B:-${A}}", &e).unwrap(), "x y");
    // As in BuildKit (not sh), quotes inside `${...}` are removed even
    // within double quotes.
    assert_eq!(word("\"${B:-'q'}\"", &e).unwrap(), "q");
    assert_eq!(
        expand_words("${B:-$A} z", &env(&e), '\\').unwrap(),
        vec!["x", "y", "z"]
    );
    assert_eq!(
        expand_words("\"$A\" z", &env(&e), '\\').unwrap(),
        vec!["x y", "z"]
    );
}

#[test]
fn later_entries_win() {
    assert_eq!(word("$A", &[("A", "1"), ("A", "2")]).unwrap(), "2");
}

#[test]
fn prefix_and_suffix_removal() {
    let e = [("P", "/usr/local/bin/tool.tar.gz"), ("L", "linux/arm64")];
    assert_eq!(word("${P#*/}", &e).unwrap(), "usr/local/bin/tool.tar.gz");
    assert_eq!(word("${P##*/}", &e).unwrap(), "tool.tar.gz");
    assert_eq!(word("${P%.*}", &e).unwrap(), "/usr/local/bin/tool.tar");
    assert_eq!(word("${P%%.*}", &e).unwrap(), "/usr/local/bin/tool");
    assert_eq!(word("${L%/*}", &e).unwrap(), "linux");
    assert_eq!(word("${L##*/}", &e).unwrap(), "arm64");
    assert_eq!(word("${L#nomatch}", &e).unwrap(), "linux/arm64");
    assert_eq!(word("${L#[a-l]}", &e).unwrap(), "inux/arm64");
    assert_eq!(word("${L%\\4}", &e).unwrap(), "linux/arm6");
    assert_eq!(word("${UNSET#x}", &e).unwrap(), "");
}

#[test]
fn substitution() {
    let e = [("V", "a-b-c")];
    assert_eq!(word("${V/-/_}", &e).unwrap(), "a_b-c");
    assert_eq!(word("${V//-/_}", &e).unwrap(), "a_b_c");
    assert_eq!(word("${V/b*/X}", &e).unwrap(), "a-X");
    assert_eq!(word("${V//?/.}", &e).unwrap(), ".....");
    assert_eq!(word("${V/zz/y}", &e).unwrap(), "a-b-c");
    assert_eq!(word("${V//-}", &e).ok(), None, "needs the replacement part");
}

#[test]
fn escapes_and_backtick() {
    assert_eq!(expand_word("a`$b", &[], '`').unwrap(), "a$b");
    assert_eq!(expand_word("c:\\dir", &[], '`').unwrap(), "c:\\dir");
    assert_eq!(expand_word("\"x`\"y\"", &[], '`').unwrap(), "x\"y");
    assert_eq!(word("a\\ b", &[]).unwrap(), "a b");
    assert_eq!(
        expand_words("a\\ b c", &[], '\\').unwrap(),
        vec!["a b", "c"]
    );
}

#[test]
fn bad_substitutions() {
    for bad in [
        "${", "${}", "${:-x}", "${A", "${A:-x", "${A:=x}", "${A^}", "'x", "\"x",
    ] {
        assert!(word(bad, &[]).is_err(), "{bad:?} should fail");
    }
}

#[test]
fn lexer_raw_modes_keep_quotes_and_unset() {
    let lexer = Lexer {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset_env: true,
    };
    let (w, words) = lexer.process("a \"b c\" \\d $X ${Y}", &[]).unwrap();
    assert_eq!(w, "a \"b c\" \\d $X ${Y}");
    assert_eq!(words, vec!["a", "\"b c\"", "\\d", "$X", "${Y}"]);
}
