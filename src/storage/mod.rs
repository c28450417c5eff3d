//! Where artifact bytes live: one OpenDAL operator built from `STORAGE_URL`, the typed keys
//! objects are stored under (`keys`), URL signing (`signer`), streaming digests (`digest`) and
//! the hash-ahead bookkeeping of uploads (`hash_ahead`).
//!
//! Keys are built only from ids and hex digests, never from names a user sent, so nothing a
//! caller types reaches a path.

mod digest;
mod hash_ahead;
mod keys;
mod layout;
mod local;
mod s3;
mod signer;

pub use digest::{BackgroundHasher, hex_digest, parse_sha256};
pub use hash_ahead::HashAhead;
pub use keys::{blob_key, chunk_key, direct_key, staged_key, upload_prefix};
pub use layout::adopt_earlier_layout;
pub use signer::{SignedParams, Signer, random_key};

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use opendal::{Operator, services};

use crate::error::AppError;

/// The service behind the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Fs,
    S3,
    Memory,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Fs => "fs",
            Service::S3 => "s3",
            Service::Memory => "memory",
        }
    }
}

pub struct Storage {
    op: Operator,
    service: Service,
    /// `fs:///abs/dir`, `s3://bucket/prefix` or `memory://`: prefixed to keys in `storage_uri`.
    location: String,
    /// Bytes buffered per write before they go to the service (S3 multipart part size).
    write_chunk: usize,
    /// On `fs`, where unfinished writes live until they are renamed into place.
    staging: Option<std::path::PathBuf>,
    /// On `fs`, the folder keys are relative to: uploads are written in place there and
    /// published by a link instead of a copy (see `local`).
    root: Option<std::path::PathBuf>,
    /// On S3, the requests that assemble an upload from its chunk objects inside the service.
    s3: Option<s3::S3Compose>,
}

/// A parsed `STORAGE_URL`: the service, the folder or `bucket/prefix`, and query parameters.
pub struct StorageUrl {
    pub service: Service,
    pub path: String,
    pub params: Vec<(String, String)>,
}

/// Storage URLs name a folder, a bucket or memory.
pub fn parse_url(url: &str) -> Result<StorageUrl, AppError> {
    let bad = |m: &str| AppError::bad_input("STORAGE_URL", m.to_owned());
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected fs://DIR, s3://BUCKET/PREFIX or memory://"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let service = match scheme {
        "fs" | "file" => Service::Fs,
        "s3" => Service::S3,
        "memory" => Service::Memory,
        other => return Err(bad(&format!("unsupported storage scheme `{other}`"))),
    };
    if service != Service::Memory && path.is_empty() {
        return Err(bad("the URL names no folder or bucket"));
    }
    Ok(StorageUrl {
        service,
        path: path.to_owned(),
        params,
    })
}

