//! `PUT /v1/uploads/{id}/chunks/{index}` and the signed direct-upload target.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{SignedQuery, caller, origin, parse_id};
use crate::app::App;
use crate::domain::uploads::{self, ChunkRequest};
use crate::error::AppError;

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, AppError> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| AppError::bad_input("Content-Length", "not a byte count"))
        })
        .transpose()
}

/// Every `Content-Digest` line, as one list: a second line may not slip a value past.
fn content_digest(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let mut lines = Vec::new();
    for value in headers.get_all("content-digest") {
        lines.push(
            value
                .to_str()
                .map_err(|_| AppError::bad_input("Content-Digest", "the header is not ASCII"))?,
        );
    }
    if lines.is_empty() {
        return Ok(None);
    }
    uploads::parse_content_digest(&lines.join(", ")).map(Some)
}

fn body_error(err: axum::Error) -> AppError {
    let cause = err.into_inner();
    if cause.is::<tower_http::timeout::TimeoutError>() {
        return AppError::RequestTimeout;
    }
    AppError::bad_input(
        "body",
        format!("the request body could not be read: {cause}"),
    )
}

pub async fn put_chunk(
    State(app): State<App>,
    Path((id, index)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let caller = caller(&app, &headers).await?;
        let id = parse_id(&id, "upload session")?;
        let index: i64 = index
            .parse()
            .map_err(|_| AppError::bad_input("index", format!("`{index}` is not a chunk index")))?;
        let info = ChunkRequest {
            index,
            content_length: content_length(&headers)?,
            content_digest: content_digest(&headers)?,
        };
        let state = uploads::put_chunk(
            &app,
            &caller,
            id,
            info,
            body.into_data_stream(),
            body_error,
            &origin(&app, &headers),
        )
        .await?;
        Ok::<_, AppError>(axum::Json(state.to_json()))
    }
    .await;
    finish(result)
}

/// The target of a direct upload's signed URL where the storage service signs none.
pub async fn put_direct(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(signed): Query<SignedQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let session = parse_id(&id, "upload session")?;
        let signer = signed
            .verify(&app, "PUT", &format!("/v1/uploads/{id}/direct"))
            .await?;
        uploads::put_direct(
            &app,
            &signer,
            session,
            content_length(&headers)?,
            body.into_data_stream(),
            body_error,
        )
        .await?;
        Ok::<_, AppError>(StatusCode::OK)
    }
    .await;
    finish(result)
}

/// Errors that leave the request body unread close the connection, or a client reusing it
/// would send its next request into the rest of this body.
fn finish(result: Result<impl IntoResponse, AppError>) -> Response {
    match result {
        Ok(ok) => ok.into_response(),
        Err(err) => {
            let mut response = err.into_response();
            if response.status() != StatusCode::OK {
                response.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
            }
            response
        }
    }
}
