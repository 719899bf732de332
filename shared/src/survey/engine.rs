//! The survey engine: a pure function from (contact, conversation, inbound message, survey,
//! now) to (new contact, new conversation, effects). No I/O and no AWS types: the entrypoint
//! loads the state, calls [`on_message`], persists the result with one conditional write and
//! sends the effects. The timer's [`on_timer`] takes its own input (contact, conversation,
//! survey, now): a reminder answers no message of the contact's. How a question looks on
//! WhatsApp is [`super::ask`]'s.
//!
//! Conversation states: `surveying` (awaiting the answer to `question`), `handed_off` (waiting
//! for or with an agent: silent except for keywords), `closed`, `opted_out`. Every outbound
//! message carries a deterministic dedup id (`{conversation}:{step}:{n}`; `step` advances with
//! every reply the engine makes; `read:{message_id}` for the mark-as-read of an inbound
//! message), so re-sending the effects of an applied message is harmless.
//!
//! The engine also decides the transcript lines of each step (`Effects::transcript`, see
//! [`crate::transcript`]): the contact's message, also after the hand-off where it says
//! nothing, then each accepted answer, question and text in order, the outbound ones naming
//! their line. Their ids come from the conversation's `transcript_seq`, which moves on with the
//! same commit, so a message's lines are written exactly once.
//!
//! Time: `now_ms` is the caller's clock in Unix milliseconds. The conversation keeps whole
//! seconds; transcript entries keep the milliseconds, because the transcript is read with a
//! cursor (the entry id starts with its time) and an agent's reply is stamped in milliseconds:
//! a contact's answer in the same second must sort after it. A message's own timestamp only moves `last_inbound_at`
//! (which opens WhatsApp's 24-hour window), and never past `now`: a message dated in the
//! future cannot stretch the window or outdate the messages after it.

use std::collections::BTreeMap;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::answer::{self, AnswerContext, Rejection};
use super::ask;
use super::definition::{Fallback, OnExpiry, Question, QuestionKind, Survey, Target, Texts};
use super::locale;
use super::text::{normalise, render};
use crate::routing::job::{
    AssignRequest, AssignmentJob, CancelReason, CancelRequest, HandoffReason, RelayRequest,
};
use crate::transcript::{self, Author, Body, Entry, TranscriptRef};
use crate::whatsapp::event::{InboundMessage, MessageContent, WebFormSubmission};
use crate::whatsapp::outbound::{OutboundBody, OutboundMessage, Recipient};
use crate::whatsapp::{ContactKey, ContactRef};

/// What prechat knows about a contact, across conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    pub phone_number_id: String,
    /// BSUID when Meta sent one, else the phone number ([`ContactRef::key`]).
    pub key: ContactKey,
    /// Who the contact is, as Meta last told us (ids, profile name, username); stored flat,
    /// beside `key`.
    #[serde(flatten)]
    pub identity: ContactRef,
    /// Saved answers (`save_to: contact.<field>`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentRecord>,
    /// The contact sent the stop keyword: no automated messages until they restart.
    #[serde(default)]
    pub opted_out: bool,
    /// Conversations started so far (a contact with one or more is "returning").
    #[serde(default)]
    pub conversations: u32,
}

/// GDPR consent as given: the exact text shown, the policy and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub accepted: bool,
    pub text: String,
    pub policy_url: String,
    pub policy_version: String,
    pub language: String,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Surveying,
    HandedOff,
    Closed,
    OptedOut,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Surveying => "surveying",
            Status::HandedOff => "handed_off",
            Status::Closed => "closed",
            Status::OptedOut => "opted_out",
        }
    }
}

/// One conversation: a survey run and what follows it, until closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub survey_id: String,
    /// The definition version the conversation started on; it finishes on it.
    pub survey_version: u32,
    pub status: Status,
    /// The question awaiting an answer (set exactly when surveying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// Invalid answers to the current question so far.
    #[serde(default)]
    pub attempts: u32,
    /// Advances with every reply the engine makes: part of the outbound dedup ids.
    pub step: u32,
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub language: String,
    pub started_at: i64,
    /// Last activity of the contact (drives reminders and expiry).
    pub updated_at: i64,
    pub last_inbound_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffReason>,
    /// The step a reminder was sent at (one reminder per question asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminded_step: Option<u32>,
    /// Invalid answers over the whole conversation (for reporting).
    #[serde(default)]
    pub invalid_answers: u32,
    /// Transcript entries the engine wrote so far: the next entry's sequence number
    /// ([`transcript::engine_entry_id`]), so ids are unique and ordered within a second.
    #[serde(default)]
    pub transcript_seq: u32,
}

