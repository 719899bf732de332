//! Lambda's SQS event source mapping, emulated: long-poll `ReceiveMessage` with the batch size
//! the template gives the function, build the `SqsEvent` exactly as Lambda does (messageId,
//! receiptHandle, body, attributes with MessageGroupId/MessageDeduplicationId/
//! ApproximateReceiveCount, eventSourceARN), call the entrypoint's
//! `handle(SqsEvent) -> SqsBatchResponse`, delete the records it did not report in
//! `batchItemFailures`, and leave the rest: they come back after the queue's visibility
//! timeout and reach the dead-letter queue after `maxReceiveCount`, both enforced by the SQS
//! server (moto) from the template. As in Lambda, a response naming an unknown record, or a
//! handler that panics, fails the whole batch. The consumers report only the failed message
//! and the later ones of its message group (`entrypoints::sqs`); other groups' messages in the
//! batch are done and deleted; what a consumer parks in its DLQ it sends there itself.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use serde_json::{json, Value};

/// An SQS consumer entrypoint, type-erased: `|event| Box::pin(consumer.handle(event))`.
pub type SqsHandler =
    Arc<dyn Fn(SqsEvent) -> Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>> + Send + Sync>;

/// Wraps an async closure as an [`SqsHandler`].
pub fn handler<F, Fut>(f: F) -> SqsHandler
where
    F: Fn(SqsEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = SqsBatchResponse> + Send + 'static,
{
    Arc::new(move |e| Box::pin(f(e)))
}

/// Lambda's default (and the maximum for FIFO queues).
pub const DEFAULT_BATCH_SIZE: i32 = 10;

/// One queue -> function mapping.
#[derive(Clone)]
pub struct EventSourceMapping {
    pub name: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    /// Long-poll wait (Lambda uses 20 s).
    pub wait_seconds: i32,
    pub handler: SqsHandler,
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollOutcome {
    pub received: usize,
    pub deleted: usize,
    pub failed: usize,
}

impl EventSourceMapping {
    /// Receives one batch and runs it through the handler.
    pub async fn poll_once(&self, sqs: &aws_sdk_sqs::Client) -> Result<PollOutcome, String> {
        let messages = self.receive(sqs, self.wait_seconds).await?;
        self.run_batch(sqs, messages).await
    }

    /// One long-poll `ReceiveMessage`. A FIFO queue hands out no message of a group that has
    /// one in flight (SQS does; so does moto), so batches received while others run never
    /// hold a message that must wait for theirs: per-contact order is the queue's.
    async fn receive(
        &self,
        sqs: &aws_sdk_sqs::Client,
        wait_seconds: i32,
    ) -> Result<Vec<Message>, String> {
        let out = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Runs received messages through the handler, deletes what it did not report failed, and
    /// makes the failed groups' followers visible again.
    async fn run_batch(
        &self,
        sqs: &aws_sdk_sqs::Client,
        messages: Vec<Message>,
    ) -> Result<PollOutcome, String> {
        if messages.is_empty() {
            return Ok(PollOutcome::default());
        }
        let event = to_sqs_event(&messages, &self.queue_arn)?;
        let handler = self.handler.clone();
        // A panicking handler must not take the poller down: Lambda counts it as a failed batch.
        let response = tokio::spawn(async move { handler(event).await }).await;
        let ids: Vec<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
        let failed: HashSet<String> = match response {
            Ok(r) => {
                let named: HashSet<String> = r
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.clone())
                    .collect();
                if named.iter().all(|id| ids.contains(&id.as_str())) {
                    named
                } else {
                    tracing::warn!(mapping = %self.name, "batchItemFailures names an unknown record: the whole batch fails");
                    ids.iter().map(|s| (*s).to_owned()).collect()
                }
            }
            Err(e) => {
                tracing::warn!(mapping = %self.name, error = %e, "handler failed: the whole batch fails");
                ids.iter().map(|s| (*s).to_owned()).collect()
            }
        };
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| !m.message_id().is_some_and(|id| failed.contains(id)))
            .collect();
        if !done.is_empty() {
            let entries = done
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("d{i}"))
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .ok()
                })
                .collect();
            let deleted = sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
            if !deleted.failed().is_empty() {
                return Err(format!(
                    "{} record(s) could not be deleted",
                    deleted.failed().len()
                ));
            }
        }
        let followers = group_followers(&messages, &failed);
        if !followers.is_empty() {
            let entries = followers
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("v{i}"))
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            sqs.change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        }
        Ok(PollOutcome {
            received: messages.len(),
            deleted: done.len(),
            failed: failed.len(),
        })
    }

    /// Polls until the task is aborted, with up to `concurrency` batches in flight at once, as
    /// Lambda runs several batches of a FIFO queue (one per message group in flight, up to the
    /// function's concurrency). One `ReceiveMessage` at a time; the next one starts as soon as a
    /// batch slot is free.
    pub fn spawn(
        self,
        sqs: aws_sdk_sqs::Client,
        concurrency: usize,
    ) -> tokio::task::JoinHandle<()> {
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(tokio::sync::Notify::new());
        let this = Arc::new(self);
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return; // never closed
                };
                // moto decides which message groups are blocked when a long poll starts and
                // keeps that view for the whole wait: a group whose batch finishes meanwhile
                // would wait up to `wait_seconds` (real SQS hands it out at once). So only an
                // idle mapping long-polls; with batches in flight it polls without waiting and,
                // when nothing came, waits for a batch to finish (or a moment, for new groups).
                let busy = in_flight.load(Ordering::SeqCst) > 0;
                let wait = if busy { 0 } else { this.wait_seconds };
                match this.receive(&sqs, wait).await {
                    Ok(messages) if messages.is_empty() => {
                        drop(slot);
                        if busy {
                            tokio::select! {
                                () = finished.notified() => {}
                                () = tokio::time::sleep(BUSY_POLL_PAUSE) => {}
                            }
                        }
                    }
                    Ok(messages) => {
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        let (this, sqs) = (this.clone(), sqs.clone());
                        let (in_flight, finished) = (in_flight.clone(), finished.clone());
                        tokio::spawn(async move {
                            let _slot = slot;
                            match this.run_batch(&sqs, messages).await {
                                Ok(o) => {
                                    tracing::debug!(mapping = %this.name, received = o.received, failed = o.failed, "batch")
                                }
                                Err(e) => {
                                    tracing::warn!(mapping = %this.name, error = %e, "batch failed")
                                }
                            }
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            finished.notify_waiters();
                        });
                    }
                    Err(e) => {
                        drop(slot);
                        tracing::warn!(mapping = %this.name, error = %e, "poll failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }
}

/// How long a mapping with batches in flight waits after an empty poll before it polls again
/// (unless a batch finishes first): how late a new contact's first message may start.
const BUSY_POLL_PAUSE: Duration = Duration::from_millis(100);

/// Batches of one queue in flight at once, when `PRECHAT_LOCAL_ESM_CONCURRENCY` is not set:
/// Lambda starts an SQS event source with five concurrent batches.
pub const DEFAULT_CONCURRENCY: usize = 5;

/// The failed records that follow the first failed record of their message group (a batch can
/// hold several failed groups, each with its own head).
///
/// Real SQS redelivers a FIFO group in order once the first failed message's visibility
/// timeout ends. moto does not when several messages of a group become visible at the same
/// time (it skips the earlier one while the later one still counts as in flight, and hands
/// out the later one first). Making these followers visible at once is equivalent in SQS
/// terms (the group stays blocked while its head is in flight) and keeps moto in order.
fn group_followers<'a>(messages: &'a [Message], failed: &HashSet<String>) -> Vec<&'a Message> {
    let mut heads: HashSet<&str> = HashSet::new();
    messages
        .iter()
        .filter(|m| m.message_id().is_some_and(|id| failed.contains(id)))
        .filter(|m| {
            let group = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .map(String::as_str)
                .unwrap_or("");
            !heads.insert(group)
        })
        .collect()
}

