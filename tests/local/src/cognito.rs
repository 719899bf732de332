//! The local user pool: at start the stack creates, in moto's `cognito-idp`, the template's
//! `UserPool` (its password policy), the browser app client (`UserPoolClient`, its auth flows),
//! the template's groups plus `integrations` (the local stand-in for a help desk's machine
//! client: moto has no client-credentials grant), and one user per sample agent, an `admin`
//! and an `integrations` user, each with a password generated for this run.
//!
//! [`LocalCognito::tokens`] signs a user in with `InitiateAuth` (`USER_PASSWORD_AUTH`): real
//! tokens, RS256-signed by moto with the key its JWKS serves, which `POST /local/token` hands
//! out. The calls are Cognito's JSON protocol over HTTP (`X-Amz-Target:
//! AWSCognitoIdentityProviderService.*`), which moto routes by that header; this keeps the
//! large Cognito SDK crate out of the build for six calls of a developer tool.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::seed::AGENTS;

/// The issuer of a pool's tokens, as Cognito (and moto) writes it.
pub fn issuer(region: &str, pool_id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}")
}

/// The local group a user in it stands for a machine client.
pub const INTEGRATIONS_GROUP: &str = "integrations";

/// The local users and their groups: every sample agent in `agents` (Alice, in both teams,
/// also leads), `admin` in `admins`, `integrations` in `integrations`.
pub fn local_users() -> Vec<(String, Vec<&'static str>)> {
    let mut users: Vec<(String, Vec<&'static str>)> = AGENTS
        .iter()
        .map(|(id, ..)| {
            let groups = if *id == "alice" {
                vec!["agents", "leads"]
            } else {
                vec!["agents"]
            };
            ((*id).to_owned(), groups)
        })
        .collect();
    users.push(("admin".into(), vec!["admins"]));
    users.push(("integrations".into(), vec![INTEGRATIONS_GROUP]));
    users
}

#[derive(Debug, thiserror::Error)]
pub enum CognitoError {
    #[error("cognito-idp {action}: {message}")]
    Call { action: String, message: String },
    #[error("infra/template.yaml: {0}")]
    Template(String),
    #[error("no local user {0}")]
    UnknownUser(String),
}

/// What the template says the pool and the browser client are.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// `UserPool.Properties.Policies` as JSON (the API takes the same shape).
    pub policies: Value,
    /// `UserPoolClient.Properties.ExplicitAuthFlows`.
    pub auth_flows: Vec<String>,
    /// Every `AWS::Cognito::UserPoolGroup`'s `GroupName`.
    pub groups: Vec<String>,
}

impl PoolSpec {
    pub fn from_template(text: &str) -> Result<PoolSpec, CognitoError> {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| CognitoError::Template(e.to_string()))?;
        let resources = &doc["Resources"];
        let policies = serde_json::to_value(&resources["UserPool"]["Properties"]["Policies"])
            .map_err(|e| CognitoError::Template(e.to_string()))?;
        let auth_flows = resources["UserPoolClient"]["Properties"]["ExplicitAuthFlows"]
            .as_sequence()
            .ok_or_else(|| {
                CognitoError::Template("UserPoolClient has no ExplicitAuthFlows".into())
            })?
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        let groups = resources
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Cognito::UserPoolGroup"))
            .filter_map(|(_, r)| r["Properties"]["GroupName"].as_str().map(str::to_owned))
            .collect();
        Ok(PoolSpec {
            policies,
            auth_flows,
            groups,
        })
    }
}

/// Tokens of one sign-in, as `POST /local/token` answers them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: String,
    pub expires_in: u64,
}

/// A pool provisioned in moto, with the users and passwords of this run.
#[derive(Debug, Clone)]
pub struct LocalCognito {
    endpoint: String,
    http: reqwest::Client,
    pub region: String,
    pub pool_id: String,
    /// The browser app client (the authorizer's audience).
    pub client_id: String,
    /// Username -> password (generated per run).
    pub passwords: BTreeMap<String, String>,
    /// Username -> the user's `sub` (what the seeded agent items store, `Agent.sub`).
    pub subs: BTreeMap<String, String>,
}

impl LocalCognito {
    /// Creates the pool, client, groups and users in the cognito-idp server at `endpoint`.
    pub async fn provision(
        endpoint: &str,
        name: &str,
        spec: &PoolSpec,
    ) -> Result<LocalCognito, CognitoError> {
        let http = reqwest::Client::new();
        let call = |action: &'static str, body: Value| call(&http, endpoint, action, body);
        let pool = call(
            "CreateUserPool",
            json!({"PoolName": name, "Policies": spec.policies,
                   "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": true},
                   "UsernameConfiguration": {"CaseSensitive": false}}),
        )
        .await?;
        let pool_id = text(&pool["UserPool"]["Id"], "CreateUserPool")?;
        let client = call(
            "CreateUserPoolClient",
            json!({"UserPoolId": pool_id, "ClientName": "prechat-inbox", "GenerateSecret": false,
                   "ExplicitAuthFlows": spec.auth_flows}),
        )
        .await?;
        let client_id = text(
            &client["UserPoolClient"]["ClientId"],
            "CreateUserPoolClient",
        )?;
        let mut groups = spec.groups.clone();
        groups.push(INTEGRATIONS_GROUP.into());
        for group in &groups {
            call(
                "CreateGroup",
                json!({"UserPoolId": pool_id, "GroupName": group}),
            )
            .await?;
        }
        let mut passwords = BTreeMap::new();
        let mut subs = BTreeMap::new();
        for (user, user_groups) in local_users() {
            let password = generate_password();
            let created = call(
                "AdminCreateUser",
                json!({"UserPoolId": pool_id, "Username": user, "MessageAction": "SUPPRESS"}),
            )
            .await?;
            let sub = created["User"]["Attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["Name"] == "sub")
                .map(|a| text(&a["Value"], "AdminCreateUser"))
                .ok_or_else(|| CognitoError::Call {
                    action: "AdminCreateUser".into(),
                    message: "the new user has no sub".into(),
                })??;
            subs.insert(user.clone(), sub);
            call(
                "AdminSetUserPassword",
                json!({"UserPoolId": pool_id, "Username": user, "Password": password, "Permanent": true}),
            )
            .await?;
            for group in user_groups {
                call(
                    "AdminAddUserToGroup",
                    json!({"UserPoolId": pool_id, "Username": user, "GroupName": group}),
                )
                .await?;
            }
            passwords.insert(user, password);
        }
        let region = pool_id
            .split_once('_')
            .map(|(r, _)| r.to_owned())
            .unwrap_or_else(|| "us-east-1".into());
        Ok(LocalCognito {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http,
            region,
            pool_id,
            client_id,
            passwords,
            subs,
        })
    }

