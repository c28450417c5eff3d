//! Blob rows (one per distinct digest) and the server's shared secrets.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{artifacts, blobs, server_secrets};
use crate::db::{Db, KeepPrepared, Tx, on_tx, with_conn};
use crate::error::AppError;
use crate::values::ArtifactStatus;
use crate::values::Timestamp;

/// Claims a blob before its bytes are written or reused: the row exists and its `touched_at`
/// is now, so the collector leaves it alone for the retention window. Answers whether a row
/// already existed (the bytes may then already be stored).
pub async fn claim(tx: &mut Tx<'_>, sha256: &str, size: i64) -> Result<bool, AppError> {
    let now = Timestamp::now();
    on_tx!(tx, conn => {
        let updated = diesel::update(blobs::table.find(sha256))
            .set(blobs::touched_at.eq(now))
            .prepared()
            .execute(conn)
            .await?;
        if updated == 0 {
            diesel::insert_into(blobs::table)
                .values((
                    blobs::sha256.eq(sha256),
                    blobs::size_bytes.eq(size),
                    blobs::created_at.eq(now),
                    blobs::touched_at.eq(now),
                ))
                .on_conflict(blobs::sha256)
                .do_update()
                .set(blobs::touched_at.eq(now))
                .prepared()
                .execute(conn)
                .await?;
        }
        Ok(updated > 0)
    })
}

/// The collector's rule, in one place: a blob untouched since `cutoff` that no available
/// artifact names.
macro_rules! collectable_blobs {
    ($cutoff:expr) => {
        blobs::table
            .filter(blobs::touched_at.lt($cutoff))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                artifacts::table
                    .filter(artifacts::sha256.eq(blobs::sha256))
                    .filter(artifacts::status.eq(ArtifactStatus::Available)),
            )))
    };
}

/// The collector's candidates, oldest first.
pub async fn collectable(db: &Db, cutoff: Timestamp, limit: i64) -> Result<Vec<String>, AppError> {
    with_conn!(db, conn => {
        Ok(collectable_blobs!(cutoff)
            .select(blobs::sha256)
            .order(blobs::touched_at.asc())
            .limit(limit)
            .load(conn)
            .await?)
    })
}

/// The named secret, created from `generate` by whichever replica asks first.
pub async fn secret(
    tx: &mut Tx<'_>,
    name: &str,
    generate: impl FnOnce() -> String,
) -> Result<String, AppError> {
    let candidate = generate();
    on_tx!(tx, conn => {
        diesel::insert_into(server_secrets::table)
            .values((
                server_secrets::name.eq(name),
                server_secrets::value.eq(&candidate),
                server_secrets::created_at.eq(Timestamp::now()),
            ))
            .on_conflict(server_secrets::name)
            .do_nothing()
            .execute(conn)
            .await?;
        Ok(server_secrets::table
            .find(name)
            .select(server_secrets::value)
            .first(conn)
            .await?)
    })
}

/// Deletes the blob's row if it is still collectable; answers whether it did. The row stays
/// locked until the transaction ends, so an upload claiming the digest waits for the bytes'
/// removal (done in the same transaction) and then writes them again.
pub async fn remove_if_collectable(
    tx: &mut Tx<'_>,
    sha256: &str,
    cutoff: Timestamp,
) -> Result<bool, AppError> {
    on_tx!(tx, conn => {
        let deleted = diesel::delete(collectable_blobs!(cutoff).filter(blobs::sha256.eq(sha256)))
            .execute(conn)
            .await?;
        Ok(deleted > 0)
    })
}
