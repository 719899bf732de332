//! reply-sender: consumes the outbound FIFO queue and delivers each [`OutboundMessage`] through
//! the Graph API, in per-contact order, once.
//!
//! Per message: skip it if its send record exists (a redelivery of a message already sent);
//! render it (WhatsApp's limits; a violation is a permanent failure); POST it; record the send
//! record and the `OUT#{wamid}` item in one transaction. Meta's errors decide the rest:
//! - retryable (throttling, 5xx, network) and auth (190, after one token re-read): the batch stops
//!   here, this message and all later ones go back to the queue, and their visibility timeout is
//!   set to an exponential back-off with jitter (the queue's redrive policy moves a message that
//!   keeps failing to the DLQ, which has an alarm);
//! - 131047 (24-hour window closed, also detected before sending from `last_inbound_at`): the
//!   configured re-engagement template is sent instead, else the failure is recorded;
//! - 131062 and other permanent errors: recorded on the conversation in the delivery log, logged
//!   with a fixed message a metric filter counts, not retried.
//! - a batch stops taking new messages once `PRECHAT_BATCH_BUDGET_MS` of the invocation is spent
//!   (default 20 s, under the function's 30 s timeout minus one Graph API timeout); the rest go
//!   back to the queue with no delay, so a slow Graph API never times the function out mid-send.
//! - a body that is not an `OutboundMessage` (a bug upstream) or a corrupt send record is parked
//!   in the outbound DLQ at once (the shared policy of `entrypoints::sqs`), for a human to look
//!   at; a failure of one contact holds back only that contact's later messages.
//!
//! Exactly once, as far as the API allows: the send record is written after Meta's 200. The one
//! unavoidable window: if the process dies after Meta accepted the message and before the
//! record is written (or the HTTP call times out although Meta did accept it), the redelivered
//! message is sent a second time. The Graph API has no idempotency key, so this window cannot be
//! closed; writing the record first would turn it into a window for losing the message instead.
//! If only DynamoDB fails after the send (three attempts), the message is reported done, not
//! resent: its records are missing, which is logged as an error.
//!
//! Web chat ([`crate::webchat`], business number `web`): a message to a visitor never goes to
//! the Graph API. Its text is pushed as `message.created` with its entry
//! ([`crate::webchat::outbound::visitor_entry`]) to the visitor's connections
//! (`visitor:V.{id}`), then recorded like a sent message with the synthetic id `web.{dedup_id}`
//! where the wamid would be (so a redelivery finds the send record and never pushes twice), and
//! its transcript entry is marked `delivered` when a connection took the frame (it stays
//! `sent` when none is open: the visitor reads it from `GET /webchat/conversation` on
//! reconnect). No 24-hour window and no re-engagement template apply; a mark-as-read costs no
//! request at all. Pushes are off while `PRECHAT_WS_MANAGEMENT_URL` is unset (messages are
//! still recorded).
//!
//! Requests per reply (happy path): 1 DynamoDB GetItem (consistent), 1 Graph API POST, 1
//! DynamoDB TransactWriteItems; the message is deleted by the Lambda service, not by us. A closed
//! window with a template costs one more POST; a retry costs one SQS ChangeMessageVisibilityBatch
//! per batch; an auth error one SSM GetParameters.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tracing::Instrument;

use crate::clock::Clock;
use crate::config::{ConfigError, EnvReader};
use crate::entrypoints::sqs::{
    process_fifo_batch, Consumer, Disposition, Handled, Outcome, Processed,
};
use crate::queue::dlq::{DeadLetters, SqsDeadLetters};
use crate::realtime::push::{PushReport, SharedPush};
use crate::realtime::{PushEvent, PushType};
use crate::store::delivery_log::{
    DeliveryFailure, DeliveryLog, DynamoDeliveryLog, SentRecord, SentVia,
};
use crate::store::{DynamoTable, StoreError};
use crate::telemetry::redact;
use crate::webchat;
use crate::whatsapp::graph::{render, render_body};
use crate::whatsapp::graph_client::{GraphApi, GraphClient, GraphSettings, SecretToken};
use crate::whatsapp::graph_error::{ErrorClass, GraphError};
use crate::whatsapp::outbound::{OutboundBody, OutboundMessage};

/// The secret holding the Graph API access token.
pub const ACCESS_TOKEN: &str = "WHATSAPP_ACCESS_TOKEN";
/// Logged (at error level) when the access token keeps failing: the alarm's metric filter
/// matches this exact text.
pub const AUTH_FAILURE_LOG: &str = "GRAPH_AUTH_FAILED";
/// Logged for every message that will never be delivered: counted by a metric filter.
pub const PERMANENT_FAILURE_LOG: &str = "REPLY_DELIVERY_FAILED";
/// Meta's customer-service window.
const WINDOW_SECONDS: i64 = 24 * 3600;
/// SQS's maximum visibility timeout.
const MAX_VISIBILITY_SECONDS: u64 = 43_200;

/// The re-engagement template sent when the 24-hour window has closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReengagementTemplate {
    pub name: String,
    pub language: String,
}

/// Settings of the reply sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    pub table: String,
    /// The queue this function consumes, for `ChangeMessageVisibility`.
    pub outbound_queue_url: String,
    /// Its dead-letter queue, where messages that can never be sent are parked
    /// (`PRECHAT_OUTBOUND_DLQ_URL`).
    pub dead_letter_queue_url: String,
    pub graph: GraphSettings,
    pub reengagement: Option<ReengagementTemplate>,
    /// First retry delay; doubled per receive up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// No message is started after this much of an invocation has passed (the rest go back to
    /// the queue at once), so a batch never runs into the function timeout mid-send.
    pub batch_budget: Duration,
}

