//! [`TestApp`]: one test's running prechat, in the style of zero2prod's `spawn_app()`.
//!
//! [`TestApp::spawn`] provisions a fresh table and fresh queues from `infra/template.yaml`
//! (through [`TestEnv`]), pins a [`Clock`] at [`T0`], and builds the entrypoints with the
//! configuration the template gives each function (`cfn::Template::environment` resolved with
//! this test's physical names), never with hand-written configuration. Everything a test does
//! then goes through it:
//!
//! - **entrypoints**: [`engine`](TestApp::engine) (survey-engine) and
//!   [`assigner`](TestApp::assigner) (agent-assigner) are built at spawn; build others with
//!   [`survey_engine_with`](TestApp::survey_engine_with), [`sender`](TestApp::sender)
//!   (reply-sender against a Graph API you give it), [`ingest`](TestApp::ingest),
//!   [`assigner_with`](TestApp::assigner_with), [`agent_api`](TestApp::agent_api). Their AWS clients count requests in
//!   [`requests`](TestApp::requests); the harness's own reads do not.
//! - **inbound events**: [`message`](TestApp::message) makes the contact's next message (the
//!   clock moves 5 s, the message id is unique), [`say`](TestApp::say) delivers one,
//!   [`deliver`](TestApp::deliver) / [`try_deliver`](TestApp::try_deliver) a batch to the
//!   survey engine; [`web_form`](TestApp::web_form) makes a visitor's form submission (deliver
//!   it like a message); [`consume`](TestApp::consume) hands any queue bodies to any consumer as one
//!   SQS batch (built by [`crate::sqs`], the one place SQS events are built).
//! - **queues**: [`drain`](TestApp::drain) / [`poll`](TestApp::poll) run a queue into its
//!   consumer as Lambda's event source mapping does (receive 10, handle, delete what did not
//!   fail); [`drain_assignments`](TestApp::drain_assignments) and
//!   [`drain_outbound`](TestApp::drain_outbound) name the usual two.
//!   [`outbound`](TestApp::outbound), [`jobs`](TestApp::jobs), [`received`](TestApp::received)
//!   take (and delete) what is on a queue, decoded; [`parked`](TestEnv::parked) reads a DLQ.
//! - **items**: [`item`](TestApp::item), [`conversation`](TestApp::conversation),
//!   [`contact_doc`](TestApp::contact_doc), and the stores
//!   ([`routing`](TestApp::routing), [`surveys`](TestApp::surveys),
//!   [`conversations`](TestApp::conversations), [`delivery_log`](TestApp::delivery_log)).
//! - **binaries**: [`run_binary`](TestApp::run_binary) starts a function's real binary under
//!   cargo-lambda with the template's environment for it and invokes it with an event file.
//!
//! ```no_run
//! use prechat_tests::app::{text, TestApp};
//!
//! # async fn example() {
//! let app = TestApp::spawn().await;
//! let ana = prechat_tests::app::ana();
//! app.say(&ana, text("hi")).await;                 // through the survey engine
//! let out = app.outbound().await;                  // what it queued for the sender
//! assert!(prechat_tests::app::body_text(&out[0]).starts_with("Hi Ana!"));
//! app.clock.advance(3600);                         // one hour later, for every entrypoint
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use prechat::clock::Clock;
use prechat::entrypoints::assigner::AgentAssigner;
use prechat::entrypoints::ingest::Ingest;
use prechat::entrypoints::sender::{ReplySender, SenderConfig, SqsVisibility};
use prechat::entrypoints::survey_engine::{SurveyEngine, SurveyEngineConfig};
use prechat::queue::dlq::SqsDeadLetters;
use prechat::queue::{FifoContract, SqsQueue};
use prechat::routing::job::{AssignRequest, AssignmentJob};
use prechat::routing::notify::WebhookNotifier;
use prechat::secrets::Secret;
use prechat::store::conversation_store::{contact_pk, conversation_pk, DynamoConversationStore};
use prechat::store::delivery_log::DynamoDeliveryLog;
use prechat::store::routing::RoutingStore;
use prechat::store::survey_store::DynamoSurveyStore;
use prechat::store::DynamoTable;
use prechat::whatsapp::event::{InboundEvent, InboundMessage, MessageContent, WebFormSubmission};
use prechat::whatsapp::graph_client::{GraphClient, SecretToken};
use prechat::whatsapp::outbound::{OutboundBody, OutboundMessage};
use prechat::whatsapp::ContactRef;
use serde_json::Value as Json;

