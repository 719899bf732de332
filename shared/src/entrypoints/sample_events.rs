//! How the signed sample events `events/webhook-ingest-<name>.json` are made from the Meta-shaped
//! bodies in `shared/testdata/webhook/<name>.json` (pretty-printed there for review).
//!
//! Pure, and the one copy: `cargo xtask events` (the generator in the local stack's crate,
//! `tests/local/src/events.rs`) writes [`ingest_event_file`] for each of [`SAMPLES`], and the
//! library's check (`entrypoints/ingest_events.rs`) asserts every committed file is still exactly
//! that, and ingests to the expected events.
//!
//! Each event is an API Gateway HTTP API (v2) `POST /webhook` as Meta calls it: the body
//! compacted, as Meta sends it (its `\uXXXX` escapes kept byte for byte), signed with the local
//! stack's default app secret [`APP_SECRET`], so `cargo lambda invoke` and the local stack accept
//! it as is.

use crate::secrets::Secret;
use crate::whatsapp::signature::Verifier;

/// The local stack's default `WHATSAPP_APP_SECRET`; the sample events are signed with it.
pub const APP_SECRET: &str = "local-app-secret";

/// The samples, in the order that numbers their request ids (`ingest-sample-<n>`).
pub const SAMPLES: &[&str] = &[
    "text",
    "button-reply",
    "list-reply",
    "location",
    "image",
    "status-delivered",
    "status-read",
    "status-failed",
    "unsupported",
    "username-no-phone",
    "multi",
    "user-id-update",
];

/// The text of a sample event file (pretty JSON and a final newline) for the webhook body
/// `source`, the `request_no`-th of [`SAMPLES`].
pub fn ingest_event_file(source: &str, request_no: usize) -> String {
    format!("{:#}\n", ingest_event(&compact(source), request_no))
}

/// Drops whitespace outside JSON strings, keeping every byte inside them (escapes included).
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// An API Gateway HTTP API (v2) event for `POST /webhook` carrying `body` as is.
fn ingest_event(body: &str, request_no: usize) -> serde_json::Value {
    let signature = Verifier::new(&Secret::new(APP_SECRET)).sign(body.as_bytes());
    serde_json::json!({
        "version": "2.0",
        "routeKey": "POST /webhook",
        "rawPath": "/webhook",
        "rawQueryString": "",
        "headers": {
            "accept": "*/*",
            "content-type": "application/json",
            "content-length": body.len().to_string(),
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "facebookexternalua",
            "x-hub-signature-256": signature,
            "x-forwarded-for": "173.252.95.1",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": "/webhook",
                "protocol": "HTTP/1.1",
                "sourceIp": "173.252.95.1",
                "userAgent": "facebookexternalua"
            },
            "requestId": format!("ingest-sample-{request_no}"),
            "routeKey": "POST /webhook",
            "stage": "$default",
            "time": "23/Nov/2026:21:00:00 +0000",
            "timeEpoch": 1795381200000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_strings_byte_for_byte() {
        assert_eq!(compact("{ \"a b\" : [ 1 ,\n 2 ] }"), r#"{"a b":[1,2]}"#);
        assert_eq!(
            compact(r#"{"x": "q\" \\" , "y": "\u00e1 "}"#),
            r#"{"x":"q\" \\","y":"\u00e1 "}"#
        );
    }
}
