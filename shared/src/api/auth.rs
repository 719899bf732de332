//! Who called `/api/*`: the [`Principal`] from the claims API Gateway's JWT authorizer passed.
//!
//! Placeholder with the issue-11 contract items (owner: the auth helper); the merge takes the
//! owner's version.

use std::collections::{BTreeSet, HashMap};

/// Who called `/api/*`, from the claims API Gateway's JWT authorizer passed (never from the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A user's Cognito username (= the agent id), or a machine client's app client id.
    pub id: String,
    /// The token's `sub`.
    pub sub: String,
    /// true for a machine client (client-credentials token: `client_id` + `scope`, no username/groups),
    /// or a user in the `integrations` group (the local stand-in).
    pub machine: bool,
    pub groups: BTreeSet<Group>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Agents,
    Leads,
    Admins,
    Integrations,
}

impl Principal {
    /// Admins group.
    pub fn is_admin(&self) -> bool {
        self.groups.contains(&Group::Admins)
    }
    /// Leads group.
    pub fn is_lead(&self) -> bool {
        self.groups.contains(&Group::Leads)
    }
    /// Machine client or Integrations group.
    pub fn is_integration(&self) -> bool {
        self.machine || self.groups.contains(&Group::Integrations)
    }
}

/// Settings: which app client ids are accepted as machine clients (`PRECHAT_API_MACHINE_CLIENTS`, comma separated).
pub struct AuthConfig {
    pub machine_clients: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no {0} claim")]
    Missing(&'static str),
    #[error("client is not an accepted machine client")]
    UnknownClient,
}

/// Reads `requestContext.authorizer.jwt.claims` (every value a string; `cognito:groups` like "[agents leads]").
pub fn principal(
    claims: &HashMap<String, String>,
    config: &AuthConfig,
) -> Result<Principal, AuthError> {
    let sub = claims.get("sub").ok_or(AuthError::Missing("sub"))?.clone();
    let groups: BTreeSet<Group> = claims
        .get("cognito:groups")
        .map(|g| {
            g.trim_matches(|c| c == '[' || c == ']')
                .split([' ', ','])
                .filter_map(|g| match g.trim() {
                    "agents" => Some(Group::Agents),
                    "leads" => Some(Group::Leads),
                    "admins" => Some(Group::Admins),
                    "integrations" => Some(Group::Integrations),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let scopes = claims
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let user = claims
        .get("username")
        .or_else(|| claims.get("cognito:username"));
    match user {
        Some(id) => Ok(Principal {
            id: id.clone(),
            sub,
            machine: groups.contains(&Group::Integrations),
            groups,
            scopes,
        }),
        None => {
            let client = claims
                .get("client_id")
                .ok_or(AuthError::Missing("username"))?;
            if !config.machine_clients.iter().any(|c| c == client) {
                return Err(AuthError::UnknownClient);
            }
            Ok(Principal {
                id: client.clone(),
                sub,
                machine: true,
                groups,
                scopes,
            })
        }
    }
}
