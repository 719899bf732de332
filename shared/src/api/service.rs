//! The agent API itself: one request in ([`ApiRequest`], plain data), one response out
//! ([`ApiResponse`]), on the ports of [`super::ports`], the outbound and assignment queues, the
//! transcript and the survey catalogue. The Lambda glue is `entrypoints::agent_api`.
//!
//! Order of checks: the principal (401), the route (404/405), the input (400/413), the
//! conversation and the caller's access to it (404 when unknown or not theirs), its state
//! (409), then the effect.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::auth::{self, AuthConfig, Principal};
use super::error::ApiError;
use super::policy::ListScope;
use super::policy::{self, Access, Facts, HandoffState};
use super::ports::{
    AgentDirectory, ConversationRecord, Conversations, Handoffs, Idempotency, StoredResponse,
};
use super::route::{self, ListQuery, ListState, Reply, Route, TransferTo};
use crate::clock::Clock;
use crate::queue::{MessageQueue, QueueMessage};
use crate::routing::job::{
    drain_messages, AssignmentJob, ClosedNotice, TransferRequest, TransferTarget,
};
use crate::routing::model::{Agent, AgentStatus};
use crate::store::keys;
use crate::store::routing::{CloseOutcome, Ticket, TicketState};
use crate::store::survey_store::SurveyStore;
use crate::store::transcript::TranscriptLog;
use crate::survey::catalog::{CatalogError, SurveyCatalog};
use crate::survey::definition::Target;
use crate::transcript::{
    event_entry_id, Author, Body, DeliveryStatus, Entry, EventRank, PageRequest, TranscriptRef,
};
use crate::whatsapp::outbound::{OutboundBody, OutboundMessage, Recipient};

/// WhatsApp's customer service window.
pub const WINDOW_SECONDS: i64 = 24 * 3600;

/// One request, as the HTTP API passed it.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    /// Query parameters (the first value of each).
    pub query: HashMap<String, String>,
    pub idempotency_key: Option<String>,
    pub body: Vec<u8>,
    /// `requestContext.authorizer.jwt.claims`; `None` without an authorizer context.
    pub claims: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    fn ok(body: Value) -> Self {
        ApiResponse { status: 200, body }
    }
}

/// Settings of the agent API.
pub struct ApiSettings {
    pub auth: AuthConfig,
    /// Transcript entries expire this many days after they are written.
    pub transcript_retention_days: i64,
}

/// The agent API on its ports.
pub struct AgentApiCore<S, Q, T, V> {
    pub store: S,
    pub outbound: Q,
    pub assignment: Q,
    pub transcript: T,
    pub catalog: SurveyCatalog<V>,
    pub clock: Clock,
    pub settings: ApiSettings,
}