impl SenderConfig {
    /// Reads every setting, reporting all problems at once.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let table = env.required("PRECHAT_TABLE");
        let outbound_queue_url = env.required("PRECHAT_OUTBOUND_QUEUE_URL");
        let dead_letter_queue_url = env.required("PRECHAT_OUTBOUND_DLQ_URL");
        let base_url = env
            .optional("PRECHAT_GRAPH_BASE_URL")
            .unwrap_or_else(|| "https://graph.facebook.com".to_owned());
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            env.problem(
                "PRECHAT_GRAPH_BASE_URL must start with https:// (or http:// for local runs)",
            );
        }
        let api_version = env
            .optional("PRECHAT_GRAPH_API_VERSION")
            .unwrap_or_else(|| "v23.0".to_owned());
        let valid_version = api_version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
        if !valid_version {
            env.problem("PRECHAT_GRAPH_API_VERSION must look like v23.0");
        }
        let timeout_ms: u64 = env.parsed_or("PRECHAT_GRAPH_TIMEOUT_MS", 5_000);
        let name = env.optional("PRECHAT_REENGAGEMENT_TEMPLATE");
        let language = env.optional("PRECHAT_REENGAGEMENT_LANGUAGE");
        let reengagement = match (name, language) {
            (Some(name), Some(language)) => Some(ReengagementTemplate { name, language }),
            (Some(name), None) => Some(ReengagementTemplate {
                name,
                language: "en_US".to_owned(),
            }),
            // The template's language alone means nothing (the template defaults it).
            (None, _) => None,
        };
        if let Some(t) = &reengagement {
            // Checked now so a bad template name fails the deployment, not a contact's reply.
            let probe = OutboundBody::Template {
                name: t.name.clone(),
                language: t.language.clone(),
                body_parameters: vec![],
            };
            let who = crate::whatsapp::outbound::Recipient {
                wa_id: Some("1".into()),
                user_id: None,
            };
            if let Err(e) = render_body(&who, &probe) {
                env.problem(format!("PRECHAT_REENGAGEMENT_TEMPLATE/LANGUAGE: {e}"));
            }
        }
        let retry_base: u64 = env.parsed_or("PRECHAT_RETRY_BASE_SECONDS", 2);
        let retry_max: u64 = env.parsed_or("PRECHAT_RETRY_MAX_SECONDS", 300);
        let budget_ms: u64 = env.parsed_or("PRECHAT_BATCH_BUDGET_MS", 20_000);
        if retry_max > MAX_VISIBILITY_SECONDS {
            env.problem(format!(
                "PRECHAT_RETRY_MAX_SECONDS must be at most {MAX_VISIBILITY_SECONDS}"
            ));
        }
        if timeout_ms == 0 {
            env.problem("PRECHAT_GRAPH_TIMEOUT_MS must be positive");
        }
        env.finish()?;
        Ok(SenderConfig {
            table,
            outbound_queue_url,
            dead_letter_queue_url,
            graph: GraphSettings {
                base_url,
                api_version,
                timeout: Duration::from_millis(timeout_ms),
            },
            reengagement,
            retry_base: Duration::from_secs(retry_base),
            retry_max: Duration::from_secs(retry_max.max(retry_base)),
            batch_budget: Duration::from_millis(budget_ms),
        })
    }
}

/// Sets how long returned messages stay invisible (the back-off).
pub trait Visibility: Send + Sync {
    /// `(receipt handle, seconds)` per message.
    fn set(&self, entries: &[(String, i32)]) -> impl Future<Output = Result<(), String>> + Send;
}

/// [`Visibility`] on the SQS queue (`ChangeMessageVisibilityBatch`, 10 per call).
#[derive(Clone, Debug)]
pub struct SqsVisibility {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsVisibility {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsVisibility {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl Visibility for SqsVisibility {
    async fn set(&self, entries: &[(String, i32)]) -> Result<(), String> {
        use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry as Entry;
        for chunk in entries.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (handle, seconds))| {
                    Entry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(handle)
                        .visibility_timeout(*seconds)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
            if let Some(f) = out.failed().first() {
                return Err(format!("{}: {}", f.code(), f.message().unwrap_or("")));
            }
        }
        Ok(())
    }
}

/// Back-off for a message received `receive_count` times: exponential from `base`, capped at
/// `max`, with "equal jitter" (half fixed, half random, `jitter` in `[0, 1)`) so contacts that
/// failed together do not retry together, yet a retry never comes back immediately.
pub fn backoff_seconds(receive_count: u32, base: Duration, max: Duration, jitter: f64) -> i32 {
    let exp = receive_count.saturating_sub(1).min(30);
    let cap = base
        .as_secs()
        .saturating_mul(1u64 << exp)
        .min(max.as_secs())
        .min(MAX_VISIBILITY_SECONDS);
    let half = cap as f64 / 2.0;
    let secs = half + half * jitter.clamp(0.0, 1.0);
    secs.round().min(cap as f64) as i32
}

fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What became of one message (for tests and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent { wamid: Option<String>, via: SentVia },
    AlreadySent,
    Failed { code: String },
}

pub use super::InitError;

/// Why a message is not delivered now; every case is retried (a permanent refusal by Meta is
/// a [`Delivery::Failed`], recorded, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Graph API asks to retry: {0}")]
    Graph(GraphError),
    #[error("the access token is rejected: {0}")]
    Auth(GraphError),
    #[error("invocation time budget spent")]
    OutOfTime,
}

impl Disposition for SendError {
    fn is_retryable(&self) -> bool {
        match self {
            SendError::Store(e) => Disposition::is_retryable(e),
            SendError::Graph(_) | SendError::Auth(_) | SendError::OutOfTime => true,
        }
    }

    fn category(&self) -> &'static str {
        match self {
            SendError::Store(e) => e.category(),
            SendError::Graph(_) => "graph_retryable",
            SendError::Auth(_) => "graph_auth",
            SendError::OutOfTime => OUT_OF_TIME,
        }
    }
}

