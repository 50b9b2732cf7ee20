//! Perdure's storage interface, backend-neutral: the [`Store`] trait every backend (SQLite,
//! PostgreSQL, [`MemoryStore`]) implements, its error type and the plain rows it moves. Events and
//! states are opaque encoded bytes plus the few indexed columns queries need; a backend never
//! decodes a payload. Visibility queries arrive parsed ([`VisibilityQuery`]) and each backend
//! renders them to its own SQL (or, in memory, evaluates them); domain values such as the
//! visibility sort key are computed above the store. Every execution write, deletes included,
//! goes through [`Store::commit`] and is fenced by its shard's token. [`conformance`] holds the
//! contract checks every backend's tests run.

#[doc(hidden)]
pub mod conformance;
mod memory;

pub use memory::MemoryStore;

use std::sync::Arc;

use tokio::sync::oneshot;

pub use perdure_query::{
    Attr, CmpOp, Compiled, Dialect, Filter, SaType, SqlValue, VisibilityQuery,
};

/// Portable storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A shard's lease moved to another owner: the fencing token in the write is stale.
    #[error("shard {shard_id} ownership lost (fencing token {expected} is stale)")]
    ShardOwnershipLost { shard_id: i32, expected: i64 },
    /// A conditional insert found the row already there.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The database refused a visibility query built from a user's query (bad input).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The database cannot be reached (connection refused or lost); retryable.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database itself failed.
    #[error("storage failure: {0}")]
    Backend(String),
    /// Another live process of the cluster already uses this node name.
    #[error(
        "another process named {node:?} is running (its last heartbeat was {age_ms} ms ago); \
         give each process its own --node-name"
    )]
    NodeNameTaken { node: String, age_ms: i64 },
    /// The cluster's shard count can only be raised.
    #[error("the cluster has {current} shards; the shard count cannot be lowered to {requested}")]
    ShardCountLowered { current: i32, requested: i32 },
}

/// One execution's writes inside a batch.
#[derive(Debug, Clone)]
pub struct ExecutionWrite {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub status: i32,
    /// Still needs loading at start-up (running, or owes its parent a notification).
    pub open: bool,
    /// Encoded `perdure_core::state::ExecutionState`.
    pub state: Vec<u8>,
    /// New history events: (event id, encoded `HistoryEvent`).
    pub events: Vec<(i64, Vec<u8>)>,
    /// Make this run the current run of its workflow id.
    pub set_current: bool,
    /// The visibility row, kept in the same transaction; `None` when it is unchanged since this
    /// run's last write (the engine skips rewriting an identical row).
    pub visibility: Option<VisibilityRow>,
    /// When the run next needs its engine without a request: its earliest timer or deadline,
    /// in milliseconds since the Unix epoch, or 0 while a task or a notice of it waits to be
    /// dispatched; `None` when only a request can wake it (it waits on a signal, or it is
    /// closed). Indexed: an engine reads only the runs that fall due soon
    /// ([`Store::waking_executions`]), never every open run.
    pub wake_at: Option<i64>,
}

/// Where a page of [`Store::waking_executions`] resumes: after this wake time and run.
#[derive(Debug, Clone, PartialEq)]
pub struct WakeKey {
    pub wake_at: i64,
    pub run: RunRef,
}

/// A run to delete with everything it has: state, history, visibility row, and its workflow id's
/// current-run pointer if it points at this run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRef {
    pub namespace_id: String,
    pub run_id: String,
}

/// Everything one engine transition wants committed atomically.
#[derive(Debug, Clone)]
pub struct WriteBatch {
    /// Shard the executions belong to, and the owner's fencing token for it.
    pub shard_id: i32,
    pub range_id: i64,
    pub executions: Vec<ExecutionWrite>,
    /// Runs of this shard to delete (after the writes).
    pub deletes: Vec<RunRef>,
}

impl WriteBatch {
    /// A batch of execution writes only.
    pub fn writes(shard_id: i32, range_id: i64, executions: Vec<ExecutionWrite>) -> WriteBatch {
        WriteBatch {
            shard_id,
            range_id,
            executions,
            deletes: Vec::new(),
        }
    }
}

/// The indexed visibility columns of one run (see `perdure-query` for the table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisibilityRow {
    pub namespace_id: String,
    pub run_id: String,
    pub workflow_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub status: i32,
    pub start_time: i64,
    pub execution_time: i64,
    pub close_time: Option<i64>,
    pub execution_duration: Option<i64>,
    pub history_length: i64,
    pub history_size_bytes: i64,
    pub state_transition_count: i64,
    pub parent_workflow_id: Option<String>,
    pub root_workflow_id: Option<String>,
    /// JSON object of search attribute values (the query crate's format).
    pub search_attributes: String,
    /// Encoded `temporal.api.workflow.v1.WorkflowExecutionInfo` returned by List as-is.
    pub info: Vec<u8>,
    /// The listing order, newest first: see [`visibility_sort_key`].
    pub sort_key: i64,
}

