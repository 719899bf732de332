//! The Graph API port: `POST {base}/{version}/{phone_number_id}/messages`.
//!
//! [`GraphApi`] is what the reply sender depends on; [`GraphClient`] is its one implementation
//! (reqwest over rustls). The access token is read once at init and kept; after an auth error
//! (code 190) the client re-reads it from its [`TokenSource`] once and, if it changed, repeats
//! the request with the new token. A token that still fails is reported as
//! [`ErrorClass::Auth`](super::graph_error::ErrorClass::Auth) for the caller to retry later.

use std::future::Future;
use std::sync::RwLock;
use std::time::Duration;

use serde_json::Value;

use super::graph_error::{classify, ErrorClass, GraphError};
use crate::secrets::{self, Secret, SecretError};

/// A successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// `messages[0].id` (the `wamid`); `None` for calls that create no message (mark-as-read).
    pub wamid: Option<String>,
}

/// Sends one rendered body from a business number.
pub trait GraphApi: Send + Sync {
    fn post_message(
        &self,
        phone_number_id: &str,
        body: &Value,
    ) -> impl Future<Output = Result<Accepted, GraphError>> + Send;
}

/// Where the access token comes from (read at init and after an auth error).
pub trait TokenSource: Send + Sync {
    fn load(&self) -> impl Future<Output = Result<Secret, SecretError>> + Send;
}

/// The access token as `prechat::secrets` resolves it: SSM parameter `<NAME>_PARAM`, or the
/// plain `<NAME>` for local runs.
pub struct SecretToken<F> {
    ssm: aws_sdk_ssm::Client,
    name: String,
    lookup: F,
}

impl SecretToken<fn(&str) -> Option<String>> {
    /// Reads `name` as configured in the process environment.
    pub fn from_env(ssm: aws_sdk_ssm::Client, name: impl Into<String>) -> Self {
        SecretToken {
            ssm,
            name: name.into(),
            lookup: crate::config::process_env,
        }
    }
}

impl<F: Fn(&str) -> Option<String> + Send + Sync> SecretToken<F> {
    /// Reads `name` through an explicit environment lookup (tests, local runs).
    pub fn with_lookup(ssm: aws_sdk_ssm::Client, name: impl Into<String>, lookup: F) -> Self {
        SecretToken {
            ssm,
            name: name.into(),
            lookup,
        }
    }
}

impl<F: Fn(&str) -> Option<String> + Send + Sync> TokenSource for SecretToken<F> {
    async fn load(&self) -> Result<Secret, SecretError> {
        let mut all = secrets::load_with(&self.ssm, &[self.name.as_str()], &self.lookup).await?;
        all.pop()
            .ok_or_else(|| SecretError::NotConfigured(self.name.clone()))
    }
}

/// Settings of the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// `PRECHAT_GRAPH_BASE_URL`, e.g. `https://graph.facebook.com` (no trailing slash needed).
    pub base_url: String,
    /// `PRECHAT_GRAPH_API_VERSION`, e.g. `v23.0`.
    pub api_version: String,
    /// Whole-request timeout.
    pub timeout: Duration,
}

/// [`GraphApi`] over HTTPS.
pub struct GraphClient<T> {
    http: reqwest::Client,
    settings: GraphSettings,
    token: RwLock<Secret>,
    source: T,
}

