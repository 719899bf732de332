//! What the contact hears: the assigned / away / overload message as an [`OutboundMessage`].
//!
//! Inside the 24-hour customer-service window (since `last_inbound_at`) the team's text in the
//! contact's language is sent; outside it only an approved template may be sent, so the team's
//! template for that kind is used, or nothing when the team configured none. Dedup ids are
//! derived from the conversation, the job and the kind, so a redelivered job or a second
//! drainer never makes the contact hear the same thing twice.

use super::job::AssignRequest;
use super::model::{MessageKind, Team};
use crate::whatsapp::outbound::{OutboundBody, OutboundMessage, Recipient};

/// Meta's customer-service window.
pub const WINDOW_SECONDS: i64 = 24 * 60 * 60;

/// Values for the placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    pub agent_name: Option<String>,
    pub queue_position: Option<u32>,
}

/// Replaces `{{agent.name}}`, `{{queue.position}}` and `{{team.name}}`; unknown placeholders
/// stay as written so a typo is visible in testing rather than silently dropped.
pub fn render(text: &str, team: &Team, vars: &Vars) -> String {
    let position = vars
        .queue_position
        .map(|p| p.to_string())
        .unwrap_or_default();
    text.replace("{{agent.name}}", vars.agent_name.as_deref().unwrap_or(""))
        .replace("{{queue.position}}", &position)
        .replace("{{team.name}}", &team.name)
}

/// The dedup id of a contact message: one per (conversation, job, kind). An overload message
/// also carries the position it announced, so a later, different position is a new message.
pub fn dedup_id(req: &AssignRequest, kind: MessageKind, vars: &Vars) -> String {
    match (kind, vars.queue_position) {
        (MessageKind::Overload, Some(p)) => {
            format!("asg:{}:{}:overload:{p}", req.conversation_id, req.job_id)
        }
        _ => format!(
            "asg:{}:{}:{}",
            req.conversation_id,
            req.job_id,
            kind.as_str()
        ),
    }
}

