//! The journal in DynamoDB, against moto through the test proxy: one record stream written to a
//! file and to the table exports byte-identically (both chains); two writers can never both
//! write record N — the second is refused and stops; a batch is one transaction; an answer
//! lost after the write is recognised as this writer's own; `journal export|verify|show
//! dynamodb://TABLE/RUN_ID` work as on a file.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use firebreak::journal::{ChainKey, Clock, FileJournal, JournalError, JournalSink};
use firebreak::table::journal::export;
use firebreak::table::{TableJournal, TableLocation};
use serde_json::{Map, Value, json};

use crate::support::{firebreak, moto, output, proxy};

const TABLE: &str = "firebreak-state";

/// The table as `deploy/firebreak.yaml` makes it: `pk`/`sk` strings, on demand.
pub(crate) async fn table() -> (aws_sdk_dynamodb::Client, TableLocation) {
    let client = moto::clients().await.dynamodb;
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("moto creates the table");
    (
        client,
        TableLocation::parse(&format!("dynamodb://{TABLE}")).unwrap(),
    )
}

fn clock() -> Clock {
    Arc::new(|| "2026-12-02T10:00:00.000Z".to_owned())
}

fn payload(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

/// A run's worth of records: single appends and batches, text that needs escaping, the end.
fn write_stream(sink: &dyn JournalSink, chain: &str) {
    sink.append_fields(
        "run_started",
        payload(json!({"chain": chain, "runbook": "ec2-instance-compromise"})),
    )
    .unwrap();
    for i in 0..5 {
        sink.append_fields(
            "api_call",
            payload(json!({"service": "ec2", "operation": "DescribeInstances", "i": i})),
        )
        .unwrap();
    }
    sink.append_batch(vec![
        ("step_started", payload(json!({"step": "isolate"}))),
        (
            "note",
            payload(json!({"text": "quotes \" and \\ and é, 🔥, \u{1}"})),
        ),
        (
            "step_finished",
            payload(json!({"step": "isolate", "status": "succeeded"})),
        ),
    ])
    .unwrap();
    sink.append_fields("run_finished", payload(json!({"status": "succeeded"})))
        .unwrap();
}

/// A run's journal in the table with its first two records.
pub(crate) fn begun(
    client: &aws_sdk_dynamodb::Client,
    table: &TableLocation,
    run_id: &str,
) -> TableJournal {
    let journal = TableJournal::create(client.clone(), table, run_id, None).unwrap();
    journal
        .append_fields("run_started", payload(json!({"chain": "sha256"})))
        .unwrap();
    journal
        .append_fields("note", payload(json!({"n": 2})))
        .unwrap();
    journal
}

fn fb(args: &[&str]) -> crate::support::Output {
    output(firebreak().envs(moto::env()).args(args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_stream_exports_byte_identically_from_file_and_table() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let dir = tempfile::tempdir().unwrap();
    for (run_id, key) in [
        ("run-sha", None),
        ("run-hmac", Some(ChainKey::new(*b"journal key"))),
    ] {
        let path = dir.path().join(format!("{run_id}.jsonl"));
        let file = FileJournal::create(&path, run_id, key.clone())
            .unwrap()
            .with_clock(clock());
        let stored = TableJournal::create(client.clone(), &table, run_id, key.clone())
            .unwrap()
            .with_clock(clock());
        let chain = file.chain();
        write_stream(&file, chain);
        write_stream(&stored, chain);
        assert_eq!(stored.head(), file.head());
        let from_file = std::fs::read(&path).unwrap();
        let exported = export(&client, &table.with_run(run_id)).await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&exported),
            String::from_utf8_lossy(&from_file),
            "{run_id}"
        );
        assert_eq!(exported, from_file);
    }
    // From the command line, as a user reads a worker's journal.
    let at = format!("dynamodb://{TABLE}/run-sha");
    let exported = fb(&["journal", "export", &at]);
    assert_eq!(exported.code, Some(0), "{}", exported.stderr);
    assert_eq!(
        exported.stdout.as_bytes(),
        std::fs::read(dir.path().join("run-sha.jsonl")).unwrap()
    );
    let verified = fb(&["journal", "verify", &at]);
    assert_eq!(
        verified.code,
        Some(0),
        "{}\n{}",
        verified.stdout,
        verified.stderr
    );
    assert!(
        verified.stdout.contains("10 records"),
        "{}",
        verified.stdout
    );
    let shown = fb(&["journal", "show", &at]);
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    assert!(shown.stdout.contains("isolate"), "{}", shown.stdout);
    // An HMAC chain verifies only with its key.
    let hmac = format!("dynamodb://{TABLE}/run-hmac");
    let without = fb(&["journal", "verify", &hmac]);
    assert_eq!(
        without.code,
        Some(2),
        "{}\n{}",
        without.stdout,
        without.stderr
    );
    // A run that is not there, and a location that is not one, say so.
    let missing = fb(&[
        "journal",
        "verify",
        &format!("dynamodb://{TABLE}/no-such-run"),
    ]);
    assert_ne!(missing.code, Some(0));
    let bad = fb(&["journal", "export", "dynamodb://x"]);
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("3 to 255"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_never_both_write_a_record_and_the_loser_stops() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let run = table.with_run("run-race");
    let first = begun(&client, &table, "run-race");
    // A second worker takes the run over from the same tail.
    let second = TableJournal::open_for_resume(client.clone(), &run, None)
        .await
        .unwrap();
    first
        .append_fields("note", payload(json!({"by": "first"})))
        .unwrap();
    let refused = second
        .append_fields("run_resumed", payload(json!({"by": "second"})))
        .unwrap_err();
    assert!(
        matches!(refused, JournalError::Taken { seq: 3, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("another writer"), "{refused}");
    // It stops at once: nothing more from it, not even after the other's record.
    let again = second
        .append_fields("note", payload(json!({})))
        .unwrap_err();
    assert!(matches!(again, JournalError::Broken { .. }), "{again}");
    first
        .append_fields("note", payload(json!({"n": 4})))
        .unwrap();
    let bytes = export(&client, &run).await.unwrap();
    let verification = firebreak::journal::verify_bytes(&bytes, None);
    assert!(verification.is_intact(), "{verification}");
    assert_eq!(verification.records, 4);
    assert!(!String::from_utf8(bytes).unwrap().contains("second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_transaction_and_a_lost_answer_is_recognised() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let run = table.with_run("run-batch");
    let journal = begun(&client, &table, "run-batch");
    // Someone else's record 4 is there: a batch of 3, 4 and 5 writes none of them.
    let direct = aws_sdk_dynamodb::Client::new(&moto::direct_config().await);
    direct
        .put_item()
        .table_name(TABLE)
        .item("pk", AttributeValue::S("run#run-batch".into()))
        .item("sk", AttributeValue::S(format!("rec#{:012}", 4)))
        .item("seq", AttributeValue::N("4".into()))
        .item("line", AttributeValue::S("{\"seq\":4}".into()))
        .send()
        .await
        .unwrap();
    let refused = journal
        .append_batch(vec![
            ("note", payload(json!({"n": 3}))),
            ("note", payload(json!({"n": 4}))),
            ("note", payload(json!({"n": 5}))),
        ])
        .unwrap_err();
    assert!(
        matches!(refused, JournalError::Taken { seq: 4, .. }),
        "{refused}"
    );
    let bytes = String::from_utf8(export(&client, &run).await.unwrap()).unwrap();
    assert_eq!(
        bytes.lines().count(),
        3,
        "records 1, 2 and the other's 4:\n{bytes}"
    );
    assert!(!bytes.contains("\"n\":3"), "{bytes}");

    // A write whose answer is lost: the SDK sends it again, DynamoDB refuses the seq, and the
    // journal finds its own line there — written once, and the run goes on.
    proxy::faults(
        7,
        json!([{"service": "dynamodb", "operation": "PutItem", "fault": "lost", "max": 1}]),
    );
    let journal = begun(&client, &table, "run-lost");
    assert_eq!(
        proxy::calls()
            .iter()
            .filter(|c| c.name() == "dynamodb:PutItem" && c.fault.as_deref() == Some("lost"))
            .count(),
        1
    );
    let bytes = export(&client, &table.with_run("run-lost")).await.unwrap();
    let verification = firebreak::journal::verify_bytes(&bytes, None);
    assert!(
        verification.is_intact() && verification.records == 2,
        "{verification}"
    );

    // A record no DynamoDB item can hold is refused before anything is sent.
    let big = "x".repeat(400 * 1024);
    let refused = journal
        .append_fields("note", payload(json!({"text": big})))
        .unwrap_err();
    assert!(refused.to_string().contains("400 KB"), "{refused}");
}

/// A worker's journal (the local file mirrored into the table) with a record larger than an
/// item holds: the record goes to the seal bucket, the item names it with its SHA-256, and the
/// table's export — the object fetched and checked — is the file byte for byte; a reader
/// without S3 is told where the record is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_larger_than_an_item_spills_to_the_seal_and_exports_whole() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let evidence = super::custody::seed_evidence(&[]);
    let s3 = moto::clients().await.s3;
    let spill = firebreak::table::spill::Spill {
        s3: s3.clone(),
        bucket: evidence.bucket.clone(),
        prefix: "cases".into(),
        owner: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run-big.jsonl");
    let journal = firebreak::journal::FileJournal::create(&path, "run-big", None)
        .unwrap()
        .with_replica(Arc::new(firebreak::table::replica::TableReplica {
            client: client.clone(),
            location: table.with_run("run-big"),
            fence: None,
            spill: Some(spill),
        }));
    journal
        .append_fields("run_started", payload(json!({"chain": "sha256"})))
        .unwrap();
    let big = "y".repeat(600 * 1024);
    journal
        .append_fields("note", payload(json!({"text": big})))
        .unwrap();
    journal
        .append_fields("note", payload(json!({"text": "after"})))
        .unwrap();
    let file = std::fs::read(&path).unwrap();
    let run = table.with_run("run-big");
    let exported = firebreak::table::journal::export_with(&client, Some(&s3), &run)
        .await
        .unwrap();
    assert_eq!(exported, file);
    assert!(firebreak::journal::verify_bytes(&exported, None).is_intact());
    // Record 2's item holds where it went, not the line.
    let item = client
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("run#run-big".into()))
        .key("sk", AttributeValue::S(format!("rec#{:012}", 2)))
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .unwrap();
    assert!(!item.contains_key("line"));
    let Some(AttributeValue::S(place)) = item.get("spill") else {
        panic!("no spill attribute: {item:?}")
    };
    assert!(
        place.starts_with(&format!(
            "s3://{}/cases/run-big/spill/000000000002-",
            evidence.bucket
        )),
        "{place}"
    );
    let without = export(&client, &run).await.unwrap_err();
    assert!(
        without.to_string().contains("record 2 is spilled to s3://"),
        "{without}"
    );
    // The CLI fetches it: the chain is intact (exit 1 only because this run never finished).
    let out = firebreak()
        .envs(moto::env())
        .args(["journal", "verify", "dynamodb://firebreak-state/run-big"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("3 records"), "{said}");
}
