//! Meta-shaped webhook deliveries for the simulator: the message a WhatsApp user sends (text,
//! reply-button tap, list-row choice) and the `sent`/`delivered`/`read` statuses of the
//! business's replies, signed with the app secret exactly as Meta signs them
//! (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`).
//!
//! Shapes follow Meta's documented webhook payloads, including the 2026 username fields
//! (`contacts[].user_id`, `profile.username`, `messages[].from_user_id`,
//! `statuses[].recipient_user_id`); a user with only a username has no `wa_id`/`from`.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The business side of the simulated conversation.
#[derive(Debug, Clone)]
pub struct Business {
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
}

impl Default for Business {
    fn default() -> Self {
        Business {
            waba_id: "102290129340398".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
        }
    }
}

/// A simulated WhatsApp user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimContact {
    pub name: String,
    /// Digits only; `None` for a user who shows only a username.
    pub wa_id: Option<String>,
    pub username: Option<String>,
    /// The business-scoped user id Meta would assign (derived, stable per phone or username).
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("a contact needs a phone number or a username")]
    NoIdentity,
    #[error("the phone number must be 8 to 15 digits (country code first), got {0:?}")]
    BadPhone(String),
    #[error("the username must be 3 to 35 letters, digits, '.' or '_'")]
    BadUsername,
    #[error("{0}")]
    BadInput(String),
}

impl SimContact {
    /// Validates what the simulator page sent. Phone numbers may carry `+`, spaces and dashes.
    pub fn new(name: &str, phone: Option<&str>, username: Option<&str>) -> Result<Self, SimError> {
        let phone = phone.map(str::trim).filter(|p| !p.is_empty());
        let username = username
            .map(|u| u.trim().trim_start_matches('@'))
            .filter(|u| !u.is_empty());
        let wa_id = match phone {
            None => None,
            Some(p) => {
                let digits: String = p
                    .chars()
                    .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')'))
                    .collect();
                if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(SimError::BadPhone(p.to_owned()));
                }
                Some(digits)
            }
        };
        if let Some(u) = username {
            let ok = (3..=35).contains(&u.len())
                && u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
            if !ok {
                return Err(SimError::BadUsername);
            }
        }
        let seed = match (&wa_id, username) {
            (Some(p), _) => format!("phone:{p}"),
            (None, Some(u)) => format!("username:{u}"),
            (None, None) => return Err(SimError::NoIdentity),
        };
        let name = name.trim();
        Ok(SimContact {
            name: if name.is_empty() {
                "WhatsApp user".into()
            } else {
                name.to_owned()
            },
            wa_id,
            username: username.map(|u| format!("@{u}")),
            user_id: bsuid(&seed),
        })
    }
}

/// A stable, Meta-shaped BSUID (`US.` + 19 digits) for a seed.
fn bsuid(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut n: u64 = 0;
    for b in digest.iter().take(8) {
        n = (n << 8) | u64::from(*b);
    }
    format!("US.{:019}", n % 10_000_000_000_000_000_000)
}

/// What the user did in the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SimInput {
    Text {
        body: String,
    },
    /// A tap on a reply button of the business message `context_id`.
    Button {
        id: String,
        title: String,
        context_id: Option<String>,
    },
    /// A row chosen in the list of the business message `context_id`.
    List {
        id: String,
        title: String,
        #[serde(default)]
        description: Option<String>,
        context_id: Option<String>,
    },
}

impl SimInput {
    pub fn check(&self) -> Result<(), SimError> {
        match self {
            SimInput::Text { body } if body.trim().is_empty() => {
                Err(SimError::BadInput("empty message".into()))
            }
            SimInput::Text { body } if body.chars().count() > 4096 => Err(SimError::BadInput(
                "a text message is at most 4096 characters".into(),
            )),
            SimInput::Button { id, .. } | SimInput::List { id, .. } if id.is_empty() => Err(
                SimError::BadInput("a reply needs the button or row id".into()),
            ),
            _ => Ok(()),
        }
    }
}

fn envelope(biz: &Business, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": biz.waba_id,
            "changes": [{ "value": value, "field": "messages" }]
        }]
    })
}

