use std::time::Duration;

use clap::{Parser, Subcommand};
use model_registry::auth::Scope;
use model_registry::config::Config;
use model_registry::db::api_keys::{self, ApiKey, KeySet};
use model_registry::db::{organizations, projects};
use model_registry::domain::{api_keys as key_rules, bootstrap};
use model_registry::values::Role;
use model_registry::values::Timestamp;
use model_registry::{App, client, db, graphql, jobs};

/// A model registry server: models, versions and artifacts behind one GraphQL API.
#[derive(Parser)]
#[command(name = "model-registry", version)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(long, default_value = ".")]
        output: std::path::PathBuf,
    },
}

/// Which registry and model a client command talks to.
#[derive(clap::Args)]
struct Remote {
    #[arg(long, env = "MR_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Project slug.
    #[arg(long)]
    project: String,
    /// Model name.
    #[arg(long)]
    model: String,
    #[arg(long, env = "MR_API_KEY", hide_env_values = true)]
    api_key: String,
}

#[derive(Subcommand)]
enum KeysCommand {
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
enum CliRole {
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::PrintSchema) = cli.command {
        print!("{}", graphql::sdl());
        return Ok(());
    }
    model_registry::logging::init(cli.config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            db::migrate(&config.database_url()).await?;
            tracing::info!(database = %db::redact_url(&config.database_url()), "migrations applied");
            Ok(())
        }
        Command::Keys { action } => keys(config, action).await,
        Command::Gc { retention_secs } => {
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
            files,
        } => {
            client::push(client::PushArgs {
                server: remote.server,
                key: remote.api_key,
                project: remote.project,
                model: remote.model,
                version,
                kind,
                parallel,
                current,
                files,
            })
            .await
        }
        Command::Pull {
            remote,
            version,
            output,
        } => {
            client::pull(client::PullArgs {
                server: remote.server,
                key: remote.api_key,
                project: remote.project,
                model: remote.model,
                version,
                output,
            })
            .await
        }
        Command::PrintSchema => unreachable!("handled before the runtime starts"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    tracing::info!(database = %db::redact_url(&config.database_url()), "opening database");
    let app = App::open(config).await?;
    if let Some(secret) = bootstrap::initialize(&app.db).await? {
        tracing::info!("initialized an empty instance: organization `default`, project `default`");
        println!("Admin API key: {secret}");
        println!(
            "Keep it: it is shown only this once (`model-registry keys create` mints another)."
        );
    }
    jobs::spawn(app.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    model_registry::http::serve(listener, app, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

async fn keys(config: Config, action: KeysCommand) -> anyhow::Result<()> {
    let db = db::Db::connect(&config.database_url(), 2).await?;
    match action {
        KeysCommand::Create {
            name,
            role,
            organization,
            project,
            expires_in_days,
        } => {
            let scope = match (organization, project) {
                (Some(slug), _) => Scope::Organization(
                    organizations::find_by_slug(&db, &slug)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no organization with slug `{slug}`"))?
                        .id,
                ),
                (None, Some(slug)) => {
                    let p = projects::find_by_slug(&db, &slug)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no project with slug `{slug}`"))?;
                    Scope::Project {
                        organization: p.organization_id,
                        project: p.id,
                    }
                }
                (None, None) => Scope::Instance,
            };
            let expires_at = match expires_in_days {
                Some(days) if days <= 0 => anyhow::bail!("--expires-in-days must be positive"),
                Some(days) => Some(Timestamp::from(
                    chrono::Utc::now() + Duration::from_secs(days as u64 * 86_400),
                )),
                None => None,
            };
            let created = key_rules::mint(&db, &name, role.into(), scope, expires_at).await?;
            println!("API key: {}", created.secret);
            println!(
                "id {} · prefix {} · role {}",
                created.api_key.id, created.api_key.prefix, created.api_key.role
            );
        }
        KeysCommand::List => {
            println!(
                "{:<36}  {:<11}  {:<6}  {:<12}  {:<7}  NAME",
                "ID", "PREFIX", "ROLE", "SCOPE", "STATE"
            );
            for key in api_keys::list(&db, KeySet::All).await? {
                println!(
                    "{:<36}  {:<11}  {:<6}  {:<12}  {:<7}  {}",
                    key.id,
                    key.prefix,
                    key.role,
                    format!("{:?}", key.scope_kind()).to_uppercase(),
                    state(&key),
                    key.name
                );
            }
        }
        KeysCommand::Revoke { key } => {
            let all = api_keys::list(&db, KeySet::All).await?;
            let matches: Vec<&ApiKey> = all
                .iter()
                .filter(|k| k.id.to_string() == key || k.prefix == key)
                .collect();
            match matches.as_slice() {
                [one] => {
                    api_keys::revoke(&db, one.id, Timestamp::now(), false).await?;
                    println!("revoked {} ({})", one.id, one.prefix);
                }
                [] => anyhow::bail!("no key with id or prefix `{key}`"),
                _ => anyhow::bail!("`{key}` matches several keys: give the id"),
            }
        }
    }
    Ok(())
}

fn state(key: &ApiKey) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.expires_at.is_some_and(|t| t <= Timestamp::now()) {
        "expired"
    } else {
        "active"
    }
}
