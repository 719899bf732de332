//! Who may see and do what, as one pure function of the caller, its agent item and the
//! conversation's hand-off: no AWS, tested exhaustively.
//!
//! - an admin, and an integration (machine client, or a user in the `integrations` group):
//!   every conversation;
//! - a lead: the conversations of the teams their agent item `leads`;
//! - an agent: the conversations assigned to them (acting), the ones they held and that were
//!   closed (reading), and the waiting lines of their teams (reading only);
//! - anyone else: nothing. "Nothing" answers 404, exactly like an unknown id, so a caller
//!   learns nothing about conversations that are not theirs (never 403).

use super::auth::Principal;
use crate::routing::model::Agent;

/// A conversation's hand-off state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffState {
    Waiting,
    Assigned,
    Closed,
}

/// What the policy looks at of a conversation.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub team: &'a str,
    pub agent: Option<&'a str>,
    pub state: HandoffState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// 404.
    None,
    /// May read it.
    Read,
    /// May read, reply, transfer and close it.
    Act,
}

/// Admins and integrations see everything.
pub fn sees_all(p: &Principal) -> bool {
    p.is_admin() || p.is_integration()
}

/// What `principal` (with its agent item `me`, if it has one) may do with a conversation.
pub fn access(p: &Principal, me: Option<&Agent>, f: &Facts) -> Access {
    if sees_all(p) {
        return Access::Act;
    }
    let Some(me) = me.filter(|a| a.id == p.id) else {
        return Access::None;
    };
    if p.is_lead() && me.leads.iter().any(|t| t == f.team) {
        return Access::Act;
    }
    let mine = f.agent == Some(me.id.as_str());
    match f.state {
        HandoffState::Assigned if mine => Access::Act,
        HandoffState::Closed if mine => Access::Read,
        HandoffState::Waiting if me.teams.iter().any(|t| t == f.team) => Access::Read,
        _ => Access::None,
    }
}

/// The teams whose waiting lines the caller may list (`None`: every team).
pub fn waiting_teams(p: &Principal, me: Option<&Agent>) -> Option<Vec<String>> {
    if sees_all(p) {
        return None;
    }
    let mut teams: Vec<String> = me
        .filter(|a| a.id == p.id)
        .map(|a| {
            let leads = if p.is_lead() {
                a.leads.clone()
            } else {
                Vec::new()
            };
            a.teams.iter().cloned().chain(leads).collect()
        })
        .unwrap_or_default();
    teams.sort();
    teams.dedup();
    Some(teams)
}

/// Where a list of conversations comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// The caller's own (their reservations, or the agent's closed list), of `team` only if
    /// given.
    Own { agent: String, team: Option<String> },
    /// These teams' lists.
    Teams(Vec<String>),
    /// Every team's list.
    AllTeams,
}