fn metadata(biz: &Business) -> Value {
    json!({
        "display_phone_number": biz.display_phone_number,
        "phone_number_id": biz.phone_number_id,
    })
}

/// The delivery Meta sends when `contact` sends `input` (message id `wamid`, Unix `timestamp`).
pub fn message_webhook(
    biz: &Business,
    contact: &SimContact,
    wamid: &str,
    timestamp: i64,
    input: &SimInput,
) -> Value {
    let mut profile = json!({ "name": contact.name });
    if let Some(u) = &contact.username {
        profile["username"] = json!(u);
    }
    let mut who = json!({ "profile": profile, "user_id": contact.user_id });
    let mut message = json!({
        "from_user_id": contact.user_id,
        "id": wamid,
        "timestamp": timestamp.to_string(),
    });
    if let Some(p) = &contact.wa_id {
        who["wa_id"] = json!(p);
        message["from"] = json!(p);
    }
    let context = |id: &Option<String>| {
        id.as_ref()
            .map(|id| json!({ "from": biz.display_phone_number, "id": id }))
    };
    match input {
        SimInput::Text { body } => {
            message["type"] = json!("text");
            message["text"] = json!({ "body": body });
        }
        SimInput::Button {
            id,
            title,
            context_id,
        } => {
            message["type"] = json!("interactive");
            message["interactive"] =
                json!({ "type": "button_reply", "button_reply": { "id": id, "title": title } });
            if let Some(c) = context(context_id) {
                message["context"] = c;
            }
        }
        SimInput::List {
            id,
            title,
            description,
            context_id,
        } => {
            let mut reply = json!({ "id": id, "title": title });
            if let Some(d) = description {
                reply["description"] = json!(d);
            }
            message["type"] = json!("interactive");
            message["interactive"] = json!({ "type": "list_reply", "list_reply": reply });
            if let Some(c) = context(context_id) {
                message["context"] = c;
            }
        }
    }
    envelope(
        biz,
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(biz),
            "contacts": [who],
            "messages": [message],
        }),
    )
}

/// Who an outbound message went to, as the Graph API request named them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusRecipient {
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
}

/// The status delivery Meta sends for the business's message `wamid`
/// (`status`: `sent`, `delivered` or `read`).
pub fn status_webhook(
    biz: &Business,
    recipient: &StatusRecipient,
    wamid: &str,
    status: &str,
    timestamp: i64,
) -> Value {
    let mut st = json!({
        "id": wamid,
        "status": status,
        "timestamp": timestamp.to_string(),
    });
    if let Some(w) = &recipient.wa_id {
        st["recipient_id"] = json!(w);
    }
    if let Some(u) = &recipient.user_id {
        st["recipient_user_id"] = json!(u);
    }
    if status != "read" {
        st["conversation"] = json!({ "id": format!("local-conv-{}", recipient.user_id.as_deref().or(recipient.wa_id.as_deref()).unwrap_or("unknown")), "origin": { "type": "service" } });
        st["pricing"] = json!({ "billable": false, "pricing_model": "PMP", "category": "service", "type": "free_customer_service" });
    }
    let mut contact = json!({});
    if let Some(w) = &recipient.wa_id {
        contact["wa_id"] = json!(w);
    }
    if let Some(u) = &recipient.user_id {
        contact["user_id"] = json!(u);
    }
    envelope(
        biz,
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(biz),
            "contacts": [contact],
            "statuses": [st],
        }),
    )
}

