//! Answer validation: turns what a contact sent into a validated, normalised answer for one
//! question, or says precisely why it is not one.
//!
//! Each answer type is a newtype that parses on construction ([`Email::parse`],
//! [`E164Phone::parse`], ...), so an invalid value cannot exist past this module: the engine
//! only ever saves the `String` of a value that parsed.

use chrono::{Datelike, NaiveDate};

use super::definition::{Question, QuestionKind};
use super::locale;
use super::text::{char_len, normalise};
use crate::whatsapp::event::MessageContent;

/// Why an answer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Media, a location, a reaction... where text was needed.
    NotText,
    TooShort,
    TooLong,
    NotAnOption,
    NotEmail,
    NotPhone,
    NotNumber,
    OutOfRange,
    NotDate,
    NotYesNo,
    NoMatch,
    UnknownCountry,
}

/// A validated answer: the normalised value to save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted(pub String);

/// What validation needs to know besides the question.
#[derive(Debug, Clone)]
pub struct AnswerContext<'a> {
    /// The conversation's language (date order, words).
    pub language: &'a str,
    pub today: NaiveDate,
    /// Calling code of the contact's own number, for national phone numbers.
    pub calling_code: Option<&'a str>,
}

// ------------------------------------------------------------------ newtypes

/// An email address, lower-cased domain; syntax checked (not deliverability).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Option<Email> {
        let s = input.trim();
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (local, domain) = s.rsplit_once('@')?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return None;
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return None;
        }
        let ok_local = local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let ok_domain = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(char::is_alphabetic));
        (ok_local && ok_domain).then(|| Email(format!("{local}@{}", domain.to_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 (`+` and 8 to 15 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E164Phone(String);

impl E164Phone {
    /// Accepts `+34 612-345-678`, `0034612345678`, and, given the contact's own calling code,
    /// national forms (`612 345 678`, `0612 345678`).
    pub fn parse(input: &str, calling_code: Option<&str>) -> Option<E164Phone> {
        let compact: String = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '/' | '\u{a0}'))
            .collect();
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest.to_owned()
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest.to_owned()
        } else {
            let cc = calling_code?;
            let national = compact.strip_prefix('0').unwrap_or(&compact);
            format!("{cc}{national}")
        };
        let valid = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        valid.then(|| E164Phone(format!("+{digits}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The digits without `+`.
    pub fn digits(&self) -> &str {
        self.0.trim_start_matches('+')
    }
}

/// The calling code of a number given as digits (longest known prefix).
pub fn calling_code_of(digits: &str) -> Option<&str> {
    let country = locale::country_of_phone(digits)?;
    // The calling code is the prefix that led to the country.
    [1usize, 2, 3]
        .into_iter()
        .filter_map(|n| digits.get(..n))
        .find(|p| {
            locale::country_of_phone(&format!("{p}000000000")) == Some(country)
                && (country != "DO" || *p == "1")
        })
}

/// A number (integer or decimal; `,` accepted as the decimal mark).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(f64);

impl Number {
    pub fn parse(input: &str) -> Option<Number> {
        let s = input.trim().replace([' ', '\u{a0}'], "");
        let s = if !s.contains('.') && s.matches(',').count() == 1 {
            s.replace(',', ".")
        } else {
            s
        };
        if s.is_empty()
            || s.len() > 40
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
        {
            return None;
        }
        let v: f64 = s.parse().ok()?;
        v.is_finite().then_some(Number(v))
    }
    pub fn value(self) -> f64 {
        self.0
    }
    pub fn is_integer(self) -> bool {
        self.0.fract() == 0.0 && self.0.abs() < 1e15
    }
    pub fn render(self) -> String {
        if self.is_integer() {
            format!("{}", self.0 as i64)
        } else {
            format!("{}", self.0)
        }
    }
}

/// Yes or no, in any survey language or as a `yes`/`no` button id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
}

const YES_WORDS: &[&str] = &[
    "yes",
    "y",
    "yeah",
    "yep",
    "sure",
    "ok",
    "okay",
    "accept",
    "i accept",
    "agree",
    "i agree",
    "si",
    "s",
    "claro",
    "vale",
    "acepto",
    "de acuerdo",
    "sim",
    "oui",
    "ja",
];
const NO_WORDS: &[&str] = &[
    "no",
    "n",
    "nope",
    "decline",
    "i decline",
    "rechazo",
    "no acepto",
    "nao",
    "non",
    "nein",
];

impl YesNo {
    pub fn parse(input: &str) -> Option<YesNo> {
        let n = normalise(input);
        if YES_WORDS.contains(&n.as_str()) {
            Some(YesNo::Yes)
        } else if NO_WORDS.contains(&n.as_str()) {
            Some(YesNo::No)
        } else {
            None
        }
    }
    pub fn id(self) -> &'static str {
        match self {
            YesNo::Yes => "yes",
            YesNo::No => "no",
        }
    }
}

const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("enero", 1),
    ("febrero", 2),
    ("marzo", 3),
    ("abril", 4),
    ("mayo", 5),
    ("junio", 6),
    ("julio", 7),
    ("agosto", 8),
    ("septiembre", 9),
    ("setiembre", 9),
    ("octubre", 10),
    ("noviembre", 11),
    ("diciembre", 12),
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("sept", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
    ("ene", 1),
    ("abr", 4),
    ("ago", 8),
    ("dic", 12),
];

/// A calendar date written the way people of the contact's language write it: ISO
/// `2024-03-05`; numeric day-first (`05/03/2024`), or month-first for English; or with a
/// month name (`5 March 2024`, `March 5th, 2024`, `5 de marzo de 2024`).
pub fn parse_date(input: &str, language: &str, today: NaiveDate) -> Option<NaiveDate> {
    let s = normalise(input);
    if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        return Some(d);
    }
    let tokens: Vec<&str> = s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty() && !matches!(*t, "de" | "del" | "of" | "the"))
        .collect();
    if tokens.len() != 3 {
        return None;
    }
    let year = |t: &str| -> Option<i32> {
        let y: i32 = t.parse().ok()?;
        match t.len() {
            4 => Some(y),
            2 => {
                // Two-digit years: the most recent past century that is not in the future.
                let this = today.year() % 100;
                Some(if y <= this { 2000 + y } else { 1900 + y })
            }
            _ => None,
        }
    };
    let day = |t: &str| -> Option<u32> {
        let t = t.trim_end_matches(|c: char| c.is_alphabetic());
        if t.is_empty() || t.len() > 2 {
            return None;
        }
        t.parse().ok()
    };
    let month_name = |t: &str| MONTHS.iter().find(|m| m.0 == t).map(|m| m.1);
    let (d, m, y) = if let Some(m) = month_name(tokens[0]) {
        (day(tokens[1])?, m, year(tokens[2])?)
    } else if let Some(m) = month_name(tokens[1]) {
        (day(tokens[0])?, m, year(tokens[2])?)
    } else if tokens.iter().all(|t| t.bytes().all(|b| b.is_ascii_digit())) {
        if tokens[0].len() == 4 {
            (day(tokens[2])?, tokens[1].parse().ok()?, year(tokens[0])?)
        } else if language == "en" {
            (day(tokens[1])?, tokens[0].parse().ok()?, year(tokens[2])?)
        } else {
            (day(tokens[0])?, tokens[1].parse().ok()?, year(tokens[2])?)
        }
    } else {
        return None;
    };
    NaiveDate::from_ymd_opt(y, m, d)
}

// ------------------------------------------------------------------ validation

/// The text of a reply, whatever way it was given.
fn text_of(content: &MessageContent) -> Option<&str> {
    match content {
        MessageContent::Text { body } => Some(body),
        MessageContent::ButtonReply { title, .. } => Some(title),
        MessageContent::ListReply { title, .. } => Some(title),
        MessageContent::TemplateButton { text, .. } => Some(text),
        _ => None,
    }
}

/// The id of a tapped button or list row.
fn reply_id(content: &MessageContent) -> Option<&str> {
    match content {
        MessageContent::ButtonReply { id, .. } | MessageContent::ListReply { id, .. } => Some(id),
        MessageContent::TemplateButton { payload, .. } => Some(payload),
        _ => None,
    }
}

/// Validates `content` as an answer to `q`.
pub fn validate(
    q: &Question,
    content: &MessageContent,
    ctx: &AnswerContext<'_>,
) -> Result<Accepted, Rejection> {
    use Rejection::*;
    match &q.kind {
        QuestionKind::Choice { options } => {
            if let Some(id) = reply_id(content) {
                if let Some(o) = options.iter().find(|o| o.id == id) {
                    return Ok(Accepted(o.id.clone()));
                }
            }
            let t = text_of(content).ok_or(NotText)?;
            let n = normalise(t);
            if let Ok(k) = n.parse::<usize>() {
                return k
                    .checked_sub(1)
                    .and_then(|i| options.get(i))
                    .map(|o| Accepted(o.id.clone()))
                    .ok_or(NotAnOption);
            }
            options
                .iter()
                .find(|o| normalise(&o.id) == n || o.label.values().any(|l| normalise(l) == n))
                .map(|o| Accepted(o.id.clone()))
                .ok_or(NotAnOption)
        }
        QuestionKind::YesNo | QuestionKind::Consent { .. } => {
            if let Some(id) = reply_id(content) {
                if id == "yes" || id == "no" {
                    return Ok(Accepted(id.to_owned()));
                }
            }
            let t = text_of(content).ok_or(NotText)?;
            YesNo::parse(t)
                .map(|v| Accepted(v.id().to_owned()))
                .ok_or(NotYesNo)
        }
        QuestionKind::Country => {
            if let MessageContent::Location { address, name, .. } = content {
                return address
                    .iter()
                    .chain(name.iter())
                    .find_map(|a| locale::country_of_address(a))
                    .map(|c| Accepted(c.to_owned()))
                    .ok_or(UnknownCountry);
            }
            let t = text_of(content).ok_or(NotText)?;
            locale::parse_country(t)
                .map(|c| Accepted(c.to_owned()))
                .ok_or(UnknownCountry)
        }
        kind => {
            let t = text_of(content).ok_or(NotText)?.trim();
            match kind {
                QuestionKind::Text {
                    min_length,
                    max_length,
                } => {
                    let n = char_len(t);
                    if n < *min_length {
                        Err(TooShort)
                    } else if n > *max_length {
                        Err(TooLong)
                    } else {
                        Ok(Accepted(t.to_owned()))
                    }
                }
                QuestionKind::Email => Email::parse(t).map(|e| Accepted(e.0)).ok_or(NotEmail),
                QuestionKind::Phone => E164Phone::parse(t, ctx.calling_code)
                    .map(|p| Accepted(p.0))
                    .ok_or(NotPhone),
                QuestionKind::Number { min, max, integer } => {
                    let v = Number::parse(t).ok_or(NotNumber)?;
                    if *integer && !v.is_integer() {
                        return Err(NotNumber);
                    }
                    if min.is_some_and(|m| v.value() < m) || max.is_some_and(|m| v.value() > m) {
                        return Err(OutOfRange);
                    }
                    Ok(Accepted(v.render()))
                }
                QuestionKind::Date { min, max } => {
                    let d = parse_date(t, ctx.language, ctx.today).ok_or(NotDate)?;
                    if min.is_some_and(|m| d < m.resolve(ctx.today))
                        || max.is_some_and(|m| d > m.resolve(ctx.today))
                    {
                        return Err(OutOfRange);
                    }
                    Ok(Accepted(d.format("%Y-%m-%d").to_string()))
                }
                QuestionKind::Pattern { regex } => {
                    if t.len() <= 1000 && regex.is_match(t) {
                        Ok(Accepted(t.to_owned()))
                    } else {
                        Err(NoMatch)
                    }
                }
                // Handled above.
                QuestionKind::Choice { .. }
                | QuestionKind::YesNo
                | QuestionKind::Consent { .. }
                | QuestionKind::Country => Err(NotText),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::survey::definition::{ChoiceOption, DateBound, Fallback, Target};
    use std::collections::BTreeMap;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    fn q(kind: QuestionKind) -> Question {
        Question {
            key: "k".into(),
            kind,
            prompt: BTreeMap::new(),
            label: None,
            retry: None,
            required: true,
            when: None,
            ask_if_missing: false,
            save_to: Target::Var("k".into()),
            max_attempts: 3,
            fallback: Fallback::Skip,
            web: Default::default(),
        }
    }

    fn text(s: &str) -> MessageContent {
        MessageContent::Text { body: s.into() }
    }

    fn check(kind: QuestionKind, input: MessageContent, lang: &str) -> Result<String, Rejection> {
        let ctx = AnswerContext {
            language: lang,
            today: today(),
            calling_code: Some("34"),
        };
        validate(&q(kind), &input, &ctx).map(|a| a.0)
    }

    fn labels(en: &str, es: &str) -> BTreeMap<String, String> {
        [
            ("en".to_owned(), en.to_owned()),
            ("es".to_owned(), es.to_owned()),
        ]
        .into()
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ana.Lopez+x@Example.COM ").unwrap().as_str(),
            "Ana.Lopez+x@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.com",
            "ana@x",
            "ana@@x.com",
            "a b@x.com",
            "ana@x..com",
            ".a@x.com",
            "ana@-x.com",
            "ana@x.c0m",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn phones_are_normalised_to_e164() {
        assert_eq!(
            E164Phone::parse("+34 612-345-678", None).unwrap().as_str(),
            "+34612345678"
        );
        assert_eq!(
            E164Phone::parse("0034 612 345 678", None).unwrap().as_str(),
            "+34612345678"
        );
        assert_eq!(
            E164Phone::parse("612 345 678", Some("34"))
                .unwrap()
                .as_str(),
            "+34612345678"
        );
        assert_eq!(
            E164Phone::parse("(0)20 7946 0958", Some("44"))
                .unwrap()
                .as_str(),
            "+442079460958"
        );
        assert!(E164Phone::parse("612 345 678", None).is_none());
        assert!(E164Phone::parse("+12", None).is_none());
        assert!(E164Phone::parse("+1234567890123456", None).is_none());
        assert!(E164Phone::parse("+34 6x2", None).is_none());
        assert_eq!(calling_code_of("34612345678"), Some("34"));
        assert_eq!(calling_code_of("16505551234"), Some("1"));
        assert_eq!(calling_code_of("351912345678"), Some("351"));
        assert_eq!(calling_code_of("999"), None);
    }

    #[test]
    fn numbers_with_ranges_and_integer_flag() {
        let k = QuestionKind::Number {
            min: Some(1.0),
            max: Some(10.0),
            integer: false,
        };
        assert_eq!(check(k.clone(), text("2,5"), "es"), Ok("2.5".into()));
        assert_eq!(check(k.clone(), text(" 7 "), "en"), Ok("7".into()));
        assert_eq!(
            check(k.clone(), text("11"), "en"),
            Err(Rejection::OutOfRange)
        );
        assert_eq!(
            check(k.clone(), text("ten"), "en"),
            Err(Rejection::NotNumber)
        );
        assert_eq!(check(k, text("NaN"), "en"), Err(Rejection::NotNumber));
        let i = QuestionKind::Number {
            min: None,
            max: None,
            integer: true,
        };
        assert_eq!(
            check(i.clone(), text("3.5"), "en"),
            Err(Rejection::NotNumber)
        );
        assert_eq!(check(i, text("-4"), "en"), Ok("-4".into()));
    }

    #[test]
    fn dates_in_the_contacts_locale() {
        let t = today();
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        assert_eq!(parse_date("2024-03-05", "en", t), d(2024, 3, 5));
        assert_eq!(parse_date("05/03/2024", "es", t), d(2024, 3, 5));
        assert_eq!(parse_date("03/05/2024", "en", t), d(2024, 3, 5));
        assert_eq!(parse_date("5 de marzo de 2024", "es", t), d(2024, 3, 5));
        assert_eq!(parse_date("March 5th, 2024", "en", t), d(2024, 3, 5));
        assert_eq!(parse_date("5 Mar 24", "en", t), d(2024, 3, 5));
        assert_eq!(parse_date("5-3-99", "es", t), d(1999, 3, 5));
        assert_eq!(parse_date("31/02/2024", "es", t), None);
        assert_eq!(parse_date("tomorrow", "en", t), None);
        let k = QuestionKind::Date {
            min: Some(DateBound::Fixed(
                NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
            )),
            max: Some(DateBound::Today),
        };
        assert_eq!(
            check(k.clone(), text("1 enero 2030"), "es"),
            Err(Rejection::OutOfRange)
        );
        assert_eq!(
            check(k.clone(), text("1 enero 1990"), "es"),
            Err(Rejection::OutOfRange)
        );
        assert_eq!(
            check(k, text("1 enero 2020"), "es"),
            Ok("2020-01-01".into())
        );
    }

    #[test]
    fn choices_by_id_number_or_label_ignoring_case_and_accents() {
        let k = QuestionKind::Choice {
            options: vec![
                ChoiceOption {
                    id: "sales".into(),
                    label: labels("Buying", "Comprar"),
                    description: None,
                },
                ChoiceOption {
                    id: "after_sales".into(),
                    label: labels("After-sales", "Atención posventa"),
                    description: None,
                },
            ],
        };
        let button = MessageContent::ButtonReply {
            id: "after_sales".into(),
            title: "whatever".into(),
        };
        assert_eq!(check(k.clone(), button, "en"), Ok("after_sales".into()));
        assert_eq!(check(k.clone(), text("2"), "en"), Ok("after_sales".into()));
        assert_eq!(
            check(k.clone(), text("ATENCION POSVENTA"), "es"),
            Ok("after_sales".into())
        );
        assert_eq!(check(k.clone(), text("comprar!"), "en"), Ok("sales".into()));
        assert_eq!(
            check(k.clone(), text("3"), "en"),
            Err(Rejection::NotAnOption)
        );
        assert_eq!(
            check(k.clone(), text("0"), "en"),
            Err(Rejection::NotAnOption)
        );
        assert_eq!(
            check(k.clone(), text("maybe"), "en"),
            Err(Rejection::NotAnOption)
        );
        let img = MessageContent::Media {
            media_type: crate::whatsapp::event::MediaType::Image,
            id: "1".into(),
            mime_type: None,
            caption: None,
            filename: None,
        };
        assert_eq!(check(k, img, "en"), Err(Rejection::NotText));
    }

    #[test]
    fn text_patterns_yes_no_and_country() {
        let t = QuestionKind::Text {
            min_length: 2,
            max_length: 5,
        };
        assert_eq!(
            check(t.clone(), text(" a "), "en"),
            Err(Rejection::TooShort)
        );
        assert_eq!(
            check(t.clone(), text("abcdef"), "en"),
            Err(Rejection::TooLong)
        );
        assert_eq!(check(t.clone(), text("ñandú"), "en"), Ok("ñandú".into()));
        let loc = MessageContent::Location {
            latitude: 40.4,
            longitude: -3.7,
            name: None,
            address: Some("Calle Mayor 1, Madrid, España".into()),
        };
        assert_eq!(check(t, loc.clone(), "en"), Err(Rejection::NotText));
        assert_eq!(check(QuestionKind::Country, loc, "en"), Ok("ES".into()));
        assert_eq!(
            check(QuestionKind::Country, text("méxico"), "es"),
            Ok("MX".into())
        );
        assert_eq!(
            check(QuestionKind::Country, text("atlantis"), "es"),
            Err(Rejection::UnknownCountry)
        );
        let p = QuestionKind::Pattern {
            regex: regex::Regex::new("^(?:[0-9]{6})$").unwrap(),
        };
        assert_eq!(check(p.clone(), text("123456"), "en"), Ok("123456".into()));
        assert_eq!(check(p, text("1234567"), "en"), Err(Rejection::NoMatch));
        assert_eq!(
            check(QuestionKind::YesNo, text("Sí"), "es"),
            Ok("yes".into())
        );
        assert_eq!(
            check(
                QuestionKind::YesNo,
                MessageContent::ButtonReply {
                    id: "no".into(),
                    title: "No".into()
                },
                "es"
            ),
            Ok("no".into())
        );
        assert_eq!(
            check(QuestionKind::YesNo, text("perhaps"), "en"),
            Err(Rejection::NotYesNo)
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_and_outputs_reparse(s in "\\PC{0,60}") {
            if let Some(e) = Email::parse(&s) { proptest::prop_assert!(Email::parse(e.as_str()).is_some()); }
            if let Some(p) = E164Phone::parse(&s, Some("34")) {
                proptest::prop_assert_eq!(E164Phone::parse(p.as_str(), None), Some(p.clone()));
            }
            if let Some(n) = Number::parse(&s) { proptest::prop_assert!(Number::parse(&n.render()).is_some()); }
            let _ = parse_date(&s, "en", today());
            let _ = parse_date(&s, "es", today());
            let _ = YesNo::parse(&s);
        }
    }
}
