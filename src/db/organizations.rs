use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::organizations;
use crate::db::{Db, Tx, on_tx, with_conn};
use crate::error::AppError;
use crate::values::{Id, Timestamp};

/// A tenant: owns projects and organization-scoped keys.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations, treat_none_as_default_value = false)]
pub struct Organization {
    pub id: Id,
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub async fn find(db: &Db, id: Id) -> Result<Option<Organization>, AppError> {
    with_conn!(db, conn => {
        Ok(organizations::table.find(id).select(Organization::as_select()).first(conn).await.optional()?)
    })
}

pub async fn find_by_slug(db: &Db, slug: &str) -> Result<Option<Organization>, AppError> {
    with_conn!(db, conn => {
        Ok(organizations::table
            .filter(organizations::slug.eq(slug))
            .select(Organization::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Organizations in slug order; `only` narrows to one when the caller's key is scoped.
pub async fn list(db: &Db, only: Option<Id>) -> Result<Vec<Organization>, AppError> {
    with_conn!(db, conn => {
        let mut query = organizations::table.select(Organization::as_select()).into_boxed();
        if let Some(id) = only {
            query = query.filter(organizations::id.eq(id));
        }
        Ok(query.order(organizations::slug.asc()).load(conn).await?)
    })
}

/// Organizations of the instance, counted inside a transaction (bootstrap decides on it).
pub async fn count(tx: &mut Tx<'_>) -> Result<i64, AppError> {
    on_tx!(tx, conn => Ok(organizations::table.count().get_result(conn).await?))
}

pub async fn insert(tx: &mut Tx<'_>, org: &Organization) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::insert_into(organizations::table).values(org).execute(conn).await.map_err(|e| {
            if crate::error::is_unique_violation(&e) {
                AppError::conflict(format!("an organization with slug `{}` already exists", org.slug))
            } else {
                e.into()
            }
        })?;
        Ok(())
    })
}

pub async fn by_ids(db: &Db, ids: &[Id]) -> Result<Vec<Organization>, AppError> {
    with_conn!(db, conn => {
        Ok(organizations::table
            .filter(organizations::id.eq_any(ids))
            .select(Organization::as_select())
            .load(conn)
            .await?)
    })
}
