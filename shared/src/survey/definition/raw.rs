//! The YAML shape of a definition as serde reads it (`deny_unknown_fields`: a typo is an error
//! with a line number). Only `super::validate` turns it into the model.

use serde::Deserialize;

use super::model::{ChoiceOption, Condition, Fallback, Keywords, SurveyTexts, Timeouts};
use super::Texts;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSurvey {
    pub(super) id: String,
    pub(super) languages: Vec<String>,
    pub(super) default_language: String,
    #[serde(default = "default_reopen_window")]
    pub(super) reopen_window_minutes: u32,
    #[serde(default)]
    pub(super) timeouts: Timeouts,
    pub(super) texts: SurveyTexts,
    #[serde(default)]
    pub(super) keywords: Keywords,
    pub(super) questions: Vec<RawQuestion>,
    #[serde(default)]
    pub(super) web: Option<RawWeb>,
}

/// The top-level `web:` section (the web pre-chat form's own texts).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    #[serde(default)]
    pub(super) title: Option<Texts>,
    #[serde(default)]
    pub(super) description: Option<Texts>,
    #[serde(default)]
    pub(super) start_button: Option<Texts>,
}

/// A question's `web:` settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuestionWeb {
    #[serde(default = "yes")]
    pub(super) show: bool,
    #[serde(default)]
    pub(super) placeholder: Option<Texts>,
}

fn default_reopen_window() -> u32 {
    24 * 60
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawType {
    Text,
    Choice,
    Email,
    Phone,
    Number,
    Date,
    YesNo,
    Consent,
    Pattern,
    Country,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuestion {
    pub(super) key: String,
    #[serde(rename = "type")]
    pub(super) kind: RawType,
    pub(super) prompt: Texts,
    #[serde(default)]
    pub(super) label: Option<Texts>,
    #[serde(default)]
    pub(super) retry: Option<Texts>,
    #[serde(default = "yes")]
    pub(super) required: bool,
    #[serde(default)]
    pub(super) when: Option<Condition>,
    #[serde(default)]
    pub(super) ask_if_missing: bool,
    #[serde(default)]
    pub(super) save_to: Option<String>,
    #[serde(default = "default_attempts")]
    pub(super) max_attempts: u32,
    #[serde(default)]
    pub(super) fallback: Fallback,
    // type-specific settings
    #[serde(default)]
    pub(super) min_length: Option<usize>,
    #[serde(default)]
    pub(super) max_length: Option<usize>,
    #[serde(default)]
    pub(super) options: Option<Vec<ChoiceOption>>,
    #[serde(default)]
    pub(super) min: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    pub(super) max: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    pub(super) integer: Option<bool>,
    #[serde(default)]
    pub(super) policy_url: Option<String>,
    #[serde(default)]
    pub(super) policy_version: Option<String>,
    #[serde(default)]
    pub(super) pattern: Option<String>,
    #[serde(default)]
    pub(super) web: Option<RawQuestionWeb>,
}

fn yes() -> bool {
    true
}
fn default_attempts() -> u32 {
    3
}
