//! Worker deployments (worker versioning): DescribeWorkerDeployment, ListWorkerDeployments,
//! DescribeWorkerDeploymentVersion, SetWorkerDeploymentCurrentVersion,
//! SetWorkerDeploymentRampingVersion, DeleteWorkerDeploymentVersion, DeleteWorkerDeployment,
//! UpdateWorkerDeploymentVersionMetadata, SetWorkerDeploymentManager, and
//! UpdateWorkflowExecutionOptions (a run's versioning override); the engine's `deployments`
//! shell does the work.

use perdure_proto::api::workflowservice::v1::*;
use tonic::Request;

use super::{R, WorkflowApi, ok, status};

impl WorkflowApi {
    pub(super) async fn describe_worker_deployment(
        &self,
        r: Request<DescribeWorkerDeploymentRequest>,
    ) -> R<DescribeWorkerDeploymentResponse> {
        ok(self
            .engine
            .describe_worker_deployment(r.into_inner())
            .map_err(status)?)
    }

    pub(super) async fn list_worker_deployments(
        &self,
        r: Request<ListWorkerDeploymentsRequest>,
    ) -> R<ListWorkerDeploymentsResponse> {
        ok(self
            .engine
            .list_worker_deployments(r.into_inner())
            .map_err(status)?)
    }

    pub(super) async fn describe_worker_deployment_version(
        &self,
        r: Request<DescribeWorkerDeploymentVersionRequest>,
    ) -> R<DescribeWorkerDeploymentVersionResponse> {
        ok(self
            .engine
            .describe_worker_deployment_version(r.into_inner())
            .map_err(status)?)
    }

    pub(super) async fn set_worker_deployment_current_version(
        &self,
        r: Request<SetWorkerDeploymentCurrentVersionRequest>,
    ) -> R<SetWorkerDeploymentCurrentVersionResponse> {
        ok(self
            .engine
            .set_current_version(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn set_worker_deployment_ramping_version(
        &self,
        r: Request<SetWorkerDeploymentRampingVersionRequest>,
    ) -> R<SetWorkerDeploymentRampingVersionResponse> {
        ok(self
            .engine
            .set_ramping_version(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn delete_worker_deployment_version(
        &self,
        r: Request<DeleteWorkerDeploymentVersionRequest>,
    ) -> R<DeleteWorkerDeploymentVersionResponse> {
        self.engine
            .delete_worker_deployment_version(r.into_inner())
            .await
            .map_err(status)?;
        ok(DeleteWorkerDeploymentVersionResponse {})
    }

    pub(super) async fn delete_worker_deployment(
        &self,
        r: Request<DeleteWorkerDeploymentRequest>,
    ) -> R<DeleteWorkerDeploymentResponse> {
        self.engine
            .delete_worker_deployment(r.into_inner())
            .await
            .map_err(status)?;
        ok(DeleteWorkerDeploymentResponse {})
    }

    pub(super) async fn update_worker_deployment_version_metadata(
        &self,
        r: Request<UpdateWorkerDeploymentVersionMetadataRequest>,
    ) -> R<UpdateWorkerDeploymentVersionMetadataResponse> {
        ok(self
            .engine
            .update_version_metadata(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn set_worker_deployment_manager(
        &self,
        r: Request<SetWorkerDeploymentManagerRequest>,
    ) -> R<SetWorkerDeploymentManagerResponse> {
        ok(self
            .engine
            .set_deployment_manager(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn update_workflow_execution_options(
        &self,
        r: Request<UpdateWorkflowExecutionOptionsRequest>,
    ) -> R<UpdateWorkflowExecutionOptionsResponse> {
        ok(self
            .engine
            .update_workflow_execution_options(r.into_inner())
            .await
            .map_err(status)?)
    }
}
