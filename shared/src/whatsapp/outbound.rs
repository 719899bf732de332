//! Outbound messages: the body of every message on the outbound FIFO queue.
//!
//! The survey engine and the agent assigner decide *what* to say as an [`OutboundMessage`];
//! the reply sender renders it to Meta's Graph API JSON (enforcing WhatsApp's limits) and sends
//! it. The JSON form is the queue contract: add fields with `#[serde(default)]`, never rename.

use serde::{Deserialize, Serialize};

use crate::queue::{contact_group_id, FifoContract};

/// One message prechat wants delivered to a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The business number to send from (`/{phone_number_id}/messages`).
    pub phone_number_id: String,
    /// Who receives it.
    pub recipient: Recipient,
    /// Deterministic id (e.g. conversation, step, attempt): the FIFO dedup id and the sender's
    /// "already sent" record, so a retried invocation never sends twice.
    pub dedup_id: String,
    /// The conversation the message belongs to, to record delivery ids and failures on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// When the contact last wrote (Unix seconds): outside 24 h only templates may be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_at: Option<i64>,
    pub body: OutboundBody,
    /// The message's transcript entry, whose `wamid` and status the sender and the status
    /// webhooks set (absent for a mark-as-read and for messages sent before transcripts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<crate::transcript::TranscriptRef>,
}

impl FifoContract for OutboundMessage {
    /// The same (business number, contact) group as inbound events.
    fn group_id(&self) -> String {
        contact_group_id(&self.phone_number_id, self.recipient.key().as_ref())
    }

    /// The message's own deterministic id ([`OutboundMessage::dedup_id`]).
    fn dedup_id(&self) -> String {
        self.dedup_id.clone()
    }
}

/// How to address the contact: `to` (phone) when known, else `recipient` (BSUID).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Recipient {
    /// The contact key (BSUID first), matching [`super::ContactRef::key`].
    pub fn key(&self) -> Option<super::ContactKey> {
        super::contact::contact_key(self.user_id.as_deref(), self.wa_id.as_deref())
    }
}

impl From<&super::ContactRef> for Recipient {
    fn from(c: &super::ContactRef) -> Self {
        Recipient {
            wa_id: c.wa_id.clone(),
            user_id: c.user_id.clone(),
        }
    }
}

/// What to send. WhatsApp's limits are enforced by the sender at render time: texts are cut to
/// their limits (body 4,096, interactive body 1,024, titles 20/24, ...), counts (buttons ≤ 3,
/// list rows ≤ 10) and ids are checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundBody {
    Text {
        body: String,
        #[serde(default)]
        preview_url: bool,
    },
    /// Interactive reply buttons.
    Buttons {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    /// Interactive list.
    List {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        /// The label of the button that opens the list.
        button: String,
        sections: Vec<ListSection>,
    },
    /// An approved template (the only kind allowed outside the 24-hour window).
    Template {
        name: String,
        language: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        body_parameters: Vec<String>,
    },
    /// Mark an inbound message as read, optionally showing the typing indicator.
    MarkRead {
        message_id: String,
        #[serde(default)]
        typing_indicator: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
