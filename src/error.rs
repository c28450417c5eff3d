//! The one error type of the registry and how it leaves the process.
//!
//! Policy: `domain` and `db` return [`AppError`]; GraphQL resolvers convert it into an error with
//! `extensions.code` (and `extensions.field` for bad input); REST handlers answer the same code in
//! the JSON envelope `{"error": {"code", "message", "field"}}` with the matching HTTP status.
//! Database and pool failures are logged here with their detail and reach the caller as a bare
//! `INTERNAL`, so no SQL or connection string leaks.

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
    /// The database could not hand out a connection in time: the caller may retry.
    Unavailable,
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
            AppError::Unavailable | AppError::Internal => "INTERNAL",
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
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
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
            | AppError::Gone(m) => m.clone(),
            AppError::ChecksumMismatch { expected, actual } => {
                format!("the bytes received hash to sha256 {actual}, not the expected {expected}")
            }
            AppError::Unavailable => "the service is temporarily unavailable; retry shortly".into(),
            AppError::Internal => "internal error".into(),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::BadUserInput { field, .. } => Some(field),
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
        serde_json::json!({ "error": error })
    }
}

/// True when the database refused a row because a unique constraint already holds its value.
pub fn is_unique_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

impl From<DieselError> for AppError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => AppError::NotFound("record"),
            other => AppError::internal(format_args!("database: {other}")),
        }
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
        (self.status(), axum::Json(self.envelope())).into_response()
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
            (AppError::Unavailable, "INTERNAL", 503),
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
    fn database_detail_is_not_shown() {
        let err = AppError::from(DieselError::QueryBuilderError("secret sql".into()));
        assert_eq!(err.message(), "internal error");
    }
}
