//! `firebreak-lambda` (feature `lambda`): the Lambda function for SQS batches and EventBridge
//! events, on `lambda_runtime`. Everything but the runtime's loop is the library's
//! (`worker::lambda`), tested without it. Configuration comes from the function's environment:
//! `FIREBREAK_SEAL` (required: the function's disk is `/tmp`, not evidence),
//! `FIREBREAK_SIGN_KEY`, `FIREBREAK_JOURNAL_KEY_PARAMETER` (an SSM SecureString, read once per
//! container; `FIREBREAK_JOURNAL_KEY` itself is refused), `FIREBREAK_RUNBOOKS` (default
//! `$LAMBDA_TASK_ROOT/runbooks`), `FIREBREAK_STOP_MARGIN_SECONDS` (default 60), `FIREBREAK_JOURNAL`
//! (`dynamodb://TABLE`: runs, their leases and claims in the shared table), `FIREBREAK_QUEUE_URL`
//! (where a run stopped at the deadline is carried on as a resume request, delivered after
//! `FIREBREAK_RESUME_DELAY_SECONDS`, default 60, at most 900).

#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use firebreak::engine::{Mode, Settings};
use firebreak::journal::event::Custody;
use firebreak::worker::lambda::Handler;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn handler() -> Result<Handler, String> {
    if env("FIREBREAK_JOURNAL_KEY").is_some() {
        return Err(
            "FIREBREAK_JOURNAL_KEY is refused: a function's configuration shows it to \
                    whoever reads it; set FIREBREAK_JOURNAL_KEY_PARAMETER (an SSM SecureString)"
                .into(),
        );
    }
    let seal = env("FIREBREAK_SEAL").ok_or("FIREBREAK_SEAL is required: s3://BUCKET/PREFIX")?;
    firebreak::custody::SealTarget::parse(&seal).map_err(|e| format!("FIREBREAK_SEAL: {e}"))?;
    let runbooks_dir = env("FIREBREAK_RUNBOOKS").unwrap_or_else(|| {
        format!(
            "{}/runbooks",
            env("LAMBDA_TASK_ROOT").unwrap_or_else(|| ".".into())
        )
    });
    let (runbooks, errors) =
        firebreak::trigger::dispatch::load_runbooks(std::path::Path::new(&runbooks_dir));
    if runbooks.is_empty() {
        return Err(format!("no valid runbooks in {runbooks_dir}: {errors:?}"));
    }
    let margin = env("FIREBREAK_STOP_MARGIN_SECONDS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let config = firebreak::aws::load_sdk_config(&Default::default()).await;
    let clients = firebreak::aws::Clients::new(&config);
    let journal_key = match env("FIREBREAK_JOURNAL_KEY_PARAMETER") {
        None => None,
        Some(name) => {
            Some(firebreak::worker::journal_key::from_parameter(&clients.ssm, &name).await?)
        }
    };
    // A Lambda's /tmp lasts one execution environment: runs live in the shared table.
    let shared = match env("FIREBREAK_JOURNAL") {
        None => None,
        Some(text) => {
            let table = firebreak::table::TableLocation::parse(&text)
                .map_err(|e| format!("FIREBREAK_JOURNAL: {e}"))?;
            // Records too large for an item go to the seal bucket.
            let spill = firebreak::custody::SealTarget::parse(&seal)
                .ok()
                .map(|target| firebreak::table::spill::Spill {
                    s3: clients.s3.clone(),
                    bucket: target.bucket,
                    prefix: target.prefix,
                    owner: None,
                });
            Some(firebreak::table::Shared {
                spill,
                ..firebreak::table::Shared::new(clients.dynamodb.clone(), table)
            })
        }
    };
    Ok(Handler {
        runbooks: Arc::new(runbooks),
        settings: Settings {
            clients: Some(clients),
            journal_key,
            shared,
            custody: Some(Custody {
                seal,
                owner: String::new(),
                min_retention_days: 1,
                sign_key: env("FIREBREAK_SIGN_KEY"),
            }),
            ..Settings::new("/tmp/firebreak".into())
        },
        mode: Mode::Live,
        log: Arc::new(|line: Value| eprintln!("{line}")),
        margin: Duration::from_secs(margin),
        queue: env("FIREBREAK_QUEUE_URL").map(|url| firebreak::worker::queue::Queue {
            sqs: aws_sdk_sqs::Client::new(&config),
            url,
        }),
        resume_delay: Duration::from_secs(
            env("FIREBREAK_RESUME_DELAY_SECONDS")
                .and_then(|s| s.parse().ok())
                .unwrap_or(60),
        ),
    })
}

/// As for the command line (see main.rs): a Security Hub finding's deserialization needs deep
/// stacks in debug builds; every runtime thread gets room.
fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 << 20)
        .build()?
        .block_on(serve())
}

async fn serve() -> Result<(), Error> {
    let handler = match handler().await {
        Ok(handler) => Arc::new(handler),
        Err(error) => {
            eprintln!("{}", json!({"log": "init_failed", "error": error}));
            std::process::exit(2);
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default();
            let left = Duration::from_millis(event.context.deadline.saturating_sub(now));
            let deadline = tokio::time::Instant::now() + left;
            handler
                .invoke(event.payload, deadline)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
