//! The typed model of a WhatsApp Cloud API webhook delivery, and its tolerant parser.
//!
//! Shapes follow Meta's webhook reference: `object`, `entry[].id`, `entry[].changes[].field` and
//! `.value` with `messaging_product`, `metadata`, `contacts[]`, `messages[]`, `statuses[]`,
//! `errors[]` and (BSUID rotation) `user_id_update[]`. Since the 2026 usernames change a user may
//! come with a business-scoped user id (`user_id`, `from_user_id`, `recipient_user_id`, plus
//! `parent_*` variants) and without a phone number, so every identity field is optional.
//!
//! Tolerance: unknown fields are ignored, and the message `type` stays a string so a type Meta
//! adds later is kept (normalisation turns it into `Unsupported`). [`parse`] first tries one
//! strict pass over the whole body (the common, fast case); only when that fails does it
//! re-read the delivery item by item, so one malformed entry, change, contact, message or status
//! is reported in [`Parsed::rejected`] and never drops the valid items beside it.
//!
//! A lone UTF-16 surrogate escape (`"\uD800"` without its pair) is valid JSON syntax but not a
//! Unicode string, and serde refuses the whole document for it. When a pass fails and the body
//! holds one, every lone surrogate escape is replaced by `\uFFFD` (same length, so positions
//! stay) and the body is parsed again: that one text carries U+FFFD and everything else is
//! kept. The signature was checked over the bytes as received, before this.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The only `object` a WhatsApp Cloud API delivery carries.
pub const OBJECT: &str = "whatsapp_business_account";

/// `changes[].field` values that carry events for the pipeline.
pub const FIELD_MESSAGES: &str = "messages";
pub const FIELD_USER_ID_UPDATE: &str = "user_id_update";

/// The whole delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    pub object: Object,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// `object`: compared while parsing, without allocating a string for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Object {
    #[serde(rename = "whatsapp_business_account")]
    WhatsappBusinessAccount,
    /// Any other product's webhook (Messenger `page`, `instagram`, ...): not for us.
    #[serde(other)]
    Other,
}

/// `value.messaging_product`, compared without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Product {
    #[serde(rename = "whatsapp")]
    Whatsapp,
    #[serde(other)]
    Other,
}

/// One WhatsApp Business Account's part of a delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    /// The WhatsApp Business Account id.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    pub field: String,
    #[serde(default)]
    pub value: ChangeValue,
}

/// `changes[].value`. Every list defaults to empty: a `messages` change holds either messages
/// (with `contacts`) or statuses, and other fields hold none of them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChangeValue {
    #[serde(default)]
    pub messaging_product: Option<Product>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub statuses: Vec<Status>,
    /// Errors about the delivery itself (not tied to a message).
    #[serde(default)]
    pub errors: Vec<WebhookError>,
    #[serde(default)]
    pub user_id_update: Vec<UserIdUpdateItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub display_phone_number: String,
    pub phone_number_id: String,
}

/// `contacts[]`: who sent the messages of this change.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub parent_user_id: Option<String>,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// `messages[]`. The content sits under the key named by `type`; only that one is read.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub id: String,
    #[serde(deserialize_with = "unix_seconds")]
    pub timestamp: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The sender's phone number; withheld for some users with a username.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub from_user_id: Option<String>,
    #[serde(default)]
    pub from_parent_user_id: Option<String>,
    #[serde(default)]
    pub context: Option<Context>,
    #[serde(default)]
    pub referral: Option<Value>,
    #[serde(default)]
    pub text: Option<Text>,
    #[serde(default)]
    pub interactive: Option<Interactive>,
    #[serde(default)]
    pub button: Option<Button>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub image: Option<Media>,
    #[serde(default)]
    pub audio: Option<Media>,
    #[serde(default)]
    pub video: Option<Media>,
    #[serde(default)]
    pub document: Option<Media>,
    #[serde(default)]
    pub sticker: Option<Media>,
    #[serde(default)]
    pub contacts: Option<Value>,
    #[serde(default)]
    pub reaction: Option<Reaction>,
    #[serde(default)]
    pub order: Option<Value>,
    #[serde(default)]
    pub system: Option<System>,
    /// Set on `unsupported` messages (e.g. 131051 "Message type unknown").
    #[serde(default)]
    pub errors: Vec<WebhookError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Text {
    pub body: String,
}

