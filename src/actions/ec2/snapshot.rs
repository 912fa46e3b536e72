//! `ec2.snapshot_volumes`.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_ec2::types::{
    Filter, Instance, InstanceSpecification, ResourceType, Snapshot, Tag, TagSpecification,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, describe_one, new_tag, poll_delay, provenance_tags, tag, tags};
use crate::actions::grants::{Grant, arn, condition};
use crate::actions::{Action, Execute};
use crate::actions::{Mode, StepContext, reconcile};

/// Snapshot all (or the listed) volumes of the instance, tagged at creation with case, run, step, source instance and volume; on resume, finds its own snapshots by tag instead of making new ones.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotVolumes {
    pub instance_id: String,
    /// Only these volumes (default: every EBS volume attached to the instance).
    #[serde(default)]
    pub volume_ids: Option<Vec<String>>,
    /// The case the snapshots belong to (tag `firebreak:case`).
    pub case_id: String,
    /// Wait until every snapshot is `completed` (bounded by the step timeout).
    #[serde(default = "default_true")]
    pub wait: bool,
}

fn default_true() -> bool {
    true
}

impl Action for SnapshotVolumes {
    const NAME: &'static str = "ec2.snapshot_volumes";
    const SUMMARY: &'static str =
        "crash-consistent snapshots of the instance's volumes, tagged with the case, waited for";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeSnapshots",
        "ec2:CreateSnapshots",
        "ec2:CreateSnapshot",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ec2:DescribeInstances",
        "ec2:DescribeSnapshots",
        "ec2:CreateSnapshots",
        "ec2:CreateSnapshot",
        "ec2:CreateTags",
    ];
    const GRANTS: &'static [Grant] = &[
        // A multi-volume set names the instance and its volumes as well as the snapshots.
        Grant::when(
            &["ec2:CreateSnapshots"],
            &[arn::INSTANCE, arn::VOLUME, arn::SNAPSHOT],
            condition::REQUEST_TAG_CASE,
        ),
        Grant::when(
            &["ec2:CreateSnapshot"],
            &[arn::VOLUME, arn::SNAPSHOT],
            condition::REQUEST_TAG_CASE,
        ),
        Grant::on(&["ec2:CreateTags"], arn::EC2_TAGGABLE),
    ];
}

impl Execute for SnapshotVolumes {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        if self.case_id.trim().is_empty() {
            return Err(ActionError::Failed(
                "`case_id` is empty: snapshots must name their case".into(),
            ));
        }
        let instance = describe_one(ctx, &self.instance_id).await?;
        let volume_ids = self.volumes_to_snapshot(&instance)?;
        if volume_ids.is_empty() {
            tracing::warn!(
                step = %ctx.step_id,
                "instance {} has no EBS volumes: nothing to snapshot",
                self.instance_id
            );
        }
        // Before creating anything: what an earlier attempt of this very step already made, and
        // what an earlier run for the same case made of this instance (a re-run on an
        // already-contained instance makes no new snapshot).
        // One look-up finds both: this step's own snapshots carry the case and source-instance
        // tags too.
        let earlier = find_earlier_snapshots(ctx, &self.case_id, &self.instance_id).await?;

