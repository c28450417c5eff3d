//! Telemetry: who may send, the ingest contract (duplicates, partial rejection, gzip, limits),
//! the answers over windows (exact and sketched percentiles against a brute-force reference),
//! fleet health on a moved clock, training statistics and the raw retention.

use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::support::TestApp;

/// A small deterministic generator: the tests need spread, not cryptographic randomness.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Bimodal: most sessions fast, a third slow and log-normally spread.
    fn latency(&mut self) -> f64 {
        if self.unit() < 0.33 {
            let (u, v) = (self.unit(), self.unit());
            let normal = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            (6.0 + 0.5 * normal).exp()
        } else {
            20.0 + 30.0 * self.unit()
        }
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn session(
    model: &str,
    version: &str,
    device: &str,
    started: DateTime<Utc>,
    latency: f64,
) -> Value {
    json!({
        "id": uuid::Uuid::now_v7(),
        "model": model,
        "version": version,
        "deviceId": device,
        "startedAt": at(started),
        "latencyMs": latency,
        "success": true,
    })
}

/// Posts `body` (a JSON array) to a telemetry route; answers the status and JSON body.
async fn post(app: &TestApp, key: &str, route: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/v1/telemetry/{route}", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The exact value at rank ⌊q·(n−1)⌋, the rule the schema states.
fn exact(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() as f64 - 1.0)) as usize]
}

const TELEMETRY: &str = "query($m: ID!, $from: DateTime!, $to: DateTime!, $v: ID) { model(id: $m) { telemetry(window: { from: $from, to: $to }, versionId: $v) { from to throughputPerMinute totals { sessionCount successCount errorCount successRate errorRate inputTokens outputTokens percentilesExact latencyMs { count mean p50 p95 p99 } timeToFirstTokenMs { count mean p50 p95 p99 } } byVersion { versionId modelVersion { version } stats { sessionCount } } fleet { total healthy degraded offline } } } }";

async fn telemetry(app: &TestApp, model: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    app.ok(
        &app.admin,
        TELEMETRY,
        json!({ "m": model, "from": at(from), "to": at(to) }),
    )
    .await["model"]["telemetry"]
        .clone()
}

/// A model with versions `v1` and `v2` in `project`; answers its id.
async fn model(app: &TestApp, project: &str, name: &str) -> String {
    let model = app.create_model(&app.admin, project, name, json!({})).await;
    app.create_version(&app.admin, &model, "v1").await;
    app.create_version(&app.admin, &model, "v2").await;
    model
}

