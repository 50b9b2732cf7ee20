//! Namespaces: register, describe, list, update.

use perdure_proto::api::workflowservice::v1::*;
use tonic::Request;

use super::{R, WorkflowApi, ok, status};
use perdure_core::Error;

impl WorkflowApi {
    pub(super) async fn register_namespace(
        &self,
        r: Request<RegisterNamespaceRequest>,
    ) -> R<RegisterNamespaceResponse> {
        self.engine
            .register_namespace(r.into_inner())
            .await
            .map_err(status)?;
        ok(RegisterNamespaceResponse {})
    }

    pub(super) async fn describe_namespace(
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

    pub(super) async fn list_namespaces(
        &self,
        _r: Request<ListNamespacesRequest>,
    ) -> R<ListNamespacesResponse> {
        ok(ListNamespacesResponse {
            namespaces: self.engine.list_namespaces(),
            next_page_token: vec![],
        })
    }

    pub(super) async fn update_namespace(
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

    pub(super) async fn deprecate_namespace(
        &self,
        r: Request<DeprecateNamespaceRequest>,
    ) -> R<DeprecateNamespaceResponse> {
        self.engine
            .deprecate_namespace(&r.into_inner().namespace)
            .await
            .map_err(status)?;
        ok(DeprecateNamespaceResponse {})
    }
}
