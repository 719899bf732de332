//! agent-assigner: consumes the assignment FIFO queue. Logic: `prechat::entrypoints::assigner`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use prechat::entrypoints::assigner::AgentAssigner;
use prechat::{aws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::load_config().await;
    let assigner = AgentAssigner::from_env(&sdk).await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<SqsBatchResponse, Error>(assigner.handle(event.payload).await)
    }))
    .await
}