        let mut report = Report {
            mode: ctx.mode,
            snapshots: Vec::new(),
        };
        // Every volume of the instance still to capture: one crash-consistent set
        // (CreateSnapshots, all volumes at the same instant). A part of them (`volume_ids`, or
        // what an earlier attempt left missing) is captured volume by volume.
        let missing: Vec<String> = volume_ids
            .iter()
            .filter(|v| !earlier.iter().any(|s| made_from(s, v)))
            .cloned()
            .collect();
        let mut in_set: Vec<Entry> = Vec::new();
        if !missing.is_empty() && missing.len() == attached_volumes(&instance).len() {
            match self.create_set(ctx, &missing).await {
                Ok(entries) => in_set = entries,
                Err(error) => return Err(self.failure(error, &report)),
            }
        }
        for volume_id in &volume_ids {
            if let Some(found) = earlier.iter().find(|s| made_from(s, volume_id)) {
                report.snapshots.push(Entry::reused(found, volume_id));
                continue;
            }
            if let Some(entry) = in_set.iter().find(|e| &e.volume_id == volume_id) {
                report.snapshots.push(entry.clone());
                continue;
            }
            let created = self.create(ctx, volume_id).await;
            match created {
                Ok(Created::New(output)) => report.snapshots.push(Entry {
                    snapshot_id: output.snapshot_id().unwrap_or_default().to_owned(),
                    volume_id: volume_id.clone(),
                    state: output.state().map(|s| s.as_str().to_owned()),
                    progress: output.progress().map(str::to_owned),
                    reused: false,
                    dry_run: false,
                }),
                // The answer to an earlier attempt was lost, but the snapshot was made.
                Ok(Created::Found(found)) => {
                    let mut entry = Entry::reused(&found, volume_id);
                    entry.reused = false;
                    report.snapshots.push(entry);
                }
                Ok(Created::WouldCreate) => {
                    report.snapshots.push(Entry::would_create(ctx, volume_id));
                }
                Err(error) => return Err(self.failure(error, &report)),
            }
        }

        if self.wait
            && let Err(error) = wait_until_completed(ctx, &mut report).await
        {
            return Err(self.failure(error, &report));
        }
        Ok(self.outputs(&report))
    }
}

impl SnapshotVolumes {
    /// The instance's EBS volumes, or the listed ones — each of which must be attached to it.
    fn volumes_to_snapshot(&self, instance: &Instance) -> Result<Vec<String>, ActionError> {
        let attached = attached_volumes(instance);
        let Some(wanted) = &self.volume_ids else {
            return Ok(attached);
        };
        if wanted.is_empty() {
            return Err(ActionError::Failed(
                "`volume_ids` is empty: leave it out to snapshot every volume".into(),
            ));
        }
        let mut volumes: Vec<String> = Vec::with_capacity(wanted.len());
        for volume in wanted {
            if !attached.contains(volume) {
                return Err(ActionError::Failed(format!(
                    "volume {volume} is not attached to instance {} (attached: {})",
                    self.instance_id,
                    if attached.is_empty() {
                        "none".to_owned()
                    } else {
                        attached.join(", ")
                    }
                )));
            }
            if !volumes.contains(volume) {
                volumes.push(volume.clone());
            }
        }
        Ok(volumes)
    }

    /// One crash-consistent set of every volume of the instance. CreateSnapshots takes no client
    /// token either: no SDK retry; after a failure that may have lost the answer, the set is
    /// looked for by this step's tag first. Volumes the set lacks are made one by one after.
    async fn create_set(
        &self,
        ctx: &StepContext,
        volumes: &[String],
    ) -> Result<Vec<Entry>, ActionError> {
        let mut targets = vec![self.instance_id.as_str()];
        targets.extend(volumes.iter().map(String::as_str));
        let send = || async {
            let made = ctx
                .ec2_change("CreateSnapshots", &targets, |dry_run| {
                    ctx.clients()
                        .ec2
                        .create_snapshots()
                        .dry_run(dry_run)
                        .instance_specification(
                            InstanceSpecification::builder()
                                .instance_id(&self.instance_id)
                                .exclude_boot_volume(false)
                                .build(),
                        )
                        .description(self.description(ctx, "every volume"))
                        .tag_specifications(
                            TagSpecification::builder()
                                .resource_type(ResourceType::Snapshot)
                                .set_tags(Some(self.set_tags(ctx)))
                                .build(),
                        )
                        .customize()
                        .config_override(reconcile::ec2_once())
                        .send()
                })
                .await?;
            Ok(match made {
                Some(output) => output
                    .snapshots()
                    .iter()
                    .map(|s| Entry {
                        snapshot_id: s.snapshot_id().unwrap_or_default().to_owned(),
                        volume_id: s.volume_id().unwrap_or_default().to_owned(),
                        state: s.state().map(|s| s.as_str().to_owned()),
                        progress: s.progress().map(str::to_owned),
                        reused: false,
                        dry_run: false,
                    })
                    .collect(),
                None => volumes
                    .iter()
                    .map(|v| Entry::would_create(ctx, v))
                    .collect(),
            })
        };
        let found = || async {
            let own = find_own_snapshots(ctx).await?;
            let found: Vec<Entry> = volumes
                .iter()
                .filter_map(|v| {
                    own.iter().find(|s| made_from(s, v)).map(|s| {
                        let mut entry = Entry::reused(s, v);
                        entry.reused = false;
                        entry
                    })
                })
                .collect();
            Ok((!found.is_empty()).then_some(found))
        };
        reconcile::until_done(send, found).await
    }

