//! The signed sample events `events/webhook-ingest-*.json`: how they are made, and a check that
//! each one is correctly signed, matches its source body and ingests to the expected events.
//!
//! How they are made lives in [`crate::entrypoints::sample_events`] (the one copy, which the
//! generator `cargo xtask events` in `tests/local/src/events.rs` calls); this check asserts each
//! committed file is exactly what it makes from its source in `shared/testdata/webhook/`, so a
//! stale file fails here. Regenerate after editing a source: `cargo xtask events`.

use std::path::PathBuf;

use lambda_http::http::StatusCode;

use super::tests::ingest_with_recorder;
use crate::entrypoints::sample_events::{self, compact};
use crate::whatsapp::event::{DeliveryStatus, InboundEvent, MessageContent};

/// Each sample, with the dedup ids its events must have, in order.
const SAMPLES: &[(&str, &[&str])] = &[
    (
        "text",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="],
    ),
    (
        "button-reply",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="],
    ),
    (
        "list-reply",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUQ1MkE5NjFFNTM0QzVGMDdFNAA="],
    ),
    (
        "location",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUY3QjM0RTI1NzY5OTE1NjA2NwA="],
    ),
    (
        "image",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTE5OTBCRTMyMUU3QjE5NTNBMAA="],
    ),
    (
        "status-delivered",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJBQkNERUYwMTIzNDU2Nzg5AA==:delivered"],
    ),
    (
        "status-read",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJBQkNERUYwMTIzNDU2Nzg5AA==:read"],
    ),
    (
        "status-failed",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5RkE4QjdDNkQ1RTRGM0EyQjEA:failed"],
    ),
    (
        "unsupported",
        &["wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUJGMjU0QjlBMDI4NjVFQzBDRQA="],
    ),
    (
        "username-no-phone",
        &["wamid.HBgVVVMuMjQ4MTczMDU5MTI4NzM2NDUwMjkVAgASGBQzQTdDMjFCOUQ4RTVBMjQ0NkY4MQA="],
    ),
    (
        "multi",
        &[
            "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDAxAA==",
            "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0EwMDAwMDAwMDAwMDAwMDAwMgA=",
            "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDAzAA==",
            "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDA0AA==",
        ],
    ),
    (
        "user-id-update",
        &["uid:US.13491208655302741918:US.90817263540918273645:1763932260"],
    ),
];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn source_path(name: &str) -> PathBuf {
    workspace()
        .join("shared/testdata/webhook")
        .join(format!("{name}.json"))
}

fn event_path(name: &str) -> PathBuf {
    workspace()
        .join("events")
        .join(format!("webhook-ingest-{name}.json"))
}

#[test]
fn every_sample_event_is_signed_current_and_ingests() {
    let mut listed: Vec<String> = std::fs::read_dir(workspace().join("events"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("webhook-ingest-") && n.ends_with(".json"))
        .collect();
    listed.sort();
    let mut expected: Vec<String> = SAMPLES
        .iter()
        .map(|(n, _)| format!("webhook-ingest-{n}.json"))
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "every sample event is checked here");
    let names: Vec<&str> = SAMPLES.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        sample_events::SAMPLES,
        "checked in the generator's order"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (request_no, (name, dedup_ids)) in SAMPLES.iter().enumerate() {
        let text = std::fs::read_to_string(event_path(name)).unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        let source_text = std::fs::read_to_string(source_path(name)).unwrap();
        let source = compact(&source_text);
        assert_eq!(
            event["body"],
            source.as_str(),
            "{name}: stale; regenerate the event files"
        );
        assert_eq!(
            text,
            sample_events::ingest_event_file(&source_text, request_no),
            "{name}: stale; regenerate the event files"
        );

        let req = lambda_http::request::from_str(&text).unwrap();
        let (ingest, sent) = ingest_with_recorder();
        let resp = rt.block_on(ingest.handle(req));
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        let sent = sent.lock().unwrap();
        let got: Vec<&str> = sent.iter().map(|m| m.dedup_id.as_str()).collect();
        assert_eq!(&got, dedup_ids, "{name}");
        for m in sent.iter() {
            let ev: InboundEvent = serde_json::from_str(&m.body).unwrap();
            assert_eq!(
                m.group_id,
                format!("{}:{}", ev.phone_number_id(), ev.contact_key().unwrap()),
                "{name}"
            );
            check_content(name, &ev);
        }
    }
}

/// What each sample is about, beyond its ids.
fn check_content(name: &str, ev: &InboundEvent) {
    let content = match ev {
        InboundEvent::Message(m) => Some(&m.content),
        _ => None,
    };
    match name {
        "text" => assert_eq!(
            content,
            Some(&MessageContent::Text {
                body: "Olá! Quero falar com vendas 😀".into()
            })
        ),
        "button-reply" => {
            assert_eq!(
                content,
                Some(&MessageContent::ButtonReply {
                    id: "topic_sales".into(),
                    title: "Sales".into()
                })
            )
        }
        "list-reply" => assert!(
            matches!(content, Some(MessageContent::ListReply { id, .. }) if id == "plan_business")
        ),
        "location" => assert!(
            matches!(content, Some(MessageContent::Location { latitude, .. }) if *latitude == 37.483307)
        ),
        "image" => assert!(
            matches!(content, Some(MessageContent::Media { id, caption: Some(c), .. }) if id == "1003383421387256" && c == "My receipt")
        ),
        "unsupported" => {
            assert_eq!(
                content,
                Some(&MessageContent::Unsupported {
                    message_type: "unsupported".into()
                })
            )
        }
        "username-no-phone" => {
            let InboundEvent::Message(m) = ev else {
                panic!("{ev:?}")
            };
            assert_eq!(m.contact.wa_id, None);
            assert_eq!(m.contact.username.as_deref(), Some("pablo.morales"));
            assert_eq!(ev.contact_key(), Some("US.24817305912873645029".into()));
        }
        "status-failed" => {
            let InboundEvent::Status(s) = ev else {
                panic!("{ev:?}")
            };
            assert_eq!(
                (s.status, s.errors[0].code),
                (DeliveryStatus::Failed, 131047)
            );
            assert_eq!(ev.contact_key(), Some("US.13491208655302741918".into()));
        }
        "status-delivered" | "status-read" => {
            assert!(matches!(ev, InboundEvent::Status(s) if s.pricing.is_some()))
        }
        "user-id-update" => assert!(
            matches!(ev, InboundEvent::UserIdUpdate(u) if u.wa_id.as_deref() == Some("16505559876"))
        ),
        _ => {}
    }
}