/// `interactive`: the reply to an interactive message we sent.
#[derive(Debug, Clone, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub button_reply: Option<ButtonReply>,
    #[serde(default)]
    pub list_reply: Option<ListReply>,
    #[serde(default)]
    pub nfm_reply: Option<NfmReply>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ButtonReply {
    pub id: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ListReply {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A WhatsApp Flows response; `response_json` is itself a JSON document, as a string.
#[derive(Debug, Clone, Deserialize)]
pub struct NfmReply {
    pub response_json: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub name: String,
}

/// `button`: a template quick-reply button.
#[derive(Debug, Clone, Deserialize)]
pub struct Button {
    #[serde(default)]
    pub payload: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

/// `image`, `audio`, `video`, `document`, `sticker`.
#[derive(Debug, Clone, Deserialize)]
pub struct Media {
    pub id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reaction {
    pub message_id: String,
    #[serde(default)]
    pub emoji: Option<String>,
}

/// `system`: a user changed number (`user_changed_number`) or BSUID (`user_changed_user_id`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct System {
    #[serde(default)]
    pub body: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The new phone number (`user_changed_number`).
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub previous_user_id: Option<String>,
}

/// `statuses[]`: what happened to a message we sent.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub id: String,
    pub status: String,
    #[serde(deserialize_with = "unix_seconds")]
    pub timestamp: i64,
    #[serde(default)]
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub recipient_user_id: Option<String>,
    #[serde(default)]
    pub recipient_parent_user_id: Option<String>,
    #[serde(default)]
    pub errors: Vec<WebhookError>,
    #[serde(default)]
    pub conversation: Option<Value>,
    #[serde(default)]
    pub pricing: Option<Value>,
}

/// An error object in a webhook (`errors[]` of a value, a status or a message).
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookError {
    pub code: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

/// `user_id_update[]`: a phone-number change gave the user a new BSUID.
#[derive(Debug, Clone, Deserialize)]
pub struct UserIdUpdateItem {
    #[serde(default)]
    pub wa_id: Option<String>,
    pub user_id: UserIdChange,
    #[serde(deserialize_with = "unix_seconds")]
    pub timestamp: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserIdChange {
    pub previous: String,
    pub current: String,
}

/// Meta sends Unix timestamps as strings of digits; a number is accepted as well. A visitor
/// rather than an untagged enum: untagged enums buffer the value first, on the hot path.
fn unix_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Seconds;
    impl serde::de::Visitor<'_> for Seconds {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Unix seconds as a string of digits or a number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("timestamp is out of range"))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom("timestamp is not a whole number of seconds"))
        }
    }
    d.deserialize_any(Seconds)
}

/// Why a whole delivery is refused (a 4xx): nothing in it can be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("object is not whatsapp_business_account")]
    WrongObject,
    #[error("entry is not an array")]
    EntryNotArray,
}

/// An item that was left out, with where it was and why. Reasons never quote input values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// e.g. `entry[0].changes[1].messages[2]`.
    pub location: String,
    pub reason: String,
}

/// One change of a delivery, with the entry it came from.
#[derive(Debug, Clone)]
pub struct ParsedChange {
    /// Index of the entry and of the change in it, for locations in logs.
    pub entry_index: usize,
    pub change_index: usize,
    pub field: String,
    pub value: ChangeValue,
}

/// A delivery, parsed as far as it could be.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub changes: Vec<ParsedChange>,
    pub rejected: Vec<Rejected>,
}

