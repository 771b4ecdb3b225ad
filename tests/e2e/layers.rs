//! Images as layers: diff, commit, history, tag, inspect, rmi, export, prune.

use crate::common::Env;

fn ok(r: crate::common::Run) -> crate::common::Run {
    assert_eq!(r.code, 0, "{r:?}");
    r
}

#[test]
fn diff_commit_history_tag_inspect_rmi() {
    let env = Env::new();
    ok(env.berth(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo v2 > /etc/motd; rm /bin/vi; mkdir /data; rm -rf /root",
    ]));
    let r = ok(env.berth(&["diff", "c1"]));
    assert_eq!(
        r.stdout,
        "C /bin\nD /bin/vi\nA /data\nC /etc\nA /etc/motd\nD /root\n"
    );
    let id = ok(env.berth(&[
        "commit",
        "-m",
        "motd",
        "-c",
        "CMD [\"cat\",\"/etc/motd\"]",
        "c1",
        "myimg:v2",
    ]))
    .stdout;
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(ok(env.berth(&["run", "--rm", "myimg:v2"])).stdout, "v2\n");
    let r = env.berth(&[
        "run",
        "--rm",
        "myimg:v2",
        "sh",
        "-c",
        "ls /bin/vi; ls /root; ls -d /data; cat /etc/hostname | wc -c",
    ]);
    assert!(
        r.stderr.contains("/bin/vi: No such file") && r.stderr.contains("/root: No such file"),
        "{r:?}"
    );
    assert!(r.stdout.starts_with("/data\n"), "{r:?}");
    // The init layer (hostname, hosts, resolv.conf, .dockerenv) is never committed.
    let r = ok(env.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        "",
        "myimg:v2",
        "sh",
        "-c",
        "ls -a /etc; ls /.dockerenv",
    ]));
    assert!(r.stdout.contains("motd"), "{r:?}");
    let r = ok(env.berth(&["history", "myimg:v2"]));
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{r:?}");
    assert!(lines[0].starts_with("IMAGE          CREATED"), "{r:?}");
    assert!(
        lines[1].starts_with(&id.trim()[7..19])
            && lines[1].contains("sh -c echo v2")
            && lines[1].ends_with("motd"),
        "{r:?}"
    );
    assert!(
        lines[2].starts_with("<missing>") && lines[2].contains("1.98MB"),
        "{r:?}"
    );
    ok(env.berth(&["tag", "myimg:v2", "registry.local:5000/me/myimg:v2"]));
    let r = ok(env.berth(&[
        "inspect",
        "--format",
        "{{.Id}} {{.Config.Cmd}} {{len .RootFS.Layers}} {{json .RepoTags}}",
        "myimg:v2",
    ]));
    assert_eq!(
        r.stdout,
        format!(
            "{} [cat /etc/motd] 2 [\"myimg:v2\",\"registry.local:5000/me/myimg:v2\"]\n",
            id.trim()
        )
    );
    let r = ok(env.berth(&["inspect", "myimg:v2"]));
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc[0]["Id"], id.trim());
    assert_eq!(
        doc[0]["Config"]["Cmd"],
        serde_json::json!(["cat", "/etc/motd"])
    );
    assert_eq!(doc[0]["RootFS"]["Type"], "layers");
    // Removing one of two names untags; the image is still there.
    assert_eq!(
        ok(env.berth(&["rmi", "registry.local:5000/me/myimg:v2"])).stdout,
        "Untagged: registry.local:5000/me/myimg:v2\n"
    );
    // A container of the image blocks its removal, -f forces.
    ok(env.berth(&["run", "--name", "user", "myimg:v2", "true"]));
    let r = env.berth(&["rmi", "myimg:v2"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("conflict: unable to remove repository reference \"myimg:v2\" (must force)"),
        "{r:?}"
    );
    ok(env.berth(&["rm", "user"]));
    let r = ok(env.berth(&["rmi", "myimg:v2"]));
    assert_eq!(r.stdout, format!("Untagged: myimg:v2\nDeleted: {id}"));
    ok(env.berth(&["rm", "c1"]));
    env.assert_clean();
}

