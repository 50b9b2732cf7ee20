//! Client control of existing runs: resolving an execution to its run (current run), signal,
//! cancel, terminate, delete and describe.

use perdure_proto::api::common::v1::{Payloads, WorkflowExecution};
use perdure_proto::api::enums::v1::{PendingActivityState, PendingWorkflowTaskState};
use perdure_proto::api::workflow::v1::{
    PendingActivityInfo, PendingChildExecutionInfo, PendingWorkflowTaskInfo,
    WorkflowExecutionConfig,
};
use perdure_proto::api::workflowservice::v1::*;

use super::Engine;
use crate::clock::convert::{dur, from_ts, ts};
use crate::error::{Error, Result};
use crate::info::execution_info;
use crate::matching::RunKey;
use crate::mutable::SignalParams;
use crate::state::ExecutionState;

fn not_found_wf(workflow_id: &str) -> Error {
    Error::NotFound(format!("workflow not found for ID: {workflow_id}"))
}

pub(super) fn closed_error() -> Error {
    Error::NotFound("workflow execution already completed".into())
}

impl Engine {
    /// Rejects a payload set (data and metadata) larger than the blob size limit.
    pub fn check_blobs(&self, p: Option<&Payloads>) -> Result<()> {
        self.limits().check_blob(p).map_err(Error::InvalidArgument)
    }

    pub(crate) fn limits(&self) -> &crate::limits::Limits {
        &self.inner.config.limits
    }

    /// The current run id of a workflow id, if any.
    pub(crate) async fn current_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<String>> {
        if let Some(r) = self
            .inner
            .current
            .lock()
            .get(&(namespace_id.to_string(), workflow_id.to_string()))
        {
            return Ok(Some(r.clone()));
        }
        let s = self.inner.store.clone();
        let (ns, wf) = (namespace_id.to_string(), workflow_id.to_string());
        let r = tokio::task::spawn_blocking(move || s.get_current_run(&ns, &wf))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        if let Some(r) = &r {
            self.inner.current.lock().insert(
                (namespace_id.to_string(), workflow_id.to_string()),
                r.clone(),
            );
        }
        Ok(r)
    }

    /// Resolves an execution (empty run id = current run) to a run key.
    pub(crate) async fn resolve(
        &self,
        namespace_id: &str,
        exec: Option<&WorkflowExecution>,
    ) -> Result<RunKey> {
        let exec = exec.cloned().unwrap_or_default();
        if exec.workflow_id.is_empty() {
            return Err(Error::InvalidArgument(
                "WorkflowId is not set on request.".into(),
            ));
        }
        let run_id = if exec.run_id.is_empty() {
            self.current_run(namespace_id, &exec.workflow_id)
                .await?
                .ok_or_else(|| not_found_wf(&exec.workflow_id))?
        } else {
            if uuid::Uuid::parse_str(&exec.run_id).is_err() {
                return Err(Error::InvalidArgument("Invalid RunId.".into()));
            }
            exec.run_id
        };
        let key = RunKey {
            namespace_id: namespace_id.to_string(),
            run_id,
        };
        // Make sure it exists and belongs to that workflow id.
        let entry = self.entry(&key).await.map_err(|e| match e {
            Error::NotFound(_) => not_found_wf(&exec.workflow_id),
            e => e,
        })?;
        let data = entry.data.lock().await;
        if data.state.workflow_id != exec.workflow_id {
            return Err(not_found_wf(&exec.workflow_id));
        }
        Ok(key)
    }

