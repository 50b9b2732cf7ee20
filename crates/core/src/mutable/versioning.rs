//! Worker versioning of a run: what the versioned worker that completed a workflow task declared
//! (deployment version and `VersioningBehavior`), a client's `VersioningOverride`, and where the
//! run's tasks must go as a result.

use perdure_proto::api::deployment::v1::WorkerDeploymentVersion;
use perdure_proto::api::enums::v1::{VersioningBehavior, WorkerVersioningMode};
use perdure_proto::api::history::v1::WorkflowExecutionOptionsUpdatedEventAttributes;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::workflow::v1::versioning_override::{Override, PinnedOverride};
use perdure_proto::api::workflow::v1::{
    DeploymentVersionTransition, VersioningOverride, WorkflowExecutionVersioningInfo,
};
use perdure_proto::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest;

use super::Tx;
use crate::state::ExecutionState;

/// Temporal's string form of a version (`deployment.build`), shown in deprecated fields.
pub fn version_string(v: &WorkerDeploymentVersion) -> String {
    format!("{}.{}", v.deployment_name, v.build_id)
}

/// Parses the deprecated `deployment.build` form (the first dot separates them).
pub fn parse_version_string(s: &str) -> Option<WorkerDeploymentVersion> {
    let (d, b) = s.split_once('.')?;
    (!d.is_empty() && !b.is_empty()).then(|| WorkerDeploymentVersion {
        deployment_name: d.into(),
        build_id: b.into(),
    })
}

/// The deployment version a completion comes from, when its worker is versioned.
pub fn completion_version(
    req: &RespondWorkflowTaskCompletedRequest,
) -> Option<WorkerDeploymentVersion> {
    let o = req.deployment_options.as_ref()?;
    (o.worker_versioning_mode == WorkerVersioningMode::Versioned as i32
        && !o.deployment_name.is_empty()
        && !o.build_id.is_empty())
    .then(|| WorkerDeploymentVersion {
        deployment_name: o.deployment_name.clone(),
        build_id: o.build_id.clone(),
    })
}

/// The build id fields of a WorkflowTaskCompleted event: a worker that sends deployment options
/// with a build id gets it as `worker_version` (and no binary checksum), as Temporal records it.
pub fn build_stamp(
    req: &RespondWorkflowTaskCompletedRequest,
) -> (
    String,
    Option<perdure_proto::api::common::v1::WorkerVersionStamp>,
) {
    match req.deployment_options.as_ref() {
        Some(o) if !o.build_id.is_empty() && req.worker_version_stamp.is_none() => (
            String::new(),
            Some(perdure_proto::api::common::v1::WorkerVersionStamp {
                build_id: o.build_id.clone(),
                ..Default::default()
            }),
        ),
        _ => (
            req.binary_checksum.clone(),
            req.worker_version_stamp.clone(),
        ),
    }
}

/// The override normalised to its current form (the deprecated `behavior` + `pinned_version`
/// become `pinned`/`auto_upgrade`). `Err` for an override that says nothing usable.
pub fn normalize_override(o: &VersioningOverride) -> Result<VersioningOverride, String> {
    #[allow(deprecated)]
    let ov = match &o.r#override {
        Some(Override::Pinned(p)) => {
            let v = p.version.clone().unwrap_or_default();
            if v.deployment_name.is_empty() || v.build_id.is_empty() {
                return Err("Pinned override must have a version.".into());
            }
            Override::Pinned(PinnedOverride {
                behavior: p.behavior,
                version: Some(v),
            })
        }
        Some(Override::AutoUpgrade(true)) => Override::AutoUpgrade(true),
        Some(Override::OneTime(_)) => {
            return Err("one-time versioning overrides are not supported".into());
        }
        Some(Override::AutoUpgrade(false)) | None => {
            if o.behavior == VersioningBehavior::Pinned as i32 {
                let v = parse_version_string(&o.pinned_version)
                    .ok_or_else(|| "Pinned override must have a version.".to_string())?;
                Override::Pinned(PinnedOverride {
                    behavior: 1,
                    version: Some(v),
                })
            } else if o.behavior == VersioningBehavior::AutoUpgrade as i32 {
                Override::AutoUpgrade(true)
            } else {
                return Err("Versioning override behavior must be specified.".into());
            }
        }
    };
    Ok(VersioningOverride {
        r#override: Some(ov),
        ..Default::default()
    })
}

