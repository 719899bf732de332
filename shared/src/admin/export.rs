//! The answers export: one CSV row per conversation started in a date range (UTC days, both
//! ends included), optionally of one survey, with one column per question.
//!
//! Streamed, never scanned: the conversations of each day are pages of the `gsi3` index
//! ([`keys::conversation_day`], keys only), and each page's items are one `BatchGetItem`
//! (at most 100 keys), written out before the next page is read, so memory holds one page
//! whatever the range. The header needs every question label before the first row, and the
//! labels depend on the survey versions the rows ran on, so the export goes through the range
//! twice: first to learn which (survey, version) pairs it holds (a small set), then to write
//! the rows. That doubles the reads (each conversation item is read twice, about one read unit
//! per four conversations each time) in exchange for exact columns without a scan or an index
//! of its own; a conversation started between the two passes on a version the first did not
//! see keeps only the answers that have a column.
//!
//! Columns: `contact, channel, survey, version, started, completed, assigned, agent, team`,
//! then the questions: the union over the versions in the export, in each survey's order
//! (newest version first, a question only older versions had after the one it followed),
//! headed by the label in the survey's default language; a choice shows its option's label,
//! not its id. Times are UTC, `YYYY-MM-DDTHH:MM:SSZ`. Every cell goes through
//! [`super::csv`] (quoting, formula neutralisation).
//!
//! Personal data goes into the output only, never to logs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use chrono::{Days, NaiveDate};

use super::{context, csv, AdminError};
use crate::store::item::{s, Item, ItemExt};
use crate::store::survey_store::{DynamoSurveyStore, SurveyStore};
use crate::store::{attr, keys, DynamoTable, StoreError};
use crate::survey::definition::QuestionKind;
use crate::survey::Survey;
use crate::webchat::WEB_PHONE_NUMBER_ID;

/// The longest range one export covers, in days (a year, leap day included).
pub const MAX_DAYS: u64 = 366;

/// Conversations per index page (and per `BatchGetItem`, whose limit is 100 keys).
pub const PAGE_SIZE: usize = 100;

/// The fixed columns before the questions.
pub const FIXED_COLUMNS: [&str; 9] = [
    "contact",
    "channel",
    "survey",
    "version",
    "started",
    "completed",
    "assigned",
    "agent",
    "team",
];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The dates asked for are not a range we export (the caller's mistake: HTTP 400).
    #[error("{0}")]
    InvalidRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The output could not be written (a full disk, a closed pipe).
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
}

impl ExportError {
    /// Whether the same export may succeed later (throttling, an unavailable table).
    pub fn is_retryable(&self) -> bool {
        match self {
            ExportError::InvalidRange(_) | ExportError::Write(_) => false,
            ExportError::Store(e) => e.is_retryable(),
        }
    }
}

/// UTC days `since..=until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub since: NaiveDate,
    pub until: NaiveDate,
}

impl DateRange {
    /// Parses `YYYY-MM-DD` dates; `until` defaults to `today`. Refuses `since > until` and
    /// ranges longer than [`MAX_DAYS`].
    pub fn parse(
        since: &str,
        until: Option<&str>,
        today: NaiveDate,
    ) -> Result<DateRange, ExportError> {
        let day = |name: &str, v: &str| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .filter(|_| v.len() == 10)
                .ok_or_else(|| {
                    ExportError::InvalidRange(format!("{name} {v:?} is not a date YYYY-MM-DD"))
                })
        };
        let since = day("--since", since)?;
        let until = match until {
            Some(u) => day("--until", u)?,
            None => today,
        };
        DateRange::new(since, until)
    }

    pub fn new(since: NaiveDate, until: NaiveDate) -> Result<DateRange, ExportError> {
        if since > until {
            return Err(ExportError::InvalidRange(format!(
                "--since {since} is after --until {until}"
            )));
        }
        let days = until.signed_duration_since(since).num_days() + 1;
        if days > MAX_DAYS as i64 {
            return Err(ExportError::InvalidRange(format!(
                "{days} days from {since} to {until}: an export covers at most {MAX_DAYS}"
            )));
        }
        Ok(DateRange { since, until })
    }

    /// Every day of the range, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        let mut next = Some(self.since);
        std::iter::from_fn(move || {
            let day = next.filter(|d| *d <= self.until)?;
            next = day.checked_add_days(Days::new(1));
            Some(day)
        })
    }
}

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub range: DateRange,
    /// Only this survey's conversations.
    pub survey: Option<String>,
    /// Conversations per page (1..=[`PAGE_SIZE`]; smaller only in tests).
    pub page_size: usize,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: usize,
    pub columns: Vec<String>,
}

