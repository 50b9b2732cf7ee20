//! Interleavings forced with a store that holds a commit's acknowledgement until the test lets it
//! go: a start whose RPC is cancelled right after its commit still gets its first workflow task,
//! and a signal-with-start racing a start always delivers its signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use perdure_core::clock::SystemClock;
use perdure_core::store::{
    Cluster, Leadership, ListedRow, Member, Store, StoreError, StoredBatchJob, StoredExecution,
    StoredNamespace, StoredSchedule, VisibilityQuery, WriteBatch,
};
use perdure_core::{Config, Engine};
use perdure_proto::api::common::v1::{WorkflowExecution, WorkflowType};
use perdure_proto::api::enums::v1::EventType;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use perdure_sqlite::{Location, SqliteStore};
use tokio::sync::{Notify, Semaphore, oneshot};

/// A SQLite store whose next commit, once armed, is made durable but acknowledged only when
/// the test adds a permit to `release`.
struct GatedStore {
    inner: SqliteStore,
    armed: AtomicBool,
    committed: Arc<Notify>,
    release: Arc<Semaphore>,
}

impl GatedStore {
    fn new() -> Arc<GatedStore> {
        Arc::new(GatedStore {
            inner: SqliteStore::open(Location::Temporary).unwrap(),
            armed: AtomicBool::new(false),
            committed: Arc::new(Notify::new()),
            release: Arc::new(Semaphore::new(0)),
        })
    }
}

impl Cluster for GatedStore {
    fn join(&self, m: &Member, lease_ms: i64) -> Result<(), StoreError> {
        self.inner.join(m, lease_ms)
    }
    fn heartbeat(&self, m: &Member) -> Result<bool, StoreError> {
        self.inner.heartbeat(m)
    }
    fn leave(&self, m: &Member) -> Result<(), StoreError> {
        self.inner.leave(m)
    }
    fn members(&self, lease_ms: i64) -> Result<Vec<Member>, StoreError> {
        self.inner.members(lease_ms)
    }
    fn leader(&self) -> Result<Option<Leadership>, StoreError> {
        self.inner.leader()
    }
    fn try_lead(&self, m: &Member, lease_ms: i64) -> Result<bool, StoreError> {
        self.inner.try_lead(m, lease_ms)
    }
    fn resign(&self, m: &Member) -> Result<(), StoreError> {
        self.inner.resign(m)
    }
    fn shard_count(&self, requested: Option<i32>) -> Result<i32, StoreError> {
        self.inner.shard_count(requested)
    }
}

