//! The PostgreSQL backend of [`perdure_store::Store`], for teams that run several Perdure
//! processes on one database. One writer connection group-commits every batch queued while the
//! previous commit was running into one transaction (each batch in its own savepoint, its shard's
//! fencing token checked under a row lock, so a batch from a stale owner is refused and the
//! others land); a few reader connections serve reads (pipelined by `tokio-postgres`); one more
//! connection runs the small control-plane writes. The store owns a small tokio runtime for its
//! connections, so its blocking calls work from any thread. The schema is versioned by the SQL
//! files under `migrations/`, applied at open under an advisory lock; a database whose schema is
//! newer than this binary is refused.

mod statements;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use perdure_store::{
    Cluster, Dialect, ExecutionWrite, Leadership, ListedRow, Member, RunRef, SqlValue, Store,
    StoreError, StoredBatchJob, StoredDeployment, StoredExecution, StoredNamespace, StoredSchedule,
    VisibilityQuery, WakeKey, WriteBatch,
};
use tokio::sync::{Mutex, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, error::SqlState};

use statements::{ReadStatements, WriteStatements};

/// Versioned migrations, applied in order; `perdure_schema.version` records the last applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_cluster.sql"),
    include_str!("../migrations/0003_open_runs_by_key.sql"),
    include_str!("../migrations/0004_wake_times.sql"),
];

/// Largest number of batches folded into one transaction.
const MAX_GROUP: usize = 512;

