//! The agent API (`agent-api`, routes under `/api/` of the HTTP API): agents read and answer
//! the conversations handed to them.
//!
//! - [`auth`]: the caller ([`auth::Principal`]) from the JWT claims API Gateway passes.
//! - [`route`]: the route table ([`route::ROUTES`], mirrored by `infra/openapi.yaml`) and the
//!   parsing of every input, each error naming its field.
//! - [`policy`]: who may see and do what (pure).
//! - [`error`]: [`ApiError`], its status and JSON body.
//! - [`ports`]: the DynamoDB reads and writes, behind small traits.
//! - [`service`]: the request handling on those ports; views.
//! - [`inbox`]: the agent inbox page (`/inbox`, outside the JWT authorizer) and its config.

pub mod auth;
pub mod error;
pub mod inbox;
pub mod policy;
pub mod ports;
pub mod route;
pub mod service;

pub use error::ApiError;
