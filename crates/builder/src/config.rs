//! The image config document a build step changes. Kept as JSON rather than
//! typed, so docker's fields that the OCI config lacks (Healthcheck, OnBuild,
//! Shell) survive every step.

use serde_json::{json, Map, Value};

/// An image config document (`architecture`, `os`, `config`, `rootfs`, `history`...).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig(pub Value);

impl ImageConfig {
    /// The config of `FROM scratch`.
    pub fn scratch() -> ImageConfig {
        ImageConfig(json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }))
    }

    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
        let mut v: Value = serde_json::from_slice(bytes)?;
        if !v.is_object() {
            v = json!({});
        }
        Ok(ImageConfig(v))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // A Value always serialises.
        serde_json::to_vec(&self.0).unwrap_or_default()
    }

    fn root(&mut self) -> &mut Map<String, Value> {
        if !self.0.is_object() {
            self.0 = json!({});
        }
        match &mut self.0 {
            Value::Object(m) => m,
            _ => unreachable!("made an object above"),
        }
    }

    /// The runtime config (`config`), created if missing.
    fn runtime(&mut self) -> &mut Map<String, Value> {
        let root = self.root();
        let c = root.entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        match c {
            Value::Object(m) => m,
            _ => unreachable!("made an object above"),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get("config").and_then(|c| c.get(key))
    }

    pub fn set(&mut self, key: &str, value: Value) {
        if value.is_null() {
            self.runtime().remove(key);
        } else {
            self.runtime().insert(key.to_string(), value);
        }
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn env(&self) -> Vec<String> {
        self.strings("Env")
    }

    /// The environment as (name, value) pairs.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env()
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{name}={value}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(name)) {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
        self.set("Env", json!(env));
    }

    pub fn shell(&self) -> Vec<String> {
        let s = self.strings("Shell");
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    pub fn workdir(&self) -> String {
        self.get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    pub fn on_build(&self) -> Vec<String> {
        self.strings("OnBuild")
    }

    /// Adds `value` under `key` in a map field (`Labels`, `ExposedPorts`, `Volumes`).
    pub fn insert(&mut self, field: &str, key: &str, value: Value) {
        let rt = self.runtime();
        let m = rt.entry(field).or_insert_with(|| json!({}));
        if !m.is_object() {
            *m = json!({});
        }
        if let Value::Object(m) = m {
            m.insert(key.to_string(), value);
        }
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.0
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets `created`, appends a history entry and, for a step with a layer,
    /// its diff ID.
    pub fn record_step(&mut self, created: &str, created_by: &str, layer: Option<&str>) {
        let root = self.root();
        root.insert("created".into(), json!(created));
        let mut entry = json!({"created": created, "created_by": created_by});
        if layer.is_none() {
            entry["empty_layer"] = json!(true);
        }
        let h = root.entry("history").or_insert_with(|| json!([]));
        if !h.is_array() {
            *h = json!([]);
        }
        if let Value::Array(a) = h {
            a.push(entry);
        }
        if let Some(diff) = layer {
            let mut ids = self.diff_ids();
            ids.push(diff.to_string());
            self.root()
                .insert("rootfs".into(), json!({"type": "layers", "diff_ids": ids}));
        }
    }

    pub fn set_author(&mut self, author: &str) {
        self.root().insert("author".into(), json!(author));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_by_name_and_keeps_order() {
        let mut c = ImageConfig::scratch();
        c.set_env("A", "1");
        c.set_env("B", "2");
        c.set_env("A", "3");
        assert_eq!(c.env(), vec!["A=3", "B=2"]);
        assert_eq!(c.env_pairs()[1], ("B".to_string(), "2".to_string()));
    }

    #[test]
    fn steps_append_history_and_layers() {
        let mut c = ImageConfig::scratch();
        c.record_step("t1", "/bin/sh -c #(nop)  ENV A=1", None);
        c.record_step("t2", "/bin/sh -c make", Some("sha256:ab"));
        assert_eq!(c.diff_ids(), vec!["sha256:ab"]);
        let h = c.0["history"].as_array().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0]["empty_layer"], json!(true));
        assert!(h[1].get("empty_layer").is_none());
        assert_eq!(c.0["created"], json!("t2"));
    }

    #[test]
    fn unknown_fields_survive() {
        let c = ImageConfig::parse(br#"{"config":{"Healthcheck":{"Test":["NONE"]},"OnBuild":["RUN x"]},"rootfs":{"diff_ids":[]}}"#).unwrap();
        assert_eq!(c.on_build(), vec!["RUN x"]);
        assert_eq!(c.shell(), vec!["/bin/sh", "-c"]);
        assert!(String::from_utf8(c.to_bytes())
            .unwrap()
            .contains("Healthcheck"));
    }
}
