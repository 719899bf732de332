//! reply-sender against a real local Graph API (wiremock, answering with Meta's error bodies)
//! and moto (the outbound FIFO queue with its DLQ, the state table, SSM). Each round below does
//! what the Lambda service does: receive up to 10 messages, call the handler, delete what it did
//! not report as failed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use prechat::entrypoints::sender::{
    ReengagementTemplate, ReplySender, SenderConfig, SqsVisibility,
};
use prechat::queue::dlq::SqsDeadLetters;
use prechat::queue::FifoContract;
use prechat::queue::{MessageQueue, QueueMessage, SqsQueue};
use prechat::store::delivery_log::{DeliveryLog, DynamoDeliveryLog, SentRecord, SentVia};
use prechat::store::transcript::{DynamoTranscript, TranscriptLog};
use prechat::store::DynamoTable;
use prechat::transcript::{
    engine_entry_id, Author, Body, DeliveryStatus as TStatus, Entry, PageRequest, TranscriptRef,
};
use prechat::whatsapp::graph_client::{GraphClient, GraphSettings, SecretToken};
use prechat::whatsapp::outbound::{OutboundBody, OutboundMessage, Recipient, ReplyButton};
use prechat_tests::TestEnv;
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;
type Sender = ReplySender<GraphClient<SecretToken<Lookup>>, DynamoDeliveryLog, SqsVisibility>;

const PHONE_ID: &str = "106540352242922";
const BSUID: &str = "US.13491208655302741918";

/// Counts the AWS requests a client makes (to report requests per reply).
#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<AtomicUsize>);

