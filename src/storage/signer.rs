//! URLs this server signs: canonical text, HMAC-SHA256, constant-time comparison.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::values::Id;

/// Signs and verifies URLs this server answers without an API key. The key is shared by every
/// replica (stored in the database) so any replica verifies what another signed.
///
/// A URL names the API key that minted it (`key=`), so it works only while that key does; the
/// signature covers one canonical text (method, path, expiry, key id) and is compared in
/// constant time; an expiry further ahead than the instance's maximum lifetime is refused
/// even when correctly signed, so neither a leaked signing key nor a generous client can mint
/// a URL that outlives the policy.
pub struct Signer {
    key: Vec<u8>,
}

/// How far one replica's clock may run ahead of another's: a URL minted at the maximum
/// lifetime stays valid on a replica whose clock is behind.
const CLOCK_SKEW_SECS: i64 = 60;

/// The signed parts of a URL's query, as presented.
pub struct SignedParams<'a> {
    pub expires: &'a str,
    pub key_id: &'a str,
    pub signature: &'a str,
}

impl Signer {
    pub fn new(key: &[u8]) -> Signer {
        Signer { key: key.to_vec() }
    }

    fn mac(&self, method: &str, path: &str, expires: i64, key_id: Id) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(format!("mr-url-v1\n{method}\n{path}\n{expires}\n{key_id}").as_bytes());
        mac
    }

    /// The `expires`, `key` and `signature` query parameters for `method path`.
    pub fn sign(&self, method: &str, path: &str, expires: i64, key_id: Id) -> String {
        let tag = self
            .mac(method, path, expires, key_id)
            .finalize()
            .into_bytes();
        format!(
            "expires={expires}&key={key_id}&signature={}",
            hex::encode(tag)
        )
    }

    /// The minting key's id when `params` are ours for `method path`, still ahead of `now`
    /// and at most `max_lifetime` seconds ahead. Only the canonical spelling of each part
    /// (decimal digits, a lowercase hyphenated UUID, 64 lowercase hex digits) is accepted, so
    /// one URL has exactly one valid form.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        params: &SignedParams<'_>,
        now: i64,
        max_lifetime: i64,
    ) -> Option<Id> {
        let expires: i64 = params.expires.parse().ok()?;
        let key_id: Id = params.key_id.parse().ok()?;
        if expires.to_string() != params.expires || key_id.to_string() != params.key_id {
            return None;
        }
        let signature = params.signature;
        let canonical_hex = signature.len() == 64
            && signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !canonical_hex || now >= expires || expires - now > max_lifetime + CLOCK_SKEW_SECS {
            return None;
        }
        let tag = hex::decode(signature).ok()?;
        self.mac(method, path, expires, key_id)
            .verify_slice(&tag)
            .ok()
            .map(|()| key_id)
    }
}

/// A new random signing key, hex.
pub fn random_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_method_path_time_and_key() {
        let signer = Signer::new(b"k");
        let key = Id::new();
        let query = signer.sign("GET", "/v1/artifacts/a/download", 100, key);
        let sig = query.split("signature=").nth(1).unwrap().to_owned();
        let (key_text, other_key) = (key.to_string(), Id::new().to_string());
        let params = |expires: &'static str, key_id: &str, signature: &str| {
            (expires.to_owned(), key_id.to_owned(), signature.to_owned())
        };
        let check = |signer: &Signer,
                     method: &str,
                     path: &str,
                     p: &(String, String, String),
                     now: i64,
                     max: i64| {
            signer.verify(
                method,
                path,
                &SignedParams {
                    expires: &p.0,
                    key_id: &p.1,
                    signature: &p.2,
                },
                now,
                max,
            )
        };
        let good = params("100", &key_text, &sig);
        let path = "/v1/artifacts/a/download";
        assert_eq!(check(&signer, "GET", path, &good, 99, 3600), Some(key));
        assert_eq!(
            check(&signer, "GET", path, &good, 100, 3600),
            None,
            "expired"
        );
        assert_eq!(
            check(&signer, "GET", path, &good, 10, 20),
            None,
            "beyond the maximum lifetime"
        );
        assert_eq!(
            check(&signer, "GET", "/v1/artifacts/b/download", &good, 99, 3600),
            None
        );
        assert_eq!(check(&signer, "PUT", path, &good, 99, 3600), None);
        assert_eq!(
            check(
                &signer,
                "GET",
                path,
                &params("101", &key_text, &sig),
                99,
                3600
            ),
            None
        );
        assert_eq!(
            check(
                &signer,
                "GET",
                path,
                &params("100", &other_key, &sig),
                99,
                3600
            ),
            None
        );
        assert_eq!(
            check(&Signer::new(b"other"), "GET", path, &good, 99, 3600),
            None
        );
        // Other spellings of the same values are not accepted.
        assert_eq!(
            check(
                &signer,
                "GET",
                path,
                &params("+100", &key_text, &sig),
                99,
                3600
            ),
            None
        );
        assert_eq!(
            check(
                &signer,
                "GET",
                path,
                &params("0100", &key_text, &sig),
                99,
                3600
            ),
            None
        );
        assert_eq!(
            check(
                &signer,
                "GET",
                path,
                &params("100", &key_text.to_uppercase(), &sig),
                99,
                3600
            ),
            None
        );
        assert_eq!(
            check(
                &signer,
                "GET",
                path,
                &params("100", &key_text, &sig.to_uppercase()),
                99,
                3600
            ),
            None
        );
    }
}
