//! Worker deployments (worker versioning): the registry of deployments and their versions, created
//! when versioned workers poll, kept in the store and served by the Worker Deployment RPCs; the
//! routing (current and ramping version) it hands to matching; and where a run's tasks go.

use std::collections::HashMap;

use parking_lot::Mutex;
use perdure_proto::api::deployment::v1::worker_deployment_info::WorkerDeploymentVersionSummary;
use perdure_proto::api::deployment::v1::worker_deployment_version_info::VersionTaskQueueInfo;
use perdure_proto::api::deployment::v1::{
    RoutingConfig, VersionDrainageInfo, VersionMetadata, WorkerDeploymentInfo,
    WorkerDeploymentOptions, WorkerDeploymentVersion, WorkerDeploymentVersionInfo,
};
use perdure_proto::api::enums::v1::{
    RoutingConfigUpdateState, TaskQueueType, VersionDrainageStatus, WorkerDeploymentVersionStatus,
    WorkerVersioningMode,
};
use perdure_proto::api::workflow::v1::WorkflowExecutionInfo;
use perdure_proto::api::workflowservice::v1::describe_worker_deployment_version_response::VersionTaskQueue;
use perdure_proto::api::workflowservice::v1::list_worker_deployments_response::WorkerDeploymentSummary;
use perdure_proto::api::workflowservice::v1::*;
use perdure_proto::prost_types::Timestamp;
use prost::Message as _;

use super::Engine;
use crate::clock::convert::{pdur, ts};
use crate::error::{Error, Result};
use crate::matching::{QueueKind, Route, Routing, poller_key, version_key};
use crate::mutable::{pinned_version, version_string, versioning_info};
use crate::state::ExecutionState;
use crate::store::StoredDeployment;

/// How Temporal names the unversioned "version" in string fields.
pub const UNVERSIONED: &str = "__unversioned__";

/// A worker deployment as stored: routing config and versions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeploymentRecord {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub create_time: Option<Timestamp>,
    #[prost(message, optional, tag = "3")]
    pub routing: Option<RoutingConfig>,
    #[prost(string, tag = "4")]
    pub last_modifier_identity: String,
    #[prost(string, tag = "5")]
    pub manager_identity: String,
    /// In creation order.
    #[prost(message, repeated, tag = "6")]
    pub versions: Vec<WorkerDeploymentVersionInfo>,
}

/// The deployments of every namespace, by (namespace id, name); changes are serialised by
/// `write` and stored before they are applied here.
#[derive(Default)]
pub(crate) struct Registry {
    map: Mutex<HashMap<(String, String), DeploymentRecord>>,
    write: tokio::sync::Mutex<()>,
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!(
        "no Worker Deployment found with name '{name}'; does your Worker Deployment have pollers?"
    ))
}

fn build_not_found(name: &str, build: &str) -> Error {
    Error::NotFound(format!(
        "build ID '{build}' not found in Worker Deployment '{name}'"
    ))
}

fn version_not_found() -> Error {
    Error::NotFound("Worker Deployment Version not found".into())
}

fn token(rec: &DeploymentRecord) -> Vec<u8> {
    let rev = rec.routing.as_ref().map(|r| r.revision_number).unwrap_or(0);
    let mut t = b"pd1".to_vec();
    t.extend_from_slice(&rev.to_be_bytes());
    t.extend_from_slice(
        rec.create_time
            .as_ref()
            .map(|t| t.nanos)
            .unwrap_or(0)
            .to_be_bytes()
            .as_slice(),
    );
    t
}

fn status_of(v: &WorkerDeploymentVersionInfo) -> WorkerDeploymentVersionStatus {
    WorkerDeploymentVersionStatus::try_from(v.status).unwrap_or_default()
}

fn wdv(name: &str, build: &str) -> WorkerDeploymentVersion {
    WorkerDeploymentVersion {
        deployment_name: name.into(),
        build_id: build.into(),
    }
}

/// The build id a request names: the field, else the deprecated `deployment.build` string
/// ("" for `__unversioned__`).
fn requested_build(build_id: &str, version: &str, name: &str) -> Result<String> {
    if !build_id.is_empty() || version.is_empty() || version == UNVERSIONED {
        return Ok(build_id.to_string());
    }
    match version.strip_prefix(&format!("{name}.")) {
        Some(b) if !b.is_empty() => Ok(b.to_string()),
        _ => Err(Error::InvalidArgument(format!(
            "version '{version}' is not in Worker Deployment '{name}'"
        ))),
    }
}

