//! Queries and updates: QueryWorkflow (and query task answers), UpdateWorkflowExecution and
//! PollWorkflowExecutionUpdate.

use std::time::{Duration, Instant};

use perdure_proto::api::common::v1::{Payloads, WorkflowExecution};
use perdure_proto::api::enums::v1::{
    QueryRejectCondition, UpdateWorkflowExecutionLifecycleStage as Stage,
    WorkflowExecutionStatus as Status,
};
use perdure_proto::api::failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo};
use perdure_proto::api::query::v1::{QueryRejected, WorkflowQuery};
use perdure_proto::api::update::v1 as upd;
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;
use tokio::sync::oneshot;

use super::control::closed_error;
use super::{Engine, PendingQuery};
use crate::error::{Error, Result};
use crate::matching::RunKey;

/// Result of a query.
#[derive(Debug, Clone)]
pub enum QueryOutcome {
    Answered(Option<Payloads>),
    Failed {
        message: String,
        failure: Option<Box<Failure>>,
    },
}

impl Engine {
    /// QueryWorkflow: routes the query to a worker (attached to the next workflow task or as a
    /// query task) and waits for the answer until `deadline`.
    pub async fn query(
        &self,
        req: QueryWorkflowRequest,
        deadline: Instant,
    ) -> Result<QueryWorkflowResponse> {
        let ns = self.namespace(&req.namespace)?;
        let query = req
            .query
            .clone()
            .filter(|q| !q.query_type.is_empty())
            .ok_or_else(|| Error::InvalidArgument("QueryType is not set on request.".into()))?;
        self.check_blobs(query.query_args.as_ref())?;
        let key = self.resolve(&ns.id, req.execution.as_ref()).await?;
        let (tx, rx) = oneshot::channel();
        let id = self.next_query_id();
        let cond = req.query_reject_condition;
        let rejected = self
            .mutate(key.clone(), move |t, extra| {
                let status = t.state.status;
                let running = status == Status::Running as i32;
                if cond == QueryRejectCondition::NotOpen as i32 && !running {
                    return Ok(Some(status));
                }
                if cond == QueryRejectCondition::NotCompletedCleanly as i32
                    && !running
                    && status != Status::Completed as i32
                {
                    return Ok(Some(status));
                }
                if !running && t.state.last_completed_wft_started_id == 0 {
                    return Err(Error::WorkflowNotReady(
                        "Workflow execution closed before WorkflowTaskStarted event".into(),
                    ));
                }
                if running && t.state.wft.as_ref().is_some_and(|w| w.attempt >= 3) {
                    return Err(Error::WorkflowNotReady(
                        "Unable to query workflow due to Workflow Task in failed state.".into(),
                    ));
                }
                extra.queries.insert(
                    id,
                    PendingQuery {
                        query: WorkflowQuery {
                            query_type: query.query_type,
                            query_args: query.query_args,
                            header: query.header,
                        },
                        tx: Some(tx),
                        attached_to: None,
                        dispatched: false,
                    },
                );
                Ok(None)
            })
            .await?;
        if let Some(status) = rejected {
            return Ok(QueryWorkflowResponse {
                query_result: None,
                query_rejected: Some(QueryRejected { status }),
                ..Default::default()
            });
        }
        let answer = tokio::time::timeout_at(deadline.into(), rx).await;
        // Whatever happened, forget the query.
        if let Ok(entry) = self.entry(&key).await {
            entry.data.lock().await.extra.queries.remove(&id);
        }
        match answer {
            Ok(Ok(QueryOutcome::Answered(p))) => Ok(QueryWorkflowResponse {
                query_result: Some(p.unwrap_or_default()),
                ..Default::default()
            }),
            Ok(Ok(QueryOutcome::Failed { message, failure })) => {
                Err(Error::QueryFailed { message, failure })
            }
            _ => Err(Error::DeadlineExceeded(
                "query timed out before a worker answered".into(),
            )),
        }
    }

    /// Delivers a query task answer.
    pub(crate) async fn answer_query(
        &self,
        key: RunKey,
        query_id: u64,
        outcome: QueryOutcome,
    ) -> Result<()> {
        let entry = self.entry(&key).await?;
        let mut d = entry.data.lock().await;
        match d.extra.queries.get_mut(&query_id) {
            Some(q) => {
                q.resolve(outcome);
                Ok(())
            }
            None => Err(Error::NotFound(
                "query not found or already answered".into(),
            )),
        }
    }

