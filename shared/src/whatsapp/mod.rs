//! Meta's WhatsApp Cloud API, as prechat sees it.
//!
//! - [`event`]: the normalised inbound events that ingest puts on the inbound FIFO queue and the
//!   survey engine consumes (one per message, status or identity notice of a webhook delivery).
//! - [`outbound`]: the messages prechat decides to send, which travel on the outbound FIFO queue
//!   to the reply sender.
//! - [`contact`]: who a contact is (business-scoped user id first, phone number second).

pub mod contact;
pub mod event;
pub mod outbound;

pub use contact::ContactRef;
