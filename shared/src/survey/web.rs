//! The web pre-chat form, built from the very survey definition the WhatsApp channel runs, and
//! its server-side check. Pure: no AWS types, no clock (the caller passes `today`).
//!
//! - [`form`]: the JSON the widget renders (one field per shown question, in order, labelled in
//!   the visitor's language, with the `when` conditions in a form the browser can evaluate).
//! - [`submit`]: the server's decision on what the browser sent. It runs the WhatsApp channel's
//!   own validators ([`crate::survey::answer`]) and normalises exactly as they do (E.164 phone,
//!   ISO date, option id, country code), so a web answer and a WhatsApp answer to the same
//!   question are stored alike; the browser's checks are only for instant feedback.
//!
//! Choices, yes/no and consent answers are the ids the widget offers (`yes`/`no` as on the
//! WhatsApp buttons); they go through the validators as a tapped button would.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use super::answer::{self, AnswerContext, Rejection};
use super::ask::yes_no_labels;
use super::definition::{Condition, Question, QuestionKind, Survey, Target, Texts};
use super::engine::ConsentRecord;
use super::locale;
use super::text::render;
use crate::whatsapp::event::MessageContent;

/// The longest answer accepted, in bytes: beyond it a value is `too_long` without running a
/// validator (no question of ours needs more; a text question's own `max_length` still applies).
pub const MAX_ANSWER_BYTES: usize = 4096;
/// A text question allowing more characters than this is shown as a textarea.
pub const MULTILINE_ABOVE: usize = 200;

// ------------------------------------------------------------------ the form

/// The pre-chat form as the widget renders it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebForm {
    pub survey_id: String,
    pub version: u32,
    /// The language the texts are in: the one asked for when the survey has it, else the
    /// survey's default.
    pub language: String,
    /// Every language of the survey (the widget's language switch).
    pub languages: Vec<String>,
    pub title: String,
    /// `null` when the survey gives none.
    pub description: Option<String>,
    pub start_button: String,
    pub fields: Vec<Field>,
}

/// One question as a form field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// The question's key: the name its answer is submitted under.
    pub key: String,
    #[serde(flatten)]
    pub kind: FieldKind,
    /// The question's short label (its key without one).
    pub label: String,
    /// The full-sentence prompt, placeholders rendered empty (the form knows nobody yet).
    pub prompt: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// Shown when the answer is rejected (the question's `retry`, else the survey's `invalid`).
    pub retry: String,
    /// Show the field only when this holds; absent: always shown (the server still applies a
    /// condition the browser cannot evaluate, see [`When`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
}

/// A field's kind and what the widget needs to render and pre-check it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FieldKind {
    /// Lengths in characters (Unicode scalar values) after trimming.
    Text {
        min_length: usize,
        max_length: usize,
        multiline: bool,
    },
    Email,
    /// Submitted with its country code (`+34 612 345 678` or `0034...`): a web visitor has no
    /// WhatsApp number to take a national number's code from. `calling_codes` feeds the picker.
    Phone {
        calling_codes: Vec<CallingCode>,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        integer: bool,
    },
    /// Bounds as ISO dates, resolved against the day the form is served; submit ISO dates.
    Date {
        min: Option<String>,
        max: Option<String>,
    },
    Choice {
        options: Vec<FieldOption>,
    },
    /// Submit the id of one option (`yes` or `no`).
    YesNo {
        options: Vec<FieldOption>,
    },
    /// An unticked checkbox: submit `yes` when ticked, `no` (or nothing) when not.
    Consent {
        text: String,
        policy_url: String,
        policy_version: String,
        options: Vec<FieldOption>,
    },
    /// Checked on the server only: regex dialects differ between Rust and browsers.
    Pattern,
    /// Submit an ISO 3166-1 alpha-2 code from `countries` (a name is accepted too).
    Country {
        countries: Vec<&'static str>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldOption {
    pub id: String,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallingCode {
    /// ISO 3166-1 alpha-2.
    pub country: &'static str,
    /// Digits, without `+`.
    pub code: &'static str,
}

/// A `when` the browser evaluates against the current value of field `key` (a field hidden by
/// its own `when` counts as unanswered). Only conditions on choice, yes/no and consent
/// questions are sent: their submitted value is the very id the condition lists. A condition on
/// a free-text answer compares the normalised answer (an E.164 phone, a lower-cased domain),
/// which the browser cannot reproduce, so such a field is always shown and the server decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum When {
    Equals { key: String, equals: String },
    In { key: String, r#in: Vec<String> },
}

/// The form of `survey` in `lang` (else the survey's default language), `today` resolving
/// relative date bounds.
pub fn form(survey: &Survey, lang: &str, today: NaiveDate) -> WebForm {
    let lang = form_language(survey, lang);
    let web = &survey.web;
    let or_default = |texts: &Option<Texts>, default: fn(&str) -> &'static str| match texts {
        Some(t) => survey.pick(t, lang).to_owned(),
        None => default(lang).to_owned(),
    };
    WebForm {
        survey_id: survey.id.clone(),
        version: survey.version,
        language: lang.to_owned(),
        languages: survey.languages.clone(),
        title: or_default(&web.title, default_title),
        description: web
            .description
            .as_ref()
            .map(|d| survey.pick(d, lang).to_owned()),
        start_button: or_default(&web.start_button, default_start_button),
        fields: survey
            .questions
            .iter()
            .filter(|q| q.web.show)
            .map(|q| field(survey, q, lang, today))
            .collect(),
    }
}

