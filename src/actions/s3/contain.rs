//! The containment moves on an exposed bucket. Each reads the setting first and changes it
//! only when it is not yet as wanted (a rerun changes nothing), and records it `before` and
//! `after` for `s3.release_bucket`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::settings::{self, Setting};
use super::{ActionError, BUCKET_SCOPE, apply, bucket};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ScopeField, arn};
use crate::actions::{Action, Execute};

/// The outputs every move reports.
fn outputs(
    bucket: &str,
    before: Map<String, Value>,
    after: Map<String, Value>,
    sent: bool,
    ctx: &StepContext,
) -> Value {
    let changed = before
        .iter()
        .any(|(k, v)| after.get(k).is_some_and(|a| a != v));
    let mut out = json!({
        "bucket": bucket,
        "before": before,
        "after": after,
        "changed": sent,
    });
    if changed && !sent && ctx.mode == crate::actions::Mode::DryRun {
        out["dry_run"] = json!(true);
    }
    out
}

fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(key.into(), value);
    map
}

/// Turn on all four settings of the bucket's public access block (ACLs and policies that grant public access are then blocked and ignored). Records the block before (`null`: none).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockPublicAccess {
    pub bucket: String,
    /// The account that must own the bucket (e.g. `{{run.account}}`). Empty: not checked.
    #[serde(default)]
    pub expected_owner: Option<String>,
}

impl Action for BlockPublicAccess {
    const NAME: &'static str = "s3.block_public_access";
    const SUMMARY: &'static str =
        "turn on the bucket's public access block (all four settings); records the one before";
    const CALLS: &'static [&'static str] = &["s3:GetPublicAccessBlock", "s3:PutPublicAccessBlock"];
    const PERMISSIONS: &'static [&'static str] = &[
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
    ];
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
        ],
        &[arn::S3_BUCKET],
    )];
    const SCOPE: &'static [ScopeField] = BUCKET_SCOPE;
}

impl Execute for BlockPublicAccess {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let bucket = bucket(&self.bucket, self.expected_owner.as_deref())?;
        let desired = json!({
            "block_public_acls": true,
            "ignore_public_acls": true,
            "block_public_policy": true,
            "restrict_public_buckets": true,
        });
        let (before, sent) = apply(ctx, &bucket, Setting::PublicAccessBlock, &desired).await?;
        let key = Setting::PublicAccessBlock.key();
        Ok(outputs(
            &bucket.name,
            one(key, before),
            one(key, desired),
            sent,
            ctx,
        ))
    }
}

/// Reset the bucket's ACL to owner-only, then enforce `BucketOwnerEnforced` object ownership (ACLs off) — in that order, the one S3 requires. A bucket already enforced is left as it is. Records both before.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnforceBucketOwner {
    pub bucket: String,
    /// The account that must own the bucket (e.g. `{{run.account}}`). Empty: not checked.
    #[serde(default)]
    pub expected_owner: Option<String>,
}

impl Action for EnforceBucketOwner {
    const NAME: &'static str = "s3.enforce_bucket_owner";
    const SUMMARY: &'static str = "reset the bucket ACL to owner-only, then enforce BucketOwnerEnforced ownership (ACLs off); records both before";
    const CALLS: &'static [&'static str] = &[
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketAcl",
        "s3:PutBucketAcl",
        "s3:PutBucketOwnershipControls",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(Self::CALLS, &[arn::S3_BUCKET])];
    const SCOPE: &'static [ScopeField] = BUCKET_SCOPE;
}

/// The ownership that turns ACLs off.
pub const ENFORCED: &str = "BucketOwnerEnforced";

impl Execute for EnforceBucketOwner {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let bucket = bucket(&self.bucket, self.expected_owner.as_deref())?;
        let ownership = settings::read(ctx, &bucket, Setting::Ownership).await?;
        let acl = settings::read(ctx, &bucket, Setting::Acl).await?;
        let mut before = Map::new();
        before.insert(Setting::Acl.key().into(), acl.clone());
        before.insert(Setting::Ownership.key().into(), ownership.clone());
        if ownership == ENFORCED {
            // ACLs are already off (S3 refuses ACL changes then): nothing to do.
            return Ok(outputs(&bucket.name, before.clone(), before, false, ctx));
        }
        // S3 refuses BucketOwnerEnforced while the ACL grants to anyone but the owner.
        let owner_only = settings::owner_only(&acl);
        let acl_sent = if settings::same(Setting::Acl, &acl, &owner_only) {
            false
        } else {
            settings::write(ctx, &bucket, Setting::Acl, &owner_only).await?
        };
        let ownership_sent =
            settings::write(ctx, &bucket, Setting::Ownership, &json!(ENFORCED)).await?;
        let mut after = Map::new();
        after.insert(Setting::Acl.key().into(), owner_only);
        after.insert(Setting::Ownership.key().into(), json!(ENFORCED));
        Ok(outputs(
            &bucket.name,
            before,
            after,
            acl_sent || ownership_sent,
            ctx,
        ))
    }
}

/// Replace the bucket policy with a deny for every principal outside the account (or, with `org_id`, the organisation) — AWS service principals keep working — plus, with `break_glass_role_arn`, an allow for the responder role. Records the policy before (`null`: none). Opt-in: legitimate cross-account access stops too.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictBucketPolicy {
    pub bucket: String,
    /// The bucket's account: principals of other accounts are denied.
    pub account_id: String,
    /// The organisation (`o-…`): with it, principals outside the organisation are denied
    /// instead of those outside the account.
    #[serde(default)]
    pub org_id: Option<String>,
    /// The responder role kept able to reach the bucket (break glass).
    #[serde(default)]
    pub break_glass_role_arn: Option<String>,
    /// The account that must own the bucket (e.g. `{{run.account}}`). Empty: not checked.
    #[serde(default)]
    pub expected_owner: Option<String>,
}

