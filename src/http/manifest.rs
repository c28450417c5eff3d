//! `GET /v1/manifest` and `GET /v1/manifest/{organization}/{model}`: the public, name-keyed map
//! of shared models and their newest published version. No key: CLI and CI tooling fetch it
//! before they have one. Clients revalidate with `If-None-Match` and get 304 while nothing
//! changed; the whole document is this replica's cached copy until the catalog's revision moves.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::etag_matches;
use crate::app::{App, content_etag};
use crate::domain::catalog;
use crate::error::AppError;

/// Public, and revalidated on every use: the manifest changes whenever an owner shares,
/// unshares or publishes.
const CACHE_CONTROL: &str = "public, no-cache";

pub async fn manifest(State(app): State<App>, headers: HeaderMap) -> Response {
    let snapshot = match catalog::manifest(&app).await {
        Ok(snapshot) => snapshot,
        Err(err) => return err.into_response(),
    };
    let mut response = if accepts_gzip(&headers) {
        let mut response = answer(&headers, &snapshot.gzip_etag, snapshot.gzip.clone());
        if response.status() == StatusCode::OK {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    } else {
        answer(&headers, &snapshot.etag, snapshot.body.clone())
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

pub async fn entry(
    State(app): State<App>,
    Path((organization, model)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let found = async {
        let model = catalog::resolve_public(&app.db, &format!("{organization}/{model}")).await?;
        let entry = catalog::entry_of(&app.db, model.id).await?;
        serde_json::to_vec(&entry).map_err(AppError::internal)
    };
    match found.await {
        Ok(body) => answer(&headers, &content_etag(&body), body.into()),
        Err(err) => err.into_response(),
    }
}

fn answer(headers: &HeaderMap, etag: &str, body: bytes::Bytes) -> Response {
    let mut common = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(etag) {
        common.insert(header::ETAG, value);
    }
    common.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|inm| etag_matches(inm, etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    common.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, common, Body::from(body)).into_response()
}
