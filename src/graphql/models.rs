use std::collections::HashMap;
use std::hash::Hash;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{
    Context, Enum, InputObject, Interface, MaybeUndefined, Object, Result, SimpleObject,
};

use super::api_keys::ApiKeyView;
use super::artifacts::{ArtifactView, PackageView};
use super::endpoints::{EndpointFilterInput, EndpointView};
use super::organizations::{OrganizationView, ProjectView};
use super::pagination::{self, Conn};
use super::uploads::UploadSessionView;
use super::versions::VersionView;
use super::{ContextExt, given, patch};
use crate::db::artifacts::ArtifactSet;
use crate::db::model_versions;
use crate::db::models::{FilterValues, Model, ModelFilter, ModelOrder, ModelOrderField};
use crate::db::page::{Page, PageRequest};
use crate::domain::models::{self, ModelFields, ModelUpdate, NewModel};
use crate::domain::{organizations, versions};
use crate::error::AppError;
use crate::graphql::loaders::{
    ArtifactCountKey, CurrentArtifactKey, LatestPublishedKey, NewestVersionsKey, OrganizationKey,
    ProjectKey, RegistryLoader, VersionCountKey, VersionKey,
};
use crate::values::{ArtifactKind, CatalogRole, ModelStatus, Patch};
use crate::values::{Id, JsonText, ModelFamily, ProductType, Timestamp};

pub struct ModelView(pub Model);

impl From<Model> for ModelView {
    fn from(model: Model) -> Self {
        ModelView(model)
    }
}

