use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::ContextExt;
use super::artifacts::ArtifactView;
use super::models::ModelView;
use super::pagination::{self, Conn};
use super::versions::VersionView;
use crate::db::page::Cursor;
use crate::domain::uploads::{
    self, Completion, NewUploadSession, Progress, SessionQuery, SessionState,
};
use crate::error::AppError;
use crate::graphql::loaders::{ModelKey, VersionKey};
use crate::values::{ArtifactKind, Role, UploadMethod, UploadStatus};
use crate::values::{BigInt, Id, JsonText, Timestamp};

/// The derived fields are computed when the view is made: every field of one answer reads the
/// same instant.
pub struct UploadSessionView {
    state: SessionState,
    progress: Progress,
}

impl From<SessionState> for UploadSessionView {
    fn from(state: SessionState) -> Self {
        let progress = state.progress();
        UploadSessionView { state, progress }
    }
}

/// A resumable upload: what was announced, what arrived, what is missing.
#[Object(name = "UploadSession")]
impl UploadSessionView {
    pub async fn id(&self) -> &Id {
        &self.state.session.id
    }

    async fn model(&self, ctx: &Context<'_>) -> Result<ModelView> {
        Ok(ctx
            .loader()
            .load_one(ModelKey(self.state.session.model_id))
            .await?
            .map(ModelView)
            .ok_or(AppError::NotFound("model"))?)
    }

    async fn version(&self, ctx: &Context<'_>) -> Result<Option<VersionView>> {
        match self.state.session.version_id {
            Some(id) => Ok(ctx
                .loader()
                .load_one(VersionKey(id))
                .await?
                .map(VersionView)),
            None => Ok(None),
        }
    }

    async fn method(&self) -> UploadMethod {
        self.state.session.method
    }

    async fn file_name(&self) -> &str {
        &self.state.session.file_name
    }

    async fn content_type(&self) -> &str {
        &self.state.session.content_type
    }

    async fn total_size_bytes(&self) -> BigInt {
        self.state.session.total_size_bytes
    }

    async fn expected_sha256(&self) -> Option<&str> {
        self.state.session.expected_sha256.as_deref()
    }

    /// Every chunk but the last has exactly this many bytes.
    async fn chunk_size_bytes(&self) -> BigInt {
        self.state.session.chunk_size_bytes
    }

    async fn chunk_count(&self) -> i64 {
        self.state.session.chunk_count
    }

    async fn artifact_kind(&self) -> ArtifactKind {
        self.state.session.artifact_kind
    }

    async fn version_label(&self) -> Option<&str> {
        self.state.session.version_label.as_deref()
    }

    async fn training_run_id(&self) -> Option<&str> {
        self.state.session.training_run_id.as_deref()
    }

    async fn is_current(&self) -> bool {
        self.state.session.is_current
    }

    async fn external_uri(&self) -> Option<&str> {
        self.state.session.external_uri.as_deref()
    }

    async fn metadata(&self) -> Option<&JsonText> {
        self.state.session.metadata.as_ref()
    }

    /// EXPIRED as soon as `expiresAt` passed.
    async fn status(&self) -> UploadStatus {
        self.progress.status
    }

    /// Why the session FAILED (a digest mismatch, an abort).
    async fn failure_reason(&self) -> Option<&str> {
        self.state.session.failure_reason.as_deref()
    }

    async fn received_bytes(&self) -> BigInt {
        BigInt(self.progress.received_bytes)
    }

    /// Indexes of the chunks stored so far, ascending.
    async fn received_chunks(&self) -> &[i64] {
        &self.progress.received_chunks
    }

    /// Indexes still to send, ascending: what a resuming client uploads.
    async fn missing_chunks(&self) -> &[i64] {
        &self.progress.missing_chunks
    }

    /// `PUT` each chunk here, `{index}` replaced by its zero-based index (chunked uploads).
    async fn chunk_url_template(&self) -> Option<&str> {
        self.state.chunk_url_template.as_deref()
    }

    /// The artifact a COMPLETED session created.
    async fn artifact(&self, ctx: &Context<'_>) -> Result<Option<ArtifactView>> {
        match self.state.session.artifact_id {
            Some(id) => Ok(crate::db::artifacts::find(ctx.db(), id)
                .await?
                .map(ArtifactView)),
            None => Ok(None),
        }
    }

    async fn expires_at(&self) -> Timestamp {
        self.state.session.expires_at
    }

    async fn created_at(&self) -> Timestamp {
        self.state.session.created_at
    }

