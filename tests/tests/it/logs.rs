//! No personal data in logs: every consumer and the ingest path, on their happy and error
//! paths, against moto (and wiremock for the Graph API), with marker values for a phone number,
//! a name, an email, a BSUID and an answer. Logs are captured in-process with the functions' own
//! subscriber ([`telemetry::subscriber`], JSON as in Lambda) and filter at the most verbose level
//! an operator can set on a function (`AWS_LAMBDA_LOG_LEVEL=TRACE`: prechat at trace, every
//! other crate, the AWS SDK and hyper included, at info), and none of the markers may appear in
//! any line. The tests run on tokio's current-thread runtime, so every task (the SDK's HTTP
//! connections too) logs to the test's thread-local subscriber.

use prechat::queue::dlq::SqsDeadLetters;
use prechat::queue::FifoContract;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use prechat::clock::Clock;
use prechat::entrypoints::assigner::AgentAssigner;
use prechat::entrypoints::ingest::Ingest;
use prechat::entrypoints::sender::{ReplySender, SenderConfig, SqsVisibility};
use prechat::entrypoints::survey_engine::{SurveyEngine, SurveyEngineConfig};
use prechat::queue::{MessageQueue, QueueMessage, SqsQueue};
use prechat::routing::job::{AssignRequest, AssignmentJob, HandoffReason};
use prechat::routing::model::{Agent, AgentStatus, Team};
use prechat::routing::rules::RoutingConfig;
use prechat::secrets::Secret;
use prechat::store::delivery_log::DynamoDeliveryLog;
use prechat::store::routing::RoutingStore;
use prechat::store::DynamoTable;
use prechat::telemetry;
use prechat::whatsapp::event::{
    ApiError, DeliveryStatus, InboundEvent, InboundMessage, MessageContent, StatusUpdate,
    UserIdUpdate,
};
use prechat::whatsapp::graph_client::{GraphClient, GraphSettings, SecretToken};
use prechat::whatsapp::outbound::{OutboundBody, OutboundMessage, Recipient};
use prechat::whatsapp::signature::Verifier;
use prechat::whatsapp::ContactRef;
use prechat_tests::{sqs, TestEnv};
use serde_json::json;
use wiremock::matchers::body_string_contains;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PHONE: &str = "15550009876";
const NAME: &str = "Zelda Quixote";
const EMAIL: &str = "zelda.quixote@example.org";
const BSUID: &str = "US.70707070707070707070";
const NEW_BSUID: &str = "US.80808080808080808080";
const ANSWER: &str = "Crimson walrus parcel";
const MARKERS: &[&str] = &[
    PHONE, NAME, "Zelda", "Quixote", EMAIL, BSUID, NEW_BSUID, ANSWER,
];
const PNID: &str = "106540352242922";
const APP_SECRET: &str = "local-app-secret";

/// Everything logged while it lives, as the functions would log it at `TRACE`.
struct Capture {
    lines: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn start() -> Capture {
        Capture::with_filter(&telemetry::filter_directives(Some("TRACE"), None))
    }

    fn with_filter(directives: &str) -> Capture {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(lines.clone());
        let subscriber = telemetry::subscriber(directives, true, move || sink.clone());
        Capture {
            lines,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lines.lock().unwrap()).into_owned()
    }

    /// Asserts the log has every `expected` message and no marker.
    fn assert_clean(&self, expected: &[&str]) {
        let text = self.text();
        for e in expected {
            assert!(text.contains(e), "no {e:?} logged:\n{text}");
        }
        for m in MARKERS {
            let hit = text.lines().find(|l| l.contains(m));
            assert!(hit.is_none(), "{m:?} in the log: {}", hit.unwrap_or(""));
        }
    }
}

fn contact() -> ContactRef {
    ContactRef {
        user_id: Some(BSUID.into()),
        wa_id: Some(PHONE.into()),
        profile_name: Some(NAME.into()),
        username: None,
    }
}

fn sqs_event(bodies: &[String]) -> SqsEvent {
    sqs::event(
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| sqs::record(&format!("sqs-{i}"), b, None, None)),
    )
}

/// JSON of the wrong shape, which serde's messages would quote: every marker in one string.
fn bad_body() -> String {
    json!(format!("{PHONE} {NAME} {EMAIL} {BSUID} {ANSWER}")).to_string()
}

