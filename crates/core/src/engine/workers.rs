//! The worker registry: the latest heartbeat of each worker (RecordWorkerHeartbeat), kept in
//! memory as Temporal keeps it, and served by ListWorkers, CountWorkers and DescribeWorker.
//! A worker that stops heartbeating is forgotten after [`WORKER_TTL`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use perdure_proto::api::worker::v1::{WorkerHeartbeat, WorkerInfo, WorkerListInfo};
use perdure_proto::api::workflowservice::v1::*;

use super::Engine;
use crate::error::{Error, Result};

/// How long a worker stays listed after its last heartbeat.
pub const WORKER_TTL: Duration = Duration::from_secs(300);

/// Latest heartbeat per (namespace id, worker instance key), with when it arrived.
#[derive(Default)]
pub(crate) struct Registry(
    parking_lot::Mutex<HashMap<(String, String), (WorkerHeartbeat, SystemTime)>>,
);

/// The attributes a worker query may name, as ListWorkers documents them.
const FIELDS: &[&str] = &[
    "WorkerInstanceKey",
    "WorkerIdentity",
    "HostName",
    "TaskQueue",
    "DeploymentName",
    "BuildId",
    "SdkName",
    "SdkVersion",
    "Status",
];

/// A worker query: `Field = 'value'` terms joined by AND (the empty query matches all).
fn parse(query: &str) -> Result<Vec<(String, String)>> {
    let q = query.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let bad = |why: &str| {
        Error::InvalidArgument(format!(
            "invalid worker query {q:?}: {why}; Perdure supports `Field = 'value'` terms joined \
             by AND over {}",
            FIELDS.join(", ")
        ))
    };
    let mut terms = Vec::new();
    let mut rest = q;
    loop {
        let (field, after) = rest.split_once('=').ok_or_else(|| bad("expected ="))?;
        let field = field.trim().trim_matches('`').to_string();
        if !FIELDS.contains(&field.as_str()) {
            return Err(bad(&format!("unknown field {field:?}")));
        }
        let after = after.trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
            .ok_or_else(|| bad("values are quoted strings"))?;
        let body = &after[1..];
        let end = body.find(quote).ok_or_else(|| bad("unterminated string"))?;
        terms.push((field, body[..end].to_string()));
        let tail = body[end + 1..].trim_start();
        if tail.is_empty() {
            return Ok(terms);
        }
        let next = tail
            .get(..4)
            .filter(|and| and.eq_ignore_ascii_case("and "))
            .ok_or_else(|| bad("terms are joined by AND"))?;
        rest = &tail[next.len()..];
    }
}

