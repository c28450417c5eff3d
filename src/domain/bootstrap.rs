//! First start of an empty instance: a default organization and project, and one
//! instance-admin key whose secret is shown once.

use crate::auth::keys;
use crate::db::Db;
use crate::db::api_keys::{self, ApiKey};
use crate::db::organizations::{self, Organization};
use crate::db::projects::{self, Project};
use crate::error::AppError;
use crate::values::Role;
use crate::values::{Id, Timestamp};

pub const DEFAULT_SLUG: &str = "default";

/// Returns the admin secret when this call initialised the instance, `None` when it already
/// was. Everything is written in one transaction, and the organization's unique slug makes a
/// second replica starting at the same moment lose cleanly instead of minting a second key.
pub async fn initialize(db: &Db) -> Result<Option<String>, AppError> {
    let now = Timestamp::now();
    let org = Organization {
        id: Id::new(),
        slug: DEFAULT_SLUG.into(),
        name: "Default".into(),
        created_at: now,
        updated_at: now,
    };
    let project = Project {
        id: Id::new(),
        organization_id: org.id,
        slug: DEFAULT_SLUG.into(),
        name: "Default".into(),
        description: None,
        max_models: None,
        max_versions_per_month: None,
        created_at: now,
        updated_at: now,
    };
    let secret = keys::generate();
    let key = ApiKey {
        id: Id::new(),
        name: "bootstrap admin".into(),
        prefix: secret.prefix.clone(),
        secret_hash: secret.hash.clone(),
        role: Role::Admin,
        organization_id: None,
        project_id: None,
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    };
    let created = db
        .transaction(async |tx| {
            if organizations::count(tx).await? > 0 {
                return Ok(false);
            }
            match organizations::insert(tx, &org).await {
                // A replica starting at the same moment won.
                Err(AppError::Conflict(_)) => return Ok(false),
                other => other?,
            }
            projects::insert(tx, &project).await?;
            api_keys::insert(tx, &key).await?;
            Ok(true)
        })
        .await?;
    Ok(created.then_some(secret.secret))
}
