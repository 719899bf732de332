//! What every function does at init, in one place, so each `functions/*/src/main.rs` is a few
//! lines: [`start`] (logging, then the AWS configuration), its entrypoint's `from_env`, and one
//! `serve_*` loop.
//!
//! It also owns the log-redaction key: [`LOG_KEY`] is an optional secret, fetched in the same
//! SSM request as a function's own secrets by [`load_secrets`] (or alone by [`load_log_key`] for
//! the functions that have none), which then keys [`telemetry::redact`] explicitly.
//! `secrets` itself only reads secrets and knows nothing of logging.

use std::future::Future;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
pub use lambda_runtime::Error;
use lambda_runtime::{service_fn, LambdaEvent};

use crate::secrets::{self, Secret, SecretError};
use crate::{aws, telemetry};

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

/// The optional secret keying [`telemetry::redact`], so log hashes of one contact match across
/// instances. Without it each process uses a random key (values stay hidden, hashes only
/// correlate per process).
pub const LOG_KEY: &str = "PRECHAT_LOG_KEY";

/// The first step of every function: installs logging, then loads the AWS configuration.
pub async fn start() -> SdkConfig {
    telemetry::init();
    aws::load_config().await
}

/// Loads a function's required and optional secrets (each list in order, as
/// [`secrets::load_parts`]) and the optional [`LOG_KEY`] with at most one SSM request, and sets
/// the redaction key when the log key is configured.
pub async fn load_secrets(
    ssm: &aws_sdk_ssm::Client,
    required: &[&str],
    optional: &[&str],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Vec<Secret>, Vec<Option<Secret>>), SecretError> {
    let mut names = optional.to_vec();
    names.push(LOG_KEY);
    let (required, mut optional) = secrets::load_parts(ssm, required, &names, lookup).await?;
    if let Some(key) = optional.pop().flatten() {
        telemetry::set_redaction_key(&key);
    }
    Ok((required, optional))
}

/// For a function without secrets of its own: loads the optional [`LOG_KEY`] from the process
/// environment and sets the redaction key.
pub async fn load_log_key(sdk: &SdkConfig) -> Result<(), SecretError> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    load_secrets(&ssm, &[], &[], crate::config::process_env).await?;
    Ok(())
}

/// Runs an SQS consumer (partial batch failures) until the runtime stops it.
pub async fn serve_sqs<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let reply = handler(event.payload);
        async move { Ok::<_, Error>(reply.await) }
    }))
    .await
}

/// Runs an API Gateway HTTP API function until the runtime stops it.
pub async fn serve_http<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(lambda_http::Request) -> Fut,
    Fut: Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    lambda_http::run(lambda_http::service_fn(|req: lambda_http::Request| {
        let response = handler(req);
        async move { Ok::<_, Error>(response.await) }
    }))
    .await
}

/// Runs a function on a typed event (the WebSocket API's authorizer and routes): its result is
/// the invocation's JSON response, its error the invocation's error (`errorMessage` = the
/// error's text, which is how a REQUEST authorizer answers 401: the text `Unauthorized`).
pub async fn serve_event<F, Fut, T, R, E>(handler: F) -> Result<(), Error>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    T: serde::de::DeserializeOwned + Send,
    R: serde::Serialize,
    E: Into<Error>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<T>| {
        let result = handler(event.payload);
        async move { result.await.map_err(Into::into) }
    }))
    .await
}

/// Runs a scheduled (EventBridge) function: its result is the invocation's JSON response, its
/// error the invocation's error.
pub async fn serve_schedule<F, Fut, R, E>(handler: F) -> Result<(), Error>
where
    F: Fn(serde_json::Value) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: serde::Serialize,
    E: Into<Error>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let result = handler(event.payload);
        async move {
            let report = result.await.map_err(Into::into)?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
