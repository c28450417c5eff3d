//! What this replica has hashed of each upload so far, so completion does not start from zero.
//!
//! SHA-256 is sequential: chunk `n` can be hashed only after chunks `0..n`. Whenever a replica
//! stores a chunk, `domain::uploads::prehash` hashes the contiguous run of stored chunks that follows
//! what was already hashed and records the state here. Completion on the same replica continues
//! from that state. It is only a head start: chunk objects are immutable and named by
//! generation, so a state is used only when the generations it hashed are exactly the first
//! ones the completion assembles; otherwise (a re-sent chunk, another replica, a restart)
//! completion hashes from the beginning. The digest is always checked against the expected one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::Sha256;

use crate::values::Id;

/// Sessions hashed ahead at once per replica; more are left to completion.
const MAX_SESSIONS: usize = 64;
/// A session idle this long on this replica (completed or abandoned elsewhere) gives its place up.
const IDLE: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct HashAhead {
    sessions: Mutex<HashMap<Id, Progress>>,
}

struct Progress {
    state: Sha256,
    /// Generations of chunks `0..len`, in order, that `state` has hashed.
    hashed: Vec<Id>,
    running: bool,
    touched: Instant,
}

/// Whether `hashed` names the first of the stored `(index, generation)` parts, in order.
fn is_prefix(hashed: &[Id], parts: &[(i64, Id)]) -> bool {
    hashed.len() <= parts.len()
        && hashed
            .iter()
            .zip(parts)
            .enumerate()
            .all(|(i, (generation, (index, stored)))| *index == i as i64 && stored == generation)
}

impl HashAhead {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Progress>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the session for one hashing task: false when a task already runs for it, or when
    /// this replica already follows as many sessions as it may.
    pub fn claim(&self, session: Id) -> bool {
        let mut sessions = self.sessions();
        if !sessions.contains_key(&session) && sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, p| p.running || p.touched.elapsed() < IDLE);
            if sessions.len() >= MAX_SESSIONS {
                return false;
            }
        }
        let progress = sessions.entry(session).or_insert_with(|| Progress {
            state: Sha256::default(),
            hashed: Vec::new(),
            running: false,
            touched: Instant::now(),
        });
        progress.touched = Instant::now();
        !std::mem::replace(&mut progress.running, true)
    }

    /// Ends the session's hashing task.
    pub fn release(&self, session: Id) {
        if let Some(progress) = self.sessions().get_mut(&session) {
            progress.running = false;
        }
    }

    /// The state to continue from and the position in `parts` of the next part to hash, or
    /// `None` when the next chunk is not stored yet. A state that no longer matches the stored
    /// parts (a chunk was re-sent) starts over.
    pub fn next(&self, session: Id, parts: &[(i64, Id)]) -> Option<(Sha256, usize)> {
        let mut sessions = self.sessions();
        let progress = sessions.get_mut(&session)?;
        if !is_prefix(&progress.hashed, parts) {
            progress.state = Sha256::default();
            progress.hashed.clear();
        }
        let next = progress.hashed.len();
        match parts.get(next) {
            Some((index, _)) if *index == next as i64 => Some((progress.state.clone(), next)),
            _ => None,
        }
    }

    /// Records that the part at `position`, of `generation`, is now hashed into `state`.
    pub fn record(&self, session: Id, position: usize, generation: Id, state: Sha256) {
        if let Some(progress) = self.sessions().get_mut(&session)
            && progress.hashed.len() == position
        {
            progress.state = state;
            progress.hashed.push(generation);
        }
    }

    /// The state to continue from when assembling `parts`, and how many leading parts it
    /// covers; the session is forgotten either way.
    pub fn take(&self, session: Id, parts: &[(i64, Id)]) -> (Sha256, usize) {
        match self.sessions().remove(&session) {
            Some(p) if is_prefix(&p.hashed, parts) => {
                let covered = p.hashed.len();
                (p.state, covered)
            }
            _ => (Sha256::default(), 0),
        }
    }

    pub fn forget(&self, session: Id) {
        self.sessions().remove(&session);
    }
}
