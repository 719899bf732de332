//! Crate `prechat-local` (a developer tool, not part of any Lambda): the local stack behind
//! `cargo xtask local`, the whole pipeline on one machine, on the same
//! entrypoints the Lambdas run, against moto (DynamoDB and SQS) started by xtask.
//!
//! - [`settings`](Settings): `PRECHAT_PORT`, `WHATSAPP_*`, `PRECHAT_GRAPH_FAULT_RATE`,
//!   `PRECHAT_GRAPH_STATUS_MS`, `PRECHAT_LOCAL_ESM_CONCURRENCY`, `PRECHAT_LOCAL_PREFIX`.
//! - [`apigw`]: HTTP request -> API Gateway HTTP API event -> `lambda_http::Request`.
//! - [`cognito`]: the local user pool in moto (users, groups, passwords, `/local/token`).
//! - [`jwt`]: the HTTP API JWT authorizer in front of `/api/*`, exactly as API Gateway checks.
//! - [`meta`]: Meta-shaped, signed webhook deliveries for the simulated users.
//! - [`graph`]: the local Graph API and its outbox.
//! - [`esm`]: the SQS event source mapping emulator that drives the consumers.
//! - [`events`]: the signed sample webhook events (`cargo xtask events`).
//! - [`pipeline`]: which entrypoints run (one line each), agent-api on `/api/*` included.
//! - [`seed`]: the default survey, sample teams, routing and agents.
//! - [`server`]: the front door (`/webhook`, `/local/*`, the chat simulator page).
//! - [`inbox`]: the agent inbox page through agent-api, and its same-origin Cognito proxy.
//! - [`websocket`]: the WebSocket API (`/ws`: ws-authorizer, ws-connections) and its
//!   management API (`/@connections/{id}`, `PRECHAT_WS_MANAGEMENT_URL`).

pub mod apigw;
pub mod cognito;
pub mod esm;
pub mod events;
pub mod graph;
pub mod inbox;
pub mod jwt;
pub mod meta;
pub mod pipeline;
pub mod provision;
pub mod seed;
pub mod server;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prechat::config::{ConfigError, EnvReader};
use prechat::secrets::Secret;
use prechat::store::DynamoTable;

pub use provision::{template_path, workspace_root, Provisioned};

/// The endpoint of the local AWS protocol server; panics with instructions when absent.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if url.starts_with("http://127.") || url.starts_with("http://localhost") => url,
        Ok(url) => panic!(
            "AWS_ENDPOINT_URL={url} is not a loopback address: integration tests only run against a local moto server"
        ),
        Err(_) => panic!(
            "AWS_ENDPOINT_URL is not set: these tests need a local AWS protocol server. Run them with `cargo xtask test`, which starts moto and sets it."
        ),
    }
}

/// SDK configuration for the local server (dummy credentials, fixed region).
pub async fn local_sdk_config() -> aws_config::SdkConfig {
    let endpoint = endpoint();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "prechat-tests",
        ))
        .load()
        .await
}

/// Table and queues are named `local-<LogicalId>` in moto.
pub const PREFIX: &str = "local";

/// The local stack's settings (environment, with defaults for a first run).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `PRECHAT_PORT` (3000).
    pub port: u16,
    /// `WHATSAPP_APP_SECRET` (`local-app-secret`): signs the simulated webhooks.
    pub app_secret: String,
    /// `WHATSAPP_VERIFY_TOKEN` (`local-verify-token`).
    pub verify_token: String,
    /// `WHATSAPP_ACCESS_TOKEN` (`local-access-token`): what the sender presents to the local Graph API.
    pub access_token: String,
    /// `PRECHAT_GRAPH_FAULT_RATE` (0.0): share of Graph API calls answered with error 130429.
    pub fault_rate: f64,
    /// `PRECHAT_GRAPH_STATUS_MS` (400): pause before each sent/delivered/read status webhook.
    pub status_step_ms: u64,
    /// `PRECHAT_LOCAL_ESM_CONCURRENCY` ([`esm::DEFAULT_CONCURRENCY`]): batches of one queue
    /// the event source emulator runs at once (1 to 100).
    pub esm_concurrency: usize,
    /// `PRECHAT_LOCAL_PREFIX` ([`PREFIX`]): names the table, queues and user pool in moto
    /// (`{prefix}-<LogicalId>`), so a second stack on the same moto starts from nothing.
    pub prefix: String,
}

