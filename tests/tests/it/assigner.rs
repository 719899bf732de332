//! agent-assigner against moto (table and queues from the template) and wiremock (the team's
//! notification webhook): capacity under concurrency, line order, presence, idempotency,
//! business hours, the 24-hour window, the admin CLI and the sweep. One behaviour per test; the
//! situations they share are built by the helpers next to them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeZone, Utc};
use prechat::entrypoints::assigner::{AgentAssigner, JobOutcome, MAX_NOTIFY_ATTEMPTS};
use prechat::queue::FifoContract;
use prechat::routing::job::{
    AssignRequest, AssignmentJob, CancelReason, CancelRequest, HandoffReason,
};
use prechat::routing::model::{Agent, AgentStatus, MessageKind, Strategy, Team};
use prechat::routing::notify::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use prechat::routing::rules::RoutingConfig;
use prechat::secrets::Secret;
use prechat::store::routing::{CloseOutcome, Ticket, TicketState};
use prechat::transcript::{Author, Body, Event};
use prechat::whatsapp::outbound::{OutboundBody, OutboundMessage};
use prechat::whatsapp::ContactRef;
use prechat_tests::{sqs, TempFile, TestApp, TestEnv};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Mon 2026-11-23 12:00 UTC.
const NOON: i64 = 1_795_435_200;

const ASSIGNED_TO_ANN: &str = "You are now talking to Agent ann. They will reply here shortly.";

/// The app at noon on a Monday; agents notified with `secret` when given.
async fn world(secret: Option<&str>) -> TestApp {
    let mut w = TestApp::spawn_at(NOON).await;
    if secret.is_some() {
        w.assigner = Arc::new(w.assigner_with(secret));
    }
    w
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
        leads: vec![],
        sub: None,
    }
}

fn routing(default_team: &str) -> RoutingConfig {
    serde_json::from_value(serde_json::json!({
        "default_team": default_team,
        "vip": {"customers": [{"customer_id": "VIP-1", "terms": "platinum contract"}]}
    }))
    .unwrap()
}

async fn setup(w: &TestApp, t: &Team, agents: &[Agent]) {
    w.routing().put_team(t).await.unwrap();
    w.routing().put_routing(&routing(&t.id)).await.unwrap();
    for a in agents {
        w.routing().upsert_agent(a).await.unwrap();
    }
}

/// Team `support` (round robin, changed by `edit`) whose only agent, ann, has room for
/// `capacity` conversations.
async fn support_world_with(
    secret: Option<&str>,
    capacity: u32,
    edit: impl FnOnce(&mut Team),
) -> TestApp {
    let w = world(secret).await;
    let mut t = team("support", Strategy::RoundRobin);
    edit(&mut t);
    setup(&w, &t, &[agent("ann", "support", capacity)]).await;
    w
}

async fn support_world(capacity: u32) -> TestApp {
    support_world_with(None, capacity, |_| {}).await
}

/// Team `support` posting to `server` at `/hook`, signed with "hook-secret".
async fn notifying_world(server: &MockServer, capacity: u32) -> TestApp {
    let url = format!("{}/hook", server.uri());
    support_world_with(Some("hook-secret"), capacity, |t| t.notify_url = Some(url)).await
}

/// A webhook that answers every post with `status`.
async fn hook_answering(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
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
        vars: Default::default(),
    }
}

fn assign(i: usize, requested_at: i64) -> AssignmentJob {
    AssignmentJob::Assign(request(i, requested_at))
}

fn drain(team_id: &str, reason: &str) -> AssignmentJob {
    AssignmentJob::Drain {
        team_id: team_id.into(),
        reason: reason.into(),
    }
}

fn assigned(agent: &str) -> JobOutcome {
    JobOutcome::Assigned {
        agent: agent.into(),
    }
}

fn waiting(kind: MessageKind, position: u32) -> JobOutcome {
    JobOutcome::Waiting { kind, position }
}

/// Hands `job` to the handler and asserts it succeeded.
async fn run(w: &TestApp, job: AssignmentJob) {
    let r = w.assigner.handle(sqs::fifo_event(&[job])).await;
    assert!(r.batch_item_failures.is_empty(), "{r:?}");
}

async fn outbound(w: &TestApp) -> Vec<OutboundMessage> {
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

/// Asserts that `m`'s text starts with `prefix`, showing the text when it does not.
#[track_caller]
fn assert_starts_with(m: &OutboundMessage, prefix: &str) {
    assert!(text(m).starts_with(prefix), "{}", text(m));
}

/// Asserts that `m`'s text contains `part`, showing the text when it does not.
#[track_caller]
fn assert_contains(m: &OutboundMessage, part: &str) {
    assert!(text(m).contains(part), "{}", text(m));
}

async fn conv_item(w: &TestApp, conv: &str) -> HashMap<String, AttributeValue> {
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

async fn ticket(w: &TestApp, conv: &str) -> Ticket {
    w.routing().get_ticket(conv).await.unwrap().unwrap()
}

async fn agent_of(w: &TestApp, conv: &str) -> Option<String> {
    ticket(w, conv).await.agent
}

/// How many conversations `agent` holds.
async fn open(w: &TestApp, agent: &str) -> u32 {
    w.routing().get_agent(agent).await.unwrap().unwrap().open
}

/// The conversations waiting for `team`, in line order.
async fn line(w: &TestApp, team: &str) -> Vec<String> {
    w.routing()
        .waiting(team)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.conversation_id)
        .collect()
}

async fn set_status(w: &TestApp, agent: &str, status: AgentStatus) {
    w.routing()
        .set_agent(agent, Some(status), None)
        .await
        .unwrap();
}

// ---------------------------------------------------------------- a burst of fifty

/// Fifty contacts hand off at once to three agents with room for five each (least open); each
/// contact is its own FIFO group, so Lambda runs the jobs concurrently. Every job succeeds.
async fn burst() -> TestApp {
    let w = world(None).await;
    let t = team("support", Strategy::LeastOpen);
    let agents = ["ann", "bob", "cid"].map(|id| agent(id, "support", 5));
    setup(&w, &t, &agents).await;
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let a = w.assigner.clone();
        let job = assign(i, NOON - 1000 + i as i64);
        tasks.spawn(async move { a.handle(sqs::fifo_event(&[job])).await });
    }
    while let Some(res) = tasks.join_next().await {
        assert!(res.unwrap().batch_item_failures.is_empty());
    }
    // Reported, never asserted: moto's speed says nothing about DynamoDB's.
    eprintln!(
        "50 concurrent jobs handled against moto in {:?}",
        started.elapsed()
    );
    w
}

/// Everything the burst tests look at, read once after the burst in this order; then a
/// newcomer (conv-050) hands off once the burst is over.
struct BurstSnapshot {
    agents: Vec<Agent>,
    /// The fifty tickets, by conversation id.
    tickets: Vec<Ticket>,
    /// The conversation items of the assigned tickets.
    assigned_convs: HashMap<String, HashMap<String, AttributeValue>>,
    /// Per agent: each reserved conversation with the agent its ticket names.
    held: HashMap<String, Vec<(String, Option<String>)>>,
    reconciled: u32,
    /// The line with each ticket's position.
    line: Vec<(String, u32)>,
    /// What each contact heard, in their FIFO order.
    heard: BTreeMap<String, Vec<OutboundMessage>>,
    newcomer: JobOutcome,
    newcomer_heard: Vec<OutboundMessage>,
}

