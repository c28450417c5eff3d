//! The registry's value types: ids, timestamps, byte counts, JSON documents and the closed
//! vocabularies (roles, statuses, kinds). A leaf: it imports nothing of the registry.
//!
//! Each type carries its own encodings, the column encoding (diesel) and the scalar or enum
//! encoding (GraphQL), so that a row, a domain struct and an API view hold the same value
//! without a conversion layer re-mapping it, and the names read the same in the database,
//! the API and the logs.

mod clock;
mod enums;
mod patch;
mod scalars;

pub use clock::Clock;
pub use enums::*;
pub use patch::Patch;
pub use scalars::*;
