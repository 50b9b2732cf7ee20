//! One workflow run in memory: the deterministic executor that polls the workflow future, and the
//! history processing that feeds it events and matches the commands it issues against the command
//! events already recorded (a mismatch is a nondeterminism error naming both).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures::future::LocalBoxFuture;
use prost::Message as _;
use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;
use temporalio_protos::temporal::api::command::v1::*;
use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};
use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_protos::temporal::api::failure::v1::{
    ActivityFailureInfo, ChildWorkflowExecutionFailureInfo, Failure,
};
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes as EventAttributes;
use temporalio_protos::temporal::api::protocol::v1::Message as ProtocolMessage;
use temporalio_protos::temporal::api::update::v1 as update;

use super::{CommandKind, PendingCommand, WfContext, WorkflowError, WorkflowInfo, WorkflowResult};
use crate::failure::{ActivityError, ApplicationFailure, SOURCE, cancelled_failure};

/// A registered workflow function, type-erased: input payloads in, result payload out.
pub type WorkflowFn = Arc<
    dyn Fn(WfContext, Option<Payloads>) -> LocalBoxFuture<'static, WorkflowResult<Option<Payload>>>
        + Send
        + Sync,
>;

/// Why a workflow task could not be completed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    /// The code issued different commands than the history recorded.
    #[error("nondeterminism: {0}")]
    Nondeterminism(String),
    /// Anything else (malformed history, code that never settles).
    #[error("{0}")]
    Other(String),
}

fn event_name(e: &HistoryEvent) -> String {
    EventType::try_from(e.event_type)
        .map(|t| {
            t.as_str_name()
                .trim_start_matches("EVENT_TYPE_")
                .to_string()
        })
        .unwrap_or_else(|_| format!("event type {}", e.event_type))
}

fn describe_event(e: &HistoryEvent) -> String {
    let detail = match &e.attributes {
        Some(EventAttributes::ActivityTaskScheduledEventAttributes(a)) => format!(
            " (activity id {}, type {})",
            a.activity_id,
            a.activity_type
                .as_ref()
                .map(|t| t.name.as_str())
                .unwrap_or("")
        ),
        Some(EventAttributes::TimerStartedEventAttributes(t)) => {
            format!(" (timer id {})", t.timer_id)
        }
        Some(EventAttributes::TimerCanceledEventAttributes(t)) => {
            format!(" (timer id {})", t.timer_id)
        }
        Some(EventAttributes::MarkerRecordedEventAttributes(m)) => {
            format!(" (marker {})", m.marker_name)
        }
        _ => String::new(),
    };
    format!("event {} {}{}", e.event_id, event_name(e), detail)
}

fn describe_command(c: &PendingCommand) -> String {
    match c.command.attributes.as_ref() {
        Some(CommandAttributes::ScheduleActivityTaskCommandAttributes(a)) => format!(
            "ScheduleActivityTask (activity id {}, type {})",
            a.activity_id,
            a.activity_type
                .as_ref()
                .map(|t| t.name.as_str())
                .unwrap_or("")
        ),
        Some(CommandAttributes::StartTimerCommandAttributes(t)) => {
            format!("StartTimer (timer id {})", t.timer_id)
        }
        Some(CommandAttributes::CancelTimerCommandAttributes(t)) => {
            format!("CancelTimer (timer id {})", t.timer_id)
        }
        Some(CommandAttributes::RequestCancelActivityTaskCommandAttributes(_)) => {
            "RequestCancelActivityTask".into()
        }
        Some(CommandAttributes::CompleteWorkflowExecutionCommandAttributes(_)) => {
            "CompleteWorkflowExecution".into()
        }
        Some(CommandAttributes::FailWorkflowExecutionCommandAttributes(_)) => {
            "FailWorkflowExecution".into()
        }
        Some(CommandAttributes::CancelWorkflowExecutionCommandAttributes(_)) => {
            "CancelWorkflowExecution".into()
        }
        Some(CommandAttributes::ContinueAsNewWorkflowExecutionCommandAttributes(_)) => {
            "ContinueAsNewWorkflowExecution".into()
        }
        _ => format!("{:?}", c.kind),
    }
}

