//! agent-assigner: consumes the assignment FIFO queue.
//!
//! `Assign` jobs: route the conversation to a team (rules, VIP list), open its hand-off ticket
//! (idempotent by conversation and `job_id`), let the team's line move (the oldest waiting
//! tickets, VIP first, get any free agents), and tell the contact what happens next: the
//! assigned message, or the away / overload message with the queue position.
//! `Drain` jobs (admin commands when capacity frees, and the scheduled sweep with
//! `team_id = "*"`): let one team's line, or every team's, move.
//!
//! Every assignment is announced exactly once in effect: the contact message has a
//! deterministic dedup id and the agent notification a stable delivery id; a ticket stays in the
//! team's announce list until both went out, so a failed attempt is finished by the retry,
//! the next job of the team or the sweep.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};

use super::sqs::{process_fifo_batch, Handled, Retry};
use crate::config::EnvReader;
use crate::queue::{MessageQueue, QueueError, QueueMessage, SqsQueue};
use crate::routing::hours::Schedule;
use crate::routing::job::{AssignRequest, AssignmentJob};
use crate::routing::messages::{contact_message, Vars};
use crate::routing::model::{Agent, MessageKind, Team};
use crate::routing::notify::{payload, AssignmentFacts, NotifyError, WebhookNotifier};
use crate::routing::strategy::{availability, Availability};
use crate::secrets::{self, SecretError};
use crate::store::routing_store::{AssignOutcome, Opened, RoutingStore, Ticket, TicketState};
use crate::store::{DynamoTable, StoreError};
use crate::telemetry::redact;

/// The secret shared with the teams' notification endpoints (optional: without it, no
/// notifications are sent).
pub const WEBHOOK_SECRET: &str = "PRECHAT_AGENT_WEBHOOK_SECRET";

/// A reservation younger than this may belong to an assignment still in flight.
const RECONCILE_GRACE_SECONDS: i64 = 120;

pub use super::InitError;

#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Notify(NotifyError),
    /// Missing or invalid routing configuration: retried (then parked in the DLQ, alarmed)
    /// so the conversation is not lost while an admin fixes it.
    #[error("routing configuration: {0}")]
    Config(String),
    /// The job itself can never be handled.
    #[error("invalid job: {0}")]
    Invalid(String),
}

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

/// Where "now" comes from (tests pin it to check business hours).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct AgentAssigner<Q: MessageQueue = SqsQueue> {
    store: RoutingStore,
    outbound: Q,
    notifier: Option<WebhookNotifier>,
    clock: Clock,
}

impl AgentAssigner<SqsQueue> {
    /// `PRECHAT_TABLE`, `PRECHAT_OUTBOUND_QUEUE_URL`, optional secret
    /// `PRECHAT_AGENT_WEBHOOK_SECRET` (`_PARAM` in AWS).
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let mut env = EnvReader::from_env();
        let table = env.required("PRECHAT_TABLE");
        let outbound = env.required("PRECHAT_OUTBOUND_QUEUE_URL");
        env.finish()?;
        // The webhook secret is optional; `load` also fetches the log-redaction key, so it is
        // called even with no secret of our own.
        let configured = match secrets::resolve_source(WEBHOOK_SECRET, |k| std::env::var(k).ok()) {
            Err(SecretError::NotConfigured(_)) => false,
            Err(e) => return Err(e.into()),
            Ok(_) => true,
        };
        let names: &[&str] = if configured { &[WEBHOOK_SECRET] } else { &[] };
        let loaded = secrets::load(&aws_sdk_ssm::Client::new(sdk), names).await?;
        let notifier = match loaded.into_iter().next() {
            Some(secret) => Some(WebhookNotifier::new(secret)?),
            None => {
                tracing::warn!("{WEBHOOK_SECRET} is not configured: agents are not notified");
                None
            }
        };
        let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(sdk), table);
        let outbound = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), outbound);
        Ok(Self::new(
            RoutingStore::new(table),
            outbound,
            notifier,
            Arc::new(Utc::now),
        ))
    }
}

fn is_safe_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_graphic())
}

impl<Q: MessageQueue> AgentAssigner<Q> {
    pub fn new(
        store: RoutingStore,
        outbound: Q,
        notifier: Option<WebhookNotifier>,
        clock: Clock,
    ) -> Self {
        AgentAssigner {
            store,
            outbound,
            notifier,
            clock,
        }
    }

