//! survey-engine applying a web visitor's pre-chat form against moto: what the submission
//! becomes in the store and on the queues (the contact with its consent record, the handed-off
//! conversation with the answers, the transcript, one assignment job), that the assigner and
//! the agent API take it from there unchanged, and that it applies once per submission id and
//! once per open conversation. The decisions themselves are proven in
//! `shared/src/survey/engine_tests.rs` (`on_web_form`).

use lambda_http::Request;
use prechat::entrypoints::agent_api::AgentApi;
use prechat::entrypoints::sqs::Handled;
use prechat::routing::job::HandoffReason;
use prechat::routing::model::{Agent, AgentStatus, Team};
use prechat::survey::definition::Survey;
use prechat::transcript::{Author, Body};
use prechat::whatsapp::event::InboundEvent;
use prechat::whatsapp::ContactRef;
use prechat_tests::api::{event, json_of, user_claims};
use prechat_tests::app::{body_text, n, s, visitor, TestApp};
use serde_json::{json, Value};

/// What the visitor types into the default survey's form.
const FORM: &[(&str, &str)] = &[
    ("language", "en"),
    ("consent", "yes"),
    ("name", "Ana López"),
    ("email", "ana@example.com"),
    ("inquiry", "after_sales"),
    ("order_id", "1234567"),
    ("country", "ES"),
    ("description", "Where is my order?"),
];

const VISITOR: &str = "visitor0123456789abcdef";

fn survey() -> Survey {
    Survey::default_survey().unwrap()
}

/// Team `sales` (the default), alice online in it with room for one conversation.
async fn setup(app: &TestApp) {
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
        capacity: 1,
        open: 0,
        last_assigned_at: 0,
        leads: vec![],
        sub: None,
    };
    store.upsert_agent(&alice).await.unwrap();
}

fn submission(e: &InboundEvent) -> &prechat::whatsapp::event::WebFormSubmission {
    match e {
        InboundEvent::WebForm(w) => w,
        other => panic!("not a web form: {other:?}"),
    }
}

async fn call(api: &AgentApi, req: Request) -> (u16, Value) {
    json_of(&api.handle(req).await)
}

fn as_alice(method: &str, path: &str) -> Request {
    event(
        method,
        path,
        Some(user_claims("alice", "[agents]")),
        json!({}),
        None,
    )
}

/// The visitor's current conversation id and the contact item's revision.
async fn current(app: &TestApp, who: &ContactRef) -> (String, String) {
    let contact = app.web_contact(who).await;
    (
        s(&contact, "conversation_id").to_owned(),
        n(&contact, "rev").to_owned(),
    )
}

