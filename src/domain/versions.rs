//! Model versions: numbering, labels, the lifecycle and the current-version pointer.

use crate::auth::{Principal, ProjectRef};
use crate::db::Db;
use crate::db::artifacts::{self, ArtifactSet};
use crate::db::model_versions::{self, LifecycleChange, ModelVersion, VersionChanges};
use crate::db::models::{self, Model};
use crate::db::page::{Page, PageRequest};
use crate::db::projects::{self, UsageSlot};
use crate::domain::catalog::revision as catalog;
use crate::domain::models::visible_model;
use crate::domain::organizations::month_of;
use crate::domain::validate::{self, DESCRIPTION_MAX};
use crate::error::AppError;
use crate::values::{Id, JsonText, Patch, Timestamp};
use crate::values::{Role, VersionLifecycle};

const LABEL_MAX: usize = 128;

#[derive(Debug)]
pub struct NewModelVersion {
    pub model_id: Id,
    /// The label, unique per model: letters, digits, `.`, `_`, `-`, `+`.
    pub version: String,
    pub description: Option<String>,
    pub release_date: Option<Timestamp>,
    pub training_run_id: Option<String>,
    /// A JSON object of evaluation metrics.
    pub metrics: Option<JsonText>,
}

/// Only the fields given change; null clears a nullable one. The label, release date, training
/// run and metrics are fixed once a version leaves DRAFT.
#[derive(Debug)]
pub struct VersionUpdate {
    pub id: Id,
    pub version: Option<String>,
    pub description: Patch<String>,
    pub release_date: Patch<Timestamp>,
    pub training_run_id: Patch<String>,
    pub metrics: Patch<JsonText>,
}

/// What a caller asks of a version's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    Publish,
    Deprecate,
}

/// The lifecycle state machine: `DRAFT → PUBLISHED → DEPRECATED`, nothing else.
pub fn transition(
    current: VersionLifecycle,
    action: LifecycleAction,
) -> Result<VersionLifecycle, AppError> {
    use VersionLifecycle::*;
    match (current, action) {
        (Draft, LifecycleAction::Publish) => Ok(Published),
        (Published, LifecycleAction::Deprecate) => Ok(Deprecated),
        (state, LifecycleAction::Publish) => Err(AppError::precondition(format!(
            "the version is {state}; only a DRAFT version can be published"
        ))),
        (state, LifecycleAction::Deprecate) => Err(AppError::precondition(format!(
            "the version is {state}; only a PUBLISHED version can be deprecated"
        ))),
    }
}

fn label(field: &str, value: &str) -> Result<String, AppError> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if !ok {
        return Err(AppError::bad_input(
            field,
            format!("`{value}` is not a version label: use letters, digits, `.`, `_`, `-` and `+`"),
        ));
    }
    validate::bounded(field, value, LABEL_MAX)?;
    Ok(value.to_owned())
}

fn metrics(value: Option<JsonText>) -> Result<Option<JsonText>, AppError> {
    match value {
        Some(m) if !m.0.is_object() => Err(AppError::bad_input("metrics", "must be a JSON object")),
        Some(m) => {
            validate::json_size("metrics", &m)?;
            Ok(Some(m))
        }
        None => Ok(None),
    }
}

fn label_taken(label: &str) -> AppError {
    AppError::conflict(format!("this model already has a version `{label}`"))
}

