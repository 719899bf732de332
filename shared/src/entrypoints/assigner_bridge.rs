//! The assigner's side of the help-desk bridge: `Relay`, `Transfer` and `Closed` jobs, and the
//! delivery of the team webhook's events ([`crate::routing::bridge`]).
//!
//! Retries (why not SQS redelivery): a job that fails with a retryable error blocks its FIFO
//! group, the contact, for the visibility timeout (180 s) up to `maxReceiveCount` (5) times,
//! so a help desk that is down would hold the contact's transfer and cancel jobs for 15 minutes
//! and then park the message in the DLQ. Instead, as with the assignment notification, a
//! delivery that fails retryably is kept on the conversation ([`PendingDelivery`]) and the job
//! succeeds; later deliveries of the same conversation queue behind it (the help desk gets a
//! conversation's events in order), and the scheduled sweep and every later delivery of the
//! conversation try again with back-off ([`notify_retry_after`]: 1, 2, 4, 8 min). After
//! [`MAX_NOTIFY_ATTEMPTS`] failures, or a refusal (4xx), the delivery is logged as
//! [`NOTIFY_FAILED`] (the `AgentNotificationFailures` metric) and dropped; the transcript
//! still holds every message, and the help desk catches up with
//! `GET /api/conversations/{id}?after=...`.

use super::*;
use crate::routing::bridge::{self, CloseFacts, Delivery, TransferFacts};
use crate::routing::job::{ClosedNotice, RelayRequest, TransferRequest, TransferTarget};
use crate::routing::strategy::availability;
use crate::store::routing::{PendingDelivery, TransferOutcome};

/// What happened to one webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Posted (2xx), or refused / given up (logged).
    Done,
    /// The team has no webhook (or no secret is configured): nothing to post.
    NoWebhook,
    /// Kept for a later attempt (it failed, or older ones of the conversation are pending).
    Pending,
}

/// What a `Relay` job came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// Assigned: the message went to the team's webhook (see [`Delivered`]).
    Relayed(Delivered),
    /// Waiting in line: the agent reads it in the transcript on assignment.
    Waiting,
    /// No open hand-off.
    NothingOpen,
}

/// What a `Transfer` job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferResult {
    /// With the agent now (the one asked for, or one of the team's line).
    Assigned { team: String, agent: String },
    /// In the team's line (a team was asked for, or the agent asked for was full or away).
    Waiting { team: String },
    /// The hand-off was closed, or is a later one than the transfer was asked for.
    NothingOpen,
}

enum Step {
    Done,
    Later { attempts: u32, retry_at: i64 },
}

impl<Q: MessageQueue, D: DeadLetters> AgentAssigner<Q, D> {
    /// Handles a `Relay` job: an assigned conversation's message goes to its team's webhook
    /// as `message.created`; a waiting one's stays in the transcript only.
    pub async fn relay(&self, req: RelayRequest) -> Result<RelayOutcome, AssignError> {
        check_ids(&req.conversation_id, &req.job_id)?;
        let Some(ticket) = self.store.get_ticket(&req.conversation_id).await? else {
            return Ok(RelayOutcome::NothingOpen);
        };
        let agent = match (ticket.state, &ticket.agent) {
            (TicketState::Assigned, Some(agent)) => agent,
            (TicketState::Waiting, _) | (TicketState::Assigned, None) => {
                return Ok(RelayOutcome::Waiting)
            }
            (TicketState::Closed, _) => return Ok(RelayOutcome::NothingOpen),
        };
        if let Ok(entry) = serde_json::to_value(&req.entry) {
            let at = req.entry.at;
            let event = PushEvent::entry(PushType::MessageCreated, &ticket.conversation_id, entry, at);
            push_opt(self.pusher_port(), agent, event).await;
        }
        let d = bridge::message_created(&ticket.conversation_id, &ticket.team, agent, &req.entry)
            .map_err(|e| AssignError::Invalid(e.to_string()))?;
        Ok(RelayOutcome::Relayed(self.deliver(d).await?))
    }

