//! The embedded SQLite backend of [`perdure_store::Store`]: one writer thread that owns every
//! write (it group-commits every batch queued while the previous commit was running into one WAL
//! transaction, `synchronous=FULL`, so an acknowledged batch is on disk, and runs the small
//! control-plane writes in turn), plus a small pool of reader connections that only read. The
//! schema is versioned by the SQL files under `migrations/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use parking_lot::Mutex;
use perdure_store::{
    Cluster, Dialect, ExecutionWrite, Leadership, ListedRow, Member, RunRef, SqlValue, Store,
    StoreError, StoredBatchJob, StoredDeployment, StoredExecution, StoredNamespace, StoredSchedule,
    VisibilityQuery, WakeKey, WriteBatch,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use tokio::sync::oneshot;

/// Versioned migrations, applied in order; `PRAGMA user_version` records the last applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_cluster_metadata.sql"),
    include_str!("../migrations/0003_batch_jobs.sql"),
    include_str!("../migrations/0004_schedules.sql"),
    include_str!("../migrations/0005_worker_deployments.sql"),
    include_str!("../migrations/0006_cluster.sql"),
    include_str!("../migrations/0007_open_runs_by_key.sql"),
    include_str!("../migrations/0008_wake_times.sql"),
];

/// Largest number of batches folded into one transaction.
const MAX_GROUP: usize = 512;

/// Where the database lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A durable file.
    File(PathBuf),
    /// A throwaway database that disappears with the process (no fsync).
    Temporary,
}

/// A control-plane write, run on the writer thread in its own transaction.
type WriteFn = Box<dyn FnOnce(&mut Connection) -> rusqlite::Result<()> + Send>;

/// What the writer thread is asked to do.
enum Job {
    Batch(WriteBatch, oneshot::Sender<Result<(), StoreError>>),
    Write(WriteFn),
}

/// SQLite store handle.
pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    _temp: Option<Arc<TempDir>>,
    /// Held while the store is open: one process per database file.
    _lock: Option<std::fs::File>,
}

/// A directory removed on drop.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A unique or primary-key constraint refused the row.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// A visibility statement the database refused to prepare: its SQL came from the user's query
/// (too deep, too many parameters), so the query is at fault, not the database.
fn invalid_query(e: rusqlite::Error) -> StoreError {
    StoreError::InvalidQuery(e.to_string())
}

fn open_conn(path: &Path, durable: bool) -> Result<Connection, StoreError> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend)?;
    c.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(backend)?;
    c.pragma_update(None, "journal_mode", "WAL")
        .map_err(backend)?;
    c.pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })
        .map_err(backend)?;
    c.pragma_update(None, "foreign_keys", "OFF")
        .map_err(backend)?;
    // Every hot statement stays prepared (the default keeps 16).
    c.set_prepared_statement_cache_capacity(64);
    Ok(c)
}

fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "database schema version {version} is newer than this binary supports ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = c.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database.
    pub fn open(location: Location) -> Result<Self, StoreError> {
        let (path, durable, temp) = match location {
            Location::File(p) => (p, true, None),
            Location::Temporary => {
                let dir = std::env::temp_dir().join(format!("perdure-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&dir).map_err(|e| StoreError::Backend(e.to_string()))?;
                (dir.join("perdure.db"), false, Some(Arc::new(TempDir(dir))))
            }
        };
        // One process per file: the cluster logic relies on it (a restarted process leads at
        // once), and two writers would only fence each other off.
        let lock = match &temp {
            Some(_) => None,
            None => {
                let mut name = path.clone().into_os_string();
                name.push(".lock");
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&name)
                    .map_err(|e| StoreError::Backend(format!("cannot open {name:?}: {e}")))?;
                match f.try_lock() {
                    Ok(()) => Some(f),
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(StoreError::Backend(format!(
                            "the database {} is in use by another Perdure process",
                            path.display()
                        )));
                    }
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(StoreError::Backend(format!("cannot lock {name:?}: {e}")));
                    }
                }
            }
        };
        let mut w = open_conn(&path, durable)?;
        migrate(&mut w)?;
        let mut readers = Vec::new();
        for _ in 0..4 {
            readers.push(Mutex::new(open_conn(&path, durable)?));
        }
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("perdure-sqlite-writer".into())
            .spawn(move || writer_loop(w, rx))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(SqliteStore {
            writer: Mutex::new(tx),
            readers,
            next_reader: AtomicUsize::new(0),
            _temp: temp,
            _lock: lock,
        })
    }

    /// Runs `f` on the writer thread (after the group commit in flight) in one transaction and
    /// waits for its answer. A unique-constraint violation is reported as `AlreadyExists(what)`.
    fn write<R: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job: WriteFn = Box::new(move |c: &mut Connection| {
            let r = (|| {
                let t = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let r = f(&t)?;
                t.commit()?;
                Ok(r)
            })();
            let _ = tx.send(r);
            Ok(())
        });
        self.writer
            .lock()
            .send(Job::Write(job))
            .map_err(|_| StoreError::Backend("the SQLite writer thread stopped".into()))?;
        match rx.recv() {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(what.into())),
            Ok(Err(e)) => Err(backend(e)),
            Err(_) => Err(StoreError::Backend(
                "the SQLite writer thread stopped".into(),
            )),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, StoreError> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            if let Some(c) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return f(&c).map_err(backend);
            }
        }
        let c = self.readers[start % self.readers.len()].lock();
        f(&c).map_err(backend)
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut next = None;
    // The shards' fencing tokens as last read or written here. Only this thread writes the file
    // (one process per file), and every control-plane write may change a token, so the cache is
    // dropped after each one.
    let mut fences = Fences::default();
    loop {
        let first = match next.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let mut jobs = match first {
            Job::Write(f) => {
                let _ = f(&mut conn);
                fences.clear();
                continue;
            }
            Job::Batch(b, reply) => vec![(b, reply)],
        };
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Job::Batch(b, reply)) => jobs.push((b, reply)),
                Ok(w @ Job::Write(_)) => {
                    next = Some(w);
                    break;
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let results = commit_group(&mut conn, &jobs, &mut fences);
        record_group_commit(jobs.len(), started.elapsed(), results.is_ok());
        match results {
            Ok(per_job) => {
                for ((_, reply), r) in jobs.into_iter().zip(per_job) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                fences.clear();
                for (_, reply) in jobs {
                    let _ = reply.send(Err(StoreError::Backend(e.to_string())));
                }
            }
        }
    }
}

/// The fencing tokens the writer thread has seen, by shard.
#[derive(Default)]
struct Fences(std::collections::HashMap<i32, i64>);

impl Fences {
    fn clear(&mut self) {
        self.0.clear();
    }

    /// The shard's token, read from the database the first time.
    fn get(&mut self, tx: &rusqlite::Transaction, shard: i32) -> rusqlite::Result<Option<i64>> {
        if let Some(r) = self.0.get(&shard) {
            return Ok(Some(*r));
        }
        let range: Option<i64> = tx
            .prepare_cached("SELECT range_id FROM shards WHERE shard_id = ?1")?
            .query_row([shard], |r| r.get(0))
            .optional()?;
        if let Some(r) = range {
            self.0.insert(shard, r);
        }
        Ok(range)
    }
}

/// Records one group commit: `persistence_requests`, `persistence_errors` and
/// `persistence_latency` (seconds) with `operation="CommitGroup"`, as Temporal names its
/// persistence metrics, and `perdure_commit_group_batches`, the batches folded into it; all
/// labelled `backend="sqlite"` (the full list is in `perdure-server`'s `metrics` module).
fn record_group_commit(batches: usize, elapsed: std::time::Duration, ok: bool) {
    let labels = [("operation", "CommitGroup"), ("backend", "sqlite")];
    metrics::counter!("persistence_requests", &labels).increment(1);
    if !ok {
        metrics::counter!("persistence_errors", &labels).increment(1);
    }
    metrics::histogram!("persistence_latency", &labels).record(elapsed.as_secs_f64());
    metrics::histogram!("perdure_commit_group_batches", "backend" => "sqlite")
        .record(batches as f64);
}

