//! The admin command's logic: argument dispatch to the survey and agent/team commands.
//! Each command group owns a module and returns the text to print (`answers export` streams
//! its CSV itself and returns nothing to print when it writes to standard output).

pub mod agents;
pub mod contacts;
pub mod csv;
pub mod export;
pub mod survey;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Failed(String),
}

pub const USAGE: &str = "usage: prechat-admin [--table NAME] <group> <command> [args]

groups:
  survey   publish, list and show survey definitions
  contact  show PHONE_NUMBER_ID CONTACT: what a contact answered (fields, consent, conversation)
  answers  export --since YYYY-MM-DD [--until YYYY-MM-DD] [--survey ID] [--out FILE]:
           one CSV row per conversation started in the range (UTC days, until included,
           default today), one column per question; to standard output without --out
  agent, team, routing, conversation, waiting: agent assignment (below)
  help     this text

The table defaults to $PRECHAT_TABLE.

agent assignment:
  agent    add ID --name NAME --teams T1,T2 [--languages en,de] [--leads T1] [--capacity N] [--status S]
           update ID [--name ..] [--teams ..] [--languages ..] [--leads ..] [--capacity N] [--status S]
           status ID online|away|offline;  capacity ID N;  list
  team     add FILE.json | update FILE.json | list | show ID
  routing  set FILE.json | show
  conversation close CONVERSATION_ID [--by NAME]
  waiting  TEAM   (the team's line, in order)
  Commands that free capacity queue a drain job on --assignment-queue URL
  (default $PRECHAT_ASSIGNMENT_QUEUE_URL).";

/// Settings every admin command shares.
#[derive(Debug, Clone)]
pub struct AdminContext {
    pub table: String,
}

/// Splits off `--table NAME` and resolves the table from the environment otherwise.
pub fn context(args: &mut Vec<String>) -> Result<AdminContext, AdminError> {
    let mut table = None;
    if let Some(i) = args.iter().position(|a| a == "--table") {
        if i + 1 >= args.len() {
            return Err(AdminError::Usage("--table needs a value".into()));
        }
        table = Some(args.remove(i + 1));
        args.remove(i);
    }
    let table = table
        .or_else(|| crate::config::EnvReader::from_env().optional("PRECHAT_TABLE"))
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            AdminError::Usage("no table: pass --table NAME or set PRECHAT_TABLE".into())
        })?;
    Ok(AdminContext { table })
}

/// Runs one admin command; returns what to print. `--table NAME` may stand anywhere; each
/// group resolves it with [`context`].
pub async fn run(mut args: Vec<String>) -> Result<String, AdminError> {
    let pos = args
        .iter()
        .position(|a| !a.starts_with("--") && !is_table_value(&args, a));
    let group = match pos {
        Some(i) => args.remove(i),
        None => "help".to_owned(),
    };
    match group.as_str() {
        "help" | "-h" => Ok(USAGE.to_owned()),
        "survey" => survey::run(args).await,
        "contact" => contacts::run(args).await,
        "answers" => export::run(args).await,
        "agent" | "team" | "routing" | "conversation" | "waiting" => {
            agents::run(&group, args).await
        }
        other => Err(AdminError::Usage(format!("unknown group {other:?}"))),
    }
}

fn is_table_value(args: &[String], candidate: &String) -> bool {
    args.windows(2)
        .any(|w| w[0] == "--table" && std::ptr::eq(&w[1], candidate))
}
