//! The answers export against moto: conversations written by the real survey engine (web
//! forms, a WhatsApp survey left unfinished) over three days and two surveys, read back
//! through `gsi3` as CSV: the columns (union of the surveys' questions, by label), one row per
//! conversation of the range in start order, the survey filter, escaping and neutralisation
//! of what contacts typed, pages smaller than the data, and the `prechat-admin` command. The
//! CSV rules themselves are proven in `shared/src/admin/csv.rs`.

use chrono::NaiveDate;
use prechat::admin::export::{export, DateRange, DynamoExportStore, ExportRequest, PAGE_SIZE};
use prechat::routing::model::{Agent, AgentStatus, Team};
use prechat::store::survey_store::SurveyStore;
use prechat::store::DynamoTable;
use prechat::survey::definition::Survey;
use prechat::whatsapp::ContactRef;
use prechat_tests::app::{tap, text, visitor, TestApp, T0};
use serde_json::json;

/// 2026-09-21T14:13:20Z: the first day of the range is [`T0`]'s.
const DAY: i64 = 86_400;

/// A second survey sharing `name` with the default one and adding a choice of its own.
const OTHER: &str = r#"
id: other
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
  - key: product
    type: choice
    label: { en: "Product, model" }
    prompt: { en: "Which product?" }
    options:
      - { id: p1, label: { en: "Phone X" } }
      - { id: p2, label: { en: "Tablet Y" } }
"#;

/// The default survey's form, with what a contact may type: a formula, quotes, a comma and
/// line breaks.
fn form<'a>(name: &'a str, description: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("language", "en"),
        ("consent", "yes"),
        ("name", name),
        ("email", "ana@example.com"),
        ("inquiry", "after_sales"),
        ("order_id", "1234567"),
        ("country", "ES"),
        ("description", description),
    ]
}

fn contact(wa_id: &str) -> ContactRef {
    ContactRef {
        user_id: None,
        wa_id: Some(wa_id.into()),
        profile_name: Some("Bea".into()),
        username: None,
    }
}

/// Team `sales` (the default) with alice online and room for two conversations.
async fn one_agent(app: &TestApp) {
    let store = app.routing();
    let sales: Team = serde_json::from_value(json!({"id": "sales", "name": "Sales"})).unwrap();
    store.put_team(&sales).await.unwrap();
    let routing = serde_json::from_value(json!({"default_team": "sales"})).unwrap();
    store.put_routing(&routing).await.unwrap();
    let alice = Agent {
        id: "alice".into(),
        name: "Alice".into(),
        teams: vec!["sales".into()],
        languages: vec![],
        status: AgentStatus::Online,
        capacity: 2,
        open: 0,
        last_assigned_at: 0,
        leads: vec![],
        sub: None,
    };
    store.upsert_agent(&alice).await.unwrap();
}

/// The day before the range: one web form (never exported). Day 1: a web form (assigned to
/// alice, as the one before) and a WhatsApp contact who stops after the language question. Day 2: a form of the
/// other survey and one more of the default survey.
async fn seed(app: &TestApp) {
    one_agent(app).await;
    let default = Survey::default_survey().unwrap();
    app.surveys()
        .publish("other", OTHER, T0 - 2 * DAY)
        .await
        .unwrap();
    let other = Survey::parse(OTHER, 1).unwrap();

    app.clock.set_unix(T0 - DAY);
    let before = visitor("visitor00000000000000before", "Early Bird");
    app.deliver(&[app.web_form(
        &before,
        &default,
        "en",
        &form("Early Bird", "Early question"),
    )])
    .await;

    app.clock.set_unix(T0);
    let v1 = visitor("visitor0000000000000000one", "Ana");
    let f = form(
        "=HYPERLINK(\"http://evil\")",
        "Line one,\nline \"two\"\r\nthree",
    );
    app.deliver(&[app.web_form(&v1, &default, "en", &f)]).await;
    app.drain_assignments().await;
    let bea = contact("34600111222");
    app.say(&bea, text("Hola")).await;
    app.say(&bea, tap("en")).await;

    app.clock.set_unix(T0 + DAY);
    let v2 = visitor("visitor0000000000000000two", "Carl");
    app.deliver(&[app.web_form(&v2, &other, "en", &[("name", "Carl"), ("product", "p2")])])
        .await;
    let v3 = visitor("visitor000000000000000three", "Dana");
    app.deliver(&[app.web_form(&v3, &default, "en", &form("+34 600 000 000", "-1 broken"))])
        .await;
}

fn store(app: &TestApp) -> DynamoExportStore {
    DynamoExportStore::new(DynamoTable::new(app.dynamo.clone(), app.table()))
}

fn range(since: &str, until: &str) -> DateRange {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    DateRange::new(d(since), d(until)).unwrap()
}

async fn csv_of(app: &TestApp, range: DateRange, survey: Option<&str>, page_size: usize) -> String {
    let req = ExportRequest {
        range,
        survey: survey.map(str::to_owned),
        page_size,
    };
    let mut out = Vec::new();
    export(&store(app), &req, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

/// An RFC 4180 reader: the rows of `text` (every row ends with CRLF).
fn parse(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(!quoted && cell.is_empty() && row.is_empty(), "{text:?}");
    rows
}

/// The cell of `column` (by header) in `row`.
fn cell<'a>(rows: &'a [Vec<String>], row: usize, column: &str) -> &'a str {
    let i = rows[0]
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column:?} in {:?}", rows[0]));
    &rows[row][i]
}

