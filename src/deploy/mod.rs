//! `deploy-template`: `deploy/firebreak.yaml` (the queue, dead-letter queue, table and ECS
//! service for `serve`) filled in from the runbooks: one EventBridge rule per trigger, a queue
//! policy admitting only those rules (`aws:SourceArn`), the worker's least-privilege policy
//! (`policy --worker`) on that queue and table, and the seal baked into the task.

mod template;

pub use template::{DeployOptions, worker_template};
