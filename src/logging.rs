//! Process-wide logging: `RUST_LOG` picks what is shown, but some things are never shown at
//! any level.
//!
//! Secrets must not reach a log: tokio-postgres prints every bound parameter at DEBUG (the
//! URL-signing key among them when it is first stored), so its events above INFO are dropped
//! whatever `RUST_LOG` says; our own statement log prints SQL without values
//! (`db::statement_text`); request logs show URIs with signatures redacted
//! (`http::redacted_uri`).

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

use crate::config::LogFormat;

/// What no `RUST_LOG` setting turns on.
fn never_shown(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("tokio_postgres") && *meta.level() > Level::INFO
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("model_registry=info,tower_http=warn,info"));
    // Colour codes only for a person at a terminal, not in a file or a collector.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt.with_filter(filter_fn(|meta| !never_shown(meta))))
        .init();
}
