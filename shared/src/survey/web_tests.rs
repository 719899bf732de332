//! Tests of the web form and its server-side check, on the shipped default survey and on a
//! survey with every question type; and the shared validator vectors
//! (`shared/surveys/testdata/validators.json`) the browser's validators are checked against too.

use super::*;
use crate::survey::definition::DefinitionError;
use crate::whatsapp::event::MessageContent;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default()
}

fn default_survey() -> Survey {
    Survey::default_survey().unwrap()
}

/// Every question type; no `web:` section; one hidden optional question; `when` on a yes/no
/// (browser-evaluable) and on an email (server only).
const ALL: &str = r#"
id: all
languages: [en, es]
default_language: en
texts:
  greeting_new: { en: "Hi", es: "Hola" }
  greeting_returning: { en: "Welcome back", es: "Hola de nuevo" }
  completion: { en: "Thanks", es: "Gracias" }
  handoff: { en: "An agent will help", es: "Un agente te ayudará" }
  ended: { en: "Bye", es: "Adiós" }
  opted_out: { en: "Unsubscribed", es: "Baja hecha" }
  text_only: { en: "Please answer with text", es: "Responde con texto" }
  invalid: { en: "Sorry, that is not valid", es: "No es válido" }
  list_button: { en: "Choose", es: "Elegir" }
questions:
  - key: lang
    type: choice
    save_to: contact.language
    required: false
    prompt: { en: "Language?", es: "¿Idioma?" }
    options:
      - { id: en, label: { en: English, es: Inglés } }
      - { id: es, label: { en: Spanish, es: Español } }
  - key: name
    type: text
    label: { en: Name, es: Nombre }
    min_length: 2
    max_length: 80
    save_to: contact.name
    prompt: { en: "Hi {{contact.first_name}}, your name?", es: "¿Tu nombre?" }
    retry: { en: "2 to 80 characters, please", es: "De 2 a 80 caracteres" }
    web: { placeholder: { en: "Ana López", es: "Ana López" } }
  - key: story
    type: text
    max_length: 201
    required: false
    prompt: { en: "Tell us", es: "Cuéntanos" }
  - key: email
    type: email
    save_to: contact.email
    required: false
    prompt: { en: "Email?", es: "¿Correo?" }
  - key: phone
    type: phone
    save_to: contact.phone
    required: false
    prompt: { en: "Phone?", es: "¿Teléfono?" }
  - key: people
    type: number
    min: 1
    max: 10
    integer: true
    required: false
    prompt: { en: "How many?", es: "¿Cuántos?" }
  - key: born
    type: date
    min: "1900-01-01"
    max: today
    required: false
    prompt: { en: "Born?", es: "¿Nacimiento?" }
  - key: topic
    type: choice
    prompt: { en: "Topic?", es: "¿Tema?" }
    options:
      - { id: sales, label: { en: Sales, es: Ventas } }
      - { id: support, label: { en: Support, es: Soporte } }
      - { id: billing, label: { en: Billing, es: Facturas } }
  - key: order
    type: pattern
    pattern: "[0-9]{6}"
    save_to: var.order_number
    when: { key: topic, in: [support, billing] }
    prompt: { en: "Order?", es: "¿Pedido?" }
  - key: newsletter
    type: yes_no
    required: false
    prompt: { en: "Newsletter?", es: "¿Boletín?" }
  - key: frequency
    type: choice
    required: false
    when: { key: newsletter, equals: "yes" }
    prompt: { en: "How often?", es: "¿Cada cuánto?" }
    options:
      - { id: weekly, label: { en: Weekly, es: Semanal } }
      - { id: monthly, label: { en: Monthly, es: Mensual } }
  - key: work_email
    type: yes_no
    required: false
    when: { key: email, equals: "ana@example.com" }
    prompt: { en: "Is that your work email?", es: "¿Es tu correo del trabajo?" }
  - key: country
    type: country
    save_to: contact.country
    prompt: { en: "Country?", es: "¿País?" }
  - key: whatsapp_only
    type: text
    required: false
    prompt: { en: "Only on WhatsApp", es: "Solo en WhatsApp" }
    web: { show: false }
  - key: consent
    type: consent
    save_to: contact.consent
    policy_url: https://example.com/privacy
    policy_version: "2026-01"
    prompt: { en: "Do you accept the policy?", es: "¿Aceptas la política?" }
"#;

fn all() -> Survey {
    Survey::parse(ALL, 3).unwrap()
}

fn answers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The least a valid submission of [`ALL`] needs.
fn minimal() -> BTreeMap<String, String> {
    answers(&[
        ("name", "Ana"),
        ("topic", "sales"),
        ("country", "ES"),
        ("consent", "yes"),
    ])
}

fn with(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut a = minimal();
    a.extend(answers(extra));
    a
}

fn field<'a>(form: &'a WebForm, key: &str) -> &'a Field {
    form.fields.iter().find(|f| f.key == key).unwrap()
}

