//! Sign-in against moto's Cognito: `/local/token` hands out real tokens, the local JWT
//! authorizer checks them exactly as API Gateway's HTTP API JWT authorizer does (signature
//! against the pool's JWKS, issuer, audience, expiry by the injected clock), and the claims it
//! passes have AWS's shape, which `api::auth::principal` reads.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use lambda_http::{Body, Response};
use prechat::api::auth::{principal, request_claims, AuthConfig, Group, Principal};
use prechat::clock::Clock;
use prechat_tests::local::cognito::LocalCognito;
use prechat_tests::local::jwt::{JwtAuthorizer, Unauthorized};
use prechat_tests::local::meta::Business;
use prechat_tests::local::server::{self, AppState};
use prechat_tests::local::{graph::RequestLog, pipeline};
use serde_json::Value;

async fn pool() -> (Arc<LocalCognito>, Arc<JwtAuthorizer>) {
    let template = std::fs::read_to_string(prechat_tests::template_path()).unwrap();
    prechat_tests::local::start_cognito(&template)
        .await
        .unwrap()
}

/// An authorizer for `cognito`'s pool and client on `clock`.
fn authorizer_at(cognito: &LocalCognito, clock: Clock) -> JwtAuthorizer {
    let audience = vec![cognito.client_id.clone()];
    JwtAuthorizer::new(cognito.issuer(), audience, cognito.jwks_url(), clock)
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".into(), format!("Bearer {token}"))]
}

/// The front door with the pool, its authorizer and, on `/api/*`, a function that answers
/// with the claims its event carries.
async fn front_door() -> String {
    let (cognito, authorizer) = pool().await;
    let echo = pipeline::http(|req| async move {
        let claims = request_claims(&req).cloned().unwrap_or_default();
        Response::builder()
            .status(200)
            .body(Body::Text(serde_json::to_string(&claims).unwrap()))
            .unwrap()
    });
    let state = AppState::new(
        prechat::secrets::Secret::new("t"),
        "s".into(),
        Business::default(),
        RequestLog::new(),
        None,
        vec![],
        "http://127.0.0.1:1/webhook".into(),
        None,
    )
    .with_auth(cognito, authorizer)
    .with_api(Some(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server::router(state)).await.unwrap() });
    format!("http://{addr}")
}

