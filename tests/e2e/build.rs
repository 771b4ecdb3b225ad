//! `berth build`: the seed's example, each instruction and option, the build
//! cache, multi-stage builds, .dockerignore, and that a failed build leaves
//! nothing behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{Env, Run};

/// A build context directory with `files` (path, content) in it.
fn context(env: &Env, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.root.parent().unwrap().join(name);
    fs::create_dir_all(&dir).unwrap();
    for (p, content) in files {
        let p = dir.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir
}

fn build(env: &Env, dir: &Path, args: &[&str]) -> Run {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    a.push(dir.to_str().unwrap());
    env.berth(&a)
}

fn ok(env: &Env, args: &[&str]) -> String {
    let r = env.berth(args);
    assert_eq!(r.code, 0, "{args:?}: {r:?}");
    r.stdout
}

fn built(env: &Env, dir: &Path, args: &[&str]) -> String {
    let r = build(env, dir, args);
    assert_eq!(r.code, 0, "build {args:?}: {r:?}");
    r.stdout
}

/// The image ID a (non-quiet) build printed last.
fn built_id(out: &str) -> String {
    out.lines()
        .rev()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image ID in:\n{out}"))
        .trim()
        .to_string()
}

/// Runs `cmd` in `image` and returns its output.
fn run_in(env: &Env, image: &str, cmd: &[&str]) -> String {
    let mut a = vec!["run", "--rm", image];
    a.extend_from_slice(cmd);
    ok(env, &a)
}

fn inspect_image(env: &Env, image: &str, format: &str) -> String {
    ok(env, &["image", "inspect", "--format", format, image])
        .trim()
        .to_string()
}

/// The build containers and their mounts are gone; the only images are those
/// `images -a` is expected to list.
fn assert_no_build_leftovers(env: &Env) {
    let ps = ok(env, &["ps", "-a", "-q"]);
    assert!(ps.trim().is_empty(), "containers left: {ps}");
    env.assert_clean();
}

#[test]
fn the_seed_example_builds_and_runs() {
    let env = Env::new();
    let dir = context(
        &env,
        "hello",
        &[
            (
                "Dockerfile",
                "FROM busybox\n\
                 WORKDIR /app\n\
                 ADD . /app\n\
                 RUN sh install.sh\n\
                 EXPOSE 80\n\
                 ENV NAME World\n\
                 CMD [\"sh\", \"app.py\"]\n",
            ),
            (
                "install.sh",
                "echo installing; echo ready > /app/installed\n",
            ),
            (
                "app.py",
                "echo \"Hello $NAME from $(pwd): $(cat installed)\"\n",
            ),
        ],
    );
    let out = built(&env, &dir, &["-t", "helloworld"]);
    for (n, step) in [
        "FROM busybox",
        "WORKDIR /app",
        "ADD . /app",
        "RUN sh install.sh",
        "EXPOSE 80",
        "ENV NAME World",
        "CMD [\"sh\", \"app.py\"]",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            out.contains(&format!("Step {}/7 : {step}", n + 1)),
            "step {n} missing:\n{out}"
        );
    }
    // RUN output is streamed; the final lines name the image.
    assert!(out.contains("\ninstalling\n"), "{out}");
    assert!(
        out.contains("Successfully tagged helloworld:latest"),
        "{out}"
    );
    assert_eq!(
        run_in(&env, "helloworld", &[]).trim(),
        "Hello World from /app: ready"
    );
    assert_eq!(
        inspect_image(&env, "helloworld", "{{json .Config.ExposedPorts}}"),
        "{\"80/tcp\":{}}"
    );
    // One history row per instruction, newest first; RUN has a layer.
    let history = ok(&env, &["history", "--no-trunc", "helloworld"]);
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert!(rows[0].contains("CMD [\"sh\" \"app.py\"]"), "{history}");
    assert!(rows[1].contains("ENV NAME=World"), "{history}");
    assert!(rows[3].contains("/bin/sh -c sh install.sh"), "{history}");
    assert!(rows[4].contains("ADD dir:"), "{history}");
    assert!(rows[5].contains("WORKDIR /app"), "{history}");
    // Only the result is listed; the steps are build cache.
    let images = ok(&env, &["images"]);
    assert_eq!(images.lines().count(), 3, "{images}");
    assert!(ok(&env, &["images", "-a"]).lines().count() > 3);
    assert_no_build_leftovers(&env);
}

