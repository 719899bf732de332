//! The transcript store: a conversation's entries as items `CONV#{id}` / `T#...`.
//!
//! Placeholder with the issue-11 contract items (owner: the transcript helper); the merge takes
//! the owner's version.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use super::item::{n, s, to_json, ItemExt};
use super::{attr, keys, DynamoTable, StoreError};
use crate::transcript::{Entry, Page, PageRequest};

/// The transcript port.
pub trait TranscriptLog: Send + Sync {
    /// Idempotent: an entry whose id exists is left as it is.
    fn append(
        &self,
        conversation_id: &str,
        entries: &[Entry],
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn page(
        &self,
        conversation_id: &str,
        request: &PageRequest,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;
}

/// The sort key of an entry: `T#{at_ms:013}#{discriminator}`.
pub fn entry_sk(at_ms: i64, discriminator: &str) -> String {
    format!("T#{:013}#{discriminator}", at_ms.max(0))
}

/// A page from entries in query order (newest first when reading back, oldest first when
/// catching up), `limit + 1` of them at most: the extra one only says that there is more.
fn assemble(mut entries: Vec<Entry>, limit: usize, catch_up: Option<&str>) -> Page {
    let more = entries.len() > limit;
    entries.truncate(limit);
    match catch_up {
        Some(after) => Page {
            before: entries.first().map(|e| e.id.clone()),
            after: entries
                .last()
                .map(|e| e.id.clone())
                .or_else(|| Some(after.to_owned())),
            entries,
        },
        None => {
            entries.reverse();
            Page {
                before: if more {
                    entries.first().map(|e| e.id.clone())
                } else {
                    None
                },
                after: entries.last().map(|e| e.id.clone()),
                entries,
            }
        }
    }
}

/// [`TranscriptLog`] on the DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoTranscript {
    table: DynamoTable,
}

impl DynamoTranscript {
    pub fn new(table: DynamoTable) -> Self {
        DynamoTranscript { table }
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
            let mut item = keys::Key {
                pk: keys::conversation_pk(conversation_id),
                sk: e.id.clone(),
            }
            .item();
            item.insert("entry".into(), s(to_json(e)?));
            item.insert(attr::EXPIRES_AT.into(), n(expires_at));
            let res = self
                .table
                .client
                .put_item()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(StoreError::from_sdk);
            match res {
                Ok(_) | Err(StoreError::ConditionFailed(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn page(&self, conversation_id: &str, request: &PageRequest) -> Result<Page, StoreError> {
        let limit = request.limit.clamp(1, 200) as usize;
        let mut q = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .expression_attribute_values(":p", s(keys::conversation_pk(conversation_id)))
            .limit(i32::try_from(limit + 1).unwrap_or(201))
            .consistent_read(true);
        q = match (&request.after, &request.before) {
            (Some(after), _) => q
                .key_condition_expression("pk = :p AND sk > :a")
                .expression_attribute_values(":a", s(after))
                .scan_index_forward(true),
            (None, Some(before)) => q
                .key_condition_expression("pk = :p AND sk < :b")
                .expression_attribute_values(":b", s(before))
                .scan_index_forward(false),
            (None, None) => q
                .key_condition_expression("pk = :p AND begins_with(sk, :t)")
                .expression_attribute_values(":t", s(ENTRY_PREFIX))
                .scan_index_forward(false),
        };
        let out = q.send().await.map_err(StoreError::from_sdk)?;
        let mut entries = Vec::new();
        for item in out.items.unwrap_or_default() {
            if item
                .str_opt(attr::SK)
                .is_some_and(|sk| sk.starts_with(ENTRY_PREFIX))
            {
                entries.push(item.json::<Entry>("entry")?);
            }
        }
        Ok(assemble(entries, limit, request.after.as_deref()))
    }
}

const ENTRY_PREFIX: &str = "T#";

/// [`TranscriptLog`] in memory, for unit tests.
#[derive(Default)]
pub struct MemoryTranscript {
    pub entries: Mutex<BTreeMap<(String, String), Entry>>,
}

impl TranscriptLog for MemoryTranscript {
    async fn append(
        &self,
        conversation_id: &str,
        entries: &[Entry],
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut m = self
            .entries
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        for e in entries {
            m.entry((conversation_id.to_owned(), e.id.clone()))
                .or_insert_with(|| e.clone());
        }
        Ok(())
    }

    async fn page(&self, conversation_id: &str, request: &PageRequest) -> Result<Page, StoreError> {
        let limit = request.limit.clamp(1, 200) as usize;
        let m = self
            .entries
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        let all: Vec<Entry> = m
            .iter()
            .filter(|((c, _), _)| c == conversation_id)
            .map(|(_, e)| e.clone())
            .collect();
        let entries: Vec<Entry> = match (&request.after, &request.before) {
            (Some(after), _) => all
                .into_iter()
                .filter(|e| &e.id > after)
                .take(limit + 1)
                .collect(),
            (None, before) => all
                .into_iter()
                .rev()
                .filter(|e| before.as_ref().is_none_or(|b| &e.id < b))
                .take(limit + 1)
                .collect(),
        };
        Ok(assemble(entries, limit, request.after.as_deref()))
    }
}
