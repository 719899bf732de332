//! Lambda entrypoints: each turns its event into domain calls and the result into a response.
//! The binaries in `functions/` only call [`init`] (logging, AWS config, secrets, the runtime
//! loop) and their entrypoint's `from_env`.

pub mod assigner;
pub mod ingest;
pub mod init;
pub mod sender;
pub mod sqs;
pub mod survey_engine;
pub mod verify;

pub use init::InitError;
