//! agent-api: `/api/*` of the HTTP API, behind its JWT authorizer, and the inbox page
//! (`/inbox`, `/inbox/{file}`, outside it: [`crate::api::inbox`]). Turns the API Gateway v2
//! event into an [`ApiRequest`] (claims from `requestContext.authorizer.jwt.claims`, never
//! from the token) and the [`crate::api::service`] answer into a JSON response.

use std::collections::HashMap;
use std::time::Duration;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use super::InitError;
use crate::api::auth::AuthConfig;
use crate::api::inbox::{self, InboxConfig, StaticResponse};
use crate::api::ports::DynamoApiStore;
use crate::api::service::{AgentApiCore, ApiRequest, ApiResponse, ApiSettings};
use crate::clock::Clock;
use crate::config::{ConfigError, EnvReader};
use crate::queue::SqsQueue;
use crate::store::survey_store::DynamoSurveyStore;
use crate::store::transcript::DynamoTranscript;
use crate::store::DynamoTable;
use crate::survey::catalog::SurveyCatalog;

/// The settings of agent-api.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentApiConfig {
    pub table: String,
    pub outbound_queue_url: String,
    pub assignment_queue_url: String,
    /// App client ids accepted as machine clients (`PRECHAT_API_MACHINE_CLIENTS`).
    pub machine_clients: Vec<String>,
    /// `PRECHAT_TRANSCRIPT_RETENTION_DAYS`, default 365.
    pub transcript_retention_days: i64,
    /// What `GET /inbox/config.json` tells the page: `PRECHAT_USER_POOL_CLIENT_ID`,
    /// `AWS_REGION`, `PRECHAT_COGNITO_ENDPOINT` (default: Cognito's endpoint of the region),
    /// `PRECHAT_WS_URL`.
    pub inbox: InboxConfig,
}

impl AgentApiConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let mut config = AgentApiConfig {
            table: env.required("PRECHAT_TABLE"),
            outbound_queue_url: env.required("PRECHAT_OUTBOUND_QUEUE_URL"),
            assignment_queue_url: env.required("PRECHAT_ASSIGNMENT_QUEUE_URL"),
            machine_clients: env
                .optional("PRECHAT_API_MACHINE_CLIENTS")
                .map(|v| {
                    v.split(',')
                        .map(|c| c.trim().to_owned())
                        .filter(|c| !c.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            transcript_retention_days: env.parsed_or("PRECHAT_TRANSCRIPT_RETENTION_DAYS", 365),
            inbox: InboxConfig::default(),
        };
        let region = env
            .optional("AWS_REGION")
            .unwrap_or_else(|| "us-east-1".to_owned());
        config.inbox = InboxConfig {
            client_id: env.optional("PRECHAT_USER_POOL_CLIENT_ID"),
            cognito_endpoint: env
                .optional("PRECHAT_COGNITO_ENDPOINT")
                .unwrap_or_else(|| InboxConfig::aws_cognito_endpoint(&region)),
            region,
            api_base: String::new(),
            ws_url: env.optional("PRECHAT_WS_URL"),
        };
        env.finish()?;
        Ok(config)
    }
}

/// The agent-api function on DynamoDB and SQS.
pub struct AgentApi {
    core: AgentApiCore<DynamoApiStore, SqsQueue, DynamoTranscript, DynamoSurveyStore>,
    inbox: InboxConfig,
}

impl AgentApi {
    /// Reads the settings and the optional log key. No other network call happens at init.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let config = AgentApiConfig::from_lookup(crate::config::process_env)?;
        super::init::load_log_key(sdk).await?;
        AgentApi::from_parts(
            &config,
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            Clock::system(),
        )
    }

    /// From explicit clients (tests, the local stack).
    pub fn from_parts(
        config: &AgentApiConfig,
        dynamo: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        clock: Clock,
    ) -> Result<Self, InitError> {
        let table = DynamoTable::new(dynamo, config.table.clone());
        let catalog = SurveyCatalog::new(
            DynamoSurveyStore::new(table.clone()),
            "default".to_owned(),
            Duration::from_secs(60),
        )
        .map_err(|e| InitError::DefaultSurvey(e.to_string()))?;
        Ok(AgentApi {
            inbox: config.inbox.clone(),
            core: AgentApiCore {
                store: DynamoApiStore::new(table.clone()),
                outbound: SqsQueue::new(sqs.clone(), config.outbound_queue_url.clone()),
                assignment: SqsQueue::new(sqs, config.assignment_queue_url.clone()),
                transcript: DynamoTranscript::new(table),
                catalog,
                clock,
                settings: ApiSettings {
                    auth: AuthConfig {
                        machine_clients: config.machine_clients.clone(),
                    },
                    transcript_retention_days: config.transcript_retention_days,
                },
            },
        })
    }

    /// The Lambda handler body.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        if inbox::is_inbox_path(req.raw_http_path()) {
            return static_response(&inbox::serve(
                req.method().as_str(),
                req.raw_http_path(),
                &self.inbox,
            ));
        }
        let answer = self.core.handle(&api_request(&req)).await;
        json_response(&answer)
    }
}

/// The plain request of an API Gateway v2 event.
pub fn api_request(req: &Request) -> ApiRequest {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| jwt.claims.clone()),
        _ => None,
    };
    let params = req.query_string_parameters();
    let query: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    ApiRequest {
        method: req.method().as_str().to_owned(),
        path: req.raw_http_path().to_owned(),
        query,
        idempotency_key: req
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: req.body().as_ref().to_vec(),
        claims: claims.filter(|c| !c.is_empty()),
    }
}

fn static_response(answer: &StaticResponse) -> Response<Body> {
    let mut builder = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(Body::Text(answer.body.clone()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

fn json_response(answer: &ApiResponse) -> Response<Body> {
    Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(Body::Text(answer.body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
