//! Matching: in-memory task queues that hand task references to waiting long polls without
//! touching disk. The durable truth lives in each run's mutable state; queues are rebuilt from it
//! after a restart, and a handed-out reference is re-validated when the poller starts it.
//! Each queue also remembers who polled it lately and how busy it is, for DescribeTaskQueue.
//!
//! The backlog held in memory is bounded ([`Matching::set_queued_limit`]): beyond the limit a
//! workflow or activity task that finds no poller is dropped and the matching marks itself
//! spilled; the engine queues the dropped tasks again from the store's index of wake times once
//! the backlog has drained (a run with a task waiting has wake time 0). Query tasks and sticky
//! tasks (route [`Route::Any`]) are never dropped: they live only in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use perdure_proto::api::common::v1::WorkerVersionCapabilities;
use perdure_proto::api::deployment::v1::WorkerDeploymentOptions;
use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::engine::metrics::QueueGauges;

/// A poller is reported for this long after its last poll (Temporal: 5 minutes).
pub const POLLER_TTL: Duration = Duration::from_secs(300);
/// At most this many distinct pollers are remembered per queue.
const MAX_POLLERS: usize = 1000;
/// Task add/dispatch rates are averaged over this many seconds.
const RATE_WINDOW: u64 = 30;

/// Identifies a run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey {
    pub namespace_id: String,
    pub run_id: String,
}

/// What sits in a queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// The run's workflow task, valid while its `dispatch_seq` is current.
    Workflow {
        run: RunKey,
        shard: i32,
        dispatch_seq: i64,
    },
    /// A query task for a run.
    Query {
        run: RunKey,
        shard: i32,
        query_id: u64,
    },
    /// An activity attempt.
    Activity {
        run: RunKey,
        shard: i32,
        scheduled_event_id: i64,
        attempt: i32,
    },
}

impl Task {
    /// The shard of the task's run.
    pub fn shard(&self) -> i32 {
        match self {
            Task::Workflow { shard, .. }
            | Task::Query { shard, .. }
            | Task::Activity { shard, .. } => *shard,
        }
    }
}

/// Workflow or activity queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueKind {
    Workflow,
    Activity,
}

type QueueKey = (String, String, QueueKind);

/// Where a task may go under worker versioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the queue's current version, or its ramping version for the share of keys (workflow
    /// ids) the ramp percentage covers; to unversioned pollers when the queue has neither.
    Auto(String),
    /// Only to pollers of this version ([`version_key`]); "" = unversioned pollers only.
    Pinned(String),
    /// To any poller (sticky queues: the queue itself names the worker).
    Any,
}

/// A task queue's worker-versioning routing, set from its deployment's routing config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Routing {
    /// Current version's key; `None` = unversioned.
    pub current: Option<String>,
    /// Ramping version's key ("" = ramping to unversioned) and its percentage.
    pub ramping: Option<(String, f32)>,
}

/// The matching key of a deployment version.
pub fn version_key(deployment_name: &str, build_id: &str) -> String {
    format!("{deployment_name}\u{1}{build_id}")
}

/// Whether `key` (a workflow id) falls within a ramp of `percentage`: a stable hash of the key
/// placed in [0, 100).
pub fn in_ramp(key: &str, percentage: f32) -> bool {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    ((h % 10_000) as f32) / 100.0 < percentage
}

impl Routing {
    /// The version key a task with `route` goes to; `None` = any poller.
    pub fn target(&self, route: &Route) -> Option<String> {
        match route {
            Route::Any => None,
            Route::Pinned(k) => Some(k.clone()),
            Route::Auto(key) => Some(match &self.ramping {
                Some((r, pct)) if in_ramp(key, *pct) => r.clone(),
                _ => self.current.clone().unwrap_or_default(),
            }),
        }
    }
}

fn takes(target: &Option<String>, poller_key: &str) -> bool {
    target.as_deref().is_none_or(|t| t == poller_key)
}

/// The matching key of a poller: its version's when it polls as a versioned worker, else "".
pub fn poller_key(p: &Poller) -> String {
    match &p.deployment_options {
        Some(o)
            if o.worker_versioning_mode
                == perdure_proto::api::enums::v1::WorkerVersioningMode::Versioned as i32
                && !o.build_id.is_empty() =>
        {
            version_key(&o.deployment_name, &o.build_id)
        }
        _ => String::new(),
    }
}

