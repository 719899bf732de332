//! The one place that sets up logging, and the redaction helper every log line uses for contacts.
//!
//! Lambda's advanced logging controls set `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and
//! `AWS_LAMBDA_LOG_LEVEL` (the template's `ApplicationLogLevel`, `INFO`). `lambda_runtime` opens
//! one span per invocation carrying the `requestId`, so every line of an invocation can be found
//! by it.
//!
//! Phone numbers, business-scoped user ids, names, emails and answers never go to a log in
//! clear: log [`redact`]`(id)` instead, a short keyed hash that still lets one follow a contact
//! across lines. Other crates cannot be held to that: the AWS SDK's and hyper's `debug`/`trace`
//! logs may print request and response bodies (a queued event holds the contact's number, name
//! and text). So [`filter_directives`] applies `AWS_LAMBDA_LOG_LEVEL` to prechat's own crates
//! only and caps every other crate at `info`: raising the function's log level to `DEBUG` or
//! `TRACE` never turns those logs on. `RUST_LOG`, when set, replaces the filter as written: an
//! explicit choice for local debugging, never to be set on a deployed function.

use std::fmt;
use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::secrets::Secret;

/// The crates whose logs follow the redaction rule: the library and the function binaries.
pub const OWN_CRATES: &[&str] = &[
    "prechat",
    "webhook_verify",
    "webhook_ingest",
    "survey_engine",
    "survey_timer",
    "agent_assigner",
    "reply_sender",
    "ws_authorizer",
    "ws_connections",
    "prechat_local",
];

/// The `EnvFilter` directives for a Lambda log level (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`,
/// `FATAL`; default and fallback `INFO`) and an optional `RUST_LOG`, which wins when set.
pub fn filter_directives(lambda_level: Option<&str>, rust_log: Option<&str>) -> String {
    if let Some(r) = rust_log.map(str::trim).filter(|r| !r.is_empty()) {
        return r.to_owned();
    }
    let level = match lambda_level
        .map(|l| l.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("trace") => "trace",
        Some("debug") => "debug",
        Some("warn") => "warn",
        Some("error") | Some("fatal") => "error",
        _ => "info",
    };
    let others = match level {
        "trace" | "debug" => "info",
        other => other,
    };
    let mut directives = vec![others.to_owned()];
    directives.extend(OWN_CRATES.iter().map(|c| format!("{c}={level}")));
    directives.join(",")
}

/// The functions' subscriber (JSON like Lambda's, or text) writing to `writer`: what [`init`]
/// installs, and what the log tests capture.
pub fn subscriber<W>(
    directives: &str,
    json: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .with_writer(writer)
        .with_target(false)
        .without_time(); // CloudWatch stamps every line
    if json {
        Box::new(
            builder
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        )
    } else {
        Box::new(builder.with_ansi(false).finish())
    }
}

/// Installs the global tracing subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let mut env = crate::config::EnvReader::from_env();
    let directives = filter_directives(
        env.optional("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        env.optional("RUST_LOG").as_deref(),
    );
    let json = env
        .optional("AWS_LAMBDA_LOG_FORMAT")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = tracing::subscriber::set_global_default(subscriber(&directives, json, std::io::stdout));
}

/// A JSON error made safe to log: its category and position only. serde's message quotes the
/// offending value (`invalid type: string "..."`), which may be a phone number or an answer.
pub fn json_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

static REDACTION_KEY: OnceLock<Vec<u8>> = OnceLock::new();
static RANDOM_KEY: OnceLock<Vec<u8>> = OnceLock::new();

/// Sets the key for [`redact`] (from the `PRECHAT_LOG_KEY` secret, which
/// `entrypoints::init` loads at start). First call wins; a value redacted before it (there is
/// none in a function: init comes first) used the per-process random key.
pub fn set_redaction_key(key: &Secret) {
    let _ = REDACTION_KEY.set(key.expose().as_bytes().to_vec());
}

fn redaction_key() -> &'static [u8] {
    if let Some(key) = REDACTION_KEY.get() {
        return key;
    }
    RANDOM_KEY.get_or_init(|| {
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
    fn the_lambda_log_level_applies_to_our_crates_and_others_stay_at_info_at_most() {
        let d = filter_directives(Some("TRACE"), None);
        assert!(d.starts_with("info,prechat=trace,"), "{d}");
        assert!(d.contains("reply_sender=trace"), "{d}");
        assert!(filter_directives(Some("DEBUG"), None).starts_with("info,prechat=debug"));
        assert!(filter_directives(None, None).starts_with("info,prechat=info"));
        assert!(filter_directives(Some("WARN"), None).starts_with("warn,prechat=warn"));
        assert!(filter_directives(Some("FATAL"), None).starts_with("error,prechat=error"));
        assert!(filter_directives(Some("loud"), None).starts_with("info,prechat=info"));
    }

    #[test]
    fn rust_log_replaces_the_filter_when_set() {
        assert_eq!(
            filter_directives(Some("DEBUG"), Some("aws_smithy_runtime=trace")),
            "aws_smithy_runtime=trace"
        );
        assert!(filter_directives(Some("DEBUG"), Some(" ")).starts_with("info,"));
    }

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
