//! `ec2.replace_instance_profile`.

use aws_sdk_ec2::types::{Filter, IamInstanceProfileAssociation, IamInstanceProfileSpecification};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::protect::change_flags;
use super::{ActionError, describe_one, new_tag, tag, tags};
use crate::actions::grants::{Grant, arn, condition};
use crate::actions::{Action, Execute};
use crate::actions::{StepContext, reconcile};

/// Replace the instance's profile with `replacement_profile_arn` (a deny-all profile), or disassociate it when none is given. Records the original.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceInstanceProfile {
    pub instance_id: String,
    /// ARN of the instance profile to put in place; without it the profile is disassociated.
    #[serde(default)]
    pub replacement_profile_arn: Option<String>,
}

impl Action for ReplaceInstanceProfile {
    const NAME: &'static str = "ec2.replace_instance_profile";
    const SUMMARY: &'static str = "remove the instance's role credentials: replace its instance profile with a deny-all one, or disassociate it";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:CreateTags",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:CreateTags",
        "iam:PassRole",
    ];
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &[
                "ec2:ReplaceIamInstanceProfileAssociation",
                "ec2:DisassociateIamInstanceProfile",
            ],
            &[arn::INSTANCE],
        ),
        Grant::on(&["ec2:CreateTags"], arn::EC2_TAGGABLE),
        Grant::when(
            &["iam:PassRole"],
            &[arn::QUARANTINE_ROLE],
            condition::PASSED_TO_EC2,
        ),
    ];
}

impl Execute for ReplaceInstanceProfile {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        // An empty ARN is "none": disassociate. EC2 rejects an empty profile ARN (moto accepts
        // it and leaves an association without a profile), and a runbook parameter left at its
        // default renders as "".
        let replacement = self
            .replacement_profile_arn
            .as_deref()
            .map(str::trim)
            .filter(|arn| !arn.is_empty());
        let instance = describe_one(ctx, id).await?;
        // What an earlier attempt recorded before it changed anything.
        let recorded = tag(instance.tags(), tags::ORIGINAL_PROFILE).map(str::to_owned);
        let associations = current_associations(ctx, id).await?;
        let current = associations.iter().find(|a| a.instance_id() == Some(id));

        let mut out = json!({
            "instance_id": id,
            "replacement_profile_arn": replacement,
        });
        let Some(current) = current else {
            // Nothing to remove: never had a profile, or an earlier attempt disassociated it.
            out["original"] = recorded_original(recorded.as_deref());
            out["previous"] = Value::Null;
            out["current"] = Value::Null;
            out["done"] = json!(if recorded.is_some() {
                "already-disassociated"
            } else {
                "no-profile"
            });
            change_flags(&mut out, false, ctx.mode);
            return Ok(out);
        };
        let association_id = current.association_id().ok_or_else(|| {
            ActionError::Failed(format!(
                "the instance profile association of instance {id} has no association id"
            ))
        })?;
        let arn = current
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .ok_or_else(|| {
                ActionError::Failed(format!(
                    "the instance profile association {association_id} of instance {id} has no profile ARN"
                ))
            })?;
        let found = json!({
            "arn": arn,
            "association_id": association_id,
            "state": current.state().map(|s| s.as_str()),
        });
        if replacement == Some(arn) {
            // An earlier attempt (or someone) already put the replacement in place.
            out["original"] = recorded_original(recorded.as_deref());
            out["previous"] = found.clone();
            out["current"] = found;
            out["done"] = json!("already-replaced");
            change_flags(&mut out, false, ctx.mode);
            return Ok(out);
        }

        // A tag written by an earlier run is kept: the profile found now may be one firebreak
        // put in place (a replacement, then a run that disassociates), and the original must
        // survive that. Without a tag, the profile found now is the original; it is recorded
        // on the instance before the change, so a crash cannot lose it.
        let tagged = recorded.is_none();
        out["original"] = match recorded.as_deref() {
            Some(recorded) if recorded != arn => recorded_original(Some(recorded)),
            _ => json!({"arn": arn, "association_id": association_id, "from_tag": false}),
        };
        out["previous"] = found;
        if tagged {
            ctx.ec2_change("CreateTags", &[id], |dry_run| {
                ctx.clients()
                    .ec2
                    .create_tags()
                    .dry_run(dry_run)
                    .resources(id)
                    .tags(new_tag(tags::ORIGINAL_PROFILE, arn))
                    .send()
            })
            .await?;
        }
        out["tagged"] = json!(tagged);

