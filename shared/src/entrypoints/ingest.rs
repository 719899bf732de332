//! `POST /webhook`: authenticate, parse and durably queue every WhatsApp Cloud API delivery.
//!
//! The pure part, [`accept`], checks the size (1 MiB), the `X-Hub-Signature-256` over the exact
//! bytes received (API Gateway's base64 bodies are decoded by `lambda_http` before we see them)
//! and turns the delivery into [`InboundEvent`]s. [`Ingest::ingest`] then puts every event on
//! the inbound FIFO queue (group = business number + contact, dedup = WhatsApp message id).
//!
//! What the status code promises Meta: 200 only once every event of the delivery is queued; 5xx
//! when any could not be, so Meta delivers again (the FIFO dedup ids make that harmless);
//! 401 for a bad signature and 4xx for a body that can never be used, with nothing queued.
//! Changes of a `field` we do not handle are answered 200 and not queued. An event too large
//! for SQS (over 1 MiB once serialised) can never be queued: it is logged and left out, the
//! others are queued, and the answer is 200 (a retry could not help). Logs carry reasons,
//! counts, message ids and redacted contact keys ([`log_id`]): never bodies, numbers or names.

use crate::clock::Clock;
use std::collections::HashSet;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::config::{process_env, ConfigError, EnvReader};
use crate::queue::FifoContract;
use crate::queue::{MessageQueue, QueueError, QueueMessage, SqsQueue};
use crate::secrets::Secret;
use crate::telemetry::redact;
use crate::whatsapp::event::InboundEvent;
use crate::whatsapp::normalize::{normalize, Normalized};
use crate::whatsapp::signature::{self, SignatureError, Verifier};
use crate::whatsapp::webhook::{self, ParseError};

/// Largest body accepted. Meta's deliveries are a few KiB; API Gateway's own limit is 10 MB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The secret ingest needs.
pub const APP_SECRET: &str = "WHATSAPP_APP_SECRET";

/// Settings read at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// `PRECHAT_INBOUND_QUEUE_URL`: the inbound FIFO queue.
    pub inbound_queue_url: String,
}

impl IngestConfig {
    /// Reads every setting, reporting all problems at once.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::with_lookup(lookup);
        let config = IngestConfig {
            inbound_queue_url: env.required("PRECHAT_INBOUND_QUEUE_URL"),
        };
        env.finish()?;
        Ok(config)
    }
}

pub use super::InitError;

/// Why a delivery was refused as a whole; nothing of it is queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("method {0} is not allowed")]
    Method(String),
    #[error("body of {0} bytes is over the 1 MiB limit")]
    TooLarge(usize),
    #[error("signature refused: {0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Parse(#[from] ParseError),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Signature(_) => StatusCode::UNAUTHORIZED,
            Refusal::Parse(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// What became of a delivery.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// 200: every event is on the queue (rejected items and skipped fields are logged).
    Queued {
        queued: usize,
        normalized: Normalized,
    },
    /// 4xx: refused as a whole.
    Refused(Refusal),
    /// 5xx: some events could not be queued; Meta will deliver again.
    NotQueued { reason: String },
}

impl Outcome {
    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Queued { .. } => StatusCode::OK,
            Outcome::Refused(r) => r.status(),
            Outcome::NotQueued { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Size check, authentication, parsing and normalisation (timestamps clamped around `now`,
/// Unix seconds): everything before the queue. Pure.
pub fn accept(
    verifier: &Verifier,
    signature: Option<&[u8]>,
    body: &[u8],
    now: i64,
) -> Result<Normalized, Refusal> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal::TooLarge(body.len()));
    }
    verifier.verify(signature, body)?;
    Ok(normalize(webhook::parse(body)?, now))
}

