//! survey-engine: consumes the inbound FIFO queue (one [`InboundEvent`] per message), runs the
//! pure survey engine and persists and sends its effects exactly once.
//!
//! Per inbound message: one consistent read of the contact item (which holds the current
//! conversation), the pure [`engine::on_message`], one conditional transaction that writes the
//! state and the message's `APPLIED#` record (its proof of application and its effects), then
//! one `SendMessageBatch` of the mark-as-read and the replies to the outbound queue (and, when
//! the survey ends, one of the job to the assignment queue). State is written before the
//! effects are sent. When the transaction fails because the message was applied before (a
//! redelivery, a Meta retry, a DLQ redrive: within 19 days, however many messages came in
//! between), the engine reads that record and sends exactly its effects again under the same
//! dedup ids (SQS and the reply-sender drop what already went out), so no committed reply or
//! assignment job is ever lost, even after later messages of the contact were applied.
//! Order per contact comes from the FIFO group, identity from the message id: a message is
//! never refused for being old.
//!
//! A web visitor's submitted form ([`InboundEvent::WebForm`]) takes the same path
//! ([`engine::on_web_form`], the submission id in place of the message id): the survey's
//! completion in one commit, nothing while the visitor has an open conversation.
//!
//! The transcript: the entries the engine decided (`Effects::transcript`) are written in the
//! same commit transaction as the state (no extra request, and a message's lines exist exactly
//! when it was applied), expiring after `PRECHAT_TRANSCRIPT_RETENTION_DAYS`; the statuses of
//! our messages reach their entries through the delivery log.
//!
//! Statuses go to the delivery log ([`DeliveryLog`]): the delivery state of our messages
//! (`OUT#{wamid}`) and, for a failed one, one failure record on its conversation;
//! `user_id_update` moves a contact to its new BSUID.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::clock::Clock;
use crate::config::{ConfigError, EnvReader};
use crate::entrypoints::sqs::{process_fifo_batch, Consumer, Disposition, Handled};
use crate::queue::dlq::{DeadLetters, SqsDeadLetters};
use crate::queue::{MessageQueue, QueueMessage, SqsQueue};
use crate::realtime::push::{push_opt, SharedPush};
use crate::realtime::{PushEvent, PushType};
use crate::store::conversation_store::{
    Applied, ContactRecord, ConversationStore, DueReminder, DynamoConversationStore,
};
use crate::store::delivery_log::{DeliveryFailure, DeliveryLog, DynamoDeliveryLog, SentMessage};
use crate::store::survey_store::{DynamoSurveyStore, SurveyStore};
use crate::store::{DynamoTable, StoreError};
use crate::survey::catalog::{CatalogError, SurveyCatalog};
use crate::survey::engine::{self, ContactState};
use crate::telemetry::redact;
use crate::whatsapp::event::{
    DeliveryStatus, InboundEvent, InboundMessage, StatusUpdate, UserIdUpdate, WebFormSubmission,
};
use crate::whatsapp::ContactKey;

/// Settings of the survey-engine function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyEngineConfig {
    pub table: String,
    pub outbound_queue_url: String,
    pub assignment_queue_url: String,
    /// Which survey new conversations run (`PRECHAT_SURVEY_ID`, default `default`).
    pub survey_id: String,
    /// How long the latest published version is cached (`PRECHAT_SURVEY_CACHE_SECONDS`,
    /// default 60). Versions themselves are immutable and cached for the life of the process.
    pub survey_cache_seconds: u64,
    /// The inbound queue's dead-letter queue, where permanently failing events are parked
    /// (`PRECHAT_INBOUND_DLQ_URL`; required for survey-engine, unused by survey-timer).
    pub dead_letter_queue_url: Option<String>,
    /// How long transcript entries are kept (`PRECHAT_TRANSCRIPT_RETENTION_DAYS`, default 365).
    pub transcript_retention_days: u32,
}

