//! The OperatorService: search attribute registration (the calls SDKs and the CLI use).
//! Cluster and nexus endpoint management answer UNIMPLEMENTED.

use perdure_core::Engine;
use perdure_proto::api::operatorservice::v1::*;
use perdure_proto::service::operatorservice::operator_service_server::OperatorService;
use tonic::Request;

use crate::grpc::{R, ok, status, unknown_method};

/// The OperatorService implementation.
#[derive(Clone)]
pub struct OperatorApi {
    pub engine: Engine,
}

fn ns_or_default(ns: &str) -> &str {
    if ns.is_empty() { "default" } else { ns }
}

#[tonic::async_trait]
impl OperatorService for OperatorApi {
    async fn add_search_attributes(
        &self,
        r: Request<AddSearchAttributesRequest>,
    ) -> R<AddSearchAttributesResponse> {
        let r = r.into_inner();
        self.engine
            .add_search_attributes(ns_or_default(&r.namespace), r.search_attributes)
            .await
            .map_err(status)?;
        ok(AddSearchAttributesResponse {})
    }

    async fn remove_search_attributes(
        &self,
        r: Request<RemoveSearchAttributesRequest>,
    ) -> R<RemoveSearchAttributesResponse> {
        let r = r.into_inner();
        self.engine
            .remove_search_attributes(ns_or_default(&r.namespace), r.search_attributes)
            .await
            .map_err(status)?;
        ok(RemoveSearchAttributesResponse {})
    }

    async fn list_search_attributes(
        &self,
        r: Request<ListSearchAttributesRequest>,
    ) -> R<ListSearchAttributesResponse> {
        let r = r.into_inner();
        let (custom, system) = self
            .engine
            .search_attributes(ns_or_default(&r.namespace))
            .map_err(status)?;
        ok(ListSearchAttributesResponse {
            custom_attributes: custom,
            system_attributes: system,
            storage_schema: Default::default(),
        })
    }

    async fn delete_namespace(
        &self,
        _r: Request<DeleteNamespaceRequest>,
    ) -> R<DeleteNamespaceResponse> {
        Err(unknown_method("OperatorService", "delete_namespace"))
    }

    async fn add_or_update_remote_cluster(
        &self,
        _r: Request<AddOrUpdateRemoteClusterRequest>,
    ) -> R<AddOrUpdateRemoteClusterResponse> {
        Err(unknown_method(
            "OperatorService",
            "add_or_update_remote_cluster",
        ))
    }

    async fn remove_remote_cluster(
        &self,
        _r: Request<RemoveRemoteClusterRequest>,
    ) -> R<RemoveRemoteClusterResponse> {
        Err(unknown_method("OperatorService", "remove_remote_cluster"))
    }

    async fn list_clusters(&self, _r: Request<ListClustersRequest>) -> R<ListClustersResponse> {
        Err(unknown_method("OperatorService", "list_clusters"))
    }

    async fn get_nexus_endpoint(
        &self,
        _r: Request<GetNexusEndpointRequest>,
    ) -> R<GetNexusEndpointResponse> {
        Err(unknown_method("OperatorService", "get_nexus_endpoint"))
    }

    async fn create_nexus_endpoint(
        &self,
        _r: Request<CreateNexusEndpointRequest>,
    ) -> R<CreateNexusEndpointResponse> {
        Err(unknown_method("OperatorService", "create_nexus_endpoint"))
    }

    async fn update_nexus_endpoint(
        &self,
        _r: Request<UpdateNexusEndpointRequest>,
    ) -> R<UpdateNexusEndpointResponse> {
        Err(unknown_method("OperatorService", "update_nexus_endpoint"))
    }

    async fn delete_nexus_endpoint(
        &self,
        _r: Request<DeleteNexusEndpointRequest>,
    ) -> R<DeleteNexusEndpointResponse> {
        Err(unknown_method("OperatorService", "delete_nexus_endpoint"))
    }

    async fn list_nexus_endpoints(
        &self,
        _r: Request<ListNexusEndpointsRequest>,
    ) -> R<ListNexusEndpointsResponse> {
        Err(unknown_method("OperatorService", "list_nexus_endpoints"))
    }
}
