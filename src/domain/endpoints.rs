//! Endpoints: a project deploys a model version on a service tier. The owner's project deploys
//! its models anywhere; another project deploys a shared model where its catalog role allows.
//! Every change takes the model's row lock and, in the same transaction, recomputes what the
//! endpoints decide: the model's status (ACTIVE while one serves), its deployment count and its
//! catalog role (promoted to SHARED by the owner on a shared tier, back to DEPLOYABLE when no
//! endpoint on a shared tier is active).

use std::time::Duration;

use crate::app::App;
use crate::auth::{Principal, ProjectRef};
use crate::config::{Config, SELF_HOSTED_TIER};
use crate::db::artifacts::{self, Artifact, ArtifactSet};
use crate::db::catalog;
use crate::db::endpoints::{self, Endpoint, EndpointFilter, EndpointScope};
use crate::db::model_versions::{self, ModelVersion};
use crate::db::models::{self, Model};
use crate::db::page::{Page, PageRequest};
use crate::db::projects::ProjectSet;
use crate::db::{Db, Tx};
use crate::domain::artifacts::{SignedUrl, server_signed_url, url_ttl};
use crate::domain::organizations::{sees_project, visible_project};
use crate::domain::validate;
use crate::error::AppError;
use crate::values::VersionLifecycle;
use crate::values::{CatalogRole, EndpointStatus, Id, ModelStatus, Role, Timestamp};

/// A tier endpoints run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub slug: String,
    pub name: String,
    /// The deployer's own hardware: any catalog model may run there.
    pub self_hosted: bool,
}

/// The built-in self-hosted tier, then the configured shared tiers (a slug given twice counts
/// once).
pub fn tiers(config: &Config) -> Vec<Tier> {
    let mut tiers = vec![Tier {
        slug: SELF_HOSTED_TIER.to_owned(),
        name: "Self-hosted".to_owned(),
        self_hosted: true,
    }];
    for tier in &config.service_tiers {
        if tiers.iter().all(|t| t.slug != tier.slug) {
            tiers.push(Tier {
                slug: tier.slug.clone(),
                name: tier.name.clone(),
                self_hosted: false,
            });
        }
    }
    tiers
}

fn tier(config: &Config, slug: &str) -> Result<Tier, AppError> {
    let all = tiers(config);
    all.iter().find(|t| t.slug == slug).cloned().ok_or_else(|| {
        let known: Vec<&str> = all.iter().map(|t| t.slug.as_str()).collect();
        AppError::bad_input(
            "tier",
            format!("no tier `{slug}`; this instance has {}", known.join(", ")),
        )
    })
}

pub struct NewEndpoint {
    pub project_id: Id,
    pub model_id: Id,
    pub model_version_id: Option<Id>,
    pub tier: String,
    pub name: String,
}

/// Who is deploying: the model's own project, or another one through the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deployer {
    Owner,
    Catalog,
}

/// The rules a new or restarted endpoint meets, checked on the model as it stands under its
/// lock. A model another project cannot see is NOT_FOUND to it; one it can see but may not
/// deploy is FORBIDDEN, naming the rule.
fn check_deployable(
    model: &Model,
    deployer: Deployer,
    tier: &Tier,
    sees_model: bool,
) -> Result<(), AppError> {
    if deployer == Deployer::Catalog && !model.shared {
        return Err(if sees_model {
            AppError::forbidden(format!(
                "model `{}` is not shared: only its own project may deploy it",
                model.name
            ))
        } else {
            AppError::NotFound("model")
        });
    }
    if !model.enabled {
        return Err(AppError::precondition(format!(
            "model `{}` is disabled: it takes no new endpoints (running ones keep serving)",
            model.name
        )));
    }
    if !matches!(model.status, ModelStatus::Ready | ModelStatus::Active) {
        return Err(AppError::precondition(format!(
            "model `{}` is {}: only a READY or ACTIVE model can be deployed",
            model.name, model.status
        )));
    }
    if deployer == Deployer::Catalog
        && !tier.self_hosted
        && model.catalog_role != Some(CatalogRole::Shared)
    {
        return Err(AppError::forbidden(format!(
            "model `{}` has the catalog role DEPLOYABLE: other projects may deploy it on the `{SELF_HOSTED_TIER}` tier only",
            model.name
        )));
    }
    Ok(())
}

