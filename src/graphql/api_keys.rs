use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::ContextExt;
use super::organizations::{OrganizationView, ProjectView};
use super::pagination::{self, Conn};
use crate::db::api_keys::ApiKey;
use crate::db::page::Cursor;
use crate::domain::api_keys::{self, NewApiKey};
use crate::graphql::loaders::{OrganizationKey, ProjectKey};
use crate::values::{Id, Role, Timestamp};

pub struct ApiKeyView(pub ApiKey);

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> Self {
        ApiKeyView(key)
    }
}

/// A stored key. The secret itself is never stored: only its SHA-256 and a visible prefix.
#[Object(name = "ApiKey")]
impl ApiKeyView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The first characters of the secret, enough to recognise a key in a list.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    async fn role(&self) -> Role {
        self.0.role
    }

    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }

    async fn expires_at(&self) -> Option<Timestamp> {
        self.0.expires_at
    }

    async fn revoked_at(&self) -> Option<Timestamp> {
        self.0.revoked_at
    }

    async fn last_used_at(&self) -> Option<Timestamp> {
        self.0.last_used_at
    }

    async fn scope(&self) -> ScopeKind {
        self.0.scope_kind().into()
    }

    /// The organization of an organization-scoped key.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<OrganizationView>> {
        match self.0.organization_id {
            Some(id) => Ok(ctx
                .loader()
                .load_one(OrganizationKey(id))
                .await?
                .map(OrganizationView)),
            None => Ok(None),
        }
    }

    /// The project of a project-scoped key.
    async fn project(&self, ctx: &Context<'_>) -> Result<Option<ProjectView>> {
        match self.0.project_id {
            Some(id) => Ok(ctx
                .loader()
                .load_one(ProjectKey(id))
                .await?
                .map(ProjectView)),
            None => Ok(None),
        }
    }
}

// Where a key acts, as the API names it (`auth::ScopeKind` knows nothing of GraphQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
#[graphql(remote = "crate::auth::ScopeKind")]
pub enum ScopeKind {
    Instance,
    Organization,
    Project,
}

/// `viewer`: the calling key as the API shows it.
#[derive(SimpleObject)]
pub struct Viewer {
    pub key: ApiKeyView,
    pub role: Role,
    pub scope: ScopeKind,
    pub is_instance_admin: bool,
}

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// The key this request is made with.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let caller = ctx.caller()?;
        Ok(Viewer {
            key: ApiKeyView(caller.key.clone()),
            role: caller.role(),
            scope: caller.key.scope_kind().into(),
            is_instance_admin: caller.is_instance_admin(),
        })
    }

    /// Keys this key administers (an ADMIN's scope); other roles see only themselves.
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<ApiKeyView>> {
        let page = pagination::request(first, after, last, before)?;
        let keys = api_keys::list(ctx.db(), ctx.caller()?).await?;
        Ok(pagination::slice(keys, &page, |k| Cursor {
            key: k.id.to_string(),
            id: k.id,
        }))
    }
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    api_key: ApiKeyView,
    /// The secret, shown this once: only its hash is stored.
    secret: String,
}

#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    id: Id,
}

#[derive(SimpleObject)]
pub struct RevokeApiKeyPayload {
    api_key: ApiKeyView,
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// An ADMIN mints keys inside its own scope.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreateApiKeyPayload> {
        let created = api_keys::create(ctx.db(), ctx.caller()?, input.into()).await?;
        Ok(CreateApiKeyPayload {
            api_key: ApiKeyView(created.api_key),
            secret: created.secret,
        })
    }

    /// Takes effect on the next request; revoking twice keeps the first time.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> Result<RevokeApiKeyPayload> {
        let api_key = api_keys::revoke(ctx.db(), ctx.caller()?, input.id).await?;
        Ok(RevokeApiKeyPayload {
            api_key: ApiKeyView(api_key),
        })
    }
}

#[derive(Debug, InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    pub role: Role,
    /// Scope the key to this organization (and all its projects).
    pub organization_id: Option<Id>,
    /// Scope the key to this project. With neither, the key is instance-wide.
    pub project_id: Option<Id>,
    /// When the key stops working; absent: never.
    pub expires_at: Option<Timestamp>,
}

impl From<CreateApiKeyInput> for NewApiKey {
    fn from(input: CreateApiKeyInput) -> Self {
        NewApiKey {
            name: input.name,
            role: input.role,
            organization_id: input.organization_id,
            project_id: input.project_id,
            expires_at: input.expires_at,
        }
    }
}
