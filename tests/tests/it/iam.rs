//! Least privilege, proven by running each function with credentials whose only policy is the
//! one the template grants it, against a moto that enforces IAM.
//!
//! moto 5.2.5 enforces IAM once `/moto-api/reset-auth` (or `INITIAL_NO_AUTH_ACTION_COUNT`)
//! says so, for the whole process: so this test starts its OWN moto. It evaluates the inline
//! policies of IAM users created in it, with two limits the translation below accounts for:
//! - it authorises an operation under its own name: `dynamodb:TransactWriteItems` (real IAM
//!   authorises each part: Put, Update, Delete), `sqs:SendMessageBatch` (real IAM:
//!   `sqs:SendMessage`), `sqs:ChangeMessageVisibilityBatch`;
//! - DynamoDB and SSM requests are checked against resource `*` (it knows no table or
//!   parameter ARN), so their statements' resources become `*`; SQS requests are checked
//!   against the queue's real ARN.
//!
//! Which parts a transaction needs and which ARNs each function names are checked statically
//! in `template.rs` (`each_function_is_granted_exactly_the_actions_its_code_uses`,
//! `ssm_read_is_granted_only_on_the_parameters_a_function_reads_and_that_are_set`).
//! The deployment uses the template's defaults and only the SSM parameters the README's
//! deploy section creates, so this also proves every function starts with just those.

use prechat::queue::dlq::SqsDeadLetters;
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::Method;
use prechat::clock::Clock;
use prechat::entrypoints::agent_api::{AgentApi, AgentApiConfig};
use prechat::entrypoints::assigner::AgentAssigner;
use prechat::entrypoints::ingest::{Ingest, Outcome, APP_SECRET};
use prechat::entrypoints::init;
use prechat::entrypoints::sender::{ReplySender, SenderConfig, SqsVisibility, ACCESS_TOKEN};
use prechat::entrypoints::survey_engine::{SurveyEngine, SurveyEngineConfig};
use prechat::entrypoints::webchat::{WebChat, WebChatConfig, TOKEN_SECRET};
use prechat::queue::SqsQueue;
use prechat::routing::job::{AssignRequest, AssignmentJob, HandoffReason};
use prechat::store::delivery_log::DynamoDeliveryLog;
use prechat::store::routing::RoutingStore;
use prechat::store::DynamoTable;
use prechat::whatsapp::graph_client::{GraphClient, SecretToken};
use prechat_tests::api::{event as api_event, json_of, user_claims};
use prechat_tests::cfn::{list, Names, Template, REGION};
use prechat_tests::local::meta::{self, Business, SimContact, SimInput};
use prechat_tests::provision::{self, Provisioned};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The SSM parameters the README's deploy section creates (the template's default names).
const README_SECRETS: &[(&str, &str)] = &[
    ("VerifyTokenParameter", "verify-token-1"),
    ("AppSecretParameter", "app-secret-1"),
    ("AccessTokenParameter", "access-token-1"),
    ("WebChatTokenSecretParameter", "webchat-secret-1"),
];

/// An environment lookup, boxed (the sender's token source holds one).
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

fn encode_form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A moto process of this test only; stopped (by its PID) on drop.
struct OwnMoto {
    child: Child,
    url: String,
}

