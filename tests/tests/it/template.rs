//! The template, the function crates and the sample events agree with each other.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(prechat_tests::template_path()).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn functions_in_template() -> Vec<(String, Value)> {
    let doc = template();
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn crates_in_functions_dir() -> BTreeSet<String> {
    std::fs::read_dir(prechat_tests::workspace_root().join("functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_function_crate_is_wired_in_the_template_and_vice_versa() {
    let crates = crates_in_functions_dir();
    let mut binaries = BTreeSet::new();
    for (id, f) in functions_in_template() {
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        let bin = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} names no Binary"))
            .to_owned();
        assert!(
            crates.contains(&bin),
            "{id} builds {bin}, but functions/{bin} does not exist"
        );
        binaries.insert(bin);
    }
    assert_eq!(
        binaries, crates,
        "every crate in functions/ must be a function in the template"
    );
}

#[test]
fn every_function_has_a_sample_event_and_its_own_log_group() {
    let events: Vec<String> = std::fs::read_dir(prechat_tests::workspace_root().join("events"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for (id, f) in functions_in_template() {
        let bin = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.starts_with(bin) && e.ends_with(".json")),
            "{id}: no events/{bin}*.json"
        );
        let log_group = &f["Properties"]["LoggingConfig"]["LogGroup"];
        assert!(
            !log_group.is_null(),
            "{id}: no LoggingConfig.LogGroup (log retention)"
        );
    }
}

#[test]
fn no_secret_values_in_the_template() {
    // Secrets are only ever referenced by SSM parameter name (`*_PARAM`).
    for (id, f) in functions_in_template() {
        if let Some(vars) = f["Properties"]["Environment"]["Variables"].as_mapping() {
            for (k, _) in vars {
                let k = k.as_str().unwrap();
                if k.starts_with("WHATSAPP_") {
                    assert!(k.ends_with("_PARAM"), "{id} sets secret {k} in clear");
                }
            }
        }
    }
}

#[test]
fn function_mains_stay_thin() {
    // Logic belongs in `prechat::entrypoints`; a main only builds clients and runs the loop.
    for name in crates_in_functions_dir() {
        let path = prechat_tests::workspace_root()
            .join("functions")
            .join(&name)
            .join("src/main.rs");
        let code_lines = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
            .count();
        assert!(
            code_lines <= 30,
            "functions/{name}/src/main.rs has {code_lines} lines of code"
        );
    }
}

// ------------------------------------------------------------------ deployable as documented

use prechat_tests::cfn::{iam_match, list, Names, Template};

/// Every optional parameter set, for checks of what they switch on.
const ALL_OPTIONAL: &[(&str, &str)] = &[
    ("LogKeyParameter", "prechat/log-key"),
    (
        "AgentWebhookSecretParameter",
        "prechat/agent-webhook-secret",
    ),
    ("AlarmEmail", "ops@example.com"),
    ("IngestReservedConcurrency", "5"),
];

/// What each function's code calls, as IAM authorises it: a `TransactWriteItems` as its
/// parts (here Put, Update and, for the engine's BSUID change, Delete), `SendMessageBatch` as
/// `sqs:SendMessage`, `ChangeMessageVisibilityBatch` as `sqs:ChangeMessageVisibility`. SSM:
/// one `GetParameters` at init (and the sender's re-read after error 190).
/// Found by reading `shared/src/store/*`, `queue/`, `secrets.rs` and the entrypoints.
const USES: &[(&str, &[&str])] = &[
    ("WebhookVerifyFunction", &["ssm:GetParameters"]),
    (
        "WebhookIngestFunction",
        &["sqs:SendMessage", "ssm:GetParameters"],
    ),
    (
        "SurveyEngineFunction",
        &[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "sqs:SendMessage",
            "ssm:GetParameters",
            // Delivery ticks pushed to the agent who wrote the reply.
            "execute-api:ManageConnections",
        ],
    ),
    (
        "SurveyTimerFunction",
        &[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "sqs:SendMessage",
            "ssm:GetParameters",
        ],
    ),
    (
        "AgentAssignerFunction",
        &[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            // A team-webhook delivery kept for a retry is deleted once it went out.
            "dynamodb:DeleteItem",
            "sqs:SendMessage",
            "ssm:GetParameters",
            // Assignments, transfers, closes and contact messages pushed to agents.
            "execute-api:ManageConnections",
        ],
    ),
    (
        "AgentApiFunction",
        &[
            "dynamodb:GetItem",
            // A list page's tickets and their conversations, by key.
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            // Replies and mark-as-read on the outbound queue, drain jobs on the assignment queue.
            "sqs:SendMessage",
            "ssm:GetParameters",
        ],
    ),
    (
        "ReplySenderFunction",
        &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            // Pushes to web visitors: their connections (gsi1), a gone one removed.
            "dynamodb:Query",
            "dynamodb:DeleteItem",
            "execute-api:ManageConnections",
            "sqs:ChangeMessageVisibility",
            // Parking in its own DLQ.
            "sqs:SendMessage",
            "ssm:GetParameters",
        ],
    ),
    // The pool's JWKS is public: no AWS call but the web chat secret and the optional log key.
    ("WsAuthorizerFunction", &["ssm:GetParameters"]),
    (
        "WebChatFunction",
        &[
            // Surveys, the visitor's contact, ticket and agent; the transcript; rate-limit
            // counters (conditional ADD).
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            // The form and the visitor's messages on the inbound queue.
            "sqs:SendMessage",
            "ssm:GetParameters",
        ],
    ),
    (
        "WsConnectionsFunction",
        &[
            // $connect puts the connection item, $disconnect deletes it.
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "ssm:GetParameters",
        ],
    ),
];