/// A registered model and its metadata. Deleted models keep their row with status `DELETED`
/// and `deleted_at` set; every lookup here skips them.
#[Object(name = "Model")]
impl ModelView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    /// Unique in the project; the handle for `modelByName` and the manifest.
    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn long_description(&self) -> Option<&str> {
        self.0.long_description.as_deref()
    }

    async fn product_type(&self) -> ProductType {
        self.0.product_type
    }

    async fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    async fn environment(&self) -> &str {
        &self.0.environment
    }

    async fn risk_classification(&self) -> Option<&str> {
        self.0.risk_classification.as_deref()
    }

    async fn lifecycle_stage(&self) -> Option<&str> {
        self.0.lifecycle_stage.as_deref()
    }

    async fn model_family(&self) -> Option<ModelFamily> {
        self.0.model_family
    }

    async fn model_task_type(&self) -> Option<&str> {
        self.0.model_task_type.as_deref()
    }

    async fn model_architecture(&self) -> Option<&str> {
        self.0.model_architecture.as_deref()
    }

    async fn framework(&self) -> Option<&str> {
        self.0.framework.as_deref()
    }

    async fn intended_use(&self) -> Option<&str> {
        self.0.intended_use.as_deref()
    }

    async fn limitations(&self) -> Option<&str> {
        self.0.limitations.as_deref()
    }

    async fn deployment_status(&self) -> &str {
        &self.0.deployment_status
    }

    async fn serving_url(&self) -> Option<&str> {
        self.0.serving_url.as_deref()
    }

    async fn input_schema(&self) -> Option<&JsonText> {
        self.0.input_schema.as_ref()
    }

    async fn output_schema(&self) -> Option<&JsonText> {
        self.0.output_schema.as_ref()
    }

    async fn ai_system_type(&self) -> Option<&str> {
        self.0.ai_system_type.as_deref()
    }

    async fn vendor_name(&self) -> Option<&str> {
        self.0.vendor_name.as_deref()
    }

    async fn vendor_product_name(&self) -> Option<&str> {
        self.0.vendor_product_name.as_deref()
    }

    async fn vendor_model_id(&self) -> Option<&str> {
        self.0.vendor_model_id.as_deref()
    }

    async fn deployment_environment(&self) -> Option<&str> {
        self.0.deployment_environment.as_deref()
    }

    async fn business_use_case(&self) -> Option<&str> {
        self.0.business_use_case.as_deref()
    }

    async fn is_gpai(&self) -> bool {
        self.0.is_gpai
    }

    /// False blocks new endpoints; running ones keep serving.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    async fn archived(&self) -> bool {
        self.0.archived
    }

    async fn status(&self) -> ModelStatus {
        self.0.status
    }

    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }

    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at
    }

    async fn project(&self, ctx: &Context<'_>) -> Result<ProjectView> {
        Ok(ctx
            .loader()
            .load_one(ProjectKey(self.0.project_id))
            .await?
            .map(ProjectView)
            .ok_or(AppError::NotFound("project"))?)
    }

    async fn capabilities(&self) -> Vec<String> {
        models::capabilities_of(&self.0)
    }

    /// Key/value labels, by key.
    async fn tags(&self) -> Vec<Tag> {
        models::tags_of(&self.0)
            .into_iter()
            .map(Tag::from)
            .collect()
    }

    /// In the catalog: every project of the instance may discover it and deploy it where its
    /// role allows.
    async fn shared(&self) -> bool {
        self.0.shared
    }

    /// Set while shared: `DEPLOYABLE` (other projects deploy it self-hosted only) or `SHARED`
    /// (every tier).
    async fn catalog_role(&self) -> Option<CatalogRole> {
        self.0.catalog_role
    }

    async fn featured(&self) -> bool {
        self.0.featured
    }

    async fn shared_at(&self) -> Option<Timestamp> {
        self.0.shared_at
    }

    /// ACTIVE endpoints of the model across all projects, shown while it is shared.
    async fn deployment_count(&self) -> Option<i64> {
        self.0.shared.then_some(self.0.deployment_count)
    }

    /// Endpoints that deploy this model, newest first: every project's, for a key that sees
    /// the model's own project.
    #[graphql(
        complexity = "first.or(last).unwrap_or(50).clamp(0, 1000) as usize * child_complexity"
    )]
    async fn endpoints(
        &self,
        ctx: &Context<'_>,
        filter: Option<EndpointFilterInput>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<EndpointView>> {
        super::catalog::model_endpoints(ctx, &self.0, filter, (first, after, last, before)).await
    }

    /// Inference sessions reported by devices in `window` (all versions, or `versionId`'s):
    /// counts, rates, latency and time-to-first-token percentiles, tokens, per version, in
    /// time buckets, and the fleet. A window without sessions answers zeros. Costed like a
    /// list in the complexity limit: it reads up to hundreds of summary rows.
    #[graphql(complexity = "100 + child_complexity")]
    async fn telemetry(
        &self,
        ctx: &Context<'_>,
        window: super::telemetry::TimeWindowInput,
        version_id: Option<Id>,
    ) -> Result<super::telemetry::InferenceTelemetryView> {
        super::telemetry::model_telemetry(ctx, self.0.id, window, version_id).await
    }

    /// Training updates per version that received any, newest version first.
    async fn training_stats(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::telemetry::VersionTrainingView>> {
        super::telemetry::model_training(ctx, self.0.id).await
    }

    async fn version_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(ctx
            .loader()
            .load_one(VersionCountKey(self.0.id))
            .await?
            .unwrap_or(0))
    }

    /// The version clients get when they ask for the model without naming one.
    async fn current_version(&self, ctx: &Context<'_>) -> Result<Option<VersionView>> {
        match self.0.current_version_id {
            Some(id) => Ok(ctx
                .loader()
                .load_one(VersionKey(id))
                .await?
                .map(VersionView)),
            None => Ok(None),
        }
    }

    /// The highest-numbered PUBLISHED version.
    async fn latest_published_version(&self, ctx: &Context<'_>) -> Result<Option<VersionView>> {
        Ok(ctx
            .loader()
            .load_one(LatestPublishedKey(self.0.id))
            .await?
            .flatten()
            .map(VersionView))
    }

    /// Newest (highest number) first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(50).clamp(0, 1000) as usize * child_complexity"
    )]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<VersionView>> {
        let page = pagination::request(first, after, last, before)?;
        let want_total = ctx.wants_total();
        let result = if let Some(limit) = batched_limit(&page) {
            let loader = ctx.loader();
            let rows = loader
                .load_one(NewestVersionsKey {
                    model: self.0.id,
                    limit,
                })
                .await?
                .unwrap_or_default();
            let total = if want_total {
                loader.load_one(VersionCountKey(self.0.id)).await?
            } else {
                None
            };
            page.finish(rows, total)
        } else {
            versions::list(ctx.db(), &self.0, &page, want_total).await?
        };
        Ok(pagination::connection(result, model_versions::cursor))
    }

    /// Available artifacts of every version (and of none), newest first.
    async fn artifacts(
        &self,
        ctx: &Context<'_>,
        kind: Option<ArtifactKind>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<ArtifactView>> {
        super::artifacts::artifact_list(
            ctx,
            ArtifactSet::Model(self.0.id),
            kind,
            (first, after, last, before),
        )
        .await
    }

    /// The version with this label, if the model has one.
    async fn version(&self, ctx: &Context<'_>, label: String) -> Result<Option<VersionView>> {
        Ok(model_versions::by_label(ctx.db(), self.0.id, label.trim())
            .await?
            .map(VersionView))
    }

    async fn artifact_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(ctx
            .loader()
            .load_one(ArtifactCountKey(self.0.id))
            .await?
            .unwrap_or(0))
    }

    /// The artifact marked current (at most one per model).
    async fn current_artifact(&self, ctx: &Context<'_>) -> Result<Option<ArtifactView>> {
        Ok(ctx
            .loader()
            .load_one(CurrentArtifactKey(self.0.id))
            .await?
            .map(ArtifactView))
    }
}

