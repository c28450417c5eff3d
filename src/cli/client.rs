//! The HTTP client the `push` and `pull` commands share: GraphQL calls that retry what the
//! server marks retryable, lookups of models and versions by name, progress bars. It speaks
//! the same GraphQL API and REST sidecar as any other client.

use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) server: String,
    pub(super) key: String,
    /// How long a failure that may pass (a server restarting, a network blip) is retried.
    pub(super) retry_for: Duration,
}

/// One failed try: what went wrong, and whether trying again may help.
pub(super) struct Failure {
    pub error: anyhow::Error,
    pub retry: bool,
}

impl Client {
    pub fn new(server: &str, key: &str, retry_for: Duration) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Client {
            http,
            server: server.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            retry_for,
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or failures that may pass have lasted
    /// `retry_for`; `waiting` hears each wait ("server unreachable (connection refused),
    /// retrying in 4 s") so a progress bar can show it. Giving up says why and that running the
    /// same command again resumes.
    pub(super) async fn retrying<T>(
        &self,
        what: &str,
        mut attempt: impl AsyncFnMut() -> Result<T, Failure>,
        waiting: impl Fn(Option<String>),
    ) -> anyhow::Result<T> {
        let mut since: Option<std::time::Instant> = None;
        let mut tries = 0u32;
        loop {
            match attempt().await {
                Ok(value) => {
                    if since.is_some() {
                        waiting(None);
                    }
                    return Ok(value);
                }
                Err(Failure { error, retry }) => {
                    let first = *since.get_or_insert_with(std::time::Instant::now);
                    let wait = backoff(tries);
                    tries += 1;
                    if !retry || first.elapsed() + wait > self.retry_for {
                        if !retry {
                            // Callers read these (`NOT_FOUND: …` means "create it"): unchanged.
                            return Err(error);
                        }
                        return Err(error.context(format!(
                            "{what}: gave up after {} s. Nothing sent so far is lost: run the \
                             same command again and it resumes where it stopped",
                            first.elapsed().as_secs()
                        )));
                    }
                    waiting(Some(format!(
                        "server unreachable ({}), retrying in {} s",
                        root_cause(&error),
                        wait.as_secs().max(1)
                    )));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Runs one GraphQL operation; an error answer becomes `CODE: message`. Answers the server
    /// marks retryable (database unavailable, storage full: nothing was done) and connections
    /// that never reached the server are tried again for `retry_for`.
    pub async fn gql(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        self.retrying(
            "calling the API",
            async || {
                let (result, retry) = self.gql_once(query, &variables).await;
                result.map_err(|error| Failure { error, retry })
            },
            |message| {
                if let Some(message) = message {
                    eprintln!("{message}");
                }
            },
        )
        .await
    }

    /// One try: the answer, and whether trying again may help.
    async fn gql_once(&self, query: &str, variables: &Value) -> (anyhow::Result<Value>, bool) {
        let sent = self
            .http
            .post(format!("{}/graphql", self.server))
            .bearer_auth(&self.key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                // Only a request that never reached the server is safe to send again blindly.
                let retry = e.is_connect();
                return (
                    Err(anyhow!(e).context(format!("reaching {}", self.server))),
                    retry,
                );
            }
        };
        let status = response.status();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(e) => {
                let error =
                    anyhow!(e).context(format!("the server answered {status} without JSON"));
                return (Err(error), retryable(status, &Value::Null));
            }
        };
        if let Some(error) = body["errors"].get(0).or_else(|| body.get("error")) {
            let code = error["extensions"]["code"]
                .as_str()
                .or_else(|| error["code"].as_str())
                .unwrap_or("ERROR");
            let message = error["message"].as_str().unwrap_or("failed");
            return (Err(anyhow!("{code}: {message}")), retryable(status, &body));
        }
        (Ok(body["data"].clone()), false)
    }
}

/// Whether an answer says "later, nothing was done": the server's `retryable` mark (GraphQL
/// extensions or the REST envelope), or a status that means the same (408, 429, 503, 507).
/// Not 502 or 504: a proxy says those after the server may have run the request.
pub fn retryable(status: reqwest::StatusCode, body: &Value) -> bool {
    let marked =
        body["errors"][0]["extensions"]["retryable"] == true || body["error"]["retryable"] == true;
    marked || matches!(status.as_u16(), 408 | 429 | 503 | 507)
}

/// 0.5, 1, 2, 4, then every 8 seconds.
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 * 2u64.pow(attempt.min(4)))
}

/// The innermost cause of an error, in words: "connection refused" rather than "error sending
/// request for url (…)".
pub(super) fn root_cause(error: &anyhow::Error) -> String {
    let innermost = error.chain().last().map(ToString::to_string);
    let refused = error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    if refused {
        "connection refused".to_owned()
    } else {
        innermost.unwrap_or_else(|| "unknown error".to_owned())
    }
}

pub(super) fn bar(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(transfer_style());
    bar.set_message(label.to_owned());
    bar
}

fn transfer_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:24!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .expect("the template is valid")
    .progress_chars("=> ")
}

