//! The agent API's ports: small traits over what it reads and writes, with their DynamoDB
//! implementation [`DynamoApiStore`] (on [`RoutingStore`] for agents and hand-off tickets, and
//! on the conversation and contact items the survey engine writes).
//!
//! - [`AgentDirectory`]: an agent item, its status; teams and their agents.
//! - [`Handoffs`]: hand-off tickets by conversation, by agent (the agent item's reservations
//!   `convs`), by team (the waiting line `WAIT#{team}` in `gsi1`; every state in the team's
//!   `TEAM#{team}#{state}` partition of `gsi2`), closed ones by agent (the `CLOSED#{agent}`
//!   partition of `gsi1`, written at close: an index, never a scan), a page's tickets and
//!   their contacts' last message by key, close and transfer.
//! - [`Conversations`]: a conversation with its contact, answers and variables.
//! - [`Idempotency`]: the first response to an `Idempotency-Key`, kept 24 hours.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::routing::model::{Agent, AgentStatus, Team};
use crate::store::item::{n, s, to_json, ItemExt};
use crate::store::routing::{CloseOutcome, RoutingStore, Ticket, TicketState};
use crate::store::{attr, keys, DynamoTable, StoreError};
use crate::survey::engine::{ContactState, Conversation};


pub trait AgentDirectory: Send + Sync {
    fn agent(&self, id: &str) -> impl Future<Output = Result<Option<Agent>, StoreError>> + Send;
    /// `ConditionFailed` when the agent does not exist.
    fn set_status(
        &self,
        id: &str,
        status: AgentStatus,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every team id.
    fn team_ids(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    fn team(&self, id: &str) -> impl Future<Output = Result<Option<Team>, StoreError>> + Send;
    /// The agents of a team, by id.
    fn team_agents(
        &self,
        team: &str,
    ) -> impl Future<Output = Result<Vec<Agent>, StoreError>> + Send;
}

pub trait Handoffs: Send + Sync {
    fn ticket(
        &self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Option<Ticket>, StoreError>> + Send;
    /// The tickets an agent holds a slot for.
    fn assigned_to(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Vec<Ticket>, StoreError>> + Send;
    fn waiting(&self, team: &str) -> impl Future<Output = Result<Vec<Ticket>, StoreError>> + Send;
    /// The closed tickets the agent held, newest first, older than the sort key `before`.
    fn closed_by(
        &self,
        agent_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Ticket>, StoreError>> + Send;
    /// The sort keys (`{at:012}#{conversation_id}`) of a team's tickets in `state`, newest
    /// first, older than `before`.
    fn team_page(
        &self,
        team: &str,
        state: TicketState,
        before: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// The tickets of these conversations, as they are now (any order; unknown ones left out).
    fn tickets(
        &self,
        conversation_ids: &[String],
    ) -> impl Future<Output = Result<Vec<Ticket>, StoreError>> + Send;
    /// When each conversation's contact last wrote (Unix seconds), where known.
    fn last_inbound(
        &self,
        conversation_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, i64>, StoreError>> + Send;
    fn close(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
    ) -> impl Future<Output = Result<CloseOutcome, StoreError>> + Send;
}

/// A conversation as the agent API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRecord {
    pub id: String,
    pub phone_number_id: String,
    pub contact: ContactState,
    pub survey_id: String,
    pub survey_version: u32,
    pub language: String,
    pub answers: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    pub last_inbound_at: i64,
    pub closed_at: Option<i64>,
}

pub trait Conversations: Send + Sync {
    fn conversation(
        &self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Option<ConversationRecord>, StoreError>> + Send;
}

/// A response as first given, replayed for a repeated `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

pub trait Idempotency: Send + Sync {
    /// The response recorded for the key, unless expired at `now`.
    fn recall(
        &self,
        conversation_id: &str,
        key: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<StoredResponse>, StoreError>> + Send;
    /// Records the response unless one is recorded (then returns that one).
    fn remember(
        &self,
        conversation_id: &str,
        key: &str,
        response: &StoredResponse,
        now: i64,
    ) -> impl Future<Output = Result<Option<StoredResponse>, StoreError>> + Send;
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// All the ports on the state table.
#[derive(Clone, Debug)]
pub struct DynamoApiStore {
    routing: RoutingStore,
    table: DynamoTable,
}

impl DynamoApiStore {
    pub fn new(table: DynamoTable) -> Self {
        DynamoApiStore {
            routing: RoutingStore::new(table.clone()),
            table,
        }
    }

    async fn get(&self, key: keys::Key) -> Result<Option<crate::store::item::Item>, StoreError> {
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key.item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out.item)
    }
}

impl AgentDirectory for DynamoApiStore {
    async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.routing.get_agent(id).await
    }

    async fn set_status(&self, id: &str, status: AgentStatus) -> Result<(), StoreError> {
        self.routing.set_agent(id, Some(status), None).await
    }

    async fn team_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .routing
            .list_teams()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect())
    }

    async fn team(&self, id: &str) -> Result<Option<Team>, StoreError> {
        self.routing.get_team(id).await
    }

    async fn team_agents(&self, team: &str) -> Result<Vec<Agent>, StoreError> {
        let mut agents: Vec<Agent> = self
            .routing
            .list_agents()
            .await?
            .into_iter()
            .filter(|a| a.teams.iter().any(|t| t == team))
            .collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(agents)
    }
}

impl Handoffs for DynamoApiStore {
    async fn ticket(&self, conversation_id: &str) -> Result<Option<Ticket>, StoreError> {
        self.routing.get_ticket(conversation_id).await
    }

    async fn assigned_to(&self, agent_id: &str) -> Result<Vec<Ticket>, StoreError> {
        let mut out = Vec::new();
        for (conv, _) in self.routing.reservations(agent_id).await? {
            if let Some(t) = self.routing.get_ticket(&conv).await? {
                out.push(t);
            }
        }
        out.sort_by_key(|t| (t.assigned_at, t.conversation_id.clone()));
        Ok(out)
    }

    async fn waiting(&self, team: &str) -> Result<Vec<Ticket>, StoreError> {
        self.routing.waiting(team).await
    }

    async fn closed_by(
        &self,
        agent_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Ticket>, StoreError> {
        self.routing.closed_page(agent_id, before, limit).await
    }

    async fn team_page(
        &self,
        team: &str,
        state: TicketState,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.routing.team_page(team, state, before, limit).await
    }

    async fn tickets(&self, conversation_ids: &[String]) -> Result<Vec<Ticket>, StoreError> {
        self.routing.tickets(conversation_ids).await
    }

    async fn last_inbound(
        &self,
        conversation_ids: &[String],
    ) -> Result<HashMap<String, i64>, StoreError> {
        self.routing.last_inbound(conversation_ids).await
    }

    async fn close(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
    ) -> Result<CloseOutcome, StoreError> {
        self.routing.close(conversation_id, by, now).await
    }
}

impl Conversations for DynamoApiStore {
    async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let Some(conv) = self.get(keys::conversation(conversation_id)).await? else {
            return Ok(None);
        };
        let phone_number_id = conv.str_req("phone_number_id")?.to_owned();
        let contact_key = conv.str_req("contact_key")?.to_owned();
        let answers = conv
            .get("answers")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let (contact, vars) = match self
            .get(keys::contact(
                &phone_number_id,
                &contact_key.as_str().into(),
            ))
            .await?
        {
            Some(item) => {
                let doc: ContactDoc = item.json("doc")?;
                let vars = doc
                    .conversation
                    .filter(|c| c.id == conversation_id)
                    .map(|c| c.vars)
                    .unwrap_or_default();
                (doc.contact, vars)
            }
            None => (
                ContactState {
                    phone_number_id: phone_number_id.clone(),
                    key: contact_key.into(),
                    ..Default::default()
                },
                BTreeMap::new(),
            ),
        };
        Ok(Some(ConversationRecord {
            id: conversation_id.to_owned(),
            phone_number_id,
            contact,
            survey_id: conv.str_opt("survey_id").unwrap_or_default().to_owned(),
            survey_version: conv.num_opt("survey_version").unwrap_or(0),
            language: conv.str_opt("language").unwrap_or("en").to_owned(),
            answers,
            vars,
            last_inbound_at: conv.num_opt("last_inbound_at").unwrap_or(0),
            closed_at: conv.num_opt("closed_at"),
        }))
    }
}

/// The part of the contact item's `doc` the API reads.
#[derive(Deserialize)]
struct ContactDoc {
    contact: ContactState,
    #[serde(default)]
    conversation: Option<Conversation>,
}

impl Idempotency for DynamoApiStore {
    async fn recall(
        &self,
        conversation_id: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let Some(item) = self.get(keys::idempotency(conversation_id, key)).await? else {
            return Ok(None);
        };
        if item
            .num_opt::<i64>(attr::EXPIRES_AT)
            .is_some_and(|e| e <= now)
        {
            return Ok(None);
        }
        item.json("response").map(Some)
    }

    async fn remember(
        &self,
        conversation_id: &str,
        key: &str,
        response: &StoredResponse,
        now: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let mut item = keys::idempotency(conversation_id, key).item();
        item.insert("response".into(), s(to_json(response)?));
        item.insert(
            attr::EXPIRES_AT.into(),
            n(now.saturating_add(IDEMPOTENCY_TTL_SECONDS)),
        );
        let put = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match put {
            Ok(_) => Ok(None),
            Err(StoreError::ConditionFailed(_)) => self.recall(conversation_id, key, now).await,
            Err(e) => Err(e),
        }
    }
}
