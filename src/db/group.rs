//! Group commit: writes that arrive while one is running wait, and the next transaction
//! writes all of them at once.
//!
//! A transaction costs something however little it writes: on SQLite the writer lock changes
//! hands and the commit rewrites the last page of every index it touched; on PostgreSQL the
//! commit waits for its WAL flush. Fleets send many small batches, so ingest pays that cost per
//! request unless requests share it. Each waiting request is answered only after the
//! transaction holding its work committed (or failed).

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
    /// `write` gets the jobs queued when a writer turn came (this one and any others, in the
    /// order they arrived) and answers one result per job, in that order. It is expected to
    /// write them in one transaction, and, when that fails, to find out which job was at fault
    /// rather than fail them all. Whichever caller's `write` takes a turn writes the other
    /// callers' jobs too, so it must not depend on who submitted. The turn is taken on a task of
    /// its own: a caller that goes away (a dropped request) neither strands its job in the
    /// queue nor cuts another caller's write short.
    pub async fn submit<W, F>(self: &Arc<Self>, job: J, write: W) -> Result<R, AppError>
    where
        W: FnOnce(Vec<J>) -> F + Send + 'static,
        F: Future<Output = Vec<Result<R, AppError>>> + Send + 'static,
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
            let results = write(jobs).await;
            if results.len() != count {
                let e = AppError::internal("a group write answered for another number of jobs");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
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

#[cfg(test)]
mod tests {
    use super::*;

    type Writes = Arc<Mutex<Vec<Vec<u32>>>>;

    /// Submits `job` with a write that records its jobs and answers each job × 10 (with `fail`,
    /// an error for every job but job 2), and, when `hold` is given, first says it started and
    /// waits to be released.
    fn submit(
        group: &Arc<Group<u32, u32>>,
        writes: &Writes,
        job: u32,
        hold: Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>,
        fail: bool,
    ) -> tokio::task::JoinHandle<Result<u32, AppError>> {
        let (group, writes) = (Arc::clone(group), Arc::clone(writes));
        tokio::spawn(async move {
            group
                .submit(job, move |mut jobs: Vec<u32>| async move {
                    if let Some((started, release)) = hold {
                        let _ = started.send(());
                        let _ = release.await;
                    }
                    jobs.sort_unstable();
                    writes.lock().unwrap().push(jobs.clone());
                    jobs.iter()
                        .map(|j| {
                            if fail && *j != 2 {
                                Err(AppError::internal("the disk is full"))
                            } else {
                                Ok(j * 10)
                            }
                        })
                        .collect()
                })
                .await
        })
    }

    /// Submits job 1 with a write that holds its turn until released; answers once it holds.
    async fn held_first(
        group: &Arc<Group<u32, u32>>,
        writes: &Writes,
    ) -> (
        tokio::task::JoinHandle<Result<u32, AppError>>,
        oneshot::Sender<()>,
    ) {
        let (started, has_started) = oneshot::channel();
        let (release, released) = oneshot::channel();
        let first = submit(group, writes, 1, Some((started, released)), false);
        has_started.await.unwrap();
        (first, release)
    }

    async fn queued(group: &Group<u32, u32>, n: usize) {
        for _ in 0..10_000 {
            if group.lock_queue().len() == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{n} jobs never queued");
    }

    #[tokio::test]
    async fn jobs_that_queue_during_a_write_share_the_next_one() {
        let group = Arc::new(Group::new(1));
        let writes = Writes::default();
        let (first, release) = held_first(&group, &writes).await;
        let others: Vec<_> = (2..=4)
            .map(|job| submit(&group, &writes, job, None, false))
            .collect();
        queued(&group, 3).await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 10);
        for (job, other) in (2..=4).zip(others) {
            assert_eq!(
                other.await.unwrap().unwrap(),
                job * 10,
                "each job gets its own answer"
            );
        }
        assert_eq!(*writes.lock().unwrap(), vec![vec![1], vec![2, 3, 4]]);
    }

    #[tokio::test]
    async fn each_job_gets_its_own_outcome() {
        let group = Arc::new(Group::new(1));
        let writes = Writes::default();
        let (first, release) = held_first(&group, &writes).await;
        // Written together, job 2 succeeds and job 3 fails.
        let shared: Vec<_> = (2..=3)
            .map(|job| submit(&group, &writes, job, None, true))
            .collect();
        queued(&group, 2).await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 10);
        let outcomes: Vec<bool> = futures::future::join_all(shared)
            .await
            .into_iter()
            .map(|r| r.unwrap().is_ok())
            .collect();
        assert_eq!(outcomes, vec![true, false]);
        assert_eq!(*writes.lock().unwrap(), vec![vec![1], vec![2, 3]]);
    }

    #[tokio::test]
    async fn several_turns_write_side_by_side() {
        let group = Arc::new(Group::new(2));
        let writes = Writes::default();
        let (a, release_a) = held_first(&group, &writes).await;
        let (started_b, b_started) = oneshot::channel();
        let (release_b, b_released) = oneshot::channel();
        // The second job finds a free turn while the first write is held: both are under way
        // before either is released.
        let b = submit(&group, &writes, 2, Some((started_b, b_released)), false);
        tokio::time::timeout(std::time::Duration::from_secs(10), b_started)
            .await
            .expect("the second write waited for the first")
            .unwrap();
        release_a.send(()).unwrap();
        release_b.send(()).unwrap();
        assert_eq!(
            (a.await.unwrap().unwrap(), b.await.unwrap().unwrap()),
            (10, 20)
        );
    }
}
