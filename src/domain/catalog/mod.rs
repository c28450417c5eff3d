//! The catalog: models their owners shared with every project of the instance. Sharing shows
//! the manifest (names, versions, file names, sizes, digests); the bytes stay with the owner,
//! and only an endpoint lets another project fetch them.

pub mod revision;

use revision::check_catalog_key;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::app::{App, ManifestSnapshot};
use crate::auth::Principal;
use crate::db::artifacts::{Artifact, PackageRow};
use crate::db::catalog::{self, CatalogRows, SharedModel};
use crate::db::model_versions::ModelVersion;
use crate::db::models::{self, CatalogFilter, Model, ModelFilter, ModelOrder, Sharing};
use crate::db::page::{Page, PageRequest};
use crate::db::projects::ProjectSet;
use crate::db::{Db, organizations};
use crate::domain::models::{
    Tag, capabilities_of, tags_of, visible_model, visible_model_in_project,
};
use crate::domain::validate::{self, SHORT_TEXT_MAX};
use crate::error::AppError;
use crate::values::{ArtifactKind, ModelFamily, ProductType};
use crate::values::{CatalogRole, Id, JsonText, ModelStatus, Role, Timestamp};

/// Shares a READY or ACTIVE model: it enters the catalog as DEPLOYABLE. Sharing a shared model
/// changes nothing.
pub async fn share(db: &Db, caller: &Principal, id: Id) -> Result<Model, AppError> {
    let (_, project) = visible_model_in_project(db, caller, id, Role::Editor).await?;
    let now = Timestamp::now();
    db.transaction(async |tx| {
        let model = models::lock(tx, id).await?;
        if model.shared {
            return Ok(model);
        }
        if !matches!(model.status, ModelStatus::Ready | ModelStatus::Active) {
            return Err(AppError::precondition(format!(
                "model `{}` is {}: only a READY or ACTIVE model can be shared",
                model.name, model.status
            )));
        }
        catalog::bump(tx).await?;
        check_catalog_key(tx, project.organization_id, &model).await?;
        let sharing = Sharing {
            shared: true,
            catalog_role: Some(CatalogRole::Deployable),
            featured: false,
            shared_at: Some(now),
        };
        models::set_sharing(tx, id, &sharing, now).await
    })
    .await
}

/// Takes a model out of the catalog and removes its footprint (role, featured flag); endpoints
/// that run keep running. Unsharing a model that is not shared changes nothing; the flag says
/// whether it was shared.
pub async fn unshare(db: &Db, caller: &Principal, id: Id) -> Result<(Model, bool), AppError> {
    visible_model(db, caller, id, Role::Editor).await?;
    let now = Timestamp::now();
    db.transaction(async |tx| {
        let model = models::lock(tx, id).await?;
        if !model.shared {
            return Ok((model, false));
        }
        catalog::bump(tx).await?;
        let sharing = Sharing {
            shared: false,
            catalog_role: None,
            featured: false,
            shared_at: None,
        };
        Ok((models::set_sharing(tx, id, &sharing, now).await?, true))
    })
    .await
}

/// The featured flag is the instance's editorial choice: instance admins only, shared models
/// only.
pub async fn set_featured(
    db: &Db,
    caller: &Principal,
    id: Id,
    featured: bool,
) -> Result<Model, AppError> {
    caller.require_instance_admin()?;
    models::find_live(db, id)
        .await?
        .ok_or(AppError::NotFound("model"))?;
    let now = Timestamp::now();
    db.transaction(async |tx| {
        let model = models::lock(tx, id).await?;
        if !model.shared {
            return Err(AppError::precondition(format!(
                "model `{}` is not shared: only catalog models can be featured",
                model.name
            )));
        }
        if model.featured == featured {
            return Ok(model);
        }
        catalog::bump(tx).await?;
        let sharing = Sharing {
            featured,
            ..sharing_of(&model)
        };
        models::set_sharing(tx, id, &sharing, now).await
    })
    .await
}

fn sharing_of(model: &Model) -> Sharing {
    Sharing {
        shared: model.shared,
        catalog_role: model.catalog_role,
        featured: model.featured,
        shared_at: model.shared_at,
    }
}

/// What the catalog narrows by besides a model's own fields.
#[derive(Debug, Default)]
pub struct CatalogSelection {
    pub featured: Option<bool>,
    pub catalog_role: Option<CatalogRole>,
    /// An organization's slug.
    pub organization: Option<String>,
}

