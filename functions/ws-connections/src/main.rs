//! ws-connections: the WebSocket API's `$connect`, `$disconnect` and `$default` routes.
//! Logic: `prechat::realtime::connections`, `prechat::store::connections`.

use prechat::entrypoints::init;
use prechat::realtime::connections::WsConnections;

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    init::load_log_key(&sdk).await?;
    let routes = &WsConnections::from_env(&sdk)?;
    init::serve_event(move |event| async move {
        Ok::<_, std::convert::Infallible>(routes.handle(event).await)
    })
    .await
}
