//! Who called `/api/*`: the [`Principal`], read from the claims API Gateway's HTTP API JWT
//! authorizer put into the event (`requestContext.authorizer.jwt.claims`), never from the token.
//!
//! API Gateway has already checked the token (RS256 signature against the user pool's JWKS,
//! issuer, `aud` or `client_id` among the authorizer's audience, `exp`/`nbf`) before the
//! function runs; what reaches us is a flat map in which EVERY value is a string: numbers as
//! `"1700000000"`, arrays Go-style as `"[agents leads]"` (space separated, no quotes). The three
//! token shapes Cognito issues, as they arrive:
//!
//! | token | identifying claims | groups | principal |
//! |---|---|---|---|
//! | user access token | `token_use=access`, `client_id`, `username`, no `aud` | `cognito:groups` | `id` = `username` |
//! | user id token | `token_use=id`, `aud`, `cognito:username` | `cognito:groups` | `id` = `cognito:username` |
//! | machine (client-credentials) | `token_use=access`, `client_id`, `scope`, no username | none | `id` = `client_id`, `machine` |
//!
//! A machine token is accepted only when its client id is one of
//! [`AuthConfig::machine_clients`] (`PRECHAT_API_MACHINE_CLIENTS`): the authorizer's audience
//! also holds the browser client, and a client-credentials token can be minted by any app client
//! with a secret. A user in the `integrations` group (the local stand-in for a machine client,
//! since moto's Cognito has no client-credentials grant) is `machine` too.
//!
//! Everything here is pure and total: any map of any strings gives a [`Principal`] or an
//! [`AuthError`] (every one answered 401), never a panic. Error texts name claims, never values.

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

/// The Cognito groups prechat knows; any other group a user is in is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Agents,
    Leads,
    Admins,
    Integrations,
}

impl Group {
    /// The group's name in the user pool.
    pub fn name(self) -> &'static str {
        match self {
            Group::Agents => "agents",
            Group::Leads => "leads",
            Group::Admins => "admins",
            Group::Integrations => "integrations",
        }
    }

    /// The group named `name` (exact, as Cognito group names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Group> {
        [
            Group::Agents,
            Group::Leads,
            Group::Admins,
            Group::Integrations,
        ]
        .into_iter()
        .find(|g| g.name() == name)
    }
}

impl Principal {
    /// In the `admins` group.
    pub fn is_admin(&self) -> bool {
        self.groups.contains(&Group::Admins)
    }

    /// In the `leads` group.
    pub fn is_lead(&self) -> bool {
        self.groups.contains(&Group::Leads)
    }

    /// A machine client, or a user in the `integrations` group.
    pub fn is_integration(&self) -> bool {
        self.machine || self.groups.contains(&Group::Integrations)
    }
}

/// Settings: which app client ids are accepted as machine clients (`PRECHAT_API_MACHINE_CLIENTS`, comma separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub machine_clients: Vec<String>,
}

impl AuthConfig {
    /// The environment variable naming the accepted machine client ids.
    pub const MACHINE_CLIENTS_VAR: &'static str = "PRECHAT_API_MACHINE_CLIENTS";

