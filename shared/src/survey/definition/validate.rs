//! Parsing and validation: [`Survey::parse`] reads the YAML (`super::raw`) and checks what its
//! grammar cannot (duplicate keys, `when` referring to unknown or later questions, WhatsApp's
//! interactive limits, missing translations, bad regexes), reporting every problem at once as
//! [`DefinitionErrors`], each with its path and, where the source allows, its line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;

use super::model::*;
use super::raw::*;
use super::{Texts, DEFAULT_SURVEY_YAML};
use crate::survey::text::char_len;

/// Beyond this a numbered text list stops being usable on a phone (prechat's rule, not WhatsApp's).
const NUMBERED_OPTIONS: usize = 50;
/// The longest question label, in characters (a column heading, not a sentence).
pub const LABEL_MAX: usize = 40;
/// The web form's title, in characters (a heading).
pub const WEB_TITLE: usize = 80;
/// The web form's description, in characters (a short paragraph above the fields).
pub const WEB_DESCRIPTION: usize = 1000;
/// The web form's start button and a field's placeholder, in characters.
pub const WEB_BUTTON: usize = 40;
pub const WEB_PLACEHOLDER: usize = 100;
const WEB_ALLOWS: &str = "the web form allows";

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// Where, e.g. `questions[3].when.key` (`$` for the whole document).
    pub path: String,
    /// 1-based line in the YAML source, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem found in a definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DefinitionErrors(pub Vec<DefinitionError>);

impl fmt::Display for DefinitionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid survey definition ({} problem(s)):",
            self.0.len()
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl Survey {
    /// Parses and validates a YAML definition.
    pub fn parse(source: &str, version: u32) -> Result<Survey, DefinitionErrors> {
        let raw: RawSurvey = serde_yaml_ng::from_str(source).map_err(|e| {
            DefinitionErrors(vec![DefinitionError {
                path: "$".to_owned(),
                line: e.location().map(|l| l.line()),
                message: e.to_string(),
            }])
        })?;
        let all_keys = raw.questions.iter().map(|q| q.key.clone()).collect();
        Validator {
            source,
            errors: Vec::new(),
            all_keys,
        }
        .run(raw, version)
    }

    /// The shipped default survey.
    pub fn default_survey() -> Result<Survey, DefinitionErrors> {
        Survey::parse(DEFAULT_SURVEY_YAML, 0)
    }
}

