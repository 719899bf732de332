//! Which entrypoints the local stack runs, built exactly as their Lambda `main`s build them
//! (`from_env` with the same environment variables). Wiring a new function in is one line
//! here: an HTTP route in [`build`] or an SQS consumer in [`consumers`]. HTTP: webhook-ingest
//! (`POST /webhook`) and agent-api (`/api/*`); SQS: survey-engine, agent-assigner,
//! reply-sender; schedules: survey-timer and the assigner's sweep; the WebSocket API:
//! ws-authorizer and ws-connections (served by [`crate::websocket`]).

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

/// A function EventBridge invokes on a schedule.
pub struct Scheduled {
    pub function: &'static str,
    pub every: std::time::Duration,
    pub run: Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>,
}

/// The functions of the pipeline that exist in this build.
#[derive(Default)]
pub struct Pipeline {
    /// `POST /webhook` (webhook-ingest).
    pub webhook_post: Option<HttpHandler>,
    /// `/api/*` (agent-api, behind the local JWT authorizer) and `/inbox*` (agent-api, outside it).
    pub api: Option<HttpHandler>,
    /// `/widget.js` and `/webchat/*` (webchat, outside the JWT authorizer).
    pub webchat: Option<HttpHandler>,
    pub consumers: Vec<Consumer>,
    pub schedules: Vec<Scheduled>,
    /// The WebSocket API's `$connect` authorizer (ws-authorizer).
    pub ws_authorizer: Option<Arc<prechat::realtime::authorizer::WsAuthorizer>>,
    /// The WebSocket API's routes (ws-connections).
    pub ws_routes: Option<
        Arc<
            prechat::realtime::connections::WsConnections<
                prechat::store::connections::DynamoConnections,
            >,
        >,
    >,
}

impl Pipeline {
    /// Names of the functions running, for `/local/health`.
    pub fn functions(&self) -> Vec<&'static str> {
        let mut names = vec!["webhook-verify"];
        if self.webhook_post.is_some() {
            names.push("webhook-ingest");
        }
        if self.api.is_some() {
            names.push("agent-api");
        }
        if self.webchat.is_some() {
            names.push("webchat");
        }
        names.extend(self.consumers.iter().map(|c| c.function));
        names.extend(self.schedules.iter().map(|s| s.function));
        if self.ws_authorizer.is_some() {
            names.push("ws-authorizer");
        }
        if self.ws_routes.is_some() {
            names.push("ws-connections");
        }
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
    let engine: Arc<prechat::entrypoints::survey_engine::SurveyEngine> = Arc::new(
        prechat::entrypoints::survey_engine::SurveyEngine::from_env(sdk)
            .await
            .map_err(|e| init("survey-engine", e))?,
    );
    let timer = engine.clone();
    pipeline.consumers.push(Consumer {
        function: "survey-engine",
        queue: "InboundQueue",
        handler: super::esm::handler(move |e| {
            let f = engine.clone();
            async move { f.handle(e).await }
        }),
    });
    // survey-timer: the template's `rate(1 minute)` schedule, same entrypoint as its Lambda.
    pipeline.schedules.push(Scheduled {
        function: "survey-timer",
        every: std::time::Duration::from_secs(60),
        run: Arc::new(move || {
            let f = timer.clone();
            Box::pin(async move {
                if let Err(e) = f.handle_tick(serde_json::json!({})).await {
                    tracing::warn!(error = %e, "survey-timer tick failed");
                }
            })
        }),
    });
    let assigner = Arc::new(
        prechat::entrypoints::assigner::AgentAssigner::from_env(sdk)
            .await
            .map_err(|e| init("agent-assigner", e))?,
    );
    let sweeper = assigner.clone();
    pipeline.consumers.push(Consumer {
        function: "agent-assigner",
        queue: "AssignmentQueue",
        handler: super::esm::handler(move |e| {
            let f = assigner.clone();
            async move { f.handle(e).await }
        }),
    });
    // The assigner's sweep: its `AssignmentSweepSchedule` default (5 minutes), with the
    // template's constant input (also `events/agent-assigner-sweep.json`).
    let sweep_event: aws_lambda_events::event::sqs::SqsEvent =
        std::fs::read_to_string(crate::workspace_root().join("events/agent-assigner-sweep.json"))
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|e| format!("events/agent-assigner-sweep.json: {e}"))?;
    pipeline.schedules.push(Scheduled {
        function: "agent-assigner-sweep",
        every: std::time::Duration::from_secs(300),
        run: Arc::new(move || {
            let (f, event) = (sweeper.clone(), sweep_event.clone());
            Box::pin(async move {
                let r = f.handle(event).await;
                if !r.batch_item_failures.is_empty() {
                    tracing::warn!("agent-assigner sweep reported a failure");
                }
            })
        }),
    });
    let sender = Arc::new(
        prechat::entrypoints::sender::ReplySender::from_env(sdk)
            .await
            .map_err(|e| init("reply-sender", e))?,
    );
    pipeline.consumers.push(Consumer {
        function: "reply-sender",
        queue: "OutboundQueue",
        handler: super::esm::handler(move |e| {
            let f = sender.clone();
            async move { f.handle(e).await }
        }),
    });
    // agent-api: `/api/*` of the same HTTP API, behind the JWT authorizer (the front door
    // checks the token and puts the claims into the event, as API Gateway does).
    let api = Arc::new(
        prechat::entrypoints::agent_api::AgentApi::from_env(sdk)
            .await
            .map_err(|e| init("agent-api", e))?,
    );
    pipeline.api = Some(http(move |req| {
        let f = api.clone();
        async move { f.handle(req).await }
    }));
    // webchat: `/widget.js` and `/webchat/*`, outside the authorizer (the visitor's token).
    let webchat = Arc::new(
        prechat::entrypoints::webchat::WebChat::from_env(sdk)
            .await
            .map_err(|e| init("webchat", e))?,
    );
    pipeline.webchat = Some(http(move |req| {
        let f = webchat.clone();
        async move { f.handle(req).await }
    }));
    // The WebSocket API: its authorizer (`PRECHAT_JWT_*`) and its routes (`PRECHAT_TABLE`).
    pipeline.ws_authorizer = Some(Arc::new(
        prechat::realtime::authorizer::WsAuthorizer::from_env(sdk)
            .await
            .map_err(|e| init("ws-authorizer", e))?,
    ));
    pipeline.ws_routes = Some(Arc::new(
        prechat::realtime::connections::WsConnections::from_env(sdk)
            .map_err(|e| init("ws-connections", e))?,
    ));
    Ok(pipeline)
}

fn init(function: &str, e: impl std::fmt::Display) -> String {
    format!("{function} failed to start: {e}")
}
