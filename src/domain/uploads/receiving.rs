//! Taking chunks (and a direct upload's one object): streamed to storage, committed only
//! whole and with the right length and digest.

use super::*;

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
    let mut received: u64 = 0;
    let mut hasher = info.content_digest.as_ref().map(|_| Sha256::new());
    let inspect = |frame: Option<&Bytes>| {
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
    };
    // The first attempt at a chunk goes to its place in the staging file; any other to an
    // object of its own (see `storage::local`).
    let in_place = app.storage.writes_in_place()
        && app
            .db
            .transaction(async |tx| uploads::claim_chunk(tx, session.id, index, generation).await)
            .await?;
    let key = if in_place {
        let key = staged_key(session.id);
        let offset = staged_offset(&session, index);
        let written = app
            .storage
            .write_at(&key, offset, body, inspect, body_error)
            .await;
        if let Err(e) = written {
            // The session may have ended while this chunk streamed, and its files with it:
            // a staging file this request created again belongs to no one.
            if uploads::find(&app.db, id)
                .await?
                .is_none_or(|s| !status_now(&s).is_open())
            {
                app.storage.delete(&key).await.ok();
            }
            return Err(e);
        }
        key
    } else {
        let key = chunk_key(session.id, index, generation);
        app.storage
            .write_stream(&key, body, inspect, body_error)
            .await?;
        key
    };
    let chunk = Received {
        index,
        size: expected_len,
        generation,
        in_place,
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
        // Finished while this chunk streamed: its bytes belong to no session any more (a
        // staging file written after the session's files were removed goes the same way; a
        // published blob is a link of its own and stays).
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

pub(super) fn wrong_length(index: i64, expected: i64, got: u64) -> AppError {
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
