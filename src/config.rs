//! One configuration, from flags or the environment; the defaults are the embedded shape
//! (SQLite in `./data`, listening on loopback).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Unreferenced blobs are kept a week by default: the server and `gc` agree on it.
pub const BLOB_RETENTION_SECS: u64 = 7 * 24 * 3600;

/// Days raw telemetry events are kept, by default.
pub const TELEMETRY_RETENTION_DAYS: u32 = 30;

/// The accepted range of `--telemetry-retention-days`, for the server and `gc` alike.
pub fn retention_days() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=3650)
}

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "MR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    // Where the database and the blobs are.
    #[command(flatten)]
    pub stores: Stores,

    /// Connections per replica.
    #[arg(long, env = "MR_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// Largest GraphQL request body, in bytes; larger ones are answered 413.
    #[arg(long, env = "MR_GRAPHQL_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub graphql_body_limit: usize,

    /// The URL clients reach this server at, for the URLs it hands out (chunk and signed
    /// download URLs); default: from the request's `Host` header.
    #[arg(long, env = "MR_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How long an upload session stays open, in seconds.
    #[arg(long, env = "MR_UPLOAD_TTL_SECS", default_value_t = 24 * 3600)]
    pub upload_ttl_secs: u64,

    /// How long unreferenced blobs are kept before the collector removes them, in seconds.
    #[arg(long, env = "MR_BLOB_RETENTION_SECS", default_value_t = BLOB_RETENTION_SECS)]
    pub blob_retention_secs: u64,

    /// How often background jobs (expiring sessions, collecting blobs) run, in seconds; 0
    /// turns them off on this replica.
    #[arg(long, env = "MR_JOBS_INTERVAL_SECS", default_value_t = 60)]
    pub jobs_interval_secs: u64,

    /// Largest artifact an upload session accepts, in bytes (default 5 TiB).
    #[arg(long, env = "MR_MAX_ARTIFACT_BYTES", default_value_t = 5 * 1024 * 1024 * 1024 * 1024)]
    pub max_artifact_bytes: u64,

    /// Longest lifetime of a signed URL, in seconds: longer ones are refused when asked for
    /// and when presented (default 7 days).
    #[arg(long, env = "MR_MAX_SIGNED_URL_SECS", default_value_t = 7 * 24 * 3600)]
    pub max_signed_url_secs: u64,

    /// `/readyz` reports not ready when a local storage folder has less free space, in bytes.
    #[arg(long, env = "MR_MIN_FREE_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub min_free_bytes: u64,

    /// Seconds a client has to send a request's head; also how long an idle keep-alive
    /// connection is kept waiting for its next request.
    #[arg(long, env = "MR_HEADER_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub header_read_timeout_secs: u64,

    /// Longest pause, in seconds, between two parts of a request body (a stalled upload).
    #[arg(long, env = "MR_BODY_READ_TIMEOUT_SECS", default_value_t = 60)]
    pub body_read_timeout_secs: u64,

    /// Longest time, in seconds, a connection may stall on a client that does not read what
    /// it is sent.
    #[arg(long, env = "MR_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Origins of browser apps that may call the API (`https://app.example.com`, comma
    /// separated); `*` lets any page call it, for development only. Default: none.
    #[arg(
        long,
        env = "MR_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = parse_origin
    )]
    pub cors_origins: Vec<String>,

    /// Where the GraphiQL page loads GraphiQL and React from: a CDN in unpkg's layout
    /// (`<url>/<package>@<version>/<file>`), or a mirror of it on an air-gapped network.
    #[arg(
        long,
        env = "MR_GRAPHIQL_ASSETS_URL",
        default_value = "https://unpkg.com"
    )]
    pub graphiql_assets_url: String,

    /// Bytes of query text a replica keeps for automatic persisted queries.
    #[arg(
        long,
        env = "MR_PERSISTED_QUERIES_BYTES",
        default_value_t = 16 * 1024 * 1024
    )]
    pub persisted_queries_bytes: usize,

    /// Bytes of GraphQL answers a replica keeps to serve again while the registry has not
    /// changed (read-only queries of models, versions, projects and organizations); 0 turns
    /// the cache off.
    #[arg(
        long,
        env = "MR_RESPONSE_CACHE_BYTES",
        default_value_t = 32 * 1024 * 1024
    )]
    pub response_cache_bytes: usize,

    /// Service tiers besides the built-in `self_hosted`, on which shared models with the
    /// SHARED catalog role may run (`slug` or `slug=Name`, comma separated).
    #[arg(
        long,
        env = "MR_SERVICE_TIERS",
        value_delimiter = ',',
        value_parser = parse_tier,
        default_value = "serverless=Serverless,dedicated=Dedicated"
    )]
    pub service_tiers: Vec<ServiceTier>,

    /// Days raw telemetry events are kept (exact answers for small windows, recognising a
    /// retried event); summaries are kept for good. Older events are refused at ingest.
    #[arg(long, env = "MR_TELEMETRY_RETENTION_DAYS", default_value_t = TELEMETRY_RETENTION_DAYS, value_parser = retention_days())]
    pub telemetry_retention_days: u32,

    /// A device whose last heartbeat is older than this is DEGRADED instead of HEALTHY.
    #[arg(long, env = "MR_DEVICE_DEGRADED_AFTER_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub device_degraded_after_secs: u64,

    /// A device whose last heartbeat is older than this (or that never sent one) is OFFLINE;
    /// at least the degraded threshold.
    #[arg(long, env = "MR_DEVICE_OFFLINE_AFTER_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub device_offline_after_secs: u64,

    /// How log lines are written to stderr: plain text, or one JSON object per line.
    #[arg(long, env = "MR_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Where the database is: `migrate` and `keys` need this much of the server's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Database {
    /// Folder of the embedded database and, by default, the blobs; the server creates it.
    #[arg(long, env = "MR_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`; default: SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Where the data lives: the database and the blobs, which the server and `gc` both need.
