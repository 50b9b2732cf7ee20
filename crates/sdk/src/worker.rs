//! The worker: long-polls a task queue (and its own sticky queue) for workflow and activity tasks,
//! runs workflow instances on one thread with a sticky LRU cache (full replay on a miss), runs
//! activities concurrently with heartbeats, and shuts down gracefully.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::common::v1::{Payloads, WorkflowExecution};
use temporalio_protos::temporal::api::enums::v1::{
    QueryResultType, TaskQueueKind, WorkflowTaskFailedCause,
};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::query::v1::{WorkflowQuery, WorkflowQueryResult};
use temporalio_protos::temporal::api::sdk::v1::WorkflowTaskCompletedMetadata;
use temporalio_protos::temporal::api::taskqueue::v1::{StickyExecutionAttributes, TaskQueue};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tokio::sync::{Semaphore, oneshot, watch};

use crate::activity::{ActContext, ActivityFn, ActivityInfo};
use crate::client::Client;
use crate::common::proto_duration;
use crate::error::ClientError;
use crate::failure::{ApplicationFailure, SOURCE};
use crate::workflow::instance::{Instance, ReplayError, WorkflowFn};
use crate::workflow::{WfContext, WorkflowResult};

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The task queue to poll.
    pub task_queue: String,
    /// Workflow instances kept in memory between tasks (0: replay the history on every task).
    pub max_cached_workflows: usize,
    /// Concurrent workflow task polls.
    pub workflow_pollers: usize,
    /// Concurrent activity task polls.
    pub activity_pollers: usize,
    /// Activities running at once.
    pub max_concurrent_activities: usize,
    /// How long the server waits for this worker's sticky queue before using the normal one.
    pub sticky_schedule_to_start_timeout: Duration,
}

impl WorkerOptions {
    /// Defaults for `task_queue`.
    pub fn new(task_queue: impl Into<String>) -> Self {
        WorkerOptions {
            task_queue: task_queue.into(),
            max_cached_workflows: 1000,
            workflow_pollers: 5,
            activity_pollers: 5,
            max_concurrent_activities: 100,
            sticky_schedule_to_start_timeout: Duration::from_secs(10),
        }
    }
}

/// A worker for one task queue.
pub struct Worker {
    client: Client,
    options: WorkerOptions,
    workflows: HashMap<String, WorkflowFn>,
    activities: HashMap<String, ActivityFn>,
    shutdown_tx: watch::Sender<bool>,
}

/// Stops a running worker: polling ends, in-flight tasks finish, then `run` returns.
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    /// Starts the graceful shutdown.
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

impl Worker {
    /// A worker with no workflows or activities yet.
    pub fn new(client: Client, options: WorkerOptions) -> Self {
        Worker {
            client,
            options,
            workflows: HashMap::new(),
            activities: HashMap::new(),
            shutdown_tx: watch::channel(false).0,
        }
    }

