//! The agent API on in-memory fakes of its ports: the decisions between the pure parts
//! (routing, policy) and the effects. The DynamoDB and SQS implementations are tested against
//! moto in `tests/tests/it/api.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::queue::QueueError;
use crate::routing::job::AssignRequest;
use crate::routing::model::Team;
use crate::store::survey_store::{Published, StoredSurvey};
use crate::store::transcript::MemoryTranscript;
use crate::store::StoreError;
use crate::survey::engine::ContactState;
use crate::whatsapp::ContactRef;

const NOW: i64 = 1_800_000_000;

#[derive(Default)]
struct Fake {
    agents: Mutex<HashMap<String, Agent>>,
    tickets: Mutex<HashMap<String, Ticket>>,
    records: Mutex<HashMap<String, ConversationRecord>>,
    remembered: Mutex<HashMap<(String, String), StoredResponse>>,
    /// Every call fails as DynamoDB throttling would.
    throttled: bool,
}

impl Fake {
    fn check(&self) -> Result<(), StoreError> {
        if self.throttled {
            Err(StoreError::Unavailable("throttled".into()))
        } else {
            Ok(())
        }
    }
}

impl AgentDirectory for Fake {
    async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.check()?;
        Ok(self.agents.lock().unwrap().get(id).cloned())
    }
    async fn set_status(&self, id: &str, status: AgentStatus) -> Result<(), StoreError> {
        match self.agents.lock().unwrap().get_mut(id) {
            Some(a) => {
                a.status = status;
                Ok(())
            }
            None => Err(StoreError::ConditionFailed("no agent".into())),
        }
    }
    async fn team_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(vec!["sales".into()])
    }
    async fn team(&self, id: &str) -> Result<Option<Team>, StoreError> {
        Ok((id == "sales").then(|| {
            serde_json::from_value(json!({"id": "sales", "name": "Sales",
                "templates": {"assigned": "agent_assigned", "away": "we_are_away"}}))
            .unwrap()
        }))
    }
    async fn team_agents(&self, team: &str) -> Result<Vec<Agent>, StoreError> {
        let mut all: Vec<Agent> = self
            .agents
            .lock()
            .unwrap()
            .values()
            .filter(|a| a.teams.iter().any(|t| t == team))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }
}

impl Handoffs for Fake {
    async fn ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        Ok(self.tickets.lock().unwrap().get(id).cloned())
    }
    async fn assigned_to(&self, agent: &str) -> Result<Vec<Ticket>, StoreError> {
        let all = self.tickets.lock().unwrap();
        Ok(all
            .values()
            .filter(|t| t.state == TicketState::Assigned && t.agent.as_deref() == Some(agent))
            .cloned()
            .collect())
    }
    async fn waiting(&self, team: &str) -> Result<Vec<Ticket>, StoreError> {
        let all = self.tickets.lock().unwrap();
        Ok(all
            .values()
            .filter(|t| t.state == TicketState::Waiting && t.team == team)
            .cloned()
            .collect())
    }
    async fn closed_by(&self, _: &str, _: Option<&str>, _: u32) -> Result<Vec<Ticket>, StoreError> {
        Ok(Vec::new())
    }
    async fn team_page(
        &self,
        team: &str,
        state: TicketState,
        _: Option<&str>,
        _: u32,
    ) -> Result<Vec<String>, StoreError> {
        let all = self.tickets.lock().unwrap();
        Ok(all
            .values()
            .filter(|t| t.state == state && t.team == team)
            .map(|t| crate::store::keys::activity_sort(t.requested_at, &t.conversation_id))
            .collect())
    }
    async fn tickets(&self, ids: &[String]) -> Result<Vec<Ticket>, StoreError> {
        let all = self.tickets.lock().unwrap();
        Ok(ids.iter().filter_map(|id| all.get(id).cloned()).collect())
    }
    async fn last_inbound(&self, _: &[String]) -> Result<HashMap<String, i64>, StoreError> {
        Ok(HashMap::new())
    }
    async fn close(&self, id: &str, _: &str, now: i64) -> Result<CloseOutcome, StoreError> {
        let mut all = self.tickets.lock().unwrap();
        let Some(t) = all.get_mut(id) else {
            return Ok(CloseOutcome::NotFound);
        };
        t.state = TicketState::Closed;
        t.closed_at = Some(now);
        Ok(CloseOutcome::Closed {
            team: t.team.clone(),
            agent: t.agent.clone(),
        })
    }
}

impl Conversations for Fake {
    async fn conversation(&self, id: &str) -> Result<Option<ConversationRecord>, StoreError> {
        Ok(self.records.lock().unwrap().get(id).cloned())
    }
}

