//! Authentication of requests: basic credentials on every request, or
//! Docker Hub's token flow (a 401 challenge names `/token`, which trades
//! basic credentials for a signed bearer token of the requested scopes).

use std::collections::HashSet;
use std::sync::Mutex;

use hyper::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Response, StatusCode};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::auth::{bcrypt_ok, parse_basic, parse_bearer, parse_scopes, Claims, Htpasswd, TokenKey};
use super::error::{ApiError, Code};
use super::http::{read_small, Body, Reply};
use super::route::Query;

/// The `service` our tokens are for.
pub const SERVICE: &str = "berth-registry";
/// How long a token lives, in seconds.
pub const TOKEN_TTL: i64 = 300;
/// Verified credentials remembered, so bcrypt runs once per user and password.
const CACHE_MAX: usize = 1024;

/// How clients authenticate.
pub enum Mode {
    Basic,
    Token(TokenKey),
}

/// What a request needs to be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Any authenticated client (`/v2/`).
    Any,
    /// `registry:catalog:*`
    Catalog,
    /// `repository:<name>:pull`, or `pull,push` for writes.
    Repo { name: String, push: bool },
}

impl Need {
    fn scope(&self) -> Option<String> {
        match self {
            Need::Any => None,
            Need::Catalog => Some("registry:catalog:*".into()),
            Need::Repo { name, push: false } => Some(format!("repository:{name}:pull")),
            Need::Repo { name, push: true } => Some(format!("repository:{name}:pull,push")),
        }
    }

    fn allowed_by(&self, claims: &Claims) -> bool {
        match self {
            Need::Any => true,
            Need::Catalog => claims.allows("registry", "catalog", "*"),
            Need::Repo { name, push } => {
                claims.allows("repository", name, "pull")
                    && (!push || claims.allows("repository", name, "push"))
            }
        }
    }
}

/// What an authenticated request may do beyond what it asked for (a
/// cross-repository mount reads another repository).
#[derive(Debug, Clone)]
pub enum Grant {
    /// No auth, or basic credentials: every htpasswd user may do everything.
    All,
    Token(Claims),
}

impl Grant {
    pub fn may_pull(&self, repo: &str) -> bool {
        match self {
            Grant::All => true,
            Grant::Token(c) => c.allows("repository", repo, "pull"),
        }
    }
}

pub struct Gate {
    users: Htpasswd,
    mode: Mode,
    /// sha256 of user, password and hash of credentials that verified.
    verified: Mutex<HashSet<[u8; 32]>>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A host fit to put in a challenge (it comes from the client).
fn clean_host(host: &str) -> Option<&str> {
    (!host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'[' | b']')))
    .then_some(host)
}

impl Gate {
    pub fn new(users: Htpasswd, mode: Mode) -> Gate {
        Gate {
            users,
            mode,
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `user:pass` is in the htpasswd file.
    async fn credentials_ok(&self, user: &str, pass: &str) -> bool {
        let Some(hash) = self.users.hash(user) else {
            return false;
        };
        let key: [u8; 32] = Sha256::new()
            .chain_update(user)
            .chain_update([0])
            .chain_update(pass)
            .chain_update([0])
            .chain_update(hash)
            .finalize()
            .into();
        let cache = |f: &mut dyn FnMut(&mut HashSet<[u8; 32]>) -> bool| {
            let mut set = self
                .verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut set)
        };
        if cache(&mut |s| s.contains(&key)) {
            return true;
        }
        let (pass, hash) = (pass.to_string(), hash.to_string());
        let ok = tokio::task::spawn_blocking(move || bcrypt_ok(&pass, &hash))
            .await
            .unwrap_or(false);
        if ok {
            cache(&mut |s| {
                if s.len() >= CACHE_MAX {
                    s.clear();
                }
                s.insert(key)
            });
        }
        ok
    }

    async fn basic_user(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
        let (user, pass) = parse_basic(value)?;
        self.credentials_ok(&user, &pass).await.then_some(user)
    }

    fn basic_challenge() -> ApiError {
        ApiError::new(Code::Unauthorized, "authentication required")
            .header(WWW_AUTHENTICATE, format!("Basic realm=\"{SERVICE}\""))
    }

    /// Checks a request against what it needs.
    pub async fn check(
        &self,
        headers: &HeaderMap,
        need: &Need,
        host: &str,
        scheme: &str,
    ) -> Result<Grant, ApiError> {
        match &self.mode {
            Mode::Basic => match self.basic_user(headers).await {
                Some(_) => Ok(Grant::All),
                None => Err(Self::basic_challenge()),
            },
            Mode::Token(key) => {
                let token = headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_bearer);
                let claims = token.and_then(|t| key.verify(t, now()));
                if let Some(claims) = &claims {
                    if need.allowed_by(claims) {
                        return Ok(Grant::Token(claims.clone()));
                    }
                }
                let host = clean_host(host).unwrap_or("localhost");
                let mut challenge =
                    format!("Bearer realm=\"{scheme}://{host}/token\",service=\"{SERVICE}\"");
                if let Some(scope) = need.scope() {
                    challenge.push_str(&format!(",scope=\"{scope}\""));
                }
                match (token, &claims) {
                    (Some(_), None) => challenge.push_str(",error=\"invalid_token\""),
                    (Some(_), Some(_)) => challenge.push_str(",error=\"insufficient_scope\""),
                    _ => {}
                }
                Err(ApiError::new(Code::Unauthorized, "authentication required")
                    .header(WWW_AUTHENTICATE, challenge))
            }
        }
    }

