use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::page::{Cursor, Page, PageRequest, like_pattern};
use crate::db::projects::ProjectSet;
use crate::db::schema::{models, projects};
use crate::db::{
    AnyTx, Db, Fetch, KeepPrepared, Run, Tx, TxConn, on_any_tx, on_tx, read, with_conn,
};
use crate::error::AppError;
use crate::values::{CatalogRole, ModelFamily, ModelStatus, ProductType};
use crate::values::{Id, JsonText, Timestamp};

diesel::define_sql_function! {
    /// Lower-cases ASCII on SQLite and the full alphabet on PostgreSQL.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A registered model and its metadata. Deleted models keep their row with status `DELETED`
/// and `deleted_at` set; every lookup here skips them.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = models, treat_none_as_default_value = false)]
pub struct Model {
    pub id: Id,
    pub project_id: Id,
    /// Unique in the project; the handle for `modelByName` and the manifest.
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub long_description: Option<String>,
    pub product_type: ProductType,
    pub provider: Option<String>,
    pub environment: String,
    pub risk_classification: Option<String>,
    pub lifecycle_stage: Option<String>,
    pub model_family: Option<ModelFamily>,
    pub model_task_type: Option<String>,
    pub model_architecture: Option<String>,
    pub framework: Option<String>,
    pub intended_use: Option<String>,
    pub limitations: Option<String>,
    pub deployment_status: String,
    pub serving_url: Option<String>,
    pub input_schema: Option<JsonText>,
    pub output_schema: Option<JsonText>,
    pub ai_system_type: Option<String>,
    pub vendor_name: Option<String>,
    pub vendor_product_name: Option<String>,
    pub vendor_model_id: Option<String>,
    pub deployment_environment: Option<String>,
    pub business_use_case: Option<String>,
    pub is_gpai: bool,
    pub capabilities: JsonText,
    pub tags: JsonText,
    /// False blocks new endpoints; running ones keep serving.
    pub enabled: bool,
    pub archived: bool,
    pub status: ModelStatus,
    pub current_version_id: Option<Id>,
    pub next_version_number: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    /// In the catalog: other projects may discover and deploy it.
    pub shared: bool,
    /// Set while shared; decides the tiers other projects may deploy it on.
    pub catalog_role: Option<CatalogRole>,
    pub featured: bool,
    pub shared_at: Option<Timestamp>,
    /// ACTIVE endpoints of the model across all projects, kept by the endpoint transactions.
    pub deployment_count: i64,
}

/// The columns `updateModel` may change. `None` leaves a column alone; for nullable columns
/// `Some(None)` clears it.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = models)]
pub struct ModelChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<Option<String>>,
    pub long_description: Option<Option<String>>,
    pub product_type: Option<ProductType>,
    pub provider: Option<Option<String>>,
    pub environment: Option<String>,
    pub risk_classification: Option<Option<String>>,
    pub lifecycle_stage: Option<Option<String>>,
    pub model_family: Option<Option<ModelFamily>>,
    pub model_task_type: Option<Option<String>>,
    pub model_architecture: Option<Option<String>>,
    pub framework: Option<Option<String>>,
    pub intended_use: Option<Option<String>>,
    pub limitations: Option<Option<String>>,
    pub deployment_status: Option<String>,
    pub serving_url: Option<Option<String>>,
    pub input_schema: Option<Option<JsonText>>,
    pub output_schema: Option<Option<JsonText>>,
    pub ai_system_type: Option<Option<String>>,
    pub vendor_name: Option<Option<String>>,
    pub vendor_product_name: Option<Option<String>>,
    pub vendor_model_id: Option<Option<String>>,
    pub deployment_environment: Option<Option<String>>,
    pub business_use_case: Option<Option<String>>,
    pub is_gpai: Option<bool>,
    pub capabilities: Option<JsonText>,
    pub tags: Option<JsonText>,
    pub enabled: Option<bool>,
    pub archived: Option<bool>,
    pub updated_at: Option<Timestamp>,
}

