//! Answers to read-only queries, kept per replica and served again while the registry has not
//! changed since they were computed: a registry UI asks for the same page of models over and
//! over, and executing it (a thousand fields through the engine, five statements) costs a
//! hundred times what serving stored bytes does.
//!
//! Why an answer served from here is the answer execution would give:
//! - **Only fields that read organizations, projects, models and versions** are cached
//!   ([`CACHEABLE`]), looked up by the type they are selected on, through fragments. Their
//!   values are columns of those tables or follow from them and from the caller's key; none
//!   depends on the clock, the request's origin or another table. Any other field (telemetry,
//!   artifacts, keys, endpoints, signed URLs) makes the whole operation uncacheable, as do
//!   mutations.
//! - **Every committed write to those four tables moves [`registry_changes`] forward**, by
//!   database triggers in the writing transaction, whichever code path writes. The sum is read
//!   before the query executes; an entry is served only to a request that reads the same sum.
//!   The sum only grows, so an unchanged sum means no write committed between the entry's
//!   execution and this request. A client that wrote and then reads sees its write, on any
//!   replica (read-your-writes), since the write's commit came before its next read of the
//!   sum.
//! - **Entries are per key** (the key's id, role and scope), per query text, operation name
//!   and variables, compared whole: nothing is shared between keys, and no hash stands in for
//!   the text. Only answers without errors are kept. The key itself is checked on every
//!   request before the cache is asked, so a revoked or expired key is refused as before.
//!
//! A request pays one small read (the sum) whether or not it is served from here; a text found
//! uncacheable once is not asked again. The cache is bounded in bytes (entries with
//! their keys and bookkeeping); the oldest entries leave first.
//!
//! [`registry_changes`]: crate::db::changes::registry_changes

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::registry::Registry;
use axum::body::Bytes;

use super::nulls::named_type;
use crate::auth::{Principal, Scope};
use crate::db::Db;
use crate::db::changes::registry_changes;
use crate::values::{Id, Role};

/// The fields whose values come from organizations, projects, models and versions only, by
/// the type they are selected on. A field added to one of these types is not cached until it
/// is listed here; list it only if its resolver reads nothing else and not the clock.
const CACHEABLE: &[(&str, &[&str])] = &[
    (
        "QueryRoot",
        &[
            "models",
            "model",
            "modelByName",
            "modelVersion",
            "organizations",
            "organization",
            "projects",
            "project",
        ],
    ),
    (
        "PageInfo",
        &["hasPreviousPage", "hasNextPage", "startCursor", "endCursor"],
    ),
    (
        "ModelConnection",
        &["pageInfo", "edges", "nodes", "totalCount"],
    ),
    ("ModelEdge", &["node", "cursor"]),
    (
        "ModelVersionConnection",
        &["pageInfo", "edges", "nodes", "totalCount"],
    ),
    ("ModelVersionEdge", &["node", "cursor"]),
    (
        "ProjectConnection",
        &["pageInfo", "edges", "nodes", "totalCount"],
    ),
    ("ProjectEdge", &["node", "cursor"]),
    (
        "OrganizationConnection",
        &["pageInfo", "edges", "nodes", "totalCount"],
    ),
    ("OrganizationEdge", &["node", "cursor"]),
    (
        "Model",
        &[
            "id",
            "name",
            "slug",
            "description",
            "longDescription",
            "productType",
            "provider",
            "environment",
            "riskClassification",
            "lifecycleStage",
            "modelFamily",
            "modelTaskType",
            "modelArchitecture",
            "framework",
            "intendedUse",
            "limitations",
            "deploymentStatus",
            "servingUrl",
            "inputSchema",
            "outputSchema",
            "aiSystemType",
            "vendorName",
            "vendorProductName",
            "vendorModelId",
            "deploymentEnvironment",
            "businessUseCase",
            "isGpai",
            "enabled",
            "archived",
            "status",
            "createdAt",
            "updatedAt",
            "project",
            "capabilities",
            "tags",
            "shared",
            "catalogRole",
            "featured",
            "sharedAt",
            "deploymentCount",
            "versionCount",
            "currentVersion",
            "latestPublishedVersion",
            "versions",
            "version",
        ],
    ),
    ("Tag", &["key", "value"]),
    (
        "ModelVersion",
        &[
            "id",
            "version",
            "number",
            "description",
            "releaseDate",
            "trainingRunId",
            "metrics",
            "lifecycle",
            "publishedAt",
            "deprecatedAt",
            "createdAt",
            "updatedAt",
            "model",
        ],
    ),
    (
        "Project",
        &[
            "id",
            "slug",
            "name",
            "description",
            "createdAt",
            "updatedAt",
            "organization",
            "maxModels",
            "maxVersionsPerMonth",
        ],
    ),
    (
        "Organization",
        &["id", "slug", "name", "createdAt", "updatedAt", "projects"],
    ),
];

