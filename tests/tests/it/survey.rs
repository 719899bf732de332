//! survey-engine against moto: the wiring of the pure engine to the table and queues. The
//! survey's decisions (questions, retries, fallbacks, keywords, what a returning contact is
//! asked) are proven in `shared/src/survey/engine_tests.rs`; here only what they become in
//! the store and on the queues: the full survey to the assignment job, duplicate and
//! concurrent delivery, lost effects, the reopen window, republishing mid-conversation,
//! statuses, BSUID changes, reminders, parking, the admin commands and the requests per
//! answer. Every test runs on its own [`TestApp`], except the parts of the full survey, which
//! share one (`full_survey_snapshot`).

use aws_sdk_dynamodb::types::AttributeValue;
use prechat::entrypoints::survey_engine::SurveyEngine;
use prechat::queue::FifoContract;
use prechat::routing::job::AssignRequest;
use prechat::routing::job::HandoffReason;
use prechat::store::conversation_store::{
    applied_pk, contact_pk, conversation_pk, Applied, ContactRecord, ConversationStore,
    APPLIED_TTL_SECONDS,
};
use prechat::store::delivery_log::{DeliveryLog, SentRecord, SentVia};
use prechat::store::survey_store::{survey_pk, version_sk, Published, SurveyStore};
use prechat::store::StoreError;
use prechat::survey::definition::DEFAULT_SURVEY_YAML;
use prechat::transcript::{Author, Body, DeliveryStatus as TDeliveryStatus, Entry};
use prechat::whatsapp::event::{
    ApiError, DeliveryStatus, InboundEvent, MessageContent, StatusUpdate, UserIdUpdate,
};
use prechat::whatsapp::outbound::{OutboundBody, OutboundMessage};
use prechat::whatsapp::ContactRef;
use prechat_tests::app::{
    ana, body_text, is_read, message_id, s, tap, text, total, Item, TestApp, PNID, T0,
};
use prechat_tests::sqs;

/// An engine on the same table and clock whose sends all fail (its queues do not exist).
fn broken(app: &TestApp) -> SurveyEngine {
    app.survey_engine_with(|c| {
        c.outbound_queue_url.push_str("-missing");
        c.assignment_queue_url.push_str("-missing");
    })
}

/// Hands events to `engine` as one SQS batch; the ids of the failed records.
async fn handle_with(app: &TestApp, engine: &SurveyEngine, events: &[InboundEvent]) -> Vec<String> {
    app.consume(engine, events)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// What the agent-assigner does when an agent finishes.
async fn agent_closes(app: &TestApp, conversation_id: &str) {
    app.env
        .dynamo
        .update_item()
        .table_name(app.table())
        .key("pk", AttributeValue::S(conversation_pk(conversation_id)))
        .key("sk", AttributeValue::S("CONV".into()))
        .update_expression("SET closed_at = :t, closed_by = :b")
        .expression_attribute_values(":t", AttributeValue::N(app.clock.unix().to_string()))
        .expression_attribute_values(":b", AttributeValue::S("agent:1".into()))
        .send()
        .await
        .unwrap();
}

/// Answers the default survey to the end for a US contact (phone known, so not asked).
async fn full_survey(r: &TestApp, who: &ContactRef) {
    r.say(who, text("Hi, I need help")).await;
    r.say(who, tap("en")).await;
    r.say(who, tap("yes")).await;
    r.say(who, text("Ana López")).await;
    r.say(who, text("ana@example.com")).await;
    r.say(who, text("C123456")).await;
    r.say(
        who,
        MessageContent::ListReply {
            id: "after_sales".into(),
            title: "An existing order".into(),
            description: None,
        },
    )
    .await;
    r.say(who, text("12345678")).await;
    r.say(who, text("Spain")).await;
    r.say(who, text("The parcel never arrived")).await;
}

/// What the default survey answered to the end leaves behind: built once, on its own runtime
/// (each test has its own), and shared by the tests of its parts.
struct FullSurvey {
    out: Vec<OutboundMessage>,
    jobs: Vec<AssignRequest>,
    conv: Item,
    doc: serde_json::Value,
}

async fn take_full_survey() -> FullSurvey {
    let r = TestApp::spawn().await;
    let who = ana();
    full_survey(&r, &who).await;
    FullSurvey {
        out: r.outbound().await,
        jobs: r.jobs().await,
        conv: r.conversation(&who).await,
        doc: r.contact_doc(&who).await,
    }
}

fn full_survey_snapshot() -> &'static FullSurvey {
    static SNAPSHOT: std::sync::OnceLock<FullSurvey> = std::sync::OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(take_full_survey())
        })
        .join()
        .unwrap()
    })
}

#[test]
fn a_full_survey_sends_eleven_messages_to_the_bsuid() {
    let out = &full_survey_snapshot().out;
    // greeting + 9 questions + completion
    assert_eq!(
        out.len(),
        11,
        "{:#?}",
        out.iter().map(body_text).collect::<Vec<_>>()
    );
    assert!(body_text(&out[0]).starts_with("Hi Ana! Welcome."));
    assert_eq!(
        body_text(&out[10]),
        "Thank you, Ana! An agent will be with you shortly."
    );
    assert!(out
        .iter()
        .all(|m| m.recipient.user_id.as_deref() == Some("US.13491208655302741918")));
}

#[test]
fn a_full_survey_ends_with_the_assignment_job() {
    let jobs = &full_survey_snapshot().jobs;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.reason, HandoffReason::Completed);
    assert_eq!(job.answers["order_id"], "12345678");
    assert_eq!(job.answers["inquiry"], "after_sales");
    assert_eq!(job.answers["country"], "ES");
    assert_eq!(job.fields["email"], "ana@example.com");
}

#[test]
fn a_full_survey_leaves_the_conversation_handed_off_with_its_answers() {
    let conv = &full_survey_snapshot().conv;
    assert_eq!(s(conv, "status"), "handed_off");
    assert_eq!(s(conv, "conversation_id"), "", "no stray attributes");
    assert_eq!(
        conv["answers"].as_m().unwrap()["description"]
            .as_s()
            .unwrap(),
        "The parcel never arrived"
    );
}

#[test]
fn a_full_survey_stores_the_consent_on_the_contact() {
    let doc = &full_survey_snapshot().doc;
    assert_eq!(doc["contact"]["consent"]["accepted"], true);
    assert_eq!(doc["contact"]["consent"]["policy_version"], "2026-01");
    assert!(doc["contact"]["consent"]["text"]
        .as_str()
        .unwrap()
        .contains("privacy policy"));
}

