//! The public manifest and the catalog at catalog scale: `GET /v1/manifest` (the replica's
//! copy served whole, and revalidated with `If-None-Match` → 304), the cost of one rebuild after
//! the catalog changed, and `catalog(first: 50)` over GraphQL, at N concurrent clients over
//! loopback HTTP, next to `GET /healthz` measured the same way in the same run.
//!
//! cargo bench --bench catalog -- [--database-url URL] [--models 10000] [--clients 8]
//!                                [--seconds 10]
//!
//! Seeding creates the models and versions through the domain, then marks them READY, shared
//! and published, with one file each, in three statements: sharing 10,000 models one request
//! at a time would measure the seeding, not the reads.

use std::time::Instant;

use diesel_async::RunQueryDsl;
use futures::StreamExt;
use model_registry::auth;
use model_registry::db::Pool;
use model_registry::domain::models::{ModelFields, NewModel, create as create_model};
use model_registry::domain::versions::{NewModelVersion, create as create_version};
use model_registry::values::Patch;
use model_registry::{App, Config, router};
use serde_json::json;

/// The server binary's allocator, so the in-process numbers are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::load;

const CATALOG_PAGE: &str = "{ catalog(first: 50) { edges { node { modelId key name framework
    catalogRole deploymentCount latestVersion { version artifacts { fileName sizeBytes sha256 } } } } } }";

struct Args {
    database_url: Option<String>,
    models: usize,
    clients: usize,
    seconds: u64,
}

fn args() -> Args {
    let mut args = Args {
        database_url: None,
        models: 10_000,
        clients: 8,
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag needs a value");
        match flag.as_str() {
            "--database-url" => args.database_url = Some(value()),
            "--models" => args.models = value().parse().unwrap(),
            "--clients" => args.clients = value().parse().unwrap(),
            "--seconds" => args.seconds = value().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn main() {
    model_registry::allocator::configure();
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args));
}

/// Runs `statement` on whichever backend the registry uses.
async fn execute(app: &App, statement: &str) {
    let query = diesel::sql_query(statement);
    match app.db.pool() {
        Pool::Sqlite(pool) => query.execute(&mut pool.get().await.unwrap()).await,
        Pool::Postgres(pool) => query.execute(&mut pool.get().await.unwrap()).await,
    }
    .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Loopback bandwidth: one connection moving 2 GiB in 1 MiB writes, as many streams as the
/// benchmark's clients. The ceiling the whole manifest is read against.
async fn loopback_gib_per_s(streams: usize) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TOTAL: usize = 2 << 30;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let per_stream = TOTAL / streams;
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let block = vec![7u8; 1 << 20];
                let mut sent = 0;
                while sent < per_stream {
                    socket.write_all(&block).await.unwrap();
                    sent += block.len();
                }
            });
        }
    });
    let start = Instant::now();
    let readers = (0..streams).map(|_| {
        tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let mut read = 0;
            while read < per_stream {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the writer stopped early");
                read += n;
            }
        })
    });
    futures::future::join_all(readers).await;
    TOTAL as f64 / start.elapsed().as_secs_f64() / (1u64 << 30) as f64
}

