//! Evidence collection through Systems Manager: is the instance managed, and run a command on
//! it (a document with commands or a script shipped with the runbooks), waiting for the result.

use std::time::Duration;

use aws_sdk_ssm::types::{CommandInvocationStatus, InstanceInformationStringFilter};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Action, ActionError, Execute};
use crate::actions::grants::{Grant, ScopeField, arn};
use crate::actions::{StepContext, reconcile};
use crate::journal::Event;
use crate::journal::event::CommandStatus;

/// How much of each invocation's stdout/stderr goes into the outputs (the full output belongs
/// in the S3 bucket given as `output_s3_bucket`).
const OUTPUT_CHARS: usize = 4000;

/// Whether an instance is managed by SSM and online, and its platform — for `when:`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckManaged {
    pub instance_id: String,
}

impl Action for CheckManaged {
    const NAME: &'static str = "ssm.check_managed";
    const SUMMARY: &'static str = "is the instance managed by SSM and online (and which platform)";
    const CALLS: &'static [&'static str] = &["ssm:DescribeInstanceInformation"];
    const PERMISSIONS: &'static [&'static str] = &["ssm:DescribeInstanceInformation"];
}

impl Execute for CheckManaged {
    /// A check that cannot be made (denied, SSM unavailable) answers "not managed" with the
    /// reason: this action guards optional evidence collection, which must never hold up
    /// containment. The failed call is in the journal like any other.
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        let id = self.instance_id.as_str();
        let result = ctx
            .call("ssm", "DescribeInstanceInformation", &[id], || {
                ctx.clients()
                    .ssm
                    .describe_instance_information()
                    .filters(
                        InstanceInformationStringFilter::builder()
                            .key("InstanceIds")
                            .values(id)
                            .build()
                            .expect("key and values are set"),
                    )
                    .send()
            })
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                return Ok(json!({
                    "instance_id": id, "managed": false, "online": false, "checked": false,
                    "reason": format!("could not check: {error}"),
                }));
            }
        };
        let info = output
            .instance_information_list()
            .iter()
            .find(|i| i.instance_id() == Some(id));
        Ok(match info {
            None => json!({"instance_id": id, "managed": false, "online": false, "checked": true}),
            Some(info) => {
                let ping = info.ping_status().map(|p| p.as_str().to_owned());
                json!({
                    "instance_id": id,
                    "checked": true,
                    "managed": true,
                    "online": ping.as_deref() == Some("Online"),
                    "ping_status": ping,
                    "platform_type": info.platform_type().map(|p| p.as_str()),
                    "platform_name": info.platform_name(),
                    "agent_version": info.agent_version(),
                })
            }
        })
    }
}

/// Run an SSM document (default `AWS-RunShellScript`) on instances, with commands or a script
/// shipped with the runbooks (its SHA-256 journaled), and wait for the result. On resume it
/// finds the command it already sent (the comment carries the idempotency key).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommand {
    pub instance_ids: Vec<String>,
    #[serde(default = "default_document")]
    pub document: String,
    /// Shell commands (for `AWS-RunShellScript`).
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    /// A script file relative to the runbook, sent as the command body.
    #[serde(default)]
    pub script: Option<String>,
    /// Further document parameters.
    #[serde(default)]
    pub parameters: IndexMap<String, Vec<String>>,
    /// Where SSM writes the full output (empty: nowhere, the output stays in SSM).
    #[serde(default)]
    pub output_s3_bucket: Option<String>,
    /// The account that must own `output_s3_bucket` (usually `{{run.account}}`), checked with
    /// `HeadBucket` before anything is sent: bucket names are global, and the instance's agent
    /// writes the output, with the instance's credentials, to whoever owns the name.
    #[serde(default)]
    pub output_s3_bucket_owner: Option<String>,
    #[serde(default)]
    pub output_s3_prefix: Option<String>,
    /// How long the command may run on the instance, in seconds.
    #[serde(default = "default_execution_timeout")]
    pub execution_timeout_seconds: u32,
    /// Wait for every invocation to finish (bounded by the step timeout).
    #[serde(default = "default_true")]
    pub wait: bool,
    /// Artifacts the command uploads straight to the run's seal (`--seal`) through presigned
    /// URLs: the script calls `firebreak_upload NAME FILE`, which hashes the file, uploads it
    /// and removes it. A name is one PUT (up to 5 GB); `{name, max_size_gib}` is a multipart
    /// upload firebreak creates, presigns part by part and completes (memory images). One
    /// instance per step (fan out with `for_each`). Empty names are dropped, so
    /// `["{{#if run.sealed}}volatile.tar.gz{{/if}}"]` uploads only when sealed.
    #[serde(default)]
    pub uploads: Vec<super::uploads::UploadSpec>,
}