impl OwnMoto {
    fn start() -> OwnMoto {
        let port = prechat_tests::lambda::free_port();
        let root = prechat_tests::workspace_root();
        let child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("xtask/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start .venv/bin/python xtask/moto_server.py: {e}"));
        let moto = OwnMoto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    async fn sdk(&self, key: &str, secret: &str) -> SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                key, secret, None, None, "iam-test",
            ))
            .load()
            .await
    }

    /// One IAM Query-protocol call, made while moto does not check signatures yet.
    async fn iam(&self, params: &[(&str, &str)]) -> String {
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0";
        let mut form = vec![("Version", "2010-05-08")];
        form.extend_from_slice(params);
        let resp = reqwest::Client::new()
            .post(&self.url)
            .header("authorization", auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(&form))
            .send()
            .await
            .unwrap_or_else(|e| panic!("IAM {params:?}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }

    /// A user whose only policy is `statements`; returns its access key.
    async fn user(&self, name: &str, statements: Vec<Value>) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)])
            .await;
        let doc = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "template"),
            ("PolicyDocument", &doc),
        ])
        .await;
        let xml = self
            .iam(&[("Action", "CreateAccessKey"), ("UserName", name)])
            .await;
        let tag = |t: &str| {
            let start = xml.find(&format!("<{t}>")).map(|i| i + t.len() + 2);
            let end = xml.find(&format!("</{t}>"));
            match (start, end) {
                (Some(s), Some(e)) => xml[s..e].to_owned(),
                _ => panic!("no {t} in {xml}"),
            }
        };
        (tag("AccessKeyId"), tag("SecretAccessKey"))
    }

    /// From now on every request must be signed by a user allowed to make it.
    async fn enforce_iam(&self) {
        reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.url))
            .body("0")
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("moto reset-auth: {e}"));
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The template's policy for `function`, as moto evaluates it (see the module docs).
fn for_moto(statements: Vec<Value>) -> Vec<Value> {
    statements
        .into_iter()
        .map(|mut s| {
            let mut actions = list(&s["Action"]);
            let mut extra = Vec::new();
            for a in &actions {
                match a.as_str() {
                    "sqs:SendMessage" => extra.push("sqs:SendMessageBatch"),
                    "sqs:ChangeMessageVisibility" => extra.push("sqs:ChangeMessageVisibilityBatch"),
                    "dynamodb:PutItem" | "dynamodb:UpdateItem" | "dynamodb:DeleteItem" => {
                        extra.push("dynamodb:TransactWriteItems")
                    }
                    _ => {}
                }
            }
            actions.extend(extra.into_iter().map(str::to_owned));
            actions.sort();
            actions.dedup();
            if actions
                .iter()
                .any(|a| a.starts_with("dynamodb:") || a.starts_with("ssm:"))
            {
                s["Resource"] = json!("*");
            }
            s["Action"] = json!(actions);
            s
        })
        .collect()
}

struct Deployment {
    /// Kept for its `Drop`: the moto process lives as long as the deployment.
    _moto: OwnMoto,
    template: Template,
    names: Names,
    resources: Provisioned,
    operator: SdkConfig,
    /// Function logical id -> its SDK configuration (its user's keys).
    sdk: BTreeMap<String, SdkConfig>,
}

