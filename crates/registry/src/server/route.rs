//! Request paths parsed into typed routes. Repository names contain slashes,
//! so a path is read from its end: `/v2/<name>/blobs/<digest>` and so on,
//! the same precedence as Docker's registry router.

/// Where a request goes. Names and references are still raw text here;
/// the dispatcher validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/token`: the bearer token endpoint.
    Token,
    /// `/v2/<name>/tags/list`
    Tags { name: String },
    /// `/v2/<name>/manifests/<reference>`
    Manifest { name: String, reference: String },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: String, digest: String },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { name: String },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload { name: String, id: String },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: String, digest: String },
}

impl Route {
    /// The repository the route is about.
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog | Route::Token => None,
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// The route of a request path, or None (404) for anything else.
pub fn parse_path(path: &str) -> Option<Route> {
    if path == "/token" {
        return Some(Route::Token);
    }
    if path == "/v2" || path == "/v2/" {
        return Some(Route::Base);
    }
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let segs: Vec<String> = rest.split('/').map(percent_decode).collect::<Option<_>>()?;
    let n = segs.len();
    let name = |k: usize| -> Option<String> {
        let name = segs[..k].join("/");
        (!name.is_empty()).then_some(name)
    };
    if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
        return Some(Route::Tags { name: name(n - 2)? });
    }
    if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        let name = name(n - 3)?;
        return Some(if segs[n - 1].is_empty() {
            Route::UploadStart { name }
        } else {
            Route::Upload {
                name,
                id: segs[n - 1].clone(),
            }
        });
    }
    if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
        return Some(Route::UploadStart { name: name(n - 2)? });
    }
    if n >= 2 {
        let last = segs[n - 1].clone();
        let name = name(n - 2)?;
        match segs[n - 2].as_str() {
            "blobs" => return Some(Route::Blob { name, digest: last }),
            "manifests" => {
                return Some(Route::Manifest {
                    name,
                    reference: last,
                })
            }
            "referrers" => return Some(Route::Referrers { name, digest: last }),
            _ => {}
        }
    }
    None
}

/// Decodes `%XX` escapes (a query's `+` is turned into a space before).
/// None when the result is not UTF-8 or an escape is broken.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A request's query parameters, in order, decoded.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    Some((percent_decode(k)?, percent_decode(&v.replace('+', " "))?))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn fixed_routes() {
        assert_eq!(parse_path("/v2/"), Some(Route::Base));
        assert_eq!(parse_path("/v2"), Some(Route::Base));
        assert_eq!(parse_path("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(parse_path("/token"), Some(Route::Token));
        assert_eq!(parse_path("/"), None);
        assert_eq!(parse_path("/v1/x"), None);
    }

    #[test]
    fn repository_routes_with_slashes() {
        assert_eq!(
            parse_path("/v2/me/app/tags/list"),
            Some(Route::Tags { name: s("me/app") })
        );
        assert_eq!(
            parse_path("/v2/a/b/c/manifests/latest"),
            Some(Route::Manifest {
                name: s("a/b/c"),
                reference: s("latest")
            })
        );
        assert_eq!(
            parse_path("/v2/me/app/blobs/sha256%3Aab"),
            Some(Route::Blob {
                name: s("me/app"),
                digest: s("sha256:ab")
            })
        );
        assert_eq!(
            parse_path("/v2/me/app/blobs/uploads/"),
            Some(Route::UploadStart { name: s("me/app") })
        );
        assert_eq!(
            parse_path("/v2/me/app/blobs/uploads"),
            Some(Route::UploadStart { name: s("me/app") })
        );
        assert_eq!(
            parse_path("/v2/me/blobs/uploads/1234"),
            Some(Route::Upload {
                name: s("me"),
                id: s("1234")
            })
        );
        assert_eq!(
            parse_path("/v2/x/referrers/sha256:ab"),
            Some(Route::Referrers {
                name: s("x"),
                digest: s("sha256:ab")
            })
        );
        // A repository may itself be called `blobs` or `manifests`.
        assert_eq!(
            parse_path("/v2/manifests/manifests/v1"),
            Some(Route::Manifest {
                name: s("manifests"),
                reference: s("v1")
            })
        );
        assert_eq!(parse_path("/v2/blobs/x"), None);
        assert_eq!(parse_path("/v2/me/app"), None);
        assert_eq!(parse_path("/v2/me/app/bad%zz/x"), None);
    }

    #[test]
    fn queries() {
        let q = Query::parse("digest=sha256%3Aab&scope=a&scope=b&n=&flag");
        assert_eq!(q.get("digest"), Some("sha256:ab"));
        assert_eq!(q.all("scope"), vec!["a", "b"]);
        assert_eq!(q.get("n"), Some(""));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("missing"), None);
        let q = Query::parse("scope=repository%3Ame%2Fapp%3Apull+push");
        assert_eq!(q.get("scope"), Some("repository:me/app:pull push"));
    }
}
