//! `serve`: a worker that long-polls an SQS queue EventBridge rules feed and hands each
//! message to the same code as `dispatch`. SQS is the distribution: several workers on one
//! queue share the work, a message is deleted only once its runs are durable (and sealed), a
//! message whose run failed comes back, and the queue's redrive policy moves what never
//! succeeds to a dead-letter queue.
//!
//! Files: `queue` (the SQS calls), `message` (what a message is: an event, a decision, a
//! resume), `sender` (checking who sent a decision), `handle` (one message, for serve and
//! Lambda), `serve` (the loop), `health` (counters and the health line), `log` (one JSON line
//! per run event), `lambda` (the Lambda handler's logic: the same messages, within an
//! invocation's deadline), `journal_key` (the HMAC key from Parameter Store).

pub mod handle;
pub mod health;
pub mod journal_key;
pub mod lambda;
pub mod log;
pub mod message;
pub mod queue;
pub mod sender;
pub mod serve;
