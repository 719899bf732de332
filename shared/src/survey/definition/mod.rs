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
//!
//! WhatsApp's own limits (button and row counts, title and body lengths) live in
//! [`crate::whatsapp::limits`], shared with the Graph API renderer.

use std::collections::BTreeMap;

mod model;
mod raw;
mod validate;

pub use model::*;
pub use validate::{DefinitionError, DefinitionErrors};

/// A text in every language of the survey: language code -> text.
pub type Texts = BTreeMap<String, String>;

/// The shipped default survey (`shared/surveys/default.yaml`), used until one is published.
pub const DEFAULT_SURVEY_YAML: &str = include_str!("../../../surveys/default.yaml");
