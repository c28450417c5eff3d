//! Batched lookups for nested GraphQL fields: one typed key per lookup, one query per batch,
//! so a page of 50 models costs the same number of statements as a page of 5.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use crate::db::Db;
use crate::db::artifacts::{self, Artifact};
use crate::db::model_versions::{self, ModelVersion};
use crate::db::models::{self, Model};
use crate::db::organizations::{self, Organization};
use crate::db::projects::{self, Project};
use crate::error::AppError;
use crate::values::Id;
use crate::values::VersionLifecycle;

pub struct RegistryLoader {
    db: Db,
}

/// A per-request loader: its cache never outlives one request, so it never serves data the
/// request's key could not read.
pub fn per_request(db: Db) -> DataLoader<RegistryLoader, HashMapCache> {
    DataLoader::with_cache(RegistryLoader { db }, tokio::spawn, HashMapCache::default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProjectKey(pub Id);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrganizationKey(pub Id);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionKey(pub Id);

/// A live (not deleted) model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelKey(pub Id);

/// How many versions a model has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionCountKey(pub Id);

/// A model's highest-numbered published version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LatestPublishedKey(pub Id);

/// A model's newest `limit` versions: the first page of `model.versions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewestVersionsKey {
    pub model: Id,
    pub limit: i64,
}

fn ids<K: Copy>(keys: &[K], id: impl Fn(K) -> Id) -> Vec<Id> {
    keys.iter().map(|k| id(*k)).collect()
}

impl Loader<ProjectKey> for RegistryLoader {
    type Value = Project;
    type Error = AppError;

    async fn load(&self, keys: &[ProjectKey]) -> Result<HashMap<ProjectKey, Project>, AppError> {
        let rows = projects::by_ids(&self.db, &ids(keys, |k| k.0)).await?;
        Ok(rows.into_iter().map(|p| (ProjectKey(p.id), p)).collect())
    }
}

impl Loader<OrganizationKey> for RegistryLoader {
    type Value = Organization;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[OrganizationKey],
    ) -> Result<HashMap<OrganizationKey, Organization>, AppError> {
        let rows = organizations::by_ids(&self.db, &ids(keys, |k| k.0)).await?;
        Ok(rows
            .into_iter()
            .map(|o| (OrganizationKey(o.id), o))
            .collect())
    }
}

impl Loader<ModelKey> for RegistryLoader {
    type Value = Model;
    type Error = AppError;

    async fn load(&self, keys: &[ModelKey]) -> Result<HashMap<ModelKey, Model>, AppError> {
        let rows = models::by_ids(&self.db, &ids(keys, |k| k.0)).await?;
        Ok(rows.into_iter().map(|m| (ModelKey(m.id), m)).collect())
    }
}

impl Loader<VersionKey> for RegistryLoader {
    type Value = ModelVersion;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[VersionKey],
    ) -> Result<HashMap<VersionKey, ModelVersion>, AppError> {
        let rows = model_versions::by_ids(&self.db, &ids(keys, |k| k.0)).await?;
        Ok(rows.into_iter().map(|v| (VersionKey(v.id), v)).collect())
    }
}

impl Loader<VersionCountKey> for RegistryLoader {
    type Value = i64;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[VersionCountKey],
    ) -> Result<HashMap<VersionCountKey, i64>, AppError> {
        let counts = model_versions::count_per_model(&self.db, &ids(keys, |k| k.0)).await?;
        // A model with no versions has no group: answer zero rather than nothing.
        Ok(keys
            .iter()
            .map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0)))
            .collect())
    }
}

impl Loader<LatestPublishedKey> for RegistryLoader {
    /// `None` for a model with no published version: an answer too, so it is cached.
    type Value = Option<ModelVersion>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[LatestPublishedKey],
    ) -> Result<HashMap<LatestPublishedKey, Option<ModelVersion>>, AppError> {
        let mut newest = model_versions::newest_per_model(
            &self.db,
            &ids(keys, |k| k.0),
            1,
            Some(VersionLifecycle::Published),
        )
        .await?;
        Ok(keys
            .iter()
            .map(|k| (*k, newest.remove(&k.0).and_then(|mut v| v.pop())))
            .collect())
    }
}

impl Loader<NewestVersionsKey> for RegistryLoader {
    type Value = Vec<ModelVersion>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[NewestVersionsKey],
    ) -> Result<HashMap<NewestVersionsKey, Vec<ModelVersion>>, AppError> {
        // Keys of one request nearly always share a page size: one statement per distinct size.
        let mut by_limit: HashMap<i64, Vec<Id>> = HashMap::new();
        for key in keys {
            by_limit.entry(key.limit).or_default().push(key.model);
        }
        let mut out = HashMap::new();
        for (limit, models) in by_limit {
            let mut found =
                model_versions::newest_per_model(&self.db, &models, limit, None).await?;
            for model in models {
                out.insert(
                    NewestVersionsKey { model, limit },
                    found.remove(&model).unwrap_or_default(),
                );
            }
        }
        Ok(out)
    }
}

/// How many available artifacts a model has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArtifactCountKey(pub Id);

/// A model's current artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurrentArtifactKey(pub Id);

impl Loader<ArtifactCountKey> for RegistryLoader {
    type Value = i64;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[ArtifactCountKey],
    ) -> Result<HashMap<ArtifactCountKey, i64>, AppError> {
        let counts = artifacts::count_per_model(&self.db, &ids(keys, |k| k.0)).await?;
        Ok(keys
            .iter()
            .map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0)))
            .collect())
    }
}

impl Loader<CurrentArtifactKey> for RegistryLoader {
    type Value = Artifact;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[CurrentArtifactKey],
    ) -> Result<HashMap<CurrentArtifactKey, Artifact>, AppError> {
        let mut current = artifacts::current_per_model(&self.db, &ids(keys, |k| k.0)).await?;
        Ok(keys
            .iter()
            .filter_map(|k| current.remove(&k.0).map(|a| (*k, a)))
            .collect())
    }
}

/// The available artifacts of a version, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionArtifactsKey(pub Id);

impl Loader<VersionArtifactsKey> for RegistryLoader {
    type Value = Vec<Artifact>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[VersionArtifactsKey],
    ) -> Result<HashMap<VersionArtifactsKey, Vec<Artifact>>, AppError> {
        let mut grouped: HashMap<VersionArtifactsKey, Vec<Artifact>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for artifact in artifacts::of_versions(&self.db, &ids(keys, |k| k.0)).await? {
            if let Some(version) = artifact.version_id {
                grouped
                    .entry(VersionArtifactsKey(version))
                    .or_default()
                    .push(artifact);
            }
        }
        Ok(grouped)
    }
}
