use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::projects;
use crate::db::{
    AnyTx, Db, Fetch, KeepPrepared, Run, Tx, TxConn, on_any_tx, on_tx, read, with_conn,
};
use crate::error::AppError;
use crate::values::{Id, Timestamp};

/// A space inside an organization: every model belongs to one.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects, treat_none_as_default_value = false)]
pub struct Project {
    pub id: Id,
    pub organization_id: Id,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub max_models: Option<i64>,
    pub max_versions_per_month: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The statement of [`find`] and [`find_shared`]: a macro, not a value, because `as_select` is
/// typed for one backend. No `LIMIT` (the id is the key): SQLite compiles a statement with a
/// bound `LIMIT ?` again each time it runs.
macro_rules! by_id {
    ($id:expr) => {
        projects::table.find($id).select(Project::as_select())
    };
}

pub async fn find(db: &Db, id: Id) -> Result<Option<Project>, AppError> {
    read!(db, conn => Ok(by_id!(id).fetch_one(conn).await.optional()?))
}

pub async fn find_by_slug(db: &Db, slug: &str) -> Result<Option<Project>, AppError> {
    with_conn!(db, conn => {
        Ok(projects::table
            .filter(projects::slug.eq(slug))
            .select(Project::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn by_ids(db: &Db, ids: &[Id]) -> Result<Vec<Project>, AppError> {
    let ids = ids.to_vec();
    read!(db, conn => {
        Ok(projects::table
            .filter(projects::id.eq_any(&ids))
            .select(Project::as_select())
            .fetch_all(conn)
            .await?)
    })
}

/// Which projects to list: everything, one organization's, or a single project.
#[derive(Debug, Clone, Copy)]
pub enum ProjectSet {
    All,
    Organization(Id),
    One(Id),
}

pub async fn list(db: &Db, set: ProjectSet) -> Result<Vec<Project>, AppError> {
    with_conn!(db, conn => {
        let mut query = projects::table.select(Project::as_select()).into_boxed();
        query = match set {
            ProjectSet::All => query,
            ProjectSet::Organization(org) => query.filter(projects::organization_id.eq(org)),
            ProjectSet::One(id) => query.filter(projects::id.eq(id)),
        };
        Ok(query.order(projects::slug.asc()).load(conn).await?)
    })
}

pub async fn insert(tx: &mut Tx<'_>, project: &Project) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::insert_into(projects::table).values(project).execute(conn).await.map_err(|e| {
            if crate::error::is_unique_violation(&e) {
                AppError::conflict(format!("a project with slug `{}` already exists", project.slug))
            } else {
                e.into()
            }
        })?;
        Ok(())
    })
}

pub async fn set_quotas(
    tx: &mut Tx<'_>,
    id: Id,
    max_models: Option<i64>,
    max_versions_per_month: Option<i64>,
) -> Result<Project, AppError> {
    // An UPDATE of these columns alone would not wait for the key-share locks of [`find_shared`];
    // locking the row for update first waits until every create that read the old quotas has
    // committed. A steady stream of creates in the project can hold it off that long.
    if let Tx::Postgres(conn) = tx {
        projects::table
            .find(id)
            .select(projects::id)
            .for_update()
            .execute(&mut **conn)
            .await?;
    }
    on_tx!(tx, conn => {
        Ok(diesel::update(projects::table.find(id))
            .set((
                projects::max_models.eq(max_models),
                projects::max_versions_per_month.eq(max_versions_per_month),
                projects::updated_at.eq(Timestamp::now()),
            ))
            .returning(Project::as_returning())
            .prepared()
            .get_result(conn)
            .await?)
    })
}

/// The project as a creating transaction must obey it: its quotas are read inside the
/// transaction, and on PostgreSQL with a key-share lock on the row (the lock the create's
/// foreign key takes anyway), which [`set_quotas`] waits for: a create that read no quota has
/// committed before a quota is set, and one that reads after sees it. SQLite has one writer.
/// `None` when the project is gone.
pub async fn find_shared(tx: &mut impl AnyTx, id: Id) -> Result<Option<Project>, AppError> {
    let project = match tx.conn() {
        TxConn::SqliteAsync(conn) => by_id!(id).fetch_one(conn).await,
        TxConn::Sqlite(conn) => by_id!(id).fetch_one(conn).await,
        TxConn::Postgres(conn) => by_id!(id).for_key_share().fetch_one(conn).await,
    };
    Ok(project.optional()?)
}

/// The organization a project belongs to, read inside a transaction.
pub async fn organization_of(tx: &mut Tx<'_>, id: Id) -> Result<Id, AppError> {
    on_tx!(tx, conn => {
        Ok(projects::table
            .find(id)
            .select(projects::organization_id)
            .first(conn)
            .await?)
    })
}

/// Locks the project's row until the transaction ends (a no-op write: PostgreSQL takes a row
/// lock, SQLite has one writer anyway), so checks against the project's quotas and the writes
/// they allow happen one transaction at a time.
pub async fn lock(tx: &mut impl AnyTx, id: Id) -> Result<(), AppError> {
    on_any_tx!(tx, conn => {
        diesel::update(projects::table.find(id))
            .set(projects::updated_at.eq(projects::updated_at))
            .prepared()
            .run(conn)
            .await?;
        Ok(())
    })
}

/// How many rows a project's monthly version count is spread over: with one row per project and
/// month, every create in the project would wait for the previous one's commit to take its lock.
pub const USAGE_SHARDS: u32 = 16;

/// The shard of the monthly count a model's versions are counted in. A model's creates wait
/// for each other anyway (on its version number), so they may share a row.
pub fn usage_shard(model_id: Id) -> i32 {
    // UUIDv7 ids end in random bits.
    (model_id.0.as_u128() % u128::from(USAGE_SHARDS)) as i32
}

/// Where a new version is counted: its project's usage of the month, in one of the count's
/// shards (see [`usage_shard`]); the version create counts it where it numbers the version.
pub struct UsageSlot<'a> {
    pub project_id: Id,
    pub month: &'a str,
    pub shard: i32,
}

/// How many versions were created in the project this month, across the count's shards.
pub async fn versions_created(
    tx: &mut impl AnyTx,
    project_id: Id,
    month: &str,
) -> Result<i64, AppError> {
    use crate::db::schema::project_monthly_usage as usage;
    on_any_tx!(tx, conn => {
        // At most one row per shard, summed here: SQL's SUM of a BIGINT is a NUMERIC on
        // PostgreSQL.
        let shards: Vec<i64> = usage::table
            .filter(usage::project_id.eq(project_id))
            .filter(usage::month.eq(month))
            .select(usage::versions_created)
            .fetch_all(conn)
            .await?;
        Ok(shards.into_iter().fold(0, i64::saturating_add))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_spread_over_every_usage_shard() {
        let mut seen = [0_u32; USAGE_SHARDS as usize];
        for _ in 0..4_000 {
            let shard = usage_shard(Id::new());
            assert!((0..USAGE_SHARDS as i32).contains(&shard), "{shard}");
            seen[shard as usize] += 1;
        }
        // 250 expected in each; a shard below 150 would mean the bits are not random.
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
        let model = Id::new();
        assert_eq!(
            usage_shard(model),
            usage_shard(model),
            "a model keeps its shard"
        );
    }
}