/// The SSM parameters (template parameters) each function reads: always, and when set.
const SECRETS: &[(&str, &[&str], &[&str])] = &[
    (
        "WebhookVerifyFunction",
        &["VerifyTokenParameter"],
        &["LogKeyParameter"],
    ),
    (
        "WebhookIngestFunction",
        &["AppSecretParameter"],
        &["LogKeyParameter"],
    ),
    ("SurveyEngineFunction", &[], &["LogKeyParameter"]),
    ("SurveyTimerFunction", &[], &["LogKeyParameter"]),
    (
        "AgentAssignerFunction",
        &[],
        &["AgentWebhookSecretParameter", "LogKeyParameter"],
    ),
    ("AgentApiFunction", &[], &["LogKeyParameter"]),
    (
        "ReplySenderFunction",
        &["AccessTokenParameter"],
        &["LogKeyParameter"],
    ),
    (
        "WsAuthorizerFunction",
        &["WebChatTokenSecretParameter"],
        &["LogKeyParameter"],
    ),
    ("WsConnectionsFunction", &[], &["LogKeyParameter"]),
    (
        "WebChatFunction",
        &["WebChatTokenSecretParameter"],
        &["LogKeyParameter"],
    ),
];

fn allowed(t: &Template, function: &str, n: &Names) -> Vec<(Vec<String>, Vec<String>)> {
    t.statements(function, n)
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| (list(&s["Action"]), list(&s["Resource"])))
        .collect()
}

fn ssm_resources(t: &Template, function: &str, n: &Names) -> std::collections::BTreeSet<String> {
    allowed(t, function, n)
        .into_iter()
        .filter(|(a, _)| a.iter().any(|a| a.starts_with("ssm:")))
        .flat_map(|(_, r)| r)
        .collect()
}

fn parameter_arn(name: &str) -> String {
    format!("arn:aws:ssm:us-east-1:123456789012:parameter/{name}")
}

#[test]
fn the_action_table_names_every_function_of_the_template() {
    let t = Template::load();
    let in_template: BTreeSet<String> = t
        .resources("AWS::Serverless::Function")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let in_table: BTreeSet<String> = USES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(in_template, in_table);
}