#[test]
fn cache_hits_misses_and_no_cache() {
    let env = Env::new();
    let dir = context(
        &env,
        "cache",
        &[
            (
                "Dockerfile",
                "FROM busybox\n\
                 ENV A=1\n\
                 RUN echo ran-one > /one\n\
                 COPY f /f\n\
                 RUN echo ran-two > /two\n\
                 LABEL x=y\n\
                 WORKDIR /w\n\
                 ENV B=2\n\
                 RUN date +%s%N > /three\n\
                 CMD [\"cat\", \"/f\"]\n",
            ),
            ("f", "v1\n"),
        ],
    );
    let first = built(&env, &dir, &["-t", "c"]);
    assert!(!first.contains("Using cache"), "{first}");
    let id1 = built_id(&first);
    // Unchanged: every step from cache, the same image, well under a second.
    let t = std::time::Instant::now();
    let second = built(&env, &dir, &["-t", "c"]);
    eprintln!("fully cached 10-step rebuild took {:?}", t.elapsed());
    assert_eq!(second.matches("---> Using cache").count(), 9, "{second}");
    assert_eq!(second.matches("Running in").count(), 0, "{second}");
    assert_eq!(built_id(&second), id1);
    // A changed file: its COPY and everything after run again.
    fs::write(dir.join("f"), "v2\n").unwrap();
    let third = built(&env, &dir, &["-t", "c"]);
    assert_eq!(third.matches("---> Using cache").count(), 2, "{third}");
    // The two RUNs after the COPY ran again, the one before it did not.
    assert_eq!(third.matches("Running in").count(), 2, "{third}");
    assert_eq!(run_in(&env, "c", &[]), "v2\n");
    // The mtime alone changes nothing.
    let f = fs::File::options().write(true).open(dir.join("f")).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let fourth = built(&env, &dir, &["-t", "c"]);
    assert_eq!(fourth.matches("---> Using cache").count(), 9, "{fourth}");
    // --no-cache: nothing from the cache.
    let fifth = built(&env, &dir, &["--no-cache", "-t", "c"]);
    assert!(!fifth.contains("Using cache"), "{fifth}");
    assert_eq!(fifth.matches("Running in").count(), 3, "{fifth}");
    // builder prune drops the cache; the tagged image stays.
    ok(&env, &["builder", "prune", "-f"]);
    assert_eq!(run_in(&env, "c", &[]), "v2\n");
    let after = built(&env, &dir, &["-t", "c"]);
    assert_eq!(after.matches("Running in").count(), 3, "{after}");
    assert_no_build_leftovers(&env);
}

