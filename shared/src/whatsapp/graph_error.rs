//! Graph API failures and what the sender does about each.
//!
//! Meta answers an error with `{"error": {"message", "type", "code", "error_subcode",
//! "error_data": {"messaging_product", "details"}, "fbtrace_id"}}`; the numeric `code` decides
//! the [`ErrorClass`]. Network failures, timeouts and 5xx without a known code are retryable.

use serde::Deserialize;

/// What the sender does with a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, outage, network: back off and try the same message again, in order.
    Retryable,
    /// 131047: more than 24 hours since the contact last wrote; only a template may be sent.
    WindowClosed,
    /// 190 (or 0): the access token expired or was revoked; re-read it, then retry later.
    Auth,
    /// 131062: this message cannot be addressed to a business-scoped user id. Permanent.
    BsuidUnsupported,
    /// Anything else Meta rejects (131026 undeliverable, 100 invalid parameter, 131051 ...).
    Permanent,
}

/// A failed Graph API call, with Meta's error fields when it sent them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Graph API {}: {}", self.describe_code(), self.message)]
pub struct GraphError {
    pub class: ErrorClass,
    /// HTTP status, `None` for network errors and timeouts.
    pub status: Option<u16>,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    /// `error.message` (or the transport error). Meta's messages name no contact data.
    pub message: String,
    /// `error.error_data.details`.
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    fn describe_code(&self) -> String {
        match (self.status, self.code) {
            (Some(s), Some(c)) => format!("HTTP {s} code {c}"),
            (Some(s), None) => format!("HTTP {s}"),
            (None, _) => "transport error".to_owned(),
        }
    }

    /// A network failure or timeout: always retryable.
    pub fn transport(message: impl Into<String>) -> Self {
        GraphError {
            class: ErrorClass::Retryable,
            status: None,
            code: None,
            subcode: None,
            message: message.into(),
            details: None,
            fbtrace_id: None,
        }
    }

    /// A 2xx answer we cannot read (e.g. no message id): permanent, since sending again would
    /// most likely deliver a second copy.
    pub fn unexpected_success(status: u16, message: impl Into<String>) -> Self {
        GraphError {
            class: ErrorClass::Permanent,
            status: Some(status),
            code: None,
            subcode: None,
            message: message.into(),
            details: None,
            fbtrace_id: None,
        }
    }

