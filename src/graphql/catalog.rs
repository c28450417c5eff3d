//! The catalog: shared models as every project of the instance sees them (public fields,
//! published versions, file metadata; never download URLs or drafts), and sharing itself.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};

use super::ContextExt;
use super::endpoints::{EndpointFilterInput, EndpointView};
use super::loaders::{LatestPublishedKey, OrganizationKey, ProjectKey, VersionArtifactsKey};
use super::models::{ModelFilterInput, ModelView, OrderDirectionInput, Tag};
use super::pagination::{self, Conn};
use crate::db::artifacts::{self, Artifact};
use crate::db::endpoints::EndpointFilter;
use crate::db::model_versions::{self, ModelVersion};
use crate::db::models::{Model, ModelFilter, ModelOrder, ModelOrderField};
use crate::domain::catalog::CatalogSelection;
use crate::domain::{catalog, endpoints};
use crate::values::{ArtifactKind, BigInt, CatalogRole, Id, JsonText, Timestamp};
use crate::values::{ModelFamily, ProductType, VersionLifecycle};

pub struct CatalogModelView(pub Model);

impl From<Model> for CatalogModelView {
    fn from(model: Model) -> Self {
        CatalogModelView(model)
    }
}

/// A shared model as the whole instance sees it: what it is, who owns it, its published
/// versions and their files' metadata. The bytes stay with the owner; an endpoint of another
/// project fetches them (`Endpoint.downloadUrls`).
#[Object(name = "CatalogModel")]
impl CatalogModelView {
    /// The model's id (its `Model`, to a key of the owning project).
    async fn model_id(&self) -> &Id {
        &self.0.id
    }

    /// `<organization>/<model slug>`: its key in the manifest and the name `resolveModel`
    /// takes.
    async fn key(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(format!("{}/{}", self.organization(ctx).await?, self.0.slug))
    }

    /// The owning organization's slug.
    async fn organization(&self, ctx: &Context<'_>) -> Result<String> {
        let loader = ctx.loader();
        let project = loader.load_one(ProjectKey(self.0.project_id)).await?;
        let org = match project {
            Some(p) => loader.load_one(OrganizationKey(p.organization_id)).await?,
            None => None,
        };
        Ok(org.map(|o| o.slug).unwrap_or_default())
    }

    /// The owning project's slug.
    async fn project(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(ctx
            .loader()
            .load_one(ProjectKey(self.0.project_id))
            .await?
            .map(|p| p.slug)
            .unwrap_or_default())
    }

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

    async fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    async fn intended_use(&self) -> Option<&str> {
        self.0.intended_use.as_deref()
    }

    async fn limitations(&self) -> Option<&str> {
        self.0.limitations.as_deref()
    }

    async fn is_gpai(&self) -> bool {
        self.0.is_gpai
    }

    async fn capabilities(&self) -> Vec<String> {
        crate::domain::models::capabilities_of(&self.0)
    }

    async fn tags(&self) -> Vec<Tag> {
        crate::domain::models::tags_of(&self.0)
            .into_iter()
            .map(Tag::from)
            .collect()
    }

    async fn input_schema(&self) -> Option<&JsonText> {
        self.0.input_schema.as_ref()
    }

    async fn output_schema(&self) -> Option<&JsonText> {
        self.0.output_schema.as_ref()
    }

    async fn catalog_role(&self) -> Option<CatalogRole> {
        self.0.catalog_role
    }

    async fn featured(&self) -> bool {
        self.0.featured
    }

    async fn shared_at(&self) -> Option<Timestamp> {
        self.0.shared_at
    }

    /// ACTIVE endpoints of the model, across all projects.
    async fn deployment_count(&self) -> i64 {
        self.0.deployment_count
    }

    /// The highest-numbered PUBLISHED version: what the manifest lists.
    async fn latest_version(&self, ctx: &Context<'_>) -> Result<Option<CatalogVersionView>> {
        Ok(ctx
            .loader()
            .load_one(LatestPublishedKey(self.0.id))
            .await?
            .flatten()
            .map(CatalogVersionView))
    }

