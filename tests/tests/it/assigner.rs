//! agent-assigner against moto (table and queues from the template) and wiremock (the team's
//! notification webhook): capacity under concurrency, line order, presence, idempotency,
//! business hours and the 24-hour window.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeZone, Utc};
use prechat::clock::Clock;
use prechat::entrypoints::assigner::{AgentAssigner, JobOutcome, MAX_NOTIFY_ATTEMPTS};
use prechat::queue::dlq::SqsDeadLetters;
use prechat::queue::FifoContract;
use prechat::queue::SqsQueue;
use prechat::routing::job::{
    AssignRequest, AssignmentJob, CancelReason, CancelRequest, HandoffReason,
};
use prechat::routing::model::{Agent, AgentStatus, MessageKind, Strategy, Team};
use prechat::routing::notify::{signature, WebhookNotifier, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use prechat::routing::rules::RoutingConfig;
use prechat::secrets::Secret;
use prechat::store::routing::{CloseOutcome, RoutingStore, TicketState};
use prechat::store::DynamoTable;
use prechat::whatsapp::outbound::{OutboundBody, OutboundMessage};
use prechat::whatsapp::ContactRef;
use prechat_tests::{sqs, TestEnv};

/// Mon 2026-11-23 12:00 UTC.
const NOON: i64 = 1_795_435_200;

struct World {
    env: TestEnv,
    assigner: Arc<AgentAssigner>,
    store: RoutingStore,
    clock: Clock,
}

async fn world(secret: Option<&str>) -> World {
    let env = TestEnv::new().await;
    let store = RoutingStore::new(DynamoTable::new(
        env.dynamo.clone(),
        env.table("StateTable"),
    ));
    let outbound = SqsQueue::new(env.sqs.clone(), env.queue_url("OutboundQueue"));
    let clock = Clock::at_unix(NOON);
    let notifier = secret.map(|s| WebhookNotifier::new(Secret::new(s)).unwrap());
    let dead_letters = SqsDeadLetters::new(
        env.sqs.clone(),
        Some(env.queue_url("AssignmentDeadLetterQueue").to_owned()),
    );
    let assigner = Arc::new(AgentAssigner::new(
        store.clone(),
        outbound,
        dead_letters,
        notifier,
        clock.clone(),
    ));
    World {
        env,
        assigner,
        store,
        clock,
    }
}

fn team(id: &str, strategy: Strategy) -> Team {
    let mut t: Team =
        serde_json::from_value(serde_json::json!({"id": id, "name": "Support"})).unwrap();
    t.strategy = strategy;
    t
}

fn agent(id: &str, team: &str, capacity: u32) -> Agent {
    Agent {
        id: id.into(),
        name: format!("Agent {id}"),
        teams: vec![team.into()],
        languages: vec![],
        status: AgentStatus::Online,
        capacity,
        open: 0,
        last_assigned_at: 0,
    }
}

fn routing(default_team: &str) -> RoutingConfig {
    serde_json::from_value(serde_json::json!({
        "default_team": default_team,
        "vip": {"customers": [{"customer_id": "VIP-1", "terms": "platinum contract"}]}
    }))
    .unwrap()
}

async fn setup(w: &World, t: &Team, agents: &[Agent]) {
    w.store.put_team(t).await.unwrap();
    w.store.put_routing(&routing(&t.id)).await.unwrap();
    for a in agents {
        w.store.upsert_agent(a).await.unwrap();
    }
}

fn request(i: usize, requested_at: i64) -> AssignRequest {
    AssignRequest {
        job_id: format!("handoff:conv-{i:03}"),
        phone_number_id: "106540352242922".into(),
        contact: ContactRef {
            user_id: Some(format!("US.{:020}", 13491208655302741918u64 + i as u64)),
            ..Default::default()
        },
        conversation_id: format!("conv-{i:03}"),
        language: "en".into(),
        reason: HandoffReason::Completed,
        answers: BTreeMap::new(),
        fields: BTreeMap::new(),
        last_inbound_at: requested_at,
        requested_at,
        supersedes: false,
    }
}

/// An SQS event as Lambda delivers it from the FIFO queue.
fn sqs_event(jobs: &[AssignmentJob]) -> SqsEvent {
    sqs::event(jobs.iter().enumerate().map(|(i, job)| {
        let body = serde_json::to_string(job).unwrap();
        sqs::record(&format!("msg-{i}"), &body, Some(&job.group_id()), None)
    }))
}

async fn outbound(w: &World) -> Vec<OutboundMessage> {
    w.env
        .receive_all("OutboundQueue")
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

fn text(m: &OutboundMessage) -> &str {
    match &m.body {
        OutboundBody::Text { body, .. } => body,
        other => panic!("expected text, got {other:?}"),
    }
}

async fn conv_item(w: &World, conv: &str) -> HashMap<String, AttributeValue> {
    w.env
        .dynamo
        .get_item()
        .table_name(w.env.table("StateTable"))
        .key("pk", AttributeValue::S(format!("CONV#{conv}")))
        .key("sk", AttributeValue::S("CONV".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default()
}

#[tokio::test]
async fn fifty_jobs_at_once_never_exceed_capacity_and_queue_the_rest_in_order() {
    let w = world(None).await;
    let t = team("support", Strategy::LeastOpen);
    setup(
        &w,
        &t,
        &[
            agent("ann", "support", 5),
            agent("bob", "support", 5),
            agent("cid", "support", 5),
        ],
    )
    .await;

    // 50 contacts, each its own FIFO group, so Lambda runs them concurrently.
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let a = w.assigner.clone();
        let job = AssignmentJob::Assign(request(i, NOON - 1000 + i as i64));
        tasks.spawn(async move { a.handle(sqs_event(&[job])).await });
    }
    while let Some(res) = tasks.join_next().await {
        assert!(res.unwrap().batch_item_failures.is_empty());
    }

    // Reported, never asserted: moto's speed says nothing about DynamoDB's.
    eprintln!(
        "50 concurrent jobs handled against moto in {:?}",
        started.elapsed()
    );
    let agents = w.store.list_agents().await.unwrap();
    assert_eq!(
        agents.iter().map(|a| a.open).collect::<Vec<_>>(),
        [5, 5, 5],
        "every agent exactly full"
    );
    let mut assigned_per_agent: HashMap<String, u32> = HashMap::new();
    let mut waiting_convs = Vec::new();
    for i in 0..50 {
        let ticket = w
            .store
            .get_ticket(&format!("conv-{i:03}"))
            .await
            .unwrap()
            .unwrap();
        match ticket.state {
            TicketState::Assigned => {
                let agent = ticket.agent.clone().unwrap();
                *assigned_per_agent.entry(agent.clone()).or_default() += 1;
                let conv = conv_item(&w, &ticket.conversation_id).await;
                assert_eq!(conv["assigned_agent"].as_s().unwrap(), &agent);
                assert_eq!(conv["assigned_team"].as_s().unwrap(), "support");
            }
            TicketState::Waiting => waiting_convs.push(ticket.conversation_id.clone()),
            TicketState::Closed => panic!("nothing was closed"),
        }
    }
    assert_eq!(assigned_per_agent.values().sum::<u32>(), 15);
    // Every slot is traceable to its conversation, and to nothing else.
    for a in &agents {
        let held = w.store.reservations(&a.id).await.unwrap();
        assert_eq!(held.len() as u32, assigned_per_agent[&a.id], "{}", a.id);
        for (conv, _) in held {
            let t = w.store.get_ticket(&conv).await.unwrap().unwrap();
            assert_eq!(t.agent.as_deref(), Some(a.id.as_str()));
        }
    }
    assert_eq!(
        w.store.reconcile(NOON + 3600, 120).await.unwrap(),
        0,
        "nothing leaked"
    );
    assert!(
        assigned_per_agent.values().all(|n| *n == 5),
        "{assigned_per_agent:?}"
    );
    assert_eq!(waiting_convs.len(), 35);

    // The line holds exactly the waiting ones, oldest first, and positions count from 1.
    let line = w.store.waiting("support").await.unwrap();
    let line_convs: Vec<String> = line.iter().map(|t| t.conversation_id.clone()).collect();
    assert_eq!(
        line_convs, waiting_convs,
        "conversation ids sort like their requested_at"
    );
    for (i, ticket) in line.iter().enumerate() {
        assert_eq!(w.store.position(ticket).await.unwrap(), i as u32 + 1);
    }

    // What each contact heard, in their FIFO order. Jobs race: a contact may first hear that
    // they are in line and then, when another job's drain reaches them, who they talk to.
    // Never anything after the assigned message, never an assigned message while waiting.
    let mut per_conv: BTreeMap<String, Vec<OutboundMessage>> = BTreeMap::new();
    for m in outbound(&w).await {
        per_conv
            .entry(m.conversation_id.clone().unwrap())
            .or_default()
            .push(m);
    }
    assert_eq!(per_conv.len(), 50, "every contact heard something");
    let mut told_twice = 0;
    for (conv, msgs) in &per_conv {
        let last = msgs.last().unwrap();
        for m in &msgs[..msgs.len() - 1] {
            assert!(
                m.dedup_id.ends_with(":overload"),
                "{conv}: {:?}",
                msgs.iter()
                    .map(|m| (m.dedup_id.as_str(), text(m)))
                    .collect::<Vec<_>>()
            );
        }
        told_twice += usize::from(msgs.len() > 1);
        if waiting_convs.contains(conv) {
            assert_eq!(msgs.len(), 1, "{conv}");
            let pos: u32 = text(last)
                .split("number ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap();
            // The position when the job ran: jobs that were still arriving or being assigned
            // could stand ahead then.
            assert!((1..=50).contains(&pos), "position {pos}");
            assert!(
                text(last).contains(&format!("number {pos} in line")),
                "{}",
                text(last)
            );
        } else {
            assert!(
                last.dedup_id.ends_with(":assigned"),
                "{conv}: {:?}",
                last.dedup_id
            );
            assert!(
                text(last).starts_with("You are now talking to Agent "),
                "{}",
                text(last)
            );
        }
    }
    eprintln!("contacts told 'in line' before being assigned: {told_twice} of 15");

    // Once the burst is over, a newcomer is told its exact place: behind all 35.
    let late = w.assigner.assign(request(50, NOON)).await.unwrap();
    assert_eq!(
        late,
        JobOutcome::Waiting {
            kind: MessageKind::Overload,
            position: 36
        }
    );
    let msgs = outbound(&w).await;
    assert_eq!(
        text(&msgs[0]),
        "All our agents are busy. You are number 36 in line; we will be with you soon."
    );
}

#[tokio::test]
async fn closing_assigns_the_oldest_waiting_vip_first() {
    let w = world(None).await;
    let t = team("support", Strategy::RoundRobin);
    setup(&w, &t, &[agent("ann", "support", 1)]).await;

    assert_eq!(
        w.assigner.assign(request(1, NOON - 500)).await.unwrap(),
        JobOutcome::Assigned {
            agent: "ann".into()
        }
    );
    // Arrive in this order; the line must be VIP (4), then oldest (3 before 2).
    let mut late = request(2, NOON - 100);
    late.fields.insert("customer_id".into(), "C-9".into());
    let early = request(3, NOON - 300);
    let mut vip = request(4, NOON - 50);
    vip.fields.insert("customer_id".into(), "VIP-1".into());
    assert_eq!(
        w.assigner.assign(late).await.unwrap(),
        JobOutcome::Waiting {
            kind: MessageKind::Overload,
            position: 1
        }
    );
    assert_eq!(
        w.assigner.assign(early).await.unwrap(),
        JobOutcome::Waiting {
            kind: MessageKind::Overload,
            position: 1
        }
    );
    assert_eq!(
        w.assigner.assign(vip).await.unwrap(),
        JobOutcome::Waiting {
            kind: MessageKind::Overload,
            position: 1
        }
    );
    let line: Vec<String> = w
        .store
        .waiting("support")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.conversation_id)
        .collect();
    assert_eq!(line, ["conv-004", "conv-003", "conv-002"]);
    outbound(&w).await;

    let mut served = Vec::new();
    for (closing, by) in [
        ("conv-001", "ann"),
        ("conv-004", "ann"),
        ("conv-003", "ann"),
    ] {
        w.clock.advance(60);
        let out = w.store.close(closing, by, w.clock.unix()).await.unwrap();
        assert_eq!(
            out,
            CloseOutcome::Closed {
                team: "support".into(),
                agent: Some("ann".into())
            }
        );
        let conv = conv_item(&w, closing).await;
        assert_eq!(conv["closed_by"].as_s().unwrap(), by);
        assert!(conv.contains_key("closed_at"));
        // What the admin command enqueues after a close.
        let r = w
            .assigner
            .handle(sqs_event(&[AssignmentJob::Drain {
                team_id: "support".into(),
                reason: "closed".into(),
            }]))
            .await;
        assert!(r.batch_item_failures.is_empty());
        let msgs = outbound(&w).await;
        assert_eq!(msgs.len(), 1, "exactly the next contact is told");
        served.push(msgs[0].conversation_id.clone().unwrap());
        assert_eq!(
            text(&msgs[0]),
            "You are now talking to Agent ann. They will reply here shortly."
        );
        assert_eq!(
            w.store.get_agent("ann").await.unwrap().unwrap().open,
            1,
            "never over capacity"
        );
    }
    assert_eq!(served, ["conv-004", "conv-003", "conv-002"]);
    assert_eq!(
        w.store.close("conv-001", "ann", NOON).await.unwrap(),
        CloseOutcome::AlreadyClosed
    );
    assert_eq!(
        w.store.close("conv-999", "ann", NOON).await.unwrap(),
        CloseOutcome::NotFound
    );
}

#[tokio::test]
async fn offline_agents_are_not_chosen_and_presence_changes_move_the_line() {
    let w = world(None).await;
    let t = team("support", Strategy::RoundRobin);
    setup(
        &w,
        &t,
        &[agent("ann", "support", 5), agent("bob", "support", 5)],
    )
    .await;
    w.store
        .set_agent("bob", Some(AgentStatus::Offline), None)
        .await
        .unwrap();

    for i in 0..3 {
        w.clock.advance(1);
        assert_eq!(
            w.assigner.assign(request(i, NOON)).await.unwrap(),
            JobOutcome::Assigned {
                agent: "ann".into()
            }
        );
    }
    w.store
        .set_agent("ann", Some(AgentStatus::Away), None)
        .await
        .unwrap();
    assert_eq!(
        w.assigner.assign(request(3, NOON)).await.unwrap(),
        JobOutcome::Waiting {
            kind: MessageKind::Away,
            position: 1
        }
    );
    let msgs = outbound(&w).await;
    assert_eq!(msgs.len(), 4);
    assert!(
        text(&msgs[3]).starts_with("Our team is away"),
        "{}",
        text(&msgs[3])
    );

    // Bob comes online: the drain gives him the waiting conversation.
    w.store
        .set_agent("bob", Some(AgentStatus::Online), None)
        .await
        .unwrap();
    w.assigner.drain("*").await.unwrap();
    assert_eq!(
        w.store
            .get_ticket("conv-003")
            .await
            .unwrap()
            .unwrap()
            .agent
            .as_deref(),
        Some("bob")
    );
    let ann = w.store.get_agent("ann").await.unwrap().unwrap();
    let bob = w.store.get_agent("bob").await.unwrap().unwrap();
    assert_eq!((ann.open, bob.open), (3, 1));
    // Lowering capacity below the open count never takes conversations away, and blocks new ones.
    w.store.set_agent("bob", None, Some(1)).await.unwrap();
    assert_eq!(
        w.assigner.assign(request(4, NOON)).await.unwrap(),
        JobOutcome::Waiting {
            kind: MessageKind::Overload,
            position: 1
        }
    );
    assert!(w
        .store
        .set_agent("nobody", Some(AgentStatus::Online), None)
        .await
        .is_err());
}

#[tokio::test]
async fn redelivered_jobs_assign_once() {
    let w = world(None).await;
    let t = team("support", Strategy::RoundRobin);
    setup(&w, &t, &[agent("ann", "support", 5)]).await;
    let job = AssignmentJob::Assign(request(7, NOON));
    for _ in 0..3 {
        let r = w
            .assigner
            .handle(sqs_event(std::slice::from_ref(&job)))
            .await;
        assert!(r.batch_item_failures.is_empty());
    }
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 1);
    // Another job for the same open conversation (e.g. the contact asked for a human twice).
    let mut again = request(7, NOON + 5);
    again.job_id = "handoff:conv-007:second".into();
    assert_eq!(
        w.assigner.assign(again).await.unwrap(),
        JobOutcome::AlreadyHandedOff
    );
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 1);
    let msgs = outbound(&w).await;
    assert_eq!(
        msgs.len(),
        1,
        "the FIFO queue dropped the repeated dedup ids"
    );
    assert_eq!(msgs[0].dedup_id, "asg:conv-007:handoff:conv-007:assigned");

    // A malformed body is parked in the DLQ at once without blocking the batch; valid jobs
    // after it run.
    let mut e = sqs_event(&[AssignmentJob::Assign(request(8, NOON))]);
    let mut bad = SqsMessage::default();
    bad.message_id = Some("bad".into());
    bad.body = Some("{\"job\":\"assign\"}".into());
    bad.attributes = HashMap::from([("MessageGroupId".to_string(), "team:support".to_string())]);
    e.records.insert(0, bad);
    assert!(w.assigner.handle(e).await.batch_item_failures.is_empty());
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 2);
    assert_eq!(
        w.env.parked("AssignmentDeadLetterQueue").await,
        [(
            "{\"job\":\"assign\"}".to_owned(),
            "team:support".to_owned(),
            "unreadable_body".to_owned(),
            "agent-assigner".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_job_without_routing_rules_is_parked_in_the_assignment_dlq_at_once() {
    let w = world(None).await;
    let job = AssignmentJob::Assign(request(9, NOON));
    let r = w
        .assigner
        .handle(sqs_event(std::slice::from_ref(&job)))
        .await;
    assert!(r.batch_item_failures.is_empty(), "not retried: parked");
    let parked = w.env.parked("AssignmentDeadLetterQueue").await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].0, serde_json::to_string(&job).unwrap());
    assert_eq!(
        (parked[0].1.as_str(), parked[0].2.as_str()),
        (job.group_id().as_str(), "routing_config")
    );
}

#[tokio::test]
async fn business_hours_send_away_and_the_sweep_assigns_at_opening() {
    let w = world(None).await;
    let mut t = team("support", Strategy::RoundRobin);
    t.hours = Some(
        serde_json::from_value(serde_json::json!({
            "time_zone": "Europe/Berlin", "weekly": {"mon": ["09:00-17:00"]}
        }))
        .unwrap(),
    );
    setup(&w, &t, &[agent("ann", "support", 5)]).await;
    // Mon 2026-11-23 07:30 UTC = 08:30 in Berlin.
    let before = Utc
        .with_ymd_and_hms(2026, 11, 23, 7, 30, 0)
        .unwrap()
        .timestamp();
    w.clock.set_unix(before);
    assert_eq!(
        w.assigner.assign(request(1, before)).await.unwrap(),
        JobOutcome::Waiting {
            kind: MessageKind::Away,
            position: 1
        }
    );
    w.assigner.drain("*").await.unwrap();
    assert_eq!(
        w.store.waiting("support").await.unwrap().len(),
        1,
        "still closed"
    );
    w.clock.set_unix(before + 45 * 60); // 09:15 Berlin
    let r = w
        .assigner
        .handle(sqs_event(&[AssignmentJob::Drain {
            team_id: "*".into(),
            reason: "schedule".into(),
        }]))
        .await;
    assert!(r.batch_item_failures.is_empty());
    assert!(w.store.waiting("support").await.unwrap().is_empty());
    let msgs = outbound(&w).await;
    assert_eq!(
        msgs.iter().map(|m| m.dedup_id.as_str()).collect::<Vec<_>>(),
        [
            "asg:conv-001:handoff:conv-001:away",
            "asg:conv-001:handoff:conv-001:assigned"
        ]
    );
}

#[tokio::test]
async fn outside_the_window_a_template_goes_out() {
    let w = world(None).await;
    let mut t = team("support", Strategy::RoundRobin);
    t.templates
        .insert(MessageKind::Assigned, "agent_assigned".into());
    setup(&w, &t, &[agent("ann", "support", 5)]).await;
    let mut req = request(1, NOON - 25 * 3600);
    req.language = "de".into();
    w.assigner.assign(req).await.unwrap();
    let msgs = outbound(&w).await;
    assert_eq!(
        msgs[0].body,
        OutboundBody::Template {
            name: "agent_assigned".into(),
            language: "de".into(),
            body_parameters: vec!["Agent ann".into()]
        }
    );
}

#[tokio::test]
async fn the_agent_is_notified_by_signed_webhook_and_a_failure_is_retried_later() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let w = world(Some("hook-secret")).await;
    let mut t = team("support", Strategy::RoundRobin);
    t.notify_url = Some(format!("{}/agents/hook", server.uri()));
    setup(&w, &t, &[agent("ann", "support", 5)]).await;

    // The help desk is down: the job still succeeds, the ticket keeps its notification due.
    let down = Mock::given(method("POST"))
        .and(path("/agents/hook"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&server)
        .await;
    let job = AssignmentJob::Assign(request(1, NOON));
    let r = w
        .assigner
        .handle(sqs_event(std::slice::from_ref(&job)))
        .await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(down.received_requests().await.len(), 1);
    drop(down);
    let pending = w.store.unannounced("support").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].contact_told && pending[0].notify_attempts == 1);

    Mock::given(method("POST"))
        .and(path("/agents/hook"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    // Not due yet: the redelivered job does not post again; after the back-off the sweep does.
    w.assigner
        .handle(sqs_event(std::slice::from_ref(&job)))
        .await;
    w.clock.advance(61);
    w.assigner.drain("*").await.unwrap();
    assert!(w.store.unannounced("support").await.unwrap().is_empty());
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 1);

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2, "one failed and one successful post");
    let last = reqs.last().unwrap();
    let ts: i64 = last
        .headers
        .get(TIMESTAMP_HEADER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = last
        .headers
        .get(SIGNATURE_HEADER)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(sig, signature(&Secret::new("hook-secret"), ts, &last.body));
    let body: serde_json::Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["conversation_id"], "conv-001");
    assert_eq!(body["agent_id"], "ann");
    assert_eq!(outbound(&w).await.len(), 1, "the contact heard it once");
}

