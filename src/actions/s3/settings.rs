//! The five settings of a bucket a containment changes and its release puts back, each read
//! and written as one JSON value so the containment can record `before`/`after` and the
//! release compare and restore them without knowing which is which. `null` means the bucket
//! has no such configuration; writing `null` deletes it (a setting that did not exist before
//! is deleted by the release, not set to some default).

use aws_sdk_s3::types::{
    AccessControlPolicy, Grant, Grantee, ObjectOwnership, Owner, OwnershipControls,
    OwnershipControlsRule, Permission, PublicAccessBlockConfiguration, Tag, Tagging, Type,
};
use serde_json::{Map, Value, json};

use super::ActionError;
use crate::actions::StepContext;
use crate::actions::error::found;

/// The settings, in the order a release restores them: the public access block first (S3
/// refuses a public policy or ACL while it blocks them), ownership before the ACL (ACLs can be
/// set only once ownership allows them).
pub const ALL: &[Setting] = &[
    Setting::Tags,
    Setting::PublicAccessBlock,
    Setting::Ownership,
    Setting::Acl,
    Setting::Policy,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    PublicAccessBlock,
    Acl,
    Ownership,
    Policy,
    Tags,
}

impl Setting {
    pub fn key(self) -> &'static str {
        match self {
            Setting::PublicAccessBlock => "public_access_block",
            Setting::Acl => "acl",
            Setting::Ownership => "ownership",
            Setting::Policy => "policy",
            Setting::Tags => "tags",
        }
    }
}

/// A bucket, and the account that must own it: bucket names are global, so every call says
/// whose bucket it means (S3 refuses the call when another account owns it).
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub owner: Option<String>,
}

fn bad(bucket: &Bucket, what: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(format!(
        "bucket {}: cannot build the {what}: {e}",
        bucket.name
    ))
}

/// Every setting of the bucket, as `{key: value}`.
pub async fn read_all(
    ctx: &StepContext,
    bucket: &Bucket,
) -> Result<Map<String, Value>, ActionError> {
    let mut all = Map::new();
    for setting in ALL.iter().rev() {
        all.insert(setting.key().into(), read(ctx, bucket, *setting).await?);
    }
    Ok(all)
}

/// One setting as it is now.
pub async fn read(
    ctx: &StepContext,
    bucket: &Bucket,
    setting: Setting,
) -> Result<Value, ActionError> {
    let s3 = &ctx.clients().s3;
    Ok(match setting {
        Setting::PublicAccessBlock => found(
            ctx.call("s3", "GetPublicAccessBlock", &[&bucket.name], || {
                s3.get_public_access_block()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .send()
            })
            .await,
        )?
        .and_then(|out| out.public_access_block_configuration().cloned())
        .map(|c| {
            json!({
                "block_public_acls": c.block_public_acls().unwrap_or(false),
                "ignore_public_acls": c.ignore_public_acls().unwrap_or(false),
                "block_public_policy": c.block_public_policy().unwrap_or(false),
                "restrict_public_buckets": c.restrict_public_buckets().unwrap_or(false),
            })
        })
        .unwrap_or(Value::Null),
        Setting::Acl => {
            let out = ctx
                .call("s3", "GetBucketAcl", &[&bucket.name], || {
                    s3.get_bucket_acl()
                        .bucket(&bucket.name)
                        .set_expected_bucket_owner(bucket.owner.clone())
                        .send()
                })
                .await?;
            let mut grants: Vec<Value> = out
                .grants()
                .iter()
                .map(|g| {
                    let grantee = g.grantee();
                    json!({
                        "type": grantee.map(|e| e.r#type().as_str()),
                        "id": grantee.and_then(|e| e.id()),
                        "uri": grantee.and_then(|e| e.uri()),
                        "email": grantee.and_then(|e| e.email_address()),
                        "permission": g.permission().map(|p| p.as_str()),
                    })
                })
                .collect();
            // Order carries no meaning; sorted, two reads of one ACL compare equal.
            grants.sort_by_key(|g| g.to_string());
            json!({ "owner": out.owner().and_then(|o| o.id()), "grants": grants })
        }
        Setting::Ownership => found(
            ctx.call("s3", "GetBucketOwnershipControls", &[&bucket.name], || {
                s3.get_bucket_ownership_controls()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .send()
            })
            .await,
        )?
        .and_then(|out| {
            out.ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| json!(r.object_ownership().as_str()))
        })
        .unwrap_or(Value::Null),
        Setting::Policy => found(
            ctx.call("s3", "GetBucketPolicy", &[&bucket.name], || {
                s3.get_bucket_policy()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .send()
            })
            .await,
        )?
        .and_then(|out| out.policy().map(str::to_owned))
        .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
        .unwrap_or(Value::Null),
        Setting::Tags => found(
            ctx.call("s3", "GetBucketTagging", &[&bucket.name], || {
                s3.get_bucket_tagging()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .send()
            })
            .await,
        )?
        .map(|out| {
            Value::Object(
                out.tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), json!(t.value())))
                    .collect(),
            )
        })
        .filter(|tags| tags.as_object().is_some_and(|t| !t.is_empty()))
        .unwrap_or(Value::Null),
    })
}

