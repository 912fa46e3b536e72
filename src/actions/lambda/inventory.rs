//! `lambda.inventory_function`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::settings::{self, Setting, is_public};
use super::{ActionError, FUNCTION_SCOPE, function};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ScopeField, arn};
use crate::actions::{Action, Execute};

/// Record a function as hashed evidence: configuration, code location (without its signature) and SHA-256, execution role, environment variable names (never their values), resource policy, function URL, event source mappings, reserved concurrency and tags. Says which policy statements grant to everyone. Changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryFunction {
    pub function_name: String,
}

impl Action for InventoryFunction {
    const NAME: &'static str = "lambda.inventory_function";
    const SUMMARY: &'static str = "record a function's configuration, code hash, role, environment variable names (never values), policy, URL, event sources, concurrency and tags as hashed evidence";
    const CALLS: &'static [&'static str] = &[
        "lambda:GetFunctionConfiguration",
        "lambda:GetFunction",
        "lambda:GetFunctionConcurrency",
        "lambda:ListEventSourceMappings",
        "lambda:GetFunctionUrlConfig",
        "lambda:GetPolicy",
        "lambda:ListTags",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "lambda:GetFunctionConfiguration",
            "lambda:GetFunction",
            "lambda:GetFunctionConcurrency",
            "lambda:GetFunctionUrlConfig",
            "lambda:GetPolicy",
            "lambda:ListTags",
        ],
        &[arn::LAMBDA_FUNCTION],
    )];
    const SCOPE: &'static [ScopeField] = FUNCTION_SCOPE;
}

impl Execute for InventoryFunction {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let function = function(ctx, &self.function_name).await?;
        let lambda = &ctx.clients().lambda;
        let got = ctx
            .call("lambda", "GetFunction", &[&function.name], || {
                lambda.get_function().function_name(&function.name).send()
            })
            .await?;
        let config = got.configuration();
        // Names only: the values are often secrets. They are also marked secret for the rest
        // of the run, so a value that turns up anywhere else is redacted.
        let mut variables: Vec<String> = Vec::new();
        if let Some(vars) = config
            .and_then(|c| c.environment())
            .and_then(|e| e.variables())
        {
            for (name, value) in vars {
                variables.push(name.clone());
                if value.len() >= 6 {
                    ctx.add_secret(value);
                }
            }
        }
        variables.sort();
        // The code location is a presigned URL: its query string is a credential.
        let location = got
            .code()
            .and_then(|c| c.location())
            .map(|l| l.split('?').next().unwrap_or_default().to_owned());
        let role = config.and_then(|c| c.role()).unwrap_or_default().to_owned();
        let facts = json!({
            "function_name": function.name,
            "function_arn": function.arn,
            "runtime": config.and_then(|c| c.runtime()).map(|r| r.as_str()),
            "handler": config.and_then(|c| c.handler()),
            "package_type": config.and_then(|c| c.package_type()).map(|p| p.as_str()),
            "code_sha256": config.and_then(|c| c.code_sha256()),
            "code_size": config.map(|c| c.code_size()),
            "code_location": location,
            "image_uri": got.code().and_then(|c| c.image_uri()),
            "last_modified": config.and_then(|c| c.last_modified()),
            "version": config.and_then(|c| c.version()),
            "role_arn": role,
            "role_name": role.rsplit('/').next().unwrap_or_default(),
            "layers": config.map(|c| c.layers().iter().filter_map(|l| l.arn()).collect::<Vec<_>>()),
            "kms_key_arn": config.and_then(|c| c.kms_key_arn()),
            "environment_variable_names": variables,
        });
        let statements = settings::statements(ctx, &function).await?;
        let public: Vec<&Value> = statements.iter().filter(|s| is_public(s)).collect();
        let mut state = serde_json::Map::new();
        for setting in [
            Setting::Concurrency,
            Setting::EventSources,
            Setting::UrlAuth,
            Setting::Tags,
        ] {
            state.insert(
                setting.key().into(),
                settings::read(ctx, &function, setting).await?,
            );
        }
        let document = json!({
            "function": facts,
            "policy_statements": statements,
            "settings": state,
        });
        let bytes = serde_json::to_vec_pretty(&document)
            .map_err(|e| ActionError::Failed(format!("cannot serialise the inventory: {e}")))?;
        let evidence = ctx.write_evidence(&format!("lambda-{}.json", function.name), &bytes)?;
        let mut out = facts;
        out["policy_statements"] = json!(statements);
        out["public_statements"] = json!(public);
        out["settings"] = Value::Object(state);
        out["evidence"] = evidence;
        Ok(out)
    }
}
