//! The gRPC frontend: `WorkflowService` and `OperatorService` over the engine. The only place
//! that knows gRPC encodings: request deadlines (`grpc-timeout`), and the mapping of engine errors
//! to status codes with Temporal's error-detail trailers.

use std::time::{Duration, Instant};

use perdure_core::{Engine, Error};
use perdure_proto::api::errordetails::v1 as details;
use perdure_proto::api::workflowservice::v1::*;
use perdure_proto::google::rpc::Status as RpcStatus;
use perdure_proto::prost_types::Any;
use prost::{Message, Name};
use tonic::{Code, Request, Response, Status};

/// The server version reported by GetSystemInfo and GetClusterInfo.
pub const SERVER_VERSION: &str = "1.28.0";

/// Name of the one cluster, as Temporal's single-cluster setups call it.
pub const CLUSTER_NAME: &str = "active";

/// Client versions GetClusterInfo declares supported: the same ranges Temporal's server reports
/// (its `headers.SupportedClients`; the Python and .NET SDKs are not listed there either).
pub const SUPPORTED_CLIENTS: &[(&str, &str)] = &[
    ("temporal-go", "<2.0.0"),
    ("temporal-java", "<2.0.0"),
    ("temporal-php", "<2.0.0"),
    ("temporal-typescript", "<2.0.0"),
    ("temporal-cli", "<2.0.0"),
    ("temporal-server", "<2.0.0"),
    ("temporal-ui", "<3.0.0"),
    ("Nexus-go-sdk", "<2.0.0"),
];

/// Deadline of a request: its `grpc-timeout`, or `default` from now.
pub fn deadline<T>(req: &Request<T>, default: Duration) -> Instant {
    let now = Instant::now();
    req.metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map(|d| now + d)
        .unwrap_or(now + default)
}

/// Parses a `grpc-timeout` header value such as `70S` or `11000m`.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 {
        return None;
    }
    let (num, unit) = v.split_at(v.len() - 1);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn with_detail<M: Message + Name>(code: Code, message: String, detail: M) -> Status {
    let any = Any {
        type_url: format!("type.googleapis.com/{}", M::full_name()),
        value: detail.encode_to_vec(),
    };
    let st = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![any],
    };
    Status::with_details(code, message, st.encode_to_vec().into())
}

/// The one mapping from engine errors to gRPC statuses.
pub fn status(e: Error) -> Status {
    let message = e.to_string();
    match e {
        Error::InvalidArgument(m) => Status::invalid_argument(m),
        Error::NotFound(m) => with_detail(
            Code::NotFound,
            m,
            details::NotFoundFailure {
                current_cluster: CLUSTER_NAME.into(),
                active_cluster: CLUSTER_NAME.into(),
            },
        ),
        Error::NamespaceNotFound(ns) => with_detail(
            Code::NotFound,
            message,
            details::NamespaceNotFoundFailure { namespace: ns },
        ),
        Error::NamespaceAlreadyExists(_) => with_detail(
            Code::AlreadyExists,
            message,
            details::NamespaceAlreadyExistsFailure {},
        ),
        Error::AlreadyStarted {
            message,
            start_request_id,
            run_id,
        } => with_detail(
            Code::AlreadyExists,
            message,
            details::WorkflowExecutionAlreadyStartedFailure {
                start_request_id,
                run_id,
                ..Default::default()
            },
        ),
        Error::AlreadyExists(m) => Status::already_exists(m),
        Error::FailedPrecondition(m) => Status::failed_precondition(m),
        Error::WorkflowNotReady(m) => with_detail(
            Code::FailedPrecondition,
            m,
            details::WorkflowNotReadyFailure {},
        ),
        Error::QueryFailed { message, failure } => with_detail(
            Code::InvalidArgument,
            message,
            details::QueryFailedFailure {
                failure: failure.map(|f| *f),
            },
        ),
        Error::DeadlineExceeded(m) => Status::deadline_exceeded(m),
        Error::Unavailable(m) => Status::unavailable(m),
        Error::Internal(m) => Status::internal(m),
    }
}

pub(crate) type R<T> = Result<Response<T>, Status>;

pub(crate) fn ok<T>(t: T) -> R<T> {
    Ok(Response::new(t))
}

pub(crate) fn unknown_method(service: &str, name: &str) -> Status {
    Status::unimplemented(format!(
        "unknown method {name} for service {service}: not implemented by Perdure"
    ))
}

/// The WorkflowService implementation.
#[derive(Clone)]
pub struct WorkflowApi {
    pub engine: Engine,
}

const LONG_POLL_DEFAULT: Duration = Duration::from_secs(70);
const CALL_DEFAULT: Duration = Duration::from_secs(30);