impl Conversation {
    /// Whether the conversation still belongs to the contact's next message: open, or closed
    /// less than the survey's reopen window ago.
    pub fn continues(&self, reopen_window_minutes: u32, now: i64) -> bool {
        match self.status {
            Status::Surveying | Status::HandedOff => {
                self.closed_at.is_none() || self.within(reopen_window_minutes, now)
            }
            Status::Closed => self.within(reopen_window_minutes, now),
            Status::OptedOut => false,
        }
    }

    /// Whether the conversation is still running: surveying or handed off, and closed by no
    /// one. A new web form submission is ignored while it is.
    pub fn is_open(&self) -> bool {
        matches!(self.status, Status::Surveying | Status::HandedOff) && self.closed_at.is_none()
    }

    fn within(&self, window_minutes: u32, now: i64) -> bool {
        self.closed_at
            .is_some_and(|c| now.saturating_sub(c) < i64::from(window_minutes) * 60)
    }
}

/// What the engine wants done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Marks the inbound message read (the Graph API's mark-as-read, typing indicator on when
    /// replies follow): set for every message the survey answers, never after the hand-off
    /// (there only an agent reading it may turn the ticks blue). Goes out before `messages`.
    pub read: Option<OutboundMessage>,
    /// To the outbound queue, in order.
    pub messages: Vec<OutboundMessage>,
    /// To the assignment queue: a hand-off ([`AssignmentJob::Assign`]), the end of one
    /// ([`AssignmentJob::Cancel`]: stop or restart while handed off), or a message the contact
    /// wrote after it ([`AssignmentJob::Relay`], for the team's webhook).
    pub job: Option<AssignmentJob>,
    /// The transcript lines of this step, in order: the contact's message (every type but
    /// system notices, also after the hand-off), then what the survey recorded and said (each
    /// accepted answer, each question asked or asked again, each text; the outbound ones
    /// `pending`, their message naming the entry).
    pub transcript: Vec<Entry>,
}

/// Why the engine did what it did (for logs and tests; never contains personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Started,
    Accepted,
    Rejected(Rejection),
    Skipped,
    Completed,
    HandedOff(HandoffReason),
    Ended,
    OptedOut,
    Restarted,
    Resumed,
    Reopened,
    /// Nothing to say (handed off, opted out, a system notice...).
    Silent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub contact: ContactState,
    pub conversation: Option<Conversation>,
    pub effects: Effects,
    pub action: Action,
}

/// A deterministic conversation id from the message that opened it (ASCII, SQS-safe).
pub fn conversation_id(
    phone_number_id: &str,
    contact_key: &ContactKey,
    message_id: &str,
) -> String {
    let digest = Sha256::digest(format!("{phone_number_id}|{contact_key}|{message_id}").as_bytes());
    format!("c{}", &hex::encode(digest)[..31])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Restart,
    Human,
    Stop,
    Skip,
}

fn keyword(survey: &Survey, content: &MessageContent) -> Option<Keyword> {
    let MessageContent::Text { body } = content else {
        return None;
    };
    let n = normalise(body);
    let kw = &survey.keywords;
    let hit = |m: &BTreeMap<String, Vec<String>>| m.values().flatten().any(|w| normalise(w) == n);
    if hit(&kw.stop) {
        Some(Keyword::Stop)
    } else if hit(&kw.human) {
        Some(Keyword::Human)
    } else if hit(&kw.restart) {
        Some(Keyword::Restart)
    } else if hit(&kw.skip) {
        Some(Keyword::Skip)
    } else {
        None
    }
}