fn listed(on: &str, field: &str) -> bool {
    CACHEABLE
        .iter()
        .any(|(ty, fields)| *ty == on && fields.contains(&field))
}

/// Whether every operation of `document` is a query of cacheable fields only. Introspection
/// (`__schema`, `__type`) is the schema's, fixed for the life of the process: cacheable.
pub(super) fn cacheable(registry: &Registry, document: &ExecutableDocument) -> bool {
    let mut fragments = HashMap::new();
    document.operations.iter().all(|(_, operation)| {
        operation.node.ty == OperationType::Query
            && set_cacheable(
                registry,
                document,
                &operation.node.selection_set.node,
                &registry.query_type,
                &mut fragments,
            )
    })
}

/// A named fragment's verdict: a fragment is walked once however often it is spread, and a
/// fragment met again while it is being walked (a cycle, which validation refuses) is not
/// cacheable.
#[derive(Clone, Copy)]
enum Walk {
    Walking,
    Done(bool),
}

fn set_cacheable<'a>(
    registry: &Registry,
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    on: &str,
    fragments: &mut HashMap<&'a str, Walk>,
) -> bool {
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => {
            let name = field.node.name.node.as_str();
            match name {
                "__typename" => true,
                "__schema" | "__type" => on == registry.query_type,
                _ => {
                    let Some(meta) = registry.types.get(on).and_then(|t| t.field_by_name(name))
                    else {
                        return false;
                    };
                    listed(on, name)
                        && set_cacheable(
                            registry,
                            document,
                            &field.node.selection_set.node,
                            named_type(&meta.ty),
                            fragments,
                        )
                }
            }
        }
        Selection::InlineFragment(fragment) => {
            let on = fragment
                .node
                .type_condition
                .as_ref()
                .map_or(on, |c| c.node.on.node.as_str());
            set_cacheable(
                registry,
                document,
                &fragment.node.selection_set.node,
                on,
                fragments,
            )
        }
        Selection::FragmentSpread(spread) => {
            let name = spread.node.fragment_name.node.as_str();
            match fragments.get(name) {
                Some(Walk::Done(verdict)) => *verdict,
                Some(Walk::Walking) => false,
                None => {
                    let Some((key, fragment)) = document.fragments.get_key_value(name) else {
                        return false;
                    };
                    fragments.insert(key.as_str(), Walk::Walking);
                    let verdict = set_cacheable(
                        registry,
                        document,
                        &fragment.node.selection_set.node,
                        fragment.node.type_condition.node.on.node.as_str(),
                        fragments,
                    );
                    fragments.insert(key.as_str(), Walk::Done(verdict));
                    verdict
                }
            }
        }
    })
}

/// What the pipeline found the request's document to be, for the handler to keep or not
/// keep its answer. Attached to a request as data; unset when the text never parsed.
#[derive(Clone, Default)]
pub struct Verdict(Arc<AtomicU8>);

// 0: not judged (the text did not parse, or failed the guard).
const YES: u8 = 1;
const NO: u8 = 2;

