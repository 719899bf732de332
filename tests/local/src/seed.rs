//! First-run data for the local stack: the default survey (`shared/surveys/default.yaml`),
//! two teams, routing rules and three sample agents, written with `prechat-admin`'s own
//! command code so the local table holds exactly what an operator would create.

use std::path::Path;

use crate::workspace_root;

/// Sample teams and routing (files in `tests/local/seed/`).
const TEAMS: [(&str, &str); 2] = [
    ("sales.json", include_str!("../seed/sales.json")),
    ("support.json", include_str!("../seed/support.json")),
];
const ROUTING: &str = include_str!("../seed/routing.json");

/// Sample agents: (id, name, teams, capacity, status).
pub const AGENTS: [(&str, &str, &str, &str, &str); 3] = [
    ("alice", "Alice", "sales,support", "2", "online"),
    ("bruno", "Bruno", "support", "1", "online"),
    ("carmen", "Carmen", "sales", "2", "offline"),
];

/// Runs every seeding command; returns one line per command, failures included (the stack
/// still starts, and the line says what is missing).
pub async fn seed(
    table: &str,
    assignment_queue: Option<&str>,
    scratch: &Path,
) -> Vec<Result<String, String>> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    let survey = workspace_root().join("shared/surveys/default.yaml");
    commands.push(args(&["survey", "publish", &survey.to_string_lossy()]));
    for (file, text) in TEAMS {
        let path = scratch.join(file);
        if let Err(e) = std::fs::write(&path, text) {
            return vec![Err(format!("{}: {e}", path.display()))];
        }
        commands.push(args(&["team", "add", &path.to_string_lossy()]));
    }
    let routing = scratch.join("routing.json");
    if let Err(e) = std::fs::write(&routing, ROUTING) {
        return vec![Err(format!("{}: {e}", routing.display()))];
    }
    commands.push(args(&["routing", "set", &routing.to_string_lossy()]));
    for (id, name, teams, capacity, status) in AGENTS {
        commands.push(args(&[
            "agent",
            "add",
            id,
            "--name",
            name,
            "--teams",
            teams,
            "--languages",
            "en,es",
            "--capacity",
            capacity,
            "--status",
            status,
        ]));
    }
    let mut out = Vec::new();
    for mut cmd in commands {
        let shown = cmd.join(" ");
        cmd.extend(["--table".to_owned(), table.to_owned()]);
        if let (Some(q), false) = (assignment_queue, cmd.first().is_some_and(|g| g == "survey")) {
            cmd.extend(["--assignment-queue".to_owned(), q.to_owned()]);
        }
        out.push(match prechat::admin::run(cmd).await {
            Ok(_) => Ok(shown),
            Err(e) => Err(format!("{shown}: {}", first_line(&e.to_string()))),
        });
    }
    out
}

/// Stores each seeded agent's Cognito `sub` on its agent item (`Agent.sub`): an agent's id is
/// its Cognito username, and the item keeps the `sub` beside it (`subs`: username -> sub, from
/// [`crate::cognito::LocalCognito::subs`]). One line per agent, failures included.
pub async fn link_subs(
    table: &prechat::store::DynamoTable,
    subs: &std::collections::BTreeMap<String, String>,
) -> Vec<Result<String, String>> {
    let store = prechat::store::routing::RoutingStore::new(table.clone());
    let mut out = Vec::new();
    for (id, ..) in AGENTS {
        let Some(sub) = subs.get(id) else {
            out.push(Err(format!("agent {id}: no Cognito user")));
            continue;
        };
        let linked = match store.get_agent(id).await {
            Ok(Some(agent)) => {
                let agent = prechat::routing::model::Agent {
                    sub: Some(sub.clone()),
                    ..agent
                };
                store
                    .upsert_agent(&agent)
                    .await
                    .map(|()| format!("agent {id}: Cognito sub {sub}"))
                    .map_err(|e| format!("agent {id}: {e}"))
            }
            Ok(None) => Err(format!("agent {id}: not seeded")),
            Err(e) => Err(format!("agent {id}: {e}")),
        };
        out.push(linked);
    }
    out
}

/// Sets an agent online or offline, as `prechat-admin agent status ID online|offline` does
/// (which also queues a drain job when capacity frees up).
pub async fn set_agent_status(
    table: &str,
    assignment_queue: Option<&str>,
    id: &str,
    online: bool,
) -> Result<String, String> {
    let status = if online { "online" } else { "offline" };
    let mut cmd = args(&["agent", "status", id, status, "--table", table]);
    if let Some(q) = assignment_queue {
        cmd.extend(["--assignment-queue".to_owned(), q.to_owned()]);
    }
    prechat::admin::run(cmd)
        .await
        .map_err(|e| first_line(&e.to_string()))
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}
