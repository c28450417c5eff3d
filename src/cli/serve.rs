//! `serve`: opens the registry, mints the first key of an empty instance, runs the background
//! jobs and serves until SIGINT or SIGTERM.

use crate::config::Config;
use crate::domain::bootstrap;
use crate::{App, db, jobs};

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    tracing::info!(database = %db::redact_url(&config.stores.database_url()), "opening database");
    let app = App::open(config).await?;
    // Bound before the first key is printed: a script that waits for the key may call at once.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
    if let Some(secret) = bootstrap::initialize(&app.db).await? {
        tracing::info!("initialized an empty instance: organization `default`, project `default`");
        println!("Admin API key: {secret}");
        println!(
            "Keep it: it is shown only this once (`model-registry keys create` mints another)."
        );
    }
    jobs::spawn(app.clone());
    tracing::info!(address = %listener.local_addr()?, "listening");
    crate::http::serve(listener, app, shutdown_signal()).await?;
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