/// Handles one message from the contact. `conversation` is the contact's conversation when it
/// [`Conversation::continues`], and `survey` the definition it runs on; otherwise `None` and the
/// survey to start.
pub fn on_message(
    mut contact: ContactState,
    conversation: Option<Conversation>,
    msg: &InboundMessage,
    survey: &Survey,
    now_ms: i64,
) -> Outcome {
    let now = now_ms.div_euclid(1000);
    update_profile(&mut contact, &msg.contact);
    let kw = keyword(survey, &msg.content);
    let mut run = Run {
        survey,
        contact,
        msg: Some(msg),
        now,
        now_ms,
        effects: Effects::default(),
        lines: Vec::new(),
    };

    // A system notice (e.g. "user changed number") is not the contact talking to us.
    if matches!(msg.content, MessageContent::System { .. }) {
        return run.finish(conversation, Action::Silent);
    }

    if run.contact.opted_out {
        if kw != Some(Keyword::Restart) {
            let conv = conversation.map(|mut c| {
                c.last_inbound_at = inbound_at(msg, now).max(c.last_inbound_at);
                c
            });
            return run.finish(conv, Action::Silent);
        }
        run.contact.opted_out = false;
        let conv = run.start(msg, false);
        return run.finish(Some(conv), Action::Restarted);
    }

    let Some(mut conv) = conversation else {
        // A reply to a business-initiated message (template button, or quoting one of our
        // messages) does not open a survey: a human follows up.
        let business_initiated = matches!(msg.content, MessageContent::TemplateButton { .. })
            || msg.context_message_id.is_some();
        if business_initiated {
            let mut conv = run.new_conversation(msg);
            run.handoff(&mut conv, HandoffReason::Requested, false);
            return run.finish(Some(conv), Action::HandedOff(HandoffReason::Requested));
        }
        return match kw {
            Some(Keyword::Stop) => {
                let mut conv = run.new_conversation(msg);
                run.opt_out(&mut conv);
                run.finish(Some(conv), Action::OptedOut)
            }
            Some(Keyword::Human) => {
                let mut conv = run.new_conversation(msg);
                run.handoff(&mut conv, HandoffReason::Requested, true);
                run.finish(Some(conv), Action::HandedOff(HandoffReason::Requested))
            }
            _ => {
                let conv = run.start(msg, true);
                run.finish(Some(conv), Action::Started)
            }
        };
    };

    let previous_activity = conv.updated_at;
    conv.last_inbound_at = inbound_at(msg, now).max(conv.last_inbound_at);
    conv.updated_at = now;

    match conv.status {
        Status::OptedOut => run.finish(Some(conv), Action::Silent),
        Status::Closed => {
            // Within the reopen window: back to the agents, with what we know.
            let reason = conv.handoff.unwrap_or(HandoffReason::Requested);
            conv.closed_at = None;
            run.line(
                Author::System,
                Body::Event {
                    event: transcript::Event::Reopened,
                },
                None,
            );
            run.handoff(&mut conv, reason, false);
            run.finish(Some(conv), Action::Reopened)
        }
        Status::HandedOff => match kw {
            Some(Keyword::Stop) => {
                run.opt_out(&mut conv);
                run.finish(Some(conv), Action::OptedOut)
            }
            Some(Keyword::Restart) => {
                run.restart(&mut conv);
                run.finish(Some(conv), Action::Restarted)
            }
            _ => relayed(run.finish(Some(conv), Action::Silent)),
        },
        Status::Surveying => {
            match kw {
                Some(Keyword::Stop) => {
                    run.opt_out(&mut conv);
                    return run.finish(Some(conv), Action::OptedOut);
                }
                Some(Keyword::Human) => {
                    run.handoff(&mut conv, HandoffReason::Requested, true);
                    return run.finish(Some(conv), Action::HandedOff(HandoffReason::Requested));
                }
                Some(Keyword::Restart) => {
                    run.restart(&mut conv);
                    return run.finish(Some(conv), Action::Restarted);
                }
                _ => {}
            }
            let expire = survey
                .timeouts
                .expire_after_minutes
                .map(|m| i64::from(m) * 60);
            if expire.is_some_and(|e| now.saturating_sub(previous_activity) >= e) {
                return match survey.timeouts.on_expiry {
                    OnExpiry::Restart => {
                        run.restart(&mut conv);
                        run.finish(Some(conv), Action::Restarted)
                    }
                    OnExpiry::Resume => {
                        conv.attempts = 0;
                        run.bump(&mut conv);
                        let text = run.text(survey.texts.welcome_back.as_ref(), &conv);
                        if !text.is_empty() {
                            run.say_text(&conv, text);
                        }
                        run.ask_current(&conv, None);
                        run.finish(Some(conv), Action::Resumed)
                    }
                };
            }
            let action = run.answer(&mut conv, msg, kw == Some(Keyword::Skip));
            run.finish(Some(conv), action)
        }
    }
}

