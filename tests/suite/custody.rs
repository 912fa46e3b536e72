//! Chain of custody as a responder meets it, against moto (S3 Object Lock, KMS sign/verify)
//! through the built binary: a containment run with `--seal` and `--sign-key` leaves its
//! journal, signed statements and evidence in COMPLIANCE retention; `journal verify s3://…
//! --kms` passes; a local journal edited, or truncated, and re-chained so that its own chain
//! verifies is caught by `--against` and `--kms`; an upload failure injected through the proxy
//! leaves containment alone and `journal seal` completes the seal later.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::unattended::instance_state;
use crate::support::{cli_on_moto, firebreak, moto, output, proxy, sandbox};

/// What scripts/seed-evidence.py made (deploy/evidence.yaml's bucket and key, in moto).
pub(crate) struct Evidence {
    pub seal: String,
    pub sign_key: String,
    pub bucket: String,
}

pub(crate) fn seed_evidence(extra: &[&str]) -> Evidence {
    let out = std::process::Command::new(moto::python())
        .arg(crate::support::repo("scripts/seed-evidence.py"))
        .args(["--endpoint", moto::upstream()])
        .args(extra)
        .output()
        .expect("seed-evidence.py runs");
    assert!(
        out.status.success(),
        "seed-evidence.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seeded: Value = serde_json::from_slice(&out.stdout).unwrap();
    Evidence {
        seal: seeded["seal"].as_str().unwrap().to_owned(),
        sign_key: seeded["sign_key"].as_str().unwrap().to_owned(),
        bucket: seeded["bucket"].as_str().unwrap().to_owned(),
    }
}

/// `run runbooks/ec2-instance-compromise.yaml` on the seeded instance, then `extra`.
fn contain_args(ids: &Value, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "runbooks/ec2-instance-compromise.yaml".into(),
        "-p".into(),
        format!("instance_id={}", ids["instance_id"].as_str().unwrap()),
        "-p".into(),
        "case_id=custody-1".into(),
        "-p".into(),
        format!(
            "quarantine_profile_arn={}",
            ids["quarantine_profile_arn"].as_str().unwrap()
        ),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// That run through the CLI against moto (`--output json`).
fn contain(dir: &Path, ids: &Value, extra: &[&str]) -> (i32, Value, String) {
    let args = contain_args(ids, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli_on_moto(dir, &args)
}

/// `firebreak ARGS` against moto (through the proxy), without `--output json`.
fn fb(args: &[&str]) -> crate::support::Output {
    output(firebreak().envs(moto::env()).args(args))
}

async fn s3() -> aws_sdk_s3::Client {
    let config = moto::direct_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

fn records(journal: &Path) -> Vec<Map<String, Value>> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes records as a journal whose own chain verifies (what someone with the file and no
/// key can always do to a SHA-256 chain): `prev` and `hash` recomputed line by line.
fn rechain(records: &[Map<String, Value>], path: &Path) {
    let mut text = String::new();
    let mut prev = "0".repeat(64);
    for (index, record) in records.iter().enumerate() {
        let mut record = record.clone();
        record.insert("seq".into(), json!(index + 1));
        record.remove("hash");
        record.insert("prev".into(), json!(prev));
        let body = serde_json::to_string(&record).unwrap();
        let hash = firebreak::journal::chain::digest(None, body.as_bytes());
        let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
        prev = firebreak::journal::chain::digest(None, line.as_bytes());
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn of_type<'a>(records: &'a [Map<String, Value>], kind: &str) -> Vec<&'a Map<String, Value>> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

#[tokio::test]
async fn a_sealed_signed_containment_verifies_from_the_seal_and_edits_are_caught() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let evidence = seed_evidence(&[]);
    let dir = tempfile::tempdir().unwrap();
    let instance = ids["instance_id"].as_str().unwrap().to_owned();

    // Unattended up to the stop: the run parks (exit 4), sealed and signed at that end.
    let seal_args = ["--seal", &evidence.seal, "--sign-key", &evidence.sign_key];
    let (code, outcome, stderr) = contain(dir.path(), &ids, &seal_args);
    assert_eq!(code, 4, "{stderr}\n{outcome:#}");
    assert_eq!(outcome["seal"]["failures"], json!([]), "{outcome:#}");
    assert_eq!(outcome["seal"]["signed"], true, "{outcome:#}");
    let run_id = outcome["run_id"].as_str().unwrap().to_owned();
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());

    // A person approves: the resume seals where the run chose, and signs the new end.
    let (code, outcome, stderr) =
        cli_on_moto(dir.path(), &["approve", &run_id, "--reason", "stop it"]);
    assert_eq!(code, 0, "{stderr}\n{outcome:#}");
    assert_eq!(outcome["seal"]["failures"], json!([]), "{outcome:#}");
    let ec2 = sandbox::ec2().await;
    assert_eq!(instance_state(&ec2, &instance).await, "stopped");

    let local = records(&journal);
    let signed = of_type(&local, "signed");
    assert_eq!(signed.len(), 2, "one statement per end (parked, finished)");
    assert_eq!(signed[0]["statement"]["status"], "awaiting_approval");
    assert_eq!(signed[1]["statement"]["status"], "succeeded");

    // Everything is in the bucket, each object under COMPLIANCE retention, and stays there.
    let s3 = s3().await;
    let prefix = format!("cases/{run_id}/");
    let stored = keys(&s3, &evidence.bucket, &prefix).await;
    let named = |part: &str| stored.iter().filter(|k| k.contains(part)).count();
    assert!(named("/journal.") >= 3, "{stored:#?}");
    assert_eq!(named("/statement."), 2, "{stored:#?}");
    let artifacts = of_type(&local, "evidence");
    assert!(
        !artifacts.is_empty(),
        "the runbook keeps evidence (console output)"
    );
    for artifact in &artifacts {
        let path = artifact["artifact"]["path"].as_str().unwrap();
        let name = Path::new(path).file_name().unwrap().to_string_lossy();
        let key = format!("{prefix}evidence/{name}");
        let object = s3
            .get_object()
            .bucket(&evidence.bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key} is not in the seal: {e:?}"));
        let body = object.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), std::fs::read(path).unwrap(), "{key}");
    }
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    for key in &stored {
        // (moto answers the SDK's GetObjectRetention with the object's body: HeadObject says
        // the same.)
        let head = s3
            .head_object()
            .bucket(&evidence.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.object_lock_mode().unwrap().as_str(),
            "COMPLIANCE",
            "{key}"
        );
        assert!(
            head.object_lock_retain_until_date().unwrap() > &now,
            "{key}"
        );
    }
    let version = s3
        .list_object_versions()
        .bucket(&evidence.bucket)
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    let first = &version.versions()[0];
    let deleted = s3
        .delete_object()
        .bucket(&evidence.bucket)
        .key(first.key().unwrap())
        .version_id(first.version_id().unwrap())
        .send()
        .await;
    assert!(deleted.is_err(), "COMPLIANCE retention refuses deletes");

    // The case report shows the custody chain: where, which objects, the statements.
    let journal_arg = journal.to_str().unwrap();
    let report = fb(&["report", journal_arg]);
    assert_eq!(report.code, Some(0), "{}", report.stderr);
    assert!(
        report.stdout.contains("## Chain of custody"),
        "{}",
        report.stdout
    );
    assert!(report.stdout.contains(&evidence.seal), "{}", report.stdout);
    assert_eq!(
        report.stdout.matches("- Signed: records").count(),
        2,
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("| evidence | `s3://"),
        "{}",
        report.stdout
    );
    let html = dir.path().join("case.html");
    let html_arg = html.to_str().unwrap();
    let written = fb(&["report", journal_arg, "--format", "html", "-o", html_arg]);
    assert_eq!(written.code, Some(0), "{}", written.stderr);
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("<h2>Chain of custody</h2>")
    );

    // Verified from the seal alone: chain, statement, signature (kms:Verify), objects.
    let location = format!("{}/{run_id}", evidence.seal);
    let remote = fb(&["journal", "verify", &location, "--kms"]);
    assert_eq!(remote.code, Some(0), "{}\n{}", remote.stdout, remote.stderr);
    assert!(
        remote.stdout.contains("signature: valid (kms:Verify)"),
        "{}",
        remote.stdout
    );
    assert!(
        remote.stdout.contains("sealed objects:"),
        "{}",
        remote.stdout
    );

    // …and offline with the key's public half.
    let kms = aws_sdk_kms::Client::new(&moto::direct_config().await);
    let public = kms
        .get_public_key()
        .key_id(&evidence.sign_key)
        .send()
        .await
        .unwrap();
    let key_file = dir.path().join("signing-key.der");
    std::fs::write(&key_file, public.public_key().unwrap().as_ref()).unwrap();
    let key_arg = key_file.to_str().unwrap();
    let offline = fb(&["journal", "verify", &location, "--public-key", key_arg]);
    assert_eq!(offline.code, Some(0), "{}", offline.stdout);

    // The local file agrees with its seal and its statement.
    let agreed = fb(&[
        "journal",
        "verify",
        journal_arg,
        "--kms",
        "--against",
        &location,
    ]);
    assert_eq!(agreed.code, Some(0), "{}\n{}", agreed.stdout, agreed.stderr);
    assert!(
        agreed.stdout.contains("against: agrees"),
        "{}",
        agreed.stdout
    );

    // Edited and re-chained: its own chain verifies, the seal and the signature do not.
    let mut edited = local.clone();
    let started = edited
        .iter_mut()
        .find(|r| r["type"] == "run_started")
        .unwrap();
    started.insert("user".into(), json!("someone-else"));
    let edited_path = dir.path().join("edited.jsonl");
    rechain(&edited, &edited_path);
    let edited_arg = edited_path.to_str().unwrap();
    let plain = fb(&["journal", "verify", edited_arg]);
    assert_eq!(
        plain.code,
        Some(0),
        "a re-chained file fools the chain alone: {}",
        plain.stdout
    );
    let against = fb(&["journal", "verify", edited_arg, "--against", &location]);
    assert_eq!(against.code, Some(2), "{}", against.stdout);
    assert!(
        against.stdout.contains("record 1 differs"),
        "{}",
        against.stdout
    );
    let signature = fb(&["journal", "verify", edited_arg, "--kms"]);
    assert_eq!(signature.code, Some(2), "{}", signature.stdout);
    assert!(
        signature.stdout.contains("changed after it was signed"),
        "{}",
        signature.stdout
    );

    // Truncated before the stop and re-chained with a run_finished of its own: it verifies
    // alone and looks complete, but it lost records the seal holds and no statement signs it.
    let stop = local
        .iter()
        .position(|r| r["type"] == "step_started" && r["step"] == "stop")
        .unwrap();
    let mut truncated: Vec<Map<String, Value>> = local[..stop].to_vec();
    let mut finished = of_type(&local, "run_finished")
        .last()
        .unwrap()
        .to_owned()
        .clone();
    finished.insert("head".into(), Value::Null);
    truncated.push(finished);
    let truncated_path = dir.path().join("truncated.jsonl");
    rechain(&truncated, &truncated_path);
    let truncated_arg = truncated_path.to_str().unwrap();
    let plain = fb(&["journal", "verify", truncated_arg]);
    assert_eq!(plain.code, Some(0), "{}", plain.stdout);
    let against = fb(&["journal", "verify", truncated_arg, "--against", &location]);
    assert_eq!(against.code, Some(2), "{}", against.stdout);
    assert!(against.stdout.contains("DISAGREES"), "{}", against.stdout);
    let signature = fb(&["journal", "verify", truncated_arg, "--kms"]);
    assert_eq!(signature.code, Some(2), "{}", signature.stdout);
}

#[tokio::test]
async fn an_upload_failure_leaves_containment_alone_and_journal_seal_completes_it() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let evidence = seed_evidence(&[]);
    let dir = tempfile::tempdir().unwrap();
    let instance = ids["instance_id"].as_str().unwrap().to_owned();

    // Every upload fails (the SDK retries each, then gives up): the bucket is unreachable.
    proxy::reset();
    proxy::faults(
        17,
        json!([{"service": "s3", "operation": "PutObject", "fault": "error500", "rate": 1.0}]),
    );
    let seal_args = [
        "--yes",
        "--seal",
        &evidence.seal,
        "--sign-key",
        &evidence.sign_key,
    ];
    let (code, outcome, stderr) = contain(dir.path(), &ids, &seal_args);
    proxy::faults(17, json!([]));
    assert_eq!(
        code, 0,
        "containment does not wait on the seal: {stderr}\n{outcome:#}"
    );
    assert_eq!(outcome["status"], "succeeded");
    assert!(stderr.contains("SEAL INCOMPLETE"), "{stderr}");
    let ec2 = sandbox::ec2().await;
    assert_eq!(instance_state(&ec2, &instance).await, "stopped");
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
    let run_id = outcome["run_id"].as_str().unwrap().to_owned();
    let local = records(&journal);
    assert!(!of_type(&local, "seal_failed").is_empty());
    assert!(of_type(&local, "sealed").is_empty(), "nothing arrived");
    assert!(proxy::count("s3:PutObject") > 0);
    let s3 = s3().await;
    let prefix = format!("cases/{run_id}/");
    assert_eq!(
        keys(&s3, &evidence.bucket, &prefix).await,
        Vec::<String>::new()
    );

    // Later, with the bucket back: one command completes it, and the seal verifies.
    let sealed = fb(&[
        "journal",
        "seal",
        &run_id,
        "--journal-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(sealed.code, Some(0), "{}\n{}", sealed.stdout, sealed.stderr);
    let location = format!("{}/{run_id}", evidence.seal);
    let remote = fb(&["journal", "verify", &location, "--kms"]);
    assert_eq!(remote.code, Some(0), "{}\n{}", remote.stdout, remote.stderr);
    let journal_arg = journal.to_str().unwrap();
    let agreed = fb(&[
        "journal",
        "verify",
        journal_arg,
        "--kms",
        "--against",
        &location,
    ]);
    assert_eq!(agreed.code, Some(0), "{}", agreed.stdout);
    let local = records(&journal);
    let statement = &of_type(&local, "signed")[0]["statement"];
    assert_eq!(statement["status"], "succeeded");
    let finished = local
        .iter()
        .position(|r| r["type"] == "run_finished")
        .unwrap();
    assert!(statement["records"].as_u64().unwrap() > finished as u64);
}

#[tokio::test]
async fn a_bucket_without_compliance_retention_is_not_trusted_and_containment_goes_on() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let evidence = seed_evidence(&["--mode", "GOVERNANCE"]);
    let dir = tempfile::tempdir().unwrap();
    proxy::reset();
    let (code, outcome, stderr) = contain(dir.path(), &ids, &["--yes", "--seal", &evidence.seal]);
    assert_eq!(code, 0, "{stderr}\n{outcome:#}");
    assert!(stderr.contains("not COMPLIANCE"), "{stderr}");
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());
    let local = records(&journal);
    let failed = of_type(&local, "seal_failed");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["what"], "bucket");
    assert_eq!(
        proxy::count("s3:PutObject"),
        0,
        "nothing goes to an untrusted bucket"
    );
    // A bad location is bad input before anything runs.
    let (code, _, stderr) = contain(dir.path(), &ids, &["--yes", "--seal", "evidence-bucket"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--seal"), "{stderr}");
}

#[tokio::test]
async fn instances_upload_evidence_straight_to_the_seal_through_presigned_urls() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let evidence = seed_evidence(&[]);
    let dir = tempfile::tempdir().unwrap();
    let instance = ids["instance_id"].as_str().unwrap().to_owned();
    let param = format!("instance_id={instance}");
    let runbook = crate::support::repo("tests/fixtures/custody/collect.yaml");
    let runbook = runbook.to_str().unwrap();

    // Without a seal there is nowhere to upload: the step says so.
    let (code, outcome, stderr) = cli_on_moto(dir.path(), &["run", runbook, "-p", &param]);
    assert_eq!(code, 1, "{stderr}\n{outcome:#}");
    assert!(stderr.contains("run with --seal") || outcome.to_string().contains("run with --seal"));

    proxy::reset();
    let (code, outcome, stderr) = cli_on_moto(
        dir.path(),
        &["run", runbook, "-p", &param, "--seal", &evidence.seal],
    );
    assert_eq!(code, 0, "{stderr}\n{outcome:#}");
    let run_id = outcome["run_id"].as_str().unwrap();
    let journal = PathBuf::from(outcome["journal"].as_str().unwrap());

    // The URLs went to the instance in the command and nowhere else: not in the journal, not
    // on the terminal.
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        !text.contains("X-Amz-Signature"),
        "a presigned URL reached the journal"
    );
    assert!(!stderr.contains("X-Amz-Signature"), "{stderr}");

    // Each artifact arrived, from the instance, under COMPLIANCE retention; the journal holds
    // S3's CRC64NVME of what arrived, and it is the checksum of those bytes.
    let local = records(&journal);
    let collected: Vec<_> = of_type(&local, "sealed")
        .into_iter()
        .filter(|r| r["what"] == "collected")
        .collect();
    assert_eq!(collected.len(), 3, "{collected:#?}");
    let s3 = s3().await;
    for (record, name) in collected
        .iter()
        .zip(["processes.txt", "sockets.txt", "memory.lime"])
    {
        let key = format!("cases/{run_id}/collected/volatile/{instance}/{name}");
        assert_eq!(record["key"], key.as_str());
        assert_eq!(record["instance_id"], instance.as_str());
        // AWS applies the bucket's default retention to every new object, one completed from
        // parts too; moto (5.2.5) only to a PUT. Either way the journal holds what S3 says.
        let expected = if name == "memory.lime" {
            Value::Null
        } else {
            json!("COMPLIANCE")
        };
        assert_eq!(record["retention_mode"], expected, "{record:#?}");
        let object = s3
            .get_object()
            .bucket(&evidence.bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        let body = object.body.collect().await.unwrap().into_bytes();
        let line = format!("simulated {name} from {instance}\n");
        if name == "memory.lime" {
            // 20 MiB in three parts (8, 8, 4), completed by firebreak, each byte where it was.
            assert_eq!(body.len(), 20 << 20);
            assert!(
                body.chunks(line.len())
                    .all(|c| line.as_bytes().starts_with(c))
            );
            assert_eq!(record["parts"], 3, "{record:#?}");
        } else {
            assert_eq!(body.as_ref(), line.as_bytes());
        }
        // What the instance says it sent (its own SHA-256: forgeable by a root attacker), and
        // here true.
        assert_eq!(
            record["sha256"],
            hex::encode(Sha256::digest(&body)),
            "{record:#?}"
        );
        // The journal holds S3's own full-object CRC64NVME, as HeadObject reports it. (AWS
        // computes one for every new object; moto only for uploads that send a checksum, and
        // the instance sends Content-MD5, so here both sides say none.)
        let head = s3
            .head_object()
            .bucket(&evidence.bucket)
            .key(&key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            record["checksum_crc64nvme"].as_str(),
            head.checksum_crc64_nvme(),
            "{record:#?}"
        );
        assert_eq!(record["size"], body.len());
    }
    // The instance sent each part to its own URL; firebreak created and completed the upload.
    assert_eq!(proxy::count("s3:CreateMultipartUpload"), 1);
    assert_eq!(proxy::count("s3:UploadPart"), 3);
    assert_eq!(proxy::count("s3:CompleteMultipartUpload"), 1);
    // And the run's seal verifies, collected objects included.
    let location = format!("{}/{run_id}", evidence.seal);
    // Verifying from the seal checks each object's retention as S3 has it now: moto left the
    // image without one, and that is caught...
    let remote = fb(&["journal", "verify", &location]);
    assert_eq!(remote.code, Some(2), "{}\n{}", remote.stdout, remote.stderr);
    let said = format!("{}{}", remote.stdout, remote.stderr);
    assert!(
        said.contains("memory.lime") && said.contains("not under COMPLIANCE retention"),
        "{said}"
    );
    // ...and once the retention AWS would have applied is there, the seal verifies.
    let memory = format!("cases/{run_id}/collected/volatile/{instance}/memory.lime");
    let until = aws_smithy_types::DateTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 86_400,
    );
    s3.put_object_retention()
        .bucket(&evidence.bucket)
        .key(&memory)
        .retention(
            aws_sdk_s3::types::ObjectLockRetention::builder()
                .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
                .retain_until_date(until)
                .build(),
        )
        .send()
        .await
        .expect("moto sets an object's retention");
    let remote = fb(&["journal", "verify", &location]);
    assert_eq!(remote.code, Some(0), "{}\n{}", remote.stdout, remote.stderr);
}

