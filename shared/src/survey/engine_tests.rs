//! Unit and property tests of the pure survey engine, on the shipped default survey.

use super::*;
use crate::queue::FifoContract;
use crate::survey::answer::validate;
use crate::whatsapp::event::MediaType;
use proptest::prelude::*;

const T0: i64 = 1_790_000_000;

fn survey() -> Survey {
    Survey::default_survey().unwrap()
}

fn spanish_contact() -> ContactRef {
    ContactRef {
        user_id: Some("ES.8812345".into()),
        wa_id: Some("34612345678".into()),
        profile_name: Some("Ana María".into()),
        username: None,
    }
}

/// Drives the engine the way the entrypoint does: one contact, one survey.
struct Sim {
    survey: Survey,
    contact: ContactState,
    conv: Option<Conversation>,
    who: ContactRef,
    n: u32,
    now: i64,
}

impl Sim {
    fn new(who: ContactRef) -> Sim {
        let contact = ContactState {
            phone_number_id: "PNID".into(),
            key: who.key().unwrap().to_owned(),
            ..Default::default()
        };
        Sim {
            survey: survey(),
            contact,
            conv: None,
            who,
            n: 0,
            now: T0,
        }
    }

    fn send(&mut self, content: MessageContent) -> Outcome {
        self.n += 1;
        self.now += 5;
        let msg = InboundMessage {
            phone_number_id: "PNID".into(),
            display_phone_number: "15550001111".into(),
            contact: self.who.clone(),
            message_id: format!("wamid.{}", self.n),
            timestamp: self.now,
            context_message_id: None,
            referral: None,
            content,
        };
        self.apply(&msg)
    }

    fn apply(&mut self, msg: &InboundMessage) -> Outcome {
        let conv = self
            .conv
            .clone()
            .filter(|c| c.continues(self.survey.reopen_window_minutes, self.now));
        let out = on_message(
            self.contact.clone(),
            conv,
            msg,
            &self.survey,
            self.now * 1000,
        );
        self.contact = out.contact.clone();
        self.conv = out.conversation.clone();
        out
    }

    fn text(&mut self, s: &str) -> Outcome {
        self.send(MessageContent::Text { body: s.into() })
    }

    fn tap(&mut self, id: &str) -> Outcome {
        self.send(MessageContent::ButtonReply {
            id: id.into(),
            title: id.into(),
        })
    }

    fn conv(&self) -> &Conversation {
        self.conv.as_ref().unwrap()
    }

    fn asking(&self) -> Option<&str> {
        self.conv.as_ref().and_then(|c| c.question.as_deref())
    }
}

fn bodies(o: &Outcome) -> Vec<String> {
    o.effects
        .messages
        .iter()
        .map(|m| match &m.body {
            OutboundBody::Text { body, .. } => body.clone(),
            OutboundBody::Buttons { body, .. } | OutboundBody::List { body, .. } => body.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn assign(o: &Outcome) -> &AssignRequest {
    match o.effects.job.as_ref() {
        Some(AssignmentJob::Assign(r)) => r,
        other => panic!("no assign job: {other:?}"),
    }
}

#[test]
fn a_new_contact_is_greeted_by_first_name_in_the_language_of_their_number() {
    let mut s = Sim::new(spanish_contact());
    let o = s.text("Hola, tengo una duda");
    assert_eq!(o.action, Action::Started);
    let b = bodies(&o);
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b[0].starts_with("¡Hola Ana! Bienvenido"), "{}", b[0]);
    assert_eq!(s.conv().language, "es");
    assert_eq!(s.asking(), Some("language"));
    // Two options: reply buttons, labels in Spanish.
    match &o.effects.messages[1].body {
        OutboundBody::Buttons { buttons, .. } => {
            assert_eq!(
                buttons.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
                ["en", "es"]
            );
        }
        other => panic!("{other:?}"),
    }
    let m = &o.effects.messages[0];
    assert_eq!(m.recipient.user_id.as_deref(), Some("ES.8812345"));
    assert_eq!(m.recipient.wa_id.as_deref(), Some("34612345678"));
    assert_eq!(m.conversation_id.as_deref(), Some(s.conv().id.as_str()));
    assert_eq!(m.dedup_id, format!("{}:1:0", s.conv().id));
    assert_eq!(
        o.effects.messages[1].dedup_id,
        format!("{}:1:1", s.conv().id)
    );
    assert!(o.effects.job.is_none());
    assert_eq!(o.contact.conversations, 1);
}

#[test]
fn the_full_default_survey_ends_with_an_assignment_job_carrying_the_answers() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    let mut dedup = std::collections::BTreeSet::new();
    let steps: Vec<(&str, MessageContent)> = vec![
        (
            "language",
            MessageContent::ButtonReply {
                id: "en".into(),
                title: "English".into(),
            },
        ),
        (
            "consent",
            MessageContent::ButtonReply {
                id: "yes".into(),
                title: "I accept".into(),
            },
        ),
        (
            "name",
            MessageContent::Text {
                body: "Ana María López".into(),
            },
        ),
        (
            "email",
            MessageContent::Text {
                body: "Ana@Example.com".into(),
            },
        ),
        // phone is known from wa_id: skipped
        (
            "customer_id",
            MessageContent::Text {
                body: "c123456".into(),
            },
        ),
        (
            "inquiry",
            MessageContent::ListReply {
                id: "after_sales".into(),
                title: "An existing order".into(),
                description: None,
            },
        ),
        (
            "order_id",
            MessageContent::Text {
                body: "12345678".into(),
            },
        ),
        (
            "country",
            MessageContent::Text {
                body: "España".into(),
            },
        ),
        (
            "description",
            MessageContent::Text {
                body: "My parcel has not arrived".into(),
            },
        ),
    ];
    let mut last = None;
    for (key, content) in steps {
        assert_eq!(s.asking(), Some(key));
        let o = s.send(content);
        for m in &o.effects.messages {
            assert!(
                dedup.insert(m.dedup_id.clone()),
                "dedup id reused: {}",
                m.dedup_id
            );
        }
        last = Some(o);
    }
    let o = last.unwrap();
    assert_eq!(o.action, Action::Completed);
    assert_eq!(s.conv().status, Status::HandedOff);
    assert_eq!(s.asking(), None);
    assert_eq!(
        bodies(&o),
        vec!["Thank you, Ana! An agent will be with you shortly."]
    );
    let job = assign(&o);
    assert_eq!(job.reason, HandoffReason::Completed);
    assert_eq!(job.language, "en");
    assert_eq!(
        job.answers.get("email").map(String::as_str),
        Some("Ana@example.com")
    );
    assert_eq!(
        job.answers.get("order_id").map(String::as_str),
        Some("12345678")
    );
    assert_eq!(job.answers.get("country").map(String::as_str), Some("ES"));
    assert_eq!(
        job.fields.get("customer_id").map(String::as_str),
        Some("c123456")
    );
    assert_eq!(
        job.job_id,
        format!("{}:assign:{}", s.conv().id, s.conv().step)
    );
    assert_eq!(job.contact.user_id.as_deref(), Some("ES.8812345"));
    assert!(!job.answers.contains_key("phone"));
    // Saved on the contact, with the consent record.
    assert_eq!(
        s.contact.fields.get("name").map(String::as_str),
        Some("Ana María López")
    );
    assert_eq!(
        s.contact.fields.get("language").map(String::as_str),
        Some("en")
    );
    let consent = s.contact.consent.clone().unwrap();
    assert!(consent.accepted);
    assert_eq!(consent.policy_version, "2026-01");
    assert!(
        consent.text.contains("privacy policy"),
        "exact English text: {}",
        consent.text
    );
    // Now silent: the agent takes over (the message is only relayed to them).
    let o = s.text("hello?");
    assert_eq!(o.action, Action::Silent);
    assert!(o.effects.messages.is_empty());
    assert!(matches!(o.effects.job, Some(AssignmentJob::Relay(_))));
}

#[test]
fn the_when_branch_is_skipped_for_other_inquiries() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    s.tap("es");
    s.tap("yes");
    s.text("Ana");
    s.text("saltar"); // optional email, Spanish skip word
    assert_eq!(s.asking(), Some("customer_id"));
    s.text("SKIP");
    let o = s.tap("sales");
    assert_eq!(o.action, Action::Accepted);
    assert_eq!(s.asking(), Some("country"), "order_id only for after-sales");
}

