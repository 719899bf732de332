//! ws-authorizer: the REQUEST authorizer of the WebSocket API's `$connect` route.
//! Logic: `prechat::realtime::authorizer`, `prechat::realtime::jwt`.

use prechat::entrypoints::init;
use prechat::realtime::authorizer::WsAuthorizer;

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    let authorizer = &WsAuthorizer::from_env(&sdk).await?;
    init::serve_event(move |event| authorizer.handle(event)).await
}