/// The queue messages for a delivery's events, in order. An event repeated within one delivery
/// is sent once (SQS would drop the copy anyway; this saves the round trip).
pub fn queue_messages(events: &[InboundEvent]) -> Result<Vec<QueueMessage>, serde_json::Error> {
    Ok(queue_messages_of(events)?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

/// [`queue_messages`], each with the index of its event.
fn queue_messages_of(
    events: &[InboundEvent],
) -> Result<Vec<(usize, QueueMessage)>, serde_json::Error> {
    let mut seen = HashSet::with_capacity(events.len());
    let mut out = Vec::with_capacity(events.len());
    for (i, ev) in events.iter().enumerate() {
        let (group, dedup) = (ev.group_id(), ev.dedup_id());
        if !seen.insert((group.clone(), dedup.clone())) {
            continue;
        }
        out.push((i, QueueMessage::of(ev)?));
    }
    Ok(out)
}

/// An event's dedup id as logs may show it: message and status ids as they are, the BSUIDs of
/// a BSUID change redacted.
pub fn log_id(ev: &InboundEvent) -> String {
    match ev {
        InboundEvent::UserIdUpdate(u) => format!(
            "uid:{}:{}:{}",
            redact(&u.old_user_id),
            redact(&u.new_user_id),
            u.timestamp
        ),
        other => other.dedup_id(),
    }
}

/// The webhook-ingest function: built once at init, then called per request.
pub struct Ingest<Q = SqsQueue> {
    verifier: Verifier,
    queue: Q,
    /// "Now" for clamping webhook timestamps.
    clock: Clock,
}

impl Ingest<SqsQueue> {
    /// Reads `PRECHAT_INBOUND_QUEUE_URL`, the app secret and the log key (one SSM call, or a
    /// plain env value locally). No other network call happens at init.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let config = IngestConfig::from_lookup(process_env)?;
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let (required, _) =
            super::init::load_secrets(&ssm, &[APP_SECRET], &[], process_env).await?;
        let Some(app_secret) = required.into_iter().next() else {
            return Err(crate::secrets::SecretError::NotConfigured(APP_SECRET.to_owned()).into());
        };
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), config.inbound_queue_url);
        Ok(Ingest::new(&app_secret, queue))
    }
}

impl<Q: MessageQueue> Ingest<Q> {
    /// From explicit parts (tests, local tools).
    pub fn new(app_secret: &Secret, queue: Q) -> Self {
        Ingest {
            verifier: Verifier::new(app_secret),
            queue,
            clock: Clock::system(),
        }
    }

    /// Replaces the clock (tests of timestamp clamping).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The Lambda handler body.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let signature = req.headers().get(signature::HEADER).map(|v| v.as_bytes());
        let outcome = self
            .ingest(req.method(), signature, req.body().as_ref())
            .await;
        let status = outcome.status();
        let text = match &outcome {
            Outcome::Queued { .. } => "ok".to_owned(),
            Outcome::Refused(r) => r.to_string(),
            Outcome::NotQueued { .. } => "not queued, please retry".to_owned(),
        };
        super::text_response(status, text)
    }

    /// Accepts one delivery and queues its events; logs what happened.
    pub async fn ingest(&self, method: &Method, signature: Option<&[u8]>, body: &[u8]) -> Outcome {
        if method != Method::POST {
            return refused(Refusal::Method(method.to_string()), body.len());
        }
        let now = self.clock.unix();
        let normalized = match accept(&self.verifier, signature, body, now) {
            Ok(n) => n,
            Err(r) => return refused(r, body.len()),
        };
        log_left_out(&normalized);
        let (event_of, messages): (Vec<usize>, Vec<QueueMessage>) =
            match queue_messages_of(&normalized.events) {
                Ok(m) => m.into_iter().unzip(),
                Err(e) => {
                    tracing::error!(error = %e, "could not serialise an event");
                    return Outcome::NotQueued {
                        reason: "serialisation failed".to_owned(),
                    };
                }
            };
        let mut left_out = Vec::new();
        match self.queue.send_all(&messages).await {
            Ok(()) => {}
            Err(QueueError::TooLarge { indexes, sizes }) => {
                for (i, bytes) in indexes.into_iter().zip(sizes) {
                    let Some(ev) = event_of.get(i).and_then(|&e| normalized.events.get(e)) else {
                        continue;
                    };
                    tracing::error!(
                        kind = event_kind(ev),
                        dedup_id = %log_id(ev),
                        contact = %contact_of(ev),
                        bytes,
                        "event over the SQS message size limit; left out, the rest queued"
                    );
                    left_out.push(i);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = messages.len(), "delivery not queued; answering 5xx so Meta retries");
                return Outcome::NotQueued {
                    reason: e.to_string(),
                };
            }
        }
        for (i, &e) in event_of.iter().enumerate() {
            let Some(ev) = normalized.events.get(e).filter(|_| !left_out.contains(&i)) else {
                continue;
            };
            tracing::debug!(
                kind = event_kind(ev),
                dedup_id = %log_id(ev),
                contact = %contact_of(ev),
                "event queued"
            );
        }
        let queued = messages.len() - left_out.len();
        tracing::info!(
            queued,
            too_large = left_out.len(),
            rejected = normalized.rejected.len(),
            skipped = normalized.skipped_fields.len(),
            "delivery queued"
        );
        Outcome::Queued { queued, normalized }
    }
}