#[test]
fn invalid_answers_are_retried_then_the_fallback_applies() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.tap("en");
    s.tap("yes");
    s.text("Ana");
    assert_eq!(s.asking(), Some("email"));
    let o = s.text("not an email");
    assert_eq!(o.action, Action::Rejected(Rejection::NotEmail));
    let b = bodies(&o);
    assert!(
        b[0].starts_with("That does not look like an email address"),
        "{b:?}"
    );
    assert!(b[0].ends_with("What is your email address?"), "{b:?}");
    assert_eq!(s.conv().attempts, 1);
    assert!(!s.contact.fields.contains_key("email"));
    s.text("still@not");
    let o = s.text("@@@");
    // max_attempts 3, fallback skip: on to the next question
    assert_eq!(o.action, Action::Skipped);
    assert_eq!(s.asking(), Some("customer_id"));
    assert_eq!(s.conv().attempts, 0);
    assert_eq!(s.conv().invalid_answers, 3);
    assert!(!s.conv().answers.contains_key("email"));
}

#[test]
fn a_handoff_fallback_queues_the_job_with_what_we_have() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.tap("en");
    s.tap("yes");
    s.text("Ana");
    s.text("skip");
    s.text("skip");
    assert_eq!(s.asking(), Some("inquiry"));
    s.text("pizza");
    s.text("7");
    let o = s.text("?");
    assert_eq!(o.action, Action::HandedOff(HandoffReason::Fallback));
    let job = assign(&o);
    assert_eq!(job.reason, HandoffReason::Fallback);
    assert_eq!(job.answers.get("name").map(String::as_str), Some("Ana"));
    assert_eq!(
        bodies(&o),
        vec!["No problem, we are connecting you with an agent now."]
    );
}

#[test]
fn media_during_a_text_question_gets_please_answer_with_text() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.tap("en");
    s.tap("yes");
    let o = s.send(MessageContent::Media {
        media_type: MediaType::Image,
        id: "m1".into(),
        mime_type: None,
        caption: None,
        filename: None,
    });
    assert_eq!(o.action, Action::Rejected(Rejection::NotText));
    assert!(bodies(&o)[0].starts_with("Please answer with a text message."));
    let o = s.send(MessageContent::Reaction {
        message_id: "x".into(),
        emoji: Some("👍".into()),
    });
    assert_eq!(o.action, Action::Rejected(Rejection::NotText));
    // A system notice is not an answer and costs no attempt.
    let o = s.send(MessageContent::System {
        body: "changed number".into(),
    });
    assert_eq!(o.action, Action::Silent);
    assert_eq!(s.conv().attempts, 2);
}

#[test]
fn a_location_answers_the_country_question() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    for step in [
        ("b", "en"),
        ("b", "yes"),
        ("t", "Ana"),
        ("t", "a@b.co"),
        ("t", "skip"),
        ("b", "other"),
    ] {
        if step.0 == "b" {
            s.tap(step.1)
        } else {
            s.text(step.1)
        };
    }
    assert_eq!(s.asking(), Some("country"));
    let o = s.send(MessageContent::Location {
        latitude: 19.4,
        longitude: -99.1,
        name: None,
        address: Some("Av. Reforma 1, CDMX, Mexico".into()),
    });
    assert_eq!(o.action, Action::Accepted);
    assert_eq!(
        s.contact.fields.get("country").map(String::as_str),
        Some("MX")
    );
}

#[test]
fn keywords_human_stop_and_restart() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    s.tap("es");
    let o = s.text("Agente");
    assert_eq!(o.action, Action::HandedOff(HandoffReason::Requested));
    assert_eq!(assign(&o).reason, HandoffReason::Requested);
    assert_eq!(
        bodies(&o),
        vec!["De acuerdo, te estamos conectando con un agente."]
    );
    // restart while handed off: the survey starts over in the same conversation
    let id = s.conv().id.clone();
    let o = s.text("reiniciar");
    assert_eq!(o.action, Action::Restarted);
    assert_eq!(s.conv().id, id);
    assert!(s.conv().answers.is_empty());
    assert_eq!(
        s.asking(),
        Some("consent"),
        "language is saved on the contact now"
    );
    let o = s.text("STOP");
    assert_eq!(o.action, Action::OptedOut);
    assert!(s.contact.opted_out);
    assert_eq!(s.conv().status, Status::OptedOut);
    assert_eq!(bodies(&o).len(), 1);
    // Opted out: nothing automated, even a new conversation
    let o = s.text("hola otra vez");
    assert_eq!(o.action, Action::Silent);
    assert!(o.effects.messages.is_empty());
    let o = s.text("Reiniciar");
    assert_eq!(o.action, Action::Restarted);
    assert!(!s.contact.opted_out);
    assert_ne!(s.conv().id, id, "a new conversation");
    assert_eq!(s.asking(), Some("consent"));
}

fn cancel(o: &Outcome) -> &CancelRequest {
    match o.effects.job.as_ref() {
        Some(AssignmentJob::Cancel(r)) => r,
        other => panic!("no cancel job: {other:?}"),
    }
}

#[test]
fn stop_while_handed_off_cancels_the_hand_off_in_the_same_fifo_group() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    let handoff = s.text("agente");
    let group = handoff.effects.job.as_ref().unwrap().group_id();
    let o = s.text("parar");
    assert_eq!(o.action, Action::OptedOut);
    let c = cancel(&o);
    assert_eq!(c.reason, CancelReason::Stopped);
    assert_eq!(c.conversation_id, s.conv().id);
    assert_eq!(c.requested_at, s.now);
    assert_eq!(o.effects.job.as_ref().unwrap().group_id(), group);
    assert_ne!(c.job_id, assign(&handoff).job_id);
}

#[test]
fn restart_while_handed_off_cancels_and_the_new_hand_off_carries_the_new_answers() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    s.tap("es");
    let first = s.text("agente");
    let first_job = assign(&first).job_id.clone();
    let o = s.text("reiniciar");
    assert_eq!(cancel(&o).reason, CancelReason::Restarted);
    // The contact answers again and asks for a human: a new job with the new answers.
    s.tap("yes");
    s.text("Ana Nueva");
    let again = s.text("agente");
    let job = assign(&again);
    assert_ne!(job.job_id, first_job);
    assert_eq!(
        job.answers.get("name").map(String::as_str),
        Some("Ana Nueva")
    );
    assert!(!job.supersedes, "the cancel went out with the restart");
}

#[test]
fn stop_or_restart_before_any_hand_off_queues_no_job() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    assert!(s.text("reiniciar").effects.job.is_none());
    assert!(s.text("parar").effects.job.is_none());
}

#[test]
fn a_restart_that_completes_at_once_supersedes_the_open_hand_off() {
    let mut s = Sim::new(spanish_contact());
    // No question applies: the survey completes as soon as it starts.
    s.survey.questions.clear();
    let first = s.text("hola");
    assert_eq!(first.action, Action::Started);
    assert!(!assign(&first).supersedes);
    let o = s.text("reiniciar");
    let job = assign(&o);
    assert!(job.supersedes);
    assert_ne!(job.job_id, assign(&first).job_id);
}

