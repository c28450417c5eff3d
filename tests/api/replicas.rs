//! Uploads across processes: a server killed mid-upload, two replicas sharing one upload, and
//! the push/pull client.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{Server, Setup, finished, outcome};
use crate::support::{CHUNK, bytes_of, sha256_hex};

async fn gql(base: &str, key: &str, query: &str, variables: Value) -> Value {
    crate::support::graphql_data(base, key, query, variables).await
}

async fn put(base: &str, key: &str, session: &str, index: usize, bytes: &[u8]) -> u16 {
    reqwest::Client::new()
        .put(format!("{base}/v1/uploads/{session}/chunks/{index}"))
        .bearer_auth(key)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A model in the default project and an upload session of `bytes` on it.
async fn session_for(base: &str, key: &str, bytes: &[u8]) -> String {
    let projects = gql(base, key, "{ projects { nodes { id } } }", json!({})).await;
    let project = projects["projects"]["nodes"][0]["id"].clone();
    let model = gql(
        base,
        key,
        "mutation($p: ID!) { createModel(input: { projectId: $p, name: \"m\" }) { model { id } } }",
        json!({ "p": project }),
    )
    .await;
    let session = gql(base, key, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id } } }",
        json!({ "i": { "modelId": model["createModel"]["model"]["id"], "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK } })).await;
    session["createUploadSession"]["uploadSession"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn complete_and_check(base: &str, key: &str, session: &str, bytes: &[u8]) {
    let done = gql(base, key, "mutation($i: CompleteUploadSessionInput!) { completeUploadSession(input: $i) { artifact { id sha256 } } }", json!({ "i": { "id": session, "sha256": sha256_hex(bytes) } })).await;
    let artifact = &done["completeUploadSession"]["artifact"];
    assert_eq!(artifact["sha256"], sha256_hex(bytes));
    let downloaded = reqwest::Client::new()
        .get(format!(
            "{base}/v1/artifacts/{}/download",
            artifact["id"].as_str().unwrap()
        ))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&downloaded), sha256_hex(bytes));
}

per_backend! {
    a_server_killed_mid_upload_resumes_where_it_stopped => killed_mid_upload,
    push_resumes_and_pull_verifies => push_and_pull,
    push_rides_out_a_restart_and_says_when_it_gives_up => push_through_a_restart,
    a_server_killed_between_chunks_and_completion_publishes_them_in_place => killed_before_completion,
}

/// Every chunk landed in the staging file, then the process died: a new one completes the
/// upload from that file, which becomes the blob itself (the same inode: nothing was copied).
async fn killed_before_completion(postgres: bool) {
    use std::os::unix::fs::MetadataExt;
    let setup = Setup::new(postgres).await;
    let mut server = setup.serve();
    let key = server.admin_key();
    server.wait_ready().await;
    let bytes = bytes_of(3 * CHUNK + 5, 32);
    let session = session_for(&server.base, &key, &bytes).await;
    for (index, part) in bytes.chunks(CHUNK).enumerate().rev() {
        assert_eq!(put(&server.base, &key, &session, index, part).await, 200);
    }
    let staged = setup.dir.path().join(format!("uploads/{session}/data"));
    let inode = std::fs::metadata(&staged).unwrap().ino();
    server.kill();

    let server = setup.serve();
    server.wait_ready().await;
    complete_and_check(&server.base, &key, &session, &bytes).await;
    let digest = sha256_hex(&bytes);
    let blob = setup
        .dir
        .path()
        .join(format!("blobs/sha256/{}/{digest}", &digest[..2]));
    assert_eq!(std::fs::metadata(&blob).unwrap().ino(), inode);
    assert!(!staged.exists(), "the staging name is gone");
}

async fn killed_mid_upload(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let mut server = setup.serve();
    let key = server.admin_key();
    server.wait_ready().await;
    let bytes = bytes_of(4 * CHUNK, 31);
    let session = session_for(&server.base, &key, &bytes).await;
    assert_eq!(
        put(&server.base, &key, &session, 0, &bytes[..CHUNK]).await,
        200
    );
    assert_eq!(
        put(&server.base, &key, &session, 1, &bytes[CHUNK..2 * CHUNK]).await,
        200
    );

    // Chunk 2 is half sent when the process dies.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let body = reqwest::Body::wrap_stream(tokio_stream_of(rx));
    let request = reqwest::Client::new()
        .put(format!("{}/v1/uploads/{session}/chunks/2", server.base))
        .bearer_auth(&key)
        .header("content-length", CHUNK)
        .body(body)
        .send();
    let in_flight = tokio::spawn(request);
    tx.send(Ok(bytes[2 * CHUNK..2 * CHUNK + CHUNK / 2].to_vec()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    drop(tx);
    // The client sees a reset or a truncated exchange; either way the chunk did not land.
    let _ = in_flight.await;

    let server = setup.serve();
    server.wait_ready().await;
    let state = gql(
        &server.base,
        &key,
        "query($id: ID!) { uploadSession(id: $id) { status missingChunks receivedBytes } }",
        json!({ "id": session }),
    )
    .await;
    assert_eq!(
        state["uploadSession"]["missingChunks"],
        json!([2, 3]),
        "the half-sent chunk is not counted"
    );
    assert_eq!(state["uploadSession"]["receivedBytes"], 2 * CHUNK);
    assert_eq!(
        put(
            &server.base,
            &key,
            &session,
            2,
            &bytes[2 * CHUNK..3 * CHUNK]
        )
        .await,
        200
    );
    assert_eq!(
        put(&server.base, &key, &session, 3, &bytes[3 * CHUNK..]).await,
        200
    );
    complete_and_check(&server.base, &key, &session, &bytes).await;
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_upload() {
    let setup = Setup::new(true).await;
    let mut first = setup.serve();
    let key = first.admin_key();
    first.wait_ready().await;
    let second = setup.serve();
    second.wait_ready().await;
    let bytes = bytes_of(6 * CHUNK + 99, 32);
    let session = session_for(&first.base, &key, &bytes).await;
    for (i, part) in bytes.chunks(CHUNK).enumerate() {
        let replica: &Server = if i % 2 == 0 { &first } else { &second };
        assert_eq!(put(&replica.base, &key, &session, i, part).await, 200);
    }
    let state = gql(
        &first.base,
        &key,
        "query($id: ID!) { uploadSession(id: $id) { missingChunks receivedChunks } }",
        json!({ "id": session }),
    )
    .await;
    assert_eq!(
        state["uploadSession"]["receivedChunks"],
        json!([0, 1, 2, 3, 4, 5, 6])
    );
    complete_and_check(&second.base, &key, &session, &bytes).await;
}

fn chunk_puts(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("mr_http_requests_total")
                && l.contains("/v1/uploads/{id}/chunks/{index}")
                && l.contains("status=\"200\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn push_through_a_restart(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let mut server = setup.serve();
    let key = server.admin_key();
    server.wait_ready().await;
    let base = server.base.clone();
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    server.kill();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("w.bin");
    std::fs::write(&file, bytes_of(100_000, 5)).unwrap();
    let push = |extra: &[&str], file: &std::path::Path| {
        let mut args = vec![
            "push",
            "--project",
            "default",
            "--model",
            "m",
            "--version",
            "v1",
        ];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        setup.client(&base, &key, &args)
    };

    // The server is down when the push starts and back three seconds later: the push waits,
    // says why, and finishes without being run again.
    let child = push(&[], &file).spawn().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let restarted = setup.serve_on(port, |c| {
        c.stderr(Stdio::null());
    });
    let (ok, out, err) = finished(child).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("server unreachable (connection refused), retrying in"),
        "{err}"
    );
    assert!(out.contains("w.bin  artifact "), "{out}");

    // Killed in the middle of the transfer (after a chunk of this file arrived) and back a
    // second later: the same push resends what was lost and finishes.
    let big = work.path().join("big.bin");
    let bytes = bytes_of(5 * 16 * 1024 * 1024 + 7, 6);
    std::fs::write(&big, &bytes).unwrap();
    let child = push(&["--parallel", "1"], &big).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let seen = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // One chunk of w.bin, then at least one of big.bin.
        if chunk_puts(&seen) >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no chunk of big.bin arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    restarted.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = setup.serve_on(port, |c| {
        c.stderr(Stdio::null());
    });
    let (ok, out, err) = finished(child).await;
    assert!(ok, "{err}");
    assert!(err.contains("server unreachable"), "{err}");
    assert!(
        out.contains("big.bin  artifact ") && out.contains(&sha256_hex(&bytes)),
        "{out}"
    );
    drop(again);

    // Gone for good: the push gives up when its time runs out, naming the cause and the way on.
    let started = std::time::Instant::now();
    let (ok, _, err) = outcome(push(&["--retry-secs", "2"], &file).output().unwrap());
    assert!(!ok);
    assert!(
        err.contains("connection refused") && err.contains("run the same command again"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "it gave up in time"
    );
}

async fn push_and_pull(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let mut server = setup.serve();
    let key = server.admin_key();
    server.wait_ready().await;
    let work = tempfile::tempdir().unwrap();
    // Two server-chosen chunks (16 MiB and the rest).
    let bytes = bytes_of(16 * 1024 * 1024 + 4321, 33);
    let file = work.path().join("weights.safetensors");
    std::fs::write(&file, &bytes).unwrap();
    let cli = |args: &[&str]| outcome(setup.client(&server.base, &key, args).output().unwrap());

    let (ok, _, err) = cli(&[
        "push",
        "--project",
        "default",
        "--model",
        "llm",
        "--version",
        "v1",
        "--kind",
        "weights",
        "--current",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let other = work.path().join("tokenizer.json");
    std::fs::write(&other, b"{\"vocab\": []}").unwrap();
    let model = gql(
        &server.base,
        &key,
        "{ modelByName(project: \"default\", name: \"llm\") { id version(label: \"v1\") { id } } }",
        json!({}),
    )
    .await;
    let (model_id, version_id) = (
        model["modelByName"]["id"].clone(),
        model["modelByName"]["version"]["id"].clone(),
    );
    let more = bytes_of(16 * 1024 * 1024 + 1, 34);
    let big = work.path().join("adapter.bin");
    std::fs::write(&big, &more).unwrap();
    // An earlier push of adapter.bin got its first chunk through, then stopped.
    let session = gql(&server.base, &key, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id } } }",
        json!({ "i": { "modelId": model_id, "versionId": version_id, "fileName": "adapter.bin", "totalSizeBytes": more.len(), "sha256": sha256_hex(&more) } })).await;
    let session = session["createUploadSession"]["uploadSession"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        put(&server.base, &key, &session, 0, &more[..16 * 1024 * 1024]).await,
        200
    );
    let metrics = |base: String| async move {
        reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = chunk_puts(&metrics(server.base.clone()).await);

    let (ok, out, err) = cli(&[
        "push",
        "--project",
        "default",
        "--model",
        "llm",
        "--version",
        "v1",
        "--parallel",
        "2",
        big.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains(&format!("resuming upload {session}")), "{err}");
    assert!(
        out.contains("adapter.bin  artifact ") && out.contains(&sha256_hex(&more)),
        "{out}"
    );
    let after = chunk_puts(&metrics(server.base.clone()).await);
    assert_eq!(
        after - before,
        2,
        "only the missing chunk of adapter.bin and the one of tokenizer.json were sent"
    );

    let pulled = work.path().join("pulled");
    let pull = |label: &str| {
        let output = pulled.to_str().unwrap();
        let args = [
            "pull",
            "--project",
            "default",
            "--model",
            "llm",
            "--version",
            label,
        ];
        cli(&[&args[..], &["--output", output]].concat())
    };
    let (ok, out, err) = pull("v1");
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(pulled.join("weights.safetensors")).unwrap(),
        bytes
    );
    assert_eq!(std::fs::read(pulled.join("adapter.bin")).unwrap(), more);
    assert_eq!(
        std::fs::read(pulled.join("tokenizer.json")).unwrap(),
        b"{\"vocab\": []}"
    );
    assert!(out.contains(&sha256_hex(&bytes)), "{out}");
    let (ok, out, _) = pull("v1");
    assert!(ok && out.matches("up to date").count() == 3, "{out}");
    let (ok, _, err) = pull("v9");
    assert!(!ok && err.contains("no version `v9`"), "{err}");

    // Pushing the same files again sends nothing and adds nothing: `pull` still works.
    let push_again = |extra: &[&str], files: &[&std::path::Path]| {
        let mut args = vec![
            "push",
            "--project",
            "default",
            "--model",
            "llm",
            "--version",
            "v1",
        ];
        args.extend_from_slice(extra);
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        cli(&args)
    };
    let before = chunk_puts(&metrics(server.base.clone()).await);
    let (ok, out, err) = push_again(&[], &[&file, &big, &other]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("already there").count(), 3, "{out}");
    assert_eq!(
        chunk_puts(&metrics(server.base.clone()).await),
        before,
        "no chunk was sent"
    );
    let (ok, _, err) = pull("v1");
    assert!(ok, "{err}");

    // Other content under a taken name is refused unless --replace says otherwise.
    std::fs::write(&other, b"{\"vocab\": [\"a\"]}").unwrap();
    let (ok, _, err) = push_again(&[], &[&other]);
    assert!(
        !ok && err.contains("tokenizer.json") && err.contains("--replace"),
        "{err}"
    );
    let (ok, _, err) = push_again(&["--replace"], &[&other]);
    assert!(ok, "{err}");
    let (ok, _, err) = pull("v1");
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(pulled.join("tokenizer.json")).unwrap(),
        b"{\"vocab\": [\"a\"]}"
    );
    server.kill();
}
