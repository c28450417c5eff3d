//! Service tiers and endpoints: deployments of a model version, owned by the project that
//! created them.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::ContextExt;
use super::catalog::CatalogModelView;
use super::loaders::{ProjectKey, VersionKey};
use super::models::{ModelView, found};
use super::organizations::ProjectView;
use super::pagination::{self, Conn};
use super::versions::VersionView;
use crate::db::endpoints::{self as endpoint_rows, Endpoint, EndpointFilter};
use crate::db::model_versions::ModelVersion;
use crate::db::models as model_rows;
use crate::domain::catalog;
use crate::domain::endpoints::{self, NewEndpoint, Tier};
use crate::domain::models::visible_model;
use crate::domain::organizations::sees_project;
use crate::values::{ArtifactKind, BigInt, EndpointStatus, Id, Role, Timestamp};

pub struct ServiceTierView(pub Tier);

/// Where endpoints run: the built-in `self_hosted` tier (the deployer's own hardware) and the
/// instance's shared tiers.
#[Object(name = "ServiceTier")]
impl ServiceTierView {
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Any catalog model may run here; shared tiers take only models whose role is SHARED
    /// (or the owner's own).
    async fn self_hosted(&self) -> bool {
        self.0.self_hosted
    }
}

pub struct EndpointView(pub Endpoint);

impl From<Endpoint> for EndpointView {
    fn from(endpoint: Endpoint) -> Self {
        EndpointView(endpoint)
    }
}

/// A deployment of a model version on a service tier, owned by the project that created it.
#[Object(name = "Endpoint")]
impl EndpointView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    /// Unique in its project.
    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn status(&self) -> EndpointStatus {
        self.0.status
    }

    /// The tier's slug.
    async fn tier(&self) -> &str {
        &self.0.tier
    }

    /// Whether the tier was self-hosted when the endpoint was created.
    async fn self_hosted(&self) -> bool {
        self.0.self_hosted
    }

    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }

    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at
    }

    async fn project_id(&self) -> &Id {
        &self.0.project_id
    }

    /// The project that deployed it, when this key sees that project.
    async fn project(&self, ctx: &Context<'_>) -> Result<Option<ProjectView>> {
        let caller = ctx.caller()?;
        Ok(ctx
            .loader()
            .load_one(ProjectKey(self.0.project_id))
            .await?
            .filter(|p| caller.sees_project(p.into()))
            .map(ProjectView))
    }

    async fn model_id(&self) -> &Id {
        &self.0.model_id
    }

    /// The model, when this key sees the project that owns it; see `catalogModel` otherwise.
    async fn model(&self, ctx: &Context<'_>) -> Result<Option<ModelView>> {
        let model = visible_model(ctx.db(), ctx.caller()?, self.0.model_id, Role::Viewer).await;
        Ok(found(model)?.map(ModelView))
    }

    /// The model's catalog entry, while it is shared.
    async fn catalog_model(&self, ctx: &Context<'_>) -> Result<Option<CatalogModelView>> {
        let model = catalog::entry(ctx.db(), ctx.caller()?, self.0.model_id).await;
        Ok(found(model)?.map(CatalogModelView))
    }

    async fn model_version_id(&self) -> &Id {
        &self.0.model_version_id
    }

    /// The deployed version (always a published one when the endpoint was created).
    async fn model_version(&self) -> VersionLabel {
        VersionLabel {
            id: self.0.model_version_id,
        }
    }

    /// URLs that download the deployed version's files without a key until they expire: for
    /// the endpoint's own project, while the endpoint is ACTIVE, whoever owns the model.
    async fn download_urls(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 3600)] expires_in_seconds: i32,
    ) -> Result<Vec<EndpointFileUrl>> {
        let files = endpoints::download_urls(
            ctx.app(),
            ctx.caller()?,
            &self.0,
            expires_in_seconds,
            ctx.origin(),
        )
        .await?;
        Ok(files
            .into_iter()
            .map(|file| EndpointFileUrl {
                artifact_id: file.artifact.id,
                file_name: file.artifact.file_name,
                kind: file.artifact.kind,
                format: file.artifact.format,
                size_bytes: file.artifact.size_bytes,
                sha256: file.artifact.sha256,
                url: file.url.url,
                expires_at: file.url.expires_at,
            })
            .collect())
    }
}

/// The version an endpoint serves, by what any deployer may know of it.
pub struct VersionLabel {
    id: Id,
}

impl VersionLabel {
    /// The version's row, read once per request however many of its fields are asked for.
    async fn row(&self, ctx: &Context<'_>) -> Result<Option<ModelVersion>> {
        Ok(ctx.loader().load_one(VersionKey(self.id)).await?)
    }
}

#[Object(name = "EndpointVersion")]
impl VersionLabel {
    async fn version_id(&self) -> &Id {
        &self.id
    }