#[test]
fn a_returning_contact_is_not_asked_what_we_already_know() {
    let mut s = Sim::new(spanish_contact());
    s.contact.conversations = 2;
    for (k, v) in [
        ("language", "en"),
        ("name", "Ana López"),
        ("email", "ana@example.com"),
        ("customer_id", "C000001"),
        ("country", "ES"),
    ] {
        s.contact.fields.insert(k.into(), v.into());
    }
    s.contact.consent = Some(ConsentRecord {
        accepted: true,
        text: "x".into(),
        policy_url: "https://example.com/privacy".into(),
        policy_version: "2026-01".into(),
        language: "en".into(),
        at: T0 - 100,
    });
    let o = s.text("hello again");
    let b = bodies(&o);
    assert!(b[0].starts_with("Welcome back, Ana!"), "{b:?}");
    assert_eq!(s.asking(), Some("inquiry"));
    assert_eq!(s.conv().language, "en");
    // an older policy version is asked again
    let mut s2 = Sim::new(spanish_contact());
    s2.contact.fields.insert("language".into(), "en".into());
    s2.contact.consent = Some(ConsentRecord {
        accepted: true,
        text: "x".into(),
        policy_url: "u".into(),
        policy_version: "2020-01".into(),
        language: "en".into(),
        at: T0,
    });
    s2.text("hi");
    assert_eq!(s2.asking(), Some("consent"));
}

#[test]
fn declining_consent_hands_off_without_asking_for_data() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.tap("en");
    let o = s.tap("no");
    assert_eq!(o.action, Action::HandedOff(HandoffReason::Fallback));
    let c = s.contact.consent.clone().unwrap();
    assert!(!c.accepted);
    assert!(!s.contact.fields.contains_key("name"));
}

#[test]
fn silence_expires_the_survey_and_the_next_message_starts_over() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.tap("en");
    s.tap("yes");
    assert_eq!(s.asking(), Some("name"));
    s.now += 24 * 3600;
    let o = s.text("Ana");
    assert_eq!(o.action, Action::Restarted);
    assert!(s.conv().answers.is_empty());
    // language and consent are saved on the contact: the restart asks the name again
    assert_eq!(s.asking(), Some("name"));
    assert!(bodies(&o)[0].starts_with("Welcome back"));
}

#[test]
fn a_closed_conversation_reopens_within_the_window_and_not_after() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.text("agent");
    let id = s.conv().id.clone();
    // the assigner closes it
    let mut c = s.conv.clone().unwrap();
    c.status = Status::Closed;
    c.closed_at = Some(s.now);
    s.conv = Some(c);
    let o = s.text("one more thing");
    assert_eq!(o.action, Action::Reopened);
    assert_eq!(s.conv().id, id);
    assert_eq!(assign(&o).reason, HandoffReason::Requested);
    assert!(o.effects.messages.is_empty());
    let mut c = s.conv.clone().unwrap();
    c.status = Status::Closed;
    c.closed_at = Some(s.now);
    s.conv = Some(c);
    s.now += 24 * 3600 + 1;
    let o = s.text("new question");
    assert_eq!(o.action, Action::Started);
    assert_ne!(s.conv().id, id);
    assert!(
        bodies(&o)[0].starts_with("¡Hola de nuevo, Ana!"),
        "{:?}",
        bodies(&o)
    );
}

#[test]
fn a_reply_to_a_business_initiated_message_does_not_start_a_survey() {
    let mut s = Sim::new(spanish_contact());
    let o = s.send(MessageContent::TemplateButton {
        payload: "promo".into(),
        text: "Tell me more".into(),
    });
    assert_eq!(o.action, Action::HandedOff(HandoffReason::Requested));
    assert!(o.effects.messages.is_empty());
    assert_eq!(s.conv().status, Status::HandedOff);
}

#[test]
fn contacts_without_a_phone_number_are_asked_for_it() {
    let who = ContactRef {
        user_id: Some("US.99".into()),
        wa_id: None,
        profile_name: None,
        username: Some("ana_l".into()),
    };
    let mut s = Sim::new(who);
    let o = s.text("hi");
    assert!(bodies(&o)[0].starts_with("Hi ana_l!"), "{:?}", bodies(&o));
    assert_eq!(s.conv().language, "en");
    s.tap("en");
    s.tap("yes");
    s.text("Ana");
    s.text("skip");
    assert_eq!(s.asking(), Some("phone"));
    let o = s.text("612 345 678");
    assert_eq!(
        o.action,
        Action::Rejected(Rejection::NotPhone),
        "no country code to assume"
    );
    s.text("+34 612 345 678");
    assert_eq!(
        s.contact.fields.get("phone").map(String::as_str),
        Some("+34612345678")
    );
    assert_eq!(
        o.effects.messages[0].recipient.user_id.as_deref(),
        Some("US.99")
    );
    assert_eq!(o.effects.messages[0].recipient.wa_id, None);
}

#[test]
fn reminders_once_per_question_within_the_window() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    let conv = s.conv.clone().unwrap();
    assert!(on_timer(&s.contact, conv.clone(), &s.survey, (s.now + 60) * 1000).is_none());
    let (c2, fx) = on_timer(
        &s.contact,
        conv.clone(),
        &s.survey,
        (s.now + 31 * 60) * 1000,
    )
    .unwrap();
    assert_eq!(fx.messages.len(), 1);
    assert!(bodies(&Outcome {
        contact: s.contact.clone(),
        conversation: None,
        effects: fx,
        action: Action::Silent
    })[0]
        .starts_with("¿Sigues ahí?"));
    assert!(
        on_timer(&s.contact, c2, &s.survey, (s.now + 40 * 60) * 1000).is_none(),
        "only once"
    );
    assert!(
        on_timer(&s.contact, conv, &s.survey, (s.now + 25 * 3600) * 1000).is_none(),
        "expired"
    );
}

#[test]
fn choices_beyond_ten_options_are_a_numbered_text_list() {
    let mut yaml = crate::survey::definition::DEFAULT_SURVEY_YAML.to_owned();
    let mut opts = String::new();
    for i in 0..12 {
        opts.push_str(&format!(
            "      - {{ id: p{i}, label: {{ en: Product {i}, es: Producto {i} }} }}\n"
        ));
    }
    yaml = yaml.replace(
        "      - { id: sales, label: { en: Buying, es: Comprar } }\n      - { id: after_sales, label: { en: An existing order, es: Un pedido existente } }\n      - { id: other, label: { en: Something else, es: Otra cosa } }\n",
        &format!("{opts}      - {{ id: after_sales, label: {{ en: An existing order, es: Un pedido existente }} }}\n"),
    );
    let mut s = Sim::new(spanish_contact());
    s.survey = Survey::parse(&yaml, 3).unwrap();
    s.contact.fields.insert("language".into(), "en".into());
    s.contact.consent = Some(ConsentRecord {
        accepted: true,
        text: "x".into(),
        policy_url: "u".into(),
        policy_version: "2026-01".into(),
        language: "en".into(),
        at: T0,
    });
    for (k, v) in [
        ("name", "Ana"),
        ("email", "a@b.co"),
        ("customer_id", "C000001"),
    ] {
        s.contact.fields.insert(k.into(), v.into());
    }
    let o = s.text("hi");
    assert_eq!(s.asking(), Some("inquiry"));
    let last = bodies(&o).pop().unwrap();
    assert!(
        last.contains("\n1. Product 0\n") && last.contains("\n13. An existing order"),
        "{last}"
    );
    let o = s.text("13");
    assert_eq!(o.action, Action::Accepted);
    assert_eq!(s.asking(), Some("order_id"));
}

