//! How an action fails, in the terms the engine decides on (retry or not, refused or failed).

use crate::aws::{AwsError, ErrorClass};
use crate::journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// An AWS call failed; its class decides retries.
    #[error(transparent)]
    Aws(#[from] Box<AwsError>),
    /// A safety interlock said no (approval denied, protected resource…): the run is refused.
    #[error("refused: {0}")]
    Refused(String),
    /// A person's decision is needed and nobody could be asked: the run parks here.
    #[error("waiting for a person: {0}")]
    Parked(String),
    /// The run was interrupted (Ctrl-C) while a call was being sent again: the step has no
    /// outcome and runs again when the run is resumed.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The step's `timeout` ran out (the message names it).
    #[error("{0}")]
    TimedOut(String),
    /// The step's input does not fit the action (a template that does not render, a value of
    /// the wrong type, fields that exclude each other); retrying cannot help.
    #[error("{0}")]
    Input(String),
    /// The journal could not be written: the run must stop, since nothing more may happen that
    /// cannot be recorded.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Anything else; not retried.
    #[error("{0}")]
    Failed(String),
    /// Failed part-way: `outputs` say exactly what was done (journaled with the failure), so
    /// nothing is guessed and nothing is undone.
    #[error("{error}")]
    Partial {
        error: Box<ActionError>,
        outputs: serde_json::Value,
    },
}

impl From<AwsError> for ActionError {
    fn from(error: AwsError) -> Self {
        ActionError::Aws(Box::new(error))
    }
}

impl ActionError {
    /// The same failure for another item that shared the call (a batched read): the AWS
    /// class and code survive, so each decides its retries as if it had made the call.
    pub fn copy_for_another_asker(&self) -> ActionError {
        match self {
            ActionError::Aws(e) => ActionError::Aws(Box::new(AwsError {
                service: e.service,
                operation: e.operation,
                class: e.class,
                code: e.code.clone(),
                message: e.message.clone(),
                request_id: e.request_id.clone(),
                source: None,
            })),
            ActionError::Refused(m) => ActionError::Refused(m.clone()),
            ActionError::Parked(m) => ActionError::Parked(m.clone()),
            ActionError::Interrupted(m) => ActionError::Interrupted(m.clone()),
            ActionError::TimedOut(m) => ActionError::TimedOut(m.clone()),
            ActionError::Input(m) => ActionError::Input(m.clone()),
            ActionError::Journal(e) => ActionError::Failed(format!("the journal failed: {e}")),
            ActionError::Failed(m) => ActionError::Failed(m.clone()),
            ActionError::Partial { error, outputs } => ActionError::Partial {
                error: Box::new(error.copy_for_another_asker()),
                outputs: outputs.clone(),
            },
        }
    }

    /// The same error, carrying what was done before it.
    pub fn with_outputs(self, outputs: serde_json::Value) -> ActionError {
        ActionError::Partial {
            error: Box::new(self),
            outputs,
        }
    }

    /// What was done before the failure, if the action said.
    pub fn outputs(&self) -> Option<&serde_json::Value> {
        match self {
            ActionError::Partial { outputs, .. } => Some(outputs),
            _ => None,
        }
    }

    /// The underlying error (through `Partial`).
    pub fn root(&self) -> &ActionError {
        match self {
            ActionError::Partial { error, .. } => error.root(),
            other => other,
        }
    }

    /// The class as journaled: an AWS error class, `refused` or `failed`.
    pub fn class(&self) -> &'static str {
        match self.root() {
            ActionError::Aws(e) => e.class.as_str(),
            ActionError::Refused(_) => "refused",
            ActionError::Parked(_) => "parked",
            ActionError::Interrupted(_) => "interrupted",
            ActionError::TimedOut(_) => "timeout",
            ActionError::Input(_) | ActionError::Failed(_) => "failed",
            ActionError::Journal(_) => "journal",
            ActionError::Partial { .. } => "failed",
        }
    }

    /// Only whole failures of a retryable class are retried; a partial one has changed things.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ActionError::Aws(e) if e.class.is_retryable())
    }

    pub fn aws_class(&self) -> Option<ErrorClass> {
        match self.root() {
            ActionError::Aws(e) => Some(e.class),
            _ => None,
        }
    }

    pub fn is_refused(&self) -> bool {
        matches!(self.root(), ActionError::Refused(_))
    }

    /// Nobody could decide: the run parks, whatever the step's `on_failure` says.
    pub fn is_parked(&self) -> bool {
        matches!(self.root(), ActionError::Parked(_))
    }

    /// Ctrl-C stopped a call's re-sends: the step ends without an outcome, the run as
    /// interrupted.
    pub fn is_interrupted(&self) -> bool {
        matches!(self.root(), ActionError::Interrupted(_))
    }

    /// The journal failed: the run stops, whatever the step's `on_failure` says.
    pub fn is_journal(&self) -> bool {
        matches!(self.root(), ActionError::Journal(_))
    }

    pub fn code(&self) -> Option<&str> {
        match self.root() {
            ActionError::Aws(e) => e.code.as_deref(),
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self.root() {
            ActionError::Aws(e) => e.request_id.as_deref(),
            _ => None,
        }
    }
}

/// Whether a failed call failed because the thing does not exist (`NoSuchEntity`,
/// `NoSuchBucketPolicy`, `ResourceNotFoundException`, …).
pub(crate) fn is_not_found(error: &ActionError) -> bool {
    error.aws_class() == Some(ErrorClass::NotFound)
}

/// `Ok(None)` for a not-found error, the value otherwise.
pub(crate) fn found<T>(result: Result<T, ActionError>) -> Result<Option<T>, ActionError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error),
    }
}
