//! The instance profile `ec2.replace_instance_profile` swapped or removed: the original back
//! (a replacement of the quarantine association, or a new association), then the
//! `firebreak:original-instance-profile` tag that recorded it is spent.

use serde_json::{Value, json};

use super::{Op, Piece};
use crate::actions::ec2::{current_associations, tags};
use crate::actions::prior::Standing;
use crate::actions::{ActionError, StepContext};

pub(crate) struct Wanted {
    arn: String,
    association_id: Option<String>,
}

pub(super) async fn plan(
    ctx: &StepContext,
    id: &str,
    outputs: &[Value],
) -> Result<Vec<Piece>, ActionError> {
    // The original as the first run that changed it recorded it; what the last one left.
    let Some(original) = outputs
        .iter()
        .find_map(|o| o["original"]["arn"].as_str().map(str::to_owned))
    else {
        return Ok(Vec::new());
    };
    let Some(last) = outputs.last() else {
        return Ok(Vec::new());
    };
    let left = last["current"]["arn"].clone();
    let before = json!(original);
    if left == before {
        return Ok(Vec::new());
    }
    let associations = current_associations(ctx, id).await?;
    let current = associations.iter().find(|a| a.instance_id() == Some(id));
    let now = json!(
        current
            .and_then(|a| a.iam_instance_profile())
            .and_then(|p| p.arn())
    );
    Ok(vec![Piece {
        name: "instance_profile".into(),
        standing: Standing::of(&now, &before, &left, |a, b| a == b),
        left,
        now,
        op: Op::Profile(Wanted {
            arn: original,
            association_id: current.and_then(|a| a.association_id()).map(str::to_owned),
        }),
        restore_to: before,
    }])
}

pub(super) async fn apply(
    ctx: &StepContext,
    id: &str,
    wanted: &Wanted,
) -> Result<bool, ActionError> {
    let ec2 = &ctx.clients().ec2;
    let profile = aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
        .arn(&wanted.arn)
        .build();
    let sent = match &wanted.association_id {
        Some(association) => ctx
            .change(
                "ec2",
                "ReplaceIamInstanceProfileAssociation",
                &[id, association, &wanted.arn],
                json!({ "association_id": association, "arn": wanted.arn }),
                || {
                    ec2.replace_iam_instance_profile_association()
                        .association_id(association)
                        .iam_instance_profile(profile.clone())
                        .send()
                },
            )
            .await?
            .is_some(),
        None => ctx
            .change(
                "ec2",
                "AssociateIamInstanceProfile",
                &[id, &wanted.arn],
                json!({ "instance_id": id, "arn": wanted.arn }),
                || {
                    ec2.associate_iam_instance_profile()
                        .instance_id(id)
                        .iam_instance_profile(profile.clone())
                        .send()
                },
            )
            .await?
            .is_some(),
    };
    if sent {
        // The record of the original is spent: a later containment records what it finds then.
        ctx.ec2_change("DeleteTags", &[id], |dry_run| {
            ec2.delete_tags()
                .dry_run(dry_run)
                .resources(id)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key(tags::ORIGINAL_PROFILE)
                        .build(),
                )
                .send()
        })
        .await?;
    }
    Ok(sent)
}
