//! DynamoDB store of the agent assigner: agents, teams, routing rules and hand-off tickets.
//!
//! | item          | pk                      | sk        | gsi1pk / gsi1sk |
//! |---------------|-------------------------|-----------|-----------------|
//! | agent         | `AGENT#{id}` (`open`, `capacity`, `status`, `convs` = reservations) | `AGENT`   | `AGENTS` / `{id}` |
//! | team          | `TEAM#{id}`             | `TEAM`    | `TEAMS` / `{id}` |
//! | routing rules | `ROUTING`               | `ROUTING` | - |
//! | hand-off      | `HANDOFF#{conversation_id}` | `HANDOFF` | waiting: `WAIT#{team}` / `{0 VIP, 1 other}#{requested_at:012}#{conversation_id}`; assigned but not yet announced: `ANNOUNCE#{team}` / same |
//!
//! A hand-off ticket is the assigner's record of one conversation's hand-off and its
//! idempotency key: it stores the `job_id` that opened it, so a redelivered job finds its
//! ticket instead of opening another. The waiting line is the `WAIT#{team}` partition of `gsi1`,
//! ordered VIP first, then oldest. The `ANNOUNCE#{team}` partition holds assigned tickets whose
//! contact message or agent notification is still to go out (`contact_told`,
//! `notify_attempts`, `notify_retry_at`); [`RoutingStore::cancel`] closes a ticket the contact
//! left (stop, restart) without closing the conversation.
//!
//! Capacity is never exceeded because a slot is taken only by one conditional write on the
//! agent item, `open = open + 1, convs.{conversation} = now` under the condition
//! `status = online AND open < capacity AND attribute_not_exists(convs.{conversation})`;
//! DynamoDB applies conditional writes to one item one at a time, so concurrent assigners cannot
//! both win the last slot, and the same conversation can never hold two slots. The ticket then
//! moves from `waiting` to `assigned` under the condition that it is still waiting; the loser of
//! that race gives its slot back. The agent's `convs` map makes every slot traceable to its
//! conversation, so [`RoutingStore::reconcile`] can free a slot a crash left behind.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Select};

use super::{attr, DynamoTable, StoreError};
use crate::routing::job::AssignRequest;
use crate::routing::model::{Agent, AgentStatus, Team};
use crate::routing::rules::RoutingConfig;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Waiting,
    Assigned,
    Closed,
}

impl TicketState {
    fn as_str(self) -> &'static str {
        match self {
            TicketState::Waiting => "waiting",
            TicketState::Assigned => "assigned",
            TicketState::Closed => "closed",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "waiting" => Some(TicketState::Waiting),
            "assigned" => Some(TicketState::Assigned),
            "closed" => Some(TicketState::Closed),
            _ => None,
        }
    }
}

/// One conversation's hand-off.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub conversation_id: String,
    pub job_id: String,
    pub team: String,
    pub state: TicketState,
    pub vip: bool,
    pub requested_at: i64,
    /// The job as received: what the contact messages and the agent notification are built from.
    pub request: AssignRequest,
    pub agent: Option<String>,
    pub assigned_at: Option<i64>,
    /// The contact and the agent were told about the assignment (or the agent notification
    /// was given up): the ticket left the announce list.
    pub announced: bool,
    /// The contact's assigned message went out.
    pub contact_told: bool,
    /// Failed attempts to notify the agent so far.
    pub notify_attempts: u32,
    /// When the next notification attempt is due (set after a retryable failure).
    pub notify_retry_at: Option<i64>,
    pub closed_at: Option<i64>,
}

impl Ticket {
    pub fn new(request: AssignRequest, team: String, vip: bool) -> Self {
        Ticket {
            conversation_id: request.conversation_id.clone(),
            job_id: request.job_id.clone(),
            team,
            state: TicketState::Waiting,
            vip,
            requested_at: request.requested_at,
            request,
            agent: None,
            assigned_at: None,
            announced: false,
            contact_told: false,
            notify_attempts: 0,
            notify_retry_at: None,
            closed_at: None,
        }
    }