async fn take_burst_snapshot() -> BurstSnapshot {
    let w = burst().await;
    let agents = w.routing().list_agents().await.unwrap();
    let mut tickets = Vec::new();
    let mut assigned_convs = HashMap::new();
    for i in 0..50 {
        let t = ticket(&w, &format!("conv-{i:03}")).await;
        if t.state == TicketState::Assigned {
            let conv = conv_item(&w, &t.conversation_id).await;
            assigned_convs.insert(t.conversation_id.clone(), conv);
        }
        tickets.push(t);
    }
    let mut held = HashMap::new();
    for a in &agents {
        let mut convs = Vec::new();
        for (conv, _) in w.routing().reservations(&a.id).await.unwrap() {
            let agent = agent_of(&w, &conv).await;
            convs.push((conv, agent));
        }
        held.insert(a.id.clone(), convs);
    }
    let reconciled = w.routing().reconcile(NOON + 3600, 120).await.unwrap();
    let mut line = Vec::new();
    for t in w.routing().waiting("support").await.unwrap() {
        let position = w.routing().position(&t).await.unwrap();
        line.push((t.conversation_id, position));
    }
    let mut heard: BTreeMap<String, Vec<OutboundMessage>> = BTreeMap::new();
    for m in outbound(&w).await {
        heard
            .entry(m.conversation_id.clone().unwrap())
            .or_default()
            .push(m);
    }
    let newcomer = w.assigner.assign(request(50, NOON)).await.unwrap();
    let newcomer_heard = outbound(&w).await;
    BurstSnapshot {
        agents,
        tickets,
        assigned_convs,
        held,
        reconciled,
        line,
        heard,
        newcomer,
        newcomer_heard,
    }
}

/// The burst runs once for all its tests (against moto it takes seconds), on a runtime of its
/// own so that no test's runtime owns the SDK clients it uses.
fn burst_snapshot() -> &'static BurstSnapshot {
    static SNAPSHOT: std::sync::OnceLock<BurstSnapshot> = std::sync::OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(take_burst_snapshot())
        })
        .join()
        .unwrap()
    })
}

fn assigned_per_agent(tickets: &[Ticket]) -> HashMap<String, u32> {
    let mut per_agent = HashMap::new();
    for t in tickets.iter().filter(|t| t.state == TicketState::Assigned) {
        *per_agent.entry(t.agent.clone().unwrap()).or_default() += 1;
    }
    per_agent
}

fn waiting_convs(tickets: &[Ticket]) -> Vec<String> {
    tickets
        .iter()
        .filter(|t| t.state == TicketState::Waiting)
        .map(|t| t.conversation_id.clone())
        .collect()
}

#[test]
fn a_burst_of_fifty_fills_every_agent_exactly() {
    let b = burst_snapshot();
    assert_eq!(
        b.agents.iter().map(|a| a.open).collect::<Vec<_>>(),
        [5, 5, 5],
        "every agent exactly full"
    );
    let per_agent = assigned_per_agent(&b.tickets);
    assert_eq!(per_agent.values().sum::<u32>(), 15);
    assert!(per_agent.values().all(|n| *n == 5), "{per_agent:?}");
}

#[test]
fn a_burst_of_fifty_leaves_the_other_thirty_five_waiting() {
    let b = burst_snapshot();
    assert!(
        b.tickets.iter().all(|t| t.state != TicketState::Closed),
        "nothing was closed"
    );
    assert_eq!(waiting_convs(&b.tickets).len(), 35);
}

#[test]
fn a_burst_records_each_assignment_on_its_conversation() {
    let b = burst_snapshot();
    for t in b
        .tickets
        .iter()
        .filter(|t| t.state == TicketState::Assigned)
    {
        let conv = &b.assigned_convs[&t.conversation_id];
        assert_eq!(
            conv["assigned_agent"].as_s().unwrap(),
            t.agent.as_ref().unwrap()
        );
        assert_eq!(conv["assigned_team"].as_s().unwrap(), "support");
    }
}

/// Every slot is traceable to its conversation, and to nothing else.
#[test]
fn a_burst_leaves_every_slot_traceable_to_its_ticket() {
    let b = burst_snapshot();
    let per_agent = assigned_per_agent(&b.tickets);
    for a in &b.agents {
        let held = &b.held[&a.id];
        assert_eq!(held.len() as u32, per_agent[&a.id], "{}", a.id);
        for (_, agent) in held {
            assert_eq!(agent.as_deref(), Some(a.id.as_str()));
        }
    }
}

#[test]
fn a_burst_leaks_no_slot() {
    assert_eq!(burst_snapshot().reconciled, 0, "nothing leaked");
}

/// The line holds exactly the waiting ones, oldest first, and positions count from 1.
#[test]
fn a_burst_lines_up_the_waiting_oldest_first() {
    let b = burst_snapshot();
    let line_convs: Vec<String> = b.line.iter().map(|(conv, _)| conv.clone()).collect();
    assert_eq!(
        line_convs,
        waiting_convs(&b.tickets),
        "conversation ids sort like their requested_at"
    );
    for (i, (_, position)) in b.line.iter().enumerate() {
        assert_eq!(*position, i as u32 + 1);
    }
}

/// Jobs race: a contact may first hear that they are in line and then, when another job's drain
/// reaches them, who they talk to. Never anything after the assigned message.
#[test]
fn in_a_burst_an_assigned_contact_hears_nothing_after_its_agent() {
    let b = burst_snapshot();
    let waiting_convs = waiting_convs(&b.tickets);
    assert_eq!(b.heard.len(), 50, "every contact heard something");
    let mut told_twice = 0;
    for (conv, msgs) in &b.heard {
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
        if !waiting_convs.contains(conv) {
            assert!(
                last.dedup_id.ends_with(":assigned"),
                "{conv}: {:?}",
                last.dedup_id
            );
            assert_starts_with(last, "You are now talking to Agent ");
        }
    }
    eprintln!("contacts told 'in line' before being assigned: {told_twice} of 15");
}

