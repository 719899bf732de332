//! The help-desk bridge: the team webhook's events besides `conversation.assigned`
//! ([`super::notify::payload`]), as pure payload builders. Each body names its `event` and a
//! stable `delivery_id` (derived from the conversation and the transcript entry or the job, so a
//! retried delivery carries the same id and a receiver deduplicates on it); it is posted with
//! the same headers, secret and URL checks as the assignment notification
//! ([`super::notify::WebhookNotifier::post`]).
//!
//! - `message.created`: a contact message after the hand-off, while assigned, as its
//!   transcript entry (`id`, `at` in Unix ms, `author`, `type` and the type's fields: `text`;
//!   `reply_id`/`title`; `media_type`/`caption`/`media_id`; `latitude`/`longitude`/`name`/
//!   `address`; `description`). Delivery id `msg:{conversation}:{entry id}`.
//! - `conversation.transferred`: from team/agent, to team/agent (`to_agent` null when the
//!   conversation waits in the new team's line), by whom. Delivery id `xfr:{conversation}:{job}`.
//! - `conversation.closed`: by whom (an agent, an admin, `stopped`/`restarted`/`ended` when the
//!   contact left), when. Delivery id `cls:{conversation}:{hand-off job}`.

use serde::Serialize;

use crate::transcript::Entry;

pub const MESSAGE_CREATED: &str = "message.created";
pub const CONVERSATION_TRANSFERRED: &str = "conversation.transferred";
pub const CONVERSATION_CLOSED: &str = "conversation.closed";

/// One body to post to a team's webhook: what the assigner posts, and what it keeps (as
/// [`crate::store::routing::PendingDelivery`]) while the webhook fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: String,
    pub conversation_id: String,
    /// Whose webhook it goes to (its `notify_url` is read when posting).
    pub team_id: String,
    /// The JSON body, exactly as posted (signed at each attempt's time).
    pub body: String,
    /// When it happened (Unix ms): orders a conversation's deliveries.
    pub at_ms: i64,
}

#[derive(Serialize)]
struct MessageCreated<'a> {
    event: &'static str,
    delivery_id: &'a str,
    conversation_id: &'a str,
    team_id: &'a str,
    agent_id: &'a str,
    entry: &'a Entry,
}

#[derive(Serialize)]
struct Transferred<'a> {
    event: &'static str,
    delivery_id: &'a str,
    conversation_id: &'a str,
    from_team: &'a str,
    from_agent: Option<&'a str>,
    to_team: &'a str,
    to_agent: Option<&'a str>,
    by: &'a str,
    transferred_at: i64,
}

#[derive(Serialize)]
struct Closed<'a> {
    event: &'static str,
    delivery_id: &'a str,
    conversation_id: &'a str,
    team_id: &'a str,
    agent_id: Option<&'a str>,
    closed_by: &'a str,
    closed_at: i64,
}

fn delivery(
    delivery_id: String,
    conversation_id: &str,
    team_id: &str,
    at_ms: i64,
    body: Result<String, serde_json::Error>,
) -> Result<Delivery, serde_json::Error> {
    Ok(Delivery {
        delivery_id,
        conversation_id: conversation_id.to_owned(),
        team_id: team_id.to_owned(),
        body: body?,
        at_ms,
    })
}

/// `message.created`: the contact wrote `entry` in a conversation `agent_id` of `team_id` holds.
pub fn message_created(
    conversation_id: &str,
    team_id: &str,
    agent_id: &str,
    entry: &Entry,
) -> Result<Delivery, serde_json::Error> {
    let id = format!("msg:{conversation_id}:{}", entry.id);
    let body = serde_json::to_string(&MessageCreated {
        event: MESSAGE_CREATED,
        delivery_id: &id,
        conversation_id,
        team_id,
        agent_id,
        entry,
    });
    delivery(id.clone(), conversation_id, team_id, entry.at, body)
}

/// What a transfer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFacts<'a> {
    pub conversation_id: &'a str,
    pub job_id: &'a str,
    pub from_team: &'a str,
    pub from_agent: Option<&'a str>,
    pub to_team: &'a str,
    /// Who has it now; `None`: waiting in `to_team`'s line.
    pub to_agent: Option<&'a str>,
    pub by: &'a str,
    /// Unix seconds.
    pub at: i64,
}

/// `conversation.transferred`, for the (new) team's webhook.
pub fn transferred(f: &TransferFacts<'_>) -> Result<Delivery, serde_json::Error> {
    let id = format!("xfr:{}:{}", f.conversation_id, f.job_id);
    let body = serde_json::to_string(&Transferred {
        event: CONVERSATION_TRANSFERRED,
        delivery_id: &id,
        conversation_id: f.conversation_id,
        from_team: f.from_team,
        from_agent: f.from_agent,
        to_team: f.to_team,
        to_agent: f.to_agent,
        by: f.by,
        transferred_at: f.at,
    });
    delivery(
        id.clone(),
        f.conversation_id,
        f.to_team,
        f.at.saturating_mul(1000),
        body,
    )
}

/// What a close did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFacts<'a> {
    pub conversation_id: &'a str,
    /// The job that opened the hand-off: one close per hand-off.
    pub handoff_job_id: &'a str,
    pub team_id: &'a str,
    pub agent_id: Option<&'a str>,
    pub closed_by: &'a str,
    /// Unix seconds.
    pub closed_at: i64,
}

