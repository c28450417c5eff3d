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

use crate::config::{BLOB_RETENTION_SECS, Config, Database, LogFormat, Stores};
use crate::values::Role;
use crate::{App, db, jobs};

/// A model registry server: models, versions and artifacts behind one GraphQL API.
///
/// Without a command it runs the server; `model-registry <command> --help` lists the flags of
/// each command.
#[derive(Parser)]
#[command(
    name = "model-registry",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The server's settings, when no command is given.
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<Config>),
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: Database,
    },
    /// Manage API keys from the shell, for operators who lost theirs.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Print the GraphQL schema (SDL).
    PrintSchema,
    /// Expire overdue upload sessions and remove unreferenced blobs now, then exit.
    Gc {
        #[command(flatten)]
        stores: Stores,
        /// Remove blobs unreferenced for at least this many seconds (the server's
        /// `--blob-retention-secs`).
        #[arg(long, env = "MR_BLOB_RETENTION_SECS", default_value_t = BLOB_RETENTION_SECS)]
        retention_secs: u64,
        /// Remove raw telemetry events older than this many days (the server's
        /// `--telemetry-retention-days`).
        #[arg(long, env = "MR_TELEMETRY_RETENTION_DAYS", default_value_t = crate::config::TELEMETRY_RETENTION_DAYS, value_parser = crate::config::retention_days())]
        telemetry_retention_days: u32,
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
        #[command(flatten)]
        database: Database,
        /// A name that says who or what holds the key.
        #[arg(long, default_value = "operator")]
        name: String,
        /// What the key may do within its scope.
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
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Revoke a key by id or by its visible prefix.
    Revoke {
        #[command(flatten)]
        database: Database,
        /// The key's id or its visible prefix (`mr_4f0c1a2b`).
        key: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum CliRole {
    /// Sends its project's telemetry and nothing else (a device's key; needs --project).
    Ingest,
    /// Reads.
    Viewer,
    /// Reads and writes models, versions and artifacts.
    Editor,
    /// Everything in its scope, minting and revoking keys too.
    Admin,
}

impl KeysCommand {
    pub(super) fn database(&self) -> &Database {
        match self {
            KeysCommand::Create { database, .. }
            | KeysCommand::List { database }
            | KeysCommand::Revoke { database, .. } => database,
        }
    }
}

impl Cli {
    /// The server's choice of log format; the other commands write plain text.
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            None => self.config.log_format,
            Some(Command::Serve(config)) => config.log_format,
            Some(_) => LogFormat::Text,
        }
    }
}

impl From<CliRole> for Role {
    fn from(role: CliRole) -> Role {
        match role {
            CliRole::Ingest => Role::Ingest,
            CliRole::Viewer => Role::Viewer,
            CliRole::Editor => Role::Editor,
            CliRole::Admin => Role::Admin,
        }
    }
}

/// Says which database an admin command works on, and refuses an embedded one that does not
/// exist: run in another folder, the command would otherwise create an empty database (and
/// mint a key) the running server never sees. `serve` and `migrate` create one.
fn existing_database(database: &Database) -> anyhow::Result<()> {
    let url = database.url();
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
    match cli.command {
        None => serve::serve(cli.config).await,
        Some(command) => run_command(command).await,
    }
}

async fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => serve::serve(*config).await,
        Command::Migrate { database } => {
            db::migrate(&database.url()).await?;
            tracing::info!(database = %db::redact_url(&database.url()), "migrations applied");
            Ok(())
        }
        Command::Keys { action } => {
            existing_database(action.database())?;
            keys::run(action).await
        }
        Command::Gc {
            stores,
            retention_secs,
            telemetry_retention_days,
        } => {
            existing_database(&stores.database)?;
            // The other settings are the defaults: the staging age follows the default
            // body-read timeout, as documented for `gc`.
            let config = Config {
                stores,
                telemetry_retention_days,
                ..Config::defaults()
            };
            let retention = Duration::from_secs(retention_secs);
            let app = App::open(config).await?;
            let swept = jobs::sweep(&app, retention).await?;
            println!(
                "expired {} upload session(s), removed {} blob(s), {} unfinished write(s) and {} raw telemetry event(s)",
                swept.sessions_expired,
                swept.blobs_removed,
                swept.staging_removed,
                swept.telemetry_removed
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag and argument of every command says what it is for, and only `serve` (and
    /// the bare command) carries the server's settings.
    #[test]
    fn each_command_shows_its_own_flags_each_described() {
        let root = Cli::command();
        root.clone().debug_assert();
        let mut pending = vec![(String::new(), root)];
        let mut checked = 0;
        while let Some((path, command)) = pending.pop() {
            let path = format!("{path} {}", command.get_name());
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{path}: `{id}` has no description"
                );
                checked += 1;
            }
            let server_flags = command
                .get_arguments()
                .any(|arg| arg.get_id() == "listen" || arg.get_id() == "upload_ttl_secs");
            let runs_the_server =
                matches!(path.as_str(), " model-registry" | " model-registry serve");
            assert_eq!(
                server_flags, runs_the_server,
                "{path}: the server's flags belong to the server only"
            );
            pending.extend(
                command
                    .get_subcommands()
                    .filter(|sub| sub.get_name() != "help")
                    .map(|sub| (path.clone(), sub.clone())),
            );
        }
        assert!(checked > 50, "walked {checked} arguments");
    }
}
