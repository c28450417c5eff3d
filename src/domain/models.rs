//! Registering, describing, listing and deleting models.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::auth::{Principal, ProjectRef};
use crate::db::artifacts::{self, ArtifactSet};
use crate::db::models::{self, FilterValues, Model, ModelChanges, ModelFilter, ModelOrder};
use crate::db::page::{Page, PageRequest};
use crate::db::projects::Project;
use crate::db::{Db, Tx, endpoints, model_versions, projects};
use crate::domain::catalog::revision as catalog;
use crate::domain::organizations::{project_by_slug, visible_project};
use crate::domain::validate::{self, DESCRIPTION_MAX, LONG_TEXT_MAX, SHORT_TEXT_MAX};
use crate::error::AppError;
use crate::values::{Id, JsonText, Patch, Timestamp};
use crate::values::{ModelFamily, ModelStatus, ProductType, Role};

pub const DEFAULT_ENVIRONMENT: &str = "development";
pub const DEFAULT_DEPLOYMENT_STATUS: &str = "development";
const TAG_KEY_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 1024;

/// A free key/value label on a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A model's describable fields, as a create or an update gives them. Creating starts from the
/// defaults, so `Keep` there means the default; clearing a field that cannot be empty is
/// refused naming it.
#[derive(Debug, Default)]
pub struct ModelFields {
    pub name: Patch<String>,
    pub slug: Patch<String>,
    pub description: Patch<String>,
    pub long_description: Patch<String>,
    pub product_type: Patch<ProductType>,
    pub provider: Patch<String>,
    pub environment: Patch<String>,
    pub risk_classification: Patch<String>,
    pub lifecycle_stage: Patch<String>,
    pub model_family: Patch<ModelFamily>,
    pub model_task_type: Patch<String>,
    pub model_architecture: Patch<String>,
    pub framework: Patch<String>,
    pub intended_use: Patch<String>,
    pub limitations: Patch<String>,
    pub deployment_status: Patch<String>,
    pub serving_url: Patch<String>,
    pub input_schema: Patch<JsonText>,
    pub output_schema: Patch<JsonText>,
    pub ai_system_type: Patch<String>,
    pub vendor_name: Patch<String>,
    pub vendor_product_name: Patch<String>,
    pub vendor_model_id: Patch<String>,
    pub deployment_environment: Patch<String>,
    pub business_use_case: Patch<String>,
    pub is_gpai: Patch<bool>,
    /// Replaces the whole list.
    pub capabilities: Patch<Vec<String>>,
    /// Replaces every tag.
    pub tags: Patch<Vec<Tag>>,
    pub enabled: Patch<bool>,
    pub archived: Patch<bool>,
}

/// A model to register: `name` is required, the slug is derived from it when not given.
#[derive(Debug)]
pub struct NewModel {
    pub project_id: Id,
    pub fields: ModelFields,
}

#[derive(Debug)]
pub struct ModelUpdate {
    pub id: Id,
    pub fields: ModelFields,
}

/// A column that cannot be empty: clearing it is refused.
fn required<T, U>(
    field: &str,
    value: Patch<T>,
    check: impl FnOnce(&str, T) -> Result<U, AppError>,
) -> Result<Option<U>, AppError> {
    match value {
        Patch::Keep => Ok(None),
        Patch::Clear => Err(AppError::bad_input(field, "cannot be cleared")),
        Patch::Set(v) => check(field, v).map(Some),
    }
}

/// A nullable column: clearing it stores null.
fn nullable<T, U>(
    field: &str,
    value: Patch<T>,
    check: impl FnOnce(&str, Option<T>) -> Result<Option<U>, AppError>,
) -> Result<Option<Option<U>>, AppError> {
    match value {
        Patch::Keep => Ok(None),
        Patch::Clear => Ok(Some(None)),
        Patch::Set(v) => check(field, Some(v)).map(Some),
    }
}

fn short(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    validate::text(field, value, SHORT_TEXT_MAX)
}

fn description(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    validate::text(field, value, DESCRIPTION_MAX)
}

fn as_given<T>(_: &str, value: T) -> Result<T, AppError> {
    Ok(value)
}

