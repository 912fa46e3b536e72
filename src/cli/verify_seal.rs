//! `journal verify` beyond the local chain: a run's seal in S3 (`s3://BUCKET/PREFIX/RUN_ID`),
//! a local journal against its seal (`--against`), and signed statements (`--kms`,
//! `--public-key`). Exit 0 intact and complete, 1 intact but incomplete, 2 tampered, or a
//! signature, object or retention that does not check out.

use std::path::{Path, PathBuf};

use super::{Exit, GlobalArgs};
use crate::aws::Clients;
use crate::custody::agreement::{Agreement, compare};
use crate::custody::remote::{self, Seal};
use crate::custody::statement;
use crate::custody::store::Store;
use crate::custody::target::SealTarget;
use crate::journal::custody::Signed;
use crate::journal::{self, Record};

/// How signatures are checked.
pub struct SignatureCheck<'a> {
    pub kms: bool,
    pub public_key: Option<&'a Path>,
}

impl SignatureCheck<'_> {
    fn wanted(&self) -> bool {
        self.kms || self.public_key.is_some()
    }
}

/// Worst outcome so far.
#[derive(Default)]
struct Verdict {
    incomplete: bool,
    bad: bool,
}

impl Verdict {
    fn exit(&self) -> Exit {
        if self.bad {
            Exit::Invalid
        } else if self.incomplete {
            Exit::StepFailed
        } else {
            Exit::Ok
        }
    }
}

pub(super) async fn clients(global: &GlobalArgs) -> Clients {
    Clients::new(&crate::aws::load_sdk_config(&global.aws_options()).await)
}

pub(super) async fn store(
    clients: &Clients,
    bucket: &str,
    owner: Option<&str>,
) -> Result<Store, String> {
    let owner = match owner {
        Some(owner) => owner.to_owned(),
        None => {
            let caller = clients
                .sts
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "the bucket's owner is needed (--bucket-owner), and the caller's own \
                         account could not be read: {}",
                        crate::aws::AwsError::from_sdk("sts", "GetCallerIdentity", e)
                    )
                })?;
            caller.account().unwrap_or_default().to_owned()
        }
    };
    Ok(Store {
        s3: crate::custody::store::in_bucket_region(&clients.s3, bucket, &owner).await,
        bucket: bucket.to_owned(),
        owner,
    })
}

/// `journal verify s3://BUCKET/PREFIX/RUN_ID`
pub fn remote(
    location: &str,
    owner: Option<&str>,
    check: SignatureCheck,
    global: &GlobalArgs,
) -> Exit {
    let (target, run_id) = match SealTarget::parse_run(location) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    super::run::runtime().block_on(async {
        let clients = clients(global).await;
        let store = match store(&clients, &target.bucket, owner).await {
            Ok(store) => store,
            Err(error) => {
                eprintln!("error: {error}");
                return Exit::Invalid;
            }
        };
        let seal = match remote::newest(&store, &target, &run_id).await {
            Ok(seal) => seal,
            Err(error) => {
                eprintln!("error: {error}");
                return Exit::Invalid;
            }
        };
        let mut verdict = Verdict::default();
        println!(
            "sealed journal: s3://{}/{} (version {})",
            store.bucket,
            seal.journal_key,
            seal.journal_version.as_deref().unwrap_or("-")
        );
        let name = PathBuf::from(format!("s3://{}/{}", store.bucket, seal.journal_key));
        let key = super::run::journal_key();
        let (verification, records) = remote::verify_copy(&name, &seal.bytes, key.as_deref());
        println!("chain: {verification}");
        verdict.bad |= verification.problem.is_some();
        verdict.incomplete |= !verification.complete;
        let records = match records {
            Ok(records) => records,
            Err(error) => {
                println!("chain: unreadable: {error}");
                return Exit::Invalid;
            }
        };
        let named = (verification.records as u64, verification.head.clone().unwrap_or_default());
        if verification.problem.is_none() && named != seal.named {
            println!(
                "name: the object is named for record {} head {}, but holds {} records ending in {}",
                seal.named.0, seal.named.1, named.0, named.1
            );
            verdict.bad = true;
        }
        let now = crate::custody::now();
        match store.head(&seal.journal_key, seal.journal_version.as_deref()).await {
            Ok(head) if head.retention_mode.as_deref() == Some("COMPLIANCE")
                && head.retain_until.as_deref().is_some_and(|u| u > now.as_str()) =>
            {
                println!(
                    "retention: COMPLIANCE until {}",
                    head.retain_until.as_deref().unwrap_or_default()
                );
            }
            Ok(head) => {
                println!(
                    "retention: the journal object is not under COMPLIANCE retention ({} until {})",
                    head.retention_mode.as_deref().unwrap_or("none"),
                    head.retain_until.as_deref().unwrap_or("-")
                );
                verdict.bad = true;
            }
            Err(error) => {
                println!("retention: {error}");
                verdict.bad = true;
            }
        }
        statement_of_seal(&seal, &records, &run_id, &check, &clients, &mut verdict).await;
        let objects = remote::check_objects(&store, &records, &now).await;
        let bad: Vec<_> = objects.iter().filter(|o| o.problem.is_some()).collect();
        if bad.is_empty() {
            println!("sealed objects: {} ok (checksum, COMPLIANCE retention)", objects.len());
        }
        for object in &bad {
            println!(
                "sealed objects: {} {}: {}",
                object.what.as_str(),
                object.key,
                object.problem.as_deref().unwrap_or_default()
            );
            verdict.bad = true;
        }
        verdict.exit()
    })
}