/// One filter object for `models(...)`; every field narrows the list.
#[derive(Debug, InputObject)]
#[graphql(name = "ModelFilter")]
pub struct ModelFilterInput {
    /// Only this project's models; absent: every project the key sees.
    pub project_id: Option<Id>,
    /// Case-insensitive substring of name, slug or description.
    pub q: Option<String>,
    pub model_family: Option<ModelFamily>,
    /// Any of these product types.
    pub product_types: Option<Vec<ProductType>>,
    pub deployment_status: Option<String>,
    pub model_task_type: Option<String>,
    pub risk_classification: Option<String>,
    pub framework: Option<String>,
    pub status: Option<ModelStatus>,
    /// Archived models are left out unless this is true.
    #[graphql(default = false)]
    pub include_archived: bool,
}

impl From<ModelFilterInput> for ModelFilter {
    fn from(input: ModelFilterInput) -> Self {
        ModelFilter {
            project_id: input.project_id,
            q: input.q,
            model_family: input.model_family,
            product_types: input.product_types,
            deployment_status: input.deployment_status,
            model_task_type: input.model_task_type,
            risk_classification: input.risk_classification,
            framework: input.framework,
            status: input.status,
            include_archived: input.include_archived,
            catalog: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "ModelOrderField")]
pub enum ModelOrderFieldInput {
    CreatedAt,
    UpdatedAt,
    Name,
}

impl From<ModelOrderFieldInput> for ModelOrderField {
    fn from(field: ModelOrderFieldInput) -> Self {
        match field {
            ModelOrderFieldInput::CreatedAt => ModelOrderField::CreatedAt,
            ModelOrderFieldInput::UpdatedAt => ModelOrderField::UpdatedAt,
            ModelOrderFieldInput::Name => ModelOrderField::Name,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "OrderDirection", remote = "crate::db::models::OrderDirection")]
pub enum OrderDirectionInput {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, InputObject)]
#[graphql(name = "ModelOrder")]
pub struct ModelOrderInput {
    pub field: ModelOrderFieldInput,
    pub direction: OrderDirectionInput,
}

impl From<ModelOrderInput> for ModelOrder {
    fn from(input: ModelOrderInput) -> Self {
        ModelOrder {
            field: input.field.into(),
            direction: input.direction.into(),
        }
    }
}

pub struct FilterValuesView(pub FilterValues);

/// The distinct values present in a project, for filter drop-downs.
#[Object(name = "ModelFilterValues")]
impl FilterValuesView {
    async fn frameworks(&self) -> &[String] {
        &self.0.frameworks
    }

    async fn capabilities(&self) -> &[String] {
        &self.0.capabilities
    }

    async fn model_families(&self) -> &[ModelFamily] {
        &self.0.model_families
    }

