//! Artifact and package rows.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::page::{Page, PageRequest};
use crate::db::schema::{artifact_packages, artifacts, blobs};
use crate::db::{Db, KeepPrepared, Tx, on_tx, with_conn};
use crate::error::AppError;
use crate::values::{ArtifactKind, ArtifactStatus};
use crate::values::{BigInt, Id, JsonText, Timestamp};

/// One stored file of a model, verified by its SHA-256.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = artifacts, treat_none_as_default_value = false)]
pub struct Artifact {
    pub id: Id,
    pub model_id: Id,
    pub version_id: Option<Id>,
    pub package_id: Option<Id>,
    /// This file's role in its package (`weights`, `tokenizer`, `config`…).
    pub package_role: Option<String>,
    pub kind: ArtifactKind,
    /// A human-readable label for this file (`fp16`, `v2.0.0`), free-form.
    pub version_label: Option<String>,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: BigInt,
    /// Lowercase hex SHA-256 of the bytes, computed by the server.
    pub sha256: String,
    /// The serialization format (`safetensors`, `gguf`, `onnx`…), from metadata or the file name.
    pub format: Option<String>,
    /// `fs`, `s3` or `memory`.
    pub storage_backend: String,
    pub storage_uri: String,
    /// Where the same file also lives outside this registry, as given at upload.
    pub external_uri: Option<String>,
    pub training_run_id: Option<String>,
    pub status: ArtifactStatus,
    /// Whether this is the model's current artifact (at most one is).
    pub is_current: bool,
    pub metadata: Option<JsonText>,
    /// The API key that uploaded it.
    pub uploaded_by: Option<Id>,
    pub uploaded_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = artifact_packages, treat_none_as_default_value = false)]
pub struct PackageRow {
    pub id: Id,
    pub model_id: Id,
    pub version_id: Id,
    pub format: String,
    pub primary_artifact_id: Id,
    pub created_at: Timestamp,
}

/// Which artifacts a list holds.
#[derive(Debug, Clone, Copy)]
pub enum ArtifactSet {
    Model(Id),
    Version(Id),
    Package(Id),
    One(Id),
}

