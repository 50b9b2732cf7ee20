//! Workers: long polls for workflow and activity tasks, their completions, failures and
//! heartbeats, sticky queue resets and worker shutdown.

use perdure_proto::api::workflowservice::v1::*;
use tonic::Request;

use super::deadline::{LONG_POLL_DEFAULT, deadline};
use super::{R, WorkflowApi, ok, status};

impl WorkflowApi {
    pub(super) async fn poll_workflow_task_queue(
        &self,
        r: Request<PollWorkflowTaskQueueRequest>,
    ) -> R<PollWorkflowTaskQueueResponse> {
        let d = deadline(&r, LONG_POLL_DEFAULT);
        ok(self
            .engine
            .poll_workflow_task(r.into_inner(), d)
            .await
            .map_err(status)?)
    }

    pub(super) async fn respond_workflow_task_completed(
        &self,
        r: Request<RespondWorkflowTaskCompletedRequest>,
    ) -> R<RespondWorkflowTaskCompletedResponse> {
        ok(self
            .engine
            .complete_workflow_task(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn respond_workflow_task_failed(
        &self,
        r: Request<RespondWorkflowTaskFailedRequest>,
    ) -> R<RespondWorkflowTaskFailedResponse> {
        self.engine
            .fail_workflow_task(r.into_inner())
            .await
            .map_err(status)?;
        ok(RespondWorkflowTaskFailedResponse::default())
    }

    pub(super) async fn respond_query_task_completed(
        &self,
        r: Request<RespondQueryTaskCompletedRequest>,
    ) -> R<RespondQueryTaskCompletedResponse> {
        self.engine
            .complete_query_task(r.into_inner())
            .await
            .map_err(status)?;
        ok(RespondQueryTaskCompletedResponse::default())
    }

    pub(super) async fn poll_activity_task_queue(
        &self,
        r: Request<PollActivityTaskQueueRequest>,
    ) -> R<PollActivityTaskQueueResponse> {
        let d = deadline(&r, LONG_POLL_DEFAULT);
        ok(self
            .engine
            .poll_activity_task(r.into_inner(), d)
            .await
            .map_err(status)?)
    }

    pub(super) async fn respond_activity_task_completed(
        &self,
        r: Request<RespondActivityTaskCompletedRequest>,
    ) -> R<RespondActivityTaskCompletedResponse> {
        self.engine
            .complete_activity(r.into_inner())
            .await
            .map_err(status)?;
        ok(RespondActivityTaskCompletedResponse::default())
    }

    pub(super) async fn respond_activity_task_completed_by_id(
        &self,
        r: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> R<RespondActivityTaskCompletedByIdResponse> {
        self.engine
            .complete_activity_by_id(r.into_inner())
            .await
            .map_err(status)?;
        ok(RespondActivityTaskCompletedByIdResponse::default())
    }

    pub(super) async fn respond_activity_task_failed(
        &self,
        r: Request<RespondActivityTaskFailedRequest>,
    ) -> R<RespondActivityTaskFailedResponse> {
        let r = r.into_inner();
        self.engine
            .fail_activity(
                Some((r.namespace.as_str(), r.task_token.as_slice())),
                None,
                r.failure,
                r.last_heartbeat_details,
                r.identity,
            )
            .await
            .map_err(status)?;
        ok(RespondActivityTaskFailedResponse::default())
    }

    pub(super) async fn respond_activity_task_failed_by_id(
        &self,
        r: Request<RespondActivityTaskFailedByIdRequest>,
    ) -> R<RespondActivityTaskFailedByIdResponse> {
        let r = r.into_inner();
        self.engine
            .fail_activity(
                None,
                Some((&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)),
                r.failure,
                r.last_heartbeat_details,
                r.identity,
            )
            .await
            .map_err(status)?;
        ok(RespondActivityTaskFailedByIdResponse::default())
    }

    pub(super) async fn respond_activity_task_canceled(
        &self,
        r: Request<RespondActivityTaskCanceledRequest>,
    ) -> R<RespondActivityTaskCanceledResponse> {
        let r = r.into_inner();
        self.engine
            .cancel_activity(
                Some((r.namespace.as_str(), r.task_token.as_slice())),
                None,
                r.details,
                r.identity,
            )
            .await
            .map_err(status)?;
        ok(RespondActivityTaskCanceledResponse::default())
    }

    pub(super) async fn respond_activity_task_canceled_by_id(
        &self,
        r: Request<RespondActivityTaskCanceledByIdRequest>,
    ) -> R<RespondActivityTaskCanceledByIdResponse> {
        let r = r.into_inner();
        self.engine
            .cancel_activity(
                None,
                Some((&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)),
                r.details,
                r.identity,
            )
            .await
            .map_err(status)?;
        ok(RespondActivityTaskCanceledByIdResponse::default())
    }

    pub(super) async fn record_activity_task_heartbeat(
        &self,
        r: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> R<RecordActivityTaskHeartbeatResponse> {
        let r = r.into_inner();
        let reply = self
            .engine
            .heartbeat_activity(
                Some((r.namespace.as_str(), r.task_token.as_slice())),
                None,
                r.details,
            )
            .await
            .map_err(status)?;
        ok(RecordActivityTaskHeartbeatResponse {
            cancel_requested: reply.cancel_requested,
            activity_paused: reply.activity_paused,
            activity_reset: reply.activity_reset,
        })
    }

    pub(super) async fn record_activity_task_heartbeat_by_id(
        &self,
        r: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> R<RecordActivityTaskHeartbeatByIdResponse> {
        let r = r.into_inner();
        let reply = self
            .engine
            .heartbeat_activity(
                None,
                Some((&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)),
                r.details,
            )
            .await
            .map_err(status)?;
        ok(RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested: reply.cancel_requested,
            activity_paused: reply.activity_paused,
            activity_reset: reply.activity_reset,
        })
    }

    pub(super) async fn reset_sticky_task_queue(
        &self,
        r: Request<ResetStickyTaskQueueRequest>,
    ) -> R<ResetStickyTaskQueueResponse> {
        self.engine
            .reset_sticky(r.into_inner())
            .await
            .map_err(status)?;
        ok(ResetStickyTaskQueueResponse::default())
    }

    pub(super) async fn shutdown_worker(
        &self,
        r: Request<ShutdownWorkerRequest>,
    ) -> R<ShutdownWorkerResponse> {
        self.engine
            .shutdown_worker(r.into_inner())
            .await
            .map_err(status)?;
        ok(ShutdownWorkerResponse::default())
    }

    pub(super) async fn record_worker_heartbeat(
        &self,
        r: Request<RecordWorkerHeartbeatRequest>,
    ) -> R<RecordWorkerHeartbeatResponse> {
        let r = r.into_inner();
        self.engine
            .record_worker_heartbeats(&r.namespace, r.worker_heartbeat)
            .map_err(status)?;
        ok(RecordWorkerHeartbeatResponse::default())
    }

    pub(super) async fn list_workers(
        &self,
        r: Request<ListWorkersRequest>,
    ) -> R<ListWorkersResponse> {
        ok(self.engine.list_workers(r.into_inner()).map_err(status)?)
    }

    pub(super) async fn count_workers(
        &self,
        r: Request<CountWorkersRequest>,
    ) -> R<CountWorkersResponse> {
        ok(self.engine.count_workers(r.into_inner()).map_err(status)?)
    }

    pub(super) async fn describe_worker(
        &self,
        r: Request<DescribeWorkerRequest>,
    ) -> R<DescribeWorkerResponse> {
        ok(self
            .engine
            .describe_worker(r.into_inner())
            .map_err(status)?)
    }
}