#[test]
fn multi_stage_target_and_copy_from() {
    let env = Env::new();
    let dir = context(
        &env,
        "multi",
        &[(
            "Dockerfile",
            "ARG BASE=busybox\n\
             FROM ${BASE} AS build\n\
             RUN mkdir -p /out && echo built > /out/artifact && chown 7:8 /out/artifact\n\
             FROM busybox AS unused\n\
             RUN echo should-not-run && exit 1\n\
             FROM scratch AS runtime\n\
             COPY --from=build /out/artifact /artifact\n\
             COPY --from=build /bin/busybox /bin/busybox\n\
             CMD [\"/bin/busybox\", \"cat\", \"/artifact\"]\n\
             FROM runtime AS extra\n\
             LABEL stage=extra\n",
        )],
    );
    let out = built(&env, &dir, &["-t", "app:v1", "--target", "runtime"]);
    assert!(!out.contains("should-not-run"), "{out}");
    assert_eq!(run_in(&env, "app:v1", &[]), "built\n");
    // --from keeps the source's owner; the runtime image has only its two layers.
    assert_eq!(
        run_in(
            &env,
            "app:v1",
            &["/bin/busybox", "stat", "-c", "%u:%g", "/artifact"]
        )
        .trim(),
        "7:8"
    );
    assert_eq!(inspect_image(&env, "app:v1", "{{len .RootFS.Layers}}"), "2");
    assert!(!inspect_image(&env, "app:v1", "{{json .Config.Labels}}").contains("stage"));
    // Without --target, the last stage (built on the runtime stage).
    built(&env, &dir, &["-t", "app:extra"]);
    assert_eq!(
        inspect_image(&env, "app:extra", "{{.Config.Labels}}"),
        "map[stage:extra]"
    );
    let bad = build(&env, &dir, &["--target", "nosuch"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr
            .contains("target stage \"nosuch\" could not be found"),
        "{bad:?}"
    );
    assert_no_build_leftovers(&env);
}

#[test]
fn failing_run_stops_the_build_and_leaves_nothing() {
    let env = Env::new();
    let dir = context(
        &env,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before\nRUN echo oops >&2; exit 3\nRUN echo never\n",
        )],
    );
    let before = ok(&env, &["images", "-q"]);
    let r = build(&env, &dir, &["-t", "broken"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("oops"),
        "the RUN's output is shown: {r:?}"
    );
    assert!(!r.stdout.contains("never"), "{r:?}");
    assert!(
        r.stderr
            .contains("The command '/bin/sh -c echo oops >&2; exit 3' returned a non-zero code: 3"),
        "{r:?}"
    );
    // No container, mount or cgroup; no new visible image; no tag.
    assert_eq!(ok(&env, &["images", "-q"]), before);
    assert_ne!(env.berth(&["image", "inspect", "broken"]).code, 0);
    assert_no_build_leftovers(&env);
    let layers_dir = env.root.join("image");
    assert!(layers_dir.exists());
    // A bad Dockerfile names the line and the instruction.
    fs::write(dir.join("Dockerfile"), "FROM busybox\nRUN true\nFOO bar\n").unwrap();
    let r = build(&env, &dir, &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("3") && r.stderr.to_lowercase().contains("foo"),
        "{r:?}"
    );
    // A missing source, and a missing base image.
    fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY nope /x\n").unwrap();
    let r = build(&env, &dir, &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("nope"), "{r:?}");
    // ADD of a URL: Berth does not fetch, and says so.
    fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nADD http://127.0.0.1:9/x /x\n",
    )
    .unwrap();
    let r = build(&env, &dir, &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("http://127.0.0.1:9/x: fetching URLs is not supported"),
        "{r:?}"
    );
    // (from a registry that is not there: a missing base is pulled first)
    fs::write(dir.join("Dockerfile"), "FROM 127.0.0.1:1/nosuchbase\n").unwrap();
    let r = build(&env, &dir, &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cannot reach registry 127.0.0.1:1"),
        "{r:?}"
    );
    assert_no_build_leftovers(&env);
}

