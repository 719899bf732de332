//! Lambda entrypoints: each turns its event into domain calls and the result into a response.
//! The binaries in `functions/` only call [`init`] (logging, AWS config, secrets, the runtime
//! loop) and their entrypoint's `from_env`. [`sample_events`] makes the signed sample events
//! `events/webhook-ingest-*.json` for the ingest entrypoint (`cargo xtask events`).

pub mod agent_api;
pub mod assigner;
pub mod ingest;
pub mod init;
pub mod sample_events;
pub mod sender;
pub mod sqs;
pub mod survey_engine;
pub mod verify;

pub use init::InitError;
