//! survey-timer: every minute (EventBridge schedule), reminds contacts who went silent
//! mid-survey. Logic: `prechat::entrypoints::survey_engine::SurveyEngine::handle_tick`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use prechat::entrypoints::survey_engine::SurveyEngine;
use prechat::{aws, secrets, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::load_config().await;
    // No WhatsApp secrets here; this loads only the optional log redaction key.
    secrets::load(&aws_sdk_ssm::Client::new(&sdk), &[]).await?;
    let engine = SurveyEngine::timer_from_env(&sdk).await?;
    let engine = &engine;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, Error>(engine.handle_tick(event.payload).await?)
        },
    ))
    .await
}
