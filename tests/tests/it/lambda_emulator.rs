//! Functions under the real Lambda runtime emulator (cargo-lambda), invoked with the sample
//! events in `events/`: how users without Docker check what `sam local invoke` would do.

use prechat_tests::lambda::Emulator;

#[test]
fn webhook_verify_answers_the_sample_event_under_cargo_lambda() {
    let emulator = Emulator::start(
        "webhook-verify",
        &[("WHATSAPP_VERIFY_TOKEN", "local-verify-token")],
    );
    let events = prechat_tests::workspace_root().join("events");
    let reply = emulator.invoke_file("webhook-verify", &events.join("webhook-verify.json"));
    assert_eq!(reply["statusCode"], 200, "{reply}");
    assert_eq!(reply["body"], "1158201444");

    // The same event with another token is refused, and the token is not echoed in the logs.
    let text = std::fs::read_to_string(events.join("webhook-verify.json")).unwrap();
    let forged = text.replace("local-verify-token", "guessed-token-123");
    let path = std::env::temp_dir().join(format!("prechat-forged-{}.json", emulator.port));
    std::fs::write(&path, forged).unwrap();
    let reply = emulator.invoke_file("webhook-verify", &path);
    assert_eq!(reply["statusCode"], 403, "{reply}");
    let log = emulator.log_text();
    assert!(log.contains("webhook verification refused"), "{log}");
    assert!(
        !log.contains("guessed-token-123"),
        "the token must not be logged"
    );
}
