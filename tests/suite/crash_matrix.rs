//! Crash at every journal boundary of a four-step runbook, resume, and check that the run
//! completes, every step's effect is journaled exactly once and the chain verifies.
//! Needs the `fault-injection` feature (scripts/test enables it).

#[cfg(not(feature = "fault-injection"))]
#[test]
fn crash_matrix_needs_the_fault_injection_feature() {
    panic!("run the crash matrix with `cargo test --features fault-injection` (scripts/test does)");
}

#[cfg(feature = "fault-injection")]
#[test]
fn every_boundary_crashes_and_resumes_exactly_once() {
    use std::collections::HashMap;

    use crate::support::{firebreak, moto};
    use serde_json::Value;

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
        let base = || {
            let mut command = firebreak();
            command
                .envs(moto::env())
                .env("FIREBREAK_JOURNAL_DIR", dir.path());
            command
        };
        let crashed = base()
            .env("FIREBREAK_FAULT", point)
            .args(["run", "tests/fixtures/engine/four-steps.yaml", "--yes"])
            .args([
                "-p",
                "instance_ids=i-0123456789abcdef0,i-0fedcba9876543210,i-00000000000000001",
            ])
            .args(["-p", "api_token=tok-crash-matrix"])
            .output()
            .unwrap();
        assert!(
            crashed.status.code().is_none(),
            "{point}: the process should have aborted"
        );
        let journal = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .unwrap_or_else(|| panic!("{point}: no journal"));
        let resumed = base()
            .args(["resume"])
            .arg(&journal)
            .args(["--yes", "-p", "api_token=tok-crash-matrix"])
            .output()
            .unwrap();
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "{point}: resume failed:\n{}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let records: Vec<Value> = std::fs::read_to_string(&journal)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut done: HashMap<String, usize> = HashMap::new();
        for record in &records {
            let key = match record["type"].as_str().unwrap() {
                "step_succeeded" => record["step"].as_str().unwrap().to_string(),
                "item_succeeded" => format!(
                    "{}#{}",
                    record["step"].as_str().unwrap(),
                    record["item_index"]
                ),
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
        assert_eq!(
            records
                .iter()
                .filter(|r| r["type"] == "run_resumed")
                .count(),
            1,
            "{point}"
        );
        assert_eq!(records.last().unwrap()["status"], "succeeded", "{point}");
        let verified = firebreak()
            .args(["journal", "verify"])
            .arg(&journal)
            .output()
            .unwrap();
        assert_eq!(
            verified.status.code(),
            Some(0),
            "{point}: {}",
            String::from_utf8_lossy(&verified.stdout)
        );
    }
}
