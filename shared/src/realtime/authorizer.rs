//! `ws-authorizer`: the Lambda REQUEST authorizer of the WebSocket API's `$connect` route.
//!
//! WebSocket APIs have no JWT authorizer and browsers cannot set headers on a socket, so the
//! Cognito access (or id) token comes as `?token=` (identity source
//! `route.request.querystring.token`: without it API Gateway answers 401 itself and never
//! invokes us). The token is checked by [`JwtVerifier`], the same checks `CognitoJwt` makes,
//! against the browser app client (`PRECHAT_JWT_AUDIENCE`), then read by
//! [`api::auth::principal`](crate::api::auth::principal):
//!
//! | token | answer | client sees |
//! |---|---|---|
//! | missing, malformed, bad signature, wrong issuer / audience / token_use, expired, not yet valid | invocation error `Unauthorized` | 401 |
//! | valid, but names no user (a machine client, malformed claims) | `Deny` policy | 403 |
//! | valid user token | `Allow` `execute-api:Invoke` on the method ARN, `principalId` = username, `context` = [`CONTEXT_CLAIMS`] | upgrade |
//!
//! The context carries the claims in the string shape `api::auth::principal` parses (API
//! Gateway hands it to every route of the connection as `requestContext.authorizer`), only
//! the claims `principal` reads: no email, phone or name rides along.
//!
//! Web chat visitors ([`crate::webchat`]) connect with their visitor token instead, when the
//! web chat secret (`PRECHAT_WEBCHAT_TOKEN_SECRET`) is configured: a token that is no JWT but
//! a valid visitor token is allowed as `visitor:V.{id}` ([`visitor_decision`]), its context
//! `{"sub": "V.{id}", "username": "visitor:V.{id}"}`, which `principal` reads as a user of
//! that name and no group, so `ws-connections` stores the connection under the visitor's push
//! principal. It gives no agent rights anywhere: the agent API sits behind the HTTP API's JWT
//! authorizer, which never accepts a visitor token, and a socket only receives pushes. A
//! forged or expired visitor token is 401; a Cognito user whose name would collide with a
//! visitor principal (`visitor:...`) is denied (403), so nobody else gets a visitor's pushes.

use std::collections::HashMap;

use aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use serde::Serialize;

use super::jwt::{jwks_url_of, JwtVerifier, Unauthorized};
use crate::api::auth::{principal, AuthConfig};
use crate::clock::Clock;
use crate::config::{ConfigError, EnvReader};
use crate::webchat::token::{TokenError, VisitorClaims, VisitorTokens};
use crate::webchat::{visitor_principal, VISITOR_PRINCIPAL_PREFIX};

/// The claims passed on in the context: what `api::auth::principal` reads, nothing more.
pub const CONTEXT_CLAIMS: &[&str] = &[
    "sub",
    "token_use",
    "username",
    "cognito:username",
    "client_id",
    "cognito:groups",
    "scope",
];

/// The query parameter holding the token (the authorizer's identity source).
pub const TOKEN_PARAM: &str = "token";

/// The invocation error that makes API Gateway answer 401: its text must be exactly this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unauthorized")]
pub struct Refused;

impl Refused {
    /// Never: the same token gets the same answer.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// What the authorizer answers for a checked token (pure: [`decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the connection in as `principal_id`, with `context`.
    Allow {
        principal_id: String,
        context: HashMap<String, String>,
    },
    /// A valid token that names no agent: 403.
    Deny { principal_id: String },
    /// No valid token: 401.
    Unauthorized,
}

/// The decision for a token the verifier checked (`verified`: its claims, or why not).
pub fn decide(
    verified: Result<HashMap<String, String>, Unauthorized>,
    config: &AuthConfig,
) -> Decision {
    let Ok(claims) = verified else {
        return Decision::Unauthorized;
    };
    let context: HashMap<String, String> = claims
        .into_iter()
        .filter(|(k, _)| CONTEXT_CLAIMS.contains(&k.as_str()))
        .collect();
    match principal(&context, config) {
        // Only a visitor token may connect as a visitor's push principal.
        Ok(p) if p.id.starts_with(VISITOR_PRINCIPAL_PREFIX) => Decision::Deny {
            principal_id: "unknown".to_owned(),
        },
        Ok(p) if !p.machine => Decision::Allow {
            principal_id: p.id,
            context,
        },
        Ok(p) => Decision::Deny { principal_id: p.id },
        Err(_) => Decision::Deny {
            principal_id: "unknown".to_owned(),
        },
    }
}

