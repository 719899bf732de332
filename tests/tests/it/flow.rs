//! Issue 11's proof, on moto and wiremock: the whole chat after the pre-chat through the real
//! entrypoints (survey-engine, agent-assigner notifying the team webhook, agent-api with claims
//! in the JWT authorizer's exact shape, reply-sender against a wiremock Graph API), sharing
//! one injected clock. The flow runs once ([`flow`]) and each test checks one behaviour of it.
//!
//! Ana completes the survey and is assigned to alice (capacity 1); Ben completes it and waits
//! in line; Ana writes twice more; alice lists and reads Ana's conversation, replies twice with
//! one `Idempotency-Key`; bruno (another team) and a request without claims try; alice closes
//! Ana's conversation and Ben is assigned to her; 25 hours later alice replies to Ben.

use std::sync::OnceLock;

use lambda_http::Request;
use prechat::entrypoints::agent_api::AgentApi;
use prechat::routing::model::{Agent, AgentStatus, Team};
use prechat::store::survey_store::SurveyStore as _;
use prechat::whatsapp::ContactRef;
use prechat_tests::api::{event, json_of, user_claims};
use prechat_tests::app::{text, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SURVEY: &str = r#"
id: default
languages: [en]
default_language: en
texts:
  greeting_new: { en: "Hi {{contact.first_name}}!" }
  greeting_returning: { en: "Welcome back!" }
  completion: { en: "Thank you! An agent will be with you shortly." }
  handoff: { en: "Connecting you with an agent." }
  ended: { en: "Sorry, we could not continue." }
  opted_out: { en: "You will not get automated messages." }
  text_only: { en: "Please answer with text." }
  invalid: { en: "Please try again." }
  list_button: { en: "Choose" }
  reminder: { en: "Still there?" }
keywords:
  restart: { en: [restart] }
  human: { en: [agent] }
  stop: { en: [stop] }
  skip: { en: [skip] }
questions:
  - key: name
    label: { en: "Name" }
    type: text
    save_to: contact.name
    prompt: { en: "What is your full name?" }
    fallback: skip
  - key: order_id
    label: { en: "Order number" }
    type: text
    save_to: var.order_id
    prompt: { en: "What is your order number?" }
    fallback: skip
"#;

/// What the flow saw, step by step (plain data: the flow's runtime is gone when tests read it).
struct Flow {
    ana_conv: String,
    /// alice's `GET /api/conversations` after Ana's hand-off.
    listed: Value,
    /// alice's `GET /api/conversations/{ana}` after Ana's two follow-ups.
    read: Value,
    /// Bodies the team webhook received, in order.
    hook: Vec<Value>,
    /// alice's reply, then the retry with the same `Idempotency-Key`.
    reply: (u16, Value),
    retry: (u16, Value),
    /// Text messages "Hello Ana" the Graph API received.
    graph_replies: usize,
    bruno_read: u16,
    bruno_reply: u16,
    no_claims: (u16, Value),
    close: u16,
    open_before_close: u32,
    open_after_close: u32,
    /// Who holds Ben's conversation before and after alice closes Ana's.
    ben_agent_before: Option<String>,
    ben_agent_after: Option<String>,
    late_text: (u16, Value),
    late_template: u16,
}

fn agent(id: &str, team: &str) -> Agent {
    Agent {
        id: id.into(),
        name: id.to_uppercase(),
        teams: vec![team.into()],
        languages: vec![],
        status: AgentStatus::Online,
        capacity: 1,
        open: 0,
        last_assigned_at: 0,
        leads: vec![],
        sub: Some(format!("sub-{id}")),
    }
}

fn contact(n: u64, name: &str) -> ContactRef {
    ContactRef {
        user_id: Some(format!("US.{}", 13491208655302741918u64 + n)),
        wa_id: Some(format!("1650555{n:04}")),
        profile_name: Some(name.into()),
        username: None,
    }
}

/// A Graph API that accepts every call like Meta does, and a team webhook that takes every post.
async fn servers() -> (MockServer, MockServer) {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "x", "wa_id": "x"}],
            "messages": [{"id": "wamid.OUT", "message_status": "accepted"}]
        })))
        .mount(&graph)
        .await;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    (graph, hook)
}