/// Sets one setting to `value` (`null`: deletes it). `false` in a drill: nothing was sent.
pub async fn write(
    ctx: &StepContext,
    bucket: &Bucket,
    setting: Setting,
    value: &Value,
) -> Result<bool, ActionError> {
    let s3 = &ctx.clients().s3;
    let input = json!({ "bucket": bucket.name, "expected_bucket_owner": bucket.owner, setting.key(): value });
    // An empty tag set is no tag set (S3 refuses to put one).
    let value = match value {
        Value::Object(map) if setting == Setting::Tags && map.is_empty() => &Value::Null,
        other => other,
    };
    let sent = match (setting, value) {
        (Setting::PublicAccessBlock, Value::Null) => ctx
            .change(
                "s3",
                "DeletePublicAccessBlock",
                &[&bucket.name],
                input,
                || {
                    s3.delete_public_access_block()
                        .bucket(&bucket.name)
                        .set_expected_bucket_owner(bucket.owner.clone())
                        .send()
                },
            )
            .await?
            .is_some(),
        (Setting::PublicAccessBlock, v) => {
            let flag = |k: &str| v[k].as_bool().unwrap_or(false);
            let config = PublicAccessBlockConfiguration::builder()
                .block_public_acls(flag("block_public_acls"))
                .ignore_public_acls(flag("ignore_public_acls"))
                .block_public_policy(flag("block_public_policy"))
                .restrict_public_buckets(flag("restrict_public_buckets"))
                .build();
            ctx.change("s3", "PutPublicAccessBlock", &[&bucket.name], input, || {
                s3.put_public_access_block()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .public_access_block_configuration(config.clone())
                    .send()
            })
            .await?
            .is_some()
        }
        (Setting::Acl, v) => {
            let policy = access_control_policy(bucket, v)?;
            ctx.change("s3", "PutBucketAcl", &[&bucket.name], input, || {
                s3.put_bucket_acl()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .access_control_policy(policy.clone())
                    .send()
            })
            .await?
            .is_some()
        }
        (Setting::Ownership, Value::Null) => ctx
            .change(
                "s3",
                "DeleteBucketOwnershipControls",
                &[&bucket.name],
                input,
                || {
                    s3.delete_bucket_ownership_controls()
                        .bucket(&bucket.name)
                        .set_expected_bucket_owner(bucket.owner.clone())
                        .send()
                },
            )
            .await?
            .is_some(),
        (Setting::Ownership, v) => {
            let ownership = ObjectOwnership::from(v.as_str().unwrap_or_default());
            let rule = OwnershipControlsRule::builder()
                .object_ownership(ownership)
                .build()
                .map_err(|e| bad(bucket, "ownership rule", e))?;
            let controls = OwnershipControls::builder()
                .rules(rule)
                .build()
                .map_err(|e| bad(bucket, "ownership controls", e))?;
            ctx.change(
                "s3",
                "PutBucketOwnershipControls",
                &[&bucket.name],
                input,
                || {
                    s3.put_bucket_ownership_controls()
                        .bucket(&bucket.name)
                        .set_expected_bucket_owner(bucket.owner.clone())
                        .ownership_controls(controls.clone())
                        .send()
                },
            )
            .await?
            .is_some()
        }
        (Setting::Policy, Value::Null) => ctx
            .change("s3", "DeleteBucketPolicy", &[&bucket.name], input, || {
                s3.delete_bucket_policy()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .send()
            })
            .await?
            .is_some(),
        (Setting::Policy, v) => {
            let text = match v {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            ctx.change("s3", "PutBucketPolicy", &[&bucket.name], input, || {
                s3.put_bucket_policy()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .policy(&text)
                    .send()
            })
            .await?
            .is_some()
        }
        (Setting::Tags, Value::Null) => ctx
            .change("s3", "DeleteBucketTagging", &[&bucket.name], input, || {
                s3.delete_bucket_tagging()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .send()
            })
            .await?
            .is_some(),
        (Setting::Tags, v) => {
            let mut tagging = Tagging::builder();
            for (key, value) in v.as_object().into_iter().flatten() {
                tagging = tagging.tag_set(
                    Tag::builder()
                        .key(key)
                        .value(value.as_str().unwrap_or_default())
                        .build()
                        .map_err(|e| bad(bucket, "tag", e))?,
                );
            }
            let tagging = tagging.build().map_err(|e| bad(bucket, "tag set", e))?;
            ctx.change("s3", "PutBucketTagging", &[&bucket.name], input, || {
                s3.put_bucket_tagging()
                    .bucket(&bucket.name)
                    .set_expected_bucket_owner(bucket.owner.clone())
                    .tagging(tagging.clone())
                    .send()
            })
            .await?
            .is_some()
        }
    };
    Ok(sent)
}

/// An ACL as [`read`] reports it, for PutBucketAcl.
fn access_control_policy(bucket: &Bucket, acl: &Value) -> Result<AccessControlPolicy, ActionError> {
    let owner = acl["owner"]
        .as_str()
        .ok_or_else(|| bad(bucket, "ACL", "no owner id recorded"))?;
    let mut policy = AccessControlPolicy::builder().owner(Owner::builder().id(owner).build());
    for grant in acl["grants"].as_array().into_iter().flatten() {
        let text = |k: &str| grant[k].as_str().map(str::to_owned);
        let grantee = Grantee::builder()
            .r#type(Type::from(grant["type"].as_str().unwrap_or_default()))
            .set_id(text("id"))
            .set_uri(text("uri"))
            .set_email_address(text("email"))
            .build()
            .map_err(|e| bad(bucket, "ACL grant", e))?;
        policy = policy.grants(
            Grant::builder()
                .grantee(grantee)
                .permission(Permission::from(
                    grant["permission"].as_str().unwrap_or_default(),
                ))
                .build(),
        );
    }
    Ok(policy.build())
}

/// The ACL that grants only the owner full control: what `ACL: private` leaves.
pub fn owner_only(acl: &Value) -> Value {
    let owner = acl["owner"].clone();
    json!({
        "owner": owner,
        "grants": [{
            "type": "CanonicalUser",
            "id": owner,
            "uri": null,
            "email": null,
            "permission": "FULL_CONTROL",
        }],
    })
}

/// Whether two values of a setting are the same for a comparison (ACL grants compare without
/// their order; everything else exactly).
pub fn same(setting: Setting, a: &Value, b: &Value) -> bool {
    match setting {
        Setting::Acl => {
            let grants = |v: &Value| {
                let mut list: Vec<String> = v["grants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| {
                        json!({"type": g["type"], "id": g["id"], "uri": g["uri"], "permission": g["permission"]})
                            .to_string()
                    })
                    .collect();
                list.sort();
                list
            };
            a["owner"] == b["owner"] && grants(a) == grants(b)
        }
        _ => a == b,
    }
}
