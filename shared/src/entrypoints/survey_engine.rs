//! survey-engine: consumes the inbound FIFO queue (one [`InboundEvent`] per message), runs the
//! pure survey engine and persists and sends its effects exactly once.
//!
//! Per inbound message: one consistent read of the contact item (which holds the current
//! conversation), the pure [`engine::on_message`], one conditional transaction that also
//! proves the message id was not applied before, then one `SendMessageBatch` of the replies to
//! the outbound queue (and, when the survey ends, one of the job to the assignment queue).
//! State is written before the effects are sent; the effects are kept with the state
//! (`outbox`), so a redelivery after a failed send sends them again under the same dedup ids.
//!
//! Statuses update the delivery state of our messages (`OUT#{wamid}`) and record failures on
//! the conversation; `user_id_update` moves a contact to its new BSUID.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use crate::config::{ConfigError, EnvReader};
use crate::entrypoints::sqs::{process_fifo_batch, Handled, Retry};
use crate::queue::{MessageQueue, QueueMessage, SqsQueue};
use crate::store::conversation_store::{
    ContactRecord, ConversationStore, DueReminder, DynamoConversationStore, Outbox, APPLIED_KEEP,
    STALE_AFTER_SECONDS,
};
use crate::store::survey_store::{DynamoSurveyStore, SurveyStore};
use crate::store::{DynamoTable, StoreError};
use crate::survey::engine::{self, ContactState};
use crate::survey::Survey;
use crate::telemetry::redact;
use crate::whatsapp::event::{
    DeliveryStatus, InboundEvent, InboundMessage, StatusUpdate, UserIdUpdate,
};

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
}

impl SurveyEngineConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let config = SurveyEngineConfig {
            table: env.required("PRECHAT_TABLE"),
            outbound_queue_url: env.required("PRECHAT_OUTBOUND_QUEUE_URL"),
            assignment_queue_url: env.required("PRECHAT_ASSIGNMENT_QUEUE_URL"),
            survey_id: env
                .optional("PRECHAT_SURVEY_ID")
                .unwrap_or_else(|| "default".to_owned()),
            survey_cache_seconds: env.parsed_or("PRECHAT_SURVEY_CACHE_SECONDS", 60),
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
}

impl EngineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_retryable(),
            EngineError::Queue(e) => e.is_retryable(),
            EngineError::Survey { .. } => false,
            EngineError::Contended(_) => true,
        }
    }
}

/// Immutable survey versions, loaded once; the latest version cached for a short while.
pub struct SurveyCatalog<V> {
    store: V,
    survey_id: String,
    ttl: Duration,
    versions: Mutex<HashMap<(String, u32), Arc<Survey>>>,
    latest: Mutex<Option<(Arc<Survey>, Instant)>>,
    default: Arc<Survey>,
}

impl<V: SurveyStore> SurveyCatalog<V> {
    pub fn new(store: V, survey_id: String, ttl: Duration) -> Result<Self, InitError> {
        let default =
            Survey::default_survey().map_err(|e| InitError::DefaultSurvey(e.to_string()))?;
        Ok(SurveyCatalog {
            store,
            survey_id,
            ttl,
            versions: Mutex::new(HashMap::new()),
            latest: Mutex::new(None),
            default: Arc::new(default),
        })
    }

    fn cached(&self, id: &str, version: u32) -> Option<Arc<Survey>> {
        self.versions
            .lock()
            .ok()?
            .get(&(id.to_owned(), version))
            .cloned()
    }

    fn remember(&self, survey: Arc<Survey>) {
        if let Ok(mut m) = self.versions.lock() {
            m.insert((survey.id.clone(), survey.version), survey);
        }
    }

    fn parse(stored_id: &str, version: u32, yaml: &str) -> Result<Arc<Survey>, EngineError> {
        Survey::parse(yaml, version)
            .map(Arc::new)
            .map_err(|e| EngineError::Survey {
                survey_id: stored_id.to_owned(),
                version,
                reason: e.to_string(),
            })
    }

