use async_graphql::{
    ComplexObject, Context, InputObject, MaybeUndefined, Object, Result, SimpleObject,
};

use super::ContextExt;
use super::pagination::{self, Conn};
use crate::db::artifacts::{self, Artifact, ArtifactSet, PackageRow};
use crate::db::model_versions::ModelVersion;
use crate::db::models::Model;
use crate::db::page::Cursor;
use crate::domain::artifacts::{self as rules, ArtifactUpdate, NewPackage, PackageMember};
use crate::error::AppError;
use crate::graphql::loaders::{ModelKey, VersionKey};
use crate::values::{ArtifactKind, Role};
use crate::values::{Id, JsonText, Timestamp};

/// A URL that works without an API key until `expiresAt`.
#[derive(SimpleObject)]
pub struct SignedUrl {
    pub url: String,
    pub expires_at: Timestamp,
}

/// One artifact's signed download URL, for fetching a whole version.
#[derive(SimpleObject)]
pub struct ArtifactDownloadUrl {
    pub artifact: Artifact,
    pub url: String,
    pub expires_at: Timestamp,
}

#[ComplexObject]
impl Artifact {
    async fn model(&self, ctx: &Context<'_>) -> Result<Model> {
        Ok(ctx
            .loader()
            .load_one(ModelKey(self.model_id))
            .await?
            .ok_or(AppError::NotFound("model"))?)
    }

    async fn version(&self, ctx: &Context<'_>) -> Result<Option<ModelVersion>> {
        match self.version_id {
            Some(id) => Ok(ctx.loader().load_one(VersionKey(id)).await?),
            None => Ok(None),
        }
    }

    /// The package this file deploys with, if any.
    async fn package(&self, ctx: &Context<'_>) -> Result<Option<PackageRow>> {
        match self.package_id {
            Some(id) => Ok(artifacts::find_package(ctx.db(), id).await?),
            None => Ok(None),
        }
    }

    /// A download URL that needs no API key until it expires (1 s to the instance's maximum,
    /// default 7 days). It works only while the key that asked for it is neither revoked nor
    /// expired (URLs signed by an S3 service itself cannot be recalled: their lifetime is the
    /// bound there).
    async fn download_url(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 3600)] expires_in_seconds: i32,
    ) -> Result<SignedUrl> {
        let app = ctx.app();
        let ttl = rules::url_ttl(expires_in_seconds, app.config.max_signed_url_secs)?;
        let signed =
            rules::signed_download_url(app, ctx.caller()?, self, ttl, ctx.origin()).await?;
        Ok(SignedUrl {
            url: signed.url,
            expires_at: signed.expires_at,
        })
    }
}

/// A primary artifact and its sidecars: one unit that deploys together.
#[Object(name = "ArtifactPackage")]
impl PackageRow {
    async fn id(&self) -> Id {
        self.id
    }

    async fn format(&self) -> &str {
        &self.format
    }

    async fn created_at(&self) -> Timestamp {
        self.created_at
    }

    async fn version(&self, ctx: &Context<'_>) -> Result<ModelVersion> {
        Ok(ctx
            .loader()
            .load_one(VersionKey(self.version_id))
            .await?
            .ok_or(AppError::NotFound("model version"))?)
    }

    async fn primary(&self, ctx: &Context<'_>) -> Result<Option<Artifact>> {
        Ok(artifacts::find(ctx.db(), self.primary_artifact_id).await?)
    }

    /// Every file of the package, the primary first; each carries its `packageRole`.
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<Artifact>> {
        Ok(rules::package_members(ctx.app(), self).await?)
    }
}

fn artifact_cursor(artifact: &Artifact) -> Cursor {
    Cursor {
        key: String::new(),
        id: artifact.id,
    }
}

/// A model's or version's available artifacts, newest first.
pub(super) async fn artifact_list(
    ctx: &Context<'_>,
    set: ArtifactSet,
    kind: Option<ArtifactKind>,
    page: (Option<i32>, Option<String>, Option<i32>, Option<String>),
) -> Result<Conn<Artifact>> {
    let page = pagination::request(page.0, page.1, page.2, page.3)?;
    let rows = artifacts::page(ctx.db(), set, kind, &page, ctx.wants_total()).await?;
    Ok(pagination::connection(rows, artifact_cursor))
}

pub(super) async fn version_packages(
    ctx: &Context<'_>,
    version: &ModelVersion,
) -> Result<Vec<PackageRow>> {
    Ok(artifacts::packages_of_version(ctx.db(), version.id).await?)
}