impl Settings {
    pub fn read(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let port = env.parsed_or("PRECHAT_PORT", 3000u16);
        let text = |env: &mut EnvReader<_>, name: &str, default: &str| {
            env.optional(name).unwrap_or_else(|| default.to_owned())
        };
        let app_secret = text(&mut env, "WHATSAPP_APP_SECRET", "local-app-secret");
        let verify_token = text(&mut env, "WHATSAPP_VERIFY_TOKEN", "local-verify-token");
        let access_token = text(&mut env, "WHATSAPP_ACCESS_TOKEN", "local-access-token");
        let fault_rate: f64 = env.parsed_or("PRECHAT_GRAPH_FAULT_RATE", 0.0);
        if !(0.0..=1.0).contains(&fault_rate) {
            env.problem(format!(
                "PRECHAT_GRAPH_FAULT_RATE must be between 0.0 and 1.0, got {fault_rate}"
            ));
        }
        let status_step_ms = env.parsed_or("PRECHAT_GRAPH_STATUS_MS", 400u64);
        let esm_concurrency =
            env.parsed_or("PRECHAT_LOCAL_ESM_CONCURRENCY", esm::DEFAULT_CONCURRENCY);
        if !(1..=100).contains(&esm_concurrency) {
            env.problem(format!(
                "PRECHAT_LOCAL_ESM_CONCURRENCY must be between 1 and 100, got {esm_concurrency}"
            ));
        }
        let prefix = text(&mut env, "PRECHAT_LOCAL_PREFIX", PREFIX);
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !prefix_ok {
            env.problem(format!(
                "PRECHAT_LOCAL_PREFIX must be 1 to 32 letters, digits, '-' or '_', got {prefix:?}"
            ));
        }
        env.finish()?;
        Ok(Settings {
            port,
            app_secret,
            verify_token,
            access_token,
            fault_rate,
            status_step_ms,
            esm_concurrency,
            prefix,
        })
    }
}