        // Only the tag was written when the change itself fails.
        let partial = |out: &Value, e: ActionError| {
            let mut out = out.clone();
            out["done"] = json!("nothing");
            change_flags(&mut out, tagged, ctx.mode);
            e.with_outputs(out)
        };
        match replacement {
            Some(replacement) => {
                // No DryRun parameter on this API: in a drill it is journaled, not sent. No
                // client token either, and once it has worked the old association id is gone:
                // after a lost answer the association is read back, and a replacement in place
                // is this call's.
                let send = || async {
                    ctx.change(
                        "ec2",
                        "ReplaceIamInstanceProfileAssociation",
                        &[id, association_id],
                        json!({
                            "AssociationId": association_id,
                            "IamInstanceProfile": {"Arn": replacement},
                        }),
                        || {
                            ctx.clients()
                                .ec2
                                .replace_iam_instance_profile_association()
                                .association_id(association_id)
                                .iam_instance_profile(
                                    IamInstanceProfileSpecification::builder()
                                        .arn(replacement)
                                        .build(),
                                )
                                .customize()
                                .config_override(reconcile::ec2_once())
                                .send()
                        },
                    )
                    .await
                    .map(|replaced| {
                        replaced
                            .as_ref()
                            .and_then(|r| r.iam_instance_profile_association())
                            .and_then(|a| a.association_id())
                            .map(str::to_owned)
                    })
                };
                let in_place = || async {
                    Ok(current_associations(ctx, id)
                        .await?
                        .iter()
                        .find(|a| {
                            a.iam_instance_profile().and_then(|p| p.arn()) == Some(replacement)
                        })
                        .map(|a| a.association_id().map(str::to_owned)))
                };
                let association = reconcile::until_done(send, in_place)
                    .await
                    .map_err(|e| partial(&out, e))?;
                out["done"] = json!("replaced");
                out["current"] = json!({
                    "arn": replacement,
                    "association_id": association,
                });
            }
            None => {
                // No DryRun parameter on this API either; once it has worked the association id
                // is gone, so after a lost answer no association left is this call's.
                let send = || async {
                    ctx.change(
                        "ec2",
                        "DisassociateIamInstanceProfile",
                        &[id, association_id],
                        json!({"AssociationId": association_id}),
                        || {
                            ctx.clients()
                                .ec2
                                .disassociate_iam_instance_profile()
                                .association_id(association_id)
                                .customize()
                                .config_override(reconcile::ec2_once())
                                .send()
                        },
                    )
                    .await
                    .map(|_| ())
                };
                let gone = || async {
                    let left = current_associations(ctx, id).await?;
                    Ok(left
                        .iter()
                        .all(|a| a.association_id() != Some(association_id))
                        .then_some(()))
                };
                reconcile::until_done(send, gone)
                    .await
                    .map_err(|e| partial(&out, e))?;
                out["done"] = json!("disassociated");
                out["current"] = Value::Null;
            }
        }
        change_flags(&mut out, true, ctx.mode);
        Ok(out)
    }
}

/// The instance's own profile, before any firebreak swapped it: the
/// `firebreak:original-instance-profile` tag when a run recorded one, else the profile
/// associated now. `(arn, "tag" | "association")`; `None` when it has neither.
pub(crate) async fn original_profile(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Option<(String, &'static str)>, ActionError> {
    let instance = describe_one(ctx, instance_id).await?;
    if let Some(arn) = tag(instance.tags(), tags::ORIGINAL_PROFILE) {
        return Ok(Some((arn.to_owned(), "tag")));
    }
    Ok(current_associations(ctx, instance_id)
        .await?
        .iter()
        .filter(|a| a.instance_id() == Some(instance_id))
        .find_map(|a| a.iam_instance_profile().and_then(|p| p.arn()))
        .map(|arn| (arn.to_owned(), "association")))
}

/// The original profile as an earlier run recorded it in the instance's
/// `firebreak:original-instance-profile` tag (its association id is not kept).
fn recorded_original(recorded: Option<&str>) -> Value {
    match recorded {
        Some(arn) => json!({"arn": arn, "association_id": null, "from_tag": true}),
        None => Value::Null,
    }
}

/// The instance's profile associations, `associating` too (right after a replacement — a rerun
/// after a crash — the new one is not `associated` yet); read together with concurrent items'.
pub(crate) async fn current_associations(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Vec<IamInstanceProfileAssociation>, ActionError> {
    let found = ctx
        .batched(
            "ec2:DescribeIamInstanceProfileAssociations",
            instance_id,
            |ctx, ids| async move {
                let mut found: std::collections::HashMap<String, Vec<_>> = Default::default();
                for chunk in ids.chunks(super::MAX_FILTER_VALUES) {
                    let mut token: Option<String> = None;
                    loop {
                        let targets: Vec<&str> = chunk.iter().map(String::as_str).collect();
                        let page = ctx
                            .call(
                                "ec2",
                                "DescribeIamInstanceProfileAssociations",
                                &targets,
                                || {
                                    ctx.clients()
                                        .ec2
                                        .describe_iam_instance_profile_associations()
                                        .filters(
                                            Filter::builder()
                                                .name("instance-id")
                                                .set_values(Some(chunk.to_vec()))
                                                .build(),
                                        )
                                        .filters(
                                            Filter::builder()
                                                .name("state")
                                                .values("associated")
                                                .values("associating")
                                                .build(),
                                        )
                                        .set_next_token(token.clone())
                                        .send()
                                },
                            )
                            .await?;
                        for association in page.iam_instance_profile_associations() {
                            if let Some(id) = association.instance_id() {
                                found
                                    .entry(id.to_owned())
                                    .or_default()
                                    .push(association.clone());
                            }
                        }
                        token = page
                            .next_token()
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned);
                        if token.is_none() {
                            break;
                        }
                    }
                }
                Ok(found)
            },
        )
        .await?;
    Ok(found.unwrap_or_default())
}
