//! How far the registry has changed: the sum of `registry_changes`, which database triggers
//! move forward in every transaction that writes organizations, projects, models or versions
//! (see the migration `registry_changes`). It only grows, and a committed write is in it as
//! soon as the write is visible, on every replica: an answer computed after reading the sum
//! shows at least the state the sum stands for.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::schema::registry_changes;
use crate::db::{Db, Fetch, read};
use crate::error::AppError;

pub async fn registry_changes(db: &Db) -> Result<i64, AppError> {
    read!(db, conn => {
        Ok(registry_changes::table
            .select(sql::<BigInt>("CAST(COALESCE(SUM(changes), 0) AS BIGINT)"))
            .fetch_one(conn)
            .await?)
    })
}