    /// One snapshot of the volume. CreateSnapshot takes no client token, so a retry after a
    /// lost answer could make a second snapshot: the SDK does not retry it; this does, after
    /// looking for the snapshot by its tag first.
    async fn create(&self, ctx: &StepContext, volume_id: &str) -> Result<Created, ActionError> {
        let send = || async {
            let made = ctx
                .ec2_change("CreateSnapshot", &[volume_id], |dry_run| {
                    ctx.clients()
                        .ec2
                        .create_snapshot()
                        .dry_run(dry_run)
                        .volume_id(volume_id)
                        .description(self.description(ctx, volume_id))
                        .tag_specifications(
                            TagSpecification::builder()
                                .resource_type(ResourceType::Snapshot)
                                .set_tags(Some(self.tags(ctx, volume_id)))
                                .build(),
                        )
                        .customize()
                        .config_override(reconcile::ec2_once())
                        .send()
                })
                .await?;
            Ok(match made {
                Some(output) => Created::New(Box::new(output)),
                None => Created::WouldCreate,
            })
        };
        let found = || async {
            Ok(find_own_snapshots(ctx)
                .await?
                .into_iter()
                .find(|s| made_from(s, volume_id))
                .map(|s| Created::Found(Box::new(s))))
        };
        reconcile::until_done(send, found).await
    }

    /// The snapshots made so far are real: a failure says which. Not when the engine may retry
    /// the step (a failure with outputs is never retried): the retry finds them again by tag.
    fn failure(&self, error: ActionError, report: &Report) -> ActionError {
        if error.is_retryable() || report.snapshots.is_empty() {
            error
        } else {
            error.with_outputs(self.outputs(report))
        }
    }

    fn tags(&self, ctx: &StepContext, volume_id: &str) -> Vec<Tag> {
        let mut tags = self.set_tags(ctx);
        tags.push(new_tag(tags::SOURCE_VOLUME, volume_id));
        tags
    }

    /// A set's snapshots share one tag specification: the volume is each snapshot's own
    /// `VolumeId`.
    fn set_tags(&self, ctx: &StepContext) -> Vec<Tag> {
        let mut tags = provenance_tags(ctx, Some(&self.case_id));
        tags.push(new_tag(tags::SOURCE_INSTANCE, &self.instance_id));
        tags
    }

    fn description(&self, ctx: &StepContext, volume_id: &str) -> String {
        let text = format!(
            "firebreak case {}: {volume_id} of {} (run {}, step {})",
            self.case_id, self.instance_id, ctx.run_id, ctx.step_id
        );
        // EC2 allows 255 characters.
        text.chars().take(255).collect()
    }

    fn outputs(&self, report: &Report) -> Value {
        let count = |f: fn(&Entry) -> bool| report.snapshots.iter().filter(|e| f(e)).count();
        let mut outputs = json!({
            "instance_id": self.instance_id,
            "case_id": self.case_id,
            "snapshots": report.snapshots,
            "snapshot_ids": report.snapshots.iter().map(|e| &e.snapshot_id).collect::<Vec<_>>(),
            "created": count(|e| !e.reused && !e.dry_run),
            "reused": count(|e| e.reused),
        });
        if report.mode == Mode::DryRun {
            outputs["dry_run"] = json!(true);
            outputs["would_create"] = json!(count(|e| e.dry_run));
        }
        outputs
    }
}

