//! The local stack's HTTP front door on `127.0.0.1:PRECHAT_PORT`:
//!
//! - `GET`/`POST /webhook`: the Lambda entrypoints themselves, each request turned into the
//!   API Gateway HTTP API event Lambda would get ([`super::apigw`]).
//! - `GET /`: the chat simulator page (`tests/local/web/index.html`, embedded).
//! - `GET /local/health`: 200 once everything is running.
//! - `GET /local/host[?lang=]`: a host page embedding the web chat widget (open it on
//!   `localhost` so the widget's origin, `127.0.0.1`, is another one).
//! - `GET /local/outbox[?wa_id=|?user_id=]`: every request the local Graph API received.
//! - `POST /local/send`: builds a Meta-shaped webhook for a simulated user, signs it with the
//!   app secret and posts it to `/webhook` over HTTP, like Meta does.
//! - `GET /local/chat`: one simulated user's timeline (what they sent, what the business sent).
//! - `GET /local/state`: the contact's and conversation's items in the table, the hand-off
//!   ticket with its place in line, and the agents (side panel).
//! - `GET /local/agents`, `POST /local/agents/{id}` `{"online": bool}`: list and toggle agents
//!   (through `prechat-admin agent status`, which queues a drain job when capacity frees up).
//! - `POST /local/token` `{"username": "alice"}`: real tokens from the local Cognito
//!   (`InitiateAuth`), `{"access_token", "id_token", "expires_in"}`.
//! - `GET /inbox`, `GET /inbox/{file}`, `POST /local/cognito`: the agent inbox page and its
//!   same-origin Cognito proxy ([`super::inbox`]).
//! - `GET /ws`, `/@connections/{id}`: the WebSocket API and its management API
//!   ([`super::websocket`]), when the pipeline has its functions.
//! - `GET /widget.js`, `/webchat/*`: the web chat's function (`with_webchat`), outside the
//!   authorizer, as the template routes them; 404 `{"message":"Not Found"}` while there is none.
//! - `/api` and `/api/*`: behind the JWT authorizer ([`super::jwt`]): 401
//!   `{"message":"Unauthorized"}` without a valid token, else the API Gateway event with the
//!   claims goes to the agent API's handler (`with_api`), or 404 `{"message":"Not Found"}`
//!   while there is none, as API Gateway answers a path without a route.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use prechat::secrets::Secret;
use prechat::store::DynamoTable;

use super::apigw::{self, RawRequest};
use super::cognito::LocalCognito;
use super::graph::RequestLog;
use super::jwt::{JwtAuthorizer, Unauthorized};
use super::meta::{self, Business, SimContact, SimInput, StatusRecipient};
use super::pipeline::HttpHandler;

const PAGE: &str = include_str!("../web/index.html");
const HOST_PAGE: &str = include_str!("../web/host.html");

/// A message a simulated user sent.
#[derive(Debug, Clone, Serialize)]
pub struct ChatInbound {
    pub wamid: String,
    pub sent_at: u64,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    pub input: Value,
    /// What `/webhook` answered.
    pub webhook_status: u16,
}

pub struct Inner {
    pub verify_token: Secret,
    pub app_secret: String,
    pub business: Business,
    pub outbox: RequestLog,
    pub webhook_post: Option<HttpHandler>,
    pub functions: Vec<&'static str>,
    /// This server's own `/webhook` URL (simulated deliveries go over HTTP, like Meta's).
    pub webhook_url: String,
    pub table: Option<DynamoTable>,
    /// Where agent status changes queue their drain jobs.
    pub assignment_queue: Option<String>,
    /// The local user pool (`/local/token`) and the JWT authorizer in front of `/api/*`.
    pub cognito: Option<Arc<LocalCognito>>,
    pub authorizer: Option<Arc<JwtAuthorizer>>,
    /// The agent API's handler (`/api/*`, after the authorizer).
    pub api: Option<HttpHandler>,
    /// The web chat's handler (`/widget.js`, `/webchat/*`).
    pub webchat: Option<HttpHandler>,
    /// The WebSocket API (`/ws`, `/@connections/{id}`).
    pub websocket: Option<Arc<super::websocket::LocalWebSocketApi>>,
    pub ready: AtomicBool,
    chat: Mutex<Vec<ChatInbound>>,
    counter: AtomicU64,
    http: reqwest::Client,
}