/// Delivers each of six answers twice in one batch and once more later, then all six again
/// with the request counter reset; the six events.
async fn every_message_delivered_again(r: &TestApp, who: &ContactRef) -> Vec<InboundEvent> {
    let answers = [
        text("hello"),
        tap("en"),
        tap("yes"),
        text("Ana"),
        text("not-an-email"),
        text("ana@example.com"),
    ];
    let mut sent = Vec::new();
    for a in answers {
        let e = r.message(who, a);
        // twice in the same batch, and once more later
        r.deliver(&[e.clone(), e.clone()]).await;
        sent.push(e);
    }
    r.requests.reset();
    r.deliver(&sent).await;
    sent
}

#[tokio::test]
async fn a_redelivery_costs_one_refused_transaction_two_reads_one_send() {
    let r = TestApp::spawn().await;
    let n = every_message_delivered_again(&r, &ana()).await.len();
    let counts = r.requests.snapshot();
    // Each redelivery: the read, the transaction that its `APPLIED#` record refuses, the read
    // of that record, and its effects sent again (SQS and the sender drop them by dedup id).
    assert_eq!(
        counts.get("DynamoDB_20120810.TransactWriteItems"),
        Some(&n),
        "{counts:?}"
    );
    assert_eq!(counts.get("DynamoDB_20120810.GetItem"), Some(&(2 * n)));
    assert_eq!(r.requests.total("AmazonSQS."), n, "{counts:?}");
}

#[tokio::test]
async fn duplicate_delivery_of_every_message_applies_once() {
    let r = TestApp::spawn().await;
    let who = ana();
    every_message_delivered_again(&r, &who).await;
    let out = r.outbound().await;
    let bodies: Vec<&str> = out.iter().map(body_text).collect();
    // greeting, language, consent, name, email, retry, customer id: nothing twice
    assert_eq!(out.len(), 7, "{bodies:#?}");
    let mut ids: Vec<&str> = out.iter().map(|m| m.dedup_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 7);
    let conv = r.conversation(&who).await;
    assert_eq!(s(&conv, "current_question"), "customer_id");
    assert_eq!(conv["invalid_answers"].as_n().unwrap(), "1");
}

#[tokio::test]
async fn two_messages_arriving_together_apply_in_order() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    let a = r.message(&who, tap("es"));
    let b = r.message(&who, tap("yes"));
    r.deliver(&[a, b]).await;
    let conv = r.conversation(&who).await;
    assert_eq!(s(&conv, "current_question"), "name");
    assert_eq!(s(&conv, "language"), "es");
}

/// Ana in Spanish at the name question: the contact as read then, and the name answer
/// delivered after that read (its message id).
async fn a_stale_read_then_the_name(
    r: &TestApp,
    who: &ContactRef,
) -> (ContactRecord, InboundEvent) {
    for m in [text("hi"), tap("es"), tap("yes")] {
        r.say(who, m).await;
    }
    let stale = r
        .conversations()
        .load(PNID, &who.key().unwrap(), false)
        .await
        .unwrap()
        .unwrap();
    let c = r.message(who, text("Ana"));
    r.deliver(std::slice::from_ref(&c)).await;
    (stale, c)
}

/// An invocation that read the contact before another one applied a message loses its write:
/// the transaction is conditioned on the revision it read. (Deterministic interleaving here;
/// `the_same_message_in_two_invocations_at_once_applies_once` races them for real.)
#[tokio::test]
async fn a_commit_on_a_stale_read_is_refused() {
    let r = TestApp::spawn().await;
    let (stale, c) = a_stale_read_then_the_name(&r, &ana()).await;
    let other = Applied {
        message_id: format!("{}-other", message_id(&c)),
        ..Default::default()
    };
    let err = r
        .conversations()
        .commit(&stale, &stale.clone(), &other, r.clock.unix())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed(_)), "{err:?}");
}

#[tokio::test]
async fn a_commit_of_an_applied_message_id_is_refused() {
    let r = TestApp::spawn().await;
    let who = ana();
    let (_, c) = a_stale_read_then_the_name(&r, &who).await;
    let store = r.conversations();
    let fresh = store
        .load(PNID, &who.key().unwrap(), false)
        .await
        .unwrap()
        .unwrap();
    let again = Applied {
        message_id: message_id(&c).to_owned(),
        ..Default::default()
    };
    let err = store
        .commit(&fresh, &fresh.clone(), &again, r.clock.unix())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ConditionFailed(_)),
        "an applied id never applies again: {err:?}"
    );
}

#[tokio::test]
async fn an_applied_message_delivered_again_changes_nothing() {
    let r = TestApp::spawn().await;
    let who = ana();
    let (_, c) = a_stale_read_then_the_name(&r, &who).await;
    r.deliver(&[c]).await;
    let conv = r.conversation(&who).await;
    assert_eq!(s(&conv, "current_question"), "email");
    let out = r.outbound().await;
    let names = out
        .iter()
        .filter(|m| body_text(m).contains("correo electrónico"))
        .count();
    assert_eq!(names, 1, "the email question went out once");
}

/// The wiring of a hand-off to the conversation item (the engine's decisions about hand-offs:
/// `engine_tests.rs`).
#[tokio::test]
async fn a_handoff_stores_its_reason_on_the_conversation() {
    let r = TestApp::spawn().await;
    r.say(&ana(), text("hi")).await;
    r.say(&ana(), text("human")).await;
    let conv = r.conversation(&ana()).await;
    assert_eq!(s(&conv, "handoff_reason"), "requested");
}

/// Ana asked for an agent and the agent closed the conversation; its id.
async fn closed_by_the_agent(r: &TestApp) -> String {
    r.say(&ana(), text("hi")).await;
    r.say(&ana(), text("agent")).await;
    let id = s(&r.conversation(&ana()).await, "pk")
        .trim_start_matches("CONV#")
        .to_owned();
    agent_closes(r, &id).await;
    r.jobs().await;
    r.outbound().await;
    id
}

#[tokio::test]
async fn a_message_within_the_window_reopens_the_closed_conversation() {
    let r = TestApp::spawn().await;
    let first = closed_by_the_agent(&r).await;
    r.clock.advance(3600);
    r.say(&ana(), text("one more thing")).await;
    let conv = r.conversation(&ana()).await;
    assert_eq!(s(&conv, "pk"), format!("CONV#{first}"), "same conversation");
    assert_eq!(s(&conv, "status"), "handed_off");
    assert!(!conv.contains_key("closed_at"), "reopened");
    assert_eq!(r.jobs().await.len(), 1, "back to the agents");
}

