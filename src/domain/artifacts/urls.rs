//! How an artifact's bytes are handed out: the storage service's presigned URL where it
//! signs one, else this server's signed URL; and for `?redirect=true` downloads, where to send
//! the client.

use std::time::Duration;

use crate::app::App;
use crate::auth::Principal;
use crate::db::artifacts::Artifact;
use crate::error::AppError;
use crate::routes;
use crate::storage::blob_key;
use crate::values::Timestamp;

/// A URL that downloads the artifact without an API key until it expires.
pub struct SignedUrl {
    pub url: String,
    pub expires_at: Timestamp,
}

/// A signed URL's lifetime: at least a second, at most the instance's maximum.
pub fn url_ttl(seconds: i32, max_secs: u64) -> Result<Duration, AppError> {
    let max = max_secs.min(i32::MAX as u64) as i32;
    if !(1..=max).contains(&seconds) {
        return Err(AppError::bad_input(
            "expiresInSeconds",
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(Duration::from_secs(seconds as u64))
}

/// The storage service's own presigned URL where it signs one, else this server's HMAC URL.
pub async fn signed_download_url(
    app: &App,
    caller: &Principal,
    artifact: &Artifact,
    ttl: Duration,
    origin: &str,
) -> Result<SignedUrl, AppError> {
    if let Some(url) = presigned_read(app, artifact, ttl).await? {
        let expires_at = Timestamp::from(chrono::Utc::now() + ttl);
        return Ok(SignedUrl { url, expires_at });
    }
    Ok(server_signed_url(app, caller, artifact, ttl, origin))
}

/// This server's HMAC URL, whatever the storage: checked again when presented (the key that
/// asked, its access then), where a storage service's presigned URL cannot be recalled.
pub fn server_signed_url(
    app: &App,
    caller: &Principal,
    artifact: &Artifact,
    ttl: Duration,
    origin: &str,
) -> SignedUrl {
    let expires = chrono::Utc::now() + ttl;
    let path = routes::download_path(artifact.id);
    let query = app
        .signer
        .sign("GET", &path, expires.timestamp(), caller.key.id);
    SignedUrl {
        url: format!("{origin}{path}?{query}"),
        expires_at: Timestamp::from(expires),
    }
}

/// How long the storage service's URL behind `?redirect=true` lives: the client follows the
/// redirect at once, so minutes are plenty, and a leaked Location header soon goes stale.
const REDIRECT_TTL: Duration = Duration::from_secs(300);

/// Where `?redirect=true` sends a download: the storage service's own URL, where it signs
/// one; `None` serves the bytes from here.
pub async fn redirect_url(app: &App, artifact: &Artifact) -> Result<Option<String>, AppError> {
    presigned_read(app, artifact, REDIRECT_TTL).await
}

/// The storage service's presigned read URL, when it signs one: the one place the
/// presign-or-serve choice is made for downloads.
async fn presigned_read(
    app: &App,
    artifact: &Artifact,
    ttl: Duration,
) -> Result<Option<String>, AppError> {
    if !app.storage.presigns() {
        return Ok(None);
    }
    let disposition = routes::content_disposition(&artifact.file_name);
    app.storage
        .presign_read(&blob_key(&artifact.sha256), ttl, &disposition)
        .await
        .map(Some)
}
