//! EC2 containment and evidence actions. Each is idempotent (it checks the current state, or
//! finds what an earlier attempt made by tag, before changing anything) and reports the prior
//! state it changed, so a compensating action can put it back.

mod addresses;
mod autoscaling;
mod collection;
mod console;
mod describe;
mod evidence_volumes;
mod interfaces;
mod isolate;
mod metadata;
mod profile;
mod protect;
mod reads;
mod release;
mod restore;
mod share;
mod snapshot;
mod stop;
mod tag;

pub use addresses::DisassociateAddresses;
pub use autoscaling::DetachFromAutoscaling;
pub use collection::{CloseCollectionPath, OpenCollectionPath};
pub use console::CaptureConsoleOutput;
pub use describe::DescribeInstance;
pub use evidence_volumes::AttachEvidenceVolumes;
pub use isolate::IsolateInstance;
pub use metadata::DisableMetadata;
pub use profile::ReplaceInstanceProfile;
pub use protect::ProtectInstance;
pub use release::ReleaseIsolation;
pub use restore::RestoreInstance;
pub use share::ShareSnapshots;
pub use snapshot::SnapshotVolumes;
pub use stop::StopInstance;
pub use tag::{MAX_FILTER_VALUES, TagResources, describe_tags_page};

use aws_sdk_ec2::types::Tag;

use super::{ActionError, StepContext};
pub(crate) use profile::{current_associations, original_profile};
pub(crate) use reads::{attached_interfaces, describe_one};

pub(crate) use crate::actions::tags;

/// A tag's value in an SDK tag list.
pub(crate) fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(Tag::value)
}

pub(crate) fn new_tag(key: &str, value: impl Into<String>) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The tags every resource firebreak creates carries: case, run, step, idempotency key.
pub(crate) fn provenance_tags(ctx: &StepContext, case_id: Option<&str>) -> Vec<Tag> {
    let mut tags = vec![
        new_tag(tags::RUN, &ctx.run_id),
        new_tag(tags::STEP, &ctx.step_id),
        new_tag(tags::IDEMPOTENCY_KEY, &ctx.idempotency_key),
    ];
    if let Some(case) = case_id {
        tags.push(new_tag(tags::CASE, case));
    }
    tags
}

/// Polling interval for waits: starts short, grows to a ceiling. The engine's step timeout
/// bounds the whole wait.
pub(crate) fn poll_delay(round: u32) -> std::time::Duration {
    let secs = (1u64 << round.min(4)).min(15);
    std::time::Duration::from_secs(secs)
}
