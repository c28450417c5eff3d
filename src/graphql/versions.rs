use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject};

use super::ContextExt;
use super::artifacts::{ArtifactDownloadUrl, ArtifactView, PackageView};
use super::models::ModelView;
use super::pagination::Conn;
use crate::db::artifacts::ArtifactSet;
use crate::db::model_versions::ModelVersion;
use crate::domain::versions::{self, NewModelVersion, VersionUpdate};
use crate::error::AppError;
use crate::graphql::loaders::ModelKey;
use crate::values::Role;
use crate::values::{ArtifactKind, VersionLifecycle};
use crate::values::{Id, JsonText, Timestamp};

pub struct VersionView(pub ModelVersion);

impl From<ModelVersion> for VersionView {
    fn from(version: ModelVersion) -> Self {
        VersionView(version)
    }
}

/// A numbered, labelled version of a model.
#[Object(name = "ModelVersion")]
impl VersionView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    /// The label, unique per model (`v1.2.0`, `2026-11-rc1`).
    async fn version(&self) -> &str {
        &self.0.version
    }

    /// Assigned by the server: 1, 2, 3… per model, never reused.
    async fn number(&self) -> i64 {
        self.0.number
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn release_date(&self) -> Option<Timestamp> {
        self.0.release_date
    }

    async fn training_run_id(&self) -> Option<&str> {
        self.0.training_run_id.as_deref()
    }

    async fn metrics(&self) -> Option<&JsonText> {
        self.0.metrics.as_ref()
    }

    async fn lifecycle(&self) -> VersionLifecycle {
        self.0.lifecycle
    }

    async fn published_at(&self) -> Option<Timestamp> {
        self.0.published_at
    }

    async fn deprecated_at(&self) -> Option<Timestamp> {
        self.0.deprecated_at
    }

    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }

    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at
    }

    async fn model(&self, ctx: &Context<'_>) -> Result<ModelView> {
        Ok(ctx
            .loader()
            .load_one(ModelKey(self.0.model_id))
            .await?
            .map(ModelView)
            .ok_or(AppError::NotFound("model"))?)
    }

    /// This version's available artifacts, newest first.
    async fn artifacts(
        &self,
        ctx: &Context<'_>,
        kind: Option<ArtifactKind>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<ArtifactView>> {
        super::artifacts::artifact_list(
            ctx,
            ArtifactSet::Version(self.0.id),
            kind,
            (first, after, last, before),
        )
        .await
    }

    /// Training updates devices sent for this version, all time; zeros when none.
    async fn training_stats(
        &self,
        ctx: &Context<'_>,
    ) -> Result<super::telemetry::VersionTrainingDetailView> {
        super::telemetry::version_training(ctx, self.0.id).await
    }

    async fn packages(&self, ctx: &Context<'_>) -> Result<Vec<PackageView>> {
        super::artifacts::version_packages(ctx, &self.0).await
    }

    /// Signed URLs for every available artifact of the version (1 s to 7 days).
    async fn download_urls(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 3600)] expires_in_seconds: i32,
    ) -> Result<Vec<ArtifactDownloadUrl>> {
        super::artifacts::version_download_urls(ctx, &self.0, expires_in_seconds).await
    }
}

#[derive(Default)]
pub struct VersionQuery;

#[Object]
impl VersionQuery {
    /// A version by id, without its model's id.
    async fn model_version(&self, ctx: &Context<'_>, id: Id) -> Result<VersionView> {
        let (version, _) =
            versions::visible_version(ctx.db(), ctx.caller()?, id, Role::Viewer).await?;
        Ok(VersionView(version))
    }
}

#[derive(InputObject)]
pub struct ModelVersionIdInput {
    id: Id,
}

#[derive(SimpleObject)]
pub struct ModelVersionPayload {
    model_version: VersionView,
}

#[derive(SimpleObject)]
pub struct DeleteModelVersionPayload {
    deleted_model_version_id: Id,
    model: ModelView,
}

#[derive(SimpleObject)]
pub struct SetCurrentModelVersionPayload {
    model: ModelView,
}