/// The error category of a message not started because the batch budget was spent.
const OUT_OF_TIME: &str = "out_of_time";

/// The consumer's name in logs and on parked messages.
pub const CONSUMER: &str = "reply-sender";

/// The reply-sender entrypoint.
pub struct ReplySender<
    G = GraphClient<SecretToken<fn(&str) -> Option<String>>>,
    L = DynamoDeliveryLog,
    V = SqsVisibility,
    D = SqsDeadLetters,
> {
    config: SenderConfig,
    graph: G,
    delivery_log: L,
    visibility: V,
    dead_letters: D,
    clock: Clock,
    /// Pushes to web visitors (`None`: pushes off).
    pusher: Option<SharedPush>,
}

impl ReplySender {
    /// Builds the sender from the environment: reads the log key, then the access token once
    /// (through its token source, which reads it again after an auth error).
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let config = SenderConfig::from_lookup(crate::config::process_env)?;
        super::init::load_log_key(sdk).await?;
        let token = SecretToken::from_env(aws_sdk_ssm::Client::new(sdk), ACCESS_TOKEN);
        let graph = GraphClient::new(config.graph.clone(), token).await?;
        let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone());
        let pusher = crate::realtime::push::shared_from_env(sdk, table.clone());
        let delivery_log = DynamoDeliveryLog::new(table);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let visibility = SqsVisibility::new(sqs.clone(), config.outbound_queue_url.clone());
        let dead_letters = SqsDeadLetters::new(sqs, Some(config.dead_letter_queue_url.clone()));
        Ok(
            ReplySender::new(config, graph, delivery_log, visibility, dead_letters)
                .with_pusher(pusher),
        )
    }
}

impl<G: GraphApi, L: DeliveryLog, V: Visibility, D: DeadLetters> ReplySender<G, L, V, D> {
    /// Builds the sender from explicit parts (tests, local stack).
    pub fn new(
        config: SenderConfig,
        graph: G,
        delivery_log: L,
        visibility: V,
        dead_letters: D,
    ) -> Self {
        ReplySender {
            config,
            graph,
            delivery_log,
            visibility,
            dead_letters,
            clock: Clock::system(),
            pusher: None,
        }
    }

    /// Turns pushes to web visitors on (`Some`) or off.
    pub fn with_pusher(mut self, pusher: Option<SharedPush>) -> Self {
        self.pusher = pusher;
        self
    }

