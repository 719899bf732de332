//! Which entrypoints the local stack runs, built exactly as their Lambda `main`s build them
//! (`from_env` with the same environment variables). Wiring a new function in is one line
//! here: an HTTP route in [`build`] or an SQS consumer in [`consumers`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lambda_http::{Body, Request, Response};

use super::esm::SqsHandler;

/// An HTTP entrypoint, type-erased: `|req| Box::pin(function.handle(req))`.
pub type HttpHandler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

/// Wraps an async closure as an [`HttpHandler`].
pub fn http<F, Fut>(f: F) -> HttpHandler
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    Arc::new(move |r| Box::pin(f(r)))
}

/// An SQS consumer and the queue (template logical id) its event source mapping reads.
pub struct Consumer {
    pub function: &'static str,
    pub queue: &'static str,
    pub handler: SqsHandler,
}

/// The functions of the pipeline that exist in this build.
#[derive(Default)]
pub struct Pipeline {
    /// `POST /webhook` (webhook-ingest).
    pub webhook_post: Option<HttpHandler>,
    pub consumers: Vec<Consumer>,
}

impl Pipeline {
    /// Names of the functions running, for `/local/health`.
    pub fn functions(&self) -> Vec<&'static str> {
        let mut names = vec!["webhook-verify"];
        if self.webhook_post.is_some() {
            names.push("webhook-ingest");
        }
        names.extend(self.consumers.iter().map(|c| c.function));
        names
    }
}

/// Builds every entrypoint from the process environment (set by the local stack beforehand).
/// `GET /webhook` (webhook-verify) needs only the verify token and is served directly.
pub async fn build(sdk: &aws_config::SdkConfig) -> Result<Pipeline, String> {
    let mut pipeline = Pipeline::default();
    let ingest = Arc::new(
        prechat::entrypoints::ingest::Ingest::from_env(sdk)
            .await
            .map_err(|e| init("webhook-ingest", e))?,
    );
    pipeline.webhook_post = Some(http(move |req| {
        let f = ingest.clone();
        async move { f.handle(req).await }
    }));
    Ok(pipeline)
}

fn init(function: &str, e: impl std::fmt::Display) -> String {
    format!("{function} failed to start: {e}")
}