#[tokio::test]
async fn ingest_logs_no_personal_data_on_any_path() {
    let env = TestEnv::new().await;
    let ingest = Ingest::new(
        &Secret::new(APP_SECRET),
        SqsQueue::new(env.sqs.clone(), env.queue_url("InboundQueue")),
    );
    let capture = Capture::start();
    let value = json!({"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": NAME}, "wa_id": PHONE, "user_id": BSUID}],
        "messages": [
            {"from": PHONE, "from_user_id": BSUID, "id": "wamid.L1", "timestamp": "1749416383", "type": "text", "text": {"body": format!("{ANSWER} {EMAIL}")}},
            {"from": PHONE, "id": "wamid.L2", "timestamp": PHONE.parse::<u64>().unwrap() * 1000, "type": "text", "text": {"body": ANSWER}},
            {"from": PHONE, "id": PHONE.parse::<u64>().unwrap(), "timestamp": "1", "type": EMAIL}
        ],
        "user_id_update": [{"wa_id": PHONE, "user_id": {"previous": BSUID, "current": NEW_BSUID}, "timestamp": "1749416383"}]});
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": value.clone()}, {"field": "user_id_update", "value": value}]}]})
    .to_string();
    let post = lambda_http::http::Method::POST;
    let signature = Verifier::new(&Secret::new(APP_SECRET)).sign(body.as_bytes());
    let ok = ingest
        .ingest(&post, Some(signature.as_bytes()), body.as_bytes())
        .await;
    assert_eq!(ok.status(), 200, "{ok:?}");
    let forged = ingest
        .ingest(&post, Some(b"sha256=00"), body.as_bytes())
        .await;
    assert_eq!(forged.status(), 401);
    let junk = bad_body();
    let signature = Verifier::new(&Secret::new(APP_SECRET)).sign(junk.as_bytes());
    let junk = ingest
        .ingest(&post, Some(signature.as_bytes()), junk.as_bytes())
        .await;
    assert_eq!(junk.status(), 400);
    capture.assert_clean(&[
        "delivery queued",
        "event queued",
        "item left out",
        "delivery refused",
    ]);
}

async fn engine(env: &TestEnv, now: i64) -> SurveyEngine {
    let config = SurveyEngineConfig {
        table: env.table("StateTable").to_owned(),
        outbound_queue_url: env.queue_url("OutboundQueue").to_owned(),
        assignment_queue_url: env.queue_url("AssignmentQueue").to_owned(),
        dead_letter_queue_url: Some(env.queue_url("InboundDeadLetterQueue").to_owned()),
        transcript_retention_days: 365,
        survey_id: "default".into(),
        survey_cache_seconds: 0,
    };
    SurveyEngine::from_parts(&config, env.dynamo.clone(), env.sqs.clone())
        .unwrap()
        .with_clock(Clock::at_unix(now))
}

#[tokio::test]
async fn the_survey_engine_logs_no_personal_data_on_any_path() {
    let env = TestEnv::new().await;
    let now = Utc::now().timestamp();
    let engine = engine(&env, now).await;
    let capture = Capture::start();
    let text = |s: &str| MessageContent::Text { body: s.into() };
    let tap = |id: &str| MessageContent::ButtonReply {
        id: id.into(),
        title: NAME.into(),
    };
    let answers = [
        text("Hi"),
        tap("en"),
        tap("yes"),
        text(NAME),
        text(EMAIL),
        text(ANSWER),
        text(PHONE),
    ];
    let mut bodies: Vec<String> = answers
        .into_iter()
        .enumerate()
        .map(|(i, content)| {
            let m = InboundMessage {
                phone_number_id: PNID.into(),
                display_phone_number: "15550783881".into(),
                contact: contact(),
                message_id: format!("wamid.E{i}"),
                timestamp: now - 60 + i as i64,
                context_message_id: None,
                referral: None,
                content,
            };
            serde_json::to_string(&InboundEvent::Message(m)).unwrap()
        })
        .collect();
    bodies.push(bad_body());
    let failed = StatusUpdate {
        phone_number_id: PNID.into(),
        message_id: "wamid.unknown".into(),
        status: DeliveryStatus::Failed,
        timestamp: now,
        recipient: contact(),
        errors: vec![ApiError {
            code: 131026,
            title: "Message undeliverable".into(),
            details: Some(PHONE.into()),
        }],
        pricing: None,
        conversation: None,
    };
    bodies.push(serde_json::to_string(&InboundEvent::Status(failed)).unwrap());
    let moved = UserIdUpdate {
        phone_number_id: PNID.into(),
        old_user_id: BSUID.into(),
        new_user_id: NEW_BSUID.into(),
        wa_id: Some(PHONE.into()),
        timestamp: now,
    };
    bodies.push(serde_json::to_string(&InboundEvent::UserIdUpdate(moved)).unwrap());
    let response = engine.handle(sqs_event(&bodies)).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    capture.assert_clean(&[
        "message applied",
        "message parked in the dead-letter queue",
        "outbound message failed",
        "contact re-keyed",
    ]);
}