/// Makes generated idempotency keys unique within the process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl<S, Q, T, V> AgentApiCore<S, Q, T, V>
where
    S: AgentDirectory + Handoffs + Conversations + Idempotency,
    Q: MessageQueue,
    T: TranscriptLog,
    V: SurveyStore,
{
    /// Answers one request; every failure is a JSON error with its status.
    pub async fn handle(&self, req: &ApiRequest) -> ApiResponse {
        match self.dispatch(req).await {
            Ok(response) => {
                tracing::info!(status = response.status, path = %route_name(&req.path), "api request");
                response
            }
            Err(e) => {
                if e.status() >= 500 {
                    tracing::warn!(status = e.status(), code = e.code(), retryable = e.is_retryable(), error = %e, "api request failed");
                } else {
                    tracing::info!(status = e.status(), code = e.code(), path = %route_name(&req.path), "api request refused");
                }
                ApiResponse {
                    status: e.status(),
                    body: e.body(),
                }
            }
        }
    }

    async fn dispatch(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let claims = req.claims.as_ref().ok_or(ApiError::Unauthorized)?;
        let principal =
            auth::principal(claims, &self.settings.auth).map_err(|_| ApiError::Unauthorized)?;
        let route = route::route(&req.method, &req.path)?;
        let me = if principal.machine {
            None
        } else {
            self.store.agent(&principal.id).await?
        };
        let me = me.as_ref();
        let q = |k: &str| req.query.get(k).map(String::as_str);
        match route {
            Route::Me => self.me(&principal, me).await,
            Route::SetStatus => {
                let status = route::status_body(&req.body)?;
                self.set_status(&principal, me, status).await
            }
            Route::List => {
                let query = route::list_query(|k| req.query.get(k).cloned())?;
                self.list(&principal, me, &query).await
            }
            Route::Get(id) => {
                let page = PageRequest {
                    after: route::cursor(q("after"), "after")?,
                    before: route::cursor(q("before"), "before")?,
                    limit: route::page_limit(q("limit"), 50)?,
                };
                let peek = route::flag(q("peek"), "peek")?;
                self.read(&principal, me, &id, &page, peek).await
            }
            Route::Reply(id) => {
                let reply = route::reply_body(&req.body)?;
                let key = route::idempotency_key(req.idempotency_key.as_deref())?;
                self.reply(&principal, me, &id, reply, key).await
            }
            Route::Transfer(id) => {
                let to = route::transfer_body(&req.body)?;
                self.transfer(&principal, me, &id, to).await
            }
            Route::Close(id) => {
                route::json_body(&req.body)?;
                self.close(&principal, me, &id).await
            }
            Route::Templates => {
                let team = route::team_query(q("team"))?;
                self.templates(&team).await
            }
            Route::TeamAgents(team) => {
                let status = route::status_query(q("status"))?;
                self.team_agents(&team, status).await
            }
        }
    }

    fn own<'a>(&self, p: &Principal, me: Option<&'a Agent>) -> Result<&'a Agent, ApiError> {
        me.filter(|a| a.id == p.id)
            .ok_or_else(|| ApiError::NotFound("agent".into()))
    }

    async fn me(&self, p: &Principal, me: Option<&Agent>) -> Result<ApiResponse, ApiError> {
        let me = self.own(p, me)?;
        let open = self.store.assigned_to(&me.id).await?;
        Ok(ApiResponse::ok(me_view(me, &open)))
    }

    async fn set_status(
        &self,
        p: &Principal,
        me: Option<&Agent>,
        status: AgentStatus,
    ) -> Result<ApiResponse, ApiError> {
        let me = self.own(p, me)?;
        self.store.set_status(&me.id, status).await?;
        if status == AgentStatus::Online {
            self.drain(&me.teams, &format!("agent {} online", me.id))
                .await?;
        }
        let updated = Agent {
            status,
            ..me.clone()
        };
        let open = self.store.assigned_to(&me.id).await?;
        Ok(ApiResponse::ok(me_view(&updated, &open)))
    }

    async fn known_team(&self, team: &str) -> Result<crate::routing::model::Team, ApiError> {
        self.store
            .team(team)
            .await?
            .ok_or_else(|| ApiError::NotFound("team".into()))
    }

    /// `GET /api/templates?team=`: what may be sent outside the 24-hour window.
    async fn templates(&self, team: &str) -> Result<ApiResponse, ApiError> {
        let team = self.known_team(team).await?;
        Ok(ApiResponse::ok(templates_view(&team)))
    }

    /// `GET /api/teams/{team}/agents[?status=]`: whom a conversation can go to.
    async fn team_agents(
        &self,
        team: &str,
        status: Option<AgentStatus>,
    ) -> Result<ApiResponse, ApiError> {
        let team = self.known_team(team).await?;
        let agents: Vec<Value> = self
            .store
            .team_agents(&team.id)
            .await?
            .iter()
            .filter(|a| status.is_none_or(|s| a.status == s))
            .map(|a| {
                json!({
                    "id": a.id, "name": a.name, "status": a.status.as_str(),
                    "open": a.open, "capacity": a.capacity,
                })
            })
            .collect();
        Ok(ApiResponse::ok(
            json!({ "team": team.id, "agents": agents }),
        ))
    }

    async fn drain(&self, teams: &[String], reason: &str) -> Result<(), ApiError> {
        if teams.is_empty() {
            return Ok(());
        }
        let messages = drain_messages(teams, reason, self.clock.now().timestamp_millis())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        self.assignment.send_all(&messages).await?;
        Ok(())
    }

    /// `GET /api/conversations`: one page, newest activity first. The candidates are sort
    /// keys (`{at:012}#{conversation}`, [`keys::activity_sort`]): from the teams' `gsi2`
    /// lists (one `Query` each, `limit + 1` deep, merged), or from the caller's own tickets.
    /// The page's tickets are then read as they are now; one whose state or team moved since
    /// the index saw it is left out (the cursor still moves past it).
    async fn list(
        &self,
        p: &Principal,
        me: Option<&Agent>,
        q: &ListQuery,
    ) -> Result<ApiResponse, ApiError> {
        let (state, ticket_state) = match q.state {
            ListState::Waiting => (HandoffState::Waiting, TicketState::Waiting),
            ListState::Assigned => (HandoffState::Assigned, TicketState::Assigned),
            ListState::Closed => (HandoffState::Closed, TicketState::Closed),
        };
        let before = q.before.as_deref();
        let depth = q.limit.saturating_add(1);
        let older = |k: &String| before.is_none_or(|b| k.as_str() < b);
        let scope = policy::list_scope(p, me, state, q.team.as_deref(), q.mine);
        let (mut candidates, mut known, teams): (Vec<String>, HashMap<String, Ticket>, _) =
            match scope {
                None => (Vec::new(), HashMap::new(), None),
                Some(ListScope::Own { agent, team }) => {
                    let tickets = match q.state {
                        ListState::Assigned => self.store.assigned_to(&agent).await?,
                        ListState::Closed => self.store.closed_by(&agent, before, depth).await?,
                        ListState::Waiting => Vec::new(),
                    };
                    let tickets: HashMap<String, Ticket> = tickets
                        .into_iter()
                        .filter(|t| team.as_deref().is_none_or(|x| t.team == x))
                        .map(|t| (activity_key(&t), t))
                        .filter(|(k, _)| older(k))
                        .collect();
                    (tickets.keys().cloned().collect(), tickets, None)
                }
                Some(scope) => {
                    let teams = match scope {
                        ListScope::Teams(t) => t,
                        _ => self.store.team_ids().await?,
                    };
                    let mut keys = Vec::new();
                    for team in &teams {
                        let page = self.store.team_page(team, ticket_state, before, depth);
                        keys.extend(page.await?);
                    }
                    (keys, HashMap::new(), Some(teams))
                }
            };
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        let more = candidates.len() > q.limit as usize;
        candidates.truncate(q.limit as usize);
        let next_cursor = more
            .then(|| candidates.last().map(|k| route::encode_list_cursor(k)))
            .flatten();
        let ids: Vec<String> = candidates
            .iter()
            .filter_map(|k| keys::activity_sort_conversation(k).map(str::to_owned))
            .collect();
        if teams.is_some() && !ids.is_empty() {
            known = self
                .store
                .tickets(&ids)
                .await?
                .into_iter()
                .map(|t| (t.conversation_id.clone(), t))
                .collect();
        } else {
            known = known
                .into_values()
                .map(|t| (t.conversation_id.clone(), t))
                .collect();
        }
        let mut seen = std::collections::HashSet::new();
        let page: Vec<Ticket> = ids
            .iter()
            .filter_map(|id| known.get(id))
            .filter(|t| t.state == ticket_state && seen.insert(t.conversation_id.clone()))
            .filter(|t| teams.as_ref().is_none_or(|ts| ts.contains(&t.team)))
            .filter(|t| policy::access(p, me, &facts(t)) != Access::None)
            .cloned()
            .collect();
        let places = self.places(&page).await?;
        let page_ids: Vec<String> = page.iter().map(|t| t.conversation_id.clone()).collect();
        let last = if page_ids.is_empty() {
            HashMap::new()
        } else {
            self.store.last_inbound(&page_ids).await?
        };
        let now = self.clock.unix();
        let items: Vec<Value> = page
            .iter()
            .map(|t| {
                let id = &t.conversation_id;
                list_item_view(t, places.get(id).copied(), last.get(id).copied(), now)
            })
            .collect();
        Ok(ApiResponse::ok(
            json!({ "conversations": items, "next_cursor": next_cursor }),
        ))
    }

    /// The place in line of each waiting ticket of a page: one read of each team's line.
    async fn places(&self, page: &[Ticket]) -> Result<HashMap<String, usize>, ApiError> {
        let mut places = HashMap::new();
        let mut teams: Vec<&str> = page
            .iter()
            .filter(|t| t.state == TicketState::Waiting)
            .map(|t| t.team.as_str())
            .collect();
        teams.sort_unstable();
        teams.dedup();
        for team in teams {
            for (i, t) in self.store.waiting(team).await?.into_iter().enumerate() {
                places.insert(t.conversation_id, i + 1);
            }
        }
        Ok(places)
    }

    /// The ticket of a conversation the caller may at least read; 404 otherwise.
    async fn visible(
        &self,
        p: &Principal,
        me: Option<&Agent>,
        id: &str,
    ) -> Result<(Ticket, Access), ApiError> {
        let not_found = || ApiError::NotFound("conversation".into());
        let ticket = self.store.ticket(id).await?.ok_or_else(not_found)?;
        match policy::access(p, me, &facts(&ticket)) {
            Access::None => Err(not_found()),
            access => Ok((ticket, access)),
        }
    }

    /// As [`Self::visible`], for a change: read-only access is a 409, a closed hand-off too.
    async fn actionable(
        &self,
        p: &Principal,
        me: Option<&Agent>,
        id: &str,
    ) -> Result<Ticket, ApiError> {
        let (ticket, access) = self.visible(p, me, id).await?;
        if ticket.state == TicketState::Closed {
            return Err(ApiError::Conflict {
                code: "closed",
                message: "the conversation is closed".into(),
            });
        }
        if access != Access::Act {
            return Err(ApiError::Conflict {
                code: "read_only",
                message: "this conversation is waiting for an agent of the team".into(),
            });
        }
        Ok(ticket)
    }

    async fn record(&self, id: &str) -> Result<ConversationRecord, ApiError> {
        self.store
            .conversation(id)
            .await?
            .ok_or_else(|| ApiError::NotFound("conversation".into()))
    }

    async fn read(
        &self,
        p: &Principal,
        me: Option<&Agent>,
        id: &str,
        page: &PageRequest,
        peek: bool,
    ) -> Result<ApiResponse, ApiError> {
        let (ticket, _) = self.visible(p, me, id).await?;
        let record = self.record(id).await?;
        let survey = match self
            .catalog
            .version(&record.survey_id, record.survey_version)
            .await
        {
            Ok(s) => Some(s),
            Err(CatalogError::Store(e)) => return Err(e.into()),
            // Answers are shown without labels rather than not at all.
            Err(CatalogError::Unavailable { .. }) => None,
        };
        let transcript = self.transcript.page(id, page).await?;
        // The newest page only: paging back reads nothing new.
        // A peek (the inbox counting unread messages) tells the contact nothing.
        if ticket.state == TicketState::Assigned && page.before.is_none() && !peek {
            self.mark_read(&record, &transcript.entries).await?;
        }
        let now = self.clock.unix();
        let mut view = conversation_view(&ticket, &record, survey.as_deref(), now);
        view["transcript"] = json!(transcript);
        Ok(ApiResponse::ok(view))
    }

    /// Marks the newest inbound message of the page read (WhatsApp then shows every earlier
    /// one read too), under the same dedup id the survey engine uses (`read:{wamid}`): the
    /// sender's send record makes it once per message, however often the page is read.
    async fn mark_read(
        &self,
        record: &ConversationRecord,
        entries: &[Entry],
    ) -> Result<(), ApiError> {
        let Some(wamid) = entries
            .iter()
            .rev()
            .filter(|e| e.author == Author::Contact)
            .find_map(|e| e.wamid.clone())
        else {
            return Ok(());
        };
        let msg = OutboundMessage {
            phone_number_id: record.phone_number_id.clone(),
            recipient: recipient(record),
            dedup_id: format!("read:{wamid}"),
            conversation_id: Some(record.id.clone()),
            last_inbound_at: None,
            body: OutboundBody::MarkRead {
                message_id: wamid,
                typing_indicator: false,
            },
            transcript: None,
        };
        let message = QueueMessage::of(&msg).map_err(|e| ApiError::Internal(e.to_string()))?;
        self.outbound.send_all(&[message]).await?;
        Ok(())
    }

    async fn reply(
        &self,
        p: &Principal,
        me: Option<&Agent>,
        id: &str,
        reply: Reply,
        key: Option<String>,
    ) -> Result<ApiResponse, ApiError> {
        let now = self.clock.unix();
        // Only a caller who may see the conversation learns what a key answered.
        self.visible(p, me, id).await?;
        if let Some(k) = &key {
            if let Some(first) = self.store.recall(id, k, now).await? {
                return Ok(ApiResponse {
                    status: first.status,
                    body: first.body,
                });
            }
        }
        self.actionable(p, me, id).await?;
        let record = self.record(id).await?;
        if !window_open(&record, now) && matches!(reply, Reply::Text(_)) {
            return Err(ApiError::Conflict {
                code: "outside_window",
                message: "the contact last wrote more than 24 hours ago: only an approved \
                          template can be sent (give \"template\": {\"name\", \"language\", \"parameters\"})"
                    .into(),
            });
        }
        let key = key.unwrap_or_else(|| {
            let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            format!(
                "g{}-{n}",
                self.clock.now().timestamp_nanos_opt().unwrap_or(0)
            )
        });
        let at_ms = self.clock.now().timestamp_millis();
        let (body, entry_body) = match reply {
            Reply::Text(text) => (
                OutboundBody::Text {
                    body: text.clone(),
                    preview_url: false,
                },
                Body::Text { text },
            ),
            Reply::Template(t) => (
                OutboundBody::Template {
                    name: t.name.clone(),
                    language: t.language.clone(),
                    body_parameters: t.parameters,
                },
                Body::Template {
                    name: t.name,
                    language: t.language,
                },
            ),
        };
        let entry = Entry {
            id: event_entry_id(at_ms, EventRank::Message, &format!("agent:{id}:{key}")),
            at: at_ms,
            author: Author::Agent {
                agent_id: p.id.clone(),
            },
            body: entry_body,
            status: Some(DeliveryStatus::Pending),
            wamid: None,
        };
        self.transcript
            .append(id, std::slice::from_ref(&entry), self.expires_at(now))
            .await?;
        let dedup_id = format!("agent:{id}:{key}");
        let msg = OutboundMessage {
            phone_number_id: record.phone_number_id.clone(),
            recipient: recipient(&record),
            dedup_id: dedup_id.clone(),
            conversation_id: Some(id.to_owned()),
            last_inbound_at: Some(record.last_inbound_at),
            body,
            transcript: Some(TranscriptRef {
                conversation_id: id.to_owned(),
                entry_id: entry.id.clone(),
                agent_id: Some(p.id.clone()),
            }),
        };
        let message = QueueMessage::of(&msg).map_err(|e| ApiError::Internal(e.to_string()))?;
        self.outbound.send_all(&[message]).await?;
        let response = StoredResponse {
            status: 202,
            body: json!({ "message": entry, "dedup_id": dedup_id }),
        };
        let first = self.store.remember(id, &key, &response, now).await?;
        let response = first.unwrap_or(response);
        Ok(ApiResponse {
            status: response.status,
            body: response.body,
        })
    }

    fn expires_at(&self, now: i64) -> i64 {
        now.saturating_add(
            self.settings
                .transcript_retention_days
                .saturating_mul(86_400),
        )
    }

    /// Checks what can be checked now (the conversation is the caller's to act on, the team or
    /// agent exists, the agent is online) and queues the transfer for the assigner, in the
    /// contact's FIFO group (after the contact's earlier jobs): 202. The assigner applies it
    /// under the capacity rules; a full agent means the team's line.
    async fn transfer(
        &self,
        p: &Principal,
        me: Option<&Agent>,
        id: &str,
        to: TransferTo,
    ) -> Result<ApiResponse, ApiError> {
        let ticket = self.actionable(p, me, id).await?;
        let target = match to {
            TransferTo::Team(team) => {
                if self.store.team(&team).await?.is_none() {
                    return Err(ApiError::invalid("team", "unknown team"));
                }
                TransferTarget::Team(team)
            }
            TransferTo::Agent(agent_id) => {
                let agent = self
                    .store
                    .agent(&agent_id)
                    .await?
                    .ok_or_else(|| ApiError::invalid("agent", "unknown agent"))?;
                if agent.status != AgentStatus::Online {
                    return Err(ApiError::Conflict {
                        code: "agent_unavailable",
                        message: format!("the agent is {}", agent.status.as_str()),
                    });
                }
                TransferTarget::Agent(agent.id)
            }
        };
        let now_ms = self.clock.now().timestamp_millis();
        let to_name = match &target {
            TransferTarget::Team(t) => format!("team.{t}"),
            TransferTarget::Agent(a) => format!("agent.{a}"),
        };
        let job = AssignmentJob::Transfer(TransferRequest {
            job_id: format!("{id}:transfer:{now_ms}:{to_name}"),
            phone_number_id: ticket.request.phone_number_id.clone(),
            contact: ticket.request.contact.clone(),
            conversation_id: id.to_owned(),
            to: target.clone(),
            by: p.id.clone(),
            requested_at: self.clock.unix(),
        });
        let transfer =
            serde_json::to_value(&target).map_err(|e| ApiError::Internal(e.to_string()))?;
        let message = QueueMessage::of(&job).map_err(|e| ApiError::Internal(e.to_string()))?;
        self.assignment.send_all(&[message]).await?;
        Ok(ApiResponse {
            status: 202,
            body: json!({
                "id": id,
                "transfer": transfer,
                "conversation": summary_view(&ticket),
            }),
        })
    }

    async fn close(
        &self,
        p: &Principal,
        me: Option<&Agent>,
        id: &str,
    ) -> Result<ApiResponse, ApiError> {
        let (ticket, access) = self.visible(p, me, id).await?;
        if ticket.state == TicketState::Closed {
            return Ok(ApiResponse::ok(json!({ "id": id, "state": "closed" })));
        }
        if access != Access::Act {
            return Err(ApiError::Conflict {
                code: "read_only",
                message: "this conversation is waiting for an agent of the team".into(),
            });
        }
        let now = self.clock.unix();
        match self.store.close(id, &p.id, now).await? {
            CloseOutcome::Closed { team, agent } => {
                self.drain(std::slice::from_ref(&team), &format!("closed {id}"))
                    .await?;
                // The team's webhook hears it through the assigner (which holds its secret).
                let notice = AssignmentJob::Closed(ClosedNotice {
                    job_id: ClosedNotice::job_id_for(id, &ticket.job_id),
                    phone_number_id: ticket.request.phone_number_id.clone(),
                    contact: ticket.request.contact.clone(),
                    conversation_id: id.to_owned(),
                    handoff_job_id: ticket.job_id.clone(),
                    team_id: team.clone(),
                    agent_id: agent,
                    closed_by: p.id.clone(),
                    closed_at: now,
                });
                let message =
                    QueueMessage::of(&notice).map_err(|e| ApiError::Internal(e.to_string()))?;
                self.assignment.send_all(&[message]).await?;
                // The transcript's `closed` line was written by the store's close (keyed by
                // the hand-off, so a repeated close writes it once).
                self.closing_text(&ticket, me, now).await?;
            }
            CloseOutcome::AlreadyClosed => {}
            CloseOutcome::NotFound => return Err(ApiError::NotFound("conversation".into())),
        }
        Ok(ApiResponse::ok(json!({ "id": id, "state": "closed" })))
    }
}

