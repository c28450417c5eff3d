//! Upload and download throughput of large artifacts, beside this machine's limits measured in
//! the same run (disk write with fdatasync, in-process SHA-256, loopback TCP copy), and the
//! server's peak memory.
//!
//! `cargo bench --bench artifacts` (1 GiB); `MR_BENCH_GIB=1,4 cargo bench --bench artifacts`
//! to compare memory across sizes. The server is the release binary in its own process (SQLite,
//! fs storage in a temp folder on the same disk), so its peak RSS is its own.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

mod common;
use common::server::{gql, peak_rss_mib, start_server, wait_ready};

const MIB: u64 = 1024 * 1024;
const CHUNK: u64 = 16 * MIB;
const PARALLEL: usize = 4;

fn rate(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

/// Incompressible, reproducible bytes.
fn block(seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(CHUNK as usize);
    while out.len() < CHUNK as usize {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out
}

/// Writes `size` bytes and fdatasyncs: the disk's sustained write rate.
fn disk_write(path: &Path, size: u64) -> f64 {
    let data = block(7);
    let start = Instant::now();
    let mut file = std::fs::File::create(path).unwrap();
    for _ in 0..size / CHUNK {
        file.write_all(&data).unwrap();
    }
    file.sync_data().unwrap();
    let mbps = rate(size, start.elapsed());
    std::fs::remove_file(path).unwrap();
    mbps
}

fn sha256_rate(size: u64) -> f64 {
    let data = block(9);
    let start = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..size / CHUNK {
        hasher.update(&data);
    }
    std::hint::black_box(hasher.finalize());
    rate(size, start.elapsed())
}

async fn loopback_copy(size: u64) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return total;
            }
            total += n as u64;
        }
    });
    let data = vec![1u8; MIB as usize];
    let start = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    for _ in 0..size / MIB {
        socket.write_all(&data).await.unwrap();
    }
    socket.shutdown().await.unwrap();
    assert_eq!(reader.await.unwrap(), size);
    rate(size, start.elapsed())
}

struct Run {
    upload: f64,
    complete_secs: f64,
    download: f64,
    rss: f64,
}

async fn upload_and_download(work: &Path, file: &Path, size: u64, digest: &str) -> Run {
    let data_dir = work.join(format!("data-{size}"));
    let server = start_server(&data_dir, None);
    wait_ready(&server).await;
    let client = reqwest::Client::new();
    let projects = gql(&client, &server, "{ projects { nodes { id } } }", json!({})).await;
    let model = gql(&client, &server, "mutation($p: ID!) { createModel(input: { projectId: $p, name: \"bench\" }) { model { id } } }", json!({ "p": projects["projects"]["nodes"][0]["id"] })).await;

    let start = Instant::now();
    let session = gql(&client, &server, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id chunkSizeBytes chunkCount chunkUrlTemplate } } }",
        json!({ "i": { "modelId": model["createModel"]["model"]["id"], "fileName": "weights.bin", "totalSizeBytes": size, "sha256": digest } })).await;
    let session = &session["createUploadSession"]["uploadSession"];
    assert_eq!(session["chunkSizeBytes"], CHUNK);
    let template = session["chunkUrlTemplate"].as_str().unwrap().to_owned();
    let count = session["chunkCount"].as_u64().unwrap();
    let statuses: Vec<u16> = futures::stream::iter(0..count)
        .map(|index| {
            let (client, url, key, file) = (
                client.clone(),
                template.replace("{index}", &index.to_string()),
                server.key.clone(),
                file.to_owned(),
            );
            async move {
                let mut f = tokio::fs::File::open(&file).await.unwrap();
                f.seek(std::io::SeekFrom::Start(index * CHUNK))
                    .await
                    .unwrap();
                let len = CHUNK.min(size - index * CHUNK);
                let body = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 * 1024);
                client
                    .put(url)
                    .bearer_auth(key)
                    .header("content-length", len)
                    .body(reqwest::Body::wrap_stream(body))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let completing = Instant::now();
    let done = gql(&client, &server, "mutation($i: CompleteUploadSessionInput!) { completeUploadSession(input: $i) { artifact { id sha256 } } }", json!({ "i": { "id": session["id"] } })).await;
    let complete_secs = completing.elapsed().as_secs_f64();
    let upload = rate(size, start.elapsed());
    let artifact = &done["completeUploadSession"]["artifact"];
    assert_eq!(artifact["sha256"], digest);

    let start = Instant::now();
    let response = client
        .get(format!(
            "{}/v1/artifacts/{}/download",
            server.base,
            artifact["id"].as_str().unwrap()
        ))
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let mut received = 0u64;
    while let Some(frame) = stream.next().await {
        received += frame.unwrap().len() as u64;
    }
    assert_eq!(received, size);
    let download = rate(size, start.elapsed());
    let rss = peak_rss_mib(server.child.id());
    drop(server);
    std::fs::remove_dir_all(&data_dir).ok();
    Run {
        upload,
        complete_secs,
        download,
        rss,
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::var("MR_BENCH_GIB")
        .unwrap_or_else(|_| "1".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .expect("MR_BENCH_GIB: whole GiB, comma-separated")
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let work = tempfile::tempdir_in(
        std::env::var("MR_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    for gib in sizes {
        let size = gib * 1024 * MIB;
        // The source file, and its digest (the client's work, not timed).
        let file = work.path().join("source.bin");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut hasher = Sha256::new();
        for i in 0..size / CHUNK {
            let data = block(1000 + i);
            hasher.update(&data);
            out.write_all(&data).unwrap();
        }
        out.into_inner().unwrap().sync_all().unwrap();
        let digest = hex::encode(hasher.finalize());

        let disk = disk_write(&work.path().join("probe.bin"), size);
        let sha = sha256_rate(size);
        let loopback = runtime.block_on(loopback_copy(size));
        let run = runtime.block_on(upload_and_download(work.path(), &file, size, &digest));
        let limit = disk.min(sha);
        println!(
            "{gib} GiB artifact, {} MiB chunks, {PARALLEL} in parallel",
            CHUNK / MIB
        );
        println!(
            "  limits   disk write+fdatasync {disk:>7.0} MB/s   SHA-256 (1 core) {sha:>7.0} MB/s   loopback copy {loopback:>7.0} MB/s"
        );
        println!(
            "  upload   {:>7.0} MB/s ({:.0}% of the slower of disk and SHA-256), completion {:.1} s",
            run.upload,
            100.0 * run.upload / limit,
            run.complete_secs
        );
        println!("  download {:>7.0} MB/s", run.download);
        println!("  server peak RSS {:.1} MiB", run.rss);
        std::fs::remove_file(&file).ok();
    }
}
