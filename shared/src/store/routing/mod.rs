//! DynamoDB store of the agent assigner: the agent directory ([`agents`]: agents, teams,
//! routing rules, agents' slots) and hand-off tickets ([`tickets`]), both on [`RoutingStore`].
//! Their keys are in [`keys`](super::keys).
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
//!
//! The conversation's transcript gets its events from here: [`RoutingStore::close`] and
//! [`RoutingStore::cancel`] append `closed` once they closed the ticket, and the assigner
//! appends `assigned` (and the messages it sends the contact) through
//! [`RoutingStore::record_event`] / [`RoutingStore::record_lines`], with ids derived from the
//! ticket's job so a repeated call never doubles a line. Transfers and reopens use the same
//! calls.
//!
//! [`lists`]: the agent API's conversation lists (a team's tickets by state in `gsi2`, an
//! agent's closed ones in `gsi1`), newest first, and a page's tickets by key.

pub mod agents;
pub mod bridge;
pub mod lists;
pub mod tickets;

pub use bridge::PendingDelivery;

pub use tickets::{
    Announcement, AssignOutcome, CloseOutcome, Opened, Ticket, TicketState, TransferOutcome,
};

use super::item::{s, Item};
use super::transcript::{expires_at, DynamoTranscript, TranscriptLog};
use super::{attr, keys, DynamoTable, StoreError};
use crate::transcript::{self, Author, Body, Entry, Event};

/// The assigner's port on the state table.
#[derive(Clone, Debug)]
pub struct RoutingStore {
    table: DynamoTable,
    transcript: DynamoTranscript,
    transcript_retention_days: u32,
}

impl RoutingStore {
    pub fn new(table: DynamoTable) -> Self {
        RoutingStore {
            transcript: DynamoTranscript::new(table.clone()),
            table,
            transcript_retention_days: super::transcript::DEFAULT_RETENTION_DAYS,
        }
    }

    /// How long the transcript lines appended through this store are kept.
    pub fn with_transcript_retention_days(mut self, days: u32) -> Self {
        self.transcript_retention_days = days;
        self
    }

    /// Appends an event to a conversation's transcript: at `at` (Unix seconds), its id derived
    /// from `key` (unique per event, e.g. `{job_id}:assigned:{agent}`), so recording the same
    /// event again leaves one line.
    pub async fn record_event(
        &self,
        conversation_id: &str,
        at: i64,
        key: &str,
        event: Event,
        now: i64,
    ) -> Result<(), StoreError> {
        let at_ms = at.saturating_mul(1000);
        let entry = Entry {
            id: transcript::event_entry_id(at_ms, event.rank(), key),
            at: at_ms,
            author: Author::System,
            body: Body::Event { event },
            status: None,
            wamid: None,
        };
        self.record_lines(conversation_id, &[entry], now).await
    }

    /// Appends lines to a conversation's transcript (idempotent per entry id).
    pub async fn record_lines(
        &self,
        conversation_id: &str,
        entries: &[Entry],
        now: i64,
    ) -> Result<(), StoreError> {
        let expires = expires_at(now, self.transcript_retention_days);
        self.transcript
            .append(conversation_id, entries, expires)
            .await
    }

    fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.table.client
    }

    async fn get(&self, key: keys::Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key.item()))
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
}
