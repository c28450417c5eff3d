//! The one error type of the registry and how it leaves the process.
//!
//! Policy: `domain` and `db` return [`AppError`]; GraphQL resolvers convert it into an error with
//! `extensions.code` (and `extensions.field` for bad input); REST handlers answer the same code in
//! the JSON envelope `{"error": {"code", "message", "field"}}` with the matching HTTP status.
//! Database and pool failures are logged here with their detail and reach the caller as a bare
//! `INTERNAL`, so no SQL or connection string leaks; a database that cannot be reached is
//! `UNAVAILABLE` and a full storage service `INSUFFICIENT_STORAGE`, both marked retryable
//! (`extensions.retryable`, `Retry-After` on REST) so clients can tell "later" from "a bug".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Deliberately not `Display`: async-graphql converts any `Display` error into a plain error
/// without extensions, so a `?` would silently drop the code. The conversions below keep it.
#[derive(Debug, Clone)]
pub enum AppError {
    Unauthenticated,
    Forbidden(String),
    /// Also the answer for objects the caller may not see, so existence does not leak.
    NotFound(&'static str),
    BadUserInput {
        field: String,
        message: String,
    },
    Conflict(String),
    PreconditionFailed(String),
    QuotaExceeded(String),
    PayloadTooLarge(String),
    /// Received bytes do not hash to the digest the client announced.
    ChecksumMismatch {
        expected: String,
        actual: String,
    },
    /// The object existed but its time ran out (an expired upload session): 410 on REST.
    Gone(String),
    /// The request body is not in a media type the route reads (415).
    UnsupportedMediaType(String),
    /// The operation needs another HTTP method: a mutation sent by GET (405).
    MethodNotAllowed(String),
    /// An automatic persisted query's hash the replica does not know: the client sends the
    /// query text with it next (Apollo's protocol, which matches on this code and message).
    PersistedQueryNotFound,
    /// The client paused its request body longer than the body-read timeout (408).
    RequestTimeout,
    /// The database cannot be reached now (pool timeout, refused or dropped connection, a
    /// server shutting down): the caller should retry later. 503 on REST.
    Unavailable,
    /// The storage service is out of space: retrying helps once space is freed. 507 on REST.
    InsufficientStorage,
    Internal,
}

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::Conflict(message.into())
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        AppError::PreconditionFailed(message.into())
    }

    /// Logs an unexpected failure with its detail and hides that detail from the caller.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        AppError::Internal
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadUserInput { .. } => "BAD_USER_INPUT",
            AppError::Conflict(_) => "CONFLICT",
            AppError::PreconditionFailed(_) => "PRECONDITION_FAILED",
            AppError::QuotaExceeded(_) => "QUOTA_EXCEEDED",
            AppError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            AppError::ChecksumMismatch { .. } => "CHECKSUM_MISMATCH",
            AppError::Gone(_) => "PRECONDITION_FAILED",
            AppError::UnsupportedMediaType(_) => "BAD_USER_INPUT",
            AppError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            AppError::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            AppError::RequestTimeout => "REQUEST_TIMEOUT",
            AppError::Unavailable => "UNAVAILABLE",
            AppError::InsufficientStorage => "INSUFFICIENT_STORAGE",
            AppError::Internal => "INTERNAL",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadUserInput { .. } => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AppError::QuotaExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::ChecksumMismatch { .. } => StatusCode::BAD_REQUEST,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::PersistedQueryNotFound => StatusCode::BAD_REQUEST,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a caller sees; for bad input the field is carried separately.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated => {
                "authentication required: send `Authorization: Bearer <api key>` with a valid key"
                    .into()
            }
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::BadUserInput { message, .. } => message.clone(),
            AppError::Forbidden(m)
            | AppError::Conflict(m)
            | AppError::PreconditionFailed(m)
            | AppError::QuotaExceeded(m)
            | AppError::PayloadTooLarge(m)
            | AppError::UnsupportedMediaType(m)
            | AppError::MethodNotAllowed(m)
            | AppError::Gone(m) => m.clone(),
            AppError::PersistedQueryNotFound => "PersistedQueryNotFound".into(),
            AppError::RequestTimeout => "the request body stalled; send it again".into(),
            AppError::ChecksumMismatch { expected, actual } => {
                format!("the bytes received hash to sha256 {actual}, not the expected {expected}")
            }
            AppError::Unavailable => {
                "the database or the storage service is unavailable right now; retry shortly".into()
            }
            AppError::InsufficientStorage => {
                "the storage service is out of space; retry once space is freed".into()
            }
            AppError::Internal => "internal error".into(),
        }
    }

    /// Whether the same request may succeed later without any change: the fault is the
    /// server's surroundings, not the request. Clients read `extensions.retryable` (GraphQL)
    /// or `Retry-After` (REST).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            AppError::Unavailable | AppError::InsufficientStorage | AppError::RequestTimeout
        )
    }

    /// Whether the request, not the server, is at fault: what a batch reports for one item
    /// instead of failing whole.
    pub fn is_client_error(&self) -> bool {
        self.status().is_client_error()
            && !matches!(self, AppError::Unauthenticated | AppError::RequestTimeout)
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::BadUserInput { field, .. } => Some(field),
            AppError::UnsupportedMediaType(_) => Some("Content-Type"),
            _ => None,
        }
    }

    pub fn envelope(&self) -> serde_json::Value {
        let mut error = serde_json::json!({ "code": self.code(), "message": self.message() });
        if let Some(field) = self.field() {
            error["field"] = field.into();
        }
        if let AppError::ChecksumMismatch { expected, actual } = self {
            error["expectedSha256"] = expected.as_str().into();
            error["actualSha256"] = actual.as_str().into();
        }
        if self.retryable() {
            error["retryable"] = true.into();
        }
        serde_json::json!({ "error": error })
    }
}