    /// UpdateWorkflowExecution.
    pub async fn update(
        &self,
        req: UpdateWorkflowExecutionRequest,
        deadline: Instant,
    ) -> Result<UpdateWorkflowExecutionResponse> {
        let ns = self.namespace(&req.namespace)?;
        let request = req
            .request
            .clone()
            .ok_or_else(|| Error::InvalidArgument("Request is not set on request.".into()))?;
        let update_id = request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .unwrap_or_default();
        if update_id.is_empty() {
            return Err(Error::InvalidArgument(
                "UpdateId is not set on request.".into(),
            ));
        }
        if request.input.as_ref().is_none_or(|i| i.name.is_empty()) {
            return Err(Error::InvalidArgument(
                "Update name is not set on request.".into(),
            ));
        }
        self.check_blobs(request.input.as_ref().and_then(|i| i.args.as_ref()))?;
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        let first = req.first_execution_run_id.clone();
        let r = request.clone();
        self.mutate(key.clone(), move |tx, _| {
            Self::check_chain(tx.state, &first)?;
            let known = tx.state.updates.iter().any(|u| {
                u.update_id == r.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default()
            });
            if !known && !tx.is_running() {
                return Err(closed_error());
            }
            if !known && tx.state.wft.as_ref().is_some_and(|w| w.attempt >= 3) {
                return Err(Error::WorkflowNotReady(
                    "Unable to perform workflow execution update due to Workflow Task in failed state.".into(),
                ));
            }
            tx.admit_update(&r);
            Ok(())
        })
        .await?;
        let wait = req
            .wait_policy
            .as_ref()
            .map(|w| w.lifecycle_stage)
            .unwrap_or(Stage::Accepted as i32);
        let exec = req.workflow_execution.unwrap_or_default();
        let (stage, outcome) = self
            .wait_update(&key, &update_id, wait, deadline, true)
            .await?;
        Ok(UpdateWorkflowExecutionResponse {
            update_ref: Some(upd::UpdateRef {
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: exec.workflow_id,
                    run_id: key.run_id.clone(),
                }),
                update_id,
            }),
            outcome,
            stage,
            ..Default::default()
        })
    }

    pub async fn poll_update(
        &self,
        req: PollWorkflowExecutionUpdateRequest,
        deadline: Instant,
    ) -> Result<PollWorkflowExecutionUpdateResponse> {
        let ns = self.namespace(&req.namespace)?;
        let r = req
            .update_ref
            .clone()
            .ok_or_else(|| Error::InvalidArgument("UpdateRef is not set on request.".into()))?;
        let key = self.resolve(&ns.id, r.workflow_execution.as_ref()).await?;
        let wait = req
            .wait_policy
            .as_ref()
            .map(|w| w.lifecycle_stage)
            .unwrap_or(Stage::Completed as i32);
        let (stage, outcome) = self
            .wait_update(&key, &r.update_id, wait, deadline, false)
            .await?;
        Ok(PollWorkflowExecutionUpdateResponse {
            outcome,
            stage,
            update_ref: Some(r),
        })
    }

    /// Waits for an update to reach `wait`. `admitted` says the caller has just admitted it. An
    /// update that disappears while waited for was aborted by a failed workflow task (an invalid
    /// update message), which Temporal reports as not ready.
    async fn wait_update(
        &self,
        key: &RunKey,
        update_id: &str,
        wait: i32,
        deadline: Instant,
        admitted: bool,
    ) -> Result<(i32, Option<upd::Outcome>)> {
        let mut known = admitted;
        let margin = Duration::from_millis(500);
        let until = deadline
            .checked_sub(margin)
            .unwrap_or(deadline)
            .min(Instant::now() + self.inner.config.long_poll);
        loop {
            let entry = self.entry(key).await?;
            let seen = *entry.version.borrow();
            {
                let d = entry.data.lock().await;
                let Some(u) = d.state.updates.iter().find(|u| u.update_id == update_id) else {
                    if known && d.state.status == Status::Running as i32 {
                        return Err(Error::WorkflowNotReady(
                            "Unable to perform workflow execution update due to unexpected workflow task failure.".into(),
                        ));
                    }
                    return Err(Error::NotFound(format!("update {update_id:?} not found")));
                };
                known = true;
                if u.stage == Stage::Completed as i32 {
                    let outcome = upd::Outcome::decode(u.outcome.as_slice()).ok();
                    return Ok((Stage::Completed as i32, outcome));
                }
                if d.state.status != Status::Running as i32 {
                    // As Temporal aborts it: an accepted update gets a failure outcome, one the
                    // workflow never accepted the closed run's error.
                    if u.stage >= Stage::Accepted as i32 {
                        return Ok((Stage::Completed as i32, Some(completed_workflow_outcome())));
                    }
                    return Err(closed_error());
                }
                if u.stage >= wait.max(Stage::Admitted as i32) && wait != Stage::Completed as i32 {
                    return Ok((u.stage, None));
                }
                if Instant::now() >= until {
                    return Ok((u.stage, None));
                }
            }
            Self::wait_change(&entry, seen, until).await;
        }
    }
}

/// The outcome of an accepted update whose run closed before the update completed, as
/// Temporal writes it.
fn completed_workflow_outcome() -> upd::Outcome {
    upd::Outcome {
        value: Some(upd::outcome::Value::Failure(Failure {
            message:
                "Workflow Update failed because the Workflow completed before the Update completed."
                    .into(),
            source: "Server".into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: "AcceptedUpdateCompletedWorkflow".into(),
                    non_retryable: true,
                    ..Default::default()
                },
            )),
            ..Default::default()
        })),
    }
}
