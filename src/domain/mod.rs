//! The rules of the registry, per area. Transactions and state machines live here; callers
//! (GraphQL, REST, CLI) only translate.

pub mod api_keys;
pub mod artifacts;
pub mod blobs;
pub mod bootstrap;
pub mod catalog;
pub mod endpoints;
pub mod models;
pub mod organizations;
pub mod telemetry;
pub mod uploads;
pub mod validate;
pub mod versions;