pub(super) async fn version_download_urls(
    ctx: &Context<'_>,
    version: &ModelVersion,
    expires_in_seconds: i32,
) -> Result<Vec<ArtifactDownloadUrl>> {
    let app = ctx.app();
    let ttl = rules::url_ttl(expires_in_seconds, app.config.max_signed_url_secs)?;
    let caller = ctx.caller()?;
    let rows = artifacts::list(ctx.db(), ArtifactSet::Version(version.id), None).await?;
    let mut out = Vec::with_capacity(rows.len());
    for artifact in rows {
        let signed = rules::signed_download_url(app, caller, &artifact, ttl, ctx.origin()).await?;
        out.push(ArtifactDownloadUrl {
            artifact,
            url: signed.url,
            expires_at: signed.expires_at,
        });
    }
    Ok(out)
}

#[derive(Default)]
pub struct ArtifactQuery;

#[Object]
impl ArtifactQuery {
    /// An available artifact by id.
    async fn artifact(&self, ctx: &Context<'_>, id: Id) -> Result<Artifact> {
        Ok(
            rules::visible_artifact(ctx.app(), ctx.caller()?, id, Role::Viewer)
                .await?
                .0,
        )
    }
}

#[derive(InputObject)]
pub struct ArtifactIdInput {
    id: Id,
}

#[derive(SimpleObject)]
pub struct ArtifactPayload {
    artifact: Artifact,
}

#[derive(SimpleObject)]
pub struct ArtifactPackagePayload {
    package: PackageRow,
}

#[derive(Default)]
pub struct ArtifactMutation;

#[Object]
impl ArtifactMutation {
    /// Current flag, label and metadata; label and metadata are fixed once the version is
    /// published.
    async fn update_artifact(
        &self,
        ctx: &Context<'_>,
        input: UpdateArtifactInput,
    ) -> Result<ArtifactPayload> {
        let artifact = rules::update(ctx.app(), ctx.caller()?, input.into()).await?;
        Ok(ArtifactPayload { artifact })
    }

    /// Marks the artifact DELETED; refused on a published version.
    async fn delete_artifact(
        &self,
        ctx: &Context<'_>,
        input: ArtifactIdInput,
    ) -> Result<ArtifactPayload> {
        let artifact = rules::delete(ctx.app(), ctx.caller()?, input.id).await?;
        Ok(ArtifactPayload { artifact })
    }

    async fn create_artifact_package(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactPackageInput,
    ) -> Result<ArtifactPackagePayload> {
        let package = rules::create_package(ctx.app(), ctx.caller()?, input.into()).await?;
        Ok(ArtifactPackagePayload { package })
    }
}

/// Only the fields given change; null clears a nullable one.
#[derive(Debug, InputObject)]
pub struct UpdateArtifactInput {
    pub id: Id,
    /// True makes this the model's current artifact (the previous one stops being current).
    pub is_current: Option<bool>,
    pub version_label: MaybeUndefined<String>,
    pub metadata: MaybeUndefined<JsonText>,
}

impl From<UpdateArtifactInput> for ArtifactUpdate {
    fn from(input: UpdateArtifactInput) -> Self {
        ArtifactUpdate {
            id: input.id,
            is_current: input.is_current,
            version_label: super::patch(input.version_label),
            metadata: super::patch(input.metadata),
        }
    }
}

#[derive(Debug, InputObject)]
pub struct PackageMemberInput {
    pub artifact_id: Id,
    /// What the file is in the package: `weights`, `tokenizer`, `config`… (lower-case).
    pub role: String,
}

impl From<PackageMemberInput> for PackageMember {
    fn from(input: PackageMemberInput) -> Self {
        PackageMember {
            artifact_id: input.artifact_id,
            role: input.role,
        }
    }
}

#[derive(Debug, InputObject)]
pub struct CreateArtifactPackageInput {
    pub version_id: Id,
    /// How the package deploys (`safetensors`, `gguf`, `onnx`, `mlflow`…).
    pub format: String,
    pub primary: PackageMemberInput,
    pub sidecars: Option<Vec<PackageMemberInput>>,
}

impl From<CreateArtifactPackageInput> for NewPackage {
    fn from(input: CreateArtifactPackageInput) -> Self {
        NewPackage {
            version_id: input.version_id,
            format: input.format,
            primary: input.primary.into(),
            sidecars: input
                .sidecars
                .map(|v| v.into_iter().map(Into::into).collect()),
        }
    }
}
