//! `cargo xtask events`: writes the signed sample events `events/webhook-ingest-<name>.json`
//! from the Meta-shaped bodies in `shared/testdata/webhook/<name>.json`.
//!
//! Each event carries its body compacted, as Meta sends it (`\uXXXX` escapes kept byte for
//! byte), signed with the local stack's default app secret, so `cargo lambda invoke` and the
//! local stack accept it as is. The library's `every_sample_event_is_signed_current_and_ingests`
//! checks the written files (signature, body, the events they ingest to).

use std::path::Path;

/// The local stack's default `WHATSAPP_APP_SECRET` (see [`crate::Settings`]).
const APP_SECRET: &str = "local-app-secret";

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

/// Writes every sample event under `root/events/`; returns the files written.
pub fn write_ingest_events(root: &Path) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for (i, name) in SAMPLES.iter().enumerate() {
        let source = root
            .join("shared/testdata/webhook")
            .join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        let event = serde_json::to_string_pretty(&apigw_event(&compact(&text), i))
            .map_err(|e| format!("{name}: {e}"))?;
        let path = root
            .join("events")
            .join(format!("webhook-ingest-{name}.json"));
        std::fs::write(&path, event + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// Drops whitespace outside JSON strings, keeping every byte inside them (escapes included).
fn compact(json: &str) -> String {
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

/// An API Gateway HTTP API (v2) event for `POST /webhook` as Meta would call it.
fn apigw_event(body: &str, request_no: usize) -> serde_json::Value {
    let signature = crate::meta::sign(APP_SECRET, body.as_bytes());
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
