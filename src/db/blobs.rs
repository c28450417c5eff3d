//! Blob rows (one per distinct digest) and the server's shared secrets.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{artifacts, blobs, server_secrets};
use crate::db::{Db, with_conn, with_tx};
use crate::error::AppError;
use crate::values::ArtifactStatus;
use crate::values::Timestamp;

/// Claims a blob before its bytes are written or reused: the row exists and its `touched_at`
/// is now, so the collector leaves it alone for the retention window. Answers whether a row
/// already existed (the bytes may then already be stored).
pub async fn claim(db: &Db, sha256: &str, size: i64) -> Result<bool, AppError> {
    let now = Timestamp::now();
    with_tx!(db, conn => {
        let updated = diesel::update(blobs::table.find(sha256))
            .set(blobs::touched_at.eq(now))
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
                .execute(conn)
                .await?;
        }
        Ok(updated > 0)
    })
}

/// Blobs untouched since `cutoff` that no available artifact names: the collector's candidates.
pub async fn collectable(db: &Db, cutoff: Timestamp, limit: i64) -> Result<Vec<String>, AppError> {
    with_conn!(db, conn => {
        Ok(blobs::table
            .filter(blobs::touched_at.lt(cutoff))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                artifacts::table
                    .filter(artifacts::sha256.eq(blobs::sha256))
                    .filter(artifacts::status.eq(ArtifactStatus::Available)),
            )))
            .select(blobs::sha256)
            .order(blobs::touched_at.asc())
            .limit(limit)
            .load(conn)
            .await?)
    })
}

/// The named secret, created from `generate` by whichever replica asks first.
pub async fn secret(
    db: &Db,
    name: &str,
    generate: impl FnOnce() -> String,
) -> Result<String, AppError> {
    let candidate = generate();
    with_tx!(db, conn => {
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
