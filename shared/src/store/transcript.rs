//! The transcript in DynamoDB ([`crate::transcript`] is the model): one item per entry,
//! `CONV#{conversation_id}` / `T#{at_ms:013}#{discriminator}` ([`keys::transcript_entry`]), so
//! a conversation's entries sort by time inside its partition and a page is one `Query`.
//!
//! Attributes: `doc` (the entry as JSON, without status and wamid), `at`, `status` and
//! `status_rank` (outbound entries), `wamid`, `expires_at` (TTL: the retention the appending
//! function is configured with, `PRECHAT_TRANSCRIPT_RETENTION_DAYS`).
//!
//! - Append is idempotent: each entry is a put conditioned on its item not existing, so an
//!   entry appended again (a redelivered message replaying its effects) is left as it is,
//!   status included.
//! - A delivery status only moves forward ([`DeliveryStatus::moves_to`]): the update is
//!   conditioned on the stored rank being lower, and on the entry existing (a status never
//!   creates an entry).
//! - Pages: the newest `limit` entries (descending query, `Limit` one more than asked to know
//!   whether older ones exist), or strictly before / after a cursor, which must be an entry id
//!   ([`PageRequest::validate`]; anything else is [`StoreError::InvalidCursor`]). Never a scan.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::Put;

use super::item::{n, s, Item, ItemExt};
use super::{attr, keys, DynamoTable, StoreError};
use crate::transcript::{DeliveryStatus, Entry, Page, PageRequest, ENTRY_PREFIX};

/// Transcript retention when `PRECHAT_TRANSCRIPT_RETENTION_DAYS` is not set.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;

/// The put of a new entry (only if absent), for the writers that add entries to a transaction
/// of their own (the survey engine's commit).
pub fn entry_put(
    table: &DynamoTable,
    conversation_id: &str,
    entry: &Entry,
    expires_at: i64,
) -> Result<Put, StoreError> {
    Put::builder()
        .table_name(&table.name)
        .set_item(Some(DynamoTranscript::encode(
            conversation_id,
            entry,
            expires_at,
        )?))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(|e| StoreError::Request(e.to_string()))
}

/// Seconds in a day, for the retention setting.
const DAY: i64 = 24 * 3600;

/// The TTL of entries appended at `now` (Unix seconds) when they are kept `retention_days`.
pub fn expires_at(now: i64, retention_days: u32) -> i64 {
    now.saturating_add(i64::from(retention_days).saturating_mul(DAY))
}

