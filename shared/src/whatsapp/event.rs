//! Normalised inbound events: the body of every message on the inbound FIFO queue.
//!
//! Ingest turns each message, status and identity notice of a webhook delivery into one
//! [`InboundEvent`], in the order Meta sent them. The JSON form (`serde`) is the queue contract
//! between webhook-ingest and survey-engine: add fields with `#[serde(default)]`, never rename.

use serde::{Deserialize, Serialize};

use super::contact::{ContactKey, ContactRef};
use crate::queue::{contact_group_id, FifoContract};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum InboundEvent {
    Message(InboundMessage),
    Status(StatusUpdate),
    /// A user's BSUID changed (phone number change): re-key the contact.
    UserIdUpdate(UserIdUpdate),
    /// A web chat visitor submitted the pre-chat form (`crate::webchat`).
    WebForm(WebFormSubmission),
}

impl InboundEvent {
    /// The business phone number the event belongs to.
    pub fn phone_number_id(&self) -> &str {
        match self {
            InboundEvent::Message(m) => &m.phone_number_id,
            InboundEvent::Status(s) => &s.phone_number_id,
            InboundEvent::UserIdUpdate(u) => &u.phone_number_id,
            InboundEvent::WebForm(w) => &w.phone_number_id,
        }
    }

    /// The contact key the event is about (BSUID, else phone number).
    pub fn contact_key(&self) -> Option<ContactKey> {
        match self {
            InboundEvent::Message(m) => m.contact.key(),
            InboundEvent::Status(s) => s.recipient.key(),
            InboundEvent::UserIdUpdate(u) => Some(ContactKey::from(u.new_user_id.as_str())),
            InboundEvent::WebForm(w) => w.contact.key(),
        }
    }
}

impl FifoContract for InboundEvent {
    /// One group per (business number, contact), so one contact's events stay in order while
    /// different contacts are processed in parallel.
    fn group_id(&self) -> String {
        contact_group_id(self.phone_number_id(), self.contact_key().as_ref())
    }

    /// The WhatsApp message id; for statuses, status id + status.
    fn dedup_id(&self) -> String {
        match self {
            InboundEvent::Message(m) => m.message_id.clone(),
            InboundEvent::Status(s) => format!("{}:{}", s.message_id, s.status),
            InboundEvent::UserIdUpdate(u) => {
                format!("uid:{}:{}:{}", u.old_user_id, u.new_user_id, u.timestamp)
            }
            InboundEvent::WebForm(w) => w.submission_id.clone(),
        }
    }
}

/// A web chat visitor's pre-chat form, validated and normalised at the edge
/// (`survey::web::submit`, the WhatsApp validators) and applied by the survey engine as the
/// survey's completion: the contact and conversation with these answers and the consent
/// record, then the same hand-off as on WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebFormSubmission {
    /// Always `crate::webchat::WEB_PHONE_NUMBER_ID`.
    pub phone_number_id: String,
    /// `user_id` = the visitor's contact key (`V.{visitor id}`), `profile_name` = the name the
    /// form gave (if any); never a `wa_id`.
    pub contact: ContactRef,
    /// The idempotency key (FIFO dedup id, the engine's applied record):
    /// `webform:{visitor id}:{the browser's submission nonce}`.
    pub submission_id: String,
    /// When it was submitted, Unix seconds.
    pub timestamp: i64,
    pub survey_id: String,
    pub survey_version: u32,
    /// The conversation's language.
    pub language: String,
    /// Every answer by question key, normalised (as the conversation's `answers`).
    #[serde(default)]
    pub answers: std::collections::BTreeMap<String, String>,
    /// Answers saved to contact fields.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
    /// Answers saved as conversation variables.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
    /// The consent as given on the form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<crate::survey::engine::ConsentRecord>,
}

/// A message a contact sent to the business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// `value.metadata.phone_number_id`: which business number received it.
    pub phone_number_id: String,
    /// `value.metadata.display_phone_number`.
    #[serde(default)]
    pub display_phone_number: String,
    pub contact: ContactRef,
    /// `messages[].id` (`wamid....`), the idempotency key of everything downstream.
    pub message_id: String,
    /// `messages[].timestamp`, Unix seconds.
    pub timestamp: i64,
    /// The message this one replies to (`context.id`), when it is a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_message_id: Option<String>,
    /// `referral` (click-to-WhatsApp ads), kept as Meta sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<serde_json::Value>,
    pub content: MessageContent,
}

/// What the contact sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        body: String,
    },
    /// Interactive reply button tapped.
    ButtonReply {
        id: String,
        title: String,
    },
    /// Interactive list row chosen.
    ListReply {
        id: String,
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// WhatsApp Flows response (`nfm_reply`): `response_json` is the flow's JSON string.
    FlowReply {
        response_json: String,
        body: String,
        name: String,
    },
    /// Template quick-reply button (`type: button`).
    TemplateButton {
        payload: String,
        text: String,
    },
    Location {
        latitude: f64,
        longitude: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    Media {
        media_type: MediaType,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// Shared contact cards, kept as Meta sent them.
    Contacts {
        contacts: serde_json::Value,
    },
    Reaction {
        message_id: String,
        /// Absent when a reaction is removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
    },
    /// A catalog order, kept as Meta sent it.
    Order {
        order: serde_json::Value,
    },
    /// System notices (e.g. the user changed number).
    System {
        body: String,
    },
    /// `unsupported`, and any type Meta adds later: kept, never an error.
    Unsupported {
        message_type: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

/// A delivery status of a message prechat sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub phone_number_id: String,
    /// The WhatsApp id of our outbound message (`statuses[].id`).
    pub message_id: String,
    pub status: DeliveryStatus,
    pub timestamp: i64,
    /// `recipient_id` / `recipient_user_id` (failed statuses omit `contacts`).
    pub recipient: ContactRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ApiError>,
    /// `conversation` and `pricing`, kept as Meta sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
    /// Any status Meta adds later.
    #[serde(other)]
    Other,
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Other => "other",
        })
    }
}

/// An error object from a webhook (`errors[]`) or a Graph API response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: i64,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// `user_id_update`: a user's BSUID changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserIdUpdate {
    pub phone_number_id: String,
    pub old_user_id: String,
    pub new_user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    pub timestamp: i64,
}