/// `lang` when the survey speaks it, else its default language.
fn form_language<'a>(survey: &'a Survey, lang: &'a str) -> &'a str {
    if survey.languages.iter().any(|l| l == lang) {
        lang
    } else {
        &survey.default_language
    }
}

/// The title of a survey without `web.title`.
fn default_title(lang: &str) -> &'static str {
    match lang {
        "es" => "Habla con nosotros",
        "pt" => "Fale connosco",
        "fr" => "Discutez avec nous",
        "de" => "Chatten Sie mit uns",
        _ => "Chat with us",
    }
}

/// The start button of a survey without `web.start_button`.
fn default_start_button(lang: &str) -> &'static str {
    match lang {
        "es" => "Empezar chat",
        "pt" => "Iniciar conversa",
        "fr" => "Démarrer le chat",
        "de" => "Chat starten",
        _ => "Start chat",
    }
}

fn field(survey: &Survey, q: &Question, lang: &str, today: NaiveDate) -> Field {
    let yes_no = |consent: bool| {
        let (yes, no) = yes_no_labels(lang, consent);
        vec![
            FieldOption {
                id: "yes".into(),
                label: yes.into(),
                description: None,
            },
            FieldOption {
                id: "no".into(),
                label: no.into(),
                description: None,
            },
        ]
    };
    let kind = match &q.kind {
        QuestionKind::Text {
            min_length,
            max_length,
        } => FieldKind::Text {
            min_length: *min_length,
            max_length: *max_length,
            multiline: *max_length > MULTILINE_ABOVE,
        },
        QuestionKind::Email => FieldKind::Email,
        QuestionKind::Phone => FieldKind::Phone {
            calling_codes: locale::countries()
                .map(|(country, code)| CallingCode { country, code })
                .collect(),
        },
        QuestionKind::Number { min, max, integer } => FieldKind::Number {
            min: *min,
            max: *max,
            integer: *integer,
        },
        QuestionKind::Date { min, max } => {
            let iso = |b: Option<super::definition::DateBound>| {
                b.map(|b| b.resolve(today).format("%Y-%m-%d").to_string())
            };
            FieldKind::Date {
                min: iso(*min),
                max: iso(*max),
            }
        }
        QuestionKind::Choice { options } => FieldKind::Choice {
            options: options
                .iter()
                .map(|o| FieldOption {
                    id: o.id.clone(),
                    label: survey.pick(&o.label, lang).to_owned(),
                    description: o
                        .description
                        .as_ref()
                        .map(|d| survey.pick(d, lang).to_owned()),
                })
                .collect(),
        },
        QuestionKind::YesNo => FieldKind::YesNo {
            options: yes_no(false),
        },
        QuestionKind::Consent {
            policy_url,
            policy_version,
        } => FieldKind::Consent {
            text: prompt(survey, q, lang),
            policy_url: policy_url.clone(),
            policy_version: policy_version.clone(),
            options: yes_no(true),
        },
        QuestionKind::Pattern { .. } => FieldKind::Pattern,
        QuestionKind::Country => {
            let mut countries: Vec<&'static str> = locale::countries().map(|c| c.0).collect();
            countries.sort_unstable();
            countries.dedup();
            FieldKind::Country { countries }
        }
    };
    Field {
        key: q.key.clone(),
        kind,
        label: survey.label(q, lang).to_owned(),
        prompt: prompt(survey, q, lang),
        required: q.required,
        placeholder: q
            .web
            .placeholder
            .as_ref()
            .map(|p| survey.pick(p, lang).to_owned()),
        retry: retry_text(survey, q, lang).to_owned(),
        when: q.when.as_ref().and_then(|w| browser_when(survey, w)),
    }
}