#[tokio::test]
async fn a_message_after_the_window_starts_a_new_conversation() {
    let r = TestApp::spawn().await;
    let first = closed_by_the_agent(&r).await;
    r.clock.advance(25 * 3600);
    r.say(&ana(), text("new question")).await;
    let conv = r.conversation(&ana()).await;
    assert_ne!(s(&conv, "pk"), format!("CONV#{first}"));
    assert_eq!(s(&conv, "status"), "surveying");
    let out = r.outbound().await;
    assert!(
        body_text(&out[0]).starts_with("Welcome back, Ana!"),
        "{}",
        body_text(&out[0])
    );
}

#[tokio::test]
async fn a_new_conversation_keeps_the_agents_close_of_the_old_one() {
    let r = TestApp::spawn().await;
    let first = closed_by_the_agent(&r).await;
    r.clock.advance(25 * 3600);
    r.say(&ana(), text("new question")).await;
    let old = r.item(conversation_pk(&first), "CONV").await.unwrap();
    assert_eq!(s(&old, "closed_by"), "agent:1", "the agent's close is kept");
}

/// The wiring of what a contact gave in an earlier conversation (its use: `engine_tests.rs`
/// `a_returning_contact_*`).
#[tokio::test]
async fn a_returning_contact_is_not_asked_again() {
    let r = TestApp::spawn().await;
    let who = ana();
    full_survey(&r, &who).await;
    let first = s(&r.conversation(&who).await, "pk").to_owned();
    agent_closes(&r, first.trim_start_matches("CONV#")).await;
    r.outbound().await;
    r.jobs().await;
    r.clock.advance(2 * 24 * 3600);
    r.say(&who, text("Hello again")).await;
    let out = r.outbound().await;
    assert!(body_text(&out[0]).starts_with("Welcome back, Ana!"));
    assert_eq!(
        body_text(&out[1]),
        "What can we help you with?",
        "language, consent, name, email, phone, customer id known"
    );
}

#[tokio::test]
async fn publishing_the_same_survey_twice_makes_one_version() {
    let r = TestApp::spawn().await;
    let store = r.surveys();
    let v1 = DEFAULT_SURVEY_YAML.replace("What is your full name?", "Your name, please?");
    assert_eq!(
        store.publish("default", &v1, T0).await.unwrap(),
        Published::New(1)
    );
    assert_eq!(
        store.publish("default", &v1, T0).await.unwrap(),
        Published::Unchanged(1)
    );
    let listed = store.list("default").await.unwrap();
    assert_eq!(
        listed.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1]
    );
}

/// Publishes version 1 of the default survey, which renames the name question.
async fn publish_a_renamed_name_question(r: &TestApp) {
    let v1 = DEFAULT_SURVEY_YAML.replace("What is your full name?", "Your name, please?");
    r.surveys().publish("default", &v1, T0).await.unwrap();
}

#[tokio::test]
async fn a_survey_republished_mid_conversation_finishes_on_its_version() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    r.say(&who, tap("en")).await;
    publish_a_renamed_name_question(&r).await;
    r.outbound().await;
    r.say(&who, tap("yes")).await;
    let out = r.outbound().await;
    assert_eq!(
        body_text(&out[0]),
        "What is your full name?",
        "the old version finishes"
    );
    assert_eq!(
        r.conversation(&who).await["survey_version"].as_n().unwrap(),
        "0"
    );
}

#[tokio::test]
async fn a_new_contact_gets_the_latest_version() {
    let r = TestApp::spawn().await;
    publish_a_renamed_name_question(&r).await;
    let bob = ContactRef {
        wa_id: Some("447700900123".into()),
        profile_name: Some("Bob".into()),
        ..Default::default()
    };
    for m in [text("hi"), tap("en"), tap("yes")] {
        r.say(&bob, m).await;
    }
    let out = r.outbound().await;
    assert_eq!(body_text(out.last().unwrap()), "Your name, please?");
    assert_eq!(
        r.conversation(&bob).await["survey_version"].as_n().unwrap(),
        "1"
    );
}

#[tokio::test]
async fn requests_per_answer_are_counted() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    r.say(&who, tap("en")).await;
    // The survey cache is disabled in this rig (TTL 0), so a survey read shows up when a new
    // conversation starts; answers within a conversation use the cached immutable version.
    let mut per_answer = Vec::new();
    for m in [
        tap("yes"),
        text("Ana"),
        text("bad email"),
        text("ana@example.com"),
    ] {
        r.requests.reset();
        r.say(&who, m).await;
        per_answer.push(r.requests.snapshot());
    }
    for counts in &per_answer {
        let dynamo = total(counts, "DynamoDB_20120810.");
        let sqs = total(counts, "AmazonSQS.");
        assert_eq!(dynamo, 2, "GetItem + TransactWriteItems: {counts:?}");
        assert_eq!(
            counts.get("DynamoDB_20120810.GetItem"),
            Some(&1),
            "{counts:?}"
        );
        assert_eq!(
            counts.get("DynamoDB_20120810.TransactWriteItems"),
            Some(&1),
            "{counts:?}"
        );
        assert_eq!(sqs, 1, "one SendMessageBatch: {counts:?}");
    }
    println!("requests per answer: {per_answer:?}");
    // Time per answer at moto (handler entry to return), and the contact item's size.
    let mut times = Vec::new();
    for m in [text("C123456"), tap("sales"), text("Spain")] {
        let e = r.message(&who, m);
        let t = std::time::Instant::now();
        r.deliver(&[e]).await;
        times.push(t.elapsed().as_millis());
    }
    let item = r
        .item(contact_pk(PNID, &who.key().unwrap()), "PROFILE")
        .await
        .unwrap();
    let size: usize = item
        .iter()
        .map(|(k, v)| {
            k.len()
                + v.as_s().map(String::len).unwrap_or(16)
                + v.as_l().map(|l| l.len() * 60).unwrap_or(0)
        })
        .sum();
    println!("ms per answer at moto: {times:?}; contact item ~{size} bytes");
}

/// A question the engine sent to Ana, with the record the reply-sender writes after Meta
/// accepted it: (wamid, conversation id, dedup id).
async fn a_sent_question(r: &TestApp) -> (String, String, String) {
    r.say(&ana(), text("hi")).await;
    let out = r.outbound().await;
    let conv_id = out[1].conversation_id.clone().unwrap();
    let wamid = format!("wamid.out.{}", r.env.prefix);
    r.env
        .dynamo
        .put_item()
        .table_name(r.env.table("StateTable"))
        .item("pk", AttributeValue::S(format!("OUT#{wamid}")))
        .item("sk", AttributeValue::S("OUT".into()))
        .item("conversation_id", AttributeValue::S(conv_id.clone()))
        .item("dedup_id", AttributeValue::S(out[1].dedup_id.clone()))
        .send()
        .await
        .unwrap();
    (wamid, conv_id, out[1].dedup_id.clone())
}