fn default_document() -> String {
    "AWS-RunShellScript".into()
}

fn default_execution_timeout() -> u32 {
    600
}

fn default_true() -> bool {
    true
}

impl Action for RunCommand {
    const NAME: &'static str = "ssm.run_command";
    const SUMMARY: &'static str =
        "run a command or shipped script on instances through SSM and collect the result";
    const CALLS: &'static [&'static str] = &[
        "ssm:ListCommands",
        "ssm:SendCommand",
        "ssm:GetCommandInvocation",
        "s3:HeadBucket",
        "s3:HeadObject",
        "s3:CreateMultipartUpload",
        // Sent by the instance, signed by firebreak (presigned parts).
        "s3:UploadPart",
        "s3:ListParts",
        "s3:CompleteMultipartUpload",
    ];
    const PERMISSIONS: &'static [&'static str] = &[
        "ssm:ListCommands",
        "ssm:SendCommand",
        "ssm:GetCommandInvocation",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
    ];
    const GRANTS: &'static [Grant] = &[
        Grant::on(&["ssm:SendCommand"], &[arn::INSTANCE, arn::SSM_DOCUMENT]),
        // HeadBucket is authorised as s3:ListBucket on the bucket.
        Grant::on(&["s3:ListBucket"], &[arn::S3_BUCKET]),
        // `uploads`: the instance's PUTs are signed with the runner's credentials (presigned),
        // under the run's seal only; multipart uploads are created, listed and completed there
        // (all s3:PutObject but ListParts); HeadObject reads each artifact back.
        Grant::on(
            &[
                "s3:PutObject",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
            ],
            &[arn::SEALED_COLLECTION],
        ),
    ];
    const SCOPE: &'static [ScopeField] = &[
        ScopeField {
            placeholder: "document",
            field: "document",
            default: "AWS-RunShellScript",
        },
        ScopeField {
            placeholder: "bucket",
            field: "output_s3_bucket",
            default: "*",
        },
    ];
}

