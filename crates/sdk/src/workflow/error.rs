//! How a workflow ends other than with a result: [`WorkflowError`] and [`WorkflowResult`].

use temporalio_protos::temporal::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes;

use crate::failure::{ActivityError, ApplicationFailure};
use crate::payload::PayloadError;

/// What a workflow function returns.
pub type WorkflowResult<T> = Result<T, WorkflowError>;

/// How a workflow ends other than with a result.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowError {
    /// The workflow fails with this application failure.
    Failed(ApplicationFailure),
    /// An activity failed and the workflow did not handle it: the workflow fails with it.
    Activity(ActivityError),
    /// The workflow was cancelled (return this after cleaning up to end as Canceled).
    Cancelled,
    /// Continue as a new run (see
    /// [`WfContext::continue_as_new`](super::WfContext::continue_as_new)).
    ContinueAsNew(Box<ContinueAsNewWorkflowExecutionCommandAttributes>),
}

impl std::fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkflowError::Failed(a) => write!(f, "workflow failed: {a}"),
            WorkflowError::Activity(a) => write!(f, "{a}"),
            WorkflowError::Cancelled => f.write_str("workflow cancelled"),
            WorkflowError::ContinueAsNew(_) => f.write_str("continue as new"),
        }
    }
}

impl From<ActivityError> for WorkflowError {
    fn from(e: ActivityError) -> Self {
        WorkflowError::Activity(e)
    }
}

impl From<ApplicationFailure> for WorkflowError {
    fn from(e: ApplicationFailure) -> Self {
        WorkflowError::Failed(e)
    }
}

impl From<PayloadError> for WorkflowError {
    fn from(e: PayloadError) -> Self {
        WorkflowError::Failed(
            ApplicationFailure::non_retryable(e.to_string()).with_type("PayloadError"),
        )
    }
}
