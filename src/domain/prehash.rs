//! Hashing uploads while they arrive, so completion does not start from zero.
//!
//! SHA-256 is sequential: chunk `n` can be hashed only after chunks `0..n`. Whenever a replica
//! stores a chunk, it hashes the contiguous run of stored chunks that follows what it already
//! hashed, on a blocking thread, and keeps the state in memory. Completion on the same replica
//! continues from that state. It is only a head start: chunk objects are immutable and named by
//! generation, so the state is used only when the generations it hashed are exactly the ones the
//! completion assembles; otherwise (a re-sent chunk, another replica, a restart) completion
//! hashes from the beginning. The digest is always checked against the expected one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use sha2::Sha256;

use crate::app::App;
use crate::db::uploads::{self, Received};
use crate::storage::{BackgroundHasher, chunk_key};
use crate::values::Id;

/// Sessions hashed ahead at once per replica; more are left to completion.
const MAX_SESSIONS: usize = 64;
/// A session idle this long on this replica (completed or abandoned elsewhere) gives its place up.
const IDLE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct Prehash {
    sessions: Mutex<HashMap<Id, Progress>>,
}

struct Progress {
    state: Sha256,
    /// Generations of chunks `0..len`, in order, that `state` has hashed.
    hashed: Vec<Id>,
    running: bool,
    touched: std::time::Instant,
}

/// Whether `hashed` names the first chunks of `received`, in order.
fn is_prefix(hashed: &[Id], received: &[Received]) -> bool {
    hashed.len() <= received.len()
        && hashed
            .iter()
            .zip(received)
            .enumerate()
            .all(|(i, (generation, chunk))| {
                chunk.index == i as i64 && chunk.generation == *generation
            })
}

impl Prehash {
    /// A chunk of `session` was stored: hash ahead if this replica is not already doing so.
    pub fn nudge(app: &App, session: Id) {
        let prehash = app.prehash.clone();
        {
            let mut sessions = prehash.sessions.lock().expect("prehash lock");
            if !sessions.contains_key(&session) && sessions.len() >= MAX_SESSIONS {
                sessions.retain(|_, p| p.running || p.touched.elapsed() < IDLE);
                if sessions.len() >= MAX_SESSIONS {
                    return;
                }
            }
            let progress = sessions.entry(session).or_insert_with(|| Progress {
                state: Sha256::default(),
                hashed: Vec::new(),
                running: false,
                touched: std::time::Instant::now(),
            });
            progress.touched = std::time::Instant::now();
            if progress.running {
                return;
            }
            progress.running = true;
        }
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = prehash.advance(&app, session).await {
                tracing::debug!(session = %session, error = ?e, "hashing ahead stopped");
            }
            if let Some(progress) = prehash
                .sessions
                .lock()
                .expect("prehash lock")
                .get_mut(&session)
            {
                progress.running = false;
            }
        });
    }

    async fn advance(&self, app: &App, session: Id) -> Result<(), crate::error::AppError> {
        loop {
            let received = uploads::received(&app.db, &[session])
                .await?
                .remove(&session)
                .unwrap_or_default();
            let (state, next) = {
                let mut sessions = self.sessions.lock().expect("prehash lock");
                let Some(progress) = sessions.get_mut(&session) else {
                    return Ok(());
                };
                if !is_prefix(&progress.hashed, &received) {
                    progress.state = Sha256::default();
                    progress.hashed.clear();
                }
                let next = progress.hashed.len();
                match received.get(next) {
                    Some(chunk) if chunk.index == next as i64 => (progress.state.clone(), *chunk),
                    _ => return Ok(()),
                }
            };
            let hasher = BackgroundHasher::resume(state);
            let mut stream = app
                .storage
                .read_stream(
                    &chunk_key(session, next.index, next.generation),
                    0..next.size as u64,
                )
                .await?;
            while let Some(frame) = stream.next().await {
                let frame = frame.map_err(crate::error::AppError::internal)?;
                hasher.update(frame).await?;
            }
            let state = hasher.finish_state().await?;
            let mut sessions = self.sessions.lock().expect("prehash lock");
            let Some(progress) = sessions.get_mut(&session) else {
                return Ok(());
            };
            if progress.hashed.len() as i64 == next.index {
                progress.state = state;
                progress.hashed.push(next.generation);
            }
        }
    }

    /// The state to continue from when assembling `received`, and how many leading chunks it
    /// covers; the session is forgotten either way.
    pub fn take(&self, session: Id, received: &[Received]) -> (Sha256, usize) {
        let progress = self.sessions.lock().expect("prehash lock").remove(&session);
        match progress {
            Some(p) if is_prefix(&p.hashed, received) => {
                let covered = p.hashed.len();
                (p.state, covered)
            }
            _ => (Sha256::default(), 0),
        }
    }

    pub fn forget(&self, session: Id) {
        self.sessions.lock().expect("prehash lock").remove(&session);
    }
}

/// Shared by every handler of one process.
pub type SharedPrehash = Arc<Prehash>;
