//! The help-desk bridge against moto and wiremock (the team's webhook): contact messages after
//! the hand-off (`message.created`), transfers through the assigner
//! (`conversation.transferred`), closes (`conversation.closed`), and a failing webhook retried
//! with back-off without failing or blocking the contact's jobs.

use std::sync::Arc;

use prechat::routing::job::{AssignmentJob, ClosedNotice, TransferRequest, TransferTarget};
use prechat::routing::model::{Agent, AgentStatus, Strategy, Team};
use prechat::routing::notify::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use prechat::routing::rules::RoutingConfig;
use prechat::secrets::Secret;
use prechat::transcript::{Body, Event};
use prechat_tests::app::{ana, text, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "hook-secret";

fn team(id: &str, server: &MockServer) -> Team {
    let mut t: Team = serde_json::from_value(json!({"id": id, "name": "Support"})).unwrap();
    t.strategy = Strategy::RoundRobin;
    t.notify_url = Some(format!("{}/hook/{id}", server.uri()));
    t
}

fn agent(id: &str, status: AgentStatus, capacity: u32) -> Agent {
    Agent {
        id: id.into(),
        name: format!("Agent {id}"),
        teams: vec!["support".into()],
        languages: vec![],
        status,
        capacity,
        open: 0,
        last_assigned_at: 0,
        leads: vec![],
        sub: None,
    }
}

/// Team `support` posting to `server`; alice (room for `capacity`) online, bruno away; the
/// assigner signs with [`SECRET`].
async fn world(server: &MockServer, capacity: u32) -> TestApp {
    let mut w = TestApp::spawn().await;
    w.assigner = Arc::new(w.assigner_with(Some(SECRET)));
    let r = w.routing();
    r.put_team(&team("support", server)).await.unwrap();
    let routing: RoutingConfig =
        serde_json::from_value(json!({"default_team": "support"})).unwrap();
    r.put_routing(&routing).await.unwrap();
    r.upsert_agent(&agent("alice", AgentStatus::Online, capacity))
        .await
        .unwrap();
    r.upsert_agent(&agent("bruno", AgentStatus::Away, 1))
        .await
        .unwrap();
    w
}

async fn hook(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

/// Ana asks for a human; the assigner handles the hand-off. Her conversation id.
async fn handed_off(w: &TestApp) -> String {
    w.say(&ana(), text("hi")).await;
    w.say(&ana(), text("human")).await;
    w.drain_assignments().await;
    let conv = w.conversation(&ana()).await;
    prechat_tests::app::s(&conv, "pk")
        .trim_start_matches("CONV#")
        .to_owned()
}

/// Ana writes each text; the assignment queue is drained after each (no job fails).
async fn writes(w: &TestApp, texts: &[&str]) {
    for t in texts {
        w.say(&ana(), text(t)).await;
        for r in w.drain_assignments().await {
            assert!(r.batch_item_failures.is_empty(), "{r:?}");
        }
    }
}

/// The bodies posted with `event`, in order.
async fn posted(server: &MockServer, event: &str) -> Vec<(Request, Value)> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            (r, v)
        })
        .filter(|(_, v)| v["event"] == event)
        .collect()
}

