//! The commands workflow code issues, in call order: their kinds (which tie a command to its
//! future and to its event in history) and [`WfContext::push_command`].

use temporalio_protos::temporal::api::command::v1::Command;
use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;

use super::WfContext;

/// The kind of a command, with the sequence number tying it to its future.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CommandKind {
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
    pub kind: CommandKind,
    pub command: Command,
}

impl WfContext {
    pub(crate) fn push_command(&self, kind: CommandKind, attrs: CommandAttributes) {
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

fn command_type(a: &CommandAttributes) -> temporalio_protos::temporal::api::enums::v1::CommandType {
    use temporalio_protos::temporal::api::enums::v1::CommandType as T;
    match a {
        CommandAttributes::ScheduleActivityTaskCommandAttributes(_) => T::ScheduleActivityTask,
        CommandAttributes::StartTimerCommandAttributes(_) => T::StartTimer,
        CommandAttributes::CompleteWorkflowExecutionCommandAttributes(_) => {
            T::CompleteWorkflowExecution
        }
        CommandAttributes::FailWorkflowExecutionCommandAttributes(_) => T::FailWorkflowExecution,
        CommandAttributes::RequestCancelActivityTaskCommandAttributes(_) => {
            T::RequestCancelActivityTask
        }
        CommandAttributes::CancelTimerCommandAttributes(_) => T::CancelTimer,
        CommandAttributes::CancelWorkflowExecutionCommandAttributes(_) => {
            T::CancelWorkflowExecution
        }
        CommandAttributes::ContinueAsNewWorkflowExecutionCommandAttributes(_) => {
            T::ContinueAsNewWorkflowExecution
        }
        CommandAttributes::RecordMarkerCommandAttributes(_) => T::RecordMarker,
        CommandAttributes::StartChildWorkflowExecutionCommandAttributes(_) => {
            T::StartChildWorkflowExecution
        }
        CommandAttributes::SignalExternalWorkflowExecutionCommandAttributes(_) => {
            T::SignalExternalWorkflowExecution
        }
        CommandAttributes::RequestCancelExternalWorkflowExecutionCommandAttributes(_) => {
            T::RequestCancelExternalWorkflowExecution
        }
        CommandAttributes::UpsertWorkflowSearchAttributesCommandAttributes(_) => {
            T::UpsertWorkflowSearchAttributes
        }
        CommandAttributes::ModifyWorkflowPropertiesCommandAttributes(_) => {
            T::ModifyWorkflowProperties
        }
        CommandAttributes::ProtocolMessageCommandAttributes(_) => T::ProtocolMessage,
        CommandAttributes::ScheduleNexusOperationCommandAttributes(_) => T::ScheduleNexusOperation,
        CommandAttributes::RequestCancelNexusOperationCommandAttributes(_) => {
            T::RequestCancelNexusOperation
        }
    }
}