use crate::cfn::{Names, Template, ACCOUNT, REGION};
use crate::{sqs, Provisioned, TestEnv};

/// Where every app's clock starts (2026-09-21): any fixed instant works, tests move it.
pub const T0: i64 = 1_790_000_000;
/// The business phone number id of every message [`TestApp::message`] makes.
pub const PNID: &str = "106540352242922";

/// A token source reading the access token named by the sender's template environment.
pub type TemplateLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;
/// reply-sender as [`TestApp::sender`] builds it.
pub type Sender =
    ReplySender<GraphClient<SecretToken<TemplateLookup>>, DynamoDeliveryLog, SqsVisibility>;

/// An SQS consumer (a Lambda handler of an SQS event), so the app can feed any of them.
pub trait Consumer {
    fn consume(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse>;
}

impl Consumer for SurveyEngine {
    fn consume(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> {
        self.handle(event)
    }
}

impl Consumer for AgentAssigner {
    fn consume(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> {
        self.handle(event)
    }
}

impl Consumer for Sender {
    fn consume(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> {
        self.handle(event)
    }
}

impl<C: Consumer> Consumer for Arc<C> {
    fn consume(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> {
        (**self).consume(event)
    }
}

/// Requests per operation (`x-amz-target`, e.g. `DynamoDB_20120810.GetItem`,
/// `AmazonSQS.SendMessageBatch`) as the entrypoints' clients send them on the wire.
#[derive(Debug, Default, Clone)]
pub struct Requests(Arc<Mutex<BTreeMap<String, usize>>>);

impl Requests {
    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    pub fn reset(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
    /// The requests whose operation starts with `prefix` (`"DynamoDB_20120810."`, `"AmazonSQS."`).
    pub fn total(&self, prefix: &str) -> usize {
        total(&self.snapshot(), prefix)
    }
}

/// The requests in `counts` whose operation starts with `prefix`.
pub fn total(counts: &BTreeMap<String, usize>, prefix: &str) -> usize {
    counts
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = ctx
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?")
            .to_owned();
        if let Ok(mut m) = self.0.lock() {
            *m.entry(target).or_default() += 1;
        }
        Ok(())
    }
}

/// The template's names for what was provisioned: `Ref` of a table is its physical name, of a
/// queue its URL; `Arn` and `QueueName` as moto created them. Parameters keep their defaults
/// except `overrides`.
pub fn provisioned_names(t: &Template, p: &Provisioned, overrides: &[(&str, &str)]) -> Names {
    let mut n = t.names(overrides);
    for (id, table) in &p.tables {
        n.refs.insert(id.clone(), table.clone());
        let arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}");
        n.atts.insert(format!("{id}.Arn"), arn);
    }
    for (id, url) in &p.queue_urls {
        n.refs.insert(id.clone(), url.clone());
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        n.atts.insert(format!("{id}.QueueName"), name);
        if let Some(arn) = p.queue_arns.get(id) {
            n.atts.insert(format!("{id}.Arn"), arn.clone());
        }
    }
    n
}

/// One test's prechat: its table and queues, clock, entrypoints and the template's view of them.
pub struct TestApp {
    pub env: TestEnv,
    pub template: Template,
    /// The template's names for this app (secrets' parameters under this test's prefix).
    pub names: Names,
    /// "Now" for every entrypoint the app builds; starts at [`T0`].
    pub clock: Clock,
    /// Requests of the entrypoints' AWS clients.
    pub requests: Requests,
    /// survey-engine (survey cache off, so a publish is seen at once).
    pub engine: SurveyEngine,
    /// agent-assigner, without a webhook secret (agents are not notified).
    pub assigner: Arc<AgentAssigner>,
    /// The DynamoDB and SQS clients the entrypoints use (counted in `requests`).
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    seq: AtomicUsize,
}

impl TestApp {
    /// A fresh app with its clock at [`T0`].
    pub async fn spawn() -> TestApp {
        TestApp::spawn_at(T0).await
    }

