//! The three-step upload: open a session, receive chunks (or one direct object), complete.
//!
//! A session lives in the database and its chunks in shared storage, so any replica may take
//! any chunk or complete any session. Completion reads the parts in order into the
//! content-addressed blob while hashing, and only a matching digest commits the object and the
//! artifact; a mismatch leaves neither.

mod completing;
mod plan;
pub mod prehash;
mod receiving;
mod sessions;

pub use completing::*;
pub use plan::*;
pub use receiving::*;
pub use sessions::*;

use std::time::Duration;

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
use crate::domain::versions::visible_version;
use crate::error::AppError;
use crate::routes;
use crate::storage::{
    self, BackgroundHasher, blob_key, chunk_key, direct_key, hex_digest, staged_key, upload_prefix,
};
use crate::values::{
    ArtifactKind, ArtifactStatus, ModelStatus, Role, UploadMethod, UploadStatus, VersionLifecycle,
};
use crate::values::{BigInt, Id, JsonText, Timestamp};

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

/// What clients are told about a session beyond its row. Computed in one place, at one
/// instant, so the GraphQL type and the REST answer cannot disagree on a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// EXPIRED as soon as the time ran out, even before the expiry job marked it.
    pub status: UploadStatus,
    pub received_bytes: i64,
    /// Ascending.
    pub received_chunks: Vec<i64>,
    /// Ascending: what a resuming client still sends.
    pub missing_chunks: Vec<i64>,
}

impl SessionState {
    /// A completed session reports every chunk as received: its chunk rows go when it completes.
    pub fn progress(&self) -> Progress {
        let session = &self.session;
        if session.status == UploadStatus::Completed {
            return Progress {
                status: status_now(session),
                received_bytes: session.total_size_bytes.0,
                received_chunks: (0..session.chunk_count).collect(),
                missing_chunks: Vec::new(),
            };
        }
        let received_chunks: Vec<i64> = self.received.iter().map(|c| c.index).collect();
        let mut have = received_chunks.iter().copied().peekable();
        let missing_chunks = (0..session.chunk_count)
            .filter(|i| {
                while have.peek().is_some_and(|h| h < i) {
                    have.next();
                }
                have.peek() != Some(i)
            })
            .collect();
        Progress {
            status: status_now(session),
            received_bytes: self.received.iter().map(|c| c.size).sum(),
            received_chunks,
            missing_chunks,
        }
    }
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
        .then(|| format!("{origin}{}", routes::chunk_path_template(session.id)));
    SessionState {
        session,
        received,
        chunk_url_template,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: UploadStatus, expires_in: chrono::Duration, chunks: &[i64]) -> SessionState {
        let now = Timestamp::now();
        SessionState {
            session: UploadSession {
                id: Id::new(),
                model_id: Id::new(),
                version_id: None,
                method: UploadMethod::Chunked,
                file_name: "model.bin".into(),
                content_type: "application/octet-stream".into(),
                total_size_bytes: BigInt(35),
                expected_sha256: None,
                chunk_size_bytes: BigInt(10),
                chunk_count: 4,
                artifact_kind: ArtifactKind::ModelBinary,
                version_label: None,
                training_run_id: None,
                is_current: false,
                external_uri: None,
                metadata: None,
                status,
                failure_reason: None,
                artifact_id: None,
                created_by: None,
                created_at: now,
                updated_at: now,
                expires_at: Timestamp(now.0 + expires_in),
                completed_at: None,
                replace_existing: false,
            },
            received: chunks
                .iter()
                .map(|&index| Received {
                    index,
                    size: if index == 3 { 5 } else { 10 },
                    generation: Id::new(),
                    in_place: false,
                })
                .collect(),
            chunk_url_template: None,
        }
    }

    #[test]
    fn progress_reports_what_arrived_and_what_is_missing() {
        let hour = chrono::Duration::hours(1);
        let open = state(UploadStatus::Uploading, hour, &[0, 3]).progress();
        assert_eq!(
            open,
            Progress {
                status: UploadStatus::Uploading,
                received_bytes: 15,
                received_chunks: vec![0, 3],
                missing_chunks: vec![1, 2],
            }
        );
        let done = state(UploadStatus::Completed, hour, &[]).progress();
        assert_eq!(done.received_bytes, 35);
        assert_eq!(done.received_chunks, vec![0, 1, 2, 3]);
        assert!(done.missing_chunks.is_empty());
        let late = state(UploadStatus::Initialized, -hour, &[]).progress();
        assert_eq!(late.status, UploadStatus::Expired);
        assert_eq!(late.missing_chunks, vec![0, 1, 2, 3]);
    }
}