impl<S, Q, T, V> AgentApiCore<S, Q, T, V>
where
    S: AgentDirectory + Handoffs + Conversations + Idempotency,
    Q: MessageQueue,
    T: TranscriptLog,
    V: SurveyStore,
{
    /// The team's closing text, in the contact's language, if it has one and the 24-hour
    /// window is open; once per close (dedup id `closed:{conversation}:{closed_at}`).
    async fn closing_text(
        &self,
        ticket: &Ticket,
        closer: Option<&Agent>,
        now: i64,
    ) -> Result<(), ApiError> {
        let Some(team) = self.store.team(&ticket.team).await? else {
            return Ok(());
        };
        let template = team.texts(&ticket.request.language).closed;
        if template.trim().is_empty() {
            return Ok(());
        }
        let record = self.record(&ticket.conversation_id).await?;
        if !window_open(&record, now) {
            return Ok(());
        }
        let vars = BTreeMap::from([
            ("team.name".to_owned(), team.name.clone()),
            (
                "agent.name".to_owned(),
                closer.map(|a| a.name.clone()).unwrap_or_default(),
            ),
        ]);
        let msg = OutboundMessage {
            phone_number_id: record.phone_number_id.clone(),
            recipient: recipient(&record),
            dedup_id: format!("closed:{}:{now}", record.id),
            conversation_id: Some(record.id.clone()),
            last_inbound_at: Some(record.last_inbound_at),
            body: OutboundBody::Text {
                body: crate::survey::text::render(&template, &vars),
                preview_url: false,
            },
            transcript: None,
        };
        let message = QueueMessage::of(&msg).map_err(|e| ApiError::Internal(e.to_string()))?;
        self.outbound.send_all(&[message]).await?;
        Ok(())
    }
}

