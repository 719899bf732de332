//! `GET /api/conversations` against moto: who lists which team's conversations (the `gsi2`
//! team lists the ticket writes keep), paging by cursor, and the list parameters' errors.
//! The setup (team `sales` with alice and bruno) is `api.rs`'s; here team `support` joins it,
//! with agent carl and lea, who leads it.

use prechat::routing::model::Team;
use serde_json::{json, Value};

use super::api::{agent, conversation_in, get, setup, user, Setup};

/// Team `support` with agent carl (capacity 2) and lea, who is in and leads `support`.
async fn with_support() -> Setup {
    let s = setup().await;
    let team: Team = serde_json::from_value(json!({"id": "support", "name": "Support"})).unwrap();
    s.store.put_team(&team).await.unwrap();
    let mut carl = agent("carl", 2);
    carl.teams = vec!["support".into()];
    s.store.upsert_agent(&carl).await.unwrap();
    let mut lea = agent("lea", 2);
    lea.teams = vec!["support".into()];
    lea.leads = vec!["support".into()];
    s.store.upsert_agent(&lea).await.unwrap();
    s
}

fn lea() -> Value {
    user("lea", "[agents leads]")
}

fn ids(v: &Value) -> Vec<String> {
    v["conversations"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// In each team: one assigned, one waiting, one closed.
async fn both_teams(s: &Setup) {
    for (team, who, p) in [("support", "carl", "s"), ("sales", "alice", "x")] {
        conversation_in(s, &format!("{p}-a"), team, s.now - 60, Some(who)).await;
        conversation_in(s, &format!("{p}-w"), team, s.now - 60, None).await;
        conversation_in(s, &format!("{p}-c"), team, s.now - 60, Some(who)).await;
        s.store.close(&format!("{p}-c"), who, s.now).await.unwrap();
    }
}

#[tokio::test]
async fn a_lead_lists_the_led_team_s_assigned_waiting_and_closed_but_not_another_team_s() {
    let s = with_support().await;
    both_teams(&s).await;
    for (state, expected) in [("assigned", "s-a"), ("waiting", "s-w"), ("closed", "s-c")] {
        let (status, list) = get(&s, &format!("/api/conversations?state={state}"), lea()).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(ids(&list), [expected], "{state}");
    }
    let (_, sales) = get(&s, "/api/conversations?state=assigned&team=sales", lea()).await;
    assert_eq!(
        ids(&sales),
        Vec::<String>::new(),
        "only her own in a team she does not lead"
    );
}

#[tokio::test]
async fn an_admin_lists_every_team_s_conversations_or_the_one_team_named() {
    let s = with_support().await;
    both_teams(&s).await;
    let root = || user("root", "[admins]");
    let (_, all) = get(&s, "/api/conversations?state=closed", root()).await;
    let mut got = ids(&all);
    got.sort();
    assert_eq!(got, ["s-c", "x-c"]);
    let (_, sales) = get(&s, "/api/conversations?state=assigned&team=sales", root()).await;
    assert_eq!(ids(&sales), ["x-a"]);
}

#[tokio::test]
async fn an_agent_lists_only_their_own_assigned_even_in_their_team() {
    let s = with_support().await;
    conversation_in(&s, "x-alice", "sales", s.now, Some("alice")).await;
    conversation_in(&s, "x-bruno", "sales", s.now, Some("bruno")).await;
    let alice = || user("alice", "[agents]");
    let (_, mine) = get(&s, "/api/conversations?state=assigned", alice()).await;
    assert_eq!(ids(&mine), ["x-alice"]);
    let (_, team) = get(&s, "/api/conversations?state=assigned&team=sales", alice()).await;
    assert_eq!(ids(&team), ["x-alice"]);
}

#[tokio::test]
async fn mine_narrows_a_lead_s_list_to_the_conversations_she_holds() {
    let s = with_support().await;
    conversation_in(&s, "s-carl", "support", s.now, Some("carl")).await;
    conversation_in(&s, "s-lea", "support", s.now, Some("lea")).await;
    let (_, team) = get(&s, "/api/conversations?state=assigned", lea()).await;
    let mut got = ids(&team);
    got.sort();
    assert_eq!(got, ["s-carl", "s-lea"]);
    let (_, mine) = get(&s, "/api/conversations?state=assigned&mine=true", lea()).await;
    assert_eq!(ids(&mine), ["s-lea"]);
}

#[tokio::test]
async fn pages_follow_the_cursor_newest_first_without_gaps_or_repeats() {
    let s = with_support().await;
    for i in 0..5 {
        conversation_in(&s, &format!("w{i}"), "support", s.now - 60 * i, None).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/conversations?state=waiting&limit=2".to_owned();
    for expected in [&["w0", "w1"][..], &["w2", "w3"], &["w4"]] {
        let (status, page) = get(&s, &path, lea()).await;
        assert_eq!(
            (status, ids(&page)),
            (
                200,
                expected.to_vec().iter().map(|x| x.to_string()).collect()
            )
        );
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/conversations?state=waiting&limit=2&cursor={c}"),
            None => assert_eq!(expected, &["w4"], "the last page has no cursor"),
        }
    }
    assert_eq!(seen.len(), 5);
}

#[tokio::test]
async fn waiting_items_carry_their_place_in_line_and_time_since_the_last_message() {
    let s = with_support().await;
    conversation_in(&s, "w-old", "support", s.now - 600, None).await;
    conversation_in(&s, "w-new", "support", s.now - 30, None).await;
    let (_, line) = get(&s, "/api/conversations?state=waiting", lea()).await;
    let items = line["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let view = |c: &Value| {
        (
            c["id"].clone(),
            c["place"].clone(),
            c["seconds_since_last_message"].clone(),
        )
    };
    assert_eq!(
        items.iter().map(view).collect::<Vec<_>>(),
        [
            (json!("w-new"), json!(2), json!(30)),
            (json!("w-old"), json!(1), json!(600))
        ]
    );
    assert_eq!(items[0]["contact"], json!({"name": "Ana"}));
    assert_eq!(items[0]["team"], "support");
}

#[tokio::test]
async fn a_conversation_moved_to_another_team_leaves_the_lead_s_list() {
    let s = with_support().await;
    let ticket = conversation_in(&s, "s-move", "support", s.now, Some("carl")).await;
    let assigned = s.store.get_ticket("s-move").await.unwrap().unwrap();
    assert_eq!(assigned.conversation_id, ticket.conversation_id);
    s.store
        .transfer(&assigned, "sales", None, s.now)
        .await
        .unwrap();
    for state in ["assigned", "waiting"] {
        let (_, list) = get(&s, &format!("/api/conversations?state={state}"), lea()).await;
        assert_eq!(ids(&list), Vec::<String>::new(), "{state}");
    }
    let (_, sales) = get(
        &s,
        "/api/conversations?state=waiting",
        user("alice", "[agents]"),
    )
    .await;
    assert_eq!(ids(&sales), ["s-move"]);
}

#[tokio::test]
async fn a_bad_cursor_or_list_parameter_is_400_naming_it() {
    let s = with_support().await;
    for (query, field) in [
        ("cursor=nothex", "cursor"),
        ("cursor=3030", "cursor"),
        ("team=a!b", "team"),
        ("state=waiting&mine=true", "mine"),
        ("limit=0", "limit"),
    ] {
        let (status, body) = get(&s, &format!("/api/conversations?{query}"), lea()).await;
        assert_eq!(
            (status, body["error"]["field"].clone()),
            (400, json!(field)),
            "{query}"
        );
    }
}
