//! reply-sender against a real local Graph API (wiremock, answering with Meta's error bodies)
//! and moto (the outbound FIFO queue with its DLQ, the state table, SSM). Each round below does
//! what the Lambda service does: receive up to 10 messages, call the handler, delete what it did
//! not report as failed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;

use prechat::queue::FifoContract;
use prechat::queue::{MessageQueue, QueueMessage, SqsQueue};
use prechat::store::delivery_log::{DeliveryLog, SentRecord, SentVia};
use prechat::store::transcript::{DynamoTranscript, TranscriptLog};
use prechat::store::DynamoTable;
use prechat::transcript::{
    engine_entry_id, Author, Body, DeliveryStatus as TStatus, Entry, PageRequest, TranscriptRef,
};
use prechat::whatsapp::outbound::{OutboundBody, OutboundMessage, Recipient, ReplyButton};
use prechat_tests::app::{s, Sender};
use prechat_tests::TestApp;
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const PHONE_ID: &str = "106540352242922";
const BSUID: &str = "US.13491208655302741918";

/// An app with a local Graph API (nothing mounted yet) and access token "token-1" stored where
/// the template tells the sender to read it.
async fn spawn() -> (TestApp, MockServer) {
    let app = TestApp::spawn().await;
    app.put_access_token("token-1").await;
    (app, MockServer::start().await)
}

/// reply-sender from the template's environment against `graph` (800 ms Graph timeout), with
/// the re-engagement template `reopen_conversation` when `template`, and a back-off from
/// `retry_base_secs` to 16 times that.
async fn sender(app: &TestApp, graph: &MockServer, template: bool, retry_base_secs: u64) -> Sender {
    let (base, max) = (
        retry_base_secs.to_string(),
        (retry_base_secs * 16).to_string(),
    );
    let mut vars = vec![
        ("PRECHAT_GRAPH_TIMEOUT_MS", "800"),
        ("PRECHAT_RETRY_BASE_SECONDS", base.as_str()),
        ("PRECHAT_RETRY_MAX_SECONDS", max.as_str()),
    ];
    if template {
        vars.push(("PRECHAT_REENGAGEMENT_TEMPLATE", "reopen_conversation"));
    }
    app.sender(&graph.uri(), &vars).await
}

/// Puts messages on the outbound queue as the survey engine does.
async fn enqueue(app: &TestApp, msgs: &[OutboundMessage]) {
    let batch: Vec<QueueMessage> = msgs
        .iter()
        .map(|m| {
            QueueMessage::fifo(
                serde_json::to_string(m).unwrap(),
                &m.group_id(),
                &m.dedup_id,
            )
        })
        .collect();
    outbound_queue(app).send_all(&batch).await.unwrap();
}

fn outbound_queue(app: &TestApp) -> SqsQueue {
    SqsQueue::new(app.env.sqs.clone(), app.env.queue_url("OutboundQueue"))
}

/// Graph API requests received so far, as JSON bodies.
async fn posted(graph: &MockServer) -> Vec<Value> {
    graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn text(conv: &str, n: usize) -> OutboundMessage {
    OutboundMessage {
        phone_number_id: PHONE_ID.into(),
        recipient: Recipient {
            wa_id: None,
            user_id: Some(BSUID.into()),
        },
        dedup_id: format!("{conv}:m{n}"),
        conversation_id: Some(conv.into()),
        last_inbound_at: None,
        body: OutboundBody::Text {
            body: format!("message {n}"),
            preview_url: false,
        },
        transcript: None,
    }
}

fn meta_error(code: i64, message: &str) -> Value {
    json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": { "messaging_product": "whatsapp", "details": message },
            "fbtrace_id": "AazcfNrVBAVc_4yGTt6yF0X"
        }
    })
}

/// Meta's answers to successful calls: `{"success": true}` for mark-as-read, else the message
/// id, numbering the wamids `wamid.T1`, `wamid.T2`, ...
fn accepting() -> impl Fn(&Request) -> ResponseTemplate + Send + Sync {
    let n = AtomicUsize::new(0);
    move |req: &Request| {
        if String::from_utf8_lossy(&req.body).contains("\"status\":\"read\"") {
            return ResponseTemplate::new(200).set_body_json(json!({ "success": true }));
        }
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": BSUID, "user_id": BSUID }],
            "messages": [{ "id": format!("wamid.T{i}"), "message_status": "accepted" }]
        }))
    }
}