impl aws_sdk_dynamodb::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }
    fn read_before_transmit(
        &self,
        _: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Rig {
    env: TestEnv,
    graph: MockServer,
    token_param: String,
    dynamo_requests: CountRequests,
    sqs_requests: CountRequests,
}

impl Rig {
    async fn new() -> Rig {
        let env = TestEnv::new().await;
        let graph = MockServer::start().await;
        let token_param = format!("/{}/whatsapp-access-token", env.prefix);
        env.put_secret(&token_param, "token-1").await;
        Rig {
            env,
            graph,
            token_param,
            dynamo_requests: CountRequests::default(),
            sqs_requests: CountRequests::default(),
        }
    }

    fn config(&self, template: bool, retry_base_secs: u64) -> SenderConfig {
        SenderConfig {
            table: self.env.table("StateTable").to_owned(),
            outbound_queue_url: self.env.queue_url("OutboundQueue").to_owned(),
            dead_letter_queue_url: self.env.queue_url("OutboundDeadLetterQueue").to_owned(),
            graph: GraphSettings {
                base_url: self.graph.uri(),
                api_version: "v23.0".into(),
                timeout: Duration::from_millis(800),
            },
            reengagement: template.then(|| ReengagementTemplate {
                name: "reopen_conversation".into(),
                language: "en_US".into(),
            }),
            retry_base: Duration::from_secs(retry_base_secs),
            retry_max: Duration::from_secs(retry_base_secs * 16),
            batch_budget: Duration::from_secs(20),
        }
    }

    async fn sender(&self, template: bool, retry_base_secs: u64) -> Sender {
        let config = self.config(template, retry_base_secs);
        let param = self.token_param.clone();
        let lookup: Lookup =
            Box::new(move |k| (k == "WHATSAPP_ACCESS_TOKEN_PARAM").then(|| param.clone()));
        let token = SecretToken::with_lookup(self.env.ssm.clone(), "WHATSAPP_ACCESS_TOKEN", lookup);
        let graph = GraphClient::new(config.graph.clone(), token).await.unwrap();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.env.sdk)
                .interceptor(self.dynamo_requests.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&self.env.sdk)
                .interceptor(self.sqs_requests.clone())
                .build(),
        );
        ReplySender::new(
            config.clone(),
            graph,
            DynamoDeliveryLog::new(DynamoTable::new(dynamo, config.table.clone())),
            SqsVisibility::new(sqs.clone(), config.outbound_queue_url.clone()),
            SqsDeadLetters::new(sqs, Some(config.dead_letter_queue_url.clone())),
        )
    }

    /// Puts messages on the outbound queue as the survey engine does.
    async fn enqueue(&self, msgs: &[OutboundMessage]) {
        let queue = SqsQueue::new(self.env.sqs.clone(), self.env.queue_url("OutboundQueue"));
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
        queue.send_all(&batch).await.unwrap();
    }

    /// One Lambda poll: receive, handle, delete what succeeded. `None` when the queue gave nothing.
    async fn round(&self, sender: &Sender) -> Option<(usize, SqsBatchResponse)> {
        let url = self.env.queue_url("OutboundQueue");
        let out = self
            .env
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let received = out.messages.unwrap_or_default();
        if received.is_empty() {
            return None;
        }
        let arn = &self.env.resources.queue_arns["OutboundQueue"];
        let event = prechat_tests::local::esm::to_sqs_event(&received, arn)
            .unwrap_or_else(|e| panic!("{e}"));
        let response = sender.handle(event).await;
        for m in &received {
            let failed = response
                .batch_item_failures
                .iter()
                .any(|f| Some(f.item_identifier.as_str()) == m.message_id());
            if !failed {
                self.env
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        Some((received.len(), response))
    }

    /// Graph API requests received so far, as JSON bodies.
    async fn posted(&self) -> Vec<Value> {
        self.graph
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    async fn item(&self, pk: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
        self.env
            .dynamo
            .get_item()
            .table_name(self.env.table("StateTable"))
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .send()
            .await
            .unwrap()
            .item
    }

    async fn queue_depth(&self, logical_id: &str) -> usize {
        let a = self
            .env
            .sqs
            .get_queue_attributes()
            .queue_url(self.env.queue_url(logical_id))
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )
            .send()
            .await
            .unwrap();
        a.attributes()
            .map(|m| m.values().map(|v| v.parse::<usize>().unwrap_or(0)).sum())
            .unwrap_or(0)
    }
}

fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
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

#[tokio::test]
async fn sender_delivers_every_kind_in_order_and_records_wamids() {
    let rig = Rig::new().await;
    Mock::given(header("authorization", "Bearer token-1"))
        .and(path(format!("/v23.0/{PHONE_ID}/messages")))
        .respond_with(accepting())
        .mount(&rig.graph)
        .await;
    let sender = rig.sender(false, 0).await;
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
    rig.enqueue(&[read, text("c1", 1), ask]).await;

    let (n, r) = rig.round(&sender).await.unwrap();
    assert_eq!(n, 3);
    assert!(r.batch_item_failures.is_empty());
    let posted = rig.posted().await;
    assert_eq!(posted.len(), 3);
    assert_eq!(
        posted[0],
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1", "typing_indicator": {"type": "text"}})
    );
    assert_eq!(posted[1]["recipient"], BSUID);
    assert_eq!(posted[1]["text"]["body"], "message 1");
    assert_eq!(posted[2]["to"], "16505551234");
    assert_eq!(posted[2]["interactive"]["type"], "button");

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
    let read = rig.item("SENT#c1:m0", "SENT").await.unwrap();
    assert!(
        !read.contains_key("wamid"),
        "mark-as-read creates no message"
    );
    for d in ["c1:m0", "c1:m1", "c1:m2"] {
        assert!(
            rig.item(&format!("SENT#{d}"), "SENT").await.is_some(),
            "{d}"
        );
    }
    assert_eq!(rig.queue_depth("OutboundQueue").await, 0);
}

#[tokio::test]
async fn sender_requests_per_reply() {
    let rig = Rig::new().await;
    mount_accepting(&rig.graph).await;
    let sender = rig.sender(false, 0).await;
    rig.enqueue(&(0..10).map(|i| text("c1", i)).collect::<Vec<_>>())
        .await;
    let started = std::time::Instant::now();
    let (n, r) = rig.round(&sender).await.unwrap();
    println!(
        "one batch of 10 replies (receive, handle, 10 deletes) against moto + wiremock: {:?}",
        started.elapsed()
    );
    assert_eq!((n, r.batch_item_failures.len()), (10, 0));
    let dynamo = rig.dynamo_requests.0.load(Ordering::SeqCst);
    let sqs = rig.sqs_requests.0.load(Ordering::SeqCst);
    let graph = rig.posted().await.len();
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
    let rig = Rig::new().await;
    mount_accepting(&rig.graph).await;
    let sender = rig.sender(false, 0).await;
    rig.enqueue(&[text("c1", 1)]).await;
    rig.round(&sender).await.unwrap();
    // The same message again (as after a crash before SQS deleted it; a new SQS dedup id so
    // SQS does not drop it itself).
    let queue = SqsQueue::new(rig.env.sqs.clone(), rig.env.queue_url("OutboundQueue"));
    let m = text("c1", 1);
    queue
        .send_all(&[QueueMessage::fifo(
            serde_json::to_string(&m).unwrap(),
            &m.group_id(),
            "redelivery-1",
        )])
        .await
        .unwrap();
    let (_, r) = rig.round(&sender).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(rig.posted().await.len(), 1, "sent once");
    assert_eq!(rig.queue_depth("OutboundQueue").await, 0);

    // The store itself: the send record is written once.
    let outbox = DynamoDeliveryLog::new(DynamoTable::new(
        rig.env.dynamo.clone(),
        rig.env.table("StateTable"),
    ));
    let rec = SentRecord {
        dedup_id: "c1:m1".into(),
        wamid: Some("wamid.other".into()),
        conversation_id: Some("c1".into()),
        contact_key: Some(BSUID.into()),
        phone_number_id: PHONE_ID.into(),
        sent_at: 1,
        via: SentVia::Message,
        transcript: None,
    };
    assert!(!outbox.record_sent(&rec).await.unwrap());
    assert!(
        rig.item("OUT#wamid.other", "OUT").await.is_none(),
        "the transaction wrote nothing"
    );
    let now = prechat::clock::Clock::system().unix();
    assert!(outbox.is_sent("c1:m1", now).await.unwrap());
    // An expired record (not yet removed by DynamoDB) does not count.
    let old = SentRecord {
        dedup_id: "old".into(),
        sent_at: 1000,
        ..rec
    };
    assert!(outbox.record_sent(&old).await.unwrap());
    assert!(!outbox.is_sent("old", now).await.unwrap());
}

#[tokio::test]
async fn sender_keeps_order_when_a_message_fails_mid_batch() {
    let rig = Rig::new().await;
    // The second message is throttled once, then everything is accepted.
    Mock::given(body_string_contains("message 2"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(meta_error(130429, "(#130429) Rate limit hit")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&rig.graph)
        .await;
    mount_accepting(&rig.graph).await;
    let sender = rig.sender(false, 0).await;
    rig.enqueue(&(1..=4).map(|i| text("c1", i)).collect::<Vec<_>>())
        .await;

    let (n, r) = rig.round(&sender).await.unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        r.batch_item_failures.len(),
        3,
        "the throttled message and everything after it"
    );
    let mut rounds = 1;
    while let Some((_, r)) = rig.round(&sender).await {
        assert!(r.batch_item_failures.is_empty());
        rounds += 1;
        assert!(rounds < 5);
    }
    let order: Vec<String> = rig
        .posted()
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
    let rig = Rig::new().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(meta_error(131016, "(#131016) Service unavailable")),
        )
        .mount(&rig.graph)
        .await;
    let sender = rig.sender(false, 20).await;
    rig.enqueue(&[text("c1", 1), text("c1", 2)]).await;
    let (_, r) = rig.round(&sender).await.unwrap();
    assert_eq!(r.batch_item_failures.len(), 2);
    assert_eq!(
        rig.sqs_requests.0.load(Ordering::SeqCst),
        1,
        "one ChangeMessageVisibilityBatch"
    );
    // First receive: 10..=20 s of back-off, so nothing is visible right now.
    assert!(rig.round(&sender).await.is_none());
    assert_eq!(
        rig.queue_depth("OutboundQueue").await,
        2,
        "kept, not dropped"
    );
    assert_eq!(rig.posted().await.len(), 1);
}

#[tokio::test]
async fn sender_retries_throttling_outages_and_network_errors() {
    let rig = Rig::new().await;
    let sender = rig.sender(false, 0).await;
    let cases: Vec<(&str, ResponseTemplate)> = vec![
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
    ];
    rig.enqueue(&[text("c1", 1)]).await;
    for (name, answer) in cases {
        rig.graph.reset().await;
        Mock::given(method("POST"))
            .respond_with(answer)
            .mount(&rig.graph)
            .await;
        let (_, r) = rig.round(&sender).await.unwrap();
        assert_eq!(r.batch_item_failures.len(), 1, "{name} must be retried");
        assert!(rig.item("SENT#c1:m1", "SENT").await.is_none(), "{name}");
        assert!(rig.item("CONV#c1", "FAIL#c1:m1").await.is_none(), "{name}");
    }
    rig.graph.reset().await;
    mount_accepting(&rig.graph).await;
    let (_, r) = rig.round(&sender).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert!(rig.item("SENT#c1:m1", "SENT").await.is_some());
}

#[tokio::test]
async fn sender_records_permanent_errors_without_retrying() {
    let rig = Rig::new().await;
    let sender = rig.sender(true, 0).await;
    for (i, (code, class)) in [
        (131026, "permanent"),
        (100, "permanent"),
        (131051, "permanent"),
        (131062, "bsuid_unsupported"),
    ]
    .into_iter()
    .enumerate()
    {
        rig.graph.reset().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(meta_error(code, &format!("(#{code}) refused"))),
            )
            .mount(&rig.graph)
            .await;
        let conv = format!("c{i}");
        rig.enqueue(&[text(&conv, 1)]).await;
        let (_, r) = rig.round(&sender).await.unwrap();
        assert!(r.batch_item_failures.is_empty(), "{code} is not retried");
        let fail = rig
            .item(&format!("CONV#{conv}"), &format!("FAIL#{conv}:m1"))
            .await
            .expect("failure recorded");
        assert_eq!(s(&fail, "error_code"), code.to_string());
        assert_eq!(s(&fail, "error_class"), class);
        assert_eq!(s(&fail, "reason"), format!("(#{code}) refused"));
        assert_eq!(s(&fail, "kind"), "text");
        assert_eq!(rig.posted().await.len(), 1, "{code}: no template, no retry");
        assert_eq!(rig.queue_depth("OutboundQueue").await, 0);
    }
}