impl SurveyEngineConfig {
    /// The settings of survey-engine (the inbound queue's consumer).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(lookup, true)
    }

    /// The settings of survey-timer: the same, without a dead-letter queue (it consumes none).
    pub fn timer_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(lookup, false)
    }

    fn read(lookup: impl Fn(&str) -> Option<String>, consumer: bool) -> Result<Self, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let config = SurveyEngineConfig {
            table: env.required("PRECHAT_TABLE"),
            outbound_queue_url: env.required("PRECHAT_OUTBOUND_QUEUE_URL"),
            assignment_queue_url: env.required("PRECHAT_ASSIGNMENT_QUEUE_URL"),
            survey_id: env
                .optional("PRECHAT_SURVEY_ID")
                .unwrap_or_else(|| "default".to_owned()),
            survey_cache_seconds: env.parsed_or("PRECHAT_SURVEY_CACHE_SECONDS", 60),
            dead_letter_queue_url: consumer.then(|| env.required("PRECHAT_INBOUND_DLQ_URL")),
            transcript_retention_days: env.parsed_or(
                "PRECHAT_TRANSCRIPT_RETENTION_DAYS",
                crate::store::transcript::DEFAULT_RETENTION_DAYS,
            ),
        };
        env.finish()?;
        Ok(config)
    }
}

pub use super::InitError;

/// Why one event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    #[error("survey {survey_id} v{version}: {reason}")]
    Survey {
        survey_id: String,
        version: u32,
        reason: String,
    },
    #[error("the contact item changed under us {0} times")]
    Contended(u32),
    /// An event that can never be applied (e.g. a message without a contact id).
    #[error("invalid event: {0}")]
    Invalid(&'static str),
    /// A committed effect that does not serialise (a bug): never queued as an empty body.
    #[error("effect does not serialise: {0}")]
    Encode(String),
}

impl Disposition for EngineError {
    fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => Disposition::is_retryable(e),
            EngineError::Queue(e) => Disposition::is_retryable(e),
            // A published version that is missing or does not parse stays so: parked.
            EngineError::Survey { .. } => false,
            EngineError::Contended(_) => true,
            EngineError::Invalid(_) | EngineError::Encode(_) => false,
        }
    }

    fn category(&self) -> &'static str {
        match self {
            EngineError::Store(e) => e.category(),
            EngineError::Queue(e) => e.category(),
            EngineError::Survey { .. } => "survey_unavailable",
            EngineError::Contended(_) => "contended",
            EngineError::Invalid(_) => "invalid_event",
            EngineError::Encode(_) => "encode",
        }
    }
}

impl From<CatalogError> for EngineError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Store(e) => EngineError::Store(e),
            CatalogError::Unavailable {
                survey_id,
                version,
                reason,
            } => EngineError::Survey {
                survey_id,
                version,
                reason,
            },
        }
    }
}

/// How [`SurveyEngine::commit_and_send`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Committed {
    /// Committed now; the effects were sent.
    Now,
    /// Applied before; its recorded effects were sent again.
    Before,
    /// The contact changed under us: nothing written.
    Changed,
}

/// Due conversations looked at per index shard and sweep; the rest wait for the next minute.
const SWEEP_LIMIT: i32 = 200;

/// What one reminder sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub due: usize,
    pub reminded: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// The survey-engine entrypoint.
pub struct SurveyEngine<
    S = DynamoConversationStore,
    V = DynamoSurveyStore,
    Q = SqsQueue,
    D = SqsDeadLetters,
    L = DynamoDeliveryLog,
> {
    store: S,
    deliveries: L,
    surveys: SurveyCatalog<V>,
    outbound: Q,
    assignment: Q,
    dead_letters: D,
    clock: Clock,
    /// Pushes to agents' browsers (`PRECHAT_WS_MANAGEMENT_URL`): delivery ticks of their replies.
    pusher: Option<SharedPush>,
}

/// The consumer's name in logs and on parked messages.
pub const CONSUMER: &str = "survey-engine";

