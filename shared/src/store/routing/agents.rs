//! The agent directory: agents (with their live slot counters and reservations), teams and
//! routing rules, as methods of [`RoutingStore`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::RoutingStore;
use crate::routing::model::{Agent, AgentStatus, Team};
use crate::routing::rules::RoutingConfig;
use crate::store::item::{n, s, to_json, Item, ItemExt};
use crate::store::{attr, keys, StoreError};

/// The parts of an agent that are not live counters.
#[derive(serde::Serialize, serde::Deserialize)]
struct AgentSpec {
    name: String,
    teams: Vec<String>,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leads: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
}

fn agent_from(item: &Item) -> Result<Agent, StoreError> {
    let spec: AgentSpec = item.json("spec")?;
    let status: AgentStatus = item
        .str_req("status")?
        .parse()
        .map_err(|e: String| item.corrupt(e))?;
    Ok(Agent {
        id: item.str_req("agent_id")?.to_owned(),
        name: spec.name,
        teams: spec.teams,
        languages: spec.languages,
        leads: spec.leads,
        sub: spec.sub,
        status,
        capacity: item.num_req("capacity")?,
        open: item.num_opt("open").unwrap_or(0),
        last_assigned_at: item.num_opt("last_assigned_at").unwrap_or(0),
    })
}

impl RoutingStore {
    /// Creates or updates an agent; the live counters (`open`, `last_assigned_at`) are kept.
    pub async fn upsert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let spec = AgentSpec {
            name: agent.name.clone(),
            teams: agent.teams.clone(),
            languages: agent.languages.clone(),
            leads: agent.leads.clone(),
            sub: agent.sub.clone(),
        };
        self.client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::agent(&agent.id).item()))
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
            .expression_attribute_values(":g", s(keys::AGENTS))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    pub async fn get_agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.get(keys::agent(id))
            .await?
            .as_ref()
            .map(agent_from)
            .transpose()
    }

    pub async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.query_gsi(keys::AGENTS, None)
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
            .set_key(Some(keys::agent(id).item()))
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
        let mut item = keys::team(&team.id).item();
        item.insert("spec".into(), s(to_json(team)?));
        item.insert(attr::GSI1_PK.into(), s(keys::TEAMS));
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
        self.get(keys::team(id))
            .await?
            .as_ref()
            .map(|i| i.json("spec"))
            .transpose()
    }

    pub async fn list_teams(&self) -> Result<Vec<Team>, StoreError> {
        self.query_gsi(keys::TEAMS, None)
            .await?
            .iter()
            .map(|i| i.json("spec"))
            .collect()
    }

    pub async fn put_routing(&self, config: &RoutingConfig) -> Result<(), StoreError> {
        let mut item = keys::routing().item();
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
        self.get(keys::routing())
            .await?
            .as_ref()
            .map(|i| i.json("spec"))
            .transpose()
    }

    /// Reserves a slot on the agent for a conversation: one conditional write, idempotent per
    /// conversation (`convs.{conversation_id}` holds the reservation time).
    pub(super) async fn reserve(
        &self,
        agent_id: &str,
        conversation_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::agent(agent_id).item()))
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
            .set_key(Some(keys::agent(agent_id).item()))
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
        let Some(item) = self.get(keys::agent(agent_id)).await? else {
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
}
