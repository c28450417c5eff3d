//! Who is calling, and the one check every read and write goes through.
//!
//! A key is scoped to the instance, an organization or a project, and carries a role. An object
//! outside the key's scope is reported as NOT_FOUND (existence does not leak); an object inside
//! the scope that needs a higher role is FORBIDDEN.

pub mod keys;

use crate::db::Db;
use crate::db::api_keys::{self, ApiKey};
use crate::db::projects::{self, ProjectSet};
use crate::error::AppError;
use crate::values::Role;
use crate::values::{Id, Timestamp};

/// What a key covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Instance,
    Organization(Id),
    Project { organization: Id, project: Id },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    Instance,
    Organization,
    Project,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Revoked,
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Revoked => "revoked",
            KeyState::Expired => "expired",
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key: ApiKey,
    pub scope: Scope,
}

/// The project an object lives in: enough to decide access.
#[derive(Debug, Clone, Copy)]
pub struct ProjectRef {
    pub organization: Id,
    pub project: Id,
}

impl From<&crate::db::projects::Project> for ProjectRef {
    fn from(p: &crate::db::projects::Project) -> Self {
        ProjectRef {
            organization: p.organization_id,
            project: p.id,
        }
    }
}

impl Principal {
    pub fn role(&self) -> Role {
        self.key.role
    }

    pub fn is_instance_admin(&self) -> bool {
        self.scope == Scope::Instance && self.key.role == Role::Admin
    }

    pub fn sees_organization(&self, org: Id) -> bool {
        match self.scope {
            Scope::Instance => true,
            Scope::Organization(o) => o == org,
            Scope::Project { organization, .. } => organization == org,
        }
    }

    pub fn sees_project(&self, target: ProjectRef) -> bool {
        match self.scope {
            Scope::Instance => true,
            Scope::Organization(o) => o == target.organization,
            Scope::Project { project, .. } => project == target.project,
        }
    }

    /// The projects this key can list.
    pub fn visible_projects(&self) -> ProjectSet {
        match self.scope {
            Scope::Instance => ProjectSet::All,
            Scope::Organization(o) => ProjectSet::Organization(o),
            Scope::Project { project, .. } => ProjectSet::One(project),
        }
    }

    /// The check: `what` names the object in the NOT_FOUND message.
    pub fn require(
        &self,
        target: ProjectRef,
        role: Role,
        what: &'static str,
    ) -> Result<(), AppError> {
        if !self.sees_project(target) {
            return Err(AppError::NotFound(what));
        }
        self.require_role(role)
    }

    /// Everything but sending telemetry needs a key that reads: an INGEST key (a device's) is
    /// refused every other field and route, whatever object it names.
    pub fn require_reader(&self) -> Result<(), AppError> {
        if self.key.role == Role::Ingest {
            return Err(AppError::forbidden(
                "an INGEST key only sends telemetry; reading and changing anything else needs a VIEWER, EDITOR or ADMIN key",
            ));
        }
        Ok(())
    }

    pub fn require_role(&self, role: Role) -> Result<(), AppError> {
        if self.key.role < role {
            return Err(AppError::forbidden(format!(
                "this key's role is {}; {} is needed",
                self.key.role, role
            )));
        }
        Ok(())
    }

    /// Organization-wide administration (projects, quotas): an ADMIN of the organization or
    /// of the instance. A project ADMIN cannot raise its own project's quotas.
    pub fn require_organization_admin(&self, org: Id) -> Result<(), AppError> {
        if !self.sees_organization(org) {
            return Err(AppError::NotFound("organization"));
        }
        if matches!(self.scope, Scope::Project { .. }) {
            return Err(AppError::forbidden(
                "a project key cannot administer its organization",
            ));
        }
        self.require_role(Role::Admin)
    }

