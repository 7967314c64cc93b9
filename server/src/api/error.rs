//! The one error type of the HTTP API. Every error answers JSON
//! `{"error": <stable machine code>, "detail": <text for a person>}`
//! (`common::report::ErrorBody`). Only server-side faults (5xx) are logged
//! at error level; their detail is logged, not sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use trustwatch_common::report::ErrorBody;

use crate::store::StoreError;

/// An API failure and the answer it becomes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400.
    #[error("{code}: {detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 401.
    #[error("{code}: {detail}")]
    Unauthorized { code: &'static str, detail: String },
    /// 403.
    #[error("{code}: {detail}")]
    Forbidden { code: &'static str, detail: String },
    /// 404.
    #[error("{code}: {detail}")]
    NotFound { code: &'static str, detail: String },
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 408.
    #[error("request body not received in time")]
    Timeout,
    /// 413.
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// 415.
    #[error("unsupported content encoding: {0}")]
    UnsupportedEncoding(String),
    /// 503.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 500; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            detail: detail.into(),
        }
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code,
            detail: detail.into(),
        }
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::NotFound {
            code,
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code (`error` field).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::NotFound { code, .. } => code,
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Timeout => "request_timeout",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::BadRequest { detail, .. }
            | ApiError::Unauthorized { detail, .. }
            | ApiError::Forbidden { detail, .. }
            | ApiError::NotFound { detail, .. } => detail.clone(),
            ApiError::Internal(_) => "internal server error".into(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let body = ErrorBody {
            error: self.code().to_owned(),
            detail: self.detail(),
        };
        (status, Json(body)).into_response()
    }
}