async fn setup(app: &mut TestApp, hook: &MockServer) {
    app.surveys()
        .publish("default", SURVEY, app.clock.unix())
        .await
        .unwrap();
    let mut sales: Team = serde_json::from_value(json!({"id": "sales", "name": "Sales"})).unwrap();
    sales.notify_url = Some(format!("{}/hook", hook.uri()));
    let support: Team = serde_json::from_value(json!({"id": "support", "name": "Care"})).unwrap();
    let routing = serde_json::from_value(json!({"default_team": "sales"})).unwrap();
    let store = app.routing();
    store.put_team(&sales).await.unwrap();
    store.put_team(&support).await.unwrap();
    store.put_routing(&routing).await.unwrap();
    store.upsert_agent(&agent("alice", "sales")).await.unwrap();
    store
        .upsert_agent(&agent("bruno", "support"))
        .await
        .unwrap();
    app.assigner = std::sync::Arc::new(app.assigner_with(Some("hook-secret")));
}

/// Survey answered from "hi" to the last answer, then the hand-off job run.
async fn complete_survey(app: &TestApp, who: &ContactRef, name: &str) -> String {
    for answer in ["hi", name, "1234567"] {
        app.say(who, text(answer)).await;
    }
    app.drain_assignments().await;
    let conv = app.conversation(who).await;
    prechat_tests::app::s(&conv, "pk")
        .trim_start_matches("CONV#")
        .to_owned()
}

async fn call(api: &AgentApi, req: Request) -> (u16, Value) {
    json_of(&api.handle(req).await)
}

fn get(path: &str, who: &str) -> Request {
    event(
        "GET",
        path,
        Some(user_claims(who, "[agents]")),
        json!({}),
        None,
    )
}

fn post(path: &str, who: &str, key: Option<&str>, body: &str) -> Request {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(k) = key {
        headers["idempotency-key"] = json!(k);
    }
    event(
        "POST",
        path,
        Some(user_claims(who, "[agents]")),
        headers,
        Some(body),
    )
}

async fn open(app: &TestApp, id: &str) -> u32 {
    app.routing().get_agent(id).await.unwrap().unwrap().open
}

async fn holder(app: &TestApp, conv: &str) -> Option<String> {
    app.routing()
        .get_ticket(conv)
        .await
        .unwrap()
        .and_then(|t| t.agent)
}

