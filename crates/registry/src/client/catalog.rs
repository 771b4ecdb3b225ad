//! `search`: the repositories a registry lists at `GET /v2/_catalog`
//! (paginated with `n` and `last`, following the `Link` header). A registry
//! without a catalog (Docker Hub has none for clients) is a clear error.

use super::auth::{AuthConfig, Credentials};
use super::error::ClientError;
use super::login::{parse_challenge, Challenge};
use super::Options;

/// Every repository `registry` (`host[:port]`) lists.
pub fn catalog(opts: &Options, registry: &str) -> Result<Vec<String>, ClientError> {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return Err(ClientError::NoCatalog {
            registry: registry.to_string(),
            message: "Docker Hub lists none to clients; name a registry that does (berth search HOST[:PORT]/TERM)".into(),
        });
    }
    super::install_crypto();
    let rt = super::runtime()?;
    let out = rt.block_on(list(opts, registry));
    drop(rt);
    out
}

/// The `next` target of a `Link: </v2/_catalog?last=x&n=100>; rel="next"` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

async fn list(opts: &Options, registry: &str) -> Result<Vec<String>, ClientError> {
    let unreachable = |e: reqwest::Error| ClientError::Unreachable {
        registry: registry.to_string(),
        message: super::error::chain(&e),
    };
    let failed = |message: String| ClientError::Registry {
        registry: registry.to_string(),
        message,
    };
    let (client, scheme) = super::api_client(opts, registry).await?;
    let creds: Option<Credentials> = match &opts.credentials {
        Some(c) => Some(c.clone()),
        None => AuthConfig::load(&opts.config_dir)?.get(registry),
    };
    let base = format!("{scheme}://{registry}");
    let mut path = "/v2/_catalog?n=1000".to_string();
    let mut token: Option<String> = None;
    let mut basic = false;
    let mut repos = Vec::new();
    loop {
        let url = format!("{base}{path}");
        let send = |token: &Option<String>, basic: bool| {
            let mut req = client.get(&url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            } else if let (true, Some(c)) = (basic, &creds) {
                req = req.basic_auth(&c.username, Some(&c.password));
            }
            req.send()
        };
        let mut res = send(&token, basic).await.map_err(unreachable)?;
        if res.status().as_u16() == 401 && token.is_none() && !basic {
            let challenge = res
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .and_then(parse_challenge)
                .unwrap_or(Challenge::Basic);
            match challenge {
                Challenge::Basic => basic = true,
                Challenge::Bearer { realm, service } => {
                    let mut query = vec![("scope", "registry:catalog:*".to_string())];
                    if let Some(s) = service {
                        query.push(("service", s));
                    }
                    let mut req = client.get(&realm).query(&query);
                    if let Some(c) = &creds {
                        query.push(("account", c.username.clone()));
                        req = client
                            .get(&realm)
                            .query(&query)
                            .basic_auth(&c.username, Some(&c.password));
                    }
                    let t = req.send().await.map_err(unreachable)?;
                    let body = t.bytes().await.map_err(unreachable)?;
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    token = v["token"]
                        .as_str()
                        .or_else(|| v["access_token"].as_str())
                        .map(String::from);
                }
            }
            res = send(&token, basic).await.map_err(unreachable)?;
        }
        match res.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(ClientError::Unauthorized {
                    registry: registry.to_string(),
                    message: format!(
                        "listing the catalog needs credentials (berth login {registry})"
                    ),
                })
            }
            404 => {
                return Err(ClientError::NoCatalog {
                    registry: registry.to_string(),
                    message: "GET /v2/_catalog: 404 Not Found".into(),
                })
            }
            s => return Err(failed(format!("GET /v2/_catalog: {s}"))),
        }
        let next = res
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|h| h.to_str().ok())
            .and_then(next_link);
        let body = res.bytes().await.map_err(unreachable)?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("GET /v2/_catalog: not a catalog: {e}")))?;
        let page = v["repositories"]
            .as_array()
            .ok_or_else(|| failed("GET /v2/_catalog: no repositories in the answer".into()))?;
        repos.extend(page.iter().filter_map(|r| r.as_str().map(String::from)));
        match next {
            Some(n) if !page.is_empty() => {
                path = match n.find("/v2/") {
                    Some(i) => n[i..].to_string(),
                    None => return Ok(repos),
                }
            }
            _ => return Ok(repos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#),
            Some("/v2/_catalog?last=b&n=2".into())
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
