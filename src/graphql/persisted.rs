//! Automatic persisted queries, Apollo's protocol: a client sends only the SHA-256 of its
//! query (`extensions.persistedQuery.sha256Hash`); a replica that does not know it answers
//! `PERSISTED_QUERY_NOT_FOUND`, and the client sends the text with the hash once, which the
//! replica keeps. Long queries then cost a few bytes per request, and GET requests stay short
//! enough to be cached by a CDN.
//!
//! The cache keeps query *text*, not parsed documents, so a persisted query goes through the
//! same parse-time checks (`guard`) as any other; a text is kept only once it has passed them.
//! It is per replica and bounded in bytes, each entry counted with its keys and bookkeeping;
//! the oldest entries leave first. A replica that has never seen a hash asks for the text,
//! which the protocol expects: no replica needs another's cache.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_graphql::{Request, ServerResult};

use super::errors::server_error;
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// This replica's cache, shared by its requests.
#[derive(Clone)]
pub struct PersistedQueries {
    cache: Arc<Mutex<Cache>>,
}

/// A hash and text sent together: kept once the text has parsed and passed the guard.
pub(super) struct Pending {
    hash: String,
    text: String,
}

#[derive(Default)]
struct Cache {
    budget: usize,
    used: usize,
    texts: HashMap<String, Arc<str>>,
    /// Hashes by age, oldest first.
    order: VecDeque<String>,
}

/// What an entry costs besides its text: the hash twice (map and queue) and the
/// bookkeeping of both, rounded up. Tiny texts cannot fill the budget with millions of
/// entries.
const ENTRY_OVERHEAD: usize = 256;

fn cost(text: &str) -> usize {
    text.len() + ENTRY_OVERHEAD
}

impl Cache {
    fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.texts.get(hash).cloned()
    }

    fn insert(&mut self, hash: String, text: &str) {
        if self.texts.contains_key(&hash) || cost(text) > self.budget {
            return;
        }
        while self.used + cost(text) > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.texts.remove(&oldest) {
                self.used -= cost(&gone);
            }
        }
        self.used += cost(text);
        self.order.push_back(hash.clone());
        self.texts.insert(hash, Arc::from(text));
    }
}

impl PersistedQueries {
    /// A cache holding at most `budget` bytes of query text.
    pub fn new(budget: usize) -> Self {
        PersistedQueries {
            cache: Arc::new(Mutex::new(Cache {
                budget,
                ..Cache::default()
            })),
        }
    }

    /// Fills in the text of a hash-only request, or checks the hash of one sent with its text
    /// (answered as pending: [`keep`](Self::keep) stores it once it parsed and passed).
    pub(super) fn prepare(&self, request: &mut Request) -> ServerResult<Option<Pending>> {
        let Some(value) = request.extensions.remove("persistedQuery") else {
            return Ok(None);
        };
        let hash = requested_hash(value)?;
        if request.query.is_empty() {
            let text = self.cache.lock().ok().and_then(|cache| cache.get(&hash));
            return match text {
                Some(text) => {
                    request.query = text.to_string();
                    Ok(None)
                }
                None => Err(server_error(AppError::PersistedQueryNotFound, None)),
            };
        }
        let actual = hex::encode(Sha256::digest(request.query.as_bytes()));
        if actual != hash {
            return Err(server_error(
                AppError::bad_input(
                    "extensions.persistedQuery.sha256Hash",
                    format!("the query hashes to {actual}, not the hash sent with it"),
                ),
                None,
            ));
        }
        Ok(Some(Pending {
            hash,
            text: request.query.clone(),
        }))
    }

    pub(super) fn keep(&self, pending: Pending) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(pending.hash, &pending.text);
        }
    }
}

/// The hash of `{"version": 1, "sha256Hash": "<64 hex digits>"}`, lower-cased.
fn requested_hash(value: async_graphql::Value) -> ServerResult<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PersistedQuery {
        version: i64,
        sha256_hash: String,
    }
    let field = "extensions.persistedQuery";
    let query: PersistedQuery = async_graphql::from_value(value).map_err(|_| {
        server_error(
            AppError::bad_input(
                field,
                "expected {\"version\": 1, \"sha256Hash\": \"<hex>\"}",
            ),
            None,
        )
    })?;
    if query.version != 1 {
        return Err(server_error(
            AppError::bad_input(
                "extensions.persistedQuery.version",
                "only version 1 of persisted queries is supported",
            ),
            None,
        ));
    }
    let hash = query.sha256_hash.to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(server_error(
            AppError::bad_input(
                "extensions.persistedQuery.sha256Hash",
                "expected 64 hexadecimal digits",
            ),
            None,
        ));
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_to_its_budget_dropping_the_oldest() {
        let mut cache = Cache {
            budget: 2 * ENTRY_OVERHEAD + 10,
            ..Cache::default()
        };
        cache.insert("a".into(), "1234");
        cache.insert("b".into(), "5678");
        cache.insert("c".into(), "90ab");
        assert!(cache.get("a").is_none(), "the oldest left to make room");
        assert_eq!(cache.get("b").as_deref(), Some("5678"));
        assert_eq!(cache.get("c").as_deref(), Some("90ab"));
        assert!(cache.used <= cache.budget);
        cache.insert("huge".into(), "x".repeat(cache.budget).as_str());
        assert!(
            cache.get("huge").is_none(),
            "a text over the whole budget is not kept"
        );
        assert!(cache.get("c").is_some(), "and evicts nothing");
    }
}
