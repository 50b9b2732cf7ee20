//! Child workflows and requests to other runs (signal, cancel): the commands that start them
//! and the events that report how they went.

use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{WorkflowExecution, WorkflowType};
use perdure_proto::api::enums::v1::ParentClosePolicy;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;
use prost::Message as _;

use crate::clock::convert::pdur;
use crate::state::*;

use super::{DEFAULT_TASK_TIMEOUT, Effect, Tx, normal_queue};

impl Tx<'_> {
    /// Applies a StartChildWorkflowExecution command; the shell starts the child after the commit.
    pub(super) fn start_child(
        &mut self,
        s: StartChildWorkflowExecutionCommandAttributes,
        wtc: i64,
    ) {
        let namespace = if s.namespace.is_empty() {
            self.state.namespace.clone()
        } else {
            s.namespace.clone()
        };
        let task_queue = match s.task_queue.as_ref() {
            Some(q) if !q.name.is_empty() => q.name.clone(),
            _ => self.state.task_queue.clone(),
        };
        let policy = if s.parent_close_policy == 0 {
            ParentClosePolicy::Terminate as i32
        } else {
            s.parent_close_policy
        };
        let attrs = StartChildWorkflowExecutionInitiatedEventAttributes {
            namespace: namespace.clone(),
            namespace_id: self.state.namespace_id.clone(),
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
        self.state.children.push(ChildState {
            initiated_event_id: id,
            namespace,
            workflow_id: s.workflow_id,
            workflow_type: s.workflow_type.map(|t| t.name).unwrap_or_default(),
            run_id: String::new(),
            started_event_id: 0,
            parent_close_policy: policy,
            initiated: encoded,
            user_metadata: None,
        });
        self.effects.push(Effect::StartChild {
            initiated_event_id: id,
        });
    }

    /// Applies a SignalExternalWorkflowExecution command; the shell delivers it after the commit.
    pub(super) fn signal_external(
        &mut self,
        s: SignalExternalWorkflowExecutionCommandAttributes,
        wtc: i64,
    ) {
        let namespace = if s.namespace.is_empty() {
            self.state.namespace.clone()
        } else {
            s.namespace.clone()
        };
        let exec = s.execution.clone().unwrap_or_default();
        let id = self.append(A::SignalExternalWorkflowExecutionInitiatedEventAttributes(
            SignalExternalWorkflowExecutionInitiatedEventAttributes {
                workflow_task_completed_event_id: wtc,
                namespace: namespace.clone(),
                namespace_id: self.state.namespace_id.clone(),
                workflow_execution: Some(exec.clone()),
                signal_name: s.signal_name.clone(),
                input: s.input.clone(),
                control: s.control.clone(),
                child_workflow_only: s.child_workflow_only,
                header: s.header.clone(),
            },
        ));
        self.state.external_requests.push(ExternalRequestState {
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
    }

    /// Applies a RequestCancelExternalWorkflowExecution command; the shell delivers it after the
    /// commit.
    pub(super) fn request_cancel_external(
        &mut self,
        s: RequestCancelExternalWorkflowExecutionCommandAttributes,
        wtc: i64,
    ) {
        let namespace = if s.namespace.is_empty() {
            self.state.namespace.clone()
        } else {
            s.namespace.clone()
        };
        let id = self.append(
            A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
                RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
                    workflow_task_completed_event_id: wtc,
                    namespace: namespace.clone(),
                    namespace_id: self.state.namespace_id.clone(),
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
        self.state.external_requests.push(ExternalRequestState {
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
    }

    fn child_index(&self, initiated: i64) -> Option<usize> {
        self.state
            .children
            .iter()
            .position(|c| c.initiated_event_id == initiated)
    }

    pub fn child_started(&mut self, initiated: i64, run_id: &str) -> bool {
        let Some(i) = self.child_index(initiated) else {
            return false;
        };
        if !self.state.children[i].run_id.is_empty() {
            return false;
        }
        let c = self.state.children[i].clone();
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
        let ch = &mut self.state.children[i];
        ch.run_id = run_id.to_string();
        ch.started_event_id = id;
        self.schedule_wft();
        true
    }

    pub fn child_start_failed(&mut self, initiated: i64) -> bool {
        let Some(i) = self.child_index(initiated) else {
            return false;
        };
        let c = self.state.children.remove(i);
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
        let c = self.state.children.remove(i);
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
            .state
            .external_requests
            .iter()
            .position(|r| r.initiated_event_id == initiated)
        else {
            return false;
        };
        let r = self.state.external_requests.remove(i);
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
}
