//! survey-engine: runs the pre-chat survey on the inbound FIFO queue.
//! Logic: `prechat::entrypoints::survey_engine`.

use prechat::entrypoints::{init, survey_engine::SurveyEngine};

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    init::load_log_key(&sdk).await?; // no secrets of its own
    let engine = &SurveyEngine::from_env(&sdk).await?;
    init::serve_sqs(move |batch| engine.handle(batch)).await
}
