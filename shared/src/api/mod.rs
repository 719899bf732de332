//! The agent API (`/api/*` on the HTTP API): who the caller is ([`auth`]) and what they may do.

pub mod auth;