    /// Handles a `Closed` job (a close outside the assigner): `conversation.closed`.
    pub async fn closed_notice(&self, n: ClosedNotice) -> Result<Delivered, AssignError> {
        check_ids(&n.conversation_id, &n.job_id)?;
        if let Some(agent) = &n.agent_id {
            self.push(agent, PushType::ConversationClosed, &n.conversation_id)
                .await;
        }
        let d = bridge::closed(&CloseFacts {
            conversation_id: &n.conversation_id,
            handoff_job_id: &n.handoff_job_id,
            team_id: &n.team_id,
            agent_id: n.agent_id.as_deref(),
            closed_by: &n.closed_by,
            closed_at: n.closed_at,
        })
        .map_err(|e| AssignError::Invalid(e.to_string()))?;
        self.deliver(d).await
    }

    /// `conversation.closed` for a hand-off the assigner itself closed (the contact left).
    pub(super) async fn post_closed(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
    ) -> Result<(), AssignError> {
        let Some(t) = self.store.get_ticket(conversation_id).await? else {
            return Ok(());
        };
        let d = bridge::closed(&CloseFacts {
            conversation_id,
            handoff_job_id: &t.job_id,
            team_id: &t.team,
            agent_id: t.agent.as_deref(),
            closed_by: by,
            closed_at: t.closed_at.unwrap_or(now),
        })
        .map_err(|e| AssignError::Invalid(e.to_string()))?;
        self.deliver(d).await?;
        Ok(())
    }

    /// Handles a `Transfer` job: moves the ticket under the capacity rules (an agent who is
    /// full or away means the team's line), lets the lines move, records the transcript line,
    /// tells the contact and the (new) team's webhook.
    pub async fn transfer(&self, req: TransferRequest) -> Result<TransferResult, AssignError> {
        check_ids(&req.conversation_id, &req.job_id)?;
        for _ in 0..3 {
            let Some(ticket) = self.store.get_ticket(&req.conversation_id).await? else {
                return Ok(TransferResult::NothingOpen);
            };
            if ticket.state == TicketState::Closed || ticket.requested_at > req.requested_at {
                return Ok(TransferResult::NothingOpen);
            }
            let (team_id, agent) = self.target(&req.to, &ticket).await?;
            let team = self.team(&team_id).await?;
            let now = self.now().timestamp();
            let mut outcome = self
                .store
                .transfer(&ticket, &team.id, agent.as_deref(), now)
                .await?;
            if outcome == TransferOutcome::AgentUnavailable {
                tracing::info!(conversation = %req.conversation_id, team = %team.id, "transfer target has no free slot: into the team's line");
                outcome = self.store.transfer(&ticket, &team.id, None, now).await?;
            }
            if outcome == TransferOutcome::TicketChanged {
                continue;
            }
            return self.after_transfer(&req, &ticket, &team, outcome).await;
        }
        Err(AssignError::Store(StoreError::Unavailable(format!(
            "transferring {}: the ticket kept changing",
            req.conversation_id
        ))))
    }

    /// The team and agent a transfer goes to: a team's line, or an agent in the ticket's team
    /// when they belong to it, else in their first team. An agent who no longer exists means
    /// the ticket's own team's line.
    async fn target(
        &self,
        to: &TransferTarget,
        ticket: &Ticket,
    ) -> Result<(String, Option<String>), AssignError> {
        Ok(match to {
            TransferTarget::Team(team) => (team.clone(), None),
            TransferTarget::Agent(id) => match self.store.get_agent(id).await? {
                Some(a) => {
                    let team = if a.teams.contains(&ticket.team) {
                        ticket.team.clone()
                    } else {
                        a.teams
                            .first()
                            .cloned()
                            .unwrap_or_else(|| ticket.team.clone())
                    };
                    (team, Some(a.id))
                }
                None => (ticket.team.clone(), None),
            },
        })
    }

