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
    /// How requests another process serves are sent on to it.
    pub(crate) peers: crate::peers::GrpcPeers,
}

/// The workflow id a request's execution names ("" without one).
fn wf_of(e: &Option<perdure_proto::api::common::v1::WorkflowExecution>) -> &str {
    e.as_ref().map_or("", |e| e.workflow_id.as_str())
}

/// The process serving an RPC, when it is another one: by the request's workflow id, task token,
/// activity id or task queue, or the leader for what the leader alone does (namespace changes,
/// schedules, batch jobs, worker deployments and heartbeats).
macro_rules! served_by {
    ($e:expr, $r:expr, leader) => {
        $e.leader_peer()
    };
    ($e:expr, $r:expr, execution($f:ident)) => {
        $e.workflow_owner(&$r.namespace, wf_of(&$r.$f))
    };
    ($e:expr, $r:expr, workflow_id) => {
        $e.workflow_owner(&$r.namespace, &$r.workflow_id)
    };
    ($e:expr, $r:expr, update_ref) => {
        $e.workflow_owner(
            &$r.namespace,
            $r.update_ref
                .as_ref()
                .and_then(|u| u.workflow_execution.as_ref())
                .map_or("", |x| x.workflow_id.as_str()),
        )
    };
    ($e:expr, $r:expr, queue) => {
        $e.queue_owner(
            &$r.namespace,
            $r.task_queue.as_ref().map_or("", |q| q.name.as_str()),
        )
    };
    ($e:expr, $r:expr, sticky_queue) => {
        if $r.sticky_task_queue.is_empty() {
            None
        } else {
            $e.queue_owner(&$r.namespace, &$r.sticky_task_queue)
        }
    };
    ($e:expr, $r:expr, token) => {
        $e.token_owner(&$r.task_token)
    };
    ($e:expr, $r:expr, activity) => {
        $e.activity_execution_owner(&$r.namespace, &$r.activity_id)
    };
    ($e:expr, $r:expr, activity_or_workflow) => {
        if $r.workflow_id.is_empty() {
            $e.activity_execution_owner(&$r.namespace, &$r.activity_id)
        } else {
            $e.workflow_owner(&$r.namespace, &$r.workflow_id)
        }
    };
    ($e:expr, $r:expr, multi_operation) => {
        $r.operations
            .first()
            .and_then(|o| match &o.operation {
                Some(execute_multi_operation_request::operation::Operation::StartWorkflow(s)) => {
                    Some(s.workflow_id.as_str())
                }
                _ => None,
            })
            .and_then(|wf| $e.workflow_owner(&$r.namespace, wf))
    };
}

/// Implements `WorkflowService` for the RPCs listed, each by `WorkflowApi`'s inherent method of
/// the same name, after sending on the RPCs another process serves (`=> where`, see
/// `served_by!`); the trait's defaults answer the others.
macro_rules! implemented {
    ($($rpc:ident($req:ty) -> $res:ty $(=> $where:ident $(($f:ident))?)?;)*) => {
        #[tonic::async_trait]
        impl WorkflowService for WorkflowApi {
            $(
                async fn $rpc(&self, r: Request<$req>) -> R<$res> {
                    $(
                        if let Some(to) = served_by!(self.engine, r.get_ref(), $where $(($f))?) {
                            let path = concat!(
                                "/temporal.api.workflowservice.v1.WorkflowService/",
                                stringify!($req)
                            );
                            let path = &path[..path.len() - "Request".len()];
                            let answer = self.peers.forward(&to, path, r).await?;
                            if stringify!($rpc).contains("namespace") {
                                // Read what the leader changed before answering.
                                let _ = self.engine.reload_namespaces().await;
                            }
                            return ok(answer.into_inner());
                        }
                    )?
                    WorkflowApi::$rpc(self, r).await
                }
            )*
        }
    };
}

