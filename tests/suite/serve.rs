//! `firebreak serve` as an EventBridge-fed deployment runs it, against moto (SQS with a
//! redrive policy, S3 Object Lock for the seal, the DynamoDB table) through the test proxy:
//! two workers that share no disk, only the table, on one queue; 50 messages for 40 instances
//! in two VPCs — some delivered twice, one malformed — contain each instance once (isolated,
//! snapshotted, parked at the stop decision), every journal in the table verifies and equals
//! its worker's local copy, the malformed message ends in the dead-letter queue without its
//! body reaching a log, and both workers exit 0 on SIGTERM. The other tests here run workers
//! on one journal directory (the mode without a table).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use super::custody::seed_evidence;
use crate::support::worker::Worker;
use crate::support::{firebreak, journal, moto, output, proxy, sandbox};

/// A queue with a dead-letter queue after `max_receives` receives; (queue URL, DLQ URL).
pub(crate) async fn queues(sqs: &aws_sdk_sqs::Client, max_receives: u32) -> (String, String) {
    let create = async |name: &str, redrive: Option<String>| {
        sqs.create_queue()
            .queue_name(name)
            .set_attributes(redrive.map(|r| [(QueueAttributeName::RedrivePolicy, r)].into()))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned()
    };
    let dlq = create("firebreak-findings-dlq", None).await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive =
        json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}).to_string();
    let queue = create("firebreak-findings", Some(redrive)).await;
    (queue, dlq)
}

/// A GuardDuty finding about `instance`, with its own event and finding ids.
pub(crate) fn finding(instance: &str, n: usize) -> String {
    std::fs::read_to_string("tests/fixtures/events/guardduty-ec2.json")
        .unwrap()
        .replace("INSTANCE_ID", instance)
        .replace(
            "c8c4daa7-a20c-2f03-0070-b7393dd542ad",
            &format!("c8c4daa7-a20c-2f03-0070-{n:012}"),
        )
        .replace("16afba5c5c43e07c9e3e5e2e544e95df", &format!("{n:032x}"))
}