/// The version a version request names (field, else the deprecated string).
fn requested_version(
    v: Option<&WorkerDeploymentVersion>,
    s: &str,
) -> Result<WorkerDeploymentVersion> {
    let v = match v {
        Some(v) if !v.deployment_name.is_empty() || !v.build_id.is_empty() => v.clone(),
        _ => crate::mutable::parse_version_string(s).unwrap_or_default(),
    };
    if v.deployment_name.is_empty() {
        return Err(Error::InvalidArgument(
            "deployment name cannot be empty".into(),
        ));
    }
    if v.build_id.is_empty() {
        return Err(Error::InvalidArgument("build id cannot be empty".into()));
    }
    Ok(v)
}

fn summary(v: &WorkerDeploymentVersionInfo) -> WorkerDeploymentVersionSummary {
    #[allow(deprecated)]
    WorkerDeploymentVersionSummary {
        version: v.version.clone(),
        status: v.status,
        deployment_version: v.deployment_version.clone(),
        create_time: v.create_time,
        drainage_status: v.drainage_info.as_ref().map(|d| d.status).unwrap_or(0),
        drainage_info: v.drainage_info,
        current_since_time: v.current_since_time,
        ramping_since_time: v.ramping_since_time,
        routing_update_time: v.routing_changed_time,
        first_activation_time: v.first_activation_time,
        last_current_time: v.last_current_time,
        last_deactivation_time: v.last_deactivation_time,
        ..Default::default()
    }
}

/// The routing matching applies to the task queues of a deployment.
fn routing_of(rec: &DeploymentRecord) -> Routing {
    let Some(r) = rec.routing.as_ref() else {
        return Routing::default();
    };
    let key = |v: &Option<WorkerDeploymentVersion>| {
        v.as_ref()
            .map(|v| version_key(&v.deployment_name, &v.build_id))
    };
    #[allow(deprecated)]
    let ramping = match (&r.ramping_deployment_version, r.ramping_version.as_str()) {
        (Some(_), _) => {
            key(&r.ramping_deployment_version).map(|k| (k, r.ramping_version_percentage))
        }
        (None, UNVERSIONED) => Some((String::new(), r.ramping_version_percentage)),
        _ => None,
    };
    Routing {
        current: key(&r.current_deployment_version),
        ramping,
    }
}

impl DeploymentRecord {
    fn version(&self, build: &str) -> Option<&WorkerDeploymentVersionInfo> {
        self.versions.iter().find(|v| {
            v.deployment_version
                .as_ref()
                .is_some_and(|d| d.build_id == build)
        })
    }

    fn version_mut(&mut self, build: &str) -> Option<&mut WorkerDeploymentVersionInfo> {
        self.versions.iter_mut().find(|v| {
            v.deployment_version
                .as_ref()
                .is_some_and(|d| d.build_id == build)
        })
    }

    fn routing_mut(&mut self) -> &mut RoutingConfig {
        self.routing.get_or_insert_with(|| {
            #[allow(deprecated)]
            RoutingConfig {
                current_version: UNVERSIONED.into(),
                ..Default::default()
            }
        })
    }

    fn current_build(&self) -> Option<String> {
        self.routing
            .as_ref()
            .and_then(|r| r.current_deployment_version.as_ref())
            .map(|v| v.build_id.clone())
    }

    fn ramping_build(&self) -> Option<String> {
        self.routing
            .as_ref()
            .and_then(|r| r.ramping_deployment_version.as_ref())
            .map(|v| v.build_id.clone())
    }