#[tokio::test]
async fn sender_falls_back_to_the_reengagement_template_outside_the_window() {
    let rig = Rig::new().await;
    Mock::given(body_string_contains("\"type\":\"text\""))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(meta_error(131047, "Re-engagement message")),
        )
        .mount(&rig.graph)
        .await;
    Mock::given(body_string_contains("\"type\":\"template\""))
        .respond_with(accepting())
        .mount(&rig.graph)
        .await;

    let with_template = rig.sender(true, 0).await;
    rig.enqueue(&[text("c1", 1)]).await;
    let (_, r) = rig.round(&with_template).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    let posted = rig.posted().await;
    assert_eq!(posted.len(), 2);
    assert_eq!(
        posted[1]["template"],
        json!({"name": "reopen_conversation", "language": {"code": "en_US"}})
    );
    assert_eq!(posted[1]["recipient"], BSUID);
    let out = rig.item("OUT#wamid.T1", "OUT").await.unwrap();
    assert_eq!(s(&out, "via"), "reengagement_template");
    assert_eq!(s(&out, "dedup_id"), "c1:m1");

    let without = rig.sender(false, 0).await;
    rig.enqueue(&[text("c2", 1)]).await;
    let (_, r) = rig.round(&without).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(
        rig.posted().await.len(),
        3,
        "no template without configuration"
    );
    let fail = rig.item("CONV#c2", "FAIL#c2:m1").await.unwrap();
    assert_eq!(
        (
            s(&fail, "error_code").as_str(),
            s(&fail, "error_class").as_str()
        ),
        ("131047", "window_closed")
    );
}

