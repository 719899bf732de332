//! The local Graph API: what the reply sender talks to when `PRECHAT_GRAPH_BASE_URL` points
//! here. It records every request in the [`RequestLog`] (arrival order, phone_number_id, the exact
//! JSON body, the status it answered), answers like Meta's Cloud API
//! (`{"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid..."}]}`, or
//! `{"success":true}` for mark-as-read), with probability `fault_rate` answers Meta's retryable
//! throughput error (HTTP 429, code 130429), and afterwards reports `sent`, `delivered` and
//! `read` for each accepted message as signed status webhooks through the real `/webhook`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::meta::{self, Business, StatusRecipient};

/// One request the local Graph API received.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    /// Unix milliseconds.
    pub received_at: u64,
    pub method: String,
    pub path: String,
    pub phone_number_id: String,
    /// The request body as sent (JSON), or a string when it was not JSON.
    pub body: Value,
    /// The HTTP status the local Graph API answered.
    pub status: u16,
    pub response: Value,
    /// The message id handed out, for accepted messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    /// The contact the request is about: `to`/`recipient`, or the sender of the message a
    /// mark-as-read names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The last status webhook the local Graph API delivered for `wamid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

#[derive(Default)]
struct RequestLogInner {
    entries: Vec<RecordedRequest>,
    /// Inbound message ids (sent by the simulator) -> who sent them, to attribute mark-as-read.
    inbound: HashMap<String, StatusRecipient>,
}

/// Every Graph API request, in arrival order. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<RequestLogInner>>,
}