fn contact_of(ev: &InboundEvent) -> String {
    ev.contact_key()
        .map(|k| redact(k.as_str()).to_string())
        .unwrap_or_default()
}

fn refused(r: Refusal, body_len: usize) -> Outcome {
    tracing::warn!(reason = %r, status = r.status().as_u16(), body_len, "delivery refused");
    Outcome::Refused(r)
}

fn log_left_out(n: &Normalized) {
    for r in &n.rejected {
        tracing::warn!(location = %r.location, reason = %r.reason, "item left out of the delivery");
    }
    for field in &n.skipped_fields {
        tracing::info!(field = %field, "change field not handled; not queued");
    }
    for c in &n.clamped {
        // Not the original value: it is whatever the sender put there.
        tracing::warn!(location = %c.location, clamped_to = c.clamped, "timestamp outside [now - 7 days, now + 5 minutes]; clamped");
    }
    for e in &n.delivery_errors {
        tracing::warn!(code = e.code, title = %e.title, "Meta reported an error in the delivery");
    }
}

fn event_kind(ev: &InboundEvent) -> &'static str {
    match ev {
        InboundEvent::Message(_) => "message",
        InboundEvent::Status(_) => "status",
        InboundEvent::UserIdUpdate(_) => "user_id_update",
        InboundEvent::WebForm(_) => "web_form",
    }
}