pub async fn create(
    db: &Db,
    caller: &Principal,
    input: NewModelVersion,
) -> Result<ModelVersion, AppError> {
    let now = Timestamp::now();
    // Checked now, answered after the caller's access: one who may not see the model learns
    // nothing from its input.
    let fields = (
        label("version", &input.version),
        validate::text("description", input.description, DESCRIPTION_MAX),
        validate::text(
            "trainingRunId",
            input.training_run_id,
            validate::SHORT_TEXT_MAX,
        ),
        metrics(input.metrics),
    );
    let (model_id, release_date, caller) = (input.model_id, input.release_date, caller.clone());
    let month = month_of(now);
    // One blocking call on SQLite (see `Db::bulk_transaction`): what it uses is moved in, and
    // the version comes back numbered. The model and its project are read inside it, so the
    // quota read is the one the create is counted against.
    db.bulk_transaction(async move |tx| {
        let (model, project) = models::find_live_with_project_shared(tx, model_id)
            .await?
            .ok_or(AppError::NotFound("model"))?;
        caller.require(ProjectRef::from(&project), Role::Editor, "model")?;
        let (version, description, training_run_id, metrics) = fields;
        let mut version = ModelVersion {
            id: Id::new(),
            model_id: model.id,
            version: version?,
            number: 0,
            description: description?,
            release_date,
            training_run_id: training_run_id?,
            metrics: metrics?,
            lifecycle: VersionLifecycle::Draft,
            published_at: None,
            deprecated_at: None,
            created_at: now,
            updated_at: now,
        };
        // Under a quota, the project's creates count one after another against it; without
        // one, they only add to their model's shard of the month's count.
        if let Some(max) = project.max_versions_per_month {
            projects::lock(tx, project.id).await?;
            if projects::versions_created(tx, project.id, &month).await? >= max {
                return Err(AppError::QuotaExceeded(format!(
                    "project `{}` allows at most {max} new versions per month",
                    project.slug
                )));
            }
        }
        let usage = UsageSlot {
            project_id: project.id,
            month: &month,
            shard: projects::usage_shard(model.id),
        };
        // A model without a current version takes this one as current. The label's unique
        // index refuses a taken label; the error rolls the number and the pointer back.
        version.number = model_versions::take_number(tx, model.id, usage, version.id, now)
            .await?
            .ok_or(AppError::NotFound("model"))?;
        if !model_versions::insert_numbered(tx, &version).await? {
            return Err(label_taken(&version.version));
        }
        Ok(version)
    })
    .await
}

/// A version whose model the caller may act on with `role`; otherwise NOT_FOUND.
pub async fn visible_version(
    db: &Db,
    caller: &Principal,
    id: Id,
    role: Role,
) -> Result<(ModelVersion, Model), AppError> {
    let version = model_versions::find(db, id)
        .await?
        .ok_or(AppError::NotFound("model version"))?;
    let model = visible_model(db, caller, version.model_id, role)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("model version"),
            other => other,
        })?;
    Ok((version, model))
}

pub async fn update(
    db: &Db,
    caller: &Principal,
    input: VersionUpdate,
) -> Result<ModelVersion, AppError> {
    let (version, _) = visible_version(db, caller, input.id, Role::Editor).await?;
    let changes = VersionChanges {
        version: input.version.map(|v| label("version", &v)).transpose()?,
        description: match input.description {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(d) => Some(validate::text("description", Some(d), DESCRIPTION_MAX)?),
        },
        release_date: input.release_date.into_change(),
        training_run_id: match input.training_run_id {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(t) => Some(validate::text(
                "trainingRunId",
                Some(t),
                validate::SHORT_TEXT_MAX,
            )?),
        },
        metrics: match input.metrics {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(m) => Some(metrics(Some(m))?),
        },
        updated_at: Some(Timestamp::now()),
    };
    let fixed_changed = changes.version.is_some()
        || changes.release_date.is_some()
        || changes.training_run_id.is_some()
        || changes.metrics.is_some();
    if fixed_changed && version.lifecycle != VersionLifecycle::Draft {
        return Err(AppError::precondition(format!(
            "version `{}` is {}: only its description can change",
            version.version, version.lifecycle
        )));
    }
    db.transaction(async |tx| {
        if let Some(new_label) = &changes.version
            && model_versions::label_taken(tx, version.model_id, new_label, Some(version.id))
                .await?
        {
            return Err(label_taken(new_label));
        }
        model_versions::update(tx, version.id, &changes).await
    })
    .await
}

/// Publishing needs at least one available artifact whose SHA-256 the server verified.
pub async fn publish(db: &Db, caller: &Principal, id: Id) -> Result<ModelVersion, AppError> {
    let (version, _) = visible_version(db, caller, id, Role::Editor).await?;
    let next = transition(version.lifecycle, LifecycleAction::Publish)?;
    set_lifecycle(db, &version, next).await
}

pub async fn deprecate(db: &Db, caller: &Principal, id: Id) -> Result<ModelVersion, AppError> {
    let (version, _) = visible_version(db, caller, id, Role::Editor).await?;
    let next = transition(version.lifecycle, LifecycleAction::Deprecate)?;
    set_lifecycle(db, &version, next).await
}

