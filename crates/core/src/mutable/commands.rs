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

use crate::clock::convert::dur;

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