/// The one check of a model's fields, for create and update alike: the columns they change.
fn changes(fields: ModelFields) -> Result<ModelChanges, AppError> {
    Ok(ModelChanges {
        name: required("name", fields.name, |f, v| validate::name(f, &v))?,
        slug: required("slug", fields.slug, |f, v| validate::slug(f, &v))?,
        description: nullable("description", fields.description, description)?,
        long_description: nullable("longDescription", fields.long_description, |f, v| {
            validate::text(f, v, LONG_TEXT_MAX)
        })?,
        product_type: required("productType", fields.product_type, as_given)?,
        provider: nullable("provider", fields.provider, short)?,
        environment: required("environment", fields.environment, |f, v| {
            validate::name(f, &v)
        })?,
        risk_classification: nullable("riskClassification", fields.risk_classification, short)?,
        lifecycle_stage: nullable("lifecycleStage", fields.lifecycle_stage, short)?,
        model_family: nullable("modelFamily", fields.model_family, as_given)?,
        model_task_type: nullable("modelTaskType", fields.model_task_type, short)?,
        model_architecture: nullable("modelArchitecture", fields.model_architecture, short)?,
        framework: nullable("framework", fields.framework, short)?,
        intended_use: nullable("intendedUse", fields.intended_use, description)?,
        limitations: nullable("limitations", fields.limitations, description)?,
        deployment_status: required("deploymentStatus", fields.deployment_status, |f, v| {
            validate::name(f, &v)
        })?,
        serving_url: nullable("servingUrl", fields.serving_url, validate::url)?,
        input_schema: nullable("inputSchema", fields.input_schema, validate::json_schema)?,
        output_schema: nullable("outputSchema", fields.output_schema, validate::json_schema)?,
        ai_system_type: nullable("aiSystemType", fields.ai_system_type, short)?,
        vendor_name: nullable("vendorName", fields.vendor_name, short)?,
        vendor_product_name: nullable("vendorProductName", fields.vendor_product_name, short)?,
        vendor_model_id: nullable("vendorModelId", fields.vendor_model_id, short)?,
        deployment_environment: nullable(
            "deploymentEnvironment",
            fields.deployment_environment,
            short,
        )?,
        business_use_case: nullable("businessUseCase", fields.business_use_case, description)?,
        is_gpai: required("isGpai", fields.is_gpai, as_given)?,
        capabilities: required("capabilities", fields.capabilities, capabilities)?,
        tags: required("tags", fields.tags, tags)?,
        enabled: required("enabled", fields.enabled, as_given)?,
        archived: required("archived", fields.archived, as_given)?,
        updated_at: None,
    })
}

fn capabilities(field: &str, values: Vec<String>) -> Result<JsonText, AppError> {
    Ok(JsonText(serde_json::json!(validate::labels(
        field, values
    )?)))
}

fn tags(_: &str, values: Vec<Tag>) -> Result<JsonText, AppError> {
    if values.len() > validate::LIST_MAX {
        return Err(AppError::bad_input(
            "tags",
            format!("at most {} tags are allowed", validate::LIST_MAX),
        ));
    }
    let mut map = BTreeMap::new();
    for tag in values {
        let key = validate::name("tags.key", &tag.key)?;
        validate::bounded("tags.key", &key, TAG_KEY_MAX)?;
        validate::bounded("tags.value", &tag.value, TAG_VALUE_MAX)?;
        if map.insert(key.clone(), tag.value).is_some() {
            return Err(AppError::bad_input(
                "tags.key",
                format!("`{key}` is given twice"),
            ));
        }
    }
    Ok(JsonText(serde_json::json!(map)))
}