    /// A fresh app with its clock at `unix` (seconds).
    pub async fn spawn_at(unix: i64) -> TestApp {
        let env = TestEnv::new().await;
        let template = Template::load();
        let secret = |name: &str| format!("{}/{name}", env.prefix);
        let (verify, app, access) = (
            secret("whatsapp-verify-token"),
            secret("whatsapp-app-secret"),
            secret("whatsapp-access-token"),
        );
        let names = provisioned_names(
            &template,
            &env.resources,
            &[
                ("VerifyTokenParameter", &verify),
                ("AppSecretParameter", &app),
                ("AccessTokenParameter", &access),
            ],
        );
        let requests = Requests::default();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&env.sdk)
                .interceptor(requests.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&env.sdk)
                .interceptor(requests.clone())
                .build(),
        );
        let clock = Clock::at_unix(unix);
        let engine = SurveyEngine::from_parts(
            &engine_config(&template, &names, |_| {}),
            dynamo.clone(),
            sqs.clone(),
        )
        .unwrap_or_else(|e| panic!("survey-engine from the template: {e}"))
        .with_clock(clock.clone());
        let assigner = build_assigner(&template, &names, &dynamo, &sqs, &clock, None);
        TestApp {
            engine,
            assigner: Arc::new(assigner),
            env,
            template,
            names,
            clock,
            requests,
            dynamo,
            sqs,
            seq: AtomicUsize::new(0),
        }
    }

    /// A function's environment as the template sets it for this app (`Globals` merged), by
    /// logical id (`"SurveyEngineFunction"`).
    pub fn function_env(&self, function: &str) -> BTreeMap<String, String> {
        self.template.environment(function, &self.names)
    }

    /// [`function_env`](Self::function_env) with `extra` added or replaced, as a lookup for the
    /// entrypoints' `from_lookup`.
    pub fn lookup(
        &self,
        function: &str,
        extra: &[(&str, &str)],
    ) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let mut env = self.function_env(function);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        move |k| env.get(k).cloned()
    }

    /// The SSM parameter a function reads a secret from (`env` = the `_PARAM` variable's name
    /// without `_PARAM`, e.g. `"WHATSAPP_ACCESS_TOKEN"`), as the template names it.
    pub fn secret_param(&self, function: &str, env: &str) -> String {
        self.function_env(function)
            .remove(&format!("{env}_PARAM"))
            .unwrap_or_else(|| panic!("{function} has no {env}_PARAM in the template"))
    }

    /// survey-engine configured from the template, changed by `edit`, on this app's clock.
    pub fn survey_engine_with(&self, edit: impl FnOnce(&mut SurveyEngineConfig)) -> SurveyEngine {
        let config = engine_config(&self.template, &self.names, edit);
        SurveyEngine::from_parts(&config, self.dynamo.clone(), self.sqs.clone())
            .unwrap_or_else(|e| panic!("survey-engine: {e}"))
            .with_clock(self.clock.clone())
    }

    /// agent-assigner configured from the template, notifying agents with `webhook_secret`.
    pub fn assigner_with(&self, webhook_secret: Option<&str>) -> AgentAssigner {
        build_assigner(
            &self.template,
            &self.names,
            &self.dynamo,
            &self.sqs,
            &self.clock,
            webhook_secret,
        )
    }

