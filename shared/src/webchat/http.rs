//! The visitor endpoints' pure parts (no AWS types): which origins may call, the CORS headers,
//! the request bodies and their limits, the rate-limit scopes, new visitor ids and what of a
//! transcript a visitor sees. `entrypoints::webchat` wires them to DynamoDB and SQS.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::transcript::{Author, Body, Entry, Event};

/// Larger request bodies are refused (413) before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest visitor message, in bytes (as a WhatsApp text).
pub const MAX_TEXT_BYTES: usize = 4096;
/// What the browser sends as `nonce`: 8 to 64 characters of `A-Z a-z 0-9 - _`.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=64;
/// How long the browser may cache `/widget.js`.
pub const WIDGET_MAX_AGE_SECS: u32 = 300;

/// The widget: the shared validators, then the widget itself, as one script.
pub const WIDGET_JS: &str = concat!(
    include_str!("../../web/widget/validators.js"),
    "\n",
    include_str!("../../web/widget/widget.js")
);

// ------------------------------------------------------------------ origins and CORS

/// The websites allowed to call `/webchat/*` (`PRECHAT_WEBCHAT_ORIGINS`, a comma list of
/// `scheme://host[:port]`). Compared exactly, case-insensitively, without a trailing slash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    pub fn parse(list: &str) -> Self {
        AllowedOrigins(
            list.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
        )
    }

    /// The request's `Origin` if it is allowed (what `access-control-allow-origin` echoes).
    pub fn check<'a>(&self, origin: Option<&'a str>) -> Option<&'a str> {
        let origin = origin?;
        let wanted = origin.trim_end_matches('/').to_ascii_lowercase();
        self.0.contains(&wanted).then_some(origin)
    }

    pub fn list(&self) -> &[String] {
        &self.0
    }
}

/// The CORS headers of every answer to an allowed origin.
pub fn cors_headers(origin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("access-control-allow-origin", origin.to_owned()),
        ("vary", "origin".to_owned()),
    ]
}

/// The extra headers of a preflight answer.
pub fn preflight_headers() -> Vec<(&'static str, String)> {
    vec![
        (
            "access-control-allow-methods",
            "GET, POST, OPTIONS".to_owned(),
        ),
        (
            "access-control-allow-headers",
            "authorization, content-type".to_owned(),
        ),
        ("access-control-max-age", "600".to_owned()),
    ]
}

// ------------------------------------------------------------------ request bodies

/// `POST /webchat/conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubmitBody {
    #[serde(default)]
    pub survey: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    pub nonce: String,
    /// The honeypot: hidden from people, filled in by bots.
    #[serde(default)]
    pub website: Option<String>,
}

impl SubmitBody {
    /// Whether a bot filled in the hidden field.
    pub fn is_bot(&self) -> bool {
        self.website
            .as_deref()
            .is_some_and(|w| !w.trim().is_empty())
    }
}

/// `POST /webchat/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageBody {
    pub text: String,
    pub nonce: String,
}

/// Why a request body was refused: the message names the problem, never the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is over {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the request body is not the JSON this route takes: {0}")]
    Malformed(String),
    #[error("nonce must be 8 to 64 characters of A-Z, a-z, 0-9, - and _")]
    BadNonce,
}

impl BodyError {
    /// Never: the same body is refused again.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Parses a JSON body of at most [`MAX_BODY_BYTES`] with a well-formed `nonce`. The serde
/// error is reduced to its category and position, so no input is echoed.
pub fn parse_body<T: serde::de::DeserializeOwned + HasNonce>(bytes: &[u8]) -> Result<T, BodyError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    let body: T = serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "wrong fields or types",
            serde_json::error::Category::Eof => "incomplete JSON",
        };
        BodyError::Malformed(format!("{what} at line {} column {}", e.line(), e.column()))
    })?;
    if !is_nonce(body.nonce()) {
        return Err(BodyError::BadNonce);
    }
    Ok(body)
}

/// A body with the browser's idempotency nonce.
pub trait HasNonce {
    fn nonce(&self) -> &str;
}

impl HasNonce for SubmitBody {
    fn nonce(&self) -> &str {
        &self.nonce
    }
}

impl HasNonce for MessageBody {
    fn nonce(&self) -> &str {
        &self.nonce
    }
}

pub fn is_nonce(nonce: &str) -> bool {
    NONCE_LEN.contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The visitor token of an `Authorization: Bearer` header (`None` without one; an empty
/// string for any other scheme, which then fails verification).
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    Some(if scheme.eq_ignore_ascii_case("bearer") {
        token.trim()
    } else {
        ""
    })
}

/// A new visitor id: 16 random bytes, base64url (22 characters).
pub fn new_visitor_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(B64.encode(bytes))
}

