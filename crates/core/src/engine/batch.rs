//! Batch operations (StartBatchOperation and friends): terminate, cancel, signal, delete, reset or
//! update the options of every workflow execution of a list or of a visibility query, unpause,
//! reset or update the options of their activities, or cancel, terminate or delete standalone
//! activities (an activity visibility query), in a background task of this process. The job is
//! a stored record (a `DescribeBatchOperationResponse`) written when it starts, every
//! [`PROGRESS_EVERY`] executions and when it ends; a job still RUNNING in the store that no task of
//! this process runs was interrupted by a restart and is reported FAILED.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use perdure_proto::api::batch::v1 as batch_v1;
use perdure_proto::api::batch::v1::BatchOperationInfo;
use perdure_proto::api::common::v1::WorkflowExecution;
use perdure_proto::api::enums::v1::{BatchOperationState as State, BatchOperationType as Type};
use perdure_proto::api::workflowservice::v1::start_batch_operation_request::Operation;
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;

use super::{Engine, Namespace};
use crate::clock::convert::{ts, ts_nanos};
use crate::error::{Error, Result};
use crate::store::StoredBatchJob;

/// The stored record is rewritten after this many executions.
const PROGRESS_EVERY: i64 = 100;
/// Page size of the visibility scan and the default of ListBatchOperations.
const PAGE: i32 = 1000;

/// Batch jobs this process is running: (namespace id, job id) → stop flag.
#[derive(Default)]
pub(crate) struct RunningJobs(parking_lot::Mutex<HashMap<(String, String), Arc<AtomicBool>>>);

fn required() -> Error {
    Error::InvalidArgument(
        "must provide required parameters: BatchType,Reason,Namespace, AND one of (Query OR Executions OR TargetExecutions)".into(),
    )
}

fn not_found(job_id: &str) -> Error {
    Error::NotFound(format!("workflow not found for ID: {job_id}"))
}

/// Where a batch reset goes in each run.
#[derive(Clone)]
enum ResetTarget {
    FirstWorkflowTask,
    LastWorkflowTask,
    EventId(i64),
}

/// What each execution of the job gets.
#[derive(Clone)]
enum Op {
    Terminate {
        details: Option<perdure_proto::api::common::v1::Payloads>,
    },
    Cancel,
    Signal {
        name: String,
        input: Option<perdure_proto::api::common::v1::Payloads>,
        header: Option<perdure_proto::api::common::v1::Header>,
    },
    Delete,
    Reset {
        target: ResetTarget,
        reapply_type: i32,
        exclude: Vec<i32>,
        post_reset_operations: Vec<perdure_proto::api::workflow::v1::PostResetOperation>,
    },
    UpdateOptions {
        options: Option<perdure_proto::api::workflow::v1::WorkflowExecutionOptions>,
        mask: Option<perdure_proto::prost_types::FieldMask>,
    },
    UnpauseActivities(batch_v1::BatchOperationUnpauseActivities),
    ResetActivities(batch_v1::BatchOperationResetActivities),
    UpdateActivityOptions(batch_v1::BatchOperationUpdateActivityOptions),
    /// Standalone activities: the targets are (activity id, run id) pairs.
    CancelActivity {
        reason: String,
    },
    TerminateActivity {
        reason: String,
    },
    DeleteActivity,
}

impl Op {
    /// Whether the targets are standalone activities rather than workflow executions.
    fn on_standalone(&self) -> bool {
        matches!(
            self,
            Op::CancelActivity { .. } | Op::TerminateActivity { .. } | Op::DeleteActivity
        )
    }

    /// Whether a query is narrowed to running executions (Temporal's batcher leaves reset and
    /// delete queries alone).
    fn running_only(&self) -> bool {
        !matches!(self, Op::Delete | Op::Reset { .. } | Op::DeleteActivity)
    }
}

fn activity_filter_error() -> Error {
    Error::InvalidArgument(
        "Either activity type must be set, or match all should be set to true".into(),
    )
}

