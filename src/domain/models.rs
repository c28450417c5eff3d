//! Registering, describing, listing and deleting models.

use std::collections::BTreeMap;

use async_graphql::{InputObject, MaybeUndefined, SimpleObject};

use crate::auth::{Principal, ProjectRef};
use crate::db::artifacts::{self, ArtifactSet};
use crate::db::models::{self, FilterValues, Model, ModelChanges, ModelFilter, ModelOrder};
use crate::db::page::{Page, PageRequest};
use crate::db::{Db, Tx, model_versions, projects};
use crate::domain::organizations::{project_by_slug, visible_project};
use crate::domain::validate::{self, DESCRIPTION_MAX, LONG_TEXT_MAX, SHORT_TEXT_MAX};
use crate::error::AppError;
use crate::values::{Id, JsonText, Timestamp};
use crate::values::{ModelFamily, ModelStatus, ProductType, Role};

pub const DEFAULT_ENVIRONMENT: &str = "development";
pub const DEFAULT_DEPLOYMENT_STATUS: &str = "development";
const TAG_KEY_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 1024;

/// A free key/value label on a model.
#[derive(Debug, Clone, PartialEq, InputObject, SimpleObject)]
#[graphql(input_name = "TagInput")]
pub struct Tag {
    pub key: String,
    pub value: String,
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

/// Only the fields given change. For nullable fields an explicit null clears the value;
/// for the others null is refused.
#[derive(Debug, InputObject)]
pub struct UpdateModelInput {
    pub id: Id,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: MaybeUndefined<String>,
    pub long_description: MaybeUndefined<String>,
    pub product_type: Option<ProductType>,
    pub provider: MaybeUndefined<String>,
    pub environment: Option<String>,
    pub risk_classification: MaybeUndefined<String>,
    pub lifecycle_stage: MaybeUndefined<String>,
    pub model_family: MaybeUndefined<ModelFamily>,
    pub model_task_type: MaybeUndefined<String>,
    pub model_architecture: MaybeUndefined<String>,
    pub framework: MaybeUndefined<String>,
    pub intended_use: MaybeUndefined<String>,
    pub limitations: MaybeUndefined<String>,
    pub deployment_status: Option<String>,
    pub serving_url: MaybeUndefined<String>,
    pub input_schema: MaybeUndefined<JsonText>,
    pub output_schema: MaybeUndefined<JsonText>,
    pub ai_system_type: MaybeUndefined<String>,
    pub vendor_name: MaybeUndefined<String>,
    pub vendor_product_name: MaybeUndefined<String>,
    pub vendor_model_id: MaybeUndefined<String>,
    pub deployment_environment: MaybeUndefined<String>,
    pub business_use_case: MaybeUndefined<String>,
    pub is_gpai: Option<bool>,
    /// Replaces the whole list.
    pub capabilities: Option<Vec<String>>,
    /// Replaces every tag.
    pub tags: Option<Vec<Tag>>,
    /// False blocks new endpoints; running ones keep serving.
    pub enabled: Option<bool>,
    /// Archived models leave the default lists.
    pub archived: Option<bool>,
}

fn short(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    validate::text(field, value, SHORT_TEXT_MAX)
}

fn required_short(field: &str, value: Option<String>, default: &str) -> Result<String, AppError> {
    match value {
        Some(v) => validate::name(field, &v),
        None => Ok(default.to_owned()),
    }
}

/// A patch of a nullable text column: absent → unchanged, null → cleared.
fn patch(
    field: &str,
    value: MaybeUndefined<String>,
    check: impl Fn(&str, Option<String>) -> Result<Option<String>, AppError>,
) -> Result<Option<Option<String>>, AppError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => Ok(Some(check(field, Some(v))?)),
    }
}

fn patch_short(
    field: &str,
    value: MaybeUndefined<String>,
) -> Result<Option<Option<String>>, AppError> {
    patch(field, value, short)
}

fn patch_text(
    field: &str,
    value: MaybeUndefined<String>,
    max: usize,
) -> Result<Option<Option<String>>, AppError> {
    patch(field, value, |f, v| validate::text(f, v, max))
}

