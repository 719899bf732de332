//! Assignment jobs: the body of every message on the assignment FIFO queue.
//!
//! The survey engine enqueues [`AssignmentJob::Assign`] when a survey completes or a contact
//! asks for a human, and [`AssignmentJob::Cancel`] when a handed-off conversation is stopped or
//! restarted (in the same FIFO group as its `Assign`, so it is handled after it); admin commands
//! and the scheduled sweep enqueue [`AssignmentJob::Drain`] when capacity frees up. The
//! help-desk bridge adds three, all in the contact's FIFO group: [`AssignmentJob::Relay`] (the
//! survey engine, for each contact message after the hand-off), [`AssignmentJob::Transfer`]
//! (the agent API's transfer) and [`AssignmentJob::Closed`] (the agent API's and the admin
//! CLI's close, so the team's webhook hears it). The JSON form is the queue contract: add
//! fields with `#[serde(default)]`, never rename.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::queue::{contact_group_id, FifoContract};
use crate::whatsapp::ContactRef;

// One job is decoded per queue message and never stored in bulk: the size difference between
// the variants costs nothing worth a `Box` in the contract.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum AssignmentJob {
    Assign(AssignRequest),
    /// Capacity may have freed in a team: assign its longest-waiting conversations.
    Drain {
        team_id: String,
        reason: String,
    },
    /// The contact left the hand-off (stop, restart, end): close its ticket, free the agent.
    Cancel(CancelRequest),
    /// A contact message after the hand-off: to the team's webhook when assigned.
    Relay(RelayRequest),
    /// Move a conversation to another team or agent, under the capacity rules.
    Transfer(TransferRequest),
    /// A conversation was closed outside the assigner: tell the team's webhook.
    Closed(ClosedNotice),
}

/// A contact message of a handed-off conversation, as its transcript entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayRequest {
    /// Deterministic (`{conversation}:relay:{entry id}`, one per inbound message): FIFO dedup id.
    pub job_id: String,
    pub phone_number_id: String,
    pub contact: ContactRef,
    pub conversation_id: String,
    pub entry: crate::transcript::Entry,
}

/// Where a transfer goes: `{"team": "..."}` or `{"agent": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    Team(String),
    Agent(String),
}

/// A transfer asked for through the agent API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    /// Deterministic per request: FIFO dedup id, the transcript line's and the webhook's key.
    pub job_id: String,
    pub phone_number_id: String,
    pub contact: ContactRef,
    pub conversation_id: String,
    pub to: TransferTarget,
    /// Who asked (an agent id or a machine client id).
    pub by: String,
    pub requested_at: i64,
}

/// A conversation closed by an agent, a lead, an admin or an integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedNotice {
    /// `{conversation}:closed:{ticket job id}`: one per hand-off.
    pub job_id: String,
    pub phone_number_id: String,
    pub contact: ContactRef,
    pub conversation_id: String,
    /// The job that opened the closed hand-off (the webhook's delivery id comes from it).
    pub handoff_job_id: String,
    pub team_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub closed_by: String,
    pub closed_at: i64,
}

impl ClosedNotice {
    /// The notice of closing the hand-off `ticket_job_id` of a conversation.
    pub fn job_id_for(conversation_id: &str, ticket_job_id: &str) -> String {
        format!("{conversation_id}:closed:{ticket_job_id}")
    }
}

/// A hand-off the contact left before or while an agent served it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Deterministic: FIFO dedup id.
    pub job_id: String,
    pub phone_number_id: String,
    /// As on the conversation's `Assign` job: the same FIFO group.
    pub contact: ContactRef,
    pub conversation_id: String,
    pub reason: CancelReason,
    /// When the contact left (Unix seconds): a ticket opened later is not this hand-off's.
    pub requested_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The stop keyword: the contact opted out.
    Stopped,
    /// The restart keyword: the survey runs again, and its new answers make a new hand-off.
    Restarted,
    /// The conversation ended.
    Ended,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::Stopped => "stopped",
            CancelReason::Restarted => "restarted",
            CancelReason::Ended => "ended",
        }
    }
}