/// One transaction for the whole group. Most groups are applied in one go; if a batch is
/// fenced off or fails, the transaction is rolled back and the group applied again with each
/// batch in its own savepoint, so that batch does not sink the others.
fn commit_group(
    conn: &mut Connection,
    jobs: &[(WriteBatch, oneshot::Sender<Result<(), StoreError>>)],
    fences: &mut Fences,
) -> rusqlite::Result<Vec<Result<(), StoreError>>> {
    {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut ok = true;
        for (batch, _) in jobs {
            if apply_batch(&tx, batch, fences).is_err() {
                ok = false;
                break;
            }
        }
        if ok {
            tx.commit()?;
            return Ok(jobs.iter().map(|_| Ok(())).collect());
        }
        // Dropping `tx` rolls it back.
    }
    fences.clear();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut out = Vec::with_capacity(jobs.len());
    for (batch, _) in jobs {
        tx.prepare_cached("SAVEPOINT b")?.execute([])?;
        match apply_batch(&tx, batch, fences) {
            Ok(()) => {
                tx.prepare_cached("RELEASE b")?.execute([])?;
                out.push(Ok(()));
            }
            Err(e) => {
                tx.prepare_cached("ROLLBACK TO b")?.execute([])?;
                tx.prepare_cached("RELEASE b")?.execute([])?;
                fences.clear();
                out.push(Err(e));
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

fn apply_batch(
    tx: &rusqlite::Transaction,
    b: &WriteBatch,
    fences: &mut Fences,
) -> Result<(), StoreError> {
    let range = fences.get(tx, b.shard_id).map_err(backend)?;
    if range != Some(b.range_id) {
        return Err(StoreError::ShardOwnershipLost {
            shard_id: b.shard_id,
            expected: b.range_id,
        });
    }
    for e in &b.executions {
        write_execution(tx, b.shard_id, e).map_err(backend)?;
    }
    for r in &b.deletes {
        for sql in [
            "DELETE FROM history WHERE namespace_id = ?1 AND run_id = ?2",
            "DELETE FROM visibility WHERE namespace_id = ?1 AND run_id = ?2",
            "DELETE FROM executions WHERE namespace_id = ?1 AND run_id = ?2",
            "DELETE FROM current_executions WHERE namespace_id = ?1 AND run_id = ?2",
        ] {
            tx.prepare_cached(sql)
                .and_then(|mut st| st.execute(params![r.namespace_id, r.run_id]))
                .map_err(backend)?;
        }
    }
    Ok(())
}

fn write_execution(
    tx: &rusqlite::Transaction,
    shard: i32,
    e: &ExecutionWrite,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO executions
            (namespace_id, run_id, workflow_id, shard_id, status, open, state, wake_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (namespace_id, run_id) DO UPDATE
            SET status = ?5, open = ?6, state = ?7, wake_at = ?8",
    )?
    .execute(params![
        e.namespace_id,
        e.run_id,
        e.workflow_id,
        shard,
        e.status,
        e.open as i64,
        e.state,
        e.wake_at
    ])?;
    if e.set_current {
        tx.prepare_cached(
            "INSERT INTO current_executions (namespace_id, workflow_id, run_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (namespace_id, workflow_id) DO UPDATE SET run_id = ?3",
        )?
        .execute(params![e.namespace_id, e.workflow_id, e.run_id])?;
    }
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO history (namespace_id, run_id, event_id, data) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (id, data) in &e.events {
            ins.execute(params![e.namespace_id, e.run_id, id, data])?;
        }
    }
    let Some(v) = &e.visibility else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO visibility (namespace_id, run_id, workflow_id, workflow_type, task_queue, status,
            start_time, execution_time, close_time, execution_duration, history_length,
            history_size_bytes, state_transition_count, parent_workflow_id, root_workflow_id,
            search_attributes, sort_key, info)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
         ON CONFLICT (namespace_id, run_id) DO UPDATE SET status = ?6, close_time = ?9,
            execution_duration = ?10, history_length = ?11, history_size_bytes = ?12,
            state_transition_count = ?13, search_attributes = ?16, sort_key = ?17, info = ?18,
            execution_time = ?8",
    )?
    .execute(params![
        v.namespace_id,
        v.run_id,
        v.workflow_id,
        v.workflow_type,
        v.task_queue,
        v.status,
        v.start_time,
        v.execution_time,
        v.close_time,
        v.execution_duration,
        v.history_length,
        v.history_size_bytes,
        v.state_transition_count,
        v.parent_workflow_id,
        v.root_workflow_id,
        v.search_attributes,
        v.sort_key,
        v.info
    ])?;
    Ok(())
}

fn to_sql(v: &SqlValue) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        SqlValue::Int(i) => Value::Integer(*i),
        SqlValue::Real(f) => Value::Real(*f),
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Bool(b) => Value::Integer(*b as i64),
    }
}

