//! `X-Hub-Signature-256` verification of Meta's webhook deliveries.
//!
//! Meta signs every `POST /webhook` with `sha256=<hex HMAC-SHA256(app secret, raw body)>`. The MAC
//! is computed over the exact bytes received: the JSON is never re-serialised first, because Meta
//! escapes non-ASCII characters as `\uXXXX` and any re-encoding would change the bytes. The hex
//! may come in either case; the comparison is constant-time (`Mac::verify_slice`, built on
//! `subtle`). Each way a signature can be wrong has its own [`SignatureError`] variant so the log
//! line says why a delivery was refused, without ever showing the body.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secrets::Secret;

/// The header Meta sends (HTTP header names are case-insensitive; `http` lower-cases them).
pub const HEADER: &str = "x-hub-signature-256";

const PREFIX: &str = "sha256=";
/// An HMAC-SHA256 in hex.
const HEX_LEN: usize = 64;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("X-Hub-Signature-256 header is not valid text")]
    NotText,
    #[error("signature does not start with sha256=")]
    WrongPrefix,
    #[error("signature is not hexadecimal")]
    BadHex,
    #[error("signature has {0} hex digits, expected 64")]
    WrongLength(usize),
    #[error("signature does not match the body")]
    Mismatch,
}

/// Verifies signatures with one app secret. The HMAC key schedule is computed once (at init) and
/// cloned per delivery, which saves two SHA-256 blocks on every request.
#[derive(Clone)]
pub struct Verifier {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(***)")
    }
}

impl Verifier {
    pub fn new(app_secret: &Secret) -> Self {
        Verifier {
            keyed: keyed_mac(app_secret.expose().as_bytes()),
        }
    }

    /// Checks `header` (the raw `X-Hub-Signature-256` value, if any) against `body`.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let header = std::str::from_utf8(header)
            .map_err(|_| SignatureError::NotText)?
            .trim();
        let hex_part = header
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| header.get(PREFIX.len()..))
            .ok_or(SignatureError::WrongPrefix)?;
        if !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SignatureError::BadHex);
        }
        if hex_part.len() != HEX_LEN {
            return Err(SignatureError::WrongLength(hex_part.len()));
        }
        let mut expected = [0u8; HEX_LEN / 2];
        hex::decode_to_slice(hex_part, &mut expected).map_err(|_| SignatureError::BadHex)?;
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac.verify_slice(&expected)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// The header value Meta would send for `body` (fixtures, tests, local tools).
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(body);
        format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
    }
}

