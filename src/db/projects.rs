use async_graphql::SimpleObject;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::projects;
use crate::db::{Db, Tx, on_tx, with_conn};
use crate::error::AppError;
use crate::values::{Id, Timestamp};

/// A space inside an organization: every model belongs to one.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, SimpleObject)]
#[diesel(table_name = projects)]
#[graphql(complex)]
pub struct Project {
    pub id: Id,
    #[graphql(skip)]
    pub organization_id: Id,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    #[graphql(skip)]
    pub max_models: Option<i64>,
    #[graphql(skip)]
    pub max_versions_per_month: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub async fn find(db: &Db, id: Id) -> Result<Option<Project>, AppError> {
    with_conn!(db, conn => {
        Ok(projects::table.find(id).select(Project::as_select()).first(conn).await.optional()?)
    })
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
    with_conn!(db, conn => {
        Ok(projects::table
            .filter(projects::id.eq_any(ids))
            .select(Project::as_select())
            .load(conn)
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
    on_tx!(tx, conn => {
        Ok(diesel::update(projects::table.find(id))
            .set((
                projects::max_models.eq(max_models),
                projects::max_versions_per_month.eq(max_versions_per_month),
                projects::updated_at.eq(Timestamp::now()),
            ))
            .returning(Project::as_returning())
            .get_result(conn)
            .await?)
    })
}
