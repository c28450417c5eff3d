//! Upload sessions and the chunks received for them.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::page::{Page, PageRequest};
use crate::db::schema::{upload_chunk_claims, upload_chunks, upload_sessions};
use crate::db::{Db, KeepPrepared, Tx, on_tx, with_conn};
use crate::error::AppError;
use crate::values::{ArtifactKind, UploadMethod, UploadStatus};
use crate::values::{BigInt, Id, JsonText, Timestamp};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_sessions, treat_none_as_default_value = false)]
pub struct UploadSession {
    pub id: Id,
    pub model_id: Id,
    pub version_id: Option<Id>,
    pub method: UploadMethod,
    pub file_name: String,
    pub content_type: String,
    pub total_size_bytes: BigInt,
    pub expected_sha256: Option<String>,
    pub chunk_size_bytes: BigInt,
    pub chunk_count: i64,
    pub artifact_kind: ArtifactKind,
    pub version_label: Option<String>,
    pub training_run_id: Option<String>,
    pub is_current: bool,
    pub external_uri: Option<String>,
    pub metadata: Option<JsonText>,
    pub status: UploadStatus,
    pub failure_reason: Option<String>,
    pub artifact_id: Option<Id>,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Completing retires the version's available artifact of the same file name.
    pub replace_existing: bool,
}

/// A chunk whose bytes are in storage: index, size, the generation naming its object, and
/// whether those bytes are the ones written in place in the session's staging file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub index: i64,
    pub size: i64,
    pub generation: Id,
    pub in_place: bool,
}

