//! The three-step upload: open a session, receive chunks (or one direct object), complete.
//!
//! A session lives in the database and its chunks in shared storage, so any replica may take
//! any chunk or complete any session. Completion reads the parts in order into the
//! content-addressed blob while hashing, and only a matching digest commits the object and the
//! artifact; a mismatch leaves neither.

use std::time::Duration;

use async_graphql::InputObject;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::auth::Principal;
use crate::db::artifacts::Artifact;
use crate::db::models::Model;
use crate::db::uploads::{self, Received, UploadSession};
use crate::db::{artifacts, blobs, model_versions, models};
use crate::domain::artifacts::{self as artifact_rules, ArtifactFields};
use crate::domain::models::{self as model_rules, visible_model};
use crate::domain::prehash;
use crate::domain::versions::visible_version;
use crate::error::AppError;
use crate::storage::{
    self, BackgroundHasher, blob_key, chunk_key, direct_key, hex_digest, upload_prefix,
};
use crate::values::{
    ArtifactKind, ArtifactStatus, ModelStatus, Role, UploadMethod, UploadStatus, VersionLifecycle,
};
use crate::values::{BigInt, Id, JsonText, Timestamp};

pub const DEFAULT_CHUNK_SIZE: i64 = 16 * 1024 * 1024;
pub const MIN_CHUNK_SIZE: i64 = 64 * 1024;
/// 1 GiB: 10,000 chunks of it hold the default 5 TiB limit (S3 allows parts up to 5 GiB).
pub const MAX_CHUNK_SIZE: i64 = 1024 * 1024 * 1024;
/// Keeps the received-chunk list of one session small enough to answer in one response.
pub const MAX_CHUNKS: i64 = 10_000;
const MIN_TTL_SECS: i64 = 60;
const MAX_TTL_SECS: i64 = 7 * 24 * 3600;

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
}

#[derive(Debug, InputObject)]
pub struct CompleteUploadSessionInput {
    pub id: Id,
    /// The expected SHA-256, if not given when the session was created.
    pub sha256: Option<String>,
    /// Overrides the session's `isCurrent`.
    pub is_current: Option<bool>,
}

/// A session as clients see it, with what was received and what is still missing.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub session: UploadSession,
    pub received: Vec<Received>,
    /// `https://host/v1/uploads/{id}/chunks/{index}` with `{index}` left for the client.
    pub chunk_url_template: Option<String>,
}

/// EXPIRED as soon as the time ran out, even before the expiry job marked it.
pub fn status_now(session: &UploadSession) -> UploadStatus {
    if session.status.is_open() && session.expires_at <= Timestamp::now() {
        UploadStatus::Expired
    } else {
        session.status
    }
}

impl SessionState {
    pub fn effective_status(&self) -> UploadStatus {
        status_now(&self.session)
    }

    pub fn received_total(&self) -> i64 {
        match self.session.status {
            UploadStatus::Completed => self.session.total_size_bytes.0,
            _ => self.received.iter().map(|c| c.size).sum(),
        }
    }

    pub fn received_indexes(&self) -> Vec<i64> {
        match self.session.status {
            UploadStatus::Completed => (0..self.session.chunk_count).collect(),
            _ => self.received.iter().map(|c| c.index).collect(),
        }
    }

    pub fn missing(&self) -> Vec<i64> {
        if self.session.status == UploadStatus::Completed {
            return Vec::new();
        }
        let mut have = self.received.iter().map(|c| c.index).peekable();
        (0..self.session.chunk_count)
            .filter(|i| {
                while have.peek().is_some_and(|h| h < i) {
                    have.next();
                }
                have.peek() != Some(i)
            })
            .collect()
    }

    /// The REST sidecar's answer: the same fields and names as the GraphQL type.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.session;
        let ts = |t: Timestamp| async_graphql::ScalarType::to_value(&t).into_json().ok();
        serde_json::json!({
            "id": s.id,
            "modelId": s.model_id,
            "versionId": s.version_id,
            "method": s.method.as_str(),
            "fileName": s.file_name,
            "contentType": s.content_type,
            "totalSizeBytes": s.total_size_bytes.0,
            "expectedSha256": s.expected_sha256,
            "chunkSizeBytes": s.chunk_size_bytes.0,
            "chunkCount": s.chunk_count,
            "artifactKind": s.artifact_kind.as_str(),
            "status": self.effective_status().as_str(),
            "failureReason": s.failure_reason,
            "receivedBytes": self.received_total(),
            "receivedChunks": self.received_indexes(),
            "missingChunks": self.missing(),
            "chunkUrlTemplate": self.chunk_url_template,
            "artifactId": s.artifact_id,
            "expiresAt": ts(s.expires_at),
            "createdAt": ts(s.created_at),
            "updatedAt": ts(s.updated_at),
            "completedAt": s.completed_at.and_then(ts),
        })
    }
}

