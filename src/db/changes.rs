//! How far the registry has changed: the sum of `registry_changes`, which database triggers
//! move forward in every transaction that writes organizations, projects, models or versions
//! (see the migration `registry_changes`). It only grows, and a committed write is in it as
//! soon as the write is visible, on every replica: an answer computed after reading the sum
//! shows at least the state the sum stands for.

use diesel::prelude::*;

use crate::db::schema::registry_changes;
use crate::db::{Db, Fetch, read};
use crate::error::AppError;

/// The shards are read and added up here rather than by `SUM` in SQL: a statement of diesel's
/// DSL alone is prepared once per connection and cached, where an SQL literal is parsed on every
/// request (SQLite's parser showed in a profile of served pages), and `SUM` of a `BIGINT` is
/// `NUMERIC` on PostgreSQL but an integer on SQLite.
pub async fn registry_changes(db: &Db) -> Result<i64, AppError> {
    read!(db, conn => {
        let shards: Vec<i64> = registry_changes::table
            .select(registry_changes::changes)
            .fetch_all(conn)
            .await?;
        Ok(shards.iter().sum())
    })
}
