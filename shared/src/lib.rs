//! prechat: pre-chat surveys for WhatsApp Business, as a set of Lambda functions.
//!
//! This crate holds everything the functions share. The layout tells where a change goes:
//! - [`whatsapp`]: Meta's payloads, inbound (webhooks) and outbound (Graph API messages).
//! - [`survey`]: the survey definition, answer validation and the pure survey engine.
//! - [`routing`]: agent-assignment jobs, routing rules and strategies.
//! - [`store`] and [`queue`]: the DynamoDB and SQS ports, each a small trait plus its AWS implementation.
//! - [`api`]: the agent API; [`api::auth`] reads who called from the JWT authorizer's claims.
//! - [`realtime`]: the WebSocket API (authorizer, connections, pushes to agents' browsers).
//! - [`entrypoints`]: turn Lambda events into domain calls and results into responses;
//!   the binaries in `functions/` are a few lines around these.
//! - [`config`], [`secrets`], [`telemetry`], [`aws`]: init-time plumbing shared by every function;
//!   [`clock`]: the one source of "now" (system, or fixed for tests).

pub mod admin;
pub mod api;
pub mod aws;
pub mod clock;
pub mod config;
pub mod entrypoints;
pub mod queue;
pub mod realtime;
pub mod routing;
pub mod secrets;
pub mod store;
pub mod survey;
pub mod telemetry;
pub mod transcript;
pub mod webchat;
pub mod whatsapp;