impl Store for GatedStore {
    fn acquire_shards(&self, owner: &str, shards: &[i32]) -> Result<Vec<i64>, StoreError> {
        self.inner.acquire_shards(owner, shards)
    }
    fn commit(&self, batch: WriteBatch) -> oneshot::Receiver<Result<(), StoreError>> {
        let rx = self.inner.commit(batch);
        if !self.armed.swap(false, Ordering::SeqCst) {
            return rx;
        }
        let (tx, out) = oneshot::channel();
        let (committed, release) = (self.committed.clone(), self.release.clone());
        tokio::spawn(async move {
            let r = rx
                .await
                .unwrap_or_else(|_| Err(StoreError::Backend("gone".into())));
            committed.notify_one();
            release.acquire().await.unwrap().forget();
            let _ = tx.send(r);
        });
        out
    }
    fn list_namespaces(&self) -> Result<Vec<StoredNamespace>, StoreError> {
        self.inner.list_namespaces()
    }
    fn put_namespace(&self, ns: &StoredNamespace, create: bool) -> Result<(), StoreError> {
        self.inner.put_namespace(ns, create)
    }
    fn put_batch_job(&self, job: &StoredBatchJob, create: bool) -> Result<(), StoreError> {
        self.inner.put_batch_job(job, create)
    }
    fn get_batch_job(&self, ns: &str, job: &str) -> Result<Option<StoredBatchJob>, StoreError> {
        self.inner.get_batch_job(ns, job)
    }
    fn list_batch_jobs(
        &self,
        ns: &str,
        limit: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<StoredBatchJob>, StoreError> {
        self.inner.list_batch_jobs(ns, limit, after)
    }
    fn put_schedule(&self, s: &StoredSchedule, create: bool) -> Result<(), StoreError> {
        self.inner.put_schedule(s, create)
    }
    fn get_schedule(&self, ns: &str, id: &str) -> Result<Option<StoredSchedule>, StoreError> {
        self.inner.get_schedule(ns, id)
    }
    fn delete_schedule(&self, ns: &str, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_schedule(ns, id)
    }
    fn list_schedules(
        &self,
        ns: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<Vec<StoredSchedule>, StoreError> {
        self.inner.list_schedules(ns, limit, after)
    }
    fn load_schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        self.inner.load_schedules()
    }
    fn put_deployment(&self, d: &perdure_core::store::StoredDeployment) -> Result<(), StoreError> {
        self.inner.put_deployment(d)
    }
    fn delete_deployment(&self, namespace_id: &str, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_deployment(namespace_id, name)
    }
    fn load_deployments(&self) -> Result<Vec<perdure_core::store::StoredDeployment>, StoreError> {
        self.inner.load_deployments()
    }
    fn waking_executions(
        &self,
        after: Option<&perdure_core::store::WakeKey>,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(perdure_core::store::WakeKey, StoredExecution)>, StoreError> {
        self.inner.waking_executions(after, until, limit)
    }
    fn get_execution(&self, ns: &str, run: &str) -> Result<Option<StoredExecution>, StoreError> {
        self.inner.get_execution(ns, run)
    }
    fn get_current_run(&self, ns: &str, wf: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_current_run(ns, wf)
    }
    fn read_events(
        &self,
        ns: &str,
        run: &str,
        first: i64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.read_events(ns, run, first, limit)
    }
    fn list_visibility(
        &self,
        ns: &str,
        q: &VisibilityQuery,
        page: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<ListedRow>, StoreError> {
        self.inner.list_visibility(ns, q, page, after)
    }
    fn count_visibility(
        &self,
        ns: &str,
        q: &VisibilityQuery,
    ) -> Result<(i64, Vec<(i32, i64)>), StoreError> {
        self.inner.count_visibility(ns, q)
    }
    fn cluster_id(&self, new_id: &str) -> Result<String, StoreError> {
        self.inner.cluster_id(new_id)
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

async fn engine(store: Arc<GatedStore>) -> Engine {
    Engine::start(store, Arc::new(SystemClock), Config::default())
        .await
        .unwrap()
}

fn start_req(id: &str, tq: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType { name: "wf".into() }),
        task_queue: Some(TaskQueue {
            name: tq.into(),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

fn sws_req(id: &str, tq: &str) -> SignalWithStartWorkflowExecutionRequest {
    SignalWithStartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType { name: "wf".into() }),
        task_queue: Some(TaskQueue {
            name: tq.into(),
            ..Default::default()
        }),
        signal_name: "go".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

async fn poll(e: &Engine, tq: &str, wait: Duration) -> PollWorkflowTaskQueueResponse {
    e.poll_workflow_task(
        PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: Some(TaskQueue {
                name: tq.into(),
                ..Default::default()
            }),
            identity: "test".into(),
            ..Default::default()
        },
        Instant::now() + wait,
    )
    .await
    .unwrap()
}

async fn event_types(e: &Engine, id: &str) -> Vec<EventType> {
    let h = e
        .get_history(
            GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
                ..Default::default()
            },
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    h.history
        .unwrap_or_default()
        .events
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_cancelled_right_after_its_commit_still_queues_its_first_workflow_task() {
    let store = GatedStore::new();
    let e = engine(store.clone()).await;
    store.armed.store(true, Ordering::SeqCst);
    let rpc = tokio::spawn({
        let e = e.clone();
        async move { e.start_workflow(start_req("cancelled-start", "q1")).await }
    });
    // The run is durable now; the client goes away before hearing so.
    store.committed.notified().await;
    rpc.abort();
    assert!(rpc.await.unwrap_err().is_cancelled());
    store.release.add_permits(1);

    let task = poll(&e, "q1", Duration::from_secs(10)).await;
    assert_eq!(
        task.workflow_execution.map(|w| w.workflow_id).as_deref(),
        Some("cancelled-start"),
        "the committed run's first workflow task was never queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_with_start_racing_a_start_signals_the_run_the_start_created() {
    let store = GatedStore::new();
    let e = engine(store.clone()).await;
    // The start has decided and committed, but not yet registered its run in memory, when the
    // signal-with-start arrives.
    store.armed.store(true, Ordering::SeqCst);
    let start = tokio::spawn({
        let e = e.clone();
        async move { e.start_workflow(start_req("raced", "q2")).await }
    });
    store.committed.notified().await;
    let sws = tokio::spawn({
        let e = e.clone();
        async move { e.signal_with_start(sws_req("raced", "q2")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.release.add_permits(1);
    let started = start.await.unwrap().unwrap();
    let signalled = sws.await.unwrap().unwrap();
    assert!(started.started);
    assert!(
        !signalled.started,
        "signal-with-start must not start a second run"
    );
    assert_eq!(signalled.run_id, started.run_id);
    let types = event_types(&e, "raced").await;
    assert!(
        types.contains(&EventType::WorkflowExecutionSignaled),
        "the signal vanished: {types:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_and_signal_with_starts_never_lose_a_signal() {
    let store = GatedStore::new();
    let e = engine(store).await;
    let mut pairs = Vec::new();
    for i in 0..50 {
        let id = format!("pair-{i}");
        let (e1, e2) = (e.clone(), e.clone());
        let (id1, id2) = (id.clone(), id.clone());
        pairs.push((
            id,
            tokio::spawn(async move { e1.start_workflow(start_req(&id1, "q3")).await }),
            tokio::spawn(async move { e2.signal_with_start(sws_req(&id2, "q3")).await }),
        ));
    }
    for (id, start, sws) in pairs {
        let start = start.await.unwrap();
        let sws = sws.await.unwrap().unwrap();
        if let Ok(s) = &start {
            assert_eq!(s.run_id, sws.run_id, "{id}: two runs");
        }
        let types = event_types(&e, &id).await;
        let signals = types
            .iter()
            .filter(|t| **t == EventType::WorkflowExecutionSignaled)
            .count();
        assert_eq!(signals, 1, "{id}: {types:?}");
    }
}
