//! GetWorkflowExecutionHistory: paging with `HistoryToken`, close-event filter and long polls.

use std::time::Instant;

use perdure_proto::api::enums::v1::{HistoryEventFilterType, WorkflowExecutionStatus as Status};
use perdure_proto::api::history::v1::History;
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;

use super::Engine;
use crate::error::{Error, Result};

impl Engine {
    /// GetWorkflowExecutionHistory, including the long polls used by `result()` and `--follow`.
    pub async fn get_history(
        &self,
        req: GetWorkflowExecutionHistoryRequest,
        deadline: Instant,
    ) -> Result<GetWorkflowExecutionHistoryResponse> {
        let ns = self.namespace(&req.namespace)?;
        let mut exec = req.execution.clone().unwrap_or_default();
        // The token pins the run and the next event id.
        let token = if req.next_page_token.is_empty() {
            None
        } else {
            let t = HistoryToken::decode(req.next_page_token.as_slice())
                .map_err(|_| Error::InvalidArgument("Invalid NextPageToken.".into()))?;
            exec.run_id = t.run_id.clone();
            Some(t)
        };
        let key = self.resolve(&ns.id, Some(&exec)).await?;
        let close_only = req.history_event_filter_type == HistoryEventFilterType::CloseEvent as i32;
        let page = if req.maximum_page_size <= 0 {
            1000
        } else {
            req.maximum_page_size as usize
        };
        let wait_until = deadline.min(Instant::now() + self.inner.config.long_poll);
        let mut from = token.as_ref().map(|t| t.next_event_id).unwrap_or(1);
        loop {
            let entry = self.entry(&key).await?;
            let seen = *entry.version.borrow();
            let d = entry.data.lock().await;
            let running = d.state.status == Status::Running as i32;
            // A workflow task's history is pinned to what the task saw.
            let pinned = token.as_ref().map(|t| t.last_event_id).filter(|l| *l > 0);
            let last = pinned.unwrap_or(d.state.next_event_id - 1);
            if close_only {
                if !running {
                    let id = d.state.close_event_id;
                    let ev = self.history_event(&d, id).await?;
                    return Ok(GetWorkflowExecutionHistoryResponse {
                        history: Some(History {
                            events: ev.into_iter().collect(),
                        }),
                        ..Default::default()
                    });
                }
            } else if from <= last {
                let mut events = self.history_range(&d, from, last, page).await?;
                let next = from + events.len() as i64;
                let more = next <= last || (running && req.wait_new_event && pinned.is_none());
                let next_page_token = if more {
                    HistoryToken {
                        run_id: key.run_id.clone(),
                        next_event_id: next,
                        ..token.clone().unwrap_or_default()
                    }
                    .encode_to_vec()
                } else {
                    // The last page of a workflow task's history ends with its unpersisted
                    // (transient) scheduled/started events.
                    if let Some(t) = &token {
                        events.extend(
                            History::decode(t.transient.as_slice())
                                .unwrap_or_default()
                                .events,
                        );
                    }
                    vec![]
                };
                return Ok(GetWorkflowExecutionHistoryResponse {
                    history: Some(History { events }),
                    next_page_token,
                    ..Default::default()
                });
            } else if !running || !req.wait_new_event {
                return Ok(GetWorkflowExecutionHistoryResponse {
                    history: Some(History::default()),
                    ..Default::default()
                });
            }
            // Running, nothing new to return yet.
            if !req.wait_new_event {
                return Ok(GetWorkflowExecutionHistoryResponse {
                    history: Some(History::default()),
                    ..Default::default()
                });
            }
            drop(d);
            if Instant::now() >= wait_until || !Self::wait_change(&entry, seen, wait_until).await {
                from = from.max(1);
                return Ok(GetWorkflowExecutionHistoryResponse {
                    history: Some(History::default()),
                    next_page_token: HistoryToken {
                        run_id: key.run_id.clone(),
                        next_event_id: if close_only { 1 } else { from },
                        ..Default::default()
                    }
                    .encode_to_vec(),
                    ..Default::default()
                });
            }
        }
    }
}

impl Engine {
    /// GetWorkflowExecutionHistoryReverse: the run's events newest first, a page at a time. The
    /// first page pins the run and its last event, so events written later are not returned.
    pub async fn get_history_reverse(
        &self,
        req: GetWorkflowExecutionHistoryReverseRequest,
    ) -> Result<GetWorkflowExecutionHistoryReverseResponse> {
        let ns = self.namespace(&req.namespace)?;
        let mut exec = req
            .execution
            .clone()
            .ok_or_else(|| Error::InvalidArgument("Execution is not set on request.".into()))?;
        if exec.workflow_id.is_empty() {
            return Err(Error::InvalidArgument(
                "WorkflowId is not set on request.".into(),
            ));
        }
        let token = if req.next_page_token.is_empty() {
            None
        } else {
            let t = HistoryToken::decode(req.next_page_token.as_slice())
                .map_err(|_| Error::InvalidArgument("Invalid NextPageToken.".into()))?;
            exec.run_id = t.run_id.clone();
            Some(t)
        };
        let key = self.resolve(&ns.id, Some(&exec)).await?;
        let page = if req.maximum_page_size <= 0 {
            1000
        } else {
            req.maximum_page_size as usize
        };
        let entry = self.entry(&key).await?;
        let d = entry.data.lock().await;
        let top = match &token {
            Some(t) => t.next_event_id,
            None => d.state.next_event_id - 1,
        };
        let from = (top - page as i64 + 1).max(1);
        let mut events = self.history_range(&d, from, top, page).await?;
        events.reverse();
        let next_page_token = if from > 1 {
            HistoryToken {
                run_id: key.run_id.clone(),
                next_event_id: from - 1,
                ..Default::default()
            }
            .encode_to_vec()
        } else {
            Vec::new()
        };
        Ok(GetWorkflowExecutionHistoryReverseResponse {
            history: Some(History { events }),
            next_page_token,
        })
    }
}

/// Page token of GetWorkflowExecutionHistory (and of a workflow task's first page).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HistoryToken {
    #[prost(string, tag = "1")]
    pub(crate) run_id: String,
    #[prost(int64, tag = "2")]
    pub(crate) next_event_id: i64,
    /// For a workflow task's history: the last persisted event the task saw (0: none pinned).
    #[prost(int64, tag = "3")]
    pub(crate) last_event_id: i64,
    /// For a workflow task's history: its transient events (an encoded `History`), sent after
    /// the last page.
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) transient: Vec<u8>,
}
