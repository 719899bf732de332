//! The survey definition: the YAML a business writes, parsed and validated into a [`Survey`].
//!
//! Parsing is strict (`deny_unknown_fields`: a typo is an error with a line number, not a
//! silently ignored setting). Validation then checks what the YAML grammar cannot: duplicate
//! keys, `when` referring to unknown or later questions, WhatsApp's interactive limits, missing
//! translations, bad regexes. Every problem is reported at once, each with its path and, where
//! the source allows, its line. A [`Survey`] that exists has passed all of it.
//!
//! The module is split by concern; callers use the re-exports here (`survey::definition::Survey`):
//! - [`model`]: the validated survey ([`Survey`], [`Question`], [`QuestionKind`], ...), what the
//!   engine runs on;
//! - `raw`: the YAML shape serde reads (private: only validation turns it into the model);
//! - `validate`: [`Survey::parse`], every check, and the [`DefinitionError`]s it reports.

use std::collections::BTreeMap;

mod model;
mod raw;
mod validate;

pub use model::*;
pub use validate::{DefinitionError, DefinitionErrors};

/// A text in every language of the survey: language code -> text.
pub type Texts = BTreeMap<String, String>;

/// WhatsApp limits the definition is checked against (the sender checks them again).
pub mod limits {
    pub const BUTTONS: usize = 3;
    pub const BUTTON_TITLE: usize = 20;
    pub const LIST_ROWS: usize = 10;
    pub const ROW_TITLE: usize = 24;
    pub const ROW_DESCRIPTION: usize = 72;
    pub const LIST_BUTTON: usize = 20;
    pub const INTERACTIVE_BODY: usize = 1024;
    pub const TEXT_BODY: usize = 4096;
    pub const ROW_ID: usize = 200;
    /// Beyond this a numbered text list stops being usable on a phone.
    pub const NUMBERED_OPTIONS: usize = 50;
}

/// The shipped default survey (`shared/surveys/default.yaml`), used until one is published.
pub const DEFAULT_SURVEY_YAML: &str = include_str!("../../../surveys/default.yaml");