#[test]
fn each_function_is_granted_exactly_the_actions_its_code_uses() {
    let t = Template::load();
    let n = t.names(ALL_OPTIONAL);
    for (function, uses) in USES {
        let granted: Vec<String> = allowed(&t, function, &n)
            .into_iter()
            .flat_map(|(a, _)| a)
            .collect();
        for g in &granted {
            assert!(
                uses.iter().any(|u| iam_match(g, u)),
                "{function} is granted {g}, which its code never calls"
            );
            if g.starts_with("dynamodb:") || g.starts_with("ssm:") {
                assert!(!g.contains('*'), "{function}: wildcard action {g}");
            }
        }
        for u in *uses {
            assert!(
                granted.iter().any(|g| iam_match(g, u)),
                "{function} calls {u} but is not granted it"
            );
        }
    }
}

#[test]
fn no_function_may_scan_batch_write_or_delete_unless_its_code_does() {
    let t = Template::load();
    let n = t.names(ALL_OPTIONAL);
    for (function, uses) in USES {
        for risky in [
            "dynamodb:Scan",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:DeleteTable",
        ] {
            let granted = allowed(&t, function, &n)
                .iter()
                .any(|(a, _)| a.iter().any(|g| iam_match(g, risky)));
            assert_eq!(granted, uses.contains(&risky), "{function} and {risky}");
        }
    }
}

#[test]
fn table_and_queue_grants_name_only_the_template_s_own_resources() {
    let t = Template::load();
    let n = t.names(ALL_OPTIONAL);
    let table = n.atts["StateTable.Arn"].clone();
    let queues: Vec<String> = t
        .resources("AWS::SQS::Queue")
        .into_iter()
        .map(|(id, _)| n.atts[&format!("{id}.Arn")].clone())
        .collect();
    for (function, _) in USES {
        for (actions, resources) in allowed(&t, function, &n) {
            for r in &resources {
                if actions.iter().any(|a| a.starts_with("dynamodb:")) {
                    assert!(
                        *r == table
                            || *r == format!("{table}/index/gsi1")
                            || *r == format!("{table}/index/gsi2"),
                        "{function}: {r}"
                    );
                } else if actions.iter().any(|a| a.starts_with("sqs:")) {
                    assert!(queues.contains(r), "{function}: {r}");
                }
            }
        }
    }
}

#[test]
fn ssm_read_is_granted_only_on_the_parameters_a_function_reads_and_that_are_set() {
    let t = Template::load();
    for (overrides, with_optional) in [(&[][..], false), (ALL_OPTIONAL, true)] {
        let n = t.names(overrides);
        for (function, always, optional) in SECRETS {
            let mut expected: BTreeSet<String> = always
                .iter()
                .map(|p| parameter_arn(&n.parameters[*p]))
                .collect();
            if with_optional {
                expected.extend(optional.iter().map(|p| parameter_arn(&n.parameters[*p])));
            }
            assert_eq!(
                ssm_resources(&t, function, &n),
                expected,
                "{function}, optional parameters set: {with_optional}"
            );
        }
    }
}

#[test]
fn optional_secrets_are_not_configured_unless_their_parameter_is_set() {
    let t = Template::load();
    let defaults = t.names(&[]);
    let set = t.names(ALL_OPTIONAL);
    for (function, _) in USES {
        let env = t.environment(function, &defaults);
        assert!(!env.contains_key("PRECHAT_LOG_KEY_PARAM"), "{function}");
        assert!(
            !env.contains_key("PRECHAT_AGENT_WEBHOOK_SECRET_PARAM"),
            "{function}"
        );
        let env = t.environment(function, &set);
        assert_eq!(env["PRECHAT_LOG_KEY_PARAM"], "/prechat/log-key");
    }
    let env = t.environment("AgentAssignerFunction", &set);
    assert_eq!(
        env["PRECHAT_AGENT_WEBHOOK_SECRET_PARAM"],
        "/prechat/agent-webhook-secret"
    );
}

#[test]
fn every_secret_a_function_is_told_to_read_it_may_read() {
    // GetParameters fails as a whole when one of its names is denied.
    let t = Template::load();
    for overrides in [&[][..], ALL_OPTIONAL] {
        let n = t.names(overrides);
        for (function, _) in USES {
            let readable = ssm_resources(&t, function, &n);
            for (k, v) in t.environment(function, &n) {
                if k.ends_with("_PARAM") {
                    let arn = parameter_arn(v.trim_start_matches('/'));
                    assert!(readable.contains(&arn), "{function} reads {k}={v}");
                }
            }
        }
    }
}

