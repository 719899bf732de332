//! reply-sender: delivers the outbound FIFO queue through the Graph API.
//! Logic: `prechat::entrypoints::sender`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use prechat::entrypoints::sender::ReplySender;
use prechat::{aws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::load_config().await;
    let sender = ReplySender::from_env(&sdk).await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(sender.handle(event.payload).await)
    }))
    .await
}
