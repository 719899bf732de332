//! agent-api: `/api/*` of the HTTP API (JWT authorizer), the agents' API.
//! Logic: `prechat::entrypoints::agent_api`, `prechat::api`.

use prechat::entrypoints::{agent_api::AgentApi, init};

#[tokio::main]
async fn main() -> Result<(), init::Error> {
    let sdk = init::start().await;
    let api = &AgentApi::from_env(&sdk).await?;
    init::serve_http(move |req| api.handle(req)).await
}
