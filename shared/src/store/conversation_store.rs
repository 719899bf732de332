//! Contacts and conversations in DynamoDB: the survey engine's state.
//!
//! Items (built in [`keys`]):
//! - `CONTACT#{phone_number_id}#{contact_key}` / `PROFILE`: the contact (profile, saved
//!   fields, consent record) together with the authoritative snapshot of its current
//!   conversation and a revision number. One item, so one read gives the engine all it needs;
//!   it holds nothing per message, so it stays small however long the contact writes.
//! - `APPLIED#{phone_number_id}#{message_id}` / `APPLIED`: one per applied inbound message (or
//!   reminder tick), with the effects that message committed (`effects`: the outbound
//!   messages, mark-as-read first, and the assignment job), kept [`APPLIED_TTL_SECONDS`]. Its
//!   existence is the proof that the message was applied; its effects are sent again whenever
//!   the message is delivered again, under the same dedup ids.
//! - `CONV#{id}` / `CONV`: the conversation as other functions see it (status, answers, survey
//!   version...). The agent-assigner sets `assigned_*` and `closed_at` on it; we never overwrite
//!   those (UpdateItem, not PutItem).
//!
//! What happens to the messages the engine sends (statuses, failures) is the delivery log's
//! ([`super::delivery_log`]).
//!
//! Advancing a conversation is one `TransactWriteItems` of three items (and the step's
//! transcript entries, [`super::transcript`], each put only if absent; a step has a handful,
//! far below the 100 items a transaction takes): the contact put
//! conditioned on the revision read, the conversation update on `closed_at` being what we read
//! (so an agent's close is never lost), and the `APPLIED#` put conditioned on the item not
//! existing (or having expired: DynamoDB deletes expired items only eventually), so a
//! redelivered or concurrent message can never apply twice, whatever came in between.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::item::{n, s, to_json, ItemExt};
use super::{attr, keys, transcript, DynamoTable, StoreError};
use crate::routing::job::{AssignmentJob, HandoffReason};
use crate::survey::engine::{ContactState, Conversation, Effects, Status};
use crate::whatsapp::outbound::OutboundMessage;
use crate::whatsapp::ContactKey;

/// How long an applied message (its `APPLIED#` item and effects) is remembered: longer than
/// Meta retries a webhook (7 days) and than a message can live on the inbound queue and its
/// dead-letter queue (4 + 14 days), so a Meta retry and a DLQ redrive are both recognised.
pub const APPLIED_TTL_SECONDS: i64 = 19 * 24 * 3600;

/// Everything the engine reads and writes for one contact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactRecord {
    pub contact: ContactState,
    pub conversation: Option<Conversation>,
    /// Revision of the stored item; 0 when not stored yet.
    pub rev: u64,
    /// `closed_at` of the conversation item as read (set by whoever closed it).
    pub conversation_closed_at: Option<i64>,
    /// When the reminder timer should look at the conversation (written as its `gsi1` entry).
    pub reminder_due: Option<i64>,
}

impl ContactRecord {
    /// The record after the engine moved the contact on: `contact` and `conversation` (`None`
    /// keeps the current conversation), the reminder due for it, and the revision and closing
    /// as read, so the commit holds only if nobody wrote the contact since.
    pub fn advanced(
        &self,
        contact: ContactState,
        conversation: Option<Conversation>,
        reminder_due: impl Fn(&Conversation) -> Option<i64>,
    ) -> ContactRecord {
        let conversation = conversation.or_else(|| self.conversation.clone());
        ContactRecord {
            contact,
            reminder_due: conversation.as_ref().and_then(reminder_due),
            conversation,
            rev: self.rev,
            conversation_closed_at: self.conversation_closed_at,
        }
    }
}

/// A conversation the timer should look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub conversation_id: String,
    pub phone_number_id: String,
    pub contact_key: ContactKey,
}