/// The activity filter of an activity batch: a non-empty type, or match_all set.
fn check_activity_filter(type_: Option<&str>, match_all: Option<bool>) -> Result<()> {
    match (type_, match_all) {
        (Some(t), _) if !t.is_empty() => Ok(()),
        (None, Some(true)) => Ok(()),
        _ => Err(activity_filter_error()),
    }
}

impl Engine {
    pub async fn start_batch(&self, req: StartBatchOperationRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        if req.job_id.is_empty() {
            return Err(Error::InvalidArgument(
                "JobId is not set on request.".into(),
            ));
        }
        self.limits()
            .check_id("JobId", &req.job_id)
            .map_err(Error::InvalidArgument)?;
        // `executions` is deprecated for `target_executions`, but the `temporal` CLI sends it.
        #[allow(deprecated)]
        let mut executions = req.executions.clone();
        executions.extend(req.target_executions.iter().map(|e| WorkflowExecution {
            workflow_id: e.business_id.clone(),
            run_id: e.run_id.clone(),
        }));
        if req.reason.is_empty()
            || req.operation.is_none()
            || (req.visibility_query.is_empty() && executions.is_empty())
        {
            return Err(required());
        }
        let (kind, identity, op) = match req.operation.clone().unwrap() {
            Operation::TerminationOperation(t) => (
                Type::TerminateWorkflow,
                t.identity,
                Op::Terminate { details: t.details },
            ),
            Operation::CancellationOperation(c) => (Type::CancelWorkflow, c.identity, Op::Cancel),
            Operation::SignalOperation(s) => {
                if s.signal.is_empty() {
                    return Err(Error::InvalidArgument(
                        "SignalName is not set on request.".into(),
                    ));
                }
                self.check_blobs(s.input.as_ref())?;
                (
                    Type::SignalWorkflow,
                    s.identity,
                    Op::Signal {
                        name: s.signal,
                        input: s.input,
                        header: s.header,
                    },
                )
            }
            Operation::DeletionOperation(d) => (Type::DeleteWorkflow, d.identity, Op::Delete),
            Operation::ResetOperation(r) => {
                (Type::ResetWorkflow, r.identity.clone(), Self::reset_op(r)?)
            }
            Operation::UpdateWorkflowOptionsOperation(u) => {
                if u.workflow_execution_options.is_none() {
                    return Err(Error::InvalidArgument("must provide UpdateOptions".into()));
                }
                if u.update_mask.is_none() {
                    return Err(Error::InvalidArgument("must provide UpdateMask".into()));
                }
                (
                    Type::UpdateWorkflowExecutionOptions,
                    u.identity,
                    Op::UpdateOptions {
                        options: u.workflow_execution_options,
                        mask: u.update_mask,
                    },
                )
            }
            Operation::UnpauseActivitiesOperation(u) => {
                use batch_v1::batch_operation_unpause_activities::Activity;
                let Some(a) = &u.activity else {
                    return Err(Error::InvalidArgument("activity filter must be set".into()));
                };
                match a {
                    Activity::Type(t) => check_activity_filter(Some(t), None)?,
                    Activity::MatchAll(m) => check_activity_filter(None, Some(*m))?,
                }
                (
                    Type::UnpauseActivity,
                    u.identity.clone(),
                    Op::UnpauseActivities(u),
                )
            }
            Operation::ResetActivitiesOperation(r) => {
                use batch_v1::batch_operation_reset_activities::Activity;
                match &r.activity {
                    None => {
                        return Err(Error::InvalidArgument(
                            "must provide ActivityType or MatchAll".into(),
                        ));
                    }
                    Some(Activity::Type(t)) => check_activity_filter(Some(t), None)?,
                    Some(Activity::MatchAll(m)) => check_activity_filter(None, Some(*m))?,
                }
                (
                    Type::ResetActivity,
                    r.identity.clone(),
                    Op::ResetActivities(r),
                )
            }
            Operation::UpdateActivityOptionsOperation(u) => {
                use batch_v1::batch_operation_update_activity_options::Activity;
                if u.activity_options.is_some() && u.restore_original {
                    return Err(Error::InvalidArgument(
                        "cannot set both activity options and restore original".into(),
                    ));
                }
                if u.activity_options.is_none() && !u.restore_original {
                    return Err(Error::InvalidArgument(
                        "Either activity type must be set, or restore original should be set to true"
                            .into(),
                    ));
                }
                match &u.activity {
                    None => return Err(activity_filter_error()),
                    Some(Activity::Type(t)) => check_activity_filter(Some(t), None)?,
                    Some(Activity::MatchAll(m)) => check_activity_filter(None, Some(*m))?,
                }
                (
                    Type::UpdateActivityOptions,
                    u.identity.clone(),
                    Op::UpdateActivityOptions(u),
                )
            }
            Operation::CancelActivitiesOperation(c) => (
                Type::CancelActivity,
                c.identity,
                Op::CancelActivity { reason: c.reason },
            ),
            Operation::TerminateActivitiesOperation(t) => (
                Type::TerminateActivity,
                t.identity,
                Op::TerminateActivity { reason: t.reason },
            ),
            Operation::DeleteActivitiesOperation(_) => {
                (Type::DeleteActivity, String::new(), Op::DeleteActivity)
            }
        };
        let query = if req.visibility_query.is_empty() || !op.running_only() {
            req.visibility_query.clone()
        } else {
            format!("({}) AND ExecutionStatus = 'Running'", req.visibility_query)
        };
        if !query.is_empty() {
            if op.on_standalone() {
                // Checked as ListActivityExecutions checks it.
                self.count_activity_executions(CountActivityExecutionsRequest {
                    namespace: ns.name.clone(),
                    query: query.clone(),
                })
                .await?;
            } else {
                self.compile_query(&ns, &query)?;
            }
        }
        let now = self.inner.clock.now();
        let record = DescribeBatchOperationResponse {
            operation_type: kind as i32,
            job_id: req.job_id.clone(),
            state: State::Running as i32,
            start_time: Some(ts(now)),
            identity,
            reason: req.reason.clone(),
            query: req.visibility_query.clone(),
            ..Default::default()
        };
        let stored = StoredBatchJob {
            namespace_id: ns.id.clone(),
            job_id: req.job_id.clone(),
            start_time: ts_nanos(&ts(now)),
            data: record.encode_to_vec(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        self.inner
            .batch_jobs
            .0
            .lock()
            .insert((ns.id.clone(), req.job_id.clone()), stop.clone());
        let s = self.inner.store.clone();
        let put = tokio::task::spawn_blocking(move || s.put_batch_job(&stored, true))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        if let Err(e) = put {
            self.inner
                .batch_jobs
                .0
                .lock()
                .remove(&(ns.id.clone(), req.job_id.clone()));
            return Err(match e {
                crate::store::StoreError::AlreadyExists(_) => Error::AlreadyExists(format!(
                    "Workflow execution already started or finished. WorkflowId: {}. Workflow Id reuse policy: reject duplicate workflow Id.",
                    req.job_id
                )),
                e => e.into(),
            });
        }
        let me = self.clone();
        tokio::spawn(async move {
            let key = (ns.id.clone(), record.job_id.clone());
            me.run_batch(ns, record, query, executions, op, req.reason, stop)
                .await;
            me.inner.batch_jobs.0.lock().remove(&key);
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_batch(
        &self,
        ns: Arc<Namespace>,
        mut record: DescribeBatchOperationResponse,
        query: String,
        executions: Vec<WorkflowExecution>,
        op: Op,
        reason: String,
        stop: Arc<AtomicBool>,
    ) {
        let targets = if executions.is_empty() {
            let found = if op.on_standalone() {
                self.matching_activities(&ns, &query).await
            } else {
                self.matching_executions(&ns, &query).await
            };
            match found {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(job_id = %record.job_id, %e, "batch query failed");
                    record.state = State::Failed as i32;
                    record.close_time = Some(ts(self.inner.clock.now()));
                    self.save_batch(&ns, &record).await;
                    return;
                }
            }
        } else {
            executions
        };
        record.total_operation_count = targets.len() as i64;
        self.save_batch(&ns, &record).await;
        for (i, exec) in targets.into_iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let done = match self.apply_batch_op(&ns, &record, exec, &op, &reason).await {
                Ok(()) => true,
                // Closed meanwhile: nothing left to do, as Temporal counts it.
                Err(Error::NotFound(_)) => !matches!(op, Op::Signal { .. }),
                Err(e) => {
                    tracing::debug!(job_id = %record.job_id, %e, "batch operation failed on an execution");
                    false
                }
            };
            if done {
                record.complete_operation_count += 1;
            } else {
                record.failure_operation_count += 1;
            }
            if (i as i64 + 1) % PROGRESS_EVERY == 0 {
                self.save_batch(&ns, &record).await;
            }
        }
        record.state = if stop.load(Ordering::SeqCst) {
            State::Failed as i32
        } else {
            State::Completed as i32
        };
        record.close_time = Some(ts(self.inner.clock.now()));
        self.save_batch(&ns, &record).await;
    }

    /// Every execution the (already checked) query matches.
    async fn matching_executions(
        &self,
        ns: &Namespace,
        query: &str,
    ) -> Result<Vec<WorkflowExecution>> {
        let mut out = Vec::new();
        let mut token = Vec::new();
        loop {
            let page = self
                .list(ListWorkflowExecutionsRequest {
                    namespace: ns.name.clone(),
                    page_size: PAGE,
                    next_page_token: token,
                    query: query.to_string(),
                })
                .await?;
            out.extend(page.executions.into_iter().filter_map(|e| e.execution));
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    /// Every standalone activity the (already checked) activity query matches, as (activity
    /// id, run id) pairs.
    async fn matching_activities(
        &self,
        ns: &Namespace,
        query: &str,
    ) -> Result<Vec<WorkflowExecution>> {
        let mut out = Vec::new();
        let mut token = Vec::new();
        loop {
            let page = self
                .list_activity_executions(ListActivityExecutionsRequest {
                    namespace: ns.name.clone(),
                    page_size: PAGE,
                    next_page_token: token,
                    query: query.to_string(),
                })
                .await?;
            out.extend(page.executions.into_iter().map(|a| WorkflowExecution {
                workflow_id: a.activity_id,
                run_id: a.run_id,
            }));
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    /// The reset a `BatchOperationReset` asks for, checked as Temporal's batcher checks it.
    #[allow(deprecated)]
    fn reset_op(r: batch_v1::BatchOperationReset) -> Result<Op> {
        use perdure_proto::api::common::v1::reset_options::Target;
        use perdure_proto::api::enums::v1::ResetType;
        let (target, reapply_type, exclude) = match r.options {
            Some(o) => {
                let target = match o.target {
                    None => {
                        return Err(Error::InvalidArgument("batch reset missing target".into()));
                    }
                    Some(Target::FirstWorkflowTask(_)) => ResetTarget::FirstWorkflowTask,
                    Some(Target::LastWorkflowTask(_)) => ResetTarget::LastWorkflowTask,
                    Some(Target::WorkflowTaskId(id)) => ResetTarget::EventId(id),
                    Some(Target::BuildId(_)) => {
                        return Err(Error::InvalidArgument(
                            "Perdure does not run batch resets to a build id.".into(),
                        ));
                    }
                };
                (target, o.reset_reapply_type, o.reset_reapply_exclude_types)
            }
            None => {
                let target = match ResetType::try_from(r.reset_type) {
                    Ok(ResetType::FirstWorkflowTask) => ResetTarget::FirstWorkflowTask,
                    Ok(ResetType::LastWorkflowTask) => ResetTarget::LastWorkflowTask,
                    _ => {
                        // Named as Temporal's Go enums print themselves.
                        let name = match r.reset_type {
                            0 => "Unspecified".to_string(),
                            n => n.to_string(),
                        };
                        return Err(Error::InvalidArgument(format!(
                            "unknown batch reset type {name}"
                        )));
                    }
                };
                (target, r.reset_reapply_type, Vec::new())
            }
        };
        Ok(Op::Reset {
            target,
            reapply_type,
            exclude,
            post_reset_operations: r.post_reset_operations,
        })
    }

    /// The event id First/LastWorkflowTask names in a run, as Temporal's batcher (and the
    /// `temporal` CLI) finds it: the first (last) WorkflowTaskCompleted, or else the event after
    /// the first (last) WorkflowTaskScheduled.
    async fn reset_event_id(
        &self,
        ns: &Namespace,
        exec: &WorkflowExecution,
        last: bool,
    ) -> Result<i64> {
        use perdure_proto::api::enums::v1::EventType;
        let key = self.resolve(&ns.id, Some(exec)).await?;
        let entry = self.entry(&key).await?;
        let history = {
            let data = entry.data.lock().await;
            self.history_range(&data, 1, data.state.next_event_id - 1, usize::MAX)
                .await?
        };
        let mut found = 0;
        let mut after_scheduled = 0;
        let events: Box<dyn Iterator<Item = _>> = if last {
            Box::new(history.iter().rev())
        } else {
            Box::new(history.iter())
        };
        for e in events {
            if e.event_type == EventType::WorkflowTaskCompleted as i32 {
                found = e.event_id;
                break;
            }
            if e.event_type == EventType::WorkflowTaskScheduled as i32
                && (last || after_scheduled == 0)
            {
                after_scheduled = e.event_id + 1;
            }
        }
        match if found != 0 { found } else { after_scheduled } {
            0 => Err(Error::InvalidArgument(
                "unable to find any scheduled or completed task".into(),
            )),
            n => Ok(n),
        }
    }

    async fn apply_batch_op(
        &self,
        ns: &Namespace,
        record: &DescribeBatchOperationResponse,
        exec: WorkflowExecution,
        op: &Op,
        reason: &str,
    ) -> Result<()> {
        let namespace = ns.name.clone();
        let identity = record.identity.clone();
        let request_id = format!("{}:{}:{}", record.job_id, exec.workflow_id, exec.run_id);
        match op.clone() {
            Op::Terminate { details } => {
                self.terminate(TerminateWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: Some(exec),
                    reason: reason.to_string(),
                    details,
                    identity,
                    ..Default::default()
                })
                .await
            }
            Op::Cancel => {
                self.request_cancel(RequestCancelWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: Some(exec),
                    identity,
                    request_id,
                    reason: reason.to_string(),
                    ..Default::default()
                })
                .await
            }
            Op::Signal {
                name,
                input,
                header,
            } => {
                self.signal_workflow(SignalWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: Some(exec),
                    signal_name: name,
                    input,
                    header,
                    identity,
                    request_id,
                    ..Default::default()
                })
                .await
            }
            Op::Delete => {
                self.delete_workflow(DeleteWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: Some(exec),
                })
                .await
            }
            Op::Reset {
                target,
                reapply_type,
                exclude,
                post_reset_operations,
            } => {
                let event_id = match target {
                    ResetTarget::FirstWorkflowTask => self.reset_event_id(ns, &exec, false).await?,
                    ResetTarget::LastWorkflowTask => self.reset_event_id(ns, &exec, true).await?,
                    ResetTarget::EventId(id) => id,
                };
                self.reset_workflow(ResetWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: Some(exec),
                    reason: reason.to_string(),
                    workflow_task_finish_event_id: event_id,
                    request_id: uuid::Uuid::new_v4().to_string(),
                    reset_reapply_type: reapply_type,
                    reset_reapply_exclude_types: exclude,
                    post_reset_operations,
                    identity,
                })
                .await
                .map(|_| ())
            }
            Op::UpdateOptions { options, mask } => self
                .update_workflow_execution_options(UpdateWorkflowExecutionOptionsRequest {
                    namespace,
                    workflow_execution: Some(exec),
                    workflow_execution_options: options,
                    update_mask: mask,
                    identity,
                })
                .await
                .map(|_| ()),
            Op::UnpauseActivities(u) => {
                use batch_v1::batch_operation_unpause_activities::Activity as B;
                use unpause_activity_request::Activity;
                self.unpause_activity(UnpauseActivityRequest {
                    namespace,
                    execution: Some(exec),
                    identity,
                    activity: u.activity.map(|a| match a {
                        B::Type(t) => Activity::Type(t),
                        B::MatchAll(m) => Activity::UnpauseAll(m),
                    }),
                    reset_attempts: u.reset_attempts,
                    reset_heartbeat: u.reset_heartbeat,
                    jitter: u.jitter,
                })
                .await
            }
            Op::ResetActivities(r) => {
                use batch_v1::batch_operation_reset_activities::Activity as B;
                use reset_activity_request::Activity;
                self.reset_activity(ResetActivityRequest {
                    namespace,
                    execution: Some(exec),
                    identity,
                    activity: r.activity.map(|a| match a {
                        B::Type(t) => Activity::Type(t),
                        B::MatchAll(m) => Activity::MatchAll(m),
                    }),
                    reset_heartbeat: r.reset_heartbeat,
                    keep_paused: r.keep_paused,
                    jitter: r.jitter,
                    restore_original_options: r.restore_original_options,
                })
                .await
            }
            Op::UpdateActivityOptions(u) => {
                use batch_v1::batch_operation_update_activity_options::Activity as B;
                use update_activity_options_request::Activity;
                self.update_activity_options(UpdateActivityOptionsRequest {
                    namespace,
                    execution: Some(exec),
                    identity,
                    activity: u.activity.map(|a| match a {
                        B::Type(t) => Activity::Type(t),
                        B::MatchAll(m) => Activity::MatchAll(m),
                    }),
                    activity_options: u.activity_options,
                    // Temporal's batcher always sends a mask (empty without one).
                    update_mask: Some(u.update_mask.unwrap_or_default()),
                    restore_original: u.restore_original,
                })
                .await
                .map(|_| ())
            }
            Op::CancelActivity { reason } => {
                self.request_cancel_activity_execution(RequestCancelActivityExecutionRequest {
                    namespace,
                    activity_id: exec.workflow_id,
                    run_id: exec.run_id,
                    identity,
                    request_id,
                    reason,
                })
                .await
            }
            Op::TerminateActivity { reason } => {
                self.terminate_activity_execution(TerminateActivityExecutionRequest {
                    namespace,
                    activity_id: exec.workflow_id,
                    run_id: exec.run_id,
                    identity,
                    request_id,
                    reason,
                })
                .await
            }
            Op::DeleteActivity => {
                self.delete_activity_execution(DeleteActivityExecutionRequest {
                    namespace,
                    activity_id: exec.workflow_id,
                    run_id: exec.run_id,
                })
                .await
            }
        }
    }

    async fn save_batch(&self, ns: &Namespace, record: &DescribeBatchOperationResponse) {
        let stored = StoredBatchJob {
            namespace_id: ns.id.clone(),
            job_id: record.job_id.clone(),
            start_time: record.start_time.as_ref().map(ts_nanos).unwrap_or_default(),
            data: record.encode_to_vec(),
        };
        let s = self.inner.store.clone();
        match tokio::task::spawn_blocking(move || s.put_batch_job(&stored, false)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(job_id = %record.job_id, %e, "saving a batch job failed"),
            Err(e) => tracing::warn!(job_id = %record.job_id, %e, "saving a batch job failed"),
        }
    }

    /// The jobs this process is running now. Taken *before* the store is read: a job leaves
    /// this set only after its final state is saved, so a stored RUNNING row whose job is not
    /// in a snapshot taken earlier was interrupted by a restart, never merely finishing.
    fn running_batches(&self) -> std::collections::HashSet<(String, String)> {
        self.inner.batch_jobs.0.lock().keys().cloned().collect()
    }

    /// A stored job as clients see it: RUNNING only while a task of this process runs it.
    fn batch_view(
        running: &std::collections::HashSet<(String, String)>,
        job: StoredBatchJob,
    ) -> Result<DescribeBatchOperationResponse> {
        let mut r = DescribeBatchOperationResponse::decode(job.data.as_slice())
            .map_err(|e| Error::Internal(format!("corrupt batch job: {e}")))?;
        if r.state == State::Running as i32 && !running.contains(&(job.namespace_id, job.job_id)) {
            // Interrupted by a restart: it will not go on.
            r.state = State::Failed as i32;
        }
        Ok(r)
    }

    pub async fn describe_batch(
        &self,
        req: DescribeBatchOperationRequest,
    ) -> Result<DescribeBatchOperationResponse> {
        let ns = self.namespace(&req.namespace)?;
        if req.job_id.is_empty() {
            return Err(Error::InvalidArgument(
                "JobId is not set on request.".into(),
            ));
        }
        let running = self.running_batches();
        let s = self.inner.store.clone();
        let (ns_id, job_id) = (ns.id.clone(), req.job_id.clone());
        let job = tokio::task::spawn_blocking(move || s.get_batch_job(&ns_id, &job_id))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
            .ok_or_else(|| not_found(&req.job_id))?;
        Self::batch_view(&running, job)
    }

    pub async fn list_batches(
        &self,
        req: ListBatchOperationsRequest,
    ) -> Result<ListBatchOperationsResponse> {
        let ns = self.namespace(&req.namespace)?;
        let size = if req.page_size <= 0 {
            PAGE
        } else {
            req.page_size.min(PAGE)
        } as usize;
        let after = if req.next_page_token.is_empty() {
            None
        } else {
            let t = String::from_utf8(req.next_page_token.clone()).ok();
            let parsed = t.as_deref().and_then(|t| {
                let (time, id) = t.split_once(':')?;
                Some((time.parse::<i64>().ok()?, id.to_string()))
            });
            Some(parsed.ok_or_else(|| Error::InvalidArgument("Invalid NextPageToken.".into()))?)
        };
        let running = self.running_batches();
        let s = self.inner.store.clone();
        let ns_id = ns.id.clone();
        let jobs = tokio::task::spawn_blocking(move || s.list_batch_jobs(&ns_id, size, after))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let next_page_token = match jobs.last() {
            Some(j) if jobs.len() == size => format!("{}:{}", j.start_time, j.job_id).into_bytes(),
            _ => Vec::new(),
        };
        let mut operation_info = Vec::new();
        for j in jobs {
            let r = Self::batch_view(&running, j)?;
            operation_info.push(BatchOperationInfo {
                job_id: r.job_id,
                state: r.state,
                start_time: r.start_time,
                close_time: r.close_time,
                operation_type: r.operation_type,
            });
        }
        Ok(ListBatchOperationsResponse {
            operation_info,
            next_page_token,
        })
    }

    /// Stops a running job after the execution it is working on.
    pub async fn stop_batch(&self, req: StopBatchOperationRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        if req.job_id.is_empty() {
            return Err(Error::InvalidArgument(
                "JobId is not set on request.".into(),
            ));
        }
        let flag = self
            .inner
            .batch_jobs
            .0
            .lock()
            .get(&(ns.id.clone(), req.job_id.clone()))
            .cloned();
        match flag {
            Some(f) => {
                f.store(true, Ordering::SeqCst);
                Ok(())
            }
            None => {
                // Known but finished (or interrupted): nothing to stop.
                self.describe_batch(DescribeBatchOperationRequest {
                    namespace: req.namespace,
                    job_id: req.job_id,
                })
                .await?;
                Err(Error::NotFound(
                    "workflow execution already completed".into(),
                ))
            }
        }
    }
}