    /// `GET /token?service=..&scope=..` with basic credentials, or the
    /// OAuth2 form `POST /token` (grant_type=password): a token for every
    /// requested scope (htpasswd users may do everything).
    pub async fn token<B>(
        &self,
        method: &Method,
        headers: &HeaderMap,
        query: &Query,
        body: B,
    ) -> Result<Response<Body>, ApiError>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let Mode::Token(key) = &self.mode else {
            return Err(ApiError::new(Code::NotFound, "no token endpoint"));
        };
        let (user, scopes) = if method == Method::GET {
            let user = self
                .basic_user(headers)
                .await
                .ok_or_else(Self::basic_challenge)?;
            (user, parse_scopes(query.all("scope")))
        } else if method == Method::POST {
            let is_form = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
            let raw = read_small(body, 64 * 1024).await?;
            let form = Query::parse(&String::from_utf8_lossy(&raw));
            if !is_form || form.get("grant_type") != Some("password") {
                return Err(ApiError::new(
                    Code::Unsupported,
                    "only grant_type=password is supported",
                )
                .with_status(StatusCode::BAD_REQUEST));
            }
            let (u, p) = (
                form.get("username").unwrap_or(""),
                form.get("password").unwrap_or(""),
            );
            if !self.credentials_ok(u, p).await {
                return Err(Self::basic_challenge());
            }
            (u.to_string(), parse_scopes(form.all("scope")))
        } else {
            return Err(ApiError::new(Code::Unsupported, "method not allowed"));
        };
        let issued = chrono::Utc::now();
        let claims = Claims {
            sub: user,
            access: scopes,
            iat: issued.timestamp(),
            exp: issued.timestamp() + TOKEN_TTL,
        };
        let token = key.sign(&claims);
        Ok(Reply::new(StatusCode::OK).json(&json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_TTL,
            "issued_at": issued.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::Scope;

    #[test]
    fn needs_and_scopes() {
        let pull = Need::Repo {
            name: "me/app".into(),
            push: false,
        };
        let push = Need::Repo {
            name: "me/app".into(),
            push: true,
        };
        assert_eq!(pull.scope().unwrap(), "repository:me/app:pull");
        assert_eq!(push.scope().unwrap(), "repository:me/app:pull,push");
        let claims = Claims {
            sub: "u".into(),
            access: vec![Scope::parse("repository:me/app:pull").unwrap()],
            iat: 0,
            exp: 1,
        };
        assert!(pull.allowed_by(&claims));
        assert!(!push.allowed_by(&claims));
        assert!(!Need::Catalog.allowed_by(&claims));
        assert!(Need::Any.allowed_by(&claims));
        assert!(Grant::Token(claims.clone()).may_pull("me/app"));
        assert!(!Grant::Token(claims).may_pull("other"));
    }

    #[test]
    fn hosts_in_challenges() {
        assert_eq!(clean_host("127.0.0.1:5000"), Some("127.0.0.1:5000"));
        assert_eq!(clean_host("[::1]:5000"), Some("[::1]:5000"));
        assert_eq!(clean_host("evil\",x=\"y"), None);
        assert_eq!(clean_host(""), None);
    }
}