async fn mount_accepting(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_ID}/messages")))
        .respond_with(accepting())
        .mount(server)
        .await;
}

/// A mark-as-read, a text and a button question for c1 (dedup ids `c1:m0`, `c1:m1`, `c1:m2`),
/// sent in one round by a sender whose token Meta accepts; the round's (received, response).
async fn three_kinds_sent(rig: &TestApp, graph: &MockServer) -> (usize, SqsBatchResponse) {
    Mock::given(header("authorization", "Bearer token-1"))
        .and(path(format!("/v23.0/{PHONE_ID}/messages")))
        .respond_with(accepting())
        .mount(graph)
        .await;
    let sender = sender(rig, graph, false, 0).await;
    let mut read = text("c1", 0);
    read.body = OutboundBody::MarkRead {
        message_id: "wamid.IN1".into(),
        typing_indicator: true,
    };
    let mut ask = text("c1", 2);
    ask.recipient.wa_id = Some("16505551234".into());
    ask.body = OutboundBody::Buttons {
        body: "Which team?".into(),
        header: None,
        footer: None,
        buttons: vec![ReplyButton {
            id: "sales".into(),
            title: "Sales".into(),
        }],
    };
    enqueue(rig, &[read, text("c1", 1), ask]).await;
    rig.poll("OutboundQueue", &sender).await.unwrap()
}

#[tokio::test]
async fn sender_delivers_every_kind_in_order() {
    let (rig, graph) = spawn().await;
    let (n, r) = three_kinds_sent(&rig, &graph).await;
    assert_eq!(n, 3);
    assert!(r.batch_item_failures.is_empty());
    let posted = posted(&graph).await;
    assert_eq!(posted.len(), 3);
    assert_eq!(
        posted[0],
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1", "typing_indicator": {"type": "text"}})
    );
    assert_eq!(posted[1]["recipient"], BSUID);
    assert_eq!(posted[1]["text"]["body"], "message 1");
    assert_eq!(posted[2]["to"], "16505551234");
    assert_eq!(posted[2]["interactive"]["type"], "button");
    assert_eq!(rig.queue_depth("OutboundQueue").await, 0);
}

#[tokio::test]
async fn sender_records_the_wamid_of_each_message() {
    let (rig, graph) = spawn().await;
    three_kinds_sent(&rig, &graph).await;
    let out = rig
        .item("OUT#wamid.T1", "OUT")
        .await
        .expect("OUT item for the text");
    assert_eq!(s(&out, "conversation_id"), "c1");
    assert_eq!(s(&out, "dedup_id"), "c1:m1");
    assert_eq!(s(&out, "contact_key"), BSUID);
    let sent_at: i64 = out["sent_at"].as_n().unwrap().parse().unwrap();
    let expires: i64 = out["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(
        expires - sent_at,
        prechat::store::delivery_log::OUT_TTL_SECONDS
    );
    assert_eq!(
        s(&rig.item("OUT#wamid.T2", "OUT").await.unwrap(), "dedup_id"),
        "c1:m2"
    );
}

#[tokio::test]
async fn sender_records_every_sent_dedup_id() {
    let (rig, graph) = spawn().await;
    three_kinds_sent(&rig, &graph).await;
    for d in ["c1:m0", "c1:m1", "c1:m2"] {
        assert!(
            rig.item(&format!("SENT#{d}"), "SENT").await.is_some(),
            "{d}"
        );
    }
}

#[tokio::test]
async fn a_mark_as_read_is_recorded_without_a_wamid() {
    let (rig, graph) = spawn().await;
    three_kinds_sent(&rig, &graph).await;
    let read = rig.item("SENT#c1:m0", "SENT").await.unwrap();
    assert!(
        !read.contains_key("wamid"),
        "mark-as-read creates no message"
    );
}