    /// Reads a comma-separated list (blanks around ids and empty items are dropped).
    pub fn from_list(list: &str) -> AuthConfig {
        AuthConfig {
            machine_clients: list
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// Why the claims name nobody. Every variant is answered 401 and none is retryable: the same
/// claims give the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The event carries no JWT authorizer claims at all (a route without the authorizer).
    #[error("no JWT authorizer claims in the request")]
    NoClaims,
    /// A claim the token shape needs is absent or empty.
    #[error("claim {0} is missing")]
    MissingClaim(&'static str),
    /// A claim is not in the shape API Gateway passes (too long, control characters, a groups
    /// list that is not `[a b]`).
    #[error("claim {0} is malformed")]
    MalformedClaim(&'static str),
    /// `token_use` is neither `access` nor `id`.
    #[error("token_use is neither access nor id")]
    UnknownTokenUse,
    /// A client-credentials token from an app client not in `PRECHAT_API_MACHINE_CLIENTS`.
    #[error("machine client is not accepted")]
    UnknownClient,
}

impl AuthError {
    /// Never: the claims of a request do not change.
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        401
    }
}

/// Longest id or `sub` accepted, in bytes (Cognito usernames are at most 128 characters).
pub const MAX_ID_BYTES: usize = 512;
/// Longest `cognito:groups` or `scope` value accepted, in bytes.
pub const MAX_LIST_BYTES: usize = 16 * 1024;

/// Reads `requestContext.authorizer.jwt.claims` (every value a string; `cognito:groups` like "[agents leads]").
pub fn principal(
    claims: &HashMap<String, String>,
    config: &AuthConfig,
) -> Result<Principal, AuthError> {
    if claims.is_empty() {
        return Err(AuthError::NoClaims);
    }
    let token_use = claims.get("token_use").map(String::as_str);
    if !matches!(token_use, None | Some("access") | Some("id")) {
        return Err(AuthError::UnknownTokenUse);
    }
    let sub = id_claim(claims, "sub")?.ok_or(AuthError::MissingClaim("sub"))?;
    let scopes = list_claim(claims, "scope")?
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let groups_value = claims.get("cognito:groups").map(String::as_str);

    let username = match token_use {
        Some("id") => id_claim(claims, "cognito:username")?,
        _ => id_claim(claims, "username")?,
    };
    if let Some(username) = username {
        let groups = parse_groups(groups_value)?;
        return Ok(Principal {
            id: username.to_owned(),
            sub: sub.to_owned(),
            machine: groups.contains(&Group::Integrations),
            groups,
            scopes,
        });
    }
    // No username: a machine token, or an id token without its username.
    if token_use == Some("id") {
        return Err(AuthError::MissingClaim("cognito:username"));
    }
    let client_id = id_claim(claims, "client_id")?.ok_or(AuthError::MissingClaim("username"))?;
    if groups_value.is_some() {
        // Client-credentials tokens never carry groups: these claims are of no shape Cognito issues.
        return Err(AuthError::MalformedClaim("cognito:groups"));
    }
    if !config.machine_clients.iter().any(|c| c == client_id) {
        return Err(AuthError::UnknownClient);
    }
    Ok(Principal {
        id: client_id.to_owned(),
        sub: sub.to_owned(),
        machine: true,
        groups: BTreeSet::new(),
        scopes,
    })
}

/// The JWT authorizer's claims in a `lambda_http` request (payload 2.0), if it has any.
pub fn request_claims(req: &lambda_http::Request) -> Option<&HashMap<String, String>> {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => {
            ctx.authorizer.as_ref()?.jwt.as_ref().map(|j| &j.claims)
        }
        _ => None,
    }
}

/// [`principal`] of a `lambda_http` request; [`AuthError::NoClaims`] when it has no JWT claims.
pub fn request_principal(
    req: &lambda_http::Request,
    config: &AuthConfig,
) -> Result<Principal, AuthError> {
    principal(request_claims(req).ok_or(AuthError::NoClaims)?, config)
}

/// A single-valued claim: `None` when absent or empty, an error when too long or holding
/// control characters or surrounding blanks.
fn id_claim<'a>(
    claims: &'a HashMap<String, String>,
    name: &'static str,
) -> Result<Option<&'a str>, AuthError> {
    let Some(value) = claims.get(name).map(String::as_str) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_ID_BYTES
        || value.trim() != value
        || value.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(AuthError::MalformedClaim(name));
    }
    Ok(Some(value))
}

/// A list-valued claim's raw text (`scope`, `cognito:groups`), bounded in length.
fn list_claim<'a>(
    claims: &'a HashMap<String, String>,
    name: &'static str,
) -> Result<Option<&'a str>, AuthError> {
    match claims.get(name).map(String::as_str) {
        None => Ok(None),
        Some(v) if v.len() > MAX_LIST_BYTES || v.chars().any(char::is_control) => {
            Err(AuthError::MalformedClaim(name))
        }
        Some(v) => Ok(Some(v)),
    }
}

