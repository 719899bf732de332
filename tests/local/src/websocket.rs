//! The WebSocket API (`RealtimeApi` in `infra/template.yaml`) on the local stack, so the same
//! handler code runs as on AWS:
//!
//! - `GET /ws?token=...` (the upgrade): the `$connect` route as API Gateway runs it. The
//!   REQUEST authorizer (`ws-authorizer`'s [`WsAuthorizer`], identity source
//!   `route.request.querystring.token`) gets the event API Gateway builds; `Unauthorized` is a
//!   401 and a `Deny` policy a 403 on the handshake, as on AWS. An allowed connection gets an
//!   id, then the `$connect` integration (`ws-connections`) gets the event with the
//!   authorizer's context in `requestContext.authorizer`; a non-2xx answer refuses the
//!   handshake with that status. Only then is the socket upgraded.
//! - Every text frame from the client: a `$default` event; the integration's body goes back
//!   as a frame (the route has a `$default` route response, as in the template). Binary
//!   frames arrive base64-encoded (`isBase64Encoded`), as API Gateway passes them. Frames over
//!   32 KB and messages over 128 KB close the socket (1009), API Gateway's limits.
//! - The socket closing (either side): a `$disconnect` event.
//! - The management API (`PRECHAT_WS_MANAGEMENT_URL` = this origin): `POST /@connections/{id}`
//!   (the body as one text frame; 410 `GoneException` for a connection that is not open, 413
//!   over 128 KB), `GET` (`ConnectedAt`, `LastActiveAt`, `Identity`), `DELETE` (closes it, 204).
//!   Like `execute-api:ManageConnections` it wants a SigV4 `Authorization` header (the
//!   functions' SDK client signs with the local credentials; nothing checks the signature, as
//!   moto checks none) and answers 403 `ForbiddenException` without one.
//!
//! Not emulated: the 10-minute idle and 2-hour connection limits (the client pings every 5
//! minutes and reconnects anyway), and `@connections` on another stage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayProxyResponse,
    ApiGatewayWebsocketProxyRequest,
};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use prechat::realtime::authorizer::{respond, WsAuthorizer, TOKEN_PARAM};
use prechat::realtime::connections::WsConnections;
use prechat::store::connections::DynamoConnections;

/// API Gateway's WebSocket frame limit.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway's WebSocket message (and `PostToConnection` data) limit.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// The stage of `RealtimeApi` in the template.
pub const STAGE: &str = "live";
const API_ID: &str = "local";
const ACCOUNT: &str = "123456789012";

/// What the connection's task is asked to do.
enum Outgoing {
    Text(String),
    Close,
}

/// An open connection, as the management API sees it.
struct Open {
    tx: mpsc::UnboundedSender<Outgoing>,
    connected_at_ms: i64,
    last_active_ms: Arc<AtomicI64>,
    source_ip: String,
    user_agent: Option<String>,
}

/// The emulated WebSocket API with its two functions.
pub struct LocalWebSocketApi {
    authorizer: Arc<WsAuthorizer>,
    routes: Arc<WsConnections<DynamoConnections>>,
    open: Mutex<HashMap<String, Open>>,
    counter: AtomicU64,
}

/// The authorizer's answer and the connection's identity, carried into every route event.
#[derive(Clone)]
struct Ctx {
    connection_id: String,
    connected_at_ms: i64,
    domain: String,
    source_ip: String,
    user_agent: Option<String>,
    authorizer: Map<String, Value>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl LocalWebSocketApi {
    pub fn new(
        authorizer: Arc<WsAuthorizer>,
        routes: Arc<WsConnections<DynamoConnections>>,
    ) -> Arc<Self> {
        Arc::new(LocalWebSocketApi {
            authorizer,
            routes,
            open: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
        })
    }

    /// The connections open now (for `/local/health` and tests).
    pub fn open_count(&self) -> usize {
        self.open.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// A connection id in API Gateway's shape (16 characters of base64, e.g. `Xx1yZcZNIAMCJhQ=`).
    fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 10];
        bytes[..4].copy_from_slice(&(std::process::id()).to_be_bytes());
        bytes[4..8].copy_from_slice(&(now_ms() as u32).to_be_bytes());
        bytes[8..].copy_from_slice(&(n as u16).to_be_bytes());
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    }
}

