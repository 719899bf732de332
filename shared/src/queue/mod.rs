//! The SQS port: putting messages on the pipeline's FIFO queues.
//!
//! [`MessageQueue`] is the trait domain code and entrypoints depend on; [`SqsQueue`] is its AWS
//! implementation. Sends go out with `SendMessageBatch`, in order, in batches [`plan_batches`]
//! cuts to SQS's limits: at most 10 entries and [`MAX_BATCH_BYTES`] of bodies per call. Entries
//! SQS reports as failed are retried a few times, and whatever still fails is returned to the
//! caller, who decides (ingest answers 5xx so Meta delivers again; an SQS consumer reports a
//! batch failure).
//!
//! SQS refuses some characters in a body (it allows only `#x9 | #xA | #xD | #x20-#xD7FF |
//! #xE000-#xFFFD | #x10000-#x10FFFF`): [`sqs_safe_body`] writes every other one as a JSON
//! `\uXXXX` escape. Bodies are JSON, so such a character can only sit inside a JSON string,
//! where the escape reads back as the same text. A message whose body is over
//! [`MAX_MESSAGE_BYTES`] can never be sent: it is left out, every other message is still sent,
//! and the caller gets the permanent [`QueueError::TooLarge`] naming it.

use std::borrow::Cow;

pub mod dlq;

use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use sha2::{Digest, Sha256};

/// One message for a FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// JSON body.
    pub body: String,
    /// Per-contact ordering: messages of one group are delivered in order.
    pub group_id: String,
    /// Dedup within SQS's 5-minute window: a resend with the same id is dropped by SQS.
    pub dedup_id: String,
    /// Delivery delay in seconds (0..=900). FIFO queues only honour a queue-level delay, so
    /// this must be 0 for FIFO queues; it exists for standard queues (e.g. timers).
    pub delay_seconds: i32,
}

/// A queue contract: the JSON body of one of the pipeline's FIFO queues names its own
/// message group (per-contact order) and deduplication id (idempotency), so every producer
/// queues it the same way ([`QueueMessage::of`]).
pub trait FifoContract: serde::Serialize {
    /// `MessageGroupId`: one group per (business number, contact), unless the body is not a
    /// contact's (a team's drain job).
    fn group_id(&self) -> String;
    /// `MessageDeduplicationId`: deterministic, so a re-sent effect is dropped by SQS.
    fn dedup_id(&self) -> String;
}

/// The message group of a contact's queue bodies: `{business number}:{contact key}` (one
/// group for events that name no contact).
pub fn contact_group_id(
    phone_number_id: &str,
    contact_key: Option<&crate::whatsapp::ContactKey>,
) -> String {
    let key = contact_key.map_or("unknown", |k| k.as_str());
    format!("{phone_number_id}:{key}")
}

impl QueueMessage {
    /// The FIFO message of a queue contract: its JSON, group and dedup id.
    pub fn of<T: FifoContract>(body: &T) -> Result<Self, serde_json::Error> {
        Ok(QueueMessage::fifo(
            serde_json::to_string(body)?,
            &body.group_id(),
            &body.dedup_id(),
        ))
    }

    /// A FIFO message; group and dedup ids are made SQS-safe with [`sqs_id`].
    pub fn fifo(body: String, group: &str, dedup: &str) -> Self {
        QueueMessage {
            body,
            group_id: sqs_id(group),
            dedup_id: sqs_id(dedup),
            delay_seconds: 0,
        }
    }
}

/// SQS's largest message body (1 MiB since August 2025), in UTF-8 bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// SQS's largest `SendMessageBatch`: the bodies of all entries together, in bytes.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// SQS's most entries per `SendMessageBatch`.
pub const MAX_BATCH_ENTRIES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Some messages could not be queued; their indexes in the input, with SQS's reasons.
    #[error("{} message(s) could not be queued: {}", .failed.len(), .reasons.join("; "))]
    Partial {
        failed: Vec<usize>,
        reasons: Vec<String>,
    },
    /// Messages over [`MAX_MESSAGE_BYTES`] (their indexes and sizes): never sendable. Every
    /// other message of the call was queued.
    #[error("{} message(s) over the {MAX_MESSAGE_BYTES}-byte SQS limit were not queued (sizes {sizes:?})", .indexes.len())]
    TooLarge {
        indexes: Vec<usize>,
        sizes: Vec<usize>,
    },
    #[error("SQS request failed: {0}")]
    Sqs(String),
}

impl QueueError {
    /// Queue failures are worth retrying (by SQS redelivery or by Meta's retry), except a
    /// message too large for SQS, which will never fit.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, QueueError::TooLarge { .. })
    }
}

