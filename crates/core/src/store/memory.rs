//! An in-memory [`Store`] for tests of the engine shell: the same contract as the SQLite backend
//! (shard fencing, atomic batches, current runs, open runs, history, namespaces, cluster id), lost
//! with the process. Visibility queries are SQL, so only the empty query (`1=1`, optionally
//! grouped by status) is served; anything else fails with [`StoreError::Backend`].

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{
    Compiled, Dialect, ExecutionWrite, ListedRow, Store, StoreError, StoredBatchJob,
    StoredDeployment, StoredExecution, StoredNamespace, StoredSchedule, VisibilityRow, WriteBatch,
};

/// `(namespace id, run id)`.
type RunId = (String, String);

struct Execution {
    /// Still needs loading at start-up.
    open: bool,
    state: Vec<u8>,
}

struct Visible {
    row: VisibilityRow,
    sort_key: i64,
}

#[derive(Default)]
struct Data {
    /// Shard id → (range id, owner).
    shards: HashMap<i32, (i64, String)>,
    /// By namespace id.
    namespaces: HashMap<String, StoredNamespace>,
    executions: HashMap<RunId, Execution>,
    /// `(namespace id, workflow id)` → run id.
    current: HashMap<(String, String), String>,
    history: HashMap<RunId, BTreeMap<i64, Vec<u8>>>,
    visibility: HashMap<RunId, Visible>,
    cluster_id: Option<String>,
    /// `(namespace id, job id)` → job.
    batch_jobs: HashMap<(String, String), StoredBatchJob>,
    /// `(namespace id, schedule id)` → schedule, in id order.
    schedules: BTreeMap<(String, String), StoredSchedule>,
    /// `(namespace id, name)` → worker deployment.
    deployments: BTreeMap<(String, String), StoredDeployment>,
}

/// A [`Store`] kept in one mutex-guarded map set; every batch is applied whole or not at all
/// and acknowledged at once.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Open runs sort first (by start time), closed runs by close time: the SQLite backend's key.
fn sort_key(v: &VisibilityRow) -> i64 {
    match v.close_time {
        Some(c) => c,
        None => (1i64 << 62) + v.start_time / 4,
    }
}

fn unsupported(query: &Compiled) -> Option<StoreError> {
    let empty = query.where_sql.trim() == "1=1" && query.params.is_empty();
    (!empty || query.order_by.is_some()).then(|| {
        StoreError::Backend(format!(
            "visibility queries need a SQL backend (the memory store only lists everything), got `{}`",
            query.where_sql
        ))
    })
}