/// The tags stored on a model, in key order.
pub fn tags_of(model: &Model) -> Vec<Tag> {
    model
        .tags
        .0
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: v.as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn capabilities_of(model: &Model) -> Vec<String> {
    serde_json::from_value(model.capabilities.0.clone()).unwrap_or_default()
}

fn name_taken(name: &str) -> AppError {
    AppError::conflict(format!(
        "a model named `{name}` already exists in this project"
    ))
}

fn slug_taken(slug: &str) -> AppError {
    AppError::conflict(format!(
        "a model with slug `{slug}` already exists in this project; pass another `slug`"
    ))
}

/// The row a create inserts, from the caller's fields.
fn new_model(project_id: Id, fields: ModelFields) -> Result<Model, AppError> {
    let given = changes(fields)?;
    let name = given
        .name
        .ok_or_else(|| AppError::bad_input("name", "is required"))?;
    let slug = given.slug.unwrap_or_else(|| validate::slugify(&name));
    let now = Timestamp::now();
    Ok(Model {
        id: Id::new(),
        project_id,
        name,
        slug,
        description: given.description.flatten(),
        long_description: given.long_description.flatten(),
        product_type: given.product_type.unwrap_or(ProductType::MlModel),
        provider: given.provider.flatten(),
        environment: given
            .environment
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned()),
        risk_classification: given.risk_classification.flatten(),
        lifecycle_stage: given.lifecycle_stage.flatten(),
        model_family: given.model_family.flatten(),
        model_task_type: given.model_task_type.flatten(),
        model_architecture: given.model_architecture.flatten(),
        framework: given.framework.flatten(),
        intended_use: given.intended_use.flatten(),
        limitations: given.limitations.flatten(),
        deployment_status: given
            .deployment_status
            .unwrap_or_else(|| DEFAULT_DEPLOYMENT_STATUS.to_owned()),
        serving_url: given.serving_url.flatten(),
        input_schema: given.input_schema.flatten(),
        output_schema: given.output_schema.flatten(),
        ai_system_type: given.ai_system_type.flatten(),
        vendor_name: given.vendor_name.flatten(),
        vendor_product_name: given.vendor_product_name.flatten(),
        vendor_model_id: given.vendor_model_id.flatten(),
        deployment_environment: given.deployment_environment.flatten(),
        business_use_case: given.business_use_case.flatten(),
        is_gpai: given.is_gpai.unwrap_or(false),
        capabilities: given
            .capabilities
            .unwrap_or_else(|| JsonText(serde_json::json!([]))),
        tags: given
            .tags
            .unwrap_or_else(|| JsonText(serde_json::json!({}))),
        enabled: given.enabled.unwrap_or(true),
        archived: given.archived.unwrap_or(false),
        status: ModelStatus::Pending,
        current_version_id: None,
        next_version_number: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        shared: false,
        catalog_role: None,
        featured: false,
        shared_at: None,
        deployment_count: 0,
    })
}

pub async fn create(db: &Db, caller: &Principal, input: NewModel) -> Result<Model, AppError> {
    // Checked now, answered after the caller's access: one who may not see the project learns
    // nothing from its input.
    let built = new_model(input.project_id, input.fields);
    let names = built
        .as_ref()
        .ok()
        .map(|m| (m.name.clone(), m.slug.clone()));
    // One blocking call on SQLite (see `Db::bulk_transaction`): what it uses is moved in. The
    // project is read inside it, so the quota read is the one the create is counted against.
    let (project_id, caller) = (input.project_id, caller.clone());
    let refused = Arc::new(AtomicBool::new(false));
    let refusal = Arc::clone(&refused);
    let inserted = db
        .bulk_transaction(async move |tx| {
            let project = projects::find_shared(tx, project_id)
                .await?
                .ok_or(AppError::NotFound("project"))?;
            caller.require(ProjectRef::from(&project), Role::Editor, "project")?;
            let row = built?;
            // Checked against a locked project row: concurrent creates in one project are counted
            // against the quota one after another. Without a quota nothing is counted, and the
            // unique indexes alone settle a race for a name.
            if let Some(max) = project.max_models {
                projects::lock(tx, project.id).await?;
                if models::count_live(tx, project.id).await? >= max {
                    return Err(AppError::QuotaExceeded(format!(
                        "project `{}` allows at most {max} models",
                        project.slug
                    )));
                }
            }
            // A refused insert ends the transaction (PostgreSQL aborts it), so it is rolled
            // back through an error.
            if models::insert(tx, &row).await? {
                Ok(row)
            } else {
                refusal.store(true, Ordering::Relaxed);
                Err(name_taken(&row.name))
            }
        })
        .await;
    match inserted {
        Ok(model) => return Ok(model),
        Err(AppError::Conflict(_)) if refused.load(Ordering::Relaxed) => {}
        Err(e) => return Err(e),
    }
    let Some((name, slug)) = names else {
        return Err(AppError::conflict("name or slug already taken; try again"));
    };
    // A unique index refused the row: which of the two names is taken is looked up only now,
    // so a create that succeeds reads nothing first. Should the other model be gone by then,
    // the answer is still CONFLICT, naming neither.
    let clash = db
        .transaction(async |tx| models::clash(tx, project_id, Some(&name), Some(&slug), None).await)
        .await?;
    Err(match clash {
        Some((taken, _)) if taken == name => name_taken(&taken),
        Some(_) => slug_taken(&slug),
        None => AppError::conflict("name or slug already taken; try again"),
    })
}