    async fn model_task_types(&self) -> &[String] {
        &self.0.model_task_types
    }
}

/// The first page of a model's versions is read for many models at once (a models list), with
/// the loader key's limit one past the page to tell whether more follow; cursors and backward
/// pages read one model's list directly. `None`: not batched.
fn batched_limit(page: &PageRequest) -> Option<i64> {
    (page.cursor.is_none() && !page.backward).then_some(page.limit + 1)
}

/// Loads what the selection asks of every model on a page, one statement per kind, and puts
/// the answers in the request's loader cache before the per-model resolvers run. The
/// DataLoader alone batches by a timer: a slow pass over a large page would split into several
/// statements, and every nested kind would wait for the timer.
async fn prefetch(ctx: &Context<'_>, page: &[Model]) -> Result<(), AppError> {
    if page.is_empty() {
        return Ok(());
    }
    let node = ctx.look_ahead().field("edges").field("node");
    let loader = ctx.loader();
    let ids = || page.iter().map(|m| m.id);
    let versions = node.field("versions");
    let counts = async {
        if node.field("versionCount").exists() || versions.field("totalCount").exists() {
            prefill(loader, ids().map(VersionCountKey)).await?;
        }
        Ok::<_, AppError>(())
    };
    let current = async {
        if node.field("currentVersion").exists() {
            prefill(
                loader,
                page.iter()
                    .filter_map(|m| m.current_version_id)
                    .map(VersionKey),
            )
            .await?;
        }
        Ok(())
    };
    let latest = async {
        if node.field("latestPublishedVersion").exists() {
            prefill(loader, ids().map(LatestPublishedKey)).await?;
        }
        Ok(())
    };
    let newest = async {
        // Each distinct batched page the selection asks for (aliases may differ), once.
        // Arguments the resolver will refuse are skipped here: it reports them.
        let mut limits = Vec::new();
        for field in versions.selection_fields() {
            let args = field.arguments().unwrap_or_default();
            let arg = |name: &str| {
                args.iter()
                    .find(|(n, _)| n.as_str() == name)
                    .map(|(_, v)| v.clone())
            };
            let int = |name: &str| match arg(name) {
                Some(async_graphql::Value::Number(n)) => {
                    n.as_i64().and_then(|n| i32::try_from(n).ok())
                }
                _ => None,
            };
            let text = |name: &str| match arg(name) {
                Some(async_graphql::Value::String(s)) => Some(s),
                _ => None,
            };
            let page =
                pagination::request(int("first"), text("after"), int("last"), text("before"));
            if let Some(limit) = page.ok().as_ref().and_then(batched_limit)
                && !limits.contains(&limit)
            {
                limits.push(limit);
            }
        }
        for limit in limits {
            prefill(
                loader,
                ids().map(|model| NewestVersionsKey { model, limit }),
            )
            .await?;
        }
        Ok(())
    };
    let projects = async {
        let project = node.field("project");
        if project.exists() {
            let found = prefill(loader, page.iter().map(|m| ProjectKey(m.project_id))).await?;
            if project.field("organization").exists() {
                prefill(
                    loader,
                    found.values().map(|p| OrganizationKey(p.organization_id)),
                )
                .await?;
            }
        }
        Ok(())
    };
    futures::try_join!(counts, current, latest, newest, projects)?;
    Ok(())
}

/// Runs one batch for `keys` now and caches the answers for this request.
async fn prefill<K>(
    loader: &DataLoader<RegistryLoader, HashMapCache>,
    keys: impl Iterator<Item = K>,
) -> Result<HashMap<K, <RegistryLoader as Loader<K>>::Value>, AppError>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    RegistryLoader: Loader<K, Error = AppError>,
{
    let mut keys: Vec<K> = keys.collect();
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let values = loader.loader().load(&keys).await?;
    loader.feed_many(values.clone()).await;
    Ok(values)
}

/// Anything with a global id. Values live for one request, so the variants' sizes matter little.
#[allow(clippy::large_enum_variant)]
#[derive(Interface)]
#[graphql(field(name = "id", ty = "&Id"))]
pub enum Node {
    Organization(OrganizationView),
    Project(ProjectView),
    ApiKey(ApiKeyView),
    Model(ModelView),
    ModelVersion(VersionView),
    Artifact(ArtifactView),
    ArtifactPackage(PackageView),
    UploadSession(UploadSessionView),
    Endpoint(EndpointView),
    Device(super::telemetry::DeviceView),
}

#[derive(Default)]
pub struct ModelQuery;

// One parameter per GraphQL argument: Relay lists take four besides their filters.
#[allow(clippy::too_many_arguments)]
#[Object]
impl ModelQuery {
    /// Models of every project this key sees, filtered and ordered (default: newest first).
    #[graphql(
        complexity = "first.or(last).unwrap_or(50).clamp(0, 1000) as usize * child_complexity"
    )]
    async fn models(
        &self,
        ctx: &Context<'_>,
        filter: Option<ModelFilterInput>,
        order_by: Option<ModelOrderInput>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<ModelView>> {
        let page = pagination::request(first, after, last, before)?;
        let filter = filter.map(ModelFilter::from).unwrap_or_default();
        let order = order_by.map(ModelOrder::from).unwrap_or_default();
        let result: Page<Model> = models::list(
            ctx.db(),
            ctx.caller()?,
            &filter,
            order,
            &page,
            ctx.wants_total(),
        )
        .await?;
        prefetch(ctx, &result.items).await?;
        Ok(pagination::connection(result, |m| order.cursor(m)))
    }

    async fn model(&self, ctx: &Context<'_>, id: Id) -> Result<ModelView> {
        let model =
            models::visible_model(ctx.db(), ctx.caller()?, id, crate::values::Role::Viewer).await?;
        Ok(ModelView(model))
    }

    /// Resolve by name: exact, case-sensitive `name` inside the project with slug `project`.
    async fn model_by_name(
        &self,
        ctx: &Context<'_>,
        project: String,
        name: String,
    ) -> Result<ModelView> {
        Ok(ModelView(
            models::by_name(ctx.db(), ctx.caller()?, &project, &name).await?,
        ))
    }

    /// The distinct frameworks, capabilities, families and task types of a project's models.
    async fn model_filter_values(
        &self,
        ctx: &Context<'_>,
        project_id: Id,
    ) -> Result<FilterValuesView> {
        Ok(FilterValuesView(
            models::filter_values(ctx.db(), ctx.caller()?, project_id).await?,
        ))
    }

    /// Any object by id, if this key can see it.
    async fn node(&self, ctx: &Context<'_>, id: Id) -> Result<Node> {
        use crate::domain::{artifacts, uploads};
        use crate::values::Role;
        let (db, app, caller) = (ctx.db(), ctx.app(), ctx.caller()?);
        if let Some(model) = found(models::visible_model(db, caller, id, Role::Viewer).await)? {
            return Ok(Node::Model(ModelView(model)));
        }
        if let Some((version, _)) =
            found(versions::visible_version(db, caller, id, Role::Viewer).await)?
        {
            return Ok(Node::ModelVersion(VersionView(version)));
        }
        if let Ok(project) = organizations::visible_project(db, caller, id).await {
            return Ok(Node::Project(ProjectView(project)));
        }
        if let Ok(org) = organizations::visible_organization(db, caller, id).await {
            return Ok(Node::Organization(OrganizationView(org)));
        }
        if let Some(key) = crate::domain::api_keys::list(db, caller)
            .await?
            .into_iter()
            .find(|k| k.id == id)
        {
            return Ok(Node::ApiKey(ApiKeyView(key)));
        }
        if let Some((artifact, _)) =
            found(artifacts::visible_artifact(app, caller, id, Role::Viewer).await)?
        {
            return Ok(Node::Artifact(ArtifactView(artifact)));
        }
        if let Some(package) =
            found(artifacts::visible_package(app, caller, id, Role::Viewer).await)?
        {
            return Ok(Node::ArtifactPackage(PackageView(package)));
        }
        if let Some((session, _)) =
            found(uploads::visible_session(app, caller, id, Role::Viewer).await)?
        {
            let state = uploads::state(app, session, ctx.origin()).await?;
            return Ok(Node::UploadSession(state.into()));
        }
        if let Some(endpoint) =
            found(crate::domain::endpoints::visible_endpoint(db, caller, id).await)?
        {
            return Ok(Node::Endpoint(EndpointView(endpoint)));
        }
        if let Some(device) =
            found(crate::domain::telemetry::devices::visible_device(app, caller, id).await)?
        {
            return Ok(Node::Device(super::telemetry::DeviceView(device)));
        }
        Err(AppError::NotFound("node").into())
    }
}