    /// Replaces the clock, for tests of the 24-hour window.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn delivery_log(&self) -> &L {
        &self.delivery_log
    }

    /// Handles one SQS batch with the shared disposition policy. A contact whose message failed
    /// gets its failed and held-back messages back after an exponential back-off (from the
    /// failed message's receive count); messages returned only because the batch budget was
    /// spent come back at once. Other contacts are not held back at all.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let receipts: HashMap<String, (Option<String>, u32)> = event
            .records
            .iter()
            .filter_map(|m| {
                let receives = m
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some((m.message_id.clone()?, (m.receipt_handle.clone(), receives)))
            })
            .collect();
        let started = std::time::Instant::now();
        let consumer = Consumer {
            name: CONSUMER,
            dead_letters: &self.dead_letters,
        };
        let processed = process_fifo_batch(event, consumer, |msg: OutboundMessage| {
            let late = started.elapsed() >= self.config.batch_budget;
            async move {
                if late {
                    return Err(SendError::OutOfTime);
                }
                self.handle_message(&msg).await
            }
        })
        .await;
        self.back_off(&processed, &receipts).await;
        processed.response()
    }

    /// Sets the visibility of every returned message: its group's back-off.
    async fn back_off(
        &self,
        processed: &Processed,
        receipts: &HashMap<String, (Option<String>, u32)>,
    ) {
        let mut delays: HashMap<Option<&str>, i32> = HashMap::new();
        let mut entries = Vec::new();
        for o in processed.outcomes.iter().filter(|o| o.outcome.is_failure()) {
            let Some((handle, receives)) = receipts.get(&o.message_id) else {
                continue;
            };
            // The first failure of a group decides the group's delay (held-back ones follow it).
            let secs = *delays.entry(o.group.as_deref()).or_insert_with(|| {
                if o.outcome == Outcome::Retry(OUT_OF_TIME) {
                    // Out of time is no failure of the message: it comes back at once.
                    0
                } else {
                    backoff_seconds(
                        *receives,
                        self.config.retry_base,
                        self.config.retry_max,
                        random_unit(),
                    )
                }
            });
            if let Some(h) = handle {
                entries.push((h.clone(), secs));
            }
        }
        if entries.is_empty() {
            return;
        }
        match self.visibility.set(&entries).await {
            Ok(()) => tracing::info!(messages = entries.len(), "backing off"),
            // The queue's own visibility timeout then applies: a later retry, nothing lost.
            Err(e) => tracing::warn!(error = %e, "could not set the back-off visibility"),
        }
    }

    async fn handle_message(&self, msg: &OutboundMessage) -> Result<Handled, SendError> {
        Ok(match self.deliver(msg).await? {
            Delivery::Sent { .. } => Handled::Done,
            Delivery::AlreadySent => Handled::Skipped("already sent"),
            // Recorded on the conversation and counted (REPLY_DELIVERY_FAILED); a redrive
            // could only be refused again.
            Delivery::Failed { .. } => Handled::Skipped("refused by WhatsApp; recorded"),
        })
    }

    /// Delivers one message. `Err` means: retry later, in order.
    pub async fn deliver(&self, msg: &OutboundMessage) -> Result<Delivery, SendError> {
        let contact = msg.recipient.key().map(|k| redact(k.as_str()));
        let span = tracing::info_span!(
            "deliver",
            dedup_id = %msg.dedup_id,
            contact = ?contact,
            kind = kind(&msg.body)
        );
        self.deliver_in_span(msg).instrument(span).await
    }

    async fn deliver_in_span(&self, msg: &OutboundMessage) -> Result<Delivery, SendError> {
        if webchat::is_web(&msg.phone_number_id) {
            return self.deliver_web(msg).await;
        }
        if self
            .delivery_log
            .is_sent(&msg.dedup_id, self.clock.unix())
            .await?
        {
            tracing::info!("already sent; redelivery skipped");
            return Ok(Delivery::AlreadySent);
        }
        let rendered = match render(msg) {
            Ok(r) => r,
            Err(e) => return self.fail(msg, "render", "invalid", &e.to_string()).await,
        };

        let now = self.clock.unix();
        let window_closed = !matches!(
            msg.body,
            OutboundBody::Template { .. } | OutboundBody::MarkRead { .. }
        ) && msg
            .last_inbound_at
            .is_some_and(|t| now.saturating_sub(t) > WINDOW_SECONDS);
        if window_closed {
            tracing::info!("24-hour window closed before sending");
            return self.window_closed(msg, None).await;
        }

        match self
            .graph
            .post_message(&msg.phone_number_id, &rendered.body)
            .await
        {
            Ok(accepted) => {
                if rendered.creates_message && accepted.wamid.is_none() {
                    tracing::warn!("Meta accepted the message without returning its id");
                }
                let wamid = accepted.wamid.filter(|_| rendered.creates_message);
                self.record(msg, wamid, SentVia::Message).await
            }
            Err(e) => self.on_error(msg, e).await,
        }
    }

    /// A message to a web visitor (see the module doc): pushed, recorded, marked delivered.
    async fn deliver_web(&self, msg: &OutboundMessage) -> Result<Delivery, SendError> {
        if matches!(msg.body, OutboundBody::MarkRead { .. }) {
            // The widget has no read receipts to show: nothing to do, nothing to record.
            tracing::info!("mark-as-read for a web visitor: nothing to send");
            return Ok(Delivery::Sent {
                wamid: None,
                via: SentVia::Message,
            });
        }
        if self
            .delivery_log
            .is_sent(&msg.dedup_id, self.clock.unix())
            .await?
        {
            tracing::info!("already sent; redelivery skipped");
            return Ok(Delivery::AlreadySent);
        }
        let visitor = msg
            .recipient
            .key()
            .filter(|k| k.as_str().starts_with(webchat::VISITOR_PREFIX));
        let Some(visitor) = visitor else {
            return self
                .fail(msg, "render", "invalid", "a web message names no visitor")
                .await;
        };
        let message_id = webchat::outbound::web_message_id(&msg.dedup_id);
        let now = self.clock.unix();
        let at_ms = now.saturating_mul(1000);
        let conversation = msg
            .transcript
            .as_ref()
            .map(|r| r.conversation_id.clone())
            .or_else(|| msg.conversation_id.clone())
            .unwrap_or_default();
        let report = match (
            &self.pusher,
            webchat::outbound::visitor_entry(msg, &message_id, at_ms),
        ) {
            (Some(p), Some(entry)) => {
                let event = PushEvent::entry(PushType::MessageCreated, conversation, entry, at_ms);
                p.push_to(&webchat::visitor_principal(visitor.as_str()), &event)
                    .await
            }
            _ => PushReport::default(),
        };
        let delivery = self
            .record(msg, Some(message_id.clone()), SentVia::Message)
            .await?;
        if report.delivered > 0 {
            // The visitor's browser has it: the entry moves on to `delivered` (as a status
            // webhook would move it). The message is out, so a failure here is only logged.
            let delivered = crate::whatsapp::event::DeliveryStatus::Delivered;
            if let Err(e) = self
                .delivery_log
                .record_status(&message_id, delivered, now)
                .await
            {
                tracing::warn!(error = %e, "web message pushed, but not marked delivered");
            }
        } else {
            tracing::info!("no visitor connection took the message; it waits in the transcript");
        }
        Ok(delivery)
    }

    async fn on_error(&self, msg: &OutboundMessage, e: GraphError) -> Result<Delivery, SendError> {
        match e.class {
            ErrorClass::WindowClosed => self.window_closed(msg, Some(e)).await,
            _ => self.on_other_error(msg, e).await,
        }
    }

    /// Every error but a first 131047 (which may still be answered with the template).
    async fn on_other_error(
        &self,
        msg: &OutboundMessage,
        e: GraphError,
    ) -> Result<Delivery, SendError> {
        let class = match e.class {
            ErrorClass::Retryable => {
                tracing::warn!(code = %e.label(), fbtrace_id = ?e.fbtrace_id, "Graph API asks to retry");
                return Err(SendError::Graph(e));
            }
            ErrorClass::Auth => {
                tracing::error!(code = %e.label(), fbtrace_id = ?e.fbtrace_id,
                    "{AUTH_FAILURE_LOG}: the WhatsApp access token is rejected even after re-reading it");
                return Err(SendError::Auth(e));
            }
            ErrorClass::WindowClosed => "window_closed",
            ErrorClass::BsuidUnsupported => "bsuid_unsupported",
            ErrorClass::Permanent => "permanent",
        };
        self.fail(msg, &e.label(), class, &e.message).await
    }

    async fn window_closed(
        &self,
        msg: &OutboundMessage,
        e: Option<GraphError>,
    ) -> Result<Delivery, SendError> {
        let reason = e
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_else(|| "more than 24 hours since the contact last wrote".to_owned());
        let replaceable = !matches!(
            msg.body,
            OutboundBody::Template { .. } | OutboundBody::MarkRead { .. }
        );
        let template = match (&self.config.reengagement, replaceable) {
            (Some(t), true) => t,
            _ => return self.fail(msg, "131047", "window_closed", &reason).await,
        };
        let body = OutboundBody::Template {
            name: template.name.clone(),
            language: template.language.clone(),
            body_parameters: vec![],
        };
        let rendered = match render_body(&msg.recipient, &body) {
            Ok(r) => r,
            Err(e) => return self.fail(msg, "render", "invalid", &e.to_string()).await,
        };
        tracing::info!(template = %template.name, "window closed; sending the re-engagement template instead");
        match self
            .graph
            .post_message(&msg.phone_number_id, &rendered.body)
            .await
        {
            Ok(accepted) => {
                self.record(msg, accepted.wamid, SentVia::ReengagementTemplate)
                    .await
            }
            Err(e) => self.on_other_error(msg, e).await,
        }
    }

    async fn record(
        &self,
        msg: &OutboundMessage,
        wamid: Option<String>,
        via: SentVia,
    ) -> Result<Delivery, SendError> {
        let rec = SentRecord {
            dedup_id: msg.dedup_id.clone(),
            wamid: wamid.clone(),
            conversation_id: msg.conversation_id.clone(),
            contact_key: msg.recipient.key(),
            phone_number_id: msg.phone_number_id.clone(),
            sent_at: self.clock.unix(),
            via,
            transcript: msg.transcript.clone(),
        };
        // The message is out: asking SQS to redeliver it would send it twice, so the record is
        // retried here, and if DynamoDB stays down the message is still reported done.
        let mut last = None;
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            match self.delivery_log.record_sent(&rec).await {
                Ok(true) => {
                    tracing::info!(wamid = ?wamid, via = via.as_str(), "sent");
                    return Ok(Delivery::Sent { wamid, via });
                }
                Ok(false) => {
                    tracing::warn!(wamid = ?wamid, "sent, but a send record already existed");
                    return Ok(Delivery::Sent { wamid, via });
                }
                Err(e) if e.is_retryable() => last = Some(e),
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        tracing::error!(wamid = ?wamid, error = ?last.map(|e| e.to_string()),
            "sent, but the send record could not be written: a redelivery would send it again");
        Ok(Delivery::Sent { wamid, via })
    }

    async fn fail(
        &self,
        msg: &OutboundMessage,
        code: &str,
        class: &str,
        reason: &str,
    ) -> Result<Delivery, SendError> {
        // The reason (Meta's message, which may echo a parameter value) goes to the failure
        // record, not to the log.
        tracing::error!(
            error_code = code,
            error_class = class,
            "{PERMANENT_FAILURE_LOG}: reply will not be delivered"
        );
        if let Some(conversation_id) = msg.conversation_id.as_deref().filter(|c| !c.is_empty()) {
            // Recorded once: a repeated refusal of the same message finds its record.
            self.delivery_log
                .record_failure(&DeliveryFailure {
                    conversation_id: conversation_id.to_owned(),
                    dedup_id: Some(msg.dedup_id.clone()),
                    wamid: None,
                    error_code: code.to_owned(),
                    error_class: class.to_owned(),
                    reason: reason.to_owned(),
                    kind: Some(kind(&msg.body).to_owned()),
                    failed_at: self.clock.unix(),
                    transcript: msg.transcript.clone(),
                })
                .await?;
        }
        Ok(Delivery::Failed {
            code: code.to_owned(),
        })
    }
}