    async fn after_transfer(
        &self,
        req: &TransferRequest,
        before: &Ticket,
        team: &Team,
        outcome: TransferOutcome,
    ) -> Result<TransferResult, AssignError> {
        let schedule = schedule_of(team)?;
        let mut agents = self.store.list_agents().await?;
        if outcome == TransferOutcome::Waiting {
            self.move_line(team, schedule.as_ref(), &mut agents).await?;
        }
        if before.agent.is_some() && before.team != team.id {
            // The previous agent's slot is free: their team's line moves too.
            if let Some(old) = self.store.get_team(&before.team).await? {
                let old_schedule = schedule_of(&old)?;
                self.move_line(&old, old_schedule.as_ref(), &mut agents)
                    .await?;
            }
        }
        let now = self.now().timestamp();
        let current = self
            .store
            .get_ticket(&req.conversation_id)
            .await?
            .filter(|t| t.job_id == before.job_id && t.state != TicketState::Closed);
        let Some(current) = current else {
            return Ok(TransferResult::NothingOpen);
        };
        let to_agent = current
            .agent
            .clone()
            .filter(|_| current.state == TicketState::Assigned);
        self.store
            .record_event(
                &req.conversation_id,
                req.requested_at,
                &format!("{}:transferred", req.job_id),
                Event::Transferred {
                    from_agent: before.agent.clone(),
                    to_team: team.id.clone(),
                    to_agent: to_agent.clone(),
                },
                now,
            )
            .await?;
        // The contact message's dedup ids come from the transfer job, not the hand-off's.
        let mut request = current.request.clone();
        request.job_id = req.job_id.clone();
        match &to_agent {
            // Assigned from the line to a contact who had not heard of an agent yet: the
            // line's announcement told them.
            Some(_) if outcome == TransferOutcome::Waiting && !before.contact_told => {}
            Some(agent_id) => {
                let name = match find(&agents, agent_id) {
                    Some(a) => a.name.clone(),
                    None => agent_id.clone(),
                };
                let vars = Vars {
                    agent_name: Some(name),
                    queue_position: None,
                };
                self.tell_contact(
                    &request,
                    team,
                    MessageKind::Transferred,
                    &vars,
                    req.requested_at,
                )
                .await?;
            }
            None => {
                let kind = match availability(
                    team.strategy,
                    schedule.as_ref(),
                    &team.id,
                    &current.request.language,
                    &agents,
                    self.now(),
                ) {
                    Availability::Closed | Availability::NobodyOnline => MessageKind::Away,
                    Availability::AllBusy | Availability::Free(_) => MessageKind::Overload,
                };
                let vars = Vars {
                    agent_name: None,
                    queue_position: Some(self.store.position(&current).await?),
                };
                self.tell_contact(&request, team, kind, &vars, req.requested_at)
                    .await?;
                self.push_line(team, &agents, &req.conversation_id).await;
            }
        }
        match (&before.agent, &to_agent) {
            (Some(from), Some(to)) if from == to => {}
            (from, to) => {
                if let Some(from) = from {
                    self.push(from, PushType::ConversationTransferred, &req.conversation_id)
                        .await;
                }
                if let Some(to) = to {
                    self.push(to, PushType::ConversationAssigned, &req.conversation_id)
                        .await;
                }
            }
        }
        let d = bridge::transferred(&TransferFacts {
            conversation_id: &req.conversation_id,
            job_id: &req.job_id,
            from_team: &before.team,
            from_agent: before.agent.as_deref(),
            to_team: &team.id,
            to_agent: to_agent.as_deref(),
            by: &req.by,
            at: req.requested_at,
        })
        .map_err(|e| AssignError::Invalid(e.to_string()))?;
        self.deliver(d).await?;
        tracing::info!(conversation = %req.conversation_id, team = %team.id, assigned = to_agent.is_some(), "transferred");
        Ok(match to_agent {
            Some(agent) => TransferResult::Assigned {
                team: team.id.clone(),
                agent,
            },
            None => TransferResult::Waiting {
                team: team.id.clone(),
            },
        })
    }

