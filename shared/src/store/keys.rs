//! The key layout of the state table, as code: every item's `pk`/`sk` and every `gsi1`
//! partition (and the `gsi2`/`gsi3` ones) is built here and nowhere else, and each builder's doc says what the item holds
//! and which function writes it. The layout is a contract between the functions (the IAM
//! test checks each function's grants against it).
//!
//! A conversation with `closed_at` set is closed, whoever set it. Conversation ids are ASCII
//! and SQS-id safe.

use super::attr;
use super::item::{s, Item};
use crate::whatsapp::ContactKey;

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: impl Into<String>) -> Self {
        Key { pk, sk: sk.into() }
    }

    /// The key as an attribute map: a `GetItem`/`UpdateItem` key, or the start of an item.
    pub fn item(&self) -> Item {
        Item::from([
            (attr::PK.to_owned(), s(self.pk.clone())),
            (attr::SK.to_owned(), s(self.sk.clone())),
        ])
    }
}

// ---------------------------------------------------------------- survey-engine

/// Contact: `CONTACT#{phone_number_id}#{contact_key}` / `PROFILE`. The contact and the
/// snapshot of its current conversation (`doc`, `rev`, `opted_out`, `conversation_id`,
/// `updated_at`). Written by survey-engine.
pub fn contact(phone_number_id: &str, contact_key: &ContactKey) -> Key {
    Key::new(contact_pk(phone_number_id, contact_key), PROFILE)
}

pub fn contact_pk(phone_number_id: &str, contact_key: &ContactKey) -> String {
    format!("CONTACT#{phone_number_id}#{contact_key}")
}

/// Applied message: `APPLIED#{phone_number_id}#{message_id}` / `APPLIED`. The effects the
/// message committed (`effects`: outbound messages and job), `applied_at`, `expires_at`;
/// created in the commit transaction only if absent or expired. Also the
/// `remind:{conversation}:{step}` ids of reminder ticks. Written by survey-engine.
pub fn applied(phone_number_id: &str, message_id: &str) -> Key {
    Key::new(applied_pk(phone_number_id, message_id), APPLIED)
}

pub fn applied_pk(phone_number_id: &str, message_id: &str) -> String {
    format!("APPLIED#{phone_number_id}#{message_id}")
}

/// Conversation: `CONV#{conversation_id}` / `CONV`. Written by survey-engine; agent-assigner
/// sets only `assigned_agent`, `assigned_team`, `assigned_at` (removed when the contact
/// cancels the hand-off), `closed_at`, `closed_by`, and reads `last_inbound_at` (the 24-hour
/// window); the delivery log counts `failed_messages`, `last_failure_at`. `completed_at` is
/// set once, by the commit that hands off a survey answered to the end. While a reminder can
/// be due the item is in a [`reminder_partition`]; it is always in its contact's
/// [`contact_conversations`] (`gsi2`) and its day's [`conversation_day`] (`gsi3`).
pub fn conversation(conversation_id: &str) -> Key {
    Key::new(conversation_pk(conversation_id), CONV)
}

pub fn conversation_pk(conversation_id: &str) -> String {
    format!("CONV#{conversation_id}")
}

/// The conversation id of a conversation item's `pk`.
pub fn conversation_id_of(pk: &str) -> Option<&str> {
    pk.strip_prefix("CONV#")
}

/// Reminder index partitions (`gsi1pk = REMIND#{0..SHARDS}`), so no single index partition
/// takes every surveying conversation.
pub const REMINDER_SHARDS: u32 = 4;

/// The `gsi1pk` of a conversation whose reminder can be due.
pub fn reminder_partition(conversation_id: &str) -> String {
    reminder_shard_partition(reminder_shard(conversation_id))
}

pub fn reminder_shard_partition(shard: u32) -> String {
    format!("REMIND#{shard}")
}

fn reminder_shard(conversation_id: &str) -> u32 {
    conversation_id
        .chars()
        .nth(1)
        .and_then(|c| c.to_digit(16))
        .unwrap_or(0)
        % REMINDER_SHARDS
}