impl Storage {
    /// Builds the operator; on `fs` the folder (and its write-staging folder) is created.
    pub fn open(url: &str) -> Result<Storage, anyhow::Error> {
        opendal::install_default();
        let StorageUrl {
            service,
            path,
            params,
        } = parse_url(url).map_err(|e| anyhow::anyhow!(e.message()))?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut staging_dir = None;
        let mut fs_root = None;
        let mut s3_compose = None;
        let (op, location, write_chunk) = match service {
            Service::Fs => {
                let root = std::path::absolute(&path)?;
                let staging = root.join(".staging");
                std::fs::create_dir_all(&staging).map_err(|e| {
                    anyhow::anyhow!("creating storage folder {}: {e}", root.display())
                })?;
                staging_dir = Some(staging.clone());
                fs_root = Some(root.clone());
                let builder = services::Fs::default()
                    .root(&root.to_string_lossy())
                    .atomic_write_dir(&staging.to_string_lossy());
                (
                    Operator::new(builder)?,
                    format!("fs://{}", root.display()),
                    // Frames are appended as they arrive; the file system buffers.
                    0,
                )
            }
            Service::S3 => {
                let (bucket, prefix) = path.split_once('/').unwrap_or((&path, ""));
                let mut builder = services::S3::default()
                    .bucket(bucket)
                    .root(&format!("/{}", prefix.trim_matches('/')));
                let endpoint = param("endpoint")
                    .or_else(|| env("AWS_ENDPOINT_URL_S3"))
                    .or_else(|| env("AWS_ENDPOINT_URL"));
                if let Some(endpoint) = &endpoint {
                    builder = builder.endpoint(endpoint);
                }
                let region = param("region")
                    .or_else(|| env("AWS_REGION"))
                    .or_else(|| env("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| "us-east-1".to_owned());
                builder = builder.region(&region);
                let key_id = param("access_key_id").or_else(|| env("AWS_ACCESS_KEY_ID"));
                if let Some(id) = &key_id {
                    builder = builder.access_key_id(id);
                }
                let secret_key =
                    param("secret_access_key").or_else(|| env("AWS_SECRET_ACCESS_KEY"));
                if let Some(secret) = &secret_key {
                    builder = builder.secret_access_key(secret);
                }
                let token_setting = param("session_token").or_else(|| env("AWS_SESSION_TOKEN"));
                if let Some(token) = &token_setting {
                    builder = builder.session_token(token);
                }
                let virtual_host_style = param("virtual_host_style").as_deref() == Some("true");
                if virtual_host_style {
                    builder = builder.enable_virtual_host_style();
                }
                s3_compose = Some(s3::S3Compose::new(s3::S3Settings {
                    bucket: bucket.to_owned(),
                    prefix: prefix.to_owned(),
                    endpoint,
                    region: region.clone(),
                    access_key_id: key_id,
                    secret_access_key: secret_key,
                    session_token: token_setting,
                    virtual_host_style,
                })?);
                (
                    Operator::new(builder)?,
                    format!("s3://{}", path.trim_end_matches('/')),
                    8 * 1024 * 1024,
                )
            }
            Service::Memory => (
                Operator::new(services::Memory::default())?,
                "memory://".to_owned(),
                0,
            ),
        };
        // Object stores drop connections now and then; OpenDAL marks those errors temporary
        // and this layer retries them (reads resume where they stopped). Not on a local file
        // system: OpenDAL marks almost every io error temporary there, and a full disk would
        // be retried for twenty seconds per write before the caller hears of it.
        let op = if service == Service::S3 {
            op.layer(
                opendal::layers::RetryLayer::new()
                    .with_max_times(4)
                    .with_jitter(),
            )
        } else {
            op
        };
        Ok(Storage {
            op,
            service,
            location,
            write_chunk,
            staging: staging_dir,
            root: fs_root,
            s3: s3_compose,
        })
    }

    /// Whether `compose` can assemble these parts inside the service (S3, parts S3 accepts).
    pub fn composes(&self, parts: &[(String, std::ops::Range<u64>)]) -> bool {
        self.s3.is_some() && s3::S3Compose::fits(parts)
    }

    /// Makes `target` the concatenation of `parts` inside the storage service, without their
    /// bytes passing through this server; only where `composes` said so.
    pub async fn compose(
        &self,
        parts: &[(String, std::ops::Range<u64>)],
        target: &str,
    ) -> Result<(), AppError> {
        match &self.s3 {
            Some(s3) => s3.compose(parts, target).await,
            None => Err(AppError::internal("composing needs an S3 store")),
        }
    }

    pub fn operator(&self) -> &Operator {
        &self.op
    }

    pub fn service(&self) -> Service {
        self.service
    }

    /// The URI recorded on an artifact for an object key.
    pub fn uri(&self, key: &str) -> String {
        format!("{}/{}", self.location.trim_end_matches('/'), key)
    }

    /// Whether the service signs URLs itself (S3); otherwise this server signs its own.
    pub fn presigns(&self) -> bool {
        let cap = self.op.info().capability();
        cap.presign_read && cap.presign_write
    }

    /// `/readyz`: the service answers.
    pub async fn ping(&self) -> Result<(), AppError> {
        self.op.check().await.map_err(storage_error)
    }

    /// Bytes still free for this store, where it is a local file system; object stores have
    /// no such number (`None`).
    pub async fn free_bytes(&self) -> Result<Option<u64>, AppError> {
        let Some(staging) = self.staging.clone() else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || {
            let stat = rustix::fs::statvfs(&staging).map_err(AppError::internal)?;
            Ok(Some(stat.f_bavail.saturating_mul(stat.f_frsize)))
        })
        .await
        .map_err(AppError::internal)?
    }

    pub async fn exists(&self, key: &str) -> Result<bool, AppError> {
        self.op.exists(key).await.map_err(storage_error)
    }

    pub async fn size_of(&self, key: &str) -> Result<Option<u64>, AppError> {
        match self.op.stat(key).await {
            Ok(meta) => Ok(Some(meta.content_length())),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }

    /// Removes unfinished writes older than `age` from the fs staging folder: what a process
    /// killed in the middle of a write leaves (an aborted write removes its own).
    pub async fn sweep_staging(&self, age: Duration) -> Result<usize, AppError> {
        let Some(dir) = self.staging.clone() else {
            return Ok(0);
        };
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            let entries = std::fs::read_dir(&dir).map_err(AppError::internal)?;
            for entry in entries.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|elapsed| elapsed >= age);
                if old && entry.path().is_file() && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
        .map_err(AppError::internal)?
    }

    pub async fn delete(&self, key: &str) -> Result<(), AppError> {
        self.op.delete(key).await.map_err(storage_error)
    }

    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), AppError> {
        self.op
            .delete_with(prefix)
            .recursive(true)
            .await
            .map_err(storage_error)
    }

