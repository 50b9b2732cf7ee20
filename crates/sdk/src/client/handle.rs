//! [`WorkflowHandle`]: one workflow execution, and the calls that act on it at once (signal,
//! query, cancel, terminate, describe, fetch its history).

use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::{QueryRejectCondition, WorkflowExecutionStatus};
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;

use super::rpc::{RPC_TIMEOUT, call};
use super::{Client, Result, Transport};
use crate::error::ClientError;
use crate::payload::{self, ToPayloads};

/// A workflow execution: a workflow id, optionally pinned to one run.
#[derive(Clone)]
pub struct WorkflowHandle {
    pub(super) client: Client,
    pub(super) workflow_id: String,
    /// The run every call targets; `None` means the latest run.
    pub(super) run_id: Option<String>,
    /// For handles from a start: the chain the calls must stay in.
    pub(super) first_execution_run_id: Option<String>,
}

impl std::fmt::Debug for WorkflowHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowHandle")
            .field("workflow_id", &self.workflow_id)
            .field("run_id", &self.run_id)
            .field("first_execution_run_id", &self.first_execution_run_id)
            .finish()
    }
}

impl WorkflowHandle {
    /// The workflow id.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The run this handle is pinned to, if any.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The run id that a start returned (the first run of the chain this handle follows).
    pub fn first_execution_run_id(&self) -> Option<&str> {
        self.first_execution_run_id.as_deref()
    }

    pub(super) fn execution(&self) -> Option<WorkflowExecution> {
        Some(WorkflowExecution {
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone().unwrap_or_default(),
        })
    }

    pub(super) fn workflow_service(&self) -> WorkflowServiceClient<Transport> {
        self.client.workflow_service()
    }

    pub(super) fn namespace(&self) -> String {
        self.client.inner.namespace.clone()
    }

    /// Sends a signal.
    pub async fn signal(&self, name: &str, args: impl ToPayloads) -> Result<()> {
        let r = ws::SignalWorkflowExecutionRequest {
            namespace: self.namespace(),
            workflow_execution: self.execution(),
            signal_name: name.to_string(),
            input: Some(args.to_payloads()?),
            identity: self.client.inner.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        call!(
            self.workflow_service(),
            signal_workflow_execution,
            r,
            RPC_TIMEOUT
        )?;
        Ok(())
    }

    /// Runs a query and decodes its answer.
    pub async fn query<T: DeserializeOwned>(&self, name: &str, args: impl ToPayloads) -> Result<T> {
        let r = ws::QueryWorkflowRequest {
            namespace: self.namespace(),
            execution: self.execution(),
            query: Some(WorkflowQuery {
                query_type: name.to_string(),
                query_args: Some(args.to_payloads()?).filter(|p| !p.payloads.is_empty()),
                header: None,
            }),
            query_reject_condition: QueryRejectCondition::None as i32,
        };
        let resp = call!(self.workflow_service(), query_workflow, r, RPC_TIMEOUT)?.into_inner();
        if let Some(rej) = resp.query_rejected {
            let status = WorkflowExecutionStatus::try_from(rej.status)
                .map(|s| s.as_str_name().to_string())
                .unwrap_or_else(|_| rej.status.to_string());
            return Err(ClientError::QueryRejected { status });
        }
        Ok(payload::from_payloads(resp.query_result.as_ref())?)
    }

    /// Requests cancellation.
    pub async fn cancel(&self, reason: &str) -> Result<()> {
        let r = ws::RequestCancelWorkflowExecutionRequest {
            namespace: self.namespace(),
            workflow_execution: self.execution(),
            identity: self.client.inner.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            first_execution_run_id: self.first_execution_run_id.clone().unwrap_or_default(),
            reason: reason.to_string(),
            ..Default::default()
        };
        call!(
            self.workflow_service(),
            request_cancel_workflow_execution,
            r,
            RPC_TIMEOUT
        )?;
        Ok(())
    }

    /// Terminates the workflow.
    pub async fn terminate(&self, reason: &str) -> Result<()> {
        let r = ws::TerminateWorkflowExecutionRequest {
            namespace: self.namespace(),
            workflow_execution: self.execution(),
            reason: reason.to_string(),
            identity: self.client.inner.identity.clone(),
            first_execution_run_id: self.first_execution_run_id.clone().unwrap_or_default(),
            ..Default::default()
        };
        call!(
            self.workflow_service(),
            terminate_workflow_execution,
            r,
            RPC_TIMEOUT
        )?;
        Ok(())
    }

    /// Describes the execution.
    pub async fn describe(&self) -> Result<ws::DescribeWorkflowExecutionResponse> {
        let r = ws::DescribeWorkflowExecutionRequest {
            namespace: self.namespace(),
            execution: self.execution(),
        };
        Ok(call!(
            self.workflow_service(),
            describe_workflow_execution,
            r,
            RPC_TIMEOUT
        )?
        .into_inner())
    }

    /// The whole event history of the run.
    pub async fn fetch_history(&self) -> Result<Vec<HistoryEvent>> {
        let mut events = Vec::new();
        let mut token = Vec::new();
        loop {
            let r = ws::GetWorkflowExecutionHistoryRequest {
                namespace: self.namespace(),
                execution: self.execution(),
                maximum_page_size: 1000,
                next_page_token: token,
                ..Default::default()
            };
            let resp = call!(
                self.workflow_service(),
                get_workflow_execution_history,
                r,
                RPC_TIMEOUT
            )?
            .into_inner();
            events.extend(resp.history.map(|h| h.events).unwrap_or_default());
            if resp.next_page_token.is_empty() {
                return Ok(events);
            }
            token = resp.next_page_token;
        }
    }
}