/// The owner running its shared model on a shared tier promotes it to SHARED.
fn promotes(deployer: Deployer, tier: &Tier) -> bool {
    deployer == Deployer::Owner && !tier.self_hosted
}

/// The version a new endpoint serves: the one asked for, which must be published, or else the
/// model's current version if published, or else its newest published one.
async fn version_to_deploy(
    db: &Db,
    model: &Model,
    wanted: Option<Id>,
    deployer: Deployer,
) -> Result<ModelVersion, AppError> {
    if let Some(id) = wanted {
        let version = model_versions::find(db, id)
            .await?
            .filter(|v| v.model_id == model.id)
            .filter(|v| deployer == Deployer::Owner || v.lifecycle == VersionLifecycle::Published)
            .ok_or(AppError::NotFound("model version"))?;
        if version.lifecycle != VersionLifecycle::Published {
            return Err(AppError::precondition(format!(
                "version `{}` is {}: only a PUBLISHED version can be deployed",
                version.version, version.lifecycle
            )));
        }
        return Ok(version);
    }
    if let Some(current) = model.current_version_id
        && let Some(version) = model_versions::find(db, current).await?
        && version.lifecycle == VersionLifecycle::Published
    {
        return Ok(version);
    }
    model_versions::latest_published(db, model.id)
        .await?
        .ok_or_else(|| {
            AppError::precondition(format!(
                "model `{}` has no published version: publish one before deploying it",
                model.name
            ))
        })
}

pub async fn create(
    app: &App,
    caller: &Principal,
    input: NewEndpoint,
) -> Result<Endpoint, AppError> {
    let db = &app.db;
    let project = visible_project(db, caller, input.project_id).await?;
    caller.require(ProjectRef::from(&project), Role::Editor, "project")?;
    let name = validate::name("name", &input.name)?;
    validate::bounded("name", &name, validate::SHORT_TEXT_MAX)?;
    let tier = tier(&app.config, &input.tier)?;
    let (model, owner) = models::find_live_with_project(db, input.model_id)
        .await?
        .ok_or(AppError::NotFound("model"))?;
    let deployer = if model.project_id == project.id {
        Deployer::Owner
    } else {
        Deployer::Catalog
    };
    let sees_model = caller.sees_project(ProjectRef::from(&owner));
    check_deployable(&model, deployer, &tier, sees_model)?;
    let version = version_to_deploy(db, &model, input.model_version_id, deployer).await?;
    let now = Timestamp::now();
    let endpoint = Endpoint {
        id: Id::new(),
        project_id: project.id,
        model_id: model.id,
        model_version_id: version.id,
        name,
        tier: tier.slug.clone(),
        self_hosted: tier.self_hosted,
        status: EndpointStatus::Active,
        created_at: now,
        updated_at: now,
    };
    db.transaction(async |tx| {
        let model = models::lock(tx, endpoint.model_id).await?;
        check_deployable(&model, deployer, &tier, sees_model)?;
        // Deprecated since it was chosen: a new endpoint serves published versions only.
        let lifecycle = model_versions::lifecycle_of(tx, endpoint.model_version_id).await?;
        if lifecycle != VersionLifecycle::Published {
            return Err(AppError::precondition(format!(
                "version `{}` became {lifecycle}: only a PUBLISHED version can be deployed",
                version.version
            )));
        }
        if !endpoints::insert(tx, &endpoint).await? {
            return Err(AppError::conflict(format!(
                "project `{}` already has an endpoint named `{}`",
                project.slug, endpoint.name
            )));
        }
        settle(tx, &model, promotes(deployer, &tier), now).await?;
        Ok(())
    })
    .await?;
    Ok(endpoint)
}

