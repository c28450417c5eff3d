//! Throughput of the hottest read: `models(first: 50)` with nested versions, current version
//! and project, at N concurrent clients over loopback HTTP, against a seeded registry.
//!
//! cargo bench --bench models_list -- [--database-url URL] [--models 10000] [--versions 3]
//!                                    [--clients 8] [--seconds 10] [--query Q]...
//!                                    [--seed-only]
//!
//! The first line is served by the response cache after the first request (the registry does
//! not change during the run); a second line sends the same query to the same process with
//! the cache off, executing every request.
//!
//! Without --database-url it uses SQLite in a temporary folder. The same run measures
//! `GET /healthz` with the same clients: the ceiling this machine's loopback and HTTP stack
//! allow, to read the API's number against.

use std::time::Instant;

use futures::StreamExt;
use model_registry::auth;
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

/// The shape the performance target is stated for: a page of 50 with nested versions, the
/// current version and the project.
const QUERY: &str = "{ models(first: 50) { edges { node { id name slug status
    versions(first: 5) { edges { node { id version number lifecycle } } }
    currentVersion { id version } project { slug } } } } }";

/// The same page with the aggregates a list view may add; reported on a line of its own.
const QUERY_WITH_COUNTS: &str =
    "{ models(first: 50) { totalCount edges { node { id name slug status versionCount
    versions(first: 5) { totalCount edges { node { id version number lifecycle } } }
    currentVersion { id version } project { slug } } } } }";

struct Args {
    database_url: Option<String>,
    models: usize,
    versions: usize,
    clients: usize,
    seconds: u64,
    /// Extra GraphQL queries to measure after the standard one, to see what a field costs.
    queries: Vec<String>,
    /// Stop after seeding: the creation rate alone.
    seed_only: bool,
}

