//! Hand-off tickets: a conversation's place in its team's waiting line, its assignment to an
//! agent and its announcement, as methods of [`RoutingStore`] (see the module doc of
//! [`super`] for why capacity is never exceeded).

use aws_sdk_dynamodb::types::Select;

use super::RoutingStore;
use crate::routing::job::AssignRequest;
use crate::store::item::{b, n, s, to_json, Item, ItemExt};
use crate::store::{attr, keys, StoreError};
use crate::transcript::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Waiting,
    Assigned,
    Closed,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Waiting => "waiting",
            TicketState::Assigned => "assigned",
            TicketState::Closed => "closed",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "waiting" => Some(TicketState::Waiting),
            "assigned" => Some(TicketState::Assigned),
            "closed" => Some(TicketState::Closed),
            _ => None,
        }
    }
}

/// One conversation's hand-off.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub conversation_id: String,
    pub job_id: String,
    pub team: String,
    pub state: TicketState,
    pub vip: bool,
    pub requested_at: i64,
    /// The job as received: what the contact messages and the agent notification are built from.
    pub request: AssignRequest,
    pub agent: Option<String>,
    pub assigned_at: Option<i64>,
    /// The contact and the agent were told about the assignment (or the agent notification
    /// was given up): the ticket left the announce list.
    pub announced: bool,
    /// The contact's assigned message went out.
    pub contact_told: bool,
    /// Failed attempts to notify the agent so far.
    pub notify_attempts: u32,
    /// When the next notification attempt is due (set after a retryable failure).
    pub notify_retry_at: Option<i64>,
    pub closed_at: Option<i64>,
}

impl Ticket {
    pub fn new(request: AssignRequest, team: String, vip: bool) -> Self {
        Ticket {
            conversation_id: request.conversation_id.clone(),
            job_id: request.job_id.clone(),
            team,
            state: TicketState::Waiting,
            vip,
            requested_at: request.requested_at,
            request,
            agent: None,
            assigned_at: None,
            announced: false,
            contact_told: false,
            notify_attempts: 0,
            notify_retry_at: None,
            closed_at: None,
        }
    }

    /// Sort key in the waiting line: VIP first, then oldest, then conversation id.
    pub fn line_key(&self) -> String {
        format!(
            "{}#{:012}#{}",
            if self.vip { 0 } else { 1 },
            self.requested_at.max(0),
            self.conversation_id
        )
    }
}

/// Result of opening a ticket for a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// A new ticket, waiting.
    New(Ticket),
    /// The conversation already has an open ticket, or this job's ticket exists (redelivery).
    Existing(Ticket),
}

/// Result of trying to give a ticket to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOutcome {
    Assigned,
    /// The agent went offline or is at capacity (a concurrent assignment won).
    AgentUnavailable,
    /// The ticket is no longer waiting (another assigner took it, or it was closed).
    TicketTaken,
    /// The conversation was closed meanwhile; the ticket has been closed too.
    ConversationClosed,
}

/// Result of moving an open ticket to another team or agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    /// Given to the agent (a slot taken under the capacity condition); the previous agent's
    /// slot is free.
    Assigned,
    /// Back in the (new) team's waiting line; the previous agent's slot is free.
    Waiting,
    /// The target agent is not online or has no free slot: nothing moved.
    AgentUnavailable,
    /// The ticket was closed or changed meanwhile: nothing moved.
    TicketChanged,
}

/// Where the announcement of an assignment stands after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// Contact told, agent notified (or not to be notified, or given up): leaves the list.
    Done,
    /// Contact told; the agent notification failed `attempts` times and is due again at
    /// `retry_at`.
    NotifyLater { attempts: u32, retry_at: i64 },
}

/// Result of closing a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Closed; the agent's slot (if it was assigned) is free again.
    Closed {
        team: String,
        agent: Option<String>,
    },
    AlreadyClosed,
    NotFound,
}

/// The ticket's team list of `state` ([`keys::team_list`]).
fn team_list(team: &str, state: TicketState) -> String {
    keys::team_list(team, state.as_str())
}

