//! Opening, listing, aborting and expiring upload sessions, and where a direct upload goes.

use super::*;
use crate::db::page::{Page, PageRequest};

pub(super) const MIN_TTL_SECS: i64 = 60;

pub(super) const MAX_TTL_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug)]
pub struct NewUploadSession {
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
    /// Replace the version's file of the same name when the upload completes; without it, a
    /// name the version already holds is CONFLICT.
    pub replace: bool,
}

/// Opens a session (chunked or direct) after checking everything the artifact will need.
pub async fn create(
    app: &App,
    caller: &Principal,
    input: NewUploadSession,
    method: UploadMethod,
) -> Result<UploadSession, AppError> {
    let model = visible_model(&app.db, caller, input.model_id, Role::Editor).await?;
    if let Some(version_id) = input.version_id {
        let (version, _) = visible_version(&app.db, caller, version_id, Role::Editor)
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) => {
                    AppError::bad_input("versionId", "no such version of this model")
                }
                other => other,
            })?;
        if version.model_id != model.id {
            return Err(AppError::bad_input(
                "versionId",
                "no such version of this model",
            ));
        }
        artifact_rules::require_mutable(&version)?;
    }
    let fields = ArtifactFields::check(
        &input.file_name,
        input.content_type.as_deref(),
        input.version_label,
        input.training_run_id,
        input.external_uri,
        input.metadata,
    )?;
    if let Some(version_id) = input.version_id {
        artifact_rules::check_name_free(app, version_id, &fields.file_name, input.replace).await?;
    }
    let expected = input
        .sha256
        .as_deref()
        .map(|d| storage::parse_sha256("sha256", d))
        .transpose()?;
    let total = input.total_size_bytes.0;
    let max_total = app.config.max_artifact_bytes;
    let (chunk_size, chunk_count) = match method {
        UploadMethod::Chunked => {
            plan_chunks(total, input.chunk_size_bytes.map(|c| c.0), max_total)?
        }
        UploadMethod::Direct => {
            check_total(total, max_total)?;
            // One object, no chunks: a chunk size is meaningless here, but a wrong one is
            // still the client's mistake to hear about.
            if let Some(size) = input.chunk_size_bytes {
                check_chunk_size(size.0)?;
            }
            (total.max(1), 1)
        }
    };
    let ttl = match input.expires_in_seconds {
        Some(secs) if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&i64::from(secs)) => {
            return Err(AppError::bad_input(
                "expiresInSeconds",
                format!("must be between {MIN_TTL_SECS} and {MAX_TTL_SECS}"),
            ));
        }
        Some(secs) => i64::from(secs),
        None => app.config.upload_ttl_secs as i64,
    };
    let now = Timestamp::now();
    let session = UploadSession {
        id: Id::new(),
        model_id: model.id,
        version_id: input.version_id,
        method,
        file_name: fields.file_name,
        content_type: fields.content_type,
        total_size_bytes: BigInt(total),
        expected_sha256: expected,
        chunk_size_bytes: BigInt(chunk_size),
        chunk_count,
        artifact_kind: input.artifact_kind.unwrap_or(ArtifactKind::ModelBinary),
        version_label: fields.version_label,
        training_run_id: fields.training_run_id,
        is_current: input.is_current.unwrap_or(false),
        external_uri: fields.external_uri,
        metadata: fields.metadata,
        status: UploadStatus::Initialized,
        failure_reason: None,
        artifact_id: None,
        created_by: Some(caller.key.id),
        created_at: now,
        updated_at: now,
        expires_at: Timestamp::from(now.to_utc() + Duration::from_secs(ttl as u64)),
        completed_at: None,
        replace_existing: input.replace,
    };
    app.db
        .transaction(async |tx| uploads::insert(tx, &session).await)
        .await?;
    Ok(session)
}

pub async fn abort(app: &App, caller: &Principal, id: Id) -> Result<UploadSession, AppError> {
    let (session, _) = visible_session(app, caller, id, Role::Editor).await?;
    if !close(
        app,
        session.id,
        UploadStatus::Failed,
        Some("aborted".into()),
    )
    .await?
    {
        require_open_to_finish(&session)?;
    }
    discard_parts(app, id).await;
    uploads::find(&app.db, id)
        .await?
        .ok_or(AppError::NotFound("upload session"))
}

