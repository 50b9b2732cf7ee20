//! Visibility: list, scan and count workflow executions, and the search attributes.

use perdure_proto::api::workflowservice::v1::*;
use tonic::Request;

use super::{R, WorkflowApi, ok, status};
use tonic::Status;

impl WorkflowApi {
    /// Archival is not configured (as on Temporal's dev server): Temporal's answer.
    pub(super) async fn list_archived_workflow_executions(
        &self,
        r: Request<ListArchivedWorkflowExecutionsRequest>,
    ) -> R<ListArchivedWorkflowExecutionsResponse> {
        self.engine
            .namespace(&r.into_inner().namespace)
            .map_err(status)?;
        Err(Status::invalid_argument(
            "Cluster is not configured for visibility archival.",
        ))
    }

    pub(super) async fn list_workflow_executions(
        &self,
        r: Request<ListWorkflowExecutionsRequest>,
    ) -> R<ListWorkflowExecutionsResponse> {
        ok(self.engine.list(r.into_inner()).await.map_err(status)?)
    }

    pub(super) async fn list_open_workflow_executions(
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

    pub(super) async fn list_closed_workflow_executions(
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

    pub(super) async fn scan_workflow_executions(
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

    pub(super) async fn count_workflow_executions(
        &self,
        r: Request<CountWorkflowExecutionsRequest>,
    ) -> R<CountWorkflowExecutionsResponse> {
        ok(self.engine.count(r.into_inner()).await.map_err(status)?)
    }

    pub(super) async fn get_search_attributes(
        &self,
        _r: Request<GetSearchAttributesRequest>,
    ) -> R<GetSearchAttributesResponse> {
        let (custom, system) = self.engine.search_attributes("default").map_err(status)?;
        ok(GetSearchAttributesResponse {
            keys: custom.into_iter().chain(system).collect(),
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