    /// Names of every task queue of every version.
    fn queue_names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .versions
            .iter()
            .flat_map(|v| v.task_queue_infos.iter().map(|q| q.name.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// A version stops being current or ramping: it drains.
    fn deactivate(&mut self, build: &str, now: Timestamp) {
        if let Some(v) = self.version_mut(build) {
            v.status = WorkerDeploymentVersionStatus::Draining as i32;
            v.routing_changed_time = Some(now);
            v.last_deactivation_time = Some(now);
            v.current_since_time = None;
            v.ramping_since_time = None;
            v.ramp_percentage = 0.0;
            v.drainage_info = Some(VersionDrainageInfo {
                status: VersionDrainageStatus::Draining as i32,
                last_changed_time: Some(now),
                last_checked_time: Some(now),
            });
        }
    }

    fn activate(
        &mut self,
        build: &str,
        now: Timestamp,
    ) -> Option<&mut WorkerDeploymentVersionInfo> {
        let v = self.version_mut(build)?;
        v.routing_changed_time = Some(now);
        v.first_activation_time.get_or_insert(now);
        v.drainage_info = None;
        Some(v)
    }
}

impl Engine {
    /// Loads every stored deployment and gives matching their routing (at start-up).
    pub(crate) async fn load_deployments(&self) -> Result<()> {
        self.reload_deployments().await
    }

    /// Reads every stored deployment again, replaces the registry with them and routes the task
    /// queues by them: at start-up, and on a member other than the leader each time the leader
    /// changed one (and every few seconds).
    pub async fn reload_deployments(&self) -> Result<()> {
        let s = self.inner.store.clone();
        let stored = tokio::task::spawn_blocking(move || s.load_deployments())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let mut map = HashMap::new();
        for d in stored {
            let rec = DeploymentRecord::decode(d.data.as_slice())
                .map_err(|e| Error::Internal(format!("bad deployment record: {e}")))?;
            map.insert((d.namespace_id, d.name), rec);
        }
        let _w = self.inner.deployments.write.lock().await;
        let mut routed = std::collections::HashSet::new();
        for ((ns_id, _), rec) in &map {
            for q in rec.queue_names() {
                routed.insert((ns_id.clone(), q));
            }
            self.sync_routing(ns_id, rec);
        }
        // Queues no deployment names any more are unversioned again.
        for (ns_id, q) in self.inner.matching.routed_queues() {
            if !routed.contains(&(ns_id.clone(), q.clone())) {
                self.inner
                    .matching
                    .set_routing(&ns_id, &q, Routing::default());
            }
        }
        *self.inner.deployments.map.lock() = map;
        Ok(())
    }

    /// Routes the task queues of a deployment: on the queue's owner this decides which poller
    /// takes a task; on every member it decides where a run's tasks go (`target_version`).
    fn sync_routing(&self, ns_id: &str, rec: &DeploymentRecord) {
        let routing = routing_of(rec);
        for q in rec.queue_names() {
            self.inner.matching.set_routing(ns_id, &q, routing.clone());
        }
    }

    fn deployment(&self, ns_id: &str, name: &str) -> Option<DeploymentRecord> {
        self.inner
            .deployments
            .map
            .lock()
            .get(&(ns_id.to_string(), name.to_string()))
            .cloned()
    }

    /// Stores the record, then applies it in memory and to matching.
    async fn save_deployment(&self, ns_id: &str, rec: DeploymentRecord) -> Result<()> {
        let stored = StoredDeployment {
            namespace_id: ns_id.to_string(),
            name: rec.name.clone(),
            data: rec.encode_to_vec(),
        };
        let s = self.inner.store.clone();
        tokio::task::spawn_blocking(move || s.put_deployment(&stored))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        self.sync_routing(ns_id, &rec);
        self.inner
            .deployments
            .map
            .lock()
            .insert((ns_id.to_string(), rec.name.clone()), rec);
        // The other members route their queues by it before the change is answered.
        self.deployments_changed().await;
        Ok(())
    }

    /// A poll: a versioned worker's version and its task queue are registered (the deployment
    /// and the version are created on their first poll, as Temporal does).
    pub(crate) async fn note_poller(
        &self,
        ns_id: &str,
        queue: &str,
        kind: QueueKind,
        opts: Option<&WorkerDeploymentOptions>,
    ) -> Result<()> {
        let Some(o) = opts else { return Ok(()) };
        if o.worker_versioning_mode != WorkerVersioningMode::Versioned as i32
            || o.deployment_name.is_empty()
            || o.build_id.is_empty()
        {
            return Ok(());
        }
        let qtype = match kind {
            QueueKind::Workflow => TaskQueueType::Workflow,
            QueueKind::Activity => TaskQueueType::Activity,
        } as i32;
        let known = |rec: &Option<DeploymentRecord>| {
            rec.as_ref()
                .and_then(|r| r.version(&o.build_id))
                .is_some_and(|v| {
                    v.task_queue_infos
                        .iter()
                        .any(|q| q.name == queue && q.r#type == qtype)
                })
        };
        if known(&self.deployment(ns_id, &o.deployment_name)) {
            return Ok(());
        }
        if let Some(leader) = self.leader_peer() {
            // The leader keeps the deployments; it tells every member once it has the poller.
            return self
                .note_poller_remote(&leader, ns_id, queue, kind, o)
                .await;
        }
        let _w = self.inner.deployments.write.lock().await;
        let rec = self.deployment(ns_id, &o.deployment_name);
        if known(&rec) {
            return Ok(());
        }
        let now = ts(self.inner.clock.now());
        let mut rec = rec.unwrap_or_else(|| DeploymentRecord {
            name: o.deployment_name.clone(),
            create_time: Some(now),
            ..Default::default()
        });
        rec.routing_mut();
        if rec.version(&o.build_id).is_none() {
            rec.versions
                .push(new_version(&o.deployment_name, &o.build_id, now));
        }
        let v = rec.version_mut(&o.build_id).expect("just added");
        v.task_queue_infos.push(VersionTaskQueueInfo {
            name: queue.to_string(),
            r#type: qtype,
        });
        self.save_deployment(ns_id, rec).await
    }

    /// Where a run's workflow (and query) tasks on its normal queue go.
    pub(crate) fn workflow_route(&self, state: &ExecutionState) -> Route {
        match pinned_version(state) {
            Some(v) => Route::Pinned(version_key(&v.deployment_name, &v.build_id)),
            None => Route::Auto(state.workflow_id.clone()),
        }
    }

    /// Where a run's activity on `queue` goes: to the run's pinned version when that version
    /// polls the queue, else to the queue's current version.
    pub(crate) fn activity_route(&self, state: &ExecutionState, queue: &str) -> Route {
        if let Some(v) = pinned_version(state) {
            let has = self
                .deployment(&state.namespace_id, &v.deployment_name)
                .and_then(|r| r.version(&v.build_id).cloned())
                .is_some_and(|info| {
                    info.task_queue_infos
                        .iter()
                        .any(|q| q.name == queue && q.r#type == TaskQueueType::Activity as i32)
                });
            if has || queue == state.task_queue {
                return Route::Pinned(version_key(&v.deployment_name, &v.build_id));
            }
        }
        Route::Auto(state.workflow_id.clone())
    }

    /// Whether a poller with version key `poller` may start the run's (normal-queue) workflow
    /// task now.
    pub(crate) fn may_take_workflow_task(&self, state: &ExecutionState, poller: &str) -> bool {
        let route = self.workflow_route(state);
        self.inner
            .matching
            .target(&state.namespace_id, &state.task_queue, &route)
            .is_none_or(|t| t == poller)
    }

    /// The version the run's next workflow task goes to, when versioned.
    fn target_version(&self, state: &ExecutionState) -> Option<WorkerDeploymentVersion> {
        let route = self.workflow_route(state);
        let key = self
            .inner
            .matching
            .target(&state.namespace_id, &state.task_queue, &route)?;
        let (d, b) = key.split_once('\u{1}')?;
        Some(wdv(d, b))
    }

    /// Whether a sticky workflow task must go to the normal queue instead: the run follows
    /// its queue's current version and that is no longer the version it ran on.
    pub(crate) fn leaves_version(&self, state: &ExecutionState) -> bool {
        if pinned_version(state).is_some() || state.deployment_version.is_none() {
            return false;
        }
        self.target_version(state) != state.deployment_version
    }

    /// Adds the run's `versioning_info` to a describe answer.
    pub(crate) fn with_versioning(
        &self,
        mut info: WorkflowExecutionInfo,
        state: &ExecutionState,
    ) -> WorkflowExecutionInfo {
        let running =
            state.status == perdure_proto::api::enums::v1::WorkflowExecutionStatus::Running as i32;
        let target =
            if running && pinned_version(state).is_none() && state.deployment_version.is_some() {
                self.target_version(state)
            } else {
                None
            };
        info.versioning_info = versioning_info(state, target);
        info
    }

    /// DescribeWorkerDeployment.
    pub fn describe_worker_deployment(
        &self,
        req: DescribeWorkerDeploymentRequest,
    ) -> Result<DescribeWorkerDeploymentResponse> {
        let ns = self.namespace(&req.namespace)?;
        if req.deployment_name.is_empty() {
            return Err(Error::InvalidArgument(
                "deployment name cannot be empty".into(),
            ));
        }
        let rec = self
            .deployment(&ns.id, &req.deployment_name)
            .ok_or_else(|| not_found(&req.deployment_name))?;
        Ok(DescribeWorkerDeploymentResponse {
            conflict_token: token(&rec),
            worker_deployment_info: Some(WorkerDeploymentInfo {
                name: rec.name.clone(),
                version_summaries: rec.versions.iter().map(summary).collect(),
                create_time: rec.create_time,
                routing_config: rec.routing.clone(),
                last_modifier_identity: rec.last_modifier_identity.clone(),
                manager_identity: rec.manager_identity.clone(),
                routing_config_update_state: RoutingConfigUpdateState::Completed as i32,
            }),
        })
    }

    /// ListWorkerDeployments: by name, `page_size` at a time (default 1000).
    pub fn list_worker_deployments(
        &self,
        req: ListWorkerDeploymentsRequest,
    ) -> Result<ListWorkerDeploymentsResponse> {
        let ns = self.namespace(&req.namespace)?;
        let after = String::from_utf8(req.next_page_token.clone())
            .map_err(|_| Error::InvalidArgument("invalid next page token".into()))?;
        let size = if req.page_size <= 0 {
            1000
        } else {
            req.page_size as usize
        };
        let mut recs: Vec<DeploymentRecord> = self
            .inner
            .deployments
            .map
            .lock()
            .iter()
            .filter(|((n, name), _)| *n == ns.id && (after.is_empty() || *name > after))
            .map(|(_, r)| r.clone())
            .collect();
        recs.sort_by(|a, b| a.name.cmp(&b.name));
        let more = recs.len() > size;
        recs.truncate(size);
        let next_page_token = if more {
            recs.last()
                .map(|r| r.name.clone().into_bytes())
                .unwrap_or_default()
        } else {
            vec![]
        };
        let worker_deployments = recs
            .iter()
            .map(|r| {
                let find = |b: Option<String>| b.and_then(|b| r.version(&b).map(summary));
                WorkerDeploymentSummary {
                    name: r.name.clone(),
                    create_time: r.create_time,
                    routing_config: r.routing.clone(),
                    latest_version_summary: r.versions.last().map(summary),
                    current_version_summary: find(r.current_build()),
                    ramping_version_summary: find(r.ramping_build()),
                }
            })
            .collect();
        Ok(ListWorkerDeploymentsResponse {
            next_page_token,
            worker_deployments,
        })
    }

    /// DescribeWorkerDeploymentVersion.
    pub fn describe_worker_deployment_version(
        &self,
        req: DescribeWorkerDeploymentVersionRequest,
    ) -> Result<DescribeWorkerDeploymentVersionResponse> {
        let ns = self.namespace(&req.namespace)?;
        #[allow(deprecated)]
        let want = requested_version(req.deployment_version.as_ref(), &req.version)?;
        let rec = self
            .deployment(&ns.id, &want.deployment_name)
            .ok_or_else(version_not_found)?;
        let v = rec.version(&want.build_id).ok_or_else(version_not_found)?;
        let info = v.clone();
        let version_task_queues = v
            .task_queue_infos
            .iter()
            .map(|q| {
                let kind = if q.r#type == TaskQueueType::Activity as i32 {
                    QueueKind::Activity
                } else {
                    QueueKind::Workflow
                };
                VersionTaskQueue {
                    name: q.name.clone(),
                    r#type: q.r#type,
                    stats: req.report_task_queue_stats.then(|| {
                        let s = self.inner.matching.stats(&ns.id, &q.name, kind);
                        perdure_proto::api::taskqueue::v1::TaskQueueStats {
                            approximate_backlog_count: s.backlog as i64,
                            approximate_backlog_age: Some(pdur(s.backlog_age)),
                            tasks_add_rate: s.add_rate,
                            tasks_dispatch_rate: s.dispatch_rate,
                            rate_limiting_active: false,
                        }
                    }),
                    ..Default::default()
                }
            })
            .collect();
        Ok(DescribeWorkerDeploymentVersionResponse {
            worker_deployment_version_info: Some(info),
            version_task_queues,
        })
    }

    /// Loads a deployment for a change: under the write lock, with the conflict token and the
    /// manager identity checked.
    fn for_change(
        &self,
        ns_id: &str,
        name: &str,
        conflict_token: &[u8],
        identity: &str,
    ) -> Result<DeploymentRecord> {
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "deployment name cannot be empty".into(),
            ));
        }
        let rec = self
            .deployment(ns_id, name)
            .ok_or_else(|| not_found(name))?;
        if !conflict_token.is_empty() && conflict_token != token(&rec).as_slice() {
            return Err(Error::FailedPrecondition("conflict token mismatch".into()));
        }
        if !rec.manager_identity.is_empty() && rec.manager_identity != identity {
            return Err(Error::FailedPrecondition(format!(
                "ManagerIdentity '{}' is set and does not match user identity '{identity}'; to edit this Worker Deployment's Current or Ramping Version, either do so with identity '{}' or call `SetWorkerDeploymentManager` to unset ManagerIdentity",
                rec.manager_identity, rec.manager_identity
            )));
        }
        Ok(rec)
    }