/// An endpoint the caller may see: its own project's, or any endpoint of a model its project
/// owns. Otherwise NOT_FOUND.
pub async fn visible_endpoint(db: &Db, caller: &Principal, id: Id) -> Result<Endpoint, AppError> {
    caller.require_role(Role::Viewer)?;
    let endpoint = endpoints::find(db, id)
        .await?
        .ok_or(AppError::NotFound("endpoint"))?;
    if sees_project(db, caller, endpoint.project_id).await? {
        return Ok(endpoint);
    }
    match models::find_live_with_project(db, endpoint.model_id).await? {
        Some((_, owner)) if caller.sees_project(ProjectRef::from(&owner)) => Ok(endpoint),
        _ => Err(AppError::NotFound("endpoint")),
    }
}

/// An endpoint the caller may change: one of its own projects', with EDITOR.
async fn own_endpoint(db: &Db, caller: &Principal, id: Id) -> Result<Endpoint, AppError> {
    let endpoint = visible_endpoint(db, caller, id).await?;
    if !sees_project(db, caller, endpoint.project_id).await? {
        // The model's owner sees other projects' endpoints of its model but does not run them.
        return Err(AppError::forbidden(
            "this endpoint belongs to another project: only that project may change it",
        ));
    }
    caller.require_role(Role::Editor)?;
    Ok(endpoint)
}

pub async fn stop(db: &Db, caller: &Principal, id: Id) -> Result<Endpoint, AppError> {
    own_endpoint(db, caller, id).await?;
    let now = Timestamp::now();
    db.transaction(async |tx| {
        let (model, endpoint) = lock_endpoint(tx, id).await?;
        if endpoint.status == EndpointStatus::Stopped {
            return Ok(endpoint);
        }
        let endpoint = endpoints::set_status(tx, id, EndpointStatus::Stopped, now).await?;
        settle(tx, &model, false, now).await?;
        Ok(endpoint)
    })
    .await
}

/// Starts a stopped endpoint: a new deployment as far as the model's rules go (still enabled
/// and deployable, and for another project shared with a role that allows the tier). Its
/// version stays what it was: a version deprecated meanwhile keeps serving the endpoints that
/// pinned it.
pub async fn start(app: &App, caller: &Principal, id: Id) -> Result<Endpoint, AppError> {
    let db = &app.db;
    let endpoint = own_endpoint(db, caller, id).await?;
    let tier = Tier {
        slug: endpoint.tier.clone(),
        name: endpoint.tier.clone(),
        self_hosted: endpoint.self_hosted,
    };
    let model = models::find_live_with_project(db, endpoint.model_id).await?;
    let deployer = match &model {
        Some((model, _)) if model.project_id == endpoint.project_id => Deployer::Owner,
        _ => Deployer::Catalog,
    };
    let sees_model = model
        .as_ref()
        .is_some_and(|(_, owner)| caller.sees_project(ProjectRef::from(owner)));
    let now = Timestamp::now();
    db.transaction(async |tx| {
        let (model, endpoint) = lock_endpoint(tx, id).await?;
        if endpoint.status == EndpointStatus::Active {
            return Ok(endpoint);
        }
        check_deployable(&model, deployer, &tier, sees_model)?;
        let endpoint = endpoints::set_status(tx, id, EndpointStatus::Active, now).await?;
        settle(tx, &model, promotes(deployer, &tier), now).await?;
        Ok(endpoint)
    })
    .await
}

pub async fn delete(db: &Db, caller: &Principal, id: Id) -> Result<Endpoint, AppError> {
    own_endpoint(db, caller, id).await?;
    let now = Timestamp::now();
    db.transaction(async |tx| {
        let (model, endpoint) = lock_endpoint(tx, id).await?;
        endpoints::delete(tx, id).await?;
        settle(tx, &model, false, now).await?;
        Ok(endpoint)
    })
    .await
}

