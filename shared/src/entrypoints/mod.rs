//! Lambda entrypoints: each turns its event into domain calls and the result into a response.
//! The binaries in `functions/` only build clients at init and call into these.

pub mod assigner;
pub mod ingest;
pub mod sender;
pub mod sqs;
pub mod survey_engine;
pub mod verify;

/// Why a function could not start (reported by the Lambda runtime as an init error).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Notify(#[from] crate::routing::notify::NotifyError),
    #[error(transparent)]
    Graph(#[from] crate::whatsapp::graph_client::ClientInitError),
    #[error("the shipped default survey is invalid: {0}")]
    DefaultSurvey(String),
}
