//! The command line: the server and the operator's and user's commands. `main` parses and
//! hands over here; each command is a client of the API (`push`, `pull`) or a caller of
//! `domain` and `jobs` (`keys`, `gc`), never of the database directly.

mod client;
mod keys;
mod pull;
mod push;
mod serve;

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::values::Role;
use crate::{App, db, jobs};

/// A model registry server: models, versions and artifacts behind one GraphQL API.
#[derive(Parser)]
#[command(name = "model-registry", version)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API keys from the shell, for operators who lost theirs.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Print the GraphQL schema (SDL).
    PrintSchema,
    /// Expire overdue upload sessions and remove unreferenced blobs now, then exit.
    Gc {
        /// Remove blobs unreferenced for at least this many seconds (default: the configured
        /// retention, 7 days).
        #[arg(long)]
        retention_secs: Option<u64>,
    },
    /// Upload files as artifacts of a model (created when missing), resumably.
    Push {
        #[command(flatten)]
        remote: Remote,
        /// Version label; created as a DRAFT when missing.
        #[arg(long)]
        version: Option<String>,
        /// Artifact kind: model-binary, weights, checkpoint, adapter, tokenizer,
        /// prompt-bundle, eval-report, model-card, other.
        #[arg(long)]
        kind: Option<String>,
        /// Chunks in flight at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Make the (last) uploaded artifact the model's current one.
        #[arg(long)]
        current: bool,
        /// Replace a file of the same name but other content in the version (DRAFT versions
        /// only). A file already there with the same content is skipped either way.
        #[arg(long)]
        replace: bool,
        /// The files to upload; each becomes an artifact named by its file name.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Download a version's artifacts and verify their digests.
    Pull {
        #[command(flatten)]
        remote: Remote,
        /// Version label; default: the model's current version.
        #[arg(long)]
        version: Option<String>,
        /// Folder to write the files into (created when missing).
        #[arg(long, default_value = ".")]
        output: std::path::PathBuf,
    },
}

/// Which registry and model a client command talks to.
#[derive(clap::Args)]
pub struct Remote {
    /// The registry's address.
    #[arg(long, env = "MR_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Project slug.
    #[arg(long)]
    project: String,
    /// Model name.
    #[arg(long)]
    model: String,
    /// An API key of the project (EDITOR to push, VIEWER to pull).
    #[arg(long, env = "MR_API_KEY", hide_env_values = true)]
    api_key: String,
    /// How long to keep retrying a server that cannot be reached (a restart, a network blip),
    /// in seconds, before giving up; running the same command again resumes.
    #[arg(long, env = "MR_RETRY_SECS", default_value_t = 300)]
    retry_secs: u64,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Mint a key and print its secret once.
    Create {
        #[arg(long, default_value = "operator")]
        name: String,
        #[arg(long, value_enum, default_value = "admin")]
        role: CliRole,
        /// Scope the key to this organization (slug).
        #[arg(long, conflicts_with = "project")]
        organization: Option<String>,
        /// Scope the key to this project (slug). With neither, the key is instance-wide.
        #[arg(long)]
        project: Option<String>,
        /// Expire the key after this many days.
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id or by its visible prefix.
    Revoke { key: String },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum CliRole {
    Viewer,
    Editor,
    Admin,
}

impl From<CliRole> for Role {
    fn from(role: CliRole) -> Role {
        match role {
            CliRole::Viewer => Role::Viewer,
            CliRole::Editor => Role::Editor,
            CliRole::Admin => Role::Admin,
        }
    }
}

/// Says which database an admin command works on, and refuses an embedded one that does not
/// exist: run in another folder, the command would otherwise create an empty database (and
/// mint a key) the running server never sees. `serve` and `migrate` create one.
fn existing_database(config: &Config) -> anyhow::Result<()> {
    let url = config.database_url();
    eprintln!("database: {}", db::redact_url(&url));
    if let Some(path) = db::sqlite_path(&url)
        && !std::path::Path::new(path).exists()
    {
        anyhow::bail!(
            "no database at {path}: run this in the folder the server runs in, or pass \
             --data-dir (MR_DATA_DIR) or --database-url (DATABASE_URL); `model-registry migrate` \
             creates a new one"
        );
    }
    Ok(())
}

/// Runs one command; `print-schema` is answered before a runtime exists (see `main`).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(config).await,
        Command::Migrate => {
            db::migrate(&config.database_url()).await?;
            tracing::info!(database = %db::redact_url(&config.database_url()), "migrations applied");
            Ok(())
        }
        Command::Keys { action } => {
            existing_database(&config)?;
            keys::run(config, action).await
        }
        Command::Gc { retention_secs } => {
            existing_database(&config)?;
            let retention =
                Duration::from_secs(retention_secs.unwrap_or(config.blob_retention_secs));
            let app = App::open(config).await?;
            let swept = jobs::sweep(&app, retention).await?;
            println!(
                "expired {} upload session(s), removed {} blob(s) and {} unfinished write(s)",
                swept.sessions_expired, swept.blobs_removed, swept.staging_removed
            );
            Ok(())
        }
        Command::Push {
            remote,
            version,
            kind,
            parallel,
            current,
            replace,
            files,
        } => {
            push::push(push::PushArgs {
                server: remote.server,
                key: remote.api_key,
                project: remote.project,
                model: remote.model,
                version,
                kind,
                parallel,
                current,
                replace,
                retry_for: Duration::from_secs(remote.retry_secs),
                files,
            })
            .await
        }
        Command::Pull {
            remote,
            version,
            output,
        } => {
            pull::pull(pull::PullArgs {
                server: remote.server,
                key: remote.api_key,
                project: remote.project,
                model: remote.model,
                version,
                output,
                retry_for: Duration::from_secs(remote.retry_secs),
            })
            .await
        }
        Command::PrintSchema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
    }
}
