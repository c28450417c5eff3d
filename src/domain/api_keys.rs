//! Minting and revoking API keys.

use crate::auth::{Principal, Scope, keys, scope_of};
use crate::db::Db;
use crate::db::api_keys::{self, ApiKey, KeySet, Revocation};
use crate::db::{organizations as organizations_db, projects as projects_db};
use crate::domain::{organizations, validate};
use crate::error::AppError;
use crate::values::Role;
use crate::values::{Id, Timestamp};

pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    /// Scope the key to this organization (and all its projects).
    pub organization_id: Option<Id>,
    /// Scope the key to this project. With neither, the key is instance-wide.
    pub project_id: Option<Id>,
    /// When the key stops working; absent: never.
    pub expires_at: Option<Timestamp>,
}

pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// The secret, shown this once: only its hash is kept.
    pub secret: String,
}

/// Writes a new key of `scope`: no permission check, for the server's own bootstrap and the
/// operator's shell.
pub async fn mint(
    db: &Db,
    name: &str,
    role: Role,
    scope: Scope,
    expires_at: Option<Timestamp>,
) -> Result<CreatedApiKey, AppError> {
    if role == Role::Ingest && !matches!(scope, Scope::Project { .. }) {
        return Err(AppError::bad_input(
            "role",
            "an INGEST key belongs to one project: give projectId",
        ));
    }
    let secret = keys::generate();
    let (organization_id, project_id) = match scope {
        Scope::Instance => (None, None),
        Scope::Organization(o) => (Some(o), None),
        Scope::Project { project, .. } => (None, Some(project)),
    };
    let key = ApiKey {
        id: Id::new(),
        name: validate::name("name", name)?,
        prefix: secret.prefix,
        secret_hash: secret.hash,
        role,
        organization_id,
        project_id,
        created_at: Timestamp::now(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    db.transaction(async |tx| api_keys::insert(tx, &key).await)
        .await?;
    Ok(CreatedApiKey {
        api_key: key,
        secret: secret.secret,
    })
}

pub async fn create(
    db: &Db,
    caller: &Principal,
    input: NewApiKey,
) -> Result<CreatedApiKey, AppError> {
    let scope = match (input.organization_id, input.project_id) {
        (Some(_), Some(_)) => {
            return Err(AppError::bad_input(
                "projectId",
                "give organizationId or projectId, not both",
            ));
        }
        (Some(org), None) => Scope::Organization(
            organizations::visible_organization(db, caller, org)
                .await?
                .id,
        ),
        (None, Some(project)) => {
            let p = organizations::visible_project(db, caller, project).await?;
            Scope::Project {
                organization: p.organization_id,
                project: p.id,
            }
        }
        (None, None) => Scope::Instance,
    };
    caller.require_key_admin(scope)?;
    if input.expires_at.is_some_and(|t| t <= Timestamp::now()) {
        return Err(AppError::bad_input("expiresAt", "must be in the future"));
    }
    mint(db, &input.name, input.role, scope, input.expires_at).await
}

pub async fn revoke(db: &Db, caller: &Principal, id: Id) -> Result<ApiKey, AppError> {
    let key = api_keys::find(db, id)
        .await?
        .ok_or(AppError::NotFound("API key"))?;
    let scope = scope_of(db, &key)
        .await?
        .ok_or(AppError::NotFound("API key"))?;
    caller.require_key_admin(scope).map_err(|e| match e {
        AppError::Forbidden(_) if caller.role() == Role::Admin => AppError::NotFound("API key"),
        AppError::NotFound(_) => AppError::NotFound("API key"),
        other => other,
    })?;
    // The last instance-admin key is the API's only way to mint instance-admin keys again:
    // revoking it over the API would lock every caller out (the shell's `keys` command, run
    // next to the database, is the recovery path and is not bound by this).
    let revocation = db
        .transaction(async |tx| api_keys::revoke(tx, key.id, Timestamp::now(), true).await)
        .await?;
    match revocation {
        Revocation::Revoked(key) => Ok(key),
        Revocation::LastInstanceAdmin => Err(AppError::precondition(
            "this is the last usable instance-admin key: mint another ADMIN key first \
             (or use `model-registry keys` on the server)",
        )),
    }
}

/// Keys the caller administers: an ADMIN's scope; other roles see only their own key.
pub async fn list(db: &Db, caller: &Principal) -> Result<Vec<ApiKey>, AppError> {
    if caller.role() < Role::Admin {
        return Ok(vec![caller.key.clone()]);
    }
    let set = match caller.scope {
        Scope::Instance => KeySet::All,
        Scope::Organization(o) => KeySet::Organization(o),
        Scope::Project { project, .. } => KeySet::Project(project),
    };
    api_keys::list(db, set).await
}

/// A scope as an operator names it on the shell: by slug.
pub enum ShellScope<'a> {
    Instance,
    Organization(&'a str),
    Project(&'a str),
}

/// `model-registry keys create`: the operator's shell, next to the database, needs no key.
pub async fn mint_from_shell(
    db: &Db,
    name: &str,
    role: Role,
    scope: ShellScope<'_>,
    expires_in_days: Option<i64>,
) -> Result<CreatedApiKey, AppError> {
    let scope = match scope {
        ShellScope::Instance => Scope::Instance,
        ShellScope::Organization(slug) => Scope::Organization(
            organizations_db::find_by_slug(db, slug)
                .await?
                .ok_or_else(|| {
                    AppError::bad_input(
                        "organization",
                        format!("no organization with slug `{slug}`"),
                    )
                })?
                .id,
        ),
        ShellScope::Project(slug) => {
            let project = projects_db::find_by_slug(db, slug).await?.ok_or_else(|| {
                AppError::bad_input("project", format!("no project with slug `{slug}`"))
            })?;
            Scope::Project {
                organization: project.organization_id,
                project: project.id,
            }
        }
    };
    let expires_at = match expires_in_days {
        Some(days) if !(1..=36_500).contains(&days) => {
            return Err(AppError::bad_input(
                "expires-in-days",
                "must be between 1 and 36500",
            ));
        }
        Some(days) => Some(Timestamp::from(
            chrono::Utc::now() + chrono::Duration::days(days),
        )),
        None => None,
    };
    mint(db, name, role, scope, expires_at).await
}

/// `model-registry keys list`: every key of the instance.
pub async fn list_all(db: &Db) -> Result<Vec<ApiKey>, AppError> {
    api_keys::list(db, KeySet::All).await
}

/// `model-registry keys revoke`: by id or visible prefix; the shell may revoke any key, the
/// last instance-admin key included (it is the recovery path).
pub async fn revoke_from_shell(db: &Db, id_or_prefix: &str) -> Result<ApiKey, AppError> {
    let all = api_keys::list(db, KeySet::All).await?;
    let matches: Vec<&ApiKey> = all
        .iter()
        .filter(|k| k.id.to_string() == id_or_prefix || k.prefix == id_or_prefix)
        .collect();
    let key = match matches.as_slice() {
        [one] => one.id,
        [] => return Err(AppError::NotFound("API key")),
        _ => {
            return Err(AppError::bad_input(
                "key",
                format!("`{id_or_prefix}` matches several keys: give the id"),
            ));
        }
    };
    let revocation = db
        .transaction(async |tx| api_keys::revoke(tx, key, Timestamp::now(), false).await)
        .await?;
    match revocation {
        Revocation::Revoked(key) => Ok(key),
        Revocation::LastInstanceAdmin => Err(AppError::internal("refused a shell revocation")),
    }
}