/// What one applied message (or reminder tick) committed, kept on its `APPLIED#` item until
/// it expires: sent (again) whenever the message is delivered (again).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The inbound message id (or `remind:{conversation}:{step}` for a reminder tick).
    pub message_id: String,
    /// To the outbound queue, in order (a mark-as-read first, when there is one).
    #[serde(default)]
    pub messages: Vec<OutboundMessage>,
    /// To the assignment queue, after the messages.
    #[serde(default)]
    pub job: Option<AssignmentJob>,
    /// The transcript entries of the step, written by the commit itself (so not kept on the
    /// record: a redelivery finds them written).
    #[serde(skip)]
    pub transcript: Vec<crate::transcript::Entry>,
    /// The conversation the transcript entries belong to.
    #[serde(skip)]
    pub transcript_conversation: Option<String>,
}

impl Applied {
    /// The effects as committed with message `message_id`: the mark-as-read first, then the
    /// replies, then the job.
    pub fn new(message_id: &str, effects: Effects) -> Applied {
        let mut messages = Vec::with_capacity(effects.messages.len() + 1);
        messages.extend(effects.read);
        messages.extend(effects.messages);
        Applied {
            message_id: message_id.to_owned(),
            messages,
            job: effects.job,
            transcript: effects.transcript,
            transcript_conversation: None,
        }
    }

    /// Names the conversation the step's transcript entries belong to.
    pub fn in_conversation(mut self, conversation_id: Option<&str>) -> Applied {
        self.transcript_conversation = conversation_id.map(str::to_owned);
        self
    }
}

/// The JSON document kept in the contact item's `doc` attribute. (Items written before the
/// per-message `APPLIED#` items also carry `outbox` and `applied`: ignored, dropped on the
/// next write.)
#[derive(Serialize, Deserialize)]
struct Doc {
    contact: ContactState,
    #[serde(default)]
    conversation: Option<Conversation>,
}

/// The state port of the survey engine.
pub trait ConversationStore: Send + Sync {
    /// The contact and its current conversation. With `check_closed`, also reads the
    /// conversation item to learn whether someone closed it.
    fn load(
        &self,
        phone_number_id: &str,
        contact_key: &ContactKey,
        check_closed: bool,
    ) -> impl std::future::Future<Output = Result<Option<ContactRecord>, StoreError>> + Send;

