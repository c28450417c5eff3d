//! The binary as an operator runs it: first start, restarts, `migrate`, `keys`, `print-schema`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TestDatabase;

/// Where a test's server keeps its data: a temp folder and, on PostgreSQL, a fresh database.
pub(crate) struct Setup {
    pub dir: tempfile::TempDir,
    pub database: Option<TestDatabase>,
}

impl Setup {
    pub async fn new(postgres: bool) -> Setup {
        let database = if postgres {
            Some(TestDatabase::create().await)
        } else {
            None
        };
        Setup {
            dir: tempfile::tempdir().unwrap(),
            database,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_model-registry"));
        command
            .args(args)
            .env("MR_DATA_DIR", self.dir.path())
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL");
        if let Some(db) = &self.database {
            command.env("DATABASE_URL", &db.url);
        }
        command
    }

    /// A client command (`push`, `pull`) against the server at `base` with `key`, its output
    /// captured: ready to run or to spawn.
    pub fn client(&self, base: &str, key: &str, args: &[&str]) -> Command {
        let mut command = self.command(args);
        command
            .env("MR_API_KEY", key)
            .env("MR_SERVER", base)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    pub fn run(&self, args: &[&str]) -> String {
        let output = self.command(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn serve(&self) -> Server {
        self.serve_with(|command| {
            command.stderr(Stdio::null());
        })
    }

    /// `serve` on a free loopback port, with `adjust` applied to the command (its logs, say).
    pub fn serve_with(&self, adjust: impl FnOnce(&mut Command)) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        self.serve_on(port, adjust)
    }

    /// `serve` on `port` (a restart where clients already point).
    pub fn serve_on(&self, port: u16, adjust: impl FnOnce(&mut Command)) -> Server {
        let mut command = self.command(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
        command.stdout(Stdio::piped());
        adjust(&mut command);
        let child = command.spawn().unwrap();
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

pub(crate) struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.base)).await
                && r.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads stdout up to the admin key line.
    pub fn admin_key(&mut self) -> String {
        let stdout = self.child.stdout.as_mut().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.strip_prefix("Admin API key: ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .trim()
            .to_owned()
    }

    /// Kills the process (SIGKILL) and returns everything it printed.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let mut rest = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut rest)
            .unwrap();
        rest
    }

    async fn viewer(&self, key: &str) -> Value {
        let client = reqwest::Client::new();
        crate::support::post_graphql(
            &client,
            &self.base,
            key,
            "{ viewer { role scope } }",
            json!({}),
        )
        .await
    }
}

/// What a command said: whether it succeeded, its stdout and its stderr.
pub(crate) fn outcome(output: std::process::Output) -> (bool, String, String) {
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What a spawned command said once it ended, waited for off the async threads.
pub(crate) async fn finished(child: Child) -> (bool, String, String) {
    outcome(
        tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap(),
    )
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

per_backend! {
    first_start_prints_the_admin_key_once => first_start,
    operators_manage_keys_from_the_shell => keys_from_the_shell,
    a_data_folder_of_the_earlier_layout_keeps_working => earlier_layout,
}

/// Earlier versions stored blobs in `<data>/blobs/blobs/sha256`; a server started on such a
/// folder moves them to `<data>/blobs/sha256` and serves them from there.
async fn earlier_layout(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let data = setup.dir.path().to_owned();
    let earlier_store = format!("fs://{}", data.join("blobs").display());
    let mut server = setup.serve_with(|c| {
        c.args(["--storage-url", &earlier_store])
            .stderr(Stdio::null());
    });
    let key = server.admin_key();
    server.wait_ready().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("weights.bin");
    std::fs::write(&file, b"weights of an earlier version").unwrap();
    let place = ["--project", "default", "--model", "m", "--version", "v1"];
    let push = [&["push"][..], &place, &[file.to_str().unwrap()]].concat();
    let (ok, _, err) = outcome(setup.client(&server.base, &key, &push).output().unwrap());
    assert!(ok, "{err}");
    server.kill();
    assert!(
        data.join("blobs/blobs/sha256").is_dir(),
        "the earlier layout"
    );

    let server = setup.serve();
    server.wait_ready().await;
    assert!(
        !data.join("blobs/blobs").exists(),
        "the repeated folder is gone"
    );
    assert_eq!(
        std::fs::read_dir(data.join("blobs/sha256"))
            .unwrap()
            .count(),
        1
    );
    let pulled = work.path().join("pulled");
    let pull = [
        &["pull"][..],
        &place,
        &["--output", pulled.to_str().unwrap()],
    ]
    .concat();
    let (ok, _, err) = outcome(setup.client(&server.base, &key, &pull).output().unwrap());
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(pulled.join("weights.bin")).unwrap(),
        b"weights of an earlier version"
    );
}

async fn first_start(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let mut server = setup.serve();
    let key = server.admin_key();
    server.wait_ready().await;
    assert_eq!(
        server.viewer(&key).await["data"]["viewer"],
        json!({ "role": "ADMIN", "scope": "INSTANCE" })
    );
    server.kill();

    let server = setup.serve();
    server.wait_ready().await;
    assert_eq!(
        server.viewer(&key).await["data"]["viewer"]["role"],
        "ADMIN",
        "the key survives a restart"
    );
    let printed = server.kill();
    assert!(
        !printed.contains("Admin API key"),
        "a second start prints no key: {printed}"
    );
    if setup.database.is_none() {
        assert!(
            setup.dir.path().join("registry.db").exists(),
            "embedded data lives in the data dir"
        );
    }
}

async fn keys_from_the_shell(postgres: bool) {
    let setup = Setup::new(postgres).await;
    if !postgres {
        // Run in a folder without the server's data, `keys` and `gc` say so and create nothing.
        for args in [
            &["keys", "list"][..],
            &["keys", "create", "--name", "x"],
            &["gc"],
        ] {
            let output = setup.command(args).output().unwrap();
            let err = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{args:?}: {err}");
            assert!(
                err.contains("no database at") && err.contains("--data-dir"),
                "{args:?}: {err}"
            );
        }
        assert!(
            !setup.dir.path().join("registry.db").exists(),
            "no empty database was made"
        );
    }
    setup.run(&["migrate"]);
    let created = setup.run(&["keys", "create", "--name", "ops", "--role", "viewer"]);
    let key = created
        .lines()
        .find_map(|l| l.strip_prefix("API key: "))
        .expect("prints the key")
        .to_owned();
    let listed = setup.run(&["keys", "list"]);
    assert!(
        listed.contains(&key[..11]) && listed.contains("ops") && !listed.contains(&key),
        "{listed}"
    );
    // An aligned table: every column starts where its heading does.
    let mut lines = listed.lines();
    let heading = lines.next().unwrap();
    assert!(
        heading.contains("EXPIRES") && heading.contains("LAST USED"),
        "{listed}"
    );
    let name_at = heading.find("NAME").unwrap();
    let role_at = heading.find("ROLE").unwrap();
    for line in lines {
        assert!(
            line.len() > name_at && line.is_char_boundary(name_at),
            "{listed}"
        );
        assert!(
            ["ADMIN ", "EDITOR", "VIEWER"]
                .iter()
                .any(|r| line[role_at..].starts_with(r)),
            "{listed}"
        );
    }

    let server = setup.serve();
    server.wait_ready().await;
    assert_eq!(
        server.viewer(&key).await["data"]["viewer"],
        json!({ "role": "VIEWER", "scope": "INSTANCE" })
    );
    let scoped = setup.run(&["keys", "create", "--project", "default", "--role", "editor"]);
    let scoped = scoped
        .lines()
        .find_map(|l| l.strip_prefix("API key: "))
        .unwrap()
        .to_owned();
    assert_eq!(
        server.viewer(&scoped).await["data"]["viewer"],
        json!({ "role": "EDITOR", "scope": "PROJECT" })
    );

    setup.run(&["keys", "revoke", &key[..11]]);
    assert_eq!(
        server.viewer(&key).await["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    let output = setup
        .command(&["keys", "create", "--project", "missing"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing"));
}

#[test]
fn print_schema_matches_the_committed_file() {
    let output = Command::new(env!("CARGO_BIN_EXE_model-registry"))
        .arg("print-schema")
        .output()
        .unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
}
