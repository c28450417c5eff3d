use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::page::{Cursor, Page, PageRequest};
use crate::db::projects::UsageSlot;
use crate::db::schema::{model_versions, models};
use crate::db::{BulkTx, Db, Fetch, KeepPrepared, Tx, on_tx, pipelined, read, with_conn};
use crate::error::AppError;
use crate::values::VersionLifecycle;
use crate::values::{Id, JsonText, Timestamp};

/// A numbered, labelled version of a model.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = model_versions, treat_none_as_default_value = false)]
pub struct ModelVersion {
    pub id: Id,
    pub model_id: Id,
    /// The label, unique per model (`v1.2.0`, `2026-11-rc1`).
    pub version: String,
    /// Assigned by the server: 1, 2, 3… per model, never reused.
    pub number: i64,
    pub description: Option<String>,
    pub release_date: Option<Timestamp>,
    pub training_run_id: Option<String>,
    pub metrics: Option<JsonText>,
    pub lifecycle: VersionLifecycle,
    pub published_at: Option<Timestamp>,
    pub deprecated_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The columns `updateModelVersion` may change; `Some(None)` clears a nullable one.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = model_versions)]
pub struct VersionChanges {
    pub version: Option<String>,
    pub description: Option<Option<String>>,
    pub release_date: Option<Option<Timestamp>>,
    pub training_run_id: Option<Option<String>>,
    pub metrics: Option<Option<JsonText>>,
    pub updated_at: Option<Timestamp>,
}

pub fn cursor(version: &ModelVersion) -> Cursor {
    Cursor {
        key: version.number.to_string(),
        id: version.id,
    }
}

