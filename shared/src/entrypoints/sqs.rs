//! Shared driver for the SQS FIFO consumers (survey-engine, agent-assigner, reply-sender).
//!
//! A FIFO batch must be handled in order, and at the first failure the handler stops: that
//! message and every later one are reported in `batchItemFailures`, so SQS redelivers them in
//! their original order (the template sets `FunctionResponseTypes: [ReportBatchItemFailures]`).
//! Permanent problems (a body that can never be handled) must not block a contact forever: the
//! per-message function logs and records them and returns [`Handled::Discarded`].

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

/// What became of one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// Done (or already done before: a redelivery).
    Done,
    /// Can never succeed; logged and recorded, not retried.
    Discarded(String),
}

/// A failure worth retrying: the message stays on the queue (and reaches the DLQ after the
/// queue's `maxReceiveCount`).
#[derive(Debug)]
pub struct Retry(pub String);

impl<E: std::fmt::Display> From<E> for Retry {
    fn from(e: E) -> Self {
        Retry(e.to_string())
    }
}

/// Processes a FIFO batch in order, stopping at the first retryable failure.
pub async fn process_fifo_batch<F, Fut>(event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: Future<Output = Result<Handled, Retry>>,
{
    let mut failures = Vec::new();
    let mut failed = false;
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if failed {
            failures.push(failure(id));
            continue;
        }
        match handle(message).await {
            Ok(Handled::Done) => {}
            Ok(Handled::Discarded(reason)) => {
                tracing::warn!(message_id = %id, %reason, "message discarded");
            }
            Err(Retry(reason)) => {
                tracing::warn!(message_id = %id, %reason, "message will be retried; stopping the batch");
                failed = true;
                failures.push(failure(id));
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ids: &[&str]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = ids
            .iter()
            .map(|id| {
                let mut m = SqsMessage::default();
                m.message_id = Some(id.to_string());
                m.body = Some(id.to_string());
                m
            })
            .collect();
        e
    }

    fn ids(r: &SqsBatchResponse) -> Vec<String> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn stops_at_first_failure_and_reports_the_rest_in_order() {
        let mut seen = Vec::new();
        let r = process_fifo_batch(batch(&["a", "b", "c", "d"]), |m| {
            let body = m.body.unwrap_or_default();
            seen.push(body.clone());
            async move {
                match body.as_str() {
                    "b" => Err(Retry("throttled".into())),
                    "a" => Ok(Handled::Discarded("bad".into())),
                    _ => Ok(Handled::Done),
                }
            }
        })
        .await;
        assert_eq!(
            seen,
            vec!["a", "b"],
            "nothing after the failure is attempted"
        );
        assert_eq!(ids(&r), vec!["b", "c", "d"]);
    }

    #[tokio::test]
    async fn all_done_reports_nothing() {
        let r = process_fifo_batch(batch(&["a", "b"]), |_| async { Ok(Handled::Done) }).await;
        assert!(r.batch_item_failures.is_empty());
    }
}