/// One filter object for `models(...)`; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct ModelFilter {
    /// Only this project's models; absent: every project the key sees.
    pub project_id: Option<Id>,
    /// Case-insensitive substring of name, slug or description.
    pub q: Option<String>,
    pub model_family: Option<ModelFamily>,
    /// Any of these product types.
    pub product_types: Option<Vec<ProductType>>,
    pub deployment_status: Option<String>,
    pub model_task_type: Option<String>,
    pub risk_classification: Option<String>,
    pub framework: Option<String>,
    pub status: Option<ModelStatus>,
    /// Archived models are left out unless this is true.
    pub include_archived: bool,
    /// The catalog's view: shared models only, whatever project they are in.
    pub catalog: Option<CatalogFilter>,
}

/// What the catalog narrows by, beyond a model's own fields.
#[derive(Debug, Clone, Default)]
pub struct CatalogFilter {
    pub featured: Option<bool>,
    pub catalog_role: Option<CatalogRole>,
    pub organization_id: Option<Id>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelOrderField {
    CreatedAt,
    UpdatedAt,
    Name,
    /// When the model was shared (catalog lists).
    SharedAt,
    /// ACTIVE endpoints across all projects (catalog lists).
    DeploymentCount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy)]
pub struct ModelOrder {
    pub field: ModelOrderField,
    pub direction: OrderDirection,
}

impl Default for ModelOrder {
    fn default() -> Self {
        ModelOrder {
            field: ModelOrderField::CreatedAt,
            direction: OrderDirection::Desc,
        }
    }
}

impl ModelOrder {
    /// The cursor key of a row under this order.
    pub fn cursor(&self, model: &Model) -> Cursor {
        let key = match self.field {
            ModelOrderField::CreatedAt => timestamp_key(model.created_at),
            ModelOrderField::UpdatedAt => timestamp_key(model.updated_at),
            ModelOrderField::Name => model.name.clone(),
            ModelOrderField::SharedAt => model.shared_at.map(timestamp_key).unwrap_or_default(),
            ModelOrderField::DeploymentCount => model.deployment_count.to_string(),
        };
        Cursor { key, id: model.id }
    }
}

