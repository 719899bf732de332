//! Meta's WhatsApp Cloud API, as prechat sees it.
//!
//! - [`event`]: the normalised inbound events that ingest puts on the inbound FIFO queue and the
//!   survey engine consumes (one per message, status or identity notice of a webhook delivery).
//! - [`outbound`]: the messages prechat decides to send, which travel on the outbound FIFO queue
//!   to the reply sender.
//! - [`webhook`]: the typed model of Meta's webhook payload and its tolerant parser.
//! - [`signature`]: `X-Hub-Signature-256` verification over the raw body.
//! - [`normalize`]: a parsed delivery -> [`event::InboundEvent`]s, plus what was left out and why.
//! - [`graph`], [`graph_error`], [`graph_client`]: rendering outbound messages to Graph API bodies,
//!   classifying Meta's errors, and the HTTP client the reply sender uses.
//! - [`limits`]: WhatsApp's length and count limits and the [`limits::fit`] cut, shared by the
//!   definition validator and the renderer.
//! - [`contact`]: who a contact is (business-scoped user id first, phone number second).

pub mod contact;
pub mod event;
pub mod graph;
pub mod graph_client;
pub mod graph_error;
pub mod limits;
pub mod normalize;
pub mod outbound;
pub mod signature;
pub mod webhook;

pub use contact::{ContactKey, ContactRef};
