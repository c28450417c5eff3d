use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::api_keys;
use crate::db::{Db, Fetch, KeepPrepared, Tx, on_tx, read, with_conn};
use crate::error::AppError;
use crate::values::Role;
use crate::values::{Id, Timestamp};

/// A stored key. The secret itself is never stored: only its SHA-256 and a visible prefix.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, treat_none_as_default_value = false)]
pub struct ApiKey {
    pub id: Id,
    pub name: String,
    /// The first characters of the secret, enough to recognise a key in a list.
    pub prefix: String,
    pub secret_hash: String,
    pub role: Role,
    pub organization_id: Option<Id>,
    pub project_id: Option<Id>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// Every request's first statement. Without `LIMIT` (the hash is unique): SQLite compiles a
/// statement with a bound `LIMIT ?` again each time it runs.
pub async fn find_by_hash(db: &Db, hash: &str) -> Result<Option<ApiKey>, AppError> {
    let hash = hash.to_owned();
    read!(db, conn => {
        Ok(api_keys::table
            .filter(api_keys::secret_hash.eq(&hash))
            .select(ApiKey::as_select())
            .fetch_one(conn)
            .await
            .optional()?)
    })
}

pub async fn find(db: &Db, id: Id) -> Result<Option<ApiKey>, AppError> {
    read!(db, conn => {
        Ok(api_keys::table.find(id).select(ApiKey::as_select()).limit(1).fetch_one(conn).await.optional()?)
    })
}

pub async fn insert(tx: &mut Tx<'_>, key: &ApiKey) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::insert_into(api_keys::table).values(key).execute(conn).await?;
        Ok(())
    })
}

/// What a revocation did.
pub enum Revocation {
    Revoked(ApiKey),
    /// Refused: the key is the last usable instance-wide ADMIN key.
    LastInstanceAdmin,
}

/// Revokes a key; revoking twice keeps the first time. With `keep_instance_admin`, the last
/// usable instance-wide ADMIN key is left alone (counted and revoked in one transaction).
pub async fn revoke(
    tx: &mut Tx<'_>,
    id: Id,
    at: Timestamp,
    keep_instance_admin: bool,
) -> Result<Revocation, AppError> {
    on_tx!(tx, conn => {
        if keep_instance_admin {
            let usable_instance_admins = || {
                api_keys::table
                    .filter(api_keys::role.eq(Role::Admin))
                    .filter(api_keys::organization_id.is_null())
                    .filter(api_keys::project_id.is_null())
                    .filter(api_keys::revoked_at.is_null())
                    .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(at)))
            };
            // A no-op write locks those rows on PostgreSQL, so two revocations racing for
            // the last two admin keys run one after the other (SQLite has one writer anyway).
            let admins = diesel::update(usable_instance_admins())
                .set(api_keys::name.eq(api_keys::name))
                .prepared()
                .execute(conn)
                .await?;
            let target_counts: i64 = usable_instance_admins()
                .filter(api_keys::id.eq(id))
                .count()
                .get_result(conn)
                .await?;
            if target_counts == 1 && admins <= 1 {
                return Ok(Revocation::LastInstanceAdmin);
            }
        }
        diesel::update(api_keys::table.find(id).filter(api_keys::revoked_at.is_null()))
            .set(api_keys::revoked_at.eq(at))
            .prepared()
            .execute(conn)
            .await?;
        Ok(Revocation::Revoked(
            api_keys::table.find(id).select(ApiKey::as_select()).first(conn).await?,
        ))
    })
}

pub async fn touch(tx: &mut Tx<'_>, id: Id, at: Timestamp) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::update(api_keys::table.find(id))
            .set(api_keys::last_used_at.eq(at))
            .prepared()
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Which keys to list, by scope columns; instance-scoped keys have neither.
#[derive(Debug, Clone, Copy)]
pub enum KeySet {
    All,
    /// The organization's own keys and those of its projects.
    Organization(Id),
    Project(Id),
}

pub async fn list(db: &Db, set: KeySet) -> Result<Vec<ApiKey>, AppError> {
    use crate::db::schema::projects;
    with_conn!(db, conn => {
        let mut query = api_keys::table.select(ApiKey::as_select()).into_boxed();
        query = match set {
            KeySet::All => query,
            KeySet::Organization(org) => query.filter(
                api_keys::organization_id.eq(org).or(api_keys::project_id.eq_any(
                    projects::table.filter(projects::organization_id.eq(org)).select(projects::id.nullable()),
                )),
            ),
            KeySet::Project(project) => query.filter(api_keys::project_id.eq(project)),
        };
        Ok(query.order(api_keys::id.asc()).load(conn).await?)
    })
}