/// Who is polling, as the poll request describes itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Poller {
    pub identity: String,
    /// The worker's own dispatch limit for the queue (activities), else Temporal's default.
    pub rate_per_second: f64,
    pub worker_version_capabilities: Option<WorkerVersionCapabilities>,
    pub deployment_options: Option<WorkerDeploymentOptions>,
}

/// A poller seen recently, with the time of its last poll.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenPoller {
    pub poller: Poller,
    pub last_access: SystemTime,
}

/// Backlog and throughput of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueueStats {
    /// Tasks waiting for a poller.
    pub backlog: usize,
    /// How long the oldest waiting task has waited.
    pub backlog_age: Duration,
    /// Tasks added per second (handed over at once or queued), over the last 30 seconds.
    pub add_rate: f32,
    /// Tasks handed to pollers per second, over the last 30 seconds.
    pub dispatch_rate: f32,
}

/// Events per second over a sliding window of one-second buckets.
#[derive(Default)]
struct Rate {
    buckets: [u32; RATE_WINDOW as usize],
    /// Unix second of the newest bucket.
    last: u64,
}

impl Rate {
    fn advance(&mut self, sec: u64) {
        if sec <= self.last {
            return;
        }
        for s in self.last + 1..=sec.min(self.last + RATE_WINDOW) {
            self.buckets[(s % RATE_WINDOW) as usize] = 0;
        }
        self.last = sec;
    }

    fn hit(&mut self, sec: u64) {
        self.advance(sec);
        // A clock that stepped back counts in the newest bucket.
        self.buckets[(self.last % RATE_WINDOW) as usize] += 1;
    }

    fn per_second(&mut self, sec: u64) -> f32 {
        self.advance(sec);
        self.buckets.iter().map(|&n| n as f32).sum::<f32>() / RATE_WINDOW as f32
    }
}

/// Where a waiting poll receives its task (with the route, to put it back unchanged).
type Handoff = oneshot::Sender<(Task, Route)>;

#[derive(Default)]
struct Queue {
    /// Waiting tasks, when each was queued and where it may go.
    tasks: VecDeque<(Task, SystemTime, Route)>,
    /// Waiting polls with their version key.
    pollers: VecDeque<(u64, String, Handoff)>,
    last_poll: Option<Instant>,
    /// Recent pollers by identity.
    seen: HashMap<String, SeenPoller>,
    added: Rate,
    dispatched: Rate,
    /// Its backlog and waiting-poller gauges, registered on first use.
    gauges: Option<QueueGauges>,
}

/// Hands a task to the oldest waiting poller of `target` (any poller when `None`); gives the
/// task back when there is none.
fn hand_over(
    q: &mut Queue,
    target: &Option<String>,
    task: Task,
    route: Route,
) -> Result<(), (Task, Route)> {
    let mut item = (task, route);
    while let Some(i) = q.pollers.iter().position(|(_, k, _)| takes(target, k)) {
        let (_, _, tx) = q.pollers.remove(i).expect("position is in range");
        match tx.send(item) {
            Ok(()) => return Ok(()),
            Err(back) => item = back,
        }
    }
    Err(item)
}

impl Queue {
    fn forget_old_pollers(&mut self, now: SystemTime) {
        self.seen.retain(|_, p| within_ttl(p.last_access, now));
    }

    /// Publishes the backlog and waiting pollers; called after every change to either.
    fn publish(&mut self, (namespace_id, queue, kind): &QueueKey) {
        self.gauges
            .get_or_insert_with(|| QueueGauges::new(namespace_id, queue, *kind))
            .set(self.tasks.len(), self.pollers.len());
    }
}

fn within_ttl(last: SystemTime, now: SystemTime) -> bool {
    now.duration_since(last).unwrap_or_default() < POLLER_TTL
}

