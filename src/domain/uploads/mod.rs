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
    self, BackgroundHasher, blob_key, chunk_key, direct_key, hex_digest, upload_prefix,
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
