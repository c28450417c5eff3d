//! A registry per test: the real router on a loopback port, over a fresh SQLite file or a fresh
//! PostgreSQL database, with the bootstrap admin key.

use std::net::SocketAddr;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use model_registry::domain::bootstrap;
use model_registry::{App, Config};
use serde_json::{Value, json};

/// The chunk size tests upload with: the smallest the server takes.
pub const CHUNK: usize = 64 * 1024;

pub const COMPLETE: &str = "mutation($i: CompleteUploadSessionInput!) { completeUploadSession(input: $i) { artifact { id sha256 sizeBytes fileName status isCurrent kind format storageBackend storageUri version { id } model { id status } } uploadSession { status missingChunks } } }";

/// Deterministic test bytes (a simple LCG), so failures reproduce.
pub fn bytes_of(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// The model names of a `models { edges { node { name } } }` answer, in its order.
pub fn names(data: &Value) -> Vec<String> {
    data["models"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Expands each test once per backend: `<name>::sqlite` and `<name>::postgres`.
macro_rules! backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::support::TestApp::sqlite().await;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::support::TestApp::postgres().await;
                $body
            }
        }
    )*};
}

/// Expands `name => function` into `<name>::sqlite` and `<name>::postgres`, calling
/// `function(postgres: bool)`: for tests that start their own processes instead of a `TestApp`.
macro_rules! per_backend {
    ($($name:ident => $function:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$function(false).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$function(true).await
            }
        }
    )*};
}

