//! Child workflows: [`WfContext::child_workflow`] starts one, [`ChildHandle`] awaits it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::command::v1::StartChildWorkflowExecutionCommandAttributes;
use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;
use temporalio_protos::temporal::api::common::v1::{Payloads, WorkflowType};

use super::activity::poll_result;
use super::commands::CommandKind;
use super::{ChildOptions, WfContext};
use crate::common::{RetryPolicy, normal_task_queue, proto_duration};
use crate::failure::ActivityError;
use crate::payload::ToPayloads;

#[derive(Debug, Default)]
pub(crate) struct ChildSlot {
    pub workflow_type: String,
    pub workflow_id: String,
    pub run_id: String,
    pub initiated_event_id: i64,
    pub result: Option<Result<Option<Payloads>, ActivityError>>,
}

impl WfContext {
    /// Starts a child workflow; the handle resolves to its result.
    pub fn child_workflow<O: DeserializeOwned>(
        &self,
        workflow_type: &str,
        args: impl ToPayloads,
        options: ChildOptions,
    ) -> ChildHandle<O> {
        let info = self.info();
        let seq = {
            let mut s = self.state.borrow_mut();
            let seq = s.next_child;
            s.next_child += 1;
            seq
        };
        let workflow_id = options
            .workflow_id
            .clone()
            .unwrap_or_else(|| format!("{}-child-{seq}", info.workflow_id));
        self.state.borrow_mut().children.insert(
            seq,
            ChildSlot {
                workflow_type: workflow_type.to_string(),
                workflow_id: workflow_id.clone(),
                ..Default::default()
            },
        );
        let input = match args.to_payloads() {
            Ok(p) => Some(p).filter(|p| !p.payloads.is_empty()),
            Err(e) => {
                self.resolve_child(seq, Err(e.into()));
                return ChildHandle::new(self.clone(), seq);
            }
        };
        self.push_command(
            CommandKind::Child(seq),
            CommandAttributes::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_id,
                    workflow_type: Some(WorkflowType {
                        name: workflow_type.to_string(),
                    }),
                    task_queue: Some(normal_task_queue(
                        options.task_queue.clone().unwrap_or(info.task_queue),
                    )),
                    input,
                    workflow_execution_timeout: options.execution_timeout.map(proto_duration),
                    workflow_run_timeout: options.run_timeout.map(proto_duration),
                    parent_close_policy: options.parent_close_policy.map(|p| p as i32).unwrap_or(0),
                    retry_policy: options.retry_policy.as_ref().map(RetryPolicy::to_proto),
                    ..Default::default()
                },
            ),
        );
        ChildHandle::new(self.clone(), seq)
    }

    pub(crate) fn resolve_child(&self, seq: u32, r: Result<Option<Payloads>, ActivityError>) {
        let mut s = self.state.borrow_mut();
        if let Some(c) = s.children.get_mut(&seq)
            && c.result.is_none()
        {
            c.result = Some(r);
            s.progress += 1;
        }
    }
}

/// A started child workflow: await it for its result.
pub struct ChildHandle<O> {
    ctx: WfContext,
    seq: u32,
    counted: bool,
    _out: PhantomData<fn() -> O>,
}

impl<O> ChildHandle<O> {
    fn new(ctx: WfContext, seq: u32) -> Self {
        ChildHandle {
            ctx,
            seq,
            counted: false,
            _out: PhantomData,
        }
    }

    /// The child's workflow id.
    pub fn workflow_id(&self) -> String {
        self.ctx
            .state
            .borrow()
            .children
            .get(&self.seq)
            .map(|c| c.workflow_id.clone())
            .unwrap_or_default()
    }
}

impl<O: DeserializeOwned> Future for ChildHandle<O> {
    type Output = Result<O, ActivityError>;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let seq = self.seq;
        let this = &mut *self;
        poll_result(&this.ctx, &mut this.counted, |s| {
            s.children.get(&seq).and_then(|c| c.result.clone())
        })
    }
}