impl Verdict {
    pub(super) fn set(&self, cacheable: bool) {
        self.0
            .store(if cacheable { YES } else { NO }, Ordering::Relaxed);
    }

    fn get(&self) -> Option<bool> {
        match self.0.load(Ordering::Relaxed) {
            YES => Some(true),
            NO => Some(false),
            _ => None,
        }
    }
}

/// Everything an answer depends on besides the registry's state.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    key: Id,
    role: Role,
    scope: Scope,
    query: String,
    operation_name: Option<String>,
    variables: String,
}

impl Key {
    fn bytes(&self) -> usize {
        self.query.len()
            + self.variables.len()
            + self.operation_name.as_ref().map_or(0, String::len)
    }
}

struct Entry {
    changes: i64,
    body: Bytes,
}

/// What an entry costs besides its key's text and its body: the key (one allocation, shared
/// by the map and the queue), the body's handle and the bookkeeping of both, rounded up.
const ENTRY_OVERHEAD: usize = 512;

/// Query texts remembered as uncacheable, at most; forgotten all at once beyond it.
const MAX_VERDICTS: usize = 10_000;

#[derive(Default)]
struct Entries {
    budget: usize,
    used: usize,
    answers: HashMap<Arc<Key>, Entry>,
    /// Keys by age, oldest first.
    order: VecDeque<Arc<Key>>,
    /// Texts whose documents were found uncacheable, by a hash of the text: a collision
    /// only makes a cacheable text skip the cache, or an uncacheable one read the sum.
    uncacheable: HashSet<u64>,
    hasher: RandomState,
    /// The last sum read. The sum only grows unless the database went back (a restore, or the
    /// migration run down and up): then every entry goes, since a sum it was stored under may
    /// come round again over other data. Two reads racing a write also arrive out of order
    /// now and then, and empty the cache just the same; that costs one execution per entry,
    /// and while writes are coming in the entries are outdated anyway.
    last: i64,
}

impl Entries {
    fn cost(key: &Key, body: &Bytes) -> usize {
        key.bytes() + body.len() + ENTRY_OVERHEAD
    }

    fn observe(&mut self, changes: i64) {
        if changes < self.last {
            self.answers.clear();
            self.order.clear();
            self.used = 0;
        }
        self.last = changes;
    }

    fn insert(&mut self, key: Key, changes: i64, body: Bytes) {
        let cost = Self::cost(&key, &body);
        if cost > self.budget {
            return;
        }
        if let Some(entry) = self.answers.get_mut(&key) {
            // A slower request that read an older sum does not replace a newer answer.
            if entry.changes <= changes {
                self.used = self.used + body.len() - entry.body.len();
                *entry = Entry { changes, body };
            }
        } else {
            let key = Arc::new(key);
            self.used += cost;
            self.order.push_back(key.clone());
            self.answers.insert(key, Entry { changes, body });
        }
        while self.used > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(entry) = self.answers.remove(&oldest) {
                self.used -= Self::cost(&oldest, &entry.body);
            }
        }
    }
}

/// This replica's cache, shared by its requests.
#[derive(Clone)]
pub struct ResponseCache {
    entries: Option<Arc<Mutex<Entries>>>,
}

/// What the cache says about a request.
pub enum Lookup {
    /// The answer's body, as execution would write it now.
    Hit(Bytes),
    /// Execute it, and give the answer to the probe.
    Miss(Probe),
    /// Execute it; the cache has nothing to do with it.
    Skip,
}

/// A request the cache may keep the answer of, once the pipeline has judged its document.
pub struct Probe {
    cache: ResponseCache,
    key: Key,
    changes: i64,
    text_hash: u64,
    verdict: Verdict,
}

impl ResponseCache {
    /// A cache of up to `budget` bytes; 0 turns it off.
    pub fn new(budget: usize) -> Self {
        ResponseCache {
            entries: (budget > 0).then(|| {
                Arc::new(Mutex::new(Entries {
                    budget,
                    ..Entries::default()
                }))
            }),
        }
    }

