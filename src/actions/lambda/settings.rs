//! The settings of a function a containment changes and its release puts back, each read and
//! written as one JSON value (as for buckets): reserved concurrency, event source mappings'
//! states, the function URL's auth type, the policy statements that grant to everyone, tags.

use std::collections::BTreeMap;

use aws_sdk_lambda::types::FunctionUrlAuthType;
use serde_json::{Map, Value, json};

use super::ActionError;
use crate::actions::StepContext;
use crate::actions::error::found;

/// The order a release restores them: invocations and sources last, so nothing runs the
/// function before its URL and policy are as they were.
pub const ALL: &[Setting] = &[
    Setting::Tags,
    Setting::PublicStatements,
    Setting::UrlAuth,
    Setting::Concurrency,
    Setting::EventSources,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Concurrency,
    EventSources,
    UrlAuth,
    PublicStatements,
    Tags,
}

impl Setting {
    pub fn key(self) -> &'static str {
        match self {
            Setting::Concurrency => "reserved_concurrency",
            Setting::EventSources => "event_sources",
            Setting::UrlAuth => "url_auth_type",
            Setting::PublicStatements => "public_statements",
            Setting::Tags => "tags",
        }
    }
}

/// A function by name, with its ARN (tags are addressed by ARN).
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub arn: String,
}

/// `enabled` / `disabled` for the states on the way there too; other states as they are.
fn mapping_state(state: &str) -> String {
    match state {
        "Enabled" | "Enabling" => "enabled".into(),
        "Disabled" | "Disabling" => "disabled".into(),
        other => other.to_lowercase(),
    }
}

/// Whether a policy statement grants to everyone.
pub fn is_public(statement: &Value) -> bool {
    let principal = &statement["Principal"];
    statement["Effect"] == "Allow" && (principal == "*" || principal["AWS"] == "*")
}