#[test]
fn instructions_change_the_config_and_the_run_environment() {
    let env = Env::new();
    let dir = context(
        &env,
        "instr",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             MAINTAINER someone@example.com\n\
             ARG VERSION=1\n\
             ARG EMPTY\n\
             ENV GREETING=\"hello world\" OTHER=${VERSION}x\n\
             ENV LEGACY value with spaces\n\
             LABEL version=$VERSION \"quoted key\"=\"a b\"\n\
             RUN echo \"v=$VERSION g=$GREETING\" > /args\n\
             WORKDIR /srv\n\
             WORKDIR sub\n\
             RUN pwd > /pwd\n\
             RUN echo app:x:1234:1234::/:/bin/sh >> /etc/passwd\n\
             USER app\n\
             RUN id -u > /tmp/uid\n\
             USER root\n\
             EXPOSE 80 53/udp 8000-8001\n\
             VOLUME [\"/data\"]\n\
             VOLUME /logs /cache\n\
             SHELL [\"/bin/sh\", \"-ec\"]\n\
             RUN echo shell-form-uses-the-shell > /shell\n\
             STOPSIGNAL SIGUSR1\n\
             HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD [\"true\"]\n\
             ENTRYPOINT [\"sh\", \"-c\"]\n\
             CMD [\"cat /args\"]\n",
        )],
    );
    built(
        &env,
        &dir,
        &[
            "-t",
            "i",
            "--build-arg",
            "VERSION=2",
            "--label",
            "extra=yes",
        ],
    );
    // ENTRYPOINT + CMD; ARG from --build-arg reached RUN; ENV's quotes.
    assert_eq!(run_in(&env, "i", &[]), "v=2 g=hello world\n");
    assert_eq!(run_in(&env, "i", &["cat /pwd"]), "/srv/sub\n");
    assert_eq!(run_in(&env, "i", &["cat /tmp/uid"]), "1234\n");
    assert_eq!(run_in(&env, "i", &["pwd"]), "/srv/sub\n");
    assert_eq!(
        run_in(&env, "i", &["echo $OTHER:$LEGACY"]),
        "2x:value with spaces\n"
    );
    // ARG values are not kept in the image's environment.
    assert_eq!(run_in(&env, "i", &["echo \"[$VERSION]\""]), "[]\n");
    let f = |fmt: &str| inspect_image(&env, "i", fmt);
    assert_eq!(f("{{.Author}}"), "someone@example.com");
    assert_eq!(
        f("{{.Config.Labels}}"),
        "map[extra:yes quoted key:a b version:2]"
    );
    assert_eq!(
        f("{{json .Config.ExposedPorts}}"),
        "{\"53/udp\":{},\"80/tcp\":{},\"8000/tcp\":{},\"8001/tcp\":{}}"
    );
    assert_eq!(
        f("{{json .Config.Volumes}}"),
        "{\"/cache\":{},\"/data\":{},\"/logs\":{}}"
    );
    assert_eq!(f("{{.Config.StopSignal}}"), "SIGUSR1");
    assert_eq!(f("{{.Config.User}}"), "root");
    assert_eq!(f("{{json .Config.Entrypoint}}"), "[\"sh\",\"-c\"]");
    // Docker's fields beyond the OCI config are in the stored config.
    let config = image_config(&env, "i");
    assert_eq!(
        config["config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "true"], "Interval": 5_000_000_000u64,
                            "Timeout": 2_000_000_000u64, "Retries": 4})
    );
    assert_eq!(
        config["config"]["Shell"],
        serde_json::json!(["/bin/sh", "-ec"])
    );
    // A shell-form RUN after SHELL ran through it.
    let history = ok(&env, &["history", "--no-trunc", "i"]);
    assert!(
        history.contains("/bin/sh -ec echo shell-form-uses-the-shell > /shell"),
        "{history}"
    );
    assert_eq!(
        run_in(&env, "i", &["cat /shell"]),
        "shell-form-uses-the-shell\n"
    );
    assert_no_build_leftovers(&env);
}

/// The image's stored config document.
fn image_config(env: &Env, image: &str) -> serde_json::Value {
    let id = inspect_image(env, image, "{{.Id}}");
    let hex = id.trim_start_matches("sha256:");
    let blob = env.root.join("image/blobs/sha256").join(hex);
    serde_json::from_slice(&fs::read(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display())))
        .unwrap()
}

