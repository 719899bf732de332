//! `ws-connections`: the WebSocket API's `$connect`, `$disconnect` and `$default` routes (one
//! Lambda proxy integration; the event is `ApiGatewayWebsocketProxyRequest`).
//!
//! - `$connect` (after `ws-authorizer` allowed it): the agent is read from
//!   `requestContext.authorizer` (the claims the authorizer put in its context, read by
//!   `api::auth::principal`, never from the token) and the connection stored
//!   ([`Connection`], TTL 2 h 10 min). A non-2xx answer refuses the connection: 403 when the
//!   context names no agent (a route wired without the authorizer), 500 when the store fails
//!   (the client reconnects with back-off).
//! - `$disconnect`: the connection removed (best effort: API Gateway ignores the answer, and
//!   the TTL and the pushers' 410 handling clean up what is left).
//! - `$default`: `{"type":"ping"}` is answered `{"type":"pong"}` as the route response (the
//!   route has a `$default` route response, so the integration's body goes back to the
//!   client); the client pings every 5 minutes to stay under API Gateway's 10-minute idle
//!   timeout. Anything else is ignored (200, no body).
//!
//! Logs carry the route and the outcome only: no agent id, no connection id.

use std::collections::HashMap;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde_json::Value;

use crate::api::auth::{principal, AuthConfig};
use crate::clock::Clock;
use crate::config::{ConfigError, EnvReader};
use crate::store::connections::{
    Connection, ConnectionStore, DynamoConnections, MAX_CONNECTION_ID_BYTES,
};
use crate::store::DynamoTable;

/// The route answer to a ping.
pub const PONG: &str = r#"{"type":"pong"}"#;

/// The routes of the WebSocket API, on a connection store.
pub struct WsConnections<S> {
    store: S,
    clock: Clock,
    config: AuthConfig,
}

impl WsConnections<DynamoConnections> {
    /// On the state table (`PRECHAT_TABLE`).
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let mut env = EnvReader::from_env();
        let table = env.required("PRECHAT_TABLE");
        env.finish()?;
        let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(sdk), table);
        Ok(WsConnections::new(
            DynamoConnections::new(table),
            Clock::system(),
        ))
    }
}

impl<S: ConnectionStore> WsConnections<S> {
    pub fn new(store: S, clock: Clock) -> Self {
        WsConnections {
            store,
            clock,
            config: AuthConfig::default(),
        }
    }

    /// One invocation.
    pub async fn handle(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        let ctx = &event.request_context;
        let route = ctx.route_key.as_deref().unwrap_or("");
        let Some(id) = ctx
            .connection_id
            .as_deref()
            .filter(|id| !id.is_empty() && id.len() <= MAX_CONNECTION_ID_BYTES)
        else {
            tracing::warn!(route, outcome = "no_connection_id", "ws route");
            return response(400, None);
        };
        let (status, body, outcome) = match route {
            "$connect" => self.connect(id, &ctx.authorizer.fields).await,
            "$disconnect" => match self.store.remove(id).await {
                Ok(()) => (200, None, "removed"),
                Err(e) => {
                    tracing::warn!(retryable = e.is_retryable(), error = %e, "ws disconnect");
                    (500, None, "store_failed")
                }
            },
            _ => match message_type(event.body.as_deref()) {
                Some("ping") => (200, Some(PONG), "pong"),
                _ => (200, None, "ignored"),
            },
        };
        tracing::info!(route, outcome, status, "ws route");
        response(status, body)
    }

    async fn connect(
        &self,
        id: &str,
        authorizer: &HashMap<String, Value>,
    ) -> (i64, Option<&'static str>, &'static str) {
        let claims = context_claims(authorizer);
        let agent = match principal(&claims, &self.config) {
            Ok(p) if !p.machine => p.id,
            _ => return (403, None, "no_agent"),
        };
        let now_ms = self.clock.unix().saturating_mul(1000);
        match self.store.put(&Connection::new(id, &agent, now_ms)).await {
            Ok(()) => (200, None, "stored"),
            Err(e) => {
                tracing::warn!(retryable = e.is_retryable(), error = %e, "ws connect");
                (500, None, "store_failed")
            }
        }
    }
}

/// The authorizer context as the string map `api::auth::principal` reads (API Gateway passes
/// context values as strings; numbers and booleans are rendered as their JSON text).
pub fn context_claims(authorizer: &HashMap<String, Value>) -> HashMap<String, String> {
    authorizer
        .iter()
        .filter(|(k, _)| k.as_str() != "principalId" && k.as_str() != "integrationLatency")
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

/// The `type` of a client frame, if it is a JSON object with a string `type`.
pub fn message_type(body: Option<&str>) -> Option<&str> {
    // A borrowed parse: only the `type` field is read, whatever else the frame holds.
    #[derive(serde::Deserialize)]
    struct Frame<'a> {
        #[serde(borrow, rename = "type")]
        kind: Option<&'a str>,
    }
    serde_json::from_str::<Frame>(body?).ok()?.kind
}

