//! The one mapping from engine errors to gRPC statuses, with Temporal's error-detail trailers.

use perdure_core::Error;
use perdure_proto::api::errordetails::v1 as details;
use perdure_proto::google::rpc::Status as RpcStatus;
use perdure_proto::prost_types::Any;
use prost::{Message, Name};
use tonic::{Code, Status};

use super::CLUSTER_NAME;

/// A status carrying one Temporal error detail (in `grpc-status-details-bin`).
pub(super) fn with_detail<M: Message + Name>(code: Code, message: String, detail: M) -> Status {
    let any = Any {
        type_url: format!("type.googleapis.com/{}", M::full_name()),
        value: detail.encode_to_vec(),
    };
    let st = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![any],
    };
    Status::with_details(code, message, st.encode_to_vec().into())
}

/// The one mapping from engine errors to gRPC statuses.
pub fn status(e: Error) -> Status {
    let message = e.to_string();
    match e {
        Error::InvalidArgument(m) => Status::invalid_argument(m),
        Error::NotFound(m) => with_detail(
            Code::NotFound,
            m,
            details::NotFoundFailure {
                current_cluster: CLUSTER_NAME.into(),
                active_cluster: CLUSTER_NAME.into(),
            },
        ),
        Error::NamespaceNotFound(ns) => with_detail(
            Code::NotFound,
            message,
            details::NamespaceNotFoundFailure { namespace: ns },
        ),
        Error::NamespaceAlreadyExists(_) => with_detail(
            Code::AlreadyExists,
            message,
            details::NamespaceAlreadyExistsFailure {},
        ),
        Error::AlreadyStarted {
            message,
            start_request_id,
            run_id,
        } => with_detail(
            Code::AlreadyExists,
            message,
            details::WorkflowExecutionAlreadyStartedFailure {
                start_request_id,
                run_id,
                ..Default::default()
            },
        ),
        Error::ActivityAlreadyStarted {
            message,
            start_request_id,
            run_id,
        } => with_detail(
            Code::AlreadyExists,
            message,
            details::ActivityExecutionAlreadyStartedFailure {
                start_request_id,
                run_id,
            },
        ),
        Error::AlreadyExists(m) => Status::already_exists(m),
        Error::FailedPrecondition(m) => Status::failed_precondition(m),
        Error::WorkflowNotReady(m) => with_detail(
            Code::FailedPrecondition,
            m,
            details::WorkflowNotReadyFailure {},
        ),
        Error::QueryFailed { message, failure } => with_detail(
            Code::InvalidArgument,
            message,
            details::QueryFailedFailure {
                failure: failure.map(|f| *f),
            },
        ),
        Error::DeadlineExceeded(m) => Status::deadline_exceeded(m),
        Error::Unavailable(m) => Status::unavailable(m),
        Error::Internal(m) => Status::internal(m),
        Error::Peer {
            code,
            message,
            details,
        } => Status::with_details(Code::from_i32(code), message, details.into()),
    }
}