backends! {
    async fn ingest_keys_send_their_projects_telemetry_and_read_nothing(app) {
        let project = app.default_project().await;
        let other = app.create_project("other").await;
        let ours = model(&app, &project, "ours").await;
        let theirs = model(&app, &other, "theirs").await;
        let their_version = app
            .ok(&app.admin, "query($m: ID!) { model(id: $m) { versions { edges { node { id } } } } }", json!({ "m": theirs }))
            .await["model"]["versions"]["edges"][0]["node"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let organization = app.default_organization().await;
        let refused = app
            .fails(&app.admin, r#"mutation($o: ID!) { createApiKey(input: { name: "d", role: INGEST, organizationId: $o }) { secret } }"#, json!({ "o": organization }), "BAD_USER_INPUT")
            .await;
        assert_eq!(refused["extensions"]["field"], "role");
        let device = app.project_key(&project, "INGEST").await;

        // It sends: by REST, by GraphQL, for its project's models by id or by name.
        let now = Utc::now();
        let (status, receipt) = post(&app, &device, "inference", &json!([
            session(&ours, "v1", "phone-1", now, 12.0),
            session("default/ours", "v2", "phone-1", now, 14.0),
            session(&theirs, "v1", "phone-1", now, 16.0),
            session("other/theirs", "v1", "phone-1", now, 18.0),
            // Another project's version id on one's own model names nothing.
            session(&ours, &their_version, "phone-1", now, 20.0),
        ])).await;
        assert_eq!(status, 200, "{receipt}");
        assert_eq!(receipt["accepted"], 2);
        // Another project's model is refused per event, like a model that does not exist.
        assert_eq!(receipt["rejected"], json!([
            { "index": 2, "code": "NOT_FOUND", "field": null, "message": "model not found" },
            { "index": 3, "code": "NOT_FOUND", "field": null, "message": "model not found" },
            { "index": 4, "code": "NOT_FOUND", "field": null, "message": "model version not found" },
        ]));
        let (status, beat) = post(&app, &device, "heartbeats", &json!([{ "deviceId": "phone-1", "deviceType": "pixel-8" }])).await;
        assert_eq!((status, beat["accepted"].clone()), (200, json!(1)));
        let sent = app
            .ok(&device, r#"mutation($m: String!) { recordInferenceSessions(input: { sessions: [{ id: "0190a0b0-0000-4000-8000-000000000001", model: $m, version: "v1", deviceId: "phone-2", startedAt: "2026-01-01T00:00:00Z", latencyMs: 1, success: true }] }) { receipt { accepted rejected { index field } } } }"#, json!({ "m": ours }))
            .await;
        // (An event older than the retention is refused: it could no longer be recognised as a retry.)
        assert_eq!(sent["recordInferenceSessions"]["receipt"]["rejected"], json!([{ "index": 0, "field": "startedAt" }]));

        // It reads nothing and changes nothing else, over GraphQL and REST.
        for query in [
            "{ models { totalCount } }",
            "{ viewer { role } }",
            "query($p: ID!) { fleetHealth(projectId: $p) { total } }",
            "query($p: ID!) { devices(filter: { projectId: $p }) { totalCount } }",
            r#"mutation($p: ID!) { createApiKey(input: { name: "x", role: INGEST, projectId: $p }) { secret } }"#,
            r#"mutation($p: ID!) { createModel(input: { projectId: $p, name: "x" }) { model { id } } }"#,
        ] {
            app.fails(&device, query, json!({ "p": project }), "FORBIDDEN").await;
        }
        let artifact = app.upload(&app.admin, &ours, None, "w.bin", b"weights").await["id"].as_str().unwrap().to_owned();
        let download = app.client.get(format!("{}/v1/artifacts/{artifact}/download", app.base)).bearer_auth(&device).send().await.unwrap();
        assert_eq!(download.status(), 403);

        // Nothing of the refused events was stored; the accepted ones count.
        let window = telemetry(&app, &theirs, now - Duration::hours(1), now + Duration::minutes(1)).await;
        assert_eq!(window["totals"]["sessionCount"], 0);
        let window = telemetry(&app, &ours, now - Duration::hours(1), now + Duration::minutes(1)).await;
        assert_eq!(window["totals"]["sessionCount"], 2);
        assert_eq!(window["fleet"], json!({ "total": 1, "healthy": 1, "degraded": 0, "offline": 0 }));
    }

    async fn retries_count_once_and_bad_events_never_drop_good_ones(app) {
        let project = app.default_project().await;
        let m = model(&app, &project, "m").await;
        let now = Utc::now();
        let good = session(&m, "v1", "d1", now, 10.0);
        let mut negative = session(&m, "v1", "d1", now, 10.0);
        negative["latencyMs"] = json!(-1.0);
        let mut future = session(&m, "v1", "d1", now + Duration::hours(1), 10.0);
        future["timeToFirstTokenMs"] = json!(1.0);
        let mut wrong_type = session(&m, "v1", "d1", now, 10.0);
        wrong_type["latencyMs"] = json!("fast");
        let unknown_version = session(&m, "v9", "d1", now, 10.0);
        let mut no_id = session(&m, "v1", "d1", now, 10.0);
        no_id.as_object_mut().unwrap().remove("id");
        let other_good = session(&m, "v2", "d2", now, 20.0);
        let batch = json!([good, negative, future, wrong_type, unknown_version, no_id, other_good, good, "not an event"]);
        let (status, receipt) = post(&app, &app.admin, "inference", &batch).await;
        assert_eq!(status, 200, "{receipt}");
        assert_eq!(receipt["accepted"], 2, "{receipt}");
        assert_eq!(receipt["duplicates"], 1, "the same id twice in one batch counts once");
        let rejected: Vec<(u64, String, Value)> = receipt["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap().to_owned(), r["field"].clone()))
            .collect();
        assert_eq!(rejected, vec![
            (1, "BAD_USER_INPUT".into(), json!("latencyMs")),
            (2, "BAD_USER_INPUT".into(), json!("startedAt")),
            (3, "BAD_USER_INPUT".into(), json!("latencyMs")),
            (4, "NOT_FOUND".into(), Value::Null),
            (5, "BAD_USER_INPUT".into(), json!("id")),
            (8, "BAD_USER_INPUT".into(), json!("event")),
        ]);

        // The client retries the whole batch: nothing is counted twice.
        let (_, again) = post(&app, &app.admin, "inference", &batch).await;
        assert_eq!((again["accepted"].clone(), again["duplicates"].clone()), (json!(0), json!(3)));
        let window = telemetry(&app, &m, now - Duration::minutes(5), now + Duration::minutes(5)).await;
        assert_eq!(window["totals"]["sessionCount"], 2);
        assert_eq!(window["totals"]["latencyMs"]["mean"], 15.0);
        let versions: Vec<_> = window["byVersion"].as_array().unwrap().iter().map(|v| (v["modelVersion"]["version"].clone(), v["stats"]["sessionCount"].clone())).collect();
        assert_eq!(versions, vec![(json!("v2"), json!(1)), (json!("v1"), json!(1))]);

        // A batch whose every event is bad stores nothing and still answers per event.
        let (status, receipt) = post(&app, &app.admin, "inference", &json!([negative])).await;
        assert_eq!((status, receipt["accepted"].clone(), receipt["rejected"][0]["index"].clone()), (200, json!(0), json!(0)));
    }

    async fn bodies_are_json_ndjson_or_gzip_and_bounded(app) {
        let project = app.default_project().await;
        let m = model(&app, &project, "m").await;
        let now = Utc::now();
        let lines: String = (0..3)
            .map(|i| format!("{}\n", session(&m, "v1", &format!("d{i}"), now, 5.0 + i as f64)))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(lines.as_bytes()).unwrap();
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base))
            .bearer_auth(&app.admin)
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", "gzip")
            .body(gz.finish().unwrap())
            .send().await.unwrap();
        assert_eq!(response.status(), 200);
        let receipt: Value = response.json().await.unwrap();
        assert_eq!(receipt["accepted"], 3, "{receipt}");

        // A line that is not JSON is one rejected event.
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base))
            .bearer_auth(&app.admin)
            .header("content-type", "application/x-ndjson")
            .body(format!("{}\n{{oops\n", session(&m, "v1", "d1", now, 1.0)))
            .send().await.unwrap();
        let receipt: Value = response.json().await.unwrap();
        assert_eq!((receipt["accepted"].clone(), receipt["rejected"][0]["index"].clone()), (json!(1), json!(1)));

        // More than 10,000 events is 413 for the whole request, and nothing is stored.
        let too_many = format!("{}\n", session(&m, "v1", "d1", now, 1.0)).repeat(10_001);
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base))
            .bearer_auth(&app.admin)
            .header("content-type", "application/x-ndjson")
            .body(too_many)
            .send().await.unwrap();
        assert_eq!(response.status(), 413);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
        let (status, _) = post(&app, &app.admin, "heartbeats", &Value::Array(vec![json!({ "deviceId": "x" }); 10_001])).await;
        assert_eq!(status, 413);

        // Values past their bounds are refused by field.
        let mut slow = session(&m, "v1", "d1", now, 90_000_000.0);
        slow["id"] = json!(uuid::Uuid::now_v7());
        let mut ttft = session(&m, "v1", "d1", now, 5.0);
        ttft["timeToFirstTokenMs"] = json!(6.0);
        let mut tokens = session(&m, "v1", "d1", now, 5.0);
        tokens["outputTokens"] = json!(1u64 << 40);
        let (_, receipt) = post(&app, &app.admin, "inference", &json!([slow, ttft, tokens])).await;
        let fields: Vec<_> = receipt["rejected"].as_array().unwrap().iter().map(|r| r["field"].clone()).collect();
        assert_eq!(fields, vec![json!("latencyMs"), json!("timeToFirstTokenMs"), json!("outputTokens")]);

        // An array of 10,001 tiny values and a gzip body that inflates past 32 MiB are refused
        // without building them.
        let tiny = format!("[{}0]", "0,".repeat(10_000));
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base))
            .bearer_auth(&app.admin).header("content-type", "application/json").body(tiny).send().await.unwrap();
        assert_eq!(response.status(), 413);
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&vec![b' '; 33 * 1024 * 1024]).unwrap();
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base))
            .bearer_auth(&app.admin).header("content-type", "application/json").header("content-encoding", "gzip")
            .body(bomb.finish().unwrap()).send().await.unwrap();
        assert_eq!(response.status(), 413);

        // Other media types and encodings are refused; so is a body that is not an array.
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base))
            .bearer_auth(&app.admin).header("content-type", "text/plain").body("[]").send().await.unwrap();
        assert_eq!(response.status(), 415);
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base))
            .bearer_auth(&app.admin).header("content-type", "application/json").header("content-encoding", "br").body("[]").send().await.unwrap();
        assert_eq!(response.status(), 415);
        let (status, body) = post(&app, &app.admin, "inference", &json!({ "events": [] })).await;
        assert_eq!((status, body["error"]["field"].clone()), (400, json!("body")));
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base)).json(&json!([])).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let window = telemetry(&app, &m, now - Duration::minutes(5), now + Duration::minutes(5)).await;
        assert_eq!(window["totals"]["sessionCount"], 4);
    }

    async fn windows_answer_counts_and_percentiles_within_the_stated_error(app) {
        let project = app.default_project().await;
        let m = model(&app, &project, "m").await;
        let mut rng = Lcg(42);
        // 12,000 sessions over the last 3 days: more than the exact limit, spread over minutes,
        // hours and days so the answer merges every granularity of summary.
        let start = Utc::now() - Duration::days(3);
        let mut latencies = Vec::new();
        let mut ttfts = Vec::new();
        let (mut errors, mut tokens) = (0, 0);
        for batch in 0..4 {
            let events: Vec<Value> = (0..3000)
                .map(|i| {
                    let n = batch * 3000 + i;
                    let started = start + Duration::seconds(n as i64 * 21);
                    let latency = rng.latency();
                    latencies.push(latency);
                    let mut event = session(&m, if n % 4 == 0 { "v2" } else { "v1" }, &format!("d{}", n % 50), started, latency);
                    if n % 10 == 0 {
                        event["success"] = json!(false);
                        event["errorCode"] = json!("OOM");
                        errors += 1;
                    }
                    if n % 3 == 0 {
                        let ttft = latency / 4.0;
                        ttfts.push(ttft);
                        event["timeToFirstTokenMs"] = json!(ttft);
                    }
                    event["inputTokens"] = json!(n % 7);
                    tokens += n % 7;
                    event
                })
                .collect();
            let (status, receipt) = post(&app, &app.admin, "inference", &Value::Array(events)).await;
            assert_eq!((status, receipt["accepted"].clone()), (200, json!(3000)), "{receipt}");
        }
        latencies.sort_by(f64::total_cmp);
        ttfts.sort_by(f64::total_cmp);

        let window = telemetry(&app, &m, start - Duration::hours(1), Utc::now()).await;
        let totals = &window["totals"];
        assert_eq!(totals["sessionCount"], 12_000);
        assert_eq!(totals["errorCount"], errors);
        assert_eq!(totals["successCount"], 12_000 - errors);
        assert_eq!(totals["inputTokens"], tokens);
        assert_eq!(totals["percentilesExact"], false);
        assert!((totals["errorRate"].as_f64().unwrap() - errors as f64 / 12_000.0).abs() < 1e-9);
        let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
        assert!((totals["latencyMs"]["mean"].as_f64().unwrap() - mean).abs() < 1e-6 * mean);
        for (name, sorted, stats) in [("latency", &latencies, &totals["latencyMs"]), ("ttft", &ttfts, &totals["timeToFirstTokenMs"])] {
            assert_eq!(stats["count"], sorted.len());
            for (field, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
                let expected = exact(sorted, q);
                let got = stats[field].as_f64().unwrap();
                assert!((got - expected).abs() <= 0.01 * expected, "{name} {field}: {got} vs exact {expected}");
            }
        }
        let minutes = window["throughputPerMinute"].as_f64().unwrap();
        assert!(minutes > 0.0);

        // A window of at most 10,000 sessions inside the retention is answered exactly.
        use chrono::DurationRound;
        let from = (start + Duration::hours(10)).duration_trunc(Duration::minutes(1)).unwrap();
        let to = (start + Duration::hours(20)).duration_trunc(Duration::minutes(1)).unwrap();
        let small = telemetry(&app, &m, from, to).await;
        let (a, b) = (from.timestamp(), to.timestamp());
        let mut inside: Vec<f64> = Vec::new();
        let mut rng = Lcg(42);
        for n in 0..12_000i64 {
            let t = (start + Duration::seconds(n * 21)).timestamp();
            let latency = rng.latency();
            if t >= a && t < b {
                inside.push(latency);
            }
        }
        inside.sort_by(f64::total_cmp);
        assert_eq!(small["totals"]["sessionCount"], inside.len());
        assert_eq!(small["totals"]["percentilesExact"], true);
        assert_eq!(small["totals"]["latencyMs"]["p95"], exact(&inside, 0.95));

        // Buckets add up to the window; an empty window answers zeros, not NOT_FOUND.
        let series = app
            .ok(&app.admin, "query($m: ID!, $from: DateTime!, $to: DateTime!) { model(id: $m) { telemetry(window: { from: $from, to: $to }) { timeSeries(bucket: HOUR) { start stats { sessionCount latencyMs { p50 } } } } } }", json!({ "m": m, "from": at(start - Duration::hours(1)), "to": at(Utc::now()) }))
            .await;
        let buckets = series["model"]["telemetry"]["timeSeries"].as_array().unwrap().clone();
        assert!(buckets.len() >= 72);
        let sum: i64 = buckets.iter().map(|b| b["stats"]["sessionCount"].as_i64().unwrap()).sum();
        assert_eq!(sum, 12_000);
        assert!(buckets.iter().any(|b| b["stats"]["sessionCount"] == 0 && b["stats"]["latencyMs"]["p50"].is_null()));
        let refused = app
            .fails(&app.admin, "query($m: ID!, $from: DateTime!, $to: DateTime!) { model(id: $m) { telemetry(window: { from: $from, to: $to }) { timeSeries(bucket: MINUTE) { start } } } }", json!({ "m": m, "from": at(start - Duration::days(20)), "to": at(Utc::now()) }), "BAD_USER_INPUT")
            .await;
        assert_eq!(refused["extensions"]["field"], "bucket");
        let empty = telemetry(&app, &m, start - Duration::days(10), start - Duration::days(9)).await;
        assert_eq!(empty["totals"]["sessionCount"], 0);
        assert_eq!(empty["totals"]["successRate"], Value::Null);
        assert_eq!(empty["totals"]["latencyMs"], json!({ "count": 0, "mean": null, "p50": null, "p95": null, "p99": null }));
        assert_eq!(empty["byVersion"], json!([]));
        let v2 = app
            .ok(&app.admin, TELEMETRY, json!({ "m": m, "from": at(start - Duration::hours(1)), "to": at(Utc::now()), "v": window["byVersion"][0]["versionId"] }))
            .await;
        assert_eq!(v2["model"]["telemetry"]["totals"]["sessionCount"], 3000);
        app.fails(&app.admin, TELEMETRY, json!({ "m": m, "from": at(Utc::now()), "to": at(start) }), "BAD_USER_INPUT").await;
    }

    async fn concurrent_batches_into_one_minute_lose_nothing(app) {
        let project = app.default_project().await;
        let m = model(&app, &project, "m").await;
        let now = Utc::now();
        let batches: Vec<Value> = (0..8)
            .map(|b| Value::Array((0..250).map(|i| session(&m, "v1", &format!("d{b}-{i}"), now, 1.0 + (b * 250 + i) as f64)).collect()))
            .collect();
        let sends = batches.iter().map(|batch| post(&app, &app.admin, "inference", batch));
        for (status, receipt) in futures::future::join_all(sends).await {
            assert_eq!((status, receipt["accepted"].clone()), (200, json!(250)), "{receipt}");
        }
        let window = telemetry(&app, &m, now - Duration::minutes(1), now + Duration::minutes(1)).await;
        assert_eq!(window["totals"]["sessionCount"], 2000);
        assert_eq!(window["totals"]["latencyMs"]["p50"], 1000.0);
        // The series always reads the summaries: the concurrent merges lost no value.
        let series = app
            .ok(&app.admin, "query($m: ID!, $from: DateTime!, $to: DateTime!) { model(id: $m) { telemetry(window: { from: $from, to: $to }) { timeSeries(bucket: DAY) { stats { sessionCount latencyMs { count p50 } } } } } }", json!({ "m": m, "from": at(now - Duration::minutes(1)), "to": at(now + Duration::minutes(1)) }))
            .await;
        let buckets = series["model"]["telemetry"]["timeSeries"].as_array().unwrap().clone();
        let counted: i64 = buckets.iter().map(|b| b["stats"]["latencyMs"]["count"].as_i64().unwrap()).sum();
        assert_eq!(counted, 2000);
        let busy = buckets.iter().find(|b| b["stats"]["sessionCount"].as_i64().unwrap() > 1000).unwrap();
        let p50 = busy["stats"]["latencyMs"]["p50"].as_f64().unwrap();
        let sorted: Vec<f64> = (1..=2000).map(f64::from).collect();
        if buckets.len() == 1 {
            assert!((p50 - exact(&sorted, 0.5)).abs() <= 0.01 * exact(&sorted, 0.5), "{p50}");
        }
        assert_eq!(window["fleet"]["total"], 2000);
        assert_eq!(window["fleet"]["offline"], 2000, "events alone do not make a device healthy");
    }

    async fn overlapping_batches_count_each_event_once(app) {
        let project = app.default_project().await;
        let m = model(&app, &project, "m").await;
        let now = Utc::now();
        let events: Vec<Value> = (0..700)
            .map(|i| session(&m, "v1", &format!("d{}", i % 7), now, 1.0 + i as f64))
            .collect();
        // In turn: the second batch finds its first half stored (more events than one
        // statement takes, so several statements each skip some).
        let (_, first) = post(&app, &app.admin, "inference", &Value::Array(events[..200].to_vec())).await;
        assert_eq!((first["accepted"].clone(), first["duplicates"].clone()), (json!(200), json!(0)), "{first}");
        let (_, second) = post(&app, &app.admin, "inference", &Value::Array(events[100..300].to_vec())).await;
        assert_eq!((second["accepted"].clone(), second["duplicates"].clone()), (json!(100), json!(100)), "{second}");
        // At once, each batch overlapping the next: every event is counted by exactly one
        // request, whichever requests share a transaction.
        let batches: Vec<Value> = (0..4)
            .map(|k| Value::Array(events[300 + k * 80..300 + k * 80 + 160].to_vec()))
            .collect();
        let receipts = futures::future::join_all(batches.iter().map(|b| post(&app, &app.admin, "inference", b))).await;
        let accepted: i64 = receipts.iter().map(|(_, r)| r["accepted"].as_i64().unwrap()).sum();
        let duplicates: i64 = receipts.iter().map(|(_, r)| r["duplicates"].as_i64().unwrap()).sum();
        assert_eq!((accepted, duplicates), (400, 4 * 160 - 400));
        let window = telemetry(&app, &m, now - Duration::minutes(5), now + Duration::minutes(5)).await;
        assert_eq!(window["totals"]["sessionCount"], 700);
        assert_eq!(window["totals"]["latencyMs"]["mean"], 350.5);
    }

    async fn fleet_health_follows_the_age_of_the_last_heartbeat(app) {
        let project = app.default_project().await;
        let (status, receipt) = post(&app, &app.admin, "heartbeats", &json!([
            { "project": "default", "deviceId": "a", "deviceType": "phone", "os": "android 15", "labels": { "region": "eu" } },
            { "project": project, "deviceId": "b", "deviceType": "board" },
            { "deviceId": "c" },
            { "project": "default", "deviceId": "  " },
        ])).await;
        assert_eq!(status, 200);
        assert_eq!(receipt["accepted"], 2);
        // An instance key names the project; a blank device id is refused.
        assert_eq!(receipt["rejected"][0]["field"], "project");
        assert_eq!(receipt["rejected"][1]["field"], "deviceId");
        let m = model(&app, &project, "m").await;
        post(&app, &app.admin, "inference", &json!([session(&m, "v1", "c", Utc::now(), 1.0)])).await;
        const FLEET: &str = "query($p: ID!) { fleetHealth(projectId: $p) { total healthy degraded offline byDeviceType { deviceType counts { total healthy degraded offline } } } }";
        let fleet = app.ok(&app.admin, FLEET, json!({ "p": project })).await["fleetHealth"].clone();
        assert_eq!((fleet["total"].clone(), fleet["healthy"].clone(), fleet["offline"].clone()), (json!(3), json!(2), json!(1)));
        assert_eq!(fleet["byDeviceType"], json!([
            { "deviceType": null, "counts": { "total": 1, "healthy": 0, "degraded": 0, "offline": 1 } },
            { "deviceType": "board", "counts": { "total": 1, "healthy": 1, "degraded": 0, "offline": 0 } },
            { "deviceType": "phone", "counts": { "total": 1, "healthy": 1, "degraded": 0, "offline": 0 } },
        ]));

        // Ten minutes without heartbeats: degraded. One heartbeat later, `a` is healthy again,
        // keeping what it did not resend.
        app.app.clock.advance(std::time::Duration::from_secs(600));
        let fleet = app.ok(&app.admin, FLEET, json!({ "p": project })).await["fleetHealth"].clone();
        assert_eq!((fleet["healthy"].clone(), fleet["degraded"].clone(), fleet["offline"].clone()), (json!(0), json!(2), json!(1)));
        post(&app, &app.admin, "heartbeats", &json!([{ "project": "default", "deviceId": "a", "runtimeVersion": "2.0" }])).await;
        const DEVICES: &str = "query($h: DeviceHealth) { devices(filter: { health: $h }) { totalCount edges { node { externalId deviceType os runtimeVersion labels { name value } health lastHeartbeatAt } } } }";
        let healthy = app.ok(&app.admin, DEVICES, json!({ "h": "HEALTHY" })).await["devices"].clone();
        assert_eq!(healthy["totalCount"], 1);
        let a = &healthy["edges"][0]["node"];
        assert_eq!((a["externalId"].clone(), a["deviceType"].clone(), a["os"].clone(), a["runtimeVersion"].clone()), (json!("a"), json!("phone"), json!("android 15"), json!("2.0")));
        assert_eq!(a["labels"], json!([{ "name": "region", "value": "eu" }]));
        let boards = app.ok(&app.admin, "query($p: ID!) { devices(filter: { projectId: $p, deviceType: \"board\" }) { edges { node { externalId } } } }", json!({ "p": project })).await;
        assert_eq!(boards["devices"]["edges"], json!([{ "node": { "externalId": "b" } }]));
        let degraded = app.ok(&app.admin, DEVICES, json!({ "h": "DEGRADED" })).await["devices"].clone();
        assert_eq!(degraded["edges"][0]["node"]["externalId"], "b");
        let offline = app.ok(&app.admin, DEVICES, json!({ "h": "OFFLINE" })).await["devices"].clone();
        assert_eq!((offline["totalCount"].clone(), offline["edges"][0]["node"]["lastHeartbeatAt"].clone()), (json!(1), Value::Null));

        // Past the offline threshold every device is offline.
        app.app.clock.advance(std::time::Duration::from_secs(2 * 3600));
        let fleet = app.ok(&app.admin, FLEET, json!({ "p": project })).await["fleetHealth"].clone();
        assert_eq!(fleet["offline"], 3);
        let all = app.ok(&app.admin, "{ devices(first: 2) { totalCount pageInfo { hasNextPage endCursor } edges { node { id externalId } } } }", json!({})).await["devices"].clone();
        assert_eq!(all["totalCount"], 3);
        let next = app.ok(&app.admin, "query($after: String) { devices(first: 2, after: $after) { edges { node { externalId } } } }", json!({ "after": all["pageInfo"]["endCursor"] })).await;
        assert_eq!(next["devices"]["edges"], json!([{ "node": { "externalId": "c" } }]));
        let id = all["edges"][0]["node"]["id"].clone();
        let node = app.ok(&app.admin, "query($id: ID!) { node(id: $id) { ... on Device { externalId } } device(id: $id) { health project { slug } } }", json!({ "id": id })).await;
        assert_eq!(node["node"]["externalId"], "a");
        assert_eq!(node["device"], json!({ "health": "OFFLINE", "project": { "slug": "default" } }));
    }

    async fn training_updates_report_per_version_metric_and_device(app) {
        let project = app.default_project().await;
        let m = model(&app, &project, "m").await;
        let now = Utc::now();
        let mut rng = Lcg(9);
        let mut losses = Vec::new();
        let mut updates = Vec::new();
        for i in 0..300 {
            let loss = 0.1 + rng.unit();
            losses.push(loss);
            updates.push(json!({
                "id": uuid::Uuid::now_v7(),
                "model": m,
                "version": "v1",
                "deviceId": format!("d{}", i % 3),
                "sampleCount": 10,
                "metrics": { "loss": loss, "accuracy": 0.5 },
                "recordedAt": at(now - Duration::minutes(300 - i as i64)),
            }));
        }
        let (status, receipt) = post(&app, &app.admin, "training-updates", &Value::Array(updates.clone())).await;
        assert_eq!((status, receipt["accepted"].clone()), (200, json!(300)), "{receipt}");
        let (_, again) = post(&app, &app.admin, "training-updates", &Value::Array(updates[..5].to_vec())).await;
        assert_eq!(again["duplicates"], 5);
        let mut bad = updates[0].clone();
        bad["id"] = json!(uuid::Uuid::now_v7());
        bad["metrics"] = json!({ "loss": "high" });
        let (_, receipt) = post(&app, &app.admin, "training-updates", &json!([bad])).await;
        assert_eq!(receipt["rejected"][0]["field"], "metrics");
        let sent = app
            .ok(&app.admin, r#"mutation($m: String!, $id: ID!, $at: DateTime!) { recordTrainingUpdates(input: { updates: [{ id: $id, model: $m, version: "v2", deviceId: "d9", sampleCount: 4, metrics: [{ name: "loss", value: 0.25 }], recordedAt: $at }] }) { receipt { accepted } } }"#, json!({ "m": m, "id": uuid::Uuid::now_v7(), "at": at(now) }))
            .await;
        assert_eq!(sent["recordTrainingUpdates"]["receipt"]["accepted"], 1);

        // A later batch with an older update does not replace the latest metrics; a metric
        // named twice (after trimming) is refused.
        let older = json!([{ "id": uuid::Uuid::now_v7(), "model": m, "version": "v1", "deviceId": "d0", "sampleCount": 1, "metrics": { "loss": 9.0 }, "recordedAt": at(now - Duration::hours(20)) }]);
        let (_, receipt) = post(&app, &app.admin, "training-updates", &older).await;
        assert_eq!(receipt["accepted"], 1);
        losses.push(9.0);
        let twice = app
            .ok(&app.admin, r#"mutation($m: String!, $id: ID!, $at: DateTime!) { recordTrainingUpdates(input: { updates: [{ id: $id, model: $m, version: "v2", deviceId: "d9", sampleCount: 1, metrics: [{ name: "loss", value: 1 }, { name: " loss", value: 2 }], recordedAt: $at }] }) { receipt { rejected { field message } } } }"#, json!({ "m": m, "id": uuid::Uuid::now_v7(), "at": at(now) }))
            .await;
        assert_eq!(twice["recordTrainingUpdates"]["receipt"]["rejected"][0]["field"], "metrics");
        let stats = app
            .ok(&app.admin, "query($m: ID!) { model(id: $m) { trainingStats { modelVersion { version } updateCount sampleCount deviceCount latestMetrics } } }", json!({ "m": m }))
            .await["model"]["trainingStats"]
            .clone();
        assert_eq!(stats[0], json!({ "modelVersion": { "version": "v2" }, "updateCount": 1, "sampleCount": 4, "deviceCount": 1, "latestMetrics": { "loss": 0.25 } }));
        assert_eq!(stats[1]["updateCount"], 301);
        assert_eq!(stats[1]["sampleCount"], 3001);
        assert_eq!(stats[1]["deviceCount"], 3);
        assert_eq!(stats[1]["latestMetrics"]["loss"], losses[299], "the newest update's metrics");

        let version = app.ok(&app.admin, r#"query($m: ID!) { model(id: $m) { versions { edges { node { id version } } } } }"#, json!({ "m": m })).await;
        let v1 = version["model"]["versions"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["version"] == "v1").unwrap()["node"]["id"].clone();
        let detail = app
            .ok(&app.admin, "query($v: ID!) { modelVersion(id: $v) { trainingStats { updateCount deviceCount metrics { name count min max mean p50 p95 p99 } devices(first: 2) { totalCount pageInfo { hasNextPage endCursor } edges { node { deviceId updateCount sampleCount latestRecordedAt } } } } } }", json!({ "v": v1 }))
            .await["modelVersion"]["trainingStats"]
            .clone();
        assert_eq!(detail["updateCount"], 301);
        let metrics = detail["metrics"].as_array().unwrap();
        assert_eq!(metrics[0]["name"], "accuracy");
        let loss = &metrics[1];
        losses.sort_by(f64::total_cmp);
        assert_eq!((loss["count"].clone(), loss["min"].clone(), loss["max"].clone()), (json!(301), json!(losses[0]), json!(losses[300])));
        for (field, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
            let expected = exact(&losses, q);
            let got = loss[field].as_f64().unwrap();
            assert!((got - expected).abs() <= 0.01 * expected, "{field}: {got} vs {expected}");
        }
        let devices = &detail["devices"];
        assert_eq!(devices["totalCount"], 3);
        assert_eq!(devices["edges"][0]["node"]["deviceId"], "d0");
        assert_eq!(devices["edges"][0]["node"]["updateCount"], 101);
        let rest = app
            .ok(&app.admin, "query($v: ID!, $after: String) { modelVersion(id: $v) { trainingStats { devices(first: 2, after: $after) { edges { node { deviceId } } } } } }", json!({ "v": v1, "after": devices["pageInfo"]["endCursor"] }))
            .await;
        assert_eq!(rest["modelVersion"]["trainingStats"]["devices"]["edges"], json!([{ "node": { "deviceId": "d2" } }]));

        // A version without updates answers zeros, not NOT_FOUND.
        let v3 = app.create_version(&app.admin, &m, "v3").await;
        let none = app
            .ok(&app.admin, "query($v: ID!) { modelVersion(id: $v) { trainingStats { updateCount sampleCount deviceCount latestMetrics metrics { name } devices { totalCount } } } }", json!({ "v": v3 }))
            .await;
        assert_eq!(none["modelVersion"]["trainingStats"], json!({ "updateCount": 0, "sampleCount": 0, "deviceCount": 0, "latestMetrics": null, "metrics": [], "devices": { "totalCount": 0 } }));
    }

    async fn the_retention_removes_raw_events_and_keeps_the_summaries(app) {
        let project = app.default_project().await;
        let m = model(&app, &project, "m").await;
        let started = Utc::now() - Duration::days(1);
        let events: Vec<Value> = (0..20).map(|i| session(&m, "v1", "d", started, 10.0 + i as f64)).collect();
        post(&app, &app.admin, "inference", &Value::Array(events.clone())).await;
        let update = json!([{ "id": uuid::Uuid::now_v7(), "model": m, "version": "v1", "deviceId": "d", "sampleCount": 1, "metrics": { "loss": 1.0 }, "recordedAt": at(started) }]);
        post(&app, &app.admin, "training-updates", &update).await;
        let before = telemetry(&app, &m, started - Duration::hours(1), started + Duration::hours(1)).await;
        assert_eq!(before["totals"]["percentilesExact"], true);

        // A month later the sweep (on any replica) removes the raw rows, once.
        app.app.clock.advance(std::time::Duration::from_secs(30 * 86_400));
        let retention = std::time::Duration::from_secs(3600);
        let swept = model_registry::jobs::sweep(&app.app, retention).await.unwrap();
        assert_eq!(swept.telemetry_removed, 21);
        let again = model_registry::jobs::sweep(&app.app, retention).await.unwrap();
        assert_eq!(again.telemetry_removed, 0);

        // The summaries answer for the old window; a late retry cannot count twice.
        let after = telemetry(&app, &m, started - Duration::hours(1), started + Duration::hours(1)).await;
        assert_eq!(after["totals"]["sessionCount"], 20);
        assert_eq!(after["totals"]["percentilesExact"], false);
        assert_eq!(after["totals"]["latencyMs"]["mean"], before["totals"]["latencyMs"]["mean"]);
        let (_, retry) = post(&app, &app.admin, "inference", &Value::Array(events)).await;
        assert_eq!((retry["accepted"].clone(), retry["rejected"][0]["field"].clone()), (json!(0), json!("startedAt")));
        let training = app.ok(&app.admin, "query($m: ID!) { model(id: $m) { trainingStats { updateCount } } }", json!({ "m": m })).await;
        assert_eq!(training["model"]["trainingStats"][0]["updateCount"], 1);
    }

    async fn the_retention_walks_every_model_and_keeps_younger_events(app) {
        // Two models in two projects, old sessions a few minutes apart (more than one slice of
        // the sweep), and one session younger than the rest.
        let first = model(&app, &app.default_project().await, "first").await;
        let other = app.create_project("other").await;
        let second = model(&app, &other, "second").await;
        let now = Utc::now();
        let old = now - Duration::days(1);
        let mut events: Vec<Value> = (0..6).map(|i| session(&first, "v1", "d", old + Duration::minutes(3 * i), 10.0)).collect();
        events.extend((0..4).map(|i| session(&second, "v2", "d", old + Duration::minutes(i), 20.0)));
        events.push(session(&first, "v1", "d", now, 30.0));
        let (status, receipt) = post(&app, &app.admin, "inference", &Value::Array(events)).await;
        assert_eq!((status, receipt["accepted"].clone()), (200, json!(11)), "{receipt}");

        // Thirty days on, the day-old sessions of both models are past the retention and its
        // margin; the youngest is not, until two hours later.
        app.app.clock.advance(std::time::Duration::from_secs(30 * 86_400));
        let retention = std::time::Duration::from_secs(3600);
        let swept = model_registry::jobs::sweep(&app.app, retention).await.unwrap();
        assert_eq!(swept.telemetry_removed, 10);
        app.app.clock.advance(std::time::Duration::from_secs(2 * 3600));
        let swept = model_registry::jobs::sweep(&app.app, retention).await.unwrap();
        assert_eq!(swept.telemetry_removed, 1);

        // The summaries still count every session of both models.
        for (m, count) in [(&first, 7), (&second, 4)] {
            let window = telemetry(&app, m, old - Duration::hours(1), now + Duration::hours(1)).await;
            assert_eq!(window["totals"]["sessionCount"], count);
        }
    }
}
