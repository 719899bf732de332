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
    use base64::Engine as _;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const ISS: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test";
    const CLIENT: &str = "browser-client";
    const NOW: i64 = 1_700_000_000;
    /// A 2048-bit RSA key made for these tests only (PKCS#1 DER).
    const DER: &[u8] = include_bytes!("testdata/rsa-test-key.der");

    fn signing_key() -> EncodingKey {
        EncodingKey::from_rsa_der(DER)
    }

    fn jwks() -> JwkSet {
        let mut jwk = Jwk::from_encoding_key(&signing_key(), Algorithm::RS256).unwrap();
        jwk.common.key_id = Some("k1".into());
        JwkSet { keys: vec![jwk] }
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::with_keys(ISS, vec![CLIENT.into()], &jwks(), Clock::at_unix(NOW))
    }

    /// An access token of alice, as Cognito issues it, with `edit` applied to its claims.
    fn token(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut claims = json!({
            "sub": "s-1", "iss": ISS, "client_id": CLIENT, "token_use": "access",
            "username": "alice", "cognito:groups": ["agents"], "exp": NOW + 900, "iat": NOW - 5,
        })
        .as_object()
        .cloned()
        .unwrap();
        edit(&mut claims);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &signing_key()).unwrap()
    }

    fn refused(t: &str) -> &'static str {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(verifier().check(t)).unwrap_err().reason
    }

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[tokio::test]
    async fn a_cognito_access_token_gives_its_claims_as_api_gateway_strings() {
        let claims = verifier().check(&token(|_| {})).await.unwrap();
        assert_eq!(claims["username"], "alice");
        assert_eq!(claims["cognito:groups"], "[agents]");
        assert_eq!(claims["exp"], (NOW + 900).to_string());
    }

    #[tokio::test]
    async fn an_id_token_passes_by_its_aud() {
        let t = token(|c| {
            c.remove("client_id");
            c.insert("aud".into(), json!(CLIENT));
            c.insert("token_use".into(), json!("id"));
        });
        assert!(verifier().check(&t).await.is_ok());
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused_by_the_clock() {
        assert_eq!(
            refused(&token(|c| {
                c.insert("exp".into(), json!(NOW));
            })),
            "the token has expired"
        );
        assert_eq!(
            refused(&token(|c| {
                c.remove("exp");
            })),
            "the token has no exp"
        );
        assert_eq!(
            refused(&token(|c| {
                c.insert("nbf".into(), json!(NOW + 1));
            })),
            "the token is not valid yet"
        );
        assert_eq!(
            refused(&token(|c| {
                c.insert("iat".into(), json!("soon"));
            })),
            "the token is not valid yet"
        );
    }

    #[test]
    fn another_issuer_audience_or_token_use_is_refused() {
        let other_iss = token(|c| {
            c.insert("iss".into(), json!(format!("{ISS}x")));
        });
        assert_eq!(refused(&other_iss), "the token has an invalid issuer");
        let other_client = token(|c| {
            c.insert("client_id".into(), json!("helpdesk"));
        });
        assert_eq!(
            refused(&other_client),
            "the token does not have a valid audience"
        );
        let aud_list = token(|c| {
            c.insert("aud".into(), json!(["x", 5]));
        });
        assert_eq!(
            refused(&aud_list),
            "the token does not have a valid audience"
        );
        for token_use in [json!("refresh"), json!(null), json!(["access"])] {
            let t = token(|c| {
                c.insert("token_use".into(), token_use);
            });
            assert_eq!(refused(&t), "the token is not an access or id token");
        }
        assert_eq!(
            refused(&token(|c| {
                c.remove("token_use");
            })),
            "the token is not an access or id token"
        );
    }

    #[test]
    fn a_tampered_payload_or_signature_is_refused() {
        let t = token(|_| {});
        let parts: Vec<&str> = t.split('.').collect();
        let forged = b64(
            &json!({"sub": "s-1", "iss": ISS, "client_id": CLIENT, "token_use": "access",
            "username": "admin", "cognito:groups": ["admins"], "exp": NOW + 900}),
        );
        assert_eq!(
            refused(&format!("{}.{forged}.{}", parts[0], parts[2])),
            "signature is invalid"
        );
        assert_eq!(
            refused(&format!("{}.{}.AAAA", parts[0], parts[1])),
            "signature is invalid"
        );
    }

    #[test]
    fn alg_none_hs256_and_unknown_kids_are_refused_before_any_key_is_used() {
        let payload = b64(
            &json!({"sub": "s", "iss": ISS, "client_id": CLIENT, "token_use": "access",
            "username": "x", "exp": NOW + 900}),
        );
        let none = format!("{}.{payload}.", b64(&json!({"alg": "none", "kid": "k1"})));
        assert_eq!(refused(&none), "malformed token");
        // HS256 keyed with the public key's text: the classic algorithm confusion.
        let mut hs_header = Header::new(Algorithm::HS256);
        hs_header.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(
            &hs_header,
            &json!({"sub": "s", "iss": ISS, "client_id": CLIENT, "token_use": "access", "exp": NOW + 900}),
            &EncodingKey::from_secret(serde_json::to_string(&jwks()).unwrap().as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(refused(&hs), "signing algorithm is not RS256");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k2".into());
        let other_kid =
            jsonwebtoken::encode(&header, &json!({"exp": NOW + 900}), &signing_key()).unwrap();
        assert_eq!(refused(&other_kid), "no key for the token's kid");
        let no_kid =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &json!({}), &signing_key())
                .unwrap();
        assert_eq!(refused(&no_kid), "token has no kid");
    }

    #[test]
    fn garbage_and_oversized_tokens_are_refused_without_panic() {
        for t in [
            "",
            ".",
            "..",
            "a.b.c",
            "\u{0}\u{ffff}",
            "eyJ.eyJ.x",
            "é.é.é",
            "Bearer x",
        ] {
            assert!(!refused(t).is_empty(), "{t:?}");
        }
        assert_eq!(
            refused(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            "token is too long"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_as_a_token_are_refused_without_panic(t in ".{0,300}") {
            let _ = refused(&t);
        }
    }

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
