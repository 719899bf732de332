//! webchat: the web chat visitor's endpoints on the HTTP API, outside the JWT authorizer
//! (the visitor's own HMAC token, [`crate::webchat::token`], stands in for it).
//!
//! - `GET /widget.js`: the widget script (the shared validators, then the widget).
//! - `GET /webchat/form?survey=&lang=`: the published survey's web form ([`survey::web::form`]).
//! - `POST /webchat/conversations`: the pre-chat form, checked by [`survey::web::submit`] and
//!   queued as one [`InboundEvent::WebForm`]; answers the visitor token.
//! - `POST /webchat/messages`: a visitor's text, queued as an [`InboundEvent::Message`].
//! - `GET /webchat/conversation?after=`: the visitor's current conversation and what of its
//!   transcript they may see.
//!
//! Every `/webchat/` route answers only the configured origins (403 otherwise) with CORS
//! headers for them, preflights included; submissions and messages are rate limited per
//! source IP and per visitor ([`crate::webchat::rate_limit`]).

use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};

use super::InitError;
use crate::api::ports::{AgentDirectory, DynamoApiStore, Handoffs};
use crate::clock::Clock;
use crate::config::{ConfigError, EnvReader};
use crate::queue::{MessageQueue, QueueMessage, SqsQueue};
use crate::secrets::Secret;
use crate::store::conversation_store::{ConversationStore, DynamoConversationStore};
use crate::store::survey_store::DynamoSurveyStore;
use crate::store::transcript::{DynamoTranscript, TranscriptLog};
use crate::store::{DynamoTable, StoreError};
use crate::survey::catalog::SurveyCatalog;
use crate::survey::{self, definition::Survey};
use crate::transcript::{is_entry_id, PageRequest, MAX_PAGE};
use crate::webchat::http::{
    self, AllowedOrigins, BodyError, Limits, MessageBody, RateCheck, SubmitBody,
};
use crate::webchat::rate_limit::{DynamoRateLimiter, RateLimiter};
use crate::webchat::token::VisitorTokens;
use crate::webchat::{visitor_key, WEB_PHONE_NUMBER_ID};
use crate::whatsapp::contact::ContactRef;
use crate::whatsapp::event::{InboundEvent, InboundMessage, MessageContent, WebFormSubmission};
use crate::whatsapp::ContactKey;

/// The visitor token secret (`..._PARAM` names its SSM parameter in AWS).
pub const TOKEN_SECRET: &str = crate::webchat::token::SECRET;

/// The settings of webchat.
#[derive(Debug, Clone, PartialEq)]
pub struct WebChatConfig {
    pub table: String,
    pub inbound_queue_url: String,
    /// `PRECHAT_WEBCHAT_ORIGINS`: the websites that may embed the widget.
    pub origins: AllowedOrigins,
    /// `PRECHAT_SURVEY_ID` (default `default`): the survey whose form is served, as the engine.
    pub survey_id: String,
    /// `PRECHAT_WEBCHAT_SUBMISSIONS_PER_IP` (10), `PRECHAT_WEBCHAT_MESSAGES_PER_IP` (60),
    /// `PRECHAT_WEBCHAT_MESSAGES_PER_VISITOR` (30), per minute.
    pub limits: Limits,
    /// `PRECHAT_WS_URL` (optional): the WebSocket the widget connects to with the visitor's
    /// token, told in the form as `ws_url`; without it the widget polls.
    pub ws_url: Option<String>,
}

impl WebChatConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let defaults = Limits::default();
        let config = WebChatConfig {
            table: env.required("PRECHAT_TABLE"),
            inbound_queue_url: env.required("PRECHAT_INBOUND_QUEUE_URL"),
            origins: AllowedOrigins::parse(&env.required("PRECHAT_WEBCHAT_ORIGINS")),
            survey_id: env
                .optional("PRECHAT_SURVEY_ID")
                .unwrap_or_else(|| "default".to_owned()),
            limits: Limits {
                submissions_per_ip: env.parsed_or(
                    "PRECHAT_WEBCHAT_SUBMISSIONS_PER_IP",
                    defaults.submissions_per_ip,
                ),
                messages_per_ip: env
                    .parsed_or("PRECHAT_WEBCHAT_MESSAGES_PER_IP", defaults.messages_per_ip),
                messages_per_visitor: env.parsed_or(
                    "PRECHAT_WEBCHAT_MESSAGES_PER_VISITOR",
                    defaults.messages_per_visitor,
                ),
            },
            ws_url: env
                .optional("PRECHAT_WS_URL")
                .filter(|u| !u.trim().is_empty()),
        };
        env.finish()?;
        Ok(config)
    }
}