/// A conversation that needs a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignRequest {
    /// Deterministic: FIFO dedup id and the assigner's idempotency key.
    pub job_id: String,
    pub phone_number_id: String,
    pub contact: ContactRef,
    pub conversation_id: String,
    /// The contact's language (a code from the survey definition, e.g. `en`).
    pub language: String,
    /// Why a human is needed.
    pub reason: HandoffReason,
    /// Survey answers by question key, as validated and normalised by the engine.
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    /// The contact's saved fields (e.g. `customer_id`, `country`, `tier`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Answers saved as conversation variables (`save_to: var.<name>`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// When the contact last wrote (Unix seconds), for the 24-hour window.
    pub last_inbound_at: i64,
    /// When the job was created (Unix seconds): queue order within a priority.
    pub requested_at: i64,
    /// The contact restarted a handed-off conversation and the survey completed again in the
    /// same message: this hand-off replaces the conversation's open one (no `Cancel` job went
    /// out for it, as one message yields one job).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supersedes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The survey was answered to the end.
    Completed,
    /// The contact used the "talk to a human" keyword.
    Requested,
    /// Too many invalid answers, and the question's fallback is a hand-off.
    Fallback,
}

impl HandoffReason {
    /// The reason as its JSON name (`completed`, `requested`, `fallback`): what the
    /// conversation item's `handoff_reason` holds.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffReason::Completed => "completed",
            HandoffReason::Requested => "requested",
            HandoffReason::Fallback => "fallback",
        }
    }
}

/// The drain jobs that tell the assigner capacity may have freed in `teams` (an agent came
/// online, a conversation closed...): one per team, each its own FIFO dedup id (`stamp`, e.g.
/// the current Unix milliseconds, keeps a later drain from being taken for a repeat).
pub fn drain_messages(
    teams: &[String],
    reason: &str,
    stamp: i64,
) -> Result<Vec<crate::queue::QueueMessage>, serde_json::Error> {
    teams
        .iter()
        .map(|team| {
            let job = AssignmentJob::Drain {
                team_id: team.clone(),
                reason: reason.to_owned(),
            };
            let body = serde_json::to_string(&job)?;
            Ok(crate::queue::QueueMessage::fifo(
                body,
                &job.group_id(),
                &format!("drain:{team}:{stamp}"),
            ))
        })
        .collect()
}

impl FifoContract for AssignmentJob {
    /// A contact's jobs share the contact's group (a `Cancel` follows its `Assign`); a drain
    /// job has its team's.
    fn group_id(&self) -> String {
        match self {
            AssignmentJob::Assign(r) => {
                contact_group_id(&r.phone_number_id, r.contact.key().as_ref())
            }
            AssignmentJob::Cancel(r) => {
                contact_group_id(&r.phone_number_id, r.contact.key().as_ref())
            }
            AssignmentJob::Relay(r) => {
                contact_group_id(&r.phone_number_id, r.contact.key().as_ref())
            }
            AssignmentJob::Transfer(r) => {
                contact_group_id(&r.phone_number_id, r.contact.key().as_ref())
            }
            AssignmentJob::Closed(r) => {
                contact_group_id(&r.phone_number_id, r.contact.key().as_ref())
            }
            AssignmentJob::Drain { team_id, .. } => format!("drain:{team_id}"),
        }
    }

