//! Typed client errors, derived from gRPC statuses and their Temporal error details the same way
//! the official SDKs do.

use prost::Message;
use temporalio_protos::google::rpc::Status as RpcStatus;
use temporalio_protos::temporal::api::errordetails::v1 as details;
use temporalio_protos::temporal::api::failure::v1::Failure;
use tonic::Code;

use crate::payload::PayloadError;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached at all.
    #[error("cannot reach the server at {address}: {message}")]
    Unreachable { address: String, message: String },
    /// A start found a run with the same workflow id that the id policies do not let it replace.
    #[error("workflow execution already started (workflow id {workflow_id}, run id {run_id})")]
    WorkflowAlreadyStarted { workflow_id: String, run_id: String },
    /// Something else with that name already exists (a namespace, a search attribute).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// No such namespace.
    #[error("namespace not found: {0}")]
    NamespaceNotFound(String),
    /// No such workflow execution (or it is closed, for signals and cancels).
    #[error("not found: {0}")]
    NotFound(String),
    /// The query handler failed, or no handler had that name.
    #[error("query failed: {message}")]
    QueryFailed {
        message: String,
        failure: Option<Box<Failure>>,
    },
    /// The query was rejected by its reject condition; `status` is the workflow's status.
    #[error("query rejected: workflow status is {status}")]
    QueryRejected { status: String },
    /// The workflow ended in failure; `failure` holds the whole cause chain.
    #[error("workflow failed: {}", failure_chain(failure))]
    WorkflowFailed { failure: Box<Failure> },
    /// The workflow was cancelled.
    #[error("workflow was cancelled")]
    WorkflowCanceled,
    /// The workflow was terminated.
    #[error("workflow was terminated: {reason}")]
    WorkflowTerminated { reason: String },
    /// The workflow ran past its run or execution timeout.
    #[error("workflow timed out")]
    WorkflowTimedOut,
    /// The workflow continued as new and the caller asked not to follow it.
    #[error("workflow continued as new in run {new_run_id}")]
    WorkflowContinuedAsNew { new_run_id: String },
    /// The update was rejected or its handler failed.
    #[error("update failed: {}", failure_chain(failure))]
    UpdateFailed { failure: Box<Failure> },
    /// The request was invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Any other gRPC error.
    #[error("{}: {}", .0.code(), .0.message())]
    Rpc(tonic::Status),
}

/// `message (Type) <- cause message (Type) <- ...`
pub fn failure_chain(f: &Failure) -> String {
    let mut out = String::new();
    let mut cur = Some(f);
    while let Some(f) = cur {
        if !out.is_empty() {
            out.push_str(" <- ");
        }
        out.push_str(&f.message);
        if let Some(kind) = failure_kind(f) {
            out.push_str(&format!(" ({kind})"));
        }
        cur = f.cause.as_deref();
    }
    out
}

fn failure_kind(f: &Failure) -> Option<String> {
    use temporalio_protos::temporal::api::failure::v1::failure::FailureInfo as I;
    Some(match f.failure_info.as_ref()? {
        I::ApplicationFailureInfo(a) if !a.r#type.is_empty() => a.r#type.clone(),
        I::ApplicationFailureInfo(_) => "ApplicationFailure".into(),
        I::TimeoutFailureInfo(_) => "TimeoutFailure".into(),
        I::CanceledFailureInfo(_) => "CanceledFailure".into(),
        I::TerminatedFailureInfo(_) => "TerminatedFailure".into(),
        I::ServerFailureInfo(_) => "ServerFailure".into(),
        I::ResetWorkflowFailureInfo(_) => "ResetWorkflowFailure".into(),
        I::ActivityFailureInfo(a) => format!(
            "ActivityFailure {}",
            a.activity_type
                .as_ref()
                .map(|t| t.name.as_str())
                .unwrap_or("")
        ),
        I::ChildWorkflowExecutionFailureInfo(_) => "ChildWorkflowFailure".into(),
        I::NexusOperationExecutionFailureInfo(_) => "NexusOperationFailure".into(),
        I::NexusHandlerFailureInfo(_) => "NexusHandlerFailure".into(),
    })
}

/// The first error detail of a status, as (type name, bytes).
fn first_detail(status: &tonic::Status) -> Option<(String, Vec<u8>)> {
    let s = RpcStatus::decode(status.details()).ok()?;
    let any = s.details.into_iter().next()?;
    let name = any
        .type_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    Some((name, any.value))
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        let detail = first_detail(&status);
        let name = detail.as_ref().map(|(n, _)| n.as_str()).unwrap_or("");
        let bytes = detail.as_ref().map(|(_, b)| b.as_slice()).unwrap_or(&[]);
        match (status.code(), name) {
            (_, "temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure") => {
                let d = details::WorkflowExecutionAlreadyStartedFailure::decode(bytes)
                    .unwrap_or_default();
                ClientError::WorkflowAlreadyStarted {
                    workflow_id: String::new(),
                    run_id: d.run_id,
                }
            }
            (_, "temporal.api.errordetails.v1.NamespaceNotFoundFailure") => {
                let d = details::NamespaceNotFoundFailure::decode(bytes).unwrap_or_default();
                ClientError::NamespaceNotFound(d.namespace)
            }
            (_, "temporal.api.errordetails.v1.QueryFailedFailure") => {
                let d = details::QueryFailedFailure::decode(bytes).unwrap_or_default();
                ClientError::QueryFailed {
                    message: status.message().to_string(),
                    failure: d.failure.map(Box::new),
                }
            }
            (Code::AlreadyExists, _) => ClientError::AlreadyExists(status.message().to_string()),
            (Code::NotFound, _) => ClientError::NotFound(status.message().to_string()),
            (Code::InvalidArgument, _) => {
                ClientError::InvalidArgument(status.message().to_string())
            }
            _ => ClientError::Rpc(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_wkt_types::Any;

    fn with_detail(code: Code, msg: &str, type_name: &str, value: Vec<u8>) -> tonic::Status {
        let s = RpcStatus {
            code: code as i32,
            message: msg.into(),
            details: vec![Any {
                type_url: format!("type.googleapis.com/{type_name}"),
                value,
            }],
        };
        tonic::Status::with_details(code, msg, s.encode_to_vec().into())
    }

    #[test]
    fn details_become_typed_errors() {
        let d = details::WorkflowExecutionAlreadyStartedFailure {
            start_request_id: "r".into(),
            run_id: "run-1".into(),
            ..Default::default()
        };
        let e: ClientError = with_detail(
            Code::AlreadyExists,
            "already",
            "temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure",
            d.encode_to_vec(),
        )
        .into();
        assert!(
            matches!(e, ClientError::WorkflowAlreadyStarted { ref run_id, .. } if run_id == "run-1")
        );
        let e: ClientError = tonic::Status::already_exists("namespace exists").into();
        assert!(matches!(e, ClientError::AlreadyExists(ref m) if m == "namespace exists"));
        let e: ClientError = tonic::Status::not_found("workflow not found").into();
        assert!(matches!(e, ClientError::NotFound(_)));
        let e: ClientError = tonic::Status::unavailable("down").into();
        assert!(matches!(e, ClientError::Rpc(_)));
    }

    #[test]
    fn failure_chain_reads_outside_in() {
        let f = Failure {
            message: "activity failed".into(),
            cause: Some(Box::new(Failure {
                message: "card declined".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(failure_chain(&f), "activity failed <- card declined");
    }
}