implemented! {
    // namespaces
    register_namespace(RegisterNamespaceRequest) -> RegisterNamespaceResponse => leader;
    describe_namespace(DescribeNamespaceRequest) -> DescribeNamespaceResponse;
    list_namespaces(ListNamespacesRequest) -> ListNamespacesResponse;
    update_namespace(UpdateNamespaceRequest) -> UpdateNamespaceResponse => leader;
    deprecate_namespace(DeprecateNamespaceRequest) -> DeprecateNamespaceResponse => leader;
    // workflows
    start_workflow_execution(StartWorkflowExecutionRequest) -> StartWorkflowExecutionResponse => workflow_id;
    signal_with_start_workflow_execution(SignalWithStartWorkflowExecutionRequest) -> SignalWithStartWorkflowExecutionResponse => workflow_id;
    signal_workflow_execution(SignalWorkflowExecutionRequest) -> SignalWorkflowExecutionResponse => execution(workflow_execution);
    request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest) -> RequestCancelWorkflowExecutionResponse => execution(workflow_execution);
    terminate_workflow_execution(TerminateWorkflowExecutionRequest) -> TerminateWorkflowExecutionResponse => execution(workflow_execution);
    delete_workflow_execution(DeleteWorkflowExecutionRequest) -> DeleteWorkflowExecutionResponse => execution(workflow_execution);
    reset_workflow_execution(ResetWorkflowExecutionRequest) -> ResetWorkflowExecutionResponse => execution(workflow_execution);
    describe_workflow_execution(DescribeWorkflowExecutionRequest) -> DescribeWorkflowExecutionResponse => execution(execution);
    get_workflow_execution_history(GetWorkflowExecutionHistoryRequest) -> GetWorkflowExecutionHistoryResponse => execution(execution);
    get_workflow_execution_history_reverse(GetWorkflowExecutionHistoryReverseRequest) -> GetWorkflowExecutionHistoryReverseResponse => execution(execution);
    query_workflow(QueryWorkflowRequest) -> QueryWorkflowResponse => execution(execution);
    update_workflow_execution(UpdateWorkflowExecutionRequest) -> UpdateWorkflowExecutionResponse => execution(workflow_execution);
    poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest) -> PollWorkflowExecutionUpdateResponse => update_ref;
    execute_multi_operation(ExecuteMultiOperationRequest) -> ExecuteMultiOperationResponse => multi_operation;
    // visibility
    list_workflow_executions(ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse;
    list_open_workflow_executions(ListOpenWorkflowExecutionsRequest) -> ListOpenWorkflowExecutionsResponse;
    list_closed_workflow_executions(ListClosedWorkflowExecutionsRequest) -> ListClosedWorkflowExecutionsResponse;
    scan_workflow_executions(ScanWorkflowExecutionsRequest) -> ScanWorkflowExecutionsResponse;
    count_workflow_executions(CountWorkflowExecutionsRequest) -> CountWorkflowExecutionsResponse;
    get_search_attributes(GetSearchAttributesRequest) -> GetSearchAttributesResponse;
    list_archived_workflow_executions(ListArchivedWorkflowExecutionsRequest) -> ListArchivedWorkflowExecutionsResponse;
    // tasks
    poll_workflow_task_queue(PollWorkflowTaskQueueRequest) -> PollWorkflowTaskQueueResponse => queue;
    respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest) -> RespondWorkflowTaskCompletedResponse => token;
    respond_workflow_task_failed(RespondWorkflowTaskFailedRequest) -> RespondWorkflowTaskFailedResponse => token;
    respond_query_task_completed(RespondQueryTaskCompletedRequest) -> RespondQueryTaskCompletedResponse => token;
    poll_activity_task_queue(PollActivityTaskQueueRequest) -> PollActivityTaskQueueResponse => queue;
    respond_activity_task_completed(RespondActivityTaskCompletedRequest) -> RespondActivityTaskCompletedResponse => token;
    respond_activity_task_completed_by_id(RespondActivityTaskCompletedByIdRequest) -> RespondActivityTaskCompletedByIdResponse => activity_or_workflow;
    respond_activity_task_failed(RespondActivityTaskFailedRequest) -> RespondActivityTaskFailedResponse => token;
    respond_activity_task_failed_by_id(RespondActivityTaskFailedByIdRequest) -> RespondActivityTaskFailedByIdResponse => activity_or_workflow;
    respond_activity_task_canceled(RespondActivityTaskCanceledRequest) -> RespondActivityTaskCanceledResponse => token;
    respond_activity_task_canceled_by_id(RespondActivityTaskCanceledByIdRequest) -> RespondActivityTaskCanceledByIdResponse => activity_or_workflow;
    record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest) -> RecordActivityTaskHeartbeatResponse => token;
    record_activity_task_heartbeat_by_id(RecordActivityTaskHeartbeatByIdRequest) -> RecordActivityTaskHeartbeatByIdResponse => activity_or_workflow;
    reset_sticky_task_queue(ResetStickyTaskQueueRequest) -> ResetStickyTaskQueueResponse => execution(execution);
    shutdown_worker(ShutdownWorkerRequest) -> ShutdownWorkerResponse => sticky_queue;
    record_worker_heartbeat(RecordWorkerHeartbeatRequest) -> RecordWorkerHeartbeatResponse => leader;
    list_workers(ListWorkersRequest) -> ListWorkersResponse => leader;
    count_workers(CountWorkersRequest) -> CountWorkersResponse => leader;
    describe_worker(DescribeWorkerRequest) -> DescribeWorkerResponse => leader;
    // activity operations
    pause_activity(PauseActivityRequest) -> PauseActivityResponse => execution(execution);
    unpause_activity(UnpauseActivityRequest) -> UnpauseActivityResponse => execution(execution);
    reset_activity(ResetActivityRequest) -> ResetActivityResponse => execution(execution);
    update_activity_options(UpdateActivityOptionsRequest) -> UpdateActivityOptionsResponse => execution(execution);
    pause_activity_execution(PauseActivityExecutionRequest) -> PauseActivityExecutionResponse => activity_or_workflow;
    unpause_activity_execution(UnpauseActivityExecutionRequest) -> UnpauseActivityExecutionResponse => activity_or_workflow;
    reset_activity_execution(ResetActivityExecutionRequest) -> ResetActivityExecutionResponse => activity_or_workflow;
    update_activity_execution_options(UpdateActivityExecutionOptionsRequest) -> UpdateActivityExecutionOptionsResponse => activity_or_workflow;
    // standalone activities
    start_activity_execution(StartActivityExecutionRequest) -> StartActivityExecutionResponse => activity;
    describe_activity_execution(DescribeActivityExecutionRequest) -> DescribeActivityExecutionResponse => activity;
    poll_activity_execution(PollActivityExecutionRequest) -> PollActivityExecutionResponse => activity;
    list_activity_executions(ListActivityExecutionsRequest) -> ListActivityExecutionsResponse;
    count_activity_executions(CountActivityExecutionsRequest) -> CountActivityExecutionsResponse;
    request_cancel_activity_execution(RequestCancelActivityExecutionRequest) -> RequestCancelActivityExecutionResponse => activity;
    terminate_activity_execution(TerminateActivityExecutionRequest) -> TerminateActivityExecutionResponse => activity;
    delete_activity_execution(DeleteActivityExecutionRequest) -> DeleteActivityExecutionResponse => activity;
    // batch
    start_batch_operation(StartBatchOperationRequest) -> StartBatchOperationResponse => leader;
    stop_batch_operation(StopBatchOperationRequest) -> StopBatchOperationResponse => leader;
    describe_batch_operation(DescribeBatchOperationRequest) -> DescribeBatchOperationResponse => leader;
    list_batch_operations(ListBatchOperationsRequest) -> ListBatchOperationsResponse => leader;
    // schedules
    create_schedule(CreateScheduleRequest) -> CreateScheduleResponse => leader;
    describe_schedule(DescribeScheduleRequest) -> DescribeScheduleResponse => leader;
    update_schedule(UpdateScheduleRequest) -> UpdateScheduleResponse => leader;
    patch_schedule(PatchScheduleRequest) -> PatchScheduleResponse => leader;
    list_schedule_matching_times(ListScheduleMatchingTimesRequest) -> ListScheduleMatchingTimesResponse => leader;
    delete_schedule(DeleteScheduleRequest) -> DeleteScheduleResponse => leader;
    list_schedules(ListSchedulesRequest) -> ListSchedulesResponse => leader;
    count_schedules(CountSchedulesRequest) -> CountSchedulesResponse => leader;
    // cluster
    get_system_info(GetSystemInfoRequest) -> GetSystemInfoResponse;
    get_cluster_info(GetClusterInfoRequest) -> GetClusterInfoResponse;
    describe_task_queue(DescribeTaskQueueRequest) -> DescribeTaskQueueResponse => queue;
    list_task_queue_partitions(ListTaskQueuePartitionsRequest) -> ListTaskQueuePartitionsResponse => leader;
    // worker deployments (worker versioning)
    describe_worker_deployment(DescribeWorkerDeploymentRequest) -> DescribeWorkerDeploymentResponse => leader;
    list_worker_deployments(ListWorkerDeploymentsRequest) -> ListWorkerDeploymentsResponse => leader;
    describe_worker_deployment_version(DescribeWorkerDeploymentVersionRequest) -> DescribeWorkerDeploymentVersionResponse => leader;
    set_worker_deployment_current_version(SetWorkerDeploymentCurrentVersionRequest) -> SetWorkerDeploymentCurrentVersionResponse => leader;
    set_worker_deployment_ramping_version(SetWorkerDeploymentRampingVersionRequest) -> SetWorkerDeploymentRampingVersionResponse => leader;
    delete_worker_deployment_version(DeleteWorkerDeploymentVersionRequest) -> DeleteWorkerDeploymentVersionResponse => leader;
    delete_worker_deployment(DeleteWorkerDeploymentRequest) -> DeleteWorkerDeploymentResponse => leader;
    update_worker_deployment_version_metadata(UpdateWorkerDeploymentVersionMetadataRequest) -> UpdateWorkerDeploymentVersionMetadataResponse => leader;
    set_worker_deployment_manager(SetWorkerDeploymentManagerRequest) -> SetWorkerDeploymentManagerResponse => leader;
    update_workflow_execution_options(UpdateWorkflowExecutionOptionsRequest) -> UpdateWorkflowExecutionOptionsResponse => execution(workflow_execution);
    // worker versioning v0.1 and v0.2 (deprecated; PERMISSION_DENIED as on Temporal's dev server)
    update_worker_build_id_compatibility(UpdateWorkerBuildIdCompatibilityRequest) -> UpdateWorkerBuildIdCompatibilityResponse;
    get_worker_build_id_compatibility(GetWorkerBuildIdCompatibilityRequest) -> GetWorkerBuildIdCompatibilityResponse;
    update_worker_versioning_rules(UpdateWorkerVersioningRulesRequest) -> UpdateWorkerVersioningRulesResponse;
    get_worker_versioning_rules(GetWorkerVersioningRulesRequest) -> GetWorkerVersioningRulesResponse;
    get_worker_task_reachability(GetWorkerTaskReachabilityRequest) -> GetWorkerTaskReachabilityResponse;
}