impl Execute for RunCommand {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        if self.instance_ids.is_empty() {
            return Err(ActionError::Failed("`instance_ids` is empty".into()));
        }
        let targets: Vec<&str> = self.instance_ids.iter().map(String::as_str).collect();
        let mut parameters = self.parameters.clone();
        let mut script_sha256 = None;
        match (&self.commands, &self.script) {
            (Some(commands), None) => {
                parameters.insert("commands".into(), commands.clone());
            }
            (None, Some(script)) => {
                let (bytes, sha) = ctx.read_runbook_file(script)?;
                let body = String::from_utf8(bytes).map_err(|_| {
                    ActionError::Failed(format!("script {script} is not UTF-8 text"))
                })?;
                parameters.insert("commands".into(), vec![body]);
                script_sha256 = Some(sha);
            }
            (None, None) if !parameters.is_empty() => {}
            _ => {
                return Err(ActionError::Failed(
                    "give `commands` or `script` (not both), or document `parameters`".into(),
                ));
            }
        }
        let uploads = super::uploads::wanted(&self.uploads);
        let upload_names: Vec<&str> = uploads.iter().map(|u| u.name()).collect();
        let bucket = self.output_s3_bucket.clone().filter(|b| !b.is_empty());
        // SSM comments are at most 100 characters; the key is well under that.
        let comment = format!("firebreak {}", ctx.idempotency_key);
        let command_id = match find_sent(ctx, &targets, &comment).await? {
            Some(id) => id,
            None => {
                if let Some(bucket) = &bucket {
                    check_bucket_owner(ctx, bucket, self.output_s3_bucket_owner.as_deref()).await?;
                }
                // Only for a command about to be sent (a resumed step finds it sent): URLs, and
                // the multipart uploads they write to.
                if !uploads.is_empty() {
                    let preamble = super::uploads::prepare(
                        ctx,
                        &self.instance_ids,
                        &uploads,
                        self.execution_timeout_seconds,
                    )
                    .await?;
                    if let (Some(preamble), Some(commands)) =
                        (preamble, parameters.get_mut("commands"))
                    {
                        commands.splice(0..0, preamble);
                    }
                }
                let input = json!({
                    "document": self.document, "instance_ids": self.instance_ids,
                    "script": self.script, "script_sha256": script_sha256, "comment": comment,
                    "uploads": upload_names,
                });
                // No client token: sent without the SDK's retries; after a lost answer the
                // command is looked for by its comment before sending again.
                let send = || async {
                    ctx.change("ssm", "SendCommand", &targets, input.clone(), || {
                        ctx.clients()
                            .ssm
                            .send_command()
                            .document_name(&self.document)
                            .set_instance_ids(Some(self.instance_ids.clone()))
                            .set_parameters(Some(parameters.clone().into_iter().collect()))
                            .comment(&comment)
                            .timeout_seconds(
                                self.execution_timeout_seconds.clamp(30, 2_592_000) as i32
                            )
                            .set_output_s3_bucket_name(bucket.clone())
                            .set_output_s3_key_prefix(
                                bucket.as_ref().and(self.output_s3_prefix.clone()),
                            )
                            .customize()
                            .config_override(reconcile::ssm_once())
                            .send()
                    })
                    .await
                    .map(|sent| {
                        sent.map(|output| {
                            output
                                .command()
                                .and_then(|c| c.command_id())
                                .map(str::to_owned)
                        })
                    })
                };
                let found = || async {
                    Ok(find_sent(ctx, &targets, &comment)
                        .await?
                        .map(|id| Some(Some(id))))
                };
                let sent = reconcile::until_done(send, found).await?;
                match sent {
                    Some(id) => id.ok_or_else(|| {
                        ActionError::Failed("SendCommand returned no command id".into())
                    })?,
                    None => {
                        return Ok(json!({
                            "dry_run": true,
                            "command_id": format!("<would be sent by step {}>", ctx.step_id),
                            "document": self.document,
                            "script_sha256": script_sha256,
                        }));
                    }
                }
            }
        };
        let mut outputs = json!({
            "command_id": command_id,
            "document": self.document,
            "script": self.script,
            "script_sha256": script_sha256,
            "comment": comment,
        });
        if !self.wait {
            outputs["status"] = json!("Sent");
            return Ok(outputs);
        }
        let (invocations, full_stdout) = wait_for(ctx, &command_id, &targets).await?;
        let all_ok = invocations.iter().all(|i| i["status"] == "Success");
        outputs["status"] = json!(if all_ok { "Success" } else { "Failed" });
        outputs["invocations"] = Value::Array(invocations);
        if !uploads.is_empty() && ctx.mode == crate::journal::Mode::Live {
            let settled = super::uploads::settle(ctx, targets[0], &uploads, &full_stdout[0]).await;
            match settled {
                Ok(uploads) => outputs["uploads"] = uploads,
                Err(error) => {
                    let uploads = error.outputs().map(|o| o["uploads"].clone());
                    outputs["uploads"] = uploads.unwrap_or_default();
                    return Err(error.with_outputs(outputs));
                }
            }
        }
        if all_ok {
            Ok(outputs)
        } else {
            Err(ActionError::Failed(format!(
                "command {command_id} did not succeed on every instance"
            ))
            .with_outputs(outputs))
        }
    }
}

