//! The routes of the agent API and the parsing of their inputs: pure, no AWS.
//!
//! [`ROUTES`] is the table the OpenAPI file (`infra/openapi.yaml`) is checked against. A path
//! the table does not know is a 404, a known path with another method a 405. Bodies are parsed
//! from JSON by hand so each error names its field.

use serde_json::Value;

use super::error::ApiError;
use crate::routing::model::{check_id, AgentStatus};
use crate::whatsapp::limits;

/// Every route: method and OpenAPI path template.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/me"),
    ("PUT", "/api/me/status"),
    ("GET", "/api/conversations"),
    ("GET", "/api/conversations/{id}"),
    ("POST", "/api/conversations/{id}/messages"),
    ("POST", "/api/conversations/{id}/transfer"),
    ("POST", "/api/conversations/{id}/close"),
    ("GET", "/api/templates"),
    ("GET", "/api/teams/{team}/agents"),
];

/// Largest request body accepted (a 4,096-character text is at most 16 KiB of UTF-8).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest conversation id or cursor looked at.
const MAX_ID_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Me,
    SetStatus,
    List,
    Get(String),
    Reply(String),
    Transfer(String),
    Close(String),
    /// `GET /api/templates?team=`: the team's approved templates.
    Templates,
    /// `GET /api/teams/{team}/agents[?status=]`: a team's agents (transfer targets).
    TeamAgents(String),
}

/// The route of a request. Unknown paths are 404, known paths with another method 405.
pub fn route(method: &str, path: &str) -> Result<Route, ApiError> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    let (allowed, route) = match parts.as_slice() {
        ["", "api", "me"] => ("GET", Route::Me),
        ["", "api", "me", "status"] => ("PUT", Route::SetStatus),
        ["", "api", "conversations"] => ("GET", Route::List),
        ["", "api", "conversations", id] => ("GET", Route::Get(conversation_id(id)?)),
        ["", "api", "conversations", id, "messages"] => {
            ("POST", Route::Reply(conversation_id(id)?))
        }
        ["", "api", "conversations", id, "transfer"] => {
            ("POST", Route::Transfer(conversation_id(id)?))
        }
        ["", "api", "conversations", id, "close"] => ("POST", Route::Close(conversation_id(id)?)),
        ["", "api", "templates"] => ("GET", Route::Templates),
        ["", "api", "teams", team, "agents"] => ("GET", Route::TeamAgents(team_id(team)?)),
        _ => return Err(ApiError::NotFound("route".into())),
    };
    if method.eq_ignore_ascii_case(allowed) {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// Conversation ids are ASCII and SQS-id safe; anything else cannot exist.
fn conversation_id(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_ID_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::NotFound("conversation".into()))
    }
}

/// A team id in a path: one that cannot exist is a 404.
fn team_id(raw: &str) -> Result<String, ApiError> {
    check_id(raw)
        .map(|()| raw.to_owned())
        .map_err(|_| ApiError::NotFound("team".into()))
}

/// `?team=` of `GET /api/templates`: required, a valid team id.
pub fn team_query(raw: Option<&str>) -> Result<String, ApiError> {
    let team = raw.ok_or_else(|| ApiError::invalid("team", "required"))?;
    check_id(team)
        .map(|()| team.to_owned())
        .map_err(|e| ApiError::invalid("team", e.to_string()))
}

/// `?status=` of `GET /api/teams/{team}/agents`: none (every agent) or one status.
pub fn status_query(raw: Option<&str>) -> Result<Option<AgentStatus>, ApiError> {
    raw.map(|s| {
        s.parse()
            .map_err(|e: String| ApiError::invalid("status", e))
    })
    .transpose()
}

/// The body as a JSON object (an empty body reads as `{}`).
pub fn json_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("body", "must be a JSON object")),
        Err(e) => Err(ApiError::invalid(
            "body",
            format!("malformed JSON: {}", crate::telemetry::json_error(&e)),
        )),
    }
}

fn string_field<'a>(
    map: &'a serde_json::Map<String, Value>,
    name: &str,
    field: &str,
) -> Result<Option<&'a str>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

/// `PUT /api/me/status`.
pub fn status_body(body: &[u8]) -> Result<AgentStatus, ApiError> {
    let map = json_body(body)?;
    let raw = string_field(&map, "status", "status")?
        .ok_or_else(|| ApiError::invalid("status", "required (online, away, offline)"))?;
    raw.parse()
        .map_err(|e: String| ApiError::invalid("status", e))
}

/// An approved template, the only message allowed outside the 24-hour window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
    pub parameters: Vec<String>,
}

/// What an agent sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Text(String),
    Template(TemplateRef),
}

