//! The log key comes in the same SSM request as a function's secrets and keys the redaction
//! hash. The key is process-wide and the first one set wins, so this test has a binary of its
//! own: no other test can have redacted a value (and fixed a random key) before it runs.

use prechat_tests::TestEnv;

#[tokio::test]
async fn the_log_key_arrives_with_the_secrets_and_keys_the_redaction_hash() {
    let env = TestEnv::new().await;
    let param = format!("/{}/verify-token", env.prefix);
    env.put_secret(&param, "from-ssm").await;
    let log_key_param = format!("/{}/log-key", env.prefix);
    env.put_secret(&log_key_param, "shared-log-key").await;
    let lookup = |k: &str| match k {
        "WHATSAPP_VERIFY_TOKEN_PARAM" => Some(param.clone()),
        "PRECHAT_LOG_KEY_PARAM" => Some(log_key_param.clone()),
        _ => None,
    };
    let (got, _) =
        prechat::entrypoints::init::load_secrets(&env.ssm, &["WHATSAPP_VERIFY_TOKEN"], &[], lookup)
            .await
            .unwrap();
    assert_eq!(got[0].expose(), "from-ssm");
    let expected = {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"shared-log-key").unwrap();
        mac.update(b"15551234567");
        format!("c:{}", hex::encode(&mac.finalize().into_bytes()[..6]))
    };
    assert_eq!(
        prechat::telemetry::redact("15551234567").to_string(),
        expected
    );
}
