//! Group steps: each item's inner steps run in order, independently of the other items, under
//! one concurrency bound. One item failing stops only that item; the group fails after every
//! item finished; a crash anywhere inside resumes each item at its next inner step.

use std::collections::HashMap;

use firebreak::journal::{Event, RunStatus};

use crate::support::journal::Journal;
use crate::support::{cli_on_moto, crash, journal, moto};

const FIXTURE: &str = "tests/fixtures/engine/group.yaml";

/// How many times each unit finished: `<step>` for a step, `<step>#<index>` for an item (a
/// group's inner step is `<group>.<inner>#<index>`).
fn finished(records: &[firebreak::journal::Record]) -> HashMap<String, usize> {
    let mut done = HashMap::new();
    for record in records {
        let key = match &record.event {
            Event::StepSucceeded(e) => e.step.clone(),
            Event::ItemSucceeded(e) => format!("{}#{}", e.step, e.item_index.unwrap()),
            _ => continue,
        };
        *done.entry(key).or_default() += 1;
    }
    done
}

#[test]
fn an_item_that_fails_stops_only_itself_and_the_group_fails_once_every_item_is_done() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &["run", FIXTURE, "-p", "waits=1ms,bogus,1s,2ms", "--yes"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(outcome["status"], "failed");
    let steps = outcome["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["first", "each"],
        "the run stops after the failed group"
    );
    let items = steps[1]["outputs"].as_array().unwrap();
    let order: Vec<&str> = items.iter().map(|i| i["item"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        ["1ms", "bogus", "1s", "2ms"],
        "item order, not finishing order"
    );
    let statuses: Vec<&str> = items
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "failed", "succeeded", "succeeded"]);
    assert!(
        items[1]["error"].as_str().unwrap().contains("at `pause`"),
        "{}",
        items[1]
    );
    assert_eq!(items[2]["outputs"]["note"]["message"], "1s waited 1s");
    // The failed item's later inner steps never ran; the others' all did — the slow item
    // (1s) too, though another had already failed.
    let journal = Journal::read(&journal::only_journal(dir.path()));
    let done = finished(&journal.records);
    assert_eq!(done.get("each.note#1"), None);
    for index in [0, 2, 3] {
        assert_eq!(
            done.get(&format!("each.note#{index}")),
            Some(&1),
            "{done:?}"
        );
    }
    let summary = journal
        .of_kind("step_failed")
        .into_iter()
        .find(|r| r["step"] == "each")
        .expect("the group's failure is journaled");
    assert!(
        summary["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 4 items failed"),
        "{summary}"
    );
    // Idempotency keys are `<run>.<group>.<item>.<inner>`.
    let run_id = outcome["run_id"].as_str().unwrap();
    let keys: Vec<String> = journal
        .of_kind("item_started")
        .into_iter()
        .filter(|r| r["step"] == "each.note")
        .map(|r| r["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert!(keys.contains(&format!("{run_id}.each.2.note")), "{keys:?}");
}

#[test]
fn a_failure_the_inner_step_continues_past_lets_its_item_go_on_and_still_fails_the_group() {
    let _moto = moto::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &[
            "run",
            FIXTURE,
            "-p",
            "waits=1ms,2ms",
            "-p",
            "soft=never",
            "--yes",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    let items = outcome["steps"][1]["outputs"].as_array().unwrap();
    for item in items {
        assert_eq!(item["status"], "failed", "{item}");
        assert!(
            item["error"].as_str().unwrap().contains("at `soft`"),
            "{item}"
        );
        assert!(
            item["outputs"]["note"]["message"]
                .as_str()
                .unwrap()
                .contains("waited"),
            "{item}"
        );
    }
}

/// Crash at journal boundaries inside the group — an inner step's start, before and after its
/// outcome, an item's end — then resume: every inner step of every item finishes exactly once,
/// an item whose inner step had finished is not started again there, and the chain verifies.
#[test]
fn a_crash_inside_a_group_resumes_each_item_at_its_next_inner_step() {
    let _moto = moto::exclusive_blocking();
    let points = [
        "after-step-started:each.pause#1",
        "before-step-finished:each.soft#2",
        "after-step-finished:each.pause#2",
        "after-step-finished:each.note#0",
        "after-step-finished:each.note#3",
    ];
    for point in points {
        let dir = tempfile::tempdir().unwrap();
        let journal = crash::crash_at(
            point,
            dir.path(),
            &["run", FIXTURE, "--yes", "-p", "waits=1ms,2ms,3ms,4ms"],
        );
        let before = finished(&Journal::read(&journal).records);
        let resumed = crash::resume(dir.path(), &journal, &[]);
        assert_eq!(resumed.code, Some(0), "{point}: {}", resumed.stderr);
        let records = Journal::read(&journal).records;
        let done = finished(&records);
        for unit in ["first", "each", "after"] {
            assert_eq!(done.get(unit), Some(&1), "{point}: `{unit}`: {done:?}");
        }
        for index in 0..4 {
            for inner in ["pause", "soft", "note"] {
                let unit = format!("each.{inner}#{index}");
                assert_eq!(done.get(&unit), Some(&1), "{point}: `{unit}`: {done:?}");
            }
            let item = format!("each#{index}");
            assert_eq!(done.get(&item), Some(&1), "{point}: `{item}`: {done:?}");
        }
        // What had finished before the crash was not started again.
        let resumed_at = records
            .iter()
            .position(|r| matches!(r.event, Event::RunResumed(_)))
            .expect("a run_resumed record");
        for record in &records[resumed_at..] {
            if let Event::ItemStarted(e) = &record.event {
                let unit = format!("{}#{}", e.step, e.item_index.unwrap());
                assert!(
                    !before.contains_key(&unit),
                    "{point}: `{unit}` had finished before the crash and started again"
                );
            }
        }
        assert!(
            matches!(&records.last().unwrap().event, Event::RunFinished(f) if f.status == RunStatus::Succeeded),
            "{point}"
        );
        let verified = crash::verify(&journal);
        assert_eq!(verified.code, Some(0), "{point}: {}", verified.stdout);
    }
}