/// Parses a delivery body. Fails only when nothing at all can be used (not JSON, not an object,
/// wrong `object`, `entry` not a list); problems inside are reported per item.
pub fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    match parse_once(body) {
        // Both passes refuse a lone surrogate escape: repair (rare, so only then) and retry.
        Err(e) => match replace_lone_surrogates(body) {
            Some(repaired) => parse_once(&repaired),
            None => Err(e),
        },
        ok => ok,
    }
}

/// `body` with every lone surrogate escape (`\uD800`-`\uDFFF` not part of a high-low pair)
/// replaced by `\uFFFD`; `None` when it has none. Only escapes are looked at: raw bytes that
/// are not UTF-8 are refused by serde as before.
pub fn replace_lone_surrogates(body: &[u8]) -> Option<Vec<u8>> {
    fn unit_at(b: &[u8], i: usize) -> Option<u16> {
        // `\uXXXX` at i
        if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
            return None;
        }
        let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    }
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = unit_at(body, i) else {
            i += 2; // another escape (`\\`, `\"`, ...): its second byte is not a new escape
            continue;
        };
        let len = match unit {
            0xD800..=0xDBFF => match unit_at(body, i + 6) {
                Some(0xDC00..=0xDFFF) => {
                    i += 12; // a proper pair
                    continue;
                }
                _ => 6,
            },
            0xDC00..=0xDFFF => 6,
            _ => {
                i += 6;
                continue;
            }
        };
        let fixed = out.get_or_insert_with(|| body.to_vec());
        fixed[i..i + len].copy_from_slice(b"\\uFFFD");
        i += len;
    }
    out
}

fn parse_once(body: &[u8]) -> Result<Parsed, ParseError> {
    match serde_json::from_slice::<Notification>(body) {
        Ok(n) if n.object == Object::WhatsappBusinessAccount => Ok(Parsed {
            changes: n
                .entry
                .into_iter()
                .enumerate()
                .flat_map(|(ei, e)| {
                    e.changes
                        .into_iter()
                        .enumerate()
                        .map(move |(ci, c)| ParsedChange {
                            entry_index: ei,
                            change_index: ci,
                            field: c.field,
                            value: c.value,
                        })
                })
                .collect(),
            rejected: Vec::new(),
        }),
        Ok(_) => Err(ParseError::WrongObject),
        Err(_) => salvage(body),
    }
}

/// The slow path: the strict pass failed, so walk the JSON tree and keep every valid item.
fn salvage(body: &[u8]) -> Result<Parsed, ParseError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(safe_reason(&e)))?;
    let root = root.as_object().ok_or(ParseError::NotAnObject)?;
    if root.get("object").and_then(Value::as_str) != Some(OBJECT) {
        return Err(ParseError::WrongObject);
    }
    let entries = match root.get("entry") {
        None | Some(Value::Null) => return Ok(Parsed::default()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ParseError::EntryNotArray),
    };
    let mut out = Parsed::default();
    for (ei, entry) in entries.iter().enumerate() {
        let at = format!("entry[{ei}]");
        let Some(changes) = entry.get("changes") else {
            if !entry.is_object() {
                out.reject(at, "entry is not an object");
            }
            continue;
        };
        let Some(changes) = changes.as_array() else {
            out.reject(at, "changes is not an array");
            continue;
        };
        for (ci, change) in changes.iter().enumerate() {
            let at = format!("entry[{ei}].changes[{ci}]");
            let Some(field) = change.get("field").and_then(Value::as_str) else {
                out.reject(at, "change has no field");
                continue;
            };
            let value = match change.get("value") {
                Some(v) if v.is_object() => salvage_value(v, &at, &mut out.rejected),
                Some(_) => {
                    out.reject(at, "value is not an object");
                    continue;
                }
                None => ChangeValue::default(),
            };
            out.changes.push(ParsedChange {
                entry_index: ei,
                change_index: ci,
                field: field.to_owned(),
                value,
            });
        }
    }
    Ok(out)
}