    pub fn require_instance_admin(&self) -> Result<(), AppError> {
        if self.is_instance_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "only an instance-admin key can do this",
            ))
        }
    }

    /// Whether this key may mint or revoke keys of `target` scope: an ADMIN whose own scope
    /// contains it. Outside the caller's scope the target is NOT_FOUND.
    pub fn require_key_admin(&self, target: Scope) -> Result<(), AppError> {
        let contains = match (self.scope, target) {
            (Scope::Instance, _) => true,
            (Scope::Organization(o), Scope::Organization(t)) => o == t,
            (Scope::Organization(o), Scope::Project { organization, .. }) => o == organization,
            (Scope::Project { project, .. }, Scope::Project { project: t, .. }) => project == t,
            _ => false,
        };
        if !contains {
            return Err(match target {
                Scope::Organization(o) if !self.sees_organization(o) => {
                    AppError::NotFound("organization")
                }
                Scope::Project {
                    organization,
                    project,
                } if !self.sees_project(ProjectRef {
                    organization,
                    project,
                }) =>
                {
                    AppError::NotFound("project")
                }
                _ => AppError::forbidden("an ADMIN key manages only keys inside its own scope"),
            });
        }
        self.require_role(Role::Admin)
    }
}

impl ApiKey {
    /// Where the key stands at `now`: the one rule for keys and the URLs they signed.
    pub fn state(&self, now: Timestamp) -> KeyState {
        if self.revoked_at.is_some() {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }

    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.state(now) == KeyState::Active
    }

    pub fn scope_kind(&self) -> ScopeKind {
        match (self.organization_id, self.project_id) {
            (_, Some(_)) => ScopeKind::Project,
            (Some(_), None) => ScopeKind::Organization,
            (None, None) => ScopeKind::Instance,
        }
    }
}

/// Resolves a key's scope; a project key also names its project's organization. `None`
/// when the key's project no longer exists.
pub async fn scope_of(db: &Db, key: &ApiKey) -> Result<Option<Scope>, AppError> {
    Ok(match (key.organization_id, key.project_id) {
        (_, Some(project)) => projects::find(db, project).await?.map(|p| Scope::Project {
            organization: p.organization_id,
            project,
        }),
        (Some(org), None) => Some(Scope::Organization(org)),
        (None, None) => Some(Scope::Instance),
    })
}

/// How stale `last_used_at` may get: writing it on every request would turn every read into
/// a write (and serialise reads behind SQLite's single writer).
const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// `Authorization: Bearer …` → the caller. Unknown, revoked and expired keys are all
/// UNAUTHENTICATED, with one message, so a probe learns nothing about which it hit.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Principal, AppError> {
    if !keys::looks_like_key(secret) {
        return Err(AppError::Unauthenticated);
    }
    let key = api_keys::find_by_hash(db, &keys::hash(secret))
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let now = Timestamp::now();
    let principal = principal_of(db, key, now)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let stale = principal
        .key
        .last_used_at
        .is_none_or(|t| (now.0 - t.0).num_seconds() >= LAST_USED_RESOLUTION_SECS);
    if stale {
        let id = principal.key.id;
        db.transaction(async |tx| api_keys::touch(tx, id, now).await)
            .await?;
    }
    Ok(principal)
}

/// The caller behind a signed URL: the key that minted it, while that key is usable. A revoked
/// or expired key, or one whose project is gone, takes its URLs with it.
pub async fn signer_of_url(db: &Db, key_id: Id) -> Result<Option<Principal>, AppError> {
    match api_keys::find(db, key_id).await? {
        Some(key) => principal_of(db, key, Timestamp::now()).await,
        None => Ok(None),
    }
}

/// The key as a caller, when it is usable at `now` and its scope still exists: the one check
/// behind both a presented secret and a signed URL.
async fn principal_of(db: &Db, key: ApiKey, now: Timestamp) -> Result<Option<Principal>, AppError> {
    if !key.is_usable(now) {
        return Ok(None);
    }
    Ok(scope_of(db, &key)
        .await?
        .map(|scope| Principal { key, scope }))
}
