//! firebreak's tags (`ec2.tag_resources`) on the instance, its interfaces and volumes: removed
//! where they still carry the run's values. Snapshots keep theirs: they are evidence.

use aws_sdk_ec2::types::Tag;
use serde_json::{Value, json};

use super::{Op, Piece};
use crate::actions::ec2::describe_tags_page;
use crate::actions::prior::Standing;
use crate::actions::{ActionError, StepContext};

pub(crate) struct Wanted {
    resource: String,
    keys: Vec<String>,
}

/// `mine`: the instance's own resources; a tag step's other resources (a fleet's other
/// instances) are not this release's.
pub(super) async fn plan(
    ctx: &StepContext,
    outputs: &[Value],
    mine: &[String],
) -> Result<Vec<Piece>, ActionError> {
    let mut pieces = Vec::new();
    for out in outputs.iter().filter(|o| o["dry_run"] != true) {
        let tags = out["tags"].as_object().cloned().unwrap_or_default();
        for resource in out["resource_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if resource.starts_with("snap-")
                || !mine.iter().any(|m| m == resource)
                || pieces.iter().any(|p: &Piece| p.name.ends_with(resource))
            {
                continue;
            }
            let wanted_keys: Vec<String> = tags.keys().cloned().collect();
            let page = describe_tags_page(ctx, &[resource.to_owned()], &wanted_keys, None).await?;
            let keys: Vec<String> = tags
                .iter()
                .filter(|(k, v)| {
                    page.tags()
                        .iter()
                        .any(|t| t.key() == Some(k.as_str()) && t.value() == v.as_str())
                })
                .map(|(k, _)| k.clone())
                .collect();
            let now = json!(keys);
            pieces.push(Piece {
                name: format!("firebreak tags on {resource}"),
                standing: if keys.is_empty() {
                    Standing::AlreadyRestored
                } else {
                    Standing::Restore
                },
                left: Value::Null,
                now,
                restore_to: json!([]),
                op: Op::Untag(Wanted {
                    resource: resource.to_owned(),
                    keys,
                }),
            });
        }
    }
    Ok(pieces)
}

pub(super) async fn apply(ctx: &StepContext, wanted: &Wanted) -> Result<bool, ActionError> {
    let tags: Vec<Tag> = wanted
        .keys
        .iter()
        .map(|k| Tag::builder().key(k).build())
        .collect();
    Ok(ctx
        .ec2_change("DeleteTags", &[&wanted.resource], |dry_run| {
            ctx.clients()
                .ec2
                .delete_tags()
                .dry_run(dry_run)
                .resources(&wanted.resource)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await?
        .is_some())
}
