//! Organizations, projects and their quotas.

use crate::auth::{Principal, ProjectRef};
use crate::db::Db;
use crate::db::organizations::{self, Organization};
use crate::db::projects::{self, Project, ProjectSet};
use crate::domain::validate;
use crate::error::AppError;
use crate::values::{Id, Patch, Timestamp};

pub struct NewOrganization {
    pub slug: String,
    pub name: String,
}

pub struct NewProject {
    pub organization_id: Id,
    /// Unique across the instance: the namespace in `modelByName`.
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
}

pub struct QuotaChange {
    pub project_id: Id,
    pub max_models: Patch<i32>,
    pub max_versions_per_month: Patch<i32>,
}

pub async fn create_organization(
    db: &Db,
    caller: &Principal,
    input: NewOrganization,
) -> Result<Organization, AppError> {
    caller.require_instance_admin()?;
    let now = Timestamp::now();
    let org = Organization {
        id: Id::new(),
        slug: validate::slug("slug", &input.slug)?,
        name: validate::name("name", &input.name)?,
        created_at: now,
        updated_at: now,
    };
    db.transaction(async |tx| organizations::insert(tx, &org).await)
        .await?;
    Ok(org)
}

/// An organization the caller can see, or NOT_FOUND.
pub async fn visible_organization(
    db: &Db,
    caller: &Principal,
    id: Id,
) -> Result<Organization, AppError> {
    match organizations::find(db, id).await? {
        Some(org) if caller.sees_organization(org.id) => Ok(org),
        _ => Err(AppError::NotFound("organization")),
    }
}

pub async fn organization_by_slug(
    db: &Db,
    caller: &Principal,
    slug: &str,
) -> Result<Option<Organization>, AppError> {
    Ok(organizations::find_by_slug(db, slug)
        .await?
        .filter(|o| caller.sees_organization(o.id)))
}

pub async fn list_organizations(
    db: &Db,
    caller: &Principal,
) -> Result<Vec<Organization>, AppError> {
    let only = match caller.scope {
        crate::auth::Scope::Instance => None,
        crate::auth::Scope::Organization(o)
        | crate::auth::Scope::Project {
            organization: o, ..
        } => Some(o),
    };
    organizations::list(db, only).await
}

pub async fn create_project(
    db: &Db,
    caller: &Principal,
    input: NewProject,
) -> Result<Project, AppError> {
    let org = visible_organization(db, caller, input.organization_id).await?;
    caller.require_organization_admin(org.id)?;
    let now = Timestamp::now();
    let project = Project {
        id: Id::new(),
        organization_id: org.id,
        slug: validate::slug("slug", &input.slug)?,
        name: validate::name("name", &input.name)?,
        description: validate::text("description", input.description, validate::DESCRIPTION_MAX)?,
        max_models: None,
        max_versions_per_month: None,
        created_at: now,
        updated_at: now,
    };
    db.transaction(async |tx| projects::insert(tx, &project).await)
        .await?;
    Ok(project)
}

/// A project the caller can see, or NOT_FOUND.
pub async fn visible_project(db: &Db, caller: &Principal, id: Id) -> Result<Project, AppError> {
    match projects::find(db, id).await? {
        Some(p) if caller.sees_project(ProjectRef::from(&p)) => Ok(p),
        _ => Err(AppError::NotFound("project")),
    }
}

/// Whether the caller's key sees the project: for the rules that differ by whether the caller
/// is inside a project (the owner of a model, the runner of an endpoint) rather than refuse.
pub async fn sees_project(db: &Db, caller: &Principal, id: Id) -> Result<bool, AppError> {
    Ok(projects::find(db, id)
        .await?
        .is_some_and(|p| caller.sees_project(ProjectRef::from(&p))))
}

pub async fn project_by_slug(db: &Db, caller: &Principal, slug: &str) -> Result<Project, AppError> {
    match projects::find_by_slug(db, slug).await? {
        Some(p) if caller.sees_project(ProjectRef::from(&p)) => Ok(p),
        _ => Err(AppError::NotFound("project")),
    }
}

pub async fn list_projects(
    db: &Db,
    caller: &Principal,
    organization: Option<Id>,
) -> Result<Vec<Project>, AppError> {
    let set = match (caller.visible_projects(), organization) {
        (ProjectSet::One(p), _) => ProjectSet::One(p),
        (_, Some(org)) if caller.sees_organization(org) => ProjectSet::Organization(org),
        (_, Some(_)) => return Ok(Vec::new()),
        (all, None) => all,
    };
    let mut list = projects::list(db, set).await?;
    if let Some(org) = organization {
        list.retain(|p| p.organization_id == org);
    }
    Ok(list)
}

fn quota(field: &str, value: Patch<i32>, current: Option<i64>) -> Result<Option<i64>, AppError> {
    match value {
        Patch::Keep => Ok(current),
        Patch::Clear => Ok(None),
        Patch::Set(n) if n < 0 => Err(AppError::bad_input(field, "must not be negative")),
        Patch::Set(n) => Ok(Some(i64::from(n))),
    }
}

pub async fn update_quotas(
    db: &Db,
    caller: &Principal,
    input: QuotaChange,
) -> Result<Project, AppError> {
    let project = visible_project(db, caller, input.project_id).await?;
    caller.require_organization_admin(project.organization_id)?;
    let max_models = quota("maxModels", input.max_models, project.max_models)?;
    let max_versions = quota(
        "maxVersionsPerMonth",
        input.max_versions_per_month,
        project.max_versions_per_month,
    )?;
    db.transaction(async |tx| projects::set_quotas(tx, project.id, max_models, max_versions).await)
        .await
}

/// `YYYY-MM` of a moment, UTC: the key of the monthly version counter.
pub fn month_of(t: Timestamp) -> String {
    t.0.format("%Y-%m").to_string()
}