    /// SetWorkerDeploymentCurrentVersion (an empty build id: unversioned).
    pub async fn set_current_version(
        &self,
        req: SetWorkerDeploymentCurrentVersionRequest,
    ) -> Result<SetWorkerDeploymentCurrentVersionResponse> {
        let ns = self.namespace(&req.namespace)?;
        let _w = self.inner.deployments.write.lock().await;
        let mut rec = self.for_change(
            &ns.id,
            &req.deployment_name,
            &req.conflict_token,
            &req.identity,
        )?;
        #[allow(deprecated)]
        let build = requested_build(&req.build_id, &req.version, &req.deployment_name)?;
        let now = ts(self.inner.clock.now());
        if !build.is_empty() && rec.version(&build).is_none() {
            if !req.allow_no_pollers {
                return Err(build_not_found(&rec.name, &build));
            }
            rec.versions.push(new_version(&rec.name, &build, now));
        }
        let previous = rec.current_build();
        #[allow(deprecated)]
        let mut resp = SetWorkerDeploymentCurrentVersionResponse {
            previous_version: previous
                .as_ref()
                .map(|b| format!("{}.{b}", rec.name))
                .unwrap_or_else(|| UNVERSIONED.into()),
            previous_deployment_version: previous.as_ref().map(|b| wdv(&rec.name, b)),
            ..Default::default()
        };
        if previous.as_deref().unwrap_or("") == build {
            resp.conflict_token = token(&rec);
            return Ok(resp);
        }
        if let Some(p) = &previous {
            rec.deactivate(p, now);
        }
        let name = rec.name.clone();
        if !build.is_empty() {
            let was_ramping = rec.ramping_build().as_deref() == Some(build.as_str());
            let v = rec.activate(&build, now).expect("checked above");
            v.status = WorkerDeploymentVersionStatus::Current as i32;
            v.current_since_time = Some(now);
            v.last_current_time = Some(now);
            v.ramping_since_time = None;
            v.ramp_percentage = 0.0;
            if was_ramping {
                clear_ramp(rec.routing_mut(), now);
            }
        }
        let r = rec.routing_mut();
        #[allow(deprecated)]
        {
            r.current_version = if build.is_empty() {
                UNVERSIONED.into()
            } else {
                format!("{name}.{build}")
            };
        }
        r.current_deployment_version = (!build.is_empty()).then(|| wdv(&name, &build));
        r.current_version_changed_time = Some(now);
        r.revision_number += 1;
        rec.last_modifier_identity = req.identity.clone();
        resp.conflict_token = token(&rec);
        self.save_deployment(&ns.id, rec).await?;
        Ok(resp)
    }

