//! Creates the template's DynamoDB tables and SQS queues in a protocol server (moto).
//!
//! Tests and `cargo xtask local` read `infra/template.yaml` itself, so the code and the
//! template cannot drift apart silently: a table or queue the code needs must exist in the
//! template, with the keys, indexes, FIFO settings and redrive policy the code relies on.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::Value;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template resource {0}: {1}")]
    Resource(String, String),
    #[error("creating {0}: {1}")]
    Aws(String, String),
}

/// The tables and queues declared in the template.
#[derive(Debug, Clone)]
pub struct TemplateResources {
    pub tables: Vec<(String, Value)>,
    pub queues: Vec<(String, Value)>,
}

/// Logical id -> physical name/URL of what was created.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    pub tables: BTreeMap<String, String>,
    pub queue_urls: BTreeMap<String, String>,
    pub queue_arns: BTreeMap<String, String>,
}

/// The workspace root (this crate lives in `tests/local/`).
pub fn workspace_root() -> &'static Path {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
}

/// The SAM template's path.
pub fn template_path() -> std::path::PathBuf {
    workspace_root().join("infra").join("template.yaml")
}

/// Reads the tables and queues of a template.
pub fn read_template(path: &Path) -> Result<TemplateResources, ProvisionError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ProvisionError::Read(path.display().to_string(), e))?;
    parse_template(&text)
}

pub fn parse_template(text: &str) -> Result<TemplateResources, ProvisionError> {
    let doc: Value = serde_yaml_ng::from_str(text)?;
    let mut out = TemplateResources {
        tables: Vec::new(),
        queues: Vec::new(),
    };
    let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) else {
        return Err(ProvisionError::Resource(
            "Resources".into(),
            "missing".into(),
        ));
    };
    for (id, res) in resources {
        let id = id.as_str().unwrap_or_default().to_owned();
        let props = res.get("Properties").cloned().unwrap_or(Value::Null);
        match res.get("Type").and_then(Value::as_str) {
            Some("AWS::DynamoDB::Table") => out.tables.push((id, props)),
            Some("AWS::SQS::Queue") => out.queues.push((id, props)),
            _ => {}
        }
    }
    Ok(out)
}

/// Strips a YAML tag (`!Ref`, `!GetAtt`) and returns the value behind it.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match untag(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn key_schema(id: &str, v: Option<&Value>) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    let items = v
        .and_then(Value::as_sequence)
        .ok_or_else(|| ProvisionError::Resource(id.into(), "KeySchema missing".into()))?;
    items
        .iter()
        .map(|k| {
            let name = k.get("AttributeName").and_then(scalar).unwrap_or_default();
            let kind = match k.get("KeyType").and_then(scalar).as_deref() {
                Some("HASH") => KeyType::Hash,
                Some("RANGE") => KeyType::Range,
                other => {
                    return Err(ProvisionError::Resource(
                        id.into(),
                        format!("KeyType {other:?}"),
                    ))
                }
            };
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| ProvisionError::Resource(id.into(), e.to_string()))
        })
        .collect()
}

/// Creates every table and queue of the template, named `{prefix}-{LogicalId}`.
pub async fn provision(
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    resources: &TemplateResources,
    prefix: &str,
) -> Result<Provisioned, ProvisionError> {
    let mut out = Provisioned::default();
    for (id, props) in &resources.tables {
        let name = format!("{prefix}-{id}");
        create_table(dynamo, id, props, &name).await?;
        out.tables.insert(id.clone(), name);
    }
    // Queues without a redrive policy (the DLQs) first, so their ARNs are known.
    let mut ordered: Vec<&(String, Value)> = resources.queues.iter().collect();
    ordered.sort_by_key(|(_, p)| p.get("RedrivePolicy").is_some());
    for (id, props) in ordered {
        let fifo = props.get("FifoQueue").and_then(scalar).as_deref() == Some("true");
        let name = format!("{prefix}-{id}{}", if fifo { ".fifo" } else { "" });
        let mut req = sqs.create_queue().queue_name(&name);
        if let Some(map) = props.as_mapping() {
            for (k, v) in map {
                let key = k.as_str().unwrap_or_default();
                let attr = match key {
                    "RedrivePolicy" => {
                        let target = v
                            .get("deadLetterTargetArn")
                            .map(untag)
                            .and_then(Value::as_str)
                            .and_then(|s| s.strip_suffix(".Arn"))
                            .and_then(|dlq| out.queue_arns.get(dlq))
                            .ok_or_else(|| {
                                ProvisionError::Resource(
                                    id.clone(),
                                    "RedrivePolicy target unknown".into(),
                                )
                            })?;
                        let max = v
                            .get("maxReceiveCount")
                            .and_then(scalar)
                            .unwrap_or_else(|| "5".into());
                        let policy = serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": max.parse::<u32>().unwrap_or(5)});
                        req = req.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
                        continue;
                    }
                    "QueueName" | "Tags" => continue,
                    other => other,
                };
                if let Some(value) = scalar(v) {
                    req = req.attributes(QueueAttributeName::from(attr), value);
                }
            }
        }
        let created = req.send().await.map_err(|e| {
            ProvisionError::Aws(
                name.clone(),
                aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
            )
        })?;
        let url = created.queue_url().unwrap_or_default().to_owned();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| {
                ProvisionError::Aws(
                    name.clone(),
                    aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
                )
            })?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        out.queue_urls.insert(id.clone(), url);
        out.queue_arns.insert(id.clone(), arn);
    }
    Ok(out)
}

async fn create_table(
    dynamo: &aws_sdk_dynamodb::Client,
    id: &str,
    props: &Value,
    name: &str,
) -> Result<(), ProvisionError> {
    let bad = |m: String| ProvisionError::Resource(id.to_owned(), m);
    let mut req = dynamo
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(id, props.get("KeySchema"))?));
    for a in props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let ty = match a.get("AttributeType").and_then(scalar).as_deref() {
            Some("S") => ScalarAttributeType::S,
            Some("N") => ScalarAttributeType::N,
            Some("B") => ScalarAttributeType::B,
            other => return Err(bad(format!("AttributeType {other:?}"))),
        };
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a.get("AttributeName").and_then(scalar).unwrap_or_default())
                .attribute_type(ty)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    for g in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let projection = match g
            .get("Projection")
            .and_then(|p| p.get("ProjectionType"))
            .and_then(scalar)
            .as_deref()
        {
            Some("KEYS_ONLY") => ProjectionType::KeysOnly,
            Some("INCLUDE") => ProjectionType::Include,
            _ => ProjectionType::All,
        };
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(g.get("IndexName").and_then(scalar).unwrap_or_default())
                .set_key_schema(Some(key_schema(id, g.get("KeySchema"))?))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    req.send().await.map_err(|e| {
        ProvisionError::Aws(
            name.to_owned(),
            aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
        )
    })?;
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        if ttl.get("Enabled").and_then(scalar).as_deref() == Some("true") {
            let attr = ttl
                .get("AttributeName")
                .and_then(scalar)
                .unwrap_or_default();
            dynamo
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attr)
                        .enabled(true)
                        .build()
                        .map_err(|e| bad(e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| {
                    ProvisionError::Aws(
                        name.to_owned(),
                        aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
                    )
                })?;
        }
    }
    Ok(())
}
