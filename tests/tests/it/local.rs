//! The local stack (`cargo xtask local`): the local Graph API and its outbox, the signed
//! webhooks of the simulator through the real front door, and the SQS event source mapping
//! emulator against moto (FIFO order, partial batch failures, redelivery, DLQ redrive).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::QueueAttributeName;
use prechat::entrypoints::sqs::{process_fifo_batch, Consumer, Handled};
use prechat::queue::dlq::MemoryDeadLetters;
use prechat::queue::{MessageQueue, QueueError, QueueMessage, SqsQueue};
use prechat::whatsapp::event::{DeliveryStatus, InboundEvent, MessageContent};
use prechat_tests::local::esm::{self, EventSourceMapping};
use prechat_tests::local::graph::{LocalGraphApi, RequestLog, StatusTarget};
use prechat_tests::local::meta::Business;
use prechat_tests::local::server::{self, AppState};
use prechat_tests::TestEnv;
use serde_json::{json, Value};

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn text_message(to: &str, body: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text", "text": {"preview_url": false, "body": body}})
}

/// A local Graph API (no faults, no status webhooks) and the URL of its messages endpoint.
async fn local_graph() -> (RequestLog, String) {
    let outbox = RequestLog::new();
    let base = serve(LocalGraphApi::new(outbox.clone(), 0.0, None).router()).await;
    (outbox, format!("{base}/v23.0/106540352242922/messages"))
}

/// POSTs `body` to `url` with the access token `token` (none if `None`).
async fn post(url: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let req = reqwest::Client::new().post(url).json(body);
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    req.send().await.unwrap()
}

#[tokio::test]
async fn local_graph_api_answers_a_text_like_meta() {
    let (_, url) = local_graph().await;
    let r = post(&url, Some("tok"), &text_message("16505551234", "Hello!")).await;
    assert_eq!(r.status(), 200);
    let reply: Value = r.json().await.unwrap();
    assert_eq!(reply["messaging_product"], "whatsapp");
    assert_eq!(reply["contacts"][0]["input"], "16505551234");
    assert_eq!(reply["contacts"][0]["wa_id"], "16505551234");
    let wamid = reply["messages"][0]["id"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."), "{wamid}");
}

/// A button question addressed by BSUID (`recipient`, no `to`).
fn button_to_bsuid() -> Value {
    json!({"messaging_product": "whatsapp", "recipient": "US.1234567890123456789", "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}})
}

#[tokio::test]
async fn local_graph_api_answers_a_bsuid_recipient_with_its_user_id() {
    let (_, url) = local_graph().await;
    let r = post(&url, Some("tok"), &button_to_bsuid()).await;
    assert_eq!(r.status(), 200);
    let reply: Value = r.json().await.unwrap();
    assert_eq!(reply["contacts"][0]["user_id"], "US.1234567890123456789");
}

#[tokio::test]
async fn local_graph_api_answers_a_mark_as_read_with_success() {
    let (_, url) = local_graph().await;
    let read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"});
    let r = post(&url, Some("tok"), &read).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"success": true}));
}

#[tokio::test]
async fn local_graph_api_refuses_a_send_without_a_token() {
    let (_, url) = local_graph().await;
    let r = post(&url, None, &text_message("16505551234", "Hello!")).await;
    assert_eq!(r.status(), 401, "no access token");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], 190);
}

#[tokio::test]
async fn local_graph_api_refuses_a_malformed_send() {
    let (_, url) = local_graph().await;
    let r = post(&url, Some("tok"), &json!({"to": "1"})).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn local_graph_api_records_every_request_in_order() {
    let (outbox, url) = local_graph().await;
    let first = text_message("16505551234", "Hello!");
    let r = post(&url, Some("tok"), &first).await;
    let wamid = r.json::<Value>().await.unwrap()["messages"][0]["id"].clone();
    let read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"});
    post(&url, Some("tok"), &button_to_bsuid()).await;
    post(&url, Some("tok"), &read).await;
    post(&url, None, &first).await;
    post(&url, Some("tok"), &json!({"to": "1"})).await;
    let all = outbox.entries(None, None);
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(all[0].body, first, "the exact JSON body is kept");
    assert_eq!(all[0].phone_number_id, "106540352242922");
    assert_eq!(all[0].wamid.as_deref(), wamid.as_str());
    let statuses: Vec<u16> = all.iter().map(|e| e.status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 401, 400]);
    let mine: Vec<u64> = outbox
        .entries(Some("16505551234"), None)
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(mine, vec![1, 4]);
}