/// Locks the endpoint's model, then reads the endpoint as it stands.
async fn lock_endpoint(tx: &mut Tx<'_>, id: Id) -> Result<(Model, Endpoint), AppError> {
    let model_id = endpoints::get(tx, id)
        .await?
        .ok_or(AppError::NotFound("endpoint"))?
        .model_id;
    let model = models::lock(tx, model_id).await?;
    let endpoint = endpoints::get(tx, id)
        .await?
        .ok_or(AppError::NotFound("endpoint"))?;
    Ok((model, endpoint))
}

/// What the model's endpoints decide, recomputed from the endpoints themselves inside the
/// transaction that changed one (holding the model's lock): the status (READY ⇄ ACTIVE), the
/// deployment count, and the catalog role (`promote`: the owner started one on a shared tier).
async fn settle(
    tx: &mut Tx<'_>,
    model: &Model,
    promote: bool,
    now: Timestamp,
) -> Result<(), AppError> {
    let (active, hosted) = endpoints::active_counts(tx, model.id).await?;
    let status = match model.status {
        ModelStatus::Ready if active > 0 => ModelStatus::Active,
        ModelStatus::Active if active == 0 => ModelStatus::Ready,
        other => other,
    };
    if status != model.status {
        crate::domain::models::status_transition(model.status, status)?;
    }
    let role = match model.catalog_role {
        Some(_) if promote => Some(CatalogRole::Shared),
        Some(CatalogRole::Shared) if hosted == 0 => Some(CatalogRole::Deployable),
        other => other,
    };
    if role != model.catalog_role {
        catalog::bump(tx).await?;
    }
    if status != model.status || role != model.catalog_role || active != model.deployment_count {
        models::set_deployment(tx, model.id, status, role, active, now).await?;
    }
    Ok(())
}

/// Endpoints the caller sees (its projects' and every endpoint of models they own), newest
/// first.
pub async fn list(
    db: &Db,
    caller: &Principal,
    filter: &EndpointFilter,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Endpoint>, AppError> {
    caller.require_role(Role::Viewer)?;
    endpoints::page(
        db,
        EndpointScope(caller.visible_projects()),
        filter,
        page,
        count_total,
    )
    .await
}

/// A model's endpoints as the caller may see them: all of them when its key sees the model's
/// project, otherwise only its own projects'.
pub async fn of_model(
    db: &Db,
    caller: &Principal,
    model: &Model,
    filter: EndpointFilter,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Endpoint>, AppError> {
    let filter = EndpointFilter {
        model_id: Some(model.id),
        ..filter
    };
    let scope = if sees_project(db, caller, model.project_id).await? {
        EndpointScope(ProjectSet::All)
    } else {
        EndpointScope(caller.visible_projects())
    };
    endpoints::page(db, scope, &filter, page, count_total).await
}

/// One file of a deployment with a URL that downloads it until it expires.
pub struct DeployedFile {
    pub artifact: Artifact,
    pub url: SignedUrl,
}

/// Signed URLs for the files of the version an endpoint serves: for the endpoint's own project
/// (which need not own the model), while the endpoint is ACTIVE.
pub async fn download_urls(
    app: &App,
    caller: &Principal,
    endpoint: &Endpoint,
    expires_in_seconds: i32,
    origin: &str,
) -> Result<Vec<DeployedFile>, AppError> {
    let ttl: Duration = url_ttl(expires_in_seconds, app.config.max_signed_url_secs)?;
    if !sees_project(&app.db, caller, endpoint.project_id).await? {
        return Err(AppError::forbidden(
            "download URLs go to the endpoint's own project",
        ));
    }
    if endpoint.status != EndpointStatus::Active {
        return Err(AppError::precondition(format!(
            "endpoint `{}` is {}: start it to fetch its files",
            endpoint.name, endpoint.status
        )));
    }
    let files = artifacts::list(
        &app.db,
        ArtifactSet::Version(endpoint.model_version_id),
        None,
    )
    .await?;
    let mut out = Vec::with_capacity(files.len());
    for artifact in files {
        // This server's URL, never the storage's presigned one: it is checked again when
        // presented, so it stops working when the endpoint stops.
        let url = server_signed_url(app, caller, &artifact, ttl, origin);
        out.push(DeployedFile { artifact, url });
    }
    Ok(out)
}