/// Whether an event is the record of a command (and so must match one).
fn is_command_event(t: EventType) -> bool {
    use EventType::*;
    matches!(
        t,
        ActivityTaskScheduled
            | ActivityTaskCancelRequested
            | TimerStarted
            | TimerCanceled
            | WorkflowExecutionCompleted
            | WorkflowExecutionFailed
            | WorkflowExecutionCanceled
            | WorkflowExecutionContinuedAsNew
            | MarkerRecorded
            | StartChildWorkflowExecutionInitiated
            | SignalExternalWorkflowExecutionInitiated
            | RequestCancelExternalWorkflowExecutionInitiated
            | UpsertWorkflowSearchAttributes
            | WorkflowPropertiesModified
            | WorkflowExecutionUpdateAccepted
            | WorkflowExecutionUpdateCompleted
            | NexusOperationScheduled
            | NexusOperationCancelRequested
    )
}

fn time_of(e: &HistoryEvent) -> SystemTime {
    e.event_time
        .as_ref()
        .map(|t| {
            SystemTime::UNIX_EPOCH
                + std::time::Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32)
        })
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// One run's workflow instance.
pub struct Instance {
    ctx: WfContext,
    main: Option<LocalBoxFuture<'static, WorkflowResult<Option<Payload>>>>,
    /// The last history event applied.
    last_event_id: i64,
    /// Events waiting for the next workflow task to be applied.
    jobs: Vec<HistoryEvent>,
    /// Commands sent (or replayed) whose events have not been seen yet, in order.
    unmatched: VecDeque<PendingCommand>,
    activity_by_event: HashMap<i64, u32>,
    child_by_event: HashMap<i64, u32>,
    external_by_event: HashMap<i64, u32>,
    /// Update requests for the next activation.
    incoming: Vec<IncomingUpdate>,
    /// Tasks started by handlers (updates).
    tasks: Vec<LocalBoxFuture<'static, ()>>,
    closed: bool,
}

/// How an activity or child workflow ended without a result.
enum End {
    Failed,
    TimedOut,
    Cancelled,
}

impl End {
    fn error(self, failure: Box<Failure>) -> ActivityError {
        match self {
            End::Failed => ActivityError::Failed { failure },
            End::TimedOut => ActivityError::TimedOut { failure },
            End::Cancelled => ActivityError::Cancelled { failure },
        }
    }
}

struct IncomingUpdate {
    message_id: String,
    sequencing_event_id: i64,
    instance: String,
    request: update::Request,
}

impl Instance {
    /// Creates the instance from the run's first event (WorkflowExecutionStarted).
    pub fn new(
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        first: &HistoryEvent,
        f: &WorkflowFn,
    ) -> Result<Instance, ReplayError> {
        let Some(EventAttributes::WorkflowExecutionStartedEventAttributes(a)) = &first.attributes
        else {
            return Err(ReplayError::Other(
                "history does not start with WorkflowExecutionStarted".into(),
            ));
        };
        let info = WorkflowInfo {
            namespace: namespace.to_string(),
            workflow_id: workflow_id.to_string(),
            run_id: run_id.to_string(),
            workflow_type: a
                .workflow_type
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            task_queue: a
                .task_queue
                .as_ref()
                .map(|q| q.name.clone())
                .unwrap_or_default(),
            attempt: a.attempt,
            first_execution_run_id: if a.first_execution_run_id.is_empty() {
                run_id.to_string()
            } else {
                a.first_execution_run_id.clone()
            },
            continued_run_id: a.continued_execution_run_id.clone(),
            cron_schedule: a.cron_schedule.clone(),
        };
        let ctx = WfContext::new(info, time_of(first));
        let main = f(ctx.clone(), a.input.clone());
        Ok(Instance {
            ctx,
            main: Some(main),
            last_event_id: first.event_id,
            jobs: Vec::new(),
            unmatched: VecDeque::new(),
            activity_by_event: HashMap::new(),
            child_by_event: HashMap::new(),
            external_by_event: HashMap::new(),
            incoming: Vec::new(),
            tasks: Vec::new(),
            closed: false,
        })
    }

    /// The id of the last event applied.
    pub fn last_event_id(&self) -> i64 {
        self.last_event_id
    }

    /// Applies history events (a whole history, or the next part of it). Returns the commands of
    /// the current workflow task when the events end with its WorkflowTaskStarted.
    pub fn apply(&mut self, events: &[HistoryEvent]) -> Result<Option<Vec<Command>>, ReplayError> {
        self.apply_with_messages(events, &[])
    }