pub async fn find(db: &Db, id: Id) -> Result<Option<Artifact>, AppError> {
    with_conn!(db, conn => {
        Ok(artifacts::table
            .find(id)
            .select(Artifact::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Every available artifact of a set, newest first (package members, a version's download
/// URLs): a page without an end.
/// The available artifacts of several versions, newest first, in one statement.
pub async fn of_versions(db: &Db, version_ids: &[Id]) -> Result<Vec<Artifact>, AppError> {
    with_conn!(db, conn => {
        Ok(artifacts::table
            .filter(artifacts::version_id.eq_any(version_ids.iter().map(|id| Some(*id))))
            .filter(artifacts::status.eq(ArtifactStatus::Available))
            .order(artifacts::id.desc())
            .select(Artifact::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn list(
    db: &Db,
    set: ArtifactSet,
    kind: Option<ArtifactKind>,
) -> Result<Vec<Artifact>, AppError> {
    let everything = PageRequest {
        limit: i64::MAX - 1,
        cursor: None,
        backward: false,
    };
    Ok(page(db, set, kind, &everything, false).await?.items)
}

/// One page of the available artifacts of a set, newest first, read by keyset in SQL (ids are
/// time-ordered UUIDv7, so the id is the sort key and the cursor).
pub async fn page(
    db: &Db,
    set: ArtifactSet,
    kind: Option<ArtifactKind>,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Artifact>, AppError> {
    let ascending = page.ascending(false);
    let after = page.cursor.as_ref().map(|c| c.id);
    with_conn!(db, conn => {
        let matching = || {
            let mut query = artifacts::table
                .filter(artifacts::status.eq(ArtifactStatus::Available))
                .into_boxed();
            query = match set {
                ArtifactSet::Model(id) => query.filter(artifacts::model_id.eq(id)),
                ArtifactSet::Version(id) => query.filter(artifacts::version_id.eq(id)),
                ArtifactSet::Package(id) => query.filter(artifacts::package_id.eq(id)),
                ArtifactSet::One(id) => query.filter(artifacts::id.eq(id)),
            };
            if let Some(kind) = kind {
                query = query.filter(artifacts::kind.eq(kind));
            }
            query
        };
        let total = if count_total {
            Some(matching().count().get_result::<i64>(conn).await?)
        } else {
            None
        };
        let mut query = matching().select(Artifact::as_select());
        if let Some(after) = after {
            query = if ascending {
                query.filter(artifacts::id.gt(after))
            } else {
                query.filter(artifacts::id.lt(after))
            };
        }
        query = if ascending {
            query.order(artifacts::id.asc())
        } else {
            query.order(artifacts::id.desc())
        };
        let rows = query.limit(page.limit + 1).load(conn).await?;
        Ok(page.finish(rows, total))
    })
}

/// Available artifacts per model: what `model.artifactCount` batches.
pub async fn count_per_model(db: &Db, model_ids: &[Id]) -> Result<HashMap<Id, i64>, AppError> {
    with_conn!(db, conn => {
        let rows: Vec<(Id, i64)> = artifacts::table
            .filter(artifacts::model_id.eq_any(model_ids))
            .filter(artifacts::status.eq(ArtifactStatus::Available))
            .group_by(artifacts::model_id)
            .select((artifacts::model_id, diesel::dsl::count_star()))
            .load(conn)
            .await?;
        Ok(rows.into_iter().collect())
    })
}

/// The current artifact per model: what `model.currentArtifact` batches.
pub async fn current_per_model(
    db: &Db,
    model_ids: &[Id],
) -> Result<HashMap<Id, Artifact>, AppError> {
    with_conn!(db, conn => {
        let rows: Vec<Artifact> = artifacts::table
            .filter(artifacts::model_id.eq_any(model_ids))
            .filter(artifacts::status.eq(ArtifactStatus::Available))
            .filter(artifacts::is_current.eq(true))
            .select(Artifact::as_select())
            .load(conn)
            .await?;
        Ok(rows.into_iter().map(|a| (a.model_id, a)).collect())
    })
}

pub async fn packages_of_version(db: &Db, version_id: Id) -> Result<Vec<PackageRow>, AppError> {
    with_conn!(db, conn => {
        Ok(artifact_packages::table
            .filter(artifact_packages::version_id.eq(version_id))
            .select(PackageRow::as_select())
            .order(artifact_packages::id.asc())
            .load(conn)
            .await?)
    })
}

pub async fn find_package(db: &Db, id: Id) -> Result<Option<PackageRow>, AppError> {
    with_conn!(db, conn => {
        Ok(artifact_packages::table
            .find(id)
            .select(PackageRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Marks the available artifacts of a set DELETED (out of packages, not current) and touches
/// their blobs, so the collector keeps the bytes for a full retention window from now.
pub async fn retire(tx: &mut Tx<'_>, set: ArtifactSet, now: Timestamp) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        let mut targets = artifacts::table
            .filter(artifacts::status.eq(ArtifactStatus::Available))
            .select(artifacts::id)
            .into_boxed();
        targets = match set {
            ArtifactSet::Model(id) => targets.filter(artifacts::model_id.eq(id)),
            ArtifactSet::Version(id) => targets.filter(artifacts::version_id.eq(id)),
            ArtifactSet::Package(id) => targets.filter(artifacts::package_id.eq(id)),
            ArtifactSet::One(id) => targets.filter(artifacts::id.eq(id)),
        };
        let ids: Vec<Id> = targets.load(conn).await?;
        let digests: Vec<String> = diesel::update(
            artifacts::table
                .filter(artifacts::id.eq_any(&ids))
                .filter(artifacts::status.eq(ArtifactStatus::Available)),
        )
        .set((
            artifacts::status.eq(ArtifactStatus::Deleted),
            artifacts::is_current.eq(false),
            artifacts::package_id.eq(None::<Id>),
            artifacts::package_role.eq(None::<String>),
            artifacts::updated_at.eq(now),
        ))
        .returning(artifacts::sha256)
        .get_results(conn)
        .await?;
        diesel::update(blobs::table.filter(blobs::sha256.eq_any(&digests)))
            .set(blobs::touched_at.eq(now))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Whether `version_id` has an available artifact, read inside `tx` (after the version's row
/// is locked).
pub async fn any_available(tx: &mut Tx<'_>, version_id: Id) -> Result<bool, AppError> {
    on_tx!(tx, conn => {
        let found: Option<Id> = artifacts::table
            .filter(artifacts::version_id.eq(version_id))
            .filter(artifacts::status.eq(ArtifactStatus::Available))
            .select(artifacts::id)
            .first(conn)
            .await
            .optional()?;
        Ok(found.is_some())
    })
}

/// The available artifact of `version_id` named `file_name`, read inside `tx` (after the
/// version's row is locked, so the answer holds until the transaction ends).
pub async fn named(
    tx: &mut Tx<'_>,
    version_id: Id,
    file_name: &str,
) -> Result<Option<Artifact>, AppError> {
    on_tx!(tx, conn => {
        Ok(artifacts::table
            .filter(artifacts::version_id.eq(version_id))
            .filter(artifacts::file_name.eq(file_name))
            .filter(artifacts::status.eq(ArtifactStatus::Available))
            .select(Artifact::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Field changes of an artifact; `None` leaves a field as it is.
pub struct ArtifactChanges {
    pub is_current: Option<bool>,
    pub version_label: Option<Option<String>>,
    pub metadata: Option<Option<JsonText>>,
    pub updated_at: Timestamp,
}

/// Applies `changes`; making an artifact current clears the model's other current one.
pub async fn update(
    tx: &mut Tx<'_>,
    artifact: &Artifact,
    changes: &ArtifactChanges,
) -> Result<Artifact, AppError> {
    on_tx!(tx, conn => {
        let this = artifacts::table.find(artifact.id);
        if changes.is_current == Some(true) {
            diesel::update(
                artifacts::table
                    .filter(artifacts::model_id.eq(artifact.model_id))
                    .filter(artifacts::is_current.eq(true))
                    .filter(artifacts::id.ne(artifact.id)),
            )
            .set(artifacts::is_current.eq(false))
            .prepared()
            .execute(conn)
            .await?;
        }
        if let Some(current) = changes.is_current {
            diesel::update(this)
                .set(artifacts::is_current.eq(current))
                .prepared()
                .execute(conn)
                .await?;
        }
        if let Some(label) = &changes.version_label {
            diesel::update(this)
                .set(artifacts::version_label.eq(label))
                .prepared()
                .execute(conn)
                .await?;
        }
        if let Some(metadata) = &changes.metadata {
            diesel::update(this)
                .set(artifacts::metadata.eq(metadata))
                .prepared()
                .execute(conn)
                .await?;
        }
        Ok(diesel::update(this)
            .set(artifacts::updated_at.eq(changes.updated_at))
            .returning(Artifact::as_returning())
            .prepared()
            .get_result(conn)
            .await?)
    })
}

/// Dissolves `package` when `artifact` is its primary file: its sidecars are released and the
/// package row goes.
pub async fn dissolve_package_of_primary(
    tx: &mut Tx<'_>,
    package: Id,
    artifact: Id,
) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        let primary: Option<Id> = artifact_packages::table
            .find(package)
            .select(artifact_packages::primary_artifact_id)
            .first(conn)
            .await
            .optional()?;
        if primary == Some(artifact) {
            diesel::update(artifacts::table.filter(artifacts::package_id.eq(package)))
                .set((
                    artifacts::package_id.eq(None::<Id>),
                    artifacts::package_role.eq(None::<String>),
                ))
                .prepared()
                .execute(conn)
                .await?;
            diesel::delete(artifact_packages::table.find(package))
                .execute(conn)
                .await?;
        }
        Ok(())
    })
}

pub async fn insert_package(tx: &mut Tx<'_>, package: &PackageRow) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::insert_into(artifact_packages::table).values(package).execute(conn).await?;
        Ok(())
    })
}

/// Puts an available artifact that belongs to no package into `package` with `role`;
/// `false` when it is taken (or gone) meanwhile.
pub async fn join_package(
    tx: &mut Tx<'_>,
    artifact: Id,
    package: Id,
    role: &str,
) -> Result<bool, AppError> {
    on_tx!(tx, conn => {
        let joined = diesel::update(
            artifacts::table
                .find(artifact)
                .filter(artifacts::package_id.is_null())
                .filter(artifacts::status.eq(ArtifactStatus::Available)),
        )
        .set((artifacts::package_id.eq(package), artifacts::package_role.eq(role)))
        .prepared()
        .execute(conn)
        .await?;
        Ok(joined == 1)
    })
}

/// Inserts a new artifact; a current one takes the model's current mark from any other.
pub async fn insert(tx: &mut Tx<'_>, artifact: &Artifact) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        if artifact.is_current {
            diesel::update(
                artifacts::table
                    .filter(artifacts::model_id.eq(artifact.model_id))
                    .filter(artifacts::is_current.eq(true)),
            )
            .set(artifacts::is_current.eq(false))
            .prepared()
            .execute(conn)
            .await?;
        }
        diesel::insert_into(artifacts::table).values(artifact).execute(conn).await?;
        Ok(())
    })
}
