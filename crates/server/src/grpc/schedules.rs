//! Schedules: CreateSchedule, DescribeSchedule, UpdateSchedule, PatchSchedule,
//! ListScheduleMatchingTimes, DeleteSchedule, ListSchedules and CountSchedules (the engine's
//! `schedules` shell does the work).

use perdure_proto::api::workflowservice::v1::*;
use tonic::Request;

use super::{R, WorkflowApi, ok, status};

impl WorkflowApi {
    pub(super) async fn create_schedule(
        &self,
        r: Request<CreateScheduleRequest>,
    ) -> R<CreateScheduleResponse> {
        ok(self
            .engine
            .create_schedule(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn describe_schedule(
        &self,
        r: Request<DescribeScheduleRequest>,
    ) -> R<DescribeScheduleResponse> {
        ok(self
            .engine
            .describe_schedule(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn update_schedule(
        &self,
        r: Request<UpdateScheduleRequest>,
    ) -> R<UpdateScheduleResponse> {
        self.engine
            .update_schedule(r.into_inner())
            .await
            .map_err(status)?;
        ok(UpdateScheduleResponse {})
    }

    pub(super) async fn patch_schedule(
        &self,
        r: Request<PatchScheduleRequest>,
    ) -> R<PatchScheduleResponse> {
        self.engine
            .patch_schedule(r.into_inner())
            .await
            .map_err(status)?;
        ok(PatchScheduleResponse {})
    }

    pub(super) async fn list_schedule_matching_times(
        &self,
        r: Request<ListScheduleMatchingTimesRequest>,
    ) -> R<ListScheduleMatchingTimesResponse> {
        ok(self
            .engine
            .list_schedule_matching_times(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn delete_schedule(
        &self,
        r: Request<DeleteScheduleRequest>,
    ) -> R<DeleteScheduleResponse> {
        self.engine
            .delete_schedule(r.into_inner())
            .await
            .map_err(status)?;
        ok(DeleteScheduleResponse {})
    }

    pub(super) async fn list_schedules(
        &self,
        r: Request<ListSchedulesRequest>,
    ) -> R<ListSchedulesResponse> {
        ok(self
            .engine
            .list_schedules(r.into_inner())
            .await
            .map_err(status)?)
    }

    pub(super) async fn count_schedules(
        &self,
        r: Request<CountSchedulesRequest>,
    ) -> R<CountSchedulesResponse> {
        ok(self
            .engine
            .count_schedules(r.into_inner())
            .await
            .map_err(status)?)
    }
}
