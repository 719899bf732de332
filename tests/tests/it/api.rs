//! agent-api against moto, through its real DynamoDB and SQS ports: requests are API Gateway
//! v2 events with the claims where the JWT authorizer puts them
//! (`requestContext.authorizer.jwt.claims`, every value a string).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::Request;
use prechat::clock::Clock;
use prechat::entrypoints::agent_api::{AgentApi, AgentApiConfig};
use prechat::queue::FifoContract;
use prechat::routing::job::{
    AssignRequest, AssignmentJob, HandoffReason, TransferRequest, TransferTarget,
};
use prechat::routing::model::{Agent, AgentStatus, Team};
use prechat::store::routing::{RoutingStore, Ticket};
use prechat::store::transcript::{DynamoTranscript, TranscriptLog};
use prechat::store::DynamoTable;
use prechat::transcript::{Author, Body as EntryBody, Entry};
use prechat::whatsapp::outbound::{OutboundBody, OutboundMessage};
use prechat::whatsapp::ContactRef;
use prechat_tests::api::{event, json_of, user_claims};
use prechat_tests::TestEnv;
use serde_json::{json, Value};

const PNID: &str = "106540352242922";

pub(crate) struct Setup {
    pub(crate) env: TestEnv,
    pub(crate) api: AgentApi,
    pub(crate) store: RoutingStore,
    pub(crate) now: i64,
}

pub(crate) fn agent(id: &str, capacity: u32) -> Agent {
    Agent {
        id: id.into(),
        name: id.to_uppercase(),
        teams: vec!["sales".into()],
        languages: vec![],
        status: AgentStatus::Online,
        capacity,
        open: 0,
        last_assigned_at: 0,
        leads: vec![],
        sub: None,
    }
}

/// Team `sales`, agents alice and bruno (online), the API under a clock at `now`.
pub(crate) async fn setup() -> Setup {
    let env = TestEnv::new().await;
    let now = chrono::Utc::now().timestamp();
    let table = DynamoTable::new(env.dynamo.clone(), env.table("StateTable"));
    let store = RoutingStore::new(table);
    let team: Team = serde_json::from_value(json!({"id": "sales", "name": "Sales"})).unwrap();
    store.put_team(&team).await.unwrap();
    for id in ["alice", "bruno"] {
        store.upsert_agent(&agent(id, 2)).await.unwrap();
    }
    let config = AgentApiConfig {
        table: env.table("StateTable").to_owned(),
        outbound_queue_url: env.queue_url("OutboundQueue").to_owned(),
        assignment_queue_url: env.queue_url("AssignmentQueue").to_owned(),
        machine_clients: vec!["helpdesk-client".into()],
        transcript_retention_days: 365,
        inbox: Default::default(),
    };
    let api = AgentApi::from_parts(
        &config,
        env.dynamo.clone(),
        env.sqs.clone(),
        Clock::at_unix(now),
    )
    .unwrap();
    Setup {
        env,
        api,
        store,
        now,
    }
}

/// A conversation whose survey (the shipped default, version 0) finished with answers, as
/// the survey engine leaves its items, handed off and (optionally) assigned to `agent`.
async fn conversation(s: &Setup, id: &str, last_inbound_at: i64, agent: Option<&str>) {
    conversation_in(s, id, "sales", last_inbound_at, agent).await;
}

/// As [`conversation`], handed off to `team`.
pub(crate) async fn conversation_in(
    s: &Setup,
    id: &str,
    team: &str,
    last_inbound_at: i64,
    agent: Option<&str>,
) -> Ticket {
    contact_conversation(s, id, team, last_inbound_at, agent, None).await
}

