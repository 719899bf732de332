//! Agents and teams as admins define them and as the assigner reads them.
//!
//! Validation lives here (parse on construction): an admin command refuses a team with a bad
//! time zone or an unknown strategy before it reaches the table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hours::{BusinessHours, HoursError, Schedule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Online,
    Away,
    Offline,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        }
    }
}

impl std::str::FromStr for AgentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "online" => Ok(AgentStatus::Online),
            "away" => Ok(AgentStatus::Away),
            "offline" => Ok(AgentStatus::Offline),
            other => Err(format!("unknown status {other:?} (online, away, offline)")),
        }
    }
}

/// A human agent with the live counters the assigner needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub teams: Vec<String>,
    /// Language codes the agent speaks; empty = any.
    #[serde(default)]
    pub languages: Vec<String>,
    pub status: AgentStatus,
    /// Maximum open conversations.
    pub capacity: u32,
    /// Open conversations right now (kept by the store's conditional writes).
    #[serde(default)]
    pub open: u32,
    /// When the agent was last given a conversation (Unix seconds): round-robin order.
    #[serde(default)]
    pub last_assigned_at: i64,
    /// The teams this agent leads (Cognito group `leads`): the agent API lets a lead read and
    /// act on those teams' conversations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leads: Vec<String>,
    /// The agent's Cognito `sub` (the id is the Cognito username), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

impl Agent {
    pub fn speaks(&self, language: &str) -> bool {
        self.languages.is_empty()
            || self
                .languages
                .iter()
                .any(|l| l.eq_ignore_ascii_case(language))
    }
    pub fn in_team(&self, team: &str) -> bool {
        self.teams.iter().any(|t| t == team)
    }
    pub fn has_room(&self) -> bool {
        self.status == AgentStatus::Online && self.open < self.capacity
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent who waited longest since their last assignment.
    #[default]
    RoundRobin,
    /// The agent with the fewest open conversations.
    LeastOpen,
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "round_robin" => Ok(Strategy::RoundRobin),
            "least_open" => Ok(Strategy::LeastOpen),
            other => Err(format!(
                "unknown strategy {other:?} (round_robin, least_open)"
            )),
        }
    }
}

/// What the contact is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Assigned,
    Away,
    Overload,
    /// Told when an agent's transfer gives the conversation to another agent.
    Transferred,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Assigned => "assigned",
            MessageKind::Away => "away",
            MessageKind::Overload => "overload",
            MessageKind::Transferred => "transferred",
        }
    }
}

/// The three texts of one language; `{{agent.name}}`, `{{queue.position}}`, `{{team.name}}`
/// are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageTexts {
    pub assigned: String,
    pub away: String,
    pub overload: String,
    /// Sent when an agent closes the conversation through the agent API (inside the 24-hour
    /// window; `{{agent.name}}`, `{{team.name}}` replaced). Empty (the default): nothing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub closed: String,
    /// Sent when a transfer gives the conversation to another agent (`{{agent.name}}` = the
    /// new agent). Empty (the default in a configured language): the `assigned` text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transferred: String,
}

impl MessageTexts {
    pub fn get(&self, kind: MessageKind) -> &str {
        match kind {
            MessageKind::Assigned => &self.assigned,
            MessageKind::Away => &self.away,
            MessageKind::Overload => &self.overload,
            MessageKind::Transferred if self.transferred.trim().is_empty() => &self.assigned,
            MessageKind::Transferred => &self.transferred,
        }
    }
}

impl Default for MessageTexts {
    fn default() -> Self {
        MessageTexts {
            assigned: "You are now talking to {{agent.name}}. They will reply here shortly.".into(),
            away: "Our team is away right now. You are in line and we will get back to you when we open.".into(),
            overload: "All our agents are busy. You are number {{queue.position}} in line; we will be with you soon.".into(),
            closed: String::new(),
            transferred: "You have been transferred to {{agent.name}} of {{team.name}}. They will reply here shortly.".into(),
        }
    }
}

/// A team and everything the assigner needs to serve its waiting line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// `None`: always open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<BusinessHours>,
    /// Texts per language code; `default_language` is used when the contact's is missing.
    #[serde(default)]
    pub messages: BTreeMap<String, MessageTexts>,
    #[serde(default = "default_language")]
    pub default_language: String,
    /// Approved template names per kind, sent outside the 24-hour window. Body parameters:
    /// assigned = [agent name], away = [], overload = [queue position].
    #[serde(default)]
    pub templates: BTreeMap<MessageKind, String>,
    /// HTTPS endpoint told about each assignment (signed JSON body); `None`: no notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
}

fn default_language() -> String {
    "en".into()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("id {0:?} may only contain letters, digits, '-', '_' and '.' (at most 64)")]
    Id(String),
    #[error(transparent)]
    Hours(#[from] HoursError),
    #[error("notify_url: {0}")]
    NotifyUrl(String),
    #[error("capacity must be between 0 and 1000")]
    Capacity,
}

/// Ids end up in keys and SQS group ids: keep them plain.
pub fn check_id(id: &str) -> Result<(), ModelError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::Id(id.to_owned()))
    }
}