/// `POST /api/conversations/{id}/messages`: `{"text"}` or `{"template": {"name", "language",
/// "parameters"}}`. Texts are counted as WhatsApp counts them (Unicode scalar values).
pub fn reply_body(body: &[u8]) -> Result<Reply, ApiError> {
    let map = json_body(body)?;
    let text = string_field(&map, "text", "text")?;
    match (text, map.get("template")) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "template",
            "give text or template, not both",
        )),
        (Some(text), None) => {
            if text.trim().is_empty() {
                return Err(ApiError::invalid("text", "must not be empty"));
            }
            let len = text.chars().count();
            if len > limits::TEXT_BODY {
                return Err(ApiError::invalid(
                    "text",
                    format!("at most {} characters (got {len})", limits::TEXT_BODY),
                ));
            }
            Ok(Reply::Text(text.to_owned()))
        }
        (None, Some(Value::Object(t))) => {
            let name = string_field(t, "name", "template.name")?
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| ApiError::invalid("template.name", "required"))?;
            if name.chars().count() > limits::TEMPLATE_NAME {
                return Err(ApiError::invalid("template.name", "too long"));
            }
            let language = string_field(t, "language", "template.language")?
                .filter(|l| !l.trim().is_empty() && l.len() <= 16)
                .ok_or_else(|| ApiError::invalid("template.language", "required, e.g. en_US"))?;
            let parameters = match t.get("parameters") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|p| match p {
                        Value::String(s) if s.chars().count() <= limits::TEMPLATE_PARAMETER => {
                            Ok(s.clone())
                        }
                        Value::String(_) => Err(ApiError::invalid(
                            "template.parameters",
                            "a parameter is too long",
                        )),
                        _ => Err(ApiError::invalid("template.parameters", "must be strings")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(ApiError::invalid("template.parameters", "must be an array"))
                }
            };
            Ok(Reply::Template(TemplateRef {
                name: name.to_owned(),
                language: language.to_owned(),
                parameters,
            }))
        }
        (None, Some(_)) => Err(ApiError::invalid("template", "must be an object")),
        (None, None) => Err(ApiError::invalid("text", "required")),
    }
}

/// Where a conversation goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTo {
    Team(String),
    Agent(String),
}

/// `POST /api/conversations/{id}/transfer`: `{"team"}` or `{"agent"}`.
pub fn transfer_body(body: &[u8]) -> Result<TransferTo, ApiError> {
    let map = json_body(body)?;
    let team = string_field(&map, "team", "team")?;
    let agent = string_field(&map, "agent", "agent")?;
    let checked = |field: &str, id: &str| {
        check_id(id)
            .map(|()| id.to_owned())
            .map_err(|e| ApiError::invalid(field, e.to_string()))
    };
    match (team, agent) {
        (Some(t), None) => Ok(TransferTo::Team(checked("team", t)?)),
        (None, Some(a)) => Ok(TransferTo::Agent(checked("agent", a)?)),
        (Some(_), Some(_)) => Err(ApiError::invalid("agent", "give team or agent, not both")),
        (None, None) => Err(ApiError::invalid("team", "team or agent is required")),
    }
}

/// Which conversations `GET /api/conversations` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListState {
    Waiting,
    Assigned,
    Closed,
}

/// `GET /api/conversations`, its query parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub state: ListState,
    /// Only this team's.
    pub team: Option<String>,
    pub limit: u32,
    /// Older than this sort key (`{at:012}#{conversation_id}`), as decoded from `?cursor=`.
    pub before: Option<String>,
    /// Only the caller's own (assigned or closed), for leads and admins who also take
    /// conversations.
    pub mine: bool,
}

/// `?state=` (default `assigned`), `?team=`, `?limit=` (1-100, default 50), `?cursor=` (the
/// `next_cursor` of the previous page) and `?mine=true|false` (not with `waiting`: nobody
/// holds a waiting conversation).
pub fn list_query(q: impl Fn(&str) -> Option<String>) -> Result<ListQuery, ApiError> {
    let state = match q("state").as_deref().unwrap_or("assigned") {
        "waiting" => ListState::Waiting,
        "assigned" => ListState::Assigned,
        "closed" => ListState::Closed,
        _ => return Err(ApiError::invalid("state", "waiting, assigned or closed")),
    };
    let team = match q("team") {
        None => None,
        Some(t) => {
            check_id(&t).map_err(|e| ApiError::invalid("team", e.to_string()))?;
            Some(t)
        }
    };
    let mine = match q("mine").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("mine", "true or false")),
    };
    if mine && state == ListState::Waiting {
        return Err(ApiError::invalid(
            "mine",
            "only with state assigned or closed (nobody holds a waiting conversation)",
        ));
    }
    let before = q("cursor").map(|c| list_cursor(&c)).transpose()?;
    Ok(ListQuery {
        state,
        team,
        limit: page_limit(q("limit").as_deref(), 50)?,
        before,
        mine,
    })
}

