//! The functional core of the engine: a [`Tx`] applies one input (a command batch from a worker,
//! a signal, an activity outcome, a timer firing, ...) to a run's [`ExecutionState`] and yields
//! the new history events and the [`Effect`]s the shell must carry out after the commit. No IO,
//! no wall clock: time comes in as `now`.

use std::time::{Duration, SystemTime};

use perdure_proto::api::command::v1::command::Attributes as CA;
use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{
    ActivityType, Payloads, SearchAttributes, WorkflowExecution, WorkflowType,
};
use perdure_proto::api::enums::v1::{
    ContinueAsNewInitiator, IndexedValueType, ParentClosePolicy, RetryState, TaskQueueKind,
    TimeoutType, UpdateWorkflowExecutionLifecycleStage as Stage, WorkflowExecutionStatus as Status,
    WorkflowTaskFailedCause as Cause,
};
use perdure_proto::api::failure::v1::failure::FailureInfo;
use perdure_proto::api::failure::v1::{Failure, TimeoutFailureInfo};
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;
use perdure_proto::api::protocol::v1::Message;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::update::v1 as upd;
use perdure_proto::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest;
use prost::Message as _;

use crate::clock::convert::{dur, from_ts, nz, pdur, ts};
use crate::events::{PREVIOUS_EVENT, assign_ids, event_type};
use crate::retry;
use crate::state::*;

/// Default workflow task start-to-close timeout.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest workflow task timeout accepted.
pub const MAX_TASK_TIMEOUT: Duration = Duration::from_secs(120);
/// How many signal request ids are remembered for dedup.
const SIGNAL_DEDUP: usize = 100;

/// Durable timers the shell must arm. Each firing is re-validated against the state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// A user timer, by TimerStarted id.
    User(i64),
    /// An activity timeout for one attempt.
    Activity {
        scheduled_event_id: i64,
        attempt: i32,
        timeout: i32,
    },
    /// An activity retry becoming dispatchable.
    ActivityRetry {
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// Workflow task start-to-close or sticky schedule-to-start.
    WorkflowTask { dispatch_seq: i64, timeout: i32 },
    /// Run or execution timeout.
    Workflow,
    /// The end of `first_workflow_task_backoff`.
    StartBackoff,
}

/// What the shell does after the transition commits.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The run's workflow task (as in `state.wft`) must be put on its task queue.
    DispatchWorkflowTask,
    /// The activity's current attempt must be put on its task queue (now, or at its retry time).
    DispatchActivity {
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// Arm a timer.
    Timer { at: SystemTime, kind: TimerKind },
    /// Start the child workflow recorded under this initiated event.
    StartChild { initiated_event_id: i64 },
    /// Deliver the signal or cancel request recorded under this initiated event.
    External { initiated_event_id: i64 },
    /// Report this closed run to its parent.
    NotifyParent,
    /// Apply parent close policies to these children.
    ParentClosePolicy(Vec<ChildState>),
    /// Update waiters must re-read the update states.
    UpdatesChanged,
    /// The run closed.
    Closed,
}

/// A run created by this transition (continue-as-new, retry, cron), committed in the same batch.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub state: ExecutionState,
    pub events: Vec<HistoryEvent>,
    pub effects: Vec<Effect>,
}

/// A workflow task handed to a poller.
#[derive(Debug, Clone)]
pub struct StartedTask {
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    pub attempt: i32,
    /// Scheduled+Started events of a transient task, to append to the poll response.
    pub transient_events: Vec<HistoryEvent>,
    /// Update requests delivered with this task.
    pub messages: Vec<Message>,
}

/// Why a workflow task completion was refused (the WFT was failed; the state must still be
/// committed, then this error returned to the worker as INVALID_ARGUMENT).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected(pub String);

/// One transition of one run.
pub struct Tx<'a> {
    pub ms: &'a mut ExecutionState,
    pub now: SystemTime,
    /// Newly persisted events, with ids.
    pub events: Vec<HistoryEvent>,
    pub effects: Vec<Effect>,
    pub new_run: Option<NewRun>,
    /// The state changed and must be committed.
    pub changed: bool,
}

/// Everything needed to create a run.
#[derive(Debug, Clone, Default)]
pub struct StartParams {
    pub namespace: String,
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub input: Option<Payloads>,
    pub header: Option<perdure_proto::api::common::v1::Header>,
    pub run_timeout: Duration,
    pub execution_timeout: Duration,
    pub task_timeout: Duration,
    pub retry_policy: Option<perdure_proto::api::common::v1::RetryPolicy>,
    pub cron_schedule: String,
    pub memo: Option<perdure_proto::api::common::v1::Memo>,
    pub search_attributes: Option<SearchAttributes>,
    pub identity: String,
    pub request_id: String,
    pub parent: Option<ParentInfo>,
    pub root_workflow_id: String,
    pub root_run_id: String,
    pub first_execution_run_id: String,
    pub attempt: i32,
    pub initiator: i32,
    pub continued_execution_run_id: String,
    pub continued_failure: Option<Failure>,
    pub last_completion_result: Option<Payloads>,
    pub backoff: Duration,
    pub execution_expiration: Option<SystemTime>,
    pub priority: Option<perdure_proto::api::common::v1::Priority>,
    pub reuse_policy: i32,
    pub parent_close_policy: i32,
    /// Signal-with-start: the signal written right after the start event.
    pub signal: Option<SignalParams>,
    /// Extra fields of the start event (sdk user metadata is ignored).
    pub completion_callbacks: (),
}

/// A signal to apply to a run.
#[derive(Debug, Clone, Default)]
pub struct SignalParams {
    pub name: String,
    pub input: Option<Payloads>,
    pub header: Option<perdure_proto::api::common::v1::Header>,
    pub identity: String,
    pub request_id: String,
    pub external: Option<WorkflowExecution>,
}

/// Creates a run: its state, WorkflowExecutionStarted (+ signal), and the first workflow task
/// unless it is delayed by a backoff.
pub fn start_run(p: StartParams, now: SystemTime) -> NewRun {
    let task_timeout = if p.task_timeout.is_zero() {
        DEFAULT_TASK_TIMEOUT
    } else {
        p.task_timeout.min(MAX_TASK_TIMEOUT)
    };
    let mut run_timeout = p.run_timeout;
    if !p.execution_timeout.is_zero()
        && (run_timeout.is_zero() || run_timeout > p.execution_timeout)
    {
        run_timeout = p.execution_timeout;
    }
    let execution_expiration = p
        .execution_expiration
        .or_else(|| (!p.execution_timeout.is_zero()).then(|| now + p.execution_timeout));
    let first_execution_run_id = if p.first_execution_run_id.is_empty() {
        p.run_id.clone()
    } else {
        p.first_execution_run_id.clone()
    };
    let mut ms = ExecutionState {
        namespace_id: p.namespace_id.clone(),
        namespace: p.namespace.clone(),
        workflow_id: p.workflow_id.clone(),
        run_id: p.run_id.clone(),
        first_execution_run_id: first_execution_run_id.clone(),
        workflow_type: p.workflow_type.clone(),
        task_queue: p.task_queue.clone(),
        status: Status::Running as i32,
        next_event_id: 1,
        start_time: Some(ts(now)),
        execution_time: Some(ts(now + p.backoff)),
        run_timeout: nz(run_timeout),
        execution_timeout: nz(p.execution_timeout),
        task_timeout: Some(pdur(task_timeout)),
        execution_expiration: execution_expiration.map(ts),
        run_expiration: (!run_timeout.is_zero()).then(|| ts(now + p.backoff + run_timeout)),
        retry_policy: p.retry_policy.clone(),
        attempt: p.attempt.max(1),
        cron_schedule: p.cron_schedule.clone(),
        last_completion_result: p.last_completion_result.clone(),
        memo: p.memo.clone(),
        search_attributes: p.search_attributes.clone(),
        parent: p.parent.clone(),
        start_request_id: p.request_id.clone(),
        input: p.input.clone(),
        header: p.header.clone(),
        root_workflow_id: if p.root_workflow_id.is_empty() {
            p.workflow_id.clone()
        } else {
            p.root_workflow_id.clone()
        },
        root_run_id: if p.root_run_id.is_empty() {
            p.run_id.clone()
        } else {
            p.root_run_id.clone()
        },
        identity: p.identity.clone(),
        priority: p.priority.clone(),
        workflow_id_reuse_policy: p.reuse_policy,
        ..Default::default()
    };
    let mut tx = Tx::new(&mut ms, now);
    let parent = p.parent.as_ref();
    tx.append(A::WorkflowExecutionStartedEventAttributes(
        WorkflowExecutionStartedEventAttributes {
            workflow_type: Some(WorkflowType {
                name: p.workflow_type.clone(),
            }),
            parent_workflow_namespace: parent.map(|x| x.namespace.clone()).unwrap_or_default(),
            parent_workflow_namespace_id: parent
                .map(|x| x.namespace_id.clone())
                .unwrap_or_default(),
            parent_workflow_execution: parent.map(|x| WorkflowExecution {
                workflow_id: x.workflow_id.clone(),
                run_id: x.run_id.clone(),
            }),
            parent_initiated_event_id: parent.map(|x| x.initiated_event_id).unwrap_or_default(),
            task_queue: Some(normal_queue(&p.task_queue)),
            input: p.input.clone(),
            workflow_execution_timeout: nz(p.execution_timeout),
            workflow_run_timeout: nz(run_timeout),
            workflow_task_timeout: Some(pdur(task_timeout)),
            continued_execution_run_id: p.continued_execution_run_id.clone(),
            initiator: p.initiator,
            continued_failure: p.continued_failure.clone(),
            last_completion_result: p.last_completion_result.clone(),
            original_execution_run_id: p.run_id.clone(),
            identity: p.identity.clone(),
            first_execution_run_id,
            retry_policy: p.retry_policy.clone(),
            attempt: p.attempt.max(1),
            workflow_execution_expiration_time: execution_expiration.map(ts),
            cron_schedule: p.cron_schedule.clone(),
            first_workflow_task_backoff: nz(p.backoff),
            memo: p.memo.clone(),
            search_attributes: p.search_attributes.clone(),
            header: p.header.clone(),
            workflow_id: p.workflow_id.clone(),
            root_workflow_execution: Some(WorkflowExecution {
                workflow_id: tx.ms.root_workflow_id.clone(),
                run_id: tx.ms.root_run_id.clone(),
            }),
            priority: p.priority.clone(),
            ..Default::default()
        },
    ));
    if let Some(s) = p.signal {
        tx.signal(s);
    }
    if p.backoff.is_zero() {
        tx.schedule_wft();
    } else {
        let until = now + p.backoff;
        tx.ms.first_wft_backoff_until = Some(ts(until));
        tx.effects.push(Effect::Timer {
            at: until,
            kind: TimerKind::StartBackoff,
        });
    }
    tx.arm_workflow_timeout();
    let (events, effects) = (tx.events, tx.effects);
    NewRun {
        state: ms,
        events,
        effects,
    }
}