    /// reply-sender configured from the template plus `extra` variables, posting to the Graph
    /// API at `graph_base_url` (`PRECHAT_GRAPH_BASE_URL`). Its access token is read from the
    /// SSM parameter the template names (store it first with [`put_access_token`]
    /// (Self::put_access_token)), again after an auth error.
    pub async fn sender(&self, graph_base_url: &str, extra: &[(&str, &str)]) -> Sender {
        let mut vars = vec![("PRECHAT_GRAPH_BASE_URL", graph_base_url)];
        vars.extend_from_slice(extra);
        let config = SenderConfig::from_lookup(self.lookup("ReplySenderFunction", &vars))
            .unwrap_or_else(|e| panic!("reply-sender from the template: {e}"));
        let lookup: TemplateLookup = Box::new(self.lookup("ReplySenderFunction", &[]));
        let token = SecretToken::with_lookup(self.env.ssm.clone(), "WHATSAPP_ACCESS_TOKEN", lookup);
        let graph = GraphClient::new(config.graph.clone(), token)
            .await
            .unwrap_or_else(|e| panic!("graph client: {e}"));
        ReplySender::new(
            config.clone(),
            graph,
            DynamoDeliveryLog::new(DynamoTable::new(self.dynamo.clone(), config.table.clone())),
            SqsVisibility::new(self.sqs.clone(), config.outbound_queue_url.clone()),
            SqsDeadLetters::new(self.sqs.clone(), Some(config.dead_letter_queue_url.clone())),
        )
        .with_clock(self.clock.clone())
    }

    /// Stores the access token where the sender's template environment says it is.
    pub async fn put_access_token(&self, token: &str) {
        let param = self.secret_param("ReplySenderFunction", "WHATSAPP_ACCESS_TOKEN");
        self.env.put_secret(&param, token).await;
    }

    /// webhook-ingest configured from the template, verifying signatures with `app_secret`.
    pub fn ingest(&self, app_secret: &str) -> Ingest {
        let config = prechat::entrypoints::ingest::IngestConfig::from_lookup(
            self.lookup("WebhookIngestFunction", &[]),
        )
        .unwrap_or_else(|e| panic!("webhook-ingest from the template: {e}"));
        Ingest::new(
            &Secret::new(app_secret),
            SqsQueue::new(self.sqs.clone(), config.inbound_queue_url),
        )
        .with_clock(self.clock.clone())
    }

    /// agent-api configured from the template (`AgentApiFunction`) plus `extra` variables, on
    /// this app's clock. Its requests carry the JWT authorizer's claims ([`crate::api`]).
    pub fn agent_api(&self, extra: &[(&str, &str)]) -> prechat::entrypoints::agent_api::AgentApi {
        let config = prechat::entrypoints::agent_api::AgentApiConfig::from_lookup(
            self.lookup("AgentApiFunction", extra),
        )
        .unwrap_or_else(|e| panic!("agent-api from the template: {e}"));
        prechat::entrypoints::agent_api::AgentApi::from_parts(
            &config,
            self.dynamo.clone(),
            self.sqs.clone(),
            self.clock.clone(),
        )
        .unwrap_or_else(|e| panic!("agent-api: {e}"))
    }