    /// Registers a workflow function under its workflow type name. It receives the first
    /// argument of the start request.
    pub fn register_workflow<I, O, F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        I: serde::de::DeserializeOwned + 'static,
        O: serde::Serialize + 'static,
        F: Fn(WfContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = WorkflowResult<O>> + 'static,
    {
        self.workflows
            .insert(name.to_string(), crate::workflow::instance::erase(f));
        self
    }

    /// Registers an activity function under its activity type name. It receives the first
    /// argument the workflow passed.
    pub fn register_activity<I, O, F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        I: serde::de::DeserializeOwned + Send + 'static,
        O: serde::Serialize + Send + 'static,
        F: Fn(ActContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, ApplicationFailure>> + Send + 'static,
    {
        self.activities
            .insert(name.to_string(), crate::activity::erase(f));
        self
    }

    /// A handle that shuts the worker down.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown_tx.clone())
    }

    /// Polls and runs tasks until shut down.
    pub async fn run(self) -> Result<(), ClientError> {
        let sticky = (self.options.max_cached_workflows > 0).then(|| {
            format!(
                "{}-{}-sticky-{}",
                self.client.identity(),
                self.options.task_queue,
                uuid::Uuid::new_v4().simple()
            )
        });
        let thread =
            WorkflowThread::spawn(self.workflows.clone(), self.options.max_cached_workflows);
        let shared = Arc::new(Shared {
            client: self.client.clone(),
            options: self.options.clone(),
            sticky: sticky.clone(),
            thread,
            activities: self.activities.clone(),
            activity_slots: Arc::new(Semaphore::new(
                self.options.max_concurrent_activities.max(1),
            )),
        });
        let mut tasks = tokio::task::JoinSet::new();
        if !self.workflows.is_empty() {
            for i in 0..self.options.workflow_pollers.max(1) {
                let queue = match (&sticky, i % 2) {
                    (Some(s), 1) => s.clone(),
                    _ => self.options.task_queue.clone(),
                };
                let kind = if sticky.as_deref() == Some(queue.as_str()) {
                    TaskQueueKind::Sticky
                } else {
                    TaskQueueKind::Normal
                };
                tasks.spawn(workflow_poller(
                    shared.clone(),
                    queue,
                    kind,
                    self.shutdown_tx.subscribe(),
                ));
            }
            // Always poll the sticky queue too when there is one.
            if let Some(s) = &sticky
                && self.options.workflow_pollers < 2
            {
                tasks.spawn(workflow_poller(
                    shared.clone(),
                    s.clone(),
                    TaskQueueKind::Sticky,
                    self.shutdown_tx.subscribe(),
                ));
            }
        }
        if !self.activities.is_empty() {
            for _ in 0..self.options.activity_pollers.max(1) {
                tasks.spawn(activity_poller(
                    shared.clone(),
                    self.shutdown_tx.subscribe(),
                ));
            }
        }
        let mut first_error = None;
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r
                && first_error.is_none()
            {
                first_error = Some(e);
                let _ = self.shutdown_tx.send(true);
            }
        }
        // Let running activities finish.
        let _ = shared
            .activity_slots
            .acquire_many(self.options.max_concurrent_activities.max(1) as u32)
            .await;
        if let Some(s) = &sticky {
            let _ = self
                .client
                .workflow_service()
                .shutdown_worker(ws::ShutdownWorkerRequest {
                    namespace: self.client.namespace().to_string(),
                    sticky_task_queue: s.clone(),
                    identity: self.client.identity().to_string(),
                    reason: "graceful shutdown".into(),
                    ..Default::default()
                })
                .await;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

struct Shared {
    client: Client,
    options: WorkerOptions,
    sticky: Option<String>,
    thread: WorkflowThread,
    activities: HashMap<String, ActivityFn>,
    activity_slots: Arc<Semaphore>,
}

fn queue(name: &str, kind: TaskQueueKind, normal: &str) -> TaskQueue {
    TaskQueue {
        name: name.to_string(),
        kind: kind as i32,
        normal_name: if kind == TaskQueueKind::Sticky {
            normal.to_string()
        } else {
            String::new()
        },
    }
}

const POLL_TIMEOUT: Duration = Duration::from_secs(70);

fn polled<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(POLL_TIMEOUT);
    r
}

/// Whether a poll error is worth retrying after a pause.
fn transient(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Cancelled
    )
}

/// The pause before polling again after a transient failure: 100 ms, doubling up to 10 s, back to
/// 100 ms after a successful poll.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(100))
    }
}

