//! `s3.inventory_bucket`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, BUCKET_SCOPE, bucket, settings};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, ScopeField, arn};
use crate::actions::{Action, Execute};

/// The grantee URIs that make an ACL public.
const PUBLIC_GRANTEES: &[&str] = &[
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
];

/// Record a bucket's exposure settings as hashed evidence: policy, ACL, public access block, object ownership and tags (each `null` when the bucket has none). Says whether the bucket looks public, and whether it is protected or intentionally public by tag (`needs_approval`). Changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryBucket {
    pub bucket: String,
    /// The account that must own the bucket (e.g. `{{run.account}}`); S3 refuses every call
    /// when another account owns it. Empty: not checked.
    #[serde(default)]
    pub expected_owner: Option<String>,
    /// Tag keys that mark a bucket containment must not touch without a person's approval.
    #[serde(default = "default_protected")]
    pub protected_tags: Vec<String>,
    /// The tag key that marks a bucket public by design (a website, public data).
    #[serde(default = "default_public_tag")]
    pub public_tag: String,
}

fn default_protected() -> Vec<String> {
    vec!["firebreak:protected".into()]
}

fn default_public_tag() -> String {
    "firebreak:intended-public".into()
}

impl Action for InventoryBucket {
    const NAME: &'static str = "s3.inventory_bucket";
    const SUMMARY: &'static str = "record a bucket's policy, ACL, public access block, ownership and tags as hashed evidence; says whether it is public, protected or public by design";
    const CALLS: &'static [&'static str] = &[
        "s3:GetBucketPolicy",
        "s3:GetBucketAcl",
        "s3:GetPublicAccessBlock",
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketTagging",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "s3:GetBucketPolicy",
        "s3:GetBucketAcl",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketTagging",
    ];
    const GRANTS: &'static [Grant] = &[Grant::on(
        &[
            "s3:GetBucketPolicy",
            "s3:GetBucketAcl",
            "s3:GetBucketPublicAccessBlock",
            "s3:GetBucketOwnershipControls",
            "s3:GetBucketTagging",
        ],
        &[arn::S3_BUCKET],
    )];
    const SCOPE: &'static [ScopeField] = BUCKET_SCOPE;
}

impl Execute for InventoryBucket {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let bucket = bucket(&self.bucket, self.expected_owner.as_deref())?;
        let all = settings::read_all(ctx, &bucket).await?;
        let tags = all.get("tags").cloned().unwrap_or(Value::Null);
        let protected: Vec<&String> = self
            .protected_tags
            .iter()
            .filter(|k| tags.get(k.as_str()).is_some())
            .collect();
        let intentionally_public = tags
            .get(&self.public_tag)
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let document = json!({ "bucket": bucket.name, "settings": all });
        let bytes = serde_json::to_vec_pretty(&document)
            .map_err(|e| ActionError::Failed(format!("cannot serialise the settings: {e}")))?;
        let evidence = ctx.write_evidence(&format!("s3-bucket-{}.json", bucket.name), &bytes)?;
        Ok(json!({
            "bucket": bucket.name,
            "settings": all,
            "public": public_reasons(&all),
            "protected_by": protected,
            "intentionally_public": intentionally_public,
            "needs_approval": !protected.is_empty() || intentionally_public,
            "evidence": evidence,
        }))
    }
}

/// Why the bucket looks public (empty: it does not): an ACL grant to everyone, a policy
/// statement allowing `*`, a public access block that is off or partial.
fn public_reasons(all: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut reasons = Vec::new();
    for grant in all["acl"]["grants"].as_array().into_iter().flatten() {
        if let Some(uri) = grant["uri"].as_str()
            && PUBLIC_GRANTEES.contains(&uri)
        {
            reasons.push(format!(
                "ACL grants {} to {}",
                grant["permission"].as_str().unwrap_or("?"),
                uri.rsplit('/').next().unwrap_or(uri)
            ));
        }
    }
    let statements = match &all["policy"]["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    for statement in statements {
        let principal = &statement["Principal"];
        let everyone = principal == "*" || principal["AWS"] == "*";
        if statement["Effect"] == "Allow" && everyone && statement.get("Condition").is_none() {
            reasons.push(format!(
                "policy statement {} allows every principal",
                statement["Sid"].as_str().unwrap_or("(no Sid)")
            ));
        }
    }
    let block = &all["public_access_block"];
    let fully_blocked = [
        "block_public_acls",
        "ignore_public_acls",
        "block_public_policy",
        "restrict_public_buckets",
    ]
    .iter()
    .all(|k| block[*k] == true);
    if !fully_blocked {
        reasons.push("public access block is off or partial".into());
    }
    reasons
}