#[tokio::test]
async fn sender_requests_per_reply() {
    let (rig, graph) = spawn().await;
    mount_accepting(&graph).await;
    let sender = sender(&rig, &graph, false, 0).await;
    enqueue(&rig, &(0..10).map(|i| text("c1", i)).collect::<Vec<_>>()).await;
    let started = std::time::Instant::now();
    let (n, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
    println!(
        "one batch of 10 replies (receive, handle, 10 deletes) against moto + wiremock: {:?}",
        started.elapsed()
    );
    assert_eq!((n, r.batch_item_failures.len()), (10, 0));
    let dynamo = rig.requests.total("DynamoDB_20120810.");
    let sqs = rig.requests.total("AmazonSQS.");
    let graph = posted(&graph).await.len();
    println!(
        "requests per reply: DynamoDB {} Graph {} SQS {}",
        dynamo as f64 / 10.0,
        graph as f64 / 10.0,
        sqs as f64 / 10.0
    );
    // GetItem + TransactWriteItems; one POST; no SQS call on success (Lambda deletes).
    assert_eq!((dynamo, graph, sqs), (20, 10, 0));
}

#[tokio::test]
async fn sender_never_sends_a_redelivered_message_twice() {
    let (rig, graph) = spawn().await;
    mount_accepting(&graph).await;
    let sender = sender(&rig, &graph, false, 0).await;
    enqueue(&rig, &[text("c1", 1)]).await;
    rig.poll("OutboundQueue", &sender).await.unwrap();
    // The same message again (as after a crash before SQS deleted it; a new SQS dedup id so
    // SQS does not drop it itself).
    let m = text("c1", 1);
    outbound_queue(&rig)
        .send_all(&[QueueMessage::fifo(
            serde_json::to_string(&m).unwrap(),
            &m.group_id(),
            "redelivery-1",
        )])
        .await
        .unwrap();
    let (_, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(posted(&graph).await.len(), 1, "sent once");
    assert_eq!(rig.queue_depth("OutboundQueue").await, 0);
}

/// The send record of c1:m1 (a text to Ana, wamid `wamid.other`) sent at `sent_at`.
fn sent_record(dedup_id: &str, sent_at: i64) -> SentRecord {
    SentRecord {
        dedup_id: dedup_id.into(),
        wamid: Some("wamid.other".into()),
        conversation_id: Some("c1".into()),
        contact_key: Some(BSUID.into()),
        phone_number_id: PHONE_ID.into(),
        sent_at,
        via: SentVia::Message,
        transcript: None,
    }
}

#[tokio::test]
async fn the_delivery_log_records_a_send_once() {
    let app = TestApp::spawn().await;
    let log = app.delivery_log();
    let now = app.clock.unix();
    assert!(log.record_sent(&sent_record("c1:m1", now)).await.unwrap());
    let mut again = sent_record("c1:m1", now);
    again.wamid = Some("wamid.again".into());
    assert!(!log.record_sent(&again).await.unwrap());
    assert!(
        app.item("OUT#wamid.again", "OUT").await.is_none(),
        "the transaction wrote nothing"
    );
    assert!(log.is_sent("c1:m1", now).await.unwrap());
}

/// A record past its expiry (not yet removed by DynamoDB) does not count.
#[tokio::test]
async fn an_expired_send_record_does_not_count() {
    let app = TestApp::spawn().await;
    let log = app.delivery_log();
    assert!(log.record_sent(&sent_record("old", 1000)).await.unwrap());
    assert!(!log.is_sent("old", app.clock.unix()).await.unwrap());
}

/// A local Graph API that throttles the first request containing `body` once, then accepts
/// everything.
async fn throttled_once(graph: &MockServer, body: &str) {
    Mock::given(body_string_contains(body))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(meta_error(130429, "(#130429) Rate limit hit")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(graph)
        .await;
    mount_accepting(graph).await;
}

#[tokio::test]
async fn sender_keeps_order_when_a_message_fails_mid_batch() {
    let (rig, graph) = spawn().await;
    throttled_once(&graph, "message 2").await;
    let sender = sender(&rig, &graph, false, 0).await;
    enqueue(&rig, &(1..=4).map(|i| text("c1", i)).collect::<Vec<_>>()).await;

    let (n, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        r.batch_item_failures.len(),
        3,
        "the throttled message and everything after it"
    );
    let mut rounds = 1;
    while let Some((_, r)) = rig.poll("OutboundQueue", &sender).await {
        assert!(r.batch_item_failures.is_empty());
        rounds += 1;
        assert!(rounds < 5);
    }
    let order: Vec<String> = posted(&graph)
        .await
        .iter()
        .map(|b| b["text"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        [
            "message 1",
            "message 2",
            "message 2",
            "message 3",
            "message 4"
        ]
    );
    assert_eq!(rig.queue_depth("OutboundQueue").await, 0);
}

#[tokio::test]
async fn sender_backs_off_with_the_visibility_timeout() {
    let (rig, graph) = spawn().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(meta_error(131016, "(#131016) Service unavailable")),
        )
        .mount(&graph)
        .await;
    let sender = sender(&rig, &graph, false, 20).await;
    enqueue(&rig, &[text("c1", 1), text("c1", 2)]).await;
    let (_, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
    assert_eq!(r.batch_item_failures.len(), 2);
    assert_eq!(
        rig.requests.total("AmazonSQS."),
        1,
        "one ChangeMessageVisibilityBatch"
    );
    // First receive: 10..=20 s of back-off, so nothing is visible right now.
    assert!(rig.poll("OutboundQueue", &sender).await.is_none());
    assert_eq!(
        rig.queue_depth("OutboundQueue").await,
        2,
        "kept, not dropped"
    );
    assert_eq!(posted(&graph).await.len(), 1);
}

/// Meta's transient failures (throttling, outages) and a network timeout, each named.
fn transient_errors() -> Vec<(&'static str, ResponseTemplate)> {
    vec![
        (
            "130429",
            ResponseTemplate::new(429)
                .set_body_json(meta_error(130429, "(#130429) Rate limit hit")),
        ),
        (
            "131056",
            ResponseTemplate::new(400).set_body_json(meta_error(
                131056,
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            )),
        ),
        (
            "131016",
            ResponseTemplate::new(503)
                .set_body_json(meta_error(131016, "(#131016) Service unavailable")),
        ),
        (
            "4",
            ResponseTemplate::new(400)
                .set_body_json(meta_error(4, "(#4) Application request limit reached")),
        ),
        (
            "80007",
            ResponseTemplate::new(400)
                .set_body_json(meta_error(80007, "(#80007) Rate limit issues")),
        ),
        (
            "5xx",
            ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"),
        ),
        (
            "timeout",
            ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
        ),
    ]
}

#[tokio::test]
async fn sender_retries_every_transient_error() {
    let (rig, graph) = spawn().await;
    let sender = sender(&rig, &graph, false, 0).await;
    let cases = transient_errors();
    enqueue(&rig, &[text("c1", 1)]).await;
    for (name, answer) in cases {
        graph.reset().await;
        Mock::given(method("POST"))
            .respond_with(answer)
            .mount(&graph)
            .await;
        let (_, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
        assert_eq!(r.batch_item_failures.len(), 1, "{name} must be retried");
        assert!(rig.item("SENT#c1:m1", "SENT").await.is_none(), "{name}");
        assert!(rig.item("CONV#c1", "FAIL#c1:m1").await.is_none(), "{name}");
    }
    graph.reset().await;
    mount_accepting(&graph).await;
    let (_, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert!(rig.item("SENT#c1:m1", "SENT").await.is_some());
}

#[tokio::test]
async fn sender_records_permanent_errors_without_retrying() {
    let (rig, graph) = spawn().await;
    let sender = sender(&rig, &graph, true, 0).await;
    for (i, (code, class)) in [
        (131026, "permanent"),
        (100, "permanent"),
        (131051, "permanent"),
        (131062, "bsuid_unsupported"),
    ]
    .into_iter()
    .enumerate()
    {
        graph.reset().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(meta_error(code, &format!("(#{code}) refused"))),
            )
            .mount(&graph)
            .await;
        let conv = format!("c{i}");
        enqueue(&rig, &[text(&conv, 1)]).await;
        let (_, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
        assert!(r.batch_item_failures.is_empty(), "{code} is not retried");
        let fail = rig
            .item(&format!("CONV#{conv}"), &format!("FAIL#{conv}:m1"))
            .await
            .expect("failure recorded");
        assert_eq!(s(&fail, "error_code"), code.to_string());
        assert_eq!(s(&fail, "error_class"), class);
        assert_eq!(s(&fail, "reason"), format!("(#{code}) refused"));
        assert_eq!(s(&fail, "kind"), "text");
        assert_eq!(
            posted(&graph).await.len(),
            1,
            "{code}: no template, no retry"
        );
        assert_eq!(rig.queue_depth("OutboundQueue").await, 0);
    }
}

/// A local Graph API that refuses free-form text with 131047 (the 24-hour window is closed)
/// and accepts templates.
async fn window_closed(graph: &MockServer) {
    Mock::given(body_string_contains("\"type\":\"text\""))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(meta_error(131047, "Re-engagement message")),
        )
        .mount(graph)
        .await;
    Mock::given(body_string_contains("\"type\":\"template\""))
        .respond_with(accepting())
        .mount(graph)
        .await;
}

#[tokio::test]
async fn sender_falls_back_to_the_reengagement_template_outside_the_window() {
    let (rig, graph) = spawn().await;
    window_closed(&graph).await;
    let with_template = sender(&rig, &graph, true, 0).await;
    enqueue(&rig, &[text("c1", 1)]).await;
    let (_, r) = rig.poll("OutboundQueue", &with_template).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    let bodies = posted(&graph).await;
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[1]["template"],
        json!({"name": "reopen_conversation", "language": {"code": "en_US"}})
    );
    assert_eq!(bodies[1]["recipient"], BSUID);
    let out = rig.item("OUT#wamid.T1", "OUT").await.unwrap();
    assert_eq!(s(&out, "via"), "reengagement_template");
    assert_eq!(s(&out, "dedup_id"), "c1:m1");
}

#[tokio::test]
async fn sender_without_a_template_records_the_closed_window() {
    let (rig, graph) = spawn().await;
    window_closed(&graph).await;
    let without = sender(&rig, &graph, false, 0).await;
    enqueue(&rig, &[text("c2", 1)]).await;
    let (_, r) = rig.poll("OutboundQueue", &without).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(
        posted(&graph).await.len(),
        1,
        "no template without configuration"
    );
    let fail = rig.item("CONV#c2", "FAIL#c2:m1").await.unwrap();
    assert_eq!(
        (s(&fail, "error_code"), s(&fail, "error_class")),
        ("131047", "window_closed")
    );
}

#[tokio::test]
async fn sender_rereads_a_rotated_token_after_an_auth_error() {
    let (rig, graph) = spawn().await;
    let expired = meta_error(190, "Error validating access token: Session has expired");
    Mock::given(header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(expired))
        .mount(&graph)
        .await;
    Mock::given(header("authorization", "Bearer token-2"))
        .respond_with(accepting())
        .mount(&graph)
        .await;
    let sender = sender(&rig, &graph, false, 0).await; // reads token-1 at init
    rig.put_access_token("token-2").await;
    enqueue(&rig, &[text("c1", 1)]).await;
    let (_, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(posted(&graph).await.len(), 2, "one re-read, then sent");
    assert!(rig.item("SENT#c1:m1", "SENT").await.is_some());
}

/// Revoked and not rotated: the message is kept for a later retry.
#[tokio::test]
async fn sender_keeps_a_reply_while_the_token_stays_revoked() {
    let (rig, graph) = spawn().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(meta_error(190, "Error validating access token")),
        )
        .mount(&graph)
        .await;
    let sender = sender(&rig, &graph, false, 0).await;
    enqueue(&rig, &[text("c1", 2)]).await;
    let (_, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
    assert_eq!(r.batch_item_failures.len(), 1);
    assert_eq!(
        posted(&graph).await.len(),
        1,
        "same token after the re-read: not sent again"
    );
    assert_eq!(rig.queue_depth("OutboundQueue").await, 1);
}

/// A local Graph API that fails every call with a retryable 500.
async fn always_failing(graph: &MockServer) {
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(meta_error(131000, "Something went wrong")),
        )
        .mount(graph)
        .await;
}

/// A body that is not an OutboundMessage (another contact's group) is parked at once.
#[tokio::test]
async fn sender_parks_an_unreadable_body_at_once() {
    let (rig, graph) = spawn().await;
    always_failing(&graph).await;
    let sender = sender(&rig, &graph, false, 0).await;
    enqueue(&rig, &[text("c1", 1)]).await;
    outbound_queue(&rig)
        .send_all(&[QueueMessage::fifo(
            "{\"kind\":\"text\"}".into(),
            "106540352242922:other",
            "junk-1",
        )])
        .await
        .unwrap();
    let (n, first) = rig.poll("OutboundQueue", &sender).await.unwrap();
    assert_eq!(
        (n, first.batch_item_failures.len()),
        (2, 1),
        "the junk is done"
    );
    assert_eq!(
        rig.env.parked("OutboundDeadLetterQueue").await,
        [(
            "{\"kind\":\"text\"}".to_owned(),
            "106540352242922:other".to_owned(),
            "unreadable_body".to_owned(),
            "reply-sender".to_owned()
        )],
        "parked by the sender on its first receive"
    );
}

#[tokio::test]
async fn sender_leaves_a_failing_reply_to_sqs_until_the_maximum_receives() {
    let (rig, graph) = spawn().await;
    always_failing(&graph).await;
    let sender = sender(&rig, &graph, false, 0).await;
    enqueue(&rig, &[text("c1", 1)]).await;
    let mut receives = 0;
    while let Some((n, r)) = rig.poll("OutboundQueue", &sender).await {
        assert_eq!(r.batch_item_failures.len(), n, "nothing is deleted");
        receives += 1;
        assert!(receives <= 8, "maxReceiveCount is 8");
    }
    assert_eq!(receives, 8);
    let parked = rig.env.parked("OutboundDeadLetterQueue").await;
    assert_eq!(parked.len(), 1);
    let m: OutboundMessage = serde_json::from_str(&parked[0].0).unwrap();
    assert_eq!(m.dedup_id, "c1:m1");
    assert_eq!(parked[0].2, "", "redriven by SQS, not parked by the sender");
    assert!(rig.item("SENT#c1:m1", "SENT").await.is_none());
}

/// A local Graph API that fails every request for `recipient` with a retryable 500 and
/// accepts the others.
async fn failing_for(graph: &MockServer, recipient: &str) {
    Mock::given(method("POST"))
        .and(body_string_contains(recipient))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(meta_error(131000, "Something went wrong")),
        )
        .with_priority(1)
        .mount(graph)
        .await;
    Mock::given(method("POST"))
        .respond_with(accepting())
        .mount(graph)
        .await;
}

#[tokio::test]
async fn one_contacts_retryable_failure_does_not_hold_back_another_contacts_reply() {
    let (rig, graph) = spawn().await;
    failing_for(&graph, BSUID).await;
    let sender = sender(&rig, &graph, false, 30).await;
    let mut other = text("c2", 1);
    other.recipient.user_id = Some("US.99999999999999999999".into());
    enqueue(&rig, &[text("c1", 1), text("c1", 2), other]).await;
    let (n, r) = rig.poll("OutboundQueue", &sender).await.unwrap();
    assert_eq!(n, 3, "one batch with both contacts");
    let failed: Vec<&str> = r
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "c1's two replies: {failed:?}");
    assert_eq!(
        posted(&graph).await.len(),
        2,
        "c1:m1 (500) and c2:m1; c1:m2 held back"
    );
    assert!(
        rig.item("SENT#c2:m1", "SENT").await.is_some(),
        "the other contact got its reply"
    );
    assert!(rig.item("SENT#c1:m1", "SENT").await.is_none());
    assert_eq!(
        rig.queue_depth("OutboundQueue").await,
        2,
        "only c1's replies stay"
    );
}

/// The real binary under cargo-lambda's runtime emulator, configured only through its
/// environment (as in the template), handling `events/reply-sender.json`.
#[tokio::test(flavor = "multi_thread")]
async fn reply_sender_binary_handles_the_sample_event_under_cargo_lambda() {
    let (app, graph) = spawn().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_ID}/messages")))
        .and(header("authorization", "Bearer local-access-token"))
        .respond_with(accepting())
        .mount(&graph)
        .await;
    app.put_access_token("local-access-token").await;
    let event = prechat_tests::workspace_root().join("events/reply-sender.json");
    let base_url = graph.uri();
    let (reply, log) = app
        .run_binary(
            "reply-sender",
            "ReplySenderFunction",
            &event,
            &[("PRECHAT_GRAPH_BASE_URL", &base_url)],
        )
        .await;
    assert_eq!(reply, json!({ "batchItemFailures": [] }), "{log}");
    let bodies = posted(&graph).await;
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["status"], "read");
    assert_eq!(bodies[1]["to"], "16505551234");
    assert_eq!(
        bodies[1]["interactive"]["action"]["buttons"][1]["reply"]["id"],
        "support"
    );
    let sent = app.item("SENT#conv-20261123-0001:q1:ask", "SENT").await;
    assert_eq!(sent.as_ref().map(|i| s(i, "wamid")), Some("wamid.T1"));
    assert!(log.contains("sent"), "{log}");
    for personal in ["16505551234", BSUID, "Which team"] {
        assert!(
            !log.contains(personal),
            "{personal} must not be logged:\n{log}"
        );
    }
}

