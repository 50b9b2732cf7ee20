//! Client-facing workflow operations: start (with id reuse/conflict policies), signal,
//! signal-with-start, cancel, terminate, describe, history (with long polls), query, update,
//! list/count, delete, and the cross-run work (children, external signals/cancels, parents).

use std::time::{Duration, Instant};

use perdure_proto::api::common::v1::{Payloads, WorkflowExecution};
use perdure_proto::api::enums::v1::{
    HistoryEventFilterType, IndexedValueType, ParentClosePolicy, PendingActivityState,
    PendingWorkflowTaskState, QueryRejectCondition, UpdateWorkflowExecutionLifecycleStage as Stage,
    WorkflowExecutionStatus as Status, WorkflowIdConflictPolicy as Conflict,
    WorkflowIdReusePolicy as Reuse,
};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::{
    History, StartChildWorkflowExecutionInitiatedEventAttributes,
};
use perdure_proto::api::query::v1::{QueryRejected, WorkflowQuery};
use perdure_proto::api::update::v1 as upd;
use perdure_proto::api::workflow::v1::{
    PendingActivityInfo, PendingChildExecutionInfo, PendingWorkflowTaskInfo,
    WorkflowExecutionConfig,
};
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;
use tokio::sync::oneshot;

use super::{Engine, PendingQuery};
use crate::clock::convert::{dur, from_ts, ts};
use crate::error::{Error, Result};
use crate::info::{execution_info, type_search_attributes};
use crate::matching::RunKey;
use crate::mutable::{SignalParams, StartParams, start_run};
use crate::state::{ExecutionState, ParentInfo};

/// Result of a start.
#[derive(Debug, Clone)]
pub struct StartOutcome {
    pub run_id: String,
    pub started: bool,
}

/// Result of a query.
#[derive(Debug, Clone)]
pub enum QueryOutcome {
    Answered(Option<Payloads>),
    Failed {
        message: String,
        failure: Option<Box<Failure>>,
    },
}

/// A start request in normalised form (Start, SignalWithStart and child starts share it).
pub(crate) struct StartSpec {
    pub params: StartParams,
    pub reuse: Reuse,
    pub conflict: Conflict,
}

fn not_found_wf(workflow_id: &str) -> Error {
    Error::NotFound(format!("workflow not found for ID: {workflow_id}"))
}