fn texts_of(posts: &[(Request, Value)]) -> Vec<String> {
    posts
        .iter()
        .map(|(_, v)| v["entry"]["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_assigned_contact_s_messages_reach_the_webhook_in_order() {
    let server = hook(200).await;
    let w = world(&server, 1).await;
    let conv = handed_off(&w).await;
    writes(&w, &["first", "second"]).await;
    let posts = posted(&server, "message.created").await;
    assert_eq!(texts_of(&posts), ["first", "second"]);
    for (_, v) in &posts {
        assert_eq!(
            (&v["conversation_id"], &v["agent_id"]),
            (&json!(conv), &json!("alice"))
        );
        let entry_id = v["entry"]["id"].as_str().unwrap();
        assert_eq!(v["delivery_id"], format!("msg:{conv}:{entry_id}"));
    }
}

#[tokio::test]
async fn a_relayed_message_is_signed_like_the_assignment_notification() {
    let server = hook(200).await;
    let w = world(&server, 1).await;
    handed_off(&w).await;
    writes(&w, &["first"]).await;
    let (r, _) = &posted(&server, "message.created").await[0];
    let header = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_owned();
    let ts: i64 = header(TIMESTAMP_HEADER).parse().unwrap();
    assert_eq!(
        header(SIGNATURE_HEADER),
        signature(&Secret::new(SECRET), ts, &r.body)
    );
}

#[tokio::test]
async fn a_waiting_contact_s_messages_are_kept_in_the_transcript_and_not_posted() {
    let server = hook(200).await;
    let w = world(&server, 0).await;
    let conv = handed_off(&w).await;
    writes(&w, &["still there?"]).await;
    assert!(posted(&server, "message.created").await.is_empty());
    let entries = w.transcript_entries(&conv).await;
    assert!(entries.iter().any(|e| e.body
        == Body::Text {
            text: "still there?".into()
        }));
}

/// Ana is with alice; the webhook answers 500 while she writes "first".
async fn first_written_during_an_outage() -> (MockServer, TestApp, String) {
    let server = MockServer::start().await;
    let ok = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount_as_scoped(&server)
        .await;
    let w = world(&server, 1).await;
    let conv = handed_off(&w).await;
    drop(ok);
    let down = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount_as_scoped(&server)
        .await;
    writes(&w, &["first"]).await;
    drop(down);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    (server, w, conv)
}

#[tokio::test]
async fn a_failing_webhook_keeps_the_message_without_failing_the_job() {
    let (_server, w, conv) = first_written_during_an_outage().await;
    let pending = w.routing().pending_deliveries(&conv).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
}

#[tokio::test]
async fn a_later_message_queues_behind_the_failed_one_until_its_retry() {
    let (server, w, conv) = first_written_during_an_outage().await;
    writes(&w, &["second"]).await;
    assert!(texts_of(&posted(&server, "message.created").await)
        .iter()
        .all(|t| t == "first"));
    assert_eq!(
        w.routing().pending_deliveries(&conv).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn after_the_back_off_the_sweep_posts_the_kept_messages_in_order() {
    let (server, w, conv) = first_written_during_an_outage().await;
    writes(&w, &["second"]).await;
    w.clock.advance(61);
    w.assigner.drain("*").await.unwrap();
    let posts = posted(&server, "message.created").await;
    // The failed attempt, then both in order.
    assert_eq!(texts_of(&posts), ["first", "first", "second"]);
    assert_eq!(posts[0].1["delivery_id"], posts[1].1["delivery_id"]);
    assert!(w
        .routing()
        .pending_deliveries(&conv)
        .await
        .unwrap()
        .is_empty());
}

fn transfer(conv: &str, to: TransferTarget, at: i64) -> AssignmentJob {
    AssignmentJob::Transfer(TransferRequest {
        job_id: format!("{conv}:transfer:{at}"),
        phone_number_id: prechat_tests::app::PNID.into(),
        contact: ana(),
        conversation_id: conv.into(),
        to,
        by: "alice".into(),
        requested_at: at,
    })
}

/// Ana is with alice; bruno comes online; alice transfers her to bruno.
async fn transferred_to_bruno() -> (MockServer, TestApp, String) {
    let server = hook(200).await;
    let w = world(&server, 1).await;
    let conv = handed_off(&w).await;
    w.routing()
        .set_agent("bruno", Some(AgentStatus::Online), None)
        .await
        .unwrap();
    w.env.receive_all("OutboundQueue").await;
    w.clock.advance(10);
    w.run_job(transfer(
        &conv,
        TransferTarget::Agent("bruno".into()),
        w.clock.unix(),
    ))
    .await;
    (server, w, conv)
}

#[tokio::test]
async fn a_transfer_to_an_agent_moves_the_slot() {
    let (_s, w, conv) = transferred_to_bruno().await;
    let ticket = w.routing().get_ticket(&conv).await.unwrap().unwrap();
    assert_eq!(ticket.agent.as_deref(), Some("bruno"));
    let r = w.routing();
    let alice = r.get_agent("alice").await.unwrap().unwrap().open;
    let bruno = r.get_agent("bruno").await.unwrap().unwrap().open;
    assert_eq!((alice, bruno), (0, 1));
}

#[tokio::test]
async fn a_transfer_to_an_agent_tells_the_contact_the_new_agent_s_name() {
    let (_s, w, _conv) = transferred_to_bruno().await;
    let texts: Vec<String> = w
        .outbound()
        .await
        .iter()
        .map(|m| prechat_tests::app::body_text(m).to_owned())
        .collect();
    assert_eq!(
        texts,
        ["You have been transferred to Agent bruno of Support. They will reply here shortly."]
    );
}

#[tokio::test]
async fn a_transfer_is_posted_to_the_team_and_recorded_in_the_transcript() {
    let (server, w, conv) = transferred_to_bruno().await;
    let posts = posted(&server, "conversation.transferred").await;
    assert_eq!(posts.len(), 1);
    let v = &posts[0].1;
    assert_eq!(
        (&v["from_agent"], &v["to_agent"], &v["to_team"], &v["by"]),
        (
            &json!("alice"),
            &json!("bruno"),
            &json!("support"),
            &json!("alice")
        )
    );
    let events: Vec<Event> = w
        .transcript_entries(&conv)
        .await
        .into_iter()
        .filter_map(|e| match e.body {
            Body::Event {
                event: e @ Event::Transferred { .. },
            } => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [Event::Transferred {
            from_agent: Some("alice".into()),
            to_team: "support".into(),
            to_agent: Some("bruno".into()),
        }]
    );
}

#[tokio::test]
async fn a_transfer_to_a_full_agent_falls_back_to_the_team_s_line() {
    let server = hook(200).await;
    let w = world(&server, 1).await;
    let conv = handed_off(&w).await;
    w.routing()
        .set_agent("bruno", Some(AgentStatus::Online), Some(0))
        .await
        .unwrap();
    w.run_job(transfer(
        &conv,
        TransferTarget::Agent("bruno".into()),
        w.clock.unix(),
    ))
    .await;
    let posts = posted(&server, "conversation.transferred").await;
    // alice's slot was freed and the line gave the conversation straight back to her.
    assert_eq!(posts[0].1["to_agent"], "alice");
    assert_eq!(
        w.routing().get_agent("bruno").await.unwrap().unwrap().open,
        0
    );
}

#[tokio::test]
async fn a_transfer_to_a_team_without_agents_leaves_it_waiting_there_and_says_so() {
    let server = hook(200).await;
    let w = world(&server, 1).await;
    w.routing()
        .put_team(&team("billing", &server))
        .await
        .unwrap();
    let conv = handed_off(&w).await;
    w.env.receive_all("OutboundQueue").await;
    w.run_job(transfer(
        &conv,
        TransferTarget::Team("billing".into()),
        w.clock.unix(),
    ))
    .await;
    let (r, v) = &posted(&server, "conversation.transferred").await[0];
    assert_eq!(r.url.path(), "/hook/billing");
    assert_eq!(
        (&v["to_team"], &v["to_agent"]),
        (&json!("billing"), &Value::Null)
    );
    let told = w.outbound().await;
    assert_eq!(told.len(), 1);
    assert!(prechat_tests::app::body_text(&told[0]).starts_with("Our team is away"));
    assert_eq!(
        w.routing().get_agent("alice").await.unwrap().unwrap().open,
        0
    );
}

#[tokio::test]
async fn a_close_outside_the_assigner_is_posted_once_per_handoff() {
    let server = hook(200).await;
    let w = world(&server, 1).await;
    let conv = handed_off(&w).await;
    let ticket = w.routing().get_ticket(&conv).await.unwrap().unwrap();
    let notice = |at: i64| {
        AssignmentJob::Closed(ClosedNotice {
            job_id: ClosedNotice::job_id_for(&conv, &ticket.job_id),
            phone_number_id: prechat_tests::app::PNID.into(),
            contact: ana(),
            conversation_id: conv.clone(),
            handoff_job_id: ticket.job_id.clone(),
            team_id: "support".into(),
            agent_id: Some("alice".into()),
            closed_by: "alice".into(),
            closed_at: at,
        })
    };
    w.run_job(notice(w.clock.unix())).await;
    let posts = posted(&server, "conversation.closed").await;
    assert_eq!(posts.len(), 1);
    let v = &posts[0].1;
    assert_eq!(
        (&v["closed_by"], &v["agent_id"]),
        (&json!("alice"), &json!("alice"))
    );
    assert_eq!(v["delivery_id"], format!("cls:{conv}:{}", ticket.job_id));
}

#[tokio::test]
async fn a_contact_who_stops_closes_the_conversation_for_the_help_desk() {
    let server = hook(200).await;
    let w = world(&server, 1).await;
    let conv = handed_off(&w).await;
    writes(&w, &["stop"]).await;
    let posts = posted(&server, "conversation.closed").await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(
        (&posts[0].1["conversation_id"], &posts[0].1["closed_by"]),
        (&json!(conv), &json!("stopped"))
    );
}

/// [`world`] with the assigner's pushes to agents' browsers recorded.
async fn pushing_world(
    server: &MockServer,
    capacity: u32,
) -> (TestApp, Arc<prechat::realtime::push::RecordedPushes>) {
    let mut w = world(server, capacity).await;
    let pushes = Arc::new(prechat::realtime::push::RecordedPushes::default());
    let port: prechat::realtime::push::SharedPush = pushes.clone();
    w.assigner = Arc::new(w.assigner_with(Some(SECRET)).with_pusher(Some(port)));
    (w, pushes)
}

#[tokio::test]
async fn the_assigner_pushes_each_event_to_the_agent_it_concerns() {
    use prechat::realtime::PushType::*;
    let server = hook(200).await;
    let (w, pushes) = pushing_world(&server, 1).await;
    let conv = handed_off(&w).await;
    writes(&w, &["where is my order?"]).await;
    w.routing()
        .set_agent("bruno", Some(AgentStatus::Online), None)
        .await
        .unwrap();
    w.clock.advance(10);
    let to_bruno = TransferTarget::Agent("bruno".into());
    w.run_job(transfer(&conv, to_bruno, w.clock.unix())).await;
    let ticket = w.routing().get_ticket(&conv).await.unwrap().unwrap();
    w.run_job(AssignmentJob::Closed(ClosedNotice {
        job_id: ClosedNotice::job_id_for(&conv, &ticket.job_id),
        phone_number_id: prechat_tests::app::PNID.into(),
        contact: ana(),
        conversation_id: conv.clone(),
        handoff_job_id: ticket.job_id.clone(),
        team_id: "support".into(),
        agent_id: Some("bruno".into()),
        closed_by: "bruno".into(),
        closed_at: w.clock.unix(),
    }))
    .await;
    let seen: Vec<(String, prechat::realtime::PushType)> = pushes
        .seen()
        .into_iter()
        .inspect(|(_, _, c)| assert_eq!(c, &conv))
        .map(|(a, k, _)| (a, k))
        .collect();
    let expect = |a: &str, k| (a.to_owned(), k);
    assert_eq!(
        seen,
        [
            expect("alice", ConversationAssigned),
            expect("alice", MessageCreated),
            expect("alice", ConversationTransferred),
            expect("bruno", ConversationAssigned),
            expect("bruno", ConversationClosed),
        ]
    );
    // The relayed message carries its entry as the agent API shows it.
    let frames = pushes.0.lock().unwrap().clone();
    assert_eq!(
        frames[1].1.entry.as_ref().unwrap()["text"],
        "where is my order?"
    );
}

#[tokio::test]
async fn a_conversation_joining_the_line_is_pushed_to_the_team_s_agents_who_are_not_offline() {
    use prechat::realtime::PushType::ConversationUpdated;
    let server = hook(200).await;
    // alice has no room: Ana waits; bruno is away (still watching), carmen offline.
    let (w, pushes) = pushing_world(&server, 0).await;
    w.routing()
        .upsert_agent(&agent("carmen", AgentStatus::Offline, 1))
        .await
        .unwrap();
    let conv = handed_off(&w).await;
    assert_eq!(
        pushes.seen(),
        [
            ("alice".to_owned(), ConversationUpdated, conv.clone()),
            ("bruno".to_owned(), ConversationUpdated, conv),
        ]
    );
}
