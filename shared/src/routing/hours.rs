//! Team business hours: weekly opening spans in an IANA time zone, with holidays.
//!
//! Spans are wall-clock times in the team's zone (`"09:00-17:30"`), so a team opening at 09:00
//! opens at 09:00 local time on both sides of a daylight-saving change. A span whose end is not
//! after its start runs overnight into the next day (`"22:00-06:00"`); `24:00` means midnight
//! at the end of the day. A holiday closes every span that starts on that date.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Opening hours as stored and as admins write them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// IANA zone name, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Spans per weekday (`mon` .. `sun`); a day absent is closed.
    #[serde(default)]
    pub weekly: BTreeMap<String, Vec<String>>,
    /// Local dates (`YYYY-MM-DD`) on which the team does not open.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("unknown time zone {0:?} (use an IANA name such as Europe/Berlin)")]
    TimeZone(String),
    #[error("unknown weekday {0:?} (use mon, tue, wed, thu, fri, sat, sun)")]
    Weekday(String),
    #[error("malformed span {0:?} (use HH:MM-HH:MM, e.g. 09:00-17:30)")]
    Span(String),
}

/// A parsed span, in minutes since local midnight; `end <= start` runs overnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn overnight(&self) -> bool {
        self.end <= self.start
    }
}

/// [`BusinessHours`] checked and ready to answer "is it open now?".
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: Tz,
    days: [Vec<Span>; 7],
    holidays: Vec<NaiveDate>,
}

fn parse_weekday(s: &str) -> Result<Weekday, HoursError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Ok(Weekday::Mon),
        "tue" | "tuesday" => Ok(Weekday::Tue),
        "wed" | "wednesday" => Ok(Weekday::Wed),
        "thu" | "thursday" => Ok(Weekday::Thu),
        "fri" | "friday" => Ok(Weekday::Fri),
        "sat" | "saturday" => Ok(Weekday::Sat),
        "sun" | "sunday" => Ok(Weekday::Sun),
        _ => Err(HoursError::Weekday(s.to_owned())),
    }
}

