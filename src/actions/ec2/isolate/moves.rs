//! Moving one interface: the shielded pair of moves into isolation, retried, restored, or
//! reported open.

use serde_json::{Value, json};

use super::super::interfaces::{move_once, move_retrying};
use super::super::{ActionError, new_tag, tags};
use super::membership::{FirebreakGroups, Interface, Membership};
use crate::actions::StepContext;
use crate::journal::Event;
use crate::journal::event::Intent;

/// How one interface's isolation ended.
pub(super) enum InterfaceOutcome {
    /// In the isolation group; `tracked` when the untrack move failed and it went straight
    /// there (connections open before may live on).
    Isolated { tracked: Option<String> },
    /// The isolation move kept failing; the interface is back in its original groups.
    Restored { error: String },
    /// Neither the isolation move nor the restore went through: it may sit in the all-traffic
    /// group.
    Open { error: String },
    /// A drill: what would be done was checked with DryRun, nothing moved.
    Drilled { error: Option<String> },
}

impl InterfaceOutcome {
    pub(super) fn report(&self, eni: &str, original: &[String]) -> Value {
        let (state, error, tracked) = match self {
            InterfaceOutcome::Isolated { tracked } => {
                ("isolated", tracked.clone(), tracked.is_some())
            }
            InterfaceOutcome::Restored { error } => ("restored", Some(error.clone()), false),
            InterfaceOutcome::Open { error } => ("OPEN", Some(error.clone()), false),
            InterfaceOutcome::Drilled { error } => (
                if error.is_some() {
                    "not-isolated"
                } else {
                    "isolated"
                },
                error.clone(),
                false,
            ),
        };
        let mut entry = json!({
            "network_interface_id": eni,
            "original_groups": original,
            "state": state,
            "changed": !matches!(self, InterfaceOutcome::Drilled { .. }),
        });
        if let Some(error) = error {
            entry["error"] = json!(error);
        }
        if tracked {
            entry["tracked_flows_may_survive"] = json!(true);
        }
        entry
    }
}

/// Rounds of "isolate what is attached, read back": a second or third round catches interfaces
/// attached while the first ran.
pub(super) const PASSES: u32 = 3;

/// Records the original groups on the interface and the intent in the journal (before any
/// change, so a crash cannot lose them), then moves it — untrack group first when given, then
/// the isolation group — as one shielded unit that a step timeout or Ctrl-C does not cut in
/// half. Only an error of the journal itself returns `Err`.
pub(super) async fn isolate_interface(
    ctx: &StepContext,
    eni: &Interface,
    original: &[String],
    before: &Membership,
    groups: &FirebreakGroups,
) -> Result<InterfaceOutcome, ActionError> {
    let value = original.join(",");
    if eni.tagged_original.as_deref() != Some(original) {
        tag_original_groups(ctx, &eni.id, value).await?;
    }
    // Already in the untrack group alone (a run stopped between the moves): straight on.
    let untracked_alone = before.in_untrack.contains(&eni.id)
        && !before.in_isolation.contains(&eni.id)
        && !before.in_other.contains(&eni.id);
    let untrack_first = groups.untrack.clone().filter(|_| !untracked_alone);
    let mut path: Vec<String> = untrack_first.iter().cloned().collect();
    path.push(groups.isolation.clone());
    ctx.record(Event::Intent(Intent {
        step: ctx.step_id.clone(),
        item_index: ctx.item_index,
        operation: "isolate".into(),
        resource: eni.id.clone(),
        from: original.to_vec(),
        to: path.clone(),
    }))?;
    if ctx.mode == crate::journal::Mode::DryRun {
        // Each move once, with DryRun: what would be denied or fail is what the drill shows.
        for group in &path {
            if let Err(error) = move_once(ctx, &eni.id, std::slice::from_ref(group)).await {
                if error.is_journal() {
                    return Err(error);
                }
                return Ok(InterfaceOutcome::Drilled {
                    error: Some(error.to_string()),
                });
            }
        }
        return Ok(InterfaceOutcome::Drilled { error: None });
    }
    let task = ctx.clone();
    let eni_id = eni.id.clone();
    let original = original.to_vec();
    let isolation = groups.isolation.clone();
    ctx.shielded(async move {
        move_pair(
            &task,
            &eni_id,
            untrack_first.as_deref(),
            &isolation,
            &original,
        )
        .await
    })
    .await?
}

/// The two moves, and what to do when either fails.
pub(super) async fn move_pair(
    ctx: &StepContext,
    eni: &str,
    untrack: Option<&str>,
    isolation: &str,
    original: &[String],
) -> Result<InterfaceOutcome, ActionError> {
    let mut tracked = None;
    if let Some(untrack) = untrack {
        // Without the untrack step, isolation still works; tracked connections may live on.
        if let Err(error) = move_once(ctx, eni, &[untrack.to_owned()]).await {
            if error.is_journal() {
                return Err(error);
            }
            tracked = Some(format!(
                "the move to the untrack group failed ({error}); moved straight to isolation, so \
                 connections open before may survive"
            ));
        }
    }
    let isolated = move_retrying(ctx, eni, &[isolation.to_owned()]).await;
    match isolated {
        Ok(()) => Ok(InterfaceOutcome::Isolated { tracked }),
        Err(error) if error.is_journal() => Err(error),
        Err(error) => {
            // Back to where it was: less exposed than the all-traffic group.
            match move_retrying(ctx, eni, original).await {
                Ok(()) => Ok(InterfaceOutcome::Restored {
                    error: error.to_string(),
                }),
                Err(restore) if restore.is_journal() => Err(restore),
                Err(restore) => Ok(InterfaceOutcome::Open {
                    error: format!("{error}; restoring its groups failed too: {restore}"),
                }),
            }
        }
    }
}

/// Tags the interface with its original groups. Interfaces with the same groups (a fleet
/// launched from one template) are tagged together: CreateTags takes one tag for up to 1000
/// resources, and tagging is idempotent, so items tagged in one call lose nothing.
async fn tag_original_groups(
    ctx: &StepContext,
    eni: &str,
    value: String,
) -> Result<(), ActionError> {
    let family = format!("ec2:CreateTags/{}={value}", tags::ORIGINAL_GROUPS);
    ctx.batched(&family, eni, move |ctx, enis| async move {
        let targets: Vec<&str> = enis.iter().map(String::as_str).collect();
        ctx.ec2_change("CreateTags", &targets, |dry_run| {
            ctx.clients()
                .ec2
                .create_tags()
                .dry_run(dry_run)
                .set_resources(Some(enis.clone()))
                .tags(new_tag(tags::ORIGINAL_GROUPS, value.clone()))
                .send()
        })
        .await?;
        Ok(enis.iter().map(|eni| (eni.clone(), ())).collect())
    })
    .await?;
    Ok(())
}