/// Shared state of the front door.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        verify_token: Secret,
        app_secret: String,
        business: Business,
        outbox: RequestLog,
        webhook_post: Option<HttpHandler>,
        functions: Vec<&'static str>,
        webhook_url: String,
        table: Option<DynamoTable>,
    ) -> Self {
        AppState(Arc::new(Inner {
            verify_token,
            app_secret,
            business,
            outbox,
            webhook_post,
            functions,
            webhook_url,
            table,
            assignment_queue: None,
            cognito: None,
            authorizer: None,
            api: None,
            webchat: None,
            websocket: None,
            ready: AtomicBool::new(false),
            chat: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
            http: reqwest::Client::new(),
        }))
    }

    /// Sets the assignment queue (before the state is shared).
    pub fn with_assignment_queue(mut self, url: Option<String>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.assignment_queue = url;
        }
        self
    }

    /// Sets the local user pool and the authorizer (before the state is shared).
    pub fn with_auth(mut self, cognito: Arc<LocalCognito>, authorizer: Arc<JwtAuthorizer>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.cognito = Some(cognito);
            inner.authorizer = Some(authorizer);
        }
        self
    }

    /// Sets the handler of the `/api/*` routes (before the state is shared).
    pub fn with_api(mut self, handler: Option<HttpHandler>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.api = handler;
        }
        self
    }

    /// Sets the handler of `/widget.js` and `/webchat/*` (before the state is shared).
    pub fn with_webchat(mut self, handler: Option<HttpHandler>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.webchat = handler;
        }
        self
    }

    /// Sets the WebSocket API (before the state is shared).
    pub fn with_websocket(
        mut self,
        websocket: Option<Arc<super::websocket::LocalWebSocketApi>>,
    ) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.websocket = websocket;
        }
        self
    }

    pub fn set_ready(&self) {
        self.0.ready.store(true, Ordering::SeqCst);
    }
}

pub fn router(state: AppState) -> Router {
    let front = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/webhook", get(webhook).post(webhook))
        .route("/local/health", get(health))
        .route("/local/outbox", get(outbox))
        .route("/local/send", post(send))
        .route("/local/chat", get(chat))
        .route("/local/state", get(contact_state))
        .route("/local/agents", get(agents))
        .route("/local/agents/{id}", post(toggle_agent))
        .route("/local/token", post(token))
        .route("/local/host", get(host_page))
        .route("/inbox", get(super::inbox::page))
        .route("/inbox/{*file}", get(super::inbox::page))
        .route(
            super::inbox::COGNITO_PROXY_PATH,
            post(super::inbox::cognito_proxy),
        )
        .route("/widget.js", get(webchat))
        .route("/webchat/{*rest}", any(webchat))
        .route("/api", any(api))
        .route("/api/{*rest}", any(api))
        .with_state(state.clone());
    match &state.0.websocket {
        Some(ws) => front.merge(super::websocket::router(ws.clone())),
        None => front,
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn webhook(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = raw_request(&method, &uri, &headers, &body);
    let id = format!("local-{}", state.0.counter.fetch_add(1, Ordering::Relaxed));
    let req = match apigw::to_lambda_request(&raw, &id) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e),
    };
    let resp = if method == Method::GET {
        prechat::entrypoints::verify::handle(&req, &state.0.verify_token)
    } else {
        match &state.0.webhook_post {
            Some(ingest) => ingest(req).await,
            None => {
                return problem(
                    StatusCode::NOT_IMPLEMENTED,
                    "webhook-ingest is not part of this build yet",
                )
            }
        }
    };
    let status = resp.status();
    let mut out = (status, apigw::body_bytes(&resp)).into_response();
    for (k, v) in resp.headers() {
        out.headers_mut().insert(k.clone(), v.clone());
    }
    out
}

fn raw_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> RawRequest {
    RawRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        raw_query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    }
}

/// What API Gateway answers by itself (no function runs): `{"message": ...}`.
fn gateway_answer(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

fn unauthorized(refusal: &Unauthorized) -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        [("content-type", "application/json")],
        Unauthorized::BODY,
    )
        .into_response();
    if let Ok(v) = refusal.www_authenticate().parse() {
        resp.headers_mut().insert("www-authenticate", v);
    }
    resp
}

