use serde_json::{json, Map, Value};

use super::*;

/// The runtime config after `changes`, each written as a user types it
/// after `-c`.
fn changed(changes: &[&str]) -> Value {
    changed_from(json!({}), changes)
}

fn changed_from(start: Value, changes: &[&str]) -> Value {
    let Value::Object(mut config) = start else {
        panic!("not an object: {start}")
    };
    let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
    apply_changes(&mut config, &changes).unwrap();
    Value::Object(config)
}

fn refused(change: &str) -> String {
    let mut config = Map::new();
    let e = apply_changes(&mut config, &[change.to_string()]).unwrap_err();
    assert_eq!(e.change, change);
    assert!(config.is_empty(), "a refused change left {config:?}");
    e.to_string()
}

#[test]
fn cmd_and_entrypoint_in_json_and_shell_form() {
    let c = changed(&[r#"CMD ["cat", "/etc/motd"]"#]);
    assert_eq!(c["Cmd"], json!(["cat", "/etc/motd"]));
    let c = changed(&["CMD echo $HOME"]);
    assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo $HOME"]));
    let c = changed(&[r#"ENTRYPOINT ["/bin/app"]"#]);
    assert_eq!(c["Entrypoint"], json!(["/bin/app"]));
    let c = changed(&["ENTRYPOINT exec app"]);
    assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "exec app"]));
    // A shell form runs through the image's SHELL.
    let c = changed_from(json!({"Shell": ["/bin/bash", "-lc"]}), &["CMD make"]);
    assert_eq!(c["Cmd"], json!(["/bin/bash", "-lc", "make"]));
}

#[test]
fn entrypoint_clears_cmd_unless_cmd_came_first() {
    let base = json!({"Cmd": ["sh"]});
    let c = changed_from(base.clone(), &[r#"ENTRYPOINT ["top"]"#]);
    assert!(c.get("Cmd").is_none(), "{c}");
    let c = changed_from(base, &[r#"CMD ["-b"]"#, r#"ENTRYPOINT ["top"]"#]);
    assert_eq!(c["Cmd"], json!(["-b"]));
}

#[test]
fn env_takes_several_pairs_and_the_legacy_form() {
    let c = changed(&["ENV X=1 Y=2", "ENV Z 3 and more"]);
    assert_eq!(c["Env"], json!(["X=1", "Y=2", "Z=3 and more"]));
    // Quotes are removed; a later pair sees an earlier one and the image's.
    let c = changed_from(
        json!({"Env": ["PATH=/bin"]}),
        &[r#"ENV A="two words" B=${A}! PATH=$PATH:/opt/bin"#],
    );
    assert_eq!(
        c["Env"],
        json!(["PATH=/bin:/opt/bin", "A=two words", "B=two words!"])
    );
    // Setting a name again replaces it where it stands.
    let c = changed(&["ENV A=1 B=2", "ENV A=3"]);
    assert_eq!(c["Env"], json!(["A=3", "B=2"]));
}

#[test]
fn label_quoting() {
    let c = changed(&[
        "LABEL a=b",
        r#"LABEL "com.example.name"="two words" c='single $X' d=x\ y"#,
        "LABEL legacy value with spaces",
    ]);
    assert_eq!(
        c["Labels"],
        json!({
            "a": "b",
            "com.example.name": "two words",
            "c": "single $X",
            "d": "x y",
            "legacy": "value with spaces",
        })
    );
}

#[test]
fn expose_volume_and_single_values() {
    let c = changed(&[
        "EXPOSE 80/tcp 53/udp 8000-8001",
        "EXPOSE 80",
        r#"VOLUME ["/data", "/logs"]"#,
        "VOLUME /cache /tmp/x",
        "USER nobody:nogroup",
        "WORKDIR /srv",
        "WORKDIR app",
        "STOPSIGNAL SIGQUIT",
        "ONBUILD RUN make",
    ]);
    assert_eq!(
        c["ExposedPorts"],
        json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
    );
    assert_eq!(
        c["Volumes"],
        json!({"/data": {}, "/logs": {}, "/cache": {}, "/tmp/x": {}})
    );
    assert_eq!(c["User"], json!("nobody:nogroup"));
    assert_eq!(c["WorkingDir"], json!("/srv/app"));
    assert_eq!(c["StopSignal"], json!("SIGQUIT"));
    assert_eq!(c["OnBuild"], json!(["RUN make"]));
}

#[test]
fn other_fields_survive() {
    let c = changed_from(
        json!({"Healthcheck": {"Test": ["NONE"]}, "Cmd": ["sh"]}),
        &["USER 1000"],
    );
    assert_eq!(c["Healthcheck"], json!({"Test": ["NONE"]}));
    assert_eq!(c["Cmd"], json!(["sh"]));
}

#[test]
fn instructions_outside_the_change_set_are_refused() {
    let e = refused("RUN rm -rf /");
    assert!(
        e.contains("RUN is not supported: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD"),
        "{e}"
    );
    for (change, why) in [
        ("COPY a /b", "COPY is not supported"),
        ("HEALTHCHECK NONE", "HEALTHCHECK is not supported"),
        ("FROM busybox", "FROM is not a build step"),
        ("BOGUS x", "unknown instruction: BOGUS"),
        ("EXPOSE http", "invalid containerPort: http"),
        ("STOPSIGNAL SIGNOPE", "SIGNOPE"),
        ("ENV", "ENV requires at least one argument"),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
    ] {
        let e = refused(change);
        assert!(e.contains(why), "{change}: {e}");
        assert!(e.starts_with("invalid --change"), "{e}");
    }
}

#[test]
fn a_refused_change_leaves_the_config_as_it_was() {
    let Value::Object(mut config) = json!({"User": "root"}) else {
        unreachable!()
    };
    let changes = vec!["USER nobody".to_string(), "RUN true".to_string()];
    assert!(apply_changes(&mut config, &changes).is_err());
    assert_eq!(Value::Object(config), json!({"User": "root"}));
}

#[test]
fn exposed_port_forms() {
    assert_eq!(exposed_ports("80").unwrap(), vec!["80/tcp"]);
    assert_eq!(exposed_ports("53/UDP").unwrap(), vec!["53/udp"]);
    assert_eq!(exposed_ports("8000-8002").unwrap().len(), 3);
    assert!(exposed_ports("http").is_err());
    assert!(exposed_ports("80/icmp").is_err());
    assert!(exposed_ports("0").is_err());
}