fn cap_default() -> get_system_info_response::Capabilities {
    get_system_info_response::Capabilities {
        signal_and_query_header: true,
        internal_error_differentiation: true,
        activity_failure_include_heartbeat: true,
        encoded_failure_attributes: true,
        upsert_memo: true,
        sdk_metadata: true,
        count_group_by_execution_status: true,
        ..Default::default()
    }
}

use perdure_proto::service::workflowservice::workflow_service_server::WorkflowService;

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

    /// ListWorkflowExecutions for the older list RPCs that map onto it.
    async fn list(
        &self,
        namespace: String,
        page_size: i32,
        next_page_token: Vec<u8>,
        query: String,
    ) -> Result<ListWorkflowExecutionsResponse, Status> {
        self.engine
            .list(ListWorkflowExecutionsRequest {
                namespace,
                page_size,
                next_page_token,
                query,
            })
            .await
            .map_err(status)
    }
}

#[tonic::async_trait]
impl WorkflowService for WorkflowApi {
    async fn get_system_info(&self, _r: Request<GetSystemInfoRequest>) -> R<GetSystemInfoResponse> {
        ok(GetSystemInfoResponse {
            server_version: SERVER_VERSION.into(),
            capabilities: Some(cap_default()),
        })
    }

    async fn register_namespace(
        &self,
        r: Request<RegisterNamespaceRequest>,
    ) -> R<RegisterNamespaceResponse> {
        self.engine
            .register_namespace(r.into_inner())
            .await
            .map_err(status)?;
        ok(RegisterNamespaceResponse {})
    }

    async fn describe_namespace(
        &self,
        r: Request<DescribeNamespaceRequest>,
    ) -> R<DescribeNamespaceResponse> {
        let r = r.into_inner();
        let ns = if !r.namespace.is_empty() {
            self.engine.namespace(&r.namespace).map_err(status)?
        } else {
            self.engine
                .namespace_by_id(&r.id)
                .ok_or_else(|| status(Error::NamespaceNotFound(r.id.clone())))?
        };
        ok(ns.describe())
    }

    async fn list_namespaces(
        &self,
        _r: Request<ListNamespacesRequest>,
    ) -> R<ListNamespacesResponse> {
        ok(ListNamespacesResponse {
            namespaces: self.engine.list_namespaces(),
            next_page_token: vec![],
        })
    }

    async fn update_namespace(
        &self,
        r: Request<UpdateNamespaceRequest>,
    ) -> R<UpdateNamespaceResponse> {
        let d = self
            .engine
            .update_namespace(r.into_inner())
            .await
            .map_err(status)?;
        ok(UpdateNamespaceResponse {
            namespace_info: d.namespace_info,
            config: d.config,
            replication_config: d.replication_config,
            failover_version: 0,
            is_global_namespace: false,
        })
    }

    async fn start_workflow_execution(
        &self,
        r: Request<StartWorkflowExecutionRequest>,
    ) -> R<StartWorkflowExecutionResponse> {
        let o = self
            .engine
            .start_workflow(r.into_inner())
            .await
            .map_err(status)?;
        ok(StartWorkflowExecutionResponse {
            run_id: o.run_id,
            started: o.started,
            status: perdure_proto::api::enums::v1::WorkflowExecutionStatus::Running as i32,
            ..Default::default()
        })
    }