/// Whether `err` or anything in its chain of sources matches `test`: how a cause buried under
/// other crates' wrappers (a full disk under OpenDAL, a body timeout under axum) is found.
pub fn caused_by(
    err: &(dyn std::error::Error + 'static),
    test: impl Fn(&(dyn std::error::Error + 'static)) -> bool,
) -> bool {
    std::iter::successors(Some(err), |e| e.source()).any(test)
}

/// True when the database refused a row because a unique constraint already holds its value.
pub fn is_unique_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Seconds a client is asked to wait before retrying a retryable error.
pub const RETRY_AFTER_SECS: u64 = 5;

impl From<DieselError> for AppError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => AppError::NotFound("record"),
            ref other if connection_lost(other) => {
                tracing::warn!(error = %other, "database connection lost");
                AppError::Unavailable
            }
            ref other if disk_full(other) => {
                tracing::warn!(error = %other, "the database's disk is full");
                AppError::InsufficientStorage
            }
            other => AppError::internal(format_args!("database: {other}")),
        }
    }
}

/// Whether the database could not write for want of space: SQLite's SQLITE_FULL, PostgreSQL's
/// "could not extend file … No space left on device" (SQLSTATE 53100, which diesel-async
/// reports only by its message).
fn disk_full(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("database or disk is full")
                || message.contains("No space left on device")
        }
        _ => false,
    }
}

