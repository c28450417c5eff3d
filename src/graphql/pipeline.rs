//! The engine's one extension: what every request goes through around the engine.
//!
//! 1. Before anything else, an automatic persisted query's text is filled in or its hash checked
//!    (`persisted`).
//! 2. Before parsing, the text and the variables are measured (`guard`); after it, the document
//!    (fragments, strings, depth and size, GET's read-only rule). A persisted text is kept only
//!    now that it has passed.
//!    When the handler asked (a [`Verdict`] in the request's data), the document is also judged
//!    cacheable or not (`response_cache`).
//! 3. After execution, failed fields are nulled as the specification has it (`nulls`).
//! 4. Every error gets its code (`errors`).
//!
//! One extension, not four: async-graphql runs each extension's `resolve` hook around every
//! field of the answer, a boxed future per field per extension, and a page of 50 models with
//! their versions is over 1,500 fields.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerResult, Variables};

use super::persisted::{Pending, PersistedQueries};
use super::response_cache::{self, Verdict};
use super::{errors, guard, nulls};

pub struct Pipeline {
    persisted: PersistedQueries,
}

impl Pipeline {
    /// The pipeline of one replica, keeping up to `persisted_queries_bytes` of persisted text.
    pub fn new(persisted_queries_bytes: usize) -> Self {
        Pipeline {
            persisted: PersistedQueries::new(persisted_queries_bytes),
        }
    }
}

impl ExtensionFactory for Pipeline {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestState {
            persisted: self.persisted.clone(),
            pending: Mutex::new(None),
            query: Mutex::new(None),
        })
    }
}

/// One per request.
struct RequestState {
    persisted: PersistedQueries,
    pending: Mutex<Option<Pending>>,
    /// The text: to name the argument an engine error points at, and to place nulls.
    query: Mutex<Option<String>>,
}

fn put<T>(slot: &Mutex<Option<T>>, value: T) {
    if let Ok(mut slot) = slot.lock() {
        *slot = Some(value);
    }
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().ok().and_then(|mut slot| slot.take())
}

#[async_trait::async_trait]
impl Extension for RequestState {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        errors::label_all(&mut response, &take(&self.query).unwrap_or_default());
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Some(pending) = self.persisted.prepare(&mut request)? {
            put(&self.pending, pending);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        put(&self.query, query.to_owned());
        guard::before_parse(query, variables)?;
        let document = next.run(ctx, query, variables).await?;
        guard::after_parse(&document, variables, ctx)?;
        if let Some(verdict) = ctx.data_opt::<Verdict>() {
            verdict.set(response_cache::cacheable(
                &ctx.schema_env.registry,
                &document,
            ));
        }
        if let Some(pending) = take(&self.pending) {
            self.persisted.keep(pending);
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        // Parsed again only when something failed: the text passed the guard already, and
        // most answers have no error to place.
        if !response.errors.is_empty() {
            let query = self.query.lock().ok().and_then(|q| q.clone());
            if let Some(query) = query
                && let Ok(document) = async_graphql::parser::parse_query(&query)
            {
                nulls::propagate(
                    &ctx.schema_env.registry,
                    &document,
                    operation_name,
                    &mut response,
                );
            }
        }
        response
    }
}
