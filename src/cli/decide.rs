//! `firebreak approve` / `deny`: a person's decision on the approval a run waits at, written as
//! a decision record in the run's journal, then the run carried on with the decider's
//! credentials (the engine checks the step's `approvers` and the deadline first).

use crate::engine::decisions::DecisionRequest;
use crate::engine::{self, Settings};
use crate::journal::Event;
use crate::journal::event::Verdict;

use super::run::{report, runtime, settings};
use super::{DecideArgs, Exit, GlobalArgs};

pub fn run(args: &DecideArgs, verdict: Verdict, global: &GlobalArgs) -> Exit {
    if let Some(queue) = &args.via_queue {
        let request = super::via_queue::Request::Decision {
            run_id: &args.run,
            verdict,
            step: args.step.as_deref(),
            reason: &args.reason,
        };
        return super::via_queue::send(queue, request, args.output, global);
    }
    let base = settings(global, args.journal_dir.as_ref(), false, false, true);
    if let Some(seal) = &args.from_seal
        && let Err(error) = from_seal(args, seal, &base.journal_dir, global)
    {
        eprintln!("error: {error}");
        return Exit::Invalid;
    }
    let settings = Settings {
        raise_max_targets: true,
        decision: Some(DecisionRequest {
            step: args.step.clone(),
            verdict,
            reason: args.reason.clone(),
            channel: "cli".into(),
            sender: None,
        }),
        ..base
    };
    let result = match super::run::resume_in(
        settings,
        args.table.journal.as_deref(),
        &args.run,
        &args.params,
        args.runbook.as_deref(),
        global,
    ) {
        Ok(result) => result,
        Err(exit) => return exit,
    };
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

/// A run a worker parked: its journal is on the worker's disk and in the seal. Takes the
/// newest sealed copy into the journal directory, once its chain verifies; a journal already
/// there is kept if the sealed copy is the start of it, and refused otherwise.
fn from_seal(
    args: &DecideArgs,
    seal: &str,
    journal_dir: &std::path::Path,
    global: &GlobalArgs,
) -> Result<(), String> {
    let run_id = args.run.as_str();
    if run_id.ends_with(".jsonl") || run_id.contains('/') {
        return Err("--from-seal takes a run id, not a journal's path".into());
    }
    let target =
        crate::custody::SealTarget::parse(seal).map_err(|e| format!("--from-seal: {e}"))?;
    let sealed = runtime().block_on(async {
        let clients = super::verify_seal::clients(global).await;
        let store =
            super::verify_seal::store(&clients, &target.bucket, args.bucket_owner.as_deref())
                .await?;
        crate::custody::remote::newest(&store, &target, run_id).await
    })?;
    let key = super::run::journal_key();
    let verification = crate::journal::verify_bytes(&sealed.bytes, key.as_deref());
    if !verification.is_intact() {
        return Err(format!(
            "the sealed journal s3://{}/{} does not verify: {verification}",
            target.bucket, sealed.journal_key
        ));
    }
    let path = engine::journal_path(journal_dir, run_id);
    match std::fs::read(&path) {
        Ok(local) if local.starts_with(&sealed.bytes) => return Ok(()),
        Ok(_) => {
            return Err(format!(
                "{} is not the run's sealed journal: compare them with `firebreak journal verify {} \
                 --against {seal}/{run_id}`",
                path.display(),
                path.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("failed to read {}: {e}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("failed to create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, &sealed.bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
    eprintln!(
        "firebreak: took run {run_id}'s journal from s3://{}/{} ({} records, head {})",
        target.bucket,
        sealed.journal_key,
        verification.records,
        verification.head.as_deref().unwrap_or("none")
    );
    Ok(())
}

/// The reason of the run's latest decision record, if the deadline wrote it.
fn expired_decision(journal: &std::path::Path) -> Option<String> {
    let records = crate::journal::read(journal).ok()?;
    records.iter().rev().find_map(|r| match &r.event {
        Event::Decision(d) => Some((d.channel == "timeout").then(|| d.reason.clone())),
        _ => None,
    })?
}