/// As [`conversation_in`]; with `visitor`, a web chat conversation of that visitor id (business
/// number `web`, contact key `V.{visitor}`, no phone).
pub(crate) async fn contact_conversation(
    s: &Setup,
    id: &str,
    team: &str,
    last_inbound_at: i64,
    agent: Option<&str>,
    visitor: Option<&str>,
) -> Ticket {
    let (pnid, key, wa_id) = match visitor {
        Some(v) => ("web", prechat::webchat::visitor_key(v), None),
        None => (PNID, format!("US.{id}"), Some("491512345678")),
    };
    let answers = BTreeMap::from([
        ("name".to_owned(), "Ana".to_owned()),
        ("inquiry".to_owned(), "after_sales".to_owned()),
        ("order_id".to_owned(), "1234567".to_owned()),
    ]);
    let doc = json!({
        "contact": {
            "phone_number_id": pnid, "key": key, "user_id": key, "wa_id": wa_id,
            "profile_name": "Ana", "fields": {"name": "Ana"},
            "consent": {"accepted": true, "text": "OK?", "policy_url": "https://x.example/p",
                        "policy_version": "1", "language": "en", "at": last_inbound_at}
        },
        "conversation": {
            "id": id, "survey_id": "default", "survey_version": 0, "status": "handed_off",
            "step": 9, "answers": answers, "vars": {"order_id": "1234567"}, "language": "en",
            "started_at": last_inbound_at, "updated_at": last_inbound_at,
            "last_inbound_at": last_inbound_at
        }
    });
    let table = s.env.table("StateTable");
    let put = |item: Vec<(&str, AttributeValue)>| {
        s.env
            .dynamo
            .put_item()
            .table_name(table)
            .set_item(Some(
                item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ))
            .send()
    };
    let st = |v: &str| AttributeValue::S(v.to_owned());
    put(vec![
        ("pk", st(&format!("CONTACT#{pnid}#{key}"))),
        ("sk", st("PROFILE")),
        ("doc", st(&doc.to_string())),
        ("rev", AttributeValue::N("1".into())),
    ])
    .await
    .unwrap();
    let answer_map = answers.iter().map(|(k, v)| (k.clone(), st(v))).collect();
    put(vec![
        ("pk", st(&format!("CONV#{id}"))),
        ("sk", st("CONV")),
        ("phone_number_id", st(pnid)),
        ("contact_key", st(&key)),
        ("survey_id", st("default")),
        ("survey_version", AttributeValue::N("0".into())),
        ("language", st("en")),
        ("answers", AttributeValue::M(answer_map)),
        (
            "last_inbound_at",
            AttributeValue::N(last_inbound_at.to_string()),
        ),
    ])
    .await
    .unwrap();
    let request = AssignRequest {
        job_id: format!("handoff:{id}"),
        phone_number_id: pnid.into(),
        contact: ContactRef {
            user_id: Some(key.clone()),
            wa_id: wa_id.map(str::to_owned),
            profile_name: Some("Ana".into()),
            username: None,
        },
        conversation_id: id.into(),
        language: "en".into(),
        reason: HandoffReason::Completed,
        answers,
        fields: BTreeMap::new(),
        last_inbound_at,
        requested_at: last_inbound_at,
        supersedes: false,
        vars: Default::default(),
    };
    let ticket = Ticket::new(request, team.into(), false);
    s.store.open_ticket(&ticket).await.unwrap();
    if let Some(a) = agent {
        s.store.assign(&ticket, a, s.now).await.unwrap();
    }
    ticket
}

pub(crate) fn user(name: &str, groups: &str) -> Value {
    user_claims(name, groups)
}

/// A help desk's client-credentials token: no username, no groups.
fn machine() -> Value {
    json!({"sub": "helpdesk-client", "client_id": "helpdesk-client", "scope": "prechat/api",
           "token_use": "access"})
}

async fn call(s: &Setup, req: Request) -> (u16, Value) {
    json_of(&s.api.handle(req).await)
}

pub(crate) async fn get(s: &Setup, path: &str, claims: Value) -> (u16, Value) {
    call(s, event("GET", path, Some(claims), json!({}), None)).await
}