fn salvage_value(v: &Value, at: &str, rejected: &mut Vec<Rejected>) -> ChangeValue {
    fn one<T: for<'de> Deserialize<'de>>(
        v: &Value,
        key: &str,
        at: &str,
        rejected: &mut Vec<Rejected>,
    ) -> Option<T> {
        match v.get(key) {
            None | Some(Value::Null) => None,
            Some(item) => match T::deserialize(item) {
                Ok(t) => Some(t),
                Err(e) => {
                    rejected.push(Rejected {
                        location: format!("{at}.value.{key}"),
                        reason: safe_reason(&e),
                    });
                    None
                }
            },
        }
    }
    fn list<T: for<'de> Deserialize<'de>>(
        v: &Value,
        key: &str,
        at: &str,
        rejected: &mut Vec<Rejected>,
    ) -> Vec<T> {
        match v.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match T::deserialize(item) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        rejected.push(Rejected {
                            location: format!("{at}.value.{key}[{i}]"),
                            reason: safe_reason(&e),
                        });
                        None
                    }
                })
                .collect(),
            Some(_) => {
                rejected.push(Rejected {
                    location: format!("{at}.value.{key}"),
                    reason: format!("{key} is not an array"),
                });
                Vec::new()
            }
        }
    }
    ChangeValue {
        messaging_product: one(v, "messaging_product", at, rejected),
        metadata: one(v, "metadata", at, rejected),
        contacts: list(v, "contacts", at, rejected),
        messages: list(v, "messages", at, rejected),
        statuses: list(v, "statuses", at, rejected),
        errors: list(v, "errors", at, rejected),
        user_id_update: list(v, "user_id_update", at, rejected),
    }
}

impl Parsed {
    fn reject(&mut self, location: String, reason: &str) {
        self.rejected.push(Rejected {
            location,
            reason: reason.to_owned(),
        });
    }
}

/// A serde error made safe to log: its category, then serde's message with every value it
/// quotes left out. serde quotes offending values as `"..."` (strings) or `` `...` `` (numbers,
/// variants: `invalid type: integer `16505551234``), and those may be a phone number, a name
/// or an answer. Only the field names of `missing field` / `duplicate field`, which are ours,
/// are kept. The position (`at line L column C`, or the item's location) stays.
pub fn safe_reason(e: &serde_json::Error) -> String {
    format!("{:?}: {}", e.classify(), scrub_quoted(&e.to_string()))
}