pub async fn find(db: &Db, id: Id) -> Result<Option<UploadSession>, AppError> {
    with_conn!(db, conn => {
        Ok(upload_sessions::table
            .find(id)
            .select(UploadSession::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Which sessions of a model a page holds. `statuses` are as clients see them: an open
/// session whose time ran out counts as EXPIRED before the expiry job marks it.
pub struct SessionFilter<'a> {
    pub model_id: Id,
    pub version_id: Option<Id>,
    pub statuses: &'a [UploadStatus],
    pub sha256: Option<&'a str>,
    pub now: Timestamp,
}

/// One page of a model's sessions, newest first, read by keyset in SQL.
pub async fn page(
    db: &Db,
    filter: &SessionFilter<'_>,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<UploadSession>, AppError> {
    let ascending = page.ascending(false);
    let after = page.cursor.as_ref().map(|c| c.id);
    // Three fixed arms, so the statement has one shape on both backends: final states as
    // stored, open states still in time, and open states past their time (seen as EXPIRED).
    let wanted = |s: UploadStatus| filter.statuses.is_empty() || filter.statuses.contains(&s);
    let stored: Vec<UploadStatus> = [
        UploadStatus::Completed,
        UploadStatus::Failed,
        UploadStatus::Expired,
    ]
    .into_iter()
    .filter(|s| wanted(*s))
    .collect();
    let open_in_time: Vec<UploadStatus> = UploadStatus::OPEN
        .into_iter()
        .filter(|s| wanted(*s))
        .collect();
    let open_overdue: Vec<UploadStatus> = if wanted(UploadStatus::Expired) {
        UploadStatus::OPEN.to_vec()
    } else {
        Vec::new()
    };
    let now = filter.now;
    with_conn!(db, conn => {
        let matching = || {
            let mut query = upload_sessions::table
                .filter(upload_sessions::model_id.eq(filter.model_id))
                .filter(
                    upload_sessions::status.eq_any(stored.clone())
                        .or(upload_sessions::status.eq_any(open_in_time.clone()).and(upload_sessions::expires_at.gt(now)))
                        .or(upload_sessions::status.eq_any(open_overdue.clone()).and(upload_sessions::expires_at.le(now))),
                )
                .into_boxed();
            if let Some(v) = filter.version_id {
                query = query.filter(upload_sessions::version_id.eq(v));
            }
            if let Some(digest) = filter.sha256 {
                query = query.filter(upload_sessions::expected_sha256.eq(digest.to_owned()));
            }
            query
        };
        let total = if count_total {
            Some(matching().count().get_result::<i64>(conn).await?)
        } else {
            None
        };
        let mut query = matching().select(UploadSession::as_select());
        if let Some(after) = after {
            query = if ascending {
                query.filter(upload_sessions::id.gt(after))
            } else {
                query.filter(upload_sessions::id.lt(after))
            };
        }
        query = if ascending {
            query.order(upload_sessions::id.asc())
        } else {
            query.order(upload_sessions::id.desc())
        };
        let rows = query.limit(page.limit + 1).load(conn).await?;
        Ok(page.finish(rows, total))
    })
}

/// Received chunks per session, in index order.
pub async fn received(db: &Db, session_ids: &[Id]) -> Result<HashMap<Id, Vec<Received>>, AppError> {
    let rows: Vec<(Id, i64, i64, Id, Option<Id>)> = with_conn!(db, conn => {
        Ok::<_, AppError>(upload_chunks::table
            .left_join(
                upload_chunk_claims::table.on(upload_chunk_claims::session_id
                    .eq(upload_chunks::session_id)
                    .and(upload_chunk_claims::chunk_index.eq(upload_chunks::chunk_index))
                    .and(upload_chunk_claims::generation.eq(upload_chunks::generation))),
            )
            .filter(upload_chunks::session_id.eq_any(session_ids))
            .select((
                upload_chunks::session_id,
                upload_chunks::chunk_index,
                upload_chunks::size_bytes,
                upload_chunks::generation,
                upload_chunk_claims::generation.nullable(),
            ))
            .order((upload_chunks::session_id.asc(), upload_chunks::chunk_index.asc()))
            .load(conn)
            .await?)
    })?;
    let mut out: HashMap<Id, Vec<Received>> = HashMap::new();
    for (session, index, size, generation, claim) in rows {
        out.entry(session).or_default().push(Received {
            index,
            size,
            generation,
            in_place: claim.is_some(),
        });
    }
    Ok(out)
}

/// Claims the place of chunk `index` in the session's staging file for `generation`: true for
/// the first attempt at that index while the session is open, false for every later one. The
/// session's row is locked for it, so no claim is made after the session was finished.
pub async fn claim_chunk(
    tx: &mut Tx<'_>,
    session_id: Id,
    index: i64,
    generation: Id,
) -> Result<bool, AppError> {
    let now = Timestamp::now();
    on_tx!(tx, conn => {
        let open = diesel::update(
            upload_sessions::table
                .find(session_id)
                .filter(upload_sessions::status.eq_any(UploadStatus::OPEN))
                .filter(upload_sessions::expires_at.gt(now)),
        )
        .set(upload_sessions::updated_at.eq(now))
        .prepared()
        .execute(conn)
        .await?;
        if open == 0 {
            return Ok(false);
        }
        let claimed = diesel::insert_into(upload_chunk_claims::table)
            .values((
                upload_chunk_claims::session_id.eq(session_id),
                upload_chunk_claims::chunk_index.eq(index),
                upload_chunk_claims::generation.eq(generation),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(claimed == 1)
    })
}

/// Records a chunk whose bytes are stored, if the session still takes chunks. Answers the
/// session's status at that moment (what to refuse with when it is not open) and the
/// generation this one replaced, whose object is now unreferenced. A chunk written in place
/// never replaces one already recorded.
pub async fn record_chunk(
    tx: &mut Tx<'_>,
    session_id: Id,
    chunk: Received,
) -> Result<(UploadStatus, Option<Id>), AppError> {
    let Received {
        index,
        size,
        generation,
        in_place,
    } = chunk;
    let now = Timestamp::now();
    on_tx!(tx, conn => {
        let status: Option<UploadStatus> = diesel::update(
            upload_sessions::table
                .find(session_id)
                .filter(upload_sessions::status.eq_any(UploadStatus::OPEN))
                .filter(upload_sessions::expires_at.gt(now)),
        )
        .set((upload_sessions::status.eq(UploadStatus::Uploading), upload_sessions::updated_at.eq(now)))
        .returning(upload_sessions::status)
        .prepared()
        .get_result(conn)
        .await
        .optional()?;
        let Some(status) = status else {
            let status: UploadStatus = upload_sessions::table
                .find(session_id)
                .select(upload_sessions::status)
                .first(conn)
                .await?;
            return Ok((if status.is_open() { UploadStatus::Expired } else { status }, None));
        };
        let replaced: Option<Id> = upload_chunks::table
            .find((session_id, index))
            .select(upload_chunks::generation)
            .first(conn)
            .await
            .optional()?;
        if in_place && replaced.is_some() {
            // A later attempt, stored as an object of its own, was recorded while this first
            // one was still being written: a completion may be reading that object, so it stays.
            return Ok((status, None));
        }
        diesel::insert_into(upload_chunks::table)
            .values((
                upload_chunks::session_id.eq(session_id),
                upload_chunks::chunk_index.eq(index),
                upload_chunks::size_bytes.eq(size),
                upload_chunks::generation.eq(generation),
                upload_chunks::received_at.eq(now),
            ))
            .on_conflict((upload_chunks::session_id, upload_chunks::chunk_index))
            .do_update()
            .set((
                upload_chunks::size_bytes.eq(size),
                upload_chunks::generation.eq(generation),
                upload_chunks::received_at.eq(now),
            ))
            .prepared()
            .execute(conn)
            .await?;
        Ok((status, replaced))
    })
}

/// Moves an open session to a final state (FAILED, EXPIRED) unless another request finished it
/// first; answers whether this call did.
pub async fn close(
    tx: &mut Tx<'_>,
    session_id: Id,
    status: UploadStatus,
    reason: Option<String>,
) -> Result<bool, AppError> {
    let now = Timestamp::now();
    on_tx!(tx, conn => {
        let changed = diesel::update(
            upload_sessions::table
                .find(session_id)
                .filter(upload_sessions::status.eq_any(UploadStatus::OPEN)),
        )
        .set((
            upload_sessions::status.eq(status),
            upload_sessions::failure_reason.eq(reason),
            upload_sessions::updated_at.eq(now),
        ))
        .prepared()
        .execute(conn)
        .await?;
        if changed > 0 {
            diesel::delete(upload_chunks::table.filter(upload_chunks::session_id.eq(session_id)))
                .execute(conn)
                .await?;
            diesel::delete(upload_chunk_claims::table.filter(upload_chunk_claims::session_id.eq(session_id)))
                .execute(conn)
                .await?;
        }
        Ok(changed > 0)
    })
}

/// Open sessions whose time ran out, oldest first.
pub async fn expired(db: &Db, now: Timestamp, limit: i64) -> Result<Vec<Id>, AppError> {
    with_conn!(db, conn => {
        Ok(upload_sessions::table
            .filter(upload_sessions::status.eq_any(UploadStatus::OPEN))
            .filter(upload_sessions::expires_at.le(now))
            .select(upload_sessions::id)
            .order(upload_sessions::expires_at.asc())
            .limit(limit)
            .load(conn)
            .await?)
    })
}

pub async fn insert(tx: &mut Tx<'_>, session: &UploadSession) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::insert_into(upload_sessions::table).values(session).execute(conn).await?;
        Ok(())
    })
}

/// Marks an open session COMPLETED with its artifact and removes its chunk rows; `false` when
/// another request completed or ended it first.
pub async fn finish(
    tx: &mut Tx<'_>,
    session_id: Id,
    artifact_id: Id,
    now: Timestamp,
) -> Result<bool, AppError> {
    on_tx!(tx, conn => {
        let claimed = diesel::update(
            upload_sessions::table
                .find(session_id)
                .filter(upload_sessions::status.eq_any(UploadStatus::OPEN)),
        )
        .set((
            upload_sessions::status.eq(UploadStatus::Completed),
            upload_sessions::artifact_id.eq(artifact_id),
            upload_sessions::completed_at.eq(now),
            upload_sessions::updated_at.eq(now),
        ))
        .prepared()
        .execute(conn)
        .await?;
        if claimed == 0 {
            return Ok(false);
        }
        diesel::delete(upload_chunks::table.filter(upload_chunks::session_id.eq(session_id)))
            .execute(conn)
            .await?;
        diesel::delete(upload_chunk_claims::table.filter(upload_chunk_claims::session_id.eq(session_id)))
            .execute(conn)
            .await?;
        Ok(true)
    })
}
