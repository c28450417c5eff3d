//! Uploads on a local file system without a second copy. A chunk's first attempt is written at
//! its offset in the session's one staging file (`keys::staged_key`), synced as it completes so
//! the disk works while the network does; a finished upload is then published under its
//! content address by a hard link, which takes no time whatever the size. Object stores have
//! no such operations: there, uploads keep their chunk objects and completion assembles them.
//!
//! Why the staging file's bytes can be trusted: each chunk's region is written by one attempt
//! only (the database hands out the claim, `db::uploads::claim_chunk`), and a region counts as
//! received only once that attempt checked its length and digest and recorded it. A refused or
//! unfinished attempt leaves a region that nothing reads; the chunk's next attempt is stored as
//! an object of its own, and the session then completes by assembling (`domain::uploads`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{Storage, failure, is_out_of_space};
use crate::error::AppError;

/// Frames gathered before one positioned write: large enough that the blocking-pool round
/// trip is negligible, small enough to stay a flat few MiB per chunk in flight.
const WRITE_BATCH: usize = 1024 * 1024;

impl Storage {
    /// Whether uploads are written in place and published by a link (a local file system).
    pub fn writes_in_place(&self) -> bool {
        self.root.is_some()
    }

    /// The file of `key` on a local store. Keys are built from ids and digests only.
    fn local_path(&self, key: &str) -> Result<PathBuf, AppError> {
        self.root
            .as_ref()
            .map(|root| root.join(key))
            .ok_or_else(|| AppError::internal("in-place writes need a local file system"))
    }

    /// Streams `body` into `key`'s file at `offset` (the file is created by the first writer).
    /// `inspect` sees every frame, and `None` once the body ended; the bytes are synced only
    /// when it accepts them. On an error the region is left as it is: the caller records
    /// nothing for it.
    pub async fn write_at<S, E>(
        &self,
        key: &str,
        offset: u64,
        mut body: S,
        mut inspect: impl FnMut(Option<&Bytes>) -> Result<(), AppError>,
        map_err: impl Fn(E) -> AppError,
    ) -> Result<(), AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let path = self.local_path(key)?;
        let file = Arc::new(blocking(move || open_staged(&path)).await?);
        // One batch is written while the next one arrives.
        let mut writing: Option<tokio::task::JoinHandle<io::Result<()>>> = None;
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batch_len = 0usize;
        let mut at = offset;
        let result = async {
            while let Some(frame) = body.next().await {
                let frame = frame.map_err(&map_err)?;
                inspect(Some(&frame))?;
                batch_len += frame.len();
                batch.push(frame);
                if batch_len >= WRITE_BATCH {
                    if let Some(previous) = writing.take() {
                        joined(previous.await)?;
                    }
                    let (file, frames) = (file.clone(), std::mem::take(&mut batch));
                    writing = Some(tokio::task::spawn_blocking(move || {
                        write_frames(&file, at, &frames)
                    }));
                    at += batch_len as u64;
                    batch_len = 0;
                }
            }
            inspect(None)?;
            if let Some(previous) = writing.take() {
                joined(previous.await)?;
            }
            let file = file.clone();
            let frames = std::mem::take(&mut batch);
            blocking(move || {
                write_frames(&file, at, &frames)?;
                file.sync_data()
            })
            .await
        }
        .await;
        // No write of this request goes on after it answered (unless the request itself is
        // dropped mid-way; its claim is then never recorded, so its region is never read).
        if let Some(still) = writing {
            let _ = still.await;
        }
        result
    }

    /// Makes `from`'s file the object `to` without copying it: synced, hard-linked under the
    /// new name (an object already there holds the same bytes, as both are named by their
    /// digest) and the link made durable. `from` stays until the upload's files are removed.
    /// `Ok(false)` where the file system refuses the link (another mount, no hard links): the
    /// caller copies instead.
    pub async fn publish(&self, from: &str, to: &str) -> Result<bool, AppError> {
        let (from, to) = (self.local_path(from)?, self.local_path(to)?);
        blocking(move || {
            File::open(&from)?.sync_data()?;
            let folder = to.parent().unwrap_or(Path::new("/"));
            std::fs::create_dir_all(folder)?;
            match std::fs::hard_link(&from, &to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound || is_out_of_space(&e) => {
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the file system refused a hard link");
                    return Ok(false);
                }
            }
            sync_folders(folder, 2)?;
            Ok(true)
        })
        .await
    }
}

/// Makes the entries of `folder` and of its `depth - 1` parents durable: a file or folder just
/// created is only there after a crash once the folder holding it was synced.
fn sync_folders(folder: &Path, depth: usize) -> io::Result<()> {
    for folder in folder.ancestors().take(depth) {
        File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// Opens the staging file, creating it (and its folder, durably) for the session's first
/// chunk: chunks recorded as received must not lose their file's name in a crash.
fn open_staged(path: &Path) -> io::Result<File> {
    let folder = path.parent().unwrap_or(Path::new("/"));
    let create = || OpenOptions::new().write(true).create_new(true).open(path);
    let (file, new_folders) = match create() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(folder)?;
            (create(), 2)
        }
        other => (other, 1),
    };
    match file {
        Ok(file) => {
            sync_folders(folder, new_folders)?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().write(true).open(path)
        }
        Err(e) => Err(e),
    }
}

fn write_frames(file: &File, mut at: u64, frames: &[Bytes]) -> io::Result<()> {
    for frame in frames {
        file.write_all_at(frame, at)?;
        at += frame.len() as u64;
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, AppError> {
    joined(tokio::task::spawn_blocking(work).await)
}

fn joined<T>(outcome: Result<io::Result<T>, tokio::task::JoinError>) -> Result<T, AppError> {
    outcome
        .map_err(AppError::internal)?
        .map_err(|e| failure(&e))
}