#[test]
fn copy_and_add_options() {
    let env = Env::new();
    // A tar archive ADD unpacks (gzip), and one it copies as a file (a
    // plain text file named .tar is just a file).
    let dir = context(&env, "copy", &[("notatar.tar", "text\n")]);
    let tgz = dir.join("stuff.tar.gz");
    {
        let f = fs::File::create(&tgz).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o600);
        h.set_uid(42);
        h.set_gid(43);
        h.set_cksum();
        b.append_data(&mut h, "pkg/inside.txt", &b"inside"[..])
            .unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    fs::create_dir_all(dir.join("tree/sub")).unwrap();
    fs::write(dir.join("tree/sub/a.txt"), "a").unwrap();
    fs::write(dir.join("tree/b.log"), "b").unwrap();
    fs::write(dir.join("one.txt"), "1").unwrap();
    fs::write(dir.join("two.txt"), "2").unwrap();
    fs::write(dir.join("script.sh"), "#!/bin/sh\necho script\n").unwrap();
    fs::set_permissions(dir.join("script.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(dir.join("one.txt"), Some(1000), Some(1000)).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\n\
         RUN echo app:x:2000:2000::/:/bin/sh >> /etc/passwd && echo app:x:2000: >> /etc/group\n\
         ADD stuff.tar.gz /opt/\n\
         ADD notatar.tar /opt/\n\
         COPY tree /tree\n\
         COPY *.txt /txt/\n\
         COPY one.txt /renamed\n\
         COPY --chown=app:app --chmod=640 two.txt /owned\n\
         COPY --chown=55 two.txt /numeric\n\
         COPY script.sh /usr/local/bin/\n\
         WORKDIR /rel\n\
         COPY one.txt here/\n\
         ARG WHO=heredoc\n\
         COPY <<EOF /inline.txt\n\
         inline $WHO\n\
         EOF\n\
         COPY <<\"EOF\" /literal.txt\n\
         literal $WHO\n\
         EOF\n\
         RUN <<EOF\n\
         echo heredoc-run > /heredoc\n\
         echo second line >> /heredoc\n\
         EOF\n",
    )
    .unwrap();
    built(&env, &dir, &["-t", "cp"]);
    let sh = |script: &str| run_in(&env, "cp", &["sh", "-c", script]);
    assert_eq!(
        sh("cat /opt/pkg/inside.txt; stat -c ' %u:%g %a' /opt/pkg/inside.txt"),
        "inside 42:43 600\n"
    );
    assert_eq!(sh("cat /opt/notatar.tar"), "text\n");
    assert_eq!(sh("cat /tree/sub/a.txt /tree/b.log"), "ab");
    assert_eq!(sh("ls /txt"), "one.txt\ntwo.txt\n");
    // Context files belong to root unless --chown; modes are kept.
    assert_eq!(sh("stat -c '%u:%g' /renamed"), "0:0\n");
    assert_eq!(sh("stat -c '%U:%G %a' /owned"), "app:app 640\n");
    assert_eq!(sh("stat -c '%u:%g' /numeric"), "55:55\n");
    assert_eq!(
        sh("stat -c '%a' /usr/local/bin/script.sh; script.sh"),
        "700\nscript\n"
    );
    assert_eq!(sh("cat /rel/here/one.txt"), "1");
    assert_eq!(
        sh("cat /inline.txt /literal.txt"),
        "inline heredoc\nliteral $WHO\n"
    );
    assert_eq!(sh("cat /heredoc"), "heredoc-run\nsecond line\n");
    assert_no_build_leftovers(&env);
}

#[test]
fn dockerignore_excludes_from_context_and_cache() {
    let env = Env::new();
    let dir = context(
        &env,
        "ignore",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /ctx\nRUN find /ctx | sort > /list\nCMD [\"cat\", \"/list\"]\n"),
            (".dockerignore", "# comment\n*.log\n!keep.log\n**/secret*\nbuild/\n"),
            ("a.txt", "a"),
            ("x.log", "x"),
            ("keep.log", "k"),
            ("deep/er/secret.key", "s"),
            ("deep/er/fine", "f"),
            ("build/out", "o"),
        ],
    );
    built(&env, &dir, &["-t", "ign"]);
    let list = run_in(&env, "ign", &[]);
    for present in [
        "/ctx/a.txt",
        "/ctx/keep.log",
        "/ctx/deep/er/fine",
        "/ctx/Dockerfile",
    ] {
        assert!(
            list.lines().any(|l| l == present),
            "{present} missing:\n{list}"
        );
    }
    for absent in ["x.log", "secret.key", "/ctx/build"] {
        assert!(!list.contains(absent), "{absent} copied:\n{list}");
    }
    // A change to an excluded file keeps the cache.
    fs::write(dir.join("x.log"), "changed").unwrap();
    let again = built(&env, &dir, &["-t", "ign"]);
    assert_eq!(again.matches("Using cache").count(), 3, "{again}");
    // Naming an excluded file is an error.
    fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY x.log /\n").unwrap();
    let r = build(&env, &dir, &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("excluded by .dockerignore"), "{r:?}");
    assert_no_build_leftovers(&env);
}