/// Ends an open session as FAILED or EXPIRED; `false` when another request finished it first.
pub(super) async fn close(
    app: &App,
    id: Id,
    status: UploadStatus,
    reason: Option<String>,
) -> Result<bool, AppError> {
    app.db
        .transaction(async |tx| uploads::close(tx, id, status, reason).await)
        .await
}

/// Marks one expired session and removes its parts: the expiry job's unit of work.
pub async fn expire(app: &App, id: Id) -> Result<bool, AppError> {
    let closed = close(app, id, UploadStatus::Expired, None).await?;
    if closed {
        discard_parts(app, id).await;
    }
    Ok(closed)
}

/// Sessions the expiry job handles per statement.
pub(super) const EXPIRY_BATCH: i64 = 100;

/// Marks open sessions whose time ran out as EXPIRED and removes their chunks.
pub async fn expire_overdue(app: &App) -> Result<usize, AppError> {
    let mut done = 0;
    loop {
        let ids = uploads::expired(&app.db, Timestamp::now(), EXPIRY_BATCH).await?;
        if ids.is_empty() {
            return Ok(done);
        }
        let mut progressed = false;
        for id in &ids {
            if expire(app, *id).await? {
                done += 1;
                progressed = true;
            }
        }
        if !progressed || (ids.len() as i64) < EXPIRY_BATCH {
            return Ok(done);
        }
    }
}

/// One page of the sessions of a model the caller may read, with their received chunks.
pub async fn list(
    app: &App,
    caller: &Principal,
    filter: SessionQuery,
    page: &PageRequest,
    count_total: bool,
    origin: &str,
) -> Result<Page<SessionState>, AppError> {
    let model = visible_model(&app.db, caller, filter.model_id, Role::Viewer).await?;
    let digest = filter
        .sha256
        .as_deref()
        .map(|d| storage::parse_sha256("sha256", d))
        .transpose()?;
    let statuses = filter.status.unwrap_or_default();
    let sessions = uploads::page(
        &app.db,
        &uploads::SessionFilter {
            model_id: model.id,
            version_id: filter.version_id,
            statuses: &statuses,
            sha256: digest.as_deref(),
            now: Timestamp::now(),
        },
        page,
        count_total,
    )
    .await?;
    let ids: Vec<Id> = sessions.items.iter().map(|s| s.id).collect();
    let mut received = uploads::received(&app.db, &ids).await?;
    Ok(sessions.map(|s| {
        let chunks = received.remove(&s.id).unwrap_or_default();
        state_of(s, chunks, origin)
    }))
}

/// Where the client PUTs a direct upload's bytes: the storage service's presigned URL where it
/// signs one, else this server's signed URL. Valid as long as the session.
pub async fn direct_upload_url(
    app: &App,
    session: &UploadSession,
    origin: &str,
) -> Result<String, AppError> {
    let remaining = (session.expires_at.to_utc() - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    if app.storage.presigns() {
        return app
            .storage
            .presign_write(&direct_key(session.id), remaining)
            .await;
    }
    let key = session
        .created_by
        .ok_or_else(|| AppError::internal("an upload session without its creating key"))?;
    let path = routes::direct_upload_path(session.id);
    // Valid as long as the session, but never longer than a signed URL may live.
    let longest = chrono::Utc::now().timestamp()
        + i64::try_from(app.config.max_signed_url_secs).unwrap_or(i64::MAX / 2);
    let expires = session.expires_at.to_utc().timestamp().min(longest);
    let query = app.signer.sign("PUT", &path, expires, key);
    Ok(format!("{origin}{path}?{query}"))
}

#[derive(Debug)]
pub struct SessionQuery {
    pub model_id: Id,
    pub version_id: Option<Id>,
    /// Sessions in any of these states (as `status` reports them).
    pub status: Option<Vec<UploadStatus>>,
    /// Sessions expecting this digest: how a client finds the session to resume.
    pub sha256: Option<String>,
}
