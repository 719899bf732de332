//! The agent inbox in the local stack:
//!
//! - `GET /inbox`, `GET /inbox/{file}`: the agent-api function's own answer (the page, its
//!   script, style and `config.json`), turned into an API Gateway event without an authorizer,
//!   as the template routes them.
//! - `POST /local/cognito`: a same-origin proxy to moto's `cognito-idp` (moto sends no CORS
//!   headers, so the page cannot call it directly). Only the user-pool calls the page makes
//!   pass (`InitiateAuth`, `RespondToAuthChallenge`); in AWS the page calls
//!   `https://cognito-idp.{region}.amazonaws.com/` itself.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::apigw::{self, RawRequest};
use super::server::AppState;

/// Where the page calls the user-pool API locally.
pub const COGNITO_PROXY_PATH: &str = "/local/cognito";

/// The user-pool actions the page uses.
pub const PROXIED_ACTIONS: &[&str] = &["InitiateAuth", "RespondToAuthChallenge"];

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// `/inbox*`: the agent-api function, no authorizer.
pub async fn page(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(handler) = &state.0.api else {
        return (StatusCode::NOT_FOUND, "no agent-api in this build").into_response();
    };
    let raw = RawRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        raw_query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let id = format!("inbox-{}", REQUESTS.fetch_add(1, Ordering::Relaxed));
    let req = match apigw::to_lambda_request(&raw, &id) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let resp = handler(req).await;
    let mut out = (resp.status(), apigw::body_bytes(&resp)).into_response();
    for (k, v) in resp.headers() {
        out.headers_mut().insert(k.clone(), v.clone());
    }
    out
}

/// `POST /local/cognito`: the page's user-pool calls, forwarded to moto unchanged.
pub async fn cognito_proxy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(cognito) = &state.0.cognito else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no local user pool").into_response();
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let action = target
        .strip_prefix("AWSCognitoIdentityProviderService.")
        .unwrap_or_default();
    if !PROXIED_ACTIONS.contains(&action) {
        let body = serde_json::json!({"__type": "InvalidAction", "message": "not proxied"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    match cognito.forward(action, body.to_vec()).await {
        Ok((status, bytes)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            [("content-type", "application/x-amz-json-1.1")],
            bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
