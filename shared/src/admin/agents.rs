//! Admin commands for agents, teams, routing rules, conversations and waiting lines.
//!
//! Every command that can free capacity (an agent online, a higher capacity, a closed
//! conversation, changed team hours) puts an `AssignmentJob::Drain` for the affected teams on
//! the assignment queue (`--assignment-queue URL` or `$PRECHAT_ASSIGNMENT_QUEUE_URL`), so the
//! longest-waiting conversation is assigned within seconds; without a queue the scheduled
//! sweep does it within its period.

use chrono::Utc;

use super::{context, AdminError};
use crate::queue::{MessageQueue, QueueMessage, SqsQueue};
use crate::routing::job::{AssignmentJob, ClosedNotice};
use crate::routing::model::{Agent, AgentStatus, Team};
use crate::routing::rules::RoutingConfig;
use crate::store::routing::{CloseOutcome, RoutingStore};
use crate::store::DynamoTable;

fn usage(msg: impl Into<String>) -> AdminError {
    AdminError::Usage(msg.into())
}

fn failed(e: impl std::fmt::Display) -> AdminError {
    AdminError::Failed(e.to_string())
}

/// Removes `--flag VALUE` from the arguments.
fn take_flag(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, AdminError> {
    let Some(i) = args.iter().position(|a| a == flag) else {
        return Ok(None);
    };
    if i + 1 >= args.len() {
        return Err(usage(format!("{flag} needs a value")));
    }
    let v = args.remove(i + 1);
    args.remove(i);
    Ok(Some(v))
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn positional(args: &[String], i: usize, what: &str) -> Result<String, AdminError> {
    args.get(i)
        .cloned()
        .ok_or_else(|| usage(format!("missing {what}")))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &str) -> Result<T, AdminError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| failed(format!("cannot read {path}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| failed(format!("{path}: {e}")))
}

/// Runs one of the groups `agent`, `team`, `routing`, `conversation`, `waiting`.
pub async fn run(group: &str, mut args: Vec<String>) -> Result<String, AdminError> {
    let ctx = context(&mut args)?;
    let queue_url = take_flag(&mut args, "--assignment-queue")?
        .or_else(|| crate::config::EnvReader::from_env().optional("PRECHAT_ASSIGNMENT_QUEUE_URL"))
        .filter(|u| !u.trim().is_empty());
    let sdk = crate::aws::load_config().await;
    let store = RoutingStore::new(DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        ctx.table,
    ));
    let queue = queue_url.map(|u| SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), u));
    Admin { store, queue }.exec(group, args).await
}

/// The commands, on explicit parts.
pub struct Admin<Q: MessageQueue> {
    pub store: RoutingStore,
    pub queue: Option<Q>,
}

