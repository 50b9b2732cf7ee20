//! Other workflows: [`WfContext::signal_external`] and [`WfContext::cancel_external`];
//! [`ExternalHandle`] resolves once the request is delivered.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;
use temporalio_protos::temporal::api::command::v1::{
    RequestCancelExternalWorkflowExecutionCommandAttributes,
    SignalExternalWorkflowExecutionCommandAttributes,
};
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;

use super::WfContext;
use super::commands::CommandKind;
use crate::payload::ToPayloads;

impl WfContext {
    fn external_seq(&self) -> u32 {
        let mut s = self.state.borrow_mut();
        let seq = s.next_external;
        s.next_external += 1;
        s.externals.insert(seq, None);
        seq
    }

    pub(crate) fn resolve_external(&self, seq: u32, r: Result<(), String>) {
        let mut s = self.state.borrow_mut();
        if let Some(slot) = s.externals.get_mut(&seq)
            && slot.is_none()
        {
            *slot = Some(r);
            s.progress += 1;
        }
    }

    /// Signals another workflow (its latest run, or `run_id`); resolves once delivered.
    pub fn signal_external(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        signal: &str,
        args: impl ToPayloads,
    ) -> ExternalHandle {
        let seq = self.external_seq();
        match args.to_payloads() {
            Ok(input) => self.push_command(
                CommandKind::SignalExternal(seq),
                CommandAttributes::SignalExternalWorkflowExecutionCommandAttributes(
                    SignalExternalWorkflowExecutionCommandAttributes {
                        execution: Some(WorkflowExecution {
                            workflow_id: workflow_id.to_string(),
                            run_id: run_id.unwrap_or_default().to_string(),
                        }),
                        signal_name: signal.to_string(),
                        input: Some(input),
                        ..Default::default()
                    },
                ),
            ),
            Err(e) => self.resolve_external(seq, Err(e.to_string())),
        }
        ExternalHandle {
            ctx: self.clone(),
            seq,
            counted: false,
        }
    }

    /// Requests cancellation of another workflow; resolves once the request is delivered.
    pub fn cancel_external(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        reason: &str,
    ) -> ExternalHandle {
        let seq = self.external_seq();
        self.push_command(
            CommandKind::CancelExternal(seq),
            CommandAttributes::RequestCancelExternalWorkflowExecutionCommandAttributes(
                RequestCancelExternalWorkflowExecutionCommandAttributes {
                    workflow_id: workflow_id.to_string(),
                    run_id: run_id.unwrap_or_default().to_string(),
                    reason: reason.to_string(),
                    ..Default::default()
                },
            ),
        );
        ExternalHandle {
            ctx: self.clone(),
            seq,
            counted: false,
        }
    }
}

/// A signal or cancellation request sent to another workflow: resolves to `Err(reason)` if it
/// could not be delivered (for example, no such workflow).
pub struct ExternalHandle {
    ctx: WfContext,
    seq: u32,
    counted: bool,
}

impl Future for ExternalHandle {
    type Output = Result<(), String>;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.ctx.count_first_poll(&mut this.counted);
        match self.ctx.state.borrow().externals.get(&self.seq) {
            Some(Some(r)) => Poll::Ready(r.clone()),
            _ => Poll::Pending,
        }
    }
}