impl Action for RestrictBucketPolicy {
    const NAME: &'static str = "s3.restrict_bucket_policy";
    const SUMMARY: &'static str = "replace the bucket policy with a deny for principals outside the account or organisation (service principals kept) and a break-glass allow; records the policy before";
    const CALLS: &'static [&'static str] = &["s3:GetBucketPolicy", "s3:PutBucketPolicy"];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(Self::CALLS, &[arn::S3_BUCKET])];
    const SCOPE: &'static [ScopeField] = BUCKET_SCOPE;
}

impl Execute for RestrictBucketPolicy {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let bucket = bucket(&self.bucket, self.expected_owner.as_deref())?;
        let document = restricted_policy(
            &bucket.name,
            self.account_id.trim(),
            self.org_id
                .as_deref()
                .map(str::trim)
                .filter(|o| !o.is_empty()),
            self.break_glass_role_arn
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty()),
        )?;
        let (before, sent) = apply(ctx, &bucket, Setting::Policy, &document).await?;
        let key = Setting::Policy.key();
        Ok(outputs(
            &bucket.name,
            one(key, before),
            one(key, document),
            sent,
            ctx,
        ))
    }
}

/// The policy [`RestrictBucketPolicy`] writes.
pub fn restricted_policy(
    bucket: &str,
    account_id: &str,
    org_id: Option<&str>,
    break_glass: Option<&str>,
) -> Result<Value, ActionError> {
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ActionError::Input(format!(
            "`account_id` must be a 12-digit account id, not {account_id:?}"
        )));
    }
    let resources = json!([
        format!("arn:aws:s3:::{bucket}"),
        format!("arn:aws:s3:::{bucket}/*")
    ]);
    // `…IfExists`: an anonymous request has no principal account and is denied too; a service
    // principal (CloudTrail, log delivery) is exempt through aws:PrincipalIsAWSService.
    let outside = match org_id {
        Some(org) => json!({ "StringNotEqualsIfExists": { "aws:PrincipalOrgID": org } }),
        None => json!({ "StringNotEqualsIfExists": { "aws:PrincipalAccount": account_id } }),
    };
    let mut condition = outside;
    condition["BoolIfExists"] = json!({ "aws:PrincipalIsAWSService": "false" });
    let mut statements = vec![json!({
        "Sid": if org_id.is_some() { "FirebreakDenyOutsideOrganization" } else { "FirebreakDenyOutsideAccount" },
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": resources,
        "Condition": condition,
    })];
    if let Some(role) = break_glass {
        statements.push(json!({
            "Sid": "FirebreakBreakGlass",
            "Effect": "Allow",
            "Principal": { "AWS": role },
            "Action": "s3:*",
            "Resource": resources,
        }));
    }
    Ok(json!({ "Version": "2012-10-17", "Statement": statements }))
}

/// Add tags to the bucket, keeping the ones it has (S3 replaces a bucket's whole tag set in one call). Records the tag set before.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagBucket {
    pub bucket: String,
    pub tags: BTreeMap<String, String>,
    /// The account that must own the bucket (e.g. `{{run.account}}`). Empty: not checked.
    #[serde(default)]
    pub expected_owner: Option<String>,
}

impl Action for TagBucket {
    const NAME: &'static str = "s3.tag_bucket";
    const SUMMARY: &'static str =
        "add tags to a bucket, keeping its others; records the tag set before";
    const CALLS: &'static [&'static str] = &["s3:GetBucketTagging", "s3:PutBucketTagging"];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[Grant::on(Self::CALLS, &[arn::S3_BUCKET])];
    const SCOPE: &'static [ScopeField] = BUCKET_SCOPE;
}

impl Execute for TagBucket {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let bucket = bucket(&self.bucket, self.expected_owner.as_deref())?;
        let current = settings::read(ctx, &bucket, Setting::Tags).await?;
        let mut merged = current.as_object().cloned().unwrap_or_default();
        for (key, value) in &self.tags {
            merged.insert(key.clone(), json!(value));
        }
        let desired = Value::Object(merged);
        let sent = if current == desired {
            false
        } else {
            settings::write(ctx, &bucket, Setting::Tags, &desired).await?
        };
        let key = Setting::Tags.key();
        Ok(outputs(
            &bucket.name,
            one(key, current),
            one(key, desired),
            sent,
            ctx,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restricted_policy_denies_outsiders_and_keeps_services_and_the_responder() {
        let doc = restricted_policy(
            "b1",
            "123456789012",
            None,
            Some("arn:aws:iam::123456789012:role/responder"),
        )
        .unwrap();
        let deny = &doc["Statement"][0];
        assert_eq!(deny["Effect"], "Deny");
        assert_eq!(
            deny["Condition"]["StringNotEqualsIfExists"]["aws:PrincipalAccount"],
            "123456789012"
        );
        assert_eq!(
            deny["Condition"]["BoolIfExists"]["aws:PrincipalIsAWSService"],
            "false"
        );
        assert_eq!(
            doc["Statement"][1]["Principal"]["AWS"],
            "arn:aws:iam::123456789012:role/responder"
        );
        let org = restricted_policy("b1", "123456789012", Some("o-abc"), None).unwrap();
        assert_eq!(org["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(
            org["Statement"][0]["Condition"]["StringNotEqualsIfExists"]["aws:PrincipalOrgID"],
            "o-abc"
        );
        assert!(restricted_policy("b1", "12345", None, None).is_err());
    }
}