/// A page of the catalog: shared models of every organization, to any valid key.
pub async fn list(
    db: &Db,
    caller: &Principal,
    mut filter: ModelFilter,
    query: CatalogSelection,
    order: ModelOrder,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Model>, AppError> {
    caller.require_role(Role::Viewer)?;
    if let Some(q) = &filter.q {
        validate::bounded("filter.q", q, SHORT_TEXT_MAX)?;
    }
    let organization_id = match &query.organization {
        Some(slug) => match organizations::find_by_slug(db, slug).await? {
            Some(org) => Some(org.id),
            // Nothing of an organization that does not exist is shared.
            None => return Ok(page.finish(Vec::new(), count_total.then_some(0))),
        },
        None => None,
    };
    // Only public fields narrow the catalog: a model's project, status, deployment status, risk
    // class and archived flag are its owner's business, and filtering by them would reveal them.
    let private = [
        ("filter.model.projectId", filter.project_id.is_some()),
        ("filter.model.status", filter.status.is_some()),
        (
            "filter.model.deploymentStatus",
            filter.deployment_status.is_some(),
        ),
        (
            "filter.model.riskClassification",
            filter.risk_classification.is_some(),
        ),
        ("filter.model.includeArchived", filter.include_archived),
    ];
    if let Some((field, _)) = private.iter().find(|(_, given)| *given) {
        return Err(AppError::bad_input(
            *field,
            "not a catalog filter: the catalog shows a model's public fields only",
        ));
    }
    filter.catalog = Some(CatalogFilter {
        featured: query.featured,
        catalog_role: query.catalog_role,
        organization_id,
    });
    models::page(db, ProjectSet::All, &filter, order, page, count_total).await
}

/// A shared model by id, to any valid key; NOT_FOUND when it is not shared.
pub async fn entry(db: &Db, caller: &Principal, id: Id) -> Result<Model, AppError> {
    caller.require_role(Role::Viewer)?;
    match models::find_live(db, id).await? {
        Some(model) if model.shared && !model.archived => Ok(model),
        _ => Err(AppError::NotFound("catalog model")),
    }
}

/// What a model shows the whole instance when shared: descriptive fields only (no serving
/// URL, environment, vendor or business fields, no status).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicModel {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub long_description: Option<String>,
    pub product_type: ProductType,
    pub model_family: Option<ModelFamily>,
    pub model_task_type: Option<String>,
    pub model_architecture: Option<String>,
    pub framework: Option<String>,
    pub provider: Option<String>,
    pub intended_use: Option<String>,
    pub limitations: Option<String>,
    pub is_gpai: bool,
    pub capabilities: Vec<String>,
    pub tags: Vec<PublicTag>,
    pub input_schema: Option<JsonText>,
    pub output_schema: Option<JsonText>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicTag {
    pub key: String,
    pub value: String,
}

impl From<Tag> for PublicTag {
    fn from(tag: Tag) -> Self {
        PublicTag {
            key: tag.key,
            value: tag.value,
        }
    }
}

pub fn public_model(model: &Model) -> PublicModel {
    PublicModel {
        name: model.name.clone(),
        slug: model.slug.clone(),
        description: model.description.clone(),
        long_description: model.long_description.clone(),
        product_type: model.product_type,
        model_family: model.model_family,
        model_task_type: model.model_task_type.clone(),
        model_architecture: model.model_architecture.clone(),
        framework: model.framework.clone(),
        provider: model.provider.clone(),
        intended_use: model.intended_use.clone(),
        limitations: model.limitations.clone(),
        is_gpai: model.is_gpai,
        capabilities: capabilities_of(model),
        tags: tags_of(model).into_iter().map(PublicTag::from).collect(),
        input_schema: model.input_schema.clone(),
        output_schema: model.output_schema.clone(),
    }
}

/// One model of the manifest: who owns it, what it is, its newest published version.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    pub id: Id,
    pub organization: String,
    pub project: String,
    #[serde(flatten)]
    pub model: PublicModel,
    pub catalog_role: Option<CatalogRole>,
    pub featured: bool,
    pub shared_at: Option<String>,
    pub latest_version: Option<ManifestVersion>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestVersion {
    pub id: Id,
    pub version: String,
    pub number: i64,
    pub published_at: Option<String>,
    pub artifacts: Vec<ManifestFile>,
    pub packages: Vec<ManifestPackage>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub id: Id,
    pub file_name: String,
    pub kind: ArtifactKind,
    pub format: Option<String>,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestPackage {
    pub id: Id,
    pub format: String,
    /// The primary file's name; the others are its sidecars.
    pub primary: String,
    pub files: Vec<String>,
}

impl ManifestEntry {
    /// `<organization slug>/<model slug>`: the manifest's key and `resolveModel`'s name.
    pub fn key(&self) -> String {
        format!("{}/{}", self.organization, self.model.slug)
    }
}

/// A version's packages by file name (the primary and every member), from its packages and
/// its available files; a package whose primary is gone is left out.
pub fn package_summaries(packages: Vec<PackageRow>, files: &[Artifact]) -> Vec<ManifestPackage> {
    packages
        .into_iter()
        .filter_map(|package| {
            let members: Vec<&Artifact> = files
                .iter()
                .filter(|a| a.package_id == Some(package.id))
                .collect();
            let primary = members
                .iter()
                .find(|a| a.id == package.primary_artifact_id)?
                .file_name
                .clone();
            Some(ManifestPackage {
                id: package.id,
                format: package.format,
                primary,
                files: members.iter().map(|a| a.file_name.clone()).collect(),
            })
        })
        .collect()
}

/// Entries from the catalog's rows, in key order.
fn entries(rows: CatalogRows) -> Vec<ManifestEntry> {
    let mut latest: HashMap<Id, ModelVersion> = HashMap::new();
    for version in rows.versions {
        match latest.get(&version.model_id) {
            Some(held) if held.number >= version.number => {}
            _ => {
                latest.insert(version.model_id, version);
            }
        }
    }
    let chosen: HashMap<Id, Id> = latest.values().map(|v| (v.id, v.model_id)).collect();
    let mut files: HashMap<Id, Vec<Artifact>> = HashMap::new();
    for artifact in rows.artifacts {
        if let Some(version) = artifact.version_id.filter(|v| chosen.contains_key(v)) {
            files.entry(version).or_default().push(artifact);
        }
    }
    let mut packages: HashMap<Id, Vec<PackageRow>> = HashMap::new();
    for package in rows.packages {
        if chosen.contains_key(&package.version_id) {
            packages
                .entry(package.version_id)
                .or_default()
                .push(package);
        }
    }
    rows.models
        .into_iter()
        .map(|shared| {
            let SharedModel {
                model,
                organization_slug,
                project_slug,
            } = shared;
            let latest_version = latest.remove(&model.id).map(|version| {
                let artifacts = files.remove(&version.id).unwrap_or_default();
                let packages =
                    package_summaries(packages.remove(&version.id).unwrap_or_default(), &artifacts);
                ManifestVersion {
                    id: version.id,
                    version: version.version,
                    number: version.number,
                    published_at: version.published_at.map(|t| t.rfc3339()),
                    artifacts: artifacts
                        .into_iter()
                        .map(|a| ManifestFile {
                            id: a.id,
                            file_name: a.file_name,
                            kind: a.kind,
                            format: a.format,
                            content_type: a.content_type,
                            size_bytes: a.size_bytes.0,
                            sha256: a.sha256,
                        })
                        .collect(),
                    packages,
                }
            });
            ManifestEntry {
                id: model.id,
                organization: organization_slug,
                project: project_slug,
                model: public_model(&model),
                catalog_role: model.catalog_role,
                featured: model.featured,
                shared_at: model.shared_at.map(|t| t.rfc3339()),
                latest_version,
            }
        })
        .collect()
}

/// The whole public manifest, from this replica's copy while the catalog's revision has not
/// moved; rebuilt once (not once per waiting request) when it has.
pub async fn manifest(app: &App) -> Result<Arc<ManifestSnapshot>, AppError> {
    let revision = catalog::revision(&app.db).await?;
    if let Some(held) = app.manifest.read().await.as_ref()
        && held.revision == revision
    {
        return Ok(held.clone());
    }
    let mut slot = app.manifest.write().await;
    if let Some(held) = slot.as_ref()
        && held.revision >= revision
    {
        return Ok(held.clone());
    }
    // The revision is read before the rows: a change committing in between makes the next
    // request rebuild again, never keeps a stale copy.
    let revision = catalog::revision(&app.db).await?;
    let rows = catalog::shared_models(&app.db, None).await?;
    let document: serde_json::Map<String, serde_json::Value> = entries(rows)
        .into_iter()
        .map(|entry| {
            let key = entry.key();
            serde_json::to_value(entry).map(|value| (key, value))
        })
        .collect::<Result<_, _>>()
        .map_err(AppError::internal)?;
    let body = serde_json::to_vec(&document).map_err(AppError::internal)?;
    let snapshot = Arc::new(ManifestSnapshot::new(revision, body).map_err(AppError::internal)?);
    *slot = Some(snapshot.clone());
    Ok(snapshot)
}

/// A shared model by `<organization>/<model slug>`, as the manifest keys it; NOT_FOUND unless
/// shared. Public (the manifest's per-model route has no key).
pub async fn resolve_public(db: &Db, name: &str) -> Result<Model, AppError> {
    let (organization, slug) = name.split_once('/').ok_or_else(|| {
        AppError::bad_input(
            "name",
            "expected `<organization>/<model>`, as the manifest keys it",
        )
    })?;
    catalog::find_shared(db, organization, slug)
        .await?
        .ok_or(AppError::NotFound("catalog model"))
}

/// [`resolve_public`] for a key holder (`resolveModel`).
pub async fn resolve(db: &Db, caller: &Principal, name: &str) -> Result<Model, AppError> {
    caller.require_role(Role::Viewer)?;
    resolve_public(db, name).await
}

/// The manifest entry of a shared model by id.
pub async fn entry_of(db: &Db, id: Id) -> Result<ManifestEntry, AppError> {
    entries(catalog::shared_models(db, Some(id)).await?)
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("catalog model"))
}