/// A text whose transcript entry (pending) is stored, as the survey engine writes it.
async fn with_entry(
    app: &TestApp,
    conv: &str,
    n: usize,
) -> (OutboundMessage, TranscriptRef, DynamoTranscript) {
    let log = DynamoTranscript::new(DynamoTable::new(app.env.dynamo.clone(), app.table()));
    let entry = Entry {
        id: engine_entry_id(1_790_000_000_000, n as u32),
        at: 1_790_000_000_000,
        author: Author::Bot,
        body: Body::Text {
            text: format!("message {n}"),
        },
        status: Some(TStatus::Pending),
        wamid: None,
    };
    log.append(conv, std::slice::from_ref(&entry), 2_000_000_000)
        .await
        .unwrap();
    let r = TranscriptRef {
        conversation_id: conv.into(),
        entry_id: entry.id,
        agent_id: Some("alice".into()),
    };
    let mut msg = text(conv, n);
    msg.transcript = Some(r.clone());
    (msg, r, log)
}

async fn entry_state(
    log: &DynamoTranscript,
    r: &TranscriptRef,
) -> (Option<TStatus>, Option<String>) {
    let page = log
        .page(&r.conversation_id, &PageRequest::default())
        .await
        .unwrap();
    let e = page
        .entries
        .into_iter()
        .find(|e| e.id == r.entry_id)
        .unwrap();
    (e.status, e.wamid)
}