async fn admin(w: &World, args: &[&str]) -> Result<String, prechat::admin::AdminError> {
    let mut all = vec!["--table".to_string(), w.env.table("StateTable").to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    prechat::admin::run(all).await
}

#[tokio::test]
async fn admin_commands_manage_agents_teams_and_the_line_and_closing_queues_a_drain() {
    let w = world(None).await;
    let dir = std::env::temp_dir().join(format!("prechat-admin-{}", w.env.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let team_file = dir.join("team.json");
    std::fs::write(
        &team_file,
        r#"{"id":"support","name":"Support","strategy":"least_open",
            "hours":{"time_zone":"Europe/Berlin","weekly":{"mon":["00:00-24:00"]},"holidays":["2026-12-25"]},
            "messages":{"en":{"assigned":"Hi, {{agent.name}} here.","away":"Away.","overload":"You are #{{queue.position}}."}}}"#,
    )
    .unwrap();
    let routing_file = dir.join("routing.json");
    std::fs::write(&routing_file, r#"{"default_team":"support","rules":[{"name":"billing","team":"billing","when":[{"subject":"answer.inquiry_type","op":"in","values":["billing"]}]}]}"#).unwrap();
    let bad_team = dir.join("bad.json");
    std::fs::write(
        &bad_team,
        r#"{"id":"x","name":"X","hours":{"time_zone":"Mars/Olympus"}}"#,
    )
    .unwrap();

    let out = admin(&w, &["team", "add", team_file.to_str().unwrap()])
        .await
        .unwrap();
    assert!(
        out.starts_with("team support saved; no assignment queue given"),
        "{out}"
    );
    let err = admin(&w, &["team", "add", bad_team.to_str().unwrap()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown time zone \"Mars/Olympus\""), "{err}");
    let err = admin(&w, &["routing", "set", routing_file.to_str().unwrap()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown team(s): billing"), "{err}");
    std::fs::write(&routing_file, r#"{"default_team":"support"}"#).unwrap();
    admin(&w, &["routing", "set", routing_file.to_str().unwrap()])
        .await
        .unwrap();

    admin(
        &w,
        &[
            "agent",
            "add",
            "ann",
            "--name",
            "Ann",
            "--teams",
            "support",
            "--capacity",
            "1",
            "--languages",
            "en,de",
        ],
    )
    .await
    .unwrap();
    let err = admin(
        &w,
        &["agent", "add", "ann", "--name", "Ann", "--teams", "support"],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("use `agent update`"), "{err}");
    let err = admin(&w, &["agent", "status", "ann", "busy"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown status"), "{err}");
    // New agents start offline: the first contact hears the away message.
    w.clock.set_unix(NOON);
    assert_eq!(
        w.assigner.assign(request(1, NOON - 10)).await.unwrap(),
        JobOutcome::Waiting {
            kind: MessageKind::Away,
            position: 1
        }
    );

    let queue = w.env.queue_url("AssignmentQueue").to_string();
    let out = admin(
        &w,
        &[
            "agent",
            "status",
            "ann",
            "online",
            "--assignment-queue",
            &queue,
        ],
    )
    .await
    .unwrap();
    assert!(out.ends_with("drain queued for support"), "{out}");
    let drain_jobs = w.env.receive_all("AssignmentQueue").await;
    assert_eq!(drain_jobs.len(), 1);
    let job: AssignmentJob = serde_json::from_str(drain_jobs[0].body().unwrap()).unwrap();
    assert_eq!(
        job,
        AssignmentJob::Drain {
            team_id: "support".into(),
            reason: "agent ann changed".into()
        }
    );
    assert!(w
        .assigner
        .handle(sqs_event(&[job]))
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(
        w.store
            .get_ticket("conv-001")
            .await
            .unwrap()
            .unwrap()
            .agent
            .as_deref(),
        Some("ann")
    );

    assert_eq!(
        w.assigner.assign(request(2, NOON - 5)).await.unwrap(),
        JobOutcome::Waiting {
            kind: MessageKind::Overload,
            position: 1
        }
    );
    let line = admin(&w, &["waiting", "support"]).await.unwrap();
    assert!(
        line.starts_with("1\tconv-002\t-\t2026-11-23T11:59:55+00:00\ten"),
        "{line}"
    );
    let agents = admin(&w, &["agent", "list"]).await.unwrap();
    assert_eq!(
        agents,
        "ann\tAnn\tonline\t1/1\tteams=support\tlanguages=en,de"
    );

    let out = admin(
        &w,
        &[
            "conversation",
            "close",
            "conv-001",
            "--by",
            "ann",
            "--assignment-queue",
            &queue,
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        "conversation conv-001 closed (ann has a free slot); drain queued for support"
    );
    let job: AssignmentJob = serde_json::from_str(
        w.env.receive_all("AssignmentQueue").await[0]
            .body()
            .unwrap(),
    )
    .unwrap();
    assert!(w
        .assigner
        .handle(sqs_event(&[job]))
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(
        admin(&w, &["waiting", "support"]).await.unwrap(),
        "nobody is waiting for support"
    );
    let texts: Vec<String> = outbound(&w)
        .await
        .iter()
        .map(|m| text(m).to_owned())
        .collect();
    assert_eq!(
        texts,
        ["Away.", "Hi, Ann here.", "You are #1.", "Hi, Ann here."]
    );
    let err = admin(&w, &["conversation", "close", "conv-404"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("never handed off"), "{err}");
    assert!(admin(&w, &["help"])
        .await
        .unwrap()
        .contains("conversation close CONVERSATION_ID"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn sample_events_and_the_scheduled_sweep_run_through_the_handler() {
    let w = world(None).await;
    let t = team("billing", Strategy::RoundRobin);
    setup(&w, &t, &[agent("ann", "billing", 2)]).await;
    let root = prechat_tests::workspace_root();
    let sample: SqsEvent = serde_json::from_str(
        &std::fs::read_to_string(root.join("events/agent-assigner.json")).unwrap(),
    )
    .unwrap();
    assert!(w
        .assigner
        .handle(sample)
        .await
        .batch_item_failures
        .is_empty());
    let ticket = w
        .store
        .get_ticket("conv-20261123-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.agent.as_deref(), Some("ann"));

    // The schedule's constant input in the template is the sweep event file.
    let sweep_text =
        std::fs::read_to_string(root.join("events/agent-assigner-sweep.json")).unwrap();
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(prechat_tests::template_path()).unwrap())
            .unwrap();
    let input = template["Resources"]["AgentAssignerFunction"]["Properties"]["Events"]["Sweep"]
        ["Properties"]["Input"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(input).unwrap(),
        serde_json::from_str::<serde_json::Value>(&sweep_text).unwrap()
    );

    // A crash between reserving a slot and taking the ticket leaves a reservation for a
    // conversation that is not assigned to the agent; the sweep frees it once it is old enough.
    w.env
        .dynamo
        .update_item()
        .table_name(w.env.table("StateTable"))
        .key("pk", AttributeValue::S("AGENT#ann".into()))
        .key("sk", AttributeValue::S("AGENT".into()))
        .update_expression("SET #open = #open + :one, convs.#c = :at")
        .expression_attribute_names("#open", "open")
        .expression_attribute_names("#c", "conv-crashed")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":at", AttributeValue::N((NOON - 30).to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 2);
    let sweep: SqsEvent = serde_json::from_str(&sweep_text).unwrap();
    assert!(w
        .assigner
        .handle(sweep.clone())
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(
        w.store.get_agent("ann").await.unwrap().unwrap().open,
        2,
        "too young: may be in flight"
    );
    w.clock.set_unix(NOON + 300);
    assert!(w
        .assigner
        .handle(sweep)
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(
        w.store.get_agent("ann").await.unwrap().unwrap().open,
        1,
        "leaked slot freed, real one kept"
    );
    assert_eq!(w.store.reservations("ann").await.unwrap().len(), 1);
}

/// The real binary under cargo-lambda's runtime emulator: `from_env`, the thin `main`, the
/// sample event; and the logs never carry the contact's phone number or BSUID.
#[tokio::test(flavor = "multi_thread")]
async fn agent_assigner_binary_handles_the_sample_event_under_cargo_lambda() {
    let w = world(None).await;
    let t = team("billing", Strategy::RoundRobin);
    setup(&w, &t, &[agent("ann", "billing", 2)]).await;
    let endpoint = prechat_tests::endpoint();
    let table = w.env.table("StateTable").to_string();
    let outbound_url = w.env.queue_url("OutboundQueue").to_string();
    let dlq_url = w.env.queue_url("AssignmentDeadLetterQueue").to_string();
    let reply = tokio::task::spawn_blocking(move || {
        let emulator = prechat_tests::lambda::Emulator::start(
            "agent-assigner",
            &[
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("PRECHAT_TABLE", table.as_str()),
                ("PRECHAT_OUTBOUND_QUEUE_URL", outbound_url.as_str()),
                ("PRECHAT_ASSIGNMENT_DLQ_URL", dlq_url.as_str()),
                ("PRECHAT_LOG_KEY", "local-log-key"),
            ],
        );
        // The sample keeps its fixed timestamps; the test moves them to now so the contact is
        // inside the 24-hour window on whatever day it runs.
        let events = prechat_tests::workspace_root().join("events");
        let event = rebased_sample(&events.join("agent-assigner.json"));
        let reply = emulator.invoke_file("agent-assigner", event.path());
        (reply, emulator.log_text())
    })
    .await
    .unwrap();
    let (reply, log) = reply;
    assert_eq!(
        reply["batchItemFailures"],
        serde_json::json!([]),
        "{reply}\n{log}"
    );
    assert_eq!(
        w.store
            .get_ticket("conv-20261123-0001")
            .await
            .unwrap()
            .unwrap()
            .agent
            .as_deref(),
        Some("ann")
    );
    assert!(log.contains("assigned"), "{log}");
    for secret in ["16505551234", "US.13491208655302741918", "Priya"] {
        assert!(!log.contains(secret), "{secret} logged in clear:\n{log}");
    }
    let msgs = outbound(&w).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        text(&msgs[0]),
        "You are now talking to Agent ann. They will reply here shortly."
    );
}

/// The sample event with each assign job's `last_inbound_at`/`requested_at` moved to now (same
/// gap as in the file), written to a temporary file that is removed on drop.
fn rebased_sample(path: &std::path::Path) -> prechat_tests::TempFile {
    let now = chrono::Utc::now().timestamp();
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for record in event["Records"].as_array_mut().unwrap() {
        let mut body: serde_json::Value =
            serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
        if let (Some(inbound), Some(requested)) = (
            body["last_inbound_at"].as_i64(),
            body["requested_at"].as_i64(),
        ) {
            body["last_inbound_at"] = (now - (requested - inbound)).into();
            body["requested_at"] = now.into();
            record["body"] = body.to_string().into();
        }
    }
    prechat_tests::TempFile::with_contents("agent-assigner", &event.to_string())
}

#[tokio::test]
async fn a_conversation_closed_by_the_engine_is_not_assigned() {
    let w = world(None).await;
    let t = team("support", Strategy::RoundRobin);
    setup(&w, &t, &[agent("ann", "support", 1)]).await;
    // The survey engine closed the conversation (e.g. the contact wrote "stop").
    w.env
        .dynamo
        .put_item()
        .table_name(w.env.table("StateTable"))
        .item("pk", AttributeValue::S("CONV#conv-001".into()))
        .item("sk", AttributeValue::S("CONV".into()))
        .item("closed_at", AttributeValue::N(NOON.to_string()))
        .item("closed_by", AttributeValue::S("contact".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        w.assigner.assign(request(1, NOON)).await.unwrap(),
        JobOutcome::AlreadyClosed
    );
    let ticket = w.store.get_ticket("conv-001").await.unwrap().unwrap();
    assert_eq!(ticket.state, TicketState::Closed);
    let ann = w.store.get_agent("ann").await.unwrap().unwrap();
    assert_eq!(ann.open, 0, "the slot was given back");
    assert!(w.store.reservations("ann").await.unwrap().is_empty());
    assert!(
        outbound(&w).await.is_empty(),
        "nothing is sent to a closed conversation"
    );
    // The engine's attributes are untouched.
    let conv = conv_item(&w, "conv-001").await;
    assert_eq!(conv["closed_by"].as_s().unwrap(), "contact");
    assert!(!conv.contains_key("assigned_agent"));
    // The next conversation gets the slot.
    assert_eq!(
        w.assigner.assign(request(2, NOON)).await.unwrap(),
        JobOutcome::Assigned {
            agent: "ann".into()
        }
    );
}

// ---------------------------------------------------------------- hand-off correctness

fn cancel_job(i: usize, reason: CancelReason, at: i64) -> AssignmentJob {
    let r = request(i, at);
    AssignmentJob::Cancel(CancelRequest {
        job_id: format!("conv-{i:03}:cancel:{at}"),
        phone_number_id: r.phone_number_id,
        contact: r.contact,
        conversation_id: r.conversation_id,
        reason,
        requested_at: at,
    })
}

async fn run(w: &World, job: AssignmentJob) {
    let r = w.assigner.handle(sqs_event(&[job])).await;
    assert!(r.batch_item_failures.is_empty(), "{r:?}");
}

/// The conversation item as the survey engine keeps it (only what the assigner reads).
async fn engine_saw_inbound(w: &World, conv: &str, last_inbound_at: i64) {
    w.env
        .dynamo
        .update_item()
        .table_name(w.env.table("StateTable"))
        .key("pk", AttributeValue::S(format!("CONV#{conv}")))
        .key("sk", AttributeValue::S("CONV".into()))
        .update_expression("SET last_inbound_at = :t")
        .expression_attribute_values(":t", AttributeValue::N(last_inbound_at.to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_webhook_answering_500_forever_never_blocks_the_team_and_is_given_up() {
    use wiremock::{matchers::method, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let w = world(Some("hook-secret")).await;
    let mut t = team("support", Strategy::RoundRobin);
    t.notify_url = Some(format!("{}/hook", server.uri()));
    setup(&w, &t, &[agent("ann", "support", 5)]).await;

    // Both jobs succeed and both contacts hear who their agent is.
    run(&w, AssignmentJob::Assign(request(1, NOON))).await;
    run(&w, AssignmentJob::Assign(request(2, NOON))).await;
    let msgs = outbound(&w).await;
    assert_eq!(msgs.len(), 2);
    assert!(msgs
        .iter()
        .all(|m| text(m).starts_with("You are now talking to Agent ann")));
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 2);

    // The sweep retries each notification after its back-off until it is given up.
    for _ in 0..30 {
        if w.store.unannounced("support").await.unwrap().is_empty() {
            break;
        }
        w.clock.advance(31 * 60);
        w.assigner.drain("*").await.unwrap();
    }
    assert!(w.store.unannounced("support").await.unwrap().is_empty());
    let posts = server.received_requests().await.unwrap();
    assert_eq!(
        posts.len() as u32,
        2 * MAX_NOTIFY_ATTEMPTS,
        "each ticket tried N times"
    );
    assert!(
        outbound(&w).await.is_empty(),
        "the contacts were not told again"
    );
}

#[tokio::test]
async fn stop_while_waiting_takes_the_ticket_out_of_the_line_at_once() {
    let w = world(None).await;
    setup(
        &w,
        &team("support", Strategy::RoundRobin),
        &[agent("ann", "support", 1)],
    )
    .await;
    for i in 1..=3 {
        run(&w, AssignmentJob::Assign(request(i, NOON + i as i64))).await;
    }
    run(&w, cancel_job(2, CancelReason::Stopped, NOON + 10)).await;

    let line = w.store.waiting("support").await.unwrap();
    assert_eq!(
        line.iter()
            .map(|t| t.conversation_id.as_str())
            .collect::<Vec<_>>(),
        ["conv-003"]
    );
    assert_eq!(w.store.position(&line[0]).await.unwrap(), 1);
    let stopped = w.store.get_ticket("conv-002").await.unwrap().unwrap();
    assert_eq!(stopped.state, TicketState::Closed);
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 1);
    // Repeating the job changes nothing.
    run(&w, cancel_job(2, CancelReason::Stopped, NOON + 10)).await;
    assert_eq!(w.store.waiting("support").await.unwrap().len(), 1);
}

#[tokio::test]
async fn cancelling_an_assigned_ticket_frees_the_agent_for_the_next_in_line() {
    let w = world(None).await;
    setup(
        &w,
        &team("support", Strategy::RoundRobin),
        &[agent("ann", "support", 1)],
    )
    .await;
    run(&w, AssignmentJob::Assign(request(1, NOON))).await;
    run(&w, AssignmentJob::Assign(request(2, NOON + 1))).await;
    outbound(&w).await;

    run(&w, cancel_job(1, CancelReason::Restarted, NOON + 10)).await;

    let next = w.store.get_ticket("conv-002").await.unwrap().unwrap();
    assert_eq!(
        (next.state, next.agent.as_deref()),
        (TicketState::Assigned, Some("ann"))
    );
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 1);
    let held: Vec<String> = w
        .store
        .reservations("ann")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(held, ["conv-002"]);
    let msgs = outbound(&w).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].conversation_id.as_deref(), Some("conv-002"));
    // The restarted conversation goes on: not closed, no longer assigned.
    let conv = conv_item(&w, "conv-001").await;
    assert!(
        !conv.contains_key("closed_at") && !conv.contains_key("assigned_agent"),
        "{conv:?}"
    );
}

#[tokio::test]
async fn after_a_restart_the_new_answers_replace_the_old_on_the_ticket_and_reach_the_agent() {
    use wiremock::{matchers::method, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let w = world(Some("hook-secret")).await;
    let mut t = team("support", Strategy::RoundRobin);
    t.notify_url = Some(format!("{}/hook", server.uri()));
    setup(&w, &t, &[agent("ann", "support", 1)]).await;
    let mut first = request(1, NOON);
    first.answers.insert("issue".into(), "old".into());
    run(&w, AssignmentJob::Assign(first)).await;

    run(&w, cancel_job(1, CancelReason::Restarted, NOON + 10)).await;
    let mut second = request(1, NOON + 20);
    second.job_id = "handoff:conv-001:again".into();
    second.answers.insert("issue".into(), "new".into());
    run(&w, AssignmentJob::Assign(second)).await;

    let ticket = w.store.get_ticket("conv-001").await.unwrap().unwrap();
    assert_eq!(ticket.state, TicketState::Assigned);
    assert_eq!(ticket.request.answers["issue"], "new");
    assert_eq!(w.store.get_agent("ann").await.unwrap().unwrap().open, 1);
    let posts = server.received_requests().await.unwrap();
    let last: serde_json::Value = serde_json::from_slice(&posts.last().unwrap().body).unwrap();
    assert_eq!(posts.len(), 2);
    assert_eq!(last["answers"]["issue"], "new");
}

#[tokio::test]
async fn a_superseding_hand_off_replaces_the_open_one() {
    let w = world(None).await;
    setup(
        &w,
        &team("support", Strategy::RoundRobin),
        &[agent("ann", "support", 1)],
    )
    .await;
    run(&w, AssignmentJob::Assign(request(1, NOON))).await;
    let mut again = request(1, NOON + 5);
    again.job_id = "handoff:conv-001:restart".into();
    again.answers.insert("issue".into(), "new".into());
    again.supersedes = true;
    run(&w, AssignmentJob::Assign(again)).await;
    let ticket = w.store.get_ticket("conv-001").await.unwrap().unwrap();
    assert_eq!(ticket.job_id, "handoff:conv-001:restart");
    assert_eq!(ticket.state, TicketState::Assigned);
    assert_eq!(ticket.request.answers["issue"], "new");
    assert_eq!(
        w.store.get_agent("ann").await.unwrap().unwrap().open,
        1,
        "one slot, not two"
    );
}

#[tokio::test]
async fn the_window_counts_from_the_contacts_latest_message_while_waiting() {
    let w = world(None).await;
    let mut t = team("support", Strategy::RoundRobin);
    t.templates
        .insert(MessageKind::Assigned, "agent_assigned".into());
    setup(&w, &t, &[agent("ann", "support", 1)]).await;
    let handoff = NOON;
    run(&w, AssignmentJob::Assign(request(1, handoff - 60))).await;
    engine_saw_inbound(&w, "conv-002", handoff).await;
    run(&w, AssignmentJob::Assign(request(2, handoff))).await;
    outbound(&w).await;
    // The contact writes again 23 hours into the wait; the engine records it.
    engine_saw_inbound(&w, "conv-002", handoff + 23 * 3600).await;

    // Ann frees up 25 hours after the hand-off.
    w.clock.set_unix(handoff + 25 * 3600);
    w.store
        .close("conv-001", "ann", handoff + 25 * 3600)
        .await
        .unwrap();
    w.assigner.drain("support").await.unwrap();

    let msgs = outbound(&w).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        text(&msgs[0]),
        "You are now talking to Agent ann. They will reply here shortly."
    );
    assert_eq!(msgs[0].last_inbound_at, Some(handoff + 23 * 3600));
}

#[tokio::test]
async fn a_retried_overloaded_job_announces_one_place_in_line() {
    let w = world(None).await;
    setup(
        &w,
        &team("support", Strategy::RoundRobin),
        &[agent("ann", "support", 1)],
    )
    .await;
    run(&w, AssignmentJob::Assign(request(1, NOON))).await;
    run(&w, AssignmentJob::Assign(request(2, NOON + 1))).await;
    let job = AssignmentJob::Assign(request(3, NOON + 2));
    run(&w, job.clone()).await;
    // The one ahead leaves the line; then the same job is delivered again.
    w.store
        .close("conv-002", "contact", NOON + 3)
        .await
        .unwrap();
    run(&w, job).await;

    let mine: Vec<OutboundMessage> = outbound(&w)
        .await
        .into_iter()
        .filter(|m| m.conversation_id.as_deref() == Some("conv-003"))
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(
        text(&mine[0]).contains("number 2 in line"),
        "{}",
        text(&mine[0])
    );
}

#[tokio::test]
async fn the_assigner_starts_with_only_the_parameters_the_deploy_section_names() {
    let env = TestEnv::new().await;
    let table = env.table("StateTable").to_string();
    let queue = env.queue_url("OutboundQueue").to_string();
    let dlq = env.queue_url("AssignmentDeadLetterQueue").to_string();
    let secret_param = format!("/{}/agent-webhook-secret", env.prefix);
    let start = |param: String| {
        let (table, queue, dlq) = (table.clone(), queue.clone(), dlq.clone());
        let log_key = format!("/{}/log-key", env.prefix);
        let lookup = move |k: &str| match k {
            "PRECHAT_TABLE" => Some(table.clone()),
            "PRECHAT_OUTBOUND_QUEUE_URL" => Some(queue.clone()),
            "PRECHAT_ASSIGNMENT_DLQ_URL" => Some(dlq.clone()),
            "PRECHAT_AGENT_WEBHOOK_SECRET_PARAM" => Some(param.clone()),
            // Named by the template, never created by the deploy steps.
            "PRECHAT_LOG_KEY_PARAM" => Some(log_key.clone()),
            "AWS_LAMBDA_INITIALIZATION_TYPE" => Some("on-demand".into()),
            _ => None,
        };
        AgentAssigner::from_lookup(&env.sdk, lookup)
    };
    // The template's default parameter name, not created; and an empty template parameter.
    assert!(!start(secret_param.clone()).await.unwrap().notifies());
    assert!(!start("/".into()).await.unwrap().notifies());
    env.put_secret(&secret_param, "hook-secret").await;
    assert!(start(secret_param).await.unwrap().notifies());
}

#[tokio::test]
async fn notify_urls_that_only_look_local_are_refused_when_stored_and_before_sending() {
    let w = world(Some("hook-secret")).await;
    let file = prechat_tests::TempFile::with_contents(
        "team",
        r#"{"id":"support","name":"Support","notify_url":"http://127.0.0.1.nip.io/hook"}"#,
    );
    let err = admin(&w, &["team", "add", file.path().to_str().unwrap()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("notify_url"), "{err}");
    // A team stored before the check: assignment goes on, the notification is refused.
    let mut t = team("support", Strategy::RoundRobin);
    t.notify_url = Some("http://localhost.example.com/hook".into());
    setup(&w, &t, &[agent("ann", "support", 1)]).await;
    run(&w, AssignmentJob::Assign(request(1, NOON))).await;
    let ticket = w.store.get_ticket("conv-001").await.unwrap().unwrap();
    assert!(ticket.state == TicketState::Assigned && ticket.announced);
    assert_eq!(outbound(&w).await.len(), 1);
}