    /// The job id; a drain job's is its team and reason.
    fn dedup_id(&self) -> String {
        match self {
            AssignmentJob::Assign(r) => r.job_id.clone(),
            AssignmentJob::Cancel(r) => r.job_id.clone(),
            AssignmentJob::Relay(r) => r.job_id.clone(),
            AssignmentJob::Transfer(r) => r.job_id.clone(),
            AssignmentJob::Closed(r) => r.job_id.clone(),
            AssignmentJob::Drain { team_id, reason } => format!("drain:{team_id}:{reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_shares_the_fifo_group_of_its_assign_and_round_trips() {
        let contact = ContactRef {
            user_id: Some("US.1".into()),
            wa_id: Some("491701234567".into()),
            ..Default::default()
        };
        let cancel = AssignmentJob::Cancel(CancelRequest {
            job_id: "c1:cancel:4".into(),
            phone_number_id: "106".into(),
            contact: contact.clone(),
            conversation_id: "c1".into(),
            reason: CancelReason::Restarted,
            requested_at: 7,
        });
        let json = serde_json::to_string(&cancel).unwrap();
        assert!(
            json.contains("\"job\":\"cancel\"") && json.contains("\"restarted\""),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<AssignmentJob>(&json).unwrap(),
            cancel
        );
        assert_eq!(cancel.group_id(), "106:US.1");
        assert_eq!(cancel.dedup_id(), "c1:cancel:4");
        // An `Assign` written before `supersedes` existed still reads.
        let old = r#"{"job":"assign","job_id":"j","phone_number_id":"106","contact":{"user_id":"US.1"},
            "conversation_id":"c1","language":"en","reason":"completed","last_inbound_at":1,"requested_at":1}"#;
        let AssignmentJob::Assign(r) = serde_json::from_str(old).unwrap() else {
            panic!("not an assign job")
        };
        assert!(!r.supersedes);
        assert_eq!(AssignmentJob::Assign(r).group_id(), "106:US.1");
    }

    #[test]
    fn bridge_jobs_share_the_contact_group_and_round_trip() {
        let contact = ContactRef {
            user_id: Some("US.1".into()),
            ..Default::default()
        };
        let transfer = AssignmentJob::Transfer(TransferRequest {
            job_id: "c1:transfer:abc".into(),
            phone_number_id: "106".into(),
            contact: contact.clone(),
            conversation_id: "c1".into(),
            to: TransferTarget::Agent("bruno".into()),
            by: "alice".into(),
            requested_at: 7,
        });
        let json = serde_json::to_string(&transfer).unwrap();
        assert!(
            json.contains(r#""job":"transfer""#) && json.contains(r#""to":{"agent":"bruno"}"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<AssignmentJob>(&json).unwrap(),
            transfer
        );
        let relay = AssignmentJob::Relay(RelayRequest {
            job_id: "c1:relay:T#1".into(),
            phone_number_id: "106".into(),
            contact: contact.clone(),
            conversation_id: "c1".into(),
            entry: crate::transcript::Entry {
                id: "T#0000000001000#000003".into(),
                at: 1000,
                author: crate::transcript::Author::Contact,
                body: crate::transcript::Body::Text { text: "hi".into() },
                status: None,
                wamid: Some("wamid.1".into()),
            },
        });
        let json = serde_json::to_string(&relay).unwrap();
        assert_eq!(serde_json::from_str::<AssignmentJob>(&json).unwrap(), relay);
        let closed = AssignmentJob::Closed(ClosedNotice {
            job_id: ClosedNotice::job_id_for("c1", "j"),
            phone_number_id: "106".into(),
            contact,
            conversation_id: "c1".into(),
            handoff_job_id: "j".into(),
            team_id: "sales".into(),
            agent_id: None,
            closed_by: "admin".into(),
            closed_at: 9,
        });
        for job in [&transfer, &relay, &closed] {
            assert_eq!(job.group_id(), "106:US.1");
        }
        assert_eq!(relay.dedup_id(), "c1:relay:T#1");
        assert_eq!(closed.dedup_id(), "c1:closed:j");
    }

    #[test]
    fn a_handoff_reason_as_str_is_its_json_name() {
        for r in [
            HandoffReason::Completed,
            HandoffReason::Requested,
            HandoffReason::Fallback,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
