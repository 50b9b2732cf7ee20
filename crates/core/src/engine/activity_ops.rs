//! Activity operations: PauseActivity, UnpauseActivity, ResetActivity and
//! UpdateActivityOptions, each one transition of the run (the functional core is
//! `mutable::activity_ops`). As in Temporal they write no history event; the mutable state
//! keeps the pause, so it survives a restart.

use std::collections::HashMap;
use std::time::Duration;

use perdure_proto::api::activity::v1::ActivityOptions;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;

use super::Engine;
use crate::clock::convert::dur;
use crate::error::{Error, Result};
use crate::matching::RunKey;
use crate::mutable::{ActivityMatch, ActivityOptionsUpdate, Tx, activity_not_found, closed_error};

fn activity_target_not_set() -> Error {
    Error::InvalidArgument("Either Activity.Id or Activity.Type should be set on request.".into())
}

/// The scheduled event ids of the activities an operation targets: an id on a closed run is
/// refused as closed, a target that matches nothing as not found (Temporal's order).
fn targeted(tx: &Tx, target: &ActivityMatch) -> Result<Vec<i64>> {
    if matches!(target, ActivityMatch::Id(_)) && !tx.is_running() {
        return Err(closed_error());
    }
    let ids = tx.activity_matches(target);
    if ids.is_empty() {
        return Err(activity_not_found());
    }
    Ok(ids)
}

/// A random offset in `[0, jitter)` (zero without a jitter).
fn jitter_offset(jitter: &Option<perdure_proto::prost_types::Duration>) -> Result<Duration> {
    if crate::clock::convert::is_negative(jitter) {
        return Err(Error::InvalidArgument(
            "invalid jitter: negative duration".into(),
        ));
    }
    let j = dur(jitter).as_nanos();
    if j == 0 {
        return Ok(Duration::ZERO);
    }
    let r = uuid::Uuid::new_v4().as_u128() % j;
    Ok(Duration::from_nanos(r as u64))
}

impl Engine {
    /// The run an activity operation addresses, checked in Temporal's order: workflow id, then
    /// the activity, then the namespace, then the run.
    async fn activity_op_run(
        &self,
        namespace: &str,
        execution: Option<&perdure_proto::api::common::v1::WorkflowExecution>,
        target: Option<&ActivityMatch>,
    ) -> Result<RunKey> {
        if execution.is_none_or(|e| e.workflow_id.is_empty()) {
            return Err(Error::InvalidArgument(
                "WorkflowId is not set on request.".into(),
            ));
        }
        if target.is_none() {
            return Err(activity_target_not_set());
        }
        let ns = self.namespace(namespace)?;
        self.resolve(&ns.id, execution).await
    }

    /// PauseActivity: the activity (or every pending one of a type) is paused.
    pub async fn pause_activity(&self, req: PauseActivityRequest) -> Result<()> {
        self.pause_activity_in(None, req).await
    }

    /// The same on a run already resolved (`key`), as for a standalone activity.
    pub async fn pause_activity_in(
        &self,
        key: Option<RunKey>,
        req: PauseActivityRequest,
    ) -> Result<()> {
        use pause_activity_request::Activity;
        let target = req.activity.clone().map(|a| match a {
            Activity::Id(id) => ActivityMatch::Id(id),
            Activity::Type(t) => ActivityMatch::Type(t),
        });
        let key = match key {
            Some(k) => k,
            None => {
                self.activity_op_run(&req.namespace, req.execution.as_ref(), target.as_ref())
                    .await?
            }
        };
        let target = target.unwrap_or(ActivityMatch::All);
        self.mutate(key, move |tx, _| {
            for sched in targeted(tx, &target)? {
                tx.pause_activity(sched, &req.identity, &req.reason, &req.request_id)?;
            }
            Ok(())
        })
        .await
    }