    /// The version a conversation runs on (0 = the shipped default).
    async fn version(&self, id: &str, version: u32) -> Result<Arc<Survey>, EngineError> {
        if version == 0 {
            return Ok(self.default.clone());
        }
        if let Some(s) = self.cached(id, version) {
            return Ok(s);
        }
        let stored = self
            .store
            .get(id, version)
            .await?
            .ok_or_else(|| EngineError::Survey {
                survey_id: id.to_owned(),
                version,
                reason: "version not found".to_owned(),
            })?;
        let survey = Self::parse(id, version, &stored.yaml)?;
        self.remember(survey.clone());
        Ok(survey)
    }

    /// The latest published version of the configured survey, else the shipped default.
    async fn latest(&self) -> Result<Arc<Survey>, EngineError> {
        if let Ok(guard) = self.latest.lock() {
            if let Some((s, at)) = guard.as_ref() {
                if at.elapsed() < self.ttl {
                    return Ok(s.clone());
                }
            }
        }
        let survey = match self.store.latest(&self.survey_id).await? {
            Some(stored) => match self.cached(&stored.survey_id, stored.version) {
                Some(s) => s,
                None => {
                    let s = Self::parse(&stored.survey_id, stored.version, &stored.yaml)?;
                    self.remember(s.clone());
                    s
                }
            },
            None => self.default.clone(),
        };
        if let Ok(mut guard) = self.latest.lock() {
            *guard = Some((survey.clone(), Instant::now()));
        }
        Ok(survey)
    }
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

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
pub struct SurveyEngine<S = DynamoConversationStore, V = DynamoSurveyStore, Q = SqsQueue> {
    store: S,
    surveys: SurveyCatalog<V>,
    outbound: Q,
    assignment: Q,
    clock: Clock,
}

impl SurveyEngine {
    /// Reads the configuration from the environment and builds the AWS clients.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let config = SurveyEngineConfig::from_lookup(|k| std::env::var(k).ok())?;
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
            DynamoConversationStore::new(table.clone()),
            SurveyCatalog::new(
                DynamoSurveyStore::new(table),
                config.survey_id.clone(),
                Duration::from_secs(config.survey_cache_seconds),
            )?,
            SqsQueue::new(sqs.clone(), config.outbound_queue_url.clone()),
            SqsQueue::new(sqs, config.assignment_queue_url.clone()),
        )
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl<S: ConversationStore, V: SurveyStore, Q: MessageQueue> SurveyEngine<S, V, Q> {
    pub fn new(
        store: S,
        surveys: SurveyCatalog<V>,
        outbound: Q,
        assignment: Q,
    ) -> Result<Self, InitError> {
        Ok(SurveyEngine {
            store,
            surveys,
            outbound,
            assignment,
            clock: Arc::new(unix_now),
        })
    }

    /// Replaces the clock (Unix seconds), for tests of timeouts and reopen windows.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The Lambda handler: the batch in order, stopping at the first retryable failure.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        process_fifo_batch(event, |m| self.handle_record(m)).await
    }

    async fn handle_record(&self, record: SqsMessage) -> Result<Handled, Retry> {
        let body = record.body.unwrap_or_default();
        let event: InboundEvent = match serde_json::from_str(&body) {
            Ok(e) => e,
            Err(e) => {
                // The body is our own contract: a bad one will never parse, so it is not
                // retried. serde's message may quote the body (a phone number, an answer):
                // only its category and position are logged.
                let reason = format!("bad inbound event: {}", crate::telemetry::json_error(&e));
                tracing::error!(%reason, "inbound event does not parse");
                return Ok(Handled::Discarded(reason));
            }
        };
        let result = match &event {
            InboundEvent::Message(m) => self.on_message(m).await,
            InboundEvent::Status(s) => self.on_status(s).await,
            InboundEvent::UserIdUpdate(u) => self.on_user_id_update(u).await,
        };
        match result {
            Ok(h) => Ok(h),
            Err(e) if e.is_retryable() => Err(Retry(e.to_string())),
            Err(e) => {
                tracing::error!(error = %e, "event cannot be handled");
                Ok(Handled::Discarded(e.to_string()))
            }
        }
    }

