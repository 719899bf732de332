//! `GET /webhook`: Meta's webhook verification handshake.
//!
//! Meta calls `GET /webhook?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C` when the
//! callback URL is registered; we answer 200 with `C` as text/plain only when the mode is
//! `subscribe` and `T` equals the configured token (constant-time compare), else 403.
//! Malformed requests get a clear 4xx; nothing here can panic on input.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use subtle::ConstantTimeEq;

use crate::secrets::Secret;

/// The secret verify needs.
pub const VERIFY_TOKEN: &str = "WHATSAPP_VERIFY_TOKEN";

/// Reads the verify token and the log key at init (one SSM call, or a plain env value locally).
pub async fn token_from_env(sdk: &aws_config::SdkConfig) -> Result<Secret, super::InitError> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let (required, _) =
        super::init::load_secrets(&ssm, &[VERIFY_TOKEN], &[], crate::config::process_env).await?;
    match required.into_iter().next() {
        Some(token) => Ok(token),
        None => Err(crate::secrets::SecretError::NotConfigured(VERIFY_TOKEN.to_owned()).into()),
    }
}

/// Longest parameter value we look at; Meta's challenge is a short number.
const MAX_PARAM_LEN: usize = 512;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with the challenge.
    Verified(String),
    /// 403: wrong token or mode.
    Forbidden(&'static str),
    /// 400/405 with a reason.
    BadRequest(StatusCode, String),
}

/// Verifies the handshake parameters. `get` returns every value of a query parameter.
pub fn check(method: &Method, get: impl Fn(&str) -> Vec<String>, token: &Secret) -> Outcome {
    if method != Method::GET {
        return Outcome::BadRequest(StatusCode::METHOD_NOT_ALLOWED, "only GET is allowed".into());
    }
    let mut values = Vec::with_capacity(3);
    for name in ["hub.mode", "hub.verify_token", "hub.challenge"] {
        let mut all = get(name);
        match all.len() {
            0 => return Outcome::BadRequest(StatusCode::BAD_REQUEST, format!("missing {name}")),
            1 => {}
            _ => return Outcome::BadRequest(StatusCode::BAD_REQUEST, format!("repeated {name}")),
        }
        let v = all.pop().unwrap_or_default();
        if v.len() > MAX_PARAM_LEN {
            return Outcome::BadRequest(StatusCode::BAD_REQUEST, format!("{name} is too long"));
        }
        values.push(v);
    }
    let (mode, given, challenge) = (&values[0], &values[1], &values[2]);
    if mode != "subscribe" {
        return Outcome::Forbidden("hub.mode is not subscribe");
    }
    if !bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        return Outcome::Forbidden("verify token mismatch");
    }
    if challenge.is_empty() {
        return Outcome::BadRequest(StatusCode::BAD_REQUEST, "empty hub.challenge".into());
    }
    Outcome::Verified(challenge.clone())
}

/// The Lambda handler body.
pub fn handle(req: &Request, token: &Secret) -> Response<Body> {
    let params = req.query_string_parameters();
    let outcome = check(
        req.method(),
        |k| {
            params
                .all(k)
                .map(|v| v.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default()
        },
        token,
    );
    let (status, body) = match outcome {
        Outcome::Verified(challenge) => {
            tracing::info!("webhook verified");
            (StatusCode::OK, challenge)
        }
        Outcome::Forbidden(reason) => {
            // The reason never includes the token that was sent.
            tracing::warn!(reason, "webhook verification refused");
            (StatusCode::FORBIDDEN, "forbidden".to_owned())
        }
        Outcome::BadRequest(status, reason) => {
            tracing::warn!(%reason, status = status.as_u16(), "bad verification request");
            (status, reason)
        }
    };
    super::text_response(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Vec<String> + 'a {
        move |k| {
            pairs
                .iter()
                .filter(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
                .collect()
        }
    }

    fn token() -> Secret {
        Secret::new("s3cret-token")
    }

    #[test]
    fn right_token_returns_the_challenge() {
        let p = [
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "s3cret-token"),
            ("hub.challenge", "1158201444"),
        ];
        assert_eq!(
            check(&Method::GET, params(&p), &token()),
            Outcome::Verified("1158201444".into())
        );
    }

    #[test]
    fn wrong_token_or_mode_is_forbidden() {
        let p = [
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "s3cret-tokeN"),
            ("hub.challenge", "1"),
        ];
        assert!(matches!(
            check(&Method::GET, params(&p), &token()),
            Outcome::Forbidden(_)
        ));
        let p = [
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "s3cret"),
            ("hub.challenge", "1"),
        ];
        assert!(matches!(
            check(&Method::GET, params(&p), &token()),
            Outcome::Forbidden(_)
        ));
        let p = [
            ("hub.mode", "unsubscribe"),
            ("hub.verify_token", "s3cret-token"),
            ("hub.challenge", "1"),
        ];
        assert!(matches!(
            check(&Method::GET, params(&p), &token()),
            Outcome::Forbidden(_)
        ));
    }

    #[test]
    fn malformed_requests_are_4xx() {
        let missing = [("hub.mode", "subscribe"), ("hub.challenge", "1")];
        assert!(
            matches!(check(&Method::GET, params(&missing), &token()), Outcome::BadRequest(s, _) if s == StatusCode::BAD_REQUEST)
        );
        let repeated = [
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "s3cret-token"),
            ("hub.verify_token", "x"),
            ("hub.challenge", "1"),
        ];
        assert!(
            matches!(check(&Method::GET, params(&repeated), &token()), Outcome::BadRequest(_, m) if m.contains("repeated"))
        );
        let long = "9".repeat(100_000);
        let p = [
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "s3cret-token"),
            ("hub.challenge", long.as_str()),
        ];
        assert!(
            matches!(check(&Method::GET, params(&p), &token()), Outcome::BadRequest(_, m) if m.contains("too long"))
        );
        let ok = [
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "s3cret-token"),
            ("hub.challenge", "1"),
        ];
        assert!(
            matches!(check(&Method::POST, params(&ok), &token()), Outcome::BadRequest(s, _) if s == StatusCode::METHOD_NOT_ALLOWED)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(mode in ".{0,40}", tok in ".{0,40}", ch in ".{0,600}") {
            let p = [("hub.mode", mode.as_str()), ("hub.verify_token", tok.as_str()), ("hub.challenge", ch.as_str())];
            let _ = check(&Method::GET, params(&p), &token());
        }
    }
}
