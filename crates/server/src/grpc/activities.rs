//! Activity operations on a workflow's pending activities: PauseActivity, UnpauseActivity,
//! ResetActivity, UpdateActivityOptions, and their newer forms PauseActivityExecution,
//! UnpauseActivityExecution, ResetActivityExecution and UpdateActivityExecutionOptions (what the
//! `temporal activity pause|unpause|reset|update-options` commands call), which Temporal turns
//! into the former when a workflow id is given; without one they address a standalone activity
//! (by activity id and run id), on the same engine operations.

use perdure_core::matching::RunKey;
use perdure_proto::api::common::v1::WorkflowExecution;
use perdure_proto::api::workflowservice::v1::*;
use tonic::{Request, Status};

use super::{R, WorkflowApi, ok, status};

/// The checks Temporal makes of the newer requests' activity id and run id.
fn check_execution_request(activity_id: &str, run_id: &str) -> Result<(), Status> {
    if activity_id.is_empty() {
        return Err(Status::invalid_argument("activity ID is required"));
    }
    if !run_id.is_empty() && uuid::Uuid::parse_str(run_id).is_err() {
        return Err(Status::invalid_argument(
            "invalid run id: must be a valid UUID",
        ));
    }
    Ok(())
}

impl WorkflowApi {
    /// The workflow execution of a newer request, or, without a workflow id, the standalone
    /// activity's record (the execution then names the activity id, as the record does).
    async fn activity_target(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
    ) -> Result<(WorkflowExecution, Option<RunKey>), Status> {
        if workflow_id.is_empty() {
            let key = self
                .engine
                .standalone_run(namespace, activity_id, run_id)
                .await
                .map_err(status)?;
            let execution = WorkflowExecution {
                workflow_id: activity_id.to_string(),
                run_id: key.run_id.clone(),
            };
            return Ok((execution, Some(key)));
        }
        Ok((
            WorkflowExecution {
                workflow_id: workflow_id.to_string(),
                run_id: run_id.to_string(),
            },
            None,
        ))
    }

    pub(super) async fn pause_activity(
        &self,
        r: Request<PauseActivityRequest>,
    ) -> R<PauseActivityResponse> {
        self.engine
            .pause_activity(r.into_inner())
            .await
            .map_err(status)?;
        ok(PauseActivityResponse {})
    }

    pub(super) async fn unpause_activity(
        &self,
        r: Request<UnpauseActivityRequest>,
    ) -> R<UnpauseActivityResponse> {
        self.engine
            .unpause_activity(r.into_inner())
            .await
            .map_err(status)?;
        ok(UnpauseActivityResponse {})
    }

    pub(super) async fn reset_activity(
        &self,
        r: Request<ResetActivityRequest>,
    ) -> R<ResetActivityResponse> {
        self.engine
            .reset_activity(r.into_inner())
            .await
            .map_err(status)?;
        ok(ResetActivityResponse {})
    }

    pub(super) async fn update_activity_options(
        &self,
        r: Request<UpdateActivityOptionsRequest>,
    ) -> R<UpdateActivityOptionsResponse> {
        ok(self
            .engine
            .update_activity_options(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn pause_activity_execution(
        &self,
        r: Request<PauseActivityExecutionRequest>,
    ) -> R<PauseActivityExecutionResponse> {
        let r = r.into_inner();
        check_execution_request(&r.activity_id, &r.run_id)?;
        let (execution, key) = self
            .activity_target(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)
            .await?;
        // Temporal gives every request an id, so a second pause is refused as already paused.
        let request_id = if r.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            r.request_id
        };
        self.engine
            .pause_activity_in(
                key,
                PauseActivityRequest {
                    namespace: r.namespace,
                    execution: Some(execution),
                    identity: r.identity,
                    activity: Some(pause_activity_request::Activity::Id(r.activity_id)),
                    reason: r.reason,
                    request_id,
                },
            )
            .await
            .map_err(status)?;
        ok(PauseActivityExecutionResponse {})
    }

    pub(super) async fn unpause_activity_execution(
        &self,
        r: Request<UnpauseActivityExecutionRequest>,
    ) -> R<UnpauseActivityExecutionResponse> {
        let r = r.into_inner();
        check_execution_request(&r.activity_id, &r.run_id)?;
        let (execution, key) = self
            .activity_target(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)
            .await?;
        self.engine
            .unpause_activity_in(
                key,
                UnpauseActivityRequest {
                    namespace: r.namespace,
                    execution: Some(execution),
                    identity: r.identity,
                    activity: Some(unpause_activity_request::Activity::Id(r.activity_id)),
                    jitter: r.jitter,
                    ..Default::default()
                },
            )
            .await
            .map_err(status)?;
        ok(UnpauseActivityExecutionResponse {})
    }

    pub(super) async fn reset_activity_execution(
        &self,
        r: Request<ResetActivityExecutionRequest>,
    ) -> R<ResetActivityExecutionResponse> {
        let r = r.into_inner();
        check_execution_request(&r.activity_id, &r.run_id)?;
        let (execution, key) = self
            .activity_target(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)
            .await?;
        self.engine
            .reset_activity_in(
                key,
                ResetActivityRequest {
                    namespace: r.namespace,
                    execution: Some(execution),
                    identity: r.identity,
                    activity: Some(reset_activity_request::Activity::Id(r.activity_id)),
                    reset_heartbeat: r.reset_heartbeat,
                    keep_paused: r.keep_paused,
                    jitter: r.jitter,
                    restore_original_options: r.restore_original_options,
                },
            )
            .await
            .map_err(status)?;
        ok(ResetActivityExecutionResponse {})
    }

    pub(super) async fn update_activity_execution_options(
        &self,
        r: Request<UpdateActivityExecutionOptionsRequest>,
    ) -> R<UpdateActivityExecutionOptionsResponse> {
        let r = r.into_inner();
        check_execution_request(&r.activity_id, &r.run_id)?;
        let (execution, key) = self
            .activity_target(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)
            .await?;
        let paths = r
            .update_mask
            .as_ref()
            .map(|m| m.paths.as_slice())
            .unwrap_or_default();
        if !paths.is_empty() && r.restore_original {
            return Err(Status::invalid_argument(
                "Both UpdateMask and RestoreOriginal are provided",
            ));
        }
        if !r.restore_original {
            if r.activity_options.is_none() {
                return Err(Status::invalid_argument("ActivityOptions are not provided"));
            }
            if r.update_mask.is_none() {
                return Err(Status::invalid_argument("UpdateMask is not provided"));
            }
            if paths.is_empty() {
                return Err(Status::invalid_argument(
                    "UpdateMask must specify at least one path",
                ));
            }
            if let Some(p) = paths
                .iter()
                .find(|p| !perdure_core::mutable::is_updatable_path(p))
            {
                return Err(Status::invalid_argument(format!(
                    "unsupported update_mask path: {p:?}"
                )));
            }
        }
        let resp = self
            .engine
            .update_activity_options_in(
                key,
                UpdateActivityOptionsRequest {
                    namespace: r.namespace,
                    execution: Some(execution),
                    identity: r.identity,
                    activity_options: r.activity_options,
                    update_mask: r.update_mask,
                    activity: Some(update_activity_options_request::Activity::Id(r.activity_id)),
                    restore_original: r.restore_original,
                },
            )
            .await
            .map_err(status)?;
        ok(UpdateActivityExecutionOptionsResponse {
            activity_options: resp.activity_options,
        })
    }
}