/// Meta's status `st` at `at` of the message `wamid` sent to Ana (error 131026 if failed).
fn status(wamid: &str, st: DeliveryStatus, at: i64) -> InboundEvent {
    InboundEvent::Status(StatusUpdate {
        phone_number_id: PNID.into(),
        message_id: wamid.into(),
        status: st,
        timestamp: at,
        recipient: ContactRef {
            user_id: ana().user_id.clone(),
            ..Default::default()
        },
        errors: if st == DeliveryStatus::Failed {
            vec![ApiError {
                code: 131026,
                title: "Message undeliverable".into(),
                details: None,
            }]
        } else {
            vec![]
        },
        conversation: None,
        pricing: None,
    })
}

#[tokio::test]
async fn an_older_status_does_not_replace_a_newer_one() {
    let r = TestApp::spawn().await;
    let (wamid, _, _) = a_sent_question(&r).await;
    r.deliver(&[
        status(&wamid, DeliveryStatus::Delivered, T0 + 2),
        status(&wamid, DeliveryStatus::Sent, T0 + 1),
    ])
    .await;
    let item = r.item(format!("OUT#{wamid}"), "OUT").await.unwrap();
    assert_eq!(s(&item, "delivery_status"), "delivered");
}

/// The failed status three times (twice in one batch): one failure record.
async fn failed_three_times(r: &TestApp, wamid: &str) {
    let failed = status(wamid, DeliveryStatus::Failed, T0 + 3);
    r.deliver(&[failed.clone(), failed.clone()]).await;
    r.deliver(&[failed]).await;
}

#[tokio::test]
async fn a_failed_status_counts_once_on_the_conversation() {
    let r = TestApp::spawn().await;
    let (wamid, conv_id, _) = a_sent_question(&r).await;
    failed_three_times(&r, &wamid).await;
    let conv = r.item(conversation_pk(&conv_id), "CONV").await.unwrap();
    assert_eq!(conv["failed_messages"].as_n().unwrap(), "1");
}

#[tokio::test]
async fn a_failed_status_records_the_error_under_the_dedup_id() {
    let r = TestApp::spawn().await;
    let (wamid, conv_id, dedup_id) = a_sent_question(&r).await;
    failed_three_times(&r, &wamid).await;
    let failure = r
        .item(conversation_pk(&conv_id), &format!("FAILED#{wamid}"))
        .await
        .unwrap();
    assert_eq!(s(&failure, "error"), "131026 Message undeliverable");
    assert_eq!(s(&failure, "dedup_id"), dedup_id);
}

/// A status of a message the sender has not recorded (yet) is kept, not retried.
#[tokio::test]
async fn a_status_of_an_unrecorded_message_is_not_retried() {
    let r = TestApp::spawn().await;
    let other = status("wamid.not-ours", DeliveryStatus::Read, T0);
    assert!(r.try_deliver(&[other]).await.is_empty());
}

/// Meta may report `delivered` before the reply-sender has written `OUT#{wamid}` (its write
/// follows Meta's 200): the early status, recorded; its wamid.
async fn an_early_status(r: &TestApp) -> String {
    let wamid = format!("wamid.early.{}", r.env.prefix);
    r.deliver(&[status(&wamid, DeliveryStatus::Delivered, T0 + 5)])
        .await;
    wamid
}

#[tokio::test]
async fn the_senders_record_keeps_an_early_status() {
    let r = TestApp::spawn().await;
    let wamid = an_early_status(&r).await;
    let recorded = r
        .delivery_log()
        .record_sent(&SentRecord {
            dedup_id: format!("conv-early:{}", r.env.prefix),
            wamid: Some(wamid.clone()),
            conversation_id: Some("conv-early".into()),
            contact_key: ana().user_id.clone().map(Into::into),
            phone_number_id: PNID.into(),
            sent_at: T0 + 4,
            via: SentVia::Message,
            transcript: None,
        })
        .await
        .unwrap();
    assert!(recorded);
    let item = r.item(format!("OUT#{wamid}"), "OUT").await.unwrap();
    assert_eq!(s(&item, "delivery_status"), "delivered");
    assert_eq!(s(&item, "conversation_id"), "conv-early");
    assert_eq!(s(&item, "dedup_id"), format!("conv-early:{}", r.env.prefix));
}

#[tokio::test]
async fn a_status_that_arrives_before_the_senders_record_is_kept() {
    let r = TestApp::spawn().await;
    let wamid = an_early_status(&r).await;
    let early = r
        .item(format!("OUT#{wamid}"), "OUT")
        .await
        .expect("the early status is recorded");
    assert_eq!(s(&early, "delivery_status"), "delivered");
    assert!(
        early.contains_key("expires_at"),
        "an early record still expires"
    );
}

#[tokio::test]
async fn a_bsuid_change_moves_the_contact() {
    let r = TestApp::spawn().await;
    let who = ana();
    for m in [text("hi"), tap("en"), tap("yes"), text("Ana")] {
        r.say(&who, m).await;
    }
    let update = InboundEvent::UserIdUpdate(UserIdUpdate {
        phone_number_id: PNID.into(),
        old_user_id: who.user_id.clone().unwrap(),
        new_user_id: "US.77".into(),
        wa_id: who.wa_id.clone(),
        timestamp: T0 + 100,
    });
    r.deliver(std::slice::from_ref(&update)).await;
    r.deliver(&[update]).await; // idempotent
    assert!(r
        .item(
            contact_pk(PNID, &who.user_id.as_deref().unwrap().into()),
            "PROFILE"
        )
        .await
        .is_none());
    let moved = ContactRef {
        user_id: Some("US.77".into()),
        ..who.clone()
    };
    let doc = r.contact_doc(&moved).await;
    assert_eq!(doc["contact"]["fields"]["name"], "Ana");
    assert_eq!(s(&r.conversation(&moved).await, "contact_key"), "US.77");
    // the survey continues under the new id
    r.outbound().await;
    r.say(&moved, text("ana@example.com")).await;
    assert_eq!(
        s(&r.conversation(&moved).await, "current_question"),
        "customer_id"
    );
}

#[tokio::test]
async fn the_sample_event_greets_the_contact() {
    let r = TestApp::spawn().await;
    let response = r.engine.handle(sqs::sample("survey-engine.json")).await;
    assert!(response.batch_item_failures.is_empty());
    let out = r.outbound().await;
    // greeting + language question, then (answered "en") the consent question
    assert_eq!(
        out.len(),
        3,
        "{:?}",
        out.iter().map(body_text).collect::<Vec<_>>()
    );
    assert!(body_text(&out[0]).starts_with("Hi Sheena!"));
}

