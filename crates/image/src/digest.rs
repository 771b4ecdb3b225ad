use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

use crate::error::Error;

/// A digest algorithm the OCI image spec registers and Berth computes.
/// sha256 is what Berth itself writes; sha512 content is taken from others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The name in `algorithm:encoded` (also the blob directory's name).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The algorithm called `name`, or None when Berth does not compute it.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The length of the hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Box::new(Sha512::new())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A running hash of one [`Algorithm`].
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn finish(self) -> Digest {
        let alg = self.algorithm();
        let hex = match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        };
        Digest { alg, hex }
    }
}

impl Default for Hasher {
    fn default() -> Hasher {
        Algorithm::default().hasher()
    }
}

/// A content digest: `sha256:<64 hex>` or `sha512:<128 hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    alg: Algorithm,
    hex: String,
}

fn lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Digest {
    /// The sha256 digest of `data` (what Berth writes).
    pub fn of(data: &[u8]) -> Digest {
        Digest::of_as(Algorithm::Sha256, data)
    }

    pub fn of_as(alg: Algorithm, data: &[u8]) -> Digest {
        let mut h = alg.hasher();
        h.update(data);
        h.finish()
    }

    /// A sha256 digest from its hex encoding.
    pub fn from_hex(hex: &str) -> Result<Digest, Error> {
        Digest::from_parts(Algorithm::Sha256, hex)
    }

    pub fn from_parts(alg: Algorithm, hex: &str) -> Result<Digest, Error> {
        if hex.len() == alg.hex_len() && lower_hex(hex) {
            Ok(Digest {
                alg,
                hex: hex.to_string(),
            })
        } else {
            Err(Error::InvalidDigest(format!("{alg}:{hex}")))
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The hex encoding (64 or 128 characters).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as docker shows IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Whether `data` hashes to this digest (with this digest's algorithm).
    pub fn matches(&self, data: &[u8]) -> bool {
        Digest::of_as(self.alg, data) == *self
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg, self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest, Error> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| Error::InvalidDigest(s.to_string()))?;
        let alg = Algorithm::from_name(alg).ok_or_else(|| Error::InvalidDigest(s.to_string()))?;
        Digest::from_parts(alg, hex)
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Digest, Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    fn from(d: &Digest) -> Self {
        oci_spec::image::Digest::from_str(&d.to_string())
            .unwrap_or_else(|_| unreachable!("a Digest is always a valid sha256/sha512 digest"))
    }
}

/// A writer that hashes and counts what goes through it on the way to `inner`.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Hasher,
    len: u64,
}

impl<W: Write> DigestWriter<W> {
    /// Hashes with sha256.
    pub fn new(inner: W) -> Self {
        DigestWriter::with_algorithm(inner, Algorithm::Sha256)
    }

    pub fn with_algorithm(inner: W, alg: Algorithm) -> Self {
        DigestWriter {
            inner,
            hasher: alg.hasher(),
            len: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.len)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert!("sha256:xyz".parse::<Digest>().is_err());
        assert!("md5:e3b0".parse::<Digest>().is_err());
        assert!(Digest::from_hex(&"A".repeat(64)).is_err());
    }

    #[test]
    fn sha512() {
        let d = Digest::of_as(Algorithm::Sha512, b"");
        assert_eq!(d.algorithm(), Algorithm::Sha512);
        assert_eq!(d.hex().len(), 128);
        assert!(d
            .to_string()
            .starts_with("sha512:cf83e1357eefb8bdf1542850d66d8007"));
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!(d.matches(b""));
        assert!(!d.matches(b"x"));
        // The length belongs to the algorithm.
        assert!(format!("sha512:{}", "a".repeat(64))
            .parse::<Digest>()
            .is_err());
        assert!(format!("sha256:{}", "a".repeat(128))
            .parse::<Digest>()
            .is_err());
        let oci = oci_spec::image::Digest::from(&d);
        assert_eq!(oci.to_string(), d.to_string());
        let mut w = DigestWriter::with_algorithm(Vec::new(), Algorithm::Sha512);
        w.write_all(b"").unwrap();
        assert_eq!(w.finish().1, d);
    }

    #[test]
    fn writer_hashes_what_it_writes() {
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (out, d, n) = w.finish();
        assert_eq!(out, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of(b"hello world"));
    }
}
