//! Choosing an agent: the team's availability and its strategy, as a pure function.
//!
//! The result is an ordered list of candidates, not one agent: the store reserves a slot with a
//! conditional write, and when a concurrent assignment took the last slot of the first
//! candidate, the assigner tries the next one without reading everything again.

use chrono::{DateTime, Utc};

use super::hours::Schedule;
use super::model::{Agent, AgentStatus, Strategy};

/// What the team can do for a conversation right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Outside business hours: away message, wait.
    Closed,
    /// Open, but no agent of the team is online: away message, wait.
    NobodyOnline,
    /// Every online agent is at capacity: overload message, wait.
    AllBusy,
    /// Agent ids in the order to try.
    Free(Vec<String>),
}

/// Orders the team's free agents by strategy. Agents who speak the contact's language come
/// first; the others follow so a conversation is not stuck when no speaker is free.
pub fn candidates(strategy: Strategy, team: &str, language: &str, agents: &[Agent]) -> Vec<String> {
    let mut free: Vec<&Agent> = agents
        .iter()
        .filter(|a| a.in_team(team) && a.has_room())
        .collect();
    free.sort_by(|a, b| {
        let lang = b.speaks(language).cmp(&a.speaks(language));
        let by_strategy = match strategy {
            Strategy::RoundRobin => a.last_assigned_at.cmp(&b.last_assigned_at),
            Strategy::LeastOpen => a
                .open
                .cmp(&b.open)
                .then(a.last_assigned_at.cmp(&b.last_assigned_at)),
        };
        lang.then(by_strategy).then_with(|| a.id.cmp(&b.id))
    });
    free.into_iter().map(|a| a.id.clone()).collect()
}

