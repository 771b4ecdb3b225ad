//! `n` and `last` pagination of tag lists and the catalog, with the `Link`
//! header that points at the next page.

use super::error::{ApiError, Code};
use super::route::Query;

/// One page of a sorted list.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<String>,
    /// Set when more items follow: the `last` of the next request.
    pub next: Option<String>,
}

/// The page of `sorted` after `last` (exclusive), at most `n` long.
pub fn paginate(sorted: Vec<String>, n: Option<usize>, last: Option<&str>) -> Page {
    let rest: Vec<String> = match last {
        Some(last) => sorted.into_iter().filter(|s| s.as_str() > last).collect(),
        None => sorted,
    };
    match n {
        Some(n) if rest.len() > n => {
            let items: Vec<String> = rest.into_iter().take(n).collect();
            let next = items.last().cloned();
            Page { items, next }
        }
        _ => Page {
            items: rest,
            next: None,
        },
    }
}

/// The `n` and `last` parameters of a list request.
pub fn params(query: &Query) -> Result<(Option<usize>, Option<String>), ApiError> {
    let n = match query.get("n") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            ApiError::new(
                Code::PaginationNumberInvalid,
                format!("invalid number of results requested: {v:?}"),
            )
        })?),
    };
    let last = query
        .get("last")
        .filter(|l| !l.is_empty())
        .map(String::from);
    Ok((n, last))
}

/// `Link: </v2/...?n=N&last=L>; rel="next"`.
pub fn link(path: &str, n: usize, last: &str) -> String {
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages() {
        let all = list(&["a", "b", "c", "d", "e"]);
        assert_eq!(
            paginate(all.clone(), None, None),
            Page {
                items: all.clone(),
                next: None
            }
        );
        assert_eq!(
            paginate(all.clone(), Some(2), None),
            Page {
                items: list(&["a", "b"]),
                next: Some("b".into())
            }
        );
        assert_eq!(
            paginate(all.clone(), Some(2), Some("b")),
            Page {
                items: list(&["c", "d"]),
                next: Some("d".into())
            }
        );
        assert_eq!(
            paginate(all.clone(), Some(2), Some("d")),
            Page {
                items: list(&["e"]),
                next: None
            }
        );
        assert!(paginate(all.clone(), Some(0), None).items.is_empty());
        assert_eq!(paginate(all, Some(5), None).next, None);
    }

    #[test]
    fn params_and_link() {
        let (n, last) = params(&Query::parse("n=3&last=b")).unwrap();
        assert_eq!((n, last.as_deref()), (Some(3), Some("b")));
        assert!(params(&Query::parse("n=x")).is_err());
        assert_eq!(
            link("/v2/me/app/tags/list", 3, "b"),
            "</v2/me/app/tags/list?n=3&last=b>; rel=\"next\""
        );
    }
}
