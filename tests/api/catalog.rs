//! Sharing, the catalog, endpoints and the public manifest: who may deploy what where, what
//! the endpoints decide (status, role, count), and that a private model shows nowhere public.

use serde_json::{Value, json};

use crate::support::{TestApp, sha256_hex};

const SHARE: &str = "mutation($id: ID!) { shareModel(input: { id: $id }) { model { id shared catalogRole sharedAt deploymentCount } message } }";
const UNSHARE: &str = "mutation($id: ID!) { unshareModel(input: { id: $id }) { model { id shared catalogRole featured deploymentCount } message } }";
const CREATE_ENDPOINT: &str = "mutation($i: CreateEndpointInput!) { createEndpoint(input: $i) { endpoint { id name status tier selfHosted modelVersion { version } } } }";
const STOP: &str =
    "mutation($id: ID!) { stopEndpoint(input: { id: $id }) { endpoint { id status } } }";
const START: &str =
    "mutation($id: ID!) { startEndpoint(input: { id: $id }) { endpoint { id status } } }";
const DELETE: &str =
    "mutation($id: ID!) { deleteEndpoint(input: { id: $id }) { endpoint { id } } }";
const STATE: &str =
    "query($id: ID!) { model(id: $id) { status shared catalogRole deploymentCount } }";

/// A model of `project` with a published version `v1` holding `weights.bin`; answers the model
/// id and the file's bytes.
async fn published_model(app: &TestApp, key: &str, project: &str, name: &str) -> (String, Vec<u8>) {
    let model = app
        .create_model(key, project, name, json!({ "framework": "torch" }))
        .await;
    let version = app.create_version(key, &model, "v1").await;
    let bytes = format!("weights of {name}").into_bytes();
    app.upload(key, &model, Some(&version), "weights.bin", &bytes)
        .await;
    app.ok(
        key,
        "mutation($v: ID!) { publishModelVersion(input: { id: $v }) { modelVersion { id } } }",
        json!({ "v": version }),
    )
    .await;
    (model, bytes)
}

async fn endpoint(
    app: &TestApp,
    key: &str,
    project: &str,
    model: &str,
    tier: &str,
    name: &str,
) -> Value {
    app.gql(
        key,
        CREATE_ENDPOINT,
        json!({ "i": { "projectId": project, "modelId": model, "tier": tier, "name": name } }),
    )
    .await
}

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

async fn state(app: &TestApp, model: &str) -> Value {
    app.ok(&app.admin, STATE, json!({ "id": model })).await["model"].clone()
}

