//! Every root query and mutation, walked with a key of another tenant (NOT_FOUND: existence
//! does not leak) and with a VIEWER where an EDITOR is needed (FORBIDDEN).

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// One root field, how to call it on the default project's objects, and what each key gets.
struct Case {
    field: &'static str,
    query: &'static str,
    outsider: Option<&'static str>,
    viewer: Option<&'static str>,
}

const fn case(
    field: &'static str,
    query: &'static str,
    outsider: Option<&'static str>,
    viewer: Option<&'static str>,
) -> Case {
    Case {
        field,
        query,
        outsider,
        viewer,
    }
}

const NOT_FOUND: Option<&str> = Some("NOT_FOUND");
const FORBIDDEN: Option<&str> = Some("FORBIDDEN");
const OK: Option<&str> = None;

const CASES: &[Case] = &[
    case("viewer", "{ viewer { role } }", OK, OK),
    case("apiKeys", "{ apiKeys { totalCount } }", OK, OK),
    case("organizations", "{ organizations { totalCount } }", OK, OK),
    case(
        "organization",
        r#"{ organization(slug: "default") { id } }"#,
        NOT_FOUND,
        OK,
    ),
    case("projects", "{ projects { totalCount } }", OK, OK),
    case(
        "project",
        "query($project: ID!) { project(id: $project) { id } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "models",
        "query($project: ID!) { models(filter: { projectId: $project }) { totalCount } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "model",
        "query($model: ID!) { model(id: $model) { id } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "modelByName",
        r#"{ modelByName(project: "default", name: "Secret") { id } }"#,
        NOT_FOUND,
        OK,
    ),
    case(
        "modelFilterValues",
        "query($project: ID!) { modelFilterValues(projectId: $project) { frameworks } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "modelVersion",
        "query($version: ID!) { modelVersion(id: $version) { id } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "node",
        "query($model: ID!) { node(id: $model) { id } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "createOrganization",
        r#"mutation { createOrganization(input: { slug: "x", name: "x" }) { organization { id } } }"#,
        FORBIDDEN,
        FORBIDDEN,
    ),
    case(
        "createProject",
        r#"mutation($org: ID!) { createProject(input: { organizationId: $org, slug: "x", name: "x" }) { project { id } } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "updateProjectQuotas",
        "mutation($project: ID!) { updateProjectQuotas(input: { projectId: $project, maxModels: 1 }) { project { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "createApiKey",
        r#"mutation($project: ID!) { createApiKey(input: { name: "x", role: ADMIN, projectId: $project }) { secret } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "revokeApiKey",
        "mutation($key: ID!) { revokeApiKey(input: { id: $key }) { apiKey { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "createModel",
        r#"mutation($project: ID!) { createModel(input: { projectId: $project, name: "New" }) { model { id } } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "updateModel",
        r#"mutation($model: ID!) { updateModel(input: { id: $model, name: "Renamed" }) { model { id } } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "deleteModel",
        "mutation($model: ID!) { deleteModel(input: { id: $model }) { model { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "createModelVersion",
        r#"mutation($model: ID!) { createModelVersion(input: { modelId: $model, version: "v9" }) { modelVersion { id } } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "updateModelVersion",
        r#"mutation($version: ID!) { updateModelVersion(input: { id: $version, description: "x" }) { modelVersion { id } } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "deleteModelVersion",
        "mutation($version: ID!) { deleteModelVersion(input: { id: $version }) { deletedModelVersionId } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "publishModelVersion",
        "mutation($version: ID!) { publishModelVersion(input: { id: $version }) { modelVersion { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "deprecateModelVersion",
        "mutation($version: ID!) { deprecateModelVersion(input: { id: $version }) { modelVersion { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "artifact",
        "query($artifact: ID!) { artifact(id: $artifact) { id } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "uploadSession",
        "query($session: ID!) { uploadSession(id: $session) { id } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "uploadSessions",
        "query($model: ID!) { uploadSessions(filter: { modelId: $model }) { totalCount } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "createUploadSession",
        r#"mutation($model: ID!) { createUploadSession(input: { modelId: $model, fileName: "x", totalSizeBytes: 1 }) { uploadSession { id } } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "completeUploadSession",
        "mutation($session: ID!) { completeUploadSession(input: { id: $session }) { artifact { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "abortUploadSession",
        "mutation($session: ID!) { abortUploadSession(input: { id: $session }) { uploadSession { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "createDirectUpload",
        r#"mutation($model: ID!) { createDirectUpload(input: { modelId: $model, fileName: "x", totalSizeBytes: 1 }) { uploadUrl } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "confirmDirectUpload",
        "mutation($session: ID!) { confirmDirectUpload(input: { id: $session }) { artifact { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "updateArtifact",
        "mutation($artifact: ID!) { updateArtifact(input: { id: $artifact, isCurrent: true }) { artifact { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "deleteArtifact",
        "mutation($artifact: ID!) { deleteArtifact(input: { id: $artifact }) { artifact { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "createArtifactPackage",
        r#"mutation($version: ID!, $artifact: ID!) { createArtifactPackage(input: { versionId: $version, format: "x", primary: { artifactId: $artifact, role: "weights" } }) { package { id } } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "setCurrentModelVersion",
        "mutation($version: ID!) { setCurrentModelVersion(input: { id: $version }) { model { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case("serviceTiers", "{ serviceTiers { slug } }", OK, OK),
    case("catalog", "{ catalog { totalCount } }", OK, OK),
    case(
        "catalogModel",
        "query($model: ID!) { catalogModel(id: $model) { modelId } }",
        NOT_FOUND,
        NOT_FOUND,
    ),
    case(
        "resolveModel",
        r#"{ resolveModel(name: "default/secret") { modelId } }"#,
        NOT_FOUND,
        NOT_FOUND,
    ),
    case(
        "endpoint",
        "query($endpoint: ID!) { endpoint(id: $endpoint) { id } }",
        NOT_FOUND,
        OK,
    ),
    case("endpoints", "{ endpoints { totalCount } }", OK, OK),
    case(
        "createEndpoint",
        r#"mutation($project: ID!, $model: ID!) { createEndpoint(input: { projectId: $project, modelId: $model, tier: "self_hosted", name: "x" }) { endpoint { id } } }"#,
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "stopEndpoint",
        "mutation($endpoint: ID!) { stopEndpoint(input: { id: $endpoint }) { endpoint { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "startEndpoint",
        "mutation($endpoint: ID!) { startEndpoint(input: { id: $endpoint }) { endpoint { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "deleteEndpoint",
        "mutation($endpoint: ID!) { deleteEndpoint(input: { id: $endpoint }) { endpoint { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "shareModel",
        "mutation($model: ID!) { shareModel(input: { id: $model }) { model { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "unshareModel",
        "mutation($model: ID!) { unshareModel(input: { id: $model }) { model { id } } }",
        NOT_FOUND,
        FORBIDDEN,
    ),
    case(
        "setModelFeatured",
        "mutation($model: ID!) { setModelFeatured(input: { id: $model, featured: true }) { model { id } } }",
        FORBIDDEN,
        FORBIDDEN,
    ),
    case(
        "devices",
        "query($project: ID!) { devices(filter: { projectId: $project }) { totalCount } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "device",
        "query($device: ID!) { device(id: $device) { id } }",
        NOT_FOUND,
        OK,
    ),
    case(
        "fleetHealth",
        "query($project: ID!) { fleetHealth(projectId: $project) { total } }",
        NOT_FOUND,
        OK,
    ),
    // Telemetry is refused per event: the outsider's events name a model (or project) it
    // cannot see. Any key of the project may send.
    case(
        "recordHeartbeats",
        r#"mutation($project: ID!) { recordHeartbeats(input: { heartbeats: [{ project: $project, deviceId: "walk" }] }) { receipt { accepted rejected { code } } } }"#,
        NOT_FOUND,
        OK,
    ),
    case(
        "recordInferenceSessions",
        r#"mutation($model: ID!, $now: DateTime!) { recordInferenceSessions(input: { sessions: [{ id: "0190a0b0-0000-7000-8000-00000000000a", model: $model, version: "v1", deviceId: "walk", startedAt: $now, latencyMs: 1, success: true }] }) { receipt { accepted rejected { code } } } }"#,
        NOT_FOUND,
        OK,
    ),
    case(
        "recordTrainingUpdates",
        r#"mutation($model: ID!, $now: DateTime!) { recordTrainingUpdates(input: { updates: [{ id: "0190a0b0-0000-7000-8000-00000000000b", model: $model, version: "v1", deviceId: "walk", sampleCount: 1, metrics: [], recordedAt: $now }] }) { receipt { accepted rejected { code } } } }"#,
        NOT_FOUND,
        OK,
    ),
];

/// The id of project `theirs` in a new organization `acme`: where an outsider's key lives.
async fn other_organizations_project(app: &crate::support::TestApp) -> String {
    let acme = app
        .ok(&app.admin, r#"mutation { createOrganization(input: { slug: "acme", name: "Acme" }) { organization { id } } }"#, json!({}))
        .await["createOrganization"]["organization"]["id"]
        .clone();
    app.ok(&app.admin, r#"mutation($o: ID!) { createProject(input: { organizationId: $o, slug: "theirs", name: "Theirs" }) { project { id } } }"#, json!({ "o": acme }))
        .await["createProject"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The code a response carries: its first error's, or for a telemetry batch its first
/// rejected event's.
fn refusal(response: &Value, field: &str) -> Option<Value> {
    if let Some(code) = response["errors"][0]["extensions"].get("code") {
        return Some(code.clone());
    }
    response["data"][field]["receipt"]["rejected"][0]
        .get("code")
        .cloned()
}

backends! {
    async fn every_operation_is_checked_against_the_callers_key(app) {
        let project = app.default_project().await;
        let org = app.default_organization().await;
        let model = app.create_model(&app.admin, &project, "Secret", json!({ "framework": "torch" })).await;
        let version = app.create_version(&app.admin, &model, "v1").await;
        let target_key = app
            .ok(&app.admin, r#"mutation($p: ID!) { createApiKey(input: { name: "target", role: EDITOR, projectId: $p }) { apiKey { id } } }"#, json!({ "p": project }))
            .await["createApiKey"]["apiKey"]["id"]
            .clone();

        // The outsider is an EDITOR of a project in another organization.
        let theirs = other_organizations_project(&app).await;
        let outsider = app.project_key(&theirs, "EDITOR").await;
        let viewer = app.project_key(&project, "VIEWER").await;
        let ingest = app.project_key(&project, "INGEST").await;

        let artifact = app.upload(&app.admin, &model, Some(&version), "w.bin", b"weights").await["id"].clone();
        let session = app.open_upload(&app.admin, json!({ "modelId": model, "fileName": "x.bin", "totalSizeBytes": 3 })).await["id"].clone();
        let published = app.create_version(&app.admin, &model, "v2").await;
        app.upload(&app.admin, &model, Some(&published), "p.bin", b"published").await;
        app.ok(&app.admin, "mutation($v: ID!) { publishModelVersion(input: { id: $v }) { modelVersion { id } } }", json!({ "v": published })).await;
        let endpoint = app
            .ok(&app.admin, r#"mutation($p: ID!, $m: ID!) { createEndpoint(input: { projectId: $p, modelId: $m, tier: "self_hosted", name: "e1" }) { endpoint { id } } }"#, json!({ "p": project, "m": model }))
            .await["createEndpoint"]["endpoint"]["id"]
            .clone();
        let device = {
            let beat = app
                .ok(&app.admin, r#"mutation($p: ID!) { recordHeartbeats(input: { heartbeats: [{ project: $p, deviceId: "secret-device" }] }) { receipt { accepted } } }"#, json!({ "p": project }))
                .await;
            assert_eq!(beat["recordHeartbeats"]["receipt"]["accepted"], 1);
            app.ok(&app.admin, "{ devices { edges { node { id } } } }", json!({})).await["devices"]["edges"][0]["node"]["id"].clone()
        };
        let now = chrono::Utc::now().to_rfc3339();
        let vars = json!({ "project": project, "org": org, "model": model, "version": version, "key": target_key, "artifact": artifact, "session": session, "endpoint": endpoint, "device": device, "now": now });
        for case in CASES {
            // A device's key sends telemetry and is refused every other field.
            let ingest_gets = if case.field.starts_with("record") { OK } else { FORBIDDEN };
            for (who, key, expected) in [("outsider", &outsider, case.outsider), ("viewer", &viewer, case.viewer), ("ingest", &ingest, ingest_gets)] {
                let response = app.gql(key, case.query, vars.clone()).await;
                match expected {
                    Some(code) => assert_eq!(
                        refusal(&response, case.field), Some(json!(code)),
                        "{} as {who}: {response:#}", case.field
                    ),
                    None => assert_eq!(refusal(&response, case.field), None, "{} as {who}: {response:#}", case.field),
                }
            }
        }

        // The refused telemetry stored nothing; the viewer's events count once each.
        let sent = app
            .ok(&app.admin, "query($model: ID!, $project: ID!, $from: DateTime!, $to: DateTime!) { model(id: $model) { telemetry(window: { from: $from, to: $to }) { totals { sessionCount } } trainingStats { updateCount } } fleetHealth(projectId: $project) { total } }", json!({ "model": model, "project": project, "from": "2026-01-01T00:00:00Z", "to": chrono::Utc::now().to_rfc3339() }))
            .await;
        assert_eq!(sent["model"]["telemetry"]["totals"]["sessionCount"], 1, "the viewer's event, once (the device key's was its retry)");
        assert_eq!(sent["model"]["trainingStats"][0]["updateCount"], 1);
        assert_eq!(sent["fleetHealth"]["total"], 2);

        // Lists answer only what the key sees.
        let lists = app.ok(&outsider, "{ models { totalCount } projects { edges { node { id } } } organizations { edges { node { slug } } } }", json!({})).await;
        assert_eq!(lists["models"]["totalCount"], 0);
        assert_eq!(lists["projects"]["edges"], json!([{ "node": { "id": theirs } }]));
        assert_eq!(lists["organizations"]["edges"], json!([{ "node": { "slug": "acme" } }]));

        // Nothing the refused calls attempted happened.
        let after = app
            .ok(&app.admin, "query($model: ID!, $version: ID!) { model(id: $model) { name versionCount } modelVersion(id: $version) { description } }", vars.clone())
            .await;
        assert_eq!(after["model"], json!({ "name": "Secret", "versionCount": 2 }));
        let deployed = app
            .ok(&app.admin, "query($model: ID!, $endpoint: ID!) { model(id: $model) { shared featured status } endpoint(id: $endpoint) { status } }", vars.clone())
            .await;
        assert_eq!(deployed["model"], json!({ "shared": false, "featured": false, "status": "ACTIVE" }));
        assert_eq!(deployed["endpoint"]["status"], "ACTIVE");
        assert_eq!(after["modelVersion"]["description"], Value::Null);
        let untouched = app
            .ok(&app.admin, "query($artifact: ID!, $session: ID!) { artifact(id: $artifact) { status isCurrent package { id } } uploadSession(id: $session) { status } }", vars.clone())
            .await;
        assert_eq!(untouched["artifact"], json!({ "status": "AVAILABLE", "isCurrent": false, "package": null }));
        assert_eq!(untouched["uploadSession"]["status"], "INITIALIZED");
        let keys = app.ok(&app.admin, "{ apiKeys { edges { node { name revokedAt } } } organizations { totalCount } }", json!({})).await;
        assert!(keys["apiKeys"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["revokedAt"].is_null()));
        assert_eq!(keys["organizations"]["totalCount"], 2);
    }

    // Creates check the caller inside their transaction, after the input is read: a key that
    // may not create there learns nothing from its input's errors.
    async fn creates_refuse_the_caller_before_naming_a_bad_field(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "Secret", json!({})).await;
        let outsider = app.project_key(&other_organizations_project(&app).await, "EDITOR").await;
        let viewer = app.project_key(&project, "VIEWER").await;
        let bad_model = r#"mutation($p: ID!) { createModel(input: { projectId: $p, name: "  " }) { model { id } } }"#;
        let bad_version = r#"mutation($m: ID!) { createModelVersion(input: { modelId: $m, version: "not a label!" }) { modelVersion { id } } }"#;
        let vars = json!({ "p": project, "m": model });
        for (key, code) in [(&outsider, "NOT_FOUND"), (&viewer, "FORBIDDEN")] {
            for (query, field) in [(bad_model, "createModel"), (bad_version, "createModelVersion")] {
                let response = app.gql(key, query, vars.clone()).await;
                assert_eq!(refusal(&response, field), Some(json!(code)), "{field}: {response:#}");
            }
        }
        // The admin is told which field is wrong.
        for (query, field, name) in [(bad_model, "createModel", "name"), (bad_version, "createModelVersion", "version")] {
            let response = app.gql(&app.admin, query, vars.clone()).await;
            assert_eq!(refusal(&response, field), Some(json!("BAD_USER_INPUT")), "{field}: {response:#}");
            assert_eq!(response["errors"][0]["extensions"]["field"], name, "{response:#}");
        }
    }

    async fn every_rest_route_is_checked_against_the_callers_key(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "Secret", json!({})).await;
        let version = app.create_version(&app.admin, &model, "v1").await;
        let artifact = app.upload(&app.admin, &model, Some(&version), "w.bin", b"weights").await["id"].as_str().unwrap().to_owned();
        let session = app.open_upload(&app.admin, json!({ "modelId": model, "fileName": "x.bin", "totalSizeBytes": 3 })).await["id"].as_str().unwrap().to_owned();
        let other = app.create_project("other").await;
        let outsider = app.project_key(&other, "EDITOR").await;
        let ingest = app.project_key(&project, "INGEST").await;

        // The byte routes: no key is 401, an INGEST key 403, another project's key 404.
        for (method, path) in [
            (reqwest::Method::PUT, format!("/v1/uploads/{session}/chunks/0")),
            (reqwest::Method::GET, format!("/v1/artifacts/{artifact}/download")),
        ] {
            for (who, key, status) in [("nobody", "", 401), ("ingest", ingest.as_str(), 403), ("outsider", outsider.as_str(), 404)] {
                let mut request = app.client.request(method.clone(), format!("{}{path}", app.base)).body("abc");
                if !key.is_empty() {
                    request = request.bearer_auth(key);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), status, "{method} {path} as {who}");
            }
        }

        // The telemetry routes: no key is 401; the project's INGEST key sends; another
        // project's key has each event refused as NOT_FOUND.
        let now = chrono::Utc::now().to_rfc3339();
        for (route, event) in [
            ("heartbeats", json!({ "project": project, "deviceId": "d" })),
            ("inference", json!({ "id": uuid::Uuid::now_v7(), "model": model, "version": "v1", "deviceId": "d", "startedAt": now, "latencyMs": 1, "success": true })),
            ("training-updates", json!({ "id": uuid::Uuid::now_v7(), "model": model, "version": "v1", "deviceId": "d", "sampleCount": 1, "metrics": {}, "recordedAt": now })),
        ] {
            let url = format!("{}/v1/telemetry/{route}", app.base);
            let response = app.client.post(&url).json(&json!([event])).send().await.unwrap();
            assert_eq!(response.status(), 401, "{route} without a key");
            let response = app.client.post(&url).bearer_auth(&outsider).json(&json!([event])).send().await.unwrap();
            let receipt: Value = response.json().await.unwrap();
            assert_eq!((receipt["accepted"].clone(), receipt["rejected"][0]["code"].clone()), (json!(0), json!("NOT_FOUND")), "{route} as outsider");
            let response = app.client.post(&url).bearer_auth(&ingest).json(&json!([event])).send().await.unwrap();
            let receipt: Value = response.json().await.unwrap();
            assert_eq!(receipt["accepted"], 1, "{route} as the project's INGEST key: {receipt}");
        }
    }

    async fn the_walk_covers_every_root_field(app) {
        let schema = app
            .ok(&app.admin, "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }", json!({}))
            .await;
        let mut fields = BTreeSet::new();
        for root in ["queryType", "mutationType"] {
            for field in schema["__schema"][root]["fields"].as_array().unwrap() {
                fields.insert(field["name"].as_str().unwrap().to_owned());
            }
        }
        let walked: BTreeSet<String> = CASES.iter().map(|c| c.field.to_owned()).collect();
        let missing: Vec<_> = fields.difference(&walked).collect();
        assert!(missing.is_empty(), "root fields the access walk does not cover: {missing:?}");
    }
}
