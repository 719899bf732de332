//! Parking: an SQS consumer moves a message it can never handle to its queue's dead-letter
//! queue itself, at once, instead of letting it be received `maxReceiveCount` times.
//!
//! [`DeadLetters`] is the port the batch processor (`entrypoints::sqs`) depends on;
//! [`SqsDeadLetters`] sends to the consumer's own DLQ (a FIFO queue): the original body, the
//! original `MessageGroupId` (so a redrive keeps the contact's order), a deduplication id
//! derived from the original message id, and message attributes saying why and who parked it.
//! [`MemoryDeadLetters`] keeps them in memory (tests).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use aws_sdk_sqs::types::MessageAttributeValue;

use super::{sqs_id, QueueError};

/// Message attribute: the error category that made the consumer park the message.
pub const ERROR_ATTRIBUTE: &str = "prechat.error";
/// Message attribute: the consumer (function) that parked it.
pub const CONSUMER_ATTRIBUTE: &str = "prechat.consumer";
/// Message attribute: the SQS message id it had on the consumer's queue.
pub const SOURCE_ID_ATTRIBUTE: &str = "prechat.source_message_id";

/// SQS refuses an empty body; a message that had none is parked with this one.
pub const EMPTY_BODY: &str = "(no body)";

/// One message to park.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The original body, unchanged (or [`EMPTY_BODY`]).
    pub body: String,
    /// The original `MessageGroupId` (the consumer's name when the message had none).
    pub group_id: String,
    /// Derived from the original message id: parking the same message twice is one message.
    pub dedup_id: String,
    /// Fixed error category (no personal data).
    pub error: &'static str,
    /// The consumer that parked it.
    pub consumer: &'static str,
    /// The original SQS message id.
    pub source_message_id: String,
}

impl DeadLetter {
    /// Builds the DLQ message for a message received from the consumer's queue.
    pub fn new(
        consumer: &'static str,
        error: &'static str,
        message_id: &str,
        group_id: Option<&str>,
        body: Option<&str>,
    ) -> Self {
        let body = body.filter(|b| !b.is_empty()).unwrap_or(EMPTY_BODY);
        let dedup = if message_id.is_empty() {
            format!("parked:{}", sqs_id(&format!("{consumer}\n{body}")))
        } else {
            format!("parked:{message_id}")
        };
        DeadLetter {
            body: body.to_owned(),
            group_id: sqs_id(group_id.filter(|g| !g.is_empty()).unwrap_or(consumer)),
            dedup_id: sqs_id(&dedup),
            error,
            consumer,
            source_message_id: message_id.to_owned(),
        }
    }
}

/// Where a consumer parks what it can never handle.
pub trait DeadLetters: Send + Sync {
    fn park(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// [`DeadLetters`] on the consumer's own SQS dead-letter queue (`SendMessage`).
#[derive(Clone, Debug)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    /// `None`: no DLQ configured (a function that never consumes a queue); parking fails, so
    /// the message is retried and reaches the DLQ through the redrive policy instead.
    url: Option<String>,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, url: Option<String>) -> Self {
        SqsDeadLetters { client, url }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Sqs(e.to_string()))
}

impl DeadLetters for SqsDeadLetters {
    async fn park(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        let Some(url) = &self.url else {
            return Err(QueueError::Sqs("no dead-letter queue configured".into()));
        };
        let mut request = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(&letter.body)
            .message_group_id(&letter.group_id)
            .message_deduplication_id(&letter.dedup_id)
            .message_attributes(ERROR_ATTRIBUTE, attribute(letter.error)?)
            .message_attributes(CONSUMER_ATTRIBUTE, attribute(letter.consumer)?);
        if !letter.source_message_id.is_empty() {
            request = request
                .message_attributes(SOURCE_ID_ATTRIBUTE, attribute(&letter.source_message_id)?);
        }
        request
            .send()
            .await
            .map_err(|e| QueueError::Sqs(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// [`DeadLetters`] in memory, with a switch that makes every park fail (tests).
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    parked: Mutex<Vec<DeadLetter>>,
    pub unavailable: AtomicBool,
}

impl MemoryDeadLetters {
    /// Everything parked so far, in order.
    pub fn parked(&self) -> Vec<DeadLetter> {
        self.parked.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl DeadLetters for MemoryDeadLetters {
    async fn park(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(QueueError::Sqs("dead-letter queue unavailable".into()));
        }
        if let Ok(mut p) = self.parked.lock() {
            p.push(letter.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letter_keeps_body_and_group_and_derives_its_dedup_id_from_the_message_id() {
        let l = DeadLetter::new(
            "survey-engine",
            "unreadable_body",
            "m-1",
            Some("pn:US.1"),
            Some("{x"),
        );
        assert_eq!(
            (l.body.as_str(), l.group_id.as_str(), l.dedup_id.as_str()),
            ("{x", "pn:US.1", "parked:m-1")
        );
        assert_eq!(l.source_message_id, "m-1");
    }

    #[test]
    fn a_letter_without_body_group_or_id_is_still_sendable() {
        let l = DeadLetter::new("agent-assigner", "invalid_job", "", None, Some(""));
        assert_eq!(l.body, EMPTY_BODY);
        assert_eq!(l.group_id, "agent-assigner");
        assert!(l.dedup_id.starts_with("parked:"), "{}", l.dedup_id);
        assert_eq!(
            l,
            DeadLetter::new("agent-assigner", "invalid_job", "", None, None)
        );
    }
}
