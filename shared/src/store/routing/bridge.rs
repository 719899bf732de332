//! Team-webhook deliveries that failed and wait for their retry ([`keys::bridge_delivery`]),
//! as methods of [`RoutingStore`]: a conversation's pending ones (oldest first), the due ones
//! of every conversation (for the sweep), keep, reschedule and forget one.

use super::RoutingStore;
use crate::routing::bridge::Delivery;
use crate::store::item::{n, s, Item, ItemExt};
use crate::store::{attr, keys, StoreError};

/// A delivery waiting for its next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    pub delivery: Delivery,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (Unix seconds).
    pub retry_at: i64,
}

fn pending_from(item: &Item) -> Result<PendingDelivery, StoreError> {
    Ok(PendingDelivery {
        delivery: Delivery {
            delivery_id: item.str_req("delivery_id")?.to_owned(),
            conversation_id: item.str_req("conversation_id")?.to_owned(),
            team_id: item.str_req("team")?.to_owned(),
            body: item.str_req("body")?.to_owned(),
            at_ms: item.num_req("at_ms")?,
        },
        attempts: item.num_opt("attempts").unwrap_or(0),
        retry_at: item.num_req("retry_at")?,
    })
}

impl RoutingStore {
    /// Keeps (or reschedules) a delivery for a later attempt.
    pub async fn keep_delivery(&self, p: &PendingDelivery) -> Result<(), StoreError> {
        let d = &p.delivery;
        let mut item = keys::bridge_delivery(&d.conversation_id, d.at_ms, &d.delivery_id).item();
        item.insert("delivery_id".into(), s(&d.delivery_id));
        item.insert("conversation_id".into(), s(&d.conversation_id));
        item.insert("team".into(), s(&d.team_id));
        item.insert("body".into(), s(&d.body));
        item.insert("at_ms".into(), n(d.at_ms));
        item.insert("attempts".into(), n(p.attempts));
        item.insert("retry_at".into(), n(p.retry_at));
        item.insert(attr::GSI1_PK.into(), s(keys::BRIDGE_DUE));
        item.insert(
            attr::GSI1_SK.into(),
            s(keys::bridge_due_sort(p.retry_at, &d.conversation_id)),
        );
        self.client()
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Forgets a delivery (it went out, or it was given up).
    pub async fn forget_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(&self.table.name)
            .set_key(Some(
                keys::bridge_delivery(&d.conversation_id, d.at_ms, &d.delivery_id).item(),
            ))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// A conversation's pending deliveries, oldest first (a consistent read).
    pub async fn pending_deliveries(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(&self.table.name)
                .key_condition_expression("pk = :pk AND begins_with(sk, :b)")
                .expression_attribute_values(":pk", s(keys::handoff(conversation_id).pk))
                .expression_attribute_values(":b", s(keys::BRIDGE_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            for item in out.items.unwrap_or_default() {
                found.push(pending_from(&item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }

    /// The conversations with a delivery due by `now`, each once, most overdue first.
    pub async fn conversations_with_due_deliveries(
        &self,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let below = format!("{:012}~", now.max(0));
        let mut convs: Vec<String> = Vec::new();
        for item in self.query_gsi(keys::BRIDGE_DUE, Some(&below)).await? {
            let conv = item.str_req("conversation_id")?;
            if !convs.iter().any(|c| c == conv) {
                convs.push(conv.to_owned());
            }
        }
        Ok(convs)
    }
}
