//! The survey catalogue: which definition a conversation runs on.
//!
//! Published versions are immutable, so each is loaded and parsed once per process; the latest
//! version of the configured survey is cached for a short while (`PRECHAT_SURVEY_CACHE_SECONDS`).
//! Version 0 is the shipped default, which needs no store at all. A version that is missing or
//! does not parse is a [`CatalogError::Unavailable`]: it stays so, and the caller parks the event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::definition::{DefinitionErrors, Survey};
use crate::store::survey_store::SurveyStore;
use crate::store::StoreError;

/// Why the catalogue could not give a survey.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A published version that is missing or does not parse (permanent).
    #[error("survey {survey_id} v{version}: {reason}")]
    Unavailable {
        survey_id: String,
        version: u32,
        reason: String,
    },
}

/// Immutable survey versions, loaded once; the latest version cached for a short while.
pub struct SurveyCatalog<V> {
    store: V,
    survey_id: String,
    ttl: Duration,
    versions: Mutex<HashMap<(String, u32), Arc<Survey>>>,
    latest: Mutex<Option<(Arc<Survey>, Instant)>>,
    default: Arc<Survey>,
}

impl<V: SurveyStore> SurveyCatalog<V> {
    /// Fails only when the shipped default survey does not parse.
    pub fn new(store: V, survey_id: String, ttl: Duration) -> Result<Self, DefinitionErrors> {
        let default = Survey::default_survey()?;
        Ok(SurveyCatalog {
            store,
            survey_id,
            ttl,
            versions: Mutex::new(HashMap::new()),
            latest: Mutex::new(None),
            default: Arc::new(default),
        })
    }

    fn cached(&self, id: &str, version: u32) -> Option<Arc<Survey>> {
        self.versions
            .lock()
            .ok()?
            .get(&(id.to_owned(), version))
            .cloned()
    }

    fn remember(&self, survey: Arc<Survey>) {
        if let Ok(mut m) = self.versions.lock() {
            m.insert((survey.id.clone(), survey.version), survey);
        }
    }

    fn parse(stored_id: &str, version: u32, yaml: &str) -> Result<Arc<Survey>, CatalogError> {
        Survey::parse(yaml, version)
            .map(Arc::new)
            .map_err(|e| CatalogError::Unavailable {
                survey_id: stored_id.to_owned(),
                version,
                reason: e.to_string(),
            })
    }

    /// The version a conversation runs on (0 = the shipped default).
    pub async fn version(&self, id: &str, version: u32) -> Result<Arc<Survey>, CatalogError> {
        if version == 0 {
            return Ok(self.default.clone());
        }
        if let Some(s) = self.cached(id, version) {
            return Ok(s);
        }
        let stored =
            self.store
                .get(id, version)
                .await?
                .ok_or_else(|| CatalogError::Unavailable {
                    survey_id: id.to_owned(),
                    version,
                    reason: "version not found".to_owned(),
                })?;
        let survey = Self::parse(id, version, &stored.yaml)?;
        self.remember(survey.clone());
        Ok(survey)
    }

    /// The latest published version of the configured survey, else the shipped default.
    pub async fn latest(&self) -> Result<Arc<Survey>, CatalogError> {
        if let Ok(guard) = self.latest.lock() {
            if let Some((s, at)) = guard.as_ref() {
                if at.elapsed() < self.ttl {
                    return Ok(s.clone());
                }
            }
        }
        let survey = match self.store.latest(&self.survey_id).await? {
            Some(stored) => match self.cached(&stored.survey_id, stored.version) {
                Some(s) => s,
                None => {
                    let s = Self::parse(&stored.survey_id, stored.version, &stored.yaml)?;
                    self.remember(s.clone());
                    s
                }
            },
            None => self.default.clone(),
        };
        if let Ok(mut guard) = self.latest.lock() {
            *guard = Some((survey.clone(), Instant::now()));
        }
        Ok(survey)
    }
}