/// The EBS volumes attached to the instance.
fn attached_volumes(instance: &Instance) -> Vec<String> {
    instance
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()))
        .map(str::to_owned)
        .collect()
}

enum Created {
    New(Box<aws_sdk_ec2::operation::create_snapshot::CreateSnapshotOutput>),
    Found(Box<Snapshot>),
    WouldCreate,
}

/// What the step has found or made so far.
struct Report {
    mode: Mode,
    snapshots: Vec<Entry>,
}

/// One volume's snapshot, as the outputs show it.
#[derive(Debug, Clone, Serialize)]
struct Entry {
    snapshot_id: String,
    volume_id: String,
    state: Option<String>,
    progress: Option<String>,
    reused: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
}

impl Entry {
    fn reused(snapshot: &Snapshot, volume_id: &str) -> Entry {
        Entry {
            snapshot_id: snapshot.snapshot_id().unwrap_or_default().to_owned(),
            volume_id: volume_id.to_owned(),
            state: snapshot.state().map(|s| s.as_str().to_owned()),
            progress: snapshot.progress().map(str::to_owned),
            reused: true,
            dry_run: false,
        }
    }

    /// A drill: what would be created (the call was sent with DryRun and would succeed).
    fn would_create(ctx: &StepContext, volume_id: &str) -> Entry {
        Entry {
            snapshot_id: format!("<would be created by step {}>", ctx.step_id),
            volume_id: volume_id.to_owned(),
            state: None,
            progress: None,
            reused: false,
            dry_run: true,
        }
    }

    fn is_waiting(&self) -> bool {
        !self.dry_run && self.state.as_deref() != Some("completed")
    }
}

/// The snapshots an earlier attempt of this step made, found by its idempotency tag (never by
/// listing: an account can hold many thousands of snapshots); batched across items.
async fn find_own_snapshots(ctx: &StepContext) -> Result<Vec<Snapshot>, ActionError> {
    let tag_filter = format!("tag:{}", tags::IDEMPOTENCY_KEY);
    let mut found = ctx
        .batched(
            "ec2:DescribeSnapshots/own",
            &ctx.idempotency_key,
            move |ctx, keys| async move {
                snapshots_by_tag(&ctx, &keys, &tag_filter, tags::IDEMPOTENCY_KEY).await
            },
        )
        .await?
        .unwrap_or_default();
    // Oldest first, so a (never expected) second snapshot of a volume is never preferred.
    found.sort_by_key(|s| s.start_time().map(|t| (t.secs(), t.subsec_nanos())));
    Ok(found)
}

/// Snapshots of `instance` made for `case`: every one an earlier attempt of this very step
/// made (by its idempotency tag), then those of any earlier run except failed ones; oldest
/// first within each.
///
/// The case's snapshots are read once per step and run, when its first item asks: one paged
/// call for a whole fleet instead of one per batch window. (A tag-filtered DescribeSnapshots
/// makes the service look at every snapshot of the account — moto takes seconds per call
/// once a fleet's snapshots exist.) What this step makes meanwhile is not in that read, and
/// nothing else in the run makes snapshots of this step's instances; so only a later attempt
/// of an item (the engine retrying the step) looks again, for its own, by its idempotency
/// tag. A resume is a new run context and reads the case afresh.
async fn find_earlier_snapshots(
    ctx: &StepContext,
    case: &str,
    instance: &str,
) -> Result<Vec<Snapshot>, ActionError> {
    let of_case: Arc<Vec<Snapshot>> = ctx
        .once(&format!("ec2-snapshots/{}/{case}", ctx.step_id), || async {
            case_snapshots(ctx, case).await.map(Arc::new)
        })
        .await?;
    let mut found: Vec<Snapshot> = of_case
        .iter()
        .filter(|s| tag(s.tags(), tags::SOURCE_INSTANCE) == Some(instance))
        .cloned()
        .collect();
    if ctx.attempt > 1 {
        for own in find_own_snapshots(ctx).await? {
            if !found.iter().any(|s| s.snapshot_id() == own.snapshot_id()) {
                found.push(own);
            }
        }
    }
    found.sort_by_key(|s| s.start_time().map(|t| (t.secs(), t.subsec_nanos())));
    let (mut earlier, others): (Vec<Snapshot>, Vec<Snapshot>) = found
        .into_iter()
        .partition(|s| tag(s.tags(), tags::IDEMPOTENCY_KEY) == Some(ctx.idempotency_key.as_str()));
    earlier.extend(
        others
            .into_iter()
            .filter(|s| s.state().is_none_or(|state| state.as_str() != "error")),
    );
    Ok(earlier)
}