fn parse_minutes(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_span(s: &str) -> Result<Span, HoursError> {
    let bad = || HoursError::Span(s.to_owned());
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = parse_minutes(a).ok_or_else(bad)?;
    let end = parse_minutes(b).ok_or_else(bad)?;
    if start == 24 * 60 {
        return Err(bad());
    }
    Ok(Span { start, end })
}

impl BusinessHours {
    /// Validates and compiles the hours.
    pub fn schedule(&self) -> Result<Schedule, HoursError> {
        let tz: Tz = self
            .time_zone
            .trim()
            .parse()
            .map_err(|_| HoursError::TimeZone(self.time_zone.clone()))?;
        let mut days: [Vec<Span>; 7] = Default::default();
        for (day, spans) in &self.weekly {
            let wd = parse_weekday(day)?;
            for s in spans {
                if let Some(slot) = days.get_mut(wd.num_days_from_monday() as usize) {
                    slot.push(parse_span(s)?);
                }
            }
        }
        Ok(Schedule {
            tz,
            days,
            holidays: self.holidays.clone(),
        })
    }
}

impl Schedule {
    fn spans(&self, day: Weekday) -> &[Span] {
        self.days
            .get(day.num_days_from_monday() as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn works_on(&self, date: NaiveDate) -> bool {
        !self.holidays.contains(&date)
    }

    /// Whether the team is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.tz);
        let date = local.date_naive();
        let t = local.time();
        let minute = minutes_of(t);
        let today = self.works_on(date)
            && self.spans(date.weekday()).iter().any(|s| {
                if s.overnight() {
                    minute >= s.start
                } else {
                    minute >= s.start && minute < s.end
                }
            });
        if today {
            return true;
        }
        let yesterday = date - Duration::days(1);
        self.works_on(yesterday)
            && self
                .spans(yesterday.weekday())
                .iter()
                .any(|s| s.overnight() && minute < s.end)
    }
}

fn minutes_of(t: NaiveTime) -> u32 {
    use chrono::Timelike;
    t.hour() * 60 + t.minute()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hours(tz: &str, days: &[(&str, &[&str])], holidays: &[&str]) -> Schedule {
        BusinessHours {
            time_zone: tz.into(),
            weekly: days
                .iter()
                .map(|(d, s)| (d.to_string(), s.iter().map(|x| x.to_string()).collect()))
                .collect(),
            holidays: holidays.iter().map(|h| h.parse().unwrap()).collect(),
        }
        .schedule()
        .unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    const WEEKDAYS_9_TO_17: &[(&str, &[&str])] = &[
        ("mon", &["09:00-17:00"]),
        ("tue", &["09:00-17:00"]),
        ("wed", &["09:00-17:00"]),
        ("thu", &["09:00-17:00"]),
        ("fri", &["09:00-17:00"]),
    ];

    #[test]
    fn open_inside_span_closed_outside_and_at_the_end() {
        // Mon 2026-11-23, Berlin is UTC+1 in winter.
        let s = hours("Europe/Berlin", WEEKDAYS_9_TO_17, &[]);
        assert!(!s.is_open(utc(2026, 11, 23, 7, 59)), "08:59 local");
        assert!(s.is_open(utc(2026, 11, 23, 8, 0)), "09:00 local");
        assert!(s.is_open(utc(2026, 11, 23, 15, 59)), "16:59 local");
        assert!(
            !s.is_open(utc(2026, 11, 23, 16, 0)),
            "17:00 local: end is exclusive"
        );
        assert!(!s.is_open(utc(2026, 11, 28, 10, 0)), "Saturday");
    }

    #[test]
    fn same_utc_instant_differs_by_zone() {
        let t = utc(2026, 11, 23, 14, 30); // Monday
        assert!(
            hours("Europe/Berlin", WEEKDAYS_9_TO_17, &[]).is_open(t),
            "15:30 in Berlin"
        );
        assert!(
            hours("America/New_York", WEEKDAYS_9_TO_17, &[]).is_open(t),
            "09:30 in New York"
        );
        assert!(
            !hours("Asia/Tokyo", WEEKDAYS_9_TO_17, &[]).is_open(t),
            "23:30 in Tokyo"
        );
        assert!(
            !hours("America/Los_Angeles", WEEKDAYS_9_TO_17, &[]).is_open(t),
            "06:30 in LA"
        );
        // Kathmandu is UTC+5:45: the quarter hour matters.
        let ktm = hours("Asia/Kathmandu", &[("mon", &["09:00-17:00"])], &[]);
        assert!(!ktm.is_open(utc(2026, 11, 23, 3, 14)));
        assert!(ktm.is_open(utc(2026, 11, 23, 3, 15)));
    }

    #[test]
    fn opening_follows_local_time_across_dst_changes() {
        // Berlin: CET (UTC+1) until Sun 2026-03-29 01:00 UTC, then CEST (UTC+2).
        let s = hours(
            "Europe/Berlin",
            &[("fri", &["09:00-17:00"]), ("mon", &["09:00-17:00"])],
            &[],
        );
        assert!(
            s.is_open(utc(2026, 3, 27, 8, 0)),
            "Fri before the change: 09:00 is 08:00 UTC"
        );
        assert!(!s.is_open(utc(2026, 3, 27, 7, 30)));
        assert!(
            s.is_open(utc(2026, 3, 30, 7, 0)),
            "Mon after the change: 09:00 is 07:00 UTC"
        );
        assert!(!s.is_open(utc(2026, 3, 30, 6, 59)));
        assert!(!s.is_open(utc(2026, 3, 30, 15, 0)), "17:00 CEST");
        // New York: EDT ends Sun 2026-11-01; 09:00 is 13:00 UTC before, 14:00 UTC after.
        let ny = hours("America/New_York", WEEKDAYS_9_TO_17, &[]);
        assert!(ny.is_open(utc(2026, 10, 30, 13, 0)));
        assert!(!ny.is_open(utc(2026, 11, 2, 13, 30)));
        assert!(ny.is_open(utc(2026, 11, 2, 14, 0)));
    }

    #[test]
    fn span_through_the_skipped_and_repeated_hour() {
        // Sunday 2026-03-29 in Berlin has no 02:00-03:00; a 01:00-04:00 span still opens and
        // closes on wall-clock time.
        let s = hours("Europe/Berlin", &[("sun", &["01:00-04:00"])], &[]);
        assert!(!s.is_open(utc(2026, 3, 28, 23, 59)), "00:59 CET");
        assert!(s.is_open(utc(2026, 3, 29, 0, 0)), "01:00 CET");
        assert!(
            s.is_open(utc(2026, 3, 29, 1, 0)),
            "03:00 CEST (02:00 never happened)"
        );
        assert!(!s.is_open(utc(2026, 3, 29, 2, 0)), "04:00 CEST");
        // Sunday 2026-10-25 has 02:00-03:00 twice: open through both.
        let s = hours("Europe/Berlin", &[("sun", &["02:00-03:00"])], &[]);
        assert!(s.is_open(utc(2026, 10, 25, 0, 30)), "02:30 CEST");
        assert!(
            s.is_open(utc(2026, 10, 25, 1, 30)),
            "02:30 CET, the second time"
        );
        assert!(!s.is_open(utc(2026, 10, 25, 2, 0)), "03:00 CET");
    }

    #[test]
    fn holidays_close_the_day_in_local_time() {
        let s = hours("Europe/Berlin", WEEKDAYS_9_TO_17, &["2026-12-25"]);
        assert!(!s.is_open(utc(2026, 12, 25, 10, 0)), "Christmas, a Friday");
        assert!(s.is_open(utc(2026, 12, 24, 10, 0)));
        // Sydney's holiday is judged on Sydney's date, not UTC's.
        let syd = hours("Australia/Sydney", WEEKDAYS_9_TO_17, &["2026-01-26"]);
        // Mon 2026-01-26 10:00 AEDT = Sun 2026-01-25 23:00 UTC.
        assert!(!syd.is_open(utc(2026, 1, 25, 23, 0)));
        assert!(syd.is_open(utc(2026, 1, 26, 23, 0)), "Tue 10:00 local");
    }

    #[test]
    fn overnight_spans_carry_into_the_next_day() {
        let s = hours("UTC", &[("fri", &["22:00-06:00"])], &["2026-11-20"]);
        // Fri 2026-11-27 22:00 -> Sat 06:00.
        assert!(s.is_open(utc(2026, 11, 27, 23, 0)));
        assert!(s.is_open(utc(2026, 11, 28, 5, 59)));
        assert!(!s.is_open(utc(2026, 11, 28, 6, 0)));
        assert!(!s.is_open(utc(2026, 11, 27, 21, 59)));
        // The holiday Friday 2026-11-20 closes its overnight span, Saturday morning included.
        assert!(!s.is_open(utc(2026, 11, 20, 23, 0)));
        assert!(!s.is_open(utc(2026, 11, 21, 1, 0)));
        // 24:00 runs to the end of the day.
        let s = hours("UTC", &[("mon", &["18:00-24:00"])], &[]);
        assert!(s.is_open(utc(2026, 11, 23, 23, 59)));
        assert!(!s.is_open(utc(2026, 11, 24, 0, 0)));
    }

    #[test]
    fn bad_hours_are_named() {
        let mk = |tz: &str, day: &str, span: &str| {
            BusinessHours {
                time_zone: tz.into(),
                weekly: [(day.to_string(), vec![span.to_string()])].into(),
                holidays: vec![],
            }
            .schedule()
            .unwrap_err()
        };
        assert_eq!(
            mk("Mars/Olympus", "mon", "09:00-17:00"),
            HoursError::TimeZone("Mars/Olympus".into())
        );
        assert_eq!(
            mk("UTC", "funday", "09:00-17:00"),
            HoursError::Weekday("funday".into())
        );
        for bad in [
            "9-17",
            "09:00",
            "25:00-26:00",
            "09:60-10:00",
            "24:00-01:00",
            "aa:bb-cc:dd",
            "",
        ] {
            assert_eq!(mk("UTC", "mon", bad), HoursError::Span(bad.into()), "{bad}");
        }
    }

    proptest::proptest! {
        /// A day with the span 00:00-24:00 is open at every instant, in any zone, unless a
        /// holiday; a schedule with no spans is never open.
        #[test]
        fn full_days_always_open_empty_never(secs in 0i64..4_102_444_800, zone in 0usize..6) {
            let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham"];
            let all: Vec<(&str, &[&str])> = ["mon","tue","wed","thu","fri","sat","sun"].iter().map(|d| (*d, &["00:00-24:00"][..])).collect();
            let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            proptest::prop_assert!(hours(zones[zone], &all, &[]).is_open(now));
            proptest::prop_assert!(!hours(zones[zone], &[], &[]).is_open(now));
        }

        /// Any span string either parses or is refused; evaluation never panics.
        #[test]
        fn arbitrary_spans_never_panic(span in ".{0,14}", secs in 0i64..4_102_444_800) {
            let h = BusinessHours { time_zone: "Europe/Berlin".into(), weekly: [("mon".to_string(), vec![span])].into(), holidays: vec![] };
            if let Ok(s) = h.schedule() {
                let _ = s.is_open(DateTime::<Utc>::from_timestamp(secs, 0).unwrap());
            }
        }
    }
}