// ------------------------------------------------------------------ properties

/// The mark-as-read of an outcome: (message id, typing indicator, dedup id).
fn read(o: &Outcome) -> Option<(String, bool, String)> {
    let m = o.effects.read.as_ref()?;
    match &m.body {
        OutboundBody::MarkRead {
            message_id,
            typing_indicator,
        } => Some((message_id.clone(), *typing_indicator, m.dedup_id.clone())),
        other => panic!("not a mark-as-read: {other:?}"),
    }
}

#[test]
fn every_message_the_survey_answers_is_marked_read_with_the_typing_indicator() {
    let mut s = Sim::new(spanish_contact());
    for answer in ["hola", "en", "maybe"] {
        let o = s.text(answer);
        let id = format!("wamid.{}", s.n);
        assert!(!o.effects.messages.is_empty());
        assert_eq!(read(&o), Some((id.clone(), true, format!("read:{id}"))));
        let m = o.effects.read.as_ref().unwrap();
        assert_eq!(m.recipient.user_id.as_deref(), Some("ES.8812345"));
        assert_eq!(m.conversation_id.as_deref(), Some(s.conv().id.as_str()));
    }
}

#[test]
fn after_the_hand_off_only_what_the_survey_answers_is_marked_read() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    let o = s.text("agente");
    assert_eq!(o.action, Action::HandedOff(HandoffReason::Requested));
    assert!(read(&o).is_some(), "the hand-off text answers it");
    for o in [s.text("hello?"), s.text("anyone there")] {
        assert_eq!(o.action, Action::Silent);
        assert_eq!(read(&o), None, "waiting for an agent: not read by anyone");
    }
    let o = s.send(MessageContent::TemplateButton {
        payload: "promo".into(),
        text: "Tell me more".into(),
    });
    assert_eq!(read(&o), None);
}

#[test]
fn system_notices_and_opted_out_contacts_are_not_marked_read() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    let o = s.send(MessageContent::System {
        body: "User changed number".into(),
    });
    assert_eq!(read(&o), None);
    assert!(
        read(&s.text("stop")).is_some(),
        "the opt-out confirmation answers it"
    );
    assert!(s.contact.opted_out);
    assert_eq!(read(&s.text("hello")), None);
}

#[test]
fn a_message_dated_ahead_of_the_clock_counts_as_written_now() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    s.n += 1;
    s.now += 5;
    let msg = InboundMessage {
        phone_number_id: "PNID".into(),
        display_phone_number: "15550001111".into(),
        contact: s.who.clone(),
        message_id: "wamid.future".into(),
        timestamp: i64::MAX,
        context_message_id: None,
        referral: None,
        content: MessageContent::ButtonReply {
            id: "en".into(),
            title: "English".into(),
        },
    };
    let o = s.apply(&msg);
    assert_eq!(o.action, Action::Accepted);
    assert_eq!(s.conv().last_inbound_at, s.now, "not the future date");
    let o = s.tap("yes");
    assert_eq!(o.action, Action::Accepted, "the next message still applies");
    assert_eq!(s.conv().last_inbound_at, s.now);
}

// ---------------------------------------------------------------- transcript

/// (author, body) of each transcript line of a step.
fn lines(o: &Outcome) -> Vec<(Author, Body)> {
    o.effects
        .transcript
        .iter()
        .map(|e| (e.author.clone(), e.body.clone()))
        .collect()
}

fn said(text: &str) -> (Author, Body) {
    (Author::Bot, Body::Text { text: text.into() })
}

fn contact_text(text: &str) -> (Author, Body) {
    (Author::Contact, Body::Text { text: text.into() })
}

#[test]
fn the_first_message_is_recorded_then_the_greeting_then_the_question() {
    let mut s = Sim::new(spanish_contact());
    let o = s.text("Hola");
    let l = lines(&o);
    assert_eq!(l.len(), 3, "{l:?}");
    assert_eq!(l[0], contact_text("Hola"));
    assert_eq!(l[1], said(&bodies(&o)[0]));
    let Body::Question { question, text } = &l[2].1 else {
        panic!("{l:?}")
    };
    assert_eq!(
        (question.as_str(), text.as_str()),
        ("language", "¿Qué idioma prefieres?")
    );
    assert_eq!(o.effects.transcript[0].wamid.as_deref(), Some("wamid.1"));
    assert_eq!(o.effects.transcript[0].status, None);
}

#[test]
fn an_accepted_answer_is_recorded_with_its_normalised_value_before_the_next_question() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    let o = s.tap("en");
    let l = lines(&o);
    assert_eq!(
        l[0].1,
        Body::Reply {
            reply_id: "en".into(),
            title: "en".into()
        }
    );
    assert_eq!(
        l[1],
        (
            Author::System,
            Body::Answer {
                question: "language".into(),
                value: "en".into()
            }
        )
    );
    assert!(
        matches!(&l[2].1, Body::Question { question, .. } if question == "consent"),
        "{l:?}"
    );
    assert_eq!(l.len(), 3);
}

#[test]
fn a_rejected_answer_records_the_question_asked_again_with_the_retry_text() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    s.tap("en");
    s.tap("yes");
    assert_eq!(s.asking(), Some("name"));
    let l = lines(&s.text("x"));
    assert_eq!(l.len(), 2, "no answer line for a rejected answer: {l:?}");
    let Body::Question { question, text } = &l[1].1 else {
        panic!("{l:?}")
    };
    assert_eq!(question, "name");
    assert!(
        text.starts_with("Please write your name") && text.ends_with("What is your full name?"),
        "{text}"
    );
}

#[test]
fn every_outbound_message_names_its_pending_entry() {
    let mut s = Sim::new(spanish_contact());
    let o = s.text("hola");
    assert_eq!(o.effects.messages.len(), 2);
    for m in &o.effects.messages {
        let r = m.transcript.as_ref().expect("a transcript ref");
        assert_eq!(r.conversation_id, s.conv().id);
        let e = o
            .effects
            .transcript
            .iter()
            .find(|e| e.id == r.entry_id)
            .unwrap();
        assert_eq!(e.status, Some(transcript::DeliveryStatus::Pending));
        assert_eq!(e.author, Author::Bot);
    }
    assert_eq!(
        o.effects.read.as_ref().and_then(|r| r.transcript.clone()),
        None
    );
}

#[test]
fn each_kind_of_contact_message_has_its_line_and_system_notices_none() {
    let mut s = Sim::new(spanish_contact());
    s.text("agente");
    let cases = [
        (
            MessageContent::Media {
                media_type: MediaType::Document,
                id: "med1".into(),
                mime_type: None,
                caption: Some("invoice".into()),
                filename: None,
            },
            Body::Media {
                media_type: "document".into(),
                caption: Some("invoice".into()),
                media_id: "med1".into(),
            },
        ),
        (
            MessageContent::Location {
                latitude: 40.4,
                longitude: -3.7,
                name: Some("Sol".into()),
                address: None,
            },
            Body::Location {
                latitude: 40.4,
                longitude: -3.7,
                name: Some("Sol".into()),
                address: None,
            },
        ),
        (
            MessageContent::ListReply {
                id: "r1".into(),
                title: "Row".into(),
                description: None,
            },
            Body::Reply {
                reply_id: "r1".into(),
                title: "Row".into(),
            },
        ),
        (
            MessageContent::Reaction {
                message_id: "m".into(),
                emoji: Some("👍".into()),
            },
            Body::Other {
                description: "reaction".into(),
            },
        ),
    ];
    for (content, body) in cases {
        assert_eq!(lines(&s.send(content)), vec![(Author::Contact, body)]);
    }
    let o = s.send(MessageContent::System {
        body: "changed number".into(),
    });
    assert!(o.effects.transcript.is_empty());
}