    async fn signal_with_start_workflow_execution(
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

    async fn signal_workflow_execution(
        &self,
        r: Request<SignalWorkflowExecutionRequest>,
    ) -> R<SignalWorkflowExecutionResponse> {
        self.engine
            .signal_workflow(r.into_inner())
            .await
            .map_err(status)?;
        ok(SignalWorkflowExecutionResponse::default())
    }

    async fn request_cancel_workflow_execution(
        &self,
        r: Request<RequestCancelWorkflowExecutionRequest>,
    ) -> R<RequestCancelWorkflowExecutionResponse> {
        self.engine
            .request_cancel(r.into_inner())
            .await
            .map_err(status)?;
        ok(RequestCancelWorkflowExecutionResponse::default())
    }

    async fn terminate_workflow_execution(
        &self,
        r: Request<TerminateWorkflowExecutionRequest>,
    ) -> R<TerminateWorkflowExecutionResponse> {
        self.engine
            .terminate(r.into_inner())
            .await
            .map_err(status)?;
        ok(TerminateWorkflowExecutionResponse::default())
    }

    async fn delete_workflow_execution(
        &self,
        r: Request<DeleteWorkflowExecutionRequest>,
    ) -> R<DeleteWorkflowExecutionResponse> {
        self.engine
            .delete_workflow(r.into_inner())
            .await
            .map_err(status)?;
        ok(DeleteWorkflowExecutionResponse::default())
    }

    async fn describe_workflow_execution(
        &self,
        r: Request<DescribeWorkflowExecutionRequest>,
    ) -> R<DescribeWorkflowExecutionResponse> {
        ok(self.engine.describe(r.into_inner()).await.map_err(status)?)
    }

    async fn get_workflow_execution_history(
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

    async fn query_workflow(&self, r: Request<QueryWorkflowRequest>) -> R<QueryWorkflowResponse> {
        let d = deadline(&r, CALL_DEFAULT);
        ok(self.engine.query(r.into_inner(), d).await.map_err(status)?)
    }

    async fn update_workflow_execution(
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

    async fn poll_workflow_execution_update(
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

    async fn list_workflow_executions(
        &self,
        r: Request<ListWorkflowExecutionsRequest>,
    ) -> R<ListWorkflowExecutionsResponse> {
        ok(self.engine.list(r.into_inner()).await.map_err(status)?)
    }

    async fn list_open_workflow_executions(
        &self,
        r: Request<ListOpenWorkflowExecutionsRequest>,
    ) -> R<ListOpenWorkflowExecutionsResponse> {
        let r = r.into_inner();
        let l = self
            .list(
                r.namespace,
                r.maximum_page_size,
                r.next_page_token,
                "ExecutionStatus = 'Running'".into(),
            )
            .await?;
        ok(ListOpenWorkflowExecutionsResponse {
            executions: l.executions,
            next_page_token: l.next_page_token,
        })
    }

    async fn list_closed_workflow_executions(
        &self,
        r: Request<ListClosedWorkflowExecutionsRequest>,
    ) -> R<ListClosedWorkflowExecutionsResponse> {
        let r = r.into_inner();
        let l = self
            .list(
                r.namespace,
                r.maximum_page_size,
                r.next_page_token,
                "ExecutionStatus != 'Running'".into(),
            )
            .await?;
        ok(ListClosedWorkflowExecutionsResponse {
            executions: l.executions,
            next_page_token: l.next_page_token,
        })
    }

    async fn scan_workflow_executions(
        &self,
        r: Request<ScanWorkflowExecutionsRequest>,
    ) -> R<ScanWorkflowExecutionsResponse> {
        let r = r.into_inner();
        let l = self
            .list(r.namespace, r.page_size, r.next_page_token, r.query)
            .await?;
        ok(ScanWorkflowExecutionsResponse {
            executions: l.executions,
            next_page_token: l.next_page_token,
        })
    }

    async fn count_workflow_executions(
        &self,
        r: Request<CountWorkflowExecutionsRequest>,
    ) -> R<CountWorkflowExecutionsResponse> {
        ok(self.engine.count(r.into_inner()).await.map_err(status)?)
    }

    async fn get_search_attributes(
        &self,
        _r: Request<GetSearchAttributesRequest>,
    ) -> R<GetSearchAttributesResponse> {
        let (custom, system) = self.engine.search_attributes("default").map_err(status)?;
        ok(GetSearchAttributesResponse {
            keys: custom.into_iter().chain(system).collect(),
        })
    }

    async fn poll_workflow_task_queue(
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

    async fn respond_workflow_task_completed(
        &self,
        r: Request<RespondWorkflowTaskCompletedRequest>,
    ) -> R<RespondWorkflowTaskCompletedResponse> {
        ok(self
            .engine
            .complete_workflow_task(r.into_inner())
            .await
            .map_err(status)?)
    }

    async fn respond_workflow_task_failed(
        &self,
        r: Request<RespondWorkflowTaskFailedRequest>,
    ) -> R<RespondWorkflowTaskFailedResponse> {
        self.engine
            .fail_workflow_task(r.into_inner())
            .await
            .map_err(status)?;
        ok(RespondWorkflowTaskFailedResponse::default())
    }

    async fn respond_query_task_completed(
        &self,
        r: Request<RespondQueryTaskCompletedRequest>,
    ) -> R<RespondQueryTaskCompletedResponse> {
        self.engine
            .complete_query_task(r.into_inner())
            .await
            .map_err(status)?;
        ok(RespondQueryTaskCompletedResponse::default())
    }

    async fn poll_activity_task_queue(
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

    async fn respond_activity_task_completed(
        &self,
        r: Request<RespondActivityTaskCompletedRequest>,
    ) -> R<RespondActivityTaskCompletedResponse> {
        self.engine
            .complete_activity(r.into_inner())
            .await
            .map_err(status)?;
        ok(RespondActivityTaskCompletedResponse::default())
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        r: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> R<RespondActivityTaskCompletedByIdResponse> {
        self.engine
            .complete_activity_by_id(r.into_inner())
            .await
            .map_err(status)?;
        ok(RespondActivityTaskCompletedByIdResponse::default())
    }

    async fn respond_activity_task_failed(
        &self,
        r: Request<RespondActivityTaskFailedRequest>,
    ) -> R<RespondActivityTaskFailedResponse> {
        let r = r.into_inner();
        self.engine
            .fail_activity(
                Some(&r.task_token),
                None,
                r.failure,
                r.last_heartbeat_details,
                r.identity,
            )
            .await
            .map_err(status)?;
        ok(RespondActivityTaskFailedResponse::default())
    }

    async fn respond_activity_task_failed_by_id(
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

    async fn respond_activity_task_canceled(
        &self,
        r: Request<RespondActivityTaskCanceledRequest>,
    ) -> R<RespondActivityTaskCanceledResponse> {
        let r = r.into_inner();
        self.engine
            .cancel_activity(Some(&r.task_token), None, r.details, r.identity)
            .await
            .map_err(status)?;
        ok(RespondActivityTaskCanceledResponse::default())
    }

    async fn respond_activity_task_canceled_by_id(
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

    async fn record_activity_task_heartbeat(
        &self,
        r: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> R<RecordActivityTaskHeartbeatResponse> {
        let r = r.into_inner();
        let cancel = self
            .engine
            .heartbeat_activity(Some(&r.task_token), None, r.details)
            .await
            .map_err(status)?;
        ok(RecordActivityTaskHeartbeatResponse {
            cancel_requested: cancel,
            ..Default::default()
        })
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        r: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> R<RecordActivityTaskHeartbeatByIdResponse> {
        let r = r.into_inner();
        let cancel = self
            .engine
            .heartbeat_activity(
                None,
                Some((&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)),
                r.details,
            )
            .await
            .map_err(status)?;
        ok(RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested: cancel,
            ..Default::default()
        })
    }

    async fn reset_sticky_task_queue(
        &self,
        r: Request<ResetStickyTaskQueueRequest>,
    ) -> R<ResetStickyTaskQueueResponse> {
        self.engine
            .reset_sticky(r.into_inner())
            .await
            .map_err(status)?;
        ok(ResetStickyTaskQueueResponse::default())
    }

    async fn shutdown_worker(
        &self,
        r: Request<ShutdownWorkerRequest>,
    ) -> R<ShutdownWorkerResponse> {
        self.engine
            .shutdown_worker(r.into_inner())
            .await
            .map_err(status)?;
        ok(ShutdownWorkerResponse::default())
    }

    async fn record_worker_heartbeat(
        &self,
        r: Request<RecordWorkerHeartbeatRequest>,
    ) -> R<RecordWorkerHeartbeatResponse> {
        self.engine
            .namespace(&r.into_inner().namespace)
            .map_err(status)?;
        ok(RecordWorkerHeartbeatResponse::default())
    }

    // ---- Everything below is not supported: UNIMPLEMENTED with a clear message. ----
    // (Generated once from the trait's method list; README lists them.)
    async fn deprecate_namespace(
        &self,
        _r: Request<DeprecateNamespaceRequest>,
    ) -> R<DeprecateNamespaceResponse> {
        Err(unknown_method("WorkflowService", "deprecate_namespace"))
    }

    async fn execute_multi_operation(
        &self,
        r: Request<ExecuteMultiOperationRequest>,
    ) -> R<ExecuteMultiOperationResponse> {
        let d = deadline(&r, CALL_DEFAULT);
        ok(self.update_with_start(r.into_inner(), d).await?)
    }

    async fn get_workflow_execution_history_reverse(
        &self,
        _r: Request<GetWorkflowExecutionHistoryReverseRequest>,
    ) -> R<GetWorkflowExecutionHistoryReverseResponse> {
        Err(unknown_method(
            "WorkflowService",
            "get_workflow_execution_history_reverse",
        ))
    }

    async fn reset_workflow_execution(
        &self,
        _r: Request<ResetWorkflowExecutionRequest>,
    ) -> R<ResetWorkflowExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "reset_workflow_execution",
        ))
    }

    async fn list_archived_workflow_executions(
        &self,
        _r: Request<ListArchivedWorkflowExecutionsRequest>,
    ) -> R<ListArchivedWorkflowExecutionsResponse> {
        Err(unknown_method(
            "WorkflowService",
            "list_archived_workflow_executions",
        ))
    }

    async fn describe_task_queue(
        &self,
        r: Request<DescribeTaskQueueRequest>,
    ) -> R<DescribeTaskQueueResponse> {
        ok(self
            .engine
            .describe_task_queue(r.into_inner())
            .map_err(status)?)
    }

    async fn get_cluster_info(
        &self,
        _r: Request<GetClusterInfoRequest>,
    ) -> R<GetClusterInfoResponse> {
        ok(GetClusterInfoResponse {
            supported_clients: SUPPORTED_CLIENTS
                .iter()
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect(),
            server_version: SERVER_VERSION.into(),
            cluster_id: self.engine.cluster_id().to_string(),
            version_info: None,
            cluster_name: CLUSTER_NAME.into(),
            history_shard_count: self.engine.shard_count(),
            persistence_store: self.engine.store_name().into(),
            visibility_store: self.engine.store_name().into(),
            // A single, never replicated cluster, with Temporal's defaults.
            initial_failover_version: 1,
            failover_version_increment: 10,
        })
    }

    async fn list_task_queue_partitions(
        &self,
        _r: Request<ListTaskQueuePartitionsRequest>,
    ) -> R<ListTaskQueuePartitionsResponse> {
        Err(unknown_method(
            "WorkflowService",
            "list_task_queue_partitions",
        ))
    }

    async fn create_schedule(
        &self,
        _r: Request<CreateScheduleRequest>,
    ) -> R<CreateScheduleResponse> {
        Err(unknown_method("WorkflowService", "create_schedule"))
    }

    async fn describe_schedule(
        &self,
        _r: Request<DescribeScheduleRequest>,
    ) -> R<DescribeScheduleResponse> {
        Err(unknown_method("WorkflowService", "describe_schedule"))
    }

    async fn update_schedule(
        &self,
        _r: Request<UpdateScheduleRequest>,
    ) -> R<UpdateScheduleResponse> {
        Err(unknown_method("WorkflowService", "update_schedule"))
    }

    async fn patch_schedule(&self, _r: Request<PatchScheduleRequest>) -> R<PatchScheduleResponse> {
        Err(unknown_method("WorkflowService", "patch_schedule"))
    }

    async fn list_schedule_matching_times(
        &self,
        _r: Request<ListScheduleMatchingTimesRequest>,
    ) -> R<ListScheduleMatchingTimesResponse> {
        Err(unknown_method(
            "WorkflowService",
            "list_schedule_matching_times",
        ))
    }

    async fn delete_schedule(
        &self,
        _r: Request<DeleteScheduleRequest>,
    ) -> R<DeleteScheduleResponse> {
        Err(unknown_method("WorkflowService", "delete_schedule"))
    }

    async fn list_schedules(&self, _r: Request<ListSchedulesRequest>) -> R<ListSchedulesResponse> {
        Err(unknown_method("WorkflowService", "list_schedules"))
    }

    async fn count_schedules(
        &self,
        _r: Request<CountSchedulesRequest>,
    ) -> R<CountSchedulesResponse> {
        Err(unknown_method("WorkflowService", "count_schedules"))
    }

    async fn update_worker_build_id_compatibility(
        &self,
        _r: Request<UpdateWorkerBuildIdCompatibilityRequest>,
    ) -> R<UpdateWorkerBuildIdCompatibilityResponse> {
        Err(unknown_method(
            "WorkflowService",
            "update_worker_build_id_compatibility",
        ))
    }

    async fn get_worker_build_id_compatibility(
        &self,
        _r: Request<GetWorkerBuildIdCompatibilityRequest>,
    ) -> R<GetWorkerBuildIdCompatibilityResponse> {
        Err(unknown_method(
            "WorkflowService",
            "get_worker_build_id_compatibility",
        ))
    }

    async fn update_worker_versioning_rules(
        &self,
        _r: Request<UpdateWorkerVersioningRulesRequest>,
    ) -> R<UpdateWorkerVersioningRulesResponse> {
        Err(unknown_method(
            "WorkflowService",
            "update_worker_versioning_rules",
        ))
    }

    async fn get_worker_versioning_rules(
        &self,
        _r: Request<GetWorkerVersioningRulesRequest>,
    ) -> R<GetWorkerVersioningRulesResponse> {
        Err(unknown_method(
            "WorkflowService",
            "get_worker_versioning_rules",
        ))
    }

    async fn get_worker_task_reachability(
        &self,
        _r: Request<GetWorkerTaskReachabilityRequest>,
    ) -> R<GetWorkerTaskReachabilityResponse> {
        Err(unknown_method(
            "WorkflowService",
            "get_worker_task_reachability",
        ))
    }

    async fn describe_deployment(
        &self,
        _r: Request<DescribeDeploymentRequest>,
    ) -> R<DescribeDeploymentResponse> {
        Err(unknown_method("WorkflowService", "describe_deployment"))
    }

    async fn describe_worker_deployment_version(
        &self,
        _r: Request<DescribeWorkerDeploymentVersionRequest>,
    ) -> R<DescribeWorkerDeploymentVersionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "describe_worker_deployment_version",
        ))
    }

    async fn list_deployments(
        &self,
        _r: Request<ListDeploymentsRequest>,
    ) -> R<ListDeploymentsResponse> {
        Err(unknown_method("WorkflowService", "list_deployments"))
    }

    async fn get_deployment_reachability(
        &self,
        _r: Request<GetDeploymentReachabilityRequest>,
    ) -> R<GetDeploymentReachabilityResponse> {
        Err(unknown_method(
            "WorkflowService",
            "get_deployment_reachability",
        ))
    }

    async fn get_current_deployment(
        &self,
        _r: Request<GetCurrentDeploymentRequest>,
    ) -> R<GetCurrentDeploymentResponse> {
        Err(unknown_method("WorkflowService", "get_current_deployment"))
    }

    async fn set_current_deployment(
        &self,
        _r: Request<SetCurrentDeploymentRequest>,
    ) -> R<SetCurrentDeploymentResponse> {
        Err(unknown_method("WorkflowService", "set_current_deployment"))
    }

    async fn set_worker_deployment_current_version(
        &self,
        _r: Request<SetWorkerDeploymentCurrentVersionRequest>,
    ) -> R<SetWorkerDeploymentCurrentVersionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "set_worker_deployment_current_version",
        ))
    }

    async fn describe_worker_deployment(
        &self,
        _r: Request<DescribeWorkerDeploymentRequest>,
    ) -> R<DescribeWorkerDeploymentResponse> {
        Err(unknown_method(
            "WorkflowService",
            "describe_worker_deployment",
        ))
    }

    async fn delete_worker_deployment(
        &self,
        _r: Request<DeleteWorkerDeploymentRequest>,
    ) -> R<DeleteWorkerDeploymentResponse> {
        Err(unknown_method(
            "WorkflowService",
            "delete_worker_deployment",
        ))
    }

    async fn delete_worker_deployment_version(
        &self,
        _r: Request<DeleteWorkerDeploymentVersionRequest>,
    ) -> R<DeleteWorkerDeploymentVersionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "delete_worker_deployment_version",
        ))
    }

    async fn set_worker_deployment_ramping_version(
        &self,
        _r: Request<SetWorkerDeploymentRampingVersionRequest>,
    ) -> R<SetWorkerDeploymentRampingVersionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "set_worker_deployment_ramping_version",
        ))
    }

    async fn list_worker_deployments(
        &self,
        _r: Request<ListWorkerDeploymentsRequest>,
    ) -> R<ListWorkerDeploymentsResponse> {
        Err(unknown_method("WorkflowService", "list_worker_deployments"))
    }

    async fn create_worker_deployment(
        &self,
        _r: Request<CreateWorkerDeploymentRequest>,
    ) -> R<CreateWorkerDeploymentResponse> {
        Err(unknown_method(
            "WorkflowService",
            "create_worker_deployment",
        ))
    }

    async fn create_worker_deployment_version(
        &self,
        _r: Request<CreateWorkerDeploymentVersionRequest>,
    ) -> R<CreateWorkerDeploymentVersionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "create_worker_deployment_version",
        ))
    }

    async fn update_worker_deployment_version_compute_config(
        &self,
        _r: Request<UpdateWorkerDeploymentVersionComputeConfigRequest>,
    ) -> R<UpdateWorkerDeploymentVersionComputeConfigResponse> {
        Err(unknown_method(
            "WorkflowService",
            "update_worker_deployment_version_compute_config",
        ))
    }

    async fn validate_worker_deployment_version_compute_config(
        &self,
        _r: Request<ValidateWorkerDeploymentVersionComputeConfigRequest>,
    ) -> R<ValidateWorkerDeploymentVersionComputeConfigResponse> {
        Err(unknown_method(
            "WorkflowService",
            "validate_worker_deployment_version_compute_config",
        ))
    }

    async fn update_worker_deployment_version_metadata(
        &self,
        _r: Request<UpdateWorkerDeploymentVersionMetadataRequest>,
    ) -> R<UpdateWorkerDeploymentVersionMetadataResponse> {
        Err(unknown_method(
            "WorkflowService",
            "update_worker_deployment_version_metadata",
        ))
    }

    async fn set_worker_deployment_manager(
        &self,
        _r: Request<SetWorkerDeploymentManagerRequest>,
    ) -> R<SetWorkerDeploymentManagerResponse> {
        Err(unknown_method(
            "WorkflowService",
            "set_worker_deployment_manager",
        ))
    }

    async fn start_batch_operation(
        &self,
        _r: Request<StartBatchOperationRequest>,
    ) -> R<StartBatchOperationResponse> {
        Err(unknown_method("WorkflowService", "start_batch_operation"))
    }

    async fn stop_batch_operation(
        &self,
        _r: Request<StopBatchOperationRequest>,
    ) -> R<StopBatchOperationResponse> {
        Err(unknown_method("WorkflowService", "stop_batch_operation"))
    }

    async fn describe_batch_operation(
        &self,
        _r: Request<DescribeBatchOperationRequest>,
    ) -> R<DescribeBatchOperationResponse> {
        Err(unknown_method(
            "WorkflowService",
            "describe_batch_operation",
        ))
    }

    async fn list_batch_operations(
        &self,
        _r: Request<ListBatchOperationsRequest>,
    ) -> R<ListBatchOperationsResponse> {
        Err(unknown_method("WorkflowService", "list_batch_operations"))
    }

    async fn poll_nexus_task_queue(
        &self,
        _r: Request<PollNexusTaskQueueRequest>,
    ) -> R<PollNexusTaskQueueResponse> {
        Err(unknown_method("WorkflowService", "poll_nexus_task_queue"))
    }

    async fn respond_nexus_task_completed(
        &self,
        _r: Request<RespondNexusTaskCompletedRequest>,
    ) -> R<RespondNexusTaskCompletedResponse> {
        Err(unknown_method(
            "WorkflowService",
            "respond_nexus_task_completed",
        ))
    }

    async fn respond_nexus_task_failed(
        &self,
        _r: Request<RespondNexusTaskFailedRequest>,
    ) -> R<RespondNexusTaskFailedResponse> {
        Err(unknown_method(
            "WorkflowService",
            "respond_nexus_task_failed",
        ))
    }

    async fn update_activity_options(
        &self,
        _r: Request<UpdateActivityOptionsRequest>,
    ) -> R<UpdateActivityOptionsResponse> {
        Err(unknown_method("WorkflowService", "update_activity_options"))
    }

    async fn update_workflow_execution_options(
        &self,
        _r: Request<UpdateWorkflowExecutionOptionsRequest>,
    ) -> R<UpdateWorkflowExecutionOptionsResponse> {
        Err(unknown_method(
            "WorkflowService",
            "update_workflow_execution_options",
        ))
    }

    async fn pause_activity(&self, _r: Request<PauseActivityRequest>) -> R<PauseActivityResponse> {
        Err(unknown_method("WorkflowService", "pause_activity"))
    }

    async fn unpause_activity(
        &self,
        _r: Request<UnpauseActivityRequest>,
    ) -> R<UnpauseActivityResponse> {
        Err(unknown_method("WorkflowService", "unpause_activity"))
    }

    async fn reset_activity(&self, _r: Request<ResetActivityRequest>) -> R<ResetActivityResponse> {
        Err(unknown_method("WorkflowService", "reset_activity"))
    }

    async fn create_workflow_rule(
        &self,
        _r: Request<CreateWorkflowRuleRequest>,
    ) -> R<CreateWorkflowRuleResponse> {
        Err(unknown_method("WorkflowService", "create_workflow_rule"))
    }

    async fn describe_workflow_rule(
        &self,
        _r: Request<DescribeWorkflowRuleRequest>,
    ) -> R<DescribeWorkflowRuleResponse> {
        Err(unknown_method("WorkflowService", "describe_workflow_rule"))
    }

    async fn delete_workflow_rule(
        &self,
        _r: Request<DeleteWorkflowRuleRequest>,
    ) -> R<DeleteWorkflowRuleResponse> {
        Err(unknown_method("WorkflowService", "delete_workflow_rule"))
    }

    async fn list_workflow_rules(
        &self,
        _r: Request<ListWorkflowRulesRequest>,
    ) -> R<ListWorkflowRulesResponse> {
        Err(unknown_method("WorkflowService", "list_workflow_rules"))
    }

    async fn trigger_workflow_rule(
        &self,
        _r: Request<TriggerWorkflowRuleRequest>,
    ) -> R<TriggerWorkflowRuleResponse> {
        Err(unknown_method("WorkflowService", "trigger_workflow_rule"))
    }

    async fn list_workers(&self, _r: Request<ListWorkersRequest>) -> R<ListWorkersResponse> {
        Err(unknown_method("WorkflowService", "list_workers"))
    }

    async fn count_workers(&self, _r: Request<CountWorkersRequest>) -> R<CountWorkersResponse> {
        Err(unknown_method("WorkflowService", "count_workers"))
    }

    async fn update_task_queue_config(
        &self,
        _r: Request<UpdateTaskQueueConfigRequest>,
    ) -> R<UpdateTaskQueueConfigResponse> {
        Err(unknown_method(
            "WorkflowService",
            "update_task_queue_config",
        ))
    }

    async fn fetch_worker_config(
        &self,
        _r: Request<FetchWorkerConfigRequest>,
    ) -> R<FetchWorkerConfigResponse> {
        Err(unknown_method("WorkflowService", "fetch_worker_config"))
    }

    async fn update_worker_config(
        &self,
        _r: Request<UpdateWorkerConfigRequest>,
    ) -> R<UpdateWorkerConfigResponse> {
        Err(unknown_method("WorkflowService", "update_worker_config"))
    }

    async fn describe_worker(
        &self,
        _r: Request<DescribeWorkerRequest>,
    ) -> R<DescribeWorkerResponse> {
        Err(unknown_method("WorkflowService", "describe_worker"))
    }

    async fn pause_workflow_execution(
        &self,
        _r: Request<PauseWorkflowExecutionRequest>,
    ) -> R<PauseWorkflowExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "pause_workflow_execution",
        ))
    }

    async fn unpause_workflow_execution(
        &self,
        _r: Request<UnpauseWorkflowExecutionRequest>,
    ) -> R<UnpauseWorkflowExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "unpause_workflow_execution",
        ))
    }

    async fn start_activity_execution(
        &self,
        _r: Request<StartActivityExecutionRequest>,
    ) -> R<StartActivityExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "start_activity_execution",
        ))
    }

    async fn start_nexus_operation_execution(
        &self,
        _r: Request<StartNexusOperationExecutionRequest>,
    ) -> R<StartNexusOperationExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "start_nexus_operation_execution",
        ))
    }

    async fn describe_activity_execution(
        &self,
        _r: Request<DescribeActivityExecutionRequest>,
    ) -> R<DescribeActivityExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "describe_activity_execution",
        ))
    }

    async fn describe_nexus_operation_execution(
        &self,
        _r: Request<DescribeNexusOperationExecutionRequest>,
    ) -> R<DescribeNexusOperationExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "describe_nexus_operation_execution",
        ))
    }

    async fn poll_activity_execution(
        &self,
        _r: Request<PollActivityExecutionRequest>,
    ) -> R<PollActivityExecutionResponse> {
        Err(unknown_method("WorkflowService", "poll_activity_execution"))
    }

    async fn poll_nexus_operation_execution(
        &self,
        _r: Request<PollNexusOperationExecutionRequest>,
    ) -> R<PollNexusOperationExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "poll_nexus_operation_execution",
        ))
    }

    async fn list_activity_executions(
        &self,
        _r: Request<ListActivityExecutionsRequest>,
    ) -> R<ListActivityExecutionsResponse> {
        Err(unknown_method(
            "WorkflowService",
            "list_activity_executions",
        ))
    }

    async fn list_nexus_operation_executions(
        &self,
        _r: Request<ListNexusOperationExecutionsRequest>,
    ) -> R<ListNexusOperationExecutionsResponse> {
        Err(unknown_method(
            "WorkflowService",
            "list_nexus_operation_executions",
        ))
    }

    async fn count_activity_executions(
        &self,
        _r: Request<CountActivityExecutionsRequest>,
    ) -> R<CountActivityExecutionsResponse> {
        Err(unknown_method(
            "WorkflowService",
            "count_activity_executions",
        ))
    }

    async fn count_nexus_operation_executions(
        &self,
        _r: Request<CountNexusOperationExecutionsRequest>,
    ) -> R<CountNexusOperationExecutionsResponse> {
        Err(unknown_method(
            "WorkflowService",
            "count_nexus_operation_executions",
        ))
    }

    async fn request_cancel_activity_execution(
        &self,
        _r: Request<RequestCancelActivityExecutionRequest>,
    ) -> R<RequestCancelActivityExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "request_cancel_activity_execution",
        ))
    }

    async fn request_cancel_nexus_operation_execution(
        &self,
        _r: Request<RequestCancelNexusOperationExecutionRequest>,
    ) -> R<RequestCancelNexusOperationExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "request_cancel_nexus_operation_execution",
        ))
    }

    async fn terminate_activity_execution(
        &self,
        _r: Request<TerminateActivityExecutionRequest>,
    ) -> R<TerminateActivityExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "terminate_activity_execution",
        ))
    }

    async fn delete_activity_execution(
        &self,
        _r: Request<DeleteActivityExecutionRequest>,
    ) -> R<DeleteActivityExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "delete_activity_execution",
        ))
    }

    async fn pause_activity_execution(
        &self,
        _r: Request<PauseActivityExecutionRequest>,
    ) -> R<PauseActivityExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "pause_activity_execution",
        ))
    }

    async fn reset_activity_execution(
        &self,
        _r: Request<ResetActivityExecutionRequest>,
    ) -> R<ResetActivityExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "reset_activity_execution",
        ))
    }

    async fn unpause_activity_execution(
        &self,
        _r: Request<UnpauseActivityExecutionRequest>,
    ) -> R<UnpauseActivityExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "unpause_activity_execution",
        ))
    }

    async fn update_activity_execution_options(
        &self,
        _r: Request<UpdateActivityExecutionOptionsRequest>,
    ) -> R<UpdateActivityExecutionOptionsResponse> {
        Err(unknown_method(
            "WorkflowService",
            "update_activity_execution_options",
        ))
    }

    async fn terminate_nexus_operation_execution(
        &self,
        _r: Request<TerminateNexusOperationExecutionRequest>,
    ) -> R<TerminateNexusOperationExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "terminate_nexus_operation_execution",
        ))
    }

    async fn delete_nexus_operation_execution(
        &self,
        _r: Request<DeleteNexusOperationExecutionRequest>,
    ) -> R<DeleteNexusOperationExecutionResponse> {
        Err(unknown_method(
            "WorkflowService",
            "delete_nexus_operation_execution",
        ))
    }

    async fn poll_workflow_execution_time_skipping(
        &self,
        _r: Request<PollWorkflowExecutionTimeSkippingRequest>,
    ) -> R<PollWorkflowExecutionTimeSkippingResponse> {
        Err(unknown_method(
            "WorkflowService",
            "poll_workflow_execution_time_skipping",
        ))
    }
}
