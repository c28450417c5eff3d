//! API keys: bootstrap, minting inside a scope, hashing, revocation, expiry, last use.

use serde_json::json;

use model_registry::auth::keys;
use model_registry::db::api_keys;

const VIEWER: &str = "{ viewer { role scope isInstanceAdmin key { id prefix lastUsedAt organization { slug } project { slug } } } }";
const CREATE_KEY: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id prefix role scope expiresAt } } }";
const REVOKE_KEY: &str = "mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { apiKey { id revokedAt } } }";

backends! {
    async fn bootstrap_key_is_an_instance_admin(app) {
        let data = app.ok(&app.admin, VIEWER, json!({})).await;
        assert_eq!(data["viewer"]["role"], "ADMIN");
        assert_eq!(data["viewer"]["scope"], "INSTANCE");
        assert_eq!(data["viewer"]["isInstanceAdmin"], true);
        assert!(app.admin.starts_with(data["viewer"]["key"]["prefix"].as_str().unwrap()));
        // A second bootstrap of the same instance mints nothing.
        assert!(model_registry::domain::bootstrap::initialize(&app.app.db).await.unwrap().is_none());
    }

    async fn keys_are_stored_only_as_hashes(app) {
        let project = app.default_project().await;
        let data = app
            .ok(&app.admin, CREATE_KEY, json!({ "input": { "name": "ci", "role": "EDITOR", "projectId": project } }))
            .await;
        let secret = data["createApiKey"]["secret"].as_str().unwrap();
        let id = data["createApiKey"]["apiKey"]["id"].as_str().unwrap().parse().unwrap();
        let stored = api_keys::find(&app.app.db, id).await.unwrap().unwrap();
        assert_eq!(stored.secret_hash, keys::hash(secret));
        assert!(!stored.secret_hash.contains(&secret[3..]));
        assert_eq!(data["createApiKey"]["apiKey"]["scope"], "PROJECT");
        // The secret is not readable again: the key type has no such field.
        let listed = app.gql(&app.admin, "{ apiKeys { edges { node { secret } } } }", json!({})).await;
        assert_eq!(listed["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }

    async fn missing_unknown_revoked_and_expired_keys_are_unauthenticated(app) {
        app.fails("", VIEWER, json!({}), "UNAUTHENTICATED").await;
        app.fails("mr_0000000000000000000000000000000000000000000000000", VIEWER, json!({}), "UNAUTHENTICATED").await;
        app.fails("not-a-key", VIEWER, json!({}), "UNAUTHENTICATED").await;

        let project = app.default_project().await;
        let data = app
            .ok(&app.admin, CREATE_KEY, json!({ "input": { "name": "temp", "role": "VIEWER", "projectId": project } }))
            .await;
        let secret = data["createApiKey"]["secret"].as_str().unwrap().to_owned();
        let id = data["createApiKey"]["apiKey"]["id"].clone();
        app.ok(&secret, VIEWER, json!({})).await;
        let revoked = app.ok(&app.admin, REVOKE_KEY, json!({ "input": { "id": id } })).await;
        let first_revocation = revoked["revokeApiKey"]["apiKey"]["revokedAt"].clone();
        assert!(first_revocation.is_string());
        app.fails(&secret, VIEWER, json!({}), "UNAUTHENTICATED").await;
        // Revoking again keeps the first time.
        let again = app.ok(&app.admin, REVOKE_KEY, json!({ "input": { "id": id } })).await;
        assert_eq!(again["revokeApiKey"]["apiKey"]["revokedAt"], first_revocation);

        let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
        let data = app
            .ok(&app.admin, CREATE_KEY, json!({ "input": { "name": "short", "role": "VIEWER", "expiresAt": soon } }))
            .await;
        let expiring = data["createApiKey"]["secret"].as_str().unwrap().to_owned();
        app.ok(&expiring, VIEWER, json!({})).await;
        tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
        app.fails(&expiring, VIEWER, json!({}), "UNAUTHENTICATED").await;

        let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        let error = app
            .fails(&app.admin, CREATE_KEY, json!({ "input": { "name": "old", "role": "VIEWER", "expiresAt": past } }), "BAD_USER_INPUT")
            .await;
        assert_eq!(error["extensions"]["field"], "expiresAt");
    }

    async fn last_use_is_recorded(app) {
        let project = app.default_project().await;
        let data = app
            .ok(&app.admin, CREATE_KEY, json!({ "input": { "name": "fresh", "role": "VIEWER", "projectId": project } }))
            .await;
        let secret = data["createApiKey"]["secret"].as_str().unwrap().to_owned();
        let id = data["createApiKey"]["apiKey"]["id"].clone();
        let last_used = |data: serde_json::Value| {
            data["apiKeys"]["edges"].as_array().unwrap().iter()
                .find(|e| e["node"]["id"] == id)
                .map(|e| e["node"]["lastUsedAt"].clone())
                .unwrap()
        };
        let list = "{ apiKeys { edges { node { id lastUsedAt } } } }";
        assert!(last_used(app.ok(&app.admin, list, json!({})).await).is_null());
        app.ok(&secret, VIEWER, json!({})).await;
        assert!(last_used(app.ok(&app.admin, list, json!({})).await).is_string());
    }

    async fn keys_are_minted_only_inside_the_admins_scope(app) {
        let a = app.default_project().await;
        let b = app.create_project("other").await;
        let org = app.default_organization().await;
        let project_admin = app.project_key(&a, "ADMIN").await;
        let editor = app.project_key(&a, "EDITOR").await;

        app.ok(&project_admin, CREATE_KEY, json!({ "input": { "name": "x", "role": "VIEWER", "projectId": a } })).await;
        app.fails(&project_admin, CREATE_KEY, json!({ "input": { "name": "x", "role": "VIEWER", "projectId": b } }), "NOT_FOUND").await;
        app.fails(&project_admin, CREATE_KEY, json!({ "input": { "name": "x", "role": "VIEWER", "organizationId": org } }), "FORBIDDEN").await;
        app.fails(&project_admin, CREATE_KEY, json!({ "input": { "name": "x", "role": "ADMIN" } }), "FORBIDDEN").await;
        app.fails(&editor, CREATE_KEY, json!({ "input": { "name": "x", "role": "VIEWER", "projectId": a } }), "FORBIDDEN").await;
        let both = app
            .fails(&app.admin, CREATE_KEY, json!({ "input": { "name": "x", "role": "VIEWER", "projectId": a, "organizationId": org } }), "BAD_USER_INPUT")
            .await;
        assert_eq!(both["extensions"]["field"], "projectId");

        // An organization admin manages every project of its organization.
        let org_admin = app.key(json!({ "organizationId": org }), "ADMIN").await;
        app.ok(&org_admin, CREATE_KEY, json!({ "input": { "name": "x", "role": "EDITOR", "projectId": b } })).await;
        let listed = app.ok(&org_admin, "{ apiKeys { totalCount edges { node { scope } } } }", json!({})).await;
        let scopes: Vec<&str> = listed["apiKeys"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["scope"].as_str().unwrap()).collect();
        assert!(!scopes.contains(&"INSTANCE"), "an organization admin does not see instance keys: {scopes:?}");
        // A non-admin lists only itself.
        let own = app.ok(&editor, "{ apiKeys { totalCount } }", json!({})).await;
        assert_eq!(own["apiKeys"]["totalCount"], 1);
    }

    async fn organization_keys_see_every_project_and_project_keys_one(app) {
        let a = app.default_project().await;
        let b = app.create_project("second").await;
        let org = app.default_organization().await;
        let org_key = app.key(json!({ "organizationId": org }), "VIEWER").await;
        let project_key = app.project_key(&b, "VIEWER").await;
        let projects = "{ projects { totalCount edges { node { id } } } }";
        assert_eq!(app.ok(&org_key, projects, json!({})).await["projects"]["totalCount"], 2);
        let one = app.ok(&project_key, projects, json!({})).await;
        assert_eq!(one["projects"]["totalCount"], 1);
        assert_eq!(one["projects"]["edges"][0]["node"]["id"], b);
        app.fails(&project_key, "query($id: ID!) { project(id: $id) { id } }", json!({ "id": a }), "NOT_FOUND").await;
        let orgs = app.ok(&project_key, "{ organizations { totalCount edges { node { slug projects { totalCount } } } } }", json!({})).await;
        assert_eq!(orgs["organizations"]["totalCount"], 1);
        assert_eq!(orgs["organizations"]["edges"][0]["node"]["projects"]["totalCount"], 1);
    }

    async fn only_instance_admins_create_organizations(app) {
        let org = app.default_organization().await;
        let org_admin = app.key(json!({ "organizationId": org }), "ADMIN").await;
        let create = "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { slug name } } }";
        app.fails(&org_admin, create, json!({ "input": { "slug": "acme", "name": "Acme" } }), "FORBIDDEN").await;
        let data = app.ok(&app.admin, create, json!({ "input": { "slug": "acme", "name": "Acme" } })).await;
        assert_eq!(data["createOrganization"]["organization"]["slug"], "acme");
        app.fails(&app.admin, create, json!({ "input": { "slug": "acme", "name": "Again" } }), "CONFLICT").await;
        let bad = app.fails(&app.admin, create, json!({ "input": { "slug": "Not A Slug", "name": "x" } }), "BAD_USER_INPUT").await;
        assert_eq!(bad["extensions"]["field"], "slug");
        // The new organization is invisible to the default organization's admin.
        app.fails(&org_admin, r#"{ organization(slug: "acme") { id } }"#, json!({}), "NOT_FOUND").await;
    }
}