impl Team {
    pub fn validate(&self) -> Result<Option<Schedule>, ModelError> {
        check_id(&self.id)?;
        if self.name.trim().is_empty() {
            return Err(ModelError::Empty("team name"));
        }
        if let Some(url) = &self.notify_url {
            super::notify::parse_notify_url(url).map_err(ModelError::NotifyUrl)?;
        }
        self.schedule()
    }

    /// The team's business hours, checked. The assigner needs only these to serve the line: a
    /// bad `notify_url` (stored before the check existed, or by hand) fails each notification
    /// on its own, not the team's assignments.
    pub fn schedule(&self) -> Result<Option<Schedule>, ModelError> {
        Ok(self
            .hours
            .as_ref()
            .map(BusinessHours::schedule)
            .transpose()?)
    }

    /// The texts for a language, falling back to the team's default, then to built-in English.
    pub fn texts(&self, language: &str) -> MessageTexts {
        self.messages
            .get(language)
            .or_else(|| self.messages.get(&self.default_language))
            .cloned()
            .unwrap_or_default()
    }
}

impl Agent {
    pub fn validate(&self) -> Result<(), ModelError> {
        check_id(&self.id)?;
        if self.name.trim().is_empty() {
            return Err(ModelError::Empty("agent name"));
        }
        if self.teams.is_empty() {
            return Err(ModelError::Empty("agent teams"));
        }
        for t in self.teams.iter().chain(&self.leads) {
            check_id(t)?;
        }
        if self.capacity > 1000 {
            return Err(ModelError::Capacity);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> Team {
        serde_json::from_str(r#"{"id":"sales","name":"Sales"}"#).unwrap()
    }

    #[test]
    fn team_defaults_and_text_fallback() {
        let mut t = team();
        assert_eq!(t.strategy, Strategy::RoundRobin);
        assert_eq!(t.default_language, "en");
        assert!(t.validate().unwrap().is_none(), "no hours: always open");
        assert_eq!(t.texts("de"), MessageTexts::default());
        let de = MessageTexts {
            assigned: "Hallo, hier ist {{agent.name}}".into(),
            away: "weg".into(),
            overload: "voll".into(),
            closed: String::new(),
            transferred: String::new(),
        };
        t.messages.insert("de".into(), de.clone());
        assert_eq!(t.texts("de"), de);
        assert_eq!(t.texts("fr"), MessageTexts::default());
        t.default_language = "de".into();
        assert_eq!(t.texts("fr"), de);
    }

    #[test]
    fn the_transferred_text_falls_back_to_the_assigned_one() {
        let mut de: MessageTexts = serde_json::from_str(
            r#"{"assigned":"Hallo, hier ist {{agent.name}}","away":"a","overload":"o"}"#,
        )
        .unwrap();
        assert_eq!(
            de.get(MessageKind::Transferred),
            "Hallo, hier ist {{agent.name}}"
        );
        de.transferred = "Weitergeleitet an {{agent.name}}".into();
        assert_eq!(
            de.get(MessageKind::Transferred),
            "Weitergeleitet an {{agent.name}}"
        );
        assert!(MessageTexts::default()
            .get(MessageKind::Transferred)
            .contains("transferred to {{agent.name}}"));
    }

    #[test]
    fn bad_teams_and_agents_are_refused() {
        let mut t = team();
        t.notify_url = Some("http://example.com/hook".into());
        assert!(matches!(t.validate(), Err(ModelError::NotifyUrl(_))));
        t.notify_url = Some("https://example.com/hook".into());
        assert!(t.validate().is_ok());
        t.id = "has space".into();
        assert!(matches!(t.validate(), Err(ModelError::Id(_))));
        let bad_strategy =
            serde_json::from_str::<Team>(r#"{"id":"a","name":"A","strategy":"random"}"#);
        assert!(bad_strategy.is_err());
        let a = Agent {
            id: "ann".into(),
            name: "Ann".into(),
            teams: vec![],
            languages: vec![],
            status: AgentStatus::Online,
            capacity: 5,
            open: 0,
            last_assigned_at: 0,
            leads: vec![],
            sub: None,
        };
        assert_eq!(a.validate().unwrap_err(), ModelError::Empty("agent teams"));
    }

    #[test]
    fn room_needs_online_and_free_capacity() {
        let mut a = Agent {
            id: "ann".into(),
            name: "Ann".into(),
            teams: vec!["sales".into()],
            languages: vec!["de".into()],
            status: AgentStatus::Online,
            capacity: 2,
            open: 1,
            last_assigned_at: 0,
            leads: vec![],
            sub: None,
        };
        assert!(a.has_room());
        a.open = 2;
        assert!(!a.has_room());
        a.open = 0;
        a.status = AgentStatus::Away;
        assert!(!a.has_room());
        assert!(a.speaks("DE") && !a.speaks("en"));
        assert!("busy".parse::<AgentStatus>().is_err());
        assert_eq!("least_open".parse::<Strategy>(), Ok(Strategy::LeastOpen));
    }
}