#[tokio::test]
async fn sender_rereads_the_token_after_an_auth_error() {
    let rig = Rig::new().await;
    let expired = meta_error(190, "Error validating access token: Session has expired");
    Mock::given(header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(expired))
        .mount(&rig.graph)
        .await;
    Mock::given(header("authorization", "Bearer token-2"))
        .respond_with(accepting())
        .mount(&rig.graph)
        .await;
    let sender = rig.sender(false, 0).await; // reads token-1 at init

    // Rotated in SSM: one re-read, the message goes out.
    rig.env.put_secret(&rig.token_param, "token-2").await;
    rig.enqueue(&[text("c1", 1)]).await;
    let (_, r) = rig.round(&sender).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(rig.posted().await.len(), 2);
    assert!(rig.item("SENT#c1:m1", "SENT").await.is_some());

    // Revoked and not rotated: the message is kept for a later retry.
    rig.graph.reset().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(meta_error(190, "Error validating access token")),
        )
        .mount(&rig.graph)
        .await;
    rig.enqueue(&[text("c1", 2)]).await;
    let (_, r) = rig.round(&sender).await.unwrap();
    assert_eq!(r.batch_item_failures.len(), 1);
    assert_eq!(
        rig.posted().await.len(),
        1,
        "same token after the re-read: not sent again"
    );
    assert_eq!(rig.queue_depth("OutboundQueue").await, 1);
}