impl Idempotency for Fake {
    async fn recall(&self, c: &str, k: &str, _: i64) -> Result<Option<StoredResponse>, StoreError> {
        Ok(self
            .remembered
            .lock()
            .unwrap()
            .get(&(c.to_owned(), k.to_owned()))
            .cloned())
    }
    async fn remember(
        &self,
        c: &str,
        k: &str,
        r: &StoredResponse,
        _: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let mut m = self.remembered.lock().unwrap();
        let key = (c.to_owned(), k.to_owned());
        if let Some(first) = m.get(&key) {
            return Ok(Some(first.clone()));
        }
        m.insert(key, r.clone());
        Ok(None)
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<QueueMessage>>);

impl MessageQueue for Recorder {
    async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        self.0.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }
}

/// No published survey: conversations run the shipped default (version 0).
struct NoSurveys;

impl SurveyStore for NoSurveys {
    async fn latest(&self, _: &str) -> Result<Option<StoredSurvey>, StoreError> {
        Ok(None)
    }
    async fn get(&self, _: &str, _: u32) -> Result<Option<StoredSurvey>, StoreError> {
        Ok(None)
    }
    async fn list(&self, _: &str) -> Result<Vec<StoredSurvey>, StoreError> {
        Ok(Vec::new())
    }
    async fn publish(&self, _: &str, _: &str, _: i64) -> Result<Published, StoreError> {
        Err(StoreError::Request("read-only".into()))
    }
}

type Api = AgentApiCore<Fake, Recorder, MemoryTranscript, NoSurveys>;

fn agent(id: &str, leads: &[&str]) -> Agent {
    Agent {
        id: id.into(),
        name: id.into(),
        teams: vec!["sales".into()],
        languages: vec![],
        status: AgentStatus::Online,
        capacity: 3,
        open: 0,
        last_assigned_at: 0,
        leads: leads.iter().map(|t| t.to_string()).collect(),
        sub: None,
    }
}

/// alice and bruno in sales (bruno leads it), conversation `c-w` waiting, `c-a` alice's.
fn api(throttled: bool) -> Api {
    let store = Fake {
        throttled,
        ..Fake::default()
    };
    for a in [agent("alice", &[]), agent("bruno", &["sales"])] {
        store.agents.lock().unwrap().insert(a.id.clone(), a);
    }
    for (id, owner) in [("c-w", None), ("c-a", Some("alice"))] {
        let request = AssignRequest {
            job_id: format!("j-{id}"),
            phone_number_id: "1".into(),
            contact: ContactRef {
                user_id: Some(format!("US.{id}")),
                ..Default::default()
            },
            conversation_id: id.into(),
            language: "en".into(),
            reason: crate::routing::job::HandoffReason::Completed,
            answers: BTreeMap::new(),
            fields: BTreeMap::new(),
            last_inbound_at: NOW - 60,
            requested_at: NOW - 60,
            supersedes: false,
            vars: BTreeMap::new(),
        };
        let mut t = Ticket::new(request, "sales".into(), false);
        if let Some(a) = owner {
            t.state = TicketState::Assigned;
            t.agent = Some(a.into());
            t.assigned_at = Some(NOW - 30);
        }
        store.tickets.lock().unwrap().insert(id.into(), t);
        let record = ConversationRecord {
            id: id.into(),
            phone_number_id: "1".into(),
            contact: ContactState {
                phone_number_id: "1".into(),
                key: format!("US.{id}").into(),
                identity: ContactRef {
                    user_id: Some(format!("US.{id}")),
                    ..Default::default()
                },
                ..Default::default()
            },
            survey_id: "default".into(),
            survey_version: 0,
            language: "en".into(),
            answers: BTreeMap::new(),
            vars: BTreeMap::new(),
            last_inbound_at: NOW - 60,
            closed_at: None,
        };
        store.records.lock().unwrap().insert(id.into(), record);
    }
    AgentApiCore {
        store,
        outbound: Recorder::default(),
        assignment: Recorder::default(),
        transcript: MemoryTranscript::default(),
        catalog: SurveyCatalog::new(NoSurveys, "default".into(), Duration::from_secs(60)).unwrap(),
        clock: Clock::at_unix(NOW),
        settings: ApiSettings {
            auth: AuthConfig {
                machine_clients: vec![],
            },
            transcript_retention_days: 365,
        },
    }
}