/// The event Lambda hands the function for these messages.
pub fn to_sqs_event(messages: &[Message], queue_arn: &str) -> Result<SqsEvent, String> {
    let region = queue_arn.split(':').nth(3).unwrap_or("us-east-1");
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: BTreeMap<String, String> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let message_attributes: BTreeMap<String, Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                json!({
                                    "stringValue": v.string_value(),
                                    "stringListValues": [],
                                    "binaryListValues": [],
                                    "dataType": v.data_type(),
                                }),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).map_err(|e| format!("SqsEvent: {e}"))
}

/// Batch size per queue (logical id), from the `Type: SQS` events of the template's functions.
pub fn batch_sizes(template_text: &str) -> BTreeMap<String, i32> {
    let mut out = BTreeMap::new();
    let Ok(doc) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(template_text) else {
        return out;
    };
    let Some(resources) = doc.get("Resources").and_then(|r| r.as_mapping()) else {
        return out;
    };
    for (_, res) in resources {
        let events = res
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(|e| e.as_mapping());
        for (_, ev) in events.into_iter().flatten() {
            if ev.get("Type").and_then(|t| t.as_str()) != Some("SQS") {
                continue;
            }
            let props = ev.get("Properties");
            let queue = props.and_then(|p| p.get("Queue")).map(|q| match q {
                serde_yaml_ng::Value::Tagged(t) => t.value.clone(),
                other => other.clone(),
            });
            let queue = queue
                .as_ref()
                .and_then(|q| q.as_str())
                .map(|q| q.trim_end_matches(".Arn").to_owned());
            let size = props
                .and_then(|p| p.get("BatchSize"))
                .and_then(|b| b.as_i64())
                .map(|b| b as i32)
                .unwrap_or(DEFAULT_BATCH_SIZE);
            if let Some(q) = queue {
                out.insert(q, size);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_comes_from_the_function_event() {
        let t = r#"
Resources:
  Q: { Type: AWS::SQS::Queue }
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Q.Arn
            BatchSize: 7
        Api: { Type: HttpApi }
"#;
        let sizes = batch_sizes(t);
        assert_eq!(sizes.get("Q"), Some(&7));
        assert_eq!(sizes.len(), 1);
    }

    #[test]
    fn records_carry_lambda_fields() {
        let m = Message::builder()
            .message_id("m1")
            .receipt_handle("rh")
            .body("{}")
            .attributes(MessageSystemAttributeName::MessageGroupId, "g")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let e = to_sqs_event(&[m], "arn:aws:sqs:us-east-1:123456789012:q.fifo").unwrap();
        let r = &e.records[0];
        assert_eq!(r.message_id.as_deref(), Some("m1"));
        assert_eq!(r.receipt_handle.as_deref(), Some("rh"));
        assert_eq!(r.attributes["MessageGroupId"], "g");
        assert_eq!(r.attributes["ApproximateReceiveCount"], "2");
        assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(r.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(
            r.event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:q.fifo")
        );
    }
}
