use super::*;

use std::path::PathBuf;

use crate::test_corpus as corpus;

fn cases(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn sexps(src: &str) -> Vec<String> {
    parse(src)
        .unwrap_or_else(|e| panic!("{src:?}: {e}"))
        .nodes
        .iter()
        .map(Node::to_sexp)
        .collect()
}

fn one(src: &str) -> Node {
    let mut nodes = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}")).nodes;
    assert_eq!(nodes.len(), 1, "{src:?}");
    nodes.remove(0)
}

#[test]
fn corpus_parse_cases() {
    let Some(dir) = corpus() else { return };
    let mut failures = Vec::new();
    let all = cases(&dir.join("parse"));
    for case in &all {
        let src = std::fs::read_to_string(case.join("Dockerfile")).expect("Dockerfile");
        let want = std::fs::read_to_string(case.join("result")).expect("result");
        let want: Vec<&str> = want.lines().collect();
        match parse(&src) {
            Ok(parsed) => {
                let got: Vec<String> = parsed.nodes.iter().map(Node::to_sexp).collect();
                if got != want {
                    failures.push(format!(
                        "{}:\n got {got:#?}\nwant {want:#?}",
                        case.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(all.len() >= 30, "only {} cases", all.len());
}

#[test]
fn corpus_parse_negative_cases() {
    let Some(dir) = corpus() else { return };
    let all = cases(&dir.join("parse-negative"));
    for case in &all {
        let src = std::fs::read_to_string(case.join("Dockerfile")).expect("Dockerfile");
        assert!(parse(&src).is_err(), "{} parsed", case.display());
        assert!(
            crate::instructions::parse_dockerfile(&src).is_err(),
            "{} parsed",
            case.display()
        );
    }
    assert!(all.len() >= 4);
}

#[test]
fn node_fields() {
    let parsed = parse("FROM a\n\nCOPY --from=b --chown=1:1 x \\\n  /y\n").unwrap();
    let node = &parsed.nodes[1];
    assert_eq!(node.line, 3);
    assert_eq!(node.end_line, 4);
    assert_eq!(node.keyword, "copy");
    assert_eq!(node.flags, vec!["--from=b", "--chown=1:1"]);
    assert_eq!(node.args, vec!["x", "/y"]);
    assert!(!node.json);
    assert_eq!(node.original, "COPY --from=b --chown=1:1 x   /y");
    assert_eq!(parsed.escape, '\\');
    assert!(parsed.warnings.is_empty());
}

#[test]
fn instructions_are_case_insensitive() {
    assert_eq!(
        sexps("from a\nRuN x\n"),
        vec!["(from \"a\")", "(run \"x\")"]
    );
}

#[test]
fn unknown_instruction_is_an_error() {
    let e = parse("FROM a\n\nFOO bar\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(e.instruction.as_deref(), Some("FOO"));
    assert!(e.message.contains("unknown instruction: FOO"), "{e}");
    assert!(e.to_string().starts_with("Dockerfile:3: FOO: "), "{e}");
}

#[test]
fn empty_and_comment_only_files() {
    for src in ["", "\n\n", "# c\n# d\n", "   \n\t\n"] {
        let e = parse(src).unwrap_err();
        assert!(
            e.message.contains("file with no instructions"),
            "{src:?}: {e}"
        );
    }
}

#[test]
fn directives() {
    let p = parse("# escape=`\nFROM a\nRUN x `\n  y\n").unwrap();
    assert_eq!(p.escape, '`');
    assert_eq!(p.nodes[1].args, vec!["x   y"]);
    let p = parse("# SYNTAX = docker/dockerfile:1\n#Escape=\\\nFROM a\n").unwrap();
    assert_eq!(p.escape, '\\');
    // After a comment or a blank line, directives are plain comments.
    assert_eq!(parse("# hi\n# escape=`\nFROM a\n").unwrap().escape, '\\');
    assert_eq!(parse("\n# escape=`\nFROM a\n").unwrap().escape, '\\');
    assert_eq!(parse("FROM a\n# escape=`\nRUN b\n").unwrap().escape, '\\');
    let e = parse("# escape=x\nFROM a\n").unwrap_err();
    assert!(e.message.contains("invalid escape token"), "{e}");
    assert_eq!(e.line, 1);
    let e = parse("# escape=`\n# escape=`\nFROM a\n").unwrap_err();
    assert!(e.message.contains("only one escape"), "{e}");
    assert_eq!(e.line, 2);
}

#[test]
fn bom_and_crlf() {
    let p = parse("\u{feff}FROM a\r\nRUN x \\\r\n  y\r\n").unwrap();
    assert_eq!(
        p.nodes.iter().map(Node::to_sexp).collect::<Vec<_>>(),
        vec!["(from \"a\")", "(run \"x   y\")"]
    );
    let p = parse("FROM a\r\nRUN <<EOF\r\nline\r\nEOF\r\n").unwrap();
    assert_eq!(p.nodes[1].heredocs[0].content, "line\n");
}

#[test]
fn continuations_comments_and_blank_lines() {
    let p = parse("FROM a\nRUN a \\\n# comment\n\n  b \\\n   # indented comment\n  c\n").unwrap();
    assert_eq!(p.nodes[1].args, vec!["a   b   c"]);
    assert_eq!(p.nodes[1].line, 2);
    assert_eq!(p.nodes[1].end_line, 7);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    // An escaped escape does not continue the line.
    let p = parse("FROM a\nENV A b\\\\\nENV C d\n").unwrap();
    assert_eq!(p.nodes.len(), 3);
    // Continuation at end of file.
    assert_eq!(
        sexps("FROM a\nRUN x \\"),
        vec!["(from \"a\")", "(run \"x\")"]
    );
}

#[test]
fn json_and_shell_forms() {
    let n = one("CMD [\"a\", \"b c\"]");
    assert_eq!(
        (n.args.clone(), n.json),
        (vec!["a".into(), "b c".into()], true)
    );
    let n = one("CMD ['a']");
    assert_eq!((n.args.clone(), n.json), (vec!["['a']".to_string()], false));
    let n = one("VOLUME /a /b");
    assert_eq!(
        (n.args.clone(), n.json),
        (vec!["/a".into(), "/b".into()], false)
    );
    let n = one("VOLUME [\"/a\"]");
    assert!(n.json);
    let e = parse("RUN [\"a\", 1]").unwrap_err();
    assert!(e.message.contains("strings only"), "{e}");
    let n = one("SHELL [\"/bin/bash\", \"-c\"]");
    assert!(n.json);
    // Trailing garbage after the array: shell form.
    let n = one("CMD [\"a\"] b");
    assert!(!n.json);
}

#[test]
fn flags_stop_at_the_first_non_flag() {
    let n = one("COPY --chown=\"a b\" --link -- --x y");
    assert_eq!(n.flags, vec!["--chown=a b", "--link"]);
    assert_eq!(n.args, vec!["--x", "y"]);
    let n = one("RUN --mount=type=cache,target=/c echo --not-a-flag");
    assert_eq!(n.flags, vec!["--mount=type=cache,target=/c"]);
    assert_eq!(n.args, vec!["echo --not-a-flag"]);
}

#[test]
fn env_label_arg_splitting() {
    assert_eq!(one("ENV a b c").args, vec!["a", "b c", ""]);
    assert_eq!(
        one("ENV a=1 b=\"x y\"").args,
        vec!["a", "1", "=", "b", "\"x y\"", "="]
    );
    assert_eq!(one("LABEL \"k\"=v").args, vec!["\"k\"", "v", "="]);
    assert!(parse("ENV a").is_err());
    assert!(parse("LABEL a").is_err());
    let e = parse("ENV a=1 b").unwrap_err();
    assert!(e.message.contains("can't find ="), "{e}");
    assert_eq!(one("ARG a b=\"c d\"").args, vec!["a", "b=\"c d\""]);
}

#[test]
fn healthcheck_and_onbuild_nodes() {
    assert_eq!(
        one("HEALTHCHECK --retries=2 CMD [\"a\"]").to_sexp(),
        "(healthcheck [\"--retries=2\"] \"CMD\" \"a\")"
    );
    let n = one("ONBUILD COPY --from=x a b");
    assert_eq!(n.to_sexp(), "(onbuild (copy [\"--from=x\"] \"a\" \"b\"))");
    let t = n.trigger.as_deref().expect("trigger");
    assert_eq!(t.keyword, "copy");
    assert_eq!(t.flags, vec!["--from=x"]);
    let e = parse("ONBUILD BOGUS x").unwrap_err();
    assert!(e.message.contains("unknown instruction: BOGUS"), "{e}");
}

#[test]
fn heredocs() {
    let p = parse("FROM a\nRUN <<EOF\necho $HOME\n  two\nEOF\nRUN next\n").unwrap();
    let run = &p.nodes[1];
    assert_eq!(run.args, vec!["<<EOF"]);
    assert_eq!((run.line, run.end_line), (2, 5));
    assert_eq!(
        run.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "echo $HOME\n  two\n".into(),
            expand: true,
            chomp: false,
        }]
    );
    assert_eq!(p.nodes[2].line, 6);
}

#[test]
fn heredoc_variants() {
    let p = parse("RUN <<-EOT\n\t\tindented\n\tEOT\n").unwrap();
    let doc = &p.nodes[0].heredocs[0];
    assert_eq!((doc.content.as_str(), doc.chomp), ("indented\n", true));

    for marker in ["<<\"EOF\"", "<<'EOF'", "<<E\"O\"F"] {
        let p = parse(&format!("RUN {marker}\n$X\nEOF\n")).unwrap();
        let doc = &p.nodes[0].heredocs[0];
        assert_eq!(doc.name, "EOF", "{marker}");
        assert!(!doc.expand, "{marker}");
    }

    let p = parse("RUN cat <<A >a && cat <<B >b\n1\nA\n2\nB\n").unwrap();
    let docs = &p.nodes[0].heredocs;
    assert_eq!(docs.len(), 2);
    assert_eq!(
        (docs[0].name.as_str(), docs[0].content.as_str()),
        ("A", "1\n")
    );
    assert_eq!(
        (docs[1].name.as_str(), docs[1].content.as_str()),
        ("B", "2\n")
    );

    let p = parse("COPY <<EOF /dest\nhello\nEOF\n").unwrap();
    assert_eq!(p.nodes[0].args, vec!["<<EOF", "/dest"]);
    assert_eq!(p.nodes[0].heredocs[0].content, "hello\n");

    // Not for other instructions, nor JSON form, nor quoted text.
    let p = parse("FROM a\nCMD <<EOF\nRUN x\n").unwrap();
    assert_eq!(p.nodes.len(), 3);
    let p = parse("RUN [\"cat\", \"<<EOF\"]\nRUN x\n").unwrap();
    assert_eq!(p.nodes.len(), 2);
    let p = parse("RUN echo '<<EOF'\nRUN x\n").unwrap();
    assert_eq!(p.nodes.len(), 2);
    // Here-strings are not heredocs.
    let p = parse("RUN cat <<<word\nRUN x\n").unwrap();
    assert_eq!(p.nodes.len(), 2);
}

#[test]
fn unterminated_heredoc() {
    let e = parse("FROM a\nRUN <<EOF\nno end\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert_eq!(e.instruction.as_deref(), Some("RUN"));
    assert!(e.message.contains("unterminated heredoc"), "{e}");
}

#[test]
fn onbuild_heredoc_is_consumed() {
    let p = parse("ONBUILD RUN <<EOF\nbody\nEOF\nRUN x\n").unwrap();
    assert_eq!(p.nodes.len(), 2);
    assert_eq!(p.nodes[0].heredocs[0].content, "body\n");
}

#[test]
fn go_quoting() {
    assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(go_quote("\t\n\x00\x7f"), "\"\\t\\n\\x00\\x7f\"");
    assert_eq!(go_quote("♥ 한"), "\"♥ 한\"");
    assert_eq!(go_quote("\u{a0}\u{feff}"), "\"\\u00a0\\ufeff\"");
}
