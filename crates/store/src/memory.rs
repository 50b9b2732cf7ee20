//! An in-memory [`Store`] for tests of the engine shell: the same contract as the SQL backends
//! (shard fencing, atomic batches, current runs, open runs, history, namespaces, cluster id),
//! lost with the process. Visibility queries are evaluated on the rows with SQL's three-valued
//! logic, so they give the SQL backends' answers.

use std::collections::{BTreeMap, HashMap};

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use std::cmp::Ordering;

use perdure_query::{Attr, CmpOp, Filter, SaType, SqlValue, VisibilityQuery};

use super::{
    Cluster, ExecutionWrite, Leadership, ListedRow, Member, RunRef, Store, StoreError,
    StoredBatchJob, StoredDeployment, StoredExecution, StoredNamespace, StoredSchedule,
    VisibilityRow, WakeKey, WriteBatch,
};

/// `(namespace id, run id)`.
type RunId = (String, String);

struct Execution {
    /// Still needs loading at start-up.
    open: bool,
    wake_at: Option<i64>,
    state: Vec<u8>,
}

struct Visible {
    row: VisibilityRow,
    /// The row's search attributes, parsed once.
    attrs: serde_json::Map<String, serde_json::Value>,
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
    /// Node name → (member, last heartbeat in Unix ms).
    members: BTreeMap<String, (Member, i64)>,
    /// The leader and the end of its lease (Unix ms).
    leader: Option<(Member, i64)>,
    shard_count: Option<i32>,
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Cluster for MemoryStore {
    fn join(&self, m: &Member, lease_ms: i64) -> Result<(), StoreError> {
        let mut d = self.data.lock();
        let now = now_ms();
        if let Some((old, beat)) = d.members.get(&m.node)
            && old.session != m.session
            && *beat >= now - lease_ms
        {
            return Err(StoreError::NodeNameTaken {
                node: m.node.clone(),
                age_ms: now - beat,
            });
        }
        d.members.insert(m.node.clone(), (m.clone(), now));
        Ok(())
    }

    fn heartbeat(&self, m: &Member) -> Result<bool, StoreError> {
        let mut d = self.data.lock();
        match d.members.get_mut(&m.node) {
            Some((old, beat)) if old.session == m.session => {
                *beat = now_ms();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn leave(&self, m: &Member) -> Result<(), StoreError> {
        let mut d = self.data.lock();
        if d.members
            .get(&m.node)
            .is_some_and(|(o, _)| o.session == m.session)
        {
            d.members.remove(&m.node);
        }
        Ok(())
    }

    fn members(&self, lease_ms: i64) -> Result<Vec<Member>, StoreError> {
        let now = now_ms();
        Ok(self
            .data
            .lock()
            .members
            .values()
            .filter(|(_, beat)| *beat >= now - lease_ms)
            .map(|(m, _)| m.clone())
            .collect())
    }

    fn leader(&self) -> Result<Option<Leadership>, StoreError> {
        let now = now_ms();
        Ok(self
            .data
            .lock()
            .leader
            .as_ref()
            .map(|(m, until)| Leadership {
                node: m.node.clone(),
                session: m.session.clone(),
                address: m.address.clone(),
                expires_in_ms: until - now,
            }))
    }

    fn try_lead(&self, m: &Member, lease_ms: i64) -> Result<bool, StoreError> {
        let mut d = self.data.lock();
        let now = now_ms();
        let free = match &d.leader {
            None => true,
            Some((l, until)) => l.session == m.session || *until < now,
        };
        if free {
            d.leader = Some((m.clone(), now + lease_ms));
        }
        Ok(free)
    }

    fn resign(&self, m: &Member) -> Result<(), StoreError> {
        let mut d = self.data.lock();
        if let Some((l, until)) = &mut d.leader
            && l.session == m.session
        {
            *until = 0;
        }
        Ok(())
    }

    fn shard_count(&self, requested: Option<i32>) -> Result<i32, StoreError> {
        let mut d = self.data.lock();
        let n = super::resolve_shard_count(d.shard_count, requested)?;
        if d.shard_count.is_some_and(|old| n > old) {
            // Runs change shards: fence every current owner before the new count is seen.
            for (range, _) in d.shards.values_mut() {
                *range += 1;
            }
        }
        d.shard_count = Some(n);
        Ok(n)
    }
}

/// A [`Store`] kept in one mutex-guarded map set; every batch is applied whole or not at all
/// and acknowledged at once.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
    reads: Reads,
}

/// What tests can see of the reads a store served, and hold back.
#[derive(Default)]
struct Reads {
    /// Open runs returned by [`Store::waking_executions`].
    open_rows: AtomicU64,
    /// Their run ids, in the order read.
    woken: Mutex<Vec<String>>,
    /// Pages of open runs served.
    open_pages: AtomicU64,
    /// Calls of [`Store::get_execution`].
    executions: AtomicU64,
    /// Visibility rows written by batches.
    visibility_writes: AtomicU64,
    /// Pages of open runs that may be served; `None` is no limit.
    pages_allowed: Mutex<Option<u64>>,
    more_allowed: Condvar,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Open runs returned by [`Store::waking_executions`] so far.
    pub fn open_rows_read(&self) -> u64 {
        self.reads.open_rows.load(AtomicOrdering::SeqCst)
    }

    /// The run ids [`Store::waking_executions`] returned so far, in order (a run read twice is
    /// listed twice).
    pub fn woken_runs(&self) -> Vec<String> {
        self.reads.woken.lock().clone()
    }

    /// Runs read one at a time by [`Store::get_execution`] so far.
    pub fn executions_read(&self) -> u64 {
        self.reads.executions.load(AtomicOrdering::SeqCst)
    }

    /// Visibility rows written by committed batches so far.
    pub fn visibility_rows_written(&self) -> u64 {
        self.reads.visibility_writes.load(AtomicOrdering::SeqCst)
    }

    /// Serves at most `pages` pages of open runs in all (`None`: any number); a read beyond
    /// them blocks its thread until this is raised. Lets a test catch start-up half-way.
    pub fn allow_open_pages(&self, pages: Option<u64>) {
        *self.reads.pages_allowed.lock() = pages;
        self.reads.more_allowed.notify_all();
    }
}

/// A value as SQL sees it (`None` is NULL).
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl Val {
    fn from_sql(v: &SqlValue) -> Val {
        match v {
            SqlValue::Int(i) => Val::Int(*i),
            SqlValue::Real(f) => Val::Real(*f),
            SqlValue::Text(s) => Val::Text(s.clone()),
            SqlValue::Bool(b) => Val::Bool(*b),
        }
    }

    fn from_json(v: &serde_json::Value) -> Option<Val> {
        match v {
            serde_json::Value::String(s) => Some(Val::Text(s.clone())),
            serde_json::Value::Bool(b) => Some(Val::Bool(*b)),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Val::Int)
                .or_else(|| n.as_f64().map(Val::Real)),
            _ => None,
        }
    }

    fn compare(&self, other: &Val) -> Option<Ordering> {
        match (self, other) {
            (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
            (Val::Text(a), Val::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
            (a, b) => a.num()?.partial_cmp(&b.num()?),
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Real(f) => Some(*f),
            Val::Bool(b) => Some(*b as i64 as f64),
            Val::Text(_) => None,
        }
    }
}

impl Visible {
    /// The attribute's value in this row (`None`: NULL).
    fn get(&self, a: &Attr) -> Option<Val> {
        let r = &self.row;
        let text = |s: &str| Some(Val::Text(s.to_string()));
        match a.column() {
            Some("workflow_id") => text(&r.workflow_id),
            Some("workflow_type") => text(&r.workflow_type),
            Some("run_id") => text(&r.run_id),
            Some("task_queue") => text(&r.task_queue),
            Some("status") => Some(Val::Int(r.status as i64)),
            Some("start_time") => Some(Val::Int(r.start_time)),
            Some("execution_time") => Some(Val::Int(r.execution_time)),
            Some("close_time") => r.close_time.map(Val::Int),
            Some("execution_duration") => r.execution_duration.map(Val::Int),
            Some("history_length") => Some(Val::Int(r.history_length)),
            Some("history_size_bytes") => Some(Val::Int(r.history_size_bytes)),
            Some("state_transition_count") => Some(Val::Int(r.state_transition_count)),
            Some("parent_workflow_id") => r.parent_workflow_id.as_deref().and_then(text),
            Some("root_workflow_id") => r.root_workflow_id.as_deref().and_then(text),
            Some(_) => None,
            None => {
                let v = Val::from_json(self.attrs.get(&a.name)?)?;
                Some(match (a.ty, v) {
                    (SaType::Double, Val::Int(i)) => Val::Real(i as f64),
                    (_, v) => v,
                })
            }
        }
    }

    /// SQL's three-valued answer: `None` is unknown (a NULL took part).
    fn eval(&self, f: &Filter) -> Option<bool> {
        match f {
            Filter::And(parts) => {
                let vals: Vec<Option<bool>> = parts.iter().map(|p| self.eval(p)).collect();
                if vals.contains(&Some(false)) {
                    Some(false)
                } else if vals.contains(&None) {
                    None
                } else {
                    Some(true)
                }
            }
            Filter::Or(parts) => {
                let vals: Vec<Option<bool>> = parts.iter().map(|p| self.eval(p)).collect();
                if vals.contains(&Some(true)) {
                    Some(true)
                } else if vals.contains(&None) {
                    None
                } else {
                    Some(false)
                }
            }
            Filter::Not(inner) => self.eval(inner).map(|b| !b),
            Filter::IsNull(a, not) => Some(self.get(a).is_none() != *not),
            Filter::Cmp(a, op, v) => {
                let o = self.get(a)?.compare(&Val::from_sql(v))?;
                Some(match op {
                    CmpOp::Eq => o == Ordering::Equal,
                    CmpOp::Ne => o != Ordering::Equal,
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Gt => o == Ordering::Greater,
                    CmpOp::Ge => o != Ordering::Less,
                })
            }
            Filter::In(a, vs) => {
                let x = self.get(a)?;
                Some(
                    vs.iter()
                        .any(|v| x.compare(&Val::from_sql(v)) == Some(Ordering::Equal)),
                )
            }
            Filter::Between(a, lo, hi) => {
                let x = self.get(a)?;
                let ge = x.compare(&Val::from_sql(lo))? != Ordering::Less;
                let le = x.compare(&Val::from_sql(hi))? != Ordering::Greater;
                Some(ge && le)
            }
            Filter::StartsWith(a, prefix) => match self.get(a)? {
                Val::Text(s) => Some(s.starts_with(prefix.as_str())),
                _ => Some(false),
            },
            Filter::Contains(a, v) => {
                let want = Val::from_sql(v);
                let found = match self.attrs.get(&a.name) {
                    Some(serde_json::Value::Array(items)) => items
                        .iter()
                        .filter_map(Val::from_json)
                        .any(|x| x.compare(&want) == Some(Ordering::Equal)),
                    // A single value counts as a one-item list, as in both SQL backends.
                    Some(v) => Val::from_json(v).is_some_and(|x| x == want),
                    None => false,
                };
                Some(found)
            }
        }
    }

    fn matches(&self, q: &VisibilityQuery) -> bool {
        q.filter.as_ref().is_none_or(|f| self.eval(f) == Some(true))
    }
}

/// Orders two rows by the query's `ORDER BY` (NULLs first ascending, last descending, as every
/// backend renders it), then newest first.
fn order(q: &VisibilityQuery, a: &Visible, b: &Visible) -> Ordering {
    for (attr, desc) in &q.order_by {
        let o = match (a.get(attr), b.get(attr)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.compare(&y).unwrap_or(Ordering::Equal),
        };
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    (b.row.sort_key, &b.row.run_id).cmp(&(a.row.sort_key, &a.row.run_id))
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

    fn delete(&mut self, r: &RunRef) {
        let key = (r.namespace_id.clone(), r.run_id.clone());
        self.history.remove(&key);
        self.visibility.remove(&key);
        self.executions.remove(&key);
        self.current
            .retain(|(ns, _), run| !(*ns == r.namespace_id && *run == r.run_id));
    }

    fn write(&mut self, e: ExecutionWrite) {
        let key = (e.namespace_id.clone(), e.run_id.clone());
        self.executions.insert(
            key.clone(),
            Execution {
                open: e.open,
                wake_at: e.wake_at,
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
        let Some(v) = e.visibility else {
            return;
        };
        let vkey = (v.namespace_id.clone(), v.run_id.clone());
        let attrs = serde_json::from_str(&v.search_attributes).unwrap_or_default();
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
                r.sort_key = v.sort_key;
                old.attrs = attrs;
            }
            None => {
                self.visibility.insert(vkey, Visible { row: v, attrs });
            }
        }
    }
}

impl Store for MemoryStore {
    fn acquire_shards(&self, owner: &str, shards: &[i32]) -> Result<Vec<i64>, StoreError> {
        let mut d = self.data.lock();
        Ok(shards
            .iter()
            .map(|s| {
                let e = d.shards.entry(*s).or_insert((0, String::new()));
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
                    if e.visibility.is_some() {
                        self.reads
                            .visibility_writes
                            .fetch_add(1, AtomicOrdering::SeqCst);
                    }
                    d.write(e);
                }
                for r in &batch.deletes {
                    d.delete(r);
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

    fn waking_executions(
        &self,
        after: Option<&WakeKey>,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(WakeKey, StoredExecution)>, StoreError> {
        {
            let mut allowed = self.reads.pages_allowed.lock();
            while allowed.is_some_and(|n| self.reads.open_pages.load(AtomicOrdering::SeqCst) >= n) {
                self.reads.more_allowed.wait(&mut allowed);
            }
            self.reads.open_pages.fetch_add(1, AtomicOrdering::SeqCst);
        }
        let d = self.data.lock();
        let mut due: Vec<_> = d
            .executions
            .iter()
            .filter_map(|(k, e)| {
                let w = e.wake_at.filter(|w| e.open && *w < until)?;
                let key = (w, k.0.as_str(), k.1.as_str());
                let later = after.is_none_or(|a| {
                    key > (
                        a.wake_at,
                        a.run.namespace_id.as_str(),
                        a.run.run_id.as_str(),
                    )
                });
                later.then_some((key, e))
            })
            .collect();
        due.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        due.truncate(limit);
        self.reads
            .open_rows
            .fetch_add(due.len() as u64, AtomicOrdering::SeqCst);
        self.reads
            .woken
            .lock()
            .extend(due.iter().map(|((_, _, run), _)| run.to_string()));
        Ok(due
            .into_iter()
            .map(|((wake_at, ns, run), e)| {
                (
                    WakeKey {
                        wake_at,
                        run: RunRef {
                            namespace_id: ns.to_string(),
                            run_id: run.to_string(),
                        },
                    },
                    StoredExecution {
                        state: e.state.clone(),
                    },
                )
            })
            .collect())
    }

    fn get_execution(
        &self,
        namespace_id: &str,
        run_id: &str,
    ) -> Result<Option<StoredExecution>, StoreError> {
        self.reads.executions.fetch_add(1, AtomicOrdering::SeqCst);
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

    fn list_visibility(
        &self,
        namespace_id: &str,
        query: &VisibilityQuery,
        page_size: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<ListedRow>, StoreError> {
        let d = self.data.lock();
        let mut rows: Vec<&Visible> = d
            .visibility
            .iter()
            .filter(|((ns, _), _)| ns == namespace_id)
            .map(|(_, v)| v)
            .filter(|v| {
                after.as_ref().is_none_or(|(ak, ar)| {
                    v.row.sort_key < *ak || (v.row.sort_key == *ak && v.row.run_id < *ar)
                })
            })
            .filter(|v| v.matches(query))
            .collect();
        rows.sort_by(|a, b| order(query, a, b));
        Ok(rows
            .into_iter()
            .take(page_size.max(1))
            .map(|v| (v.row.info.clone(), (v.row.sort_key, v.row.run_id.clone())))
            .collect())
    }

    fn count_visibility(
        &self,
        namespace_id: &str,
        query: &VisibilityQuery,
    ) -> Result<(i64, Vec<(i32, i64)>), StoreError> {
        let d = self.data.lock();
        let mut total = 0;
        let mut by_status = BTreeMap::new();
        for v in d
            .visibility
            .iter()
            .filter(|((ns, _), _)| ns == namespace_id)
            .map(|(_, v)| v)
            .filter(|v| v.matches(query))
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
    use crate::conformance;

    #[tokio::test]
    async fn honours_the_storage_contract() {
        conformance::run_all(MemoryStore::new).await;
    }

    #[tokio::test]
    async fn answers_each_batch_at_once() {
        let s = MemoryStore::new();
        let r = s.acquire_shards("me", &[0]).unwrap();
        let mut rx = s.commit(WriteBatch::writes(
            0,
            r[0],
            vec![conformance::write("wf", "a", 1, &[1])],
        ));
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
    }
}
