//! The command line: argument parsing, logging setup, exit codes. Each command lives in its
//! own file and returns an [`Exit`].

mod approve;
mod cases;
mod decide;
mod deploy_template;
mod dispatch;
mod journal;
mod logging;
mod plan;
mod policy;
mod progress;
mod remind;
mod report;
mod run;
mod schema;
mod seal;
mod serve;
mod table_args;
mod triggers;
mod validate;
mod verify_seal;
mod via_queue;
mod waiting;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::AwsOptions;
use crate::journal::event::Verdict;
use crate::runbook::params::parse_assignment;

/// How a command ended; the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// A step failed.
    StepFailed = 1,
    /// Invalid input: usage, runbook, parameters, event.
    Invalid = 2,
    /// Refused by a safety interlock: lock held, approval denied, limits.
    Refused = 3,
    /// A step waits for a person's decision nobody could give: containment done so far stays,
    /// the run's locks are kept, and `firebreak resume RUN --yes` at a terminal carries on.
    AwaitingApproval = 4,
    /// A bug in firebreak (a panicked task): please report it; the journal says how far the
    /// run got and `resume` carries on.
    Internal = 70,
    /// Interrupted by Ctrl-C; `resume` carries on.
    Interrupted = 130,
}

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    a step failed (see the journal)
  2    invalid input: usage, runbook, parameters or event
  3    refused by a safety interlock: lock held, limits, protected resource, wrong account
  4    waiting for a person's approval (no terminal, no --yes, or an event): resume it with --yes
  70   internal error (a bug in firebreak; the journal shows how far the run got)
  130  interrupted (Ctrl-C); `firebreak resume` carries on";