    /// Stores `next` and records `applied` (the message id and its effects) if the stored
    /// revision is still `prev.rev`, the conversation's `closed_at` is still
    /// `prev.conversation_closed_at` and the message was not applied before (an `APPLIED#`
    /// item expired at `now` does not count). [`StoreError::ConditionFailed`] otherwise.
    fn commit(
        &self,
        prev: &ContactRecord,
        next: &ContactRecord,
        applied: &Applied,
        now: i64,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// The record of an applied message with its effects; `None` when the message was never
    /// applied (or its record expired at `now`).
    fn applied(
        &self,
        phone_number_id: &str,
        message_id: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<Option<Applied>, StoreError>> + Send;

    /// Conversations whose reminder is due at `now` (at most `limit` per shard).
    fn due_reminders(
        &self,
        now: i64,
        limit: i32,
    ) -> impl std::future::Future<Output = Result<Vec<DueReminder>, StoreError>> + Send;

    /// Takes a conversation out of the reminder index.
    fn clear_reminder(
        &self,
        conversation_id: &str,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// Moves a contact to a new key (BSUID change). Idempotent: false when nothing to move.
    fn rekey(
        &self,
        phone_number_id: &str,
        old_key: &ContactKey,
        new_key: &ContactKey,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
}

/// [`ConversationStore`] on the DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoConversationStore {
    table: DynamoTable,
    /// How long the transcript entries a commit writes are kept.
    transcript_retention_days: u32,
}

pub use super::keys::{applied_pk, contact_pk, conversation_pk, REMINDER_SHARDS};

impl DynamoConversationStore {
    pub fn new(table: DynamoTable) -> Self {
        DynamoConversationStore {
            table,
            transcript_retention_days: transcript::DEFAULT_RETENTION_DAYS,
        }
    }

    /// How long the transcript entries written with each commit are kept.
    pub fn with_transcript_retention_days(mut self, days: u32) -> Self {
        self.transcript_retention_days = days;
        self
    }

    fn decode(
        pk: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<ContactRecord, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            key: pk.to_owned(),
            reason,
        };
        let doc: Doc = serde_json::from_str(
            item.str_opt("doc")
                .ok_or_else(|| corrupt("no doc".into()))?,
        )
        .map_err(|e| corrupt(e.to_string()))?;
        let rev = item
            .num_opt::<u64>("rev")
            .ok_or_else(|| corrupt("no rev, or not a revision number".into()))?;
        Ok(ContactRecord {
            contact: doc.contact,
            conversation: doc.conversation,
            rev,
            conversation_closed_at: None,
            reminder_due: None,
        })
    }

    fn contact_put(&self, next: &ContactRecord, new_rev: u64) -> Result<Put, StoreError> {
        let c = &next.contact;
        let doc = Doc {
            contact: c.clone(),
            conversation: next.conversation.clone(),
        };
        let json = to_json(&doc)?;
        let mut item = keys::contact(&c.phone_number_id, &c.key).item();
        item.insert("doc".into(), s(json));
        item.insert("rev".into(), n(new_rev));
        item.insert("opted_out".into(), AttributeValue::Bool(c.opted_out));
        if let Some(conv) = &next.conversation {
            item.insert("conversation_id".into(), s(conv.id.clone()));
            item.insert("updated_at".into(), n(conv.updated_at));
        }
        Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Request(e.to_string()))
    }

    fn conversation_update(
        &self,
        prev: &ContactRecord,
        next: &ContactRecord,
        conv: &Conversation,
    ) -> Result<Update, StoreError> {
        let c = &next.contact;
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":status".into(), s(conv.status.as_str())),
            (":pnid".into(), s(c.phone_number_id.clone())),
            (":ckey".into(), s(c.key.clone())),
            (":sid".into(), s(conv.survey_id.clone())),
            (":sv".into(), n(conv.survey_version)),
            (":lang".into(), s(conv.language.clone())),
            (":step".into(), n(conv.step)),
            (":att".into(), n(conv.attempts)),
            (":inv".into(), n(conv.invalid_answers)),
            (":started".into(), n(conv.started_at)),
            (":updated".into(), n(conv.updated_at)),
            (":lin".into(), n(conv.last_inbound_at)),
            (
                ":answers".into(),
                AttributeValue::M(
                    conv.answers
                        .iter()
                        .map(|(k, v)| (k.clone(), s(v.clone())))
                        .collect(),
                ),
            ),
            (":q".into(), s(conv.question.clone().unwrap_or_default())),
            (
                ":reason".into(),
                s(conv.handoff.map(HandoffReason::as_str).unwrap_or("")),
            ),
        ]);
        let mut set = vec![
            "#status = :status",
            "phone_number_id = :pnid",
            "contact_key = :ckey",
            "survey_id = :sid",
            "survey_version = :sv",
            "#language = :lang",
            "step = :step",
            "attempts = :att",
            "invalid_answers = :inv",
            "started_at = :started",
            "updated_at = :updated",
            "last_inbound_at = :lin",
            "answers = :answers",
            "current_question = :q",
            "handoff_reason = :reason",
        ]
        .join(", ");
        // The contact's conversation list (`gsi2`, [`keys::contact_conversations`]).
        set.push_str(", gsi2pk = :cl, gsi2sk = :cls");
        values.insert(
            ":cl".into(),
            s(keys::contact_conversations(&c.phone_number_id, &c.key)),
        );
        values.insert(
            ":cls".into(),
            s(keys::activity_sort(conv.started_at, &conv.id)),
        );
        // The conversations of its day (`gsi3`, [`keys::conversation_day`]): the same values in
        // every update, so the index is written only when the conversation is created.
        set.push_str(", gsi3pk = :day, gsi3sk = :cls");
        values.insert(":day".into(), s(keys::conversation_day(conv.started_at)));
        // When the survey was answered to the end (the export's "completed"): the first commit
        // that hands off as completed; a reopened conversation keeps it.
        if conv.handoff == Some(HandoffReason::Completed) {
            set.push_str(", completed_at = if_not_exists(completed_at, :updated)");
        }
        let mut remove: Vec<&str> = Vec::new();
        match next.reminder_due {
            Some(due) => {
                set.push_str(", gsi1pk = :g, gsi1sk = :gs");
                values.insert(":g".into(), s(keys::reminder_partition(&conv.id)));
                values.insert(":gs".into(), s(keys::reminder_sort(due, &conv.id)));
            }
            None => remove.extend(["gsi1pk", "gsi1sk"]),
        }
        let known_closed = if prev.conversation.as_ref().map(|p| &p.id) == Some(&conv.id) {
            prev.conversation_closed_at
        } else {
            None
        };
        match (conv.closed_at, known_closed) {
            (Some(at), k) if k != Some(at) => {
                set.push_str(", closed_at = :closed, closed_by = :by");
                values.insert(":closed".into(), n(at));
                values.insert(":by".into(), s("survey-engine"));
            }
            (None, Some(_)) => remove.extend(["closed_at", "closed_by"]),
            _ => {}
        }
        let condition = match known_closed {
            None => "attribute_not_exists(closed_at)".to_owned(),
            Some(at) => {
                values.insert(":known".into(), n(at));
                "closed_at = :known".to_owned()
            }
        };
        Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(keys::conversation(&conv.id).item()))
            .update_expression(if remove.is_empty() {
                format!("SET {set}")
            } else {
                format!("SET {set} REMOVE {}", remove.join(", "))
            })
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#language", "language")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Request(e.to_string()))
    }
}

