//! Secrets (app secret, verify token, access token, webhook and log keys) read once at init.
//! This module only reads them; `entrypoints::init` decides which a function loads.
//!
//! In AWS a secret is named by `<NAME>_PARAM`, an SSM Parameter Store SecureString that the
//! template points at; it is read with decryption in a single `GetParameters` call for all of a
//! function's secrets. For local runs only, the value itself may be given as `<NAME>`; a real
//! Lambda environment (which sets `AWS_LAMBDA_INITIALIZATION_TYPE`) refuses plain values so a
//! secret never ends up in a template or console in clear.

use std::fmt;

use aws_sdk_ssm::Client as SsmClient;

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that needs it (an HMAC key, an Authorization header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0}: set {0}_PARAM to the name of an SSM SecureString parameter (or {0} itself for local runs)")]
    NotConfigured(String),
    #[error("secret {0}: a plain value is accepted for local runs only; in Lambda set {0}_PARAM")]
    PlainInLambda(String),
    #[error("secret {name}: SSM parameter {parameter} was not found or is empty")]
    MissingParameter { name: String, parameter: String },
    #[error("reading secrets from SSM failed: {0}")]
    Ssm(String),
}

impl SecretError {
    /// SSM being unreachable may pass; a missing or misconfigured secret will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SecretError::Ssm(_))
    }
}

/// Where a secret comes from, resolved from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Ssm(String),
    Plain(Secret),
}

/// Whether a `_PARAM` value names a parameter at all: the template turns an empty parameter
/// into `"/"` (`!Sub "/${Param}"`), which names nothing.
fn names_a_parameter(v: &str) -> bool {
    !v.trim().trim_matches('/').is_empty()
}

/// Resolves where `name` comes from, given an environment lookup.
pub fn resolve_source(
    name: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SecretSource, SecretError> {
    let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    if let Some(param) = get(&format!("{name}_PARAM")).filter(|p| names_a_parameter(p)) {
        return Ok(SecretSource::Ssm(param.trim().to_owned()));
    }
    match get(name) {
        Some(_) if get("AWS_LAMBDA_INITIALIZATION_TYPE").is_some() => {
            Err(SecretError::PlainInLambda(name.to_owned()))
        }
        Some(value) => Ok(SecretSource::Plain(Secret(value))),
        None => Err(SecretError::NotConfigured(name.to_owned())),
    }
}

/// Loads the named secrets (in order) with at most one SSM request, through an environment lookup
/// (`crate::config::process_env` for the process environment).
pub async fn load_with(
    ssm: &SsmClient,
    names: &[&str],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Secret>, SecretError> {
    Ok(load_parts(ssm, names, &[], lookup).await?.0)
}

/// Loads required and optional secrets (each list in order) with at most one SSM request.
/// Nothing else happens on the way: the log-redaction key is one of the optional secrets
/// `crate::entrypoints::init::load_secrets` asks for, and it sets the key itself.
///
/// A required secret must be configured and its SSM parameter must exist and be non-empty.
/// An optional one is `None` when it is not configured (no `_PARAM`, an empty one, or `"/"`)
/// or when its parameter does not exist or is empty: a deployment that never created the
/// parameter still starts, with a warning. A plain value in Lambda is refused for both.
pub async fn load_parts(
    ssm: &SsmClient,
    required: &[&str],
    optional: &[&str],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Vec<Secret>, Vec<Option<Secret>>), SecretError> {
    let sources = required
        .iter()
        .map(|n| resolve_source(n, &lookup))
        .collect::<Result<Vec<_>, _>>()?;
    let optional_source = |n: &str| match resolve_source(n, &lookup) {
        Ok(s) => Ok(Some(s)),
        Err(SecretError::NotConfigured(_)) => Ok(None),
        Err(e) => Err(e),
    };
    let optional_sources = optional
        .iter()
        .map(|n| optional_source(n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut params: Vec<String> = sources
        .iter()
        .map(Some)
        .chain(optional_sources.iter().map(Option::as_ref))
        .filter_map(|s| match s {
            Some(SecretSource::Ssm(p)) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let mut fetched = std::collections::HashMap::new();
    if !params.is_empty() {
        params.sort();
        params.dedup();
        // Names SSM does not know come back as `InvalidParameters`, not as an error.
        let out = ssm
            .get_parameters()
            .set_names(Some(params))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                SecretError::Ssm(aws_sdk_ssm::error::DisplayErrorContext(e).to_string())
            })?;
        for p in out.parameters() {
            if let (Some(n), Some(v)) = (p.name(), p.value()) {
                if !v.is_empty() {
                    fetched.insert(n.to_owned(), Secret(v.to_owned()));
                }
            }
        }
    }
    let pick_optional = |name: &str, source: Option<SecretSource>| match source {
        None => None,
        Some(SecretSource::Plain(s)) => Some(s),
        Some(SecretSource::Ssm(p)) => {
            let got = fetched.get(&p).cloned();
            if got.is_none() {
                tracing::warn!(secret = name, parameter = %p, "optional secret's SSM parameter not found or empty; going on without it");
            }
            got
        }
    };
    let required = required
        .iter()
        .zip(sources)
        .map(|(name, source)| match source {
            SecretSource::Plain(s) => Ok(s),
            SecretSource::Ssm(param) => {
                fetched
                    .get(&param)
                    .cloned()
                    .ok_or_else(|| SecretError::MissingParameter {
                        name: (*name).to_owned(),
                        parameter: param.clone(),
                    })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let optional = optional
        .iter()
        .zip(optional_sources)
        .map(|(name, source)| pick_optional(name, source))
        .collect();
    Ok((required, optional))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn ssm_parameter_wins_over_plain_value() {
        let src = resolve_source("TOKEN", env(&[("TOKEN_PARAM", "/p/t"), ("TOKEN", "x")])).unwrap();
        assert_eq!(src, SecretSource::Ssm("/p/t".into()));
    }

    #[test]
    fn plain_value_only_outside_lambda() {
        let src = resolve_source("TOKEN", env(&[("TOKEN", "x")])).unwrap();
        assert_eq!(src, SecretSource::Plain(Secret::new("x")));
        let err = resolve_source(
            "TOKEN",
            env(&[
                ("TOKEN", "x"),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ]),
        )
        .unwrap_err();
        assert!(matches!(err, SecretError::PlainInLambda(_)));
        assert!(!err.is_retryable());
    }

    #[test]
    fn unconfigured_secret_names_both_variables() {
        let err = resolve_source("TOKEN", env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("TOKEN_PARAM") && text.contains("TOKEN"),
            "{text}"
        );
    }

    #[test]
    fn empty_or_slash_only_param_is_not_configured() {
        for empty in ["", "  ", "/", " / ", "//"] {
            let err = resolve_source("TOKEN", env(&[("TOKEN_PARAM", empty)])).unwrap_err();
            assert!(matches!(err, SecretError::NotConfigured(_)), "{empty:?}");
        }
        assert_eq!(
            resolve_source("TOKEN", env(&[("TOKEN_PARAM", "/p/t")])).unwrap(),
            SecretSource::Ssm("/p/t".into())
        );
    }

    #[test]
    fn debug_never_prints_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
