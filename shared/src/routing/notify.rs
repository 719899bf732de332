//! Telling an agent about a new conversation: an HTTPS webhook per team, signed JSON body.
//!
//! Why a webhook and not a WhatsApp template to the agent's phone: agents work in a help-desk
//! tool (or a Slack/Teams bridge) that can take the conversation's answers as structured data;
//! a template would need an approved template per language, the agent's phone number in our
//! table, and would put the contact's answers in a third chat. The receiver checks
//! `X-Prechat-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>` with the
//! shared secret and rejects timestamps older than a few minutes (replay).
//!
//! [`payload`] and [`signature`] are pure; [`WebhookNotifier`] posts with reqwest. 2xx is
//! success; 408, 429, 5xx and network errors are retryable; any other status is permanent
//! (the receiver refused this body, sending it again will not help).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::job::{AssignRequest, HandoffReason};
use crate::secrets::Secret;
use crate::whatsapp::ContactRef;

pub const SIGNATURE_HEADER: &str = "x-prechat-signature";
pub const TIMESTAMP_HEADER: &str = "x-prechat-timestamp";
pub const DELIVERY_HEADER: &str = "x-prechat-delivery";

/// The JSON body posted to the team's `notify_url`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment<'a> {
    pub event: &'static str,
    /// Stable per assignment: receivers deduplicate on it (we may deliver more than once).
    pub delivery_id: String,
    pub conversation_id: &'a str,
    pub team_id: &'a str,
    pub agent_id: &'a str,
    pub agent_name: &'a str,
    pub assigned_at: i64,
    pub vip: bool,
    pub phone_number_id: &'a str,
    pub contact: &'a ContactRef,
    pub language: &'a str,
    pub reason: HandoffReason,
    pub answers: &'a std::collections::BTreeMap<String, String>,
    pub fields: &'a std::collections::BTreeMap<String, String>,
}

pub struct AssignmentFacts<'a> {
    pub request: &'a AssignRequest,
    pub team_id: &'a str,
    pub agent_id: &'a str,
    pub agent_name: &'a str,
    pub assigned_at: i64,
    pub vip: bool,
}

pub fn payload<'a>(f: &AssignmentFacts<'a>) -> Assignment<'a> {
    Assignment {
        event: "conversation.assigned",
        delivery_id: format!("asg:{}:{}", f.request.conversation_id, f.request.job_id),
        conversation_id: &f.request.conversation_id,
        team_id: f.team_id,
        agent_id: f.agent_id,
        agent_name: f.agent_name,
        assigned_at: f.assigned_at,
        vip: f.vip,
        phone_number_id: &f.request.phone_number_id,
        contact: &f.request.contact,
        language: &f.request.language,
        reason: f.request.reason,
        answers: &f.request.answers,
        fields: &f.request.fields,
    }
}

/// `sha256=<hex>` over `"{timestamp}.{body}"`.
pub fn signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Attempts at one assignment's notification before it is given up (logged and counted).
pub const MAX_NOTIFY_ATTEMPTS: u32 = 5;

/// After a retryable failure, this instance leaves the URL alone for this long, so a dead
/// endpoint costs one timeout per cool-down and not one per ticket of the team.
pub const NOTIFY_COOL_DOWN_SECONDS: i64 = 30;

/// How long to wait after the `attempts`-th failed notification of an assignment before the
/// next attempt (1 min, doubling, at most 30 min), or `None` when it is given up.
pub fn notify_retry_after(attempts: u32) -> Option<i64> {
    if attempts >= MAX_NOTIFY_ATTEMPTS {
        return None;
    }
    let doublings = attempts.saturating_sub(1).min(5);
    Some((60_i64 << doublings).min(30 * 60))
}