/// `build -` takes the Dockerfile (no context) or a tar context from stdin.
#[test]
fn build_from_stdin_quiet_and_dockerfile_option() {
    let env = Env::new();
    let stdin_build = |input: &[u8], args: &[&str]| -> Run {
        let mut a = vec!["build"];
        a.extend_from_slice(args);
        a.push("-");
        let mut child = env
            .command(&a)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap().into()
    };
    let r = stdin_build(
        b"FROM busybox\nRUN echo quiet-run\nCMD [\"echo\", \"from-stdin\"]\n",
        &["-q", "-t", "s"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // -q prints only the image ID.
    let id = r.stdout.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{r:?}");
    assert_eq!(inspect_image(&env, "s", "{{.Id}}"), id);
    assert_eq!(run_in(&env, "s", &[]), "from-stdin\n");
    // No context: COPY has nothing to copy from.
    let r = stdin_build(b"FROM busybox\nCOPY a /a\n", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no build context"), "{r:?}");
    // A tar context with its Dockerfile.
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        (
            "Dockerfile",
            &b"FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"[..],
        ),
        ("f", &b"tar-context\n"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, name, data).unwrap();
    }
    let r = stdin_build(&tar.into_inner().unwrap(), &["-t", "t"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(run_in(&env, "t", &[]), "tar-context\n");
    // -f names a Dockerfile outside the context.
    let dir = context(
        &env,
        "fopt",
        &[(
            "docker/Build.file",
            "FROM busybox\nCMD [\"echo\", \"dash-f\"]\n",
        )],
    );
    let ctx = context(&env, "fctx", &[]);
    let r = env.berth(&[
        "build",
        "-f",
        dir.join("docker/Build.file").to_str().unwrap(),
        "-t",
        "f",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(run_in(&env, "f", &[]), "dash-f\n");
    assert_no_build_leftovers(&env);
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    let env = Env::new();
    let parent = context(
        &env,
        "parent",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD COPY marker /marker\nONBUILD RUN echo triggered >> /marker\n",
        )],
    );
    built(&env, &parent, &["-t", "base-onbuild"]);
    // The parent itself did not run its triggers.
    assert_ne!(
        env.berth(&["run", "--rm", "base-onbuild", "cat", "/marker"])
            .code,
        0
    );
    let child = context(
        &env,
        "child",
        &[
            (
                "Dockerfile",
                "FROM base-onbuild\nCMD [\"cat\", \"/marker\"]\n",
            ),
            ("marker", "from-child\n"),
        ],
    );
    let out = built(&env, &child, &["-t", "child"]);
    assert!(out.contains("Executing 2 build triggers"), "{out}");
    assert_eq!(run_in(&env, "child", &[]), "from-child\ntriggered\n");
    // Triggers are not inherited by the child's children.
    assert_eq!(image_config(&env, "child")["config"].get("OnBuild"), None);
    assert_no_build_leftovers(&env);
}
