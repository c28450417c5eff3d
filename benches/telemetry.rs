//! Telemetry at fleet scale: how fast inference sessions are ingested (batches of 1,000 and
//! 10,000 over REST) and how fast `Model.telemetry` answers windows of 1 hour, 1 day and 30
//! days once 1M and 10M sessions are stored, with the server's memory.
//!
//! cargo bench --bench telemetry -- [--database-url URL] [--events 10000000]
//!                                  [--checkpoint 1000000] [--clients 4] [--seconds 5]
//!                                  [--devices 10000]
//!
//! The server is the release binary in its own process. Sessions are spread evenly over 29
//! days ending now (about 345,000 a day at 10M), in the order a fleet sends them, across three
//! versions of one model and `--devices` devices; latencies are log-normal. Until the
//! checkpoint, the first half is sent in batches of 1,000 and the second in batches of 10,000;
//! the rest in batches of 10,000. `--clients` requests are in flight at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

mod common;
use common::load;
use common::server::{Server, gql, peak_rss_mib, start_server, wait_ready};

struct Args {
    database_url: Option<String>,
    events: u64,
    checkpoint: u64,
    clients: usize,
    seconds: u64,
    devices: u64,
}

fn args() -> Args {
    let mut args = Args {
        database_url: None,
        events: 10_000_000,
        checkpoint: 1_000_000,
        clients: 4,
        seconds: 5,
        devices: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag needs a value");
        match flag.as_str() {
            "--database-url" => args.database_url = Some(value()),
            "--events" => args.events = value().parse().unwrap(),
            "--checkpoint" => args.checkpoint = value().parse().unwrap(),
            "--clients" => args.clients = value().parse().unwrap(),
            "--seconds" => args.seconds = value().parse().unwrap(),
            "--devices" => args.devices = value().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args));
}

/// Where the sessions are and what they look like: event `k` of `total`.
struct Fleet {
    model: String,
    start: DateTime<Utc>,
    step_micros: i64,
    devices: u64,
}

impl Fleet {
    fn at(&self, k: u64) -> DateTime<Utc> {
        self.start + Duration::microseconds(self.step_micros * k as i64)
    }