pub(super) fn ticket_from(item: &Item) -> Result<Ticket, StoreError> {
    let state =
        TicketState::parse(item.str_req("state")?).ok_or_else(|| item.corrupt("unknown state"))?;
    Ok(Ticket {
        conversation_id: item.str_req("conversation_id")?.to_owned(),
        job_id: item.str_req("job_id")?.to_owned(),
        team: item.str_req("team")?.to_owned(),
        state,
        vip: item
            .get("vip")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        requested_at: item.num_req("requested_at")?,
        request: item.json("request")?,
        agent: item.get("agent").and_then(|v| v.as_s().ok()).cloned(),
        assigned_at: item.num_opt("assigned_at"),
        announced: item.flag("announced"),
        contact_told: item.flag("contact_told"),
        notify_attempts: item.num_opt("notify_attempts").unwrap_or(0),
        notify_retry_at: item.num_opt("notify_retry_at"),
        closed_at: item.num_opt("closed_at"),
    })
}

impl RoutingStore {
    pub async fn get_ticket(&self, conversation_id: &str) -> Result<Option<Ticket>, StoreError> {
        self.get(keys::handoff(conversation_id))
            .await?
            .as_ref()
            .map(ticket_from)
            .transpose()
    }

    /// Opens a waiting ticket for the job, unless the conversation has an open ticket or this
    /// job was seen before (then the existing ticket is returned).
    pub async fn open_ticket(&self, ticket: &Ticket) -> Result<Opened, StoreError> {
        let mut item = keys::handoff(&ticket.conversation_id).item();
        item.insert("conversation_id".into(), s(&ticket.conversation_id));
        item.insert("job_id".into(), s(&ticket.job_id));
        item.insert("team".into(), s(&ticket.team));
        item.insert("state".into(), s(TicketState::Waiting.as_str()));
        item.insert("vip".into(), b(ticket.vip));
        item.insert("requested_at".into(), n(ticket.requested_at));
        item.insert("request".into(), s(to_json(&ticket.request)?));
        item.insert(attr::GSI1_PK.into(), s(keys::waiting_line(&ticket.team)));
        item.insert(attr::GSI1_SK.into(), s(ticket.line_key()));
        item.insert(
            attr::GSI2_PK.into(),
            s(keys::team_list(&ticket.team, TicketState::Waiting.as_str())),
        );
        item.insert(
            attr::GSI2_SK.into(),
            s(keys::activity_sort(
                ticket.requested_at,
                &ticket.conversation_id,
            )),
        );
        let put = self
            .client()
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            // A closed conversation may be handed off again, by a new job.
            .condition_expression(
                "attribute_not_exists(pk) OR (#state = :closed AND job_id <> :job)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":closed", s(TicketState::Closed.as_str()))
            .expression_attribute_values(":job", s(&ticket.job_id))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match put {
            Ok(_) => Ok(Opened::New(ticket.clone())),
            Err(StoreError::ConditionFailed(_)) => {
                match self.get_ticket(&ticket.conversation_id).await? {
                    Some(existing) => Ok(Opened::Existing(existing)),
                    None => Err(StoreError::Unavailable(
                        "ticket vanished after a conditional failure".into(),
                    )),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The tickets an agent held that were closed, newest first, at most `limit`.
    pub async fn closed_by(&self, agent_id: &str, limit: i32) -> Result<Vec<Ticket>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(&self.table.name)
            .index_name(attr::GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s(keys::closed_by_agent(agent_id)))
            .scan_index_forward(false)
            .limit(limit.max(1))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(ticket_from)
            .collect()
    }

    /// A team's waiting line in order (VIP first, then oldest).
    pub async fn waiting(&self, team: &str) -> Result<Vec<Ticket>, StoreError> {
        self.query_gsi(&keys::waiting_line(team), None)
            .await?
            .iter()
            .map(ticket_from)
            .collect()
    }

    /// Assigned tickets whose contact and agent were not yet told (an earlier attempt failed).
    pub async fn unannounced(&self, team: &str) -> Result<Vec<Ticket>, StoreError> {
        self.query_gsi(&keys::announce_list(team), None)
            .await?
            .iter()
            .map(ticket_from)
            .collect()
    }

    /// 1-based position of a waiting ticket in its team's line.
    pub async fn position(&self, ticket: &Ticket) -> Result<u32, StoreError> {
        let mut ahead: u32 = 0;
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(&self.table.name)
                .index_name(attr::GSI1)
                .key_condition_expression("gsi1pk = :p AND gsi1sk < :s")
                .expression_attribute_values(":p", s(keys::waiting_line(&ticket.team)))
                .expression_attribute_values(":s", s(ticket.line_key()))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            ahead = ahead.saturating_add(u32::try_from(out.count).unwrap_or(0));
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(ahead.saturating_add(1)),
            }
        }
    }

    /// Gives a waiting ticket to an agent, in three single-item conditional writes:
    /// reserve the agent's slot (`open < capacity`), move the ticket from `waiting` to
    /// `assigned` (still to be announced), record it on the conversation. A lost condition
    /// undoes the earlier steps. Not one transaction on purpose: each step is atomic on its
    /// own, a crash between steps leaves a reservation that [`RoutingStore::reconcile`] frees,
    /// and a cancelled transaction is what moto (our test server) implements by restoring the
    /// whole table, which would lose concurrent writes in the tests.
    pub async fn assign(
        &self,
        ticket: &Ticket,
        agent_id: &str,
        now: i64,
    ) -> Result<AssignOutcome, StoreError> {
        if !self.reserve(agent_id, &ticket.conversation_id, now).await? {
            return Ok(AssignOutcome::AgentUnavailable);
        }
        let take = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::handoff(&ticket.conversation_id).item()))
            .update_expression(
                "SET #state = :assigned, #agent = :agent, assigned_at = :now, announced = :no, gsi1pk = :g, \
                 gsi2pk = :tl, gsi2sk = :ts",
            )
            .condition_expression("#state = :waiting AND job_id = :job")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#agent", "agent")
            .expression_attribute_values(":assigned", s(TicketState::Assigned.as_str()))
            .expression_attribute_values(":waiting", s(TicketState::Waiting.as_str()))
            .expression_attribute_values(":agent", s(agent_id))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":no", b(false))
            .expression_attribute_values(":g", s(keys::announce_list(&ticket.team)))
            .expression_attribute_values(":tl", s(team_list(&ticket.team, TicketState::Assigned)))
            .expression_attribute_values(":ts", s(keys::activity_sort(now, &ticket.conversation_id)))
            .expression_attribute_values(":job", s(&ticket.job_id))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match take {
            Ok(_) => {}
            Err(StoreError::ConditionFailed(_)) => {
                self.release(agent_id, &ticket.conversation_id).await?;
                return Ok(AssignOutcome::TicketTaken);
            }
            Err(e) => {
                // Unknown whether the write happened: keep the reservation, reconcile decides.
                return Err(e);
            }
        }
        // Only the attributes the key layout grants the assigner on the conversation item.
        let record = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::conversation(&ticket.conversation_id).item()))
            .update_expression(
                "SET assigned_agent = :agent, assigned_team = :team, assigned_at = :now",
            )
            .condition_expression("attribute_not_exists(closed_at)")
            .expression_attribute_values(":agent", s(agent_id))
            .expression_attribute_values(":team", s(&ticket.team))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match record {
            Ok(_) => Ok(AssignOutcome::Assigned),
            Err(StoreError::ConditionFailed(_)) => {
                self.shut(ticket, TicketState::Assigned, "conversation", now, false)
                    .await?;
                self.release(agent_id, &ticket.conversation_id).await?;
                Ok(AssignOutcome::ConversationClosed)
            }
            Err(e) => Err(e),
        }
    }

    /// Frees reservations older than `grace` seconds whose ticket is not assigned to that agent
    /// (left by a crash between the steps of [`RoutingStore::assign`] or of a close).
    pub async fn reconcile(&self, now: i64, grace: i64) -> Result<u32, StoreError> {
        let mut freed = 0;
        for agent in self.list_agents().await? {
            for (conv, at) in self.reservations(&agent.id).await? {
                if now.saturating_sub(at) < grace {
                    continue;
                }
                let holds = self.get_ticket(&conv).await?.is_some_and(|t| {
                    t.state == TicketState::Assigned
                        && t.agent.as_deref() == Some(agent.id.as_str())
                });
                if !holds && self.release(&agent.id, &conv).await? {
                    freed += 1;
                }
            }
        }
        Ok(freed)
    }

    /// Records an announcement attempt on an assigned ticket, in one write: `Done` takes it
    /// off the announce index; `NotifyLater` keeps it there with the contact marked as told.
    /// A ticket closed meanwhile is left alone.
    pub async fn record_announcement(
        &self,
        ticket: &Ticket,
        step: Announcement,
    ) -> Result<(), StoreError> {
        let req = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::handoff(&ticket.conversation_id).item()))
            .condition_expression("#state = :assigned AND job_id = :job")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":yes", b(true))
            .expression_attribute_values(":assigned", s(TicketState::Assigned.as_str()))
            .expression_attribute_values(":job", s(&ticket.job_id));
        let req = match step {
            Announcement::Done => req.update_expression(
                "SET announced = :yes, contact_told = :yes REMOVE gsi1pk, gsi1sk, notify_retry_at",
            ),
            Announcement::NotifyLater { attempts, retry_at } => req
                .update_expression(
                    "SET contact_told = :yes, notify_attempts = :a, notify_retry_at = :r",
                )
                .expression_attribute_values(":a", n(attempts))
                .expression_attribute_values(":r", n(retry_at)),
        };
        match req.send().await.map_err(StoreError::from_sdk) {
            // Closed meanwhile: nothing left to announce.
            Ok(_) | Err(StoreError::ConditionFailed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The contact's latest inbound message as the survey engine recorded it on the
    /// conversation (`last_inbound_at`), if the conversation item has one.
    pub async fn last_inbound_at(&self, conversation_id: &str) -> Result<Option<i64>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::conversation(conversation_id).item()))
            .projection_expression("last_inbound_at")
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out.item.as_ref().and_then(|i| i.num_opt("last_inbound_at")))
    }

    /// Moves a ticket from `from` to `closed` (and out of the indexes). False when it was not
    /// in that state (any more).
    /// With `index_closed`, a ticket an agent held joins the agent's closed list
    /// ([`keys::closed_by_agent`]).
    async fn shut(
        &self,
        ticket: &Ticket,
        from: TicketState,
        by: &str,
        now: i64,
        index_closed: bool,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::handoff(&ticket.conversation_id).item()));
        // The team's closed list (gsi2) takes every close; the agent's (gsi1) those they held.
        let team_index = if index_closed {
            req = req
                .expression_attribute_values(":tl", s(team_list(&ticket.team, TicketState::Closed)))
                .expression_attribute_values(
                    ":cs",
                    s(keys::closed_sort(now, &ticket.conversation_id)),
                );
            (", gsi2pk = :tl, gsi2sk = :cs", "")
        } else {
            ("", ", gsi2pk, gsi2sk")
        };
        req = match ticket.agent.as_deref().filter(|_| index_closed) {
            Some(agent) => req
                .update_expression(format!(
                    "SET #state = :closed, closed_at = :now, closed_by = :by, gsi1pk = :cp, gsi1sk = :cs{}",
                    team_index.0
                ))
                .expression_attribute_values(":cp", s(keys::closed_by_agent(agent))),
            None => req.update_expression(format!(
                "SET #state = :closed, closed_at = :now, closed_by = :by{} REMOVE gsi1pk, gsi1sk{}",
                team_index.0, team_index.1
            )),
        };
        let res = req
            .condition_expression("#state = :from AND job_id = :job")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":closed", s(TicketState::Closed.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":by", s(by))
            .expression_attribute_values(":job", s(&ticket.job_id))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match res {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Closes a conversation's hand-off: a waiting one leaves the line; an assigned one frees
    /// its agent's slot. Records `closed_at`/`closed_by` on the conversation item. Safe to
    /// repeat: a close interrupted after the ticket step is finished by a second close or by
    /// [`RoutingStore::reconcile`].
    pub async fn close(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
    ) -> Result<CloseOutcome, StoreError> {
        // A concurrent assignment can move a waiting ticket to assigned between read and
        // write; the conditional write notices and the loop reads again.
        for _ in 0..3 {
            let Some(ticket) = self.get_ticket(conversation_id).await? else {
                return Ok(CloseOutcome::NotFound);
            };
            if ticket.state == TicketState::Closed {
                if let Some(agent) = &ticket.agent {
                    self.release(agent, conversation_id).await?;
                }
                return Ok(CloseOutcome::AlreadyClosed);
            }
            if self.shut(&ticket, ticket.state, by, now, true).await? {
                if let Some(agent) = &ticket.agent {
                    self.release(agent, conversation_id).await?;
                }
                self.record_closed(conversation_id, by, now).await?;
                let closed = Event::Closed { by: by.to_owned() };
                let key = format!("{}:closed", ticket.job_id);
                self.record_event(conversation_id, now, &key, closed, now)
                    .await?;
                return Ok(CloseOutcome::Closed {
                    team: ticket.team,
                    agent: ticket.agent,
                });
            }
        }
        Err(StoreError::Unavailable(format!(
            "closing {conversation_id}: the ticket kept changing"
        )))
    }

    /// Cancels a hand-off the contact left (stop, restart, end): a waiting ticket leaves the
    /// line, an assigned one frees its agent's slot, and the assignment is taken off the
    /// conversation item. Unlike [`RoutingStore::close`] the conversation itself is not marked
    /// closed: after a restart it goes on. A ticket requested after `requested_before` belongs
    /// to a later hand-off and is left alone (`NotFound`). Safe to repeat.
    pub async fn cancel(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
        requested_before: i64,
    ) -> Result<CloseOutcome, StoreError> {
        for _ in 0..3 {
            let Some(ticket) = self.get_ticket(conversation_id).await? else {
                return Ok(CloseOutcome::NotFound);
            };
            if ticket.requested_at > requested_before {
                return Ok(CloseOutcome::NotFound);
            }
            if ticket.state == TicketState::Closed {
                if let Some(agent) = &ticket.agent {
                    self.release(agent, conversation_id).await?;
                }
                return Ok(CloseOutcome::AlreadyClosed);
            }
            if self.shut(&ticket, ticket.state, by, now, false).await? {
                if let (Some(agent), Some(at)) = (&ticket.agent, ticket.assigned_at) {
                    self.release(agent, conversation_id).await?;
                    self.forget_assignment(conversation_id, agent, at).await?;
                }
                let closed = Event::Closed { by: by.to_owned() };
                let key = format!("{}:cancelled", ticket.job_id);
                self.record_event(conversation_id, now, &key, closed, now)
                    .await?;
                return Ok(CloseOutcome::Closed {
                    team: ticket.team,
                    agent: ticket.agent,
                });
            }
        }
        Err(StoreError::Unavailable(format!(
            "cancelling {conversation_id}: the ticket kept changing"
        )))
    }

    /// Moves an open ticket to `team`, either to `agent` or into the team's waiting line (at
    /// its original place by request time). The target agent's slot is taken with the same
    /// conditional write as an assignment (online, `open < capacity`), then the ticket moves
    /// under the condition that it is unchanged, then the previous agent's slot is given back
    /// and the conversation item records the new assignment. A lost condition undoes the
    /// reservation; a crash in between leaves a reservation [`RoutingStore::reconcile`] frees.
    pub async fn transfer(
        &self,
        ticket: &Ticket,
        team: &str,
        agent: Option<&str>,
        now: i64,
    ) -> Result<TransferOutcome, StoreError> {
        let conv = ticket.conversation_id.as_str();
        if ticket.state == TicketState::Closed {
            return Ok(TransferOutcome::TicketChanged);
        }
        let same_agent = agent.is_some() && agent == ticket.agent.as_deref();
        if let Some(to) = agent.filter(|_| !same_agent) {
            if !self.reserve(to, conv, now).await? {
                return Ok(TransferOutcome::AgentUnavailable);
            }
        }
        let moved = Ticket {
            team: team.to_owned(),
            ..ticket.clone()
        };
        let mut req = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::handoff(conv).item()))
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#agent", "agent")
            .expression_attribute_values(":team", s(team))
            .expression_attribute_values(":from", s(ticket.state.as_str()))
            .expression_attribute_values(":job", s(&ticket.job_id));
        req = match agent {
            Some(to) => req
                .update_expression(
                    "SET team = :team, #state = :assigned, #agent = :to, assigned_at = :now, \
                     announced = :yes, contact_told = :yes, gsi2pk = :tl, gsi2sk = :ts \
                     REMOVE gsi1pk, gsi1sk",
                )
                .expression_attribute_values(":tl", s(team_list(team, TicketState::Assigned)))
                .expression_attribute_values(":ts", s(keys::activity_sort(now, conv)))
                .expression_attribute_values(":assigned", s(TicketState::Assigned.as_str()))
                .expression_attribute_values(":to", s(to))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":yes", b(true)),
            None => req
                .update_expression(
                    "SET team = :team, #state = :waiting, gsi1pk = :g, gsi1sk = :ls, \
                     gsi2pk = :tl, gsi2sk = :ts REMOVE #agent, assigned_at",
                )
                .expression_attribute_values(":tl", s(team_list(team, TicketState::Waiting)))
                .expression_attribute_values(
                    ":ts",
                    s(keys::activity_sort(ticket.requested_at, conv)),
                )
                .expression_attribute_values(":waiting", s(TicketState::Waiting.as_str()))
                .expression_attribute_values(":g", s(keys::waiting_line(team)))
                .expression_attribute_values(":ls", s(moved.line_key())),
        };
        req = match &ticket.agent {
            Some(old) => req
                .condition_expression("#state = :from AND job_id = :job AND #agent = :old")
                .expression_attribute_values(":old", s(old)),
            None => req.condition_expression(
                "#state = :from AND job_id = :job AND attribute_not_exists(#agent)",
            ),
        };
        match req.send().await.map_err(StoreError::from_sdk) {
            Ok(_) => {}
            Err(StoreError::ConditionFailed(_)) => {
                if let Some(to) = agent.filter(|_| !same_agent) {
                    self.release(to, conv).await?;
                }
                return Ok(TransferOutcome::TicketChanged);
            }
            Err(e) => return Err(e),
        }
        if let Some(old) = ticket.agent.as_deref().filter(|_| !same_agent) {
            self.release(old, conv).await?;
        }
        match agent {
            Some(to) => {
                self.client()
                    .update_item()
                    .table_name(&self.table.name)
                    .set_key(Some(keys::conversation(conv).item()))
                    .update_expression(
                        "SET assigned_agent = :agent, assigned_team = :team, assigned_at = :now",
                    )
                    .expression_attribute_values(":agent", s(to))
                    .expression_attribute_values(":team", s(team))
                    .expression_attribute_values(":now", n(now))
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                Ok(TransferOutcome::Assigned)
            }
            None => {
                if let (Some(old), Some(at)) = (&ticket.agent, ticket.assigned_at) {
                    self.forget_assignment(conv, old, at).await?;
                }
                Ok(TransferOutcome::Waiting)
            }
        }
    }

    /// Removes what [`RoutingStore::assign`] recorded on the conversation, unless a later
    /// assignment replaced it.
    async fn forget_assignment(
        &self,
        conversation_id: &str,
        agent: &str,
        assigned_at: i64,
    ) -> Result<(), StoreError> {
        let res = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::conversation(conversation_id).item()))
            .update_expression("REMOVE assigned_agent, assigned_team, assigned_at")
            .condition_expression("assigned_agent = :agent AND assigned_at = :at")
            .expression_attribute_values(":agent", s(agent))
            .expression_attribute_values(":at", n(assigned_at))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match res {
            Ok(_) | Err(StoreError::ConditionFailed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn record_closed(
        &self,
        conversation_id: &str,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::conversation(conversation_id).item()))
            .update_expression("SET closed_at = :now, closed_by = :by")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":by", s(by))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::job::HandoffReason;
    use crate::whatsapp::ContactRef;

    fn ticket(conv: &str, vip: bool, at: i64) -> Ticket {
        let req = AssignRequest {
            job_id: format!("job-{conv}"),
            phone_number_id: "1".into(),
            contact: ContactRef {
                wa_id: Some("16505551234".into()),
                ..Default::default()
            },
            conversation_id: conv.into(),
            language: "en".into(),
            reason: HandoffReason::Requested,
            answers: Default::default(),
            fields: Default::default(),
            last_inbound_at: at,
            requested_at: at,
            supersedes: false,
            vars: Default::default(),
        };
        Ticket::new(req, "t".into(), vip)
    }

    #[test]
    fn line_keys_sort_vip_first_then_oldest() {
        let mut keys = [
            ticket("c", false, 1_700_000_000).line_key(),
            ticket("a", false, 999).line_key(),
            ticket("v", true, 1_800_000_000).line_key(),
            ticket("b", false, 1_700_000_000).line_key(),
        ];
        keys.sort();
        let convs: Vec<&str> = keys.iter().map(|k| k.rsplit('#').next().unwrap()).collect();
        assert_eq!(convs, ["v", "a", "b", "c"]);
    }

    #[test]
    fn tickets_round_trip_through_items() {
        let t = ticket("c1", true, 42);
        let mut item = keys::handoff("c1").item();
        item.insert("conversation_id".into(), s("c1"));
        item.insert("job_id".into(), s("job-c1"));
        item.insert("team".into(), s("t"));
        item.insert("state".into(), s("waiting"));
        item.insert("vip".into(), b(true));
        item.insert("requested_at".into(), n(42));
        item.insert(
            "request".into(),
            s(serde_json::to_string(&t.request).unwrap()),
        );
        assert_eq!(ticket_from(&item).unwrap(), t);
        item.insert("state".into(), s("lost"));
        assert!(matches!(
            ticket_from(&item),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