#[tokio::test]
async fn fault_rate_one_answers_every_send_with_metas_retryable_throughput_error() {
    let outbox = RequestLog::new();
    let base = serve(LocalGraphApi::new(outbox.clone(), 1.0, None).router()).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/v23.0/1/messages"))
        .bearer_auth("tok")
        .json(&text_message("16505551234", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 130429);
    assert_eq!(body["error"]["message"], "(#130429) Rate limit hit");
    assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");
    assert!(body["error"]["fbtrace_id"].is_string());
    assert_eq!(outbox.entries(None, None)[0].status, 429);
    assert_eq!(outbox.entries(None, None)[0].wamid, None);
}

/// What reached `POST /webhook`: (signature header, body).
type Captured = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A front door with no ingest wired: records what reaches `POST /webhook`.
async fn front_door(outbox: RequestLog, secret: &str) -> (String, Captured) {
    let seen: Captured = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sink = seen.clone();
    let capture = prechat_tests::local::pipeline::http(move |req: lambda_http::Request| {
        let sink = sink.clone();
        async move {
            let sig = req
                .headers()
                .get("x-hub-signature-256")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            sink.lock().unwrap().push((sig, req.body().to_vec()));
            lambda_http::Response::builder()
                .status(200)
                .body(lambda_http::Body::Empty)
                .unwrap()
        }
    });
    let state = AppState::new(
        prechat::secrets::Secret::new("local-verify-token"),
        secret.to_owned(),
        Business::default(),
        outbox,
        Some(capture),
        vec!["webhook-verify", "capture"],
        format!("{base}/webhook"),
        None,
    );
    state.set_ready();
    let router = server::router(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, seen)
}

#[tokio::test]
async fn the_front_door_reports_its_health() {
    let (base, _) = front_door(RequestLog::new(), "local-app-secret").await;
    let r = reqwest::get(format!("{base}/local/health")).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The verify handshake goes through the Lambda entrypoint.
#[tokio::test]
async fn the_front_door_answers_the_verify_handshake() {
    let (base, _) = front_door(RequestLog::new(), "local-app-secret").await;
    let r = reqwest::get(format!("{base}/webhook?hub.mode=subscribe&hub.verify_token=local-verify-token&hub.challenge=1158201444"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "1158201444");
}

#[tokio::test]
async fn the_front_door_refuses_a_wrong_verify_token() {
    let (base, _) = front_door(RequestLog::new(), "local-app-secret").await;
    let r = reqwest::get(format!(
        "{base}/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
}

/// POSTs `body` to the simulator's `/local/send` at `base`.
async fn simulate(base: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/local/send"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn ana_says_hi() -> Value {
    json!({"name": "Ana", "phone": "+1 650 555 1234", "input": {"type": "text", "body": "hi"}})
}

#[tokio::test]
async fn simulator_posts_signed_meta_webhooks_through_the_front_door() {
    let (base, seen) = front_door(RequestLog::new(), "local-app-secret").await;
    let sent: Value = simulate(&base, ana_says_hi()).await.json().await.unwrap();
    assert_eq!(sent["webhook_status"], 200, "{sent}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (signature, body) = &seen[0];
    assert_eq!(
        signature,
        &prechat_tests::local::meta::sign("local-app-secret", body)
    );
    let delivered: Value = serde_json::from_slice(body).unwrap();
    let msg = &delivered["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(msg["text"]["body"], "hi");
    assert_eq!(msg["from"], "16505551234");
    assert_eq!(msg["id"], sent["wamid"]);
}

/// Bad input is refused with a reason and nothing is posted.
#[tokio::test]
async fn simulator_refuses_a_contact_without_phone_or_username() {
    let (base, seen) = front_door(RequestLog::new(), "local-app-secret").await;
    let r = simulate(
        &base,
        json!({"name": "Ana", "input": {"type": "text", "body": "hi"}}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("phone number or a username"));
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn simulator_shows_a_sent_message_in_the_chat() {
    let (base, _) = front_door(RequestLog::new(), "local-app-secret").await;
    let sent: Value = simulate(&base, ana_says_hi()).await.json().await.unwrap();
    let chat: Value = reqwest::get(format!("{base}/local/chat?name=Ana&phone=16505551234"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chat["inbound"][0]["wamid"], sent["wamid"]);
}

#[tokio::test]
async fn accepted_messages_get_sent_delivered_read_status_webhooks() {
    let outbox = RequestLog::new();
    let (front, seen) = front_door(outbox.clone(), "s3cret").await;
    let graph = LocalGraphApi::new(
        outbox.clone(),
        0.0,
        Some(StatusTarget {
            webhook_url: format!("{front}/webhook"),
            app_secret: "s3cret".into(),
            business: Business::default(),
            step: Duration::from_millis(20),
        }),
    );
    let base = serve(graph.router()).await;
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/v23.0/106540352242922/messages"))
        .bearer_auth("tok")
        .json(&text_message("16505551234", "Welcome"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wamid = r["messages"][0]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox.entries(None, None)[0].delivery.as_deref() != Some("read") {
        assert!(
            Instant::now() < deadline,
            "no read status: {:?}",
            outbox.entries(None, None)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap().clone();
    let statuses: Vec<String> = seen
        .iter()
        .map(|(sig, body)| {
            assert_eq!(sig, &prechat_tests::local::meta::sign("s3cret", body));
            let v: Value = serde_json::from_slice(body).unwrap();
            let s = &v["entry"][0]["changes"][0]["value"]["statuses"][0];
            assert_eq!(s["id"], wamid.as_str());
            assert_eq!(s["recipient_id"], "16505551234");
            s["status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(statuses, vec!["sent", "delivered", "read"]);
}

/// Fourteen messages in two groups (`pn:alice`, `pn:bob`) through an event source mapping of
/// batch size 10 until all are deleted: what was sent, and the events the handler got.
async fn fourteen_through_the_mapping(env: &TestEnv) -> (Vec<QueueMessage>, Vec<SqsEvent>) {
    let url = env.queue_url("InboundQueue").to_owned();
    let msgs: Vec<QueueMessage> = (0..14)
        .map(|i| {
            let group = if i % 2 == 0 { "pn:alice" } else { "pn:bob" };
            QueueMessage::fifo(format!("{group}#{i}"), group, &format!("wamid.{i}"))
        })
        .collect();
    SqsQueue::new(env.sqs.clone(), &url)
        .send_all(&msgs)
        .await
        .unwrap();
    let seen: Arc<Mutex<Vec<SqsEvent>>> = Arc::default();
    let sink = seen.clone();
    let mapping = EventSourceMapping {
        name: "test".into(),
        queue_url: url,
        queue_arn: env.resources.queue_arns["InboundQueue"].clone(),
        batch_size: 10,
        wait_seconds: 0,
        handler: esm::handler(move |e: SqsEvent| {
            sink.lock().unwrap().push(e.clone());
            async { Default::default() }
        }),
    };
    let mut total = 0;
    for _ in 0..20 {
        total += mapping.poll_once(&env.sqs).await.unwrap().deleted;
        if total == 14 {
            break;
        }
    }
    assert_eq!(total, 14);
    let events = seen.lock().unwrap().clone();
    (msgs, events)
}

#[tokio::test]
async fn event_source_mapping_keeps_fifo_order() {
    let env = TestEnv::new().await;
    let (msgs, events) = fourteen_through_the_mapping(&env).await;
    assert!(events.iter().all(|e| e.records.len() <= 10));
    let mut per_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in events.iter().flat_map(|e| &e.records) {
        per_group
            .entry(r.attributes["MessageGroupId"].clone())
            .or_default()
            .push(r.body.clone().unwrap());
    }
    for (group, got) in per_group {
        let want: Vec<String> = msgs
            .iter()
            .filter(|m| m.group_id == group)
            .map(|m| m.body.clone())
            .collect();
        assert_eq!(got, want, "order within {group}");
    }
    assert!(
        env.receive_all("InboundQueue").await.is_empty(),
        "everything was deleted"
    );
}

/// Several batches at once, as Lambda runs a FIFO queue (one batch per message group in flight):
/// six contacts' four messages each, one message per batch, a handler that takes a while; at
/// most `concurrency` handlers run together, more than one does, and each contact's messages
/// arrive in the order sent, one at a time.
#[tokio::test]
async fn event_source_mapping_runs_batches_of_different_contacts_at_once_in_each_contacts_order() {
    let env = TestEnv::new().await;
    let url = env.queue_url("InboundQueue").to_owned();
    let msgs: Vec<QueueMessage> = (0..24)
        .map(|i| {
            let group = format!("pn:c{}", i % 6);
            QueueMessage::fifo(format!("{group}#{i}"), &group, &format!("wamid.c{i}"))
        })
        .collect();
    SqsQueue::new(env.sqs.clone(), &url)
        .send_all(&msgs)
        .await
        .unwrap();
    #[derive(Default)]
    struct Seen {
        running: usize,
        most: usize,
        running_groups: Vec<String>,
        overlapped_own_group: bool,
        order: BTreeMap<String, Vec<String>>,
        done: usize,
    }
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sink = seen.clone();
    let mapping = EventSourceMapping {
        name: "test".into(),
        queue_url: url,
        queue_arn: env.resources.queue_arns["InboundQueue"].clone(),
        batch_size: 1,
        wait_seconds: 1,
        handler: esm::handler(move |e: SqsEvent| {
            let sink = sink.clone();
            async move {
                let r = &e.records[0];
                let group = r.attributes["MessageGroupId"].clone();
                {
                    let mut s = sink.lock().unwrap();
                    s.running += 1;
                    s.most = s.most.max(s.running);
                    if s.running_groups.contains(&group) {
                        s.overlapped_own_group = true;
                    }
                    s.running_groups.push(group.clone());
                    s.order
                        .entry(group.clone())
                        .or_default()
                        .push(r.body.clone().unwrap());
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
                let mut s = sink.lock().unwrap();
                s.running -= 1;
                s.running_groups.retain(|g| g != &group);
                s.done += 1;
                Default::default()
            }
        }),
    };
    let task = mapping.spawn(env.sqs.clone(), 3);
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.lock().unwrap().done < 24 {
        assert!(Instant::now() < deadline, "not all 24 handled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    let s = seen.lock().unwrap();
    assert!(s.most > 1, "batches ran one at a time");
    assert!(s.most <= 3, "{} batches at once, concurrency 3", s.most);
    assert!(
        !s.overlapped_own_group,
        "two batches of one contact at once"
    );
    for (group, got) in &s.order {
        let want: Vec<String> = msgs
            .iter()
            .filter(|m| &m.group_id == group)
            .map(|m| m.body.clone())
            .collect();
        assert_eq!(got, &want, "order within {group}");
    }
    assert_eq!(s.done, 24, "each message handled once");
}

#[tokio::test]
async fn event_source_mapping_hands_over_records_shaped_like_lambdas() {
    let env = TestEnv::new().await;
    let (_, events) = fourteen_through_the_mapping(&env).await;
    for r in events.iter().flat_map(|e| &e.records) {
        assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            r.event_source_arn.as_deref(),
            Some(env.resources.queue_arns["InboundQueue"].as_str())
        );
        assert!(r.receipt_handle.is_some() && r.message_id.is_some());
        assert_eq!(r.attributes["ApproximateReceiveCount"], "1");
        let body = r.body.clone().unwrap();
        assert_eq!(
            r.attributes["MessageGroupId"],
            body.split('#').next().unwrap()
        );
        assert!(r.attributes["MessageDeduplicationId"].starts_with("wamid."));
    }
}

/// A FIFO queue and its DLQ like the template's, with a 1 s visibility timeout and 2 receives,
/// so a test sees moto's redelivery and redrive without waiting a minute per attempt; (queue
/// URL, DLQ URL).
async fn queue_with_a_short_redrive(env: &TestEnv) -> (String, String) {
    let dlq = env
        .sqs
        .create_queue()
        .queue_name(format!("{}-esm-dlq.fifo", env.prefix))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap();
    let dlq_url = dlq.queue_url().unwrap().to_owned();
    let dlq_arn = env
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let q = env
        .sqs
        .create_queue()
        .queue_name(format!("{}-esm.fifo", env.prefix))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let url = q.queue_url().unwrap().to_owned();
    (url, dlq_url)
}

/// (body, receive count) of each message handed to the handler.
type HandledLog = Arc<Mutex<Vec<(String, String)>>>;

/// A mapping of `url` whose handler is the real FIFO driver: "poison" always fails, so it
/// and everything after it in its group are reported; every handled body lands in `handled`.
fn poison_failing_mapping(url: &str, handled: &HandledLog) -> EventSourceMapping {
    let sink = handled.clone();
    EventSourceMapping {
        name: "test".into(),
        queue_url: url.to_owned(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:esm.fifo".into(),
        batch_size: 10,
        wait_seconds: 1,
        handler: esm::handler(move |e: SqsEvent| {
            let sink = sink.clone();
            async move {
                let counts: HashMap<String, String> = e
                    .records
                    .iter()
                    .filter_map(|m| {
                        let count = m.attributes.get("ApproximateReceiveCount")?;
                        Some((m.body.clone()?, count.clone()))
                    })
                    .collect();
                let dead_letters = MemoryDeadLetters::default();
                let consumer = Consumer {
                    name: "test",
                    dead_letters: &dead_letters,
                };
                process_fifo_batch(e, consumer, |body: String| {
                    let count = counts.get(&json!(body).to_string()).cloned();
                    sink.lock()
                        .unwrap()
                        .push((body.clone(), count.unwrap_or_default()));
                    async move {
                        if body == "poison" {
                            Err(QueueError::Sqs("downstream unavailable".into()))
                        } else {
                            Ok(Handled::Done)
                        }
                    }
                })
                .await
                .response()
            }
        }),
    }
}

/// "a", "b", "poison", "c" in one group on a queue with a short redrive, and the mapping of
/// [`poison_failing_mapping`]; (mapping, DLQ URL, handled log).
async fn poison_in_a_group(env: &TestEnv) -> (EventSourceMapping, String, HandledLog) {
    let (url, dlq_url) = queue_with_a_short_redrive(env).await;
    let msgs: Vec<QueueMessage> = ["a", "b", "poison", "c"]
        .iter()
        .map(|b| QueueMessage::fifo(json!(b).to_string(), "pn:alice", b))
        .collect();
    SqsQueue::new(env.sqs.clone(), &url)
        .send_all(&msgs)
        .await
        .unwrap();
    let handled: HandledLog = Arc::default();
    (poison_failing_mapping(&url, &handled), dlq_url, handled)
}

#[tokio::test]
async fn a_partial_batch_failure_deletes_only_what_came_before_it() {
    let env = TestEnv::new().await;
    let (mapping, _, _) = poison_in_a_group(&env).await;
    let first = mapping.poll_once(&env.sqs).await.unwrap();
    assert_eq!(first.received, 4);
    assert_eq!(first.deleted, 2, "a and b are done");
    assert_eq!(first.failed, 2, "poison and everything after it stay");
}

#[tokio::test]
async fn a_failing_message_is_redelivered_then_redriven_to_the_dlq() {
    let env = TestEnv::new().await;
    let (mapping, dlq_url, handled) = poison_in_a_group(&env).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut parked = Vec::new();
    while parked.is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing reached the DLQ: {:?}",
            handled.lock().unwrap()
        );
        let _ = mapping.poll_once(&env.sqs).await.unwrap();
        let r = env
            .sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        parked.extend(
            r.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body),
        );
    }
    let log = handled.lock().unwrap().clone();
    assert_eq!(
        &log[..3],
        &[
            ("a".into(), "1".into()),
            ("b".into(), "1".into()),
            ("poison".into(), "1".into())
        ]
    );
    assert!(
        log.contains(&("poison".into(), "2".into())),
        "redelivered once: {log:?}"
    );
    assert!(
        !log.iter().any(|(b, _)| b == "c"),
        "c never overtakes poison: {log:?}"
    );
    assert_eq!(
        parked[0], "\"poison\"",
        "after maxReceiveCount the message is redriven"
    );
}

/// The local front door wired to the real ingest (secret `local-app-secret`) that puts onto
/// the inbound queue of `env`; (base URL, the local Graph API's request log).
async fn front_door_with_ingest(env: &TestEnv) -> (String, RequestLog) {
    let secret = prechat::secrets::Secret::new("local-app-secret");
    let ingest = Arc::new(prechat::entrypoints::ingest::Ingest::new(
        &secret,
        SqsQueue::new(env.sqs.clone(), env.queue_url("InboundQueue")),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let outbox = RequestLog::new();
    let state = AppState::new(
        prechat::secrets::Secret::new("local-verify-token"),
        "local-app-secret".into(),
        Business::default(),
        outbox.clone(),
        Some(prechat_tests::local::pipeline::http(move |req| {
            let f = ingest.clone();
            async move { f.handle(req).await }
        })),
        vec!["webhook-verify", "webhook-ingest"],
        format!("{base}/webhook"),
        None,
    );
    state.set_ready();
    let router = server::router(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, outbox)
}

/// The events on the inbound queue of `env`.
async fn inbound_events(env: &TestEnv) -> Vec<InboundEvent> {
    let received = env.receive_all("InboundQueue").await;
    received
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_simulated_text_passes_the_real_ingest_to_the_inbound_queue() {
    let env = TestEnv::new().await;
    let (base, _) = front_door_with_ingest(&env).await;
    let body =
        json!({"name": "Ana", "phone": "16505551234", "input": {"type": "text", "body": "hi"}});
    let hi: Value = simulate(&base, body).await.json().await.unwrap();
    assert_eq!(hi["webhook_status"], 200, "{hi}");
    let events = inbound_events(&env).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let InboundEvent::Message(first) = &events[0] else {
        panic!("not a message: {events:?}")
    };
    assert_eq!(first.message_id, hi["wamid"].as_str().unwrap());
    assert_eq!(first.contact.wa_id.as_deref(), Some("16505551234"));
    assert_eq!(
        first.contact.user_id.as_deref(),
        hi["contact"]["user_id"].as_str()
    );
    assert_eq!(first.content, MessageContent::Text { body: "hi".into() });
}

#[tokio::test]
async fn a_simulated_tap_of_a_username_contact_passes_the_real_ingest() {
    let env = TestEnv::new().await;
    let (base, _) = front_door_with_ingest(&env).await;
    let body = json!({"name": "U", "username": "ana_b", "input": {"type": "button", "id": "lang_en", "title": "English", "context_id": "wamid.BIZ1"}});
    let tap: Value = simulate(&base, body).await.json().await.unwrap();
    assert_eq!(tap["webhook_status"], 200, "{tap}");
    let events = inbound_events(&env).await;
    let InboundEvent::Message(second) = &events[0] else {
        panic!("not a message: {events:?}")
    };
    assert_eq!(second.contact.wa_id, None, "username-only contact");
    assert_eq!(second.contact.username.as_deref(), Some("@ana_b"));
    assert_eq!(second.context_message_id.as_deref(), Some("wamid.BIZ1"));
    assert_eq!(
        second.content,
        MessageContent::ButtonReply {
            id: "lang_en".into(),
            title: "English".into()
        }
    );
}

#[tokio::test]
async fn local_status_webhooks_pass_the_real_ingest_to_the_inbound_queue() {
    let env = TestEnv::new().await;
    let (base, outbox) = front_door_with_ingest(&env).await;
    let graph = LocalGraphApi::new(
        outbox.clone(),
        0.0,
        Some(StatusTarget {
            webhook_url: format!("{base}/webhook"),
            app_secret: "local-app-secret".into(),
            business: Business::default(),
            step: Duration::from_millis(10),
        }),
    );
    let url = format!(
        "{}/v23.0/106540352242922/messages",
        serve(graph.router()).await
    );
    post(&url, Some("tok"), &text_message("16505551234", "Welcome")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox.entries(None, None)[0].delivery.as_deref() != Some("read") {
        assert!(
            Instant::now() < deadline,
            "statuses were not accepted by ingest"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let statuses: Vec<DeliveryStatus> = inbound_events(&env)
        .await
        .iter()
        .filter_map(|e| match e {
            InboundEvent::Status(s) => Some(s.status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered,
            DeliveryStatus::Read
        ]
    );
}

#[tokio::test]
async fn the_real_ingest_behind_the_front_door_refuses_a_forged_signature() {
    let env = TestEnv::new().await;
    let (base, _) = front_door_with_ingest(&env).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/webhook"))
        .header(
            "x-hub-signature-256",
            prechat_tests::local::meta::sign("wrong-secret", b"{}"),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// The seeded local stack (`seed`) and the local server's admin pages over its table and
/// assignment queue; (env, base URL, seeding lines).
async fn seeded_stack() -> (TestEnv, String, Vec<Result<String, String>>) {
    let env = TestEnv::new().await;
    let table = env.table("StateTable").to_owned();
    let queue = env.queue_url("AssignmentQueue").to_owned();
    let scratch = std::env::temp_dir().join(format!("prechat-seed-{}", env.prefix));
    std::fs::create_dir_all(&scratch).unwrap();
    let lines = prechat_tests::local::seed::seed(&table, Some(&queue), &scratch).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(
        prechat::secrets::Secret::new("t"),
        "s".into(),
        Business::default(),
        RequestLog::new(),
        None,
        vec![],
        format!("{base}/webhook"),
        Some(prechat::store::DynamoTable::new(env.dynamo.clone(), &table)),
    )
    .with_assignment_queue(Some(queue));
    let router = server::router(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    env.receive_all("AssignmentQueue").await; // the seeding's own drain jobs
    (env, base, lines)
}

/// `GET /local/agents`: the agents as JSON.
async fn agents(base: &str) -> Value {
    reqwest::get(format!("{base}/local/agents"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn online(agents: &Value) -> Vec<(String, bool)> {
    let list = agents.as_array().unwrap().iter();
    list.map(|a| {
        (
            a["id"].as_str().unwrap().into(),
            a["online"].as_bool().unwrap(),
        )
    })
    .collect()
}

/// `POST /local/agents/{id}` with `{"online": online}`.
async fn set_online(base: &str, id: &str, online: bool) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/local/agents/{id}"))
        .json(&json!({ "online": online }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn seeding_writes_the_survey_teams_routing_and_agents() {
    let (_, _, lines) = seeded_stack().await;
    assert!(lines.iter().all(|l| l.is_ok()), "{lines:?}");
    assert_eq!(
        lines.len(),
        1 + 2 + 1 + 3,
        "survey, two teams, routing, three agents"
    );
}

#[tokio::test]
async fn the_seeded_stack_lists_its_agents() {
    let (_, base, _) = seeded_stack().await;
    let agents = agents(&base).await;
    assert_eq!(
        online(&agents),
        vec![
            ("alice".into(), true),
            ("bruno".into(), true),
            ("carmen".into(), false)
        ]
    );
    assert_eq!(agents[0]["name"], "Alice");
    assert_eq!(agents[0]["capacity"], 2);
}

#[tokio::test]
async fn an_agent_put_online_frees_capacity_for_its_team() {
    let (env, base, _) = seeded_stack().await;
    let r = set_online(&base, "carmen", true).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(online(&agents(&base).await)[2], ("carmen".into(), true));
    let jobs = env.receive_all("AssignmentQueue").await;
    assert!(
        jobs.iter()
            .any(|m| m.body().unwrap().contains("\"team_id\":\"sales\"")),
        "freed capacity queues a drain job for carmen's team: {jobs:?}"
    );
}

#[tokio::test]
async fn an_unknown_agent_cannot_be_put_online() {
    let (_, base, _) = seeded_stack().await;
    assert_eq!(set_online(&base, "nobody", true).await.status(), 400);
}

#[tokio::test]
async fn each_seeded_agent_stores_its_cognito_user_s_sub() {
    let (env, _, _) = seeded_stack().await;
    let template = std::fs::read_to_string(prechat_tests::template_path()).unwrap();
    let (cognito, _) = prechat_tests::local::start_cognito_named(&template, &env.prefix)
        .await
        .unwrap();
    let table = prechat::store::DynamoTable::new(env.dynamo.clone(), env.table("StateTable"));
    let lines = prechat_tests::local::seed::link_subs(&table, &cognito.subs).await;
    assert!(lines.iter().all(|l| l.is_ok()), "{lines:?}");
    let store = prechat::store::routing::RoutingStore::new(table);
    for id in ["alice", "bruno", "carmen"] {
        let agent = store.get_agent(id).await.unwrap().unwrap();
        assert_eq!(agent.sub.as_ref(), cognito.subs.get(id), "{id}");
        assert!(agent.sub.is_some(), "{id} has a sub");
    }
}