impl RequestLog {
    pub fn new() -> Self {
        RequestLog::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RequestLogInner> {
        // A poisoned lock only means another request panicked mid-update; the data is still
        // a list of finished entries.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers who sent an inbound message, so the business's mark-as-read is attributed.
    pub fn note_inbound(&self, wamid: &str, from: StatusRecipient) {
        self.lock().inbound.insert(wamid.to_owned(), from);
    }

    /// Records a request; returns its sequence number.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        method: &str,
        path: &str,
        phone_number_id: &str,
        body: Value,
        status: u16,
        response: Value,
        wamid: Option<String>,
    ) -> u64 {
        let mut inner = self.lock();
        let seq = inner.entries.len() as u64 + 1;
        let str_field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let (mut wa_id, mut user_id) = (str_field("to"), str_field("recipient"));
        if wa_id.is_none() && user_id.is_none() {
            if let Some(from) = str_field("message_id").and_then(|m| inner.inbound.get(&m).cloned())
            {
                wa_id = from.wa_id;
                user_id = from.user_id;
            }
        }
        inner.entries.push(RecordedRequest {
            seq,
            received_at: now_millis(),
            method: method.to_owned(),
            path: path.to_owned(),
            phone_number_id: phone_number_id.to_owned(),
            body,
            status,
            response,
            wamid,
            wa_id,
            user_id,
            delivery: None,
        });
        seq
    }

    /// Marks the delivery state of an accepted message.
    pub fn set_delivery(&self, wamid: &str, status: &str) {
        let mut inner = self.lock();
        if let Some(e) = inner
            .entries
            .iter_mut()
            .find(|e| e.wamid.as_deref() == Some(wamid))
        {
            e.delivery = Some(status.to_owned());
        }
    }

    /// Every entry, or those about one contact (by phone number or BSUID), in arrival order.
    pub fn entries(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Vec<RecordedRequest> {
        self.lock()
            .entries
            .iter()
            .filter(|e| wa_id.is_none_or(|w| e.wa_id.as_deref() == Some(w)))
            .filter(|e| user_id.is_none_or(|u| e.user_id.as_deref() == Some(u)))
            .cloned()
            .collect()
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where status webhooks go and how they are signed.
#[derive(Clone)]
pub struct StatusTarget {
    pub webhook_url: String,
    pub app_secret: String,
    pub business: Business,
    /// Pause before each status (sent, delivered, read), so ticks appear one after the other.
    pub step: Duration,
}

/// The local Graph API's state.
#[derive(Clone)]
pub struct LocalGraphApi {
    pub outbox: RequestLog,
    fault_rate: f64,
    rng: Arc<Mutex<u64>>,
    counter: Arc<Mutex<u64>>,
    statuses: Option<StatusTarget>,
    http: reqwest::Client,
}

impl LocalGraphApi {
    /// `fault_rate` in 0.0..=1.0; `statuses` None sends no status webhooks.
    pub fn new(outbox: RequestLog, fault_rate: f64, statuses: Option<StatusTarget>) -> Self {
        let seed = now_millis() | 1;
        LocalGraphApi {
            outbox,
            fault_rate: fault_rate.clamp(0.0, 1.0),
            rng: Arc::new(Mutex::new(seed)),
            counter: Arc::new(Mutex::new(0)),
            statuses,
            http: reqwest::Client::new(),
        }
    }

    /// A uniform number in [0, 1) (xorshift64: fault drills need no cryptographic quality).
    fn roll(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let mut x = *s;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *s = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next_wamid(&self) -> String {
        let mut c = self.counter.lock().unwrap_or_else(|p| p.into_inner());
        *c += 1;
        format!("wamid.LOCAL{:013}{:08}", now_millis(), *c)
    }

    /// Serves the Graph API with axum (any path; only `POST /{version}/{phone_number_id}/messages`
    /// is implemented, everything else gets Meta's unsupported-request error).
    pub fn router(self) -> axum::Router {
        axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let api = self.clone();
                async move { api.answer(method, uri, headers, body).await }
            },
        )
    }

    async fn answer(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let path = uri.path().to_owned();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let parsed: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let (status, response, wamid, pnid) = match segments.as_slice() {
            [_version, pnid, "messages"] if method == Method::POST => {
                let (s, r, w) = self.messages(&headers, &parsed);
                (s, r, w, (*pnid).to_owned())
            }
            _ => (
                StatusCode::BAD_REQUEST,
                meta_error(
                    100,
                    "GraphMethodException",
                    &format!("Unsupported {method} request. Object with ID does not exist"),
                ),
                None,
                segments.get(1).map(|s| (*s).to_owned()).unwrap_or_default(),
            ),
        };
        self.outbox.record(
            method.as_str(),
            &path,
            &pnid,
            parsed.clone(),
            status.as_u16(),
            response.clone(),
            wamid.clone(),
        );
        if let (Some(wamid), Some(target)) = (wamid, self.statuses.clone()) {
            let recipient = StatusRecipient {
                wa_id: parsed.get("to").and_then(Value::as_str).map(str::to_owned),
                user_id: parsed
                    .get("recipient")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
            let api = self.clone();
            tokio::spawn(async move { api.report_statuses(target, recipient, wamid).await });
        }
        (status, Json(response)).into_response()
    }

    fn messages(&self, headers: &HeaderMap, body: &Value) -> (StatusCode, Value, Option<String>) {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| !t.trim().is_empty());
        if !bearer {
            return (
                StatusCode::UNAUTHORIZED,
                meta_error(190, "OAuthException", "An active access token must be used to query information about the current user."),
                None,
            );
        }
        if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
            return (
                StatusCode::BAD_REQUEST,
                meta_error(
                    100,
                    "OAuthException",
                    "(#100) The parameter messaging_product is required.",
                ),
                None,
            );
        }
        if self.fault_rate > 0.0 && self.roll() < self.fault_rate {
            let mut e = meta_error(130429, "OAuthException", "(#130429) Rate limit hit");
            e["error"]["error_data"] = json!({
                "messaging_product": "whatsapp",
                "details": "Cloud API message throughput has been reached."
            });
            return (StatusCode::TOO_MANY_REQUESTS, e, None);
        }
        if body.get("status").and_then(Value::as_str) == Some("read") {
            return (StatusCode::OK, json!({ "success": true }), None);
        }
        let to = body.get("to").and_then(Value::as_str);
        let recipient = body.get("recipient").and_then(Value::as_str);
        let Some(input) = to.or(recipient) else {
            return (
                StatusCode::BAD_REQUEST,
                meta_error(
                    100,
                    "OAuthException",
                    "(#100) The parameter to is required.",
                ),
                None,
            );
        };
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("text");
        if body.get(kind).is_none() {
            return (
                StatusCode::BAD_REQUEST,
                meta_error(
                    100,
                    "OAuthException",
                    &format!("(#100) The parameter {kind} is required."),
                ),
                None,
            );
        }
        let wamid = self.next_wamid();
        let mut contact = json!({ "input": input });
        match (to, recipient) {
            (Some(t), _) => contact["wa_id"] = json!(t),
            (None, Some(r)) => contact["user_id"] = json!(r),
            _ => {}
        }
        (
            StatusCode::OK,
            json!({
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{ "id": wamid }],
            }),
            Some(wamid),
        )
    }

    async fn report_statuses(
        &self,
        target: StatusTarget,
        recipient: StatusRecipient,
        wamid: String,
    ) {
        for status in ["sent", "delivered", "read"] {
            tokio::time::sleep(target.step).await;
            let ts = (now_millis() / 1000) as i64;
            let payload = meta::status_webhook(&target.business, &recipient, &wamid, status, ts);
            let body = payload.to_string();
            let signature = meta::sign(&target.app_secret, body.as_bytes());
            let sent = self
                .http
                .post(&target.webhook_url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => self.outbox.set_delivery(&wamid, status),
                Ok(r) => {
                    tracing::warn!(%wamid, status, http = r.status().as_u16(), "status webhook refused");
                    return;
                }
                Err(e) => {
                    tracing::warn!(%wamid, status, error = %e, "status webhook failed");
                    return;
                }
            }
        }
    }
}

fn meta_error(code: i64, kind: &str, message: &str) -> Value {
    json!({
        "error": {
            "message": message,
            "type": kind,
            "code": code,
            "fbtrace_id": "ALocalTraceId000000000"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_filters_by_contact_and_attributes_mark_read() {
        let o = RequestLog::new();
        o.note_inbound(
            "wamid.IN1",
            StatusRecipient {
                wa_id: Some("111".into()),
                user_id: Some("US.1".into()),
            },
        );
        o.record(
            "POST",
            "/v23.0/p/messages",
            "p",
            json!({"to": "111"}),
            200,
            json!({}),
            Some("w1".into()),
        );
        o.record(
            "POST",
            "/v23.0/p/messages",
            "p",
            json!({"recipient": "US.2"}),
            200,
            json!({}),
            Some("w2".into()),
        );
        o.record(
            "POST",
            "/v23.0/p/messages",
            "p",
            json!({"status": "read", "message_id": "wamid.IN1"}),
            200,
            json!({}),
            None,
        );
        assert_eq!(o.entries(None, None).len(), 3);
        let mine: Vec<u64> = o.entries(Some("111"), None).iter().map(|e| e.seq).collect();
        assert_eq!(mine, vec![1, 3]);
        assert_eq!(o.entries(None, Some("US.2")).len(), 1);
        o.set_delivery("w2", "read");
        assert_eq!(
            o.entries(None, Some("US.2"))[0].delivery.as_deref(),
            Some("read")
        );
    }

    #[test]
    fn fault_roll_is_uniform_enough_and_bounded() {
        let api = LocalGraphApi::new(RequestLog::new(), 0.5, None);
        let n = 10_000;
        let hits = (0..n).filter(|_| api.roll() < 0.3).count();
        assert!((2_500..3_500).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| (0.0..1.0).contains(&api.roll())));
    }
}