impl SurveyEngine {
    /// survey-engine: reads the configuration from the environment and builds the AWS clients.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let config = SurveyEngineConfig::from_lookup(crate::config::process_env)?;
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let table = DynamoTable::new(dynamo.clone(), config.table.clone());
        Ok(SurveyEngine::from_parts(&config, dynamo, sqs)?
            .with_pusher(crate::realtime::push::shared_from_env(sdk, table)))
    }

    /// survey-timer: as [`from_env`](Self::from_env), without the inbound dead-letter queue.
    pub async fn timer_from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let config = SurveyEngineConfig::timer_from_lookup(crate::config::process_env)?;
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        SurveyEngine::from_parts(&config, dynamo, sqs)
    }

    /// Builds the engine from explicit clients (tests, the local stack).
    pub fn from_parts(
        config: &SurveyEngineConfig,
        dynamo: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
    ) -> Result<Self, InitError> {
        let table = DynamoTable::new(dynamo, config.table.clone());
        SurveyEngine::new(
            DynamoConversationStore::new(table.clone())
                .with_transcript_retention_days(config.transcript_retention_days),
            DynamoDeliveryLog::new(table.clone()),
            SurveyCatalog::new(
                DynamoSurveyStore::new(table),
                config.survey_id.clone(),
                Duration::from_secs(config.survey_cache_seconds),
            )
            .map_err(|e| InitError::DefaultSurvey(e.to_string()))?,
            SqsQueue::new(sqs.clone(), config.outbound_queue_url.clone()),
            SqsQueue::new(sqs.clone(), config.assignment_queue_url.clone()),
            SqsDeadLetters::new(sqs, config.dead_letter_queue_url.clone()),
        )
    }
}