#[tokio::test]
async fn a_bad_body_is_parked_in_the_inbound_dlq_at_once() {
    let r = TestApp::spawn().await;
    let bad = sqs::event([sqs::record("bad", "{not json", Some("pn:someone"), None)]);
    assert!(
        r.engine.handle(bad).await.batch_item_failures.is_empty(),
        "parked, so done: not received again"
    );
    let parked = r.env.parked("InboundDeadLetterQueue").await;
    assert_eq!(
        parked,
        [(
            "{not json".to_owned(),
            "pn:someone".to_owned(),
            "unreadable_body".to_owned(),
            "survey-engine".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_conversation_whose_survey_version_is_gone_is_parked_in_the_inbound_dlq() {
    let r = TestApp::spawn().await;
    let store = r.surveys();
    assert_eq!(
        store
            .publish("default", DEFAULT_SURVEY_YAML, T0)
            .await
            .unwrap(),
        Published::New(1)
    );
    let who = ana();
    r.say(&who, text("hi")).await;
    r.env
        .dynamo
        .delete_item()
        .table_name(r.env.table("StateTable"))
        .key("pk", AttributeValue::S(survey_pk("default")))
        .key("sk", AttributeValue::S(version_sk(1)))
        .send()
        .await
        .unwrap();
    // A fresh instance (versions are cached for the life of a process) meets the gap.
    let fresh = r.survey_engine_with(|_| {});
    let e = r.message(&who, tap("en"));
    assert!(handle_with(&r, &fresh, std::slice::from_ref(&e))
        .await
        .is_empty());
    let parked = r.env.parked("InboundDeadLetterQueue").await;
    assert_eq!(parked.len(), 1);
    let (body, group, error, _) = &parked[0];
    assert_eq!(
        body,
        &serde_json::to_string(&e).unwrap(),
        "the original body"
    );
    assert_eq!(
        (group, error.as_str()),
        (&e.group_id(), "survey_unavailable")
    );
}

/// `prechat-admin survey ...` with `args`, at `at`, against the app's survey store.
async fn survey_admin(r: &TestApp, args: &[&str], at: i64) -> Result<String, String> {
    let args = args.iter().map(|s| s.to_string()).collect();
    prechat::admin::survey::run_with(&r.surveys(), args, at)
        .await
        .map_err(|e| e.to_string())
}

/// Writes `yaml` to a survey file of this app; its path.
fn survey_file(r: &TestApp, yaml: &str) -> String {
    let dir = std::env::temp_dir().join(format!("prechat-survey-{}", r.env.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("survey.yaml");
    std::fs::write(&file, yaml).unwrap();
    file.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn admin_refuses_to_publish_an_invalid_survey() {
    let r = TestApp::spawn().await;
    let path = survey_file(
        &r,
        &DEFAULT_SURVEY_YAML.replace("in: [after_sales]", "in: [refunds]"),
    );
    let err = survey_admin(&r, &["publish", &path], T0).await.unwrap_err();
    assert!(
        err.contains("\"refunds\" is not a possible answer of \"inquiry\""),
        "{err}"
    );
    assert!(r.surveys().list("default").await.unwrap().is_empty());
}

#[tokio::test]
async fn admin_publishes_a_new_survey_as_version_1() {
    let r = TestApp::spawn().await;
    let path = survey_file(&r, DEFAULT_SURVEY_YAML);
    let out = survey_admin(&r, &["publish", &path], T0).await.unwrap();
    assert!(out.contains("published \"default\" version 1"), "{out}");
}

#[tokio::test]
async fn admin_publishes_nothing_for_an_unchanged_survey() {
    let r = TestApp::spawn().await;
    let path = survey_file(&r, DEFAULT_SURVEY_YAML);
    survey_admin(&r, &["publish", &path], T0).await.unwrap();
    let out = survey_admin(&r, &["publish", &path], T0).await.unwrap();
    assert!(out.contains("nothing published"), "{out}");
}

/// Version 1 (the default survey) at T0, version 2 ("Pick one") a minute later.
async fn two_versions_published(r: &TestApp) {
    let path = survey_file(r, DEFAULT_SURVEY_YAML);
    survey_admin(r, &["publish", &path], T0).await.unwrap();
    let path = survey_file(r, &DEFAULT_SURVEY_YAML.replace("Choose", "Pick one"));
    survey_admin(r, &["publish", &path], T0 + 60).await.unwrap();
}

/// Through the real command line entry, the table given as an option.
#[tokio::test]
async fn admin_lists_the_versions_with_the_latest_marked() {
    let r = TestApp::spawn().await;
    two_versions_published(&r).await;
    let listed = r.admin(&["survey", "list", "default"]).await.unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("default  v1  2026-"), "{listed}");
    assert!(lines[1].ends_with("(latest)"), "{listed}");
}

#[tokio::test]
async fn admin_shows_the_latest_version() {
    let r = TestApp::spawn().await;
    two_versions_published(&r).await;
    let table = r.table().to_owned();
    let shown = prechat::admin::run(
        ["survey", "show", "default", "--table", &table]
            .map(String::from)
            .to_vec(),
    )
    .await
    .unwrap();
    assert!(
        shown.contains("Pick one") && !shown.contains("\"Choose\""),
        "latest shown"
    );
}

#[tokio::test]
async fn admin_shows_a_version_by_number() {
    let r = TestApp::spawn().await;
    two_versions_published(&r).await;
    let table = r.table().to_owned();
    let v1 = prechat::admin::run(
        ["survey", "--table", &table, "show", "default", "1"]
            .map(String::from)
            .to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(v1, DEFAULT_SURVEY_YAML);
}

#[tokio::test]
async fn admin_reports_a_missing_version() {
    let r = TestApp::spawn().await;
    two_versions_published(&r).await;
    let none = r.admin(&["survey", "show", "default", "9"]).await;
    assert!(none.unwrap_err().to_string().contains("no version 9"));
}

/// Ana greeted and asked her language `mins` minutes ago (the outbound queue drained).
async fn silent_for(r: &TestApp, mins: i64) {
    r.say(&ana(), text("hi")).await;
    r.outbound().await;
    r.clock.advance(mins * 60);
}

#[tokio::test]
async fn no_reminder_is_due_before_the_delay() {
    let r = TestApp::spawn().await;
    silent_for(&r, 10).await;
    let report = r.engine.sweep().await.unwrap();
    assert_eq!(report.due, 0, "{report:?}");
}

#[tokio::test]
async fn a_silent_contact_gets_a_reminder_of_the_question() {
    let r = TestApp::spawn().await;
    silent_for(&r, 31).await;
    let report = r.engine.sweep().await.unwrap();
    assert_eq!((report.due, report.reminded), (1, 1), "{report:?}");
    let out = r.outbound().await;
    assert_eq!(out.len(), 1);
    assert_eq!(
        body_text(&out[0]),
        "Are you still there? Just reply to the last question to continue."
    );
    assert!(out[0]
        .dedup_id
        .starts_with(out[0].conversation_id.as_deref().unwrap()));
}

#[tokio::test]
async fn silent_contacts_get_one_reminder_per_question() {
    let r = TestApp::spawn().await;
    silent_for(&r, 31).await;
    r.engine.sweep().await.unwrap();
    r.clock.advance(5 * 60);
    assert_eq!(r.engine.sweep().await.unwrap().due, 0);
}

/// Reminded of the language question, Ana answers it and is silent for 31 minutes again.
async fn reminded_then_answered(r: &TestApp) {
    silent_for(r, 31).await;
    r.engine.sweep().await.unwrap();
    r.outbound().await;
    r.say(&ana(), tap("en")).await;
    r.outbound().await;
    r.clock.advance(31 * 60);
}

#[tokio::test]
async fn an_answer_rearms_the_reminder_for_the_next_question() {
    let r = TestApp::spawn().await;
    reminded_then_answered(&r).await;
    assert_eq!(
        s(&r.conversation(&ana()).await, "current_question"),
        "consent"
    );
    assert_eq!(r.engine.sweep().await.unwrap().reminded, 1);
    assert_eq!(r.outbound().await.len(), 1);
}

#[tokio::test]
async fn a_reminder_costs_no_attempt() {
    let r = TestApp::spawn().await;
    reminded_then_answered(&r).await;
    r.engine.sweep().await.unwrap();
    let conv = r.conversation(&ana()).await;
    assert_eq!(s(&conv, "current_question"), "consent", "the survey stays");
    assert_eq!(conv["attempts"].as_n().unwrap(), "0");
}

/// Ana answered up to the name question and was silent past the survey's expiry (24 h).
async fn silent_past_the_expiry(r: &TestApp) {
    for m in [text("hi"), tap("en"), tap("yes")] {
        r.say(&ana(), m).await;
    }
    r.outbound().await;
    r.clock.advance(25 * 3600);
}

#[tokio::test]
async fn silence_past_the_expiry_gets_no_reminder() {
    let r = TestApp::spawn().await;
    silent_past_the_expiry(&r).await;
    let report = r.engine.sweep().await.unwrap();
    assert_eq!(
        (report.due, report.reminded, report.skipped),
        (1, 0, 1),
        "{report:?}"
    );
    assert!(r.outbound().await.is_empty());
}

#[tokio::test]
async fn an_expired_survey_leaves_the_reminder_index() {
    let r = TestApp::spawn().await;
    silent_past_the_expiry(&r).await;
    r.engine.sweep().await.unwrap();
    assert_eq!(r.engine.sweep().await.unwrap().due, 0);
    assert!(!r.conversation(&ana()).await.contains_key("gsi1pk"));
}

/// The survey's `on_expiry: restart`.
#[tokio::test]
async fn the_first_message_after_the_expiry_starts_over() {
    let r = TestApp::spawn().await;
    silent_past_the_expiry(&r).await;
    r.engine.sweep().await.unwrap();
    r.say(&ana(), text("hello?")).await;
    let out = r.outbound().await;
    assert!(body_text(&out[0]).starts_with("Welcome back, Ana!"));
}

#[tokio::test]
async fn a_contact_known_by_phone_keeps_its_data_when_bsuids_arrive() {
    let r = TestApp::spawn().await;
    let by_phone = ContactRef {
        wa_id: Some("34612345678".into()),
        profile_name: Some("Lucía".into()),
        ..Default::default()
    };
    for m in [text("hola"), tap("es"), tap("yes"), text("Lucía Pérez")] {
        r.say(&by_phone, m).await;
    }
    let with_bsuid = ContactRef {
        user_id: Some("ES.5550001".into()),
        ..by_phone.clone()
    };
    r.say(&with_bsuid, text("lucia@example.com")).await;
    assert!(r
        .item(contact_pk(PNID, &"34612345678".into()), "PROFILE")
        .await
        .is_none());
    let doc = r.contact_doc(&with_bsuid).await;
    assert_eq!(doc["contact"]["fields"]["name"], "Lucía Pérez");
    assert_eq!(doc["contact"]["fields"]["email"], "lucia@example.com");
    assert_eq!(
        s(&r.conversation(&with_bsuid).await, "current_question"),
        "customer_id"
    );
}

/// The real binary under cargo-lambda's runtime emulator, configured only through its
/// environment (as in the template), handling `events/survey-engine.json`.
#[tokio::test(flavor = "multi_thread")]
async fn survey_engine_binary_handles_the_sample_event_under_cargo_lambda() {
    let app = TestApp::spawn().await;
    let event = prechat_tests::workspace_root().join("events/survey-engine.json");
    let (reply, log) = app
        .run_binary("survey-engine", "SurveyEngineFunction", &event, &[])
        .await;
    assert_eq!(
        reply,
        serde_json::json!({ "batchItemFailures": [] }),
        "{log}"
    );
    let out = app.outbound().await;
    assert_eq!(
        out.len(),
        3,
        "greeting, language question, consent question"
    );
    assert!(body_text(&out[0]).starts_with("Hi Sheena!"));
    assert!(
        !log.contains("Sheena") && !log.contains("16505551234"),
        "no names or numbers in logs:\n{log}"
    );
}

#[tokio::test]
async fn effects_lost_after_the_commit_are_sent_on_redelivery() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    r.outbound().await;
    // An engine whose outbound send fails after the state was committed (queue unreachable).
    let broken = r.survey_engine_with(|c| c.outbound_queue_url.push_str("-missing"));
    let e = r.message(&who, tap("en"));
    let failed = handle_with(&r, &broken, std::slice::from_ref(&e)).await;
    assert_eq!(
        failed.len(),
        1,
        "the send failure is reported for redelivery"
    );
    assert_eq!(
        s(&r.conversation(&who).await, "current_question"),
        "consent",
        "state was committed"
    );
    assert!(r.outbound().await.is_empty());
    // SQS redelivers it: applied already, so nothing changes, but its replies go out now.
    r.deliver(&[e]).await;
    let out = r.outbound().await;
    assert_eq!(out.len(), 1);
    assert!(body_text(&out[0]).contains("privacy policy"));
    assert_eq!(
        s(&r.conversation(&who).await, "current_question"),
        "consent"
    );
}

/// The timer binary under cargo-lambda's emulator (real clock), invoked with the scheduled
/// event, reminds a contact who went silent 40 minutes ago.
#[tokio::test(flavor = "multi_thread")]
async fn survey_timer_binary_reminds_a_silent_contact_under_cargo_lambda() {
    let r = TestApp::spawn().await;
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    r.clock.set_unix(real_now - 40 * 60);
    r.say(&ana(), text("hi")).await;
    r.outbound().await;
    let event = prechat_tests::workspace_root().join("events/survey-timer.json");
    let (reply, log) = r
        .run_binary("survey-timer", "SurveyTimerFunction", &event, &[])
        .await;
    assert_eq!(
        reply,
        serde_json::json!({ "due": 1, "reminded": 1, "skipped": 0, "failed": 0 }),
        "{log}"
    );
    let out = r.outbound().await;
    assert_eq!(out.len(), 1);
    assert!(body_text(&out[0]).starts_with("Are you still there?"));
}

/// Two invocations handle the same message at the same time (a redelivery overlapping the
/// first attempt): exactly one applies it. Needs moto with serialised DynamoDB requests
/// (`xtask/moto_server.py`, as `cargo xtask test` starts it), as DynamoDB itself behaves.
#[tokio::test]
async fn the_same_message_in_two_invocations_at_once_applies_once() {
    let r = TestApp::spawn().await;
    let who = ana();
    for m in [text("hi"), tap("en"), tap("yes")] {
        r.say(&who, m).await;
    }
    r.outbound().await;
    for answer in ["Ana López", "ana@example.com", "C123456"] {
        let e = r.message(&who, text(answer));
        let (a, b) = ([e.clone()], [e]);
        let (x, y) = tokio::join!(r.try_deliver(&a), r.try_deliver(&b));
        assert!(x.is_empty() && y.is_empty(), "{x:?} {y:?}");
    }
    let conv = r.conversation(&who).await;
    assert_eq!(s(&conv, "current_question"), "inquiry");
    assert_eq!(conv["invalid_answers"].as_n().unwrap(), "0");
    let out = r.outbound().await;
    let bodies: Vec<&str> = out.iter().map(body_text).collect();
    assert_eq!(
        bodies,
        vec![
            "What is your email address?",
            "If you are already a customer, what is your customer ID (C followed by 6 digits)? Write SKIP if you do not have one.",
            "What can we help you with?",
        ]
    );
}

#[tokio::test]
async fn admins_see_what_a_contact_answered() {
    let r = TestApp::spawn().await;
    let who = ana();
    full_survey(&r, &who).await;
    let shown = r
        .admin(&["contact", "show", PNID, who.key().unwrap().as_str()])
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let saved = doc["contact"].to_string();
    let contact_doc = r.contact_doc(&who).await;
    assert_eq!(
        doc["contact"], contact_doc["contact"],
        "the stored contact, as stored"
    );
    assert!(saved.contains("email"), "{saved}");
    assert!(doc["conversation"]["answers"].is_object(), "{shown}");
    assert!(
        !doc["conversation"]["answers"]
            .as_object()
            .unwrap()
            .is_empty(),
        "{shown}"
    );
}

#[tokio::test]
async fn admin_reports_an_unknown_contact() {
    let r = TestApp::spawn().await;
    let missing = r
        .admin(&["contact", "show", PNID, "US.nobody"])
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no contact"), "{missing}");
}

#[tokio::test]
async fn admin_answers_an_incomplete_contact_command_with_the_usage() {
    let r = TestApp::spawn().await;
    let bad = r.admin(&["contact", "list"]).await.unwrap_err();
    assert!(bad.to_string().contains("usage"), "{bad}");
}

/// A message whose sends keep failing goes to the DLQ; the contact's later messages proceed;
/// when the DLQ is redriven, exactly that message's reply and job go out.
#[tokio::test]
async fn a_message_whose_sends_failed_gets_its_reply_and_job_when_redriven_after_later_ones() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    r.outbound().await;
    let first = r.message(&who, text("human"));
    let broken = broken(&r);
    for _ in 0..3 {
        let failed = handle_with(&r, &broken, std::slice::from_ref(&first)).await;
        assert_eq!(failed.len(), 1, "committed, but the sends fail");
    }
    r.say(&who, text("hello?")).await;
    r.say(&who, text("anyone there?")).await;
    assert!(r.outbound().await.is_empty(), "handed off: silent");
    assert!(r.jobs().await.is_empty(), "no ticket yet");
    r.deliver(&[first]).await;
    let out = r.outbound().await;
    assert_eq!(
        out.len(),
        1,
        "{:?}",
        out.iter().map(body_text).collect::<Vec<_>>()
    );
    assert!(
        body_text(&out[0]).contains("agent"),
        "{}",
        body_text(&out[0])
    );
    let jobs = r.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].reason, HandoffReason::Requested);
    assert_eq!(s(&r.conversation(&who).await, "status"), "handed_off");
}

/// Identity comes from the message id, however many messages came in between.
#[tokio::test]
async fn a_message_applied_60_messages_ago_is_recognised() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    r.say(&who, text("human")).await;
    let restart = r.message(&who, text("restart"));
    r.deliver(std::slice::from_ref(&restart)).await;
    r.say(&who, text("human")).await;
    for _ in 0..60 {
        r.say(&who, text("hello")).await;
    }
    let before = r.conversation(&who).await;
    assert_eq!(s(&before, "status"), "handed_off");
    r.deliver(&[restart]).await;
    let after = r.conversation(&who).await;
    assert_eq!(
        s(&after, "status"),
        "handed_off",
        "not restarted a second time"
    );
    assert_eq!(after["step"], before["step"]);
}

/// Meta retries for 7 days: a redelivery 8 days later is still recognised.
#[tokio::test]
async fn a_redelivery_eight_days_later_is_recognised() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    let human = r.message(&who, text("human"));
    r.deliver(std::slice::from_ref(&human)).await;
    let restart = r.message(&who, text("restart"));
    r.deliver(&[restart]).await;
    r.clock.advance(8 * 24 * 3600);
    r.deliver(&[human]).await;
    let conv = r.conversation(&who).await;
    assert_eq!(
        s(&conv, "status"),
        "surveying",
        "the old 'human' is not applied again"
    );
}

/// DynamoDB deletes expired items only eventually (moto not at all): an `APPLIED#` record
/// past its expiry is no proof, and the message id can be applied again.
#[tokio::test]
async fn an_applied_record_past_its_expiry_is_no_proof() {
    let r = TestApp::spawn().await;
    let who = ana();
    let hi = r.message(&who, text("hi"));
    r.deliver(std::slice::from_ref(&hi)).await;
    let pk = applied_pk(PNID, message_id(&hi));
    let first = r
        .item(pk.clone(), "APPLIED")
        .await
        .expect("APPLIED# record");
    let applied_at: i64 = first["applied_at"].as_n().unwrap().parse().unwrap();
    let expires: i64 = first["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(expires - applied_at, APPLIED_TTL_SECONDS);
    r.clock.set_unix(expires);
    let store = r.conversations();
    let now = r.clock.unix();
    assert!(store
        .applied(PNID, message_id(&hi), now - 1)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .applied(PNID, message_id(&hi), now)
        .await
        .unwrap()
        .is_none());
    r.deliver(&[hi]).await;
    let again = r.item(pk, "APPLIED").await.unwrap();
    assert_eq!(
        again["applied_at"].as_n().unwrap(),
        &now.to_string(),
        "applied anew"
    );
}

/// A genuine message that arrives late is applied: order comes from the FIFO group.
#[tokio::test]
async fn a_message_that_arrives_hours_late_is_applied_not_dropped() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    r.say(&who, tap("en")).await;
    let mut late = r.message(&who, tap("yes"));
    if let InboundEvent::Message(m) = &mut late {
        m.timestamp -= 2 * 3600;
    }
    r.deliver(&[late]).await;
    assert_eq!(s(&r.conversation(&who).await, "current_question"), "name");
}

/// One message dated in the future must not make the contact's later messages look stale.
#[tokio::test]
async fn a_message_dated_in_the_future_does_not_block_the_next() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    let mut ahead = r.message(&who, tap("en"));
    if let InboundEvent::Message(m) = &mut ahead {
        m.timestamp += 24 * 3600;
    }
    r.deliver(&[ahead]).await;
    r.say(&who, tap("yes")).await;
    let conv = r.conversation(&who).await;
    assert_eq!(s(&conv, "current_question"), "name");
    let now = r.clock.unix().to_string();
    assert_eq!(conv["last_inbound_at"].as_n().unwrap(), &now);
}

