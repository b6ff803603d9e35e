use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use satchel_api::ErrorBody;
use satchel_archive::ArchiveError;

/// What a service call can fail with, each mapping to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
    /// The request body is larger than the service accepts (the message says
    /// the limit and how to change it).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// An upstream server (the mailbox's IMAP server) refused or failed.
    #[error("{0}")]
    BadGateway(String),
    /// A service Satchel depends on (the directory) did not answer: 503.
    #[error("{0}")]
    Unavailable(String),
    /// Too many failed sign-ins: 429, with `Retry-After: retry_after` seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
}

impl From<ArchiveError> for ServiceError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::NoMailbox(_)
            | ArchiveError::NoRepository(_)
            | ArchiveError::NoUser(_)
            | ArchiveError::NotInMailbox { .. } => ServiceError::NotFound(e.to_string()),
            ArchiveError::NotSearchable(_) => ServiceError::Forbidden(e.to_string()),
            ArchiveError::Exists(_) => ServiceError::Conflict(e.to_string()),
            ArchiveError::Invalid { .. } | ArchiveError::Query(_) => {
                ServiceError::BadRequest(e.to_string())
            }
            other => {
                tracing::error!(error = %other, "archive failure");
                ServiceError::Internal(other.to_string())
            }
        }
    }
}

/// Text in an id position (a URL) that is not a message id: a 400, so ids
/// never reach the catalog or the file system as anything else.
impl From<satchel_archive::InvalidMessageId> for ServiceError {
    fn from(e: satchel_archive::InvalidMessageId) -> Self {
        ServiceError::BadRequest(e.to_string())
    }
}

/// A directory that did not answer is a 503 naming it; one that refused
/// the service's own requests (its configuration) is a 500, logged.
impl From<crate::directory::DirectoryError> for ServiceError {
    fn from(e: crate::directory::DirectoryError) -> Self {
        use crate::directory::DirectoryError;
        tracing::error!(error = %e, "directory sign-in");
        match e {
            DirectoryError::Unavailable { .. } => {
                ServiceError::Unavailable(format!("directory sign-in is unavailable: {e}"))
            }
            DirectoryError::Refused { .. } => ServiceError::Internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ServiceError {
    fn from(e: tokio::task::JoinError) -> Self {
        ServiceError::Internal(format!("worker failed: {e}"))
    }
}

impl ServiceError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The `Retry-After` seconds of a 429.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ServiceError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after();
        let body = Json(ErrorBody {
            error: self.to_string(),
        });
        let mut resp = (status, body).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"satchel\""),
            );
        }
        resp
    }
}
