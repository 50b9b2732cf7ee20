//! Starting runs: StartWorkflowExecution, SignalWithStartWorkflowExecution, the request-id
//! dedup and id reuse/conflict policies every start goes through, and cron schedules.

use perdure_proto::api::common::v1::Payloads;
use perdure_proto::api::enums::v1::{
    WorkflowExecutionStatus as Status, WorkflowIdConflictPolicy as Conflict,
    WorkflowIdReusePolicy as Reuse,
};
use perdure_proto::api::workflowservice::v1::*;

use super::Engine;
use crate::clock::convert::dur;
use crate::error::{Error, Result};
use crate::info::type_search_attributes;
use crate::matching::RunKey;
use crate::mutable::{SignalParams, StartParams, start_run};

/// Result of a start.
#[derive(Debug, Clone)]
pub struct StartOutcome {
    pub run_id: String,
    pub started: bool,
}

/// A start request in normalised form (Start, SignalWithStart and child starts share it).
pub(crate) struct StartSpec {
    pub params: StartParams,
    pub reuse: Reuse,
    pub conflict: Conflict,
}

impl Engine {
    fn check_request_id(&self, request_id: &str) -> Result<()> {
        self.limits()
            .check_id("RequestId", request_id)
            .map_err(Error::InvalidArgument)
    }

    pub(super) fn start_params_common(
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
    pub(super) fn fill_start(
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
    pub(super) fn apply_cron(&self, p: &mut StartParams) -> Result<()> {
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
}