/// While the survey runs every answered message is marked read (typing indicator on) before
/// the replies.
#[tokio::test]
async fn answered_messages_are_marked_read_before_the_replies() {
    let r = TestApp::spawn().await;
    let who = ana();
    for m in [text("hi"), text("human")] {
        let e = r.message(&who, m);
        r.deliver(std::slice::from_ref(&e)).await;
        let out = r.outbound_all().await;
        assert!(out.len() >= 2, "{out:?}");
        assert_eq!(
            out[0].body,
            OutboundBody::MarkRead {
                message_id: message_id(&e).to_owned(),
                typing_indicator: true
            }
        );
        assert_eq!(out[0].dedup_id, format!("read:{}", message_id(&e)));
        assert!(out[1..].iter().all(|m| !is_read(m)));
    }
}

/// Once handed off, nothing is marked read by the engine.
#[tokio::test]
async fn messages_waiting_for_an_agent_are_not_marked_read() {
    let r = TestApp::spawn().await;
    r.say(&ana(), text("hi")).await;
    r.say(&ana(), text("human")).await;
    r.outbound_all().await;
    r.say(&ana(), text("hello?")).await;
    assert!(
        r.outbound_all().await.is_empty(),
        "waiting for an agent: not read"
    );
}

/// A compact view of a line: `who:type:detail`.
fn shown(e: &Entry) -> String {
    let who = match &e.author {
        Author::Contact => "contact",
        Author::Bot => "bot",
        Author::System => "system",
        Author::Agent { .. } => "agent",
    };
    let what = match &e.body {
        Body::Text { .. } => "text".to_owned(),
        Body::Reply { reply_id, .. } => format!("reply:{reply_id}"),
        Body::Question { question, .. } => format!("question:{question}"),
        Body::Answer { question, value } => format!("answer:{question}={value}"),
        other => format!("{other:?}"),
    };
    format!("{who}:{what}")
}