impl Deployment {
    async fn new() -> Deployment {
        let moto = OwnMoto::start();
        let setup = moto.sdk("testing", "testing").await;
        let template = Template::load();
        let resources = provision::provision(
            &aws_sdk_dynamodb::Client::new(&setup),
            &aws_sdk_sqs::Client::new(&setup),
            &provision::read_template(&prechat_tests::template_path()).unwrap(),
            "iam",
        )
        .await
        .unwrap_or_else(|e| panic!("provision: {e}"));
        let names = prechat_tests::app::provisioned_names(&template, &resources, &[]);
        let ssm = aws_sdk_ssm::Client::new(&setup);
        for (param, value) in README_SECRETS {
            ssm.put_parameter()
                .name(format!("/{}", names.parameters[*param]))
                .value(*value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {param}: {e:?}"));
        }
        let all = vec![json!({"Effect": "Allow", "Action": "*", "Resource": "*"})];
        let (k, s) = moto.user("operator", all).await;
        let operator = moto.sdk(&k, &s).await;
        let mut sdk = BTreeMap::new();
        for (id, _) in template.resources("AWS::Serverless::Function") {
            let mut policy = for_moto(template.statements(&id, &names));
            if policy.is_empty() {
                // Granted nothing (ws-authorizer without a log key): IAM refuses an empty
                // policy document, and denying everything is what no grant means.
                policy.push(json!({"Effect": "Deny", "Action": "*", "Resource": "*"}));
            }
            let (k, s) = moto.user(&id, policy).await;
            sdk.insert(id, moto.sdk(&k, &s).await);
        }
        moto.enforce_iam().await;
        Deployment {
            _moto: moto,
            template,
            names,
            resources,
            operator,
            sdk,
        }
    }

    /// The function's environment as the template sets it, plus `extra`.
    fn env(&self, function: &str, extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut env = self.template.environment(function, &self.names);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        move |k| env.get(k).cloned()
    }

    fn sdk(&self, function: &str) -> &SdkConfig {
        &self.sdk[function]
    }

    /// Receives (as the operator) what is on a queue, as Lambda's event source would hand it.
    async fn take(&self, queue: &str) -> SqsEvent {
        let sqs = aws_sdk_sqs::Client::new(&self.operator);
        let url = &self.resources.queue_urls[queue];
        let mut all = Vec::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive {queue}: {e:?}"));
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            for m in &batch {
                let handle = m.receipt_handle().unwrap_or_default();
                let _ = sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
            all.extend(batch);
        }
        let arn = &self.resources.queue_arns[queue];
        prechat_tests::local::esm::to_sqs_event(&all, arn).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn engine_on(d: &Deployment, function: &str) -> SurveyEngine {
    let lookup = d.env(function, &[]);
    // As each main reads it: the timer consumes no queue, so it has no dead-letter queue.
    let config = if function == "SurveyTimerFunction" {
        SurveyEngineConfig::timer_from_lookup(lookup)
    } else {
        SurveyEngineConfig::from_lookup(lookup)
    }
    .unwrap();
    let sdk = d.sdk(function);
    SurveyEngine::from_parts(
        &config,
        aws_sdk_dynamodb::Client::new(sdk),
        aws_sdk_sqs::Client::new(sdk),
    )
    .unwrap()
}

/// ingest -> engine -> sender, the timer and the assigner, each under its own policy.
#[tokio::test]
async fn every_function_runs_with_only_the_permissions_the_template_grants_it() {
    let d = Deployment::new().await;

    // webhook-verify: its token (one GetParameters).
    let sdk = d.sdk("WebhookVerifyFunction");
    let lookup = d.env("WebhookVerifyFunction", &[]);
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let token = init::load_secrets(&ssm, &["WHATSAPP_VERIFY_TOKEN"], &[], lookup).await;
    assert_eq!(token.unwrap().0[0].expose(), "verify-token-1");

    // webhook-ingest: a signed delivery is queued.
    let sdk = d.sdk("WebhookIngestFunction");
    let lookup = d.env("WebhookIngestFunction", &[]);
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let [secret] = init::load_secrets(&ssm, &[APP_SECRET], &[], &lookup)
        .await
        .unwrap()
        .0
        .try_into()
        .unwrap();
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        lookup("PRECHAT_INBOUND_QUEUE_URL").unwrap(),
    );
    let ingest = Ingest::new(&secret, queue);
    let ana = SimContact::new("Ana", Some("+49 151 2345678"), None).unwrap();
    let input = SimInput::Text { body: "hi".into() };
    let hook = meta::message_webhook(&Business::default(), &ana, "wamid.IAM1", now(), &input);
    let body = hook.to_string();
    let sig = meta::sign("app-secret-1", body.as_bytes());
    let outcome = ingest
        .ingest(&Method::POST, Some(sig.as_bytes()), body.as_bytes())
        .await;
    assert!(matches!(outcome, Outcome::Queued { .. }), "{outcome:?}");

    // survey-engine: the message starts the survey and queues the greeting.
    let engine = engine_on(&d, "SurveyEngineFunction");
    let _ = init::load_secrets(
        &aws_sdk_ssm::Client::new(d.sdk("SurveyEngineFunction")),
        &[],
        &[],
        d.env("SurveyEngineFunction", &[]),
    )
    .await
    .unwrap();
    let reply = engine.handle(d.take("InboundQueue").await).await;
    assert!(reply.batch_item_failures.is_empty(), "{reply:?}");

    // reply-sender: the replies go to the (stub) Graph API and are recorded.
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.OUT1" }]
        })))
        .mount(&graph)
        .await;
    let sender = sender_on(&d, &graph.uri()).await;
    let replies = d.take("OutboundQueue").await;
    assert!(!replies.records.is_empty(), "the engine queued no reply");
    let reply = sender.handle(replies).await;
    assert!(reply.batch_item_failures.is_empty(), "{reply:?}");
    assert!(!graph
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());

    // survey-timer: 31 minutes later Ana gets a reminder.
    let later = now() + 31 * 60;
    let timer = engine_on(&d, "SurveyTimerFunction").with_clock(Clock::at_unix(later));
    let report = timer.handle_tick(json!({})).await.unwrap();
    assert_eq!(report.reminded, 1, "{report:?}");
    assert_eq!(d.take("OutboundQueue").await.records.len(), 1);

    // agent-assigner: a hand-off is assigned to the one online agent.
    seed_routing(&d).await;
    let assigner = assigner_on(&d).await;
    let reply = assigner.handle(assign_event(&d).await).await;
    assert!(reply.batch_item_failures.is_empty(), "{reply:?}");
    assert!(!d.take("OutboundQueue").await.records.is_empty());

    // webchat: a visitor writes, reads their conversation, submits the form.
    webchat_runs(&d).await;

    // agent-api: ann reads, answers and closes the conversation, goes online, lists.
    let api = api_on(&d).await;
    let ann = || Some(user_claims("ann", "[agents]"));
    let call = |m: &str, p: &str, body: Option<&str>| {
        let headers = json!({"idempotency-key": "iam-1"});
        api.handle(api_event(m, p, ann(), headers, body))
    };
    for (m, p, body, expected) in [
        ("GET", "/api/me", None, 200),
        ("GET", "/api/conversations/conv-iam", None, 200),
        (
            "POST",
            "/api/conversations/conv-iam/messages",
            Some(r#"{"text":"hi"}"#),
            202,
        ),
        ("PUT", "/api/me/status", Some(r#"{"status":"online"}"#), 200),
        ("GET", "/api/conversations?state=waiting", None, 200),
        ("POST", "/api/conversations/conv-iam/close", None, 200),
        ("GET", "/api/conversations?state=closed", None, 200),
    ] {
        let (status, body) = json_of(&call(m, p, body).await);
        assert_eq!(status, expected, "{m} {p}: {body}");
    }
}

/// webchat as `WebChat::from_env` builds it: a visitor's message (delivered to the engine,
/// which starts their conversation), the conversation read back, a form submission.
async fn webchat_runs(d: &Deployment) {
    let f = "WebChatFunction";
    let lookup = d.env(f, &[]);
    let sdk = d.sdk(f);
    let [secret] = init::load_secrets(
        &aws_sdk_ssm::Client::new(sdk),
        &[TOKEN_SECRET],
        &[],
        &lookup,
    )
    .await
    .unwrap()
    .0
    .try_into()
    .unwrap();
    assert_eq!(secret.expose(), "webchat-secret-1");
    let config = WebChatConfig::from_lookup(&lookup).unwrap();
    let chat = WebChat::from_parts(
        &config,
        &secret,
        aws_sdk_dynamodb::Client::new(sdk),
        aws_sdk_sqs::Client::new(sdk),
        Clock::system(),
    )
    .unwrap();
    let token =
        prechat::webchat::token::VisitorTokens::new(&secret).issue("V.iam-visitor-0000001", now());
    let headers =
        json!({"origin": "http://localhost:8080", "authorization": format!("Bearer {token}")});
    let call = |m: &str, p: &str, body: Option<&str>| {
        chat.handle(api_event(m, p, None, headers.clone(), body))
    };
    let (status, body) = json_of(
        &call(
            "POST",
            "/webchat/messages",
            Some(r#"{"text":"hola","nonce":"nonce-iam-1"}"#),
        )
        .await,
    );
    assert_eq!(status, 202, "{body}");
    let reply = engine_on(d, "SurveyEngineFunction")
        .handle(d.take("InboundQueue").await)
        .await;
    assert!(reply.batch_item_failures.is_empty(), "{reply:?}");
    let _ = d.take("OutboundQueue").await;
    let (status, body) = json_of(&call("GET", "/webchat/conversation", None).await);
    assert_eq!(status, 200, "{body}");
    let (status, body) = json_of(&call("GET", "/webchat/form?lang=en", None).await);
    assert_eq!(status, 200, "{body}");
    let form = json!({"nonce": "nonce-iam-2", "answers": {
        "language": "en", "consent": "yes", "name": "Ana", "inquiry": "sales",
        "country": "ES", "description": "Buying"
    }});
    let (status, body) =
        json_of(&call("POST", "/webchat/conversations", Some(&form.to_string())).await);
    assert_eq!(status, 202, "{body}");
    assert_eq!(d.take("InboundQueue").await.records.len(), 1);
}

/// As `AgentApi::from_env` builds it, on the conversation the assigner gave ann (with the
/// contact the survey engine would have recorded on it).
async fn api_on(d: &Deployment) -> AgentApi {
    let f = "AgentApiFunction";
    let lookup = d.env(f, &[]);
    let sdk = d.sdk(f);
    init::load_secrets(&aws_sdk_ssm::Client::new(sdk), &[], &[], &lookup)
        .await
        .unwrap();
    aws_sdk_dynamodb::Client::new(&d.operator)
        .update_item()
        .table_name(&d.resources.tables["StateTable"])
        .set_key(Some(prechat::store::keys::conversation("conv-iam").item()))
        .update_expression("SET phone_number_id = :p, contact_key = :k, last_inbound_at = :t")
        .expression_attribute_values(":p", AttributeValue::S("106540352242922".into()))
        .expression_attribute_values(":k", AttributeValue::S("US.13491208655302741918".into()))
        .expression_attribute_values(":t", AttributeValue::N(now().to_string()))
        .send()
        .await
        .unwrap();
    let config = AgentApiConfig::from_lookup(&lookup).unwrap();
    AgentApi::from_parts(
        &config,
        aws_sdk_dynamodb::Client::new(sdk),
        aws_sdk_sqs::Client::new(sdk),
        Clock::system(),
    )
    .unwrap()
}

async fn sender_on(
    d: &Deployment,
    graph: &str,
) -> ReplySender<GraphClient<SecretToken<Box<dyn Fn(&str) -> Option<String> + Send + Sync>>>> {
    let f = "ReplySenderFunction";
    let lookup = d.env(f, &[("PRECHAT_GRAPH_BASE_URL", graph)]);
    let config = SenderConfig::from_lookup(&lookup).unwrap();
    let sdk = d.sdk(f);
    let boxed: Lookup = Box::new(lookup);
    let token = SecretToken::with_lookup(aws_sdk_ssm::Client::new(sdk), ACCESS_TOKEN, boxed);
    let graph = GraphClient::new(config.graph.clone(), token).await.unwrap();
    let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone());
    let visibility = SqsVisibility::new(
        aws_sdk_sqs::Client::new(sdk),
        config.outbound_queue_url.clone(),
    );
    let parking = SqsDeadLetters::new(
        aws_sdk_sqs::Client::new(sdk),
        Some(config.dead_letter_queue_url.clone()),
    );
    ReplySender::new(
        config,
        graph,
        DynamoDeliveryLog::new(table),
        visibility,
        parking,
    )
}

async fn seed_routing(d: &Deployment) {
    let table = d.resources.tables["StateTable"].clone();
    let store = RoutingStore::new(DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&d.operator),
        table,
    ));
    let team = serde_json::from_value(json!({"id": "support", "name": "Support"})).unwrap();
    store.put_team(&team).await.unwrap();
    let routing = serde_json::from_value(json!({"default_team": "support"})).unwrap();
    store.put_routing(&routing).await.unwrap();
    let agent = serde_json::from_value(json!({
        "id": "ann", "name": "Ann", "teams": ["support"], "status": "online", "capacity": 2
    }))
    .unwrap();
    store.upsert_agent(&agent).await.unwrap();
}

