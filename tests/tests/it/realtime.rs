//! The realtime channel against moto: the connection store (put, query by agent, TTL
//! attribute, delete), `$connect` authorised and refused through the real routes, and a push
//! to a gone connection (the management API answering 410, over the real SDK client) removing it.

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use aws_sdk_dynamodb::types::AttributeValue;
use prechat::clock::Clock;
use prechat::realtime::connections::WsConnections;
use prechat::realtime::push::{ApiGatewayPoster, PushReport, Pusher};
use prechat::realtime::{PushEvent, PushType};
use prechat::store::connections::{Connection, ConnectionStore, DynamoConnections, TTL_SECS};
use prechat::store::{keys, DynamoTable};
use prechat_tests::TestEnv;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: i64 = 1_796_173_200;

fn store(env: &TestEnv) -> DynamoConnections {
    DynamoConnections::new(DynamoTable::new(
        env.dynamo.clone(),
        env.table("StateTable"),
    ))
}

fn sample(file: &str) -> ApiGatewayWebsocketProxyRequest {
    let text =
        std::fs::read_to_string(prechat_tests::workspace_root().join("events").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(c: &[Connection]) -> Vec<&str> {
    c.iter().map(|c| c.connection_id.as_str()).collect()
}

#[tokio::test]
async fn connections_are_listed_per_agent_oldest_first_and_deleted() {
    let env = TestEnv::new().await;
    let s = store(&env);
    for (id, agent, at) in [("b", "alice", 2), ("a", "alice", 1), ("x", "bruno", 1)] {
        s.put(&Connection::new(id, agent, NOW * 1000 + at))
            .await
            .unwrap();
    }
    assert_eq!(ids(&s.of_agent("alice", NOW).await.unwrap()), ["a", "b"]);
    s.remove("a").await.unwrap();
    s.remove("never-there").await.unwrap();
    assert_eq!(ids(&s.of_agent("alice", NOW).await.unwrap()), ["b"]);
    assert_eq!(ids(&s.of_agent("bruno", NOW).await.unwrap()), ["x"]);
}

#[tokio::test]
async fn a_connection_item_carries_its_ttl_and_is_skipped_once_expired() {
    let env = TestEnv::new().await;
    let s = store(&env);
    s.put(&Connection::new("c1", "alice", NOW * 1000))
        .await
        .unwrap();
    let item = env
        .dynamo
        .get_item()
        .table_name(env.table("StateTable"))
        .set_key(Some(keys::ws_connection("c1").item()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        item["expires_at"],
        AttributeValue::N((NOW + TTL_SECS).to_string())
    );
    assert!(s
        .of_agent("alice", NOW + TTL_SECS)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_authorised_connect_is_stored_and_its_disconnect_removes_it() {
    let env = TestEnv::new().await;
    let routes = WsConnections::new(store(&env), Clock::at_unix(NOW));
    assert_eq!(
        routes
            .handle(sample("ws-connections-connect.json"))
            .await
            .status_code,
        200
    );
    let stored = store(&env).of_agent("alice", NOW).await.unwrap();
    assert_eq!(ids(&stored), ["Xx1yZcZNIAMCJhQ="]);
    assert_eq!(
        routes
            .handle(sample("ws-connections-disconnect.json"))
            .await
            .status_code,
        200
    );
    assert!(store(&env).of_agent("alice", NOW).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_connect_without_the_authorizer_s_agent_is_refused_and_not_stored() {
    let env = TestEnv::new().await;
    let routes = WsConnections::new(store(&env), Clock::at_unix(NOW));
    let mut event = sample("ws-connections-connect.json");
    event
        .request_context
        .authorizer
        .fields
        .retain(|k, _| k == "principalId");
    assert_eq!(routes.handle(event).await.status_code, 403);
    assert!(store(&env).of_agent("alice", NOW).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_push_to_a_gone_connection_removes_it_and_reaches_the_live_one() {
    let env = TestEnv::new().await;
    let s = store(&env);
    s.put(&Connection::new("gone", "alice", NOW * 1000))
        .await
        .unwrap();
    s.put(&Connection::new("live", "alice", NOW * 1000 + 1))
        .await
        .unwrap();
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/live/@connections/gone"))
        .respond_with(ResponseTemplate::new(410).set_body_string(r#"{"message":"GoneException"}"#))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/live/@connections/live"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&api)
        .await;
    let sdk = prechat_tests::local::local_sdk_config().await;
    let poster = ApiGatewayPoster::new(&sdk, &format!("{}/live", api.uri()));
    let pusher = Pusher::new(store(&env), poster, Clock::at_unix(NOW));
    let event = PushEvent::conversation(PushType::ConversationAssigned, "c1", NOW * 1000);
    let report = pusher.push("alice", &event).await;
    assert_eq!(
        report,
        PushReport {
            delivered: 1,
            gone: 1,
            failed: 0
        }
    );
    assert_eq!(ids(&s.of_agent("alice", NOW).await.unwrap()), ["live"]);
    let posted = api.received_requests().await.unwrap();
    let live = posted
        .iter()
        .find(|r| r.url.path().ends_with("/live"))
        .unwrap();
    assert_eq!(live.body, event.to_frame().unwrap().into_bytes());
}
