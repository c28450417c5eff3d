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
    Client, RETRIES, backoff, bar, file_label, hash_file, model_id, retryable, version_id,
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