/// Applies a web visitor's submitted pre-chat form (validated and normalised at the edge by
/// [`super::web::submit`]) as the survey's completion: the state and effects the engine would
/// hold after the same answers on WhatsApp. `conversation` is the contact's current one as
/// stored (not filtered by [`Conversation::continues`]: a form reopens nothing), `survey` the
/// version the form was built from.
///
/// `None` while the visitor has an open conversation ([`Conversation::is_open`]): a second
/// submission (another tab, a double click) starts nothing. Otherwise (no conversation, or a
/// closed or opted-out one) a new conversation, handed off as completed, with:
/// - the contact: the form's profile name, its `fields` merged over the known ones, its consent
///   record, one conversation more; the form is the visitor asking for a chat, so it ends an
///   opt-out as the restart keyword does on WhatsApp;
/// - the conversation: the form's `answers` and `vars`, its language (the survey's default when
///   the survey does not have it), `last_inbound_at` the submission time (never past `now`);
/// - the effects: one `Answer` transcript entry per answer in survey order (then any answer
///   naming no question of this version, by key), the completion text and its entry, and the
///   [`AssignmentJob::Assign`] of a completed survey. No mark-as-read: there is no message.
pub fn on_web_form(
    mut contact: ContactState,
    conversation: Option<Conversation>,
    form: &WebFormSubmission,
    survey: &Survey,
    now_ms: i64,
) -> Option<Outcome> {
    let now = now_ms.div_euclid(1000);
    if conversation.as_ref().is_some_and(Conversation::is_open) {
        return None;
    }
    update_profile(&mut contact, &form.contact);
    contact.opted_out = false;
    contact
        .fields
        .extend(form.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(consent) = &form.consent {
        contact.consent = Some(consent.clone());
    }
    contact.conversations = contact.conversations.saturating_add(1);
    let language = if survey.languages.contains(&form.language) {
        form.language.clone()
    } else {
        survey.default_language.clone()
    };
    let mut conv = Conversation {
        id: conversation_id(&form.phone_number_id, &contact.key, &form.submission_id),
        survey_id: survey.id.clone(),
        survey_version: survey.version,
        status: Status::Surveying,
        question: None,
        attempts: 0,
        step: 0,
        answers: form.answers.clone(),
        vars: form.vars.clone(),
        language,
        started_at: now,
        updated_at: now,
        last_inbound_at: form.timestamp.min(now),
        closed_at: None,
        handoff: None,
        reminded_step: None,
        invalid_answers: 0,
        transcript_seq: 0,
    };
    let mut run = Run {
        survey,
        contact,
        msg: None,
        now,
        now_ms,
        effects: Effects::default(),
        lines: Vec::new(),
    };
    let in_survey = survey
        .questions
        .iter()
        .filter_map(|q| form.answers.get_key_value(&q.key));
    let others = form
        .answers
        .iter()
        .filter(|(k, _)| survey.question(k).is_none());
    for (question, value) in in_survey.chain(others) {
        run.line(
            Author::System,
            Body::Answer {
                question: question.clone(),
                value: value.clone(),
            },
            None,
        );
    }
    run.handoff(&mut conv, HandoffReason::Completed, true);
    Some(run.finish(Some(conv), Action::Completed))
}

/// When the contact wrote, as far as the 24-hour window is concerned: the message's timestamp,
/// but never later than `now` (a clock ahead of ours must not keep the window open longer).
fn inbound_at(msg: &InboundMessage, now: i64) -> i64 {
    msg.timestamp.min(now)
}

/// When the timer should look at a conversation again for a reminder: once per question
/// asked, `reminder_after_minutes` after the contact's last activity; `None` when no reminder
/// can be due (not surveying, already reminded, or no reminder configured).
pub fn reminder_due(conv: &Conversation, survey: &Survey) -> Option<i64> {
    if conv.status != Status::Surveying || conv.reminded_step == Some(conv.step) {
        return None;
    }
    let after = survey.timeouts.reminder_after_minutes?;
    Some(conv.updated_at.saturating_add(i64::from(after) * 60))
}

/// A reminder due for a silent conversation, if any (evaluated by the timer).
pub fn on_timer(
    contact: &ContactState,
    mut conv: Conversation,
    survey: &Survey,
    now_ms: i64,
) -> Option<(Conversation, Effects)> {
    let now = now_ms.div_euclid(1000);
    if conv.status != Status::Surveying
        || contact.opted_out
        || conv.reminded_step == Some(conv.step)
    {
        return None;
    }
    let after = i64::from(survey.timeouts.reminder_after_minutes?) * 60;
    if now.saturating_sub(conv.updated_at) < after {
        return None;
    }
    if let Some(expire) = survey.timeouts.expire_after_minutes {
        if now.saturating_sub(conv.updated_at) >= i64::from(expire) * 60 {
            return None;
        }
    }
    // Only inside the 24-hour window: outside it only templates may be sent.
    if now.saturating_sub(conv.last_inbound_at) >= 24 * 3600 {
        return None;
    }
    let texts = survey.texts.reminder.as_ref()?;
    let mut run = Run {
        survey,
        contact: contact.clone(),
        msg: None,
        now,
        now_ms,
        effects: Effects::default(),
        lines: Vec::new(),
    };
    run.bump(&mut conv);
    let text = run.text(Some(texts), &conv);
    run.say_text(&conv, text);
    run.record(&mut conv);
    conv.reminded_step = Some(conv.step);
    Some((conv, run.effects))
}

/// The conversation's next transcript entry id (and the sequence moved on).
fn next_entry_id(conv: &mut Conversation, at_ms: i64) -> String {
    let id = transcript::engine_entry_id(at_ms, conv.transcript_seq);
    conv.transcript_seq = conv.transcript_seq.saturating_add(1);
    id
}

fn update_profile(contact: &mut ContactState, from: &ContactRef) {
    let known = &mut contact.identity;
    if let Some(u) = from.user_id.as_ref().filter(|s| !s.is_empty()) {
        known.user_id = Some(u.clone());
    }
    if let Some(w) = from.wa_id.as_ref().filter(|s| !s.is_empty()) {
        known.wa_id = Some(w.clone());
    }
    if let Some(n) = from.profile_name.as_ref().filter(|s| !s.trim().is_empty()) {
        known.profile_name = Some(n.clone());
    }
    if let Some(n) = from.username.as_ref().filter(|s| !s.trim().is_empty()) {
        known.username = Some(n.clone());
    }
    if let (true, Some(key)) = (contact.key.is_empty(), from.key()) {
        contact.key = key;
    }
}

struct Run<'a> {
    survey: &'a Survey,
    contact: ContactState,
    /// The message being handled (marked read when answered); `None` for the timer's
    /// reminder, which has no message of the contact's.
    msg: Option<&'a InboundMessage>,
    /// Unix seconds (what the conversation stores).
    now: i64,
    /// The same instant in milliseconds: transcript entries' times, so a line written in the
    /// same second as an agent's reply still sorts after it.
    now_ms: i64,
    effects: Effects,
    /// What the survey recorded and said so far, for the transcript ([`Run::record`]).
    lines: Vec<Line>,
}

