//! The GraphQL API: one schema, merged from one root per area. Resolvers parse, take the
//! caller from the context, call `domain` and map the result; they hold no rules.
//!
//! Rows reach the API wrapped in views (`ModelView(Model)`, …) that name each field they show:
//! a column added to a table stays out of the schema until a view shows it.

mod api_keys;
mod artifacts;
mod catalog;
mod endpoints;
mod errors;
mod guard;
pub mod loaders;
mod models;
mod nulls;
mod organizations;
mod pagination;
mod persisted;
mod pipeline;
pub mod response_cache;
mod telemetry;
mod uploads;
mod versions;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{Context, EmptySubscription, MergedObject, Schema};

use crate::app::App;
use crate::auth::Principal;
use crate::db::Db;
use crate::error::AppError;
use crate::graphql::loaders::RegistryLoader;

pub use guard::{
    MAX_DEPTH, MAX_FRAGMENTS, MAX_INLINED_FIELDS, MAX_INTROSPECTION_LISTS, MAX_NESTING,
    OperationName, ReadOnly,
};

/// Each field counts 1; a connection multiplies its children by its page size.
pub const MAX_COMPLEXITY: usize = 50_000;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    api_keys::ApiKeyQuery,
    organizations::OrganizationQuery,
    models::ModelQuery,
    versions::VersionQuery,
    artifacts::ArtifactQuery,
    uploads::UploadQuery,
    catalog::CatalogQuery,
    endpoints::EndpointQuery,
    telemetry::TelemetryQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    api_keys::ApiKeyMutation,
    organizations::OrganizationMutation,
    models::ModelMutation,
    versions::VersionMutation,
    artifacts::ArtifactMutation,
    uploads::UploadMutation,
    catalog::CatalogMutation,
    endpoints::EndpointMutation,
    telemetry::TelemetryMutation,
);

pub type RegistrySchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema the server serves and `print-schema` prints, keeping up to
/// `persisted_queries_bytes` of persisted query text. Request data (database, caller, loader)
/// is attached per request by [`request_data`]. Depth is limited by `guard`, which leaves
/// introspection out of it; the engine's own depth limit would count it.
pub fn build_schema(persisted_queries_bytes: usize) -> RegistrySchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_complexity(MAX_COMPLEXITY)
    .extension(pipeline::Pipeline::new(persisted_queries_bytes))
    .finish()
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(0).sdl()
}

/// The API's three-state field as the domain's [`Patch`](crate::values::Patch).
pub(crate) fn patch<T>(value: async_graphql::MaybeUndefined<T>) -> crate::values::Patch<T> {
    use crate::values::Patch;
    use async_graphql::MaybeUndefined;
    match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(v) => Patch::Set(v),
    }
}

/// A field the API cannot clear (non-null in the schema, so its null means absent) as a
/// [`Patch`](crate::values::Patch): absent keeps it.
pub(crate) fn given<T>(value: Option<T>) -> crate::values::Patch<T> {
    value.map_or(crate::values::Patch::Keep, crate::values::Patch::Set)
}

/// Who called: a key, or the reason there is none.
pub struct Caller(pub Result<Principal, AppError>);

/// Where clients reach this server, for the URLs resolvers hand out.
pub struct Origin(pub String);

pub fn request_data(
    request: async_graphql::Request,
    app: App,
    caller: Result<Principal, AppError>,
    origin: String,
) -> async_graphql::Request {
    let loader = crate::graphql::loaders::per_request(app.db.clone());
    request
        .data(app.db.clone())
        .data(app)
        .data(Caller(caller))
        .data(loader)
        .data(Origin(origin))
}

pub(crate) trait ContextExt {
    fn db(&self) -> &Db;
    fn app(&self) -> &App;
    fn origin(&self) -> &str;
    /// The caller of any field but the telemetry mutations: an INGEST key is refused.
    fn caller(&self) -> Result<&Principal, AppError>;
    /// The caller of the telemetry mutations: any key, INGEST included.
    fn sender(&self) -> Result<&Principal, AppError>;
    fn loader(&self) -> &DataLoader<RegistryLoader, HashMapCache>;
    /// Whether the client selected `totalCount` on the connection being resolved.
    fn wants_total(&self) -> bool;
}

impl ContextExt for Context<'_> {
    fn db(&self) -> &Db {
        self.data_unchecked::<Db>()
    }

    fn app(&self) -> &App {
        self.data_unchecked::<App>()
    }

    fn origin(&self) -> &str {
        &self.data_unchecked::<Origin>().0
    }

    fn caller(&self) -> Result<&Principal, AppError> {
        let caller = self.sender()?;
        caller.require_reader()?;
        Ok(caller)
    }

    fn sender(&self) -> Result<&Principal, AppError> {
        self.data_unchecked::<Caller>()
            .0
            .as_ref()
            .map_err(Clone::clone)
    }

    fn loader(&self) -> &DataLoader<RegistryLoader, HashMapCache> {
        self.data_unchecked::<DataLoader<RegistryLoader, HashMapCache>>()
    }

    fn wants_total(&self) -> bool {
        self.look_ahead().field("totalCount").exists()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_schema_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let sdl = super::sdl();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &sdl).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == sdl,
            "schema.graphql differs from the code: run `UPDATE_SCHEMA=1 cargo test --lib committed_schema` \
             (or `model-registry print-schema > schema.graphql`) and review the diff"
        );
    }
}
