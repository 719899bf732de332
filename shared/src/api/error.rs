//! [`ApiError`]: every way an agent API request can fail, its HTTP status and its JSON body
//! `{"error": {"code", "message", "field"?}}`. A retryable failure (DynamoDB or SQS throttled or
//! unavailable) is a 503 the client may repeat (with the same `Idempotency-Key`); the rest are
//! permanent. Messages never carry internal error texts, contact data or tokens.

use serde_json::{json, Value};

use crate::queue::QueueError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a malformed body, query or field; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 401: no (usable) principal in the claims.
    #[error("sign-in required")]
    Unauthorized,
    /// 404: an unknown route or id, or a conversation the caller may not see.
    #[error("{0} not found")]
    NotFound(String),
    /// 405: a known path with another method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the conversation's state (`code` says how).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: a body over the limit.
    #[error("request body over {0} bytes")]
    TooLarge(usize),
    /// 503: a dependency failed in a way worth retrying.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// 500: a permanent internal failure (a corrupt item, a survey version that does not parse).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ApiError::Unavailable(_))
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid { .. } => 400,
            ApiError::Unauthorized => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Conflict { .. } => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. } => "invalid_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict { code, .. } => code,
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::Internal(_) => "internal",
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    /// The response body. Internal and dependency failures say only what kind they are.
    pub fn body(&self) -> Value {
        let message = match self {
            ApiError::Internal(_) => "internal error".to_owned(),
            ApiError::Unavailable(_) => "temporarily unavailable, try again".to_owned(),
            ApiError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if let ApiError::Invalid { field, .. } = self {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        if e.is_retryable() {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status_and_a_json_body_with_code_and_message() {
        let cases = [
            (
                ApiError::invalid("text", "too long"),
                400,
                "invalid_request",
            ),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::NotFound("conversation".into()), 404, "not_found"),
            (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
            (
                ApiError::Conflict {
                    code: "outside_window",
                    message: "m".into(),
                },
                409,
                "outside_window",
            ),
            (ApiError::TooLarge(10), 413, "payload_too_large"),
            (ApiError::Internal("x".into()), 500, "internal"),
            (ApiError::Unavailable("x".into()), 503, "unavailable"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status(), status);
            assert_eq!(e.body()["error"]["code"], code);
            assert!(e.body()["error"]["message"].is_string());
        }
    }

    #[test]
    fn a_bad_field_is_named_and_internal_texts_stay_inside() {
        let e = ApiError::invalid("text", "at most 4096 characters");
        assert_eq!(e.body()["error"]["field"], "text");
        let e = ApiError::from(StoreError::Corrupt {
            key: "CONTACT#1#secret".into(),
            reason: "doc".into(),
        });
        assert!(!e.is_retryable());
        assert!(!e.body().to_string().contains("secret"));
        let e = ApiError::from(StoreError::Unavailable("throttled".into()));
        assert!(e.is_retryable() && e.status() == 503);
        assert!(!e.body().to_string().contains("throttled"));
    }
}
