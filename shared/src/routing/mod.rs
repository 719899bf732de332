//! Handing conversations to human agents.
//!
//! - [`job`]: the assignment job the survey engine puts on the assignment queue.
//! - [`model`]: agents and teams; [`hours`]: business hours in the team's time zone.
//! - [`rules`]: which team a conversation goes to, and VIP priority.
//! - [`strategy`]: availability and agent choice (`round_robin`, `least_open`).
//! - [`messages`]: what the contact is told (assigned / away / overload), window-aware.
//! - [`notify`]: the signed webhook that tells an agent about a new conversation.
//! - [`bridge`]: the webhook's other events (`message.created`, `conversation.transferred`,
//!   `conversation.closed`) for teams that keep their own help desk.
//!
//! All of these are pure; the DynamoDB side is `store::routing`, the Lambda side
//! `entrypoints::assigner`.

pub mod bridge;
pub mod hours;
pub mod job;
pub mod messages;
pub mod model;
pub mod notify;
pub mod rules;
pub mod strategy;
