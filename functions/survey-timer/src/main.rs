//! survey-timer: every minute (EventBridge schedule), reminds contacts who went silent
//! mid-survey. Logic: `prechat::entrypoints::survey_engine::SurveyEngine::handle_tick`.

use prechat::entrypoints::{init, survey_engine::SurveyEngine};

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    init::load_log_key(&sdk).await?; // no secrets of its own
    let engine = &SurveyEngine::timer_from_env(&sdk).await?;
    init::serve_schedule(move |tick| engine.handle_tick(tick)).await
}