/// `cognito:groups` as API Gateway renders a JSON array: `[agents leads]`, `[]` for none.
/// Unknown group names are ignored; a value that is not bracketed, or holds quotes or commas
/// (JSON's shape, not API Gateway's), is malformed.
fn parse_groups(value: Option<&str>) -> Result<BTreeSet<Group>, AuthError> {
    const NAME: &str = "cognito:groups";
    let Some(value) = value else {
        return Ok(BTreeSet::new());
    };
    let malformed = AuthError::MalformedClaim(NAME);
    if value.len() > MAX_LIST_BYTES || value.chars().any(char::is_control) {
        return Err(malformed);
    }
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or(malformed.clone())?;
    if inner.contains(['"', ',', '[', ']']) {
        return Err(malformed);
    }
    Ok(inner
        .split_whitespace()
        .filter_map(Group::from_name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACHINE: &str = "3q1ml6hve0ve0bt5h1l2f0jr1h";

    fn config() -> AuthConfig {
        AuthConfig::from_list(&format!(" {MACHINE} ,other-client,"))
    }

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A user access token's claims as API Gateway passes them (alice, agent and lead).
    fn access(groups: &str) -> HashMap<String, String> {
        claims(&[
            ("sub", "94b8e4a8-2031-70e3-7d15-2b9b1c4e1f6a"),
            (
                "iss",
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E",
            ),
            ("client_id", "6c4nt5b0p3ejkq2fu6nqh2r2vr"),
            ("origin_jti", "7b1f3f8e-2d4c-4a57-9e0b-5a3c2f1d0e9b"),
            ("event_id", "2b2d1c1e-7d5b-4e0f-8a39-6f4c3b2a1d0e"),
            ("token_use", "access"),
            ("scope", "aws.cognito.signin.user.admin"),
            ("auth_time", "1700000000"),
            ("exp", "1700003600"),
            ("iat", "1700000000"),
            ("jti", "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b"),
            ("username", "alice"),
            ("cognito:groups", groups),
        ])
    }

    fn machine_claims(client: &str) -> HashMap<String, String> {
        claims(&[
            ("sub", client),
            ("token_use", "access"),
            ("scope", "prechat/api"),
            ("auth_time", "1700000000"),
            (
                "iss",
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E",
            ),
            ("exp", "1700003600"),
            ("iat", "1700000000"),
            ("version", "2"),
            ("jti", "5d4c3b2a-1f0e-4d9c-8b7a-695847362514"),
            ("client_id", client),
        ])
    }

    #[test]
    fn an_access_token_names_the_user_and_their_groups() {
        let p = principal(&access("[agents leads]"), &config()).unwrap();
        assert_eq!(p.id, "alice");
        assert_eq!(p.sub, "94b8e4a8-2031-70e3-7d15-2b9b1c4e1f6a");
        assert!(!p.machine);
        assert_eq!(p.groups, BTreeSet::from([Group::Agents, Group::Leads]));
        assert_eq!(p.scopes, vec!["aws.cognito.signin.user.admin".to_owned()]);
        assert!(p.is_lead() && !p.is_admin() && !p.is_integration());
    }

    #[test]
    fn an_id_token_names_the_user_by_cognito_username() {
        let c = claims(&[
            ("sub", "s-1"),
            ("aud", "6c4nt5b0p3ejkq2fu6nqh2r2vr"),
            ("token_use", "id"),
            ("cognito:username", "admin"),
            ("cognito:groups", "[admins]"),
            ("email_verified", "true"),
        ]);
        let p = principal(&c, &config()).unwrap();
        assert_eq!((p.id.as_str(), p.sub.as_str()), ("admin", "s-1"));
        assert!(p.is_admin() && !p.is_lead() && !p.machine);
        assert!(p.scopes.is_empty());
    }

    #[test]
    fn an_id_token_without_cognito_username_is_refused() {
        let c = claims(&[("sub", "s-1"), ("token_use", "id"), ("username", "alice")]);
        assert_eq!(
            principal(&c, &config()),
            Err(AuthError::MissingClaim("cognito:username"))
        );
    }

    #[test]
    fn a_user_without_groups_has_none() {
        let mut c = access("");
        c.remove("cognito:groups");
        assert!(principal(&c, &config()).unwrap().groups.is_empty());
        assert!(principal(&access("[]"), &config())
            .unwrap()
            .groups
            .is_empty());
    }

    #[test]
    fn unknown_groups_are_ignored_and_names_are_case_sensitive() {
        let p = principal(&access("[supervisors Admins agents]"), &config()).unwrap();
        assert_eq!(p.groups, BTreeSet::from([Group::Agents]));
    }

    #[test]
    fn an_integrations_user_is_a_machine() {
        let p = principal(&access("[integrations]"), &config()).unwrap();
        assert!(p.machine && p.is_integration());
        assert_eq!(p.id, "alice");
    }

    #[test]
    fn a_listed_machine_client_is_a_machine_principal() {
        let p = principal(&machine_claims(MACHINE), &config()).unwrap();
        assert_eq!(p.id, MACHINE);
        assert_eq!(p.sub, MACHINE);
        assert!(p.machine && p.is_integration() && !p.is_admin());
        assert!(p.groups.is_empty());
        assert_eq!(p.scopes, vec!["prechat/api".to_owned()]);
    }

    #[test]
    fn several_scopes_are_split_on_spaces() {
        let mut c = machine_claims(MACHINE);
        c.insert("scope".into(), "prechat/api  prechat/read".into());
        let p = principal(&c, &config()).unwrap();
        assert_eq!(p.scopes, vec!["prechat/api", "prechat/read"]);
    }

    #[test]
    fn an_unlisted_machine_client_is_refused() {
        let c = machine_claims("6c4nt5b0p3ejkq2fu6nqh2r2vr");
        assert_eq!(principal(&c, &config()), Err(AuthError::UnknownClient));
        assert_eq!(
            principal(&machine_claims(MACHINE), &AuthConfig::default()),
            Err(AuthError::UnknownClient)
        );
    }

    #[test]
    fn a_machine_token_with_groups_is_malformed() {
        let mut c = machine_claims(MACHINE);
        c.insert("cognito:groups".into(), "[admins]".into());
        assert_eq!(
            principal(&c, &config()),
            Err(AuthError::MalformedClaim("cognito:groups"))
        );
    }

    #[test]
    fn missing_identity_claims_are_refused() {
        assert_eq!(
            principal(&HashMap::new(), &config()),
            Err(AuthError::NoClaims)
        );
        let mut no_sub = access("[agents]");
        no_sub.remove("sub");
        assert_eq!(
            principal(&no_sub, &config()),
            Err(AuthError::MissingClaim("sub"))
        );
        let mut empty_sub = access("[agents]");
        empty_sub.insert("sub".into(), String::new());
        assert_eq!(
            principal(&empty_sub, &config()),
            Err(AuthError::MissingClaim("sub"))
        );
        let nobody = claims(&[("sub", "s"), ("token_use", "access")]);
        assert_eq!(
            principal(&nobody, &config()),
            Err(AuthError::MissingClaim("username"))
        );
    }

    #[test]
    fn an_empty_username_falls_back_to_the_machine_rules() {
        let mut c = access("[admins]");
        c.insert("username".into(), String::new());
        // A client id with groups and no username is no shape Cognito issues.
        assert_eq!(
            principal(&c, &config()),
            Err(AuthError::MalformedClaim("cognito:groups"))
        );
    }

    #[test]
    fn refresh_or_unknown_token_use_is_refused() {
        for use_ in ["refresh", "", "ACCESS", "id "] {
            let mut c = access("[agents]");
            c.insert("token_use".into(), use_.into());
            assert_eq!(
                principal(&c, &config()),
                Err(AuthError::UnknownTokenUse),
                "{use_:?}"
            );
        }
    }

    #[test]
    fn groups_not_in_api_gateway_s_shape_are_malformed() {
        for groups in [
            "agents",
            "[agents",
            "agents]",
            "[[agents]",
            "[agents]]",
            "[\"agents\",\"leads\"]",
            "[agents,leads]",
            "[agents\nleads]",
            "]agents[",
            "[",
        ] {
            assert_eq!(
                principal(&access(groups), &config()),
                Err(AuthError::MalformedClaim("cognito:groups")),
                "{groups:?}"
            );
        }
    }

    #[test]
    fn hostile_ids_are_malformed_not_trimmed() {
        for bad in [
            " alice",
            "alice ",
            "al ice",
            "ali\u{0}ce",
            "a\u{200b}\u{2028}b",
        ] {
            let mut c = access("[agents]");
            c.insert("username".into(), bad.into());
            let got = principal(&c, &config());
            // U+200B is not whitespace to Rust; U+2028 is.
            assert_eq!(got, Err(AuthError::MalformedClaim("username")), "{bad:?}");
        }
    }

    #[test]
    fn huge_values_are_refused_without_panicking() {
        let mut c = access("[agents]");
        c.insert("username".into(), "a".repeat(MAX_ID_BYTES + 1));
        assert_eq!(
            principal(&c, &config()),
            Err(AuthError::MalformedClaim("username"))
        );
        let huge_groups = format!("[{}]", "agents ".repeat(MAX_LIST_BYTES));
        assert_eq!(
            principal(&access(&huge_groups), &config()),
            Err(AuthError::MalformedClaim("cognito:groups"))
        );
        let mut c = machine_claims(MACHINE);
        c.insert("scope".into(), "s ".repeat(MAX_LIST_BYTES));
        assert_eq!(
            principal(&c, &config()),
            Err(AuthError::MalformedClaim("scope"))
        );
        let mut c = access("[agents]");
        c.insert("username".into(), "é".repeat(MAX_ID_BYTES / 2));
        assert_eq!(principal(&c, &config()).unwrap().id.len(), MAX_ID_BYTES);
    }

    #[test]
    fn multibyte_and_odd_values_never_panic() {
        let odd = [
            "",
            "[",
            "]",
            "[]",
            "[ ]",
            "[é]",
            "é",
            "\u{10ffff}",
            "[\u{feff}agents]",
            "[agents\t leads]",
            "]]][[[",
            "{}",
            "null",
            "[null]",
        ];
        for a in odd {
            for key in [
                "sub",
                "username",
                "client_id",
                "cognito:groups",
                "scope",
                "token_use",
            ] {
                let mut c = access("[agents]");
                c.insert(key.into(), a.into());
                let _ = principal(&c, &config());
                let mut m = machine_claims(MACHINE);
                m.insert(key.into(), a.into());
                let _ = principal(&m, &config());
            }
        }
    }

    #[test]
    fn tabs_in_groups_are_refused_and_extra_spaces_are_fine() {
        let p = principal(&access("[agents\tleads]"), &config());
        // A tab is a control character: API Gateway never produces one, so it is refused.
        assert_eq!(p, Err(AuthError::MalformedClaim("cognito:groups")));
        let p = principal(&access("[ agents   admins ]"), &config()).unwrap();
        assert_eq!(p.groups, BTreeSet::from([Group::Agents, Group::Admins]));
    }

    #[test]
    fn errors_name_claims_never_values_and_are_not_retryable() {
        let mut c = access("[agents]");
        c.insert("username".into(), "secret user\u{0}".into());
        let err = principal(&c, &config()).unwrap_err();
        assert!(!err.to_string().contains("secret"));
        assert!(!err.is_retryable());
        assert_eq!(err.status(), 401);
    }

    #[test]
    fn machine_clients_list_ignores_blanks() {
        assert_eq!(
            AuthConfig::from_list(" a, ,b,,").machine_clients,
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert!(AuthConfig::from_list("").machine_clients.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_claims_of_any_strings_never_panic(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "sub", "username", "cognito:username", "client_id", "cognito:groups",
                        "scope", "token_use", "aud",
                    ]),
                    ".{0,40}",
                ),
                0..8,
            )
        ) {
            let c: HashMap<String, String> =
                pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Ok(p) = principal(&c, &config()) {
                proptest::prop_assert!(!p.id.is_empty() && !p.sub.is_empty());
            }
        }
    }

    fn sample_request(file: &str) -> lambda_http::Request {
        let path = format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        lambda_http::request::from_str(&text).unwrap()
    }

    #[test]
    fn the_sample_me_event_gives_alice_as_agent_and_lead() {
        let req = sample_request("agent-api-me.json");
        assert_eq!(req.uri().path(), "/api/me");
        let p = request_principal(&req, &config()).unwrap();
        assert_eq!(p.id, "alice");
        assert_eq!(p.groups, BTreeSet::from([Group::Agents, Group::Leads]));
        assert!(!p.machine && p.is_lead());
        // The event is AWS's shape: the access token has `client_id` and no `aud`.
        let claims = request_claims(&req).unwrap();
        assert!(claims.contains_key("client_id") && !claims.contains_key("aud"));
    }

    #[test]
    fn the_sample_machine_event_gives_the_help_desk_client() {
        let req = sample_request("agent-api-machine.json");
        let claims = request_claims(&req).unwrap();
        let client = claims["client_id"].clone();
        let p = request_principal(&req, &AuthConfig::from_list(&client)).unwrap();
        assert!(p.machine && p.is_integration() && p.groups.is_empty());
        assert_eq!(
            (p.id.as_str(), p.scopes.as_slice()),
            (client.as_str(), &["prechat/api".to_owned()][..])
        );
        assert_eq!(
            request_principal(&req, &AuthConfig::default()),
            Err(AuthError::UnknownClient)
        );
    }

    #[test]
    fn a_request_without_an_authorizer_has_no_claims() {
        let req = sample_request("webhook-verify.json");
        assert!(request_claims(&req).is_none());
        assert_eq!(request_principal(&req, &config()), Err(AuthError::NoClaims));
    }
}