impl<Q: MessageQueue> Admin<Q> {
    pub async fn exec(&self, group: &str, mut args: Vec<String>) -> Result<String, AdminError> {
        let cmd = if args.is_empty() {
            String::new()
        } else {
            args.remove(0)
        };
        match (group, cmd.as_str()) {
            ("agent", "add") => self.agent_add(args, false).await,
            ("agent", "update") => self.agent_add(args, true).await,
            ("agent", "status") => {
                let id = positional(&args, 0, "agent id")?;
                let status: AgentStatus = positional(&args, 1, "status")?.parse().map_err(usage)?;
                self.agent_set(&id, Some(status), None).await
            }
            ("agent", "capacity") => {
                let id = positional(&args, 0, "agent id")?;
                let cap: u32 = positional(&args, 1, "capacity")?
                    .parse()
                    .map_err(|_| usage("capacity must be a number"))?;
                self.agent_set(&id, None, Some(cap)).await
            }
            ("agent", "list") => self.agent_list().await,
            ("team", "add" | "update") => {
                let team: Team = read_json(&positional(&args, 0, "team file")?)?;
                team.validate().map_err(failed)?;
                let exists = self
                    .store
                    .get_team(&team.id)
                    .await
                    .map_err(failed)?
                    .is_some();
                if cmd == "add" && exists {
                    return Err(failed(format!(
                        "team {} exists: use `team update`",
                        team.id
                    )));
                }
                if cmd == "update" && !exists {
                    return Err(failed(format!(
                        "team {} does not exist: use `team add`",
                        team.id
                    )));
                }
                self.store.put_team(&team).await.map_err(failed)?;
                let drained = self
                    .drain(std::slice::from_ref(&team.id), "team changed")
                    .await?;
                Ok(format!("team {} saved{drained}", team.id))
            }
            ("team", "list") => {
                let teams = self.store.list_teams().await.map_err(failed)?;
                Ok(teams
                    .iter()
                    .map(|t| {
                        let hours = t
                            .hours
                            .as_ref()
                            .map_or("always open".to_owned(), |h| h.time_zone.clone());
                        format!("{}\t{}\t{:?}\t{hours}", t.id, t.name, t.strategy)
                    })
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            ("team", "show") => {
                let id = positional(&args, 0, "team id")?;
                let team = self
                    .store
                    .get_team(&id)
                    .await
                    .map_err(failed)?
                    .ok_or_else(|| failed(format!("no team {id}")))?;
                serde_json::to_string_pretty(&team).map_err(failed)
            }
            ("routing", "set") => {
                let config: RoutingConfig = read_json(&positional(&args, 0, "routing file")?)?;
                config.validate().map_err(failed)?;
                let mut missing: Vec<&str> = Vec::new();
                for team in std::iter::once(&config.default_team)
                    .chain(config.rules.iter().map(|r| &r.team))
                {
                    if self.store.get_team(team).await.map_err(failed)?.is_none()
                        && !missing.contains(&team.as_str())
                    {
                        missing.push(team);
                    }
                }
                if !missing.is_empty() {
                    return Err(failed(format!(
                        "unknown team(s): {}; add them first",
                        missing.join(", ")
                    )));
                }
                self.store.put_routing(&config).await.map_err(failed)?;
                Ok(format!(
                    "routing saved: {} rule(s), default team {}",
                    config.rules.len(),
                    config.default_team
                ))
            }
            ("routing", "show") => match self.store.get_routing().await.map_err(failed)? {
                Some(c) => serde_json::to_string_pretty(&c).map_err(failed),
                None => Ok("no routing rules yet".into()),
            },
            ("conversation", "close") => {
                let by = take_flag(&mut args, "--by")?.unwrap_or_else(|| "admin".into());
                let conv = positional(&args, 0, "conversation id")?;
                let now = Utc::now().timestamp();
                let ticket = self.store.get_ticket(&conv).await.map_err(failed)?;
                match self.store.close(&conv, &by, now).await.map_err(failed)? {
                    CloseOutcome::Closed { team, agent } => {
                        let drained = self
                            .drain(std::slice::from_ref(&team), "conversation closed")
                            .await?;
                        if let (Some(t), Some(queue)) = (ticket, &self.queue) {
                            // The team's webhook hears it (`conversation.closed`).
                            let notice = AssignmentJob::Closed(ClosedNotice {
                                job_id: ClosedNotice::job_id_for(&conv, &t.job_id),
                                phone_number_id: t.request.phone_number_id.clone(),
                                contact: t.request.contact.clone(),
                                conversation_id: conv.clone(),
                                handoff_job_id: t.job_id.clone(),
                                team_id: team.clone(),
                                agent_id: agent.clone(),
                                closed_by: by.clone(),
                                closed_at: now,
                            });
                            let message = QueueMessage::of(&notice).map_err(failed)?;
                            queue.send_all(&[message]).await.map_err(failed)?;
                        }
                        let who = agent.map_or("it was waiting".to_owned(), |a| {
                            format!("{a} has a free slot")
                        });
                        Ok(format!("conversation {conv} closed ({who}){drained}"))
                    }
                    CloseOutcome::AlreadyClosed => {
                        Ok(format!("conversation {conv} was already closed"))
                    }
                    CloseOutcome::NotFound => {
                        Err(failed(format!("conversation {conv} was never handed off")))
                    }
                }
            }
            ("waiting", team) if !team.is_empty() => {
                let line = self.store.waiting(team).await.map_err(failed)?;
                if line.is_empty() {
                    return Ok(format!("nobody is waiting for {team}"));
                }
                Ok(line
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let since = chrono::DateTime::from_timestamp(t.requested_at, 0)
                            .map_or(String::new(), |d| d.to_rfc3339());
                        format!(
                            "{}\t{}\t{}\t{}\t{}",
                            i + 1,
                            t.conversation_id,
                            if t.vip { "VIP" } else { "-" },
                            since,
                            t.request.language
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            _ => Err(usage(format!("unknown command {group} {cmd}"))),
        }
    }

    async fn agent_add(&self, mut args: Vec<String>, update: bool) -> Result<String, AdminError> {
        let name = take_flag(&mut args, "--name")?;
        let teams = take_flag(&mut args, "--teams")?.map(|t| list(&t));
        let languages = take_flag(&mut args, "--languages")?.map(|t| list(&t));
        let leads = take_flag(&mut args, "--leads")?.map(|t| list(&t));
        let capacity = take_flag(&mut args, "--capacity")?
            .map(|c| {
                c.parse::<u32>()
                    .map_err(|_| usage("--capacity must be a number"))
            })
            .transpose()?;
        let status = take_flag(&mut args, "--status")?
            .map(|s| s.parse::<AgentStatus>().map_err(usage))
            .transpose()?;
        let id = positional(&args, 0, "agent id")?;
        let existing = self.store.get_agent(&id).await.map_err(failed)?;
        let agent = match (existing, update) {
            (Some(_), false) => {
                return Err(failed(format!("agent {id} exists: use `agent update`")))
            }
            (None, true) => {
                return Err(failed(format!(
                    "agent {id} does not exist: use `agent add`"
                )))
            }
            (Some(a), true) => Agent {
                name: name.unwrap_or(a.name),
                teams: teams.unwrap_or(a.teams),
                languages: languages.unwrap_or(a.languages),
                leads: leads.unwrap_or(a.leads),
                capacity: capacity.unwrap_or(a.capacity),
                status: status.unwrap_or(a.status),
                ..a
            },
            (None, false) => Agent {
                id: id.clone(),
                name: name.ok_or_else(|| usage("--name is required"))?,
                teams: teams.ok_or_else(|| usage("--teams is required"))?,
                languages: languages.unwrap_or_default(),
                leads: leads.unwrap_or_default(),
                sub: None,
                status: status.unwrap_or(AgentStatus::Offline),
                capacity: capacity.unwrap_or(5),
                open: 0,
                last_assigned_at: 0,
            },
        };
        agent.validate().map_err(failed)?;
        self.store.upsert_agent(&agent).await.map_err(failed)?;
        let drained = self
            .drain(&agent.teams, &format!("agent {id} changed"))
            .await?;
        Ok(format!(
            "agent {id} saved ({}, capacity {}){drained}",
            agent.status.as_str(),
            agent.capacity
        ))
    }

    async fn agent_set(
        &self,
        id: &str,
        status: Option<AgentStatus>,
        capacity: Option<u32>,
    ) -> Result<String, AdminError> {
        if capacity.is_some_and(|c| c > 1000) {
            return Err(usage("capacity must be between 0 and 1000"));
        }
        let agent = self
            .store
            .get_agent(id)
            .await
            .map_err(failed)?
            .ok_or_else(|| failed(format!("no agent {id}")))?;
        self.store
            .set_agent(id, status, capacity)
            .await
            .map_err(failed)?;
        let drained = self
            .drain(&agent.teams, &format!("agent {id} changed"))
            .await?;
        Ok(format!("agent {id} updated{drained}"))
    }

    async fn agent_list(&self) -> Result<String, AdminError> {
        let agents = self.store.list_agents().await.map_err(failed)?;
        Ok(agents
            .iter()
            .map(|a| {
                format!(
                    "{}\t{}\t{}\t{}/{}\tteams={}\tlanguages={}",
                    a.id,
                    a.name,
                    a.status.as_str(),
                    a.open,
                    a.capacity,
                    a.teams.join(","),
                    if a.languages.is_empty() {
                        "any".to_owned()
                    } else {
                        a.languages.join(",")
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Queues a drain job per team; returns a note for the output.
    async fn drain(&self, teams: &[String], reason: &str) -> Result<String, AdminError> {
        let Some(queue) = &self.queue else {
            return Ok(
                "; no assignment queue given: the scheduled sweep will move the line".into(),
            );
        };
        let stamp = Utc::now().timestamp_millis();
        let messages = crate::routing::job::drain_messages(teams, reason, stamp).map_err(failed)?;
        queue.send_all(&messages).await.map_err(failed)?;
        Ok(format!("; drain queued for {}", teams.join(", ")))
    }
}
