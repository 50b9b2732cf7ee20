//! Read-only views of the cluster and its task queues: DescribeTaskQueue (the default mode and
//! the deprecated ENHANCED mode, for the unversioned queue) from what matching remembers, and the
//! facts GetClusterInfo reports.

use std::collections::HashMap;

use perdure_proto::api::enums::v1::{DescribeTaskQueueMode, TaskQueueKind, TaskQueueType};
use perdure_proto::api::taskqueue::v1::{
    PollerInfo, TaskQueueStats, TaskQueueStatus, TaskQueueTypeInfo, TaskQueueVersionInfo,
};
use perdure_proto::api::workflowservice::v1::{
    DescribeTaskQueueRequest, DescribeTaskQueueResponse,
};

use super::Engine;
use super::tasks::DEFAULT_POLLER_RATE;
use crate::clock::convert::{pdur, ts};
use crate::error::{Error, Result};
use crate::matching::QueueKind;

/// Longest task queue name accepted (Temporal's default id length limit).
const MAX_NAME: usize = 1000;

/// Which in-memory queue serves a task queue type; `None` for types Perdure has no queues for
/// (Nexus), which therefore never have pollers or tasks.
fn queue_kind(t: TaskQueueType) -> Option<QueueKind> {
    match t {
        TaskQueueType::Unspecified | TaskQueueType::Workflow => Some(QueueKind::Workflow),
        TaskQueueType::Activity => Some(QueueKind::Activity),
        TaskQueueType::Nexus => None,
    }
}

impl Engine {
    /// Identity of this cluster: generated on the first start of a database, then kept in it.
    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    /// Number of history shards executions are spread over.
    pub fn shard_count(&self) -> i32 {
        self.inner.range_ids.len() as i32
    }

    /// Name of the storage backend (`sqlite`).
    pub fn store_name(&self) -> &'static str {
        self.inner.store.name()
    }

    /// DescribeTaskQueue: recent pollers (last poll less than five minutes ago) and backlog of
    /// one task queue type, or in ENHANCED mode of several types of the unversioned queue.
    pub fn describe_task_queue(
        &self,
        req: DescribeTaskQueueRequest,
    ) -> Result<DescribeTaskQueueResponse> {
        let ns = self.namespace(&req.namespace)?;
        let Some(tq) = req.task_queue.as_ref() else {
            return Err(Error::InvalidArgument("taskQueue is not set".into()));
        };
        if tq.name.is_empty() {
            return Err(Error::InvalidArgument("missing task queue name".into()));
        }
        if tq.name.len() > MAX_NAME {
            return Err(Error::InvalidArgument(
                "task queue name exceeds length limit".into(),
            ));
        }
        let enhanced = req.api_mode == DescribeTaskQueueMode::Enhanced as i32;
        if !enhanced {
            let t = TaskQueueType::try_from(req.task_queue_type).map_err(|_| {
                Error::InvalidArgument(format!("unknown task queue type {}", req.task_queue_type))
            })?;
            let kind = queue_kind(t);
            let mut resp = DescribeTaskQueueResponse {
                pollers: self.pollers_of(&ns.id, &tq.name, kind),
                ..Default::default()
            };
            if req.report_stats {
                resp.stats = Some(self.stats_of(&ns.id, &tq.name, kind));
            }
            if req.include_task_queue_status {
                let backlog = kind
                    .map(|k| self.inner.matching.backlog(&ns.id, &tq.name, k))
                    .unwrap_or(0);
                resp.task_queue_status = Some(TaskQueueStatus {
                    backlog_count_hint: backlog as i64,
                    // Tasks are handed out without throttling and have no persisted task ids.
                    rate_per_second: DEFAULT_POLLER_RATE,
                    ..Default::default()
                });
            }
            return Ok(resp);
        }
        if tq.kind == TaskQueueKind::Sticky as i32 {
            return Err(Error::InvalidArgument(
                "sticky queues are not supported in ENHANCED mode".into(),
            ));
        }
        let mut types = Vec::new();
        for &t in &req.task_queue_types {
            let t = TaskQueueType::try_from(t)
                .map_err(|_| Error::InvalidArgument(format!("unknown task queue type {t}")))?;
            if t != TaskQueueType::Unspecified && !types.contains(&t) {
                types.push(t);
            }
        }
        if types.is_empty() {
            types = vec![TaskQueueType::Workflow, TaskQueueType::Activity];
        }
        let types_info = |unversioned: bool| -> HashMap<i32, TaskQueueTypeInfo> {
            types
                .iter()
                .map(|&t| {
                    // Perdure has no worker versioning: every poller and task is unversioned.
                    let kind = if unversioned { queue_kind(t) } else { None };
                    let info = TaskQueueTypeInfo {
                        pollers: if req.report_pollers {
                            self.pollers_of(&ns.id, &tq.name, kind)
                        } else {
                            vec![]
                        },
                        stats: req
                            .report_stats
                            .then(|| self.stats_of(&ns.id, &tq.name, kind)),
                    };
                    (t as i32, info)
                })
                .collect()
        };
        let mut versions_info = HashMap::new();
        let sel = req.versions.as_ref();
        if sel.is_none_or(|v| v.unversioned || v.all_active) {
            versions_info.insert(
                String::new(),
                TaskQueueVersionInfo {
                    types_info: types_info(true),
                    task_reachability: 0,
                },
            );
        }
        for b in sel.map(|v| v.build_ids.as_slice()).unwrap_or_default() {
            if !b.is_empty() {
                versions_info.insert(
                    b.clone(),
                    TaskQueueVersionInfo {
                        types_info: types_info(false),
                        task_reachability: 0,
                    },
                );
            }
        }
        Ok(DescribeTaskQueueResponse {
            versions_info,
            ..Default::default()
        })
    }

    fn pollers_of(&self, ns_id: &str, queue: &str, kind: Option<QueueKind>) -> Vec<PollerInfo> {
        let Some(kind) = kind else { return vec![] };
        self.inner
            .matching
            .pollers(ns_id, queue, kind)
            .into_iter()
            .map(|p| PollerInfo {
                last_access_time: Some(ts(p.last_access)),
                identity: p.poller.identity,
                rate_per_second: p.poller.rate_per_second,
                worker_version_capabilities: p.poller.worker_version_capabilities,
                deployment_options: p.poller.deployment_options,
            })
            .collect()
    }

    fn stats_of(&self, ns_id: &str, queue: &str, kind: Option<QueueKind>) -> TaskQueueStats {
        let s = kind
            .map(|k| self.inner.matching.stats(ns_id, queue, k))
            .unwrap_or_default();
        TaskQueueStats {
            approximate_backlog_count: s.backlog as i64,
            approximate_backlog_age: Some(pdur(s.backlog_age)),
            tasks_add_rate: s.add_rate,
            tasks_dispatch_rate: s.dispatch_rate,
            rate_limiting_active: false,
        }
    }
}
