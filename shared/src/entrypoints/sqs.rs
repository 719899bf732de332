//! The one disposition policy of the SQS FIFO consumers (survey-engine, agent-assigner,
//! reply-sender): a typed batch processor.
//!
//! Per record, in batch order:
//! - its message group already failed in this batch: **held back** (reported in
//!   `batchItemFailures` without being tried), so a contact's order is kept. Other groups go on:
//!   one contact's failure never returns another contact's messages (Powertools calls this
//!   `skip_group_on_error`);
//! - the body is decoded here, once, as the consumer's body type `T`; a body that does not decode
//!   can never be handled: **parked**;
//! - the consumer's handler runs: [`Handled::Done`] and [`Handled::Skipped`] (a benign no-op,
//!   e.g. a redelivery) are **done**; an error says itself whether it is retryable
//!   ([`Disposition`]): a retryable one is reported for **retry** (SQS redelivers it after the
//!   visibility timeout, and the queue's redrive policy moves it to the DLQ after
//!   `maxReceiveCount`), a permanent one is **parked**.
//!
//! Parking sends the message to the consumer's own DLQ at once ([`DeadLetters`]: original body
//! and group, with the reason in message attributes) and then reports it done. If that send
//! fails the message is reported for retry instead, so nothing is ever lost. Nothing is discarded.
//!
//! Every record gets exactly one log line with its outcome (`outcome` field: `done`, `skipped`,
//! `parked`, `retry`, `held_back`, `park_failed`), the message id, the group redacted with
//! [`redact`], and the error category; never an error's text (serde's quotes the body, store
//! errors may name a contact). The template's metric filter counts the lines with
//! `outcome = "parked"` (metric `prechat/ParkedMessages`, alarm `ParkedMessagesAlarm`).

use std::collections::HashSet;
use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::de::DeserializeOwned;
use tracing::Level;

use crate::queue::dlq::{DeadLetter, DeadLetters};
use crate::queue::QueueError;
use crate::store::StoreError;
use crate::telemetry::redact;

/// The `outcome` of the log line of a parked message: the metric filter matches it.
pub const PARKED: &str = "parked";
/// The error category of a body that does not decode.
pub const UNREADABLE_BODY: &str = "unreadable_body";

/// What an error of a consumer says about the message that met it.
pub trait Disposition {
    /// `true`: it may succeed later (throttling, an outage): retry. `false`: it never will: park.
    fn is_retryable(&self) -> bool;
    /// A fixed label for logs and the DLQ message attribute (never personal data).
    fn category(&self) -> &'static str;
}

/// What a handler made of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done.
    Done,
    /// Nothing to do, and that is fine (a redelivery, a status of a message we never sent):
    /// done, with the reason in the log line.
    Skipped(&'static str),
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Skipped(&'static str),
    /// Moved to the DLQ (error category), reported done.
    Parked(&'static str),
    /// Reported for redelivery (error category).
    Retry(&'static str),
    /// An earlier message of its group failed in this batch: reported without being tried.
    HeldBack,
    /// Permanent (error category), but the DLQ send failed: reported for redelivery.
    ParkFailed(&'static str),
}

impl Outcome {
    /// Reported in `batchItemFailures` (SQS keeps it).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Retry(_) | Outcome::HeldBack | Outcome::ParkFailed(_)
        )
    }

    fn label(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Skipped(_) => "skipped",
            Outcome::Parked(_) => PARKED,
            Outcome::Retry(_) => "retry",
            Outcome::HeldBack => "held_back",
            Outcome::ParkFailed(_) => "park_failed",
        }
    }

    /// The error category or skip reason, "" for done and held back.
    fn category(&self) -> &'static str {
        match self {
            Outcome::Skipped(c)
            | Outcome::Parked(c)
            | Outcome::Retry(c)
            | Outcome::ParkFailed(c) => c,
            Outcome::Done | Outcome::HeldBack => "",
        }
    }
}

/// One record's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutcome {
    pub message_id: String,
    /// `MessageGroupId`, when the record has one.
    pub group: Option<String>,
    pub outcome: Outcome,
}

/// The outcomes of a batch, in batch order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    pub outcomes: Vec<MessageOutcome>,
}

impl Processed {
    /// The Lambda response: every record to keep, in batch order.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .outcomes
            .iter()
            .filter(|o| o.outcome.is_failure())
            .map(|o| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = o.message_id.clone();
                f
            })
            .collect();
        response
    }
}