pub async fn find(db: &Db, id: Id) -> Result<Option<ModelVersion>, AppError> {
    with_conn!(db, conn => {
        Ok(model_versions::table
            .find(id)
            .select(ModelVersion::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn by_label(
    db: &Db,
    model_id: Id,
    label: &str,
) -> Result<Option<ModelVersion>, AppError> {
    with_conn!(db, conn => {
        Ok(model_versions::table
            .filter(model_versions::model_id.eq(model_id))
            .filter(model_versions::version.eq(label))
            .select(ModelVersion::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The model's versions in one lifecycle, newest first.
pub async fn with_lifecycle(
    db: &Db,
    model_id: Id,
    lifecycle: VersionLifecycle,
) -> Result<Vec<ModelVersion>, AppError> {
    with_conn!(db, conn => {
        Ok(model_versions::table
            .filter(model_versions::model_id.eq(model_id))
            .filter(model_versions::lifecycle.eq(lifecycle))
            .order(model_versions::number.desc())
            .select(ModelVersion::as_select())
            .load(conn)
            .await?)
    })
}

/// The model's published version with the highest number.
pub async fn latest_published(db: &Db, model_id: Id) -> Result<Option<ModelVersion>, AppError> {
    with_conn!(db, conn => {
        Ok(model_versions::table
            .filter(model_versions::model_id.eq(model_id))
            .filter(model_versions::lifecycle.eq(VersionLifecycle::Published))
            .order(model_versions::number.desc())
            .select(ModelVersion::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn by_ids(db: &Db, ids: &[Id]) -> Result<Vec<ModelVersion>, AppError> {
    let ids = ids.to_vec();
    read!(db, conn => {
        Ok(model_versions::table
            .filter(model_versions::id.eq_any(&ids))
            .select(ModelVersion::as_select())
            .fetch_all(conn)
            .await?)
    })
}

/// One model's versions, newest (highest number) first.
pub async fn page(
    db: &Db,
    model_id: Id,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<ModelVersion>, AppError> {
    let after = match &page.cursor {
        Some(c) => Some(
            c.key
                .parse::<i64>()
                .map_err(|_| AppError::bad_input("after", "not a cursor of this list"))?,
        ),
        None => None,
    };
    let ascending = page.ascending(false);
    with_conn!(db, conn => {
        let total = if count_total {
            Some(model_versions::table
                .filter(model_versions::model_id.eq(model_id))
                .count()
                .get_result::<i64>(conn)
                .await?)
        } else {
            None
        };
        let mut query = model_versions::table
            .filter(model_versions::model_id.eq(model_id))
            .select(ModelVersion::as_select())
            .into_boxed();
        if let Some(number) = after {
            query = if ascending {
                query.filter(model_versions::number.gt(number))
            } else {
                query.filter(model_versions::number.lt(number))
            };
        }
        query = if ascending {
            query.order(model_versions::number.asc())
        } else {
            query.order(model_versions::number.desc())
        };
        let rows = query.limit(page.limit + 1).load(conn).await?;
        Ok(page.finish(rows, total))
    })
}

/// The newest `limit` versions of each model (optionally only those in one lifecycle state),
/// in one statement however many models are asked for: what the version DataLoaders batch.
///
/// A row qualifies when its number is at least the model's `limit`-th highest; that bound is a
/// correlated lookup on the `(model_id, number)` index, so a model with thousands of versions
/// costs a seek rather than a sort.
pub async fn newest_per_model(
    db: &Db,
    model_ids: &[Id],
    limit: i64,
    only: Option<VersionLifecycle>,
) -> Result<HashMap<Id, Vec<ModelVersion>>, AppError> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Bool};
    if model_ids.is_empty() || limit <= 0 {
        return Ok(HashMap::new());
    }
    let model_ids = model_ids.to_vec();
    let rows: Vec<ModelVersion> = read!(db, conn => {
        let mut query = model_versions::table
            .filter(model_versions::model_id.eq_any(&model_ids))
            .select(ModelVersion::as_select())
            .order((model_versions::model_id.asc(), model_versions::number.desc()))
            .into_boxed();
        let same_state = |alias: &str| match only {
            Some(_) => format!(" AND {alias}.lifecycle = model_versions.lifecycle"),
            None => String::new(),
        };
        if let Some(state) = only {
            query = query.filter(model_versions::lifecycle.eq(state));
        }
        query = query.filter(
            sql::<Bool>(&format!(
                "model_versions.number >= COALESCE((SELECT newer.number FROM model_versions newer \
                 WHERE newer.model_id = model_versions.model_id{} \
                 ORDER BY newer.number DESC LIMIT 1 OFFSET ",
                same_state("newer")
            ))
            .bind::<BigInt, _>(limit - 1)
            .sql("), 0)"),
        );
        Ok::<_, AppError>(query.fetch_all(conn).await?)
    })?;
    let mut by_model: HashMap<Id, Vec<ModelVersion>> = HashMap::new();
    for row in rows {
        by_model.entry(row.model_id).or_default().push(row);
    }
    Ok(by_model)
}

pub async fn count_per_model(db: &Db, model_ids: &[Id]) -> Result<HashMap<Id, i64>, AppError> {
    let model_ids = model_ids.to_vec();
    read!(db, conn => {
        let rows: Vec<(Id, i64)> = model_versions::table
            .filter(model_versions::model_id.eq_any(&model_ids))
            .group_by(model_versions::model_id)
            .select((model_versions::model_id, diesel::dsl::count_star()))
            .fetch_all(conn)
            .await?;
        Ok(rows.into_iter().collect())
    })
}

/// Removes every version of a model (the model is being deleted).
pub async fn delete_all_of_model(tx: &mut Tx<'_>, model_id: Id) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::delete(model_versions::table.filter(model_versions::model_id.eq(model_id)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Whether another version of the model (other than `except`) has this label.
pub async fn label_taken(
    tx: &mut Tx<'_>,
    model_id: Id,
    label: &str,
    except: Option<Id>,
) -> Result<bool, AppError> {
    on_tx!(tx, conn => {
        let mut query = model_versions::table
            .filter(model_versions::model_id.eq(model_id))
            .filter(model_versions::version.eq(label))
            .into_boxed();
        if let Some(except) = except {
            query = query.filter(model_versions::id.ne(except));
        }
        let taken: i64 = query.count().get_result(conn).await?;
        Ok(taken > 0)
    })
}

diesel::define_sql_function! {
    /// The first of the two that is not NULL.
    fn coalesce(x: Nullable<Text>, y: Text) -> Nullable<Text>;
}

/// Counts a new version in its project's usage of the month, then hands out its model's next
/// number (never reused, even after deletes); `None` when the model is deleted (a create that
/// waited for the delete's row lock then finds it gone). Every create takes the two row locks
/// in this order. A model without a current version takes `current_if_none` (the new
/// version) as current: here on PostgreSQL, in [`insert_numbered`] on SQLite.
///
/// On PostgreSQL the pointer is set in the same write of the model's row, before the version's
/// row exists: its foreign key is checked at commit (migration
/// `2026-11-27-000004_current_version_deferred`), by when the version is inserted. So the row,
/// with an entry in each of the model's eleven indexes, is written once per version, not twice
/// for the first. SQLite cannot defer that key without rebuilding the table, and
/// `PRAGMA defer_foreign_keys` recompiles every prepared statement of the connection; its
/// statements cost no round trip, so it points the model after the insert.
pub async fn take_number(
    tx: &mut BulkTx<'_>,
    model_id: Id,
    usage: UsageSlot<'_>,
    current_if_none: Id,
    now: Timestamp,
) -> Result<Option<i64>, AppError> {
    use crate::db::schema::project_monthly_usage as u;
    let count = diesel::insert_into(u::table)
        .values((
            u::project_id.eq(usage.project_id),
            u::month.eq(usage.month),
            u::shard.eq(usage.shard),
            u::versions_created.eq(1_i64),
        ))
        .on_conflict((u::project_id, u::month, u::shard))
        .do_update()
        .set(u::versions_created.eq(u::versions_created + 1_i64))
        .prepared();
    let live = models::table
        .find(model_id)
        .filter(models::deleted_at.is_null());
    let next = models::next_version_number.eq(models::next_version_number + 1_i64);
    let taken: Option<i64> = match tx {
        BulkTx::Sqlite(conn) => {
            let take = diesel::update(live)
                .set((next, models::updated_at.eq(now)))
                .returning(models::next_version_number)
                .prepared();
            diesel::RunQueryDsl::execute(count, &mut **conn)?;
            diesel::RunQueryDsl::get_result(take, &mut **conn).optional()?
        }
        BulkTx::Postgres(conn) => {
            let take = diesel::update(live)
                .set((
                    next,
                    models::current_version_id
                        .eq(coalesce(models::current_version_id, current_if_none)),
                    models::updated_at.eq(now),
                ))
                .returning(models::next_version_number)
                .prepared();
            let conn: &AsyncPgConnection = conn;
            let (counted, taken) =
                pipelined(count.execute(&mut &*conn), take.get_result(&mut &*conn)).await;
            counted?;
            taken.optional()?
        }
    };
    Ok(taken.map(|next| next - 1))
}

/// Inserts a version numbered by [`take_number`]; `false` when a unique index refused it (its
/// label is taken). On SQLite, a model without a current version is then pointed at it.
pub async fn insert_numbered(
    tx: &mut BulkTx<'_>,
    version: &ModelVersion,
) -> Result<bool, AppError> {
    let insert = diesel::insert_into(model_versions::table).values(version);
    let inserted = match tx {
        BulkTx::Sqlite(conn) => diesel::RunQueryDsl::execute(insert, &mut **conn).and_then(|_| {
            let point = diesel::update(
                models::table
                    .find(version.model_id)
                    .filter(models::current_version_id.is_null()),
            )
            .set(models::current_version_id.eq(version.id))
            .prepared();
            diesel::RunQueryDsl::execute(point, &mut **conn)
        }),
        BulkTx::Postgres(conn) => insert.execute(&mut **conn).await,
    };
    match inserted {
        Err(e) if crate::error::is_unique_violation(&e) => Ok(false),
        other => other.map(|_| true).map_err(AppError::from),
    }
}

pub async fn update(
    tx: &mut Tx<'_>,
    id: Id,
    changes: &VersionChanges,
) -> Result<ModelVersion, AppError> {
    on_tx!(tx, conn => {
        Ok(diesel::update(model_versions::table.find(id))
            .set(changes)
            .returning(ModelVersion::as_returning())
            .get_result(conn)
            .await?)
    })
}

/// What a lifecycle move writes.
pub struct LifecycleChange {
    pub from: VersionLifecycle,
    pub to: VersionLifecycle,
    pub published_at: Option<Timestamp>,
    pub deprecated_at: Option<Timestamp>,
    pub at: Timestamp,
}

/// Moves the lifecycle if it is still `from` (compare-and-set); `None` when it was not.
pub async fn set_lifecycle(
    tx: &mut Tx<'_>,
    id: Id,
    change: &LifecycleChange,
) -> Result<Option<ModelVersion>, AppError> {
    on_tx!(tx, conn => {
        Ok(diesel::update(
            model_versions::table
                .find(id)
                .filter(model_versions::lifecycle.eq(change.from)),
        )
        .set((
            model_versions::lifecycle.eq(change.to),
            model_versions::published_at.eq(change.published_at),
            model_versions::deprecated_at.eq(change.deprecated_at),
            model_versions::updated_at.eq(change.at),
        ))
        .returning(ModelVersion::as_returning())
        .prepared()
        .get_result(conn)
        .await
        .optional()?)
    })
}

/// Deletes the version if it is still a DRAFT; answers whether it was.
pub async fn delete_draft(tx: &mut Tx<'_>, id: Id) -> Result<bool, AppError> {
    on_tx!(tx, conn => {
        let deleted = diesel::delete(
            model_versions::table
                .find(id)
                .filter(model_versions::lifecycle.eq(VersionLifecycle::Draft)),
        )
        .execute(conn)
        .await?;
        Ok(deleted == 1)
    })
}

/// Locks the version's row until the transaction ends (a no-op write: PostgreSQL takes a row
/// lock, SQLite has one writer anyway), so a check of its artifacts and the write it allows
/// happen one transaction at a time.
pub async fn lock(tx: &mut Tx<'_>, id: Id) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::update(model_versions::table.find(id))
            .set(model_versions::updated_at.eq(model_versions::updated_at))
            .prepared()
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// A version's lifecycle as it stands inside the transaction.
pub async fn lifecycle_of(tx: &mut Tx<'_>, id: Id) -> Result<VersionLifecycle, AppError> {
    on_tx!(tx, conn => {
        Ok(model_versions::table
            .find(id)
            .select(model_versions::lifecycle)
            .first(conn)
            .await?)
    })
}
