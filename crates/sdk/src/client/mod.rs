//! The client: connects to a Temporal-compatible server (Perdure or Temporal) and starts, signals,
//! queries, updates, cancels, terminates, describes, lists and awaits workflow executions.
//!
//! [`Client`] lives here; the rest is split by what it is for: `options` (how to connect and how
//! to start), `connection` (metadata, TLS, [`Client::connect`]), `rpc` (deadlines and retries),
//! `start` (starting workflows), `list` (list and count), `handle` ([`WorkflowHandle`]: signals,
//! queries, cancel, terminate, describe, history), `update` (updates) and `result` (waiting for a
//! run to close, following continue-as-new).

mod connection;
mod handle;
mod list;
mod options;
mod result;
mod rpc;
mod start;
mod update;

use std::sync::Arc;

use temporalio_protos::temporal::api::operatorservice::v1::operator_service_client::OperatorServiceClient;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;

use crate::error::ClientError;

pub use crate::common::RetryPolicy;
pub use connection::{Headers, Transport};
pub use handle::WorkflowHandle;
pub use list::Count;
pub use options::{
    ClientIdentity, ClientOptions, IdConflictPolicy, IdReusePolicy, StartOptions, Status,
    TlsOptions, json_map,
};
pub use result::{ClosedRun, next_run};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A connected client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    workflow: WorkflowServiceClient<Transport>,
    operator: OperatorServiceClient<Transport>,
    health: tonic_health::pb::health_client::HealthClient<Transport>,
    namespace: String,
    identity: String,
    address: String,
}

impl Client {
    /// The namespace of this client.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The identity recorded in history.
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// The address it connected to.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// The raw `WorkflowService` client, for calls this API does not wrap.
    pub fn workflow_service(&self) -> WorkflowServiceClient<Transport> {
        self.inner.workflow.clone()
    }

    /// Whether the server reports its WorkflowService as serving (the gRPC health service, as
    /// `temporal operator cluster health` asks it).
    pub async fn check_health(&self) -> Result<bool> {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        let r = self
            .inner
            .health
            .clone()
            .check(HealthCheckRequest {
                service: "temporal.api.workflowservice.v1.WorkflowService".into(),
            })
            .await
            .map_err(ClientError::from)?;
        Ok(r.into_inner().status == ServingStatus::Serving as i32)
    }

    /// The raw `OperatorService` client (search attributes, namespaces).
    pub fn operator_service(&self) -> OperatorServiceClient<Transport> {
        self.inner.operator.clone()
    }

    /// A handle to an existing workflow: its latest run, or `run_id` if given.
    pub fn workflow_handle(
        &self,
        workflow_id: impl Into<String>,
        run_id: Option<String>,
    ) -> WorkflowHandle {
        WorkflowHandle {
            client: self.clone(),
            workflow_id: workflow_id.into(),
            run_id: run_id.filter(|r| !r.is_empty()),
            first_execution_run_id: None,
        }
    }
}