    async fn updated_at(&self) -> Timestamp {
        self.state.session.updated_at
    }

    async fn completed_at(&self) -> Option<Timestamp> {
        self.state.session.completed_at
    }
}

fn session_cursor(state: &SessionState) -> Cursor {
    Cursor {
        key: String::new(),
        id: state.session.id,
    }
}

#[derive(Default)]
pub struct UploadQuery;

#[Object]
impl UploadQuery {
    async fn upload_session(&self, ctx: &Context<'_>, id: Id) -> Result<UploadSessionView> {
        session_view(ctx, id).await
    }

    /// A model's upload sessions, newest first: how a client finds the one to resume.
    async fn upload_sessions(
        &self,
        ctx: &Context<'_>,
        filter: UploadSessionFilter,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<UploadSessionView>> {
        let page = pagination::request(first, after, last, before)?;
        let caller = ctx.caller()?;
        let sessions = uploads::list(
            ctx.app(),
            caller,
            filter.into(),
            &page,
            ctx.wants_total(),
            ctx.origin(),
        )
        .await?;
        Ok(pagination::connection(sessions, session_cursor))
    }
}

#[derive(SimpleObject)]
pub struct UploadSessionPayload {
    upload_session: UploadSessionView,
}

#[derive(SimpleObject)]
pub struct CompleteUploadSessionPayload {
    artifact: ArtifactView,
    upload_session: UploadSessionView,
}

#[derive(async_graphql::InputObject)]
pub struct UploadSessionIdInput {
    id: Id,
}

/// A header the client must send with its direct upload.
#[derive(SimpleObject)]
pub struct HttpHeader {
    name: String,
    value: String,
}

#[derive(SimpleObject)]
pub struct DirectUploadPayload {
    upload_session: UploadSessionView,
    /// `PUT` the whole file here, then call `confirmDirectUpload`.
    upload_url: String,
    method: String,
    headers: Vec<HttpHeader>,
    expires_at: Timestamp,
}

#[derive(Default)]
pub struct UploadMutation;

/// A session the caller may read, with its received chunks.
async fn session_view(ctx: &Context<'_>, id: Id) -> Result<UploadSessionView> {
    let app = ctx.app();
    let (session, _) = uploads::visible_session(app, ctx.caller()?, id, Role::Viewer).await?;
    Ok(uploads::state(app, session, ctx.origin()).await?.into())
}

#[Object]
impl UploadMutation {
    /// Step 1 of a chunked upload: the server picks the chunk size and answers where to send
    /// each chunk.
    async fn create_upload_session(
        &self,
        ctx: &Context<'_>,
        input: CreateUploadSessionInput,
    ) -> Result<UploadSessionPayload> {
        let app = ctx.app();
        let session =
            uploads::create(app, ctx.caller()?, input.into(), UploadMethod::Chunked).await?;
        let upload_session = uploads::state(app, session, ctx.origin()).await?.into();
        Ok(UploadSessionPayload { upload_session })
    }

    /// Step 3: assembles and verifies the chunks and creates the artifact. With a chunk
    /// missing: PRECONDITION_FAILED naming them; with another digest: CHECKSUM_MISMATCH.
    async fn complete_upload_session(
        &self,
        ctx: &Context<'_>,
        input: CompleteUploadSessionInput,
    ) -> Result<CompleteUploadSessionPayload> {
        let id = input.id;
        let artifact = uploads::complete(ctx.app(), ctx.caller()?, input.into()).await?;
        let upload_session = session_view(ctx, id).await?;
        Ok(CompleteUploadSessionPayload {
            artifact: ArtifactView(artifact),
            upload_session,
        })
    }

    /// Discards an open session and its chunks (it becomes FAILED).
    async fn abort_upload_session(
        &self,
        ctx: &Context<'_>,
        input: UploadSessionIdInput,
    ) -> Result<UploadSessionPayload> {
        uploads::abort(ctx.app(), ctx.caller()?, input.id).await?;
        let upload_session = session_view(ctx, input.id).await?;
        Ok(UploadSessionPayload { upload_session })
    }