fn codes(e: &FieldErrors) -> Vec<(&str, FieldErrorCode)> {
    e.0.iter().map(|e| (e.key.as_str(), e.code)).collect()
}

// ------------------------------------------------------------------ definition

fn definition_errors(src: &str) -> Vec<DefinitionError> {
    Survey::parse(src, 1).unwrap_err().0
}

fn has(errs: &[DefinitionError], path: &str, needle: &str) -> bool {
    errs.iter()
        .any(|e| e.path == path && e.message.contains(needle))
}

const WEB: &str = "web:\n  title: { en: \"Talk to us\", es: \"Hablemos\" }\n  start_button: { en: Go, es: Vamos }\nquestions:\n";

#[test]
fn the_web_section_is_localised_and_optional() {
    assert_eq!(all().web, Default::default());
    let s = Survey::parse(&ALL.replacen("questions:\n", WEB, 1), 1).unwrap();
    let title = s.web.title.as_ref().unwrap();
    assert_eq!(s.pick(title, "es"), "Hablemos");
    assert!(s.web.description.is_none());

    let missing = ALL.replacen(
        "questions:\n",
        "web:\n  title: { en: \"Talk to us\" }\nquestions:\n",
        1,
    );
    let e = definition_errors(&missing);
    assert!(
        has(&e, "web.title", "missing translation for \"es\""),
        "{e:?}"
    );
    assert!(e[0].line.is_some(), "{e:?}");

    let foreign = ALL.replacen(
        "questions:\n",
        "web:\n  description: { en: A, es: B, fr: C }\nquestions:\n",
        1,
    );
    assert!(has(
        &definition_errors(&foreign),
        "web.description",
        "not one of the survey's languages"
    ));

    let long = ALL.replacen(
        "questions:\n",
        &format!(
            "web:\n  start_button: {{ en: {}, es: Vamos }}\nquestions:\n",
            "x".repeat(41)
        ),
        1,
    );
    assert!(has(
        &definition_errors(&long),
        "web.start_button",
        "the web form allows 40"
    ));

    let multi = ALL.replacen(
        "questions:\n",
        "web:\n  title: { en: \"a\\nb\", es: b }\nquestions:\n",
        1,
    );
    assert!(has(&definition_errors(&multi), "web.title", "one line"));
}

#[test]
fn unknown_web_keys_are_rejected_with_a_line() {
    let top = ALL.replacen(
        "questions:\n",
        "web:\n  titel: { en: A, es: B }\nquestions:\n",
        1,
    );
    let e = definition_errors(&top);
    assert!(
        e[0].message.contains("titel") && e[0].line.is_some(),
        "{e:?}"
    );

    let question = ALL.replace("web: { show: false }", "web: { show: false, hidden: true }");
    let e = definition_errors(&question);
    assert!(
        e[0].message.contains("hidden") && e[0].line.is_some(),
        "{e:?}"
    );
}

#[test]
fn a_hidden_question_must_not_be_required() {
    let src = ALL.replace(
        "    prompt: { en: \"Only on WhatsApp\", es: \"Solo en WhatsApp\" }\n    web: { show: false }",
        "    prompt: { en: \"Only on WhatsApp\", es: \"Solo en WhatsApp\" }\n    web: { show: true }",
    );
    assert!(Survey::parse(&src, 1).is_ok());
    let required = ALL.replace(
        "    required: false\n    prompt: { en: \"Only on WhatsApp\"",
        "    prompt: { en: \"Only on WhatsApp\"",
    );
    let e = definition_errors(&required);
    assert!(
        has(&e, "questions[13].web.show", "cannot be hidden"),
        "{e:?}"
    );
}

#[test]
fn placeholders_are_translated_and_only_for_inputs() {
    let missing = ALL.replace(
        "web: { placeholder: { en: \"Ana López\", es: \"Ana López\" } }",
        "web: { placeholder: { en: \"Ana López\" } }",
    );
    assert!(has(
        &definition_errors(&missing),
        "questions[1].web.placeholder",
        "missing translation"
    ));
    let on_yes_no = ALL.replace(
        "    prompt: { en: \"Newsletter?\", es: \"¿Boletín?\" }",
        "    prompt: { en: \"Newsletter?\", es: \"¿Boletín?\" }\n    web: { placeholder: { en: a, es: b } }",
    );
    assert!(has(
        &definition_errors(&on_yes_no),
        "questions[9].web.placeholder",
        "does not apply to a yesno question"
    ));
}

