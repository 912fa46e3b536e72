//! `ec2.tag_resources`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, new_tag};
use crate::actions::grants::{Grant, arn};
use crate::actions::{Action, Execute};
use crate::actions::{Mode, StepContext};

/// One id or a list of ids (so `{{steps.describe.outputs.volume_ids}}` can be given as is).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ResourceIds {
    One(String),
    Many(Vec<String>),
}

/// Tag resources (any EC2 resource ids) with the given tags, up to 1000 resources a call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagResources {
    /// Ids and lists of ids; flattened and de-duplicated.
    pub resource_ids: Vec<ResourceIds>,
    pub tags: indexmap::IndexMap<String, String>,
}

impl Action for TagResources {
    const NAME: &'static str = "ec2.tag_resources";
    const SUMMARY: &'static str =
        "tag instances, volumes, snapshots and interfaces with the case, in batches";
    const CALLS: &'static [&'static str] = &["ec2:DescribeTags", "ec2:CreateTags"];
    const PERMISSIONS: &'static [&'static str] = &["ec2:DescribeTags", "ec2:CreateTags"];
    const GRANTS: &'static [Grant] = &[Grant::on(&["ec2:CreateTags"], arn::EC2_TAGGABLE)];
}

/// CreateTags takes at most this many resource ids per call.
pub const MAX_IDS_PER_CALL: usize = 1000;

