//! The spec's grammar for repository names, tags and digests, checked by hand
//! (no regex engine): each validated value is also safe as a path under the
//! storage root (no `..`, no leading `/` or `.`).

use berth_image::{Algorithm, Digest};

/// The longest repository name we take (the spec: name and host under 256).
const MAX_NAME: usize = 255;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Every run of separators between alphanumerics is `.`, `_`, `__` or `-+`.
    let mut run = String::new();
    for &b in bytes {
        if alnum(b) {
            if !run.is_empty() {
                let ok = run == "." || run == "_" || run == "__" || run.bytes().all(|s| s == b'-');
                if !ok {
                    return false;
                }
                run.clear();
            }
        } else if matches!(b, b'.' | b'_' | b'-') {
            run.push(b as char);
        } else {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    bytes.len() <= 128
        && (first.is_ascii_alphanumeric() || first == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Why a digest was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}")]
    Malformed(String),
    #[error("unsupported digest algorithm {0:?} (sha256 and sha512 are supported)")]
    Unsupported(String),
}

/// `algorithm:encoded` per the spec's grammar; sha256 and sha512 are stored,
/// any other well-formed algorithm is `Unsupported`.
pub fn parse_digest(s: &str) -> Result<Digest, DigestError> {
    let malformed = || DigestError::Malformed(s.to_string());
    let (alg, enc) = s.split_once(':').ok_or_else(malformed)?;
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let enc_ok = !enc.is_empty()
        && enc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    if !alg_ok || !enc_ok {
        return Err(malformed());
    }
    let alg = Algorithm::from_name(alg).ok_or_else(|| DigestError::Unsupported(alg.to_string()))?;
    Digest::from_parts(alg, enc).map_err(|_| malformed())
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

/// Why a manifest reference was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ReferenceError {
    Tag(String),
    Digest(DigestError),
}

pub fn parse_reference(s: &str) -> Result<Reference, ReferenceError> {
    if s.contains(':') {
        parse_digest(s)
            .map(Reference::Digest)
            .map_err(ReferenceError::Digest)
    } else if valid_tag(s) {
        Ok(Reference::Tag(s.to_string()))
    } else {
        Err(ReferenceError::Tag(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn names() {
        for ok in [
            "a",
            "app",
            "me/app",
            "a/b/c",
            "my-app",
            "my--app",
            "my.app",
            "my_app",
            "my__app",
            "library/ubuntu-22.04",
            "0/1",
        ] {
            assert!(valid_name(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "App",
            "me/",
            "/me",
            "me//app",
            "-app",
            "app-",
            "my___app",
            "my._app",
            "a/../b",
            "..",
            ".a",
            "a b",
            "_catalog",
            "a/_blobs",
            &"a".repeat(256),
        ] {
            assert!(!valid_name(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0", "_x", "1", "A-b_c.d", &"t".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn digests() {
        let d = parse_digest(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(d.hex(), HEX);
        let long = format!("sha512:{HEX}{HEX}");
        assert_eq!(parse_digest(&long).unwrap().to_string(), long);
        assert!(matches!(
            parse_digest("sha512:abcd"),
            Err(DigestError::Malformed(_))
        ));
        assert_eq!(
            parse_digest(&format!("blake3:{HEX}")),
            Err(DigestError::Unsupported("blake3".into()))
        );
        assert_eq!(
            parse_digest("sha384+x.y:abcd"),
            Err(DigestError::Unsupported("sha384+x.y".into()))
        );
        assert!(matches!(
            parse_digest("sha256:abcd"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            parse_digest(&format!("sha256:{}", HEX.to_uppercase())),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            parse_digest("nocolon"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            parse_digest("SHA256:ab"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            parse_digest("sha256:../../x"),
            Err(DigestError::Malformed(_))
        ));
    }

    #[test]
    fn references() {
        assert_eq!(
            parse_reference("latest"),
            Ok(Reference::Tag("latest".into()))
        );
        assert!(matches!(
            parse_reference(&format!("sha256:{HEX}")),
            Ok(Reference::Digest(_))
        ));
        assert!(matches!(
            parse_reference(".bad"),
            Err(ReferenceError::Tag(_))
        ));
        assert!(matches!(
            parse_reference("sha256:zz"),
            Err(ReferenceError::Digest(_))
        ));
    }
}