    pub fn store(&self) -> &RoutingStore {
        &self.store
    }

    /// The Lambda handler: the batch in order, stopping at the first retryable failure.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        process_fifo_batch(event, |m| self.handle_message(m)).await
    }

    async fn handle_message(&self, message: SqsMessage) -> Result<Handled, Retry> {
        let body = message.body.unwrap_or_default();
        let job: AssignmentJob = match serde_json::from_str(&body) {
            Ok(job) => job,
            // serde's message may quote the body: only category and position are kept.
            Err(e) => {
                let reason = crate::telemetry::json_error(&e);
                return Ok(Handled::Discarded(format!(
                    "not an assignment job: {reason}"
                )));
            }
        };
        let result = match job {
            AssignmentJob::Assign(req) => self.assign(req).await.map(|o| {
                tracing::info!(outcome = ?o, "assign job done");
            }),
            AssignmentJob::Drain { team_id, reason } => {
                tracing::info!(team = %team_id, %reason, "drain job");
                self.drain(&team_id).await
            }
        };
        match result {
            Ok(()) => Ok(Handled::Done),
            Err(AssignError::Invalid(reason)) => Ok(Handled::Discarded(reason)),
            Err(e) => Err(Retry(e.to_string())),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
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
        tracing::info!(conversation = %req.conversation_id, contact = %redact(contact_key), team = %team.id, vip = route.vip, rule = ?route.rule, "routing");
        let ticket = match self
            .store
            .open_ticket(&Ticket::new(req.clone(), team.id.clone(), route.vip))
            .await?
        {
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
        let vars = Vars {
            agent_name: None,
            queue_position: Some(position),
        };
        self.tell_contact(&current.request, &team, kind, &vars)
            .await?;
        Ok(JobOutcome::Waiting { kind, position })
    }

    async fn finish_assigned(
        &self,
        team: &Team,
        ticket: &Ticket,
    ) -> Result<JobOutcome, AssignError> {
        let agent = ticket.agent.clone().unwrap_or_default();
        if !ticket.announced {
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
        for t in self.store.unannounced(&team.id).await? {
            if t.state == TicketState::Assigned {
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

    /// Tells the contact and the agent, then takes the ticket off the announce list.
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
        let vars = Vars {
            agent_name: Some(name.clone()),
            queue_position: None,
        };
        self.tell_contact(&ticket.request, team, MessageKind::Assigned, &vars)
            .await?;
        if let (Some(url), Some(notifier)) = (&team.notify_url, &self.notifier) {
            let facts = AssignmentFacts {
                request: &ticket.request,
                team_id: &team.id,
                agent_id,
                agent_name: &name,
                assigned_at: ticket.assigned_at.unwrap_or_else(|| self.now().timestamp()),
                vip: ticket.vip,
            };
            match notifier
                .send(url, &payload(&facts), self.now().timestamp())
                .await
            {
                Ok(()) => {}
                Err(e @ NotifyError::Retryable(_)) => return Err(AssignError::Notify(e)),
                Err(e @ NotifyError::Permanent(_)) => {
                    tracing::error!(team = %team.id, conversation = %ticket.conversation_id, error = %e, "agent notification refused; not retried");
                }
            }
        }
        self.store.mark_announced(ticket).await?;
        Ok(())
    }

    async fn tell_contact(
        &self,
        req: &AssignRequest,
        team: &Team,
        kind: MessageKind,
        vars: &Vars,
    ) -> Result<(), AssignError> {
        let Some(msg) = contact_message(req, team, kind, vars, self.now().timestamp()) else {
            tracing::warn!(conversation = %req.conversation_id, team = %team.id, kind = kind.as_str(), "outside the 24-hour window and no template configured: contact not told");
            return Ok(());
        };
        let body = serde_json::to_string(&msg).map_err(|e| AssignError::Invalid(e.to_string()))?;
        self.outbound
            .send_all(&[QueueMessage::fifo(body, &msg.group_id(), &msg.dedup_id)])
            .await?;
        Ok(())
    }
}

fn find<'a>(agents: &'a [Agent], id: &str) -> Option<&'a Agent> {
    agents.iter().find(|a| a.id == id)
}

fn schedule_of(team: &Team) -> Result<Option<Schedule>, AssignError> {
    team.validate()
        .map_err(|e| AssignError::Config(format!("team {:?}: {e}", team.id)))
}