/// `/ws` and the management API, to merge into the front door.
pub fn router(api: Arc<LocalWebSocketApi>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route(
            "/@connections/{id}",
            post(post_to_connection)
                .get(get_connection)
                .delete(delete_connection),
        )
        .with_state(api)
}

/// Query parameters as API Gateway passes them: the first value, and every value.
fn query_params(raw: &str) -> (Map<String, Value>, Map<String, Value>) {
    let mut first = Map::new();
    let mut all: Map<String, Value> = Map::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (
            crate::apigw::percent_decode(k),
            crate::apigw::percent_decode(v),
        );
        first
            .entry(k.clone())
            .or_insert_with(|| Value::String(v.clone()));
        if let Value::Array(list) = all.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
            list.push(Value::String(v));
        }
    }
    (first, all)
}

fn header_maps(headers: &HeaderMap) -> (Map<String, Value>, Map<String, Value>) {
    let mut first = Map::new();
    let mut all: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let Ok(v) = value.to_str() else { continue };
        first
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::String(v.to_owned()));
        if let Value::Array(list) = all
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(Value::String(v.to_owned()));
        }
    }
    (first, all)
}

fn request_context(ctx: &Ctx, route: &str, event_type: &str, request_id: &str) -> Value {
    let now = now_ms();
    let mut identity = json!({ "sourceIp": ctx.source_ip });
    if let Some(ua) = &ctx.user_agent {
        identity["userAgent"] = json!(ua);
    }
    json!({
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "messageDirection": "IN",
        "stage": STAGE,
        "connectedAt": ctx.connected_at_ms,
        "requestTimeEpoch": now,
        "identity": identity,
        "requestId": request_id,
        "domainName": ctx.domain,
        "connectionId": ctx.connection_id,
        "apiId": API_ID,
    })
}

/// The event of a route integration (`$connect` with the handshake's headers and query,
/// `$default` with a frame, `$disconnect`), with the authorizer's context.
fn route_event(
    ctx: &Ctx,
    route: &str,
    event_type: &str,
    request_id: &str,
    extra: Map<String, Value>,
) -> Result<ApiGatewayWebsocketProxyRequest, serde_json::Error> {
    let mut rc = request_context(ctx, route, event_type, request_id);
    rc["authorizer"] = Value::Object(ctx.authorizer.clone());
    let mut event = Map::new();
    event.insert("requestContext".into(), rc);
    event.insert("isBase64Encoded".into(), json!(false));
    event.extend(extra);
    serde_json::from_value(Value::Object(event))
}

