//! `login` / `logout`: credentials are checked against the registry (basic,
//! or a bearer token fetched with them, as the registry's challenge asks)
//! before they are stored.

use super::auth::{AuthConfig, Credentials};
use super::error::ClientError;
use super::Options;

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="..."` or `Basic realm="..."`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"')?;
                (&q[..end], &q[end + 1..])
            }
            None => match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            },
        };
        match key {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            _ => {}
        }
        s = next.trim_start_matches(',').trim();
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
    })
}

/// Checks `creds` against `registry` and stores them.
pub fn login(opts: &Options, registry: &str, creds: &Credentials) -> Result<(), ClientError> {
    super::install_crypto();
    let rt = super::runtime()?;
    rt.block_on(check(opts, registry, creds))?;
    drop(rt);
    AuthConfig::load(&opts.config_dir)?.set(registry, creds)
}

/// Checks credentials against `registry` without storing them (the Docker
/// API's `/auth`: the client keeps them).
pub fn verify(opts: &Options, registry: &str, creds: &Credentials) -> Result<(), ClientError> {
    super::install_crypto();
    let rt = super::runtime()?;
    rt.block_on(check(opts, registry, creds))
}

/// Forgets the credentials of `registry`; false if none were stored.
pub fn logout(opts: &Options, registry: &str) -> Result<bool, ClientError> {
    AuthConfig::load(&opts.config_dir)?.remove(registry)
}

async fn check(opts: &Options, registry: &str, creds: &Credentials) -> Result<(), ClientError> {
    let unreachable = |e: reqwest::Error| ClientError::Unreachable {
        registry: registry.to_string(),
        message: super::error::chain(&e),
    };
    let denied = || ClientError::Unauthorized {
        registry: registry.to_string(),
        message: "incorrect username or password".into(),
    };
    let (client, scheme) = super::api_client(opts, registry).await?;
    let base = format!("{scheme}://{}/v2/", hub_host(registry));
    let res = client.get(&base).send().await.map_err(unreachable)?;
    if res.status().is_success() {
        return Ok(());
    }
    if res.status().as_u16() != 401 {
        return Err(ClientError::Registry {
            registry: registry.to_string(),
            message: format!("{base}: {}", res.status()),
        });
    }
    let challenge = res
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .and_then(parse_challenge)
        .unwrap_or(Challenge::Basic);
    let ok = match challenge {
        Challenge::Basic => client
            .get(&base)
            .basic_auth(&creds.username, Some(&creds.password))
            .send()
            .await
            .map_err(unreachable)?
            .status()
            .is_success(),
        Challenge::Bearer { realm, service } => {
            let mut query = vec![("account", creds.username.clone())];
            if let Some(s) = service {
                query.push(("service", s));
            }
            client
                .get(&realm)
                .query(&query)
                .basic_auth(&creds.username, Some(&creds.password))
                .send()
                .await
                .map_err(unreachable)?
                .status()
                .is_success()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(denied())
    }
}

/// Docker Hub's registry host for its short names.
fn hub_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="berth-registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("bearer realm=http://127.0.0.1:1/token"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: None
            })
        );
        assert_eq!(parse_challenge("Bearer service=\"x\""), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