impl ConversationStore for DynamoConversationStore {
    async fn load(
        &self,
        phone_number_id: &str,
        contact_key: &ContactKey,
        check_closed: bool,
    ) -> Result<Option<ContactRecord>, StoreError> {
        let pk = contact_pk(phone_number_id, contact_key);
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::contact(phone_number_id, contact_key).item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let mut record = Self::decode(&pk, &item)?;
        let needs_check = check_closed
            || record
                .conversation
                .as_ref()
                .is_some_and(|c| c.status == Status::HandedOff && c.closed_at.is_none());
        if let (true, Some(conv)) = (needs_check, record.conversation.as_mut()) {
            let out = self
                .table
                .client
                .get_item()
                .table_name(&self.table.name)
                .set_key(Some(keys::conversation(&conv.id).item()))
                .projection_expression("closed_at")
                .consistent_read(true)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            let closed_at = out
                .item
                .as_ref()
                .and_then(|i| i.num_opt::<i64>("closed_at"));
            record.conversation_closed_at = closed_at;
            if let Some(at) = closed_at {
                conv.closed_at = Some(at);
                if matches!(conv.status, Status::Surveying | Status::HandedOff) {
                    conv.status = Status::Closed;
                    conv.question = None;
                }
            }
        } else if let Some(conv) = &record.conversation {
            // Our own closes are in the snapshot too.
            record.conversation_closed_at = conv.closed_at;
        }
        Ok(Some(record))
    }

