//! The one shared state every handler and domain operation receives: the database, the
//! storage, the configuration. Nothing of GraphQL or HTTP: those layers sit above it.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::Config;
use crate::db::{Db, blobs};
use crate::storage::{self, HashAhead, Signer, Storage, random_key};
use crate::values::Clock;

#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    pub storage: Arc<Storage>,
    pub signer: Arc<Signer>,
    pub hash_ahead: Arc<HashAhead>,
    /// Devices this replica knows are registered (telemetry skips inserting them again).
    pub known_devices: Arc<crate::db::devices::KnownDevices>,
    /// Inference batches waiting to be written together (group commit).
    pub session_writes: Arc<crate::db::group::Group<crate::db::telemetry::SessionBatch, usize>>,
    /// "Now" for the rules that depend on elapsed time (tests move it forward).
    pub clock: Clock,
    /// This replica's copy of the public manifest, as of a catalog revision.
    pub manifest: Arc<tokio::sync::RwLock<Option<Arc<ManifestSnapshot>>>>,
}

/// The public manifest's bytes as of a catalog revision, with their strong ETag, and the same
/// document gzip-compressed once (JSON of this shape shrinks several times; compressing per
/// request would cost each request the CPU).
pub struct ManifestSnapshot {
    pub revision: i64,
    pub etag: String,
    pub body: bytes::Bytes,
    /// The gzip representation; its ETag is `etag` with `-gzip` inside the quotes, since a
    /// strong validator names one representation.
    pub gzip: bytes::Bytes,
    pub gzip_etag: String,
}

/// A strong ETag naming exactly these bytes: their SHA-256, quoted.
pub fn content_etag(body: &[u8]) -> String {
    use sha2::Digest;
    format!("\"{}\"", hex::encode(sha2::Sha256::digest(body)))
}

impl ManifestSnapshot {
    pub fn new(revision: i64, body: Vec<u8>) -> std::io::Result<ManifestSnapshot> {
        use std::io::Write;
        let etag = content_etag(&body);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body)?;
        Ok(ManifestSnapshot {
            revision,
            gzip_etag: format!("{}-gzip\"", etag.trim_end_matches('"')),
            etag,
            body: body.into(),
            gzip: encoder.finish()?.into(),
        })
    }
}

impl App {
    /// Connects to the configured database (applying pending migrations) and storage.
    pub async fn open(config: Config) -> anyhow::Result<App> {
        let db = Db::connect(&config.stores.database_url(), config.db_pool_size).await?;
        if config.stores.storage_url.is_none() {
            let data_dir = &config.stores.database.data_dir;
            if storage::adopt_earlier_layout(data_dir).map_err(|e| {
                anyhow::anyhow!("moving {} to the current layout: {e}", data_dir.display())
            })? {
                tracing::info!(data_dir = %data_dir.display(), "moved the blobs out of blobs/blobs");
            }
        }
        let storage = Storage::open(&config.stores.storage_url())?;
        // Ingest transactions at once: SQLite has one writer; PostgreSQL takes several, and
        // keeps half the pool for everything else.
        let writers = match db.backend() {
            crate::db::Backend::Sqlite => 1,
            crate::db::Backend::Postgres => config.db_pool_size / 2,
        };
        let key = db
            .transaction(async |tx| blobs::secret(tx, "url-signing-key", random_key).await)
            .await
            .map_err(|e| anyhow::anyhow!("reading the URL-signing key: {}", e.message()))?;
        Ok(App {
            db,
            storage: Arc::new(storage),
            signer: Arc::new(Signer::new(key.as_bytes())),
            hash_ahead: Arc::default(),
            manifest: Arc::default(),
            clock: Clock::default(),
            known_devices: Arc::default(),
            session_writes: Arc::new(crate::db::group::Group::new(writers)),
            config: Arc::new(config),
            metrics: metrics_handle(),
        })
    }
}

/// The process-wide Prometheus recorder: a process has one, however many `App`s it runs.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when a program embedding this library installed its own recorder
            // first; its recorder then receives the metrics and `/metrics` stays empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