/// The route a path belongs to, for logs (ids are not logged).
fn route_name(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", "api", "me"] => "/api/me",
        ["", "api", "me", "status"] => "/api/me/status",
        ["", "api", "conversations"] => "/api/conversations",
        ["", "api", "conversations", _] => "/api/conversations/{id}",
        ["", "api", "conversations", _, "messages"] => "/api/conversations/{id}/messages",
        ["", "api", "conversations", _, "transfer"] => "/api/conversations/{id}/transfer",
        ["", "api", "conversations", _, "close"] => "/api/conversations/{id}/close",
        ["", "api", "templates"] => "/api/templates",
        ["", "api", "teams", _, "agents"] => "/api/teams/{team}/agents",
        _ => "other",
    }
}

fn state_of(t: &Ticket) -> HandoffState {
    match t.state {
        TicketState::Waiting => HandoffState::Waiting,
        TicketState::Assigned => HandoffState::Assigned,
        TicketState::Closed => HandoffState::Closed,
    }
}

fn facts(t: &Ticket) -> Facts<'_> {
    Facts {
        team: &t.team,
        agent: t.agent.as_deref(),
        state: state_of(t),
    }
}

fn state_name(t: &Ticket) -> &'static str {
    match t.state {
        TicketState::Waiting => "waiting",
        TicketState::Assigned => "assigned",
        TicketState::Closed => "closed",
    }
}