#[derive(Default)]
pub struct VersionMutation;

#[Object]
impl VersionMutation {
    /// A new DRAFT version with the next number.
    async fn create_model_version(
        &self,
        ctx: &Context<'_>,
        input: CreateModelVersionInput,
    ) -> Result<ModelVersionPayload> {
        let model_version = versions::create(ctx.db(), ctx.caller()?, input.into()).await?;
        Ok(ModelVersionPayload {
            model_version: VersionView(model_version),
        })
    }

    async fn update_model_version(
        &self,
        ctx: &Context<'_>,
        input: UpdateModelVersionInput,
    ) -> Result<ModelVersionPayload> {
        let model_version = versions::update(ctx.db(), ctx.caller()?, input.into()).await?;
        Ok(ModelVersionPayload {
            model_version: VersionView(model_version),
        })
    }

    /// DRAFT → PUBLISHED; needs an available artifact with a verified SHA-256.
    async fn publish_model_version(
        &self,
        ctx: &Context<'_>,
        input: ModelVersionIdInput,
    ) -> Result<ModelVersionPayload> {
        let model_version = versions::publish(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(ModelVersionPayload {
            model_version: VersionView(model_version),
        })
    }

    /// PUBLISHED → DEPRECATED.
    async fn deprecate_model_version(
        &self,
        ctx: &Context<'_>,
        input: ModelVersionIdInput,
    ) -> Result<ModelVersionPayload> {
        let model_version = versions::deprecate(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(ModelVersionPayload {
            model_version: VersionView(model_version),
        })
    }

    async fn delete_model_version(
        &self,
        ctx: &Context<'_>,
        input: ModelVersionIdInput,
    ) -> Result<DeleteModelVersionPayload> {
        let (db, caller) = (ctx.db(), ctx.caller()?);
        let deleted = versions::delete(db, caller, input.id).await?;
        let model =
            crate::domain::models::visible_model(db, caller, deleted.model_id, Role::Viewer)
                .await?;
        Ok(DeleteModelVersionPayload {
            deleted_model_version_id: deleted.id,
            model: ModelView(model),
        })
    }

    async fn set_current_model_version(
        &self,
        ctx: &Context<'_>,
        input: ModelVersionIdInput,
    ) -> Result<SetCurrentModelVersionPayload> {
        let model = versions::set_current(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(SetCurrentModelVersionPayload {
            model: ModelView(model),
        })
    }
}

#[derive(Debug, InputObject)]
pub struct CreateModelVersionInput {
    pub model_id: Id,
    /// The label, unique per model: letters, digits, `.`, `_`, `-`, `+`.
    pub version: String,
    pub description: Option<String>,
    pub release_date: Option<Timestamp>,
    pub training_run_id: Option<String>,
    /// A JSON object of evaluation metrics.
    pub metrics: Option<JsonText>,
}

impl From<CreateModelVersionInput> for NewModelVersion {
    fn from(input: CreateModelVersionInput) -> Self {
        NewModelVersion {
            model_id: input.model_id,
            version: input.version,
            description: input.description,
            release_date: input.release_date,
            training_run_id: input.training_run_id,
            metrics: input.metrics,
        }
    }
}

/// Only the fields given change; null clears a nullable one. The label, release date, training
/// run and metrics are fixed once a version leaves DRAFT.
#[derive(Debug, InputObject)]
pub struct UpdateModelVersionInput {
    pub id: Id,
    pub version: Option<String>,
    pub description: MaybeUndefined<String>,
    pub release_date: MaybeUndefined<Timestamp>,
    pub training_run_id: MaybeUndefined<String>,
    pub metrics: MaybeUndefined<JsonText>,
}

impl From<UpdateModelVersionInput> for VersionUpdate {
    fn from(input: UpdateModelVersionInput) -> Self {
        VersionUpdate {
            id: input.id,
            version: input.version,
            description: super::patch(input.description),
            release_date: super::patch(input.release_date),
            training_run_id: super::patch(input.training_run_id),
            metrics: super::patch(input.metrics),
        }
    }
}
