//! Lambda entrypoints: each turns its event into domain calls and the result into a response.
//! The binaries in `functions/` only build clients at init and call into these.

pub mod assigner;
pub mod ingest;
pub mod sender;
pub mod sqs;
pub mod survey_engine;
pub mod verify;