/// The decision for a visitor token (`verified`: its claims, or why not): allowed as the
/// visitor's push principal, with the context `principal` reads as that name; else 401.
pub fn visitor_decision(verified: Result<VisitorClaims, TokenError>) -> Decision {
    let Ok(claims) = verified else {
        return Decision::Unauthorized;
    };
    let principal_id = visitor_principal(&claims.sub);
    let context = HashMap::from([
        ("sub".to_owned(), claims.sub),
        ("username".to_owned(), principal_id.clone()),
    ]);
    Decision::Allow {
        principal_id,
        context,
    }
}

/// The IAM policy response of a REQUEST authorizer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResponse {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub context: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<PolicyStatement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyStatement {
    pub action: &'static str,
    pub effect: &'static str,
    pub resource: String,
}

impl PolicyResponse {
    fn new(
        principal_id: String,
        allow: bool,
        resource: &str,
        ctx: HashMap<String, String>,
    ) -> Self {
        PolicyResponse {
            principal_id,
            policy_document: PolicyDocument {
                version: "2012-10-17",
                statement: vec![PolicyStatement {
                    action: "execute-api:Invoke",
                    effect: if allow { "Allow" } else { "Deny" },
                    resource: resource.to_owned(),
                }],
            },
            context: ctx,
        }
    }

    /// Whether the policy lets the connection in.
    pub fn allows(&self) -> bool {
        self.policy_document
            .statement
            .iter()
            .all(|s| s.effect == "Allow")
    }
}

/// The answer API Gateway gets for `decision` on `method_arn`.
pub fn respond(decision: Decision, method_arn: &str) -> Result<PolicyResponse, Refused> {
    match decision {
        Decision::Allow {
            principal_id,
            context,
        } => Ok(PolicyResponse::new(principal_id, true, method_arn, context)),
        Decision::Deny { principal_id } => Ok(PolicyResponse::new(
            principal_id,
            false,
            method_arn,
            HashMap::new(),
        )),
        Decision::Unauthorized => Err(Refused),
    }
}

/// The settings of ws-authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `PRECHAT_JWT_ISSUER`: `https://cognito-idp.{region}.amazonaws.com/{pool}`.
    pub issuer: String,
    /// `PRECHAT_JWT_AUDIENCE`: the app client ids accepted (comma separated).
    pub audience: Vec<String>,
    /// `PRECHAT_JWKS_URL`: where the keys are; default `{issuer}/.well-known/jwks.json`.
    pub jwks_url: String,
}

impl AuthorizerConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let issuer = env.required("PRECHAT_JWT_ISSUER");
        let audience = AuthConfig::from_list(&env.required("PRECHAT_JWT_AUDIENCE")).machine_clients;
        let jwks_url = env
            .optional("PRECHAT_JWKS_URL")
            .unwrap_or_else(|| jwks_url_of(&issuer));
        if audience.is_empty() && !issuer.is_empty() {
            env.problem("PRECHAT_JWT_AUDIENCE names no app client");
        }
        env.finish()?;
        Ok(AuthorizerConfig {
            issuer,
            audience,
            jwks_url,
        })
    }
}

/// The authorizer: the verifier (its keys cached for the instance's life) and the decision.
pub struct WsAuthorizer {
    verifier: JwtVerifier,
    config: AuthConfig,
    /// Web chat visitors' tokens (`None`: only agents connect).
    visitors: Option<VisitorTokens>,
    clock: Clock,
}

impl WsAuthorizer {
    pub fn new(verifier: JwtVerifier) -> Self {
        WsAuthorizer {
            verifier,
            // No machine client may open a socket: a push goes to an agent.
            config: AuthConfig::default(),
            visitors: None,
            clock: Clock::system(),
        }
    }

    /// Lets web chat visitors connect with tokens of these (`None`: agents only); `clock`
    /// tells their expiry.
    pub fn with_visitor_tokens(mut self, visitors: Option<VisitorTokens>, clock: Clock) -> Self {
        self.visitors = visitors;
        self.clock = clock;
        self
    }

    pub fn from_config(config: &AuthorizerConfig, clock: Clock) -> Self {
        WsAuthorizer::new(JwtVerifier::new(
            config.issuer.clone(),
            config.audience.clone(),
            config.jwks_url.clone(),
            clock,
        ))
    }