fn kind(body: &OutboundBody) -> &'static str {
    match body {
        OutboundBody::Text { .. } => "text",
        OutboundBody::Buttons { .. } => "buttons",
        OutboundBody::List { .. } => "list",
        OutboundBody::Template { .. } => "template",
        OutboundBody::MarkRead { .. } => "mark_read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::dlq::MemoryDeadLetters;
    use crate::queue::FifoContract;
    use crate::store::delivery_log::MemoryDeliveryLog;
    use crate::whatsapp::graph_client::Accepted;
    use crate::whatsapp::graph_error::classify;
    use crate::whatsapp::outbound::{Recipient, ReplyButton};
    use aws_lambda_events::event::sqs::SqsMessage;
    use serde_json::Value;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Answers posts from a script (then 200 with a fresh wamid) and records every body.
    #[derive(Default)]
    struct ScriptedGraph {
        script: Mutex<VecDeque<Result<Accepted, GraphError>>>,
        posted: Mutex<Vec<Value>>,
    }

    impl ScriptedGraph {
        fn with(script: Vec<Result<Accepted, GraphError>>) -> Self {
            ScriptedGraph {
                script: Mutex::new(script.into()),
                posted: Mutex::default(),
            }
        }
        fn posted(&self) -> Vec<Value> {
            self.posted.lock().unwrap().clone()
        }
    }

    impl GraphApi for ScriptedGraph {
        async fn post_message(&self, _: &str, body: &Value) -> Result<Accepted, GraphError> {
            let mut posted = self.posted.lock().unwrap();
            posted.push(body.clone());
            let n = posted.len();
            self.script.lock().unwrap().pop_front().unwrap_or_else(|| {
                Ok(Accepted {
                    wamid: Some(format!("wamid.{n}")),
                })
            })
        }
    }

    #[derive(Default)]
    struct RecordedVisibility(Mutex<Vec<Vec<(String, i32)>>>);

    impl Visibility for RecordedVisibility {
        async fn set(&self, entries: &[(String, i32)]) -> Result<(), String> {
            self.0.lock().unwrap().push(entries.to_vec());
            Ok(())
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn meta(code: i64) -> GraphError {
        let body = serde_json::json!({"error": {"message": format!("(#{code}) m"), "type": "OAuthException",
            "code": code, "error_data": {"messaging_product": "whatsapp", "details": "d"}, "fbtrace_id": "F"}});
        classify(400, &body.to_string())
    }

    fn config(template: bool) -> SenderConfig {
        let mut pairs = vec![
            ("PRECHAT_TABLE", "t"),
            ("PRECHAT_OUTBOUND_QUEUE_URL", "http://q"),
            ("PRECHAT_OUTBOUND_DLQ_URL", "http://dlq"),
        ];
        if template {
            pairs.push(("PRECHAT_REENGAGEMENT_TEMPLATE", "reopen_chat"));
            pairs.push(("PRECHAT_REENGAGEMENT_LANGUAGE", "es"));
        }
        SenderConfig::from_lookup(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap()
    }

    fn sender(
        template: bool,
        script: Vec<Result<Accepted, GraphError>>,
    ) -> ReplySender<ScriptedGraph, MemoryDeliveryLog, RecordedVisibility, MemoryDeadLetters> {
        ReplySender::new(
            config(template),
            ScriptedGraph::with(script),
            MemoryDeliveryLog::default(),
            RecordedVisibility::default(),
            MemoryDeadLetters::default(),
        )
        .with_clock(Clock::at_unix(NOW))
    }

    fn text(dedup: &str) -> OutboundMessage {
        OutboundMessage {
            phone_number_id: "106540352242922".into(),
            recipient: Recipient {
                wa_id: None,
                user_id: Some("US.13491208655302741918".into()),
            },
            dedup_id: dedup.into(),
            conversation_id: Some("conv1".into()),
            last_inbound_at: Some(NOW - 60),
            body: OutboundBody::Text {
                body: format!("hello {dedup}"),
                preview_url: false,
            },
            transcript: None,
        }
    }

    fn event(msgs: &[OutboundMessage]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = msgs
            .iter()
            .map(|m| {
                let mut r = SqsMessage::default();
                r.message_id = Some(format!("id-{}", m.dedup_id));
                r.receipt_handle = Some(format!("rh-{}", m.dedup_id));
                r.body = Some(serde_json::to_string(m).unwrap());
                r.attributes
                    .insert("ApproximateReceiveCount".into(), "3".into());
                r.attributes.insert("MessageGroupId".into(), m.group_id());
                r
            })
            .collect();
        e
    }

    #[test]
    fn config_defaults_and_problems() {
        let c = config(false);
        assert_eq!(c.graph.base_url, "https://graph.facebook.com");
        assert_eq!(c.graph.api_version, "v23.0");
        assert_eq!(c.graph.timeout, Duration::from_secs(5));
        assert_eq!(c.reengagement, None);
        assert_eq!((c.retry_base.as_secs(), c.retry_max.as_secs()), (2, 300));
        assert_eq!(c.batch_budget, Duration::from_secs(20));
        assert_eq!(
            config(true).reengagement,
            Some(ReengagementTemplate {
                name: "reopen_chat".into(),
                language: "es".into()
            })
        );
        let bad = [
            ("PRECHAT_GRAPH_API_VERSION", "23"),
            ("PRECHAT_REENGAGEMENT_TEMPLATE", "Bad Name"),
            ("PRECHAT_RETRY_BASE_SECONDS", "x"),
        ];
        let err = SenderConfig::from_lookup(|k| {
            bad.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "PRECHAT_TABLE",
            "PRECHAT_OUTBOUND_QUEUE_URL",
            "PRECHAT_OUTBOUND_DLQ_URL",
            "PRECHAT_GRAPH_API_VERSION",
            "PRECHAT_REENGAGEMENT_TEMPLATE",
            "PRECHAT_RETRY_BASE_SECONDS",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let (b, m) = (Duration::from_secs(2), Duration::from_secs(300));
        assert_eq!(backoff_seconds(1, b, m, 0.0), 1);
        assert_eq!(backoff_seconds(1, b, m, 0.999), 2);
        assert_eq!(backoff_seconds(4, b, m, 0.0), 8);
        assert_eq!(backoff_seconds(4, b, m, 0.999), 16);
        assert_eq!(backoff_seconds(100, b, m, 0.999), 300);
        assert_eq!(backoff_seconds(0, Duration::ZERO, m, 0.5), 0);
    }

    proptest::proptest! {
        #[test]
        fn backoff_stays_between_half_and_full_cap(n in 0u32..100, base in 0u64..100, max in 0u64..50_000, j in 0.0f64..1.0) {
            let s = backoff_seconds(n, Duration::from_secs(base), Duration::from_secs(max), j) as u64;
            let cap = base.saturating_mul(1u64 << n.saturating_sub(1).min(30)).min(max).min(MAX_VISIBILITY_SECONDS);
            proptest::prop_assert!(s <= cap && s * 2 + 1 >= cap, "{s} vs {cap}");
        }
    }

    #[tokio::test]
    async fn sends_and_records_once() {
        let s = sender(false, vec![]);
        let r = s.deliver(&text("d1")).await.unwrap();
        assert_eq!(
            r,
            Delivery::Sent {
                wamid: Some("wamid.1".into()),
                via: SentVia::Message
            }
        );
        assert_eq!(s.graph.posted()[0]["recipient"], "US.13491208655302741918");
        let rec = &s.delivery_log.sent()[0];
        assert_eq!(rec.dedup_id, "d1");
        assert_eq!(rec.contact_key, Some("US.13491208655302741918".into()));
        assert_eq!(rec.sent_at, NOW);
        // Redelivery: nothing posted again.
        assert_eq!(s.deliver(&text("d1")).await.unwrap(), Delivery::AlreadySent);
        assert_eq!(s.graph.posted().len(), 1);
    }

    fn web(dedup: &str) -> OutboundMessage {
        let mut m = text(dedup);
        m.phone_number_id = "web".into();
        m.recipient.user_id = Some("V.abcdefghijklmnop".into());
        // Two days since the visitor wrote: no window applies to web.
        m.last_inbound_at = Some(NOW - 2 * WINDOW_SECONDS);
        m.transcript = Some(crate::transcript::TranscriptRef {
            conversation_id: "conv1".into(),
            entry_id: "T#0000000000001#a1".into(),
            agent_id: Some("alice".into()),
        });
        m
    }

    #[tokio::test]
    async fn a_web_message_is_pushed_to_the_visitor_recorded_and_delivered_once() {
        let pushes = std::sync::Arc::new(crate::realtime::push::RecordedPushes::default());
        let s = sender(true, vec![]).with_pusher(Some(pushes.clone()));
        let r = s.deliver(&web("d1")).await.unwrap();
        assert_eq!(
            r,
            Delivery::Sent {
                wamid: Some("web.d1".into()),
                via: SentVia::Message
            }
        );
        assert!(s.graph.posted().is_empty(), "never the Graph API");
        let pushed = pushes.0.lock().unwrap().clone();
        assert_eq!(pushed.len(), 1);
        let (to, event) = &pushed[0];
        assert_eq!(to, "visitor:V.abcdefghijklmnop");
        assert_eq!(
            (event.kind, event.conversation_id.as_str(), event.at),
            (PushType::MessageCreated, "conv1", NOW * 1000)
        );
        let entry = event.entry.clone().unwrap();
        assert_eq!(
            (&entry["id"], &entry["text"], &entry["status"]),
            (
                &Value::from("T#0000000000001#a1"),
                &Value::from("hello d1"),
                &Value::from("delivered")
            )
        );
        let rec = &s.delivery_log.sent()[0];
        assert_eq!(
            (rec.wamid.as_deref(), rec.phone_number_id.as_str()),
            (Some("web.d1"), "web")
        );
        assert_eq!(
            s.delivery_log.statuses.lock().unwrap().get("web.d1"),
            Some(&crate::whatsapp::event::DeliveryStatus::Delivered)
        );
        // A redelivery pushes nothing.
        assert_eq!(s.deliver(&web("d1")).await.unwrap(), Delivery::AlreadySent);
        assert_eq!(pushes.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_web_message_without_a_connection_is_recorded_but_not_delivered() {
        let s = sender(false, vec![]);
        let r = s.deliver(&web("d1")).await.unwrap();
        assert!(matches!(r, Delivery::Sent { .. }), "{r:?}");
        assert_eq!(s.delivery_log.sent().len(), 1);
        assert!(s.delivery_log.statuses.lock().unwrap().is_empty());
        assert!(s.delivery_log.failures().is_empty(), "no window closed");
    }

    #[tokio::test]
    async fn a_web_mark_as_read_costs_nothing_and_a_web_message_needs_a_visitor() {
        let pushes = std::sync::Arc::new(crate::realtime::push::RecordedPushes::default());
        let s = sender(false, vec![]).with_pusher(Some(pushes.clone()));
        let mut read = web("r1");
        read.body = OutboundBody::MarkRead {
            message_id: "web.x.1".into(),
            typing_indicator: true,
        };
        assert!(matches!(
            s.deliver(&read).await.unwrap(),
            Delivery::Sent { wamid: None, .. }
        ));
        s.delivery_log
            .unavailable
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(s.deliver(&read).await.is_ok(), "no store call either");
        s.delivery_log
            .unavailable
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let mut whatsapp_contact = web("d2");
        whatsapp_contact.recipient.user_id = Some("US.1".into());
        assert_eq!(
            s.deliver(&whatsapp_contact).await.unwrap(),
            Delivery::Failed {
                code: "render".into()
            }
        );
        assert!(pushes.0.lock().unwrap().is_empty() && s.graph.posted().is_empty());
        assert!(s.delivery_log.sent().is_empty());
    }

    #[tokio::test]
    async fn render_errors_are_recorded_without_a_request() {
        let s = sender(false, vec![]);
        let mut m = text("d1");
        m.body = OutboundBody::Buttons {
            body: "b".into(),
            header: None,
            footer: None,
            buttons: (0..4)
                .map(|i| ReplyButton {
                    id: format!("{i}"),
                    title: format!("{i}"),
                })
                .collect(),
        };
        assert_eq!(
            s.deliver(&m).await.unwrap(),
            Delivery::Failed {
                code: "render".into()
            }
        );
        assert!(s.graph.posted().is_empty());
        let f = &s.delivery_log.failures()[0];
        assert_eq!(
            (
                f.conversation_id.as_str(),
                f.error_class.as_str(),
                f.kind.as_deref()
            ),
            ("conv1", "invalid", Some("buttons"))
        );
        assert!(f.reason.contains("1 to 3"), "{}", f.reason);
    }

    #[tokio::test]
    async fn closed_window_sends_template_or_records() {
        // Known from last_inbound_at: no doomed request.
        let mut m = text("d1");
        m.last_inbound_at = Some(NOW - WINDOW_SECONDS - 1);
        let s = sender(true, vec![]);
        assert_eq!(
            s.deliver(&m).await.unwrap(),
            Delivery::Sent {
                wamid: Some("wamid.1".into()),
                via: SentVia::ReengagementTemplate
            }
        );
        assert_eq!(s.graph.posted()[0]["template"]["name"], "reopen_chat");
        assert_eq!(s.graph.posted()[0]["template"]["language"]["code"], "es");
        let s = sender(false, vec![]);
        assert_eq!(
            s.deliver(&m).await.unwrap(),
            Delivery::Failed {
                code: "131047".into()
            }
        );
        assert!(s.graph.posted().is_empty());
        // Told by Meta.
        let s = sender(true, vec![Err(meta(131047))]);
        assert_eq!(
            s.deliver(&text("d2")).await.unwrap(),
            Delivery::Sent {
                wamid: Some("wamid.2".into()),
                via: SentVia::ReengagementTemplate
            }
        );
        assert_eq!(s.graph.posted()[1]["type"], "template");
        let s = sender(false, vec![Err(meta(131047))]);
        assert_eq!(
            s.deliver(&text("d2")).await.unwrap(),
            Delivery::Failed {
                code: "131047".into()
            }
        );
        assert_eq!(s.delivery_log.failures()[0].error_class, "window_closed");
    }

    #[tokio::test]
    async fn permanent_bsuid_retry_and_auth_paths() {
        let s = sender(true, vec![Err(meta(131062))]);
        assert_eq!(
            s.deliver(&text("d1")).await.unwrap(),
            Delivery::Failed {
                code: "131062".into()
            }
        );
        assert_eq!(
            s.delivery_log.failures()[0].error_class,
            "bsuid_unsupported"
        );
        for code in [131026, 100, 131051] {
            let s = sender(true, vec![Err(meta(code))]);
            assert_eq!(
                s.deliver(&text("d1")).await.unwrap(),
                Delivery::Failed {
                    code: code.to_string()
                }
            );
            assert_eq!(s.delivery_log.failures()[0].error_class, "permanent");
        }
        for code in [130429, 131056, 131016, 4, 80007, 190] {
            let s = sender(true, vec![Err(meta(code))]);
            assert!(s.deliver(&text("d1")).await.is_err(), "{code}");
            assert!(s.delivery_log.sent().is_empty() && s.delivery_log.failures().is_empty());
        }
        let s = sender(true, vec![Err(GraphError::transport("connection reset"))]);
        assert!(s.deliver(&text("d1")).await.is_err());
        // A store outage before sending is retried, and nothing is sent.
        let s = sender(true, vec![]);
        s.delivery_log
            .unavailable
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(s.deliver(&text("d1")).await.is_err());
        assert!(s.graph.posted().is_empty());
    }

    #[tokio::test]
    async fn a_retryable_failure_backs_off_only_its_contact_and_others_are_sent() {
        let s = sender(
            false,
            vec![
                Ok(Accepted {
                    wamid: Some("w1".into()),
                }),
                Err(meta(130429)),
            ],
        );
        let mut bad = text("bad");
        bad.body = OutboundBody::Text {
            body: String::new(),
            preview_url: false,
        };
        let mut other_contact = text("d");
        other_contact.recipient.user_id = Some("US.99".into());
        let msgs = [bad, text("a"), text("b"), other_contact, text("c")];
        let r = s.handle(event(&msgs)).await;
        let failed: Vec<_> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["id-b", "id-c"], "the other contact's d was sent");
        assert_eq!(s.graph.posted().len(), 3, "a, b (throttled), d");
        assert_eq!(s.graph.posted()[2]["recipient"], "US.99");
        assert_eq!(s.delivery_log.sent().len(), 2);
        assert_eq!(
            s.delivery_log.failures().len(),
            1,
            "the empty text was recorded and skipped"
        );
        let calls = s.visibility.0.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        let v = &calls[0];
        let handles: Vec<&str> = v.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(handles, ["rh-b", "rh-c"]);
        // Third receive: cap 8 s, equal jitter keeps it in 4..=8, for the failed contact only.
        assert!((4..=8).contains(&v[0].1), "{}", v[0].1);
        assert_eq!(v[1].1, v[0].1);
    }

    #[tokio::test]
    async fn spent_budget_returns_the_rest_at_once() {
        let mut s = sender(false, vec![]);
        s.config.batch_budget = Duration::ZERO;
        let r = s.handle(event(&[text("a"), text("b")])).await;
        assert_eq!(r.batch_item_failures.len(), 2);
        assert!(s.graph.posted().is_empty());
        let calls = s.visibility.0.lock().unwrap().clone();
        assert_eq!(calls[0], [("rh-a".to_owned(), 0), ("rh-b".to_owned(), 0)]);
    }

    #[tokio::test]
    async fn an_unreadable_body_is_parked_at_once_and_its_contact_goes_on() {
        let s = sender(false, vec![]);
        let mut ev = event(&[text("a")]);
        let mut r = SqsMessage::default();
        r.message_id = Some("x".into());
        r.receipt_handle = Some("rh-x".into());
        r.body = Some(r#"{"phone_number_id":"1"}"#.into());
        r.attributes
            .insert("MessageGroupId".into(), text("a").group_id());
        ev.records.insert(0, r);
        let failed = s.handle(ev).await.batch_item_failures;
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(s.graph.posted().len(), 1, "the next message is sent");
        let parked = s.dead_letters.parked();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].body, r#"{"phone_number_id":"1"}"#);
        assert_eq!(parked[0].group_id, text("a").group_id());
        assert_eq!(
            (parked[0].error, parked[0].consumer),
            ("unreadable_body", CONSUMER)
        );
        assert!(s.visibility.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unparkable_body_is_retried_with_its_contact_held_back() {
        let s = sender(false, vec![]);
        s.dead_letters
            .unavailable
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut ev = event(&[text("a")]);
        ev.records[0].body = Some("{".into());
        let failed = s.handle(ev).await.batch_item_failures;
        assert_eq!(failed.len(), 1);
        assert!(s.graph.posted().is_empty());
        assert_eq!(s.visibility.0.lock().unwrap()[0].len(), 1);
    }
}

#[cfg(test)]
mod sample_event {
    use super::*;
    use crate::queue::FifoContract;

    #[test]
    fn sample_event_is_a_valid_fifo_batch_of_outbound_messages() {
        let text = include_str!("../../../events/reply-sender.json");
        let event: SqsEvent = serde_json::from_str(text).unwrap();
        assert_eq!(event.records.len(), 2);
        for r in event.records {
            let m: OutboundMessage = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
            assert_eq!(r.attributes.get("MessageGroupId"), Some(&m.group_id()));
            assert_eq!(
                r.attributes.get("MessageDeduplicationId"),
                Some(&m.dedup_id)
            );
            render(&m).unwrap();
        }
    }
}