fn recipient(record: &ConversationRecord) -> Recipient {
    Recipient {
        wa_id: record.contact.identity.wa_id.clone(),
        user_id: record.contact.identity.user_id.clone(),
    }
}

/// `GET /api/me`.
pub fn me_view(me: &Agent, open: &[Ticket]) -> Value {
    json!({
        "id": me.id,
        "name": me.name,
        "teams": me.teams,
        "leads": me.leads,
        "status": me.status.as_str(),
        "capacity": me.capacity,
        "open": open.len(),
        "conversations": open.iter().map(|t| t.conversation_id.clone()).collect::<Vec<_>>(),
    })
}

/// A ticket's place in the time-ordered lists: when it entered its state.
fn activity_key(t: &Ticket) -> String {
    let at = match t.state {
        TicketState::Waiting => t.requested_at,
        TicketState::Assigned => t.assigned_at.unwrap_or(t.requested_at),
        TicketState::Closed => t.closed_at.unwrap_or(t.requested_at),
    };
    keys::activity_sort(at, &t.conversation_id)
}

/// Whether a text may be sent now: always in a web conversation (the widget has no 24-hour
/// window), else while the contact wrote within the last 24 hours.
pub fn window_open(r: &ConversationRecord, now: i64) -> bool {
    crate::webchat::is_web(&r.phone_number_id)
        || now < r.last_inbound_at.saturating_add(WINDOW_SECONDS)
}