/// Which lists `GET /api/conversations` reads for the caller: for `waiting`, the lines of
/// their own and led teams ([`waiting_teams`]); for `assigned` and `closed`, a lead's led
/// teams, an admin's (or integration's) every team, anyone else's own. `team` narrows it
/// (a team the caller may not list gives an empty list, or their own in it); `mine` asks
/// for the caller's own. A caller without its own agent item has no "own".
pub fn list_scope(
    p: &Principal,
    me: Option<&Agent>,
    state: HandoffState,
    team: Option<&str>,
    mine: bool,
) -> Option<ListScope> {
    let me = me.filter(|a| a.id == p.id);
    let own = || {
        me.map(|a| ListScope::Own {
            agent: a.id.clone(),
            team: team.map(str::to_owned),
        })
    };
    if mine && state != HandoffState::Waiting {
        return own();
    }
    let narrow = |teams: Vec<String>| match team {
        Some(t) => teams.into_iter().filter(|x| x == t).collect(),
        None => teams,
    };
    if sees_all(p) {
        return Some(match team {
            Some(t) => ListScope::Teams(vec![t.to_owned()]),
            None => ListScope::AllTeams,
        });
    }
    if state == HandoffState::Waiting {
        return waiting_teams(p, me).map(|t| ListScope::Teams(narrow(t)));
    }
    let led: Vec<String> = match me {
        Some(a) if p.is_lead() => a.leads.clone(),
        _ => Vec::new(),
    };
    match team {
        _ if led.is_empty() => own(),
        Some(t) if !led.iter().any(|l| l == t) => own(),
        _ => Some(ListScope::Teams(narrow(led))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::Group;
    use crate::routing::model::AgentStatus;

    fn principal(id: &str, groups: &[Group], machine: bool) -> Principal {
        Principal {
            id: id.into(),
            sub: format!("sub-{id}"),
            machine,
            groups: groups.iter().copied().collect(),
            scopes: vec![],
        }
    }

    fn agent(id: &str, teams: &[&str], leads: &[&str]) -> Agent {
        Agent {
            id: id.into(),
            name: id.into(),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            languages: vec![],
            status: AgentStatus::Online,
            capacity: 3,
            open: 0,
            last_assigned_at: 0,
            leads: leads.iter().map(|t| t.to_string()).collect(),
            sub: None,
        }
    }

    const STATES: [HandoffState; 3] = [
        HandoffState::Waiting,
        HandoffState::Assigned,
        HandoffState::Closed,
    ];

    /// Every combination of team (own / other), assignee (me / other / none) and state.
    fn all_facts() -> Vec<(&'static str, Option<&'static str>, HandoffState)> {
        let mut out = Vec::new();
        for team in ["sales", "billing"] {
            for agent in [Some("alice"), Some("bruno"), None] {
                for state in STATES {
                    out.push((team, agent, state));
                }
            }
        }
        out
    }

    fn facts<'a>(c: &'a (&str, Option<&str>, HandoffState)) -> Facts<'a> {
        Facts {
            team: c.0,
            agent: c.1,
            state: c.2,
        }
    }

    #[test]
    fn admins_and_integrations_act_on_every_conversation() {
        for p in [
            principal("root", &[Group::Admins], false),
            principal("client-1", &[], true),
            principal("desk", &[Group::Integrations], false),
        ] {
            for c in all_facts() {
                assert_eq!(access(&p, None, &facts(&c)), Access::Act, "{p:?} {c:?}");
            }
        }
    }

    #[test]
    fn an_agent_acts_on_own_assigned_reads_own_closed_and_own_teams_line() {
        let p = principal("alice", &[Group::Agents], false);
        let me = agent("alice", &["sales"], &[]);
        for c in all_facts() {
            let expected = match c {
                (_, Some("alice"), HandoffState::Assigned) => Access::Act,
                (_, Some("alice"), HandoffState::Closed) => Access::Read,
                ("sales", _, HandoffState::Waiting) => Access::Read,
                _ => Access::None,
            };
            assert_eq!(access(&p, Some(&me), &facts(&c)), expected, "{c:?}");
        }
    }

    #[test]
    fn a_lead_acts_on_every_conversation_of_the_teams_they_lead_only() {
        let p = principal("alice", &[Group::Agents, Group::Leads], false);
        let me = agent("alice", &["sales"], &["billing"]);
        for c in all_facts() {
            let got = access(&p, Some(&me), &facts(&c));
            if c.0 == "billing" {
                assert_eq!(got, Access::Act, "{c:?}");
            } else {
                assert_eq!(
                    got,
                    access(
                        &principal("alice", &[Group::Agents], false),
                        Some(&me),
                        &facts(&c)
                    )
                );
            }
        }
    }

    #[test]
    fn leads_on_the_item_without_the_leads_group_give_nothing_extra() {
        let p = principal("alice", &[Group::Agents], false);
        let me = agent("alice", &["sales"], &["billing"]);
        let c = ("billing", Some("bruno"), HandoffState::Assigned);
        assert_eq!(access(&p, Some(&me), &facts(&c)), Access::None);
    }

    #[test]
    fn a_caller_without_its_own_agent_item_sees_nothing() {
        let p = principal("mallory", &[Group::Agents], false);
        for me in [None, Some(agent("alice", &["sales"], &["sales"]))] {
            for c in all_facts() {
                assert_eq!(access(&p, me.as_ref(), &facts(&c)), Access::None, "{c:?}");
            }
        }
    }

    fn scope(
        p: &Principal,
        me: Option<&Agent>,
        state: HandoffState,
        team: Option<&str>,
        mine: bool,
    ) -> Option<ListScope> {
        list_scope(p, me, state, team, mine)
    }

    fn own(agent: &str, team: Option<&str>) -> Option<ListScope> {
        Some(ListScope::Own {
            agent: agent.into(),
            team: team.map(Into::into),
        })
    }

    fn teams(t: &[&str]) -> Option<ListScope> {
        Some(ListScope::Teams(t.iter().map(|x| x.to_string()).collect()))
    }

    #[test]
    fn a_lead_lists_the_led_teams_assigned_and_closed_and_own_plus_led_lines() {
        let p = principal("lea", &[Group::Agents, Group::Leads], false);
        let me = agent("lea", &["sales"], &["support", "billing"]);
        for state in [HandoffState::Assigned, HandoffState::Closed] {
            assert_eq!(
                scope(&p, Some(&me), state, None, false),
                teams(&["support", "billing"])
            );
            assert_eq!(
                scope(&p, Some(&me), state, Some("support"), false),
                teams(&["support"])
            );
            // A team they do not lead: only their own there.
            assert_eq!(
                scope(&p, Some(&me), state, Some("sales"), false),
                own("lea", Some("sales"))
            );
            assert_eq!(scope(&p, Some(&me), state, None, true), own("lea", None));
        }
        let line = scope(&p, Some(&me), HandoffState::Waiting, None, false);
        assert_eq!(line, teams(&["billing", "sales", "support"]));
        let other = scope(&p, Some(&me), HandoffState::Waiting, Some("ops"), false);
        assert_eq!(other, teams(&[]));
    }

    #[test]
    fn a_plain_agent_lists_only_their_own_and_their_teams_lines() {
        let p = principal("alice", &[Group::Agents], false);
        let me = agent("alice", &["sales"], &["support"]);
        for state in [HandoffState::Assigned, HandoffState::Closed] {
            assert_eq!(scope(&p, Some(&me), state, None, false), own("alice", None));
            assert_eq!(
                scope(&p, Some(&me), state, Some("support"), false),
                own("alice", Some("support"))
            );
        }
        assert_eq!(
            scope(&p, Some(&me), HandoffState::Waiting, None, false),
            teams(&["sales"])
        );
    }

    #[test]
    fn admins_and_integrations_list_every_team_or_the_one_named() {
        for p in [
            principal("root", &[Group::Admins], false),
            principal("client-1", &[], true),
        ] {
            for state in STATES {
                assert_eq!(
                    scope(&p, None, state, None, false),
                    Some(ListScope::AllTeams)
                );
                assert_eq!(
                    scope(&p, None, state, Some("sales"), false),
                    teams(&["sales"])
                );
            }
            assert_eq!(scope(&p, None, HandoffState::Assigned, None, true), None);
        }
        let root = principal("root", &[Group::Admins], false);
        let me = agent("root", &["sales"], &[]);
        assert_eq!(
            scope(&root, Some(&me), HandoffState::Closed, None, true),
            own("root", None)
        );
    }

    #[test]
    fn a_caller_without_its_own_agent_item_lists_nothing_of_its_own() {
        let p = principal("mallory", &[Group::Agents, Group::Leads], false);
        let someone = agent("alice", &["sales"], &["sales"]);
        for me in [None, Some(&someone)] {
            assert_eq!(scope(&p, me, HandoffState::Assigned, None, false), None);
            assert_eq!(
                scope(&p, me, HandoffState::Waiting, None, false),
                teams(&[])
            );
        }
    }

    #[test]
    fn waiting_lines_listed_are_own_teams_plus_led_teams_or_all() {
        let me = agent("alice", &["sales"], &["billing"]);
        let lead = principal("alice", &[Group::Leads], false);
        assert_eq!(
            waiting_teams(&lead, Some(&me)),
            Some(vec!["billing".into(), "sales".into()])
        );
        let plain = principal("alice", &[Group::Agents], false);
        assert_eq!(waiting_teams(&plain, Some(&me)), Some(vec!["sales".into()]));
        assert_eq!(waiting_teams(&plain, None), Some(vec![]));
        assert_eq!(
            waiting_teams(&principal("x", &[Group::Admins], false), None),
            None
        );
    }
}