    /// A short label for records and logs: Meta's code, else the HTTP status, else `transport`.
    pub fn label(&self) -> String {
        match (self.code, self.status) {
            (Some(c), _) => c.to_string(),
            (None, Some(s)) => format!("http_{s}"),
            (None, None) => "transport".to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    error_data: Option<ErrorData>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// The class of Meta's error `code`.
pub fn class_of_code(code: i64) -> ErrorClass {
    match code {
        // 130429 throughput, 131056 pair rate limit, 131016 service unavailable, 4 / 80007 app
        // and account rate limits, 1 / 2 unknown / temporary API errors, 131000 "something went
        // wrong" (Meta advises retrying).
        130429 | 131056 | 131016 | 4 | 80007 | 1 | 2 | 131000 => ErrorClass::Retryable,
        131047 => ErrorClass::WindowClosed,
        190 | 0 => ErrorClass::Auth,
        131062 => ErrorClass::BsuidUnsupported,
        _ => ErrorClass::Permanent,
    }
}

/// Classifies a non-2xx answer from its status and body.
pub fn classify(status: u16, body: &str) -> GraphError {
    let parsed = serde_json::from_str::<Envelope>(body).ok().map(|e| e.error);
    let code = parsed.as_ref().and_then(|b| b.code);
    let class = match code {
        Some(c) => class_of_code(c),
        None if status >= 500 || status == 429 || status == 408 => ErrorClass::Retryable,
        None if status == 401 => ErrorClass::Auth,
        None => ErrorClass::Permanent,
    };
    let message = parsed
        .as_ref()
        .and_then(|b| b.message.clone())
        .unwrap_or_else(|| format!("unreadable error body ({} bytes)", body.len()));
    GraphError {
        class,
        status: Some(status),
        code,
        subcode: parsed.as_ref().and_then(|b| b.error_subcode),
        message,
        details: parsed
            .as_ref()
            .and_then(|b| b.error_data.as_ref()?.details.clone()),
        fbtrace_id: parsed.and_then(|b| b.fbtrace_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meta's error body as the Cloud API sends it.
    fn meta(code: i64, message: &str, details: &str) -> String {
        serde_json::json!({
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_data": { "messaging_product": "whatsapp", "details": details },
                "fbtrace_id": "AazcfNrVBAVc_4yGTt6yF0X"
            }
        })
        .to_string()
    }

    #[test]
    fn rate_limits_and_outages_are_retryable() {
        for (status, code, msg) in [
            (429, 130429, "(#130429) Rate limit hit"),
            (
                400,
                131056,
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            ),
            (503, 131016, "(#131016) Service unavailable"),
            (400, 4, "(#4) Application request limit reached"),
            (400, 80007, "(#80007) Rate limit issues"),
            (500, 131000, "Something went wrong"),
        ] {
            let e = classify(status, &meta(code, msg, "details"));
            assert_eq!(e.class, ErrorClass::Retryable, "{code}");
            assert_eq!(e.code, Some(code));
            assert_eq!(e.message, msg);
            assert_eq!(e.details.as_deref(), Some("details"));
            assert_eq!(e.fbtrace_id.as_deref(), Some("AazcfNrVBAVc_4yGTt6yF0X"));
        }
        assert_eq!(
            classify(502, "<html>Bad Gateway</html>").class,
            ErrorClass::Retryable
        );
        assert_eq!(classify(500, "").class, ErrorClass::Retryable);
        assert_eq!(classify(429, "{}").class, ErrorClass::Retryable);
        assert_eq!(
            GraphError::transport("timed out").class,
            ErrorClass::Retryable
        );
    }

    #[test]
    fn window_auth_bsuid_and_permanent_codes() {
        let e = classify(400, &meta(131047, "Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number."));
        assert_eq!(e.class, ErrorClass::WindowClosed);
        let auth = r#"{"error":{"message":"Error validating access token: Session has expired on Friday, 01-Jan-21 00:00:00 PST.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}"#;
        let e = classify(401, auth);
        assert_eq!(e.class, ErrorClass::Auth);
        assert_eq!(e.subcode, Some(463));
        assert_eq!(e.details, None);
        assert_eq!(classify(401, "not json").class, ErrorClass::Auth);
        assert_eq!(
            classify(
                400,
                &meta(
                    131062,
                    "(#131062) Business-scoped user ID recipients not supported",
                    "d"
                )
            )
            .class,
            ErrorClass::BsuidUnsupported
        );
        for code in [131026, 100, 131051, 131009, 132000, 368, 131031] {
            assert_eq!(
                classify(400, &meta(code, "m", "d")).class,
                ErrorClass::Permanent,
                "{code}"
            );
        }
        assert_eq!(classify(400, "garbage").class, ErrorClass::Permanent);
        assert_eq!(
            classify(400, &meta(100, "(#100) Invalid parameter", "d")).label(),
            "100"
        );
        assert_eq!(classify(502, "").label(), "http_502");
        assert_eq!(GraphError::transport("x").label(), "transport");
    }

    #[test]
    fn display_names_status_and_code() {
        let e = classify(429, &meta(130429, "(#130429) Rate limit hit", "d"));
        assert_eq!(
            e.to_string(),
            "Graph API HTTP 429 code 130429: (#130429) Rate limit hit"
        );
    }

    proptest::proptest! {
        #[test]
        fn classify_never_panics(status in 100u16..600, body in ".{0,200}") {
            let _ = classify(status, &body);
        }
    }
}
