//! Pushes to agents' browsers: [`Pusher::push`] looks up the agent's connections
//! ([`ConnectionStore::of_agent`]) and posts the event to each with the API Gateway
//! management API (`PostToConnection` on `PRECHAT_WS_MANAGEMENT_URL`,
//! `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`; locally the stack's
//! emulation). A connection answered 410 Gone is closed for good: its item is removed.
//!
//! A push is a hint: it never fails the caller's work. Every failure (store, network, 403,
//! throttling) is logged without personal data and counted in the [`PushReport`]; the client
//! catches up through the agent API on the next push or on reconnect.
//!
//! For the functions that create events (survey-engine, agent-assigner, agent-api), one call:
//! ```ignore
//! let pusher = prechat::realtime::push::AwsPusher::from_env(&sdk, table.clone());  // at init
//! if let Some(p) = &pusher { p.push(&agent_id, &PushEvent::conversation(..)).await; }
//! ```
//! `from_env` is `None` while `PRECHAT_WS_MANAGEMENT_URL` is unset (pushes off). IAM the
//! caller needs: `dynamodb:Query` on `gsi1`, `dynamodb:DeleteItem` on the table,
//! `execute-api:ManageConnections` on `arn:aws:execute-api:{region}:{account}:{api}/{stage}/POST/@connections/*`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use super::PushEvent;
use crate::clock::Clock;
use crate::store::connections::{ConnectionStore, DynamoConnections};
use crate::store::DynamoTable;

/// The setting naming the management API endpoint.
pub const MANAGEMENT_URL_VAR: &str = "PRECHAT_WS_MANAGEMENT_URL";

/// How long one `PostToConnection` may take before it is given up (a push must not hold up
/// the function that sends it).
pub const POST_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a post did not reach the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// 410: the connection is closed; it will never take a message again.
    #[error("the connection is gone")]
    Gone,
    /// Any other failure (throttled, forbidden, unreachable, timed out).
    #[error("post failed: {reason}")]
    Failed { retryable: bool, reason: String },
}

impl PostError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PostError::Failed {
                retryable: true,
                ..
            }
        )
    }
}

/// The management API port: one frame to one connection.
pub trait ConnectionPoster: Send + Sync {
    fn post(
        &self,
        connection_id: &str,
        data: &[u8],
    ) -> impl Future<Output = Result<(), PostError>> + Send;
}

/// [`ConnectionPoster`] on the API Gateway management API.
#[derive(Clone, Debug)]
pub struct ApiGatewayPoster {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ApiGatewayPoster {
    /// A client for the stage at `endpoint` (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let timeouts = aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig::builder()
            .operation_timeout(POST_TIMEOUT)
            .build();
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .timeout_config(timeouts)
            .build();
        ApiGatewayPoster {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }
}

impl ConnectionPoster for ApiGatewayPoster {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PostError> {
        use aws_sdk_apigatewaymanagement::error::SdkError;
        let sent = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => match e.err() {
                PostToConnectionError::GoneException(_) => Err(PostError::Gone),
                PostToConnectionError::ForbiddenException(_) => Err(PostError::Failed {
                    retryable: false,
                    reason: "forbidden".into(),
                }),
                PostToConnectionError::PayloadTooLargeException(_) => Err(PostError::Failed {
                    retryable: false,
                    reason: "payload too large".into(),
                }),
                _ if e.raw().status().as_u16() == 410 => Err(PostError::Gone),
                other => Err(PostError::Failed {
                    retryable: true,
                    reason: format!("status {}: {other}", e.raw().status().as_u16()),
                }),
            },
            Err(other) => Err(PostError::Failed {
                retryable: true,
                reason: aws_sdk_apigatewaymanagement::error::DisplayErrorContext(other).to_string(),
            }),
        }
    }
}

/// What one push did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Connections that took the frame.
    pub delivered: usize,
    /// Connections answered 410 (removed from the store).
    pub gone: usize,
    /// Connections that failed otherwise, or 1 when the store could not be read.
    pub failed: usize,
}

