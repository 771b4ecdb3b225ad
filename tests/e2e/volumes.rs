//! Volumes and mounts: named, anonymous, bind, tmpfs, read-only, copy-up,
//! --volumes-from, the hostile-image cases, and that the host never sees a mount.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use crate::common::Env;

/// A scratch directory on the host, inside the env's temporary directory.
fn host_dir(env: &Env, name: &str) -> PathBuf {
    let d = env.root.parent().unwrap().join(name);
    fs::create_dir_all(&d).unwrap();
    d
}

fn ok(env: &Env, args: &[&str]) -> String {
    let r = env.berth(args);
    assert_eq!(r.code, 0, "{args:?}: {r:?}");
    r.stdout
}

/// The names `volume ls -q` prints.
fn volumes(env: &Env) -> Vec<String> {
    ok(env, &["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect()
}

fn mountpoint(env: &Env, volume: &str) -> PathBuf {
    PathBuf::from(
        ok(
            env,
            &["volume", "inspect", "--format", "{{.Mountpoint}}", volume],
        )
        .trim(),
    )
}

/// Commits a container that ran `script` in busybox as image `tag`.
fn image(env: &Env, tag: &str, script: &str, changes: &[&str]) {
    ok(env, &["run", "--name", "mk", "busybox", "sh", "-c", script]);
    let mut args = vec!["commit"];
    for c in changes {
        args.extend(["-c", c]);
    }
    args.extend(["mk", tag]);
    ok(env, &args);
    ok(env, &["rm", "mk"]);
}

#[test]
fn anonymous_volumes_live_in_the_store_and_go_with_rm_v() {
    let env = Env::new();
    let id = ok(
        &env,
        &["run", "-d", "-v", "/test", "busybox", "sleep", "1000"],
    );
    let id = id.trim();
    let vols = volumes(&env);
    assert_eq!(vols.len(), 1, "{vols:?}");
    let name = &vols[0];
    assert!(name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()));
    let ls = ok(&env, &["volume", "ls"]);
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains(&format!("local     {name}")), "{ls}");
    let mp = mountpoint(&env, name);
    assert_eq!(mp, env.root.join("volumes").join(name).join("_data"));
    let labels = ok(&env, &["volume", "inspect", "-f", "{{json .Labels}}", name]);
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");

    // Written inside, seen on the host; the mount itself is never on the host.
    ok(&env, &["exec", id, "sh", "-c", "echo inside > /test/f"]);
    assert_eq!(fs::read_to_string(mp.join("f")).unwrap(), "inside\n");
    env.assert_clean_mounts();
    let mounts = ok(
        &env,
        &["exec", id, "grep", " /test ", "/proc/self/mountinfo"],
    );
    assert!(!mounts.is_empty());
    let m = env.inspect(
        id,
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
    );
    assert_eq!(m, format!("volume {name} /test true"));

    // rm without -v keeps the volume; rm -v removes a container's own ones.
    ok(&env, &["rm", "-f", id]);
    assert_eq!(volumes(&env), vec![name.clone()]);
    ok(
        &env,
        &["run", "--name", "c2", "-v", "/other", "busybox", "true"],
    );
    assert_eq!(volumes(&env).len(), 2);
    ok(&env, &["rm", "-v", "c2"]);
    assert_eq!(volumes(&env), vec![name.clone()]);
    // run --rm removes anonymous volumes, never named ones.
    ok(
        &env,
        &[
            "run", "--rm", "-v", "/x", "-v", "keep:/y", "busybox", "true",
        ],
    );
    let mut left = volumes(&env);
    left.sort();
    assert_eq!(left, vec![name.clone(), "keep".to_string()]);
    env.assert_clean();
}

