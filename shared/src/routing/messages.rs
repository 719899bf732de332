//! What the contact hears: the assigned / away / overload message as an [`OutboundMessage`].
//!
//! Inside the 24-hour customer-service window (since the contact's latest inbound message, which
//! the assigner reads from the conversation when the job's own time is too old: a contact who
//! waited in line for hours may have written since the hand-off) the team's text in the
//! contact's language is sent; outside it only an approved template may be sent, so the team's
//! template for that kind is used, or nothing when the team configured none. Dedup ids are
//! derived from the conversation, the job and the kind only (never the place in line), so a
//! redelivered job or a second drainer never makes the contact hear the same kind twice.

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

/// The dedup id of a contact message: one per (conversation, job, kind). Not the place in
/// line: a retried job computes its position again and may find a different one, and the
/// contact must not hear "you are number 3" and then "you are number 2" for one hand-off.
pub fn dedup_id(req: &AssignRequest, kind: MessageKind) -> String {
    format!(
        "asg:{}:{}:{}",
        req.conversation_id,
        req.job_id,
        kind.as_str()
    )
}

/// Whether a free-form message may still go to a contact who last wrote at `last_inbound_at`.
pub fn inside_window(last_inbound_at: i64, now_unix: i64) -> bool {
    now_unix.saturating_sub(last_inbound_at) < WINDOW_SECONDS
}

/// The message to send, or `None` outside the window when the team has no template for it.
/// `last_inbound_at` is the contact's latest inbound message (at least the job's own).
pub fn contact_message(
    req: &AssignRequest,
    team: &Team,
    kind: MessageKind,
    vars: &Vars,
    last_inbound_at: i64,
    now_unix: i64,
) -> Option<OutboundMessage> {
    let last_inbound_at = last_inbound_at.max(req.last_inbound_at);
    // A web visitor has no 24-hour window (no Graph API: the widget receives anything).
    let inside =
        crate::webchat::is_web(&req.phone_number_id) || inside_window(last_inbound_at, now_unix);
    let body = if inside {
        OutboundBody::Text {
            body: render(team.texts(&req.language).get(kind), team, vars),
            preview_url: false,
        }
    } else {
        let name = team.templates.get(&kind)?;
        let body_parameters = match kind {
            MessageKind::Assigned | MessageKind::Transferred => {
                vec![vars.agent_name.clone().unwrap_or_default()]
            }
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
        dedup_id: dedup_id(req, kind),
        conversation_id: Some(req.conversation_id.clone()),
        last_inbound_at: Some(last_inbound_at),
        body,
        transcript: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::FifoContract;
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
                closed: String::new(),
                transferred: String::new(),
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
            supersedes: false,
            vars: Default::default(),
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
            0,
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
            0,
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
        assert_eq!(o.dedup_id, "asg:conv-1:job-1:overload");
        let en = contact_message(
            &req("en", now),
            &team(),
            MessageKind::Away,
            &Vars::default(),
            0,
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
    fn a_web_visitor_gets_the_text_whenever_they_last_wrote() {
        let now = 1_800_000_000;
        let mut old = req("es", now - 3 * WINDOW_SECONDS);
        old.phone_number_id = crate::webchat::WEB_PHONE_NUMBER_ID.into();
        let vars = Vars {
            agent_name: Some("Ana".into()),
            queue_position: None,
        };
        let m = contact_message(&old, &team(), MessageKind::Assigned, &vars, 0, now).unwrap();
        assert!(matches!(m.body, OutboundBody::Text { .. }), "{:?}", m.body);
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
            contact_message(&old, &team(), MessageKind::Assigned, &vars, 0, now),
            None
        );
        let mut t = team();
        t.templates
            .insert(MessageKind::Assigned, "agent_assigned".into());
        t.templates
            .insert(MessageKind::Overload, "queue_position".into());
        let m = contact_message(&old, &t, MessageKind::Assigned, &vars, 0, now).unwrap();
        assert_eq!(
            m.body,
            OutboundBody::Template {
                name: "agent_assigned".into(),
                language: "de".into(),
                body_parameters: vec!["Anna".into()]
            }
        );
        let m = contact_message(&old, &t, MessageKind::Overload, &vars, 0, now).unwrap();
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
            contact_message(&inside, &t, MessageKind::Assigned, &vars, 0, now)
                .unwrap()
                .body,
            OutboundBody::Text { .. }
        ));
    }

    #[test]
    fn the_window_counts_from_the_latest_inbound_message_not_the_hand_off() {
        let handed_off = 1_800_000_000;
        let now = handed_off + 25 * 3600;
        let mut t = team();
        t.templates
            .insert(MessageKind::Assigned, "agent_assigned".into());
        let r = req("de", handed_off);
        let vars = Vars {
            agent_name: Some("Anna".into()),
            queue_position: None,
        };
        // The contact wrote again 23 hours after the hand-off: still inside at 25 hours.
        let m = contact_message(
            &r,
            &t,
            MessageKind::Assigned,
            &vars,
            handed_off + 23 * 3600,
            now,
        )
        .unwrap();
        assert!(matches!(m.body, OutboundBody::Text { .. }), "{:?}", m.body);
        assert_eq!(m.last_inbound_at, Some(handed_off + 23 * 3600));
        // An older stored time never narrows the window the job itself opened.
        let m = contact_message(&r, &t, MessageKind::Assigned, &vars, 0, handed_off + 60).unwrap();
        assert!(matches!(m.body, OutboundBody::Text { .. }));
        assert_eq!(m.last_inbound_at, Some(handed_off));
    }

    #[test]
    fn the_overload_dedup_id_does_not_depend_on_the_place_in_line() {
        let r = req("de", 1);
        let at = |p| {
            let vars = Vars {
                agent_name: None,
                queue_position: Some(p),
            };
            contact_message(&r, &team(), MessageKind::Overload, &vars, 0, 2).unwrap()
        };
        assert_eq!(at(3).dedup_id, at(2).dedup_id);
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