/// Runs the stack until Ctrl-C or SIGTERM.
pub async fn run() -> Result<(), String> {
    let settings = Settings::read(|k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    let sdk = crate::local_sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let template_path = crate::template_path();
    let template = provision::read_template(&template_path).map_err(|e| e.to_string())?;
    let template_text = std::fs::read_to_string(&template_path).map_err(|e| e.to_string())?;
    let resources = provision::provision(&dynamo, &sqs, &template, &settings.prefix)
        .await
        .map_err(|e| {
            format!(
                "provisioning infra/template.yaml into {}: {e}",
                crate::endpoint()
            )
        })?;
    eprintln!(
        "provisioned {} table(s), {} queue(s)",
        resources.tables.len(),
        resources.queue_urls.len()
    );

    let front = tokio::net::TcpListener::bind(("127.0.0.1", settings.port))
        .await
        .map_err(|e| {
            format!(
                "127.0.0.1:{}: {e} (set PRECHAT_PORT to another port)",
                settings.port
            )
        })?;
    let graph_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("local Graph API: {e}"))?;
    let graph_addr: SocketAddr = graph_listener.local_addr().map_err(|e| e.to_string())?;
    let webhook_url = format!("http://127.0.0.1:{}/webhook", settings.port);

    // The entrypoints read their configuration from the environment, as in Lambda. This runs
    // before any of them is built, and nothing else reads these variables concurrently.
    let table = resources
        .tables
        .get("StateTable")
        .cloned()
        .unwrap_or_default();
    let mut vars: Vec<(&str, String)> = vec![
        ("PRECHAT_TABLE", table.clone()),
        ("PRECHAT_GRAPH_BASE_URL", format!("http://{graph_addr}")),
        ("WHATSAPP_APP_SECRET", settings.app_secret.clone()),
        ("WHATSAPP_VERIFY_TOKEN", settings.verify_token.clone()),
        ("WHATSAPP_ACCESS_TOKEN", settings.access_token.clone()),
        (
            "PRECHAT_WEBCHAT_TOKEN_SECRET",
            "local-webchat-secret".to_owned(),
        ),
        ("PRECHAT_WEBCHAT_ORIGINS", webchat_origins(settings.port)),
    ];
    for (var, queue) in [
        ("PRECHAT_INBOUND_QUEUE_URL", "InboundQueue"),
        ("PRECHAT_OUTBOUND_QUEUE_URL", "OutboundQueue"),
        ("PRECHAT_ASSIGNMENT_QUEUE_URL", "AssignmentQueue"),
        // Each consumer parks what it can never handle in its own queue's DLQ.
        ("PRECHAT_INBOUND_DLQ_URL", "InboundDeadLetterQueue"),
        ("PRECHAT_ASSIGNMENT_DLQ_URL", "AssignmentDeadLetterQueue"),
        ("PRECHAT_OUTBOUND_DLQ_URL", "OutboundDeadLetterQueue"),
    ] {
        if let Some(url) = resources.queue_urls.get(queue) {
            vars.push((var, url.clone()));
        }
    }
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    // What a function run on its own (`cargo lambda watch`) needs to join this stack.
    eprintln!("environment of the local functions:");
    for (k, v) in vars.iter().filter(|(k, _)| k.starts_with("PRECHAT_")) {
        eprintln!("  {k}={v}");
    }

    let scratch = std::env::temp_dir().join(format!("prechat-local-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let assignment_queue = resources.queue_urls.get("AssignmentQueue").cloned();
    for line in seed::seed(&table, assignment_queue.as_deref(), &scratch).await {
        match line {
            Ok(done) => eprintln!("seeded: {done}"),
            Err(e) => eprintln!("not seeded: {e}"),
        }
    }

    let (cognito, authorizer) = start_cognito_named(&template_text, &settings.prefix).await?;
    let state_table = DynamoTable::new(dynamo.clone(), table.clone());
    for line in seed::link_subs(&state_table, &cognito.subs).await {
        match line {
            Ok(done) => eprintln!("seeded: {done}"),
            Err(e) => eprintln!("not seeded: {e}"),
        }
    }
    eprintln!(
        "local Cognito: user pool {} app client {} (issuer {}); sign in with POST /local/token {{\"username\"}}, or with these passwords:",
        cognito.pool_id,
        cognito.client_id,
        cognito.issuer()
    );
    for (user, groups) in cognito::local_users() {
        let password = cognito
            .passwords
            .get(&user)
            .map(String::as_str)
            .unwrap_or("?");
        eprintln!("  {user:<13} {password}  [{}]", groups.join(" "));
    }

    let business = meta::Business::default();
    let outbox = graph::RequestLog::new();
    let graph_api = graph::LocalGraphApi::new(
        outbox.clone(),
        settings.fault_rate,
        Some(graph::StatusTarget {
            webhook_url: webhook_url.clone(),
            app_secret: settings.app_secret.clone(),
            business: business.clone(),
            step: Duration::from_millis(settings.status_step_ms),
        }),
    );
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = axum::serve(graph_listener, graph_api.router()).await {
            eprintln!("local Graph API stopped: {e}");
        }
    })];

    // What the inbox page is told (`/inbox/config.json`): the local app client, the Cognito
    // proxy on this origin, the local WebSocket endpoint.
    for (k, v) in [
        ("PRECHAT_USER_POOL_CLIENT_ID", cognito.client_id.clone()),
        (
            "PRECHAT_COGNITO_ENDPOINT",
            inbox::COGNITO_PROXY_PATH.to_owned(),
        ),
        (
            "PRECHAT_WS_URL",
            format!("ws://127.0.0.1:{}/ws", settings.port),
        ),
        // ws-authorizer trusts the local pool as on AWS it trusts the stack's, and the
        // functions that push post to this stack's management API.
        ("PRECHAT_JWT_ISSUER", cognito.issuer()),
        ("PRECHAT_JWT_AUDIENCE", cognito.client_id.clone()),
        ("PRECHAT_JWKS_URL", cognito.jwks_url()),
        (
            prechat::realtime::push::MANAGEMENT_URL_VAR,
            format!("http://127.0.0.1:{}", settings.port),
        ),
    ] {
        std::env::set_var(k, v);
    }
    let pipeline = pipeline::build(&sdk).await?;
    let batch_sizes = esm::batch_sizes(&template_text);
    for consumer in &pipeline.consumers {
        let (Some(url), Some(arn)) = (
            resources.queue_urls.get(consumer.queue),
            resources.queue_arns.get(consumer.queue),
        ) else {
            return Err(format!(
                "{}: queue {} is not in the template",
                consumer.function, consumer.queue
            ));
        };
        let mapping = esm::EventSourceMapping {
            name: consumer.function.to_owned(),
            queue_url: url.clone(),
            queue_arn: arn.clone(),
            batch_size: batch_sizes
                .get(consumer.queue)
                .copied()
                .unwrap_or(esm::DEFAULT_BATCH_SIZE),
            wait_seconds: 20,
            handler: consumer.handler.clone(),
        };
        // Several batches at once, like Lambda; xtask's moto applies DynamoDB requests one at a
        // time (atomic as in AWS), and the FIFO queue keeps each contact's order.
        tasks.push(mapping.spawn(sqs.clone(), settings.esm_concurrency));
    }

    for scheduled in &pipeline.schedules {
        let (every, run) = (scheduled.every, scheduled.run.clone());
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                run().await;
            }
        }));
    }

    let state = server::AppState::new(
        Secret::new(settings.verify_token.clone()),
        settings.app_secret.clone(),
        business,
        outbox,
        pipeline.webhook_post.clone(),
        pipeline.functions(),
        webhook_url,
        Some(state_table),
    )
    .with_assignment_queue(assignment_queue)
    .with_auth(cognito, authorizer)
    .with_api(pipeline.api.clone())
    .with_webchat(pipeline.webchat.clone())
    .with_websocket(
        pipeline
            .ws_authorizer
            .clone()
            .zip(pipeline.ws_routes.clone())
            .map(|(a, r)| websocket::LocalWebSocketApi::new(a, r)),
    );
    state.set_ready();
    eprintln!(
        "prechat local stack ready: chat simulator http://127.0.0.1:{port}/  inbox http://127.0.0.1:{port}/inbox  realtime ws://127.0.0.1:{port}/ws  webhook http://127.0.0.1:{port}/webhook  Graph API http://{graph_addr}  functions: {}",
        pipeline.functions().join(", "),
        port = settings.port,
    );
    let served = axum::serve(front, server::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    for t in &tasks {
        t.abort();
    }
    served.map_err(|e| e.to_string())
}