/// A contact message after the hand-off goes on to the assigner ([`AssignmentJob::Relay`],
/// in the contact's FIFO group, so the team's help desk gets the messages in order): its
/// transcript entry, with a job id derived from it (one job per message, the same on redelivery).
fn relayed(mut out: Outcome) -> Outcome {
    let (Some(conv), None) = (&out.conversation, &out.effects.job) else {
        return out;
    };
    let Some(entry) = out
        .effects
        .transcript
        .iter()
        .find(|e| e.author == Author::Contact)
    else {
        return out;
    };
    out.effects.job = Some(AssignmentJob::Relay(RelayRequest {
        job_id: format!("{}:relay:{}", conv.id, entry.id),
        phone_number_id: out.contact.phone_number_id.clone(),
        contact: out.contact.identity.clone(),
        conversation_id: conv.id.clone(),
        entry: entry.clone(),
    }));
    out
}

/// A transcript line before it has its id: its author and body, and the index in
/// `Effects::messages` of the outbound message it is.
struct Line {
    author: Author,
    body: Body,
    message: Option<usize>,
}

impl<'a> Run<'a> {
    fn finish(mut self, mut conversation: Option<Conversation>, action: Action) -> Outcome {
        if let Some(conv) = conversation.as_mut() {
            self.record(conv);
            self.mark_read(conv);
        }
        Outcome {
            contact: self.contact,
            conversation,
            effects: self.effects,
            action,
        }
    }

    /// Marks the message read when the survey handles it: every message it answers (with the
    /// typing indicator, as the replies follow) and any other message while a question is
    /// open. Not system notices, nothing while opted out, and nothing handed off silently:
    /// after the hand-off only an agent reading a message may mark it read.
    fn mark_read(&mut self, conv: &Conversation) {
        let answered = !self.effects.messages.is_empty();
        let asking = conv.status == Status::Surveying;
        let Some(msg) = self.msg else {
            return;
        };
        if matches!(msg.content, MessageContent::System { .. })
            || msg.message_id.is_empty()
            || !(answered || asking)
        {
            return;
        }
        self.effects.read = Some(OutboundMessage {
            phone_number_id: self.contact.phone_number_id.clone(),
            recipient: Recipient::from(&self.contact.identity),
            dedup_id: format!("read:{}", msg.message_id),
            conversation_id: Some(conv.id.clone()),
            last_inbound_at: None,
            body: OutboundBody::MarkRead {
                message_id: msg.message_id.clone(),
                typing_indicator: answered,
            },
            transcript: None,
        });
    }

    /// Turns the step's lines into transcript entries: the contact's message first, then the
    /// lines in order; ids from the conversation's sequence, the outbound messages pointed at
    /// their entries.
    fn record(&mut self, conv: &mut Conversation) {
        let at = self.now_ms;
        let inbound = self.msg.and_then(|m| {
            transcript::inbound_body(&m.content).map(|body| {
                let wamid = Some(m.message_id.clone()).filter(|id| !id.is_empty());
                (body, wamid)
            })
        });
        if let Some((body, wamid)) = inbound {
            let id = next_entry_id(conv, at);
            self.effects.transcript.push(Entry {
                id,
                at,
                author: Author::Contact,
                body,
                status: None,
                wamid,
            });
        }
        for line in std::mem::take(&mut self.lines) {
            let id = next_entry_id(conv, at);
            let outbound = line.message.and_then(|i| self.effects.messages.get_mut(i));
            let status = outbound.map(|m| {
                m.transcript = Some(TranscriptRef {
                    conversation_id: conv.id.clone(),
                    entry_id: id.clone(),
                    agent_id: None,
                });
                transcript::DeliveryStatus::Pending
            });
            self.effects.transcript.push(Entry {
                id,
                at,
                author: line.author,
                body: line.body,
                status,
                wamid: None,
            });
        }
    }