/// Messages visible (or delayed: a resume request on its way) and in flight.
pub(crate) async fn pending(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attributes = attributes.attributes().unwrap();
    let number = |name: QueueAttributeName| {
        attributes
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        number(QueueAttributeName::ApproximateNumberOfMessages)
            + number(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

fn worker(queue: &str, seal: &str, journal_dir: &Path, log: &Path) -> Worker {
    worker_with(queue, seal, journal_dir, log, &[])
}

fn worker_with(queue: &str, seal: &str, journal_dir: &Path, log: &Path, extra: &[&str]) -> Worker {
    let child = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_DIR", journal_dir)
        .args(["serve", "--queue-url", queue, "--runbooks", "runbooks"])
        .args(["--seal", seal, "--concurrency", "4"])
        .args(if extra.contains(&"--visibility-timeout") {
            &[][..]
        } else {
            &["--visibility-timeout", "4"][..]
        })
        .args(["--wait-seconds", "1", "--health-every", "2"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("the firebreak binary starts");
    Worker::new(child, log)
}

/// SIGTERM, then its exit code (at most `within`).
pub(crate) fn terminate(child: &mut Child, within: Duration) -> Option<i32> {
    // SAFETY: kill(2) on a child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_contain_forty_instances_once_each_and_stop_cleanly() {
    let _moto = moto::exclusive().await;
    let (table_client, table) = super::journal_table::table().await;
    let fleet = sandbox::seed_fleet(40, 2);
    let evidence = seed_evidence(&[]);
    let sqs = aws_sdk_sqs::Client::new(&moto::direct_config().await);
    let (queue, dlq) = queues(&sqs, 2).await;
    let instances = crate::fleet::ids(&fleet);
    assert_eq!(instances.len(), 40);
    // 40 findings, 9 of them delivered twice (EventBridge and SQS deliver at least once), and
    // one message that is not an event at all (with something secret-looking in it).
    let mut bodies: Vec<String> = instances
        .iter()
        .enumerate()
        .map(|(n, id)| finding(id, n))
        .collect();
    bodies.extend((0..9).map(|n| finding(&instances[n * 4], n * 4)));
    bodies.push("password=hunter2 this is no event".into());
    assert_eq!(bodies.len(), 50);
    for body in &bodies {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    proxy::reset();
    // A table that answers one write in twenty 3.5 s late, past the test's 4-second leases
    // (renewed every 1.3 s, promised for 3): runs lose their leases mid-way. The cold CI run
    // did this by load alone, and a finding ended in the dead-letter queue; each such run must
    // be carried on, and the message that started it not spent.
    proxy::faults(
        5,
        json!([{"service": "dynamodb", "operation": "UpdateItem", "fault": "delay",
                "delay_ms": 3500, "rate": 0.05}]),
    );

    let dir = tempfile::tempdir().unwrap();
    // Each worker its own disk: only the table is shared.
    let journals = [dir.path().join("runs-1"), dir.path().join("runs-2")];
    let logs = [
        dir.path().join("worker-1.log"),
        dir.path().join("worker-2.log"),
    ];
    let shared = [
        "--journal",
        "dynamodb://firebreak-state",
        "--lease-seconds",
        "4",
        "--visibility-timeout",
        "10",
        "--resume-delay",
        "1",
    ];
    let mut workers: Vec<Worker> = logs
        .iter()
        .zip(&journals)
        .map(|(log, journals)| worker_with(&queue, &evidence.seal, journals, log, &shared))
        .collect();

    // Until the queue is empty (nothing delayed or in flight either) and the malformed message
    // is in the dead-letter queue.
    let deadline = Instant::now() + Duration::from_secs(420);
    loop {
        let main = pending(&sqs, &queue).await;
        let dead = pending(&sqs, &dlq).await;
        if main == (0, 0) && dead.0 >= 1 {
            assert_eq!(
                dead.0,
                1,
                "a finding's message reached the dead-letter queue; logs in {}",
                dir.path().display()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue {main:?}, dead-letter queue {dead:?} after 420 s; logs in {}",
            dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let codes: Vec<Option<i32>> = workers
        .iter_mut()
        .map(|w| terminate(w, Duration::from_secs(60)))
        .collect();
    let logged: Vec<String> = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap())
        .collect();
    assert_eq!(codes, [Some(0), Some(0)], "{}", logged.join("\n---\n"));

    // Each instance: one run, which isolated it and snapshotted its volumes, and waits for the
    // stop decision; every journal verifies.
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Each run's local copies: one, or two when the other worker saw a duplicate (it copies
    // the run from the table) or took the run over when its holder's lease ran out (the
    // holder's copy stops where it lost the lease).
    let mut copies: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for path in journals
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
    {
        let run = path.file_stem().unwrap().to_str().unwrap().to_owned();
        copies.entry(run).or_default().push(path);
    }
    for (run, paths) in &copies {
        // The run as the table holds it: verified; every local copy a prefix of it, and one
        // copy all of it, byte for byte.
        let exported = firebreak::table::journal::export(&table_client, &table.with_run(run))
            .await
            .unwrap();
        let verification = firebreak::journal::verify_bytes(&exported, None);
        assert!(verification.is_intact(), "{run}: {verification}");
        let texts: Vec<String> = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert!(
            texts.iter().all(|t| exported.starts_with(t.as_bytes())),
            "{run}: a local copy is not a prefix of the table's"
        );
        let Some(text) = texts.iter().find(|t| t.as_bytes() == &exported[..]) else {
            panic!("{run}: no local copy holds the whole run the table holds")
        };
        let path = &paths[texts.iter().position(|t| t == text).unwrap()];
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let instance = records[0]["parameters"]["instance_id"]
            .as_str()
            .unwrap()
            .to_owned();
        for step in ["isolate", "snapshot"] {
            assert!(
                records
                    .iter()
                    .any(|r| r["type"] == "step_succeeded" && r["step"] == step),
                "{}: no {step}",
                path.display()
            );
        }
        // Sealed: a worker's disk is not evidence.
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "sealed" && r["what"] == "journal"),
            "{}: never sealed",
            path.display()
        );
        let finished = records
            .iter()
            .rev()
            .find(|r| r["type"] == "run_finished")
            .unwrap();
        assert_eq!(
            finished["status"],
            "awaiting_approval",
            "{}",
            path.display()
        );
        runs.entry(instance)
            .or_default()
            .push(path.display().to_string());
    }
    for instance in &instances {
        assert_eq!(
            runs.get(instance).map(Vec::len),
            Some(1),
            "{instance}: {:?}",
            runs.get(instance)
        );
    }
    // At the wire, one multi-volume snapshot request per instance; in EC2, one snapshot of
    // each volume, never two.
    assert_eq!(proxy::count("ec2:CreateSnapshots"), 40);
    assert_eq!(
        crate::fleet::assert_one_snapshot_per_volume(&fleet, None).await,
        80
    );

    // The malformed message is in the dead-letter queue; the logs name it, never its body.
    let dead = sqs.receive_message().queue_url(&dlq).send().await.unwrap();
    assert_eq!(
        dead.messages()[0].body(),
        Some("password=hunter2 this is no event")
    );
    let all = logged.join("\n");
    assert!(!all.contains("hunter2"), "a message body reached a log");
    assert!(
        all.contains("\"log\":\"malformed\"") || all.contains("malformed: not JSON"),
        "{all}"
    );
    assert!(all.contains("\"log\":\"health\""), "{all}");
    // Every SQS and DynamoDB call the workers made is one `policy --worker` grants.
    let declared: Vec<&str> = firebreak::actions::WORKER_CALLS
        .iter()
        .map(|c| c.call)
        .collect();
    let worker_calls: std::collections::BTreeSet<String> = proxy::calls()
        .iter()
        .filter(|c| c.service == "sqs" || c.service == "dynamodb")
        .map(|c| c.name())
        .collect();
    for call in &worker_calls {
        assert!(
            declared.contains(&call.as_str()),
            "{call} is not a declared worker call"
        );
    }
    for call in [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ] {
        assert!(
            worker_calls.contains(call),
            "{call} never made: {worker_calls:?}"
        );
    }
    // Runs lost their leases to the slow table, and were carried on by resume requests.
    assert!(
        all.contains("\"outcome\":\"lease_lost\"") && all.contains("\"log\":\"carried_on\""),
        "no run lost its lease: the slow table did not test what it is here for"
    );
    // Each was carried on no sooner than its lost lease ran out in the table (4 s; the workers'
    // own --resume-delay is 1 s): a write sent just before the fence went down lands first.
    let carried: Vec<&str> = all
        .lines()
        .filter(|line| line.contains("\"log\":\"carried_on\""))
        .collect();
    for line in &carried {
        let delay = serde_json::from_str::<serde_json::Value>(line).unwrap()["delay_seconds"]
            .as_u64()
            .unwrap();
        assert!(delay >= 4, "carried on before its lease ran out: {line}");
    }
    // Both workers took messages.
    for (log, text) in logs.iter().zip(&logged) {
        assert!(
            text.contains("\"disposition\":\"deleted\""),
            "{} deleted nothing:\n{text}",
            log.display()
        );
    }
}

/// One instance (the sandbox's web-1), the evidence bucket, and a queue holding one finding
/// about the instance: (instance, evidence, SQS client, queue URL).
pub(crate) async fn one_finding(
    n: usize,
) -> (
    String,
    crate::custody::Evidence,
    aws_sdk_sqs::Client,
    String,
) {
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap().to_owned();
    let evidence = seed_evidence(&[]);
    let sqs = aws_sdk_sqs::Client::new(&moto::direct_config().await);
    let (queue, _dlq) = queues(&sqs, 5).await;
    sqs.send_message()
        .queue_url(&queue)
        .message_body(finding(&instance, n))
        .send()
        .await
        .unwrap();
    (instance, evidence, sqs, queue)
}

/// Waits until `done` holds, polling every 200 ms, at most `within`.
pub(crate) async fn until(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every receive answered 2.5 s late (a loaded machine, a slow network), past the worker's
/// 2-second health line: the health line must not cancel a receive in flight. It did, and SQS
/// (here moto, behind the proxy, which forwards a delayed call whoever waits for it) had
/// already handed the messages out: each came back only after its visibility timeout, a
/// receive spent, until the dead-letter queue took it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receive_is_not_cut_short_by_the_health_line() {
    let _moto = moto::exclusive().await;
    let (_instance, evidence, sqs, queue) = one_finding(11).await;
    proxy::faults(
        11,
        json!([{"service": "sqs", "operation": "ReceiveMessage", "fault": "delay",
                "delay_ms": 2500}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let mut worker = worker(&queue, &evidence.seal, &dir.path().join("runs"), &log);
    until(Duration::from_secs(90), "the queue to empty", async || {
        pending(&sqs, &queue).await == (0, 0)
    })
    .await;
    let code = terminate(&mut worker, Duration::from_secs(30));
    proxy::faults(11, json!([]));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("\"log\":\"health\""), "{said}");
    // Handled on its first receive, and done.
    let handled: Vec<Value> = said
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["log"] == "message")
        .collect();
    assert_eq!(handled.len(), 1, "{said}");
    assert_eq!(handled[0]["receive_count"], 1, "{said}");
    assert_eq!(handled[0]["disposition"], "deleted", "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_mid_run_releases_its_message_and_another_resumes_the_run() {
    let _moto = moto::exclusive().await;
    let (_instance, evidence, sqs, queue) = one_finding(7).await;
    // The snapshot request takes 4 s: the worker is stopped while it is in flight.
    proxy::faults(
        3,
        json!([{"service": "ec2", "operation": "CreateSnapshots", "fault": "delay", "delay_ms": 4000}]),
    );
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("runs");
    let first_log = dir.path().join("worker-1.log");
    let mut first = worker(&queue, &evidence.seal, &journals, &first_log);
    until(
        Duration::from_secs(60),
        "the snapshot request",
        async || proxy::count("ec2:CreateSnapshots") > 0,
    )
    .await;
    let code = terminate(&mut first, Duration::from_secs(30));
    let log = std::fs::read_to_string(&first_log).unwrap();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("\"disposition\":\"released\""), "{log}");
    // Visible again at once, for another worker.
    assert_eq!(pending(&sqs, &queue).await, (1, 0));

    proxy::faults(3, json!([]));
    let second_log = dir.path().join("worker-2.log");
    let mut second = worker(&queue, &evidence.seal, &journals, &second_log);
    until(Duration::from_secs(120), "the queue to empty", async || {
        pending(&sqs, &queue).await == (0, 0)
    })
    .await;
    let code = terminate(&mut second, Duration::from_secs(30));
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert_eq!(code, Some(0), "{log}");

    // One run: interrupted at the step boundary after the snapshot, resumed by the other
    // worker, parked at the stop decision; the snapshot was requested once.
    let file = journal::only_journal(&journals);
    let text = std::fs::read_to_string(&file).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let interrupted = kinds.iter().position(|k| k == "run_interrupted");
    let resumed = kinds.iter().position(|k| k == "run_resumed");
    assert!(
        matches!((interrupted, resumed), (Some(i), Some(r)) if i < r),
        "{kinds:?}"
    );
    assert!(text.contains("\"status\":\"awaiting_approval\""), "{text}");
    assert_eq!(proxy::count("ec2:CreateSnapshots"), 1);
    assert!(firebreak::journal::verify(&file, None).unwrap().is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_needs_a_seal_and_reads_its_journal_key_from_parameter_store() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = ids["instance_id"].as_str().unwrap().to_owned();
    let evidence = seed_evidence(&[]);
    let direct = moto::direct_config().await;
    let ssm = aws_sdk_ssm::Client::new(&direct);
    let key = "journal-key-7f3a9c0d5e1b";
    for (name, kind, value) in [
        (
            "/firebreak/journal-key",
            aws_sdk_ssm::types::ParameterType::SecureString,
            key,
        ),
        (
            "/firebreak/plain",
            aws_sdk_ssm::types::ParameterType::String,
            key,
        ),
    ] {
        ssm.put_parameter()
            .name(name)
            .r#type(kind)
            .value(value)
            .send()
            .await
            .unwrap();
    }
    let sqs = aws_sdk_sqs::Client::new(&direct);
    let (queue, _dlq) = queues(&sqs, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("runs");

    // Without a seal a worker does not start: its disk is not evidence.
    let unsealed = firebreak()
        .envs(moto::env())
        .args(["serve", "--queue-url", &queue])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&unsealed.stderr);
    assert_eq!(unsealed.status.code(), Some(2), "{said}");
    assert!(said.contains("--seal"), "{said}");
    // From the environment: refused, and the key is not repeated.
    let from_env = firebreak()
        .envs(moto::env())
        .env("FIREBREAK_JOURNAL_KEY", key)
        .args(["serve", "--queue-url", &queue, "--seal", &evidence.seal])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&from_env.stderr);
    assert_eq!(from_env.status.code(), Some(2), "{said}");
    assert!(
        said.contains("--journal-key-parameter") && !said.contains(key),
        "{said}"
    );
    // A parameter that is not a SecureString: refused.
    let plain = firebreak()
        .envs(moto::env())
        .args(["serve", "--queue-url", &queue, "--seal", &evidence.seal])
        .args(["--journal-key-parameter", "/firebreak/plain"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(2), "{said}");
    assert!(
        said.contains("not a SecureString") && !said.contains(key),
        "{said}"
    );

    // From Parameter Store: the run's journal is chained with that key.
    sqs.send_message()
        .queue_url(&queue)
        .message_body(finding(&instance, 11))
        .send()
        .await
        .unwrap();
    let log = dir.path().join("worker.log");
    let mut worker = worker_with(
        &queue,
        &evidence.seal,
        &journals,
        &log,
        &["--journal-key-parameter", "/firebreak/journal-key"],
    );
    until(Duration::from_secs(120), "the queue to empty", async || {
        pending(&sqs, &queue).await == (0, 0)
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        terminate(&mut worker, Duration::from_secs(30)),
        Some(0),
        "{text}"
    );
    assert!(!text.contains(key), "the key reached the log");
    let run = journal::only_journal(&journals);
    let with_key = firebreak::journal::verify(&run, Some(key.as_bytes())).unwrap();
    assert!(with_key.is_intact(), "{with_key}");
    let without = firebreak::journal::verify(&run, None).unwrap();
    assert!(
        !without.is_intact(),
        "an HMAC chain verified without its key"
    );
    assert!(!std::fs::read_to_string(&run).unwrap().contains(key));

    // A key kept in Secrets Manager is read through Parameter Store's reference path.
    let made = std::process::Command::new(moto::python())
        .args(["-c", "import boto3,sys; boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing').create_secret(Name='firebreak/journal-key', SecretString=sys.argv[2])"])
        .args([moto::upstream(), key])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let from_secret = firebreak::worker::journal_key::from_parameter(
        &ssm,
        "/aws/reference/secretsmanager/firebreak/journal-key",
    )
    .await
    .unwrap();
    assert_eq!(from_secret, key.as_bytes());
}

/// The SOC loop with a deployed worker: the run it parked at the stop decision lives on the
/// worker's disk and in the seal. A person approves it from their own machine: the journal is
/// taken from the seal (its chain checked), the run goes on there and stops the instance, and
/// the seal then holds the longer journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_a_worker_parked_is_approved_from_another_machine_through_the_seal() {
    let _moto = moto::exclusive().await;
    let (instance, evidence, sqs, queue) = one_finding(21).await;
    let dir = tempfile::tempdir().unwrap();
    let worker_dir = dir.path().join("worker");
    let log = dir.path().join("worker.log");
    let mut worker = worker(&queue, &evidence.seal, &worker_dir, &log);
    until(Duration::from_secs(120), "the queue to empty", async || {
        pending(&sqs, &queue).await == (0, 0)
    })
    .await;
    assert_eq!(terminate(&mut worker, Duration::from_secs(30)), Some(0));
    let parked = journal::only_journal(&worker_dir);
    let run_id = parked.file_stem().unwrap().to_str().unwrap().to_owned();
    let ec2 = sandbox::ec2().await;
    assert_eq!(
        super::unattended::instance_state(&ec2, &instance).await,
        "running"
    );

    // On the person's machine there is no journal: approve says where to look.
    let laptop = dir.path().join("laptop");
    let approve = |extra: &[&str]| {
        output(
            firebreak()
                .envs(moto::env())
                .args(["approve", &run_id, "--reason", "memory captured; stop it"])
                .arg("--journal-dir")
                .arg(&laptop)
                .args(extra),
        )
    };
    let missing = approve(&[]);
    assert_ne!(missing.code, Some(0), "{}", missing.stderr);
    // From the seal: taken, checked, and carried on with the person's decision.
    let approved = approve(&[
        "--from-seal",
        &evidence.seal,
        "--runbook",
        "runbooks/ec2-instance-compromise.yaml",
    ]);
    assert_eq!(
        approved.code,
        Some(0),
        "{}\n{}",
        approved.stdout,
        approved.stderr
    );
    assert!(
        approved.stderr.contains("from s3://"),
        "{}",
        approved.stderr
    );
    assert_eq!(
        super::unattended::instance_state(&ec2, &instance).await,
        "stopped"
    );
    let local = laptop.join(format!("{run_id}.jsonl"));
    let text = std::fs::read_to_string(&local).unwrap();
    assert!(text.contains("\"type\":\"decision\"") && text.contains("\"status\":\"succeeded\""));
    // The seal holds the whole run now, and the laptop's journal agrees with it.
    let against = output(
        firebreak()
            .envs(moto::env())
            .args(["journal", "verify"])
            .arg(&local)
            .args(["--against", &format!("{}/{run_id}", evidence.seal)]),
    );
    assert_eq!(
        against.code,
        Some(0),
        "{}\n{}",
        against.stdout,
        against.stderr
    );
}