/// Who processes the batch: the function's name (logs, DLQ attribute) and its DLQ.
pub struct Consumer<'a, D> {
    pub name: &'static str,
    pub dead_letters: &'a D,
}

/// Where serde stopped reading a body (no text: serde's messages quote values).
struct DecodeFailure {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

/// Processes a FIFO batch: see the module documentation.
pub async fn process_fifo_batch<T, E, D, F, Fut>(
    event: SqsEvent,
    consumer: Consumer<'_, D>,
    mut handle: F,
) -> Processed
where
    T: DeserializeOwned,
    E: Disposition,
    D: DeadLetters,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<Handled, E>>,
{
    let mut failed_groups: HashSet<Option<String>> = HashSet::new();
    let mut outcomes = Vec::with_capacity(event.records.len());
    for message in event.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let group = message.attributes.get("MessageGroupId").cloned();
        let (outcome, decode) = if failed_groups.contains(&group) {
            (Outcome::HeldBack, None)
        } else {
            one(&message, &message_id, &group, &consumer, &mut handle).await
        };
        if outcome.is_failure() {
            failed_groups.insert(group.clone());
        }
        log(
            consumer.name,
            &message_id,
            group.as_deref(),
            outcome,
            decode,
        );
        outcomes.push(MessageOutcome {
            message_id,
            group,
            outcome,
        });
    }
    Processed { outcomes }
}

async fn one<T, E, D, F, Fut>(
    message: &SqsMessage,
    message_id: &str,
    group: &Option<String>,
    consumer: &Consumer<'_, D>,
    handle: &mut F,
) -> (Outcome, Option<DecodeFailure>)
where
    T: DeserializeOwned,
    E: Disposition,
    D: DeadLetters,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<Handled, E>>,
{
    let body: T = match serde_json::from_str(message.body.as_deref().unwrap_or_default()) {
        Ok(b) => b,
        Err(e) => {
            let decode = DecodeFailure {
                category: e.classify(),
                line: e.line(),
                column: e.column(),
            };
            let outcome = park(message, message_id, group, consumer, UNREADABLE_BODY).await;
            return (outcome, Some(decode));
        }
    };
    let outcome = match handle(body).await {
        Ok(Handled::Done) => Outcome::Done,
        Ok(Handled::Skipped(reason)) => Outcome::Skipped(reason),
        Err(e) if e.is_retryable() => Outcome::Retry(e.category()),
        Err(e) => park(message, message_id, group, consumer, e.category()).await,
    };
    (outcome, None)
}

async fn park<D: DeadLetters>(
    message: &SqsMessage,
    message_id: &str,
    group: &Option<String>,
    consumer: &Consumer<'_, D>,
    category: &'static str,
) -> Outcome {
    let letter = DeadLetter::new(
        consumer.name,
        category,
        message_id,
        group.as_deref(),
        message.body.as_deref(),
    );
    match consumer.dead_letters.park(&letter).await {
        Ok(()) => Outcome::Parked(category),
        Err(e) => {
            // The queue error names no contact (URL and SQS's reason only).
            tracing::warn!(consumer = consumer.name, message_id, error = %e, "could not send to the dead-letter queue");
            Outcome::ParkFailed(category)
        }
    }
}

fn log(
    consumer: &'static str,
    message_id: &str,
    group: Option<&str>,
    outcome: Outcome,
    decode: Option<DecodeFailure>,
) {
    let group = GroupField(group);
    let outcome_label = outcome.label();
    let category = outcome.category();
    let (body_error, line, column) = match &decode {
        Some(d) => (format!("{:?}", d.category), d.line, d.column),
        None => (String::new(), 0, 0),
    };
    // One place writes the fields; each outcome only picks its level, message and whether the
    // body's decode position belongs on the line.
    macro_rules! record {
        ($level:expr, $message:literal $(, $extra:ident)*) => {
            tracing::event!(
                $level,
                consumer,
                message_id,
                %group,
                outcome = outcome_label,
                category,
                $($extra,)*
                $message
            )
        };
    }
    match outcome {
        Outcome::Done | Outcome::Skipped(_) | Outcome::HeldBack => {
            record!(Level::INFO, "message processed")
        }
        Outcome::Retry(_) => record!(
            Level::WARN,
            "message will be retried; its group's later messages are held back"
        ),
        Outcome::Parked(_) => record!(
            Level::ERROR,
            "message parked in the dead-letter queue",
            body_error,
            line,
            column
        ),
        Outcome::ParkFailed(_) => record!(
            Level::ERROR,
            "message cannot be handled and could not be parked; it will be retried",
            body_error,
            line,
            column
        ),
    }
}