    /// Like [`apply`](Self::apply), delivering the poll response's protocol messages (update
    /// requests) to the current task.
    pub fn apply_with_messages(
        &mut self,
        events: &[HistoryEvent],
        messages: &[ProtocolMessage],
    ) -> Result<Option<Vec<Command>>, ReplayError> {
        let mut live_updates: Vec<IncomingUpdate> = messages
            .iter()
            .filter_map(|m| {
                let body = m.body.as_ref()?;
                if !body.type_url.ends_with("temporal.api.update.v1.Request") {
                    return None;
                }
                let request = update::Request::decode(body.value.as_slice()).ok()?;
                use temporalio_protos::temporal::api::protocol::v1::message::SequencingId;
                Some(IncomingUpdate {
                    message_id: m.id.clone(),
                    sequencing_event_id: match m.sequencing_id {
                        Some(SequencingId::EventId(id)) => id,
                        _ => 0,
                    },
                    instance: m.protocol_instance_id.clone(),
                    request,
                })
            })
            .collect();
        let events: Vec<&HistoryEvent> = events
            .iter()
            .filter(|e| e.event_id > self.last_event_id)
            .collect();
        if let Some(first) = events.first()
            && first.event_id != self.last_event_id + 1
        {
            return Err(ReplayError::Other(format!(
                "history gap: expected event {} but got {}",
                self.last_event_id + 1,
                first.event_id
            )));
        }
        let mut out = None;
        for (i, e) in events.iter().enumerate() {
            self.last_event_id = e.event_id;
            let t = EventType::try_from(e.event_type).unwrap_or(EventType::Unspecified);
            match t {
                EventType::WorkflowExecutionStarted | EventType::WorkflowTaskScheduled => {}
                EventType::WorkflowTaskStarted => {
                    if let Some(c) = self.unmatched.front() {
                        return Err(ReplayError::Nondeterminism(format!(
                            "the workflow code issued {} but the history has no event for it \
                             before {}",
                            describe_command(c),
                            describe_event(e)
                        )));
                    }
                    let next = events
                        .get(i + 1)
                        .and_then(|n| EventType::try_from(n.event_type).ok());
                    match next {
                        Some(EventType::WorkflowTaskCompleted) => {
                            // Markers this task recorded are needed while it runs (side effects
                            // and patches read them): look ahead at its command events.
                            let markers = events[i + 2..]
                                .iter()
                                .take_while(|n| {
                                    EventType::try_from(n.event_type).is_ok_and(is_command_event)
                                })
                                .filter_map(|n| match &n.attributes {
                                    Some(EventAttributes::MarkerRecordedEventAttributes(m)) => {
                                        Some((m.marker_name.clone(), m.details.clone()))
                                    }
                                    _ => None,
                                })
                                .collect();
                            self.ctx.state.borrow_mut().markers = markers;
                            // Updates this task accepted are redelivered from their events.
                            let updates: Vec<_> = events[i + 2..]
                                .iter()
                                .take_while(|n| {
                                    EventType::try_from(n.event_type).is_ok_and(is_command_event)
                                })
                                .filter_map(|n| match &n.attributes {
                                    Some(EventAttributes::WorkflowExecutionUpdateAcceptedEventAttributes(u)) => {
                                        Some(IncomingUpdate {
                                            message_id: u.accepted_request_message_id.clone(),
                                            sequencing_event_id: u
                                                .accepted_request_sequencing_event_id,
                                            instance: u.protocol_instance_id.clone(),
                                            request: u.accepted_request.clone().unwrap_or_default(),
                                        })
                                    }
                                    _ => None,
                                })
                                .collect();
                            self.incoming = updates;
                            let cmds = self.activate(e, true)?;
                            // Messages of a replayed task were delivered back then.
                            let mut st = self.ctx.state.borrow_mut();
                            st.markers.clear();
                            st.messages.clear();
                            drop(st);
                            self.unmatched.extend(cmds);
                        }
                        None => {
                            self.incoming = std::mem::take(&mut live_updates);
                            let cmds = self.activate(e, false)?;
                            out = Some(cmds.iter().map(|c| c.command.clone()).collect());
                            self.unmatched.extend(cmds);
                        }
                        // A failed or timed-out attempt: its events count for the next one.
                        _ => {}
                    }
                }
                EventType::WorkflowTaskCompleted
                | EventType::WorkflowTaskFailed
                | EventType::WorkflowTaskTimedOut => {}
                t if is_command_event(t) => self.match_command(e)?,
                _ => self.jobs.push((*e).clone()),
            }
        }
        Ok(out)
    }