    /// A writer for `key` with this service's buffering; the caller closes or aborts it.
    pub async fn writer(&self, key: &str) -> Result<opendal::Writer, AppError> {
        if self.write_chunk > 0 {
            self.op
                .writer_with(key)
                .chunk(self.write_chunk)
                .concurrent(2)
                .await
        } else {
            self.op.writer(key).await
        }
        .map_err(storage_error)
    }

    /// Streams `body` to `key`, calling `inspect` on every frame (to count, hash or refuse it)
    /// and with `None` once the body ended, before the object is committed. The object appears
    /// whole or not at all: on any error, or when `inspect` refuses, the write is aborted.
    pub async fn write_stream<S, E>(
        &self,
        key: &str,
        mut body: S,
        mut inspect: impl FnMut(Option<&Bytes>) -> Result<(), AppError>,
        map_err: impl Fn(E) -> AppError,
    ) -> Result<(), AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut writer = self.writer(key).await?;
        let result = async {
            while let Some(frame) = body.next().await {
                let frame = frame.map_err(&map_err)?;
                inspect(Some(&frame))?;
                writer.write(frame).await.map_err(storage_error)?;
            }
            inspect(None)
        }
        .await;
        match result {
            Ok(()) => writer.close().await.map(|_| ()).map_err(storage_error),
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(key, error = %abort, "aborting a storage write failed");
                }
                Err(e)
            }
        }
    }

    /// The bytes of `key` in `range`, as a stream.
    pub async fn read_stream(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static + use<>, AppError> {
        let reader = self
            .op
            .reader_with(key)
            .chunk(4 * 1024 * 1024)
            .concurrent(2)
            .await
            .map_err(storage_error)?;
        reader.into_bytes_stream(range).await.map_err(storage_error)
    }

    /// A URL the storage service itself accepts without our key, where it signs one.
    pub async fn presign_read(
        &self,
        key: &str,
        ttl: Duration,
        disposition: &str,
    ) -> Result<String, AppError> {
        self.op
            .presign_read_with(key, ttl)
            .override_content_disposition(disposition)
            .await
            .map(|req| req.uri().to_string())
            .map_err(storage_error)
    }

    pub async fn presign_write(&self, key: &str, ttl: Duration) -> Result<String, AppError> {
        self.op
            .presign_write(key, ttl)
            .await
            .map(|req| req.uri().to_string())
            .map_err(storage_error)
    }
}

/// A full disk (or quota) is the operator's to fix and the client's to retry later, so it is
/// named; every other storage failure is logged and INTERNAL.
pub fn storage_error(err: opendal::Error) -> AppError {
    failure(&err)
}

/// `storage_error` for any error, whether from OpenDAL or from the local file system.
fn failure(err: &(dyn std::error::Error + 'static)) -> AppError {
    if is_out_of_space(err) {
        tracing::warn!(error = %err, "storage is out of space");
        return AppError::InsufficientStorage;
    }
    AppError::internal(format_args!("storage: {err}"))
}

/// Whether an io error (ENOSPC, EDQUOT) sits anywhere in the error's chain.
fn is_out_of_space(err: &(dyn std::error::Error + 'static)) -> bool {
    crate::error::caused_by(err, |e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_service() {
        assert_eq!(parse_url("fs://./data/blobs").unwrap().service, Service::Fs);
        let url = parse_url("s3://bucket/models?endpoint=http://127.0.0.1:9000&region=eu").unwrap();
        assert_eq!(
            (url.service, url.path.as_str()),
            (Service::S3, "bucket/models")
        );
        assert_eq!(url.params[1], ("region".to_owned(), "eu".to_owned()));
        assert_eq!(parse_url("memory://").unwrap().service, Service::Memory);
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("s3://").is_err());
    }
}
