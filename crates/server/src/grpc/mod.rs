//! The gRPC frontend: `WorkflowService` and `OperatorService` over the engine. The only place
//! that knows gRPC encodings: request deadlines (`grpc-timeout`, in `deadline`), and the mapping
//! of engine errors to status codes with Temporal's error-detail trailers (in `status`).
//!
//! The generated service traits answer UNIMPLEMENTED for every RPC by default. [`WorkflowApi`]
//! overrides the RPCs listed in `implemented!` below, each with the inherent method of the same
//! name in its area module (`namespaces`, `workflows`, `activities`, `batch`, `schedules`,
//! `visibility`, `tasks`, `cluster`);
//! [`Guard`] gives every other RPC Perdure's "unknown method" message and turns a handler's
//! panic into INTERNAL.

mod activities;
mod batch;
mod cluster;
mod deadline;
mod deployments;
mod guard;
mod namespaces;
pub mod operator;
mod schedules;
mod standalone;
mod status;
mod tasks;
mod visibility;
mod workflows;

pub use cluster::{CLUSTER_NAME, SERVER_VERSION, SUPPORTED_CLIENTS};
pub use deadline::{deadline, parse_grpc_timeout};
pub use guard::Guard;
pub use status::status;

use perdure_core::Engine;
use perdure_proto::api::workflowservice::v1::*;
use perdure_proto::service::workflowservice::workflow_service_server::WorkflowService;
use tonic::{Request, Response, Status};

pub(crate) type R<T> = Result<Response<T>, Status>;

/// Responses smaller than this are sent uncompressed even to a client that accepts gzip:
/// compressing a small message costs more CPU (a fresh deflate state each time) than the bytes
/// it saves. Larger ones (histories, big payloads) are compressed.
pub(crate) const COMPRESS_FROM_BYTES: usize = 8 * 1024;

pub(crate) fn ok<T: prost::Message>(t: T) -> R<T> {
    let small = t.encoded_len() < COMPRESS_FROM_BYTES;
    let mut r = Response::new(t);
    if small {
        r.disable_compression();
    }
    Ok(r)
}

/// The WorkflowService implementation.
#[derive(Clone)]
pub struct WorkflowApi {
    pub engine: Engine,
    /// This frontend's gRPC address, as it reports it (partition owner).
    pub address: String,
}

/// Implements `WorkflowService` for the RPCs listed, each by `WorkflowApi`'s inherent method of
/// the same name; the trait's defaults answer the others.
macro_rules! implemented {
    ($($rpc:ident($req:ty) -> $res:ty;)*) => {
        #[tonic::async_trait]
        impl WorkflowService for WorkflowApi {
            $(
                async fn $rpc(&self, r: Request<$req>) -> R<$res> {
                    WorkflowApi::$rpc(self, r).await
                }
            )*
        }
    };
}

