//! Collecting the bytes no artifact needs any more.

use std::time::Duration;

use crate::app::App;
use crate::db::blobs;
use crate::error::AppError;
use crate::storage::blob_key;
use crate::values::Timestamp;

const BATCH: i64 = 100;

/// Removes blobs that no available artifact names and nobody touched for `retention`; answers
/// how many. Safe on every replica at once: each blob's row is deleted by one transaction
/// only, and its bytes are removed inside that transaction, so an upload claiming the same
/// digest meanwhile waits (PostgreSQL row lock, SQLite writer lock), then finds no row and
/// writes the bytes again instead of trusting bytes about to vanish.
pub async fn collect(app: &App, retention: Duration) -> Result<usize, AppError> {
    let cutoff = Timestamp::from(chrono::Utc::now() - retention);
    let mut done = 0;
    loop {
        let candidates = blobs::collectable(&app.db, cutoff, BATCH).await?;
        if candidates.is_empty() {
            return Ok(done);
        }
        let mut progressed = false;
        for digest in &candidates {
            let removed = app
                .db
                .transaction(async |tx| {
                    let removed = blobs::remove_if_collectable(tx, digest, cutoff).await?;
                    if removed {
                        app.storage.delete(&blob_key(digest)).await?;
                    }
                    Ok(removed)
                })
                .await?;
            if removed {
                done += 1;
                progressed = true;
            }
        }
        if !progressed || (candidates.len() as i64) < BATCH {
            return Ok(done);
        }
    }
}
