//! The OperatorService: search attribute registration (the calls SDKs and the CLI use).
//! The other RPCs (namespace deletion, cluster and nexus endpoint management) answer
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
}
