//! survey-engine: runs the pre-chat survey on the inbound FIFO queue.
//! Logic: `prechat::entrypoints::survey_engine`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use prechat::entrypoints::survey_engine::SurveyEngine;
use prechat::{aws, secrets, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::load_config().await;
    // No WhatsApp secrets here; this loads only the optional log redaction key.
    secrets::load(&aws_sdk_ssm::Client::new(&sdk), &[]).await?;
    let engine = SurveyEngine::from_env(&sdk).await?;
    let engine = &engine;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(engine.handle(event.payload).await)
    }))
    .await
}