    /// The PUBLISHED versions, newest first.
    async fn versions(&self, ctx: &Context<'_>) -> Result<Vec<CatalogVersionView>> {
        Ok(
            model_versions::with_lifecycle(ctx.db(), self.0.id, VersionLifecycle::Published)
                .await?
                .into_iter()
                .map(CatalogVersionView)
                .collect(),
        )
    }

    /// The model's endpoints this key may see: its own projects' (all of them for the owner).
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
        model_endpoints(ctx, &self.0, filter, (first, after, last, before)).await
    }
}

/// `model.endpoints` and `catalogModel.endpoints`: one rule for who sees which.
pub(super) async fn model_endpoints(
    ctx: &Context<'_>,
    model: &Model,
    filter: Option<EndpointFilterInput>,
    (first, after, last, before): (Option<i32>, Option<String>, Option<i32>, Option<String>),
) -> Result<Conn<EndpointView>> {
    let page = pagination::request(first, after, last, before)?;
    let filter = filter.map(EndpointFilter::from).unwrap_or_default();
    let result = endpoints::of_model(
        ctx.db(),
        ctx.caller()?,
        model,
        filter,
        &page,
        ctx.wants_total(),
    )
    .await?;
    Ok(pagination::connection(result, crate::db::endpoints::cursor))
}

pub struct CatalogVersionView(pub ModelVersion);

/// A published version of a catalog model.
#[Object(name = "CatalogVersion")]
impl CatalogVersionView {
    /// The version's id (what `createEndpoint` takes as `modelVersionId`).
    async fn version_id(&self) -> &Id {
        &self.0.id
    }

    async fn version(&self) -> &str {
        &self.0.version
    }

