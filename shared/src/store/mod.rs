//! The DynamoDB port.
//!
//! prechat keeps all state in one table (`StateTable` in `infra/template.yaml`), single-table
//! style: string keys `pk` and `sk`, global secondary indexes `gsi1` (`gsi1pk`, `gsi1sk`),
//! `gsi2` and `gsi3` (keys only) for ordered look-ups (a team's waiting line, a contact's
//! conversations, the conversations of a day), and `expires_at` (Unix seconds) as the TTL
//! attribute. DynamoDB may keep expired items for a while, so readers filter on `expires_at`.
//!
//! Each part of the pipeline owns its store module; this module holds what they share: the
//! table handle, the attribute names every item has, and [`StoreError`]. The key layout (which
//! item has which `pk`/`sk`, what it holds, who writes it) is code in [`keys`]; the attribute
//! codec every store uses is [`item`].
//!
//! - [`connections`]: the agents' WebSocket connections (ws-connections, pushers).
//! - [`conversation_store`]: contacts, conversations, applied messages, the reminder index
//!   (survey-engine).
//! - [`delivery_log`]: what was sent, its delivery statuses and its failures (reply-sender
//!   and survey-engine's status webhooks).
//! - [`routing`]: the agent directory and hand-off tickets (agent-assigner, prechat-admin).
//! - [`survey_store`]: published survey versions (prechat-admin, survey-engine).
//! - [`transcript`]: every line of a conversation with its delivery status (survey-engine,
//!   reply-sender through the delivery log, agent-assigner).

pub mod connections;
pub mod conversation_store;
pub mod delivery_log;
pub mod item;
pub mod keys;
pub mod routing;
pub mod survey_store;
pub mod transcript;

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
    pub const GSI2_PK: &str = "gsi2pk";
    pub const GSI2_SK: &str = "gsi2sk";
    pub const GSI2: &str = "gsi2";
    pub const GSI3_PK: &str = "gsi3pk";
    pub const GSI3_SK: &str = "gsi3sk";
    pub const GSI3: &str = "gsi3";
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
    /// A paging cursor that is not one we hand out (the caller's mistake: HTTP 400).
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// An item that does not have the shape we wrote.
    #[error("corrupt item {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// A value that could not be serialised for an attribute (never written as an empty
    /// one): permanent, as the same value fails the same way again.
    #[error("could not serialise an attribute: {0}")]
    Encode(String),
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
