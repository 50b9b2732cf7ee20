//! The engine shell: owns the in-memory runs, serialises transitions per run, commits each
//! transition through the store's group commit, and only then carries out its effects (queueing
//! tasks, arming timers, waking waiters, cross-run work).

mod activity_ops;
mod batch;
mod cluster;
mod control;
mod cross_run;
mod deployments;
mod history;
pub(crate) mod metrics;
mod namespaces;
mod queries;
mod queues;
mod reset;
mod schedules;
mod standalone;
mod start;
mod tasks;
mod visibility;
mod workers;

#[cfg(test)]
mod tests;

pub use namespaces::Namespace;
pub use queries::QueryOutcome;
pub use start::StartOutcome;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hashlink::LinkedHashMap;
use parking_lot::{Mutex, RwLock};
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::query::v1::{WorkflowQuery, WorkflowQueryResult};
use prost::Message;
use tokio::sync::{oneshot, watch};

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::info::visibility_row;
use crate::matching::{Matching, QueueKind, Route, RunKey, Task};
use crate::mutable::{Effect, TimerKind, Tx};
use crate::state::ExecutionState;
use crate::store::{ExecutionWrite, RunRef, SharedStore, WakeKey, WriteBatch};
use crate::timers::Timers;
use perdure_proto::api::enums::v1::{TimeoutType, WorkflowExecutionStatus as Status};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Executions are spread over this many shards.
    pub shard_count: i32,
    /// Name of this process as a shard owner.
    pub owner: String,
    /// Namespaces created at start-up if missing.
    pub namespaces: Vec<String>,
    /// Size and count limits on requests and runs.
    pub limits: crate::limits::Limits,
    /// Longest a history or update long poll is held.
    pub long_poll: Duration,
    /// Most runs kept in memory. Beyond it, idle runs leave memory least recently used first and
    /// are read from the store on their next use; their timers and queued tasks stay armed.
    pub run_cache_size: usize,
    /// Most workflow and activity tasks held in memory waiting for a poller: beyond it a task
    /// is left to the store (its run keeps wake time 0) and queued again once the backlog has
    /// drained to half of it.
    pub queued_task_limit: usize,
    /// This process's place in a cluster of processes on one database; `None` for a process on
    /// its own (it owns every shard and leads).
    pub cluster: Option<crate::cluster::Membership>,
}

/// Default of [`Config::run_cache_size`].
pub const DEFAULT_RUN_CACHE_SIZE: usize = 10_000;

/// Default of [`Config::queued_task_limit`].
pub const DEFAULT_QUEUED_TASK_LIMIT: usize = 100_000;

/// Open runs read per page by the start-up recovery and the wake loader.
const RECOVERY_PAGE: usize = 512;

/// How far ahead the engine keeps timers in memory: a timer due later is left to the store's
/// index of wake times, and its run is read again when the loader's window reaches it.
pub const WAKE_HORIZON: Duration = Duration::from_secs(300);

/// How often the wake loader moves its window forward (and reads the runs that entered it).
const WAKE_LOAD_EVERY: Duration = Duration::from_secs(60);

impl Default for Config {
    fn default() -> Self {
        Config {
            shard_count: 16,
            owner: format!("perdure-{}", std::process::id()),
            namespaces: vec!["default".into()],
            limits: Default::default(),
            long_poll: Duration::from_secs(20),
            run_cache_size: DEFAULT_RUN_CACHE_SIZE,
            queued_task_limit: DEFAULT_QUEUED_TASK_LIMIT,
            cluster: None,
        }
    }
}

/// A cheap, cloneable handle to the engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: SharedStore,
    pub(crate) clock: SharedClock,
    pub(crate) matching: Matching,
    pub(crate) timers: Timers,
    pub(crate) config: Config,
    pub(crate) namespaces: RwLock<namespaces::Registry>,
    /// Runs held in memory, least recently used first: runs in use, and idle open runs up to
    /// `config.run_cache_size`.
    runs: Mutex<LinkedHashMap<RunKey, Arc<Entry>>>,
    /// Cache of the current run per (namespace id, workflow id), for runs held in memory.
    current: Mutex<HashMap<(String, String), String>>,
    /// Runs that left memory since start-up (evicted from the cache, discarded after a failed
    /// transition, deleted); a closed run stays until the cache evicts it.
    evictions: AtomicU64,
    /// Open runs read by the start-up recovery so far, and whether it has finished.
    recovery: RecoveryProgress,
    /// Serialises start/reuse decisions per workflow id.
    id_locks: Vec<tokio::sync::Mutex<()>>,
    /// Fencing token per shard; 0 for a shard another process owns.
    range_ids: Vec<i64>,
    next_query: AtomicU64,
    /// Identity of this cluster, generated once per database and kept in it.
    cluster_id: String,
    /// Batch operation jobs running in this process.
    batch_jobs: batch::RunningJobs,
    /// The latest heartbeat of each worker.
    workers: workers::Registry,
    /// Schedules' wake times and locks.
    schedules: schedules::Schedules,
    /// Worker deployments and their versions (worker versioning).
    deployments: deployments::Registry,
    /// Bumped after every commit that starts or closes a run (what a workflow list shows).
    list_changes: tokio::sync::watch::Sender<u64>,
    /// A commit was refused because another engine took its shard since this one started.
    fenced: std::sync::atomic::AtomicBool,
    /// Milliseconds since the Unix epoch up to which this engine holds every timer of its runs
    /// in memory; later ones wait in the store's index of wake times.
    loaded_until: std::sync::atomic::AtomicI64,
}