fn job(i: usize) -> String {
    let answers = BTreeMap::from([
        ("name".to_owned(), NAME.to_owned()),
        ("email".to_owned(), EMAIL.to_owned()),
        ("description".to_owned(), ANSWER.to_owned()),
    ]);
    let now = Utc::now().timestamp();
    serde_json::to_string(&AssignmentJob::Assign(AssignRequest {
        job_id: format!("handoff:conv-{i}"),
        phone_number_id: PNID.into(),
        contact: ContactRef {
            user_id: Some(format!("{BSUID}{i}")),
            ..contact()
        },
        conversation_id: format!("conv-{i}"),
        language: "en".into(),
        reason: HandoffReason::Completed,
        fields: answers.clone(),
        answers,
        last_inbound_at: now,
        requested_at: now,
        supersedes: false,
        vars: Default::default(),
    }))
    .unwrap()
}

#[tokio::test]
async fn the_assigner_logs_no_personal_data_on_any_path() {
    let env = TestEnv::new().await;
    let store = RoutingStore::new(DynamoTable::new(
        env.dynamo.clone(),
        env.table("StateTable"),
    ));
    let team: Team = serde_json::from_value(json!({"id": "support", "name": "Support"})).unwrap();
    store.put_team(&team).await.unwrap();
    let routing: RoutingConfig =
        serde_json::from_value(json!({"default_team": "support"})).unwrap();
    store.put_routing(&routing).await.unwrap();
    let agent = Agent {
        id: "ann".into(),
        name: "Ann".into(),
        teams: vec!["support".into()],
        languages: vec![],
        status: AgentStatus::Online,
        capacity: 1,
        open: 0,
        last_assigned_at: 0,
        leads: vec![],
        sub: None,
    };
    store.upsert_agent(&agent).await.unwrap();
    let outbound = SqsQueue::new(env.sqs.clone(), env.queue_url("OutboundQueue"));
    let parking = SqsDeadLetters::new(
        env.sqs.clone(),
        Some(env.queue_url("AssignmentDeadLetterQueue").to_owned()),
    );
    let assigner = AgentAssigner::new(
        store,
        outbound,
        parking,
        None,
        Clock::at_unix(Utc::now().timestamp()),
    );
    let capture = Capture::start();
    // The first is assigned, the second finds Ann at capacity (overload), the third is junk.
    let response = assigner
        .handle(sqs_event(&[job(1), job(2), bad_body()]))
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    capture.assert_clean(&[
        "assigned",
        "assign job done",
        "message parked in the dead-letter queue",
    ]);
}

type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

async fn sender(
    env: &TestEnv,
    graph: &MockServer,
) -> ReplySender<GraphClient<SecretToken<Lookup>>, DynamoDeliveryLog, SqsVisibility, SqsDeadLetters>
{
    let param = format!("/{}/whatsapp-access-token", env.prefix);
    env.put_secret(&param, "token-1").await;
    let config = SenderConfig {
        table: env.table("StateTable").to_owned(),
        outbound_queue_url: env.queue_url("OutboundQueue").to_owned(),
        dead_letter_queue_url: env.queue_url("OutboundDeadLetterQueue").to_owned(),
        graph: GraphSettings {
            base_url: graph.uri(),
            api_version: "v23.0".into(),
            timeout: Duration::from_millis(800),
        },
        reengagement: None,
        retry_base: Duration::from_secs(1),
        retry_max: Duration::from_secs(16),
        batch_budget: Duration::from_secs(20),
    };
    let lookup: Lookup =
        Box::new(move |k| (k == "WHATSAPP_ACCESS_TOKEN_PARAM").then(|| param.clone()));
    let token = SecretToken::with_lookup(env.ssm.clone(), "WHATSAPP_ACCESS_TOKEN", lookup);
    let client = GraphClient::new(config.graph.clone(), token).await.unwrap();
    let outbox = DynamoDeliveryLog::new(DynamoTable::new(env.dynamo.clone(), config.table.clone()));
    let visibility = SqsVisibility::new(env.sqs.clone(), config.outbound_queue_url.clone());
    let parking = SqsDeadLetters::new(env.sqs.clone(), Some(config.dead_letter_queue_url.clone()));
    ReplySender::new(config, client, outbox, visibility, parking)
}

