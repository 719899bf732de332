//! Contacts and conversations in DynamoDB: the survey engine's state.
//!
//! Items (see the key layout in [`super`]):
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
//! - `CONV#{id}` / `FAILED#{wamid}`: a delivery failure reported by a status webhook.
//!
//! Advancing a conversation is one `TransactWriteItems` of three items: the contact put
//! conditioned on the revision read, the conversation update on `closed_at` being what we read
//! (so an agent's close is never lost), and the `APPLIED#` put conditioned on the item not
//! existing (or having expired: DynamoDB deletes expired items only eventually), so a
//! redelivered or concurrent message can never apply twice, whatever came in between.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{attr, DynamoTable, StoreError};
use crate::routing::job::AssignmentJob;
use crate::survey::engine::{ContactState, Conversation, Effects, Status};
use crate::whatsapp::event::DeliveryStatus;
use crate::whatsapp::outbound::OutboundMessage;

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
    pub contact_key: String,
}

/// Reminder index shards (`gsi1pk = REMIND#{0..SHARDS}`), so no single index partition takes
/// every surveying conversation.
pub const REMINDER_SHARDS: u32 = 4;

fn reminder_shard(conversation_id: &str) -> u32 {
    conversation_id
        .chars()
        .nth(1)
        .and_then(|c| c.to_digit(16))
        .unwrap_or(0)
        % REMINDER_SHARDS
}

fn reminder_sk(due: i64, conversation_id: &str) -> String {
    format!("{due:012}#{conversation_id}")
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
        }
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

/// How long a status that arrived before the sender's record is kept (the sender's own
/// record, written moments later, keeps its 30-day expiry).
const EARLY_STATUS_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// What the sender recorded about one of our messages (`OUT#{wamid}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub conversation_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// The state port of the survey engine.
pub trait ConversationStore: Send + Sync {
    /// The contact and its current conversation. With `check_closed`, also reads the
    /// conversation item to learn whether someone closed it.
    fn load(
        &self,
        phone_number_id: &str,
        contact_key: &str,
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

    /// Records a delivery status on `OUT#{wamid}` (written by the reply-sender), only moving
    /// forward (sent < delivered < read < failed), and returns what the sender recorded about
    /// the message; `None` when the message is not ours (or not recorded yet).
    fn record_delivery(
        &self,
        wamid: &str,
        status: DeliveryStatus,
        at: i64,
    ) -> impl std::future::Future<Output = Result<Option<SentMessage>, StoreError>> + Send;

    /// Records a failed delivery on the conversation and counts it, once per message.
    /// Returns false when it was recorded before.
    fn record_failure(
        &self,
        conversation_id: &str,
        wamid: &str,
        dedup_id: Option<&str>,
        error: &str,
        at: i64,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;

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
        old_key: &str,
        new_key: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
}

/// [`ConversationStore`] on the DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoConversationStore {
    table: DynamoTable,
}

pub fn contact_pk(phone_number_id: &str, contact_key: &str) -> String {
    format!("CONTACT#{phone_number_id}#{contact_key}")
}

pub fn conversation_pk(id: &str) -> String {
    format!("CONV#{id}")
}

pub fn applied_pk(phone_number_id: &str, message_id: &str) -> String {
    format!("APPLIED#{phone_number_id}#{message_id}")
}

const PROFILE: &str = "PROFILE";
const CONV: &str = "CONV";
const APPLIED: &str = "APPLIED";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn rank(status: DeliveryStatus) -> i64 {
    match status {
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Read => 3,
        DeliveryStatus::Failed => 4,
        DeliveryStatus::Other => 0,
    }
}

impl DynamoConversationStore {
    pub fn new(table: DynamoTable) -> Self {
        DynamoConversationStore { table }
    }

    fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(attr::PK.to_owned(), s(pk)), (attr::SK.to_owned(), s(sk))])
    }

    fn decode(
        &self,
        pk: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<ContactRecord, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            key: pk.to_owned(),
            reason,
        };
        let doc: Doc =
            serde_json::from_str(get_s(item, "doc").ok_or_else(|| corrupt("no doc".into()))?)
                .map_err(|e| corrupt(e.to_string()))?;
        let rev = get_n(item, "rev").ok_or_else(|| corrupt("no rev".into()))?;
        Ok(ContactRecord {
            contact: doc.contact,
            conversation: doc.conversation,
            rev: u64::try_from(rev).unwrap_or(0),
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
        let json = serde_json::to_string(&doc).map_err(|e| StoreError::Request(e.to_string()))?;
        let mut item = Self::key(contact_pk(&c.phone_number_id, &c.key), PROFILE);
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
                s(conv
                    .handoff
                    .map(|r| {
                        serde_json::to_value(r)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    })
                    .unwrap_or_default()),
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
        let mut remove: Vec<&str> = Vec::new();
        match next.reminder_due {
            Some(due) => {
                set.push_str(", gsi1pk = :g, gsi1sk = :gs");
                values.insert(
                    ":g".into(),
                    s(format!("REMIND#{}", reminder_shard(&conv.id))),
                );
                values.insert(":gs".into(), s(reminder_sk(due, &conv.id)));
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
            .set_key(Some(Self::key(conversation_pk(&conv.id), CONV)))
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
        contact_key: &str,
        check_closed: bool,
    ) -> Result<Option<ContactRecord>, StoreError> {
        let pk = contact_pk(phone_number_id, contact_key);
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(pk.clone(), PROFILE)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let mut record = self.decode(&pk, &item)?;
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
                .set_key(Some(Self::key(conversation_pk(&conv.id), CONV)))
                .projection_expression("closed_at")
                .consistent_read(true)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            let closed_at = out.item.as_ref().and_then(|i| get_n(i, "closed_at"));
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
        let effects =
            serde_json::to_string(applied).map_err(|e| StoreError::Request(e.to_string()))?;
        let mut item = Self::key(
            applied_pk(&next.contact.phone_number_id, &applied.message_id),
            APPLIED,
        );
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
            .set_key(Some(Self::key(pk.clone(), APPLIED)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        if get_n(&item, attr::EXPIRES_AT).is_some_and(|at| at <= now) {
            return Ok(None);
        }
        let effects = get_s(&item, "effects").ok_or_else(|| StoreError::Corrupt {
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

    async fn record_delivery(
        &self,
        wamid: &str,
        status: DeliveryStatus,
        at: i64,
    ) -> Result<Option<SentMessage>, StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
        let r = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(format!("OUT#{wamid}"), "OUT")))
            // Meta may report a status before the sender has written `OUT#` (its write follows
            // Meta's 200): the status then creates the item, and the sender's later update adds
            // its fields without touching these.
            .update_expression("SET delivery_status = :s, delivery_rank = :r, delivery_at = :t, expires_at = if_not_exists(expires_at, :e)")
            .condition_expression("attribute_not_exists(delivery_rank) OR delivery_rank < :r")
            .expression_attribute_values(":s", s(status.to_string()))
            .expression_attribute_values(":r", n(rank(status)))
            .expression_attribute_values(":t", n(at))
            .expression_attribute_values(":e", n(at.saturating_add(EARLY_STATUS_TTL_SECONDS)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let sent = |i: &HashMap<String, AttributeValue>| SentMessage {
            conversation_id: get_s(i, "conversation_id").map(str::to_owned),
            dedup_id: get_s(i, "dedup_id").map(str::to_owned),
        };
        match r {
            Ok(out) => Ok(out.attributes.as_ref().map(sent)),
            Err(err) => {
                // A stale status (e.g. `delivered` after `read`) fails the condition: the item
                // comes back so the caller still knows the message.
                if let Some(UpdateItemError::ConditionalCheckFailedException(e)) =
                    err.as_service_error()
                {
                    return Ok(e.item.as_ref().map(sent));
                }
                Err(StoreError::from_sdk(err))
            }
        }
    }

    async fn record_failure(
        &self,
        conversation_id: &str,
        wamid: &str,
        dedup_id: Option<&str>,
        error: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut item = Self::key(conversation_pk(conversation_id), &format!("FAILED#{wamid}"));
        item.insert("wamid".into(), s(wamid));
        item.insert("error".into(), s(error));
        item.insert("failed_at".into(), n(at));
        if let Some(d) = dedup_id {
            item.insert("dedup_id".into(), s(d));
        }
        let put = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Request(e.to_string()))?;
        let count = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(conversation_pk(conversation_id), CONV)))
            .update_expression("ADD failed_messages :one SET last_failure_at = :t")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":t", n(at))
            .build()
            .map_err(|e| StoreError::Request(e.to_string()))?;
        let r = self
            .table
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match r {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
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
                .expression_attribute_values(":p", s(format!("REMIND#{shard}")))
                // '~' sorts after every id character: everything due up to and including `now`.
                .expression_attribute_values(":now", s(format!("{now:012}#~")))
                .limit(limit)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            for item in out.items() {
                let pk = get_s(item, attr::PK).unwrap_or_default();
                let (Some(pnid), Some(key)) =
                    (get_s(item, "phone_number_id"), get_s(item, "contact_key"))
                else {
                    continue;
                };
                due.push(DueReminder {
                    conversation_id: pk.trim_start_matches("CONV#").to_owned(),
                    phone_number_id: pnid.to_owned(),
                    contact_key: key.to_owned(),
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
            .set_key(Some(Self::key(conversation_pk(conversation_id), CONV)))
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
        old_key: &str,
        new_key: &str,
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
        next.contact.key = new_key.to_owned();
        next.contact.user_id = Some(new_key.to_owned());
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
            .set_key(Some(Self::key(
                contact_pk(phone_number_id, old_key),
                PROFILE,
            )))
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
                .set_key(Some(Self::key(conversation_pk(&conv.id), CONV)))
                .update_expression("SET contact_key = :k")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":k", s(new_key))
                .build()
                .map_err(|e| StoreError::Request(e.to_string()))?;
            tx = tx.transact_items(TransactWriteItem::builder().update(update).build());
        }
        tx.send().await.map_err(StoreError::from_sdk)?;
        Ok(true)
    }
}