async fn run_flow() -> Flow {
    let (graph, hook) = servers().await;
    let mut app = TestApp::spawn().await;
    setup(&mut app, &hook).await;
    app.put_access_token("graph-token").await;
    let sender = app.sender(&graph.uri(), &[]).await;
    let api = app.agent_api(&[]);
    let (ana, ben) = (contact(1, "Ana López"), contact(2, "Ben Ode"));
    let ana_conv = complete_survey(&app, &ana, "Ana López").await;
    let ben_conv = complete_survey(&app, &ben, "Ben Ode").await;
    let listed = call(&api, get("/api/conversations", "alice")).await.1;
    app.say(&ana, text("first follow-up")).await;
    app.say(&ana, text("second follow-up")).await;
    app.drain_assignments().await;
    let ana_path = format!("/api/conversations/{ana_conv}");
    let read = call(&api, get(&ana_path, "alice")).await.1;
    app.drain_outbound(&sender).await;
    let reply_path = format!("{ana_path}/messages");
    let body = r#"{"text":"Hello Ana"}"#;
    let reply = call(&api, post(&reply_path, "alice", Some("k-1"), body)).await;
    app.drain_outbound(&sender).await;
    let retry = call(&api, post(&reply_path, "alice", Some("k-1"), body)).await;
    app.drain_outbound(&sender).await;
    let graph_replies = graph_texts(&graph, "Hello Ana").await;
    let bruno_read = call(&api, get(&ana_path, "bruno")).await.0;
    let bruno_reply = call(&api, post(&reply_path, "bruno", None, r#"{"text":"x"}"#))
        .await
        .0;
    let no_claims = call(&api, event("GET", &ana_path, None, json!({}), None)).await;
    let (open_before_close, ben_agent_before) =
        (open(&app, "alice").await, holder(&app, &ben_conv).await);
    let close = call(&api, post(&format!("{ana_path}/close"), "alice", None, ""))
        .await
        .0;
    let open_after_close = open(&app, "alice").await;
    app.drain_assignments().await;
    let ben_agent_after = holder(&app, &ben_conv).await;
    app.clock.advance(25 * 3600);
    let ben_reply = format!("/api/conversations/{ben_conv}/messages");
    let late_text = call(
        &api,
        post(&ben_reply, "alice", None, r#"{"text":"Still there?"}"#),
    )
    .await;
    let template = r#"{"template":{"name":"follow_up","language":"en","parameters":["Ben"]}}"#;
    let late_template = call(&api, post(&ben_reply, "alice", None, template))
        .await
        .0;
    let hook = hook_bodies(&hook).await;
    Flow {
        ana_conv,
        listed,
        read,
        hook,
        reply,
        retry,
        graph_replies,
        bruno_read,
        bruno_reply,
        no_claims,
        close,
        open_before_close,
        open_after_close,
        ben_agent_before,
        ben_agent_after,
        late_text,
        late_template,
    }
}

/// How many text messages with exactly `body` the Graph API received.
async fn graph_texts(graph: &MockServer, body: &str) -> usize {
    let requests = graph.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|v| v["type"] == "text" && v["text"]["body"] == body)
        .count()
}

async fn hook_bodies(hook: &MockServer) -> Vec<Value> {
    let requests = hook.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect()
}

/// The flow runs once for all its tests, on a runtime of its own (as the assigner's burst).
fn flow() -> &'static Flow {
    static FLOW: OnceLock<Flow> = OnceLock::new();
    FLOW.get_or_init(|| {
        std::thread::spawn(|| tokio::runtime::Runtime::new().unwrap().block_on(run_flow()))
            .join()
            .unwrap_or_else(|_| panic!("the flow failed (its panic is printed above)"))
    })
}

fn ids(list: &Value) -> Vec<&str> {
    let all = list["conversations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    all.iter().filter_map(|c| c["id"].as_str()).collect()
}

#[test]
fn a_completed_survey_is_listed_for_the_assigned_agent() {
    let f = flow();
    assert_eq!(ids(&f.listed), [f.ana_conv.as_str()], "{}", f.listed);
}

#[test]
fn the_conversation_shows_the_answers_with_their_labels() {
    let f = flow();
    let answers = f.read["answers"].as_array().unwrap();
    let label = |key: &str| answers.iter().find(|a| a["key"] == key).cloned();
    let name = label("name").unwrap();
    assert_eq!(
        (name["label"].clone(), name["value"].clone()),
        (json!("Name"), json!("Ana López"))
    );
    let order = label("order_id").unwrap();
    assert_eq!(order["label"], "Order number");
    assert_eq!(
        (order["saved_to"].clone(), order["value"].clone()),
        (json!("var.order_id"), json!("1234567"))
    );
    assert_eq!(f.read["agent"], "alice");
}

#[test]
fn messages_after_the_hand_off_appear_in_the_transcript_in_order() {
    let f = flow();
    let entries = f.read["transcript"]["entries"].as_array().unwrap();
    let from_contact: Vec<&str> = entries
        .iter()
        .filter(|e| e["author"]["kind"] == "contact")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(
        from_contact.ends_with(&["first follow-up", "second follow-up"]),
        "{from_contact:?}"
    );
}

#[test]
fn the_team_webhook_hears_of_the_assignment() {
    let f = flow();
    let events: Vec<&str> = f.hook.iter().filter_map(|b| b["event"].as_str()).collect();
    assert_eq!(
        events.first(),
        Some(&"conversation.assigned"),
        "{:?}",
        f.hook
    );
    assert_eq!(
        f.hook[0]["conversation_id"],
        f.ana_conv.as_str(),
        "{}",
        f.hook[0]
    );
    let created: Vec<_> = f
        .hook
        .iter()
        .filter(|b| b["event"] == "message.created")
        .collect();
    assert_eq!(
        created.len(),
        2,
        "both messages after the hand-off reach the help desk"
    );
}

#[test]
fn a_reply_reaches_the_graph_api_exactly_once_also_when_retried_with_its_key() {
    let f = flow();
    assert_eq!(f.reply.0, 202, "{}", f.reply.1);
    assert_eq!(
        f.retry, f.reply,
        "the retry answers what the first request did"
    );
    assert_eq!(f.graph_replies, 1);
}

#[test]
fn another_agent_gets_404_and_a_request_without_claims_401() {
    let f = flow();
    assert_eq!((f.bruno_read, f.bruno_reply), (404, 404));
    assert_eq!(f.no_claims.0, 401, "{}", f.no_claims.1);
}

#[test]
fn closing_frees_the_slot_and_the_next_contact_in_line_is_assigned() {
    let f = flow();
    assert_eq!(f.close, 200);
    assert_eq!((f.open_before_close, f.open_after_close), (1, 0));
    assert_eq!(f.ben_agent_before, None, "Ben waited in line");
    assert_eq!(f.ben_agent_after.as_deref(), Some("alice"));
}

#[test]
fn after_the_24_hour_window_a_text_is_409_and_a_template_202() {
    let f = flow();
    assert_eq!(
        (f.late_text.0, f.late_text.1["error"]["code"].clone()),
        (409, json!("outside_window"))
    );
    assert_eq!(f.late_template, 202);
}
