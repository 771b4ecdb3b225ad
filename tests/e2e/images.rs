//! `import` and `images`.

use std::io::Write;
use std::process::Stdio;

use crate::common::{busybox_tar, Env};

#[test]
fn import_plain_gzip_zstd_and_stdin() {
    let env = Env::empty();
    let tar = std::fs::read(busybox_tar()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("rootfs.tar.gz");
    let mut enc = flate2_writer(&gz);
    enc.write_all(&tar).unwrap();
    drop(enc);
    let zst = dir.path().join("rootfs.tar.zst");
    let st = std::process::Command::new("zstd")
        .arg("-q")
        .arg("-o")
        .arg(&zst)
        .arg(busybox_tar())
        .status()
        .unwrap();
    assert!(st.success());
    for (file, name) in [
        (busybox_tar().to_path_buf(), "plain"),
        (gz, "gz"),
        (zst, "zst"),
    ] {
        let r = env.berth(&["import", file.to_str().unwrap(), &format!("bb:{name}")]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.starts_with("sha256:") && r.stdout.trim().len() == 71,
            "{r:?}"
        );
        let r = env.berth(&["run", "--rm", &format!("bb:{name}"), "echo", name]);
        assert_eq!(r.stdout, format!("{name}\n"), "{r:?}");
    }
    let mut child = env
        .command(&["import", "-", "fromstdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    // One unpacked layer serves all four images: the content is the same.
    let layers = std::fs::read_dir(env.root.join("image/layers"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "l")
        .count();
    assert_eq!(layers, 1);
    env.assert_clean();
}

fn flate2_writer(path: &std::path::Path) -> impl Write {
    // gzip(1) keeps the test honest about real-world files.
    struct Gz(std::process::Child);
    impl Write for Gz {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.stdin.as_mut().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Gz {
        fn drop(&mut self) {
            drop(self.0.stdin.take());
            self.0.wait().unwrap();
        }
    }
    let out = std::fs::File::create(path).unwrap();
    Gz(std::process::Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(out)
        .spawn()
        .unwrap())
}

#[test]
fn images_lists_like_docker() {
    let env = Env::new();
    assert_eq!(
        env.berth(&[
            "import",
            "-m",
            "second",
            busybox_tar().to_str().unwrap(),
            "registry.local:5000/me/app:v2"
        ])
        .code,
        0
    );
    assert_eq!(
        env.berth(&["import", busybox_tar().to_str().unwrap()]).code,
        0
    );
    let r = env.berth(&["images"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "REPOSITORY                   TAG       IMAGE ID       CREATED                  SIZE",
        "{r:?}"
    );
    assert_eq!(lines.len(), 4, "{r:?}");
    let cols = |l: &str| {
        l.split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| cols(l)).collect();
    assert!(
        rows.iter().any(|r| r[0] == "<none>" && r[1] == "<none>"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == "registry.local:5000/me/app" && r[1] == "v2"),
        "{rows:?}"
    );
    let bb = rows.iter().find(|r| r[0] == "busybox").unwrap();
    assert_eq!(bb[1], "latest");
    assert_eq!(bb[2].len(), 12);
    assert!(bb[3].ends_with(" ago"), "{bb:?}");
    assert!(bb[4].ends_with("MB"), "{bb:?}");
    // -q prints each ID once; a repository argument filters.
    assert_eq!(env.berth(&["images", "-q"]).stdout.lines().count(), 3);
    let r = env.berth(&["image", "ls", "busybox"]);
    assert_eq!(r.stdout.lines().count(), 2, "{r:?}");
}

/// `import -c` and `commit -c` take docker's `--change` instructions, typed
/// as a user types them, and give the same config.
#[test]
fn import_and_commit_apply_the_same_changes() {
    let env = Env::new();
    let work = env.workdir();
    std::fs::copy(busybox_tar(), work.join("rootfs.tar")).unwrap();
    let ok = |args: &[&str]| {
        let r = env.berth_in(&work, args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        r.stdout
    };
    // berth import -c 'LABEL a=b' -c 'ENV X=1 Y=2' -c 'EXPOSE 80/tcp' rootfs.tar imported
    let changes = [
        "-c",
        "LABEL a=b",
        "-c",
        r#"LABEL "com.example.title"="two words""#,
        "-c",
        "ENV X=1 Y=2",
        "-c",
        "EXPOSE 80/tcp",
        "-c",
        "ONBUILD RUN echo triggered",
        "-c",
        r#"CMD ["echo", "from-change"]"#,
    ];
    let mut import = vec!["import"];
    import.extend(changes);
    import.extend(["rootfs.tar", "imported"]);
    ok(&import);
    ok(&["run", "--name", "c", "--network", "none", "busybox", "true"]);
    let mut commit = vec!["commit"];
    commit.extend(changes);
    commit.extend(["c", "committed"]);
    ok(&commit);
    for field in ["Labels", "ExposedPorts", "OnBuild", "Cmd"] {
        let format = format!("{{{{json .Config.{field}}}}}");
        let imported = ok(&["inspect", "-f", &format, "imported"]);
        let committed = ok(&["inspect", "-f", &format, "committed"]);
        assert_eq!(imported, committed, "{field}");
    }
    assert_eq!(
        ok(&["inspect", "-f", "{{json .Config.Labels}}", "imported"]),
        "{\"a\":\"b\",\"com.example.title\":\"two words\"}\n"
    );
    assert_eq!(
        ok(&[
            "inspect",
            "-f",
            "{{json .Config.ExposedPorts}}",
            "committed"
        ]),
        "{\"80/tcp\":{}}\n"
    );
    for image in ["imported", "committed"] {
        let env_list = ok(&["inspect", "-f", "{{json .Config.Env}}", image]);
        assert!(env_list.contains("\"X=1\",\"Y=2\""), "{image}: {env_list}");
        assert_eq!(
            ok(&["run", "--rm", "--network", "none", image]),
            "from-change\n"
        );
    }
    // Anything but a config-only instruction is refused, by name.
    let r = env.berth_in(&work, &["import", "-c", "RUN rm -rf /", "rootfs.tar", "x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("RUN is not supported"), "{r:?}");
    let r = env.berth_in(&work, &["commit", "-c", "COPY a /b", "c", "x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("COPY is not supported"), "{r:?}");
    ok(&["rm", "c"]);
    env.assert_clean();
}
