//! The transcript: every line of a conversation, in order, with the delivery status of what
//! we sent. Pure model (no AWS types); the DynamoDB store is [`crate::store::transcript`].
//!
//! Who writes what:
//! - survey-engine: the contact's messages (every type, also after the hand-off, while waiting
//!   and while assigned), each question as asked or asked again, the bot's texts (status
//!   `pending`), and each accepted answer with its normalised value ([`crate::survey::engine`]
//!   decides them, as `Effects::transcript`); the status webhooks move an entry's status;
//! - reply-sender: an outbound entry's `wamid` and status `sent` once Meta accepted it
//!   (`failed` when refused); the outbound message names its entry ([`TranscriptRef`]);
//! - agent-assigner: the `assigned` and `closed` events.
//!
//! Entry ids are the items' sort keys, `T#{at_ms:013}#{discriminator}`, so the table orders
//! the transcript; the discriminator makes them unique and deterministic (the engine's is a
//! per-conversation sequence number, [`engine_entry_id`]; an event's is derived from its job).
//! A status only moves forward (`pending` < `sent` < `delivered` < `read`; `failed` wins).

use serde::{Deserialize, Serialize};

use crate::whatsapp::event::{self, MessageContent};

/// One line of a conversation's transcript, as stored and as the agent API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The item's sort key inside the conversation (`T#...`): orders the transcript, and is the paging cursor.
    pub id: String,
    /// When it happened, Unix milliseconds.
    pub at: i64,
    pub author: Author,
    #[serde(flatten)]
    pub body: Body,
    /// Delivery status of an outbound message, as Meta reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeliveryStatus>,
    /// The WhatsApp message id (inbound: Meta's id; outbound: set once sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Author {
    Contact,
    Bot,
    Agent { agent_id: String },
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Text {
        text: String,
    },
    /// A button or list reply.
    Reply {
        reply_id: String,
        title: String,
    },
    Media {
        media_type: String,
        caption: Option<String>,
        media_id: String,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// A survey question as asked (with a retry text in front when asked again).
    Question {
        question: String,
        text: String,
    },
    /// A validated answer, normalised.
    Answer {
        question: String,
        value: String,
    },
    Template {
        name: String,
        language: String,
    },
    Event {
        event: Event,
    },
    /// Anything else the contact sent (its type named).
    Other {
        description: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Event {
    Assigned {
        agent_id: String,
        team: String,
    },
    Transferred {
        from_agent: Option<String>,
        to_team: String,
        to_agent: Option<String>,
    },
    Closed {
        by: String,
    },
    Reopened,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryStatus {
    /// The stored order: a status is only ever replaced by a higher one.
    pub fn rank(self) -> i64 {
        match self {
            DeliveryStatus::Pending => 0,
            DeliveryStatus::Sent => 1,
            DeliveryStatus::Delivered => 2,
            DeliveryStatus::Read => 3,
            DeliveryStatus::Failed => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status a webhook reports (`None` for a status Meta added that we do not track).
    pub fn of_webhook(status: event::DeliveryStatus) -> Option<Self> {
        match status {
            event::DeliveryStatus::Sent => Some(DeliveryStatus::Sent),
            event::DeliveryStatus::Delivered => Some(DeliveryStatus::Delivered),
            event::DeliveryStatus::Read => Some(DeliveryStatus::Read),
            event::DeliveryStatus::Failed => Some(DeliveryStatus::Failed),
            event::DeliveryStatus::Other => None,
        }
    }

    /// Whether `next` may replace `self` (only forward; `failed` wins).
    pub fn moves_to(self, next: DeliveryStatus) -> bool {
        next.rank() > self.rank()
    }
}

/// Where an outbound message's transcript entry is, carried on the message so the sender and
/// the status webhooks can set its `wamid` and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptRef {
    pub conversation_id: String,
    pub entry_id: String,
    /// The agent who wrote it (an agent's reply): its status ticks are pushed to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// A page request: the newest `limit` entries when both cursors are None; entries strictly after `after`
/// (catch up), or strictly before `before` (older). Always returned oldest first (newest last).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    pub before: Option<String>,
    pub limit: u32,
}

/// The most entries one page returns (a larger `limit` is cut to it; 0 means the default).
pub const MAX_PAGE: u32 = 100;
/// The page size when the request names none.
pub const DEFAULT_PAGE: u32 = 50;

impl PageRequest {
    /// The page size actually used: `limit`, or [`DEFAULT_PAGE`] for 0, at most [`MAX_PAGE`].
    pub fn size(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_PAGE,
            l => l.min(MAX_PAGE),
        }
    }

    /// Checks the cursors: each must be an entry id ([`is_entry_id`]) and not both given.
    pub fn validate(&self) -> Result<(), CursorError> {
        if self.after.is_some() && self.before.is_some() {
            return Err(CursorError::Both);
        }
        for c in self.after.iter().chain(self.before.iter()) {
            if !is_entry_id(c) {
                return Err(CursorError::Malformed);
            }
        }
        Ok(())
    }
}

/// A cursor the caller sent that is not one we hand out (the API answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("a cursor must be a transcript entry id (T#...)")]
    Malformed,
    #[error("give either `after` or `before`, not both")]
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// Oldest first.
    pub entries: Vec<Entry>,
    /// The first entry's id when older entries exist: pass it as `before` for the older page.
    pub before: Option<String>,
    /// The last entry's id (or the `after` asked for, when nothing is newer): catch up from here.
    pub after: Option<String>,
}

/// The sort-key prefix every entry shares.
pub const ENTRY_PREFIX: &str = "T#";

/// `T#{at_ms:013}#{discriminator}`.
pub fn entry_id(at_ms: i64, discriminator: &str) -> String {
    format!("{ENTRY_PREFIX}{:013}#{discriminator}", at_ms.max(0))
}

/// The id of the engine's `seq`-th entry of a conversation (`seq` counts up per conversation).
pub fn engine_entry_id(at_ms: i64, seq: u32) -> String {
    entry_id(at_ms, &format!("{seq:06}"))
}

/// The id of a line written outside the engine (an event, a message the assigner or an agent
/// sends), unique per `key` (e.g. `{job_id}:assigned:{agent}`):
/// `T#{at_ms}#e{rank}{first 12 hex of sha256(key)}`. `rank` orders lines of the same
/// millisecond ([`EventRank`]); all of them sort after the engine's lines of that millisecond.
pub fn event_entry_id(at_ms: i64, rank: EventRank, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    entry_id(at_ms, &format!("e{}{}", rank as u8, &digest[..12]))
}

/// Where a line written outside the engine goes among the lines of the same millisecond (the
/// writers' clocks count seconds): an assignment before the message announcing it, a close
/// last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventRank {
    Assigned = 1,
    Transferred = 2,
    Reopened = 3,
    Message = 5,
    Closed = 9,
}

impl Event {
    /// The event's place among lines of the same millisecond.
    pub fn rank(&self) -> EventRank {
        match self {
            Event::Assigned { .. } => EventRank::Assigned,
            Event::Transferred { .. } => EventRank::Transferred,
            Event::Reopened => EventRank::Reopened,
            Event::Closed { .. } => EventRank::Closed,
        }
    }
}

/// Whether `id` has the shape of an entry id: `T#`, 13 digits, `#`, then 1 to 64 characters of
/// `[A-Za-z0-9_:.-]`.
pub fn is_entry_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix(ENTRY_PREFIX) else {
        return false;
    };
    let Some((ms, disc)) = rest.split_once('#') else {
        return false;
    };
    ms.len() == 13
        && ms.bytes().all(|b| b.is_ascii_digit())
        && (1..=64).contains(&disc.len())
        && disc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'))
}