/// How far the start-up recovery got.
struct RecoveryProgress {
    runs: AtomicU64,
    done: watch::Sender<bool>,
}

impl Default for RecoveryProgress {
    fn default() -> Self {
        RecoveryProgress {
            runs: AtomicU64::new(0),
            done: watch::channel(false).0,
        }
    }
}

/// One run in memory.
pub(crate) struct Entry {
    pub(crate) data: tokio::sync::Mutex<RunData>,
    /// Bumped after every commit; long polls wait on it.
    pub(crate) version: watch::Sender<u64>,
}

pub(crate) struct RunData {
    pub(crate) state: ExecutionState,
    pub(crate) extra: RunExtra,
}

/// Per-run in-memory state that is not persisted.
#[derive(Default)]
pub(crate) struct RunExtra {
    /// Persisted history, loaded on first use.
    pub(crate) history: Option<Vec<HistoryEvent>>,
    pub(crate) queries: HashMap<u64, PendingQuery>,
    /// The entry was dropped from the map; re-fetch it.
    pub(crate) evicted: bool,
    /// The visibility row this process last wrote for the run, if any.
    pub(crate) visibility: Option<crate::store::VisibilityRow>,
}

pub(crate) struct PendingQuery {
    pub(crate) query: WorkflowQuery,
    pub(crate) tx: Option<oneshot::Sender<QueryOutcome>>,
    /// Dispatch seq of the workflow task it rides on.
    pub(crate) attached_to: Option<i64>,
    pub(crate) dispatched: bool,
}

impl PendingQuery {
    pub(crate) fn resolve(&mut self, r: QueryOutcome) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(r);
        }
    }
}

/// Answer of an attached query, as a query outcome.
pub(crate) fn outcome_of(r: WorkflowQueryResult) -> QueryOutcome {
    use perdure_proto::api::enums::v1::QueryResultType;
    if r.result_type == QueryResultType::Answered as i32 {
        QueryOutcome::Answered(r.answer)
    } else {
        QueryOutcome::Failed {
            message: r.error_message,
            failure: r.failure.map(Box::new),
        }
    }
}