    /// Sort key in the waiting line: VIP first, then oldest, then conversation id.
    pub fn line_key(&self) -> String {
        format!(
            "{}#{:012}#{}",
            if self.vip { 0 } else { 1 },
            self.requested_at.max(0),
            self.conversation_id
        )
    }
}

/// Result of opening a ticket for a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// A new ticket, waiting.
    New(Ticket),
    /// The conversation already has an open ticket, or this job's ticket exists (redelivery).
    Existing(Ticket),
}

/// Result of trying to give a ticket to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOutcome {
    Assigned,
    /// The agent went offline or is at capacity (a concurrent assignment won).
    AgentUnavailable,
    /// The ticket is no longer waiting (another assigner took it, or it was closed).
    TicketTaken,
    /// The conversation was closed meanwhile; the ticket has been closed too.
    ConversationClosed,
}

/// Where the announcement of an assignment stands after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// Contact told, agent notified (or not to be notified, or given up): leaves the list.
    Done,
    /// Contact told; the agent notification failed `attempts` times and is due again at
    /// `retry_at`.
    NotifyLater { attempts: u32, retry_at: i64 },
}

/// Result of closing a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Closed; the agent's slot (if it was assigned) is free again.
    Closed {
        team: String,
        agent: Option<String>,
    },
    AlreadyClosed,
    NotFound,
}

/// The assigner's port on the state table.
#[derive(Clone, Debug)]
pub struct RoutingStore {
    table: DynamoTable,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(attr::PK.to_owned(), s(pk)), (attr::SK.to_owned(), s(sk))])
}

fn agent_pk(id: &str) -> String {
    format!("AGENT#{id}")
}
fn team_pk(id: &str) -> String {
    format!("TEAM#{id}")
}
fn ticket_pk(conversation_id: &str) -> String {
    format!("HANDOFF#{conversation_id}")
}
fn wait_pk(team: &str) -> String {
    format!("WAIT#{team}")
}
fn announce_pk(team: &str) -> String {
    format!("ANNOUNCE#{team}")
}

fn corrupt(item: &Item, reason: impl Into<String>) -> StoreError {
    let key = item
        .get(attr::PK)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    StoreError::Corrupt {
        key,
        reason: reason.into(),
    }
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(item, format!("{name} missing")))
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(item, format!("{name} missing or not a number")))
}

