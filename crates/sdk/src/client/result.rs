//! Waiting for a run to close: [`WorkflowHandle::result`], and [`WorkflowHandle::wait_for_close`]
//! for the close event itself; both follow continue-as-new, retries and cron runs.

use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::{EventType, HistoryEventFilterType};
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes as EventAttributes;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;

use super::rpc::{LONG_POLL, call};
use super::{Result, WorkflowHandle};
use crate::error::ClientError;
use crate::payload;

/// The close event of a run, and which run it closed.
#[derive(Debug, Clone)]
pub struct ClosedRun {
    /// The run that closed: the handle's run, or the last one followed to; `None` when the handle
    /// targets the latest run and no later run was followed to.
    pub run_id: Option<String>,
    /// Its close event (completed, failed, timed out, cancelled, terminated, continued as new).
    pub close_event: HistoryEvent,
}

/// The run a close event hands over to (continue-as-new, retry, cron), if any.
pub fn next_run(close_event: &HistoryEvent) -> Option<String> {
    let next = match close_event.attributes.as_ref()? {
        EventAttributes::WorkflowExecutionCompletedEventAttributes(c) => &c.new_execution_run_id,
        EventAttributes::WorkflowExecutionFailedEventAttributes(f) => &f.new_execution_run_id,
        EventAttributes::WorkflowExecutionTimedOutEventAttributes(t) => &t.new_execution_run_id,
        EventAttributes::WorkflowExecutionContinuedAsNewEventAttributes(c) => {
            &c.new_execution_run_id
        }
        _ => return None,
    };
    Some(next.clone()).filter(|n| !n.is_empty())
}

impl WorkflowHandle {
    /// Waits for the result, following continue-as-new, retries and cron runs to the last run.
    pub async fn result<T: DeserializeOwned>(&self) -> Result<T> {
        self.result_with(true).await
    }

    /// Waits for the result of this run only (`follow_runs = false`) or of the chain.
    pub async fn result_with<T: DeserializeOwned>(&self, follow_runs: bool) -> Result<T> {
        let close = self.wait_for_close(follow_runs).await?.close_event;
        match close.attributes {
            Some(EventAttributes::WorkflowExecutionCompletedEventAttributes(c)) => {
                Ok(payload::from_payloads(c.result.as_ref())?)
            }
            Some(EventAttributes::WorkflowExecutionFailedEventAttributes(f)) => {
                Err(ClientError::WorkflowFailed {
                    failure: Box::new(f.failure.unwrap_or_default()),
                })
            }
            Some(EventAttributes::WorkflowExecutionTimedOutEventAttributes(_)) => {
                Err(ClientError::WorkflowTimedOut)
            }
            Some(EventAttributes::WorkflowExecutionContinuedAsNewEventAttributes(c)) => {
                Err(ClientError::WorkflowContinuedAsNew {
                    new_run_id: c.new_execution_run_id,
                })
            }
            Some(EventAttributes::WorkflowExecutionCanceledEventAttributes(_)) => {
                Err(ClientError::WorkflowCanceled)
            }
            Some(EventAttributes::WorkflowExecutionTerminatedEventAttributes(t)) => {
                Err(ClientError::WorkflowTerminated { reason: t.reason })
            }
            _ => Err(ClientError::Rpc(tonic::Status::internal(format!(
                "unexpected close event {:?}",
                EventType::try_from(close.event_type)
            )))),
        }
    }

    /// Waits until this run closes (`follow_runs = false`) or, following the runs it hands over
    /// to (see [`next_run`]), until the last run of the chain closes.
    pub async fn wait_for_close(&self, follow_runs: bool) -> Result<ClosedRun> {
        let mut run_id = self.run_id.clone();
        loop {
            let close_event = self
                .close_event(run_id.as_deref().unwrap_or_default())
                .await?;
            match next_run(&close_event).filter(|_| follow_runs) {
                Some(next) => run_id = Some(next),
                None => {
                    return Ok(ClosedRun {
                        run_id,
                        close_event,
                    });
                }
            }
        }
    }

    /// Long-polls the close event of `run_id` (or of the latest run).
    async fn close_event(&self, run_id: &str) -> Result<HistoryEvent> {
        let mut token = Vec::new();
        loop {
            let r = ws::GetWorkflowExecutionHistoryRequest {
                namespace: self.namespace(),
                execution: Some(WorkflowExecution {
                    workflow_id: self.workflow_id.clone(),
                    run_id: run_id.to_string(),
                }),
                wait_new_event: true,
                history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                next_page_token: token.clone(),
                skip_archival: true,
                ..Default::default()
            };
            match call!(
                self.workflow_service(),
                get_workflow_execution_history,
                r,
                LONG_POLL
            ) {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    if let Some(e) = resp.history.and_then(|h| h.events.into_iter().last()) {
                        return Ok(e);
                    }
                    token = resp.next_page_token;
                }
                // Our own deadline passed while the server held the poll: poll again.
                Err(s) if s.code() == tonic::Code::DeadlineExceeded => {}
                Err(s) => return Err(s.into()),
            }
        }
    }
}