    async fn version(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.row(ctx).await?.map(|v| v.version).unwrap_or_default())
    }

    async fn number(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(self.row(ctx).await?.map(|v| v.number).unwrap_or_default())
    }

    /// The whole version, when this key sees the model's project.
    async fn model_version(&self, ctx: &Context<'_>) -> Result<Option<VersionView>> {
        let Some(version) = self.row(ctx).await? else {
            return Ok(None);
        };
        let Some(model) = model_rows::find_live(ctx.db(), version.model_id).await? else {
            return Ok(None);
        };
        Ok(sees_project(ctx.db(), ctx.caller()?, model.project_id)
            .await?
            .then_some(VersionView(version)))
    }
}

/// One file of a deployment, with a URL that downloads it until `expiresAt`.
#[derive(SimpleObject)]
pub struct EndpointFileUrl {
    pub artifact_id: Id,
    pub file_name: String,
    pub kind: ArtifactKind,
    pub format: Option<String>,
    pub size_bytes: BigInt,
    pub sha256: String,
    pub url: String,
    pub expires_at: Timestamp,
}

/// Every field narrows the list.
#[derive(Debug, Default, InputObject)]
pub struct EndpointFilterInput {
    pub project_id: Option<Id>,
    pub model_id: Option<Id>,
    /// A tier's slug.
    pub tier: Option<String>,
    pub status: Option<EndpointStatus>,
}

impl From<EndpointFilterInput> for EndpointFilter {
    fn from(input: EndpointFilterInput) -> Self {
        EndpointFilter {
            project_id: input.project_id,
            model_id: input.model_id,
            tier: input.tier,
            status: input.status,
        }
    }
}

#[derive(Default)]
pub struct EndpointQuery;

#[Object]
impl EndpointQuery {
    /// The tiers of this instance, `self_hosted` first.
    async fn service_tiers(&self, ctx: &Context<'_>) -> Result<Vec<ServiceTierView>> {
        ctx.caller()?.require_role(Role::Viewer)?;
        Ok(endpoints::tiers(&ctx.app().config)
            .into_iter()
            .map(ServiceTierView)
            .collect())
    }

    /// An endpoint of one of this key's projects, or of a model they own.
    async fn endpoint(&self, ctx: &Context<'_>, id: Id) -> Result<EndpointView> {
        Ok(EndpointView(
            endpoints::visible_endpoint(ctx.db(), ctx.caller()?, id).await?,
        ))
    }

    /// Endpoints of this key's projects and of the models they own, newest first.
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
        let page = pagination::request(first, after, last, before)?;
        let filter = filter.map(EndpointFilter::from).unwrap_or_default();
        let result =
            endpoints::list(ctx.db(), ctx.caller()?, &filter, &page, ctx.wants_total()).await?;
        Ok(pagination::connection(result, endpoint_rows::cursor))
    }
}

#[derive(InputObject)]
pub struct CreateEndpointInput {
    /// The project that runs the endpoint (EDITOR); it need not own the model.
    pub project_id: Id,
    pub model_id: Id,
    /// A published version of the model; default: its current version when published, else
    /// its newest published one.
    pub model_version_id: Option<Id>,
    /// A tier's slug (`serviceTiers`).
    pub tier: String,
    /// Unique in the project.
    pub name: String,
}

#[derive(InputObject)]
pub struct EndpointIdInput {
    pub id: Id,
}

#[derive(SimpleObject)]
pub struct EndpointPayload {
    endpoint: EndpointView,
}

#[derive(SimpleObject)]
pub struct DeleteEndpointPayload {
    /// The endpoint as it was before it was deleted.
    endpoint: EndpointView,
}

#[derive(Default)]
pub struct EndpointMutation;

#[Object]
impl EndpointMutation {
    /// Deploys a model version on a tier. Another project's model must be shared, and on a
    /// shared tier its catalog role must be SHARED.
    async fn create_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateEndpointInput,
    ) -> Result<EndpointPayload> {
        let endpoint = endpoints::create(
            ctx.app(),
            ctx.caller()?,
            NewEndpoint {
                project_id: input.project_id,
                model_id: input.model_id,
                model_version_id: input.model_version_id,
                tier: input.tier,
                name: input.name,
            },
        )
        .await?;
        Ok(EndpointPayload {
            endpoint: EndpointView(endpoint),
        })
    }

    /// ACTIVE → STOPPED; stopping a stopped endpoint changes nothing.
    async fn stop_endpoint(
        &self,
        ctx: &Context<'_>,
        input: EndpointIdInput,
    ) -> Result<EndpointPayload> {
        let endpoint = endpoints::stop(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(EndpointPayload {
            endpoint: EndpointView(endpoint),
        })
    }

    /// STOPPED → ACTIVE, under the rules of a new deployment.
    async fn start_endpoint(
        &self,
        ctx: &Context<'_>,
        input: EndpointIdInput,
    ) -> Result<EndpointPayload> {
        let endpoint = endpoints::start(ctx.app(), ctx.caller()?, input.id).await?;
        Ok(EndpointPayload {
            endpoint: EndpointView(endpoint),
        })
    }

    async fn delete_endpoint(
        &self,
        ctx: &Context<'_>,
        input: EndpointIdInput,
    ) -> Result<DeleteEndpointPayload> {
        let endpoint = endpoints::delete(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(DeleteEndpointPayload {
            endpoint: EndpointView(endpoint),
        })
    }
}
