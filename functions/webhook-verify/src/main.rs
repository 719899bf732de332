//! webhook-verify: answers Meta's `GET /webhook` handshake. Logic: `prechat::entrypoints::verify`.

use prechat::entrypoints::{init, verify};

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    let token = &verify::token_from_env(&sdk).await?;
    init::serve_http(move |req| std::future::ready(verify::handle(&req, token))).await
}