/// Never an assigned message while waiting; the place is the one when the job ran.
#[test]
fn in_a_burst_a_waiting_contact_hears_its_place_in_line_once() {
    let b = burst_snapshot();
    for conv in &waiting_convs(&b.tickets) {
        let msgs = &b.heard[conv];
        assert_eq!(msgs.len(), 1, "{conv}");
        let last = &msgs[0];
        let pos: u32 = text(last)
            .split("number ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        // Jobs that were still arriving or being assigned could stand ahead then.
        assert!((1..=50).contains(&pos), "position {pos}");
        assert_contains(last, &format!("number {pos} in line"));
    }
}

/// Once the burst is over, a newcomer is told its exact place: behind all 35.
#[test]
fn after_a_burst_a_newcomer_is_told_its_exact_place() {
    let b = burst_snapshot();
    assert_eq!(b.newcomer, waiting(MessageKind::Overload, 36));
    assert_eq!(
        text(&b.newcomer_heard[0]),
        "All our agents are busy. You are number 36 in line; we will be with you soon."
    );
}

// ---------------------------------------------------------------- line order and closing

/// ann (capacity 1) takes conv-001; then conv-002 (late), conv-003 (early) and conv-004 (VIP)
/// arrive in this order. Returns what the four jobs came to.
async fn vip_line() -> (TestApp, Vec<JobOutcome>) {
    let w = support_world(1).await;
    let mut late = request(2, NOON - 100);
    late.fields.insert("customer_id".into(), "C-9".into());
    let early = request(3, NOON - 300);
    let mut vip = request(4, NOON - 50);
    vip.fields.insert("customer_id".into(), "VIP-1".into());
    let mut outcomes = Vec::new();
    for r in [request(1, NOON - 500), late, early, vip] {
        outcomes.push(w.assigner.assign(r).await.unwrap());
    }
    (w, outcomes)
}

/// One close of `serve_the_line`: what it came to, the conversation item after it and what the
/// drain after it sent.
struct Served {
    closed: &'static str,
    outcome: CloseOutcome,
    conv: HashMap<String, AttributeValue>,
    sent: Vec<OutboundMessage>,
    ann_open: u32,
}

/// After `vip_line`: ann closes conv-001, conv-004 and conv-003 in turn, a minute apart, each
/// followed by the drain the admin command enqueues after a close.
async fn serve_the_line(w: &TestApp) -> Vec<Served> {
    outbound(w).await;
    let mut steps = Vec::new();
    for closed in ["conv-001", "conv-004", "conv-003"] {
        w.clock.advance(60);
        let outcome = w
            .routing()
            .close(closed, "ann", w.clock.unix())
            .await
            .unwrap();
        let conv = conv_item(w, closed).await;
        run(w, drain("support", "closed")).await;
        steps.push(Served {
            closed,
            outcome,
            conv,
            sent: outbound(w).await,
            ann_open: open(w, "ann").await,
        });
    }
    steps
}

#[tokio::test]
async fn with_the_agent_busy_a_vip_or_an_older_contact_goes_to_the_head_of_the_line() {
    let (_, outcomes) = vip_line().await;
    let first = waiting(MessageKind::Overload, 1);
    assert_eq!(
        outcomes,
        [assigned("ann"), first.clone(), first.clone(), first]
    );
}

#[tokio::test]
async fn the_line_puts_the_vip_first_then_the_oldest() {
    let (w, _) = vip_line().await;
    assert_eq!(
        line(&w, "support").await,
        ["conv-004", "conv-003", "conv-002"]
    );
}

#[tokio::test]
async fn closing_an_assigned_conversation_names_the_team_and_agent_freed() {
    let (w, _) = vip_line().await;
    for s in serve_the_line(&w).await {
        let freed = CloseOutcome::Closed {
            team: "support".into(),
            agent: Some("ann".into()),
        };
        assert_eq!(s.outcome, freed, "{}", s.closed);
    }
}

#[tokio::test]
async fn closing_stamps_the_conversation_with_who_closed_it_and_when() {
    let (w, _) = vip_line().await;
    for s in serve_the_line(&w).await {
        assert_eq!(s.conv["closed_by"].as_s().unwrap(), "ann");
        assert!(s.conv.contains_key("closed_at"), "{}", s.closed);
    }
}

#[tokio::test]
async fn each_drain_after_a_close_tells_exactly_the_next_in_line_their_agent() {
    let (w, _) = vip_line().await;
    let steps = serve_the_line(&w).await;
    for s in &steps {
        assert_eq!(s.sent.len(), 1, "exactly the next contact is told");
        assert_eq!(text(&s.sent[0]), ASSIGNED_TO_ANN);
    }
    let served: Vec<String> = steps
        .iter()
        .map(|s| s.sent[0].conversation_id.clone().unwrap())
        .collect();
    assert_eq!(served, ["conv-004", "conv-003", "conv-002"]);
}

#[tokio::test]
async fn serving_the_line_never_exceeds_capacity() {
    let (w, _) = vip_line().await;
    for s in serve_the_line(&w).await {
        assert_eq!(s.ann_open, 1, "never over capacity");
    }
}

#[tokio::test]
async fn closing_a_closed_conversation_again_says_already_closed() {
    let (w, _) = vip_line().await;
    serve_the_line(&w).await;
    assert_eq!(
        w.routing().close("conv-001", "ann", NOON).await.unwrap(),
        CloseOutcome::AlreadyClosed
    );
}

#[tokio::test]
async fn closing_a_conversation_never_handed_off_says_not_found() {
    let (w, _) = vip_line().await;
    assert_eq!(
        w.routing().close("conv-999", "ann", NOON).await.unwrap(),
        CloseOutcome::NotFound
    );
}

// ---------------------------------------------------------------- presence and capacity

/// Team `support` (round robin) with ann and bob (capacity 5 each); bob is offline; conv-000
/// to conv-002 arrive a second apart. Returns what their jobs came to.
async fn bob_offline_three_contacts() -> (TestApp, Vec<JobOutcome>) {
    let w = world(None).await;
    let t = team("support", Strategy::RoundRobin);
    setup(&w, &t, &["ann", "bob"].map(|id| agent(id, "support", 5))).await;
    set_status(&w, "bob", AgentStatus::Offline).await;
    let mut outcomes = Vec::new();
    for i in 0..3 {
        w.clock.advance(1);
        outcomes.push(w.assigner.assign(request(i, NOON)).await.unwrap());
    }
    (w, outcomes)
}

/// After `bob_offline_three_contacts`, ann goes away; returns what conv-003's job came to.
async fn ann_away_conv_003(w: &TestApp) -> JobOutcome {
    set_status(w, "ann", AgentStatus::Away).await;
    w.assigner.assign(request(3, NOON)).await.unwrap()
}

/// ann away, conv-003 waiting; bob comes online and the drain runs.
async fn bob_back_online() -> TestApp {
    let (w, _) = bob_offline_three_contacts().await;
    ann_away_conv_003(&w).await;
    set_status(&w, "bob", AgentStatus::Online).await;
    w.assigner.drain("*").await.unwrap();
    w
}

#[tokio::test]
async fn offline_agents_are_not_chosen() {
    let (_, outcomes) = bob_offline_three_contacts().await;
    assert_eq!(outcomes, vec![assigned("ann"); 3]);
}

#[tokio::test]
async fn with_nobody_online_the_contact_waits_hearing_the_team_is_away() {
    let (w, _) = bob_offline_three_contacts().await;
    assert_eq!(ann_away_conv_003(&w).await, waiting(MessageKind::Away, 1));
    let msgs = outbound(&w).await;
    assert_eq!(msgs.len(), 4);
    assert_starts_with(&msgs[3], "Our team is away");
}

#[tokio::test]
async fn an_agent_coming_online_is_given_the_waiting_conversation() {
    let w = bob_back_online().await;
    assert_eq!(agent_of(&w, "conv-003").await.as_deref(), Some("bob"));
    assert_eq!((open(&w, "ann").await, open(&w, "bob").await), (3, 1));
}

/// Lowering capacity to the open count never takes conversations away, and blocks new ones.
#[tokio::test]
async fn capacity_lowered_to_the_open_count_blocks_new_conversations() {
    let w = bob_back_online().await;
    w.routing().set_agent("bob", None, Some(1)).await.unwrap();
    assert_eq!(
        w.assigner.assign(request(4, NOON)).await.unwrap(),
        waiting(MessageKind::Overload, 1)
    );
}

#[tokio::test]
async fn the_presence_of_an_unknown_agent_cannot_be_set() {
    let (w, _) = bob_offline_three_contacts().await;
    assert!(w
        .routing()
        .set_agent("nobody", Some(AgentStatus::Online), None)
        .await
        .is_err());
}

// ---------------------------------------------------------------- idempotency and the DLQ

/// conv-007's assign job, delivered three times as SQS may.
async fn delivered_three_times(w: &TestApp) {
    for _ in 0..3 {
        run(w, assign(7, NOON)).await;
    }
}

/// Another job for the same open conversation (e.g. the contact asked for a human twice).
async fn second_hand_off_for_conv_007(w: &TestApp) -> JobOutcome {
    let mut again = request(7, NOON + 5);
    again.job_id = "handoff:conv-007:second".into();
    w.assigner.assign(again).await.unwrap()
}

#[tokio::test]
async fn redelivered_jobs_assign_once() {
    let w = support_world(5).await;
    delivered_three_times(&w).await;
    assert_eq!(open(&w, "ann").await, 1);
}

#[tokio::test]
async fn a_second_hand_off_for_an_open_conversation_is_not_assigned_again() {
    let w = support_world(5).await;
    delivered_three_times(&w).await;
    assert_eq!(
        second_hand_off_for_conv_007(&w).await,
        JobOutcome::AlreadyHandedOff
    );
    assert_eq!(open(&w, "ann").await, 1);
}

#[tokio::test]
async fn the_contact_hears_its_agent_once_however_often_the_hand_off_comes() {
    let w = support_world(5).await;
    delivered_three_times(&w).await;
    second_hand_off_for_conv_007(&w).await;
    let msgs = outbound(&w).await;
    assert_eq!(
        msgs.len(),
        1,
        "the FIFO queue dropped the repeated dedup ids"
    );
    assert_eq!(msgs[0].dedup_id, "asg:conv-007:handoff:conv-007:assigned");
}

/// With conv-007 assigned to ann: a batch of a malformed body followed by conv-008's job.
async fn malformed_body_first(w: &TestApp) -> SqsBatchResponse {
    run(w, assign(7, NOON)).await;
    let mut e = sqs::fifo_event(&[assign(8, NOON)]);
    let bad = sqs::record("bad", "{\"job\":\"assign\"}", Some("team:support"), None);
    e.records.insert(0, bad);
    w.assigner.handle(e).await
}

#[tokio::test]
async fn a_malformed_body_is_parked_in_the_assignment_dlq_at_once() {
    let w = support_world(5).await;
    assert!(malformed_body_first(&w)
        .await
        .batch_item_failures
        .is_empty());
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
async fn a_malformed_body_does_not_block_the_jobs_after_it() {
    let w = support_world(5).await;
    malformed_body_first(&w).await;
    assert_eq!(open(&w, "ann").await, 2);
}

#[tokio::test]
async fn a_job_without_routing_rules_is_parked_in_the_assignment_dlq_at_once() {
    let w = world(None).await;
    let job = assign(9, NOON);
    let r = w
        .assigner
        .handle(sqs::fifo_event(std::slice::from_ref(&job)))
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

// ---------------------------------------------------------------- business hours and the window

/// Team `support` open Mondays 09:00-17:00 in Berlin; the clock at Mon 2026-11-23 07:30 UTC =
/// 08:30 in Berlin. Returns that time and what conv-001's job, requested then, came to.
async fn berlin_before_opening() -> (TestApp, i64, JobOutcome) {
    let hours =
        serde_json::json!({"time_zone": "Europe/Berlin", "weekly": {"mon": ["09:00-17:00"]}});
    let w = support_world_with(None, 5, |t| {
        t.hours = Some(serde_json::from_value(hours).unwrap())
    })
    .await;
    let before = Utc
        .with_ymd_and_hms(2026, 11, 23, 7, 30, 0)
        .unwrap()
        .timestamp();
    w.clock.set_unix(before);
    let outcome = w.assigner.assign(request(1, before)).await.unwrap();
    (w, before, outcome)
}

#[tokio::test]
async fn before_opening_the_contact_waits_hearing_the_team_is_away() {
    let (_, _, outcome) = berlin_before_opening().await;
    assert_eq!(outcome, waiting(MessageKind::Away, 1));
}

#[tokio::test]
async fn a_drain_before_opening_assigns_nobody() {
    let (w, _, _) = berlin_before_opening().await;
    w.assigner.drain("*").await.unwrap();
    assert_eq!(line(&w, "support").await.len(), 1, "still closed");
}

#[tokio::test]
async fn the_scheduled_sweep_assigns_the_waiting_at_opening() {
    let (w, before, _) = berlin_before_opening().await;
    w.assigner.drain("*").await.unwrap();
    w.clock.set_unix(before + 45 * 60); // 09:15 Berlin
    run(&w, drain("*", "schedule")).await;
    assert!(line(&w, "support").await.is_empty());
    let msgs = outbound(&w).await;
    assert_eq!(
        msgs.iter().map(|m| m.dedup_id.as_str()).collect::<Vec<_>>(),
        [
            "asg:conv-001:handoff:conv-001:away",
            "asg:conv-001:handoff:conv-001:assigned"
        ]
    );
}

/// Team `support` with a template for the assigned message.
async fn support_with_assigned_template(capacity: u32) -> TestApp {
    support_world_with(None, capacity, |t| {
        t.templates
            .insert(MessageKind::Assigned, "agent_assigned".into());
    })
    .await
}

#[tokio::test]
async fn outside_the_window_a_template_goes_out() {
    let w = support_with_assigned_template(5).await;
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

// ---------------------------------------------------------------- the agent webhook

/// What conv-001's assignment went through while the help desk was down.
struct DuringOutage {
    server: MockServer,
    w: TestApp,
    response: SqsBatchResponse,
    posts_while_down: usize,
}

/// Team `support` notifies the help desk at `/agents/hook`, which answers the first post of
/// conv-001's assignment with 503.
async fn assigned_during_an_outage() -> DuringOutage {
    let server = MockServer::start().await;
    let w = world(Some("hook-secret")).await;
    let mut t = team("support", Strategy::RoundRobin);
    t.notify_url = Some(format!("{}/agents/hook", server.uri()));
    setup(&w, &t, &[agent("ann", "support", 5)]).await;
    let down = Mock::given(method("POST"))
        .and(path("/agents/hook"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&server)
        .await;
    let response = w.assigner.handle(sqs::fifo_event(&[assign(1, NOON)])).await;
    let posts_while_down = down.received_requests().await.len();
    drop(down);
    DuringOutage {
        server,
        w,
        response,
        posts_while_down,
    }
}

/// After the outage the help desk takes exactly one more post. The redelivered job, not yet
/// due, does not post again; after the back-off the sweep does.
async fn back_up_after_the_back_off() -> DuringOutage {
    let o = assigned_during_an_outage().await;
    Mock::given(method("POST"))
        .and(path("/agents/hook"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&o.server)
        .await;
    o.w.assigner
        .handle(sqs::fifo_event(&[assign(1, NOON)]))
        .await;
    o.w.clock.advance(61);
    o.w.assigner.drain("*").await.unwrap();
    o
}

#[tokio::test]
async fn a_failing_agent_webhook_does_not_fail_the_job() {
    let o = assigned_during_an_outage().await;
    assert!(o.response.batch_item_failures.is_empty());
    assert_eq!(o.posts_while_down, 1);
}

#[tokio::test]
async fn a_failed_agent_notification_stays_due() {
    let o = assigned_during_an_outage().await;
    let pending = o.w.routing().unannounced("support").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].contact_told && pending[0].notify_attempts == 1);
}

#[tokio::test]
async fn the_sweep_posts_a_due_notification_again_after_the_back_off() {
    let o = back_up_after_the_back_off().await;
    assert!(o
        .w
        .routing()
        .unannounced("support")
        .await
        .unwrap()
        .is_empty());
    let reqs = o.server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2, "one failed and one successful post");
}

#[tokio::test]
async fn a_retried_notification_takes_no_second_slot_nor_tells_the_contact_again() {
    let o = back_up_after_the_back_off().await;
    assert_eq!(open(&o.w, "ann").await, 1);
    assert_eq!(outbound(&o.w).await.len(), 1, "the contact heard it once");
}

#[tokio::test]
async fn the_agent_notification_is_signed_with_the_webhook_secret() {
    let o = back_up_after_the_back_off().await;
    let reqs = o.server.received_requests().await.unwrap();
    let last = reqs.last().unwrap();
    let header = |name: &str| last.headers.get(name).unwrap().to_str().unwrap().to_owned();
    let ts: i64 = header(TIMESTAMP_HEADER).parse().unwrap();
    let sig = header(SIGNATURE_HEADER);
    assert_eq!(sig, signature(&Secret::new("hook-secret"), ts, &last.body));
}

#[tokio::test]
async fn the_agent_notification_names_the_conversation_and_the_agent() {
    let o = back_up_after_the_back_off().await;
    let reqs = o.server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reqs.last().unwrap().body).unwrap();
    assert_eq!(body["conversation_id"], "conv-001");
    assert_eq!(body["agent_id"], "ann");
}

// ---------------------------------------------------------------- the admin CLI

async fn admin(w: &TestApp, args: &[&str]) -> Result<String, prechat::admin::AdminError> {
    let mut all = vec!["--table".to_string(), w.env.table("StateTable").to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    prechat::admin::run(all).await
}

async fn admin_err(w: &TestApp, args: &[&str]) -> String {
    admin(w, args).await.unwrap_err().to_string()
}

fn file_arg(f: &TempFile) -> &str {
    f.path().to_str().unwrap()
}

const ADMIN_TEAM: &str = r#"{"id":"support","name":"Support","strategy":"least_open",
    "hours":{"time_zone":"Europe/Berlin","weekly":{"mon":["00:00-24:00"]},"holidays":["2026-12-25"]},
    "messages":{"en":{"assigned":"Hi, {{agent.name}} here.","away":"Away.","overload":"You are #{{queue.position}}."}}}"#;

/// Team `support` (ADMIN_TEAM) saved through the admin CLI; returns what `team add` said.
async fn admin_team_saved(w: &TestApp) -> String {
    let team_file = TempFile::with_contents("team", ADMIN_TEAM);
    admin(w, &["team", "add", file_arg(&team_file)])
        .await
        .unwrap()
}

/// Team `support` and routing to it saved, and agent ann added (capacity 1, en and de), all
/// through the admin CLI. New agents start offline.
async fn admin_world() -> TestApp {
    let w = world(None).await;
    admin_team_saved(&w).await;
    let routing_file = TempFile::with_contents("routing", r#"{"default_team":"support"}"#);
    admin(&w, &["routing", "set", file_arg(&routing_file)])
        .await
        .unwrap();
    let add_ann = "agent add ann --name Ann --teams support --capacity 1 --languages en,de";
    admin(&w, &add_ann.split(' ').collect::<Vec<_>>())
        .await
        .unwrap();
    w.clock.set_unix(NOON);
    w
}

/// The jobs the admin CLI queued on the assignment queue.
async fn queued_jobs(w: &TestApp) -> Vec<AssignmentJob> {
    w.env
        .receive_all("AssignmentQueue")
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

/// In `admin_world`: conv-001 hands off (ann offline), then ann is set online with the
/// assignment queue given. Returns what conv-001's job came to and what the command said.
async fn admin_sets_ann_online(w: &TestApp) -> (JobOutcome, String) {
    let outcome = w.assigner.assign(request(1, NOON - 10)).await.unwrap();
    let queue = w.env.queue_url("AssignmentQueue").to_string();
    let online = [
        "agent",
        "status",
        "ann",
        "online",
        "--assignment-queue",
        &queue,
    ];
    (outcome, admin(w, &online).await.unwrap())
}

/// `admin_sets_ann_online`, the queued drain run (conv-001 goes to ann), then conv-002 hands
/// off. Returns what conv-002's job came to.
async fn admin_world_with_one_waiting() -> (TestApp, JobOutcome) {
    let w = admin_world().await;
    admin_sets_ann_online(&w).await;
    for job in queued_jobs(&w).await {
        run(&w, job).await;
    }
    let outcome = w.assigner.assign(request(2, NOON - 5)).await.unwrap();
    (w, outcome)
}

/// ann closes conv-001 through the admin CLI with the assignment queue given; returns what the
/// command said.
async fn admin_closes_conv_001(w: &TestApp) -> String {
    let queue = w.env.queue_url("AssignmentQueue").to_string();
    let close = [
        "conversation",
        "close",
        "conv-001",
        "--by",
        "ann",
        "--assignment-queue",
        &queue,
    ];
    admin(w, &close).await.unwrap()
}

/// `admin_world_with_one_waiting`, ann closes conv-001 and the queued drain runs.
async fn admin_close_served() -> TestApp {
    let (w, _) = admin_world_with_one_waiting().await;
    admin_closes_conv_001(&w).await;
    for job in queued_jobs(&w).await {
        run(&w, job).await;
    }
    w
}

#[tokio::test]
async fn admin_team_add_saves_a_team_without_queueing_a_drain() {
    let w = world(None).await;
    let out = admin_team_saved(&w).await;
    assert!(
        out.starts_with("team support saved; no assignment queue given"),
        "{out}"
    );
}

#[tokio::test]
async fn admin_team_add_refuses_an_unknown_time_zone() {
    let w = world(None).await;
    let bad_team = TempFile::with_contents(
        "bad",
        r#"{"id":"x","name":"X","hours":{"time_zone":"Mars/Olympus"}}"#,
    );
    let err = admin_err(&w, &["team", "add", file_arg(&bad_team)]).await;
    assert!(err.contains("unknown time zone \"Mars/Olympus\""), "{err}");
}

#[tokio::test]
async fn admin_routing_set_refuses_rules_for_unknown_teams() {
    let w = world(None).await;
    admin_team_saved(&w).await;
    let routing_file = TempFile::with_contents(
        "routing",
        r#"{"default_team":"support","rules":[{"name":"billing","team":"billing","when":[{"subject":"answer.inquiry_type","op":"in","values":["billing"]}]}]}"#,
    );
    let err = admin_err(&w, &["routing", "set", file_arg(&routing_file)]).await;
    assert!(err.contains("unknown team(s): billing"), "{err}");
}

#[tokio::test]
async fn admin_agent_add_refuses_an_agent_that_exists() {
    let w = admin_world().await;
    let add = ["agent", "add", "ann", "--name", "Ann", "--teams", "support"];
    let err = admin_err(&w, &add).await;
    assert!(err.contains("use `agent update`"), "{err}");
}

#[tokio::test]
async fn admin_agent_status_refuses_an_unknown_status() {
    let w = admin_world().await;
    let err = admin_err(&w, &["agent", "status", "ann", "busy"]).await;
    assert!(err.contains("unknown status"), "{err}");
}

/// New agents start offline: the first contact hears the away message.
#[tokio::test]
async fn an_agent_added_by_admin_starts_offline() {
    let w = admin_world().await;
    let (outcome, _) = admin_sets_ann_online(&w).await;
    assert_eq!(outcome, waiting(MessageKind::Away, 1));
}

#[tokio::test]
async fn admin_agent_status_queues_a_drain_for_the_agents_team() {
    let w = admin_world().await;
    let (_, out) = admin_sets_ann_online(&w).await;
    assert!(out.ends_with("drain queued for support"), "{out}");
    assert_eq!(
        queued_jobs(&w).await,
        [drain("support", "agent ann changed")]
    );
}

#[tokio::test]
async fn the_drain_queued_by_admin_assigns_the_waiting_contact() {
    let (w, _) = admin_world_with_one_waiting().await;
    assert_eq!(agent_of(&w, "conv-001").await.as_deref(), Some("ann"));
}

#[tokio::test]
async fn admin_waiting_lists_the_line_with_time_and_language() {
    let (w, outcome) = admin_world_with_one_waiting().await;
    assert_eq!(outcome, waiting(MessageKind::Overload, 1));
    let line = admin(&w, &["waiting", "support"]).await.unwrap();
    assert!(
        line.starts_with("1\tconv-002\t-\t2026-11-23T11:59:55+00:00\ten"),
        "{line}"
    );
}

#[tokio::test]
async fn admin_agent_list_shows_status_load_teams_and_languages() {
    let (w, _) = admin_world_with_one_waiting().await;
    let agents = admin(&w, &["agent", "list"]).await.unwrap();
    assert_eq!(
        agents,
        "ann\tAnn\tonline\t1/1\tteams=support\tlanguages=en,de"
    );
}

#[tokio::test]
async fn admin_conversation_close_frees_the_slot_and_queues_a_drain() {
    let (w, _) = admin_world_with_one_waiting().await;
    assert_eq!(
        admin_closes_conv_001(&w).await,
        "conversation conv-001 closed (ann has a free slot); drain queued for support"
    );
    let jobs = queued_jobs(&w).await;
    assert!(
        matches!(jobs.as_slice(), [AssignmentJob::Drain { .. }, AssignmentJob::Closed(n)]
            if n.conversation_id == "conv-001" && n.agent_id.as_deref() == Some("ann")),
        "a drain, and the close for the team's webhook: {jobs:?}"
    );
}

#[tokio::test]
async fn the_drain_after_an_admin_close_empties_the_line() {
    let w = admin_close_served().await;
    assert_eq!(
        admin(&w, &["waiting", "support"]).await.unwrap(),
        "nobody is waiting for support"
    );
}

#[tokio::test]
async fn contacts_hear_the_messages_of_the_team_saved_by_admin() {
    let w = admin_close_served().await;
    let texts: Vec<String> = outbound(&w)
        .await
        .iter()
        .map(|m| text(m).to_owned())
        .collect();
    assert_eq!(
        texts,
        ["Away.", "Hi, Ann here.", "You are #1.", "Hi, Ann here."]
    );
}

#[tokio::test]
async fn admin_conversation_close_refuses_a_conversation_never_handed_off() {
    let w = admin_world().await;
    let err = admin_err(&w, &["conversation", "close", "conv-404"]).await;
    assert!(err.contains("never handed off"), "{err}");
}

#[tokio::test]
async fn admin_help_names_the_close_command() {
    let w = world(None).await;
    assert!(admin(&w, &["help"])
        .await
        .unwrap()
        .contains("conversation close CONVERSATION_ID"));
}

// ---------------------------------------------------------------- sample events and the sweep

fn event_file(name: &str) -> String {
    std::fs::read_to_string(prechat_tests::workspace_root().join("events").join(name)).unwrap()
}

/// Team `billing` with ann (capacity 2), and the sample event handled.
async fn billing_after_the_sample_event() -> TestApp {
    let w = world(None).await;
    let t = team("billing", Strategy::RoundRobin);
    setup(&w, &t, &[agent("ann", "billing", 2)]).await;
    let sample: SqsEvent = serde_json::from_str(&event_file("agent-assigner.json")).unwrap();
    assert!(w
        .assigner
        .handle(sample)
        .await
        .batch_item_failures
        .is_empty());
    w
}

/// A crash between reserving a slot and taking the ticket leaves a reservation (made at
/// NOON - 30) for a conversation that is not assigned to the agent.
async fn with_a_leaked_slot() -> TestApp {
    let w = billing_after_the_sample_event().await;
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
    assert_eq!(open(&w, "ann").await, 2);
    w
}

async fn sweep(w: &TestApp) {
    let sweep: SqsEvent = serde_json::from_str(&event_file("agent-assigner-sweep.json")).unwrap();
    assert!(w
        .assigner
        .handle(sweep)
        .await
        .batch_item_failures
        .is_empty());
}

#[tokio::test]
async fn the_sample_event_is_assigned_through_the_handler() {
    let w = billing_after_the_sample_event().await;
    assert_eq!(
        agent_of(&w, "conv-20261123-0001").await.as_deref(),
        Some("ann")
    );
}

/// The schedule's constant input in the template is the sweep event file.
#[tokio::test]
async fn the_schedule_sends_the_sweep_event_file() {
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(prechat_tests::template_path()).unwrap())
            .unwrap();
    let input = template["Resources"]["AgentAssignerFunction"]["Properties"]["Events"]["Sweep"]
        ["Properties"]["Input"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(input).unwrap(),
        serde_json::from_str::<serde_json::Value>(&event_file("agent-assigner-sweep.json"))
            .unwrap()
    );
}

#[tokio::test]
async fn the_sweep_keeps_a_young_reservation_that_may_be_in_flight() {
    let w = with_a_leaked_slot().await;
    sweep(&w).await;
    assert_eq!(open(&w, "ann").await, 2, "too young: may be in flight");
}

#[tokio::test]
async fn the_sweep_frees_only_the_leaked_slot_once_it_is_old_enough() {
    let w = with_a_leaked_slot().await;
    sweep(&w).await;
    w.clock.set_unix(NOON + 300);
    sweep(&w).await;
    assert_eq!(open(&w, "ann").await, 1, "leaked slot freed, real one kept");
    assert_eq!(w.routing().reservations("ann").await.unwrap().len(), 1);
}

/// The real binary under cargo-lambda's runtime emulator: `from_env`, the thin `main`, the
/// sample event; and the logs never carry the contact's phone number or BSUID.
#[tokio::test(flavor = "multi_thread")]
async fn agent_assigner_binary_handles_the_sample_event_under_cargo_lambda() {
    let w = world(None).await;
    let t = team("billing", Strategy::RoundRobin);
    setup(&w, &t, &[agent("ann", "billing", 2)]).await;
    // The sample keeps its fixed timestamps; the test moves them to now so the contact is
    // inside the 24-hour window on whatever day it runs.
    let events = prechat_tests::workspace_root().join("events");
    let event = rebased_sample(&events.join("agent-assigner.json"));
    let reply = w
        .run_binary(
            "agent-assigner",
            "AgentAssignerFunction",
            event.path(),
            &[("PRECHAT_LOG_KEY", "local-log-key")],
        )
        .await;
    let (reply, log) = reply;
    assert_eq!(
        reply["batchItemFailures"],
        serde_json::json!([]),
        "{reply}\n{log}"
    );
    assert_eq!(
        w.routing()
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

// ---------------------------------------------------------------- a conversation the engine closed

/// Team `support` with ann (capacity 1); the survey engine closed conv-001 (e.g. the contact
/// wrote "stop") before its hand-off job ran. Returns what that job came to.
async fn closed_by_the_engine() -> (TestApp, JobOutcome) {
    let w = support_world(1).await;
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
    let outcome = w.assigner.assign(request(1, NOON)).await.unwrap();
    (w, outcome)
}

#[tokio::test]
async fn a_conversation_closed_by_the_engine_is_not_assigned() {
    let (w, outcome) = closed_by_the_engine().await;
    assert_eq!(outcome, JobOutcome::AlreadyClosed);
    assert_eq!(ticket(&w, "conv-001").await.state, TicketState::Closed);
}

#[tokio::test]
async fn a_conversation_closed_by_the_engine_gives_its_slot_to_the_next() {
    let (w, _) = closed_by_the_engine().await;
    assert_eq!(open(&w, "ann").await, 0, "the slot was given back");
    assert!(w.routing().reservations("ann").await.unwrap().is_empty());
    assert_eq!(
        w.assigner.assign(request(2, NOON)).await.unwrap(),
        assigned("ann")
    );
}

#[tokio::test]
async fn nothing_is_sent_to_a_conversation_closed_by_the_engine() {
    let (w, _) = closed_by_the_engine().await;
    assert!(
        outbound(&w).await.is_empty(),
        "nothing is sent to a closed conversation"
    );
}

#[tokio::test]
async fn the_engines_attributes_of_a_closed_conversation_are_untouched() {
    let (w, _) = closed_by_the_engine().await;
    let conv = conv_item(&w, "conv-001").await;
    assert_eq!(conv["closed_by"].as_s().unwrap(), "contact");
    assert!(!conv.contains_key("assigned_agent"));
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

/// The conversation item as the survey engine keeps it (only what the assigner reads).
async fn engine_saw_inbound(w: &TestApp, conv: &str, last_inbound_at: i64) {
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

/// A webhook answering 500 to every post; conv-001 and conv-002 are assigned to ann.
async fn assigned_with_the_webhook_down() -> (MockServer, TestApp) {
    let server = hook_answering(500).await;
    let w = notifying_world(&server, 5).await;
    run(&w, assign(1, NOON)).await;
    run(&w, assign(2, NOON)).await;
    (server, w)
}

#[tokio::test]
async fn a_webhook_answering_500_never_blocks_the_team() {
    let (_server, w) = assigned_with_the_webhook_down().await;
    let msgs = outbound(&w).await;
    assert_eq!(msgs.len(), 2);
    for m in &msgs {
        assert_starts_with(m, "You are now talking to Agent ann");
    }
    assert_eq!(open(&w, "ann").await, 2);
}

/// The sweep retries each notification after its back-off until it is given up.
#[tokio::test]
async fn a_webhook_answering_500_forever_is_given_up() {
    let (server, w) = assigned_with_the_webhook_down().await;
    outbound(&w).await;
    for _ in 0..30 {
        if w.routing().unannounced("support").await.unwrap().is_empty() {
            break;
        }
        w.clock.advance(31 * 60);
        w.assigner.drain("*").await.unwrap();
    }
    assert!(w.routing().unannounced("support").await.unwrap().is_empty());
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

/// ann (capacity 1) has conv-001; conv-002 and conv-003 wait; conv-002's contact stops.
async fn conv_002_stopped_while_waiting() -> TestApp {
    let w = support_world(1).await;
    for i in 1..=3 {
        run(&w, assign(i, NOON + i as i64)).await;
    }
    run(&w, cancel_job(2, CancelReason::Stopped, NOON + 10)).await;
    w
}

#[tokio::test]
async fn stop_while_waiting_takes_the_ticket_out_of_the_line_at_once() {
    let w = conv_002_stopped_while_waiting().await;
    let line = w.routing().waiting("support").await.unwrap();
    assert_eq!(
        line.iter()
            .map(|t| t.conversation_id.as_str())
            .collect::<Vec<_>>(),
        ["conv-003"]
    );
    assert_eq!(w.routing().position(&line[0]).await.unwrap(), 1);
    assert_eq!(ticket(&w, "conv-002").await.state, TicketState::Closed);
    assert_eq!(open(&w, "ann").await, 1);
}

#[tokio::test]
async fn a_repeated_stop_job_changes_nothing() {
    let w = conv_002_stopped_while_waiting().await;
    run(&w, cancel_job(2, CancelReason::Stopped, NOON + 10)).await;
    assert_eq!(line(&w, "support").await.len(), 1);
}

/// ann (capacity 1) has conv-001, conv-002 waits; conv-001 restarts its survey.
async fn assigned_conv_001_restarted() -> TestApp {
    let w = support_world(1).await;
    run(&w, assign(1, NOON)).await;
    run(&w, assign(2, NOON + 1)).await;
    outbound(&w).await;
    run(&w, cancel_job(1, CancelReason::Restarted, NOON + 10)).await;
    w
}

#[tokio::test]
async fn cancelling_an_assigned_ticket_frees_the_agent_for_the_next_in_line() {
    let w = assigned_conv_001_restarted().await;
    let next = ticket(&w, "conv-002").await;
    assert_eq!(
        (next.state, next.agent.as_deref()),
        (TicketState::Assigned, Some("ann"))
    );
    assert_eq!(open(&w, "ann").await, 1);
    let held: Vec<String> = w
        .routing()
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
}

/// The restarted conversation goes on: not closed, no longer assigned.
#[tokio::test]
async fn a_restarted_conversation_is_left_open_and_unassigned() {
    let w = assigned_conv_001_restarted().await;
    let conv = conv_item(&w, "conv-001").await;
    assert!(
        !conv.contains_key("closed_at") && !conv.contains_key("assigned_agent"),
        "{conv:?}"
    );
}

/// conv-001 hands off with the answer "old", restarts, and hands off again with "new"; the
/// webhook takes every post.
async fn handed_off_again_after_a_restart() -> (MockServer, TestApp) {
    let server = hook_answering(200).await;
    let w = notifying_world(&server, 1).await;
    let mut first = request(1, NOON);
    first.answers.insert("issue".into(), "old".into());
    run(&w, AssignmentJob::Assign(first)).await;
    run(&w, cancel_job(1, CancelReason::Restarted, NOON + 10)).await;
    let mut second = request(1, NOON + 20);
    second.job_id = "handoff:conv-001:again".into();
    second.answers.insert("issue".into(), "new".into());
    run(&w, AssignmentJob::Assign(second)).await;
    (server, w)
}

#[tokio::test]
async fn after_a_restart_the_new_answers_replace_the_old_on_the_ticket() {
    let (_server, w) = handed_off_again_after_a_restart().await;
    let ticket = ticket(&w, "conv-001").await;
    assert_eq!(ticket.state, TicketState::Assigned);
    assert_eq!(ticket.request.answers["issue"], "new");
    assert_eq!(open(&w, "ann").await, 1);
}

#[tokio::test]
async fn after_a_restart_the_new_answers_reach_the_agent() {
    let (server, _w) = handed_off_again_after_a_restart().await;
    let posts: Vec<serde_json::Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let events: Vec<&str> = posts.iter().map(|p| p["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "conversation.assigned",
            "conversation.closed",
            "conversation.assigned"
        ]
    );
    assert_eq!(posts[1]["closed_by"], "restarted");
    assert_eq!(posts[2]["answers"]["issue"], "new");
}

#[tokio::test]
async fn a_superseding_hand_off_replaces_the_open_one() {
    let w = support_world(1).await;
    run(&w, assign(1, NOON)).await;
    let mut again = request(1, NOON + 5);
    again.job_id = "handoff:conv-001:restart".into();
    again.answers.insert("issue".into(), "new".into());
    again.supersedes = true;
    run(&w, AssignmentJob::Assign(again)).await;
    let ticket = ticket(&w, "conv-001").await;
    assert_eq!(ticket.job_id, "handoff:conv-001:restart");
    assert_eq!(ticket.state, TicketState::Assigned);
    assert_eq!(ticket.request.answers["issue"], "new");
    assert_eq!(open(&w, "ann").await, 1, "one slot, not two");
}

#[tokio::test]
async fn the_window_counts_from_the_contacts_latest_message_while_waiting() {
    let w = support_with_assigned_template(1).await;
    let handoff = NOON;
    run(&w, assign(1, handoff - 60)).await;
    engine_saw_inbound(&w, "conv-002", handoff).await;
    run(&w, assign(2, handoff)).await;
    outbound(&w).await;
    // The contact writes again 23 hours into the wait; the engine records it.
    engine_saw_inbound(&w, "conv-002", handoff + 23 * 3600).await;

    // Ann frees up 25 hours after the hand-off.
    w.clock.set_unix(handoff + 25 * 3600);
    w.routing()
        .close("conv-001", "ann", handoff + 25 * 3600)
        .await
        .unwrap();
    w.assigner.drain("support").await.unwrap();

    let msgs = outbound(&w).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(text(&msgs[0]), ASSIGNED_TO_ANN);
    assert_eq!(msgs[0].last_inbound_at, Some(handoff + 23 * 3600));
}

#[tokio::test]
async fn a_retried_overloaded_job_announces_one_place_in_line() {
    let w = support_world(1).await;
    run(&w, assign(1, NOON)).await;
    run(&w, assign(2, NOON + 1)).await;
    let job = assign(3, NOON + 2);
    run(&w, job.clone()).await;
    // The one ahead leaves the line; then the same job is delivered again.
    w.routing()
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
    assert_contains(&mine[0], "number 2 in line");
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
async fn admin_refuses_a_notify_url_that_only_looks_local() {
    let w = world(Some("hook-secret")).await;
    let file = TempFile::with_contents(
        "team",
        r#"{"id":"support","name":"Support","notify_url":"http://127.0.0.1.nip.io/hook"}"#,
    );
    let err = admin_err(&w, &["team", "add", file_arg(&file)]).await;
    assert!(err.contains("notify_url"), "{err}");
}

/// A team stored before the check: assignment goes on, the notification is refused.
#[tokio::test]
async fn a_stored_notify_url_that_only_looks_local_is_refused_before_sending() {
    let w = support_world_with(Some("hook-secret"), 1, |t| {
        t.notify_url = Some("http://localhost.example.com/hook".into())
    })
    .await;
    run(&w, assign(1, NOON)).await;
    let ticket = ticket(&w, "conv-001").await;
    assert!(ticket.state == TicketState::Assigned && ticket.announced);
    assert_eq!(outbound(&w).await.len(), 1);
}

// ---------------------------------------------------------------- transcript events

/// The conversation's transcript as `who:what` lines.
async fn transcript_lines(w: &TestApp, conv: &str) -> Vec<String> {
    w.transcript_entries(conv)
        .await
        .iter()
        .map(|e| match &e.body {
            Body::Event {
                event: Event::Assigned { agent_id, team },
            } => format!("assigned:{agent_id}:{team}"),
            Body::Event {
                event: Event::Closed { by },
            } => format!("closed:{by}"),
            Body::Text { .. } if e.author == Author::Bot => "bot:text".to_owned(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn an_assignment_and_its_close_appear_in_the_transcript_once() {
    let w = support_world(1).await;
    run(&w, assign(1, NOON - 60)).await;
    run(&w, assign(1, NOON - 60)).await; // redelivered
    w.routing().close("conv-001", "ann", NOON).await.unwrap();
    w.routing()
        .close("conv-001", "ann", NOON + 5)
        .await
        .unwrap();
    let lines = transcript_lines(&w, "conv-001").await;
    assert_eq!(lines, ["assigned:ann:support", "bot:text", "closed:ann"]);
    let told = outbound(&w).await;
    assert!(
        told[0].transcript.is_some(),
        "the assigned message names its entry"
    );
}

#[tokio::test]
async fn a_cancelled_hand_off_is_recorded_as_closed_by_the_reason() {
    let w = support_world(1).await;
    run(&w, assign(2, NOON - 60)).await;
    run(&w, cancel_job(2, CancelReason::Stopped, NOON)).await;
    let lines = transcript_lines(&w, "conv-002").await;
    assert_eq!(lines.last().map(String::as_str), Some("closed:stopped"));
}