/// The webchat function on DynamoDB and SQS.
pub struct WebChat {
    origins: AllowedOrigins,
    survey_id: String,
    limits: Limits,
    ws_url: Option<String>,
    tokens: VisitorTokens,
    catalog: SurveyCatalog<DynamoSurveyStore>,
    inbound: SqsQueue,
    rates: DynamoRateLimiter,
    contacts: DynamoConversationStore,
    transcript: DynamoTranscript,
    routing: DynamoApiStore,
    clock: Clock,
}

/// One answer: status, JSON (or script) body, extra headers.
struct Reply {
    status: StatusCode,
    body: Body,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            body: Body::Text(body.to_string()),
            headers: vec![("content-type", "application/json".to_owned())],
        }
    }

    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Reply::json(
            status,
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }

    fn with(mut self, headers: Vec<(&'static str, String)>) -> Self {
        self.headers.extend(headers);
        self
    }

    fn into_response(self) -> Response<Body> {
        let mut builder = Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        builder.body(self.body).unwrap_or_else(|_| {
            let mut r = Response::new(Body::Empty);
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

impl From<BodyError> for Reply {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => {
                Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
            }
            BodyError::Malformed(_) | BodyError::BadNonce => {
                Reply::error(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
        }
    }
}

/// A store or queue failure: the visitor may try again.
fn unavailable(what: &str, e: &dyn std::fmt::Display) -> Reply {
    tracing::error!(error = %e, "webchat: {what} failed");
    Reply::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "temporarily unavailable, try again",
    )
    .with(vec![("retry-after", "5".to_owned())])
}

fn unauthorized() -> Reply {
    Reply::error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing, invalid or expired visitor token",
    )
}

impl WebChat {
    /// Reads the settings and the token secret (one SSM request). No other network call
    /// happens at init.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let config = WebChatConfig::from_lookup(crate::config::process_env)?;
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let (required, _) =
            super::init::load_secrets(&ssm, &[TOKEN_SECRET], &[], crate::config::process_env)
                .await?;
        let Some(secret) = required.into_iter().next() else {
            return Err(crate::secrets::SecretError::NotConfigured(TOKEN_SECRET.to_owned()).into());
        };
        WebChat::from_parts(
            &config,
            &secret,
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            Clock::system(),
        )
    }

    /// From explicit clients (tests, the local stack).
    pub fn from_parts(
        config: &WebChatConfig,
        secret: &Secret,
        dynamo: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        clock: Clock,
    ) -> Result<Self, InitError> {
        let table = DynamoTable::new(dynamo, config.table.clone());
        let catalog = SurveyCatalog::new(
            DynamoSurveyStore::new(table.clone()),
            config.survey_id.clone(),
            Duration::from_secs(60),
        )
        .map_err(|e| InitError::DefaultSurvey(e.to_string()))?;
        Ok(WebChat {
            origins: config.origins.clone(),
            survey_id: config.survey_id.clone(),
            limits: config.limits,
            ws_url: config.ws_url.clone(),
            tokens: VisitorTokens::new(secret),
            catalog,
            inbound: SqsQueue::new(sqs, config.inbound_queue_url.clone()),
            rates: DynamoRateLimiter::new(table.clone()),
            contacts: DynamoConversationStore::new(table.clone()),
            transcript: DynamoTranscript::new(table.clone()),
            routing: DynamoApiStore::new(table),
            clock,
        })
    }

    /// The Lambda handler body.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.route(&req).await.into_response()
    }

    async fn route(&self, req: &Request) -> Reply {
        let path = req.raw_http_path();
        let method = req.method();
        if path == "/widget.js" {
            return if method == Method::GET || method == Method::HEAD {
                Reply {
                    status: StatusCode::OK,
                    body: Body::Text(http::WIDGET_JS.to_owned()),
                    headers: vec![
                        ("content-type", "text/javascript; charset=utf-8".to_owned()),
                        (
                            "cache-control",
                            format!("public, max-age={}", http::WIDGET_MAX_AGE_SECS),
                        ),
                    ],
                }
            } else {
                Reply::error(StatusCode::METHOD_NOT_ALLOWED, "method", "GET only")
            };
        }
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        let Some(origin) = self.origins.check(origin) else {
            return Reply::error(
                StatusCode::FORBIDDEN,
                "origin",
                "this website may not use the web chat",
            );
        };
        let cors = http::cors_headers(origin);
        if method == Method::OPTIONS {
            return Reply {
                status: StatusCode::NO_CONTENT,
                body: Body::Empty,
                headers: http::preflight_headers(),
            }
            .with(cors);
        }
        let reply = match (method.as_str(), path) {
            ("GET", "/webchat/form") => self.form(req).await,
            ("POST", "/webchat/conversations") => self.submit(req).await,
            ("POST", "/webchat/messages") => self.message(req).await,
            ("GET", "/webchat/conversation") => self.conversation(req).await,
            (
                _,
                "/webchat/form"
                | "/webchat/conversations"
                | "/webchat/messages"
                | "/webchat/conversation",
            ) => Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method",
                "method not allowed",
            ),
            _ => Reply::error(StatusCode::NOT_FOUND, "not_found", "no such route"),
        };
        reply.with(cors)
    }

    fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// The published survey a request names: the one the engine runs, by its id or as
    /// `default` (also when none is named).
    async fn survey(&self, requested: Option<&str>) -> Result<std::sync::Arc<Survey>, Reply> {
        let requested = requested.filter(|s| !s.is_empty()).unwrap_or("default");
        if requested != self.survey_id && requested != "default" {
            return Err(Reply::error(
                StatusCode::NOT_FOUND,
                "survey",
                "no such survey",
            ));
        }
        self.catalog
            .latest()
            .await
            .map_err(|e| unavailable("survey load", &e))
    }

    /// The visitor of the request's token: `Ok(None)` without a token, 401 for a bad one.
    fn visitor(&self, req: &Request) -> Result<Option<String>, Reply> {
        let header = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or(""));
        match http::bearer(header) {
            None => Ok(None),
            Some(token) => self
                .tokens
                .verify(token, self.now())
                .map(|c| Some(c.sub))
                .map_err(|_| unauthorized()),
        }
    }

    fn source_ip(req: &Request) -> String {
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                ctx.http.source_ip.clone().unwrap_or_default()
            }
            _ => String::new(),
        }
    }

    /// Counts the request against each check; 429 with `retry-after` at the first one over.
    async fn limit(&self, checks: &[RateCheck]) -> Result<(), Reply> {
        let (minute, retry_after) = http::minute_of(self.now());
        for check in checks {
            match self.rates.hit(check, minute).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Reply::error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        "too many requests, try again shortly",
                    )
                    .with(vec![("retry-after", retry_after.to_string())]))
                }
                Err(e) => return Err(unavailable("rate limit", &e)),
            }
        }
        Ok(())
    }

    fn today(&self) -> chrono::NaiveDate {
        self.clock.now().date_naive()
    }

    async fn form(&self, req: &Request) -> Reply {
        let query = req.query_string_parameters();
        let survey = match self.survey(query.first("survey")).await {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let form = survey::web::form(&survey, query.first("lang").unwrap_or(""), self.today());
        match serde_json::to_value(&form) {
            Ok(mut v) => {
                v["ws_url"] = serde_json::json!(self.ws_url);
                Reply::json(StatusCode::OK, v)
            }
            Err(e) => unavailable("form encoding", &e),
        }
    }

    async fn submit(&self, req: &Request) -> Reply {
        match self.try_submit(req).await {
            Ok(reply) | Err(reply) => reply,
        }
    }

    async fn try_submit(&self, req: &Request) -> Result<Reply, Reply> {
        let body: SubmitBody = http::parse_body(req.body().as_ref())?;
        let returning = self.visitor(req)?;
        if body.is_bot() {
            return Ok(Reply::json(StatusCode::ACCEPTED, json!({})));
        }
        self.limit(&self.limits.submission(&Self::source_ip(req)))
            .await?;
        let survey = self.survey(body.survey.as_deref()).await?;
        let now = self.now();
        let submission = survey::web::submit(
            &survey,
            body.lang.as_deref().unwrap_or(""),
            self.today(),
            &body.answers,
        )
        .map_err(|errors| {
            Reply::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "errors": errors.0 }),
            )
        })?;
        let key = match returning {
            Some(key) => key,
            None => match http::new_visitor_id() {
                Ok(id) => visitor_key(&id),
                Err(e) => return Err(unavailable("visitor id", &e)),
            },
        };
        let visitor_id = key
            .strip_prefix(crate::webchat::VISITOR_PREFIX)
            .unwrap_or(&key)
            .to_owned();
        let submission_id = format!("webform:{visitor_id}:{}", body.nonce);
        let event = InboundEvent::WebForm(WebFormSubmission {
            phone_number_id: WEB_PHONE_NUMBER_ID.to_owned(),
            contact: ContactRef {
                user_id: Some(key.clone()),
                wa_id: None,
                profile_name: submission.fields.get("name").cloned(),
                username: None,
            },
            submission_id: submission_id.clone(),
            timestamp: now,
            survey_id: submission.survey_id,
            survey_version: submission.survey_version,
            language: submission.language,
            answers: submission.answers,
            fields: submission.fields,
            vars: submission.vars,
            consent: submission.consent.map(|c| c.record(now)),
        });
        self.queue(&event).await?;
        Ok(Reply::json(
            StatusCode::ACCEPTED,
            json!({
                "visitor_token": self.tokens.issue(&key, now),
                "visitor": key,
                "submission_id": submission_id,
            }),
        ))
    }

    async fn queue(&self, event: &InboundEvent) -> Result<(), Reply> {
        let message = QueueMessage::of(event).map_err(|e| unavailable("event encoding", &e))?;
        self.inbound
            .send_all(&[message])
            .await
            .map_err(|e| unavailable("inbound queue", &e))
    }

    async fn message(&self, req: &Request) -> Reply {
        match self.try_message(req).await {
            Ok(reply) | Err(reply) => reply,
        }
    }

    async fn try_message(&self, req: &Request) -> Result<Reply, Reply> {
        let Some(key) = self.visitor(req)? else {
            return Err(unauthorized());
        };
        let body: MessageBody = http::parse_body(req.body().as_ref())?;
        let code = if body.text.trim().is_empty() {
            Some("required")
        } else if body.text.len() > http::MAX_TEXT_BYTES {
            Some("too_long")
        } else {
            None
        };
        if let Some(code) = code {
            return Err(Reply::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"errors": [{
                    "key": "text",
                    "code": code,
                    "message": format!("a message is 1 to {} bytes of text", http::MAX_TEXT_BYTES),
                }]}),
            ));
        }
        self.limit(&self.limits.message(&Self::source_ip(req), &key))
            .await?;
        let visitor_id = key
            .strip_prefix(crate::webchat::VISITOR_PREFIX)
            .unwrap_or(&key);
        let message_id = format!("web.{visitor_id}.{}", body.nonce);
        let event = InboundEvent::Message(InboundMessage {
            phone_number_id: WEB_PHONE_NUMBER_ID.to_owned(),
            display_phone_number: String::new(),
            contact: ContactRef {
                user_id: Some(key.clone()),
                wa_id: None,
                profile_name: None,
                username: None,
            },
            message_id: message_id.clone(),
            timestamp: self.now(),
            context_message_id: None,
            referral: None,
            content: MessageContent::Text { body: body.text },
        });
        self.queue(&event).await?;
        Ok(Reply::json(
            StatusCode::ACCEPTED,
            json!({ "message_id": message_id }),
        ))
    }

    async fn conversation(&self, req: &Request) -> Reply {
        match self.try_conversation(req).await {
            Ok(reply) | Err(reply) => reply,
        }
    }

    async fn try_conversation(&self, req: &Request) -> Result<Reply, Reply> {
        let Some(key) = self.visitor(req)? else {
            return Err(unauthorized());
        };
        let query = req.query_string_parameters();
        let after = query.first("after").map(str::to_owned);
        if after.as_deref().is_some_and(|a| !is_entry_id(a)) {
            return Err(Reply::error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "after must be a transcript entry id (T#...)",
            ));
        }
        let record = self
            .contacts
            .load(WEB_PHONE_NUMBER_ID, &ContactKey::from(key), true)
            .await
            .map_err(|e| unavailable("contact load", &e))?;
        let Some(conv) = record.and_then(|r| r.conversation) else {
            return Err(Reply::error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no conversation yet",
            ));
        };
        let page = self
            .transcript
            .page(
                &conv.id,
                &PageRequest {
                    after,
                    before: None,
                    limit: MAX_PAGE,
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::InvalidCursor(_) => Reply::error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "after must be a transcript entry id (T#...)",
                ),
                e => unavailable("transcript", &e),
            })?;
        let agent_name = self
            .agent_name(&conv.id)
            .await
            .map_err(|e| unavailable("agent lookup", &e))?;
        let entries: Vec<_> = page
            .entries
            .iter()
            .filter_map(http::visitor_entry)
            .collect();
        let mut body = json!({
            "conversation_id": conv.id,
            "state": conv.status.as_str(),
            "entries": entries,
        });
        if let Some(name) = agent_name {
            body["agent_name"] = json!(name);
        }
        Ok(Reply::json(StatusCode::OK, body))
    }

    /// The name of the agent the conversation is assigned to, if any.
    async fn agent_name(&self, conversation_id: &str) -> Result<Option<String>, StoreError> {
        let Some(agent_id) = self
            .routing
            .ticket(conversation_id)
            .await?
            .and_then(|t| t.agent)
        else {
            return Ok(None);
        };
        Ok(self.routing.agent(&agent_id).await?.map(|a| a.name))
    }
}
