//! Rendering an [`OutboundMessage`] to the JSON body of `POST /{version}/{phone_number_id}/messages`.
//!
//! The shapes follow Meta's Cloud API reference (text, interactive `button` and `list`,
//! `template`, and the mark-as-read call with `typing_indicator`). WhatsApp's limits are
//! enforced here, before any request. Every text a contact reads (text and interactive bodies,
//! header, footer, button and list labels, row titles and descriptions, template parameters) is
//! cut to its limit with [`fit`] (numbers and cut in [`super::limits`]): a long profile name or answer inside a survey text must never
//! make a message fail. What cannot be fixed by cutting (an empty text, too many buttons or
//! rows, an over-long or repeated id, a bad template name, no recipient) is a [`RenderError`]
//! naming the field and the limit, recorded by the caller as a permanent failure.
//!
//! The contact is addressed with `to` (phone number) when it is known, else with `recipient`
//! (the business-scoped user id); Meta lets `to` win when both are given, so only one is sent.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::limits::{self, fit, fit_plain};
use super::outbound::{ListSection, OutboundBody, OutboundMessage, Recipient, ReplyButton};

/// Why a message cannot be rendered. Permanent: the same message will never render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{field} is empty")]
    Empty { field: String },
    #[error("{field} has {actual} characters, WhatsApp allows at most {max}")]
    TooLong {
        field: String,
        max: usize,
        actual: usize,
    },
    #[error("{field} has {actual} entries, WhatsApp allows {min} to {max}")]
    Count {
        field: String,
        min: usize,
        max: usize,
        actual: usize,
    },
    #[error("{field} repeats {value:?}; WhatsApp requires unique values")]
    Duplicate { field: String, value: String },
    #[error("{field} is invalid: {reason}")]
    Invalid { field: String, reason: &'static str },
    #[error("the message has neither a phone number nor a business-scoped user id to send to")]
    NoRecipient,
}

/// A rendered request body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub body: Value,
    /// Mark-as-read answers `{"success": true}` and creates no WhatsApp message id.
    pub creates_message: bool,
}

/// Renders the Graph API body for `msg`, enforcing WhatsApp's limits.
pub fn render(msg: &OutboundMessage) -> Result<Rendered, RenderError> {
    render_body(&msg.recipient, &msg.body)
}

/// Renders `body` for `recipient` (used for the re-engagement template as well).
pub fn render_body(recipient: &Recipient, body: &OutboundBody) -> Result<Rendered, RenderError> {
    if let OutboundBody::MarkRead {
        message_id,
        typing_indicator,
    } = body
    {
        non_empty("message_id", message_id)?;
        let mut v = json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        });
        if *typing_indicator {
            v["typing_indicator"] = json!({ "type": "text" });
        }
        return Ok(Rendered {
            body: v,
            creates_message: false,
        });
    }

    let mut v = Map::new();
    v.insert("messaging_product".into(), json!("whatsapp"));
    v.insert("recipient_type".into(), json!("individual"));
    let (field, address) = address(recipient)?;
    v.insert(field.into(), json!(address));
    let (kind, content) = match body {
        OutboundBody::Text { body, preview_url } => {
            let body = fitted("text.body", body, limits::TEXT_BODY)?;
            ("text", json!({ "preview_url": preview_url, "body": body }))
        }
        OutboundBody::Buttons {
            body,
            header,
            footer,
            buttons,
        } => (
            "interactive",
            render_buttons(body, header.as_deref(), footer.as_deref(), buttons)?,
        ),
        OutboundBody::List {
            body,
            header,
            footer,
            button,
            sections,
        } => (
            "interactive",
            render_list(body, header.as_deref(), footer.as_deref(), button, sections)?,
        ),
        OutboundBody::Template {
            name,
            language,
            body_parameters,
        } => (
            "template",
            render_template(name, language, body_parameters)?,
        ),
        // Handled above; kept exhaustive so a new kind fails to compile here.
        OutboundBody::MarkRead { .. } => {
            return Err(RenderError::Invalid {
                field: "body".into(),
                reason: "unreachable",
            })
        }
    };
    v.insert("type".into(), json!(kind));
    v.insert(kind.into(), content);
    Ok(Rendered {
        body: Value::Object(v),
        creates_message: true,
    })
}

