//! Upload and download throughput of large artifacts, beside this machine's limits measured in
//! the same run (disk write with fdatasync, in-process SHA-256, loopback TCP copy), and the
//! server's peak memory.
//!
//! `cargo bench --bench artifacts` (1 GiB, 4 chunks in flight then 1);
//! `MR_BENCH_GIB=1,4 MR_BENCH_PARALLEL=4,1 cargo bench --bench artifacts` to compare sizes. The
//! server is the release binary in its own process (SQLite, fs storage in a temp folder on the
//! same disk), so its peak RSS is its own; `MR_BENCH_SERVER=path` runs another build of it.
//!
//! When Debian's `docker-registry` (the CNCF distribution registry) is installed, the same file
//! is pushed to it through its chunked blob-upload API (`POST`, `PATCH` per chunk in order,
//! `PUT ?digest=`) and pulled back, as a peer line measured in the same run.

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

/// Streams the answer to `request`, checking it is `size` bytes; answers MB/s.
async fn download_rate(request: reqwest::RequestBuilder, size: u64) -> f64 {
    let start = Instant::now();
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut received = 0u64;
    while let Some(frame) = stream.next().await {
        received += frame.unwrap().len() as u64;
    }
    assert_eq!(received, size);
    rate(size, start.elapsed())
}

struct Run {
    upload: f64,
    complete_secs: f64,
    download: f64,
    rss: f64,
}

async fn upload_and_download(
    work: &Path,
    file: &Path,
    size: u64,
    digest: &str,
    parallel: usize,
) -> Run {
    let data_dir = work.join(format!("data-{size}-{parallel}"));
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
        .buffer_unordered(parallel)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let completing = Instant::now();
    let done = gql(&client, &server, "mutation($i: CompleteUploadSessionInput!) { completeUploadSession(input: $i) { artifact { id sha256 } } }", json!({ "i": { "id": session["id"] } })).await;
    let complete_secs = completing.elapsed().as_secs_f64();
    let upload = rate(size, start.elapsed());
    let artifact = &done["completeUploadSession"]["artifact"];
    assert_eq!(artifact["sha256"], digest);

    let download = download_rate(
        client
            .get(format!(
                "{}/v1/artifacts/{}/download",
                server.base,
                artifact["id"].as_str().unwrap()
            ))
            .bearer_auth(&server.key),
        size,
    )
    .await;
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

/// A comma-separated list of numbers from the environment, or `default`.
fn env_list<T: std::str::FromStr>(name: &str, default: &str, what: &str) -> Vec<T> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<T>()
                .unwrap_or_else(|_| panic!("{name}: {what}, comma-separated"))
        })
        .collect()
}

fn main() {
    let sizes: Vec<u64> = env_list("MR_BENCH_GIB", "1", "whole GiB");
    let parallels: Vec<usize> = env_list("MR_BENCH_PARALLEL", "4,1", "chunks in flight");
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
        let limit = disk.min(sha);
        println!("{gib} GiB artifact, {} MiB chunks", CHUNK / MIB);
        println!(
            "  limits   disk write+fdatasync {disk:>7.0} MB/s   SHA-256 (1 core) {sha:>7.0} MB/s   loopback copy {loopback:>7.0} MB/s"
        );
        for &parallel in &parallels {
            let run = runtime.block_on(upload_and_download(
                work.path(),
                &file,
                size,
                &digest,
                parallel,
            ));
            println!(
                "  {parallel} in flight: upload {:>6.0} MB/s ({:.0}% of the slower of disk and SHA-256), completion {:.2} s ({:.0}% of the upload), download {:>6.0} MB/s, server peak RSS {:.1} MiB",
                run.upload,
                100.0 * run.upload / limit,
                run.complete_secs,
                100.0 * run.complete_secs * run.upload / (size as f64 / 1e6),
                run.download,
                run.rss
            );
        }
        if let Some(binary) = peer::binary() {
            let run = runtime.block_on(peer::push_and_pull(
                &binary,
                work.path(),
                &file,
                size,
                &digest,
            ));
            println!(
                "  docker-registry (chunked PATCH in order, PUT ?digest=): upload {:>6.0} MB/s ({:.0}% of the slower limit), download {:>6.0} MB/s, peak RSS {:.1} MiB",
                run.upload,
                100.0 * run.upload / limit,
                run.download,
                run.rss
            );
        }
        std::fs::remove_file(&file).ok();
    }
}

/// The CNCF distribution registry (Debian's `docker-registry`) as a peer: a plain binary with a
/// config file, filesystem storage in the same temp folder, on loopback.
mod peer {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    use super::{CHUNK, Run, download_rate, peak_rss_mib, rate};

    pub fn binary() -> Option<PathBuf> {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join("docker-registry"))
            .find(|path| path.is_file())
    }

    struct Registry(Child);

    impl Drop for Registry {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    pub async fn push_and_pull(
        binary: &Path,
        work: &Path,
        file: &Path,
        size: u64,
        digest: &str,
    ) -> Run {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = work.join("docker-registry");
        std::fs::create_dir_all(&root).unwrap();
        let config = work.join("docker-registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                root.display()
            ),
        )
        .unwrap();
        let registry = Registry(
            Command::new(binary)
                .args(["serve", config.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client.get(format!("{base}/v2/")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let absolute = |location: &str| {
            if location.starts_with("http") {
                location.to_owned()
            } else {
                format!("{base}{location}")
            }
        };
        let location = |r: &reqwest::Response| absolute(r.headers()["location"].to_str().unwrap());

        let start = Instant::now();
        let opened = client
            .post(format!("{base}/v2/bench/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(opened.status(), 202);
        let mut url = location(&opened);
        let mut source = tokio::fs::File::open(file).await.unwrap();
        for index in 0..size.div_ceil(CHUNK) {
            let from = index * CHUNK;
            let len = CHUNK.min(size - from);
            source.seek(std::io::SeekFrom::Start(from)).await.unwrap();
            let mut chunk = vec![0u8; len as usize];
            source.read_exact(&mut chunk).await.unwrap();
            let sent = client
                .patch(&url)
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{from}-{}", from + len - 1))
                .body(chunk)
                .send()
                .await
                .unwrap();
            assert_eq!(sent.status(), 202, "{:?}", sent.text().await);
            url = location(&sent);
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        let done = client
            .put(format!("{url}{separator}digest=sha256:{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 201, "{:?}", done.text().await);
        let upload = rate(size, start.elapsed());

        let download = download_rate(
            client.get(format!("{base}/v2/bench/blobs/sha256:{digest}")),
            size,
        )
        .await;
        let rss = peak_rss_mib(registry.0.id());
        drop(registry);
        std::fs::remove_dir_all(&root).ok();
        Run {
            upload,
            complete_secs: 0.0,
            download,
            rss,
        }
    }
}