fn prompt(survey: &Survey, q: &Question, lang: &str) -> String {
    render(survey.pick(&q.prompt, lang), &BTreeMap::new())
}

fn retry_text<'a>(survey: &'a Survey, q: &'a Question, lang: &str) -> &'a str {
    survey.pick(q.retry.as_ref().unwrap_or(&survey.texts.invalid), lang)
}

/// `when` for the browser, when it can be evaluated there (see [`When`]).
fn browser_when(survey: &Survey, w: &Condition) -> Option<When> {
    let dep = survey.question(&w.key)?;
    if !matches!(
        dep.kind,
        QuestionKind::Choice { .. } | QuestionKind::YesNo | QuestionKind::Consent { .. }
    ) {
        return None;
    }
    let mut values: Vec<String> = Vec::new();
    for v in w.values.iter().chain(w.equals.iter()) {
        if !values.contains(v) {
            values.push(v.clone());
        }
    }
    match values.as_slice() {
        [] => None,
        [one] => Some(When::Equals {
            key: w.key.clone(),
            equals: one.clone(),
        }),
        _ => Some(When::In {
            key: w.key.clone(),
            r#in: values,
        }),
    }
}

// ------------------------------------------------------------------ the submission

/// An accepted web submission: what the engine would hold after the same answers on WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submission {
    pub survey_id: String,
    pub survey_version: u32,
    /// The conversation's language: the form's, or the survey language the visitor chose in a
    /// `save_to: contact.language` question (as the engine switches on that answer).
    pub language: String,
    /// Every answer by question key, normalised (the conversation's `answers`).
    pub answers: BTreeMap<String, String>,
    /// Answers saved to contact fields (`save_to: contact.<field>`; the contact's `fields`).
    pub fields: BTreeMap<String, String>,
    /// Answers saved as conversation variables (`save_to: var.<name>`; the conversation's `vars`).
    pub vars: BTreeMap<String, String>,
    /// The answer to the (last) consent question, accepted or declined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<WebConsent>,
}

/// A consent given on the form: the engine's [`ConsentRecord`] but for its time, which the
/// caller's clock gives ([`WebConsent::record`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebConsent {
    pub accepted: bool,
    /// The consent text as the form showed it (the prompt in the form's language).
    pub text: String,
    pub policy_url: String,
    pub policy_version: String,
    pub language: String,
}

impl WebConsent {
    /// The record to store on the contact, consented at `at` (Unix seconds).
    pub fn record(&self, at: i64) -> ConsentRecord {
        ConsentRecord {
            accepted: self.accepted,
            text: self.text.clone(),
            policy_url: self.policy_url.clone(),
            policy_version: self.policy_version.clone(),
            language: self.language.clone(),
            at,
        }
    }
}

/// Why one field was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldErrorCode {
    /// A required question that applies was left empty.
    Required,
    /// The validator refused the answer.
    Invalid,
    /// Longer than [`MAX_ANSWER_BYTES`], or than a text question's `max_length`.
    TooLong,
    /// A required consent was not accepted.
    ConsentRequired,
    /// The key names no question of the form.
    UnknownField,
}

/// One refused field, with the text to show beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub key: String,
    pub code: FieldErrorCode,
    /// The question's retry text (else the survey's `invalid` text) in the form's language.
    pub message: String,
}

/// Every refused field of a submission: questions in survey order, then unknown keys. A
/// visitor's mistake, never retryable as is (the HTTP layer answers 422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} field(s) refused:", self.0.len())?;
        for e in &self.0 {
            write!(f, " {} ({:?})", e.key, e.code)?;
        }
        Ok(())
    }
}

impl FieldErrors {
    /// Never: the same answers are refused again; the visitor has to change them.
    pub fn is_retryable(&self) -> bool {
        false
    }

