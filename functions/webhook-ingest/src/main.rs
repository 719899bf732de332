//! webhook-ingest: authenticates, parses and queues Meta's `POST /webhook` deliveries.
//! Logic: `prechat::entrypoints::ingest`.

use lambda_http::{run, service_fn, Error, Request};
use prechat::entrypoints::ingest::Ingest;
use prechat::{aws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::load_config().await;
    let ingest = &Ingest::from_env(&sdk).await?;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(ingest.handle(req).await)
    }))
    .await
}
