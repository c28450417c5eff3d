//! The README's shell examples, run as written: every ```` ```sh ```` block, in order, in one
//! bash session, against a server started the way the README starts it (no flags, data in
//! `./data` of the folder the examples run in). A block the test cannot run says why in an
//! HTML comment just above it (`<!-- not run: … -->`).
//!
//! The examples carry placeholders a reader fills in; the test fills them the same way:
//! `http://127.0.0.1:8080` is the test server's address, `mr_…` the admin key it printed, and
//! `mr_4f0c1a2b` (the key revoked by prefix) the prefix of a key minted for the purpose.

use std::process::{Command, Stdio};

use crate::cli::{Server, outcome};
use crate::support::{TestDatabase, bytes_of, sha256_hex};

const BINARY: &str = env!("CARGO_BIN_EXE_model-registry");

/// The README's runnable shell blocks, in order; answers them with the count skipped.
fn runnable_blocks(readme: &str) -> (Vec<String>, usize) {
    let mut blocks = Vec::new();
    let mut skipped = 0;
    let mut lines = readme.lines();
    let mut previous = "";
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            if previous.trim_start().starts_with("<!-- not run:") {
                skipped += 1;
            } else {
                blocks.push(block.join("\n"));
            }
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    (blocks, skipped)
}

per_backend! {
    the_readme_examples_run_as_written => readme_examples,
}

async fn readme_examples(postgres: bool) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (blocks, skipped) = runnable_blocks(&readme);
    assert!(
        blocks.len() >= 5 && skipped <= 4,
        "{} blocks run, {skipped} skipped",
        blocks.len()
    );

    let work = tempfile::tempdir().unwrap();
    let database = if postgres {
        Some(TestDatabase::create().await)
    } else {
        None
    };
    let run_in = |program: &str, args: &[&str]| {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(work.path())
            .env_remove("MR_DATA_DIR")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn");
        if let Some(db) = &database {
            command.env("DATABASE_URL", &db.url);
        }
        command
    };
    let command = |args: &[&str]| run_in(BINARY, args);

    // The README's first command, on a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = command(&["--listen", &format!("127.0.0.1:{port}")]);
    serve.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut server = Server {
        child: serve.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let admin = server.admin_key();
    // The README's reader calls as soon as the key is printed: the port is open by then.
    let first = reqwest::get(format!("{}/healthz", server.base)).await;
    assert!(
        first.is_ok_and(|r| r.status() == 200),
        "the server listens before it prints the key"
    );
    server.wait_ready().await;

    let (ok, minted, err) = outcome(
        command(&["keys", "create", "--name", "to-revoke", "--role", "viewer"])
            .output()
            .unwrap(),
    );
    assert!(ok, "{err}");
    let prefix = minted
        .split_whitespace()
        .skip_while(|word| *word != "prefix")
        .nth(1)
        .unwrap_or_else(|| panic!("{minted}"))
        .to_owned();

    // The files the examples name.
    let weights = bytes_of(3 * 1024 * 1024 + 17, 3);
    let model_bin = bytes_of(16 * 1024 * 1024 + 5, 4);
    std::fs::write(work.path().join("model.safetensors"), &weights).unwrap();
    std::fs::write(work.path().join("tokenizer.json"), b"{\"vocab\": []}").unwrap();
    std::fs::write(work.path().join("model.bin"), &model_bin).unwrap();
    let bin_dir = std::path::Path::new(BINARY).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut script = String::from("set -euo pipefail\n");
    for (n, block) in blocks.iter().enumerate() {
        let block = block
            .replace("http://127.0.0.1:8080", &server.base)
            .replace("mr_4f0c1a2b", &prefix)
            .replace("mr_…", &admin);
        script.push_str(&format!("echo '### block {n}' >&2\n{block}\n"));
    }
    let (ok, out, err) = outcome(
        run_in("bash", &["-c", &script])
            .env("PATH", &path)
            .env_remove("MR_API_KEY")
            .env_remove("MR_SERVER")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    let transcript = format!("--- stdout\n{out}\n--- stderr\n{err}");
    assert!(ok, "the README's examples failed:\n{transcript}");
    assert!(
        !out.contains("\"errors\"") && !out.contains("\"error\""),
        "an example answered an error:\n{transcript}"
    );

    // What the examples did, checked from outside.
    assert!(
        out.contains(&sha256_hex(&model_bin)),
        "the three-step upload completed with the file's digest:\n{transcript}"
    );
    assert_eq!(
        std::fs::read(work.path().join("llama-ft/model.safetensors")).unwrap(),
        weights,
        "pull wrote what push sent"
    );
    assert!(
        out.contains(r#"{"accepted":2,"duplicates":0,"rejected":[]}"#)
            && out.contains(r#""totals":{"sessionCount":2,"errorRate":0.5"#)
            && out.contains(r#""updateCount":1,"sampleCount":512,"deviceCount":1"#),
        "the device key sent the telemetry and the query counted it:\n{transcript}"
    );
    let (ok, listed, err) = outcome(command(&["keys", "list"]).output().unwrap());
    assert!(ok, "{err}");
    let revoked = listed
        .lines()
        .find(|line| line.contains(&prefix))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(revoked.contains("revoked"), "{listed}");
    server.kill();
}
