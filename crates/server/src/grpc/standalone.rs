//! Standalone activities: StartActivityExecution, DescribeActivityExecution (and its long
//! poll), PollActivityExecution, ListActivityExecutions, CountActivityExecutions,
//! RequestCancelActivityExecution, TerminateActivityExecution and DeleteActivityExecution (the
//! engine side is `perdure_core::engine::standalone`). Their workers use the ordinary activity
//! task RPCs (`tasks`), and Pause/Unpause/Reset/UpdateActivityExecutionOptions without a
//! workflow id reach them through `activities`.

use perdure_proto::api::workflowservice::v1::*;
use tonic::Request;

use super::deadline::{LONG_POLL_DEFAULT, deadline};
use super::{R, WorkflowApi, ok, status};

impl WorkflowApi {
    pub(super) async fn start_activity_execution(
        &self,
        r: Request<StartActivityExecutionRequest>,
    ) -> R<StartActivityExecutionResponse> {
        ok(self
            .engine
            .start_activity_execution(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn describe_activity_execution(
        &self,
        r: Request<DescribeActivityExecutionRequest>,
    ) -> R<DescribeActivityExecutionResponse> {
        let d = deadline(&r, LONG_POLL_DEFAULT);
        ok(self
            .engine
            .describe_activity_execution(r.into_inner(), d)
            .await
            .map_err(status)?)
    }

    pub(super) async fn poll_activity_execution(
        &self,
        r: Request<PollActivityExecutionRequest>,
    ) -> R<PollActivityExecutionResponse> {
        let d = deadline(&r, LONG_POLL_DEFAULT);
        ok(self
            .engine
            .poll_activity_execution(r.into_inner(), d)
            .await
            .map_err(status)?)
    }

    pub(super) async fn list_activity_executions(
        &self,
        r: Request<ListActivityExecutionsRequest>,
    ) -> R<ListActivityExecutionsResponse> {
        ok(self
            .engine
            .list_activity_executions(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn count_activity_executions(
        &self,
        r: Request<CountActivityExecutionsRequest>,
    ) -> R<CountActivityExecutionsResponse> {
        ok(self
            .engine
            .count_activity_executions(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn request_cancel_activity_execution(
        &self,
        r: Request<RequestCancelActivityExecutionRequest>,
    ) -> R<RequestCancelActivityExecutionResponse> {
        self.engine
            .request_cancel_activity_execution(r.into_inner())
            .await
            .map_err(status)?;
        ok(RequestCancelActivityExecutionResponse {})
    }

    pub(super) async fn terminate_activity_execution(
        &self,
        r: Request<TerminateActivityExecutionRequest>,
    ) -> R<TerminateActivityExecutionResponse> {
        self.engine
            .terminate_activity_execution(r.into_inner())
            .await
            .map_err(status)?;
        ok(TerminateActivityExecutionResponse {})
    }

    pub(super) async fn delete_activity_execution(
        &self,
        r: Request<DeleteActivityExecutionRequest>,
    ) -> R<DeleteActivityExecutionResponse> {
        self.engine
            .delete_activity_execution(r.into_inner())
            .await
            .map_err(status)?;
        ok(DeleteActivityExecutionResponse {})
    }
}
