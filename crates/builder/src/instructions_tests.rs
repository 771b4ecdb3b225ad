use super::*;

use std::path::PathBuf;

fn df(src: &str) -> Dockerfile {
    parse_dockerfile(src).unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

/// The instruction of a one-step stage `FROM base\n<src>`.
fn one(src: &str) -> Instruction {
    let d = df(&format!("FROM base\n{src}\n"));
    assert_eq!(d.stages[0].steps.len(), 1, "{src:?}");
    d.stages[0].steps[0].instruction.clone()
}

/// The error of `FROM base\n<src>` (so the instruction is on line 2).
fn err(src: &str) -> ParseError {
    match parse_dockerfile(&format!("FROM base\n{src}\n")) {
        Ok(d) => panic!("{src:?} parsed: {d:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn err_has(src: &str, instruction: &str, text: &str) {
    let e = err(src);
    assert_eq!(e.line, 2, "{src:?}: {e}");
    assert_eq!(e.instruction.as_deref(), Some(instruction), "{src:?}: {e}");
    assert!(e.message.contains(text), "{src:?}: {e}");
    assert!(
        e.to_string()
            .starts_with(&format!("Dockerfile:2: {instruction}: ")),
        "{e}"
    );
}

fn shell(s: &str) -> Command {
    Command::Shell(s.to_string())
}

fn exec(v: &[&str]) -> Command {
    Command::Exec(v.iter().map(|s| s.to_string()).collect())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn from_with_name_and_platform() {
    let d = df("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nRUN make\nFROM scratch\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(d.stages.len(), 2);
    let s = &d.stages[0];
    assert_eq!(s.name.as_deref(), Some("build"));
    assert_eq!(s.base, "golang:1.22");
    assert_eq!(s.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s.line, 1);
    assert_eq!(
        s.original,
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build"
    );
    assert_eq!(s.steps.len(), 1);
    assert_eq!(s.steps[0].line, 2);
    assert_eq!(s.steps[0].original, "RUN make");
    assert_eq!(d.stages[1].name, None);
    assert_eq!(d.stages[1].base, "scratch");
    assert!(d.stages[1].steps.is_empty());
    assert_eq!(df("from a as b\n").stages[0].name.as_deref(), Some("b"));
}

#[test]
fn from_errors() {
    for (src, text) in [
        ("FROM --bogus=1 a\n", "unknown flag: bogus"),
        ("FROM\n", "one or three arguments"),
        ("FROM a b\n", "one or three arguments"),
        ("FROM a TO b\n", "one or three arguments"),
        ("FROM a AS 1x\n", "invalid name for build stage"),
        ("FROM a AS b$c\n", "invalid name for build stage"),
        ("FROM a AS b\nFROM c AS B\n", "duplicate stage name"),
    ] {
        let e = parse_dockerfile(src).unwrap_err();
        assert_eq!(e.instruction.as_deref(), Some("FROM"), "{src:?}: {e}");
        assert!(e.message.contains(text), "{src:?}: {e}");
    }
}

#[test]
fn meta_args_before_the_first_from() {
    let d = df("ARG V=1.0 B\nARG C=\"x y\"\nFROM img:$V\nARG D=2\nARG E\n");
    assert_eq!(
        d.meta_args,
        vec![
            ("V".to_string(), Some("1.0".to_string())),
            ("B".to_string(), None),
            ("C".to_string(), Some("\"x y\"".to_string())),
        ]
    );
    assert_eq!(d.stages[0].base, "img:$V");
    assert_eq!(
        d.stages[0].steps[0].instruction,
        Instruction::Arg(vec![("D".to_string(), Some("2".to_string()))])
    );
    assert_eq!(
        d.stages[0].steps[1].instruction,
        Instruction::Arg(vec![("E".to_string(), None)])
    );
    assert_eq!(
        one("ARG a= b"),
        Instruction::Arg(vec![("a".into(), Some(String::new())), ("b".into(), None)])
    );
}

#[test]
fn structure_errors() {
    let e = parse_dockerfile("# comment\n\nRUN x\nFROM a\n").unwrap_err();
    assert_eq!((e.line, e.instruction.as_deref()), (3, Some("RUN")));
    assert!(
        e.message.contains("no build stage in current context"),
        "{e}"
    );
    let e = parse_dockerfile("ARG A\nARG B\n").unwrap_err();
    assert!(e.message.contains("no FROM"), "{e}");
    let e = parse_dockerfile("").unwrap_err();
    assert!(e.message.contains("file with no instructions"), "{e}");
    let e = parse_dockerfile("FROM a\nRUN x\n\nCOPY y\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:4: COPY: COPY requires at least two arguments, but only one was \
         provided. Destination could not be determined"
    );
}

#[test]
fn run_forms() {
    assert_eq!(
        one("RUN apt-get update && \\\n    apt-get install -y x"),
        Instruction::Run {
            command: shell("apt-get update &&     apt-get install -y x"),
            heredocs: vec![],
            network: None,
        }
    );
    assert_eq!(
        one("RUN [\"/bin/sh\", \"-c\", \"echo hi\"]"),
        Instruction::Run {
            command: exec(&["/bin/sh", "-c", "echo hi"]),
            heredocs: vec![],
            network: None,
        }
    );
    assert_eq!(
        one("RUN --network=none --mount=type=cache,target=/root/.cache --security=sandbox make"),
        Instruction::Run {
            command: shell("make"),
            heredocs: vec![],
            network: Some("none".into()),
        }
    );
}

#[test]
fn run_heredoc() {
    let Instruction::Run {
        command, heredocs, ..
    } = one("RUN <<EOF\nset -e\necho $HOME\nEOF")
    else {
        panic!("not RUN")
    };
    assert_eq!(command, shell("<<EOF"));
    assert_eq!(
        heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "set -e\necho $HOME\n".into(),
            expand: true,
            chomp: false,
        }]
    );
    let Instruction::Run {
        command, heredocs, ..
    } = one("RUN python3 <<'PY'\nprint(1)\nPY")
    else {
        panic!("not RUN")
    };
    assert_eq!(command, shell("python3 <<'PY'"));
    assert!(!heredocs[0].expand);
}

#[test]
fn run_errors() {
    err_has("RUN --bogus x", "RUN", "unknown flag: bogus");
    err_has("RUN --network=bridge x", "RUN", "unsupported network mode");
    err_has("RUN --network x", "RUN", "missing a value on flag: network");
    err_has(
        "RUN --network=none --network=host x",
        "RUN",
        "duplicate flag",
    );
    err_has("RUN []", "RUN", "requires at least one argument");
    err_has("RUN", "RUN", "requires at least one argument");
}

#[test]
fn cmd_and_entrypoint() {
    assert_eq!(one("CMD echo $HOME"), Instruction::Cmd(shell("echo $HOME")));
    assert_eq!(
        one("CMD [\"a\", \"b\"]"),
        Instruction::Cmd(exec(&["a", "b"]))
    );
    assert_eq!(one("CMD []"), Instruction::Cmd(exec(&[])));
    assert_eq!(
        one("ENTRYPOINT [\"/entry.sh\"]"),
        Instruction::Entrypoint(exec(&["/entry.sh"]))
    );
    assert_eq!(
        one("ENTRYPOINT exec top -b"),
        Instruction::Entrypoint(shell("exec top -b"))
    );
    // Invalid JSON falls back to the shell form.
    assert_eq!(one("CMD ['a']"), Instruction::Cmd(shell("['a']")));
    err_has("CMD --doit [\"a\"]", "CMD", "unknown flag: doit");
}

#[test]
fn env_both_forms() {
    assert_eq!(
        one("ENV PATH /a:$PATH"),
        Instruction::Env(kv(&[("PATH", "/a:$PATH")]))
    );
    assert_eq!(one("ENV A b c d"), Instruction::Env(kv(&[("A", "b c d")])));
    assert_eq!(
        one("ENV A=1 B=\"x y\" C=a\\ b"),
        Instruction::Env(kv(&[("A", "1"), ("B", "\"x y\""), ("C", "a\\ b")]))
    );
    assert_eq!(
        one("ENV A=1 \\\n    B=2"),
        Instruction::Env(kv(&[("A", "1"), ("B", "2")]))
    );
    assert_eq!(one("ENV A="), Instruction::Env(kv(&[("A", "")])));
    err_has("ENV A", "ENV", "ENV must have two arguments");
    err_has("ENV", "ENV", "ENV requires at least one argument");
    err_has("ENV =x", "ENV", "names can not be blank");
    err_has("ENV a=1 b", "ENV", "can't find =");
}

#[test]
fn label() {
    assert_eq!(
        one("LABEL org.opencontainers.image.title=\"My app\" version=1"),
        Instruction::Label(kv(&[
            ("org.opencontainers.image.title", "\"My app\""),
            ("version", "1")
        ]))
    );
    assert_eq!(
        one("LABEL maintainer Someone <a@b>"),
        Instruction::Label(kv(&[("maintainer", "Someone <a@b>")]))
    );
    err_has("LABEL", "LABEL", "requires at least one argument");
    err_has("LABEL key", "LABEL", "must have two arguments");
}

#[test]
fn copy_with_flags_and_json() {
    assert_eq!(
        one("COPY --from=build --chown=app:app --chmod=0755 --link a b* /dst/"),
        Instruction::Copy(CopySpec {
            sources: strings(&["a", "b*"]),
            dest: "/dst/".into(),
            from: Some("build".into()),
            chown: Some("app:app".into()),
            chmod: Some("0755".into()),
            link: true,
            heredocs: vec![],
        })
    );
    assert_eq!(
        one("COPY [\"my file\", \"/dst dir/\"]"),
        Instruction::Copy(CopySpec {
            sources: strings(&["my file"]),
            dest: "/dst dir/".into(),
            ..CopySpec::default()
        })
    );
    let Instruction::Copy(c) = one("COPY --link=false a b") else {
        panic!()
    };
    assert!(!c.link);
}

#[test]
fn copy_heredoc_source() {
    let Instruction::Copy(c) = one("COPY <<EOF /etc/motd\nhello $NAME\nEOF") else {
        panic!("not COPY")
    };
    assert_eq!(c.sources, strings(&["EOF"]));
    assert_eq!(c.dest, "/etc/motd");
    assert_eq!(c.heredocs.len(), 1);
    assert_eq!(c.heredocs[0].content, "hello $NAME\n");
}

#[test]
fn copy_errors() {
    err_has("COPY a", "COPY", "COPY requires at least two arguments");
    err_has("COPY", "COPY", "COPY requires at least two arguments");
    err_has(
        "COPY --checksum=sha256:x a b",
        "COPY",
        "unknown flag: checksum",
    );
    err_has("COPY --parents a b", "COPY", "not supported");
    err_has("COPY --exclude=*.md a b", "COPY", "not supported");
    err_has("COPY --link=maybe a b", "COPY", "expecting boolean value");
    err_has("COPY a <<EOF\nx\nEOF", "COPY", "heredoc as a destination");
}

#[test]
fn add_with_flags_and_json() {
    assert_eq!(
        one("ADD --chown=1:2 --chmod=644 --checksum=sha256:abc https://x/y.tgz /opt/"),
        Instruction::Add(CopySpec {
            sources: strings(&["https://x/y.tgz"]),
            dest: "/opt/".into(),
            chown: Some("1:2".into()),
            chmod: Some("644".into()),
            ..CopySpec::default()
        })
    );
    assert_eq!(
        one("ADD [\"a b\", \"c\", \"/d/\"]"),
        Instruction::Add(CopySpec {
            sources: strings(&["a b", "c"]),
            dest: "/d/".into(),
            ..CopySpec::default()
        })
    );
    err_has("ADD --from=x a b", "ADD", "unknown flag: from");
    err_has("ADD --keep-git-dir=true g /s", "ADD", "not supported");
    err_has("ADD a", "ADD", "ADD requires at least two arguments");
}

#[test]
fn workdir_user_stopsignal_maintainer() {
    assert_eq!(
        one("WORKDIR /my dir"),
        Instruction::Workdir("/my dir".into())
    );
    assert_eq!(one("USER app:app"), Instruction::User("app:app".into()));
    assert_eq!(
        one("STOPSIGNAL SIGTERM"),
        Instruction::Stopsignal("SIGTERM".into())
    );
    assert_eq!(
        one("MAINTAINER Jane Doe <j@d>"),
        Instruction::Maintainer("Jane Doe <j@d>".into())
    );
    err_has(
        "WORKDIR",
        "WORKDIR",
        "WORKDIR requires exactly one argument",
    );
    err_has("USER", "USER", "USER requires exactly one argument");
    err_has("STOPSIGNAL", "STOPSIGNAL", "exactly one argument");
    err_has("MAINTAINER", "MAINTAINER", "exactly one argument");
    err_has("WORKDIR --x=1 /a", "WORKDIR", "unknown flag: x");
}

#[test]
fn expose() {
    assert_eq!(
        one("EXPOSE 80 443/tcp 53/udp $PORT 8000-8010"),
        Instruction::Expose(strings(&["80", "443/tcp", "53/udp", "$PORT", "8000-8010"]))
    );
    err_has("EXPOSE", "EXPOSE", "EXPOSE requires at least one argument");
}

#[test]
fn volume_json_and_plain() {
    assert_eq!(
        one("VOLUME /data /logs"),
        Instruction::Volume(strings(&["/data", "/logs"]))
    );
    assert_eq!(
        one("VOLUME [\"/var/lib/x\", \"/y z\"]"),
        Instruction::Volume(strings(&["/var/lib/x", "/y z"]))
    );
    err_has("VOLUME", "VOLUME", "requires at least one argument");
    err_has("VOLUME [\" \"]", "VOLUME", "can not be an empty string");
}

#[test]
fn shell_instruction() {
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]"),
        Instruction::Shell(strings(&["/bin/bash", "-o", "pipefail", "-c"]))
    );
    err_has("SHELL /bin/bash -c", "SHELL", "JSON form");
    err_has("SHELL []", "SHELL", "requires at least one argument");
}

#[test]
fn onbuild() {
    assert_eq!(
        one("ONBUILD RUN make"),
        Instruction::Onbuild("RUN make".into())
    );
    assert_eq!(
        one("onbuild   COPY --chown=1 . /app"),
        Instruction::Onbuild("COPY --chown=1 . /app".into())
    );
    err_has("ONBUILD", "ONBUILD", "requires at least one argument");
    err_has("ONBUILD ONBUILD RUN x", "ONBUILD", "isn't allowed");
    err_has(
        "ONBUILD FROM x",
        "ONBUILD",
        "FROM isn't allowed as an ONBUILD trigger",
    );
    err_has(
        "ONBUILD MAINTAINER x",
        "ONBUILD",
        "MAINTAINER isn't allowed",
    );
}

#[test]
fn onbuild_trigger_round_trip() {
    let Instruction::Onbuild(text) = one("ONBUILD RUN <<EOF\necho hi\nEOF") else {
        panic!()
    };
    assert_eq!(text, "RUN <<EOF\necho hi\nEOF");
    let step = parse_instruction(&text).unwrap();
    assert_eq!(step.line, 1);
    let Instruction::Run { heredocs, .. } = step.instruction else {
        panic!()
    };
    assert_eq!(heredocs[0].content, "echo hi\n");
}

#[test]
fn parse_instruction_single_steps() {
    let step = parse_instruction("COPY . /app").unwrap();
    assert_eq!(step.original, "COPY . /app");
    assert!(matches!(step.instruction, Instruction::Copy(_)));
    assert!(parse_instruction("FROM x").is_err());
    assert!(parse_instruction("RUN a\nRUN b").is_err());
    assert!(parse_instruction("").is_err());
    let e = parse_instruction("BOGUS").unwrap_err();
    assert!(e.message.contains("unknown instruction: BOGUS"), "{e}");
}

#[test]
fn healthcheck_none() {
    assert_eq!(one("HEALTHCHECK NONE"), Instruction::Healthcheck(None));
    assert_eq!(one("healthcheck none"), Instruction::Healthcheck(None));
    err_has("HEALTHCHECK NONE x", "HEALTHCHECK", "takes no arguments");
}

#[test]
fn healthcheck_with_options() {
    assert_eq!(
        one(
            "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms \
             --start-interval=1.5s --retries=3 CMD curl -f http://localhost/ || exit 1"
        ),
        Instruction::Healthcheck(Some(Healthcheck {
            test: shell("curl -f http://localhost/ || exit 1"),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(90)),
            start_period: Some(Duration::from_millis(500)),
            start_interval: Some(Duration::from_millis(1500)),
            retries: Some(3),
        }))
    );
    assert_eq!(
        one("HEALTHCHECK CMD [\"/bin/check\", \"-q\"]"),
        Instruction::Healthcheck(Some(Healthcheck {
            test: exec(&["/bin/check", "-q"]),
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        }))
    );
    let Instruction::Healthcheck(Some(h)) = one("HEALTHCHECK --interval=1h --timeout=0s CMD x")
    else {
        panic!()
    };
    assert_eq!(h.interval, Some(Duration::from_secs(3600)));
    assert_eq!(h.timeout, Some(Duration::ZERO));
}

