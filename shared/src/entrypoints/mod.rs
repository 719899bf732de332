//! Lambda entrypoints: each turns its event into domain calls and the result into a response.
//! The binaries in `functions/` only call [`init`] (logging, AWS config, secrets, the runtime
//! loop) and their entrypoint's `from_env`. [`sample_events`] makes the signed sample events
//! `events/webhook-ingest-*.json` for the ingest entrypoint (`cargo xtask events`).

pub mod agent_api;
pub mod assigner;
pub mod ingest;
pub mod init;
pub mod sample_events;
pub mod sender;
pub mod sqs;
pub mod survey_engine;
pub mod verify;
pub mod webchat;

pub use init::InitError;

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};

/// A `text/plain` answer with `status`. Built without the fallible response builder, so there
/// is no fallback answer (a `Response::new` default would be a 200 hiding the real status).
pub fn text_response(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_response_keeps_its_status_and_content_type() {
        let r = text_response(StatusCode::SERVICE_UNAVAILABLE, "retry".into());
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert!(matches!(r.body(), Body::Text(t) if t == "retry"));
    }
}
