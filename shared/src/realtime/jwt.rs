//! The Cognito token verifier: the checks the HTTP API JWT authorizer (`CognitoJwt` in
//! `infra/template.yaml`) makes in front of every `/api/*` route, as one implementation for
//! the WebSocket REQUEST authorizer (`ws-authorizer`, which API Gateway cannot give a JWT
//! authorizer) and for the local stack's emulation of `CognitoJwt`:
//!
//! 1. (HTTP API only, [`JwtAuthorizer::authorize`]) the identity source
//!    `$request.header.Authorization` must be present (`Bearer <jwt>`, or the bare token, as
//!    API Gateway accepts both); the WebSocket authorizer takes the `token` query parameter;
//! 2. the token is at most [`MAX_TOKEN_BYTES`], an RS256 JWT whose `kid` is in the issuer's
//!    JWKS (`{issuer}/.well-known/jwks.json`, or moto's locally; fetched once per instance and
//!    cached, fetched again for an unknown `kid` at most once per [`REFETCH_AFTER_SECS`], so
//!    tokens with made-up `kid`s cannot make every request a JWKS download), and its signature
//!    verifies with that key (`alg: none`, HS256 and every other algorithm are refused before
//!    any key is looked at);
//! 3. `iss` equals the configured issuer (`https://cognito-idp.{region}.amazonaws.com/{pool}`,
//!    which is NOT the host serving the keys locally);
//! 4. `exp` is after now, `nbf` and `iat` (when present) not after now, by the injected clock;
//! 5. `aud`, or `client_id` when the token has no `aud` (access tokens), is one of the
//!    audience;
//! 6. `token_use` is `access` or `id` (a Cognito refresh token is no JWT; anything else is not
//!    Cognito's).
//!
//! Any failure is an [`Unauthorized`] (a 401; AWS's body `{"message":"Unauthorized"}`, the
//! reason only in `www-authenticate`, never a claim value). A valid token's claims are handed
//! on AS API GATEWAY DOES: a flat map of strings, numbers in their JSON text (`"1700000000"`),
//! arrays Go-style as `"[agents leads]"` — not parsed JSON, or every role check passes locally
//! and fails after `sam deploy`. `api::auth::principal` reads that map.
//!
//! Total: any byte string as a token gives claims or a refusal, never a panic.

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::clock::Clock;

/// A refusal: 401 `{"message":"Unauthorized"}`. `reason` goes into `www-authenticate` only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("401 Unauthorized: {reason}")]
pub struct Unauthorized {
    pub reason: &'static str,
}

/// Longest token accepted, in bytes (Cognito's are about 1 KB; API Gateway's own limit on a
/// header is 10 KB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Shortest pause between two JWKS downloads for unknown `kid`s, in seconds.
pub const REFETCH_AFTER_SECS: i64 = 60;

impl Unauthorized {
    /// Never: the same token gets the same answer.
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// AWS's body for a refused JWT.
    pub const BODY: &'static str = r#"{"message":"Unauthorized"}"#;

    /// The `www-authenticate` header API Gateway adds.
    pub fn www_authenticate(&self) -> String {
        format!(
            "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{}\"",
            self.reason
        )
    }
}

fn refuse(reason: &'static str) -> Unauthorized {
    Unauthorized { reason }
}

/// The verifier's configuration and its cached keys.
pub struct JwtAuthorizer {
    issuer: String,
    audience: Vec<String>,
    /// `None`: the keys given at construction are all there are (tests).
    jwks_url: Option<String>,
    http: reqwest::Client,
    clock: Clock,
    keys: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// When the JWKS was last downloaded (Unix seconds), if ever.
    fetched_at: Option<i64>,
}

/// The verifier under the name of what it checks for the WebSocket API.
pub type JwtVerifier = JwtAuthorizer;

/// The JWKS URL of a Cognito issuer.
pub fn jwks_url_of(issuer: &str) -> String {
    format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
}

impl JwtAuthorizer {
    pub fn new(
        issuer: impl Into<String>,
        audience: Vec<String>,
        jwks_url: impl Into<String>,
        clock: Clock,
    ) -> Self {
        JwtAuthorizer {
            issuer: issuer.into(),
            audience,
            jwks_url: Some(jwks_url.into()),
            http: reqwest::Client::new(),
            clock,
            keys: Mutex::new(Keys::default()),
        }
    }

    /// A verifier that trusts exactly the keys of `set` and never downloads any.
    pub fn with_keys(
        issuer: impl Into<String>,
        audience: Vec<String>,
        set: &JwkSet,
        clock: Clock,
    ) -> Self {
        JwtAuthorizer {
            issuer: issuer.into(),
            audience,
            jwks_url: None,
            http: reqwest::Client::new(),
            clock,
            keys: Mutex::new(Keys {
                by_kid: decoding_keys(set),
                fetched_at: None,
            }),
        }
    }