    /// Posts `d` to its team's webhook, after the conversation's pending deliveries (a
    /// conversation's events reach the help desk in order); a retryable failure keeps it.
    pub async fn deliver(&self, d: Delivery) -> Result<Delivered, AssignError> {
        if self.notifier.is_none() || self.webhook_of(&d.team_id).await?.is_none() {
            return Ok(Delivered::NoWebhook);
        }
        let pending = self.store.pending_deliveries(&d.conversation_id).await?;
        if let Some(head) = pending.first() {
            if !pending
                .iter()
                .any(|p| p.delivery.delivery_id == d.delivery_id)
            {
                let behind = PendingDelivery {
                    delivery: d.clone(),
                    attempts: 0,
                    retry_at: head.retry_at,
                };
                self.store.keep_delivery(&behind).await?;
            }
            self.flush(&d.conversation_id).await?;
            let left = self.store.pending_deliveries(&d.conversation_id).await?;
            return Ok(if left.iter().any(|p| p.delivery == d) {
                Delivered::Pending
            } else {
                Delivered::Done
            });
        }
        match self.attempt(&d, 0).await? {
            Step::Done => Ok(Delivered::Done),
            Step::Later { attempts, retry_at } => {
                self.store
                    .keep_delivery(&PendingDelivery {
                        delivery: d,
                        attempts,
                        retry_at,
                    })
                    .await?;
                Ok(Delivered::Pending)
            }
        }
    }

    /// Tries a conversation's pending deliveries, oldest first, while they go out.
    async fn flush(&self, conversation_id: &str) -> Result<(), AssignError> {
        let now = self.now().timestamp();
        for p in self.store.pending_deliveries(conversation_id).await? {
            if p.retry_at > now {
                break;
            }
            match self.attempt(&p.delivery, p.attempts).await? {
                Step::Done => self.store.forget_delivery(&p.delivery).await?,
                Step::Later { attempts, retry_at } => {
                    self.store
                        .keep_delivery(&PendingDelivery {
                            attempts,
                            retry_at,
                            ..p
                        })
                        .await?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// The sweep's part: every conversation with a delivery due.
    pub(super) async fn flush_due(&self) -> Result<(), AssignError> {
        let now = self.now().timestamp();
        let mut first_error = None;
        for conv in self.store.conversations_with_due_deliveries(now).await? {
            if let Err(e) = self.flush(&conv).await {
                tracing::warn!(conversation = %conv, error = %e, "pending webhook deliveries failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn webhook_of(&self, team_id: &str) -> Result<Option<String>, AssignError> {
        Ok(self
            .store
            .get_team(team_id)
            .await?
            .and_then(|t| t.notify_url))
    }

    /// One attempt at a delivery that failed `attempts` times before.
    async fn attempt(&self, d: &Delivery, attempts: u32) -> Result<Step, AssignError> {
        let (Some(url), Some(notifier)) = (self.webhook_of(&d.team_id).await?, &self.notifier)
        else {
            return Ok(Step::Done);
        };
        let now = self.now().timestamp();
        if self.cooling_down(&url, now) {
            // Not an attempt: the endpoint just failed for another delivery.
            return Ok(Step::Later {
                attempts,
                retry_at: now.saturating_add(NOTIFY_COOL_DOWN_SECONDS),
            });
        }
        match notifier
            .post(&url, &d.delivery_id, d.body.as_bytes(), now)
            .await
        {
            Ok(()) => Ok(Step::Done),
            Err(e @ NotifyError::Permanent(_)) => {
                tracing::error!(team = %d.team_id, conversation = %d.conversation_id, delivery = %d.delivery_id, error = %e, "{NOTIFY_FAILED}: webhook delivery refused; not retried");
                Ok(Step::Done)
            }
            Err(e @ NotifyError::Retryable(_)) => {
                self.cool_down(&url, now);
                let attempts = attempts.saturating_add(1);
                match notify_retry_after(attempts) {
                    Some(wait) => {
                        tracing::warn!(team = %d.team_id, conversation = %d.conversation_id, attempts, error = %e, "webhook delivery failed; will retry");
                        Ok(Step::Later {
                            attempts,
                            retry_at: now.saturating_add(wait),
                        })
                    }
                    None => {
                        tracing::error!(team = %d.team_id, conversation = %d.conversation_id, delivery = %d.delivery_id, attempts, error = %e, "{NOTIFY_FAILED}: webhook delivery given up");
                        Ok(Step::Done)
                    }
                }
            }
        }
    }
}

fn check_ids(conversation_id: &str, job_id: &str) -> Result<(), AssignError> {
    if is_safe_id(conversation_id) && is_safe_id(job_id) {
        Ok(())
    } else {
        Err(AssignError::Invalid(
            "conversation_id and job_id must be 1-200 printable ASCII characters".into(),
        ))
    }
}