fn args() -> Args {
    let mut args = Args {
        database_url: None,
        models: 10_000,
        versions: 3,
        clients: 8,
        seconds: 10,
        queries: Vec::new(),
        seed_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag needs a value");
        match flag.as_str() {
            "--database-url" => args.database_url = Some(value()),
            "--models" => args.models = value().parse().unwrap(),
            "--versions" => args.versions = value().parse().unwrap(),
            "--clients" => args.clients = value().parse().unwrap(),
            "--seconds" => args.seconds = value().parse().unwrap(),
            "--query" => args.queries.push(value()),
            "--seed-only" => args.seed_only = true,
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

async fn run(args: Args) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded(dir.path());
    config.stores.database.database_url = args.database_url.clone();
    config.db_pool_size = 16;
    let app = App::open(config).await.expect("open registry");
    let backend = format!("{:?}", app.db.backend());
    let admin = match model_registry::domain::bootstrap::initialize(&app.db)
        .await
        .unwrap()
    {
        Some(key) => key,
        None => panic!("the benchmark needs an empty database"),
    };
    let caller = auth::authenticate(&app.db, &admin).await.unwrap();
    let project = model_registry::db::projects::find_by_slug(&app.db, "default")
        .await
        .unwrap()
        .unwrap()
        .id;

    let seed_start = Instant::now();
    let seed_statements = app.db.query_count();
    futures::stream::iter(0..args.models)
        .for_each_concurrent(4, |i| {
            let (db, caller) = (app.db.clone(), caller.clone());
            let versions = args.versions;
            async move {
                let model = create_model(
                    &db,
                    &caller,
                    NewModel {
                        project_id: project,
                        fields: ModelFields {
                            name: Patch::Set(format!("model-{i:05}")),
                            description: Patch::Set(format!("Benchmark model number {i}")),
                            provider: Patch::Set("bench".into()),
                            model_task_type: Patch::Set("classification".into()),
                            framework: Patch::Set(["torch", "onnx", "sklearn"][i % 3].into()),
                            capabilities: Patch::Set(vec!["scoring".into()]),
                            ..ModelFields::default()
                        },
                    },
                )
                .await
                .expect("seed model");
                for v in 1..=versions {
                    create_version(
                        &db,
                        &caller,
                        NewModelVersion {
                            model_id: model.id,
                            version: format!("v{v}"),
                            description: None,
                            release_date: None,
                            training_run_id: None,
                            metrics: Some(model_registry::values::JsonText(json!({ "auc": 0.9 }))),
                        },
                    )
                    .await
                    .expect("seed version");
                }
            }
        })
        .await;
    let seeded = seed_start.elapsed();
    // Printed at once, so a caller can time the seeding alone (its CPU, say) as it ends.
    eprintln!(
        "seeded {} models x {} versions in {:.1} s: {:.0} models/s, {:.1} statements per model",
        args.models,
        args.versions,
        seeded.as_secs_f64(),
        args.models as f64 / seeded.as_secs_f64(),
        (app.db.query_count() - seed_statements) as f64 / args.models as f64
    );
    if args.seed_only {
        return;
    }
    if let Some(url) = args
        .database_url
        .as_deref()
        .filter(|u| u.starts_with("postgres"))
    {
        // What autovacuum reaches on a live server: statistics and a visibility map.
        let status = std::process::Command::new("psql")
            .args([url, "-qc", "VACUUM ANALYZE"])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "VACUUM ANALYZE through psql failed"
        );
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = router(app.clone());
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    // The same server with the response cache off: what executing every request costs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uncached_base = format!("http://{}", listener.local_addr().unwrap());
    let mut uncached = app.clone();
    uncached.config = std::sync::Arc::new(Config {
        response_cache_bytes: 0,
        ..(*app.config).clone()
    });
    let service = router(uncached);
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    let graphql_at = |base: &str, query: String| {
        let (url, key) = (format!("{base}/graphql"), admin.clone());
        move |client: &reqwest::Client| {
            client
                .post(&url)
                .bearer_auth(&key)
                .json(&json!({ "query": query }))
        }
    };
    let graphql = |query: String| graphql_at(&base, query);
    // Warm the pool, the page cache and the statement caches.
    load(args.clients, 2, graphql(QUERY.to_owned())).await;
    let before = app.db.query_count();
    let api = load(args.clients, args.seconds, graphql(QUERY.to_owned())).await;
    let statements = (app.db.query_count() - before) as f64 / api.requests as f64;
    let mut extra = Vec::new();
    let mut queries = vec![QUERY_WITH_COUNTS.to_owned()];
    queries.extend(args.queries.iter().cloned());
    for query in &queries {
        extra.push((
            query.clone(),
            load(args.clients, args.seconds, graphql(query.clone())).await,
        ));
    }
    load(
        args.clients,
        2,
        graphql_at(&uncached_base, QUERY.to_owned()),
    )
    .await;
    let before = app.db.query_count();
    let executed = load(
        args.clients,
        args.seconds,
        graphql_at(&uncached_base, QUERY.to_owned()),
    )
    .await;
    let executed_statements = (app.db.query_count() - before) as f64 / executed.requests as f64;
    let health_url = format!("{base}/healthz");
    let health = load(
        args.clients,
        args.seconds,
        move |client: &reqwest::Client| client.get(&health_url),
    )
    .await;

    println!(
        "backend: {backend}; seeded {} models x {} versions in {:.1} s",
        args.models,
        args.versions,
        seeded.as_secs_f64()
    );
    println!(
        "{} clients, {} s each, statements per models request: {statements:.1} \
         (executed every time: {executed_statements:.1})",
        args.clients, args.seconds
    );
    println!("| request | requests/s | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    println!(
        "{}",
        api.line(&format!("models(first: 50) nested, {backend}"))
    );
    println!(
        "{}",
        executed.line(&format!(
            "models(first: 50) nested, executed every time (cache off), {backend}"
        ))
    );
    for (query, result) in &extra {
        if query == QUERY_WITH_COUNTS {
            println!(
                "{}",
                result.line(&format!("same + totalCount and versionCount, {backend}"))
            );
            continue;
        }
        println!("{}", result.line(&format!("`{query}`")));
    }
    println!("{}", health.line("GET /healthz (loopback ceiling)"));
}