/// The hosts plain `http://` may go to: this machine, for local runs and tests. Compared with
/// the parsed host, so `http://127.0.0.1.example.com` or `http://localhost@example.com` are
/// not local.
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// Parses a team's `notify_url`: `https://` with a host, or `http://` to exactly 127.0.0.1,
/// ::1 or localhost; no user name or password in the URL (they would end up in logs).
pub fn parse_notify_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL has no host")?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("user names and passwords are not allowed in the URL".into());
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if LOOPBACK_HOSTS.contains(&host) => Ok(parsed),
        "http" => Err("must be https:// (http:// only to 127.0.0.1, ::1 or localhost)".into()),
        other => Err(format!("scheme {other:?} is not allowed: use https://")),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotifyError {
    #[error("agent notification failed, will retry: {0}")]
    Retryable(String),
    #[error("agent notification refused: {0}")]
    Permanent(String),
}

/// Posts assignment notifications.
#[derive(Clone, Debug)]
pub struct WebhookNotifier {
    http: reqwest::Client,
    secret: Secret,
}

impl WebhookNotifier {
    pub fn new(secret: Secret) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            // A redirect could lead the signed body anywhere: a 3xx is a refusal.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| NotifyError::Permanent(format!("HTTP client: {e}")))?;
        Ok(WebhookNotifier { http, secret })
    }

    pub async fn send(
        &self,
        url: &str,
        body: &Assignment<'_>,
        now: i64,
    ) -> Result<(), NotifyError> {
        let bytes = serde_json::to_vec(body).map_err(|e| NotifyError::Permanent(e.to_string()))?;
        self.post(url, &body.delivery_id, &bytes, now).await
    }

    /// Posts a JSON body (any team webhook event, see [`super::bridge`]) signed at `now`.
    pub async fn post(
        &self,
        url: &str,
        delivery_id: &str,
        bytes: &[u8],
        now: i64,
    ) -> Result<(), NotifyError> {
        // Checked again here: the team item may predate the check or have been edited by hand.
        let url = parse_notify_url(url)
            .map_err(|e| NotifyError::Permanent(format!("notify_url: {e}")))?;
        let sig = signature(&self.secret, now, bytes);
        let res = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, sig)
            .header(DELIVERY_HEADER, delivery_id)
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| NotifyError::Retryable(format!("POST failed: {e}")))?;
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
            Err(NotifyError::Retryable(format!("HTTP {status}")))
        } else {
            Err(NotifyError::Permanent(format!("HTTP {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, header_exists, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    fn request() -> AssignRequest {
        AssignRequest {
            job_id: "job-1".into(),
            phone_number_id: "106540352242922".into(),
            contact: ContactRef {
                user_id: Some("US.13491208655302741918".into()),
                ..Default::default()
            },
            conversation_id: "conv-1".into(),
            language: "de".into(),
            reason: HandoffReason::Completed,
            answers: [("inquiry_type".to_string(), "billing".to_string())].into(),
            fields: Default::default(),
            last_inbound_at: 1,
            requested_at: 1,
            supersedes: false,
            vars: Default::default(),
        }
    }

    #[test]
    fn signature_is_hmac_over_timestamp_and_body() {
        // Independent check: HMAC-SHA256("key", "1700000000.{}") computed separately.
        let sig = signature(&Secret::new("key"), 1_700_000_000, b"{}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            sig,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(
            sig,
            signature(&Secret::new("key"), 1_700_000_001, b"{}"),
            "timestamp is signed"
        );
        assert_ne!(sig, signature(&Secret::new("kez"), 1_700_000_000, b"{}"));
    }

    async fn post_to(server: &MockServer) -> Result<(), NotifyError> {
        let req = request();
        let facts = AssignmentFacts {
            request: &req,
            team_id: "billing",
            agent_id: "ann",
            agent_name: "Ann",
            assigned_at: 1_700_000_000,
            vip: true,
        };
        let n = WebhookNotifier::new(Secret::new("hook-secret")).unwrap();
        n.send(
            &format!("{}/hook", server.uri()),
            &payload(&facts),
            1_700_000_000,
        )
        .await
    }

    #[tokio::test]
    async fn posts_a_signed_json_body_the_receiver_can_verify() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .and(header("content-type", "application/json"))
            .and(header(TIMESTAMP_HEADER, "1700000000"))
            .and(header(DELIVERY_HEADER, "asg:conv-1:job-1"))
            .and(header_exists(SIGNATURE_HEADER))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        post_to(&server).await.unwrap();
        let received: Vec<Request> = server.received_requests().await.unwrap();
        let r = &received[0];
        // Verify as a receiver would.
        let sig = r.headers.get(SIGNATURE_HEADER).unwrap().to_str().unwrap();
        assert_eq!(
            sig,
            signature(&Secret::new("hook-secret"), 1_700_000_000, &r.body)
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event"], "conversation.assigned");
        assert_eq!(body["agent_id"], "ann");
        assert_eq!(body["team_id"], "billing");
        assert_eq!(body["vip"], true);
        assert_eq!(body["contact"]["user_id"], "US.13491208655302741918");
        assert_eq!(body["answers"]["inquiry_type"], "billing");
    }

    #[test]
    fn notification_retries_back_off_and_end() {
        let waits: Vec<Option<i64>> = (1..=MAX_NOTIFY_ATTEMPTS).map(notify_retry_after).collect();
        assert_eq!(waits, [Some(60), Some(120), Some(240), Some(480), None]);
        assert_eq!(notify_retry_after(0), Some(60));
        assert_eq!(notify_retry_after(u32::MAX), None);
    }

    #[test]
    fn notify_urls_are_https_or_exactly_loopback() {
        for ok in [
            "https://desk.example.com/hook",
            "https://desk.example.com:8443/a?b=c",
            "http://127.0.0.1:8080/hook",
            "http://[::1]:9/hook",
            "http://localhost/hook",
            "http://LOCALHOST:1/hook",
        ] {
            assert!(parse_notify_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/hook",
            "http://127.0.0.1.nip.io/hook",
            "http://localhost.example.com/hook",
            "http://localhost@example.com/hook",
            "https://user:pass@desk.example.com/hook",
            "http://127.0.0.2/hook",
            "ftp://desk.example.com/hook",
            "file:///etc/passwd",
            "desk.example.com/hook",
            "",
        ] {
            assert!(parse_notify_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_bad_urls_are_not_posted() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(
                ResponseTemplate::new(307)
                    .insert_header("location", format!("{}/elsewhere", server.uri())),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/elsewhere"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        assert!(matches!(
            post_to(&server).await,
            Err(NotifyError::Permanent(_))
        ));
        let req = request();
        let facts = AssignmentFacts {
            request: &req,
            team_id: "t",
            agent_id: "a",
            agent_name: "A",
            assigned_at: 0,
            vip: false,
        };
        let n = WebhookNotifier::new(Secret::new("s")).unwrap();
        let err = n
            .send("http://127.0.0.1.nip.io/hook", &payload(&facts), 0)
            .await
            .unwrap_err();
        assert!(matches!(err, NotifyError::Permanent(_)), "{err}");
    }

    #[tokio::test]
    async fn server_errors_retry_client_errors_are_permanent() {
        for (status, retry) in [
            (500, true),
            (503, true),
            (429, true),
            (408, true),
            (400, false),
            (401, false),
            (404, false),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status).set_body_string("{\"error\":\"nope\"}"))
                .mount(&server)
                .await;
            let err = post_to(&server).await.unwrap_err();
            assert_eq!(
                matches!(err, NotifyError::Retryable(_)),
                retry,
                "HTTP {status}: {err}"
            );
        }
        // Nothing listening (wiremock pools dropped servers, so use a port just released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = format!("http://127.0.0.1:{port}");
        let req = request();
        let facts = AssignmentFacts {
            request: &req,
            team_id: "t",
            agent_id: "a",
            agent_name: "A",
            assigned_at: 0,
            vip: false,
        };
        let n = WebhookNotifier::new(Secret::new("s")).unwrap();
        assert!(matches!(
            n.send(&format!("{uri}/hook"), &payload(&facts), 0).await,
            Err(NotifyError::Retryable(_))
        ));
    }
}
