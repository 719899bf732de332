//! How a survey question is put to the contact on WhatsApp: reply buttons for up to 3
//! options, a list for up to 10, a numbered text beyond; yes/no and consent questions as two
//! buttons labelled in the conversation's language. Pure: a question in, an [`OutboundBody`]
//! out (the sender enforces WhatsApp's remaining limits when it renders the Graph API call).

use super::definition::{Question, QuestionKind, Survey};
use crate::whatsapp::limits;
use crate::whatsapp::outbound::{ListRow, ListSection, OutboundBody, ReplyButton};

/// The message that asks `q` in `lang`, with `body` (the rendered prompt) as its text.
pub fn question_body(survey: &Survey, q: &Question, lang: &str, body: String) -> OutboundBody {
    let fit = |body: String| -> String {
        if body.chars().count() > limits::INTERACTIVE_BODY {
            body.chars().take(limits::INTERACTIVE_BODY).collect()
        } else {
            body
        }
    };
    match &q.kind {
        QuestionKind::Choice { options } if options.len() <= 3 => OutboundBody::Buttons {
            body: fit(body),
            header: None,
            footer: None,
            buttons: options
                .iter()
                .map(|o| ReplyButton {
                    id: o.id.clone(),
                    title: survey.pick(&o.label, lang).to_owned(),
                })
                .collect(),
        },
        QuestionKind::Choice { options } if options.len() <= 10 => OutboundBody::List {
            body: fit(body),
            header: None,
            footer: None,
            button: survey.pick(&survey.texts.list_button, lang).to_owned(),
            sections: vec![ListSection {
                title: None,
                rows: options
                    .iter()
                    .map(|o| ListRow {
                        id: o.id.clone(),
                        title: survey.pick(&o.label, lang).to_owned(),
                        description: o
                            .description
                            .as_ref()
                            .map(|d| survey.pick(d, lang).to_owned()),
                    })
                    .collect(),
            }],
        },
        QuestionKind::Choice { options } => {
            let mut text = body;
            text.push('\n');
            for (i, o) in options.iter().enumerate() {
                text.push_str(&format!("\n{}. {}", i + 1, survey.pick(&o.label, lang)));
            }
            OutboundBody::Text {
                body: text,
                preview_url: false,
            }
        }
        QuestionKind::YesNo | QuestionKind::Consent { .. } => {
            let (yes, no) = yes_no_labels(lang, matches!(q.kind, QuestionKind::Consent { .. }));
            OutboundBody::Buttons {
                body: fit(body),
                header: None,
                footer: None,
                buttons: vec![
                    ReplyButton {
                        id: "yes".into(),
                        title: yes.into(),
                    },
                    ReplyButton {
                        id: "no".into(),
                        title: no.into(),
                    },
                ],
            }
        }
        _ => OutboundBody::Text {
            body,
            preview_url: false,
        },
    }
}

/// The labels of a yes/no question's buttons (`consent`: of a GDPR consent question).
pub fn yes_no_labels(lang: &str, consent: bool) -> (&'static str, &'static str) {
    match (lang, consent) {
        ("es", false) => ("Sí", "No"),
        ("es", true) => ("Acepto", "No acepto"),
        ("pt", false) => ("Sim", "Não"),
        ("pt", true) => ("Aceito", "Não aceito"),
        ("fr", false) => ("Oui", "Non"),
        ("fr", true) => ("J'accepte", "Je refuse"),
        ("de", false) => ("Ja", "Nein"),
        ("de", true) => ("Ich stimme zu", "Ablehnen"),
        (_, false) => ("Yes", "No"),
        (_, true) => ("I accept", "I decline"),
    }
}
