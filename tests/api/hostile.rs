//! Hostile input, kept as a sweep: requests built to crash, hang or fool the server, each with
//! the answer it must get instead. Crash cases run against the real binary, so a process that
//! dies fails the test; the rest drive the real router on SQLite and PostgreSQL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::Setup;
use crate::support::{CHUNK, TestApp, bytes_of, graphql_data, sha256_hex};

const CREATE_SESSION: &str = "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id chunkCount missingChunks } } }";
const CREATE_DIRECT: &str = "mutation($i: CreateUploadSessionInput!) { createDirectUpload(input: $i) { uploadUrl uploadSession { id } } }";

async fn post_raw(base: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers")
}

/// `{ __typename(x: [[…1…]]) }` with `levels` brackets: the query's total nesting is
/// `levels + 2` (the selection braces and the argument parentheses).
fn nested_list(levels: usize) -> String {
    format!(
        "{{ __typename(x: {}1{}) }}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

fn nested_object(levels: usize) -> String {
    format!(
        "{{ __typename(x: {}1{}) }}",
        "{a: ".repeat(levels),
        "}".repeat(levels)
    )
}

fn is_nesting_refusal(body: &Value) -> bool {
    body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        && body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nested more than"))
}

/// Keyless requests that once aborted the process: deep list and object literals, deep
/// selections and deep variables. The binary must answer each and stay up.
async fn nesting_cannot_abort_the_process(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let mut server = setup.serve();
    server.wait_ready().await;
    let base = server.base.clone();
    let max = model_registry::graphql::MAX_NESTING;

    // At the edge the query reaches the engine and is answered; one level more is refused
    // before parsing; far past it too.
    let body: Value = post_raw(&base, json!({ "query": nested_list(max - 2) }).to_string())
        .await
        .json()
        .await
        .unwrap();
    assert!(!is_nesting_refusal(&body), "{body}");
    assert_eq!(body["data"]["__typename"], "QueryRoot", "{body}");
    for query in [
        nested_list(max - 1),
        nested_list(1_700),
        nested_list(100_000),
        nested_object(2_000),
        format!("{}{}", "{ a ".repeat(3_000), "}".repeat(3_000)),
        // Shapes a scan can miscount: a comment ended by CR, a block string's backslash.
        format!(
            "{{ __typename #\r(x: {}1{}) }}",
            "[".repeat(1_700),
            "]".repeat(1_700)
        ),
        format!(
            "{{ __typename(y: \"\"\"\\\\\"\"\" \"\"\", x: {}1{}) }}",
            "[".repeat(1_700),
            "]".repeat(1_700)
        ),
    ] {
        let response = post_raw(&base, json!({ "query": query }).to_string()).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(is_nesting_refusal(&body), "{body}");
    }

    // A chain of fragments, even unused ones, is as deep as nesting for the engine's cycle
    // check.
    let chain: String = (0..20_000)
        .map(|i| format!("fragment f{i} on QueryRoot {{ ...f{} }} ", i + 1))
        .collect();
    let body: Value = post_raw(
        &base,
        json!({ "query": format!("{{ __typename }} {chain}") }).to_string(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fragments"),
        "{body}"
    );
    let max_fragments = model_registry::graphql::MAX_FRAGMENTS;
    let chain: String = (0..max_fragments)
        .map(|i| format!("fragment f{i} on QueryRoot {{ __typename ...f{} }} ", i + 1))
        .collect();
    let response = post_raw(
        &base,
        json!({ "query": format!("{{ __typename }} {chain}") }).to_string(),
    )
    .await;
    assert_eq!(
        response.status(),
        200,
        "the longest allowed chain is answered"
    );

    // Variables: past the JSON reader's own bound (400), and under it but past ours.
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let body: Value = post_raw(
        &base,
        json!({ "query": "query($x: Int) { __typename }", "variables": { "x": deep } }).to_string(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(is_nesting_refusal(&body), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "x");
    let very_deep = format!(
        "{{\"query\":\"{{ __typename }}\",\"variables\":{{\"x\":{}1{}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let response = post_raw(&base, very_deep).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "BAD_USER_INPUT"
    );

    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server process died"
    );
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // Still serving real work after all that.
    let key = server.admin_key();
    let viewer = graphql_data(&base, &key, "{ viewer { role } }", json!({})).await;
    assert_eq!(viewer["viewer"]["role"], "ADMIN");
}

/// The server at `RUST_LOG=trace` through key creation, signing and downloads: no secret, key,
/// signing key or signature may appear in what it logs.
async fn secrets_stay_out_of_the_logs(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let log_path = setup.dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = setup.serve_with(|command| {
        command.env("RUST_LOG", "trace").stderr(log);
    });
    server.wait_ready().await;
    let admin = server.admin_key();
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let gql = |key: String, query: &'static str, variables: Value| {
        let base = base.clone();
        async move { graphql_data(&base, &key, query, variables).await }
    };
    let created = gql(
        admin.clone(),
        "mutation { createApiKey(input: { name: \"ci\", role: EDITOR }) { secret } }",
        json!({}),
    )
    .await;
    let editor = created["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let projects = gql(
        editor.clone(),
        "{ projects { edges { node { id } } } }",
        json!({}),
    )
    .await;
    let project = projects["projects"]["edges"][0]["node"]["id"].clone();
    let model = gql(
        editor.clone(),
        "mutation($p: ID!) { createModel(input: { projectId: $p, name: \"m\" }) { model { id } } }",
        json!({ "p": project }),
    )
    .await;
    let bytes = bytes_of(1000, 1);
    let session = gql(
        editor.clone(),
        CREATE_SESSION,
        json!({ "i": { "modelId": model["createModel"]["model"]["id"], "fileName": "f.bin", "totalSizeBytes": 1000, "chunkSizeBytes": CHUNK } }),
    )
    .await;
    let session = session["createUploadSession"]["uploadSession"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = client
        .put(format!("{base}/v1/uploads/{session}/chunks/0"))
        .bearer_auth(&editor)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let done = gql(
        editor.clone(),
        "mutation($id: ID!) { completeUploadSession(input: { id: $id }) { artifact { id downloadUrl { url } } } }",
        json!({ "id": session }),
    )
    .await;
    let url = done["completeUploadSession"]["artifact"]["downloadUrl"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let signature = url.split("signature=").nth(1).unwrap().to_owned();
    for _ in 0..2 {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    let signing_key = stored_signing_key(&setup).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();

    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("model_registry::sql") && logged.contains("/v1/artifacts/"),
        "the server logged at trace level (statements and requests)"
    );
    for (what, secret) in [
        ("the admin key", admin.as_str()),
        ("the minted key", editor.as_str()),
        ("the URL-signing key", signing_key.as_str()),
        ("a URL signature", signature.as_str()),
    ] {
        assert!(!logged.contains(secret), "{what} appears in the trace log");
    }
}

async fn stored_signing_key(setup: &Setup) -> String {
    use diesel::{ExpressionMethods, QueryDsl};
    use model_registry::db::schema::server_secrets;
    let query = server_secrets::table
        .filter(server_secrets::name.eq("url-signing-key"))
        .select(server_secrets::value);
    match &setup.database {
        Some(db) => {
            use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
            let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
            query.first::<String>(&mut conn).await.unwrap()
        }
        None => {
            let path = setup.dir.path().join("registry.db");
            let mut conn =
                <diesel::SqliteConnection as diesel::Connection>::establish(path.to_str().unwrap())
                    .unwrap();
            diesel::RunQueryDsl::first::<String>(query, &mut conn).unwrap()
        }
    }
}

per_backend! {
    nested_literals_and_variables_cannot_abort_the_process => nesting_cannot_abort_the_process,
    no_secret_reaches_a_trace_log => secrets_stay_out_of_the_logs,
}

/// A registry whose configuration a test adjusts.
async fn configured(postgres: bool, tweak: impl FnOnce(&mut model_registry::Config)) -> TestApp {
    TestApp::configured(postgres, tweak).await
}

async fn model(app: &TestApp, name: &str) -> String {
    let project = app.default_project().await;
    app.create_model(&app.admin, &project, name, json!({}))
        .await
}

backends! {
    async fn sizes_that_would_wrap_are_refused(app) {
        let m = model(&app, "m").await;
        let mut cases = vec![
            (json!({ "totalSizeBytes": i64::MAX, "chunkSizeBytes": 536_870_912 }), "totalSizeBytes"),
            (json!({ "totalSizeBytes": i64::MAX }), "totalSizeBytes"),
            (json!({ "totalSizeBytes": 5_i64 * 1024 * 1024 * 1024 * 1024 + 1 }), "totalSizeBytes"),
            (json!({ "totalSizeBytes": -1 }), "totalSizeBytes"),
            (json!({ "totalSizeBytes": 10, "chunkSizeBytes": -1 }), "chunkSizeBytes"),
            (json!({ "totalSizeBytes": 10, "chunkSizeBytes": i64::MAX }), "chunkSizeBytes"),
        ];
        for (input, field) in cases.drain(..) {
            let mut input = input;
            input["modelId"] = json!(m);
            input["fileName"] = json!("f.bin");
            for mutation in [CREATE_SESSION, CREATE_DIRECT] {
                let error = app.fails(&app.admin, mutation, json!({ "i": input }), "BAD_USER_INPUT").await;
                assert_eq!(error["extensions"]["field"], field, "{input}: {error}");
            }
        }
        // Nothing was opened by any of them.
        let open = app.ok(&app.admin, "query($m: ID!) { uploadSessions(filter: { modelId: $m }) { totalCount } }", json!({ "m": m })).await;
        assert_eq!(open["uploadSessions"]["totalCount"], 0);

        // A direct upload shorter than announced is not stored, and cannot complete.
        let data = app.ok(&app.admin, CREATE_DIRECT, json!({ "i": { "modelId": m, "fileName": "d.bin", "totalSizeBytes": 10 } })).await;
        let url = data["createDirectUpload"]["uploadUrl"].as_str().unwrap().to_owned();
        let session = data["createDirectUpload"]["uploadSession"]["id"].as_str().unwrap().to_owned();
        let short = app.client.put(&url).body(vec![1u8; 9]).send().await.unwrap();
        assert_eq!(short.status(), 400);
        assert_eq!(short.json::<Value>().await.unwrap()["error"]["field"], "body");
        app.fails(&app.admin, "mutation($id: ID!) { confirmDirectUpload(input: { id: $id }) { artifact { id } } }", json!({ "id": session }), "PRECONDITION_FAILED").await;
        // A Content-Digest on the direct PUT is checked too, and a mismatch stores nothing.
        use base64::Engine;
        let wrong = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        let r = app.client.put(&url).header("content-digest", format!("sha-256=:{wrong}:")).body(vec![1u8; 10]).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "CHECKSUM_MISMATCH");
        app.fails(&app.admin, "mutation($id: ID!) { confirmDirectUpload(input: { id: $id }) { artifact { id } } }", json!({ "id": session }), "PRECONDITION_FAILED").await;
        let right = base64::engine::general_purpose::STANDARD.encode(hex::decode(sha256_hex(&[1u8; 10])).unwrap());
        let r = app.client.put(&url).header("content-digest", format!("sha-256=:{right}:")).body(vec![1u8; 10]).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn control_characters_are_refused_on_every_backend(app) {
        let project = app.default_project().await;
        let viewer = app.project_key(&project, "VIEWER").await;
        let error = app.fails(&viewer, "{ organization(slug: \"a\\u0000b\") { id } }", json!({}), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "slug");
        let create = "mutation($input: CreateModelInput!) { createModel(input: $input) { model { id description } } }";
        for (input, field) in [
            (json!({ "projectId": project, "name": "a\u{0}b" }), "input.name"),
            (json!({ "projectId": project, "name": "ok", "description": "bell \u{7}" }), "input.description"),
            (json!({ "projectId": project, "name": "ok", "tags": [{ "key": "k\u{1b}", "value": "v" }] }), "input.tags.key"),
            (json!({ "projectId": project, "name": "ok", "inputSchema": { "type": "object", "x\u{0}": 1 } }), "input.inputSchema.x\u{0}"),
        ] {
            let error = app.fails(&app.admin, create, json!({ "input": input }), "BAD_USER_INPUT").await;
            assert_eq!(error["extensions"]["field"], field, "{error}");
        }
        // Line breaks and tabs are text, not control: multi-line descriptions stay possible.
        let data = app.ok(&app.admin, create, json!({ "input": { "projectId": project, "name": "ok", "description": "line 1\n\tline 2\r\n" } })).await;
        assert_eq!(data["createModel"]["model"]["description"], "line 1\n\tline 2\r\n");
    }

    async fn signed_urls_expire_within_the_limit_and_die_with_their_key(app) {
        let m = model(&app, "m").await;
        let project = app.default_project().await;
        let editor = app.project_key(&project, "EDITOR").await;
        let bytes = bytes_of(500, 3);
        let artifact = app.upload(&app.admin, &m, None, "f.bin", &bytes).await;
        let aid = artifact["id"].as_str().unwrap().to_owned();
        let url_query = "query($id: ID!, $s: Int!) { artifact(id: $id) { downloadUrl(expiresInSeconds: $s) { url } } }";
        let error = app.fails(&editor, url_query, json!({ "id": aid, "s": 7 * 24 * 3600 + 1 }), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "expiresInSeconds");

        let data = app.ok(&editor, url_query, json!({ "id": aid, "s": 600 })).await;
        let url = data["artifact"]["downloadUrl"]["url"].as_str().unwrap().to_owned();
        let key_id: model_registry::values::Id = url.split("key=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
        assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);

        // Correctly signed, but further ahead than the maximum lifetime: refused.
        let path = format!("/v1/artifacts/{aid}/download");
        let year_2100 = 4_102_444_800;
        let far = format!("{}{path}?{}", app.base, app.app.signer.sign("GET", &path, year_2100, key_id));
        assert_eq!(app.client.get(&far).send().await.unwrap().status(), 403);
        // Other spellings of a valid signature and the pre-key form are refused.
        let upper = format!("{}{}", &url[..url.find("signature=").unwrap() + 10], url.split("signature=").nth(1).unwrap().to_uppercase());
        assert_eq!(app.client.get(&upper).send().await.unwrap().status(), 403);
        let keyless = url.replace(&format!("key={key_id}&"), "");
        assert_eq!(app.client.get(&keyless).send().await.unwrap().status(), 403);

        // Revoking the key that minted it kills the URL.
        let keys = app.ok(&app.admin, "{ apiKeys { edges { node { id } } } }", json!({})).await;
        assert!(keys["apiKeys"]["edges"].as_array().unwrap().iter().any(|e| e["node"]["id"] == key_id.to_string()));
        app.ok(&app.admin, "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }", json!({ "id": key_id.to_string() })).await;
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "FORBIDDEN");
    }

    async fn graphql_takes_only_json_bodies(app) {
        let body = json!({ "query": "{ viewer { role } }" }).to_string();
        for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x"), None] {
            let mut request = app.client.post(format!("{}/graphql", app.base)).bearer_auth(&app.admin).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 415, "{content_type:?}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["field"], "Content-Type");
        }
        let response = app.client.post(format!("{}/graphql", app.base)).bearer_auth(&app.admin)
            .header("content-type", "application/json; charset=utf-8").body(body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["data"]["viewer"]["role"], "ADMIN");
    }

    async fn content_digest_is_checked_or_refused(app) {
        use base64::Engine;
        let m = model(&app, "m").await;
        let bytes = bytes_of(CHUNK, 4);
        let session = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": CHUNK, "chunkSizeBytes": CHUNK })).await;
        let id = session["id"].as_str().unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let right = b64(&hex::decode(sha256_hex(&bytes)).unwrap());
        let other = b64(&[0u8; 32]);
        for header in [
            "garbage".to_owned(),
            format!("sha-512=:{}:", b64(&[1u8; 64])),
            "md5=:rL0Y20zC+Fzt72VPzMSk2A==:".to_owned(),
            format!("sha-256=:{right}:, sha-256=:{other}:"),
            format!("sha-256=:{right}:, sha-512=zz"),
        ] {
            let r = app.client.put(format!("{}/v1/uploads/{id}/chunks/0", app.base)).bearer_auth(&app.admin)
                .header("content-digest", &header).body(bytes.clone()).send().await.unwrap();
            assert_eq!(r.status(), 400, "{header}");
            assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "Content-Digest", "{header}");
        }
        // Two header lines are read as one list: the second cannot slip a value past.
        let r = app.client.put(format!("{}/v1/uploads/{id}/chunks/0", app.base)).bearer_auth(&app.admin)
            .header("content-digest", format!("sha-256=:{right}:"))
            .header("content-digest", format!("sha-256=:{other}:"))
            .body(bytes.clone()).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let r = app.client.put(format!("{}/v1/uploads/{id}/chunks/0", app.base)).bearer_auth(&app.admin)
            .header("content-digest", format!("sha-512=:{}:, sha-256=:{right}:", b64(&[1u8; 64])))
            .body(bytes.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn page_sizes_external_uris_and_the_last_admin_key(app) {
        let error = app.fails(&app.admin, "{ projects(first: 2147483648) { totalCount } }", json!({}), "BAD_USER_INPUT").await;
        assert!(error["message"].as_str().unwrap().contains("first") || error["extensions"]["field"] == "first", "{error}");
        let error = app.fails(&app.admin, "query($n: Int) { projects(first: $n) { totalCount } }", json!({ "n": 2147483648_i64 }), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "first", "{error}");

        let m = model(&app, "m").await;
        for uri in ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,<script>", "ftp://host/x", "hf:"] {
            let error = app.fails(&app.admin, CREATE_SESSION, json!({ "i": { "modelId": m, "fileName": "f.bin", "totalSizeBytes": 1, "externalUri": uri } }), "BAD_USER_INPUT").await;
            assert_eq!(error["extensions"]["field"], "externalUri", "{uri}");
        }
        app.ok(&app.admin, CREATE_SESSION, json!({ "i": { "modelId": m, "fileName": "f.bin", "totalSizeBytes": 1, "externalUri": "hf://org/model" } })).await;

        // The bootstrap key is the only instance admin: it cannot revoke itself.
        let me = app.ok(&app.admin, "{ viewer { key { id } } }", json!({})).await["viewer"]["key"]["id"].as_str().unwrap().to_owned();
        let revoke = "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { id revokedAt } } }";
        let error = app.fails(&app.admin, revoke, json!({ "id": me }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("last"), "{error}");
        app.ok(&app.admin, "{ viewer { role } }", json!({})).await;
        // With a second instance admin, either may go, but not both.
        let second = app.key(json!({}), "ADMIN").await;
        let data = app.ok(&app.admin, revoke, json!({ "id": me })).await;
        assert!(data["revokeApiKey"]["apiKey"]["revokedAt"].is_string());
        let second_id = app.ok(&second, "{ viewer { key { id } } }", json!({})).await["viewer"]["key"]["id"].as_str().unwrap().to_owned();
        app.fails(&second, revoke, json!({ "id": second_id }), "PRECONDITION_FAILED").await;
    }
}

/// PostgreSQL only: an embedded SQLite file cannot go away under a running process.
mod a_lost_database_is_unavailable_not_internal {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let app = TestApp::postgres().await;
        let m = model(&app, "m").await;
        let session = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": CHUNK, "chunkSizeBytes": CHUNK })).await;
        app.drop_database().await;

        let error = app
            .fails(&app.admin, "{ viewer { role } }", json!({}), "UNAVAILABLE")
            .await;
        assert_eq!(error["extensions"]["retryable"], true);
        let r = app
            .put_chunk(
                &app.admin,
                session["id"].as_str().unwrap(),
                0,
                &bytes_of(CHUNK, 1),
            )
            .await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "5");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "UNAVAILABLE");
        assert_eq!(body["error"]["retryable"], true);
    }
}

/// A storage folder on a 2 MiB tmpfs: chunks that do not fit are 507 at once, not after
/// retries, and `/readyz` says the space is low. Mounting needs root (as CI runs); elsewhere
/// the test says so and checks nothing.
async fn full_storage(postgres: bool) {
    let mount = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(mount.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must be able to mount a tmpfs"
        );
        eprintln!("full_storage: cannot mount a tmpfs here (not root?); skipped");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.path().to_owned());
    let blobs = mount.path().join("blobs");
    let app = configured(postgres, |config| {
        config.stores.storage_url = Some(format!("fs://{}", blobs.display()));
        config.min_free_bytes = 1024 * 1024;
    })
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let m = model(&app, "m").await;
    let chunk = 512 * 1024;
    let bytes = bytes_of(8 * chunk, 9);
    let session = app
        .open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": chunk }))
        .await;
    let id = session["id"].as_str().unwrap();
    let mut refused = None;
    for (index, part) in bytes.chunks(chunk).enumerate() {
        let started = Instant::now();
        let r = app.put_chunk(&app.admin, id, index as i64, part).await;
        if r.status() != 200 {
            refused = Some((
                r.status(),
                started.elapsed(),
                r.headers().get("retry-after").is_some(),
                r.json::<Value>().await.unwrap(),
            ));
            break;
        }
    }
    let (status, took, retry_after, body) = refused.expect("4 MiB cannot fit on a 2 MiB disk");
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "INSUFFICIENT_STORAGE");
    assert!(retry_after, "507 says when to retry");
    assert!(
        took < Duration::from_secs(3),
        "answered after {took:?}: retried instead of failing"
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["storage"], "low on space", "{ready}");
    assert_eq!(ready["error"]["code"], "INSUFFICIENT_STORAGE");
}

