//! Parsed webhook delivery -> the pipeline's [`InboundEvent`]s, in the order Meta sent them.
//!
//! Order: entries, then changes, then within a change its `messages[]`, `statuses[]` and
//! `user_id_update[]` in that order (Meta puts messages and statuses in separate changes).
//! Changes whose `field` we do not handle (account updates, template reviews, ...) are listed in
//! [`Normalized::skipped_fields`], never queued. Items that cannot become an event (no business
//! number, no contact identity, a known type without its content) are listed with a reason in
//! [`Normalized::rejected`]; everything else in the delivery still goes through.
//!
//! Timestamps of messages and statuses outside `[now - MAX_AGE_SECONDS, now + MAX_AHEAD_SECONDS]`
//! are moved to the nearest end of that range and listed in [`Normalized::clamped`] (the caller
//! logs them): Meta retries a delivery for 7 days, so nothing genuine is older, and a sender's
//! clock ahead of ours must not date a message in the future. BSUID changes keep theirs: it is
//! part of their dedup id (which must not depend on when a retry arrives) and nothing computes
//! with it. `now` is the caller's: this module reads no clock.

use super::contact::ContactRef;
use super::event::{
    ApiError, DeliveryStatus, InboundEvent, InboundMessage, MediaType, MessageContent,
    StatusUpdate, UserIdUpdate,
};
use super::webhook::{self, ChangeValue, Contact, Message, Parsed, Rejected, Status, WebhookError};

/// The outcome of normalising one delivery.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalized {
    pub events: Vec<InboundEvent>,
    pub rejected: Vec<Rejected>,
    /// `field`s of changes that carry nothing for the pipeline (logged, not queued).
    pub skipped_fields: Vec<String>,
    /// `value.errors[]`: problems Meta reports about the delivery itself (logged, not queued).
    pub delivery_errors: Vec<ApiError>,
    /// Timestamps moved into the accepted range (logged; the events carry the clamped value).
    pub clamped: Vec<Clamped>,
}

/// How far back a webhook timestamp may lie: Meta retries a delivery for 7 days.
pub const MAX_AGE_SECONDS: i64 = 7 * 24 * 3600;
/// How far ahead of our clock a webhook timestamp may lie (clock skew).
pub const MAX_AHEAD_SECONDS: i64 = 5 * 60;

/// A timestamp outside the accepted range, and where it was moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamped {
    /// e.g. `entry[0].changes[1].value.messages[2]`.
    pub location: String,
    pub original: i64,
    pub clamped: i64,
}

/// The range timestamps are clamped into, for one `now`.
#[derive(Debug, Clone, Copy)]
struct Window {
    earliest: i64,
    latest: i64,
}

impl Window {
    fn at(now: i64) -> Self {
        Window {
            earliest: now.saturating_sub(MAX_AGE_SECONDS),
            latest: now.saturating_add(MAX_AHEAD_SECONDS),
        }
    }

    /// `ts` inside the window; an outlier is recorded with its location (only then formatted).
    fn clamp(self, ts: i64, location: impl FnOnce() -> String, clamped: &mut Vec<Clamped>) -> i64 {
        let inside = ts.clamp(self.earliest, self.latest);
        if inside != ts {
            clamped.push(Clamped {
                location: location(),
                original: ts,
                clamped: inside,
            });
        }
        inside
    }
}

/// Turns a parsed delivery into events, with timestamps clamped around `now` (Unix seconds).
/// Rejections from parsing are carried over.
pub fn normalize(parsed: Parsed, now: i64) -> Normalized {
    let mut out = Normalized {
        rejected: parsed.rejected,
        ..Default::default()
    };
    let window = Window::at(now);
    for change in parsed.changes {
        let at = At {
            entry: change.entry_index,
            change: change.change_index,
        };
        match change.field.as_str() {
            webhook::FIELD_MESSAGES | webhook::FIELD_USER_ID_UPDATE => {
                normalize_value(change.value, at, window, &mut out)
            }
            _ => out.skipped_fields.push(change.field),
        }
    }
    out
}

/// Where a change sits in the delivery; formatted only when something is rejected, so the
/// common path does not allocate for it.
#[derive(Debug, Clone, Copy)]
struct At {
    entry: usize,
    change: usize,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry[{}].changes[{}]", self.entry, self.change)
    }
}

