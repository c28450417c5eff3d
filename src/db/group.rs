//! Group commit: writes that arrive while one is running wait, and the next transaction
//! writes all of them at once.
//!
//! A transaction costs something however little it writes: on SQLite the writer lock changes
//! hands and the commit rewrites the last page of every index it touched; on PostgreSQL the
//! commit waits for its WAL flush. Fleets send many small batches, so ingest pays that cost per
//! request unless requests share it. Each waiting request is answered only after the
//! transaction holding its work committed, so nothing is acknowledged that could still be lost.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::error::AppError;

/// Most jobs one transaction takes: the rest wait for the next, so a transaction's size stays
/// bounded however many requests queue up.
const MAX_JOBS_PER_WRITE: usize = 32;

type Reply<R> = oneshot::Sender<Result<R, AppError>>;

/// Jobs waiting to be written, and the turns to write them.
pub struct Group<J, R> {
    queue: Mutex<Vec<(J, Reply<R>)>>,
    writers: tokio::sync::Semaphore,
}

impl<J, R> Group<J, R> {
    /// At most `writers` transactions at once: one where the database has a single writer
    /// anyway (SQLite), several where transactions run side by side (PostgreSQL), so jobs
    /// queue, and share a transaction, only once every turn is taken.
    pub fn new(writers: usize) -> Group<J, R> {
        Group {
            queue: Mutex::new(Vec::new()),
            writers: tokio::sync::Semaphore::new(writers.max(1)),
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> Group<J, R> {
    /// Queues `job` and answers its result once the transaction that wrote it committed.
    ///
    /// `write` gets the jobs queued when the writer turn came (this one and any others, in
    /// the order they arrived) and answers one result per job, in that order; it is expected
    /// to write them all in one transaction, so they commit or fail together. The turn is
    /// taken on a task of its own: a caller that goes away (a dropped request) neither strands
    /// its job in the queue nor cuts another caller's write short.
    pub async fn submit<W, F>(self: &Arc<Self>, job: J, write: W) -> Result<R, AppError>
    where
        W: FnOnce(Vec<J>) -> F + Send + 'static,
        F: Future<Output = Result<Vec<R>, AppError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.lock_queue().push((job, reply));
        let group = Arc::clone(self);
        tokio::spawn(async move {
            let Ok(_turn) = group.writers.acquire().await else {
                return;
            };
            let taken: Vec<(J, Reply<R>)> = {
                let mut queue = group.lock_queue();
                let n = queue.len().min(MAX_JOBS_PER_WRITE);
                queue.drain(..n).collect()
            };
            if taken.is_empty() {
                // An earlier turn wrote this job along with its own.
                return;
            }
            let (jobs, replies): (Vec<J>, Vec<Reply<R>>) = taken.into_iter().unzip();
            let count = jobs.len();
            match write(jobs).await {
                Ok(results) if results.len() == count => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(result));
                    }
                }
                Ok(_) => {
                    let e = AppError::internal("a group write answered for another number of jobs");
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        });
        answer
            .await
            .map_err(|_| AppError::internal("the write holding this request's work stopped"))?
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<(J, Reply<R>)>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