/// A crash after an upload and before its `sealed` record (the evidence file's, then the
/// journal's): the resume seals where the run chose, finds the object already there (the
/// same bytes: accepted, not replaced), and the seal verifies.
#[tokio::test]
async fn a_crash_between_an_upload_and_its_record_resumes_to_a_seal_that_verifies() {
    for point in ["before-sealed:evidence", "before-sealed:journal"] {
        let _moto = moto::exclusive().await;
        let ids = sandbox::seed("web-1");
        let evidence = seed_evidence(&[]);
        let dir = tempfile::tempdir().unwrap();
        let args = contain_args(
            &ids,
            &[
                "--yes",
                "--seal",
                &evidence.seal,
                "--sign-key",
                &evidence.sign_key,
            ],
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let journal = crate::support::crash::crash_at(point, dir.path(), &args);
        let run_id = journal.file_stem().unwrap().to_str().unwrap().to_owned();
        let resumed = crate::support::crash::resume(dir.path(), &journal, &[]);
        assert_eq!(resumed.code, Some(0), "{point}: {}", resumed.stderr);
        assert!(
            !resumed.stderr.contains("SEAL"),
            "{point}: {}",
            resumed.stderr
        );
        let location = format!("{}/{run_id}", evidence.seal);
        let journal_arg = journal.to_str().unwrap();
        let checked = fb(&["journal", "verify", &location, "--kms"]);
        assert_eq!(checked.code, Some(0), "{point}: {}", checked.stdout);
        let agreed = fb(&[
            "journal",
            "verify",
            journal_arg,
            "--against",
            &location,
            "--kms",
        ]);
        assert_eq!(agreed.code, Some(0), "{point}: {}", agreed.stdout);
        // Every evidence file was sealed exactly once in the journal's eyes.
        let local = records(&journal);
        let sealed_paths: Vec<&Value> = of_type(&local, "sealed")
            .into_iter()
            .filter(|r| r["what"] == "evidence")
            .map(|r| &r["path"])
            .collect();
        let artifacts = of_type(&local, "evidence").len();
        assert_eq!(sealed_paths.len(), artifacts, "{point}: {sealed_paths:?}");
    }
}
