//! The transcript store against moto: idempotent append, paging newest / older / newer by
//! cursor, the TTL attribute, refused cursors, and delivery statuses that only move forward.

use aws_sdk_dynamodb::types::AttributeValue;
use prechat::store::transcript::{expires_at, DynamoTranscript, TranscriptLog};
use prechat::store::{DynamoTable, StoreError};
use prechat::transcript::{
    engine_entry_id, Author, Body, DeliveryStatus, Entry, Page, PageRequest,
};
use prechat_tests::TestEnv;

const AT: i64 = 1_790_000_000_000;

fn store(env: &TestEnv) -> DynamoTranscript {
    DynamoTranscript::new(DynamoTable::new(
        env.dynamo.clone(),
        env.table("StateTable"),
    ))
}

fn line(seq: u32) -> Entry {
    Entry {
        id: engine_entry_id(AT + i64::from(seq), seq),
        at: AT + i64::from(seq),
        author: Author::Bot,
        body: Body::Text {
            text: format!("line {seq}"),
        },
        status: Some(DeliveryStatus::Pending),
        wamid: None,
    }
}

fn ids(p: &Page) -> Vec<String> {
    p.entries.iter().map(|e| e.id.clone()).collect()
}

fn page(limit: u32, after: Option<&str>, before: Option<&str>) -> PageRequest {
    PageRequest {
        after: after.map(str::to_owned),
        before: before.map(str::to_owned),
        limit,
    }
}

/// Five lines in conversation `c`, and one in another conversation.
async fn five(env: &TestEnv) -> (DynamoTranscript, Vec<Entry>) {
    let log = store(env);
    let all: Vec<Entry> = (0..5).map(line).collect();
    log.append("c", &all, 2_000_000_000).await.unwrap();
    log.append("other", &[line(9)], 2_000_000_000)
        .await
        .unwrap();
    (log, all)
}

#[tokio::test]
async fn appending_an_entry_again_leaves_the_stored_one_as_it_is() {
    let env = TestEnv::new().await;
    let log = store(&env);
    log.append("c", &[line(0)], 2_000_000_000).await.unwrap();
    assert!(log
        .set_delivery("c", &line(0).id, DeliveryStatus::Read, Some("wamid.1"))
        .await
        .unwrap());
    let mut replay = line(0);
    replay.body = Body::Text {
        text: "changed".into(),
    };
    log.append("c", &[replay, line(1)], 2_000_000_000)
        .await
        .unwrap();
    let p = log.page("c", &page(10, None, None)).await.unwrap();
    assert_eq!(p.entries.len(), 2);
    assert_eq!(p.entries[0].body, line(0).body);
    assert_eq!(p.entries[0].status, Some(DeliveryStatus::Read));
    assert_eq!(p.entries[0].wamid.as_deref(), Some("wamid.1"));
}

#[tokio::test]
async fn the_newest_page_comes_oldest_first_with_a_cursor_to_the_older_one() {
    let env = TestEnv::new().await;
    let (log, all) = five(&env).await;
    let newest = log.page("c", &page(2, None, None)).await.unwrap();
    assert_eq!(ids(&newest), [all[3].id.clone(), all[4].id.clone()]);
    assert_eq!(newest.before.as_deref(), Some(all[3].id.as_str()));
    assert_eq!(newest.after.as_deref(), Some(all[4].id.as_str()));
    let everything = log.page("c", &page(10, None, None)).await.unwrap();
    assert_eq!(
        everything.entries, all,
        "the other conversation's line is not in it"
    );
    assert_eq!(everything.before, None, "nothing older");
}

#[tokio::test]
async fn older_pages_go_back_from_the_before_cursor_to_the_first_entry() {
    let env = TestEnv::new().await;
    let (log, all) = five(&env).await;
    let older = log
        .page("c", &page(2, None, Some(&all[3].id)))
        .await
        .unwrap();
    assert_eq!(ids(&older), [all[1].id.clone(), all[2].id.clone()]);
    assert_eq!(older.before.as_deref(), Some(all[1].id.as_str()));
    let oldest = log
        .page("c", &page(2, None, older.before.as_deref()))
        .await
        .unwrap();
    assert_eq!(ids(&oldest), [all[0].id.clone()]);
    assert_eq!(oldest.before, None);
}

#[tokio::test]
async fn catching_up_returns_only_what_came_after_the_cursor() {
    let env = TestEnv::new().await;
    let (log, all) = five(&env).await;
    let newer = log
        .page("c", &page(2, Some(&all[1].id), None))
        .await
        .unwrap();
    assert_eq!(ids(&newer), [all[2].id.clone(), all[3].id.clone()]);
    let rest = log
        .page("c", &page(2, newer.after.as_deref(), None))
        .await
        .unwrap();
    assert_eq!(ids(&rest), [all[4].id.clone()]);
    let none = log
        .page("c", &page(2, rest.after.as_deref(), None))
        .await
        .unwrap();
    assert!(none.entries.is_empty());
    assert_eq!(
        none.after.as_deref(),
        Some(all[4].id.as_str()),
        "catch up again from there"
    );
}

#[tokio::test]
async fn a_cursor_that_is_no_entry_id_is_refused() {
    let env = TestEnv::new().await;
    let (log, _) = five(&env).await;
    for bad in ["CONV", "T#1#x", "FAILED#w", "T#1790000000000#a b"] {
        let err = log.page("c", &page(2, Some(bad), None)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidCursor(_)),
            "{bad}: {err:?}"
        );
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn every_entry_carries_its_expiry() {
    let env = TestEnv::new().await;
    let log = store(&env);
    let exp = expires_at(1_790_000_000, 30);
    log.append("c", &[line(0)], exp).await.unwrap();
    let item = env
        .dynamo
        .get_item()
        .table_name(env.table("StateTable"))
        .key("pk", AttributeValue::S("CONV#c".into()))
        .key("sk", AttributeValue::S(line(0).id))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["expires_at"].as_n().unwrap(), &exp.to_string());
    assert_eq!(exp, 1_790_000_000 + 30 * 86_400);
}

#[tokio::test]
async fn a_status_only_moves_forward_and_failed_wins() {
    let env = TestEnv::new().await;
    let log = store(&env);
    log.append("c", &[line(0)], 2_000_000_000).await.unwrap();
    let id = line(0).id;
    let set = |st| log.set_delivery("c", &id, st, None);
    assert!(set(DeliveryStatus::Read).await.unwrap());
    assert!(
        !set(DeliveryStatus::Delivered).await.unwrap(),
        "read never goes back"
    );
    assert!(set(DeliveryStatus::Failed).await.unwrap());
    assert!(!set(DeliveryStatus::Read).await.unwrap());
    let p = log.page("c", &page(1, None, None)).await.unwrap();
    assert_eq!(p.entries[0].status, Some(DeliveryStatus::Failed));
}

#[tokio::test]
async fn a_status_for_an_unknown_entry_creates_nothing() {
    let env = TestEnv::new().await;
    let log = store(&env);
    let ghost = line(7).id;
    let set = log.set_delivery("c", &ghost, DeliveryStatus::Sent, Some("wamid.x"));
    assert!(!set.await.unwrap());
    assert!(log
        .page("c", &page(5, None, None))
        .await
        .unwrap()
        .entries
        .is_empty());
}