#[cfg(test)]
#[path = "ingest_events.rs"]
mod event_files;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use base64::Engine;

    use super::*;
    use crate::queue::QueueError;

    /// The local stack's default app secret; the sample events are signed with it.
    pub(super) const SECRET: &str = "local-app-secret";

    /// Records what was sent; fails every send when `fail` is set. Unit tests only: the SQS
    /// implementation is tested against moto in `tests/tests/it/ingest.rs`.
    #[derive(Default)]
    pub(super) struct RecordingQueue {
        sent: Arc<Mutex<Vec<QueueMessage>>>,
        fail: bool,
    }

    impl MessageQueue for RecordingQueue {
        async fn send_all(&self, messages: &[QueueMessage]) -> Result<(), QueueError> {
            if self.fail {
                return Err(QueueError::Sqs("queue does not exist".into()));
            }
            self.sent.lock().unwrap().extend_from_slice(messages);
            Ok(())
        }
    }

    pub(super) fn ingest_with_recorder() -> (Ingest<RecordingQueue>, Arc<Mutex<Vec<QueueMessage>>>)
    {
        let f = ingest(false);
        let sent = f.queue.sent.clone();
        (f, sent)
    }

    fn ingest(fail: bool) -> Ingest<RecordingQueue> {
        Ingest::new(
            &Secret::new(SECRET),
            RecordingQueue {
                fail,
                ..Default::default()
            },
        )
    }

    fn sign(body: &[u8]) -> String {
        Verifier::new(&Secret::new(SECRET)).sign(body)
    }

    fn text_delivery(ids: &[&str]) -> String {
        let messages: Vec<String> = ids
            .iter()
            .map(|id| format!(r#"{{"from":"16505551234","id":"{id}","timestamp":"1749416383","type":"text","text":{{"body":"Ol\u00e1 \ud83d\ude00"}}}}"#))
            .collect();
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Sheena Nelson"}},"wa_id":"16505551234"}}],"messages":[{}]}},"field":"messages"}}]}}]}}"#,
            messages.join(",")
        )
    }

    /// An API Gateway HTTP API v2 event, as `lambda_http` receives it.
    fn apigw_request(body: &str, signature: Option<&str>, base64: bool) -> Request {
        let mut headers = serde_json::json!({"content-type": "application/json", "user-agent": "facebookexternalua"});
        if let Some(s) = signature {
            headers["X-Hub-Signature-256"] = s.into();
        }
        let body_field = if base64 {
            base64::engine::general_purpose::STANDARD.encode(body)
        } else {
            body.to_owned()
        };
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "POST /webhook", "rawPath": "/webhook", "rawQueryString": "",
            "headers": headers,
            "requestContext": {"accountId": "123456789012", "apiId": "api-id", "domainName": "id.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "id", "http": {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1", "sourceIp": "173.252.95.1", "userAgent": "facebookexternalua"},
                "requestId": "id", "routeKey": "POST /webhook", "stage": "$default", "time": "23/Nov/2026:21:00:00 +0000", "timeEpoch": 1795381200000u64},
            "body": body_field, "isBase64Encoded": base64
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[tokio::test]
    async fn signed_delivery_is_queued_with_fifo_ids_and_200() {
        let f = ingest(false);
        let body = text_delivery(&["wamid.1", "wamid.2"]);
        let resp = f
            .handle(apigw_request(&body, Some(&sign(body.as_bytes())), false))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let sent = f.queue.sent.lock().unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].group_id, "106540352242922:16505551234");
        assert_eq!(
            (sent[0].dedup_id.as_str(), sent[1].dedup_id.as_str()),
            ("wamid.1", "wamid.2")
        );
        let ev: InboundEvent = serde_json::from_str(&sent[0].body).unwrap();
        let InboundEvent::Message(m) = ev else {
            panic!()
        };
        assert_eq!(
            m.content,
            crate::whatsapp::event::MessageContent::Text {
                body: "Olá 😀".into()
            }
        );
    }

    #[tokio::test]
    async fn base64_body_is_verified_over_the_decoded_bytes() {
        let f = ingest(false);
        let body = text_delivery(&["wamid.b64"]);
        let resp = f
            .handle(apigw_request(&body, Some(&sign(body.as_bytes())), true))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(f.queue.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn bad_signatures_are_401_and_queue_nothing() {
        let f = ingest(false);
        let body = text_delivery(&["wamid.1"]);
        let good = sign(body.as_bytes());
        let cases = [
            None,
            Some(good.replacen("sha256=", "sha1=", 1)),
            Some(good[..good.len() - 2].to_owned()),
            Some(sign(b"another body")),
        ];
        for sig in cases {
            let resp = f.handle(apigw_request(&body, sig.as_deref(), false)).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{sig:?}");
        }
        let changed = body.replace("wamid.1", "wamid.2");
        assert_eq!(
            f.handle(apigw_request(&changed, Some(&good), false))
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert!(f.queue.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn unusable_bodies_are_4xx() {
        let f = ingest(false);
        for body in [
            "not json",
            "[]",
            r#"{"object":"page","entry":[]}"#,
            r#"{"object":"whatsapp_business_account","entry":7}"#,
        ] {
            let resp = f
                .handle(apigw_request(body, Some(&sign(body.as_bytes())), false))
                .await;
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        }
        let big = format!(
            r#"{{"object":"whatsapp_business_account","entry":[],"pad":"{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        let resp = f
            .handle(apigw_request(&big, Some(&sign(big.as_bytes())), false))
            .await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let out = f.ingest(&Method::GET, None, b"").await;
        assert_eq!(out.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(f.queue.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn unhandled_field_is_200_and_not_queued() {
        let f = ingest(false);
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","time":1,"changes":[{"value":{"phone_number":"15550783881","event":"VERIFIED_ACCOUNT"},"field":"account_update"}]}]}"#;
        let out = f
            .ingest(
                &Method::POST,
                Some(sign(body.as_bytes()).as_bytes()),
                body.as_bytes(),
            )
            .await;
        assert_eq!(out.status(), StatusCode::OK);
        let Outcome::Queued { queued, normalized } = out else {
            panic!()
        };
        assert_eq!(
            (queued, normalized.skipped_fields.as_slice()),
            (0, ["account_update".to_owned()].as_slice())
        );
        assert!(f.queue.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn queue_failure_is_5xx() {
        let f = ingest(true);
        let body = text_delivery(&["wamid.1"]);
        let resp = f
            .handle(apigw_request(&body, Some(&sign(body.as_bytes())), false))
            .await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn repeated_message_in_one_delivery_is_queued_once() {
        let f = ingest(false);
        let body = text_delivery(&["wamid.1", "wamid.1", "wamid.2"]);
        let out = f
            .ingest(
                &Method::POST,
                Some(sign(body.as_bytes()).as_bytes()),
                body.as_bytes(),
            )
            .await;
        assert!(matches!(out, Outcome::Queued { queued: 2, .. }), "{out:?}");
    }

    #[tokio::test]
    async fn malformed_item_is_left_out_and_the_rest_queued() {
        let f = ingest(false);
        let body =
            text_delivery(&["wamid.1", "wamid.2"]).replacen(r#""type":"text""#, r#""type":7"#, 1);
        let out = f
            .ingest(
                &Method::POST,
                Some(sign(body.as_bytes()).as_bytes()),
                body.as_bytes(),
            )
            .await;
        let Outcome::Queued { queued, normalized } = out else {
            panic!("{out:?}")
        };
        assert_eq!(queued, 1);
        assert_eq!(normalized.rejected.len(), 1);
        assert_eq!(f.queue.sent.lock().unwrap()[0].dedup_id, "wamid.2");
    }

    #[tokio::test]
    async fn a_lone_surrogate_in_one_message_keeps_the_delivery_and_its_neighbours() {
        let f = ingest(false);
        let body = text_delivery(&["wamid.1", "wamid.2", "wamid.3"]).replacen(
            r#""id":"wamid.2","timestamp":"1749416383","type":"text","text":{"body":"Ol\u00e1 \ud83d\ude00"}"#,
            r#""id":"wamid.2","timestamp":"1749416383","type":"text","text":{"body":"Ol\u00e1 \ud83d"}"#,
            1,
        );
        let out = f
            .ingest(
                &Method::POST,
                Some(sign(body.as_bytes()).as_bytes()),
                body.as_bytes(),
            )
            .await;
        assert_eq!(out.status(), StatusCode::OK, "{out:?}");
        let sent = f.queue.sent.lock().unwrap();
        let texts: Vec<String> = sent
            .iter()
            .map(
                |m| match serde_json::from_str::<InboundEvent>(&m.body).unwrap() {
                    InboundEvent::Message(m) => format!("{:?}", m.content),
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(texts.len(), 3);
        assert!(texts[1].contains("Olá \u{FFFD}"), "{}", texts[1]);
        assert!(texts[0].contains("Olá 😀") && texts[2].contains("Olá 😀"));
    }

    #[test]
    fn config_names_the_missing_queue() {
        assert!(IngestConfig::from_lookup(|_| None)
            .unwrap_err()
            .to_string()
            .contains("PRECHAT_INBOUND_QUEUE_URL"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Arbitrary bytes, signed or not, never panic the handler path.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..600), signed in proptest::bool::ANY) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let f = ingest(false);
            let sig = sign(&body);
            let out = rt.block_on(f.ingest(&Method::POST, signed.then_some(sig.as_bytes()), &body));
            if !signed {
                proptest::prop_assert_eq!(out.status(), StatusCode::UNAUTHORIZED);
            }
        }

        /// Arbitrary JSON values spliced into a real delivery never panic, and whatever is
        /// queued is valid contract JSON.
        #[test]
        fn arbitrary_json_never_panics(v in json_leafy()) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let f = ingest(false);
            let body = text_delivery(&["wamid.1"]).replacen(r#""text":{"body":"Ol\u00e1 \ud83d\ude00"}"#, &format!(r#""text":{v}"#), 1);
            let _ = rt.block_on(f.ingest(&Method::POST, Some(sign(body.as_bytes()).as_bytes()), body.as_bytes()));
            for m in f.queue.sent.lock().unwrap().iter() {
                proptest::prop_assert!(serde_json::from_str::<InboundEvent>(&m.body).is_ok());
            }
        }
    }

    fn json_leafy() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,10}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::hash_map("(body|id|type|[a-z]{1,4})", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
