//! Workflow lifecycle: start, signal, signal-with-start, cancel, terminate, delete, reset,
//! describe, history, query, update, and update-with-start (ExecuteMultiOperation).

use std::time::Instant;

use perdure_proto::api::errordetails::v1 as details;
use perdure_proto::api::workflowservice::v1::*;
use perdure_proto::google::rpc::Status as RpcStatus;
use prost::Message;
use tonic::{Code, Request, Status};

use super::deadline::{CALL_DEFAULT, LONG_POLL_DEFAULT, deadline};
use super::status::with_detail;
use super::{R, WorkflowApi, ok, status};

/// A MultiOperationExecutionFailure status: `failed` at index `at`, every other op aborted.
fn multi_op_failure(failed: Status, at: usize, n: usize) -> Status {
    let own = RpcStatus::decode(failed.details())
        .map(|s| s.details)
        .unwrap_or_default();
    let statuses = (0..n)
        .map(|i| {
            if i == at {
                details::multi_operation_execution_failure::OperationStatus {
                    code: failed.code() as i32,
                    message: failed.message().to_string(),
                    details: own.clone(),
                }
            } else {
                details::multi_operation_execution_failure::OperationStatus {
                    code: Code::Aborted as i32,
                    message: "Operation was aborted.".into(),
                    details: vec![],
                }
            }
        })
        .collect();
    with_detail(
        failed.code(),
        format!(
            "Update-with-Start could not be executed: {}",
            failed.message()
        ),
        details::MultiOperationExecutionFailure { statuses },
    )
}

impl WorkflowApi {
    pub(super) async fn start_workflow_execution(
        &self,
        r: Request<StartWorkflowExecutionRequest>,
    ) -> R<StartWorkflowExecutionResponse> {
        let req = r.into_inner();
        let namespace = req.namespace.clone();
        let o = self.engine.start_workflow(req).await.map_err(status)?;
        // Eager start: only a run this request created hands its first task to the caller.
        let eager_workflow_task = match o.eager_task {
            Some(started) => Some(
                self.engine
                    .eager_workflow_task(&namespace, &o.run_id, started)
                    .await
                    .map_err(status)?,
            ),
            None => None,
        };
        ok(StartWorkflowExecutionResponse {
            run_id: o.run_id,
            started: o.started,
            status: perdure_proto::api::enums::v1::WorkflowExecutionStatus::Running as i32,
            eager_workflow_task,
            ..Default::default()
        })
    }

    pub(super) async fn signal_with_start_workflow_execution(
        &self,
        r: Request<SignalWithStartWorkflowExecutionRequest>,
    ) -> R<SignalWithStartWorkflowExecutionResponse> {
        let o = self
            .engine
            .signal_with_start(r.into_inner())
            .await
            .map_err(status)?;
        ok(SignalWithStartWorkflowExecutionResponse {
            run_id: o.run_id,
            started: o.started,
            ..Default::default()
        })
    }

    pub(super) async fn signal_workflow_execution(
        &self,
        r: Request<SignalWorkflowExecutionRequest>,
    ) -> R<SignalWorkflowExecutionResponse> {
        self.engine
            .signal_workflow(r.into_inner())
            .await
            .map_err(status)?;
        ok(SignalWorkflowExecutionResponse::default())
    }

    pub(super) async fn request_cancel_workflow_execution(
        &self,
        r: Request<RequestCancelWorkflowExecutionRequest>,
    ) -> R<RequestCancelWorkflowExecutionResponse> {
        self.engine
            .request_cancel(r.into_inner())
            .await
            .map_err(status)?;
        ok(RequestCancelWorkflowExecutionResponse::default())
    }

    pub(super) async fn terminate_workflow_execution(
        &self,
        r: Request<TerminateWorkflowExecutionRequest>,
    ) -> R<TerminateWorkflowExecutionResponse> {
        self.engine
            .terminate(r.into_inner())
            .await
            .map_err(status)?;
        ok(TerminateWorkflowExecutionResponse::default())
    }

    pub(super) async fn delete_workflow_execution(
        &self,
        r: Request<DeleteWorkflowExecutionRequest>,
    ) -> R<DeleteWorkflowExecutionResponse> {
        self.engine
            .delete_workflow(r.into_inner())
            .await
            .map_err(status)?;
        ok(DeleteWorkflowExecutionResponse::default())
    }

    pub(super) async fn reset_workflow_execution(
        &self,
        r: Request<ResetWorkflowExecutionRequest>,
    ) -> R<ResetWorkflowExecutionResponse> {
        let run_id = self
            .engine
            .reset_workflow(r.into_inner())
            .await
            .map_err(status)?;
        ok(ResetWorkflowExecutionResponse { run_id })
    }