/// A message group in a log line: redacted (it names the contact), and only when the line is
/// written, so no redaction key is set up by a line nobody logs.
struct GroupField<'a>(Option<&'a str>);

impl std::fmt::Display for GroupField<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(g) => write!(f, "{}", redact(g)),
            None => Ok(()),
        }
    }
}

impl Disposition for StoreError {
    fn is_retryable(&self) -> bool {
        StoreError::is_retryable(self)
    }

    fn category(&self) -> &'static str {
        match self {
            StoreError::ConditionFailed(_) => "store_condition_failed",
            StoreError::Unavailable(_) => "store_unavailable",
            StoreError::Request(_) => "store_request_failed",
            StoreError::Corrupt { .. } => "corrupt_item",
            StoreError::Encode(_) => "store_encode_failed",
            StoreError::InvalidCursor(_) => "invalid_cursor",
        }
    }
}

impl Disposition for QueueError {
    fn is_retryable(&self) -> bool {
        QueueError::is_retryable(self)
    }

    fn category(&self) -> &'static str {
        "queue_send_failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::dlq::MemoryDeadLetters;
    use std::sync::atomic::Ordering;

    /// A test error: `retry` or `permanent`.
    #[derive(Debug)]
    struct TestError(bool);

    impl Disposition for TestError {
        fn is_retryable(&self) -> bool {
            self.0
        }
        fn category(&self) -> &'static str {
            if self.0 {
                "test_retry"
            } else {
                "test_permanent"
            }
        }
    }

    /// Records `(id, group, body)`; bodies are JSON strings.
    fn batch(records: &[(&str, &str, &str)]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records
            .iter()
            .map(|(id, group, body)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(id.to_string());
                m.body = Some(body.to_string());
                m.attributes
                    .insert("MessageGroupId".into(), group.to_string());
                m
            })
            .collect();
        e
    }

    fn failed(p: &Processed) -> Vec<String> {
        p.response()
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    /// Handles `"ok"`, `"skip"`, `"retry"`, `"bad"` bodies, recording what it was given.
    async fn run(event: SqsEvent, dlq: &MemoryDeadLetters) -> (Processed, Vec<String>) {
        let mut seen = Vec::new();
        let p = process_fifo_batch(
            event,
            Consumer {
                name: "test",
                dead_letters: dlq,
            },
            |body: String| {
                seen.push(body.clone());
                async move {
                    match body.as_str() {
                        "retry" => Err(TestError(true)),
                        "bad" => Err(TestError(false)),
                        "skip" => Ok(Handled::Skipped("nothing to do")),
                        _ => Ok(Handled::Done),
                    }
                }
            },
        )
        .await;
        (p, seen)
    }

    #[tokio::test]
    async fn a_retryable_failure_holds_back_only_its_own_group() {
        let dlq = MemoryDeadLetters::default();
        let event = batch(&[
            ("a1", "A", "\"ok\""),
            ("b1", "B", "\"retry\""),
            ("a2", "A", "\"ok\""),
            ("b2", "B", "\"ok\""),
            ("c1", "C", "\"ok\""),
            ("b3", "B", "\"ok\""),
        ]);
        let (p, seen) = run(event, &dlq).await;
        assert_eq!(seen, ["ok", "retry", "ok", "ok"], "a1, b1, a2, c1 tried");
        assert_eq!(failed(&p), ["b1", "b2", "b3"]);
        let o: Vec<Outcome> = p.outcomes.iter().map(|o| o.outcome).collect();
        assert_eq!(
            o,
            [
                Outcome::Done,
                Outcome::Retry("test_retry"),
                Outcome::Done,
                Outcome::HeldBack,
                Outcome::Done,
                Outcome::HeldBack
            ]
        );
        assert!(dlq.parked().is_empty());
    }

    #[tokio::test]
    async fn a_permanent_error_is_parked_and_done_and_its_group_goes_on() {
        let dlq = MemoryDeadLetters::default();
        let (p, seen) = run(
            batch(&[("a1", "A", "\"bad\""), ("a2", "A", "\"ok\"")]),
            &dlq,
        )
        .await;
        assert_eq!(seen, ["bad", "ok"]);
        assert!(failed(&p).is_empty());
        assert_eq!(p.outcomes[0].outcome, Outcome::Parked("test_permanent"));
        let parked = dlq.parked();
        assert_eq!(parked.len(), 1);
        let l = &parked[0];
        assert_eq!(
            (l.body.as_str(), l.group_id.as_str(), l.error, l.consumer),
            ("\"bad\"", "A", "test_permanent", "test")
        );
        assert_eq!(l.source_message_id, "a1");
    }

    #[tokio::test]
    async fn a_failed_dlq_send_is_retried_and_holds_back_its_group() {
        let dlq = MemoryDeadLetters::default();
        dlq.unavailable.store(true, Ordering::SeqCst);
        let (p, seen) = run(
            batch(&[
                ("a1", "A", "\"bad\""),
                ("a2", "A", "\"ok\""),
                ("b1", "B", "\"ok\""),
            ]),
            &dlq,
        )
        .await;
        assert_eq!(seen, ["bad", "ok"], "a2 is not tried");
        assert_eq!(failed(&p), ["a1", "a2"]);
        assert_eq!(p.outcomes[0].outcome, Outcome::ParkFailed("test_permanent"));
    }

    #[tokio::test]
    async fn a_body_that_does_not_decode_is_parked_without_calling_the_handler() {
        let dlq = MemoryDeadLetters::default();
        let mut event = batch(&[("a1", "A", "{not json"), ("a2", "A", "\"ok\"")]);
        event.records.push(SqsMessage::default()); // no id, group or body at all
        let (p, seen) = run(event, &dlq).await;
        assert_eq!(seen, ["ok"]);
        assert!(failed(&p).is_empty());
        assert_eq!(p.outcomes[0].outcome, Outcome::Parked(UNREADABLE_BODY));
        assert_eq!(p.outcomes[2].outcome, Outcome::Parked(UNREADABLE_BODY));
        let parked = dlq.parked();
        assert_eq!(parked[0].body, "{not json");
        assert_eq!(parked[0].error, UNREADABLE_BODY);
        assert_eq!(parked[1].group_id, "test", "no group: the consumer's name");
    }

    #[tokio::test]
    async fn skipped_messages_are_done_and_not_parked() {
        let dlq = MemoryDeadLetters::default();
        let (p, _) = run(batch(&[("a1", "A", "\"skip\"")]), &dlq).await;
        assert!(failed(&p).is_empty());
        assert_eq!(p.outcomes[0].outcome, Outcome::Skipped("nothing to do"));
        assert!(dlq.parked().is_empty());
    }

    #[tokio::test]
    async fn an_all_done_batch_reports_nothing() {
        let dlq = MemoryDeadLetters::default();
        let (p, _) = run(batch(&[("a", "A", "\"ok\""), ("b", "A", "\"ok\"")]), &dlq).await;
        assert!(p.response().batch_item_failures.is_empty());
    }

    /// Captures what the functions log in Lambda (`telemetry::init` with `AWS_LAMBDA_LOG_FORMAT=JSON`).
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_parked_line_carries_the_field_the_template_counts_and_no_personal_data() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(move || writer.clone())
            .finish();
        let dlq = MemoryDeadLetters::default();
        let body = r#"{"phone":"+15551234567" oops"#;
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(run(batch(&[("m-1", "pn:15551234567", body)]), &dlq));
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .find(|v: &serde_json::Value| v["fields"]["outcome"] == PARKED)
            .unwrap_or_else(|| panic!("no parked line in {text}"));
        assert_eq!(line["fields"]["category"], UNREADABLE_BODY);
        assert_eq!(line["fields"]["message_id"], "m-1");
        assert_eq!(
            line["fields"]["body_error"], "Data",
            "an object is no string"
        );
        assert!(!text.contains("5551234567"), "{text}");
        let template = include_str!("../../../infra/template.yaml");
        let filter = format!("FilterPattern: '{{ $.fields.outcome = \"{PARKED}\" }}'");
        assert_eq!(
            template.matches(&filter).count(),
            3,
            "one per consumer log group"
        );
    }

    #[test]
    fn store_errors_say_whether_they_are_retryable() {
        assert!(Disposition::is_retryable(&StoreError::Unavailable(
            "x".into()
        )));
        let corrupt = StoreError::Corrupt {
            key: "k".into(),
            reason: "r".into(),
        };
        assert!(!Disposition::is_retryable(&corrupt));
        assert_eq!(corrupt.category(), "corrupt_item");
    }
}
