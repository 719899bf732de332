//! Routing rules: which team a conversation goes to, and whether it is a VIP.
//!
//! An ordered list of rules, each a set of conditions (all must hold) on the survey answers,
//! the contact's saved fields and the language; the first matching rule names the team, else the
//! default team. VIP status comes from a rule marked `vip` or from the VIP list (customer ids
//! with a contract end date); VIP conversations go to the front of their team's line.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::job::AssignRequest;
use super::model::{check_id, ModelError};

/// The whole routing configuration (one item in the table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingConfig {
    #[serde(default)]
    pub rules: Vec<Rule>,
    pub default_team: String,
    #[serde(default)]
    pub vip: VipList,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// For admins and logs.
    pub name: String,
    #[serde(default)]
    pub when: Vec<Condition>,
    pub team: String,
    /// Conversations matching this rule are VIP.
    #[serde(default)]
    pub vip: bool,
}

/// `subject` is `answer.<key>`, `field.<key>` or `language`; comparisons ignore case and
/// surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub subject: String,
    pub op: Op,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal to one of `values`.
    In,
    /// Present and equal to none of `values`.
    NotIn,
    /// Starts with one of `values` (e.g. phone prefixes, postcodes).
    Prefix,
    /// Present and not empty.
    Exists,
}

/// Customers with a contract that makes them VIP until a date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipList {
    /// The contact field holding the customer id.
    #[serde(default = "default_customer_field")]
    pub field: String,
    #[serde(default)]
    pub customers: Vec<VipCustomer>,
}

fn default_customer_field() -> String {
    "customer_id".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipCustomer {
    pub customer_id: String,
    /// Last day of the contract (inclusive); `None`: open-ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<String>,
}

/// Where a conversation goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub team: String,
    pub vip: bool,
    /// The rule that matched; `None` for the default team.
    pub rule: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule {rule:?}: subject {subject:?} must be answer.<key>, field.<key> or language")]
    Subject { rule: String, subject: String },
    #[error("rule {rule:?}: op {op:?} needs at least one value")]
    NoValues { rule: String, op: &'static str },
    #[error(transparent)]
    Team(#[from] ModelError),
}

fn normalise(s: &str) -> String {
    s.trim().to_lowercase()
}

impl Condition {
    fn lookup<'a>(&self, req: &'a AssignRequest) -> Option<&'a str> {
        match self.subject.split_once('.') {
            Some(("answer", key)) => req.answers.get(key).map(String::as_str),
            Some(("field", key)) => req.fields.get(key).map(String::as_str),
            _ if self.subject == "language" => Some(req.language.as_str()),
            _ => None,
        }
    }

    fn valid_subject(&self) -> bool {
        match self.subject.split_once('.') {
            Some(("answer" | "field", key)) => !key.is_empty(),
            _ => self.subject == "language",
        }
    }

    pub fn matches(&self, req: &AssignRequest) -> bool {
        let value = self.lookup(req).map(normalise).filter(|v| !v.is_empty());
        let mut values = self.values.iter().map(|v| normalise(v));
        match (self.op, value) {
            (Op::Exists, v) => v.is_some(),
            (_, None) => false,
            (Op::In, Some(v)) => values.any(|x| x == v),
            (Op::NotIn, Some(v)) => values.all(|x| x != v),
            (Op::Prefix, Some(v)) => values.any(|x| v.starts_with(&x)),
        }
    }
}

impl RoutingConfig {
    pub fn validate(&self) -> Result<(), RuleError> {
        check_id(&self.default_team)?;
        for rule in &self.rules {
            check_id(&rule.team)?;
            for c in &rule.when {
                if !c.valid_subject() {
                    return Err(RuleError::Subject {
                        rule: rule.name.clone(),
                        subject: c.subject.clone(),
                    });
                }
                if c.op != Op::Exists && c.values.is_empty() {
                    let op = match c.op {
                        Op::In => "in",
                        Op::NotIn => "not_in",
                        _ => "prefix",
                    };
                    return Err(RuleError::NoValues {
                        rule: rule.name.clone(),
                        op,
                    });
                }
            }
        }
        Ok(())
    }

    /// The team and priority for a request; `today` is the date contracts are judged on.
    pub fn route(&self, req: &AssignRequest, today: NaiveDate) -> Route {
        let matched = self
            .rules
            .iter()
            .find(|r| r.when.iter().all(|c| c.matches(req)));
        let listed = self.vip.is_vip(&req.fields, today);
        match matched {
            Some(rule) => Route {
                team: rule.team.clone(),
                vip: rule.vip || listed,
                rule: Some(rule.name.clone()),
            },
            None => Route {
                team: self.default_team.clone(),
                vip: listed,
                rule: None,
            },
        }
    }
}

