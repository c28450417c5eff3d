//! One integration binary: every test runs against SQLite and PostgreSQL through the real
//! router. `cargo test sqlite` or `cargo test postgres` picks a backend.

#[macro_use]
mod support;

mod access;
mod artifacts;
mod cache;
mod catalog;
mod cli;
mod clients;
mod hostile;
mod keys;
mod limits;
mod models;
mod readme;
mod replicas;
mod s3;
mod server;
mod telemetry;
mod versions;