#[test]
fn the_default_survey_has_a_web_section_and_placeholders() {
    let s = default_survey();
    let form_es = form(&s, "es", today());
    assert_eq!(form_es.title, "Habla con nosotros");
    assert_eq!(form_es.start_button, "Empezar chat");
    assert!(form_es.description.is_some());
    let en = form(&s, "en", today());
    assert_eq!(
        (en.title.as_str(), en.start_button.as_str()),
        ("Chat with us", "Start chat")
    );
    assert_eq!(
        field(&en, "email").placeholder.as_deref(),
        Some("ana@example.com")
    );
    assert_eq!(
        field(&form_es, "email").placeholder.as_deref(),
        Some("ana@ejemplo.com")
    );
    assert_eq!(field(&en, "phone").placeholder, None);
}

// ------------------------------------------------------------------ the form

#[test]
fn the_form_has_one_field_per_shown_question_in_order() {
    let s = all();
    let f = form(&s, "en", today());
    assert_eq!((f.survey_id.as_str(), f.version), ("all", 3));
    let keys: Vec<&str> = f.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "lang",
            "name",
            "story",
            "email",
            "phone",
            "people",
            "born",
            "topic",
            "order",
            "newsletter",
            "frequency",
            "work_email",
            "country",
            "consent"
        ],
        "whatsapp_only is hidden"
    );
    assert_eq!(f.languages, ["en", "es"]);
}

#[test]
fn defaults_without_a_web_section() {
    let s = all();
    let en = form(&s, "en", today());
    assert_eq!(en.title, "Chat with us");
    assert_eq!(en.start_button, "Start chat");
    assert_eq!(en.description, None);
    let es = form(&s, "es", today());
    assert_eq!(
        (es.title.as_str(), es.start_button.as_str()),
        ("Habla con nosotros", "Empezar chat")
    );
    // No label: the key; no placeholder: none; no retry: the survey's invalid text.
    let topic = field(&es, "topic");
    assert_eq!(topic.label, "topic");
    assert_eq!(topic.placeholder, None);
    assert_eq!(topic.retry, "No es válido");
}

#[test]
fn texts_are_in_the_language_asked_else_the_default() {
    let s = all();
    let es = form(&s, "es", today());
    assert_eq!(es.language, "es");
    let name = field(&es, "name");
    assert_eq!(
        (
            name.label.as_str(),
            name.prompt.as_str(),
            name.retry.as_str()
        ),
        ("Nombre", "¿Tu nombre?", "De 2 a 80 caracteres")
    );
    let fr = form(&s, "fr", today());
    assert_eq!(fr.language, "en");
    let name = field(&fr, "name");
    assert_eq!(name.label, "Name");
    // Placeholders render empty, without leaving a gap.
    assert_eq!(name.prompt, "Hi, your name?");
    assert_eq!(name.placeholder.as_deref(), Some("Ana López"));
}

