//! Agent API requests as the HTTP API hands them to `agent-api`: API Gateway v2 events with
//! the JWT authorizer's claims in `requestContext.authorizer.jwt.claims` (every value a
//! string, `cognito:groups` as `"[agents leads]"`).

use std::collections::BTreeMap;

use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

/// The claims of a signed-in user's access token.
pub fn user_claims(name: &str, groups: &str) -> Value {
    json!({
        "sub": format!("sub-{name}"), "username": name, "cognito:groups": groups,
        "client_id": "web-client", "token_use": "access", "scope": "aws.cognito.signin.user.admin",
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
    })
}

/// `method path?query` with `claims` (none: no authorizer context), headers and a body.
pub fn event(
    method: &str,
    path: &str,
    claims: Option<Value>,
    headers: Value,
    body: Option<&str>,
) -> Request {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let params: BTreeMap<&str, &str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .collect();
    let mut ctx = json!({
        "accountId": "123456789012", "apiId": "api", "domainName": "api.example",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1"},
        "requestId": "r1", "routeKey": "ANY /api/{proxy+}", "stage": "$default", "timeEpoch": 0
    });
    if let Some(c) = claims {
        ctx["authorizer"] = json!({"jwt": {"claims": c, "scopes": null}});
    }
    let mut e = json!({
        "version": "2.0", "routeKey": "ANY /api/{proxy+}", "rawPath": path,
        "rawQueryString": query, "headers": headers, "requestContext": ctx,
        "isBase64Encoded": false
    });
    if !params.is_empty() {
        e["queryStringParameters"] = json!(params);
    }
    if let Some(b) = body {
        e["body"] = json!(b);
    }
    lambda_http::request::from_str(&e.to_string())
        .unwrap_or_else(|err| panic!("not an API Gateway v2 event: {err}"))
}

/// Status and JSON body of a response.
pub fn json_of(resp: &Response<Body>) -> (u16, Value) {
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (resp.status().as_u16(), body)
}