/// A conversation as the export reads it from its item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportedConversation {
    pub id: String,
    pub phone_number_id: String,
    pub contact_key: String,
    pub survey_id: String,
    pub survey_version: u32,
    pub started_at: i64,
    pub completed_at: Option<i64>,
    pub assigned_at: Option<i64>,
    pub assigned_agent: Option<String>,
    pub assigned_team: Option<String>,
    /// Question key -> stored answer (a choice's option id).
    pub answers: BTreeMap<String, String>,
}

/// One page of a day's conversation ids, in start order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayPage {
    pub ids: Vec<String>,
    /// Where the next page starts (the last sort key read), when there may be one.
    pub next: Option<String>,
}

/// What the export reads.
pub trait ExportStore: Send + Sync {
    /// Up to `limit` ids of the conversations started on `day`, after cursor `after`.
    fn day_page(
        &self,
        day: NaiveDate,
        after: Option<&str>,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<DayPage, StoreError>> + Send;
    /// The conversations of these ids that exist (at most [`PAGE_SIZE`]), in any order.
    fn conversations(
        &self,
        ids: &[String],
    ) -> impl std::future::Future<Output = Result<Vec<ExportedConversation>, StoreError>> + Send;
    /// A survey version (0 = the shipped default), if it exists and parses.
    fn survey(
        &self,
        survey_id: &str,
        version: u32,
    ) -> impl std::future::Future<Output = Result<Option<Survey>, StoreError>> + Send;
}

/// A question column: the answers of `key`, headed `label`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub key: String,
    pub label: String,
}

/// The question columns of these survey versions (see the module doc for the order). One
/// column per question key, so surveys sharing a key share its column.
pub fn question_columns(surveys: &[&Survey]) -> Vec<Column> {
    let mut sorted: Vec<&Survey> = surveys.to_vec();
    sorted.sort_by(|a, b| a.id.cmp(&b.id).then(b.version.cmp(&a.version)));
    let mut out: Vec<Column> = Vec::new();
    let mut block_start = 0;
    let mut current: Option<&str> = None;
    for survey in sorted {
        if current != Some(survey.id.as_str()) {
            current = Some(survey.id.as_str());
            block_start = out.len();
        }
        let mut at = block_start;
        for q in &survey.questions {
            match out.iter().position(|c| c.key == q.key) {
                Some(i) => at = at.max(i + 1),
                None => {
                    let label = survey.label(q, &survey.default_language).to_owned();
                    out.insert(
                        at,
                        Column {
                            key: q.key.clone(),
                            label,
                        },
                    );
                    at += 1;
                }
            }
        }
    }
    out
}

/// The header row.
pub fn header(columns: &[Column]) -> Vec<String> {
    FIXED_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(columns.iter().map(|c| c.label.clone()))
        .collect()
}