fn normalize_value(value: ChangeValue, at: At, window: Window, out: &mut Normalized) {
    out.delivery_errors
        .extend(value.errors.iter().map(api_error));
    if value.messages.is_empty() && value.statuses.is_empty() && value.user_id_update.is_empty() {
        return;
    }
    if value
        .messaging_product
        .is_some_and(|p| p != webhook::Product::Whatsapp)
    {
        out.rejected
            .push(reject(at, "messaging_product is not whatsapp"));
        return;
    }
    let Some(metadata) = value.metadata.filter(|m| !m.phone_number_id.is_empty()) else {
        out.rejected.push(reject(
            at,
            "metadata.phone_number_id is missing: the business number is unknown",
        ));
        return;
    };
    let pnid = metadata.phone_number_id;
    let display = metadata.display_phone_number;
    for (i, m) in value.messages.into_iter().enumerate() {
        let contact = contact_for(&m, &value.contacts);
        match message_event(m, contact, &pnid, &display) {
            Ok((mut event, rekey)) => {
                if let InboundEvent::Message(m) = &mut event {
                    m.timestamp = window.clamp(
                        m.timestamp,
                        || format!("{at}.value.messages[{i}]"),
                        &mut out.clamped,
                    );
                }
                out.events.push(event);
                out.events.extend(rekey);
            }
            Err(reason) => out
                .rejected
                .push(reject(format_args!("{at}.value.messages[{i}]"), reason)),
        }
    }
    for (i, mut s) in value.statuses.into_iter().enumerate() {
        s.timestamp = window.clamp(
            s.timestamp,
            || format!("{at}.value.statuses[{i}]"),
            &mut out.clamped,
        );
        match status_event(s, &value.contacts, &pnid) {
            Ok(e) => out.events.push(e),
            Err(reason) => out
                .rejected
                .push(reject(format_args!("{at}.value.statuses[{i}]"), reason)),
        }
    }
    for (i, u) in value.user_id_update.into_iter().enumerate() {
        if u.user_id.previous.is_empty() || u.user_id.current.is_empty() {
            out.rejected.push(reject(
                format!("{at}.value.user_id_update[{i}]"),
                "user_id.previous or user_id.current is empty",
            ));
            continue;
        }
        out.events.push(InboundEvent::UserIdUpdate(UserIdUpdate {
            phone_number_id: pnid.clone(),
            old_user_id: u.user_id.previous,
            new_user_id: u.user_id.current,
            wa_id: u.wa_id.filter(|w| !w.is_empty()),
            timestamp: u.timestamp,
        }));
    }
}

fn reject(location: impl std::fmt::Display, reason: &str) -> Rejected {
    Rejected {
        location: location.to_string(),
        reason: reason.to_owned(),
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// The `contacts[]` entry that describes a message's sender: same BSUID, else same phone number.
fn contact_for<'c>(m: &Message, contacts: &'c [Contact]) -> Option<&'c Contact> {
    let by_user = non_empty(&m.from_user_id)
        .and_then(|uid| contacts.iter().find(|c| non_empty(&c.user_id) == Some(uid)));
    let by_phone = || {
        non_empty(&m.from)
            .and_then(|from| contacts.iter().find(|c| non_empty(&c.wa_id) == Some(from)))
    };
    by_user.or_else(by_phone)
}

fn contact_ref(
    user_id: Option<String>,
    wa_id: Option<String>,
    contact: Option<&Contact>,
) -> ContactRef {
    let from_contact = |f: fn(&Contact) -> &Option<String>| {
        contact.and_then(|c| non_empty(f(c))).map(str::to_owned)
    };
    let profile = contact.and_then(|c| c.profile.as_ref());
    ContactRef {
        user_id: owned(user_id).or_else(|| from_contact(|c| &c.user_id)),
        wa_id: owned(wa_id).or_else(|| from_contact(|c| &c.wa_id)),
        profile_name: profile.and_then(|p| non_empty(&p.name)).map(str::to_owned),
        username: profile
            .and_then(|p| non_empty(&p.username))
            .map(str::to_owned),
    }
}

