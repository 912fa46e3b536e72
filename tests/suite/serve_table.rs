//! `serve` workers that share no disk, only the DynamoDB table (`--journal dynamodb://TABLE`),
//! against moto through the test proxy. Each worker has its own journal directory and its own
//! access key (so the wire tells them apart). A worker stops itself at a precise point of a
//! run (`FIREBREAK_PAUSE`, the fault-injection build): then it is killed with SIGKILL, or left
//! paused past its lease and continued after another worker took the run over.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::journal_table::table;
use super::serve::{one_finding, pending, terminate, until};
use crate::support::worker::Worker;
use crate::support::{firebreak, moto, proxy};

const KEY_A: &str = "AKIAWORKERAAAAAAAAAA";
const KEY_B: &str = "AKIAWORKERBBBBBBBBBB";
/// Where worker A stops: isolation done and journaled, the snapshot not yet begun.
const PAUSE_AT: &str = "after-step-finished:isolate";

fn worker(
    queue: &str,
    seal: &str,
    journal_dir: &Path,
    log: &Path,
    key: &str,
    pause: Option<&str>,
    extra: &[&str],
) -> Worker {
    let mut command = firebreak();
    command
        .envs(moto::env())
        .env("AWS_ACCESS_KEY_ID", key)
        .env("FIREBREAK_JOURNAL_DIR", journal_dir)
        .args(["serve", "--queue-url", queue, "--runbooks", "runbooks"])
        .args(["--seal", seal, "--journal", "dynamodb://firebreak-state"])
        // A lease of 4 s (renewed every 1.3 s); a message comes back 10 s after its last
        // renewal, by when a dead worker's lease has run out.
        .args(["--lease-seconds", "4", "--visibility-timeout", "10"])
        .args(["--wait-seconds", "1", "--health-every", "2"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    if let Some(point) = pause {
        command.env("FIREBREAK_PAUSE", point);
    }
    Worker::new(command.spawn().expect("the firebreak binary starts"), log)
}

/// Whether the process is stopped (SIGSTOP): state `T` in /proc.
fn is_stopped(child: &Child) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
        .ok()
        .and_then(|stat| {
            // `pid (comm) state …`: the state follows the last parenthesis.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
        })
        .is_some_and(|state| state == "T")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a child this test started.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// The one run in `dir`: its id and its local journal.
fn the_run(dir: &Path) -> (String, PathBuf) {
    let path = crate::support::journal::only_journal(dir);
    let run = path.file_stem().unwrap().to_str().unwrap().to_owned();
    (run, path)
}

/// The run's journal as the table holds it.
async fn table_text(
    client: &aws_sdk_dynamodb::Client,
    table: &firebreak::table::TableLocation,
    run: &str,
) -> String {
    let bytes = firebreak::table::journal::export(client, &table.with_run(run))
        .await
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Record types of a JSON Lines journal, in order.
fn kinds(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn counted(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

/// The wire calls signed with `key`, from recorded call `from` on, as `service:Operation`.
fn calls_by(key: &str, from: usize) -> Vec<String> {
    proxy::calls()
        .into_iter()
        .skip(from)
        .filter(|c| c.access_key.as_deref() == Some(key))
        .map(|c| c.name())
        .collect()
}

/// Worker A takes the finding and stops itself between isolation and snapshot; returns A,
/// its journal directory and the run id. The queue's message is then A's, invisible.
async fn a_paused_mid_run(
    queue: &str,
    seal: &str,
    dir: &Path,
) -> (Worker, PathBuf, String, PathBuf) {
    let journals = dir.join("worker-a");
    let log = dir.join("worker-a.log");
    let a = worker(queue, seal, &journals, &log, KEY_A, Some(PAUSE_AT), &[]);
    until(Duration::from_secs(90), "worker A to pause", async || {
        is_stopped(&a)
    })
    .await;
    let (run, _) = the_run(&journals);
    (a, journals, run, log)
}

/// Worker B (its own directory, its own key) until the queue is empty; then SIGTERM.
async fn b_takes_over(sqs: &aws_sdk_sqs::Client, queue: &str, seal: &str, dir: &Path) -> PathBuf {
    let journals = dir.join("worker-b");
    let log = dir.join("worker-b.log");
    let mut b = worker(queue, seal, &journals, &log, KEY_B, None, &[]);
    until(
        Duration::from_secs(180),
        "worker B to empty the queue",
        async || pending(sqs, queue).await == (0, 0),
    )
    .await;
    let code = terminate(&mut b, Duration::from_secs(30));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("\"leases_held\":"), "{said}");
    journals
}

/// The run as the table holds it, checked: it verifies, the local copy of the worker that
/// finished it holds the same bytes, A isolated and B snapshotted — each once.
async fn taken_over_once(
    client: &aws_sdk_dynamodb::Client,
    table: &firebreak::table::TableLocation,
    run: &str,
    b_journals: &Path,
) -> Vec<String> {
    let exported = firebreak::table::journal::export(client, &table.with_run(run))
        .await
        .unwrap();
    let verification = firebreak::journal::verify_bytes(&exported, None);
    assert!(verification.is_intact(), "{verification}");
    // One record stream, two backends: the table and B's working copy, byte for byte.
    let local = std::fs::read(b_journals.join(format!("{run}.jsonl"))).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&local),
        String::from_utf8_lossy(&exported),
        "B's local journal and the table differ"
    );
    let kinds = kinds(&exported);
    assert_eq!(counted(&kinds, "run_started"), 1, "{kinds:?}");
    assert_eq!(counted(&kinds, "lease_taken"), 1, "{kinds:?}");
    let taken = kinds.iter().position(|k| k == "lease_taken").unwrap();
    let isolated = kinds
        .iter()
        .position(|k| k == "step_succeeded")
        .expect("isolation succeeded");
    assert!(isolated < taken, "A isolated before B took over: {kinds:?}");
    assert!(
        String::from_utf8_lossy(&exported).contains("\"status\":\"awaiting_approval\""),
        "the run went on to the stop decision"
    );
    // At the wire: A isolated, B did not isolate again; B snapshotted, once.
    let a = calls_by(KEY_A, 0);
    let b = calls_by(KEY_B, 0);
    assert!(
        a.iter().any(|c| c == "ec2:ModifyNetworkInterfaceAttribute"),
        "{a:?}"
    );
    assert!(
        !b.iter().any(|c| c == "ec2:ModifyNetworkInterfaceAttribute"),
        "B isolated again: {b:?}"
    );
    assert_eq!(proxy::count("ec2:CreateSnapshots"), 1);
    assert!(b.iter().any(|c| c == "ec2:CreateSnapshots"), "{b:?}");
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_run_is_taken_up_by_another_through_the_fence() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let (_instance, evidence, sqs, queue) = one_finding(21).await;
    proxy::reset();
    let dir = tempfile::tempdir().unwrap();
    let (mut a, _, run, _) = a_paused_mid_run(&queue, &evidence.seal, dir.path()).await;
    // SIGKILL: no cleanup, no release — its lease runs out, its message comes back.
    signal(&a, libc::SIGKILL);
    a.wait().unwrap();
    let b_journals = b_takes_over(&sqs, &queue, &evidence.seal, dir.path()).await;
    taken_over_once(&client, &table, &run, &b_journals).await;
    // The CLI reads the run where the workers left it.
    let verify = firebreak()
        .envs(moto::env())
        .args([
            "journal",
            "verify",
            &format!("dynamodb://firebreak-state/{run}"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // A person at a terminal (an empty journal directory) reports on it and denies the stop:
    // the run is taken up from the table, decided, and ends there.
    let laptop = dir.path().join("laptop");
    let report = firebreak()
        .envs(moto::env())
        .args(["report", &format!("dynamodb://firebreak-state/{run}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(text.contains("run taken up by worker"), "{text}");
    let denied = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", &laptop)
        .args(["deny", &format!("dynamodb://firebreak-state/{run}")])
        .args(["--reason", "keep it running for the memory capture"])
        .output()
        .unwrap();
    assert_eq!(
        denied.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&denied.stdout),
        String::from_utf8_lossy(&denied.stderr)
    );
    let exported = firebreak::table::journal::export(&client, &table.with_run(&run))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&exported);
    assert!(firebreak::journal::verify_bytes(&exported, None).is_intact());
    assert_eq!(counted(&kinds(&exported), "lease_taken"), 2, "{text}");
    assert!(text.contains("\"verdict\":\"deny\""), "{text}");
    let finished = text
        .lines()
        .rev()
        .find(|l| l.contains("\"type\":\"run_finished\""))
        .unwrap();
    assert!(finished.contains("\"status\":\"succeeded\""), "{finished}");
    assert_eq!(proxy::count("ec2:StopInstances"), 0);
    assert_eq!(
        std::fs::read(laptop.join(format!("{run}.jsonl"))).unwrap(),
        exported,
        "the laptop's copy is the table's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_makes_no_call_once_continued() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let (_instance, evidence, sqs, queue) = one_finding(22).await;
    proxy::reset();
    let dir = tempfile::tempdir().unwrap();
    let (mut a, _, run, a_log) = a_paused_mid_run(&queue, &evidence.seal, dir.path()).await;
    let b_journals = b_takes_over(&sqs, &queue, &evidence.seal, dir.path()).await;
    let before = kinds(
        &firebreak::table::journal::export(&client, &table.with_run(&run))
            .await
            .unwrap(),
    );

    // A wakes where it stopped — about to snapshot — long after its lease ran out.
    let mark = proxy::calls().len();
    signal(&a, libc::SIGCONT);
    until(
        Duration::from_secs(60),
        "worker A to give the run up",
        async || {
            std::fs::read_to_string(&a_log)
                .unwrap_or_default()
                .contains("\"log\":\"message\"")
        },
    )
    .await;
    let code = terminate(&mut a, Duration::from_secs(30));
    let said = std::fs::read_to_string(&a_log).unwrap();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("no longer this worker's"), "{said}");
    // Nothing after SIGCONT but its own queue's polling: no EC2, no S3, no KMS, not even a
    // DynamoDB write the table would refuse.
    let after: Vec<String> = calls_by(KEY_A, mark)
        .into_iter()
        .filter(|c| !c.starts_with("sqs:"))
        .collect();
    assert_eq!(after, Vec::<String>::new(), "calls after the takeover");
    // The table holds what B wrote, and nothing of A's after it.
    let kinds = taken_over_once(&client, &table, &run, &b_journals).await;
    assert_eq!(kinds, before);
}

/// A person decides a run a worker parked by sending the decision to the workers' queue
/// (`approve --via-queue`). The worker believes the decider the message names only when SQS
/// says that identity sent it: a message naming the responder but sent with another key is
/// refused and changes nothing; the responder's own is journaled as theirs and the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_through_the_queue_counts_only_from_the_person_it_names() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let (_instance, evidence, sqs, queue) = one_finding(23).await;
    proxy::reset();
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("worker");
    let log = dir.path().join("worker.log");
    let mut w = worker(&queue, &evidence.seal, &journals, &log, KEY_B, None, &[]);
    until(Duration::from_secs(120), "the run to park", async || {
        pending(&sqs, &queue).await == (0, 0)
    })
    .await;
    let (run, _) = the_run(&journals);
    let exported = async || table_text(&client, &table, &run).await;
    assert!(
        exported()
            .await
            .contains("\"status\":\"awaiting_approval\"")
    );

    // The responder: an IAM user with an access key; IAM says who is behind the key.
    let iam = aws_sdk_iam::Client::new(&moto::direct_config().await);
    let user = iam
        .create_user()
        .user_name("responder")
        .send()
        .await
        .unwrap();
    let user = user.user().unwrap();
    let key = iam
        .create_access_key()
        .user_name("responder")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    proxy::principals(serde_json::json!({ key.access_key_id(): user.user_id() }));

    // Someone else sends a decision naming the responder: refused, nothing changes.
    let forged = firebreak::worker::message::QueuedDecision {
        run_id: run.clone(),
        verdict: firebreak::journal::event::Verdict::Approve,
        step: None,
        reason: "looks fine to me".into(),
        decider: user.arn().to_owned(),
    };
    sqs.send_message()
        .queue_url(&queue)
        .message_body(forged.body())
        .send()
        .await
        .unwrap();
    until(
        Duration::from_secs(60),
        "the forged decision to be refused",
        async || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("decision_refused")
        },
    )
    .await;
    let after_forgery = exported().await;
    assert!(
        !after_forgery.contains("\"type\":\"decision\""),
        "{after_forgery}"
    );
    assert_eq!(proxy::count("ec2:StopInstances"), 0);

    // The responder approves through the queue with their own credentials.
    let sent = firebreak()
        .envs(moto::env())
        .env("AWS_ACCESS_KEY_ID", key.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", key.secret_access_key())
        .args(["approve", &run, "--via-queue", &queue])
        .args(["--reason", "owner confirmed the instance is compromised"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&sent.stdout);
    assert_eq!(
        sent.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(said.contains(user.arn()), "{said}");
    until(
        Duration::from_secs(120),
        "the approved run to finish",
        async || exported().await.contains("\"status\":\"succeeded\""),
    )
    .await;
    let text = exported().await;
    let decision: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["type"] == "decision")
        .expect("a decision record");
    assert_eq!(decision["verdict"], "approve");
    assert_eq!(decision["channel"], "queue");
    assert_eq!(decision["decided_by"]["arn"], user.arn());
    assert_eq!(decision["decided_by"]["user_id"], user.user_id());
    assert_eq!(proxy::count("ec2:StopInstances"), 1);
    assert!(firebreak::journal::verify_bytes(text.as_bytes(), None).is_intact());
    let code = terminate(&mut w, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{}", std::fs::read_to_string(&log).unwrap());
}

/// A message is held only so long (SQS keeps one invisible 12 hours at most; here 2 s): its
/// run stops at the next step boundary, a resume request carries it on, the finding's message
/// is deleted, and the worker itself takes the request up and finishes the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_held_past_the_limit_goes_on_from_a_resume_request() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let (_instance, evidence, sqs, queue) = one_finding(24).await;
    proxy::reset();
    // The snapshot request takes 4 s, longer than the message may be held.
    proxy::faults(
        9,
        serde_json::json!([{"service": "ec2", "operation": "CreateSnapshots", "fault": "delay", "delay_ms": 4000, "max": 1}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("worker");
    let log = dir.path().join("worker.log");
    let mut w = worker(
        &queue,
        &evidence.seal,
        &journals,
        &log,
        KEY_B,
        None,
        &["--hold-limit", "2", "--resume-delay", "1"],
    );
    until(Duration::from_secs(60), "the run's journal", async || {
        std::fs::read_dir(&journals).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        })
    })
    .await;
    let (run, _) = the_run(&journals);
    let exported = async || table_text(&client, &table, &run).await;
    until(Duration::from_secs(120), "the run to park", async || {
        exported()
            .await
            .contains("\"status\":\"awaiting_approval\"")
            && pending(&sqs, &queue).await == (0, 0)
    })
    .await;
    let code = terminate(&mut w, Duration::from_secs(30));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("\"log\":\"carried_on\""), "{said}");
    let text = exported().await;
    let kinds = kinds(text.as_bytes());
    let interrupted = kinds.iter().position(|k| k == "run_interrupted");
    let resumed = kinds.iter().position(|k| k == "run_resumed");
    assert!(
        matches!((interrupted, resumed), (Some(i), Some(r)) if i < r),
        "{kinds:?}"
    );
    assert_eq!(proxy::count("ec2:CreateSnapshots"), 1);
    assert!(firebreak::journal::verify_bytes(text.as_bytes(), None).is_intact());
}

/// A message whose run keeps failing reaches the dead-letter queue after the redrive policy's
/// receives; once the cause is gone, redriving it (moved back to the queue, as the console's
/// redrive does — moto lacks StartMessageMoveTask, so the test moves it) resumes the same run,
/// which finishes with each effect once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_message_resumes_its_failed_run() {
    let _moto = moto::exclusive().await;
    let (client, table) = table().await;
    let ids = crate::support::sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap().to_owned();
    let evidence = super::custody::seed_evidence(&[]);
    let sqs = aws_sdk_sqs::Client::new(&moto::direct_config().await);
    let (queue, dlq) = super::serve::queues(&sqs, 2).await;
    sqs.send_message()
        .queue_url(&queue)
        .message_body(super::serve::finding(&instance, 25))
        .send()
        .await
        .unwrap();
    proxy::reset();
    // EC2 refuses every snapshot: the run fails at that step, every time.
    proxy::faults(
        11,
        serde_json::json!([{"service": "ec2", "operation": "CreateSnapshots", "fault": "error500"}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("worker");
    let log = dir.path().join("worker.log");
    let mut w = worker(&queue, &evidence.seal, &journals, &log, KEY_B, None, &[]);
    until(
        Duration::from_secs(180),
        "the message to reach the DLQ",
        async || pending(&sqs, &dlq).await.0 == 1 && pending(&sqs, &queue).await == (0, 0),
    )
    .await;
    let (run, _) = the_run(&journals);
    let exported = async || table_text(&client, &table, &run).await;
    let failed = exported().await;
    assert!(failed.contains("\"status\":\"failed\""), "{failed}");
    assert!(!failed.contains("\"status\":\"awaiting_approval\""));

    // The cause is gone; the message is redriven.
    proxy::faults(11, serde_json::json!([]));
    let dead = sqs.receive_message().queue_url(&dlq).send().await.unwrap();
    let dead = &dead.messages()[0];
    sqs.send_message()
        .queue_url(&queue)
        .message_body(dead.body().unwrap())
        .send()
        .await
        .unwrap();
    sqs.delete_message()
        .queue_url(&dlq)
        .receipt_handle(dead.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    until(
        Duration::from_secs(120),
        "the redriven run to park",
        async || {
            exported()
                .await
                .contains("\"status\":\"awaiting_approval\"")
                && pending(&sqs, &queue).await == (0, 0)
        },
    )
    .await;
    let code = terminate(&mut w, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{}", std::fs::read_to_string(&log).unwrap());
    // The same run, resumed; one snapshot request got through; no second run.
    let text = exported().await;
    assert!(text.contains("\"type\":\"run_resumed\""), "{text}");
    assert_eq!(the_run(&journals).0, run);
    let made = proxy::calls()
        .iter()
        .filter(|c| c.name() == "ec2:CreateSnapshots" && c.fault.is_none() && c.status == Some(200))
        .count();
    assert_eq!(made, 1);
    assert!(firebreak::journal::verify_bytes(text.as_bytes(), None).is_intact());
}

/// A dead worker's message must come back only once its run's lease has run out, so a worker
/// with the table refuses a visibility timeout that is not more than twice the lease; and
/// `--journal` names a table, not a run. Both before any AWS call (exit 2).
#[test]
fn a_worker_refuses_a_visibility_its_leases_could_outlive() {
    let serve = |extra: &[&str]| {
        let out = firebreak()
            .args([
                "serve",
                "--queue-url",
                "https://sqs.us-east-1.amazonaws.com/1/q",
            ])
            .args(["--seal", "s3://firebreak-evidence/cases"])
            .args(extra)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, said) = serve(&[
        "--journal",
        "dynamodb://firebreak-state",
        "--visibility-timeout",
        "8",
        "--lease-seconds",
        "4",
    ]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("--visibility-timeout (8)") && said.contains("--lease-seconds (4)"),
        "{said}"
    );
    let (code, said) = serve(&[
        "--journal",
        "dynamodb://firebreak-state/20261202T100000Z-3f9a2c",
    ]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("give the table alone"), "{said}");
}
