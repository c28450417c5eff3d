//! `push`: uploads files as artifacts of a model (created when missing), resumably: an open
//! session for the same file is found and only its missing chunks are sent, in parallel.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use futures::StreamExt;
use indicatif::ProgressBar;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::{
    Client, Failure, bar, file_label, hash_file, model_id, retryable, show_wait, version_id,
};

pub struct PushArgs {
    pub server: String,
    pub key: String,
    pub project: String,
    pub model: String,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub parallel: usize,
    pub current: bool,
    /// Replace a version's file of the same name and other content.
    pub replace: bool,
    /// How long an unreachable server is retried.
    pub retry_for: std::time::Duration,
    pub files: Vec<PathBuf>,
}

const SESSION_FIELDS: &str =
    "id fileName totalSizeBytes chunkSizeBytes chunkCount missingChunks chunkUrlTemplate";

/// Uploads each file; a run interrupted earlier resumes its session and sends only what is
/// missing.
pub async fn push(args: PushArgs) -> anyhow::Result<()> {
    let client = Arc::new(Client::new(&args.server, &args.key, args.retry_for)?);
    let model = model_id(&client, &args.project, &args.model, true).await?;
    let version = match &args.version {
        Some(label) => version_id(&client, &model, label, true).await?,
        None => None,
    };
    let present = match &version {
        Some(version) => version_files(&client, version).await?,
        None => Vec::new(),
    };
    for path in &args.files {
        let size = tokio::fs::metadata(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let file_name = file_label(path);
        let digest = hash_file(path, size).await?;
        // Running the same push again is safe: what is there already is not sent twice.
        let mut replace = false;
        if let Some((_, held)) = present.iter().find(|(name, _)| *name == file_name) {
            if *held == digest {
                println!("{file_name}  already there  sha256:{digest}");
                continue;
            }
            if !args.replace {
                return Err(anyhow!(
                    "{file_name}: the version already has a file of this name with other content \
                     (sha256:{held}); pass --replace to replace it (DRAFT versions only)"
                ));
            }
            replace = true;
        }
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
                    "replace": replace,
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
        // The server verifies the digest and stores the file: say so while it works.
        let verifying = ProgressBar::new_spinner();
        verifying.set_message(format!("verifying sha256 of {file_name} on the server…"));
        verifying.enable_steady_tick(std::time::Duration::from_millis(120));
        let done = client
            .gql(
                "mutation($i: CompleteUploadSessionInput!) { completeUploadSession(input: $i) { artifact { id sha256 sizeBytes } } }",
                json!({ "i": { "id": session["id"], "sha256": digest } }),
            )
            .await;
        verifying.finish_and_clear();
        let done = done?;
        let artifact = &done["completeUploadSession"]["artifact"];
        println!(
            "{file_name}  artifact {}  sha256:{}",
            artifact["id"].as_str().unwrap_or(""),
            artifact["sha256"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// The version's available files: name and SHA-256.
async fn version_files(client: &Client, version: &str) -> anyhow::Result<Vec<(String, String)>> {
    let data = client
        .gql(
            "query($id: ID!) { modelVersion(id: $id) { artifacts(first: 1000) { edges { node { fileName sha256 } } } } }",
            json!({ "id": version }),
        )
        .await?;
    Ok(data["modelVersion"]["artifacts"]["edges"]
        .as_array()
        .map(|edges| {
            edges
                .iter()
                .map(|e| {
                    let node = &e["node"];
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                    (text(&node["fileName"]), text(&node["sha256"]))
                })
                .collect()
        })
        .unwrap_or_default())
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
    // The bar counts only what this run sends, so its rate is the real one on a resume too.
    let label = if still < size {
        format!(
            "uploading {} ({} of {} there already)",
            file_label(path),
            indicatif::HumanBytes(size - still),
            indicatif::HumanBytes(size)
        )
    } else {
        format!("uploading {}", file_label(path))
    };
    let progress = bar(still, &label);
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(missing)
        .map(|index| {
            let (client, progress, path) = (client.clone(), progress.clone(), path.to_owned());
            let url = template.replace("{index}", &index.to_string());
            let len = length(index);
            let label = label.clone();
            async move {
                client
                    .retrying(
                        &format!("chunk {index}"),
                        async || {
                            put_chunk(&client, &url, &path, index * chunk_size, len, &progress)
                                .await
                                .map_err(|(sent, failure)| {
                                    progress.set_position(progress.position().saturating_sub(sent));
                                    failure
                                })
                        },
                        |waiting| show_wait(&progress, waiting, &label),
                    )
                    .await
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
) -> Result<(), (u64, Failure)> {
    let local = |e: std::io::Error| {
        let error = anyhow!(e).context(format!("reading {}", path.display()));
        (
            0,
            Failure {
                error,
                retry: false,
            },
        )
    };
    let mut file = tokio::fs::File::open(path).await.map_err(local)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(local)?;
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
            let error = anyhow!("{status} {message}");
            Err((sent, Failure { error, retry }))
        }
        // Sending a chunk again is always safe: the server keeps one copy per index.
        Err(e) => {
            let error = anyhow!(e).context(format!("sending to {}", client.server));
            Err((sent, Failure { error, retry: true }))
        }
    }
}