/// Slow and stalled clients are cut off: partial headers, an idle keep-alive connection, a
/// stalled chunk body and a download nobody reads.
async fn stalled_clients(postgres: bool) {
    let mut app = configured(postgres, |config| {
        config.header_read_timeout_secs = 1;
        config.body_read_timeout_secs = 1;
        config.idle_timeout_secs = 1;
    })
    .await;
    // The server closes a keep-alive connection after a second of quiet here: the test's own
    // requests must not reuse one it may be closing (a reused one fails as IncompleteMessage).
    app.client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let address = app.base.strip_prefix("http://").unwrap().to_owned();
    let connect = || {
        let stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    };
    // Reads until the server closes; answers what it sent and how long that took.
    let until_closed = |mut stream: TcpStream| {
        let started = Instant::now();
        let mut received = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("the server kept the connection open: {e}"),
            }
        }
        (
            String::from_utf8_lossy(&received).into_owned(),
            started.elapsed(),
        )
    };

    // A connection that sends nothing at all.
    let (_, took) = until_closed(connect());
    assert!(
        took < Duration::from_secs(5),
        "a silent connection held for {took:?}"
    );

    // Headers that never finish.
    let mut stream = connect();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, took) = until_closed(stream);
    assert!(
        took < Duration::from_secs(5),
        "partial headers held for {took:?}"
    );

    // A keep-alive connection that goes quiet after one request.
    let mut stream = connect();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answered, took) = until_closed(stream);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(
        took < Duration::from_secs(5),
        "an idle connection held for {took:?}"
    );

    // A GraphQL body that stops half way: 408, not 413.
    let mut stream = connect();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .unwrap();
    let (answered, took) = until_closed(stream);
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(
        took < Duration::from_secs(5),
        "a stalled GraphQL body held for {took:?}"
    );

    // A chunk body that stops half way.
    let m = model(&app, "m").await;
    let session = app
        .open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": CHUNK, "chunkSizeBytes": CHUNK }))
        .await;
    let id = session["id"].as_str().unwrap();
    let mut stream = connect();
    write!(
        stream,
        "PUT /v1/uploads/{id}/chunks/0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {CHUNK}\r\n\r\n",
        app.admin
    )
    .unwrap();
    stream.write_all(&[7u8; 1000]).unwrap();
    let (answered, took) = until_closed(stream);
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(answered.contains("REQUEST_TIMEOUT"), "{answered}");
    assert!(
        took < Duration::from_secs(5),
        "a stalled body held for {took:?}"
    );
    let state = app
        .ok(
            &app.admin,
            "query($id: ID!) { uploadSession(id: $id) { missingChunks } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        state["uploadSession"]["missingChunks"],
        json!([0]),
        "nothing half-stored"
    );

    // A download whose reader stops reading: the write stalls and the connection is dropped.
    let big = bytes_of(48 * 1024 * 1024, 5);
    let artifact = app.upload(&app.admin, &m, None, "big.bin", &big).await;
    let mut stream = connect();
    write!(
        stream,
        "GET /v1/artifacts/{}/download HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        artifact["id"].as_str().unwrap(),
        app.admin
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let (received, _) = until_closed(stream);
    assert!(received.starts_with("HTTP/1.1 200"));
    assert!(
        received.len() < big.len(),
        "the whole artifact was sent to a client that did not read"
    );
}

per_backend! {
    a_full_disk_is_507_at_once => full_storage,
    stalled_clients_are_cut_off => stalled_clients,
}
