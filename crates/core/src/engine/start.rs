//! Starting runs: `StartRequest`, what StartWorkflowExecution (and so update-with-start),
//! SignalWithStartWorkflowExecution and child starts carry, with its one validation into
//! `StartParams` (cron schedules included); and the request-id dedup and id reuse/conflict
//! policies every start goes through.

use perdure_proto::api::common::v1::{
    Header, Memo, Payloads, Priority, RetryPolicy, SearchAttributes, WorkflowType,
};
use perdure_proto::api::enums::v1::{
    WorkflowExecutionStatus as Status, WorkflowIdConflictPolicy as Conflict,
    WorkflowIdReusePolicy as Reuse,
};
use perdure_proto::api::history::v1::StartChildWorkflowExecutionInitiatedEventAttributes;
use perdure_proto::api::sdk::v1::UserMetadata;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use perdure_proto::prost_types;

use super::{Engine, Namespace};
use crate::clock::convert::dur;
use crate::error::{Error, Result};
use crate::info::type_search_attributes;
use crate::matching::RunKey;
use crate::mutable::{Effect, NewRun, SignalParams, StartParams, StartedTask, Tx, start_run};
use crate::state::{ExecutionState, ParentInfo};

/// Result of a start.
#[derive(Debug, Clone)]
pub struct StartOutcome {
    pub run_id: String,
    pub started: bool,
    /// Eager start: the new run's first workflow task, started in the start's own commit.
    pub eager_task: Option<StartedTask>,
}

/// A validated start and the id policies that decide it (every kind of start ends here).
pub(crate) struct StartSpec {
    pub params: StartParams,
    pub reuse: Reuse,
    pub conflict: Conflict,
    /// Eager start: start the new run's first workflow task for this identity in the same
    /// commit.
    pub eager: Option<String>,
}

/// What every start carries, taken from its request: StartWorkflowExecution (which
/// update-with-start goes through too), SignalWithStartWorkflowExecution, or a parent's
/// StartChildWorkflowExecutionInitiated event. `Engine::start_params` validates it and turns it
/// into the parameters of the new run.
pub(crate) struct StartRequest {
    pub workflow_id: String,
    pub workflow_type: Option<WorkflowType>,
    pub task_queue: Option<TaskQueue>,
    pub input: Option<Payloads>,
    pub execution_timeout: Option<prost_types::Duration>,
    pub run_timeout: Option<prost_types::Duration>,
    pub task_timeout: Option<prost_types::Duration>,
    pub retry_policy: Option<RetryPolicy>,
    pub memo: Option<Memo>,
    pub search_attributes: Option<SearchAttributes>,
    pub header: Option<Header>,
    pub start_delay: Option<prost_types::Duration>,
    pub cron_schedule: String,
    /// A client's request id (checked against the id length limit; empty: one is made up), or
    /// the one a child start derives from its parent.
    pub request_id: String,
    pub identity: String,
    pub priority: Option<Priority>,
    /// The id reuse policy recorded on the new run.
    pub reuse_policy: i32,
    /// Set for a child start.
    pub child_of: Option<ChildOf>,
    /// Summary and details for the run.
    pub user_metadata: Option<UserMetadata>,
    /// A client's versioning override.
    pub versioning_override: Option<perdure_proto::api::workflow::v1::VersioningOverride>,
    /// A child of a pinned parent on the parent's task queue starts on the parent's version.
    pub inherited_pinned_version:
        Option<perdure_proto::api::deployment::v1::WorkerDeploymentVersion>,
}

/// The parent side of a child start.
pub(crate) struct ChildOf {
    pub parent: ParentInfo,
    pub root_workflow_id: String,
    pub root_run_id: String,
    pub parent_close_policy: i32,
}