    /// One NDJSON line per event, written by hand: the generator shares the machine with the
    /// server and should cost it little.
    fn batch(&self, from: u64, to: u64) -> String {
        let mut out = String::with_capacity((to - from) as usize * 260);
        for k in from..to {
            // A reproducible spread: log-normal latency from two hashed uniforms.
            let h = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            let v = (((h.rotate_left(29)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            let normal = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            let latency = (3.5 + 0.6 * normal).exp();
            let version = match k % 10 {
                0..=5 => "v1",
                6..=8 => "v2",
                _ => "v3",
            };
            out.push_str(&format!(
                "{{\"id\":\"{:08x}-0000-7000-8000-{:012x}\",\"model\":\"{}\",\"version\":\"{version}\",\"deviceId\":\"dev-{}\",\"startedAt\":\"{}\",\"latencyMs\":{latency:.3},\"timeToFirstTokenMs\":{:.3},\"inputTokens\":{},\"outputTokens\":{},\"success\":{}}}\n",
                k >> 48,
                k & 0xFFFF_FFFF_FFFF,
                self.model,
                k % self.devices,
                self.at(k).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                latency / 5.0,
                16 + k % 200,
                64 + k % 500,
                k % 50 != 0,
            ));
        }
        out
    }
}

/// Sends events `[from, to)` in batches of `size`, `clients` at a time; answers events/s.
async fn ingest(
    server: &Server,
    fleet: &Arc<Fleet>,
    from: u64,
    to: u64,
    size: u64,
    clients: usize,
) -> f64 {
    let next = Arc::new(AtomicU64::new(from));
    let url = format!("{}/v1/telemetry/inference", server.base);
    let start = Instant::now();
    let tasks = (0..clients).map(|_| {
        let (next, fleet, url, key) =
            (next.clone(), fleet.clone(), url.clone(), server.key.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let a = next.fetch_add(size, Ordering::Relaxed);
                if a >= to {
                    return;
                }
                let b = (a + size).min(to);
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/x-ndjson")
                    .body(fleet.batch(a, b))
                    .send()
                    .await
                    .expect("ingest request");
                assert_eq!(response.status(), 200);
                let receipt: serde_json::Value = response.json().await.unwrap();
                assert_eq!(receipt["accepted"], b - a, "{receipt}");
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    (to - from) as f64 / start.elapsed().as_secs_f64()
}

fn current_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The database's size on disk, in MiB.
fn database_mib(dir: &std::path::Path, url: Option<&str>) -> f64 {
    match url {
        Some(url) => {
            let out = std::process::Command::new("psql")
                .args([url, "-Atc", "SELECT pg_database_size(current_database())"])
                .output()
                .expect("psql");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap_or(0.0)
                / 1048576.0
        }
        None => {
            std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("registry.db"))
                .map(|e| e.metadata().unwrap().len() as f64)
                .sum::<f64>()
                / 1048576.0
        }
    }
}

const QUERY: &str = "query($m: ID!, $from: DateTime!, $to: DateTime!) { model(id: $m) { telemetry(window: { from: $from, to: $to }) { throughputPerMinute totals { sessionCount errorRate percentilesExact latencyMs { mean p50 p95 p99 } timeToFirstTokenMs { p50 p99 } } byVersion { versionId stats { sessionCount latencyMs { p99 } } } fleet { total healthy degraded offline } } } }";

async fn windows(server: &Server, fleet: &Fleet, stored: u64, args: &Args, dir: &std::path::Path) {
    let end = fleet.at(stored - 1) + Duration::seconds(1);
    for (name, span) in [
        ("1 hour", Duration::hours(1)),
        ("1 day", Duration::days(1)),
        ("30 days", Duration::days(30)),
    ] {
        let variables =
            json!({ "m": fleet.model, "from": (end - span).to_rfc3339(), "to": end.to_rfc3339() });
        let answer = gql(&reqwest::Client::new(), server, QUERY, variables.clone()).await;
        let sessions = answer["model"]["telemetry"]["totals"]["sessionCount"].clone();
        let url = format!("{}/graphql", server.base);
        let key = server.key.clone();
        let body = json!({ "query": QUERY, "variables": variables });
        let measured = load(args.clients, args.seconds, move |c: &reqwest::Client| {
            c.post(&url).bearer_auth(&key).json(&body)
        })
        .await;
        println!(
            "| {stored} | {name} | {sessions} | {:.0} | {:.2} | {:.2} | {:.0} |",
            measured.per_second(),
            measured.percentile(0.50),
            measured.percentile(0.99),
            current_rss_mib(server.child.id()),
        );
    }
    println!(
        "stored {stored}: database {:.0} MiB, server peak RSS {:.0} MiB",
        database_mib(dir, args.database_url.as_deref()),
        peak_rss_mib(server.child.id())
    );
}

async fn run(args: Args) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), args.database_url.as_deref());
    wait_ready(&server).await;
    let client = reqwest::Client::new();
    let project = gql(
        &client,
        &server,
        "{ projects { edges { node { id } } } }",
        json!({}),
    )
    .await["projects"]["edges"][0]["node"]["id"]
        .clone();
    let model = gql(&client, &server, r#"mutation($p: ID!) { createModel(input: { projectId: $p, name: "fleet-model" }) { model { id } } }"#, json!({ "p": project })).await["createModel"]["model"]["id"].as_str().unwrap().to_owned();
    for label in ["v1", "v2", "v3"] {
        gql(&client, &server, "mutation($m: ID!, $v: String!) { createModelVersion(input: { modelId: $m, version: $v }) { modelVersion { id } } }", json!({ "m": model, "v": label })).await;
    }
    // Every device sends a heartbeat, so the fleet block counts real devices.
    for from in (0..args.devices).step_by(5_000) {
        let beats: Vec<_> = (from..(from + 5_000).min(args.devices))
            .map(|d| {
                let device_type = ["phone", "board", "server"][(d % 3) as usize];
                json!({ "deviceId": format!("dev-{d}"), "deviceType": device_type })
            })
            .collect();
        let response = client
            .post(format!("{}/v1/telemetry/heartbeats", server.base))
            .bearer_auth(&server.key)
            .json(&beats)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let span = Duration::days(29);
    let fleet = Arc::new(Fleet {
        model,
        start: Utc::now() - span - Duration::minutes(2),
        step_micros: span.num_microseconds().unwrap() / args.events as i64,
        devices: args.devices,
    });
    let backend = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "{backend}, {} clients, {} devices, {} s per window",
        args.clients, args.devices, args.seconds
    );
    // The machine's speed varies from run to run (a shared VM): `/healthz` with the same
    // clients, measured first, says how fast it was during this one.
    let health_url = format!("{}/healthz", server.base);
    let health = load(args.clients, 3, move |c: &reqwest::Client| {
        c.get(&health_url)
    })
    .await;
    println!(
        "| GET /healthz (loopback ceiling, this run) | {:.0} requests/s |",
        health.per_second()
    );
    let half = args.checkpoint / 2;
    let small = ingest(&server, &fleet, 0, half, 1_000, args.clients).await;
    let large = ingest(&server, &fleet, half, args.checkpoint, 10_000, args.clients).await;
    println!("| ingest, batches of 1,000 (0 → {half}) | {small:.0} events/s |");
    println!(
        "| ingest, batches of 10,000 ({half} → {}) | {large:.0} events/s |",
        args.checkpoint
    );
    println!("| stored | window | sessions | requests/s | p50 ms | p99 ms | server RSS MiB |");
    println!("|---|---|---|---|---|---|---|");
    windows(&server, &fleet, args.checkpoint, &args, dir.path()).await;
    if args.events > args.checkpoint {
        let rest = ingest(
            &server,
            &fleet,
            args.checkpoint,
            args.events,
            10_000,
            args.clients,
        )
        .await;
        println!(
            "| ingest, batches of 10,000 ({} → {}) | {rest:.0} events/s |",
            args.checkpoint, args.events
        );
        windows(&server, &fleet, args.events, &args, dir.path()).await;
    }
}