#[test]
fn after_the_hand_off_every_message_is_recorded_though_nothing_is_said() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    s.text("agente");
    for text in ["hello?", "anyone there"] {
        let o = s.text(text);
        assert_eq!(o.action, Action::Silent);
        assert!(o.effects.messages.is_empty());
        assert_eq!(lines(&o), vec![contact_text(text)]);
    }
}

#[test]
fn a_reopened_conversation_records_the_message_and_the_reopening() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.text("agent");
    let mut c = s.conv.clone().unwrap();
    c.status = Status::Closed;
    c.closed_at = Some(s.now);
    s.conv = Some(c);
    let o = s.text("one more thing");
    let reopened = (
        Author::System,
        Body::Event {
            event: transcript::Event::Reopened,
        },
    );
    assert_eq!(lines(&o), vec![contact_text("one more thing"), reopened]);
}

#[test]
fn entry_ids_keep_increasing_within_one_second_and_across_steps() {
    let mut s = Sim::new(spanish_contact());
    let mut ids = Vec::new();
    for text in ["hola", "agente", "a", "b"] {
        let o = s.text(text);
        s.now -= 5; // every message in the same second
        ids.extend(o.effects.transcript.iter().map(|e| e.id.clone()));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids.iter().all(|id| transcript::is_entry_id(id)));
}

#[test]
fn entries_keep_the_milliseconds_so_an_answer_sorts_after_an_agents_reply_in_the_same_second() {
    // An agent's reply is stamped in milliseconds (T0 s + 400 ms); the contact answers 350 ms
    // later, still within second T0: the answer's entry must sort after the reply's.
    let s = Sim::new(spanish_contact());
    let agent_reply =
        transcript::event_entry_id(T0 * 1000 + 400, transcript::EventRank::Message, "agent:c:1");
    let msg = InboundMessage {
        phone_number_id: "PNID".into(),
        display_phone_number: "15550001111".into(),
        contact: s.who.clone(),
        message_id: "wamid.ms".into(),
        timestamp: T0,
        context_message_id: None,
        referral: None,
        content: MessageContent::Text {
            body: "hola".into(),
        },
    };
    let o = on_message(s.contact.clone(), None, &msg, &s.survey, T0 * 1000 + 750);
    let first = &o.effects.transcript[0];
    assert_eq!(first.at, T0 * 1000 + 750);
    assert!(first.id > agent_reply, "{} <= {agent_reply}", first.id);
    let conv = o.conversation.expect("a conversation");
    assert_eq!(conv.started_at, T0, "the conversation keeps whole seconds");
}

#[test]
fn the_same_message_on_the_same_state_records_the_same_entries() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    let (contact, conv) = (s.contact.clone(), s.conv.clone());
    let a = s.tap("en");
    s.contact = contact;
    s.conv = conv;
    s.n -= 1;
    s.now -= 5;
    let b = s.tap("en");
    assert_eq!(a.effects.transcript, b.effects.transcript);
}

#[test]
fn a_reminder_is_a_bot_line_of_the_conversation() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    let conv = s.conv.clone().unwrap();
    let (c2, fx) = on_timer(
        &s.contact,
        conv.clone(),
        &s.survey,
        (s.now + 31 * 60) * 1000,
    )
    .unwrap();
    assert_eq!(fx.transcript.len(), 1);
    assert_eq!(fx.transcript[0].author, Author::Bot);
    assert_eq!(
        fx.messages[0]
            .transcript
            .as_ref()
            .map(|r| r.entry_id.as_str()),
        Some(fx.transcript[0].id.as_str())
    );
    assert_eq!(c2.transcript_seq, conv.transcript_seq + 1);
}

#[test]
fn answers_saved_as_variables_reach_the_ticket() {
    let mut s = Sim::new(spanish_contact());
    s.text("hola");
    for step in ["en", "yes"] {
        s.tap(step);
    }
    for text in ["Ana López", "skip", "skip"] {
        s.text(text);
    }
    s.tap("sales");
    assert_eq!(s.asking(), Some("country"));
    s.text("España");
    let o = s.text("I want to buy a bike");
    let job = assign(&o);
    assert_eq!(
        job.vars.get("description").map(String::as_str),
        Some("I want to buy a bike")
    );
    assert_eq!(job.vars.get("inquiry").map(String::as_str), Some("sales"));
    assert!(
        !job.vars.contains_key("name"),
        "contact fields stay in `fields`"
    );
}