fn unix_sec(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// All task queues of the process.
pub struct Matching {
    clock: SharedClock,
    queues: Mutex<HashMap<QueueKey, Queue>>,
    next_poller: Mutex<u64>,
    /// Worker-versioning routing per (namespace id, task queue); absent = unversioned.
    routing: Mutex<HashMap<(String, String), Routing>>,
    /// Tasks queued in all queues (changed under the `queues` lock).
    queued: AtomicUsize,
    /// Most tasks queued before workflow and activity tasks are dropped (see the module doc).
    limit: AtomicUsize,
    /// A task was dropped since the engine last queued the dropped ones again.
    spilled: AtomicBool,
}

/// A long poll waiting on a queue; dropping it unregisters the poller.
pub struct PollTicket<'a> {
    matching: &'a Matching,
    key: QueueKey,
    id: u64,
    rx: Option<oneshot::Receiver<(Task, Route)>>,
}

impl PollTicket<'_> {
    /// Waits up to `wait` for a task.
    pub async fn wait(mut self, wait: Duration) -> Option<Task> {
        let rx = self.rx.as_mut()?;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok((t, _))) => {
                self.rx = None;
                Some(t)
            }
            // A task that raced with the timeout is put back by `Drop`.
            _ => None,
        }
    }
}

impl Drop for PollTicket<'_> {
    fn drop(&mut self) {
        let mut qs = self.matching.queues.lock();
        if let Some(q) = qs.get_mut(&self.key) {
            q.pollers.retain(|(id, _, _)| *id != self.id);
        }
        // A task sent to us but never received goes back to the front of the queue.
        if let Some(mut rx) = self.rx.take()
            && let Ok((t, route)) = rx.try_recv()
        {
            let now = self.matching.clock.now();
            qs.entry(self.key.clone())
                .or_default()
                .tasks
                .push_front((t, now, route));
            self.matching.queued.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(q) = qs.get_mut(&self.key) {
            q.publish(&self.key);
        }
    }
}