/// The `X-Hub-Signature-256` header value Meta sends with `body`.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) {
        Ok(m) => m,
        // HMAC accepts keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_need_a_phone_or_a_username() {
        assert_eq!(SimContact::new("A", None, None), Err(SimError::NoIdentity));
        assert_eq!(
            SimContact::new("A", Some("  "), Some("@")),
            Err(SimError::NoIdentity)
        );
        assert!(matches!(
            SimContact::new("A", Some("12ab5678"), None),
            Err(SimError::BadPhone(_))
        ));
        assert!(matches!(
            SimContact::new("A", Some("1234"), None),
            Err(SimError::BadPhone(_))
        ));
        assert_eq!(
            SimContact::new("A", None, Some("no spaces")),
            Err(SimError::BadUsername)
        );
        let c = SimContact::new(" Ana ", Some("+1 (650) 555-1234"), Some("@ana.b")).unwrap();
        assert_eq!(c.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(c.username.as_deref(), Some("@ana.b"));
        assert_eq!(c.name, "Ana");
        assert!(
            c.user_id.starts_with("US.") && c.user_id.len() == 22,
            "{}",
            c.user_id
        );
        // Stable per phone number, different per contact.
        let again = SimContact::new("Other", Some("16505551234"), None).unwrap();
        assert_eq!(again.user_id, c.user_id);
        let u = SimContact::new("U", None, Some("ana.b")).unwrap();
        assert_ne!(u.user_id, c.user_id);
        assert_eq!(u.wa_id, None);
    }

    #[test]
    fn text_message_has_meta_shape() {
        let biz = Business::default();
        let c = SimContact::new("Ana", Some("16505551234"), None).unwrap();
        let v = message_webhook(
            &biz,
            &c,
            "wamid.X",
            1_700_000_000,
            &SimInput::Text { body: "hi".into() },
        );
        let value = &v["entry"][0]["changes"][0]["value"];
        assert_eq!(v["object"], "whatsapp_business_account");
        assert_eq!(v["entry"][0]["changes"][0]["field"], "messages");
        assert_eq!(value["metadata"]["phone_number_id"], biz.phone_number_id);
        assert_eq!(value["contacts"][0]["wa_id"], "16505551234");
        assert_eq!(value["contacts"][0]["user_id"], c.user_id);
        assert_eq!(value["contacts"][0]["profile"]["name"], "Ana");
        let m = &value["messages"][0];
        assert_eq!(m["from"], "16505551234");
        assert_eq!(m["from_user_id"], c.user_id);
        assert_eq!(m["timestamp"], "1700000000");
        assert_eq!(m["type"], "text");
        assert_eq!(m["text"]["body"], "hi");
    }

    #[test]
    fn username_only_contact_withholds_the_phone() {
        let biz = Business::default();
        let c = SimContact::new("U", None, Some("ana")).unwrap();
        let input = SimInput::List {
            id: "row-2".into(),
            title: "Billing".into(),
            description: None,
            context_id: Some("wamid.BIZ".into()),
        };
        let v = message_webhook(&biz, &c, "wamid.Y", 1, &input);
        let value = &v["entry"][0]["changes"][0]["value"];
        assert!(value["contacts"][0].get("wa_id").is_none());
        assert_eq!(value["contacts"][0]["profile"]["username"], "@ana");
        let m = &value["messages"][0];
        assert!(m.get("from").is_none());
        assert_eq!(m["interactive"]["type"], "list_reply");
        assert_eq!(m["interactive"]["list_reply"]["id"], "row-2");
        assert_eq!(m["context"]["id"], "wamid.BIZ");
    }

    #[test]
    fn statuses_name_the_recipient_both_ways() {
        let r = StatusRecipient {
            wa_id: Some("1555".into()),
            user_id: Some("US.1".into()),
        };
        let v = status_webhook(&Business::default(), &r, "wamid.Z", "delivered", 5);
        let s = &v["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(s["status"], "delivered");
        assert_eq!(s["recipient_id"], "1555");
        assert_eq!(s["recipient_user_id"], "US.1");
        assert_eq!(s["timestamp"], "5");
    }

    #[test]
    fn signature_matches_meta_reference_vector() {
        // HMAC-SHA256("It's a Secret to Everybody", "Hello, World!") from GitHub's webhook docs,
        // the same scheme Meta uses.
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn inputs_are_checked() {
        assert!(SimInput::Text { body: " ".into() }.check().is_err());
        assert!(SimInput::Text {
            body: "x".repeat(4097)
        }
        .check()
        .is_err());
        assert!(SimInput::Button {
            id: String::new(),
            title: "t".into(),
            context_id: None
        }
        .check()
        .is_err());
        assert!(SimInput::Text { body: "hi".into() }.check().is_ok());
    }
}