/// Decides availability: hours first, then presence, then capacity.
pub fn availability(
    strategy: Strategy,
    schedule: Option<&Schedule>,
    team: &str,
    language: &str,
    agents: &[Agent],
    now: DateTime<Utc>,
) -> Availability {
    if schedule.is_some_and(|s| !s.is_open(now)) {
        return Availability::Closed;
    }
    if !agents
        .iter()
        .any(|a| a.in_team(team) && a.status == AgentStatus::Online)
    {
        return Availability::NobodyOnline;
    }
    let list = candidates(strategy, team, language, agents);
    if list.is_empty() {
        Availability::AllBusy
    } else {
        Availability::Free(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::hours::BusinessHours;
    use chrono::TimeZone;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest, Strategy as _};

    fn agent(id: &str, status: AgentStatus, capacity: u32, open: u32, last: i64) -> Agent {
        Agent {
            id: id.into(),
            name: id.to_uppercase(),
            teams: vec!["t".into()],
            languages: vec![],
            status,
            capacity,
            open,
            last_assigned_at: last,
            leads: vec![],
            sub: None,
        }
    }

    #[test]
    fn round_robin_takes_longest_idle_least_open_takes_fewest_open() {
        use AgentStatus::*;
        let agents = vec![
            agent("a", Online, 5, 1, 300),
            agent("b", Online, 5, 3, 100),
            agent("c", Online, 5, 2, 200),
        ];
        assert_eq!(
            candidates(Strategy::RoundRobin, "t", "en", &agents),
            ["b", "c", "a"]
        );
        assert_eq!(
            candidates(Strategy::LeastOpen, "t", "en", &agents),
            ["a", "c", "b"]
        );
    }

    #[test]
    fn ties_break_by_last_assignment_then_id() {
        use AgentStatus::*;
        let agents = vec![
            agent("z", Online, 5, 1, 100),
            agent("y", Online, 5, 1, 50),
            agent("x", Online, 5, 1, 100),
        ];
        assert_eq!(
            candidates(Strategy::LeastOpen, "t", "en", &agents),
            ["y", "x", "z"]
        );
        assert_eq!(
            candidates(Strategy::RoundRobin, "t", "en", &agents),
            ["y", "x", "z"]
        );
    }

    #[test]
    fn only_online_team_members_with_room() {
        use AgentStatus::*;
        let mut other = agent("o", Online, 5, 0, 0);
        other.teams = vec!["u".into()];
        let agents = vec![
            agent("full", Online, 2, 2, 0),
            agent("away", Away, 5, 0, 0),
            agent("off", Offline, 5, 0, 0),
            other,
            agent("zero", Online, 0, 0, 0),
            agent("ok", Online, 2, 1, 9),
        ];
        assert_eq!(candidates(Strategy::RoundRobin, "t", "en", &agents), ["ok"]);
    }

    #[test]
    fn speakers_of_the_language_come_first() {
        use AgentStatus::*;
        let mut de = agent("de", Online, 5, 4, 999);
        de.languages = vec!["de".into()];
        let mut en = agent("en", Online, 5, 0, 0);
        en.languages = vec!["en".into()];
        let any = agent("any", Online, 5, 0, 5);
        let agents = vec![en, de, any];
        assert_eq!(
            candidates(Strategy::LeastOpen, "t", "de", &agents),
            ["any", "de", "en"]
        );
        assert_eq!(
            candidates(Strategy::LeastOpen, "t", "fr", &agents),
            ["any"]
                .iter()
                .chain(["en", "de"].iter())
                .copied()
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn availability_order_hours_presence_capacity() {
        use AgentStatus::*;
        let sched = BusinessHours {
            time_zone: "UTC".into(),
            weekly: [("mon".to_string(), vec!["09:00-17:00".to_string()])].into(),
            holidays: vec![],
        }
        .schedule()
        .unwrap();
        let open = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let closed = Utc.with_ymd_and_hms(2026, 11, 23, 18, 0, 0).unwrap();
        let free = vec![agent("a", Online, 1, 0, 0)];
        let busy = vec![agent("a", Online, 1, 1, 0)];
        let away = vec![agent("a", Away, 1, 0, 0), agent("b", Offline, 1, 0, 0)];
        let av = |agents: &[Agent], now| {
            availability(Strategy::RoundRobin, Some(&sched), "t", "en", agents, now)
        };
        assert_eq!(av(&free, closed), Availability::Closed);
        assert_eq!(av(&free, open), Availability::Free(vec!["a".into()]));
        assert_eq!(av(&busy, open), Availability::AllBusy);
        assert_eq!(av(&away, open), Availability::NobodyOnline);
        assert_eq!(av(&[], open), Availability::NobodyOnline);
        assert_eq!(
            availability(Strategy::RoundRobin, None, "t", "en", &free, closed),
            Availability::Free(vec!["a".into()]),
            "no hours: always open"
        );
    }

    fn arb_agent() -> impl proptest::strategy::Strategy<Value = Agent> {
        (
            "[a-e]{1,2}",
            0u8..3,
            0u32..6,
            0u32..8,
            0i64..50,
            proptest::bool::ANY,
        )
            .prop_map(|(id, st, cap, open, last, de)| Agent {
                id,
                name: "n".into(),
                teams: vec!["t".into()],
                languages: if de { vec!["de".into()] } else { vec![] },
                status: [AgentStatus::Online, AgentStatus::Away, AgentStatus::Offline][st as usize],
                capacity: cap,
                open,
                last_assigned_at: last,
                leads: vec![],
                sub: None,
            })
    }

    proptest! {
        /// Every candidate is online with room; every online agent with room is a candidate;
        /// the first candidate is optimal for the strategy among the language group.
        #[test]
        fn candidates_are_exactly_the_free_agents(mut agents in proptest::collection::vec(arb_agent(), 0..8), lo in proptest::bool::ANY) {
            // Agent ids are unique in the table.
            for (i, a) in agents.iter_mut().enumerate() {
                a.id = format!("{}{i}", a.id);
            }
            let strategy = if lo { Strategy::LeastOpen } else { Strategy::RoundRobin };
            let got = candidates(strategy, "t", "de", &agents);
            let free = agents.iter().filter(|a| a.has_room()).count();
            prop_assert_eq!(got.len(), free);
            for id in &got {
                prop_assert!(agents.iter().any(|a| &a.id == id && a.has_room()));
            }
            if let Some(first) = got.first() {
                let f = agents.iter().find(|a| &a.id == first && a.has_room()).unwrap();
                for a in agents.iter().filter(|a| a.has_room() && a.speaks("de") == f.speaks("de")) {
                    match strategy {
                        Strategy::LeastOpen => prop_assert!(f.open <= a.open),
                        Strategy::RoundRobin => prop_assert!(f.last_assigned_at <= a.last_assigned_at),
                    }
                }
                prop_assert!(f.speaks("de") || !agents.iter().any(|a| a.has_room() && a.speaks("de")));
            }
        }
    }
}
