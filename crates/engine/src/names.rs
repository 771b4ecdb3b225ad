//! Random container names in docker's `adjective_surname` style.

const LEFT: [&str; 24] = [
    "admiring", "bold", "brave", "busy", "clever", "cool", "eager", "elated", "epic", "fervent",
    "focused", "gallant", "happy", "jolly", "keen", "kind", "lucid", "nifty", "quirky", "serene",
    "sharp", "stoic", "upbeat", "vibrant",
];

const RIGHT: [&str; 24] = [
    "babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "fermi", "galileo",
    "hopper", "hypatia", "kepler", "lamarr", "lovelace", "meitner", "newton", "noether", "pascal",
    "ritchie", "shannon", "tesla", "turing", "wozniak", "yalow",
];

/// A name from two random bytes (plus a number after a collision, as docker does).
pub fn generate(random: &[u8; 3], attempt: u32) -> String {
    let base = format!(
        "{}_{}",
        LEFT[random[0] as usize % LEFT.len()],
        RIGHT[random[1] as usize % RIGHT.len()]
    );
    if attempt == 0 {
        base
    } else {
        format!("{base}{}", random[2] as u32 % 10 + attempt)
    }
}

/// Docker's rule for user-given names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    // Docker asks for two characters at least; one-letter names (`--name c`)
    // are accepted here, as Berth's own documentation uses them.
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A full container ID: 64 lowercase hex digits.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for i in 0..=255u8 {
            assert!(valid(&generate(&[i, i.wrapping_mul(7), i], 0)));
        }
        assert_ne!(generate(&[1, 2, 3], 0), generate(&[1, 2, 3], 1));
    }

    #[test]
    fn validation() {
        assert!(valid("web"));
        assert!(valid("my-app_1.2"));
        assert!(valid("c"));
        assert!(!valid(""));
        assert!(!valid("-web"));
        assert!(!valid("we/b"));
    }
}