fn hash_str(parts: &[&str]) -> u64 {
    // FNV-1a: stable across processes, so shard ids are stable on disk.
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

impl Engine {
    /// Acquires its shards (every shard for a process on its own), loads namespaces, starts the
    /// timer loop, and re-arms its open runs in the background.
    pub async fn start(store: SharedStore, clock: SharedClock, config: Config) -> Result<Engine> {
        let (timers, mut fired) = Timers::start(clock.clone());
        let owner = config.owner.clone();
        let shards = config.shard_count;
        let owned: Vec<i32> = match &config.cluster {
            Some(c) => c.topology.owned_shards(),
            None => (0..shards).collect(),
        };
        let s = store.clone();
        let mine = owned.clone();
        let acquired = tokio::task::spawn_blocking(move || s.acquire_shards(&owner, &mine))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        // The count may have been raised meanwhile (which fenced every owner): shards of the old
        // count taken after that must not serve, or a run could be written under two shard ids.
        let s = store.clone();
        let now = tokio::task::spawn_blocking(move || s.shard_count(None))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        if now != shards {
            return Err(Error::Unavailable(format!(
                "the shard count changed from {shards} to {now} while this engine started"
            )));
        }
        let mut range_ids = vec![0; shards.max(0) as usize];
        for (s, r) in owned.iter().zip(acquired) {
            range_ids[*s as usize] = r;
        }
        metrics::record_owned_shards(
            owned.len(),
            shards,
            config
                .cluster
                .as_ref()
                .is_none_or(|c| c.topology.is_leader()),
        );
        let s = store.clone();
        let fresh = uuid::Uuid::new_v4().to_string();
        let cluster_id = tokio::task::spawn_blocking(move || s.cluster_id(&fresh))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let matching = Matching::new(clock.clone());
        matching.set_queued_limit(config.queued_task_limit);
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                clock,
                matching,
                timers,
                namespaces: RwLock::new(Default::default()),
                runs: Mutex::new(LinkedHashMap::new()),
                current: Mutex::new(HashMap::new()),
                evictions: AtomicU64::new(0),
                recovery: Default::default(),
                id_locks: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
                range_ids,
                next_query: AtomicU64::new(1),
                cluster_id,
                batch_jobs: Default::default(),
                workers: Default::default(),
                schedules: Default::default(),
                deployments: Default::default(),
                config,
                list_changes: tokio::sync::watch::Sender::new(0),
                fenced: Default::default(),
                loaded_until: Default::default(),
            }),
        };
        engine.load_namespaces().await?;
        engine.load_deployments().await?;
        if engine.is_leader() {
            engine.start_scheduler().await?;
        } else {
            // Namespaces change on the leader: follow them, and re-read the worker deployments
            // now and then too (the leader also tells every member after each change).
            let me = engine.clone();
            tokio::spawn(async move {
                for tick in 1u64.. {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if let Err(e) = me.reload_namespaces().await {
                        tracing::debug!(%e, "reloading namespaces failed");
                    }
                    if tick % 10 == 0
                        && let Err(e) = me.reload_deployments().await
                    {
                        tracing::debug!(%e, "reloading worker deployments failed");
                    }
                }
            });
        }
        // Open runs are re-armed in the background, a page at a time: the engine serves at once
        // however many runs are open, and due timers and tasks are dispatched as pages arrive.
        let me = engine.clone();
        tokio::spawn(async move { me.recover().await });
        let me = engine.clone();
        tokio::spawn(async move { me.refill_spilled_tasks().await });
        // Tasks the other members pushed to this process's queues before it (re)started are
        // gone with its former engine: they push them again.
        let me = engine.clone();
        tokio::spawn(async move { me.ask_members_to_rearm().await });
        let me = engine.clone();
        tokio::spawn(async move {
            while let Some((run, kind)) = fired.recv().await {
                let e = me.clone();
                tokio::spawn(async move {
                    if let Err(err) = e.fire_timer(run, kind.clone()).await {
                        tracing::debug!(?kind, %err, "timer handling failed");
                    }
                });
            }
        });
        Ok(engine)
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub(crate) fn shard_of(&self, namespace_id: &str, workflow_id: &str) -> i32 {
        (hash_str(&[namespace_id, workflow_id]) % self.inner.range_ids.len() as u64) as i32
    }

    pub(crate) fn id_lock(&self, namespace_id: &str, workflow_id: &str) -> &tokio::sync::Mutex<()> {
        let i = hash_str(&[namespace_id, workflow_id]) as usize % self.inner.id_locks.len();
        &self.inner.id_locks[i]
    }

    pub(crate) fn next_query_id(&self) -> u64 {
        self.inner.next_query.fetch_add(1, Ordering::Relaxed)
    }

    /// Re-creates the queue entries and timers of the runs that are due within the wake horizon
    /// (or have something waiting to be dispatched), reading them a page at a time in wake
    /// order; then moves the window forward every minute and reads the runs entering it. A
    /// run's state is only read here, not kept: what it re-arms is a hint that is checked
    /// against the run's state when it fires, so a page that is already stale does no harm. Runs
    /// that wait only on a signal, or on a timer beyond the window, are not read at all.
    async fn recover(&self) {
        let until = ms(self.inner.clock.now() + WAKE_HORIZON);
        self.inner.loaded_until.store(until, Ordering::SeqCst);
        self.rearm_pass(Some(wake_key(i64::MIN)), until, Pass::Startup)
            .await;
        self.inner.recovery.done.send_replace(true);
        let mut next = self.inner.clock.now() + WAKE_LOAD_EVERY;
        loop {
            // Due before the pass starts, so a slow pass does not delay the next one.
            self.inner.clock.sleep_until(next).await;
            let now = self.inner.clock.now();
            next = now + WAKE_LOAD_EVERY;
            let from = self.inner.loaded_until.load(Ordering::SeqCst);
            let until = ms(now + WAKE_HORIZON).max(from);
            // Moved first: a timer a transition arms from now on is kept in memory, and one it
            // left to the store is committed already, so this pass reads it.
            self.inner.loaded_until.store(until, Ordering::SeqCst);
            self.rearm_pass(Some(wake_key(from)), until, Pass::Timers)
                .await;
        }
    }

    /// Queues again the tasks the matching dropped at its queued-task limit, once the backlog
    /// has drained to half of it: the runs with a task waiting (wake time up to now) are read in
    /// wake order from where the last such pass stopped, wrapping around, and the pass stops
    /// again as soon as the limit is reached. A task queued twice is only a hint: the second
    /// copy is dropped when polled.
    async fn refill_spilled_tasks(&self) {
        let mut cursor: Option<WakeKey> = None;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let m = &self.inner.matching;
            if !m.spilled() || m.queued_len() > m.queued_limit() / 2 || !m.take_spilled() {
                continue;
            }
            // In a cluster the dropped task may belong to another member's run.
            if self.topology().is_some_and(|t| t.members.len() > 1) {
                let me = self.clone();
                tokio::spawn(async move { me.ask_members_to_rearm().await });
            }
            let from = cursor.take();
            let wrapped = from.is_some();
            let until = ms(self.inner.clock.now()) + 1;
            cursor = self
                .rearm_pass(
                    Some(from.unwrap_or(wake_key(i64::MIN))),
                    until,
                    Pass::Refill,
                )
                .await;
            if cursor.is_none() && wrapped && !m.spilled() {
                // Reached the end from the middle: the runs before the start are still due.
                m.mark_spilled();
            }
        }
    }

    /// Whether a timer due at `at` is kept in memory now (else the wake loader reads its run
    /// when its window reaches it).
    fn keeps_timer(&self, at: std::time::SystemTime) -> bool {
        ms(at) < self.inner.loaded_until.load(Ordering::SeqCst)
    }

    /// Queues again the tasks of this engine's runs that have one waiting (no timers, no
    /// changes): after another member's engine (re)started, so the tasks it held for its queues
    /// are pushed again.
    pub(crate) async fn requeue_open_tasks(&self) {
        // Anything waiting to be dispatched has wake time 0 (and a retry whose time came, its
        // attempt's scheduled time): read up to now.
        let now = ms(self.inner.clock.now()) + 1;
        self.rearm_pass(Some(wake_key(i64::MIN)), now, Pass::Tasks)
            .await;
    }

    /// Re-arms the runs of this engine's shards whose wake time is before `until`, from just
    /// after `after` in wake order. Returns where it stopped when a [`Pass::Refill`] reached the
    /// queued-task limit, `None` when it read to the end.
    async fn rearm_pass(
        &self,
        mut after: Option<WakeKey>,
        until: i64,
        pass: Pass,
    ) -> Option<WakeKey> {
        let began = Instant::now();
        let mut rearmed = 0u64;
        let mut backoff = Duration::from_millis(100);
        let tasks_only = matches!(pass, Pass::Tasks | Pass::Refill);
        loop {
            let s = self.inner.store.clone();
            let from = after.clone();
            let page = tokio::task::spawn_blocking(move || {
                s.waking_executions(from.as_ref(), until, RECOVERY_PAGE)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))
            .and_then(|r| r.map_err(Error::from));
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(%e, "reading the runs due failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let full = page.len() == RECOVERY_PAGE;
            for (k, row) in page {
                let key = RunKey {
                    namespace_id: k.run.namespace_id.clone(),
                    run_id: k.run.run_id.clone(),
                };
                after = Some(k);
                match ExecutionState::decode(row.state.as_slice()) {
                    Ok(state)
                        if !self
                            .owns_shard(self.shard_of(&state.namespace_id, &state.workflow_id)) => {
                    }
                    Ok(state) => self.rearm(key, state, tasks_only).await,
                    Err(e) => {
                        tracing::error!(run_id = %key.run_id, %e, "corrupt execution state; the run is not re-armed")
                    }
                }
                rearmed += 1;
                if matches!(pass, Pass::Startup) {
                    self.inner.recovery.runs.fetch_add(1, Ordering::Relaxed);
                }
                if matches!(pass, Pass::Refill) && self.inner.matching.spilled() {
                    return after;
                }
            }
            if !full {
                break;
            }
        }
        if matches!(pass, Pass::Startup) || rearmed > 0 {
            tracing::info!(
                runs = rearmed,
                elapsed_ms = began.elapsed().as_millis() as u64,
                startup = matches!(pass, Pass::Startup),
                "re-armed the workflow runs due"
            );
        }
        None
    }

    /// Arms the timers and queues the tasks of one run read by the recovery.
    async fn rearm(&self, key: RunKey, mut state: ExecutionState, tasks_only: bool) {
        let rearm = |tx: &mut Tx| {
            if tx.is_running() {
                tx.rearm_all();
            } else if tx.state.parent.is_some() && !tx.state.parent_notified {
                tx.effects.push(Effect::NotifyParent);
            }
        };
        let mut tx = Tx::with_limits(
            &mut state,
            self.inner.clock.now(),
            &self.inner.config.limits,
        );
        rearm(&mut tx);
        if tasks_only {
            // Only the hints: timers and changes are this engine's own recovery's business.
            let effects: Vec<Effect> = std::mem::take(&mut tx.effects)
                .into_iter()
                .filter(|e| {
                    matches!(
                        e,
                        Effect::DispatchWorkflowTask | Effect::DispatchActivity { .. }
                    )
                })
                .collect();
            drop(tx);
            self.run_effects(&key, &state, &mut RunExtra::default(), effects);
            return;
        }
        if tx.changed || !tx.events.is_empty() {
            // Re-arming changes this run (a sticky task back to its normal queue): that is a
            // transition like any other, on the run's latest state.
            drop(tx);
            if let Err(e) = self
                .mutate(key, move |tx, _| {
                    rearm(tx);
                    Ok(())
                })
                .await
            {
                tracing::warn!(%e, "re-arming a run failed");
            }
            return;
        }
        let effects = std::mem::take(&mut tx.effects);
        drop(tx);
        self.run_effects(&key, &state, &mut RunExtra::default(), effects);
    }

    /// How far the start-up recovery got: open runs re-armed so far, and whether it finished.
    pub fn recovery_progress(&self) -> (u64, bool) {
        (
            self.inner.recovery.runs.load(Ordering::Relaxed),
            *self.inner.recovery.done.borrow(),
        )
    }

    /// Waits until the start-up recovery has re-armed every open run.
    pub async fn recovered(&self) {
        let mut rx = self.inner.recovery.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    /// Tasks queued in memory, in all queues.
    pub fn queued_tasks(&self) -> usize {
        self.inner.matching.queued_len()
    }

    /// Number of runs held in memory.
    pub fn cached_runs(&self) -> usize {
        self.inner.runs.lock().len()
    }

    /// Runs that left memory since start-up.
    pub fn evicted_runs(&self) -> u64 {
        self.inner.evictions.load(Ordering::Relaxed)
    }

    fn insert_entry(
        &self,
        key: RunKey,
        state: ExecutionState,
        history: Option<Vec<HistoryEvent>>,
    ) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            data: tokio::sync::Mutex::new(RunData {
                state,
                extra: RunExtra {
                    history,
                    ..Default::default()
                },
            }),
            version: watch::channel(0).0,
        });
        let evicted = {
            let mut runs = self.inner.runs.lock();
            if let Some(old) = runs.insert(key, entry.clone()) {
                // Whoever holds the replaced entry must fetch the new one.
                if let Ok(mut d) = old.data.try_lock() {
                    d.extra.evicted = true;
                }
            }
            self.shrink(&mut runs)
        };
        self.forget_current(evicted);
        entry
    }

    /// Evicts idle runs, least recently used first, until at most `run_cache_size` are held (or
    /// every run left is in use). A run is idle when nothing but the map holds its entry (no
    /// transition, long poll or reader has it) and no query waits on it. Returns the
    /// `(namespace id, workflow id, run id)` of each evicted run.
    fn shrink(
        &self,
        runs: &mut LinkedHashMap<RunKey, Arc<Entry>>,
    ) -> Vec<(String, String, String)> {
        let cap = self.inner.config.run_cache_size;
        let mut evicted = Vec::new();
        // Runs in use go to the back; looking at each at most once bounds the work.
        let mut budget = runs.len().saturating_sub(cap);
        if budget > 0 {
            budget += 64;
        }
        while runs.len() > cap && budget > 0 {
            budget -= 1;
            let Some((key, entry)) = runs.pop_front() else {
                break;
            };
            let idle = Arc::strong_count(&entry) == 1
                && entry.data.try_lock().is_ok_and(|mut d| {
                    if d.extra.queries.is_empty() {
                        d.extra.evicted = true;
                        evicted.push((
                            d.state.namespace_id.clone(),
                            d.state.workflow_id.clone(),
                            d.state.run_id.clone(),
                        ));
                        true
                    } else {
                        false
                    }
                });
            if idle {
                self.inner.evictions.fetch_add(1, Ordering::Relaxed);
            } else {
                runs.insert(key, entry);
            }
        }
        metrics::record_run_cache(runs.len(), evicted.len());
        evicted
    }

    /// Drops the current-run cache entries of runs that left memory (the store answers them).
    fn forget_current(&self, runs: Vec<(String, String, String)>) {
        if runs.is_empty() {
            return;
        }
        let mut current = self.inner.current.lock();
        for (ns, wf, run) in runs {
            let k = (ns, wf);
            if current.get(&k) == Some(&run) {
                current.remove(&k);
            }
        }
    }

    /// Takes a run out of memory; the next use reads it from the store.
    pub(crate) fn remove_entry(&self, key: &RunKey) -> Option<Arc<Entry>> {
        let mut runs = self.inner.runs.lock();
        let e = runs.remove(key);
        if e.is_some() {
            self.inner.evictions.fetch_add(1, Ordering::Relaxed);
            metrics::record_run_cache(runs.len(), 0);
        }
        e
    }

    /// The in-memory entry of a run, loading it from the store if needed.
    pub(crate) async fn entry(&self, key: &RunKey) -> Result<Arc<Entry>> {
        if let Some(e) = self.inner.runs.lock().to_back(key) {
            return Ok(e.clone());
        }
        let s = self.inner.store.clone();
        let (ns, run) = (key.namespace_id.clone(), key.run_id.clone());
        let row = tokio::task::spawn_blocking(move || s.get_execution(&ns, &run))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let Some(row) = row else {
            return Err(Error::NotFound(format!(
                "workflow execution not found for run ID: {}",
                key.run_id
            )));
        };
        let state = ExecutionState::decode(row.state.as_slice())
            .map_err(|e| Error::Internal(format!("corrupt execution state: {e}")))?;
        if !self.owns_shard(self.shard_of(&state.namespace_id, &state.workflow_id)) {
            // Another process owns the run: read it, never keep it (that process changes it).
            return Ok(Arc::new(Entry {
                data: tokio::sync::Mutex::new(RunData {
                    state,
                    extra: Default::default(),
                }),
                version: watch::channel(0).0,
            }));
        }
        let mut runs = self.inner.runs.lock();
        if let Some(e) = runs.to_back(key) {
            return Ok(e.clone());
        }
        drop(runs);
        Ok(self.insert_entry(key.clone(), state, None))
    }

    /// Runs `f` as one transition of the run and commits it. The work runs on its own task, so a
    /// caller that goes away (a cancelled RPC) can never leave a half-applied transition.
    pub(crate) async fn mutate<R, F>(&self, key: RunKey, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx, &mut RunExtra) -> Result<R> + Send + 'static,
    {
        let me = self.clone();
        tokio::spawn(async move { me.mutate_inner(key, f).await })
            .await
            .map_err(|e| Error::Internal(format!("transition task failed: {e}")))?
    }

    async fn mutate_inner<R, F>(&self, key: RunKey, f: F) -> Result<R>
    where
        F: FnOnce(&mut Tx, &mut RunExtra) -> Result<R>,
    {
        loop {
            let entry = self.entry(&key).await?;
            let mut data = entry.data.lock().await;
            if data.extra.evicted {
                continue;
            }
            return self.transition(&key, &entry, &mut data, f).await;
        }
    }

    /// Applies `f` to a locked run, commits, and runs the effects.
    pub(crate) async fn transition<R, F>(
        &self,
        key: &RunKey,
        entry: &Arc<Entry>,
        data: &mut RunData,
        f: F,
    ) -> Result<R>
    where
        F: FnOnce(&mut Tx, &mut RunExtra) -> Result<R>,
    {
        let now = self.inner.clock.now();
        let RunData { state, extra } = data;
        let mut tx = Tx::with_limits(state, now, &self.inner.config.limits);
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut tx, extra)));
        let out = match applied {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                if tx.changed || tx.new_run.is_some() || !tx.events.is_empty() {
                    // Refused half-way: what the transition already changed must not be kept.
                    drop(tx);
                    self.discard(key, data);
                }
                return Err(e);
            }
            Err(panic) => {
                drop(tx);
                self.discard(key, data);
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(run_id = %key.run_id, panic = %what, "a transition panicked; the run is reloaded from the store");
                return Err(Error::Internal(format!(
                    "internal error while applying the request: {what}"
                )));
            }
        };
        let Tx {
            events,
            effects,
            new_run,
            changed,
            ..
        } = tx;
        let mut new_run_visibility = None;
        if changed || new_run.is_some() {
            data.state.state_transition_count += 1;
            let mut write = execution_write(&data.state, &events, false);
            if write.visibility.is_some() && write.visibility == data.extra.visibility {
                // A running workflow's list entry changes only with its search attributes,
                // memo or status (as Temporal's): most transitions leave it as it was.
                write.visibility = None;
            } else {
                data.extra.visibility = write.visibility.clone();
            }
            let mut writes = vec![write];
            if let Some(nr) = &new_run {
                writes.push(execution_write(&nr.state, &nr.events, true));
            }
            new_run_visibility = writes.get(1).and_then(|w| w.visibility.clone());
            if let Err(e) = self.commit(&data.state, writes).await {
                // The in-memory state may be ahead of the store: drop it and reload next time.
                self.discard(key, data);
                return Err(e);
            }
            if let Some(h) = data.extra.history.as_mut() {
                h.extend(events.iter().cloned());
            }
        }
        entry.version.send_modify(|v| *v += 1);
        let closed = data.state.status != Status::Running as i32;
        self.run_effects(key, &data.state, &mut data.extra, effects);
        self.dispatch_queries(key, &data.state, &mut data.extra);
        if let Some(nr) = new_run {
            self.register_new_run(nr, new_run_visibility).await;
        }
        if closed {
            // A closed run is often read right away (its result, a last query), so it stays in
            // memory, but it is the first to go when the cache is full.
            self.inner.runs.lock().to_front(key);
        }
        Ok(out)
    }

    /// Drops a run's in-memory state (it may be ahead of the store); the next use reloads it.
    fn discard(&self, key: &RunKey, data: &mut RunData) {
        data.extra.evicted = true;
        self.remove_entry(key);
    }

    async fn commit(&self, state: &ExecutionState, executions: Vec<ExecutionWrite>) -> Result<()> {
        let shard_id = self.shard_of(&state.namespace_id, &state.workflow_id);
        let listed = executions
            .iter()
            .any(|w| w.set_current || w.status != Status::Running as i32);
        let batch = WriteBatch::writes(shard_id, self.range_id(shard_id)?, executions);
        self.inner
            .store
            .commit(batch)
            .await
            .map_err(|_| Error::Unavailable("storage writer stopped".into()))?
            .inspect_err(|e| self.refused(e))?;
        if listed {
            self.inner
                .list_changes
                .send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }

    /// Counts a refused commit; one refused for lost ownership marks the engine fenced.
    fn refused(&self, e: &crate::store::StoreError) {
        metrics::commit_refused(e);
        if matches!(e, crate::store::StoreError::ShardOwnershipLost { .. }) {
            self.inner.fenced.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a commit was refused because another engine took one of this engine's shards
    /// since it started: its view is stale and it must start again.
    pub fn fenced(&self) -> bool {
        self.inner.fenced.load(Ordering::Relaxed)
    }

    /// The fencing token of a shard this engine owns; UNAVAILABLE for another's.
    fn range_id(&self, shard: i32) -> Result<i64> {
        match self.inner.range_ids.get(shard as usize) {
            Some(r) if *r != 0 => Ok(*r),
            _ => Err(Error::Unavailable(format!(
                "shard {shard} is owned by another Perdure process; retry"
            ))),
        }
    }

    /// Deletes a run with its history and visibility row, in a batch fenced by its shard like
    /// every other write.
    pub(crate) async fn delete_run(&self, key: &RunKey, workflow_id: &str) -> Result<()> {
        let shard_id = self.shard_of(&key.namespace_id, workflow_id);
        let mut batch = WriteBatch::writes(shard_id, self.range_id(shard_id)?, vec![]);
        batch.deletes.push(crate::store::RunRef {
            namespace_id: key.namespace_id.clone(),
            run_id: key.run_id.clone(),
        });
        self.inner
            .store
            .commit(batch)
            .await
            .map_err(|_| Error::Unavailable("storage writer stopped".into()))?
            .inspect_err(|e| self.refused(e))?;
        self.inner
            .list_changes
            .send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// A counter bumped after every commit that starts or closes a run, for live workflow
    /// lists: a watcher re-reads its page when it changes instead of polling.
    pub fn list_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.list_changes.subscribe()
    }

    /// Commits a brand-new run (start, child start) and registers it; callers run it on a task
    /// of its own (see `start_with_policies`), so a cancelled RPC cannot stop it half-way.
    pub(crate) async fn create_run(&self, run: crate::mutable::NewRun) -> Result<()> {
        let write = execution_write(&run.state, &run.events, true);
        let visibility = write.visibility.clone();
        self.commit(&run.state, vec![write]).await?;
        self.register_new_run(run, visibility).await;
        Ok(())
    }

    /// After its commit: makes a new run (started, retried, continued as new, next cron run)
    /// the current run of its workflow id, keeps it in memory and carries out its effects.
    async fn register_new_run(
        &self,
        run: crate::mutable::NewRun,
        visibility: Option<crate::store::VisibilityRow>,
    ) {
        let key = RunKey {
            namespace_id: run.state.namespace_id.clone(),
            run_id: run.state.run_id.clone(),
        };
        self.inner.current.lock().insert(
            (
                run.state.namespace_id.clone(),
                run.state.workflow_id.clone(),
            ),
            run.state.run_id.clone(),
        );
        let entry = self.insert_entry(key.clone(), run.state, Some(run.events));
        let mut data = entry.data.lock().await;
        data.extra.visibility = visibility;
        let RunData { state, extra } = &mut *data;
        self.run_effects(&key, state, extra, run.effects);
    }

    fn run_effects(
        &self,
        key: &RunKey,
        state: &ExecutionState,
        _extra: &mut RunExtra,
        effects: Vec<Effect>,
    ) {
        for e in effects {
            match e {
                Effect::DispatchWorkflowTask => {
                    let Some(w) = &state.wft else { continue };
                    if w.sticky
                        && (!self.recently_polled(&state.namespace_id, &w.task_queue)
                            || self.leaves_version(state))
                    {
                        // Nobody polls that sticky queue any more, or the run moves to another
                        // version: go to the normal queue now.
                        let me = self.clone();
                        let k = key.clone();
                        tokio::spawn(async move {
                            let _ = me.mutate(k, |tx, _| Ok(tx.unstick())).await;
                        });
                        continue;
                    }
                    let route = if w.sticky {
                        Route::Any
                    } else {
                        self.workflow_route(state)
                    };
                    self.add_task(
                        &state.namespace_id,
                        &w.task_queue,
                        QueueKind::Workflow,
                        Task::Workflow {
                            run: key.clone(),
                            shard: self.shard_of(&state.namespace_id, &state.workflow_id),
                            dispatch_seq: w.dispatch_seq,
                        },
                        route,
                    );
                }
                Effect::DispatchActivity {
                    scheduled_event_id,
                    attempt,
                } => {
                    let Some(a) = state
                        .activities
                        .iter()
                        .find(|a| a.scheduled_event_id == scheduled_event_id)
                    else {
                        continue;
                    };
                    self.add_task(
                        standalone::queue_namespace_id(state),
                        &a.task_queue,
                        QueueKind::Activity,
                        Task::Activity {
                            run: key.clone(),
                            shard: self.shard_of(&state.namespace_id, &state.workflow_id),
                            scheduled_event_id,
                            attempt,
                        },
                        self.activity_route(state, &a.task_queue),
                    );
                }
                Effect::Timer { at, kind } => {
                    if self.keeps_timer(at) {
                        self.inner.timers.add(at, key.clone(), kind)
                    }
                }
                Effect::StartChild { initiated_event_id } => {
                    let me = self.clone();
                    let k = key.clone();
                    tokio::spawn(retrying("starting a child workflow failed", move || {
                        let (me, k) = (me.clone(), k.clone());
                        async move { me.start_child(k, initiated_event_id).await }
                    }));
                }
                Effect::External { initiated_event_id } => {
                    let me = self.clone();
                    let k = key.clone();
                    tokio::spawn(retrying(
                        "delivering an external request failed",
                        move || {
                            let (me, k) = (me.clone(), k.clone());
                            async move { me.deliver_external(k, initiated_event_id).await }
                        },
                    ));
                }
                Effect::NotifyParent => {
                    let me = self.clone();
                    let k = key.clone();
                    tokio::spawn(retrying(
                        "notifying the parent workflow failed",
                        move || {
                            let (me, k) = (me.clone(), k.clone());
                            async move { me.notify_parent(k).await }
                        },
                    ));
                }
                Effect::ParentClosePolicy(children) => {
                    let me = self.clone();
                    let ns = state.namespace.clone();
                    tokio::spawn(async move { me.apply_parent_close_policy(ns, children).await });
                }
                Effect::UpdatesChanged | Effect::Closed => {}
            }
        }
    }

    /// Sends queries that wait for no workflow task out as query tasks.
    fn dispatch_queries(&self, key: &RunKey, state: &ExecutionState, extra: &mut RunExtra) {
        if state.wft.is_some() && state.status == Status::Running as i32 {
            return;
        }
        let running = state.status == Status::Running as i32;
        let sticky = running
            && !state.sticky_queue.is_empty()
            && self.recently_polled(&state.namespace_id, &state.sticky_queue);
        let queue = if sticky {
            state.sticky_queue.clone()
        } else {
            state.task_queue.clone()
        };
        for (id, q) in extra.queries.iter_mut() {
            if q.dispatched || q.attached_to.is_some() {
                continue;
            }
            q.dispatched = true;
            self.add_task(
                &state.namespace_id,
                &queue,
                QueueKind::Workflow,
                Task::Query {
                    run: key.clone(),
                    shard: self.shard_of(&state.namespace_id, &state.workflow_id),
                    query_id: *id,
                },
                if sticky {
                    Route::Any
                } else {
                    self.workflow_route(state)
                },
            );
            if sticky {
                // If the sticky worker does not answer in time, try the normal queue.
                let me = self.clone();
                let (k, id, normal) = (key.clone(), *id, state.task_queue.clone());
                let ns = state.namespace_id.clone();
                let route = self.workflow_route(state);
                let shard = self.shard_of(&state.namespace_id, &state.workflow_id);
                let wait = crate::clock::convert::dur(&state.sticky_schedule_to_start)
                    .max(Duration::from_secs(3));
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let Ok(entry) = me.entry(&k).await else {
                        return;
                    };
                    let data = entry.data.lock().await;
                    if data.extra.queries.get(&id).is_some_and(|q| q.tx.is_some()) {
                        me.add_task(
                            &ns,
                            &normal,
                            QueueKind::Workflow,
                            Task::Query {
                                run: k.clone(),
                                shard,
                                query_id: id,
                            },
                            route,
                        );
                    }
                });
            }
        }
    }

    async fn fire_timer(&self, run: RunKey, kind: TimerKind) -> Result<()> {
        self.mutate(run, move |tx, _| {
            match kind {
                TimerKind::User(id) => tx.timer_fired(id),
                TimerKind::Activity {
                    scheduled_event_id,
                    attempt,
                    timeout,
                } => {
                    let tt = TimeoutType::try_from(timeout).unwrap_or(TimeoutType::Unspecified);
                    tx.activity_timeout(scheduled_event_id, attempt, tt)
                }
                TimerKind::ActivityRetry {
                    scheduled_event_id,
                    attempt,
                } => {
                    let ok = tx
                        .activity_index(scheduled_event_id)
                        .is_some_and(|i| tx.activity_dispatchable(i, attempt));
                    if ok {
                        tx.effects.push(Effect::DispatchActivity {
                            scheduled_event_id,
                            attempt,
                        });
                    }
                    false
                }
                TimerKind::WorkflowTask {
                    dispatch_seq,
                    timeout,
                } => {
                    let tt = TimeoutType::try_from(timeout).unwrap_or(TimeoutType::Unspecified);
                    tx.wft_timeout(dispatch_seq, tt)
                }
                TimerKind::Workflow => tx.workflow_timeout(),
                TimerKind::StartBackoff => tx.start_backoff_fired(),
            };
            // The engine may have left later timers of this run to the store while this one
            // was armed (the loader reads a run only when its earliest wake time enters the
            // window): arm what is due within the window now. Armed ones are kept once.
            tx.rearm_timers();
            Ok(())
        })
        .await
    }

    /// Persisted events `from..=to` of a run (1-based), at most `limit` of them: sliced from the
    /// in-memory history when the run has one, else read from the store, so the cost follows the
    /// page asked for, not the length of the history.
    pub(crate) async fn history_range(
        &self,
        data: &RunData,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<HistoryEvent>> {
        let from = from.max(1);
        if to < from || limit == 0 {
            return Ok(Vec::new());
        }
        let n = usize::try_from(to - from + 1)
            .unwrap_or(usize::MAX)
            .min(limit);
        if let Some(h) = &data.extra.history {
            let start = usize::try_from(from - 1).unwrap_or(usize::MAX);
            return Ok(h.iter().skip(start).take(n).cloned().collect());
        }
        let s = self.inner.store.clone();
        let (ns, run) = (data.state.namespace_id.clone(), data.state.run_id.clone());
        let rows = tokio::task::spawn_blocking(move || s.read_events(&ns, &run, from, n))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        rows.iter()
            .map(|r| {
                HistoryEvent::decode(r.as_slice())
                    .map_err(|e| Error::Internal(format!("corrupt event: {e}")))
            })
            .collect()
    }

    /// The one persisted event `id` of a run, if it exists.
    pub(crate) async fn history_event(
        &self,
        data: &RunData,
        id: i64,
    ) -> Result<Option<HistoryEvent>> {
        Ok(self
            .history_range(data, id, id, 1)
            .await?
            .into_iter()
            .next())
    }

    /// Waits until the run's version moves past `seen` or `deadline` passes.
    pub(crate) async fn wait_change(entry: &Entry, seen: u64, deadline: Instant) -> bool {
        let mut rx = entry.version.subscribe();
        if *rx.borrow() != seen {
            return true;
        }
        matches!(
            tokio::time::timeout_at(deadline.into(), rx.changed()).await,
            Ok(Ok(()))
        )
    }
}

/// Runs cross-run work until it succeeds or fails for good: a storage hiccup or another
/// process briefly away (the cluster changing) is retried for about a minute. Whatever is still
/// undone then is redone when the run is re-armed.
async fn retrying<F, Fut>(what: &'static str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut backoff = Duration::from_millis(50);
    for attempt in 0.. {
        match f().await {
            Ok(()) => return,
            Err(e) if e.is_retryable() && attempt < 40 => {
                tracing::debug!(%e, "{what}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::warn!(%e, "{what}");
                return;
            }
        }
    }
}

/// The store write for a run's state and new events.
pub(crate) fn execution_write(
    state: &ExecutionState,
    events: &[HistoryEvent],
    set_current: bool,
) -> ExecutionWrite {
    let running = state.status == Status::Running as i32;
    ExecutionWrite {
        namespace_id: state.namespace_id.clone(),
        workflow_id: state.workflow_id.clone(),
        run_id: state.run_id.clone(),
        status: state.status,
        open: running
            || (state.parent.is_some()
                && !state.parent_notified
                && state.new_execution_run_id.is_empty()),
        state: state.encode_to_vec(),
        events: events
            .iter()
            .map(|e| (e.event_id, e.encode_to_vec()))
            .collect(),
        set_current,
        visibility: Some(if state.standalone.is_some() {
            standalone::visibility_row(state)
        } else {
            visibility_row(state)
        }),
        wake_at: wake_at_ms(state),
    }
}

/// What a pass over the runs due is for.
#[derive(Clone, Copy)]
enum Pass {
    /// Start-up: timers within the wake horizon and waiting tasks (counted in the progress).
    Startup,
    /// The wake loader: the runs whose window has come.
    Timers,
    /// Only the waiting tasks, after another member's engine (re)started.
    Tasks,
    /// Only the waiting tasks, to queue again what the queued-task limit left out; stops as
    /// soon as the limit is reached again.
    Refill,
}

/// The first key of wake time `wake_at` in the store's order.
fn wake_key(wake_at: i64) -> WakeKey {
    WakeKey {
        wake_at,
        run: RunRef {
            namespace_id: String::new(),
            run_id: String::new(),
        },
    }
}

/// The run's wake time as the store keeps it (see [`crate::mutable::wake_at`]).
fn wake_at_ms(state: &ExecutionState) -> Option<i64> {
    let wake = crate::mutable::wake_at(state);
    #[cfg(debug_assertions)]
    {
        // Every transition of the test suites checks that the wake time agrees with what a
        // restart would arm: the same earliest deadline, or both due already.
        let now = std::time::SystemTime::now();
        let rearmed = crate::mutable::wake_by_rearming(state, now, &Default::default());
        let due = |t: Option<std::time::SystemTime>| t.is_some_and(|t| t <= now);
        assert!(
            wake == rearmed || (due(wake) && due(rearmed)),
            "wake time {wake:?} disagrees with re-arming {rearmed:?}"
        );
    }
    wake.map(ms)
}

/// Milliseconds since the Unix epoch (saturating; 0 before it).
pub(crate) fn ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