impl Execute for TagResources {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        check_tags(&self.tags)?;
        let mut ids = flatten(&self.resource_ids);
        // In a drill, earlier steps name what they would have created with placeholders
        // (`<would be created by step …>`): nothing to send EC2, but say so.
        let mut placeholders = Vec::new();
        if ctx.mode == Mode::DryRun {
            (placeholders, ids) = ids.into_iter().partition(|id| is_placeholder(id));
        }
        // Resources that carry every tag already need no call: a re-run changes nothing.
        let done = already_tagged(ctx, &ids, &self.tags).await?;
        let already = done.len();
        ids.retain(|id| !done.contains(id));
        let tags: Vec<_> = self.tags.iter().map(|(k, v)| new_tag(k, v)).collect();
        let mut tagged = 0;
        let mut batches = 0;
        for batch in batches_of(&ids) {
            let targets: Vec<&str> = batch.iter().map(String::as_str).collect();
            let result = ctx
                .ec2_change("CreateTags", &targets, |dry_run| {
                    ctx.clients()
                        .ec2
                        .create_tags()
                        .dry_run(dry_run)
                        .set_resources(Some(batch.to_vec()))
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await;
            match result {
                Ok(Some(_)) => tagged += batch.len(),
                Ok(None) => {}
                // CreateTags is idempotent: a retryable failure is left whole, so the engine may
                // run the step again (a failure with outputs is never retried).
                Err(error) if error.is_retryable() || tagged == 0 => return Err(error),
                // Otherwise the failure says which batches were tagged.
                Err(error) => {
                    return Err(error.with_outputs(json!({
                        "tagged": tagged,
                        "resource_ids": ids[..tagged],
                        "tags": self.tags,
                        "batches": batches,
                    })));
                }
            }
            batches += 1;
        }
        let mut outputs = json!({
            "tagged": tagged,
            "already_tagged": already,
            "resource_ids": ids,
            "tags": self.tags,
            "batches": batches,
            "changed": tagged > 0,
        });
        if ctx.mode == Mode::DryRun {
            outputs["dry_run"] = json!(true);
            outputs["would_tag"] = json!(ids.len() + placeholders.len());
            if !placeholders.is_empty() {
                outputs["placeholders"] = json!(placeholders);
            }
        }
        Ok(outputs)
    }
}

/// DescribeTags takes at most this many values per filter.
pub const MAX_FILTER_VALUES: usize = 200;

/// One journaled page of DescribeTags: the tags with one of `keys` on the resources `ids`
/// (at most [`MAX_FILTER_VALUES`]), from `token` on. Shared by this action and the engine's
/// protected-tag interlock.
pub async fn describe_tags_page(
    ctx: &StepContext,
    ids: &[String],
    keys: &[String],
    token: Option<String>,
) -> Result<aws_sdk_ec2::operation::describe_tags::DescribeTagsOutput, ActionError> {
    use aws_sdk_ec2::types::Filter;
    let targets: Vec<&str> = ids.iter().map(String::as_str).collect();
    ctx.call("ec2", "DescribeTags", &targets, || {
        ctx.clients()
            .ec2
            .describe_tags()
            .filters(
                Filter::builder()
                    .name("resource-id")
                    .set_values(Some(ids.to_vec()))
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("key")
                    .set_values(Some(keys.to_vec()))
                    .build(),
            )
            .set_next_token(token.clone())
            .send()
    })
    .await
}

/// The ids that already carry every one of `wanted` with the same value.
async fn already_tagged(
    ctx: &StepContext,
    ids: &[String],
    wanted: &indexmap::IndexMap<String, String>,
) -> Result<std::collections::HashSet<String>, ActionError> {
    let mut have: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let keys: Vec<String> = wanted.keys().cloned().collect();
    for chunk in ids.chunks(MAX_FILTER_VALUES) {
        let mut next: Option<String> = None;
        loop {
            let page = describe_tags_page(ctx, chunk, &keys, next.clone()).await?;
            for tag in page.tags() {
                let (Some(id), Some(key)) = (tag.resource_id(), tag.key()) else {
                    continue;
                };
                if wanted.get(key).map(String::as_str) == Some(tag.value().unwrap_or_default()) {
                    *have.entry(id.to_owned()).or_default() += 1;
                }
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
    }
    Ok(have
        .into_iter()
        .filter(|(_, count)| *count == wanted.len())
        .map(|(id, _)| id)
        .collect())
}

/// Every id once, in the order given, without empty strings.
pub fn flatten(given: &[ResourceIds]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let all = given.iter().flat_map(|entry| match entry {
        ResourceIds::One(id) => std::slice::from_ref(id),
        ResourceIds::Many(list) => list.as_slice(),
    });
    for id in all {
        let id = id.trim();
        if !id.is_empty() && seen.insert(id.to_owned()) {
            ids.push(id.to_owned());
        }
    }
    ids
}

/// The CreateTags calls to make: at most [`MAX_IDS_PER_CALL`] ids each.
pub fn batches_of(ids: &[String]) -> std::slice::Chunks<'_, String> {
    ids.chunks(MAX_IDS_PER_CALL)
}

/// A drill's stand-in for a resource an earlier step would have created.
fn is_placeholder(id: &str) -> bool {
    id.starts_with('<') && id.ends_with('>')
}

/// What EC2 would refuse anyway, said before any call and naming the tag.
fn check_tags(tags: &indexmap::IndexMap<String, String>) -> Result<(), ActionError> {
    if tags.is_empty() {
        return Err(ActionError::Failed(
            "`tags` is empty: nothing to tag with".into(),
        ));
    }
    for (key, value) in tags {
        let problem = if key.is_empty() {
            Some("an empty key".to_owned())
        } else if key.chars().count() > 128 {
            Some(format!("key `{key}` is longer than 128 characters"))
        } else if key.to_ascii_lowercase().starts_with("aws:") {
            Some(format!(
                "key `{key}`: the `aws:` prefix is reserved for AWS"
            ))
        } else if value.chars().count() > 256 {
            Some(format!(
                "the value of `{key}` is longer than 256 characters"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ActionError::Failed(format!("invalid tag: {problem}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i-{i:017x}")).collect()
    }

    #[test]
    fn flatten_keeps_order_and_drops_empties_and_duplicates() {
        let given: Vec<ResourceIds> = serde_json::from_value(serde_json::json!([
            "i-1",
            ["vol-1", "", "vol-2", "i-1"],
            " ",
            [],
            "vol-2",
            ["eni-1"]
        ]))
        .unwrap();
        assert_eq!(flatten(&given), ["i-1", "vol-1", "vol-2", "eni-1"]);
        assert!(flatten(&[]).is_empty());
    }

    #[test]
    fn batches_hold_at_most_a_thousand_ids() {
        for (n, want) in [
            (0, vec![]),
            (1, vec![1]),
            (1000, vec![1000]),
            (1001, vec![1000, 1]),
            (2500, vec![1000, 1000, 500]),
        ] {
            let ids = ids(n);
            let sizes: Vec<usize> = batches_of(&ids).map(<[String]>::len).collect();
            assert_eq!(sizes, want, "{n} ids");
            let rejoined: Vec<String> = batches_of(&ids).flatten().cloned().collect();
            assert_eq!(rejoined, ids, "{n} ids: every id once, in order");
        }
    }

    #[test]
    fn tags_ec2_would_refuse_are_refused_first() {
        let tags = |pairs: &[(&str, &str)]| -> indexmap::IndexMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(check_tags(&tags(&[("firebreak:case", "c-1")])).is_ok());
        for (bad, expected) in [
            (tags(&[]), "`tags` is empty"),
            (tags(&[("", "x")]), "an empty key"),
            (tags(&[("aws:x", "y")]), "reserved"),
            (tags(&[(&"k".repeat(129), "v")]), "longer than 128"),
            (tags(&[("k", &"v".repeat(257))]), "longer than 256"),
        ] {
            let error = check_tags(&bad).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