#[tokio::test]
async fn sender_parks_an_unreadable_body_at_once_and_a_failing_reply_after_the_maximum_receives() {
    let rig = Rig::new().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(meta_error(131000, "Something went wrong")),
        )
        .mount(&rig.graph)
        .await;
    let sender = rig.sender(false, 0).await;
    rig.enqueue(&[text("c1", 1)]).await;
    // A body that is not an OutboundMessage (another contact's group) is parked at once.
    let queue = SqsQueue::new(rig.env.sqs.clone(), rig.env.queue_url("OutboundQueue"));
    queue
        .send_all(&[QueueMessage::fifo(
            "{\"kind\":\"text\"}".into(),
            "106540352242922:other",
            "junk-1",
        )])
        .await
        .unwrap();
    let (n, first) = rig.round(&sender).await.unwrap();
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
    let mut receives = 1;
    while let Some((n, r)) = rig.round(&sender).await {
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

#[tokio::test]
async fn one_contacts_retryable_failure_does_not_hold_back_another_contacts_reply() {
    let rig = Rig::new().await;
    Mock::given(method("POST"))
        .and(body_string_contains(BSUID))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(meta_error(131000, "Something went wrong")),
        )
        .with_priority(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .respond_with(accepting())
        .mount(&rig.graph)
        .await;
    let sender = rig.sender(false, 30).await;
    let mut other = text("c2", 1);
    other.recipient.user_id = Some("US.99999999999999999999".into());
    rig.enqueue(&[text("c1", 1), text("c1", 2), other]).await;
    let (n, r) = rig.round(&sender).await.unwrap();
    assert_eq!(n, 3, "one batch with both contacts");
    let failed: Vec<&str> = r
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "c1's two replies: {failed:?}");
    assert_eq!(
        rig.posted().await.len(),
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
    let env = TestEnv::new().await;
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_ID}/messages")))
        .and(header("authorization", "Bearer local-access-token"))
        .respond_with(accepting())
        .mount(&graph)
        .await;
    let param = format!("/{}/whatsapp-access-token", env.prefix);
    env.put_secret(&param, "local-access-token").await;
    let vars: Vec<(String, String)> = vec![
        ("PRECHAT_TABLE".into(), env.table("StateTable").into()),
        (
            "PRECHAT_OUTBOUND_QUEUE_URL".into(),
            env.queue_url("OutboundQueue").into(),
        ),
        (
            "PRECHAT_OUTBOUND_DLQ_URL".into(),
            env.queue_url("OutboundDeadLetterQueue").into(),
        ),
        ("PRECHAT_GRAPH_BASE_URL".into(), graph.uri()),
        ("WHATSAPP_ACCESS_TOKEN_PARAM".into(), param),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
    ];
    let reply = tokio::task::spawn_blocking(move || {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let emulator = prechat_tests::lambda::Emulator::start("reply-sender", &vars);
        let event = prechat_tests::workspace_root().join("events/reply-sender.json");
        let reply = emulator.invoke_file("reply-sender", &event);
        (reply, emulator.log_text())
    })
    .await
    .unwrap();
    let (reply, log) = reply;
    assert_eq!(reply, json!({ "batchItemFailures": [] }), "{log}");
    let posted: Vec<Value> = graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[0]["status"], "read");
    assert_eq!(posted[1]["to"], "16505551234");
    assert_eq!(
        posted[1]["interactive"]["action"]["buttons"][1]["reply"]["id"],
        "support"
    );
    let sent = env
        .dynamo
        .get_item()
        .table_name(env.table("StateTable"))
        .key(
            "pk",
            AttributeValue::S("SENT#conv-20261123-0001:q1:ask".into()),
        )
        .key("sk", AttributeValue::S("SENT".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sent.item.map(|i| s(&i, "wamid")),
        Some("wamid.T1".to_owned())
    );
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
    rig: &Rig,
    conv: &str,
    n: usize,
) -> (OutboundMessage, TranscriptRef, DynamoTranscript) {
    let log = DynamoTranscript::new(DynamoTable::new(
        rig.env.dynamo.clone(),
        rig.env.table("StateTable"),
    ));
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
    let rig = Rig::new().await;
    mount_accepting(&rig.graph).await;
    let sender = rig.sender(false, 0).await;
    let (msg, r, log) = with_entry(&rig, "c1", 1).await;
    rig.enqueue(&[msg]).await;
    rig.round(&sender).await.unwrap();
    assert_eq!(
        entry_state(&log, &r).await,
        (Some(TStatus::Sent), Some("wamid.T1".into()))
    );
    let out = rig.item("OUT#wamid.T1", "OUT").await.unwrap();
    assert_eq!(
        s(&out, "transcript_entry"),
        r.entry_id,
        "statuses find the entry"
    );
}

#[tokio::test]
async fn sender_marks_the_transcript_entry_of_a_refused_message_failed() {
    let rig = Rig::new().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(meta_error(131026, "refused")))
        .mount(&rig.graph)
        .await;
    let sender = rig.sender(false, 0).await;
    let (msg, r, log) = with_entry(&rig, "c2", 1).await;
    rig.enqueue(&[msg]).await;
    rig.round(&sender).await.unwrap();
    assert_eq!(entry_state(&log, &r).await, (Some(TStatus::Failed), None));
}