async fn run(args: Args) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded(dir.path());
    config.stores.database.database_url = args.database_url.clone();
    config.db_pool_size = 16;
    let app = App::open(config).await.expect("open registry");
    let backend = format!("{:?}", app.db.backend());
    let Some(admin) = model_registry::domain::bootstrap::initialize(&app.db)
        .await
        .unwrap()
    else {
        panic!("the benchmark needs an empty database")
    };
    let caller = auth::authenticate(&app.db, &admin).await.unwrap();
    let project = model_registry::db::projects::find_by_slug(&app.db, "default")
        .await
        .unwrap()
        .unwrap()
        .id;

    let seed_start = Instant::now();
    futures::stream::iter(0..args.models)
        .for_each_concurrent(4, |i| {
            let (db, caller) = (app.db.clone(), caller.clone());
            async move {
                let model = create_model(
                    &db,
                    &caller,
                    NewModel {
                        project_id: project,
                        fields: ModelFields {
                            name: Patch::Set(format!("model-{i:05}")),
                            description: Patch::Set(format!("Catalog model number {i}")),
                            framework: Patch::Set(["torch", "onnx", "gguf"][i % 3].into()),
                            capabilities: Patch::Set(vec!["chat".into()]),
                            ..ModelFields::default()
                        },
                    },
                )
                .await
                .expect("seed model");
                create_version(
                    &db,
                    &caller,
                    NewModelVersion {
                        model_id: model.id,
                        version: "v1".into(),
                        description: None,
                        release_date: None,
                        training_run_id: None,
                        metrics: None,
                    },
                )
                .await
                .expect("seed version");
            }
        })
        .await;
    execute(
        &app,
        "INSERT INTO artifacts (id, model_id, version_id, kind, file_name, content_type, \
         size_bytes, sha256, format, storage_backend, storage_uri, status, is_current, \
         uploaded_at, created_at, updated_at) \
         SELECT id, model_id, id, 'WEIGHTS', 'model.safetensors', 'application/octet-stream', \
         1073741824, '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', \
         'safetensors', 'fs', 'fs://seeded', 'AVAILABLE', FALSE, created_at, created_at, \
         created_at FROM model_versions",
    )
    .await;
    execute(
        &app,
        "UPDATE model_versions SET lifecycle = 'PUBLISHED', published_at = created_at",
    )
    .await;
    execute(
        &app,
        "UPDATE models SET status = 'READY', shared = TRUE, catalog_role = 'DEPLOYABLE', \
         shared_at = created_at",
    )
    .await;
    let seeded = seed_start.elapsed();
    if let Some(url) = args
        .database_url
        .as_deref()
        .filter(|u| u.starts_with("postgres"))
    {
        let status = std::process::Command::new("psql")
            .args([url, "-qc", "VACUUM ANALYZE"])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "VACUUM ANALYZE failed");
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = router(app.clone());
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    let client = reqwest::Client::new();
    let manifest_url = format!("{base}/v1/manifest");

    // One rebuild after a change: the first request pays it, the ones after are served whole.
    let mut rebuilds = Vec::new();
    let mut size = 0;
    let mut etag = String::new();
    for round in 0..5 {
        execute(&app, "UPDATE catalog_revision SET revision = revision + 1").await;
        let t = Instant::now();
        let response = client.get(&manifest_url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let body = response.bytes().await.unwrap();
        if round > 0 {
            rebuilds.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        size = body.len();
    }
    let entries = serde_json::from_slice::<serde_json::Value>(
        &client
            .get(&manifest_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap()
    .as_object()
    .unwrap()
    .len();
    assert_eq!(entries, args.models);
    rebuilds.sort_by(f64::total_cmp);

    let whole = {
        let url = manifest_url.clone();
        load(args.clients, args.seconds, move |c: &reqwest::Client| {
            c.get(&url)
        })
        .await
    };
    let gzip_size = client
        .get(&manifest_url)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let compressed = {
        let url = manifest_url.clone();
        load(args.clients, args.seconds, move |c: &reqwest::Client| {
            c.get(&url).header("Accept-Encoding", "gzip")
        })
        .await
    };
    let revalidated = {
        let (url, etag) = (manifest_url.clone(), etag.clone());
        load(args.clients, args.seconds, move |c: &reqwest::Client| {
            c.get(&url).header("If-None-Match", &etag)
        })
        .await
    };
    let catalog = {
        let (url, key) = (format!("{base}/graphql"), admin.clone());
        load(args.clients, args.seconds, move |c: &reqwest::Client| {
            c.post(&url)
                .bearer_auth(&key)
                .json(&json!({ "query": CATALOG_PAGE }))
        })
        .await
    };
    let health = {
        let url = format!("{base}/healthz");
        load(args.clients, args.seconds, move |c: &reqwest::Client| {
            c.get(&url)
        })
        .await
    };

    println!(
        "backend: {backend}; {} shared models seeded in {:.1} s; manifest {:.1} MiB ({:.2} MiB \
         gzip); rebuild after a change: median {:.0} ms (of {} rebuilds)",
        args.models,
        seeded.as_secs_f64(),
        size as f64 / (1024.0 * 1024.0),
        gzip_size as f64 / (1024.0 * 1024.0),
        rebuilds[rebuilds.len() / 2],
        rebuilds.len()
    );
    println!("{} clients, {} s each", args.clients, args.seconds);
    println!("| request | requests/s | p50 ms | p95 ms | p99 ms | of /healthz |");
    println!("|---|---|---|---|---|---|");
    let ceiling = health.per_second();
    for (what, result) in [
        (format!("GET /v1/manifest, whole ({backend})"), &whole),
        (format!("GET /v1/manifest, gzip ({backend})"), &compressed),
        (
            format!("GET /v1/manifest, If-None-Match → 304 ({backend})"),
            &revalidated,
        ),
        (format!("catalog(first: 50) ({backend})"), &catalog),
        ("GET /healthz (loopback ceiling)".to_owned(), &health),
    ] {
        println!(
            "{} {:.0} % |",
            result.line(&what),
            100.0 * result.per_second() / ceiling
        );
    }
    let loopback = loopback_gib_per_s(args.clients).await;
    let moved = whole.per_second() * size as f64 / (1u64 << 30) as f64;
    println!(
        "manifest whole: {moved:.2} GiB/s moved; loopback ({} streams): {loopback:.2} GiB/s; {:.0} % of it",
        args.clients,
        100.0 * moved / loopback
    );
}
