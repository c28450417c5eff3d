//! The catalog's reads across tables (shared models with their owners, versions, files) and
//! the revision that says when the public manifest changed.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::artifacts::{Artifact, PackageRow};
use crate::db::model_versions::ModelVersion;
use crate::db::models::Model;
use crate::db::schema::{
    artifact_packages, artifacts, catalog_revision, model_versions, models, organizations, projects,
};
use crate::db::{Db, KeepPrepared, Tx, on_tx, with_conn};
use crate::error::AppError;
use crate::values::{ArtifactStatus, Id, VersionLifecycle};

/// Moves the catalog's revision forward inside a change's transaction. The row is also the
/// lock that makes catalog changes (sharing, slugs in the manifest) apply one at a time; take
/// it after the model's row, as every caller does, so two transactions never wait on each
/// other in opposite orders.
pub async fn bump(tx: &mut Tx<'_>) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        diesel::update(catalog_revision::table.find(1))
            .set(catalog_revision::revision.eq(catalog_revision::revision + 1_i64))
            .prepared()
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn revision(db: &Db) -> Result<i64, AppError> {
    with_conn!(db, conn => {
        Ok(catalog_revision::table
            .find(1)
            .select(catalog_revision::revision)
            .first(conn)
            .await?)
    })
}

/// What the catalog and the manifest list: shared, not archived, not deleted. One condition
/// for every statement here, so the manifest and a lookup by name never disagree.
type Listed = diesel::dsl::And<
    diesel::dsl::And<
        diesel::dsl::Eq<models::shared, bool>,
        diesel::dsl::Eq<models::archived, bool>,
    >,
    diesel::dsl::IsNull<models::deleted_at>,
>;

fn listed() -> Listed {
    models::shared
        .eq(true)
        .and(models::archived.eq(false))
        .and(models::deleted_at.is_null())
}

/// A shared model with the slugs of its owners.
pub struct SharedModel {
    pub model: Model,
    pub organization_slug: String,
    pub project_slug: String,
}

/// Shared live models that are not archived (one, with `only`), as the catalog lists them,
/// with their published versions, those versions'
/// available files and packages: everything the manifest shows, in four statements.
pub struct CatalogRows {
    pub models: Vec<SharedModel>,
    pub versions: Vec<ModelVersion>,
    pub artifacts: Vec<Artifact>,
    pub packages: Vec<PackageRow>,
}

pub async fn shared_models(db: &Db, only: Option<Id>) -> Result<CatalogRows, AppError> {
    with_conn!(db, conn => {
        let mut query = models::table
            .inner_join(projects::table.inner_join(organizations::table))
            .filter(listed())
            .select((Model::as_select(), organizations::slug, projects::slug))
            .order((organizations::slug.asc(), models::slug.asc()))
            .into_boxed();
        if let Some(id) = only {
            query = query.filter(models::id.eq(id));
        }
        let models: Vec<SharedModel> = query
            .load::<(Model, String, String)>(conn)
            .await?
            .into_iter()
            .map(|(model, organization_slug, project_slug)| SharedModel {
                model,
                organization_slug,
                project_slug,
            })
            .collect();

        let mut versions = model_versions::table
            .inner_join(models::table)
            .filter(listed())
            .filter(model_versions::lifecycle.eq(VersionLifecycle::Published))
            .select(ModelVersion::as_select())
            .into_boxed();
        if let Some(id) = only {
            versions = versions.filter(model_versions::model_id.eq(id));
        }
        let versions = versions.load(conn).await?;

        let mut files = artifacts::table
            .inner_join(models::table)
            .filter(listed())
            .filter(artifacts::status.eq(ArtifactStatus::Available))
            .filter(artifacts::version_id.is_not_null())
            .select(Artifact::as_select())
            .order((artifacts::file_name.asc(), artifacts::id.asc()))
            .into_boxed();
        if let Some(id) = only {
            files = files.filter(artifacts::model_id.eq(id));
        }
        let artifacts = files.load(conn).await?;

        let mut packages = artifact_packages::table
            .inner_join(models::table)
            .filter(listed())
            .select(PackageRow::as_select())
            .order(artifact_packages::id.asc())
            .into_boxed();
        if let Some(id) = only {
            packages = packages.filter(artifact_packages::model_id.eq(id));
        }
        let packages = packages.load(conn).await?;
        Ok(CatalogRows {
            models,
            versions,
            artifacts,
            packages,
        })
    })
}

/// The shared live model at `<organization slug>/<model slug>`.
pub async fn find_shared(
    db: &Db,
    organization_slug: &str,
    model_slug: &str,
) -> Result<Option<Model>, AppError> {
    with_conn!(db, conn => {
        Ok(models::table
            .inner_join(projects::table.inner_join(organizations::table))
            .filter(organizations::slug.eq(organization_slug))
            .filter(models::slug.eq(model_slug))
            .filter(listed())
            .select(Model::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}