pub(crate) async fn post(
    s: &Setup,
    path: &str,
    claims: Value,
    key: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let headers = match key {
        Some(k) => json!({"content-type": "application/json", "idempotency-key": k}),
        None => json!({"content-type": "application/json"}),
    };
    call(s, event("POST", path, Some(claims), headers, Some(body))).await
}

fn outbound(messages: &[aws_sdk_sqs::types::Message]) -> Vec<OutboundMessage> {
    messages
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

fn jobs(messages: &[aws_sdk_sqs::types::Message]) -> Vec<AssignmentJob> {
    messages
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn me_shows_the_signed_in_agent_with_its_open_conversations() {
    let s = setup().await;
    conversation(&s, "c-me", s.now, Some("alice")).await;
    let (status, me) = get(&s, "/api/me", user("alice", "[agents]")).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], "alice");
    assert_eq!(me["teams"], json!(["sales"]));
    assert_eq!(
        (me["open"].clone(), me["capacity"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(me["conversations"], json!(["c-me"]));
}

#[tokio::test]
async fn going_online_sets_the_status_and_queues_a_drain_job_for_the_agent_s_teams() {
    let s = setup().await;
    let alice = user("alice", "[agents]");
    let away = r#"{"status":"away"}"#;
    let put = |body: &'static str| {
        event(
            "PUT",
            "/api/me/status",
            Some(alice.clone()),
            json!({}),
            Some(body),
        )
    };
    assert_eq!(call(&s, put(away)).await.0, 200);
    assert!(
        s.env.receive_all("AssignmentQueue").await.is_empty(),
        "away drains nothing"
    );
    let (status, me) = call(&s, put(r#"{"status":"online"}"#)).await;
    assert_eq!((status, me["status"].clone()), (200, json!("online")));
    let stored = s.store.get_agent("alice").await.unwrap().unwrap();
    assert_eq!(stored.status, AgentStatus::Online);
    let queued = jobs(&s.env.receive_all("AssignmentQueue").await);
    assert!(
        matches!(queued.as_slice(), [AssignmentJob::Drain { team_id, .. }] if team_id == "sales"),
        "{queued:?}"
    );
}

#[tokio::test]
async fn lists_show_own_assigned_conversations_and_the_team_s_waiting_line() {
    let s = setup().await;
    conversation(&s, "c-a1", s.now, Some("alice")).await;
    conversation(&s, "c-b1", s.now, Some("bruno")).await;
    conversation(&s, "c-w1", s.now, None).await;
    let ids = |v: &Value| -> Vec<String> {
        v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, mine) = get(&s, "/api/conversations", user("alice", "[agents]")).await;
    assert_eq!(ids(&mine), ["c-a1"]);
    let (_, line) = get(
        &s,
        "/api/conversations?state=waiting",
        user("alice", "[agents]"),
    )
    .await;
    assert_eq!(ids(&line), ["c-w1"]);
    assert_eq!(line["conversations"][0]["contact"]["name"], "Ana");
    let (status, _) = get(
        &s,
        "/api/conversations?state=open",
        user("alice", "[agents]"),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn reading_a_conversation_shows_contact_answers_with_labels_consent_and_window() {
    let s = setup().await;
    conversation(&s, "c-read", s.now - 3600, Some("alice")).await;
    let (status, c) = get(&s, "/api/conversations/c-read", user("alice", "[agents]")).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        (c["state"].clone(), c["agent"].clone(), c["team"].clone()),
        (json!("assigned"), json!("alice"), json!("sales"))
    );
    assert_eq!(c["contact"]["name"], "Ana");
    assert_eq!(c["consent"]["accepted"], true);
    assert_eq!(c["window_closes_at"], json!(s.now - 3600 + 86_400));
    let answers = c["answers"].as_array().unwrap();
    let order = answers.iter().find(|a| a["key"] == "order_id").unwrap();
    assert_eq!(order["saved_to"], "var.order_id");
    assert_eq!(order["label"], "Order number");
    assert_eq!(order["value"], "1234567");
    assert!(
        order["question"].as_str().unwrap().contains("order number"),
        "{order}"
    );
    let name = answers.iter().find(|a| a["key"] == "name").unwrap();
    assert_eq!(
        (name["label"].clone(), name["saved_to"].clone()),
        (json!("Name"), json!("contact.name"))
    );
}

fn inbound(at_ms: i64, n: u32) -> Entry {
    Entry {
        id: prechat::transcript::entry_id(at_ms, &format!("in:{n}")),
        at: at_ms,
        author: Author::Contact,
        body: EntryBody::Text {
            text: format!("message {n}"),
        },
        status: None,
        wamid: Some(format!("wamid.IN{n}")),
    }
}

#[tokio::test]
async fn the_transcript_pages_back_by_cursor_and_catches_up_after_one() {
    let s = setup().await;
    conversation(&s, "c-page", s.now, Some("alice")).await;
    let log = DynamoTranscript::new(DynamoTable::new(
        s.env.dynamo.clone(),
        s.env.table("StateTable"),
    ));
    let base = s.now * 1000;
    let entries: Vec<Entry> = (0..5).map(|n| inbound(base + i64::from(n), n)).collect();
    log.append("c-page", &entries, s.now + 86_400)
        .await
        .unwrap();
    let texts = |v: &Value| -> Vec<String> {
        v["transcript"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let alice = user("alice", "[agents]");
    let (_, newest) = get(&s, "/api/conversations/c-page?limit=2", alice.clone()).await;
    assert_eq!(texts(&newest), ["message 3", "message 4"], "newest last");
    let before = newest["transcript"]["before"].as_str().unwrap().to_owned();
    let (_, older) = get(
        &s,
        &format!("/api/conversations/c-page?limit=2&before={before}"),
        alice.clone(),
    )
    .await;
    assert_eq!(texts(&older), ["message 1", "message 2"]);
    let after = older["transcript"]["after"].as_str().unwrap().to_owned();
    let (_, caught_up) = get(
        &s,
        &format!("/api/conversations/c-page?after={after}"),
        alice,
    )
    .await;
    assert_eq!(texts(&caught_up), ["message 3", "message 4"]);
}

#[tokio::test]
async fn reading_marks_the_contact_s_newest_message_read_under_its_read_dedup_id() {
    let s = setup().await;
    conversation(&s, "c-mark", s.now, Some("alice")).await;
    let log = DynamoTranscript::new(DynamoTable::new(
        s.env.dynamo.clone(),
        s.env.table("StateTable"),
    ));
    let entries = [inbound(s.now * 1000, 1), inbound(s.now * 1000 + 1, 2)];
    log.append("c-mark", &entries, s.now + 86_400)
        .await
        .unwrap();
    get(&s, "/api/conversations/c-mark", user("alice", "[agents]")).await;
    get(&s, "/api/conversations/c-mark", user("alice", "[agents]")).await;
    let sent = outbound(&s.env.receive_all("OutboundQueue").await);
    assert!(!sent.is_empty());
    for m in &sent {
        assert_eq!(
            m.dedup_id, "read:wamid.IN2",
            "the same id each time: sent once"
        );
        assert!(
            matches!(&m.body, OutboundBody::MarkRead { message_id, .. } if message_id == "wamid.IN2")
        );
    }
}

#[tokio::test]
async fn a_reply_is_one_outbound_message_also_when_retried_with_the_same_key() {
    let s = setup().await;
    conversation(&s, "c-reply", s.now - 60, Some("alice")).await;
    let alice = user("alice", "[agents]");
    let path = "/api/conversations/c-reply/messages";
    let first = post(
        &s,
        path,
        alice.clone(),
        Some("k-1"),
        r#"{"text":"Hello Ana"}"#,
    )
    .await;
    let again = post(&s, path, alice, Some("k-1"), r#"{"text":"Hello Ana"}"#).await;
    assert_eq!(first.0, 202, "{}", first.1);
    assert_eq!(first, again, "the retry answers what the first request did");
    let sent = outbound(&s.env.receive_all("OutboundQueue").await);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].dedup_id, "agent:c-reply:k-1");
    assert_eq!(sent[0].recipient.user_id.as_deref(), Some("US.c-reply"));
    assert!(matches!(&sent[0].body, OutboundBody::Text { body, .. } if body == "Hello Ana"));
}

#[tokio::test]
async fn a_text_reply_after_the_24_hour_window_is_409_but_a_template_goes_out() {
    let s = setup().await;
    conversation(&s, "c-late", s.now - 25 * 3600, Some("alice")).await;
    let path = "/api/conversations/c-late/messages";
    let (status, body) = post(
        &s,
        path,
        user("alice", "[agents]"),
        None,
        r#"{"text":"Still there?"}"#,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("outside_window"))
    );
    assert!(s.env.receive_all("OutboundQueue").await.is_empty());
    let template = r#"{"template":{"name":"follow_up","language":"en","parameters":["Ana"]}}"#;
    let (status, _) = post(&s, path, user("alice", "[agents]"), None, template).await;
    assert_eq!(status, 202);
    let sent = outbound(&s.env.receive_all("OutboundQueue").await);
    assert!(
        matches!(&sent[..], [m] if matches!(&m.body, OutboundBody::Template { name, .. } if name == "follow_up"))
    );
}

#[tokio::test]
async fn a_reply_in_a_web_conversation_a_day_after_the_visitor_wrote_is_queued_for_the_widget() {
    let s = setup().await;
    let visitor = "abcdefghijklmnop";
    contact_conversation(
        &s,
        "c-web",
        "sales",
        s.now - 25 * 3600,
        Some("alice"),
        Some(visitor),
    )
    .await;
    let (status, view) = get(&s, "/api/conversations/c-web", user("alice", "[agents]")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (&view["channel"], &view["window_open"]),
        (&json!("web"), &json!(true))
    );
    let (status, body) = post(
        &s,
        "/api/conversations/c-web/messages",
        user("alice", "[agents]"),
        None,
        r#"{"text":"Still there?"}"#,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sent = outbound(&s.env.receive_all("OutboundQueue").await);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].phone_number_id, "web");
    assert_eq!(
        sent[0].recipient.user_id.as_deref(),
        Some("V.abcdefghijklmnop")
    );
    assert!(matches!(&sent[0].body, OutboundBody::Text { body, .. } if body == "Still there?"));
    assert!(
        sent[0].transcript.is_some(),
        "the widget push names the entry"
    );
    // A WhatsApp conversation says its channel too.
    conversation(&s, "c-wa", s.now, Some("alice")).await;
    let (_, view) = get(&s, "/api/conversations/c-wa", user("alice", "[agents]")).await;
    assert_eq!(view["channel"], "whatsapp");
}

#[tokio::test]
async fn an_over_long_or_malformed_reply_is_400_naming_the_field_and_nothing_is_sent() {
    let s = setup().await;
    conversation(&s, "c-long", s.now, Some("alice")).await;
    let path = "/api/conversations/c-long/messages";
    let long = json!({ "text": "x".repeat(4097) }).to_string();
    let (status, body) = post(&s, path, user("alice", "[agents]"), None, &long).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("text"))
    );
    let (status, body) = post(&s, path, user("alice", "[agents]"), None, "{not json").await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("body"))
    );
    assert!(s.env.receive_all("OutboundQueue").await.is_empty());
}

#[tokio::test]
async fn someone_else_s_conversation_is_404_like_an_unknown_one_and_no_claims_is_401() {
    let s = setup().await;
    conversation(&s, "c-alice", s.now, Some("alice")).await;
    let bruno = user("bruno", "[agents]");
    let (theirs, body) = get(&s, "/api/conversations/c-alice", bruno.clone()).await;
    let (unknown, _) = get(&s, "/api/conversations/c-none", bruno.clone()).await;
    assert_eq!((theirs, unknown), (404, 404), "{body}");
    let (reply, _) = post(
        &s,
        "/api/conversations/c-alice/messages",
        bruno,
        None,
        r#"{"text":"hi"}"#,
    )
    .await;
    assert_eq!(reply, 404);
    let (status, body) = call(&s, event("GET", "/api/me", None, json!({}), None)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
}

#[tokio::test]
async fn admins_and_machine_clients_read_every_conversation() {
    let s = setup().await;
    conversation(&s, "c-any", s.now, Some("alice")).await;
    assert_eq!(
        get(&s, "/api/conversations/c-any", user("root", "[admins]"))
            .await
            .0,
        200
    );
    assert_eq!(get(&s, "/api/conversations/c-any", machine()).await.0, 200);
    let mut stranger = machine();
    stranger["client_id"] = json!("other-client");
    assert_eq!(get(&s, "/api/conversations/c-any", stranger).await.0, 401);
}

#[tokio::test]
async fn closing_frees_the_agent_s_slot_queues_a_drain_and_lists_it_as_closed() {
    let s = setup().await;
    conversation(&s, "c-close", s.now, Some("alice")).await;
    let alice = user("alice", "[agents]");
    let (status, body) = post(
        &s,
        "/api/conversations/c-close/close",
        alice.clone(),
        None,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.store.get_agent("alice").await.unwrap().unwrap().open, 0);
    let queued = jobs(&s.env.receive_all("AssignmentQueue").await);
    assert!(
        matches!(queued.as_slice(), [AssignmentJob::Drain { team_id, .. }, AssignmentJob::Closed(n)]
            if team_id == "sales" && n.closed_by == "alice" && n.agent_id.as_deref() == Some("alice")),
        "{queued:?}"
    );
    let (_, closed) = get(&s, "/api/conversations?state=closed", alice.clone()).await;
    assert_eq!(closed["conversations"][0]["id"], "c-close");
    let (_, read) = get(&s, "/api/conversations/c-close", alice.clone()).await;
    assert_eq!(read["state"], "closed");
    let (again, body) = post(
        &s,
        "/api/conversations/c-close/messages",
        alice,
        None,
        r#"{"text":"hi"}"#,
    )
    .await;
    assert_eq!(
        (again, body["error"]["code"].clone()),
        (409, json!("closed"))
    );
}

/// The transfer jobs the API queued.
async fn transfers(s: &Setup) -> Vec<TransferRequest> {
    jobs(&s.env.receive_all("AssignmentQueue").await)
        .into_iter()
        .filter_map(|j| match j {
            AssignmentJob::Transfer(t) => Some(t),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_transfer_to_an_agent_is_queued_for_the_assigner_and_answered_202() {
    let s = setup().await;
    conversation(&s, "c-move", s.now, Some("alice")).await;
    let path = "/api/conversations/c-move/transfer";
    let alice = user("alice", "[agents]");
    let (status, body) = post(&s, path, alice, None, r#"{"agent":"bruno"}"#).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["transfer"], json!({"agent": "bruno"}));
    let queued = transfers(&s).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (
            &queued[0].to,
            queued[0].by.as_str(),
            queued[0].conversation_id.as_str()
        ),
        (&TransferTarget::Agent("bruno".into()), "alice", "c-move")
    );
    assert_eq!(
        AssignmentJob::Transfer(queued[0].clone()).group_id(),
        format!("{PNID}:US.c-move"),
        "in the contact's group"
    );
    assert_eq!(
        s.store.get_agent("alice").await.unwrap().unwrap().open,
        1,
        "the assigner moves it"
    );
}

#[tokio::test]
async fn a_transfer_to_an_agent_who_is_not_online_is_refused_with_409() {
    let s = setup().await;
    conversation(&s, "c-off", s.now, Some("bruno")).await;
    s.store
        .set_agent("alice", Some(AgentStatus::Offline), None)
        .await
        .unwrap();
    let path = "/api/conversations/c-off/transfer";
    let bruno = user("bruno", "[agents]");
    let (status, body) = post(&s, path, bruno.clone(), None, r#"{"agent":"alice"}"#).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("agent_unavailable"))
    );
    let (unknown, body) = post(&s, path, bruno, None, r#"{"agent":"nobody"}"#).await;
    assert_eq!(
        (unknown, body["error"]["field"].clone()),
        (400, json!("agent"))
    );
    assert!(transfers(&s).await.is_empty());
}

#[tokio::test]
async fn closing_sends_the_team_s_closing_text_once() {
    let s = setup().await;
    let team: Team = serde_json::from_value(json!({
        "id": "sales", "name": "Sales",
        "messages": {"en": {"assigned": "a", "away": "b", "overload": "c",
                            "closed": "Thanks for writing to {{team.name}}. {{agent.name}}"}}
    }))
    .unwrap();
    s.store.put_team(&team).await.unwrap();
    conversation(&s, "c-bye", s.now, Some("alice")).await;
    let path = "/api/conversations/c-bye/close";
    assert_eq!(
        post(&s, path, user("alice", "[agents]"), None, "").await.0,
        200
    );
    assert_eq!(
        post(&s, path, user("alice", "[agents]"), None, "").await.0,
        200
    );
    let sent = outbound(&s.env.receive_all("OutboundQueue").await);
    let texts: Vec<&str> = sent
        .iter()
        .filter_map(|m| match &m.body {
            OutboundBody::Text { body, .. } => Some(body.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["Thanks for writing to Sales. ALICE"]);
}

#[tokio::test]
async fn a_transfer_to_a_team_is_queued_and_an_unknown_team_refused() {
    let s = setup().await;
    let support: Team =
        serde_json::from_value(json!({"id": "support", "name": "Support"})).unwrap();
    s.store.put_team(&support).await.unwrap();
    conversation(&s, "c-team", s.now, Some("alice")).await;
    let path = "/api/conversations/c-team/transfer";
    let (status, body) = post(
        &s,
        path,
        user("alice", "[agents]"),
        None,
        r#"{"team":"support"}"#,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let queued = transfers(&s).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].to, TransferTarget::Team("support".into()));
    let (unknown, body) = post(
        &s,
        path,
        user("root", "[admins]"),
        None,
        r#"{"team":"nope"}"#,
    )
    .await;
    assert_eq!(
        (unknown, body["error"]["field"].clone()),
        (400, json!("team"))
    );
}

/// The real agent-api binary under cargo-lambda's runtime emulator, configured only through its
/// template environment, answers the sample `events/agent-api-me.json` (alice's access token,
/// claims as the JWT authorizer passes them) with her agent item.
#[tokio::test(flavor = "multi_thread")]
async fn agent_api_binary_answers_the_sample_event_under_cargo_lambda() {
    let app = prechat_tests::TestApp::spawn().await;
    let mut alice = agent("alice", 3);
    alice.sub = Some("94b8e4a8-2031-70e3-7d15-2b9b1c4e1f6a".into());
    app.routing().upsert_agent(&alice).await.unwrap();
    let event = prechat_tests::workspace_root().join("events/agent-api-me.json");
    let (reply, log) = app
        .run_binary("agent-api", "AgentApiFunction", &event, &[])
        .await;
    assert_eq!(reply["statusCode"], 200, "{reply}\n{log}");
    let me: Value = serde_json::from_str(reply["body"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {reply}"));
    assert_eq!(
        (me["id"].clone(), me["capacity"].clone()),
        (json!("alice"), json!(3))
    );
}