    fn match_command(&mut self, e: &HistoryEvent) -> Result<(), ReplayError> {
        let Some(cmd) = self.unmatched.pop_front() else {
            return Err(ReplayError::Nondeterminism(format!(
                "the history has {} but the workflow code issued no command for it",
                describe_event(e)
            )));
        };
        let mismatch = || {
            ReplayError::Nondeterminism(format!(
                "the history has {} but the workflow code issued {}",
                describe_event(e),
                describe_command(&cmd)
            ))
        };
        let mut s = self.ctx.state.borrow_mut();
        match (&cmd.kind, &e.attributes, cmd.command.attributes.as_ref()) {
            (
                CommandKind::Activity(seq),
                Some(EventAttributes::ActivityTaskScheduledEventAttributes(a)),
                Some(CommandAttributes::ScheduleActivityTaskCommandAttributes(c)),
            ) if a.activity_id == c.activity_id && a.activity_type == c.activity_type => {
                if let Some(slot) = s.activities.get_mut(seq) {
                    slot.scheduled_event_id = e.event_id;
                }
                self.activity_by_event.insert(e.event_id, *seq);
            }
            (
                CommandKind::UpdateAccept(id),
                Some(EventAttributes::WorkflowExecutionUpdateAcceptedEventAttributes(u)),
                _,
            ) if &u.protocol_instance_id == id => {}
            (
                CommandKind::UpdateComplete(id),
                Some(EventAttributes::WorkflowExecutionUpdateCompletedEventAttributes(u)),
                _,
            ) if u.meta.as_ref().is_some_and(|m| &m.update_id == id) => {}
            (
                CommandKind::SignalExternal(seq),
                Some(EventAttributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(a)),
                Some(CommandAttributes::SignalExternalWorkflowExecutionCommandAttributes(c)),
            ) if a.signal_name == c.signal_name => {
                self.external_by_event.insert(e.event_id, *seq);
            }
            (
                CommandKind::CancelExternal(seq),
                Some(
                    EventAttributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
                        a,
                    ),
                ),
                Some(CommandAttributes::RequestCancelExternalWorkflowExecutionCommandAttributes(c)),
            ) if a
                .workflow_execution
                .as_ref()
                .is_some_and(|x| x.workflow_id == c.workflow_id) =>
            {
                self.external_by_event.insert(e.event_id, *seq);
            }
            (
                CommandKind::Marker(name),
                Some(EventAttributes::MarkerRecordedEventAttributes(m)),
                _,
            ) if &m.marker_name == name => {}
            (
                CommandKind::Child(seq),
                Some(EventAttributes::StartChildWorkflowExecutionInitiatedEventAttributes(a)),
                Some(CommandAttributes::StartChildWorkflowExecutionCommandAttributes(c)),
            ) if a.workflow_id == c.workflow_id && a.workflow_type == c.workflow_type => {
                if let Some(slot) = s.children.get_mut(seq) {
                    slot.initiated_event_id = e.event_id;
                }
                self.child_by_event.insert(e.event_id, *seq);
            }
            (CommandKind::Timer(seq), Some(EventAttributes::TimerStartedEventAttributes(t)), _)
                if t.timer_id == seq.to_string() => {}
            (
                CommandKind::CancelTimer(seq),
                Some(EventAttributes::TimerCanceledEventAttributes(t)),
                _,
            ) if t.timer_id == seq.to_string() => {}
            (
                CommandKind::CancelActivity(seq),
                Some(EventAttributes::ActivityTaskCancelRequestedEventAttributes(a)),
                _,
            ) if self.activity_by_event.get(&a.scheduled_event_id) == Some(seq) => {}
            (
                CommandKind::Complete,
                Some(EventAttributes::WorkflowExecutionCompletedEventAttributes(_)),
                _,
            )
            | (
                CommandKind::Fail,
                Some(EventAttributes::WorkflowExecutionFailedEventAttributes(_)),
                _,
            )
            | (
                CommandKind::CancelWorkflow,
                Some(EventAttributes::WorkflowExecutionCanceledEventAttributes(_)),
                _,
            )
            | (
                CommandKind::ContinueAsNew,
                Some(EventAttributes::WorkflowExecutionContinuedAsNewEventAttributes(_)),
                _,
            ) => {}
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// Runs one workflow task: applies the waiting events, then polls the code until it settles.
    fn activate(
        &mut self,
        started: &HistoryEvent,
        replaying: bool,
    ) -> Result<Vec<PendingCommand>, ReplayError> {
        {
            let mut s = self.ctx.state.borrow_mut();
            s.now = time_of(started);
            s.replaying = replaying;
        }
        for job in std::mem::take(&mut self.jobs) {
            self.apply_job(&job);
        }
        let incoming = std::mem::take(&mut self.incoming);
        if !incoming.is_empty() {
            // Let the code register its handlers first (an update can come with the first task).
            self.settle()?;
            for u in incoming {
                self.ctx.deliver_update(
                    &u.message_id,
                    u.sequencing_event_id,
                    &u.instance,
                    u.request,
                    replaying,
                );
            }
        }
        self.settle()?;
        Ok(std::mem::take(&mut self.ctx.state.borrow_mut().commands))
    }

    /// Protocol messages (update acceptances, rejections, responses) of the current task.
    pub fn take_messages(&mut self) -> Vec<ProtocolMessage> {
        std::mem::take(&mut self.ctx.state.borrow_mut().messages)
    }

    fn activity_failure(
        &self,
        seq: u32,
        scheduled: i64,
        started: i64,
        cause: Option<Failure>,
        retry_state: i32,
    ) -> Failure {
        let s = self.ctx.state.borrow();
        let activity_type = s
            .activities
            .get(&seq)
            .map(|a| a.activity_type.clone())
            .unwrap_or_default();
        Failure {
            message: "Activity task failed".into(),
            source: SOURCE.into(),
            cause: cause.map(Box::new),
            failure_info: Some(FailureInfo::ActivityFailureInfo(ActivityFailureInfo {
                scheduled_event_id: scheduled,
                started_event_id: started,
                activity_type: Some(temporalio_protos::temporal::api::common::v1::ActivityType {
                    name: activity_type,
                }),
                activity_id: seq.to_string(),
                retry_state,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    /// An activity ended without a result: resolve its handle with an ActivityFailure (unless the
    /// code already gave up on it).
    fn activity_ended(
        &mut self,
        (scheduled, started): (i64, i64),
        end: End,
        cause: Option<Failure>,
        retry_state: i32,
    ) {
        let Some(&seq) = self.activity_by_event.get(&scheduled) else {
            return;
        };
        let done = self
            .ctx
            .state
            .borrow()
            .activities
            .get(&seq)
            .is_none_or(|a| a.result.is_some());
        if done {
            return;
        }
        let failure = Box::new(self.activity_failure(seq, scheduled, started, cause, retry_state));
        self.ctx.resolve_activity(seq, Err(end.error(failure)));
    }

    /// A child ended without a result: resolve its handle with a ChildWorkflowFailure.
    fn child_ended(&mut self, initiated: i64, end: End, cause: Option<Failure>, retry_state: i32) {
        let Some(&seq) = self.child_by_event.get(&initiated) else {
            return;
        };
        let failure = Box::new(self.child_failure(seq, initiated, cause, retry_state));
        self.ctx.resolve_child(seq, Err(end.error(failure)));
    }

    fn child_failure(
        &self,
        seq: u32,
        initiated: i64,
        cause: Option<Failure>,
        retry_state: i32,
    ) -> Failure {
        let s = self.ctx.state.borrow();
        let slot = s.children.get(&seq);
        Failure {
            message: "Child Workflow execution failed".into(),
            source: SOURCE.into(),
            cause: cause.map(Box::new),
            failure_info: Some(FailureInfo::ChildWorkflowExecutionFailureInfo(
                ChildWorkflowExecutionFailureInfo {
                    namespace: s.info.namespace.clone(),
                    workflow_execution: slot.map(|c| {
                        temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                            workflow_id: c.workflow_id.clone(),
                            run_id: c.run_id.clone(),
                        }
                    }),
                    workflow_type: slot.map(|c| {
                        temporalio_protos::temporal::api::common::v1::WorkflowType {
                            name: c.workflow_type.clone(),
                        }
                    }),
                    initiated_event_id: initiated,
                    retry_state,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    fn apply_job(&mut self, e: &HistoryEvent) {
        let ignore_late = |ctx: &WfContext, seq: u32| {
            ctx.state
                .borrow()
                .activities
                .get(&seq)
                .is_none_or(|a| a.result.is_some())
        };
        match &e.attributes {
            Some(EventAttributes::ActivityTaskCompletedEventAttributes(a)) => {
                if let Some(&seq) = self.activity_by_event.get(&a.scheduled_event_id)
                    && !ignore_late(&self.ctx, seq)
                {
                    self.ctx.resolve_activity(seq, Ok(a.result.clone()));
                }
            }
            Some(EventAttributes::ActivityTaskFailedEventAttributes(a)) => {
                let (ids, cause) = (
                    (a.scheduled_event_id, a.started_event_id),
                    a.failure.clone(),
                );
                self.activity_ended(ids, End::Failed, cause, a.retry_state);
            }
            Some(EventAttributes::ActivityTaskTimedOutEventAttributes(a)) => {
                let (ids, cause) = (
                    (a.scheduled_event_id, a.started_event_id),
                    a.failure.clone(),
                );
                self.activity_ended(ids, End::TimedOut, cause, a.retry_state);
            }
            Some(EventAttributes::ActivityTaskCanceledEventAttributes(a)) => {
                let ids = (a.scheduled_event_id, a.started_event_id);
                let cause = Some(cancelled_failure("activity cancelled"));
                self.activity_ended(ids, End::Cancelled, cause, 0);
            }
            Some(EventAttributes::ChildWorkflowExecutionStartedEventAttributes(c)) => {
                if let Some(&seq) = self.child_by_event.get(&c.initiated_event_id)
                    && let Some(slot) = self.ctx.state.borrow_mut().children.get_mut(&seq)
                {
                    slot.run_id = c
                        .workflow_execution
                        .as_ref()
                        .map(|x| x.run_id.clone())
                        .unwrap_or_default();
                }
            }
            Some(EventAttributes::ChildWorkflowExecutionCompletedEventAttributes(c)) => {
                if let Some(&seq) = self.child_by_event.get(&c.initiated_event_id) {
                    self.ctx.resolve_child(seq, Ok(c.result.clone()));
                }
            }
            Some(EventAttributes::StartChildWorkflowExecutionFailedEventAttributes(c)) => {
                let cause = ApplicationFailure::non_retryable(format!(
                    "the child workflow could not be started: workflow id {} is already in use",
                    c.workflow_id
                ))
                .with_type("ChildWorkflowAlreadyStarted")
                .to_failure();
                self.child_ended(c.initiated_event_id, End::Failed, Some(cause), 0);
            }
            Some(EventAttributes::ChildWorkflowExecutionFailedEventAttributes(c)) => {
                let cause = c.failure.clone();
                self.child_ended(c.initiated_event_id, End::Failed, cause, c.retry_state);
            }
            Some(EventAttributes::ChildWorkflowExecutionTimedOutEventAttributes(c)) => {
                self.child_ended(c.initiated_event_id, End::TimedOut, None, c.retry_state);
            }
            Some(EventAttributes::ChildWorkflowExecutionCanceledEventAttributes(c)) => {
                let cause = cancelled_failure("child workflow cancelled");
                self.child_ended(c.initiated_event_id, End::Cancelled, Some(cause), 0);
            }
            Some(EventAttributes::ChildWorkflowExecutionTerminatedEventAttributes(c)) => {
                let cause = Failure {
                    message: "child workflow terminated".into(),
                    source: SOURCE.into(),
                    failure_info: Some(FailureInfo::TerminatedFailureInfo(Default::default())),
                    ..Default::default()
                };
                self.child_ended(c.initiated_event_id, End::Failed, Some(cause), 0);
            }
            Some(EventAttributes::ExternalWorkflowExecutionSignaledEventAttributes(x)) => {
                if let Some(&seq) = self.external_by_event.get(&x.initiated_event_id) {
                    self.ctx.resolve_external(seq, Ok(()));
                }
            }
            Some(EventAttributes::SignalExternalWorkflowExecutionFailedEventAttributes(x)) => {
                if let Some(&seq) = self.external_by_event.get(&x.initiated_event_id) {
                    self.ctx.resolve_external(seq, Err(external_cause(x.cause)));
                }
            }
            Some(EventAttributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(x)) => {
                if let Some(&seq) = self.external_by_event.get(&x.initiated_event_id) {
                    self.ctx.resolve_external(seq, Ok(()));
                }
            }
            Some(EventAttributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                x,
            )) => {
                if let Some(&seq) = self.external_by_event.get(&x.initiated_event_id) {
                    self.ctx.resolve_external(seq, Err(external_cause(x.cause)));
                }
            }
            Some(EventAttributes::TimerFiredEventAttributes(t)) => {
                if let Ok(seq) = t.timer_id.parse() {
                    self.ctx.resolve_timer(seq, true);
                }
            }
            Some(EventAttributes::WorkflowExecutionSignaledEventAttributes(s)) => {
                self.ctx.deliver_signal(&s.signal_name, s.input.clone());
            }
            Some(EventAttributes::WorkflowExecutionCancelRequestedEventAttributes(_)) => {
                self.ctx.cancel_everything();
            }
            _ => {}
        }
    }

    /// Polls the workflow until a round changes nothing.
    fn settle(&mut self) -> Result<(), ReplayError> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..100_000 {
            let before = self.ctx.state.borrow().progress;
            let spawned = std::mem::take(&mut self.ctx.state.borrow_mut().spawned);
            self.tasks.extend(spawned);
            let mut i = 0;
            while i < self.tasks.len() {
                if self.tasks[i].as_mut().poll(&mut cx).is_ready() {
                    drop(self.tasks.remove(i));
                    self.ctx.state.borrow_mut().progress += 1;
                } else {
                    i += 1;
                }
            }
            if let Some(main) = self.main.as_mut()
                && let Poll::Ready(r) = main.as_mut().poll(&mut cx)
            {
                self.main = None;
                self.finish(r);
            }
            if self.ctx.state.borrow().progress == before {
                return Ok(());
            }
        }
        Err(ReplayError::Other(
            "the workflow code does not settle (it keeps making progress without waiting)".into(),
        ))
    }

    fn finish(&mut self, r: WorkflowResult<Option<Payload>>) {
        if self.closed {
            return;
        }
        self.closed = true;
        let cancel_requested = self.ctx.is_cancel_requested();
        let (kind, attrs) = match r {
            Ok(p) => (
                CommandKind::Complete,
                CommandAttributes::CompleteWorkflowExecutionCommandAttributes(
                    CompleteWorkflowExecutionCommandAttributes {
                        result: p.map(|p| Payloads { payloads: vec![p] }),
                    },
                ),
            ),
            Err(WorkflowError::Cancelled) if cancel_requested => (
                CommandKind::CancelWorkflow,
                CommandAttributes::CancelWorkflowExecutionCommandAttributes(
                    CancelWorkflowExecutionCommandAttributes { details: None },
                ),
            ),
            Err(WorkflowError::Cancelled) => fail(cancelled_failure("workflow cancelled")),
            Err(WorkflowError::ContinueAsNew(a)) => (
                CommandKind::ContinueAsNew,
                CommandAttributes::ContinueAsNewWorkflowExecutionCommandAttributes(*a),
            ),
            Err(WorkflowError::Failed(f)) => fail(f.to_failure()),
            Err(WorkflowError::Activity(e)) => fail(e.failure()),
        };
        self.ctx.push_command(kind, attrs);
    }

    /// Answers a query from the current state.
    pub fn query(&self, name: &str, args: Option<Payloads>) -> Result<Payload, String> {
        let handler = self.ctx.state.borrow_mut().query_handlers.remove(name);
        match handler {
            Some(h) => {
                let r = h(args);
                self.ctx
                    .state
                    .borrow_mut()
                    .query_handlers
                    .insert(name.to_string(), h);
                r
            }
            None if name == "__temporal_workflow_metadata" => self.metadata(),
            None if name == "__stack_trace" => {
                crate::payload::to_payload(&self.pending_description()).map_err(|e| e.to_string())
            }
            None => {
                let mut known: Vec<String> = self
                    .ctx
                    .state
                    .borrow()
                    .query_handlers
                    .keys()
                    .cloned()
                    .collect();
                known.sort();
                Err(format!(
                    "Workflow did not register a handler for {name}. Registered queries: [{}]",
                    known.join(", ")
                ))
            }
        }
    }

    /// The `__temporal_workflow_metadata` query the UI uses to list a workflow's handlers: a
    /// `temporal.api.sdk.v1.WorkflowMetadata` as a `json/protobuf` payload.
    fn metadata(&self) -> Result<Payload, String> {
        use temporalio_protos::temporal::api::sdk::v1::{
            WorkflowDefinition, WorkflowInteractionDefinition, WorkflowMetadata,
        };
        let s = self.ctx.state.borrow();
        let defs = |names: Vec<&String>| {
            let mut names: Vec<String> = names.into_iter().cloned().collect();
            names.sort();
            names
                .into_iter()
                .map(|name| WorkflowInteractionDefinition {
                    name,
                    ..Default::default()
                })
                .collect::<Vec<_>>()
        };
        let mut queries: Vec<&String> = s.query_handlers.keys().collect();
        let builtin = [
            "__stack_trace".to_string(),
            "__temporal_workflow_metadata".to_string(),
        ];
        queries.extend(builtin.iter());
        let meta = WorkflowMetadata {
            definition: Some(WorkflowDefinition {
                r#type: s.info.workflow_type.clone(),
                query_definitions: defs(queries),
                signal_definitions: defs(s.signal_handlers.keys().collect()),
                update_definitions: defs(s.update_handlers.keys().collect()),
            }),
            ..Default::default()
        };
        const TYPE: &str = "temporal.api.sdk.v1.WorkflowMetadata";
        let json = crate::history_json::message_to_json(TYPE, &meta).map_err(|e| e.to_string())?;
        Ok(Payload {
            metadata: HashMap::from([
                ("encoding".to_string(), b"json/protobuf".to_vec()),
                ("messageType".to_string(), TYPE.as_bytes().to_vec()),
            ]),
            data: json.into_bytes(),
            ..Default::default()
        })
    }

    /// What the workflow is waiting on (the `__stack_trace` query).
    fn pending_description(&self) -> String {
        let s = self.ctx.state.borrow();
        let mut lines = Vec::new();
        let mut acts: Vec<_> = s
            .activities
            .iter()
            .filter(|(_, a)| a.result.is_none())
            .collect();
        acts.sort_by_key(|(k, _)| **k);
        for (seq, a) in acts {
            lines.push(format!("awaiting activity {seq} ({})", a.activity_type));
        }
        let mut timers: Vec<_> = s.timers.iter().filter(|(_, t)| t.fired.is_none()).collect();
        timers.sort_by_key(|(k, _)| **k);
        for (seq, _) in timers {
            lines.push(format!("awaiting timer {seq}"));
        }
        if lines.is_empty() {
            lines.push(if self.main.is_none() {
                "workflow function returned".into()
            } else {
                "awaiting a condition or signal".into()
            });
        }
        lines.join("\n")
    }
}

fn external_cause(cause: i32) -> String {
    use temporalio_protos::temporal::api::enums::v1::SignalExternalWorkflowExecutionFailedCause as C;
    match C::try_from(cause) {
        Ok(C::ExternalWorkflowExecutionNotFound) => "the external workflow was not found".into(),
        Ok(C::NamespaceNotFound) => "the namespace was not found".into(),
        Ok(c) => c.as_str_name().to_string(),
        Err(_) => format!("failed (cause {cause})"),
    }
}

fn fail(f: Failure) -> (CommandKind, CommandAttributes) {
    (
        CommandKind::Fail,
        CommandAttributes::FailWorkflowExecutionCommandAttributes(
            FailWorkflowExecutionCommandAttributes { failure: Some(f) },
        ),
    )
}

/// Converts a typed workflow function into a [`WorkflowFn`].
pub fn erase<I, O, F, Fut>(f: F) -> WorkflowFn
where
    I: serde::de::DeserializeOwned + 'static,
    O: serde::Serialize + 'static,
    F: Fn(WfContext, I) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = WorkflowResult<O>> + 'static,
{
    Arc::new(move |ctx, input| {
        let arg = crate::payload::from_payloads::<I>(input.as_ref());
        match arg {
            Ok(arg) => {
                let fut = f(ctx, arg);
                Box::pin(async move {
                    let out = fut.await?;
                    Ok(Some(crate::payload::to_payload(&out)?))
                })
            }
            Err(e) => {
                let msg = format!("workflow input could not be decoded: {e}");
                Box::pin(async move {
                    Err(WorkflowError::Failed(
                        ApplicationFailure::non_retryable(msg).with_type("PayloadError"),
                    ))
                })
            }
        }
    })
}
