//! Handing conversations to human agents.
//!
//! - [`job`]: the assignment job the survey engine puts on the assignment queue.

pub mod job;
