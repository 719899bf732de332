//! Builds the AWS SDK configuration once per process (at Lambda init).
//!
//! `AWS_ENDPOINT_URL` (set by the test harness and `cargo xtask local` to point at moto) is
//! honoured by the SDK itself, so the same code talks to AWS and to the local protocol server.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads region, credentials and endpoint from the environment.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