/// Moves the lifecycle only if nobody moved it first (compare-and-set on the old state).
async fn set_lifecycle(
    db: &Db,
    version: &ModelVersion,
    next: VersionLifecycle,
) -> Result<ModelVersion, AppError> {
    let now = Timestamp::now();
    let (published_at, deprecated_at) = match next {
        VersionLifecycle::Published => (Some(now), version.deprecated_at),
        VersionLifecycle::Deprecated => (version.published_at, Some(now)),
        VersionLifecycle::Draft => (version.published_at, version.deprecated_at),
    };
    let change = LifecycleChange {
        from: version.lifecycle,
        to: next,
        published_at,
        deprecated_at,
        at: now,
    };
    db.transaction(async |tx| {
        if next == VersionLifecycle::Published {
            // Checked with the version's row locked: an artifact deleted meanwhile (its delete
            // locks the row too) cannot leave a published version without files. Every stored
            // artifact's SHA-256 was computed here from its bytes, so available means verified.
            model_versions::lock(tx, version.id).await?;
            if !artifacts::any_available(tx, version.id).await? {
                return Err(AppError::precondition(format!(
                    "version `{}` has no available artifact with a verified SHA-256; upload one before publishing",
                    version.version
                )));
            }
        }
        let Some(moved) = model_versions::set_lifecycle(tx, version.id, &change).await? else {
            return Ok(None);
        };
        // A shared model's manifest shows its newest published version. Moved whether or not
        // the model is shared now: `shared` read here without the model's lock could be
        // overtaken by a share committing in between, and lifecycle changes are rare.
        catalog::version_changed(tx).await?;
        Ok(Some(moved))
    })
    .await?
    .ok_or_else(|| AppError::precondition("the version changed state concurrently; read it again"))
}

/// Deletes a DRAFT version. Published and deprecated versions are immutable: a client that
/// pinned one must keep getting the same bytes, so they can only be deprecated.
pub async fn delete(db: &Db, caller: &Principal, id: Id) -> Result<ModelVersion, AppError> {
    let (version, model) = visible_version(db, caller, id, Role::Editor).await?;
    let frozen = || {
        AppError::precondition(format!(
            "version {} is {}: published versions are immutable; deprecate it instead",
            version.version, version.lifecycle
        ))
    };
    if version.lifecycle != VersionLifecycle::Draft {
        return Err(frozen());
    }
    let now = Timestamp::now();
    db.transaction(async |tx| {
        // The version's row, then the model's, as an upload completing into the version takes
        // them. `setCurrentModelVersion` checks its pointer's foreign key when it commits
        // (PostgreSQL); that check takes a lock this one does not block, so a pointer written
        // first commits, and the delete clears it after. One written after the delete commits
        // fails on the key, as it always did.
        model_versions::lock(tx, version.id).await?;
        models::touch(tx, model.id, now).await?;
        if model.current_version_id == Some(version.id) {
            models::set_current_version(tx, model.id, None, now).await?;
        }
        artifacts::retire(tx, ArtifactSet::Version(version.id), now).await?;
        if !model_versions::delete_draft(tx, version.id).await? {
            // Published since it was read: nothing above is kept.
            return Err(AppError::precondition(format!(
                "version {} was published meanwhile: published versions are immutable",
                version.version
            )));
        }
        Ok(())
    })
    .await?;
    Ok(version)
}

pub async fn set_current(db: &Db, caller: &Principal, id: Id) -> Result<Model, AppError> {
    let (version, model) = visible_version(db, caller, id, Role::Editor).await?;
    db.transaction(async |tx| {
        models::set_current_version(tx, model.id, Some(version.id), Timestamp::now()).await
    })
    .await
}

pub async fn list(
    db: &Db,
    model: &Model,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<ModelVersion>, AppError> {
    model_versions::page(db, model.id, page, count_total).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use VersionLifecycle::*;

    #[test]
    fn lifecycle_moves_forward_only() {
        assert_eq!(
            transition(Draft, LifecycleAction::Publish).unwrap(),
            Published
        );
        assert_eq!(
            transition(Published, LifecycleAction::Deprecate).unwrap(),
            Deprecated
        );
        for (state, action) in [
            (Draft, LifecycleAction::Deprecate),
            (Published, LifecycleAction::Publish),
            (Deprecated, LifecycleAction::Publish),
            (Deprecated, LifecycleAction::Deprecate),
        ] {
            let err = transition(state, action).unwrap_err();
            assert_eq!(err.code(), "PRECONDITION_FAILED");
            assert!(err.message().contains(state.as_str()), "{err:?}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(label("version", " v1.2.0+build ").unwrap(), "v1.2.0+build");
        assert!(label("version", "v 1").is_err());
        assert!(label("version", "../x").is_err());
    }
}
