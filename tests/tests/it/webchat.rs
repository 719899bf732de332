//! webchat against moto, through the real handler: API Gateway v2 events in, the inbound
//! queue and the state table checked after.

use lambda_http::Response;
use prechat::entrypoints::webchat::WebChat;
use prechat::secrets::Secret;
use prechat::webchat::token::VisitorTokens;
use prechat::whatsapp::event::{InboundEvent, MessageContent};
use prechat_tests::api::{event, json_of};
use prechat_tests::app::{TestApp, T0};
use serde_json::{json, Value};

const SECRET: &str = "test-webchat-secret";
const SITE: &str = "https://shop.example.com";

fn chat(app: &TestApp) -> WebChat {
    app.webchat(
        SECRET,
        &[(
            "PRECHAT_WEBCHAT_ORIGINS",
            "https://shop.example.com,http://localhost:8080",
        )],
    )
}

fn headers(origin: &str, token: Option<&str>) -> Value {
    let mut h = json!({"origin": origin, "content-type": "application/json"});
    if let Some(t) = token {
        h["authorization"] = json!(format!("Bearer {t}"));
    }
    h
}

async fn call(
    chat: &WebChat,
    method: &str,
    path: &str,
    origin: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response<lambda_http::Body> {
    let body = body.map(|b| b.to_string());
    chat.handle(event(
        method,
        path,
        None,
        headers(origin, token),
        body.as_deref(),
    ))
    .await
}

fn valid_answers() -> Value {
    json!({
        "language": "es",
        "consent": "yes",
        "name": "  Ana López ",
        "email": "Ana@EXAMPLE.com",
        "inquiry": "sales",
        "country": "España",
        "description": "Quiero comprar",
    })
}

fn submission(answers: Value, nonce: &str) -> Value {
    json!({"survey": "default", "lang": "es", "answers": answers, "nonce": nonce, "website": ""})
}

async fn send(chat: &WebChat, token: &str, nonce: &str) -> Response<lambda_http::Body> {
    let body = json!({"text": "hola", "nonce": nonce});
    call(
        chat,
        "POST",
        "/webchat/messages",
        SITE,
        Some(token),
        Some(body),
    )
    .await
}

async fn inbound(app: &TestApp) -> Vec<InboundEvent> {
    app.received("InboundQueue").await
}

#[tokio::test]
async fn the_widget_script_and_the_form() {
    let app = TestApp::spawn().await;
    let chat = chat(&app);
    let r = chat
        .handle(event("GET", "/widget.js", None, json!({}), None))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");

    let r = call(
        &chat,
        "GET",
        "/webchat/form?survey=default&lang=es",
        SITE,
        None,
        None,
    )
    .await;
    assert_eq!(r.headers()["access-control-allow-origin"], SITE);
    assert_eq!(r.headers()["vary"], "origin");
    let (status, form) = json_of(&r);
    assert_eq!(status, 200, "{form}");
    assert_eq!(form["language"], "es");
    assert!(form["fields"].as_array().is_some_and(|f| !f.is_empty()));
    let (status, _) =
        json_of(&call(&chat, "GET", "/webchat/form?survey=other", SITE, None, None).await);
    assert_eq!(status, 404);

    let r = call(&chat, "OPTIONS", "/webchat/conversations", SITE, None, None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], SITE);
    assert_eq!(
        r.headers()["access-control-allow-headers"],
        "authorization, content-type"
    );
}

#[tokio::test]
async fn a_valid_submission_queues_one_web_form_and_returns_a_token_that_verifies() {
    let app = TestApp::spawn().await;
    let chat = chat(&app);
    let r = call(
        &chat,
        "POST",
        "/webchat/conversations",
        SITE,
        None,
        Some(submission(valid_answers(), "nonce-0001")),
    )
    .await;
    let (status, body) = json_of(&r);
    assert_eq!(status, 202, "{body}");
    let token = body["visitor_token"].as_str().unwrap();
    let claims = VisitorTokens::new(&Secret::new(SECRET))
        .verify(token, T0)
        .unwrap();
    assert_eq!(body["visitor"], claims.sub);
    let visitor_id = claims.sub.strip_prefix("V.").unwrap();
    assert_eq!(visitor_id.len(), 22);
    assert_eq!(
        body["submission_id"],
        format!("webform:{visitor_id}:nonce-0001")
    );

    let events = inbound(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let InboundEvent::WebForm(form) = &events[0] else {
        panic!("not a web form: {events:?}");
    };
    assert_eq!(form.phone_number_id, "web");
    assert_eq!(form.contact.user_id.as_deref(), Some(claims.sub.as_str()));
    assert_eq!(form.contact.profile_name.as_deref(), Some("Ana López"));
    assert_eq!(form.answers["name"], "Ana López");
    assert_eq!(form.answers["email"], "Ana@example.com");
    assert_eq!(form.answers["country"], "ES");
    assert_eq!(form.language, "es");
    assert_eq!(form.timestamp, T0);
    assert!(form
        .consent
        .as_ref()
        .is_some_and(|c| c.accepted && c.at == T0));

    // A returning visitor keeps their id.
    let (status, again) = json_of(
        &call(
            &chat,
            "POST",
            "/webchat/conversations",
            SITE,
            Some(token),
            Some(submission(valid_answers(), "nonce-0002")),
        )
        .await,
    );
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["visitor"], claims.sub);
}

