//! The OperatorService: search attribute registration (the calls SDKs and the CLI use),
//! namespace deletion and the (one) cluster. Remote clusters and Nexus endpoints answer
//! UNIMPLEMENTED: the trait's defaults.

use perdure_core::Engine;
use perdure_proto::api::operatorservice::v1::*;
use perdure_proto::service::operatorservice::operator_service_server::OperatorService;
use tonic::Request;

use super::{R, ok, status};

/// The OperatorService implementation.
#[derive(Clone)]
pub struct OperatorApi {
    pub engine: Engine,
    /// This frontend's gRPC address, reported as the cluster's.
    pub address: String,
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

    async fn delete_namespace(
        &self,
        r: Request<DeleteNamespaceRequest>,
    ) -> R<DeleteNamespaceResponse> {
        let r = r.into_inner();
        if !r.namespace_id.is_empty() && r.namespace.is_empty() {
            return Err(tonic::Status::invalid_argument(
                "Perdure deletes a namespace by name; namespace_id alone is not supported.",
            ));
        }
        let deleted_namespace = self
            .engine
            .delete_namespace(&r.namespace)
            .await
            .map_err(status)?;
        ok(DeleteNamespaceResponse { deleted_namespace })
    }

    async fn list_clusters(&self, _r: Request<ListClustersRequest>) -> R<ListClustersResponse> {
        ok(ListClustersResponse {
            clusters: vec![ClusterMetadata {
                cluster_name: super::CLUSTER_NAME.into(),
                cluster_id: self.engine.cluster_id().to_string(),
                address: self.address.clone(),
                initial_failover_version: 1,
                history_shard_count: self.engine.shard_count(),
                is_connection_enabled: true,
                ..Default::default()
            }],
            next_page_token: Vec::new(),
        })
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
}