/// One conversation of `GET /api/conversations`: the contact's name (for display only: the
/// detail view has the phone), the hand-off, the place in line while waiting, and how long
/// ago the contact last wrote (`last_message_at`, from the conversation, else the hand-off).
/// No unread count: nothing records what an agent has read, and counting the contact's
/// lines since the last agent line would be a transcript `Query` per conversation.
pub fn list_item_view(
    t: &Ticket,
    place: Option<usize>,
    last_inbound_at: Option<i64>,
    now: i64,
) -> Value {
    let last = last_inbound_at.unwrap_or(t.request.last_inbound_at);
    json!({
        "id": t.conversation_id,
        "state": state_name(t),
        "channel": crate::webchat::channel(&t.request.phone_number_id),
        "team": t.team,
        "agent": t.agent,
        "vip": t.vip,
        "language": t.request.language,
        "contact": { "name": t.request.contact.profile_name },
        "place": place,
        "last_message_at": last,
        "seconds_since_last_message": now.saturating_sub(last).max(0),
        "requested_at": t.requested_at,
        "assigned_at": t.assigned_at,
        "closed_at": t.closed_at,
    })
}

/// `GET /api/templates`: the team's approved templates by kind, with what their body
/// parameters stand for (the assigner fills them the same way).
pub fn templates_view(team: &crate::routing::model::Team) -> Value {
    use crate::routing::model::MessageKind;
    let templates: Vec<Value> = team
        .templates
        .iter()
        .map(|(kind, name)| {
            let parameters: &[&str] = match kind {
                MessageKind::Assigned | MessageKind::Transferred => &["agent name"],
                MessageKind::Away => &[],
                MessageKind::Overload => &["place in line"],
            };
            json!({ "kind": kind.as_str(), "name": name, "parameters": parameters })
        })
        .collect();
    json!({ "team": team.id, "language": team.default_language, "templates": templates })
}