impl Backoff {
    /// The polled task (or empty poll), `None` after waiting out a transient failure, or the
    /// error that ends the poller.
    async fn take<T>(
        &mut self,
        r: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<Option<T>, ClientError> {
        match r {
            Ok(r) => {
                *self = Backoff::default();
                Ok(Some(r.into_inner()))
            }
            Err(s) if transient(&s) => {
                tokio::time::sleep(self.0).await;
                self.0 = (self.0 * 2).min(Duration::from_secs(10));
                Ok(None)
            }
            Err(s) => Err(s.into()),
        }
    }
}

async fn workflow_poller(
    shared: Arc<Shared>,
    queue_name: String,
    kind: TaskQueueKind,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ClientError> {
    let mut backoff = Backoff::default();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let req = ws::PollWorkflowTaskQueueRequest {
            namespace: shared.client.namespace().to_string(),
            task_queue: Some(queue(&queue_name, kind, &shared.options.task_queue)),
            identity: shared.client.identity().to_string(),
            ..Default::default()
        };
        let mut svc = shared.client.workflow_service();
        let resp = tokio::select! {
            r = svc.poll_workflow_task_queue(polled(req)) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(resp) = backoff.take(resp).await? else {
            continue;
        };
        if resp.task_token.is_empty() {
            continue;
        }
        if let Err(e) = handle_workflow_task(&shared, resp).await {
            tracing::warn!("workflow task: {e}");
        }
    }
}

/// Fetches the rest of a history (after `token`), or the whole of it (`token` empty).
async fn fetch_history(
    client: &Client,
    execution: &WorkflowExecution,
    mut token: Vec<u8>,
) -> Result<Vec<HistoryEvent>, ClientError> {
    let mut events = Vec::new();
    loop {
        let r = ws::GetWorkflowExecutionHistoryRequest {
            namespace: client.namespace().to_string(),
            execution: Some(execution.clone()),
            maximum_page_size: 1000,
            next_page_token: token,
            ..Default::default()
        };
        let resp = client
            .workflow_service()
            .get_workflow_execution_history(r)
            .await?
            .into_inner();
        events.extend(resp.history.map(|h| h.events).unwrap_or_default());
        if resp.next_page_token.is_empty() {
            return Ok(events);
        }
        token = resp.next_page_token;
    }
}

async fn handle_workflow_task(
    shared: &Shared,
    resp: ws::PollWorkflowTaskQueueResponse,
) -> Result<(), ClientError> {
    let execution = resp.workflow_execution.clone().unwrap_or_default();
    let mut events = resp.history.clone().map(|h| h.events).unwrap_or_default();
    if !resp.next_page_token.is_empty() {
        events
            .extend(fetch_history(&shared.client, &execution, resp.next_page_token.clone()).await?);
    }
    let job = |events: Vec<HistoryEvent>| JobSpec {
        namespace: shared.client.namespace().to_string(),
        execution: execution.clone(),
        workflow_type: resp
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        events,
        query: resp.query.clone(),
        queries: resp.queries.clone(),
        messages: resp.messages.clone(),
    };
    let mut outcome = shared.thread.run(job(events)).await;
    if matches!(outcome, Outcome::NeedFullHistory) {
        let full = fetch_history(&shared.client, &execution, Vec::new()).await?;
        outcome = shared.thread.run(job(full)).await;
    }
    let svc = || shared.client.workflow_service();
    let ns = shared.client.namespace().to_string();
    let identity = shared.client.identity().to_string();
    match outcome {
        Outcome::QueryAnswer(answer) => {
            let (completed_type, query_result, error_message, failure) = match answer {
                Ok(p) => (
                    QueryResultType::Answered,
                    Some(Payloads { payloads: vec![p] }),
                    String::new(),
                    None,
                ),
                Err(msg) => (
                    QueryResultType::Failed,
                    None,
                    msg.clone(),
                    Some(ApplicationFailure::new(msg).to_failure()),
                ),
            };
            svc()
                .respond_query_task_completed(ws::RespondQueryTaskCompletedRequest {
                    task_token: resp.task_token,
                    completed_type: completed_type as i32,
                    query_result,
                    error_message,
                    namespace: ns,
                    failure,
                    ..Default::default()
                })
                .await?;
        }
        Outcome::Commands {
            commands,
            messages,
            query_results,
        } => {
            let sticky_attributes = shared.sticky.as_ref().map(|s| StickyExecutionAttributes {
                worker_task_queue: Some(queue(
                    s,
                    TaskQueueKind::Sticky,
                    &shared.options.task_queue,
                )),
                schedule_to_start_timeout: Some(proto_duration(
                    shared.options.sticky_schedule_to_start_timeout,
                )),
            });
            let r = svc()
                .respond_workflow_task_completed(ws::RespondWorkflowTaskCompletedRequest {
                    task_token: resp.task_token,
                    commands,
                    identity,
                    sticky_attributes,
                    query_results,
                    messages,
                    namespace: ns,
                    sdk_metadata: Some(WorkflowTaskCompletedMetadata {
                        sdk_name: "perdure-sdk".into(),
                        sdk_version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await;
            if let Err(s) = r {
                // Not accepted (for example UnhandledCommand): rebuild from history next time.
                shared.thread.evict(&execution.run_id);
                return Err(s.into());
            }
        }
        Outcome::Failed {
            nondeterminism,
            message,
        } => {
            tracing::warn!(
                workflow_id = %execution.workflow_id,
                run_id = %execution.run_id,
                "workflow task failed: {message}"
            );
            // Like the other SDKs, report only the first attempt; later ones time out.
            if resp.attempt <= 1 {
                let cause = if nondeterminism {
                    WorkflowTaskFailedCause::NonDeterministicError
                } else {
                    WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure
                };
                svc()
                    .respond_workflow_task_failed(ws::RespondWorkflowTaskFailedRequest {
                        task_token: resp.task_token,
                        cause: cause as i32,
                        failure: Some(Failure {
                            message,
                            source: SOURCE.into(),
                            ..Default::default()
                        }),
                        identity,
                        namespace: ns,
                        ..Default::default()
                    })
                    .await?;
            }
        }
        Outcome::NeedFullHistory => {}
    }
    Ok(())
}

async fn activity_poller(
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ClientError> {
    let mut backoff = Backoff::default();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let permit = tokio::select! {
            p = shared.activity_slots.clone().acquire_owned() => p.expect("semaphore open"),
            _ = shutdown.changed() => return Ok(()),
        };
        let req = ws::PollActivityTaskQueueRequest {
            namespace: shared.client.namespace().to_string(),
            task_queue: Some(queue(&shared.options.task_queue, TaskQueueKind::Normal, "")),
            identity: shared.client.identity().to_string(),
            ..Default::default()
        };
        let mut svc = shared.client.workflow_service();
        let resp = tokio::select! {
            r = svc.poll_activity_task_queue(polled(req)) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(task) = backoff.take(resp).await? else {
            continue;
        };
        if task.task_token.is_empty() {
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            run_activity(&shared, task).await;
            drop(permit);
        });
    }
}

/// A wire duration as a `Duration`; `None` when it is absent or zero.
fn std_duration(d: &Option<prost_wkt_types::Duration>) -> Option<Duration> {
    d.as_ref()
        .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
        .filter(|d| !d.is_zero())
}

async fn run_activity(shared: &Shared, task: ws::PollActivityTaskQueueResponse) {
    let activity_type = task
        .activity_type
        .as_ref()
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let execution = task.workflow_execution.clone().unwrap_or_default();
    let info = ActivityInfo {
        activity_id: task.activity_id.clone(),
        activity_type: activity_type.clone(),
        attempt: task.attempt,
        workflow_id: execution.workflow_id.clone(),
        workflow_run_id: execution.run_id.clone(),
        workflow_type: task
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        task_queue: shared.options.task_queue.clone(),
        heartbeat_timeout: std_duration(&task.heartbeat_timeout),
        start_to_close_timeout: std_duration(&task.start_to_close_timeout),
        task_token: task.task_token.clone(),
    };
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let ctx = ActContext::new(info.clone(), task.heartbeat_details.clone(), cancel_rx);
    let heartbeater = tokio::spawn(heartbeat_loop(
        shared.client.clone(),
        ctx.clone(),
        cancel_tx,
    ));
    let result = match shared.activities.get(&activity_type) {
        Some(f) => f(ctx.clone(), task.input.clone()).await,
        None => {
            let mut known: Vec<&String> = shared.activities.keys().collect();
            known.sort();
            Err(ApplicationFailure::new(format!(
                "activity type {activity_type} is not registered on this worker; registered: {known:?}"
            ))
            .with_type("NotFoundError"))
        }
    };
    heartbeater.abort();
    let svc = || shared.client.workflow_service();
    let ns = shared.client.namespace().to_string();
    let identity = shared.client.identity().to_string();
    let r = match result {
        Ok(p) => svc()
            .respond_activity_task_completed(ws::RespondActivityTaskCompletedRequest {
                task_token: task.task_token,
                result: p.map(|p| Payloads { payloads: vec![p] }),
                identity,
                namespace: ns,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Err(_) if ctx.is_cancelled() => svc()
            .respond_activity_task_canceled(ws::RespondActivityTaskCanceledRequest {
                task_token: task.task_token,
                identity,
                namespace: ns,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Err(f) => svc()
            .respond_activity_task_failed(ws::RespondActivityTaskFailedRequest {
                task_token: task.task_token,
                failure: Some(f.to_failure()),
                identity,
                namespace: ns,
                ..Default::default()
            })
            .await
            .map(|_| ()),
    };
    if let Err(s) = r {
        // NOT_FOUND: the attempt already timed out or the workflow closed; nothing to do.
        tracing::debug!("activity {} result not delivered: {s}", info.activity_id);
    }
}

/// Sends heartbeats (throttled) and turns `cancel_requested` into the context's cancellation.
async fn heartbeat_loop(client: Client, ctx: ActContext, cancel: watch::Sender<bool>) {
    let interval = ctx
        .info()
        .heartbeat_timeout
        .map(|t| t.mul_f64(0.8))
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_millis(100));
    loop {
        ctx.heartbeats.notify.notified().await;
        let details = ctx
            .heartbeats
            .details
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(details) = details else { continue };
        let r = client
            .workflow_service()
            .record_activity_task_heartbeat(ws::RecordActivityTaskHeartbeatRequest {
                task_token: ctx.info().task_token.clone(),
                details: Some(details).filter(|d| !d.payloads.is_empty()),
                identity: client.identity().to_string(),
                namespace: client.namespace().to_string(),
                ..Default::default()
            })
            .await;
        match r {
            Ok(resp) => {
                let resp = resp.into_inner();
                if resp.cancel_requested || resp.activity_reset {
                    let _ = cancel.send(true);
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                let _ = cancel.send(true);
            }
            Err(_) => {}
        }
        tokio::time::sleep(interval).await;
    }
}

// ---- the workflow thread --------------------------------------------------------------------

struct JobSpec {
    namespace: String,
    execution: WorkflowExecution,
    workflow_type: String,
    events: Vec<HistoryEvent>,
    /// A legacy query task.
    query: Option<WorkflowQuery>,
    /// Queries attached to a workflow task.
    queries: HashMap<String, WorkflowQuery>,
    /// Protocol messages (update requests) for the task.
    messages: Vec<temporalio_protos::temporal::api::protocol::v1::Message>,
}

enum Outcome {
    Commands {
        commands: Vec<temporalio_protos::temporal::api::command::v1::Command>,
        messages: Vec<temporalio_protos::temporal::api::protocol::v1::Message>,
        query_results: HashMap<String, WorkflowQueryResult>,
    },
    QueryAnswer(Result<temporalio_protos::temporal::api::common::v1::Payload, String>),
    Failed {
        nondeterminism: bool,
        message: String,
    },
    NeedFullHistory,
}

enum Job {
    Run(Box<JobSpec>, oneshot::Sender<Outcome>),
    Evict(String),
}

/// Workflow instances are not `Send`: they all live on this one thread.
struct WorkflowThread {
    tx: std::sync::mpsc::Sender<Job>,
}

impl WorkflowThread {
    fn spawn(workflows: HashMap<String, WorkflowFn>, cache_size: usize) -> WorkflowThread {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("perdure-workflows".into())
            .spawn(move || {
                let mut cache = Cache {
                    size: cache_size,
                    instances: HashMap::new(),
                    order: VecDeque::new(),
                };
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Evict(run_id) => cache.remove(&run_id),
                        Job::Run(spec, reply) => {
                            let run_id = spec.execution.run_id.clone();
                            // A panic in workflow code fails the task, not the worker.
                            let out =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    run_job(&workflows, &mut cache, *spec)
                                }))
                                .unwrap_or_else(|panic| {
                                    cache.remove(&run_id);
                                    let msg = panic
                                        .downcast_ref::<&str>()
                                        .map(|s| s.to_string())
                                        .or_else(|| panic.downcast_ref::<String>().cloned())
                                        .unwrap_or_else(|| "unknown panic".into());
                                    Outcome::Failed {
                                        nondeterminism: false,
                                        message: format!("workflow code panicked: {msg}"),
                                    }
                                });
                            let _ = reply.send(out);
                        }
                    }
                }
            })
            .expect("spawn the workflow thread");
        WorkflowThread { tx }
    }

    async fn run(&self, spec: JobSpec) -> Outcome {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Run(Box::new(spec), tx)).is_err() {
            return Outcome::Failed {
                nondeterminism: false,
                message: "the workflow thread stopped".into(),
            };
        }
        rx.await.unwrap_or(Outcome::Failed {
            nondeterminism: false,
            message: "the workflow thread stopped".into(),
        })
    }

    fn evict(&self, run_id: &str) {
        let _ = self.tx.send(Job::Evict(run_id.to_string()));
    }
}

struct Cache {
    size: usize,
    instances: HashMap<String, Instance>,
    order: VecDeque<String>,
}

impl Cache {
    fn remove(&mut self, run_id: &str) {
        self.instances.remove(run_id);
        self.order.retain(|r| r != run_id);
    }

    fn put(&mut self, run_id: String, inst: Instance) {
        if self.size == 0 {
            return;
        }
        self.remove(&run_id);
        self.instances.insert(run_id.clone(), inst);
        self.order.push_back(run_id);
        while self.order.len() > self.size {
            if let Some(old) = self.order.pop_front() {
                self.instances.remove(&old);
            }
        }
    }
}

fn failed(e: ReplayError) -> Outcome {
    Outcome::Failed {
        nondeterminism: matches!(e, ReplayError::Nondeterminism(_)),
        message: e.to_string(),
    }
}

fn run_job(workflows: &HashMap<String, WorkflowFn>, cache: &mut Cache, spec: JobSpec) -> Outcome {
    let run_id = spec.execution.run_id.clone();
    let cached = cache.instances.remove(&run_id);
    cache.order.retain(|r| r != &run_id);
    let from_cache = cached.is_some();
    let first_id = spec.events.first().map(|e| e.event_id);
    let mut inst = match cached {
        Some(i) if first_id.is_none_or(|f| f <= i.last_event_id() + 1) => i,
        _ => {
            if first_id != Some(1) {
                return Outcome::NeedFullHistory;
            }
            let Some(f) = workflows.get(&spec.workflow_type) else {
                let mut known: Vec<&String> = workflows.keys().collect();
                known.sort();
                return Outcome::Failed {
                    nondeterminism: false,
                    message: format!(
                        "workflow type {} is not registered on this worker; registered: {known:?}",
                        spec.workflow_type
                    ),
                };
            };
            match Instance::new(
                &spec.namespace,
                &spec.execution.workflow_id,
                &run_id,
                &spec.events[0],
                f,
            ) {
                Ok(i) => i,
                Err(e) => return failed(e),
            }
        }
    };
    let applied = inst.apply_with_messages(&spec.events, &spec.messages);
    if let Some(q) = spec.query {
        // A query task: answer from the state the history leads to; it issues nothing.
        let answer = match applied {
            Ok(_) => inst.query(&q.query_type, q.query_args),
            Err(e) => Err(e.to_string()),
        };
        // A cached instance that only answered stays cached; a rebuilt one is thrown away.
        if from_cache && spec.events.is_empty() {
            cache.put(run_id, inst);
        }
        return Outcome::QueryAnswer(answer);
    }
    let commands = match applied {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Outcome::Failed {
                nondeterminism: false,
                message: "the history does not end with a started workflow task".into(),
            };
        }
        Err(e) => return failed(e),
    };
    let query_results = spec
        .queries
        .into_iter()
        .map(|(id, q)| {
            let r = match inst.query(&q.query_type, q.query_args) {
                Ok(p) => WorkflowQueryResult {
                    result_type: QueryResultType::Answered as i32,
                    answer: Some(Payloads { payloads: vec![p] }),
                    ..Default::default()
                },
                Err(msg) => WorkflowQueryResult {
                    result_type: QueryResultType::Failed as i32,
                    error_message: msg.clone(),
                    failure: Some(ApplicationFailure::new(msg).to_failure()),
                    ..Default::default()
                },
            };
            (id, r)
        })
        .collect();
    let messages = inst.take_messages();
    // A run this task closes is not worth keeping: later queries come with its full history.
    let closes = commands.iter().any(|c| {
        use temporalio_protos::temporal::api::enums::v1::CommandType as T;
        matches!(
            T::try_from(c.command_type),
            Ok(T::CompleteWorkflowExecution
                | T::FailWorkflowExecution
                | T::CancelWorkflowExecution
                | T::ContinueAsNewWorkflowExecution)
        )
    });
    if !closes {
        cache.put(run_id, inst);
    }
    Outcome::Commands {
        commands,
        messages,
        query_results,
    }
}
