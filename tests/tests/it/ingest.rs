//! webhook-ingest against moto: what lands on the inbound FIFO queue, in which group, with which
//! dedup id and in which order; duplicates; a missing queue. Requests are the signed sample
//! events of `events/webhook-ingest-*.json`, as API Gateway hands them to the function.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use lambda_http::http::StatusCode;
use prechat::entrypoints::ingest::Ingest;
use prechat::queue::FifoContract;
use prechat::queue::{sqs_id, SqsQueue};
use prechat::secrets::Secret;
use prechat::whatsapp::event::InboundEvent;
use prechat_tests::TestEnv;

/// The local stack's default app secret, which the sample events are signed with.
const APP_SECRET: &str = "local-app-secret";

fn sample(name: &str) -> PathBuf {
    prechat_tests::workspace_root()
        .join("events")
        .join(format!("webhook-ingest-{name}.json"))
}

fn request(name: &str) -> lambda_http::Request {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    lambda_http::request::from_str(&text).unwrap()
}

fn ingest_on(env: &TestEnv, queue_url: &str) -> Ingest<SqsQueue> {
    Ingest::new(
        &Secret::new(APP_SECRET),
        SqsQueue::new(env.sqs.clone(), queue_url),
    )
}

fn attribute(m: &Message, name: MessageSystemAttributeName) -> String {
    m.attributes()
        .and_then(|a| a.get(&name))
        .cloned()
        .unwrap_or_else(|| panic!("message has no {name:?}"))
}

fn event(m: &Message) -> InboundEvent {
    serde_json::from_str(m.body().unwrap()).unwrap()
}

#[tokio::test]
async fn events_land_with_group_and_dedup_ids_in_per_contact_order() {
    let env = TestEnv::new().await;
    let ingest = ingest_on(&env, env.queue_url("InboundQueue"));
    let resp = ingest.handle(request("multi")).await;
    assert_eq!(resp.status(), StatusCode::OK);

    let got = env.receive_all("InboundQueue").await;
    assert_eq!(got.len(), 4);
    let mut per_group: HashMap<String, Vec<String>> = HashMap::new();
    for m in &got {
        let ev = event(m);
        let group = attribute(m, MessageSystemAttributeName::MessageGroupId);
        let dedup = attribute(m, MessageSystemAttributeName::MessageDeduplicationId);
        assert_eq!(group, sqs_id(&ev.group_id()));
        assert_eq!(dedup, sqs_id(&ev.dedup_id()));
        per_group.entry(group).or_default().push(dedup);
    }
    // Sheena on business number 1 wrote twice: both in one group, in the order sent.
    assert_eq!(
        per_group["106540352242922:US.13491208655302741918"],
        [
            "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDAxAA==",
            "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDAzAA=="
        ]
    );
    assert_eq!(
        per_group["106540352242922:IN.55012837465019283746"].len(),
        1
    );
    // The same person writing to another business number is another contact.
    assert_eq!(
        per_group["298765432109876:US.77120938475610293847"].len(),
        1
    );
}

#[tokio::test]
async fn a_duplicate_delivery_results_in_one_queued_event() {
    let env = TestEnv::new().await;
    let ingest = ingest_on(&env, env.queue_url("InboundQueue"));
    for _ in 0..2 {
        let resp = ingest.handle(request("button-reply")).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let got = env.receive_all("InboundQueue").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(matches!(event(&got[0]), InboundEvent::Message(_)));
}

#[tokio::test]
async fn a_missing_queue_is_5xx_so_meta_retries() {
    let env = TestEnv::new().await;
    let missing = env
        .queue_url("InboundQueue")
        .replace(&env.prefix, &format!("{}gone", env.prefix));
    let ingest = ingest_on(&env, &missing);
    let resp = ingest.handle(request("text")).await;
    assert!(resp.status().is_server_error(), "{:?}", resp.status());
    // Nothing went to the real queue either.
    assert!(env.receive_all("InboundQueue").await.is_empty());
}

#[tokio::test]
async fn a_forged_delivery_queues_nothing() {
    let env = TestEnv::new().await;
    let ingest = ingest_on(&env, env.queue_url("InboundQueue"));
    let text = std::fs::read_to_string(sample("text")).unwrap();
    let forged = text.replace("vendas", "compras");
    assert_ne!(forged, text);
    let resp = ingest
        .handle(lambda_http::request::from_str(&forged).unwrap())
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(env.receive_all("InboundQueue").await.is_empty());
}

#[tokio::test]
async fn every_sample_event_is_queued_through_the_handler() {
    let env = TestEnv::new().await;
    let ingest = ingest_on(&env, env.queue_url("InboundQueue"));
    let mut names: Vec<String> = std::fs::read_dir(prechat_tests::workspace_root().join("events"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            Some(
                n.strip_prefix("webhook-ingest-")?
                    .strip_suffix(".json")?
                    .to_owned(),
            )
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let resp = ingest.handle(request(name)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        let got = env.receive_all("InboundQueue").await;
        assert!(!got.is_empty(), "{name}: nothing queued");
        for m in &got {
            let ev = event(m);
            assert_eq!(
                attribute(m, MessageSystemAttributeName::MessageGroupId),
                sqs_id(&ev.group_id()),
                "{name}"
            );
        }
    }
}

/// The real function (thin main, `from_env`, plain app secret as in local runs) under
/// cargo-lambda's runtime emulator, queueing into moto; its logs hold no names, numbers or text.
#[tokio::test]
async fn the_function_queues_a_sample_event_under_cargo_lambda() {
    let env = TestEnv::new().await;
    let queue_url = env.queue_url("InboundQueue").to_owned();
    let emulator = prechat_tests::lambda::Emulator::start(
        "webhook-ingest",
        &[
            ("WHATSAPP_APP_SECRET", APP_SECRET),
            ("PRECHAT_INBOUND_QUEUE_URL", &queue_url),
            ("AWS_LAMBDA_LOG_LEVEL", "debug"),
        ],
    );
    let reply = tokio::task::spawn_blocking(move || {
        let reply = emulator.invoke_file("webhook-ingest", &sample("username-no-phone"));
        (reply, emulator.log_text())
    })
    .await
    .unwrap();
    let (reply, log) = reply;
    assert_eq!(reply["statusCode"], 200, "{reply}\n{log}");
    let got = env.receive_all("InboundQueue").await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        event(&got[0]).contact_key(),
        Some("US.24817305912873645029".into())
    );
    assert!(log.contains("delivery queued"), "{log}");
    for personal in ["US.24817305912873645029", "Pablo", "pablo.morales", "demo"] {
        assert!(!log.contains(personal), "{personal} in the log:\n{log}");
    }
}

/// A signed Meta delivery from one contact (`name` as profile name) with one text message per
/// entry of `texts` (ids `wamid.big.{i}`).
fn delivery(name: &str, texts: &[String]) -> String {
    let messages: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"from": "16505551234", "id": format!("wamid.big.{i}"), "timestamp": "1749416383", "type": "text", "text": {"body": t}}))
        .collect();
    serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": name}, "wa_id": "16505551234"}],
        "messages": messages
    }}]}]})
    .to_string()
}