/// The version a run's tasks are pinned to: a pinned override's, else the worker's version when
/// it declared PINNED (an auto-upgrade override wins over that). `None`: the run follows its
/// task queue's current (or ramping) version.
pub fn pinned_version(state: &ExecutionState) -> Option<WorkerDeploymentVersion> {
    match state
        .versioning_override
        .as_ref()
        .and_then(|o| o.r#override.as_ref())
    {
        Some(Override::Pinned(p)) => return p.version.clone(),
        Some(Override::AutoUpgrade(true)) => return None,
        _ => {}
    }
    if state.versioning_behavior == VersioningBehavior::Pinned as i32 {
        state.deployment_version.clone()
    } else {
        None
    }
}

/// DescribeWorkflowExecution's `versioning_info`; `None` for a run that never met versioning.
/// `target` is where the run's next task goes when that differs from its version (a transition).
pub fn versioning_info(
    state: &ExecutionState,
    target: Option<WorkerDeploymentVersion>,
) -> Option<WorkflowExecutionVersioningInfo> {
    if state.deployment_version.is_none()
        && state.versioning_override.is_none()
        && state.versioning_behavior == 0
    {
        return None;
    }
    #[allow(deprecated)]
    Some(WorkflowExecutionVersioningInfo {
        behavior: state.versioning_behavior,
        version: state
            .deployment_version
            .as_ref()
            .map(version_string)
            .unwrap_or_default(),
        deployment_version: state.deployment_version.clone(),
        versioning_override: state.versioning_override.as_ref().map(|o| {
            let mut o = o.clone();
            // Also the deprecated fields, as Temporal answers them.
            match &o.r#override {
                Some(Override::Pinned(p)) => {
                    o.behavior = VersioningBehavior::Pinned as i32;
                    o.pinned_version = p.version.as_ref().map(version_string).unwrap_or_default();
                }
                Some(Override::AutoUpgrade(true)) => {
                    o.behavior = VersioningBehavior::AutoUpgrade as i32;
                }
                _ => {}
            }
            o
        }),
        version_transition: target
            .filter(|t| state.deployment_version.as_ref() != Some(t))
            .map(|t| DeploymentVersionTransition {
                version: version_string(&t),
                deployment_version: Some(t),
            }),
        ..Default::default()
    })
}

impl Tx<'_> {
    /// Records what the worker that completed a workflow task declared; returns the versioning
    /// fields of its WorkflowTaskCompleted event: behavior, deployment name and version.
    pub fn record_worker_version(
        &mut self,
        req: &RespondWorkflowTaskCompletedRequest,
    ) -> (i32, String, Option<WorkerDeploymentVersion>) {
        match completion_version(req) {
            Some(v) => {
                self.state.versioning_behavior = req.versioning_behavior;
                self.state.deployment_version = Some(v.clone());
                (req.versioning_behavior, v.deployment_name.clone(), Some(v))
            }
            None => {
                self.state.versioning_behavior = 0;
                self.state.deployment_version = None;
                (0, String::new(), None)
            }
        }
    }

    /// Sets or clears the run's versioning override and writes WorkflowExecutionOptionsUpdated.
    /// A pinned override moves a workflow task that has not started yet to its version (the
    /// shell re-dispatches it).
    pub fn set_versioning_override(&mut self, ov: Option<VersioningOverride>, identity: &str) {
        let unset = ov.is_none();
        self.state.versioning_override = ov.clone();
        self.add(A::WorkflowExecutionOptionsUpdatedEventAttributes(
            WorkflowExecutionOptionsUpdatedEventAttributes {
                versioning_override: ov,
                unset_versioning_override: unset,
                identity: identity.to_string(),
                priority: Some(Default::default()),
                ..Default::default()
            },
        ));
        // As Temporal marks it: SDKs that do not know the event skip it.
        let last = if self.wft_started() {
            self.state.buffered_events.last_mut()
        } else {
            self.events.last_mut()
        };
        if let Some(e) = last {
            e.worker_may_ignore = true;
        }
        self.changed = true;
        self.redispatch_wft();
    }

    /// Queues the scheduled (not started) workflow task again under a new dispatch sequence, so
    /// the copy queued for another version is stale; the shell routes the new one.
    pub fn redispatch_wft(&mut self) {
        let seq = self.state.state_transition_count + self.state.next_event_id * 1_000_000 + 1;
        if let Some(w) = self.state.wft.as_mut()
            && w.started_event_id == 0
            && !w.sticky
        {
            w.dispatch_seq = seq.max(w.dispatch_seq + 1);
            self.changed = true;
            self.effects.push(super::Effect::DispatchWorkflowTask);
        }
    }
}
