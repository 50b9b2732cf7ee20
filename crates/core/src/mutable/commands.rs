//! The commands of a workflow task completion: validated all together first, then applied in
//! order (workflow-closing commands, markers, search attributes and memo here; activity, timer
//! and child/external commands in their own modules).

use perdure_proto::api::command::v1::command::Attributes as CA;
use perdure_proto::api::command::v1::*;
use perdure_proto::api::enums::v1::{
    IndexedValueType, WorkflowExecutionStatus as Status, WorkflowTaskFailedCause as Cause,
};
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;
use perdure_proto::api::protocol::v1::Message;
use perdure_proto::api::sdk::v1::UserMetadata;

use perdure_proto::api::enums::v1::CommandType;
use prost::Message as _;

use crate::clock::convert::dur;

/// A command whose payload is over the blob limit: Temporal fails the task with this cause (as
/// it names it) and terminates the run.
pub(super) const PAYLOAD_TOO_BIG: Cause = Cause::BadScheduleActivityAttributes;

fn too_big(field: &str) -> (Cause, String) {
    (PAYLOAD_TOO_BIG, format!("{field} exceeds size limit."))
}

use super::{Tx, normalize_activity};

pub(super) fn is_closing(c: &Command) -> bool {
    matches!(
        c.attributes,
        Some(CA::CompleteWorkflowExecutionCommandAttributes(_))
            | Some(CA::FailWorkflowExecutionCommandAttributes(_))
            | Some(CA::CancelWorkflowExecutionCommandAttributes(_))
            | Some(CA::ContinueAsNewWorkflowExecutionCommandAttributes(_))
    )
}

/// The command type its attributes belong to.
fn attributes_type(a: &CA) -> CommandType {
    match a {
        CA::ScheduleActivityTaskCommandAttributes(_) => CommandType::ScheduleActivityTask,
        CA::StartTimerCommandAttributes(_) => CommandType::StartTimer,
        CA::CompleteWorkflowExecutionCommandAttributes(_) => CommandType::CompleteWorkflowExecution,
        CA::FailWorkflowExecutionCommandAttributes(_) => CommandType::FailWorkflowExecution,
        CA::RequestCancelActivityTaskCommandAttributes(_) => CommandType::RequestCancelActivityTask,
        CA::CancelTimerCommandAttributes(_) => CommandType::CancelTimer,
        CA::CancelWorkflowExecutionCommandAttributes(_) => CommandType::CancelWorkflowExecution,
        CA::RequestCancelExternalWorkflowExecutionCommandAttributes(_) => {
            CommandType::RequestCancelExternalWorkflowExecution
        }
        CA::RecordMarkerCommandAttributes(_) => CommandType::RecordMarker,
        CA::ContinueAsNewWorkflowExecutionCommandAttributes(_) => {
            CommandType::ContinueAsNewWorkflowExecution
        }
        CA::StartChildWorkflowExecutionCommandAttributes(_) => {
            CommandType::StartChildWorkflowExecution
        }
        CA::SignalExternalWorkflowExecutionCommandAttributes(_) => {
            CommandType::SignalExternalWorkflowExecution
        }
        CA::UpsertWorkflowSearchAttributesCommandAttributes(_) => {
            CommandType::UpsertWorkflowSearchAttributes
        }
        CA::ProtocolMessageCommandAttributes(_) => CommandType::ProtocolMessage,
        CA::ModifyWorkflowPropertiesCommandAttributes(_) => CommandType::ModifyWorkflowProperties,
        CA::ScheduleNexusOperationCommandAttributes(_) => CommandType::ScheduleNexusOperation,
        CA::RequestCancelNexusOperationCommandAttributes(_) => {
            CommandType::RequestCancelNexusOperation
        }
    }
}

/// `StartTimer` for `COMMAND_TYPE_START_TIMER`.
fn type_name(t: CommandType) -> String {
    t.as_str_name()
        .trim_start_matches("COMMAND_TYPE_")
        .split('_')
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|f| f.to_string() + &cs.as_str().to_lowercase())
                .unwrap_or_default()
        })
        .collect()
}

/// The command's type: the declared one, or (when a client left it unset) its attributes'.
fn declared_type(c: &Command) -> CommandType {
    match CommandType::try_from(c.command_type) {
        Ok(t) if t != CommandType::Unspecified => t,
        _ => c
            .attributes
            .as_ref()
            .map(attributes_type)
            .unwrap_or(CommandType::Unspecified),
    }
}

