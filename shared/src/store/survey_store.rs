//! Published survey definitions: immutable versions `SURVEY#{survey_id}` / `V#{version:06}`.
//!
//! A version holds the YAML exactly as published (re-validated when loaded) and its SHA-256.
//! Publishing never overwrites: the next version number is taken with a conditional put, and
//! publishing the same text as the latest version is a no-op, so a repeated `publish` is safe.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use super::{attr, DynamoTable, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSurvey {
    pub survey_id: String,
    pub version: u32,
    pub yaml: String,
    pub sha256: String,
    pub published_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    New(u32),
    /// The latest version already has this exact text.
    Unchanged(u32),
}

pub trait SurveyStore: Send + Sync {
    fn latest(
        &self,
        survey_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<StoredSurvey>, StoreError>> + Send;
    fn get(
        &self,
        survey_id: &str,
        version: u32,
    ) -> impl std::future::Future<Output = Result<Option<StoredSurvey>, StoreError>> + Send;
    /// Every version, oldest first (without the YAML).
    fn list(
        &self,
        survey_id: &str,
    ) -> impl std::future::Future<Output = Result<Vec<StoredSurvey>, StoreError>> + Send;
    /// Stores `yaml` (already validated by the caller) as the next version.
    fn publish(
        &self,
        survey_id: &str,
        yaml: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<Published, StoreError>> + Send;
}

#[derive(Clone, Debug)]
pub struct DynamoSurveyStore {
    table: DynamoTable,
}

pub fn survey_pk(survey_id: &str) -> String {
    format!("SURVEY#{survey_id}")
}

pub fn version_sk(version: u32) -> String {
    format!("V#{version:06}")
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A survey version item; `with_yaml` when the read asked for the YAML (a listing projects it
/// away and reads it as empty).
fn decode(
    item: &HashMap<String, AttributeValue>,
    with_yaml: bool,
) -> Result<StoredSurvey, StoreError> {
    let gs = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let gn = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let pk = gs(attr::PK).unwrap_or_default();
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: pk.clone(),
        reason: reason.to_owned(),
    };
    Ok(StoredSurvey {
        survey_id: gs("survey_id").ok_or_else(|| corrupt("no survey_id"))?,
        version: gn("version")
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| corrupt("no version"))?,
        yaml: match gs("yaml") {
            Some(yaml) => yaml,
            None if with_yaml => return Err(corrupt("no yaml")),
            None => String::new(),
        },
        sha256: gs("sha256").ok_or_else(|| corrupt("no sha256"))?,
        published_at: gn("published_at").unwrap_or(0),
    })
}

impl DynamoSurveyStore {
    pub fn new(table: DynamoTable) -> Self {
        DynamoSurveyStore { table }
    }

    async fn query(
        &self,
        survey_id: &str,
        newest_first: bool,
        limit: Option<i32>,
        with_yaml: bool,
    ) -> Result<Vec<StoredSurvey>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
                .expression_attribute_values(":pk", AttributeValue::S(survey_pk(survey_id)))
                .expression_attribute_values(":v", AttributeValue::S("V#".into()))
                .scan_index_forward(!newest_first)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .set_limit(limit);
            if !with_yaml {
                q = q.projection_expression("pk, survey_id, version, sha256, published_at");
            }
            let page = q.send().await.map_err(StoreError::from_sdk)?;
            for item in page.items() {
                out.push(decode(item, with_yaml)?);
            }
            match page.last_evaluated_key {
                Some(k) if limit.is_none() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}

impl SurveyStore for DynamoSurveyStore {
    async fn latest(&self, survey_id: &str) -> Result<Option<StoredSurvey>, StoreError> {
        Ok(self
            .query(survey_id, true, Some(1), true)
            .await?
            .into_iter()
            .next())
    }

    async fn get(&self, survey_id: &str, version: u32) -> Result<Option<StoredSurvey>, StoreError> {
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key(attr::PK, AttributeValue::S(survey_pk(survey_id)))
            .key(attr::SK, AttributeValue::S(version_sk(version)))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.item.as_ref().map(|i| decode(i, true)).transpose()
    }

    async fn list(&self, survey_id: &str) -> Result<Vec<StoredSurvey>, StoreError> {
        self.query(survey_id, false, None, false).await
    }

    async fn publish(
        &self,
        survey_id: &str,
        yaml: &str,
        now: i64,
    ) -> Result<Published, StoreError> {
        let sha = sha256_hex(yaml);
        // A concurrent publisher may take the same number: take the next one and try again.
        for _ in 0..5 {
            let latest = self.latest(survey_id).await?;
            if let Some(l) = &latest {
                if l.sha256 == sha {
                    return Ok(Published::Unchanged(l.version));
                }
            }
            let version = latest.map(|l| l.version + 1).unwrap_or(1);
            let r = self
                .table
                .client
                .put_item()
                .table_name(&self.table.name)
                .item(attr::PK, AttributeValue::S(survey_pk(survey_id)))
                .item(attr::SK, AttributeValue::S(version_sk(version)))
                .item("survey_id", AttributeValue::S(survey_id.to_owned()))
                .item("version", AttributeValue::N(version.to_string()))
                .item("yaml", AttributeValue::S(yaml.to_owned()))
                .item("sha256", AttributeValue::S(sha.clone()))
                .item("published_at", AttributeValue::N(now.to_string()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(StoreError::from_sdk);
            match r {
                Ok(_) => return Ok(Published::New(version)),
                Err(StoreError::ConditionFailed(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(
            "too many concurrent publishes".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_item(with: &[(&str, &str)]) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            (
                attr::PK.to_owned(),
                AttributeValue::S("SURVEY#default".into()),
            ),
            ("survey_id".to_owned(), AttributeValue::S("default".into())),
            ("version".to_owned(), AttributeValue::N("3".into())),
        ]);
        for (k, v) in with {
            item.insert((*k).to_owned(), AttributeValue::S((*v).to_owned()));
        }
        item
    }

    #[test]
    fn a_survey_version_read_for_its_yaml_without_one_is_corrupt_not_empty() {
        let item = version_item(&[("sha256", "ab")]);
        let err = decode(&item, true).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert_eq!(
            decode(&item, false).unwrap().yaml,
            "",
            "a listing projects it away"
        );
    }

    #[test]
    fn a_survey_version_without_its_sha256_is_corrupt() {
        let err = decode(&version_item(&[("yaml", "id: x")]), true).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }
}
