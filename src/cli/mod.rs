//! The command line: argument parsing, logging setup, exit codes. Each command lives in its
//! own file and returns an [`Exit`].

mod logging;
mod plan;
mod schema;
mod validate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::AwsOptions;
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
    /// Interrupted by Ctrl-C; `resume` carries on.
    Interrupted = 130,
}

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    a step failed (see the journal)
  2    invalid input: usage, runbook, parameters or event
  3    refused by a safety interlock: lock held, approval denied, limits
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
    /// Print the JSON Schema of the runbook format (for editors' YAML plugins)
    #[command(after_help = "Example:\n  firebreak schema > runbook.schema.json")]
    Schema,
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
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Parses arguments, runs the command, returns the exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.global.log_format, cli.global.verbose);
    let exit = match &cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Schema => schema::run(),
    };
    std::process::ExitCode::from(exit as u8)
}