fn patch_schema(
    field: &str,
    value: MaybeUndefined<JsonText>,
) -> Result<Option<Option<JsonText>>, AppError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => Ok(Some(validate::json_schema(field, Some(v))?)),
    }
}

fn capabilities(values: Vec<String>) -> Result<JsonText, AppError> {
    Ok(JsonText(serde_json::json!(validate::labels(
        "capabilities",
        values
    )?)))
}

fn tags(values: Vec<Tag>) -> Result<JsonText, AppError> {
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

pub async fn create(
    db: &Db,
    caller: &Principal,
    input: CreateModelInput,
) -> Result<Model, AppError> {
    let project = visible_project(db, caller, input.project_id).await?;
    caller.require(ProjectRef::from(&project), Role::Editor, "project")?;
    let name = validate::name("name", &input.name)?;
    let slug = match input.slug {
        Some(s) => validate::slug("slug", &s)?,
        None => validate::slugify(&name),
    };
    let now = Timestamp::now();
    let model = Model {
        id: Id::new(),
        project_id: project.id,
        name,
        slug,
        description: validate::text("description", input.description, DESCRIPTION_MAX)?,
        long_description: validate::text("longDescription", input.long_description, LONG_TEXT_MAX)?,
        product_type: input.product_type.unwrap_or(ProductType::MlModel),
        provider: short("provider", input.provider)?,
        environment: required_short("environment", input.environment, DEFAULT_ENVIRONMENT)?,
        risk_classification: short("riskClassification", input.risk_classification)?,
        lifecycle_stage: short("lifecycleStage", input.lifecycle_stage)?,
        model_family: input.model_family,
        model_task_type: short("modelTaskType", input.model_task_type)?,
        model_architecture: short("modelArchitecture", input.model_architecture)?,
        framework: short("framework", input.framework)?,
        intended_use: validate::text("intendedUse", input.intended_use, DESCRIPTION_MAX)?,
        limitations: validate::text("limitations", input.limitations, DESCRIPTION_MAX)?,
        deployment_status: required_short(
            "deploymentStatus",
            input.deployment_status,
            DEFAULT_DEPLOYMENT_STATUS,
        )?,
        serving_url: validate::url("servingUrl", input.serving_url)?,
        input_schema: validate::json_schema("inputSchema", input.input_schema)?,
        output_schema: validate::json_schema("outputSchema", input.output_schema)?,
        ai_system_type: short("aiSystemType", input.ai_system_type)?,
        vendor_name: short("vendorName", input.vendor_name)?,
        vendor_product_name: short("vendorProductName", input.vendor_product_name)?,
        vendor_model_id: short("vendorModelId", input.vendor_model_id)?,
        deployment_environment: short("deploymentEnvironment", input.deployment_environment)?,
        business_use_case: validate::text(
            "businessUseCase",
            input.business_use_case,
            DESCRIPTION_MAX,
        )?,
        is_gpai: input.is_gpai.unwrap_or(false),
        capabilities: capabilities(input.capabilities.unwrap_or_default())?,
        tags: tags(input.tags.unwrap_or_default())?,
        enabled: input.enabled.unwrap_or(true),
        archived: false,
        status: ModelStatus::Pending,
        current_version_id: None,
        next_version_number: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let max_models = project.max_models;
    db.transaction(async |tx| {
        // Checked against a locked project row: concurrent creates in one project are counted
        // against the quota one after another.
        projects::lock(tx, model.project_id).await?;
        if let Some(max) = max_models
            && models::count_live(tx, model.project_id).await? >= max
        {
            return Err(AppError::QuotaExceeded(format!(
                "project `{}` allows at most {max} models",
                project.slug
            )));
        }
        let clash = models::clash(
            tx,
            model.project_id,
            Some(&model.name),
            Some(&model.slug),
            None,
        )
        .await?;
        if let Some((name, _)) = clash {
            return Err(if name == model.name {
                name_taken(&name)
            } else {
                slug_taken(&model.slug)
            });
        }
        if !models::insert(tx, &model).await? {
            return Err(name_taken(&model.name));
        }
        Ok(())
    })
    .await?;
    Ok(model)
}

/// A live model the caller may act on with `role`; another project's is NOT_FOUND.
pub async fn visible_model(
    db: &Db,
    caller: &Principal,
    id: Id,
    role: Role,
) -> Result<Model, AppError> {
    let model = models::find_live(db, id)
        .await?
        .ok_or(AppError::NotFound("model"))?;
    let project = crate::db::projects::find(db, model.project_id)
        .await?
        .ok_or(AppError::NotFound("model"))?;
    caller.require(ProjectRef::from(&project), role, "model")?;
    Ok(model)
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

pub async fn update(
    db: &Db,
    caller: &Principal,
    input: UpdateModelInput,
) -> Result<Model, AppError> {
    let model = visible_model(db, caller, input.id, Role::Editor).await?;
    let changes = ModelChanges {
        name: input.name.map(|n| validate::name("name", &n)).transpose()?,
        slug: input.slug.map(|s| validate::slug("slug", &s)).transpose()?,
        description: patch_text("description", input.description, DESCRIPTION_MAX)?,
        long_description: patch_text("longDescription", input.long_description, LONG_TEXT_MAX)?,
        product_type: input.product_type,
        provider: patch_short("provider", input.provider)?,
        environment: input
            .environment
            .map(|v| validate::name("environment", &v))
            .transpose()?,
        risk_classification: patch_short("riskClassification", input.risk_classification)?,
        lifecycle_stage: patch_short("lifecycleStage", input.lifecycle_stage)?,
        model_family: match input.model_family {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(f) => Some(Some(f)),
        },
        model_task_type: patch_short("modelTaskType", input.model_task_type)?,
        model_architecture: patch_short("modelArchitecture", input.model_architecture)?,
        framework: patch_short("framework", input.framework)?,
        intended_use: patch_text("intendedUse", input.intended_use, DESCRIPTION_MAX)?,
        limitations: patch_text("limitations", input.limitations, DESCRIPTION_MAX)?,
        deployment_status: input
            .deployment_status
            .map(|v| validate::name("deploymentStatus", &v))
            .transpose()?,
        serving_url: patch("servingUrl", input.serving_url, validate::url)?,
        input_schema: patch_schema("inputSchema", input.input_schema)?,
        output_schema: patch_schema("outputSchema", input.output_schema)?,
        ai_system_type: patch_short("aiSystemType", input.ai_system_type)?,
        vendor_name: patch_short("vendorName", input.vendor_name)?,
        vendor_product_name: patch_short("vendorProductName", input.vendor_product_name)?,
        vendor_model_id: patch_short("vendorModelId", input.vendor_model_id)?,
        deployment_environment: patch_short("deploymentEnvironment", input.deployment_environment)?,
        business_use_case: patch_text("businessUseCase", input.business_use_case, DESCRIPTION_MAX)?,
        is_gpai: input.is_gpai,
        capabilities: input.capabilities.map(capabilities).transpose()?,
        tags: input.tags.map(tags).transpose()?,
        enabled: input.enabled,
        archived: input.archived,
        updated_at: Some(Timestamp::now()),
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
        models::update(tx, model.id, &changes)
            .await?
            .ok_or_else(|| AppError::conflict("name or slug already taken"))
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
        artifacts::retire(tx, ArtifactSet::Model(model.id), now).await?;
        // Open upload sessions stay until they expire: the expiry job removes their chunks,
        // and nobody can reach them through a deleted model meanwhile.
        model_versions::delete_all_of_model(tx, model.id).await?;
        set_status(tx, &current, ModelStatus::Deleted, now)
            .await?
            .ok_or_else(|| {
                AppError::conflict("the model changed while it was being deleted; try again")
            })
    })
    .await
}

/// The one place a model's status changes. PENDING → READY once a verified artifact exists;
/// READY ⇄ ACTIVE as endpoints start and stop serving it; PENDING or READY → FAILED when
/// processing fails and back to READY when it is redone; anything but DELETED → DELETED.
pub fn status_transition(from: ModelStatus, to: ModelStatus) -> Result<(), AppError> {
    use ModelStatus::*;
    let allowed = matches!(
        (from, to),
        (Pending, Ready)
            | (Ready, Active)
            | (Active, Ready)
            | (Pending | Ready, Failed)
            | (Failed, Ready)
            | (Pending | Ready | Active | Failed, Deleted)
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
}