    fn line(&mut self, author: Author, body: Body, message: Option<usize>) {
        self.lines.push(Line {
            author,
            body,
            message,
        });
    }

    fn new_conversation(&mut self, msg: &InboundMessage) -> Conversation {
        let survey = self.survey;
        let language = self.initial_language();
        self.contact.conversations = self.contact.conversations.saturating_add(1);
        Conversation {
            id: conversation_id(&msg.phone_number_id, &self.contact.key, &msg.message_id),
            survey_id: survey.id.clone(),
            survey_version: survey.version,
            status: Status::Surveying,
            question: None,
            attempts: 0,
            step: 0,
            answers: BTreeMap::new(),
            vars: BTreeMap::new(),
            language,
            started_at: self.now,
            updated_at: self.now,
            last_inbound_at: inbound_at(msg, self.now),
            closed_at: None,
            handoff: None,
            reminded_step: None,
            invalid_answers: 0,
            transcript_seq: 0,
        }
    }

    /// A saved preference, else the language of the phone number's country, else the default.
    fn initial_language(&self) -> String {
        let langs = &self.survey.languages;
        let saved = self
            .contact
            .fields
            .get("language")
            .filter(|l| langs.contains(l));
        let by_phone = self
            .contact
            .identity
            .wa_id
            .as_deref()
            .and_then(locale::country_of_phone)
            .and_then(locale::language_of_country)
            .map(str::to_owned)
            .filter(|l| langs.contains(l));
        saved
            .cloned()
            .or(by_phone)
            .unwrap_or_else(|| self.survey.default_language.clone())
    }

    /// Opens a new conversation: greeting, then the first question.
    fn start(&mut self, msg: &InboundMessage, greet: bool) -> Conversation {
        let returning = self.contact.conversations > 0;
        let mut conv = self.new_conversation(msg);
        self.bump(&mut conv);
        if greet {
            let t = &self.survey.texts;
            let texts = if returning {
                &t.greeting_returning
            } else {
                &t.greeting_new
            };
            let text = self.text(Some(texts), &conv);
            self.say_text(&conv, text);
        }
        self.advance(&mut conv, 0);
        conv
    }

    fn restart(&mut self, conv: &mut Conversation) {
        self.cancel_handoff(conv, CancelReason::Restarted);
        conv.status = Status::Surveying;
        conv.answers.clear();
        conv.vars.clear();
        conv.attempts = 0;
        conv.handoff = None;
        conv.closed_at = None;
        conv.question = None;
        self.bump(conv);
        let text = self.text(Some(&self.survey.texts.greeting_returning), conv);
        self.say_text(conv, text);
        self.advance(conv, 0);
    }

    fn bump(&self, conv: &mut Conversation) {
        conv.step = conv.step.saturating_add(1);
    }

    /// Moves to the first question at or after `from` that applies; completes when none does.
    fn advance(&mut self, conv: &mut Conversation, from: usize) {
        conv.attempts = 0;
        let next = self
            .survey
            .questions
            .iter()
            .skip(from)
            .find(|q| self.applies(q, conv));
        match next {
            Some(q) => {
                conv.status = Status::Surveying;
                conv.question = Some(q.key.clone());
                self.ask(conv, q, None);
            }
            None => self.handoff(conv, HandoffReason::Completed, true),
        }
    }

    fn applies(&self, q: &Question, conv: &Conversation) -> bool {
        if let Some(w) = &q.when {
            if !w.matches(&conv.answers) {
                return false;
            }
        }
        if q.ask_if_missing {
            if let Some(field) = q.save_to.contact_field() {
                if self.knows(field, q) {
                    return false;
                }
            }
        }
        true
    }

    /// Whether a contact field is already known (so `ask_if_missing` skips the question).
    fn knows(&self, field: &str, q: &Question) -> bool {
        if let QuestionKind::Consent { policy_version, .. } = &q.kind {
            // Consent to an older policy version does not count.
            return self
                .contact
                .consent
                .as_ref()
                .is_some_and(|c| c.accepted && &c.policy_version == policy_version);
        }
        if field == "phone" && self.contact.identity.wa_id.is_some() {
            return true;
        }
        self.contact
            .fields
            .get(field)
            .is_some_and(|v| !v.is_empty())
    }