/// The `gsi1sk` of a conversation in its reminder partition: `{due:012}#{id}`.
pub fn reminder_sort(due: i64, conversation_id: &str) -> String {
    format!("{due:012}#{conversation_id}")
}

/// The `gsi1sk` bound of everything due up to and including `now` ('~' sorts after every
/// id character).
pub fn reminder_sort_due_by(now: i64) -> String {
    format!("{now:012}#~")
}

/// A contact's conversations, oldest first: `gsi2pk = CONVS#{phone_number_id}#{contact_key}`
/// on the conversation item, `gsi2sk` = [`activity_sort`] of its `started_at`. Written by
/// survey-engine in every commit's conversation update (so the index needs no write of its
/// own), read by the admin's contact page, export and erasure: a contact's every
/// conversation is one `Query` (`KEYS_ONLY`, then the items). A re-key (phone -> BSUID)
/// starts the new key's partition; the contact item remembers the old key.
pub fn contact_conversations(phone_number_id: &str, contact_key: &ContactKey) -> String {
    format!("CONVS#{phone_number_id}#{contact_key}")
}

/// Conversations by the UTC day they started, for exports of a date range without a scan:
/// `gsi3pk = CONVDAY#{yyyy-mm-dd}` on the conversation item, `gsi3sk` = [`activity_sort`] of
/// its `started_at`. Written by survey-engine in the same conversation update as `gsi2`; both
/// keys derive from `started_at` and the id, which never change, so DynamoDB writes the
/// (`KEYS_ONLY`) index entry once, when the conversation is created, and never again. One
/// partition per day: an export reads a day in order, page by page, then the items by key.
/// A day holds every conversation of that day (a few thousand at most for one business),
/// well within one partition's throughput for a read that runs once in a while.
pub fn conversations_of_day(day: chrono::NaiveDate) -> String {
    format!("CONVDAY#{}", day.format("%Y-%m-%d"))
}