backends! {
    async fn sharing_puts_a_model_in_the_catalog_and_unsharing_takes_it_out(app) {
        let owner_project = app.default_project().await;
        let owner = app.project_key(&owner_project, "EDITOR").await;
        let other_project = app.create_project("other").await;
        let other = app.project_key(&other_project, "VIEWER").await;

        // Only READY or ACTIVE models are shared; the refusal names the status.
        let pending = app.create_model(&owner, &owner_project, "Pending", json!({})).await;
        let refused = app.fails(&owner, SHARE, json!({ "id": pending }), "PRECONDITION_FAILED").await;
        assert!(refused["message"].as_str().unwrap().contains("PENDING"), "{refused}");

        let (model, bytes) = published_model(&app, &owner, &owner_project, "Llama Tiny").await;
        // A draft stays out of the catalog whatever happens.
        let draft = app.create_version(&owner, &model, "v2-draft").await;
        app.upload(&owner, &model, Some(&draft), "draft.bin", b"draft").await;
        let private = published_model(&app, &owner, &owner_project, "Private").await.0;

        // Another project does not know the model exists until it is shared.
        app.fails(&other, "query($id: ID!) { catalogModel(id: $id) { modelId } }", json!({ "id": model }), "NOT_FOUND").await;
        let viewer = app.project_key(&owner_project, "VIEWER").await;
        app.fails(&viewer, SHARE, json!({ "id": model }), "FORBIDDEN").await;
        app.fails(&other, SHARE, json!({ "id": model }), "NOT_FOUND").await;

        let shared = app.ok(&owner, SHARE, json!({ "id": model })).await["shareModel"].clone();
        assert_eq!(shared["message"], "Model shared to catalog");
        assert_eq!(shared["model"]["shared"], true);
        assert_eq!(shared["model"]["catalogRole"], "DEPLOYABLE");
        assert_eq!(shared["model"]["deploymentCount"], 0);
        let again = app.ok(&owner, SHARE, json!({ "id": model })).await["shareModel"].clone();
        assert_eq!(again["model"]["sharedAt"], shared["model"]["sharedAt"], "sharing twice changes nothing");

        // Every key sees it in the catalog, with published versions and file metadata only.
        let catalog = app
            .ok(&other, "{ catalog { totalCount edges { node { modelId key organization project name catalogRole featured deploymentCount framework versions { version artifacts { fileName sizeBytes sha256 } } latestVersion { version } } } } }", json!({}))
            .await["catalog"]
            .clone();
        assert_eq!(catalog["totalCount"], 1, "{catalog}");
        let entry = &catalog["edges"][0]["node"];
        assert_eq!(entry["modelId"], json!(model));
        assert_eq!(entry["key"], "default/llama-tiny");
        assert_eq!(entry["project"], "default");
        assert_eq!(entry["versions"], json!([{ "version": "v1", "artifacts": [{ "fileName": "weights.bin", "sizeBytes": bytes.len(), "sha256": sha256_hex(&bytes) }] }]));
        assert_eq!(entry["latestVersion"]["version"], "v1");
        // The catalog face has no way to the bytes or to the owner's private fields.
        let probe = app.gql(&other, "query($id: ID!) { catalogModel(id: $id) { downloadUrls } }", json!({ "id": model })).await;
        assert!(probe["errors"][0]["message"].as_str().unwrap().contains("downloadUrls"), "{probe}");
        app.fails(&other, "query($id: ID!) { model(id: $id) { id } }", json!({ "id": model }), "NOT_FOUND").await;
        let file_id = app
            .ok(&other, "query($id: ID!) { catalogModel(id: $id) { latestVersion { artifacts { artifactId } } } }", json!({ "id": model }))
            .await["catalogModel"]["latestVersion"]["artifacts"][0]["artifactId"]
            .as_str()
            .unwrap()
            .to_owned();
        app.fails(&other, "query($id: ID!) { artifact(id: $id) { id } }", json!({ "id": file_id }), "NOT_FOUND").await;
        let status = app.download(&other, &file_id, &[]).await.status();
        assert_eq!(status, 404, "the catalog shows a file's digest, not its bytes");
        // Filtering by a private field would reveal it.
        let private_filter = app.fails(&other, "{ catalog(filter: { model: { status: READY } }) { totalCount } }", json!({}), "BAD_USER_INPUT").await;
        assert_eq!(private_filter["extensions"]["field"], "filter.model.status");

        // Filters and orders.
        let filtered = app
            .ok(&other, r#"{ a: catalog(filter: { organization: "default", catalogRole: DEPLOYABLE, model: { framework: "torch" } }) { totalCount } b: catalog(filter: { featured: true }) { totalCount } c: catalog(filter: { organization: "nowhere" }) { totalCount } d: catalog(orderBy: { field: DEPLOYMENT_COUNT, direction: DESC }) { totalCount } }"#, json!({}))
            .await;
        assert_eq!(filtered, json!({ "a": { "totalCount": 1 }, "b": { "totalCount": 0 }, "c": { "totalCount": 0 }, "d": { "totalCount": 1 } }));

        // Featuring is the instance admin's call, on shared models only.
        app.fails(&owner, "mutation($id: ID!) { setModelFeatured(input: { id: $id, featured: true }) { model { featured } } }", json!({ "id": model }), "FORBIDDEN").await;
        app.fails(&app.admin, "mutation($id: ID!) { setModelFeatured(input: { id: $id, featured: true }) { model { featured } } }", json!({ "id": private }), "PRECONDITION_FAILED").await;
        let featured = app.ok(&app.admin, "mutation($id: ID!) { setModelFeatured(input: { id: $id, featured: true }) { model { featured } } }", json!({ "id": model })).await;
        assert_eq!(featured["setModelFeatured"]["model"]["featured"], true);

        // resolveModel and the manifest's entry route name it `<organization>/<model slug>`.
        let resolved = app.ok(&other, r#"{ resolveModel(name: "default/llama-tiny") { modelId featured } }"#, json!({})).await;
        assert_eq!(resolved["resolveModel"], json!({ "modelId": model, "featured": true }));
        app.fails(&other, r#"{ resolveModel(name: "default/private") { modelId } }"#, json!({}), "NOT_FOUND").await;
        app.fails(&other, r#"{ resolveModel(name: "no-slash") { modelId } }"#, json!({}), "BAD_USER_INPUT").await;

        // Unsharing removes the footprint and the model from everything public at once (the
        // manifest was served, so this replica holds a copy with it).
        let before: Value = app.get("/v1/manifest").await.json().await.unwrap();
        assert!(before.get("default/llama-tiny").is_some(), "{before}");
        let unshared = app.ok(&owner, UNSHARE, json!({ "id": model })).await["unshareModel"].clone();
        assert_eq!(unshared["message"], "Model removed from catalog");
        assert_eq!(unshared["model"], json!({ "id": model, "shared": false, "catalogRole": null, "featured": false, "deploymentCount": null }));
        let twice = app.ok(&owner, UNSHARE, json!({ "id": model })).await["unshareModel"].clone();
        assert_eq!(twice["model"]["shared"], false, "unsharing twice is a success");
        assert_eq!(app.ok(&other, "{ catalog { totalCount } }", json!({})).await["catalog"]["totalCount"], 0);
        app.fails(&other, r#"{ resolveModel(name: "default/llama-tiny") { modelId } }"#, json!({}), "NOT_FOUND").await;
        assert_eq!(app.get("/v1/manifest/default/llama-tiny").await.status(), 404);
        let manifest: Value = app.get("/v1/manifest").await.json().await.unwrap();
        assert_eq!(manifest, json!({}));

        // Two shared models of one organization cannot share a slug: the manifest keys by it.
        let clash_project = app.create_project("clash").await;
        let (twin, _) = published_model(&app, &app.admin, &clash_project, "Llama Tiny").await;
        app.ok(&owner, SHARE, json!({ "id": model })).await;
        app.fails(&app.admin, SHARE, json!({ "id": twin }), "CONFLICT").await;
        // A new slug moves the model's key; taking a shared twin's slug is refused.
        let rename = "mutation($id: ID!, $slug: String!) { updateModel(input: { id: $id, slug: $slug }) { model { slug } } }";
        app.ok(&owner, rename, json!({ "id": model, "slug": "llama-tiny-2" })).await;
        let moved: Value = app.get("/v1/manifest").await.json().await.unwrap();
        let keys: Vec<&String> = moved.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["default/llama-tiny-2"]);
        app.ok(&app.admin, SHARE, json!({ "id": twin })).await;
        app.fails(&owner, rename, json!({ "id": model, "slug": "llama-tiny" }), "CONFLICT").await;
    }

    async fn the_manifest_is_public_keyed_by_name_and_revalidates(app) {
        let project = app.default_project().await;
        let (model, bytes) = published_model(&app, &app.admin, &project, "Detector").await;
        published_model(&app, &app.admin, &project, "Hidden").await;
        app.ok(&app.admin, SHARE, json!({ "id": model })).await;

        let response = app.get("/v1/manifest").await;
        assert_eq!(response.status(), 200);
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() == 66, "a strong ETag over the content: {etag}");
        assert!(response.headers()["cache-control"].to_str().unwrap().contains("no-cache"));
        let manifest: Value = response.json().await.unwrap();
        let keys: Vec<&String> = manifest.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["default/detector"], "only shared models appear");
        let entry = &manifest["default/detector"];
        assert_eq!(entry["name"], "Detector");
        assert_eq!(entry["catalogRole"], "DEPLOYABLE");
        assert_eq!(entry["latestVersion"]["version"], "v1");
        assert_eq!(entry["latestVersion"]["artifacts"], json!([{ "id": entry["latestVersion"]["artifacts"][0]["id"], "fileName": "weights.bin", "kind": "MODEL_BINARY", "format": "bin", "contentType": "application/octet-stream", "sizeBytes": bytes.len(), "sha256": sha256_hex(&bytes) }]));
        assert!(entry.get("servingUrl").is_none() && entry.get("environment").is_none(), "public fields only: {entry}");

        // Compressed once per change for clients that take gzip, with its own validator.
        let gzipped = app.client.get(format!("{}/v1/manifest", app.base)).header("Accept-Encoding", "br, gzip").send().await.unwrap();
        assert_eq!(gzipped.status(), 200);
        assert_eq!(gzipped.headers()["content-encoding"], "gzip");
        assert!(gzipped.headers()["vary"].to_str().unwrap().contains("Accept-Encoding"));
        let gzip_etag = gzipped.headers()["etag"].to_str().unwrap().to_owned();
        assert_ne!(gzip_etag, etag, "one strong validator per representation");
        let packed = gzipped.bytes().await.unwrap();
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(packed.as_ref()), &mut unpacked).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&unpacked).unwrap(), manifest);
        let refused = app.client.get(format!("{}/v1/manifest", app.base)).header("Accept-Encoding", "gzip;q=0").send().await.unwrap();
        assert!(refused.headers().get("content-encoding").is_none());
        let fresh = app.client.get(format!("{}/v1/manifest", app.base)).header("Accept-Encoding", "gzip").header("If-None-Match", &gzip_etag).send().await.unwrap();
        assert_eq!(fresh.status(), 304);

        // Unchanged: 304 with no body.
        let revalidated = app.client.get(format!("{}/v1/manifest", app.base)).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(revalidated.status(), 304);
        assert_eq!(revalidated.headers()["etag"], etag.as_str());
        assert!(revalidated.bytes().await.unwrap().is_empty());

        // A new published version changes the document and its ETag.
        let v2 = app.create_version(&app.admin, &model, "v2").await;
        app.upload(&app.admin, &model, Some(&v2), "weights-v2.bin", b"second").await;
        app.ok(&app.admin, "mutation($v: ID!) { publishModelVersion(input: { id: $v }) { modelVersion { id } } }", json!({ "v": v2 })).await;
        let changed = app.client.get(format!("{}/v1/manifest", app.base)).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(changed.status(), 200);
        assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
        let manifest: Value = changed.json().await.unwrap();
        assert_eq!(manifest["default/detector"]["latestVersion"]["version"], "v2");

        // Deprecating it brings back the version before.
        app.ok(&app.admin, "mutation($v: ID!) { deprecateModelVersion(input: { id: $v }) { modelVersion { id } } }", json!({ "v": v2 })).await;
        let manifest: Value = app.get("/v1/manifest").await.json().await.unwrap();
        assert_eq!(manifest["default/detector"]["latestVersion"]["version"], "v1");

        // A changed description shows in the manifest.
        app.ok(&app.admin, r#"mutation($id: ID!) { updateModel(input: { id: $id, description: "finds things" }) { model { id } } }"#, json!({ "id": model })).await;
        let manifest: Value = app.get("/v1/manifest").await.json().await.unwrap();
        assert_eq!(manifest["default/detector"]["description"], "finds things");

        // Archived, it leaves the catalog and the manifest; restored, it is back.
        let archive = "mutation($id: ID!, $a: Boolean!) { updateModel(input: { id: $id, archived: $a }) { model { id } } }";
        app.ok(&app.admin, archive, json!({ "id": model, "a": true })).await;
        let hidden: Value = app.get("/v1/manifest").await.json().await.unwrap();
        assert_eq!(hidden, json!({}));
        assert_eq!(app.ok(&app.admin, "{ catalog { totalCount } }", json!({})).await["catalog"]["totalCount"], 0);
        app.ok(&app.admin, archive, json!({ "id": model, "a": false })).await;

        // One entry by name, the same shape, with its own validator.
        let one = app.get("/v1/manifest/default/detector").await;
        assert_eq!(one.status(), 200);
        let one_etag = one.headers()["etag"].to_str().unwrap().to_owned();
        let one: Value = one.json().await.unwrap();
        assert_eq!(one, manifest["default/detector"]);
        let again = app.client.get(format!("{}/v1/manifest/default/detector", app.base)).header("If-None-Match", &one_etag).send().await.unwrap();
        assert_eq!(again.status(), 304);
        assert_eq!(app.get("/v1/manifest/default/hidden").await.status(), 404);
        assert_eq!(app.get("/v1/manifest/nowhere/detector").await.status(), 404);
    }

    async fn endpoints_follow_the_catalog_rules(app) {
        let owner_project = app.default_project().await;
        let owner = app.project_key(&owner_project, "EDITOR").await;
        let ops_project = app.create_project("ops").await;
        let ops = app.project_key(&ops_project, "EDITOR").await;
        let (model, bytes) = published_model(&app, &owner, &owner_project, "Ranker").await;

        let tiers = app.ok(&ops, "{ serviceTiers { slug name selfHosted } }", json!({})).await;
        assert_eq!(tiers["serviceTiers"], json!([
            { "slug": "self_hosted", "name": "Self-hosted", "selfHosted": true },
            { "slug": "serverless", "name": "Serverless", "selfHosted": false },
            { "slug": "dedicated", "name": "Dedicated", "selfHosted": false },
        ]));
        let unknown = endpoint(&app, &owner, &owner_project, &model, "gpu-farm", "x").await;
        assert_eq!(code(&unknown), "BAD_USER_INPUT");
        assert_eq!(unknown["errors"][0]["extensions"]["field"], "tier");

        // Not shared: another project cannot even tell it exists.
        assert_eq!(code(&endpoint(&app, &ops, &ops_project, &model, "self_hosted", "r").await), "NOT_FOUND");

        // The owner deploys on any tier; the first endpoint makes the model ACTIVE.
        let own = endpoint(&app, &owner, &owner_project, &model, "self_hosted", "own").await;
        assert_eq!(own["data"]["createEndpoint"]["endpoint"]["modelVersion"]["version"], "v1", "{own}");
        let own = own["data"]["createEndpoint"]["endpoint"]["id"].as_str().unwrap().to_owned();
        assert_eq!(state(&app, &model).await, json!({ "status": "ACTIVE", "shared": false, "catalogRole": null, "deploymentCount": null }));
        assert_eq!(code(&endpoint(&app, &owner, &owner_project, &model, "self_hosted", "own").await), "CONFLICT", "names are unique per project");

        // Shared as DEPLOYABLE: other projects self-host only.
        app.ok(&owner, SHARE, json!({ "id": model })).await;
        let refused = endpoint(&app, &ops, &ops_project, &model, "serverless", "r").await;
        assert_eq!(code(&refused), "FORBIDDEN");
        assert!(refused["errors"][0]["message"].as_str().unwrap().contains("DEPLOYABLE"), "{refused}");
        let theirs = endpoint(&app, &ops, &ops_project, &model, "self_hosted", "theirs").await;
        let theirs = theirs["data"]["createEndpoint"]["endpoint"]["id"].as_str().unwrap_or_else(|| panic!("{theirs}")).to_owned();
        assert_eq!(state(&app, &model).await["deploymentCount"], 2);

        // The owner on a shared tier promotes it to SHARED; then other projects may use every tier.
        let hosted = endpoint(&app, &owner, &owner_project, &model, "serverless", "hosted").await;
        let hosted = hosted["data"]["createEndpoint"]["endpoint"]["id"].as_str().unwrap().to_owned();
        assert_eq!(state(&app, &model).await["catalogRole"], "SHARED");
        let theirs_hosted = endpoint(&app, &ops, &ops_project, &model, "dedicated", "theirs-hosted").await;
        let theirs_hosted = theirs_hosted["data"]["createEndpoint"]["endpoint"]["id"].as_str().unwrap_or_else(|| panic!("{theirs_hosted}")).to_owned();

        // The last active endpoint on a shared tier stopping demotes it.
        app.ok(&owner, STOP, json!({ "id": hosted })).await;
        assert_eq!(state(&app, &model).await["catalogRole"], "SHARED", "ops still runs one on a shared tier");
        app.ok(&ops, STOP, json!({ "id": theirs_hosted })).await;
        assert_eq!(state(&app, &model).await, json!({ "status": "ACTIVE", "shared": true, "catalogRole": "DEPLOYABLE", "deploymentCount": 2 }));
        // Restarting ops' shared-tier endpoint is a new deployment: refused while DEPLOYABLE.
        assert_eq!(code(&app.gql(&ops, START, json!({ "id": theirs_hosted })).await), "FORBIDDEN");

        // Who sees which endpoints: the owner all of its model's, ops only its own.
        let owner_view = app.ok(&owner, "query($id: ID!) { model(id: $id) { endpoints { totalCount } } }", json!({ "id": model })).await;
        assert_eq!(owner_view["model"]["endpoints"]["totalCount"], 4);
        let ops_view = app.ok(&ops, "query($id: ID!) { catalogModel(id: $id) { endpoints { edges { node { name } } } } endpoints { totalCount } }", json!({ "id": model })).await;
        let names: Vec<&str> = ops_view["catalogModel"]["endpoints"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["theirs-hosted", "theirs"]);
        assert_eq!(ops_view["endpoints"]["totalCount"], 2);
        // The owner cannot change another project's endpoint.
        assert_eq!(code(&app.gql(&owner, STOP, json!({ "id": theirs })).await), "FORBIDDEN");

        // Ops fetches the deployed files through its endpoint, not through the model.
        let urls = app.ok(&ops, "query($id: ID!) { endpoint(id: $id) { model { id } catalogModel { key } downloadUrls(expiresInSeconds: 600) { fileName sha256 url } } }", json!({ "id": theirs })).await;
        assert_eq!(urls["endpoint"]["model"], Value::Null, "the model itself stays private");
        assert_eq!(urls["endpoint"]["catalogModel"]["key"], "default/ranker");
        let file = &urls["endpoint"]["downloadUrls"][0];
        assert_eq!(file["fileName"], "weights.bin");
        let fetched = app.client.get(file["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(fetched.status(), 200);
        assert_eq!(fetched.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // Disabled: no new endpoints, running ones keep running.
        app.ok(&owner, "mutation($id: ID!) { updateModel(input: { id: $id, enabled: false }) { model { id } } }", json!({ "id": model })).await;
        assert_eq!(code(&endpoint(&app, &ops, &ops_project, &model, "self_hosted", "late").await), "PRECONDITION_FAILED");
        assert_eq!(code(&endpoint(&app, &owner, &owner_project, &model, "self_hosted", "late").await), "PRECONDITION_FAILED");
        app.ok(&owner, "mutation($id: ID!) { updateModel(input: { id: $id, enabled: true }) { model { id } } }", json!({ "id": model })).await;

        // Unshared: ops' endpoint keeps running, but nothing new from ops.
        app.ok(&owner, UNSHARE, json!({ "id": model })).await;
        let running = app.ok(&ops, "query($id: ID!) { endpoint(id: $id) { status downloadUrls { url } } }", json!({ "id": theirs })).await;
        assert_eq!(running["endpoint"]["status"], "ACTIVE");
        let still = app.client.get(running["endpoint"]["downloadUrls"][0]["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(still.status(), 200, "a running endpoint keeps its files");
        // While endpoints serve it, the model cannot be deleted.
        app.fails(&owner, "mutation($id: ID!) { deleteModel(input: { id: $id }) { model { id } } }", json!({ "id": model }), "PRECONDITION_FAILED").await;
        assert_eq!(code(&endpoint(&app, &ops, &ops_project, &model, "self_hosted", "after").await), "NOT_FOUND");

        // Stopped, the endpoint hands out no URLs and its old ones stop working.
        app.ok(&ops, STOP, json!({ "id": theirs })).await;
        let stopped = app.gql(&ops, "query($id: ID!) { endpoint(id: $id) { downloadUrls { url } } }", json!({ "id": theirs })).await;
        assert_eq!(code(&stopped), "PRECONDITION_FAILED");
        assert_eq!(app.client.get(file["url"].as_str().unwrap()).send().await.unwrap().status(), 404);

        // The last endpoints go: the model is READY again.
        for id in [&theirs, &theirs_hosted] {
            app.ok(&ops, DELETE, json!({ "id": id })).await;
        }
        app.ok(&owner, DELETE, json!({ "id": hosted })).await;
        assert_eq!(state(&app, &model).await["status"], "ACTIVE");
        app.ok(&owner, STOP, json!({ "id": own })).await;
        assert_eq!(state(&app, &model).await, json!({ "status": "READY", "shared": false, "catalogRole": null, "deploymentCount": null }));

        // A model with drafts only cannot be deployed.
        let drafty = app.create_model(&owner, &owner_project, "Drafty", json!({})).await;
        let draft = app.create_version(&owner, &drafty, "v1").await;
        app.upload(&owner, &drafty, Some(&draft), "w.bin", b"w").await;
        let refused = endpoint(&app, &owner, &owner_project, &drafty, "self_hosted", "d").await;
        assert_eq!(code(&refused), "PRECONDITION_FAILED");
        assert!(refused["errors"][0]["message"].as_str().unwrap().contains("no published version"), "{refused}");
    }

    async fn concurrent_endpoint_changes_keep_status_role_and_count_true(app) {
        let project = app.default_project().await;
        let (model, _) = published_model(&app, &app.admin, &project, "Busy").await;
        app.ok(&app.admin, SHARE, json!({ "id": model })).await;
        let tiers = ["serverless", "self_hosted", "dedicated", "self_hosted"];
        let mut ids = Vec::new();
        for (i, tier) in tiers.iter().cycle().take(8).enumerate() {
            let created = endpoint(&app, &app.admin, &project, &model, tier, &format!("e{i}")).await;
            ids.push(created["data"]["createEndpoint"]["endpoint"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned());
        }
        let app = std::sync::Arc::new(app);
        // Bit i set: endpoint i starts this round, else it stops. Even indexes are on shared
        // tiers: the rounds go through none, some and all of them running.
        let rounds: [u8; 8] = [0b1010_1010, 0b0101_0101, 0, 0b1111_1111, 0b0000_0110, 0b1000_0001, 0b0010_0000, 0b0000_0100];
        for (round, mask) in rounds.into_iter().enumerate() {
            let mut tasks = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                let (app, id) = (app.clone(), id.clone());
                let stop = mask & (1 << i) == 0;
                tasks.push(tokio::spawn(async move {
                    let query = if stop { STOP } else { START };
                    app.ok(&app.admin, query, json!({ "id": id })).await;
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let seen = app
                .ok(&app.admin, "query($id: ID!) { model(id: $id) { status catalogRole deploymentCount endpoints(first: 100) { edges { node { status selfHosted } } } } }", json!({ "id": model }))
                .await["model"]
                .clone();
            let edges = seen["endpoints"]["edges"].as_array().unwrap();
            let active = edges.iter().filter(|e| e["node"]["status"] == "ACTIVE").count();
            let hosted = edges.iter().filter(|e| e["node"]["status"] == "ACTIVE" && e["node"]["selfHosted"] == false).count();
            assert_eq!(seen["deploymentCount"], active, "round {round}: {seen}");
            assert_eq!(seen["status"], if active > 0 { "ACTIVE" } else { "READY" }, "round {round}: {seen}");
            assert_eq!(seen["catalogRole"], if hosted > 0 { "SHARED" } else { "DEPLOYABLE" }, "round {round}: {seen}");
        }
        // Everything stopped at once: READY and DEPLOYABLE.
        let mut tasks = Vec::new();
        for id in &ids {
            let (app, id) = (app.clone(), id.clone());
            tasks.push(tokio::spawn(async move { app.ok(&app.admin, STOP, json!({ "id": id })).await; }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(state(&app, &model).await, json!({ "status": "READY", "shared": true, "catalogRole": "DEPLOYABLE", "deploymentCount": 0 }));
    }
}