/// `/widget.js`, `/webchat/*`: the web chat function, no authorizer (as the template routes it).
async fn webchat(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(handler) = &state.0.webchat else {
        return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
    };
    let raw = raw_request(&method, &uri, &headers, &body);
    let id = format!("local-{}", state.0.counter.fetch_add(1, Ordering::Relaxed));
    let req = match apigw::to_lambda_request(&raw, &id) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e),
    };
    let resp = handler(req).await;
    let mut out = (resp.status(), apigw::body_bytes(&resp)).into_response();
    for (k, v) in resp.headers() {
        out.headers_mut().insert(k.clone(), v.clone());
    }
    out
}

/// `/api/*`: the JWT authorizer, then the agent API with the claims in its event.
async fn api(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = raw_request(&method, &uri, &headers, &body);
    let Some(authorizer) = &state.0.authorizer else {
        // No user pool, no way to pass the authorizer: as API Gateway with an authorizer it
        // cannot reach.
        return unauthorized(&Unauthorized {
            reason: "no authorizer is configured",
        });
    };
    let claims = match authorizer.authorize(&raw.headers).await {
        Ok(c) => c,
        Err(refusal) => return unauthorized(&refusal),
    };
    let Some(handler) = &state.0.api else {
        return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
    };
    let id = format!("local-{}", state.0.counter.fetch_add(1, Ordering::Relaxed));
    let req = match apigw::to_authorized_request(&raw, &id, &claims) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e),
    };
    let resp = handler(req).await;
    let mut out = (resp.status(), apigw::body_bytes(&resp)).into_response();
    for (k, v) in resp.headers() {
        out.headers_mut().insert(k.clone(), v.clone());
    }
    out
}

#[derive(Debug, Deserialize)]
struct HostQuery {
    lang: Option<String>,
}