fn reply(tag: &str, n: usize) -> QueueMessage {
    let msg = OutboundMessage {
        phone_number_id: PNID.into(),
        recipient: Recipient {
            wa_id: Some(format!("{PHONE}{n}")),
            user_id: Some(format!("{BSUID}{n}")),
        },
        dedup_id: format!("conv-{n}:1:0"),
        conversation_id: Some(format!("conv-{n}")),
        last_inbound_at: Some(Utc::now().timestamp()),
        body: OutboundBody::Text {
            body: format!("{tag} {NAME}, {ANSWER} {EMAIL}"),
            preview_url: false,
        },
        transcript: None,
    };
    QueueMessage::fifo(
        serde_json::to_string(&msg).unwrap(),
        &msg.group_id(),
        &msg.dedup_id,
    )
}

/// What Lambda's event source mapping hands the sender: the queue's messages, receipts included.
async fn received(env: &TestEnv) -> SqsEvent {
    let out = env
        .sqs
        .receive_message()
        .queue_url(env.queue_url("OutboundQueue"))
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    prechat_tests::local::esm::to_sqs_event(
        out.messages(),
        &env.resources.queue_arns["OutboundQueue"],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn meta_error(status: u16, code: i64) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {"message": format!("({code}) recipient {PHONE} {NAME}"), "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": format!("{PHONE} {EMAIL}")}, "fbtrace_id": "AazcfNrVBAVc"}}))
}

