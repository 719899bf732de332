//! Assignment jobs: the body of every message on the assignment FIFO queue.
//!
//! The survey engine enqueues [`AssignmentJob::Assign`] when a survey completes or a contact
//! asks for a human; admin commands and the scheduled sweep enqueue [`AssignmentJob::Drain`]
//! when capacity frees up. The JSON form is the queue contract: add fields with
//! `#[serde(default)]`, never rename.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// When the contact last wrote (Unix seconds), for the 24-hour window.
    pub last_inbound_at: i64,
    /// When the job was created (Unix seconds): queue order within a priority.
    pub requested_at: i64,
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

impl AssignmentJob {
    pub fn group_id(&self) -> String {
        match self {
            AssignmentJob::Assign(r) => {
                format!(
                    "{}:{}",
                    r.phone_number_id,
                    r.contact.key().unwrap_or("unknown")
                )
            }
            AssignmentJob::Drain { team_id, .. } => format!("drain:{team_id}"),
        }
    }
}