#[tokio::test]
async fn the_transcript_holds_the_survey_in_order_and_a_redelivery_adds_nothing() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("Hi, I need help")).await;
    r.say(&who, tap("en")).await;
    let last = r.message(&who, tap("yes"));
    r.deliver(std::slice::from_ref(&last)).await;
    r.deliver(&[last]).await;
    let conv = r.conversation(&who).await;
    let lines: Vec<String> = r
        .transcript_entries(s(&conv, "pk").trim_start_matches("CONV#"))
        .await
        .iter()
        .map(shown)
        .collect();
    let expected = [
        "contact:text",
        "bot:text",
        "bot:question:language",
        "contact:reply:en",
        "system:answer:language=en",
        "bot:question:consent",
        "contact:reply:yes",
        "system:answer:consent=yes",
        "bot:question:name",
    ];
    assert_eq!(lines, expected);
}

/// The status and wamid of one transcript entry.
async fn entry_status(
    r: &TestApp,
    entry: &prechat::transcript::TranscriptRef,
) -> (Option<TDeliveryStatus>, Option<String>) {
    let e = r
        .transcript_entries(&entry.conversation_id)
        .await
        .into_iter()
        .find(|e| e.id == entry.entry_id)
        .unwrap();
    (e.status, e.wamid)
}