impl<S: ConversationStore, V: SurveyStore, Q: MessageQueue, D: DeadLetters, L: DeliveryLog>
    SurveyEngine<S, V, Q, D, L>
{
    pub fn new(
        store: S,
        deliveries: L,
        surveys: SurveyCatalog<V>,
        outbound: Q,
        assignment: Q,
        dead_letters: D,
    ) -> Result<Self, InitError> {
        Ok(SurveyEngine {
            store,
            deliveries,
            surveys,
            outbound,
            assignment,
            dead_letters,
            clock: Clock::system(),
            pusher: None,
        })
    }

    /// Turns pushes to agents' browsers on (`Some`) or off.
    pub fn with_pusher(mut self, pusher: Option<SharedPush>) -> Self {
        self.pusher = pusher;
        self
    }

    /// Replaces the clock, for tests of timeouts and reopen windows.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The Lambda handler: the shared disposition policy ([`process_fifo_batch`]).
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let consumer = Consumer {
            name: CONSUMER,
            dead_letters: &self.dead_letters,
        };
        process_fifo_batch(event, consumer, |e: InboundEvent| self.handle_event(e))
            .await
            .response()
    }

    async fn handle_event(&self, event: InboundEvent) -> Result<Handled, EngineError> {
        match &event {
            InboundEvent::Message(m) => self.on_message(m).await,
            InboundEvent::Status(s) => self.on_status(s).await,
            InboundEvent::UserIdUpdate(u) => self.on_user_id_update(u).await,
            InboundEvent::WebForm(w) => self.on_web_form(w).await,
        }
    }

    /// Handles one message of a contact: load, decide, commit, send.
    pub async fn on_message(&self, m: &InboundMessage) -> Result<Handled, EngineError> {
        let Some(key) = m.contact.key() else {
            return Err(EngineError::Invalid("message without a contact id"));
        };
        let who = redact(key.as_str());
        const ATTEMPTS: u32 = 4;
        let phone = m
            .contact
            .wa_id
            .as_deref()
            .filter(|w| !w.is_empty() && *w != key.as_str())
            .map(ContactKey::from);
        for attempt in 0..ATTEMPTS {
            let loaded = self
                .store
                .load(&m.phone_number_id, &key, attempt > 0)
                .await?;
            if let (None, Some(phone), 0) = (&loaded, &phone, attempt) {
                // First message under a BSUID from a contact we know by phone number (Meta
                // started sending BSUIDs): move the contact once, then read it again.
                if self.store.rekey(&m.phone_number_id, phone, &key).await? {
                    tracing::info!(contact = %who, "contact moved from phone number to BSUID");
                    continue;
                }
            }
            let prev = loaded.unwrap_or_else(|| ContactRecord {
                contact: ContactState {
                    phone_number_id: m.phone_number_id.clone(),
                    key: key.clone(),
                    ..Default::default()
                },
                ..Default::default()
            });
            // One reading: the conversation keeps its seconds, the transcript its milliseconds.
            let now_ms = self.clock.unix_ms();
            let now = now_ms.div_euclid(1000);
            let (conversation, survey) = match prev.conversation.clone() {
                Some(c) => {
                    let on = self.surveys.version(&c.survey_id, c.survey_version).await?;
                    if c.continues(on.reopen_window_minutes, now) {
                        (Some(c), on)
                    } else {
                        (None, self.surveys.latest().await?)
                    }
                }
                None => (None, self.surveys.latest().await?),
            };
            let outcome =
                engine::on_message(prev.contact.clone(), conversation, m, &survey, now_ms);
            let next = prev.advanced(outcome.contact, outcome.conversation, |c| {
                engine::reminder_due(c, &survey)
            });
            let effects = Applied::new(&m.message_id, outcome.effects)
                .in_conversation(next.conversation.as_ref().map(|c| c.id.as_str()));
            let committed = self
                .commit_and_send(&prev, &next, &effects, &m.phone_number_id, now, || {
                    let conv = next.conversation.as_ref();
                    tracing::info!(
                        contact = %who,
                        conversation = conv.map(|c| c.id.as_str()).unwrap_or(""),
                        status = conv.map(|c| c.status.as_str()).unwrap_or(""),
                        question = conv.and_then(|c| c.question.as_deref()).unwrap_or(""),
                        action = ?outcome.action,
                        survey_version = survey.version,
                        "message applied"
                    );
                })
                .await?;
            match committed {
                Committed::Now | Committed::Before => return Ok(Handled::Done),
                Committed::Changed => {
                    // Another invocation moved first, or an agent closed the conversation:
                    // read again (including the conversation item) and decide again.
                    tracing::info!(contact = %who, attempt, "contact changed concurrently; reloading");
                    continue;
                }
            }
        }
        Err(EngineError::Contended(ATTEMPTS))
    }

    /// Applies a web visitor's submitted form ([`engine::on_web_form`]) with the commit path of
    /// a message: its `APPLIED#` record under the submission id, the effects sent after the
    /// commit, and sent again (same dedup ids) when the submission is delivered again. The
    /// survey is the version the form was built from.
    pub async fn on_web_form(&self, w: &WebFormSubmission) -> Result<Handled, EngineError> {
        if !crate::webchat::is_web(&w.phone_number_id) {
            return Err(EngineError::Invalid(
                "web form submission for a WhatsApp number",
            ));
        }
        let Some(key) = w.contact.key() else {
            return Err(EngineError::Invalid(
                "web form submission without a visitor id",
            ));
        };
        if w.submission_id.is_empty() {
            return Err(EngineError::Invalid("web form submission without an id"));
        }
        let who = redact(key.as_str());
        let survey = self.surveys.version(&w.survey_id, w.survey_version).await?;
        const ATTEMPTS: u32 = 4;
        for attempt in 0..ATTEMPTS {
            let loaded = self
                .store
                .load(&w.phone_number_id, &key, attempt > 0)
                .await?;
            let prev = loaded.unwrap_or_else(|| ContactRecord {
                contact: ContactState {
                    phone_number_id: w.phone_number_id.clone(),
                    key: key.clone(),
                    ..Default::default()
                },
                ..Default::default()
            });
            // One reading: the conversation keeps its seconds, the transcript its milliseconds.
            let now_ms = self.clock.unix_ms();
            let now = now_ms.div_euclid(1000);
            let Some(outcome) = engine::on_web_form(
                prev.contact.clone(),
                prev.conversation.clone(),
                w,
                &survey,
                now_ms,
            ) else {
                // The open conversation may be this very submission's (a redelivery): then its
                // effects go out again, as for a message applied before.
                if let Some(done) = self
                    .store
                    .applied(&w.phone_number_id, &w.submission_id, now)
                    .await?
                {
                    tracing::info!(contact = %who, "web form already applied; its effects are sent again");
                    self.send(&done).await?;
                    return Ok(Handled::Done);
                }
                tracing::info!(contact = %who, "web form while a conversation is open; ignored");
                return Ok(Handled::Skipped(
                    "the visitor already has an open conversation",
                ));
            };
            let next = prev.advanced(outcome.contact, outcome.conversation, |c| {
                engine::reminder_due(c, &survey)
            });
            let effects = Applied::new(&w.submission_id, outcome.effects)
                .in_conversation(next.conversation.as_ref().map(|c| c.id.as_str()));
            let committed = self
                .commit_and_send(&prev, &next, &effects, &w.phone_number_id, now, || {
                    tracing::info!(
                        contact = %who,
                        conversation = next.conversation.as_ref().map(|c| c.id.as_str()).unwrap_or(""),
                        survey_version = survey.version,
                        "web form applied"
                    );
                })
                .await?;
            match committed {
                Committed::Now | Committed::Before => return Ok(Handled::Done),
                Committed::Changed => {
                    tracing::info!(contact = %who, attempt, "contact changed concurrently; reloading");
                    continue;
                }
            }
        }
        Err(EngineError::Contended(ATTEMPTS))
    }

    /// Commits one applied event (`effects.message_id`) and sends its effects: `applied` runs
    /// once the commit went through, before the send. When the event was applied before (a
    /// redelivery, a Meta retry, a DLQ redrive), exactly its recorded effects are sent again:
    /// they may not have gone out (a send failed after the commit), and dedup ids drop what
    /// did. [`Committed::Changed`]: the contact changed under us; load again and decide again.
    async fn commit_and_send(
        &self,
        prev: &ContactRecord,
        next: &ContactRecord,
        effects: &Applied,
        phone_number_id: &str,
        now: i64,
        applied: impl FnOnce(),
    ) -> Result<Committed, EngineError> {
        match self.store.commit(prev, next, effects, now).await {
            Ok(()) => {
                applied();
                self.send(effects).await?;
                Ok(Committed::Now)
            }
            Err(StoreError::ConditionFailed(_)) => {
                let Some(done) = self
                    .store
                    .applied(phone_number_id, &effects.message_id, now)
                    .await?
                else {
                    return Ok(Committed::Changed);
                };
                tracing::info!(contact = %redact(prev.contact.key.as_str()), "already applied; its effects are sent again");
                self.send(&done).await?;
                Ok(Committed::Before)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends the mark-as-read and the replies (one batch) and then the job: replies first, so
    /// the contact hears "an agent will be with you" before an agent can write.
    async fn send(&self, effects: &Applied) -> Result<(), EngineError> {
        if !effects.messages.is_empty() {
            let batch = effects
                .messages
                .iter()
                .map(QueueMessage::of)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| EngineError::Encode(e.to_string()))?;
            self.outbound.send_all(&batch).await?;
        }
        if let Some(job) = &effects.job {
            let message = QueueMessage::of(job).map_err(|e| EngineError::Encode(e.to_string()))?;
            self.assignment.send_all(&[message]).await?;
        }
        Ok(())
    }

    /// The reminder timer (a scheduled invocation): sends the reminders that are due.
    pub async fn handle_tick(&self, _event: serde_json::Value) -> Result<SweepReport, EngineError> {
        let report = self.sweep().await?;
        tracing::info!(?report, "reminder sweep");
        Ok(report)
    }

    /// Looks at every conversation whose reminder is due and reminds the silent contacts.
    pub async fn sweep(&self) -> Result<SweepReport, EngineError> {
        let now = self.clock.unix();
        let due = self.store.due_reminders(now, SWEEP_LIMIT).await?;
        let mut report = SweepReport {
            due: due.len(),
            ..Default::default()
        };
        for d in &due {
            match self.remind(d, now).await {
                Ok(true) => report.reminded += 1,
                Ok(false) => report.skipped += 1,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(conversation = %d.conversation_id, error = %e, "reminder failed; next sweep tries again");
                }
            }
        }
        Ok(report)
    }

    /// Reminds one conversation, with the same exactly-once write as a message: the tick has
    /// its own id (`remind:{conversation}:{step}`) and `APPLIED#` record.
    /// A reminder is due at the earliest `reminder_after_minutes` after the last message, so it
    /// never races the redelivery of that message's effects (visibility timeout: 60 s).
    async fn remind(&self, d: &DueReminder, now: i64) -> Result<bool, EngineError> {
        for _ in 0..3 {
            let Some(prev) = self
                .store
                .load(&d.phone_number_id, &d.contact_key, false)
                .await?
            else {
                self.store.clear_reminder(&d.conversation_id).await?;
                return Ok(false);
            };
            let Some(conv) = prev
                .conversation
                .clone()
                .filter(|c| c.id == d.conversation_id)
            else {
                self.store.clear_reminder(&d.conversation_id).await?;
                return Ok(false);
            };
            let survey = self
                .surveys
                .version(&conv.survey_id, conv.survey_version)
                .await?;
            let Some((reminded, effects)) =
                engine::on_timer(&prev.contact, conv.clone(), &survey, self.clock.unix_ms())
            else {
                if engine::reminder_due(&conv, &survey).is_some_and(|t| t > now) {
                    // The contact answered meanwhile; that write moved the index entry.
                    return Ok(false);
                }
                // Expired, outside the 24-hour window, or the contact opted out.
                self.store.clear_reminder(&d.conversation_id).await?;
                return Ok(false);
            };
            let tick = format!("remind:{}:{}", reminded.id, reminded.step);
            let applied = Applied::new(&tick, effects).in_conversation(Some(&reminded.id));
            let next = prev.advanced(prev.contact.clone(), Some(reminded), |c| {
                engine::reminder_due(c, &survey)
            });
            match self.store.commit(&prev, &next, &applied, now).await {
                Ok(()) => {
                    self.send(&applied).await?;
                    tracing::info!(contact = %redact(d.contact_key.as_str()), conversation = %d.conversation_id, "reminder sent");
                    return Ok(true);
                }
                Err(StoreError::ConditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Contended(3))
    }

    pub async fn on_status(&self, s: &StatusUpdate) -> Result<Handled, EngineError> {
        let sent = self
            .deliveries
            .record_status(&s.message_id, s.status, s.timestamp)
            .await?;
        self.push_tick(sent.as_ref(), s).await;
        if s.status != DeliveryStatus::Failed {
            return Ok(if sent.is_some() {
                Handled::Done
            } else {
                // Benign: e.g. a status of a message another system sent from this number.
                Handled::Skipped("status of a message we have no record of")
            });
        }
        // A failed message is recorded and counted on its conversation; when the sender has no
        // record of it, on the contact's current conversation.
        let conversation_id = match sent.as_ref().and_then(|m| m.conversation_id.clone()) {
            Some(id) => Some(id),
            None => match s.recipient.key() {
                Some(key) => self
                    .store
                    .load(&s.phone_number_id, &key, false)
                    .await?
                    .and_then(|r| r.conversation.map(|c| c.id)),
                None => None,
            },
        };
        let (error_code, reason) = match s.errors.first() {
            Some(e) => (e.code.to_string(), e.title.clone()),
            None => ("unreported".to_owned(), "failed".to_owned()),
        };
        let Some(conversation_id) = conversation_id else {
            tracing::warn!(code = %error_code, "failed status for a message of no known conversation");
            // Nothing to record it on; logged above.
            return Ok(Handled::Skipped("failed status of an unknown message"));
        };
        let failure = DeliveryFailure {
            conversation_id,
            dedup_id: sent.and_then(|m| m.dedup_id),
            wamid: Some(s.message_id.clone()),
            error_code,
            error_class: "undelivered".to_owned(),
            reason,
            kind: None,
            failed_at: s.timestamp,
            transcript: None,
        };
        let first = self.deliveries.record_failure(&failure).await?;
        tracing::warn!(conversation = %failure.conversation_id, code = %failure.error_code, first, "outbound message failed");
        Ok(Handled::Done)
    }

    /// An agent's reply changed status: `message.status` to that agent, with the entry's id
    /// and new status (the inbox moves a tick only forward, so a stale status is harmless).
    async fn push_tick(&self, sent: Option<&SentMessage>, s: &StatusUpdate) {
        let Some(r) = sent.and_then(|m| m.transcript.as_ref()) else {
            return;
        };
        let (Some(agent), Some(status)) = (
            r.agent_id.as_deref(),
            crate::transcript::DeliveryStatus::of_webhook(s.status),
        ) else {
            return;
        };
        let entry = serde_json::json!({"id": r.entry_id, "status": status, "wamid": s.message_id});
        let at = s.timestamp.saturating_mul(1000);
        let event = PushEvent::entry(PushType::MessageStatus, &r.conversation_id, entry, at);
        push_opt(self.pusher.as_ref(), agent, event).await;
    }

    pub async fn on_user_id_update(&self, u: &UserIdUpdate) -> Result<Handled, EngineError> {
        let moved = self
            .store
            .rekey(
                &u.phone_number_id,
                &ContactKey::from(u.old_user_id.as_str()),
                &ContactKey::from(u.new_user_id.as_str()),
            )
            .await?;
        tracing::info!(from = %redact(&u.old_user_id), to = %redact(&u.new_user_id), moved, "contact re-keyed");
        Ok(Handled::Done)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn config_names_every_missing_setting_and_has_defaults() {
        let err = SurveyEngineConfig::from_lookup(|_| None).unwrap_err();
        let text = err.to_string();
        for v in [
            "PRECHAT_TABLE",
            "PRECHAT_OUTBOUND_QUEUE_URL",
            "PRECHAT_ASSIGNMENT_QUEUE_URL",
            "PRECHAT_INBOUND_DLQ_URL",
        ] {
            assert!(text.contains(v), "{text}");
        }
        let env: HashMap<&str, &str> = HashMap::from([
            ("PRECHAT_TABLE", "t"),
            ("PRECHAT_OUTBOUND_QUEUE_URL", "o"),
            ("PRECHAT_ASSIGNMENT_QUEUE_URL", "a"),
            ("PRECHAT_INBOUND_DLQ_URL", "d"),
        ]);
        let c = SurveyEngineConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.survey_id, "default");
        assert_eq!(c.survey_cache_seconds, 60);
        let bad = SurveyEngineConfig::from_lookup(|k| {
            if k == "PRECHAT_SURVEY_CACHE_SECONDS" {
                Some("soon".into())
            } else {
                env.get(k).map(|v| v.to_string())
            }
        });
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("PRECHAT_SURVEY_CACHE_SECONDS"));
    }

    #[test]
    fn the_engine_needs_its_dead_letter_queue_and_the_timer_does_not() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("PRECHAT_TABLE", "t"),
            ("PRECHAT_OUTBOUND_QUEUE_URL", "o"),
            ("PRECHAT_ASSIGNMENT_QUEUE_URL", "a"),
        ]);
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let err = SurveyEngineConfig::from_lookup(lookup).unwrap_err();
        assert!(err.to_string().contains("PRECHAT_INBOUND_DLQ_URL"), "{err}");
        let timer = SurveyEngineConfig::timer_from_lookup(lookup).unwrap();
        assert_eq!(timer.dead_letter_queue_url, None);
    }

    #[test]
    fn a_missing_survey_version_is_parked_and_an_outage_retried() {
        let survey = EngineError::Survey {
            survey_id: "s".into(),
            version: 3,
            reason: "version not found".into(),
        };
        assert!(!survey.is_retryable());
        assert_eq!(survey.category(), "survey_unavailable");
        assert!(!EngineError::Invalid("x").is_retryable());
        assert!(!EngineError::Encode("x".into()).is_retryable());
        assert!(EngineError::Store(StoreError::Unavailable("x".into())).is_retryable());
        assert!(EngineError::Contended(4).is_retryable());
    }
}