/// The failure cause for bad attributes of a command type.
fn bad_attributes_cause(t: CommandType) -> Cause {
    match t {
        CommandType::ScheduleActivityTask => Cause::BadScheduleActivityAttributes,
        CommandType::RequestCancelActivityTask => Cause::BadRequestCancelActivityAttributes,
        CommandType::StartTimer => Cause::BadStartTimerAttributes,
        CommandType::CompleteWorkflowExecution => Cause::BadCompleteWorkflowExecutionAttributes,
        CommandType::FailWorkflowExecution => Cause::BadFailWorkflowExecutionAttributes,
        CommandType::CancelTimer => Cause::BadCancelTimerAttributes,
        CommandType::CancelWorkflowExecution => Cause::BadCancelWorkflowExecutionAttributes,
        CommandType::RequestCancelExternalWorkflowExecution => {
            Cause::BadRequestCancelExternalWorkflowExecutionAttributes
        }
        CommandType::RecordMarker => Cause::BadRecordMarkerAttributes,
        CommandType::ContinueAsNewWorkflowExecution => Cause::BadContinueAsNewAttributes,
        CommandType::StartChildWorkflowExecution => Cause::BadStartChildExecutionAttributes,
        CommandType::SignalExternalWorkflowExecution => Cause::BadSignalWorkflowExecutionAttributes,
        CommandType::UpsertWorkflowSearchAttributes => Cause::BadSearchAttributes,
        CommandType::ModifyWorkflowProperties => Cause::BadModifyWorkflowPropertiesAttributes,
        CommandType::ProtocolMessage => Cause::BadUpdateWorkflowExecutionMessage,
        CommandType::ScheduleNexusOperation => Cause::BadScheduleNexusOperationAttributes,
        CommandType::RequestCancelNexusOperation => Cause::BadRequestCancelNexusOperationAttributes,
        CommandType::Unspecified => Cause::Unspecified,
    }
}

/// Temporal refuses outright (without failing the task) a completion whose workflow-closing
/// command is not the last command.
pub(super) fn command_sequence_error(commands: &[Command]) -> Option<String> {
    let closing = commands.iter().position(|c| {
        matches!(
            declared_type(c),
            CommandType::CompleteWorkflowExecution
                | CommandType::FailWorkflowExecution
                | CommandType::CancelWorkflowExecution
                | CommandType::ContinueAsNewWorkflowExecution
        )
    })?;
    if closing + 1 == commands.len() {
        return None;
    }
    let names: Vec<String> = commands
        .iter()
        .map(|c| type_name(declared_type(c)))
        .collect();
    Some(format!(
        "invalid command sequence: [{}], command {} must be the last command.",
        names.join(", "),
        names[closing]
    ))
}

/// The ids of the messages placed by ProtocolMessage commands.
pub(super) fn placed_message_ids(commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .filter_map(|c| match &c.attributes {
            Some(CA::ProtocolMessageCommandAttributes(p)) => Some(p.message_id.clone()),
            _ => None,
        })
        .collect()
}