    fn answer(&mut self, conv: &mut Conversation, msg: &InboundMessage, skip_word: bool) -> Action {
        let survey = self.survey;
        let Some(idx) = conv.question.as_deref().and_then(|k| survey.position(k)) else {
            // A state from a definition that lost its question cannot be resumed: start over.
            self.advance(conv, 0);
            return Action::Restarted;
        };
        let Some(q) = survey.questions.get(idx) else {
            return Action::Silent;
        };
        if skip_word && !q.required {
            self.bump(conv);
            self.advance(conv, idx + 1);
            return if conv.status == Status::Surveying {
                Action::Skipped
            } else {
                Action::Completed
            };
        }
        let today = DateTime::from_timestamp(self.now, 0)
            .map(|d| d.date_naive())
            .unwrap_or_default();
        let calling_code = self
            .contact
            .identity
            .wa_id
            .as_deref()
            .and_then(answer::calling_code_of);
        let ctx = AnswerContext {
            language: &conv.language,
            today,
            calling_code,
        };
        let result = if skip_word {
            Err(Rejection::NotAnOption)
        } else {
            answer::validate(q, &msg.content, &ctx)
        };
        match result {
            Ok(accepted) => {
                self.save(conv, q, accepted.0.clone());
                self.bump(conv);
                if let QuestionKind::Consent { .. } = q.kind {
                    if accepted.0 == "no" {
                        return self.fallback(conv, q, idx);
                    }
                }
                self.advance(conv, idx + 1);
                match conv.status {
                    Status::Surveying => Action::Accepted,
                    Status::HandedOff => Action::Completed,
                    _ => Action::Accepted,
                }
            }
            Err(rejection) => {
                conv.attempts = conv.attempts.saturating_add(1);
                conv.invalid_answers = conv.invalid_answers.saturating_add(1);
                self.bump(conv);
                if conv.attempts >= q.max_attempts {
                    return self.fallback(conv, q, idx);
                }
                let t = &survey.texts;
                let retry = if rejection == Rejection::NotText {
                    self.text(Some(&t.text_only), conv)
                } else {
                    self.text(Some(q.retry.as_ref().unwrap_or(&t.invalid)), conv)
                };
                self.ask(conv, q, Some(retry));
                Action::Rejected(rejection)
            }
        }
    }

    fn fallback(&mut self, conv: &mut Conversation, q: &Question, idx: usize) -> Action {
        match q.fallback {
            Fallback::Skip => {
                self.advance(conv, idx + 1);
                if conv.status == Status::Surveying {
                    Action::Skipped
                } else {
                    Action::Completed
                }
            }
            Fallback::Handoff => {
                self.handoff(conv, HandoffReason::Fallback, true);
                Action::HandedOff(HandoffReason::Fallback)
            }
            Fallback::End => {
                self.cancel_handoff(conv, CancelReason::Ended);
                conv.status = Status::Closed;
                conv.question = None;
                conv.closed_at = Some(self.now);
                let text = self.text(Some(&self.survey.texts.ended), conv);
                self.say_text(conv, text);
                Action::Ended
            }
        }
    }

    fn save(&mut self, conv: &mut Conversation, q: &Question, value: String) {
        conv.answers.insert(q.key.clone(), value.clone());
        self.line(
            Author::System,
            Body::Answer {
                question: q.key.clone(),
                value: value.clone(),
            },
            None,
        );
        if let QuestionKind::Consent {
            policy_url,
            policy_version,
        } = &q.kind
        {
            self.contact.consent = Some(ConsentRecord {
                accepted: value == "yes",
                text: self.survey.pick(&q.prompt, &conv.language).to_owned(),
                policy_url: policy_url.clone(),
                policy_version: policy_version.clone(),
                language: conv.language.clone(),
                at: self.now,
            });
        }
        match &q.save_to {
            Target::Contact(field) => {
                if field == "language" && self.survey.languages.contains(&value) {
                    conv.language = value.clone();
                }
                self.contact.fields.insert(field.clone(), value);
            }
            Target::Var(name) => {
                conv.vars.insert(name.clone(), value);
            }
        }
    }

    fn handoff(&mut self, conv: &mut Conversation, reason: HandoffReason, say: bool) {
        conv.status = Status::HandedOff;
        conv.question = None;
        conv.attempts = 0;
        conv.handoff = Some(reason);
        // A fresh step: the hand-off text and the job must never reuse the dedup ids of what
        // was sent before.
        self.bump(conv);
        if say {
            let t = &self.survey.texts;
            let texts = if reason == HandoffReason::Completed {
                &t.completion
            } else {
                &t.handoff
            };
            let text = self.text(Some(texts), conv);
            self.say_text(conv, text);
        }
        // A restart whose survey completed at once: one message yields one job, so the new
        // hand-off itself replaces the open one instead of a `Cancel`.
        let supersedes = matches!(self.effects.job, Some(AssignmentJob::Cancel(_)));
        let request = AssignRequest {
            job_id: format!("{}:assign:{}", conv.id, conv.step),
            phone_number_id: self.contact.phone_number_id.clone(),
            contact: self.contact_ref(),
            conversation_id: conv.id.clone(),
            language: conv.language.clone(),
            reason,
            answers: conv.answers.clone(),
            fields: self.contact.fields.clone(),
            vars: conv.vars.clone(),
            last_inbound_at: conv.last_inbound_at,
            requested_at: self.now,
            supersedes,
        };
        self.effects.job = Some(AssignmentJob::Assign(request));
    }