    /// SetWorkerDeploymentRampingVersion (an empty build id with 0%: no ramp; the deprecated
    /// `__unversioned__`: ramp to unversioned workers).
    pub async fn set_ramping_version(
        &self,
        req: SetWorkerDeploymentRampingVersionRequest,
    ) -> Result<SetWorkerDeploymentRampingVersionResponse> {
        let ns = self.namespace(&req.namespace)?;
        if !(0.0..=100.0).contains(&req.percentage) {
            return Err(Error::InvalidArgument(
                "Percentage must be between 0 and 100 (inclusive)".into(),
            ));
        }
        let _w = self.inner.deployments.write.lock().await;
        let mut rec = self.for_change(
            &ns.id,
            &req.deployment_name,
            &req.conflict_token,
            &req.identity,
        )?;
        #[allow(deprecated)]
        let to_unversioned = req.build_id.is_empty() && req.version == UNVERSIONED;
        #[allow(deprecated)]
        let build = requested_build(&req.build_id, &req.version, &req.deployment_name)?;
        let now = ts(self.inner.clock.now());
        let name = rec.name.clone();
        if !build.is_empty() {
            if rec.current_build().as_deref() == Some(build.as_str()) {
                return Err(Error::FailedPrecondition(format!(
                    "requested ramping version {name}.{build} is already current"
                )));
            }
            if rec.version(&build).is_none() {
                if !req.allow_no_pollers {
                    return Err(build_not_found(&name, &build));
                }
                rec.versions.push(new_version(&name, &build, now));
            }
        } else if to_unversioned && rec.current_build().is_none() {
            return Err(Error::FailedPrecondition(format!(
                "requested ramping version {UNVERSIONED} is already current"
            )));
        }
        let old = rec.routing.clone().unwrap_or_default();
        let previous = rec.ramping_build();
        #[allow(deprecated)]
        let resp_prev = (
            if old.ramping_version.is_empty() {
                String::new()
            } else {
                old.ramping_version.clone()
            },
            previous.as_ref().map(|b| wdv(&name, b)),
            old.ramping_version_percentage,
        );
        let unset = build.is_empty() && !to_unversioned;
        if previous.is_some() && previous.as_deref() != Some(build.as_str()) {
            rec.deactivate(previous.as_deref().unwrap(), now);
        }
        if unset {
            clear_ramp(rec.routing_mut(), now);
        } else {
            if !build.is_empty() {
                let same = previous.as_deref() == Some(build.as_str());
                let v = rec.activate(&build, now).expect("checked above");
                v.status = WorkerDeploymentVersionStatus::Ramping as i32;
                if !same {
                    v.ramping_since_time = Some(now);
                }
                v.ramp_percentage = req.percentage;
            }
            let r = rec.routing_mut();
            let changed_version = previous.as_deref() != Some(build.as_str())
                || (to_unversioned
                    != (r.ramping_deployment_version.is_none() && {
                        #[allow(deprecated)]
                        let s = r.ramping_version == UNVERSIONED;
                        s
                    }));
            #[allow(deprecated)]
            {
                r.ramping_version = if build.is_empty() {
                    UNVERSIONED.into()
                } else {
                    format!("{name}.{build}")
                };
            }
            r.ramping_deployment_version = (!build.is_empty()).then(|| wdv(&name, &build));
            if changed_version {
                r.ramping_version_changed_time = Some(now);
            }
            r.ramping_version_percentage = req.percentage;
            r.ramping_version_percentage_changed_time = Some(now);
        }
        rec.routing_mut().revision_number += 1;
        rec.last_modifier_identity = req.identity.clone();
        #[allow(deprecated)]
        let resp = SetWorkerDeploymentRampingVersionResponse {
            conflict_token: token(&rec),
            previous_version: resp_prev.0,
            previous_deployment_version: resp_prev.1,
            previous_percentage: resp_prev.2,
        };
        self.save_deployment(&ns.id, rec).await?;
        Ok(resp)
    }

