//! Starting workflows: [`Client::start_workflow`], [`Client::execute_workflow`] and
//! [`Client::signal_with_start`].

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::common::v1::{
    Memo, Payload, Payloads, SearchAttributes, WorkflowType,
};
use temporalio_protos::temporal::api::sdk::v1::UserMetadata;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;

use super::rpc::{RPC_TIMEOUT, call};
use super::{Client, Result, StartOptions, WorkflowHandle};
use crate::common::{RetryPolicy, normal_task_queue, proto_duration};
use crate::error::ClientError;
use crate::payload::{self, ToPayloads};

fn json_payloads(m: &HashMap<String, serde_json::Value>) -> Result<HashMap<String, Payload>> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), payload::to_payload(v)?)))
        .collect()
}

/// The summary and details of a start as the other SDKs encode them (JSON strings).
fn user_metadata(o: &StartOptions) -> Result<Option<UserMetadata>> {
    if o.static_summary.is_none() && o.static_details.is_none() {
        return Ok(None);
    }
    let json = |s: &Option<String>| s.as_ref().map(payload::to_payload).transpose();
    Ok(Some(UserMetadata {
        summary: json(&o.static_summary)?,
        details: json(&o.static_details)?,
    }))
}

impl Client {
    fn start_request(
        &self,
        workflow_type: &str,
        args: &dyn ToPayloadsDyn,
        o: &StartOptions,
    ) -> Result<ws::StartWorkflowExecutionRequest> {
        if o.id.is_empty() {
            return Err(ClientError::InvalidArgument("workflow id is empty".into()));
        }
        if o.task_queue.is_empty() {
            return Err(ClientError::InvalidArgument("task queue is empty".into()));
        }
        Ok(ws::StartWorkflowExecutionRequest {
            namespace: self.inner.namespace.clone(),
            workflow_id: o.id.clone(),
            workflow_type: Some(WorkflowType {
                name: workflow_type.to_string(),
            }),
            task_queue: Some(normal_task_queue(o.task_queue.clone())),
            input: Some(args.payloads()?).filter(|p| !p.payloads.is_empty()),
            workflow_execution_timeout: o.execution_timeout.map(proto_duration),
            workflow_run_timeout: o.run_timeout.map(proto_duration),
            workflow_task_timeout: o.task_timeout.map(proto_duration),
            identity: self.inner.identity.clone(),
            request_id: o
                .request_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            workflow_id_reuse_policy: o.id_reuse_policy.map(|p| p as i32).unwrap_or(0),
            workflow_id_conflict_policy: o.id_conflict_policy.map(|p| p as i32).unwrap_or(0),
            retry_policy: o.retry_policy.as_ref().map(RetryPolicy::to_proto),
            cron_schedule: o.cron_schedule.clone(),
            memo: Some(Memo {
                fields: json_payloads(&o.memo)?,
            })
            .filter(|m| !m.fields.is_empty()),
            search_attributes: Some(SearchAttributes {
                indexed_fields: json_payloads(&o.search_attributes)?,
            })
            .filter(|s| !s.indexed_fields.is_empty()),
            workflow_start_delay: o.start_delay.map(proto_duration),
            user_metadata: user_metadata(o)?,
            ..Default::default()
        })
    }

    /// The handle of a workflow just started: it follows the chain of runs that `run_id` begins.
    fn started_handle(&self, workflow_id: String, run_id: String) -> WorkflowHandle {
        WorkflowHandle {
            client: self.clone(),
            workflow_id,
            run_id: None,
            first_execution_run_id: Some(run_id),
        }
    }

    /// Starts a workflow of type `workflow_type` with `args` (`()`, or a tuple of arguments).
    pub async fn start_workflow(
        &self,
        workflow_type: &str,
        args: impl ToPayloads,
        options: StartOptions,
    ) -> Result<WorkflowHandle> {
        let r = self.start_request(workflow_type, &args, &options)?;
        let resp = call!(
            self.workflow_service(),
            start_workflow_execution,
            r,
            RPC_TIMEOUT
        )
        .map_err(|s| with_workflow_id(s.into(), &options.id))?
        .into_inner();
        Ok(self.started_handle(options.id, resp.run_id))
    }

    /// Starts a workflow and waits for its result.
    pub async fn execute_workflow<T: DeserializeOwned>(
        &self,
        workflow_type: &str,
        args: impl ToPayloads,
        options: StartOptions,
    ) -> Result<T> {
        self.start_workflow(workflow_type, args, options)
            .await?
            .result()
            .await
    }

    /// Sends a signal, starting the workflow first if it is not running.
    pub async fn signal_with_start(
        &self,
        workflow_type: &str,
        args: impl ToPayloads,
        signal: &str,
        signal_args: impl ToPayloads,
        options: StartOptions,
    ) -> Result<WorkflowHandle> {
        let s = self.start_request(workflow_type, &args, &options)?;
        let r = ws::SignalWithStartWorkflowExecutionRequest {
            namespace: s.namespace,
            workflow_id: s.workflow_id,
            workflow_type: s.workflow_type,
            task_queue: s.task_queue,
            input: s.input,
            workflow_execution_timeout: s.workflow_execution_timeout,
            workflow_run_timeout: s.workflow_run_timeout,
            workflow_task_timeout: s.workflow_task_timeout,
            identity: s.identity,
            request_id: s.request_id,
            workflow_id_reuse_policy: s.workflow_id_reuse_policy,
            workflow_id_conflict_policy: s.workflow_id_conflict_policy,
            signal_name: signal.to_string(),
            signal_input: Some(signal_args.to_payloads()?),
            retry_policy: s.retry_policy,
            cron_schedule: s.cron_schedule,
            memo: s.memo,
            search_attributes: s.search_attributes,
            workflow_start_delay: s.workflow_start_delay,
            user_metadata: s.user_metadata,
            ..Default::default()
        };
        let resp = call!(
            self.workflow_service(),
            signal_with_start_workflow_execution,
            r,
            RPC_TIMEOUT
        )
        .map_err(|s| with_workflow_id(s.into(), &options.id))?
        .into_inner();
        Ok(self.started_handle(options.id, resp.run_id))
    }
}

/// Object-safe view of [`ToPayloads`] for internal helpers.
trait ToPayloadsDyn {
    fn payloads(&self) -> Result<Payloads, payload::PayloadError>;
}
impl<T: ToPayloads> ToPayloadsDyn for T {
    fn payloads(&self) -> Result<Payloads, payload::PayloadError> {
        self.to_payloads()
    }
}

fn with_workflow_id(e: ClientError, id: &str) -> ClientError {
    match e {
        ClientError::WorkflowAlreadyStarted { run_id, .. } => ClientError::WorkflowAlreadyStarted {
            workflow_id: id.to_string(),
            run_id,
        },
        other => other,
    }
}