/// `From` a request type whose start fields have the names StartWorkflowExecution gives them
/// (StartWorkflowExecution itself, and the start part of SignalWithStartWorkflowExecution, whose
/// signal fields are not part of it).
macro_rules! start_request_from {
    ($($request:ty),*) => {$(
        impl From<$request> for StartRequest {
            fn from(r: $request) -> Self {
                StartRequest {
                    workflow_id: r.workflow_id,
                    workflow_type: r.workflow_type,
                    task_queue: r.task_queue,
                    input: r.input,
                    execution_timeout: r.workflow_execution_timeout,
                    run_timeout: r.workflow_run_timeout,
                    task_timeout: r.workflow_task_timeout,
                    retry_policy: r.retry_policy,
                    memo: r.memo,
                    search_attributes: r.search_attributes,
                    header: r.header,
                    start_delay: r.workflow_start_delay,
                    cron_schedule: r.cron_schedule,
                    request_id: r.request_id,
                    identity: r.identity,
                    priority: r.priority,
                    reuse_policy: r.workflow_id_reuse_policy,
                    child_of: None,
                    user_metadata: r.user_metadata,
                    versioning_override: r.versioning_override,
                    inherited_pinned_version: None,
                }
            }
        }
    )*};
}

start_request_from!(
    StartWorkflowExecutionRequest,
    SignalWithStartWorkflowExecutionRequest
);

impl StartRequest {
    /// The start of the child that `parent` initiated with event `initiated` (`attrs`). Its
    /// request id is derived from the parent, it runs under the parent's identity, and it has no
    /// start delay.
    pub(crate) fn child(
        attrs: StartChildWorkflowExecutionInitiatedEventAttributes,
        parent: &ExecutionState,
        initiated: i64,
        user_metadata: Option<UserMetadata>,
    ) -> Self {
        // A child of a pinned parent on the parent's task queue starts on the parent's version.
        let child_queue = attrs
            .task_queue
            .as_ref()
            .map(|q| q.name.as_str())
            .unwrap_or("");
        let inherited_pinned_version = ((child_queue.is_empty()
            || child_queue == parent.task_queue)
            && parent.versioning_behavior
                == perdure_proto::api::enums::v1::VersioningBehavior::Pinned as i32)
            .then(|| parent.deployment_version.clone())
            .flatten();
        StartRequest {
            workflow_id: attrs.workflow_id,
            workflow_type: attrs.workflow_type,
            task_queue: attrs.task_queue,
            input: attrs.input,
            execution_timeout: attrs.workflow_execution_timeout,
            run_timeout: attrs.workflow_run_timeout,
            task_timeout: attrs.workflow_task_timeout,
            retry_policy: attrs.retry_policy,
            memo: attrs.memo,
            search_attributes: attrs.search_attributes,
            header: attrs.header,
            start_delay: None,
            cron_schedule: attrs.cron_schedule,
            request_id: format!("{}:{}", parent.run_id, initiated),
            identity: parent.identity.clone(),
            priority: attrs.priority,
            // A child's run does not record its reuse policy; `start_child` applies it to the
            // start decision.
            reuse_policy: Reuse::Unspecified as i32,
            child_of: Some(ChildOf {
                parent: ParentInfo {
                    namespace: parent.namespace.clone(),
                    namespace_id: parent.namespace_id.clone(),
                    workflow_id: parent.workflow_id.clone(),
                    run_id: parent.run_id.clone(),
                    initiated_event_id: initiated,
                },
                root_workflow_id: parent.root_workflow_id.clone(),
                root_run_id: parent.root_run_id.clone(),
                parent_close_policy: attrs.parent_close_policy,
            }),
            user_metadata,
            versioning_override: None,
            inherited_pinned_version,
        }
    }
}

/// The reuse and conflict policy pairs Temporal refuses, with its messages: terminating a running
/// run is the conflict policy's job once one is given, and a duplicate cannot be both rejected
/// and allowed to terminate the existing run.
fn check_policy_pair(reuse: Reuse, conflict: Conflict) -> Result<()> {
    if reuse == Reuse::TerminateIfRunning && conflict != Conflict::Unspecified {
        return Err(Error::InvalidArgument(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING cannot be used together with a WorkflowIDConflictPolicy".into(),
        ));
    }
    if reuse == Reuse::RejectDuplicate && conflict == Conflict::TerminateExisting {
        return Err(Error::InvalidArgument(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE cannot be used together with WorkflowIdConflictPolicy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING".into(),
        ));
    }
    Ok(())
}

