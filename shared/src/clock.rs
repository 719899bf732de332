//! The one clock: where "now" comes from, for every function that asks.
//!
//! [`Clock::system`] reads the system time; [`Clock::fixed`] / [`Clock::at_unix`] hold a time
//! that only moves when told ([`Clock::set_unix`], [`Clock::advance`]), shared by every clone,
//! so a test pins one instant for the survey engine, the timer, the assigner and the sender
//! alike and moves it between steps. Two views of the same instant: [`Clock::now`]
//! (`DateTime<Utc>`, for business hours) and [`Clock::unix`] (Unix seconds, for everything
//! stored and queued).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Where "now" comes from. Cheap to clone; clones of a fixed clock move together.
#[derive(Debug, Clone, Default)]
pub struct Clock(Source);

#[derive(Debug, Clone, Default)]
enum Source {
    #[default]
    System,
    /// Milliseconds since the Unix epoch.
    Fixed(Arc<AtomicI64>),
}

impl Clock {
    /// The system time.
    pub fn system() -> Self {
        Clock(Source::System)
    }

    /// A clock that stays at `at` until set or advanced (millisecond precision).
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Clock(Source::Fixed(Arc::new(AtomicI64::new(
            at.timestamp_millis(),
        ))))
    }

    /// A clock that stays at `secs` (Unix seconds) until set or advanced.
    pub fn at_unix(secs: i64) -> Self {
        Clock(Source::Fixed(Arc::new(AtomicI64::new(
            secs.saturating_mul(1000),
        ))))
    }

    /// Now, as a date and time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Source::System => Utc::now(),
            Source::Fixed(ms) => {
                DateTime::from_timestamp_millis(ms.load(Ordering::SeqCst)).unwrap_or_default()
            }
        }
    }

    /// Now, in Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Now, in Unix milliseconds (transcript entries' times).
    pub fn unix_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Moves a fixed clock to `secs` (Unix seconds); the system clock ignores it.
    pub fn set_unix(&self, secs: i64) {
        if let Source::Fixed(ms) = &self.0 {
            ms.store(secs.saturating_mul(1000), Ordering::SeqCst);
        }
    }

    /// Moves a fixed clock `secs` seconds ahead (or back); the system clock ignores it.
    pub fn advance(&self, secs: i64) {
        if let Source::Fixed(ms) = &self.0 {
            let by = secs.saturating_mul(1000);
            // Never fails: the closure always returns a value.
            let _ = ms.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_only_when_told_and_its_clones_move_with_it() {
        let clock = Clock::at_unix(1_000);
        let view = clock.clone();
        assert_eq!(view.unix(), 1_000);
        clock.advance(60);
        assert_eq!(view.unix(), 1_060);
        clock.set_unix(5);
        assert_eq!(view.unix(), 5);
        assert_eq!(view.now(), DateTime::from_timestamp(5, 0).unwrap());
    }

    #[test]
    fn both_views_of_a_fixed_clock_are_the_same_instant() {
        let at = DateTime::from_timestamp(1_700_000_000, 250_000_000).unwrap();
        let clock = Clock::fixed(at);
        assert_eq!(clock.now(), at);
        assert_eq!(clock.unix(), 1_700_000_000);
    }

    #[test]
    fn the_system_clock_ignores_set_and_advance() {
        let clock = Clock::system();
        let before = Utc::now().timestamp();
        clock.set_unix(0);
        clock.advance(-1_000_000);
        assert!(clock.unix() >= before);
    }

    #[test]
    fn extreme_times_saturate_instead_of_panicking() {
        let clock = Clock::at_unix(i64::MAX);
        clock.advance(i64::MAX);
        assert_eq!(clock.now(), DateTime::<Utc>::default());
    }
}
