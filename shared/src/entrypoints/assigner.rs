//! agent-assigner: consumes the assignment FIFO queue.
//!
//! `Assign` jobs: route the conversation to a team (rules, VIP list), open its hand-off ticket
//! (idempotent by conversation and `job_id`), let the team's line move (the oldest waiting
//! tickets, VIP first, get any free agents), and tell the contact what happens next: the
//! assigned message, or the away / overload message with the queue position.
//! `Cancel` jobs (the contact stopped, restarted or ended a handed-off conversation): the ticket
//! leaves the line or frees its agent at once, and the line moves.
//! `Drain` jobs (admin commands when capacity frees, and the scheduled sweep with
//! `team_id = "*"`): let one team's line, or every team's, move; the sweep also retries the
//! team-webhook deliveries that are due.
//! `Relay`, `Transfer` and `Closed` jobs: the help-desk bridge (module `assigner_bridge.rs`):
//! a contact message of an assigned conversation to the team's webhook, a transfer under the
//! capacity rules, a close outside the assigner to the webhook.
//!
//! Every assignment is announced exactly once in effect: the contact message has a
//! deterministic dedup id (conversation, job, kind; never the place in line, so a retried job
//! cannot announce a second, different position) and the agent notification a stable delivery
//! id. A ticket stays in the team's announce list until both went out. The contact message is
//! part of the job (a failure retries it); the agent notification is the ticket's own: a
//! failure is recorded on the ticket and retried with back-off by later jobs of the team and
//! the sweep, at most [`MAX_NOTIFY_ATTEMPTS`] times, then logged as [`NOTIFY_FAILED`] and given
//! up. A team whose webhook is down keeps assigning.
//!
//! The 24-hour window of a contact message counts from the contact's latest inbound message:
//! the job's `last_inbound_at`, or, when that is too old, the conversation's `last_inbound_at`
//! that the survey engine keeps current while the contact waits.

#[path = "assigner_bridge.rs"]
mod bridge;
pub use bridge::{Delivered, RelayOutcome, TransferResult};

use crate::clock::Clock;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};

use super::sqs::{process_fifo_batch, Consumer, Disposition, Handled};
use crate::config::{ConfigError, EnvReader};
use crate::queue::dlq::{DeadLetters, SqsDeadLetters};
use crate::queue::{MessageQueue, QueueError, QueueMessage, SqsQueue};
use crate::realtime::push::{push_opt, SharedPush};
use crate::realtime::{PushEvent, PushType};
use crate::routing::hours::Schedule;
use crate::routing::job::{AssignRequest, AssignmentJob, CancelRequest};
use crate::routing::messages::{contact_message, inside_window, Vars};
use crate::routing::model::{Agent, MessageKind, Team};
pub use crate::routing::notify::MAX_NOTIFY_ATTEMPTS;
use crate::routing::notify::{
    notify_retry_after, payload, AssignmentFacts, NotifyError, WebhookNotifier,
    NOTIFY_COOL_DOWN_SECONDS,
};
use crate::routing::strategy::{availability, Availability};
use crate::store::routing::{
    Announcement, AssignOutcome, CloseOutcome, Opened, RoutingStore, Ticket, TicketState,
};
use crate::store::{DynamoTable, StoreError};
use crate::telemetry::redact;
use crate::transcript::{self, Author, Body, Entry, Event, TranscriptRef};
use crate::whatsapp::outbound::{OutboundBody, OutboundMessage};

/// The secret shared with the teams' notification endpoints (optional: without it, no
/// notifications are sent).
pub const WEBHOOK_SECRET: &str = "PRECHAT_AGENT_WEBHOOK_SECRET";

/// A reservation younger than this may belong to an assignment still in flight.
const RECONCILE_GRACE_SECONDS: i64 = 120;

/// Logged (at error level) for every agent notification that is given up: a metric filter
/// in the template counts it (`prechat/AgentNotificationFailures`).
pub const NOTIFY_FAILED: &str = "AGENT_NOTIFY_FAILED";

pub use super::InitError;