    /// webchat configured from the template (`WebChatFunction`) plus `extra` variables, its
    /// token secret `secret`, on this app's clock.
    pub fn webchat(
        &self,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> prechat::entrypoints::webchat::WebChat {
        let config = prechat::entrypoints::webchat::WebChatConfig::from_lookup(
            self.lookup("WebChatFunction", extra),
        )
        .unwrap_or_else(|e| panic!("webchat from the template: {e}"));
        prechat::entrypoints::webchat::WebChat::from_parts(
            &config,
            &prechat::secrets::Secret::new(secret),
            self.dynamo.clone(),
            self.sqs.clone(),
            self.clock.clone(),
        )
        .unwrap_or_else(|e| panic!("webchat: {e}"))
    }

    // ------------------------------------------------------------------ inbound events

    /// The contact's next message: the clock moves 5 s, the message id is new.
    pub fn message(&self, who: &ContactRef, content: MessageContent) -> InboundEvent {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        self.clock.advance(5);
        InboundEvent::Message(InboundMessage {
            phone_number_id: PNID.into(),
            display_phone_number: "15550783881".into(),
            contact: who.clone(),
            message_id: format!("wamid.{}.{n}", self.env.prefix),
            timestamp: self.clock.unix(),
            context_message_id: None,
            referral: None,
            content,
        })
    }

    /// The contact's next message, delivered to the survey engine.
    pub async fn say(&self, who: &ContactRef, content: MessageContent) {
        let e = self.message(who, content);
        self.deliver(&[e]).await;
    }

    /// A web visitor's next form submission of `survey` in `lang` (`answers` by question key,
    /// as the browser sends them), through the edge's own check ([`prechat::survey::web::submit`]):
    /// the clock moves 5 s, the submission id is new. Panics when the form is refused.
    pub fn web_form(
        &self,
        who: &ContactRef,
        survey: &prechat::survey::definition::Survey,
        lang: &str,
        answers: &[(&str, &str)],
    ) -> InboundEvent {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        self.clock.advance(5);
        let at = self.clock.unix();
        let raw: BTreeMap<String, String> = answers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let today = chrono::DateTime::from_timestamp(at, 0)
            .map(|d| d.date_naive())
            .unwrap_or_default();
        let sub = prechat::survey::web::submit(survey, lang, today, &raw)
            .unwrap_or_else(|e| panic!("the form is refused: {e}"));
        let key = who.key().unwrap_or_else(|| panic!("{who:?} has no key"));
        let visitor = key
            .as_str()
            .trim_start_matches(prechat::webchat::VISITOR_PREFIX);
        InboundEvent::WebForm(WebFormSubmission {
            phone_number_id: prechat::webchat::WEB_PHONE_NUMBER_ID.into(),
            contact: who.clone(),
            submission_id: format!("webform:{visitor}:{}.{n}", self.env.prefix),
            timestamp: at,
            survey_id: sub.survey_id,
            survey_version: sub.survey_version,
            language: sub.language,
            answers: sub.answers,
            fields: sub.fields,
            vars: sub.vars,
            consent: sub.consent.map(|c| c.record(at)),
        })
    }

    /// Delivers events to the survey engine as one SQS batch; asserts none failed.
    pub async fn deliver(&self, events: &[InboundEvent]) {
        let failures = self.try_deliver(events).await;
        assert!(failures.is_empty(), "batch item failures: {failures:?}");
    }

    /// Delivers events to the survey engine as one SQS batch; the ids of the failed records.
    pub async fn try_deliver(&self, events: &[InboundEvent]) -> Vec<String> {
        failed_ids(self.consume(&self.engine, events).await)
    }

    /// Hands queue bodies to `consumer` as one SQS batch (records `sqs-0`, `sqs-1`, ...).
    pub async fn consume<C: Consumer, T: FifoContract>(
        &self,
        consumer: &C,
        bodies: &[T],
    ) -> SqsBatchResponse {
        consumer.consume(sqs::fifo_event(bodies)).await
    }

    /// Hands one assignment job to the assigner; asserts it succeeded.
    pub async fn run_job(&self, job: AssignmentJob) {
        let r = self.consume(&self.assigner, &[job]).await;
        assert!(r.batch_item_failures.is_empty(), "{r:?}");
    }

    // ------------------------------------------------------------------ queues

    /// One poll of Lambda's event source mapping: receives up to 10 messages of `queue`, hands
    /// them to `consumer`, deletes what it did not report as failed. `None` when the queue gave
    /// nothing; else how many were received and the response.
    pub async fn poll<C: Consumer>(
        &self,
        queue: &str,
        consumer: &C,
    ) -> Option<(usize, SqsBatchResponse)> {
        let url = self.env.queue_url(queue).to_owned();
        let out = self
            .env
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive {queue}: {}", sqs_error(e)));
        let received = out.messages.unwrap_or_default();
        if received.is_empty() {
            return None;
        }
        let arn = &self.env.resources.queue_arns[queue];
        let event = crate::local::esm::to_sqs_event(&received, arn)
            .unwrap_or_else(|e| panic!("{queue}: {e}"));
        let response = consumer.consume(event).await;
        for m in &received {
            let failed = response
                .batch_item_failures
                .iter()
                .any(|f| Some(f.item_identifier.as_str()) == m.message_id());
            if let (false, Some(handle)) = (failed, m.receipt_handle()) {
                self.env
                    .sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("delete from {queue}: {}", sqs_error(e)));
            }
        }
        Some((received.len(), response))
    }