/// The `gsi3pk` of a conversation started at `started_at` (Unix seconds, UTC day); a time
/// out of chrono's range (never written by us) falls on 1970-01-01.
pub fn conversation_day(started_at: i64) -> String {
    let day = chrono::DateTime::from_timestamp(started_at.max(0), 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    conversations_of_day(day)
}

// ---------------------------------------------------------------- delivery log

/// Send record (dedup): `SENT#{dedup_id}` / `SENT`. `wamid`?, `conversation_id`?, `sent_at`,
/// `via`, `expires_at`. Written by reply-sender.
pub fn send_record(dedup_id: &str) -> Key {
    Key::new(sent_pk(dedup_id), "SENT")
}

pub fn sent_pk(dedup_id: &str) -> String {
    format!("SENT#{dedup_id}")
}

/// Sent message: `OUT#{wamid}` / `OUT`. reply-sender writes `conversation_id`?, `dedup_id`,
/// `contact_key`?, `phone_number_id`, `sent_at`, `via`, `expires_at`; survey-engine sets only
/// `delivery_status`, `delivery_rank`, `delivery_at` from status webhooks.
pub fn sent_message(wamid: &str) -> Key {
    Key::new(out_pk(wamid), "OUT")
}

pub fn out_pk(wamid: &str) -> String {
    format!("OUT#{wamid}")
}

/// Delivery failure of a reply refused when sending (it has no wamid):
/// `CONV#{conversation_id}` / `FAIL#{dedup_id}`. Written by reply-sender.
pub fn refused(conversation_id: &str, dedup_id: &str) -> Key {
    Key::new(conversation_pk(conversation_id), format!("FAIL#{dedup_id}"))
}

/// Delivery failure Meta reported in a status webhook for a message it had accepted:
/// `CONV#{conversation_id}` / `FAILED#{wamid}`. Written by survey-engine.
pub fn undelivered(conversation_id: &str, wamid: &str) -> Key {
    Key::new(conversation_pk(conversation_id), format!("FAILED#{wamid}"))
}

// ---------------------------------------------------------------- transcript

/// Transcript entry: `CONV#{conversation_id}` / `T#{at_ms:013}#{discriminator}` (the entry id,
/// [`crate::transcript::entry_id`]), in the conversation's partition so one `Query` pages it in
/// order. `doc` (the entry as JSON), `at`, `status`/`status_rank`, `wamid`, `expires_at`.
/// Appended by survey-engine (contact messages, questions, answers, texts) and agent-assigner
/// (events); reply-sender and survey-engine's status webhooks set `wamid` and `status`.
pub fn transcript_entry(conversation_id: &str, entry_id: &str) -> Key {
    Key::new(conversation_pk(conversation_id), entry_id)
}

// ---------------------------------------------------------------- surveys

/// Survey version: `SURVEY#{survey_id}` / `V#{version:06}`. `survey_id`, `version`, `yaml`,
/// `sha256`, `published_at`. Written by prechat-admin.
pub fn survey_version(survey_id: &str, version: u32) -> Key {
    Key::new(survey_pk(survey_id), version_sk(version))
}

pub fn survey_pk(survey_id: &str) -> String {
    format!("SURVEY#{survey_id}")
}

pub fn version_sk(version: u32) -> String {
    format!("V#{version:06}")
}

/// The `sk` prefix every survey version shares.
pub const VERSION_PREFIX: &str = "V#";

// ---------------------------------------------------------------- agent directory

/// Agent: `AGENT#{agent_id}` / `AGENT` (`open`, `capacity`, `status`, `convs` =
/// reservations), in the [`AGENTS`] partition of `gsi1`. Written by agent-assigner and
/// prechat-admin.
pub fn agent(agent_id: &str) -> Key {
    Key::new(format!("AGENT#{agent_id}"), "AGENT")
}

/// The `gsi1pk` of every agent (`gsi1sk` = the agent id).
pub const AGENTS: &str = "AGENTS";

/// Team: `TEAM#{team_id}` / `TEAM`, in the [`TEAMS`] partition of `gsi1`. Written by
/// prechat-admin.
pub fn team(team_id: &str) -> Key {
    Key::new(format!("TEAM#{team_id}"), "TEAM")
}

/// The `gsi1pk` of every team (`gsi1sk` = the team id).
pub const TEAMS: &str = "TEAMS";

/// Routing rules: `ROUTING` / `ROUTING`. Written by prechat-admin.
pub fn routing() -> Key {
    Key::new("ROUTING".to_owned(), "ROUTING")
}

// ---------------------------------------------------------------- hand-off tickets

/// Hand-off ticket: `HANDOFF#{conversation_id}` / `HANDOFF`; while waiting in a team's
/// [`waiting_line`], while assigned but not yet announced in its [`announce_list`], once closed
/// in its agent's [`closed_by_agent`] (all `gsi1`); always in its team's [`team_list`] of its
/// state (`gsi2`). Written by agent-assigner, agent-api and prechat-admin.
pub fn handoff(conversation_id: &str) -> Key {
    Key::new(format!("HANDOFF#{conversation_id}"), "HANDOFF")
}

/// A team's waiting line: `gsi1pk = WAIT#{team_id}`, `gsi1sk` =
/// `{0 VIP,1}#{requested_at:012}#{conversation_id}`.
pub fn waiting_line(team_id: &str) -> String {
    format!("WAIT#{team_id}")
}

/// A team's assigned tickets still to be announced: `gsi1pk = ANNOUNCE#{team_id}`, same
/// `gsi1sk` as the waiting line.
pub fn announce_list(team_id: &str) -> String {
    format!("ANNOUNCE#{team_id}")
}

/// A team-webhook delivery that failed and waits for its retry: `HANDOFF#{conversation_id}` /
/// `BRIDGE#{at_ms:013}#{delivery_id}` (`body`, `team`, `attempts`, `retry_at`), so a
/// conversation's pending deliveries are one query, oldest first. Due ones are in the
/// [`bridge_due`] partition of `gsi1`. Written and deleted by agent-assigner.
pub fn bridge_delivery(conversation_id: &str, at_ms: i64, delivery_id: &str) -> Key {
    Key::new(
        format!("HANDOFF#{conversation_id}"),
        format!("{BRIDGE_PREFIX}{:013}#{delivery_id}", at_ms.max(0)),
    )
}

/// The sort-key prefix of [`bridge_delivery`] items.
pub const BRIDGE_PREFIX: &str = "BRIDGE#";

/// Pending team-webhook deliveries by due time: `gsi1pk = BRIDGE`, `gsi1sk` =
/// `{retry_at:012}#{conversation_id}`.
pub const BRIDGE_DUE: &str = "BRIDGE";

pub fn bridge_due_sort(retry_at: i64, conversation_id: &str) -> String {
    format!("{:012}#{conversation_id}", retry_at.max(0))
}

/// The closed conversations an agent held, newest last: `gsi1pk = CLOSED#{agent_id}` on the
/// closed hand-off ticket, `gsi1sk` = `{closed_at:012}#{conversation_id}`. Written by whoever
/// closes (agent-api, agent-assigner, prechat-admin), read by agent-api's closed list.
pub fn closed_by_agent(agent_id: &str) -> String {
    format!("CLOSED#{agent_id}")
}

pub fn closed_sort(closed_at: i64, conversation_id: &str) -> String {
    activity_sort(closed_at, conversation_id)
}

/// A team's conversations in one hand-off state, for the leads' and admins' lists:
/// `gsi2pk = TEAM#{team_id}#{state}` (`waiting`, `assigned`, `closed`) on the hand-off ticket,
/// `gsi2sk` = [`activity_sort`] of the state change (`requested_at` while waiting,
/// `assigned_at`, `closed_at`), so a page is one `Query` per team, newest first
/// (`ScanIndexForward = false`), and a cursor is the last sort key shown. Written in the same
/// conditional `PutItem`/`UpdateItem` that moves the ticket's state (open, assign, transfer,
/// close), so the index never needs a second write; a cancelled hand-off (the contact stopped
/// or restarted) leaves the index, as it leaves the agent's closed list.
///
/// Why a second index and not more `gsi1` partitions: the ticket already uses `gsi1` for its
/// waiting line, announce list and its agent's closed list (one partition at a time), and a
/// ticket has one `gsi1pk`; an assigned ticket must be both in the announce list (until
/// announced) and in its team's list. Why per team and state: every listing asks for one state,
/// a lead for a few teams, so no query reads a conversation it then throws away; an admin's
/// "all teams" is one query per team (teams are few), never a scan. Why `KEYS_ONLY` (in the
/// template): a ticket is rewritten several times per state (announcement, notification
/// retries), and with `ALL` each of those writes would be copied into the index; keys only,
/// the index costs a write only when the state changes, holds ~100 bytes per ticket, and the
/// page's tickets are then read consistently from the table (one `BatchGetItem`), so a page
/// never shows a state the index has not caught up with.
pub fn team_list(team_id: &str, state: &str) -> String {
    format!("TEAM#{team_id}#{state}")
}

/// The sort key of the time-ordered lists (`gsi2sk`, and `gsi1sk` of [`closed_by_agent`]):
/// `{at:012}#{conversation_id}`; one format, so one cursor pages either.
pub fn activity_sort(at: i64, conversation_id: &str) -> String {
    format!("{:012}#{conversation_id}", at.max(0))
}

/// The conversation id of an [`activity_sort`] key.
pub fn activity_sort_conversation(sort: &str) -> Option<&str> {
    sort.split_once('#')
        .map(|(_, c)| c)
        .filter(|c| !c.is_empty())
}

// ---------------------------------------------------------------- agent API

/// Idempotency record of an agent API request: `IDEM#{conversation_id}#{key}` / `IDEM`
/// (`response` = the status and JSON body first answered, `expires_at`). Created only if
/// absent (conditional put) by agent-api, so a retried request answers what the first did.
pub fn idempotency(conversation_id: &str, key: &str) -> Key {
    Key::new(format!("IDEM#{conversation_id}#{key}"), "IDEM")
}

// ---------------------------------------------------------------- realtime (WebSocket API)

/// WebSocket connection: `WSCONN#{connection_id}` / `WSCONN` (`agent_id`, `connected_at` in
/// Unix ms, `expires_at`), in the agent's [`agent_connections`] partition of `gsi1` so a
/// pusher finds an agent's connections without a scan. Put by ws-connections on `$connect`,
/// deleted on `$disconnect`, and by any pusher that is answered 410 Gone.
pub fn ws_connection(connection_id: &str) -> Key {
    Key::new(format!("WSCONN#{connection_id}"), "WSCONN")
}

/// `gsi1` partition of one agent's WebSocket connections (`gsi1sk` = [`connection_sort`]).
pub fn agent_connections(agent_id: &str) -> String {
    format!("WSAGENT#{agent_id}")
}

/// `gsi1sk` of a connection: oldest first, then by id.
pub fn connection_sort(connected_at_ms: i64, connection_id: &str) -> String {
    format!("{:013}#{connection_id}", connected_at_ms.max(0))
}

// ---------------------------------------------------------------- webchat

/// Rate-limit counter: `RATE#{scope}#{minute}` / `RATE` (`hits`, `expires_at` a few minutes
/// after the minute), one per scope (`submit.ip.{ip}`, `message.visitor.{id}`, ...) and Unix
/// minute. Counted up by webchat with one conditional `UpdateItem ADD`; never read.
pub fn rate_limit(scope: &str, minute: i64) -> Key {
    Key::new(format!("RATE#{scope}#{minute}"), "RATE")
}

const PROFILE: &str = "PROFILE";
const CONV: &str = "CONV";
const APPLIED: &str = "APPLIED";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_kind_has_its_own_key() {
        let keys = [
            contact("1", &"k".into()),
            applied("1", "m"),
            conversation("c"),
            send_record("d"),
            sent_message("w"),
            refused("c", "d"),
            undelivered("c", "w"),
            survey_version("s", 1),
            agent("a"),
            team("t"),
            routing(),
            handoff("c"),
            transcript_entry("c", "T#0000000000001#000000"),
            idempotency("c", "k"),
            ws_connection("c"),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(conversation_id_of(&conversation("c-1").pk), Some("c-1"));
    }

    #[test]
    fn reminder_sort_keys_order_by_due_time_and_stay_below_the_bound() {
        let early = reminder_sort(99, "c9");
        let late = reminder_sort(1_800_000_000, "c1");
        assert!(early < late);
        assert!(late <= reminder_sort_due_by(1_800_000_000));
        assert!(reminder_sort(1_800_000_001, "c0") > reminder_sort_due_by(1_800_000_000));
        assert!(reminder_partition("c3abc").starts_with("REMIND#"));
    }

    #[test]
    fn activity_keys_order_by_time_and_name_their_conversation() {
        assert!(activity_sort(99, "c-z") < activity_sort(1_800_000_000, "c-a"));
        assert_eq!(closed_sort(5, "c1"), activity_sort(5, "c1"));
        let k = activity_sort(1_800_000_000, "c-1:x");
        assert_eq!(activity_sort_conversation(&k), Some("c-1:x"));
        assert_eq!(activity_sort_conversation("000000000001#"), None);
        assert_eq!(team_list("support", "closed"), "TEAM#support#closed");
    }

    #[test]
    fn a_conversation_s_day_is_the_utc_day_it_started() {
        // 1_790_000_000 = 2026-09-21T14:13:20Z.
        assert_eq!(conversation_day(1_790_000_000), "CONVDAY#2026-09-21");
        assert_eq!(conversation_day(1_789_948_800), "CONVDAY#2026-09-21");
        assert_eq!(conversation_day(1_789_948_799), "CONVDAY#2026-09-20");
        assert_eq!(conversation_day(-5), "CONVDAY#1970-01-01");
    }
}