/// The local user pool (from the template) and the JWT authorizer that trusts it, as
/// `CognitoJwt` trusts the stack's pool: issuer of the pool, audience = its app client.
pub async fn start_cognito(
    template_text: &str,
) -> Result<(Arc<cognito::LocalCognito>, Arc<jwt::JwtAuthorizer>), String> {
    start_cognito_named(template_text, PREFIX).await
}

/// [`start_cognito`] with the pool named `{prefix}-UserPool`.
pub async fn start_cognito_named(
    template_text: &str,
    prefix: &str,
) -> Result<(Arc<cognito::LocalCognito>, Arc<jwt::JwtAuthorizer>), String> {
    let spec = cognito::PoolSpec::from_template(template_text).map_err(|e| e.to_string())?;
    let pool =
        cognito::LocalCognito::provision(&crate::endpoint(), &format!("{prefix}-UserPool"), &spec)
            .await
            .map_err(|e| format!("local Cognito: {e}"))?;
    let authorizer = jwt::JwtAuthorizer::new(
        pool.issuer(),
        vec![pool.client_id.clone()],
        pool.jwks_url(),
        prechat::clock::Clock::system(),
    );
    Ok((Arc::new(pool), Arc::new(authorizer)))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
    eprintln!("stopping the local stack");
}

/// The origins the local web chat answers: this stack's own (`127.0.0.1` and `localhost`, for
/// a host page served here), then any `PRECHAT_WEBCHAT_ORIGINS` given to the stack (as the
/// process started: a second stack in the same process does not inherit the first's).
fn webchat_origins(port: u16) -> String {
    static GIVEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let given = GIVEN.get_or_init(|| {
        std::env::var("PRECHAT_WEBCHAT_ORIGINS")
            .ok()
            .filter(|v| !v.trim().is_empty())
    });
    let mut origins = format!("http://127.0.0.1:{port},http://localhost:{port}");
    if let Some(more) = given {
        origins.push(',');
        origins.push_str(more);
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_one_error_for_every_bad_setting() {
        let s = Settings::read(|_| None).unwrap();
        assert_eq!(s.port, 3000);
        assert_eq!(s.app_secret, "local-app-secret");
        assert_eq!(s.verify_token, "local-verify-token");
        assert_eq!(s.fault_rate, 0.0);
        assert_eq!(s.prefix, "local");
        let err = Settings::read(|k| match k {
            "PRECHAT_PORT" => Some("http".into()),
            "PRECHAT_GRAPH_FAULT_RATE" => Some("1.5".into()),
            "PRECHAT_LOCAL_PREFIX" => Some("no spaces".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        let s =
            Settings::read(|k| (k == "PRECHAT_GRAPH_FAULT_RATE").then(|| "0.25".into())).unwrap();
        assert_eq!(s.fault_rate, 0.25);
    }
}