#[tokio::test]
async fn the_sender_logs_no_personal_data_on_any_path() {
    let env = TestEnv::new().await;
    let graph = MockServer::start().await;
    let accepted = json!({"messaging_product": "whatsapp", "contacts": [{"input": PHONE, "wa_id": PHONE, "user_id": BSUID}], "messages": [{"id": "wamid.S1"}]});
    Mock::given(body_string_contains("send-ok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(accepted))
        .mount(&graph)
        .await;
    Mock::given(body_string_contains("send-permanent"))
        .respond_with(meta_error(400, 131026))
        .mount(&graph)
        .await;
    Mock::given(body_string_contains("send-retry"))
        .respond_with(meta_error(429, 130429))
        .mount(&graph)
        .await;
    let sender = sender(&env, &graph).await;
    let queue = SqsQueue::new(env.sqs.clone(), env.queue_url("OutboundQueue"));
    queue
        .send_all(&[
            reply("send-ok", 1),
            reply("send-permanent", 2),
            reply("send-retry", 3),
        ])
        .await
        .unwrap();
    let capture = Capture::start();
    let event = received(&env).await;
    assert_eq!(event.records.len(), 3);
    let response = sender.handle(event).await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "the throttled one is retried"
    );
    let unreadable = sender.handle(sqs_event(&[bad_body()])).await;
    assert!(
        unreadable.batch_item_failures.is_empty(),
        "parked at once, not retried"
    );
    capture.assert_clean(&[
        "sent",
        "REPLY_DELIVERY_FAILED",
        "Graph API asks to retry",
        "message parked in the dead-letter queue",
    ]);
}

/// Why other crates are capped: at trace the AWS SDK logs whole response bodies (here a queued
/// event with the contact's number). `RUST_LOG=trace` would do that; the Lambda level cannot.
#[tokio::test]
async fn sdk_trace_logs_print_bodies_so_the_function_filter_caps_other_crates() {
    let env = TestEnv::new().await;
    let queue = SqsQueue::new(env.sqs.clone(), env.queue_url("OutboundQueue"));
    let receive = || async {
        queue.send_all(&[reply("sdk-trace", 1)]).await.unwrap();
        env.receive_all("OutboundQueue").await
    };
    let everything = Capture::with_filter("trace");
    assert_eq!(receive().await.len(), 1);
    assert!(
        everything.text().contains(PHONE),
        "the SDK no longer logs bodies at trace?"
    );
    drop(everything);
    let function = Capture::start();
    assert_eq!(receive().await.len(), 1);
    function.assert_clean(&[]);
}

#[tokio::test]
async fn agent_api_logs_no_personal_data_on_any_path() {
    use crate::api::{conversation_in, get, post, setup, user};
    let s = setup().await;
    conversation_in(&s, "c-logs", "sales", s.now, Some("alice")).await;
    let alice = user("alice", "[agents]");
    let capture = Capture::start();
    assert_eq!(get(&s, "/api/conversations", alice.clone()).await.0, 200);
    let (status, read) = get(&s, "/api/conversations/c-logs", alice.clone()).await;
    assert_eq!(status, 200, "{read}");
    let reply = json!({ "text": format!("{ANSWER} for {NAME} at {EMAIL}") }).to_string();
    let path = "/api/conversations/c-logs/messages";
    assert_eq!(
        post(&s, path, alice.clone(), Some("k-1"), &reply).await.0,
        202
    );
    // Malformed and unknown: the errors must not quote the body.
    let junk = bad_body();
    assert_eq!(
        post(&s, path, alice.clone(), Some("k-2"), &junk).await.0,
        400
    );
    let missing = format!("/api/conversations/{PHONE}");
    assert_eq!(get(&s, &missing, alice.clone()).await.0, 404);
    let close = "/api/conversations/c-logs/close";
    assert_eq!(post(&s, close, alice, None, "").await.0, 200);
    capture.assert_clean(&["api request", "api request refused"]);
    // The seeded contact's own data (the fixture's): its phone, BSUID and order number.
    let text = capture.text();
    for m in ["491512345678", "US.c-logs", "1234567"] {
        assert!(!text.contains(m), "{m} in the log");
    }
}

#[tokio::test]
async fn the_realtime_functions_log_no_personal_data() {
    use prechat::realtime::authorizer::WsAuthorizer;
    use prechat::realtime::connections::WsConnections;
    use prechat::realtime::jwt::JwtVerifier;
    use prechat::realtime::push::{ApiGatewayPoster, Pusher};
    use prechat::realtime::{PushEvent, PushType};
    use prechat::store::connections::{Connection, ConnectionStore, DynamoConnections};
    use wiremock::matchers::path_regex;

    let env = TestEnv::new().await;
    let table = DynamoTable::new(env.dynamo.clone(), env.table("StateTable"));
    let now = Utc::now().timestamp();
    let store = DynamoConnections::new(table.clone());
    for (id, n) in [("ok", 0), ("gone", 1), ("broken", 2)] {
        store
            .put(&Connection::new(id, "alice", now * 1000 + n))
            .await
            .unwrap();
    }
    let api = MockServer::start().await;
    for (id, status) in [("ok", 200), ("gone", 410), ("broken", 500)] {
        Mock::given(path_regex(format!("/@connections/{id}$")))
            .respond_with(ResponseTemplate::new(status))
            .mount(&api)
            .await;
    }
    let sdk = prechat_tests::local::local_sdk_config().await;
    let capture = Capture::start();
    // A push of the contact's message (the entry holds every marker) to three connections.
    let entry = json!({"id": "T#1", "author": {"kind": "contact"}, "type": "text",
                       "text": format!("{NAME} {PHONE} {EMAIL} {BSUID} {ANSWER}")});
    let pusher = Pusher::new(
        DynamoConnections::new(table.clone()),
        ApiGatewayPoster::new(&sdk, &api.uri()),
        Clock::at_unix(now),
    );
    let event = PushEvent::entry(PushType::MessageCreated, "c1", entry, now * 1000);
    let report = pusher.push("alice", &event).await;
    assert_eq!((report.delivered, report.gone, report.failed), (1, 1, 1));
    // The routes, with frames that carry the markers.
    let routes = WsConnections::new(DynamoConnections::new(table), Clock::at_unix(now));
    let sample = |file: &str| -> aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest {
        let path = prechat_tests::workspace_root().join("events").join(file);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    routes.handle(sample("ws-connections-connect.json")).await;
    let mut frame = sample("ws-connections-ping.json");
    frame.body = Some(bad_body());
    routes.handle(frame).await;
    routes
        .handle(sample("ws-connections-disconnect.json"))
        .await;
    // The authorizer, with a "token" made of the markers.
    let verifier = JwtVerifier::new(
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X",
        vec!["client".into()],
        format!("{}/jwks.json", api.uri()),
        Clock::at_unix(now),
    );
    let authorizer = WsAuthorizer::new(verifier);
    authorizer
        .decide_token(Some(&format!("{EMAIL}.{PHONE}.{NAME}")))
        .await;
    capture.assert_clean(&["push", "ws route", "ws connect authorization"]);
}
