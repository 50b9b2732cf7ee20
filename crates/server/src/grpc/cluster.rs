//! What the server says about itself and its queues: GetSystemInfo, GetClusterInfo,
//! DescribeTaskQueue, ListTaskQueuePartitions; and the deprecated worker-versioning APIs, which
//! answer as Temporal's dev server does with them disabled.

use perdure_proto::api::taskqueue::v1::TaskQueuePartitionMetadata;
use perdure_proto::api::workflowservice::v1::*;
use tonic::{Request, Status};

use super::{R, WorkflowApi, ok, status};

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

impl WorkflowApi {
    pub(super) async fn get_system_info(
        &self,
        _r: Request<GetSystemInfoRequest>,
    ) -> R<GetSystemInfoResponse> {
        ok(GetSystemInfoResponse {
            server_version: SERVER_VERSION.into(),
            capabilities: Some(cap_default()),
        })
    }

    pub(super) async fn get_cluster_info(
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

    /// Perdure keeps one partition per task queue, owned by this process.
    pub(super) async fn list_task_queue_partitions(
        &self,
        r: Request<ListTaskQueuePartitionsRequest>,
    ) -> R<ListTaskQueuePartitionsResponse> {
        let r = r.into_inner();
        self.engine.namespace(&r.namespace).map_err(status)?;
        let name = r.task_queue.map(|q| q.name).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("taskQueue is not set"));
        }
        let partition = || {
            vec![TaskQueuePartitionMetadata {
                key: name.clone(),
                owner_host_name: self.address.clone(),
            }]
        };
        ok(ListTaskQueuePartitionsResponse {
            activity_task_queue_partitions: partition(),
            workflow_task_queue_partitions: partition(),
        })
    }

    pub(super) async fn describe_task_queue(
        &self,
        r: Request<DescribeTaskQueueRequest>,
    ) -> R<DescribeTaskQueueResponse> {
        ok(self
            .engine
            .describe_task_queue(r.into_inner())
            .map_err(status)?)
    }
}

/// Worker versioning v0.1 (version sets) and v0.2 (rules) are deprecated; Temporal's dev server
/// has them disabled and answers every call with PERMISSION_DENIED. So does Perdure (the
/// current API is worker deployments).
macro_rules! deprecated_versioning {
    ($($rpc:ident($req:ty) -> $res:ty: $version:literal;)*) => {
        impl WorkflowApi {
            $(
                pub(super) async fn $rpc(&self, r: Request<$req>) -> R<$res> {
                    self.engine.namespace(&r.into_inner().namespace).map_err(status)?;
                    Err(Status::permission_denied(concat!(
                        "Worker versioning ", $version,
                        " is disabled on this namespace."
                    )))
                }
            )*
        }
    };
}

deprecated_versioning! {
    update_worker_build_id_compatibility(UpdateWorkerBuildIdCompatibilityRequest) -> UpdateWorkerBuildIdCompatibilityResponse: "v0.1 (Version Set-based, deprecated)";
    get_worker_build_id_compatibility(GetWorkerBuildIdCompatibilityRequest) -> GetWorkerBuildIdCompatibilityResponse: "v0.1 (Version Set-based, deprecated)";
    update_worker_versioning_rules(UpdateWorkerVersioningRulesRequest) -> UpdateWorkerVersioningRulesResponse: "v0.2 (Rules-based, deprecated)";
    get_worker_versioning_rules(GetWorkerVersioningRulesRequest) -> GetWorkerVersioningRulesResponse: "v0.2 (Rules-based, deprecated)";
    get_worker_task_reachability(GetWorkerTaskReachabilityRequest) -> GetWorkerTaskReachabilityResponse: "v0.2 (Rules-based, deprecated)";
}