/// A live model the caller may act on with `role`; another project's is NOT_FOUND.
pub async fn visible_model(
    db: &Db,
    caller: &Principal,
    id: Id,
    role: Role,
) -> Result<Model, AppError> {
    visible_model_in_project(db, caller, id, role)
        .await
        .map(|(model, _)| model)
}

/// [`visible_model`], with the model's project.
pub async fn visible_model_in_project(
    db: &Db,
    caller: &Principal,
    id: Id,
    role: Role,
) -> Result<(Model, Project), AppError> {
    let (model, project) = models::find_live_with_project(db, id)
        .await?
        .ok_or(AppError::NotFound("model"))?;
    caller.require(ProjectRef::from(&project), role, "model")?;
    Ok((model, project))
}

pub async fn by_name(
    db: &Db,
    caller: &Principal,
    project_slug: &str,
    name: &str,
) -> Result<Model, AppError> {
    let project = project_by_slug(db, caller, project_slug).await?;
    models::find_by_name(db, project.id, name)
        .await?
        .ok_or(AppError::NotFound("model"))
}

pub async fn update(db: &Db, caller: &Principal, input: ModelUpdate) -> Result<Model, AppError> {
    let model = visible_model(db, caller, input.id, Role::Editor).await?;
    let changes = ModelChanges {
        updated_at: Some(Timestamp::now()),
        ..changes(input.fields)?
    };
    db.transaction(async |tx| {
        let clash = models::clash(
            tx,
            model.project_id,
            changes.name.as_deref(),
            changes.slug.as_deref(),
            Some(model.id),
        )
        .await?;
        if let Some((name, _)) = clash {
            return Err(match &changes.name {
                Some(wanted) if *wanted == name => name_taken(&name),
                _ => slug_taken(changes.slug.as_deref().unwrap_or_default()),
            });
        }
        let updated = models::update(tx, model.id, &changes)
            .await?
            .ok_or_else(|| AppError::conflict("name or slug already taken"))?;
        catalog::model_changed(tx, &updated).await?;
        Ok(updated)
    })
    .await
}

/// Marks the model DELETED and removes its versions in one transaction; its name is free again.
pub async fn delete(db: &Db, caller: &Principal, id: Id) -> Result<Model, AppError> {
    let model = visible_model(db, caller, id, Role::Editor).await?;
    let now = Timestamp::now();
    db.transaction(async |tx| {
        // The row as it stands inside the transaction: its status is what the move starts from.
        let current = models::set_current_version(tx, model.id, None, now).await?;
        // Endpoints serve its published versions, possibly for other projects: they stop first.
        // Stopped ones go with the model's versions.
        let (active, _) = endpoints::active_counts(tx, model.id).await?;
        if active > 0 {
            return Err(AppError::precondition(format!(
                "model `{}` is served by {active} active endpoint(s); stop them before deleting it",
                model.name
            )));
        }
        artifacts::retire(tx, ArtifactSet::Model(model.id), now).await?;
        // Open upload sessions stay until they expire: the expiry job removes their chunks,
        // and nobody can reach them through a deleted model meanwhile.
        model_versions::delete_all_of_model(tx, model.id).await?;
        let deleted = set_status(tx, &current, ModelStatus::Deleted, now)
            .await?
            .ok_or_else(|| {
                AppError::conflict("the model changed while it was being deleted; try again")
            })?;
        // A deleted model leaves the catalog and the manifest with it.
        catalog::model_changed(tx, &current).await?;
        Ok(deleted)
    })
    .await
}