/// Ids are moved out of the parsed item rather than copied: one allocation less per id.
fn owned(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// One message -> its event, plus a [`UserIdUpdate`] when a system message reports a new BSUID
/// together with the previous one (a pair, not a `Vec`: no allocation per message).
fn message_event(
    mut m: Message,
    contact: Option<&Contact>,
    pnid: &str,
    display: &str,
) -> Result<(InboundEvent, Option<InboundEvent>), &'static str> {
    if m.id.is_empty() {
        return Err("message id is empty");
    }
    let system = m.system.clone().unwrap_or_default();
    // System notices come without `contacts` and sometimes without `from`: the new ids in
    // `system` still say whose notice it is.
    let (sys_user, sys_wa) = if m.kind == "system" {
        (non_empty(&system.user_id), non_empty(&system.wa_id))
    } else {
        (None, None)
    };
    let contact_ref = contact_ref(
        owned(m.from_user_id.take()).or_else(|| sys_user.map(str::to_owned)),
        owned(m.from.take()).or_else(|| sys_wa.map(str::to_owned)),
        contact,
    );
    if contact_ref.key().is_none() {
        return Err("message has neither from nor from_user_id: the contact is unknown");
    }
    let content = content(&m)?;
    // Only `system` notices set `sys_user`, so only they can re-key a contact.
    let rekey = match (non_empty(&system.previous_user_id), sys_user) {
        (Some(old), Some(new)) => Some(InboundEvent::UserIdUpdate(UserIdUpdate {
            phone_number_id: pnid.to_owned(),
            old_user_id: old.to_owned(),
            new_user_id: new.to_owned(),
            wa_id: sys_wa.map(str::to_owned),
            timestamp: m.timestamp,
        })),
        _ => None,
    };
    let event = InboundEvent::Message(InboundMessage {
        phone_number_id: pnid.to_owned(),
        display_phone_number: display.to_owned(),
        contact: contact_ref,
        message_id: m.id,
        timestamp: m.timestamp,
        context_message_id: m.context.and_then(|c| c.id).filter(|id| !id.is_empty()),
        referral: m.referral,
        content,
    });
    Ok((event, rekey))
}

fn content(m: &Message) -> Result<MessageContent, &'static str> {
    let media = |media_type: MediaType, part: &Option<webhook::Media>| {
        part.as_ref()
            .map(|p| MessageContent::Media {
                media_type,
                id: p.id.clone(),
                mime_type: p.mime_type.clone(),
                caption: p.caption.clone(),
                filename: p.filename.clone(),
            })
            .ok_or("media message without its media object")
    };
    Ok(match m.kind.as_str() {
        "text" => MessageContent::Text {
            body: m
                .text
                .as_ref()
                .ok_or("text message without text")?
                .body
                .clone(),
        },
        "interactive" => {
            let i = m
                .interactive
                .as_ref()
                .ok_or("interactive message without interactive")?;
            match i.kind.as_str() {
                "button_reply" => {
                    let b = i.button_reply.as_ref().ok_or("button_reply missing")?;
                    MessageContent::ButtonReply {
                        id: b.id.clone(),
                        title: b.title.clone(),
                    }
                }
                "list_reply" => {
                    let l = i.list_reply.as_ref().ok_or("list_reply missing")?;
                    MessageContent::ListReply {
                        id: l.id.clone(),
                        title: l.title.clone(),
                        description: l.description.clone(),
                    }
                }
                "nfm_reply" => {
                    let n = i.nfm_reply.as_ref().ok_or("nfm_reply missing")?;
                    MessageContent::FlowReply {
                        response_json: n.response_json.clone(),
                        body: n.body.clone(),
                        name: n.name.clone(),
                    }
                }
                other => MessageContent::Unsupported {
                    message_type: format!("interactive.{other}"),
                },
            }
        }
        "button" => {
            let b = m.button.as_ref().ok_or("button message without button")?;
            MessageContent::TemplateButton {
                payload: b.payload.clone(),
                text: b.text.clone(),
            }
        }
        "location" => {
            let l = m
                .location
                .as_ref()
                .ok_or("location message without location")?;
            if !(l.latitude.is_finite() && l.longitude.is_finite()) {
                return Err("location is not finite");
            }
            MessageContent::Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name.clone(),
                address: l.address.clone(),
            }
        }
        "image" => media(MediaType::Image, &m.image)?,
        "audio" => media(MediaType::Audio, &m.audio)?,
        "video" => media(MediaType::Video, &m.video)?,
        "document" => media(MediaType::Document, &m.document)?,
        "sticker" => media(MediaType::Sticker, &m.sticker)?,
        "contacts" => MessageContent::Contacts {
            contacts: m
                .contacts
                .clone()
                .ok_or("contacts message without contacts")?,
        },
        "reaction" => {
            let r = m
                .reaction
                .as_ref()
                .ok_or("reaction message without reaction")?;
            MessageContent::Reaction {
                message_id: r.message_id.clone(),
                emoji: r.emoji.clone().filter(|e| !e.is_empty()),
            }
        }
        "order" => MessageContent::Order {
            order: m.order.clone().ok_or("order message without order")?,
        },
        "system" => MessageContent::System {
            body: m
                .system
                .as_ref()
                .map(|s| s.body.clone())
                .unwrap_or_default(),
        },
        // `unsupported` and every type Meta adds later.
        other => MessageContent::Unsupported {
            message_type: other.to_owned(),
        },
    })
}

