//! agent-assigner: consumes the assignment FIFO queue. Logic: `prechat::entrypoints::assigner`.

use prechat::entrypoints::{assigner::AgentAssigner, init};

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    let assigner = &AgentAssigner::from_env(&sdk).await?;
    init::serve_sqs(move |batch| assigner.handle(batch)).await
}
