use async_graphql::{ComplexObject, Context, InputObject, Object, Result, SimpleObject};

use super::ContextExt;
use crate::db::loaders::ModelKey;
use crate::db::model_versions::ModelVersion;
use crate::db::models::Model;
use crate::db::types::Id;
use crate::domain::values::Role;
use crate::domain::versions::{self, CreateModelVersionInput, UpdateModelVersionInput};
use crate::error::AppError;

#[ComplexObject]
impl ModelVersion {
    async fn model(&self, ctx: &Context<'_>) -> Result<Model> {
        Ok(ctx
            .loader()
            .load_one(ModelKey(self.model_id))
            .await?
            .ok_or(AppError::NotFound("model"))?)
    }
}

#[derive(Default)]
pub struct VersionQuery;

#[Object]
impl VersionQuery {
    /// A version by id, without its model's id.
    async fn model_version(&self, ctx: &Context<'_>, id: Id) -> Result<ModelVersion> {
        Ok(
            versions::visible_version(ctx.db(), ctx.caller()?, id, Role::Viewer)
                .await?
                .0,
        )
    }
}

#[derive(InputObject)]
pub struct ModelVersionIdInput {
    id: Id,
}

#[derive(SimpleObject)]
pub struct ModelVersionPayload {
    model_version: ModelVersion,
}

#[derive(SimpleObject)]
pub struct DeleteModelVersionPayload {
    deleted_model_version_id: Id,
    model: Model,
}

#[derive(SimpleObject)]
pub struct SetCurrentModelVersionPayload {
    model: Model,
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
        let model_version = versions::create(ctx.db(), ctx.caller()?, input).await?;
        Ok(ModelVersionPayload { model_version })
    }

    async fn update_model_version(
        &self,
        ctx: &Context<'_>,
        input: UpdateModelVersionInput,
    ) -> Result<ModelVersionPayload> {
        let model_version = versions::update(ctx.db(), ctx.caller()?, input).await?;
        Ok(ModelVersionPayload { model_version })
    }

    /// DRAFT → PUBLISHED; needs an available artifact with a verified SHA-256.
    async fn publish_model_version(
        &self,
        ctx: &Context<'_>,
        input: ModelVersionIdInput,
    ) -> Result<ModelVersionPayload> {
        let model_version = versions::publish(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(ModelVersionPayload { model_version })
    }

    /// PUBLISHED → DEPRECATED.
    async fn deprecate_model_version(
        &self,
        ctx: &Context<'_>,
        input: ModelVersionIdInput,
    ) -> Result<ModelVersionPayload> {
        let model_version = versions::deprecate(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(ModelVersionPayload { model_version })
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
            model,
        })
    }

    async fn set_current_model_version(
        &self,
        ctx: &Context<'_>,
        input: ModelVersionIdInput,
    ) -> Result<SetCurrentModelVersionPayload> {
        let model = versions::set_current(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(SetCurrentModelVersionPayload { model })
    }
}
