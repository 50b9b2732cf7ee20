//! The schedule state machine, as functions of the stored record and an injected `now`: which
//! times are due (catch-up window, pause, remaining actions), the buffer of starts and the
//! overlap policies, trigger/backfill/pause patches, updates, what Describe and List show. The
//! shell (`engine::schedules`) loads a record, calls these, starts the workflows it is told to and
//! stores the record again.

use std::time::{Duration, SystemTime};

use perdure_proto::api::common::v1::{
    Memo, Payload, Payloads, SearchAttributes, WorkflowExecution,
};
use perdure_proto::api::enums::v1::{
    ScheduleOverlapPolicy as Overlap, TaskQueueKind, WorkflowExecutionStatus as Status,
    WorkflowIdReusePolicy as Reuse,
};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::schedule::v1::{
    BackfillRequest, Schedule, ScheduleActionResult, ScheduleInfo, ScheduleListInfo, SchedulePatch,
    SchedulePolicies, ScheduleSpec, ScheduleState, schedule_action,
};
use perdure_proto::api::workflowservice::v1::{
    DescribeScheduleResponse, StartWorkflowExecutionRequest,
};
use perdure_proto::prost_types::Timestamp;

use super::spec::CompiledSpec;
use crate::clock::convert::{dur, from_ts, pdur, ts};

/// Catch-up window when the schedule sets none (Temporal's default, one year).
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);
/// The shortest catch-up window; shorter ones are raised to it.
pub const MIN_CATCHUP_WINDOW: Duration = Duration::from_secs(10);
/// Recent actions kept (Describe), and shown by List.
pub const RECENT_ACTIONS: usize = 10;
pub const RECENT_ACTIONS_LIST: usize = 5;
/// Future action times shown by Describe and by List.
pub const FUTURE_ACTIONS: usize = 10;
pub const FUTURE_ACTIONS_LIST: usize = 5;
/// Buffered starts kept at most; more are dropped (`buffer_dropped`).
pub const MAX_BUFFER: usize = 1000;
/// How often a schedule with buffered starts checks whether its running workflow closed.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A schedule as stored: the schedule (spec in canonical form), its info and internal state.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScheduleRecord {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub namespace_id: String,
    #[prost(string, tag = "3")]
    pub schedule_id: String,
    #[prost(message, optional, tag = "4")]
    pub schedule: Option<Schedule>,
    #[prost(message, optional, tag = "5")]
    pub info: Option<ScheduleInfo>,
    #[prost(message, optional, tag = "6")]
    pub memo: Option<Memo>,
    #[prost(message, optional, tag = "7")]
    pub search_attributes: Option<SearchAttributes>,
    #[prost(int64, tag = "8")]
    pub conflict_token: i64,
    /// Times up to here have been looked at.
    #[prost(message, optional, tag = "9")]
    pub last_processed: Option<Timestamp>,
    #[prost(message, repeated, tag = "10")]
    pub buffer: Vec<BufferedStart>,
    #[prost(message, optional, tag = "11")]
    pub last_completion_result: Option<Payloads>,
    #[prost(message, optional, tag = "12")]
    pub continued_failure: Option<Failure>,
    /// The create request's id: a retried create answers as the first did.
    #[prost(string, tag = "13")]
    pub request_id: String,
}

/// A start waiting to be taken (due, triggered or backfilled).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BufferedStart {
    #[prost(message, optional, tag = "1")]
    pub nominal: Option<Timestamp>,
    /// Nominal time plus jitter (what recent actions call the schedule time).
    #[prost(message, optional, tag = "2")]
    pub actual: Option<Timestamp>,
    /// Unspecified: the schedule's policy at the time it is taken.
    #[prost(int32, tag = "3")]
    pub overlap_policy: i32,
    /// Triggered or backfilled: taken even when paused or out of actions.
    #[prost(bool, tag = "4")]
    pub manual: bool,
}

/// What to do now with the buffer.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Starts to make now, in order.
    pub starts: Vec<BufferedStart>,
    /// Cancel / terminate the running workflows first (the start waits in the buffer).
    pub cancel: Vec<WorkflowExecution>,
    pub terminate: Vec<WorkflowExecution>,
}