/// The one place a model's status changes. PENDING → READY once a verified artifact exists;
/// READY ⇄ ACTIVE as endpoints start and stop serving it; PENDING or READY → PROCESSING while
/// the server works on its files, then READY or FAILED; PENDING or READY → FAILED when
/// processing fails and back to READY when it is redone; anything but DELETED → DELETED.
pub fn status_transition(from: ModelStatus, to: ModelStatus) -> Result<(), AppError> {
    use ModelStatus::*;
    let allowed = matches!(
        (from, to),
        (Pending, Ready)
            | (Ready, Active)
            | (Active, Ready)
            | (Pending | Ready, Processing)
            | (Processing, Ready | Failed)
            | (Pending | Ready, Failed)
            | (Failed, Ready)
            | (Pending | Processing | Ready | Active | Failed, Deleted)
    );
    if allowed {
        Ok(())
    } else {
        Err(AppError::precondition(format!(
            "a {from} model cannot become {to}"
        )))
    }
}

/// Moves `model` to `to` inside `tx`, if the state machine allows it and the status is still
/// what `model` says; answers the moved model (`None`: a concurrent change won).
pub async fn set_status(
    tx: &mut Tx<'_>,
    model: &Model,
    to: ModelStatus,
    now: Timestamp,
) -> Result<Option<Model>, AppError> {
    status_transition(model.status, to)?;
    models::set_status(tx, model.id, model.status, to, now).await
}

pub async fn list(
    db: &Db,
    caller: &Principal,
    filter: &ModelFilter,
    order: ModelOrder,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Model>, AppError> {
    if let Some(project) = filter.project_id {
        visible_project(db, caller, project).await?;
    }
    if let Some(q) = &filter.q {
        validate::bounded("filter.q", q, SHORT_TEXT_MAX)?;
    }
    models::page(
        db,
        caller.visible_projects(),
        filter,
        order,
        page,
        count_total,
    )
    .await
}

pub async fn filter_values(
    db: &Db,
    caller: &Principal,
    project_id: Id,
) -> Result<FilterValues, AppError> {
    let project = visible_project(db, caller, project_id).await?;
    models::filter_values(db, project.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_status_moves_only_along_its_machine() {
        use ModelStatus::*;
        for (from, to) in [
            (Pending, Ready),
            (Ready, Active),
            (Active, Ready),
            (Ready, Deleted),
            (Failed, Ready),
        ] {
            assert!(status_transition(from, to).is_ok(), "{from} → {to}");
        }
        for (from, to) in [
            (Deleted, Ready),
            (Deleted, Deleted),
            (Ready, Pending),
            (Pending, Active),
            (Active, Failed),
        ] {
            let err = status_transition(from, to).unwrap_err();
            assert_eq!(err.code(), "PRECONDITION_FAILED", "{from} → {to}");
        }
    }

    #[test]
    fn create_and_update_check_fields_alike() {
        let refused = |fields: ModelFields| changes(fields).unwrap_err();
        for (field, err) in [
            (
                "name",
                refused(ModelFields {
                    name: Patch::Clear,
                    ..Default::default()
                }),
            ),
            (
                "environment",
                refused(ModelFields {
                    environment: Patch::Clear,
                    ..Default::default()
                }),
            ),
            (
                "deploymentStatus",
                refused(ModelFields {
                    deployment_status: Patch::Set("  ".into()),
                    ..Default::default()
                }),
            ),
        ] {
            assert_eq!(err.code(), "BAD_USER_INPUT", "{field}");
            assert_eq!(err.field(), Some(field));
        }
        let given = changes(ModelFields {
            name: Patch::Set(" Churn ".into()),
            description: Patch::Set("   ".into()),
            provider: Patch::Clear,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(given.name.as_deref(), Some("Churn"));
        // A blank text is no text: it clears, as null does.
        assert_eq!(given.description, Some(None));
        assert_eq!(given.provider, Some(None));
        assert_eq!(given.framework, None);
    }
}
