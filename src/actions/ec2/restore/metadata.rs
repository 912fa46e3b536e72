//! Metadata options: the endpoint and token settings `ec2.disable_metadata` changed.

use aws_sdk_ec2::types::{HttpTokensState, InstanceMetadataEndpointState};
use serde_json::{Value, json};

use super::{Op, Piece};
use crate::actions::ec2::describe_one;
use crate::actions::prior::Standing;
use crate::actions::{ActionError, StepContext};

pub(crate) struct Wanted {
    endpoint: Option<String>,
    tokens: Option<String>,
}

fn pair(v: &Value) -> Value {
    json!({ "http_endpoint": v["http_endpoint"], "http_tokens": v["http_tokens"] })
}

pub(super) async fn plan(
    ctx: &StepContext,
    id: &str,
    outputs: &[Value],
) -> Result<Vec<Piece>, ActionError> {
    let (Some(first), Some(last)) = (outputs.first(), outputs.last()) else {
        return Ok(Vec::new());
    };
    let before = pair(&first["before"]);
    let after = pair(&last["after"]);
    if before == after {
        return Ok(Vec::new());
    }
    let instance = describe_one(ctx, id).await?;
    let options = instance.metadata_options();
    let now = json!({
        "http_endpoint": options.and_then(|o| o.http_endpoint()).map(|e| e.as_str()),
        "http_tokens": options.and_then(|o| o.http_tokens()).map(|t| t.as_str()),
    });
    Ok(vec![Piece {
        name: "metadata_options".into(),
        standing: Standing::of(&now, &before, &after, |a, b| a == b),
        left: after,
        now,
        op: Op::Metadata(Wanted {
            endpoint: before["http_endpoint"].as_str().map(str::to_owned),
            tokens: before["http_tokens"].as_str().map(str::to_owned),
        }),
        restore_to: before,
    }])
}

pub(super) async fn apply(
    ctx: &StepContext,
    id: &str,
    wanted: &Wanted,
) -> Result<bool, ActionError> {
    Ok(ctx
        .ec2_change("ModifyInstanceMetadataOptions", &[id], |dry_run| {
            ctx.clients()
                .ec2
                .modify_instance_metadata_options()
                .dry_run(dry_run)
                .instance_id(id)
                .set_http_endpoint(
                    wanted
                        .endpoint
                        .as_deref()
                        .map(InstanceMetadataEndpointState::from),
                )
                .set_http_tokens(wanted.tokens.as_deref().map(HttpTokensState::from))
                .send()
        })
        .await?
        .is_some())
}
