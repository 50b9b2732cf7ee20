//! The commands workflow code issues, in call order: their kinds (which tie a command to its
//! future and to its event in history) and [`WfContext::push_command`].

use temporalio_protos::temporal::api::command::v1::Command;
use temporalio_protos::temporal::api::command::v1::command::Attributes as CA;

use super::WfContext;

/// The kind of a command, with the sequence number tying it to its future.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CmdKind {
    Activity(u32),
    CancelActivity(u32),
    Timer(u32),
    CancelTimer(u32),
    Marker(String),
    Child(u32),
    UpdateAccept(String),
    UpdateComplete(String),
    SignalExternal(u32),
    CancelExternal(u32),
    Complete,
    Fail,
    CancelWorkflow,
    ContinueAsNew,
}

#[derive(Debug, Clone)]
pub(crate) struct PendingCommand {
    pub kind: CmdKind,
    pub command: Command,
}

impl WfContext {
    pub(crate) fn push_command(&self, kind: CmdKind, attrs: CA) {
        let mut s = self.state.borrow_mut();
        s.commands.push(PendingCommand {
            kind,
            command: Command {
                command_type: command_type(&attrs) as i32,
                attributes: Some(attrs),
                ..Default::default()
            },
        });
        s.progress += 1;
    }
}

fn command_type(a: &CA) -> temporalio_protos::temporal::api::enums::v1::CommandType {
    use temporalio_protos::temporal::api::enums::v1::CommandType as T;
    match a {
        CA::ScheduleActivityTaskCommandAttributes(_) => T::ScheduleActivityTask,
        CA::StartTimerCommandAttributes(_) => T::StartTimer,
        CA::CompleteWorkflowExecutionCommandAttributes(_) => T::CompleteWorkflowExecution,
        CA::FailWorkflowExecutionCommandAttributes(_) => T::FailWorkflowExecution,
        CA::RequestCancelActivityTaskCommandAttributes(_) => T::RequestCancelActivityTask,
        CA::CancelTimerCommandAttributes(_) => T::CancelTimer,
        CA::CancelWorkflowExecutionCommandAttributes(_) => T::CancelWorkflowExecution,
        CA::ContinueAsNewWorkflowExecutionCommandAttributes(_) => T::ContinueAsNewWorkflowExecution,
        CA::RecordMarkerCommandAttributes(_) => T::RecordMarker,
        CA::StartChildWorkflowExecutionCommandAttributes(_) => T::StartChildWorkflowExecution,
        CA::SignalExternalWorkflowExecutionCommandAttributes(_) => {
            T::SignalExternalWorkflowExecution
        }
        CA::RequestCancelExternalWorkflowExecutionCommandAttributes(_) => {
            T::RequestCancelExternalWorkflowExecution
        }
        CA::UpsertWorkflowSearchAttributesCommandAttributes(_) => T::UpsertWorkflowSearchAttributes,
        CA::ModifyWorkflowPropertiesCommandAttributes(_) => T::ModifyWorkflowProperties,
        CA::ProtocolMessageCommandAttributes(_) => T::ProtocolMessage,
        CA::ScheduleNexusOperationCommandAttributes(_) => T::ScheduleNexusOperation,
        CA::RequestCancelNexusOperationCommandAttributes(_) => T::RequestCancelNexusOperation,
    }
}