fn normal_queue(name: &str) -> TaskQueue {
    TaskQueue {
        name: name.to_string(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    }
}

/// The failure the server writes for a timeout.
pub fn timeout_failure(
    what: &str,
    tt: TimeoutType,
    details: Option<Payloads>,
    cause: Option<Failure>,
) -> Failure {
    let name = match tt {
        TimeoutType::StartToClose => "StartToClose",
        TimeoutType::ScheduleToStart => "ScheduleToStart",
        TimeoutType::ScheduleToClose => "ScheduleToClose",
        TimeoutType::Heartbeat => "Heartbeat",
        TimeoutType::Unspecified => "Unspecified",
    };
    Failure {
        message: format!("{what} {name} timeout"),
        source: "Server".into(),
        cause: cause.map(Box::new),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
            timeout_type: tt as i32,
            last_heartbeat_details: details,
        })),
        ..Default::default()
    }
}

fn is_closing(c: &Command) -> bool {
    matches!(
        c.attributes,
        Some(CA::CompleteWorkflowExecutionCommandAttributes(_))
            | Some(CA::FailWorkflowExecutionCommandAttributes(_))
            | Some(CA::CancelWorkflowExecutionCommandAttributes(_))
            | Some(CA::ContinueAsNewWorkflowExecutionCommandAttributes(_))
    )
}

/// Short camel-case cause name used in error messages (`BadSearchAttributes`).
pub fn cause_name(c: Cause) -> String {
    let s = c
        .as_str_name()
        .trim_start_matches("WORKFLOW_TASK_FAILED_CAUSE_");
    s.split('_')
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_string() + &cs.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

/// The ids of the messages placed by ProtocolMessage commands.
fn placed_message_ids(commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .filter_map(|c| match &c.attributes {
            Some(CA::ProtocolMessageCommandAttributes(p)) => Some(p.message_id.clone()),
            _ => None,
        })
        .collect()
}

/// The state of an update while a completion is validated, named as in Temporal's update
/// state machine (its messages name the state).
#[derive(Clone, Copy, PartialEq, Debug)]
enum UpdateSim {
    /// Admitted but not delivered with the completed task.
    Admitted,
    /// Delivered with the completed task.
    Sent,
    ProvisionallyAccepted,
    Accepted,
    ProvisionallyCompleted,
    Completed,
}

impl UpdateSim {
    fn name(self) -> &'static str {
        match self {
            UpdateSim::Admitted => "Admitted",
            UpdateSim::Sent => "Sent",
            UpdateSim::ProvisionallyAccepted => "ProvisionallyAccepted",
            UpdateSim::Accepted => "Accepted",
            UpdateSim::ProvisionallyCompleted => "ProvisionallyCompleted",
            UpdateSim::Completed => "Completed",
        }
    }
}

/// Applies the §5.2 normalisation to an activity command in place.
pub fn normalize_activity(
    a: &mut ScheduleActivityTaskCommandAttributes,
    run_timeout: Duration,
) -> Result<(), String> {
    if a.activity_id.is_empty() {
        return Err("ActivityId is not set on command.".into());
    }
    if a.activity_type.as_ref().is_none_or(|t| t.name.is_empty()) {
        return Err("ActivityType is not set on command.".into());
    }
    let mut s2c = dur(&a.schedule_to_close_timeout);
    let mut s2s = dur(&a.schedule_to_start_timeout);
    let mut st2c = dur(&a.start_to_close_timeout);
    let mut hb = dur(&a.heartbeat_timeout);
    if !s2c.is_zero() {
        s2s = if s2s.is_zero() { s2c } else { s2s.min(s2c) };
        st2c = if st2c.is_zero() { s2c } else { st2c.min(s2c) };
    } else if !st2c.is_zero() {
        s2c = run_timeout;
        if s2s.is_zero() {
            s2s = run_timeout;
        }
    } else {
        return Err(
            "A valid StartToCloseTimeout or ScheduleToCloseTimeout is not set on command.".into(),
        );
    }
    if !run_timeout.is_zero() {
        let cap = |d: Duration| {
            if d.is_zero() {
                run_timeout
            } else {
                d.min(run_timeout)
            }
        };
        s2c = cap(s2c);
        s2s = cap(s2s);
        st2c = cap(st2c);
    }
    hb = hb.min(st2c);
    let p = retry::with_defaults(a.retry_policy.take());
    retry::validate(&p)?;
    a.retry_policy = Some(p);
    a.schedule_to_close_timeout = Some(pdur(s2c));
    a.schedule_to_start_timeout = Some(pdur(s2s));
    a.start_to_close_timeout = Some(pdur(st2c));
    a.heartbeat_timeout = Some(pdur(hb));
    Ok(())
}

impl<'a> Tx<'a> {
    pub fn new(ms: &'a mut ExecutionState, now: SystemTime) -> Self {
        Tx {
            ms,
            now,
            events: Vec::new(),
            effects: Vec::new(),
            new_run: None,
            changed: false,
        }
    }

    pub fn is_running(&self) -> bool {
        self.ms.status == Status::Running as i32
    }

    fn make(&self, a: A) -> HistoryEvent {
        HistoryEvent {
            event_id: 0,
            event_time: Some(ts(self.now)),
            event_type: event_type(&a) as i32,
            attributes: Some(a),
            ..Default::default()
        }
    }

    /// Persists an event now and returns its id.
    pub fn append(&mut self, a: A) -> i64 {
        let mut e = self.make(a);
        e.event_id = self.ms.next_event_id;
        e.task_id = e.event_id;
        self.ms.next_event_id += 1;
        self.ms.history_size_bytes += e.encoded_len() as i64;
        self.events.push(e);
        self.changed = true;
        self.ms.next_event_id - 1
    }

    /// Persists an event, or buffers it while a workflow task is started. Returns its id, or
    /// [`PREVIOUS_EVENT`] when buffered.
    pub fn add(&mut self, a: A) -> i64 {
        if self.wft_started() {
            let e = self.make(a);
            self.ms.buffered_events.push(e);
            self.changed = true;
            PREVIOUS_EVENT
        } else {
            self.append(a)
        }
    }

    pub fn wft_started(&self) -> bool {
        self.ms
            .wft
            .as_ref()
            .is_some_and(|w| w.started_event_id != 0)
    }

    /// Writes the buffered events after everything else; returns how many there were.
    pub fn flush_buffer(&mut self) -> usize {
        let mut buf = std::mem::take(&mut self.ms.buffered_events);
        if buf.is_empty() {
            return 0;
        }
        let (next, child_started) = assign_ids(&mut buf, self.ms.next_event_id);
        self.ms.next_event_id = next;
        for (init, sid) in child_started {
            if let Some(c) = self
                .ms
                .children
                .iter_mut()
                .find(|c| c.initiated_event_id == init)
            {
                c.started_event_id = sid;
            }
        }
        for e in &mut buf {
            e.task_id = e.event_id;
            self.ms.history_size_bytes += e.encoded_len() as i64;
        }
        let n = buf.len();
        self.events.extend(buf);
        n
    }

    fn next_seq(&self) -> i64 {
        self.ms.state_transition_count + self.ms.next_event_id * 1_000_000
    }