struct Validator<'s> {
    source: &'s str,
    errors: Vec<DefinitionError>,
    /// Every question key, to tell a later question from an unknown one.
    all_keys: BTreeSet<String>,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl<'s> Validator<'s> {
    fn err(&mut self, path: impl Into<String>, line: Option<usize>, message: impl Into<String>) {
        self.errors.push(DefinitionError {
            path: path.into(),
            line,
            message: message.into(),
        });
    }

    /// The line where `needle: value` first appears after line `from` (best effort: serde's
    /// model has no spans, so semantic errors are located by searching the source).
    fn line_of(&self, field: &str, value: &str, from: usize) -> Option<usize> {
        self.source
            .lines()
            .enumerate()
            .skip(from)
            .find_map(|(i, l)| {
                let t = l.trim_start().trim_start_matches("- ").trim_start();
                let rest = t
                    .strip_prefix(field)?
                    .trim_start()
                    .strip_prefix(':')?
                    .trim();
                let rest = rest.trim_matches(|c| c == '"' || c == '\'');
                (rest == value).then_some(i + 1)
            })
    }

    fn question_line(&self, key: &str) -> Option<usize> {
        let start = self.line_of("questions", "", 0).unwrap_or(0);
        self.line_of("key", key, start)
    }

    fn texts(
        &mut self,
        path: &str,
        line: Option<usize>,
        texts: &Texts,
        langs: &[String],
        max: usize,
    ) {
        self.texts_within(path, line, texts, langs, max, "WhatsApp allows");
    }

    /// [`Self::texts`] with the name of whose limit `max` is (`"the web form allows"`).
    fn texts_within(
        &mut self,
        path: &str,
        line: Option<usize>,
        texts: &Texts,
        langs: &[String],
        max: usize,
        whose: &str,
    ) {
        for lang in langs {
            match texts.get(lang) {
                None => self.err(path, line, format!("missing translation for {lang:?}")),
                Some(t) if t.trim().is_empty() => {
                    self.err(path, line, format!("empty text for {lang:?}"))
                }
                Some(t) if char_len(t) > max => self.err(
                    path,
                    line,
                    format!("{lang:?} text is {} characters; {whose} {max}", char_len(t)),
                ),
                Some(_) => {}
            }
        }
        for lang in texts.keys() {
            if !langs.contains(lang) {
                self.err(
                    path,
                    line,
                    format!("{lang:?} is not one of the survey's languages"),
                );
            }
        }
    }

    fn run(mut self, raw: RawSurvey, version: u32) -> Result<Survey, DefinitionErrors> {
        use crate::whatsapp::limits::*;
        if raw.id.is_empty()
            || !raw
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            let l = self.line_of("id", &raw.id, 0);
            self.err("id", l, "must be letters, digits, '-' or '_'");
        }
        let langs = raw.languages.clone();
        if langs.is_empty() {
            self.err("languages", None, "at least one language is needed");
        }
        let unique: BTreeSet<&String> = langs.iter().collect();
        if unique.len() != langs.len() {
            self.err("languages", None, "a language is listed twice");
        }
        if !langs.contains(&raw.default_language) {
            let l = self.line_of("default_language", &raw.default_language, 0);
            self.err(
                "default_language",
                l,
                format!("{:?} is not in languages", raw.default_language),
            );
        }

        // texts
        let t = &raw.texts;
        let fixed: [(&str, &Texts, usize); 8] = [
            ("texts.greeting_new", &t.greeting_new, TEXT_BODY),
            ("texts.greeting_returning", &t.greeting_returning, TEXT_BODY),
            ("texts.completion", &t.completion, TEXT_BODY),
            ("texts.handoff", &t.handoff, TEXT_BODY),
            ("texts.ended", &t.ended, TEXT_BODY),
            ("texts.opted_out", &t.opted_out, TEXT_BODY),
            ("texts.text_only", &t.text_only, INTERACTIVE_BODY),
            ("texts.invalid", &t.invalid, INTERACTIVE_BODY),
        ];
        for (path, texts, max) in fixed {
            let l = self.line_of(path.trim_start_matches("texts."), "", 0);
            self.texts(path, l, texts, &langs, max);
        }
        let l = self.line_of("list_button", "", 0);
        self.texts("texts.list_button", l, &t.list_button, &langs, LIST_BUTTON);
        if let Some(r) = &t.reminder {
            self.texts("texts.reminder", None, r, &langs, TEXT_BODY);
        }
        if let Some(r) = &t.welcome_back {
            self.texts("texts.welcome_back", None, r, &langs, TEXT_BODY);
        }

        // timeouts
        let to = &raw.timeouts;
        if to.reminder_after_minutes.is_some() && t.reminder.is_none() {
            self.err(
                "texts.reminder",
                None,
                "needed because timeouts.reminder_after_minutes is set",
            );
        }
        if to.on_expiry == OnExpiry::Resume && t.welcome_back.is_none() {
            self.err(
                "texts.welcome_back",
                None,
                "needed because timeouts.on_expiry is resume",
            );
        }
        if let (Some(r), Some(e)) = (to.reminder_after_minutes, to.expire_after_minutes) {
            if r >= e {
                self.err(
                    "timeouts",
                    None,
                    "reminder_after_minutes must be shorter than expire_after_minutes",
                );
            }
        }
        if to.reminder_after_minutes == Some(0) || to.expire_after_minutes == Some(0) {
            self.err("timeouts", None, "timeouts must be at least one minute");
        }

        // keywords
        let kw = &raw.keywords;
        let mut seen_words: BTreeMap<String, &str> = BTreeMap::new();
        for (name, map) in [
            ("restart", &kw.restart),
            ("human", &kw.human),
            ("stop", &kw.stop),
            ("skip", &kw.skip),
        ] {
            for (lang, words) in map {
                if !langs.contains(lang) {
                    self.err(
                        format!("keywords.{name}.{lang}"),
                        None,
                        "not one of the survey's languages",
                    );
                }
                for w in words {
                    let n = crate::survey::text::normalise(w);
                    if n.is_empty() {
                        self.err(format!("keywords.{name}.{lang}"), None, "empty keyword");
                    } else if let Some(other) = seen_words.insert(n.clone(), name) {
                        if other != name {
                            self.err(
                                format!("keywords.{name}.{lang}"),
                                None,
                                format!("{w:?} is also a {other} keyword"),
                            );
                        }
                    }
                }
            }
        }

        // questions
        let mut questions: Vec<Question> = Vec::new();
        let mut keys: BTreeMap<String, usize> = BTreeMap::new();
        for (i, q) in raw.questions.into_iter().enumerate() {
            let path = format!("questions[{i}]");
            let line = self.question_line(&q.key);
            if !is_identifier(&q.key) {
                self.err(
                    format!("{path}.key"),
                    line,
                    "keys are lower-case letters, digits and '_'",
                );
            }
            if keys.insert(q.key.clone(), i).is_some() {
                let l = self.line_of("key", &q.key, line.unwrap_or(0));
                self.err(
                    format!("{path}.key"),
                    l,
                    format!("duplicate key {:?}", q.key),
                );
            }
            if let Some(built) = self.question(&path, line, q, &langs, &questions) {
                questions.push(built);
            }
        }

        let web = self.web(raw.web, &langs);

        if self.errors.is_empty() {
            Ok(Survey {
                id: raw.id,
                version,
                languages: langs,
                default_language: raw.default_language,
                reopen_window_minutes: raw.reopen_window_minutes,
                timeouts: raw.timeouts,
                texts: raw.texts,
                keywords: raw.keywords,
                questions,
                web,
            })
        } else {
            Err(DefinitionErrors(self.errors))
        }
    }

    fn question(
        &mut self,
        path: &str,
        line: Option<usize>,
        q: RawQuestion,
        langs: &[String],
        earlier: &[Question],
    ) -> Option<Question> {
        use crate::whatsapp::limits::*;
        let errors_before = self.errors.len();
        let is_choice = q.kind == RawType::Choice;
        let prompt_max = if is_choice || q.kind == RawType::YesNo || q.kind == RawType::Consent {
            INTERACTIVE_BODY
        } else {
            TEXT_BODY
        };
        self.texts(
            &format!("{path}.prompt"),
            line,
            &q.prompt,
            langs,
            prompt_max,
        );
        if let Some(r) = &q.retry {
            self.texts(&format!("{path}.retry"), line, r, langs, INTERACTIVE_BODY);
        }
        if let Some(l) = &q.label {
            let label_path = format!("{path}.label");
            self.texts(&label_path, line, l, langs, LABEL_MAX);
            if l.values().any(|t| t.contains(['\n', '\r'])) {
                self.err(label_path, line, "must be one line");
            }
        }
        let web = match q.web {
            None => QuestionWeb::default(),
            Some(w) => {
                if let Some(p) = &w.placeholder {
                    let ppath = format!("{path}.web.placeholder");
                    self.texts_within(&ppath, line, p, langs, WEB_PLACEHOLDER, WEB_ALLOWS);
                    if matches!(q.kind, RawType::YesNo | RawType::Consent) {
                        let kind = format!("{:?}", q.kind).to_lowercase();
                        self.err(ppath, line, format!("does not apply to a {kind} question"));
                    }
                }
                if !w.show && q.required {
                    self.err(
                        format!("{path}.web.show"),
                        line,
                        "a required question cannot be hidden from the web form \
                         (it could never be submitted); make it `required: false`",
                    );
                }
                QuestionWeb {
                    show: w.show,
                    placeholder: w.placeholder,
                }
            }
        };
        if !(1..=10).contains(&q.max_attempts) {
            self.err(
                format!("{path}.max_attempts"),
                line,
                "must be between 1 and 10",
            );
        }

        // save_to
        let target = match q.save_to.as_deref() {
            None => Target::Var(q.key.clone()),
            Some(s) => match s.split_once('.') {
                Some(("contact", f)) if is_identifier(f) => Target::Contact(f.to_owned()),
                Some(("var", v)) if is_identifier(v) => Target::Var(v.to_owned()),
                _ => {
                    self.err(
                        format!("{path}.save_to"),
                        line,
                        "must be contact.<field> or var.<name>",
                    );
                    Target::Var(q.key.clone())
                }
            },
        };
        if q.ask_if_missing && target.contact_field().is_none() {
            self.err(
                format!("{path}.ask_if_missing"),
                line,
                "needs save_to: contact.<field>",
            );
        }

        // when
        if let Some(w) = &q.when {
            match earlier.iter().find(|e| e.key == w.key) {
                Some(dep) => {
                    let values: Vec<&String> = w.values.iter().chain(w.equals.iter()).collect();
                    if values.is_empty() {
                        self.err(
                            format!("{path}.when"),
                            line,
                            "needs `in: [...]` or `equals: ...`",
                        );
                    }
                    let allowed: Option<Vec<String>> = match &dep.kind {
                        QuestionKind::Choice { options } => {
                            Some(options.iter().map(|o| o.id.clone()).collect())
                        }
                        QuestionKind::YesNo | QuestionKind::Consent { .. } => {
                            Some(vec!["yes".to_owned(), "no".to_owned()])
                        }
                        _ => None,
                    };
                    if let Some(allowed) = allowed {
                        for v in values {
                            if !allowed.contains(v) {
                                self.err(
                                    format!("{path}.when"),
                                    line,
                                    format!(
                                        "{v:?} is not a possible answer of {:?} ({})",
                                        w.key,
                                        allowed.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                }
                None => {
                    let msg = if self.all_keys.contains(&w.key) {
                        format!("refers to {:?}, which is not an earlier question", w.key)
                    } else {
                        format!("refers to unknown question {:?}", w.key)
                    };
                    self.err(format!("{path}.when.key"), line, msg);
                }
            }
        }

        // type-specific settings: present only where they mean something
        let kind_name = format!("{:?}", q.kind).to_lowercase();
        let only = |this: &mut Self, present: bool, field: &str, allowed: bool| {
            if present && !allowed {
                this.err(
                    format!("{path}.{field}"),
                    line,
                    format!("does not apply to a {kind_name} question"),
                );
            }
        };
        use RawType as T;
        only(
            self,
            q.min_length.is_some(),
            "min_length",
            q.kind == T::Text,
        );
        only(
            self,
            q.max_length.is_some(),
            "max_length",
            q.kind == T::Text,
        );
        only(self, q.options.is_some(), "options", q.kind == T::Choice);
        only(
            self,
            q.min.is_some(),
            "min",
            matches!(q.kind, T::Number | T::Date),
        );
        only(
            self,
            q.max.is_some(),
            "max",
            matches!(q.kind, T::Number | T::Date),
        );
        only(self, q.integer.is_some(), "integer", q.kind == T::Number);
        only(
            self,
            q.policy_url.is_some(),
            "policy_url",
            q.kind == T::Consent,
        );
        only(
            self,
            q.policy_version.is_some(),
            "policy_version",
            q.kind == T::Consent,
        );
        only(self, q.pattern.is_some(), "pattern", q.kind == T::Pattern);

        let kind = match q.kind {
            T::Text => {
                let min = q.min_length.unwrap_or(1);
                let max = q.max_length.unwrap_or(1000);
                if min > max || max == 0 {
                    self.err(
                        format!("{path}.min_length"),
                        line,
                        "min_length must not exceed max_length",
                    );
                }
                QuestionKind::Text {
                    min_length: min,
                    max_length: max,
                }
            }
            T::Choice => {
                let options = q.options.clone().unwrap_or_default();
                self.options(path, line, &options, langs);
                QuestionKind::Choice { options }
            }
            T::Email => QuestionKind::Email,
            T::Phone => QuestionKind::Phone,
            T::Country => QuestionKind::Country,
            T::YesNo => QuestionKind::YesNo,
            T::Number => {
                let num =
                    |this: &mut Self, v: &Option<serde_yaml_ng::Value>, f: &str| -> Option<f64> {
                        let v = v.as_ref()?;
                        let n = v.as_f64();
                        if n.is_none() {
                            this.err(format!("{path}.{f}"), line, "must be a number");
                        }
                        n
                    };
                let min = num(self, &q.min, "min");
                let max = num(self, &q.max, "max");
                if let (Some(a), Some(b)) = (min, max) {
                    if a > b {
                        self.err(format!("{path}.min"), line, "min must not exceed max");
                    }
                }
                QuestionKind::Number {
                    min,
                    max,
                    integer: q.integer.unwrap_or(false),
                }
            }
            T::Date => {
                let bound = |this: &mut Self,
                             v: &Option<serde_yaml_ng::Value>,
                             f: &str|
                 -> Option<DateBound> {
                    let s = v.as_ref()?.as_str().unwrap_or("");
                    if s == "today" {
                        return Some(DateBound::Today);
                    }
                    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                        Ok(d) => Some(DateBound::Fixed(d)),
                        Err(_) => {
                            this.err(
                                format!("{path}.{f}"),
                                line,
                                "must be a date YYYY-MM-DD or \"today\"",
                            );
                            None
                        }
                    }
                };
                let min = bound(self, &q.min, "min");
                let max = bound(self, &q.max, "max");
                if let (Some(DateBound::Fixed(a)), Some(DateBound::Fixed(b))) = (min, max) {
                    if a > b {
                        self.err(format!("{path}.min"), line, "min must not be after max");
                    }
                }
                QuestionKind::Date { min, max }
            }
            T::Consent => {
                let url = q.policy_url.clone().unwrap_or_default();
                if !url.starts_with("https://") {
                    self.err(
                        format!("{path}.policy_url"),
                        line,
                        "a consent question needs an https:// policy_url",
                    );
                }
                let version = q.policy_version.clone().unwrap_or_default();
                if version.trim().is_empty() {
                    self.err(
                        format!("{path}.policy_version"),
                        line,
                        "a consent question needs a policy_version",
                    );
                }
                QuestionKind::Consent {
                    policy_url: url,
                    policy_version: version,
                }
            }
            T::Pattern => {
                let src = q.pattern.clone().unwrap_or_default();
                if src.is_empty() {
                    self.err(
                        format!("{path}.pattern"),
                        line,
                        "a pattern question needs a pattern",
                    );
                }
                // Anchored: the whole answer must match, not a part of it.
                match regex::RegexBuilder::new(&format!("^(?:{src})$"))
                    .size_limit(1 << 20)
                    .build()
                {
                    Ok(regex) => QuestionKind::Pattern { regex },
                    Err(e) => {
                        let l = self.line_of("pattern", &src, line.unwrap_or(0)).or(line);
                        self.err(format!("{path}.pattern"), l, format!("bad regex: {e}"));
                        return None;
                    }
                }
            }
        };

        if target == Target::Contact("language".to_owned()) {
            match &kind {
                QuestionKind::Choice { options } => {
                    for o in options {
                        if !langs.contains(&o.id) {
                            self.err(
                                format!("{path}.options"),
                                line,
                                format!(
                                    "option {:?} must be a survey language to set contact.language",
                                    o.id
                                ),
                            );
                        }
                    }
                }
                _ => self.err(
                    format!("{path}.save_to"),
                    line,
                    "contact.language needs a choice of languages",
                ),
            }
        }

        if self.errors.len() > errors_before {
            return None;
        }
        Some(Question {
            key: q.key,
            kind,
            prompt: q.prompt,
            label: q.label,
            retry: q.retry,
            required: q.required,
            when: q.when,
            ask_if_missing: q.ask_if_missing,
            save_to: target,
            max_attempts: q.max_attempts,
            fallback: q.fallback,
            web,
        })
    }

    /// The top-level `web:` section: every text it gives in every language, like the others.
    fn web(&mut self, raw: Option<RawWeb>, langs: &[String]) -> WebTexts {
        let raw = raw.unwrap_or_default();
        let start = self.line_of("web", "", 0);
        for (name, texts, max) in [
            ("title", &raw.title, WEB_TITLE),
            ("description", &raw.description, WEB_DESCRIPTION),
            ("start_button", &raw.start_button, WEB_BUTTON),
        ] {
            if let Some(t) = texts {
                let l = start.and_then(|s| self.line_of(name, "", s)).or(start);
                self.texts_within(&format!("web.{name}"), l, t, langs, max, WEB_ALLOWS);
                if name != "description" && t.values().any(|v| v.contains(['\n', '\r'])) {
                    self.err(format!("web.{name}"), l, "must be one line");
                }
            }
        }
        WebTexts {
            title: raw.title,
            description: raw.description,
            start_button: raw.start_button,
        }
    }

    fn options(
        &mut self,
        path: &str,
        line: Option<usize>,
        options: &[ChoiceOption],
        langs: &[String],
    ) {
        use crate::whatsapp::limits::*;
        let n = options.len();
        if n < 2 {
            self.err(
                format!("{path}.options"),
                line,
                "a choice needs at least two options",
            );
        }
        if n > NUMBERED_OPTIONS {
            self.err(
                format!("{path}.options"),
                line,
                format!("{n} options; at most {NUMBERED_OPTIONS}"),
            );
        }
        // How the options will be shown decides the limits that apply.
        let title_max = if n <= BUTTONS {
            BUTTON_TITLE
        } else if n <= LIST_ROWS {
            ROW_TITLE
        } else {
            TEXT_BODY
        };
        let shown_as = if n <= BUTTONS {
            "reply button"
        } else if n <= LIST_ROWS {
            "list row"
        } else {
            "numbered option"
        };
        let mut ids = BTreeSet::new();
        for (j, o) in options.iter().enumerate() {
            let opath = format!("{path}.options[{j}]");
            let oline = self.line_of("id", &o.id, line.unwrap_or(0)).or(line);
            if o.id.trim().is_empty() || o.id.len() > ROW_ID {
                self.err(
                    format!("{opath}.id"),
                    oline,
                    format!("ids are 1 to {ROW_ID} characters"),
                );
            }
            if !ids.insert(o.id.clone()) {
                self.err(
                    format!("{opath}.id"),
                    oline,
                    format!("duplicate option id {:?}", o.id),
                );
            }
            for lang in langs {
                match o.label.get(lang) {
                    None => self.err(format!("{opath}.label"), oline, format!("missing translation for {lang:?}")),
                    Some(l) if l.trim().is_empty() => {
                        self.err(format!("{opath}.label"), oline, format!("empty label for {lang:?}"))
                    }
                    Some(l) if char_len(l) > title_max => self.err(
                        format!("{opath}.label"),
                        oline,
                        format!(
                            "{lang:?} label {l:?} is {} characters; a {shown_as} title allows {title_max}",
                            char_len(l)
                        ),
                    ),
                    Some(_) => {}
                }
            }
            for lang in o.label.keys() {
                if !langs.contains(lang) {
                    self.err(
                        format!("{opath}.label"),
                        oline,
                        format!("{lang:?} is not one of the survey's languages"),
                    );
                }
            }
            if let Some(d) = &o.description {
                if n <= BUTTONS || n > LIST_ROWS {
                    self.err(
                        format!("{opath}.description"),
                        oline,
                        "descriptions are only shown in lists (4 to 10 options)",
                    );
                } else {
                    self.texts(
                        &format!("{opath}.description"),
                        oline,
                        d,
                        langs,
                        ROW_DESCRIPTION,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
id: mini
languages: [en, es]
default_language: en
texts:
  greeting_new: { en: "Hi {{contact.first_name}}", es: "Hola {{contact.first_name}}" }
  greeting_returning: { en: "Welcome back", es: "Hola de nuevo" }
  completion: { en: "Thanks", es: "Gracias" }
  handoff: { en: "An agent will help", es: "Un agente te ayudará" }
  ended: { en: "Bye", es: "Adiós" }
  opted_out: { en: "Unsubscribed", es: "Baja hecha" }
  text_only: { en: "Please answer with text", es: "Responde con texto" }
  invalid: { en: "Sorry, that is not valid", es: "No es válido" }
  list_button: { en: "Choose", es: "Elegir" }
questions:
  - key: topic
    type: choice
    prompt: { en: "Topic?", es: "¿Tema?" }
    options:
      - { id: sales, label: { en: Sales, es: Ventas } }
      - { id: support, label: { en: Support, es: Soporte } }
  - key: order
    type: pattern
    pattern: "[A-Z]{2}-[0-9]{4}"
    when: { key: topic, in: [support] }
    prompt: { en: "Order?", es: "¿Pedido?" }
"#;

    fn errors(src: &str) -> Vec<DefinitionError> {
        Survey::parse(src, 1).unwrap_err().0
    }

    fn has(errs: &[DefinitionError], path: &str, needle: &str) -> bool {
        errs.iter()
            .any(|e| e.path == path && e.message.contains(needle))
    }

    #[test]
    fn a_question_label_is_optional_localised_and_short() {
        let s = Survey::parse(MINI, 1).unwrap();
        let topic = s.question("topic").unwrap();
        assert_eq!(s.label(topic, "es"), "topic", "no label: the key");
        let labelled = MINI.replace(
            "    prompt: { en: \"Topic?\", es: \"¿Tema?\" }",
            "    prompt: { en: \"Topic?\", es: \"¿Tema?\" }\n    label: { en: Topic, es: Tema }",
        );
        let s = Survey::parse(&labelled, 1).unwrap();
        assert_eq!(s.label(s.question("topic").unwrap(), "es"), "Tema");
        let long = labelled.replace("es: Tema }", &format!("es: {} }}", "x".repeat(61)));
        assert!(has(&errors(&long), "questions[0].label", "61 characters"));
        let missing = labelled.replace("label: { en: Topic, es: Tema }", "label: { en: Topic }");
        assert!(has(
            &errors(&missing),
            "questions[0].label",
            "missing translation"
        ));
    }

    #[test]
    fn the_shipped_default_survey_is_valid() {
        let s = Survey::default_survey().unwrap();
        assert_eq!(s.version, 0);
        assert!(s.languages.contains(&"en".to_owned()) && s.languages.contains(&"es".to_owned()));
        let keys: Vec<&str> = s.questions.iter().map(|q| q.key.as_str()).collect();
        for k in [
            "name",
            "email",
            "phone",
            "customer_id",
            "inquiry",
            "order_id",
            "country",
            "language",
            "description",
            "consent",
        ] {
            assert!(keys.contains(&k), "default survey lacks {k}: {keys:?}");
        }
        assert!(s.question("order_id").unwrap().when.is_some());
    }

    #[test]
    fn a_label_is_localised_and_defaults_to_the_key() {
        let src = MINI.replace(
            "    prompt: { en: \"Topic?\", es: \"¿Tema?\" }",
            "    prompt: { en: \"Topic?\", es: \"¿Tema?\" }\n    label: { en: Topic, es: Tema }",
        );
        let s = Survey::parse(&src, 1).unwrap();
        assert_eq!(s.label(&s.questions[0], "es"), "Tema");
        assert_eq!(s.label(&s.questions[0], "fr"), "Topic");
        assert_eq!(s.label(&s.questions[1], "es"), "order");
    }

    #[test]
    fn a_label_must_be_short_one_line_and_translated() {
        let with = |label: &str| {
            MINI.replace(
                "    prompt: { en: \"Order?\", es: \"¿Pedido?\" }",
                &format!("    prompt: {{ en: \"Order?\", es: \"¿Pedido?\" }}\n    label: {label}"),
            )
        };
        let path = "questions[1].label";
        let long = "x".repeat(LABEL_MAX + 1);
        let e = errors(&with(&format!("{{ en: {long}, es: Pedido }}")));
        assert!(has(&e, path, "characters"), "{e:?}");
        let e = errors(&with("{ en: \"Order\\nnumber\", es: Pedido }"));
        assert!(has(&e, path, "one line"), "{e:?}");
        let e = errors(&with("{ en: Order }"));
        assert!(has(&e, path, "missing translation"), "{e:?}");
    }

    #[test]
    fn the_default_survey_labels_every_question() {
        let s = Survey::default_survey().unwrap();
        assert!(s.questions.iter().all(|q| q.label.is_some()));
        assert_eq!(
            s.label(s.question("customer_id").unwrap(), "en"),
            "Customer ID"
        );
    }

    #[test]
    fn a_valid_definition_parses_into_the_model() {
        let s = Survey::parse(MINI, 7).unwrap();
        assert_eq!(s.version, 7);
        assert_eq!(s.questions.len(), 2);
        assert!(
            matches!(&s.questions[0].kind, QuestionKind::Choice { options } if options.len() == 2)
        );
        assert_eq!(s.questions[1].save_to, Target::Var("order".into()));
        assert_eq!(s.questions[1].fallback, Fallback::Handoff);
        assert_eq!(s.reopen_window_minutes, 1440);
    }

    #[test]
    fn syntax_and_unknown_fields_report_a_line() {
        let e = errors(&MINI.replace(
            "    prompt: { en: \"Order?\"",
            "    promt: { en: \"Order?\"",
        ));
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("promt"), "{:?}", e[0]);
        assert_eq!(e[0].line, Some(26), "{:?}", e[0]);
        let e = errors("id: [unclosed");
        assert!(e[0].line.is_some());
    }

    #[test]
    fn duplicate_keys_are_found_with_their_line() {
        let src = MINI
            .replace("key: order", "key: topic")
            .replace("when: { key: topic, in: [support] }", "");
        let e = errors(&src);
        let d = e
            .iter()
            .find(|e| e.message.contains("duplicate key"))
            .unwrap();
        assert_eq!(d.path, "questions[1].key");
        assert_eq!(d.line, Some(22));
    }

    #[test]
    fn when_must_refer_to_an_earlier_known_question_and_possible_answer() {
        let e = errors(&MINI.replace("when: { key: topic,", "when: { key: nothing,"));
        assert!(
            has(&e, "questions[1].when.key", "unknown question \"nothing\""),
            "{e:?}"
        );
        let e = errors(&MINI.replace("in: [support]", "in: [billing]"));
        assert!(
            has(
                &e,
                "questions[1].when",
                "\"billing\" is not a possible answer"
            ),
            "{e:?}"
        );
        // referring to a later question
        let src = MINI.replace(
            "  - key: topic\n    type: choice\n",
            "  - key: topic\n    type: choice\n    when: { key: order, equals: X }\n",
        );
        let e = errors(&src);
        assert!(
            has(&e, "questions[0].when.key", "not an earlier question"),
            "{e:?}"
        );
    }

    #[test]
    fn whatsapp_limits_are_enforced_per_rendering() {
        let long = MINI.replace(
            "label: { en: Sales, es: Ventas }",
            "label: { en: Sales and marketing dept, es: Ventas }",
        );
        let e = errors(&long);
        assert!(
            has(
                &e,
                "questions[0].options[0].label",
                "reply button title allows 20"
            ),
            "{e:?}"
        );
        let mut rows = String::new();
        for i in 0..11 {
            rows.push_str(&format!(
                "      - {{ id: o{i}, label: {{ en: Option number {i} is long, es: O{i} }} }}\n"
            ));
        }
        let src = MINI.replace(
            "      - { id: sales, label: { en: Sales, es: Ventas } }\n      - { id: support, label: { en: Support, es: Soporte } }\n",
            &rows,
        ).replace("in: [support]", "in: [o1]");
        // 11 options: a numbered text list, long labels allowed
        assert!(Survey::parse(&src, 1).is_ok());
        let desc = MINI.replace(
            "{ id: sales, label: { en: Sales, es: Ventas } }",
            "{ id: sales, label: { en: Sales, es: Ventas }, description: { en: x, es: y } }",
        );
        assert!(has(
            &errors(&desc),
            "questions[0].options[0].description",
            "only shown in lists"
        ));
    }

    #[test]
    fn missing_translations_and_bad_regex_are_reported_together() {
        let src = MINI
            .replace(
                "completion: { en: \"Thanks\", es: \"Gracias\" }",
                "completion: { en: \"Thanks\" }",
            )
            .replace("[A-Z]{2}-[0-9]{4}", "[A-Z");
        let e = errors(&src);
        assert!(
            has(&e, "texts.completion", "missing translation for \"es\""),
            "{e:?}"
        );
        let r = e.iter().find(|e| e.path == "questions[1].pattern").unwrap();
        assert!(r.message.contains("bad regex"));
        assert_eq!(r.line, Some(24));
        assert!(e.len() >= 2);
    }

    #[test]
    fn settings_for_another_type_and_bad_targets_are_errors() {
        let src = MINI.replace(
            "    pattern: \"[A-Z]{2}-[0-9]{4}\"\n",
            "    pattern: \"x\"\n    min_length: 3\n    save_to: customer.order\n",
        );
        let e = errors(&src);
        assert!(
            has(
                &e,
                "questions[1].min_length",
                "does not apply to a pattern question"
            ),
            "{e:?}"
        );
        assert!(
            has(&e, "questions[1].save_to", "contact.<field> or var.<name>"),
            "{e:?}"
        );
        let src = MINI.replace("default_language: en", "default_language: fr");
        assert!(has(&errors(&src), "default_language", "not in languages"));
    }

    #[test]
    fn conditions_match_only_listed_answers() {
        let c = Condition {
            key: "t".into(),
            values: vec!["a".into()],
            equals: Some("b".into()),
        };
        let mut answers = BTreeMap::new();
        assert!(!c.matches(&answers));
        answers.insert("t".into(), "b".into());
        assert!(c.matches(&answers));
        answers.insert("t".into(), "c".into());
        assert!(!c.matches(&answers));
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,300}") {
            let _ = Survey::parse(&s, 1);
        }
    }
}