fn req(who: Option<(&str, &str)>, method: &str, path: &str, body: &str) -> ApiRequest {
    ApiRequest {
        method: method.into(),
        path: path.into(),
        body: body.as_bytes().to_vec(),
        claims: who.map(|(name, groups)| {
            HashMap::from([
                ("sub".to_owned(), format!("sub-{name}")),
                ("username".to_owned(), name.to_owned()),
                ("cognito:groups".to_owned(), groups.to_owned()),
            ])
        }),
        ..ApiRequest::default()
    }
}

const TEXT: &str = r#"{"text":"hello"}"#;

#[tokio::test]
async fn without_claims_every_path_is_401_even_an_unknown_one() {
    let api = api(false);
    for path in ["/api/me", "/api/nope", "/api/conversations/c-a"] {
        assert_eq!(
            api.handle(&req(None, "GET", path, "")).await.status,
            401,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_waiting_conversation_is_readable_by_the_team_but_not_answerable() {
    let api = api(false);
    let alice = Some(("alice", "[agents]"));
    assert_eq!(
        api.handle(&req(alice, "GET", "/api/conversations/c-w", ""))
            .await
            .status,
        200
    );
    for path in [
        "/api/conversations/c-w/messages",
        "/api/conversations/c-w/close",
    ] {
        let r = api.handle(&req(alice, "POST", path, TEXT)).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].clone()),
            (409, json!("read_only")),
            "{path}"
        );
    }
    assert!(api.outbound.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_lead_answers_a_teammate_s_conversation() {
    let api = api(false);
    let bruno = Some(("bruno", "[agents leads]"));
    let r = api
        .handle(&req(bruno, "POST", "/api/conversations/c-a/messages", TEXT))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        r.body["message"]["author"],
        json!({"kind": "agent", "agent_id": "bruno"})
    );
    assert_eq!(api.outbound.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_sends_once_and_answers_the_first_response() {
    let api = api(false);
    let mut r = req(
        Some(("alice", "[agents]")),
        "POST",
        "/api/conversations/c-a/messages",
        TEXT,
    );
    r.idempotency_key = Some("k".into());
    let first = api.handle(&r).await;
    r.body = br#"{"text":"something else"}"#.to_vec();
    let again = api.handle(&r).await;
    assert_eq!(first, again);
    assert_eq!(api.outbound.0.lock().unwrap().len(), 1);
    let entries = api.transcript.of("c-a");
    assert_eq!(entries.len(), 1, "one transcript entry");
}

#[tokio::test]
async fn a_throttled_store_is_a_retryable_503_without_its_error_text() {
    let api = api(true);
    let r = api
        .handle(&req(Some(("alice", "[agents]")), "GET", "/api/me", ""))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (503, json!("unavailable"))
    );
    assert!(!r.body.to_string().contains("throttled"));
}

#[tokio::test]
async fn reading_a_waiting_conversation_marks_nothing_read() {
    let api = api(false);
    let entry = Entry {
        id: crate::transcript::entry_id(NOW * 1000, "in"),
        at: NOW * 1000,
        author: Author::Contact,
        body: Body::Text { text: "hi".into() },
        status: None,
        wamid: Some("wamid.1".into()),
    };
    for id in ["c-w", "c-a"] {
        api.transcript
            .append(id, std::slice::from_ref(&entry), NOW)
            .await
            .unwrap();
    }
    let alice = Some(("alice", "[agents]"));
    api.handle(&req(alice, "GET", "/api/conversations/c-w", ""))
        .await;
    assert!(
        api.outbound.0.lock().unwrap().is_empty(),
        "nobody serves it yet"
    );
    api.handle(&req(alice, "GET", "/api/conversations/c-a", ""))
        .await;
    assert_eq!(api.outbound.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn another_agent_reusing_an_idempotency_key_gets_404_not_the_first_response() {
    let api = api(false);
    let mut r = req(
        Some(("alice", "[agents]")),
        "POST",
        "/api/conversations/c-a/messages",
        TEXT,
    );
    r.idempotency_key = Some("k".into());
    assert_eq!(api.handle(&r).await.status, 202);
    let mut other = req(
        Some(("carol", "[agents]")),
        "POST",
        "/api/conversations/c-a/messages",
        TEXT,
    );
    other.idempotency_key = Some("k".into());
    let answer = api.handle(&other).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
}

fn with_query(mut r: ApiRequest, pairs: &[(&str, &str)]) -> ApiRequest {
    r.query = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    r
}

#[tokio::test]
async fn the_templates_of_a_team_name_what_their_parameters_stand_for() {
    let api = api(false);
    let alice = Some(("alice", "[agents]"));
    let r = api
        .handle(&with_query(
            req(alice, "GET", "/api/templates", ""),
            &[("team", "sales")],
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["templates"],
        json!([
            {"kind": "assigned", "name": "agent_assigned", "parameters": ["agent name"]},
            {"kind": "away", "name": "we_are_away", "parameters": []},
        ])
    );
    assert_eq!(r.body["language"], "en");
}

#[tokio::test]
async fn templates_of_an_unknown_team_are_404_and_without_a_team_400() {
    let api = api(false);
    let alice = Some(("alice", "[agents]"));
    let unknown = with_query(req(alice, "GET", "/api/templates", ""), &[("team", "ops")]);
    assert_eq!(api.handle(&unknown).await.status, 404);
    let r = api.handle(&req(alice, "GET", "/api/templates", "")).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].clone()),
        (400, json!("team"))
    );
}

#[tokio::test]
async fn a_team_s_agents_are_listed_and_filtered_by_status() {
    let api = api(false);
    api.store
        .agents
        .lock()
        .unwrap()
        .get_mut("bruno")
        .unwrap()
        .status = AgentStatus::Away;
    let alice = Some(("alice", "[agents]"));
    let path = "/api/teams/sales/agents";
    let all = api.handle(&req(alice, "GET", path, "")).await;
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&all.body), ["alice", "bruno"]);
    let online = api
        .handle(&with_query(
            req(alice, "GET", path, ""),
            &[("status", "online")],
        ))
        .await;
    assert_eq!(ids(&online.body), ["alice"]);
    assert_eq!(online.body["agents"][0]["capacity"], 3);
    let unknown = api
        .handle(&req(alice, "GET", "/api/teams/ops/agents", ""))
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn a_peek_reads_an_assigned_conversation_without_marking_it_read() {
    let api = api(false);
    let entry = Entry {
        id: event_entry_id(NOW * 1000, EventRank::Message, "in-1"),
        at: NOW * 1000,
        author: Author::Contact,
        body: Body::Text { text: "hi".into() },
        status: None,
        wamid: Some("wamid.1".into()),
    };
    api.transcript
        .append("c-a", &[entry], NOW + 1000)
        .await
        .unwrap();
    let alice = Some(("alice", "[agents]"));
    let peek = with_query(
        req(alice, "GET", "/api/conversations/c-a", ""),
        &[("peek", "true")],
    );
    let r = api.handle(&peek).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["transcript"]["entries"].as_array().unwrap().len(), 1);
    assert!(api.outbound.0.lock().unwrap().is_empty(), "no read receipt");
    api.handle(&req(alice, "GET", "/api/conversations/c-a", ""))
        .await;
    assert_eq!(api.outbound.0.lock().unwrap().len(), 1, "a read receipt");
}

