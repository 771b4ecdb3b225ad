//! Credentials, kept as docker keeps them: `config.json` in the client
//! config directory, `{"auths": {"<registry>": {"auth": base64("user:pass")}}}`,
//! mode 0600, every other key left as it was.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::ClientError;

/// Docker Hub's key in `config.json`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The client config file, as read.
#[derive(Debug)]
pub struct AuthConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// The key docker uses for a registry.
fn key_of(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY,
        r => r,
    }
}

/// A key as docker may have written it (`https://host/v1/`, `host`) -> host.
fn normalise_key(key: &str) -> &str {
    if key == DOCKER_HUB_KEY {
        return key;
    }
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

impl AuthConfig {
    pub fn load(dir: &Path) -> Result<AuthConfig, ClientError> {
        let path = dir.join("config.json");
        let bad = |message: String| ClientError::Credentials {
            path: path.clone(),
            message,
        };
        let doc = match fs::read(&path) {
            Ok(data) if data.iter().all(|b| b.is_ascii_whitespace()) => Map::new(),
            Ok(data) => match serde_json::from_slice::<Value>(&data) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(bad("not a JSON object".into())),
                Err(e) => return Err(bad(e.to_string())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(bad(e.to_string())),
        };
        Ok(AuthConfig { path, doc })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// The credentials stored for `registry`, if any.
    pub fn get(&self, registry: &str) -> Option<Credentials> {
        let want = key_of(registry);
        let (_, entry) = self
            .auths()?
            .iter()
            .find(|(k, _)| normalise_key(k) == want)?;
        let encoded = entry.get("auth")?.as_str()?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (username, password) = text.split_once(':')?;
        Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        })
    }

    /// Stores credentials for `registry` and writes the file.
    pub fn set(&mut self, registry: &str, c: &Credentials) -> Result<(), ClientError> {
        let key = key_of(registry).to_string();
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.username, c.password));
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(m) = auths {
            m.retain(|k, _| normalise_key(k) != key);
            m.insert(key, serde_json::json!({ "auth": auth }));
        }
        self.save()
    }

    /// Removes the credentials of `registry`; false if there were none.
    pub fn remove(&mut self, registry: &str) -> Result<bool, ClientError> {
        let key = key_of(registry);
        let Some(Value::Object(m)) = self.doc.get_mut("auths") else {
            return Ok(false);
        };
        let before = m.len();
        m.retain(|k, _| normalise_key(k) != key);
        if m.len() == before {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Writes the file atomically, readable by its owner only.
    fn save(&self) -> Result<(), ClientError> {
        let bad = |e: std::io::Error| ClientError::Credentials {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(bad)?;
        let data = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))
            .map_err(|e| bad(std::io::Error::other(e)))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(bad)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(bad)?;
        tmp.write_all(&data).map_err(bad)?;
        tmp.write_all(b"\n").map_err(bad)?;
        tmp.as_file().sync_all().map_err(bad)?;
        tmp.persist(&self.path).map_err(|e| bad(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove_keep_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://other.example:5000/v1/":{"auth":"dTpw"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let mut c = AuthConfig::load(dir.path()).unwrap();
        assert_eq!(
            c.get("other.example:5000"),
            Some(Credentials {
                username: "u".into(),
                password: "p".into()
            })
        );
        let me = Credentials {
            username: "me".into(),
            password: "s3:cret".into(),
        };
        c.set("localhost:5000", &me).unwrap();
        c.set("docker.io", &me).unwrap();
        let c2 = AuthConfig::load(dir.path()).unwrap();
        assert_eq!(c2.get("localhost:5000"), Some(me.clone()));
        assert_eq!(c2.get("index.docker.io"), Some(me.clone()));
        let raw: Value =
            serde_json::from_slice(&fs::read(dir.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(raw["psFormat"], "x");
        assert!(raw["auths"][DOCKER_HUB_KEY]["auth"].is_string());
        let mode = fs::metadata(dir.path().join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut c3 = AuthConfig::load(dir.path()).unwrap();
        assert!(c3.remove("localhost:5000").unwrap());
        assert!(!c3.remove("localhost:5000").unwrap());
        assert_eq!(
            AuthConfig::load(dir.path()).unwrap().get("localhost:5000"),
            None
        );
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let e = AuthConfig::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}