#[tokio::test]
async fn sender_marks_the_transcript_entry_sent_with_its_wamid() {
    let (app, graph) = spawn().await;
    mount_accepting(&graph).await;
    let sender = sender(&app, &graph, false, 0).await;
    let (msg, r, log) = with_entry(&app, "c1", 1).await;
    enqueue(&app, &[msg]).await;
    app.poll("OutboundQueue", &sender).await.unwrap();
    assert_eq!(
        entry_state(&log, &r).await,
        (Some(TStatus::Sent), Some("wamid.T1".into()))
    );
    let out = app.item("OUT#wamid.T1", "OUT").await.unwrap();
    assert_eq!(
        s(&out, "transcript_entry"),
        r.entry_id,
        "statuses find the entry"
    );
}

#[tokio::test]
async fn sender_marks_the_transcript_entry_of_a_refused_message_failed() {
    let (app, graph) = spawn().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(meta_error(131026, "refused")))
        .mount(&graph)
        .await;
    let sender = sender(&app, &graph, false, 0).await;
    let (msg, r, log) = with_entry(&app, "c2", 1).await;
    enqueue(&app, &[msg]).await;
    app.poll("OutboundQueue", &sender).await.unwrap();
    assert_eq!(entry_state(&log, &r).await, (Some(TStatus::Failed), None));
}

