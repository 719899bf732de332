//! The item codec every store shares: attribute-value constructors ([`s`], [`n`]), typed
//! reads from an item ([`ItemExt`]), and JSON attributes. A missing or malformed required
//! attribute is a [`StoreError::Corrupt`] naming the item's `pk`; optional attributes read as
//! `None`.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{attr, StoreError};

/// One DynamoDB item (or key, or expression-value map).
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A boolean attribute.
pub fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

/// A value as a JSON string attribute's text; a value that cannot be serialised is the
/// permanent [`StoreError::Encode`], never an empty attribute.
pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Encode(e.to_string()))
}

/// Typed reads from an item.
pub trait ItemExt {
    /// A string attribute, if present.
    fn str_opt(&self, name: &str) -> Option<&str>;
    /// A number attribute, if present and of type `T`.
    fn num_opt<T: FromStr>(&self, name: &str) -> Option<T>;
    /// A boolean attribute; false when absent.
    fn flag(&self, name: &str) -> bool;
    /// The item is corrupt: `reason`, keyed by its `pk`.
    fn corrupt(&self, reason: impl Into<String>) -> StoreError;

    /// A required string attribute.
    fn str_req(&self, name: &str) -> Result<&str, StoreError> {
        self.str_opt(name)
            .ok_or_else(|| self.corrupt(format!("{name} missing")))
    }

    /// A required number attribute.
    fn num_req<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.num_opt(name)
            .ok_or_else(|| self.corrupt(format!("{name} missing or not a number")))
    }

    /// A required string attribute holding JSON.
    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        serde_json::from_str(self.str_req(name)?).map_err(|e| self.corrupt(format!("{name}: {e}")))
    }
}

impl ItemExt for Item {
    fn str_opt(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }

    fn num_opt<T: FromStr>(&self, name: &str) -> Option<T> {
        self.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false)
    }

    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            key: self.str_opt(attr::PK).unwrap_or("").to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_attributes_that_are_missing_or_malformed_name_the_item() {
        let item = Item::from([
            (attr::PK.to_owned(), s("X#1")),
            ("count".to_owned(), s("three")),
            ("doc".to_owned(), s("{")),
        ]);
        for err in [
            item.str_req("name").unwrap_err(),
            item.num_req::<i64>("count").unwrap_err(),
            item.json::<serde_json::Value>("doc").unwrap_err(),
        ] {
            assert!(
                matches!(&err, StoreError::Corrupt { key, .. } if key == "X#1"),
                "{err}"
            );
        }
    }

    #[test]
    fn present_attributes_read_back_as_written() {
        let item = Item::from([
            ("a".to_owned(), s("x")),
            ("n".to_owned(), n(-42)),
            ("f".to_owned(), b(true)),
            ("j".to_owned(), s(to_json(&vec![1, 2]).unwrap())),
        ]);
        assert_eq!(item.str_req("a").unwrap(), "x");
        assert_eq!(item.num_req::<i64>("n").unwrap(), -42);
        assert_eq!(item.num_opt::<u32>("n"), None, "negative is no u32");
        assert!(item.flag("f") && !item.flag("missing"));
        assert_eq!(item.json::<Vec<i32>>("j").unwrap(), [1, 2]);
    }

    #[test]
    fn a_value_that_cannot_be_serialised_is_a_permanent_error() {
        // JSON object keys must be strings: a map keyed by pairs cannot be written.
        let unwritable = HashMap::from([((1, 2), 3)]);
        let err = to_json(&unwritable).unwrap_err();
        assert!(matches!(err, StoreError::Encode(_)), "{err:?}");
        assert!(!err.is_retryable());
    }
}