#[derive(Debug, Clone, clap::Args)]
pub struct Stores {
    #[command(flatten)]
    pub database: Database,

    /// `fs://DIR`, `s3://BUCKET/PREFIX` (endpoint, region and credentials from `AWS_*` or
    /// `?endpoint=&region=&access_key_id=&secret_access_key=`) or `memory://`; default:
    /// `fs://<data dir>` (blobs in `<data dir>/blobs/sha256`).
    #[arg(long, env = "STORAGE_URL", hide_env_values = true)]
    pub storage_url: Option<String>,
}

/// A service tier other projects' endpoints may use, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTier {
    pub slug: String,
    pub name: String,
}

/// The tier every instance has: the deployer's own hardware.
pub const SELF_HOSTED_TIER: &str = "self_hosted";

/// `slug` or `slug=Name`; slugs are lowercase letters, digits, `-` and `_`.
fn parse_tier(text: &str) -> Result<ServiceTier, String> {
    let (slug, name) = match text.split_once('=') {
        Some((slug, name)) => (slug.trim(), name.trim().to_owned()),
        None => (text.trim(), text.trim().to_owned()),
    };
    let valid = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        return Err(format!(
            "`{slug}` is not a tier slug: lowercase letters, digits, `-` and `_`"
        ));
    }
    if slug == SELF_HOSTED_TIER {
        return Err(format!("`{SELF_HOSTED_TIER}` is built in"));
    }
    if name.is_empty() {
        return Err(format!("tier `{slug}` needs a name after `=`"));
    }
    Ok(ServiceTier {
        slug: slug.to_owned(),
        name,
    })
}

/// `*`, or `scheme://host[:port]` as a browser sends it in `Origin` (no path, no slash).
fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text == "*" {
        return Ok(text.to_owned());
    }
    let valid = text.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https")
            && !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an origin: expected `*` or `https://host[:port]`, without a path"
        ))
    }
}

impl Database {
    pub fn url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("registry.db").display()),
        }
    }
}

impl Stores {
    pub fn database_url(&self) -> String {
        self.database.url()
    }

    pub fn storage_url(&self) -> String {
        match &self.storage_url {
            Some(url) => url.clone(),
            // Object keys start with `blobs/` and `uploads/`: the data folder is the root.
            None => format!("fs://{}", self.database.data_dir.display()),
        }
    }
}

impl Config {
    /// The defaults written in the flags above, ignoring the environment: one source of
    /// truth for what an unconfigured server does.
    pub fn defaults() -> Config {
        use clap::{Args, FromArgMatches};
        let command = Config::augment_args(clap::Command::new("model-registry"))
            .mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["model-registry"])
            .expect("every setting has a default or is optional");
        Config::from_arg_matches(&matches).expect("the defaults parse")
    }

    /// The embedded defaults with the data in `dir`, on an ephemeral loopback port, a small
    /// pool and no background jobs: what tests and benchmarks start from.
    pub fn embedded(dir: impl Into<PathBuf>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            stores: Stores {
                database: Database {
                    data_dir: dir.into(),
                    database_url: None,
                },
                storage_url: None,
            },
            db_pool_size: 8,
            jobs_interval_secs: 0,
            ..Config::defaults()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_flags_not_the_environment() {
        let defaults = Config::defaults();
        assert_eq!(defaults.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(defaults.stores.database.data_dir, PathBuf::from("./data"));
        assert_eq!(defaults.max_artifact_bytes, 5 << 40);
        assert!(defaults.stores.database.database_url.is_none());
        assert!(defaults.stores.storage_url.is_none());
        let embedded = Config::embedded("/tmp/x");
        assert_eq!(embedded.upload_ttl_secs, defaults.upload_ttl_secs);
        assert_eq!(embedded.jobs_interval_secs, 0);
        assert!(
            defaults.cors_origins.is_empty(),
            "no origin is allowed unless configured"
        );
    }

    #[test]
    fn origins_are_checked_when_read() {
        for good in [
            "*",
            "http://localhost:3000",
            "https://app.example.com",
            "http://[::1]:8080",
        ] {
            assert_eq!(parse_origin(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "localhost:3000",
            "https://app.example.com/",
            "ftp://x",
            "https://a b",
            "https://",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
