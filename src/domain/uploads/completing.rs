//! Completion: the parts read in order into the content-addressed blob while hashing; only a
//! matching digest commits the object and the artifact, in one transaction.

use std::ops::Range;

use super::*;

#[derive(Debug)]
pub struct Completion {
    pub id: Id,
    /// The expected SHA-256, if not given when the session was created.
    pub sha256: Option<String>,
    /// Overrides the session's `isCurrent`.
    pub is_current: Option<bool>,
}

/// Where chunk `index` starts in the session's staging file.
pub(super) fn staged_offset(session: &UploadSession, index: i64) -> u64 {
    index as u64 * session.chunk_size_bytes.0 as u64
}

/// Where one received chunk's bytes are: its region of the staging file when its first attempt
/// was written in place, otherwise its own object.
pub(super) fn chunk_part(session: &UploadSession, chunk: &Received) -> (String, Range<u64>) {
    let len = chunk.size as u64;
    if chunk.in_place {
        let offset = staged_offset(session, chunk.index);
        (staged_key(session.id), offset..offset + len)
    } else {
        (chunk_key(session.id, chunk.index, chunk.generation), 0..len)
    }
}

/// The stored bytes of a session in order: the chunks named by `received` (one snapshot of
/// the chunk rows), or the direct upload's object.
pub(super) fn parts(session: &UploadSession, received: &[Received]) -> Vec<(String, Range<u64>)> {
    match session.method {
        UploadMethod::Chunked => received.iter().map(|c| chunk_part(session, c)).collect(),
        UploadMethod::Direct => {
            vec![(direct_key(session.id), 0..session.total_size_bytes.0 as u64)]
        }
    }
}

/// The one file that already holds the whole upload, in order, on a local store: the staging
/// file when every chunk is the attempt written in place. No one writes that file any more
/// (each region's only writer finished before it recorded its chunk) and no other file takes
/// its name, so once verified it is published as it is. A direct upload's object is not: a
/// second PUT may rename another file over it between the check and the link.
fn whole_file(app: &App, session: &UploadSession, received: &[Received]) -> Option<String> {
    let in_place = app.storage.writes_in_place()
        && session.method == UploadMethod::Chunked
        && !received.is_empty()
        && received.iter().all(|c| c.in_place);
    in_place.then(|| staged_key(session.id))
}

/// Reads `parts` in order, hashing them on from `start` (a state that already covers the
/// first `start.1` parts) and, when given a writer, copying every part into it; answers the
/// digest.
pub(super) async fn read_parts(
    app: &App,
    parts: &[(String, Range<u64>)],
    start: (Sha256, usize),
    mut writer: Option<&mut opendal::Writer>,
) -> Result<String, AppError> {
    let (state, covered) = start;
    let hasher = BackgroundHasher::resume(state);
    for (part, (key, range)) in parts.iter().enumerate() {
        if range.is_empty() || (part < covered && writer.is_none()) {
            continue;
        }
        let mut stream = app.storage.read_stream(key, range.clone()).await?;
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
pub(super) fn head_start(
    app: &App,
    session: &UploadSession,
    received: &[Received],
) -> (Sha256, usize) {
    match session.method {
        UploadMethod::Chunked => app.hash_ahead.take(session.id, &prehash::parts(received)),
        UploadMethod::Direct => (Sha256::new(), 0),
    }
}

/// Checks that every part is there with its full length.
pub(super) async fn require_parts(app: &App, state: &SessionState) -> Result<(), AppError> {
    let session = &state.session;
    match session.method {
        UploadMethod::Chunked => {
            let missing = state.progress().missing_chunks;
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
    input: Completion,
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
            // A concurrent complete may have finished first and removed the parts under us,
            // or the session expired meanwhile: that is the answer, not the storage error.
            if let Some(current) = uploads::find(&app.db, session.id).await? {
                if let Some(artifact) = finished_artifact(app, &current).await? {
                    return Ok(artifact);
                }
                require_open_to_finish(&current)?;
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
pub(super) async fn assemble(
    app: &App,
    session: &UploadSession,
    received: &[Received],
    expected: Option<String>,
) -> Result<String, AppError> {
    let pieces = parts(session, received);
    // Chunks this replica hashed while they arrived are not hashed again, once.
    let mut start = Some(head_start(app, session, received));
    // Without an announced digest, one read pass finds it. The parts that pass reads never
    // change (chunk objects are named by generation; a whole file is written by no one), so
    // the digest is theirs and needs no second check.
    let (expected, verified) = match expected {
        Some(digest) => (digest, false),
        None => {
            let start = start.take().unwrap_or_default();
            (read_parts(app, &pieces, start, None).await?, true)
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
    // Where the bytes need not move: they are already stored under this digest, or they are
    // one file to publish as it is, or the store assembles them itself. Then completion only
    // proves they hash to the digest before anything is stored under it.
    let whole = whole_file(app, session, received);
    let composed = session.method == UploadMethod::Chunked
        && session.total_size_bytes.0 > 0
        && app.storage.composes(&pieces);
    if stored || whole.is_some() || composed {
        let started = std::time::Instant::now();
        if !verified {
            let actual = read_parts(app, &pieces, start.clone(), None).await?;
            if actual != expected {
                return Err(AppError::ChecksumMismatch { expected, actual });
            }
        }
        if stored {
            return Ok(expected);
        }
        let done = match whole {
            Some(whole) => app.storage.publish(&whole, &key).await?,
            None => {
                // Detached, so a client that hangs up cannot leave the multipart upload
                // neither completed nor aborted.
                let (owner, pieces, target) = (app.clone(), pieces.clone(), key.clone());
                let composed =
                    tokio::spawn(async move { owner.storage.compose(&pieces, &target).await })
                        .await
                        .map_err(AppError::internal)?;
                match composed {
                    Ok(()) => true,
                    Err(AppError::InsufficientStorage) => {
                        return Err(AppError::InsufficientStorage);
                    }
                    // A service without part copies, or one that failed them: the bytes are
                    // copied through this server instead.
                    Err(_) => false,
                }
            }
        };
        if done {
            tracing::info!(
                session = %session.id,
                bytes = size,
                chunks_hashed_ahead = covered,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "stored an upload without copying it"
            );
            return Ok(expected);
        }
        tracing::warn!(session = %session.id, "the store could not take the upload as it is; copying it");
    }
    // Read, hash and write overlap; the object is committed only once the digest matched.
    let started = std::time::Instant::now();
    let mut writer = app.storage.writer(&key).await?;
    let written = async {
        let actual = read_parts(app, &pieces, start, Some(&mut writer)).await?;
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

pub(super) async fn finished_artifact(
    app: &App,
    session: &UploadSession,
) -> Result<Option<Artifact>, AppError> {
    match (session.status, session.artifact_id) {
        (UploadStatus::Completed, Some(id)) => crate::db::artifacts::find(&app.db, id).await,
        _ => Ok(None),
    }
}

/// One transaction: the artifact, the current-artifact pointer, the session and the model.
pub(super) async fn commit(
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
                // Claiming the name locks the version's row first, so the lifecycle read next
                // cannot be overtaken by a publish committing in between.
                artifact_rules::claim_name(
                    tx,
                    version_id,
                    &session.file_name,
                    session.replace_existing,
                    now,
                )
                .await?;
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
pub(super) async fn discard_parts(app: &App, session: Id) {
    app.hash_ahead.forget(session);
    if let Err(e) = app.storage.delete_prefix(&upload_prefix(session)).await {
        tracing::warn!(session = %session, error = ?e, "removing upload parts failed");
    }
}