#[test]
fn each_sqs_event_source_queue_has_visibility_of_at_least_six_times_the_function_timeout() {
    let t = Template::load();
    let mut checked = 0;
    for (function, f) in t.resources("AWS::Serverless::Function") {
        for (_, event) in f["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() != Some("SQS") {
                continue;
            }
            let queue = match &event["Properties"]["Queue"] {
                serde_yaml_ng::Value::Tagged(tag) => tag.value.as_str().unwrap_or_default(),
                _ => "",
            };
            let queue = queue.trim_end_matches(".Arn");
            let visibility = t.resource(queue)["Properties"]["VisibilityTimeout"]
                .as_u64()
                .unwrap_or(30);
            let timeout = t.timeout(&function);
            assert!(
                visibility >= 6 * timeout,
                "{queue}: visibility {visibility} s < 6 x {function}'s timeout {timeout} s"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3, "three SQS consumers");
}

#[test]
fn every_queue_takes_the_message_size_the_code_sends() {
    let t = Template::load();
    let queues = t.resources("AWS::SQS::Queue");
    assert_eq!(queues.len(), 6, "three queues and their DLQs");
    for (id, q) in queues {
        // Older queues default to 256 KiB: the code splits and refuses at 1 MiB, so a queue
        // left at the default would refuse what the code considers fine, forever.
        assert_eq!(
            q["Properties"]["MaximumMessageSize"].as_u64(),
            Some(prechat::queue::MAX_MESSAGE_BYTES as u64),
            "{id}"
        );
    }
}

fn alarms(t: &Template, n: &Names) -> Vec<(String, serde_json::Value)> {
    t.resources("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, r)| (id, t.resolve(&r["Properties"], n).unwrap_or_default()))
        .collect()
}

/// Whether some alarm watches `namespace/metric` (with the dimension, if given).
fn watched(
    alarms: &[(String, serde_json::Value)],
    namespace: &str,
    metric: &str,
    dimension: Option<(&str, &str)>,
) -> bool {
    alarms.iter().any(|(_, a)| {
        a["Namespace"] == namespace
            && a["MetricName"] == metric
            && dimension.is_none_or(|(name, value)| {
                a["Dimensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| d["Name"] == name && d["Value"] == value)
            })
    })
}

#[test]
fn every_alarm_notifies_the_alarm_topic() {
    let t = Template::load();
    let n = t.names(&[]);
    let all = alarms(&t, &n);
    assert!(all.len() >= 20, "{} alarms", all.len());
    for (id, a) in &all {
        assert_eq!(
            a["AlarmActions"],
            serde_json::json!(["AlarmTopic"]),
            "{id} notifies nobody"
        );
    }
    assert_eq!(
        t.resource("AlarmTopic")["Type"].as_str(),
        Some("AWS::SNS::Topic")
    );
}

#[test]
fn the_alarm_email_is_optional_and_subscribed_to_the_topic() {
    let t = Template::load();
    assert_eq!(t.parameter_defaults()["AlarmEmail"], "");
    let sub = t.resource("AlarmEmailSubscription");
    assert_eq!(sub["Condition"].as_str(), Some("HasAlarmEmail"));
    assert!(!t.condition("HasAlarmEmail", &t.names(&[])));
    let n = t.names(ALL_OPTIONAL);
    assert!(t.condition("HasAlarmEmail", &n));
    let props = t.resolve(&sub["Properties"], &n).unwrap_or_default();
    assert_eq!(props["Protocol"], "email");
    assert_eq!(props["Endpoint"], "ops@example.com");
    assert_eq!(props["TopicArn"], "AlarmTopic");
}

#[test]
fn alarms_watch_every_queue_every_function_the_api_and_the_failure_metrics() {
    let t = Template::load();
    let n = t.names(&[]);
    let all = alarms(&t, &n);
    for (id, q) in t.resources("AWS::SQS::Queue") {
        let name = n.atts[&format!("{id}.QueueName")].clone();
        let metric = if q["Properties"]["RedrivePolicy"].is_null() {
            "ApproximateNumberOfMessagesVisible" // a dead-letter queue: its depth
        } else {
            "ApproximateAgeOfOldestMessage"
        };
        let dim = Some(("QueueName", name.as_str()));
        assert!(
            watched(&all, "AWS/SQS", metric, dim),
            "{id}: no {metric} alarm"
        );
    }
    for (id, _) in t.resources("AWS::Serverless::Function") {
        for metric in ["Errors", "Throttles"] {
            let dim = Some(("FunctionName", id.as_str()));
            assert!(
                watched(&all, "AWS/Lambda", metric, dim),
                "{id}: no {metric} alarm"
            );
        }
    }
    assert!(watched(
        &all,
        "AWS/ApiGateway",
        "5xx",
        Some(("ApiId", "WebhookApi"))
    ));
    for metric in [
        "GraphAuthFailures",
        "ReplyDeliveryFailures",
        "ParkedMessages",
        "AgentNotificationFailures",
    ] {
        assert!(watched(&all, "prechat", metric, None), "no {metric} alarm");
    }
}

#[test]
fn every_custom_alarm_metric_is_produced_by_a_metric_filter() {
    let t = Template::load();
    let n = t.names(&[]);
    let filters: Vec<serde_json::Value> = t
        .resources("AWS::Logs::MetricFilter")
        .into_iter()
        .filter_map(|(_, r)| t.resolve(&r["Properties"], &n))
        .collect();
    for (id, a) in alarms(&t, &n) {
        if a["Namespace"] != "prechat" {
            continue;
        }
        let produced = filters.iter().any(|f| {
            f["MetricTransformations"][0]["MetricName"] == a["MetricName"]
                && f["MetricTransformations"][0]["MetricNamespace"] == "prechat"
        });
        assert!(produced, "{id}: nothing emits {}", a["MetricName"]);
    }
    // Parked messages are counted in each SQS consumer's log group.
    for logs in ["SurveyEngineLogs", "AgentAssignerLogs", "ReplySenderLogs"] {
        assert!(
            filters.iter().any(|f| f["LogGroupName"] == logs
                && f["MetricTransformations"][0]["MetricName"] == "ParkedMessages"),
            "{logs}: parked messages are not counted"
        );
    }
}

#[test]
fn the_api_stage_is_throttled_by_parameters_with_sane_defaults() {
    let t = Template::load();
    let defaults = t.parameter_defaults();
    let rate: u64 = defaults["ApiThrottlingRateLimit"].parse().unwrap();
    let burst: u64 = defaults["ApiThrottlingBurstLimit"].parse().unwrap();
    assert!(
        (1..=1000).contains(&rate) && burst >= rate,
        "{rate}/{burst}"
    );
    let n = t.names(&[]);
    let api = t
        .resolve(&t.resource("WebhookApi")["Properties"], &n)
        .unwrap_or_default();
    let settings = &api["DefaultRouteSettings"];
    assert_eq!(settings["ThrottlingRateLimit"], rate.to_string());
    assert_eq!(settings["ThrottlingBurstLimit"], burst.to_string());
}

#[test]
fn ingest_reserved_concurrency_is_optional_and_unset_by_default() {
    let t = Template::load();
    let reserved = |n: &Names| {
        t.resolve(&t.resource("WebhookIngestFunction")["Properties"], n)
            .unwrap_or_default()["ReservedConcurrentExecutions"]
            .clone()
    };
    assert_eq!(t.parameter_defaults()["IngestReservedConcurrency"], "");
    assert!(reserved(&t.names(&[])).is_null());
    assert_eq!(reserved(&t.names(ALL_OPTIONAL)), "5");
    for (id, f) in t.resources("AWS::Serverless::Function") {
        if id != "WebhookIngestFunction" {
            assert!(
                f["Properties"]["ReservedConcurrentExecutions"].is_null(),
                "{id}"
            );
        }
    }
}

fn readme_deploy_section() -> String {
    let text = std::fs::read_to_string(prechat_tests::workspace_root().join("README.md")).unwrap();
    let start = text
        .find("## Deploy\n")
        .expect("README has a Deploy section");
    let rest = &text[start + 3..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

#[test]
fn the_readme_deploy_steps_create_every_required_ssm_parameter_and_explain_every_parameter() {
    let t = Template::load();
    let deploy = readme_deploy_section();
    for (name, default) in t.parameter_defaults() {
        assert!(
            deploy.contains(&format!("`{name}`")),
            "README Deploy does not explain {name}"
        );
        // An SSM parameter the stack reads by default must be created by a step.
        if name.ends_with("Parameter") && !default.is_empty() {
            assert!(
                deploy.contains(&format!(
                    "put-parameter --type SecureString --name /{default} "
                )),
                "README Deploy does not create /{default} ({name})"
            );
        }
    }
    let build = deploy.find("sam build").expect("sam build");
    let guided = deploy
        .find("sam deploy --guided")
        .expect("sam deploy --guided");
    assert!(build < guided, "sam build comes before sam deploy --guided");
    assert!(deploy.contains("Subscription Confirmation") && deploy.contains("WebhookUrl"));
}

#[test]
fn the_cognito_jwt_authorizer_trusts_the_pool_s_issuer_and_both_app_clients() {
    let t = Template::load();
    let n = t.names(&[]);
    let api = t
        .resolve(&t.resource("WebhookApi")["Properties"], &n)
        .unwrap_or_default();
    let jwt = &api["Auth"]["Authorizers"]["CognitoJwt"];
    assert_eq!(jwt["IdentitySource"], "$request.header.Authorization");
    assert_eq!(
        jwt["JwtConfiguration"]["issuer"],
        "https://cognito-idp.us-east-1.amazonaws.com/UserPool"
    );
    assert_eq!(
        jwt["JwtConfiguration"]["audience"],
        serde_json::json!(["UserPoolClient", "MachineClient"])
    );
    // Meta's webhook has its own signature check: no default authorizer in front of it.
    assert!(api["Auth"]["DefaultAuthorizer"].is_null());
}

#[test]
fn the_user_pool_has_the_three_groups_and_admin_created_users_only() {
    let t = Template::load();
    let pool = &t.resource("UserPool")["Properties"];
    assert_eq!(
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        Value::Bool(true)
    );
    assert!(pool["Policies"]["PasswordPolicy"]["MinimumLength"].as_u64() >= Some(12));
    let groups: BTreeSet<String> = t
        .resources("AWS::Cognito::UserPoolGroup")
        .into_iter()
        .filter_map(|(_, g)| g["Properties"]["GroupName"].as_str().map(str::to_owned))
        .collect();
    let expected = ["admins", "agents", "leads"].map(str::to_owned);
    assert_eq!(groups, BTreeSet::from(expected));
}

#[test]
fn the_browser_client_is_public_and_the_machine_client_has_only_client_credentials() {
    let t = Template::load();
    let browser = &t.resource("UserPoolClient")["Properties"];
    assert_eq!(browser["GenerateSecret"], Value::Bool(false));
    assert!(browser["AllowedOAuthFlows"].is_null());
    let machine = &t.resource("MachineClient")["Properties"];
    assert_eq!(machine["GenerateSecret"], Value::Bool(true));
    let flows: Vec<&str> = machine["AllowedOAuthFlows"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(flows, ["client_credentials"]);
    assert_eq!(
        machine["AllowedOAuthScopes"][0].as_str(),
        Some("prechat/api")
    );
    for output in ["UserPoolId", "UserPoolClientId", "MachineClientId"] {
        assert!(!t.doc["Outputs"][output].is_null(), "no output {output}");
    }
}

// ------------------------------------------------------------------ realtime (WebSocket API)

#[test]
fn the_realtime_api_is_a_websocket_api_with_the_three_routes_on_one_integration() {
    let t = Template::load();
    let n = t.names(&[]);
    let api = t
        .resolve(&t.resource("RealtimeApi")["Properties"], &n)
        .unwrap();
    assert_eq!(api["ProtocolType"], "WEBSOCKET");
    let mut routes: Vec<(String, serde_json::Value)> = t
        .resources("AWS::ApiGatewayV2::Route")
        .into_iter()
        .map(|(_, r)| t.resolve(&r["Properties"], &n).unwrap())
        .map(|p| (p["RouteKey"].as_str().unwrap_or_default().to_owned(), p))
        .collect();
    routes.sort_by(|a, b| a.0.cmp(&b.0));
    let keys: Vec<&str> = routes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["$connect", "$default", "$disconnect"]);
    for (key, r) in &routes {
        assert_eq!(r["ApiId"], "RealtimeApi", "{key}");
        assert_eq!(r["Target"], "integrations/RealtimeIntegration", "{key}");
        let authorized =
            r["AuthorizationType"] == "CUSTOM" && r["AuthorizerId"] == "RealtimeAuthorizer";
        assert_eq!(
            authorized,
            key == "$connect",
            "{key}: only $connect is authorized"
        );
    }
    let stage = t
        .resolve(&t.resource("RealtimeStage")["Properties"], &n)
        .unwrap();
    assert_eq!(stage["AutoDeploy"], true);
}

#[test]
fn connect_is_authorized_by_ws_authorizer_on_the_token_query_parameter() {
    let t = Template::load();
    let n = t.names(&[]);
    let a = t
        .resolve(&t.resource("RealtimeAuthorizer")["Properties"], &n)
        .unwrap();
    assert_eq!(a["AuthorizerType"], "REQUEST");
    assert_eq!(
        a["IdentitySource"],
        serde_json::json!(["route.request.querystring.token"])
    );
    let uri = a["AuthorizerUri"].as_str().unwrap();
    assert!(uri.contains(&n.atts["WsAuthorizerFunction.Arn"]), "{uri}");
    let env = t.environment("WsAuthorizerFunction", &n);
    assert_eq!(
        env["PRECHAT_JWT_ISSUER"],
        "https://cognito-idp.us-east-1.amazonaws.com/UserPool"
    );
    // The browser client only: a machine client has no business opening a socket.
    assert_eq!(env["PRECHAT_JWT_AUDIENCE"], "UserPoolClient");
}

#[test]
fn api_gateway_may_invoke_the_realtime_functions_only_from_the_realtime_api() {
    let t = Template::load();
    let n = t.names(&[]);
    for (permission, function, source) in [
        (
            "WsAuthorizerPermission",
            "WsAuthorizerFunction",
            "RealtimeApi/authorizers/RealtimeAuthorizer",
        ),
        (
            "WsConnectionsPermission",
            "WsConnectionsFunction",
            "RealtimeApi/*",
        ),
    ] {
        let p = t
            .resolve(&t.resource(permission)["Properties"], &n)
            .unwrap();
        assert_eq!(p["FunctionName"], function);
        assert_eq!(p["Principal"], "apigateway.amazonaws.com");
        assert!(
            p["SourceArn"].as_str().unwrap().ends_with(source),
            "{permission}: {}",
            p["SourceArn"]
        );
    }
    let integration = t
        .resolve(&t.resource("RealtimeIntegration")["Properties"], &n)
        .unwrap();
    assert_eq!(integration["IntegrationType"], "AWS_PROXY");
    assert!(integration["IntegrationUri"]
        .as_str()
        .unwrap()
        .contains(&n.atts["WsConnectionsFunction.Arn"]));
}

#[test]
fn ping_gets_its_pong_through_the_default_route_response() {
    let t = Template::load();
    let n = t.names(&[]);
    let r = t
        .resolve(
            &t.resource("RealtimeDefaultRouteResponse")["Properties"],
            &n,
        )
        .unwrap();
    assert_eq!(r["RouteId"], "RealtimeDefaultRoute");
    assert_eq!(r["RouteResponseKey"], "$default");
    let route = t
        .resolve(&t.resource("RealtimeDefaultRoute")["Properties"], &n)
        .unwrap();
    assert_eq!(route["RouteResponseSelectionExpression"], "$default");
}