/// A lookup whose NOT_FOUND means "nothing here" (for `node(id:)`: try the next kind; for a
/// nullable link: null); any other error stays an error.
pub(super) fn found<T>(lookup: Result<T, AppError>) -> Result<Option<T>, AppError> {
    match lookup {
        Ok(value) => Ok(Some(value)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

#[derive(SimpleObject)]
pub struct CreateModelPayload {
    model: ModelView,
}

#[derive(SimpleObject)]
pub struct UpdateModelPayload {
    model: ModelView,
}

#[derive(InputObject)]
pub struct DeleteModelInput {
    id: Id,
}

#[derive(SimpleObject)]
pub struct DeleteModelPayload {
    /// The model as deleted: status DELETED, gone from every list and lookup.
    model: ModelView,
}

#[derive(Default)]
pub struct ModelMutation;

#[Object]
impl ModelMutation {
    async fn create_model(
        &self,
        ctx: &Context<'_>,
        input: CreateModelInput,
    ) -> Result<CreateModelPayload> {
        let model = models::create(ctx.db(), ctx.caller()?, input.into()).await?;
        Ok(CreateModelPayload {
            model: ModelView(model),
        })
    }

    async fn update_model(
        &self,
        ctx: &Context<'_>,
        input: UpdateModelInput,
    ) -> Result<UpdateModelPayload> {
        let model = models::update(ctx.db(), ctx.caller()?, input.into()).await?;
        Ok(UpdateModelPayload {
            model: ModelView(model),
        })
    }

    /// Deletes the model and its versions; its name can be registered again.
    async fn delete_model(
        &self,
        ctx: &Context<'_>,
        input: DeleteModelInput,
    ) -> Result<DeleteModelPayload> {
        let model = models::delete(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(DeleteModelPayload {
            model: ModelView(model),
        })
    }
}

/// A free key/value label on a model.
#[derive(Debug, Clone, PartialEq, InputObject, SimpleObject)]
#[graphql(input_name = "TagInput")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl From<models::Tag> for Tag {
    fn from(tag: models::Tag) -> Self {
        Tag {
            key: tag.key,
            value: tag.value,
        }
    }
}

impl From<Tag> for models::Tag {
    fn from(tag: Tag) -> Self {
        models::Tag {
            key: tag.key,
            value: tag.value,
        }
    }
}

fn tags_of_input(tags: Vec<Tag>) -> Vec<models::Tag> {
    tags.into_iter().map(Into::into).collect()
}

#[derive(Debug, InputObject)]
pub struct CreateModelInput {
    pub project_id: Id,
    /// Unique in the project.
    pub name: String,
    /// Derived from the name when absent.
    pub slug: Option<String>,
    pub description: Option<String>,
    pub long_description: Option<String>,
    /// Default `ML_MODEL`.
    pub product_type: Option<ProductType>,
    pub provider: Option<String>,
    /// Default `development`.
    pub environment: Option<String>,
    pub risk_classification: Option<String>,
    pub lifecycle_stage: Option<String>,
    pub model_family: Option<ModelFamily>,
    pub model_task_type: Option<String>,
    pub model_architecture: Option<String>,
    pub framework: Option<String>,
    pub intended_use: Option<String>,
    pub limitations: Option<String>,
    /// Default `development`.
    pub deployment_status: Option<String>,
    pub serving_url: Option<String>,
    /// A JSON Schema object.
    pub input_schema: Option<JsonText>,
    /// A JSON Schema object.
    pub output_schema: Option<JsonText>,
    pub ai_system_type: Option<String>,
    pub vendor_name: Option<String>,
    pub vendor_product_name: Option<String>,
    pub vendor_model_id: Option<String>,
    pub deployment_environment: Option<String>,
    pub business_use_case: Option<String>,
    pub is_gpai: Option<bool>,
    pub capabilities: Option<Vec<String>>,
    pub tags: Option<Vec<Tag>>,
    /// Default true.
    pub enabled: Option<bool>,
}

impl From<CreateModelInput> for NewModel {
    fn from(input: CreateModelInput) -> Self {
        NewModel {
            project_id: input.project_id,
            fields: ModelFields {
                name: Patch::Set(input.name),
                slug: given(input.slug),
                description: given(input.description),
                long_description: given(input.long_description),
                product_type: given(input.product_type),
                provider: given(input.provider),
                environment: given(input.environment),
                risk_classification: given(input.risk_classification),
                lifecycle_stage: given(input.lifecycle_stage),
                model_family: given(input.model_family),
                model_task_type: given(input.model_task_type),
                model_architecture: given(input.model_architecture),
                framework: given(input.framework),
                intended_use: given(input.intended_use),
                limitations: given(input.limitations),
                deployment_status: given(input.deployment_status),
                serving_url: given(input.serving_url),
                input_schema: given(input.input_schema),
                output_schema: given(input.output_schema),
                ai_system_type: given(input.ai_system_type),
                vendor_name: given(input.vendor_name),
                vendor_product_name: given(input.vendor_product_name),
                vendor_model_id: given(input.vendor_model_id),
                deployment_environment: given(input.deployment_environment),
                business_use_case: given(input.business_use_case),
                is_gpai: given(input.is_gpai),
                capabilities: given(input.capabilities),
                tags: given(input.tags).map(tags_of_input),
                enabled: given(input.enabled),
                archived: Patch::Keep,
            },
        }
    }
}

/// Only the fields given change. For nullable fields an explicit null clears the value;
/// for the others null is refused.
#[derive(Debug, InputObject)]
pub struct UpdateModelInput {
    pub id: Id,
    pub name: MaybeUndefined<String>,
    pub slug: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub long_description: MaybeUndefined<String>,
    pub product_type: MaybeUndefined<ProductType>,
    pub provider: MaybeUndefined<String>,
    pub environment: MaybeUndefined<String>,
    pub risk_classification: MaybeUndefined<String>,
    pub lifecycle_stage: MaybeUndefined<String>,
    pub model_family: MaybeUndefined<ModelFamily>,
    pub model_task_type: MaybeUndefined<String>,
    pub model_architecture: MaybeUndefined<String>,
    pub framework: MaybeUndefined<String>,
    pub intended_use: MaybeUndefined<String>,
    pub limitations: MaybeUndefined<String>,
    pub deployment_status: MaybeUndefined<String>,
    pub serving_url: MaybeUndefined<String>,
    pub input_schema: MaybeUndefined<JsonText>,
    pub output_schema: MaybeUndefined<JsonText>,
    pub ai_system_type: MaybeUndefined<String>,
    pub vendor_name: MaybeUndefined<String>,
    pub vendor_product_name: MaybeUndefined<String>,
    pub vendor_model_id: MaybeUndefined<String>,
    pub deployment_environment: MaybeUndefined<String>,
    pub business_use_case: MaybeUndefined<String>,
    pub is_gpai: MaybeUndefined<bool>,
    /// Replaces the whole list.
    pub capabilities: MaybeUndefined<Vec<String>>,
    /// Replaces every tag.
    pub tags: MaybeUndefined<Vec<Tag>>,
    /// False blocks new endpoints; running ones keep serving.
    pub enabled: MaybeUndefined<bool>,
    /// Archived models leave the default lists.
    pub archived: MaybeUndefined<bool>,
}

impl From<UpdateModelInput> for ModelUpdate {
    fn from(input: UpdateModelInput) -> Self {
        ModelUpdate {
            id: input.id,
            fields: ModelFields {
                name: patch(input.name),
                slug: patch(input.slug),
                description: patch(input.description),
                long_description: patch(input.long_description),
                product_type: patch(input.product_type),
                provider: patch(input.provider),
                environment: patch(input.environment),
                risk_classification: patch(input.risk_classification),
                lifecycle_stage: patch(input.lifecycle_stage),
                model_family: patch(input.model_family),
                model_task_type: patch(input.model_task_type),
                model_architecture: patch(input.model_architecture),
                framework: patch(input.framework),
                intended_use: patch(input.intended_use),
                limitations: patch(input.limitations),
                deployment_status: patch(input.deployment_status),
                serving_url: patch(input.serving_url),
                input_schema: patch(input.input_schema),
                output_schema: patch(input.output_schema),
                ai_system_type: patch(input.ai_system_type),
                vendor_name: patch(input.vendor_name),
                vendor_product_name: patch(input.vendor_product_name),
                vendor_model_id: patch(input.vendor_model_id),
                deployment_environment: patch(input.deployment_environment),
                business_use_case: patch(input.business_use_case),
                is_gpai: patch(input.is_gpai),
                capabilities: patch(input.capabilities),
                tags: patch(input.tags).map(tags_of_input),
                enabled: patch(input.enabled),
                archived: patch(input.archived),
            },
        }
    }
}