fn response(status: i64, body: Option<&str>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = body.map(|b| Body::Text(b.to_owned()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::authorizer::Decision;
    use crate::store::connections::MemoryConnections;
    use serde_json::json;

    const NOW: i64 = 1_796_173_200;

    fn sample(file: &str) -> ApiGatewayWebsocketProxyRequest {
        let path = format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn routes() -> WsConnections<MemoryConnections> {
        WsConnections::new(MemoryConnections::default(), Clock::at_unix(NOW))
    }

    fn body(r: &ApiGatewayProxyResponse) -> Option<&str> {
        match &r.body {
            Some(Body::Text(t)) => Some(t),
            _ => None,
        }
    }

    #[tokio::test]
    async fn connect_stores_the_authorized_agent_s_connection() {
        let routes = routes();
        let r = routes.handle(sample("ws-connections-connect.json")).await;
        assert_eq!(r.status_code, 200);
        let stored = routes.store.0.lock().unwrap().clone();
        assert_eq!(
            stored,
            [Connection::new("Xx1yZcZNIAMCJhQ=", "alice", NOW * 1000)]
        );
    }

    #[tokio::test]
    async fn connect_stores_a_visitor_s_connection_under_the_visitor_principal() {
        // The context ws-authorizer gives a valid visitor token.
        let Decision::Allow { context, .. } = crate::realtime::authorizer::visitor_decision(Ok(
            crate::webchat::token::VisitorClaims {
                sub: "V.abcdefghijklmnop".into(),
                iat: NOW,
                exp: NOW + 60,
            },
        )) else {
            panic!("a valid visitor token is allowed");
        };
        let routes = routes();
        let mut event = sample("ws-connections-connect.json");
        event.request_context.authorizer.fields = context
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        assert_eq!(routes.handle(event).await.status_code, 200);
        let stored = routes.store.0.lock().unwrap().clone();
        assert_eq!(stored[0].agent_id, "visitor:V.abcdefghijklmnop");
    }

    #[tokio::test]
    async fn connect_without_an_authorizer_context_is_refused() {
        let routes = routes();
        let mut event = sample("ws-connections-connect.json");
        event.request_context.authorizer.fields.clear();
        assert_eq!(routes.handle(event).await.status_code, 403);
        assert!(routes.store.ids().is_empty());
    }

    #[tokio::test]
    async fn disconnect_removes_the_connection() {
        let routes = routes();
        routes.handle(sample("ws-connections-connect.json")).await;
        let r = routes
            .handle(sample("ws-connections-disconnect.json"))
            .await;
        assert_eq!(r.status_code, 200);
        assert!(routes.store.ids().is_empty());
    }

    #[tokio::test]
    async fn a_ping_is_answered_pong_and_other_frames_nothing() {
        let routes = routes();
        let r = routes.handle(sample("ws-connections-ping.json")).await;
        assert_eq!((r.status_code, body(&r)), (200, Some(PONG)));
        let mut other = sample("ws-connections-ping.json");
        other.body = Some(r#"{"type":"subscribe"}"#.into());
        let r = routes.handle(other).await;
        assert_eq!((r.status_code, body(&r)), (200, None));
    }

    #[tokio::test]
    async fn an_event_without_a_connection_id_is_a_400() {
        let mut event = sample("ws-connections-ping.json");
        event.request_context.connection_id = None;
        assert_eq!(routes().handle(event).await.status_code, 400);
    }

    #[test]
    fn a_ping_frame_is_recognised_and_anything_else_is_not() {
        assert_eq!(message_type(Some(r#"{"type":"ping"}"#)), Some("ping"));
        assert_eq!(
            message_type(Some(r#"{"type":"ping","x":[1]}"#)),
            Some("ping")
        );
        for other in [
            "ping",
            "",
            "{",
            "[]",
            r#"{"type":1}"#,
            "\u{0}\u{ff}",
            r#"{"kind":"ping"}"#,
        ] {
            assert_ne!(message_type(Some(other)), Some("ping"), "{other:?}");
        }
        assert_eq!(message_type(None), None);
    }

    #[test]
    fn the_authorizer_context_becomes_the_claims_map_principal_reads() {
        let ctx: HashMap<String, Value> = serde_json::from_value(json!({
            "principalId": "alice", "integrationLatency": 12, "sub": "s-1",
            "username": "alice", "token_use": "access", "cognito:groups": "[agents]",
            "odd": {"nested": true}, "n": 5,
        }))
        .unwrap();
        let c = context_claims(&ctx);
        assert!(!c.contains_key("principalId") && !c.contains_key("odd"));
        assert_eq!(c["n"], "5");
        let p = principal(&c, &AuthConfig::default()).unwrap();
        assert_eq!(p.id, "alice");
    }
}