/// The message to send, or `None` outside the window when the team has no template for it.
pub fn contact_message(
    req: &AssignRequest,
    team: &Team,
    kind: MessageKind,
    vars: &Vars,
    now_unix: i64,
) -> Option<OutboundMessage> {
    let inside = now_unix.saturating_sub(req.last_inbound_at) < WINDOW_SECONDS;
    let body = if inside {
        OutboundBody::Text {
            body: render(team.texts(&req.language).get(kind), team, vars),
            preview_url: false,
        }
    } else {
        let name = team.templates.get(&kind)?;
        let body_parameters = match kind {
            MessageKind::Assigned => vec![vars.agent_name.clone().unwrap_or_default()],
            MessageKind::Away => vec![],
            MessageKind::Overload => vec![vars.queue_position.unwrap_or(0).to_string()],
        };
        OutboundBody::Template {
            name: name.clone(),
            language: req.language.clone(),
            body_parameters,
        }
    };
    Some(OutboundMessage {
        phone_number_id: req.phone_number_id.clone(),
        recipient: Recipient::from(&req.contact),
        dedup_id: dedup_id(req, kind, vars),
        conversation_id: Some(req.conversation_id.clone()),
        last_inbound_at: Some(req.last_inbound_at),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::job::HandoffReason;
    use crate::routing::model::MessageTexts;
    use crate::whatsapp::ContactRef;

    fn team() -> Team {
        let mut t: Team = serde_json::from_str(r#"{"id":"sales","name":"Sales"}"#).unwrap();
        t.messages.insert(
            "de".into(),
            MessageTexts {
                assigned: "Hallo, {{agent.name}} vom Team {{team.name}} hilft Ihnen.".into(),
                away: "Wir sind gerade nicht da.".into(),
                overload: "Sie sind Nummer {{queue.position}}. {{unknown}}".into(),
            },
        );
        t
    }

    fn req(language: &str, last_inbound_at: i64) -> AssignRequest {
        AssignRequest {
            job_id: "job-1".into(),
            phone_number_id: "106540352242922".into(),
            contact: ContactRef {
                user_id: Some("US.13491208655302741918".into()),
                wa_id: None,
                ..Default::default()
            },
            conversation_id: "conv-1".into(),
            language: language.into(),
            reason: HandoffReason::Completed,
            answers: Default::default(),
            fields: Default::default(),
            last_inbound_at,
            requested_at: last_inbound_at,
        }
    }

    #[test]
    fn text_inside_the_window_with_variables() {
        let now = 1_800_000_000;
        let vars = Vars {
            agent_name: Some("Anna".into()),
            queue_position: None,
        };
        let m = contact_message(
            &req("de", now - 60),
            &team(),
            MessageKind::Assigned,
            &vars,
            now,
        )
        .unwrap();
        assert_eq!(
            m.body,
            OutboundBody::Text {
                body: "Hallo, Anna vom Team Sales hilft Ihnen.".into(),
                preview_url: false
            }
        );
        assert_eq!(
            m.recipient.user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        assert_eq!(m.dedup_id, "asg:conv-1:job-1:assigned");
        assert_eq!(m.group_id(), "106540352242922:US.13491208655302741918");
        let o = contact_message(
            &req("de", now),
            &team(),
            MessageKind::Overload,
            &Vars {
                agent_name: None,
                queue_position: Some(7),
            },
            now,
        )
        .unwrap();
        assert_eq!(
            o.body,
            OutboundBody::Text {
                body: "Sie sind Nummer 7. {{unknown}}".into(),
                preview_url: false
            }
        );
        assert_eq!(o.dedup_id, "asg:conv-1:job-1:overload:7");
        let en = contact_message(
            &req("en", now),
            &team(),
            MessageKind::Away,
            &Vars::default(),
            now,
        )
        .unwrap();
        assert_eq!(
            en.body,
            OutboundBody::Text {
                body: MessageTexts::default().away,
                preview_url: false
            }
        );
    }

    #[test]
    fn template_or_nothing_outside_the_window() {
        let now = 1_800_000_000;
        let old = req("de", now - WINDOW_SECONDS);
        let vars = Vars {
            agent_name: Some("Anna".into()),
            queue_position: Some(3),
        };
        assert_eq!(
            contact_message(&old, &team(), MessageKind::Assigned, &vars, now),
            None
        );
        let mut t = team();
        t.templates
            .insert(MessageKind::Assigned, "agent_assigned".into());
        t.templates
            .insert(MessageKind::Overload, "queue_position".into());
        let m = contact_message(&old, &t, MessageKind::Assigned, &vars, now).unwrap();
        assert_eq!(
            m.body,
            OutboundBody::Template {
                name: "agent_assigned".into(),
                language: "de".into(),
                body_parameters: vec!["Anna".into()]
            }
        );
        let m = contact_message(&old, &t, MessageKind::Overload, &vars, now).unwrap();
        assert_eq!(
            m.body,
            OutboundBody::Template {
                name: "queue_position".into(),
                language: "de".into(),
                body_parameters: vec!["3".into()]
            }
        );
        // One second inside the window is still text.
        let inside = req("de", now - WINDOW_SECONDS + 1);
        assert!(matches!(
            contact_message(&inside, &t, MessageKind::Assigned, &vars, now)
                .unwrap()
                .body,
            OutboundBody::Text { .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn render_never_leaves_known_placeholders(text in ".{0,60}", name in "[^{}]{0,20}", pos in 0u32..1000) {
            let t = format!("{text}{{{{agent.name}}}}{text}{{{{queue.position}}}}");
            let out = render(&t, &team(), &Vars { agent_name: Some(name.clone()), queue_position: Some(pos) });
            proptest::prop_assert!(out.contains(&name) && out.contains(&pos.to_string()));
            if !text.contains("{{") {
                proptest::prop_assert!(!out.contains("{{agent.name}}") && !out.contains("{{queue.position}}"));
            }
        }
    }
}
