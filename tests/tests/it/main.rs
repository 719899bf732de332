//! The integration test binary (one binary: one link, shared harness). Each module covers one
//! part of the pipeline; every test builds its own [`prechat_tests::TestApp`] (or, below the entrypoints, a
//! [`prechat_tests::TestEnv`]).

mod api;
mod assigner;
mod auth;
mod bridge;
mod export;
mod flow;
mod foundation;
mod iam;
mod ingest;
mod lambda_emulator;
mod lists;
mod local;
mod local_stack;
mod logs;
mod realtime;
mod sender;
mod survey;
mod template;
mod transcript;
mod webchat;
mod webform;