async fn statement_of_seal(
    seal: &Seal,
    records: &[Record],
    run_id: &str,
    check: &SignatureCheck<'_>,
    clients: &Clients,
    verdict: &mut Verdict,
) {
    let Some((key, signed)) = &seal.statement else {
        println!(
            "statement: none sealed{}",
            if check.wanted() {
                ""
            } else {
                " (the run had no --sign-key)"
            }
        );
        verdict.bad |= check.wanted();
        return;
    };
    println!("statement: {key}");
    if let Err(error) = remote::statement_covers(records, signed, run_id) {
        println!("statement: {error}");
        verdict.bad = true;
        return;
    }
    if signed.statement.records < seal.named.0 {
        println!(
            "statement: signs records 1–{} of {}: the later records are sealed but not signed \
             (the run did not reach an end after them)",
            signed.statement.records, seal.named.0
        );
        verdict.incomplete = true;
    }
    signature(signed, check, clients, verdict).await;
}

async fn signature(
    signed: &Signed,
    check: &SignatureCheck<'_>,
    clients: &Clients,
    verdict: &mut Verdict,
) {
    let what = format!(
        "records 1–{}, head {}, {} by {} at {}",
        signed.statement.records,
        signed.statement.head,
        signed.statement.status,
        signed.statement.key_id,
        signed.statement.signed_at
    );
    if check.kms {
        match statement::verify_kms(&clients.kms, signed).await {
            Ok(()) => println!("signature: valid (kms:Verify) — {what}"),
            Err(error) => {
                println!("signature: {error} — {what}");
                verdict.bad = true;
            }
        }
    }
    if let Some(path) = check.public_key {
        let checked = statement::read_public_key(path)
            .and_then(|key| statement::verify_offline(&key, signed));
        match checked {
            Ok(()) => println!("signature: valid ({}) — {what}", path.display()),
            Err(error) => {
                println!("signature: {error} — {what}");
                verdict.bad = true;
            }
        }
    }
    if !check.wanted() {
        println!("signature: not checked (give --kms or --public-key FILE) — {what}");
    }
}

/// The local journal's signed statement (`--kms` / `--public-key` on a local file) and its
/// agreement with the seal (`--against`). Adds to the exit of the local check.
pub fn local(
    path: &Path,
    against: Option<&str>,
    owner: Option<&str>,
    check: SignatureCheck,
    global: &GlobalArgs,
) -> Exit {
    let records = match journal::read(path) {
        Ok(records) => records,
        Err(error) => {
            println!("statement: not checked: {error}");
            return Exit::Invalid;
        }
    };
    super::run::runtime().block_on(async {
        let clients = clients(global).await;
        let mut verdict = Verdict::default();
        let run_id = records.first().map(|r| r.run_id.clone()).unwrap_or_default();
        if check.wanted() {
            match remote::last_statement(&records) {
                None => {
                    println!("statement: the journal holds no signed statement (was the run given --sign-key?)");
                    verdict.bad = true;
                }
                Some(signed) => match remote::statement_covers(&records, signed, &run_id) {
                    Err(error) => {
                        println!("statement: {error}");
                        verdict.bad = true;
                    }
                    Ok(()) => signature(signed, &check, &clients, &mut verdict).await,
                },
            }
        }
        if let Some(location) = against {
            agreement(path, location, owner, &run_id, &clients, &mut verdict).await;
        }
        verdict.exit()
    })
}

async fn agreement(
    path: &Path,
    location: &str,
    owner: Option<&str>,
    run_id: &str,
    clients: &Clients,
    verdict: &mut Verdict,
) {
    let (target, sealed_run) = match SealTarget::parse_run(location) {
        Ok(parsed) => parsed,
        Err(error) => {
            println!("against: {error}");
            verdict.bad = true;
            return;
        }
    };
    if sealed_run != run_id {
        println!("against: the seal is of run {sealed_run}; the local journal is run {run_id}");
        verdict.bad = true;
        return;
    }
    let seal = match store(clients, &target.bucket, owner).await {
        Ok(store) => remote::newest(&store, &target, run_id).await,
        Err(error) => Err(error),
    };
    let seal = match seal {
        Ok(seal) => seal,
        Err(error) => {
            println!("against: {error}");
            verdict.bad = true;
            return;
        }
    };
    let local = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            println!("against: cannot read {}: {error}", path.display());
            verdict.bad = true;
            return;
        }
    };
    match compare(&local, &seal.bytes) {
        Agreement::Agrees { sealed, after } => println!(
            "against: agrees with the seal ({} holds records 1–{sealed}; {after} custody \
             record(s) after it)",
            seal.journal_key
        ),
        Agreement::Disagrees(why) => {
            println!("against: DISAGREES with {}: {why}", seal.journal_key);
            verdict.bad = true;
        }
    }
}