    /// A single PUT of the whole file straight to storage (presigned where the service signs,
    /// else a signed URL of this server); `confirmDirectUpload` then verifies it.
    async fn create_direct_upload(
        &self,
        ctx: &Context<'_>,
        input: CreateUploadSessionInput,
    ) -> Result<DirectUploadPayload> {
        let app = ctx.app();
        let session =
            uploads::create(app, ctx.caller()?, input.into(), UploadMethod::Direct).await?;
        let upload_url = uploads::direct_upload_url(app, &session, ctx.origin()).await?;
        let headers = vec![HttpHeader {
            name: "Content-Type".into(),
            value: session.content_type.clone(),
        }];
        let expires_at = session.expires_at;
        let upload_session = uploads::state(app, session, ctx.origin()).await?.into();
        Ok(DirectUploadPayload {
            upload_session,
            upload_url,
            method: "PUT".into(),
            headers,
            expires_at,
        })
    }

    /// Checks the directly uploaded object, hashes it and creates the artifact: the same
    /// verification as `completeUploadSession`.
    async fn confirm_direct_upload(
        &self,
        ctx: &Context<'_>,
        input: CompleteUploadSessionInput,
    ) -> Result<CompleteUploadSessionPayload> {
        let id = input.id;
        let artifact = uploads::complete(ctx.app(), ctx.caller()?, input.into()).await?;
        let upload_session = session_view(ctx, id).await?;
        Ok(CompleteUploadSessionPayload {
            artifact: ArtifactView(artifact),
            upload_session,
        })
    }
}

#[derive(Debug, InputObject)]
pub struct CreateUploadSessionInput {
    pub model_id: Id,
    /// The version the artifact belongs to; it must be a DRAFT.
    pub version_id: Option<Id>,
    /// The file's name (no folders): what downloads are saved as.
    pub file_name: String,
    /// Default `application/octet-stream`.
    pub content_type: Option<String>,
    pub total_size_bytes: BigInt,
    /// The expected SHA-256 (hex); may also be given at completion.
    pub sha256: Option<String>,
    /// Default MODEL_BINARY.
    pub artifact_kind: Option<ArtifactKind>,
    pub version_label: Option<String>,
    pub training_run_id: Option<String>,
    /// Make the artifact the model's current one when it completes.
    pub is_current: Option<bool>,
    pub external_uri: Option<String>,
    /// A JSON object; its `format` key, when a string, becomes the artifact's format.
    pub metadata: Option<JsonText>,
    /// Ask for another chunk size (64 KiB to 1 GiB); default 16 MiB, grown so that a file
    /// needs at most 10,000 chunks.
    pub chunk_size_bytes: Option<BigInt>,
    /// How long the session stays open (60 s to 7 days); default 24 h.
    pub expires_in_seconds: Option<i32>,
    /// Replace the version's file of the same name when the upload completes (a DRAFT version
    /// only). Without it, a file name the version already holds is CONFLICT.
    #[graphql(default = false)]
    pub replace: bool,
}

impl From<CreateUploadSessionInput> for NewUploadSession {
    fn from(input: CreateUploadSessionInput) -> Self {
        NewUploadSession {
            model_id: input.model_id,
            version_id: input.version_id,
            file_name: input.file_name,
            content_type: input.content_type,
            total_size_bytes: input.total_size_bytes,
            sha256: input.sha256,
            artifact_kind: input.artifact_kind,
            version_label: input.version_label,
            training_run_id: input.training_run_id,
            is_current: input.is_current,
            external_uri: input.external_uri,
            metadata: input.metadata,
            chunk_size_bytes: input.chunk_size_bytes,
            expires_in_seconds: input.expires_in_seconds,
            replace: input.replace,
        }
    }
}

#[derive(Debug, InputObject)]
pub struct UploadSessionFilter {
    pub model_id: Id,
    pub version_id: Option<Id>,
    /// Sessions in any of these states (as `status` reports them).
    pub status: Option<Vec<UploadStatus>>,
    /// Sessions expecting this digest: how a client finds the session to resume.
    pub sha256: Option<String>,
}

impl From<UploadSessionFilter> for SessionQuery {
    fn from(input: UploadSessionFilter) -> Self {
        SessionQuery {
            model_id: input.model_id,
            version_id: input.version_id,
            status: input.status,
            sha256: input.sha256,
        }
    }
}

#[derive(Debug, InputObject)]
pub struct CompleteUploadSessionInput {
    pub id: Id,
    /// The expected SHA-256, if not given when the session was created.
    pub sha256: Option<String>,
    /// Overrides the session's `isCurrent`.
    pub is_current: Option<bool>,
}

impl From<CompleteUploadSessionInput> for Completion {
    fn from(input: CompleteUploadSessionInput) -> Self {
        Completion {
            id: input.id,
            sha256: input.sha256,
            is_current: input.is_current,
        }
    }
}