    /// Polls `queue` into `consumer` until a receive comes back empty (at most 100 polls);
    /// the responses, in order.
    pub async fn drain<C: Consumer>(&self, queue: &str, consumer: &C) -> Vec<SqsBatchResponse> {
        let mut responses = Vec::new();
        while let Some((_, r)) = self.poll(queue, consumer).await {
            responses.push(r);
            assert!(responses.len() < 100, "{queue} never drained");
        }
        responses
    }

    /// The assignment queue into the app's assigner.
    pub async fn drain_assignments(&self) -> Vec<SqsBatchResponse> {
        self.drain("AssignmentQueue", &self.assigner).await
    }

    /// The outbound queue into `sender`.
    pub async fn drain_outbound(&self, sender: &Sender) -> Vec<SqsBatchResponse> {
        self.drain("OutboundQueue", sender).await
    }

    /// Takes (receives and deletes) everything on `queue`, decoded as `T`.
    pub async fn received<T: serde::de::DeserializeOwned>(&self, queue: &str) -> Vec<T> {
        self.env
            .receive_all(queue)
            .await
            .iter()
            .map(|m| {
                let body = m.body().unwrap_or_default();
                serde_json::from_str(body)
                    .unwrap_or_else(|e| panic!("{queue} holds an unexpected body ({e}): {body}"))
            })
            .collect()
    }

    /// Everything on the outbound queue, mark-as-read included.
    pub async fn outbound_all(&self) -> Vec<OutboundMessage> {
        self.received("OutboundQueue").await
    }

    /// The messages on the outbound queue, mark-as-read left out.
    pub async fn outbound(&self) -> Vec<OutboundMessage> {
        let mut all = self.outbound_all().await;
        all.retain(|m| !is_read(m));
        all
    }

    /// The assign jobs on the assignment queue (relays of messages after the hand-off left
    /// out; any other job fails the test).
    pub async fn jobs(&self) -> Vec<AssignRequest> {
        self.received::<AssignmentJob>("AssignmentQueue")
            .await
            .into_iter()
            .filter_map(|j| match j {
                AssignmentJob::Assign(r) => Some(r),
                AssignmentJob::Relay(_) => None,
                other => panic!("unexpected job {other:?}"),
            })
            .collect()
    }

    /// How many messages `queue` holds, visible or in flight.
    pub async fn queue_depth(&self, queue: &str) -> usize {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let a = self
            .env
            .sqs
            .get_queue_attributes()
            .queue_url(self.env.queue_url(queue))
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap_or_else(|e| panic!("attributes of {queue}: {}", sqs_error(e)));
        a.attributes()
            .map(|m| m.values().map(|v| v.parse::<usize>().unwrap_or(0)).sum())
            .unwrap_or(0)
    }

    // ------------------------------------------------------------------ items and stores

    /// The state table's physical name.
    pub fn table(&self) -> &str {
        self.env.table("StateTable")
    }

    fn dynamo_table(&self) -> DynamoTable {
        DynamoTable::new(self.env.dynamo.clone(), self.table())
    }

    pub fn routing(&self) -> RoutingStore {
        RoutingStore::new(self.dynamo_table())
    }

    pub fn surveys(&self) -> DynamoSurveyStore {
        DynamoSurveyStore::new(self.dynamo_table())
    }

    pub fn conversations(&self) -> DynamoConversationStore {
        DynamoConversationStore::new(self.dynamo_table())
    }