impl<T: TokenSource> GraphClient<T> {
    /// Builds the client and reads the token once.
    pub async fn new(settings: GraphSettings, source: T) -> Result<Self, ClientInitError> {
        let token = source.load().await?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("prechat-reply-sender/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientInitError::Http(e.to_string()))?;
        Ok(GraphClient {
            http,
            settings,
            token: RwLock::new(token),
            source,
        })
    }

    fn current_token(&self) -> Secret {
        match self.token.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn url(&self, phone_number_id: &str) -> String {
        format!(
            "{}/{}/{}/messages",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.api_version,
            phone_number_id
        )
    }

    async fn post_once(
        &self,
        url: &str,
        token: &Secret,
        body: &Value,
    ) -> Result<Accepted, GraphError> {
        let response = self
            .http
            .post(url)
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            // reqwest's error text names the URL, which holds no contact data.
            .map_err(|e| GraphError::transport(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| GraphError::transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(classify(status, &text));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| GraphError::unexpected_success(status, "2xx answer is not JSON"))?;
        let wamid = v
            .get("messages")
            .and_then(|m| m.get(0))
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Accepted { wamid })
    }
}

impl<T: TokenSource> GraphApi for GraphClient<T> {
    async fn post_message(
        &self,
        phone_number_id: &str,
        body: &Value,
    ) -> Result<Accepted, GraphError> {
        // The id goes into the path: refuse anything that is not Meta's numeric id.
        if phone_number_id.is_empty() || !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            let mut e = GraphError::transport("phone_number_id is not numeric");
            e.class = ErrorClass::Permanent;
            return Err(e);
        }
        let url = self.url(phone_number_id);
        let token = self.current_token();
        let err = match self.post_once(&url, &token, body).await {
            Err(e) if e.class == ErrorClass::Auth => e,
            other => return other,
        };
        let fresh = match self.source.load().await {
            Ok(t) => t,
            Err(load) => {
                tracing::error!(error = %load, "re-reading the WhatsApp access token failed");
                return Err(err);
            }
        };
        if fresh == token {
            return Err(err);
        }
        tracing::info!(
            "WhatsApp access token re-read after an auth error; retrying with the new one"
        );
        match self.token.write() {
            Ok(mut t) => *t = fresh.clone(),
            Err(poisoned) => *poisoned.into_inner() = fresh.clone(),
        }
        self.post_once(&url, &fresh, body).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientInitError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("building the HTTP client failed: {0}")]
    Http(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// Hands out tokens in order, repeating the last one.
    struct Tokens(Mutex<Vec<&'static str>>);

    impl TokenSource for Tokens {
        async fn load(&self) -> Result<Secret, SecretError> {
            let mut t = self.0.lock().unwrap();
            let v = if t.len() > 1 { t.remove(0) } else { t[0] };
            Ok(Secret::new(v))
        }
    }

    async fn client(server: &MockServer, tokens: Vec<&'static str>) -> GraphClient<Tokens> {
        let settings = GraphSettings {
            base_url: format!("{}/", server.uri()),
            api_version: "v23.0".into(),
            timeout: Duration::from_secs(2),
        };
        GraphClient::new(settings, Tokens(Mutex::new(tokens)))
            .await
            .unwrap()
    }

    const EXPIRED: &str = r#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"A1"}}"#;

    #[tokio::test]
    async fn posts_body_with_bearer_token_and_returns_wamid() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v23.0/106540352242922/messages"))
            .and(header("authorization", "Bearer t1"))
            .and(wiremock::matchers::body_json(serde_json::json!({"a": 1})))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": "16505551234", "wa_id": "16505551234" }],
                "messages": [{ "id": "wamid.X1", "message_status": "accepted" }]
            })))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server, vec!["t1"]).await;
        let ok = c
            .post_message("106540352242922", &serde_json::json!({"a": 1}))
            .await
            .unwrap();
        assert_eq!(ok.wamid.as_deref(), Some("wamid.X1"));
    }

    #[tokio::test]
    async fn auth_error_rereads_token_once_and_retries() {
        let server = MockServer::start().await;
        Mock::given(header("authorization", "Bearer old"))
            .respond_with(ResponseTemplate::new(401).set_body_string(EXPIRED))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(header("authorization", "Bearer new"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"success": true})),
            )
            .expect(2)
            .mount(&server)
            .await;
        let c = client(&server, vec!["old", "new"]).await;
        assert_eq!(
            c.post_message("1", &serde_json::json!({}))
                .await
                .unwrap()
                .wamid,
            None
        );
        // The new token is kept: no second re-read, no second 401.
        assert!(c.post_message("1", &serde_json::json!({})).await.is_ok());
    }

    #[tokio::test]
    async fn unchanged_token_is_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401).set_body_string(EXPIRED))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server, vec!["same"]).await;
        let e = c
            .post_message("1", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Auth);
        assert_eq!(e.code, Some(190));
    }

    #[tokio::test]
    async fn transport_errors_and_bad_ids_are_classified() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let mut c = client(&server, vec!["t"]).await;
        c.http = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let e = c
            .post_message("1", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Retryable);
        assert_eq!(e.status, None);
        // Nothing listening: a network error, retryable.
        c.settings.base_url = "http://127.0.0.1:9".into();
        let e = c
            .post_message("1", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!((e.class, e.status), (ErrorClass::Retryable, None));
        let e = c
            .post_message("1/../../x", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
    }
}
