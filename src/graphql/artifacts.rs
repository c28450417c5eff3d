use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject};

use super::ContextExt;
use super::models::ModelView;
use super::pagination::{self, Conn};
use super::versions::VersionView;
use crate::db::artifacts::{self, Artifact, ArtifactSet, PackageRow};
use crate::db::model_versions::ModelVersion;
use crate::db::page::Cursor;
use crate::domain::artifacts::{self as rules, ArtifactUpdate, NewPackage, PackageMember};
use crate::error::AppError;
use crate::graphql::loaders::{ModelKey, VersionKey};
use crate::values::{ArtifactKind, ArtifactStatus, Role};
use crate::values::{BigInt, Id, JsonText, Timestamp};

/// A URL that works without an API key until `expiresAt`.
#[derive(SimpleObject)]
pub struct SignedUrl {
    pub url: String,
    pub expires_at: Timestamp,
}

/// One artifact's signed download URL, for fetching a whole version.
#[derive(SimpleObject)]
pub struct ArtifactDownloadUrl {
    pub artifact: ArtifactView,
    pub url: String,
    pub expires_at: Timestamp,
}

pub struct ArtifactView(pub Artifact);

impl From<Artifact> for ArtifactView {
    fn from(artifact: Artifact) -> Self {
        ArtifactView(artifact)
    }
}

/// One stored file of a model, verified by its SHA-256.
#[Object(name = "Artifact")]
impl ArtifactView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    /// This file's role in its package (`weights`, `tokenizer`, `config`…).
    async fn package_role(&self) -> Option<&str> {
        self.0.package_role.as_deref()
    }

    async fn kind(&self) -> ArtifactKind {
        self.0.kind
    }

    /// A human-readable label for this file (`fp16`, `v2.0.0`), free-form.
    async fn version_label(&self) -> Option<&str> {
        self.0.version_label.as_deref()
    }

    async fn file_name(&self) -> &str {
        &self.0.file_name
    }

    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    async fn size_bytes(&self) -> BigInt {
        self.0.size_bytes
    }

    /// Lowercase hex SHA-256 of the bytes, computed by the server.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }

    /// The serialization format (`safetensors`, `gguf`, `onnx`…), from metadata or the file name.
    async fn format(&self) -> Option<&str> {
        self.0.format.as_deref()
    }

    /// `fs`, `s3` or `memory`.
    async fn storage_backend(&self) -> &str {
        &self.0.storage_backend
    }

    async fn storage_uri(&self) -> &str {
        &self.0.storage_uri
    }

    /// Where the same file also lives outside this registry, as given at upload.
    async fn external_uri(&self) -> Option<&str> {
        self.0.external_uri.as_deref()
    }

    async fn training_run_id(&self) -> Option<&str> {
        self.0.training_run_id.as_deref()
    }

    async fn status(&self) -> ArtifactStatus {
        self.0.status
    }

    /// Whether this is the model's current artifact (at most one is).
    async fn is_current(&self) -> bool {
        self.0.is_current
    }

    async fn metadata(&self) -> Option<&JsonText> {
        self.0.metadata.as_ref()
    }

    /// The API key that uploaded it.
    async fn uploaded_by(&self) -> Option<Id> {
        self.0.uploaded_by
    }

    async fn uploaded_at(&self) -> Timestamp {
        self.0.uploaded_at
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

    async fn version(&self, ctx: &Context<'_>) -> Result<Option<VersionView>> {
        match self.0.version_id {
            Some(id) => Ok(ctx
                .loader()
                .load_one(VersionKey(id))
                .await?
                .map(VersionView)),
            None => Ok(None),
        }
    }

    /// The package this file deploys with, if any.
    async fn package(&self, ctx: &Context<'_>) -> Result<Option<PackageView>> {
        match self.0.package_id {
            Some(id) => Ok(artifacts::find_package(ctx.db(), id)
                .await?
                .map(PackageView)),
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
            rules::signed_download_url(app, ctx.caller()?, &self.0, ttl, ctx.origin()).await?;
        Ok(SignedUrl {
            url: signed.url,
            expires_at: signed.expires_at,
        })
    }
}

pub struct PackageView(pub PackageRow);

/// A primary artifact and its sidecars: one unit that deploys together.
#[Object(name = "ArtifactPackage")]
impl PackageView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    async fn format(&self) -> &str {
        &self.0.format
    }

    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }

    async fn version(&self, ctx: &Context<'_>) -> Result<VersionView> {
        Ok(ctx
            .loader()
            .load_one(VersionKey(self.0.version_id))
            .await?
            .map(VersionView)
            .ok_or(AppError::NotFound("model version"))?)
    }

    async fn primary(&self, ctx: &Context<'_>) -> Result<Option<ArtifactView>> {
        Ok(artifacts::find(ctx.db(), self.0.primary_artifact_id)
            .await?
            .map(ArtifactView))
    }

    /// Every file of the package, the primary first; each carries its `packageRole`.
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<ArtifactView>> {
        let members = rules::package_members(ctx.app(), &self.0).await?;
        Ok(members.into_iter().map(ArtifactView).collect())
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
) -> Result<Conn<ArtifactView>> {
    let page = pagination::request(page.0, page.1, page.2, page.3)?;
    let rows = artifacts::page(ctx.db(), set, kind, &page, ctx.wants_total()).await?;
    Ok(pagination::connection(rows, artifact_cursor))
}

pub(super) async fn version_packages(
    ctx: &Context<'_>,
    version: &ModelVersion,
) -> Result<Vec<PackageView>> {
    let packages = artifacts::packages_of_version(ctx.db(), version.id).await?;
    Ok(packages.into_iter().map(PackageView).collect())
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
            artifact: ArtifactView(artifact),
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
    async fn artifact(&self, ctx: &Context<'_>, id: Id) -> Result<ArtifactView> {
        let (artifact, _) =
            rules::visible_artifact(ctx.app(), ctx.caller()?, id, Role::Viewer).await?;
        Ok(ArtifactView(artifact))
    }
}

#[derive(InputObject)]
pub struct ArtifactIdInput {
    id: Id,
}

#[derive(SimpleObject)]
pub struct ArtifactPayload {
    artifact: ArtifactView,
}

#[derive(SimpleObject)]
pub struct ArtifactPackagePayload {
    package: PackageView,
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
        Ok(ArtifactPayload {
            artifact: ArtifactView(artifact),
        })
    }

    /// Marks the artifact DELETED; refused on a published version.
    async fn delete_artifact(
        &self,
        ctx: &Context<'_>,
        input: ArtifactIdInput,
    ) -> Result<ArtifactPayload> {
        let artifact = rules::delete(ctx.app(), ctx.caller()?, input.id).await?;
        Ok(ArtifactPayload {
            artifact: ArtifactView(artifact),
        })
    }

    async fn create_artifact_package(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactPackageInput,
    ) -> Result<ArtifactPackagePayload> {
        let package = rules::create_package(ctx.app(), ctx.caller()?, input.into()).await?;
        Ok(ArtifactPackagePayload {
            package: PackageView(package),
        })
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