    /// How the assignment jobs name the contact (their FIFO group comes from it).
    fn contact_ref(&self) -> ContactRef {
        self.contact.identity.clone()
    }

    /// A handed-off conversation (waiting for or with an agent) that the contact stops,
    /// restarts or ends: its ticket is cancelled and the agent's slot freed. Called before the
    /// conversation changes state; the step the caller bumps next keeps the id unique.
    fn cancel_handoff(&mut self, conv: &Conversation, reason: CancelReason) {
        if conv.status != Status::HandedOff {
            return;
        }
        self.effects.job = Some(AssignmentJob::Cancel(CancelRequest {
            job_id: format!("{}:cancel:{}", conv.id, conv.step),
            phone_number_id: self.contact.phone_number_id.clone(),
            contact: self.contact_ref(),
            conversation_id: conv.id.clone(),
            reason,
            requested_at: self.now,
        }));
    }

    fn opt_out(&mut self, conv: &mut Conversation) {
        self.cancel_handoff(conv, CancelReason::Stopped);
        self.contact.opted_out = true;
        conv.status = Status::OptedOut;
        conv.question = None;
        conv.closed_at = Some(self.now);
        self.bump(conv);
        let text = self.text(Some(&self.survey.texts.opted_out), conv);
        self.say_text(conv, text);
    }

    fn ask_current(&mut self, conv: &Conversation, prefix: Option<String>) {
        if let Some(q) = conv
            .question
            .as_deref()
            .and_then(|k| self.survey.question(k))
        {
            self.ask(conv, q, prefix);
        }
    }

    /// Sends a question ([`ask::question_body`]). `prefix` (a retry text) goes before the
    /// prompt.
    fn ask(&mut self, conv: &Conversation, q: &Question, prefix: Option<String>) {
        let prompt = self.text(Some(&q.prompt), conv);
        let body = match prefix {
            Some(p) => format!("{p}\n\n{prompt}"),
            None => prompt,
        };
        let text = body.clone();
        let out = ask::question_body(self.survey, q, &conv.language, body);
        let n = self.say(conv, out);
        let question = q.key.clone();
        self.line(Author::Bot, Body::Question { question, text }, Some(n));
    }

    fn say_text(&mut self, conv: &Conversation, body: String) {
        let text = body.clone();
        let n = self.say(
            conv,
            OutboundBody::Text {
                body,
                preview_url: false,
            },
        );
        self.line(Author::Bot, Body::Text { text }, Some(n));
    }

    /// Queues a message; its index in `Effects::messages`.
    fn say(&mut self, conv: &Conversation, body: OutboundBody) -> usize {
        let n = self.effects.messages.len();
        self.effects.messages.push(OutboundMessage {
            phone_number_id: self.contact.phone_number_id.clone(),
            recipient: Recipient::from(&self.contact.identity),
            dedup_id: format!("{}:{}:{}", conv.id, conv.step, n),
            conversation_id: Some(conv.id.clone()),
            last_inbound_at: Some(conv.last_inbound_at),
            body,
            transcript: None,
        });
        n
    }

    /// A survey text in the conversation's language with its variables filled in.
    fn text(&self, texts: Option<&Texts>, conv: &Conversation) -> String {
        let Some(texts) = texts else {
            return String::new();
        };
        render(self.survey.pick(texts, &conv.language), &self.vars(conv))
    }

    fn vars(&self, conv: &Conversation) -> BTreeMap<String, String> {
        let c = &self.contact;
        let mut vars = BTreeMap::new();
        for (k, v) in &c.fields {
            vars.insert(format!("contact.{k}"), v.clone());
        }
        for (k, v) in &conv.answers {
            vars.insert(format!("answer.{k}"), v.clone());
        }
        for (k, v) in &conv.vars {
            vars.insert(format!("var.{k}"), v.clone());
        }
        let name = c
            .fields
            .get("name")
            .cloned()
            .or_else(|| c.identity.profile_name.clone())
            .or_else(|| c.identity.username.clone())
            .unwrap_or_default();
        let first = name
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        vars.insert("contact.name".into(), name);
        vars.insert("contact.first_name".into(), first);
        if !c.fields.contains_key("phone") {
            if let Some(w) = &c.identity.wa_id {
                vars.insert("contact.phone".into(), format!("+{w}"));
            }
        }
        vars
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
