//! Endpoints: deployments of a model version on a service tier, owned by the project that
//! created them.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::page::{Cursor, Page, PageRequest};
use crate::db::projects::ProjectSet;
use crate::db::schema::{endpoints, models, projects};
use crate::db::{Db, KeepPrepared, Tx, on_tx, with_conn};
use crate::error::AppError;
use crate::values::{EndpointStatus, Id, Timestamp};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = endpoints, treat_none_as_default_value = false)]
pub struct Endpoint {
    pub id: Id,
    /// The project that deployed it (not necessarily the model's).
    pub project_id: Id,
    pub model_id: Id,
    pub model_version_id: Id,
    /// Unique in its project.
    pub name: String,
    pub tier: String,
    /// The tier's kind when the endpoint was created: the catalog rules count by it.
    pub self_hosted: bool,
    pub status: EndpointStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which endpoints a list shows; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct EndpointFilter {
    pub project_id: Option<Id>,
    pub model_id: Option<Id>,
    pub tier: Option<String>,
    pub status: Option<EndpointStatus>,
}

/// Whose endpoints a caller sees: those of its projects, and every endpoint of the models its
/// projects own.
#[derive(Debug, Clone, Copy)]
pub struct EndpointScope(pub ProjectSet);

pub fn cursor(endpoint: &Endpoint) -> Cursor {
    Cursor {
        key: endpoint
            .created_at
            .0
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
        id: endpoint.id,
    }
}

fn parse_key(key: &str) -> Result<Timestamp, AppError> {
    chrono::NaiveDateTime::parse_from_str(key, "%Y-%m-%dT%H:%M:%S%.6f")
        .map(Timestamp)
        .map_err(|_| AppError::bad_input("after", "not a cursor of this list"))
}

pub async fn find(db: &Db, id: Id) -> Result<Option<Endpoint>, AppError> {
    with_conn!(db, conn => {
        Ok(endpoints::table
            .find(id)
            .select(Endpoint::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The endpoint read inside a transaction (after its model's row is locked).
pub async fn get(tx: &mut Tx<'_>, id: Id) -> Result<Option<Endpoint>, AppError> {
    on_tx!(tx, conn => {
        Ok(endpoints::table
            .find(id)
            .select(Endpoint::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Newest first, within `scope`, matching `filter`.
pub async fn page(
    db: &Db,
    scope: EndpointScope,
    filter: &EndpointFilter,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Endpoint>, AppError> {
    let after = page
        .cursor
        .as_ref()
        .map(|c| parse_key(&c.key).map(|t| (t, c.id)))
        .transpose()?;
    let ascending = page.ascending(false);
    macro_rules! filtered {
        () => {{
            let mut query = endpoints::table.into_boxed();
            query = match scope.0 {
                ProjectSet::All => query,
                ProjectSet::Organization(org) => {
                    let theirs = projects::table
                        .filter(projects::organization_id.eq(org))
                        .select(projects::id);
                    let owned = models::table
                        .filter(
                            models::project_id.eq_any(
                                projects::table
                                    .filter(projects::organization_id.eq(org))
                                    .select(projects::id),
                            ),
                        )
                        .select(models::id);
                    query.filter(
                        endpoints::project_id
                            .eq_any(theirs)
                            .or(endpoints::model_id.eq_any(owned)),
                    )
                }
                ProjectSet::One(project) => {
                    let owned = models::table
                        .filter(models::project_id.eq(project))
                        .select(models::id);
                    query.filter(
                        endpoints::project_id
                            .eq(project)
                            .or(endpoints::model_id.eq_any(owned)),
                    )
                }
            };
            if let Some(project) = filter.project_id {
                query = query.filter(endpoints::project_id.eq(project));
            }
            if let Some(model) = filter.model_id {
                query = query.filter(endpoints::model_id.eq(model));
            }
            if let Some(tier) = &filter.tier {
                query = query.filter(endpoints::tier.eq(tier.clone()));
            }
            if let Some(status) = filter.status {
                query = query.filter(endpoints::status.eq(status));
            }
            query
        }};
    }
    with_conn!(db, conn => {
        let total = if count_total {
            Some(filtered!().count().get_result::<i64>(conn).await?)
        } else {
            None
        };
        let mut query = filtered!();
        if let Some((t, id)) = after {
            query = if ascending {
                query.filter(
                    endpoints::created_at
                        .gt(t)
                        .or(endpoints::created_at.eq(t).and(endpoints::id.gt(id))),
                )
            } else {
                query.filter(
                    endpoints::created_at
                        .lt(t)
                        .or(endpoints::created_at.eq(t).and(endpoints::id.lt(id))),
                )
            };
        }
        query = if ascending {
            query.order((endpoints::created_at.asc(), endpoints::id.asc()))
        } else {
            query.order((endpoints::created_at.desc(), endpoints::id.desc()))
        };
        let rows = query
            .select(Endpoint::as_select())
            .limit(page.limit + 1)
            .load(conn)
            .await?;
        Ok(page.finish(rows, total))
    })
}

/// Inserts an endpoint; `false` when its project already has one of that name.
pub async fn insert(tx: &mut Tx<'_>, endpoint: &Endpoint) -> Result<bool, AppError> {
    on_tx!(tx, conn => {
        match diesel::insert_into(endpoints::table).values(endpoint).execute(conn).await {
            Err(e) if crate::error::is_unique_violation(&e) => Ok(false),
            other => other.map(|_| true).map_err(AppError::from),
        }
    })
}

pub async fn set_status(
    tx: &mut Tx<'_>,
    id: Id,
    status: EndpointStatus,
    now: Timestamp,
) -> Result<Endpoint, AppError> {
    on_tx!(tx, conn => {
        Ok(diesel::update(endpoints::table.find(id))
            .set((endpoints::status.eq(status), endpoints::updated_at.eq(now)))
            .returning(Endpoint::as_returning())
            .prepared()
            .get_result(conn)
            .await?)
    })
}

pub async fn delete(tx: &mut Tx<'_>, id: Id) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::delete(endpoints::table.find(id)).execute(conn).await?;
        Ok(())
    })
}

/// The model's ACTIVE endpoints, all and on shared (not self-hosted) tiers, counted inside
/// the transaction that holds the model's lock.
pub async fn active_counts(tx: &mut Tx<'_>, model_id: Id) -> Result<(i64, i64), AppError> {
    on_tx!(tx, conn => {
        let rows: Vec<bool> = endpoints::table
            .filter(endpoints::model_id.eq(model_id))
            .filter(endpoints::status.eq(EndpointStatus::Active))
            .select(endpoints::self_hosted)
            .load(conn)
            .await?;
        let hosted = rows.iter().filter(|self_hosted| !**self_hosted).count() as i64;
        Ok((rows.len() as i64, hosted))
    })
}

/// Whether one of `projects` runs `version_id` on an ACTIVE endpoint: what lets a project that
/// does not own a model download the files it deploys.
pub async fn serves_version(
    db: &Db,
    projects: ProjectSet,
    version_id: Id,
) -> Result<bool, AppError> {
    with_conn!(db, conn => {
        let mut query = endpoints::table
            .filter(endpoints::model_version_id.eq(version_id))
            .filter(endpoints::status.eq(EndpointStatus::Active))
            .select(endpoints::id)
            .into_boxed();
        query = match projects {
            ProjectSet::All => query,
            ProjectSet::Organization(org) => query.filter(
                endpoints::project_id.eq_any(
                    projects::table
                        .filter(projects::organization_id.eq(org))
                        .select(projects::id),
                ),
            ),
            ProjectSet::One(project) => query.filter(endpoints::project_id.eq(project)),
        };
        Ok(query.first::<Id>(conn).await.optional()?.is_some())
    })
}
