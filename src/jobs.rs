//! Background jobs: expiring upload sessions and collecting unreferenced blobs.
//!
//! Every replica runs them. Each unit of work is a conditional statement that only one
//! replica's transaction can win (an open session becomes EXPIRED once; a blob row is deleted
//! once), so running them everywhere at once is safe without a leader.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::app::App;
use crate::db::schema::{artifacts, blobs as blobs_table};
use crate::db::{blobs, uploads, with_tx};
use crate::domain::uploads as upload_rules;
use crate::error::AppError;
use crate::storage::blob_key;
use crate::values::ArtifactStatus;
use crate::values::Timestamp;

const BATCH: i64 = 100;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions_expired: usize,
    pub blobs_removed: usize,
    pub staging_removed: usize,
}

/// Unfinished writes older than this belong to a process that died: no write runs this long
/// without touching its file.
const STAGING_AGE: Duration = Duration::from_secs(6 * 3600);

/// Marks open sessions whose time ran out as EXPIRED and removes their chunks.
pub async fn expire_sessions(app: &App) -> Result<usize, AppError> {
    let mut done = 0;
    loop {
        let ids = uploads::expired(&app.db, Timestamp::now(), BATCH).await?;
        if ids.is_empty() {
            return Ok(done);
        }
        let mut progressed = false;
        for id in &ids {
            if upload_rules::expire(app, *id).await? {
                done += 1;
                progressed = true;
            }
        }
        if !progressed || (ids.len() as i64) < BATCH {
            return Ok(done);
        }
    }
}

/// Removes blobs that no available artifact names and nobody touched for `retention`.
///
/// The row is deleted and the bytes removed inside one transaction: an upload claiming the
/// same digest meanwhile waits for it (PostgreSQL row lock, SQLite writer lock), then finds
/// no row and writes the bytes again instead of trusting bytes about to vanish.
pub async fn collect_blobs(app: &App, retention: Duration) -> Result<usize, AppError> {
    let cutoff = Timestamp::from(chrono::Utc::now() - retention);
    let mut done = 0;
    loop {
        let candidates = blobs::collectable(&app.db, cutoff, BATCH).await?;
        if candidates.is_empty() {
            return Ok(done);
        }
        let mut progressed = false;
        for digest in &candidates {
            let storage = app.storage.clone();
            let removed = with_tx!(app.db, conn => {
                let deleted = diesel::delete(
                    blobs_table::table
                        .find(digest)
                        .filter(blobs_table::touched_at.lt(cutoff))
                        .filter(diesel::dsl::not(diesel::dsl::exists(
                            artifacts::table
                                .filter(artifacts::sha256.eq(blobs_table::sha256))
                                .filter(artifacts::status.eq(ArtifactStatus::Available)),
                        ))),
                )
                .execute(conn)
                .await?;
                if deleted > 0 {
                    storage.delete(&blob_key(digest)).await?;
                }
                Ok(deleted > 0)
            })?;
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

/// One pass of every job.
pub async fn sweep(app: &App, retention: Duration) -> Result<Swept, AppError> {
    Ok(Swept {
        sessions_expired: expire_sessions(app).await?,
        blobs_removed: collect_blobs(app, retention).await?,
        staging_removed: app.storage.sweep_staging(STAGING_AGE).await?,
    })
}

/// Runs [`sweep`] every `jobs_interval_secs` until the process ends.
pub fn spawn(app: App) -> Option<tokio::task::JoinHandle<()>> {
    let every = app.config.jobs_interval_secs;
    if every == 0 {
        return None;
    }
    let retention = Duration::from_secs(app.config.blob_retention_secs);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep(&app, retention).await {
                Ok(swept) if swept != Swept::default() => {
                    tracing::info!(
                        sessions_expired = swept.sessions_expired,
                        blobs_removed = swept.blobs_removed,
                        staging_removed = swept.staging_removed,
                        "background sweep"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = ?e, "background sweep failed"),
            }
        }
    }))
}