async fn local_token(base: &str, username: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/local/token"))
        .json(&serde_json::json!({ "username": username }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn principal_of(cognito: &LocalCognito, auth: &JwtAuthorizer, user: &str) -> Principal {
    let tokens = cognito.tokens(user).await.unwrap();
    let claims = auth.check(&tokens.access_token).await.unwrap();
    principal(&claims, &AuthConfig::default()).unwrap()
}

#[tokio::test]
async fn a_local_token_reaches_the_api_with_the_claims_shape_aws_passes() {
    let base = front_door().await;
    let tokens = local_token(&base, "alice").await;
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    assert!(tokens["id_token"].as_str().unwrap().split('.').count() == 3);
    let r = reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let claims: HashMap<String, String> = r.json().await.unwrap();
    // AWS's shape: a bracketed, space-separated list (Cognito gives no order).
    let groups = &claims["cognito:groups"];
    let mut names: Vec<&str> = groups
        .strip_prefix('[')
        .and_then(|g| g.strip_suffix(']'))
        .unwrap_or_else(|| panic!("{groups}"))
        .split(' ')
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["agents", "leads"]);
    assert_eq!(claims["token_use"], "access");
    assert!(claims["exp"].parse::<i64>().is_ok(), "{}", claims["exp"]);
    assert!(claims.contains_key("client_id") && !claims.contains_key("aud"));
    let alice = principal(&claims, &AuthConfig::default()).unwrap();
    assert_eq!(alice.id, "alice");
    assert_eq!(alice.sub, claims["sub"]);
    assert_eq!(alice.groups, BTreeSet::from([Group::Agents, Group::Leads]));
    assert!(alice.is_lead() && !alice.is_admin() && !alice.machine);
}

#[tokio::test]
async fn admin_and_integrations_tokens_give_an_admin_and_a_machine_principal() {
    let (cognito, auth) = pool().await;
    let admin = principal_of(&cognito, &auth, "admin").await;
    assert_eq!(admin.id, "admin");
    assert!(admin.is_admin() && !admin.is_integration());
    let desk = principal_of(&cognito, &auth, "integrations").await;
    assert!(desk.machine && desk.is_integration() && !desk.is_admin());
    assert_eq!(desk.groups, BTreeSet::from([Group::Integrations]));
}

#[tokio::test]
async fn an_id_token_passes_by_its_audience() {
    let (cognito, auth) = pool().await;
    let tokens = cognito.tokens("bruno").await.unwrap();
    let claims = auth.check(&tokens.id_token).await.unwrap();
    assert_eq!(claims["aud"], cognito.client_id);
    let bruno = principal(&claims, &AuthConfig::default()).unwrap();
    assert_eq!(bruno.id, "bruno");
    assert_eq!(bruno.groups, BTreeSet::from([Group::Agents]));
}

#[tokio::test]
async fn no_token_or_a_tampered_one_gets_aws_s_401() {
    let base = front_door().await;
    let http = reqwest::Client::new();
    let r = http.get(format!("{base}/api/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(r.text().await.unwrap(), Unauthorized::BODY);

    let token = local_token(&base, "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    // Another valid base64url signature of the same length: the first character changed.
    let first = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{signed}.{first}{}", &signature[1..]);
    let r = http
        .get(format!("{base}/api/conversations"))
        .bearer_auth(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), Unauthorized::BODY);
}

#[tokio::test]
async fn a_token_of_another_pool_fails_on_its_issuer() {
    // moto signs every pool's tokens with the same key: only the issuer tells them apart.
    let (ours, auth) = pool().await;
    let (theirs, _) = pool().await;
    let tokens = theirs.tokens("alice").await.unwrap();
    let err = auth.authorize(&bearer(&tokens.access_token)).await;
    assert_eq!(err.unwrap_err().reason, "the token has an invalid issuer");
    assert!(auth
        .check(&ours.tokens("alice").await.unwrap().access_token)
        .await
        .is_ok());
}

#[tokio::test]
async fn a_token_is_refused_from_its_expiry_on() {
    let (cognito, auth) = pool().await;
    let token = cognito.tokens("carmen").await.unwrap().access_token;
    let exp: i64 = auth.check(&token).await.unwrap()["exp"].parse().unwrap();
    let before = authorizer_at(&cognito, Clock::at_unix(exp - 1));
    assert!(before.check(&token).await.is_ok());
    let at = authorizer_at(&cognito, Clock::at_unix(exp));
    assert_eq!(
        at.check(&token).await.unwrap_err().reason,
        "the token has expired"
    );
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let (cognito, auth) = pool().await;
    let token = cognito.tokens("carmen").await.unwrap().access_token;
    let iat: i64 = auth.check(&token).await.unwrap()["iat"].parse().unwrap();
    let early = authorizer_at(&cognito, Clock::at_unix(iat - 60));
    assert_eq!(
        early.check(&token).await.unwrap_err().reason,
        "the token is not valid yet"
    );
}

#[tokio::test]
async fn a_token_of_a_client_outside_the_audience_is_refused() {
    let (cognito, auth) = pool().await;
    let other = cognito.create_client("not-in-the-audience").await.unwrap();
    let password = cognito.passwords["alice"].clone();
    let tokens = cognito.sign_in(&other, "alice", &password).await.unwrap();
    for token in [&tokens.access_token, &tokens.id_token] {
        let err = auth.check(token).await.unwrap_err();
        assert_eq!(err.reason, "the token does not have a valid audience");
    }
}

#[tokio::test]
async fn without_an_api_function_an_authorized_request_gets_api_gateway_s_404() {
    let (cognito, auth) = pool().await;
    let token = cognito.tokens("alice").await.unwrap().access_token;
    let state = AppState::new(
        prechat::secrets::Secret::new("t"),
        "s".into(),
        Business::default(),
        RequestLog::new(),
        None,
        vec![],
        "http://127.0.0.1:1/webhook".into(),
        None,
    )
    .with_auth(cognito, auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server::router(state)).await.unwrap() });
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["message"], "Not Found");
}
