//! Contact identity after WhatsApp usernames (2026).
//!
//! Meta identifies a user by a business-scoped user id (BSUID, e.g. `US.13491208655302741918`)
//! and, unless the user hides it behind a username, by phone number (`wa_id`). prechat keys a
//! contact by its BSUID when Meta sends one, else by its phone number.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The key prechat stores a contact under ([`ContactRef::key`]): the BSUID when Meta sent
/// one, else the phone number. A type of its own so it cannot be mixed up with the other ids
/// passed beside it (business number, conversation, message); serialised as the plain
/// string, so stored items and queue bodies read and write it as before. Like the ids it is
/// made of, it is personal data: logs show it only through [`crate::telemetry::redact`].
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContactKey(String);

impl ContactKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the empty key of a contact not yet attributed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ContactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ContactKey {
    fn from(s: String) -> Self {
        ContactKey(s)
    }
}

impl From<&str> for ContactKey {
    fn from(s: &str) -> Self {
        ContactKey(s.to_owned())
    }
}

impl From<ContactKey> for String {
    fn from(k: ContactKey) -> Self {
        k.0
    }
}

impl AsRef<str> for ContactKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Everything a delivery told us about who wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRef {
    /// Business-scoped user id (`contacts[].user_id`, `messages[].from_user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Phone number as Meta gives it (`wa_id`, `from`): digits, no `+`. May be withheld.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// `contacts[].profile.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    /// `contacts[].profile.username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl ContactRef {
    /// The key prechat stores the contact under: the BSUID when known, else the phone number.
    /// `None` when Meta sent neither (such an event cannot be attributed).
    pub fn key(&self) -> Option<ContactKey> {
        contact_key(self.user_id.as_deref(), self.wa_id.as_deref())
    }
}

/// The contact key of a BSUID and a phone number: the BSUID when known, else the phone number
/// (empty counts as unknown).
pub fn contact_key(user_id: Option<&str>, wa_id: Option<&str>) -> Option<ContactKey> {
    user_id
        .filter(|s| !s.is_empty())
        .or(wa_id.filter(|s| !s.is_empty()))
        .map(ContactKey::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsuid_wins_then_phone() {
        let mut c = ContactRef {
            wa_id: Some("16505551234".into()),
            ..Default::default()
        };
        assert_eq!(c.key(), Some("16505551234".into()));
        c.user_id = Some("US.13491208655302741918".into());
        assert_eq!(c.key(), Some("US.13491208655302741918".into()));
        c.user_id = Some(String::new());
        assert_eq!(c.key(), Some("16505551234".into()));
        assert_eq!(ContactRef::default().key(), None);
    }

    #[test]
    fn a_contact_key_is_written_as_the_plain_string() {
        let key = ContactKey::from("US.13491208655302741918");
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, r#""US.13491208655302741918""#);
        assert_eq!(serde_json::from_str::<ContactKey>(&json).unwrap(), key);
        assert_eq!(key.to_string(), key.as_str());
    }
}
