//! webchat: `/widget.js` and `/webchat/*` of the HTTP API (no JWT authorizer: the visitor's
//! own token), the web chat visitor's endpoints. Logic: `prechat::entrypoints::webchat`.

use prechat::entrypoints::{init, webchat::WebChat};

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    let chat = &WebChat::from_env(&sdk).await?;
    init::serve_http(move |req| chat.handle(req)).await
}