/// Sends [`PushEvent`]s to every connection of an agent.
pub struct Pusher<S, P> {
    store: S,
    poster: P,
    clock: Clock,
}

/// The pusher on DynamoDB and the management API.
pub type AwsPusher = Pusher<DynamoConnections, ApiGatewayPoster>;

impl AwsPusher {
    /// The pusher for `PRECHAT_WS_MANAGEMENT_URL`; `None` while it is unset or empty.
    pub fn from_env(sdk: &aws_config::SdkConfig, table: DynamoTable) -> Option<AwsPusher> {
        Self::from_lookup(sdk, table, crate::config::process_env)
    }

    /// [`AwsPusher::from_env`] with an explicit environment lookup.
    pub fn from_lookup(
        sdk: &aws_config::SdkConfig,
        table: DynamoTable,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Option<AwsPusher> {
        let url = lookup(MANAGEMENT_URL_VAR).filter(|u| !u.trim().is_empty())?;
        Some(Pusher::new(
            DynamoConnections::new(table),
            ApiGatewayPoster::new(sdk, url.trim()),
            Clock::system(),
        ))
    }
}

impl<S: ConnectionStore, P: ConnectionPoster> Pusher<S, P> {
    pub fn new(store: S, poster: P, clock: Clock) -> Self {
        Pusher {
            store,
            poster,
            clock,
        }
    }

    /// Posts `event` to every open connection of `agent_id`; never fails (see the module doc).
    pub async fn push(&self, agent_id: &str, event: &PushEvent) -> PushReport {
        let mut report = PushReport::default();
        let connections = match self.store.of_agent(agent_id, self.clock.unix()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(retryable = e.is_retryable(), error = %e, "push: connections unreadable");
                report.failed = 1;
                return report;
            }
        };
        let frame = match event.to_frame() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(category = ?e.classify(), "push: event does not serialise");
                report.failed = 1;
                return report;
            }
        };
        for c in &connections {
            match self.poster.post(&c.connection_id, frame.as_bytes()).await {
                Ok(()) => report.delivered += 1,
                Err(PostError::Gone) => {
                    report.gone += 1;
                    if let Err(e) = self.store.remove(&c.connection_id).await {
                        tracing::warn!(error = %e, "push: gone connection not removed");
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(retryable = e.is_retryable(), error = %e, "push failed");
                }
            }
        }
        tracing::info!(
            kind = ?event.kind,
            delivered = report.delivered,
            gone = report.gone,
            failed = report.failed,
            "push"
        );
        report
    }
}

/// The push port the functions that create events hold, type-erased so their own types do
/// not grow two parameters: an [`AwsPusher`] in Lambda, a [`RecordedPushes`] in unit tests.
pub trait Push: Send + Sync {
    /// [`Pusher::push`]: never fails the caller.
    fn push_to<'a>(
        &'a self,
        agent_id: &'a str,
        event: &'a PushEvent,
    ) -> Pin<Box<dyn Future<Output = PushReport> + Send + 'a>>;
}

/// A shared push port (`None` in a function: pushes are off).
pub type SharedPush = Arc<dyn Push>;

impl<S: ConnectionStore + 'static, P: ConnectionPoster + 'static> Push for Pusher<S, P> {
    fn push_to<'a>(
        &'a self,
        agent_id: &'a str,
        event: &'a PushEvent,
    ) -> Pin<Box<dyn Future<Output = PushReport> + Send + 'a>> {
        Box::pin(self.push(agent_id, event))
    }
}

/// The push port of a function's init: [`AwsPusher::from_env`], shared.
pub fn shared_from_env(sdk: &aws_config::SdkConfig, table: DynamoTable) -> Option<SharedPush> {
    AwsPusher::from_env(sdk, table).map(|p| Arc::new(p) as SharedPush)
}

/// Pushes `event` to `agent_id` when pushes are on.
pub async fn push_opt(port: Option<&SharedPush>, agent_id: &str, event: PushEvent) {
    if let Some(p) = port {
        p.push_to(agent_id, &event).await;
    }
}