fn status_of(r: &ApiGatewayProxyResponse) -> StatusCode {
    u16::try_from(r.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn body_text(r: ApiGatewayProxyResponse) -> Option<String> {
    match r.body {
        Some(Body::Text(t)) => Some(t),
        Some(Body::Binary(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    }
}

/// What API Gateway answers by itself.
fn gateway(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// `GET /ws`: authorizer, `$connect`, upgrade.
async fn upgrade(
    State(api): State<Arc<LocalWebSocketApi>>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let (query, multi_query) = query_params(uri.query().unwrap_or_default());
    // The identity source is required: without it API Gateway answers 401 itself.
    let token = query.get(TOKEN_PARAM).and_then(Value::as_str).unwrap_or("");
    if token.is_empty() {
        return gateway(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let (hdrs, multi_hdrs) = header_maps(&headers);
    let connection_id = api.next_id();
    let mut ctx = Ctx {
        connection_id: connection_id.clone(),
        connected_at_ms: now_ms(),
        domain: headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_owned(),
        source_ip: "127.0.0.1".to_owned(),
        user_agent: headers
            .get("user-agent")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
        authorizer: Map::new(),
    };
    let request_id = format!("local-ws-{connection_id}");
    let method_arn = format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/{STAGE}/$connect");
    let auth_event = json!({
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": hdrs.clone(),
        "multiValueHeaders": multi_hdrs.clone(),
        "queryStringParameters": query.clone(),
        "multiValueQueryStringParameters": multi_query,
        "stageVariables": {},
        "requestContext": request_context(&ctx, "$connect", "CONNECT", &request_id),
    });
    let auth_event: ApiGatewayCustomAuthorizerRequestTypeRequest =
        match serde_json::from_value(auth_event) {
            Ok(e) => e,
            Err(_) => return gateway(StatusCode::BAD_REQUEST, "Bad Request"),
        };
    let token = auth_event.query_string_parameters.first(TOKEN_PARAM);
    let decision = api.authorizer.decide_token(token).await;
    let policy = match respond(decision, &method_arn) {
        Ok(p) if p.allows() => p,
        Ok(_) => return gateway(StatusCode::FORBIDDEN, "Forbidden"),
        Err(_) => return gateway(StatusCode::UNAUTHORIZED, "Unauthorized"),
    };
    let mut authorizer = Map::new();
    authorizer.insert("principalId".into(), json!(policy.principal_id));
    authorizer.insert("integrationLatency".into(), json!(0));
    for (k, v) in &policy.context {
        authorizer.insert(k.clone(), json!(v));
    }
    ctx.authorizer = authorizer;
    let mut extra = Map::new();
    extra.insert("headers".into(), Value::Object(hdrs));
    extra.insert("multiValueHeaders".into(), Value::Object(multi_hdrs));
    extra.insert("queryStringParameters".into(), Value::Object(query));
    let connect = match route_event(&ctx, "$connect", "CONNECT", &request_id, extra) {
        Ok(e) => e,
        Err(_) => return gateway(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
    };
    let answer = api.routes.handle(connect).await;
    if !(200..300).contains(&answer.status_code) {
        return gateway(status_of(&answer), "Forbidden");
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let last_active = Arc::new(AtomicI64::new(ctx.connected_at_ms));
    if let Ok(mut open) = api.open.lock() {
        open.insert(
            connection_id.clone(),
            Open {
                tx,
                connected_at_ms: ctx.connected_at_ms,
                last_active_ms: last_active.clone(),
                source_ip: ctx.source_ip.clone(),
                user_agent: ctx.user_agent.clone(),
            },
        );
    }
    let failed = (api.clone(), ctx.clone());
    ws.max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_failed_upgrade(move |_| {
            let (api, ctx) = failed;
            tokio::spawn(async move { disconnect(&api, &ctx, 1006, "upgrade failed").await });
        })
        .on_upgrade(move |socket| serve(api, ctx, socket, rx, last_active))
}

/// One open socket: client frames to `$default`, management posts to the client, then `$disconnect`.
async fn serve(
    api: Arc<LocalWebSocketApi>,
    ctx: Ctx,
    mut socket: WebSocket,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    last_active: Arc<AtomicI64>,
) {
    let mut frames = 0u64;
    let (code, reason) = loop {
        tokio::select! {
            incoming = socket.recv() => {
                last_active.store(now_ms(), Ordering::Relaxed);
                let (body, base64) = match incoming {
                    Some(Ok(Message::Text(t))) => (t.as_str().to_owned(), false),
                    Some(Ok(Message::Binary(b))) => {
                        (base64::engine::general_purpose::STANDARD.encode(&b), true)
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        break (frame.as_ref().map(|f| f.code).unwrap_or(1005), "client closed");
                    }
                    Some(Err(_)) => break (1009, "frame refused"),
                    None => break (1006, "connection lost"),
                };
                frames += 1;
                let request_id = format!("local-ws-{}-{frames}", ctx.connection_id);
                let mut extra = Map::new();
                extra.insert("body".into(), json!(body));
                extra.insert("isBase64Encoded".into(), json!(base64));
                let Ok(event) = route_event(&ctx, "$default", "MESSAGE", &request_id, extra) else {
                    continue;
                };
                let answer = api.routes.handle(event).await;
                if let Some(text) = body_text(answer) {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break (1006, "connection lost");
                    }
                }
            }
            out = rx.recv() => match out {
                Some(Outgoing::Text(t)) => {
                    if socket.send(Message::Text(t.into())).await.is_err() {
                        break (1006, "connection lost");
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code: 1000, reason: "Goodbye".into() })))
                        .await;
                    break (1000, "closed by the management API");
                }
            }
        }
    };
    disconnect(&api, &ctx, code, reason).await;
}

async fn disconnect(api: &LocalWebSocketApi, ctx: &Ctx, code: u16, reason: &str) {
    if let Ok(mut open) = api.open.lock() {
        open.remove(&ctx.connection_id);
    }
    let mut extra = Map::new();
    extra.insert("disconnectStatusCode".into(), json!(code));
    extra.insert("disconnectReason".into(), json!(reason));
    let request_id = format!("local-ws-{}-bye", ctx.connection_id);
    if let Ok(event) = route_event(ctx, "$disconnect", "DISCONNECT", &request_id, extra) {
        // API Gateway ignores the answer of `$disconnect`.
        let _ = api.routes.handle(event).await;
    }
}

/// The management API's error, as the SDK reads it (`x-amzn-errortype`).
fn management_error(status: StatusCode, kind: &str) -> Response {
    let mut r = (status, Json(json!({ "message": null }))).into_response();
    if let Ok(v) = kind.parse() {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

/// `execute-api:ManageConnections` wants a signed request.
fn signed(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 ") && v.contains("/execute-api/"))
}

fn sender_of(api: &LocalWebSocketApi, id: &str) -> Option<mpsc::UnboundedSender<Outgoing>> {
    api.open.lock().ok()?.get(id).map(|o| o.tx.clone())
}

async fn post_to_connection(
    State(api): State<Arc<LocalWebSocketApi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !signed(&headers) {
        return management_error(StatusCode::FORBIDDEN, "ForbiddenException");
    }
    if body.len() > MAX_MESSAGE_BYTES {
        return management_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException");
    }
    let Some(tx) = sender_of(&api, &id) else {
        return management_error(StatusCode::GONE, "GoneException");
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    match tx.send(Outgoing::Text(text)) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => management_error(StatusCode::GONE, "GoneException"),
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

async fn get_connection(
    State(api): State<Arc<LocalWebSocketApi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !signed(&headers) {
        return management_error(StatusCode::FORBIDDEN, "ForbiddenException");
    }
    let info = api.open.lock().ok().and_then(|open| {
        open.get(&id).map(|o| {
            let mut identity = json!({ "SourceIp": o.source_ip });
            if let Some(ua) = &o.user_agent {
                identity["UserAgent"] = json!(ua);
            }
            json!({
                "ConnectedAt": iso(o.connected_at_ms),
                "LastActiveAt": iso(o.last_active_ms.load(Ordering::Relaxed)),
                "Identity": identity,
            })
        })
    });
    match info {
        Some(v) => Json(v).into_response(),
        None => management_error(StatusCode::GONE, "GoneException"),
    }
}

async fn delete_connection(
    State(api): State<Arc<LocalWebSocketApi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !signed(&headers) {
        return management_error(StatusCode::FORBIDDEN, "ForbiddenException");
    }
    match sender_of(&api, &id) {
        Some(tx) if tx.send(Outgoing::Close).is_ok() => StatusCode::NO_CONTENT.into_response(),
        _ => management_error(StatusCode::GONE, "GoneException"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_keep_the_first_and_every_value_decoded() {
        let (first, all) = query_params("token=a%2Bb&x=1&x=2&flag");
        assert_eq!(first["token"], "a+b");
        assert_eq!(first["x"], "1");
        assert_eq!(all["x"], json!(["1", "2"]));
        assert_eq!(first["flag"], "");
    }

    #[test]
    fn only_a_sigv4_request_for_execute_api_is_signed() {
        let mut h = HeaderMap::new();
        assert!(!signed(&h));
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        assert!(signed(&h));
        h.insert("authorization", "Bearer x".parse().unwrap());
        assert!(!signed(&h));
    }

    #[test]
    fn a_route_event_is_what_ws_connections_reads() {
        let mut authorizer = Map::new();
        authorizer.insert("principalId".into(), json!("alice"));
        authorizer.insert("username".into(), json!("alice"));
        let ctx = Ctx {
            connection_id: "AAAAAAAAAAAAAA==".into(),
            connected_at_ms: 1,
            domain: "127.0.0.1:3000".into(),
            source_ip: "127.0.0.1".into(),
            user_agent: None,
            authorizer,
        };
        let mut extra = Map::new();
        extra.insert("body".into(), json!(r#"{"type":"ping"}"#));
        let e = route_event(&ctx, "$default", "MESSAGE", "r1", extra).unwrap();
        assert_eq!(e.request_context.route_key.as_deref(), Some("$default"));
        assert_eq!(
            e.request_context.connection_id.as_deref(),
            Some("AAAAAAAAAAAAAA==")
        );
        assert_eq!(e.request_context.authorizer.fields["username"], "alice");
        assert_eq!(e.body.as_deref(), Some(r#"{"type":"ping"}"#));
    }
}