/// Turns `id` into a web chat conversation whose visitor last wrote two days ago.
fn make_web(api: &Api, id: &str) {
    let visitor = "V.abcdefghijklmnop";
    let mut tickets = api.store.tickets.lock().unwrap();
    let t = tickets.get_mut(id).unwrap();
    t.request.phone_number_id = "web".into();
    t.request.contact.user_id = Some(visitor.into());
    let mut records = api.store.records.lock().unwrap();
    let r = records.get_mut(id).unwrap();
    r.phone_number_id = "web".into();
    r.contact.phone_number_id = "web".into();
    r.contact.key = visitor.into();
    r.contact.identity.user_id = Some(visitor.into());
    r.last_inbound_at = NOW - 2 * 24 * 3600;
}

#[tokio::test]
async fn a_web_conversation_has_no_window_and_says_its_channel() {
    let api = api(false);
    make_web(&api, "c-a");
    let alice = Some(("alice", "[agents]"));
    let view = api
        .handle(&req(alice, "GET", "/api/conversations/c-a", ""))
        .await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(
        (
            &view.body["channel"],
            &view.body["window_open"],
            &view.body["window_closes_at"]
        ),
        (&json!("web"), &json!(true), &Value::Null)
    );
    let r = api
        .handle(&req(alice, "POST", "/api/conversations/c-a/messages", TEXT))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let queued = api.outbound.0.lock().unwrap().clone();
    let msg: OutboundMessage = serde_json::from_str(&queued[0].body).unwrap();
    assert_eq!(msg.phone_number_id, "web");
    assert_eq!(msg.recipient.user_id.as_deref(), Some("V.abcdefghijklmnop"));
    // The WhatsApp conversation says so too, and its window still applies.
    let other = list_item_view(&api.store.tickets.lock().unwrap()["c-w"], None, None, NOW);
    assert_eq!(other["channel"], "whatsapp");
    let web = summary_view(&api.store.tickets.lock().unwrap()["c-a"]);
    assert_eq!(web["channel"], "web");
}
