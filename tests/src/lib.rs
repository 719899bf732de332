//! prechat's integration-test harness (the zero2prod pattern): every test starts from
//! [`TestEnv::new`], which gives it its own freshly created table and queues in the AWS
//! protocol server named by `AWS_ENDPOINT_URL` (moto, started by `cargo xtask test`),
//! provisioned from `infra/template.yaml` itself. Tests therefore run in parallel without
//! sharing state. Tests of the entrypoints start from [`TestApp::spawn`] (module [`app`]),
//! which wraps a `TestEnv` and builds every entrypoint from the template's environment. Without an endpoint a test fails with a clear message: it never passes
//! vacuously, and it never talks to a real AWS account by accident.

pub mod api;
pub mod app;
pub mod cfn;
pub mod lambda;
pub mod sqs;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::Message;

pub use app::TestApp;
pub use prechat_local as local;
pub use prechat_local::provision;
pub use prechat_local::{endpoint, local_sdk_config, template_path, workspace_root, Provisioned};

/// One test's private AWS world.
pub struct TestEnv {
    pub sdk: SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub resources: Provisioned,
    /// The unique prefix of this test's resource names.
    pub prefix: String,
}

/// A short name prefix no other test (or test process) uses.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t{:x}{:x}{}",
        std::process::id(),
        nanos & 0xffff,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestEnv {
    /// Fresh tables and queues from the template.
    pub async fn new() -> TestEnv {
        let sdk = local_sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let template = provision::read_template(&template_path())
            .unwrap_or_else(|e| panic!("cannot read infra/template.yaml: {e}"));
        let prefix = unique_prefix();
        let resources = provision::provision(&dynamo, &sqs, &template, &prefix)
            .await
            .unwrap_or_else(|e| panic!("cannot provision the template into {}: {e}", endpoint()));
        TestEnv {
            sdk,
            dynamo,
            sqs,
            ssm,
            resources,
            prefix,
        }
    }

    /// Physical name of a table declared in the template.
    pub fn table(&self, logical_id: &str) -> &str {
        self.resources
            .tables
            .get(logical_id)
            .unwrap_or_else(|| panic!("no table {logical_id} in infra/template.yaml"))
    }

    /// URL of a queue declared in the template.
    pub fn queue_url(&self, logical_id: &str) -> &str {
        self.resources
            .queue_urls
            .get(logical_id)
            .unwrap_or_else(|| panic!("no queue {logical_id} in infra/template.yaml"))
    }

    /// Receives (and deletes) every message currently on a queue, in delivery order.
    /// FIFO queues hand out one batch per message group at a time, so this keeps receiving
    /// (deleting as it goes) until a receive comes back empty.
    pub async fn receive_all(&self, logical_id: &str) -> Vec<Message> {
        let url = self.queue_url(logical_id).to_owned();
        let mut all = Vec::new();
        for _ in 0..1000 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "receive from {logical_id}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                });
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            for m in &batch {
                if let Some(h) = m.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
            }
            all.extend(batch);
        }
        all
    }

    /// What a consumer parked in a dead-letter queue (received and deleted), as
    /// `(body, MessageGroupId, prechat.error, prechat.consumer)`.
    pub async fn parked(&self, dlq_logical_id: &str) -> Vec<(String, String, String, String)> {
        let attr = |m: &Message, name: &str| {
            m.message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .unwrap_or_default()
                .to_owned()
        };
        self.receive_all(dlq_logical_id)
            .await
            .iter()
            .map(|m| {
                let group = m
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                    })
                    .cloned()
                    .unwrap_or_default();
                (
                    m.body().unwrap_or_default().to_owned(),
                    group,
                    attr(m, prechat::queue::dlq::ERROR_ATTRIBUTE),
                    attr(m, prechat::queue::dlq::CONSUMER_ATTRIBUTE),
                )
            })
            .collect()
    }

    /// Stores a SecureString parameter (for code that reads secrets from SSM).
    pub async fn put_secret(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "put parameter {name}: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                )
            });
    }
}

/// A file under the system temp directory, removed when dropped: for events a test derives
/// from a sample (e.g. timestamps moved to now) and hands to `cargo lambda invoke`.
pub struct TempFile(std::path::PathBuf);

impl TempFile {
    pub fn with_contents(stem: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("{stem}-{}.json", unique_prefix()));
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        TempFile(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
