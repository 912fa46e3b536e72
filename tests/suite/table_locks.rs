//! Resource locks in the shared table, against moto through the proxy, decided by the same
//! rules as lock files: a live run's lock refuses others; a parked run's lock refuses others
//! while nobody holds the run; a dead run's lock is stale — refused unless forced (and a forced
//! takeover is reported for the journal) — and the run's own resume takes it back; a drill's
//! lock never blocks containment; a refused acquisition leaves nothing behind.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use firebreak::journal::Mode;
use firebreak::lock::{LockError, LockOwner, TakeoverPolicy};
use firebreak::table::Shared;
use firebreak::table::locks::TableLockSet;

use super::journal_table::table;
use crate::support::moto;

const INSTANCE: &str = "aws:123456789012:us-east-1:i-0abc";
const VOLUME: &str = "aws:123456789012:us-east-1:vol-0abc";

fn owner(run: &str, mode: Mode) -> LockOwner {
    LockOwner::new(run, mode)
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

async fn lock_holder(client: &aws_sdk_dynamodb::Client, resource: &str) -> Option<String> {
    let item = client
        .get_item()
        .table_name("firebreak-state")
        .key("pk", AttributeValue::S(format!("lock#{resource}")))
        .key("sk", AttributeValue::S("lock".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()?;
    match item.get("run_id") {
        Some(AttributeValue::S(run)) => Some(run.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_locks_follow_the_lock_file_rules() {
    let _moto = moto::exclusive().await;
    let (client, location) = table().await;
    let shared = Shared {
        lease: Duration::from_secs(30),
        ..Shared::new(client.clone(), location)
    };
    let none = TakeoverPolicy::default();

    // Run A is live (its lease held) and locks the instance.
    let a_lease = shared.hold_run("run-a").await.unwrap();
    let a = TableLockSet::acquire(
        &shared,
        &keys(&[INSTANCE]),
        &owner("run-a", Mode::Live),
        none.clone(),
    )
    .await
    .unwrap();
    assert_eq!(a.resources(), [INSTANCE]);
    // B wants the volume and the instance: refused, and the volume it took first is let go.
    let held = TableLockSet::acquire(
        &shared,
        &keys(&[VOLUME, INSTANCE]),
        &owner("run-b", Mode::Live),
        none.clone(),
    )
    .await
    .unwrap_err();
    assert!(matches!(held, LockError::Held { .. }), "{held}");
    assert_eq!(lock_holder(&client, VOLUME).await, None, "rolled back");

    // A parks for a person's decision and its process ends: still refused, as parked.
    a.park().await.unwrap();
    a_lease.release().await.unwrap();
    let parked = TableLockSet::acquire(
        &shared,
        &keys(&[INSTANCE]),
        &owner("run-b", Mode::Live),
        none.clone(),
    )
    .await
    .unwrap_err();
    assert!(matches!(parked, LockError::Parked { .. }), "{parked}");
    // Its resume takes its own lock back.
    let resumed = TableLockSet::acquire(
        &shared,
        &keys(&[INSTANCE]),
        &owner("run-a", Mode::Live),
        TakeoverPolicy {
            resume_of: Some("run-a".into()),
            force: false,
        },
    )
    .await
    .unwrap();
    // Its own lock: nothing was taken from anyone.
    assert!(resumed.taken_over().is_empty());
    // A dies without releasing (nobody holds its lease, the lock is not parked): stale.
    drop(resumed);
    let stale = TableLockSet::acquire(
        &shared,
        &keys(&[INSTANCE]),
        &owner("run-b", Mode::Live),
        none.clone(),
    )
    .await
    .unwrap_err();
    assert!(matches!(stale, LockError::Stale { .. }), "{stale}");
    // A drill never takes a live run's stale lock, even forced.
    let drill = TableLockSet::acquire(
        &shared,
        &keys(&[INSTANCE]),
        &owner("run-d", Mode::DryRun),
        TakeoverPolicy {
            resume_of: None,
            force: true,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(drill, LockError::Stale { .. }), "{drill}");
    // Forced, B takes it over, and says from whom.
    let b = TableLockSet::acquire(
        &shared,
        &keys(&[INSTANCE]),
        &owner("run-b", Mode::Live),
        TakeoverPolicy {
            resume_of: None,
            force: true,
        },
    )
    .await
    .unwrap();
    let taken = b.taken_over();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].previous.as_ref().unwrap().run_id, "run-a");
    assert_eq!(
        lock_holder(&client, INSTANCE).await.as_deref(),
        Some("run-b")
    );
    b.release().await.unwrap();
    assert_eq!(lock_holder(&client, INSTANCE).await, None);

    // A live drill's lock gives way to containment at once.
    let _d_lease = shared.hold_run("run-d").await.unwrap();
    let _drill = TableLockSet::acquire(
        &shared,
        &keys(&[INSTANCE]),
        &owner("run-d", Mode::DryRun),
        none.clone(),
    )
    .await
    .unwrap();
    let _c_lease = shared.hold_run("run-c").await.unwrap();
    let c = TableLockSet::acquire(
        &shared,
        &keys(&[INSTANCE]),
        &owner("run-c", Mode::Live),
        none,
    )
    .await
    .unwrap();
    assert_eq!(c.taken_over().len(), 1);
    assert_eq!(
        lock_holder(&client, INSTANCE).await.as_deref(),
        Some("run-c")
    );
}