/// The pusher of reply-sender's environment, its management API at `api` (stage `live`).
async fn web_pusher(app: &TestApp, api: &MockServer) -> prechat::realtime::push::SharedPush {
    use prechat::realtime::push::{ApiGatewayPoster, Pusher};
    let sdk = prechat_tests::local::local_sdk_config().await;
    let poster = ApiGatewayPoster::new(&sdk, &format!("{}/live", api.uri()));
    let table = DynamoTable::new(app.env.dynamo.clone(), app.table());
    std::sync::Arc::new(Pusher::new(
        prechat::store::connections::DynamoConnections::new(table),
        poster,
        app.clock.clone(),
    ))
}

#[tokio::test]
async fn a_web_message_reaches_the_visitor_s_connection_is_delivered_and_recorded_once() {
    use prechat::entrypoints::sender::Delivery;
    use prechat::store::connections::{Connection, ConnectionStore, DynamoConnections};

    let (app, graph) = spawn().await;
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/live/@connections/visitor-conn"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&api)
        .await;
    let table = DynamoTable::new(app.env.dynamo.clone(), app.table());
    let now = app.clock.unix();
    let visitor = "V.abcdefghijklmnop";
    let connections = DynamoConnections::new(table.clone());
    connections
        .put(&Connection::new(
            "visitor-conn",
            &prechat::webchat::visitor_principal(visitor),
            now * 1000,
        ))
        .await
        .unwrap();
    // An agent's connection gets nothing of it.
    connections
        .put(&Connection::new("agent-conn", "alice", now * 1000))
        .await
        .unwrap();
    let sender = sender(&app, &graph, false, 0)
        .await
        .with_pusher(Some(web_pusher(&app, &api).await));
    let (mut msg, r, log) = with_entry(&app, "c-web", 1).await;
    msg.phone_number_id = "web".into();
    msg.recipient.user_id = Some(visitor.into());
    // Three days since the visitor wrote: no window, no template for web.
    msg.last_inbound_at = Some(now - 3 * 24 * 3600);
    enqueue(&app, std::slice::from_ref(&msg)).await;
    let (received, response) = app.poll("OutboundQueue", &sender).await.unwrap();
    assert_eq!(received, 1);
    assert!(response.batch_item_failures.is_empty());
    assert!(posted(&graph).await.is_empty(), "never the Graph API");
    let frames = api.received_requests().await.unwrap();
    assert_eq!(frames.len(), 1);
    let frame: Value = serde_json::from_slice(&frames[0].body).unwrap();
    assert_eq!(frame["type"], "message.created");
    assert_eq!(frame["conversation_id"], "c-web");
    assert_eq!(frame["entry"]["id"], json!(r.entry_id));
    assert_eq!(frame["entry"]["text"], "message 1");
    assert_eq!(frame["entry"]["author"], json!({"kind": "agent"}));
    let message_id = "web.c-web:m1";
    assert_eq!(
        entry_state(&log, &r).await,
        (Some(TStatus::Delivered), Some(message_id.into()))
    );
    let sent = app.item("SENT#c-web:m1", "SENT").await.unwrap();
    assert_eq!(s(&sent, "wamid"), message_id);
    let out = app.item(&format!("OUT#{message_id}"), "OUT").await.unwrap();
    assert_eq!(s(&out, "delivery_status"), "delivered");
    // A redelivery is recognised and pushes nothing.
    assert_eq!(sender.deliver(&msg).await.unwrap(), Delivery::AlreadySent);
    assert_eq!(api.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_web_message_without_a_visitor_connection_waits_in_the_transcript() {
    let (app, graph) = spawn().await;
    let api = MockServer::start().await;
    let sender = sender(&app, &graph, false, 0)
        .await
        .with_pusher(Some(web_pusher(&app, &api).await));
    let (mut msg, r, log) = with_entry(&app, "c-web2", 1).await;
    msg.phone_number_id = "web".into();
    msg.recipient.user_id = Some("V.abcdefghijklmnop".into());
    enqueue(&app, &[msg]).await;
    let (_, response) = app.poll("OutboundQueue", &sender).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert!(posted(&graph).await.is_empty());
    assert_eq!(
        entry_state(&log, &r).await,
        (Some(TStatus::Sent), Some("web.c-web2:m1".into()))
    );
    assert!(app.item("SENT#c-web2:m1", "SENT").await.is_some());
    assert!(api.received_requests().await.unwrap().is_empty());
}