/// The transcript port.
pub trait TranscriptLog: Send + Sync {
    /// Idempotent: an entry whose id exists is left as it is.
    fn append(
        &self,
        conversation_id: &str,
        entries: &[Entry],
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of the transcript ([`PageRequest`]); a malformed cursor is
    /// [`StoreError::InvalidCursor`].
    fn page(
        &self,
        conversation_id: &str,
        request: &PageRequest,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Sets an outbound entry's delivery status (only forward) and, when given, its wamid.
    /// `Ok(false)` when the entry does not exist or already has this status or a later one.
    fn set_delivery(
        &self,
        conversation_id: &str,
        entry_id: &str,
        status: DeliveryStatus,
        wamid: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// [`TranscriptLog`] on the state table.
#[derive(Clone, Debug)]
pub struct DynamoTranscript {
    table: DynamoTable,
}

impl DynamoTranscript {
    pub fn new(table: DynamoTable) -> Self {
        DynamoTranscript { table }
    }

    fn encode(conversation_id: &str, e: &Entry, expires_at: i64) -> Result<Item, StoreError> {
        let mut item = keys::transcript_entry(conversation_id, &e.id).item();
        let bare = Entry {
            status: None,
            wamid: None,
            ..e.clone()
        };
        item.insert("doc".into(), s(super::item::to_json(&bare)?));
        item.insert("at".into(), n(e.at));
        item.insert(attr::EXPIRES_AT.into(), n(expires_at));
        if let Some(st) = e.status {
            item.insert("status".into(), s(st.as_str()));
            item.insert("status_rank".into(), n(st.rank()));
        }
        if let Some(w) = e.wamid.as_ref().filter(|w| !w.is_empty()) {
            item.insert("wamid".into(), s(w.clone()));
        }
        Ok(item)
    }

    fn decode(item: &Item) -> Result<Entry, StoreError> {
        let mut e: Entry = item.json("doc")?;
        e.status = match item.str_opt("status") {
            Some(st) => Some(
                serde_json::from_value(serde_json::Value::String(st.to_owned()))
                    .map_err(|_| item.corrupt(format!("status {st:?}")))?,
            ),
            None => None,
        };
        e.wamid = item.str_opt("wamid").map(str::to_owned);
        Ok(e)
    }
}

impl TranscriptLog for DynamoTranscript {
    async fn append(
        &self,
        conversation_id: &str,
        entries: &[Entry],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        for e in entries {
            let item = Self::encode(conversation_id, e, expires_at)?;
            let r = self
                .table
                .client
                .put_item()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(StoreError::from_sdk);
            match r {
                Ok(_) | Err(StoreError::ConditionFailed(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn page(&self, conversation_id: &str, request: &PageRequest) -> Result<Page, StoreError> {
        request
            .validate()
            .map_err(|e| StoreError::InvalidCursor(e.to_string()))?;
        let size = request.size() as usize;
        let pk = keys::conversation_pk(conversation_id);
        // Both bounds inclusive (BETWEEN); the cursor itself is dropped below, so one more.
        let (lo, hi, forward, fetch) = match (&request.after, &request.before) {
            (Some(after), _) => (after.clone(), format!("{ENTRY_PREFIX}~"), true, size + 2),
            (None, Some(before)) => (ENTRY_PREFIX.to_owned(), before.clone(), false, size + 2),
            (None, None) => (
                ENTRY_PREFIX.to_owned(),
                format!("{ENTRY_PREFIX}~"),
                false,
                size + 1,
            ),
        };
        let out = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .scan_index_forward(forward)
            .limit(i32::try_from(fetch).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let cursor = request.after.as_ref().or(request.before.as_ref());
        let entries = out
            .items()
            .iter()
            .filter(|i| cursor.is_none_or(|c| i.str_opt(attr::SK) != Some(c.as_str())))
            .map(Self::decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paged(entries, request, size, forward))
    }

    async fn set_delivery(
        &self,
        conversation_id: &str,
        entry_id: &str,
        status: DeliveryStatus,
        wamid: Option<&str>,
    ) -> Result<bool, StoreError> {
        let key = keys::transcript_entry(conversation_id, entry_id).item();
        if let Some(w) = wamid.filter(|w| !w.is_empty()) {
            // The wamid is set even when a status webhook got ahead of the sender.
            let r = self
                .table
                .client
                .update_item()
                .table_name(&self.table.name)
                .set_key(Some(key.clone()))
                .update_expression("SET wamid = :w")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":w", s(w))
                .send()
                .await
                .map_err(StoreError::from_sdk);
            match r {
                Ok(_) => {}
                Err(StoreError::ConditionFailed(_)) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        let r = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key))
            .update_expression("SET #st = :s, status_rank = :r")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(status_rank) OR status_rank < :r)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":s", s(status.as_str()))
            .expression_attribute_values(":r", n(status.rank()))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match r {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Cuts what a query returned (in query order, cursor removed) to a page: oldest first, with
/// the cursors for the older page and for catching up.
fn paged(mut entries: Vec<Entry>, request: &PageRequest, size: usize, forward: bool) -> Page {
    let more = entries.len() > size;
    entries.truncate(size);
    if !forward {
        entries.reverse();
    }
    // Going forward from `after`, older entries exist (the cursor at least); going backward,
    // they do when the query found more than a page.
    let older = if forward { !entries.is_empty() } else { more };
    let before = entries.first().filter(|_| older).map(|e| e.id.clone());
    let after = entries
        .last()
        .map(|e| e.id.clone())
        .or_else(|| request.after.clone());
    Page {
        entries,
        before,
        after,
    }
}

/// [`TranscriptLog`] in memory, for unit tests of the functions that append.
#[derive(Debug, Default)]
pub struct MemoryTranscript {
    entries: Mutex<BTreeMap<(String, String), Entry>>,
}

impl MemoryTranscript {
    /// A conversation's entries, oldest first.
    pub fn of(&self, conversation_id: &str) -> Vec<Entry> {
        self.lock()
            .iter()
            .filter(|((c, _), _)| c == conversation_id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TranscriptLog for MemoryTranscript {
    async fn append(
        &self,
        conversation_id: &str,
        entries: &[Entry],
        _: i64,
    ) -> Result<(), StoreError> {
        let mut all = self.lock();
        for e in entries {
            all.entry((conversation_id.to_owned(), e.id.clone()))
                .or_insert_with(|| e.clone());
        }
        Ok(())
    }

    async fn page(&self, conversation_id: &str, request: &PageRequest) -> Result<Page, StoreError> {
        request
            .validate()
            .map_err(|e| StoreError::InvalidCursor(e.to_string()))?;
        let size = request.size() as usize;
        let all = self.of(conversation_id);
        let (entries, forward): (Vec<Entry>, bool) = match (&request.after, &request.before) {
            (Some(a), _) => (all.into_iter().filter(|e| &e.id > a).collect(), true),
            (None, Some(b)) => (all.into_iter().rev().filter(|e| &e.id < b).collect(), false),
            (None, None) => (all.into_iter().rev().collect(), false),
        };
        Ok(paged(entries, request, size, forward))
    }

    async fn set_delivery(
        &self,
        conversation_id: &str,
        entry_id: &str,
        status: DeliveryStatus,
        wamid: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut all = self.lock();
        let Some(e) = all.get_mut(&(conversation_id.to_owned(), entry_id.to_owned())) else {
            return Ok(false);
        };
        if let Some(w) = wamid.filter(|w| !w.is_empty()) {
            e.wamid = Some(w.to_owned());
        }
        if e.status.is_none_or(|now| now.moves_to(status)) {
            e.status = Some(status);
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{engine_entry_id, Author, Body};

    fn entry(seq: u32) -> Entry {
        Entry {
            id: engine_entry_id(1_000, seq),
            at: 1_000,
            author: Author::Bot,
            body: Body::Text {
                text: format!("line {seq}"),
            },
            status: Some(DeliveryStatus::Pending),
            wamid: None,
        }
    }

    fn ids(p: &Page) -> Vec<String> {
        p.entries.iter().map(|e| e.id.clone()).collect()
    }

    #[tokio::test]
    async fn memory_pages_newest_last_with_cursors_both_ways() {
        let log = MemoryTranscript::default();
        let all: Vec<Entry> = (0..5).map(entry).collect();
        log.append("c", &all, 0).await.unwrap();
        let newest = log
            .page(
                "c",
                &PageRequest {
                    limit: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(ids(&newest), [all[3].id.clone(), all[4].id.clone()]);
        assert_eq!(newest.before.as_deref(), Some(all[3].id.as_str()));
        let older = PageRequest {
            before: newest.before.clone(),
            limit: 10,
            ..Default::default()
        };
        let older = log.page("c", &older).await.unwrap();
        assert_eq!(older.entries.len(), 3);
        assert_eq!(older.before, None);
        let after = PageRequest {
            after: Some(all[1].id.clone()),
            limit: 10,
            ..Default::default()
        };
        let caught_up: Vec<String> = all[2..].iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids(&log.page("c", &after).await.unwrap()), caught_up);
    }

    #[test]
    fn retention_is_counted_in_days() {
        assert_eq!(expires_at(100, 365), 100 + 365 * 86_400);
    }
}