#[tokio::test]
async fn sending_and_status_webhooks_move_the_entry_of_the_message_forward() {
    let r = TestApp::spawn().await;
    let who = ana();
    r.say(&who, text("hi")).await;
    let question = r.outbound().await.pop().unwrap();
    let entry = question
        .transcript
        .clone()
        .expect("the question names its entry");
    // What the reply-sender records once Meta accepted the question.
    let wamid = format!("wamid.out.{}", r.env.prefix);
    r.delivery_log()
        .record_sent(&SentRecord {
            dedup_id: question.dedup_id.clone(),
            wamid: Some(wamid.clone()),
            conversation_id: question.conversation_id.clone(),
            contact_key: None,
            phone_number_id: PNID.into(),
            sent_at: T0,
            via: SentVia::Message,
            transcript: question.transcript.clone(),
        })
        .await
        .unwrap();
    let sent = entry_status(&r, &entry).await;
    assert_eq!(sent, (Some(TDeliveryStatus::Sent), Some(wamid.clone())));
    let status = |st: DeliveryStatus, at: i64| {
        InboundEvent::Status(StatusUpdate {
            phone_number_id: PNID.into(),
            message_id: wamid.clone(),
            status: st,
            timestamp: at,
            recipient: who.clone(),
            errors: vec![],
            conversation: None,
            pricing: None,
        })
    };
    r.deliver(&[status(DeliveryStatus::Delivered, T0 + 1)])
        .await;
    assert_eq!(
        entry_status(&r, &entry).await.0,
        Some(TDeliveryStatus::Delivered)
    );
    r.deliver(&[
        status(DeliveryStatus::Read, T0 + 2),
        status(DeliveryStatus::Delivered, T0 + 1),
    ])
    .await;
    assert_eq!(
        entry_status(&r, &entry).await.0,
        Some(TDeliveryStatus::Read),
        "read never goes back to delivered"
    );
}
