//! The delivery log: everything prechat knows about the messages it sends, written by both
//! delivery paths through one port, [`DeliveryLog`]:
//! - reply-sender records each message Meta accepted ([`DeliveryLog::record_sent`]: the send
//!   record `SENT#{dedup_id}`, so nothing is sent twice, and the sent message `OUT#{wamid}`,
//!   so statuses can be matched to a conversation) and each reply Meta refused;
//! - survey-engine records the statuses of status webhooks on `OUT#{wamid}`
//!   ([`DeliveryLog::record_status`]) and the failures they report.
//!
//! A failure is one [`DeliveryFailure`] whichever path saw it, recorded once per message on
//! its conversation ([`keys::refused`] when the reply never got a wamid, [`keys::undelivered`]
//! when Meta accepted it and later reported it failed; the latter is also counted on the
//! conversation item, `failed_messages` and `last_failure_at`). The item keys are in
//! [`keys`].
//!
//! A message that names its transcript entry ([`TranscriptRef`]) has that entry kept in step
//! through the same calls: `record_sent` sets its `wamid` and status `sent` (and keeps the
//! reference on `OUT#{wamid}`), `record_status` moves its status (only forward), and a
//! refusal recorded with the reference marks it `failed` ([`DynamoTranscript::set_delivery`]).
//! The transcript update follows the delivery-log write (it is no part of its transaction: a
//! stale status must not undo the log), so a crash between the two loses only a status tick.
//!
//! The send record and the sent message are written in one transaction, the send record only
//! if absent, so a redelivered message that was already sent is recognised and a concurrent
//! duplicate cannot record twice. `via` is `message`, or `reengagement_template` when the
//! configured template replaced a message refused for the closed 24-hour window.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::item::{n, s, Item, ItemExt};
use super::transcript::{DynamoTranscript, TranscriptLog};
use super::{attr, keys, DynamoTable, StoreError};
use crate::transcript::{self, TranscriptRef};
use crate::whatsapp::event::DeliveryStatus;
use crate::whatsapp::ContactKey;

/// How long a send record is kept: longer than a message can live on the outbound queue and
/// its dead-letter queue (4 + 14 days), so a message redriven from the DLQ is still recognised.
pub const SENT_TTL_SECONDS: i64 = 19 * 24 * 3600;
/// How long a sent message can be matched to its delivery statuses.
pub const OUT_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// A message Meta accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    pub dedup_id: String,
    /// `None` for mark-as-read, which creates no message.
    pub wamid: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_key: Option<ContactKey>,
    pub phone_number_id: String,
    /// Unix seconds.
    pub sent_at: i64,
    pub via: SentVia,
    /// The message's transcript entry, when it has one.
    pub transcript: Option<TranscriptRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentVia {
    Message,
    ReengagementTemplate,
}

impl SentVia {
    pub fn as_str(self) -> &'static str {
        match self {
            SentVia::Message => "message",
            SentVia::ReengagementTemplate => "reengagement_template",
        }
    }
}

/// A message that will never be delivered, from either path: refused by Meta (or by our own
/// checks) when sending, or reported failed by a status webhook after Meta accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    pub conversation_id: String,
    /// The outbound message's dedup id, when known (a status of a message the sender has no
    /// record of has none).
    pub dedup_id: Option<String>,
    /// Meta's message id: set when Meta accepted the message and reported it failed later.
    pub wamid: Option<String>,
    /// Meta's code (`131026`), `http_4xx`, or `render` / `window_closed` for our own checks;
    /// `unreported` for a failed status without an error.
    pub error_code: String,
    /// `permanent`, `bsuid_unsupported`, `window_closed`, `invalid`, or `undelivered` for a
    /// failure reported by a status webhook.
    pub error_class: String,
    /// Meta's message (or error title) or the render error; never contact data.
    pub reason: String,
    /// The outbound body kind (`text`, `buttons`, ...), when known.
    pub kind: Option<String>,
    pub failed_at: i64,
    /// The message's transcript entry (marked `failed`), when known.
    pub transcript: Option<TranscriptRef>,
}

impl DeliveryFailure {
    /// The failure's item: the wamid keys a failure Meta reported, the dedup id one refused
    /// before a wamid existed. `None` when it has neither (nothing identifies the message).
    pub fn key(&self) -> Option<keys::Key> {
        match (&self.wamid, &self.dedup_id) {
            (Some(wamid), _) => Some(keys::undelivered(&self.conversation_id, wamid)),
            (None, Some(dedup)) => Some(keys::refused(&self.conversation_id, dedup)),
            (None, None) => None,
        }
    }

