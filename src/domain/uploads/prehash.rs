//! Hashing uploads while they arrive (see `storage::HashAhead` for why and what is kept).

use futures::StreamExt;

use crate::app::App;
use crate::db::uploads::{self, Received};
use crate::error::AppError;
use crate::storage::BackgroundHasher;
use crate::values::Id;

/// `(index, generation)` of the stored chunks, as the bookkeeping compares them.
pub fn parts(received: &[Received]) -> Vec<(i64, Id)> {
    received.iter().map(|c| (c.index, c.generation)).collect()
}

/// A chunk of `session` was stored: hash ahead if this replica is not already doing so.
pub fn nudge(app: &App, session: Id) {
    if !app.hash_ahead.claim(session) {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = advance(&app, session).await {
            tracing::debug!(session = %session, error = ?e, "hashing ahead stopped");
        }
        app.hash_ahead.release(session);
    });
}

async fn advance(app: &App, session: Id) -> Result<(), AppError> {
    let Some(upload) = uploads::find(&app.db, session).await? else {
        return Ok(());
    };
    loop {
        let received = uploads::received(&app.db, &[session])
            .await?
            .remove(&session)
            .unwrap_or_default();
        let Some((state, position)) = app.hash_ahead.next(session, &parts(&received)) else {
            return Ok(());
        };
        let chunk = received[position];
        let hasher = BackgroundHasher::resume(state);
        let (key, range) = super::completing::chunk_part(&upload, &chunk);
        let mut stream = app.storage.read_stream(&key, range).await?;
        while let Some(frame) = stream.next().await {
            hasher.update(frame.map_err(AppError::internal)?).await?;
        }
        let state = hasher.finish_state().await?;
        app.hash_ahead
            .record(session, position, chunk.generation, state);
    }
}