/// The chunk size for a file: the one asked for (within bounds), else the default grown to
/// keep the chunk count at most [`MAX_CHUNKS`]. Every step is checked arithmetic: sizes come
/// from clients, and a wrapped count once let an upload of no bytes claim 8 EiB.
pub fn plan_chunks(total: i64, asked: Option<i64>, max_total: u64) -> Result<(i64, i64), AppError> {
    check_total(total, max_total)?;
    let size = match asked {
        Some(size) => check_chunk_size(size)?,
        None => {
            let needed = ceil_div(total, MAX_CHUNKS);
            let mib = 1024 * 1024;
            let size = ceil_div(needed, mib)
                .checked_mul(mib)
                .map_or(i64::MAX, |rounded| rounded.max(DEFAULT_CHUNK_SIZE));
            if size > MAX_CHUNK_SIZE {
                return Err(AppError::bad_input(
                    "totalSizeBytes",
                    format!(
                        "at most {} bytes fit in one upload",
                        MAX_CHUNK_SIZE * MAX_CHUNKS
                    ),
                ));
            }
            size
        }
    };
    let count = ceil_div(total, size);
    if count > MAX_CHUNKS {
        return Err(AppError::bad_input(
            if asked.is_some() {
                "chunkSizeBytes"
            } else {
                "totalSizeBytes"
            },
            format!(
                "a file of {total} bytes needs {count} chunks of {size} bytes; at most {MAX_CHUNKS} are allowed"
            ),
        ));
    }
    Ok((size, count))
}

/// An announced file size: not negative and within the instance's `--max-artifact-bytes`.
pub fn check_total(total: i64, max_total: u64) -> Result<(), AppError> {
    if total < 0 {
        return Err(AppError::bad_input(
            "totalSizeBytes",
            "must not be negative",
        ));
    }
    if total.unsigned_abs() > max_total {
        return Err(AppError::bad_input(
            "totalSizeBytes",
            format!("is larger than this registry's limit of {max_total} bytes per artifact"),
        ));
    }
    Ok(())
}

