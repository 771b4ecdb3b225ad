//! Credentials and tokens, without HTTP: htpasswd files (bcrypt entries),
//! `Authorization` header values, token scopes, and HMAC-signed bearer tokens.

use std::collections::HashMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// A line of an htpasswd file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct HtpasswdError {
    pub line: usize,
    pub reason: String,
}

/// Users and their bcrypt hashes, as `htpasswd -B` writes them.
#[derive(Debug, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    pub fn parse(text: &str) -> Result<Htpasswd, HtpasswdError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| HtpasswdError {
                line: i + 1,
                reason,
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| err("expected user:hash".into()))?;
            if user.is_empty() {
                return Err(err("empty user name".into()));
            }
            if !["$2y$", "$2a$", "$2b$", "$2x$"]
                .iter()
                .any(|p| hash.starts_with(p))
            {
                return Err(err(format!(
                    "user {user:?}: only bcrypt entries are supported (htpasswd -B)"
                )));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd { users })
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user's bcrypt hash.
    pub fn hash(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }
}

/// Checks a password against a bcrypt hash (slow on purpose: run it off the
/// async threads).
pub fn bcrypt_ok(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

/// `Basic <base64(user:pass)>`.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// `Bearer <token>`.
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(rest.trim())
        .filter(|t| !t.is_empty())
}

/// One `type:name:actions` scope, as in `repository:me/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        let (kind, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Scope {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect(),
        })
    }

    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.kind == kind
            && self.name == name
            && self.actions.iter().any(|a| a == action || a == "*")
    }
}

/// Every scope in a request's `scope` parameters (each may hold several,
/// separated by spaces).
pub fn parse_scopes<'a>(params: impl IntoIterator<Item = &'a str>) -> Vec<Scope> {
    params
        .into_iter()
        .flat_map(|p| p.split(' '))
        .filter_map(Scope::parse)
        .collect()
}

/// What a token says: who, what they may do, until when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub access: Vec<Scope>,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|s| s.allows(kind, name, action))
    }
}

/// The HMAC-SHA256 key tokens are signed with: random per process, so a
/// restart invalidates every token (clients then fetch a new one).
pub struct TokenKey(hmac::Key);

impl TokenKey {
    pub fn random() -> Result<TokenKey, ring::error::Unspecified> {
        hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new()).map(TokenKey)
    }

    #[cfg(test)]
    pub fn from_secret(secret: &[u8]) -> TokenKey {
        TokenKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// `base64url(claims JSON).base64url(HMAC of the first part)`.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let tag = hmac::sign(&self.0, payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of a token this key signed that has not expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let (payload, sig) = token.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        hmac::verify(&self.0, payload.as_bytes(), &sig).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > now).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_takes_bcrypt_only() {
        let h = Htpasswd::parse(
            "# users\n\nalice:$2y$05$abcdefghijklmnopqrstuu5Y7fXbL3oG2qE1xJYp0i1S8yqkqVbG\n",
        )
        .unwrap();
        assert_eq!(h.len(), 1);
        assert!(h.hash("alice").is_some());
        assert!(h.hash("bob").is_none());
        let e = Htpasswd::parse("ok:$2y$05$x\nbob:{SHA}abc\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("bcrypt"), "{e}");
        assert_eq!(Htpasswd::parse("nocolon").unwrap_err().line, 1);
    }

    #[test]
    fn bcrypt_entries_verify() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        assert!(bcrypt_ok("secret", &hash));
        assert!(!bcrypt_ok("wrong", &hash));
        // htpasswd -B writes $2y$: the same algorithm.
        let y = hash.replacen("$2b$", "$2y$", 1);
        assert!(bcrypt_ok("secret", &y));
        assert!(!bcrypt_ok("secret", "garbage"));
    }

    #[test]
    fn authorization_headers() {
        assert_eq!(
            parse_basic("Basic dXNlcjpwYTpzcw=="),
            Some(("user".into(), "pa:ss".into()))
        );
        assert_eq!(parse_basic("basic !!!"), None);
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_bearer("Bearer abc.def"), Some("abc.def"));
        assert_eq!(parse_bearer("Bearer "), None);
        assert_eq!(parse_bearer("Basic abc"), None);
    }

    #[test]
    fn scopes() {
        let s = Scope::parse("repository:me/app:pull,push").unwrap();
        assert_eq!(s.kind, "repository");
        assert_eq!(s.name, "me/app");
        assert_eq!(s.actions, vec!["pull", "push"]);
        assert!(s.allows("repository", "me/app", "push"));
        assert!(!s.allows("repository", "me/other", "pull"));
        let c = Scope::parse("registry:catalog:*").unwrap();
        assert!(c.allows("registry", "catalog", "anything"));
        assert_eq!(Scope::parse("nonsense"), None);
        let all = parse_scopes(["repository:a:pull repository:b:push", "registry:catalog:*"]);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn tokens_sign_and_verify() {
        let key = TokenKey::from_secret(b"k1");
        let claims = Claims {
            sub: "alice".into(),
            access: vec![Scope::parse("repository:me/app:pull").unwrap()],
            iat: 1000,
            exp: 1300,
        };
        let t = key.sign(&claims);
        assert_eq!(key.verify(&t, 1299), Some(claims.clone()));
        assert_eq!(key.verify(&t, 1300), None, "expired");
        assert_eq!(TokenKey::from_secret(b"k2").verify(&t, 1000), None);
        // A payload edited to grant push no longer matches its signature.
        let mut forged = claims.clone();
        forged.access[0].actions.push("push".into());
        let forged_payload = key.sign(&forged);
        let (p, _) = forged_payload.split_once('.').unwrap();
        let (_, sig) = t.split_once('.').unwrap();
        assert_eq!(key.verify(&format!("{p}.{sig}"), 1000), None);
        assert_eq!(key.verify("garbage", 1000), None);
        assert!(TokenKey::random().is_ok());
    }
}