    /// The stored answer to `request` from `principal`, if the registry has not changed since
    /// it was computed. Requests that name a persisted query or carry extensions are left to
    /// the engine, which resolves them.
    pub async fn lookup(
        &self,
        db: &Db,
        principal: &Principal,
        request: &async_graphql::Request,
    ) -> Lookup {
        let lookup = self.consult(db, principal, request).await;
        let result = match lookup {
            Lookup::Hit(_) => "hit",
            Lookup::Miss(_) => "miss",
            Lookup::Skip => "skip",
        };
        metrics::counter!("mr_graphql_response_cache_total", "result" => result).increment(1);
        lookup
    }

    async fn consult(
        &self,
        db: &Db,
        principal: &Principal,
        request: &async_graphql::Request,
    ) -> Lookup {
        let Some(entries) = &self.entries else {
            return Lookup::Skip;
        };
        if request.query.is_empty() || !request.extensions.is_empty() {
            return Lookup::Skip;
        }
        let (text_hash, known_uncacheable) = match entries.lock() {
            Ok(entries) => {
                let hash = entries.hasher.hash_one(&request.query);
                (hash, entries.uncacheable.contains(&hash))
            }
            Err(_) => return Lookup::Skip,
        };
        if known_uncacheable {
            return Lookup::Skip;
        }
        let Ok(variables) = serde_json::to_string(&request.variables) else {
            return Lookup::Skip;
        };
        // Before anything of the answer is read: see the module's reasoning.
        let Ok(changes) = registry_changes(db).await else {
            return Lookup::Skip;
        };
        let key = Key {
            key: principal.key.id,
            role: principal.key.role,
            scope: principal.scope,
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables,
        };
        if let Ok(mut entries) = entries.lock() {
            entries.observe(changes);
            if let Some(entry) = entries.answers.get(&key)
                && entry.changes == changes
            {
                return Lookup::Hit(entry.body.clone());
            }
        }
        Lookup::Miss(Probe {
            cache: self.clone(),
            key,
            changes,
            text_hash,
            verdict: Verdict::default(),
        })
    }
}