impl VipList {
    pub fn is_vip(&self, fields: &BTreeMap<String, String>, today: NaiveDate) -> bool {
        let Some(id) = fields
            .get(&self.field)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        else {
            return false;
        };
        self.customers
            .iter()
            .any(|c| c.customer_id.trim() == id && c.until.is_none_or(|until| today <= until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::job::HandoffReason;
    use crate::whatsapp::ContactRef;

    fn req(answers: &[(&str, &str)], fields: &[(&str, &str)], language: &str) -> AssignRequest {
        AssignRequest {
            job_id: "j1".into(),
            phone_number_id: "106540352242922".into(),
            contact: ContactRef {
                user_id: Some("US.1".into()),
                ..Default::default()
            },
            conversation_id: "c1".into(),
            language: language.into(),
            reason: HandoffReason::Completed,
            answers: answers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            last_inbound_at: 0,
            requested_at: 0,
            supersedes: false,
            vars: Default::default(),
        }
    }

    fn config() -> RoutingConfig {
        serde_json::from_value(serde_json::json!({
            "default_team": "general",
            "rules": [
                {"name": "platinum", "team": "key-accounts", "vip": true,
                 "when": [{"subject": "field.tier", "op": "in", "values": ["platinum"]}]},
                {"name": "german billing", "team": "billing-de",
                 "when": [{"subject": "answer.inquiry_type", "op": "in", "values": ["billing", "refund"]},
                          {"subject": "language", "op": "in", "values": ["de"]}]},
                {"name": "billing", "team": "billing",
                 "when": [{"subject": "answer.inquiry_type", "op": "in", "values": ["billing", "refund"]}]},
                {"name": "dach", "team": "dach",
                 "when": [{"subject": "field.country", "op": "in", "values": ["DE", "AT", "CH"]},
                          {"subject": "answer.inquiry_type", "op": "not_in", "values": ["spam"]}]},
                {"name": "has order", "team": "orders",
                 "when": [{"subject": "answer.order_number", "op": "exists"}]},
                {"name": "uk phones", "team": "uk",
                 "when": [{"subject": "field.phone", "op": "prefix", "values": ["+44", "44"]}]}
            ],
            "vip": {"customers": [
                {"customer_id": "C-1", "until": "2026-12-31", "terms": "gold SLA"},
                {"customer_id": "C-2"}
            ]}
        }))
        .unwrap()
    }

    fn today() -> NaiveDate {
        "2026-11-23".parse().unwrap()
    }

    #[test]
    fn first_matching_rule_wins_in_order() {
        let c = config();
        c.validate().unwrap();
        let r = c.route(&req(&[("inquiry_type", "Billing ")], &[], "de"), today());
        assert_eq!(
            (r.team.as_str(), r.rule.as_deref()),
            ("billing-de", Some("german billing"))
        );
        let r = c.route(&req(&[("inquiry_type", "refund")], &[], "en"), today());
        assert_eq!(r.team, "billing");
        let r = c.route(
            &req(
                &[("inquiry_type", "billing")],
                &[("tier", "Platinum")],
                "de",
            ),
            today(),
        );
        assert_eq!(
            r,
            Route {
                team: "key-accounts".into(),
                vip: true,
                rule: Some("platinum".into())
            }
        );
    }

    #[test]
    fn each_operator() {
        let c = config();
        assert_eq!(
            c.route(
                &req(&[("inquiry_type", "other")], &[("country", "at")], "en"),
                today()
            )
            .team,
            "dach"
        );
        assert_eq!(
            c.route(
                &req(&[("inquiry_type", "spam")], &[("country", "AT")], "en"),
                today()
            )
            .team,
            "general",
            "not_in excludes"
        );
        assert_eq!(
            c.route(&req(&[], &[("country", "AT")], "en"), today()).team,
            "general",
            "not_in needs a value"
        );
        assert_eq!(
            c.route(&req(&[("order_number", "A123")], &[], "en"), today())
                .team,
            "orders"
        );
        assert_eq!(
            c.route(&req(&[("order_number", "  ")], &[], "en"), today())
                .team,
            "general",
            "blank is absent"
        );
        assert_eq!(
            c.route(&req(&[], &[("phone", "+447700900123")], "en"), today())
                .team,
            "uk"
        );
        assert_eq!(
            c.route(&req(&[], &[("phone", "+4915112345678")], "en"), today())
                .team,
            "general"
        );
        assert_eq!(
            c.route(&req(&[], &[], "en"), today()),
            Route {
                team: "general".into(),
                vip: false,
                rule: None
            }
        );
    }

    #[test]
    fn vip_list_honours_contract_end() {
        let c = config();
        let vip = |id: &str, day: &str| {
            c.route(
                &req(&[], &[("customer_id", id)], "en"),
                day.parse().unwrap(),
            )
            .vip
        };
        assert!(vip("C-1", "2026-12-31"), "last contract day");
        assert!(!vip("C-1", "2027-01-01"), "contract ended");
        assert!(vip(" C-2 ", "2099-01-01"), "open-ended");
        assert!(!vip("C-3", "2026-11-23"));
        // VIP from the list keeps the team a rule chose.
        let r = c.route(
            &req(
                &[("inquiry_type", "billing")],
                &[("customer_id", "C-2")],
                "en",
            ),
            today(),
        );
        assert_eq!((r.team.as_str(), r.vip), ("billing", true));
    }

    #[test]
    fn invalid_rules_are_named() {
        let mut c = config();
        c.rules[0].when[0].subject = "tier".into();
        assert!(matches!(c.validate(), Err(RuleError::Subject { .. })));
        let mut c = config();
        c.rules[1].when[0].values.clear();
        assert!(matches!(
            c.validate(),
            Err(RuleError::NoValues { op: "in", .. })
        ));
        let mut c = config();
        c.default_team = "no spaces please".into();
        assert!(matches!(c.validate(), Err(RuleError::Team(_))));
    }

    proptest::proptest! {
        /// Routing always lands on a configured team, and a rule-less config always on the default.
        #[test]
        fn route_is_total(inq in ".{0,12}", country in "[A-Za-z]{0,3}", tier in ".{0,10}", lang in "[a-z]{2}") {
            let c = config();
            let r = c.route(&req(&[("inquiry_type", &inq)], &[("country", &country), ("tier", &tier)], &lang), today());
            let mut teams: Vec<&str> = c.rules.iter().map(|r| r.team.as_str()).collect();
            teams.push("general");
            proptest::prop_assert!(teams.contains(&r.team.as_str()));
            let bare = RoutingConfig { rules: vec![], default_team: "general".into(), vip: VipList::default() };
            proptest::prop_assert_eq!(bare.route(&req(&[("inquiry_type", &inq)], &[], &lang), today()).team, "general");
        }
    }
}