/// `GET /local/host[?lang=es]`: a business's page embedding the web chat widget. Open it as
/// `http://localhost:PORT/local/host`: the widget then comes from another origin
/// (`http://127.0.0.1:PORT/widget.js`), as from the stack's API on a real website.
async fn host_page(State(state): State<AppState>, Query(q): Query<HostQuery>) -> Response {
    let api = state
        .0
        .webhook_url
        .trim_end_matches("/webhook")
        .replace("localhost", "127.0.0.1");
    let lang = q
        .lang
        .filter(|l| l.len() == 2 && l.bytes().all(|b| b.is_ascii_lowercase()))
        .map(|l| format!(r#" data-lang="{l}""#))
        .unwrap_or_default();
    let tag = format!(
        r##"<script src="{api}/widget.js" data-survey="default"{lang} data-accent="#7b2cbf" async></script>"##
    );
    Html(HOST_PAGE.replace("<!--WIDGET-->", &tag)).into_response()
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    username: String,
}

/// `POST /local/token` `{"username"}`: a real sign-in at the local Cognito.
async fn token(State(state): State<AppState>, Json(req): Json<TokenRequest>) -> Response {
    let Some(cognito) = &state.0.cognito else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "no local user pool");
    };
    if !cognito.passwords.contains_key(&req.username) {
        let known: Vec<&String> = cognito.passwords.keys().collect();
        return problem(
            StatusCode::NOT_FOUND,
            format!("no local user {:?} (users: {known:?})", req.username),
        );
    }
    match cognito.tokens(&req.username).await {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => problem(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    let ready = state.0.ready.load(Ordering::SeqCst);
    let body = Json(json!({ "ready": ready, "functions": state.0.functions }));
    if ready {
        (StatusCode::OK, body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

#[derive(Debug, Deserialize)]
struct OutboxQuery {
    wa_id: Option<String>,
    user_id: Option<String>,
}

async fn outbox(State(state): State<AppState>, Query(q): Query<OutboxQuery>) -> Response {
    Json(
        state
            .0
            .outbox
            .entries(q.wa_id.as_deref(), q.user_id.as_deref()),
    )
    .into_response()
}

/// Who the simulated user is, as the page gives it.
#[derive(Debug, Deserialize)]
struct Who {
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

impl Who {
    fn contact(&self) -> Result<SimContact, meta::SimError> {
        SimContact::new(&self.name, self.phone.as_deref(), self.username.as_deref())
    }
}

#[derive(Debug, Deserialize)]
struct SendRequest {
    #[serde(flatten)]
    who: Who,
    input: SimInput,
}

async fn send(State(state): State<AppState>, Json(req): Json<SendRequest>) -> Response {
    let contact = match req.who.contact() {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = req.input.check() {
        return problem(StatusCode::BAD_REQUEST, e.to_string());
    }
    let n = state.0.counter.fetch_add(1, Ordering::Relaxed);
    let sent_at = now_millis();
    let wamid = format!("wamid.SIM{sent_at:013}{n:06}");
    let payload = meta::message_webhook(
        &state.0.business,
        &contact,
        &wamid,
        (sent_at / 1000) as i64,
        &req.input,
    );
    let body = payload.to_string();
    let signature = meta::sign(&state.0.app_secret, body.as_bytes());
    state.0.outbox.note_inbound(
        &wamid,
        StatusRecipient {
            wa_id: contact.wa_id.clone(),
            user_id: Some(contact.user_id.clone()),
        },
    );
    let answered = state
        .0
        .http
        .post(&state.0.webhook_url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await;
    let (webhook_status, webhook_body) = match answered {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        }
        Err(e) => return problem(StatusCode::BAD_GATEWAY, format!("posting to /webhook: {e}")),
    };
    let entry = ChatInbound {
        wamid: wamid.clone(),
        sent_at,
        user_id: contact.user_id.clone(),
        wa_id: contact.wa_id.clone(),
        input: serde_json::to_value(&req.input).unwrap_or(Value::Null),
        webhook_status,
    };
    state
        .0
        .chat
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(entry);
    Json(json!({
        "wamid": wamid,
        "webhook_status": webhook_status,
        "webhook_body": webhook_body,
        "contact": { "user_id": contact.user_id, "wa_id": contact.wa_id, "username": contact.username },
        "payload": payload,
    }))
    .into_response()
}

async fn chat(State(state): State<AppState>, Query(who): Query<Who>) -> Response {
    let contact = match who.contact() {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let inbound: Vec<ChatInbound> = state
        .0
        .chat
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|m| m.user_id == contact.user_id)
        .cloned()
        .collect();
    let mut outbound = state.0.outbox.entries(None, Some(&contact.user_id));
    if let Some(w) = &contact.wa_id {
        outbound.extend(state.0.outbox.entries(Some(w), None));
    }
    outbound.sort_by_key(|e| e.seq);
    outbound.dedup_by_key(|e| e.seq);
    Json(json!({
        "contact": { "user_id": contact.user_id, "wa_id": contact.wa_id, "username": contact.username },
        "inbound": inbound,
        "outbound": outbound,
    }))
    .into_response()
}

/// The contact's items (and its conversation's) as plain JSON, for the side panel.
async fn contact_state(State(state): State<AppState>, Query(who): Query<Who>) -> Response {
    let contact = match who.contact() {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(table) = &state.0.table else {
        return Json(json!({})).into_response();
    };
    let pnid = &state.0.business.phone_number_id;
    let mut keys = vec![contact.user_id.clone()];
    keys.extend(contact.wa_id.clone());
    let mut profile = Value::Null;
    for key in keys {
        match get_item(table, &format!("CONTACT#{pnid}#{key}"), "PROFILE").await {
            Ok(Some(item)) => {
                profile = item;
                break;
            }
            Ok(None) => {}
            Err(e) => return problem(StatusCode::BAD_GATEWAY, e),
        }
    }
    let conversation_id = profile.as_object().and_then(|o| {
        o.iter()
            .filter(|(k, _)| k.contains("conversation"))
            .find_map(|(_, v)| v.as_str().map(str::to_owned))
    });
    let mut conversation = Value::Null;
    if let Some(id) = &conversation_id {
        match get_item(table, &format!("CONV#{id}"), "CONV").await {
            Ok(Some(item)) => conversation = item,
            Ok(None) => {}
            Err(e) => return problem(StatusCode::BAD_GATEWAY, e),
        }
    }
    // The hand-off ticket, and the place in its team's line while it waits.
    let mut handoff = Value::Null;
    let mut queue_position = Value::Null;
    if let Some(id) = &conversation_id {
        match get_item(table, &format!("HANDOFF#{id}"), "HANDOFF").await {
            Ok(Some(ticket)) => {
                if let Some(line) = ticket.get("gsi1pk").and_then(Value::as_str) {
                    match line_position(table, line, &format!("HANDOFF#{id}")).await {
                        Ok(p) => queue_position = p.map(Value::from).unwrap_or(Value::Null),
                        Err(e) => return problem(StatusCode::BAD_GATEWAY, e),
                    }
                }
                handoff = ticket;
            }
            Ok(None) => {}
            Err(e) => return problem(StatusCode::BAD_GATEWAY, e),
        }
    }
    let agents = match list_agents(table).await {
        Ok(a) => a,
        Err(e) => return problem(StatusCode::BAD_GATEWAY, e),
    };
    Json(json!({
        "contact": profile,
        "conversation": conversation,
        "handoff": handoff,
        "queue_position": queue_position,
        "agents": agents,
    }))
    .into_response()
}

/// 1-based place of `pk` in a `gsi1` partition (a team's waiting line, VIP first then oldest).
async fn line_position(table: &DynamoTable, line: &str, pk: &str) -> Result<Option<usize>, String> {
    let items = query_gsi1(table, line).await?;
    Ok(items
        .iter()
        .position(|i| matches!(i.get("pk"), Some(AttributeValue::S(p)) if p == pk))
        .map(|i| i + 1))
}

async fn query_gsi1(
    table: &DynamoTable,
    partition: &str,
) -> Result<Vec<HashMap<String, AttributeValue>>, String> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = table
            .client
            .query()
            .table_name(&table.name)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(partition.to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// Every agent (`AGENT#` items, listed by `gsi1` `AGENTS`): id, name, teams, status, load.
async fn list_agents(table: &DynamoTable) -> Result<Vec<Value>, String> {
    let items = query_gsi1(table, "AGENTS").await?;
    Ok(items
        .iter()
        .map(|i| {
            let item = item_json(i);
            let spec: Value = item
                .get("spec")
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null);
            let id = item
                .get("pk")
                .and_then(Value::as_str)
                .map(|p| p.trim_start_matches("AGENT#").to_owned());
            let status = item.get("status").or_else(|| spec.get("status")).cloned();
            json!({
                "id": id,
                "name": spec.get("name"),
                "teams": spec.get("teams"),
                "status": status,
                "online": status.as_ref().and_then(Value::as_str) == Some("online"),
                "open": item.get("open"),
                "capacity": item.get("capacity"),
            })
        })
        .collect())
}

async fn agents(State(state): State<AppState>) -> Response {
    let Some(table) = &state.0.table else {
        return Json(json!([])).into_response();
    };
    match list_agents(table).await {
        Ok(a) => Json(a).into_response(),
        Err(e) => problem(StatusCode::BAD_GATEWAY, e),
    }
}

#[derive(Debug, Deserialize)]
struct Toggle {
    online: bool,
}

async fn toggle_agent(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Json(t): Json<Toggle>,
) -> Response {
    let Some(table) = &state.0.table else {
        return problem(StatusCode::NOT_FOUND, "no table");
    };
    let queue = state.0.assignment_queue.as_deref();
    match super::seed::set_agent_status(&table.name, queue, &id, t.online).await {
        Ok(text) => Json(json!({ "id": id, "online": t.online, "result": text })).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    }
}

async fn get_item(table: &DynamoTable, pk: &str, sk: &str) -> Result<Option<Value>, String> {
    let out = table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    Ok(out.item.map(|i| item_json(&i)))
}

/// A DynamoDB item as plain JSON (numbers as numbers, sets as arrays).
pub fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attr_json(v)))
            .collect(),
    )
}

fn attr_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!(s),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| json!(n)),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(attr_json).collect()),
        AttributeValue::M(m) => item_json(m),
        AttributeValue::Ss(s) => json!(s),
        AttributeValue::Ns(n) => json!(n),
        _ => json!("(binary)"),
    }
}