/// Fills what Temporal fills in on create and update: the overlap policy (SKIP), the catch-up
/// window (one year; at least 10 s), the task queue kind, an empty state.
pub fn with_defaults(mut s: Schedule, canonical_spec: ScheduleSpec) -> Schedule {
    s.spec = Some(canonical_spec);
    let p = s.policies.get_or_insert_with(SchedulePolicies::default);
    if p.overlap_policy == Overlap::Unspecified as i32 {
        p.overlap_policy = Overlap::Skip as i32;
    }
    let cw = match &p.catchup_window {
        None => DEFAULT_CATCHUP_WINDOW,
        Some(_) => dur(&p.catchup_window).max(MIN_CATCHUP_WINDOW),
    };
    p.catchup_window = Some(pdur(cw));
    s.state.get_or_insert_with(ScheduleState::default);
    if let Some(a) = s.action.as_mut()
        && let Some(schedule_action::Action::StartWorkflow(w)) = a.action.as_mut()
        && let Some(q) = w.task_queue.as_mut()
        && q.kind == TaskQueueKind::Unspecified as i32
    {
        q.kind = TaskQueueKind::Normal as i32;
    }
    s
}

fn t(x: &Option<Timestamp>) -> SystemTime {
    x.as_ref().map(from_ts).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The RFC 3339 UTC form with second precision (`2026-11-26T22:00:00Z`).
pub fn rfc3339_seconds(x: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(x)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn json_payload(value: &str, kind: &str) -> Payload {
    Payload {
        metadata: [
            ("encoding".to_string(), b"json/plain".to_vec()),
            ("type".to_string(), kind.as_bytes().to_vec()),
        ]
        .into_iter()
        .collect(),
        data: serde_json::to_vec(value).unwrap_or_default(),
        ..Default::default()
    }
}

/// A schedule record with its compiled spec.
pub struct Machine {
    pub rec: ScheduleRecord,
    spec: CompiledSpec,
}

impl Machine {
    /// Compiles the record's spec (it was checked when stored).
    pub fn new(rec: ScheduleRecord) -> Result<Machine, String> {
        let spec = CompiledSpec::new(
            &rec.schedule
                .as_ref()
                .and_then(|s| s.spec.clone())
                .unwrap_or_default(),
            &format!("{}-{}", rec.namespace_id, rec.schedule_id),
        )?;
        Ok(Machine { rec, spec })
    }

    /// A new schedule created at `now`.
    pub fn create(mut rec: ScheduleRecord, now: SystemTime) -> Result<Machine, String> {
        rec.conflict_token = 1;
        rec.last_processed = Some(ts(now));
        rec.info = Some(ScheduleInfo {
            create_time: Some(ts(now)),
            ..Default::default()
        });
        Machine::new(rec)
    }

    pub fn spec(&self) -> &CompiledSpec {
        &self.spec
    }

    fn schedule(&self) -> &Schedule {
        self.rec.schedule.as_ref().expect("a stored schedule")
    }

    fn state(&self) -> ScheduleState {
        self.schedule().state.clone().unwrap_or_default()
    }

    fn state_mut(&mut self) -> &mut ScheduleState {
        self.rec
            .schedule
            .get_or_insert_with(Default::default)
            .state
            .get_or_insert_with(Default::default)
    }

    pub fn info(&self) -> &ScheduleInfo {
        self.rec.info.as_ref().expect("a stored schedule has info")
    }

    fn info_mut(&mut self) -> &mut ScheduleInfo {
        self.rec.info.get_or_insert_with(Default::default)
    }

    fn policies(&self) -> SchedulePolicies {
        self.schedule().policies.unwrap_or_default()
    }

    pub fn catchup_window(&self) -> Duration {
        let p = self.policies();
        match p.catchup_window {
            None => DEFAULT_CATCHUP_WINDOW,
            Some(_) => dur(&p.catchup_window).max(MIN_CATCHUP_WINDOW),
        }
    }

    /// A start's policy: its own, else the schedule's, else SKIP.
    pub fn resolve(&self, policy: i32) -> Overlap {
        let p = if policy == Overlap::Unspecified as i32 {
            self.policies().overlap_policy
        } else {
            policy
        };
        match Overlap::try_from(p) {
            Ok(Overlap::Unspecified) | Err(_) => Overlap::Skip,
            Ok(p) => p,
        }
    }

    /// Whether a (scheduled, not manual) action may be taken: not paused, actions left.
    fn can_take(&mut self, manual: bool, decrement: bool) -> bool {
        if manual {
            return true;
        }
        let st = self.state();
        if st.paused {
            return false;
        }
        if !st.limited_actions {
            return true;
        }
        if st.remaining_actions > 0 {
            if decrement {
                self.state_mut().remaining_actions -= 1;
                self.rec.conflict_token += 1;
            }
            return true;
        }
        false
    }

    fn add_start(&mut self, nominal: SystemTime, actual: SystemTime, policy: i32, manual: bool) {
        if self.rec.buffer.len() >= MAX_BUFFER {
            self.info_mut().buffer_dropped += 1;
            return;
        }
        self.rec.buffer.push(BufferedStart {
            nominal: Some(ts(nominal)),
            actual: Some(ts(actual)),
            overlap_policy: policy,
            manual,
        });
    }

    /// Buffers the spec's times in `(start, end]`; a scheduled (not manual) time older than the
    /// catch-up window at `end` is counted as missed instead.
    fn process_range(&mut self, start: SystemTime, end: SystemTime, policy: i32, manual: bool) {
        if !self.can_take(manual, false) {
            return;
        }
        let window = self.catchup_window();
        let update_time = self.info().update_time;
        let mut at = start;
        while let Some(n) = self.spec.next(at) {
            if n.next > end {
                break;
            }
            at = n.next;
            if !manual && update_time.as_ref().is_some_and(|u| from_ts(u) > n.next) {
                continue;
            }
            if !manual && end.duration_since(n.next).unwrap_or_default() > window {
                self.info_mut().missed_catchup_window += 1;
                continue;
            }
            self.add_start(n.nominal, n.next, policy, manual);
            if self.rec.buffer.len() >= MAX_BUFFER {
                break;
            }
        }
    }

    /// Takes in the times that came due since the last call (after a restart too).
    pub fn process_time(&mut self, now: SystemTime) {
        let from = t(&self.rec.last_processed);
        let now = now.max(from);
        self.process_range(from, now, Overlap::Unspecified as i32, false);
        self.rec.last_processed = Some(ts(now));
    }

    /// Applies a patch: trigger now, backfills (start inclusive), pause/unpause with a note.
    pub fn patch(&mut self, p: &SchedulePatch, now: SystemTime) {
        if let Some(trigger) = &p.trigger_immediately {
            let at = trigger.scheduled_time.as_ref().map(from_ts).unwrap_or(now);
            self.add_start(at, at, trigger.overlap_policy, true);
        }
        for b in &p.backfill_request {
            self.backfill(b);
        }
        if !p.pause.is_empty() {
            let st = self.state_mut();
            st.paused = true;
            st.notes = p.pause.clone();
            self.rec.conflict_token += 1;
        }
        if !p.unpause.is_empty() {
            let st = self.state_mut();
            st.paused = false;
            st.notes = p.unpause.clone();
            self.rec.conflict_token += 1;
        }
    }

    fn backfill(&mut self, b: &BackfillRequest) {
        let start = t(&b.start_time)
            .checked_sub(Duration::from_millis(1))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.process_range(start, t(&b.end_time), b.overlap_policy, true);
    }

    /// Replaces the schedule (already canonical, with defaults) at `now`: times before `now`
    /// are no longer taken.
    pub fn update(&mut self, schedule: Schedule, now: SystemTime) -> Result<(), String> {
        let rec = ScheduleRecord {
            schedule: Some(schedule),
            ..self.rec.clone()
        };
        let mut m = Machine::new(rec)?;
        m.info_mut().update_time = Some(ts(now));
        m.rec.conflict_token += 1;
        *self = m;
        Ok(())
    }

    /// Whether a workflow this schedule started is still counted as running.
    pub fn running(&self) -> &[WorkflowExecution] {
        &self.info().running_workflows
    }

    /// A workflow the schedule started has closed: it stops counting as running, its status
    /// shows in the recent actions, its result or failure goes to the next run, and a failure
    /// pauses the schedule when the policy says so.
    pub fn workflow_closed(
        &mut self,
        workflow_id: &str,
        status: Status,
        result: Option<Payloads>,
        failure: Option<Failure>,
    ) {
        let info = self.info_mut();
        info.running_workflows
            .retain(|w| w.workflow_id != workflow_id);
        for a in info.recent_actions.iter_mut() {
            if a.start_workflow_result
                .as_ref()
                .is_some_and(|r| r.workflow_id == workflow_id)
            {
                a.start_workflow_status = status as i32;
            }
        }
        let failed = matches!(status, Status::Failed | Status::TimedOut);
        if self.policies().pause_on_failure && failed && !self.state().paused {
            let notes = if status == Status::Failed {
                format!(
                    "paused due to workflow failure: {workflow_id}: {}",
                    failure.as_ref().map(|f| f.message.as_str()).unwrap_or("")
                )
            } else {
                format!("paused due to workflow timeout: {workflow_id}")
            };
            let st = self.state_mut();
            st.paused = true;
            st.notes = notes;
            self.rec.conflict_token += 1;
        }
        if result.is_some() {
            self.rec.last_completion_result = result;
            self.rec.continued_failure = None;
        } else if failure.is_some() {
            self.rec.continued_failure = failure;
        }
    }

    /// Applies the overlap policies to the buffer: what to start now, what stays buffered,
    /// whether the running workflow must be cancelled or terminated first. Starts that may not
    /// be taken (paused, no actions left) are dropped.
    pub fn decide(&mut self) -> Decision {
        let has_action = matches!(
            self.schedule()
                .action
                .as_ref()
                .and_then(|a| a.action.as_ref()),
            Some(schedule_action::Action::StartWorkflow(_))
        );
        let buffer = std::mem::take(&mut self.rec.buffer);
        if !has_action || buffer.is_empty() {
            return Decision::default();
        }
        let running = !self.running().is_empty();
        let mut overlapping = Vec::new();
        let mut single: Option<BufferedStart> = None;
        let mut rest = Vec::new();
        let (mut cancel, mut terminate) = (false, false);
        let mut skipped = 0;
        for s in buffer {
            let p = self.resolve(s.overlap_policy);
            if p == Overlap::AllowAll {
                overlapping.push(s);
                continue;
            }
            if !running && single.is_none() {
                single = Some(s);
                continue;
            }
            match p {
                Overlap::BufferOne => {
                    if rest.is_empty() {
                        rest.push(s)
                    } else {
                        skipped += 1
                    }
                }
                Overlap::BufferAll => rest.push(s),
                Overlap::CancelOther | Overlap::TerminateOther => {
                    if running {
                        if p == Overlap::CancelOther {
                            cancel = true
                        } else {
                            terminate = true
                        }
                        rest.push(s);
                    } else {
                        single = Some(s);
                    }
                }
                _ => skipped += 1,
            }
        }
        self.info_mut().overlap_skipped += skipped;
        self.rec.buffer = rest;
        if cancel || terminate {
            overlapping.clear();
        }
        let mut starts = Vec::new();
        for s in overlapping.into_iter().chain(single) {
            if self.can_take(s.manual, true) {
                starts.push(s);
            }
        }
        let running = self.running().to_vec();
        Decision {
            starts,
            cancel: if cancel && !terminate {
                running.clone()
            } else {
                Vec::new()
            },
            terminate: if terminate { running } else { Vec::new() },
        }
    }

    /// The workflow id a start gets: the action's id and the nominal time.
    pub fn workflow_id(&self, s: &BufferedStart) -> String {
        let base = match self
            .schedule()
            .action
            .as_ref()
            .and_then(|a| a.action.as_ref())
        {
            Some(schedule_action::Action::StartWorkflow(w)) => w.workflow_id.clone(),
            _ => String::new(),
        };
        format!("{base}-{}", rfc3339_seconds(t(&s.nominal)))
    }

    /// The start request for a buffered start; the request id is derived from the start, so a
    /// start repeated after a crash finds the run it already made.
    pub fn start_request(&self, s: &BufferedStart) -> StartWorkflowExecutionRequest {
        let Some(schedule_action::Action::StartWorkflow(w)) = self
            .schedule()
            .action
            .as_ref()
            .and_then(|a| a.action.clone())
        else {
            return Default::default();
        };
        let nominal = t(&s.nominal);
        let second = rfc3339_seconds(nominal);
        let mut sa = w.search_attributes.clone().unwrap_or_default();
        sa.indexed_fields.insert(
            "TemporalScheduledStartTime".into(),
            json_payload(&second, "Datetime"),
        );
        sa.indexed_fields.insert(
            "TemporalScheduledById".into(),
            json_payload(&self.rec.schedule_id, "Keyword"),
        );
        let allow_all = self.resolve(s.overlap_policy) == Overlap::AllowAll;
        let (last_completion_result, continued_failure) = if allow_all {
            (None, None)
        } else {
            (
                self.rec.last_completion_result.clone(),
                self.rec.continued_failure.clone(),
            )
        };
        let nanos = |x: &Option<Timestamp>| crate::clock::convert::opt_ts_nanos(x);
        StartWorkflowExecutionRequest {
            namespace: self.rec.namespace.clone(),
            workflow_id: self.workflow_id(s),
            workflow_type: w.workflow_type,
            task_queue: w.task_queue,
            input: w.input,
            workflow_execution_timeout: w.workflow_execution_timeout,
            workflow_run_timeout: w.workflow_run_timeout,
            workflow_task_timeout: w.workflow_task_timeout,
            identity: format!(
                "temporal-scheduler-{}-{}",
                self.rec.namespace, self.rec.schedule_id
            ),
            request_id: format!(
                "schedule:{}:{}:{}:{}",
                self.rec.schedule_id,
                nanos(&s.nominal),
                nanos(&s.actual),
                s.manual
            ),
            workflow_id_reuse_policy: if s.manual {
                Reuse::AllowDuplicate as i32
            } else {
                Reuse::RejectDuplicate as i32
            },
            retry_policy: w.retry_policy,
            memo: w.memo,
            search_attributes: Some(sa),
            header: w.header,
            last_completion_result,
            continued_failure,
            user_metadata: w.user_metadata,
            priority: w.priority,
            ..Default::default()
        }
    }

    /// Records a start that was made (`run_id`) at `now`.
    pub fn started(&mut self, s: &BufferedStart, run_id: String, now: SystemTime) {
        let allow_all = self.resolve(s.overlap_policy) == Overlap::AllowAll;
        let exec = WorkflowExecution {
            workflow_id: self.workflow_id(s),
            run_id,
        };
        let info = self.info_mut();
        info.action_count += 1;
        info.recent_actions.push(ScheduleActionResult {
            schedule_time: s.actual,
            actual_time: Some(ts(now)),
            start_workflow_result: Some(exec.clone()),
            start_workflow_status: Status::Running as i32,
        });
        let n = info.recent_actions.len();
        if n > RECENT_ACTIONS {
            info.recent_actions.drain(..n - RECENT_ACTIONS);
        }
        if !allow_all {
            info.running_workflows.push(exec);
        }
    }

    /// When the shell must look at this schedule again: at the next time of the spec (when
    /// actions may be taken), or soon while buffered starts wait for a running workflow.
    pub fn next_wakeup(&mut self, now: SystemTime) -> Option<SystemTime> {
        let mut wake = None;
        if !self.rec.buffer.is_empty() {
            wake = Some(now + WATCH_INTERVAL);
        }
        if self.can_take(false, false)
            && let Some(n) = self.spec.next(t(&self.rec.last_processed))
        {
            wake = Some(wake.map_or(n.next, |w: SystemTime| w.min(n.next)));
        }
        wake
    }

    /// The next `n` action times: after the last processed time and the last update, no more
    /// than the remaining actions.
    pub fn future_action_times(&self, n: usize) -> Vec<Timestamp> {
        let st = self.state();
        let n = if st.limited_actions {
            n.min(st.remaining_actions.max(0) as usize)
        } else {
            n
        };
        let update = self.info().update_time.as_ref().map(from_ts);
        let mut out = Vec::new();
        let mut at = t(&self.rec.last_processed);
        while out.len() < n {
            let Some(x) = self.spec.next(at) else { break };
            at = x.next;
            if update.is_some_and(|u| u > x.next) {
                continue;
            }
            out.push(ts(x.next));
        }
        out
    }

    pub fn describe(&self) -> DescribeScheduleResponse {
        let mut info = self.info().clone();
        info.future_action_times = self.future_action_times(FUTURE_ACTIONS);
        info.buffer_size = self.rec.buffer.len() as i64;
        DescribeScheduleResponse {
            schedule: self.rec.schedule.clone(),
            info: Some(info),
            memo: self.rec.memo.clone(),
            search_attributes: self.rec.search_attributes.clone(),
            conflict_token: self.rec.conflict_token.to_be_bytes().to_vec(),
        }
    }

    pub fn list_info(&self) -> ScheduleListInfo {
        let s = self.schedule();
        let mut spec = s.spec.clone().unwrap_or_default();
        spec.timezone_data.clear();
        let recent = &self.info().recent_actions;
        let st = self.state();
        ScheduleListInfo {
            spec: Some(spec),
            workflow_type: match s.action.as_ref().and_then(|a| a.action.as_ref()) {
                Some(schedule_action::Action::StartWorkflow(w)) => w.workflow_type.clone(),
                None => None,
            },
            notes: st.notes,
            paused: st.paused,
            recent_actions: recent[recent.len().saturating_sub(RECENT_ACTIONS_LIST)..].to_vec(),
            future_action_times: self.future_action_times(FUTURE_ACTIONS_LIST),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perdure_proto::api::common::v1::WorkflowType;
    use perdure_proto::api::schedule::v1::{
        IntervalSpec, ScheduleAction, TriggerImmediatelyRequest,
    };
    use perdure_proto::api::taskqueue::v1::TaskQueue;
    use perdure_proto::api::workflow::v1::NewWorkflowExecutionInfo;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        // 2026-01-01T00:00:00Z + s seconds
        UNIX_EPOCH + Duration::from_secs(1_767_225_600 + s)
    }

    fn machine(every: i64, policy: Overlap, state: ScheduleState) -> Machine {
        let spec = ScheduleSpec {
            interval: vec![IntervalSpec {
                interval: Some(pdur(Duration::from_secs(every as u64))),
                phase: None,
            }],
            ..Default::default()
        };
        let canonical = super::super::spec::canonicalize(&spec).unwrap();
        let schedule = with_defaults(
            Schedule {
                spec: Some(spec),
                action: Some(ScheduleAction {
                    action: Some(schedule_action::Action::StartWorkflow(
                        NewWorkflowExecutionInfo {
                            workflow_id: "wf".into(),
                            workflow_type: Some(WorkflowType { name: "T".into() }),
                            task_queue: Some(TaskQueue {
                                name: "q".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    )),
                }),
                policies: Some(SchedulePolicies {
                    overlap_policy: policy as i32,
                    catchup_window: Some(pdur(Duration::from_secs(60))),
                    ..Default::default()
                }),
                state: Some(state),
            },
            canonical,
        );
        Machine::create(
            ScheduleRecord {
                namespace: "default".into(),
                namespace_id: "ns".into(),
                schedule_id: "s".into(),
                schedule: Some(schedule),
                ..Default::default()
            },
            at(0),
        )
        .unwrap()
    }

    /// One wake-up of the shell with nothing closing: process, decide, start.
    fn wake(m: &mut Machine, now: SystemTime) -> Decision {
        m.process_time(now);
        let d = m.decide();
        for (i, s) in d.starts.iter().enumerate() {
            m.started(s, format!("run-{i}"), now);
        }
        d
    }

    fn ids(d: &Decision, m: &Machine) -> Vec<String> {
        d.starts.iter().map(|s| m.workflow_id(s)).collect()
    }

    #[test]
    fn defaults_are_filled_in() {
        let m = machine(10, Overlap::Unspecified, Default::default());
        let p = m.policies();
        assert_eq!(p.overlap_policy, Overlap::Skip as i32);
        assert_eq!(dur(&p.catchup_window), Duration::from_secs(60));
        let s = with_defaults(Schedule::default(), ScheduleSpec::default());
        assert_eq!(
            dur(&s.policies.unwrap().catchup_window),
            DEFAULT_CATCHUP_WINDOW
        );
    }

    #[test]
    fn due_times_start_workflows_with_the_nominal_time_in_the_id() {
        let mut m = machine(10, Overlap::AllowAll, Default::default());
        assert_eq!(m.next_wakeup(at(0)), Some(at(10)));
        let d = wake(&mut m, at(10));
        assert_eq!(ids(&d, &m), ["wf-2026-01-01T00:00:10Z"]);
        let req = m.start_request(&d.starts[0]);
        let sa = req.search_attributes.unwrap().indexed_fields;
        assert_eq!(
            sa["TemporalScheduledStartTime"].data,
            b"\"2026-01-01T00:00:10Z\""
        );
        assert_eq!(sa["TemporalScheduledById"].data, b"\"s\"");
        assert_eq!(req.workflow_id_reuse_policy, Reuse::RejectDuplicate as i32);
        assert_eq!(m.info().action_count, 1);
        assert_eq!(
            m.future_action_times(2),
            [ts(at(20)), ts(at(30))],
            "future times follow the last processed time"
        );
    }

    #[test]
    fn catch_up_after_downtime_within_and_beyond_the_window() {
        // Catch-up window 60 s: after 100 s down, the times 10..30 are missed, 40..100 taken.
        let mut m = machine(10, Overlap::AllowAll, Default::default());
        let d = wake(&mut m, at(100));
        assert_eq!(d.starts.len(), 7);
        assert_eq!(m.info().missed_catchup_window, 3);
        assert_eq!(m.info().action_count, 7);
    }

    #[test]
    fn skip_drops_times_while_a_run_is_open() {
        let mut m = machine(10, Overlap::Skip, Default::default());
        assert_eq!(wake(&mut m, at(10)).starts.len(), 1);
        assert_eq!(m.running().len(), 1);
        assert!(wake(&mut m, at(20)).starts.is_empty());
        assert_eq!(m.info().overlap_skipped, 1);
        m.workflow_closed(
            "wf-2026-01-01T00:00:10Z",
            Status::Completed,
            Some(Payloads::default()),
            None,
        );
        assert_eq!(
            m.info().recent_actions[0].start_workflow_status,
            Status::Completed as i32
        );
        let d = wake(&mut m, at(30));
        assert_eq!(ids(&d, &m), ["wf-2026-01-01T00:00:30Z"]);
        assert!(
            m.start_request(&d.starts[0])
                .last_completion_result
                .is_some(),
            "the last result goes to the next run"
        );
    }

    #[test]
    fn buffer_one_keeps_one_and_buffer_all_keeps_all() {
        let mut m = machine(10, Overlap::BufferOne, Default::default());
        wake(&mut m, at(10));
        assert!(wake(&mut m, at(40)).starts.is_empty());
        assert_eq!(m.rec.buffer.len(), 1);
        assert_eq!(m.info().overlap_skipped, 2);
        assert_eq!(
            m.next_wakeup(at(40)),
            Some(at(41)),
            "watches the running run"
        );
        m.workflow_closed("wf-2026-01-01T00:00:10Z", Status::Completed, None, None);
        let d = wake(&mut m, at(41));
        assert_eq!(ids(&d, &m), ["wf-2026-01-01T00:00:20Z"]);

        let mut m = machine(10, Overlap::BufferAll, Default::default());
        wake(&mut m, at(10));
        wake(&mut m, at(40));
        assert_eq!(m.rec.buffer.len(), 3);
        m.workflow_closed("wf-2026-01-01T00:00:10Z", Status::Completed, None, None);
        let d = wake(&mut m, at(41));
        assert_eq!(ids(&d, &m), ["wf-2026-01-01T00:00:20Z"]);
        assert_eq!(m.rec.buffer.len(), 2);
    }

    #[test]
    fn cancel_and_terminate_other_stop_the_running_run_first() {
        for (policy, cancel) in [
            (Overlap::CancelOther, true),
            (Overlap::TerminateOther, false),
        ] {
            let mut m = machine(10, policy, Default::default());
            wake(&mut m, at(10));
            let d = wake(&mut m, at(20));
            assert!(d.starts.is_empty());
            let running = vec![WorkflowExecution {
                workflow_id: "wf-2026-01-01T00:00:10Z".into(),
                run_id: "run-0".into(),
            }];
            if cancel {
                assert_eq!((d.cancel, d.terminate), (running, vec![]));
            } else {
                assert_eq!((d.cancel, d.terminate), (vec![], running));
            }
            m.workflow_closed("wf-2026-01-01T00:00:10Z", Status::Canceled, None, None);
            let d = wake(&mut m, at(21));
            assert_eq!(ids(&d, &m), ["wf-2026-01-01T00:00:20Z"]);
        }
    }

    #[test]
    fn allow_all_runs_are_not_tracked_and_get_no_last_result() {
        let mut m = machine(10, Overlap::AllowAll, Default::default());
        m.rec.last_completion_result = Some(Payloads::default());
        let d = wake(&mut m, at(20));
        assert_eq!(d.starts.len(), 2);
        assert!(m.running().is_empty());
        assert!(
            m.start_request(&d.starts[0])
                .last_completion_result
                .is_none()
        );
    }

    #[test]
    fn limited_actions_run_out() {
        let mut m = machine(
            10,
            Overlap::AllowAll,
            ScheduleState {
                limited_actions: true,
                remaining_actions: 2,
                ..Default::default()
            },
        );
        assert_eq!(m.future_action_times(10).len(), 2);
        assert_eq!(wake(&mut m, at(30)).starts.len(), 2);
        assert_eq!(m.state().remaining_actions, 0);
        assert!(m.future_action_times(10).is_empty());
        assert_eq!(m.next_wakeup(at(30)), None);
        assert!(wake(&mut m, at(60)).starts.is_empty());
        // A trigger is taken anyway.
        m.patch(
            &SchedulePatch {
                trigger_immediately: Some(TriggerImmediatelyRequest::default()),
                ..Default::default()
            },
            at(61),
        );
        assert_eq!(wake(&mut m, at(61)).starts.len(), 1);
    }

    #[test]
    fn paused_schedules_take_nothing_but_manual_starts() {
        let mut m = machine(10, Overlap::AllowAll, Default::default());
        let token = m.rec.conflict_token;
        m.patch(
            &SchedulePatch {
                pause: "stop".into(),
                ..Default::default()
            },
            at(1),
        );
        assert_eq!(m.rec.conflict_token, token + 1);
        assert_eq!(m.state().notes, "stop");
        assert_eq!(m.next_wakeup(at(1)), None);
        assert!(wake(&mut m, at(30)).starts.is_empty());
        assert_eq!(m.info().missed_catchup_window, 0);
        // Backfill is inclusive of its start and taken while paused.
        m.patch(
            &SchedulePatch {
                backfill_request: vec![BackfillRequest {
                    start_time: Some(ts(at(100))),
                    end_time: Some(ts(at(120))),
                    overlap_policy: 0,
                }],
                ..Default::default()
            },
            at(31),
        );
        let d = wake(&mut m, at(31));
        assert_eq!(
            ids(&d, &m),
            [
                "wf-2026-01-01T00:01:40Z",
                "wf-2026-01-01T00:01:50Z",
                "wf-2026-01-01T00:02:00Z"
            ]
        );
        m.patch(
            &SchedulePatch {
                unpause: "go".into(),
                ..Default::default()
            },
            at(32),
        );
        assert!(!m.state().paused);
        // Times during the pause are not taken afterwards.
        assert_eq!(m.next_wakeup(at(32)), Some(at(40)));
    }

    #[test]
    fn pause_on_failure() {
        let mut m = machine(10, Overlap::Skip, Default::default());
        m.rec
            .schedule
            .as_mut()
            .unwrap()
            .policies
            .as_mut()
            .unwrap()
            .pause_on_failure = true;
        wake(&mut m, at(10));
        m.workflow_closed(
            "wf-2026-01-01T00:00:10Z",
            Status::Failed,
            None,
            Some(Failure {
                message: "boom".into(),
                ..Default::default()
            }),
        );
        assert!(m.state().paused);
        assert_eq!(
            m.state().notes,
            "paused due to workflow failure: wf-2026-01-01T00:00:10Z: boom"
        );
        assert!(wake(&mut m, at(20)).starts.is_empty());
        assert!(m.rec.continued_failure.is_some());
    }

    #[test]
    fn update_drops_times_before_it() {
        let mut m = machine(10, Overlap::AllowAll, Default::default());
        let s = m.rec.schedule.clone().unwrap();
        m.update(s, at(25)).unwrap();
        assert_eq!(m.rec.conflict_token, 2);
        let d = wake(&mut m, at(30));
        assert_eq!(ids(&d, &m), ["wf-2026-01-01T00:00:30Z"]);
    }
}