    /// DeleteWorkerDeploymentVersion: only a version that is neither current nor ramping, not
    /// draining (unless `skip_drainage`) and without pollers.
    pub async fn delete_worker_deployment_version(
        &self,
        req: DeleteWorkerDeploymentVersionRequest,
    ) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        #[allow(deprecated)]
        let want = requested_version(req.deployment_version.as_ref(), &req.version)?;
        let _w = self.inner.deployments.write.lock().await;
        let mut rec = self
            .deployment(&ns.id, &want.deployment_name)
            .ok_or_else(version_not_found)?;
        let v = rec.version(&want.build_id).ok_or_else(version_not_found)?;
        let label = format!("{}:{}", want.deployment_name, want.build_id);
        match status_of(v) {
            WorkerDeploymentVersionStatus::Current | WorkerDeploymentVersionStatus::Ramping => {
                return Err(Error::FailedPrecondition(format!(
                    "version '{label}' cannot be deleted since it is current or ramping"
                )));
            }
            WorkerDeploymentVersionStatus::Draining if !req.skip_drainage => {
                return Err(Error::FailedPrecondition(format!(
                    "version '{label}' cannot be deleted since it is draining"
                )));
            }
            _ => {}
        }
        let key = version_key(&want.deployment_name, &want.build_id);
        let polled = v.task_queue_infos.iter().any(|q| {
            let kind = if q.r#type == TaskQueueType::Activity as i32 {
                QueueKind::Activity
            } else {
                QueueKind::Workflow
            };
            self.inner
                .matching
                .pollers(&ns.id, &q.name, kind)
                .iter()
                .any(|p| poller_key(&p.poller) == key)
        });
        if polled {
            return Err(Error::FailedPrecondition(format!(
                "version '{label}' cannot be deleted since it has active pollers"
            )));
        }
        let queues = rec.queue_names();
        rec.versions.retain(|v| {
            v.deployment_version
                .as_ref()
                .is_none_or(|d| d.build_id != want.build_id)
        });
        rec.last_modifier_identity = req.identity.clone();
        // Queues no version of the deployment polls any more are unversioned again.
        let left = rec.queue_names();
        for q in queues.iter().filter(|q| !left.contains(q)) {
            self.inner
                .matching
                .set_routing(&ns.id, q, Routing::default());
        }
        self.save_deployment(&ns.id, rec).await
    }

    /// DeleteWorkerDeployment: only a deployment without versions.
    pub async fn delete_worker_deployment(&self, req: DeleteWorkerDeploymentRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        if req.deployment_name.is_empty() {
            return Err(Error::InvalidArgument(
                "deployment name cannot be empty".into(),
            ));
        }
        let _w = self.inner.deployments.write.lock().await;
        let rec = self
            .deployment(&ns.id, &req.deployment_name)
            .ok_or_else(|| not_found(&req.deployment_name))?;
        if !rec.versions.is_empty() {
            return Err(Error::FailedPrecondition(
                "deployment has versions, can't be deleted".into(),
            ));
        }
        let s = self.inner.store.clone();
        let (id, name) = (ns.id.clone(), rec.name.clone());
        tokio::task::spawn_blocking(move || s.delete_deployment(&id, &name))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        self.inner
            .deployments
            .map
            .lock()
            .remove(&(ns.id.clone(), rec.name));
        Ok(())
    }

    /// UpdateWorkerDeploymentVersionMetadata.
    pub async fn update_version_metadata(
        &self,
        req: UpdateWorkerDeploymentVersionMetadataRequest,
    ) -> Result<UpdateWorkerDeploymentVersionMetadataResponse> {
        let ns = self.namespace(&req.namespace)?;
        #[allow(deprecated)]
        let want = requested_version(req.deployment_version.as_ref(), &req.version)?;
        let _w = self.inner.deployments.write.lock().await;
        let mut rec = self
            .deployment(&ns.id, &want.deployment_name)
            .ok_or_else(version_not_found)?;
        let v = rec
            .version_mut(&want.build_id)
            .ok_or_else(version_not_found)?;
        let md = v.metadata.get_or_insert_with(VersionMetadata::default);
        for (k, p) in req.upsert_entries {
            md.entries.insert(k, p);
        }
        for k in &req.remove_entries {
            md.entries.remove(k);
        }
        let metadata = Some(md.clone());
        self.save_deployment(&ns.id, rec).await?;
        Ok(UpdateWorkerDeploymentVersionMetadataResponse { metadata })
    }

    /// SetWorkerDeploymentManager.
    pub async fn set_deployment_manager(
        &self,
        req: SetWorkerDeploymentManagerRequest,
    ) -> Result<SetWorkerDeploymentManagerResponse> {
        use perdure_proto::api::workflowservice::v1::set_worker_deployment_manager_request::NewManagerIdentity;
        let ns = self.namespace(&req.namespace)?;
        let new = match &req.new_manager_identity {
            Some(NewManagerIdentity::ManagerIdentity(m)) => m.clone(),
            Some(NewManagerIdentity::Self_(true)) => req.identity.clone(),
            Some(NewManagerIdentity::Self_(false)) | None => {
                return Err(Error::InvalidArgument(
                    "Must set either ManagerIdentity or Self".into(),
                ));
            }
        };
        let _w = self.inner.deployments.write.lock().await;
        let mut rec = self.for_change(
            &ns.id,
            &req.deployment_name,
            &req.conflict_token,
            &req.identity,
        )?;
        #[allow(deprecated)]
        let mut resp = SetWorkerDeploymentManagerResponse {
            previous_manager_identity: rec.manager_identity.clone(),
            ..Default::default()
        };
        rec.manager_identity = new;
        rec.last_modifier_identity = req.identity.clone();
        rec.routing_mut().revision_number += 1;
        resp.conflict_token = token(&rec);
        self.save_deployment(&ns.id, rec).await?;
        Ok(resp)
    }
}

