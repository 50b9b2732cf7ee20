//! Updates: [`WorkflowHandle::update`] sends one and waits for its outcome.

use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage;
use temporalio_protos::temporal::api::update::v1 as update;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;

use super::rpc::{LONG_POLL, call};
use super::{Result, WorkflowHandle};
use crate::error::ClientError;
use crate::payload::{self, ToPayloads};

impl WorkflowHandle {
    /// Runs an update and waits for its outcome.
    pub async fn update<T: DeserializeOwned>(
        &self,
        name: &str,
        args: impl ToPayloads,
    ) -> Result<T> {
        let update_id = uuid::Uuid::new_v4().to_string();
        let r = ws::UpdateWorkflowExecutionRequest {
            namespace: self.namespace(),
            workflow_execution: self.execution(),
            first_execution_run_id: self.first_execution_run_id.clone().unwrap_or_default(),
            wait_policy: Some(update::WaitPolicy {
                lifecycle_stage: UpdateWorkflowExecutionLifecycleStage::Completed as i32,
            }),
            request: Some(update::Request {
                meta: Some(update::Meta {
                    update_id: update_id.clone(),
                    identity: self.client.inner.identity.clone(),
                }),
                input: Some(update::Input {
                    header: None,
                    name: name.to_string(),
                    args: Some(args.to_payloads()?),
                }),
                ..Default::default()
            }),
        };
        let mut resp = call!(
            self.workflow_service(),
            update_workflow_execution,
            r,
            LONG_POLL
        )?
        .into_inner();
        // The server may answer before completion (its own deadline): poll for the outcome.
        while resp.outcome.is_none() {
            let p = ws::PollWorkflowExecutionUpdateRequest {
                namespace: self.namespace(),
                update_ref: Some(update::UpdateRef {
                    workflow_execution: self.execution(),
                    update_id: update_id.clone(),
                }),
                identity: self.client.inner.identity.clone(),
                wait_policy: Some(update::WaitPolicy {
                    lifecycle_stage: UpdateWorkflowExecutionLifecycleStage::Completed as i32,
                }),
            };
            let polled = call!(
                self.workflow_service(),
                poll_workflow_execution_update,
                p,
                LONG_POLL
            )?
            .into_inner();
            resp.outcome = polled.outcome;
        }
        match resp.outcome.and_then(|o| o.value) {
            Some(update::outcome::Value::Success(p)) => Ok(payload::from_payloads(Some(&p))?),
            Some(update::outcome::Value::Failure(f)) => Err(ClientError::UpdateFailed {
                failure: Box::new(f),
            }),
            None => Err(ClientError::Rpc(tonic::Status::internal(
                "update outcome missing",
            ))),
        }
    }
}