fn keyed_mac(key: &[u8]) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length (long keys are hashed first): unreachable, but a
        // zero-length key is still a valid, if useless, HMAC key and never panics.
        Err(_) => <Hmac<Sha256> as KeyInit>::new(&Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "local-app-secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    fn verifier() -> Verifier {
        Verifier::new(&Secret::new(SECRET))
    }

    /// An independent computation of the expected header, so `sign` is checked too.
    fn reference_signature(body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn known_answer() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let v = Verifier::new(&Secret::new("Jefe"));
        assert_eq!(
            v.sign(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn valid_signature_is_accepted() {
        let sig = reference_signature(BODY);
        assert_eq!(verifier().sign(BODY), sig);
        assert_eq!(verifier().verify(Some(sig.as_bytes()), BODY), Ok(()));
    }

    #[test]
    fn missing_header_is_refused() {
        assert_eq!(verifier().verify(None, BODY), Err(SignatureError::Missing));
    }

    #[test]
    fn sha1_prefix_is_refused() {
        let sig = reference_signature(BODY).replacen("sha256=", "sha1=", 1);
        assert_eq!(
            verifier().verify(Some(sig.as_bytes()), BODY),
            Err(SignatureError::WrongPrefix)
        );
        let bare = reference_signature(BODY).replacen("sha256=", "", 1);
        assert_eq!(
            verifier().verify(Some(bare.as_bytes()), BODY),
            Err(SignatureError::WrongPrefix)
        );
        assert_eq!(
            verifier().verify(Some(b"sha25"), BODY),
            Err(SignatureError::WrongPrefix)
        );
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let sig = reference_signature(BODY);
        let upper = format!("sha256={}", sig["sha256=".len()..].to_ascii_uppercase());
        assert_ne!(upper, sig);
        assert_eq!(verifier().verify(Some(upper.as_bytes()), BODY), Ok(()));
    }

    #[test]
    fn truncated_signature_is_refused() {
        let sig = reference_signature(BODY);
        let short = &sig[..sig.len() - 1];
        assert_eq!(
            verifier().verify(Some(short.as_bytes()), BODY),
            Err(SignatureError::WrongLength(63))
        );
        let long = format!("{sig}00");
        assert_eq!(
            verifier().verify(Some(long.as_bytes()), BODY),
            Err(SignatureError::WrongLength(66))
        );
        assert_eq!(
            verifier().verify(Some(b"sha256="), BODY),
            Err(SignatureError::WrongLength(0))
        );
    }

    #[test]
    fn bad_hex_is_refused() {
        let sig = reference_signature(BODY);
        let bad = format!("{}g", &sig[..sig.len() - 1]);
        assert_eq!(
            verifier().verify(Some(bad.as_bytes()), BODY),
            Err(SignatureError::BadHex)
        );
        assert_eq!(
            verifier().verify(Some(&[0xff, 0xfe]), BODY),
            Err(SignatureError::NotText)
        );
    }

    #[test]
    fn body_changed_by_one_byte_is_refused() {
        let sig = reference_signature(BODY);
        for i in 0..BODY.len() {
            let mut changed = BODY.to_vec();
            changed[i] ^= 0x01;
            assert_eq!(
                verifier().verify(Some(sig.as_bytes()), &changed),
                Err(SignatureError::Mismatch),
                "byte {i}"
            );
        }
        let other = Verifier::new(&Secret::new("another-secret"));
        assert_eq!(
            other.verify(Some(sig.as_bytes()), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn escaped_unicode_is_signed_as_sent_not_as_decoded() {
        // Meta escapes non-ASCII: the MAC covers the escapes, not the characters they stand for.
        let escaped = br#"{"text":{"body":"Ol\u00e1 \ud83d\ude00"}}"#;
        let decoded = "{\"text\":{\"body\":\"Olá 😀\"}}".as_bytes();
        let sig = reference_signature(escaped);
        assert_eq!(verifier().verify(Some(sig.as_bytes()), escaped), Ok(()));
        assert_eq!(
            verifier().verify(Some(sig.as_bytes()), decoded),
            Err(SignatureError::Mismatch)
        );
        // Same text, parsed: both bodies mean the same JSON, which is why we never re-serialise.
        let a: serde_json::Value = serde_json::from_slice(escaped).unwrap();
        let b: serde_json::Value = serde_json::from_slice(decoded).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn surrounding_whitespace_in_the_header_is_tolerated() {
        let sig = format!(" {} ", reference_signature(BODY));
        assert_eq!(verifier().verify(Some(sig.as_bytes()), BODY), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_never_panic_and_never_verify(header in proptest::collection::vec(proptest::num::u8::ANY, 0..100),
                                                          body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let v = verifier();
            let r = v.verify(Some(&header), &body);
            // Only the real MAC verifies.
            if r.is_ok() {
                proptest::prop_assert_eq!(header.trim_ascii().to_ascii_lowercase(), v.sign(&body).into_bytes());
            }
        }

        #[test]
        fn signing_then_verifying_round_trips(body in proptest::collection::vec(proptest::num::u8::ANY, 0..500)) {
            let v = verifier();
            let sig = v.sign(&body);
            proptest::prop_assert_eq!(v.verify(Some(sig.as_bytes()), &body), Ok(()));
        }
    }
}
