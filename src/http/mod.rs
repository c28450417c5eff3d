//! The HTTP surface: GraphQL and GraphiQL, the REST sidecar that moves bytes, health,
//! readiness and metrics. Handlers translate between HTTP and `domain`; errors leave as the
//! JSON envelope of `crate::error`.

mod downloads;
mod graphql;
mod manifest;
mod serve;
mod telemetry;
mod uploads;

pub use serve::serve;

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use serde::Deserialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutBody;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::auth::{self, Principal};
use crate::error::AppError;
use crate::graphql::response_cache::ResponseCache;
use crate::routes;

pub fn router(app: App) -> Router {
    let body_timeout = std::time::Duration::from_secs(app.config.body_read_timeout_secs.max(1));
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route(routes::CHUNK_ROUTE, put(uploads::put_chunk))
        .route(routes::DIRECT_UPLOAD_ROUTE, put(uploads::put_direct))
        .route(routes::DOWNLOAD_ROUTE, get(downloads::download))
        .route("/v1/manifest", get(manifest::manifest))
        .route("/v1/manifest/{organization}/{model}", get(manifest::entry))
        .route("/v1/telemetry/heartbeats", post(telemetry::heartbeats))
        .route("/v1/telemetry/inference", post(telemetry::inference))
        .route(
            "/v1/telemetry/training-updates",
            post(telemetry::training_updates),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn(track))
        .fallback(|| async { AppError::NotFound("route") })
        .layer(middleware::map_request(
            move |request: Request| async move {
                request.map(|body| Body::new(TimeoutBody::new(body_timeout, body)))
            },
        ))
        // Built once per router: the schema is immutable and shared by every request.
        .layer(Extension(crate::graphql::build_schema(
            app.config.persisted_queries_bytes,
        )))
        .layer(Extension(ResponseCache::new(
            app.config.response_cache_bytes,
        )))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    uri = %redacted_uri(request.uri()),
                    version = ?request.version(),
                )
            }),
        )
        .layer(CatchPanicLayer::custom(|_| {
            AppError::internal("a request handler panicked").into_response()
        }))
        // Outermost, so refusals and errors carry the headers a browser needs to read them.
        .layer(cors(&app.config.cors_origins))
        .with_state(app)
}

/// Cross-origin access for browser apps on `--cors-origins`; none when the list is empty.
/// Keys travel in `Authorization`, never in cookies, so no credentials mode is offered.
fn cors(origins: &[String]) -> CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method};
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allowed = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_RANGE,
            header::CONTENT_ENCODING,
            HeaderName::from_static("content-digest"),
        ])
        .expose_headers([
            header::CONTENT_DISPOSITION,
            header::CONTENT_RANGE,
            header::ETAG,
            header::RETRY_AFTER,
            header::ACCEPT_RANGES,
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

/// A URI fit for a log line: the values of query parameters that grant access (this server's
/// `signature`, S3's `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`) are
/// replaced, so a debug log never holds a working URL.
pub fn redacted_uri(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            // Compared as the server reads it: `sig%6Eature` is `signature`.
            let lower = percent_decoded(name).to_ascii_lowercase();
            if ["signature", "credential", "token"]
                .iter()
                .any(|secret| lower.contains(secret))
            {
                format!("{name}=REDACTED")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{}?{}", uri.path(), redacted.join("&"))
}

/// A query parameter name as the server's form decoding reads it: `+` is a space, `%XX` a byte.
fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The caller of a request that reads or moves bytes: an INGEST key is refused.
pub(crate) async fn caller(app: &App, headers: &HeaderMap) -> Result<Principal, AppError> {
    let caller = sender(app, headers).await?;
    caller.require_reader()?;
    Ok(caller)
}

/// The caller of a request: no header is UNAUTHENTICATED for anything that needs a key;
/// a header with a bad key fails every field that needs one.
pub(crate) async fn sender(app: &App, headers: &HeaderMap) -> Result<Principal, AppError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AppError::Unauthenticated)?;
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthenticated)?;
    auth::authenticate(&app.db, secret.trim()).await
}

