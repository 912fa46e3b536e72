//! Crash at every journal boundary of a four-step runbook, resume, and check that the run
//! completes, every step's effect is journaled exactly once and the chain verifies.
//! Needs the `fault-injection` feature (scripts/test enables it).

use std::collections::HashMap;

use firebreak::journal::Event;

use crate::support::journal::Journal;
use crate::support::{crash, moto};

#[test]
fn every_boundary_crashes_and_resumes_exactly_once() {
    let _moto = moto::exclusive_blocking();
    let mut points = vec!["after-run-started".to_string()];
    for point in [
        "after-step-started",
        "before-step-finished",
        "after-step-finished",
    ] {
        for unit in ["declare", "each#0", "each#1", "each#2", "approve", "after"] {
            points.push(format!("{point}:{unit}"));
        }
    }
    for point in &points {
        let dir = tempfile::tempdir().unwrap();
        let journal = crash::crash_at(
            point,
            dir.path(),
            &[
                "run",
                "tests/fixtures/engine/four-steps.yaml",
                "--yes",
                "-p",
                "instance_ids=i-0123456789abcdef0,i-0fedcba9876543210,i-00000000000000001",
                "-p",
                "api_token=tok-crash-matrix",
            ],
        );
        let resumed = crash::resume(dir.path(), &journal, &["-p", "api_token=tok-crash-matrix"]);
        assert_eq!(
            resumed.code,
            Some(0),
            "{point}: resume failed:\n{}",
            resumed.stderr
        );
        let records = Journal::read(&journal).records;
        let mut done: HashMap<String, usize> = HashMap::new();
        for record in &records {
            let key = match &record.event {
                Event::StepSucceeded(e) => e.step.clone(),
                Event::ItemSucceeded(e) => format!("{}#{}", e.step, e.item_index.unwrap()),
                _ => continue,
            };
            *done.entry(key).or_default() += 1;
        }
        for unit in [
            "declare", "each", "each#0", "each#1", "each#2", "approve", "after",
        ] {
            assert_eq!(
                done.get(unit),
                Some(&1),
                "{point}: `{unit}` finished {:?} times",
                done.get(unit)
            );
        }
        let resumes = records
            .iter()
            .filter(|r| matches!(r.event, Event::RunResumed(_)))
            .count();
        assert_eq!(resumes, 1, "{point}");
        assert!(
            matches!(&records.last().unwrap().event, Event::RunFinished(f) if f.status == firebreak::journal::RunStatus::Succeeded),
            "{point}"
        );
        let verified = crash::verify(&journal);
        assert_eq!(verified.code, Some(0), "{point}: {}", verified.stdout);
    }
}