/// The resource policy's statements (none without a policy).
pub async fn statements(ctx: &StepContext, function: &Function) -> Result<Vec<Value>, ActionError> {
    let lambda = &ctx.clients().lambda;
    let policy = found(
        ctx.call("lambda", "GetPolicy", &[&function.name], || {
            lambda.get_policy().function_name(&function.name).send()
        })
        .await,
    )?;
    let document: Value = policy
        .and_then(|p| p.policy().map(str::to_owned))
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    Ok(match &document["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    })
}

/// One setting as it is now.
pub async fn read(
    ctx: &StepContext,
    function: &Function,
    setting: Setting,
) -> Result<Value, ActionError> {
    let lambda = &ctx.clients().lambda;
    let name = function.name.as_str();
    Ok(match setting {
        Setting::Concurrency => {
            let out = ctx
                .call("lambda", "GetFunctionConcurrency", &[name], || {
                    lambda.get_function_concurrency().function_name(name).send()
                })
                .await?;
            json!(out.reserved_concurrent_executions())
        }
        Setting::EventSources => {
            let mut states = Map::new();
            let mut marker: Option<String> = None;
            loop {
                let page = ctx
                    .call("lambda", "ListEventSourceMappings", &[name], || {
                        lambda
                            .list_event_source_mappings()
                            .function_name(name)
                            .set_marker(marker.clone())
                            .send()
                    })
                    .await?;
                for mapping in page.event_source_mappings() {
                    if let Some(uuid) = mapping.uuid() {
                        states.insert(
                            uuid.to_owned(),
                            json!(mapping_state(mapping.state().unwrap_or("unknown"))),
                        );
                    }
                }
                marker = page.next_marker().map(str::to_owned);
                if marker.is_none() {
                    break;
                }
            }
            Value::Object(states)
        }
        Setting::UrlAuth => found(
            ctx.call("lambda", "GetFunctionUrlConfig", &[name], || {
                lambda.get_function_url_config().function_name(name).send()
            })
            .await,
        )?
        .map(|url| json!(url.auth_type().as_str()))
        .unwrap_or(Value::Null),
        Setting::PublicStatements => {
            let mut public: Vec<Value> = statements(ctx, function)
                .await?
                .into_iter()
                .filter(is_public)
                .collect();
            public.sort_by_key(|s| s["Sid"].to_string());
            Value::Array(public)
        }
        Setting::Tags => {
            let out = ctx
                .call("lambda", "ListTags", &[name], || {
                    lambda.list_tags().resource(&function.arn).send()
                })
                .await?;
            let tags: BTreeMap<&String, &String> = out.tags().into_iter().flatten().collect();
            json!(tags)
        }
    })
}

/// Moves one setting from `from` (as it is now) to `to`; `false` in a drill (nothing sent).
pub async fn write(
    ctx: &StepContext,
    function: &Function,
    setting: Setting,
    from: &Value,
    to: &Value,
) -> Result<bool, ActionError> {
    let lambda = &ctx.clients().lambda;
    let name = function.name.as_str();
    let input = |extra: Value| {
        let mut input = json!({ "function_name": name });
        if let (Value::Object(i), Value::Object(e)) = (&mut input, extra) {
            i.extend(e);
        }
        input
    };
    let mut sent = false;
    match setting {
        Setting::Concurrency => {
            sent = match to.as_i64() {
                None => ctx
                    .change(
                        "lambda",
                        "DeleteFunctionConcurrency",
                        &[name],
                        input(json!({})),
                        || {
                            lambda
                                .delete_function_concurrency()
                                .function_name(name)
                                .send()
                        },
                    )
                    .await?
                    .is_some(),
                Some(n) => {
                    let n = i32::try_from(n).map_err(|_| {
                        ActionError::Failed(format!("reserved concurrency {n} is out of range"))
                    })?;
                    ctx.change(
                        "lambda",
                        "PutFunctionConcurrency",
                        &[name],
                        input(json!({ "reserved_concurrent_executions": n })),
                        || {
                            lambda
                                .put_function_concurrency()
                                .function_name(name)
                                .reserved_concurrent_executions(n)
                                .send()
                        },
                    )
                    .await?
                    .is_some()
                }
            };
        }
        Setting::EventSources => {
            for (uuid, wanted) in to.as_object().into_iter().flatten() {
                let enable = match wanted.as_str() {
                    Some("enabled") => true,
                    Some("disabled") => false,
                    _ => continue, // a state firebreak does not set (creating, deleting…)
                };
                if from.get(uuid) == Some(wanted) || from.get(uuid).is_none() {
                    continue; // already so, or gone since
                }
                sent |= ctx
                    .change(
                        "lambda",
                        "UpdateEventSourceMapping",
                        &[name, uuid],
                        input(json!({ "uuid": uuid, "enabled": enable })),
                        || {
                            lambda
                                .update_event_source_mapping()
                                .uuid(uuid)
                                .enabled(enable)
                                .send()
                        },
                    )
                    .await?
                    .is_some();
            }
        }
        Setting::UrlAuth => {
            let Some(auth) = to.as_str() else {
                return Err(ActionError::Failed(format!(
                    "function {name}: a function URL cannot be re-created by a release (it would get a new address)"
                )));
            };
            let auth = FunctionUrlAuthType::from(auth);
            sent = ctx
                .change(
                    "lambda",
                    "UpdateFunctionUrlConfig",
                    &[name],
                    input(json!({ "auth_type": auth.as_str() })),
                    || {
                        lambda
                            .update_function_url_config()
                            .function_name(name)
                            .auth_type(auth.clone())
                            .send()
                    },
                )
                .await?
                .is_some();
        }
        Setting::PublicStatements => {
            let sid = |s: &Value| s["Sid"].as_str().unwrap_or_default().to_owned();
            let wanted: Vec<String> = to.as_array().into_iter().flatten().map(sid).collect();
            let present: Vec<String> = from.as_array().into_iter().flatten().map(sid).collect();
            for statement in from.as_array().into_iter().flatten() {
                let id = sid(statement);
                if !wanted.contains(&id) {
                    sent |= ctx
                        .change(
                            "lambda",
                            "RemovePermission",
                            &[name, &id],
                            input(json!({ "statement_id": id })),
                            || {
                                lambda
                                    .remove_permission()
                                    .function_name(name)
                                    .statement_id(&id)
                                    .send()
                            },
                        )
                        .await?
                        .is_some();
                }
            }
            for statement in to.as_array().into_iter().flatten() {
                if !present.contains(&sid(statement)) {
                    sent |= add_permission(ctx, function, statement).await?;
                }
            }
        }
        Setting::Tags => {
            let current = from.as_object().cloned().unwrap_or_default();
            let wanted = to.as_object().cloned().unwrap_or_default();
            let gone: Vec<String> = current
                .keys()
                .filter(|k| !wanted.contains_key(*k))
                .cloned()
                .collect();
            let changed: Map<String, Value> = wanted
                .iter()
                .filter(|(k, v)| current.get(*k) != Some(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !gone.is_empty() {
                sent |= ctx
                    .change(
                        "lambda",
                        "UntagResource",
                        &[name],
                        input(json!({ "tag_keys": gone })),
                        || {
                            lambda
                                .untag_resource()
                                .resource(&function.arn)
                                .set_tag_keys(Some(gone.clone()))
                                .send()
                        },
                    )
                    .await?
                    .is_some();
            }
            if !changed.is_empty() {
                let tags: std::collections::HashMap<String, String> = changed
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                sent |= ctx
                    .change(
                        "lambda",
                        "TagResource",
                        &[name],
                        input(json!({ "tags": changed })),
                        || {
                            lambda
                                .tag_resource()
                                .resource(&function.arn)
                                .set_tags(Some(tags.clone()))
                                .send()
                        },
                    )
                    .await?
                    .is_some();
            }
        }
    }
    Ok(sent)
}

/// Re-creates a statement RemovePermission took away, from its recorded JSON. Only the forms
/// AddPermission can express (a principal, an action, a source ARN / account, an organisation,
/// a function URL auth type); anything else is refused with the statement, to re-create by
/// hand, rather than re-created differently.
async fn add_permission(
    ctx: &StepContext,
    function: &Function,
    statement: &Value,
) -> Result<bool, ActionError> {
    let lambda = &ctx.clients().lambda;
    let name = function.name.as_str();
    let sid = statement["Sid"].as_str().unwrap_or_default().to_owned();
    let principal = match &statement["Principal"] {
        Value::String(p) => p.clone(),
        Value::Object(p) => p
            .get("Service")
            .or_else(|| p.get("AWS"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    let action = match &statement["Action"] {
        Value::String(a) => a.clone(),
        Value::Array(list) if list.len() == 1 => list[0].as_str().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    let condition = &statement["Condition"];
    let source_arn = condition["ArnLike"]["AWS:SourceArn"]
        .as_str()
        .map(str::to_owned);
    let source_account = condition["StringEquals"]["AWS:SourceAccount"]
        .as_str()
        .map(str::to_owned);
    let org = condition["StringEquals"]["aws:PrincipalOrgID"]
        .as_str()
        .map(str::to_owned);
    // AWS writes the URL auth type as a condition; moto as a field of the statement.
    let url_auth = condition["StringEquals"]["lambda:FunctionUrlAuthType"]
        .as_str()
        .or(statement["FunctionUrlAuthType"].as_str())
        .map(FunctionUrlAuthType::from);
    let known = ["ArnLike", "StringEquals"];
    let unknown_condition = condition
        .as_object()
        .is_some_and(|c| c.keys().any(|k| !known.contains(&k.as_str())));
    if sid.is_empty() || principal.is_empty() || action.is_empty() || unknown_condition {
        return Err(ActionError::Failed(format!(
            "function {name}: statement {statement} cannot be re-created with AddPermission; add it back by hand"
        )));
    }
    let input = json!({ "function_name": name, "statement": statement });
    Ok(ctx
        .change("lambda", "AddPermission", &[name, &sid], input, || {
            lambda
                .add_permission()
                .function_name(name)
                .statement_id(&sid)
                .action(&action)
                .principal(&principal)
                .set_source_arn(source_arn.clone())
                .set_source_account(source_account.clone())
                .set_principal_org_id(org.clone())
                .set_function_url_auth_type(url_auth.clone())
                .send()
        })
        .await?
        .is_some())
}
