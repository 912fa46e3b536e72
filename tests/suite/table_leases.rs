//! Leases in DynamoDB, against moto through the proxy: held, refused to others while
//! unexpired, renewed, taken over once expired with a new generation; the old holder's renewal
//! then fails (its keeper raises `lost`) and its release leaves the new holder's lease alone.
//! With the journal, the fence: a holder paused past its lease (as a SIGSTOP would) finds, when
//! it wakes, its lease lost and its next journal append refused, because the taker appended
//! `run_resumed` first. Leases carry a TTL; journal records never do.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use firebreak::journal::{JournalError, JournalSink};
use firebreak::table::TableJournal;
use firebreak::table::lease::{Keeper, Lease, LeaseError, Leases};
use serde_json::json;

use super::journal_table::{begun, table};
use crate::support::moto;

fn leases(client: &aws_sdk_dynamodb::Client) -> Leases {
    Leases {
        client: client.clone(),
        table: "firebreak-state".into(),
        account: "123456789012".into(),
        region: "us-east-1".into(),
    }
}

const SHORT: Duration = Duration::from_millis(1500);

/// Takes `name` for `holder` as soon as its current holder's lease expires (at most 15 s).
async fn take_over(leases: &Leases, name: &str, holder: &str, duration: Duration) -> Lease {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match leases.acquire(name, holder, duration).await {
            Ok(lease) => return lease,
            Err(LeaseError::Held { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(error) => panic!("{error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_held_renewed_and_taken_over_only_once_expired() {
    let _moto = moto::exclusive().await;
    let (client, _) = table().await;
    let leases = leases(&client);
    // Long enough that a loaded machine cannot let it lapse before the next call.
    let mut first = leases
        .acquire("run#r1", "worker-a", SHORT * 4)
        .await
        .unwrap();
    let refused = leases
        .acquire("run#r1", "worker-b", SHORT)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, LeaseError::Held { holder, .. } if holder == "worker-a"),
        "{refused}"
    );
    leases.renew(&mut first, SHORT * 4).await.unwrap();
    // Another name is another lease.
    leases.acquire("run#r2", "worker-b", SHORT).await.unwrap();

    // Once it expires, another worker takes it, with a newer generation.
    let second = take_over(&leases, "run#r1", "worker-b", SHORT * 4).await;
    assert!(second.generation > first.generation);
    // The old holder cannot renew it back, and its release leaves the new holder's lease.
    let lost = leases.renew(&mut first, SHORT).await.unwrap_err();
    assert!(matches!(lost, LeaseError::Lost { .. }), "{lost}");
    leases.release(&first).await.unwrap();
    let still = leases
        .acquire("run#r1", "worker-c", SHORT)
        .await
        .unwrap_err();
    assert!(
        matches!(&still, LeaseError::Held { holder, .. } if holder == "worker-b"),
        "{still}"
    );
    // Released by its holder, it is free at once.
    leases.release(&second).await.unwrap();
    leases.acquire("run#r1", "worker-c", SHORT).await.unwrap();

    // The lease item carries a TTL (seconds, after its expiry); a journal record never does.
    let key = |pk: &str, sk: &str| {
        [
            ("pk".to_owned(), AttributeValue::S(pk.into())),
            ("sk".to_owned(), AttributeValue::S(sk.into())),
        ]
        .into()
    };
    let item = client
        .get_item()
        .table_name("firebreak-state")
        .set_key(Some(key("lease#123456789012#us-east-1#run#r1", "lease")))
        .send()
        .await
        .unwrap();
    assert!(item.item().unwrap().contains_key("ttl"));
    begun(
        &client,
        &firebreak::table::TableLocation::parse("dynamodb://firebreak-state").unwrap(),
        "r1",
    );
    let record = client
        .get_item()
        .table_name("firebreak-state")
        .set_key(Some(key("run#r1", &format!("rec#{:012}", 1))))
        .send()
        .await
        .unwrap();
    let record = record.item().expect("record 1 is there");
    assert!(record.contains_key("line") && !record.contains_key("ttl"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_past_its_lease_is_fenced_off_when_it_wakes() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let leases = leases(&client);
    let run = table.with_run("run-fence");
    // Worker A holds the run: its lease, kept alive, and the journal.
    let lease = leases
        .acquire("run#run-fence", "worker-a", SHORT)
        .await
        .unwrap();
    let journal_a = begun(&client, &table, "run-fence");
    // A is paused (SIGSTOP): its keeper stops too, so the lease runs out.
    let keeper = Keeper::start(leases.clone(), lease, SHORT);
    drop(keeper);
    // B takes the lease over once it expired, and appends `run_resumed` before anything else.
    let taken = take_over(&leases, "run#run-fence", "worker-b", SHORT * 20).await;
    let journal_b = TableJournal::open_for_resume(client.clone(), &run, None)
        .await
        .unwrap();
    journal_b
        .append_fields(
            "run_resumed",
            json!({"by": "worker-b", "lease_generation": taken.generation})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap();
    // A wakes (SIGCONT): its keeper's first renewal fails, and so does its next append — it
    // makes no AWS call after the takeover.
    let woken = Keeper::start(
        leases.clone(),
        Lease {
            name: "run#run-fence".into(),
            holder: "worker-a".into(),
            generation: taken.generation - 1,
            expires_at_ms: 0,
        },
        Duration::from_millis(300),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !woken.lost() {
        assert!(
            Instant::now() < deadline,
            "the keeper never noticed the takeover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = journal_a
        .append_fields(
            "step_started",
            json!({"step": "stop"}).as_object().cloned().unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(refused, JournalError::Taken { seq: 3, .. }),
        "{refused}"
    );
    // B goes on; the journal is one chain, with nothing of A's after the takeover.
    journal_b
        .append_fields("note", json!({"n": 4}).as_object().cloned().unwrap())
        .unwrap();
    let bytes = firebreak::table::journal::export(&client, &run)
        .await
        .unwrap();
    let verification = firebreak::journal::verify_bytes(&bytes, None);
    assert!(
        verification.is_intact() && verification.records == 4,
        "{verification}"
    );
}