#[tokio::test]
async fn a_submitted_form_is_a_completed_survey_an_agent_gets() {
    let app = TestApp::spawn().await;
    setup(&app).await;
    let who = visitor(VISITOR, "Ana López");
    let form = app.web_form(&who, &survey(), "en", FORM);
    let w = submission(&form).clone();
    app.deliver(std::slice::from_ref(&form)).await;

    // The contact, under the web business number and the visitor key, with the consent record.
    let contact = app.web_contact(&who).await;
    assert_eq!(s(&contact, "pk"), format!("CONTACT#web#V.{VISITOR}"));
    let doc: Value = serde_json::from_str(s(&contact, "doc")).unwrap();
    let c = &doc["contact"];
    assert_eq!(c["profile_name"], "Ana López");
    assert_eq!(c["user_id"], format!("V.{VISITOR}"));
    assert_eq!(c["fields"]["email"], "ana@example.com");
    assert_eq!(c["fields"]["name"], "Ana López");
    assert_eq!(c["consent"]["accepted"], true);
    assert_eq!(c["consent"]["at"], w.timestamp);
    assert_eq!(
        c["consent"]["policy_version"],
        json!(w.consent.as_ref().unwrap().policy_version)
    );
    let conv = &doc["conversation"];
    assert_eq!(
        (conv["status"].clone(), conv["handoff"].clone()),
        (json!("handed_off"), json!("completed"))
    );
    assert_eq!(conv["answers"], json!(w.answers));
    assert_eq!(conv["vars"]["order_id"], "1234567");
    let id = s(&contact, "conversation_id").to_owned();

    // The conversation item, as the agent side reads it.
    let item = app.web_conversation(&who).await;
    assert_eq!(s(&item, "phone_number_id"), "web");
    assert_eq!(s(&item, "contact_key"), format!("V.{VISITOR}"));
    let answers = item["answers"].as_m().unwrap();
    assert_eq!(answers["order_id"].as_s().unwrap(), "1234567");
    assert_eq!(answers.len(), w.answers.len());

    // The transcript: the answers in survey order, then the completion text.
    let entries = app.transcript_entries(&id).await;
    let answered: Vec<&str> = entries
        .iter()
        .filter_map(|e| match &e.body {
            Body::Answer { question, .. } => Some(question.as_str()),
            _ => None,
        })
        .collect();
    let shipped = survey();
    let order: Vec<&str> = shipped
        .questions
        .iter()
        .map(|q| q.key.as_str())
        .filter(|k| w.answers.contains_key(*k))
        .collect();
    assert_eq!(answered, order);
    let last = entries.last().unwrap();
    assert_eq!(last.author, Author::Bot);
    let completion = "Thank you, Ana! An agent will be with you shortly.";
    assert_eq!(
        last.body,
        Body::Text {
            text: completion.into()
        }
    );

    // Delivered again (twice in one batch): nothing changes and nothing new is queued.
    let before = current(&app, &who).await;
    let lines = entries.len();
    app.deliver(&[form.clone(), form.clone()]).await;
    assert_eq!(current(&app, &who).await, before);
    assert_eq!(app.transcript_entries(&id).await.len(), lines);

    // The completion text for the visitor (delivered over the WebSocket by the sender), once.
    let out = app.outbound_all().await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        (out[0].phone_number_id.as_str(), body_text(&out[0])),
        ("web", completion)
    );

    // Exactly one job, which the assigner gives to alice, the answers in its request.
    assert_eq!(app.queue_depth("AssignmentQueue").await, 1);
    app.drain_assignments().await;
    let ticket = app.routing().get_ticket(&id).await.unwrap().unwrap();
    assert_eq!(ticket.agent.as_deref(), Some("alice"));
    assert_eq!(ticket.request.answers, w.answers);
    assert_eq!(ticket.request.reason, HandoffReason::Completed);
    assert_eq!(ticket.request.phone_number_id, "web");
    assert_eq!(ticket.request.last_inbound_at, w.timestamp);
    let told = app.outbound_all().await;
    assert!(
        !told.is_empty() && told.iter().all(|m| m.phone_number_id == "web"),
        "{told:?}"
    );

    // Redriven later (the queues forgot the dedup ids): the very effects it committed go out
    // again under the same ids, and the state stays as it was.
    assert_eq!(app.engine.on_web_form(&w).await.unwrap(), Handled::Done);
    assert_eq!(current(&app, &who).await, before);
    let resent = app.jobs().await;
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].job_id, ticket.job_id);
    let again = app.outbound_all().await;
    assert_eq!(
        again
            .iter()
            .map(|m| m.dedup_id.as_str())
            .collect::<Vec<_>>(),
        [out[0].dedup_id.as_str()]
    );

    // alice reads it with the answers labelled.
    let api = app.agent_api(&[]);
    let (status, read) = call(&api, as_alice("GET", &format!("/api/conversations/{id}"))).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["contact"]["name"], "Ana López");
    assert_eq!(read["consent"]["accepted"], true);
    let listed = read["answers"].as_array().unwrap();
    let find = |key: &str| listed.iter().find(|a| a["key"] == key).unwrap().clone();
    let order_id = find("order_id");
    assert_eq!(
        (order_id["label"].clone(), order_id["value"].clone()),
        (json!("Order number"), json!("1234567"))
    );
    assert_eq!(order_id["saved_to"], "var.order_id");
    let name = find("name");
    assert_eq!(
        (name["label"].clone(), name["value"].clone()),
        (json!("Name"), json!("Ana López"))
    );
}

#[tokio::test]
async fn a_second_form_while_open_is_skipped_and_after_a_close_a_new_one_starts() {
    let app = TestApp::spawn().await;
    setup(&app).await;
    let who = visitor(VISITOR, "Ana López");
    app.deliver(&[app.web_form(&who, &survey(), "en", FORM)])
        .await;
    app.drain_assignments().await;
    app.outbound_all().await;
    let (first, rev) = current(&app, &who).await;

    // Another submission (another tab) while the conversation is open: skipped.
    let again = app.web_form(&who, &survey(), "en", FORM);
    assert_eq!(
        app.engine.on_web_form(submission(&again)).await.unwrap(),
        Handled::Skipped("the visitor already has an open conversation")
    );
    app.deliver(&[again]).await;
    assert_eq!(current(&app, &who).await, (first.clone(), rev));
    assert_eq!(app.queue_depth("AssignmentQueue").await, 0);
    assert_eq!(app.outbound_all().await, vec![]);

    // alice closes it; the next submission starts a new conversation, which she gets again.
    let api = app.agent_api(&[]);
    let (status, body) = call(
        &api,
        as_alice("POST", &format!("/api/conversations/{first}/close")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.drain_assignments().await;
    app.outbound_all().await;
    let next = app.web_form(&who, &survey(), "en", FORM);
    app.deliver(&[next]).await;
    let (second, _) = current(&app, &who).await;
    assert_ne!(second, first);
    let doc: Value = serde_json::from_str(s(&app.web_contact(&who).await, "doc")).unwrap();
    assert_eq!(doc["contact"]["conversations"], 2);
    assert_eq!(doc["conversation"]["status"], "handed_off");
    assert_eq!(app.queue_depth("AssignmentQueue").await, 1);
    app.drain_assignments().await;
    let ticket = app.routing().get_ticket(&second).await.unwrap().unwrap();
    assert_eq!(ticket.agent.as_deref(), Some("alice"));
}