/// `conversation.closed`, for the team's webhook.
pub fn closed(f: &CloseFacts<'_>) -> Result<Delivery, serde_json::Error> {
    let id = format!("cls:{}:{}", f.conversation_id, f.handoff_job_id);
    let body = serde_json::to_string(&Closed {
        event: CONVERSATION_CLOSED,
        delivery_id: &id,
        conversation_id: f.conversation_id,
        team_id: f.team_id,
        agent_id: f.agent_id,
        closed_by: f.closed_by,
        closed_at: f.closed_at,
    });
    delivery(
        id.clone(),
        f.conversation_id,
        f.team_id,
        f.closed_at.saturating_mul(1000),
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{Author, Body};
    use serde_json::{json, Value};

    fn entry(body: Body) -> Entry {
        Entry {
            id: "T#1700000000000#000004".into(),
            at: 1_700_000_000_000,
            author: Author::Contact,
            body,
            status: None,
            wamid: Some("wamid.A".into()),
        }
    }

    fn parsed(d: &Delivery) -> Value {
        serde_json::from_str(&d.body).unwrap()
    }

    #[test]
    fn a_text_message_is_posted_as_its_transcript_entry() {
        let d = message_created(
            "c1",
            "sales",
            "alice",
            &entry(Body::Text { text: "hi".into() }),
        )
        .unwrap();
        assert_eq!(
            parsed(&d),
            json!({
                "event": "message.created",
                "delivery_id": "msg:c1:T#1700000000000#000004",
                "conversation_id": "c1", "team_id": "sales", "agent_id": "alice",
                "entry": {"id": "T#1700000000000#000004", "at": 1_700_000_000_000_i64,
                          "author": {"kind": "contact"}, "type": "text", "text": "hi",
                          "wamid": "wamid.A"}
            })
        );
        assert_eq!((d.team_id.as_str(), d.at_ms), ("sales", 1_700_000_000_000));
        assert_eq!(d.delivery_id, "msg:c1:T#1700000000000#000004");
    }

    #[test]
    fn media_and_location_keep_their_fields() {
        let media = Body::Media {
            media_type: "image".into(),
            caption: Some("receipt".into()),
            media_id: "m1".into(),
        };
        let e = parsed(&message_created("c1", "t", "a", &entry(media)).unwrap())["entry"].clone();
        assert_eq!(
            (&e["type"], &e["caption"], &e["media_id"], &e["media_type"]),
            (
                &json!("media"),
                &json!("receipt"),
                &json!("m1"),
                &json!("image")
            )
        );
        let loc = Body::Location {
            latitude: 52.5,
            longitude: 13.4,
            name: Some("Office".into()),
            address: None,
        };
        let e = parsed(&message_created("c1", "t", "a", &entry(loc)).unwrap())["entry"].clone();
        assert_eq!(
            (&e["type"], &e["latitude"], &e["longitude"], &e["name"]),
            (
                &json!("location"),
                &json!(52.5),
                &json!(13.4),
                &json!("Office")
            )
        );
    }

    #[test]
    fn the_same_message_always_has_the_same_delivery_id_and_another_another() {
        let a = entry(Body::Text { text: "hi".into() });
        let mut b = a.clone();
        b.id = "T#1700000000000#000005".into();
        let first = message_created("c1", "t", "a", &a).unwrap();
        assert_eq!(first, message_created("c1", "t", "a", &a).unwrap());
        assert_ne!(
            first.delivery_id,
            message_created("c1", "t", "a", &b).unwrap().delivery_id
        );
    }

    fn transfer(to_agent: Option<&'static str>) -> TransferFacts<'static> {
        TransferFacts {
            conversation_id: "c1",
            job_id: "c1:transfer:9",
            from_team: "sales",
            from_agent: Some("alice"),
            to_team: "support",
            to_agent,
            by: "alice",
            at: 1_700_000_000,
        }
    }

    #[test]
    fn a_transfer_names_both_ends_and_goes_to_the_new_team() {
        let d = transferred(&transfer(Some("bruno"))).unwrap();
        assert_eq!(
            parsed(&d),
            json!({
                "event": "conversation.transferred", "delivery_id": "xfr:c1:c1:transfer:9",
                "conversation_id": "c1", "from_team": "sales", "from_agent": "alice",
                "to_team": "support", "to_agent": "bruno", "by": "alice",
                "transferred_at": 1_700_000_000
            })
        );
        assert_eq!(
            (d.team_id.as_str(), d.at_ms),
            ("support", 1_700_000_000_000)
        );
    }

    #[test]
    fn a_transfer_into_a_line_has_no_agent() {
        let d = transferred(&transfer(None)).unwrap();
        assert_eq!(parsed(&d)["to_agent"], Value::Null);
    }

    #[test]
    fn a_close_says_by_whom_and_when_once_per_handoff() {
        let f = CloseFacts {
            conversation_id: "c1",
            handoff_job_id: "c1:assign:3",
            team_id: "sales",
            agent_id: Some("alice"),
            closed_by: "alice",
            closed_at: 1_700_000_100,
        };
        let d = closed(&f).unwrap();
        assert_eq!(
            parsed(&d),
            json!({
                "event": "conversation.closed", "delivery_id": "cls:c1:c1:assign:3",
                "conversation_id": "c1", "team_id": "sales", "agent_id": "alice",
                "closed_by": "alice", "closed_at": 1_700_000_100
            })
        );
        let later = CloseFacts {
            closed_at: 1_800_000_000,
            ..f
        };
        assert_eq!(closed(&later).unwrap().delivery_id, d.delivery_id);
    }
}