/// Where clients reach this server: `--public-url`, else the request's `Host`.
pub(crate) fn origin(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map_or_else(|| app.config.listen.to_string(), str::to_owned);
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// Ids in paths: a malformed one names nothing, so it is NOT_FOUND like an unknown one.
/// `If-None-Match` against a representation's ETag: the weak comparison RFC 9110 asks for
/// (a proxy may have weakened the tag), and `*`.
pub(crate) fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

pub(crate) fn parse_id(text: &str, what: &'static str) -> Result<crate::values::Id, AppError> {
    text.parse().map_err(|_| AppError::NotFound(what))
}

/// `?expires=…&key=…&signature=…` of a URL this server signed.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignedQuery {
    // Text, not a number: query strings flattened into another struct arrive as strings.
    expires: Option<String>,
    key: Option<String>,
    signature: Option<String>,
}

impl SignedQuery {
    pub fn is_present(&self) -> bool {
        self.expires.is_some() || self.key.is_some() || self.signature.is_some()
    }

    /// The key that signed the URL, while the signature holds and the key is usable.
    /// Tampered, foreign, expired, over-long and revoked-key URLs all answer 403 alike.
    pub async fn verify(&self, app: &App, method: &str, path: &str) -> Result<Principal, AppError> {
        let refused =
            || AppError::forbidden("the signed URL is invalid or has expired; ask for a new one");
        let (Some(expires), Some(key_id), Some(signature)) =
            (&self.expires, &self.key, &self.signature)
        else {
            return Err(refused());
        };
        let params = crate::storage::SignedParams {
            expires,
            key_id,
            signature,
        };
        let max_lifetime = i64::try_from(app.config.max_signed_url_secs).unwrap_or(i64::MAX);
        let now = chrono::Utc::now().timestamp();
        let key_id = app
            .signer
            .verify(method, path, &params, now, max_lifetime)
            .ok_or_else(refused)?;
        auth::signer_of_url(&app.db, key_id)
            .await?
            .ok_or_else(refused)
    }
}

/// An error answered with the request body (partly) unread: the connection cannot carry
/// another request, so the answer says it closes, or a client reusing it would send its next
/// request into the rest of this body and see a reset.
pub(crate) fn closing(error: AppError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// Whether reading a request body failed because it paused past the body-read timeout.
pub(crate) fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    crate::error::caused_by(err, |e| e.is::<tower_http::timeout::TimeoutError>())
}

/// Whether a request body is declared JSON (`application/json`, any parameters). Forms and
/// `text/plain` are refused: a browser sends those cross-origin without asking, and they
/// must never run an operation.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the database and the storage service answer and a local storage folder has
/// at least `--min-free-bytes` free: a replica that cannot store a chunk should not get one.
async fn readyz(State(app): State<App>) -> Response {
    let (database, storage, free) =
        tokio::join!(app.db.ping(), app.storage.ping(), app.storage.free_bytes());
    let free = free.unwrap_or_else(|e| {
        tracing::warn!(error = ?e, "reading free storage space failed");
        None
    });
    let space_ok = free.is_none_or(|bytes| bytes >= app.config.min_free_bytes);
    let word = |r: &Result<(), AppError>| if r.is_ok() { "ok" } else { "unreachable" };
    let mut body = serde_json::json!({
        "status": "ready",
        "database": word(&database),
        "storage": if storage.is_err() { "unreachable" } else if space_ok { "ok" } else { "low on space" },
    });
    if let Some(bytes) = free {
        body["storageFreeBytes"] = bytes.into();
    }
    if database.is_ok() && storage.is_ok() && space_ok {
        return axum::Json(body).into_response();
    }
    tracing::warn!(database = ?database.as_ref().err(), storage = ?storage.as_ref().err(), free_bytes = ?free, "readiness check failed");
    let mut envelope = if database.is_err() || storage.is_err() {
        AppError::Unavailable.envelope()
    } else {
        AppError::InsufficientStorage.envelope()
    };
    for field in ["database", "storage", "storageFreeBytes"] {
        if let Some(value) = body.get(field) {
            envelope[field] = value.clone();
        }
    }
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(envelope)).into_response()
}

async fn metrics(State(app): State<App>) -> Response {
    let (size, available) = app.db.pool_status();
    metrics::gauge!("mr_db_pool_connections").set(size as f64);
    metrics::gauge!("mr_db_pool_idle_connections").set(available as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Request count and latency per route and status.
async fn track(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("mr_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("mr_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}