implemented! {
    // namespaces
    register_namespace(RegisterNamespaceRequest) -> RegisterNamespaceResponse;
    describe_namespace(DescribeNamespaceRequest) -> DescribeNamespaceResponse;
    list_namespaces(ListNamespacesRequest) -> ListNamespacesResponse;
    update_namespace(UpdateNamespaceRequest) -> UpdateNamespaceResponse;
    deprecate_namespace(DeprecateNamespaceRequest) -> DeprecateNamespaceResponse;
    // workflows
    start_workflow_execution(StartWorkflowExecutionRequest) -> StartWorkflowExecutionResponse;
    signal_with_start_workflow_execution(SignalWithStartWorkflowExecutionRequest) -> SignalWithStartWorkflowExecutionResponse;
    signal_workflow_execution(SignalWorkflowExecutionRequest) -> SignalWorkflowExecutionResponse;
    request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest) -> RequestCancelWorkflowExecutionResponse;
    terminate_workflow_execution(TerminateWorkflowExecutionRequest) -> TerminateWorkflowExecutionResponse;
    delete_workflow_execution(DeleteWorkflowExecutionRequest) -> DeleteWorkflowExecutionResponse;
    reset_workflow_execution(ResetWorkflowExecutionRequest) -> ResetWorkflowExecutionResponse;
    describe_workflow_execution(DescribeWorkflowExecutionRequest) -> DescribeWorkflowExecutionResponse;
    get_workflow_execution_history(GetWorkflowExecutionHistoryRequest) -> GetWorkflowExecutionHistoryResponse;
    get_workflow_execution_history_reverse(GetWorkflowExecutionHistoryReverseRequest) -> GetWorkflowExecutionHistoryReverseResponse;
    query_workflow(QueryWorkflowRequest) -> QueryWorkflowResponse;
    update_workflow_execution(UpdateWorkflowExecutionRequest) -> UpdateWorkflowExecutionResponse;
    poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest) -> PollWorkflowExecutionUpdateResponse;
    execute_multi_operation(ExecuteMultiOperationRequest) -> ExecuteMultiOperationResponse;
    // visibility
    list_workflow_executions(ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse;
    list_open_workflow_executions(ListOpenWorkflowExecutionsRequest) -> ListOpenWorkflowExecutionsResponse;
    list_closed_workflow_executions(ListClosedWorkflowExecutionsRequest) -> ListClosedWorkflowExecutionsResponse;
    scan_workflow_executions(ScanWorkflowExecutionsRequest) -> ScanWorkflowExecutionsResponse;
    count_workflow_executions(CountWorkflowExecutionsRequest) -> CountWorkflowExecutionsResponse;
    get_search_attributes(GetSearchAttributesRequest) -> GetSearchAttributesResponse;
    list_archived_workflow_executions(ListArchivedWorkflowExecutionsRequest) -> ListArchivedWorkflowExecutionsResponse;
    // tasks
    poll_workflow_task_queue(PollWorkflowTaskQueueRequest) -> PollWorkflowTaskQueueResponse;
    respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest) -> RespondWorkflowTaskCompletedResponse;
    respond_workflow_task_failed(RespondWorkflowTaskFailedRequest) -> RespondWorkflowTaskFailedResponse;
    respond_query_task_completed(RespondQueryTaskCompletedRequest) -> RespondQueryTaskCompletedResponse;
    poll_activity_task_queue(PollActivityTaskQueueRequest) -> PollActivityTaskQueueResponse;
    respond_activity_task_completed(RespondActivityTaskCompletedRequest) -> RespondActivityTaskCompletedResponse;
    respond_activity_task_completed_by_id(RespondActivityTaskCompletedByIdRequest) -> RespondActivityTaskCompletedByIdResponse;
    respond_activity_task_failed(RespondActivityTaskFailedRequest) -> RespondActivityTaskFailedResponse;
    respond_activity_task_failed_by_id(RespondActivityTaskFailedByIdRequest) -> RespondActivityTaskFailedByIdResponse;
    respond_activity_task_canceled(RespondActivityTaskCanceledRequest) -> RespondActivityTaskCanceledResponse;
    respond_activity_task_canceled_by_id(RespondActivityTaskCanceledByIdRequest) -> RespondActivityTaskCanceledByIdResponse;
    record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest) -> RecordActivityTaskHeartbeatResponse;
    record_activity_task_heartbeat_by_id(RecordActivityTaskHeartbeatByIdRequest) -> RecordActivityTaskHeartbeatByIdResponse;
    reset_sticky_task_queue(ResetStickyTaskQueueRequest) -> ResetStickyTaskQueueResponse;
    shutdown_worker(ShutdownWorkerRequest) -> ShutdownWorkerResponse;
    record_worker_heartbeat(RecordWorkerHeartbeatRequest) -> RecordWorkerHeartbeatResponse;
    list_workers(ListWorkersRequest) -> ListWorkersResponse;
    count_workers(CountWorkersRequest) -> CountWorkersResponse;
    describe_worker(DescribeWorkerRequest) -> DescribeWorkerResponse;
    // activity operations
    pause_activity(PauseActivityRequest) -> PauseActivityResponse;
    unpause_activity(UnpauseActivityRequest) -> UnpauseActivityResponse;
    reset_activity(ResetActivityRequest) -> ResetActivityResponse;
    update_activity_options(UpdateActivityOptionsRequest) -> UpdateActivityOptionsResponse;
    pause_activity_execution(PauseActivityExecutionRequest) -> PauseActivityExecutionResponse;
    unpause_activity_execution(UnpauseActivityExecutionRequest) -> UnpauseActivityExecutionResponse;
    reset_activity_execution(ResetActivityExecutionRequest) -> ResetActivityExecutionResponse;
    update_activity_execution_options(UpdateActivityExecutionOptionsRequest) -> UpdateActivityExecutionOptionsResponse;
    // standalone activities
    start_activity_execution(StartActivityExecutionRequest) -> StartActivityExecutionResponse;
    describe_activity_execution(DescribeActivityExecutionRequest) -> DescribeActivityExecutionResponse;
    poll_activity_execution(PollActivityExecutionRequest) -> PollActivityExecutionResponse;
    list_activity_executions(ListActivityExecutionsRequest) -> ListActivityExecutionsResponse;
    count_activity_executions(CountActivityExecutionsRequest) -> CountActivityExecutionsResponse;
    request_cancel_activity_execution(RequestCancelActivityExecutionRequest) -> RequestCancelActivityExecutionResponse;
    terminate_activity_execution(TerminateActivityExecutionRequest) -> TerminateActivityExecutionResponse;
    delete_activity_execution(DeleteActivityExecutionRequest) -> DeleteActivityExecutionResponse;
    // batch
    start_batch_operation(StartBatchOperationRequest) -> StartBatchOperationResponse;
    stop_batch_operation(StopBatchOperationRequest) -> StopBatchOperationResponse;
    describe_batch_operation(DescribeBatchOperationRequest) -> DescribeBatchOperationResponse;
    list_batch_operations(ListBatchOperationsRequest) -> ListBatchOperationsResponse;
    // schedules
    create_schedule(CreateScheduleRequest) -> CreateScheduleResponse;
    describe_schedule(DescribeScheduleRequest) -> DescribeScheduleResponse;
    update_schedule(UpdateScheduleRequest) -> UpdateScheduleResponse;
    patch_schedule(PatchScheduleRequest) -> PatchScheduleResponse;
    list_schedule_matching_times(ListScheduleMatchingTimesRequest) -> ListScheduleMatchingTimesResponse;
    delete_schedule(DeleteScheduleRequest) -> DeleteScheduleResponse;
    list_schedules(ListSchedulesRequest) -> ListSchedulesResponse;
    count_schedules(CountSchedulesRequest) -> CountSchedulesResponse;
    // cluster
    get_system_info(GetSystemInfoRequest) -> GetSystemInfoResponse;
    get_cluster_info(GetClusterInfoRequest) -> GetClusterInfoResponse;
    describe_task_queue(DescribeTaskQueueRequest) -> DescribeTaskQueueResponse;
    list_task_queue_partitions(ListTaskQueuePartitionsRequest) -> ListTaskQueuePartitionsResponse;
    // worker deployments (worker versioning)
    describe_worker_deployment(DescribeWorkerDeploymentRequest) -> DescribeWorkerDeploymentResponse;
    list_worker_deployments(ListWorkerDeploymentsRequest) -> ListWorkerDeploymentsResponse;
    describe_worker_deployment_version(DescribeWorkerDeploymentVersionRequest) -> DescribeWorkerDeploymentVersionResponse;
    set_worker_deployment_current_version(SetWorkerDeploymentCurrentVersionRequest) -> SetWorkerDeploymentCurrentVersionResponse;
    set_worker_deployment_ramping_version(SetWorkerDeploymentRampingVersionRequest) -> SetWorkerDeploymentRampingVersionResponse;
    delete_worker_deployment_version(DeleteWorkerDeploymentVersionRequest) -> DeleteWorkerDeploymentVersionResponse;
    delete_worker_deployment(DeleteWorkerDeploymentRequest) -> DeleteWorkerDeploymentResponse;
    update_worker_deployment_version_metadata(UpdateWorkerDeploymentVersionMetadataRequest) -> UpdateWorkerDeploymentVersionMetadataResponse;
    set_worker_deployment_manager(SetWorkerDeploymentManagerRequest) -> SetWorkerDeploymentManagerResponse;
    update_workflow_execution_options(UpdateWorkflowExecutionOptionsRequest) -> UpdateWorkflowExecutionOptionsResponse;
    // worker versioning v0.1 and v0.2 (deprecated; PERMISSION_DENIED as on Temporal's dev server)
    update_worker_build_id_compatibility(UpdateWorkerBuildIdCompatibilityRequest) -> UpdateWorkerBuildIdCompatibilityResponse;
    get_worker_build_id_compatibility(GetWorkerBuildIdCompatibilityRequest) -> GetWorkerBuildIdCompatibilityResponse;
    update_worker_versioning_rules(UpdateWorkerVersioningRulesRequest) -> UpdateWorkerVersioningRulesResponse;
    get_worker_versioning_rules(GetWorkerVersioningRulesRequest) -> GetWorkerVersioningRulesResponse;
    get_worker_task_reachability(GetWorkerTaskReachabilityRequest) -> GetWorkerTaskReachabilityResponse;
}
