//! The one place that sets up logging, and the redaction helper every log line uses for contacts.
//!
//! Lambda's advanced logging controls set `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and
//! `AWS_LAMBDA_LOG_LEVEL`; `RUST_LOG` refines the filter. `lambda_runtime` opens one span per
//! invocation carrying the `requestId`, so every line of an invocation can be found by it.
//!
//! Phone numbers, business-scoped user ids, names and answers never go to a log in clear: log
//! [`redact`]`(id)` instead, a short keyed hash that still lets one follow a contact across lines.

use std::fmt;
use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tracing_subscriber::EnvFilter;

use crate::secrets::Secret;

/// Installs the global tracing subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_lowercase())
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|f| f.eq_ignore_ascii_case("json"))
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time(); // CloudWatch stamps every line
    let _ = if json {
        builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

static REDACTION_KEY: OnceLock<Vec<u8>> = OnceLock::new();

/// Sets the key for [`redact`] (from the `PRECHAT_LOG_KEY` secret). First call wins.
pub fn set_redaction_key(key: &Secret) {
    let _ = REDACTION_KEY.set(key.expose().as_bytes().to_vec());
}

fn redaction_key() -> &'static [u8] {
    REDACTION_KEY.get_or_init(|| {
        // No configured key: a per-process random one still hides the value; hashes then only
        // correlate within one process.
        use std::hash::{BuildHasher, Hasher};
        let mut bytes = Vec::with_capacity(32);
        for _ in 0..4 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(std::process::id() as u64);
            bytes.extend_from_slice(&h.finish().to_le_bytes());
        }
        bytes
    })
}

/// A contact identifier (phone number, BSUID) made safe to log: `c:` + 12 hex chars of a keyed hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Redacts a personal value for logging.
pub fn redact(value: &str) -> Redacted {
    let mut mac = match Hmac::<Sha256>::new_from_slice(redaction_key()) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => return Redacted("c:????????????".to_owned()),
    };
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    Redacted(format!("c:{}", hex::encode(&digest[..6])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_is_stable_short_and_hides_the_value() {
        let a = redact("15551234567");
        let b = redact("15551234567");
        let c = redact("15551234568");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let s = a.to_string();
        assert!(s.starts_with("c:") && s.len() == 14, "{s}");
        assert!(!s.contains("1555"));
    }
}
