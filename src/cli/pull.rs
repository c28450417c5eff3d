//! `pull`: downloads a version's artifacts and verifies every digest before a file takes its
//! name.

use std::path::{Path, PathBuf};

use anyhow::bail;
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::client::{Client, Failure, bar, hash_file, model_id};

pub struct PullArgs {
    pub server: String,
    pub key: String,
    pub project: String,
    pub model: String,
    pub version: Option<String>,
    pub output: PathBuf,
    /// How long an unreachable server is retried.
    pub retry_for: std::time::Duration,
}

const ARTIFACT_FIELDS: &str = "id fileName sizeBytes sha256";

/// Downloads the version's artifacts (the current version's without `--version`; the model's
/// current artifact when it has no current version) and verifies each digest.
pub async fn pull(args: PullArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server, &args.key, args.retry_for)?;
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
    let response = client
        .retrying(
            &format!("downloading {name}"),
            async || {
                let sent = client.http.get(&url).bearer_auth(&client.key).send().await;
                sent.map_err(|e| Failure {
                    // Only a request that never reached the server is worth sending again here.
                    retry: e.is_connect(),
                    error: anyhow::anyhow!(e).context(format!("reaching {}", client.server)),
                })
            },
            |waiting| {
                if let Some(message) = waiting {
                    eprintln!("{message}");
                }
            },
        )
        .await?;
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
