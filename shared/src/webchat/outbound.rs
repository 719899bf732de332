//! What reply-sender pushes to a web visitor instead of calling the Graph API: the outbound
//! message as the `entry` of a `message.created` push to [`super::visitor_principal`].
//!
//! The entry has the transcript entry's shape (`id`, `at`, `author`, `type`, `text`,
//! `status`, `wamid`) so the widget renders a push and a `GET /webchat/conversation` page
//! alike, plus `options` (the button or row titles) for an interactive message, which the
//! widget shows as choices. It names no agent id (`author` is `{"kind": "agent"}` or
//! `{"kind": "bot"}`): the visitor learns the agent's name from the assignment message, not
//! an internal id.

use serde_json::{json, Value};

use crate::whatsapp::outbound::{OutboundBody, OutboundMessage};

/// The prefix of the synthetic id recorded where a wamid would be (`web.{dedup_id}`).
pub const WEB_MESSAGE_ID_PREFIX: &str = "web.";

/// The synthetic message id of a web delivery: unique per outbound message (its dedup id).
pub fn web_message_id(dedup_id: &str) -> String {
    format!("{WEB_MESSAGE_ID_PREFIX}{dedup_id}")
}

/// The text the visitor sees and the titles of its choices: a text's body; an interactive
/// message's body and its button (or row) titles; a template's name (web has no templates,
/// so its name is all there is). `None` for a mark-as-read, which shows nothing.
pub fn visible_text(body: &OutboundBody) -> Option<(String, Vec<String>)> {
    match body {
        OutboundBody::Text { body, .. } => Some((body.clone(), vec![])),
        OutboundBody::Buttons { body, buttons, .. } => Some((
            body.clone(),
            buttons.iter().map(|b| b.title.clone()).collect(),
        )),
        OutboundBody::List { body, sections, .. } => Some((
            body.clone(),
            sections
                .iter()
                .flat_map(|s| s.rows.iter().map(|r| r.title.clone()))
                .collect(),
        )),
        OutboundBody::Template { name, .. } => Some((name.clone(), vec![])),
        OutboundBody::MarkRead { .. } => None,
    }
}

/// The pushed entry of `msg`, delivered as `message_id` at `at_ms`; `None` for a mark-as-read.
/// Its id is the transcript entry's (the message's [`crate::transcript::TranscriptRef`]),
/// else the message id (a message without an entry).
pub fn visitor_entry(msg: &OutboundMessage, message_id: &str, at_ms: i64) -> Option<Value> {
    let (text, options) = visible_text(&msg.body)?;
    let id = msg
        .transcript
        .as_ref()
        .map_or(message_id, |r| r.entry_id.as_str());
    let author = match msg.transcript.as_ref().and_then(|r| r.agent_id.as_ref()) {
        Some(_) => "agent",
        None => "bot",
    };
    let mut entry = json!({
        "id": id,
        "at": at_ms,
        "author": {"kind": author},
        "type": "text",
        "text": text,
        "status": "delivered",
        "wamid": message_id,
    });
    if !options.is_empty() {
        entry["options"] = json!(options);
    }
    Some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::TranscriptRef;
    use crate::whatsapp::outbound::{ListRow, ListSection, Recipient, ReplyButton};

    fn msg(body: OutboundBody, agent: Option<&str>) -> OutboundMessage {
        OutboundMessage {
            phone_number_id: "web".into(),
            recipient: Recipient {
                wa_id: None,
                user_id: Some("V.abcdefghijklmnop".into()),
            },
            dedup_id: "d1".into(),
            conversation_id: Some("c1".into()),
            last_inbound_at: None,
            body,
            transcript: Some(TranscriptRef {
                conversation_id: "c1".into(),
                entry_id: "T#0000000000005#a1".into(),
                agent_id: agent.map(str::to_owned),
            }),
        }
    }

    #[test]
    fn an_agent_text_is_its_entry_without_the_agent_id() {
        let m = msg(
            OutboundBody::Text {
                body: "hola".into(),
                preview_url: false,
            },
            Some("alice"),
        );
        let e = visitor_entry(&m, &web_message_id("d1"), 5).unwrap();
        assert_eq!(
            e,
            json!({"id": "T#0000000000005#a1", "at": 5, "author": {"kind": "agent"},
                "type": "text", "text": "hola", "status": "delivered", "wamid": "web.d1"})
        );
        assert!(!e.to_string().contains("alice"));
    }

    #[test]
    fn interactive_messages_carry_their_titles_and_a_template_its_name() {
        let buttons = OutboundBody::Buttons {
            body: "¿Ventas?".into(),
            header: None,
            footer: None,
            buttons: vec![
                ReplyButton {
                    id: "y".into(),
                    title: "Sí".into(),
                },
                ReplyButton {
                    id: "n".into(),
                    title: "No".into(),
                },
            ],
        };
        let e = visitor_entry(&msg(buttons, None), "web.d1", 5).unwrap();
        assert_eq!(
            (&e["text"], &e["options"], &e["author"]["kind"]),
            (&json!("¿Ventas?"), &json!(["Sí", "No"]), &json!("bot"))
        );
        let row = |t: &str| ListRow {
            id: t.into(),
            title: t.into(),
            description: None,
        };
        let list = OutboundBody::List {
            body: "Pick".into(),
            header: None,
            footer: None,
            button: "Open".into(),
            sections: vec![
                ListSection {
                    title: None,
                    rows: vec![row("a"), row("b")],
                },
                ListSection {
                    title: Some("more".into()),
                    rows: vec![row("c")],
                },
            ],
        };
        assert_eq!(
            visible_text(&list),
            Some(("Pick".into(), vec!["a".into(), "b".into(), "c".into()]))
        );
        let template = OutboundBody::Template {
            name: "reopen_chat".into(),
            language: "es".into(),
            body_parameters: vec![],
        };
        assert_eq!(
            visible_text(&template),
            Some(("reopen_chat".into(), vec![]))
        );
        let read = OutboundBody::MarkRead {
            message_id: "m".into(),
            typing_indicator: true,
        };
        assert_eq!(visitor_entry(&msg(read, None), "web.d1", 5), None);
    }

    #[test]
    fn a_message_without_an_entry_is_named_by_its_message_id() {
        let mut m = msg(
            OutboundBody::Text {
                body: "x".into(),
                preview_url: false,
            },
            None,
        );
        m.transcript = None;
        assert_eq!(visitor_entry(&m, "web.d1", 5).unwrap()["id"], "web.d1");
    }
}