fn address(r: &Recipient) -> Result<(&'static str, &str), RenderError> {
    let phone = r.wa_id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let bsuid = r
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match (phone, bsuid) {
        (Some(p), _) => {
            let digits = p.strip_prefix('+').unwrap_or(p);
            if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(RenderError::Invalid {
                    field: "recipient.wa_id".into(),
                    reason: "not a phone number",
                });
            }
            Ok(("to", p))
        }
        (None, Some(u)) => {
            if u.len() > 160 || u.chars().any(char::is_whitespace) {
                return Err(RenderError::Invalid {
                    field: "recipient.user_id".into(),
                    reason: "not a business-scoped user id",
                });
            }
            Ok(("recipient", u))
        }
        (None, None) => Err(RenderError::NoRecipient),
    }
}

fn render_buttons(
    body: &str,
    header: Option<&str>,
    footer: Option<&str>,
    buttons: &[ReplyButton],
) -> Result<Value, RenderError> {
    count("interactive.buttons", buttons.len(), 1, limits::BUTTONS)?;
    unique("buttons.id", buttons.iter().map(|b| b.id.as_str()))?;
    unique("buttons.title", buttons.iter().map(|b| b.title.as_str()))?;
    let mut titles: Vec<String> = Vec::with_capacity(buttons.len());
    for (i, b) in buttons.iter().enumerate() {
        bounded(&format!("buttons[{i}].id"), &b.id, limits::BUTTON_ID)?;
        let title = fitted(
            &format!("buttons[{i}].title"),
            &b.title,
            limits::BUTTON_TITLE,
        )?;
        titles.push(distinct(title, &titles, limits::BUTTON_TITLE));
    }
    let rendered: Vec<Value> = buttons
        .iter()
        .zip(&titles)
        .map(|(b, title)| json!({ "type": "reply", "reply": { "id": b.id, "title": title } }))
        .collect();
    let mut v = interactive_frame("button", body, header, footer)?;
    v.insert("action".into(), json!({ "buttons": rendered }));
    Ok(Value::Object(v))
}

fn render_list(
    body: &str,
    header: Option<&str>,
    footer: Option<&str>,
    button: &str,
    sections: &[ListSection],
) -> Result<Value, RenderError> {
    let button = fitted("interactive.action.button", button, limits::LIST_BUTTON)?;
    count(
        "interactive.sections",
        sections.len(),
        1,
        limits::LIST_SECTIONS,
    )?;
    let total: usize = sections.iter().map(|s| s.rows.len()).sum();
    count(
        "interactive rows (all sections)",
        total,
        1,
        limits::LIST_ROWS,
    )?;
    let mut rendered = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        let mut section = Map::new();
        match s.title.as_deref() {
            Some(t) => {
                let t = fitted(&format!("sections[{i}].title"), t, limits::SECTION_TITLE)?;
                section.insert("title".into(), json!(t));
            }
            // Meta requires a title on every section once there is more than one.
            None if sections.len() > 1 => {
                return Err(RenderError::Empty {
                    field: format!("sections[{i}].title"),
                })
            }
            None => {}
        }
        count(
            &format!("sections[{i}].rows"),
            s.rows.len(),
            1,
            limits::LIST_ROWS,
        )?;
        let mut rows = Vec::with_capacity(s.rows.len());
        for (j, r) in s.rows.iter().enumerate() {
            bounded(
                &format!("sections[{i}].rows[{j}].id"),
                &r.id,
                limits::ROW_ID,
            )?;
            let title = fitted(
                &format!("sections[{i}].rows[{j}].title"),
                &r.title,
                limits::ROW_TITLE,
            )?;
            let mut row = json!({ "id": r.id, "title": title });
            if let Some(d) = r.description.as_deref() {
                let d = fitted(
                    &format!("sections[{i}].rows[{j}].description"),
                    d,
                    limits::ROW_DESCRIPTION,
                )?;
                row["description"] = json!(d);
            }
            rows.push(row);
        }
        section.insert("rows".into(), Value::Array(rows));
        rendered.push(Value::Object(section));
    }
    unique(
        "rows.id",
        sections
            .iter()
            .flat_map(|s| s.rows.iter().map(|r| r.id.as_str())),
    )?;
    let mut v = interactive_frame("list", body, header, footer)?;
    v.insert(
        "action".into(),
        json!({ "button": button, "sections": rendered }),
    );
    Ok(Value::Object(v))
}