/// The value of a query field in a heartbeat.
fn field(h: &WorkerHeartbeat, name: &str) -> String {
    match name {
        "WorkerInstanceKey" => h.worker_instance_key.clone(),
        "WorkerIdentity" => h.worker_identity.clone(),
        "HostName" => h
            .host_info
            .as_ref()
            .map(|i| i.host_name.clone())
            .unwrap_or_default(),
        "TaskQueue" => h.task_queue.clone(),
        "DeploymentName" => h
            .deployment_version
            .as_ref()
            .map(|v| v.deployment_name.clone())
            .unwrap_or_default(),
        "BuildId" => h
            .deployment_version
            .as_ref()
            .map(|v| v.build_id.clone())
            .unwrap_or_default(),
        "SdkName" => h.sdk_name.clone(),
        "SdkVersion" => h.sdk_version.clone(),
        "Status" => perdure_proto::api::enums::v1::WorkerStatus::try_from(h.status)
            .map(|s| {
                let n = s.as_str_name().trim_start_matches("WORKER_STATUS_");
                let mut out = n.to_lowercase().replace('_', "");
                if let Some(f) = out.get_mut(0..1) {
                    f.make_ascii_uppercase();
                }
                out
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn list_info(h: &WorkerHeartbeat) -> WorkerListInfo {
    let host = h.host_info.clone().unwrap_or_default();
    WorkerListInfo {
        worker_instance_key: h.worker_instance_key.clone(),
        worker_identity: h.worker_identity.clone(),
        task_queue: h.task_queue.clone(),
        deployment_version: h.deployment_version.clone(),
        sdk_name: h.sdk_name.clone(),
        sdk_version: h.sdk_version.clone(),
        status: h.status,
        start_time: h.start_time,
        host_name: host.host_name,
        worker_grouping_key: host.worker_grouping_key,
        process_id: host.process_id,
        ..Default::default()
    }
}

impl Engine {
    /// RecordWorkerHeartbeat: keeps the latest heartbeat of each worker.
    pub fn record_worker_heartbeats(
        &self,
        namespace: &str,
        beats: Vec<WorkerHeartbeat>,
    ) -> Result<()> {
        let ns = self.namespace(namespace)?;
        let now = self.inner.clock.now();
        let mut reg = self.inner.workers.0.lock();
        for b in beats {
            if b.worker_instance_key.is_empty() {
                return Err(Error::InvalidArgument(
                    "WorkerInstanceKey is not set on a worker heartbeat.".into(),
                ));
            }
            reg.insert((ns.id.clone(), b.worker_instance_key.clone()), (b, now));
        }
        Ok(())
    }

    /// The live workers of a namespace matching `query`, oldest start first.
    fn workers_matching(&self, namespace: &str, query: &str) -> Result<Vec<WorkerHeartbeat>> {
        let ns = self.namespace(namespace)?;
        let terms = parse(query)?;
        let now = self.inner.clock.now();
        let mut reg = self.inner.workers.0.lock();
        reg.retain(|_, (_, at)| now.duration_since(*at).unwrap_or_default() < WORKER_TTL);
        let mut out: Vec<WorkerHeartbeat> = reg
            .iter()
            .filter(|((ns_id, _), (h, _))| {
                *ns_id == ns.id && terms.iter().all(|(f, v)| field(h, f) == *v)
            })
            .map(|(_, (h, _))| h.clone())
            .collect();
        out.sort_by(|a, b| {
            let t = |h: &WorkerHeartbeat| h.start_time.map(|t| (t.seconds, t.nanos));
            t(a).cmp(&t(b))
                .then_with(|| a.worker_instance_key.cmp(&b.worker_instance_key))
        });
        Ok(out)
    }

    /// ListWorkers, a page at a time (the token is the next index).
    pub fn list_workers(&self, req: ListWorkersRequest) -> Result<ListWorkersResponse> {
        let all = self.workers_matching(&req.namespace, &req.query)?;
        let from = if req.next_page_token.is_empty() {
            0
        } else {
            std::str::from_utf8(&req.next_page_token)
                .ok()
                .and_then(|t| t.parse::<usize>().ok())
                .ok_or_else(|| Error::InvalidArgument("Invalid NextPageToken.".into()))?
        };
        let size = if req.page_size <= 0 {
            1000
        } else {
            req.page_size as usize
        };
        let page: Vec<_> = all.iter().skip(from).take(size).cloned().collect();
        let next = from + page.len();
        #[allow(deprecated)]
        Ok(ListWorkersResponse {
            workers: page.iter().map(list_info).collect(),
            workers_info: page
                .into_iter()
                .map(|h| WorkerInfo {
                    worker_heartbeat: Some(h),
                })
                .collect(),
            next_page_token: if next < all.len() {
                next.to_string().into_bytes()
            } else {
                Vec::new()
            },
        })
    }

    pub fn count_workers(&self, req: CountWorkersRequest) -> Result<CountWorkersResponse> {
        Ok(CountWorkersResponse {
            count: self.workers_matching(&req.namespace, &req.query)?.len() as i64,
        })
    }

    pub fn describe_worker(&self, req: DescribeWorkerRequest) -> Result<DescribeWorkerResponse> {
        let key = req.worker_instance_key.clone();
        let found = self
            .workers_matching(&req.namespace, "")?
            .into_iter()
            .find(|h| h.worker_instance_key == key)
            .ok_or_else(|| Error::NotFound(format!("Worker {key} not found")))?;
        Ok(DescribeWorkerResponse {
            worker_info: Some(WorkerInfo {
                worker_heartbeat: Some(found),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn worker_queries() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(
            parse("TaskQueue = 'q' AND `SdkName`=\"temporal-python\"").unwrap(),
            vec![
                ("TaskQueue".to_string(), "q".to_string()),
                ("SdkName".to_string(), "temporal-python".to_string())
            ]
        );
        assert_eq!(
            parse("TaskQueue = 'a and b'").unwrap(),
            vec![("TaskQueue".to_string(), "a and b".to_string())]
        );
        for bad in [
            "Nope = 'x'",
            "TaskQueue = x",
            "TaskQueue = 'x' OR SdkName = 'y'",
            "TaskQueue",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