impl Tx<'_> {
    pub(super) fn validate_commands(
        &self,
        commands: &mut [Command],
        sa_type: &dyn Fn(&str) -> Option<IndexedValueType>,
        messages: &[Message],
        delivered: &[String],
    ) -> Result<(), (Cause, String)> {
        let bad_message = |e: String| (Cause::BadUpdateWorkflowExecutionMessage, e);
        let mut states = Vec::new();
        let placed = placed_message_ids(commands);
        let run_timeout = dur(&self.state.run_timeout);
        let mut timers: Vec<String> = self
            .state
            .timers
            .iter()
            .map(|t| t.timer_id.clone())
            .collect();
        let mut activities: Vec<String> = self
            .state
            .activities
            .iter()
            .map(|a| a.activity_id.clone())
            .collect();
        let limits = self.limits;
        let too_long = |cause: Cause, what: &str, value: &str, command: &str| {
            (value.len() > limits.id_length).then(|| {
                (
                    cause,
                    format!("{what} on {command} exceeds length limit. {what}={value}"),
                )
            })
        };
        let mut pending_activities = self.state.activities.len();
        let mut pending_children = self.state.children.len();
        let pending_external = |cancel: bool| {
            self.state
                .external_requests
                .iter()
                .filter(|r| r.cancel == cancel)
                .count()
        };
        let (mut pending_signals, mut pending_cancels) =
            (pending_external(false), pending_external(true));
        let over = |cause: Cause, what: &str, n: &mut usize, limit: usize| {
            *n += 1;
            (*n > limit).then(|| {
                (
                    cause,
                    format!(
                        "the number of {what}, {}, has reached the per-workflow limit of {limit}",
                        *n - 1
                    ),
                )
            })
        };
        for c in commands.iter_mut() {
            let declared = declared_type(c);
            let matches = c
                .attributes
                .as_ref()
                .is_some_and(|a| attributes_type(a) == declared);
            if !matches {
                let name = type_name(declared);
                return Err((
                    bad_attributes_cause(declared),
                    format!("{name}CommandAttributes is not set on {name}Command."),
                ));
            }
            match c.attributes.as_mut() {
                None => {}
                Some(CA::ScheduleActivityTaskCommandAttributes(a)) => {
                    let cause = Cause::BadScheduleActivityAttributes;
                    if let Some(e) = too_long(
                        cause,
                        "ActivityId",
                        &a.activity_id,
                        "ScheduleActivityTaskCommand",
                    )
                    .or_else(|| {
                        too_long(
                            cause,
                            "ActivityType",
                            a.activity_type.as_ref().map_or("", |t| t.name.as_str()),
                            "ScheduleActivityTaskCommand",
                        )
                    }) {
                        return Err(e);
                    }
                    if a.task_queue
                        .as_ref()
                        .is_some_and(|q| q.name.len() > limits.id_length)
                    {
                        return Err((cause, "taskQueue length exceeds limit".into()));
                    }
                    if !limits.blob_fits(a.input.as_ref()) {
                        return Err((
                            cause,
                            "ScheduleActivityTaskCommandAttributes.Input exceeds size limit."
                                .into(),
                        ));
                    }
                    pending_activities += 1;
                    if pending_activities > limits.pending_activities {
                        return Err((
                            Cause::PendingActivitiesLimitExceeded,
                            format!(
                                "the number of pending activities, {}, has reached the per-workflow limit of {}",
                                pending_activities - 1,
                                limits.pending_activities
                            ),
                        ));
                    }
                    normalize_activity(a, run_timeout).map_err(|e| (cause, e))?;
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
                    if let Some(e) = too_long(
                        Cause::BadStartTimerAttributes,
                        "TimerId",
                        &t.timer_id,
                        "StartTimerCommand",
                    ) {
                        return Err(e);
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
                    if !timers.contains(&t.timer_id) {
                        return Err((
                            Cause::BadCancelTimerAttributes,
                            format!(
                                "invalid history builder state for action: add-timer-canceled-event, TimerID: {}",
                                t.timer_id
                            ),
                        ));
                    }
                    timers.retain(|x| *x != t.timer_id);
                }
                Some(CA::CompleteWorkflowExecutionCommandAttributes(a))
                    if !limits.blob_fits(a.result.as_ref()) =>
                {
                    return Err(too_big("CompleteWorkflowExecutionCommandAttributes.Result"));
                }
                Some(CA::FailWorkflowExecutionCommandAttributes(a))
                    if a.failure
                        .as_ref()
                        .is_some_and(|f| f.encoded_len() > limits.blob_size) =>
                {
                    return Err(too_big("FailWorkflowExecutionCommandAttributes.Failure"));
                }
                Some(CA::UpsertWorkflowSearchAttributesCommandAttributes(u)) => {
                    limits
                        .check_search_attributes(u.search_attributes.as_ref())
                        .map_err(|e| (Cause::BadSearchAttributes, e))?;
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
                                    self.state.namespace, k
                                ),
                            ));
                        }
                    }
                }
                Some(CA::StartChildWorkflowExecutionCommandAttributes(s))
                    if !limits.blob_fits(s.input.as_ref()) =>
                {
                    return Err(too_big(
                        "StartChildWorkflowExecutionCommandAttributes.Input",
                    ));
                }
                Some(CA::SignalExternalWorkflowExecutionCommandAttributes(s))
                    if !limits.blob_fits(s.input.as_ref()) =>
                {
                    return Err(too_big(
                        "SignalExternalWorkflowExecutionCommandAttributes.Input",
                    ));
                }
                Some(CA::ContinueAsNewWorkflowExecutionCommandAttributes(s))
                    if !limits.blob_fits(s.input.as_ref()) =>
                {
                    return Err(too_big(
                        "ContinueAsNewWorkflowExecutionCommandAttributes.Input",
                    ));
                }
                Some(CA::StartChildWorkflowExecutionCommandAttributes(s)) => {
                    if let Some(e) = over(
                        Cause::PendingChildWorkflowsLimitExceeded,
                        "pending child workflow executions",
                        &mut pending_children,
                        limits.pending_children,
                    ) {
                        return Err(e);
                    }
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
                    if let Some(e) = over(
                        Cause::PendingSignalsLimitExceeded,
                        "pending signals to external workflows",
                        &mut pending_signals,
                        limits.pending_signals,
                    ) {
                        return Err(e);
                    }
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
                Some(CA::RequestCancelExternalWorkflowExecutionCommandAttributes(s))
                    if s.workflow_id.is_empty() =>
                {
                    return Err((
                        Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
                        "WorkflowId is not set on command.".into(),
                    ));
                }
                Some(CA::RequestCancelExternalWorkflowExecutionCommandAttributes(_)) => {
                    if let Some(e) = over(
                        Cause::PendingRequestCancelLimitExceeded,
                        "pending requests to cancel external workflows",
                        &mut pending_cancels,
                        limits.pending_cancels,
                    ) {
                        return Err(e);
                    }
                }
                Some(CA::RequestCancelActivityTaskCommandAttributes(r))
                    if !self
                        .state
                        .activities
                        .iter()
                        .any(|a| a.scheduled_event_id == r.scheduled_event_id) =>
                {
                    return Err((
                        Cause::BadRequestCancelActivityAttributes,
                        format!(
                            "Unable to cancel activity with scheduled event id {}: not pending.",
                            r.scheduled_event_id
                        ),
                    ));
                }
                Some(CA::ContinueAsNewWorkflowExecutionCommandAttributes(_)) => {}
                Some(CA::ProtocolMessageCommandAttributes(p)) => {
                    let Some(m) = messages.iter().find(|m| m.id == p.message_id) else {
                        return Err(bad_message(format!(
                            "ProtocolMessageCommand referenced absent message ID {}",
                            p.message_id
                        )));
                    };
                    self.validate_message(m, &mut states, delivered)
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
            self.validate_message(m, &mut states, delivered)
                .map_err(bad_message)?;
        }
        Ok(())
    }

    /// Applies one validated command; returns whether it requires a new workflow task.
    pub(super) fn apply_command(&mut self, c: Command, wtc: i64, messages: &[Message]) -> bool {
        let Some(attrs) = c.attributes else {
            return false;
        };
        // The summary and details of an activity, a timer or a child go on the event the
        // command writes first (its Scheduled, Started or Initiated event), as in Temporal.
        let metadata = match &attrs {
            CA::ScheduleActivityTaskCommandAttributes(_)
            | CA::StartTimerCommandAttributes(_)
            | CA::StartChildWorkflowExecutionCommandAttributes(_) => c.user_metadata,
            _ => None,
        };
        let first = self.events.len();
        let needs_task = self.apply_attributes(attrs, wtc, messages);
        if let Some(md) = metadata {
            self.attach_metadata(first, md);
        }
        needs_task
    }

    /// Puts `md` on the event at `index` of this transition's events, keeping the history size
    /// right; a child's start gets it too.
    fn attach_metadata(&mut self, index: usize, md: UserMetadata) {
        let Some(e) = self.events.get_mut(index) else {
            return;
        };
        let before = e.encoded_len() as i64;
        e.user_metadata = Some(md.clone());
        self.state.history_size_bytes += e.encoded_len() as i64 - before;
        let id = e.event_id;
        if let Some(child) = self
            .state
            .children
            .iter_mut()
            .find(|c| c.initiated_event_id == id)
        {
            child.user_metadata = Some(md);
        }
    }

    fn apply_attributes(&mut self, attrs: CA, wtc: i64, messages: &[Message]) -> bool {
        match attrs {
            CA::ScheduleActivityTaskCommandAttributes(a) => {
                self.schedule_activity(a, wtc);
                false
            }
            CA::RequestCancelActivityTaskCommandAttributes(r) => {
                self.request_cancel_activity(r, wtc)
            }
            CA::StartTimerCommandAttributes(t) => {
                self.start_timer(t, wtc);
                false
            }
            CA::CancelTimerCommandAttributes(t) => {
                self.cancel_timer(t, wtc);
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
                self.state.new_execution_run_id = new_run_id;
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
                self.state.new_execution_run_id = new_run_id;
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
                    .state
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
                let cur = self.state.memo.get_or_insert_with(Default::default);
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
                self.start_child(s, wtc);
                false
            }
            CA::SignalExternalWorkflowExecutionCommandAttributes(s) => {
                self.signal_external(s, wtc);
                false
            }
            CA::RequestCancelExternalWorkflowExecutionCommandAttributes(s) => {
                self.request_cancel_external(s, wtc);
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
}