    async fn commit(
        &self,
        prev: &ContactRecord,
        next: &ContactRecord,
        applied: &Applied,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut put = self.contact_put(next, prev.rev + 1)?;
        if prev.rev == 0 {
            put.condition_expression = Some("attribute_not_exists(pk)".into());
        } else {
            put.condition_expression = Some("#rev = :rev".into());
            put.expression_attribute_names =
                Some(HashMap::from([("#rev".to_owned(), "rev".to_owned())]));
            put.expression_attribute_values =
                Some(HashMap::from([(":rev".to_owned(), n(prev.rev))]));
        }
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(conv) = &next.conversation {
            let update = self.conversation_update(prev, next, conv)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let effects = to_json(applied)?;
        let mut item = keys::applied(&next.contact.phone_number_id, &applied.message_id).item();
        item.insert("effects".into(), s(effects));
        item.insert("applied_at".into(), n(now));
        item.insert(
            attr::EXPIRES_AT.into(),
            n(now.saturating_add(APPLIED_TTL_SECONDS)),
        );
        let marker = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item))
            // An expired record is no proof: DynamoDB deletes expired items only eventually.
            .condition_expression("attribute_not_exists(pk) OR #exp <= :now")
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(|e| StoreError::Request(e.to_string()))?;
        items.push(TransactWriteItem::builder().put(marker).build());
        // The step's transcript lines: new ids (the conversation's sequence moves on with this
        // very commit), so they exist exactly when the message was applied.
        if let Some(conversation_id) = applied.transcript_conversation.as_deref() {
            let expires = transcript::expires_at(now, self.transcript_retention_days);
            for entry in &applied.transcript {
                let put = transcript::entry_put(&self.table, conversation_id, entry, expires)?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }
        self.table
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    async fn applied(
        &self,
        phone_number_id: &str,
        message_id: &str,
        now: i64,
    ) -> Result<Option<Applied>, StoreError> {
        let pk = applied_pk(phone_number_id, message_id);
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::applied(phone_number_id, message_id).item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        if item
            .num_opt::<i64>(attr::EXPIRES_AT)
            .is_some_and(|at| at <= now)
        {
            return Ok(None);
        }
        let effects = item.str_opt("effects").ok_or_else(|| StoreError::Corrupt {
            key: pk.clone(),
            reason: "no effects".into(),
        })?;
        serde_json::from_str(effects)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                key: pk,
                reason: e.to_string(),
            })
    }

    async fn due_reminders(&self, now: i64, limit: i32) -> Result<Vec<DueReminder>, StoreError> {
        let mut due = Vec::new();
        for shard in 0..REMINDER_SHARDS {
            let out = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .index_name(attr::GSI1)
                .key_condition_expression("gsi1pk = :p AND gsi1sk <= :now")
                .expression_attribute_values(":p", s(keys::reminder_shard_partition(shard)))
                .expression_attribute_values(":now", s(keys::reminder_sort_due_by(now)))
                .limit(limit)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            for item in out.items() {
                let (Some(pk), Some(pnid), Some(key)) = (
                    item.str_opt(attr::PK),
                    item.str_opt("phone_number_id"),
                    item.str_opt("contact_key"),
                ) else {
                    continue;
                };
                due.push(DueReminder {
                    conversation_id: pk.trim_start_matches("CONV#").to_owned(),
                    phone_number_id: pnid.to_owned(),
                    contact_key: key.into(),
                });
            }
        }
        Ok(due)
    }

    async fn clear_reminder(&self, conversation_id: &str) -> Result<(), StoreError> {
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::conversation(conversation_id).item()))
            .update_expression("REMOVE gsi1pk, gsi1sk")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map_err(StoreError::from_sdk)
            .map(|_| ())
            .or_else(|e| match e {
                StoreError::ConditionFailed(_) => Ok(()),
                e => Err(e),
            })
    }

    async fn rekey(
        &self,
        phone_number_id: &str,
        old_key: &ContactKey,
        new_key: &ContactKey,
    ) -> Result<bool, StoreError> {
        if old_key == new_key {
            return Ok(false);
        }
        let Some(old) = self.load(phone_number_id, old_key, false).await? else {
            return Ok(false);
        };
        let existing = self.load(phone_number_id, new_key, false).await?;
        let mut next = match &existing {
            // The contact already wrote under the new id: keep its state, fill gaps from the old.
            Some(new) => {
                let mut merged = new.clone();
                for (k, v) in &old.contact.fields {
                    merged
                        .contact
                        .fields
                        .entry(k.clone())
                        .or_insert_with(|| v.clone());
                }
                if merged.contact.consent.is_none() {
                    merged.contact.consent = old.contact.consent.clone();
                }
                merged.contact.conversations =
                    merged.contact.conversations.max(old.contact.conversations);
                merged
            }
            None => {
                let mut moved = old.clone();
                moved.rev = 0;
                moved
            }
        };
        next.contact.key = new_key.clone();
        next.contact.identity.user_id = Some(new_key.to_string());
        let prev_rev = existing.as_ref().map(|e| e.rev).unwrap_or(0);
        let mut put = self.contact_put(&next, prev_rev + 1)?;
        if prev_rev == 0 {
            put.condition_expression = Some("attribute_not_exists(pk)".into());
        } else {
            put.condition_expression = Some("#rev = :rev".into());
            put.expression_attribute_names =
                Some(HashMap::from([("#rev".to_owned(), "rev".to_owned())]));
            put.expression_attribute_values =
                Some(HashMap::from([(":rev".to_owned(), n(prev_rev))]));
        }
        let delete = Delete::builder()
            .table_name(&self.table.name)
            .set_key(Some(keys::contact(phone_number_id, old_key).item()))
            .condition_expression("#rev = :rev")
            .expression_attribute_names("#rev", "rev")
            .expression_attribute_values(":rev", n(old.rev))
            .build()
            .map_err(|e| StoreError::Request(e.to_string()))?;
        let mut tx = self
            .table
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().delete(delete).build());
        if let Some(conv) = &next.conversation {
            let update = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(keys::conversation(&conv.id).item()))
                .update_expression("SET contact_key = :k")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":k", s(new_key.as_str()))
                .build()
                .map_err(|e| StoreError::Request(e.to_string()))?;
            tx = tx.transact_items(TransactWriteItem::builder().update(update).build());
        }
        tx.send().await.map_err(StoreError::from_sdk)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contact `doc` as the code before `ContactState` embedded its `ContactRef` wrote it.
    const STORED_DOC: &str = r#"{"contact":{"phone_number_id":"106540352242922","key":"US.13491208655302741918","wa_id":"16505551234","user_id":"US.13491208655302741918","profile_name":"Ana Björk","username":"@ana.b","fields":{"email":"ana@example.com"},"consent":{"accepted":true,"text":"I agree","policy_url":"https://example.com/privacy","policy_version":"2026-01","language":"en","at":1790000000},"opted_out":false,"conversations":2},"conversation":null}"#;

    #[test]
    fn a_stored_contact_doc_reads_into_the_embedded_identity_and_writes_back_the_same_json() {
        let doc: Doc = serde_json::from_str(STORED_DOC).unwrap();
        let who = &doc.contact.identity;
        assert_eq!(who.user_id.as_deref(), Some("US.13491208655302741918"));
        assert_eq!(who.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(who.profile_name.as_deref(), Some("Ana Björk"));
        assert_eq!(who.username.as_deref(), Some("@ana.b"));
        assert_eq!(doc.contact.conversations, 2);
        let written: serde_json::Value = serde_json::from_str(&to_json(&doc).unwrap()).unwrap();
        let stored: serde_json::Value = serde_json::from_str(STORED_DOC).unwrap();
        assert_eq!(written, stored);
    }

    #[test]
    fn a_contact_item_with_a_negative_revision_is_corrupt_not_new() {
        let pk = "CONTACT#106#16505551234";
        let doc = r#"{"contact":{"phone_number_id":"106","key":"16505551234"}}"#;
        let item = HashMap::from([
            (attr::PK.to_owned(), s(pk)),
            ("doc".to_owned(), s(doc)),
            ("rev".to_owned(), n(-1)),
        ]);
        let err = DynamoConversationStore::decode(pk, &item).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_stored_phone_only_contact_doc_writes_back_byte_identical() {
        let stored = r#"{"contact":{"phone_number_id":"106","key":"16505551234","wa_id":"16505551234","fields":{},"opted_out":false,"conversations":0},"conversation":null}"#;
        let doc: Doc = serde_json::from_str(stored).unwrap();
        assert_eq!(to_json(&doc).unwrap(), stored);
    }
}
