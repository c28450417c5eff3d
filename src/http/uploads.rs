//! `PUT /v1/uploads/{id}/chunks/{index}` and the signed direct-upload target.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{SignedQuery, caller, origin, parse_id};
use crate::app::App;
use crate::domain::uploads::{self, ChunkRequest, SessionState};
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

/// The sha-256 a `Content-Digest` header (RFC 9530) announces, as lowercase hex. Every member
/// must be a well-formed `algorithm=:base64:` pair. Other algorithms may stand beside sha-256
/// (a client may send several) but not alone: a header the server cannot check would
/// otherwise pass as checked. Two sha-256 members must agree.
pub fn parse_content_digest(header: &str) -> Result<String, AppError> {
    use base64::Engine;
    let bad = |message: String| AppError::bad_input("Content-Digest", message);
    let mut sha256: Option<Vec<u8>> = None;
    for member in header.split(',') {
        let (algorithm, value) = member
            .trim()
            .split_once('=')
            .ok_or_else(|| bad(format!("`{}` is not `algorithm=:base64:`", member.trim())))?;
        let algorithm = algorithm.trim().to_ascii_lowercase();
        let bytes = value
            .trim()
            .strip_prefix(':')
            .and_then(|v| v.strip_suffix(':'))
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .ok_or_else(|| bad(format!("the {algorithm} value is not `:<base64>:`")))?;
        if algorithm != "sha-256" {
            continue;
        }
        if bytes.len() != 32 {
            return Err(bad("a sha-256 digest has 32 bytes".into()));
        }
        if sha256.as_ref().is_some_and(|first| *first != bytes) {
            return Err(bad("two different sha-256 values".into()));
        }
        sha256 = Some(bytes);
    }
    sha256
        .map(hex::encode)
        .ok_or_else(|| bad("only sha-256 is checked: send `sha-256=:<base64>:`".into()))
}

/// The REST answer for a session: the same fields and names as the GraphQL type.
fn session_json(state: &SessionState) -> serde_json::Value {
    let s = &state.session;
    let progress = state.progress();
    serde_json::json!({
        "id": s.id,
        "modelId": s.model_id,
        "versionId": s.version_id,
        "method": s.method.as_str(),
        "fileName": s.file_name,
        "contentType": s.content_type,
        "totalSizeBytes": s.total_size_bytes.0,
        "expectedSha256": s.expected_sha256,
        "chunkSizeBytes": s.chunk_size_bytes.0,
        "chunkCount": s.chunk_count,
        "artifactKind": s.artifact_kind.as_str(),
        "status": progress.status.as_str(),
        "failureReason": s.failure_reason,
        "receivedBytes": progress.received_bytes,
        "receivedChunks": progress.received_chunks,
        "missingChunks": progress.missing_chunks,
        "chunkUrlTemplate": state.chunk_url_template,
        "artifactId": s.artifact_id,
        "expiresAt": s.expires_at.rfc3339(),
        "createdAt": s.created_at.rfc3339(),
        "updatedAt": s.updated_at.rfc3339(),
        "completedAt": s.completed_at.map(|t| t.rfc3339()),
    })
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
    parse_content_digest(&lines.join(", ")).map(Some)
}

fn body_error(err: axum::Error) -> AppError {
    if super::is_body_timeout(&err) {
        return AppError::RequestTimeout;
    }
    AppError::bad_input("body", format!("the request body could not be read: {err}"))
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
        Ok::<_, AppError>(axum::Json(session_json(&state)))
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
            .verify(&app, "PUT", &crate::routes::direct_upload_path(session))
            .await?;
        uploads::put_direct(
            &app,
            &signer,
            session,
            content_length(&headers)?,
            content_digest(&headers)?,
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
        Err(err) => super::closing(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn content_digest_header() {
        use base64::Engine;
        let digest = Sha256::digest(b"abc");
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        let other = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert_eq!(
            parse_content_digest(&format!("sha-512=:{other}:, sha-256=:{b64}:")).unwrap(),
            hex::encode(digest)
        );
        assert_eq!(
            parse_content_digest(&format!("sha-256=:{b64}:, SHA-256=:{b64}:")).unwrap(),
            hex::encode(digest)
        );
        let refused = [
            format!("sha-512=:{other}:"),
            "md5=:rL0Y20zC+Fzt72VPzMSk2A==:".to_owned(),
            "sha-256=abc".to_owned(),
            "garbage".to_owned(),
            String::new(),
            format!("sha-256=:{b64}:, sha-512=xx"),
            format!(
                "sha-256=:{b64}:, sha-256=:{}:",
                base64::engine::general_purpose::STANDARD.encode([0u8; 32])
            ),
            "sha-256=:AAAA:".to_owned(),
        ];
        for header in refused {
            let err = parse_content_digest(&header).unwrap_err();
            assert_eq!(err.field(), Some("Content-Digest"), "{header}");
        }
    }
}
