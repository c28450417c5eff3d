//! `GET /v1/artifacts/{id}/download`: the bytes, with ranges, validators and redirects.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;

use super::{SignedQuery, caller, etag_matches, parse_id};
use crate::app::App;
use crate::domain::artifacts::{self as artifact_rules, downloadable_artifact};
use crate::error::AppError;
use crate::routes::{content_disposition, download_path};
use crate::storage::blob_key;

#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    #[serde(default)]
    redirect: Option<String>,
    #[serde(flatten)]
    signed: SignedQuery,
}

/// A single `bytes=` range resolved against `size`: `Ok(None)` serves everything (no header,
/// or several ranges, which a server may ignore); `Err` is unsatisfiable (416).
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let suffix: u64 = end.parse().map_err(|_| ())?;
        if suffix == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(suffix), size - 1)
    } else {
        let start: u64 = start.parse().map_err(|_| ())?;
        let end = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            end.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        if start >= size || end < start {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

pub async fn download(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    match serve(&app, &id, query, &headers).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn serve(
    app: &App,
    id: &str,
    query: DownloadQuery,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let id = parse_id(id, "artifact")?;
    let artifact = if query.signed.is_present() {
        // The URL stands in for the key that minted it, with that key's access today.
        let signer = query.signed.verify(app, "GET", &download_path(id)).await?;
        downloadable_artifact(app, &signer, id).await?
    } else {
        let caller = caller(app, headers).await?;
        let artifact = downloadable_artifact(app, &caller, id).await?;
        if query.redirect.as_deref() == Some("true")
            && let Some(url) = artifact_rules::redirect_url(app, &artifact).await?
        {
            return Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response());
        }
        artifact
    };
    let etag = format!("\"{}\"", artifact.sha256);
    let size = artifact.size_bytes.0 as u64;
    let mut common = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).map_err(AppError::internal);
    common.insert(header::ETAG, value(&etag)?);
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    common.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, must-revalidate"),
    );
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && etag_matches(inm, &etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // A range against another version of the bytes is served whole (If-Range).
    let range_header = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        Some(tag) if tag.trim() != etag => None,
        _ => range_header,
    };
    let (status, start, end) = match parse_range(range_header, size) {
        Ok(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        Ok(None) => (StatusCode::OK, 0, size),
        Err(()) => {
            common.insert(header::CONTENT_RANGE, value(&format!("bytes */{size}"))?);
            let err = AppError::bad_input("Range", format!("the artifact has {size} bytes"));
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                common,
                axum::Json(err.envelope()),
            )
                .into_response());
        }
    };
    if status == StatusCode::PARTIAL_CONTENT {
        common.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {start}-{}/{size}", end - 1))?,
        );
    }
    common.insert(header::CONTENT_LENGTH, value(&(end - start).to_string())?);
    common.insert(header::CONTENT_TYPE, value(&artifact.content_type)?);
    common.insert(
        header::CONTENT_DISPOSITION,
        value(&content_disposition(&artifact.file_name))?,
    );
    let body = if end > start {
        let stream = app
            .storage
            .read_stream(&blob_key(&artifact.sha256), start..end)
            .await?;
        Body::from_stream(stream.map_err(|e| {
            tracing::warn!(error = %e, "download stream failed");
            e
        }))
    } else {
        Body::empty()
    };
    Ok((status, common, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Ok(Some((8, 9))));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=x-"), 10), Err(()));
        assert_eq!(parse_range(Some("items=0-1"), 10), Ok(None));
    }

    #[test]
    fn validators() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"d\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