impl Engine {
    /// Validates a start request and turns it into the parameters of a new run. Checks, in
    /// order: workflow id, type and task queue; timeouts and start delay; input size; retry
    /// policy; search attributes; memo; a client's request id; the cron schedule (which also
    /// delays the first workflow task until its first tick).
    pub(super) fn start_params(&self, ns: &Namespace, r: StartRequest) -> Result<StartParams> {
        let limits = self.limits();
        if r.workflow_id.is_empty() {
            return Err(Error::InvalidArgument(
                "WorkflowId is not set on request.".into(),
            ));
        }
        let limit = limits.id_length;
        if r.workflow_id.len() > limit {
            return Err(Error::InvalidArgument(format!(
                "WorkflowId exceeds maximum allowed length ({}/{limit})",
                r.workflow_id.len()
            )));
        }
        let wt = r.workflow_type.map(|t| t.name).unwrap_or_default();
        if wt.is_empty() {
            return Err(Error::InvalidArgument(
                "WorkflowType is not set on request.".into(),
            ));
        }
        limits
            .check_id("WorkflowType", &wt)
            .map_err(Error::InvalidArgument)?;
        let tq = r.task_queue.map(|t| t.name).unwrap_or_default();
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
        for (name, d) in [
            ("WorkflowExecutionTimeout", &r.execution_timeout),
            ("WorkflowRunTimeout", &r.run_timeout),
            ("WorkflowTaskTimeout", &r.task_timeout),
            ("WorkflowStartDelay", &r.start_delay),
        ] {
            if let Some(d) = d
                && (d.seconds < 0 || d.nanos < 0)
            {
                return Err(Error::InvalidArgument(format!("Invalid {name}.")));
            }
        }
        self.check_blobs(r.input.as_ref())?;
        if let Some(retry) = &r.retry_policy {
            crate::retry::normalize(Some(retry.clone())).map_err(Error::InvalidArgument)?;
        }
        limits
            .check_search_attributes(r.search_attributes.as_ref())
            .map_err(Error::InvalidArgument)?;
        let mut sa = r.search_attributes;
        if let Some(sa) = sa.as_mut() {
            type_search_attributes(sa, &ns.name, &|n| ns.sa_type(n))
                .map_err(Error::InvalidArgument)?;
        }
        limits
            .check_memo(r.memo.as_ref())
            .map_err(Error::InvalidArgument)?;
        let request_id = if r.child_of.is_some() {
            r.request_id
        } else {
            limits
                .check_id("RequestId", &r.request_id)
                .map_err(Error::InvalidArgument)?;
            if r.request_id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                r.request_id
            }
        };
        let (parent, root_workflow_id, root_run_id, parent_close_policy) = match r.child_of {
            Some(c) => (
                Some(c.parent),
                c.root_workflow_id,
                c.root_run_id,
                c.parent_close_policy,
            ),
            None => Default::default(),
        };
        // Temporal keeps timeouts and delays of at most 100 years.
        let capped = |d| dur(d).min(crate::limits::MAX_WORKFLOW_TIMEOUT);
        let mut p = StartParams {
            namespace: ns.name.clone(),
            namespace_id: ns.id.clone(),
            workflow_id: r.workflow_id,
            run_id: uuid::Uuid::now_v7().to_string(),
            workflow_type: wt,
            task_queue: tq,
            input: r.input,
            header: r.header,
            execution_timeout: capped(&r.execution_timeout),
            run_timeout: capped(&r.run_timeout),
            task_timeout: capped(&r.task_timeout),
            retry_policy: r.retry_policy,
            cron_schedule: r.cron_schedule,
            memo: r.memo,
            search_attributes: sa,
            identity: r.identity,
            request_id,
            parent,
            root_workflow_id,
            root_run_id,
            attempt: 1,
            backoff: capped(&r.start_delay),
            priority: r.priority,
            reuse_policy: r.reuse_policy,
            parent_close_policy,
            user_metadata: r.user_metadata,
            versioning_override: r
                .versioning_override
                .as_ref()
                .map(crate::mutable::normalize_override)
                .transpose()
                .map_err(Error::InvalidArgument)?,
            inherited_pinned_version: r.inherited_pinned_version,
            ..Default::default()
        };
        self.apply_cron(&mut p)?;
        Ok(p)
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
        ns.require_registered()?;
        let conflict =
            Conflict::try_from(req.workflow_id_conflict_policy).unwrap_or(Conflict::Unspecified);
        let (eager, identity) = (req.request_eager_execution, req.identity.clone());
        let p = self.start_params(&ns, req.into())?;
        let reuse = Reuse::try_from(p.reuse_policy).unwrap_or(Reuse::Unspecified);
        check_policy_pair(reuse, conflict)?;
        self.start_with_policies(StartSpec {
            params: p,
            reuse,
            conflict,
            eager: eager.then_some(identity),
        })
        .await
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
            eager,
        } = spec;
        let _guard = self.id_lock(&p.namespace_id, &p.workflow_id).lock().await;
        if let Some(cur) = self.current_run(&p.namespace_id, &p.workflow_id).await? {
            let key = RunKey {
                namespace_id: p.namespace_id.clone(),
                run_id: cur.clone(),
            };
            // Signal-with-start signals a running run unless its policies replace that run.
            if let Some(signal) = p
                .signal
                .clone()
                .filter(|_| conflict == Conflict::UseExisting)
            {
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
                        eager_task: None,
                    });
                }
            }
            let entry = self.entry(&key).await?;
            let (status, start_request_id) = {
                let d = entry.data.lock().await;
                (d.state.status, d.state.start_request_id.clone())
            };
            if start_request_id == p.request_id {
                return Ok(StartOutcome {
                    run_id: cur,
                    started: true,
                    eager_task: None,
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
                        eager_task: None,
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
        let now = self.inner.clock.now();
        let mut run = start_run(p, now);
        let eager_task = eager.and_then(|identity| {
            start_eagerly(&mut run, now, &self.inner.config.limits, &identity)
        });
        self.create_run(run).await?;
        Ok(StartOutcome {
            run_id,
            started: true,
            eager_task,
        })
    }

    pub async fn signal_with_start(
        &self,
        mut req: SignalWithStartWorkflowExecutionRequest,
    ) -> Result<StartOutcome> {
        let ns = self.namespace(&req.namespace)?;
        ns.require_registered()?;
        if req.signal_name.is_empty() {
            return Err(Error::InvalidArgument(
                "SignalName is not set on request.".into(),
            ));
        }
        self.check_blobs(req.signal_input.as_ref())?;
        let name = std::mem::take(&mut req.signal_name);
        let input = req.signal_input.take();
        let conflict =
            Conflict::try_from(req.workflow_id_conflict_policy).unwrap_or(Conflict::Unspecified);
        let mut p = self.start_params(&ns, req.into())?;
        let reuse = Reuse::try_from(p.reuse_policy).unwrap_or(Reuse::Unspecified);
        check_policy_pair(reuse, conflict)?;
        let conflict = match conflict {
            Conflict::Fail => {
                return Err(Error::InvalidArgument(
                    "Invalid WorkflowIDConflictPolicy: WORKFLOW_ID_CONFLICT_POLICY_FAIL is not supported for this operation.".into(),
                ));
            }
            // The legacy reuse policy still replaces a running run.
            Conflict::Unspecified if reuse == Reuse::TerminateIfRunning => Conflict::Unspecified,
            Conflict::Unspecified => Conflict::UseExisting,
            c => c,
        };
        p.signal = Some(SignalParams {
            name,
            input,
            header: p.header.clone(),
            identity: p.identity.clone(),
            request_id: p.request_id.clone(),
            external: None,
        });
        self.start_with_policies(StartSpec {
            params: p,
            reuse,
            conflict,
            eager: None,
        })
        .await
    }
}

/// Eager start: the new run's first workflow task is started for `identity` in the run's own
/// first commit, as Temporal does, so the caller's local worker gets it in the start response
/// and no poller can take it first. `None` when the run has no task yet (a start delay or a
/// cron backoff).
fn start_eagerly(
    run: &mut NewRun,
    now: std::time::SystemTime,
    limits: &crate::limits::Limits,
    identity: &str,
) -> Option<StartedTask> {
    run.state.wft.as_ref()?;
    let mut tx = Tx::with_limits(&mut run.state, now, limits);
    let started = tx.start_wft(&uuid::Uuid::new_v4().to_string(), identity);
    let Tx {
        events, effects, ..
    } = tx;
    run.events.extend(events);
    run.effects
        .retain(|e| !matches!(e, Effect::DispatchWorkflowTask));
    run.effects.extend(effects);
    Some(started)
}
