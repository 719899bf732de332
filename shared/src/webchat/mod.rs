//! The web chat channel (issue 13): a business's website embeds `/widget.js`; its pre-chat form
//! is the WhatsApp survey's ([`crate::survey::web`]), and the visitor then chats with the same
//! agents through the same pipeline. What makes a conversation a web one:
//!
//! - **The contact**: business number [`WEB_PHONE_NUMBER_ID`] (`web`), contact key
//!   `V.{visitor id}` ([`visitor_key`]) as its `user_id` (the BSUID slot), no `wa_id`. Every
//!   store, FIFO group and key scheme works unchanged; [`is_web`] tells the channel apart.
//! - **The visitor's token** ([`token`]): HMAC-signed, kept in the browser's storage, carried by
//!   every visitor request and by the visitor's WebSocket (`?token=`), naming only the visitor.
//! - **Pushes to the visitor**: the same WebSocket API and [`crate::realtime::push::Pusher`],
//!   with the visitor's principal [`visitor_principal`] where an agent id would be.
//! - **Inbound**: the submitted form is one [`crate::whatsapp::event::WebFormSubmission`] on the
//!   inbound queue (the contact's FIFO group, like a message); the visitor's messages are
//!   `InboundMessage`s with the channel's business number.

pub mod http;
pub mod outbound;
pub mod rate_limit;
pub mod token;

/// The business number of every web chat contact.
pub const WEB_PHONE_NUMBER_ID: &str = "web";

/// The prefix of a web visitor's contact key.
pub const VISITOR_PREFIX: &str = "V.";

/// The prefix of a visitor's push principal (where an agent id would be).
pub const VISITOR_PRINCIPAL_PREFIX: &str = "visitor:";

/// Whether a conversation of this business number is a web chat one.
pub fn is_web(phone_number_id: &str) -> bool {
    phone_number_id == WEB_PHONE_NUMBER_ID
}

/// The channel of a conversation of this business number, as the agent API names it: `web`
/// or `whatsapp`.
pub fn channel(phone_number_id: &str) -> &'static str {
    if is_web(phone_number_id) {
        "web"
    } else {
        "whatsapp"
    }
}

/// Whether `id` is a well-formed visitor id: 16 to 64 characters of `A-Z a-z 0-9 - _`.
pub fn is_visitor_id(id: &str) -> bool {
    (16..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The contact key of a visitor (`V.{visitor id}`).
pub fn visitor_key(visitor_id: &str) -> String {
    format!("{VISITOR_PREFIX}{visitor_id}")
}

/// The push principal of a visitor's contact key (`visitor:V.{id}`): their connections are
/// stored and listed under it, as an agent's under the agent id.
pub fn visitor_principal(contact_key: &str) -> String {
    format!("{VISITOR_PRINCIPAL_PREFIX}{contact_key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_and_the_keys() {
        assert!(is_web("web") && !is_web("106540352242922"));
        assert_eq!(
            (channel("web"), channel("106540352242922")),
            ("web", "whatsapp")
        );
        assert_eq!(visitor_key("abcdefghijklmnop"), "V.abcdefghijklmnop");
        assert_eq!(
            visitor_principal("V.abcdefghijklmnop"),
            "visitor:V.abcdefghijklmnop"
        );
        assert!(is_visitor_id("abcdefghijklmnop") && is_visitor_id(&"a_-9".repeat(16)));
        for bad in [
            "",
            "short",
            &"a".repeat(65),
            "abcdefghijklmnop!",
            "abcdefghijklmnöp",
        ] {
            assert!(!is_visitor_id(bad), "{bad:?}");
        }
    }
}