fn opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn get_json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    serde_json::from_str(get_s(item, name)?).map_err(|e| corrupt(item, format!("{name}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Request(format!("serialise: {e}")))
}

/// The parts of an agent that are not live counters.
#[derive(serde::Serialize, serde::Deserialize)]
struct AgentSpec {
    name: String,
    teams: Vec<String>,
    #[serde(default)]
    languages: Vec<String>,
}

fn agent_from(item: &Item) -> Result<Agent, StoreError> {
    let spec: AgentSpec = get_json(item, "spec")?;
    let status: AgentStatus = get_s(item, "status")?
        .parse()
        .map_err(|e: String| corrupt(item, e))?;
    Ok(Agent {
        id: get_s(item, "agent_id")?.to_owned(),
        name: spec.name,
        teams: spec.teams,
        languages: spec.languages,
        status,
        capacity: get_n(item, "capacity")?,
        open: opt_n(item, "open").unwrap_or(0),
        last_assigned_at: opt_n(item, "last_assigned_at").unwrap_or(0),
    })
}

fn get_bool(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

fn ticket_from(item: &Item) -> Result<Ticket, StoreError> {
    let state =
        TicketState::parse(get_s(item, "state")?).ok_or_else(|| corrupt(item, "unknown state"))?;
    Ok(Ticket {
        conversation_id: get_s(item, "conversation_id")?.to_owned(),
        job_id: get_s(item, "job_id")?.to_owned(),
        team: get_s(item, "team")?.to_owned(),
        state,
        vip: item
            .get("vip")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        requested_at: get_n(item, "requested_at")?,
        request: get_json(item, "request")?,
        agent: item.get("agent").and_then(|v| v.as_s().ok()).cloned(),
        assigned_at: opt_n(item, "assigned_at"),
        announced: get_bool(item, "announced"),
        contact_told: get_bool(item, "contact_told"),
        notify_attempts: opt_n(item, "notify_attempts").unwrap_or(0),
        notify_retry_at: opt_n(item, "notify_retry_at"),
        closed_at: opt_n(item, "closed_at"),
    })
}

impl RoutingStore {
    pub fn new(table: DynamoTable) -> Self {
        RoutingStore { table }
    }

    fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.table.client
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out.item)
    }

    /// Every item of a `gsi1` partition, in sort-key order, optionally below a sort key.
    async fn query_gsi(&self, pk: &str, below: Option<&str>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client()
                .query()
                .table_name(&self.table.name)
                .index_name(attr::GSI1)
                .expression_attribute_values(":p", s(pk))
                .set_exclusive_start_key(start.take());
            q = match below {
                Some(sk) => q
                    .key_condition_expression("gsi1pk = :p AND gsi1sk < :s")
                    .expression_attribute_values(":s", s(sk)),
                None => q.key_condition_expression("gsi1pk = :p"),
            };
            let out = q.send().await.map_err(StoreError::from_sdk)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    // ------------------------------------------------------------------ agents

    /// Creates or updates an agent; the live counters (`open`, `last_assigned_at`) are kept.
    pub async fn upsert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let spec = AgentSpec {
            name: agent.name.clone(),
            teams: agent.teams.clone(),
            languages: agent.languages.clone(),
        };
        self.client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(agent_pk(&agent.id), "AGENT")))
            .update_expression(
                "SET agent_id = :id, spec = :spec, #status = :status, #cap = :cap, \
                 #open = if_not_exists(#open, :zero), convs = if_not_exists(convs, :empty), last_assigned_at = if_not_exists(last_assigned_at, :zero), \
                 gsi1pk = :g, gsi1sk = :id",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#open", "open")
            .expression_attribute_names("#cap", "capacity")
            .expression_attribute_values(":id", s(&agent.id))
            .expression_attribute_values(":spec", s(to_json(&spec)?))
            .expression_attribute_values(":status", s(agent.status.as_str()))
            .expression_attribute_values(":cap", n(agent.capacity))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":g", s("AGENTS"))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    pub async fn get_agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.get(agent_pk(id), "AGENT")
            .await?
            .as_ref()
            .map(agent_from)
            .transpose()
    }

    pub async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.query_gsi("AGENTS", None)
            .await?
            .iter()
            .map(agent_from)
            .collect()
    }

    /// Sets status and/or capacity of an existing agent. `ConditionFailed` when it does not exist.
    pub async fn set_agent(
        &self,
        id: &str,
        status: Option<AgentStatus>,
        capacity: Option<u32>,
    ) -> Result<(), StoreError> {
        let mut sets = Vec::new();
        let mut req = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(agent_pk(id), "AGENT")))
            .condition_expression("attribute_exists(pk)");
        if let Some(st) = status {
            sets.push("#status = :status");
            req = req
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(st.as_str()));
        }
        if let Some(cap) = capacity {
            sets.push("#cap = :cap");
            req = req
                .expression_attribute_names("#cap", "capacity")
                .expression_attribute_values(":cap", n(cap));
        }
        if sets.is_empty() {
            return Ok(());
        }
        req.update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    // ------------------------------------------------------------------ teams and rules

    pub async fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        let mut item = key(team_pk(&team.id), "TEAM");
        item.insert("spec".into(), s(to_json(team)?));
        item.insert(attr::GSI1_PK.into(), s("TEAMS"));
        item.insert(attr::GSI1_SK.into(), s(&team.id));
        self.client()
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    pub async fn get_team(&self, id: &str) -> Result<Option<Team>, StoreError> {
        self.get(team_pk(id), "TEAM")
            .await?
            .as_ref()
            .map(|i| get_json(i, "spec"))
            .transpose()
    }

    pub async fn list_teams(&self) -> Result<Vec<Team>, StoreError> {
        self.query_gsi("TEAMS", None)
            .await?
            .iter()
            .map(|i| get_json(i, "spec"))
            .collect()
    }

    pub async fn put_routing(&self, config: &RoutingConfig) -> Result<(), StoreError> {
        let mut item = key("ROUTING".into(), "ROUTING");
        item.insert("spec".into(), s(to_json(config)?));
        self.client()
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    pub async fn get_routing(&self) -> Result<Option<RoutingConfig>, StoreError> {
        self.get("ROUTING".into(), "ROUTING")
            .await?
            .as_ref()
            .map(|i| get_json(i, "spec"))
            .transpose()
    }

    // ------------------------------------------------------------------ tickets

    pub async fn get_ticket(&self, conversation_id: &str) -> Result<Option<Ticket>, StoreError> {
        self.get(ticket_pk(conversation_id), "HANDOFF")
            .await?
            .as_ref()
            .map(ticket_from)
            .transpose()
    }

    /// Opens a waiting ticket for the job, unless the conversation has an open ticket or this
    /// job was seen before (then the existing ticket is returned).
    pub async fn open_ticket(&self, ticket: &Ticket) -> Result<Opened, StoreError> {
        let mut item = key(ticket_pk(&ticket.conversation_id), "HANDOFF");
        item.insert("conversation_id".into(), s(&ticket.conversation_id));
        item.insert("job_id".into(), s(&ticket.job_id));
        item.insert("team".into(), s(&ticket.team));
        item.insert("state".into(), s(TicketState::Waiting.as_str()));
        item.insert("vip".into(), AttributeValue::Bool(ticket.vip));
        item.insert("requested_at".into(), n(ticket.requested_at));
        item.insert("request".into(), s(to_json(&ticket.request)?));
        item.insert(attr::GSI1_PK.into(), s(wait_pk(&ticket.team)));
        item.insert(attr::GSI1_SK.into(), s(ticket.line_key()));
        let put = self
            .client()
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            // A closed conversation may be handed off again, by a new job.
            .condition_expression(
                "attribute_not_exists(pk) OR (#state = :closed AND job_id <> :job)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":closed", s(TicketState::Closed.as_str()))
            .expression_attribute_values(":job", s(&ticket.job_id))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match put {
            Ok(_) => Ok(Opened::New(ticket.clone())),
            Err(StoreError::ConditionFailed(_)) => {
                match self.get_ticket(&ticket.conversation_id).await? {
                    Some(existing) => Ok(Opened::Existing(existing)),
                    None => Err(StoreError::Unavailable(
                        "ticket vanished after a conditional failure".into(),
                    )),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A team's waiting line in order (VIP first, then oldest).
    pub async fn waiting(&self, team: &str) -> Result<Vec<Ticket>, StoreError> {
        self.query_gsi(&wait_pk(team), None)
            .await?
            .iter()
            .map(ticket_from)
            .collect()
    }

    /// Assigned tickets whose contact and agent were not yet told (an earlier attempt failed).
    pub async fn unannounced(&self, team: &str) -> Result<Vec<Ticket>, StoreError> {
        self.query_gsi(&announce_pk(team), None)
            .await?
            .iter()
            .map(ticket_from)
            .collect()
    }

    /// 1-based position of a waiting ticket in its team's line.
    pub async fn position(&self, ticket: &Ticket) -> Result<u32, StoreError> {
        let mut ahead: u32 = 0;
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(&self.table.name)
                .index_name(attr::GSI1)
                .key_condition_expression("gsi1pk = :p AND gsi1sk < :s")
                .expression_attribute_values(":p", s(wait_pk(&ticket.team)))
                .expression_attribute_values(":s", s(ticket.line_key()))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            ahead = ahead.saturating_add(u32::try_from(out.count).unwrap_or(0));
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(ahead.saturating_add(1)),
            }
        }
    }

    /// Reserves a slot on the agent for a conversation: one conditional write, idempotent per
    /// conversation (`convs.{conversation_id}` holds the reservation time).
    async fn reserve(
        &self,
        agent_id: &str,
        conversation_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(agent_pk(agent_id), "AGENT")))
            .update_expression("SET #open = #open + :one, last_assigned_at = :now, convs.#c = :now")
            .condition_expression(
                "#status = :online AND #open < #cap AND attribute_not_exists(convs.#c)",
            )
            .expression_attribute_names("#open", "open")
            .expression_attribute_names("#cap", "capacity")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#c", conversation_id)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":online", s(AgentStatus::Online.as_str()))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match res {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives a reserved slot back; a no-op when there is no reservation for the conversation.
    pub async fn release(&self, agent_id: &str, conversation_id: &str) -> Result<bool, StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(agent_pk(agent_id), "AGENT")))
            .update_expression("SET #open = #open - :one REMOVE convs.#c")
            .condition_expression("attribute_exists(convs.#c) AND #open > :zero")
            .expression_attribute_names("#open", "open")
            .expression_attribute_names("#c", conversation_id)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match res {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The conversations an agent holds a slot for, with the reservation time.
    pub async fn reservations(&self, agent_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let Some(item) = self.get(agent_pk(agent_id), "AGENT").await? else {
            return Ok(Vec::new());
        };
        let map = item.get("convs").and_then(|v| v.as_m().ok());
        Ok(map
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_n().ok().and_then(|x| x.parse().ok()).unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Gives a waiting ticket to an agent, in three single-item conditional writes:
    /// reserve the agent's slot (`open < capacity`), move the ticket from `waiting` to
    /// `assigned` (still to be announced), record it on the conversation. A lost condition
    /// undoes the earlier steps. Not one transaction on purpose: each step is atomic on its
    /// own, a crash between steps leaves a reservation that [`RoutingStore::reconcile`] frees,
    /// and a cancelled transaction is what moto (our test server) implements by restoring the
    /// whole table, which would lose concurrent writes in the tests.
    pub async fn assign(
        &self,
        ticket: &Ticket,
        agent_id: &str,
        now: i64,
    ) -> Result<AssignOutcome, StoreError> {
        if !self.reserve(agent_id, &ticket.conversation_id, now).await? {
            return Ok(AssignOutcome::AgentUnavailable);
        }
        let take = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(ticket_pk(&ticket.conversation_id), "HANDOFF")))
            .update_expression(
                "SET #state = :assigned, #agent = :agent, assigned_at = :now, announced = :no, gsi1pk = :g",
            )
            .condition_expression("#state = :waiting AND job_id = :job")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#agent", "agent")
            .expression_attribute_values(":assigned", s(TicketState::Assigned.as_str()))
            .expression_attribute_values(":waiting", s(TicketState::Waiting.as_str()))
            .expression_attribute_values(":agent", s(agent_id))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":g", s(announce_pk(&ticket.team)))
            .expression_attribute_values(":job", s(&ticket.job_id))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match take {
            Ok(_) => {}
            Err(StoreError::ConditionFailed(_)) => {
                self.release(agent_id, &ticket.conversation_id).await?;
                return Ok(AssignOutcome::TicketTaken);
            }
            Err(e) => {
                // Unknown whether the write happened: keep the reservation, reconcile decides.
                return Err(e);
            }
        }
        // Only the attributes the key layout grants the assigner on the conversation item.
        let record = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(
                format!("CONV#{}", ticket.conversation_id),
                "CONV",
            )))
            .update_expression(
                "SET assigned_agent = :agent, assigned_team = :team, assigned_at = :now",
            )
            .condition_expression("attribute_not_exists(closed_at)")
            .expression_attribute_values(":agent", s(agent_id))
            .expression_attribute_values(":team", s(&ticket.team))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match record {
            Ok(_) => Ok(AssignOutcome::Assigned),
            Err(StoreError::ConditionFailed(_)) => {
                self.shut(ticket, TicketState::Assigned, "conversation", now)
                    .await?;
                self.release(agent_id, &ticket.conversation_id).await?;
                Ok(AssignOutcome::ConversationClosed)
            }
            Err(e) => Err(e),
        }
    }

    /// Frees reservations older than `grace` seconds whose ticket is not assigned to that agent
    /// (left by a crash between the steps of [`RoutingStore::assign`] or of a close).
    pub async fn reconcile(&self, now: i64, grace: i64) -> Result<u32, StoreError> {
        let mut freed = 0;
        for agent in self.list_agents().await? {
            for (conv, at) in self.reservations(&agent.id).await? {
                if now.saturating_sub(at) < grace {
                    continue;
                }
                let holds = self.get_ticket(&conv).await?.is_some_and(|t| {
                    t.state == TicketState::Assigned
                        && t.agent.as_deref() == Some(agent.id.as_str())
                });
                if !holds && self.release(&agent.id, &conv).await? {
                    freed += 1;
                }
            }
        }
        Ok(freed)
    }

    /// Records an announcement attempt on an assigned ticket, in one write: `Done` takes it
    /// off the announce index; `NotifyLater` keeps it there with the contact marked as told.
    /// A ticket closed meanwhile is left alone.
    pub async fn record_announcement(
        &self,
        ticket: &Ticket,
        step: Announcement,
    ) -> Result<(), StoreError> {
        let req = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(ticket_pk(&ticket.conversation_id), "HANDOFF")))
            .condition_expression("#state = :assigned AND job_id = :job")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":assigned", s(TicketState::Assigned.as_str()))
            .expression_attribute_values(":job", s(&ticket.job_id));
        let req = match step {
            Announcement::Done => req.update_expression(
                "SET announced = :yes, contact_told = :yes REMOVE gsi1pk, gsi1sk, notify_retry_at",
            ),
            Announcement::NotifyLater { attempts, retry_at } => req
                .update_expression(
                    "SET contact_told = :yes, notify_attempts = :a, notify_retry_at = :r",
                )
                .expression_attribute_values(":a", n(attempts))
                .expression_attribute_values(":r", n(retry_at)),
        };
        match req.send().await.map_err(StoreError::from_sdk) {
            // Closed meanwhile: nothing left to announce.
            Ok(_) | Err(StoreError::ConditionFailed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The contact's latest inbound message as the survey engine recorded it on the
    /// conversation (`last_inbound_at`), if the conversation item has one.
    pub async fn last_inbound_at(&self, conversation_id: &str) -> Result<Option<i64>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key(format!("CONV#{conversation_id}"), "CONV")))
            .projection_expression("last_inbound_at")
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out.item.as_ref().and_then(|i| opt_n(i, "last_inbound_at")))
    }

    /// Moves a ticket from `from` to `closed` (and out of the indexes). False when it was not
    /// in that state (any more).
    async fn shut(
        &self,
        ticket: &Ticket,
        from: TicketState,
        by: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(ticket_pk(&ticket.conversation_id), "HANDOFF")))
            .update_expression(
                "SET #state = :closed, closed_at = :now, closed_by = :by REMOVE gsi1pk, gsi1sk",
            )
            .condition_expression("#state = :from AND job_id = :job")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":closed", s(TicketState::Closed.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":by", s(by))
            .expression_attribute_values(":job", s(&ticket.job_id))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match res {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Closes a conversation's hand-off: a waiting one leaves the line; an assigned one frees
    /// its agent's slot. Records `closed_at`/`closed_by` on the conversation item. Safe to
    /// repeat: a close interrupted after the ticket step is finished by a second close or by
    /// [`RoutingStore::reconcile`].
    pub async fn close(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
    ) -> Result<CloseOutcome, StoreError> {
        // A concurrent assignment can move a waiting ticket to assigned between read and
        // write; the conditional write notices and the loop reads again.
        for _ in 0..3 {
            let Some(ticket) = self.get_ticket(conversation_id).await? else {
                return Ok(CloseOutcome::NotFound);
            };
            if ticket.state == TicketState::Closed {
                if let Some(agent) = &ticket.agent {
                    self.release(agent, conversation_id).await?;
                }
                return Ok(CloseOutcome::AlreadyClosed);
            }
            if self.shut(&ticket, ticket.state, by, now).await? {
                if let Some(agent) = &ticket.agent {
                    self.release(agent, conversation_id).await?;
                }
                self.record_closed(conversation_id, by, now).await?;
                return Ok(CloseOutcome::Closed {
                    team: ticket.team,
                    agent: ticket.agent,
                });
            }
        }
        Err(StoreError::Unavailable(format!(
            "closing {conversation_id}: the ticket kept changing"
        )))
    }

    /// Cancels a hand-off the contact left (stop, restart, end): a waiting ticket leaves the
    /// line, an assigned one frees its agent's slot, and the assignment is taken off the
    /// conversation item. Unlike [`RoutingStore::close`] the conversation itself is not marked
    /// closed: after a restart it goes on. A ticket requested after `requested_before` belongs
    /// to a later hand-off and is left alone (`NotFound`). Safe to repeat.
    pub async fn cancel(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
        requested_before: i64,
    ) -> Result<CloseOutcome, StoreError> {
        for _ in 0..3 {
            let Some(ticket) = self.get_ticket(conversation_id).await? else {
                return Ok(CloseOutcome::NotFound);
            };
            if ticket.requested_at > requested_before {
                return Ok(CloseOutcome::NotFound);
            }
            if ticket.state == TicketState::Closed {
                if let Some(agent) = &ticket.agent {
                    self.release(agent, conversation_id).await?;
                }
                return Ok(CloseOutcome::AlreadyClosed);
            }
            if self.shut(&ticket, ticket.state, by, now).await? {
                if let (Some(agent), Some(at)) = (&ticket.agent, ticket.assigned_at) {
                    self.release(agent, conversation_id).await?;
                    self.forget_assignment(conversation_id, agent, at).await?;
                }
                return Ok(CloseOutcome::Closed {
                    team: ticket.team,
                    agent: ticket.agent,
                });
            }
        }
        Err(StoreError::Unavailable(format!(
            "cancelling {conversation_id}: the ticket kept changing"
        )))
    }

    /// Removes what [`RoutingStore::assign`] recorded on the conversation, unless a later
    /// assignment replaced it.
    async fn forget_assignment(
        &self,
        conversation_id: &str,
        agent: &str,
        assigned_at: i64,
    ) -> Result<(), StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(format!("CONV#{conversation_id}"), "CONV")))
            .update_expression("REMOVE assigned_agent, assigned_team, assigned_at")
            .condition_expression("assigned_agent = :agent AND assigned_at = :at")
            .expression_attribute_values(":agent", s(agent))
            .expression_attribute_values(":at", n(assigned_at))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match res {
            Ok(_) | Err(StoreError::ConditionFailed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn record_closed(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(format!("CONV#{conversation_id}"), "CONV")))
            .update_expression("SET closed_at = :now, closed_by = :by")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":by", s(by))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::job::HandoffReason;
    use crate::whatsapp::ContactRef;

    fn ticket(conv: &str, vip: bool, at: i64) -> Ticket {
        let req = AssignRequest {
            job_id: format!("job-{conv}"),
            phone_number_id: "1".into(),
            contact: ContactRef {
                wa_id: Some("16505551234".into()),
                ..Default::default()
            },
            conversation_id: conv.into(),
            language: "en".into(),
            reason: HandoffReason::Requested,
            answers: Default::default(),
            fields: Default::default(),
            last_inbound_at: at,
            requested_at: at,
            supersedes: false,
        };
        Ticket::new(req, "t".into(), vip)
    }

    #[test]
    fn line_keys_sort_vip_first_then_oldest() {
        let mut keys = [
            ticket("c", false, 1_700_000_000).line_key(),
            ticket("a", false, 999).line_key(),
            ticket("v", true, 1_800_000_000).line_key(),
            ticket("b", false, 1_700_000_000).line_key(),
        ];
        keys.sort();
        let convs: Vec<&str> = keys.iter().map(|k| k.rsplit('#').next().unwrap()).collect();
        assert_eq!(convs, ["v", "a", "b", "c"]);
    }

    #[test]
    fn tickets_round_trip_through_items() {
        let t = ticket("c1", true, 42);
        let mut item = key(ticket_pk("c1"), "HANDOFF");
        item.insert("conversation_id".into(), s("c1"));
        item.insert("job_id".into(), s("job-c1"));
        item.insert("team".into(), s("t"));
        item.insert("state".into(), s("waiting"));
        item.insert("vip".into(), AttributeValue::Bool(true));
        item.insert("requested_at".into(), n(42));
        item.insert(
            "request".into(),
            s(serde_json::to_string(&t.request).unwrap()),
        );
        assert_eq!(ticket_from(&item).unwrap(), t);
        item.insert("state".into(), s("lost"));
        assert!(matches!(
            ticket_from(&item),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