/// Every snapshot tagged with `case`, as the step's first item found them.
async fn case_snapshots(ctx: &StepContext, case: &str) -> Result<Vec<Snapshot>, ActionError> {
    let case_filter = format!("tag:{}", tags::CASE);
    let mut found = snapshots_by_tag(ctx, &[case.to_owned()], &case_filter, tags::CASE).await?;
    Ok(found.remove(case).unwrap_or_default())
}

/// The snapshots whose tag `key` has one of `values`, by that value.
async fn snapshots_by_tag(
    ctx: &StepContext,
    values: &[String],
    tag_filter: &str,
    key: &str,
) -> Result<HashMap<String, Vec<Snapshot>>, ActionError> {
    let mut found: HashMap<String, Vec<Snapshot>> = HashMap::new();
    for chunk in values.chunks(super::MAX_FILTER_VALUES) {
        let targets: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let mut next_token: Option<String> = None;
        loop {
            let page = ctx
                .call("ec2", "DescribeSnapshots", &targets, || {
                    ctx.clients()
                        .ec2
                        .describe_snapshots()
                        .filters(
                            Filter::builder()
                                .name(tag_filter)
                                .set_values(Some(chunk.to_vec()))
                                .build(),
                        )
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            for snapshot in page.snapshots() {
                // EC2 filters exactly, so with one value asked every answer is its own; with
                // several, each snapshot's tag says whose it is.
                let value = match chunk {
                    [only] => Some(only.as_str()),
                    _ => tag(snapshot.tags(), key),
                };
                if let Some(value) = value {
                    found
                        .entry(value.to_owned())
                        .or_default()
                        .push(snapshot.clone());
                }
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
    }
    Ok(found)
}

/// The snapshots by id (absent: not visible yet), batched across items' polls.
async fn snapshots_by_id(
    ctx: &StepContext,
    ids: &[String],
) -> Result<Vec<Option<Snapshot>>, ActionError> {
    let reads = ids.iter().map(|id| {
        ctx.batched("ec2:DescribeSnapshots/id", id, |ctx, ids| async move {
            let mut found = HashMap::new();
            for chunk in ids.chunks(super::MAX_FILTER_VALUES) {
                let targets: Vec<&str> = chunk.iter().map(String::as_str).collect();
                let page = ctx
                    .call("ec2", "DescribeSnapshots", &targets, || {
                        ctx.clients()
                            .ec2
                            .describe_snapshots()
                            .filters(
                                Filter::builder()
                                    .name("snapshot-id")
                                    .set_values(Some(chunk.to_vec()))
                                    .build(),
                            )
                            .send()
                    })
                    .await?;
                for snapshot in page.snapshots() {
                    if let Some(id) = snapshot.snapshot_id() {
                        found.insert(id.to_owned(), snapshot.clone());
                    }
                }
            }
            Ok(found)
        })
    });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .collect()
}

fn made_from(snapshot: &Snapshot, volume_id: &str) -> bool {
    snapshot.volume_id() == Some(volume_id)
        || tag(snapshot.tags(), tags::SOURCE_VOLUME) == Some(volume_id)
}

/// Polls in which a snapshot just made may still be unknown to DescribeSnapshots.
const NOT_FOUND_ROUNDS: u32 = 3;

/// Polls the snapshots by id until every one is `completed`; fails on `error`. The engine's
/// step timeout bounds the wait (it drops this future).
async fn wait_until_completed(ctx: &StepContext, report: &mut Report) -> Result<(), ActionError> {
    let mut round = 0;
    loop {
        if let Some(failed) = report
            .snapshots
            .iter()
            .find(|e| e.state.as_deref() == Some("error"))
        {
            return Err(ActionError::Failed(format!(
                "snapshot {} of volume {} failed (state `error`)",
                failed.snapshot_id, failed.volume_id
            )));
        }
        let waiting: Vec<String> = report
            .snapshots
            .iter()
            .filter(|e| e.is_waiting())
            .map(|e| e.snapshot_id.clone())
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        ctx.progress(&progress_text(report));
        tokio::time::sleep(poll_delay(round)).await;
        round += 1;
        // By filter: a snapshot just made and not visible yet (EC2 is eventually consistent)
        // is left out, not an error; it is asked for again, a few rounds at most.
        let described = snapshots_by_id(ctx, &waiting).await?;
        let missing: Vec<&String> = waiting
            .iter()
            .zip(&described)
            .filter(|(_, found)| found.is_none())
            .map(|(id, _)| id)
            .collect();
        if !missing.is_empty() && round > NOT_FOUND_ROUNDS {
            return Err(ActionError::Failed(format!(
                "snapshot(s) {} not found by EC2 after {round} polls",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for snapshot in described.iter().flatten() {
            if let Some(entry) = report
                .snapshots
                .iter_mut()
                .find(|e| Some(e.snapshot_id.as_str()) == snapshot.snapshot_id())
            {
                entry.state = snapshot.state().map(|s| s.as_str().to_owned());
                entry.progress = snapshot.progress().map(str::to_owned);
            }
        }
    }
}

/// What the wait is at, for the live progress line: completed of all, and what is pending.
fn progress_text(report: &Report) -> String {
    let real: Vec<&Entry> = report.snapshots.iter().filter(|e| !e.dry_run).collect();
    let completed = real.iter().filter(|e| !e.is_waiting()).count();
    let pending: Vec<String> = real
        .iter()
        .filter(|e| e.is_waiting())
        .map(|e| {
            format!(
                "{} {}",
                e.snapshot_id,
                e.progress
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .unwrap_or("0%")
            )
        })
        .collect();
    let mut text = format!("{completed}/{} snapshots completed", real.len());
    if !pending.is_empty() {
        text.push_str(&format!(" (waiting: {})", pending.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, state: &str, progress: &str) -> Entry {
        Entry {
            snapshot_id: id.into(),
            volume_id: format!("vol-of-{id}"),
            state: Some(state.into()),
            progress: Some(progress.into()),
            reused: false,
            dry_run: false,
        }
    }

    #[test]
    fn progress_names_what_is_still_pending() {
        let report = Report {
            mode: Mode::Live,
            snapshots: vec![
                entry("snap-1", "completed", "100%"),
                entry("snap-2", "pending", "45%"),
                entry("snap-3", "pending", ""),
            ],
        };
        assert_eq!(
            progress_text(&report),
            "1/3 snapshots completed (waiting: snap-2 45%, snap-3 0%)"
        );
    }

    #[test]
    fn made_from_matches_volume_or_source_tag() {
        let by_volume = Snapshot::builder().volume_id("vol-1").build();
        let by_tag = Snapshot::builder()
            .tags(new_tag(tags::SOURCE_VOLUME, "vol-2"))
            .build();
        assert!(made_from(&by_volume, "vol-1"));
        assert!(!made_from(&by_volume, "vol-2"));
        assert!(made_from(&by_tag, "vol-2"));
        assert!(!made_from(&by_tag, "vol-1"));
    }
}
