//! `prechat-admin survey ...`: validate, publish, list and show survey definitions.
//!
//! `publish` validates first (every problem, with its path and line) and stores the file as
//! the next immutable version; publishing an unchanged file is a no-op. Conversations already
//! running finish on the version they started with; new ones take the latest.

use chrono::DateTime;

use super::{context, AdminError};
use crate::store::survey_store::{DynamoSurveyStore, Published, SurveyStore};
use crate::store::DynamoTable;
use crate::survey::definition::DEFAULT_SURVEY_YAML;
use crate::survey::Survey;

pub const USAGE: &str = "usage: prechat-admin [--table NAME] survey <command>

commands:
  validate FILE            check a definition without publishing it (no table needed)
  publish FILE             validate, then store FILE as the next version of its survey id
  list [SURVEY_ID]         published versions (default: $PRECHAT_SURVEY_ID or `default`)
  show [SURVEY_ID] [VERSION]
                           the YAML of a version (default: the latest; 0 = the shipped default)";

fn default_survey_id() -> String {
    crate::config::EnvReader::from_env()
        .optional("PRECHAT_SURVEY_ID")
        .unwrap_or_else(|| "default".to_owned())
}

fn usage(msg: impl Into<String>) -> AdminError {
    AdminError::Usage(format!("{}\n\n{USAGE}", msg.into()))
}

fn failed(e: impl std::fmt::Display) -> AdminError {
    AdminError::Failed(e.to_string())
}

/// Reads and validates a definition file.
pub fn validate_file(path: &str) -> Result<(Survey, String), AdminError> {
    let yaml = std::fs::read_to_string(path).map_err(|e| failed(format!("{path}: {e}")))?;
    let survey = Survey::parse(&yaml, 0).map_err(|e| failed(format!("{path}: {e}")))?;
    Ok((survey, yaml))
}

/// Entry from [`super::run`]: resolves the table and runs against DynamoDB.
pub async fn run(mut args: Vec<String>) -> Result<String, AdminError> {
    // `--table NAME` may stand before or after the command.
    let mut table_args = Vec::new();
    if let Some(i) = args.iter().position(|a| a == "--table") {
        if i + 1 >= args.len() {
            return Err(usage("--table needs a value"));
        }
        table_args = args.drain(i..=i + 1).collect();
    }
    let command = args.first().cloned().unwrap_or_default();
    if command == "validate" {
        let path = args.get(1).ok_or_else(|| usage("validate needs a FILE"))?;
        let (survey, _) = validate_file(path)?;
        return Ok(summary("valid", &survey));
    }
    if command.is_empty() || command == "help" {
        return Ok(USAGE.to_owned());
    }
    let ctx = context(&mut table_args)?;
    let sdk = crate::aws::load_config().await;
    let store = DynamoSurveyStore::new(DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        ctx.table,
    ));
    let now = chrono::Utc::now().timestamp();
    run_with(&store, args, now).await
}

fn summary(verb: &str, s: &Survey) -> String {
    format!(
        "{verb}: survey {:?}, {} question(s), languages {} (default {})",
        s.id,
        s.questions.len(),
        s.languages.join(", "),
        s.default_language
    )
}

fn when(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ts.to_string())
}

/// The survey commands against any [`SurveyStore`] (args without the table option).
pub async fn run_with(
    store: &impl SurveyStore,
    args: Vec<String>,
    now: i64,
) -> Result<String, AdminError> {
    let mut it = args.into_iter();
    let command = it.next().unwrap_or_default();
    let rest: Vec<String> = it.collect();
    match command.as_str() {
        "publish" => {
            let [path] = rest.as_slice() else {
                return Err(usage("publish needs exactly one FILE"));
            };
            let (survey, yaml) = validate_file(path)?;
            match store.publish(&survey.id, &yaml, now).await.map_err(failed)? {
                Published::New(v) => Ok(format!(
                    "{}\npublished {:?} version {v}: new conversations use it; running ones finish on theirs",
                    summary("valid", &survey),
                    survey.id
                )),
                Published::Unchanged(v) => Ok(format!(
                    "{:?} version {v} already has this exact text: nothing published",
                    survey.id
                )),
            }
        }
        "list" => {
            let id = rest.first().cloned().unwrap_or_else(default_survey_id);
            let versions = store.list(&id).await.map_err(failed)?;
            if versions.is_empty() {
                return Ok(format!(
                    "no published versions of {id:?}: the shipped default survey runs (version 0)"
                ));
            }
            let last = versions.last().map(|v| v.version);
            let lines: Vec<String> = versions
                .iter()
                .map(|v| {
                    format!(
                        "{id}  v{}  {}  sha256:{}{}",
                        v.version,
                        when(v.published_at),
                        v.sha256.get(..12).unwrap_or(&v.sha256),
                        if Some(v.version) == last {
                            "  (latest)"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            Ok(lines.join("\n"))
        }
        "show" => {
            let id = rest.first().cloned().unwrap_or_else(default_survey_id);
            let version = match rest.get(1) {
                None => None,
                Some(v) => Some(
                    v.trim_start_matches('v')
                        .parse::<u32>()
                        .map_err(|_| usage(format!("bad version {v:?}")))?,
                ),
            };
            match version {
                Some(0) => Ok(DEFAULT_SURVEY_YAML.to_owned()),
                Some(v) => store
                    .get(&id, v)
                    .await
                    .map_err(failed)?
                    .map(|s| s.yaml)
                    .ok_or_else(|| failed(format!("{id:?} has no version {v}"))),
                None => match store.latest(&id).await.map_err(failed)? {
                    Some(s) => Ok(s.yaml),
                    None => Ok(format!(
                        "# no published versions of {id:?}: the shipped default (version 0) runs\n{DEFAULT_SURVEY_YAML}"
                    )),
                },
            }
        }
        other => Err(usage(format!("unknown survey command {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_reports_every_problem_with_the_file_name() {
        let dir = std::env::temp_dir().join(format!("prechat-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(&good, DEFAULT_SURVEY_YAML).unwrap();
        let (s, _) = validate_file(good.to_str().unwrap()).unwrap();
        assert_eq!(s.id, "default");
        let bad = dir.join("bad.yaml");
        std::fs::write(
            &bad,
            DEFAULT_SURVEY_YAML
                .replace("pattern: \"[0-9]{6,10}\"", "pattern: \"[0-9\"")
                .replace("key: email", "key: name"),
        )
        .unwrap();
        let err = validate_file(bad.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.yaml"), "{err}");
        assert!(err.contains("duplicate key \"name\""), "{err}");
        assert!(err.contains("bad regex"), "{err}");
        assert!(err.contains("line "), "{err}");
        let missing = validate_file("/nonexistent/survey.yaml")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("/nonexistent/survey.yaml"), "{missing}");
    }
}