/// Key of the advisory lock that serialises migrations between processes.
const MIGRATION_LOCK: i64 = 0x7065_7264_7572_6501;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database`, optionally with `?schema=name` to keep
    /// Perdure's tables in a schema of their own (created if missing), so several clusters (or
    /// test runs) can share one database.
    pub url: String,
    /// Reader connections (at least 1); the store opens two more (writer, control plane).
    pub pool_size: usize,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What the writer task is asked to do.
type Job = (WriteBatch, oneshot::Sender<Result<(), StoreError>>);

/// A reader connection and its prepared statements; replaced when the connection drops.
struct Reader {
    client: Client,
    st: ReadStatements,
}

/// PostgreSQL store handle.
pub struct PgStore {
    rt: Option<tokio::runtime::Runtime>,
    connector: Connector,
    readers: Arc<Vec<Mutex<Arc<Reader>>>>,
    next_reader: AtomicUsize,
    admin: Arc<Mutex<Client>>,
    writer: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Opens connections with the store's settings.
#[derive(Clone)]
struct Connector {
    config: tokio_postgres::Config,
}

impl Connector {
    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, conn) = self.config.connect(NoTls).await.map_err(connect_err)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!(%e, "PostgreSQL connection closed");
            }
        });
        Ok(client)
    }

    async fn reader(&self) -> Result<Arc<Reader>, StoreError> {
        let client = self.connect().await?;
        let st = ReadStatements::prepare(&client).await.map_err(pg)?;
        Ok(Arc::new(Reader { client, st }))
    }
}

/// A database error, or the database out of reach (retryable).
fn pg(e: tokio_postgres::Error) -> StoreError {
    if e.as_db_error().is_none() || e.is_closed() {
        StoreError::Unavailable(format!("PostgreSQL: {e}"))
    } else {
        StoreError::Backend(format!("PostgreSQL: {}", db_message(&e)))
    }
}

/// The server's own message (`password authentication failed for user "x"`), else the error.
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    }
}

fn connect_err(e: tokio_postgres::Error) -> StoreError {
    let msg = match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => {
            let mut m = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                m = format!("{m}: {s}");
                src = s.source();
            }
            m
        }
    };
    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {msg}"))
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A visibility query the database refused for its shape (too deep, too many parameters) is the
/// user's query at fault.
fn query_err(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c)
            if *c == SqlState::STATEMENT_TOO_COMPLEX
                || *c == SqlState::PROGRAM_LIMIT_EXCEEDED
                || *c == SqlState::TOO_MANY_ARGUMENTS
                || *c == SqlState::INVALID_TEXT_REPRESENTATION
                || *c == SqlState::NUMERIC_VALUE_OUT_OF_RANGE =>
        {
            StoreError::InvalidQuery(db_message(&e))
        }
        _ => pg(e),
    }
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS perdure_schema (version BIGINT NOT NULL)")
        .await
        .map_err(pg)?;
    let version: i64 = match tx
        .query_opt("SELECT version FROM perdure_schema", &[])
        .await
        .map_err(pg)?
    {
        Some(r) => r.get(0),
        None => {
            tx.execute("INSERT INTO perdure_schema (version) VALUES (0)", &[])
                .await
                .map_err(pg)?;
            0
        }
    };
    if version < 0 || version as usize > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "database schema version {version} is newer than this binary supports ({}); \
             run a newer perdure",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await.map_err(pg)?;
        tx.execute(
            "UPDATE perdure_schema SET version = $1",
            &[&((i + 1) as i64)],
        )
        .await
        .map_err(pg)?;
        tracing::info!(version = i + 1, "applied PostgreSQL schema migration");
    }
    tx.commit().await.map_err(pg)
}

/// Splits `schema=name` off a URL's query string.
fn split_schema(url: &str) -> Result<(String, Option<String>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut schema = None;
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.strip_prefix("schema=") {
            Some(name) => schema = Some(name.to_string()),
            None => rest.push(kv),
        }
    }
    if let Some(name) = &schema {
        let ok = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(StoreError::Backend(format!(
                "invalid PostgreSQL URL: schema {name:?} must be 1 to 63 lowercase letters, \
                 digits or underscores, not starting with a digit"
            )));
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, schema))
}

impl PgStore {
    /// Connects, applies pending migrations and starts the writer. Fails with a clear message if
    /// the database cannot be reached, refuses the credentials, or has a newer schema.
    pub fn open(opts: PgOptions) -> Result<PgStore, StoreError> {
        let (url, schema) = split_schema(&opts.url)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(s) = &schema {
            config.options(format!("-c search_path={s}"));
        }
        config.connect_timeout(opts.connect_timeout);
        config.application_name("perdure");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("perdure-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let connector = Connector { config };
        let c = connector.clone();
        let pool = opts.pool_size.max(1);
        let opened = block(&rt, async move {
            let mut admin = c.connect().await?;
            if let Some(s) = &schema {
                admin
                    .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))
                    .await
                    .map_err(pg)?;
            }
            migrate(&mut admin).await?;
            let mut readers = Vec::new();
            for _ in 0..pool {
                readers.push(Mutex::new(c.reader().await?));
            }
            let w = c.connect().await?;
            let st = WriteStatements::prepare(&w).await.map_err(pg)?;
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(writer_loop(c, w, st, rx));
            Ok((readers, admin, tx))
        });
        let (readers, admin, writer) = match opened {
            Ok(o) => o,
            Err(e) => {
                // Dropping a runtime may block: never do it on the caller's async thread.
                rt.shutdown_background();
                return Err(e);
            }
        };
        Ok(PgStore {
            rt: Some(rt),
            connector,
            readers: Arc::new(readers),
            next_reader: AtomicUsize::new(0),
            admin: Arc::new(Mutex::new(admin)),
            writer,
        })
    }

    fn handle(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("runtime lives as long as the store")
    }

    /// Runs `f` with a reader connection (reconnecting one that dropped) and waits for it.
    fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a Reader) -> futures::future::BoxFuture<'a, Result<R, StoreError>>
            + Send
            + 'static,
    {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let readers = self.readers.clone();
        let connector = self.connector.clone();
        block(self.handle(), async move {
            let reader = {
                let mut r = readers[i].lock().await;
                if r.client.is_closed() {
                    *r = connector.reader().await?;
                }
                r.clone()
            };
            f(&reader).await
        })
    }

    /// Runs `f` on the control-plane connection and waits for it.
    fn admin<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Client) -> futures::future::BoxFuture<'a, Result<R, StoreError>>
            + Send
            + 'static,
    {
        let admin = self.admin.clone();
        let connector = self.connector.clone();
        block(self.handle(), async move {
            let mut c = admin.lock().await;
            if c.is_closed() {
                *c = connector.connect().await?;
            }
            f(&mut c).await
        })
    }
}

/// Runs `fut` on the store's runtime and blocks the calling thread until it answers. Works from
/// any thread (the engine calls from blocking threads).
fn block<R: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = Result<R, StoreError>> + Send + 'static,
) -> Result<R, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "the PostgreSQL store stopped".into(),
        ))
    })
}

async fn writer_loop(
    connector: Connector,
    mut client: Client,
    mut st: WriteStatements,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Job>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if client.is_closed() {
            match connector.connect().await {
                Ok(c) => match WriteStatements::prepare(&c).await {
                    Ok(s) => {
                        client = c;
                        st = s;
                    }
                    Err(e) => {
                        fail_all(jobs, pg(e));
                        continue;
                    }
                },
                Err(e) => {
                    fail_all(jobs, e);
                    continue;
                }
            }
        }
        let started = std::time::Instant::now();
        let results = commit_group(&mut client, &st, &jobs).await;
        record_group_commit(jobs.len(), started.elapsed(), results.is_ok());
        match results {
            Ok(results) => {
                for ((_, reply), r) in jobs.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => fail_all(jobs, pg(e)),
        }
    }
}

fn fail_all(jobs: Vec<Job>, e: StoreError) {
    let msg = e.to_string();
    for (_, reply) in jobs {
        let _ = reply.send(Err(match &e {
            StoreError::Unavailable(_) => StoreError::Unavailable(msg.clone()),
            _ => StoreError::Backend(msg.clone()),
        }));
    }
}

/// Records one group commit: `persistence_requests`, `persistence_errors` and
/// `persistence_latency` (seconds) with `operation="CommitGroup"`, as Temporal names its
/// persistence metrics, and `perdure_commit_group_batches`, the batches folded into it; all
/// labelled `backend="postgres"` (the full list is in `perdure-server`'s `metrics` module).
/// A group failed before its transaction (no connection) is not a commit and is not recorded.
fn record_group_commit(batches: usize, elapsed: Duration, ok: bool) {
    let labels = [("operation", "CommitGroup"), ("backend", "postgres")];
    metrics::counter!("persistence_requests", &labels).increment(1);
    if !ok {
        metrics::counter!("persistence_errors", &labels).increment(1);
    }
    metrics::histogram!("persistence_latency", &labels).record(elapsed.as_secs_f64());
    metrics::histogram!("perdure_commit_group_batches", "backend" => "postgres")
        .record(batches as f64);
}

/// One transaction for the whole group; each batch in its own savepoint so a fenced-off batch
/// does not sink the others.
async fn commit_group(
    client: &mut Client,
    st: &WriteStatements,
    jobs: &[Job],
) -> Result<Vec<Result<(), StoreError>>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let mut out = Vec::with_capacity(jobs.len());
    for (batch, _) in jobs {
        tx.batch_execute("SAVEPOINT b").await?;
        match apply_batch(&tx, st, batch).await {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT b").await?;
                out.push(Ok(()));
            }
            Err(e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT b; RELEASE SAVEPOINT b")
                    .await?;
                out.push(Err(e));
            }
        }
    }
    tx.commit().await?;
    Ok(out)
}

async fn apply_batch(
    tx: &tokio_postgres::Transaction<'_>,
    st: &WriteStatements,
    b: &WriteBatch,
) -> Result<(), StoreError> {
    // FOR SHARE: a concurrent acquisition of this shard waits for our commit, so the token we
    // checked is still the shard's when the batch becomes visible.
    let range: Option<i64> = tx
        .query_opt(&st.fence, &[&(b.shard_id as i64)])
        .await
        .map_err(pg)?
        .map(|r| r.get(0));
    if range != Some(b.range_id) {
        return Err(StoreError::ShardOwnershipLost {
            shard_id: b.shard_id,
            expected: b.range_id,
        });
    }
    for e in &b.executions {
        write_execution(tx, st, b.shard_id, e).await.map_err(pg)?;
    }
    for r in &b.deletes {
        for s in &st.delete {
            tx.execute(s, &[&r.namespace_id, &r.run_id])
                .await
                .map_err(pg)?;
        }
    }
    Ok(())
}

async fn write_execution(
    tx: &tokio_postgres::Transaction<'_>,
    st: &WriteStatements,
    shard: i32,
    e: &ExecutionWrite,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &st.execution,
        &[
            &e.namespace_id,
            &e.run_id,
            &e.workflow_id,
            &(shard as i64),
            &(e.status as i64),
            &e.open,
            &e.state,
            &e.wake_at,
        ],
    )
    .await?;
    if e.set_current {
        tx.execute(&st.current, &[&e.namespace_id, &e.workflow_id, &e.run_id])
            .await?;
    }
    if !e.events.is_empty() {
        let ids: Vec<i64> = e.events.iter().map(|(id, _)| *id).collect();
        let data: Vec<&[u8]> = e.events.iter().map(|(_, d)| d.as_slice()).collect();
        tx.execute(&st.history, &[&e.namespace_id, &e.run_id, &ids, &data])
            .await?;
    }
    let Some(v) = &e.visibility else {
        return Ok(());
    };
    tx.execute(
        &st.visibility,
        &[
            &v.namespace_id,
            &v.run_id,
            &v.workflow_id,
            &v.workflow_type,
            &v.task_queue,
            &(v.status as i64),
            &v.start_time,
            &v.execution_time,
            &v.close_time,
            &v.execution_duration,
            &v.history_length,
            &v.history_size_bytes,
            &v.state_transition_count,
            &v.parent_workflow_id,
            &v.root_workflow_id,
            &v.search_attributes,
            &v.sort_key,
            &v.info,
        ],
    )
    .await?;
    Ok(())
}

/// A query parameter as `tokio-postgres` takes it.
fn to_sql(v: &SqlValue) -> Box<dyn ToSql + Sync + Send> {
    match v {
        SqlValue::Int(i) => Box::new(*i),
        SqlValue::Real(f) => Box::new(*f),
        SqlValue::Text(s) => Box::new(s.clone()),
        SqlValue::Bool(b) => Box::new(*b),
    }
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(p: &Params) -> Vec<&(dyn ToSql + Sync)> {
    p.iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl Store for PgStore {
    fn acquire_shards(&self, owner: &str, shards: &[i32]) -> Result<Vec<i64>, StoreError> {
        let owner = owner.to_string();
        let shards = shards.to_vec();
        self.admin(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.map_err(pg)?;
                let mut out = Vec::new();
                for s in shards.into_iter().map(i64::from) {
                    let r = tx
                        .query_one(
                            "INSERT INTO shards (shard_id, range_id, owner) VALUES ($1, 1, $2)
                             ON CONFLICT (shard_id) DO UPDATE
                             SET range_id = shards.range_id + 1, owner = $2
                             RETURNING range_id",
                            &[&s, &owner],
                        )
                        .await
                        .map_err(pg)?;
                    out.push(r.get(0));
                }
                tx.commit().await.map_err(pg)?;
                Ok(out)
            })
        })
    }

    fn commit(&self, batch: WriteBatch) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.writer.send((batch, tx));
        rx
    }

    fn list_namespaces(&self) -> Result<Vec<StoredNamespace>, StoreError> {
        self.read(|r| {
            Box::pin(async move {
                let rows = r
                    .client
                    .query("SELECT id, name, data FROM namespaces ORDER BY name", &[])
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .into_iter()
                    .map(|r| StoredNamespace {
                        id: r.get(0),
                        name: r.get(1),
                        data: r.get(2),
                    })
                    .collect())
            })
        })
    }

    fn put_namespace(&self, ns: &StoredNamespace, create: bool) -> Result<(), StoreError> {
        let ns = ns.clone();
        self.admin(move |c| {
            Box::pin(async move {
                let sql = if create {
                    "INSERT INTO namespaces (id, name, data) VALUES ($1, $2, $3)"
                } else {
                    "UPDATE namespaces SET data = $3, name = $2 WHERE id = $1"
                };
                match c.execute(sql, &[&ns.id, &ns.name, &ns.data]).await {
                    Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(ns.name)),
                    r => r.map(|_| ()).map_err(pg),
                }
            })
        })
    }

    fn waking_executions(
        &self,
        after: Option<&WakeKey>,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(WakeKey, StoredExecution)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (wake, ns, run) = after.map_or((i64::MIN, String::new(), String::new()), |a| {
            (a.wake_at, a.run.namespace_id.clone(), a.run.run_id.clone())
        });
        self.read(move |r| {
            Box::pin(async move {
                // Text compares in the "C" collation, as SQLite and the memory store order keys.
                let rows = r
                    .client
                    .query(
                        "SELECT wake_at, namespace_id, run_id, state FROM executions
                         WHERE open AND wake_at IS NOT NULL AND wake_at < $4
                           AND (wake_at, namespace_id COLLATE \"C\", run_id COLLATE \"C\")
                               > ($1, $2, $3)
                         ORDER BY wake_at, namespace_id COLLATE \"C\", run_id COLLATE \"C\"
                         LIMIT $5",
                        &[&wake, &ns, &run, &until, &limit],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        (
                            WakeKey {
                                wake_at: r.get(0),
                                run: RunRef {
                                    namespace_id: r.get(1),
                                    run_id: r.get(2),
                                },
                            },
                            StoredExecution { state: r.get(3) },
                        )
                    })
                    .collect())
            })
        })
    }

    fn get_execution(
        &self,
        namespace_id: &str,
        run_id: &str,
    ) -> Result<Option<StoredExecution>, StoreError> {
        let (ns, run) = (namespace_id.to_string(), run_id.to_string());
        self.read(move |r| {
            Box::pin(async move {
                Ok(r.client
                    .query_opt(&r.st.execution, &[&ns, &run])
                    .await
                    .map_err(pg)?
                    .map(|row| StoredExecution { state: row.get(0) }))
            })
        })
    }

    fn get_current_run(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (ns, wf) = (namespace_id.to_string(), workflow_id.to_string());
        self.read(move |r| {
            Box::pin(async move {
                Ok(r.client
                    .query_opt(&r.st.current, &[&ns, &wf])
                    .await
                    .map_err(pg)?
                    .map(|row| row.get(0)))
            })
        })
    }

    fn read_events(
        &self,
        namespace_id: &str,
        run_id: &str,
        first_event_id: i64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let (ns, run) = (namespace_id.to_string(), run_id.to_string());
        let limit = limit.min(i64::MAX as usize) as i64;
        self.read(move |r| {
            Box::pin(async move {
                let rows = r
                    .client
                    .query(&r.st.events, &[&ns, &run, &first_event_id, &limit])
                    .await
                    .map_err(pg)?;
                Ok(rows.into_iter().map(|row| row.get(0)).collect())
            })
        })
    }

    fn list_visibility(
        &self,
        namespace_id: &str,
        query: &VisibilityQuery,
        page_size: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<ListedRow>, StoreError> {
        let q = query.to_sql(Dialect::Postgres, 2);
        let mut params: Params = vec![Box::new(namespace_id.to_string())];
        params.extend(q.params.iter().map(to_sql));
        let mut sql = format!(
            "SELECT info, sort_key, run_id FROM visibility WHERE namespace_id = $1 AND ({})",
            q.where_sql
        );
        if let Some((k, r)) = after {
            let n = params.len();
            sql.push_str(&format!(
                " AND (sort_key < ${} OR (sort_key = ${} AND run_id < ${}))",
                n + 1,
                n + 1,
                n + 2
            ));
            params.push(Box::new(k));
            params.push(Box::new(r));
        }
        match &q.order_by {
            Some(o) => sql.push_str(&format!(" ORDER BY {o}, sort_key DESC, run_id DESC")),
            None => sql.push_str(" ORDER BY sort_key DESC, run_id DESC"),
        }
        sql.push_str(&format!(" LIMIT {}", page_size.max(1)));
        self.read(move |r| {
            Box::pin(async move {
                let rows = r
                    .client
                    .query(sql.as_str(), &refs(&params))
                    .await
                    .map_err(query_err)?;
                Ok(rows
                    .into_iter()
                    .map(|row| (row.get(0), (row.get(1), row.get(2))))
                    .collect())
            })
        })
    }

    fn count_visibility(
        &self,
        namespace_id: &str,
        query: &VisibilityQuery,
    ) -> Result<(i64, Vec<(i32, i64)>), StoreError> {
        let q = query.to_sql(Dialect::Postgres, 2);
        let mut params: Params = vec![Box::new(namespace_id.to_string())];
        params.extend(q.params.iter().map(to_sql));
        let base = format!(
            "FROM visibility WHERE namespace_id = $1 AND ({})",
            q.where_sql
        );
        let grouped = q.group_by_status;
        self.read(move |r| {
            Box::pin(async move {
                let p = refs(&params);
                let total: i64 = r
                    .client
                    .query_one(format!("SELECT COUNT(*) {base}").as_str(), &p)
                    .await
                    .map_err(query_err)?
                    .get(0);
                let mut groups = Vec::new();
                if grouped {
                    let rows = r
                        .client
                        .query(
                            format!(
                                "SELECT status, COUNT(*) {base} GROUP BY status ORDER BY status"
                            )
                            .as_str(),
                            &p,
                        )
                        .await
                        .map_err(query_err)?;
                    for row in rows {
                        groups.push((row.get::<_, i64>(0) as i32, row.get(1)));
                    }
                }
                Ok((total, groups))
            })
        })
    }

    fn put_batch_job(&self, job: &StoredBatchJob, create: bool) -> Result<(), StoreError> {
        let job = job.clone();
        self.admin(move |c| {
            Box::pin(async move {
                let sql = if create {
                    "INSERT INTO batch_jobs (namespace_id, job_id, start_time, data)
                     VALUES ($1, $2, $3, $4)"
                } else {
                    "INSERT INTO batch_jobs (namespace_id, job_id, start_time, data)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (namespace_id, job_id)
                     DO UPDATE SET start_time = $3, data = $4"
                };
                match c
                    .execute(
                        sql,
                        &[&job.namespace_id, &job.job_id, &job.start_time, &job.data],
                    )
                    .await
                {
                    Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(job.job_id)),
                    r => r.map(|_| ()).map_err(pg),
                }
            })
        })
    }

    fn get_batch_job(
        &self,
        namespace_id: &str,
        job_id: &str,
    ) -> Result<Option<StoredBatchJob>, StoreError> {
        let (ns, id) = (namespace_id.to_string(), job_id.to_string());
        self.read(move |r| {
            Box::pin(async move {
                Ok(r.client
                    .query_opt(
                        "SELECT start_time, data FROM batch_jobs
                         WHERE namespace_id = $1 AND job_id = $2",
                        &[&ns, &id],
                    )
                    .await
                    .map_err(pg)?
                    .map(|row| StoredBatchJob {
                        namespace_id: ns.clone(),
                        job_id: id.clone(),
                        start_time: row.get(0),
                        data: row.get(1),
                    }))
            })
        })
    }

    fn list_batch_jobs(
        &self,
        namespace_id: &str,
        limit: usize,
        after: Option<(i64, String)>,
    ) -> Result<Vec<StoredBatchJob>, StoreError> {
        let ns = namespace_id.to_string();
        let unbounded = after.is_none();
        let (t, id) = after.unwrap_or((i64::MAX, String::new()));
        let limit = limit.min(i64::MAX as usize) as i64;
        self.read(move |r| {
            Box::pin(async move {
                let rows = r
                    .client
                    .query(
                        "SELECT job_id, start_time, data FROM batch_jobs WHERE namespace_id = $1
                         AND ($4 OR start_time < $2 OR (start_time = $2 AND job_id < $3))
                         ORDER BY start_time DESC, job_id DESC LIMIT $5",
                        &[&ns, &t, &id, &unbounded, &limit],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .into_iter()
                    .map(|row| StoredBatchJob {
                        namespace_id: ns.clone(),
                        job_id: row.get(0),
                        start_time: row.get(1),
                        data: row.get(2),
                    })
                    .collect())
            })
        })
    }

    fn put_schedule(&self, s: &StoredSchedule, create: bool) -> Result<(), StoreError> {
        let s = s.clone();
        self.admin(move |c| {
            Box::pin(async move {
                let sql = if create {
                    "INSERT INTO schedules (namespace_id, schedule_id, next_wake, data)
                     VALUES ($1, $2, $3, $4)"
                } else {
                    "INSERT INTO schedules (namespace_id, schedule_id, next_wake, data)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (namespace_id, schedule_id)
                     DO UPDATE SET next_wake = $3, data = $4"
                };
                match c
                    .execute(
                        sql,
                        &[&s.namespace_id, &s.schedule_id, &s.next_wake, &s.data],
                    )
                    .await
                {
                    Err(e) if is_unique_violation(&e) => {
                        Err(StoreError::AlreadyExists(s.schedule_id))
                    }
                    r => r.map(|_| ()).map_err(pg),
                }
            })
        })
    }

    fn get_schedule(
        &self,
        namespace_id: &str,
        schedule_id: &str,
    ) -> Result<Option<StoredSchedule>, StoreError> {
        let (ns, id) = (namespace_id.to_string(), schedule_id.to_string());
        self.read(move |r| {
            Box::pin(async move {
                Ok(r.client
                    .query_opt(
                        "SELECT next_wake, data FROM schedules
                         WHERE namespace_id = $1 AND schedule_id = $2",
                        &[&ns, &id],
                    )
                    .await
                    .map_err(pg)?
                    .map(|row| StoredSchedule {
                        namespace_id: ns.clone(),
                        schedule_id: id.clone(),
                        next_wake: row.get(0),
                        data: row.get(1),
                    }))
            })
        })
    }

    fn delete_schedule(&self, namespace_id: &str, schedule_id: &str) -> Result<bool, StoreError> {
        let (ns, id) = (namespace_id.to_string(), schedule_id.to_string());
        self.admin(move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM schedules WHERE namespace_id = $1 AND schedule_id = $2",
                    &[&ns, &id],
                )
                .await
                .map(|n| n > 0)
                .map_err(pg)
            })
        })
    }

    fn list_schedules(
        &self,
        namespace_id: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<Vec<StoredSchedule>, StoreError> {
        let ns = namespace_id.to_string();
        let unbounded = after.is_none();
        let after = after.unwrap_or_default();
        let limit = limit.min(i64::MAX as usize) as i64;
        self.read(move |r| {
            Box::pin(async move {
                let rows = r
                    .client
                    .query(
                        "SELECT schedule_id, next_wake, data FROM schedules WHERE namespace_id = $1
                         AND ($2 OR schedule_id > $3) ORDER BY schedule_id LIMIT $4",
                        &[&ns, &unbounded, &after, &limit],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .into_iter()
                    .map(|row| StoredSchedule {
                        namespace_id: ns.clone(),
                        schedule_id: row.get(0),
                        next_wake: row.get(1),
                        data: row.get(2),
                    })
                    .collect())
            })
        })
    }

    fn load_schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        self.read(|r| {
            Box::pin(async move {
                let rows = r
                    .client
                    .query(
                        "SELECT namespace_id, schedule_id, next_wake, data FROM schedules
                         WHERE next_wake IS NOT NULL",
                        &[],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .into_iter()
                    .map(|row| StoredSchedule {
                        namespace_id: row.get(0),
                        schedule_id: row.get(1),
                        next_wake: row.get(2),
                        data: row.get(3),
                    })
                    .collect())
            })
        })
    }

    fn put_deployment(&self, d: &StoredDeployment) -> Result<(), StoreError> {
        let d = d.clone();
        self.admin(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO worker_deployments (namespace_id, name, data) VALUES ($1, $2, $3)
                     ON CONFLICT (namespace_id, name) DO UPDATE SET data = $3",
                    &[&d.namespace_id, &d.name, &d.data],
                )
                .await
                .map(|_| ())
                .map_err(pg)
            })
        })
    }

    fn delete_deployment(&self, namespace_id: &str, name: &str) -> Result<bool, StoreError> {
        let (ns, name) = (namespace_id.to_string(), name.to_string());
        self.admin(move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM worker_deployments WHERE namespace_id = $1 AND name = $2",
                    &[&ns, &name],
                )
                .await
                .map(|n| n > 0)
                .map_err(pg)
            })
        })
    }

    fn load_deployments(&self) -> Result<Vec<StoredDeployment>, StoreError> {
        self.read(|r| {
            Box::pin(async move {
                let rows = r
                    .client
                    .query(
                        "SELECT namespace_id, name, data FROM worker_deployments ORDER BY 1, 2",
                        &[],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .into_iter()
                    .map(|row| StoredDeployment {
                        namespace_id: row.get(0),
                        name: row.get(1),
                        data: row.get(2),
                    })
                    .collect())
            })
        })
    }

    fn cluster_id(&self, new_id: &str) -> Result<String, StoreError> {
        let new_id = new_id.to_string();
        self.admin(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO cluster_metadata (key, value) VALUES ('cluster_id', $1)
                     ON CONFLICT (key) DO NOTHING",
                    &[&new_id],
                )
                .await
                .map_err(pg)?;
                Ok(c.query_one(
                    "SELECT value FROM cluster_metadata WHERE key = 'cluster_id'",
                    &[],
                )
                .await
                .map_err(pg)?
                .get(0))
            })
        })
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}

#[doc(hidden)]
pub mod testing;

/// The database's clock in Unix milliseconds: every process of the cluster reads the same one.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

impl Cluster for PgStore {
    fn join(&self, m: &Member, lease_ms: i64) -> Result<(), StoreError> {
        let m = m.clone();
        self.admin(move |c| {
            Box::pin(async move {
                let sql = format!(
                    "INSERT INTO cluster_members (node, session, address, heartbeat)
                     VALUES ($1, $2, $3, {NOW_MS})
                     ON CONFLICT (node) DO UPDATE SET session = $2, address = $3,
                        heartbeat = {NOW_MS}
                     WHERE cluster_members.session = $2
                        OR cluster_members.heartbeat < {NOW_MS} - $4
                     RETURNING 1"
                );
                let joined = c
                    .query_opt(sql.as_str(), &[&m.node, &m.session, &m.address, &lease_ms])
                    .await
                    .map_err(pg)?;
                if joined.is_some() {
                    return Ok(());
                }
                let age: i64 = c
                    .query_one(
                        format!("SELECT {NOW_MS} - heartbeat FROM cluster_members WHERE node = $1")
                            .as_str(),
                        &[&m.node],
                    )
                    .await
                    .map_err(pg)?
                    .get(0);
                Err(StoreError::NodeNameTaken {
                    node: m.node,
                    age_ms: age,
                })
            })
        })
    }

    fn heartbeat(&self, m: &Member) -> Result<bool, StoreError> {
        let m = m.clone();
        self.admin(move |c| {
            Box::pin(async move {
                c.execute(
                    format!(
                        "UPDATE cluster_members SET heartbeat = {NOW_MS}
                         WHERE node = $1 AND session = $2"
                    )
                    .as_str(),
                    &[&m.node, &m.session],
                )
                .await
                .map(|n| n == 1)
                .map_err(pg)
            })
        })
    }

    fn leave(&self, m: &Member) -> Result<(), StoreError> {
        let m = m.clone();
        self.admin(move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM cluster_members WHERE node = $1 AND session = $2",
                    &[&m.node, &m.session],
                )
                .await
                .map(|_| ())
                .map_err(pg)
            })
        })
    }

    fn members(&self, lease_ms: i64) -> Result<Vec<Member>, StoreError> {
        self.read(move |r| {
            Box::pin(async move {
                let rows = r
                    .client
                    .query(
                        format!(
                            "SELECT node, session, address FROM cluster_members
                             WHERE heartbeat >= {NOW_MS} - $1 ORDER BY node"
                        )
                        .as_str(),
                        &[&lease_ms],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .into_iter()
                    .map(|row| Member {
                        node: row.get(0),
                        session: row.get(1),
                        address: row.get(2),
                    })
                    .collect())
            })
        })
    }

    fn leader(&self) -> Result<Option<Leadership>, StoreError> {
        self.read(|r| {
            Box::pin(async move {
                Ok(r.client
                    .query_opt(
                        format!(
                            "SELECT node, session, address, lease_until - {NOW_MS}
                             FROM cluster_leader WHERE id = 1"
                        )
                        .as_str(),
                        &[],
                    )
                    .await
                    .map_err(pg)?
                    .map(|row| Leadership {
                        node: row.get(0),
                        session: row.get(1),
                        address: row.get(2),
                        expires_in_ms: row.get(3),
                    }))
            })
        })
    }

    fn try_lead(&self, m: &Member, lease_ms: i64) -> Result<bool, StoreError> {
        let m = m.clone();
        self.admin(move |c| {
            Box::pin(async move {
                let sql = format!(
                    "INSERT INTO cluster_leader (id, node, session, address, lease_until)
                     VALUES (1, $1, $2, $3, {NOW_MS} + $4)
                     ON CONFLICT (id) DO UPDATE SET node = $1, session = $2, address = $3,
                        lease_until = {NOW_MS} + $4
                     WHERE cluster_leader.session = $2 OR cluster_leader.lease_until < {NOW_MS}
                     RETURNING 1"
                );
                Ok(
                    c.query_opt(sql.as_str(), &[&m.node, &m.session, &m.address, &lease_ms])
                        .await
                        .map_err(pg)?
                        .is_some(),
                )
            })
        })
    }

    fn resign(&self, m: &Member) -> Result<(), StoreError> {
        let m = m.clone();
        self.admin(move |c| {
            Box::pin(async move {
                c.execute(
                    "UPDATE cluster_leader SET lease_until = 0 WHERE session = $1",
                    &[&m.session],
                )
                .await
                .map(|_| ())
                .map_err(pg)
            })
        })
    }

    fn shard_count(&self, requested: Option<i32>) -> Result<i32, StoreError> {
        self.admin(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await.map_err(pg)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                    .await
                    .map_err(pg)?;
                let stored: Option<String> = tx
                    .query_opt(
                        "SELECT value FROM cluster_metadata WHERE key = 'shard_count'",
                        &[],
                    )
                    .await
                    .map_err(pg)?
                    .map(|r| r.get(0));
                let stored: Option<i32> = stored.and_then(|v| v.parse().ok());
                let n = perdure_store::resolve_shard_count(stored, requested)?;
                if stored.is_some_and(|old| n > old) {
                    // Runs change shards: fence every current owner before the new count is
                    // seen.
                    tx.execute("UPDATE shards SET range_id = range_id + 1", &[])
                        .await
                        .map_err(pg)?;
                }
                tx.execute(
                    "INSERT INTO cluster_metadata (key, value) VALUES ('shard_count', $1)
                     ON CONFLICT (key) DO UPDATE SET value = $1",
                    &[&n.to_string()],
                )
                .await
                .map_err(pg)?;
                tx.commit().await.map_err(pg)?;
                Ok(n)
            })
        })
    }
}