/// A list cursor as handed out: the sort key of the last conversation shown, in hex (opaque
/// to clients, URL-safe, and no new dependency).
pub fn encode_list_cursor(sort: &str) -> String {
    hex::encode(sort)
}

/// `?cursor=` back to its sort key; anything we did not hand out is 400 on `cursor`.
fn list_cursor(raw: &str) -> Result<String, ApiError> {
    let bad = || ApiError::invalid("cursor", "not a cursor of this list (use next_cursor)");
    if raw.len() > (MAX_ID_LEN + 13) * 2 {
        return Err(bad());
    }
    let bytes = hex::decode(raw).map_err(|_| bad())?;
    let sort = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, conv) = sort.split_once('#').ok_or_else(bad)?;
    let ok =
        at.len() == 12 && at.bytes().all(|b| b.is_ascii_digit()) && conversation_id(conv).is_ok();
    if ok {
        Ok(sort)
    } else {
        Err(bad())
    }
}

/// `?limit=`: 1-100.
pub fn page_limit(raw: Option<&str>, default: u32) -> Result<u32, ApiError> {
    match raw {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid("limit", "a number from 1 to 100")),
        },
    }
}

/// A boolean query flag (`true`/`false`, `1`/`0`); absent: false.
pub fn flag(raw: Option<&str>, field: &str) -> Result<bool, ApiError> {
    match raw {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(ApiError::invalid(field, "true or false")),
    }
}

/// A transcript cursor (`?after=` / `?before=`): an entry id as the API returned it.
pub fn cursor(raw: Option<&str>, field: &str) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some(c)
            if c.starts_with("T#") && c.len() <= MAX_ID_LEN && !c.contains(char::is_control) =>
        {
            Ok(Some(c.to_owned()))
        }
        Some(_) => Err(ApiError::invalid(field, "not a transcript cursor")),
    }
}

