//! webhook-ingest against moto: what lands on the inbound FIFO queue, in which group, with which
//! dedup id and in which order; duplicates; a missing queue. Requests are the signed sample
//! events of `events/webhook-ingest-*.json`, as API Gateway hands them to the function.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use lambda_http::http::StatusCode;
use prechat::entrypoints::ingest::Ingest;
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
        Some("US.24817305912873645029")
    );
    assert!(log.contains("delivery queued"), "{log}");
    for personal in ["US.24817305912873645029", "Pablo", "pablo.morales", "demo"] {
        assert!(!log.contains(personal), "{personal} in the log:\n{log}");
    }
}
