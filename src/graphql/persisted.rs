//! Automatic persisted queries, Apollo's protocol: a client sends only the SHA-256 of its
//! query (`extensions.persistedQuery.sha256Hash`); a replica that does not know it answers
//! `PERSISTED_QUERY_NOT_FOUND`, and the client sends the text with the hash once, which the
//! replica keeps. Long queries then cost a few bytes per request, and GET requests stay short
//! enough to be cached by a CDN.
//!
//! The cache keeps query *text*, not parsed documents, so a persisted query goes through the
//! same parse-time checks (`guard`) as any other. It is per replica and bounded in bytes;
//! the oldest entries leave first. A replica that has never seen a hash asks for the text,
//! which the protocol expects: no replica needs another's cache.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::{Request, ServerResult};

use super::errors::server_error;
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// The extension, holding this replica's cache.
pub struct PersistedQueries {
    cache: Arc<Mutex<Cache>>,
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
}

#[derive(Default)]
struct Cache {
    budget: usize,
    used: usize,
    texts: HashMap<String, Arc<str>>,
    /// Hashes by age, oldest first.
    order: VecDeque<String>,
}

impl Cache {
    fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.texts.get(hash).cloned()
    }

    fn insert(&mut self, hash: String, text: &str) {
        if self.texts.contains_key(&hash) || text.len() > self.budget {
            return;
        }
        while self.used + text.len() > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.texts.remove(&oldest) {
                self.used -= gone.len();
            }
        }
        self.used += text.len();
        self.order.push_back(hash.clone());
        self.texts.insert(hash, Arc::from(text));
    }
}

impl ExtensionFactory for PersistedQueries {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PersistedQueriesExtension {
            cache: self.cache.clone(),
        })
    }
}

struct PersistedQueriesExtension {
    cache: Arc<Mutex<Cache>>,
}

#[async_trait::async_trait]
impl Extension for PersistedQueriesExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Some(value) = request.extensions.remove("persistedQuery") {
            let hash = requested_hash(value)?;
            if request.query.is_empty() {
                let text = self.cache.lock().ok().and_then(|cache| cache.get(&hash));
                match text {
                    Some(text) => request.query = text.to_string(),
                    None => return Err(server_error(AppError::PersistedQueryNotFound, None)),
                }
            } else {
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
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(hash, &request.query);
                }
            }
        }
        next.run(ctx, request).await
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
            budget: 10,
            ..Cache::default()
        };
        cache.insert("a".into(), "1234");
        cache.insert("b".into(), "5678");
        cache.insert("c".into(), "90ab");
        assert!(cache.get("a").is_none(), "the oldest left to make room");
        assert_eq!(cache.get("b").as_deref(), Some("5678"));
        assert_eq!(cache.get("c").as_deref(), Some("90ab"));
        assert!(cache.used <= 10);
        cache.insert("huge".into(), "x".repeat(11).as_str());
        assert!(
            cache.get("huge").is_none(),
            "a text over the whole budget is not kept"
        );
        assert!(cache.get("c").is_some(), "and evicts nothing");
    }
}
