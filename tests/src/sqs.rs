//! SQS events as Lambda's event source mapping hands them to a consumer: the one place tests
//! build them (ids, bodies and the FIFO attributes the consumers read).

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};

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