#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Missing or invalid routing configuration: retrying cannot fix it, so the job is parked
    /// in the DLQ at once (alarmed); redrive it once an admin has fixed the configuration.
    #[error("routing configuration: {0}")]
    Config(String),
    /// The job itself can never be handled.
    #[error("invalid job: {0}")]
    Invalid(String),
}

impl Disposition for AssignError {
    fn is_retryable(&self) -> bool {
        match self {
            AssignError::Store(e) => Disposition::is_retryable(e),
            AssignError::Queue(e) => Disposition::is_retryable(e),
            AssignError::Config(_) | AssignError::Invalid(_) => false,
        }
    }

    fn category(&self) -> &'static str {
        match self {
            AssignError::Store(e) => e.category(),
            AssignError::Queue(e) => e.category(),
            AssignError::Config(_) => "routing_config",
            AssignError::Invalid(_) => "invalid_job",
        }
    }
}

/// The consumer's name in logs and on parked messages.
pub const CONSUMER: &str = "agent-assigner";

/// The most agents told about a new ticket in their team's line (one connection query and
/// post each): a hint, bounded so a big team does not make every hand-off expensive.
pub const MAX_LINE_PUSHES: usize = 10;

/// What an `Assign` job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Assigned {
        agent: String,
    },
    Waiting {
        kind: MessageKind,
        position: u32,
    },
    /// The conversation already has an open hand-off from another job.
    AlreadyHandedOff,
    AlreadyClosed,
}

/// What a `Cancel` job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The ticket left the line, or its agent's slot is free again (`agent`).
    Cancelled { agent: Option<String> },
    /// Nothing to cancel: no hand-off, or it was closed already.
    NothingOpen,
}

pub struct AgentAssigner<Q: MessageQueue = SqsQueue, D: DeadLetters = SqsDeadLetters> {
    store: RoutingStore,
    outbound: Q,
    dead_letters: D,
    notifier: Option<WebhookNotifier>,
    clock: Clock,
    /// Notification URLs that just failed, with when they may be tried again (this instance
    /// only): a dead endpoint costs one timeout per cool-down, not one per ticket.
    cooling: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// Pushes to agents' browsers (`PRECHAT_WS_MANAGEMENT_URL`): assignments, transfers,
    /// closes, and the contact's messages after the hand-off.
    pusher: Option<SharedPush>,
}

/// Settings read at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignerConfig {
    /// `PRECHAT_TABLE`.
    pub table: String,
    /// `PRECHAT_OUTBOUND_QUEUE_URL`: where contact messages go.
    pub outbound_queue_url: String,
    /// `PRECHAT_ASSIGNMENT_DLQ_URL`: where jobs that can never be handled are parked.
    pub dead_letter_queue_url: String,
    /// `PRECHAT_TRANSCRIPT_RETENTION_DAYS` (default 365): how long the transcript lines the
    /// assigner appends (assigned, closed, its messages to the contact) are kept.
    pub transcript_retention_days: u32,
}

impl AssignerConfig {
    /// Reads every setting, reporting all problems at once.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let config = AssignerConfig {
            table: env.required("PRECHAT_TABLE"),
            outbound_queue_url: env.required("PRECHAT_OUTBOUND_QUEUE_URL"),
            dead_letter_queue_url: env.required("PRECHAT_ASSIGNMENT_DLQ_URL"),
            transcript_retention_days: env.parsed_or(
                "PRECHAT_TRANSCRIPT_RETENTION_DAYS",
                crate::store::transcript::DEFAULT_RETENTION_DAYS,
            ),
        };
        env.finish()?;
        Ok(config)
    }
}