#[test]
fn healthcheck_errors() {
    err_has(
        "HEALTHCHECK",
        "HEALTHCHECK",
        "requires at least one argument",
    );
    err_has("HEALTHCHECK CMD", "HEALTHCHECK", "Missing command");
    err_has("HEALTHCHECK CMD []", "HEALTHCHECK", "Missing command");
    err_has(
        "HEALTHCHECK CONNECT TCP 7000",
        "HEALTHCHECK",
        "Unknown type",
    );
    err_has(
        "HEALTHCHECK --interval=5 CMD x",
        "HEALTHCHECK",
        "missing unit",
    );
    err_has(
        "HEALTHCHECK --interval=5x CMD x",
        "HEALTHCHECK",
        "unknown unit",
    );
    err_has(
        "HEALTHCHECK --interval=-5s CMD x",
        "HEALTHCHECK",
        "negative",
    );
    err_has(
        "HEALTHCHECK --timeout=10us CMD x",
        "HEALTHCHECK",
        "cannot be less than 1ms",
    );
    err_has(
        "HEALTHCHECK --retries=-1 CMD x",
        "HEALTHCHECK",
        "cannot be negative",
    );
    err_has(
        "HEALTHCHECK --retries=x CMD x",
        "HEALTHCHECK",
        "invalid number",
    );
    err_has(
        "HEALTHCHECK --every=5s CMD x",
        "HEALTHCHECK",
        "unknown flag: every",
    );
}