fn timestamp_key(t: Timestamp) -> String {
    t.0.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn parse_timestamp_key(key: &str) -> Result<Timestamp, AppError> {
    chrono::NaiveDateTime::parse_from_str(key, "%Y-%m-%dT%H:%M:%S%.6f")
        .map(Timestamp)
        .map_err(|_| AppError::bad_input("after", "not a cursor of this ordering"))
}

pub async fn find_live(db: &Db, id: Id) -> Result<Option<Model>, AppError> {
    with_conn!(db, conn => {
        Ok(models::table
            .find(id)
            .filter(models::deleted_at.is_null())
            .select(Model::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The statement of [`find_live_with_project`] and [`find_live_with_project_shared`]: a macro,
/// not a value, because `as_select` is typed for one backend. No `LIMIT` (the id is the key):
/// SQLite compiles a statement with a bound `LIMIT ?` again each time it runs.
macro_rules! live_with_project {
    ($id:expr) => {
        models::table
            .inner_join(projects::table)
            .filter(models::id.eq($id))
            .filter(models::deleted_at.is_null())
            .select((
                Model::as_select(),
                crate::db::projects::Project::as_select(),
            ))
    };
}

/// A live model with its project, in one statement: every check of a caller against a model
/// needs both.
pub async fn find_live_with_project(
    db: &Db,
    id: Id,
) -> Result<Option<(Model, crate::db::projects::Project)>, AppError> {
    read!(db, conn => Ok(live_with_project!(id).fetch_one(conn).await.optional()?))
}

/// [`find_live_with_project`] inside a creating transaction: on PostgreSQL under key-share
/// locks on both rows, so the project's quotas hold until it commits (see
/// [`crate::db::projects::find_shared`]).
pub async fn find_live_with_project_shared(
    tx: &mut impl AnyTx,
    id: Id,
) -> Result<Option<(Model, crate::db::projects::Project)>, AppError> {
    let found = match tx.conn() {
        TxConn::SqliteAsync(conn) => live_with_project!(id).fetch_one(conn).await,
        TxConn::Sqlite(conn) => live_with_project!(id).fetch_one(conn).await,
        TxConn::Postgres(conn) => live_with_project!(id).for_key_share().fetch_one(conn).await,
    };
    Ok(found.optional()?)
}

pub async fn find_by_name(db: &Db, project_id: Id, name: &str) -> Result<Option<Model>, AppError> {
    with_conn!(db, conn => {
        Ok(models::table
            .filter(models::project_id.eq(project_id))
            .filter(models::name.eq(name))
            .filter(models::deleted_at.is_null())
            .select(Model::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// One page of the models in `visible` that match `filter`, in `order`.
pub async fn page(
    db: &Db,
    visible: ProjectSet,
    filter: &ModelFilter,
    order: ModelOrder,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Model>, AppError> {
    let after = match (&page.cursor, order.field) {
        (None, _) => None,
        (Some(c), ModelOrderField::Name) => Some((None, c.key.clone(), c.id)),
        (Some(c), ModelOrderField::DeploymentCount) => {
            let count = c
                .key
                .parse::<i64>()
                .map_err(|_| AppError::bad_input("after", "not a cursor of this ordering"))?;
            Some((None, count.to_string(), c.id))
        }
        (Some(c), _) => Some((Some(parse_timestamp_key(&c.key)?), c.key.clone(), c.id)),
    };
    let ascending = page.ascending(order.direction == OrderDirection::Asc);
    let pattern = filter.q.as_deref().map(like_pattern);
    // Owned: on SQLite the statements run on a blocking thread (see `read!`).
    let (filter, page) = (filter.clone(), page.clone());

    // Expanded per backend: a boxed query is tied to one backend type.
    macro_rules! filtered {
        () => {{
            let mut query = models::table
                .filter(models::deleted_at.is_null())
                .into_boxed();
            query = match visible {
                ProjectSet::All => query,
                ProjectSet::Organization(org) => query.filter(
                    models::project_id.eq_any(
                        projects::table
                            .filter(projects::organization_id.eq(org))
                            .select(projects::id),
                    ),
                ),
                ProjectSet::One(project) => query.filter(models::project_id.eq(project)),
            };
            if let Some(project) = filter.project_id {
                query = query.filter(models::project_id.eq(project));
            }
            if let Some(pattern) = &pattern {
                query = query.filter(
                    lower(models::name)
                        .like(pattern.clone())
                        .escape('\\')
                        .or(lower(models::slug).like(pattern.clone()).escape('\\'))
                        .or(lower(models::description.assume_not_null())
                            .like(pattern.clone())
                            .escape('\\')),
                );
            }
            if let Some(family) = filter.model_family {
                query = query.filter(models::model_family.eq(family));
            }
            if let Some(types) = &filter.product_types {
                query = query.filter(models::product_type.eq_any(types.clone()));
            }
            if let Some(v) = &filter.deployment_status {
                query = query.filter(models::deployment_status.eq(v.clone()));
            }
            if let Some(v) = &filter.model_task_type {
                query = query.filter(models::model_task_type.eq(v.clone()));
            }
            if let Some(v) = &filter.risk_classification {
                query = query.filter(models::risk_classification.eq(v.clone()));
            }
            if let Some(v) = &filter.framework {
                query = query.filter(models::framework.eq(v.clone()));
            }
            if let Some(status) = filter.status {
                query = query.filter(models::status.eq(status));
            }
            if !filter.include_archived {
                query = query.filter(models::archived.eq(false));
            }
            if let Some(catalog) = &filter.catalog {
                query = query.filter(models::shared.eq(true));
                if let Some(featured) = catalog.featured {
                    query = query.filter(models::featured.eq(featured));
                }
                if let Some(role) = catalog.catalog_role {
                    query = query.filter(models::catalog_role.eq(role));
                }
                if let Some(org) = catalog.organization_id {
                    query = query.filter(
                        models::project_id.eq_any(
                            projects::table
                                .filter(projects::organization_id.eq(org))
                                .select(projects::id),
                        ),
                    );
                }
            }
            query
        }};
    }
    macro_rules! keyset {
        ($query:ident, $column:expr, $value:expr, $id:expr) => {
            if ascending {
                $query.filter(
                    $column
                        .gt($value.clone())
                        .or($column.eq($value).and(models::id.gt($id))),
                )
            } else {
                $query.filter(
                    $column
                        .lt($value.clone())
                        .or($column.eq($value).and(models::id.lt($id))),
                )
            }
        };
    }
    macro_rules! ordered {
        ($query:ident, $column:expr) => {
            if ascending {
                $query.order(($column.asc(), models::id.asc()))
            } else {
                $query.order(($column.desc(), models::id.desc()))
            }
        };
    }

    read!(db, conn => {
        let total = if count_total {
            Some(filtered!().count().fetch_one(conn).await?)
        } else {
            None
        };
        let mut query = filtered!();
        if let Some((time, key, id)) = after.clone() {
            query = match (order.field, time) {
                (ModelOrderField::CreatedAt, Some(t)) => keyset!(query, models::created_at, t, id),
                (ModelOrderField::UpdatedAt, Some(t)) => keyset!(query, models::updated_at, t, id),
                (ModelOrderField::SharedAt, Some(t)) => {
                    keyset!(query, models::shared_at.assume_not_null(), t, id)
                }
                (ModelOrderField::DeploymentCount, _) => {
                    let count: i64 = key.parse().unwrap_or_default();
                    keyset!(query, models::deployment_count, count, id)
                }
                _ => keyset!(query, models::name, key, id),
            };
        }
        query = match order.field {
            ModelOrderField::CreatedAt => ordered!(query, models::created_at),
            ModelOrderField::UpdatedAt => ordered!(query, models::updated_at),
            ModelOrderField::Name => ordered!(query, models::name),
            ModelOrderField::SharedAt => ordered!(query, models::shared_at),
            ModelOrderField::DeploymentCount => ordered!(query, models::deployment_count),
        };
        let rows: Vec<Model> = query
            .select(Model::as_select())
            .limit(page.limit + 1)
            .fetch_all(conn)
            .await?;
        Ok(page.finish(rows, total))
    })
}

/// The distinct values present in a project, for filter drop-downs.
#[derive(Debug, Clone)]
pub struct FilterValues {
    pub frameworks: Vec<String>,
    pub capabilities: Vec<String>,
    pub model_families: Vec<ModelFamily>,
    pub model_task_types: Vec<String>,
}

pub async fn filter_values(db: &Db, project_id: Id) -> Result<FilterValues, AppError> {
    with_conn!(db, conn => {
        let live = models::project_id.eq(project_id).and(models::deleted_at.is_null());
        let frameworks: Vec<Option<String>> = models::table
            .filter(live)
            .select(models::framework)
            .distinct()
            .load(conn)
            .await?;
        let families: Vec<Option<ModelFamily>> = models::table
            .filter(live)
            .select(models::model_family)
            .distinct()
            .load(conn)
            .await?;
        let task_types: Vec<Option<String>> = models::table
            .filter(live)
            .select(models::model_task_type)
            .distinct()
            .load(conn)
            .await?;
        let capability_lists: Vec<JsonText> = models::table
            .filter(live)
            .select(models::capabilities)
            .distinct()
            .load(conn)
            .await?;
        let mut capabilities: Vec<String> = capability_lists
            .into_iter()
            .filter_map(|list| serde_json::from_value::<Vec<String>>(list.0).ok())
            .flatten()
            .collect();
        capabilities.sort();
        capabilities.dedup();
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let mut model_families: Vec<ModelFamily> = families.into_iter().flatten().collect();
        model_families.sort();
        Ok(FilterValues {
            frameworks: sorted(frameworks.into_iter().flatten().collect()),
            capabilities,
            model_families,
            model_task_types: sorted(task_types.into_iter().flatten().collect()),
        })
    })
}

pub async fn by_ids(db: &Db, ids: &[Id]) -> Result<Vec<Model>, AppError> {
    with_conn!(db, conn => {
        Ok(models::table
            .filter(models::id.eq_any(ids))
            .filter(models::deleted_at.is_null())
            .select(Model::as_select())
            .load(conn)
            .await?)
    })
}

/// Live (not deleted) models of a project, counted inside a transaction.
pub async fn count_live(tx: &mut impl AnyTx, project_id: Id) -> Result<i64, AppError> {
    on_any_tx!(tx, conn => {
        Ok(models::table
            .filter(models::project_id.eq(project_id))
            .filter(models::deleted_at.is_null())
            .count()
            .fetch_one(conn)
            .await?)
    })
}

/// The name and slug of a live model of the project, other than `except`, that already uses
/// `name` or `slug`.
///
/// Asked as one seek per column: with `name = ? OR slug = ?` in one statement SQLite walked
/// every live model of the project (through an index that leads with `project_id`), which
/// made each create and rename cost the project's size.
pub async fn clash(
    tx: &mut Tx<'_>,
    project_id: Id,
    name: Option<&str>,
    slug: Option<&str>,
    except: Option<Id>,
) -> Result<Option<(String, String)>, AppError> {
    let on_name = match name {
        Some(name) => clash_on(tx, project_id, Clash::Name(name), except).await?,
        None => None,
    };
    match (on_name, slug) {
        (Some(found), _) => Ok(Some(found)),
        (None, Some(slug)) => clash_on(tx, project_id, Clash::Slug(slug), except).await,
        (None, None) => Ok(None),
    }
}

/// The column [`clash`] looks up.
enum Clash<'a> {
    Name(&'a str),
    Slug(&'a str),
}

async fn clash_on(
    tx: &mut Tx<'_>,
    project_id: Id,
    column: Clash<'_>,
    except: Option<Id>,
) -> Result<Option<(String, String)>, AppError> {
    on_tx!(tx, conn => {
        let mut query = models::table
            .filter(models::project_id.eq(project_id))
            .filter(models::deleted_at.is_null())
            .select((models::name, models::slug))
            .into_boxed();
        if let Some(except) = except {
            query = query.filter(models::id.ne(except));
        }
        query = match column {
            Clash::Name(name) => query.filter(models::name.eq(name)),
            Clash::Slug(slug) => query.filter(models::slug.eq(slug)),
        };
        Ok(query.first(conn).await.optional()?)
    })
}

/// Inserts a model; `false` when a unique index refused it (its name or slug is taken).
pub async fn insert(tx: &mut impl AnyTx, model: &Model) -> Result<bool, AppError> {
    on_any_tx!(tx, conn => {
        match diesel::insert_into(models::table).values(model).run(conn).await {
            Err(e) if crate::error::is_unique_violation(&e) => Ok(false),
            other => other.map(|_| true).map_err(AppError::from),
        }
    })
}

/// Applies `changes`; `None` when a unique index refused the new name or slug.
pub async fn update(
    tx: &mut Tx<'_>,
    id: Id,
    changes: &ModelChanges,
) -> Result<Option<Model>, AppError> {
    on_tx!(tx, conn => {
        match diesel::update(models::table.find(id))
            .set(changes)
            .returning(Model::as_returning())
            .get_result(conn)
            .await
        {
            Err(e) if crate::error::is_unique_violation(&e) => Ok(None),
            other => other.map(Some).map_err(AppError::from),
        }
    })
}

pub async fn set_current_version(
    tx: &mut impl AnyTx,
    id: Id,
    version: Option<Id>,
    now: Timestamp,
) -> Result<Model, AppError> {
    on_any_tx!(tx, conn => {
        Ok(diesel::update(models::table.find(id))
            .set((models::current_version_id.eq(version), models::updated_at.eq(now)))
            .returning(Model::as_returning())
            .prepared()
            .fetch_one(conn)
            .await?)
    })
}

pub async fn touch(tx: &mut Tx<'_>, id: Id, now: Timestamp) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::update(models::table.find(id))
            .set(models::updated_at.eq(now))
            .prepared()
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Moves the model to `to` if its status is still `from` (a compare-and-set, so concurrent
/// changes cannot both apply); answers the moved model, or `None` when it was not `from`.
/// `deleted_at` follows DELETED.
pub async fn set_status(
    tx: &mut Tx<'_>,
    id: Id,
    from: ModelStatus,
    to: ModelStatus,
    now: Timestamp,
) -> Result<Option<Model>, AppError> {
    on_tx!(tx, conn => {
        let deleted_at = (to == ModelStatus::Deleted).then_some(now);
        Ok(diesel::update(models::table.find(id).filter(models::status.eq(from)))
            .set((
                models::status.eq(to),
                models::deleted_at.eq(deleted_at),
                models::updated_at.eq(now),
            ))
            .returning(Model::as_returning())
            .prepared()
            .get_result(conn)
            .await
            .optional()?)
    })
}

/// Locks the model's row until the transaction ends (a no-op write, as `projects::lock`):
/// every change to its endpoints, catalog footprint and the status they drive takes it first,
/// so they apply one at a time and each sees the last one's result.
pub async fn lock(tx: &mut Tx<'_>, id: Id) -> Result<Model, AppError> {
    on_tx!(tx, conn => {
        Ok(diesel::update(models::table.find(id))
            .set(models::updated_at.eq(models::updated_at))
            .returning(Model::as_returning())
            .prepared()
            .get_result(conn)
            .await?)
    })
}

/// The catalog footprint: what sharing, unsharing and featuring change together.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = models, treat_none_as_null = true)]
pub struct Sharing {
    pub shared: bool,
    pub catalog_role: Option<CatalogRole>,
    pub featured: bool,
    pub shared_at: Option<Timestamp>,
}

pub async fn set_sharing(
    tx: &mut Tx<'_>,
    id: Id,
    sharing: &Sharing,
    now: Timestamp,
) -> Result<Model, AppError> {
    on_tx!(tx, conn => {
        Ok(diesel::update(models::table.find(id))
            .set((sharing, models::updated_at.eq(now)))
            .returning(Model::as_returning())
            .prepared()
            .get_result(conn)
            .await?)
    })
}

/// What the model's endpoints decide: its status, its catalog role and its deployment count.
pub async fn set_deployment(
    tx: &mut Tx<'_>,
    id: Id,
    status: ModelStatus,
    catalog_role: Option<CatalogRole>,
    deployment_count: i64,
    now: Timestamp,
) -> Result<Model, AppError> {
    on_tx!(tx, conn => {
        Ok(diesel::update(models::table.find(id))
            .set((
                models::status.eq(status),
                models::catalog_role.eq(catalog_role),
                models::deployment_count.eq(deployment_count),
                models::updated_at.eq(now),
            ))
            .returning(Model::as_returning())
            .prepared()
            .get_result(conn)
            .await?)
    })
}

/// Another shared live model of the organization with this slug: the manifest's key is
/// `<organization>/<model slug>`, so two of them would collide.
pub async fn shared_slug_taken(
    tx: &mut Tx<'_>,
    organization_id: Id,
    slug: &str,
    except: Id,
) -> Result<bool, AppError> {
    on_tx!(tx, conn => {
        let found: Option<Id> = models::table
            .inner_join(projects::table)
            .filter(projects::organization_id.eq(organization_id))
            .filter(models::slug.eq(slug))
            .filter(models::shared.eq(true))
            .filter(models::deleted_at.is_null())
            .filter(models::id.ne(except))
            .select(models::id)
            .first(conn)
            .await
            .optional()?;
        Ok(found.is_some())
    })
}

/// A model read inside a transaction, whatever its status.
pub async fn get(tx: &mut Tx<'_>, id: Id) -> Result<Model, AppError> {
    on_tx!(tx, conn => Ok(models::table.find(id).select(Model::as_select()).first(conn).await?))
}