#[test]
fn every_kind_carries_what_the_widget_needs() {
    let s = all();
    let f = form(&s, "es", today());
    assert_eq!(
        field(&f, "name").kind,
        FieldKind::Text {
            min_length: 2,
            max_length: 80,
            multiline: false
        }
    );
    assert_eq!(
        field(&f, "story").kind,
        FieldKind::Text {
            min_length: 1,
            max_length: 201,
            multiline: true
        }
    );
    assert_eq!(field(&f, "email").kind, FieldKind::Email);
    match &field(&f, "phone").kind {
        FieldKind::Phone { calling_codes } => {
            assert!(calling_codes.contains(&CallingCode {
                country: "ES",
                code: "34"
            }));
            assert!(calling_codes.contains(&CallingCode {
                country: "DO",
                code: "1"
            }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        field(&f, "people").kind,
        FieldKind::Number {
            min: Some(1.0),
            max: Some(10.0),
            integer: true
        }
    );
    assert_eq!(
        field(&f, "born").kind,
        FieldKind::Date {
            min: Some("1900-01-01".into()),
            max: Some("2026-11-23".into())
        }
    );
    match &field(&f, "topic").kind {
        FieldKind::Choice { options } => {
            let ids: Vec<(&str, &str)> = options
                .iter()
                .map(|o| (o.id.as_str(), o.label.as_str()))
                .collect();
            assert_eq!(
                ids,
                [
                    ("sales", "Ventas"),
                    ("support", "Soporte"),
                    ("billing", "Facturas")
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(field(&f, "order").kind, FieldKind::Pattern);
    match &field(&f, "newsletter").kind {
        FieldKind::YesNo { options } => {
            assert_eq!(
                (options[0].id.as_str(), options[0].label.as_str()),
                ("yes", "Sí")
            );
            assert_eq!(
                (options[1].id.as_str(), options[1].label.as_str()),
                ("no", "No")
            );
        }
        other => panic!("{other:?}"),
    }
    match &field(&f, "consent").kind {
        FieldKind::Consent {
            text,
            policy_url,
            policy_version,
            options,
        } => {
            assert_eq!(text, "¿Aceptas la política?");
            assert_eq!(policy_url, "https://example.com/privacy");
            assert_eq!(policy_version, "2026-01");
            assert_eq!(options[0].label, "Acepto");
            assert_eq!(options[1].label, "No acepto");
        }
        other => panic!("{other:?}"),
    }
    match &field(&f, "country").kind {
        FieldKind::Country { countries } => {
            assert!(countries.contains(&"ES") && countries.contains(&"MX"));
            assert!(countries.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        }
        other => panic!("{other:?}"),
    }
    assert!(field(&f, "name").required && !field(&f, "story").required);
}

#[test]
fn when_is_sent_where_the_browser_can_evaluate_it() {
    let s = all();
    let f = form(&s, "en", today());
    assert_eq!(
        field(&f, "order").when,
        Some(When::In {
            key: "topic".into(),
            r#in: vec!["support".into(), "billing".into()]
        })
    );
    assert_eq!(
        field(&f, "frequency").when,
        Some(When::Equals {
            key: "newsletter".into(),
            equals: "yes".into()
        })
    );
    // On a normalised free-text answer: always shown, the server decides.
    assert_eq!(field(&f, "work_email").when, None);
    assert_eq!(field(&f, "name").when, None);
}

#[test]
fn the_form_serialises_to_the_documented_json() {
    let s = default_survey();
    let v = serde_json::to_value(form(&s, "es", today())).unwrap();
    assert_eq!(v["survey_id"], "default");
    assert_eq!(v["language"], "es");
    assert_eq!(v["languages"], serde_json::json!(["en", "es"]));
    assert_eq!(v["start_button"], "Empezar chat");
    let fields = v["fields"].as_array().unwrap();
    let order = fields.iter().find(|f| f["key"] == "order_id").unwrap();
    assert_eq!(order["kind"], "pattern");
    assert_eq!(
        order["when"],
        serde_json::json!({"key": "inquiry", "equals": "after_sales"})
    );
    assert_eq!(order["label"], "Nº de pedido");
    assert_eq!(order["required"], true);
    assert!(order.get("placeholder").is_none());
    let name = fields.iter().find(|f| f["key"] == "name").unwrap();
    assert_eq!(
        (
            &name["kind"],
            &name["min_length"],
            &name["max_length"],
            &name["multiline"]
        ),
        (
            &serde_json::json!("text"),
            &serde_json::json!(2),
            &serde_json::json!(80),
            &serde_json::json!(false)
        )
    );
    let description = fields.iter().find(|f| f["key"] == "description").unwrap();
    assert_eq!(description["multiline"], true);
    let consent = fields.iter().find(|f| f["key"] == "consent").unwrap();
    assert_eq!(consent["kind"], "consent");
    assert_eq!(consent["policy_version"], "2026-01");
    let inquiry = fields.iter().find(|f| f["key"] == "inquiry").unwrap();
    assert_eq!(
        inquiry["options"][1],
        serde_json::json!({"id": "after_sales", "label": "Un pedido existente"})
    );
    assert!(inquiry.get("when").is_none());
}

// ------------------------------------------------------------------ submit

#[test]
fn a_minimal_submission_is_accepted_and_saved_where_the_engine_saves() {
    let s = all();
    let sub = submit(&s, "en", today(), &minimal()).unwrap();
    assert_eq!((sub.survey_id.as_str(), sub.survey_version), ("all", 3));
    assert_eq!(sub.language, "en");
    assert_eq!(
        sub.answers,
        answers(&[
            ("name", "Ana"),
            ("topic", "sales"),
            ("country", "ES"),
            ("consent", "yes")
        ])
    );
    assert_eq!(
        sub.fields,
        answers(&[("name", "Ana"), ("country", "ES"), ("consent", "yes")])
    );
    // Without save_to an answer is a conversation variable named by its key, as in the engine.
    assert_eq!(sub.vars, answers(&[("topic", "sales")]));
    let consent = sub.consent.unwrap();
    assert!(consent.accepted);
    assert_eq!(consent.text, "Do you accept the policy?");
    assert_eq!(consent.policy_version, "2026-01");
    let record = consent.record(1_790_000_000);
    assert_eq!(record.at, 1_790_000_000);
    assert_eq!(record.language, "en");
    assert_eq!(record.policy_url, "https://example.com/privacy");
}

#[test]
fn answers_are_normalised_exactly_as_on_whatsapp() {
    let s = all();
    let sub = submit(
        &s,
        "es",
        today(),
        &with(&[
            ("name", "  Ana López  "),
            ("story", "Una historia\nlarga"),
            ("email", "Ana@Example.COM"),
            ("phone", "0034 612 345 678"),
            ("people", " 4 "),
            ("born", "05/03/1990"),
            ("topic", "support"),
            ("order", "123456"),
            ("newsletter", "Sí"),
            ("frequency", "monthly"),
            ("country", "España"),
        ]),
    )
    .unwrap();
    let a = &sub.answers;
    assert_eq!(a["name"], "Ana López");
    assert_eq!(a["story"], "Una historia\nlarga");
    assert_eq!(a["email"], "Ana@example.com");
    assert_eq!(a["phone"], "+34612345678");
    assert_eq!(a["people"], "4");
    assert_eq!(a["born"], "1990-03-05", "day first in Spanish");
    assert_eq!(a["order"], "123456");
    assert_eq!(a["newsletter"], "yes");
    assert_eq!(a["frequency"], "monthly");
    assert_eq!(a["country"], "ES");
    assert_eq!(sub.fields["phone"], "+34612345678");
    assert_eq!(sub.fields["email"], "Ana@example.com");
    assert_eq!(sub.vars["order_number"], "123456");
    assert_eq!(sub.vars["topic"], "support");
    assert!(!sub.vars.contains_key("order"), "saved as var.order_number");
    assert!(!sub.answers.contains_key("work_email"));
}

#[test]
fn a_web_answer_is_what_the_whatsapp_validator_makes_of_the_same_reply() {
    let s = default_survey();
    let ctx = AnswerContext {
        language: "en",
        today: today(),
        calling_code: None,
    };
    let sub = submit(
        &s,
        "en",
        today(),
        &answers(&[
            ("language", "es"),
            ("consent", "yes"),
            ("name", "Ana"),
            ("email", "ana@EXAMPLE.com"),
            ("phone", "+34 612 345 678"),
            ("customer_id", "c123456"),
            ("inquiry", "after_sales"),
            ("order_id", "1234567"),
            ("country", "mexico"),
            ("description", "Where is my order?"),
        ]),
    )
    .unwrap();
    for (key, sent) in [
        ("email", "ana@EXAMPLE.com"),
        ("phone", "+34 612 345 678"),
        ("country", "mexico"),
        ("customer_id", "c123456"),
    ] {
        let q = s.question(key).unwrap();
        let wa = answer::validate(
            q,
            &MessageContent::Text {
                body: sent.to_owned(),
            },
            &ctx,
        )
        .unwrap();
        assert_eq!(sub.answers[key], wa.0, "{key}");
    }
    // The engine's keys: answers by question key, contact fields, and the language switch.
    assert_eq!(
        sub.language, "es",
        "contact.language switches the conversation"
    );
    assert_eq!(sub.fields["language"], "es");
    assert_eq!(sub.fields["customer_id"], "c123456");
    assert_eq!(sub.vars["order_id"], "1234567");
    assert_eq!(sub.vars["inquiry"], "after_sales");
    assert_eq!(sub.vars["description"], "Where is my order?");
    assert_eq!(sub.answers.len(), 10);
}

/// The same replies through the WhatsApp engine and through the form give the same answers,
/// fields, variables and consent: a web submission is stored in the engine's shape.
#[test]
fn a_submission_matches_what_the_engine_holds_after_the_same_replies() {
    use crate::routing::job::AssignmentJob;
    use crate::survey::engine::{on_message, ContactState};
    use crate::whatsapp::event::InboundMessage;
    use crate::whatsapp::ContactRef;

    let s = default_survey();
    let replies: BTreeMap<&str, &str> = [
        ("language", "en"),
        ("consent", "yes"),
        ("name", " Ana López "),
        ("email", "Ana@Example.COM"),
        ("phone", "0034 612 345 678"),
        ("customer_id", "c123456"),
        ("inquiry", "after_sales"),
        ("order_id", "1234567"),
        ("country", "méxico"),
        ("description", "Where is my order?"),
    ]
    .into();
    // A contact known by BSUID only: no WhatsApp number to take a calling code from, as on
    // the web.
    let who = ContactRef {
        user_id: Some("ES.8812345".into()),
        wa_id: None,
        profile_name: Some("Ana".into()),
        username: Some("ana".into()),
    };
    let mut contact = ContactState {
        phone_number_id: "PNID".into(),
        key: who.key().unwrap().to_owned(),
        ..Default::default()
    };
    let mut conv = None;
    let mut job = None;
    let now = 1_790_000_000;
    for n in 0..=replies.len() {
        let asked = conv
            .as_ref()
            .and_then(|c: &crate::survey::engine::Conversation| c.question.clone());
        let content = match asked.as_deref() {
            None => MessageContent::Text { body: "hi".into() },
            Some(key) => {
                let q = s.question(key).unwrap();
                content(q, replies[key])
            }
        };
        let msg = InboundMessage {
            phone_number_id: "PNID".into(),
            display_phone_number: "15550001111".into(),
            contact: who.clone(),
            message_id: format!("wamid.{n}"),
            timestamp: now,
            context_message_id: None,
            referral: None,
            content,
        };
        let out = on_message(contact, conv, &msg, &s, now * 1000);
        contact = out.contact;
        conv = out.conversation;
        job = out.effects.job.or(job);
    }
    let Some(AssignmentJob::Assign(request)) = job else {
        panic!("the engine did not hand off: {conv:?}");
    };

    let web_answers: BTreeMap<String, String> = replies
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let sub = submit(&s, "en", today(), &web_answers).unwrap();
    assert_eq!(sub.answers, request.answers);
    assert_eq!(sub.fields, request.fields);
    assert_eq!(sub.vars, request.vars);
    assert_eq!(sub.language, request.language);
    let engine_consent = contact.consent.unwrap();
    assert_eq!(
        sub.consent.unwrap().record(engine_consent.at),
        engine_consent
    );
}

#[test]
fn required_questions_must_be_answered_and_blank_is_no_answer() {
    let s = all();
    let e = submit(&s, "es", today(), &answers(&[("name", "   ")])).unwrap_err();
    assert_eq!(
        codes(&e),
        [
            ("name", FieldErrorCode::Required),
            ("topic", FieldErrorCode::Required),
            ("country", FieldErrorCode::Required),
            ("consent", FieldErrorCode::ConsentRequired),
        ]
    );
    assert_eq!(e.get("name").unwrap().message, "De 2 a 80 caracteres");
    assert_eq!(e.get("topic").unwrap().message, "No es válido");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("4 field(s)"));
    // Optional ones may be blank, and are then not saved.
    let sub = submit(&s, "en", today(), &with(&[("email", ""), ("story", " ")])).unwrap();
    assert!(!sub.answers.contains_key("email") && !sub.answers.contains_key("story"));
}

#[test]
fn every_field_is_checked_and_each_error_names_its_field() {
    let s = all();
    let e = submit(
        &s,
        "en",
        today(),
        &with(&[
            ("name", "A"),
            ("email", "ana@"),
            ("phone", "612 345 678"),
            ("people", "11"),
            ("born", "2030-01-01"),
            ("topic", "nothing"),
            ("newsletter", "perhaps"),
            ("country", "Narnia"),
        ]),
    )
    .unwrap_err();
    assert_eq!(
        codes(&e),
        [
            ("name", FieldErrorCode::Invalid),
            ("email", FieldErrorCode::Invalid),
            ("phone", FieldErrorCode::Invalid),
            ("people", FieldErrorCode::Invalid),
            ("born", FieldErrorCode::Invalid),
            ("topic", FieldErrorCode::Invalid),
            ("newsletter", FieldErrorCode::Invalid),
            ("country", FieldErrorCode::Invalid),
        ]
    );
    assert_eq!(e.get("name").unwrap().message, "2 to 80 characters, please");
    assert_eq!(e.get("email").unwrap().message, "Sorry, that is not valid");
    let people = submit(&s, "en", today(), &with(&[("people", "2.5")])).unwrap_err();
    assert_eq!(codes(&people), [("people", FieldErrorCode::Invalid)]);
}

#[test]
fn a_pattern_is_checked_on_the_server() {
    let s = default_survey();
    let base = answers(&[
        ("language", "en"),
        ("consent", "yes"),
        ("name", "Ana"),
        ("inquiry", "sales"),
        ("country", "ES"),
        ("description", "Hello"),
    ]);
    let mut bad = base.clone();
    bad.insert("customer_id".into(), "X99".into());
    let e = submit(&s, "es", today(), &bad).unwrap_err();
    assert_eq!(codes(&e), [("customer_id", FieldErrorCode::Invalid)]);
    assert_eq!(
        e.get("customer_id").unwrap().message,
        "Un número de cliente es como C123456. Inténtalo de nuevo o escribe SALTAR."
    );
    assert!(submit(&s, "es", today(), &base).is_ok());
}

#[test]
fn over_long_values_are_too_long_without_a_validator() {
    let s = all();
    let huge = "a".repeat(MAX_ANSWER_BYTES + 1);
    let e = submit(
        &s,
        "en",
        today(),
        &with(&[("story", &huge), ("order", &huge), ("topic", &huge)]),
    )
    .unwrap_err();
    // The order is dropped: its condition is on a topic that was refused.
    assert_eq!(
        codes(&e),
        [
            ("story", FieldErrorCode::TooLong),
            ("topic", FieldErrorCode::TooLong)
        ]
    );
    // Within the byte limit, a text question's own max_length is too_long as well.
    let e = submit(&s, "en", today(), &with(&[("name", &"n".repeat(81))])).unwrap_err();
    assert_eq!(codes(&e), [("name", FieldErrorCode::TooLong)]);
    // Multi-byte: 4,096 bytes of 'ñ' (2 bytes) is 2,048 characters, within the byte limit.
    let e = submit(&s, "en", today(), &with(&[("phone", &"ñ".repeat(2048))])).unwrap_err();
    assert_eq!(codes(&e), [("phone", FieldErrorCode::Invalid)]);
    let e = submit(&s, "en", today(), &with(&[("phone", &"ñ".repeat(2049))])).unwrap_err();
    assert_eq!(codes(&e), [("phone", FieldErrorCode::TooLong)]);
}

#[test]
fn when_drops_answers_to_questions_that_do_not_apply() {
    let s = all();
    // topic sales: the order is dropped, even an invalid one, and not required.
    let sub = submit(&s, "en", today(), &with(&[("order", "not a number")])).unwrap();
    assert!(!sub.answers.contains_key("order") && !sub.vars.contains_key("order_number"));
    // topic support: the order applies, is required and checked.
    let e = submit(&s, "en", today(), &with(&[("topic", "support")])).unwrap_err();
    assert_eq!(codes(&e), [("order", FieldErrorCode::Required)]);
    let e = submit(
        &s,
        "en",
        today(),
        &with(&[("topic", "billing"), ("order", "12")]),
    )
    .unwrap_err();
    assert_eq!(codes(&e), [("order", FieldErrorCode::Invalid)]);
    // The server applies conditions the browser is not given (on a normalised email).
    let sub = submit(
        &s,
        "en",
        today(),
        &with(&[("email", "ANA@example.com"), ("work_email", "yes")]),
    )
    .unwrap();
    assert!(!sub.answers.contains_key("work_email"), "ANA@ is not ana@");
    let sub = submit(
        &s,
        "en",
        today(),
        &with(&[("email", "ana@EXAMPLE.com"), ("work_email", "yes")]),
    )
    .unwrap();
    assert_eq!(sub.answers["work_email"], "yes");
    // A chain: frequency needs newsletter yes; newsletter no drops it.
    let sub = submit(
        &s,
        "en",
        today(),
        &with(&[("newsletter", "no"), ("frequency", "weekly")]),
    )
    .unwrap();
    assert_eq!(sub.answers["newsletter"], "no");
    assert!(!sub.answers.contains_key("frequency"));
    // A dependency that was refused is no answer: its dependants are dropped, not checked.
    let e = submit(
        &s,
        "en",
        today(),
        &with(&[("newsletter", "perhaps"), ("frequency", "daily")]),
    )
    .unwrap_err();
    assert_eq!(codes(&e), [("newsletter", FieldErrorCode::Invalid)]);
}

#[test]
fn a_required_consent_must_be_accepted() {
    let s = all();
    for declined in ["no", "No acepto", "i decline"] {
        let e = submit(&s, "es", today(), &with(&[("consent", declined)])).unwrap_err();
        assert_eq!(codes(&e), [("consent", FieldErrorCode::ConsentRequired)]);
        assert_eq!(e.get("consent").unwrap().message, "No es válido");
    }
    let e = submit(&s, "es", today(), &with(&[("consent", "whatever")])).unwrap_err();
    assert_eq!(codes(&e), [("consent", FieldErrorCode::Invalid)]);
    let sub = submit(&s, "es", today(), &with(&[("consent", "Acepto")])).unwrap();
    let c = sub.consent.unwrap();
    assert!(c.accepted);
    assert_eq!(
        (c.text.as_str(), c.language.as_str()),
        ("¿Aceptas la política?", "es")
    );
}

#[test]
fn an_optional_consent_declined_is_recorded_as_declined() {
    let src = ALL.replace(
        "    policy_version: \"2026-01\"\n",
        "    policy_version: \"2026-01\"\n    required: false\n",
    );
    let s = Survey::parse(&src, 1).unwrap();
    let mut a = minimal();
    a.insert("consent".into(), "no".into());
    let sub = submit(&s, "en", today(), &a).unwrap();
    assert_eq!(sub.answers["consent"], "no");
    assert!(!sub.consent.unwrap().accepted);
    a.remove("consent");
    let sub = submit(&s, "en", today(), &a).unwrap();
    assert_eq!(sub.consent, None, "nothing shown ticked, nothing recorded");
}

#[test]
fn unknown_and_hidden_keys_are_refused() {
    let s = all();
    let e = submit(
        &s,
        "en",
        today(),
        &with(&[("whatsapp_only", "hi"), ("nickname", "Ani")]),
    )
    .unwrap_err();
    assert_eq!(
        codes(&e),
        [
            ("nickname", FieldErrorCode::UnknownField),
            ("whatsapp_only", FieldErrorCode::UnknownField)
        ]
    );
    assert_eq!(e.0[0].message, "Sorry, that is not valid");
    let long_key = "k".repeat(500);
    let e = submit(&s, "en", today(), &with(&[(&long_key, "x")])).unwrap_err();
    assert_eq!(e.0[0].key.len(), 64, "an echoed key is cut short");
}

#[test]
fn choices_take_their_id_as_on_a_tapped_button() {
    let s = all();
    let sub = submit(&s, "en", today(), &with(&[("topic", "billing")])).unwrap_err();
    assert_eq!(codes(&sub), [("order", FieldErrorCode::Required)]);
    // As on WhatsApp, a typed label or number is understood too.
    for typed in ["Soporte", "2", " support "] {
        let e = submit(&s, "en", today(), &with(&[("topic", typed)])).unwrap_err();
        assert_eq!(codes(&e), [("order", FieldErrorCode::Required)], "{typed}");
    }
}

#[test]
fn the_language_question_switches_the_submission_language() {
    let s = all();
    let sub = submit(&s, "en", today(), &with(&[("lang", "es")])).unwrap();
    assert_eq!(sub.language, "es");
    assert_eq!(sub.fields["language"], "es");
    // The consent text is the one the form showed (English), whatever language was chosen.
    assert_eq!(sub.consent.unwrap().language, "en");
    // An unknown form language falls back to the default for texts and validation.
    let e = submit(&s, "fr", today(), &answers(&[])).unwrap_err();
    assert_eq!(e.get("name").unwrap().message, "2 to 80 characters, please");
}

#[test]
fn date_bounds_follow_today() {
    let s = all();
    let e = submit(&s, "en", today(), &with(&[("born", "2026-11-24")])).unwrap_err();
    assert_eq!(codes(&e), [("born", FieldErrorCode::Invalid)]);
    let tomorrow = today().succ_opt().unwrap_or_default();
    assert!(submit(&s, "en", tomorrow, &with(&[("born", "2026-11-24")])).is_ok());
    // English reads month first, as on WhatsApp.
    let sub = submit(&s, "en", today(), &with(&[("born", "05/03/1990")])).unwrap();
    assert_eq!(sub.answers["born"], "1990-05-03");
}

use proptest::strategy::Strategy;

proptest::proptest! {
    #[test]
    fn submit_never_panics(
        pairs in proptest::collection::btree_map(
            proptest::sample::select(vec![
                "name", "story", "email", "phone", "people", "born", "topic", "order",
                "newsletter", "frequency", "work_email", "country", "consent", "lang", "zzz",
            ]).prop_map(str::to_owned),
            "\\PC{0,40}",
            0..14,
        )
    ) {
        let s = all();
        let _ = submit(&s, "es", today(), &pairs);
        let _ = submit(&s, "xx", today(), &pairs);
    }
}

// ------------------------------------------------------------------ shared vectors

/// One row of `validators.json`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    kind: String,
    input: String,
    valid: bool,
    #[serde(default)]
    normalised: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    today: Option<String>,
    #[serde(default)]
    calling_code: Option<String>,
    #[serde(default)]
    min: Option<serde_json::Value>,
    #[serde(default)]
    max: Option<serde_json::Value>,
    #[serde(default)]
    integer: Option<bool>,
    #[serde(default)]
    min_length: Option<usize>,
    #[serde(default)]
    max_length: Option<usize>,
}

const VECTORS: &str = include_str!("../../surveys/testdata/validators.json");

fn vector_kind(v: &Vector) -> QuestionKind {
    use super::super::definition::DateBound;
    let bound = |b: &Option<serde_json::Value>| {
        b.as_ref().and_then(|b| match b.as_str() {
            Some("today") => Some(DateBound::Today),
            Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .ok()
                .map(DateBound::Fixed),
            None => None,
        })
    };
    match v.kind.as_str() {
        "email" => QuestionKind::Email,
        "phone" => QuestionKind::Phone,
        "number" => QuestionKind::Number {
            min: v.min.as_ref().and_then(serde_json::Value::as_f64),
            max: v.max.as_ref().and_then(serde_json::Value::as_f64),
            integer: v.integer.unwrap_or(false),
        },
        "date" => QuestionKind::Date {
            min: bound(&v.min),
            max: bound(&v.max),
        },
        "yes_no" => QuestionKind::YesNo,
        "country" => QuestionKind::Country,
        "text" => QuestionKind::Text {
            min_length: v.min_length.unwrap_or(1),
            max_length: v.max_length.unwrap_or(1000),
        },
        other => panic!("unknown kind {other:?} in validators.json"),
    }
}

#[test]
fn the_shared_validator_vectors_hold() {
    let rows: Vec<Vector> = serde_json::from_str(VECTORS).unwrap();
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let kinds: BTreeSet<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["country", "date", "email", "number", "phone", "text", "yes_no"])
    );
    let mut failures = Vec::new();
    for (i, v) in rows.iter().enumerate() {
        let today = v
            .today
            .as_deref()
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap())
            .unwrap_or_else(today);
        let ctx = AnswerContext {
            language: v.language.as_deref().unwrap_or("en"),
            today,
            calling_code: v.calling_code.as_deref(),
        };
        let mut q = default_survey().questions.remove(0);
        q.kind = vector_kind(v);
        let got = answer::validate(
            &q,
            &MessageContent::Text {
                body: v.input.clone(),
            },
            &ctx,
        )
        .map(|a| a.0)
        .ok();
        let want = if v.valid {
            Some(v.normalised.clone().unwrap_or_else(|| v.input.clone()))
        } else {
            None
        };
        if got != want || (v.valid && v.normalised.is_none()) {
            failures.push(format!(
                "row {i} {} {:?}: got {got:?}, want {want:?}",
                v.kind, v.input
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