impl Probe {
    /// What the pipeline fills in; attach it to the request.
    pub fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }

    /// Keeps `body` if the document was cacheable and the answer has no error.
    pub fn keep(self, body: &Bytes, without_errors: bool) {
        let Some(entries) = &self.cache.entries else {
            return;
        };
        let verdict = self.verdict.get();
        // A copy of exactly its length (the serializer's buffer may be up to twice that), made
        // before the lock is taken.
        let kept = (verdict == Some(true) && without_errors).then(|| Bytes::copy_from_slice(body));
        let Ok(mut entries) = entries.lock() else {
            return;
        };
        match (verdict, kept) {
            // A sum above the last one read: a smaller one came since (a restore), and this
            // answer may be of the data before it.
            (Some(true), Some(body)) if self.changes <= entries.last => {
                entries.insert(self.key, self.changes, body);
            }
            (Some(false), _) => {
                if entries.uncacheable.len() >= MAX_VERDICTS {
                    entries.uncacheable.clear();
                }
                entries.uncacheable.insert(self.text_hash);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The types of the schema the server serves, as the engine registers them.
    fn registry() -> Registry {
        use async_graphql::OutputType;
        let mut registry = Registry {
            query_type: "QueryRoot".into(),
            mutation_type: Some("MutationRoot".into()),
            ..Registry::default()
        };
        super::super::QueryRoot::create_type_info(&mut registry);
        super::super::MutationRoot::create_type_info(&mut registry);
        registry
    }

    fn verdict(query: &str) -> bool {
        let document = async_graphql::parser::parse_query(query).unwrap();
        cacheable(&registry(), &document)
    }

    #[test]
    fn only_queries_of_listed_fields_are_cacheable() {
        assert!(verdict(
            "{ models(first: 50) { edges { node { id name versions(first: 5) { edges { node { id number } } } project { slug organization { slug } } } } } }"
        ));
        assert!(verdict(
            "query A { model(id: \"x\") { ...M } } fragment M on Model { name tags { key value } currentVersion { ...V } latestPublishedVersion { ...V } } fragment V on ModelVersion { version model { name } }"
        ));
        assert!(verdict("{ __schema { types { name } } __typename }"));
        // A field that reads another table, at any depth, in a fragment or not.
        assert!(!verdict(
            "{ models { edges { node { name artifactCount } } } }"
        ));
        assert!(!verdict(
            "{ models { edges { node { ...F } } } } fragment F on Model { telemetry(window: {from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\"}) { sessionCount } }"
        ));
        assert!(!verdict(
            "{ modelVersion(id: \"x\") { ... on ModelVersion { downloadUrls { url } } } }"
        ));
        assert!(!verdict("{ viewer { role } }"));
        // Every operation of the document counts, mutations never are.
        assert!(!verdict(
            "query A { models { totalCount } } query B { viewer { role } }"
        ));
        assert!(!verdict(
            "mutation { createModel(input: {}) { model { id } } }"
        ));
        // A cycle, which validation refuses, and an unknown fragment.
        assert!(!verdict(
            "{ model(id: \"x\") { ...A } } fragment A on Model { ...A }"
        ));
        assert!(!verdict("{ model(id: \"x\") { ...Missing } }"));
    }

    #[test]
    fn every_listed_field_is_in_the_schema() {
        let registry = registry();
        for (ty, fields) in CACHEABLE {
            let meta = registry
                .types
                .get(*ty)
                .unwrap_or_else(|| panic!("type {ty}"));
            for field in *fields {
                assert!(meta.field_by_name(field).is_some(), "{ty}.{field}");
            }
        }
    }

    /// A viewer's key for the query `{ q<n> }`.
    fn key(n: u8) -> Key {
        Key {
            key: Id(uuid::Uuid::nil()),
            role: Role::Viewer,
            scope: Scope::Instance,
            query: format!("{{ q{n} }}"),
            operation_name: None,
            variables: "{}".into(),
        }
    }

    #[test]
    fn the_oldest_entries_leave_within_the_budget() {
        let body = Bytes::from(vec![b'x'; 1000]);
        let one = Entries::cost(&key(0), &body);
        let mut entries = Entries {
            budget: 3 * one,
            ..Entries::default()
        };
        for n in 0..5 {
            entries.insert(key(n), 1, body.clone());
        }
        assert!(entries.used <= entries.budget);
        assert!(!entries.answers.contains_key(&key(1)));
        assert!(entries.answers.contains_key(&key(4)));
        // An answer computed on an older sum does not replace a newer one.
        entries.insert(key(4), 0, Bytes::from_static(b"old"));
        assert_eq!(entries.answers[&key(4)].body.len(), 1000);
        // A sum smaller than one seen: the database went back, and every entry goes.
        entries.observe(5);
        entries.observe(4);
        assert!(entries.answers.is_empty() && entries.order.is_empty() && entries.used == 0);
    }

    #[test]
    fn an_answer_read_before_a_restore_is_not_kept() {
        let cache = ResponseCache::new(1 << 20);
        let probe = |changes: i64, n: u8| {
            let verdict = Verdict::default();
            verdict.set(true);
            Probe {
                cache: cache.clone(),
                key: key(n),
                changes,
                text_hash: 0,
                verdict,
            }
        };
        let body = Bytes::from_static(b"{}");
        let entries = cache.entries.clone().unwrap();
        entries.lock().unwrap().observe(9);
        // Read at 9 before a restore; the restored database answers 4 to the next request.
        let stale = probe(9, 1);
        entries.lock().unwrap().observe(4);
        stale.keep(&body, true);
        probe(4, 2).keep(&body, true);
        // An answer with errors is not kept either.
        probe(4, 3).keep(&body, false);
        let entries = entries.lock().unwrap();
        assert_eq!(entries.answers.len(), 1);
        assert!(entries.answers.keys().all(|k| k.query == "{ q2 }"));
    }
}
