//! The visitor token: what a web chat visitor's browser keeps (localStorage) and presents on
//! every `/webchat/` request (`Authorization: Bearer`) and on its WebSocket (`?token=`). It
//! names the visitor and nothing else (no answers, no name): `v1.{payload}.{signature}`, the
//! payload base64url JSON `{"sub": "V.{visitor id}", "iat", "exp"}` (Unix seconds), the
//! signature base64url HMAC-SHA256 of `v1.{payload}` under the web chat secret (SSM, as every
//! secret). Verified in constant time; any byte string gets an answer, never a panic.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secrets::Secret;

/// The secret the tokens are signed with (`..._PARAM` names its SSM parameter in AWS; the
/// local stack sets `local-webchat-secret`).
pub const SECRET: &str = "PRECHAT_WEBCHAT_TOKEN_SECRET";
/// How long a token is good for: a visitor coming back within it continues their conversation.
pub const TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
/// Longer input is refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 512;
const VERSION: &str = "v1";

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorClaims {
    /// The visitor's contact key (`V.{visitor id}`).
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a token was refused (the caller answers 401 for all of them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed visitor token")]
    Malformed,
    #[error("visitor token signature does not match")]
    BadSignature,
    #[error("visitor token expired")]
    Expired,
}

impl TokenError {
    /// Never: the same token gets the same answer.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Signs and verifies visitor tokens with one secret.
#[derive(Clone)]
pub struct VisitorTokens {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for VisitorTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitorTokens(***)")
    }
}

impl VisitorTokens {
    pub fn new(secret: &Secret) -> Self {
        let keyed = match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
            Ok(m) => m,
            // HMAC takes keys of any length: unreachable, and never a panic.
            Err(_) => <Hmac<Sha256> as KeyInit>::new(&Default::default()),
        };
        VisitorTokens { keyed }
    }

    fn mac(&self, signed: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(signed.as_bytes());
        mac
    }

    /// A token for `contact_key` issued at `now`.
    pub fn issue(&self, contact_key: &str, now: i64) -> String {
        let claims = VisitorClaims {
            sub: contact_key.to_owned(),
            iat: now,
            exp: now.saturating_add(TOKEN_TTL_SECS),
        };
        // A struct of a string and two integers always serialises.
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let signed = format!("{VERSION}.{}", B64.encode(json));
        let sig = B64.encode(self.mac(&signed).finalize().into_bytes());
        format!("{signed}.{sig}")
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: i64) -> Result<VisitorClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(version), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if version != VERSION {
            return Err(TokenError::Malformed);
        }
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        self.mac(&format!("{version}.{payload}"))
            .verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let json = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: VisitorClaims =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        let id = claims.sub.strip_prefix(super::VISITOR_PREFIX).unwrap_or("");
        if !super::is_visitor_id(id) {
            return Err(TokenError::Malformed);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_796_173_200;
    const KEY: &str = "V.abcdefghijklmnop";

    fn tokens(secret: &str) -> VisitorTokens {
        VisitorTokens::new(&Secret::new(secret))
    }

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let t = tokens("s1");
        let token = t.issue(KEY, NOW);
        let claims = t.verify(&token, NOW + 10).unwrap();
        assert_eq!((claims.sub.as_str(), claims.iat), (KEY, NOW));
        assert_eq!(
            t.verify(&token, NOW + TOKEN_TTL_SECS),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn another_secret_or_a_changed_payload_is_refused() {
        let token = tokens("s1").issue(KEY, NOW);
        assert_eq!(
            tokens("s2").verify(&token, NOW),
            Err(TokenError::BadSignature)
        );
        let other = tokens("s1").issue("V.bbbbbbbbbbbbbbbb", NOW);
        let (head, _) = token.rsplit_once('.').unwrap();
        let (_, sig) = other.rsplit_once('.').unwrap();
        assert_eq!(
            tokens("s1").verify(&format!("{head}.{sig}"), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let t = tokens("s1");
        let forged = |claims: &str| {
            let signed = format!("v1.{}", B64.encode(claims));
            let sig = B64.encode(t.mac(&signed).finalize().into_bytes());
            format!("{signed}.{sig}")
        };
        for bad in [
            String::new(),
            "v1".into(),
            "v1.a.b.c".into(),
            "v2.e30.AAAA".into(),
            "x".repeat(MAX_TOKEN_BYTES + 1),
            forged("{}"),
            forged(r#"{"sub":"alice","iat":0,"exp":9999999999}"#),
            forged(r#"{"sub":"V.short","iat":0,"exp":9999999999}"#),
        ] {
            assert!(t.verify(&bad, NOW).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_gets_an_answer_without_panic(s in "\\PC{0,600}") {
            let _ = tokens("s1").verify(&s, NOW);
        }
    }
}
