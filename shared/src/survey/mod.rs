//! The pre-chat survey: its definition (YAML), answer validation, and the pure engine.
//!
//! - [`definition`]: the YAML model, parsed and validated with precise errors; the shipped default.
//! - [`catalog`]: which published definition a conversation runs on (cached; versions immutable).
//! - [`answer`]: validation of one reply against one question (newtypes that parse on construction).
//! - [`ask`]: how a question is put on WhatsApp (buttons, list, numbered text; yes/no labels).
//! - [`text`]: reply normalisation (case, accents) and `{{variable}}` rendering.
//! - [`engine`]: the pure state machine (state, message, survey, now) -> (state, effects).
//! - [`web`]: the web pre-chat form built from the same definition, and its server-side check.
//! - [`locale`]: countries, calling codes and languages, without a network call.

pub mod answer;
pub mod ask;
pub mod catalog;
pub mod definition;
pub mod engine;
pub mod locale;
pub mod text;
pub mod web;

pub use definition::Survey;