    /// Handles one message of a contact: load, decide, commit, send.
    pub async fn on_message(&self, m: &InboundMessage) -> Result<Handled, EngineError> {
        let Some(key) = m.contact.key() else {
            return Ok(Handled::Discarded("message without a contact id".into()));
        };
        let who = redact(key);
        const ATTEMPTS: u32 = 4;
        let phone = m
            .contact
            .wa_id
            .as_deref()
            .filter(|w| !w.is_empty() && *w != key);
        for attempt in 0..ATTEMPTS {
            let loaded = self
                .store
                .load(&m.phone_number_id, key, attempt > 0)
                .await?;
            if let (None, Some(phone), 0) = (&loaded, phone, attempt) {
                // First message under a BSUID from a contact we know by phone number (Meta
                // started sending BSUIDs): move the contact once, then read it again.
                if self.store.rekey(&m.phone_number_id, phone, key).await? {
                    tracing::info!(contact = %who, "contact moved from phone number to BSUID");
                    continue;
                }
            }
            let prev = loaded.unwrap_or_else(|| ContactRecord {
                contact: ContactState {
                    phone_number_id: m.phone_number_id.clone(),
                    key: key.to_owned(),
                    ..Default::default()
                },
                ..Default::default()
            });
            if prev.applied.iter().any(|id| id == &m.message_id) {
                tracing::info!(contact = %who, "message already applied");
                if let Some(outbox) = prev
                    .outbox
                    .as_ref()
                    .filter(|o| o.message_id == m.message_id)
                {
                    // Its effects may not have gone out (the send failed after the commit).
                    self.send(outbox).await?;
                }
                return Ok(Handled::Done);
            }
            let newest = prev.conversation.as_ref().map(|c| c.last_inbound_at);
            if newest.is_some_and(|n| m.timestamp.saturating_add(STALE_AFTER_SECONDS) < n) {
                // A redelivery (or a straggler) from long before the contact's latest message:
                // applying it now would answer the wrong question.
                tracing::warn!(contact = %who, "stale message ignored");
                return Ok(Handled::Discarded(
                    "message older than the conversation's latest by more than an hour".into(),
                ));
            }
            let now = (self.clock)();
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
            let outcome = engine::on_message(prev.contact.clone(), conversation, m, &survey, now);
            let mut applied = prev.applied.clone();
            applied.push(m.message_id.clone());
            if applied.len() > APPLIED_KEEP {
                applied.drain(..applied.len() - APPLIED_KEEP);
            }
            let outbox = Outbox {
                message_id: m.message_id.clone(),
                messages: outcome.effects.messages,
                job: outcome.effects.job,
            };
            let next = ContactRecord {
                contact: outcome.contact,
                conversation: outcome.conversation.or_else(|| prev.conversation.clone()),
                applied,
                outbox: Some(outbox),
                rev: prev.rev,
                conversation_closed_at: prev.conversation_closed_at,
                reminder_due: None,
            };
            let mut next = next;
            next.reminder_due = next
                .conversation
                .as_ref()
                .and_then(|c| engine::reminder_due(c, &survey));
            match self.store.commit(&prev, &next, &m.message_id).await {
                Ok(()) => {
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
                    if let Some(outbox) = &next.outbox {
                        self.send(outbox).await?;
                    }
                    return Ok(Handled::Done);
                }
                Err(StoreError::ConditionFailed(_)) => {
                    // Another invocation moved first, or an agent closed the conversation:
                    // read again (including the conversation item) and decide again.
                    tracing::info!(contact = %who, attempt, "contact changed concurrently; reloading");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Contended(ATTEMPTS))
    }

    /// Sends the replies (one batch) and then the job: replies first, so the contact hears
    /// "an agent will be with you" before an agent can write.
    async fn send(&self, outbox: &Outbox) -> Result<(), EngineError> {
        if !outbox.messages.is_empty() {
            let batch = outbox
                .messages
                .iter()
                .map(|msg| {
                    let body = serde_json::to_string(msg).unwrap_or_default();
                    QueueMessage::fifo(body, &msg.group_id(), &msg.dedup_id)
                })
                .collect::<Vec<_>>();
            self.outbound.send_all(&batch).await?;
        }
        if let Some(job) = &outbox.job {
            let id = match job {
                crate::routing::job::AssignmentJob::Assign(r) => r.job_id.clone(),
                crate::routing::job::AssignmentJob::Drain { team_id, reason } => {
                    format!("drain:{team_id}:{reason}")
                }
            };
            let body = serde_json::to_string(job).unwrap_or_default();
            self.assignment
                .send_all(&[QueueMessage::fifo(body, &job.group_id(), &id)])
                .await?;
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
        let now = (self.clock)();
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
    /// its own id (`remind:{conversation}:{step}`) in the applied list and the outbox.
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
                engine::on_timer(&prev.contact, conv.clone(), &survey, now)
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
            let mut applied = prev.applied.clone();
            applied.push(tick.clone());
            if applied.len() > APPLIED_KEEP {
                applied.drain(..applied.len() - APPLIED_KEEP);
            }
            let next = ContactRecord {
                contact: prev.contact.clone(),
                reminder_due: engine::reminder_due(&reminded, &survey),
                conversation: Some(reminded),
                applied,
                outbox: Some(Outbox {
                    message_id: tick.clone(),
                    messages: effects.messages,
                    job: None,
                }),
                rev: prev.rev,
                conversation_closed_at: prev.conversation_closed_at,
            };
            match self.store.commit(&prev, &next, &tick).await {
                Ok(()) => {
                    if let Some(outbox) = &next.outbox {
                        self.send(outbox).await?;
                    }
                    tracing::info!(contact = %redact(&d.contact_key), conversation = %d.conversation_id, "reminder sent");
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
            .store
            .record_delivery(&s.message_id, s.status, s.timestamp)
            .await?;
        if s.status != DeliveryStatus::Failed {
            return Ok(if sent.is_some() {
                Handled::Done
            } else {
                Handled::Discarded("status of a message we have no record of".into())
            });
        }
        // A failed message is recorded and counted on its conversation; when the sender has no
        // record of it, on the contact's current conversation.
        let conversation_id = match sent.as_ref().and_then(|m| m.conversation_id.clone()) {
            Some(id) => Some(id),
            None => match s.recipient.key() {
                Some(key) => self
                    .store
                    .load(&s.phone_number_id, key, false)
                    .await?
                    .and_then(|r| r.conversation.map(|c| c.id)),
                None => None,
            },
        };
        let error = s
            .errors
            .first()
            .map(|e| format!("{} {}", e.code, e.title))
            .unwrap_or_else(|| "failed".to_owned());
        let Some(conversation_id) = conversation_id else {
            tracing::warn!(code = %error, "failed status for a message of no known conversation");
            return Ok(Handled::Discarded(
                "failed status of an unknown message".into(),
            ));
        };
        let dedup = sent.as_ref().and_then(|m| m.dedup_id.as_deref());
        let first = self
            .store
            .record_failure(&conversation_id, &s.message_id, dedup, &error, s.timestamp)
            .await?;
        tracing::warn!(conversation = %conversation_id, code = %error, first, "outbound message failed");
        Ok(Handled::Done)
    }

    pub async fn on_user_id_update(&self, u: &UserIdUpdate) -> Result<Handled, EngineError> {
        let moved = self
            .store
            .rekey(&u.phone_number_id, &u.old_user_id, &u.new_user_id)
            .await?;
        tracing::info!(from = %redact(&u.old_user_id), to = %redact(&u.new_user_id), moved, "contact re-keyed");
        Ok(Handled::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_missing_setting_and_has_defaults() {
        let err = SurveyEngineConfig::from_lookup(|_| None).unwrap_err();
        let text = err.to_string();
        for v in [
            "PRECHAT_TABLE",
            "PRECHAT_OUTBOUND_QUEUE_URL",
            "PRECHAT_ASSIGNMENT_QUEUE_URL",
        ] {
            assert!(text.contains(v), "{text}");
        }
        let env: HashMap<&str, &str> = HashMap::from([
            ("PRECHAT_TABLE", "t"),
            ("PRECHAT_OUTBOUND_QUEUE_URL", "o"),
            ("PRECHAT_ASSIGNMENT_QUEUE_URL", "a"),
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
}