fn closed_error() -> Error {
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

    fn check_request_id(&self, request_id: &str) -> Result<()> {
        self.limits()
            .check_id("RequestId", request_id)
            .map_err(Error::InvalidArgument)
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
        if data.ms.workflow_id != exec.workflow_id {
            return Err(not_found_wf(&exec.workflow_id));
        }
        Ok(key)
    }

    fn start_params_common(
        &self,
        ns: &super::Namespace,
        workflow_id: &str,
        workflow_type: Option<&perdure_proto::api::common::v1::WorkflowType>,
        task_queue: Option<&perdure_proto::api::taskqueue::v1::TaskQueue>,
    ) -> Result<StartParams> {
        if workflow_id.is_empty() {
            return Err(Error::InvalidArgument(
                "WorkflowId is not set on request.".into(),
            ));
        }
        let limit = self.limits().id_length;
        if workflow_id.len() > limit {
            return Err(Error::InvalidArgument(format!(
                "WorkflowId exceeds maximum allowed length ({}/{limit})",
                workflow_id.len()
            )));
        }
        let wt = workflow_type.map(|t| t.name.clone()).unwrap_or_default();
        if wt.is_empty() {
            return Err(Error::InvalidArgument(
                "WorkflowType is not set on request.".into(),
            ));
        }
        self.limits()
            .check_id("WorkflowType", &wt)
            .map_err(Error::InvalidArgument)?;
        let tq = task_queue.map(|t| t.name.clone()).unwrap_or_default();
        if tq.is_empty() {
            return Err(Error::InvalidArgument(
                "TaskQueue is not set on request.".into(),
            ));
        }
        if tq.len() > limit {
            return Err(Error::InvalidArgument(
                "taskQueue length exceeds limit".into(),
            ));
        }
        Ok(StartParams {
            namespace: ns.name.clone(),
            namespace_id: ns.id.clone(),
            workflow_id: workflow_id.to_string(),
            run_id: uuid::Uuid::now_v7().to_string(),
            workflow_type: wt,
            task_queue: tq,
            attempt: 1,
            ..Default::default()
        })
    }

    fn validate_timeouts(
        ds: &[(&str, &Option<perdure_proto::prost_types::Duration>)],
    ) -> Result<()> {
        for (name, d) in ds {
            if let Some(d) = d
                && (d.seconds < 0 || d.nanos < 0)
            {
                return Err(Error::InvalidArgument(format!("Invalid {name}.")));
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn fill_start(
        &self,
        ns: &super::Namespace,
        p: &mut StartParams,
        input: Option<Payloads>,
        timeouts: [Option<perdure_proto::prost_types::Duration>; 3],
        retry: Option<perdure_proto::api::common::v1::RetryPolicy>,
        memo: Option<perdure_proto::api::common::v1::Memo>,
        sa: Option<perdure_proto::api::common::v1::SearchAttributes>,
        header: Option<perdure_proto::api::common::v1::Header>,
        delay: Option<perdure_proto::prost_types::Duration>,
    ) -> Result<()> {
        Self::validate_timeouts(&[
            ("WorkflowExecutionTimeout", &timeouts[0]),
            ("WorkflowRunTimeout", &timeouts[1]),
            ("WorkflowTaskTimeout", &timeouts[2]),
            ("WorkflowStartDelay", &delay),
        ])?;
        self.check_blobs(input.as_ref())?;
        if let Some(r) = &retry {
            crate::retry::normalize(Some(r.clone())).map_err(Error::InvalidArgument)?;
        }
        let limits = self.limits();
        limits
            .check_search_attributes(sa.as_ref())
            .map_err(Error::InvalidArgument)?;
        let mut sa = sa;
        if let Some(sa) = sa.as_mut() {
            type_search_attributes(sa, &ns.name, &|n| ns.sa_type(n))
                .map_err(Error::InvalidArgument)?;
        }
        limits
            .check_memo(memo.as_ref())
            .map_err(Error::InvalidArgument)?;
        // Temporal keeps timeouts and delays of at most 100 years.
        let capped = |d| dur(d).min(crate::limits::MAX_WORKFLOW_TIMEOUT);
        p.input = input;
        p.execution_timeout = capped(&timeouts[0]);
        p.run_timeout = capped(&timeouts[1]);
        p.task_timeout = capped(&timeouts[2]);
        p.retry_policy = retry;
        p.memo = memo;
        p.search_attributes = sa;
        p.header = header;
        p.backoff = capped(&delay);
        Ok(())
    }

    /// Validates a cron schedule and delays the first workflow task until its first tick.
    fn apply_cron(&self, p: &mut StartParams) -> Result<()> {
        if p.cron_schedule.is_empty() {
            return Ok(());
        }
        if !p.backoff.is_zero() {
            return Err(Error::InvalidArgument(
                "CronSchedule and WorkflowStartDelay may not be used together.".into(),
            ));
        }
        let schedule = crate::cron::Schedule::parse(&p.cron_schedule)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        p.backoff = schedule
            .backoff(self.inner.clock.now())
            .ok_or_else(|| Error::InvalidArgument("CronSchedule never fires.".into()))?;
        Ok(())
    }

    pub async fn start_workflow(&self, req: StartWorkflowExecutionRequest) -> Result<StartOutcome> {
        let ns = self.namespace(&req.namespace)?;
        let mut p = self.start_params_common(
            &ns,
            &req.workflow_id,
            req.workflow_type.as_ref(),
            req.task_queue.as_ref(),
        )?;
        self.fill_start(
            &ns,
            &mut p,
            req.input,
            [
                req.workflow_execution_timeout,
                req.workflow_run_timeout,
                req.workflow_task_timeout,
            ],
            req.retry_policy,
            req.memo,
            req.search_attributes,
            req.header,
            req.workflow_start_delay,
        )?;
        p.identity = req.identity;
        self.check_request_id(&req.request_id)?;
        p.request_id = if req.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            req.request_id
        };
        p.cron_schedule = req.cron_schedule;
        self.apply_cron(&mut p)?;
        p.priority = req.priority;
        p.reuse_policy = req.workflow_id_reuse_policy;
        let spec = StartSpec {
            params: p,
            reuse: Reuse::try_from(req.workflow_id_reuse_policy).unwrap_or(Reuse::Unspecified),
            conflict: Conflict::try_from(req.workflow_id_conflict_policy)
                .unwrap_or(Conflict::Unspecified),
        };
        self.start_with_policies(spec).await
    }

    /// Applies request-id dedup and the id reuse/conflict policies, then creates the run; a
    /// signal-with-start signals the running run instead. The whole decision and the commit run
    /// on a task of their own under the workflow id's lock, so a caller that goes away cannot
    /// leave a committed run without its first workflow task, and no other start can slip in
    /// between the decision and the commit.
    pub(crate) async fn start_with_policies(&self, spec: StartSpec) -> Result<StartOutcome> {
        let me = self.clone();
        tokio::spawn(async move { me.start_with_policies_locked(spec).await })
            .await
            .map_err(|e| Error::Internal(format!("start task failed: {e}")))?
    }

    async fn start_with_policies_locked(&self, spec: StartSpec) -> Result<StartOutcome> {
        let StartSpec {
            params: p,
            reuse,
            conflict,
        } = spec;
        let _guard = self.id_lock(&p.namespace_id, &p.workflow_id).lock().await;
        if let Some(cur) = self.current_run(&p.namespace_id, &p.workflow_id).await? {
            let key = RunKey {
                namespace_id: p.namespace_id.clone(),
                run_id: cur.clone(),
            };
            if let Some(signal) = p.signal.clone() {
                let signalled = self
                    .mutate(key.clone(), move |tx, _| {
                        if tx.is_running() {
                            tx.signal(signal);
                            Ok(true)
                        } else {
                            Ok(false)
                        }
                    })
                    .await?;
                if signalled {
                    return Ok(StartOutcome {
                        run_id: cur,
                        started: false,
                    });
                }
            }
            let entry = self.entry(&key).await?;
            let (status, start_request_id) = {
                let d = entry.data.lock().await;
                (d.ms.status, d.ms.start_request_id.clone())
            };
            if start_request_id == p.request_id {
                return Ok(StartOutcome {
                    run_id: cur,
                    started: true,
                });
            }
            let already = |msg: String| Error::AlreadyStarted {
                message: msg,
                start_request_id: start_request_id.clone(),
                run_id: cur.clone(),
            };
            if status == Status::Running as i32 {
                let terminate =
                    conflict == Conflict::TerminateExisting || reuse == Reuse::TerminateIfRunning;
                if conflict == Conflict::UseExisting {
                    return Ok(StartOutcome {
                        run_id: cur,
                        started: false,
                    });
                }
                if !terminate {
                    return Err(already(format!(
                        "Workflow execution is already running. WorkflowId: {}, RunId: {}.",
                        p.workflow_id, cur
                    )));
                }
                self.mutate(key, |tx, _| {
                    if tx.is_running() {
                        tx.terminate("TerminateExisting", None, "perdure-server");
                    }
                    Ok(())
                })
                .await?;
            } else {
                match reuse {
                    Reuse::RejectDuplicate => {
                        return Err(already(format!(
                            "Workflow execution already finished. WorkflowId: {}, RunId: {}. Workflow Id reuse policy: reject duplicate workflow Id.",
                            p.workflow_id, cur
                        )));
                    }
                    Reuse::AllowDuplicateFailedOnly
                        if status == Status::Completed as i32
                            || status == Status::ContinuedAsNew as i32 =>
                    {
                        return Err(already(format!(
                            "Workflow execution already finished successfully. WorkflowId: {}, RunId: {}. Workflow Id reuse policy: allow duplicate workflow Id if last run failed.",
                            p.workflow_id, cur
                        )));
                    }
                    _ => {}
                }
            }
        }
        let run_id = p.run_id.clone();
        let run = start_run(p, self.inner.clock.now());
        self.create_run(run).await?;
        Ok(StartOutcome {
            run_id,
            started: true,
        })
    }

    pub async fn signal_workflow(&self, req: SignalWorkflowExecutionRequest) -> Result<()> {
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

    pub async fn signal_with_start(
        &self,
        req: SignalWithStartWorkflowExecutionRequest,
    ) -> Result<StartOutcome> {
        let ns = self.namespace(&req.namespace)?;
        if req.signal_name.is_empty() {
            return Err(Error::InvalidArgument(
                "SignalName is not set on request.".into(),
            ));
        }
        self.check_blobs(req.signal_input.as_ref())?;
        let mut p = self.start_params_common(
            &ns,
            &req.workflow_id,
            req.workflow_type.as_ref(),
            req.task_queue.as_ref(),
        )?;
        self.fill_start(
            &ns,
            &mut p,
            req.input,
            [
                req.workflow_execution_timeout,
                req.workflow_run_timeout,
                req.workflow_task_timeout,
            ],
            req.retry_policy,
            req.memo,
            req.search_attributes,
            req.header.clone(),
            req.workflow_start_delay,
        )?;
        self.check_request_id(&req.request_id)?;
        let request_id = if req.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            req.request_id
        };
        let signal = SignalParams {
            name: req.signal_name,
            input: req.signal_input,
            header: req.header,
            identity: req.identity.clone(),
            request_id: request_id.clone(),
            external: None,
        };
        p.identity = req.identity;
        p.request_id = request_id;
        p.cron_schedule = req.cron_schedule;
        self.apply_cron(&mut p)?;
        p.priority = req.priority;
        p.reuse_policy = req.workflow_id_reuse_policy;
        p.signal = Some(signal);
        self.start_with_policies(StartSpec {
            params: p,
            reuse: Reuse::try_from(req.workflow_id_reuse_policy).unwrap_or(Reuse::Unspecified),
            conflict: Conflict::UseExisting,
        })
        .await
    }

    fn check_chain(ms: &ExecutionState, first_execution_run_id: &str) -> Result<()> {
        if !first_execution_run_id.is_empty() && ms.first_execution_run_id != first_execution_run_id
        {
            return Err(Error::NotFound(format!(
                "workflow execution not found for first execution run ID {first_execution_run_id}"
            )));
        }
        Ok(())
    }

    pub async fn request_cancel(&self, req: RequestCancelWorkflowExecutionRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        self.mutate(key, move |tx, _| {
            Self::check_chain(tx.ms, &req.first_execution_run_id)?;
            if !tx.is_running() {
                return Err(closed_error());
            }
            tx.request_cancel(&req.reason, &req.identity, &req.request_id, None);
            Ok(())
        })
        .await
    }

    pub async fn terminate(&self, req: TerminateWorkflowExecutionRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        self.check_blobs(req.details.as_ref())?;
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        self.mutate(key, move |tx, _| {
            Self::check_chain(tx.ms, &req.first_execution_run_id)?;
            if !tx.is_running() {
                return Err(closed_error());
            }
            tx.terminate(&req.reason, req.details, &req.identity);
            Ok(())
        })
        .await
    }

    pub async fn delete_workflow(&self, req: DeleteWorkflowExecutionRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        self.mutate(key.clone(), |tx, _| {
            if tx.is_running() {
                tx.terminate("Delete workflow execution", None, "perdure-server");
            }
            Ok(())
        })
        .await?;
        let s = self.inner.store.clone();
        let k = key.clone();
        tokio::task::spawn_blocking(move || s.delete_execution(&k.namespace_id, &k.run_id))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        if let Some(e) = self.inner.runs.lock().remove(&key)
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
        let ms = &d.ms;
        let pending_activities = ms
            .activities
            .iter()
            .map(|a| {
                let state = if a.cancel_requested_event_id != 0 {
                    PendingActivityState::CancelRequested
                } else if a.started_time.is_some() {
                    PendingActivityState::Started
                } else {
                    PendingActivityState::Scheduled
                };
                let s2c = dur(&a.schedule_to_close);
                PendingActivityInfo {
                    activity_id: a.activity_id.clone(),
                    activity_type: Some(crate::mutable::activity_type(a)),
                    state: state as i32,
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
                }
            })
            .collect();
        let pending_children = ms
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
        let pending_workflow_task = ms.wft.as_ref().map(|w| PendingWorkflowTaskInfo {
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
                    name: ms.task_queue.clone(),
                    kind: 1,
                    normal_name: String::new(),
                }),
                workflow_execution_timeout: ms.execution_timeout,
                workflow_run_timeout: ms.run_timeout,
                default_workflow_task_timeout: ms.task_timeout,
                user_metadata: None,
            }),
            workflow_execution_info: Some(execution_info(ms)),
            pending_activities,
            pending_children,
            pending_workflow_task,
            ..Default::default()
        })
    }

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
            let running = d.ms.status == Status::Running as i32;
            // A workflow task's history is pinned to what the task saw.
            let pinned = token.as_ref().map(|t| t.last_event_id).filter(|l| *l > 0);
            let last = pinned.unwrap_or(d.ms.next_event_id - 1);
            if close_only {
                if !running {
                    let id = d.ms.close_event_id;
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
                let status = t.ms.status;
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
                if !running && t.ms.last_completed_wft_started_id == 0 {
                    return Err(Error::WorkflowNotReady(
                        "Workflow execution closed before WorkflowTaskStarted event".into(),
                    ));
                }
                if running && t.ms.wft.as_ref().is_some_and(|w| w.attempt >= 3) {
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
            Self::check_chain(tx.ms, &first)?;
            let known = tx.ms.updates.iter().any(|u| {
                u.update_id == r.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default()
            });
            if !known && !tx.is_running() {
                return Err(closed_error());
            }
            if !known && tx.ms.wft.as_ref().is_some_and(|w| w.attempt >= 3) {
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
                let Some(u) = d.ms.updates.iter().find(|u| u.update_id == update_id) else {
                    if known && d.ms.status == Status::Running as i32 {
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
                if d.ms.status != Status::Running as i32 {
                    return Err(Error::NotFound(
                        "Workflow Update failed because the Workflow completed before the Update completed.".into(),
                    ));
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

    /// ListWorkflowExecutions.
    pub async fn list(
        &self,
        req: ListWorkflowExecutionsRequest,
    ) -> Result<ListWorkflowExecutionsResponse> {
        let ns = self.namespace(&req.namespace)?;
        let compiled = self.compile_query(&ns, &req.query)?;
        if compiled.group_by_status {
            return Err(Error::InvalidArgument(
                "invalid query: 'group by' clause is only supported for count query".into(),
            ));
        }
        let after = if req.next_page_token.is_empty() {
            None
        } else {
            let t = ListToken::decode(req.next_page_token.as_slice())
                .map_err(|_| Error::InvalidArgument("Invalid NextPageToken.".into()))?;
            Some((t.sort_key, t.run_id))
        };
        let page = if req.page_size <= 0 {
            1000
        } else {
            req.page_size as usize
        };
        let s = self.inner.store.clone();
        let ns_id = ns.id.clone();
        let rows =
            tokio::task::spawn_blocking(move || s.list_visibility(&ns_id, &compiled, page, after))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        let next_page_token = if rows.len() == page {
            rows.last()
                .map(|(_, (k, r))| {
                    ListToken {
                        sort_key: *k,
                        run_id: r.clone(),
                    }
                    .encode_to_vec()
                })
                .unwrap_or_default()
        } else {
            vec![]
        };
        let mut executions = Vec::with_capacity(rows.len());
        for (info, _) in rows {
            executions.push(
                perdure_proto::api::workflow::v1::WorkflowExecutionInfo::decode(info.as_slice())
                    .map_err(|e| Error::Internal(format!("corrupt visibility row: {e}")))?,
            );
        }
        Ok(ListWorkflowExecutionsResponse {
            executions,
            next_page_token,
        })
    }

    /// CountWorkflowExecutions.
    pub async fn count(
        &self,
        req: CountWorkflowExecutionsRequest,
    ) -> Result<CountWorkflowExecutionsResponse> {
        let ns = self.namespace(&req.namespace)?;
        let compiled = self.compile_query(&ns, &req.query)?;
        let grouped = compiled.group_by_status;
        let s = self.inner.store.clone();
        let ns_id = ns.id.clone();
        let (count, groups) =
            tokio::task::spawn_blocking(move || s.count_visibility(&ns_id, &compiled))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        let groups = if grouped {
            groups
                .into_iter()
                .map(|(status, n)| {
                    let name = perdure_query::status_name(status).unwrap_or("Unspecified");
                    count_workflow_executions_response::AggregationGroup {
                        group_values: vec![perdure_proto::api::common::v1::Payload {
                            metadata: [
                                ("encoding".to_string(), b"json/plain".to_vec()),
                                ("type".to_string(), b"Keyword".to_vec()),
                            ]
                            .into_iter()
                            .collect(),
                            data: serde_json::to_vec(name).unwrap_or_default(),
                            ..Default::default()
                        }],
                        count: n,
                    }
                })
                .collect()
        } else {
            vec![]
        };
        Ok(CountWorkflowExecutionsResponse { count, groups })
    }

    fn compile_query(&self, ns: &super::Namespace, q: &str) -> Result<perdure_query::Compiled> {
        let lookup = |name: &str| {
            ns.record
                .search_attributes
                .get(name)
                .and_then(|t| IndexedValueType::try_from(*t).ok())
                .map(crate::info::query_type)
        };
        perdure_query::compile_with_offset(q, self.inner.store.dialect(), &lookup, 2)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Starts the child recorded under `initiated` in the parent run `parent`.
    pub(crate) async fn start_child(&self, parent: RunKey, initiated: i64) -> Result<()> {
        let entry = self.entry(&parent).await?;
        let (attrs, pms) = {
            let d = entry.data.lock().await;
            let Some(c) =
                d.ms.children
                    .iter()
                    .find(|c| c.initiated_event_id == initiated)
            else {
                return Ok(());
            };
            if !c.run_id.is_empty() {
                return Ok(());
            }
            let a =
                StartChildWorkflowExecutionInitiatedEventAttributes::decode(c.initiated.as_slice())
                    .map_err(|e| Error::Internal(e.to_string()))?;
            (a, d.ms.clone())
        };
        let result = async {
            let ns = self.namespace(&attrs.namespace)?;
            let mut p = self.start_params_common(
                &ns,
                &attrs.workflow_id,
                attrs.workflow_type.as_ref(),
                attrs.task_queue.as_ref(),
            )?;
            self.fill_start(
                &ns,
                &mut p,
                attrs.input.clone(),
                [
                    attrs.workflow_execution_timeout,
                    attrs.workflow_run_timeout,
                    attrs.workflow_task_timeout,
                ],
                attrs.retry_policy.clone(),
                attrs.memo.clone(),
                attrs.search_attributes.clone(),
                attrs.header.clone(),
                None,
            )?;
            p.request_id = format!("{}:{}", pms.run_id, initiated);
            p.identity = pms.identity.clone();
            p.cron_schedule = attrs.cron_schedule.clone();
            self.apply_cron(&mut p)?;
            p.priority = attrs.priority.clone();
            p.parent = Some(ParentInfo {
                namespace: pms.namespace.clone(),
                namespace_id: pms.namespace_id.clone(),
                workflow_id: pms.workflow_id.clone(),
                run_id: pms.run_id.clone(),
                initiated_event_id: initiated,
            });
            p.root_workflow_id = pms.root_workflow_id.clone();
            p.root_run_id = pms.root_run_id.clone();
            p.parent_close_policy = attrs.parent_close_policy;
            let reuse =
                Reuse::try_from(attrs.workflow_id_reuse_policy).unwrap_or(Reuse::Unspecified);
            self.start_with_policies(StartSpec {
                params: p,
                reuse,
                conflict: Conflict::Fail,
            })
            .await
        }
        .await;
        match result {
            Ok(o) => {
                let run_id = o.run_id;
                self.mutate(parent, move |tx, _| {
                    tx.child_started(initiated, &run_id);
                    Ok(())
                })
                .await
            }
            Err(Error::AlreadyStarted { .. }) | Err(Error::NamespaceNotFound(_)) => {
                self.mutate(parent, move |tx, _| {
                    tx.child_start_failed(initiated);
                    Ok(())
                })
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// Delivers a signal-external or cancel-external request and records the outcome.
    pub(crate) async fn deliver_external(&self, source: RunKey, initiated: i64) -> Result<()> {
        let entry = self.entry(&source).await?;
        let (r, src) = {
            let d = entry.data.lock().await;
            let Some(r) =
                d.ms.external_requests
                    .iter()
                    .find(|r| r.initiated_event_id == initiated)
            else {
                return Ok(());
            };
            (r.clone(), d.ms.clone())
        };
        let target = async {
            let ns = self.namespace(&r.namespace)?;
            let key = self
                .resolve(
                    &ns.id,
                    Some(&WorkflowExecution {
                        workflow_id: r.workflow_id.clone(),
                        run_id: r.run_id.clone(),
                    }),
                )
                .await?;
            let external = WorkflowExecution {
                workflow_id: src.workflow_id.clone(),
                run_id: src.run_id.clone(),
            };
            let request_id = format!("{}:{}", src.run_id, initiated);
            let r2 = r.clone();
            self.mutate(key, move |tx, _| {
                if !tx.is_running() {
                    return Err(closed_error());
                }
                if r2.cancel {
                    tx.request_cancel(
                        &r2.reason,
                        &src.identity,
                        &request_id,
                        Some((initiated, external)),
                    );
                } else {
                    tx.signal(SignalParams {
                        name: r2.signal_name.clone(),
                        input: r2.input.clone(),
                        header: r2.header.clone(),
                        identity: src.identity.clone(),
                        request_id,
                        external: Some(external),
                    });
                }
                Ok(())
            })
            .await
        }
        .await;
        let ok = match target {
            Ok(()) => true,
            Err(Error::NotFound(_))
            | Err(Error::NamespaceNotFound(_))
            | Err(Error::InvalidArgument(_)) => false,
            Err(e) => return Err(e),
        };
        self.mutate(source, move |tx, _| {
            tx.external_done(initiated, ok);
            Ok(())
        })
        .await
    }

    /// Reports a closed child run to its parent, then marks it notified.
    pub(crate) async fn notify_parent(&self, child: RunKey) -> Result<()> {
        let entry = self.entry(&child).await?;
        let (parent, close, run_id) = {
            let d = entry.data.lock().await;
            let Some(p) = d.ms.parent.clone() else {
                return Ok(());
            };
            if d.ms.parent_notified || d.ms.close_event_id == 0 {
                return Ok(());
            }
            let id = d.ms.close_event_id;
            let ev = self.history_event(&d, id).await?;
            let Some(attrs) = ev.and_then(|e| e.attributes) else {
                return Ok(());
            };
            (p, attrs, d.ms.run_id.clone())
        };
        let pkey = RunKey {
            namespace_id: parent.namespace_id.clone(),
            run_id: parent.run_id.clone(),
        };
        let initiated = parent.initiated_event_id;
        match self
            .mutate(pkey, move |tx, _| {
                if tx.is_running() {
                    tx.child_closed(initiated, &run_id, &close);
                }
                Ok(())
            })
            .await
        {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.mutate(child, |tx, _| {
            tx.ms.parent_notified = true;
            tx.changed = true;
            Ok(())
        })
        .await
    }

    pub(crate) async fn apply_parent_close_policy(
        &self,
        namespace: String,
        children: Vec<crate::state::ChildState>,
    ) {
        for c in children {
            let policy = ParentClosePolicy::try_from(c.parent_close_policy)
                .unwrap_or(ParentClosePolicy::Terminate);
            let ns = if c.namespace.is_empty() {
                namespace.clone()
            } else {
                c.namespace.clone()
            };
            let exec = Some(WorkflowExecution {
                workflow_id: c.workflow_id.clone(),
                run_id: String::new(),
            });
            let r = match policy {
                ParentClosePolicy::Abandon => continue,
                ParentClosePolicy::RequestCancel => {
                    self.request_cancel(RequestCancelWorkflowExecutionRequest {
                        namespace: ns,
                        workflow_execution: exec,
                        identity: "perdure-server".into(),
                        reason: "by parent close policy".into(),
                        ..Default::default()
                    })
                    .await
                }
                _ => {
                    self.terminate(TerminateWorkflowExecutionRequest {
                        namespace: ns,
                        workflow_execution: exec,
                        reason: "by parent close policy".into(),
                        identity: "perdure-server".into(),
                        ..Default::default()
                    })
                    .await
                }
            };
            if let Err(e) = r {
                tracing::debug!(%e, child = %c.workflow_id, "parent close policy not applied");
            }
        }
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

/// Page token of ListWorkflowExecutions.
#[derive(Clone, PartialEq, prost::Message)]
struct ListToken {
    #[prost(int64, tag = "1")]
    sort_key: i64,
    #[prost(string, tag = "2")]
    run_id: String,
}