fn time(at: Option<i64>) -> String {
    at.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// One conversation's row; `survey` is the version it ran on, when known.
pub fn row(c: &ExportedConversation, survey: Option<&Survey>, columns: &[Column]) -> Vec<String> {
    let channel = if c.phone_number_id == WEB_PHONE_NUMBER_ID {
        "web"
    } else {
        "whatsapp"
    };
    let mut out = vec![
        c.contact_key.clone(),
        channel.to_owned(),
        c.survey_id.clone(),
        c.survey_version.to_string(),
        time(Some(c.started_at)),
        time(c.completed_at),
        time(c.assigned_at),
        c.assigned_agent.clone().unwrap_or_default(),
        c.assigned_team.clone().unwrap_or_default(),
    ];
    for col in columns {
        let Some(value) = c.answers.get(&col.key) else {
            out.push(String::new());
            continue;
        };
        // A choice is stored as its option id; a reader wants the option's label.
        let display = survey.and_then(|s| {
            let QuestionKind::Choice { options } = &s.question(&col.key)?.kind else {
                return None;
            };
            let o = options.iter().find(|o| o.id == *value)?;
            Some(s.pick(&o.label, &s.default_language).to_owned())
        });
        out.push(display.unwrap_or_else(|| value.clone()));
    }
    out
}

/// Every page of conversations in the range (of the survey, if one is asked for), in start
/// order, one page at a time.
async fn each_page<S, F>(store: &S, req: &ExportRequest, mut f: F) -> Result<(), ExportError>
where
    S: ExportStore,
    F: FnMut(Vec<ExportedConversation>) -> Result<(), ExportError>,
{
    let limit = req.page_size.clamp(1, PAGE_SIZE);
    for day in req.range.days() {
        let mut after: Option<String> = None;
        loop {
            let page = store.day_page(day, after.as_deref(), limit).await?;
            if !page.ids.is_empty() {
                let mut convs = store.conversations(&page.ids).await?;
                convs.retain(|c| req.survey.as_deref().is_none_or(|s| s == c.survey_id));
                // BatchGetItem answers in any order: back to the index's.
                convs.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
                f(convs)?;
            }
            match page.next {
                Some(n) if after.as_deref() != Some(n.as_str()) => after = Some(n),
                _ => break,
            }
        }
    }
    Ok(())
}

/// Writes the export to `out`: the header, then a row per conversation, flushed page by page.
///
/// `out` is a blocking writer (a file or standard output for the CLI; a buffer that uploads
/// parts for an export to S3): a page is a few hundred kilobytes at most, written at once.
pub async fn export(
    store: &impl ExportStore,
    req: &ExportRequest,
    out: &mut impl Write,
) -> Result<ExportSummary, ExportError> {
    let mut versions: BTreeSet<(String, u32)> = BTreeSet::new();
    each_page(store, req, |convs| {
        versions.extend(convs.into_iter().map(|c| (c.survey_id, c.survey_version)));
        Ok(())
    })
    .await?;
    let mut surveys: BTreeMap<(String, u32), Survey> = BTreeMap::new();
    for (id, version) in versions {
        if let Some(s) = store.survey(&id, version).await? {
            surveys.insert((id, version), s);
        }
    }
    let columns = question_columns(&surveys.values().collect::<Vec<_>>());
    let head = header(&columns);
    out.write_all(csv::row(&head).as_bytes())?;
    let mut rows = 0;
    each_page(store, req, |convs| {
        let mut text = String::new();
        for c in &convs {
            let survey = surveys.get(&(c.survey_id.clone(), c.survey_version));
            csv::push_row(&mut text, &row(c, survey, &columns));
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        rows += convs.len();
        Ok(())
    })
    .await?;
    out.flush()?;
    Ok(ExportSummary {
        rows,
        columns: head,
    })
}

// ---------------------------------------------------------------- CLI

pub const USAGE: &str = "usage: prechat-admin [--table NAME] answers export --since YYYY-MM-DD \
[--until YYYY-MM-DD] [--survey ID] [--out FILE]
  One CSV row per conversation started from --since to --until (UTC days, both included;
  --until defaults to today, at most 366 days), one column per question; only survey ID's
  conversations with --survey. Written to FILE, else to standard output.";

/// The options of `answers export`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportArgs {
    pub since: String,
    pub until: Option<String>,
    pub survey: Option<String>,
    pub out: Option<String>,
}

/// Parses `export --since .. [--until ..] [--survey ..] [--out ..]` (without `--table`).
pub fn parse_args(args: &[String]) -> Result<ExportArgs, AdminError> {
    let usage = |m: &str| AdminError::Usage(format!("{m}\n\n{USAGE}"));
    let Some((cmd, rest)) = args.split_first() else {
        return Err(usage("answers needs a command"));
    };
    if cmd != "export" {
        return Err(usage(&format!("unknown answers command {cmd:?}")));
    }
    let mut opts: BTreeMap<&str, String> = BTreeMap::new();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let name = match flag.as_str() {
            f @ ("--since" | "--until" | "--survey" | "--out") => f,
            other => return Err(usage(&format!("unexpected argument {other:?}"))),
        };
        let value = it
            .next()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| usage(&format!("{name} needs a value")))?;
        if opts.insert(name, value.clone()).is_some() {
            return Err(usage(&format!("{name} given twice")));
        }
    }
    Ok(ExportArgs {
        since: opts
            .remove("--since")
            .ok_or_else(|| usage("--since is required"))?,
        until: opts.remove("--until"),
        survey: opts.remove("--survey"),
        out: opts.remove("--out"),
    })
}

