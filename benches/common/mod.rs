//! What the HTTP benchmarks share: N clients sending one request back to back, and the table
//! line they report.

// Each benchmark uses part of what is here.
#![allow(dead_code)]

pub mod server;

use std::time::{Duration, Instant};

pub struct Load {
    pub requests: usize,
    pub elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    pub fn percentile(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// `| what | requests/s | p50 ms | p95 ms | p99 ms |`
    pub fn line(&self, what: &str) -> String {
        format!(
            "| {what} | {:.0} | {:.2} | {:.2} | {:.2} |",
            self.per_second(),
            self.percentile(0.50),
            self.percentile(0.95),
            self.percentile(0.99)
        )
    }
}

/// `clients` loops sending `request` back to back for `seconds`; every answer must be a 2xx
/// (or a 304, the answer a revalidation is after), read to its end.
pub async fn load(
    clients: usize,
    seconds: u64,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Clone + Send + 'static,
) -> Load {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks = (0..clients).map(|_| {
        let request = request.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = request(&client).send().await.expect("request");
                let status = response.status();
                assert!(
                    status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED,
                    "status {status}"
                );
                let body = response.bytes().await.expect("body");
                assert!(
                    status.is_success() != body.is_empty(),
                    "a body with 2xx only"
                );
                latencies.push(t.elapsed());
            }
            latencies
        })
    });
    let mut latencies: Vec<Duration> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let elapsed = start.elapsed();
    latencies.sort();
    Load {
        requests: latencies.len(),
        elapsed,
        latencies,
    }
}
