//! The HTTP surface: GraphQL and GraphiQL, the REST sidecar that moves bytes, health,
//! readiness and metrics. Handlers translate between HTTP and `domain`; errors leave as the
//! JSON envelope of `crate::error`.

mod downloads;
mod uploads;

use std::time::Instant;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQLResponse;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::auth::{self, Principal};
use crate::error::AppError;
use crate::graphql;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql_post))
        .route("/v1/uploads/{id}/chunks/{index}", put(uploads::put_chunk))
        .route("/v1/uploads/{id}/direct", put(uploads::put_direct))
        .route("/v1/artifacts/{id}/download", get(downloads::download))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn(track))
        .fallback(|| async { AppError::NotFound("route") })
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            AppError::internal("a request handler panicked").into_response()
        }))
        .with_state(app)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// The caller of a request: no header is UNAUTHENTICATED for anything that needs a key;
/// a header with a bad key fails every field that needs one.
pub(crate) async fn caller(app: &App, headers: &HeaderMap) -> Result<Principal, AppError> {
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
pub(crate) fn parse_id(text: &str, what: &'static str) -> Result<crate::db::types::Id, AppError> {
    text.parse().map_err(|_| AppError::NotFound(what))
}

/// `?expires=…&signature=…` of a URL this server signed.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignedQuery {
    // Text, not a number: query strings flattened into another struct arrive as strings.
    expires: Option<String>,
    signature: Option<String>,
}

impl SignedQuery {
    pub fn is_present(&self) -> bool {
        self.expires.is_some() || self.signature.is_some()
    }

    /// Tampered, foreign and expired signatures all answer 403 alike.
    pub fn verify(&self, app: &App, method: &str, path: &str) -> Result<(), AppError> {
        let now = chrono::Utc::now().timestamp();
        let expires = self.expires.as_deref().and_then(|e| e.parse::<i64>().ok());
        match (expires, &self.signature) {
            (Some(expires), Some(signature))
                if app.signer.verify(method, path, expires, signature, now) =>
            {
                Ok(())
            }
            _ => Err(AppError::forbidden(
                "the signed URL is invalid or has expired; ask for a new one",
            )),
        }
    }
}

async fn graphql_post(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let limit = app.config.graphql_body_limit;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            // The rest of the body is left unread, so this connection cannot carry another
            // request: say so, or a client may reuse it and see a reset.
            let mut response = AppError::PayloadTooLarge(format!(
                "a GraphQL request may be at most {limit} bytes"
            ))
            .into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return response;
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(e) => {
            return AppError::bad_input("body", format!("not a GraphQL request: {e}"))
                .into_response();
        }
    };
    let caller = caller(&app, &headers).await;
    let origin = origin(&app, &headers);
    let request = graphql::request_data(request, app.clone(), caller, origin);
    GraphQLResponse::from(app.schema.execute(request).await).into_response()
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the database and the storage service answer.
async fn readyz(State(app): State<App>) -> Response {
    let (database, storage) = tokio::join!(app.db.ping(), app.storage.ping());
    let word = |r: &Result<(), AppError>| if r.is_ok() { "ok" } else { "unreachable" };
    if database.is_ok() && storage.is_ok() {
        return axum::Json(
            serde_json::json!({ "status": "ready", "database": "ok", "storage": "ok" }),
        )
        .into_response();
    }
    tracing::warn!(database = ?database.as_ref().err(), storage = ?storage.as_ref().err(), "readiness check failed");
    let mut body = AppError::Unavailable.envelope();
    body["database"] = word(&database).into();
    body["storage"] = word(&storage).into();
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
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
