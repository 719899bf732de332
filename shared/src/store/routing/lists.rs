//! The conversation lists of the agent API, read from the indexes the ticket writes keep:
//! a team's tickets of one state (`gsi2`, [`keys::team_list`]) and an agent's closed ones
//! (`gsi1`, [`keys::closed_by_agent`]), both newest first, paged by an
//! [`keys::activity_sort`] cursor; and a page's tickets and conversations by key
//! (`BatchGetItem`, consistent), so a page shows the tickets as they are now, not as the
//! eventually consistent index last saw them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::tickets::{ticket_from, TicketState};
use super::{RoutingStore, Ticket};
use crate::store::item::{s, Item, ItemExt};
use crate::store::{attr, keys, StoreError};

/// `BatchGetItem` takes at most 100 keys.
const BATCH: usize = 100;

/// Rounds of unprocessed keys retried before giving up (retryably).
const BATCH_ROUNDS: usize = 5;

impl RoutingStore {
    /// The sort keys ([`keys::activity_sort`]) of a team's tickets in `state`, newest first,
    /// older than `before`, at most `limit`. The index holds keys only.
    pub async fn team_page(
        &self,
        team: &str,
        state: TicketState,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let pk = keys::team_list(team, state.as_str());
        let items = self
            .newest(attr::GSI2, "gsi2pk", "gsi2sk", &pk, before, limit)
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| i.str_opt(attr::GSI2_SK).map(str::to_owned))
            .collect())
    }

    /// The closed tickets an agent held, newest first, older than `before`, at most `limit`.
    pub async fn closed_page(
        &self,
        agent_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Ticket>, StoreError> {
        let pk = keys::closed_by_agent(agent_id);
        self.newest(attr::GSI1, "gsi1pk", "gsi1sk", &pk, before, limit)
            .await?
            .iter()
            .map(ticket_from)
            .collect()
    }

    async fn newest(
        &self,
        index: &str,
        pk_name: &str,
        sk_name: &str,
        pk: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Item>, StoreError> {
        let limit = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .index_name(index)
                .expression_attribute_names("#p", pk_name)
                .expression_attribute_values(":p", s(pk))
                .scan_index_forward(false)
                .limit(limit)
                .set_exclusive_start_key(start.take());
            q = match before {
                Some(sk) => q
                    .key_condition_expression("#p = :p AND #s < :s")
                    .expression_attribute_names("#s", sk_name)
                    .expression_attribute_values(":s", s(sk)),
                None => q.key_condition_expression("#p = :p"),
            };
            let out = q.send().await.map_err(StoreError::from_sdk)?;
            items.extend(out.items.unwrap_or_default());
            // A page stops at 1 MB: go on until `limit` items or the end.
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && items.len() < limit as usize => start = Some(k),
                _ => break,
            }
        }
        items.truncate(limit as usize);
        Ok(items)
    }

    /// The tickets of these conversations (those that exist), read consistently.
    pub async fn tickets(&self, conversation_ids: &[String]) -> Result<Vec<Ticket>, StoreError> {
        let keys: Vec<keys::Key> = conversation_ids.iter().map(|c| keys::handoff(c)).collect();
        self.batch_get(&keys, None)
            .await?
            .iter()
            .map(ticket_from)
            .collect()
    }

    /// The contact's latest inbound message (`last_inbound_at`) of each conversation that has
    /// one.
    pub async fn last_inbound(
        &self,
        conversation_ids: &[String],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let keys: Vec<keys::Key> = conversation_ids
            .iter()
            .map(|c| keys::conversation(c))
            .collect();
        let items = self.batch_get(&keys, Some("pk, last_inbound_at")).await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let id = keys::conversation_id_of(i.str_opt(attr::PK)?)?;
                Some((id.to_owned(), i.num_opt("last_inbound_at")?))
            })
            .collect())
    }

    async fn batch_get(
        &self,
        wanted: &[keys::Key],
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in wanted.chunks(BATCH) {
            let mut pending: Vec<Item> = chunk.iter().map(keys::Key::item).collect();
            for _ in 0..BATCH_ROUNDS {
                if pending.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .set_projection_expression(projection.map(str::to_owned))
                    .build()
                    .map_err(|e| StoreError::Encode(e.to_string()))?;
                let out = self
                    .table
                    .client
                    .batch_get_item()
                    .request_items(&self.table.name, request)
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                if let Some(mut got) = out.responses {
                    found.extend(got.remove(&self.table.name).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table.name))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable(
                    "BatchGetItem left keys unprocessed (throttled)".into(),
                ));
            }
        }
        Ok(found)
    }
}
