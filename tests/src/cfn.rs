//! A small CloudFormation evaluator for tests: reads `infra/template.yaml` and resolves the
//! intrinsics it uses (`Ref`, `GetAtt`, `Sub`, `If`, `Equals`, `Not`, `Or`, `And`,
//! `Condition`, `AWS::NoValue`) for a given set of parameter values and physical names, so
//! tests can check what CloudFormation would deploy: each function's environment, timeout and
//! IAM statements (SAM policy templates expanded the way SAM expands them).

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use serde_yaml_ng::Value;

/// The account and region moto (and the tests) use.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The parsed template.
pub struct Template {
    pub doc: Value,
}

/// What `Ref` and `GetAtt` of resources resolve to, and the parameter values.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub parameters: BTreeMap<String, String>,
    /// Logical id -> `Ref` value (table name, queue URL, function name ...).
    pub refs: BTreeMap<String, String>,
    /// "LogicalId.Attribute" -> value (`Arn`, `QueueName`).
    pub atts: BTreeMap<String, String>,
}

fn tag_name(t: &serde_yaml_ng::value::TaggedValue) -> String {
    t.tag.to_string().trim_start_matches('!').to_owned()
}

fn to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

impl Template {
    pub fn load() -> Template {
        let path = crate::template_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Template {
            doc: serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("infra/template.yaml is not YAML: {e}")),
        }
    }

    /// `(logical id, resource)` of every resource of type `ty`, in template order.
    pub fn resources(&self, ty: &str) -> Vec<(String, &Value)> {
        self.doc["Resources"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .filter(|(_, r)| r["Type"].as_str() == Some(ty))
                    .filter_map(|(id, r)| Some((id.as_str()?.to_owned(), r)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn resource(&self, id: &str) -> &Value {
        let r = &self.doc["Resources"][id];
        assert!(!r.is_null(), "no resource {id} in infra/template.yaml");
        r
    }

    /// Every parameter with its default ("" when it has none).
    pub fn parameter_defaults(&self) -> BTreeMap<String, String> {
        self.doc["Parameters"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, p)| {
                        let default = match &p["Default"] {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            _ => String::new(),
                        };
                        Some((k.as_str()?.to_owned(), default))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Names for a deployment with the parameters' defaults overridden by `overrides`, and
    /// resources named after their logical ids (`Ref` = id, `Arn` = an ARN of the right
    /// service), unless `physical` names them.
    pub fn names(&self, overrides: &[(&str, &str)]) -> Names {
        let mut names = Names {
            parameters: self.parameter_defaults(),
            ..Names::default()
        };
        for (k, v) in overrides {
            names.parameters.insert((*k).to_owned(), (*v).to_owned());
        }
        if let Some(m) = self.doc["Resources"].as_mapping() {
            for (id, r) in m {
                let Some(id) = id.as_str() else { continue };
                let arn = match r["Type"].as_str().unwrap_or_default() {
                    "AWS::DynamoDB::Table" => {
                        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{id}")
                    }
                    "AWS::SQS::Queue" => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{id}.fifo"),
                    _ => format!("arn:aws:cloudformation:{REGION}:{ACCOUNT}:{id}"),
                };
                names.refs.insert(id.to_owned(), id.to_owned());
                names.atts.insert(format!("{id}.Arn"), arn);
                names
                    .atts
                    .insert(format!("{id}.QueueName"), format!("{id}.fifo"));
            }
        }
        names
    }

    /// Whether a named condition holds.
    pub fn condition(&self, name: &str, n: &Names) -> bool {
        let c = &self.doc["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.truth(c, n)
    }

    fn truth(&self, v: &Value, n: &Names) -> bool {
        match v {
            Value::Tagged(t) => {
                let args = t.value.as_sequence().cloned().unwrap_or_default();
                match tag_name(t).as_str() {
                    "Equals" => self.resolve(&args[0], n) == self.resolve(&args[1], n),
                    "Not" => !self.truth(&args[0], n),
                    "Or" => args.iter().any(|a| self.truth(a, n)),
                    "And" => args.iter().all(|a| self.truth(a, n)),
                    "Condition" => self.condition(t.value.as_str().unwrap_or_default(), n),
                    other => panic!("unsupported condition function {other}"),
                }
            }
            Value::Mapping(m) if m.len() == 1 && !v["Condition"].is_null() => {
                self.condition(v["Condition"].as_str().unwrap_or_default(), n)
            }
            Value::Bool(b) => *b,
            other => panic!("not a condition: {other:?}"),
        }
    }

    /// The value CloudFormation would use; `None` for `AWS::NoValue` (the key or list item
    /// disappears).
    pub fn resolve(&self, v: &Value, n: &Names) -> Option<Json> {
        match v {
            Value::Tagged(t) => self.intrinsic(&tag_name(t), &t.value, n),
            Value::Sequence(items) => Some(Json::Array(
                items.iter().filter_map(|i| self.resolve(i, n)).collect(),
            )),
            Value::Mapping(m) => {
                let mut out = serde_json::Map::new();
                for (k, val) in m {
                    let key = k.as_str().unwrap_or_default().to_owned();
                    if let Some(r) = self.resolve(val, n) {
                        out.insert(key, r);
                    }
                }
                Some(Json::Object(out))
            }
            other => Some(to_json(other)),
        }
    }

    fn reference(&self, name: &str, n: &Names) -> Option<Json> {
        match name {
            "AWS::NoValue" => None,
            "AWS::Region" => Some(json!(REGION)),
            "AWS::AccountId" => Some(json!(ACCOUNT)),
            "AWS::Partition" => Some(json!("aws")),
            "AWS::URLSuffix" => Some(json!("amazonaws.com")),
            "AWS::StackName" => Some(json!("prechat")),
            other => {
                if let Some(p) = n.parameters.get(other) {
                    Some(json!(p))
                } else if let Some(r) = n.refs.get(other) {
                    Some(json!(r))
                } else {
                    panic!("Ref to unknown {other}")
                }
            }
        }
    }

    fn attribute(&self, path: &str, n: &Names) -> Json {
        json!(n
            .atts
            .get(path)
            .unwrap_or_else(|| panic!("GetAtt of unknown {path}")))
    }

    fn intrinsic(&self, f: &str, arg: &Value, n: &Names) -> Option<Json> {
        match f {
            "Ref" => self.reference(arg.as_str().unwrap_or_default(), n),
            "GetAtt" => {
                let path = match arg {
                    Value::Sequence(s) => s
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("."),
                    other => other.as_str().unwrap_or_default().to_owned(),
                };
                Some(self.attribute(&path, n))
            }
            "Sub" => {
                let text = arg.as_str().unwrap_or_else(|| panic!("Sub with variables"));
                let mut out = String::new();
                let mut rest = text;
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..]
                        .find('}')
                        .map(|e| start + e)
                        .unwrap_or(rest.len());
                    let var = &rest[start + 2..end];
                    let value = if var.contains('.') && !var.starts_with("AWS::") {
                        self.attribute(var, n)
                    } else {
                        self.reference(var, n).unwrap_or(Json::Null)
                    };
                    out.push_str(value.as_str().unwrap_or_default());
                    rest = &rest[(end + 1).min(rest.len())..];
                }
                out.push_str(rest);
                Some(json!(out))
            }
            "If" => {
                let args = arg.as_sequence().cloned().unwrap_or_default();
                let holds = self.condition(args[0].as_str().unwrap_or_default(), n);
                self.resolve(&args[if holds { 1 } else { 2 }], n)
            }
            other => panic!("unsupported intrinsic {other}"),
        }
    }

    /// A function's environment: `Globals.Function.Environment` merged with its own.
    pub fn environment(&self, function: &str, n: &Names) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for vars in [
            &self.doc["Globals"]["Function"]["Environment"]["Variables"],
            &self.resource(function)["Properties"]["Environment"]["Variables"],
        ] {
            if let Some(Json::Object(m)) = self.resolve(vars, n) {
                for (k, v) in m {
                    let v = match v {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    env.insert(k, v);
                }
            }
        }
        env
    }

    /// A function's timeout in seconds (its own, else the global one, else Lambda's 3).
    pub fn timeout(&self, function: &str) -> u64 {
        let own = &self.resource(function)["Properties"]["Timeout"];
        let global = &self.doc["Globals"]["Function"]["Timeout"];
        own.as_u64().or_else(|| global.as_u64()).unwrap_or(3)
    }

    /// Every IAM statement a function's `Policies` grant, resolved, with the SAM policy
    /// templates the template may use expanded as SAM expands them.
    pub fn statements(&self, function: &str, n: &Names) -> Vec<Json> {
        let policies = &self.resource(function)["Properties"]["Policies"];
        let mut out = Vec::new();
        for p in policies.as_sequence().into_iter().flatten() {
            let Some(Json::Object(p)) = self.resolve(p, n) else {
                continue;
            };
            for (kind, args) in p {
                out.extend(expand_policy(&kind, &args));
            }
        }
        out
    }
}

/// One `Policies` entry: an inline document (`Statement`) or a SAM policy template.
fn expand_policy(kind: &str, args: &Json) -> Vec<Json> {
    let s = |v: &Json, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let table = |name: String| {
        json!([
            format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"),
            format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}/index/*")
        ])
    };
    match kind {
        "Statement" => match args {
            Json::Array(items) => items.clone(),
            other => vec![other.clone()],
        },
        "SQSSendMessagePolicy" => vec![json!({
            "Effect": "Allow", "Action": ["sqs:SendMessage*"],
            "Resource": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", s(args, "QueueName")),
        })],
        "SQSPollerPolicy" => vec![json!({
            "Effect": "Allow",
            "Action": ["sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch",
                       "sqs:DeleteMessage", "sqs:DeleteMessageBatch",
                       "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
            "Resource": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", s(args, "QueueName")),
        })],
        "SSMParameterReadPolicy" => vec![
            json!({"Effect": "Allow", "Action": ["ssm:DescribeParameters"], "Resource": "*"}),
            json!({
                "Effect": "Allow",
                "Action": ["ssm:GetParameters", "ssm:GetParameter", "ssm:GetParametersByPath"],
                "Resource": format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{}", s(args, "ParameterName")),
            }),
        ],
        "DynamoDBCrudPolicy" => vec![json!({
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem",
                       "dynamodb:Scan", "dynamodb:Query", "dynamodb:UpdateItem",
                       "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem",
                       "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"],
            "Resource": table(s(args, "TableName")),
        })],
        "DynamoDBReadPolicy" => vec![json!({
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query",
                       "dynamodb:BatchGetItem", "dynamodb:DescribeTable"],
            "Resource": table(s(args, "TableName")),
        })],
        other => panic!(
            "SAM policy template {other} is not known to tests/src/cfn.rs: add its expansion"
        ),
    }
}

/// A statement's `Action` or `Resource` as a list.
pub fn list(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM's wildcard match (`*` any run, `?` one character), case-insensitive for actions.
pub fn iam_match(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}