    /// The transcript store on the app's table.
    pub fn transcript(&self) -> prechat::store::transcript::DynamoTranscript {
        prechat::store::transcript::DynamoTranscript::new(prechat::store::DynamoTable::new(
            self.env.dynamo.clone(),
            self.table(),
        ))
    }

    /// A conversation's whole transcript (up to 100 lines), oldest first.
    pub async fn transcript_entries(
        &self,
        conversation_id: &str,
    ) -> Vec<prechat::transcript::Entry> {
        use prechat::store::transcript::TranscriptLog as _;
        let request = prechat::transcript::PageRequest {
            limit: 100,
            ..Default::default()
        };
        self.transcript()
            .page(conversation_id, &request)
            .await
            .unwrap_or_else(|e| panic!("transcript of {conversation_id}: {e}"))
            .entries
    }

    pub fn delivery_log(&self) -> DynamoDeliveryLog {
        DynamoDeliveryLog::new(self.dynamo_table())
    }

    /// One item of the state table (consistent read).
    pub async fn item(&self, pk: impl Into<String>, sk: &str) -> Option<Item> {
        self.env
            .dynamo
            .get_item()
            .table_name(self.table())
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "get item: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })
            .item
    }

    /// The contact item (`PROFILE`); fails the test when there is none.
    pub async fn contact(&self, who: &ContactRef) -> Item {
        let key = who.key().unwrap_or_else(|| panic!("{who:?} has no key"));
        self.item(contact_pk(PNID, &key), "PROFILE")
            .await
            .unwrap_or_else(|| panic!("no contact item for {key}"))
    }

    /// The contact's current conversation item (`CONV`).
    pub async fn conversation(&self, who: &ContactRef) -> Item {
        let contact = self.contact(who).await;
        let id = s(&contact, "conversation_id").to_owned();
        self.item(conversation_pk(&id), "CONV")
            .await
            .unwrap_or_else(|| panic!("no conversation item {id}"))
    }

    /// A web visitor's contact item (`CONTACT#web#V.{id}`, `PROFILE`); fails the test when
    /// there is none.
    pub async fn web_contact(&self, who: &ContactRef) -> Item {
        let key = who.key().unwrap_or_else(|| panic!("{who:?} has no key"));
        self.item(
            contact_pk(prechat::webchat::WEB_PHONE_NUMBER_ID, &key),
            "PROFILE",
        )
        .await
        .unwrap_or_else(|| panic!("no web contact item for {key}"))
    }

    /// A web visitor's current conversation item (`CONV`).
    pub async fn web_conversation(&self, who: &ContactRef) -> Item {
        let contact = self.web_contact(who).await;
        let id = s(&contact, "conversation_id").to_owned();
        self.item(conversation_pk(&id), "CONV")
            .await
            .unwrap_or_else(|| panic!("no conversation item {id}"))
    }

    /// The contact item's JSON document (`doc`).
    pub async fn contact_doc(&self, who: &ContactRef) -> Json {
        let contact = self.contact(who).await;
        serde_json::from_str(s(&contact, "doc"))
            .unwrap_or_else(|e| panic!("contact doc is not JSON: {e}"))
    }

    /// Runs `prechat-admin` with `args` against this app's table (`--table` added first).
    pub async fn admin(&self, args: &[&str]) -> Result<String, prechat::admin::AdminError> {
        let mut all = vec!["--table".to_owned(), self.table().to_owned()];
        all.extend(args.iter().map(|a| a.to_string()));
        prechat::admin::run(all).await
    }

    // ------------------------------------------------------------------ binaries

