//! model-registry: a model registry server. Models, versions and their artifacts, behind
//! one GraphQL schema and a small REST sidecar, on SQLite or PostgreSQL.
//!
//! Read top-down: `graphql` and `http` translate, `domain` decides, `db` remembers.

pub mod allocator;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod jobs;
mod layering;
pub mod logging;
pub mod routes;
pub mod storage;
pub mod values;

pub use app::App;
pub use config::Config;
pub use http::router;
