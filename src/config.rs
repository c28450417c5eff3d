//! One configuration, from flags or the environment; the defaults are the embedded shape
//! (SQLite in `./data`, listening on loopback).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        env = "MR_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Folder for the embedded database and, by default, the blobs; created when missing.
    #[arg(long, env = "MR_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`; default: SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Connections per replica.
    #[arg(long, env = "MR_DB_POOL_SIZE", default_value_t = 16, global = true)]
    pub db_pool_size: usize,

    /// Largest GraphQL request body, in bytes; larger ones are answered 413.
    #[arg(long, env = "MR_GRAPHQL_BODY_LIMIT", default_value_t = 1024 * 1024, global = true)]
    pub graphql_body_limit: usize,

    /// `fs://DIR`, `s3://BUCKET/PREFIX` (endpoint, region and credentials from `AWS_*` or
    /// `?endpoint=&region=&access_key_id=&secret_access_key=`) or `memory://`; default:
    /// `fs://<data dir>/blobs`.
    #[arg(long, env = "STORAGE_URL", global = true, hide_env_values = true)]
    pub storage_url: Option<String>,

    /// The URL clients reach this server at, for the URLs it hands out (chunk and signed
    /// download URLs); default: from the request's `Host` header.
    #[arg(long, env = "MR_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// How long an upload session stays open, in seconds.
    #[arg(long, env = "MR_UPLOAD_TTL_SECS", default_value_t = 24 * 3600, global = true)]
    pub upload_ttl_secs: u64,

    /// How long unreferenced blobs are kept before the collector removes them, in seconds.
    #[arg(long, env = "MR_BLOB_RETENTION_SECS", default_value_t = 7 * 24 * 3600, global = true)]
    pub blob_retention_secs: u64,

    /// How often background jobs (expiring sessions, collecting blobs) run, in seconds; 0
    /// turns them off on this replica.
    #[arg(
        long,
        env = "MR_JOBS_INTERVAL_SECS",
        default_value_t = 60,
        global = true
    )]
    pub jobs_interval_secs: u64,

    #[arg(
        long,
        env = "MR_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

impl Config {
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("registry.db").display()),
        }
    }

    pub fn storage_url(&self) -> String {
        match &self.storage_url {
            Some(url) => url.clone(),
            None => format!("fs://{}", self.data_dir.join("blobs").display()),
        }
    }

    /// The embedded defaults with the data in `dir`: what tests and benchmarks start from.
    pub fn embedded(dir: impl Into<PathBuf>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.into(),
            database_url: None,
            db_pool_size: 8,
            graphql_body_limit: 1024 * 1024,
            storage_url: None,
            public_url: None,
            upload_ttl_secs: 24 * 3600,
            blob_retention_secs: 7 * 24 * 3600,
            jobs_interval_secs: 0,
            log_format: LogFormat::Text,
        }
    }
}
