//! reply-sender: delivers the outbound FIFO queue through the Graph API.
//! Logic: `prechat::entrypoints::sender`.

use prechat::entrypoints::{init, sender::ReplySender};

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    let sender = &ReplySender::from_env(&sdk).await?;
    init::serve_sqs(move |batch| sender.handle(batch)).await
}
