//! The validated survey: what [`Survey::parse`] returns and the engine runs on. Every value
//! here has passed validation (`super::validate`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use super::Texts;

/// A validated survey definition.
#[derive(Debug, Clone)]
pub struct Survey {
    pub id: String,
    /// Version it was published as (0 = the shipped default, not yet published).
    pub version: u32,
    pub languages: Vec<String>,
    pub default_language: String,
    /// A closed conversation reopens when the contact writes within this window; after it a
    /// new conversation (and survey) starts.
    pub reopen_window_minutes: u32,
    pub timeouts: Timeouts,
    pub texts: SurveyTexts,
    pub keywords: Keywords,
    pub questions: Vec<Question>,
    /// The web pre-chat form's texts (`web:`; each absent one has a default in
    /// [`crate::survey::web`]).
    pub web: WebTexts,
}

/// The top-level `web:` section: texts of the web pre-chat form, each in every language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebTexts {
    pub title: Option<Texts>,
    pub description: Option<Texts>,
    pub start_button: Option<Texts>,
}

/// A question's `web:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionWeb {
    /// `false` leaves the question out of the web form (it is only asked on WhatsApp); such a
    /// question cannot be required, or the form could never be submitted.
    pub show: bool,
    /// The hint shown inside an empty input.
    pub placeholder: Option<Texts>,
}

impl Default for QuestionWeb {
    fn default() -> Self {
        QuestionWeb {
            show: true,
            placeholder: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Send `texts.reminder` after this much silence during the survey.
    #[serde(default)]
    pub reminder_after_minutes: Option<u32>,
    /// After this much silence the survey expires; the next message then follows `on_expiry`.
    #[serde(default)]
    pub expire_after_minutes: Option<u32>,
    #[serde(default)]
    pub on_expiry: OnExpiry,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// Start the survey over (answers of the expired run are dropped).
    #[default]
    Restart,
    /// Welcome the contact back and ask the pending question again.
    Resume,
}

/// The fixed texts of a survey, each in every language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyTexts {
    /// First message to a contact we have never talked to.
    pub greeting_new: Texts,
    /// First message of a new conversation with a known contact.
    pub greeting_returning: Texts,
    /// After the last question; an agent follows.
    pub completion: Texts,
    /// When handing off before the end (keyword or fallback).
    pub handoff: Texts,
    /// Ending politely after too many invalid answers (fallback `end`).
    pub ended: Texts,
    /// Confirmation of the stop keyword.
    pub opted_out: Texts,
    /// A text question answered with media, a location, a reaction...
    pub text_only: Texts,
    /// Default retry text for questions without their own.
    pub invalid: Texts,
    /// Label of the button that opens a choice list (at most 20 characters).
    pub list_button: Texts,
    /// Sent after `timeouts.reminder_after_minutes` of silence.
    #[serde(default)]
    pub reminder: Option<Texts>,
    /// Sent when an expired survey resumes (`on_expiry: resume`).
    #[serde(default)]
    pub welcome_back: Option<Texts>,
}

/// Words that act at any point, per language (matched case- and accent-insensitively).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keywords {
    #[serde(default)]
    pub restart: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub human: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub stop: BTreeMap<String, Vec<String>>,
    /// Skips an optional question.
    #[serde(default)]
    pub skip: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Question {
    pub key: String,
    pub kind: QuestionKind,
    pub prompt: Texts,
    /// A short name for the question where answers are listed (agent API, inbox, exports),
    /// localised like `prompt`; [`Survey::label`] falls back to the key.
    pub label: Option<Texts>,
    /// Sent (instead of the survey's `invalid` text) when an answer does not validate.
    pub retry: Option<Texts>,
    pub required: bool,
    pub when: Option<Condition>,
    /// Skip the question when the target contact field is already known.
    pub ask_if_missing: bool,
    pub save_to: Target,
    pub max_attempts: u32,
    pub fallback: Fallback,
    /// How the web pre-chat form shows the question.
    pub web: QuestionWeb,
}

#[derive(Debug, Clone)]
pub enum QuestionKind {
    Text {
        min_length: usize,
        max_length: usize,
    },
    Choice {
        options: Vec<ChoiceOption>,
    },
    Email,
    Phone,
    Number {
        min: Option<f64>,
        max: Option<f64>,
        integer: bool,
    },
    Date {
        min: Option<DateBound>,
        max: Option<DateBound>,
    },
    YesNo,
    Consent {
        policy_url: String,
        policy_version: String,
    },
    Pattern {
        regex: regex::Regex,
    },
    Country,
}

impl QuestionKind {
    pub fn name(&self) -> &'static str {
        match self {
            QuestionKind::Text { .. } => "text",
            QuestionKind::Choice { .. } => "choice",
            QuestionKind::Email => "email",
            QuestionKind::Phone => "phone",
            QuestionKind::Number { .. } => "number",
            QuestionKind::Date { .. } => "date",
            QuestionKind::YesNo => "yes_no",
            QuestionKind::Consent { .. } => "consent",
            QuestionKind::Pattern { .. } => "pattern",
            QuestionKind::Country => "country",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    pub id: String,
    pub label: Texts,
    #[serde(default)]
    pub description: Option<Texts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    Today,
    Fixed(NaiveDate),
}

impl DateBound {
    pub fn resolve(self, today: NaiveDate) -> NaiveDate {
        match self {
            DateBound::Today => today,
            DateBound::Fixed(d) => d,
        }
    }
}

/// `when`: ask only if an earlier answer is one of `values` (option ids, `yes`/`no`, text).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub key: String,
    #[serde(default, rename = "in")]
    pub values: Vec<String>,
    #[serde(default)]
    pub equals: Option<String>,
}

impl Condition {
    /// Whether the earlier answers satisfy the condition (an unanswered key never does).
    pub fn matches(&self, answers: &BTreeMap<String, String>) -> bool {
        match answers.get(&self.key) {
            Some(v) => self.values.iter().chain(self.equals.iter()).any(|x| x == v),
            None => false,
        }
    }
}

/// Where an answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A contact field, kept across conversations (`contact.email`).
    Contact(String),
    /// A conversation variable (`var.order_id`).
    Var(String),
}

impl Target {
    pub fn contact_field(&self) -> Option<&str> {
        match self {
            Target::Contact(f) => Some(f),
            Target::Var(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Leave the question unanswered and go on.
    Skip,
    /// Hand off to an agent now, with the answers so far.
    #[default]
    Handoff,
    /// End the conversation politely.
    End,
}

impl Survey {
    pub fn question(&self, key: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.key == key)
    }

    pub fn position(&self, key: &str) -> Option<usize> {
        self.questions.iter().position(|q| q.key == key)
    }

    /// `texts` in `lang`, else the default language (validation guarantees both exist).
    /// A question's label in `lang` (else the default language, else any), or its key when
    /// it has none.
    pub fn label<'a>(&self, q: &'a Question, lang: &str) -> &'a str {
        match &q.label {
            Some(l) => self.pick(l, lang),
            None => &q.key,
        }
    }

    pub fn pick<'a>(&self, texts: &'a Texts, lang: &str) -> &'a str {
        texts
            .get(lang)
            .or_else(|| texts.get(&self.default_language))
            .or_else(|| texts.values().next())
            .map(String::as_str)
            .unwrap_or("")
    }
}
