//! Turns a plain HTTP request into the API Gateway HTTP API (payload v2.0) event Lambda would
//! receive, and reads it back with `lambda_http::request::from_str`: the local `/webhook`
//! therefore hands the entrypoints exactly what they get in AWS, base64 bodies included.
//! Routes under `/api/` ([`behind_authorizer`]) carry the JWT authorizer's claims
//! (`requestContext.authorizer.jwt`, from [`crate::jwt::JwtAuthorizer::authorize`]).

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

/// The parts of an HTTP request API Gateway forwards.
#[derive(Debug, Clone, Default)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    /// Without the `?`.
    pub raw_query: String,
    /// Header names as received; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The event API Gateway HTTP API builds for `req` (payload format 2.0).
pub fn to_event(req: &RawRequest, request_id: &str) -> Value {
    // HTTP API lower-cases header names and joins repeated values with commas; cookies move
    // to their own list.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()));
            continue;
        }
        headers
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in req.raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        params
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    // Text bodies pass as they are; anything that is not UTF-8 is base64-encoded.
    let (body, is_base64) = match std::str::from_utf8(&req.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&req.body),
            true,
        ),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let route_key = format!("{} {}", req.method, req.path);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": req.path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host").cloned().unwrap_or_else(|| "127.0.0.1".into()),
            "domainPrefix": "local",
            "http": {
                "method": req.method,
                "path": req.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "",
            "timeEpoch": now,
        },
        "isBase64Encoded": is_base64,
    });
    if let Some(obj) = event.as_object_mut() {
        if !cookies.is_empty() {
            obj.insert("cookies".into(), json!(cookies));
        }
        if !params.is_empty() {
            obj.insert("queryStringParameters".into(), json!(params));
        }
        if !req.body.is_empty() {
            obj.insert("body".into(), Value::String(body));
        }
    }
    event
}

/// Whether API Gateway runs the `CognitoJwt` authorizer before this path's route (`/api/*`).
pub fn behind_authorizer(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Puts the JWT authorizer's output into an event, where API Gateway puts it: the claims
/// (every value a string) and `scopes`, null because no route names authorization scopes.
pub fn with_jwt_claims(event: &mut Value, claims: &HashMap<String, String>) {
    if let Some(ctx) = event
        .get_mut("requestContext")
        .and_then(Value::as_object_mut)
    {
        ctx.insert(
            "authorizer".into(),
            json!({ "jwt": { "claims": claims, "scopes": null } }),
        );
    }
}

/// [`to_lambda_request`] for a route behind the JWT authorizer, with its claims.
pub fn to_authorized_request(
    req: &RawRequest,
    request_id: &str,
    claims: &HashMap<String, String>,
) -> Result<Request, String> {
    let mut event = to_event(req, request_id);
    with_jwt_claims(&mut event, claims);
    lambda_http::request::from_str(&event.to_string())
        .map_err(|e| format!("API Gateway event: {e}"))
}

/// The `lambda_http::Request` the Lambda runtime would hand to the function.
pub fn to_lambda_request(req: &RawRequest, request_id: &str) -> Result<Request, String> {
    let event = to_event(req, request_id).to_string();
    lambda_http::request::from_str(&event).map_err(|e| format!("API Gateway event: {e}"))
}

/// A response's body as bytes (API Gateway would base64-decode a binary body).
pub fn body_bytes(resp: &Response<Body>) -> Vec<u8> {
    match resp.body() {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    }
}

/// `application/x-www-form-urlencoded` decoding of one query key or value (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'+') => out.push(b' '),
            Some(b'%') => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            Some(b) => out.push(*b),
            None => break,
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;

    #[test]
    fn query_headers_and_body_survive_the_round_trip() {
        let raw = RawRequest {
            method: "GET".into(),
            path: "/webhook".into(),
            raw_query: "hub.mode=subscribe&hub.verify_token=a%20b&hub.challenge=42".into(),
            headers: vec![("X-Hub-Signature-256".into(), "sha256=00".into())],
            body: Vec::new(),
        };
        let req = to_lambda_request(&raw, "r1").unwrap();
        assert_eq!(req.method(), "GET");
        let q = req.query_string_parameters();
        assert_eq!(q.first("hub.verify_token"), Some("a b"));
        assert_eq!(q.first("hub.challenge"), Some("42"));
        assert_eq!(req.headers()["x-hub-signature-256"], "sha256=00");

        let post = RawRequest {
            method: "POST".into(),
            path: "/webhook".into(),
            body: vec![0xff, 0x00, b'{'],
            ..Default::default()
        };
        let req = to_lambda_request(&post, "r2").unwrap();
        match req.body() {
            Body::Binary(b) => assert_eq!(b, &vec![0xff, 0x00, b'{']),
            other => panic!("binary body expected, got {other:?}"),
        }
        let text = RawRequest {
            method: "POST".into(),
            path: "/webhook".into(),
            body: b"{\"a\":1}".to_vec(),
            ..Default::default()
        };
        let req = to_lambda_request(&text, "r3").unwrap();
        assert_eq!(req.body().as_ref(), b"{\"a\":1}");
    }

    #[test]
    fn claims_reach_the_function_where_api_gateway_puts_them() {
        let raw = RawRequest {
            method: "GET".into(),
            path: "/api/me".into(),
            ..Default::default()
        };
        let claims = HashMap::from([
            ("username".to_owned(), "alice".to_owned()),
            ("cognito:groups".to_owned(), "[agents leads]".to_owned()),
        ]);
        let req = to_authorized_request(&raw, "r1", &claims).unwrap();
        assert_eq!(prechat::api::auth::request_claims(&req), Some(&claims));
        assert!(behind_authorizer("/api/me") && behind_authorizer("/api"));
        assert!(!behind_authorizer("/apis") && !behind_authorizer("/webhook"));
    }
}