impl Data {
    /// Refuses the batch the way the SQLite backend would, before anything is written.
    fn check(&self, b: &WriteBatch) -> Result<(), StoreError> {
        if self.shards.get(&b.shard_id).map(|s| s.0) != Some(b.range_id) {
            return Err(StoreError::ShardOwnershipLost {
                shard_id: b.shard_id,
                expected: b.range_id,
            });
        }
        // History rows are insert-only: an event id written twice sinks the whole batch.
        let mut seen = std::collections::HashSet::new();
        for e in &b.executions {
            let stored = self
                .history
                .get(&(e.namespace_id.clone(), e.run_id.clone()));
            for (id, _) in &e.events {
                if stored.is_some_and(|h| h.contains_key(id))
                    || !seen.insert((&e.namespace_id, &e.run_id, *id))
                {
                    return Err(StoreError::Backend(format!(
                        "event {id} of run {} already exists",
                        e.run_id
                    )));
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, e: ExecutionWrite) {
        let key = (e.namespace_id.clone(), e.run_id.clone());
        self.executions.insert(
            key.clone(),
            Execution {
                open: e.open,
                state: e.state,
            },
        );
        if e.set_current {
            self.current.insert(
                (e.namespace_id.clone(), e.workflow_id.clone()),
                e.run_id.clone(),
            );
        }
        self.history
            .entry(key.clone())
            .or_default()
            .extend(e.events);
        let v = e.visibility;
        let vkey = (v.namespace_id.clone(), v.run_id.clone());
        let sort_key = sort_key(&v);
        match self.visibility.get_mut(&vkey) {
            // As the SQLite upsert: identity columns stay as first written.
            Some(old) => {
                let r = &mut old.row;
                r.status = v.status;
                r.close_time = v.close_time;
                r.execution_duration = v.execution_duration;
                r.history_length = v.history_length;
                r.history_size_bytes = v.history_size_bytes;
                r.state_transition_count = v.state_transition_count;
                r.search_attributes = v.search_attributes;
                r.info = v.info;
                r.execution_time = v.execution_time;
                old.sort_key = sort_key;
            }
            None => {
                self.visibility.insert(vkey, Visible { row: v, sort_key });
            }
        }
    }
}

impl Store for MemoryStore {
    fn acquire_shards(&self, owner: &str, shard_count: i32) -> Result<Vec<i64>, StoreError> {
        let mut d = self.data.lock();
        Ok((0..shard_count)
            .map(|s| {
                let e = d.shards.entry(s).or_insert((0, String::new()));
                *e = (e.0 + 1, owner.to_string());
                e.0
            })
            .collect())
    }

    fn commit(&self, batch: WriteBatch) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        let r = {
            let mut d = self.data.lock();
            d.check(&batch).map(|()| {
                for e in batch.executions {
                    d.write(e);
                }
            })
        };
        let _ = tx.send(r);
        rx
    }

    fn list_namespaces(&self) -> Result<Vec<StoredNamespace>, StoreError> {
        let mut out: Vec<_> = self.data.lock().namespaces.values().cloned().collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn put_namespace(&self, ns: &StoredNamespace, create: bool) -> Result<(), StoreError> {
        let mut d = self.data.lock();
        let clash = d
            .namespaces
            .values()
            .any(|o| o.name == ns.name && o.id != ns.id);
        if clash || (create && d.namespaces.contains_key(&ns.id)) {
            return Err(StoreError::AlreadyExists(ns.name.clone()));
        }
        if create || d.namespaces.contains_key(&ns.id) {
            d.namespaces.insert(ns.id.clone(), ns.clone());
        }
        Ok(())
    }

    fn load_open_executions(&self) -> Result<Vec<StoredExecution>, StoreError> {
        Ok(self
            .data
            .lock()
            .executions
            .values()
            .filter(|e| e.open)
            .map(|e| StoredExecution {
                state: e.state.clone(),
            })
            .collect())
    }

    fn get_execution(
        &self,
        namespace_id: &str,
        run_id: &str,
    ) -> Result<Option<StoredExecution>, StoreError> {
        Ok(self
            .data
            .lock()
            .executions
            .get(&(namespace_id.to_string(), run_id.to_string()))
            .map(|e| StoredExecution {
                state: e.state.clone(),
            }))
    }

    fn get_current_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .data
            .lock()
            .current
            .get(&(namespace_id.to_string(), workflow_id.to_string()))
            .cloned())
    }

    fn read_events(
        &self,
        namespace_id: &str,
        run_id: &str,
        first_event_id: i64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .data
            .lock()
            .history
            .get(&(namespace_id.to_string(), run_id.to_string()))
            .map(|h| {
                h.range(first_event_id..)
                    .take(limit)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn delete_execution(&self, namespace_id: &str, run_id: &str) -> Result<(), StoreError> {
        let mut d = self.data.lock();
        let key = (namespace_id.to_string(), run_id.to_string());
        d.history.remove(&key);
        d.visibility.remove(&key);
        d.executions.remove(&key);
        d.current
            .retain(|(ns, _), run| !(ns == namespace_id && run == run_id));
        Ok(())
    }

    fn list_visibility(
        &self,
        namespace_id: &str,
        query: &Compiled,
        page_size: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<ListedRow>, StoreError> {
        if let Some(e) = unsupported(query) {
            return Err(e);
        }
        let d = self.data.lock();
        let mut rows: Vec<(i64, &str, &[u8])> = d
            .visibility
            .iter()
            .filter(|((ns, _), _)| ns == namespace_id)
            .map(|((_, run), v)| (v.sort_key, run.as_str(), v.row.info.as_slice()))
            .filter(|(k, run, _)| {
                after
                    .as_ref()
                    .is_none_or(|(ak, ar)| *k < *ak || (*k == *ak && *run < ar.as_str()))
            })
            .collect();
        rows.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
        Ok(rows
            .into_iter()
            .take(page_size.max(1))
            .map(|(k, run, info)| (info.to_vec(), (k, run.to_string())))
            .collect())
    }

    fn count_visibility(
        &self,
        namespace_id: &str,
        query: &Compiled,
    ) -> Result<(i64, Vec<(i32, i64)>), StoreError> {
        if let Some(e) = unsupported(query) {
            return Err(e);
        }
        let d = self.data.lock();
        let mut total = 0;
        let mut by_status = BTreeMap::new();
        for v in d
            .visibility
            .iter()
            .filter(|((ns, _), _)| ns == namespace_id)
            .map(|(_, v)| v)
        {
            total += 1;
            *by_status.entry(v.row.status).or_insert(0i64) += 1;
        }
        let groups = if query.group_by_status {
            by_status.into_iter().collect()
        } else {
            vec![]
        };
        Ok((total, groups))
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn put_batch_job(&self, job: &StoredBatchJob, create: bool) -> Result<(), StoreError> {
        let mut d = self.data.lock();
        let key = (job.namespace_id.clone(), job.job_id.clone());
        if create && d.batch_jobs.contains_key(&key) {
            return Err(StoreError::AlreadyExists(job.job_id.clone()));
        }
        d.batch_jobs.insert(key, job.clone());
        Ok(())
    }

    fn get_batch_job(
        &self,
        namespace_id: &str,
        job_id: &str,
    ) -> Result<Option<StoredBatchJob>, StoreError> {
        let key = (namespace_id.to_string(), job_id.to_string());
        Ok(self.data.lock().batch_jobs.get(&key).cloned())
    }

    fn list_batch_jobs(
        &self,
        namespace_id: &str,
        limit: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<StoredBatchJob>, StoreError> {
        let d = self.data.lock();
        let mut jobs: Vec<_> = d
            .batch_jobs
            .values()
            .filter(|j| j.namespace_id == namespace_id)
            .filter(|j| match &after {
                Some((t, id)) => (j.start_time, &j.job_id) < (*t, id),
                None => true,
            })
            .cloned()
            .collect();
        jobs.sort_by(|a, b| (b.start_time, &b.job_id).cmp(&(a.start_time, &a.job_id)));
        jobs.truncate(limit);
        Ok(jobs)
    }

    fn put_schedule(&self, s: &StoredSchedule, create: bool) -> Result<(), StoreError> {
        let mut d = self.data.lock();
        let key = (s.namespace_id.clone(), s.schedule_id.clone());
        if create && d.schedules.contains_key(&key) {
            return Err(StoreError::AlreadyExists(s.schedule_id.clone()));
        }
        d.schedules.insert(key, s.clone());
        Ok(())
    }

    fn get_schedule(
        &self,
        namespace_id: &str,
        schedule_id: &str,
    ) -> Result<Option<StoredSchedule>, StoreError> {
        let key = (namespace_id.to_string(), schedule_id.to_string());
        Ok(self.data.lock().schedules.get(&key).cloned())
    }

    fn delete_schedule(&self, namespace_id: &str, schedule_id: &str) -> Result<bool, StoreError> {
        let key = (namespace_id.to_string(), schedule_id.to_string());
        Ok(self.data.lock().schedules.remove(&key).is_some())
    }

    fn list_schedules(
        &self,
        namespace_id: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<Vec<StoredSchedule>, StoreError> {
        let d = self.data.lock();
        Ok(d.schedules
            .values()
            .filter(|s| s.namespace_id == namespace_id)
            .filter(|s| after.as_ref().is_none_or(|a| s.schedule_id > *a))
            .take(limit)
            .cloned()
            .collect())
    }

    fn load_schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        let d = self.data.lock();
        Ok(d.schedules
            .values()
            .filter(|s| s.next_wake.is_some())
            .cloned()
            .collect())
    }

    fn put_deployment(&self, dep: &StoredDeployment) -> Result<(), StoreError> {
        let key = (dep.namespace_id.clone(), dep.name.clone());
        self.data.lock().deployments.insert(key, dep.clone());
        Ok(())
    }

    fn delete_deployment(&self, namespace_id: &str, name: &str) -> Result<bool, StoreError> {
        let key = (namespace_id.to_string(), name.to_string());
        Ok(self.data.lock().deployments.remove(&key).is_some())
    }

    fn load_deployments(&self) -> Result<Vec<StoredDeployment>, StoreError> {
        Ok(self.data.lock().deployments.values().cloned().collect())
    }

    fn cluster_id(&self, new_id: &str) -> Result<String, StoreError> {
        Ok(self
            .data
            .lock()
            .cluster_id
            .get_or_insert_with(|| new_id.to_string())
            .clone())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test]
    async fn honours_the_storage_contract() {
        conformance::run_all(MemoryStore::new).await;
    }

    #[test]
    fn refuses_visibility_queries_it_cannot_run() {
        let s = MemoryStore::new();
        let filtered = Compiled {
            where_sql: "workflow_type = ?2".into(),
            params: vec![crate::store::SqlValue::Text("order".into())],
            order_by: None,
            group_by_status: false,
        };
        let ordered = Compiled {
            order_by: Some("start_time ASC".into()),
            ..conformance::everything(false)
        };
        for q in [filtered, ordered] {
            let err = s.list_visibility("ns", &q, 10, None).unwrap_err();
            assert!(
                matches!(&err, StoreError::Backend(m) if m.contains("need a SQL backend")),
                "{err:?}"
            );
            assert!(s.count_visibility("ns", &q).is_err());
        }
        assert_eq!(s.name(), "memory");
        assert_eq!(s.dialect(), Dialect::Sqlite);
    }

    #[tokio::test]
    async fn answers_each_batch_at_once() {
        let s = MemoryStore::new();
        let r = s.acquire_shards("me", 1).unwrap();
        let mut rx = s.commit(WriteBatch {
            shard_id: 0,
            range_id: r[0],
            executions: vec![conformance::write("wf", "a", 1, &[1])],
        });
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
    }
}
