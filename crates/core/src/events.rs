//! Small helpers around `HistoryEvent`: the event type of an attributes variant, and the
//! fix-ups that give buffered events their final ids when they are flushed.

use perdure_proto::api::enums::v1::EventType;
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::history::v1::history_event::Attributes as A;

/// The `EventType` matching an attributes variant.
pub fn event_type(a: &A) -> EventType {
    use EventType as E;
    match a {
        A::WorkflowExecutionStartedEventAttributes(_) => E::WorkflowExecutionStarted,
        A::WorkflowExecutionCompletedEventAttributes(_) => E::WorkflowExecutionCompleted,
        A::WorkflowExecutionFailedEventAttributes(_) => E::WorkflowExecutionFailed,
        A::WorkflowExecutionTimedOutEventAttributes(_) => E::WorkflowExecutionTimedOut,
        A::WorkflowTaskScheduledEventAttributes(_) => E::WorkflowTaskScheduled,
        A::WorkflowTaskStartedEventAttributes(_) => E::WorkflowTaskStarted,
        A::WorkflowTaskCompletedEventAttributes(_) => E::WorkflowTaskCompleted,
        A::WorkflowTaskTimedOutEventAttributes(_) => E::WorkflowTaskTimedOut,
        A::WorkflowTaskFailedEventAttributes(_) => E::WorkflowTaskFailed,
        A::ActivityTaskScheduledEventAttributes(_) => E::ActivityTaskScheduled,
        A::ActivityTaskStartedEventAttributes(_) => E::ActivityTaskStarted,
        A::ActivityTaskCompletedEventAttributes(_) => E::ActivityTaskCompleted,
        A::ActivityTaskFailedEventAttributes(_) => E::ActivityTaskFailed,
        A::ActivityTaskTimedOutEventAttributes(_) => E::ActivityTaskTimedOut,
        A::TimerStartedEventAttributes(_) => E::TimerStarted,
        A::TimerFiredEventAttributes(_) => E::TimerFired,
        A::ActivityTaskCancelRequestedEventAttributes(_) => E::ActivityTaskCancelRequested,
        A::ActivityTaskCanceledEventAttributes(_) => E::ActivityTaskCanceled,
        A::TimerCanceledEventAttributes(_) => E::TimerCanceled,
        A::MarkerRecordedEventAttributes(_) => E::MarkerRecorded,
        A::WorkflowExecutionSignaledEventAttributes(_) => E::WorkflowExecutionSignaled,
        A::WorkflowExecutionTerminatedEventAttributes(_) => E::WorkflowExecutionTerminated,
        A::WorkflowExecutionCancelRequestedEventAttributes(_) => {
            E::WorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionCanceledEventAttributes(_) => E::WorkflowExecutionCanceled,
        A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            E::RequestCancelExternalWorkflowExecutionInitiated
        }
        A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(_) => {
            E::RequestCancelExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionCancelRequestedEventAttributes(_) => {
            E::ExternalWorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionContinuedAsNewEventAttributes(_) => E::WorkflowExecutionContinuedAsNew,
        A::StartChildWorkflowExecutionInitiatedEventAttributes(_) => {
            E::StartChildWorkflowExecutionInitiated
        }
        A::StartChildWorkflowExecutionFailedEventAttributes(_) => {
            E::StartChildWorkflowExecutionFailed
        }
        A::ChildWorkflowExecutionStartedEventAttributes(_) => E::ChildWorkflowExecutionStarted,
        A::ChildWorkflowExecutionCompletedEventAttributes(_) => E::ChildWorkflowExecutionCompleted,
        A::ChildWorkflowExecutionFailedEventAttributes(_) => E::ChildWorkflowExecutionFailed,
        A::ChildWorkflowExecutionCanceledEventAttributes(_) => E::ChildWorkflowExecutionCanceled,
        A::ChildWorkflowExecutionTimedOutEventAttributes(_) => E::ChildWorkflowExecutionTimedOut,
        A::ChildWorkflowExecutionTerminatedEventAttributes(_) => {
            E::ChildWorkflowExecutionTerminated
        }
        A::SignalExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            E::SignalExternalWorkflowExecutionInitiated
        }
        A::SignalExternalWorkflowExecutionFailedEventAttributes(_) => {
            E::SignalExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionSignaledEventAttributes(_) => {
            E::ExternalWorkflowExecutionSignaled
        }
        A::UpsertWorkflowSearchAttributesEventAttributes(_) => E::UpsertWorkflowSearchAttributes,
        A::WorkflowExecutionUpdateAcceptedEventAttributes(_) => E::WorkflowExecutionUpdateAccepted,
        A::WorkflowExecutionUpdateRejectedEventAttributes(_) => E::WorkflowExecutionUpdateRejected,
        A::WorkflowExecutionUpdateCompletedEventAttributes(_) => {
            E::WorkflowExecutionUpdateCompleted
        }
        A::WorkflowPropertiesModifiedEventAttributes(_) => E::WorkflowPropertiesModified,
        A::WorkflowExecutionUpdateAdmittedEventAttributes(_) => E::WorkflowExecutionUpdateAdmitted,
        A::WorkflowExecutionOptionsUpdatedEventAttributes(_) => E::WorkflowExecutionOptionsUpdated,
        _ => E::Unspecified,
    }
}

/// Whether an event closes its run.
pub fn is_close_event(e: &HistoryEvent) -> bool {
    use EventType as E;
    matches!(
        EventType::try_from(e.event_type).unwrap_or(E::Unspecified),
        E::WorkflowExecutionCompleted
            | E::WorkflowExecutionFailed
            | E::WorkflowExecutionTimedOut
            | E::WorkflowExecutionCanceled
            | E::WorkflowExecutionTerminated
            | E::WorkflowExecutionContinuedAsNew
    )
}

/// Placeholder for "the id of the event just before me", used by a buffered activity outcome
/// whose ActivityTaskStarted is buffered with it.
pub const PREVIOUS_EVENT: i64 = -1;

/// Gives buffered events their ids (from `next_id`) and resolves [`PREVIOUS_EVENT`] references
/// and references to buffered child-started events. Returns the next free id and the ids assigned
/// to child-started events, keyed by initiated id.
pub fn assign_ids(events: &mut [HistoryEvent], mut next_id: i64) -> (i64, Vec<(i64, i64)>) {
    let mut child_started = Vec::new();
    for e in events.iter_mut() {
        e.event_id = next_id;
        match e.attributes.as_mut() {
            Some(A::ActivityTaskCompletedEventAttributes(a)) if a.started_event_id < 0 => {
                a.started_event_id = next_id - 1
            }
            Some(A::ActivityTaskFailedEventAttributes(a)) if a.started_event_id < 0 => {
                a.started_event_id = next_id - 1
            }
            Some(A::ActivityTaskTimedOutEventAttributes(a)) if a.started_event_id < 0 => {
                a.started_event_id = next_id - 1
            }
            Some(A::ActivityTaskCanceledEventAttributes(a)) if a.started_event_id < 0 => {
                a.started_event_id = next_id - 1
            }
            Some(A::ChildWorkflowExecutionStartedEventAttributes(a)) => {
                child_started.push((a.initiated_event_id, next_id))
            }
            _ => {}
        }
        next_id += 1;
    }
    // A child that started and finished inside one buffer refers to its started event.
    let lookup = |initiated: i64| {
        child_started
            .iter()
            .find(|(i, _)| *i == initiated)
            .map(|(_, s)| *s)
    };
    for e in events.iter_mut() {
        let (initiated, started) = match e.attributes.as_mut() {
            Some(A::ChildWorkflowExecutionCompletedEventAttributes(a)) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            Some(A::ChildWorkflowExecutionFailedEventAttributes(a)) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            Some(A::ChildWorkflowExecutionCanceledEventAttributes(a)) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            Some(A::ChildWorkflowExecutionTimedOutEventAttributes(a)) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            Some(A::ChildWorkflowExecutionTerminatedEventAttributes(a)) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            _ => continue,
        };
        if *started < 0
            && let Some(s) = lookup(initiated)
        {
            *started = s;
        }
    }
    (next_id, child_started)
}