    /// Schedules a workflow task (attempt 1, persisted) unless one is outstanding.
    pub fn schedule_wft(&mut self) {
        if !self.is_running() || self.ms.wft.is_some() || self.ms.first_wft_backoff_until.is_some()
        {
            return;
        }
        let sticky = !self.ms.sticky_queue.is_empty();
        let queue = if sticky {
            TaskQueue {
                name: self.ms.sticky_queue.clone(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: self.ms.task_queue.clone(),
            }
        } else {
            normal_queue(&self.ms.task_queue)
        };
        let scheduled = self.append(A::WorkflowTaskScheduledEventAttributes(
            WorkflowTaskScheduledEventAttributes {
                task_queue: Some(queue.clone()),
                start_to_close_timeout: self.ms.task_timeout,
                attempt: 1,
            },
        ));
        let seq = self.next_seq();
        self.ms.wft = Some(WorkflowTaskState {
            scheduled_event_id: scheduled,
            attempt: 1,
            scheduled_time: Some(ts(self.now)),
            original_scheduled_time: Some(ts(self.now)),
            task_queue: queue.name,
            sticky,
            dispatch_seq: seq,
            ..Default::default()
        });
        self.effects.push(Effect::DispatchWorkflowTask);
        if sticky {
            let to = dur(&self.ms.sticky_schedule_to_start);
            let to = if to.is_zero() {
                Duration::from_secs(5)
            } else {
                to
            };
            self.effects.push(Effect::Timer {
                at: self.now + to,
                kind: TimerKind::WorkflowTask {
                    dispatch_seq: seq,
                    timeout: TimeoutType::ScheduleToStart as i32,
                },
            });
        }
    }

    /// Schedules a retry of a failed workflow task. Attempt 1 is persisted on the normal queue;
    /// later attempts are transient.
    fn schedule_wft_attempt(&mut self, attempt: i32) {
        self.changed = true;
        self.ms.sticky_queue.clear();
        if attempt <= 1 {
            self.schedule_wft();
            return;
        }
        if !self.is_running() {
            return;
        }
        let seq = self.next_seq();
        self.ms.wft = Some(WorkflowTaskState {
            attempt,
            scheduled_time: Some(ts(self.now)),
            original_scheduled_time: Some(ts(self.now)),
            task_queue: self.ms.task_queue.clone(),
            transient: true,
            dispatch_seq: seq,
            ..Default::default()
        });
        self.effects.push(Effect::DispatchWorkflowTask);
    }

    /// Marks the scheduled workflow task started by a poller.
    pub fn start_wft(&mut self, request_id: &str, identity: &str) -> StartedTask {
        let now = self.now;
        let next = self.ms.next_event_id;
        let history_size = self.ms.history_size_bytes;
        let task_timeout = dur(&self.ms.task_timeout);
        let w = self
            .ms
            .wft
            .clone()
            .expect("start_wft without a scheduled task");
        let started_attrs = |scheduled: i64| {
            A::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
                scheduled_event_id: scheduled,
                identity: identity.to_string(),
                request_id: request_id.to_string(),
                history_size_bytes: history_size,
                ..Default::default()
            })
        };
        let (scheduled, started, transient_events) = if w.transient {
            let mut s = self.make(A::WorkflowTaskScheduledEventAttributes(
                WorkflowTaskScheduledEventAttributes {
                    task_queue: Some(normal_queue(&self.ms.task_queue)),
                    start_to_close_timeout: self.ms.task_timeout,
                    attempt: w.attempt,
                },
            ));
            s.event_id = next;
            s.task_id = next;
            s.event_time = w.scheduled_time;
            let mut st = self.make(started_attrs(next));
            st.event_id = next + 1;
            st.task_id = next + 1;
            (next, next + 1, vec![s, st])
        } else {
            let id = self.append(started_attrs(w.scheduled_event_id));
            (w.scheduled_event_id, id, vec![])
        };
        // Update requests go with the task, sequenced right before its started event.
        let mut messages = Vec::new();
        let mut delivered = Vec::new();
        for u in &self.ms.updates {
            if u.stage == Stage::Admitted as i32 {
                messages.push(Message {
                    id: format!("{}/request", u.update_id),
                    protocol_instance_id: u.update_id.clone(),
                    body: Some(perdure_proto::prost_types::Any {
                        type_url: "type.googleapis.com/temporal.api.update.v1.Request".into(),
                        value: u.request.clone(),
                    }),
                    sequencing_id: Some(
                        perdure_proto::api::protocol::v1::message::SequencingId::EventId(
                            started - 1,
                        ),
                    ),
                });
                delivered.push(u.update_id.clone());
            }
        }
        let seq = w.dispatch_seq;
        self.changed = true;
        let wm = self.ms.wft.as_mut().unwrap();
        wm.scheduled_event_id = scheduled;
        wm.started_event_id = started;
        wm.started_time = Some(ts(now));
        wm.request_id = request_id.to_string();
        wm.identity = identity.to_string();
        wm.delivered_updates = delivered;
        self.effects.push(Effect::Timer {
            at: now + task_timeout,
            kind: TimerKind::WorkflowTask {
                dispatch_seq: seq,
                timeout: TimeoutType::StartToClose as i32,
            },
        });
        StartedTask {
            scheduled_event_id: scheduled,
            started_event_id: started,
            attempt: w.attempt,
            transient_events,
            messages,
        }
    }

    /// Persists the Scheduled/Started events of a transient task that is being completed.
    fn persist_transient(&mut self) {
        let Some(w) = self.ms.wft.clone() else { return };
        if !w.transient {
            return;
        }
        let scheduled = self.append(A::WorkflowTaskScheduledEventAttributes(
            WorkflowTaskScheduledEventAttributes {
                task_queue: Some(normal_queue(&self.ms.task_queue)),
                start_to_close_timeout: self.ms.task_timeout,
                attempt: w.attempt,
            },
        ));
        if let Some(e) = self.events.last_mut() {
            e.event_time = w.scheduled_time;
        }
        let started = self.append(A::WorkflowTaskStartedEventAttributes(
            WorkflowTaskStartedEventAttributes {
                scheduled_event_id: scheduled,
                identity: w.identity.clone(),
                request_id: w.request_id.clone(),
                history_size_bytes: self.ms.history_size_bytes,
                ..Default::default()
            },
        ));
        if let Some(e) = self.events.last_mut() {
            e.event_time = w.started_time;
        }
        debug_assert_eq!(
            (scheduled, started),
            (w.scheduled_event_id, w.started_event_id)
        );
    }

    /// Fails the started workflow task and schedules its retry.
    pub fn fail_wft(&mut self, cause: Cause, failure: Option<Failure>, identity: &str) {
        let Some(w) = self.ms.wft.take() else { return };
        if !w.transient {
            self.append(A::WorkflowTaskFailedEventAttributes(
                WorkflowTaskFailedEventAttributes {
                    scheduled_event_id: w.scheduled_event_id,
                    started_event_id: w.started_event_id,
                    cause: cause as i32,
                    failure,
                    identity: identity.to_string(),
                    ..Default::default()
                },
            ));
        }
        self.flush_buffer();
        let attempt = if cause == Cause::UnhandledCommand || w.sticky {
            1
        } else {
            w.attempt + 1
        };
        self.schedule_wft_attempt(attempt);
    }

    /// A workflow task timer fired (`dispatch_seq` must still be current).
    pub fn wft_timeout(&mut self, dispatch_seq: i64, timeout: TimeoutType) -> bool {
        let Some(w) = self.ms.wft.clone() else {
            return false;
        };
        if w.dispatch_seq != dispatch_seq {
            return false;
        }
        match timeout {
            TimeoutType::ScheduleToStart if w.started_event_id == 0 && w.sticky => {
                self.ms.wft = None;
                self.append(A::WorkflowTaskTimedOutEventAttributes(
                    WorkflowTaskTimedOutEventAttributes {
                        scheduled_event_id: w.scheduled_event_id,
                        started_event_id: 0,
                        timeout_type: TimeoutType::ScheduleToStart as i32,
                    },
                ));
                self.ms.sticky_queue.clear();
                self.schedule_wft();
                true
            }
            TimeoutType::StartToClose if w.started_event_id != 0 => {
                self.ms.wft = None;
                if !w.transient {
                    self.append(A::WorkflowTaskTimedOutEventAttributes(
                        WorkflowTaskTimedOutEventAttributes {
                            scheduled_event_id: w.scheduled_event_id,
                            started_event_id: w.started_event_id,
                            timeout_type: TimeoutType::StartToClose as i32,
                        },
                    ));
                }
                self.flush_buffer();
                let attempt = if w.sticky { 1 } else { w.attempt + 1 };
                self.schedule_wft_attempt(attempt);
                true
            }
            _ => false,
        }
    }

    /// Moves a sticky, not-yet-started workflow task to the normal queue (its sticky worker went
    /// away).
    pub fn unstick(&mut self) -> bool {
        self.ms.sticky_queue.clear();
        match self.ms.wft.clone() {
            Some(w) if w.sticky && w.started_event_id == 0 => {
                self.wft_timeout(w.dispatch_seq, TimeoutType::ScheduleToStart)
            }
            _ => false,
        }
    }

    /// Applies a `RespondWorkflowTaskCompleted`. `sa_type` resolves registered search
    /// attributes. On `Err`, the task was failed and the state must still be committed.
    pub fn complete_wft(
        &mut self,
        req: &RespondWorkflowTaskCompletedRequest,
        sa_type: &dyn Fn(&str) -> Option<IndexedValueType>,
    ) -> Result<(), Rejected> {
        let w = self
            .ms
            .wft
            .clone()
            .expect("complete_wft without a started task");
        let closing = req.commands.iter().any(is_closing);
        let delivered_pending = self.ms.updates.iter().any(|u| {
            u.stage == Stage::Admitted as i32
                && !w.delivered_updates.contains(&u.update_id)
                && !req
                    .messages
                    .iter()
                    .any(|m| m.protocol_instance_id == u.update_id)
        });
        if closing && (!self.ms.buffered_events.is_empty() || delivered_pending) {
            self.fail_wft(
                Cause::UnhandledCommand,
                Some(Failure {
                    message: "Workflow task completed with unhandled new events.".into(),
                    source: "Server".into(),
                    ..Default::default()
                }),
                &req.identity,
            );
            return Err(Rejected("UnhandledCommand".into()));
        }
        let mut commands = req.commands.clone();
        if let Err((cause, msg)) =
            self.validate_commands(&mut commands, sa_type, &req.messages, &w.delivered_updates)
        {
            let full = format!("{}: {}", cause_name(cause), msg);
            if cause == Cause::BadUpdateWorkflowExecutionMessage {
                self.fail_wft_bad_update_message(&w, &full, &req.identity);
            } else {
                self.fail_wft(
                    cause,
                    Some(Failure {
                        message: msg.clone(),
                        source: "Server".into(),
                        ..Default::default()
                    }),
                    &req.identity,
                );
            }
            return Err(Rejected(full));
        }
        self.persist_transient();
        let completed = self.append(A::WorkflowTaskCompletedEventAttributes(
            WorkflowTaskCompletedEventAttributes {
                scheduled_event_id: w.scheduled_event_id,
                started_event_id: w.started_event_id,
                identity: req.identity.clone(),
                binary_checksum: req.binary_checksum.clone(),
                worker_version: req.worker_version_stamp.clone(),
                sdk_metadata: req.sdk_metadata.clone(),
                metering_metadata: req.metering_metadata,
                ..Default::default()
            },
        ));
        self.ms.wft = None;
        self.ms.last_completed_wft_started_id = w.started_event_id;
        let mut need_wft = req.force_create_new_workflow_task;
        let used_messages = placed_message_ids(&commands);
        for c in commands {
            if !self.is_running() {
                break;
            }
            need_wft |= self.apply_command(c, completed, &req.messages);
        }
        // Messages not placed by a command (rejections, which have no event, and acceptances or
        // responses of older SDKs) are applied after the commands, as Temporal does.
        for m in &req.messages {
            if !used_messages.contains(&m.id) {
                self.apply_message(m);
            }
        }
        let flushed = self.flush_buffer();
        if !self.is_running() {
            return Ok(());
        }
        if let Some(sa) = &req.sticky_attributes {
            match sa.worker_task_queue.as_ref() {
                Some(q) if !q.name.is_empty() => {
                    self.ms.sticky_queue = q.name.clone();
                    self.ms.sticky_schedule_to_start = sa.schedule_to_start_timeout;
                }
                _ => self.ms.sticky_queue.clear(),
            }
        } else {
            self.ms.sticky_queue.clear();
        }
        let admitted = self
            .ms
            .updates
            .iter()
            .any(|u| u.stage == Stage::Admitted as i32);
        if flushed > 0 || need_wft || admitted {
            self.schedule_wft();
        }
        Ok(())
    }

    /// Fails the started task for an invalid update protocol message, as Temporal does: the
    /// failure carries `message` (already prefixed with the cause name) and a server failure
    /// info, and the updates delivered with this task but not yet accepted are aborted (their
    /// callers get a "not ready" error; a retried request is admitted anew).
    fn fail_wft_bad_update_message(
        &mut self,
        w: &WorkflowTaskState,
        message: &str,
        identity: &str,
    ) {
        let before = self.ms.updates.len();
        self.ms.updates.retain(|u| {
            !(u.stage == Stage::Admitted as i32 && w.delivered_updates.contains(&u.update_id))
        });
        if self.ms.updates.len() != before {
            self.effects.push(Effect::UpdatesChanged);
        }
        self.fail_wft(
            Cause::BadUpdateWorkflowExecutionMessage,
            Some(Failure {
                message: message.to_string(),
                failure_info: Some(FailureInfo::ServerFailureInfo(Default::default())),
                ..Default::default()
            }),
            identity,
        );
    }

    /// Validates one update protocol message against the stages the updates of this run reach
    /// while the completion is processed (`sim`), in Temporal's words.
    fn validate_message(
        &self,
        m: &Message,
        sim: &mut Vec<(String, UpdateSim)>,
        delivered: &[String],
    ) -> Result<(), String> {
        let id = m.protocol_instance_id.as_str();
        if id.is_empty() {
            return Err("invalid *protocol.Message: protocol_instance_id is not set".into());
        }
        let Some(body) = &m.body else {
            return Err("nil message body".into());
        };
        let i = match sim.iter().position(|(u, _)| u == id) {
            Some(i) => i,
            None => {
                let st = match self.ms.updates.iter().find(|u| u.update_id == id) {
                    Some(u) if u.stage == Stage::Admitted as i32 => {
                        if delivered.iter().any(|d| d == id) {
                            UpdateSim::Sent
                        } else {
                            UpdateSim::Admitted
                        }
                    }
                    Some(u) if u.stage == Stage::Accepted as i32 => UpdateSim::Accepted,
                    Some(_) => UpdateSim::Completed,
                    None => return Err(format!("update {id:?} not found")),
                };
                sim.push((id.to_string(), st));
                sim.len() - 1
            }
        };
        let state = sim[i].1;
        let transition = |kind: &str, allowed: &[UpdateSim]| {
            if allowed.contains(&state) {
                Ok(())
            } else {
                Err(format!(
                    "invalid state transition attempted for Update {id}: received *update.{kind} message while in state {}",
                    state.name()
                ))
            }
        };
        let unmarshal = |e: prost::DecodeError| format!("unable to unmarshal request: {e}");
        let not_set =
            |kind: &str, field: &str| format!("invalid *update.{kind}: {field} is not set");
        let t = body.type_url.as_str();
        if t.ends_with("/temporal.api.update.v1.Acceptance") {
            let acc = upd::Acceptance::decode(body.value.as_slice()).map_err(unmarshal)?;
            transition("Acceptance", &[UpdateSim::Sent, UpdateSim::Admitted])?;
            if acc.accepted_request_sequencing_event_id == 0 {
                return Err(not_set(
                    "Acceptance",
                    "accepted_request_sequencing_event_id",
                ));
            }
            if acc.accepted_request_message_id.is_empty() {
                return Err(not_set("Acceptance", "accepted_request_message_id"));
            }
            sim[i].1 = UpdateSim::ProvisionallyAccepted;
        } else if t.ends_with("/temporal.api.update.v1.Rejection") {
            upd::Rejection::decode(body.value.as_slice()).map_err(unmarshal)?;
            transition("Rejection", &[UpdateSim::Sent, UpdateSim::Admitted])?;
            sim[i].1 = UpdateSim::ProvisionallyCompleted;
        } else if t.ends_with("/temporal.api.update.v1.Response") {
            let resp = upd::Response::decode(body.value.as_slice()).map_err(unmarshal)?;
            transition(
                "Response",
                &[UpdateSim::ProvisionallyAccepted, UpdateSim::Accepted],
            )?;
            let Some(meta) = &resp.meta else {
                return Err(not_set("Response", "meta"));
            };
            if meta.update_id.is_empty() {
                return Err(not_set("Response", "meta.update_id"));
            }
            if meta.update_id != id {
                return Err(format!("invalid *update.Response: meta.update_id != {id}"));
            }
            if resp.outcome.is_none() {
                return Err(not_set("Response", "outcome"));
            }
            sim[i].1 = UpdateSim::ProvisionallyCompleted;
        } else {
            return Err(format!("Message type {t} not supported"));
        }
        Ok(())
    }

    fn validate_commands(
        &self,
        commands: &mut [Command],
        sa_type: &dyn Fn(&str) -> Option<IndexedValueType>,
        messages: &[Message],
        delivered: &[String],
    ) -> Result<(), (Cause, String)> {
        let bad_message = |e: String| (Cause::BadUpdateWorkflowExecutionMessage, e);
        let mut sim = Vec::new();
        let placed = placed_message_ids(commands);
        let run_timeout = dur(&self.ms.run_timeout);
        let mut timers: Vec<String> = self.ms.timers.iter().map(|t| t.timer_id.clone()).collect();
        let mut activities: Vec<String> = self
            .ms
            .activities
            .iter()
            .map(|a| a.activity_id.clone())
            .collect();
        for c in commands.iter_mut() {
            match c.attributes.as_mut() {
                None => {
                    return Err((
                        Cause::Unspecified,
                        format!("command {} has no attributes", c.command_type),
                    ));
                }
                Some(CA::ScheduleActivityTaskCommandAttributes(a)) => {
                    normalize_activity(a, run_timeout)
                        .map_err(|e| (Cause::BadScheduleActivityAttributes, e))?;
                    if activities.contains(&a.activity_id) {
                        return Err((
                            Cause::ScheduleActivityDuplicateId,
                            format!("Activity ID {} is already in use.", a.activity_id),
                        ));
                    }
                    activities.push(a.activity_id.clone());
                }
                Some(CA::StartTimerCommandAttributes(t)) => {
                    if t.timer_id.is_empty() {
                        return Err((Cause::BadStartTimerAttributes, "TimerId is not set.".into()));
                    }
                    if dur(&t.start_to_fire_timeout).is_zero() {
                        return Err((
                            Cause::BadStartTimerAttributes,
                            "A valid StartToFireTimeout is not set on command.".into(),
                        ));
                    }
                    if timers.contains(&t.timer_id) {
                        return Err((
                            Cause::StartTimerDuplicateId,
                            format!("Timer ID {} is already in use.", t.timer_id),
                        ));
                    }
                    timers.push(t.timer_id.clone());
                }
                Some(CA::CancelTimerCommandAttributes(t)) => {
                    if t.timer_id.is_empty() {
                        return Err((
                            Cause::BadCancelTimerAttributes,
                            "TimerId is not set.".into(),
                        ));
                    }
                    timers.retain(|x| *x != t.timer_id);
                }
                Some(CA::UpsertWorkflowSearchAttributesCommandAttributes(u)) => {
                    for k in u
                        .search_attributes
                        .as_ref()
                        .map(|s| s.indexed_fields.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        if sa_type(&k).is_none() {
                            return Err((
                                Cause::BadSearchAttributes,
                                format!(
                                    "Namespace {} has no mapping defined for search attribute {}",
                                    self.ms.namespace, k
                                ),
                            ));
                        }
                    }
                }
                Some(CA::StartChildWorkflowExecutionCommandAttributes(s)) => {
                    if s.workflow_id.is_empty() {
                        return Err((
                            Cause::BadStartChildExecutionAttributes,
                            "Required field WorkflowId is not set.".into(),
                        ));
                    }
                    if s.workflow_type.as_ref().is_none_or(|t| t.name.is_empty()) {
                        return Err((
                            Cause::BadStartChildExecutionAttributes,
                            "Required field WorkflowType is not set.".into(),
                        ));
                    }
                }
                Some(CA::SignalExternalWorkflowExecutionCommandAttributes(s)) => {
                    if s.execution
                        .as_ref()
                        .is_none_or(|e| e.workflow_id.is_empty())
                    {
                        return Err((
                            Cause::BadSignalWorkflowExecutionAttributes,
                            "Execution is not set on command.".into(),
                        ));
                    }
                    if s.signal_name.is_empty() {
                        return Err((
                            Cause::BadSignalWorkflowExecutionAttributes,
                            "SignalName is not set on command.".into(),
                        ));
                    }
                }
                Some(CA::RequestCancelExternalWorkflowExecutionCommandAttributes(s)) => {
                    if s.workflow_id.is_empty() {
                        return Err((
                            Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
                            "WorkflowId is not set on command.".into(),
                        ));
                    }
                }
                Some(CA::RequestCancelActivityTaskCommandAttributes(r)) => {
                    if !self
                        .ms
                        .activities
                        .iter()
                        .any(|a| a.scheduled_event_id == r.scheduled_event_id)
                    {
                        return Err((
                            Cause::BadRequestCancelActivityAttributes,
                            format!(
                                "Unable to cancel activity with scheduled event id {}: not pending.",
                                r.scheduled_event_id
                            ),
                        ));
                    }
                }
                Some(CA::ContinueAsNewWorkflowExecutionCommandAttributes(_)) => {}
                Some(CA::ProtocolMessageCommandAttributes(p)) => {
                    let Some(m) = messages.iter().find(|m| m.id == p.message_id) else {
                        return Err(bad_message(format!(
                            "ProtocolMessageCommand referenced absent message ID {}",
                            p.message_id
                        )));
                    };
                    self.validate_message(m, &mut sim, delivered)
                        .map_err(bad_message)?;
                }
                Some(CA::ScheduleNexusOperationCommandAttributes(_))
                | Some(CA::RequestCancelNexusOperationCommandAttributes(_)) => {
                    return Err((
                        Cause::Unspecified,
                        "Nexus operations are not supported by this server.".into(),
                    ));
                }
                Some(_) => {}
            }
        }
        for m in messages.iter().filter(|m| !placed.contains(&m.id)) {
            self.validate_message(m, &mut sim, delivered)
                .map_err(bad_message)?;
        }
        Ok(())
    }

    /// Applies one validated command; returns whether it requires a new workflow task.
    fn apply_command(&mut self, c: Command, wtc: i64, messages: &[Message]) -> bool {
        let Some(attrs) = c.attributes else {
            return false;
        };
        match attrs {
            CA::ScheduleActivityTaskCommandAttributes(a) => {
                let task_queue = match a.task_queue.as_ref() {
                    Some(q) if !q.name.is_empty() => q.name.clone(),
                    _ => self.ms.task_queue.clone(),
                };
                let id = self.append(A::ActivityTaskScheduledEventAttributes(
                    ActivityTaskScheduledEventAttributes {
                        activity_id: a.activity_id.clone(),
                        activity_type: a.activity_type.clone(),
                        task_queue: Some(normal_queue(&task_queue)),
                        header: a.header.clone(),
                        input: a.input.clone(),
                        schedule_to_close_timeout: a.schedule_to_close_timeout,
                        schedule_to_start_timeout: a.schedule_to_start_timeout,
                        start_to_close_timeout: a.start_to_close_timeout,
                        heartbeat_timeout: a.heartbeat_timeout,
                        workflow_task_completed_event_id: wtc,
                        retry_policy: a.retry_policy.clone(),
                        use_workflow_build_id: a.use_workflow_build_id,
                        priority: a.priority.clone(),
                    },
                ));
                let st = ActivityState {
                    scheduled_event_id: id,
                    activity_id: a.activity_id,
                    activity_type: a.activity_type.map(|t| t.name).unwrap_or_default(),
                    task_queue,
                    input: a.input,
                    header: a.header,
                    schedule_to_close: a.schedule_to_close_timeout,
                    schedule_to_start: a.schedule_to_start_timeout,
                    start_to_close: a.start_to_close_timeout,
                    heartbeat_timeout: a.heartbeat_timeout,
                    retry_policy: a.retry_policy,
                    attempt: 1,
                    scheduled_time: Some(ts(self.now)),
                    current_attempt_scheduled_time: Some(ts(self.now)),
                    priority: a.priority,
                    ..Default::default()
                };
                self.arm_activity_dispatch(&st);
                let s2c = dur(&st.schedule_to_close);
                if !s2c.is_zero() {
                    self.effects.push(Effect::Timer {
                        at: self.now + s2c,
                        kind: TimerKind::Activity {
                            scheduled_event_id: id,
                            attempt: 0,
                            timeout: TimeoutType::ScheduleToClose as i32,
                        },
                    });
                }
                self.ms.activities.push(st);
                false
            }
            CA::RequestCancelActivityTaskCommandAttributes(r) => {
                let requested = self.append(A::ActivityTaskCancelRequestedEventAttributes(
                    ActivityTaskCancelRequestedEventAttributes {
                        scheduled_event_id: r.scheduled_event_id,
                        workflow_task_completed_event_id: wtc,
                    },
                ));
                let Some(i) = self
                    .ms
                    .activities
                    .iter()
                    .position(|a| a.scheduled_event_id == r.scheduled_event_id)
                else {
                    return false;
                };
                if self.ms.activities[i].started_time.is_none() {
                    let a = self.ms.activities.remove(i);
                    self.append(A::ActivityTaskCanceledEventAttributes(
                        ActivityTaskCanceledEventAttributes {
                            details: None,
                            latest_cancel_requested_event_id: requested,
                            scheduled_event_id: a.scheduled_event_id,
                            started_event_id: 0,
                            identity: String::new(),
                            ..Default::default()
                        },
                    ));
                    true
                } else {
                    self.ms.activities[i].cancel_requested_event_id = requested;
                    false
                }
            }
            CA::StartTimerCommandAttributes(t) => {
                let id = self.append(A::TimerStartedEventAttributes(
                    TimerStartedEventAttributes {
                        timer_id: t.timer_id.clone(),
                        start_to_fire_timeout: t.start_to_fire_timeout,
                        workflow_task_completed_event_id: wtc,
                    },
                ));
                let fire = self.now + dur(&t.start_to_fire_timeout);
                self.ms.timers.push(TimerState {
                    timer_id: t.timer_id,
                    started_event_id: id,
                    fire_time: Some(ts(fire)),
                });
                self.effects.push(Effect::Timer {
                    at: fire,
                    kind: TimerKind::User(id),
                });
                false
            }
            CA::CancelTimerCommandAttributes(t) => {
                let Some(i) = self.ms.timers.iter().position(|x| x.timer_id == t.timer_id) else {
                    // Already fired (its TimerFired is in the buffer): nothing to cancel.
                    return false;
                };
                let timer = self.ms.timers.remove(i);
                self.append(A::TimerCanceledEventAttributes(
                    TimerCanceledEventAttributes {
                        timer_id: timer.timer_id,
                        started_event_id: timer.started_event_id,
                        workflow_task_completed_event_id: wtc,
                        identity: String::new(),
                    },
                ));
                false
            }
            CA::CompleteWorkflowExecutionCommandAttributes(c) => {
                let new_run_id = match self.cron_backoff() {
                    Some(delay) => {
                        let run_id = uuid::Uuid::new_v4().to_string();
                        self.spawn_next_run(&run_id, delay, None, c.result.clone());
                        run_id
                    }
                    None => String::new(),
                };
                self.append(A::WorkflowExecutionCompletedEventAttributes(
                    WorkflowExecutionCompletedEventAttributes {
                        result: c.result,
                        workflow_task_completed_event_id: wtc,
                        new_execution_run_id: new_run_id.clone(),
                    },
                ));
                self.ms.new_execution_run_id = new_run_id;
                self.close(Status::Completed);
                false
            }
            CA::FailWorkflowExecutionCommandAttributes(f) => {
                let (retry_state, new_run_id) = self.retry_or_cron(f.failure.as_ref());
                self.append(A::WorkflowExecutionFailedEventAttributes(
                    WorkflowExecutionFailedEventAttributes {
                        failure: f.failure,
                        retry_state: retry_state as i32,
                        workflow_task_completed_event_id: wtc,
                        new_execution_run_id: new_run_id.clone(),
                    },
                ));
                self.ms.new_execution_run_id = new_run_id;
                self.close(Status::Failed);
                false
            }
            CA::CancelWorkflowExecutionCommandAttributes(c) => {
                self.append(A::WorkflowExecutionCanceledEventAttributes(
                    WorkflowExecutionCanceledEventAttributes {
                        workflow_task_completed_event_id: wtc,
                        details: c.details,
                    },
                ));
                self.close(Status::Canceled);
                false
            }
            CA::ContinueAsNewWorkflowExecutionCommandAttributes(c) => {
                self.continue_as_new(c, wtc);
                false
            }
            CA::RecordMarkerCommandAttributes(m) => {
                self.append(A::MarkerRecordedEventAttributes(
                    MarkerRecordedEventAttributes {
                        marker_name: m.marker_name,
                        details: m.details,
                        workflow_task_completed_event_id: wtc,
                        header: m.header,
                        failure: m.failure,
                    },
                ));
                false
            }
            CA::UpsertWorkflowSearchAttributesCommandAttributes(u) => {
                let sa = u.search_attributes.unwrap_or_default();
                let cur = self
                    .ms
                    .search_attributes
                    .get_or_insert_with(Default::default);
                for (k, v) in &sa.indexed_fields {
                    if v.data.is_empty() || v.data == b"null" {
                        cur.indexed_fields.remove(k);
                    } else {
                        cur.indexed_fields.insert(k.clone(), v.clone());
                    }
                }
                self.append(A::UpsertWorkflowSearchAttributesEventAttributes(
                    UpsertWorkflowSearchAttributesEventAttributes {
                        workflow_task_completed_event_id: wtc,
                        search_attributes: Some(sa),
                    },
                ));
                false
            }
            CA::ModifyWorkflowPropertiesCommandAttributes(m) => {
                let memo = m.upserted_memo.unwrap_or_default();
                let cur = self.ms.memo.get_or_insert_with(Default::default);
                for (k, v) in &memo.fields {
                    if v.data.is_empty() || v.data == b"null" {
                        cur.fields.remove(k);
                    } else {
                        cur.fields.insert(k.clone(), v.clone());
                    }
                }
                self.append(A::WorkflowPropertiesModifiedEventAttributes(
                    WorkflowPropertiesModifiedEventAttributes {
                        workflow_task_completed_event_id: wtc,
                        upserted_memo: Some(memo),
                    },
                ));
                false
            }
            CA::StartChildWorkflowExecutionCommandAttributes(s) => {
                let namespace = if s.namespace.is_empty() {
                    self.ms.namespace.clone()
                } else {
                    s.namespace.clone()
                };
                let task_queue = match s.task_queue.as_ref() {
                    Some(q) if !q.name.is_empty() => q.name.clone(),
                    _ => self.ms.task_queue.clone(),
                };
                let policy = if s.parent_close_policy == 0 {
                    ParentClosePolicy::Terminate as i32
                } else {
                    s.parent_close_policy
                };
                let attrs = StartChildWorkflowExecutionInitiatedEventAttributes {
                    namespace: namespace.clone(),
                    namespace_id: self.ms.namespace_id.clone(),
                    workflow_id: s.workflow_id.clone(),
                    workflow_type: s.workflow_type.clone(),
                    task_queue: Some(normal_queue(&task_queue)),
                    input: s.input,
                    workflow_execution_timeout: s.workflow_execution_timeout,
                    workflow_run_timeout: s.workflow_run_timeout,
                    workflow_task_timeout: Some(
                        s.workflow_task_timeout
                            .filter(|d| d.seconds > 0 || d.nanos > 0)
                            .unwrap_or(pdur(DEFAULT_TASK_TIMEOUT)),
                    ),
                    parent_close_policy: policy,
                    control: s.control,
                    workflow_task_completed_event_id: wtc,
                    workflow_id_reuse_policy: s.workflow_id_reuse_policy,
                    retry_policy: s.retry_policy,
                    cron_schedule: s.cron_schedule,
                    header: s.header,
                    memo: s.memo,
                    search_attributes: s.search_attributes,
                    inherit_build_id: s.inherit_build_id,
                    priority: s.priority,
                    ..Default::default()
                };
                let encoded = attrs.encode_to_vec();
                let id = self.append(A::StartChildWorkflowExecutionInitiatedEventAttributes(
                    attrs,
                ));
                self.ms.children.push(ChildState {
                    initiated_event_id: id,
                    namespace,
                    workflow_id: s.workflow_id,
                    workflow_type: s.workflow_type.map(|t| t.name).unwrap_or_default(),
                    run_id: String::new(),
                    started_event_id: 0,
                    parent_close_policy: policy,
                    initiated: encoded,
                });
                self.effects.push(Effect::StartChild {
                    initiated_event_id: id,
                });
                false
            }
            CA::SignalExternalWorkflowExecutionCommandAttributes(s) => {
                let namespace = if s.namespace.is_empty() {
                    self.ms.namespace.clone()
                } else {
                    s.namespace.clone()
                };
                let exec = s.execution.clone().unwrap_or_default();
                let id = self.append(A::SignalExternalWorkflowExecutionInitiatedEventAttributes(
                    SignalExternalWorkflowExecutionInitiatedEventAttributes {
                        workflow_task_completed_event_id: wtc,
                        namespace: namespace.clone(),
                        namespace_id: self.ms.namespace_id.clone(),
                        workflow_execution: Some(exec.clone()),
                        signal_name: s.signal_name.clone(),
                        input: s.input.clone(),
                        control: s.control.clone(),
                        child_workflow_only: s.child_workflow_only,
                        header: s.header.clone(),
                    },
                ));
                self.ms.external_requests.push(ExternalRequestState {
                    initiated_event_id: id,
                    cancel: false,
                    namespace,
                    workflow_id: exec.workflow_id,
                    run_id: exec.run_id,
                    child_workflow_only: s.child_workflow_only,
                    signal_name: s.signal_name,
                    input: s.input,
                    control: s.control.into_bytes(),
                    header: s.header,
                    reason: String::new(),
                });
                self.effects.push(Effect::External {
                    initiated_event_id: id,
                });
                false
            }
            CA::RequestCancelExternalWorkflowExecutionCommandAttributes(s) => {
                let namespace = if s.namespace.is_empty() {
                    self.ms.namespace.clone()
                } else {
                    s.namespace.clone()
                };
                let id = self.append(
                    A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
                        RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
                            workflow_task_completed_event_id: wtc,
                            namespace: namespace.clone(),
                            namespace_id: self.ms.namespace_id.clone(),
                            workflow_execution: Some(WorkflowExecution {
                                workflow_id: s.workflow_id.clone(),
                                run_id: s.run_id.clone(),
                            }),
                            control: s.control.clone(),
                            child_workflow_only: s.child_workflow_only,
                            reason: s.reason.clone(),
                        },
                    ),
                );
                self.ms.external_requests.push(ExternalRequestState {
                    initiated_event_id: id,
                    cancel: true,
                    namespace,
                    workflow_id: s.workflow_id,
                    run_id: s.run_id,
                    child_workflow_only: s.child_workflow_only,
                    control: s.control.into_bytes(),
                    reason: s.reason,
                    ..Default::default()
                });
                self.effects.push(Effect::External {
                    initiated_event_id: id,
                });
                false
            }
            CA::ProtocolMessageCommandAttributes(p) => {
                if let Some(m) = messages.iter().find(|m| m.id == p.message_id) {
                    self.apply_message(m);
                }
                false
            }
            _ => false,
        }
    }

    fn update_mut(&mut self, id: &str) -> Option<&mut UpdateState> {
        self.ms.updates.iter_mut().find(|u| u.update_id == id)
    }

    /// Applies one validated update message: an Acceptance or a Response writes its event (in
    /// command order when placed by a ProtocolMessage command), a Rejection writes nothing.
    fn apply_message(&mut self, m: &Message) {
        let Some(body) = &m.body else { return };
        let id = m.protocol_instance_id.clone();
        let t = body.type_url.as_str();
        // After a close command only rejections (no event) still apply.
        if !self.is_running() && !t.ends_with("/temporal.api.update.v1.Rejection") {
            return;
        }
        if t.ends_with("/temporal.api.update.v1.Acceptance") {
            let Ok(acc) = upd::Acceptance::decode(body.value.as_slice()) else {
                return;
            };
            // Like Temporal, the event carries the request as the server sent it.
            let request = self
                .ms
                .updates
                .iter()
                .find(|u| u.update_id == id)
                .and_then(|u| upd::Request::decode(u.request.as_slice()).ok())
                .or(acc.accepted_request);
            let ev = self.append(A::WorkflowExecutionUpdateAcceptedEventAttributes(
                WorkflowExecutionUpdateAcceptedEventAttributes {
                    protocol_instance_id: id.clone(),
                    accepted_request_message_id: format!("{id}/request"),
                    accepted_request_sequencing_event_id: acc.accepted_request_sequencing_event_id,
                    accepted_request: request,
                },
            ));
            if let Some(u) = self.update_mut(&id) {
                u.stage = Stage::Accepted as i32;
                u.accepted_event_id = ev;
            }
        } else if t.ends_with("/temporal.api.update.v1.Response") {
            let Ok(resp) = upd::Response::decode(body.value.as_slice()) else {
                return;
            };
            let accepted = self
                .ms
                .updates
                .iter()
                .find(|u| u.update_id == id)
                .map(|u| u.accepted_event_id)
                .unwrap_or_default();
            self.append(A::WorkflowExecutionUpdateCompletedEventAttributes(
                WorkflowExecutionUpdateCompletedEventAttributes {
                    meta: resp.meta.clone(),
                    accepted_event_id: accepted,
                    outcome: resp.outcome.clone(),
                },
            ));
            let outcome = resp.outcome.unwrap_or_default().encode_to_vec();
            if let Some(u) = self.update_mut(&id) {
                u.stage = Stage::Completed as i32;
                u.outcome = outcome;
            }
        } else if t.ends_with("/temporal.api.update.v1.Rejection") {
            let Ok(rej) = upd::Rejection::decode(body.value.as_slice()) else {
                return;
            };
            let outcome = upd::Outcome {
                value: Some(upd::outcome::Value::Failure(
                    rej.failure.unwrap_or_default(),
                )),
            }
            .encode_to_vec();
            if let Some(u) = self.update_mut(&id) {
                u.stage = Stage::Completed as i32;
                u.outcome = outcome;
            }
        } else {
            return;
        }
        self.effects.push(Effect::UpdatesChanged);
    }

    /// The retry decision for a failed or timed-out run.
    fn workflow_retry(&self, failure: Option<&Failure>) -> Result<Duration, RetryState> {
        let Some(p) = self.ms.retry_policy.clone() else {
            return Err(RetryState::RetryPolicyNotSet);
        };
        let p = retry::with_defaults(Some(p));
        let exp = self.ms.execution_expiration.as_ref().map(from_ts);
        retry::next_delay(&p, self.ms.attempt, failure, self.now, exp)
    }

    /// After a failure or timeout: a retry if the retry policy allows one, else the next run of a
    /// cron schedule. Returns the retry state for the close event and the new run's id (or "").
    fn retry_or_cron(&mut self, failure: Option<&Failure>) -> (RetryState, String) {
        match self.workflow_retry(failure) {
            Ok(delay) => {
                let run_id = uuid::Uuid::new_v4().to_string();
                self.spawn_retry_run(&run_id, delay, failure.cloned());
                (RetryState::InProgress, run_id)
            }
            Err(state) => match self.cron_backoff() {
                Some(delay) => {
                    let run_id = uuid::Uuid::new_v4().to_string();
                    let last = self.ms.last_completion_result.clone();
                    self.spawn_next_run(&run_id, delay, failure.cloned(), last);
                    (state, run_id)
                }
                None => (state, String::new()),
            },
        }
    }

    /// The wait before the next run of a cron workflow closing now, unless the chain must end (no
    /// schedule, or the next run would start after the execution timeout).
    fn cron_backoff(&self) -> Option<Duration> {
        if self.ms.cron_schedule.is_empty() {
            return None;
        }
        let delay = crate::cron::Schedule::parse(&self.ms.cron_schedule)
            .ok()?
            .backoff(self.now)?;
        match self.ms.execution_expiration.as_ref().map(from_ts) {
            Some(exp) if self.now + delay >= exp => None,
            _ => Some(delay),
        }
    }

    /// Starts the next attempt of a run whose retry policy allows another.
    fn spawn_retry_run(&mut self, run_id: &str, delay: Duration, failure: Option<Failure>) {
        let last = self.ms.last_completion_result.clone();
        let attempt = self.ms.attempt + 1;
        let initiator = ContinueAsNewInitiator::Retry;
        self.spawn_run_after(run_id, delay, failure, (initiator, attempt), last);
    }

    /// Starts the next run of a cron chain (attempt 1).
    fn spawn_next_run(
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
        let ms = &*self.ms;
        let p = StartParams {
            namespace: ms.namespace.clone(),
            namespace_id: ms.namespace_id.clone(),
            workflow_id: ms.workflow_id.clone(),
            run_id: run_id.to_string(),
            workflow_type: ms.workflow_type.clone(),
            task_queue: ms.task_queue.clone(),
            input: ms.input.clone(),
            header: ms.header.clone(),
            run_timeout: dur(&ms.run_timeout),
            execution_timeout: dur(&ms.execution_timeout),
            task_timeout: dur(&ms.task_timeout),
            retry_policy: ms.retry_policy.clone(),
            cron_schedule: ms.cron_schedule.clone(),
            memo: ms.memo.clone(),
            search_attributes: ms.search_attributes.clone(),
            identity: ms.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            parent: ms.parent.clone(),
            root_workflow_id: ms.root_workflow_id.clone(),
            root_run_id: ms.root_run_id.clone(),
            first_execution_run_id: ms.first_execution_run_id.clone(),
            attempt,
            initiator: initiator as i32,
            last_completion_result,
            continued_execution_run_id: ms.run_id.clone(),
            continued_failure: failure,
            backoff: delay,
            execution_expiration: ms.execution_expiration.as_ref().map(from_ts),
            priority: ms.priority.clone(),
            ..Default::default()
        };
        let run = start_run(p, self.now);
        self.new_run = Some(run);
    }

    fn continue_as_new(&mut self, c: ContinueAsNewWorkflowExecutionCommandAttributes, wtc: i64) {
        let run_id = uuid::Uuid::new_v4().to_string();
        let ms = &*self.ms;
        let workflow_type = c
            .workflow_type
            .as_ref()
            .filter(|t| !t.name.is_empty())
            .map(|t| t.name.clone())
            .unwrap_or_else(|| ms.workflow_type.clone());
        let task_queue = c
            .task_queue
            .as_ref()
            .filter(|q| !q.name.is_empty())
            .map(|q| q.name.clone())
            .unwrap_or_else(|| ms.task_queue.clone());
        let run_timeout = Some(dur(&c.workflow_run_timeout))
            .filter(|d| !d.is_zero())
            .unwrap_or(dur(&ms.run_timeout));
        let task_timeout = Some(dur(&c.workflow_task_timeout))
            .filter(|d| !d.is_zero())
            .unwrap_or(dur(&ms.task_timeout));
        let p = StartParams {
            namespace: ms.namespace.clone(),
            namespace_id: ms.namespace_id.clone(),
            workflow_id: ms.workflow_id.clone(),
            run_id: run_id.clone(),
            workflow_type: workflow_type.clone(),
            task_queue: task_queue.clone(),
            input: c.input.clone(),
            header: c.header.clone().or_else(|| ms.header.clone()),
            run_timeout,
            execution_timeout: dur(&ms.execution_timeout),
            task_timeout,
            retry_policy: c.retry_policy.clone().or_else(|| ms.retry_policy.clone()),
            cron_schedule: ms.cron_schedule.clone(),
            memo: c.memo.clone().or_else(|| ms.memo.clone()),
            search_attributes: c
                .search_attributes
                .clone()
                .or_else(|| ms.search_attributes.clone()),
            identity: ms.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            parent: ms.parent.clone(),
            root_workflow_id: ms.root_workflow_id.clone(),
            root_run_id: ms.root_run_id.clone(),
            first_execution_run_id: ms.first_execution_run_id.clone(),
            attempt: 1,
            initiator: ContinueAsNewInitiator::Workflow as i32,
            continued_execution_run_id: ms.run_id.clone(),
            continued_failure: c.failure.clone(),
            last_completion_result: c.last_completion_result.clone(),
            backoff: dur(&c.backoff_start_interval),
            execution_expiration: ms.execution_expiration.as_ref().map(from_ts),
            priority: ms.priority.clone(),
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
        self.ms.new_execution_run_id = run_id;
        self.close(Status::ContinuedAsNew);
    }

    /// Bookkeeping after a close event was appended.
    fn close(&mut self, status: Status) {
        self.ms.status = status as i32;
        self.ms.close_time = Some(ts(self.now));
        self.ms.close_event_id = self.ms.next_event_id - 1;
        self.ms.wft = None;
        self.ms.activities.clear();
        self.ms.timers.clear();
        self.ms.external_requests.clear();
        self.ms.first_wft_backoff_until = None;
        let children = std::mem::take(&mut self.ms.children);
        let children: Vec<_> = children
            .into_iter()
            .filter(|c| !c.run_id.is_empty())
            .collect();
        if !children.is_empty() {
            self.effects.push(Effect::ParentClosePolicy(children));
        }
        if self.ms.parent.is_some() && self.new_run.is_none() {
            self.effects.push(Effect::NotifyParent);
        }
        if !self.ms.updates.is_empty() {
            self.effects.push(Effect::UpdatesChanged);
        }
        self.effects.push(Effect::Closed);
    }

    fn arm_workflow_timeout(&mut self) {
        let deadline = [&self.ms.run_expiration, &self.ms.execution_expiration]
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
        match &self.ms.first_wft_backoff_until {
            Some(t) if from_ts(t) <= self.now && self.is_running() => {
                self.ms.first_wft_backoff_until = None;
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
        let deadline = [&self.ms.run_expiration, &self.ms.execution_expiration]
            .into_iter()
            .flatten()
            .map(from_ts)
            .min();
        match deadline {
            Some(d) if d <= self.now => {}
            _ => return false,
        }
        self.ms.wft = None;
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
        self.ms.new_execution_run_id = new_run_id;
        self.close(Status::TimedOut);
        true
    }

    /// Terminates the run.
    pub fn terminate(&mut self, reason: &str, details: Option<Payloads>, identity: &str) {
        self.ms.wft = None;
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

    /// Records a signal (deduplicated by request id) and schedules a workflow task.
    pub fn signal(&mut self, s: SignalParams) {
        if !s.request_id.is_empty() {
            if self.ms.signal_request_ids.contains(&s.request_id) {
                return;
            }
            self.ms.signal_request_ids.push(s.request_id.clone());
            if self.ms.signal_request_ids.len() > SIGNAL_DEDUP {
                self.ms.signal_request_ids.remove(0);
            }
        }
        self.add(A::WorkflowExecutionSignaledEventAttributes(
            WorkflowExecutionSignaledEventAttributes {
                signal_name: s.name,
                input: s.input,
                identity: s.identity,
                header: s.header,
                external_workflow_execution: s.external,
                request_id: s.request_id,
                ..Default::default()
            },
        ));
        self.schedule_wft();
    }

    /// Records a cancel request (a repeated request is a no-op).
    pub fn request_cancel(
        &mut self,
        reason: &str,
        identity: &str,
        request_id: &str,
        external: Option<(i64, WorkflowExecution)>,
    ) {
        if self.ms.cancel_requested {
            return;
        }
        self.ms.cancel_requested = true;
        self.ms.cancel_request_id = request_id.to_string();
        self.add(A::WorkflowExecutionCancelRequestedEventAttributes(
            WorkflowExecutionCancelRequestedEventAttributes {
                cause: reason.to_string(),
                external_initiated_event_id: external.as_ref().map(|e| e.0).unwrap_or_default(),
                external_workflow_execution: external.map(|e| e.1),
                identity: identity.to_string(),
            },
        ));
        self.schedule_wft();
    }

    /// Admits an update request (idempotent by update id) and makes sure a task carries it.
    pub fn admit_update(&mut self, request: &upd::Request) -> bool {
        let id = request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .unwrap_or_default();
        if self.ms.updates.iter().any(|u| u.update_id == id) {
            return false;
        }
        self.changed = true;
        self.ms.updates.push(UpdateState {
            update_id: id,
            stage: Stage::Admitted as i32,
            request: request.encode_to_vec(),
            ..Default::default()
        });
        self.schedule_wft();
        true
    }

    fn arm_activity_dispatch(&mut self, a: &ActivityState) {
        let at = a
            .current_attempt_scheduled_time
            .as_ref()
            .map(from_ts)
            .unwrap_or(self.now);
        if at > self.now {
            self.effects.push(Effect::Timer {
                at,
                kind: TimerKind::ActivityRetry {
                    scheduled_event_id: a.scheduled_event_id,
                    attempt: a.attempt,
                },
            });
        } else {
            self.effects.push(Effect::DispatchActivity {
                scheduled_event_id: a.scheduled_event_id,
                attempt: a.attempt,
            });
        }
        let s2s = dur(&a.schedule_to_start);
        if !s2s.is_zero() {
            self.effects.push(Effect::Timer {
                at: at.max(self.now) + s2s,
                kind: TimerKind::Activity {
                    scheduled_event_id: a.scheduled_event_id,
                    attempt: a.attempt,
                    timeout: TimeoutType::ScheduleToStart as i32,
                },
            });
        }
    }

    pub fn activity_index(&self, scheduled_event_id: i64) -> Option<usize> {
        self.ms
            .activities
            .iter()
            .position(|a| a.scheduled_event_id == scheduled_event_id)
    }

    /// A poller took the activity's current attempt.
    pub fn start_activity(&mut self, i: usize, request_id: &str, identity: &str) {
        let now = self.now;
        self.changed = true;
        let a = &mut self.ms.activities[i];
        a.started_time = Some(ts(now));
        a.request_id = request_id.to_string();
        a.started_identity = identity.to_string();
        a.last_worker_identity = identity.to_string();
        a.last_heartbeat_time = None;
        let (sched, attempt) = (a.scheduled_event_id, a.attempt);
        let st2c = dur(&a.start_to_close);
        let hb = dur(&a.heartbeat_timeout);
        if !st2c.is_zero() {
            self.effects.push(Effect::Timer {
                at: now + st2c,
                kind: TimerKind::Activity {
                    scheduled_event_id: sched,
                    attempt,
                    timeout: TimeoutType::StartToClose as i32,
                },
            });
        }
        if !hb.is_zero() {
            self.effects.push(Effect::Timer {
                at: now + hb,
                kind: TimerKind::Activity {
                    scheduled_event_id: sched,
                    attempt,
                    timeout: TimeoutType::Heartbeat as i32,
                },
            });
        }
    }

    /// Writes ActivityTaskStarted (if an attempt ever started) plus the final outcome event
    /// built by `outcome(started_event_id)`, then schedules a workflow task.
    fn activity_final(&mut self, i: usize, outcome: impl FnOnce(i64) -> A, prev_failure: bool) {
        let a = self.ms.activities.remove(i);
        let ever_started = a.started_time.is_some() || a.attempt > 1;
        if ever_started {
            let started =
                A::ActivityTaskStartedEventAttributes(ActivityTaskStartedEventAttributes {
                    scheduled_event_id: a.scheduled_event_id,
                    identity: a.started_identity.clone(),
                    request_id: a.request_id.clone(),
                    attempt: a.attempt,
                    last_failure: if prev_failure {
                        a.last_failure.clone()
                    } else {
                        None
                    },
                    ..Default::default()
                });
            let sid = self.add(started);
            self.add(outcome(sid));
        } else {
            self.add(outcome(0));
        }
        self.schedule_wft();
    }

    pub fn activity_completed(&mut self, i: usize, result: Option<Payloads>, identity: &str) {
        let sched = self.ms.activities[i].scheduled_event_id;
        let identity = identity.to_string();
        self.activity_final(
            i,
            |sid| {
                A::ActivityTaskCompletedEventAttributes(ActivityTaskCompletedEventAttributes {
                    result,
                    scheduled_event_id: sched,
                    started_event_id: sid,
                    identity,
                    ..Default::default()
                })
            },
            true,
        );
    }

    /// A failed attempt: retried (no event) or final. Returns true when retried.
    pub fn activity_failed(
        &mut self,
        i: usize,
        failure: Option<Failure>,
        details: Option<Payloads>,
        identity: &str,
    ) -> bool {
        if details.is_some() {
            self.ms.activities[i].heartbeat_details = details;
        }
        let decision = self.activity_retry_decision(i, failure.as_ref());
        match decision {
            Ok(delay) => {
                self.retry_activity(i, delay, failure);
                true
            }
            Err(state) => {
                let sched = self.ms.activities[i].scheduled_event_id;
                let identity = identity.to_string();
                self.activity_final(
                    i,
                    |sid| {
                        A::ActivityTaskFailedEventAttributes(ActivityTaskFailedEventAttributes {
                            failure,
                            scheduled_event_id: sched,
                            started_event_id: sid,
                            identity,
                            retry_state: state as i32,
                            ..Default::default()
                        })
                    },
                    true,
                );
                false
            }
        }
    }

    fn activity_retry_decision(
        &self,
        i: usize,
        failure: Option<&Failure>,
    ) -> Result<Duration, RetryState> {
        let a = &self.ms.activities[i];
        let p = retry::with_defaults(a.retry_policy.clone());
        let s2c = dur(&a.schedule_to_close);
        let exp = (!s2c.is_zero())
            .then(|| a.scheduled_time.as_ref().map(|t| from_ts(t) + s2c))
            .flatten();
        retry::next_delay(&p, a.attempt, failure, self.now, exp)
    }

    fn retry_activity(&mut self, i: usize, delay: Duration, failure: Option<Failure>) {
        let now = self.now;
        self.changed = true;
        let a = &mut self.ms.activities[i];
        a.last_failure = failure;
        a.attempt += 1;
        a.started_time = None;
        a.last_attempt_complete_time = Some(ts(now));
        a.current_attempt_scheduled_time = Some(ts(now + delay));
        let a = a.clone();
        self.arm_activity_dispatch(&a);
    }

    pub fn activity_canceled(&mut self, i: usize, details: Option<Payloads>, identity: &str) {
        let a = &self.ms.activities[i];
        let (sched, requested) = (a.scheduled_event_id, a.cancel_requested_event_id);
        let identity = identity.to_string();
        self.activity_final(
            i,
            |sid| {
                A::ActivityTaskCanceledEventAttributes(ActivityTaskCanceledEventAttributes {
                    details,
                    latest_cancel_requested_event_id: requested,
                    scheduled_event_id: sched,
                    started_event_id: sid,
                    identity,
                    ..Default::default()
                })
            },
            true,
        );
    }

    /// Records a heartbeat; returns whether cancellation was requested.
    pub fn activity_heartbeat(&mut self, i: usize, details: Option<Payloads>) -> bool {
        self.changed = true;
        let a = &mut self.ms.activities[i];
        if details.is_some() {
            a.heartbeat_details = details;
        }
        a.last_heartbeat_time = Some(ts(self.now));
        a.cancel_requested_event_id != 0
    }

    /// An activity timer fired; returns whether anything changed.
    pub fn activity_timeout(&mut self, sched: i64, attempt: i32, tt: TimeoutType) -> bool {
        let Some(i) = self.activity_index(sched) else {
            return false;
        };
        let a = self.ms.activities[i].clone();
        let now = self.now;
        match tt {
            TimeoutType::ScheduleToClose => {}
            TimeoutType::ScheduleToStart => {
                if a.attempt != attempt || a.started_time.is_some() {
                    return false;
                }
            }
            TimeoutType::StartToClose | TimeoutType::Heartbeat => {
                if a.attempt != attempt || a.started_time.is_none() {
                    return false;
                }
                if tt == TimeoutType::Heartbeat {
                    let last = a
                        .last_heartbeat_time
                        .as_ref()
                        .or(a.started_time.as_ref())
                        .map(from_ts)
                        .unwrap_or(now);
                    let due = last + dur(&a.heartbeat_timeout);
                    if due > now {
                        self.effects.push(Effect::Timer {
                            at: due,
                            kind: TimerKind::Activity {
                                scheduled_event_id: sched,
                                attempt,
                                timeout: tt as i32,
                            },
                        });
                        return false;
                    }
                }
            }
            TimeoutType::Unspecified => return false,
        }
        // When the schedule-to-close deadline has passed too, that is the timeout that ends the
        // activity (Temporal reports it even when another timer fired first at the same time).
        let s2c_due = a
            .scheduled_time
            .as_ref()
            .map(from_ts)
            .zip(Some(dur(&a.schedule_to_close)).filter(|d| !d.is_zero()))
            .is_some_and(|(at, d)| at + d <= now);
        let tt = if s2c_due {
            TimeoutType::ScheduleToClose
        } else {
            tt
        };
        let failure = timeout_failure(
            "activity",
            tt,
            a.heartbeat_details.clone(),
            a.last_failure.clone(),
        );
        let retryable = matches!(tt, TimeoutType::StartToClose | TimeoutType::Heartbeat);
        let decision = if retryable {
            self.activity_retry_decision(i, Some(&failure))
        } else if tt == TimeoutType::ScheduleToClose {
            Err(RetryState::Timeout)
        } else {
            Err(RetryState::NonRetryableFailure)
        };
        match decision {
            Ok(delay) => self.retry_activity(i, delay, Some(failure)),
            Err(state) => {
                // A schedule-to-start timeout means the attempt never started.
                if tt == TimeoutType::ScheduleToStart && a.attempt == 1 {
                    self.ms.activities[i].started_time = None;
                }
                self.activity_final(
                    i,
                    |sid| {
                        A::ActivityTaskTimedOutEventAttributes(
                            ActivityTaskTimedOutEventAttributes {
                                failure: Some(failure),
                                scheduled_event_id: sched,
                                started_event_id: sid,
                                retry_state: state as i32,
                            },
                        )
                    },
                    true,
                );
            }
        }
        true
    }

    /// A user timer fired.
    pub fn timer_fired(&mut self, started_event_id: i64) -> bool {
        let Some(i) = self
            .ms
            .timers
            .iter()
            .position(|t| t.started_event_id == started_event_id)
        else {
            return false;
        };
        let t = self.ms.timers.remove(i);
        self.add(A::TimerFiredEventAttributes(TimerFiredEventAttributes {
            timer_id: t.timer_id,
            started_event_id,
        }));
        self.schedule_wft();
        true
    }

    fn child_index(&self, initiated: i64) -> Option<usize> {
        self.ms
            .children
            .iter()
            .position(|c| c.initiated_event_id == initiated)
    }

    pub fn child_started(&mut self, initiated: i64, run_id: &str) -> bool {
        let Some(i) = self.child_index(initiated) else {
            return false;
        };
        if !self.ms.children[i].run_id.is_empty() {
            return false;
        }
        let c = self.ms.children[i].clone();
        let id = self.add(A::ChildWorkflowExecutionStartedEventAttributes(
            ChildWorkflowExecutionStartedEventAttributes {
                namespace: c.namespace.clone(),
                initiated_event_id: initiated,
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: c.workflow_id.clone(),
                    run_id: run_id.to_string(),
                }),
                workflow_type: Some(WorkflowType {
                    name: c.workflow_type.clone(),
                }),
                ..Default::default()
            },
        ));
        let ch = &mut self.ms.children[i];
        ch.run_id = run_id.to_string();
        ch.started_event_id = id;
        self.schedule_wft();
        true
    }

    pub fn child_start_failed(&mut self, initiated: i64) -> bool {
        let Some(i) = self.child_index(initiated) else {
            return false;
        };
        let c = self.ms.children.remove(i);
        self.add(A::StartChildWorkflowExecutionFailedEventAttributes(
            StartChildWorkflowExecutionFailedEventAttributes {
                namespace: c.namespace,
                workflow_id: c.workflow_id,
                workflow_type: Some(WorkflowType {
                    name: c.workflow_type,
                }),
                cause: perdure_proto::api::enums::v1::StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists as i32,
                initiated_event_id: initiated,
                ..Default::default()
            },
        ));
        self.schedule_wft();
        true
    }

    /// A child run closed with `close` (its close event's attributes).
    pub fn child_closed(&mut self, initiated: i64, run_id: &str, close: &A) -> bool {
        let Some(i) = self.child_index(initiated) else {
            return false;
        };
        let c = self.ms.children.remove(i);
        let exec = Some(WorkflowExecution {
            workflow_id: c.workflow_id.clone(),
            run_id: run_id.to_string(),
        });
        let wt = Some(WorkflowType {
            name: c.workflow_type.clone(),
        });
        let ns = c.namespace.clone();
        let started = c.started_event_id;
        let ev = match close {
            A::WorkflowExecutionCompletedEventAttributes(x) => {
                A::ChildWorkflowExecutionCompletedEventAttributes(
                    ChildWorkflowExecutionCompletedEventAttributes {
                        result: x.result.clone(),
                        namespace: ns,
                        workflow_execution: exec,
                        workflow_type: wt,
                        initiated_event_id: initiated,
                        started_event_id: started,
                        ..Default::default()
                    },
                )
            }
            A::WorkflowExecutionFailedEventAttributes(x) => {
                A::ChildWorkflowExecutionFailedEventAttributes(
                    ChildWorkflowExecutionFailedEventAttributes {
                        failure: x.failure.clone(),
                        namespace: ns,
                        workflow_execution: exec,
                        workflow_type: wt,
                        initiated_event_id: initiated,
                        started_event_id: started,
                        retry_state: x.retry_state,
                        ..Default::default()
                    },
                )
            }
            A::WorkflowExecutionCanceledEventAttributes(x) => {
                A::ChildWorkflowExecutionCanceledEventAttributes(
                    ChildWorkflowExecutionCanceledEventAttributes {
                        details: x.details.clone(),
                        namespace: ns,
                        workflow_execution: exec,
                        workflow_type: wt,
                        initiated_event_id: initiated,
                        started_event_id: started,
                        ..Default::default()
                    },
                )
            }
            A::WorkflowExecutionTimedOutEventAttributes(x) => {
                A::ChildWorkflowExecutionTimedOutEventAttributes(
                    ChildWorkflowExecutionTimedOutEventAttributes {
                        namespace: ns,
                        workflow_execution: exec,
                        workflow_type: wt,
                        initiated_event_id: initiated,
                        started_event_id: started,
                        retry_state: x.retry_state,
                        ..Default::default()
                    },
                )
            }
            _ => A::ChildWorkflowExecutionTerminatedEventAttributes(
                ChildWorkflowExecutionTerminatedEventAttributes {
                    namespace: ns,
                    workflow_execution: exec,
                    workflow_type: wt,
                    initiated_event_id: initiated,
                    started_event_id: started,
                    ..Default::default()
                },
            ),
        };
        self.add(ev);
        self.schedule_wft();
        true
    }

    /// The outcome of a signal-external or cancel-external request.
    pub fn external_done(&mut self, initiated: i64, ok: bool) -> bool {
        let Some(i) = self
            .ms
            .external_requests
            .iter()
            .position(|r| r.initiated_event_id == initiated)
        else {
            return false;
        };
        let r = self.ms.external_requests.remove(i);
        let exec = Some(WorkflowExecution {
            workflow_id: r.workflow_id.clone(),
            run_id: r.run_id.clone(),
        });
        let control = String::from_utf8_lossy(&r.control).to_string();
        let ev = match (r.cancel, ok) {
            (false, true) => A::ExternalWorkflowExecutionSignaledEventAttributes(
                ExternalWorkflowExecutionSignaledEventAttributes {
                    initiated_event_id: initiated,
                    namespace: r.namespace,
                    workflow_execution: exec,
                    control,
                    ..Default::default()
                },
            ),
            (false, false) => A::SignalExternalWorkflowExecutionFailedEventAttributes(
                SignalExternalWorkflowExecutionFailedEventAttributes {
                    cause: perdure_proto::api::enums::v1::SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                    initiated_event_id: initiated,
                    namespace: r.namespace,
                    workflow_execution: exec,
                    control,
                    ..Default::default()
                },
            ),
            (true, true) => A::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                ExternalWorkflowExecutionCancelRequestedEventAttributes {
                    initiated_event_id: initiated,
                    namespace: r.namespace,
                    workflow_execution: exec,
                    ..Default::default()
                },
            ),
            (true, false) => A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                    cause: perdure_proto::api::enums::v1::CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                    initiated_event_id: initiated,
                    namespace: r.namespace,
                    workflow_execution: exec,
                    control,
                    ..Default::default()
                },
            ),
        };
        self.add(ev);
        self.schedule_wft();
        true
    }

    /// Every timer the run needs armed, rebuilt from its state (after a restart).
    pub fn rearm_all(&mut self) {
        if !self.is_running() {
            return;
        }
        self.arm_workflow_timeout();
        if let Some(t) = &self.ms.first_wft_backoff_until {
            self.effects.push(Effect::Timer {
                at: from_ts(t),
                kind: TimerKind::StartBackoff,
            });
        }
        for t in self.ms.timers.clone() {
            self.effects.push(Effect::Timer {
                at: t.fire_time.as_ref().map(from_ts).unwrap_or(self.now),
                kind: TimerKind::User(t.started_event_id),
            });
        }
        for a in self.ms.activities.clone() {
            let s2c = dur(&a.schedule_to_close);
            if !s2c.is_zero() {
                let first = a.scheduled_time.as_ref().map(from_ts).unwrap_or(self.now);
                self.effects.push(Effect::Timer {
                    at: first + s2c,
                    kind: TimerKind::Activity {
                        scheduled_event_id: a.scheduled_event_id,
                        attempt: 0,
                        timeout: TimeoutType::ScheduleToClose as i32,
                    },
                });
            }
            match &a.started_time {
                None => self.arm_activity_dispatch(&a),
                Some(st) => {
                    let st = from_ts(st);
                    let st2c = dur(&a.start_to_close);
                    if !st2c.is_zero() {
                        self.effects.push(Effect::Timer {
                            at: st + st2c,
                            kind: TimerKind::Activity {
                                scheduled_event_id: a.scheduled_event_id,
                                attempt: a.attempt,
                                timeout: TimeoutType::StartToClose as i32,
                            },
                        });
                    }
                    let hb = dur(&a.heartbeat_timeout);
                    if !hb.is_zero() {
                        let last = a.last_heartbeat_time.as_ref().map(from_ts).unwrap_or(st);
                        self.effects.push(Effect::Timer {
                            at: last + hb,
                            kind: TimerKind::Activity {
                                scheduled_event_id: a.scheduled_event_id,
                                attempt: a.attempt,
                                timeout: TimeoutType::Heartbeat as i32,
                            },
                        });
                    }
                }
            }
        }
        if let Some(w) = self.ms.wft.clone() {
            if w.started_event_id != 0 {
                let started = w.started_time.as_ref().map(from_ts).unwrap_or(self.now);
                self.effects.push(Effect::Timer {
                    at: started + dur(&self.ms.task_timeout),
                    kind: TimerKind::WorkflowTask {
                        dispatch_seq: w.dispatch_seq,
                        timeout: TimeoutType::StartToClose as i32,
                    },
                });
            } else {
                // A restarted server has no sticky pollers yet: use the normal queue.
                if w.sticky {
                    self.unstick();
                } else {
                    self.effects.push(Effect::DispatchWorkflowTask);
                }
            }
        }
        for c in self.ms.children.clone() {
            if c.run_id.is_empty() {
                self.effects.push(Effect::StartChild {
                    initiated_event_id: c.initiated_event_id,
                });
            }
        }
        for r in self.ms.external_requests.clone() {
            self.effects.push(Effect::External {
                initiated_event_id: r.initiated_event_id,
            });
        }
    }
}

/// The activity type of a pending activity as a proto.
pub fn activity_type(a: &ActivityState) -> ActivityType {
    ActivityType {
        name: a.activity_type.clone(),
    }
}