impl AgentAssigner<SqsQueue, SqsDeadLetters> {
    /// `PRECHAT_TABLE`, `PRECHAT_OUTBOUND_QUEUE_URL`, `PRECHAT_ASSIGNMENT_DLQ_URL`, optional
    /// secret `PRECHAT_AGENT_WEBHOOK_SECRET` (`_PARAM` in AWS).
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        Self::from_lookup(sdk, crate::config::process_env).await
    }

    /// As [`AgentAssigner::from_env`], with an explicit environment lookup. The webhook secret
    /// is optional: not configured, an empty `_PARAM`, or a parameter that does not exist all
    /// start the function without notifications (and a warning).
    pub async fn from_lookup(
        sdk: &aws_config::SdkConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, InitError> {
        let config = AssignerConfig::from_lookup(&lookup)?;
        let (_, optional) = super::init::load_secrets(
            &aws_sdk_ssm::Client::new(sdk),
            &[],
            &[WEBHOOK_SECRET],
            &lookup,
        )
        .await?;
        let notifier = match optional.into_iter().next().flatten() {
            Some(secret) => Some(WebhookNotifier::new(secret)?),
            None => {
                tracing::warn!("{WEBHOOK_SECRET} is not configured: agents are not notified");
                None
            }
        };
        let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(sdk), config.table);
        let pusher = crate::realtime::push::AwsPusher::from_lookup(sdk, table.clone(), &lookup)
            .map(|p| Arc::new(p) as SharedPush);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let outbound = SqsQueue::new(sqs.clone(), config.outbound_queue_url);
        Ok(Self::new(
            RoutingStore::new(table)
                .with_transcript_retention_days(config.transcript_retention_days),
            outbound,
            SqsDeadLetters::new(sqs, Some(config.dead_letter_queue_url)),
            notifier,
            Clock::system(),
        )
        .with_pusher(pusher))
    }

    /// Whether agents are notified (the webhook secret was loaded).
    pub fn notifies(&self) -> bool {
        self.notifier.is_some()
    }
}

fn is_safe_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_graphic())
}

impl<Q: MessageQueue, D: DeadLetters> AgentAssigner<Q, D> {
    pub fn new(
        store: RoutingStore,
        outbound: Q,
        dead_letters: D,
        notifier: Option<WebhookNotifier>,
        clock: Clock,
    ) -> Self {
        AgentAssigner {
            store,
            outbound,
            dead_letters,
            notifier,
            clock,
            cooling: Default::default(),
            pusher: None,
        }
    }

    /// Turns pushes to agents' browsers on (`Some`) or off.
    pub fn with_pusher(mut self, pusher: Option<SharedPush>) -> Self {
        self.pusher = pusher;
        self
    }

    /// A ticket joined `team`'s line: the waiting list of its members and leads who are not
    /// offline changed (`conversation.updated`; at most [`MAX_LINE_PUSHES`] of them, the rest
    /// see it on their next list read).
    pub(super) async fn push_line(&self, team: &Team, agents: &[Agent], conversation_id: &str) {
        if self.pusher.is_none() {
            return;
        }
        let watching = agents
            .iter()
            .filter(|a| a.status != crate::routing::model::AgentStatus::Offline)
            .filter(|a| a.teams.contains(&team.id) || a.leads.contains(&team.id))
            .take(MAX_LINE_PUSHES);
        for a in watching {
            self.push(&a.id, PushType::ConversationUpdated, conversation_id)
                .await;
        }
    }

    /// The push port, when pushes are on.
    pub(super) fn pusher_port(&self) -> Option<&SharedPush> {
        self.pusher.as_ref()
    }

    /// Pushes a conversation event to `agent_id` (when pushes are on; never fails the job).
    pub(super) async fn push(&self, agent_id: &str, kind: PushType, conversation_id: &str) {
        let at = self.now().timestamp_millis();
        push_opt(
            self.pusher.as_ref(),
            agent_id,
            PushEvent::conversation(kind, conversation_id, at),
        )
        .await;
    }

    pub fn store(&self) -> &RoutingStore {
        &self.store
    }

