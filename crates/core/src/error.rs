//! Engine errors, by the portable kind a client needs to tell apart (the frontend maps each to
//! a gRPC status and error detail in one place).

use perdure_proto::api::failure::v1::Failure;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    /// Workflow, run, task or activity not found (or already closed, for writes).
    #[error("{0}")]
    NotFound(String),
    #[error("Namespace {0} is not found.")]
    NamespaceNotFound(String),
    #[error("Namespace {0} already exists.")]
    NamespaceAlreadyExists(String),
    #[error("{message}")]
    AlreadyStarted {
        message: String,
        start_request_id: String,
        run_id: String,
    },
    /// A standalone activity id is taken and the policies allow neither a new run nor the
    /// running one.
    #[error("{message}")]
    ActivityAlreadyStarted {
        message: String,
        start_request_id: String,
        run_id: String,
    },
    /// Something other than a workflow already exists (e.g. a search attribute).
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    WorkflowNotReady(String),
    #[error("{message}")]
    QueryFailed {
        message: String,
        failure: Option<Box<Failure>>,
    },
    #[error("{0}")]
    DeadlineExceeded(String),
    /// Storage or shard-ownership trouble: retryable.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// What another Perdure process answered a call this one forwarded to it: its gRPC status
    /// code, message and details, passed on as they are.
    #[error("{message}")]
    Peer {
        code: i32,
        message: String,
        details: Vec<u8>,
    },
}

impl Error {
    /// Worth trying again: storage or another process briefly away, or the cluster changing.
    pub fn is_retryable(&self) -> bool {
        // 14 = gRPC UNAVAILABLE.
        matches!(self, Error::Unavailable(_)) || matches!(self, Error::Peer { code: 14, .. })
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::InvalidQuery(_) => Error::InvalidArgument(e.to_string()),
            e => Error::Unavailable(e.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