/// One conversation in a list.
pub fn summary_view(t: &Ticket) -> Value {
    let c = &t.request.contact;
    json!({
        "id": t.conversation_id,
        "state": state_name(t),
        "channel": crate::webchat::channel(&t.request.phone_number_id),
        "team": t.team,
        "agent": t.agent,
        "vip": t.vip,
        "language": t.request.language,
        "requested_at": t.requested_at,
        "assigned_at": t.assigned_at,
        "closed_at": t.closed_at,
        "contact": { "name": c.profile_name, "phone": c.wa_id, "username": c.username },
    })
}

/// `GET /api/conversations/{id}` without the transcript: the contact, the answers with their
/// question labels (contact fields and `var.*` variables alike), consent, the hand-off and
/// when the 24-hour window closes (a web conversation has none: `window_open` is always true
/// there, `window_closes_at` null).
pub fn conversation_view(
    t: &Ticket,
    r: &ConversationRecord,
    survey: Option<&crate::survey::Survey>,
    now: i64,
) -> Value {
    let web = crate::webchat::is_web(&r.phone_number_id);
    let window_closes_at = (!web).then(|| r.last_inbound_at.saturating_add(WINDOW_SECONDS));
    json!({
        "id": r.id,
        "state": state_name(t),
        "channel": crate::webchat::channel(&r.phone_number_id),
        "team": t.team,
        "agent": t.agent,
        "language": r.language,
        "contact": {
            "name": r.contact.identity.profile_name,
            "phone": r.contact.identity.wa_id,
            "username": r.contact.identity.username,
        },
        "answers": answers_view(r, survey),
        "consent": r.contact.consent,
        "requested_at": t.requested_at,
        "assigned_at": t.assigned_at,
        "closed_at": t.closed_at,
        "last_inbound_at": r.last_inbound_at,
        "window_closes_at": window_closes_at,
        "window_open": window_open(r, now),
    })
}