impl Matching {
    /// Matching that reads time (poll times, task ages, rates) from `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Matching {
            clock,
            queues: Mutex::new(HashMap::new()),
            next_poller: Mutex::new(0),
            routing: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            limit: AtomicUsize::new(usize::MAX),
            spilled: AtomicBool::new(false),
        }
    }

    /// Bounds the tasks held in memory (see the module doc).
    pub fn set_queued_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// The bound set by [`Matching::set_queued_limit`].
    pub fn queued_limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Tasks queued in all queues.
    pub fn queued_len(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether a task was dropped since the last [`Matching::take_spilled`].
    pub fn spilled(&self) -> bool {
        self.spilled.load(Ordering::Relaxed)
    }

    /// Sets the spilled mark: the engine reads the runs with a task waiting again.
    pub fn mark_spilled(&self) {
        self.spilled.store(true, Ordering::SeqCst);
    }

    /// Clears the spilled mark, returning whether it was set.
    pub fn take_spilled(&self) -> bool {
        self.spilled.swap(false, Ordering::SeqCst)
    }

    /// Offers a task that follows the queue's current version: handed to the oldest waiting
    /// poller it may go to, or queued at the back.
    pub fn add(&self, namespace_id: &str, queue: &str, kind: QueueKind, task: Task) {
        self.add_routed(namespace_id, queue, kind, task, Route::Auto(String::new()))
    }

    /// Offers a task that may only go where `route` says.
    pub fn add_routed(
        &self,
        namespace_id: &str,
        queue: &str,
        kind: QueueKind,
        task: Task,
        route: Route,
    ) {
        self.offer(namespace_id, queue, kind, task, route, false)
    }

    fn routing_of(&self, namespace_id: &str, queue: &str) -> Routing {
        self.routing
            .lock()
            .get(&(namespace_id.to_string(), queue.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// The version key a task with `route` on `queue` goes to now (`None`: any poller).
    pub fn target(&self, namespace_id: &str, queue: &str, route: &Route) -> Option<String> {
        self.routing_of(namespace_id, queue).target(route)
    }

    /// The queues that have a routing (a current or ramping version).
    pub fn routed_queues(&self) -> Vec<(String, String)> {
        self.routing.lock().keys().cloned().collect()
    }

    /// Sets a queue's routing (its deployment's current and ramping versions) and hands queued
    /// tasks that may now go to waiting pollers.
    pub fn set_routing(&self, namespace_id: &str, queue: &str, routing: Routing) {
        let key = (namespace_id.to_string(), queue.to_string());
        {
            let mut r = self.routing.lock();
            if r.get(&key) == Some(&routing) {
                return;
            }
            if routing == Routing::default() {
                r.remove(&key);
            } else {
                r.insert(key, routing.clone());
            }
        }
        let now = self.clock.now();
        let mut qs = self.queues.lock();
        for kind in [QueueKind::Workflow, QueueKind::Activity] {
            let key = (namespace_id.to_string(), queue.to_string(), kind);
            let Some(q) = qs.get_mut(&key) else {
                continue;
            };
            let tasks = std::mem::take(&mut q.tasks);
            for (task, at, route) in tasks {
                let target = routing.target(&route);
                match hand_over(q, &target, task, route) {
                    Ok(()) => {
                        q.dispatched.hit(unix_sec(now));
                        self.queued.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err((task, route)) => q.tasks.push_back((task, at, route)),
                }
            }
            q.publish(&key);
        }
    }

    fn offer(
        &self,
        namespace_id: &str,
        queue: &str,
        kind: QueueKind,
        task: Task,
        route: Route,
        front: bool,
    ) {
        let now = self.clock.now();
        let target = self.routing_of(namespace_id, queue).target(&route);
        let key = (namespace_id.to_string(), queue.to_string(), kind);
        let mut qs = self.queues.lock();
        let q = qs.entry(key.clone()).or_default();
        if !front {
            q.added.hit(unix_sec(now));
        }
        match hand_over(q, &target, task, route) {
            Ok(()) => q.dispatched.hit(unix_sec(now)),
            Err((task, route)) if front => {
                q.tasks.push_front((task, now, route));
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err((task, route)) => {
                let spillable = !matches!(task, Task::Query { .. }) && route != Route::Any;
                if spillable && self.queued.load(Ordering::Relaxed) >= self.queued_limit() {
                    // Its run keeps wake time 0 in the store: queued again once drained.
                    self.spilled.store(true, Ordering::SeqCst);
                    crate::engine::metrics::task_spilled();
                } else {
                    q.tasks.push_back((task, now, route));
                    self.queued.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        q.publish(&key);
    }

    /// Takes a queued task at once, or registers a poller. Records `poller` as seen now.
    pub fn poll(
        &self,
        namespace_id: &str,
        queue: &str,
        kind: QueueKind,
        poller: &Poller,
    ) -> Result<Task, PollTicket<'_>> {
        let key = (namespace_id.to_string(), queue.to_string(), kind);
        let now = self.clock.now();
        let mut qs = self.queues.lock();
        let q = qs.entry(key.clone()).or_default();
        q.last_poll = Some(Instant::now());
        if !q.seen.contains_key(&poller.identity) && q.seen.len() >= MAX_POLLERS {
            q.forget_old_pollers(now);
            if q.seen.len() >= MAX_POLLERS
                && let Some(oldest) = q
                    .seen
                    .iter()
                    .min_by_key(|(_, p)| p.last_access)
                    .map(|(k, _)| k.clone())
            {
                q.seen.remove(&oldest);
            }
        }
        q.seen.insert(
            poller.identity.clone(),
            SeenPoller {
                poller: poller.clone(),
                last_access: now,
            },
        );
        let my_key = poller_key(poller);
        let routing = self.routing_of(namespace_id, queue);
        if let Some(i) = q
            .tasks
            .iter()
            .position(|(_, _, r)| takes(&routing.target(r), &my_key))
        {
            let (t, _, _) = q.tasks.remove(i).expect("position is in range");
            self.queued.fetch_sub(1, Ordering::Relaxed);
            q.dispatched.hit(unix_sec(now));
            q.publish(&key);
            return Ok(t);
        }
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut n = self.next_poller.lock();
            *n += 1;
            *n
        };
        q.pollers.push_back((id, my_key, tx));
        q.publish(&key);
        Err(PollTicket {
            matching: self,
            key,
            id,
            rx: Some(rx),
        })
    }

    /// Puts a task back at the front (a poller could not use it after all).
    /// It follows the queue's current version; the start re-checks where it belongs.
    pub fn push_front(&self, namespace_id: &str, queue: &str, kind: QueueKind, task: Task) {
        self.offer(
            namespace_id,
            queue,
            kind,
            task,
            Route::Auto(String::new()),
            true,
        )
    }

    /// Whether someone polled this queue within `within`, or is polling it now.
    pub fn recently_polled(&self, namespace_id: &str, queue: &str, within: Duration) -> bool {
        let qs = self.queues.lock();
        qs.get(&(
            namespace_id.to_string(),
            queue.to_string(),
            QueueKind::Workflow,
        ))
        .is_some_and(|q| !q.pollers.is_empty() || q.last_poll.is_some_and(|t| t.elapsed() < within))
    }

    /// Removes a queue, returning its tasks; its waiting pollers get nothing.
    pub fn drop_queue(&self, namespace_id: &str, queue: &str, kind: QueueKind) -> Vec<Task> {
        let mut qs = self.queues.lock();
        let q = qs.remove(&(namespace_id.to_string(), queue.to_string(), kind));
        if let Some(g) = q.as_ref().and_then(|q| q.gauges.as_ref()) {
            g.set(0, 0);
        }
        if let Some(q) = &q {
            self.queued.fetch_sub(q.tasks.len(), Ordering::Relaxed);
        }
        q.map(|q| q.tasks.into_iter().map(|(t, _, _)| t).collect())
            .unwrap_or_default()
    }

    /// Number of queued (not yet polled) tasks.
    pub fn backlog(&self, namespace_id: &str, queue: &str, kind: QueueKind) -> usize {
        let qs = self.queues.lock();
        qs.get(&(namespace_id.to_string(), queue.to_string(), kind))
            .map(|q| q.tasks.len())
            .unwrap_or(0)
    }

    /// Pollers of the queue whose last poll is less than [`POLLER_TTL`] old, most recent first.
    pub fn pollers(&self, namespace_id: &str, queue: &str, kind: QueueKind) -> Vec<SeenPoller> {
        let now = self.clock.now();
        let mut qs = self.queues.lock();
        let Some(q) = qs.get_mut(&(namespace_id.to_string(), queue.to_string(), kind)) else {
            return vec![];
        };
        q.forget_old_pollers(now);
        let mut out: Vec<SeenPoller> = q.seen.values().cloned().collect();
        out.sort_by(|a, b| {
            b.last_access
                .cmp(&a.last_access)
                .then_with(|| a.poller.identity.cmp(&b.poller.identity))
        });
        out
    }

    /// Backlog and throughput of the queue (all zero for a queue never used).
    pub fn stats(&self, namespace_id: &str, queue: &str, kind: QueueKind) -> QueueStats {
        let now = self.clock.now();
        let sec = unix_sec(now);
        let mut qs = self.queues.lock();
        let Some(q) = qs.get_mut(&(namespace_id.to_string(), queue.to_string(), kind)) else {
            return QueueStats::default();
        };
        let oldest = q.tasks.iter().map(|(_, at, _)| *at).min();
        QueueStats {
            backlog: q.tasks.len(),
            backlog_age: oldest
                .and_then(|at| now.duration_since(at).ok())
                .unwrap_or_default(),
            add_rate: q.added.per_second(sec),
            dispatch_rate: q.dispatched.per_second(sec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SystemClock};
    use std::sync::Arc;

    fn matching() -> Matching {
        Matching::new(Arc::new(SystemClock))
    }

    fn who(identity: &str) -> Poller {
        Poller {
            identity: identity.into(),
            rate_per_second: 100_000.0,
            ..Default::default()
        }
    }

    fn wf(n: i64) -> Task {
        Task::Workflow {
            shard: 0,
            run: RunKey {
                namespace_id: "ns".into(),
                run_id: "r".into(),
            },
            dispatch_seq: n,
        }
    }

    #[tokio::test]
    async fn fifo_and_handoff_to_waiting_poller() {
        let m = matching();
        m.add("ns", "q", QueueKind::Workflow, wf(1));
        m.add("ns", "q", QueueKind::Workflow, wf(2));
        assert_eq!(
            m.poll("ns", "q", QueueKind::Workflow, &who("w")).ok(),
            Some(wf(1))
        );
        assert_eq!(
            m.poll("ns", "q", QueueKind::Workflow, &who("w")).ok(),
            Some(wf(2))
        );
        let ticket = m
            .poll("ns", "q", QueueKind::Workflow, &who("w"))
            .err()
            .unwrap();
        m.add("ns", "q", QueueKind::Workflow, wf(3));
        assert_eq!(ticket.wait(Duration::from_secs(1)).await, Some(wf(3)));
        assert_eq!(m.backlog("ns", "q", QueueKind::Workflow), 0);
    }

    #[tokio::test]
    async fn dropped_poller_does_not_lose_a_task() {
        let m = matching();
        let ticket = m
            .poll("ns", "q", QueueKind::Workflow, &who("w"))
            .err()
            .unwrap();
        m.add("ns", "q", QueueKind::Workflow, wf(7));
        drop(ticket); // the client went away after the task was handed over
        assert_eq!(
            m.poll("ns", "q", QueueKind::Workflow, &who("w")).ok(),
            Some(wf(7))
        );
    }

    #[tokio::test]
    async fn poll_times_out_empty() {
        let m = matching();
        let ticket = m
            .poll("ns", "q", QueueKind::Activity, &who("w"))
            .err()
            .unwrap();
        assert_eq!(ticket.wait(Duration::from_millis(20)).await, None);
        m.add("ns", "q", QueueKind::Activity, wf(1));
        assert_eq!(m.backlog("ns", "q", QueueKind::Activity), 1);
    }

    fn versioned(identity: &str, build: &str) -> Poller {
        use perdure_proto::api::enums::v1::WorkerVersioningMode;
        Poller {
            deployment_options: Some(WorkerDeploymentOptions {
                deployment_name: "d".into(),
                build_id: build.into(),
                worker_versioning_mode: WorkerVersioningMode::Versioned as i32,
            }),
            ..who(identity)
        }
    }

    #[tokio::test]
    async fn tasks_go_to_the_version_their_route_names() {
        let m = matching();
        let (v1, v2) = (version_key("d", "1"), version_key("d", "2"));
        let k = QueueKind::Workflow;
        // No routing: a task that follows the current version goes to unversioned pollers only.
        m.add("ns", "q", k, wf(1));
        assert!(m.poll("ns", "q", k, &versioned("a", "1")).is_err());
        assert_eq!(m.poll("ns", "q", k, &who("u")).ok(), Some(wf(1)));
        // A pinned task waits for its version, even while the current version is another.
        m.set_routing(
            "ns",
            "q",
            Routing {
                current: Some(v2.clone()),
                ramping: None,
            },
        );
        m.add_routed("ns", "q", k, wf(2), Route::Pinned(v1.clone()));
        m.add("ns", "q", k, wf(3));
        assert!(m.poll("ns", "q", k, &who("u")).is_err());
        assert_eq!(m.poll("ns", "q", k, &versioned("b", "2")).ok(), Some(wf(3)));
        assert_eq!(m.poll("ns", "q", k, &versioned("a", "1")).ok(), Some(wf(2)));
        // A sticky task goes to whoever polls the sticky queue.
        m.add_routed("ns", "sticky", k, wf(4), Route::Any);
        assert_eq!(
            m.poll("ns", "sticky", k, &versioned("a", "1")).ok(),
            Some(wf(4))
        );
        // A waiting v1 poller gets a queued task as soon as v1 becomes current.
        m.set_routing("ns", "q", Routing::default());
        m.add_routed("ns", "q", k, wf(5), Route::Auto("wf-5".into()));
        let ticket = m.poll("ns", "q", k, &versioned("a", "1")).err().unwrap();
        m.set_routing(
            "ns",
            "q",
            Routing {
                current: Some(v1.clone()),
                ramping: None,
            },
        );
        assert_eq!(ticket.wait(Duration::from_secs(1)).await, Some(wf(5)));
        // Ramping: 100% of workflow ids go to the ramping version, 0% none.
        m.set_routing(
            "ns",
            "q",
            Routing {
                current: Some(v1.clone()),
                ramping: Some((v2.clone(), 100.0)),
            },
        );
        m.add_routed("ns", "q", k, wf(6), Route::Auto("wf-6".into()));
        assert!(m.poll("ns", "q", k, &versioned("a", "1")).is_err());
        assert_eq!(m.poll("ns", "q", k, &versioned("b", "2")).ok(), Some(wf(6)));
        m.set_routing(
            "ns",
            "q",
            Routing {
                current: Some(v1.clone()),
                ramping: Some((v2, 0.0)),
            },
        );
        m.add_routed("ns", "q", k, wf(7), Route::Auto("wf-7".into()));
        assert!(m.poll("ns", "q", k, &versioned("b", "2")).is_err());
        assert_eq!(m.poll("ns", "q", k, &versioned("a", "1")).ok(), Some(wf(7)));
    }

    #[test]
    fn a_ramp_takes_its_share_of_workflow_ids_stably() {
        let ids: Vec<String> = (0..2000).map(|i| format!("wf-{i}")).collect();
        let share = ids.iter().filter(|id| in_ramp(id, 30.0)).count();
        assert!((500..700).contains(&share), "{share}");
        assert!(ids.iter().all(|id| in_ramp(id, 30.0) == in_ramp(id, 30.0)));
        assert!(
            ids.iter()
                .filter(|id| in_ramp(id, 30.0))
                .all(|id| in_ramp(id, 60.0))
        );
        assert!(!ids.iter().any(|id| in_ramp(id, 0.0)));
        assert!(ids.iter().all(|id| in_ramp(id, 100.0)));
    }

    #[tokio::test]
    async fn pollers_per_kind_expire_after_five_minutes() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = ManualClock::new(t0);
        let m = Matching::new(Arc::new(clock.clone()));
        assert!(m.pollers("ns", "q", QueueKind::Workflow).is_empty());
        drop(m.poll("ns", "q", QueueKind::Workflow, &who("a")));
        clock.advance(Duration::from_secs(200));
        drop(m.poll("ns", "q", QueueKind::Workflow, &who("b")));
        drop(m.poll("ns", "q", QueueKind::Activity, &who("c")));
        let names = |k| {
            m.pollers("ns", "q", k)
                .into_iter()
                .map(|p| p.poller.identity)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(QueueKind::Workflow), ["b", "a"]);
        assert_eq!(names(QueueKind::Activity), ["c"]);
        let b = &m.pollers("ns", "q", QueueKind::Workflow)[0];
        assert_eq!(b.last_access, t0 + Duration::from_secs(200));
        clock.advance(Duration::from_secs(100)); // a polled 300 s ago
        assert_eq!(names(QueueKind::Workflow), ["b"]);
        drop(m.poll("ns", "q", QueueKind::Workflow, &who("a")));
        assert_eq!(names(QueueKind::Workflow), ["a", "b"]);
        assert!(m.pollers("ns", "other", QueueKind::Workflow).is_empty());
        assert!(m.pollers("ns2", "q", QueueKind::Workflow).is_empty());
    }

    #[tokio::test]
    async fn stats_report_backlog_age_and_rates() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = ManualClock::new(t0);
        let m = Matching::new(Arc::new(clock.clone()));
        assert_eq!(
            m.stats("ns", "q", QueueKind::Activity),
            QueueStats::default()
        );
        m.add("ns", "q", QueueKind::Activity, wf(1));
        clock.advance(Duration::from_secs(4));
        m.add("ns", "q", QueueKind::Activity, wf(2));
        m.add("ns", "q", QueueKind::Activity, wf(3));
        let s = m.stats("ns", "q", QueueKind::Activity);
        assert_eq!(s.backlog, 3);
        assert_eq!(s.backlog_age, Duration::from_secs(4));
        assert_eq!(s.add_rate, 3.0 / 30.0);
        assert_eq!(s.dispatch_rate, 0.0);
        assert!(m.poll("ns", "q", QueueKind::Activity, &who("w")).is_ok());
        let s = m.stats("ns", "q", QueueKind::Activity);
        assert_eq!((s.backlog, s.dispatch_rate), (2, 1.0 / 30.0));
        clock.advance(Duration::from_secs(31));
        let s = m.stats("ns", "q", QueueKind::Activity);
        assert_eq!((s.add_rate, s.dispatch_rate), (0.0, 0.0));
        assert_eq!(s.backlog_age, Duration::from_secs(31));
    }
}