impl Engine {
    /// UpdateWorkflowExecutionOptions: sets or clears a run's versioning override (update mask
    /// path `versioning_override`), writing WorkflowExecutionOptionsUpdated when it changes.
    pub async fn update_workflow_execution_options(
        &self,
        req: UpdateWorkflowExecutionOptionsRequest,
    ) -> Result<UpdateWorkflowExecutionOptionsResponse> {
        if let Some(to) = self.workflow_owner(
            &req.namespace,
            req.workflow_execution
                .as_ref()
                .map_or("", |e| e.workflow_id.as_str()),
        ) {
            let _r: UpdateWorkflowExecutionOptionsResponse = self
                .forward(&to, "UpdateWorkflowExecutionOptions", &req)
                .await?;
            return Ok(_r);
        }
        let ns = self.namespace(&req.namespace)?;
        let Some(opts) = req.workflow_execution_options.clone() else {
            return Err(Error::InvalidArgument(
                "WorkflowExecutionOptions is not set on request.".into(),
            ));
        };
        let paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        if paths.is_empty() {
            return Err(Error::InvalidArgument(
                "UpdateMask is not set on request.".into(),
            ));
        }
        for p in &paths {
            if p != "versioning_override" && p != "versioningOverride" {
                return Err(Error::InvalidArgument(format!(
                    "error parsing UpdateMask: path {p} is not supported by Perdure (only versioning_override)"
                )));
            }
        }
        let ov = match &opts.versioning_override {
            Some(o) => Some(crate::mutable::normalize_override(o).map_err(Error::InvalidArgument)?),
            None => None,
        };
        let key = self
            .resolve(&ns.id, req.workflow_execution.as_ref())
            .await?;
        let identity = req.identity.clone();
        let now = ts(self.inner.clock.now());
        let stored = self
            .mutate(key, move |tx, _| {
                if !tx.is_running() {
                    return Err(crate::mutable::closed_error());
                }
                if tx.state.versioning_override != ov {
                    tx.set_versioning_override(ov, &identity);
                }
                Ok(tx.state.versioning_override.clone())
            })
            .await?;
        let mut shown = ExecutionState {
            versioning_override: stored,
            ..Default::default()
        };
        shown.versioning_behavior = 0;
        let versioning_override = versioning_info(&shown, None).and_then(|i| i.versioning_override);
        Ok(UpdateWorkflowExecutionOptionsResponse {
            workflow_execution_options: Some(
                perdure_proto::api::workflow::v1::WorkflowExecutionOptions {
                    versioning_override,
                    ..Default::default()
                },
            ),
            update_time: Some(now),
        })
    }
}

fn new_version(name: &str, build: &str, now: Timestamp) -> WorkerDeploymentVersionInfo {
    #[allow(deprecated)]
    WorkerDeploymentVersionInfo {
        version: version_string(&wdv(name, build)),
        status: WorkerDeploymentVersionStatus::Inactive as i32,
        deployment_version: Some(wdv(name, build)),
        create_time: Some(now),
        ..Default::default()
    }
}

fn clear_ramp(r: &mut RoutingConfig, now: Timestamp) {
    #[allow(deprecated)]
    {
        r.ramping_version = String::new();
    }
    r.ramping_deployment_version = None;
    r.ramping_version_percentage = 0.0;
    r.ramping_version_changed_time = Some(now);
    r.ramping_version_percentage_changed_time = Some(now);
}