/// Every answered question in survey order, with its label and where it was saved; answers
/// the survey version does not know (or without a readable survey) follow under their key.
pub fn answers_view(r: &ConversationRecord, survey: Option<&crate::survey::Survey>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    if let Some(s) = survey {
        for q in &s.questions {
            let (saved_to, stored) = match &q.save_to {
                Target::Contact(f) => (format!("contact.{f}"), r.contact.fields.get(f)),
                Target::Var(v) => (format!("var.{v}"), r.vars.get(v)),
            };
            let Some(value) = r.answers.get(&q.key).or(stored) else {
                continue;
            };
            seen.insert(q.key.clone(), ());
            let mut view = json!({
                "key": q.key,
                "label": s.label(q, &r.language),
                "question": s.pick(&q.prompt, &r.language),
                "value": value,
                "saved_to": saved_to,
            });
            // A choice is stored as its option id; agents read the option's label.
            if let crate::survey::definition::QuestionKind::Choice { options } = &q.kind {
                if let Some(o) = options.iter().find(|o| o.id == value.as_str()) {
                    view["display"] = json!(s.pick(&o.label, &r.language));
                }
            }
            out.push(view);
        }
    }
    for (k, v) in &r.answers {
        if !seen.contains_key(k) {
            out.push(json!({ "key": k, "label": k, "value": v }));
        }
    }
    out
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
