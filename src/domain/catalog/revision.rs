//! When the public manifest changes: the catalog's revision, moved inside every change to what
//! a shared model shows, and the uniqueness of the manifest's keys. Kept apart from the rest of
//! the catalog so that the areas whose changes it follows (models, versions, packages) can call
//! it without importing the catalog's rules.

use crate::db::catalog;
use crate::db::models::{self, Model};
use crate::db::{Tx, projects};
use crate::error::AppError;
use crate::values::Id;

/// The manifest keys entries `<organization>/<model slug>`: two shared models of one
/// organization may not share a slug. Called with the catalog's revision row held.
pub(super) async fn check_catalog_key(
    tx: &mut Tx<'_>,
    organization: Id,
    model: &Model,
) -> Result<(), AppError> {
    if models::shared_slug_taken(tx, organization, &model.slug, model.id).await? {
        return Err(AppError::conflict(format!(
            "another shared model of this organization has the slug `{}`; change this model's slug before sharing it",
            model.slug
        )));
    }
    Ok(())
}

/// Inside a change to `model` (its public fields, a version's lifecycle, a package): a shared
/// model's manifest entry changed, so the catalog's revision moves. Checks the manifest key
/// again when the slug may have changed.
pub async fn model_changed(tx: &mut Tx<'_>, model: &Model) -> Result<(), AppError> {
    if !model.shared {
        return Ok(());
    }
    catalog::bump(tx).await?;
    let organization = projects::organization_of(tx, model.project_id).await?;
    check_catalog_key(tx, organization, model).await
}

/// Inside a version's lifecycle change: the manifest shows each shared model's newest
/// published version. The revision moves unconditionally (see `versions::set_lifecycle`).
pub async fn version_changed(tx: &mut Tx<'_>) -> Result<(), AppError> {
    catalog::bump(tx).await
}