fn content_strategy() -> impl Strategy<Value = MessageContent> {
    prop_oneof![
        "\\PC{0,30}".prop_map(|body| MessageContent::Text { body }),
        prop::sample::select(vec![
            "hi",
            "en",
            "es",
            "yes",
            "no",
            "Ana",
            "a@b.co",
            "skip",
            "saltar",
            "agent",
            "stop",
            "restart",
            "reiniciar",
            "C123456",
            "1",
            "2",
            "3",
            "12345678",
            "Spain",
            "+34612345678",
            "my order is late",
            "sales",
        ])
        .prop_map(|b| MessageContent::Text { body: b.to_owned() }),
        prop::sample::select(vec![
            "en",
            "es",
            "yes",
            "no",
            "sales",
            "after_sales",
            "other",
            "bogus"
        ])
        .prop_map(|id| MessageContent::ButtonReply {
            id: id.to_owned(),
            title: id.to_owned()
        }),
        Just(MessageContent::Media {
            media_type: MediaType::Audio,
            id: "a".into(),
            mime_type: None,
            caption: None,
            filename: None
        }),
        Just(MessageContent::Location {
            latitude: 0.0,
            longitude: 0.0,
            name: None,
            address: Some("x, Spain".into())
        }),
        Just(MessageContent::Reaction {
            message_id: "m".into(),
            emoji: None
        }),
        Just(MessageContent::Unsupported {
            message_type: "poll".into()
        }),
        Just(MessageContent::System { body: "s".into() }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any sequence of inbound messages (and pauses) never panics, never saves an answer that
    /// fails validation, and always leaves the conversation awaiting an existing question or
    /// in a terminal state.
    #[test]
    fn any_sequence_keeps_the_invariants(
        steps in prop::collection::vec((content_strategy(), prop::sample::select(vec![0i64, 5, 3600, 90_000])), 1..40),
        bsuid in any::<bool>(),
    ) {
        let who = if bsuid { spanish_contact() } else { ContactRef { wa_id: Some("16505551234".into()), ..Default::default() } };
        let mut s = Sim::new(who);
        let mut last_entry: Option<(String, String)> = None;
        for (content, pause) in steps {
            s.now += pause;
            let before_step = s.conv.as_ref().map(|c| (c.id.clone(), c.step));
            let content_sent = content.clone();
            let o = s.send(content);
            let survey = &s.survey;
            if let Some(c) = &s.conv {
                match c.status {
                    Status::Surveying => {
                        let q = c.question.as_deref().and_then(|k| survey.question(k));
                        prop_assert!(q.is_some(), "surveying without a question: {c:?}");
                        prop_assert!(c.attempts < q.map(|q| q.max_attempts).unwrap_or(0));
                    }
                    _ => prop_assert!(c.question.is_none()),
                }
                // Every saved answer is a value that validates for its question.
                for (key, value) in &c.answers {
                    let q = survey.question(key).unwrap();
                    let ctx = AnswerContext { language: &c.language, today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), calling_code: None };
                    let again = validate(q, &MessageContent::Text { body: value.clone() }, &ctx);
                    prop_assert_eq!(again.map(|a| a.0), Ok(value.clone()), "answer {} saved unvalidated", key);
                }
                if !o.effects.messages.is_empty() {
                    prop_assert!(Some((c.id.clone(), c.step)) != before_step, "messages without a new step");
                }
                // Marked read exactly when answered or while a question is open; typing only
                // when replies follow.
                let answered = !o.effects.messages.is_empty();
                let system = matches!(content_sent, MessageContent::System { .. });
                let expected = (!system && (answered || c.status == Status::Surveying))
                    .then(|| (format!("wamid.{}", s.n), answered, format!("read:wamid.{}", s.n)));
                prop_assert_eq!(read(&o), expected);
                // The transcript: the contact's message (unless a system notice), every
                // outbound message as a pending entry it names, ids increasing per conversation.
                prop_assert_eq!(
                    o.effects.transcript.first().map(|e| &e.author) == Some(&Author::Contact),
                    !system
                );
                for m in &o.effects.messages {
                    let r = m.transcript.as_ref();
                    prop_assert!(r.is_some_and(|r| r.conversation_id == c.id
                        && o.effects.transcript.iter().any(|e| e.id == r.entry_id)));
                }
                let ids: Vec<&String> = o.effects.transcript.iter().map(|e| &e.id).collect();
                prop_assert!(ids.windows(2).all(|w| w[0] < w[1]));
                if let (Some(first), Some((prev_conv, prev_last))) = (ids.first(), &last_entry) {
                    if prev_conv == &c.id {
                        prop_assert!(*first > prev_last);
                    }
                }
                if let Some(last) = ids.last() {
                    last_entry = Some((c.id.clone(), (*last).clone()));
                }
            }
            if s.contact.opted_out {
                // No hand-off for an opted-out contact; only the end of one.
                prop_assert!(!matches!(o.effects.job, Some(AssignmentJob::Assign(_))));
            }
            for m in &o.effects.messages {
                if let OutboundBody::Buttons { buttons, .. } = &m.body {
                    prop_assert!(buttons.len() <= 3 && buttons.iter().all(|b| b.title.chars().count() <= 20));
                }
            }
        }
    }
}

// ------------------------------------------------ moved from the moto tests (issue 16)

/// Ana in English at the inquiry question (email and customer id skipped).
fn at_the_inquiry() -> Sim {
    let mut s = Sim::new(spanish_contact());
    for m in ["hi", "en", "yes", "Ana", "skip", "skip"] {
        if matches!(m, "en" | "yes") {
            s.tap(m);
        } else {
            s.text(m);
        }
    }
    assert_eq!(s.asking(), Some("inquiry"));
    s
}

#[test]
fn an_unknown_choice_is_answered_with_an_apology() {
    let mut s = at_the_inquiry();
    let o = s.text("pizza");
    assert!(matches!(o.action, Action::Rejected(_)), "{:?}", o.action);
    assert!(bodies(&o)[0].starts_with("Sorry, I did not understand that."));
}

#[test]
fn a_reaction_to_a_choice_question_asks_for_text() {
    let mut s = at_the_inquiry();
    let o = s.send(MessageContent::Reaction {
        message_id: "wamid.x".into(),
        emoji: Some("👍".into()),
    });
    assert_eq!(o.action, Action::Rejected(Rejection::NotText));
    assert!(bodies(&o)[0].starts_with("Please answer with a text message."));
}

#[test]
fn no_job_is_queued_before_the_last_attempt_fails() {
    let mut s = at_the_inquiry();
    assert!(s.text("pizza").effects.job.is_none());
    assert!(s.text("7").effects.job.is_none());
}

#[test]
fn a_fallback_hand_off_leaves_the_question_unanswered() {
    let mut s = at_the_inquiry();
    s.text("pizza");
    s.text("7");
    let o = s.text("9");
    assert!(!assign(&o).answers.contains_key("inquiry"));
    assert_eq!(s.conv().handoff, Some(HandoffReason::Fallback));
}

#[test]
fn a_restart_keeps_what_the_contact_already_gave() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.tap("en");
    s.tap("yes");
    s.text("Ana");
    s.text("Restart");
    assert_eq!(s.asking(), Some("email"), "name, language, consent kept");
    assert!(s.conv().answers.is_empty());
}

#[test]
fn asking_for_a_human_in_capitals_hands_off() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.tap("en");
    let o = s.text("HUMAN");
    assert_eq!(o.action, Action::HandedOff(HandoffReason::Requested));
    assert_eq!(assign(&o).reason, HandoffReason::Requested);
    assert_eq!(
        bodies(&o),
        vec!["No problem, we are connecting you with an agent now."]
    );
}

#[test]
fn a_message_while_handed_off_gets_no_reply() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.text("human");
    let o = s.text("are you there?");
    assert!(o.effects.messages.is_empty());
    assert!(matches!(o.effects.job, Some(AssignmentJob::Relay(_))));
}

#[test]
fn a_message_while_handed_off_is_relayed_as_its_transcript_entry() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.text("human");
    let o = s.text("are you there?");
    let Some(AssignmentJob::Relay(r)) = &o.effects.job else {
        panic!("no relay job: {:?}", o.effects.job)
    };
    let conv = o.conversation.as_ref().unwrap();
    assert_eq!(r.entry, o.effects.transcript[0]);
    assert_eq!(
        r.entry.body,
        Body::Text {
            text: "are you there?".into()
        }
    );
    assert_eq!(r.conversation_id, conv.id);
    assert_eq!(r.job_id, format!("{}:relay:{}", conv.id, r.entry.id));
    assert_eq!(r.contact, o.contact.identity);
}

#[test]
fn a_stop_while_handed_off_cancels_instead_of_relaying() {
    let mut s = Sim::new(spanish_contact());
    s.text("hi");
    s.text("human");
    let o = s.text("STOP");
    assert!(matches!(o.effects.job, Some(AssignmentJob::Cancel(_))));
}

#[test]
fn a_returning_contact_goes_from_the_inquiry_to_the_description() {
    let mut s = Sim::new(spanish_contact());
    s.contact.conversations = 2;
    for (k, v) in [
        ("language", "en"),
        ("name", "Ana López"),
        ("email", "ana@example.com"),
        ("customer_id", "C123456"),
        ("country", "ES"),
    ] {
        s.contact.fields.insert(k.into(), v.into());
    }
    s.contact.consent = Some(ConsentRecord {
        accepted: true,
        text: "x".into(),
        policy_url: "https://example.com/privacy".into(),
        policy_version: "2026-01".into(),
        language: "en".into(),
        at: T0 - 100,
    });
    s.text("Hello again");
    s.tap("sales");
    assert_eq!(s.asking(), Some("description"), "country known");
    let job = assign(&s.text("Need a quote")).clone();
    assert_eq!(job.fields["customer_id"], "C123456");
    assert_eq!(job.answers["description"], "Need a quote");
}

// ------------------------------------------------------------------ web form submissions

/// A web visitor: contact key `V.{id}` as the user id, no WhatsApp number.
fn visitor() -> ContactRef {
    ContactRef {
        user_id: Some("V.visitor0123456789ab".into()),
        wa_id: None,
        profile_name: Some("Ana López".into()),
        username: None,
    }
}

fn visitor_state() -> ContactState {
    ContactState {
        phone_number_id: "web".into(),
        key: visitor().key().unwrap(),
        ..Default::default()
    }
}

/// The default survey's form answered in `lang`, through the edge's own check, submitted at
/// `at` with nonce `n`.
fn web_form(lang: &str, pairs: &[(&str, &str)], n: u32, at: i64) -> WebFormSubmission {
    let s = survey();
    let answers: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 9, 21).unwrap();
    let sub = crate::survey::web::submit(&s, lang, today, &answers).unwrap();
    WebFormSubmission {
        phone_number_id: "web".into(),
        contact: visitor(),
        submission_id: format!("webform:visitor0123456789ab:{n}"),
        timestamp: at,
        survey_id: sub.survey_id,
        survey_version: sub.survey_version,
        language: sub.language,
        answers: sub.answers,
        fields: sub.fields,
        vars: sub.vars,
        consent: sub.consent.map(|c| c.record(at)),
    }
}