    /// `{code} {reason}`: the one-line summary kept as `error`.
    pub fn summary(&self) -> String {
        format!("{} {}", self.error_code, self.reason)
    }
}

/// What the sender recorded about one of our messages (`OUT#{wamid}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub conversation_id: Option<String>,
    pub dedup_id: Option<String>,
    /// The message's transcript entry, when it had one.
    pub transcript: Option<TranscriptRef>,
}

/// How long a status that arrived before the sender's record is kept (the sender's own
/// record, written moments later, keeps its 30-day expiry).
const EARLY_STATUS_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// Order of delivery statuses: a status only ever moves forward.
fn rank(status: DeliveryStatus) -> i64 {
    match status {
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Read => 3,
        DeliveryStatus::Failed => 4,
        DeliveryStatus::Other => 0,
    }
}

/// The delivery log port, used by the reply sender and by the survey engine's statuses.
pub trait DeliveryLog: Send + Sync {
    /// Whether a message with this dedup id was already sent (a record expired at `now`, which
    /// DynamoDB may not have removed yet, does not count).
    fn is_sent(
        &self,
        dedup_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records a sent message. `Ok(false)` when it was already recorded (nothing written).
    fn record_sent(
        &self,
        rec: &SentRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records a delivery status on `OUT#{wamid}`, only moving forward (sent < delivered <
    /// read < failed), and returns what the sender recorded about the message; `None` when
    /// the message is not ours (or not recorded yet).
    fn record_status(
        &self,
        wamid: &str,
        status: DeliveryStatus,
        at: i64,
    ) -> impl Future<Output = Result<Option<SentMessage>, StoreError>> + Send;
    /// Records a failure on its conversation, once per message. `Ok(false)` when it was
    /// recorded before.
    fn record_failure(
        &self,
        failure: &DeliveryFailure,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// [`DeliveryLog`] on the state table.
#[derive(Clone, Debug)]
pub struct DynamoDeliveryLog {
    table: DynamoTable,
    transcript: DynamoTranscript,
}

impl DynamoDeliveryLog {
    pub fn new(table: DynamoTable) -> Self {
        DynamoDeliveryLog {
            transcript: DynamoTranscript::new(table.clone()),
            table,
        }
    }

    /// Moves a message's transcript entry to `status` (only forward; a missing entry is left
    /// missing).
    async fn mirror(
        &self,
        entry: Option<&TranscriptRef>,
        status: transcript::DeliveryStatus,
        wamid: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(r) = entry {
            self.transcript
                .set_delivery(&r.conversation_id, &r.entry_id, status, wamid)
                .await?;
        }
        Ok(())
    }
}

/// The `OUT#` attributes that keep a message's transcript entry.
const OUT_TRANSCRIPT_CONVERSATION: &str = "transcript_conversation";
const OUT_TRANSCRIPT_ENTRY: &str = "transcript_entry";
/// The agent who wrote the message (its ticks are pushed to them).
const OUT_TRANSCRIPT_AGENT: &str = "transcript_agent";

fn transcript_ref(i: &Item) -> Option<TranscriptRef> {
    Some(TranscriptRef {
        conversation_id: i.str_opt(OUT_TRANSCRIPT_CONVERSATION)?.to_owned(),
        entry_id: i.str_opt(OUT_TRANSCRIPT_ENTRY)?.to_owned(),
        agent_id: i.str_opt(OUT_TRANSCRIPT_AGENT).map(str::to_owned),
    })
}

fn put_if_some(item: &mut Item, name: &str, v: Option<&String>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        item.insert(name.to_owned(), s(v.clone()));
    }
}

impl DeliveryLog for DynamoDeliveryLog {
    async fn is_sent(&self, dedup_id: &str, now: i64) -> Result<bool, StoreError> {
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::send_record(dedup_id).item()))
            .projection_expression("#e")
            .expression_attribute_names("#e", attr::EXPIRES_AT)
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        // An expired record that DynamoDB has not removed yet no longer counts; an expiry that
        // is no number is not ours to ignore, so the record counts.
        Ok(out.item().is_some_and(|item| {
            item.get(attr::EXPIRES_AT).is_none()
                || item
                    .num_opt::<i64>(attr::EXPIRES_AT)
                    .is_none_or(|e| e > now)
        }))
    }

    async fn record_sent(&self, rec: &SentRecord) -> Result<bool, StoreError> {
        let via = rec.via.as_str();
        let mut sent = keys::send_record(&rec.dedup_id).item();
        sent.extend([
            ("sent_at".to_owned(), n(rec.sent_at)),
            ("via".to_owned(), s(via)),
            (
                attr::EXPIRES_AT.to_owned(),
                n(rec.sent_at + SENT_TTL_SECONDS),
            ),
        ]);
        put_if_some(&mut sent, "wamid", rec.wamid.as_ref());
        put_if_some(&mut sent, "conversation_id", rec.conversation_id.as_ref());
        let put_sent = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(sent))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Request(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().put(put_sent).build()];
        if let Some(wamid) = rec.wamid.as_deref().filter(|w| !w.is_empty()) {
            // An update, not a put: a delivery status that Meta reported before this write
            // (the survey engine records it on the same item) must survive.
            let mut values = HashMap::from([
                (":dedup".to_owned(), s(rec.dedup_id.clone())),
                (":pn".to_owned(), s(rec.phone_number_id.clone())),
                (":sent".to_owned(), n(rec.sent_at)),
                (":via".to_owned(), s(via)),
                (":exp".to_owned(), n(rec.sent_at + OUT_TTL_SECONDS)),
            ]);
            let mut set = vec![
                "dedup_id = :dedup",
                "phone_number_id = :pn",
                "sent_at = :sent",
                "via = :via",
                "expires_at = :exp",
            ];
            if let Some(c) = rec.conversation_id.as_ref() {
                values.insert(":conv".to_owned(), s(c.clone()));
                set.push("conversation_id = :conv");
            }
            if let Some(k) = rec.contact_key.as_ref() {
                values.insert(":contact".to_owned(), s(k.clone()));
                set.push("contact_key = :contact");
            }
            if let Some(r) = rec.transcript.as_ref() {
                values.insert(":tc".to_owned(), s(r.conversation_id.clone()));
                values.insert(":te".to_owned(), s(r.entry_id.clone()));
                set.push("transcript_conversation = :tc");
                set.push("transcript_entry = :te");
                if let Some(agent) = r.agent_id.as_ref() {
                    values.insert(":ta".to_owned(), s(agent.clone()));
                    set.push("transcript_agent = :ta");
                }
            }
            let update_out = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(keys::sent_message(wamid).item()))
                .update_expression(format!("SET {}", set.join(", ")))
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(|e| StoreError::Request(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(update_out).build());
        }
        match self
            .table
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(StoreError::from_sdk)
        {
            Ok(_) => {
                let wamid = rec.wamid.as_deref();
                self.mirror(
                    rec.transcript.as_ref(),
                    transcript::DeliveryStatus::Sent,
                    wamid,
                )
                .await?;
                Ok(true)
            }
            Err(StoreError::ConditionFailed(_)) => {
                // Recorded before: the entry may have missed its update (idempotent).
                let wamid = rec.wamid.as_deref();
                self.mirror(
                    rec.transcript.as_ref(),
                    transcript::DeliveryStatus::Sent,
                    wamid,
                )
                .await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn record_status(
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
            .set_key(Some(keys::sent_message(wamid).item()))
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
        let sent = |i: &Item| SentMessage {
            conversation_id: i.str_opt("conversation_id").map(str::to_owned),
            dedup_id: i.str_opt("dedup_id").map(str::to_owned),
            transcript: transcript_ref(i),
        };
        match r {
            Ok(out) => {
                let message = out.attributes.as_ref().map(sent);
                let entry = message.as_ref().and_then(|m| m.transcript.as_ref());
                if let Some(st) = transcript::DeliveryStatus::of_webhook(status) {
                    self.mirror(entry, st, None).await?;
                }
                Ok(message)
            }
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

    async fn record_failure(&self, f: &DeliveryFailure) -> Result<bool, StoreError> {
        let key = f.key().ok_or_else(|| {
            StoreError::Request("a delivery failure names neither a wamid nor a dedup id".into())
        })?;
        let mut item = key.item();
        put_if_some(&mut item, "dedup_id", f.dedup_id.as_ref());
        put_if_some(&mut item, "wamid", f.wamid.as_ref());
        put_if_some(&mut item, "kind", f.kind.as_ref());
        item.extend([
            ("error_code".to_owned(), s(f.error_code.clone())),
            ("error_class".to_owned(), s(f.error_class.clone())),
            ("reason".to_owned(), s(f.reason.clone())),
            ("error".to_owned(), s(f.summary())),
            ("failed_at".to_owned(), n(f.failed_at)),
        ]);
        let put = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Request(e.to_string()))?;
        let mut tx = self
            .table
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build());
        if f.wamid.is_some() {
            // A message Meta accepted and then could not deliver: counted on the conversation.
            let count = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(keys::conversation(&f.conversation_id).item()))
                .update_expression("ADD failed_messages :one SET last_failure_at = :t")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":t", n(f.failed_at))
                .build()
                .map_err(|e| StoreError::Request(e.to_string()))?;
            tx = tx.transact_items(TransactWriteItem::builder().update(count).build());
        }
        match tx.send().await.map_err(StoreError::from_sdk) {
            Ok(_) => {
                let failed = transcript::DeliveryStatus::Failed;
                self.mirror(f.transcript.as_ref(), failed, None).await?;
                Ok(true)
            }
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// In-memory [`DeliveryLog`] for the sender's unit tests (the DynamoDB one is tested against
/// moto).
#[derive(Debug, Default)]
pub struct MemoryDeliveryLog {
    pub sent: std::sync::Mutex<Vec<SentRecord>>,
    pub failures: std::sync::Mutex<Vec<DeliveryFailure>>,
    /// The latest status per wamid.
    pub statuses: std::sync::Mutex<HashMap<String, DeliveryStatus>>,
    /// When set, every call fails with a retryable error.
    pub unavailable: std::sync::atomic::AtomicBool,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Request("poisoned".into())
}

impl MemoryDeliveryLog {
    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "memory delivery log set unavailable".into(),
            ));
        }
        Ok(())
    }

    pub fn sent(&self) -> Vec<SentRecord> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn failures(&self) -> Vec<DeliveryFailure> {
        self.failures.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl DeliveryLog for MemoryDeliveryLog {
    async fn is_sent(&self, dedup_id: &str, _now: i64) -> Result<bool, StoreError> {
        self.check()?;
        Ok(self.sent().iter().any(|r| r.dedup_id == dedup_id))
    }

    async fn record_sent(&self, rec: &SentRecord) -> Result<bool, StoreError> {
        self.check()?;
        let mut sent = self.sent.lock().map_err(poisoned)?;
        if sent.iter().any(|r| r.dedup_id == rec.dedup_id) {
            return Ok(false);
        }
        sent.push(rec.clone());
        Ok(true)
    }

    async fn record_status(
        &self,
        wamid: &str,
        status: DeliveryStatus,
        _at: i64,
    ) -> Result<Option<SentMessage>, StoreError> {
        self.check()?;
        let mut statuses = self.statuses.lock().map_err(poisoned)?;
        if statuses
            .get(wamid)
            .is_none_or(|old| rank(*old) < rank(status))
        {
            statuses.insert(wamid.to_owned(), status);
        }
        Ok(self
            .sent()
            .into_iter()
            .find(|r| r.wamid.as_deref() == Some(wamid))
            .map(|r| SentMessage {
                conversation_id: r.conversation_id,
                dedup_id: Some(r.dedup_id),
                transcript: r.transcript,
            }))
    }

    async fn record_failure(&self, failure: &DeliveryFailure) -> Result<bool, StoreError> {
        self.check()?;
        let mut f = self.failures.lock().map_err(poisoned)?;
        if f.iter().any(|r| r.key() == failure.key()) {
            return Ok(false);
        }
        f.push(failure.clone());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(wamid: Option<&str>, dedup: Option<&str>) -> DeliveryFailure {
        DeliveryFailure {
            conversation_id: "c1".into(),
            dedup_id: dedup.map(str::to_owned),
            wamid: wamid.map(str::to_owned),
            error_code: "131026".into(),
            error_class: "undelivered".into(),
            reason: "Message undeliverable".into(),
            kind: None,
            failed_at: 1,
            transcript: None,
        }
    }

    #[test]
    fn a_failure_is_keyed_by_its_wamid_else_its_dedup_id() {
        let reported = failure(Some("w1"), Some("c1:m1")).key().unwrap();
        assert_eq!(
            (reported.pk.as_str(), reported.sk.as_str()),
            ("CONV#c1", "FAILED#w1")
        );
        let refused = failure(None, Some("c1:m1")).key().unwrap();
        assert_eq!(refused.sk, "FAIL#c1:m1");
        assert_eq!(failure(None, None).key(), None);
        assert_eq!(
            failure(None, None).summary(),
            "131026 Message undeliverable"
        );
    }

    #[tokio::test]
    async fn a_failure_is_recorded_once_and_statuses_only_move_forward() {
        let log = MemoryDeliveryLog::default();
        assert!(log
            .record_failure(&failure(Some("w1"), None))
            .await
            .unwrap());
        assert!(!log
            .record_failure(&failure(Some("w1"), None))
            .await
            .unwrap());
        log.record_status("w1", DeliveryStatus::Read, 2)
            .await
            .unwrap();
        log.record_status("w1", DeliveryStatus::Delivered, 3)
            .await
            .unwrap();
        let statuses = log.statuses.lock().unwrap().clone();
        assert_eq!(statuses["w1"], DeliveryStatus::Read);
    }
}
