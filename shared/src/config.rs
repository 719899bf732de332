//! Typed configuration read once at init from the environment.
//!
//! Every function describes its settings with an [`EnvReader`]; reading never stops at the
//! first problem, so a misconfigured deployment gets one error naming every missing or
//! malformed variable. Readers take an environment lookup (`Fn(&str) -> Option<String>`) so
//! tests and the local stack can pass their own; [`process_env`] is the one lookup of the
//! process environment.

/// The process environment as a lookup: what `from_env` constructors pass to their readers.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

use std::fmt;
use std::str::FromStr;

/// One or more settings were missing or malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.problems.join("; "))
    }
}

/// Collects settings and their problems; call [`EnvReader::finish`] once all are read.
pub struct EnvReader<F = fn(&str) -> Option<String>> {
    lookup: F,
    problems: Vec<String>,
}

impl EnvReader {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        EnvReader {
            lookup: process_env,
            problems: Vec::new(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> EnvReader<F> {
    /// Reads from any lookup function (tests, local runs).
    pub fn with_lookup(lookup: F) -> Self {
        EnvReader {
            lookup,
            problems: Vec::new(),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A setting that must be present. Returns an empty string (and records the problem) when missing.
    pub fn required(&mut self, name: &str) -> String {
        match self.get(name) {
            Some(v) => v,
            None => {
                self.problems.push(format!("{name} is not set"));
                String::new()
            }
        }
    }

    /// A setting that may be absent.
    pub fn optional(&mut self, name: &str) -> Option<String> {
        self.get(name)
    }

    /// A parsed setting with a default when absent; a present but malformed value is a problem.
    pub fn parsed_or<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(v) => v,
                Err(e) => {
                    self.problems.push(format!("{name} is malformed: {e}"));
                    default
                }
            },
        }
    }

    /// Records a problem found while interpreting settings.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Ok when every setting read so far was fine.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn reader(pairs: &[(&str, &str)]) -> EnvReader<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvReader::with_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn one_error_names_every_problem() {
        let mut env = reader(&[("PRECHAT_BATCH", "ten"), ("PRECHAT_EMPTY", "  ")]);
        let _ = env.required("PRECHAT_TABLE");
        let _ = env.required("PRECHAT_EMPTY");
        let n: u32 = env.parsed_or("PRECHAT_BATCH", 10);
        assert_eq!(n, 10);
        let err = env.finish().unwrap_err();
        assert_eq!(err.problems.len(), 3);
        let text = err.to_string();
        assert!(text.contains("PRECHAT_TABLE is not set"), "{text}");
        assert!(text.contains("PRECHAT_EMPTY is not set"), "{text}");
        assert!(text.contains("PRECHAT_BATCH is malformed"), "{text}");
    }

    #[test]
    fn present_values_are_trimmed_and_parsed() {
        let mut env = reader(&[("A", " x "), ("N", "42")]);
        assert_eq!(env.required("A"), "x");
        assert_eq!(env.parsed_or::<u32>("N", 1), 42);
        assert_eq!(env.optional("MISSING"), None);
        assert!(env.finish().is_ok());
    }
}