/// The key visibility lists are ordered by (descending, then run id descending): open runs
/// first, by start time, then closed runs by close time. Computed above the store, so every
/// backend lists in the same order.
pub fn visibility_sort_key(start_time: i64, close_time: Option<i64>) -> i64 {
    match close_time {
        Some(c) => c,
        None => (1i64 << 62) + start_time / 4,
    }
}

/// A stored execution.
#[derive(Debug, Clone)]
pub struct StoredExecution {
    pub state: Vec<u8>,
}

/// A namespace as stored.
#[derive(Debug, Clone)]
pub struct StoredNamespace {
    pub id: String,
    pub name: String,
    /// Encoded `perdure_core::state::NamespaceRecord`.
    pub data: Vec<u8>,
}

/// A batch operation job as stored: its namespace, id and start time (the listing order) and its
/// encoded record (a `DescribeBatchOperationResponse`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBatchJob {
    pub namespace_id: String,
    pub job_id: String,
    /// Unix nanoseconds.
    pub start_time: i64,
    pub data: Vec<u8>,
}

/// A schedule as stored: its namespace and id, when the scheduler must next look at it (Unix
/// nanoseconds; none: only a request wakes it) and its encoded record
/// (`schedule::ScheduleRecord`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSchedule {
    pub namespace_id: String,
    pub schedule_id: String,
    pub next_wake: Option<i64>,
    pub data: Vec<u8>,
}

/// A worker deployment as stored: its namespace, name and encoded record
/// (`engine::deployments::DeploymentRecord`: routing config and versions).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDeployment {
    pub namespace_id: String,
    pub name: String,
    pub data: Vec<u8>,
}

