//! A conversation's transcript: every message and event, in order.
//!
//! Placeholder with the issue-11 contract items (owner: the transcript helper); the merge takes
//! the owner's version.

use serde::{Deserialize, Serialize};

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
    /// Button / list reply.
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
    /// A survey question as asked.
    Question {
        question: String,
        text: String,
    },
    /// A validated answer.
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
    /// Anything else the contact sent (type named).
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

/// A page request: the newest `limit` entries when both cursors are None; entries strictly after `after`
/// (catch up), or strictly before `before` (older). Always returned oldest first (newest last).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    pub before: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Older page exists: its cursor.
    pub before: Option<String>,
    /// Last id: catch up from here.
    pub after: Option<String>,
}
