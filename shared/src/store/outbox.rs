//! The reply sender's records: what was sent (so nothing is sent twice, and delivery statuses
//! can be matched to a conversation) and what could not be delivered.
//!
//! | item          | pk                      | sk                | attributes |
//! |---------------|-------------------------|-------------------|------------|
//! | send record   | `SENT#{dedup_id}`       | `SENT`            | `wamid`?, `conversation_id`?, `sent_at`, `via`, `expires_at` |
//! | sent message  | `OUT#{wamid}`           | `OUT`             | `conversation_id`?, `dedup_id`, `contact_key`?, `phone_number_id`, `sent_at`, `via`, `expires_at` |
//! | failure       | `CONV#{conversation_id}`| `FAIL#{dedup_id}` | `dedup_id`, `error_code`, `error_class`, `reason`, `kind`, `failed_at` |
//!
//! The send record and the sent message are written in one transaction, the send record only
//! if absent, so a redelivered message that was already sent is recognised and a concurrent
//! duplicate cannot record twice. `via` is `message`, or `reengagement_template` when the
//! configured template replaced a message refused for the closed 24-hour window.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::{attr, DynamoTable, StoreError};

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
    pub contact_key: Option<String>,
    pub phone_number_id: String,
    /// Unix seconds.
    pub sent_at: i64,
    pub via: SentVia,
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

/// A message that will never be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    pub conversation_id: String,
    pub dedup_id: String,
    /// Meta's code (`131026`), `http_4xx`, or `render` / `window_closed` for our own checks.
    pub error_code: String,
    /// `permanent`, `bsuid_unsupported`, `window_closed`, `invalid`.
    pub error_class: String,
    /// Meta's message or the render error; never contact data.
    pub reason: String,
    /// The outbound body kind (`text`, `buttons`, ...).
    pub kind: String,
    pub failed_at: i64,
}

/// The reply sender's store port.
pub trait Outbox: Send + Sync {
    /// Whether a message with this dedup id was already sent.
    fn is_sent(&self, dedup_id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records a sent message. `Ok(false)` when it was already recorded (nothing written).
    fn record_sent(
        &self,
        rec: &SentRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records a permanent failure on the conversation (idempotent).
    fn record_failure(
        &self,
        rec: &FailureRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// [`Outbox`] on the state table.
#[derive(Clone, Debug)]
pub struct DynamoOutbox {
    table: DynamoTable,
}

impl DynamoOutbox {
    pub fn new(table: DynamoTable) -> Self {
        DynamoOutbox { table }
    }
}

pub fn sent_pk(dedup_id: &str) -> String {
    format!("SENT#{dedup_id}")
}

pub fn out_pk(wamid: &str) -> String {
    format!("OUT#{wamid}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn put_if_some(item: &mut HashMap<String, AttributeValue>, name: &str, v: Option<&String>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        item.insert(name.to_owned(), s(v.clone()));
    }
}

impl Outbox for DynamoOutbox {
    async fn is_sent(&self, dedup_id: &str) -> Result<bool, StoreError> {
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key(attr::PK, s(sent_pk(dedup_id)))
            .key(attr::SK, s("SENT"))
            .projection_expression("#e")
            .expression_attribute_names("#e", attr::EXPIRES_AT)
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        // An expired record that DynamoDB has not removed yet no longer counts.
        let now = crate::clock::Clock::system().unix();
        Ok(out
            .item()
            .is_some_and(|item| match item.get(attr::EXPIRES_AT) {
                Some(AttributeValue::N(e)) => e.parse::<i64>().map(|e| e > now).unwrap_or(true),
                _ => true,
            }))
    }

    async fn record_sent(&self, rec: &SentRecord) -> Result<bool, StoreError> {
        let via = rec.via.as_str();
        let mut sent = HashMap::from([
            (attr::PK.to_owned(), s(sent_pk(&rec.dedup_id))),
            (attr::SK.to_owned(), s("SENT")),
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
            let update_out = Update::builder()
                .table_name(&self.table.name)
                .key(attr::PK, s(out_pk(wamid)))
                .key(attr::SK, s("OUT"))
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
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn record_failure(&self, rec: &FailureRecord) -> Result<(), StoreError> {
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item(attr::PK, s(format!("CONV#{}", rec.conversation_id)))
            .item(attr::SK, s(format!("FAIL#{}", rec.dedup_id)))
            .item("dedup_id", s(rec.dedup_id.clone()))
            .item("error_code", s(rec.error_code.clone()))
            .item("error_class", s(rec.error_class.clone()))
            .item("reason", s(rec.reason.clone()))
            .item("kind", s(rec.kind.clone()))
            .item("failed_at", n(rec.failed_at))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }
}

/// In-memory [`Outbox`] for the sender's unit tests (the DynamoDB one is tested against moto).
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    pub sent: std::sync::Mutex<Vec<SentRecord>>,
    pub failures: std::sync::Mutex<Vec<FailureRecord>>,
    /// When set, every call fails with a retryable error.
    pub unavailable: std::sync::atomic::AtomicBool,
}

impl MemoryOutbox {
    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "memory outbox set unavailable".into(),
            ));
        }
        Ok(())
    }

    pub fn sent(&self) -> Vec<SentRecord> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn failures(&self) -> Vec<FailureRecord> {
        self.failures.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Outbox for MemoryOutbox {
    async fn is_sent(&self, dedup_id: &str) -> Result<bool, StoreError> {
        self.check()?;
        Ok(self.sent().iter().any(|r| r.dedup_id == dedup_id))
    }

    async fn record_sent(&self, rec: &SentRecord) -> Result<bool, StoreError> {
        self.check()?;
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| StoreError::Request("poisoned".into()))?;
        if sent.iter().any(|r| r.dedup_id == rec.dedup_id) {
            return Ok(false);
        }
        sent.push(rec.clone());
        Ok(true)
    }

    async fn record_failure(&self, rec: &FailureRecord) -> Result<(), StoreError> {
        self.check()?;
        let mut f = self
            .failures
            .lock()
            .map_err(|_| StoreError::Request("poisoned".into()))?;
        f.retain(|r| !(r.conversation_id == rec.conversation_id && r.dedup_id == rec.dedup_id));
        f.push(rec.clone());
        Ok(())
    }
}
