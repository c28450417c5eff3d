//! Artifact and package rows.

use std::collections::HashMap;

use async_graphql::SimpleObject;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{artifact_packages, artifacts};
use crate::db::{Db, with_conn};
use crate::error::AppError;
use crate::values::{ArtifactKind, ArtifactStatus};
use crate::values::{BigInt, Id, JsonText, Timestamp};

/// One stored file of a model, verified by its SHA-256.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, SimpleObject)]
#[diesel(table_name = artifacts)]
#[graphql(complex)]
pub struct Artifact {
    pub id: Id,
    #[graphql(skip)]
    pub model_id: Id,
    #[graphql(skip)]
    pub version_id: Option<Id>,
    #[graphql(skip)]
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
#[diesel(table_name = artifact_packages)]
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

/// The available artifacts of a set, newest first.
pub async fn list(
    db: &Db,
    set: ArtifactSet,
    kind: Option<ArtifactKind>,
) -> Result<Vec<Artifact>, AppError> {
    with_conn!(db, conn => {
        let mut query = artifacts::table
            .filter(artifacts::status.eq(ArtifactStatus::Available))
            .select(Artifact::as_select())
            .order(artifacts::id.desc())
            .into_boxed();
        query = match set {
            ArtifactSet::Model(id) => query.filter(artifacts::model_id.eq(id)),
            ArtifactSet::Version(id) => query.filter(artifacts::version_id.eq(id)),
            ArtifactSet::Package(id) => query.filter(artifacts::package_id.eq(id)),
        };
        if let Some(kind) = kind {
            query = query.filter(artifacts::kind.eq(kind));
        }
        Ok(query.load(conn).await?)
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
