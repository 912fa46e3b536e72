//! `approve` / `deny` / `resume` `--via-queue URL`: the request goes to the workers' queue
//! instead of being carried out here — for a run a worker holds (its journal in the workers'
//! table). A decision is sent with the person's own credentials and names them; the worker
//! believes the name only when SQS's `SenderId` for the message is that identity's.

use serde_json::json;

use super::{Exit, GlobalArgs, OutputFormat};
use crate::worker::message::{QueuedDecision, resume_body};

/// What is sent.
pub enum Request<'a> {
    Decision {
        run_id: &'a str,
        verdict: crate::journal::event::Verdict,
        step: Option<&'a str>,
        reason: &'a str,
    },
    Resume {
        run_id: &'a str,
    },
}

pub fn send(
    queue_url: &str,
    request: Request<'_>,
    output: OutputFormat,
    global: &GlobalArgs,
) -> Exit {
    let run_id = match &request {
        Request::Decision { run_id, .. } | Request::Resume { run_id } => *run_id,
    };
    if !crate::engine::run_id::is_valid(run_id) {
        eprintln!(
            "error: --via-queue takes a run id like 20261128T100127Z-3f9a2c, not {run_id:?} (the \
             worker finds the run in its table)"
        );
        return Exit::Invalid;
    }
    let sent = super::run::runtime().block_on(async {
        let sdk = crate::aws::load_sdk_config(&global.aws_options()).await;
        let (body, decider) = match request {
            Request::Resume { run_id } => (resume_body(run_id), None),
            Request::Decision {
                run_id,
                verdict,
                step,
                reason,
            } => {
                let caller = aws_sdk_sts::Client::new(&sdk)
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "who is deciding? {}",
                            crate::aws::AwsError::from_sdk("sts", "GetCallerIdentity", e)
                        )
                    })?;
                let arn = caller.arn().unwrap_or_default().to_owned();
                let decision = QueuedDecision {
                    run_id: run_id.to_owned(),
                    verdict,
                    step: step.map(str::to_owned),
                    reason: reason.to_owned(),
                    decider: arn.clone(),
                };
                (decision.body(), Some(arn))
            }
        };
        let answer = aws_sdk_sqs::Client::new(&sdk)
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| crate::aws::AwsError::from_sdk("sqs", "SendMessage", e).to_string())?;
        Ok::<_, String>((answer.message_id().unwrap_or_default().to_owned(), decider))
    });
    match sent {
        Ok((message_id, decider)) => {
            match output {
                OutputFormat::Json => println!(
                    "{}",
                    json!({"run_id": run_id, "queue_url": queue_url, "message_id": message_id, "decider": decider})
                ),
                OutputFormat::Text => {
                    println!("sent to {queue_url} as message {message_id}");
                    match decider {
                        Some(arn) => println!(
                            "a worker records the decision as {arn}'s once SQS confirms you sent \
                             it, then carries run {run_id} on; follow it with `firebreak journal \
                             show dynamodb://TABLE/{run_id}`"
                        ),
                        None => println!("a worker resumes run {run_id}"),
                    }
                }
            }
            Exit::Ok
        }
        Err(error) => {
            eprintln!("error: the request was not sent: {error}");
            Exit::StepFailed
        }
    }
}
