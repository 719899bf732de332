//! The SQS port: putting messages on the pipeline's FIFO queues.
//!
//! [`MessageQueue`] is the trait domain code and entrypoints depend on; [`SqsQueue`] is its AWS
//! implementation. Sends go out with `SendMessageBatch` (10 per call); entries SQS reports as
//! failed are retried a few times, and whatever still fails is returned to the caller, who
//! decides (ingest answers 5xx so Meta delivers again; an SQS consumer reports a batch failure).

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

impl QueueMessage {
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

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Some messages could not be queued; their indexes in the input, with SQS's reasons.
    #[error("{} message(s) could not be queued: {}", .failed.len(), .reasons.join("; "))]
    Partial {
        failed: Vec<usize>,
        reasons: Vec<String>,
    },
    #[error("SQS request failed: {0}")]
    Sqs(String),
}

impl QueueError {
    /// Queue failures are worth retrying (by SQS redelivery or by Meta's retry).
    pub fn is_retryable(&self) -> bool {
        true
    }
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
                    .message_body(&m.body)
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
        // Chunks go out one after the other so that per-group order is kept across chunks.
        for (chunk_no, chunk) in messages.chunks(10).enumerate() {
            let mut pending: Vec<(usize, &QueueMessage)> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| (chunk_no * 10 + i, m))
                .collect();
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
}