#[test]
fn bind_mounts_of_directories_and_read_only_files() {
    let env = Env::new();
    let home = host_dir(&env, "home");
    fs::write(home.join("a"), "from host\n").unwrap();
    let spec = format!("{}:/test", home.display());
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            &spec,
            "busybox",
            "sh",
            "-c",
            "cat /test/a; echo back > /test/b",
        ],
    );
    assert_eq!(out, "from host\n");
    assert_eq!(fs::read_to_string(home.join("b")).unwrap(), "back\n");

    // A single file, read-only.
    let file = home.join("a");
    let spec = format!("{}:/h:ro", file.display());
    let r = env.berth(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /h; echo x > /h",
    ]);
    assert_ne!(r.code, 0);
    assert_eq!(r.stdout, "from host\n");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "from host\n");

    // --mount readonly.
    let spec = format!("type=bind,source={},target=/test,readonly", home.display());
    let r = env.berth(&[
        "run", "--rm", "--mount", &spec, "busybox", "touch", "/test/y",
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    assert!(!home.join("y").exists());

    // -v makes a missing host directory, --mount refuses it.
    let missing = home.join("made/by/v");
    let spec = format!("{}:/m", missing.display());
    ok(
        &env,
        &["run", "--rm", "-v", &spec, "busybox", "touch", "/m/z"],
    );
    assert!(missing.join("z").exists());
    // A bind mount hides the image's content and copies nothing.
    let spec = format!("{}:/bin/extra", home.display());
    let out = ok(
        &env,
        &["run", "--rm", "-v", &spec, "busybox", "ls", "/bin/extra"],
    );
    assert_eq!(out, "a\nb\nmade\n");
    assert_eq!(fs::read_dir(&home).unwrap().count(), 3);
    assert!(volumes(&env).is_empty());
    env.assert_clean();
}

#[test]
fn named_volumes_survive_and_are_refused_while_used() {
    let env = Env::new();
    assert_eq!(
        ok(&env, &["volume", "create", "test_volume"]),
        "test_volume\n"
    );
    ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            "test_volume:/test",
            "busybox",
            "sh",
            "-c",
            "echo 1 > /test/x",
        ],
    );
    let mp = mountpoint(&env, "test_volume");
    assert_eq!(fs::read_to_string(mp.join("x")).unwrap(), "1\n");
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            "test_volume:/again",
            "busybox",
            "cat",
            "/again/x",
        ],
    );
    assert_eq!(out, "1\n");
    // Created on first use, like docker.
    ok(
        &env,
        &["run", "--name", "user", "-v", "auto:/a", "busybox", "true"],
    );
    assert!(volumes(&env).contains(&"auto".to_string()));

    // In use by a container (even a stopped one): refused, nothing removed.
    let r = env.berth(&["volume", "rm", "auto"]);
    assert_eq!(r.code, 1);
    let id = env.inspect("user", "{{.Id}}");
    assert_eq!(
        r.stderr.trim(),
        format!("berth: remove auto: volume is in use - [{id}]")
    );
    assert!(mountpoint(&env, "auto").is_dir());
    let dangling = ok(&env, &["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling, "test_volume\n");
    ok(&env, &["rm", "-v", "user"]);
    assert_eq!(
        ok(&env, &["volume", "rm", "auto", "test_volume"]),
        "auto\ntest_volume\n"
    );
    assert!(volumes(&env).is_empty());
    let r = env.berth(&["volume", "rm", "nope"]);
    assert_eq!(
        (r.code, r.stderr.trim()),
        (1, "berth: get nope: no such volume")
    );
    assert_eq!(env.berth(&["volume", "rm", "-f", "nope"]).code, 0);
    assert!(!env.root.join("volumes/auto").exists());

    // prune: anonymous only by default, -a for every unused one.
    ok(&env, &["volume", "create", "--label", "k=v", "named"]);
    ok(
        &env,
        &["run", "--name", "keeper", "-v", "/anon", "busybox", "true"],
    );
    let orphan_id = ok(&env, &["create", "-v", "/orphan", "busybox", "true"]);
    let orphan_id = orphan_id.trim();
    let orphan = env.inspect(orphan_id, "{{range .Mounts}}{{.Name}}{{end}}");
    ok(&env, &["rm", orphan_id]);
    let out = ok(&env, &["volume", "prune", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert!(out.contains(&orphan), "{out}");
    assert_eq!(volumes(&env).len(), 2, "named and keeper's remain");
    let out = ok(&env, &["volume", "prune", "-a", "-f"]);
    assert!(out.contains("named"), "{out}");
    assert_eq!(volumes(&env).len(), 1, "keeper's is in use");
    ok(&env, &["rm", "-v", "keeper"]);
    assert!(volumes(&env).is_empty());
    env.assert_clean();
}

#[test]
fn tmpfs_and_driver_options() {
    let env = Env::new();
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "--tmpfs",
            "/tmp:size=64m",
            "busybox",
            "df",
            "/tmp",
        ],
    );
    let line = out.lines().nth(1).unwrap();
    assert!(
        line.starts_with("tmpfs") && line.contains(" 65536 "),
        "{out}"
    );
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770",
            "busybox",
            "sh",
            "-c",
            "stat -c %a /t; grep ' /t ' /proc/self/mounts",
        ],
    );
    assert!(out.starts_with("1770\n"), "{out}");
    assert!(
        out.contains("tmpfs rw,nosuid,nodev,noexec") && out.contains("size=1024k"),
        "{out}"
    );
    // Nothing written to a tmpfs reaches the writable layer.
    ok(
        &env,
        &[
            "run",
            "--name",
            "t",
            "--tmpfs",
            "/scratch",
            "busybox",
            "sh",
            "-c",
            "echo x > /scratch/f",
        ],
    );
    assert_eq!(ok(&env, &["diff", "t"]), "A /scratch\n");
    ok(&env, &["rm", "t"]);

    // The local driver's options: a tmpfs volume.
    let out = ok(
        &env,
        &[
            "run", "--rm", "--mount",
            "type=volume,source=v2,target=/data,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m",
            "busybox", "df", "/data",
        ],
    );
    assert!(out.lines().nth(1).unwrap().contains(" 2048 "), "{out}");
    let opts = ok(
        &env,
        &["volume", "inspect", "-f", "{{json .Options}}", "v2"],
    );
    assert_eq!(
        opts.trim(),
        r#"{"device":"tmpfs","o":"size=2m","type":"tmpfs"}"#
    );
    ok(&env, &["volume", "rm", "v2"]);
    env.assert_clean();
}