    /// Runs `package`'s real binary under cargo-lambda's emulator with the template's
    /// environment for `function` (logical id) plus `extra` and the moto endpoint and keys,
    /// invokes it with `event_file`; returns its JSON reply and the emulator's log.
    pub async fn run_binary(
        &self,
        package: &str,
        function: &str,
        event_file: &std::path::Path,
        extra: &[(&str, &str)],
    ) -> (Json, String) {
        let mut vars = self.function_env(function);
        vars.insert("AWS_ENDPOINT_URL".into(), crate::endpoint());
        vars.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
        vars.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (package, event_file) = (package.to_owned(), event_file.to_owned());
        tokio::task::spawn_blocking(move || {
            let vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let emulator = crate::lambda::Emulator::start(&package, &vars);
            let reply = emulator.invoke_file(&package, &event_file);
            (reply, emulator.log_text())
        })
        .await
        .unwrap_or_else(|e| panic!("the emulator thread failed: {e}"))
    }
}

fn build_assigner(
    template: &Template,
    names: &Names,
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    clock: &Clock,
    webhook_secret: Option<&str>,
) -> AgentAssigner {
    let env = template.environment("AgentAssignerFunction", names);
    let config =
        prechat::entrypoints::assigner::AssignerConfig::from_lookup(|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("agent-assigner from the template: {e}"));
    let notifier = webhook_secret
        .map(|s| WebhookNotifier::new(Secret::new(s)).unwrap_or_else(|e| panic!("notifier: {e}")));
    AgentAssigner::new(
        RoutingStore::new(DynamoTable::new(dynamo.clone(), config.table)),
        SqsQueue::new(sqs.clone(), config.outbound_queue_url),
        SqsDeadLetters::new(sqs.clone(), Some(config.dead_letter_queue_url)),
        notifier,
        clock.clone(),
    )
}

fn engine_config(
    template: &Template,
    names: &Names,
    edit: impl FnOnce(&mut SurveyEngineConfig),
) -> SurveyEngineConfig {
    let mut env = template.environment("SurveyEngineFunction", names);
    // Tests publish surveys and expect the next conversation to see them at once.
    env.insert("PRECHAT_SURVEY_CACHE_SECONDS".into(), "0".into());
    let mut config = SurveyEngineConfig::from_lookup(|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("survey-engine from the template: {e}"));
    edit(&mut config);
    config
}

fn failed_ids(r: SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

fn sqs_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_sqs::error::SdkError<E, R>,
) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

// ---------------------------------------------------------------------- small helpers

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute of an item ("" when absent or not a string).
pub fn s<'a>(item: &'a Item, k: &str) -> &'a str {
    item.get(k)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or("")
}

/// A number attribute of an item, as written ("" when absent or not a number).
pub fn n<'a>(item: &'a Item, k: &str) -> &'a str {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .map(String::as_str)
        .unwrap_or("")
}

/// Ana: a US contact with a BSUID, a phone number and a profile name.
pub fn ana() -> ContactRef {
    ContactRef {
        user_id: Some("US.13491208655302741918".into()),
        wa_id: Some("16505551234".into()),
        profile_name: Some("Ana López".into()),
        username: None,
    }
}

/// A web chat visitor (`V.{visitor_id}` as the user id, no WhatsApp number) named `name`.
pub fn visitor(visitor_id: &str, name: &str) -> ContactRef {
    ContactRef {
        user_id: Some(prechat::webchat::visitor_key(visitor_id)),
        wa_id: None,
        profile_name: Some(name.into()),
        username: None,
    }
}

/// A text message.
pub fn text(s: &str) -> MessageContent {
    MessageContent::Text { body: s.into() }
}

/// A tap on a reply button (id and title alike).
pub fn tap(id: &str) -> MessageContent {
    MessageContent::ButtonReply {
        id: id.into(),
        title: id.into(),
    }
}

/// Whether an outbound message is a mark-as-read.
pub fn is_read(m: &OutboundMessage) -> bool {
    matches!(m.body, OutboundBody::MarkRead { .. })
}

/// The text a contact reads in an outbound message ("" for other kinds).
pub fn body_text(m: &OutboundMessage) -> &str {
    match &m.body {
        OutboundBody::Text { body, .. }
        | OutboundBody::Buttons { body, .. }
        | OutboundBody::List { body, .. } => body,
        _ => "",
    }
}

/// The message id of an inbound message event.
pub fn message_id(e: &InboundEvent) -> &str {
    match e {
        InboundEvent::Message(m) => &m.message_id,
        other => panic!("not a message: {other:?}"),
    }
}