    /// From the environment, with the optional web chat secret and log key (one SSM request).
    pub async fn from_env(
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, crate::entrypoints::InitError> {
        let config = AuthorizerConfig::from_lookup(crate::config::process_env)?;
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let (_, optional) = crate::entrypoints::init::load_secrets(
            &ssm,
            &[],
            &[crate::webchat::token::SECRET],
            crate::config::process_env,
        )
        .await?;
        let visitors = optional
            .into_iter()
            .flatten()
            .next()
            .map(|s| VisitorTokens::new(&s));
        Ok(WsAuthorizer::from_config(&config, Clock::system())
            .with_visitor_tokens(visitors, Clock::system()))
    }

    /// The decision for one token (absent: 401).
    pub async fn decide_token(&self, token: Option<&str>) -> Decision {
        let token = token.filter(|t| !t.is_empty());
        if let (Some(t), Some(visitors)) = (token, &self.visitors) {
            // A JWT is no visitor token (`Malformed`) and goes on to the JWT checks; a visitor
            // token with a bad signature or past its expiry is refused here.
            match visitors.verify(t, self.clock.unix()) {
                Err(TokenError::Malformed) => {}
                verified => {
                    let decision = visitor_decision(verified);
                    let outcome = match &decision {
                        Decision::Allow { .. } => "visitor_allowed",
                        _ => "visitor_unauthorized",
                    };
                    tracing::info!(outcome, "ws connect authorization");
                    return decision;
                }
            }
        }
        let verified = match token {
            Some(t) => self.verifier.check(t).await,
            None => Err(Unauthorized {
                reason: "missing token",
            }),
        };
        let decision = decide(verified, &self.config);
        let outcome = match &decision {
            Decision::Allow { .. } => "allowed",
            Decision::Deny { .. } => "denied",
            Decision::Unauthorized => "unauthorized",
        };
        tracing::info!(outcome, "ws connect authorization");
        decision
    }

    /// One invocation: the event API Gateway sends for `$connect`.
    pub async fn handle(
        &self,
        event: ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<PolicyResponse, Refused> {
        let token = event.query_string_parameters.first(TOKEN_PARAM);
        let decision = self.decide_token(token).await;
        respond(decision, event.method_arn.as_deref().unwrap_or("*"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn alice() -> HashMap<String, String> {
        claims(&[
            ("sub", "s-1"),
            ("token_use", "access"),
            ("client_id", "browser"),
            ("username", "alice"),
            ("cognito:groups", "[agents leads]"),
            ("email", "alice@example.com"),
            ("exp", "1700003600"),
        ])
    }

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/live/$connect";

    #[test]
    fn a_user_token_is_allowed_as_its_username_with_only_the_principal_claims() {
        let Decision::Allow {
            principal_id,
            context,
        } = decide(Ok(alice()), &AuthConfig::default())
        else {
            panic!("not allowed");
        };
        assert_eq!(principal_id, "alice");
        assert_eq!(context["cognito:groups"], "[agents leads]");
        assert!(!context.contains_key("email") && !context.contains_key("exp"));
        let p = principal(&context, &AuthConfig::default()).unwrap();
        assert!(p.is_lead() && p.id == "alice");
    }

    #[test]
    fn a_refused_token_is_a_401_invocation_error() {
        let d = decide(Err(Unauthorized { reason: "x" }), &AuthConfig::default());
        assert_eq!(d, Decision::Unauthorized);
        let err = respond(d, ARN).unwrap_err();
        assert_eq!(err.to_string(), "Unauthorized");
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_machine_token_is_denied() {
        let m = claims(&[
            ("sub", "m"),
            ("token_use", "access"),
            ("client_id", "m"),
            ("scope", "prechat/api"),
        ]);
        let d = decide(Ok(m.clone()), &AuthConfig::from_list("m"));
        assert_eq!(
            d,
            Decision::Deny {
                principal_id: "m".into()
            }
        );
        let mut integrations = alice();
        integrations.insert("cognito:groups".into(), "[integrations]".into());
        assert!(matches!(
            decide(Ok(integrations), &AuthConfig::default()),
            Decision::Deny { .. }
        ));
        // Unlisted machine client: principal() refuses it, so it is denied too.
        assert!(matches!(
            decide(Ok(m), &AuthConfig::default()),
            Decision::Deny { .. }
        ));
    }

    #[test]
    fn malformed_claims_of_a_valid_token_are_denied() {
        let mut c = alice();
        c.insert("username".into(), "al ice".into());
        assert_eq!(
            decide(Ok(c), &AuthConfig::default()),
            Decision::Deny {
                principal_id: "unknown".into()
            }
        );
    }

    #[test]
    fn the_policy_allows_invoke_on_the_method_arn_with_the_context() {
        let r = respond(decide(Ok(alice()), &AuthConfig::default()), ARN).unwrap();
        assert!(r.allows());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["principalId"], "alice");
        assert_eq!(v["policyDocument"]["Version"], "2012-10-17");
        let s = &v["policyDocument"]["Statement"][0];
        assert_eq!(
            (
                s["Action"].as_str(),
                s["Effect"].as_str(),
                s["Resource"].as_str()
            ),
            (Some("execute-api:Invoke"), Some("Allow"), Some(ARN))
        );
        assert_eq!(v["context"]["username"], "alice");
    }

    #[test]
    fn a_deny_policy_carries_no_context() {
        let r = respond(
            Decision::Deny {
                principal_id: "m".into(),
            },
            ARN,
        )
        .unwrap();
        assert!(!r.allows());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert!(v.get("context").is_none());
    }

    #[tokio::test]
    async fn the_sample_event_s_token_is_read_from_the_query_and_refused_unsigned() {
        let path = format!(
            "{}/../events/ws-authorizer.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let event: ApiGatewayCustomAuthorizerRequestTypeRequest =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(event.query_string_parameters.first(TOKEN_PARAM).is_some());
        let jwks = jsonwebtoken::jwk::JwkSet { keys: vec![] };
        let verifier = JwtVerifier::with_keys("iss", vec!["c".into()], &jwks, Clock::at_unix(0));
        let auth = WsAuthorizer::new(verifier);
        assert_eq!(auth.handle(event.clone()).await, Err(Refused));
        let mut without = event;
        without.query_string_parameters = Default::default();
        assert_eq!(auth.decide_token(None).await, Decision::Unauthorized);
        assert_eq!(auth.handle(without).await, Err(Refused));
    }

    const NOW: i64 = 1_796_173_200;
    const VISITOR: &str = "V.abcdefghijklmnop";

    fn visitor_authorizer(secret: Option<&str>) -> WsAuthorizer {
        let jwks = jsonwebtoken::jwk::JwkSet { keys: vec![] };
        let verifier = JwtVerifier::with_keys("iss", vec!["c".into()], &jwks, Clock::at_unix(NOW));
        let tokens = secret.map(|s| VisitorTokens::new(&crate::secrets::Secret::new(s)));
        WsAuthorizer::new(verifier).with_visitor_tokens(tokens, Clock::at_unix(NOW))
    }

    fn visitor_token(secret: &str, issued_at: i64) -> String {
        VisitorTokens::new(&crate::secrets::Secret::new(secret)).issue(VISITOR, issued_at)
    }

    #[tokio::test]
    async fn a_visitor_token_connects_as_the_visitor_s_push_principal() {
        let auth = visitor_authorizer(Some("web-secret"));
        let d = auth
            .decide_token(Some(&visitor_token("web-secret", NOW - 60)))
            .await;
        let Decision::Allow {
            principal_id,
            context,
        } = d.clone()
        else {
            panic!("not allowed: {d:?}");
        };
        assert_eq!(principal_id, "visitor:V.abcdefghijklmnop");
        // ws-connections reads the context with `principal`: the visitor's principal, no group.
        let p = principal(&context, &AuthConfig::default()).unwrap();
        assert_eq!(p.id, crate::webchat::visitor_principal(VISITOR));
        assert!(p.groups.is_empty() && !p.machine && !p.is_lead() && !p.is_admin());
        let r = respond(d, ARN).unwrap();
        assert!(r.allows());
        assert_eq!(r.context["username"], "visitor:V.abcdefghijklmnop");
    }

    #[tokio::test]
    async fn a_forged_or_expired_visitor_token_is_a_401() {
        let auth = visitor_authorizer(Some("web-secret"));
        let forged = visitor_token("another-secret", NOW - 60);
        let expired = visitor_token(
            "web-secret",
            NOW - crate::webchat::token::TOKEN_TTL_SECS - 1,
        );
        for t in [forged, expired, "v1.e30.AAAA".into(), "garbage".into()] {
            assert_eq!(
                auth.decide_token(Some(&t)).await,
                Decision::Unauthorized,
                "{t}"
            );
        }
        // Without the web chat secret no visitor token is accepted.
        let agents_only = visitor_authorizer(None);
        let token = visitor_token("web-secret", NOW - 60);
        assert_eq!(
            agents_only.decide_token(Some(&token)).await,
            Decision::Unauthorized
        );
    }

    #[test]
    fn an_agent_named_like_a_visitor_principal_is_denied() {
        let mut c = alice();
        c.insert("username".into(), "visitor:V.abcdefghijklmnop".into());
        assert!(matches!(
            decide(Ok(c), &AuthConfig::default()),
            Decision::Deny { .. }
        ));
        assert_eq!(
            visitor_decision(Err(TokenError::Expired)),
            Decision::Unauthorized
        );
    }

    #[test]
    fn the_settings_need_issuer_and_audience_and_derive_the_jwks_url() {
        let c = AuthorizerConfig::from_lookup(|k| match k {
            "PRECHAT_JWT_ISSUER" => Some("https://cognito-idp.us-east-1.amazonaws.com/p".into()),
            "PRECHAT_JWT_AUDIENCE" => Some(" a ,b".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.audience, ["a", "b"]);
        assert_eq!(
            c.jwks_url,
            "https://cognito-idp.us-east-1.amazonaws.com/p/.well-known/jwks.json"
        );
        let err = AuthorizerConfig::from_lookup(|_| None).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
    }
}