#[tokio::test]
async fn refused_submissions_are_422_and_queue_nothing() {
    let app = TestApp::spawn().await;
    let chat = chat(&app);
    let mut bad_email = valid_answers();
    bad_email["email"] = json!("ana@");
    let mut no_name = valid_answers();
    no_name.as_object_mut().unwrap().remove("name");
    let mut no_consent = valid_answers();
    no_consent["consent"] = json!("no");
    for (answers, key, code) in [
        (bad_email, "email", "invalid"),
        (no_name, "name", "required"),
        (no_consent, "consent", "consent_required"),
    ] {
        let (status, body) = json_of(
            &call(
                &chat,
                "POST",
                "/webchat/conversations",
                SITE,
                None,
                Some(submission(answers, "nonce-0001")),
            )
            .await,
        );
        assert_eq!(status, 422, "{body}");
        let errors = body["errors"].as_array().unwrap();
        let e = errors.iter().find(|e| e["key"] == key).unwrap();
        assert_eq!(e["code"], code, "{body}");
        if key == "email" {
            assert!(
                e["message"].as_str().unwrap().contains("ana@ejemplo.com"),
                "the retry text: {e}"
            );
        }
    }
    // The honeypot: accepted, nothing done.
    let mut bot = submission(valid_answers(), "nonce-0003");
    bot["website"] = json!("http://spam.example");
    let (status, _) = json_of(
        &call(
            &chat,
            "POST",
            "/webchat/conversations",
            SITE,
            None,
            Some(bot),
        )
        .await,
    );
    assert_eq!(status, 202);
    assert!(inbound(&app).await.is_empty());
}

