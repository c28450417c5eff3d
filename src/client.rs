//! The command-line client: `push` uploads files as artifacts (resumable, chunks in parallel),
//! `pull` downloads a version's artifacts and verifies every digest. It speaks the same
//! GraphQL API and REST sidecar as any other client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

const RETRIES: u32 = 4;

pub struct Client {
    http: reqwest::Client,
    server: String,
    key: String,
}

impl Client {
    pub fn new(server: &str, key: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Client {
            http,
            server: server.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        })
    }

    /// Runs one GraphQL operation; an error answer becomes `CODE: message`. Answers the server
    /// marks retryable (database unavailable, storage full: nothing was done) and refused
    /// connections are tried again with backoff before they count as failures.
    pub async fn gql(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (result, retry) = self.gql_once(query, &variables).await;
            if !retry || attempt >= RETRIES {
                return result;
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
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

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt.min(6)))
}

fn bar(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:24!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar
}

/// Hashes a file with a progress bar.
async fn hash_file(path: &Path, size: u64) -> anyhow::Result<String> {
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

fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

async fn model_id(
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

async fn version_id(
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

pub struct PushArgs {
    pub server: String,
    pub key: String,
    pub project: String,
    pub model: String,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub parallel: usize,
    pub current: bool,
    pub files: Vec<PathBuf>,
}

const SESSION_FIELDS: &str =
    "id fileName totalSizeBytes chunkSizeBytes chunkCount missingChunks chunkUrlTemplate";

/// Uploads each file; a run interrupted earlier resumes its session and sends only what is
/// missing.
pub async fn push(args: PushArgs) -> anyhow::Result<()> {
    let client = Arc::new(Client::new(&args.server, &args.key)?);
    let model = model_id(&client, &args.project, &args.model, true).await?;
    let version = match &args.version {
        Some(label) => version_id(&client, &model, label, true).await?,
        None => None,
    };
    for path in &args.files {
        let size = tokio::fs::metadata(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let file_name = file_label(path);
        let digest = hash_file(path, size).await?;
        let open = client
            .gql(
                &format!("query($f: UploadSessionFilter!) {{ uploadSessions(filter: $f) {{ nodes {{ {SESSION_FIELDS} }} }} }}"),
                json!({ "f": { "modelId": model, "versionId": version, "status": ["INITIALIZED", "UPLOADING"], "sha256": digest } }),
            )
            .await?;
        let resumable = open["uploadSessions"]["nodes"]
            .as_array()
            .and_then(|nodes| {
                nodes
                    .iter()
                    .find(|s| s["fileName"] == file_name.as_str() && s["totalSizeBytes"] == size)
            })
            .cloned();
        let session = match resumable {
            Some(session) => {
                eprintln!(
                    "resuming upload {} of {file_name}",
                    session["id"].as_str().unwrap_or("")
                );
                session
            }
            None => {
                let mut input = json!({
                    "modelId": model, "versionId": version, "fileName": file_name,
                    "totalSizeBytes": size, "sha256": digest, "isCurrent": args.current,
                });
                if let Some(kind) = &args.kind {
                    input["artifactKind"] = kind.to_uppercase().replace('-', "_").into();
                }
                let created = client
                    .gql(
                        &format!("mutation($i: CreateUploadSessionInput!) {{ createUploadSession(input: $i) {{ uploadSession {{ {SESSION_FIELDS} }} }} }}"),
                        json!({ "i": input }),
                    )
                    .await?;
                created["createUploadSession"]["uploadSession"].clone()
            }
        };
        send_chunks(&client, path, &session, size, args.parallel.max(1)).await?;
        let done = client
            .gql(
                "mutation($i: CompleteUploadSessionInput!) { completeUploadSession(input: $i) { artifact { id sha256 sizeBytes } } }",
                json!({ "i": { "id": session["id"], "sha256": digest } }),
            )
            .await?;
        let artifact = &done["completeUploadSession"]["artifact"];
        println!(
            "{file_name}  artifact {}  sha256:{}",
            artifact["id"].as_str().unwrap_or(""),
            artifact["sha256"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

async fn send_chunks(
    client: &Arc<Client>,
    path: &Path,
    session: &Value,
    size: u64,
    parallel: usize,
) -> anyhow::Result<()> {
    let chunk_size = session["chunkSizeBytes"].as_u64().unwrap_or(0);
    let template = session["chunkUrlTemplate"]
        .as_str()
        .ok_or_else(|| anyhow!("the server gave no chunk URL"))?
        .to_owned();
    let missing: Vec<u64> = session["missingChunks"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let length = |i: u64| chunk_size.min(size - i * chunk_size);
    let still: u64 = missing.iter().map(|i| length(*i)).sum();
    let progress = bar(size, &format!("uploading {}", file_label(path)));
    progress.set_position(size - still);
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(missing)
        .map(|index| {
            let (client, progress, path) = (client.clone(), progress.clone(), path.to_owned());
            let url = template.replace("{index}", &index.to_string());
            let len = length(index);
            async move {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match put_chunk(&client, &url, &path, index * chunk_size, len, &progress).await
                    {
                        Ok(()) => return Ok(()),
                        Err((sent, e)) => {
                            progress.set_position(progress.position().saturating_sub(sent));
                            if attempt >= RETRIES || !e.1 {
                                return Err(anyhow!("chunk {index}: {}", e.0));
                            }
                            tokio::time::sleep(backoff(attempt)).await;
                        }
                    }
                }
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    progress.finish_and_clear();
    results.into_iter().collect()
}

/// Sends one chunk straight from the file. On failure answers the bytes counted so far and
/// whether a retry may help.
async fn put_chunk(
    client: &Client,
    url: &str,
    path: &Path,
    offset: u64,
    len: u64,
    progress: &ProgressBar,
) -> Result<(), (u64, (String, bool))> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| (0, (e.to_string(), false)))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| (0, (e.to_string(), false)))?;
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let bar = progress.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024).inspect(
        move |frame| {
            if let Ok(frame) = frame {
                counter.fetch_add(frame.len() as u64, std::sync::atomic::Ordering::Relaxed);
                bar.inc(frame.len() as u64);
            }
        },
    );
    let result = client
        .http
        .put(url)
        .bearer_auth(&client.key)
        .header(reqwest::header::CONTENT_LENGTH, len)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    match result {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("").to_owned();
            let retry = retryable(status, &body) || status.is_server_error();
            Err((sent, (format!("{status} {message}"), retry)))
        }
        Err(e) => Err((sent, (e.to_string(), true))),
    }
}

pub struct PullArgs {
    pub server: String,
    pub key: String,
    pub project: String,
    pub model: String,
    pub version: Option<String>,
    pub output: PathBuf,
}

const ARTIFACT_FIELDS: &str = "id fileName sizeBytes sha256";

/// Downloads the version's artifacts (the current version's without `--version`; the model's
/// current artifact when it has no current version) and verifies each digest.
pub async fn pull(args: PullArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server, &args.key)?;
    let model = model_id(&client, &args.project, &args.model, false).await?;
    let artifacts: Vec<Value> = match &args.version {
        Some(label) => {
            let data = client
                .gql(
                    &format!("query($m: ID!, $l: String!) {{ model(id: $m) {{ version(label: $l) {{ artifacts(first: 1000) {{ nodes {{ {ARTIFACT_FIELDS} }} }} }} }} }}"),
                    json!({ "m": model, "l": label }),
                )
                .await?;
            let version = &data["model"]["version"];
            if version.is_null() {
                bail!("model `{}` has no version `{label}`", args.model);
            }
            version["artifacts"]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
        None => {
            let data = client
                .gql(
                    &format!("query($m: ID!) {{ model(id: $m) {{ currentVersion {{ artifacts(first: 1000) {{ nodes {{ {ARTIFACT_FIELDS} }} }} }} currentArtifact {{ {ARTIFACT_FIELDS} }} }} }}"),
                    json!({ "m": model }),
                )
                .await?;
            let m = &data["model"];
            match m["currentVersion"]["artifacts"]["nodes"].as_array() {
                Some(nodes) if !nodes.is_empty() => nodes.clone(),
                _ if !m["currentArtifact"].is_null() => vec![m["currentArtifact"].clone()],
                _ => Vec::new(),
            }
        }
    };
    if artifacts.is_empty() {
        bail!("nothing to pull: no artifacts found (name a version with --version)");
    }
    let mut names: Vec<&str> = artifacts
        .iter()
        .filter_map(|a| a["fileName"].as_str())
        .collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        bail!("two artifacts share a file name; download them by id from the API instead");
    }
    tokio::fs::create_dir_all(&args.output).await?;
    for artifact in &artifacts {
        download(&client, artifact, &args.output).await?;
    }
    Ok(())
}

async fn download(client: &Client, artifact: &Value, dir: &Path) -> anyhow::Result<()> {
    let name = artifact["fileName"].as_str().unwrap_or("artifact");
    // The server refuses names with folders; check again rather than trust a path.
    if name.contains(['/', '\\']) || name == ".." || name == "." {
        bail!("refusing the file name `{name}`");
    }
    let expected = artifact["sha256"].as_str().unwrap_or_default();
    let size = artifact["sizeBytes"].as_u64().unwrap_or(0);
    let target = dir.join(name);
    if tokio::fs::metadata(&target)
        .await
        .is_ok_and(|m| m.len() == size)
        && hash_file(&target, size).await? == expected
    {
        println!("{name}  up to date  sha256:{expected}");
        return Ok(());
    }
    let url = format!(
        "{}/v1/artifacts/{}/download",
        client.server,
        artifact["id"].as_str().unwrap_or_default()
    );
    let response = client.http.get(url).bearer_auth(&client.key).send().await?;
    if !response.status().is_success() {
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        bail!(
            "{name}: {status} {}",
            body["error"]["message"].as_str().unwrap_or("")
        );
    }
    let partial = dir.join(format!(".{name}.part"));
    let mut file = tokio::fs::File::create(&partial).await?;
    let progress = bar(size, &format!("pulling {name}"));
    let mut hasher = Sha256::new();
    let mut body = response.bytes_stream();
    while let Some(frame) = body.next().await {
        let frame = frame?;
        hasher.update(&frame);
        file.write_all(&frame).await?;
        progress.inc(frame.len() as u64);
    }
    file.flush().await?;
    file.sync_all().await?;
    progress.finish_and_clear();
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        tokio::fs::remove_file(&partial).await.ok();
        bail!("{name}: downloaded bytes hash to {actual}, not {expected}");
    }
    tokio::fs::rename(&partial, &target).await?;
    println!("{name}  {size} bytes  sha256:{actual}");
    Ok(())
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