/// As `AgentAssigner::from_env` builds it: no webhook secret configured by default.
async fn assigner_on(d: &Deployment) -> AgentAssigner {
    let f = "AgentAssignerFunction";
    let lookup = d.env(f, &[]);
    assert!(lookup("PRECHAT_AGENT_WEBHOOK_SECRET_PARAM").is_none());
    let sdk = d.sdk(f);
    init::load_secrets(&aws_sdk_ssm::Client::new(sdk), &[], &[], &lookup)
        .await
        .unwrap();
    let table = DynamoTable::new(
        aws_sdk_dynamodb::Client::new(sdk),
        lookup("PRECHAT_TABLE").unwrap(),
    );
    let outbound = SqsQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        lookup("PRECHAT_OUTBOUND_QUEUE_URL").unwrap(),
    );
    let parking = SqsDeadLetters::new(
        aws_sdk_sqs::Client::new(sdk),
        lookup("PRECHAT_ASSIGNMENT_DLQ_URL"),
    );
    AgentAssigner::new(
        RoutingStore::new(table),
        outbound,
        parking,
        None,
        Clock::system(),
    )
}

/// A hand-off job, put on the assignment queue (as the engine would) and taken off it.
async fn assign_event(d: &Deployment) -> SqsEvent {
    let job = AssignmentJob::Assign(AssignRequest {
        job_id: "handoff:conv-iam".into(),
        phone_number_id: "106540352242922".into(),
        contact: prechat::whatsapp::contact::ContactRef {
            user_id: Some("US.13491208655302741918".into()),
            ..Default::default()
        },
        conversation_id: "conv-iam".into(),
        language: "en".into(),
        reason: HandoffReason::Completed,
        answers: BTreeMap::new(),
        fields: BTreeMap::new(),
        last_inbound_at: now(),
        requested_at: now(),
        supersedes: false,
        vars: Default::default(),
    });
    aws_sdk_sqs::Client::new(&d.operator)
        .send_message()
        .queue_url(&d.resources.queue_urls["AssignmentQueue"])
        .message_body(serde_json::to_string(&job).unwrap())
        .message_group_id("g")
        .message_deduplication_id("handoff-conv-iam")
        .send()
        .await
        .unwrap();
    d.take("AssignmentQueue").await
}

/// The policies are enforced: what a function is not granted is refused.
#[tokio::test]
async fn actions_outside_a_function_s_policy_are_denied() {
    let d = Deployment::new().await;
    // webhook-ingest may queue on the inbound queue only.
    let sqs = aws_sdk_sqs::Client::new(d.sdk("WebhookIngestFunction"));
    let denied = sqs
        .send_message()
        .queue_url(&d.resources.queue_urls["OutboundQueue"])
        .message_body("{}")
        .message_group_id("g")
        .message_deduplication_id("d")
        .send()
        .await;
    let text = format!("{:?}", denied.expect_err("ingest must not send replies"));
    assert!(text.contains("AccessDenied"), "{text}");
    // survey-engine may not scan the table.
    let dynamo = aws_sdk_dynamodb::Client::new(d.sdk("SurveyEngineFunction"));
    let denied = dynamo
        .scan()
        .table_name(&d.resources.tables["StateTable"])
        .send()
        .await;
    let text = format!("{:?}", denied.expect_err("the engine must not scan"));
    assert!(text.contains("AccessDenied"), "{text}");
}