/// Whether a statement failed because the database went away rather than because of the
/// statement. diesel-async reports a dropped PostgreSQL connection as `UnableToSendCommand`
/// or `ClosedConnection`; a server shutting down or starting (SQLSTATE class 57P) and a
/// SQLite file that stays locked past the busy timeout carry no kind of their own, only
/// their message.
fn connection_lost(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            [
                "terminating connection",
                "the database system is shutting down",
                "the database system is starting up",
                "the database system is in recovery mode",
                "database is locked",
            ]
            .iter()
            .any(|m| message.contains(m))
        }
        _ => false,
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        use deadpool::managed::PoolError;
        match err {
            PoolError::Timeout(_) => {
                tracing::warn!("database pool timed out handing out a connection");
                AppError::Unavailable
            }
            // A new connection could not be made: the database is down or unreachable.
            PoolError::Backend(e) => {
                tracing::warn!(error = %e, "cannot connect to the database");
                AppError::Unavailable
            }
            other => AppError::internal(format_args!("database pool: {other}")),
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        use async_graphql::ErrorExtensions;
        let mut gql = async_graphql::Error::new(err.message());
        gql = gql.extend_with(|_, ext| {
            ext.set("code", err.code());
            if let Some(field) = err.field() {
                ext.set("field", field);
            }
            if let AppError::ChecksumMismatch { expected, actual } = &err {
                ext.set("expectedSha256", expected.as_str());
                ext.set("actualSha256", actual.as_str());
            }
            if err.retryable() {
                ext.set("retryable", true);
            }
        });
        gql
    }
}

/// For the command line and start-up, where errors end the process with a message.
impl From<AppError> for anyhow::Error {
    fn from(err: AppError) -> Self {
        match err.field() {
            Some(field) => anyhow::anyhow!("{field}: {}", err.message()),
            None => anyhow::anyhow!("{}", err.message()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.envelope())).into_response();
        if self.retryable() {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status() {
        let cases = [
            (AppError::Unauthenticated, "UNAUTHENTICATED", 401),
            (AppError::forbidden("no"), "FORBIDDEN", 403),
            (AppError::NotFound("model"), "NOT_FOUND", 404),
            (AppError::bad_input("name", "empty"), "BAD_USER_INPUT", 400),
            (AppError::conflict("taken"), "CONFLICT", 409),
            (AppError::precondition("draft"), "PRECONDITION_FAILED", 412),
            (
                AppError::QuotaExceeded("limit 3".into()),
                "QUOTA_EXCEEDED",
                429,
            ),
            (
                AppError::PayloadTooLarge("big".into()),
                "PAYLOAD_TOO_LARGE",
                413,
            ),
            (
                AppError::ChecksumMismatch {
                    expected: "a".into(),
                    actual: "b".into(),
                },
                "CHECKSUM_MISMATCH",
                400,
            ),
            (AppError::Gone("expired".into()), "PRECONDITION_FAILED", 410),
            (
                AppError::UnsupportedMediaType("json".into()),
                "BAD_USER_INPUT",
                415,
            ),
            (AppError::RequestTimeout, "REQUEST_TIMEOUT", 408),
            (AppError::Unavailable, "UNAVAILABLE", 503),
            (AppError::InsufficientStorage, "INSUFFICIENT_STORAGE", 507),
            (AppError::Internal, "INTERNAL", 500),
        ];
        for (err, code, status) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.status().as_u16(), status, "{code}");
        }
    }

    #[test]
    fn envelope_names_the_field() {
        let body = AppError::bad_input("name", "must not be empty").envelope();
        assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
        assert_eq!(body["error"]["field"], "name");
        assert_eq!(body["error"]["message"], "must not be empty");
    }

    #[test]
    fn faults_of_the_surroundings_are_retryable() {
        let response = AppError::Unavailable.into_response();
        assert_eq!(response.headers()["retry-after"], "5");
        assert_eq!(
            AppError::InsufficientStorage.envelope()["error"]["retryable"],
            true
        );
        assert!(!AppError::Internal.retryable());
        assert!(
            AppError::bad_input("x", "y").envelope()["error"]
                .get("retryable")
                .is_none()
        );
        let dropped = DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand,
            Box::new("connection closed".to_owned()),
        );
        assert!(matches!(AppError::from(dropped), AppError::Unavailable));
    }

    #[test]
    fn database_detail_is_not_shown() {
        let err = AppError::from(DieselError::QueryBuilderError("secret sql".into()));
        assert_eq!(err.message(), "internal error");
    }
}