    /// UnpauseActivity: paused activities run again (those not paused are left alone).
    pub async fn unpause_activity(&self, req: UnpauseActivityRequest) -> Result<()> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: UnpauseActivityResponse = self.forward(&to, "UnpauseActivity", &req).await?;
            return Ok(());
        }
        self.unpause_activity_in(None, req).await
    }

    /// The same on a run already resolved (`key`), as for a standalone activity.
    pub async fn unpause_activity_in(
        &self,
        key: Option<RunKey>,
        req: UnpauseActivityRequest,
    ) -> Result<()> {
        use unpause_activity_request::Activity;
        let target = req.activity.clone().and_then(|a| match a {
            Activity::Id(id) => Some(ActivityMatch::Id(id)),
            Activity::Type(t) => Some(ActivityMatch::Type(t)),
            Activity::UnpauseAll(true) => Some(ActivityMatch::All),
            Activity::UnpauseAll(false) => None,
        });
        let key = match key {
            Some(k) => k,
            None => {
                self.activity_op_run(&req.namespace, req.execution.as_ref(), target.as_ref())
                    .await?
            }
        };
        let delay = jitter_offset(&req.jitter)?;
        let target = target.unwrap_or(ActivityMatch::All);
        self.mutate(key, move |tx, _| {
            if !tx.is_running() {
                return Err(closed_error());
            }
            for sched in targeted(tx, &target)? {
                tx.unpause_activity(sched, req.reset_attempts, req.reset_heartbeat, delay)?;
            }
            Ok(())
        })
        .await
    }

    /// ResetActivity: attempts start again from 1 (see `Tx::reset_activity`).
    pub async fn reset_activity(&self, req: ResetActivityRequest) -> Result<()> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: ResetActivityResponse = self.forward(&to, "ResetActivity", &req).await?;
            return Ok(());
        }
        self.reset_activity_in(None, req).await
    }

    /// The same on a run already resolved (`key`), as for a standalone activity.
    pub async fn reset_activity_in(
        &self,
        key: Option<RunKey>,
        req: ResetActivityRequest,
    ) -> Result<()> {
        use reset_activity_request::Activity;
        let target = req.activity.clone().and_then(|a| match a {
            Activity::Id(id) => Some(ActivityMatch::Id(id)),
            Activity::Type(t) => Some(ActivityMatch::Type(t)),
            Activity::MatchAll(true) => Some(ActivityMatch::All),
            Activity::MatchAll(false) => None,
        });
        let key = match key {
            Some(k) => k,
            None => {
                self.activity_op_run(&req.namespace, req.execution.as_ref(), target.as_ref())
                    .await?
            }
        };
        let delay = jitter_offset(&req.jitter)?;
        let target = target.unwrap_or(ActivityMatch::All);
        let mut originals = HashMap::new();
        if req.restore_original_options {
            originals = self.original_options(&key, &target).await?;
        }
        self.mutate(key, move |tx, _| {
            for sched in targeted(tx, &target)? {
                let original = if req.restore_original_options {
                    Some(originals.get(&sched).cloned().ok_or_else(|| {
                        Error::Unavailable("the activity changed meanwhile; try again".into())
                    })?)
                } else {
                    None
                };
                tx.reset_activity(sched, req.reset_heartbeat, req.keep_paused, delay, original)?;
            }
            Ok(())
        })
        .await
    }

    /// UpdateActivityOptions: the masked options applied to the activity (or every pending one
    /// of a type); returns the options of the last one updated.
    pub async fn update_activity_options(
        &self,
        req: UpdateActivityOptionsRequest,
    ) -> Result<UpdateActivityOptionsResponse> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: UpdateActivityOptionsResponse =
                self.forward(&to, "UpdateActivityOptions", &req).await?;
            return Ok(_r);
        }
        self.update_activity_options_in(None, req).await
    }

    /// The same on a run already resolved (`key`), as for a standalone activity.
    pub async fn update_activity_options_in(
        &self,
        key: Option<RunKey>,
        req: UpdateActivityOptionsRequest,
    ) -> Result<UpdateActivityOptionsResponse> {
        use update_activity_options_request::Activity;
        let target = req.activity.clone().and_then(|a| match a {
            Activity::Id(id) => Some(ActivityMatch::Id(id)),
            Activity::Type(t) => Some(ActivityMatch::Type(t)),
            Activity::MatchAll(true) => Some(ActivityMatch::All),
            Activity::MatchAll(false) => None,
        });
        let key = match key {
            Some(k) => k,
            None => {
                self.activity_op_run(&req.namespace, req.execution.as_ref(), target.as_ref())
                    .await?
            }
        };
        let paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        if req.restore_original && !paths.is_empty() {
            return Err(Error::InvalidArgument(
                "Both UpdateMask and RestoreOriginal are provided".into(),
            ));
        }
        let target = target.unwrap_or(ActivityMatch::All);
        if req.restore_original {
            let originals = self.original_options(&key, &target).await?;
            return self
                .mutate(key, move |tx, _| {
                    let ids = tx.activity_matches(&target);
                    if ids.is_empty() {
                        return Err(activity_not_found());
                    }
                    let mut last = None;
                    for sched in ids {
                        let o = originals.get(&sched).cloned().ok_or_else(|| {
                            Error::Unavailable("the activity changed meanwhile; try again".into())
                        })?;
                        last = Some(tx.restore_activity_options(sched, o)?);
                    }
                    Ok(UpdateActivityOptionsResponse {
                        activity_options: last,
                    })
                })
                .await;
        }
        let has_mask = req.update_mask.is_some();
        let options = req.activity_options;
        self.mutate(key, move |tx, _| {
            if !tx.is_running() {
                return Err(closed_error());
            }
            let Some(options) = options else {
                return Err(Error::InvalidArgument(
                    "ActivityOptions are not provided".into(),
                ));
            };
            let ids = tx.activity_matches(&target);
            if ids.is_empty() {
                return Err(activity_not_found());
            }
            if !has_mask {
                return Err(Error::InvalidArgument("UpdateMask is not provided".into()));
            }
            let update = ActivityOptionsUpdate { options, paths };
            let mut last = None;
            for sched in ids {
                last = Some(tx.update_activity_options(sched, &update)?);
            }
            Ok(UpdateActivityOptionsResponse {
                activity_options: last,
            })
        })
        .await
    }

    /// The options each targeted activity was scheduled with, read from its
    /// ActivityTaskScheduled event (for restore_original).
    async fn original_options(
        &self,
        key: &RunKey,
        target: &ActivityMatch,
    ) -> Result<HashMap<i64, ActivityOptions>> {
        let entry = self.entry(key).await?;
        let data = entry.data.lock().await;
        let ids: Vec<i64> = data
            .state
            .activities
            .iter()
            .filter(|a| match target {
                ActivityMatch::Id(id) => a.activity_id == *id,
                ActivityMatch::Type(t) => a.activity_type == *t,
                ActivityMatch::All => true,
            })
            .map(|a| a.scheduled_event_id)
            .collect();
        let mut out = HashMap::new();
        for id in ids {
            let Some(e) = self.history_event(&data, id).await? else {
                return Err(Error::InvalidArgument(
                    "ActivityTaskScheduledEvent not found".into(),
                ));
            };
            let Some(A::ActivityTaskScheduledEventAttributes(s)) = e.attributes else {
                return Err(Error::InvalidArgument(
                    "ActivityTaskScheduledEvent is invalid".into(),
                ));
            };
            out.insert(
                id,
                ActivityOptions {
                    task_queue: Some(TaskQueue {
                        name: s.task_queue.map(|q| q.name).unwrap_or_default(),
                        ..Default::default()
                    }),
                    schedule_to_close_timeout: s.schedule_to_close_timeout,
                    schedule_to_start_timeout: s.schedule_to_start_timeout,
                    start_to_close_timeout: s.start_to_close_timeout,
                    heartbeat_timeout: s.heartbeat_timeout,
                    retry_policy: s.retry_policy,
                    priority: s.priority,
                    start_delay: None,
                },
            );
        }
        Ok(out)
    }
}
