//! Contact identity after WhatsApp usernames (2026).
//!
//! Meta identifies a user by a business-scoped user id (BSUID, e.g. `US.13491208655302741918`)
//! and, unless the user hides it behind a username, by phone number (`wa_id`). prechat keys a
//! contact by its BSUID when Meta sends one, else by its phone number.

use serde::{Deserialize, Serialize};

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
    pub fn key(&self) -> Option<&str> {
        contact_key(self.user_id.as_deref(), self.wa_id.as_deref())
    }
}

/// The contact key of a BSUID and a phone number: the BSUID when known, else the phone number
/// (empty counts as unknown).
pub fn contact_key<'a>(user_id: Option<&'a str>, wa_id: Option<&'a str>) -> Option<&'a str> {
    user_id
        .filter(|s| !s.is_empty())
        .or(wa_id.filter(|s| !s.is_empty()))
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
        assert_eq!(c.key(), Some("16505551234"));
        c.user_id = Some("US.13491208655302741918".into());
        assert_eq!(c.key(), Some("US.13491208655302741918"));
        c.user_id = Some(String::new());
        assert_eq!(c.key(), Some("16505551234"));
        assert_eq!(ContactRef::default().key(), None);
    }
}