#[test]
fn volumes_from_takes_every_mount_with_its_mode() {
    let env = Env::new();
    let home = host_dir(&env, "home");
    let bind = format!("{}:/h", home.display());
    ok(
        &env,
        &[
            "run",
            "--name",
            "c1",
            "-v",
            "vol:/test:ro",
            "-v",
            &bind,
            "-v",
            "/anon",
            "busybox",
            "true",
        ],
    );
    fs::write(mountpoint(&env, "vol").join("f"), "shared\n").unwrap();
    let r = env.berth(&[
        "run",
        "--rm",
        "--volumes-from",
        "c1",
        "busybox",
        "sh",
        "-c",
        "cat /test/f; touch /h/from-c2; touch /anon/ok; touch /test/no",
    ]);
    assert_eq!(r.stdout, "shared\n");
    assert!(
        r.stderr.contains("/test/no: Read-only file system"),
        "{r:?}"
    );
    assert!(home.join("from-c2").exists());
    // :rw overrides the modes.
    ok(
        &env,
        &[
            "run",
            "--rm",
            "--volumes-from",
            "c1:rw",
            "busybox",
            "touch",
            "/test/yes",
        ],
    );
    assert!(mountpoint(&env, "vol").join("yes").exists());
    let r = env.berth(&["run", "--rm", "--volumes-from", "nope", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("No such container: nope"), "{r:?}");
    // c1's anonymous volume was shared, so the --rm runs left it alone.
    assert_eq!(volumes(&env).len(), 2);
    ok(&env, &["rm", "-v", "c1"]);
    assert_eq!(volumes(&env), vec!["vol".to_string()]);
    env.assert_clean();
}

#[test]
fn empty_volumes_get_the_image_content_once() {
    let env = Env::new();
    image(
        &env,
        "withvol",
        "mkdir -p /data/sub && echo img > /data/f && chown 1000:1001 /data/f && chmod 640 /data/f \
         && ln -s /etc/passwd /data/link && chown 33:33 /data && chmod 750 /data",
        &["VOLUME /data"],
    );
    // The image's VOLUME makes an anonymous volume, filled from the image.
    ok(
        &env,
        &[
            "run",
            "--name",
            "u",
            "withvol",
            "sh",
            "-c",
            "echo new > /data/g",
        ],
    );
    let name = env.inspect("u", "{{range .Mounts}}{{.Name}}{{end}}");
    let mp = mountpoint(&env, &name);
    let f = fs::metadata(mp.join("f")).unwrap();
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1000, 1001, 0o640));
    assert_eq!(fs::read_to_string(mp.join("f")).unwrap(), "img\n");
    assert_eq!(fs::read_to_string(mp.join("g")).unwrap(), "new\n");
    assert_eq!(
        fs::read_link(mp.join("link")).unwrap(),
        PathBuf::from("/etc/passwd")
    );
    assert!(mp.join("sub").is_dir());
    let root = fs::metadata(&mp).unwrap();
    assert_eq!((root.uid(), root.mode() & 0o7777), (33, 0o750));
    // Nothing of the volume is in the writable layer.
    assert_eq!(ok(&env, &["diff", "u"]), "");

    // A named volume too; but only the first time.
    let out = ok(
        &env,
        &["run", "--rm", "-v", "named:/data", "withvol", "ls", "/data"],
    );
    assert_eq!(out, "f\nlink\nsub\n");
    let named = mountpoint(&env, "named");
    for e in fs::read_dir(&named).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
    }
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            "named:/data",
            "withvol",
            "ls",
            "-A",
            "/data",
        ],
    );
    assert_eq!(out, "");
    // nocopy, and bind mounts, copy nothing.
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            "nc:/data:nocopy",
            "withvol",
            "ls",
            "-A",
            "/data",
        ],
    );
    assert_eq!(out, "");
    let empty = host_dir(&env, "empty");
    let spec = format!("{}:/data", empty.display());
    assert_eq!(
        ok(
            &env,
            &["run", "--rm", "-v", &spec, "withvol", "ls", "-A", "/data"]
        ),
        ""
    );
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    // Copy-up into a volume that is not empty never happens.
    ok(&env, &["volume", "create", "full"]);
    fs::write(mountpoint(&env, "full").join("mine"), "").unwrap();
    let out = ok(
        &env,
        &["run", "--rm", "-v", "full:/data", "withvol", "ls", "/data"],
    );
    assert_eq!(out, "mine\n");
    ok(&env, &["rm", "-v", "u"]);
    env.assert_clean();
}