fn interactive_frame(
    kind: &str,
    body: &str,
    header: Option<&str>,
    footer: Option<&str>,
) -> Result<Map<String, Value>, RenderError> {
    let body = fitted("interactive.body", body, limits::INTERACTIVE_BODY)?;
    let mut v = Map::new();
    v.insert("type".into(), json!(kind));
    if let Some(h) = header {
        let h = fitted("interactive.header.text", h, limits::HEADER_TEXT)?;
        v.insert("header".into(), json!({ "type": "text", "text": h }));
    }
    v.insert("body".into(), json!({ "text": body }));
    if let Some(f) = footer {
        let f = fitted("interactive.footer.text", f, limits::FOOTER_TEXT)?;
        v.insert("footer".into(), json!({ "text": f }));
    }
    Ok(v)
}

fn render_template(name: &str, language: &str, params: &[String]) -> Result<Value, RenderError> {
    bounded("template.name", name, limits::TEMPLATE_NAME)?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(RenderError::Invalid {
            field: "template.name".into(),
            reason: "only lowercase letters, digits and underscores",
        });
    }
    non_empty("template.language", language)?;
    if language.len() > 15
        || !language
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_')
    {
        return Err(RenderError::Invalid {
            field: "template.language".into(),
            reason: "not a language code such as en_US",
        });
    }
    let mut v = json!({ "name": name, "language": { "code": language } });
    if !params.is_empty() {
        let mut rendered = Vec::with_capacity(params.len());
        for (i, p) in params.iter().enumerate() {
            let field = format!("template.body_parameters[{i}]");
            let p = fitted(&field, p, limits::TEMPLATE_PARAMETER)?;
            // Meta rejects body parameters with these (error 132018).
            if p.contains(['\n', '\t']) || p.contains("     ") {
                return Err(RenderError::Invalid {
                    field,
                    reason: "no new lines, tabs or more than 4 consecutive spaces",
                });
            }
            rendered.push(json!({ "type": "text", "text": p }));
        }
        v["components"] = json!([{ "type": "body", "parameters": rendered }]);
    }
    Ok(v)
}

fn non_empty(field: &str, value: &str) -> Result<(), RenderError> {
    if value.trim().is_empty() {
        return Err(RenderError::Empty {
            field: field.to_owned(),
        });
    }
    Ok(())
}

/// A text a contact reads: must not be blank; cut to `max` with [`fit`].
fn fitted<'a>(field: &str, value: &'a str, max: usize) -> Result<Cow<'a, str>, RenderError> {
    non_empty(field, value)?;
    Ok(fit(value, max))
}

/// Cutting can make two distinct labels equal ("Customer service A" / "... B" at 20): Meta
/// refuses repeated button titles, so a repeat gets a number (" 2") within the limit.
fn distinct(title: Cow<'_, str>, earlier: &[String], max: usize) -> String {
    if !earlier.iter().any(|t| *t == title) {
        return title.into_owned();
    }
    for n in 2.. {
        let suffix = format!(" {n}");
        let keep = max.saturating_sub(suffix.chars().count());
        let candidate = format!("{}{suffix}", fit_plain(&title, keep));
        if !earlier.contains(&candidate) {
            return candidate;
        }
    }
    title.into_owned() // unreachable: at most 3 buttons
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), RenderError> {
    non_empty(field, value)?;
    let actual = value.chars().count();
    if actual > max {
        return Err(RenderError::TooLong {
            field: field.to_owned(),
            max,
            actual,
        });
    }
    Ok(())
}

fn count(field: &str, actual: usize, min: usize, max: usize) -> Result<(), RenderError> {
    if actual < min || actual > max {
        return Err(RenderError::Count {
            field: field.to_owned(),
            min,
            max,
            actual,
        });
    }
    Ok(())
}