#[test]
fn commit_keeps_links_special_files_and_opaque_dirs() {
    let env = Env::new();
    ok(env.berth(&[
        "run", "--name", "c2", "busybox", "sh", "-c",
        "mkdir /d && echo data > /d/f && ln /d/f /d/hard && ln -s f /d/soft && mknod /d/fifo p && chown 1000:1000 /d/f && chmod 640 /d/f && touch -d '2001-02-03 04:05:06' /d/f && rm -rf /usr && mkdir /usr && echo new > /usr/only",
    ]));
    ok(env.berth(&["commit", "c2", "kept"]));
    let r = ok(env.berth(&[
        "run",
        "--rm",
        "kept",
        "sh",
        "-c",
        "stat -c '%h %u:%g %a %Y' /d/f; readlink /d/soft; cat /d/hard; stat -c %F /d/fifo; ls /usr",
    ]));
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "2 1000:1000 640 981173106", "{r:?}");
    assert_eq!(&lines[1..4], ["f", "data", "fifo"]);
    // The recreated /usr is opaque: nothing of the image's /usr shows through.
    assert_eq!(lines[4..].join(" "), "only", "{r:?}");
    ok(env.berth(&["rm", "c2"]));
}

/// The layer directories of `env` holding `rel`, by its path in the layer.
fn layer_files(env: &Env, rel: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(env.root.join("image/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("diff").join(rel))
        .filter(|p| p.exists())
        .collect()
}

fn getfattr(path: &std::path::Path, name: &str) -> String {
    let out = std::process::Command::new("getfattr")
        .args(["--only-values", "-n", name])
        .arg(path)
        .output()
        .expect("getfattr (Debian's attr) runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn xattrs_survive_commit_save_and_load() {
    let env = Env::new();
    ok(env.berth(&[
        "run",
        "--name",
        "cx",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo x > /x",
    ]));
    let id = env.inspect("cx", "{{.Id}}");
    let upper = env.root.join("containers").join(&id).join("upper/x");
    let st = std::process::Command::new("setfattr")
        .args(["-n", "user.berth", "-v", "kept"])
        .arg(&upper)
        .status()
        .unwrap();
    assert!(st.success());
    ok(env.berth(&["commit", "cx", "xattr:v1"]));
    ok(env.berth(&["rm", "cx"]));
    let files = layer_files(&env, "x");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(getfattr(&files[0], "user.berth"), "kept");
    // Through save (the layer's tar put back together from its files) and
    // load into another root.
    let tar = env.root.parent().unwrap().join("xattr.tar");
    ok(env.berth(&["save", "-o", tar.to_str().unwrap(), "xattr:v1"]));
    let env2 = Env::empty();
    ok(env2.berth(&["load", "-i", tar.to_str().unwrap()]));
    let files = layer_files(&env2, "x");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(getfattr(&files[0], "user.berth"), "kept");
    assert_eq!(
        env.berth(&["inspect", "--format", "{{.Id}}", "xattr:v1"])
            .stdout,
        env2.berth(&["inspect", "--format", "{{.Id}}", "xattr:v1"])
            .stdout
    );
}

#[test]
fn hundred_layer_image_runs() {
    let env = Env::new();
    let mut image = "busybox".to_string();
    for i in 1..=100 {
        let name = format!("l{i}");
        ok(env.berth(&[
            "run",
            "--name",
            &name,
            &image,
            "touch",
            &format!("/layer{i}"),
        ]));
        ok(env.berth(&["commit", &name, &format!("deep:{i}")]));
        ok(env.berth(&["rm", &name]));
        image = format!("deep:{i}");
    }
    let r = ok(env.berth(&[
        "run",
        "--rm",
        "deep:100",
        "sh",
        "-c",
        "ls / | grep -c layer",
    ]));
    assert_eq!(r.stdout, "100\n");
    let r = ok(env.berth(&["inspect", "--format", "{{len .RootFS.Layers}}", "deep:100"]));
    assert_eq!(r.stdout, "101\n");
    env.assert_clean();
}

#[test]
fn export_prune_and_disk_usage() {
    let env = Env::new();
    ok(env.berth(&[
        "run",
        "--name",
        "ex",
        "busybox",
        "sh",
        "-c",
        "echo hi > /exported",
    ]));
    let out = env
        .command(&["export", "ex"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"exported".to_string()) && names.contains(&"bin/busybox".to_string()),
        "{names:?}"
    );
    // The export mounted nothing on the host.
    env.assert_clean_mounts();
    let r = ok(env.berth(&["system", "df"]));
    assert!(
        r.stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("Images          1         1"),
        "{r:?}"
    );
    // An image in use survives prune -a; once unused it goes, with its layers.
    ok(env.berth(&["image", "prune", "-a", "-f"]));
    ok(env.berth(&["run", "--rm", "busybox", "true"]));
    ok(env.berth(&["rm", "ex"]));
    let r = ok(env.berth(&["image", "prune", "-a", "-f"]));
    assert!(
        r.stdout.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{r:?}"
    );
    assert_eq!(env.berth(&["images", "-q"]).stdout, "");
    let layers: Vec<_> = std::fs::read_dir(env.root.join("image/layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "l")
        .collect();
    assert!(layers.is_empty());
    assert_eq!(
        std::fs::read_dir(env.root.join("image/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    env.assert_clean();
}

#[test]
fn prune_racing_runs_never_removes_what_they_use() {
    let env = Env::new();
    ok(env.berth(&["tag", "busybox", "second"]));
    ok(env.berth(&["rmi", "busybox"]));
    let runner = {
        let cmd = |args: &[&str]| {
            env.command(args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let mut fails = Vec::new();
        let pruner = std::thread::scope(|s| {
            let h = s.spawn(|| {
                for _ in 0..15 {
                    ok(env.berth(&["image", "prune", "-f"]));
                }
            });
            for _ in 0..15 {
                let out = cmd(&["run", "--rm", "second", "true"]);
                if !out.status.success() {
                    fails.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
            h.join()
        });
        assert!(pruner.is_ok());
        fails
    };
    assert!(runner.is_empty(), "{runner:?}");
    ok(env.berth(&["run", "--rm", "second", "true"]));
}

#[test]
fn save_load_round_trip_and_skopeo_reads_the_archives() {
    let env = Env::new();
    ok(env.berth(&[
        "run",
        "--name",
        "sv",
        "busybox",
        "sh",
        "-c",
        "echo saved > /etc/motd",
    ]));
    let id = ok(env.berth(&["commit", "sv", "myimg:v2"]))
        .stdout
        .trim()
        .to_string();
    let layers =
        ok(env.berth(&["inspect", "--format", "{{json .RootFS.Layers}}", "myimg:v2"])).stdout;
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("img.tar");
    let oci = dir.path().join("img-oci.tar");
    ok(env.berth(&["save", "-o", docker.to_str().unwrap(), "myimg:v2"]));
    ok(env.berth(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        "myimg:v2",
    ]));
    for target in [
        format!("docker-archive:{}", docker.display()),
        format!("oci-archive:{}", oci.display()),
    ] {
        let out = std::process::Command::new("skopeo")
            .args(["inspect", &target])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["Layers"].as_array().unwrap().len(), 2, "{doc}");
    }
    // An archive skopeo wrote loads too.
    let skopeo_tar = dir.path().join("skopeo.tar");
    let out = std::process::Command::new("skopeo")
        .args([
            "copy",
            &format!("oci-archive:{}", oci.display()),
            &format!("docker-archive:{}:fromskopeo:v1", skopeo_tar.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (archive, name) in [
        (&docker, "myimg:v2"),
        (&oci, "myimg:v2"),
        (&skopeo_tar, "fromskopeo:v1"),
    ] {
        let other = Env::empty();
        let r = ok(other.berth(&["load", "-i", archive.to_str().unwrap()]));
        assert_eq!(r.stdout, format!("Loaded image: {name}\n"), "{r:?}");
        // Same image ID and layer digests as the saved image.
        let r = ok(other.berth(&["inspect", "--format", "{{.Id}}", name]));
        assert_eq!(r.stdout.trim(), id);
        assert_eq!(
            ok(other.berth(&["inspect", "--format", "{{json .RootFS.Layers}}", name])).stdout,
            layers
        );
        assert_eq!(
            ok(other.berth(&["run", "--rm", name, "cat", "/etc/motd"])).stdout,
            "saved\n"
        );
    }
    ok(env.berth(&["rm", "sv"]));
}