#[test]
fn commit_keeps_only_the_empty_mount_point() {
    let env = Env::new();
    ok(
        &env,
        &[
            "run",
            "--name",
            "c",
            "-v",
            "vol:/newdir",
            "busybox",
            "sh",
            "-c",
            "echo only-in-volume-7f3a > /newdir/f; echo kept > /etc/kept",
        ],
    );
    assert_eq!(ok(&env, &["diff", "c"]), "C /etc\nA /etc/kept\nA /newdir\n");
    ok(&env, &["commit", "c", "committed"]);
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "committed",
            "sh",
            "-c",
            "ls -A /newdir; cat /etc/kept",
        ],
    );
    assert_eq!(out, "kept\n");
    let exported = env.root.parent().unwrap().join("fs.tar");
    ok(&env, &["export", "-o", exported.to_str().unwrap(), "c"]);
    let tar = fs::read(&exported).unwrap();
    assert!(
        !tar.windows(19).any(|w| w == b"only-in-volume-7f3a"),
        "export holds the volume's data"
    );
    // The volume still has it.
    assert_eq!(
        fs::read_to_string(mountpoint(&env, "vol").join("f")).unwrap(),
        "only-in-volume-7f3a\n"
    );
    ok(&env, &["rm", "c"]);
    env.assert_clean();
}

#[test]
fn planted_symlinks_never_redirect_a_mount_onto_the_host() {
    let env = Env::new();
    let host = host_dir(&env, "hostdir");
    let host2 = host_dir(&env, "hostdir2");
    let hostile_script = format!(
        "ln -s {0} /data && mkdir -p {0} && ln -s / /up && ln -s {1}/sub /dangling",
        host.display(),
        host2.display()
    );
    image(&env, "hostile", &hostile_script, &[]);
    // A link to a host path the image does not have: what it names is made
    // inside the container, never on the host.
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            "dv:/dangling",
            "hostile",
            "sh",
            "-c",
            "echo in > /dangling/x; ls /dangling",
        ],
    );
    assert_eq!(out, "x\n");
    assert_eq!(
        fs::read_dir(&host2).unwrap().count(),
        0,
        "the host directory was written"
    );
    // /data -> <host dir>: the mount lands in the container's own copy of that path.
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            "hv:/data",
            "hostile",
            "sh",
            "-c",
            "echo in > /data/x; readlink /data",
        ],
    );
    assert_eq!(out.trim(), host.to_str().unwrap());
    assert_eq!(
        fs::read_dir(&host).unwrap().count(),
        0,
        "the host directory was written"
    );
    assert_eq!(
        fs::read_to_string(mountpoint(&env, "hv").join("x")).unwrap(),
        "in\n"
    );
    // Through a link to "/", a bind of a host file stays inside.
    let marker = host_dir(&env, "m").join("marker");
    fs::write(&marker, "marker\n").unwrap();
    let spec = format!("{}:/up/etc/marker:ro", marker.display());
    assert_eq!(
        ok(
            &env,
            &["run", "--rm", "-v", &spec, "hostile", "cat", "/etc/marker"]
        ),
        "marker\n"
    );

    // A link planted in a shared volume by one container...
    ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            "shared:/shared",
            "busybox",
            "ln",
            "-s",
            "/etc",
            "/shared/esc",
        ],
    );
    ok(&env, &["volume", "create", "other"]);
    fs::write(mountpoint(&env, "other").join("planted"), "x").unwrap();
    // ...redirects another container's mount only inside that container.
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            "shared:/shared",
            "-v",
            "other:/shared/esc",
            "busybox",
            "ls",
            "/etc",
        ],
    );
    assert_eq!(out, "planted\n");
    assert!(!PathBuf::from("/etc/planted").exists());
    env.assert_clean_mounts();
    let perms = fs::metadata("/etc").unwrap().permissions();
    assert_eq!(perms.mode() & 0o777, 0o755);
    env.assert_clean();
}

