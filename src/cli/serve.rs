//! `firebreak serve`: the SQS worker (see `worker`).

use std::sync::Arc;
use std::time::Duration;

use super::{Exit, GlobalArgs, ServeArgs};
use crate::engine::Mode;
use serde_json::{Value, json};

use crate::worker::log::Sink;
use crate::worker::queue::Queue;
use crate::worker::serve::{self, ServeConfig};

pub fn run(args: &ServeArgs, global: &GlobalArgs) -> Exit {
    if args.unattended.custody.seal.is_none() {
        eprintln!(
            "error: serve needs --seal s3://BUCKET/PREFIX (or FIREBREAK_SEAL): a worker's disk is \
             not evidence, so every run's journal and evidence go to the seal"
        );
        return Exit::Invalid;
    }
    if super::run::journal_key().is_some() {
        eprintln!(
            "error: a worker never takes the journal key from its environment (a task \
             definition or a Lambda's configuration shows it to whoever reads them): unset \
             FIREBREAK_JOURNAL_KEY and give --journal-key-parameter NAME (an SSM SecureString)"
        );
        return Exit::Invalid;
    }
    let table = match args
        .journal
        .as_deref()
        .map(crate::table::TableLocation::parse)
    {
        None => None,
        Some(Ok(table)) if table.run_id.is_none() => Some(table),
        Some(Ok(_)) => {
            eprintln!("error: --journal: give the table alone (dynamodb://TABLE), not a run");
            return Exit::Invalid;
        }
        Some(Err(e)) => {
            eprintln!("error: --journal: {e}");
            return Exit::Invalid;
        }
    };
    // A dead worker's message must come back only after its run's lease has run out, or the
    // next delivery would find the run still live and leave it: the message stays invisible
    // at least half its timeout past the worker's last renewal of it.
    if table.is_some() && args.visibility_timeout <= 2 * args.lease_seconds {
        eprintln!(
            "error: --visibility-timeout ({}) must be more than twice --lease-seconds ({}): a \
             dead worker's message would come back while its run still looked live",
            args.visibility_timeout, args.lease_seconds
        );
        return Exit::Invalid;
    }
    let (runbooks, settings) =
        match super::dispatch::unattended(global, &args.runbooks, &args.unattended, true) {
            Ok(loaded) => loaded,
            Err(exit) => return exit,
        };
    let config = ServeConfig {
        concurrency: usize::from(args.concurrency),
        visibility: Duration::from_secs(u64::from(args.visibility_timeout)),
        wait: Duration::from_secs(u64::from(args.wait_seconds)),
        health_every: Duration::from_secs(u64::from(args.health_every)),
        hold: Duration::from_secs(u64::from(args.hold_limit)),
        resume_delay: Duration::from_secs(u64::from(args.resume_delay)),
    };
    let counts = super::run::runtime().block_on(async {
        let sdk = crate::aws::load_sdk_config(&global.aws_options()).await;
        let clients = crate::aws::Clients::new(&sdk);
        let journal_key = match &args.journal_key_parameter {
            Some(name) => {
                match crate::worker::journal_key::from_parameter(&clients.ssm, name).await {
                    Ok(key) => Some(key),
                    Err(error) => {
                        eprintln!("error: {error}");
                        return None;
                    }
                }
            }
            None => None,
        };
        // One set of clients for every run of this worker.
        // Records too large for an item go to the seal, beside the runs' sealed journals.
        let spill = args
            .unattended
            .custody
            .seal
            .as_deref()
            .and_then(|seal| crate::custody::SealTarget::parse(seal).ok())
            .map(|seal| crate::table::spill::Spill {
                s3: clients.s3.clone(),
                bucket: seal.bucket,
                prefix: seal.prefix,
                owner: args.unattended.custody.seal_owner.clone(),
            });
        let shared = table.map(|table| crate::table::Shared {
            lease: Duration::from_secs(u64::from(args.lease_seconds)),
            spill,
            ..crate::table::Shared::new(clients.dynamodb.clone(), table)
        });
        let settings = crate::engine::Settings {
            clients: Some(clients),
            journal_key,
            shared,
            ..settings
        };
        let queue = Queue {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            url: args.queue_url.clone(),
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            stop_signal().await;
            let _ = stop.send(true);
            // A second signal: now (an interface between its two isolation moves still gets
            // its second move, as for Ctrl-C twice).
            stop_signal().await;
            std::process::exit(Exit::Interrupted as i32);
        });
        let counts = serve::serve(
            queue,
            config,
            Arc::new(runbooks),
            settings,
            Mode::Live,
            stopped,
            json_lines(),
        )
        .await;
        Some(counts)
    });
    let Some(counts) = counts else {
        return Exit::Invalid;
    };
    eprintln!(
        "firebreak: serve stopped: {} received, {} deleted, {} left to come back, {} released",
        counts.received, counts.deleted, counts.failed, counts.released
    );
    Exit::Ok
}

/// Each log value as one line on stderr, stamped with the time.
fn json_lines() -> Sink {
    Arc::new(|mut line: Value| {
        if let Value::Object(map) = &mut line {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            map.insert("ts".into(), json!(now));
        }
        eprintln!("{line}");
    })
}

/// SIGTERM (ECS, Lambda's shutdown, systemd) or Ctrl-C.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
