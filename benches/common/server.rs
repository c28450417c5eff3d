//! The server as its own process: the release binary started on a free port, so a benchmark
//! measures its memory apart from the load generator's.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub struct Server {
    pub child: Child,
    pub base: String,
    pub key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the release binary (or the one `MR_BENCH_SERVER` names) on a free port with its data
/// in `dir`, on SQLite or on the PostgreSQL database `database_url` names; answers once it
/// printed the admin key.
pub fn start_server(dir: &Path, database_url: Option<&str>) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // MR_BENCH_SERVER runs another build (an earlier commit's) under the same harness.
    let binary = std::env::var_os("MR_BENCH_SERVER")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_model-registry").into());
    let mut command = Command::new(binary);
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let mut child = command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("MR_DATA_DIR", dir)
        .env("MR_JOBS_INTERVAL_SECS", "0")
        .env(
            "RUST_LOG",
            std::env::var("MR_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env_remove("STORAGE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let key = line
        .trim()
        .strip_prefix("Admin API key: ")
        .unwrap()
        .to_owned();
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        key,
    }
}

/// Peak resident memory of a process, from /proc (Linux).
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub async fn gql(
    client: &reqwest::Client,
    server: &Server,
    query: &str,
    variables: Value,
) -> Value {
    let body: Value = client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&server.key)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

pub async fn wait_ready(server: &Server) {
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("{}/readyz", server.base)).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}