/// Entry from [`super::run`]: streams the CSV to `--out` (and says how many rows) or to
/// standard output (and returns nothing to print, so the CSV stays clean).
pub async fn run(mut args: Vec<String>) -> Result<String, AdminError> {
    let ctx = context(&mut args)?;
    let a = parse_args(&args)?;
    let today = chrono::Utc::now().date_naive();
    let range = DateRange::parse(&a.since, a.until.as_deref(), today)
        .map_err(|e| AdminError::Usage(format!("{e}\n\n{USAGE}")))?;
    let req = ExportRequest {
        range,
        survey: a.survey,
        page_size: PAGE_SIZE,
    };
    let sdk = crate::aws::load_config().await;
    let store = DynamoExportStore::new(DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        ctx.table,
    ));
    let failed = |e: ExportError| AdminError::Failed(e.to_string());
    match a.out {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .map_err(|e| AdminError::Failed(format!("{path}: {e}")))?;
            let mut w = std::io::BufWriter::new(file);
            let done = export(&store, &req, &mut w).await.map_err(failed)?;
            Ok(format!(
                "wrote {} row(s), {} column(s) to {path}",
                done.rows,
                done.columns.len()
            ))
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout());
            export(&store, &req, &mut w).await.map_err(failed)?;
            Ok(String::new())
        }
    }
}

// ---------------------------------------------------------------- DynamoDB

/// The export's reads against the state table.
#[derive(Clone, Debug)]
pub struct DynamoExportStore {
    table: DynamoTable,
    surveys: DynamoSurveyStore,
}

/// `BatchGetItem` rounds for unprocessed keys before giving up as throttled.
const BATCH_ROUNDS: usize = 5;

impl DynamoExportStore {
    pub fn new(table: DynamoTable) -> Self {
        DynamoExportStore {
            surveys: DynamoSurveyStore::new(table.clone()),
            table,
        }
    }
}

/// A conversation item as the export reads it.
pub fn decode(item: &Item) -> Result<ExportedConversation, StoreError> {
    let pk = item.str_req(attr::PK)?;
    let id = keys::conversation_id_of(pk)
        .ok_or_else(|| item.corrupt("not a conversation"))?
        .to_owned();
    let text = |k: &str| item.str_opt(k).filter(|v| !v.is_empty()).map(str::to_owned);
    let answers = item
        .get("answers")
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                .collect()
        })
        .unwrap_or_default();
    Ok(ExportedConversation {
        id,
        phone_number_id: item.str_req("phone_number_id")?.to_owned(),
        contact_key: item.str_req("contact_key")?.to_owned(),
        survey_id: item.str_req("survey_id")?.to_owned(),
        survey_version: item.num_req("survey_version")?,
        started_at: item.num_req("started_at")?,
        completed_at: item.num_opt("completed_at"),
        assigned_at: item.num_opt("assigned_at"),
        assigned_agent: text("assigned_agent"),
        assigned_team: text("assigned_team"),
        answers,
    })
}