#[derive(Debug, Parser)]
#[command(
    name = "firebreak",
    version,
    about = "Incident-response runbooks for AWS: contain, preserve evidence, journal every call.",
    long_about = "firebreak runs declarative YAML runbooks that isolate EC2 instances, snapshot \
volumes, revoke IAM credentials, collect evidence through SSM and provision a CloudFormation \
clean room, journaling every step and every AWS call.\n\nStart with `firebreak validate` and \
`firebreak plan` on a runbook: neither needs credentials or network.",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// AWS profile to use (default: the standard chain: environment, AWS_PROFILE, default)
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region (default: from the environment or profile)
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint, e.g. a local emulator (also AWS_ENDPOINT_URL)
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Log line format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log detail on stderr (-v info, -vv debug, -vvv trace; RUST_LOG overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    pub fn aws_options(&self) -> AwsOptions {
        AwsOptions {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--verify-finding`: which findings are read back from their service before a run acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFindingArg {
    /// Security Hub findings (GuardDuty's too when they come through Security Hub)
    SecurityHub,
    /// Security Hub findings and GuardDuty's own events
    All,
    /// None: act on the event as given
    Off,
}

impl VerifyFindingArg {
    pub fn setting(self) -> Option<crate::engine::VerifyFinding> {
        match self {
            VerifyFindingArg::SecurityHub => Some(crate::engine::VerifyFinding::SecurityHub),
            VerifyFindingArg::All => Some(crate::engine::VerifyFinding::All),
            VerifyFindingArg::Off => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks without running them: YAML, structure, actions, templates, parameters
    #[command(
        after_help = "Example:\n  firebreak validate runbooks/*.yaml\n\nPrints one line per valid file; \
every error as FILE:LINE:COL: message with the line underlined. Exit 0 if all are valid, 2 otherwise."
    )]
    Validate(ValidateArgs),
    /// Show what a runbook would do, offline: rendered inputs, API calls, permissions
    #[command(
        after_help = "Example:\n  firebreak plan runbooks/ec2-instance-compromise.yaml -p instance_id=i-0123456789abcdef0\n\n\
Needs no credentials and no network. Values that depend on an earlier step's outputs are shown \
as that reference; sensitive parameters print as [redacted]."
    )]
    Plan(PlanArgs),
    /// Run a runbook: every step and AWS call is journaled; exit 0/1/2/3/130
    #[command(
        after_help = "Examples:\n  firebreak run runbooks/incident-kickoff.yaml -p summary=\"miner on web-1\" --yes\n  \
firebreak run runbooks/incident-kickoff.yaml -p summary=drill --dry-run --output json\n\n\
Prints the run id and journal path when it starts and ends. Approvals (core.approve) are asked on a \
terminal; --yes approves them (journaled as approved by flag); with neither the run waits for a person \
(exit 4: `firebreak approvals` lists it, `firebreak approve|deny RUN --reason TEXT` decides). \
Ctrl-C finishes the step in flight, journals the interruption and exits 130; `firebreak resume` carries on."
    )]
    Run(RunArgs),
    /// Carry on an interrupted or crashed run from its journal
    #[command(
        after_help = "Examples:\n  firebreak resume 20261128T100127Z-3f9a2c\n  firebreak resume ~/.local/state/firebreak/runs/20261128T100127Z-3f9a2c.jsonl --yes\n\n\
Finished steps are not run again (their outputs come from the journal); the step that was in flight runs \
again with the same idempotency key. Sensitive parameters are never journaled: give them again with -p."
    )]
    Resume(ResumeArgs),
    /// List the runs that wait for a person's decision (nothing is changed)
    #[command(
        after_help = "Examples:\n  firebreak approvals\n  firebreak approvals --journal-dir /var/lib/firebreak/runs --output json\n\n\
One line per waiting run: run id, runbook, step, since, expiry, targets, and the question asked. An \
approval past its deadline is marked expired: the next approve, deny or resume that touches the run \
denies it. Listing never decides anything."
    )]
    Approvals(ApprovalsArgs),
    /// Approve the step a waiting run waits at, and carry the run on
    #[command(
        after_help = "Example:\n  firebreak approve 20261128T100127Z-3f9a2c --reason \"memory captured; stop it\"\n\n\
Writes a decision record to the run's journal — your AWS identity (sts:GetCallerIdentity), local user, \
host, reason and time — then resumes the run with your credentials (every interlock again). A step's \
`approvers` patterns must match your identity, or the decision is refused (exit 3) and nothing is \
written. An approval past its deadline is denied instead (exit 3). Exit codes as for resume."
    )]
    Approve(DecideArgs),
    /// Deny the step a waiting run waits at: its dependent steps skip and the run finishes
    #[command(
        after_help = "Example:\n  firebreak deny 20261128T100127Z-3f9a2c --reason \"production database: keep it running\"\n\n\
Writes a decision record like approve, then resumes the run: steps whose `when` depends on the \
approval skip, and the run finishes succeeded with the denial in its journal."
    )]
    Deny(DecideArgs),
    /// Remind people of approvals that expire soon (run it on a schedule)
    #[command(
        after_help = "Example:\n  firebreak remind --within 2h      # e.g. every 10 minutes from cron or EventBridge Scheduler\n\n\
Each run that waits at an approval whose deadline is less than --within away is resumed with nobody \
to ask: every interlock runs again, the run waits again at the same approval with the same deadline, \
and the runbook's awaiting_approval notification goes out again marked as a reminder. Once per \
approval. Expired approvals are left to the next approve, deny or resume (which deny them)."
    )]
    Remind(RemindArgs),
    /// List cases: one per resource, with the runs that contained and rechecked it, the
    /// findings that joined, and the decisions it waits for
    #[command(
        after_help = "Examples:\n  firebreak cases\n  firebreak cases --output json\n\n\
A trigger with `case_key` keeps one case per resource: later findings within `case_window` join \
the running or waiting case (no second containment) or recheck a finished one. Each case's index is \
hash-chained; exit 1 if one does not verify."
    )]
    Cases(CasesArgs),
    /// Run the runbooks whose triggers match EventBridge events (GuardDuty, Security Hub findings)
    #[command(
        after_help = "Examples:\n  firebreak dispatch --event finding.json --runbooks runbooks/ --yes\n  \
aws events ... | firebreak dispatch --event - --dry-run --output json\n\n\
Reads one event or an array of events. For each, every runbook whose trigger matches runs with the \
trigger's parameters, validated like -p values. The same finding runs once: a repeat is a duplicate while \
its run is in progress or after it succeeded; after a failure the run is resumed. Exit: 0 all fine (or no \
match), 1 a run failed, 3 a run was refused by an interlock, 2 a matched trigger's parameters were invalid."
    )]
    Dispatch(DispatchArgs),
    /// Work an SQS queue that EventBridge rules feed: each message is an event for dispatch
    #[command(
        after_help = "Example:\n  firebreak serve --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/firebreak-findings \\\n    \
--runbooks runbooks --seal s3://evidence-bucket/cases --sign-key alias/firebreak-heads --concurrency 8\n\n\
Long-polls the queue and hands each message to dispatch's code (same matching, interlocks, de-duplication \
and cases), up to --concurrency runs at once. A message is deleted once its runs are durable and sealed \
(succeeded, waiting for a person, refused, a duplicate, nothing matched); while a run lives its message \
stays invisible (renewed at half the visibility timeout, up to SQS's 12 hours); a failed run leaves its \
message to come back (the run resumes then); a malformed message is logged by id and left for the queue's \
dead-letter queue. Logs are JSON lines on stderr: one per run event and per message, and a health line \
every --health-every. SIGTERM or Ctrl-C: no new messages, runs in flight stop at their next step boundary \
(never between an interface's two isolation moves), their messages are made visible again, exit 0. \
--seal is required: a worker's disk is not evidence. Several workers may share one queue; with \
--journal-dir they must share that directory (a file system that honours flock)."
    )]
    Serve(ServeArgs),
    /// Print the CloudFormation template that deploys `serve` for these runbooks
    #[command(
        name = "deploy-template",
        after_help = "Example:\n  firebreak deploy-template runbooks/*.yaml --seal s3://evidence-bucket/cases \\\n    \
--sign-key arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab -o firebreak-stack.json\n  \
aws cloudformation deploy --template-file firebreak-stack.json --stack-name firebreak \\\n    \
--capabilities CAPABILITY_IAM --parameter-overrides WorkerImage=… Subnets=… SecurityGroups=…\n\n\
deploy/firebreak.yaml (an encrypted SQS queue with a dead-letter queue, the DynamoDB table with \
point-in-time recovery, an ECS Fargate service running serve) filled in from the runbooks: one \
EventBridge rule per trigger, a queue policy admitting only those rules (aws:SourceArn), the \
worker's policy (policy --worker: the runbooks' permissions, sealed, and its own calls on its \
queue and table), and the seal in the task's environment. Rules live in one region: deploy the \
stack in every region where GuardDuty runs (a StackSet). Exit 0, or 2 on bad input."
    )]
    DeployTemplate(DeployTemplateArgs),
    /// Print the runbooks' triggers; with --eventbridge, the rule patterns as JSON
    #[command(
        after_help = "Example:\n  firebreak triggers runbooks/*.yaml --eventbridge\n\n\
The printed event_pattern is what to put in the EventBridge rule: the deployed rule and firebreak's local \
matching use the same pattern."
    )]
    Triggers(TriggersArgs),
    /// Check or read a run's journal
    #[command(subcommand)]
    Journal(JournalCommand),
    /// The least-privilege IAM policy the engine needs for the given runbooks
    #[command(
        after_help = "Example:\n  firebreak policy runbooks/*.yaml --output json > firebreak-policy.json\n\n\
Derived from each action's declared permissions and resource scope, and the engine's own calls \
(caller identity; tag reads for protected_tags; sns:Publish for notify; the drill preflight unless \
--no-drills; sts:AssumeRole with --assume-role): no wildcard actions; resources and condition keys \
scoped where AWS allows it. The same permissions `plan --dry-run` lists, no more."
    )]
    Policy(PolicyArgs),
    /// A case report built only from a run's journal: Markdown for a ticket, HTML to read and print
    #[command(
        after_help = "Examples:\n  firebreak report ~/.local/state/firebreak/runs/20261128T100127Z-3f9a2c.jsonl > case.md\n  \
firebreak report RUN.jsonl --format html -o case.html\n\n\
The journal's verification result comes first; evidence files are re-hashed. The HTML is one \
self-contained file with the run drawn as a timeline."
    )]
    Report(ReportArgs),
    /// Print the JSON Schema of the runbook format (for editors' YAML plugins)
    #[command(after_help = "Example:\n  firebreak schema > runbook.schema.json")]
    Schema,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Runbook files
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Leave out what drills need (the permission preflight: iam:SimulatePrincipalPolicy,
    /// iam:GetRole) for a role that only runs live
    #[arg(long)]
    pub no_drills: bool,
    /// The role assumed for findings of other accounts (as given to `run`/`dispatch`):
    /// adds sts:AssumeRole on it
    #[arg(long, value_name = "ARN_TEMPLATE", env = "FIREBREAK_ASSUME_ROLE")]
    pub assume_role: Option<String>,
    /// Runs are sealed here (`run --seal`): adds the bucket's Object Lock read, PutObject and
    /// GetObject on it
    #[arg(long, value_name = "S3_URL", env = "FIREBREAK_SEAL")]
    pub seal: Option<String>,
    /// Heads are signed with this key (`run --sign-key`): adds kms:DescribeKey and kms:Sign
    #[arg(long, value_name = "KMS_KEY_ARN", env = "FIREBREAK_SIGN_KEY")]
    pub sign_key: Option<String>,
    /// For a `serve` worker's role: adds its own calls on --queue-arn (receive, delete, keep
    /// invisible), on --table and on --journal-key-parameter when given
    #[arg(long, requires = "queue_arn")]
    pub worker: bool,
    /// The queue the worker serves
    #[arg(long, value_name = "ARN", requires = "worker")]
    pub queue_arn: Option<String>,
    /// The DynamoDB table of the workers' shared state
    #[arg(long, value_name = "NAME", requires = "worker")]
    pub table: Option<String>,
    /// The SSM parameter (SecureString) holding the journal's HMAC key
    #[arg(long, value_name = "NAME", requires = "worker")]
    pub journal_key_parameter: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A journal file, or a run in the workers' table (dynamodb://TABLE/RUN_ID)
    #[arg(value_name = "JOURNAL_PATH|DYNAMODB_URL")]
    pub journal: PathBuf,
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// Write to this file instead of stdout
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A parameter value; repeat for each. Lists are comma-separated: -p ids=i-1,i-2
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_assignment)]
    pub params: Vec<(String, String)>,
    /// The triggering event (JSON), readable as `event.*` in templates
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,
    /// Read the event's findings back from their service before acting, refusing a finding
    /// that does not exist, is closed, or names other resources (off by default here: the
    /// event is a person's input; on by default for dispatch)
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = VerifyFindingArg::Off, requires = "event")]
    pub verify_finding: VerifyFindingArg,
    /// A drill: change nothing (EC2 changes are sent with DryRun=true, other changes not at all);
    /// approvals are recorded as decision points, not asked; ends with a drill verdict
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: skip the permission preflight (iam:SimulatePrincipalPolicy)
    #[arg(long, requires = "dry_run")]
    pub no_preflight: bool,
    /// Approve every `core.approve` step (journaled as approved by flag)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Where journals and locks live [default: $FIREBREAK_JOURNAL_DIR, else $XDG_STATE_HOME/firebreak/runs, else ~/.local/state/firebreak/runs]
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    #[command(flatten)]
    pub table: TableArgs,
    /// Take over locks left by a crashed run of another id (journaled)
    #[arg(long)]
    pub force_unlock: bool,
    #[command(flatten)]
    pub interlocks: InterlockArgs,
    /// Break-glass: act on resources carrying a protected tag (needs --reason; journaled)
    #[arg(long, requires = "reason")]
    pub override_protection: bool,
    /// Why the protection is overridden (journaled with the caller identity)
    #[arg(long, value_name = "TEXT", requires = "override_protection")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub custody: CustodyArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Where the journal and evidence leave the host (see deploy/evidence.yaml).
#[derive(Debug, Args)]
pub struct CustodyArgs {
    /// Seal the journal (at every step end and run end) and every evidence file in an S3 bucket
    /// with Object Lock in COMPLIANCE mode: s3://BUCKET/PREFIX. A failed upload never stops
    /// containment; `firebreak journal seal RUN_ID` completes it
    #[arg(long, value_name = "S3_URL", env = "FIREBREAK_SEAL")]
    pub seal: Option<String>,
    /// Sign the journal's head at every end of the run with this KMS key (ECC_NIST_P256,
    /// SIGN_VERIFY; id, ARN or alias)
    #[arg(
        long,
        value_name = "KMS_KEY",
        env = "FIREBREAK_SIGN_KEY",
        requires = "seal"
    )]
    pub sign_key: Option<String>,
    /// The account that must own the seal's bucket (default: the caller's own account)
    #[arg(long, value_name = "ACCOUNT", requires = "seal")]
    pub seal_owner: Option<String>,
    /// Refuse a bucket whose default COMPLIANCE retention is shorter than this many days
    #[arg(long, value_name = "DAYS", default_value_t = 1)]
    pub seal_retention_days: u32,
}

impl CustodyArgs {
    /// The engine's setting; a malformed `--seal` is an error naming the flag.
    pub fn custody(&self) -> Result<Option<crate::journal::event::Custody>, String> {
        let Some(seal) = &self.seal else {
            return Ok(None);
        };
        let target = crate::custody::SealTarget::parse(seal).map_err(|e| format!("--seal: {e}"))?;
        Ok(Some(crate::journal::event::Custody {
            seal: target.to_string(),
            owner: self.seal_owner.clone().unwrap_or_default(),
            min_retention_days: self.seal_retention_days,
            sign_key: self.sign_key.clone(),
        }))
    }
}

/// Interlocks that apply to `run` and `dispatch` alike.
#[derive(Debug, Args, Clone)]
pub struct InterlockArgs {
    /// Lower the runbook's limits.max_targets to N; with run and resume also raise it, up to
    /// the runbook's limits.max_targets_hard (journaled with who did it). dispatch never raises it
    #[arg(long, value_name = "N")]
    pub max_targets: Option<u32>,
    /// Role to assume for findings of another account, a template over event.*,
    /// e.g. 'arn:aws:iam::{{event.account}}:role/firebreak-responder' (without an event: the
    /// role's ARN, and the run acts in its account)
    #[arg(long, value_name = "ARN_TEMPLATE", env = "FIREBREAK_ASSUME_ROLE")]
    pub assume_role: Option<String>,
    /// The external id the role's trust policy asks for
    #[arg(
        long,
        value_name = "ID",
        env = "FIREBREAK_ASSUME_ROLE_EXTERNAL_ID",
        requires = "assume_role"
    )]
    pub assume_role_external_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeployTemplateArgs {
    /// Runbook files (the same the workers' image holds at /runbooks)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where every run is sealed (the evidence stack's Seal output)
    #[arg(long, value_name = "S3_URL", env = "FIREBREAK_SEAL")]
    pub seal: String,
    /// The key heads are signed with (the evidence stack's SigningKey output)
    #[arg(long, value_name = "KMS_KEY_ARN", env = "FIREBREAK_SIGN_KEY")]
    pub sign_key: Option<String>,
    /// The SSM SecureString holding the journal's HMAC key, if journals are HMAC-chained
    #[arg(long, value_name = "NAME")]
    pub journal_key_parameter: Option<String>,
    /// Write to this file instead of stdout
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Where a run is kept: the workers' DynamoDB table instead of the journal directory alone.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// Keep the run in the workers' DynamoDB table (dynamodb://TABLE): its journal is stored
    /// there line by line before the local copy, and its lease, finding claims and locks live
    /// there, so workers and people share the run
    #[arg(
        long = "journal",
        value_name = "dynamodb://TABLE",
        env = "FIREBREAK_JOURNAL"
    )]
    pub journal: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The SQS queue EventBridge rules target
    #[arg(long, value_name = "URL", env = "FIREBREAK_QUEUE_URL")]
    pub queue_url: String,
    /// Folder of runbooks to match against
    #[arg(long, value_name = "DIR", default_value = "runbooks")]
    pub runbooks: PathBuf,
    /// Runs at once, one message each
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// How long a received message stays invisible, in seconds; renewed at half of it while
    /// its runs live
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(2..=43_200))]
    pub visibility_timeout: u32,
    /// Long-poll wait, in seconds (SQS allows 0–20)
    #[arg(long, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub wait_seconds: u32,
    /// Seconds between health lines
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub health_every: u32,
    /// The SSM parameter (SecureString) holding the journal's HMAC key, read once at start; a
    /// Secrets Manager secret through /aws/reference/secretsmanager/NAME. A worker never takes
    /// the key from its environment (FIREBREAK_JOURNAL_KEY is refused)
    #[arg(long, value_name = "NAME", env = "FIREBREAK_JOURNAL_KEY_PARAMETER")]
    pub journal_key_parameter: Option<String>,
    /// Keep runs in a DynamoDB table shared by every worker (deploy/firebreak.yaml's
    /// StateTable): each journal line is stored there before the worker's local copy, and run
    /// leases, finding claims and resource locks live there, so workers need no shared disk and
    /// a dead worker's runs are taken up by another. Without it, workers must share
    /// --journal-dir
    #[arg(long, value_name = "dynamodb://TABLE", env = "FIREBREAK_JOURNAL")]
    pub journal: Option<String>,
    /// How long one message is held before its runs stop at their next step boundary and are
    /// carried on by resume requests on the queue (SQS keeps a message invisible 12 h at most)
    #[arg(long, value_name = "SECONDS", default_value_t = 42_600, value_parser = clap::value_parser!(u32).range(2..=43_200))]
    pub hold_limit: u32,
    /// How long a resume request waits in the queue before a worker takes it (one for a run
    /// that lost its lease waits at least --lease-seconds, so the lost lease has run out)
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(0..=900))]
    pub resume_delay: u32,
    /// How long a worker's lease on a run lasts without renewal (renewed every third of it);
    /// a dead worker's run is taken up this long after its last renewal
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(3..=3600))]
    pub lease_seconds: u32,
    #[command(flatten)]
    pub unattended: UnattendedArgs,
}

/// How runs that events start go, for `dispatch` and `serve` alike.
#[derive(Debug, Args)]
pub struct UnattendedArgs {
    /// Read each finding back from its service (from this account, in the event's region)
    /// before acting: a finding that does not exist, is archived, resolved or suppressed, or
    /// names other resources than the event is refused (exit 3) and nothing is changed.
    /// GuardDuty's own events need `all` (guardduty:GetFindings)
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = VerifyFindingArg::SecurityHub)]
    pub verify_finding: VerifyFindingArg,
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    #[command(flatten)]
    pub interlocks: InterlockArgs,
    #[command(flatten)]
    pub custody: CustodyArgs,
}

#[derive(Debug, Args)]
pub struct DispatchArgs {
    /// The event file (JSON: one event or an array), or - for stdin
    #[arg(long, value_name = "FILE|-")]
    pub event: PathBuf,
    /// Folder of runbooks to match against
    #[arg(long, value_name = "DIR", default_value = "runbooks")]
    pub runbooks: PathBuf,
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, requires = "dry_run")]
    pub no_preflight: bool,
    /// Refused: an event never approves for a person (a run that needs a decision waits for
    /// one, exit 4; `firebreak resume RUN --yes` at a terminal gives it)
    #[arg(long, short = 'y', hide = true)]
    pub yes: bool,
    #[command(flatten)]
    pub unattended: UnattendedArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct TriggersArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print each trigger's EventBridge event pattern as JSON
    #[arg(long)]
    pub eventbridge: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// A run id (looked up in the journal directory) or a journal's path
    #[arg(value_name = "RUN_ID|JOURNAL_PATH")]
    pub run: String,
    /// Sensitive parameters again (they are never journaled)
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_assignment)]
    pub params: Vec<(String, String)>,
    /// The run's runbook, when it is no longer where the journal says (a journal moved to
    /// another machine); it must be byte for byte the one the run started with (same SHA-256)
    #[arg(long, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    /// Approve every `core.approve` step left (journaled as approved by flag); without it a
    /// terminal asks, and with no terminal the run waits again (exit 4)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub interlocks: InterlockArgs,
    /// Break-glass on this resume: act on resources carrying a protected tag (needs --reason;
    /// journaled). A resume checks every interlock again; an override is never carried over
    /// from the run that started it.
    #[arg(long, requires = "reason")]
    pub override_protection: bool,
    /// Why the protection is overridden (journaled with the caller identity)
    #[arg(long, value_name = "TEXT", requires = "override_protection")]
    pub reason: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    #[command(flatten)]
    pub table: TableArgs,
    #[arg(long)]
    pub force_unlock: bool,
    /// Ask the workers to resume the run instead (a run a worker holds in the table): a resume
    /// request goes to their queue, and every interlock is checked again there
    #[arg(long, value_name = "QUEUE_URL", conflicts_with_all = ["params", "runbook", "yes", "override_protection", "force_unlock"])]
    pub via_queue: Option<String>,
    /// (Without --seal a resume seals where the run started sealing.)
    #[command(flatten)]
    pub custody: CustodyArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RemindArgs {
    /// Remind of approvals whose deadline is less than this away, e.g. `2h`
    #[arg(long, value_name = "DURATION", default_value = "2h")]
    pub within: String,
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CasesArgs {
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The waiting run's id (see `firebreak approvals`) or its journal's path
    #[arg(value_name = "RUN_ID|JOURNAL_PATH")]
    pub run: String,
    /// The step decided (default: the one the run waits at; when given, it must be that one)
    #[arg(long, value_name = "ID")]
    pub step: Option<String>,
    /// Why: journaled in the decision record (no secrets here; it is printed and notified)
    #[arg(long, value_name = "TEXT", required = true)]
    pub reason: String,
    /// Sensitive parameters again (they are never journaled)
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_assignment)]
    pub params: Vec<(String, String)>,
    /// The run's runbook, when it is no longer where the journal says (same SHA-256)
    #[arg(long, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    #[command(flatten)]
    pub table: TableArgs,
    /// When the run's journal is not in the journal directory (a worker parked it), take the
    /// run's newest sealed journal from this seal (s3://BUCKET/PREFIX), once its chain verifies
    #[arg(long, value_name = "S3_URL")]
    pub from_seal: Option<String>,
    /// The account that must own the seal's bucket (default: the caller's own account)
    #[arg(long, value_name = "ACCOUNT", requires = "from_seal")]
    pub bucket_owner: Option<String>,
    /// Send the decision to the workers' queue (a run a worker holds in the table): a worker
    /// records it as yours once SQS confirms you sent it (the message's SenderId), then carries
    /// the run on. Sent with your credentials; needs sqs:SendMessage on the queue
    #[arg(long, value_name = "QUEUE_URL", conflicts_with_all = ["from_seal", "params", "runbook"])]
    pub via_queue: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Recompute the hash chain and check the evidence files, locally or from the seal; exit 0 intact and complete, 1 intact but incomplete, 2 tampered, torn, evidence changed or a signature that does not check
    #[command(
        after_help = "Examples:\n  firebreak journal verify ~/.local/state/firebreak/runs/20261128T100127Z-3f9a2c.jsonl\n  \
firebreak journal verify s3://evidence-bucket/cases/20261128T100127Z-3f9a2c --kms\n  \
firebreak journal verify RUN.jsonl --against s3://evidence-bucket/cases/20261128T100127Z-3f9a2c\n  \
firebreak journal verify RUN.jsonl --public-key signing-key.pem\n  \
firebreak journal verify dynamodb://firebreak-state/20261128T100127Z-3f9a2c\n\n\
From a table (dynamodb://TABLE/RUN_ID): the run's records as a worker wrote them, checked like a file \
(its evidence is in the seal: verify that with s3://…). \
From the seal (s3://BUCKET/PREFIX/RUN_ID): the newest sealed journal's chain, its name, its COMPLIANCE \
retention, the newest signed statement, and every sealed evidence object's CRC64NVME and retention. \
--against: the local file must hold the sealed copy byte for byte, followed only by custody records. \
--kms / --public-key: the newest signed statement must sign the journal's head and check out (required). \
With FIREBREAK_JOURNAL_KEY set the chain is checked as HMAC-SHA-256 with that key."
    )]
    Verify {
        /// A journal file, a run's seal (s3://BUCKET/PREFIX/RUN_ID) or a run in a table
        /// (dynamodb://TABLE/RUN_ID)
        #[arg(value_name = "JOURNAL_PATH|S3_URL|DYNAMODB_URL")]
        journal: String,
        /// Also compare the local journal with the run's seal (s3://BUCKET/PREFIX/RUN_ID)
        #[arg(long, value_name = "S3_URL")]
        against: Option<String>,
        /// Require a signed statement of the head and check it with kms:Verify
        #[arg(long)]
        kms: bool,
        /// Require a signed statement and check it offline with this public key (PEM or DER)
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// The account that must own the seal's bucket (default: the caller's own account)
        #[arg(long, value_name = "ACCOUNT")]
        bucket_owner: Option<String>,
    },
    /// Complete a run's seal: upload what the journal holds and the seal lacks, sign the head
    #[command(
        after_help = "Examples:\n  firebreak journal seal 20261128T100127Z-3f9a2c\n  \
firebreak journal seal RUN.jsonl --seal s3://evidence-bucket/cases --sign-key alias/firebreak-heads\n\n\
For a run whose seal failed (a `seal_failed` record, a warning when it ended) or that crashed between \
a record and its upload. Seals where the run chose unless --seal is given; refuses while the run is \
live. Exit 0 when everything is sealed, 1 when something still failed, 2 on bad input."
    )]
    Seal {
        #[arg(value_name = "RUN_ID|JOURNAL_PATH")]
        run: String,
        #[arg(long, value_name = "DIR")]
        journal_dir: Option<PathBuf>,
        #[command(flatten)]
        custody: CustodyArgs,
    },
    /// A readable timeline of a run (or its records as JSON)
    #[command(
        after_help = "Example:\n  firebreak journal show ~/.local/state/firebreak/runs/20261128T100127Z-3f9a2c.jsonl"
    )]
    Show {
        /// A journal file or a run in a table (dynamodb://TABLE/RUN_ID)
        #[arg(value_name = "JOURNAL_PATH|DYNAMODB_URL")]
        journal: String,
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Print a run's journal as JSON Lines, byte for byte as a journal file holds it
    #[command(
        after_help = "Examples:\n  firebreak journal export dynamodb://firebreak-state/20261128T100127Z-3f9a2c > run.jsonl\n  \
firebreak journal verify run.jsonl\n\n\
A worker's journal lives in DynamoDB, one item per record holding the record's line verbatim: the \
export is those lines in order, so every hash is the one the worker wrote and the file verifies like \
any other. Exit 0, or 2 when the location is bad or the table cannot be read."
    )]
    Export {
        #[arg(value_name = "JOURNAL_PATH|DYNAMODB_URL")]
        journal: String,
    },
    /// How many durable records per second a journal sustains on this disk (every AWS call of a run is a record that waits for its sync)
    #[command(
        after_help = "Example:\n  firebreak journal bench --dir ~/.local/state/firebreak/runs\n\n\
Writes and removes four scratch journals in DIR: one appender (a sync per record), 16 and 64\n\
concurrent appenders sharing syncs (group commit, as a fleet run's items do), and batches of\n\
100. Run it on the disk the journals will live on."
    )]
    Bench {
        /// Where to write the scratch journals (default: the journal directory)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Records per way of appending
        #[arg(long, default_value_t = 5000)]
        records: usize,
    },
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Runbook files
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A parameter value; repeat for each. Lists are comma-separated: -p ids=i-1,i-2
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_assignment)]
    pub params: Vec<(String, String)>,
    /// A triggering event (JSON) to render `event.*` templates with
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,
    /// Plan a drill (`run --dry-run`): adds the permission preflight's calls
    #[arg(long)]
    pub dry_run: bool,
    /// The role assumed for findings of other accounts: adds sts:AssumeRole
    #[arg(long, value_name = "ARN_TEMPLATE", env = "FIREBREAK_ASSUME_ROLE")]
    pub assume_role: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The runbook and optional event of `plan` and `run`; errors are printed, exit 2.
fn load_inputs(
    file: &std::path::Path,
    event: Option<&std::path::Path>,
) -> Result<(crate::check::LoadedRunbook, Option<serde_json::Value>), Exit> {
    let loaded = crate::check::load(file).map_err(|error| {
        eprintln!("{error}");
        Exit::Invalid
    })?;
    let event = event.map(read_event).transpose().map_err(|error| {
        eprintln!("error: {error}");
        Exit::Invalid
    })?;
    Ok((loaded, event))
}

/// An event from a file, or from stdin when the path is `-`.
/// Every runbook file, loaded and checked; the first that fails is printed and ends the command.
fn load_all(files: &[PathBuf]) -> Result<Vec<crate::check::LoadedRunbook>, Exit> {
    files
        .iter()
        .map(|path| {
            crate::check::load(path).map_err(|error| {
                eprintln!("{error}");
                Exit::Invalid
            })
        })
        .collect()
}

fn read_event(path: &std::path::Path) -> Result<serde_json::Value, crate::event::EventError> {
    if path.as_os_str() != "-" {
        return crate::event::read(path);
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
        crate::event::EventError::Read {
            path: "-".into(),
            source,
        }
    })?;
    crate::event::parse("-", &text)
}

/// Parses arguments, runs the command, returns the exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.global.log_format, cli.global.verbose);
    let exit = match &cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Run(args) => run::run(args, &cli.global),
        Command::Resume(args) => match &args.via_queue {
            Some(queue) => via_queue::send(
                queue,
                via_queue::Request::Resume { run_id: &args.run },
                args.output,
                &cli.global,
            ),
            None => run::resume(args, &cli.global),
        },
        Command::Approvals(args) => waiting::run(args),
        Command::Cases(args) => cases::run(args),
        Command::Remind(args) => remind::run(args, &cli.global),
        Command::Approve(args) => decide::run(args, Verdict::Approve, &cli.global),
        Command::Deny(args) => decide::run(args, Verdict::Deny, &cli.global),
        Command::Dispatch(args) => dispatch::run(args, &cli.global),
        Command::Serve(args) => serve::run(args, &cli.global),
        Command::DeployTemplate(args) => deploy_template::run(args),
        Command::Triggers(args) => triggers::run(args),
        Command::Journal(command) => journal::run(command, &cli.global),
        Command::Policy(args) => policy::run(args),
        Command::Report(args) => report::run(args, &cli.global),
        Command::Schema => schema::run(),
    };
    std::process::ExitCode::from(exit as u8)
}