const FORM: &[(&str, &str)] = &[
    ("language", "en"),
    ("consent", "yes"),
    ("name", "Ana López"),
    ("email", "Ana@Example.COM"),
    ("inquiry", "after_sales"),
    ("order_id", "1234567"),
    ("country", "ES"),
    ("description", "Where is my order?"),
];

fn apply_form(
    contact: ContactState,
    conv: Option<Conversation>,
    form: &WebFormSubmission,
    now: i64,
) -> Option<Outcome> {
    on_web_form(contact, conv, form, &survey(), now * 1000)
}

#[test]
fn a_web_form_completes_the_survey_in_one_step() {
    let s = survey();
    let form = web_form("en", FORM, 1, T0);
    let out = apply_form(visitor_state(), None, &form, T0).unwrap();
    assert_eq!(out.action, Action::Completed);

    // The contact: identity from the form, fields, consent, one conversation.
    let c = &out.contact;
    assert_eq!(c.identity.profile_name.as_deref(), Some("Ana López"));
    assert_eq!(c.identity.user_id.as_deref(), Some("V.visitor0123456789ab"));
    assert_eq!(c.identity.wa_id, None);
    assert_eq!(c.fields, form.fields);
    assert_eq!(c.fields["email"], "Ana@example.com");
    assert_eq!(c.consent, form.consent);
    assert!(c.consent.as_ref().is_some_and(|r| r.accepted && r.at == T0));
    assert_eq!((c.conversations, c.opted_out), (1, false));

    // The conversation: handed off as a completed survey, with the form's answers.
    let conv = out.conversation.as_ref().unwrap();
    assert_eq!(
        conv.id,
        conversation_id("web", &visitor().key().unwrap(), &form.submission_id)
    );
    assert_eq!(conv.status, Status::HandedOff);
    assert_eq!(conv.handoff, Some(HandoffReason::Completed));
    assert_eq!(conv.question, None);
    assert_eq!(conv.answers, form.answers);
    assert_eq!(conv.vars, form.vars);
    assert_eq!(conv.vars["order_id"], "1234567");
    assert_eq!(
        (conv.survey_id.as_str(), conv.survey_version),
        (s.id.as_str(), s.version)
    );
    assert_eq!(conv.language, "en");
    assert_eq!(
        (conv.started_at, conv.updated_at, conv.last_inbound_at),
        (T0, T0, T0)
    );
    assert_eq!(
        (conv.closed_at, conv.attempts, conv.invalid_answers),
        (None, 0, 0)
    );
    assert_eq!(conv.step, 1);
    assert_eq!(reminder_due(conv, &s), None, "nothing to remind of");

    // The transcript: each answer in survey order, then the completion text.
    let t = &out.effects.transcript;
    let answered: Vec<(&str, &str)> = t
        .iter()
        .filter_map(|e| match &e.body {
            Body::Answer { question, value } => Some((question.as_str(), value.as_str())),
            _ => None,
        })
        .collect();
    let in_order: Vec<(&str, &str)> = s
        .questions
        .iter()
        .filter_map(|q| {
            form.answers
                .get(&q.key)
                .map(|v| (q.key.as_str(), v.as_str()))
        })
        .collect();
    assert_eq!(answered, in_order);
    assert_eq!(answered.len(), FORM.len());
    assert!(t[..answered.len()]
        .iter()
        .all(|e| e.author == Author::System && e.status.is_none() && e.at == T0 * 1000));
    let ids: Vec<&str> = t.iter().map(|e| e.id.as_str()).collect();
    let expected: Vec<String> = (0..t.len() as u32)
        .map(|n| transcript::engine_entry_id(T0 * 1000, n))
        .collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(conv.transcript_seq, t.len() as u32);
    let last = t.last().unwrap();
    assert_eq!(last.author, Author::Bot);
    let completion = "Thank you, Ana! An agent will be with you shortly.";
    assert_eq!(
        last.body,
        Body::Text {
            text: completion.into()
        }
    );
    assert_eq!(last.status, Some(transcript::DeliveryStatus::Pending));

    // The completion text to the visitor (the sender delivers web ones over the WebSocket).
    let e = &out.effects;
    assert_eq!(e.read, None, "no message to mark read");
    assert_eq!(e.messages.len(), 1);
    let m = &e.messages[0];
    assert_eq!(m.phone_number_id, "web");
    assert_eq!(m.recipient, Recipient::from(&visitor()));
    assert_eq!(m.dedup_id, format!("{}:1:0", conv.id));
    assert_eq!(m.conversation_id.as_deref(), Some(conv.id.as_str()));
    assert_eq!(m.last_inbound_at, Some(T0));
    assert_eq!(
        m.body,
        OutboundBody::Text {
            body: completion.into(),
            preview_url: false
        }
    );
    assert_eq!(
        m.transcript.as_ref().map(|r| r.entry_id.as_str()),
        Some(last.id.as_str())
    );

    // The hand-off, exactly as on completion.
    let Some(AssignmentJob::Assign(job)) = &e.job else {
        panic!("no assign job: {:?}", e.job);
    };
    assert_eq!(job.job_id, format!("{}:assign:1", conv.id));
    assert_eq!(job.phone_number_id, "web");
    assert_eq!(job.contact, out.contact.identity);
    assert_eq!(job.conversation_id, conv.id);
    assert_eq!(job.reason, HandoffReason::Completed);
    assert_eq!(job.answers, form.answers);
    assert_eq!(job.fields, out.contact.fields);
    assert_eq!(job.vars, form.vars);
    assert_eq!(job.language, "en");
    assert_eq!((job.last_inbound_at, job.requested_at), (T0, T0));
    assert!(!job.supersedes);
}

#[test]
fn a_web_form_is_applied_as_the_same_replies_on_whatsapp_would_be() {
    // The WhatsApp engine through the same answers, by a contact without a phone number.
    let who = ContactRef {
        user_id: Some("ES.8812345".into()),
        wa_id: None,
        profile_name: Some("Ana López".into()),
        username: None,
    };
    let mut sim = Sim::new(who);
    let mut job = None;
    let replies: BTreeMap<&str, &str> = FORM.iter().copied().collect();
    let mut out = sim.text("hi");
    for _ in 0..20 {
        let Some(key) = sim.conv.as_ref().and_then(|c| c.question.clone()) else {
            break;
        };
        let q = sim.survey.question(&key).unwrap().clone();
        let content = match (&q.kind, replies.get(key.as_str())) {
            (_, None) => MessageContent::Text {
                body: "skip".into(),
            },
            (
                QuestionKind::Choice { .. } | QuestionKind::YesNo | QuestionKind::Consent { .. },
                Some(v),
            ) => MessageContent::ButtonReply {
                id: (*v).into(),
                title: (*v).into(),
            },
            (_, Some(v)) => MessageContent::Text { body: (*v).into() },
        };
        out = sim.send(content);
        job = out.effects.job.clone().or(job);
    }
    let Some(AssignmentJob::Assign(wa)) = job else {
        panic!("the engine did not complete: {:?}", sim.conv);
    };
    let wa_conv = sim.conv.clone().unwrap();

    let form = web_form("en", FORM, 1, sim.now);
    let web = apply_form(visitor_state(), None, &form, sim.now).unwrap();
    let Some(AssignmentJob::Assign(w)) = &web.effects.job else {
        panic!("no job");
    };
    let conv = web.conversation.as_ref().unwrap();
    assert_eq!(
        (&w.answers, &w.fields, &w.vars, &w.language, w.reason),
        (&wa.answers, &wa.fields, &wa.vars, &wa.language, wa.reason)
    );
    assert_eq!(
        (conv.status, conv.handoff, &conv.answers, &conv.vars),
        (
            wa_conv.status,
            wa_conv.handoff,
            &wa_conv.answers,
            &wa_conv.vars
        )
    );
    let mut wa_consent = sim.contact.consent.clone().unwrap();
    wa_consent.at = sim.now;
    assert_eq!(web.contact.consent, Some(wa_consent));
    // The same completion text as the WhatsApp contact's last message.
    assert_eq!(
        web.effects.messages.last().map(|m| &m.body),
        out.effects.messages.last().map(|m| &m.body)
    );
}