fn scrub_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..open + 1];
        out.push_str(&rest[..open + 1]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else {
            out.push('…');
            return out; // unbalanced: drop the rest
        };
        let ours = quote == "`"
            && (out.ends_with("missing field `") || out.ends_with("duplicate field `"));
        out.push_str(if ours { &after[..close] } else { "…" });
        out.push_str(quote);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(value: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":{value},"field":"messages"}}]}}]}}"#
        )
    }

    const META: &str = r#""messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}"#;

    #[test]
    fn text_message_as_meta_documents_it() {
        let body = wrap(&format!(
            r#"{{{META},"contacts":[{{"profile":{{"name":"Sheena Nelson"}},"wa_id":"16505551234"}}],"messages":[{{"from":"16505551234","id":"wamid.A","timestamp":"1749416383","type":"text","text":{{"body":"Does it come in another color?"}}}}]}}"#
        ));
        let p = parse(body.as_bytes()).unwrap();
        assert!(p.rejected.is_empty());
        assert_eq!(p.changes.len(), 1);
        let v = &p.changes[0].value;
        assert_eq!(p.changes[0].field, "messages");
        assert_eq!(
            v.metadata.as_ref().unwrap().phone_number_id,
            "106540352242922"
        );
        assert_eq!(
            v.contacts[0].profile.as_ref().unwrap().name.as_deref(),
            Some("Sheena Nelson")
        );
        let m = &v.messages[0];
        assert_eq!(
            (m.id.as_str(), m.timestamp, m.kind.as_str()),
            ("wamid.A", 1749416383, "text")
        );
        assert_eq!(
            m.text.as_ref().unwrap().body,
            "Does it come in another color?"
        );
    }

    #[test]
    fn bsuid_fields_and_missing_phone_number() {
        let body = wrap(&format!(
            r#"{{{META},"contacts":[{{"profile":{{"name":"Pablo","username":"@pablo"}},"user_id":"US.13491208655302741918","parent_user_id":"US.ENT.11815799212886844830"}}],"messages":[{{"from_user_id":"US.13491208655302741918","id":"wamid.B","timestamp":1749416383,"type":"text","text":{{"body":"hi"}}}}]}}"#
        ));
        let p = parse(body.as_bytes()).unwrap();
        let v = &p.changes[0].value;
        assert_eq!(
            v.contacts[0].user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        assert_eq!(v.contacts[0].wa_id, None);
        assert_eq!(
            v.contacts[0].profile.as_ref().unwrap().username.as_deref(),
            Some("@pablo")
        );
        assert_eq!(v.messages[0].from, None);
        assert_eq!(
            v.messages[0].from_user_id.as_deref(),
            Some("US.13491208655302741918")
        );
    }

    #[test]
    fn unknown_fields_and_types_are_kept_not_errors() {
        let body = wrap(&format!(
            r#"{{{META},"new_top_level":[1,2],"messages":[{{"from":"1","id":"wamid.C","timestamp":"1","type":"hologram","hologram":{{"x":1}},"brand_new_field":true}}]}}"#
        ));
        let p = parse(body.as_bytes()).unwrap();
        assert!(p.rejected.is_empty());
        assert_eq!(p.changes[0].value.messages[0].kind, "hologram");
    }

    #[test]
    fn one_malformed_message_keeps_its_neighbours() {
        let body = wrap(&format!(
            r#"{{{META},"messages":[{{"from":"1","id":"wamid.1","timestamp":"1","type":"text","text":{{"body":"a"}}}},{{"from":"1","id":42,"timestamp":"1","type":"text"}},{{"from":"1","id":"wamid.3","timestamp":"soon","type":"text","text":{{"body":"secret answer"}}}},{{"from":"1","id":"wamid.4","timestamp":"4","type":"text","text":{{"body":"d"}}}}]}}"#
        ));
        let p = parse(body.as_bytes()).unwrap();
        let ids: Vec<_> = p.changes[0]
            .value
            .messages
            .iter()
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(ids, ["wamid.1", "wamid.4"]);
        let locations: Vec<_> = p.rejected.iter().map(|r| r.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "entry[0].changes[0].value.messages[1]",
                "entry[0].changes[0].value.messages[2]"
            ]
        );
        assert!(
            p.rejected[1].reason.contains("timestamp"),
            "{:?}",
            p.rejected
        );
        assert!(p
            .rejected
            .iter()
            .all(|r| !r.reason.contains("soon") && !r.reason.contains("secret")));
    }

    #[test]
    fn one_malformed_entry_or_change_keeps_the_others() {
        let good = format!(
            r#"{{"value":{{{META},"messages":[{{"from":"1","id":"wamid.ok","timestamp":"1","type":"text","text":{{"body":"a"}}}}]}},"field":"messages"}}"#
        );
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":["junk",{{"id":"1","changes":"nope"}},{{"id":"2","changes":[{{"value":7,"field":"messages"}},{{"value":{{}}}},{good}]}}]}}"#
        );
        let p = parse(body.as_bytes()).unwrap();
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].value.messages[0].id, "wamid.ok");
        assert_eq!(
            (p.changes[0].entry_index, p.changes[0].change_index),
            (2, 2)
        );
        let locations: Vec<_> = p.rejected.iter().map(|r| r.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "entry[0]",
                "entry[1]",
                "entry[2].changes[0]",
                "entry[2].changes[1]"
            ]
        );
    }

    #[test]
    fn whole_delivery_errors() {
        assert!(matches!(parse(b"not json"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse(b""), Err(ParseError::NotJson(_))));
        assert_eq!(parse(b"[1,2]").unwrap_err(), ParseError::NotAnObject);
        assert_eq!(
            parse(br#"{"object":"page","entry":[]}"#).unwrap_err(),
            ParseError::WrongObject
        );
        assert_eq!(
            parse(br#"{"entry":[]}"#).unwrap_err(),
            ParseError::WrongObject
        );
        assert_eq!(
            parse(br#"{"object":"whatsapp_business_account","entry":{}}"#).unwrap_err(),
            ParseError::EntryNotArray
        );
        assert!(
            parse(br#"{"object":"whatsapp_business_account","entry":[]}"#)
                .unwrap()
                .changes
                .is_empty()
        );
    }

    #[test]
    fn a_lone_surrogate_becomes_u_fffd_and_the_other_messages_are_kept() {
        let body = wrap(&format!(
            r#"{{{META},"messages":[{{"from":"1","id":"wamid.1","timestamp":"1","type":"text","text":{{"body":"ok \ud83d\ude00"}}}},{{"from":"1","id":"wamid.2","timestamp":"1","type":"text","text":{{"body":"bad \ud800 and \udc01!"}}}},{{"from":"1","id":"wamid.3","timestamp":"1","type":"text","text":{{"body":"fine"}}}}]}}"#
        ));
        assert!(
            serde_json::from_slice::<Value>(body.as_bytes()).is_err(),
            "serde refuses it"
        );
        let p = parse(body.as_bytes()).unwrap();
        let texts: Vec<_> = p.changes[0]
            .value
            .messages
            .iter()
            .map(|m| m.text.as_ref().unwrap().body.as_str())
            .collect();
        assert_eq!(texts, ["ok 😀", "bad \u{FFFD} and \u{FFFD}!", "fine"]);
        assert!(p.rejected.is_empty());
    }

    #[test]
    fn surrogate_repair_leaves_pairs_and_other_escapes_alone() {
        assert_eq!(
            replace_lone_surrogates(br#""\ud83d\ude00 \\ud800 \u00e9""#),
            None
        );
        assert_eq!(
            replace_lone_surrogates(br#""\ud83d \udbff\udfff \uDC00x""#).unwrap(),
            br#""\uFFFD \udbff\udfff \uFFFDx""#.to_vec()
        );
        assert_eq!(
            replace_lone_surrogates(br#""\ud800\ud800""#).unwrap(),
            br#""\uFFFD\uFFFD""#.to_vec()
        );
        assert_eq!(
            replace_lone_surrogates(br#""\ud8"#),
            None,
            "truncated: left to serde"
        );
    }

    #[test]
    fn safe_reason_hides_integers_and_variants_but_names_missing_fields() {
        let e = serde_json::from_str::<String>("16505551234").unwrap_err();
        let r = safe_reason(&e);
        assert!(!r.contains("1650555"), "{r}");
        assert!(r.starts_with("Data: invalid type: integer"), "{r}");
        let e = serde_json::from_value::<Text>(serde_json::json!({ "x": "Sheena" })).unwrap_err();
        assert_eq!(safe_reason(&e), "Data: missing field `body`");
        let e = serde_json::from_str::<Object>(r#"{"ana@example.com":1}"#).unwrap_err();
        assert!(!safe_reason(&e).contains("ana@"), "{}", safe_reason(&e));
    }

    #[test]
    fn safe_reason_hides_quoted_values() {
        let e = serde_json::from_str::<i64>(r#""+15551234567""#).unwrap_err();
        let r = safe_reason(&e);
        assert!(!r.contains("1555"), "{r}");
        assert!(r.contains("invalid type"), "{r}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse(&body);
        }
    }
}