/// The backend interface. Reads are blocking calls (run them on a blocking thread); writes go
/// through [`Store::commit`], which group-commits concurrent batches into one transaction and
/// answers each batch once its transaction is durable.
pub trait Store: Cluster + Send + Sync + 'static {
    /// Takes ownership of `shards` for `owner`, bumping each one's fencing token (so the former
    /// owner's writes to them are refused from then on); returns the new tokens in the order of
    /// `shards`. Other shards are left as they are.
    fn acquire_shards(&self, owner: &str, shards: &[i32]) -> Result<Vec<i64>, StoreError>;
    /// Queues `batch` for the next group commit.
    fn commit(&self, batch: WriteBatch) -> oneshot::Receiver<Result<(), StoreError>>;

    fn list_namespaces(&self) -> Result<Vec<StoredNamespace>, StoreError>;
    /// Inserts (`create=true`, fails with AlreadyExists) or overwrites a namespace.
    fn put_namespace(&self, ns: &StoredNamespace, create: bool) -> Result<(), StoreError>;

    /// One page of the open runs whose wake time is set and before `until`, in `(wake time,
    /// namespace id, run id)` order, starting after `after` (from the earliest when `None`): at
    /// most `limit` of them, each with its encoded state. Engines read the runs that fall due a
    /// window at a time, so no backend ever holds every open run at once, and a run that waits
    /// only on a signal is never read.
    fn waking_executions(
        &self,
        after: Option<&WakeKey>,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(WakeKey, StoredExecution)>, StoreError>;
    fn get_execution(
        &self,
        namespace_id: &str,
        run_id: &str,
    ) -> Result<Option<StoredExecution>, StoreError>;
    fn get_current_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Encoded events with `first_event_id <= id`, ascending, at most `limit`.
    fn read_events(
        &self,
        namespace_id: &str,
        run_id: &str,
        first_event_id: i64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Visibility rows matching the query, in its `ORDER BY` order, else newest first (sort key,
    /// then run id, descending), after the `(sort key, run id)` cursor; returns encoded
    /// `WorkflowExecutionInfo`s and each row's cursor. A query the database refuses (too deep,
    /// too many parameters) is [`StoreError::InvalidQuery`].
    fn list_visibility(
        &self,
        namespace_id: &str,
        query: &VisibilityQuery,
        page_size: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<ListedRow>, StoreError>;
    /// Count of matching rows, or counts per status when the query groups by ExecutionStatus.
    fn count_visibility(
        &self,
        namespace_id: &str,
        query: &VisibilityQuery,
    ) -> Result<(i64, Vec<(i32, i64)>), StoreError>;

    /// Inserts (`create=true`, fails with AlreadyExists if the job id is taken in its namespace)
    /// or overwrites a batch job.
    fn put_batch_job(&self, job: &StoredBatchJob, create: bool) -> Result<(), StoreError>;
    fn get_batch_job(
        &self,
        namespace_id: &str,
        job_id: &str,
    ) -> Result<Option<StoredBatchJob>, StoreError>;
    /// A namespace's batch jobs, newest first (start time, then job id, descending), after the
    /// `(start_time, job_id)` cursor, at most `limit`.
    fn list_batch_jobs(
        &self,
        namespace_id: &str,
        limit: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<StoredBatchJob>, StoreError>;

    /// Inserts (`create=true`, fails with AlreadyExists if the schedule id is taken in its
    /// namespace) or overwrites a schedule.
    fn put_schedule(&self, s: &StoredSchedule, create: bool) -> Result<(), StoreError>;
    fn get_schedule(
        &self,
        namespace_id: &str,
        schedule_id: &str,
    ) -> Result<Option<StoredSchedule>, StoreError>;
    /// Deletes a schedule; false if there was none.
    fn delete_schedule(&self, namespace_id: &str, schedule_id: &str) -> Result<bool, StoreError>;
    /// A namespace's schedules by schedule id, after the `after` id, at most `limit`.
    fn list_schedules(
        &self,
        namespace_id: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<Vec<StoredSchedule>, StoreError>;
    /// Every schedule with a wake time (for the scheduler at start-up).
    fn load_schedules(&self) -> Result<Vec<StoredSchedule>, StoreError>;

    /// Inserts or overwrites a worker deployment.
    fn put_deployment(&self, d: &StoredDeployment) -> Result<(), StoreError>;
    /// Deletes a worker deployment; false if there was none.
    fn delete_deployment(&self, namespace_id: &str, name: &str) -> Result<bool, StoreError>;
    /// Every worker deployment of every namespace (loaded at start-up).
    fn load_deployments(&self) -> Result<Vec<StoredDeployment>, StoreError>;

    /// The cluster id kept in the database: stores `new_id` if there is none yet, and returns
    /// the stored one, so it stays the same across restarts on the same database.
    fn cluster_id(&self, new_id: &str) -> Result<String, StoreError>;
    /// Name of the backend, as GetClusterInfo reports it (`sqlite`, `postgres`, `memory`).
    fn name(&self) -> &'static str;
}

/// A server process of the cluster, as its membership row says.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// `--node-name`, unique among live processes.
    pub node: String,
    /// A fresh id per process start: a restarted process replaces its old row.
    pub session: String,
    /// Where other processes (and forwarded requests) reach its gRPC port.
    pub address: String,
}

/// The cluster's current leader: the process that holds every shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Leadership {
    pub node: String,
    pub session: String,
    pub address: String,
    /// Milliseconds until its lease runs out (negative: expired), by the database's clock.
    pub expires_in_ms: i64,
}

/// Membership and leadership, on the database's clock so the processes' clocks do not matter.
/// Every backend implements it; with one process (SQLite) it is trivially that process.
pub trait Cluster: Send + Sync + 'static {
    /// Registers this process (or refreshes its row). Fails with
    /// [`StoreError::NodeNameTaken`] if another session holds the name and heartbeated within
    /// `lease_ms`.
    fn join(&self, m: &Member, lease_ms: i64) -> Result<(), StoreError>;
    /// Refreshes this process's heartbeat; false if its row now belongs to another session.
    fn heartbeat(&self, m: &Member) -> Result<bool, StoreError>;
    /// Removes this process's row (a clean shutdown).
    fn leave(&self, m: &Member) -> Result<(), StoreError>;
    /// Members that heartbeated within `lease_ms`, by node name.
    fn members(&self, lease_ms: i64) -> Result<Vec<Member>, StoreError>;
    /// The leader, if any process ever led.
    fn leader(&self) -> Result<Option<Leadership>, StoreError>;
    /// Takes or renews leadership for `lease_ms`: succeeds if there is no leader, its lease ran
    /// out, or it is this very session. Atomic: two candidates never both succeed. On an
    /// [`exclusive`](Cluster::exclusive) store it always succeeds.
    fn try_lead(&self, m: &Member, lease_ms: i64) -> Result<bool, StoreError>;
    /// Only one process can ever use this store (an SQLite file, locked while open): a process
    /// restarted after a crash leads at once instead of waiting for its former lease to run out.
    fn exclusive(&self) -> bool {
        false
    }
    /// Gives leadership up at once (a clean shutdown), if this session holds it.
    fn resign(&self, m: &Member) -> Result<(), StoreError>;
    /// The cluster's shard count: set from `requested` (or 16) when the cluster is new, raised
    /// when `requested` is larger; lowering it is refused. Raising it bumps every shard's
    /// fencing token in the same transaction: runs change shards with the count, so every
    /// current owner is fenced off before any process can see the new count.
    fn shard_count(&self, requested: Option<i32>) -> Result<i32, StoreError>;
}

/// The default shard count of a new cluster.
pub const DEFAULT_SHARDS: i32 = 16;

/// Decides the shard count from the stored one and the requested one.
pub fn resolve_shard_count(stored: Option<i32>, requested: Option<i32>) -> Result<i32, StoreError> {
    match (stored, requested) {
        (None, r) => Ok(r.unwrap_or(DEFAULT_SHARDS)),
        (Some(s), Some(r)) if r < s => Err(StoreError::ShardCountLowered {
            current: s,
            requested: r,
        }),
        (Some(s), r) => Ok(r.unwrap_or(s).max(s)),
    }
}

/// One listed visibility row: the encoded info and its `(sort key, run id)` page cursor.
pub type ListedRow = (Vec<u8>, (i64, String));

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;