/// A push port that records what it was asked to push (unit tests of the functions).
#[derive(Debug, Default)]
pub struct RecordedPushes(pub Mutex<Vec<(String, PushEvent)>>);

impl RecordedPushes {
    /// What was pushed, as (agent, type, conversation).
    pub fn seen(&self) -> Vec<(String, super::PushType, String)> {
        self.0
            .lock()
            .map(|v| {
                v.iter()
                    .map(|(a, e)| (a.clone(), e.kind, e.conversation_id.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Push for RecordedPushes {
    fn push_to<'a>(
        &'a self,
        agent_id: &'a str,
        event: &'a PushEvent,
    ) -> Pin<Box<dyn Future<Output = PushReport> + Send + 'a>> {
        if let Ok(mut v) = self.0.lock() {
            v.push((agent_id.to_owned(), event.clone()));
        }
        Box::pin(std::future::ready(PushReport {
            delivered: 1,
            ..PushReport::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::PushType;
    use crate::store::connections::{Connection, MemoryConnections as Memory};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Answers per connection id; records what it was sent.
    #[derive(Default)]
    struct Poster {
        answers: HashMap<&'static str, PostError>,
        sent: Mutex<Vec<(String, String)>>,
    }

    impl ConnectionPoster for Poster {
        async fn post(&self, id: &str, data: &[u8]) -> Result<(), PostError> {
            if let Some(e) = self.answers.get(id) {
                return Err(e.clone());
            }
            let text = String::from_utf8_lossy(data).into_owned();
            self.sent.lock().unwrap().push((id.to_owned(), text));
            Ok(())
        }
    }

    const NOW: i64 = 1_700_000_000;

    fn store(conns: &[(&str, &str)]) -> Memory {
        let m = Memory::default();
        for (id, agent) in conns {
            m.0.lock()
                .unwrap()
                .push(Connection::new(id, agent, NOW * 1000));
        }
        m
    }

    fn event() -> PushEvent {
        PushEvent::conversation(PushType::ConversationAssigned, "c1", NOW * 1000)
    }

    #[tokio::test]
    async fn a_push_reaches_every_connection_of_the_agent_and_no_other() {
        let pusher = Pusher::new(
            store(&[("a1", "alice"), ("a2", "alice"), ("b1", "bruno")]),
            Poster::default(),
            Clock::at_unix(NOW),
        );
        let r = pusher.push("alice", &event()).await;
        assert_eq!(
            r,
            PushReport {
                delivered: 2,
                gone: 0,
                failed: 0
            }
        );
        let sent = pusher.poster.sent.lock().unwrap().clone();
        let ids: Vec<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a1", "a2"]);
        assert_eq!(sent[0].1, event().to_frame().unwrap());
    }

    #[tokio::test]
    async fn a_gone_connection_is_removed_and_a_failed_one_kept() {
        let poster = Poster {
            answers: HashMap::from([
                ("a1", PostError::Gone),
                (
                    "a2",
                    PostError::Failed {
                        retryable: true,
                        reason: "throttled".into(),
                    },
                ),
            ]),
            ..Poster::default()
        };
        let pusher = Pusher::new(
            store(&[("a1", "alice"), ("a2", "alice")]),
            poster,
            Clock::at_unix(NOW),
        );
        let r = pusher.push("alice", &event()).await;
        assert_eq!(
            r,
            PushReport {
                delivered: 0,
                gone: 1,
                failed: 1
            }
        );
        assert_eq!(pusher.store.ids(), ["a2"]);
    }

    #[tokio::test]
    async fn expired_connections_are_not_posted_to() {
        let pusher = Pusher::new(
            store(&[("a1", "alice")]),
            Poster::default(),
            Clock::at_unix(NOW + crate::store::connections::TTL_SECS),
        );
        assert_eq!(pusher.push("alice", &event()).await, PushReport::default());
    }
}