#[tokio::test]
async fn foreign_origins_bad_tokens_bad_bodies_and_floods_are_refused() {
    let app = TestApp::spawn().await;
    let chat = chat(&app);
    let r = call(
        &chat,
        "GET",
        "/webchat/form",
        "https://evil.example",
        None,
        None,
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = chat
        .handle(event("GET", "/webchat/form", None, json!({}), None))
        .await;
    assert_eq!(r.status(), 403, "no origin");

    let forged = VisitorTokens::new(&Secret::new("another-secret")).issue("V.abcdefghijklmnop", T0);
    let msg = json!({"text": "hola", "nonce": "nonce-0001"});
    for token in [Some(forged.as_str()), Some("v1.x.y"), None] {
        let (status, _) = json_of(
            &call(
                &chat,
                "POST",
                "/webchat/messages",
                SITE,
                token,
                Some(msg.clone()),
            )
            .await,
        );
        assert_eq!(status, 401, "{token:?}");
        let (status, _) =
            json_of(&call(&chat, "GET", "/webchat/conversation", SITE, token, None).await);
        assert_eq!(status, 401, "{token:?}");
    }
    let expired =
        VisitorTokens::new(&Secret::new(SECRET)).issue("V.abcdefghijklmnop", T0 - 31 * 86_400);
    let (status, _) = json_of(
        &call(
            &chat,
            "POST",
            "/webchat/messages",
            SITE,
            Some(&expired),
            Some(msg),
        )
        .await,
    );
    assert_eq!(status, 401, "expired");

    let r = chat
        .handle(event(
            "POST",
            "/webchat/conversations",
            None,
            headers(SITE, None),
            Some("{\"nonce\": \"secret-value"),
        ))
        .await;
    let (status, body) = json_of(&r);
    assert_eq!(status, 400);
    assert!(!body.to_string().contains("secret-value"), "{body}");
    let big = json!({"nonce": "nonce-0001", "answers": {"description": "x".repeat(17 * 1024)}});
    let (status, _) = json_of(
        &call(
            &chat,
            "POST",
            "/webchat/conversations",
            SITE,
            None,
            Some(big),
        )
        .await,
    );
    assert_eq!(status, 413);

    // 10 submissions per IP per minute; the 11th is 429 until the next minute.
    for i in 0..10 {
        let (status, body) = json_of(
            &call(
                &chat,
                "POST",
                "/webchat/conversations",
                SITE,
                None,
                Some(submission(valid_answers(), &format!("nonce-{i:04}"))),
            )
            .await,
        );
        assert_eq!(status, 202, "{i}: {body}");
    }
    let r = call(
        &chat,
        "POST",
        "/webchat/conversations",
        SITE,
        None,
        Some(submission(valid_answers(), "nonce-0099")),
    )
    .await;
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(r.headers()["access-control-allow-origin"], SITE);
    app.clock.advance(retry);
    let (status, _) = json_of(
        &call(
            &chat,
            "POST",
            "/webchat/conversations",
            SITE,
            None,
            Some(submission(valid_answers(), "nonce-0100")),
        )
        .await,
    );
    assert_eq!(status, 202, "a new minute");
    assert_eq!(inbound(&app).await.len(), 11);
}

#[tokio::test]
async fn a_message_is_queued_and_the_conversation_read_is_the_visitor_s_own() {
    let app = TestApp::spawn().await;
    let chat = chat(&app);
    let tokens = VisitorTokens::new(&Secret::new(SECRET));
    let ana = tokens.issue("V.ana-visitor-00000001", T0);
    let bob = tokens.issue("V.bob-visitor-00000002", T0);

    let (status, _) = json_of(
        &call(
            &chat,
            "GET",
            "/webchat/conversation",
            SITE,
            Some(&ana),
            None,
        )
        .await,
    );
    assert_eq!(status, 404, "no conversation yet");

    let (status, body) = json_of(
        &call(
            &chat,
            "POST",
            "/webchat/messages",
            SITE,
            Some(&ana),
            Some(json!({"text": "hola", "nonce": "nonce-0001"})),
        )
        .await,
    );
    assert_eq!(status, 202, "{body}");
    let (status, _) = json_of(
        &call(
            &chat,
            "POST",
            "/webchat/messages",
            SITE,
            Some(&ana),
            Some(json!({"text": " ", "nonce": "nonce-0002"})),
        )
        .await,
    );
    assert_eq!(status, 422, "empty text");
    let events = inbound(&app).await;
    assert_eq!(events.len(), 1);
    let InboundEvent::Message(m) = &events[0] else {
        panic!("not a message: {events:?}");
    };
    assert_eq!(m.phone_number_id, "web");
    assert_eq!(m.contact.user_id.as_deref(), Some("V.ana-visitor-00000001"));
    assert_eq!(m.message_id, "web.ana-visitor-00000001.nonce-0001");
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: "hola".into()
        }
    );

    // The survey engine starts Ana's conversation on her message (as on WhatsApp, until it
    // applies web forms); Bob has none.
    app.deliver(&events).await;
    let (status, conv) = json_of(
        &call(
            &chat,
            "GET",
            "/webchat/conversation",
            SITE,
            Some(&ana),
            None,
        )
        .await,
    );
    assert_eq!(status, 200, "{conv}");
    assert!(conv["conversation_id"].is_string());
    assert_eq!(conv["state"], "surveying");
    let entries = conv["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["author"] == "contact" && e["text"] == "hola"),
        "{conv}"
    );
    assert!(entries.iter().any(|e| e["author"] == "bot"), "{conv}");
    assert!(entries.iter().all(|e| e["type"] != "answer"));
    let last = entries.last().unwrap()["id"].as_str().unwrap().to_owned();
    let (status, later) = json_of(
        &call(
            &chat,
            "GET",
            &format!("/webchat/conversation?after={last}"),
            SITE,
            Some(&ana),
            None,
        )
        .await,
    );
    assert_eq!(status, 200);
    assert_eq!(later["entries"], json!([]), "caught up");
    let (status, _) = json_of(
        &call(
            &chat,
            "GET",
            "/webchat/conversation?after=nope",
            SITE,
            Some(&ana),
            None,
        )
        .await,
    );
    assert_eq!(status, 400);

    let (status, _) = json_of(
        &call(
            &chat,
            "GET",
            "/webchat/conversation",
            SITE,
            Some(&bob),
            None,
        )
        .await,
    );
    assert_eq!(status, 404, "Bob does not see Ana's conversation");
}

#[tokio::test]
async fn messages_are_limited_per_visitor() {
    let app = TestApp::spawn().await;
    let chat = app.webchat(
        SECRET,
        &[
            ("PRECHAT_WEBCHAT_ORIGINS", SITE),
            ("PRECHAT_WEBCHAT_MESSAGES_PER_VISITOR", "2"),
        ],
    );
    let tokens = VisitorTokens::new(&Secret::new(SECRET));
    let ana = tokens.issue("V.ana-visitor-00000001", T0);
    let bob = tokens.issue("V.bob-visitor-00000002", T0);
    assert_eq!(send(&chat, &ana, "nonce-0001").await.status(), 202);
    assert_eq!(send(&chat, &ana, "nonce-0002").await.status(), 202);
    let r = send(&chat, &ana, "nonce-0003").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        send(&chat, &bob, "nonce-0001").await.status(),
        202,
        "another visitor"
    );
    assert_eq!(inbound(&app).await.len(), 3);
}
