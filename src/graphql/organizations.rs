use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject};

use super::ContextExt;
use super::pagination::{self, Conn};
use crate::db::organizations::Organization;
use crate::db::page::Cursor;
use crate::db::projects::Project;
use crate::domain::organizations::{self, NewOrganization, NewProject, QuotaChange};
use crate::error::AppError;
use crate::graphql::loaders::OrganizationKey;
use crate::values::{Id, Timestamp};

fn org_cursor(o: &Organization) -> Cursor {
    Cursor {
        key: o.slug.clone(),
        id: o.id,
    }
}

fn project_cursor(p: &Project) -> Cursor {
    Cursor {
        key: p.slug.clone(),
        id: p.id,
    }
}

pub struct OrganizationView(pub Organization);

impl From<Organization> for OrganizationView {
    fn from(org: Organization) -> Self {
        OrganizationView(org)
    }
}

/// A tenant: owns projects and organization-scoped keys.
#[Object(name = "Organization")]
impl OrganizationView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }

    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at
    }

    /// The organization's projects this key can see, by slug.
    async fn projects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<ProjectView>> {
        let page = pagination::request(first, after, last, before)?;
        let list = organizations::list_projects(ctx.db(), ctx.caller()?, Some(self.0.id)).await?;
        Ok(pagination::slice(list, &page, project_cursor))
    }
}

pub struct ProjectView(pub Project);

impl From<Project> for ProjectView {
    fn from(project: Project) -> Self {
        ProjectView(project)
    }
}

/// A space inside an organization: every model belongs to one.
#[Object(name = "Project")]
impl ProjectView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }

    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<OrganizationView> {
        Ok(ctx
            .loader()
            .load_one(OrganizationKey(self.0.organization_id))
            .await?
            .map(OrganizationView)
            .ok_or(AppError::NotFound("organization"))?)
    }

    /// Most live models; null: no limit.
    async fn max_models(&self) -> Option<i64> {
        self.0.max_models
    }

    /// Most versions created per calendar month (UTC); null: no limit.
    async fn max_versions_per_month(&self) -> Option<i64> {
        self.0.max_versions_per_month
    }
}

#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// Organizations this key can see, by slug.
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<OrganizationView>> {
        let page = pagination::request(first, after, last, before)?;
        let list = organizations::list_organizations(ctx.db(), ctx.caller()?).await?;
        Ok(pagination::slice(list, &page, org_cursor))
    }

    async fn organization(&self, ctx: &Context<'_>, slug: String) -> Result<OrganizationView> {
        Ok(
            organizations::organization_by_slug(ctx.db(), ctx.caller()?, &slug)
                .await?
                .map(OrganizationView)
                .ok_or(AppError::NotFound("organization"))?,
        )
    }

    /// Projects this key can see, optionally of one organization, by slug.
    async fn projects(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<Id>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<ProjectView>> {
        let page = pagination::request(first, after, last, before)?;
        let list = organizations::list_projects(ctx.db(), ctx.caller()?, organization_id).await?;
        Ok(pagination::slice(list, &page, project_cursor))
    }

    async fn project(&self, ctx: &Context<'_>, id: Id) -> Result<ProjectView> {
        Ok(ProjectView(
            organizations::visible_project(ctx.db(), ctx.caller()?, id).await?,
        ))
    }
}

#[derive(SimpleObject)]
pub struct CreateOrganizationPayload {
    organization: OrganizationView,
}

#[derive(SimpleObject)]
pub struct CreateProjectPayload {
    project: ProjectView,
}

#[derive(SimpleObject)]
pub struct UpdateProjectQuotasPayload {
    project: ProjectView,
}

#[derive(Default)]
pub struct OrganizationMutation;

#[Object]
impl OrganizationMutation {
    /// Instance admins only.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<CreateOrganizationPayload> {
        let organization =
            organizations::create_organization(ctx.db(), ctx.caller()?, input.into()).await?;
        Ok(CreateOrganizationPayload {
            organization: OrganizationView(organization),
        })
    }

    /// Organization (or instance) admins.
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> Result<CreateProjectPayload> {
        let project = organizations::create_project(ctx.db(), ctx.caller()?, input.into()).await?;
        Ok(CreateProjectPayload {
            project: ProjectView(project),
        })
    }

    /// Organization (or instance) admins: a project key cannot raise its own limits.
    async fn update_project_quotas(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectQuotasInput,
    ) -> Result<UpdateProjectQuotasPayload> {
        let project = organizations::update_quotas(ctx.db(), ctx.caller()?, input.into()).await?;
        Ok(UpdateProjectQuotasPayload {
            project: ProjectView(project),
        })
    }
}

#[derive(Debug, InputObject)]
pub struct CreateOrganizationInput {
    pub slug: String,
    pub name: String,
}

impl From<CreateOrganizationInput> for NewOrganization {
    fn from(input: CreateOrganizationInput) -> Self {
        NewOrganization {
            slug: input.slug,
            name: input.name,
        }
    }
}

#[derive(Debug, InputObject)]
pub struct CreateProjectInput {
    pub organization_id: Id,
    /// Unique across the instance: the namespace in `modelByName`.
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
}

impl From<CreateProjectInput> for NewProject {
    fn from(input: CreateProjectInput) -> Self {
        NewProject {
            organization_id: input.organization_id,
            slug: input.slug,
            name: input.name,
            description: input.description,
        }
    }
}

#[derive(Debug, InputObject)]
pub struct UpdateProjectQuotasInput {
    pub project_id: Id,
    /// Most live models the project may hold; null removes the limit, absent keeps it.
    pub max_models: MaybeUndefined<i32>,
    /// Most versions its models may create per calendar month (UTC).
    pub max_versions_per_month: MaybeUndefined<i32>,
}

impl From<UpdateProjectQuotasInput> for QuotaChange {
    fn from(input: UpdateProjectQuotasInput) -> Self {
        QuotaChange {
            project_id: input.project_id,
            max_models: super::patch(input.max_models),
            max_versions_per_month: super::patch(input.max_versions_per_month),
        }
    }
}