    /// The Lambda handler: the shared disposition policy ([`process_fifo_batch`]).
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let consumer = Consumer {
            name: CONSUMER,
            dead_letters: &self.dead_letters,
        };
        process_fifo_batch(event, consumer, |job: AssignmentJob| self.handle_job(job))
            .await
            .response()
    }

    async fn handle_job(&self, job: AssignmentJob) -> Result<Handled, AssignError> {
        match job {
            AssignmentJob::Assign(req) => {
                let o = self.assign(req).await?;
                tracing::info!(outcome = ?o, "assign job done");
            }
            AssignmentJob::Drain { team_id, reason } => {
                tracing::info!(team = %team_id, %reason, "drain job");
                self.drain(&team_id).await?;
            }
            AssignmentJob::Cancel(req) => {
                let o = self.cancel(req).await?;
                tracing::info!(outcome = ?o, "cancel job done");
            }
            AssignmentJob::Relay(req) => {
                let o = self.relay(req).await?;
                tracing::info!(outcome = ?o, "relay job done");
            }
            AssignmentJob::Transfer(req) => {
                let o = self.transfer(req).await?;
                tracing::info!(outcome = ?o, "transfer job done");
            }
            AssignmentJob::Closed(n) => {
                let o = self.closed_notice(n).await?;
                tracing::info!(outcome = ?o, "closed notice done");
            }
        }
        Ok(Handled::Done)
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Handles one hand-off request.
    pub async fn assign(&self, req: AssignRequest) -> Result<JobOutcome, AssignError> {
        if !is_safe_id(&req.conversation_id) || !is_safe_id(&req.job_id) {
            return Err(AssignError::Invalid(
                "conversation_id and job_id must be 1-200 printable ASCII characters".into(),
            ));
        }
        let Some(contact_key) = req.contact.key() else {
            return Err(AssignError::Invalid(format!(
                "conversation {}: no contact id",
                req.conversation_id
            )));
        };
        let now = self.now();
        let routing = self.store.get_routing().await?.ok_or_else(|| {
            AssignError::Config("no routing rules: run `prechat-admin routing set`".into())
        })?;
        let route = routing.route(&req, now.date_naive());
        let team = self.team(&route.team).await?;
        tracing::info!(conversation = %req.conversation_id, contact = %redact(contact_key.as_str()), team = %team.id, vip = route.vip, rule = ?route.rule, "routing");
        let fresh = Ticket::new(req.clone(), team.id.clone(), route.vip);
        let mut opened = self.store.open_ticket(&fresh).await?;
        if let Opened::Existing(t) = &opened {
            if req.supersedes && t.job_id != req.job_id && t.state != TicketState::Closed {
                // A restart that completed at once: the open hand-off gives way to this one.
                self.cancel_ticket(&t.conversation_id, "restarted", req.requested_at)
                    .await?;
                opened = self.store.open_ticket(&fresh).await?;
            }
        }
        let ticket = match opened {
            Opened::New(t) => t,
            Opened::Existing(t) if t.job_id != req.job_id => {
                tracing::info!(conversation = %req.conversation_id, "conversation already handed off by another job");
                return Ok(JobOutcome::AlreadyHandedOff);
            }
            Opened::Existing(t) => t,
        };
        match ticket.state {
            TicketState::Closed => return Ok(JobOutcome::AlreadyClosed),
            TicketState::Assigned => return self.finish_assigned(&team, &ticket).await,
            TicketState::Waiting => {}
        }
        let schedule = schedule_of(&team)?;
        let mut agents = self.store.list_agents().await?;
        self.move_line(&team, schedule.as_ref(), &mut agents)
            .await?;
        // The index behind the line is eventually consistent: if our ticket was not in it yet
        // and an agent is still free, everyone visible ahead of us has been served.
        let current = self.store.get_ticket(&req.conversation_id).await?;
        let current = match current {
            Some(t) if t.job_id == ticket.job_id => t,
            _ => return Ok(JobOutcome::AlreadyClosed),
        };
        match current.state {
            TicketState::Closed => return Ok(JobOutcome::AlreadyClosed),
            TicketState::Assigned => return self.finish_assigned(&team, &current).await,
            TicketState::Waiting => {}
        }
        let av = self
            .try_assign(&team, schedule.as_ref(), &mut agents, &current)
            .await?;
        if let Some(agent) = av.1 {
            return Ok(JobOutcome::Assigned { agent });
        }
        let kind = match av.0 {
            Availability::Closed | Availability::NobodyOnline => MessageKind::Away,
            Availability::AllBusy => MessageKind::Overload,
            // Free agents but no assignment: the ticket was taken or the conversation closed
            // meanwhile; the ticket says which.
            Availability::Free(_) => match self.store.get_ticket(&current.conversation_id).await? {
                Some(t) if t.job_id == current.job_id && t.state == TicketState::Waiting => {
                    MessageKind::Overload
                }
                Some(t) if t.job_id == current.job_id && t.state == TicketState::Assigned => {
                    return self.finish_assigned(&team, &t).await;
                }
                _ => return Ok(JobOutcome::AlreadyClosed),
            },
        };
        let position = self.store.position(&current).await?;
        // Another job's line move may have taken the ticket since we looked (a slot that was
        // reserved and given back): the contact must not hear "in line" after "assigned".
        match self.store.get_ticket(&current.conversation_id).await? {
            Some(t) if t.job_id == current.job_id && t.state == TicketState::Waiting => {}
            Some(t) if t.job_id == current.job_id && t.state == TicketState::Assigned => {
                return self.finish_assigned(&team, &t).await;
            }
            _ => return Ok(JobOutcome::AlreadyClosed),
        }
        let vars = Vars {
            agent_name: None,
            queue_position: Some(position),
        };
        self.tell_contact(&current.request, &team, kind, &vars, current.requested_at)
            .await?;
        self.push_line(&team, &agents, &current.conversation_id)
            .await;
        Ok(JobOutcome::Waiting { kind, position })
    }

    /// Handles a `Cancel` job: the ticket leaves the line or frees its agent at once, and
    /// the agent's team line moves so the next contact gets the slot.
    pub async fn cancel(&self, req: CancelRequest) -> Result<CancelOutcome, AssignError> {
        if !is_safe_id(&req.conversation_id) || !is_safe_id(&req.job_id) {
            return Err(AssignError::Invalid(
                "conversation_id and job_id must be 1-200 printable ASCII characters".into(),
            ));
        }
        self.cancel_ticket(&req.conversation_id, req.reason.as_str(), req.requested_at)
            .await
    }

    async fn cancel_ticket(
        &self,
        conversation_id: &str,
        by: &str,
        requested_before: i64,
    ) -> Result<CancelOutcome, AssignError> {
        let now = self.now().timestamp();
        let (team, agent) = match self
            .store
            .cancel(conversation_id, by, now, requested_before)
            .await?
        {
            CloseOutcome::Closed { team, agent } => (team, agent),
            CloseOutcome::AlreadyClosed | CloseOutcome::NotFound => {
                return Ok(CancelOutcome::NothingOpen)
            }
        };
        tracing::info!(conversation = %conversation_id, team = %team, reason = by, freed = agent.is_some(), "hand-off cancelled");
        self.post_closed(conversation_id, by, now).await?;
        if let Some(a) = &agent {
            self.push(a, PushType::ConversationClosed, conversation_id)
                .await;
        }
        if agent.is_some() {
            // The freed slot goes to the next in line now, not at the next sweep.
            match self.store.get_team(&team).await? {
                Some(t) => {
                    let schedule = schedule_of(&t)?;
                    let mut agents = self.store.list_agents().await?;
                    self.move_line(&t, schedule.as_ref(), &mut agents).await?;
                }
                None => {
                    tracing::warn!(team = %team, "cancelled a ticket of a team that no longer exists")
                }
            }
        }
        Ok(CancelOutcome::Cancelled { agent })
    }

    async fn finish_assigned(
        &self,
        team: &Team,
        ticket: &Ticket,
    ) -> Result<JobOutcome, AssignError> {
        let agent = ticket.agent.clone().unwrap_or_default();
        if announce_due(ticket, self.now().timestamp()) {
            self.announce(team, ticket, &agent, None).await?;
        }
        Ok(JobOutcome::Assigned { agent })
    }

    async fn team(&self, id: &str) -> Result<Team, AssignError> {
        self.store.get_team(id).await?.ok_or_else(|| {
            AssignError::Config(format!(
                "team {id:?} does not exist: add it with `prechat-admin team add`"
            ))
        })
    }

    /// Lets one team's line move, or every team's with `"*"`.
    pub async fn drain(&self, team_id: &str) -> Result<(), AssignError> {
        let teams = if team_id == "*" {
            self.store.list_teams().await?
        } else {
            match self.store.get_team(team_id).await? {
                Some(t) => vec![t],
                None => {
                    return Err(AssignError::Invalid(format!(
                        "drain: unknown team {team_id:?}"
                    )))
                }
            }
        };
        if team_id == "*" {
            // The sweep also frees slots that a crash mid-assignment or mid-close left behind.
            let freed = self
                .store
                .reconcile(self.now().timestamp(), RECONCILE_GRACE_SECONDS)
                .await?;
            if freed > 0 {
                tracing::warn!(freed, "freed reservations without an assigned ticket");
            }
            // And retries the team-webhook deliveries that are due.
            if let Err(e) = self.flush_due().await {
                tracing::warn!(error = %e, "retrying webhook deliveries failed");
            }
        }
        let mut agents = self.store.list_agents().await?;
        let mut first_error = None;
        for team in teams {
            // One broken team must not stop the others.
            let res = match schedule_of(&team) {
                Ok(schedule) => self.move_line(&team, schedule.as_ref(), &mut agents).await,
                Err(e) => Err(e),
            };
            if let Err(e) = res {
                tracing::warn!(team = %team.id, error = %e, "drain failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Announces what earlier attempts assigned but could not announce, then gives free
    /// agents to the waiting tickets in line order until the head cannot be served.
    async fn move_line(
        &self,
        team: &Team,
        schedule: Option<&Schedule>,
        agents: &mut Vec<Agent>,
    ) -> Result<(), AssignError> {
        let now = self.now().timestamp();
        let mut pending = self.store.unannounced(&team.id).await?;
        // Contacts not yet told first, then the notifications that have waited longest: with
        // a failing endpoint probed once per cool-down, every ticket gets its turn.
        pending.sort_by_key(|t| (t.contact_told, t.notify_retry_at.unwrap_or(i64::MIN)));
        for t in pending {
            if announce_due(&t, now) {
                let agent = t.agent.clone().unwrap_or_default();
                self.announce(team, &t, &agent, find(agents, &agent))
                    .await?;
            }
        }
        for ticket in self.store.waiting(&team.id).await? {
            let (av, assigned) = self.try_assign(team, schedule, agents, &ticket).await?;
            if assigned.is_none() && !matches!(av, Availability::Free(_)) {
                break;
            }
        }
        Ok(())
    }

    /// Tries to give one waiting ticket a free agent, in strategy order. Returns the
    /// availability seen and the agent, if assigned.
    async fn try_assign(
        &self,
        team: &Team,
        schedule: Option<&Schedule>,
        agents: &mut Vec<Agent>,
        ticket: &Ticket,
    ) -> Result<(Availability, Option<String>), AssignError> {
        let now = self.now();
        let av = availability(
            team.strategy,
            schedule,
            &team.id,
            &ticket.request.language,
            agents,
            now,
        );
        let Availability::Free(candidates) = &av else {
            return Ok((av, None));
        };
        for id in candidates {
            match self.store.assign(ticket, id, now.timestamp()).await? {
                AssignOutcome::Assigned => {
                    if let Some(a) = agents.iter_mut().find(|a| &a.id == id) {
                        a.open = a.open.saturating_add(1);
                        a.last_assigned_at = now.timestamp();
                    }
                    tracing::info!(conversation = %ticket.conversation_id, team = %team.id, agent = %id, "assigned");
                    let mut assigned = ticket.clone();
                    assigned.state = TicketState::Assigned;
                    assigned.agent = Some(id.clone());
                    assigned.assigned_at = Some(now.timestamp());
                    self.announce(team, &assigned, id, find(agents, id)).await?;
                    return Ok((av.clone(), Some(id.clone())));
                }
                AssignOutcome::AgentUnavailable => {
                    // Someone else filled the slot or the agent left: look again.
                    match self.store.get_agent(id).await? {
                        Some(fresh) => {
                            if let Some(a) = agents.iter_mut().find(|a| &a.id == id) {
                                *a = fresh;
                            }
                        }
                        None => agents.retain(|a| &a.id != id),
                    }
                }
                AssignOutcome::TicketTaken | AssignOutcome::ConversationClosed => {
                    return Ok((av.clone(), None))
                }
            }
        }
        let again = availability(
            team.strategy,
            schedule,
            &team.id,
            &ticket.request.language,
            agents,
            now,
        );
        Ok((again, None))
    }

    /// Tells the contact (unless an earlier attempt did), then tries the agent notification
    /// once, and records where that leaves the ticket. Only telling the contact can fail the
    /// job: a notification failure is this ticket's alone, retried a bounded number of times
    /// by later jobs of the team and the sweep, and never holds up the line.
    async fn announce(
        &self,
        team: &Team,
        ticket: &Ticket,
        agent_id: &str,
        agent: Option<&Agent>,
    ) -> Result<(), AssignError> {
        let agent = match agent {
            Some(a) => Some(a.clone()),
            None => self.store.get_agent(agent_id).await?,
        };
        let name = agent
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_else(|| agent_id.to_owned());
        // When it was assigned, as stored on the ticket: the same line however often the
        // announcement is tried.
        let at = ticket.assigned_at.unwrap_or(ticket.requested_at);
        let assigned = Event::Assigned {
            agent_id: agent_id.to_owned(),
            team: team.id.clone(),
        };
        let key = format!("{}:assigned:{agent_id}", ticket.job_id);
        let now = self.now().timestamp();
        self.store
            .record_event(&ticket.conversation_id, at, &key, assigned, now)
            .await?;
        if !ticket.contact_told {
            let vars = Vars {
                agent_name: Some(name.clone()),
                queue_position: None,
            };
            self.tell_contact(&ticket.request, team, MessageKind::Assigned, &vars, at)
                .await?;
        }
        self.push(
            agent_id,
            PushType::ConversationAssigned,
            &ticket.conversation_id,
        )
        .await;
        let step = self.notify_agent(team, ticket, agent_id, &name).await;
        self.store.record_announcement(ticket, step).await?;
        Ok(())
    }

    /// One attempt at the team's notification webhook for this ticket.
    async fn notify_agent(
        &self,
        team: &Team,
        ticket: &Ticket,
        agent_id: &str,
        name: &str,
    ) -> Announcement {
        let (Some(url), Some(notifier)) = (&team.notify_url, &self.notifier) else {
            return Announcement::Done;
        };
        let now = self.now().timestamp();
        let later = |attempts: u32| match notify_retry_after(attempts) {
            Some(wait) => Announcement::NotifyLater {
                attempts,
                retry_at: now.saturating_add(wait),
            },
            None => Announcement::Done,
        };
        if self.cooling_down(url, now) {
            // Not an attempt: the endpoint just failed for another ticket.
            return match later(ticket.notify_attempts.max(1)) {
                Announcement::NotifyLater { retry_at, .. } => Announcement::NotifyLater {
                    attempts: ticket.notify_attempts,
                    retry_at,
                },
                Announcement::Done => Announcement::Done,
            };
        }
        let facts = AssignmentFacts {
            request: &ticket.request,
            team_id: &team.id,
            agent_id,
            agent_name: name,
            assigned_at: ticket.assigned_at.unwrap_or(now),
            vip: ticket.vip,
        };
        match notifier.send(url, &payload(&facts), now).await {
            Ok(()) => Announcement::Done,
            Err(e @ NotifyError::Permanent(_)) => {
                tracing::error!(team = %team.id, conversation = %ticket.conversation_id, error = %e, "{NOTIFY_FAILED}: agent notification refused; not retried");
                Announcement::Done
            }
            Err(e @ NotifyError::Retryable(_)) => {
                self.cool_down(url, now);
                let attempts = ticket.notify_attempts.saturating_add(1);
                let step = later(attempts);
                match step {
                    Announcement::Done => {
                        tracing::error!(team = %team.id, conversation = %ticket.conversation_id, attempts, error = %e, "{NOTIFY_FAILED}: agent notification given up");
                    }
                    Announcement::NotifyLater { retry_at, .. } => {
                        tracing::warn!(team = %team.id, conversation = %ticket.conversation_id, attempts, retry_at, error = %e, "agent notification failed; will retry");
                    }
                }
                step
            }
        }
    }

    fn cooling_down(&self, url: &str, now: i64) -> bool {
        let map = self.cooling.lock().unwrap_or_else(|e| e.into_inner());
        map.get(url).is_some_and(|until| *until > now)
    }

    fn cool_down(&self, url: &str, now: i64) {
        let mut map = self.cooling.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, until| *until > now);
        map.insert(url.to_owned(), now.saturating_add(NOTIFY_COOL_DOWN_SECONDS));
    }

    async fn tell_contact(
        &self,
        req: &AssignRequest,
        team: &Team,
        kind: MessageKind,
        vars: &Vars,
        at: i64,
    ) -> Result<(), AssignError> {
        let now = self.now().timestamp();
        // The job carries the contact's last message before the hand-off; a contact who waited
        // in line may have written since, which the engine recorded on the conversation. Only
        // read it when the job's own time has run out of the window.
        let last_inbound_at = if inside_window(req.last_inbound_at, now) {
            req.last_inbound_at
        } else {
            self.store
                .last_inbound_at(&req.conversation_id)
                .await?
                .unwrap_or(req.last_inbound_at)
        };
        let Some(mut msg) = contact_message(req, team, kind, vars, last_inbound_at, now) else {
            tracing::warn!(conversation = %req.conversation_id, team = %team.id, kind = kind.as_str(), "outside the 24-hour window and no template configured: contact not told");
            return Ok(());
        };
        // Its transcript line first (`pending`, id from the message's dedup id and `at`, so a
        // retry writes the same line), then the message that names it.
        let entry = outbound_entry(&msg, at);
        msg.transcript = Some(TranscriptRef {
            conversation_id: req.conversation_id.clone(),
            entry_id: entry.id.clone(),
            agent_id: None,
        });
        self.store
            .record_lines(&req.conversation_id, &[entry], now)
            .await?;
        let message = QueueMessage::of(&msg).map_err(|e| AssignError::Invalid(e.to_string()))?;
        self.outbound.send_all(&[message]).await?;
        Ok(())
    }
}

/// The transcript line of a message the assigner sends the contact, at `at` (Unix seconds).
fn outbound_entry(msg: &OutboundMessage, at: i64) -> Entry {
    let body = match &msg.body {
        OutboundBody::Template { name, language, .. } => Body::Template {
            name: name.clone(),
            language: language.clone(),
        },
        OutboundBody::Text { body, .. } => Body::Text { text: body.clone() },
        _ => Body::Other {
            description: "message".to_owned(),
        },
    };
    let at_ms = at.saturating_mul(1000);
    Entry {
        id: transcript::event_entry_id(at_ms, transcript::EventRank::Message, &msg.dedup_id),
        at: at_ms,
        author: Author::Bot,
        body,
        status: Some(transcript::DeliveryStatus::Pending),
        wamid: None,
    }
}

/// Whether an assigned ticket still has something to announce now: the contact message, or an
/// agent notification whose retry is due.
fn announce_due(t: &Ticket, now: i64) -> bool {
    t.state == TicketState::Assigned
        && !t.announced
        && !(t.contact_told && t.notify_retry_at.is_some_and(|at| at > now))
}

fn find<'a>(agents: &'a [Agent], id: &str) -> Option<&'a Agent> {
    agents.iter().find(|a| a.id == id)
}

fn schedule_of(team: &Team) -> Result<Option<Schedule>, AssignError> {
    team.schedule()
        .map_err(|e| AssignError::Config(format!("team {:?}: {e}", team.id)))
}