    /// Checks the request's `Authorization` header; the claims API Gateway would pass on.
    /// `headers`: names as received (any case), repeated ones repeated.
    pub async fn authorize(
        &self,
        headers: &[(String, String)],
    ) -> Result<HashMap<String, String>, Unauthorized> {
        let mut values = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str());
        let value = values.next().ok_or(refuse("missing authorization"))?;
        if values.next().is_some() {
            return Err(refuse("more than one authorization header"));
        }
        let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
        if token.is_empty() {
            return Err(refuse("missing token"));
        }
        self.check(token).await
    }

    /// Checks one token (steps 2-5 of the module doc).
    pub async fn check(&self, token: &str) -> Result<HashMap<String, String>, Unauthorized> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refuse("token is too long"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("malformed token"))?;
        if header.alg != Algorithm::RS256 {
            return Err(refuse("signing algorithm is not RS256"));
        }
        let kid = header.kid.ok_or(refuse("token has no kid"))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        // Time, issuer and audience are checked below, on the injected clock, as AWS does.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|_| refuse("signature is invalid"))?;
        let claims = data.claims;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(refuse("the token has an invalid issuer"));
        }
        let now = self.clock.unix();
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp > now => {}
            Some(_) => return Err(refuse("the token has expired")),
            None => return Err(refuse("the token has no exp")),
        }
        for name in ["nbf", "iat"] {
            match claims.get(name) {
                None => {}
                Some(v) => match v.as_i64() {
                    Some(t) if t <= now => {}
                    _ => return Err(refuse("the token is not valid yet")),
                },
            }
        }
        let audience = match claims.get("aud") {
            Some(aud) => audiences(aud),
            None => claims
                .get("client_id")
                .and_then(Value::as_str)
                .map(|c| vec![c.to_owned()])
                .unwrap_or_default(),
        };
        if !audience.iter().any(|a| self.audience.contains(a)) {
            return Err(refuse("the token does not have a valid audience"));
        }
        if !matches!(
            claims.get("token_use").and_then(Value::as_str),
            Some("access" | "id")
        ) {
            return Err(refuse("the token is not an access or id token"));
        }
        Ok(api_gateway_claims(&claims))
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, Unauthorized> {
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let Some(url) = &self.jwks_url else {
            return Err(refuse("no key for the token's kid"));
        };
        let now = self.clock.unix();
        let recently = self
            .keys
            .lock()
            .ok()
            .and_then(|k| k.fetched_at)
            .is_some_and(|at| now - at < REFETCH_AFTER_SECS);
        if recently {
            return Err(refuse("no key for the token's kid"));
        }
        let set: JwkSet = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|_| refuse("the issuer's keys are unavailable"))?
            .json()
            .await
            .map_err(|_| refuse("the issuer's keys are unreadable"))?;
        if let Ok(mut cache) = self.keys.lock() {
            *cache = Keys {
                by_kid: decoding_keys(&set),
                fetched_at: Some(now),
            };
        }
        self.cached(kid).ok_or(refuse("no key for the token's kid"))
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.lock().ok()?.by_kid.get(kid).cloned()
    }
}

/// The RSA keys of a JWKS by `kid` (keys without a `kid` or of another kind are skipped).
fn decoding_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
        .collect()
}

fn audiences(aud: &Value) -> Vec<String> {
    match aud {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The claims as API Gateway passes them to the function: every value a string.
pub fn api_gateway_claims(claims: &Map<String, Value>) -> HashMap<String, String> {
    claims
        .iter()
        .map(|(k, v)| (k.clone(), claim_text(v)))
        .collect()
}

/// One claim's value as API Gateway renders it: strings as they are, numbers and booleans in
/// their JSON text, arrays `[a b]` (elements rendered the same way, space separated), objects
/// `map[k:v]` (keys sorted), null as an empty string.
pub fn claim_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_text).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = pairs
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", claim_text(v)))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_become_strings_as_api_gateway_renders_them() {
        let claims = json!({
            "sub": "s-1", "exp": 1700003600, "email_verified": true,
            "cognito:groups": ["agents", "leads"], "empty": [], "nested": {"b": 2, "a": "x"},
            "none": null,
        });
        let out = api_gateway_claims(claims.as_object().unwrap());
        assert_eq!(out["sub"], "s-1");
        assert_eq!(out["exp"], "1700003600");
        assert_eq!(out["email_verified"], "true");
        assert_eq!(out["cognito:groups"], "[agents leads]");
        assert_eq!(out["empty"], "[]");
        assert_eq!(out["nested"], "map[a:x b:2]");
        assert_eq!(out["none"], "");
    }

    #[test]
    fn the_refusal_is_aws_s_body_with_the_reason_in_the_header_only() {
        let r = refuse("the token has expired");
        assert_eq!(Unauthorized::BODY, r#"{"message":"Unauthorized"}"#);
        assert!(r
            .www_authenticate()
            .contains("error_description=\"the token has expired\""));
    }
}