impl Store for SqliteStore {
    fn acquire_shards(&self, owner: &str, shards: &[i32]) -> Result<Vec<i64>, StoreError> {
        let owner = owner.to_string();
        let shards = shards.to_vec();
        self.write("shards", move |tx| {
            let mut out = Vec::new();
            for s in shards {
                out.push(tx.query_row(
                    "INSERT INTO shards (shard_id, range_id, owner) VALUES (?1, 1, ?2)
                     ON CONFLICT (shard_id) DO UPDATE SET range_id = range_id + 1, owner = ?2
                     RETURNING range_id",
                    params![s, owner],
                    |r| r.get(0),
                )?);
            }
            Ok(out)
        })
    }

    fn commit(&self, batch: WriteBatch) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.writer.lock().send(Job::Batch(batch, tx));
        rx
    }

    fn list_namespaces(&self) -> Result<Vec<StoredNamespace>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id, name, data FROM namespaces ORDER BY name")?;
            let rows = st.query_map([], |r| {
                Ok(StoredNamespace {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    data: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    fn put_namespace(&self, ns: &StoredNamespace, create: bool) -> Result<(), StoreError> {
        let ns = ns.clone();
        self.write(&ns.name.clone(), move |tx| {
            if create {
                tx.execute(
                    "INSERT INTO namespaces (id, name, data) VALUES (?1, ?2, ?3)",
                    params![ns.id, ns.name, ns.data],
                )
            } else {
                tx.execute(
                    "UPDATE namespaces SET data = ?3, name = ?2 WHERE id = ?1",
                    params![ns.id, ns.name, ns.data],
                )
            }
            .map(|_| ())
        })
    }

    fn waking_executions(
        &self,
        after: Option<&WakeKey>,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(WakeKey, StoredExecution)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (wake, ns, run) = after.map_or((i64::MIN, "", ""), |a| {
            (
                a.wake_at,
                a.run.namespace_id.as_str(),
                a.run.run_id.as_str(),
            )
        });
        self.read(|c| {
            // `(w, ns, run) > (MIN, '', '')` holds for every row: no run has the empty key.
            let mut st = c.prepare_cached(
                "SELECT wake_at, namespace_id, run_id, state FROM executions
                 WHERE open = 1 AND wake_at IS NOT NULL AND wake_at < ?4
                   AND (wake_at, namespace_id, run_id) > (?1, ?2, ?3)
                 ORDER BY wake_at, namespace_id, run_id LIMIT ?5",
            )?;
            let rows = st.query_map(params![wake, ns, run, until, limit], |r| {
                Ok((
                    WakeKey {
                        wake_at: r.get(0)?,
                        run: RunRef {
                            namespace_id: r.get(1)?,
                            run_id: r.get(2)?,
                        },
                    },
                    StoredExecution { state: r.get(3)? },
                ))
            })?;
            rows.collect()
        })
    }

    fn get_execution(
        &self,
        namespace_id: &str,
        run_id: &str,
    ) -> Result<Option<StoredExecution>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT state FROM executions WHERE namespace_id = ?1 AND run_id = ?2",
            )?
            .query_row(params![namespace_id, run_id], |r| {
                Ok(StoredExecution { state: r.get(0)? })
            })
            .optional()
        })
    }

    fn get_current_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT run_id FROM current_executions WHERE namespace_id = ?1 AND workflow_id = ?2",
            )?
            .query_row(params![namespace_id, workflow_id], |r| r.get(0))
            .optional()
        })
    }

    fn read_events(
        &self,
        namespace_id: &str,
        run_id: &str,
        first_event_id: i64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT data FROM history WHERE namespace_id = ?1 AND run_id = ?2 AND event_id >= ?3
                 ORDER BY event_id LIMIT ?4",
            )?;
            let rows = st.query_map(params![namespace_id, run_id, first_event_id, limit], |r| {
                r.get(0)
            })?;
            rows.collect()
        })
    }

    fn list_visibility(
        &self,
        namespace_id: &str,
        query: &VisibilityQuery,
        page_size: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<ListedRow>, StoreError> {
        let query = query.to_sql(Dialect::Sqlite, 2);
        let mut params: Vec<rusqlite::types::Value> = vec![namespace_id.to_string().into()];
        params.extend(query.params.iter().map(to_sql));
        let mut sql = format!(
            "SELECT info, sort_key, run_id FROM visibility WHERE namespace_id = ?1 AND ({})",
            query.where_sql
        );
        if let Some((k, r)) = after {
            let n = params.len();
            sql.push_str(&format!(
                " AND (sort_key < ?{} OR (sort_key = ?{} AND run_id < ?{}))",
                n + 1,
                n + 1,
                n + 2
            ));
            params.push(k.into());
            params.push(r.into());
        }
        match &query.order_by {
            Some(o) => sql.push_str(&format!(" ORDER BY {o}, sort_key DESC, run_id DESC")),
            None => sql.push_str(" ORDER BY sort_key DESC, run_id DESC"),
        }
        sql.push_str(&format!(" LIMIT {}", page_size.max(1)));
        self.read(|c| {
            let mut st = match c.prepare(&sql) {
                Ok(st) => st,
                Err(e) => return Ok(Err(e)),
            };
            let rows = st.query_map(params_from_iter(params.iter()), |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, (r.get(1)?, r.get(2)?)))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map(Ok)
        })?
        .map_err(invalid_query)
    }

    fn count_visibility(
        &self,
        namespace_id: &str,
        query: &VisibilityQuery,
    ) -> Result<(i64, Vec<(i32, i64)>), StoreError> {
        let query = query.to_sql(Dialect::Sqlite, 2);
        let mut params: Vec<rusqlite::types::Value> = vec![namespace_id.to_string().into()];
        params.extend(query.params.iter().map(to_sql));
        let base = format!(
            "FROM visibility WHERE namespace_id = ?1 AND ({})",
            query.where_sql
        );
        self.read(|c| {
            let mut st = match c.prepare(&format!("SELECT COUNT(*) {base}")) {
                Ok(st) => st,
                Err(e) => return Ok(Err(e)),
            };
            let total: i64 = st.query_row(params_from_iter(params.iter()), |r| r.get(0))?;
            let mut groups = Vec::new();
            if query.group_by_status {
                let mut st = c.prepare(&format!(
                    "SELECT status, COUNT(*) {base} GROUP BY status ORDER BY status"
                ))?;
                let rows = st.query_map(params_from_iter(params.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                for row in rows {
                    groups.push(row?);
                }
            }
            Ok(Ok((total, groups)))
        })?
        .map_err(invalid_query)
    }

    fn put_batch_job(&self, job: &StoredBatchJob, create: bool) -> Result<(), StoreError> {
        let job = job.clone();
        self.write(&job.job_id.clone(), move |tx| {
            let sql = if create {
                "INSERT INTO batch_jobs (namespace_id, job_id, start_time, data)
                 VALUES (?1, ?2, ?3, ?4)"
            } else {
                "INSERT INTO batch_jobs (namespace_id, job_id, start_time, data)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (namespace_id, job_id) DO UPDATE SET start_time = ?3, data = ?4"
            };
            tx.execute(
                sql,
                params![job.namespace_id, job.job_id, job.start_time, job.data],
            )
            .map(|_| ())
        })
    }

    fn get_batch_job(
        &self,
        namespace_id: &str,
        job_id: &str,
    ) -> Result<Option<StoredBatchJob>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT start_time, data FROM batch_jobs WHERE namespace_id = ?1 AND job_id = ?2",
                params![namespace_id, job_id],
                |r| {
                    Ok(StoredBatchJob {
                        namespace_id: namespace_id.to_string(),
                        job_id: job_id.to_string(),
                        start_time: r.get(0)?,
                        data: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn list_batch_jobs(
        &self,
        namespace_id: &str,
        limit: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<StoredBatchJob>, StoreError> {
        let (t, id) = after.unwrap_or((i64::MAX, String::new()));
        let unbounded = id.is_empty();
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT job_id, start_time, data FROM batch_jobs WHERE namespace_id = ?1
                 AND (?4 OR start_time < ?2 OR (start_time = ?2 AND job_id < ?3))
                 ORDER BY start_time DESC, job_id DESC LIMIT ?5",
            )?;
            let rows = st.query_map(
                params![
                    namespace_id,
                    t,
                    id,
                    unbounded,
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(StoredBatchJob {
                        namespace_id: namespace_id.to_string(),
                        job_id: r.get(0)?,
                        start_time: r.get(1)?,
                        data: r.get(2)?,
                    })
                },
            )?;
            rows.collect()
        })
    }

    fn put_schedule(&self, s: &StoredSchedule, create: bool) -> Result<(), StoreError> {
        let s = s.clone();
        self.write(&s.schedule_id.clone(), move |tx| {
            let sql = if create {
                "INSERT INTO schedules (namespace_id, schedule_id, next_wake, data)
                 VALUES (?1, ?2, ?3, ?4)"
            } else {
                "INSERT INTO schedules (namespace_id, schedule_id, next_wake, data)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (namespace_id, schedule_id) DO UPDATE SET next_wake = ?3, data = ?4"
            };
            tx.execute(
                sql,
                params![s.namespace_id, s.schedule_id, s.next_wake, s.data],
            )
            .map(|_| ())
        })
    }

    fn get_schedule(
        &self,
        namespace_id: &str,
        schedule_id: &str,
    ) -> Result<Option<StoredSchedule>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT next_wake, data FROM schedules WHERE namespace_id = ?1 AND schedule_id = ?2",
                params![namespace_id, schedule_id],
                |r| {
                    Ok(StoredSchedule {
                        namespace_id: namespace_id.to_string(),
                        schedule_id: schedule_id.to_string(),
                        next_wake: r.get(0)?,
                        data: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn delete_schedule(&self, namespace_id: &str, schedule_id: &str) -> Result<bool, StoreError> {
        let (ns, id) = (namespace_id.to_string(), schedule_id.to_string());
        self.write("schedule", move |tx| {
            tx.execute(
                "DELETE FROM schedules WHERE namespace_id = ?1 AND schedule_id = ?2",
                params![ns, id],
            )
            .map(|n| n > 0)
        })
    }

    fn list_schedules(
        &self,
        namespace_id: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<Vec<StoredSchedule>, StoreError> {
        let unbounded = after.is_none();
        let after = after.unwrap_or_default();
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT schedule_id, next_wake, data FROM schedules WHERE namespace_id = ?1
                 AND (?2 OR schedule_id > ?3) ORDER BY schedule_id LIMIT ?4",
            )?;
            let rows = st.query_map(
                params![
                    namespace_id,
                    unbounded,
                    after,
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(StoredSchedule {
                        namespace_id: namespace_id.to_string(),
                        schedule_id: r.get(0)?,
                        next_wake: r.get(1)?,
                        data: r.get(2)?,
                    })
                },
            )?;
            rows.collect()
        })
    }

    fn load_schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT namespace_id, schedule_id, next_wake, data FROM schedules
                 WHERE next_wake IS NOT NULL",
            )?;
            let rows = st.query_map([], |r| {
                Ok(StoredSchedule {
                    namespace_id: r.get(0)?,
                    schedule_id: r.get(1)?,
                    next_wake: r.get(2)?,
                    data: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    fn put_deployment(&self, d: &StoredDeployment) -> Result<(), StoreError> {
        let d = d.clone();
        self.write("deployment", move |tx| {
            tx.execute(
                "INSERT INTO worker_deployments (namespace_id, name, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace_id, name) DO UPDATE SET data = ?3",
                params![d.namespace_id, d.name, d.data],
            )
            .map(|_| ())
        })
    }

    fn delete_deployment(&self, namespace_id: &str, name: &str) -> Result<bool, StoreError> {
        let (ns, name) = (namespace_id.to_string(), name.to_string());
        self.write("deployment", move |tx| {
            tx.execute(
                "DELETE FROM worker_deployments WHERE namespace_id = ?1 AND name = ?2",
                params![ns, name],
            )
            .map(|n| n > 0)
        })
    }

    fn load_deployments(&self) -> Result<Vec<StoredDeployment>, StoreError> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT namespace_id, name, data FROM worker_deployments ORDER BY 1, 2")?;
            let rows = st.query_map([], |r| {
                Ok(StoredDeployment {
                    namespace_id: r.get(0)?,
                    name: r.get(1)?,
                    data: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    fn cluster_id(&self, new_id: &str) -> Result<String, StoreError> {
        let new_id = new_id.to_string();
        self.write("cluster id", move |tx| {
            tx.execute(
                "INSERT INTO cluster_metadata (key, value) VALUES ('cluster_id', ?1)
                 ON CONFLICT (key) DO NOTHING",
                [new_id],
            )?;
            tx.query_row(
                "SELECT value FROM cluster_metadata WHERE key = 'cluster_id'",
                [],
                |r| r.get(0),
            )
        })
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }
}

/// Unix milliseconds now (one process uses an SQLite file, so its clock is the cluster's).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Cluster for SqliteStore {
    fn join(&self, m: &Member, lease_ms: i64) -> Result<(), StoreError> {
        let m = m.clone();
        self.write("member", move |tx| {
            let now = now_ms();
            let taken: Option<i64> = tx
                .query_row(
                    "INSERT INTO cluster_members (node, session, address, heartbeat)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (node) DO UPDATE SET session = ?2, address = ?3, heartbeat = ?4
                     WHERE cluster_members.session = ?2 OR cluster_members.heartbeat < ?4 - ?5
                     RETURNING NULL",
                    params![m.node, m.session, m.address, now, lease_ms],
                    |r| r.get(0),
                )
                .optional()?
                .map(|_: Option<i64>| None)
                .unwrap_or_else(|| Some(0));
            Ok(match taken {
                None => Ok(()),
                Some(_) => {
                    let beat: i64 = tx.query_row(
                        "SELECT heartbeat FROM cluster_members WHERE node = ?1",
                        [&m.node],
                        |r| r.get(0),
                    )?;
                    Err(StoreError::NodeNameTaken {
                        node: m.node.clone(),
                        age_ms: now - beat,
                    })
                }
            })
        })?
    }

    fn heartbeat(&self, m: &Member) -> Result<bool, StoreError> {
        let m = m.clone();
        self.write("member", move |tx| {
            tx.execute(
                "UPDATE cluster_members SET heartbeat = ?3 WHERE node = ?1 AND session = ?2",
                params![m.node, m.session, now_ms()],
            )
            .map(|n| n == 1)
        })
    }

    fn leave(&self, m: &Member) -> Result<(), StoreError> {
        let m = m.clone();
        self.write("member", move |tx| {
            tx.execute(
                "DELETE FROM cluster_members WHERE node = ?1 AND session = ?2",
                params![m.node, m.session],
            )
            .map(|_| ())
        })
    }

    fn members(&self, lease_ms: i64) -> Result<Vec<Member>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT node, session, address FROM cluster_members WHERE heartbeat >= ?1
                 ORDER BY node",
            )?;
            let rows = st.query_map([now_ms() - lease_ms], |r| {
                Ok(Member {
                    node: r.get(0)?,
                    session: r.get(1)?,
                    address: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    fn leader(&self) -> Result<Option<Leadership>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT node, session, address, lease_until - ?1 FROM cluster_leader WHERE id = 1",
                [now_ms()],
                |r| {
                    Ok(Leadership {
                        node: r.get(0)?,
                        session: r.get(1)?,
                        address: r.get(2)?,
                        expires_in_ms: r.get(3)?,
                    })
                },
            )
            .optional()
        })
    }

    fn try_lead(&self, m: &Member, lease_ms: i64) -> Result<bool, StoreError> {
        let m = m.clone();
        self.write("leader", move |tx| {
            let now = now_ms();
            tx.query_row(
                "INSERT INTO cluster_leader (id, node, session, address, lease_until)
                 VALUES (1, ?1, ?2, ?3, ?4 + ?5)
                 ON CONFLICT (id) DO UPDATE SET node = ?1, session = ?2, address = ?3,
                    lease_until = ?4 + ?5
                 RETURNING 1",
                params![m.node, m.session, m.address, now, lease_ms],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
    }

    fn exclusive(&self) -> bool {
        true
    }

    fn resign(&self, m: &Member) -> Result<(), StoreError> {
        let m = m.clone();
        self.write("leader", move |tx| {
            tx.execute(
                "UPDATE cluster_leader SET lease_until = 0 WHERE session = ?1",
                [m.session],
            )
            .map(|_| ())
        })
    }

    fn shard_count(&self, requested: Option<i32>) -> Result<i32, StoreError> {
        self.write("shard count", move |tx| {
            let stored: Option<String> = tx
                .query_row(
                    "SELECT value FROM cluster_metadata WHERE key = 'shard_count'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let stored = stored.and_then(|v| v.parse().ok());
            let n = match perdure_store::resolve_shard_count(stored, requested) {
                Ok(n) => n,
                Err(e) => return Ok(Err(e)),
            };
            if stored.is_some_and(|old| n > old) {
                // Runs change shards: fence every current owner before the new count is seen.
                tx.execute("UPDATE shards SET range_id = range_id + 1", [])?;
            }
            tx.execute(
                "INSERT INTO cluster_metadata (key, value) VALUES ('shard_count', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                [n.to_string()],
            )?;
            Ok(Ok(n))
        })?
    }
}
