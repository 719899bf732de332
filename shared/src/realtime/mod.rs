//! The realtime channel: the API Gateway WebSocket API (`RealtimeApi` in `infra/template.yaml`)
//! that tells a signed-in agent's browser, within about a second, that something changed.
//!
//! - [`jwt`]: the Cognito token verifier, shared by `ws-authorizer` and the local stack.
//! - [`authorizer`]: `ws-authorizer`, the Lambda REQUEST authorizer of `$connect`
//!   (identity source `route.request.querystring.token`): the token checked as `CognitoJwt`
//!   checks it, answered with an IAM policy and the claims as its context.
//! - [`connections`]: `ws-connections`, the `$connect` / `$disconnect` / `$default` routes:
//!   stores and removes the connection (`store::connections`), answers `ping` with `pong`.
//! - [`push`]: the [`push::Pusher`] the functions that create events call; a push is a hint.
//!
//! The push contract (`infra/realtime.md`, next to the OpenAPI file): every push is one JSON text frame, a [`PushEvent`]:
//! `{"type", "conversation_id", "entry"?, "at"}`. On any push the client re-reads what it
//! needs through the agent API (the list, or the transcript with `?after=<last entry id>`), so
//! a lost push costs latency, never data; on reconnect it does the same catch-up.

pub mod authorizer;
pub mod connections;
pub mod jwt;
pub mod push;

use serde::{Deserialize, Serialize};

/// What happened, as the `type` of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushType {
    /// A conversation was assigned to the agent (agent-assigner).
    #[serde(rename = "conversation.assigned")]
    ConversationAssigned,
    /// A conversation the agent sees changed (status, labels, window).
    #[serde(rename = "conversation.updated")]
    ConversationUpdated,
    /// A conversation was closed.
    #[serde(rename = "conversation.closed")]
    ConversationClosed,
    /// A conversation moved to another agent or team.
    #[serde(rename = "conversation.transferred")]
    ConversationTransferred,
    /// A new transcript entry (a contact message, a reply); carries the entry.
    #[serde(rename = "message.created")]
    MessageCreated,
    /// A delivery status of a transcript entry changed (sent, delivered, read, failed);
    /// carries the entry.
    #[serde(rename = "message.status")]
    MessageStatus,
}

/// One push: a JSON text frame on every connection of the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "type")]
    pub kind: PushType,
    pub conversation_id: String,
    /// The transcript entry as the agent API returns it (`message.created`, `message.status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<serde_json::Value>,
    /// When it happened, Unix milliseconds.
    pub at: i64,
}

impl PushEvent {
    /// A push about a conversation (no entry).
    pub fn conversation(kind: PushType, conversation_id: impl Into<String>, at_ms: i64) -> Self {
        PushEvent {
            kind,
            conversation_id: conversation_id.into(),
            entry: None,
            at: at_ms,
        }
    }

    /// A push about a transcript entry, serialised as the agent API returns it.
    pub fn entry(
        kind: PushType,
        conversation_id: impl Into<String>,
        entry: serde_json::Value,
        at_ms: i64,
    ) -> Self {
        PushEvent {
            entry: Some(entry),
            ..PushEvent::conversation(kind, conversation_id, at_ms)
        }
    }

    /// The frame's text (an error rather than an empty frame if it ever fails to serialise).
    pub fn to_frame(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_push_is_the_contract_s_frame() {
        let e = PushEvent::conversation(PushType::ConversationAssigned, "c1", 1_790_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&e.to_frame().unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"type": "conversation.assigned", "conversation_id": "c1", "at": 1_790_000_000_000i64})
        );
    }

    #[test]
    fn a_message_push_carries_its_entry() {
        let entry = json!({"id": "e1", "direction": "in", "text": "hi"});
        let e = PushEvent::entry(PushType::MessageCreated, "c1", entry.clone(), 5);
        let v: serde_json::Value = serde_json::from_str(&e.to_frame().unwrap()).unwrap();
        assert_eq!(v["type"], "message.created");
        assert_eq!(v["entry"], entry);
    }

    #[test]
    fn every_type_is_documented_next_to_the_openapi_file() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/realtime.md"))
                .unwrap();
        for kind in [
            PushType::ConversationAssigned,
            PushType::ConversationUpdated,
            PushType::ConversationClosed,
            PushType::ConversationTransferred,
            PushType::MessageCreated,
            PushType::MessageStatus,
        ] {
            let name = serde_json::to_value(kind).unwrap();
            let row = format!("| `{}` |", name.as_str().unwrap());
            assert!(
                doc.contains(&row),
                "infra/realtime.md has no row for {name}"
            );
        }
    }

    #[test]
    fn every_type_has_the_contract_s_name() {
        let names = [
            (PushType::ConversationAssigned, "conversation.assigned"),
            (PushType::ConversationUpdated, "conversation.updated"),
            (PushType::ConversationClosed, "conversation.closed"),
            (
                PushType::ConversationTransferred,
                "conversation.transferred",
            ),
            (PushType::MessageCreated, "message.created"),
            (PushType::MessageStatus, "message.status"),
        ];
        for (kind, name) in names {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
        }
    }
}
