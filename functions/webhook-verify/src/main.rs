//! webhook-verify: answers Meta's `GET /webhook` handshake. Logic: `prechat::entrypoints::verify`.

use lambda_http::{run, service_fn, Error, Request};
use prechat::{aws, secrets, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = aws::load_config().await;
    let [token] =
        secrets::load_array(&aws_sdk_ssm::Client::new(&sdk), ["WHATSAPP_VERIFY_TOKEN"]).await?;
    run(service_fn(|req: Request| {
        let response = prechat::entrypoints::verify::handle(&req, &token);
        async move { Ok::<_, Error>(response) }
    }))
    .await
}
