//! The integration tests, one binary (one link of the AWS SDK instead of thirty): against moto
//! behind the counting/fault proxy, with mocked clients where moto cannot answer, and the built
//! binary for the command line. The harness is `tests/support/`.

#[path = "../support/mod.rs"]
mod support;

mod approval_tty;
mod approvals;
mod aws_errors;
mod aws_smoke;
mod canaries;
mod cases;
mod clean_room;
mod cli;
mod crash_matrix;
mod crash_runbooks;
mod custody;
mod custody_mocks;
mod declared_calls;
mod deploy_template;
mod dispatch;
mod drill;
mod ec2_addresses;
mod ec2_autoscaling;
mod ec2_collection;
mod ec2_console;
mod ec2_contain;
mod ec2_isolate;
mod ec2_metadata;
mod ec2_mocked;
mod ec2_profile;
mod ec2_protect;
mod ec2_release;
mod ec2_runbook;
mod ec2_snapshot;
mod ec2_stop;
mod ec2_tag;
mod engine_mocks;
mod faults;
mod finding_updates;
mod fleet;
mod groups;
mod hostile;
mod iam_credentials;
mod iam_mocks;
mod iam_persistence;
mod identity_center;
mod interrupts;
mod journal_format;
mod journal_table;
mod lambda;
mod lambda_compromise;
mod layering;
mod lost_responses;
mod notify;
mod policy;
mod properties;
mod report;
mod run;
mod s3_exposure;
mod serve;
mod serve_table;
mod ssm;
mod table_leases;
mod table_locks;
mod unattended;
mod verify_finding;
