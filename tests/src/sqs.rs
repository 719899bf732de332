//! SQS events as Lambda's event source mapping hands them to a consumer: the one place tests
//! build them (ids, bodies and the FIFO attributes the consumers read).

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use prechat::queue::FifoContract;

/// One record: its message id and body, with the FIFO group and dedup id when given.
pub fn record(id: &str, body: &str, group: Option<&str>, dedup: Option<&str>) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.body = Some(body.to_owned());
    let attrs = [("MessageGroupId", group), ("MessageDeduplicationId", dedup)];
    m.attributes = attrs
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect::<HashMap<_, _>>();
    m
}

/// A batch of records, in delivery order.
pub fn event(records: impl IntoIterator<Item = SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = records.into_iter().collect();
    e
}

/// A batch of queue bodies as the FIFO event source hands them over: records `sqs-0`,
/// `sqs-1`, ... with each body's JSON and its own `MessageGroupId` and `MessageDeduplicationId`.
pub fn fifo_event<T: FifoContract>(bodies: &[T]) -> SqsEvent {
    event(bodies.iter().enumerate().map(|(i, b)| {
        let body = serde_json::to_string(b)
            .unwrap_or_else(|e| panic!("a queue body that does not serialise: {e}"));
        record(
            &format!("sqs-{i}"),
            &body,
            Some(&b.group_id()),
            Some(&b.dedup_id()),
        )
    }))
}

/// A sample event from `events/` (e.g. `"survey-engine.json"`), as Lambda would hand it.
pub fn sample(name: &str) -> SqsEvent {
    let path = crate::workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not an SQS event: {e}"))
}