#[test]
fn go_durations() {
    for (s, want) in [
        ("0", Duration::ZERO),
        ("30s", Duration::from_secs(30)),
        ("1m30s", Duration::from_secs(90)),
        ("500ms", Duration::from_millis(500)),
        ("1h", Duration::from_secs(3600)),
        ("1.5h", Duration::from_secs(5400)),
        (".5s", Duration::from_millis(500)),
        ("2us", Duration::from_micros(2)),
        ("3µs", Duration::from_micros(3)),
        ("7ns", Duration::from_nanos(7)),
        ("+1s", Duration::from_secs(1)),
        ("-0s", Duration::ZERO),
    ] {
        assert_eq!(parse_go_duration(s), Ok(want), "{s}");
    }
    for bad in ["", "s", "5", "1.s.", "1d", "-1s", "1e3s", "."] {
        assert!(parse_go_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn comments_and_continuations() {
    let src = [
        "# syntax=docker/dockerfile:1",
        "# a comment",
        "FROM a",
        "# between",
        "RUN one \\",
        "  # inside",
        "  two",
        "   # indented comment line",
        "RUN three",
    ]
    .join("\n");
    let d = df(&src);
    let steps = &d.stages[0].steps;
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[0].line, steps[1].line), (5, 9));
    assert_eq!(steps[0].original, "RUN one   two");
}

#[test]
fn escape_directive_with_backtick() {
    let d = df("# escape=`\nFROM mcr.microsoft.com/windows\nCOPY c:\\src\\ c:\\dst\\\nRUN dir `\n    c:\\\n");
    assert_eq!(d.escape, '`');
    let steps = &d.stages[0].steps;
    assert_eq!(
        steps[0].instruction,
        Instruction::Copy(CopySpec {
            sources: strings(&["c:\\src\\"]),
            dest: "c:\\dst\\".into(),
            ..CopySpec::default()
        })
    );
    assert_eq!(
        steps[1].instruction,
        Instruction::Run {
            command: shell("dir     c:\\"),
            heredocs: vec![],
            network: None,
        }
    );
}

use crate::test_corpus as corpus;

/// The corpus' buildable Dockerfiles also go through the typed layer;
/// the ones BuildKit's instruction layer refuses are named.
#[test]
fn corpus_typed_layer() {
    let Some(dir) = corpus() else { return };
    // No FROM, unknown flags on COPY/CMD, HEALTHCHECK types BuildKit refuses.
    let refused = [
        "flags",
        "health",
        "jeztah-invalid-json-json-inside-string",
        "jeztah-invalid-json-json-inside-string-double",
        "jeztah-invalid-json-single-quotes",
        "jeztah-invalid-json-unterminated-bracket",
        "jeztah-invalid-json-unterminated-string",
        "json",
    ];
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join("parse"))
        .expect("read corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for case in entries {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let src = std::fs::read_to_string(case.join("Dockerfile")).expect("Dockerfile");
        let result = parse_dockerfile(&src);
        if refused.contains(&name.as_str()) {
            assert!(result.is_err(), "{name} should be refused");
        } else {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