/// The line of a message the contact sent; `None` for system notices (not the contact talking).
pub fn inbound_body(content: &MessageContent) -> Option<Body> {
    Some(match content {
        MessageContent::Text { body } => Body::Text { text: body.clone() },
        MessageContent::ButtonReply { id, title } | MessageContent::ListReply { id, title, .. } => {
            Body::Reply {
                reply_id: id.clone(),
                title: title.clone(),
            }
        }
        MessageContent::TemplateButton { payload, text } => Body::Reply {
            reply_id: payload.clone(),
            title: text.clone(),
        },
        MessageContent::Media {
            media_type,
            id,
            caption,
            ..
        } => Body::Media {
            media_type: serde_json::to_value(media_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            caption: caption.clone(),
            media_id: id.clone(),
        },
        MessageContent::Location {
            latitude,
            longitude,
            name,
            address,
        } => Body::Location {
            latitude: *latitude,
            longitude: *longitude,
            name: name.clone(),
            address: address.clone(),
        },
        MessageContent::FlowReply { .. } => other("flow reply"),
        MessageContent::Contacts { .. } => other("contacts"),
        MessageContent::Reaction { .. } => other("reaction"),
        MessageContent::Order { .. } => other("order"),
        MessageContent::Unsupported { message_type } => other(message_type),
        MessageContent::System { .. } => return None,
    })
}

fn other(description: &str) -> Body {
    Body::Other {
        description: description.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::event::MediaType;

    #[test]
    fn entry_ids_sort_by_time_then_sequence() {
        let a = engine_entry_id(1_700_000_000_000, 9);
        let b = engine_entry_id(1_700_000_000_000, 10);
        let c = engine_entry_id(1_700_000_000_001, 0);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(is_entry_id(&a) && is_entry_id(&event_entry_id(5, EventRank::Closed, "job:1")));
    }

    #[test]
    fn within_one_millisecond_an_assignment_comes_first_and_a_close_last() {
        let closed = event_entry_id(7, EventRank::Closed, "a");
        let message = event_entry_id(7, EventRank::Message, "z");
        let assigned = event_entry_id(7, EventRank::Assigned, "b");
        let engine = engine_entry_id(7, 999_999);
        assert!(engine < assigned && assigned < message && message < closed);
    }

    #[test]
    fn a_cursor_of_any_other_shape_is_refused() {
        for bad in [
            "",
            "T#",
            "CONV",
            "T#123#x",
            "T#1700000000000#",
            "T#1700000000000#a b",
            "T#17000000000x0#1",
            "X#1700000000000#1",
        ] {
            let r = PageRequest {
                after: Some(bad.into()),
                ..Default::default()
            };
            assert_eq!(r.validate(), Err(CursorError::Malformed), "{bad:?}");
        }
        let both = PageRequest {
            after: Some(engine_entry_id(1, 1)),
            before: Some(engine_entry_id(2, 1)),
            limit: 5,
        };
        assert_eq!(both.validate(), Err(CursorError::Both));
    }

    #[test]
    fn page_size_defaults_and_is_capped() {
        let size = |limit| {
            PageRequest {
                limit,
                ..Default::default()
            }
            .size()
        };
        assert_eq!(
            (size(0), size(7), size(10_000)),
            (DEFAULT_PAGE, 7, MAX_PAGE)
        );
    }

    #[test]
    fn status_moves_only_forward_and_failed_wins() {
        use DeliveryStatus::*;
        assert!(Pending.moves_to(Sent) && Sent.moves_to(Read) && Read.moves_to(Failed));
        assert!(!Read.moves_to(Delivered) && !Failed.moves_to(Read) && !Sent.moves_to(Sent));
    }

    #[test]
    fn every_inbound_type_has_a_line_except_system_notices() {
        let media = MessageContent::Media {
            media_type: MediaType::Image,
            id: "m1".into(),
            mime_type: None,
            caption: Some("receipt".into()),
            filename: None,
        };
        assert_eq!(
            inbound_body(&media),
            Some(Body::Media {
                media_type: "image".into(),
                caption: Some("receipt".into()),
                media_id: "m1".into()
            })
        );
        let unsupported = MessageContent::Unsupported {
            message_type: "poll".into(),
        };
        assert_eq!(inbound_body(&unsupported), Some(other("poll")));
        assert_eq!(
            inbound_body(&MessageContent::System { body: "x".into() }),
            None
        );
    }

    #[test]
    fn an_entry_serialises_flat_with_its_type_and_author_kind() {
        let e = Entry {
            id: engine_entry_id(1000, 1),
            at: 1000,
            author: Author::Agent {
                agent_id: "alice".into(),
            },
            body: Body::Text { text: "hi".into() },
            status: Some(DeliveryStatus::Pending),
            wamid: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "text");
        assert_eq!(v["author"]["kind"], "agent");
        assert_eq!(v["status"], "pending");
        assert_eq!(serde_json::from_value::<Entry>(v).unwrap(), e);
    }
}
