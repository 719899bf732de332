//! webhook-ingest: authenticates, parses and queues Meta's `POST /webhook` deliveries.
//! Logic: `prechat::entrypoints::ingest`.

use prechat::entrypoints::{ingest::Ingest, init};

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    let ingest = &Ingest::from_env(&sdk).await?;
    init::serve_http(move |req| ingest.handle(req)).await
}