async fn post(ingest: &Ingest<SqsQueue>, body: &str) -> StatusCode {
    let signature =
        prechat::whatsapp::signature::Verifier::new(&Secret::new(APP_SECRET)).sign(body.as_bytes());
    let method = lambda_http::http::Method::POST;
    ingest
        .ingest(&method, Some(signature.as_bytes()), body.as_bytes())
        .await
        .status()
}

#[tokio::test]
async fn a_delivery_over_the_sqs_batch_limit_is_split_and_fully_queued() {
    let env = TestEnv::new().await;
    let ingest = ingest_on(&env, env.queue_url("InboundQueue"));
    // Every event repeats the 150 KB profile name: 8 events are over 1 MiB in one batch.
    let body = delivery(&"N".repeat(150_000), &vec!["hi".to_owned(); 8]);
    assert!(body.len() < 1024 * 1024);
    assert_eq!(post(&ingest, &body).await, StatusCode::OK);
    let got = env.receive_all("InboundQueue").await;
    let ids: Vec<String> = got.iter().map(|m| event(m).dedup_id()).collect();
    let expected: Vec<String> = (0..8).map(|i| format!("wamid.big.{i}")).collect();
    assert_eq!(ids, expected, "all queued, in order");
}

#[tokio::test]
async fn an_event_too_large_for_sqs_is_left_out_and_the_others_queued() {
    let env = TestEnv::new().await;
    let ingest = ingest_on(&env, env.queue_url("InboundQueue"));
    // 3 bytes each in the delivery, 6 once escaped for SQS: the event is over 1 MiB.
    let huge = "\u{FFFE}".repeat(300_000);
    let body = delivery(
        "Sheena",
        &["before".to_owned(), huge, "after \u{FFFF}".to_owned()],
    );
    assert!(body.len() < 1024 * 1024);
    assert_eq!(
        post(&ingest, &body).await,
        StatusCode::OK,
        "a retry could not help"
    );
    let got = env.receive_all("InboundQueue").await;
    let ids: Vec<String> = got.iter().map(|m| event(m).dedup_id()).collect();
    assert_eq!(ids, ["wamid.big.0", "wamid.big.2"]);
    assert!(
        got[1].body().unwrap().contains("\\uffff"),
        "escaped for SQS"
    );
    let InboundEvent::Message(m) = event(&got[1]) else {
        panic!()
    };
    assert_eq!(
        m.content,
        prechat::whatsapp::event::MessageContent::Text {
            body: "after \u{FFFF}".into()
        }
    );
}

#[tokio::test]
async fn a_lone_surrogate_escape_keeps_the_delivery_and_the_valid_messages() {
    let env = TestEnv::new().await;
    let ingest = ingest_on(&env, env.queue_url("InboundQueue"));
    let texts = ["one".to_owned(), "LONE".to_owned(), "three".to_owned()];
    let body = delivery("Sheena", &texts).replace("LONE", "x \\ud800 y");
    assert_eq!(post(&ingest, &body).await, StatusCode::OK);
    let got = env.receive_all("InboundQueue").await;
    let ids: Vec<String> = got.iter().map(|m| event(m).dedup_id()).collect();
    assert_eq!(ids, ["wamid.big.0", "wamid.big.1", "wamid.big.2"]);
    let InboundEvent::Message(m) = event(&got[1]) else {
        panic!()
    };
    assert_eq!(
        m.content,
        prechat::whatsapp::event::MessageContent::Text {
            body: "x \u{FFFD} y".into()
        }
    );
}