/// The `Idempotency-Key` header: 1-100 visible ASCII characters.
pub fn idempotency_key(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some(k) if !k.is_empty() && k.len() <= 100 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        Some(_) => Err(ApiError::invalid(
            "Idempotency-Key",
            "1 to 100 visible ASCII characters",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn every_route_of_the_table_is_routed() {
        for (method, path) in ROUTES {
            let concrete = path.replace("{id}", "c-1").replace("{team}", "sales");
            assert!(route(method, &concrete).is_ok(), "{method} {path}");
        }
        assert_eq!(
            route("GET", "/api/conversations/c1").unwrap(),
            Route::Get("c1".into())
        );
        assert_eq!(
            route("post", "/api/conversations/c1/close/").unwrap(),
            Route::Close("c1".into())
        );
    }

    #[test]
    fn the_openapi_file_describes_exactly_the_routes_of_the_router() {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(include_str!("../../../infra/openapi.yaml")).unwrap();
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_mapping().unwrap() {
            for (method, _) in item.as_mapping().unwrap() {
                let method = method.as_str().unwrap();
                if method != "parameters" {
                    documented.insert((
                        method.to_ascii_uppercase(),
                        path.as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
        let routed: std::collections::BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, routed);
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn unknown_paths_are_404_and_other_methods_405() {
        assert_eq!(route("GET", "/api/nope").unwrap_err().status(), 404);
        assert_eq!(
            route("GET", "/api/conversations/a/b/c")
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(route("DELETE", "/api/me").unwrap_err().status(), 405);
        assert_eq!(
            route("GET", "/api/conversations/c1/messages")
                .unwrap_err()
                .status(),
            405
        );
    }

    #[test]
    fn the_team_routes_read_their_team_from_path_or_query() {
        assert_eq!(
            route("GET", "/api/teams/sales/agents").unwrap(),
            Route::TeamAgents("sales".into())
        );
        assert_eq!(
            route("GET", "/api/teams/a%20b/agents")
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(route("POST", "/api/templates").unwrap_err().status(), 405);
        assert_eq!(team_query(Some("sales")).unwrap(), "sales");
        assert_eq!(
            team_query(None).unwrap_err().body()["error"]["field"],
            "team"
        );
        assert_eq!(
            status_query(Some("online")).unwrap(),
            Some(AgentStatus::Online)
        );
        assert_eq!(
            status_query(Some("busy")).unwrap_err().body()["error"]["field"],
            "status"
        );
        assert_eq!(status_query(None).unwrap(), None);
    }

    #[test]
    fn a_conversation_id_that_cannot_exist_is_404() {
        for bad in ["a b", "ü", &"x".repeat(201), "a%2Fb"] {
            assert_eq!(
                route("GET", &format!("/api/conversations/{bad}"))
                    .unwrap_err()
                    .status(),
                404
            );
        }
    }

    #[test]
    fn malformed_or_non_object_json_is_400_naming_the_body() {
        for body in [&b"{"[..], b"[1]", b"\"x\"", &[0xff, 0xfe]] {
            let e = reply_body(body).unwrap_err();
            assert_eq!(e.body()["error"]["field"], "body", "{body:?}");
        }
        assert_eq!(
            json_body(&vec![b' '; MAX_BODY_BYTES + 1])
                .unwrap_err()
                .status(),
            413
        );
    }

    #[test]
    fn a_text_of_4096_characters_passes_and_4097_is_400_on_text() {
        let ok = format!(r#"{{"text":"{}"}}"#, "é".repeat(4096));
        assert_eq!(
            reply_body(ok.as_bytes()).unwrap(),
            Reply::Text("é".repeat(4096))
        );
        let long = format!(r#"{{"text":"{}"}}"#, "é".repeat(4097));
        let e = reply_body(long.as_bytes()).unwrap_err();
        assert_eq!(
            (e.status(), e.body()["error"]["field"].clone()),
            (400, "text".into())
        );
    }

    #[test]
    fn a_reply_needs_exactly_one_of_text_and_template() {
        for (body, field) in [
            (r#"{}"#, "text"),
            (r#"{"text":"  "}"#, "text"),
            (r#"{"text":5}"#, "text"),
            (
                r#"{"text":"a","template":{"name":"x","language":"en"}}"#,
                "template",
            ),
            (r#"{"template":{"language":"en"}}"#, "template.name"),
            (r#"{"template":{"name":"x"}}"#, "template.language"),
            (
                r#"{"template":{"name":"x","language":"en","parameters":[1]}}"#,
                "template.parameters",
            ),
        ] {
            let e = reply_body(body.as_bytes()).unwrap_err();
            assert_eq!(e.body()["error"]["field"], field, "{body}");
        }
        let t = reply_body(
            br#"{"template":{"name":"follow_up","language":"en","parameters":["Ann"]}}"#,
        );
        assert_eq!(
            t.unwrap(),
            Reply::Template(TemplateRef {
                name: "follow_up".into(),
                language: "en".into(),
                parameters: vec!["Ann".into()]
            })
        );
    }

    #[test]
    fn status_transfer_and_query_inputs_are_checked_by_field() {
        assert_eq!(
            status_body(br#"{"status":"online"}"#).unwrap(),
            AgentStatus::Online
        );
        assert_eq!(
            status_body(br#"{"status":"busy"}"#).unwrap_err().body()["error"]["field"],
            "status"
        );
        assert_eq!(
            transfer_body(br#"{"team":"sales"}"#).unwrap(),
            TransferTo::Team("sales".into())
        );
        assert_eq!(
            transfer_body(br#"{"agent":"bo"}"#).unwrap(),
            TransferTo::Agent("bo".into())
        );
        assert_eq!(
            transfer_body(br#"{"team":"a b"}"#).unwrap_err().body()["error"]["field"],
            "team"
        );
        assert_eq!(transfer_body(b"{}").unwrap_err().status(), 400);
        assert_eq!(
            page_limit(Some("0"), 50).unwrap_err().body()["error"]["field"],
            "limit"
        );
        assert!(cursor(Some("x"), "after").is_err() && cursor(Some("T#1#a"), "after").is_ok());
        assert!(idempotency_key(Some("a b")).is_err() && idempotency_key(Some("k-1")).is_ok());
    }

    fn list(pairs: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        list_query(|k| map.get(k).cloned())
    }

    #[test]
    fn a_list_query_defaults_to_own_assigned_fifty_from_the_newest() {
        let q = list(&[]).unwrap();
        assert_eq!(
            q,
            ListQuery {
                state: ListState::Assigned,
                team: None,
                limit: 50,
                before: None,
                mine: false
            }
        );
    }

    #[test]
    fn each_bad_list_parameter_is_400_naming_it() {
        for (pairs, field) in [
            (&[("state", "open")][..], "state"),
            (&[("team", "a b")][..], "team"),
            (&[("limit", "101")][..], "limit"),
            (&[("mine", "yes")][..], "mine"),
            (&[("mine", "true"), ("state", "waiting")][..], "mine"),
            (&[("cursor", "!!")][..], "cursor"),
        ] {
            let e = list(pairs).unwrap_err();
            assert_eq!(
                (e.status(), e.body()["error"]["field"].clone()),
                (400, field.into()),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn a_cursor_handed_out_reads_back_and_any_other_is_refused() {
        let sort = "001800000000#c-1";
        let q = list(&[("cursor", &encode_list_cursor(sort))]).unwrap();
        assert_eq!(q.before.as_deref(), Some(sort));
        for forged in [
            "18#c-1",
            "001800000000#",
            "001800000000#a b",
            "T#0000000000001#x",
            "x",
        ] {
            assert!(
                list(&[("cursor", &encode_list_cursor(forged))]).is_err(),
                "{forged}"
            );
        }
    }
}
