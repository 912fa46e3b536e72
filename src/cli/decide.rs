//! `firebreak approve` / `deny`: a person's decision on the approval a run waits at, written as
//! a decision record in the run's journal, then the run carried on with the decider's
//! credentials (the engine checks the step's `approvers` and the deadline first).

use crate::engine::decisions::DecisionRequest;
use crate::engine::{self, Settings};
use crate::journal::Event;
use crate::journal::event::Verdict;

use super::run::{report, runtime, settings, watch_interrupts};
use super::{DecideArgs, Exit, GlobalArgs};

pub fn run(args: &DecideArgs, verdict: Verdict, global: &GlobalArgs) -> Exit {
    let base = settings(global, args.journal_dir.as_ref(), false, false, true);
    let settings = Settings {
        raise_max_targets: true,
        decision: Some(DecisionRequest {
            step: args.step.clone(),
            verdict,
            reason: args.reason.clone(),
            channel: "cli".into(),
        }),
        ..base
    };
    let result = runtime().block_on(async {
        watch_interrupts(settings.interrupted.clone());
        engine::resume(&args.run, &args.params, args.runbook.as_deref(), &settings).await
    });
    // An approval past its deadline became a deny: the person asked for something else.
    let expired = match (&result, verdict) {
        (Ok(outcome), Verdict::Approve) => expired_decision(&outcome.journal),
        _ => None,
    };
    let exit = report(result, args.output);
    match expired {
        Some(reason) => {
            eprintln!("firebreak: not approved: {reason}; the run went on with the denial");
            if exit == Exit::Ok {
                Exit::Refused
            } else {
                exit
            }
        }
        None => exit,
    }
}

/// The reason of the run's latest decision record, if the deadline wrote it.
fn expired_decision(journal: &std::path::Path) -> Option<String> {
    let records = crate::journal::read(journal).ok()?;
    records.iter().rev().find_map(|r| match &r.event {
        Event::Decision(d) => Some((d.channel == "timeout").then(|| d.reason.clone())),
        _ => None,
    })?
}