/// Refuses a bucket that the expected account does not own (or that does not exist): the
/// output, perhaps a memory image, would go to a stranger. `HeadBucket` with
/// `ExpectedBucketOwner` answers 403 for a bucket someone else owns.
async fn check_bucket_owner(
    ctx: &StepContext,
    bucket: &str,
    owner: Option<&str>,
) -> Result<(), ActionError> {
    let Some(owner) = owner.filter(|o| !o.is_empty()) else {
        return Err(ActionError::Input(format!(
            "`output_s3_bucket` {bucket} needs `output_s3_bucket_owner` (usually \
             \"{{{{run.account}}}}\"): a bucket name is global, and the instance would upload to \
             whoever owns it"
        )));
    };
    ctx.call("s3", "HeadBucket", &[bucket], || {
        ctx.clients()
            .s3
            .head_bucket()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .send()
    })
    .await
    .map(|_| ())
    .map_err(|error| {
        if error.is_journal() {
            return error;
        }
        ActionError::Failed(format!(
            "evidence bucket {bucket} is not one account {owner} owns, or cannot be reached \
             ({error}); nothing was sent to the instance"
        ))
    })
}

/// A command this step already sent (after a crash), found by its comment.
async fn find_sent(
    ctx: &StepContext,
    targets: &[&str],
    comment: &str,
) -> Result<Option<String>, ActionError> {
    let output = ctx
        .call("ssm", "ListCommands", targets, || {
            ctx.clients()
                .ssm
                .list_commands()
                .instance_id(targets[0])
                .send()
        })
        .await?;
    Ok(output
        .commands()
        .iter()
        .find(|c| c.comment() == Some(comment))
        .and_then(|c| c.command_id())
        .map(str::to_owned))
}

fn finished(status: &CommandInvocationStatus) -> bool {
    !matches!(
        status,
        CommandInvocationStatus::Pending
            | CommandInvocationStatus::InProgress
            | CommandInvocationStatus::Delayed
    )
}

/// Polls each invocation until it finishes (the step timeout bounds the wait), journaling each
/// status change. Returns each invocation's outputs and its whole stdout (uploads report there).
async fn wait_for(
    ctx: &StepContext,
    command_id: &str,
    targets: &[&str],
) -> Result<(Vec<Value>, Vec<String>), ActionError> {
    let mut results: Vec<Option<Value>> = vec![None; targets.len()];
    let mut stdout: Vec<String> = vec![String::new(); targets.len()];
    let mut last_status: Vec<String> = vec![String::new(); targets.len()];
    let mut round = 0u32;
    loop {
        for (index, instance) in targets.iter().enumerate() {
            if results[index].is_some() {
                continue;
            }
            let result = ctx
                .call(
                    "ssm",
                    "GetCommandInvocation",
                    &[instance, command_id],
                    || {
                        ctx.clients()
                            .ssm
                            .get_command_invocation()
                            .command_id(command_id)
                            .instance_id(*instance)
                            .send()
                    },
                )
                .await;
            let invocation = match result {
                Ok(invocation) => invocation,
                // Right after SendCommand the invocation may not exist yet.
                Err(error) if error.code() == Some("InvocationDoesNotExist") => continue,
                Err(error) => return Err(error),
            };
            let status = invocation
                .status()
                .cloned()
                .unwrap_or(CommandInvocationStatus::Pending);
            if last_status[index] != status.as_str() {
                last_status[index] = status.as_str().to_owned();
                ctx.record(Event::CommandStatus(CommandStatus {
                    command_id: command_id.to_owned(),
                    instance_id: (*instance).to_owned(),
                    status: status.as_str().to_owned(),
                    step: ctx.step_id.clone(),
                    item_index: ctx.item_index,
                }))?;
            }
            if finished(&status) {
                stdout[index] = invocation
                    .standard_output_content()
                    .unwrap_or_default()
                    .to_owned();
                results[index] = Some(json!({
                    "instance_id": instance,
                    "status": status.as_str(),
                    "response_code": invocation.response_code(),
                    "stdout": truncate(invocation.standard_output_content().unwrap_or_default()),
                    "stderr": truncate(invocation.standard_error_content().unwrap_or_default()),
                    "output_url": invocation.standard_output_url(),
                }));
            }
        }
        if results.iter().all(Option::is_some) {
            return Ok((results.into_iter().flatten().collect(), stdout));
        }
        tokio::time::sleep(Duration::from_secs(1 << round.min(4)).min(Duration::from_secs(15)))
            .await;
        round += 1;
    }
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= OUTPUT_CHARS {
        return text.to_owned();
    }
    let kept: String = text.chars().take(OUTPUT_CHARS).collect();
    format!("{kept}\n[… truncated; the full output is in the S3 output location]")
}