    async fn number(&self) -> i64 {
        self.0.number
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn metrics(&self) -> Option<&JsonText> {
        self.0.metrics.as_ref()
    }

    async fn published_at(&self) -> Option<Timestamp> {
        self.0.published_at
    }

    /// The version's files: metadata only.
    async fn artifacts(&self, ctx: &Context<'_>) -> Result<Vec<CatalogFileView>> {
        Ok(ctx
            .loader()
            .load_one(VersionArtifactsKey(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(CatalogFileView)
            .collect())
    }

    /// Files that deploy together: a primary and its sidecars, by file name.
    async fn packages(&self, ctx: &Context<'_>) -> Result<Vec<CatalogPackage>> {
        let files = ctx
            .loader()
            .load_one(VersionArtifactsKey(self.0.id))
            .await?
            .unwrap_or_default();
        let packages = artifacts::packages_of_version(ctx.db(), self.0.id).await?;
        Ok(catalog::package_summaries(packages, &files)
            .into_iter()
            .map(|p| CatalogPackage {
                package_id: p.id,
                format: p.format,
                primary: p.primary,
                files: p.files,
            })
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct CatalogPackage {
    package_id: Id,
    format: String,
    /// The primary file's name.
    primary: String,
    /// Every member's file name, the primary included.
    files: Vec<String>,
}

pub struct CatalogFileView(pub Artifact);

/// A file of a catalog version: what it is and how to check it, never where it is.
#[Object(name = "CatalogFile")]
impl CatalogFileView {
    async fn artifact_id(&self) -> &Id {
        &self.0.id
    }

    async fn file_name(&self) -> &str {
        &self.0.file_name
    }

    async fn kind(&self) -> ArtifactKind {
        self.0.kind
    }

    async fn format(&self) -> Option<&str> {
        self.0.format.as_deref()
    }

    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    async fn size_bytes(&self) -> BigInt {
        self.0.size_bytes
    }

    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
}

/// The catalog's own filters, beside a model's.
#[derive(Default, InputObject)]
pub struct CatalogFilterInput {
    /// Name, slug, description, family, type, task, framework… as in `models`.
    pub model: Option<ModelFilterInput>,
    pub featured: Option<bool>,
    pub catalog_role: Option<CatalogRole>,
    /// An organization's slug.
    pub organization: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum CatalogOrderField {
    Name,
    /// When the model was shared.
    SharedAt,
    DeploymentCount,
}

#[derive(Debug, Clone, Copy, InputObject)]
pub struct CatalogOrder {
    pub field: CatalogOrderField,
    pub direction: OrderDirectionInput,
}

#[derive(Default)]
pub struct CatalogQuery;

// One parameter per GraphQL argument: Relay lists take four besides their filters.
#[allow(clippy::too_many_arguments)]
#[Object]
impl CatalogQuery {
    /// Every shared model of the instance, to any key (default order: newest share first).
    #[graphql(
        complexity = "first.or(last).unwrap_or(50).clamp(0, 1000) as usize * child_complexity"
    )]
    async fn catalog(
        &self,
        ctx: &Context<'_>,
        filter: Option<CatalogFilterInput>,
        order_by: Option<CatalogOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<CatalogModelView>> {
        let page = pagination::request(first, after, last, before)?;
        let filter = filter.unwrap_or_default();
        let order = order_by.map_or(
            ModelOrder {
                field: ModelOrderField::SharedAt,
                direction: crate::db::models::OrderDirection::Desc,
            },
            |o| ModelOrder {
                field: match o.field {
                    CatalogOrderField::Name => ModelOrderField::Name,
                    CatalogOrderField::SharedAt => ModelOrderField::SharedAt,
                    CatalogOrderField::DeploymentCount => ModelOrderField::DeploymentCount,
                },
                direction: o.direction.into(),
            },
        );
        let result = catalog::list(
            ctx.db(),
            ctx.caller()?,
            filter.model.map(ModelFilter::from).unwrap_or_default(),
            CatalogSelection {
                featured: filter.featured,
                catalog_role: filter.catalog_role,
                organization: filter.organization,
            },
            order,
            &page,
            ctx.wants_total(),
        )
        .await?;
        Ok(pagination::connection(result, |m| order.cursor(m)))
    }

    /// A shared model by id.
    async fn catalog_model(&self, ctx: &Context<'_>, id: Id) -> Result<CatalogModelView> {
        Ok(CatalogModelView(
            catalog::entry(ctx.db(), ctx.caller()?, id).await?,
        ))
    }

    /// A shared model by `<organization>/<model slug>`, as the manifest keys it.
    async fn resolve_model(&self, ctx: &Context<'_>, name: String) -> Result<CatalogModelView> {
        Ok(CatalogModelView(
            catalog::resolve(ctx.db(), ctx.caller()?, &name).await?,
        ))
    }
}

#[derive(InputObject)]
pub struct ShareModelInput {
    pub id: Id,
}

#[derive(SimpleObject)]
pub struct ShareModelPayload {
    model: ModelView,
    message: String,
}

#[derive(InputObject)]
pub struct SetModelFeaturedInput {
    pub id: Id,
    pub featured: bool,
}

#[derive(SimpleObject)]
pub struct SetModelFeaturedPayload {
    model: ModelView,
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    /// Puts a READY or ACTIVE model in the catalog with the role DEPLOYABLE (EDITOR of its
    /// project). Sharing a shared model changes nothing.
    async fn share_model(
        &self,
        ctx: &Context<'_>,
        input: ShareModelInput,
    ) -> Result<ShareModelPayload> {
        let model = catalog::share(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(ShareModelPayload {
            model: ModelView(model),
            message: "Model shared to catalog".to_owned(),
        })
    }

    /// Takes the model out of the catalog and the manifest; running endpoints keep running.
    /// Unsharing a model that is not shared changes nothing.
    async fn unshare_model(
        &self,
        ctx: &Context<'_>,
        input: ShareModelInput,
    ) -> Result<ShareModelPayload> {
        let (model, was_shared) = catalog::unshare(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(ShareModelPayload {
            model: ModelView(model),
            message: if was_shared {
                "Model removed from catalog"
            } else {
                "Model was not shared"
            }
            .to_owned(),
        })
    }

    /// Features a catalog model, or stops featuring it (instance ADMIN only).
    async fn set_model_featured(
        &self,
        ctx: &Context<'_>,
        input: SetModelFeaturedInput,
    ) -> Result<SetModelFeaturedPayload> {
        let model =
            catalog::set_featured(ctx.db(), ctx.caller()?, input.id, input.featured).await?;
        Ok(SetModelFeaturedPayload {
            model: ModelView(model),
        })
    }
}