    pub async fn signal_workflow(&self, req: SignalWorkflowExecutionRequest) -> Result<()> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.workflow_execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: SignalWorkflowExecutionResponse =
                self.forward(&to, "SignalWorkflowExecution", &req).await?;
            return Ok(());
        }
        let ns = self.namespace(&req.namespace)?;
        if req.signal_name.is_empty() {
            return Err(Error::InvalidArgument(
                "SignalName is not set on request.".into(),
            ));
        }
        self.check_blobs(req.input.as_ref())?;
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        let s = SignalParams {
            name: req.signal_name,
            input: req.input,
            header: req.header,
            identity: req.identity,
            request_id: req.request_id,
            external: None,
        };
        self.mutate(key, move |tx, _| {
            if !tx.is_running() {
                return Err(closed_error());
            }
            tx.signal(s);
            Ok(())
        })
        .await
    }

    pub(super) fn check_chain(state: &ExecutionState, first_execution_run_id: &str) -> Result<()> {
        if !first_execution_run_id.is_empty()
            && state.first_execution_run_id != first_execution_run_id
        {
            return Err(Error::NotFound(format!(
                "workflow execution not found for first execution run ID {first_execution_run_id}"
            )));
        }
        Ok(())
    }

    pub async fn request_cancel(&self, req: RequestCancelWorkflowExecutionRequest) -> Result<()> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.workflow_execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: RequestCancelWorkflowExecutionResponse = self
                .forward(&to, "RequestCancelWorkflowExecution", &req)
                .await?;
            return Ok(());
        }
        let ns = self.namespace(&req.namespace)?;
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        self.mutate(key, move |tx, _| {
            Self::check_chain(tx.state, &req.first_execution_run_id)?;
            if !tx.is_running() {
                // Temporal answers success, and changes nothing, when the run already closed.
                return Ok(());
            }
            tx.request_cancel(&req.reason, &req.identity, &req.request_id, None);
            Ok(())
        })
        .await
    }

    pub async fn terminate(&self, req: TerminateWorkflowExecutionRequest) -> Result<()> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.workflow_execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: TerminateWorkflowExecutionResponse = self
                .forward(&to, "TerminateWorkflowExecution", &req)
                .await?;
            return Ok(());
        }
        let ns = self.namespace(&req.namespace)?;
        self.check_blobs(req.details.as_ref())?;
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        self.mutate(key, move |tx, _| {
            Self::check_chain(tx.state, &req.first_execution_run_id)?;
            if !tx.is_running() {
                return Err(closed_error());
            }
            tx.terminate(&req.reason, req.details, &req.identity);
            Ok(())
        })
        .await
    }

    pub async fn delete_workflow(&self, req: DeleteWorkflowExecutionRequest) -> Result<()> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.workflow_execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: DeleteWorkflowExecutionResponse =
                self.forward(&to, "DeleteWorkflowExecution", &req).await?;
            return Ok(());
        }
        let ns = self.namespace(&req.namespace)?;
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        let workflow_id = self
            .mutate(key.clone(), |tx, _| {
                if tx.is_running() {
                    tx.terminate("Delete workflow execution", None, "perdure-server");
                }
                Ok(tx.state.workflow_id.clone())
            })
            .await?;
        self.delete_run(&key, &workflow_id).await?;
        if let Some(e) = self.remove_entry(&key)
            && let Ok(mut d) = e.data.try_lock()
        {
            d.extra.evicted = true;
        }
        self.inner.current.lock().retain(|_, r| *r != key.run_id);
        Ok(())
    }

    pub async fn describe(
        &self,
        req: DescribeWorkflowExecutionRequest,
    ) -> Result<DescribeWorkflowExecutionResponse> {
        let ns = self.namespace(&req.namespace)?;
        let key = self.resolve(&ns.id, req.execution.as_ref()).await?;
        let entry = self.entry(&key).await?;
        let d = entry.data.lock().await;
        let state = &d.state;
        let pending_activities = state
            .activities
            .iter()
            .map(|a| {
                let activity_state = if a.cancel_requested_event_id != 0 {
                    PendingActivityState::CancelRequested
                } else if a.started_time.is_some() {
                    PendingActivityState::Started
                } else {
                    PendingActivityState::Scheduled
                };
                let s2c = dur(&a.schedule_to_close);
                let mut info = PendingActivityInfo {
                    activity_id: a.activity_id.clone(),
                    activity_type: Some(crate::mutable::activity_type(a)),
                    state: activity_state as i32,
                    heartbeat_details: a.heartbeat_details.clone(),
                    last_heartbeat_time: a.last_heartbeat_time,
                    last_started_time: a.started_time,
                    attempt: a.attempt,
                    maximum_attempts: a
                        .retry_policy
                        .as_ref()
                        .map(|p| p.maximum_attempts)
                        .unwrap_or_default(),
                    scheduled_time: a.current_attempt_scheduled_time,
                    expiration_time: (!s2c.is_zero())
                        .then(|| a.scheduled_time.as_ref().map(|t| ts(from_ts(t) + s2c)))
                        .flatten(),
                    last_failure: a.last_failure.clone(),
                    last_worker_identity: a.last_worker_identity.clone(),
                    last_attempt_complete_time: a.last_attempt_complete_time,
                    next_attempt_schedule_time: if a.started_time.is_none() && a.attempt > 1 {
                        a.current_attempt_scheduled_time
                    } else {
                        None
                    },
                    priority: a.priority.clone(),
                    ..Default::default()
                };
                crate::info::add_activity_ops_info(a, &mut info);
                info
            })
            .collect();
        let pending_children = state
            .children
            .iter()
            .map(|c| PendingChildExecutionInfo {
                workflow_id: c.workflow_id.clone(),
                run_id: c.run_id.clone(),
                workflow_type_name: c.workflow_type.clone(),
                initiated_id: c.initiated_event_id,
                parent_close_policy: c.parent_close_policy,
            })
            .collect();
        let pending_workflow_task = state.wft.as_ref().map(|w| PendingWorkflowTaskInfo {
            state: if w.started_event_id != 0 {
                PendingWorkflowTaskState::Started as i32
            } else {
                PendingWorkflowTaskState::Scheduled as i32
            },
            scheduled_time: w.scheduled_time,
            original_scheduled_time: w.original_scheduled_time,
            started_time: w.started_time,
            attempt: w.attempt,
        });
        Ok(DescribeWorkflowExecutionResponse {
            execution_config: Some(WorkflowExecutionConfig {
                task_queue: Some(perdure_proto::api::taskqueue::v1::TaskQueue {
                    name: state.task_queue.clone(),
                    kind: 1,
                    normal_name: String::new(),
                }),
                workflow_execution_timeout: state.execution_timeout,
                workflow_run_timeout: state.run_timeout,
                default_workflow_task_timeout: state.task_timeout,
                user_metadata: state.user_metadata.clone(),
            }),
            workflow_execution_info: Some(self.with_versioning(execution_info(state), state)),
            pending_activities,
            pending_children,
            pending_workflow_task,
            ..Default::default()
        })
    }
}