/// Shows a wait on `bar` in full ("server unreachable (connection refused), retrying in 4 s"),
/// in place of the rate and eta, which a stalled transfer makes meaningless; `None` puts the
/// transfer's line back, its rate measured afresh.
pub(super) fn show_wait(bar: &ProgressBar, waiting: Option<String>, label: &str) {
    match waiting {
        Some(message) => {
            if bar.is_hidden() {
                // Not a terminal (a CI log): the wait still deserves a line.
                eprintln!("{message}");
            }
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar.set_message(message);
        }
        None => {
            bar.set_style(transfer_style());
            bar.set_message(label.to_owned());
            bar.reset_eta();
        }
    }
}

/// Hashes a file with a progress bar.
pub(super) async fn hash_file(path: &Path, size: u64) -> anyhow::Result<String> {
    let progress = bar(size, &format!("hashing {}", file_label(path)));
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress.inc(n as u64);
    }
    progress.finish_and_clear();
    Ok(hex::encode(hasher.finalize()))
}

pub(super) fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub(super) async fn model_id(
    client: &Client,
    project: &str,
    model: &str,
    create: bool,
) -> anyhow::Result<String> {
    let found = client
        .gql(
            "query($p: String!, $n: String!) { modelByName(project: $p, name: $n) { id } }",
            json!({ "p": project, "n": model }),
        )
        .await;
    match found {
        Ok(data) => Ok(data["modelByName"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()),
        Err(e) if create && e.to_string().starts_with("NOT_FOUND") => {
            let projects = client
                .gql("{ projects(first: 1000) { nodes { id slug } } }", json!({}))
                .await?;
            let project_id = projects["projects"]["nodes"]
                .as_array()
                .and_then(|nodes| nodes.iter().find(|p| p["slug"] == project))
                .and_then(|p| p["id"].as_str())
                .ok_or_else(|| anyhow!("no project `{project}` visible to this key"))?
                .to_owned();
            let created = client
                .gql(
                    "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                    json!({ "i": { "projectId": project_id, "name": model } }),
                )
                .await?;
            eprintln!("created model `{model}` in project `{project}`");
            Ok(created["createModel"]["model"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned())
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn version_id(
    client: &Client,
    model: &str,
    label: &str,
    create: bool,
) -> anyhow::Result<Option<String>> {
    let data = client
        .gql(
            "query($m: ID!, $l: String!) { model(id: $m) { version(label: $l) { id } } }",
            json!({ "m": model, "l": label }),
        )
        .await?;
    if let Some(id) = data["model"]["version"]["id"].as_str() {
        return Ok(Some(id.to_owned()));
    }
    if !create {
        return Ok(None);
    }
    let created = client
        .gql(
            "mutation($i: CreateModelVersionInput!) { createModelVersion(input: $i) { modelVersion { id } } }",
            json!({ "i": { "modelId": model, "version": label } }),
        )
        .await?;
    eprintln!("created version `{label}`");
    Ok(created["createModelVersion"]["modelVersion"]["id"]
        .as_str()
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn later_is_told_apart_from_wrong() {
        let none = Value::Null;
        for status in [408, 429, 503, 507] {
            assert!(
                retryable(StatusCode::from_u16(status).unwrap(), &none),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 409, 412, 413, 502, 504] {
            assert!(
                !retryable(StatusCode::from_u16(status).unwrap(), &none),
                "{status}"
            );
        }
        let unavailable =
            json!({ "errors": [{ "extensions": { "code": "UNAVAILABLE", "retryable": true } }] });
        assert!(retryable(StatusCode::OK, &unavailable));
        let bad = json!({ "errors": [{ "extensions": { "code": "BAD_USER_INPUT" } }] });
        assert!(!retryable(StatusCode::OK, &bad));
        let full = json!({ "error": { "code": "INSUFFICIENT_STORAGE", "retryable": true } });
        assert!(retryable(StatusCode::INSUFFICIENT_STORAGE, &full));
    }
}