fn unique<'a>(field: &str, values: impl Iterator<Item = &'a str>) -> Result<(), RenderError> {
    let mut seen = std::collections::HashSet::new();
    for v in values {
        if !seen.insert(v) {
            return Err(RenderError::Duplicate {
                field: field.to_owned(),
                value: v.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::outbound::ListRow;

    fn to_phone() -> Recipient {
        Recipient {
            wa_id: Some("16505551234".into()),
            user_id: Some("US.13491208655302741918".into()),
        }
    }

    fn to_bsuid() -> Recipient {
        Recipient {
            wa_id: None,
            user_id: Some("US.13491208655302741918".into()),
        }
    }

    fn render_for(r: Recipient, body: OutboundBody) -> Result<Rendered, RenderError> {
        render(&OutboundMessage {
            phone_number_id: "106540352242922".into(),
            recipient: r,
            dedup_id: "c1:s1".into(),
            conversation_id: Some("c1".into()),
            last_inbound_at: None,
            body,
            transcript: None,
        })
    }

    fn button(id: &str, title: &str) -> ReplyButton {
        ReplyButton {
            id: id.into(),
            title: title.into(),
        }
    }

    fn row(id: &str, title: &str, description: Option<&str>) -> ListRow {
        ListRow {
            id: id.into(),
            title: title.into(),
            description: description.map(Into::into),
        }
    }

    #[test]
    fn text_to_phone_number_wins_over_bsuid() {
        let r = render_for(
            to_phone(),
            OutboundBody::Text {
                body: "Hi there".into(),
                preview_url: false,
            },
        )
        .unwrap();
        assert!(r.creates_message);
        assert_eq!(
            r.body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "text",
                "text": { "preview_url": false, "body": "Hi there" }
            })
        );
    }

    #[test]
    fn text_to_bsuid_uses_recipient() {
        let r = render_for(
            to_bsuid(),
            OutboundBody::Text {
                body: "Hi".into(),
                preview_url: true,
            },
        )
        .unwrap();
        assert_eq!(
            r.body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "recipient": "US.13491208655302741918",
                "type": "text",
                "text": { "preview_url": true, "body": "Hi" }
            })
        );
    }

    #[test]
    fn reply_buttons_match_meta_shape() {
        let r = render_for(
            to_phone(),
            OutboundBody::Buttons {
                body: "Which team do you need?".into(),
                header: Some("Welcome".into()),
                footer: Some("Reply with a button".into()),
                buttons: vec![button("sales", "Sales"), button("support", "Support")],
            },
        )
        .unwrap();
        assert_eq!(
            r.body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "header": { "type": "text", "text": "Welcome" },
                    "body": { "text": "Which team do you need?" },
                    "footer": { "text": "Reply with a button" },
                    "action": { "buttons": [
                        { "type": "reply", "reply": { "id": "sales", "title": "Sales" } },
                        { "type": "reply", "reply": { "id": "support", "title": "Support" } }
                    ] }
                }
            })
        );
    }

    #[test]
    fn list_matches_meta_shape() {
        let r = render_for(
            to_bsuid(),
            OutboundBody::List {
                body: "Pick a topic".into(),
                header: None,
                footer: None,
                button: "Topics".into(),
                sections: vec![
                    ListSection {
                        title: Some("Orders".into()),
                        rows: vec![row("o1", "Where is my order", Some("Track a parcel"))],
                    },
                    ListSection {
                        title: Some("Account".into()),
                        rows: vec![row("a1", "Password", None)],
                    },
                ],
            },
        )
        .unwrap();
        assert_eq!(
            r.body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "recipient": "US.13491208655302741918",
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": { "text": "Pick a topic" },
                    "action": {
                        "button": "Topics",
                        "sections": [
                            { "title": "Orders", "rows": [ { "id": "o1", "title": "Where is my order", "description": "Track a parcel" } ] },
                            { "title": "Account", "rows": [ { "id": "a1", "title": "Password" } ] }
                        ]
                    }
                }
            })
        );
    }

    #[test]
    fn template_with_and_without_parameters() {
        let r = render_for(
            to_phone(),
            OutboundBody::Template {
                name: "survey_reminder".into(),
                language: "en_US".into(),
                body_parameters: vec!["Ana".into(), "3".into()],
            },
        )
        .unwrap();
        assert_eq!(
            r.body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "template",
                "template": {
                    "name": "survey_reminder",
                    "language": { "code": "en_US" },
                    "components": [ { "type": "body", "parameters": [
                        { "type": "text", "text": "Ana" },
                        { "type": "text", "text": "3" }
                    ] } ]
                }
            })
        );
        let r = render_for(
            to_bsuid(),
            OutboundBody::Template {
                name: "hello_world".into(),
                language: "en".into(),
                body_parameters: vec![],
            },
        )
        .unwrap();
        assert_eq!(
            r.body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "recipient": "US.13491208655302741918",
                "type": "template",
                "template": { "name": "hello_world", "language": { "code": "en" } }
            })
        );
    }

    #[test]
    fn mark_read_with_and_without_typing_indicator() {
        let id = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
        let r = render_for(
            to_bsuid(),
            OutboundBody::MarkRead {
                message_id: id.into(),
                typing_indicator: true,
            },
        )
        .unwrap();
        assert!(!r.creates_message);
        assert_eq!(
            r.body,
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": id, "typing_indicator": { "type": "text" } })
        );
        let r = render_for(
            Recipient::default(),
            OutboundBody::MarkRead {
                message_id: id.into(),
                typing_indicator: false,
            },
        )
        .unwrap();
        assert_eq!(
            r.body,
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": id })
        );
    }

    #[test]
    fn button_limits_are_enforced() {
        let four = (0..4)
            .map(|i| button(&format!("b{i}"), "x"))
            .collect::<Vec<_>>();
        let err = render_for(
            to_phone(),
            OutboundBody::Buttons {
                body: "b".into(),
                header: None,
                footer: None,
                buttons: four,
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            RenderError::Count {
                field: "interactive.buttons".into(),
                min: 1,
                max: 3,
                actual: 4
            }
        );

        let err = render_for(
            to_phone(),
            OutboundBody::Buttons {
                body: "b".into(),
                header: None,
                footer: None,
                buttons: vec![button(&"i".repeat(257), "t")],
            },
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::TooLong { max: 256, .. }));
        let err = render_for(
            to_phone(),
            OutboundBody::Buttons {
                body: "b".into(),
                header: None,
                footer: None,
                buttons: vec![button("a", "Same"), button("b", "Same")],
            },
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Duplicate { .. }));
        let err = render_for(
            to_phone(),
            OutboundBody::Buttons {
                body: "b".into(),
                header: None,
                footer: None,
                buttons: vec![],
            },
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Count { actual: 0, .. }));
    }

    #[test]
    fn list_limits_are_enforced() {
        let list = |button: &str, sections: Vec<ListSection>| OutboundBody::List {
            body: "b".into(),
            header: None,
            footer: None,
            button: button.into(),
            sections,
        };
        let rows = |n: usize| {
            (0..n)
                .map(|i| row(&format!("r{i}"), "t", None))
                .collect::<Vec<_>>()
        };

        assert!(render_for(
            to_phone(),
            list(
                "Open",
                vec![ListSection {
                    title: None,
                    rows: rows(10)
                }]
            )
        )
        .is_ok());
        let err = render_for(
            to_phone(),
            list(
                "Open",
                vec![ListSection {
                    title: None,
                    rows: rows(11),
                }],
            ),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            RenderError::Count {
                max: 10,
                actual: 11,
                ..
            }
        ));
        // 10 rows in total, across sections.
        let err = render_for(
            to_phone(),
            list(
                "Open",
                vec![
                    ListSection {
                        title: Some("A".into()),
                        rows: rows(6),
                    },
                    ListSection {
                        title: Some("B".into()),
                        rows: (0..5).map(|i| row(&format!("s{i}"), "t", None)).collect(),
                    },
                ],
            ),
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Count { actual: 11, .. }));
        let err = render_for(
            to_phone(),
            list(
                "Open",
                vec![
                    ListSection {
                        title: None,
                        rows: rows(1),
                    },
                    ListSection {
                        title: Some("B".into()),
                        rows: vec![row("x", "t", None)],
                    },
                ],
            ),
        )
        .unwrap_err();
        assert_eq!(
            err,
            RenderError::Empty {
                field: "sections[0].title".into()
            }
        );
        let err = render_for(
            to_phone(),
            list(
                "Open",
                vec![
                    ListSection {
                        title: Some("A".into()),
                        rows: rows(1),
                    },
                    ListSection {
                        title: Some("B".into()),
                        rows: rows(1),
                    },
                ],
            ),
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Duplicate { .. }));
    }

    #[test]
    fn other_limits_are_enforced() {
        let err = render_for(
            to_phone(),
            OutboundBody::Text {
                body: "  ".into(),
                preview_url: false,
            },
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Empty { .. }));
        let err = render_for(
            Recipient::default(),
            OutboundBody::Text {
                body: "x".into(),
                preview_url: false,
            },
        )
        .unwrap_err();
        assert_eq!(err, RenderError::NoRecipient);
        let bad_phone = Recipient {
            wa_id: Some("+1 650".into()),
            user_id: None,
        };
        assert!(matches!(
            render_for(
                bad_phone,
                OutboundBody::Text {
                    body: "x".into(),
                    preview_url: false
                }
            ),
            Err(RenderError::Invalid { .. })
        ));
        let err = render_for(
            to_phone(),
            OutboundBody::Template {
                name: "Bad Name".into(),
                language: "en".into(),
                body_parameters: vec![],
            },
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Invalid { .. }));
        let err = render_for(
            to_phone(),
            OutboundBody::Template {
                name: "ok".into(),
                language: "en".into(),
                body_parameters: vec!["a\nb".into()],
            },
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Invalid { .. }));
        let err = render_for(
            to_phone(),
            OutboundBody::MarkRead {
                message_id: "".into(),
                typing_indicator: true,
            },
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Empty { .. }));
    }

    fn chars(v: &Value) -> usize {
        v.as_str().unwrap_or_default().chars().count()
    }

    #[test]
    fn long_text_body_is_cut_to_4096_characters_not_refused() {
        let greeting = format!("Hi {}!", "ü".repeat(5000));
        let r = render_for(
            to_phone(),
            OutboundBody::Text {
                body: greeting,
                preview_url: false,
            },
        )
        .unwrap();
        let body = &r.body["text"]["body"];
        assert_eq!(chars(body), 4096);
        assert!(body.as_str().unwrap().starts_with("Hi üü"));
    }

    #[test]
    fn interactive_button_texts_are_cut_to_their_limits() {
        let r = render_for(
            to_phone(),
            OutboundBody::Buttons {
                body: "б".repeat(1100),
                header: Some("h".repeat(70)),
                footer: Some("f".repeat(70)),
                buttons: vec![button("a", &"é".repeat(25)), button("b", "Short")],
            },
        )
        .unwrap();
        let i = &r.body["interactive"];
        assert_eq!(chars(&i["body"]["text"]), 1024);
        assert_eq!(chars(&i["header"]["text"]), 60);
        assert_eq!(chars(&i["footer"]["text"]), 60);
        assert_eq!(chars(&i["action"]["buttons"][0]["reply"]["title"]), 20);
        assert_eq!(i["action"]["buttons"][1]["reply"]["title"], "Short");
        assert_eq!(
            i["action"]["buttons"][0]["reply"]["id"], "a",
            "ids are never cut"
        );
    }

    #[test]
    fn list_texts_are_cut_to_their_limits() {
        let r = render_for(
            to_phone(),
            OutboundBody::List {
                body: "x".repeat(1030),
                header: None,
                footer: None,
                button: "Choose one of these topics".into(),
                sections: vec![ListSection {
                    title: Some("ß".repeat(30)),
                    rows: vec![row("r1", &"t".repeat(30), Some(&"d".repeat(80)))],
                }],
            },
        )
        .unwrap();
        let i = &r.body["interactive"];
        assert_eq!(chars(&i["body"]["text"]), 1024);
        assert_eq!(chars(&i["action"]["button"]), 20);
        let section = &i["action"]["sections"][0];
        assert_eq!(chars(&section["title"]), 24);
        assert_eq!(chars(&section["rows"][0]["title"]), 24);
        assert_eq!(chars(&section["rows"][0]["description"]), 72);
    }

    #[test]
    fn titles_that_become_equal_when_cut_stay_distinct() {
        let r = render_for(
            to_phone(),
            OutboundBody::Buttons {
                body: "b".into(),
                header: None,
                footer: None,
                buttons: vec![
                    button("a", "Customer service desk A"),
                    button("b", "Customer service desk B"),
                ],
            },
        )
        .unwrap();
        let b = &r.body["interactive"]["action"]["buttons"];
        assert_eq!(b[0]["reply"]["title"], "Customer service de…");
        assert_eq!(b[1]["reply"]["title"], "Customer service d 2");
    }

    #[test]
    fn template_parameter_is_cut_to_its_limit() {
        let r = render_for(
            to_phone(),
            OutboundBody::Template {
                name: "greeting".into(),
                language: "en".into(),
                body_parameters: vec!["n".repeat(40_000)],
            },
        )
        .unwrap();
        let p = &r.body["template"]["components"][0]["parameters"][0]["text"];
        assert_eq!(chars(p), limits::TEMPLATE_PARAMETER);
    }

    /// The default survey's greeting for a first message from a contact with this profile name.
    fn greeting_for(profile_name: &str) -> OutboundMessage {
        use crate::survey::engine::{on_message, ContactState};
        use crate::whatsapp::event::{InboundMessage, MessageContent};
        use crate::whatsapp::ContactRef;
        let survey = crate::survey::definition::Survey::default_survey().unwrap();
        let contact = ContactRef {
            wa_id: Some("16505551234".into()),
            user_id: None,
            profile_name: Some(profile_name.into()),
            username: None,
        };
        let msg = InboundMessage {
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            contact,
            message_id: "wamid.greet".into(),
            timestamp: 1_790_000_000,
            context_message_id: None,
            referral: None,
            content: MessageContent::Text { body: "hi".into() },
        };
        let state = ContactState {
            phone_number_id: msg.phone_number_id.clone(),
            key: "16505551234".into(),
            ..Default::default()
        };
        let out = on_message(state, None, &msg, &survey, (msg.timestamp + 1) * 1000);
        out.effects.messages[0].clone()
    }

    #[test]
    fn a_greeting_with_a_very_long_profile_name_is_sent_cut_not_refused() {
        let greeting = greeting_for(&"Ä".repeat(5000));
        let r = render(&greeting).unwrap();
        let text = r.body["text"]["body"]
            .as_str()
            .or(r.body["interactive"]["body"]["text"].as_str());
        let text = text.unwrap();
        assert!(text.contains("ÄÄÄ"), "{text:.40}");
        assert!(text.chars().count() <= limits::TEXT_BODY);
    }

    #[test]
    fn a_placeholder_inside_a_profile_name_stays_literal() {
        let greeting = greeting_for("{{contact.first_name}}{{agent.name}}");
        let r = render(&greeting).unwrap();
        let text = r.body.to_string();
        assert!(
            text.contains("{{contact.first_name}}{{agent.name}}"),
            "{text}"
        );
    }

    proptest::proptest! {
        #[test]
        fn rendering_never_panics_and_respects_title_limit(
            body in ".{0,1100}", title in ".{0,30}", id in ".{0,300}", n in 0usize..6, phone in proptest::option::of("[0-9+ ]{0,22}"), bsuid in proptest::option::of(".{0,40}")
        ) {
            let buttons = (0..n).map(|i| button(&format!("{id}{i}"), &format!("{title}{i}"))).collect::<Vec<_>>();
            let r = render_for(Recipient { wa_id: phone, user_id: bsuid }, OutboundBody::Buttons { body, header: None, footer: None, buttons });
            if let Ok(r) = r {
                let buttons = r.body["interactive"]["action"]["buttons"].as_array().cloned().unwrap_or_default();
                proptest::prop_assert!((1..=3).contains(&buttons.len()));
                for b in buttons {
                    let t = b["reply"]["title"].as_str().unwrap_or_default();
                    proptest::prop_assert!(t.chars().count() <= 20);
                }
            }
        }

        #[test]
        fn rendered_lists_always_respect_whatsapp_limits(
            sizes in proptest::collection::vec(0usize..6, 0..4),
            title in ".{0,30}",
            description in proptest::option::of(".{0,80}"),
            section_title in proptest::option::of(".{0,30}"),
            button_label in ".{0,25}",
        ) {
            let sections = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| ListSection {
                    title: section_title.clone(),
                    rows: (0..*n).map(|j| row(&format!("r{i}-{j}"), &title, description.as_deref())).collect(),
                })
                .collect::<Vec<_>>();
            let body = OutboundBody::List { body: "b".into(), header: None, footer: None, button: button_label, sections };
            if let Ok(r) = render_for(to_phone(), body) {
                let action = &r.body["interactive"]["action"];
                proptest::prop_assert!(action["button"].as_str().unwrap_or_default().chars().count() <= 20);
                let sections = action["sections"].as_array().cloned().unwrap_or_default();
                let rows: Vec<Value> = sections.iter().flat_map(|s| s["rows"].as_array().cloned().unwrap_or_default()).collect();
                proptest::prop_assert!((1..=10).contains(&rows.len()));
                for r in rows {
                    proptest::prop_assert!(r["title"].as_str().unwrap_or_default().chars().count() <= 24);
                    proptest::prop_assert!(r.get("description").and_then(Value::as_str).unwrap_or_default().chars().count() <= 72);
                }
                if sections.len() > 1 {
                    proptest::prop_assert!(sections.iter().all(|s| s.get("title").is_some()));
                }
            }
        }
    }
}