#[tokio::test]
async fn an_export_has_a_row_per_conversation_of_the_range_and_a_column_per_question() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let text = csv_of(&app, range("2026-09-21", "2026-09-22"), None, PAGE_SIZE).await;
    let rows = parse(&text);

    // The fixed columns, the default survey's questions in order, then the other survey's
    // own (its `name` shares the default's column).
    assert_eq!(
        rows[0],
        [
            "contact",
            "channel",
            "survey",
            "version",
            "started",
            "completed",
            "assigned",
            "agent",
            "team",
            "Language",
            "Privacy consent",
            "Name",
            "Email",
            "Phone",
            "Customer ID",
            "Topic",
            "Order number",
            "Country",
            "Request",
            "Product, model",
        ],
        "{text}"
    );
    assert_eq!(rows.len(), 5, "a header and 4 conversations: {text}");
    let contacts: Vec<&str> = (1..5).map(|r| cell(&rows, r, "contact")).collect();
    assert_eq!(
        contacts,
        [
            "V.visitor0000000000000000one",
            "34600111222",
            "V.visitor0000000000000000two",
            "V.visitor000000000000000three"
        ],
        "in start order, the day before the range left out"
    );

    // The form assigned to alice, with what the visitor typed neutralised and escaped.
    assert_eq!(cell(&rows, 1, "channel"), "web");
    assert_eq!(cell(&rows, 1, "survey"), "default");
    assert_eq!(cell(&rows, 1, "version"), "0");
    assert_eq!(cell(&rows, 1, "started"), "2026-09-21T14:13:25Z");
    assert_eq!(cell(&rows, 1, "completed"), "2026-09-21T14:13:25Z");
    assert!(cell(&rows, 1, "assigned").starts_with("2026-09-21T"));
    assert_eq!(cell(&rows, 1, "agent"), "alice");
    assert_eq!(cell(&rows, 1, "team"), "sales");
    assert_eq!(cell(&rows, 1, "Name"), "'=HYPERLINK(\"http://evil\")");
    assert_eq!(
        cell(&rows, 1, "Request"),
        "Line one,\nline \"two\"\r\nthree"
    );
    assert_eq!(
        cell(&rows, 1, "Topic"),
        "An existing order",
        "a choice's label"
    );
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{text}"
    );

    // The WhatsApp contact who stopped: started, not completed, not assigned.
    assert_eq!(cell(&rows, 2, "channel"), "whatsapp");
    assert_eq!(cell(&rows, 2, "Language"), "English");
    assert_eq!(cell(&rows, 2, "completed"), "");
    assert_eq!(cell(&rows, 2, "assigned"), "");
    assert_eq!(cell(&rows, 2, "Name"), "");

    // The other survey's form, and the last one (its job never run).
    assert_eq!(cell(&rows, 3, "survey"), "other");
    assert_eq!(cell(&rows, 3, "version"), "1");
    assert_eq!(cell(&rows, 3, "Product, model"), "Tablet Y");
    assert_eq!(cell(&rows, 3, "Name"), "Carl");
    assert_eq!(cell(&rows, 3, "Email"), "");
    assert!(cell(&rows, 3, "started").starts_with("2026-09-22T"));
    assert_eq!(cell(&rows, 4, "Name"), "'+34 600 000 000");
    assert_eq!(cell(&rows, 4, "Request"), "'-1 broken");
    assert_eq!(cell(&rows, 4, "agent"), "");

    // Pages of one conversation read the same rows.
    assert_eq!(
        csv_of(&app, range("2026-09-21", "2026-09-22"), None, 1).await,
        text
    );
}

#[tokio::test]
async fn the_range_and_the_survey_filter_choose_the_rows_and_the_columns() {
    let app = TestApp::spawn().await;
    seed(&app).await;

    let other = parse(&csv_of(&app, range("2026-09-20", "2026-09-22"), Some("other"), 1).await);
    assert_eq!(&other[0][9..], ["Name", "Product, model"]);
    assert_eq!(other.len(), 2);
    assert_eq!(other[1][0], "V.visitor0000000000000000two");

    let day1 = parse(&csv_of(&app, range("2026-09-21", "2026-09-21"), Some("default"), 2).await);
    assert_eq!(day1.len(), 3);
    assert!(!day1[0].iter().any(|h| h == "Product, model"));

    let before = parse(&csv_of(&app, range("2026-09-20", "2026-09-20"), None, 1).await);
    assert_eq!(before.len(), 2);
    assert_eq!(before[1][0], "V.visitor00000000000000before");

    let empty = csv_of(&app, range("2026-01-01", "2026-01-31"), None, PAGE_SIZE).await;
    assert_eq!(parse(&empty).len(), 1, "a header only: {empty}");
    assert_eq!(parse(&empty)[0].len(), 9);
}

#[tokio::test]
async fn prechat_admin_answers_export_writes_the_csv_to_a_file() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let path = std::env::temp_dir().join(format!("{}-answers.csv", app.env.prefix));
    let path_s = path.to_string_lossy().into_owned();
    let said = app
        .admin(&[
            "answers",
            "export",
            "--since",
            "2026-09-21",
            "--until",
            "2026-09-22",
            "--out",
            &path_s,
        ])
        .await
        .unwrap();
    assert!(said.starts_with("wrote 4 row(s), 20 column(s)"), "{said}");
    let written = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        written,
        csv_of(&app, range("2026-09-21", "2026-09-22"), None, PAGE_SIZE).await
    );

    for bad in [
        &[
            "answers",
            "export",
            "--since",
            "2026-09-22",
            "--until",
            "2026-09-21",
        ][..],
        &[
            "answers",
            "export",
            "--since",
            "2025-01-01",
            "--until",
            "2026-09-21",
        ],
        &["answers", "export", "--until", "2026-09-21"],
        &["answers", "export", "--since", "yesterday"],
    ] {
        let e = app.admin(bad).await.unwrap_err();
        assert!(
            matches!(e, prechat::admin::AdminError::Usage(_)),
            "{bad:?}: {e}"
        );
    }
}