#[test]
fn bad_mount_specs_fail_cleanly() {
    let env = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-v", "a/b:/x"],
            "If you intended to pass a host directory, use absolute path",
        ),
        (&["-v", "v:rel"], "mount path must be absolute"),
        (&["-v", "/etc:/x:bogus"], "invalid mode: bogus"),
        (
            &["--mount", "type=bind,source=/nonexistent/berth,target=/x"],
            "bind source path does not exist: /nonexistent/berth",
        ),
        (
            &["--mount", "type=bind,target=/x"],
            "field Source must not be empty",
        ),
        (
            &["--mount", "type=volume,target=/x,bogus=1"],
            "unexpected key 'bogus' in 'bogus=1'",
        ),
        (
            &[
                "--mount",
                "type=volume,source=v,target=/x,volume-opt=nope=1",
            ],
            "invalid option: \"nope\"",
        ),
        (&["-v", "v1:/x", "-v", "v2:/x"], "Duplicate mount point: /x"),
        (
            &["-v", "v1:/x", "--tmpfs", "/x"],
            "Duplicate mount point: /x",
        ),
        (&["--tmpfs", "/t:bogus"], "invalid tmpfs option"),
        (
            &["-v", "good:/g", "--volumes-from", "missing"],
            "No such container: missing",
        ),
        (
            &[
                "-v",
                "good:/g",
                "--mount",
                "type=bind,source=/nonexistent/berth,target=/y",
            ],
            "bind source path does not exist",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let r = env.berth(&args);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        assert!(r.stderr.contains(message), "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        assert!(volumes(&env).is_empty(), "{args:?} left a volume");
        assert_eq!(ok(&env, &["ps", "-aq"]), "", "{args:?} left a container");
    }
    assert!(!PathBuf::from("/nonexistent").exists());
    let r = env.berth(&["volume", "create", "bad/name"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("includes invalid characters"), "{r:?}");
    let r = env.berth(&["volume", "create", "-d", "nfs-plugin", "x"]);
    assert!(
        r.stderr.contains("plugin \"nfs-plugin\" not found"),
        "{r:?}"
    );
    assert!(volumes(&env).is_empty());
    env.assert_clean();
}

#[test]
fn volume_rm_racing_run_never_removes_a_volume_in_use() {
    let env = Env::new();
    for i in 0..8 {
        let name = format!("race{i}");
        ok(&env, &["volume", "create", &name]);
        let mount = format!("{name}:/d");
        let mut create = env.spawn(&["create", "-v", &mount, "busybox", "true"]);
        let mut rm = env.spawn(&["volume", "rm", &name]);
        let created = crate::common::wait_timeout(&mut create, std::time::Duration::from_secs(20));
        crate::common::wait_timeout(&mut rm, std::time::Duration::from_secs(20));
        assert_eq!(created.code, 0, "{created:?}");
        // Whoever won, the container's volume exists: either rm came first
        // and create made it again, or rm was refused.
        let id = created.stdout.trim();
        let source = env.inspect(id, "{{range .Mounts}}{{.Source}}{{end}}");
        assert!(PathBuf::from(&source).is_dir(), "{name}: {source} is gone");
        assert!(volumes(&env).contains(&name));
    }
    let ids = ok(&env, &["ps", "-aq"]);
    for id in ids.lines() {
        ok(&env, &["rm", id]);
    }
    ok(&env, &["volume", "prune", "-af"]);
    assert!(volumes(&env).is_empty());
    env.assert_clean();
}
