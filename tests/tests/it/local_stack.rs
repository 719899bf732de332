//! Issue 11's flow through the real local stack (`prechat-local`, what `cargo xtask local`
//! runs) over HTTP: the simulated contact walks the default survey with `/local/send`, tokens
//! come from `/local/token` (moto's Cognito), `/api/*` goes through the local JWT authorizer to
//! agent-api, replies reach the local Graph API (`/local/outbox`). The stack runs once, on a
//! fresh prefix in moto ([`flow`]); each test checks one behaviour of what it saw.
//!
//! The realtime channel too: alice and bruno hold WebSockets on the stack's `/ws` (the
//! emulated WebSocket API running ws-authorizer and ws-connections) for the whole flow, and
//! the pushes the assigner and the engine send through the emulated management API arrive on
//! them as frames.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message};

/// The stack's process (group), stopped by its own pid when dropped.
struct Stack {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Stack {
    fn start() -> Stack {
        let port = prechat_tests::lambda::free_port();
        let log = std::env::temp_dir().join(format!("prechat-local-it-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("cargo")
            .args(["run", "-q", "-p", "prechat-local", "--bin", "prechat-local"])
            .current_dir(prechat_tests::workspace_root())
            .env("AWS_ENDPOINT_URL", prechat_tests::endpoint())
            .env("PRECHAT_PORT", port.to_string())
            .env("PRECHAT_LOCAL_PREFIX", prechat_tests::unique_prefix())
            .env("PRECHAT_GRAPH_STATUS_MS", "20")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prechat-local: {e}"));
        Stack {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

async fn wait_healthy(stack: &Stack) {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let ok = reqwest::get(format!("{}/local/health", stack.base)).await;
        if ok.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never healthy:\n{}",
            stack.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

const ANA: (&str, &str) = ("Ana Silva", "16505550101");

async fn send(base: &str, input: Value) {
    let body = json!({"name": ANA.0, "phone": ANA.1, "input": input});
    let r = reqwest::Client::new()
        .post(format!("{base}/local/send"))
        .json(&body);
    let answer: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["webhook_status"], 200, "{answer}");
}

async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// What the business sent Ana (mark-as-read left out), oldest first.
async fn business_messages(base: &str) -> Vec<Value> {
    let all = get_json(format!("{base}/local/outbox?wa_id={}", ANA.1)).await;
    let all = all.as_array().cloned().unwrap_or_default();
    all.into_iter()
        .filter(|e| e["body"]["status"] != "read")
        .collect()
}

/// The answer to a business message: the first button or row, else a text for its prompt.
fn answer_to(message: &Value) -> Option<Value> {
    let body = &message["body"];
    let context = message["wamid"].clone();
    let interactive = &body["interactive"];
    let choice = |c: &Value, kind: &str| json!({"type": kind, "id": c["id"], "title": c["title"], "context_id": context});
    if let Some(b) = interactive["action"]["buttons"].get(0) {
        return Some(choice(&b["reply"], "button"));
    }
    if let Some(row) = interactive["action"]["sections"][0]["rows"].get(0) {
        return Some(choice(row, "list"));
    }
    let prompt = body["text"]["body"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    let rules = [
        ("thank you", ""),
        ("welcome", ""),
        ("talking to", ""),
        ("in line", ""),
        ("name", ANA.0),
        ("mail", "ana@example.com"),
        ("phone", "+1 650 555 1234"),
        ("customer id", "C123456"),
        ("order number", "12345678"),
        ("country", "Spain"),
    ];
    let text = rules
        .iter()
        .find(|(k, _)| prompt.contains(k))
        .map_or("SKIP", |(_, t)| t);
    (!text.is_empty()).then(|| json!({"type": "text", "body": text}))
}

/// Walks the default survey from "hi" until the hand-off ticket exists.
async fn complete_survey(base: &str) {
    send(base, json!({"type": "text", "body": "hi"})).await;
    let (mut answered, mut last_len) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = get_json(format!("{base}/local/state?phone={}", ANA.1)).await;
        if state["handoff"].is_object() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "survey never handed off: {state}"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        let sent = business_messages(base).await;
        // Answer the newest message once no more came in since the last look (a greeting and
        // its first question arrive together).
        let stable = std::mem::replace(&mut last_len, sent.len()) == sent.len();
        if stable && sent.len() > answered {
            answered = sent.len();
            if let Some(input) = sent.last().and_then(answer_to) {
                send(base, input).await;
            }
        }
    }
}

async fn token(base: &str, user: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/local/token"))
        .json(&json!({"username": user}));
    let tokens: Value = r.send().await.unwrap().json().await.unwrap();
    tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn api(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(k) = key {
        r = r.header("idempotency-key", k);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// The JSON frames one socket received, each with when it arrived.
#[derive(Clone, Default)]
struct Frames(Arc<Mutex<Vec<(Instant, Value)>>>);

impl Frames {
    fn all(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The first frame matching `pred`, waiting up to 60 s for it.
    async fn wait(&self, what: &str, pred: impl Fn(&Value) -> bool) -> (Instant, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|(_, v)| pred(v))
                .cloned();
            if let Some(f) = found {
                return f;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} frame; got {:?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn ws_url(base: &str, token: &str) -> String {
    format!("{}/ws?token={token}", base.replacen("http://", "ws://", 1))
}

/// Opens a socket as the inbox does; its frames are collected until the runtime stops. The
/// first frame sent is a ping; its answer is the first frame received.
async fn open_socket(base: &str, token: &str) -> Frames {
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(base, token))
        .await
        .unwrap_or_else(|e| panic!("the socket did not open: {e}"));
    socket
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    let frames = Frames::default();
    let sink = frames.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = socket.next().await {
            if let Message::Text(t) = m {
                let v = serde_json::from_str(t.as_str()).unwrap_or(Value::String(t.to_string()));
                sink.0.lock().unwrap().push((Instant::now(), v));
            }
        }
    });
    frames
}

/// The HTTP status a refused handshake got.
async fn refused_status(url: String) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("not an HTTP refusal: {e}"),
        Ok(_) => 101,
    }
}

/// What the management API answers a post to `id`, signed or not.
async fn manage(base: &str, id: &str, signed: bool) -> u16 {
    let mut r = reqwest::Client::new()
        .post(format!("{base}/@connections/{id}"))
        .body("{}");
    if signed {
        r = r.header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00",
        );
    }
    r.send().await.unwrap().status().as_u16()
}

/// What the realtime channel showed during the flow.
struct Live {
    alice: Vec<Value>,
    bruno: Vec<Value>,
    /// No token, a token that is not one: the handshake's status.
    refused: (u16, u16),
    /// An unsigned post, a signed post to a connection that is not open.
    management: (u16, u16),
    /// From posting the contact's follow-up to `/webhook` to its push on alice's socket.
    message_latency: Duration,
}

/// What the flow over HTTP saw.
struct Seen {
    live: Live,
    listed: Value,
    read: Value,
    reply: (u16, Value),
    retry: (u16, Value),
    outbox_replies: usize,
    bruno: u16,
    no_token: u16,
    open_before: Value,
    close: u16,
    open_after: Value,
    web: Web,
}

/// The web chat through the stack's front door.
struct Web {
    widget: (u16, String),
    form: (u16, Option<String>, Value),
    foreign: u16,
}

async fn web(base: &str) -> Web {
    let http = reqwest::Client::new();
    let r = http.get(format!("{base}/widget.js")).send().await.unwrap();
    let widget = (
        r.status().as_u16(),
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    );
    let r = http
        .get(format!("{base}/webchat/form?lang=es"))
        .header("origin", base)
        .send()
        .await
        .unwrap();
    let allow = r
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let form = (
        r.status().as_u16(),
        allow,
        r.json().await.unwrap_or(Value::Null),
    );
    let foreign = http
        .get(format!("{base}/webchat/form"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    Web {
        widget,
        form,
        foreign,
    }
}

async fn transcript_has(base: &str, token: &str, path: &str, text: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, c) = api(base, "GET", path, Some(token), None, None).await;
        if c.to_string().contains(text) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} never reached the transcript: {c}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn replies_in_outbox(base: &str, text: &str, at_least: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = business_messages(base)
            .await
            .iter()
            .filter(|m| m["body"]["text"]["body"] == text)
            .count();
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn run(stack: &Stack) -> Seen {
    let base = stack.base.as_str();
    wait_healthy(stack).await;
    let alice = token(base, "alice").await;
    let alice_socket = open_socket(base, &alice).await;
    let bruno_socket = open_socket(base, &token(base, "bruno").await).await;
    let refused = (
        refused_status(format!("{}/ws", base.replacen("http://", "ws://", 1))).await,
        refused_status(ws_url(base, "not.a.token")).await,
    );
    let management = (
        manage(base, "AAAAAAAAAAAAAA==", false).await,
        manage(base, "AAAAAAAAAAAAAA==", true).await,
    );
    let web = web(base).await;
    complete_survey(base).await;
    let listed = loop {
        let (_, l) = api(base, "GET", "/api/conversations", Some(&alice), None, None).await;
        if l["conversations"].as_array().is_some_and(|c| !c.is_empty()) {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let id = listed["conversations"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/conversations/{id}");
    alice_socket
        .wait("conversation.assigned", |f| {
            f["type"] == "conversation.assigned" && f["conversation_id"] == id.as_str()
        })
        .await;
    let posted = Instant::now();
    send(base, json!({"type": "text", "body": "first follow-up"})).await;
    let (arrived, _) = alice_socket
        .wait("message.created", |f| {
            f["type"] == "message.created" && f["entry"]["text"] == "first follow-up"
        })
        .await;
    let message_latency = arrived.duration_since(posted);
    eprintln!("measured: contact message posted to /webhook -> push on the agent's socket: {message_latency:?}");
    send(base, json!({"type": "text", "body": "second follow-up"})).await;
    let read = transcript_has(base, &alice, &path, "second follow-up").await;
    let reply_path = format!("{path}/messages");
    let hello = Some(json!({"text": "Hello Ana"}));
    let reply = api(
        base,
        "POST",
        &reply_path,
        Some(&alice),
        hello.clone(),
        Some("k-1"),
    )
    .await;
    replies_in_outbox(base, "Hello Ana", 1).await;
    let retry = api(base, "POST", &reply_path, Some(&alice), hello, Some("k-1")).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // time for a second send, were there one
    let outbox_replies = replies_in_outbox(base, "Hello Ana", 2).await;
    let bruno = api(
        base,
        "GET",
        &path,
        Some(&token(base, "bruno").await),
        None,
        None,
    )
    .await
    .0;
    let no_token = api(base, "GET", &path, None, None, None).await.0;
    let open_before = api(base, "GET", "/api/me", Some(&alice), None, None)
        .await
        .1["open"]
        .clone();
    let close = api(
        base,
        "POST",
        &format!("{path}/close"),
        Some(&alice),
        None,
        None,
    )
    .await
    .0;
    let open_after = api(base, "GET", "/api/me", Some(&alice), None, None)
        .await
        .1["open"]
        .clone();
    let reply_entry = reply.1["message"]["id"].clone();
    alice_socket
        .wait("read tick", |f| {
            f["type"] == "message.status"
                && f["entry"]["id"] == reply_entry
                && f["entry"]["status"] == "read"
        })
        .await;
    alice_socket
        .wait("conversation.closed", |f| {
            f["type"] == "conversation.closed" && f["conversation_id"] == id.as_str()
        })
        .await;
    let live = Live {
        alice: alice_socket.all(),
        bruno: bruno_socket.all(),
        refused,
        management,
        message_latency,
    };
    Seen {
        live,
        listed,
        read,
        reply,
        retry,
        outbox_replies,
        bruno,
        no_token,
        open_before,
        close,
        open_after,
        web,
    }
}

fn flow() -> &'static Seen {
    static SEEN: OnceLock<Seen> = OnceLock::new();
    SEEN.get_or_init(|| {
        std::thread::spawn(|| {
            let stack = Stack::start();
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(run(&stack))
        })
        .join()
        .unwrap_or_else(|_| panic!("the local flow failed (its panic is printed above)"))
    })
}

#[test]
fn over_http_the_contact_is_assigned_to_alice_and_listed_with_labelled_answers() {
    let seen = flow();
    assert_eq!(
        seen.listed["conversations"][0]["agent"], "alice",
        "{}",
        seen.listed
    );
    let answers = seen.read["answers"].as_array().unwrap();
    let name = answers.iter().find(|a| a["key"] == "name").unwrap();
    assert_eq!(
        (name["label"].clone(), name["value"].clone()),
        (json!("Name"), json!(ANA.0))
    );
}

#[test]
fn over_http_follow_ups_are_in_the_transcript_in_order() {
    let entries = flow().read["transcript"]["entries"].as_array().unwrap();
    let texts: Vec<&str> = entries
        .iter()
        .filter(|e| e["author"]["kind"] == "contact")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(
        texts.ends_with(&["first follow-up", "second follow-up"]),
        "{texts:?}"
    );
}

#[test]
fn over_http_a_retried_reply_reaches_the_local_graph_api_once() {
    let seen = flow();
    assert_eq!(seen.reply.0, 202, "{}", seen.reply.1);
    assert_eq!(seen.retry, seen.reply);
    assert_eq!(seen.outbox_replies, 1);
}

#[test]
fn over_http_bruno_gets_404_and_no_token_401() {
    let seen = flow();
    assert_eq!((seen.bruno, seen.no_token), (404, 401));
}

#[test]
fn over_http_closing_drops_alice_s_open_count() {
    let seen = flow();
    assert_eq!(seen.close, 200);
    assert_eq!(
        (seen.open_before.clone(), seen.open_after.clone()),
        (json!(1), json!(0))
    );
}

#[test]
fn over_a_websocket_alice_sees_her_conversation_live_and_bruno_sees_none_of_it() {
    let live = &flow().live;
    assert_eq!(live.alice[0], json!({"type": "pong"}));
    assert_eq!(live.bruno, [json!({"type": "pong"})], "bruno got pushes");
    let kinds: Vec<&str> = live.alice[1..]
        .iter()
        .filter_map(|f| f["type"].as_str())
        .collect();
    for kind in [
        "conversation.assigned",
        "message.created",
        "message.status",
        "conversation.closed",
    ] {
        assert!(kinds.contains(&kind), "{kind} not pushed: {kinds:?}");
    }
    // Contract: every push names its conversation and when it happened.
    for f in &live.alice[1..] {
        assert!(f["conversation_id"].is_string() && f["at"].is_i64(), "{f}");
    }
    // The latency is printed (`measured: ...`), not asserted: the wait above is the bound.
    let _ = live.message_latency;
}

#[test]
fn over_a_websocket_the_handshake_and_the_management_api_refuse_like_api_gateway() {
    let live = &flow().live;
    assert_eq!(live.refused, (401, 401));
    assert_eq!(live.management, (403, 410));
}

#[test]
fn over_http_the_web_chat_serves_its_widget_and_form_to_the_stack_s_own_origin_only() {
    let web = &flow().web;
    assert_eq!(web.widget.0, 200);
    assert!(
        web.widget.1.starts_with("text/javascript"),
        "{:?}",
        web.widget
    );
    let (status, allow, form) = &web.form;
    assert_eq!(*status, 200, "{form}");
    assert!(allow
        .as_deref()
        .is_some_and(|a| a.starts_with("http://127.0.0.1:")));
    assert_eq!(form["language"], "es", "{form}");
    assert_eq!(web.foreign, 403);
}
