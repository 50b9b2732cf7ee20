//! ResetWorkflowExecution: a new run of the same workflow id whose history is the base run's up
//! to a workflow task, which fails that task (cause `ResetWorkflow`) and reapplies the signals
//! received after it. The current run is terminated if it still runs, in the same commit that
//! creates the new run and makes it current.

use perdure_proto::api::enums::v1::{EventType, ResetReapplyExcludeType, ResetReapplyType};
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::workflowservice::v1::ResetWorkflowExecutionRequest;

use super::{Engine, Namespace, RunData};
use crate::error::{Error, Result};
use crate::matching::RunKey;
use crate::mutable::{Effect, RESET_TERMINATE_IDENTITY, ResetParams, reset_point, reset_run};
use crate::state::ExecutionState;

fn is_signal(e: &HistoryEvent) -> bool {
    e.event_type == EventType::WorkflowExecutionSignaled as i32
}

impl Engine {
    /// Resets a run (empty run id = the current run) to `workflow_task_finish_event_id` and
    /// returns the new run's id. Like Temporal's, a repeated request resets again: the request id
    /// is not used to deduplicate.
    pub async fn reset_workflow(&self, req: ResetWorkflowExecutionRequest) -> Result<String> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.workflow_execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: perdure_proto::api::workflowservice::v1::ResetWorkflowExecutionResponse =
                self.forward(&to, "ResetWorkflowExecution", &req).await?;
            return Ok(_r.run_id);
        }
        let ns = self.namespace(&req.namespace)?;
        self.limits()
            .check_id("RequestId", &req.request_id)
            .map_err(Error::InvalidArgument)?;
        let me = self.clone();
        // The decision and the commit run on their own task, under the workflow id's lock.
        tokio::spawn(async move { me.reset_locked(ns, req).await })
            .await
            .map_err(|e| Error::Internal(format!("reset task failed: {e}")))?
    }

    async fn reset_locked(
        &self,
        ns: std::sync::Arc<Namespace>,
        req: ResetWorkflowExecutionRequest,
    ) -> Result<String> {
        let base_key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        let workflow_id = req
            .workflow_execution
            .as_ref()
            .map(|e| e.workflow_id.clone())
            .unwrap_or_default();
        let _guard = self.id_lock(&ns.id, &workflow_id).lock().await;
        let reapply_signals = req.reset_reapply_type != ResetReapplyType::None as i32
            && !req
                .reset_reapply_exclude_types
                .contains(&(ResetReapplyExcludeType::Signal as i32));
        // A closed base run's state and history never change: read them before taking the
        // current run.
        let mut base: Option<(ExecutionState, Vec<HistoryEvent>)> = None;
        loop {
            let current = self
                .current_run(&ns.id, &workflow_id)
                .await?
                .ok_or_else(|| {
                    Error::NotFound(format!("workflow not found for ID: {workflow_id}"))
                })?;
            let cur_key = RunKey {
                namespace_id: ns.id.clone(),
                run_id: current,
            };
            if base.is_none() && cur_key != base_key {
                let entry = self.entry(&base_key).await?;
                let data = entry.data.lock().await;
                let history = self.full_history(&data).await?;
                base = Some((data.state.clone(), history));
            }
            let entry = self.entry(&cur_key).await?;
            let mut data = entry.data.lock().await;
            if data.extra.evicted {
                continue;
            }
            if !data.state.new_execution_run_id.is_empty() {
                // The chain moved on (continue-as-new, retry, cron) since we looked.
                continue;
            }
            let same = cur_key == base_key;
            let (base_state, history) = if same {
                (data.state.clone(), self.full_history(&data).await?)
            } else {
                base.clone().expect("base run read above")
            };
            let point = reset_point(&history, req.workflow_task_finish_event_id)
                .map_err(Error::InvalidArgument)?;
            let split = point.copy_to as usize;
            let copied = history[..split].to_vec();
            let mut reapply: Vec<HistoryEvent> = if reapply_signals {
                history[split..]
                    .iter()
                    .filter(|e| is_signal(e))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let new_run_id = uuid::Uuid::now_v7().to_string();
            let params_run_id = new_run_id.clone();
            let reason = req.reason.clone();
            return self
                .transition(&cur_key, &entry, &mut data, move |tx, _| {
                    if tx.is_running() {
                        let before = tx.events.len();
                        tx.terminate(&reason, None, RESET_TERMINATE_IDENTITY);
                        // The new run keeps the parent and reports to it instead.
                        tx.effects.retain(|e| *e != Effect::NotifyParent);
                        if tx.state.parent.is_some() {
                            tx.state.parent_notified = true;
                        }
                        if same && reapply_signals {
                            // Signals that waited in the buffer were written by the termination.
                            reapply.extend(
                                tx.events[before..].iter().filter(|e| is_signal(e)).cloned(),
                            );
                        }
                    }
                    let run = reset_run(
                        &base_state,
                        copied,
                        ResetParams {
                            new_run_id: params_run_id,
                            reason,
                            point,
                            reapply,
                        },
                        tx.now,
                    );
                    tx.new_run = Some(run);
                    Ok(new_run_id)
                })
                .await;
        }
    }

    /// Every persisted event of a run.
    async fn full_history(&self, data: &RunData) -> Result<Vec<HistoryEvent>> {
        self.history_range(data, 1, data.state.next_event_id - 1, usize::MAX)
            .await
    }
}