fn check_chunk_size(size: i64) -> Result<i64, AppError> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(AppError::bad_input(
            "chunkSizeBytes",
            format!("must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"),
        ))
    }
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`; cannot overflow.
fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// The exact length chunk `index` must have.
pub fn chunk_length(session: &UploadSession, index: i64) -> Result<i64, AppError> {
    if index < 0 || index >= session.chunk_count {
        return Err(AppError::bad_input(
            "index",
            format!(
                "chunk index {index} is out of range: this upload has chunks 0 to {}",
                session.chunk_count - 1
            ),
        ));
    }
    let size = session.chunk_size_bytes.0;
    Ok((session.total_size_bytes.0 - index * size).min(size))
}

/// A session whose model the caller may act on with `role`; otherwise NOT_FOUND.
pub async fn visible_session(
    app: &App,
    caller: &Principal,
    id: Id,
    role: Role,
) -> Result<(UploadSession, Model), AppError> {
    let session = uploads::find(&app.db, id)
        .await?
        .ok_or(AppError::NotFound("upload session"))?;
    let model = visible_model(&app.db, caller, session.model_id, role)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("upload session"),
            other => other,
        })?;
    Ok((session, model))
}

pub async fn state(
    app: &App,
    session: UploadSession,
    origin: &str,
) -> Result<SessionState, AppError> {
    let mut received = uploads::received(&app.db, &[session.id]).await?;
    Ok(state_of(
        session.clone(),
        received.remove(&session.id).unwrap_or_default(),
        origin,
    ))
}

fn state_of(session: UploadSession, received: Vec<Received>, origin: &str) -> SessionState {
    let chunk_url_template = (session.method == UploadMethod::Chunked)
        .then(|| format!("{origin}/v1/uploads/{}/chunks/{{index}}", session.id));
    SessionState {
        session,
        received,
        chunk_url_template,
    }
}

/// Opens a session (chunked or direct) after checking everything the artifact will need.
pub async fn create(
    app: &App,
    caller: &Principal,
    input: CreateUploadSessionInput,
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
    };
    app.db
        .transaction(async |tx| uploads::insert(tx, &session).await)
        .await?;
    Ok(session)
}

/// Refuses a session that takes no more bytes, with the status the REST sidecar answers.
fn require_open(session: &UploadSession) -> Result<(), AppError> {
    match status_now(session) {
        UploadStatus::Initialized | UploadStatus::Uploading => Ok(()),
        UploadStatus::Completed => Err(AppError::conflict(
            "this upload session is already completed",
        )),
        UploadStatus::Failed => Err(AppError::conflict(format!(
            "this upload session failed: {}",
            session.failure_reason.as_deref().unwrap_or("aborted")
        ))),
        UploadStatus::Expired => Err(AppError::Gone(
            "this upload session expired; start a new one".into(),
        )),
    }
}

/// The same refusal for a GraphQL mutation that would end the session: a session that
/// already ended is a failed precondition there, not a conflict over a resource.
fn require_open_to_finish(session: &UploadSession) -> Result<(), AppError> {
    require_open(session).map_err(|e| match e {
        AppError::Conflict(m) => AppError::precondition(m),
        other => other,
    })
}

/// Which chunk a request carries and what its headers say about the body.
pub struct ChunkRequest {
    pub index: i64,
    pub content_length: Option<u64>,
    pub content_digest: Option<String>,
}

/// Stores one chunk. The bytes stream to storage as they arrive and are committed only when
/// their length (and digest, when one is sent) is right; then the chunk is recorded.
pub async fn put_chunk<S, E>(
    app: &App,
    caller: &Principal,
    id: Id,
    info: ChunkRequest,
    body: S,
    body_error: impl Fn(E) -> AppError,
    origin: &str,
) -> Result<SessionState, AppError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let (session, _) = visible_session(app, caller, id, Role::Editor).await?;
    if session.method != UploadMethod::Chunked {
        return Err(AppError::conflict(
            "this is a direct upload: PUT the file to its upload URL",
        ));
    }
    require_open(&session)?;
    let index = info.index;
    let expected_len = chunk_length(&session, index)?;
    // The limit of a chunk body is the session's chunk size; under it, the length must match.
    let limit = session.chunk_size_bytes.0 as u64;
    let too_large = || {
        AppError::PayloadTooLarge(format!(
            "a chunk of this upload may be at most {limit} bytes"
        ))
    };
    if let Some(len) = info.content_length {
        if len > limit {
            return Err(too_large());
        }
        if len != expected_len as u64 {
            return Err(wrong_length(index, expected_len, len));
        }
    }
    let generation = Id::new();
    let key = chunk_key(session.id, index, generation);
    let mut received: u64 = 0;
    let mut hasher = info.content_digest.as_ref().map(|_| Sha256::new());
    app.storage
        .write_stream(
            &key,
            body,
            |frame| {
                match frame {
                    Some(frame) => {
                        received += frame.len() as u64;
                        if received > limit {
                            return Err(too_large());
                        }
                        if received > expected_len as u64 {
                            return Err(wrong_length(index, expected_len, received));
                        }
                        if let Some(h) = hasher.as_mut() {
                            h.update(frame);
                        }
                    }
                    None => {
                        if received != expected_len as u64 {
                            return Err(wrong_length(index, expected_len, received));
                        }
                        if let (Some(h), Some(expected)) = (hasher.take(), &info.content_digest) {
                            let actual = hex_digest(h);
                            if &actual != expected {
                                return Err(AppError::ChecksumMismatch {
                                    expected: expected.clone(),
                                    actual,
                                });
                            }
                        }
                    }
                }
                Ok(())
            },
            body_error,
        )
        .await?;
    let chunk = Received {
        index,
        size: expected_len,
        generation,
    };
    let (status, replaced) = app
        .db
        .transaction(async |tx| uploads::record_chunk(tx, session.id, chunk).await)
        .await?;
    if let Some(old) = replaced {
        app.storage
            .delete(&chunk_key(session.id, index, old))
            .await
            .ok();
    }
    if !status.is_open() {
        // Finished while this chunk streamed: its bytes belong to no session any more.
        app.storage.delete(&key).await.ok();
        let mut after = session;
        after.status = status;
        return Err(require_open(&after).unwrap_err());
    }
    prehash::nudge(app, id);
    let session = uploads::find(&app.db, id)
        .await?
        .ok_or(AppError::NotFound("upload session"))?;
    state(app, session, origin).await
}

fn wrong_length(index: i64, expected: i64, got: u64) -> AppError {
    AppError::bad_input(
        "body",
        format!("chunk {index} must be exactly {expected} bytes; this one has {got} or more"),
    )
}

/// Stores the object of a direct upload sent to this server's signed URL.
pub async fn put_direct<S, E>(
    app: &App,
    signer: &Principal,
    id: Id,
    content_length: Option<u64>,
    content_digest: Option<String>,
    body: S,
    body_error: impl Fn(E) -> AppError,
) -> Result<(), AppError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let (session, _) = visible_session(app, signer, id, Role::Editor).await?;
    if session.method != UploadMethod::Direct {
        return Err(AppError::NotFound("upload session"));
    }
    require_open(&session)?;
    let total = session.total_size_bytes.0 as u64;
    if content_length.is_some_and(|len| len > total) {
        return Err(AppError::PayloadTooLarge(format!(
            "this upload announced {total} bytes"
        )));
    }
    let mut received = 0u64;
    let mut hasher = content_digest.as_ref().map(|_| Sha256::new());
    app.storage
        .write_stream(
            &direct_key(session.id),
            body,
            |frame| match frame {
                Some(frame) => {
                    if let Some(h) = hasher.as_mut() {
                        h.update(frame);
                    }
                    received += frame.len() as u64;
                    if received > total {
                        return Err(AppError::PayloadTooLarge(format!(
                            "this upload announced {total} bytes"
                        )));
                    }
                    Ok(())
                }
                // A short body is not stored: the object is whole or absent.
                None if received < total => Err(AppError::bad_input(
                    "body",
                    format!("this upload announced {total} bytes; the body had {received}"),
                )),
                None => match (hasher.take(), &content_digest) {
                    (Some(h), Some(expected)) if hex_digest(h.clone()) != *expected => {
                        Err(AppError::ChecksumMismatch {
                            expected: expected.clone(),
                            actual: hex_digest(h),
                        })
                    }
                    _ => Ok(()),
                },
            },
            body_error,
        )
        .await
}

/// The stored objects of a session in order, with their lengths: the chunks named by
/// `received` (one snapshot of the chunk rows), or the direct upload's object.
fn part_keys(session: &UploadSession, received: &[Received]) -> Vec<(String, u64)> {
    match session.method {
        UploadMethod::Chunked => received
            .iter()
            .map(|c| (chunk_key(session.id, c.index, c.generation), c.size as u64))
            .collect(),
        UploadMethod::Direct => vec![(direct_key(session.id), session.total_size_bytes.0 as u64)],
    }
}

/// Reads the parts in order, hashing them on from `start` (a state that already covers the
/// first `start.1` parts) and, when given a writer, copying every part into it; answers the
/// digest.
async fn read_parts(
    app: &App,
    session: &UploadSession,
    received: &[Received],
    start: (Sha256, usize),
    mut writer: Option<&mut opendal::Writer>,
) -> Result<String, AppError> {
    let (state, covered) = start;
    let hasher = BackgroundHasher::resume(state);
    for (part, (key, len)) in part_keys(session, received).into_iter().enumerate() {
        if len == 0 || (part < covered && writer.is_none()) {
            continue;
        }
        let mut stream = app.storage.read_stream(&key, 0..len).await?;
        while let Some(frame) = stream.next().await {
            let frame = frame
                .map_err(|e| AppError::internal(format_args!("reading an upload part: {e}")))?;
            if part >= covered {
                hasher.update(frame.clone()).await?;
            }
            if let Some(writer) = writer.as_deref_mut() {
                writer.write(frame).await.map_err(storage::storage_error)?;
            }
        }
    }
    hasher.finish().await
}

/// The hashing head start this replica has for a session's parts (see `prehash`).
fn head_start(app: &App, session: &UploadSession, received: &[Received]) -> (Sha256, usize) {
    match session.method {
        UploadMethod::Chunked => app.hash_ahead.take(session.id, &prehash::parts(received)),
        UploadMethod::Direct => (Sha256::new(), 0),
    }
}

/// Checks that every part is there with its full length.
async fn require_parts(app: &App, state: &SessionState) -> Result<(), AppError> {
    let session = &state.session;
    match session.method {
        UploadMethod::Chunked => {
            let missing = state.missing();
            if !missing.is_empty() {
                let shown: Vec<String> = missing.iter().take(50).map(i64::to_string).collect();
                let more = missing.len().saturating_sub(50);
                return Err(AppError::precondition(format!(
                    "{} chunk(s) missing: {}{}",
                    missing.len(),
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )));
            }
            Ok(())
        }
        UploadMethod::Direct => {
            let total = session.total_size_bytes.0 as u64;
            match app.storage.size_of(&direct_key(session.id)).await? {
                Some(size) if size == total => Ok(()),
                Some(size) => Err(AppError::precondition(format!(
                    "the uploaded object has {size} bytes; {total} were announced"
                ))),
                None if total == 0 => Ok(()),
                None => Err(AppError::precondition(
                    "nothing was uploaded to the upload URL yet",
                )),
            }
        }
    }
}

/// Assembles, verifies and commits an upload: the artifact exists afterwards, or nothing does.
/// Completing a completed session answers its artifact, so a retried or concurrent complete
/// never makes a second one.
pub async fn complete(
    app: &App,
    caller: &Principal,
    input: CompleteUploadSessionInput,
) -> Result<Artifact, AppError> {
    let (session, model) = visible_session(app, caller, input.id, Role::Editor).await?;
    if let Some(artifact) = finished_artifact(app, &session).await? {
        return Ok(artifact);
    }
    let state = state(app, session, "").await?;
    require_open_to_finish(&state.session)?;
    let session = &state.session;
    let given = input
        .sha256
        .as_deref()
        .map(|d| storage::parse_sha256("sha256", d))
        .transpose()?;
    let expected = match (&session.expected_sha256, given) {
        (Some(a), Some(b)) if *a != b => {
            return Err(AppError::bad_input(
                "sha256",
                format!("differs from the digest {a} given when the session was created"),
            ));
        }
        (Some(a), _) => Some(a.clone()),
        (None, b) => b,
    };
    if let Some(version_id) = session.version_id {
        let (version, _) = visible_version(&app.db, caller, version_id, Role::Editor).await?;
        artifact_rules::require_mutable(&version)?;
    }
    require_parts(app, &state).await?;

    let digest = match assemble(app, session, &state.received, expected).await {
        Ok(digest) => digest,
        Err(err @ AppError::ChecksumMismatch { .. }) => {
            close(app, session.id, UploadStatus::Failed, Some(err.message())).await?;
            discard_parts(app, session.id).await;
            return Err(err);
        }
        Err(err) => {
            // A concurrent complete may have finished first and removed the parts under us.
            if let Some(current) = uploads::find(&app.db, session.id).await?
                && let Some(artifact) = finished_artifact(app, &current).await?
            {
                return Ok(artifact);
            }
            return Err(err);
        }
    };
    let artifact = commit(app, session, &model, &digest, input.is_current).await?;
    discard_parts(app, session.id).await;
    Ok(artifact)
}

/// Puts the parts' bytes in the content-addressed blob, proving they hash to `expected`;
/// answers the digest. Nothing is stored under a digest the bytes do not have.
async fn assemble(
    app: &App,
    session: &UploadSession,
    received: &[Received],
    expected: Option<String>,
) -> Result<String, AppError> {
    // Chunks this replica hashed while they arrived are not hashed again, once.
    let mut start = Some(head_start(app, session, received));
    // Without an announced digest, one read pass finds it; the writing pass then checks it.
    let expected = match expected {
        Some(digest) => digest,
        None => {
            read_parts(
                app,
                session,
                received,
                start.take().unwrap_or_default(),
                None,
            )
            .await?
        }
    };
    let start = start.unwrap_or_default();
    let covered = start.1;
    let key = blob_key(&expected);
    let size = session.total_size_bytes.0;
    let claimed = app
        .db
        .transaction(async |tx| blobs::claim(tx, &expected, size).await)
        .await?;
    let stored = claimed && app.storage.exists(&key).await?;
    if stored {
        // The bytes are already stored under this digest: only prove these parts match them.
        let actual = read_parts(app, session, received, start, None).await?;
        return if actual == expected {
            Ok(expected)
        } else {
            Err(AppError::ChecksumMismatch { expected, actual })
        };
    }
    // Read, hash and write overlap; the object is committed only once the digest matched.
    let started = std::time::Instant::now();
    let mut writer = app.storage.writer(&key).await?;
    let written = async {
        let actual = read_parts(app, session, received, start, Some(&mut writer)).await?;
        if actual != expected {
            return Err(AppError::ChecksumMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        Ok(())
    }
    .await;
    match written {
        Ok(()) => {
            writer.close().await.map_err(storage::storage_error)?;
            tracing::info!(
                session = %session.id,
                bytes = session.total_size_bytes.0,
                chunks_hashed_ahead = covered,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "assembled an upload"
            );
        }
        Err(err) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(key, error = %abort, "aborting a blob write failed");
            }
            return Err(err);
        }
    }
    Ok(expected)
}

async fn finished_artifact(
    app: &App,
    session: &UploadSession,
) -> Result<Option<Artifact>, AppError> {
    match (session.status, session.artifact_id) {
        (UploadStatus::Completed, Some(id)) => crate::db::artifacts::find(&app.db, id).await,
        _ => Ok(None),
    }
}

/// One transaction: the artifact, the current-artifact pointer, the session and the model.
async fn commit(
    app: &App,
    session: &UploadSession,
    model: &Model,
    sha256: &str,
    is_current: Option<bool>,
) -> Result<Artifact, AppError> {
    let now = Timestamp::now();
    let artifact = Artifact {
        id: Id::new(),
        model_id: session.model_id,
        version_id: session.version_id,
        package_id: None,
        package_role: None,
        kind: session.artifact_kind,
        version_label: session.version_label.clone(),
        file_name: session.file_name.clone(),
        content_type: session.content_type.clone(),
        size_bytes: session.total_size_bytes,
        sha256: sha256.to_owned(),
        format: artifact_rules::format_of(&session.file_name, session.metadata.as_ref()),
        storage_backend: app.storage.service().name().to_owned(),
        storage_uri: app.storage.uri(&blob_key(sha256)),
        external_uri: session.external_uri.clone(),
        training_run_id: session.training_run_id.clone(),
        status: ArtifactStatus::Available,
        is_current: is_current.unwrap_or(session.is_current),
        metadata: session.metadata.clone(),
        uploaded_by: session.created_by,
        uploaded_at: now,
        created_at: now,
        updated_at: now,
    };
    let won = app
        .db
        .transaction(async |tx| {
            if !uploads::finish(tx, session.id, artifact.id, now).await? {
                return Ok(false);
            }
            if let Some(version_id) = session.version_id {
                // Published between the checks and now: the version's artifacts are fixed.
                let lifecycle = model_versions::lifecycle_of(tx, version_id).await?;
                if lifecycle != VersionLifecycle::Draft {
                    return Err(AppError::precondition(format!(
                        "the version was {lifecycle} before the upload completed; its artifacts cannot change"
                    )));
                }
            }
            artifacts::insert(tx, &artifact).await?;
            // The first verified artifact makes a PENDING model READY.
            let current = models::get(tx, model.id).await?;
            if current.status == ModelStatus::Pending {
                model_rules::set_status(tx, &current, ModelStatus::Ready, now).await?;
            }
            models::touch(tx, model.id, now).await?;
            Ok(true)
        })
        .await?;
    if won {
        return Ok(artifact);
    }
    // Another request completed (or ended) the session first.
    let current = uploads::find(&app.db, session.id)
        .await?
        .ok_or(AppError::NotFound("upload session"))?;
    match finished_artifact(app, &current).await? {
        Some(artifact) => Ok(artifact),
        None => {
            require_open(&current)?;
            Err(AppError::Internal)
        }
    }
}

/// Removes a session's stored parts; failures only leave bytes the expiry job removes later.
async fn discard_parts(app: &App, session: Id) {
    app.hash_ahead.forget(session);
    if let Err(e) = app.storage.delete_prefix(&upload_prefix(session)).await {
        tracing::warn!(session = %session, error = ?e, "removing upload parts failed");
    }
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
async fn close(
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
const EXPIRY_BATCH: i64 = 100;

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

/// Sessions of a model the caller may read, with their received chunks.
pub async fn list(
    app: &App,
    caller: &Principal,
    filter: UploadSessionFilter,
    origin: &str,
) -> Result<Vec<SessionState>, AppError> {
    let model = visible_model(&app.db, caller, filter.model_id, Role::Viewer).await?;
    let digest = filter
        .sha256
        .as_deref()
        .map(|d| storage::parse_sha256("sha256", d))
        .transpose()?;
    let statuses = filter.status.unwrap_or_default();
    // Stored statuses lag expiry; filter on what clients see.
    let stored: Vec<UploadStatus> = statuses
        .iter()
        .flat_map(|s| match s {
            UploadStatus::Expired => {
                let mut stored = vec![UploadStatus::Expired];
                stored.extend(UploadStatus::OPEN);
                stored
            }
            other => vec![*other],
        })
        .collect();
    let rows = uploads::list(
        &app.db,
        model.id,
        filter.version_id,
        &stored,
        digest.as_deref(),
    )
    .await?;
    let ids: Vec<Id> = rows.iter().map(|s| s.id).collect();
    let mut received = uploads::received(&app.db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|s| {
            let chunks = received.remove(&s.id).unwrap_or_default();
            state_of(s, chunks, origin)
        })
        .filter(|s| statuses.is_empty() || statuses.contains(&s.effective_status()))
        .collect())
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
    let path = format!("/v1/uploads/{}/direct", session.id);
    // Valid as long as the session, but never longer than a signed URL may live.
    let longest = chrono::Utc::now().timestamp()
        + i64::try_from(app.config.max_signed_url_secs).unwrap_or(i64::MAX / 2);
    let expires = session.expires_at.to_utc().timestamp().min(longest);
    let query = app.signer.sign("PUT", &path, expires, key);
    Ok(format!("{origin}{path}?{query}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1024 * 1024;

    const TIB: u64 = 1024 * 1024 * 1024 * 1024;

    #[test]
    fn chunk_plans() {
        let max = 5 * TIB;
        assert_eq!(plan_chunks(100 * MIB, None, max).unwrap(), (16 * MIB, 7));
        assert_eq!(plan_chunks(0, None, max).unwrap(), (16 * MIB, 0));
        // 1 TiB needs bigger chunks than the default to stay within 10,000.
        let (size, count) = plan_chunks(1024 * 1024 * MIB, None, max).unwrap();
        assert!(count <= MAX_CHUNKS && size > 16 * MIB, "{size} {count}");
        // The default limit itself fits.
        let (size, count) = plan_chunks(5 * 1024 * 1024 * MIB, None, max).unwrap();
        assert!(
            count <= MAX_CHUNKS && size <= MAX_CHUNK_SIZE,
            "{size} {count}"
        );
        assert_eq!(plan_chunks(10 * MIB, Some(MIB), max).unwrap(), (MIB, 10));
        assert_eq!(
            plan_chunks(10, Some(1), max).unwrap_err().field(),
            Some("chunkSizeBytes")
        );
        assert!(plan_chunks(-1, None, max).is_err());
        assert!(plan_chunks(20_000 * MIB, Some(MIB), max).is_err());
        let over = plan_chunks(6 * 1024 * 1024 * MIB, None, max).unwrap_err();
        assert_eq!(over.field(), Some("totalSizeBytes"), "over 5 TiB");
        // The case that once wrapped: i64::MAX bytes in 512 MiB chunks.
        assert!(plan_chunks(i64::MAX, Some(512 * MIB), u64::MAX).is_err());
        assert!(plan_chunks(i64::MAX, None, u64::MAX).is_err());
    }

    proptest::proptest! {
        /// Over the whole `i64` range: a plan is refused, or its chunks cover exactly the file,
        /// within the limits, without one arithmetic step wrapping.
        #[test]
        fn every_plan_covers_the_file_exactly(
            total in proptest::prelude::any::<i64>(),
            asked in proptest::option::of(proptest::prelude::any::<i64>()),
            max in proptest::prelude::any::<u64>(),
        ) {
            if let Ok((size, count)) = plan_chunks(total, asked, max) {
                proptest::prop_assert!(total >= 0 && total as u64 <= max);
                proptest::prop_assert!((MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size));
                proptest::prop_assert!((0..=MAX_CHUNKS).contains(&count));
                let covered = i128::from(size) * i128::from(count);
                proptest::prop_assert!(covered >= i128::from(total));
                proptest::prop_assert!(covered - i128::from(size) < i128::from(total.max(1)));
            }
        }
    }
}