/// Posts a GraphQL request to the server at `base` with `key` (none when empty); answers the
/// whole response, which must be a 200 with JSON. The one GraphQL client of the tests.
pub async fn post_graphql(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if !key.is_empty() {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request reaches the server");
    assert_eq!(response.status(), 200, "GraphQL answers 200");
    response.json().await.expect("GraphQL answers JSON")
}

/// The `data` of a request that must succeed, at the server at `base`.
pub async fn graphql_data(base: &str, key: &str, query: &str, variables: Value) -> Value {
    let response = post_graphql(&reqwest::Client::new(), base, key, query, variables).await;
    assert!(
        response.get("errors").is_none(),
        "{response:#}\nquery: {query}"
    );
    response["data"].clone()
}

pub struct TestApp {
    pub app: App,
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    postgres: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

/// The server a PostgreSQL test database lives on: `TEST_DATABASE_URL`, which the README's
/// test command sets (starting a throwaway cluster when it is not given).
pub fn postgres_server_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect(
        "PostgreSQL tests need TEST_DATABASE_URL (postgres://user@host/db); \
         `scripts/test` starts a throwaway server and sets it",
    )
}

/// Swaps the database name at the end of a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = &base[..base.rfind('/').expect("URL has a database path")];
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// A database created for one test and dropped with it.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    server: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let server = postgres_server_url();
        let name = format!("mr_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = AsyncPgConnection::establish(&server)
            .await
            .expect("connect to TEST_DATABASE_URL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = with_database(&server, &name);
        TestDatabase { name, url, server }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async cleanup on a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&server).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::embedded(dir.path());
        TestApp::start(config, dir, None).await
    }

    pub async fn postgres() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let database = TestDatabase::create().await;
        let mut config = Config::embedded(dir.path());
        config.stores.database.database_url = Some(database.url.clone());
        TestApp::start(config, dir, Some(database)).await
    }

    /// A registry on SQLite or PostgreSQL with its configuration adjusted by `tweak`.
    pub async fn configured(postgres: bool, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded(dir.path());
        let database = if postgres {
            let database = TestDatabase::create().await;
            config.stores.database.database_url = Some(database.url.clone());
            Some(database)
        } else {
            None
        };
        tweak(&mut config);
        TestApp::start(config, dir, database).await
    }

    /// A registry whose bytes live on the S3-compatible server of `TEST_S3_URL`, under a
    /// prefix of its own.
    pub async fn s3(postgres: bool) -> TestApp {
        let url = std::env::var("TEST_S3_URL").expect(
            "S3 tests need TEST_S3_URL (s3://bucket/prefix?endpoint=…); `scripts/test` starts s3s-fs and sets it",
        );
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let storage = format!(
            "{}/{}?{query}",
            path.trim_end_matches('/'),
            uuid::Uuid::now_v7().simple()
        );
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded(dir.path());
        config.stores.storage_url = Some(storage);
        let database = if postgres {
            let database = TestDatabase::create().await;
            config.stores.database.database_url = Some(database.url.clone());
            Some(database)
        } else {
            None
        };
        TestApp::start(config, dir, database).await
    }

    async fn start(
        config: Config,
        dir: tempfile::TempDir,
        postgres: Option<TestDatabase>,
    ) -> TestApp {
        // `RUST_LOG=model_registry=debug cargo test …` shows the server's logs with a test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let app = App::open(config).await.expect("open the registry");
        let admin = bootstrap::initialize(&app.db)
            .await
            .unwrap()
            .expect("a fresh instance mints a key");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = app.clone();
        let server = tokio::spawn(async move {
            model_registry::http::serve(listener, served, std::future::pending())
                .await
                .unwrap();
        });
        TestApp {
            app,
            base,
            admin,
            client: reqwest::Client::new(),
            server,
            postgres,
            _dir: dir,
        }
    }

    /// The folder holding the SQLite file and, by default, the blobs.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Opens an upload session for `bytes` with small chunks; answers the session.
    pub async fn open_upload(&self, key: &str, input: Value) -> Value {
        let data = self
            .ok(key, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id chunkSizeBytes chunkCount status missingChunks receivedChunks receivedBytes chunkUrlTemplate expiresAt } } }", json!({ "i": input }))
            .await;
        data["createUploadSession"]["uploadSession"].clone()
    }

    /// PUTs one chunk; the response is returned unchecked.
    pub async fn put_chunk(
        &self,
        key: &str,
        session: &str,
        index: i64,
        bytes: &[u8],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .put(format!("{}/v1/uploads/{session}/chunks/{index}", self.base))
            .body(bytes.to_vec());
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        request.send().await.unwrap()
    }

    /// Sends every chunk of `bytes` in order (chunks of `chunk` bytes).
    pub async fn put_all(&self, key: &str, session: &str, bytes: &[u8], chunk: usize) {
        for (i, part) in bytes.chunks(chunk).enumerate() {
            let r = self.put_chunk(key, session, i as i64, part).await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    }

    /// The whole three-step upload of `bytes` to a model (and optionally a version):
    /// answers the artifact.
    pub async fn upload(
        &self,
        key: &str,
        model: &str,
        version: Option<&str>,
        name: &str,
        bytes: &[u8],
    ) -> Value {
        let session = self
            .open_upload(key, json!({ "modelId": model, "versionId": version, "fileName": name, "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK }))
            .await;
        let id = session["id"].as_str().unwrap();
        self.put_all(key, id, bytes, CHUNK).await;
        self.complete(key, id, json!({})).await
    }

    pub async fn complete(&self, key: &str, session: &str, extra: Value) -> Value {
        let mut input = json!({ "id": session });
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let data = self.ok(key, COMPLETE, json!({ "i": input })).await;
        data["completeUploadSession"]["artifact"].clone()
    }

    /// Downloads with the key; answers status, headers and body.
    pub async fn download(
        &self,
        key: &str,
        artifact: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .get(format!("{}/v1/artifacts/{artifact}/download", self.base));
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// Runs raw SQL against the test's database (fixtures such as an expired session).
    pub async fn sql(&self, statement: &str) {
        use model_registry::db::Pool;
        match self.app.db.pool() {
            Pool::Sqlite(pool) => diesel::sql_query(statement)
                .execute(&mut pool.get().await.unwrap())
                .await
                .unwrap(),
            Pool::Postgres(pool) => diesel::sql_query(statement)
                .execute(&mut pool.get().await.unwrap())
                .await
                .unwrap(),
        };
    }

    /// Every file under `blobs/sha256` in the data folder.
    pub fn blob_files(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        walk(&path, out);
                    } else {
                        out.push(path.file_name().unwrap().to_string_lossy().into_owned());
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir().join("blobs/sha256"), &mut out);
        out
    }

    /// Files left under `uploads/` (chunks of open sessions).
    pub fn upload_files(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        count(&self.data_dir().join("uploads"))
    }

    /// PostgreSQL only: drops this test's database under the running server, as an outage.
    pub async fn drop_database(&self) {
        let name = self.database_name().expect("a PostgreSQL test");
        let mut conn = AsyncPgConnection::establish(&postgres_server_url())
            .await
            .unwrap();
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    pub fn database_name(&self) -> Option<String> {
        self.postgres.as_ref().map(|db| db.name.clone())
    }

    /// Posts a GraphQL request with `key` (none when empty) and returns the whole response.
    pub async fn gql(&self, key: &str, query: &str, variables: Value) -> Value {
        post_graphql(&self.client, &self.base, key, query, variables).await
    }

    /// The `data` of a request that must succeed.
    pub async fn ok(&self, key: &str, query: &str, variables: Value) -> Value {
        let response = self.gql(key, query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}\nquery: {query}"
        );
        response["data"].clone()
    }

    /// The `extensions.code` of a request that must fail; the error is returned for more checks.
    pub async fn fails(&self, key: &str, query: &str, variables: Value, code: &str) -> Value {
        let response = self.gql(key, query, variables).await;
        let error = response["errors"][0].clone();
        assert_eq!(
            error["extensions"]["code"], code,
            "expected {code}, got: {response:#}\nquery: {query}"
        );
        error
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// Marks a version PUBLISHED in the database, standing in for uploading an artifact and
    /// publishing where a test is about the lifecycle rather than the bytes.
    pub async fn mark_published(&self, version: &str) {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use model_registry::db::Pool;
        use model_registry::db::schema::model_versions;
        use model_registry::values::VersionLifecycle;
        use model_registry::values::{Id, Timestamp};
        let id: Id = version.parse().unwrap();
        let update = diesel::update(model_versions::table.find(id)).set((
            model_versions::lifecycle.eq(VersionLifecycle::Published),
            model_versions::published_at.eq(Timestamp::now()),
        ));
        let changed = match self.app.db.pool() {
            Pool::Sqlite(pool) => update
                .execute(&mut pool.get().await.unwrap())
                .await
                .unwrap(),
            Pool::Postgres(pool) => update
                .execute(&mut pool.get().await.unwrap())
                .await
                .unwrap(),
        };
        assert_eq!(changed, 1);
    }

    /// The bootstrap project's id.
    pub async fn default_project(&self) -> String {
        let data = self
            .ok(
                &self.admin,
                "{ projects { edges { node { id slug } } } }",
                json!({}),
            )
            .await;
        data["projects"]["edges"][0]["node"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn default_organization(&self) -> String {
        let data = self
            .ok(
                &self.admin,
                r#"{ organization(slug: "default") { id } }"#,
                json!({}),
            )
            .await;
        data["organization"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a model with `extra` input fields; returns its id.
    pub async fn create_model(&self, key: &str, project: &str, name: &str, extra: Value) -> String {
        let mut input = json!({ "projectId": project, "name": name });
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let data = self
            .ok(key, "mutation($input: CreateModelInput!) { createModel(input: $input) { model { id } } }", json!({ "input": input }))
            .await;
        data["createModel"]["model"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn create_version(&self, key: &str, model: &str, label: &str) -> String {
        let data = self
            .ok(
                key,
                "mutation($input: CreateModelVersionInput!) { createModelVersion(input: $input) { modelVersion { id } } }",
                json!({ "input": { "modelId": model, "version": label } }),
            )
            .await;
        data["createModelVersion"]["modelVersion"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn create_project(&self, slug: &str) -> String {
        let org = self.default_organization().await;
        let data = self
            .ok(
                &self.admin,
                "mutation($input: CreateProjectInput!) { createProject(input: $input) { project { id } } }",
                json!({ "input": { "organizationId": org, "slug": slug, "name": slug } }),
            )
            .await;
        data["createProject"]["project"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Mints a key scoped to `project` (or the organization / instance) with `role`.
    pub async fn key(&self, scope: Value, role: &str) -> String {
        let mut input = json!({ "name": format!("{role} key"), "role": role });
        input
            .as_object_mut()
            .unwrap()
            .extend(scope.as_object().cloned().unwrap_or_default());
        let data = self
            .ok(
                &self.admin,
                "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
                json!({ "input": input }),
            )
            .await;
        data["createApiKey"]["secret"].as_str().unwrap().to_owned()
    }

    pub async fn project_key(&self, project: &str, role: &str) -> String {
        self.key(json!({ "projectId": project }), role).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}