#[test]
fn a_second_web_form_while_a_conversation_is_open_changes_nothing() {
    let form = web_form("en", FORM, 1, T0);
    let first = apply_form(visitor_state(), None, &form, T0).unwrap();
    let again = web_form("en", FORM, 2, T0 + 60);
    // Handed off (waiting for or with an agent), the same submission or another one.
    for f in [&form, &again] {
        let out = apply_form(
            first.contact.clone(),
            first.conversation.clone(),
            f,
            T0 + 60,
        );
        assert_eq!(out, None);
    }
    // Still surveying (the visitor wrote before submitting): also open.
    let mut surveying = first.conversation.clone().unwrap();
    surveying.status = Status::Surveying;
    surveying.handoff = None;
    assert_eq!(
        apply_form(first.contact.clone(), Some(surveying), &again, T0 + 60),
        None
    );
}

#[test]
fn a_web_form_after_a_close_starts_a_new_conversation() {
    let form = web_form("en", FORM, 1, T0);
    let first = apply_form(visitor_state(), None, &form, T0).unwrap();
    let old = first.conversation.clone().unwrap();
    // Closed by an agent (as loaded: status closed), by the engine, or handed off with a
    // `closed_at` the store read; and an opted-out one.
    let mut closed = old.clone();
    closed.status = Status::Closed;
    closed.closed_at = Some(T0 + 30);
    let mut closed_at_only = old.clone();
    closed_at_only.closed_at = Some(T0 + 30);
    let mut opted_out = old.clone();
    opted_out.status = Status::OptedOut;
    opted_out.closed_at = Some(T0 + 30);
    let next = web_form(
        "es",
        &[
            ("language", "es"),
            ("consent", "yes"),
            ("name", "Ana"),
            ("inquiry", "sales"),
            ("country", "ES"),
            ("description", "Una pregunta"),
        ],
        2,
        T0 + 60,
    );
    for prev in [closed, closed_at_only, opted_out] {
        let mut contact = first.contact.clone();
        contact.opted_out = prev.status == Status::OptedOut;
        let out = apply_form(contact, Some(prev.clone()), &next, T0 + 60).unwrap();
        let conv = out.conversation.as_ref().unwrap();
        assert_ne!(conv.id, old.id, "{:?}", prev.status);
        assert_eq!(conv.status, Status::HandedOff);
        assert_eq!(conv.answers, next.answers, "only the new answers");
        assert_eq!(conv.language, "es");
        assert_eq!(
            (conv.started_at, conv.step, conv.transcript_seq),
            (T0 + 60, 1, 7)
        );
        assert_eq!(out.contact.conversations, 2);
        assert!(
            !out.contact.opted_out,
            "the form is the visitor asking for a chat"
        );
        // Fields merge: the email of the first form stays, the name is the new one.
        assert_eq!(out.contact.fields["email"], "Ana@example.com");
        assert_eq!(out.contact.fields["name"], "Ana");
        assert_eq!(
            out.effects.messages[0].body,
            OutboundBody::Text {
                body: "¡Gracias, Ana! Un agente te atenderá en breve.".into(),
                preview_url: false
            }
        );
        let Some(AssignmentJob::Assign(job)) = &out.effects.job else {
            panic!("no job");
        };
        assert_eq!(
            (job.reason, job.language.as_str()),
            (HandoffReason::Completed, "es")
        );
        assert_eq!(job.conversation_id, conv.id);
    }
}

#[test]
fn a_web_form_is_deterministic_per_submission() {
    let form = web_form("en", FORM, 1, T0);
    let a = apply_form(visitor_state(), None, &form, T0);
    assert_eq!(a, apply_form(visitor_state(), None, &form, T0));
    let other = apply_form(visitor_state(), None, &web_form("en", FORM, 2, T0), T0).unwrap();
    assert_ne!(
        a.unwrap().conversation.unwrap().id,
        other.conversation.unwrap().id
    );
}

#[test]
fn a_web_form_keeps_what_it_does_not_say_and_clamps_its_time() {
    // A known contact: their consent and profile name stay when the form has none.
    let mut known = visitor_state();
    let earlier = ConsentRecord {
        accepted: true,
        text: "ok".into(),
        policy_url: "https://example.com/p".into(),
        policy_version: "2024-01".into(),
        language: "en".into(),
        at: T0 - 100,
    };
    known.consent = Some(earlier.clone());
    known.identity.profile_name = Some("Ana".into());
    known.fields.insert("customer_id".into(), "c1".into());
    let mut form = web_form("en", FORM, 1, T0 + 3600);
    form.consent = None;
    form.contact.profile_name = Some("  ".into());
    let out = apply_form(known, None, &form, T0).unwrap();
    assert_eq!(out.contact.consent, Some(earlier));
    assert_eq!(out.contact.identity.profile_name.as_deref(), Some("Ana"));
    assert_eq!(out.contact.fields["customer_id"], "c1");
    // Submitted "in the future" by a clock ahead of ours: the window opens at `now`.
    let conv = out.conversation.unwrap();
    assert_eq!(conv.last_inbound_at, T0);
    let Some(AssignmentJob::Assign(job)) = out.effects.job else {
        panic!("no job");
    };
    assert_eq!(job.last_inbound_at, T0);
}

#[test]
fn a_web_form_in_a_language_the_survey_lacks_runs_in_its_default() {
    let mut form = web_form("en", FORM, 1, T0);
    form.language = "xx".into();
    let out = apply_form(visitor_state(), None, &form, T0).unwrap();
    assert_eq!(
        out.conversation.unwrap().language,
        survey().default_language
    );
}

#[test]
fn answers_naming_no_question_are_kept_and_written_last() {
    let mut form = web_form("en", FORM, 1, T0);
    form.answers.insert("zz_extra".into(), "z".into());
    form.answers.insert("aa_extra".into(), "a".into());
    let out = apply_form(visitor_state(), None, &form, T0).unwrap();
    let keys: Vec<&str> = out
        .effects
        .transcript
        .iter()
        .filter_map(|e| match &e.body {
            Body::Answer { question, .. } => Some(question.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(keys[keys.len() - 2..], ["aa_extra", "zz_extra"]);
    assert_eq!(keys.len(), FORM.len() + 2);
    assert_eq!(out.conversation.unwrap().answers, form.answers);
}

#[test]
fn a_web_form_from_an_empty_submission_still_hands_off() {
    // Nothing answered (a survey whose questions are all optional or hidden): the hand-off
    // alone, with no answer lines.
    let mut form = web_form("en", FORM, 1, T0);
    form.answers.clear();
    form.fields.clear();
    form.vars.clear();
    form.consent = None;
    let out = apply_form(visitor_state(), None, &form, T0).unwrap();
    assert_eq!(out.effects.transcript.len(), 1);
    assert!(matches!(out.effects.job, Some(AssignmentJob::Assign(_))));
    assert_eq!(out.effects.messages.len(), 1);
}