    /// The `iss` of this pool's tokens (not the host serving its keys).
    pub fn issuer(&self) -> String {
        issuer(&self.region, &self.pool_id)
    }

    /// Where moto serves the pool's signing keys.
    pub fn jwks_url(&self) -> String {
        format!("{}/{}/.well-known/jwks.json", self.endpoint, self.pool_id)
    }

    /// Signs `username` in with its password (`InitiateAuth`, `USER_PASSWORD_AUTH`).
    pub async fn tokens(&self, username: &str) -> Result<Tokens, CognitoError> {
        let password = self
            .passwords
            .get(username)
            .ok_or_else(|| CognitoError::UnknownUser(username.to_owned()))?;
        self.sign_in(&self.client_id, username, password).await
    }

    /// `InitiateAuth` with `USER_PASSWORD_AUTH` for any client of the pool.
    pub async fn sign_in(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Result<Tokens, CognitoError> {
        let r = call(
            &self.http,
            &self.endpoint,
            "InitiateAuth",
            json!({"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": username, "PASSWORD": password}}),
        )
        .await?;
        let result = &r["AuthenticationResult"];
        Ok(Tokens {
            access_token: text(&result["AccessToken"], "InitiateAuth")?,
            id_token: text(&result["IdToken"], "InitiateAuth")?,
            expires_in: result["ExpiresIn"].as_u64().unwrap_or(3600),
        })
    }

    /// One user-pool call passed through as the browser made it: status and body as moto
    /// answered (the inbox's same-origin proxy).
    pub async fn forward(
        &self,
        action: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), CognitoError> {
        let fail = |message: String| CognitoError::Call {
            action: action.to_owned(),
            message,
        };
        let resp = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityProviderService.{action}"),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        Ok((status, bytes.to_vec()))
    }

    /// Another app client of the pool (tests: a client the authorizer does not accept).
    pub async fn create_client(&self, name: &str) -> Result<String, CognitoError> {
        let r = call(
            &self.http,
            &self.endpoint,
            "CreateUserPoolClient",
            json!({"UserPoolId": self.pool_id, "ClientName": name, "GenerateSecret": false,
                   "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}),
        )
        .await?;
        text(&r["UserPoolClient"]["ClientId"], "CreateUserPoolClient")
    }
}

/// One Cognito JSON-protocol call.
async fn call(
    http: &reqwest::Client,
    endpoint: &str,
    action: &'static str,
    body: Value,
) -> Result<Value, CognitoError> {
    let fail = |message: String| CognitoError::Call {
        action: action.to_owned(),
        message,
    };
    let resp = http
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AWSCognitoIdentityProviderService.{action}"),
        )
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = resp.status();
    let value: Value = resp.json().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        let kind = value["__type"].as_str().unwrap_or("error");
        let message = value["message"].as_str().unwrap_or_default();
        return Err(fail(format!("{status} {kind}: {message}")));
    }
    Ok(value)
}

fn text(v: &Value, action: &str) -> Result<String, CognitoError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| CognitoError::Call {
            action: action.to_owned(),
            message: "answer without the expected field".into(),
        })
}

/// A password for this run: 24 random hex digits (from `/dev/urandom`, else hashed process
/// entropy) plus one character of every class a strong policy requires.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 12];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !filled {
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            let n = h.finish().to_le_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
    }
    format!("Pc-{}-x9!", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_gives_the_policy_auth_flows_and_groups() {
        let text = std::fs::read_to_string(crate::template_path()).unwrap();
        let spec = PoolSpec::from_template(&text).unwrap();
        assert!(spec.policies["PasswordPolicy"]["MinimumLength"].as_u64() >= Some(12));
        assert!(spec
            .auth_flows
            .contains(&"ALLOW_USER_PASSWORD_AUTH".to_owned()));
        assert_eq!(spec.groups, ["agents", "leads", "admins"]);
    }

    #[test]
    fn generated_passwords_differ_and_have_every_character_class() {
        let (a, b) = (generate_password(), generate_password());
        assert_ne!(a, b);
        assert!(a.len() >= 14);
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| !c.is_ascii_alphanumeric()));
    }

    #[test]
    fn every_sample_agent_is_a_user_and_alice_leads() {
        let users = local_users();
        let names: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(names, ["alice", "bruno", "carmen", "admin", "integrations"]);
        assert_eq!(users[0].1, ["agents", "leads"]);
        assert_eq!(users[3].1, ["admins"]);
    }
}
