//! The foundation: the template provisions into moto, every queue and the table do a round
//! trip, secrets come from SSM, and the verify handler answers the sample event.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use prechat::queue::{MessageQueue, QueueMessage, SqsQueue};
use prechat_tests::TestEnv;

const QUEUES: [&str; 3] = ["InboundQueue", "OutboundQueue", "AssignmentQueue"];

#[tokio::test]
async fn every_queue_is_fifo_with_a_redrive_to_its_dlq() {
    let env = TestEnv::new().await;
    for q in QUEUES {
        let url = env.queue_url(q);
        assert!(url.ends_with(".fifo"), "{q} must be FIFO: {url}");
        let attrs = env
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = attrs.attributes().unwrap();
        let redrive = attrs
            .get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .unwrap_or_else(|| panic!("{q} has no redrive policy"));
        let dlq_arn = &env.resources.queue_arns[&q.replace("Queue", "DeadLetterQueue")];
        assert!(
            redrive.contains(dlq_arn.as_str()),
            "{q} redrives to {redrive}"
        );
    }
}

#[tokio::test]
async fn the_state_table_has_the_reminder_and_team_list_indexes() {
    let env = TestEnv::new().await;
    let table = env
        .dynamo
        .describe_table()
        .table_name(env.table("StateTable"))
        .send()
        .await
        .unwrap();
    let t = table.table().unwrap();
    let mut gsis: Vec<_> = t
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| Some((g.index_name()?, g.projection()?.projection_type()?.as_str())))
        .collect();
    gsis.sort();
    assert_eq!(
        gsis,
        vec![
            ("gsi1", "ALL"),
            ("gsi2", "KEYS_ONLY"),
            ("gsi3", "KEYS_ONLY")
        ]
    );
}

#[tokio::test]
async fn the_state_table_expires_items_by_expires_at() {
    let env = TestEnv::new().await;
    let ttl = env
        .dynamo
        .describe_time_to_live()
        .table_name(env.table("StateTable"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expires_at")
    );
}

#[tokio::test]
async fn every_fifo_queue_keeps_order_and_drops_duplicates() {
    let env = TestEnv::new().await;
    for q in QUEUES {
        let queue = SqsQueue::new(env.sqs.clone(), env.queue_url(q));
        // 12 messages (two batches) for one contact, then the first three again.
        let msgs: Vec<QueueMessage> = (0..12)
            .map(|i| {
                QueueMessage::fifo(format!("{{\"n\":{i}}}"), "pn1:US.1", &format!("wamid.{i}"))
            })
            .collect();
        queue.send_all(&msgs).await.unwrap();
        queue.send_all(&msgs[..3]).await.unwrap();
        let got = env.receive_all(q).await;
        let bodies: Vec<String> = got
            .iter()
            .filter_map(|m| m.body().map(str::to_owned))
            .collect();
        let want: Vec<String> = (0..12).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(bodies, want, "{q}: order kept, duplicates dropped");
    }
}

#[tokio::test]
async fn sending_to_a_missing_queue_is_a_retryable_error() {
    let env = TestEnv::new().await;
    let missing = format!("{}-gone.fifo", env.queue_url("InboundQueue"));
    let queue = SqsQueue::new(env.sqs.clone(), missing);
    let err = queue
        .send_all(&[QueueMessage::fifo("{}".into(), "g", "d")])
        .await
        .unwrap_err();
    assert!(err.is_retryable());
}

#[tokio::test]
async fn state_table_round_trip_with_conditional_write() {
    let env = TestEnv::new().await;
    let table = env.table("StateTable");
    let item: HashMap<String, AttributeValue> = [
        ("pk", AttributeValue::S("CONV#c1".into())),
        ("sk", AttributeValue::S("CONV".into())),
        ("expires_at", AttributeValue::N("1900000000".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let put = || {
        env.dynamo
            .put_item()
            .table_name(table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    put().await.unwrap();
    let err = put().await.unwrap_err();
    let store_err = prechat::store::StoreError::from_sdk(err);
    assert!(
        matches!(store_err, prechat::store::StoreError::ConditionFailed(_)),
        "{store_err}"
    );
    let got = env
        .dynamo
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("CONV#c1".into()))
        .key("sk", AttributeValue::S("CONV".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.item().unwrap().get("expires_at"),
        item.get("expires_at")
    );
}

#[tokio::test]
async fn secrets_are_read_from_ssm_in_one_call() {
    let env = TestEnv::new().await;
    let param = format!("/{}/verify-token", env.prefix);
    env.put_secret(&param, "from-ssm").await;
    let log_key_param = format!("/{}/log-key", env.prefix);
    env.put_secret(&log_key_param, "shared-log-key").await;
    let lookup = |k: &str| match k {
        "WHATSAPP_VERIFY_TOKEN_PARAM" => Some(param.clone()),
        "PRECHAT_LOG_KEY_PARAM" => Some(log_key_param.clone()),
        "WHATSAPP_APP_SECRET" => Some("plain-local".to_owned()),
        _ => None,
    };
    let (got, _) = prechat::entrypoints::init::load_secrets(
        &env.ssm,
        &["WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET"],
        &[],
        lookup,
    )
    .await
    .unwrap();
    assert_eq!(got[0].expose(), "from-ssm");
    assert_eq!(got[1].expose(), "plain-local");
    // That the log key came in the same request and keys the redaction hash is
    // `tests/tests/log_key.rs`'s: the key is process-wide, first set wins, so it has a test
    // binary of its own.
}

#[tokio::test]
async fn a_missing_ssm_parameter_is_named_in_the_error() {
    let env = TestEnv::new().await;
    let missing =
        |k: &str| (k == "WHATSAPP_VERIFY_TOKEN_PARAM").then(|| "/nope/missing".to_owned());
    let err = prechat::secrets::load_with(&env.ssm, &["WHATSAPP_VERIFY_TOKEN"], missing)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nope/missing"), "{err}");
}

#[test]
fn verify_event_file_runs_through_the_handler() {
    let path = prechat_tests::workspace_root().join("events/webhook-verify.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let req = lambda_http::request::from_str(&text).unwrap();
    let token = prechat::secrets::Secret::new("local-verify-token");
    let resp = prechat::entrypoints::verify::handle(&req, &token);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body(), &lambda_http::Body::Text("1158201444".into()));

    let wrong = prechat::secrets::Secret::new("another-token");
    assert_eq!(
        prechat::entrypoints::verify::handle(&req, &wrong).status(),
        403
    );
}
