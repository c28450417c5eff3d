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
        let path = "/v1/artifacts/a/download";
        let query = signer.sign("GET", path, 100, key);
        let sig = query.split("signature=").nth(1).unwrap().to_owned();
        let (key_text, other_key) = (key.to_string(), Id::new().to_string());
        // (signer, method, path, expires, key id, signature, now, maximum lifetime)
        let verify = |case: (&Signer, &str, &str, &str, &str, &str, i64, i64)| {
            let (signer, method, path, expires, key_id, signature, now, max) = case;
            let params = SignedParams {
                expires,
                key_id,
                signature,
            };
            signer.verify(method, path, &params, now, max)
        };
        assert_eq!(
            verify((&signer, "GET", path, "100", &key_text, &sig, 99, 3600)),
            Some(key)
        );
        let other_signer = Signer::new(b"other");
        let (upper_key, upper_sig) = (key_text.to_uppercase(), sig.to_uppercase());
        let refused = [
            (
                "expired",
                (&signer, "GET", path, "100", &*key_text, &*sig, 100, 3600),
            ),
            (
                "beyond the maximum lifetime",
                (&signer, "GET", path, "100", &key_text, &sig, 10, 20),
            ),
            (
                "another path",
                (
                    &signer,
                    "GET",
                    "/v1/artifacts/b/download",
                    "100",
                    &key_text,
                    &sig,
                    99,
                    3600,
                ),
            ),
            (
                "another method",
                (&signer, "PUT", path, "100", &key_text, &sig, 99, 3600),
            ),
            (
                "another expiry",
                (&signer, "GET", path, "101", &key_text, &sig, 99, 3600),
            ),
            (
                "another key",
                (&signer, "GET", path, "100", &other_key, &sig, 99, 3600),
            ),
            (
                "another signing key",
                (&other_signer, "GET", path, "100", &key_text, &sig, 99, 3600),
            ),
            // Other spellings of the same values.
            (
                "a plus sign",
                (&signer, "GET", path, "+100", &key_text, &sig, 99, 3600),
            ),
            (
                "a leading zero",
                (&signer, "GET", path, "0100", &key_text, &sig, 99, 3600),
            ),
            (
                "an upper-case key id",
                (&signer, "GET", path, "100", &upper_key, &sig, 99, 3600),
            ),
            (
                "an upper-case signature",
                (&signer, "GET", path, "100", &key_text, &upper_sig, 99, 3600),
            ),
        ];
        for (what, case) in refused {
            assert_eq!(verify(case), None, "{what}");
        }
    }
}
