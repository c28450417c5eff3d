//! API key secrets: `mr_` followed by 48 hex characters (192 random bits).
//!
//! Only the SHA-256 of a secret is stored. A fast hash is right here: the secret is random and
//! long, so there is nothing for a slow password hash to protect against, and every request
//! looks one up.

use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "mr_";
/// How much of a secret is kept in the clear, to recognise a key in a list.
const VISIBLE_LEN: usize = KEY_PREFIX.len() + 8;

/// A newly minted secret; shown to its owner once and then only its hash remains.
pub struct NewSecret {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

pub fn generate() -> NewSecret {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    let secret = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    NewSecret {
        prefix: secret[..VISIBLE_LEN].to_owned(),
        hash: hash(&secret),
        secret,
    }
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Cheap shape check before any database lookup.
pub fn looks_like_key(secret: &str) -> bool {
    secret.len() == KEY_PREFIX.len() + 48
        && secret.starts_with(KEY_PREFIX)
        && secret[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(looks_like_key(&a.secret));
        assert!(a.secret.starts_with(&a.prefix));
        assert_eq!(a.hash, hash(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.secret[3..]));
        assert!(!looks_like_key("mr_short"));
    }
}
