//! Batch operations: StartBatchOperation (terminate, cancel, signal or delete the executions of a
//! list or a visibility query, in the background), StopBatchOperation, DescribeBatchOperation and
//! ListBatchOperations.

use perdure_proto::api::workflowservice::v1::*;
use tonic::Request;

use super::{R, WorkflowApi, ok, status};

impl WorkflowApi {
    pub(super) async fn start_batch_operation(
        &self,
        r: Request<StartBatchOperationRequest>,
    ) -> R<StartBatchOperationResponse> {
        self.engine
            .start_batch(r.into_inner())
            .await
            .map_err(status)?;
        ok(StartBatchOperationResponse {})
    }

    pub(super) async fn stop_batch_operation(
        &self,
        r: Request<StopBatchOperationRequest>,
    ) -> R<StopBatchOperationResponse> {
        self.engine
            .stop_batch(r.into_inner())
            .await
            .map_err(status)?;
        ok(StopBatchOperationResponse {})
    }

    pub(super) async fn describe_batch_operation(
        &self,
        r: Request<DescribeBatchOperationRequest>,
    ) -> R<DescribeBatchOperationResponse> {
        ok(self
            .engine
            .describe_batch(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn list_batch_operations(
        &self,
        r: Request<ListBatchOperationsRequest>,
    ) -> R<ListBatchOperationsResponse> {
        ok(self
            .engine
            .list_batches(r.into_inner())
            .await
            .map_err(status)?)
    }
}
