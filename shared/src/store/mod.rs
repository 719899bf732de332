//! The DynamoDB port.
//!
//! prechat keeps all state in one table (`StateTable` in `infra/template.yaml`), single-table
//! style: string keys `pk` and `sk`, one global secondary index `gsi1` (`gsi1pk`, `gsi1sk`) for
//! ordered look-ups (e.g. a team's waiting line), and `expires_at` (Unix seconds) as the TTL
//! attribute. DynamoDB may keep expired items for a while, so readers filter on `expires_at`.
//!
//! Each part of the pipeline owns its key prefixes and its store module; this module holds
//! what they share. The key layout is a contract between the functions:
//!
//! | item                 | pk                                        | sk              | written by |
//! |----------------------|-------------------------------------------|-----------------|------------|
//! | contact              | `CONTACT#{phone_number_id}#{contact_key}` | `PROFILE`       | survey-engine |
//! | applied message      | `APPLIED#{phone_number_id}#{message_id}`  | `APPLIED`       | survey-engine (`effects`: the outbound messages and job the message committed, `applied_at`, `expires_at` = +19 days; created in the commit transaction only if absent or expired; also `remind:{conversation}:{step}` ids of reminder ticks) |
//! | conversation         | `CONV#{conversation_id}`                  | `CONV`          | survey-engine; agent-assigner sets only `assigned_agent`, `assigned_team`, `assigned_at` (removed when the contact cancels the hand-off), `closed_at`, `closed_by`, and reads `last_inbound_at` (the 24-hour window) |
//! | delivery failure     | `CONV#{conversation_id}`                  | `FAIL#{dedup_id}` | reply-sender |
//! | reminder index entry | `gsi1pk = REMIND#{0..3}` on the conversation item | `gsi1sk = {due:012}#{id}` | survey-engine (only while a reminder can be due) |
//! | failed status        | `CONV#{conversation_id}`                  | `FAILED#{wamid}` | survey-engine (from status webhooks; also `failed_messages` on the conversation) |
//! | sent message         | `OUT#{wamid}`                             | `OUT`           | reply-sender (`conversation_id`, `dedup_id`, `contact_key`, `sent_at`); survey-engine sets only `delivery_status`, `delivery_rank`, `delivery_at` from status webhooks |
//! | send record (dedup)  | `SENT#{dedup_id}`                         | `SENT`          | reply-sender |
//! | survey version       | `SURVEY#{survey_id}`                      | `V#{version:06}` | prechat-admin |
//! | agent                | `AGENT#{agent_id}`                        | `AGENT`         | agent-assigner, prechat-admin (gsi1: `AGENTS` / `{agent_id}`) |
//! | team                 | `TEAM#{team_id}`                          | `TEAM`          | prechat-admin (gsi1: `TEAMS` / `{team_id}`) |
//! | routing rules        | `ROUTING`                                 | `ROUTING`       | prechat-admin |
//! | hand-off ticket      | `HANDOFF#{conversation_id}`               | `HANDOFF`       | agent-assigner, prechat-admin (gsi1: `WAIT#{team_id}` or `ANNOUNCE#{team_id}` / `{0 VIP,1}#{requested_at:012}#{conversation_id}`) |
//!
//! A conversation with `closed_at` set is closed, whoever set it. Conversation ids are ASCII
//! and SQS-id safe.

pub mod conversation_store;
pub mod delivery_log;
pub mod routing;
pub mod survey_store;

use aws_sdk_dynamodb::Client;

/// The table handle every store implementation is built from.
#[derive(Clone, Debug)]
pub struct DynamoTable {
    pub client: Client,
    pub name: String,
}

impl DynamoTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        DynamoTable {
            client,
            name: name.into(),
        }
    }
}

/// Attribute names shared by every item.
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1_PK: &str = "gsi1pk";
    pub const GSI1_SK: &str = "gsi1sk";
    pub const GSI1: &str = "gsi1";
    pub const EXPIRES_AT: &str = "expires_at";
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost (already applied, or a concurrent writer won).
    #[error("condition not met: {0}")]
    ConditionFailed(String),
    /// DynamoDB throttled or was unavailable: try again later.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// Any other request failure.
    #[error("DynamoDB request failed: {0}")]
    Request(String),
    /// An item that does not have the shape we wrote.
    #[error("corrupt item {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Request(_))
    }

    /// Classifies an SDK error.
    pub fn from_sdk<E, R>(err: aws_sdk_dynamodb::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        use aws_sdk_dynamodb::error::SdkError;
        let code = err.code().map(str::to_owned);
        let text = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
        match (&err, code.as_deref()) {
            (_, Some("ConditionalCheckFailedException")) => StoreError::ConditionFailed(text),
            (_, Some("TransactionCanceledException"))
                if text.contains("ConditionalCheckFailed") =>
            {
                StoreError::ConditionFailed(text)
            }
            (
                _,
                Some(
                    "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionConflictException",
                ),
            ) => StoreError::Unavailable(text),
            (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
                StoreError::Unavailable(text)
            }
            _ => StoreError::Request(text),
        }
    }
}

use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
