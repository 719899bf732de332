//! The agent inbox page (`GET /inbox`, `GET /inbox/{file}`, `GET /inbox/config.json`): one
//! static HTML page with its script and style sheet (`shared/web/inbox/`, embedded, no build
//! step), served by agent-api on routes outside the JWT authorizer: the page must load before
//! anyone has signed in. It signs in against the user pool itself (`InitiateAuth`) and calls
//! `/api/*` with the access token.
//!
//! Pure: a path in, a response out ([`serve`]). Every answer carries a strict
//! Content-Security-Policy (no inline script or style, connections only to this origin, the
//! Cognito endpoint and the WebSocket URL), `X-Content-Type-Options: nosniff`, no framing and
//! no caching of the config.

use serde_json::json;

const INDEX: &str = include_str!("../../web/inbox/index.html");
const SCRIPT: &str = include_str!("../../web/inbox/inbox.js");
const STYLE: &str = include_str!("../../web/inbox/inbox.css");

/// What the page needs to know about the deployment (`GET /inbox/config.json`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboxConfig {
    /// The browser app client (`UserPoolClient`); `None`: sign-in is not configured.
    pub client_id: Option<String>,
    pub region: String,
    /// Where the page calls the user-pool API: `https://cognito-idp.{region}.amazonaws.com/`
    /// in AWS, a same-origin proxy locally (moto sends no CORS headers).
    pub cognito_endpoint: String,
    /// Prefix of `/api/*` calls; empty: this origin.
    pub api_base: String,
    /// The WebSocket URL (token in the query string); `None`: the page polls.
    pub ws_url: Option<String>,
}

impl InboxConfig {
    /// The Cognito endpoint AWS serves for `region`.
    pub fn aws_cognito_endpoint(region: &str) -> String {
        format!("https://cognito-idp.{region}.amazonaws.com/")
    }

    fn json(&self) -> String {
        json!({
            "client_id": self.client_id,
            "region": self.region,
            "cognito_endpoint": self.cognito_endpoint,
            "api_base": self.api_base,
            "ws_url": self.ws_url,
        })
        .to_string()
    }

    /// The page's Content-Security-Policy.
    pub fn csp(&self) -> String {
        let mut connect = vec!["'self'".to_owned()];
        for url in [Some(&self.cognito_endpoint), self.ws_url.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Some(origin) = origin(url) {
                if !connect.contains(&origin) {
                    connect.push(origin);
                }
            }
        }
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             media-src 'self' data:; connect-src {}; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
            connect.join(" ")
        )
    }
}

/// `scheme://host[:port]` of an absolute URL; `None` for a relative one (same origin).
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let clean = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    };
    (clean(scheme) && clean(host)).then(|| format!("{scheme}://{host}"))
}

/// One answer of the page's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// Whether a path belongs to the inbox (`/inbox`, `/inbox/...`).
pub fn is_inbox_path(path: &str) -> bool {
    path == "/inbox" || path.starts_with("/inbox/")
}

/// Answers `method path` for the inbox's routes.
pub fn serve(method: &str, path: &str, config: &InboxConfig) -> StaticResponse {
    let file = match path.strip_prefix("/inbox") {
        Some("" | "/" | "/index.html") => Some(("text/html; charset=utf-8", INDEX.to_owned())),
        Some("/inbox.js") => Some(("text/javascript; charset=utf-8", SCRIPT.to_owned())),
        Some("/inbox.css") => Some(("text/css; charset=utf-8", STYLE.to_owned())),
        Some("/config.json") => Some(("application/json", config.json())),
        _ => None,
    };
    let mut headers = vec![
        ("content-security-policy", config.csp()),
        ("x-content-type-options", "nosniff".to_owned()),
        ("x-frame-options", "DENY".to_owned()),
        ("referrer-policy", "no-referrer".to_owned()),
    ];
    let (status, content_type, body) = match file {
        _ if !(method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD")) => {
            headers.push(("allow", "GET, HEAD".to_owned()));
            (
                405,
                "text/plain; charset=utf-8",
                "method not allowed".to_owned(),
            )
        }
        Some((ct, body)) => (200, ct, body),
        None => (404, "text/plain; charset=utf-8", "not found".to_owned()),
    };
    headers.push(("content-type", content_type.to_owned()));
    let cache = if path.ends_with("config.json") || status != 200 {
        "no-store"
    } else {
        "no-cache"
    };
    headers.push(("cache-control", cache.to_owned()));
    StaticResponse {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> InboxConfig {
        InboxConfig {
            client_id: Some("client-1".into()),
            region: "eu-west-1".into(),
            cognito_endpoint: InboxConfig::aws_cognito_endpoint("eu-west-1"),
            api_base: String::new(),
            ws_url: Some("wss://abc.execute-api.eu-west-1.amazonaws.com/live?x=1".into()),
        }
    }

    fn header<'a>(r: &'a StaticResponse, name: &str) -> &'a str {
        r.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    #[test]
    fn the_page_its_script_and_style_are_served_with_their_types() {
        for (path, ty) in [
            ("/inbox", "text/html"),
            ("/inbox/", "text/html"),
            ("/inbox/inbox.js", "text/javascript"),
            ("/inbox/inbox.css", "text/css"),
        ] {
            let r = serve("GET", path, &config());
            assert_eq!(r.status, 200, "{path}");
            assert!(header(&r, "content-type").starts_with(ty), "{path}");
            assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        }
    }

    #[test]
    fn the_config_names_the_client_region_cognito_and_socket() {
        let r = serve("GET", "/inbox/config.json", &config());
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["client_id"], "client-1");
        assert_eq!(v["region"], "eu-west-1");
        assert_eq!(
            v["cognito_endpoint"],
            "https://cognito-idp.eu-west-1.amazonaws.com/"
        );
        assert_eq!(v["api_base"], "");
        assert!(v["ws_url"].as_str().unwrap().starts_with("wss://abc."));
        assert_eq!(header(&r, "cache-control"), "no-store");
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_connects_only_where_the_page_must() {
        let csp = config().csp();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains(
            "connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com \
             wss://abc.execute-api.eu-west-1.amazonaws.com;"
        ));
        let local = InboxConfig {
            cognito_endpoint: "/local/cognito".into(),
            ws_url: None,
            ..config()
        };
        assert!(local.csp().contains("connect-src 'self';"));
    }

    #[test]
    fn the_page_has_no_inline_script_or_handler() {
        let lower = INDEX.to_ascii_lowercase();
        assert!(!lower.contains("<script>"), "inline script");
        assert!(!lower.contains(" onclick=") && !lower.contains(" onload="));
        assert!(!lower.contains("style=\""), "inline style");
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("insertAdjacentHTML"));
    }

    #[test]
    fn other_files_are_404_and_other_methods_405() {
        assert_eq!(serve("GET", "/inbox/secret.txt", &config()).status, 404);
        assert_eq!(serve("GET", "/inbox/../api/me", &config()).status, 404);
        let post = serve("POST", "/inbox", &config());
        assert_eq!((post.status, header(&post, "allow")), (405, "GET, HEAD"));
        assert!(is_inbox_path("/inbox") && is_inbox_path("/inbox/x"));
        assert!(!is_inbox_path("/inboxes") && !is_inbox_path("/api/me"));
    }
}