impl ExportStore for DynamoExportStore {
    async fn day_page(
        &self,
        day: NaiveDate,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DayPage, StoreError> {
        // The cursor is the last sort key read: `gsi3sk > :after` starts after it without
        // rebuilding an ExclusiveStartKey.
        let mut q = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .index_name(attr::GSI3)
            .expression_attribute_values(":d", s(keys::conversations_of_day(day)))
            .limit(i32::try_from(limit.clamp(1, PAGE_SIZE)).unwrap_or(1));
        q = match after {
            Some(a) => q
                .key_condition_expression("gsi3pk = :d AND gsi3sk > :after")
                .expression_attribute_values(":after", s(a)),
            None => q.key_condition_expression("gsi3pk = :d"),
        };
        let out = q.send().await.map_err(StoreError::from_sdk)?;
        let mut ids = Vec::new();
        let mut last = None;
        for item in out.items() {
            let Some(sort) = item.str_opt(attr::GSI3_SK) else {
                continue;
            };
            if let Some(id) = item.str_opt(attr::PK).and_then(keys::conversation_id_of) {
                ids.push(id.to_owned());
            }
            last = Some(sort.to_owned());
        }
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        Ok(DayPage {
            ids,
            next: last.filter(|_| more),
        })
    }

    async fn conversations(&self, ids: &[String]) -> Result<Vec<ExportedConversation>, StoreError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(PAGE_SIZE) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|id| keys::conversation(id).item())
                .collect();
            for _ in 0..BATCH_ROUNDS {
                if pending.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .build()
                    .map_err(|e| StoreError::Encode(e.to_string()))?;
                let out = self
                    .table
                    .client
                    .batch_get_item()
                    .request_items(&self.table.name, request)
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                if let Some(mut got) = out.responses {
                    for item in got.remove(&self.table.name).unwrap_or_default() {
                        found.push(decode(&item)?);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table.name))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable(
                    "BatchGetItem left keys unprocessed (throttled)".into(),
                ));
            }
        }
        Ok(found)
    }

    async fn survey(&self, survey_id: &str, version: u32) -> Result<Option<Survey>, StoreError> {
        if version == 0 {
            return Ok(Survey::default_survey().ok());
        }
        let Some(stored) = self.surveys.get(survey_id, version).await? else {
            return Ok(None);
        };
        // A version that no longer parses exports its answers under the other versions'
        // columns (and is dropped from the header) rather than failing the whole export.
        Ok(Survey::parse(&stored.yaml, version).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_range_is_since_to_until_inclusive_and_at_most_366_days() {
        let today = d("2026-09-21");
        let r = DateRange::parse("2026-09-19", None, today).unwrap();
        assert_eq!(
            r.days().collect::<Vec<_>>(),
            vec![d("2026-09-19"), d("2026-09-20"), d("2026-09-21")]
        );
        let one = DateRange::parse("2026-02-28", Some("2026-02-28"), today).unwrap();
        assert_eq!(one.days().count(), 1);
        assert_eq!(
            DateRange::parse("2024-01-01", Some("2024-12-31"), today)
                .unwrap()
                .days()
                .count(),
            366
        );
        for (since, until) in [
            ("2026-09-22", Some("2026-09-21")),
            ("2024-01-01", Some("2025-01-01")),
            ("2026-9-1", None),
            ("21/09/2026", None),
            ("2026-02-30", None),
            ("2026-09-01", Some("")),
        ] {
            let e = DateRange::parse(since, until, today).unwrap_err();
            assert!(
                matches!(e, ExportError::InvalidRange(_)),
                "{since} {until:?}"
            );
            assert!(!e.is_retryable());
        }
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn export_arguments_are_since_until_survey_and_out() {
        let a = parse_args(&args(&[
            "export",
            "--since",
            "2026-09-01",
            "--out",
            "x.csv",
        ]))
        .unwrap();
        assert_eq!(
            a,
            ExportArgs {
                since: "2026-09-01".into(),
                until: None,
                survey: None,
                out: Some("x.csv".into()),
            }
        );
        let a = parse_args(&args(&[
            "export",
            "--survey",
            "s",
            "--until",
            "2026-09-02",
            "--since",
            "2026-09-01",
        ]))
        .unwrap();
        assert_eq!(
            (a.survey.as_deref(), a.until.as_deref()),
            (Some("s"), Some("2026-09-02"))
        );
        for bad in [
            &["export"][..],
            &["import", "--since", "2026-09-01"],
            &["export", "--since"],
            &["export", "--since", "2026-09-01", "--since", "2026-09-02"],
            &["export", "--since", "2026-09-01", "extra"],
            &[],
        ] {
            assert!(
                matches!(parse_args(&args(bad)), Err(AdminError::Usage(_))),
                "{bad:?}"
            );
        }
    }

    const V1: &str = r#"
id: s
languages: [en]
default_language: en
texts:
  greeting_new: { en: "Hi" }
  greeting_returning: { en: "Welcome back" }
  completion: { en: "Thanks" }
  handoff: { en: "An agent will help" }
  ended: { en: "Bye" }
  opted_out: { en: "Unsubscribed" }
  text_only: { en: "Please answer with text" }
  invalid: { en: "Not valid" }
  list_button: { en: "Choose" }
questions:
  - key: name
    type: text
    label: { en: "Name" }
    prompt: { en: "Your name?" }
  - key: topic
    label: { en: "Topic" }
    type: choice
    prompt: { en: "Topic?" }
    options:
      - { id: buy, label: { en: "Buying" } }
      - { id: fix, label: { en: "Repair" } }
  - key: old
    type: text
    prompt: { en: "Old?" }
"#;

    fn survey(yaml: &str, version: u32) -> Survey {
        Survey::parse(yaml, version).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn columns_are_the_union_of_versions_in_survey_order_with_labels() {
        let v1 = survey(V1, 1);
        let v2 = survey(
            &V1.replace("  - key: old\n    type: text\n    prompt: { en: \"Old?\" }\n", "")
                .replace(
                    "  - key: topic",
                    "  - key: email\n    type: email\n    label: { en: \"E-mail\" }\n    prompt: { en: \"Mail?\" }\n  - key: topic",
                ),
            2,
        );
        let other = survey(
            &V1.replace("id: s", "id: t")
                .replace("key: old", "key: extra"),
            1,
        );
        let cols = question_columns(&[&v1, &other, &v2]);
        let keys: Vec<&str> = cols.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["name", "email", "topic", "old", "extra"]);
        let h = header(&cols);
        assert_eq!(&h[..9], FIXED_COLUMNS);
        assert_eq!(&h[9..], ["Name", "E-mail", "Topic", "old", "extra"]);

        let c = ExportedConversation {
            id: "c1".into(),
            phone_number_id: "web".into(),
            contact_key: "V.abc".into(),
            survey_id: "s".into(),
            survey_version: 1,
            started_at: 1_790_000_000,
            completed_at: Some(1_790_000_060),
            answers: BTreeMap::from([
                ("topic".to_owned(), "fix".to_owned()),
                ("name".to_owned(), "=Ana".to_owned()),
            ]),
            ..Default::default()
        };
        let r = row(&c, Some(&v1), &cols);
        assert_eq!(
            r,
            [
                "V.abc",
                "web",
                "s",
                "1",
                "2026-09-21T14:13:20Z",
                "2026-09-21T14:14:20Z",
                "",
                "",
                "",
                "=Ana",
                "",
                "Repair",
                "",
                ""
            ]
        );
        // Without its survey a choice shows its stored id.
        assert_eq!(row(&c, None, &cols)[11], "fix");
    }
}
