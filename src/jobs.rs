//! Background jobs: expiring upload sessions, collecting unreferenced blobs and removing raw
//! telemetry past its retention.
//!
//! Every replica runs them. Each unit of work is a conditional statement that only one
//! replica's transaction can win (an open session becomes EXPIRED once; a blob row is deleted
//! once), so running them everywhere at once is safe without a leader.

use std::time::Duration;

use crate::app::App;
use crate::domain::{blobs as blob_rules, telemetry, uploads as upload_rules};
use crate::error::AppError;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions_expired: usize,
    pub blobs_removed: usize,
    pub staging_removed: usize,
    pub telemetry_removed: usize,
}

/// Unfinished writes untouched this long belong to a process that died: a live write touches
/// its file at least once per body-read timeout (a stalled client is cut off then), so twice
/// that, and at least two minutes, is safe while servers run.
fn staging_age(app: &App) -> Duration {
    Duration::from_secs(app.config.body_read_timeout_secs.saturating_mul(2).max(120))
}

/// Marks open sessions whose time ran out as EXPIRED and removes their chunks.
pub async fn expire_sessions(app: &App) -> Result<usize, AppError> {
    upload_rules::expire_overdue(app).await
}

/// Removes blobs that no available artifact names and nobody touched for `retention`.
pub async fn collect_blobs(app: &App, retention: Duration) -> Result<usize, AppError> {
    blob_rules::collect(app, retention).await
}

/// One pass of every job.
pub async fn sweep(app: &App, retention: Duration) -> Result<Swept, AppError> {
    Ok(Swept {
        sessions_expired: expire_sessions(app).await?,
        blobs_removed: collect_blobs(app, retention).await?,
        staging_removed: app.storage.sweep_staging(staging_age(app)).await?,
        telemetry_removed: telemetry::remove_expired(app).await?,
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
                        telemetry_removed = swept.telemetry_removed,
                        "background sweep"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = ?e, "background sweep failed"),
            }
        }
    }))
}