// ------------------------------------------------------------------ rate limits

/// What a rate limit counts, and how many per minute it lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub submissions_per_ip: u32,
    pub messages_per_ip: u32,
    pub messages_per_visitor: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            submissions_per_ip: 10,
            messages_per_ip: 60,
            messages_per_visitor: 30,
        }
    }
}

/// One rate-limit check: a counter scope and its limit per minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCheck {
    pub scope: String,
    pub limit: u32,
}

impl Limits {
    /// The checks of a form submission from `ip`.
    pub fn submission(&self, ip: &str) -> Vec<RateCheck> {
        vec![RateCheck {
            scope: format!("submit.ip.{}", scope_part(ip)),
            limit: self.submissions_per_ip,
        }]
    }

    /// The checks of a message of `visitor_key` from `ip`.
    pub fn message(&self, ip: &str, visitor_key: &str) -> Vec<RateCheck> {
        vec![
            RateCheck {
                scope: format!("message.ip.{}", scope_part(ip)),
                limit: self.messages_per_ip,
            },
            RateCheck {
                scope: format!("message.visitor.{}", scope_part(visitor_key)),
                limit: self.messages_per_visitor,
            },
        ]
    }
}

/// A scope part made key-safe: what API Gateway gives is an IP, but nothing unbounded or
/// with `#` ends up in a key.
fn scope_part(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_'))
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

/// The Unix minute of `now` and the seconds until the next one (a 429's `retry-after`).
pub fn minute_of(now: i64) -> (i64, i64) {
    let minute = now.div_euclid(60);
    (minute, 60 - now.rem_euclid(60))
}

// ------------------------------------------------------------------ the visitor's view

/// A transcript entry as the visitor sees it: who wrote it (an agent without their id) and
/// its text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitorEntry {
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// `contact` (the visitor), `bot`, `agent` or `system` (the closing).
    pub author: &'static str,
    /// `text`, `reply` (a tapped choice) or `closed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// What of an entry the visitor may see: texts and replies of the visitor, the bot and the
/// agents, and the closing; never answers, assignments, transfers, templates or media ids.
pub fn visitor_entry(e: &Entry) -> Option<VisitorEntry> {
    let author = match e.author {
        Author::Contact => "contact",
        Author::Bot => "bot",
        Author::Agent { .. } => "agent",
        Author::System => "system",
    };
    let (kind, text) = match (&e.body, author) {
        (Body::Text { text }, "contact" | "bot" | "agent") => ("text", Some(text.clone())),
        (Body::Question { text, .. }, "bot") => ("text", Some(text.clone())),
        (Body::Reply { title, .. }, "contact" | "bot" | "agent") => ("reply", Some(title.clone())),
        (
            Body::Event {
                event: Event::Closed { .. },
            },
            _,
        ) => ("closed", None),
        _ => return None,
    };
    Some(VisitorEntry {
        id: e.id.clone(),
        at: e.at,
        author: if kind == "closed" { "system" } else { author },
        kind,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_whatever_the_case_and_trailing_slash() {
        let o = AllowedOrigins::parse(" https://shop.example.com/, http://localhost:8080,,");
        assert_eq!(o.list().len(), 2);
        assert_eq!(
            o.check(Some("https://SHOP.example.com")),
            Some("https://SHOP.example.com")
        );
        assert!(o.check(Some("http://localhost:8080")).is_some());
        for bad in [
            None,
            Some(""),
            Some("null"),
            Some("https://shop.example.com.evil.test"),
            Some("http://shop.example.com"),
            Some("http://localhost:8081"),
        ] {
            assert_eq!(o.check(bad), None, "{bad:?}");
        }
        assert_eq!(AllowedOrigins::parse("").check(Some("http://a")), None);
    }

    #[test]
    fn cors_answers_name_the_origin_and_vary_on_it() {
        let h = cors_headers("https://a.test");
        assert!(h.contains(&("access-control-allow-origin", "https://a.test".into())));
        assert!(h.contains(&("vary", "origin".into())));
        assert!(preflight_headers().iter().any(
            |(k, v)| *k == "access-control-allow-headers" && v == "authorization, content-type"
        ));
    }

    #[test]
    fn bodies_parse_or_say_why_without_echoing_the_input() {
        let ok: SubmitBody = parse_body(
            br#"{"survey":"default","lang":"es","answers":{"name":"Ana"},"nonce":"abcdefgh12"}"#,
        )
        .unwrap();
        assert_eq!(ok.answers["name"], "Ana");
        assert!(!ok.is_bot());
        let bot: SubmitBody = parse_body(br#"{"nonce":"abcdefgh12","website":"x"}"#).unwrap();
        assert!(bot.is_bot());

        let err =
            parse_body::<MessageBody>(br#"{"text": "secret-value", "nonce": 5}"#).unwrap_err();
        assert!(matches!(err, BodyError::Malformed(_)));
        assert!(!err.to_string().contains("secret-value"), "{err}");
        let err = parse_body::<MessageBody>(b"{\"text\": \"secret-value").unwrap_err();
        assert!(!err.to_string().contains("secret-value"), "{err}");
        assert_eq!(
            parse_body::<MessageBody>(br#"{"text":"hi","nonce":"short"}"#),
            Err(BodyError::BadNonce)
        );
        assert_eq!(
            parse_body::<MessageBody>(br#"{"text":"hi","nonce":"has#hash99"}"#),
            Err(BodyError::BadNonce)
        );
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_body::<MessageBody>(&big), Err(BodyError::TooLarge));
    }

    #[test]
    fn bearer_tokens_come_from_the_authorization_header() {
        assert_eq!(bearer(None), None);
        assert_eq!(bearer(Some("Bearer v1.a.b")), Some("v1.a.b"));
        assert_eq!(bearer(Some("bearer  v1.a.b ")), Some("v1.a.b"));
        assert_eq!(bearer(Some("Basic abc")), Some(""));
    }

    #[test]
    fn new_visitor_ids_are_22_url_safe_characters_and_differ() {
        let a = new_visitor_id().unwrap();
        let b = new_visitor_id().unwrap();
        assert_eq!(a.len(), 22);
        assert!(crate::webchat::is_visitor_id(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn rate_limit_scopes_and_minutes() {
        let l = Limits::default();
        assert_eq!(
            l.submission("203.0.113.9"),
            vec![RateCheck {
                scope: "submit.ip.203.0.113.9".into(),
                limit: 10
            }]
        );
        let m = l.message("2001:db8::1", "V.abcdefghijklmnop");
        assert_eq!(m[0].scope, "message.ip.2001:db8::1");
        assert_eq!(m[1].scope, "message.visitor.V.abcdefghijklmnop");
        assert_eq!((m[0].limit, m[1].limit), (60, 30));
        assert_eq!(l.submission("a#b")[0].scope, "submit.ip.ab");
        assert_eq!(l.submission("")[0].scope, "submit.ip.unknown");
        assert_eq!(minute_of(1_796_173_200), (29_936_220, 60));
        assert_eq!(minute_of(1_796_173_259), (29_936_220, 1));
        assert_eq!(
            crate::store::keys::rate_limit("submit.ip.1.2.3.4", 29_936_220).pk,
            "RATE#submit.ip.1.2.3.4#29936220"
        );
    }

    #[test]
    fn the_visitor_sees_texts_replies_and_the_closing_only() {
        let e = |author: Author, body: Body| Entry {
            id: "T#0000000000001#000001".into(),
            at: 1,
            author,
            body,
            status: None,
            wamid: None,
        };
        let text = |t: &str| Body::Text { text: t.into() };
        let seen = visitor_entry(&e(
            Author::Agent {
                agent_id: "agent-7".into(),
            },
            text("hola"),
        ))
        .unwrap();
        assert_eq!((seen.author, seen.kind), ("agent", "text"));
        assert!(!serde_json::to_string(&seen).unwrap().contains("agent-7"));
        assert!(visitor_entry(&e(Author::Contact, text("hi"))).is_some());
        assert!(visitor_entry(&e(
            Author::Bot,
            Body::Question {
                question: "q".into(),
                text: "Name?".into()
            }
        ))
        .is_some());
        let closed = visitor_entry(&e(
            Author::System,
            Body::Event {
                event: Event::Closed { by: "a".into() },
            },
        ))
        .unwrap();
        assert_eq!(
            (closed.author, closed.kind, closed.text),
            ("system", "closed", None)
        );
        for hidden in [
            e(
                Author::System,
                Body::Event {
                    event: Event::Assigned {
                        agent_id: "a".into(),
                        team: "t".into(),
                    },
                },
            ),
            e(
                Author::Bot,
                Body::Answer {
                    question: "email".into(),
                    value: "a@b.c".into(),
                },
            ),
            e(
                Author::Bot,
                Body::Template {
                    name: "t".into(),
                    language: "es".into(),
                },
            ),
        ] {
            assert!(visitor_entry(&hidden).is_none(), "{hidden:?}");
        }
    }
}