fn status_event(
    mut s: Status,
    contacts: &[Contact],
    pnid: &str,
) -> Result<InboundEvent, &'static str> {
    if s.id.is_empty() {
        return Err("status id is empty");
    }
    let contact = non_empty(&s.recipient_user_id)
        .and_then(|uid| contacts.iter().find(|c| non_empty(&c.user_id) == Some(uid)))
        .or_else(|| {
            non_empty(&s.recipient_id)
                .and_then(|w| contacts.iter().find(|c| non_empty(&c.wa_id) == Some(w)))
        });
    let recipient = contact_ref(s.recipient_user_id.take(), s.recipient_id.take(), contact);
    if recipient.key().is_none() {
        return Err(
            "status has neither recipient_id nor recipient_user_id: the contact is unknown",
        );
    }
    let status = match s.status.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => DeliveryStatus::Other,
    };
    Ok(InboundEvent::Status(StatusUpdate {
        phone_number_id: pnid.to_owned(),
        message_id: s.id,
        status,
        timestamp: s.timestamp,
        recipient,
        errors: s.errors.iter().map(api_error).collect(),
        conversation: s.conversation,
        pricing: s.pricing,
    }))
}

fn api_error(e: &WebhookError) -> ApiError {
    ApiError {
        code: e.code,
        title: e
            .title
            .clone()
            .or_else(|| e.message.clone())
            .unwrap_or_default(),
        details: e.error_data.as_ref().and_then(|d| d.details.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::FifoContract;
    use crate::whatsapp::webhook::parse;

    const PNID: &str = "106540352242922";
    /// "Now" for these tests: just after the fixtures' usual timestamp.
    const NOW: i64 = 1_749_416_383 + 60;
    const META: &str = r#""messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}"#;

    fn change(value_rest: &str, field: &str) -> String {
        format!(r#"{{"value":{{{META},{value_rest}}},"field":"{field}"}}"#)
    }

    fn delivery_body(changes: &[String]) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{}]}}]}}"#,
            changes.join(",")
        )
    }

    fn delivery(changes: &[String]) -> Normalized {
        normalize(parse(delivery_body(changes).as_bytes()).unwrap(), NOW)
    }

    fn msg(id: &str, kind: &str, content: &str) -> String {
        format!(
            r#"{{"from":"16505551234","id":"{id}","timestamp":"1749416383","type":"{kind}"{content}}}"#
        )
    }

    const CONTACT: &str =
        r#""contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}]"#;

    fn single(kind: &str, content: &str) -> MessageContent {
        let n = delivery(&[change(
            &format!(
                r#"{CONTACT},"messages":[{}]"#,
                msg("wamid.X", kind, content)
            ),
            "messages",
        )]);
        assert!(n.rejected.is_empty(), "{:?}", n.rejected);
        match n.events.as_slice() {
            [InboundEvent::Message(m)] => m.content.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_message_becomes_an_event_with_contact_and_ids() {
        let n = delivery(&[change(
            &format!(
                r#"{CONTACT},"messages":[{}]"#,
                msg("wamid.A", "text", r#","text":{"body":"hello"}"#)
            ),
            "messages",
        )]);
        let [InboundEvent::Message(m)] = n.events.as_slice() else {
            panic!("{n:?}")
        };
        assert_eq!(m.phone_number_id, PNID);
        assert_eq!(m.display_phone_number, "15550783881");
        assert_eq!(m.message_id, "wamid.A");
        assert_eq!(m.timestamp, 1749416383);
        assert_eq!(m.contact.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(m.contact.profile_name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(
            m.content,
            MessageContent::Text {
                body: "hello".into()
            }
        );
        assert_eq!(n.events[0].group_id(), format!("{PNID}:16505551234"));
        assert_eq!(n.events[0].dedup_id(), "wamid.A");
    }

    #[test]
    fn every_message_type() {
        assert_eq!(
            single(
                "interactive",
                r#","interactive":{"type":"button_reply","button_reply":{"id":"yes","title":"Yes"}}"#
            ),
            MessageContent::ButtonReply {
                id: "yes".into(),
                title: "Yes".into()
            }
        );
        assert_eq!(
            single(
                "interactive",
                r#","interactive":{"type":"list_reply","list_reply":{"id":"priority_express","title":"Priority Mail Express","description":"Next Day to 2 Days"}}"#
            ),
            MessageContent::ListReply {
                id: "priority_express".into(),
                title: "Priority Mail Express".into(),
                description: Some("Next Day to 2 Days".into())
            }
        );
        assert_eq!(
            single(
                "interactive",
                r#","interactive":{"type":"nfm_reply","nfm_reply":{"name":"flow","body":"Sent","response_json":"{\"flow_token\":\"t\"}"}}"#
            ),
            MessageContent::FlowReply {
                response_json: r#"{"flow_token":"t"}"#.into(),
                body: "Sent".into(),
                name: "flow".into()
            }
        );
        assert_eq!(
            single(
                "interactive",
                r#","interactive":{"type":"product_inquiry"}"#
            ),
            MessageContent::Unsupported {
                message_type: "interactive.product_inquiry".into()
            }
        );
        assert_eq!(
            single(
                "button",
                r#","button":{"payload":"STOP","text":"Stop promotions"}"#
            ),
            MessageContent::TemplateButton {
                payload: "STOP".into(),
                text: "Stop promotions".into()
            }
        );
        assert_eq!(
            single(
                "location",
                r#","location":{"address":"1 Hacker Way","latitude":37.483307,"longitude":-122.148981,"name":"Meta HQ"}"#
            ),
            MessageContent::Location {
                latitude: 37.483307,
                longitude: -122.148981,
                name: Some("Meta HQ".into()),
                address: Some("1 Hacker Way".into())
            }
        );
        for (kind, mt) in [
            ("image", MediaType::Image),
            ("audio", MediaType::Audio),
            ("video", MediaType::Video),
            ("sticker", MediaType::Sticker),
        ] {
            assert_eq!(
                single(
                    kind,
                    &format!(
                        r#","{kind}":{{"mime_type":"x/y","sha256":"abc","id":"1003383421387256"}}"#
                    )
                ),
                MessageContent::Media {
                    media_type: mt,
                    id: "1003383421387256".into(),
                    mime_type: Some("x/y".into()),
                    caption: None,
                    filename: None
                }
            );
        }
        assert_eq!(
            single(
                "document",
                r#","document":{"caption":"Lucky","filename":"report.pdf","mime_type":"application/pdf","sha256":"abc","id":"7"}"#
            ),
            MessageContent::Media {
                media_type: MediaType::Document,
                id: "7".into(),
                mime_type: Some("application/pdf".into()),
                caption: Some("Lucky".into()),
                filename: Some("report.pdf".into())
            }
        );
        let cards = serde_json::json!([{"name":{"formatted_name":"Barbara"},"phones":[{"phone":"+1 (940) 555-1234","type":"HOME"}]}]);
        assert_eq!(
            single("contacts", &format!(r#","contacts":{cards}"#)),
            MessageContent::Contacts { contacts: cards }
        );
        assert_eq!(
            single(
                "reaction",
                r#","reaction":{"message_id":"wamid.Q","emoji":"\ud83d\ude00"}"#
            ),
            MessageContent::Reaction {
                message_id: "wamid.Q".into(),
                emoji: Some("😀".into())
            }
        );
        assert_eq!(
            single("reaction", r#","reaction":{"message_id":"wamid.Q"}"#),
            MessageContent::Reaction {
                message_id: "wamid.Q".into(),
                emoji: None
            }
        );
        let order = serde_json::json!({"catalog_id":"c","text":"t","product_items":[{"product_retailer_id":"p","quantity":1,"item_price":9.5,"currency":"USD"}]});
        assert_eq!(
            single("order", &format!(r#","order":{order}"#)),
            MessageContent::Order { order }
        );
        assert_eq!(
            single(
                "unsupported",
                r#","errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}],"unsupported":{"type":"edit"}"#
            ),
            MessageContent::Unsupported {
                message_type: "unsupported".into()
            }
        );
        assert_eq!(
            single("poll_2031", r#","poll_2031":{}"#),
            MessageContent::Unsupported {
                message_type: "poll_2031".into()
            }
        );
    }

    #[test]
    fn context_and_referral_are_kept() {
        let n = delivery(&[change(
            &format!(
                r#"{CONTACT},"messages":[{}]"#,
                msg(
                    "wamid.R",
                    "text",
                    r#","text":{"body":"hi"},"context":{"from":"15550783881","id":"wamid.ORIG"},"referral":{"source_url":"https://fb.me/x","source_type":"ad","source_id":"1","headline":"h","ctwa_clid":"c"}"#
                )
            ),
            "messages",
        )]);
        let [InboundEvent::Message(m)] = n.events.as_slice() else {
            panic!()
        };
        assert_eq!(m.context_message_id.as_deref(), Some("wamid.ORIG"));
        assert_eq!(m.referral.as_ref().unwrap()["source_type"], "ad");
    }

    #[test]
    fn username_user_without_phone_number_is_keyed_by_bsuid() {
        let n = delivery(&[change(
            r#""contacts":[{"profile":{"name":"Pablo","username":"pablo.m"},"user_id":"US.13491208655302741918"}],"messages":[{"from_user_id":"US.13491208655302741918","id":"wamid.U","timestamp":"1749416383","type":"text","text":{"body":"hi"}}]"#,
            "messages",
        )]);
        let [InboundEvent::Message(m)] = n.events.as_slice() else {
            panic!("{n:?}")
        };
        assert_eq!(m.contact.wa_id, None);
        assert_eq!(
            m.contact.user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        assert_eq!(m.contact.username.as_deref(), Some("pablo.m"));
        assert_eq!(
            n.events[0].group_id(),
            format!("{PNID}:US.13491208655302741918")
        );
    }

    #[test]
    fn contacts_are_matched_to_their_own_messages() {
        let n = delivery(&[change(
            r#""contacts":[{"profile":{"name":"A"},"wa_id":"111"},{"profile":{"name":"B"},"wa_id":"222","user_id":"US.2"}],"messages":[{"from":"222","from_user_id":"US.2","id":"m1","timestamp":"1","type":"text","text":{"body":"b"}},{"from":"111","id":"m2","timestamp":"2","type":"text","text":{"body":"a"}},{"from":"333","id":"m3","timestamp":"3","type":"text","text":{"body":"c"}}]"#,
            "messages",
        )]);
        let names: Vec<_> = n
            .events
            .iter()
            .map(|e| match e {
                InboundEvent::Message(m) => m.contact.profile_name.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(names, [Some("B".to_owned()), Some("A".to_owned()), None]);
        let groups: Vec<_> = n.events.iter().map(InboundEvent::group_id).collect();
        assert_eq!(
            groups,
            [
                format!("{PNID}:US.2"),
                format!("{PNID}:111"),
                format!("{PNID}:333")
            ]
        );
    }

    #[test]
    fn statuses_with_errors_pricing_and_bsuid() {
        let n = delivery(&[change(
            r#""statuses":[{"id":"wamid.S","status":"delivered","timestamp":"1750263773","recipient_id":"16505551234","recipient_user_id":"US.1","conversation":{"id":"c1","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}},{"id":"wamid.S","status":"failed","timestamp":"1750263774","recipient_id":"16505551234","errors":[{"code":131049,"title":"This message was not delivered to maintain healthy ecosystem engagement.","message":"This message was not delivered to maintain healthy ecosystem engagement.","error_data":{"details":"In order to maintain a healthy ecosystem engagement, the message failed to be delivered."},"href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]},{"id":"wamid.S","status":"queued_for_later","timestamp":"1","recipient_id":"1"}]"#,
            "messages",
        )]);
        assert!(n.rejected.is_empty());
        let statuses: Vec<&StatusUpdate> = n
            .events
            .iter()
            .map(|e| match e {
                InboundEvent::Status(s) => s,
                _ => panic!(),
            })
            .collect();
        assert_eq!(statuses[0].status, DeliveryStatus::Delivered);
        assert_eq!(statuses[0].recipient.key(), Some("US.1".into()));
        assert_eq!(statuses[0].pricing.as_ref().unwrap()["category"], "utility");
        assert_eq!(statuses[1].status, DeliveryStatus::Failed);
        assert_eq!(statuses[1].errors, vec![ApiError { code: 131049, title: "This message was not delivered to maintain healthy ecosystem engagement.".into(), details: Some("In order to maintain a healthy ecosystem engagement, the message failed to be delivered.".into()) }]);
        assert_eq!(statuses[2].status, DeliveryStatus::Other);
        assert_eq!(n.events[0].dedup_id(), "wamid.S:delivered");
        assert_eq!(n.events[1].dedup_id(), "wamid.S:failed");
    }

    #[test]
    fn bsuid_changes_become_user_id_updates() {
        let n = delivery(&[
            change(
                r#""contacts":[{"profile":{"name":"T"},"wa_id":"15557654321"}],"user_id_update":[{"wa_id":"15557654321","detail":"User id for T has been updated.","user_id":{"previous":"US.1","current":"US.2"},"timestamp":"1749416303"}]"#,
                "user_id_update",
            ),
            change(
                r#""messages":[{"id":"wamid.SYS","timestamp":"1749416302","type":"system","system":{"body":"User T changed from US.1 to US.2","user_id":"US.2","previous_user_id":"US.1","type":"user_changed_user_id"}}]"#,
                "messages",
            ),
        ]);
        assert!(n.rejected.is_empty(), "{:?}", n.rejected);
        let expected = UserIdUpdate {
            phone_number_id: PNID.into(),
            old_user_id: "US.1".into(),
            new_user_id: "US.2".into(),
            wa_id: Some("15557654321".into()),
            timestamp: 1749416303,
        };
        assert_eq!(n.events[0], InboundEvent::UserIdUpdate(expected));
        let InboundEvent::Message(sys) = &n.events[1] else {
            panic!()
        };
        assert_eq!(
            sys.content,
            MessageContent::System {
                body: "User T changed from US.1 to US.2".into()
            }
        );
        assert_eq!(sys.contact.key(), Some("US.2".into()));
        let InboundEvent::UserIdUpdate(u) = &n.events[2] else {
            panic!("{:?}", n.events)
        };
        assert_eq!(
            (u.old_user_id.as_str(), u.new_user_id.as_str(), u.timestamp),
            ("US.1", "US.2", 1749416302)
        );
    }

    #[test]
    fn unhandled_fields_are_skipped_and_value_errors_reported() {
        let n = delivery(&[
            r#"{"value":{"phone_number":"15550783881","event":"VERIFIED_ACCOUNT"},"field":"account_update"}"#.to_string(),
            change(
                r#""errors":[{"code":131000,"title":"Something went wrong","message":"Something went wrong","error_data":{"details":"x"}}]"#,
                "messages",
            ),
        ]);
        assert!(n.events.is_empty());
        assert_eq!(n.skipped_fields, ["account_update"]);
        assert_eq!(n.delivery_errors[0].code, 131000);
    }

    #[test]
    fn items_without_identity_or_business_number_are_rejected_alone() {
        let n = delivery(&[
            change(r#""messages":[{"id":"anon","timestamp":"1","type":"text","text":{"body":"x"}},{"from":"1","id":"ok","timestamp":"1","type":"text","text":{"body":"y"}},{"from":"1","id":"broken","timestamp":"1","type":"text"}]"#, "messages"),
            r#"{"value":{"messaging_product":"whatsapp","messages":[{"from":"1","id":"m","timestamp":"1","type":"text","text":{"body":"z"}}]},"field":"messages"}"#.to_owned(),
            change(r#""statuses":[{"id":"s","status":"read","timestamp":"1"}]"#, "messages"),
        ]);
        let ids: Vec<_> = n.events.iter().map(InboundEvent::dedup_id).collect();
        assert_eq!(ids, ["ok"]);
        let at: Vec<_> = n.rejected.iter().map(|r| r.location.as_str()).collect();
        assert_eq!(
            at,
            [
                "entry[0].changes[0].value.messages[0]",
                "entry[0].changes[0].value.messages[2]",
                "entry[0].changes[1]",
                "entry[0].changes[2].value.statuses[0]"
            ]
        );
    }

    #[test]
    fn another_messaging_product_is_rejected() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"instagram","metadata":{"display_phone_number":"1","phone_number_id":"2"},"messages":[{"from":"1","id":"m","timestamp":"1","type":"text","text":{"body":"z"}}]},"field":"messages"}]}]}"#;
        let n = normalize(parse(body.as_bytes()).unwrap(), NOW);
        assert!(n.events.is_empty());
        assert_eq!(n.rejected[0].reason, "messaging_product is not whatsapp");
    }

    #[test]
    fn order_is_metas_order_across_entries_and_changes() {
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{c1},{c2}]}},{{"id":"2","changes":[{c3}]}}]}}"#,
            c1 = change(
                &format!(
                    r#""messages":[{},{}]"#,
                    msg("m1", "text", r#","text":{"body":"1"}"#),
                    msg("m2", "text", r#","text":{"body":"2"}"#)
                ),
                "messages"
            ),
            c2 = change(
                r#""statuses":[{"id":"s1","status":"read","timestamp":"3","recipient_id":"9"}]"#,
                "messages"
            ),
            c3 = change(
                &format!(
                    r#""messages":[{}]"#,
                    msg("m3", "text", r#","text":{"body":"3"}"#)
                ),
                "messages"
            ),
        );
        let n = normalize(parse(body.as_bytes()).unwrap(), NOW);
        let ids: Vec<_> = n.events.iter().map(InboundEvent::dedup_id).collect();
        assert_eq!(ids, ["m1", "m2", "s1:read", "m3"]);
    }

    fn timestamps(n: &Normalized) -> Vec<i64> {
        n.events
            .iter()
            .map(|e| match e {
                InboundEvent::Message(m) => m.timestamp,
                InboundEvent::Status(s) => s.timestamp,
                InboundEvent::UserIdUpdate(u) => u.timestamp,
                InboundEvent::WebForm(w) => w.timestamp,
            })
            .collect()
    }

    #[test]
    fn timestamps_outside_seven_days_back_and_five_minutes_ahead_are_clamped_and_listed() {
        let day = 24 * 3600;
        let (old, ahead, fine) = (NOW - 30 * day, NOW + day, NOW - 6 * day);
        let with_ts = |id: &str, ts: i64| {
            msg(id, "text", r#","text":{"body":"x"}"#).replace("1749416383", &ts.to_string())
        };
        let n = delivery(&[change(
            &format!(
                r#"{CONTACT},"messages":[{},{},{}],"statuses":[{{"id":"s","status":"read","timestamp":"{}","recipient_id":"1"}}]"#,
                with_ts("old", old),
                with_ts("ahead", ahead),
                with_ts("fine", fine),
                NOW + 301
            ),
            "messages",
        )]);
        let (earliest, latest) = (NOW - MAX_AGE_SECONDS, NOW + MAX_AHEAD_SECONDS);
        assert_eq!(timestamps(&n), [earliest, latest, fine, latest]);
        let listed: Vec<_> = n
            .clamped
            .iter()
            .map(|c| (c.location.as_str(), c.original, c.clamped))
            .collect();
        assert_eq!(
            listed,
            [
                ("entry[0].changes[0].value.messages[0]", old, earliest),
                ("entry[0].changes[0].value.messages[1]", ahead, latest),
                ("entry[0].changes[0].value.statuses[0]", NOW + 301, latest),
            ]
        );
    }

    #[test]
    fn bsuid_changes_keep_their_timestamp_so_their_dedup_id_is_stable() {
        let old = NOW - 30 * 24 * 3600;
        let n = delivery(&[change(
            &format!(
                r#""user_id_update":[{{"user_id":{{"previous":"US.1","current":"US.2"}},"timestamp":"{old}"}}]"#
            ),
            "user_id_update",
        )]);
        assert_eq!(timestamps(&n), [old]);
        assert_eq!(n.events[0].dedup_id(), format!("uid:US.1:US.2:{old}"));
        assert!(n.clamped.is_empty());
    }

    #[test]
    fn extreme_timestamps_and_clocks_saturate() {
        let body = |ts: &str| {
            delivery_body(&[change(
                &format!(
                    r#"{CONTACT},"messages":[{}]"#,
                    msg("m", "text", r#","text":{"body":"x"}"#).replace("1749416383", ts)
                ),
                "messages",
            )])
        };
        for (ts, now, expected) in [
            (i64::MAX, 0, MAX_AHEAD_SECONDS),
            (i64::MIN, 0, -MAX_AGE_SECONDS),
            (i64::MAX, i64::MAX, i64::MAX),
            (i64::MIN, i64::MIN, i64::MIN),
            (0, i64::MAX, i64::MAX - MAX_AGE_SECONDS),
        ] {
            let n = normalize(parse(body(&ts.to_string()).as_bytes()).unwrap(), now);
            assert_eq!(timestamps(&n), [expected], "ts {ts} at {now}");
        }
    }

    proptest::proptest! {
        /// Arbitrary JSON in a delivery's shape never panics, and every event keeps a contact key.
        #[test]
        fn arbitrary_json_never_panics(v in arb_json()) {
            let body = serde_json::json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":v}]}]});
            if let Ok(p) = parse(body.to_string().as_bytes()) {
                for e in normalize(p, NOW).events {
                    proptest::prop_assert!(e.contact_key().is_some());
                }
            }
        }
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z0-9.]{0,8}".prop_map(serde_json::Value::from),
        ];
        let keys = prop_oneof![
            Just("messages"),
            Just("statuses"),
            Just("contacts"),
            Just("metadata"),
            Just("phone_number_id"),
            Just("id"),
            Just("timestamp"),
            Just("type"),
            Just("from"),
            Just("from_user_id"),
            Just("text"),
            Just("body"),
            Just("interactive"),
            Just("button_reply"),
            Just("status"),
            Just("recipient_id"),
            Just("system"),
            Just("user_id"),
            Just("previous_user_id"),
            Just("user_id_update"),
            Just("errors"),
            Just("code"),
            Just("location"),
            Just("latitude"),
            Just("longitude"),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                    serde_json::Value::Object(
                        kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    )
                }),
            ]
        })
    }
}