    pub fn get(&self, key: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.key == key)
    }
}

/// Checks and normalises a submitted form. `answers` maps question keys to what the visitor
/// entered; an empty or blank value is no answer. Questions are taken in survey order, as the
/// engine asks them: one whose `when` does not hold on the answers accepted so far is dropped
/// (whatever was sent for it), a required one must be answered, and each answer goes through
/// the WhatsApp channel's validator. Dates are read in the form's language's order, as on
/// WhatsApp; phone numbers need their country code.
pub fn submit(
    survey: &Survey,
    lang: &str,
    today: NaiveDate,
    answers: &BTreeMap<String, String>,
) -> Result<Submission, FieldErrors> {
    let lang = form_language(survey, lang);
    let ctx = AnswerContext {
        language: lang,
        today,
        calling_code: None,
    };
    let mut out = Submission {
        survey_id: survey.id.clone(),
        survey_version: survey.version,
        language: lang.to_owned(),
        answers: BTreeMap::new(),
        fields: BTreeMap::new(),
        vars: BTreeMap::new(),
        consent: None,
    };
    let mut errors = Vec::new();
    let mut known = BTreeSet::new();
    for q in survey.questions.iter().filter(|q| q.web.show) {
        known.insert(q.key.as_str());
        let refuse = |code| FieldError {
            key: q.key.clone(),
            code,
            message: retry_text(survey, q, lang).to_owned(),
        };
        if q.when.as_ref().is_some_and(|w| !w.matches(&out.answers)) {
            continue;
        }
        let consent = matches!(q.kind, QuestionKind::Consent { .. });
        let raw = answers.get(&q.key).map(String::as_str).unwrap_or("");
        if raw.len() > MAX_ANSWER_BYTES {
            errors.push(refuse(FieldErrorCode::TooLong));
            continue;
        }
        if raw.trim().is_empty() {
            if q.required {
                errors.push(refuse(if consent {
                    FieldErrorCode::ConsentRequired
                } else {
                    FieldErrorCode::Required
                }));
            }
            continue;
        }
        let value = match answer::validate(q, &content(q, raw), &ctx) {
            Ok(accepted) => accepted.0,
            Err(Rejection::TooLong) => {
                errors.push(refuse(FieldErrorCode::TooLong));
                continue;
            }
            Err(_) => {
                errors.push(refuse(FieldErrorCode::Invalid));
                continue;
            }
        };
        if consent && value != "yes" && q.required {
            errors.push(refuse(FieldErrorCode::ConsentRequired));
            continue;
        }
        save(survey, q, lang, value, &mut out);
    }
    for key in answers.keys() {
        if !known.contains(key.as_str()) {
            errors.push(FieldError {
                key: key.chars().take(64).collect(),
                code: FieldErrorCode::UnknownField,
                message: survey.pick(&survey.texts.invalid, lang).to_owned(),
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FieldErrors(errors))
    }
}

/// The submitted value as the message the WhatsApp validator reads: the tapped button for the
/// questions answered by id, typed text for the others.
fn content(q: &Question, raw: &str) -> MessageContent {
    match q.kind {
        QuestionKind::Choice { .. } | QuestionKind::YesNo | QuestionKind::Consent { .. } => {
            MessageContent::ButtonReply {
                id: raw.trim().to_owned(),
                title: raw.to_owned(),
            }
        }
        _ => MessageContent::Text {
            body: raw.to_owned(),
        },
    }
}

/// Stores an accepted answer where the engine's `save` does.
fn save(survey: &Survey, q: &Question, lang: &str, value: String, out: &mut Submission) {
    out.answers.insert(q.key.clone(), value.clone());
    if let QuestionKind::Consent {
        policy_url,
        policy_version,
    } = &q.kind
    {
        out.consent = Some(WebConsent {
            accepted: value == "yes",
            text: prompt(survey, q, lang),
            policy_url: policy_url.clone(),
            policy_version: policy_version.clone(),
            language: lang.to_owned(),
        });
    }
    match &q.save_to {
        Target::Contact(field) => {
            if field == "language" && survey.languages.contains(&value) {
                out.language = value.clone();
            }
            out.fields.insert(field.clone(), value);
        }
        Target::Var(name) => {
            out.vars.insert(name.clone(), value);
        }
    }
}

#[cfg(test)]
#[path = "web_tests.rs"]
mod tests;