/// `body` with every character SQS refuses written as a JSON `\uXXXX` escape (see the module
/// docs); borrowed, unchanged, in the common case.
pub fn sqs_safe_body(body: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    }
    if body.chars().all(allowed) {
        return Cow::Borrowed(body);
    }
    let mut out = String::with_capacity(body.len() + 16);
    for c in body.chars() {
        if allowed(c) {
            out.push(c);
        } else {
            // Not allowed means below U+0020 or U+FFFE/U+FFFF: one UTF-16 unit each.
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Cuts messages (their body sizes in bytes, in order) into consecutive `SendMessageBatch`
/// calls of at most [`MAX_BATCH_ENTRIES`] entries and [`MAX_BATCH_BYTES`] bytes. A message
/// over [`MAX_MESSAGE_BYTES`] is in no batch (returned second); the others keep their order.
pub fn plan_batches(sizes: &[usize]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut too_large = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0usize;
    for (i, &size) in sizes.iter().enumerate() {
        if size > MAX_MESSAGE_BYTES {
            too_large.push(i);
            continue;
        }
        if current.len() == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, too_large)
}

/// Puts messages on one queue, in order.
pub trait MessageQueue: Send + Sync {
    fn send_all(
        &self,
        messages: &[QueueMessage],
    ) -> impl std::future::Future<Output = Result<(), QueueError>> + Send;
}

/// [`MessageQueue`] on an SQS queue.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

/// How often entries that SQS reports as failed are sent again before giving up.
const ENTRY_ATTEMPTS: usize = 3;

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send_chunk(
        &self,
        chunk: &[(usize, &QueueMessage)],
    ) -> Result<Vec<(usize, String)>, QueueError> {
        let entries = chunk
            .iter()
            .map(|(i, m)| {
                let mut e = SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(sqs_safe_body(&m.body))
                    .message_group_id(&m.group_id)
                    .message_deduplication_id(&m.dedup_id);
                if m.delay_seconds > 0 {
                    e = e.delay_seconds(m.delay_seconds);
                }
                e.build().map_err(|e| QueueError::Sqs(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| QueueError::Sqs(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(out
            .failed()
            .iter()
            .filter_map(|f| {
                let idx = f.id().strip_prefix('m')?.parse().ok()?;
                Some((idx, format!("{}: {}", f.code(), f.message().unwrap_or(""))))
            })
            .collect())
    }
}

impl MessageQueue for SqsQueue {
    async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
        let sizes: Vec<usize> = messages
            .iter()
            .map(|m| sqs_safe_body(&m.body).len())
            .collect();
        let (batches, too_large) = plan_batches(&sizes);
        // Batches go out one after the other so that per-group order is kept across them.
        for batch in batches {
            let mut pending: Vec<(usize, &QueueMessage)> =
                batch.into_iter().map(|i| (i, &messages[i])).collect();
            let mut reasons = Vec::new();
            for attempt in 0..ENTRY_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let failed = self.send_chunk(&pending).await?;
                if failed.is_empty() {
                    reasons.clear();
                    pending.clear();
                    break;
                }
                let failed_idx: Vec<usize> = failed.iter().map(|(i, _)| *i).collect();
                reasons = failed.into_iter().map(|(_, r)| r).collect();
                pending.retain(|(i, _)| failed_idx.contains(i));
            }
            if !pending.is_empty() {
                return Err(QueueError::Partial {
                    failed: pending.iter().map(|(i, _)| *i).collect(),
                    reasons,
                });
            }
        }
        if !too_large.is_empty() {
            return Err(QueueError::TooLarge {
                sizes: too_large.iter().map(|&i| sizes[i]).collect(),
                indexes: too_large,
            });
        }
        Ok(())
    }
}

/// Makes a value usable as a FIFO group or dedup id: at most 128 characters of
/// alphanumerics and punctuation. Values that fit pass through unchanged (readable in the
/// console); others become the hex SHA-256 of the value (64 characters, still deterministic).
pub fn sqs_id(value: &str) -> String {
    let fits = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation());
    if fits {
        value.to_owned()
    } else {
        hex::encode(Sha256::digest(value.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_entries_in_order() {
        let (batches, too_large) = plan_batches(&[100; 23]);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 3]
        );
        assert_eq!(batches.concat(), (0..23).collect::<Vec<_>>());
        assert!(too_large.is_empty());
        assert_eq!(plan_batches(&[]), (vec![], vec![]));
    }

    #[test]
    fn batches_are_split_by_total_size() {
        let third = MAX_BATCH_BYTES / 3 + 1; // three of these are over the batch limit
        let (batches, _) = plan_batches(&[third, third, third, 10, third]);
        assert_eq!(batches, vec![vec![0, 1], vec![2, 3, 4]]);
        for b in &batches {
            let bytes: usize = b.iter().map(|&i| [third, third, third, 10, third][i]).sum();
            assert!(bytes <= MAX_BATCH_BYTES);
        }
        let (batches, _) = plan_batches(&[MAX_MESSAGE_BYTES, 1]);
        assert_eq!(
            batches,
            vec![vec![0], vec![1]],
            "a full-size message goes alone"
        );
    }

    #[test]
    fn a_message_over_the_limit_is_left_out_and_the_others_kept() {
        let (batches, too_large) = plan_batches(&[5, MAX_MESSAGE_BYTES + 1, 7]);
        assert_eq!(batches, vec![vec![0, 2]]);
        assert_eq!(too_large, [1]);
        let e = QueueError::TooLarge {
            indexes: too_large,
            sizes: vec![MAX_MESSAGE_BYTES + 1],
        };
        assert!(!e.is_retryable(), "it will never fit");
        assert!(e.to_string().contains("1048576-byte SQS limit"), "{e}");
    }

    #[test]
    fn characters_sqs_refuses_are_escaped_and_read_back_the_same() {
        let text = "a\u{FFFE}b\u{FFFF}c\u{1}\u{1F600}\u{FFFD}\t";
        let body = serde_json::to_string(&serde_json::json!({ "text": text })).unwrap();
        assert!(
            body.contains('\u{FFFE}'),
            "serde_json leaves U+FFFE raw: {body:?}"
        );
        let safe = sqs_safe_body(&body);
        assert_eq!(safe, "{\"text\":\"a\\ufffeb\\uffffc\\u0001😀\u{FFFD}\\t\"}");
        assert!(safe
            .chars()
            .all(|c| !matches!(c, '\u{FFFE}' | '\u{FFFF}' | '\u{0}'..='\u{8}')));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["text"], text);
        assert!(matches!(
            sqs_safe_body(r#"{"ok":"Olá 😀"}"#),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn sqs_ids_pass_through_when_valid_and_hash_otherwise() {
        assert_eq!(sqs_id("123:US.1349120865"), "123:US.1349120865");
        assert_eq!(
            sqs_id("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="),
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
        );
        let long = "x".repeat(129);
        assert_eq!(sqs_id(&long).len(), 64);
        assert_eq!(sqs_id("has space").len(), 64);
        assert_eq!(sqs_id("").len(), 64);
        assert_ne!(sqs_id("a b"), sqs_id("a c"));
    }

    /// Reads `body` (as the code before the `ContactKey` newtype wrote it) and checks it
    /// writes back byte for byte, in the same FIFO group.
    fn round_trips<T: FifoContract + serde::de::DeserializeOwned>(body: &str, group: &str) {
        let message: T = serde_json::from_str(body).unwrap();
        let again = QueueMessage::of(&message).unwrap();
        assert_eq!(again.body, body);
        assert_eq!(message.group_id(), group);
    }

    #[test]
    fn queue_bodies_written_before_the_contact_key_type_write_back_byte_identical() {
        use crate::routing::job::AssignmentJob;
        use crate::whatsapp::event::InboundEvent;
        use crate::whatsapp::outbound::OutboundMessage;
        round_trips::<InboundEvent>(
            r#"{"event":"message","phone_number_id":"106","display_phone_number":"15550001111","contact":{"user_id":"US.1","wa_id":"16505551234","profile_name":"Ana","username":"@ana"},"message_id":"wamid.A","timestamp":1790000000,"content":{"kind":"text","body":"hi"}}"#,
            "106:US.1",
        );
        round_trips::<OutboundMessage>(
            r#"{"phone_number_id":"106","recipient":{"wa_id":"16505551234","user_id":"US.1"},"dedup_id":"c1:0:0","conversation_id":"c1","last_inbound_at":1790000000,"body":{"kind":"text","body":"Hola","preview_url":false}}"#,
            "106:US.1",
        );
        round_trips::<AssignmentJob>(
            r#"{"job":"assign","job_id":"j","phone_number_id":"106","contact":{"wa_id":"16505551234"},"conversation_id":"c1","language":"en","reason":"completed","answers":{"topic":"billing"},"fields":{},"last_inbound_at":1,"requested_at":2}"#,
            "106:16505551234",
        );
    }
}