    pub(super) async fn describe_workflow_execution(
        &self,
        r: Request<DescribeWorkflowExecutionRequest>,
    ) -> R<DescribeWorkflowExecutionResponse> {
        ok(self.engine.describe(r.into_inner()).await.map_err(status)?)
    }

    pub(super) async fn get_workflow_execution_history(
        &self,
        r: Request<GetWorkflowExecutionHistoryRequest>,
    ) -> R<GetWorkflowExecutionHistoryResponse> {
        let d = deadline(&r, LONG_POLL_DEFAULT);
        ok(self
            .engine
            .get_history(r.into_inner(), d)
            .await
            .map_err(status)?)
    }

    pub(super) async fn get_workflow_execution_history_reverse(
        &self,
        r: Request<GetWorkflowExecutionHistoryReverseRequest>,
    ) -> R<GetWorkflowExecutionHistoryReverseResponse> {
        ok(self
            .engine
            .get_history_reverse(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn query_workflow(
        &self,
        r: Request<QueryWorkflowRequest>,
    ) -> R<QueryWorkflowResponse> {
        let d = deadline(&r, CALL_DEFAULT);
        ok(self.engine.query(r.into_inner(), d).await.map_err(status)?)
    }

    pub(super) async fn update_workflow_execution(
        &self,
        r: Request<UpdateWorkflowExecutionRequest>,
    ) -> R<UpdateWorkflowExecutionResponse> {
        let d = deadline(&r, CALL_DEFAULT);
        ok(self
            .engine
            .update(r.into_inner(), d)
            .await
            .map_err(status)?)
    }

    pub(super) async fn poll_workflow_execution_update(
        &self,
        r: Request<PollWorkflowExecutionUpdateRequest>,
    ) -> R<PollWorkflowExecutionUpdateResponse> {
        let d = deadline(&r, LONG_POLL_DEFAULT);
        ok(self
            .engine
            .poll_update(r.into_inner(), d)
            .await
            .map_err(status)?)
    }

    pub(super) async fn execute_multi_operation(
        &self,
        r: Request<ExecuteMultiOperationRequest>,
    ) -> R<ExecuteMultiOperationResponse> {
        let d = deadline(&r, CALL_DEFAULT);
        ok(self.update_with_start(r.into_inner(), d).await?)
    }

    /// ExecuteMultiOperation: update-with-start, i.e. [StartWorkflow, UpdateWorkflow] on one id.
    async fn update_with_start(
        &self,
        r: ExecuteMultiOperationRequest,
        deadline: Instant,
    ) -> Result<ExecuteMultiOperationResponse, Status> {
        use execute_multi_operation_request::operation::Operation as Op;
        use execute_multi_operation_response::{
            Response as OpResponse, response::Response as Resp,
        };
        let ops: Vec<_> = r
            .operations
            .into_iter()
            .filter_map(|o| o.operation)
            .collect();
        let (mut start, mut update) = match <[Op; 2]>::try_from(ops) {
            Ok([Op::StartWorkflow(s), Op::UpdateWorkflow(u)]) => (s, u),
            _ => {
                return Err(Status::invalid_argument(
                    "ExecuteMultiOperation supports exactly [StartWorkflow, UpdateWorkflow].",
                ));
            }
        };
        start.namespace = r.namespace.clone();
        update.namespace = r.namespace.clone();
        let wf_id = update
            .workflow_execution
            .as_ref()
            .map(|e| e.workflow_id.clone())
            .unwrap_or_default();
        if wf_id != start.workflow_id {
            return Err(multi_op_failure(
                Status::invalid_argument("Update and Start must target the same workflow id."),
                1,
                2,
            ));
        }
        use perdure_proto::api::enums::v1::WorkflowIdConflictPolicy as Conflict;
        if start.workflow_id_conflict_policy == Conflict::Unspecified as i32 {
            return Err(multi_op_failure(
                Status::invalid_argument(
                    "WorkflowIdConflictPolicy must be set for Update-with-Start.",
                ),
                0,
                2,
            ));
        }
        let started = self
            .engine
            .start_workflow(start)
            .await
            .map_err(|e| multi_op_failure(status(e), 0, 2))?;
        update.workflow_execution = Some(perdure_proto::api::common::v1::WorkflowExecution {
            workflow_id: wf_id,
            run_id: started.run_id.clone(),
        });
        let updated = self
            .engine
            .update(update, deadline)
            .await
            .map_err(|e| multi_op_failure(status(e), 1, 2))?;
        Ok(ExecuteMultiOperationResponse {
            responses: vec![
                OpResponse {
                    response: Some(Resp::StartWorkflow(StartWorkflowExecutionResponse {
                        run_id: started.run_id,
                        started: started.started,
                        status: perdure_proto::api::enums::v1::WorkflowExecutionStatus::Running
                            as i32,
                        ..Default::default()
                    })),
                },
                OpResponse {
                    response: Some(Resp::UpdateWorkflow(updated)),
                },
            ],
        })
    }
}
