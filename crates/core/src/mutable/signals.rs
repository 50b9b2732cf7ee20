//! Signals and cancel requests reaching a running run (from clients or other runs).

use perdure_proto::api::common::v1::{Payloads, WorkflowExecution};
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;

use super::Tx;

/// How many signal request ids are remembered for dedup.
const SIGNAL_DEDUP: usize = 100;

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

impl Tx<'_> {
    /// Records a signal (deduplicated by request id) and schedules a workflow task.
    pub fn signal(&mut self, s: SignalParams) {
        if !s.request_id.is_empty() {
            if self.state.signal_request_ids.contains(&s.request_id) {
                return;
            }
            self.state.signal_request_ids.push(s.request_id.clone());
            if self.state.signal_request_ids.len() > SIGNAL_DEDUP {
                self.state.signal_request_ids.remove(0);
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
        if self.state.cancel_requested {
            return;
        }
        self.state.cancel_requested = true;
        self.state.cancel_request_id = request_id.to_string();
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
}
