//! Closing a run: close bookkeeping, retries, cron and continue-as-new runs, the workflow
//! timeout and termination.

use std::time::Duration;

use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{Payloads, WorkflowType};
use perdure_proto::api::enums::v1::{
    ContinueAsNewInitiator, RetryState, TimeoutType, WorkflowExecutionStatus as Status,
};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;

use crate::clock::convert::{dur, from_ts, nz, pdur, ts};
use crate::retry;

use super::{Effect, StartParams, TimerKind, Tx, normal_queue, start_run, timeout_failure};

impl Tx<'_> {
    /// The retry decision for a failed or timed-out run.
    fn workflow_retry(&self, failure: Option<&Failure>) -> Result<Duration, RetryState> {
        let Some(p) = self.state.retry_policy.clone() else {
            return Err(RetryState::RetryPolicyNotSet);
        };
        let p = retry::with_defaults(Some(p));
        let exp = self.state.execution_expiration.as_ref().map(from_ts);
        retry::next_delay(&p, self.state.attempt, failure, self.now, exp)
    }

    /// After a failure or timeout: a retry if the retry policy allows one, else the next run of a
    /// cron schedule. Returns the retry state for the close event and the new run's id (or "").
    pub(super) fn retry_or_cron(&mut self, failure: Option<&Failure>) -> (RetryState, String) {
        match self.workflow_retry(failure) {
            Ok(delay) => {
                let run_id = uuid::Uuid::new_v4().to_string();
                self.spawn_retry_run(&run_id, delay, failure.cloned());
                (RetryState::InProgress, run_id)
            }
            Err(state) => match self.cron_backoff() {
                Some(delay) => {
                    let run_id = uuid::Uuid::new_v4().to_string();
                    let last = self.state.last_completion_result.clone();
                    self.spawn_next_run(&run_id, delay, failure.cloned(), last);
                    (state, run_id)
                }
                None => (state, String::new()),
            },
        }
    }

    /// The wait before the next run of a cron workflow closing now, unless the chain must end (no
    /// schedule, or the next run would start after the execution timeout).
    pub(super) fn cron_backoff(&self) -> Option<Duration> {
        if self.state.cron_schedule.is_empty() {
            return None;
        }
        let delay = crate::cron::Schedule::parse(&self.state.cron_schedule)
            .ok()?
            .backoff(self.now)?;
        match self.state.execution_expiration.as_ref().map(from_ts) {
            Some(exp) if self.now + delay >= exp => None,
            _ => Some(delay),
        }
    }

    /// Starts the next attempt of a run whose retry policy allows another.
    fn spawn_retry_run(&mut self, run_id: &str, delay: Duration, failure: Option<Failure>) {
        let last = self.state.last_completion_result.clone();
        let attempt = self.state.attempt + 1;
        let initiator = ContinueAsNewInitiator::Retry;
        self.spawn_run_after(run_id, delay, failure, (initiator, attempt), last);
    }

    /// Starts the next run of a cron chain (attempt 1).
    pub(super) fn spawn_next_run(
        &mut self,
        run_id: &str,
        delay: Duration,
        failure: Option<Failure>,
        last_completion_result: Option<Payloads>,
    ) {
        let initiator = ContinueAsNewInitiator::CronSchedule;
        self.spawn_run_after(
            run_id,
            delay,
            failure,
            (initiator, 1),
            last_completion_result,
        );
    }

    /// A new run of this workflow with the same parameters, started after `delay`.
    fn spawn_run_after(
        &mut self,
        run_id: &str,
        delay: Duration,
        failure: Option<Failure>,
        (initiator, attempt): (ContinueAsNewInitiator, i32),
        last_completion_result: Option<Payloads>,
    ) {
        let state = &*self.state;
        let p = StartParams {
            namespace: state.namespace.clone(),
            namespace_id: state.namespace_id.clone(),
            workflow_id: state.workflow_id.clone(),
            run_id: run_id.to_string(),
            workflow_type: state.workflow_type.clone(),
            task_queue: state.task_queue.clone(),
            input: state.input.clone(),
            header: state.header.clone(),
            run_timeout: dur(&state.run_timeout),
            execution_timeout: dur(&state.execution_timeout),
            task_timeout: dur(&state.task_timeout),
            retry_policy: state.retry_policy.clone(),
            cron_schedule: state.cron_schedule.clone(),
            memo: state.memo.clone(),
            search_attributes: state.search_attributes.clone(),
            identity: state.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            parent: state.parent.clone(),
            root_workflow_id: state.root_workflow_id.clone(),
            root_run_id: state.root_run_id.clone(),
            first_execution_run_id: state.first_execution_run_id.clone(),
            attempt,
            initiator: initiator as i32,
            last_completion_result,
            continued_execution_run_id: state.run_id.clone(),
            continued_failure: failure,
            backoff: delay,
            execution_expiration: state.execution_expiration.as_ref().map(from_ts),
            priority: state.priority.clone(),
            ..Default::default()
        };
        let run = start_run(p, self.now);
        self.new_run = Some(run);
    }

    pub(super) fn continue_as_new(
        &mut self,
        c: ContinueAsNewWorkflowExecutionCommandAttributes,
        wtc: i64,
    ) {
        let run_id = uuid::Uuid::new_v4().to_string();
        let state = &*self.state;
        let workflow_type = c
            .workflow_type
            .as_ref()
            .filter(|t| !t.name.is_empty())
            .map(|t| t.name.clone())
            .unwrap_or_else(|| state.workflow_type.clone());
        let task_queue = c
            .task_queue
            .as_ref()
            .filter(|q| !q.name.is_empty())
            .map(|q| q.name.clone())
            .unwrap_or_else(|| state.task_queue.clone());
        let run_timeout = Some(dur(&c.workflow_run_timeout))
            .filter(|d| !d.is_zero())
            .unwrap_or(dur(&state.run_timeout));
        let task_timeout = Some(dur(&c.workflow_task_timeout))
            .filter(|d| !d.is_zero())
            .unwrap_or(dur(&state.task_timeout));
        // Worker versioning, as Temporal carries it over: a pinned override always (when the new
        // run stays on the task queue), the pinned version itself unless the command asks the
        // new run to start on the current version (AUTO_UPGRADE).
        let same_queue = task_queue == state.task_queue;
        let upgrade = c.initial_versioning_behavior
            == perdure_proto::api::enums::v1::ContinueAsNewVersioningBehavior::AutoUpgrade as i32;
        let versioning_override = state.versioning_override.clone().filter(|o| {
            same_queue
                && matches!(
                    o.r#override,
                    Some(
                        perdure_proto::api::workflow::v1::versioning_override::Override::Pinned(_)
                    )
                )
        });
        let inherited_pinned_version = (same_queue
            && !upgrade
            && state.versioning_behavior
                == perdure_proto::api::enums::v1::VersioningBehavior::Pinned as i32)
            .then(|| state.deployment_version.clone())
            .flatten();
        let p = StartParams {
            namespace: state.namespace.clone(),
            namespace_id: state.namespace_id.clone(),
            workflow_id: state.workflow_id.clone(),
            run_id: run_id.clone(),
            workflow_type: workflow_type.clone(),
            task_queue: task_queue.clone(),
            input: c.input.clone(),
            header: c.header.clone().or_else(|| state.header.clone()),
            run_timeout,
            execution_timeout: dur(&state.execution_timeout),
            task_timeout,
            retry_policy: c
                .retry_policy
                .clone()
                .or_else(|| state.retry_policy.clone()),
            cron_schedule: state.cron_schedule.clone(),
            memo: c.memo.clone().or_else(|| state.memo.clone()),
            search_attributes: c
                .search_attributes
                .clone()
                .or_else(|| state.search_attributes.clone()),
            identity: state.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            parent: state.parent.clone(),
            root_workflow_id: state.root_workflow_id.clone(),
            root_run_id: state.root_run_id.clone(),
            first_execution_run_id: state.first_execution_run_id.clone(),
            attempt: 1,
            initiator: ContinueAsNewInitiator::Workflow as i32,
            continued_execution_run_id: state.run_id.clone(),
            continued_failure: c.failure.clone(),
            last_completion_result: c.last_completion_result.clone(),
            backoff: dur(&c.backoff_start_interval),
            execution_expiration: state.execution_expiration.as_ref().map(from_ts),
            priority: state.priority.clone(),
            versioning_override,
            inherited_pinned_version,
            ..Default::default()
        };
        self.append(A::WorkflowExecutionContinuedAsNewEventAttributes(
            WorkflowExecutionContinuedAsNewEventAttributes {
                new_execution_run_id: run_id.clone(),
                workflow_type: Some(WorkflowType {
                    name: workflow_type,
                }),
                task_queue: Some(normal_queue(&task_queue)),
                input: c.input,
                workflow_run_timeout: nz(run_timeout),
                workflow_task_timeout: Some(pdur(task_timeout)),
                workflow_task_completed_event_id: wtc,
                backoff_start_interval: c.backoff_start_interval,
                initiator: ContinueAsNewInitiator::Workflow as i32,
                failure: c.failure,
                last_completion_result: c.last_completion_result,
                header: c.header,
                memo: c.memo,
                search_attributes: c.search_attributes,
                ..Default::default()
            },
        ));
        self.new_run = Some(start_run(p, self.now));
        self.state.new_execution_run_id = run_id;
        self.close(Status::ContinuedAsNew);
    }

    /// Bookkeeping after a close event was appended.
    pub(super) fn close(&mut self, status: Status) {
        self.state.status = status as i32;
        self.state.close_time = Some(ts(self.now));
        self.state.close_event_id = self.state.next_event_id - 1;
        self.state.wft = None;
        self.state.activities.clear();
        self.state.timers.clear();
        self.state.external_requests.clear();
        self.state.first_wft_backoff_until = None;
        let children = std::mem::take(&mut self.state.children);
        let children: Vec<_> = children
            .into_iter()
            .filter(|c| !c.run_id.is_empty())
            .collect();
        if !children.is_empty() {
            self.effects.push(Effect::ParentClosePolicy(children));
        }
        if self.state.parent.is_some() && self.new_run.is_none() {
            self.effects.push(Effect::NotifyParent);
        }
        if !self.state.updates.is_empty() {
            self.effects.push(Effect::UpdatesChanged);
        }
        self.effects.push(Effect::Closed);
    }

    pub(super) fn arm_workflow_timeout(&mut self) {
        let deadline = [&self.state.run_expiration, &self.state.execution_expiration]
            .into_iter()
            .flatten()
            .map(from_ts)
            .min();
        if let Some(at) = deadline {
            self.effects.push(Effect::Timer {
                at,
                kind: TimerKind::Workflow,
            });
        }
    }

    /// The start backoff ended: schedule the first workflow task.
    pub fn start_backoff_fired(&mut self) -> bool {
        match &self.state.first_wft_backoff_until {
            Some(t) if from_ts(t) <= self.now && self.is_running() => {
                self.state.first_wft_backoff_until = None;
                self.schedule_wft();
                true
            }
            _ => false,
        }
    }

    /// The run or execution timeout fired.
    pub fn workflow_timeout(&mut self) -> bool {
        if !self.is_running() {
            return false;
        }
        let deadline = [&self.state.run_expiration, &self.state.execution_expiration]
            .into_iter()
            .flatten()
            .map(from_ts)
            .min();
        match deadline {
            Some(d) if d <= self.now => {}
            _ => return false,
        }
        self.state.wft = None;
        self.flush_buffer();
        let failure = timeout_failure("workflow", TimeoutType::StartToClose, None, None);
        let (retry_state, new_run_id) = match self.retry_or_cron(Some(&failure)) {
            (RetryState::RetryPolicyNotSet, id) => (RetryState::Timeout, id),
            other => other,
        };
        self.append(A::WorkflowExecutionTimedOutEventAttributes(
            WorkflowExecutionTimedOutEventAttributes {
                retry_state: retry_state as i32,
                new_execution_run_id: new_run_id.clone(),
            },
        ));
        self.state.new_execution_run_id = new_run_id;
        self.close(Status::TimedOut);
        true
    }

    /// Terminates the run.
    pub fn terminate(&mut self, reason: &str, details: Option<Payloads>, identity: &str) {
        self.state.wft = None;
        self.flush_buffer();
        self.append(A::WorkflowExecutionTerminatedEventAttributes(
            WorkflowExecutionTerminatedEventAttributes {
                reason: reason.to_string(),
                details,
                identity: identity.to_string(),
            },
        ));
        self.close(Status::Terminated);
    }
}
