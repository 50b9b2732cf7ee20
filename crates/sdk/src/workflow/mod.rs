//! The workflow API: what workflow code calls ([`WfContext`]) — activities, timers, conditions,
//! signal and query handlers, deterministic time and randomness, continue-as-new — and the errors
//! it returns. Workflow code runs on a single-threaded deterministic executor (`instance`).

pub(crate) mod instance;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::command::v1::command::Attributes as CA;
use temporalio_protos::temporal::api::command::v1::*;
use temporalio_protos::temporal::api::common::v1::{ActivityType, Payload, Payloads};
use temporalio_protos::temporal::api::enums::v1::TaskQueueKind;
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::protocol::v1::Message as ProtocolMessage;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::update::v1 as update;

use crate::common::{RetryPolicy, proto_duration as pdur};
use crate::failure::{ActivityError, ApplicationFailure, cancelled_failure};
use crate::payload::{self, PayloadError, ToPayloads};

/// What a workflow function returns.
pub type WorkflowResult<T> = Result<T, WorkflowError>;

/// How a workflow ends other than with a result.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowError {
    /// The workflow fails with this application failure.
    Failed(ApplicationFailure),
    /// An activity failed and the workflow did not handle it: the workflow fails with it.
    Activity(ActivityError),
    /// The workflow was cancelled (return this after cleaning up to end as Canceled).
    Cancelled,
    /// Continue as a new run (see [`WfContext::continue_as_new`]).
    ContinueAsNew(Box<ContinueAsNewWorkflowExecutionCommandAttributes>),
}

impl std::fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkflowError::Failed(a) => write!(f, "workflow failed: {a}"),
            WorkflowError::Activity(a) => write!(f, "{a}"),
            WorkflowError::Cancelled => f.write_str("workflow cancelled"),
            WorkflowError::ContinueAsNew(_) => f.write_str("continue as new"),
        }
    }
}

impl From<ActivityError> for WorkflowError {
    fn from(e: ActivityError) -> Self {
        WorkflowError::Activity(e)
    }
}

impl From<ApplicationFailure> for WorkflowError {
    fn from(e: ApplicationFailure) -> Self {
        WorkflowError::Failed(e)
    }
}

impl From<PayloadError> for WorkflowError {
    fn from(e: PayloadError) -> Self {
        WorkflowError::Failed(
            ApplicationFailure::non_retryable(e.to_string()).with_type("PayloadError"),
        )
    }
}

/// Facts about the running workflow.
#[derive(Debug, Clone, Default)]
pub struct WorkflowInfo {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub attempt: i32,
    /// The run that started the chain (seeds randomness).
    pub first_execution_run_id: String,
    /// The run this one continued, if any.
    pub continued_run_id: String,
    /// Cron schedule, if any.
    pub cron_schedule: String,
}

/// Options of an activity call.
#[derive(Debug, Clone, Default)]
pub struct ActivityOptions {
    /// Limit on one attempt (this or `schedule_to_close_timeout` is required).
    pub start_to_close_timeout: Option<Duration>,
    /// Limit on all attempts together.
    pub schedule_to_close_timeout: Option<Duration>,
    /// Limit on waiting in the queue.
    pub schedule_to_start_timeout: Option<Duration>,
    /// The activity must heartbeat at least this often.
    pub heartbeat_timeout: Option<Duration>,
    /// Retries (server default: unlimited, 1 s doubling up to 100 s).
    pub retry_policy: Option<RetryPolicy>,
    /// Another task queue (default: the workflow's).
    pub task_queue: Option<String>,
    /// How cancelling waits (default: resolve at once, `TryCancel`).
    pub cancellation: ActivityCancellation,
}

/// What cancelling an activity waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ActivityCancellation {
    /// Resolve as cancelled at once; the server cancels the activity in the background.
    #[default]
    TryCancel,
    /// Wait until the activity acknowledges the cancellation (or completes).
    WaitCancellationCompleted,
}

impl ActivityOptions {
    /// Options with a start-to-close timeout.
    pub fn start_to_close(d: Duration) -> Self {
        ActivityOptions {
            start_to_close_timeout: Some(d),
            ..Default::default()
        }
    }

    /// Sets the retry policy.
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.retry_policy = Some(p);
        self
    }

    /// Sets the heartbeat timeout.
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat_timeout = Some(d);
        self
    }
}

/// The kind of a command, with the sequence number tying it to its future.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CmdKind {
    Activity(u32),
    CancelActivity(u32),
    Timer(u32),
    CancelTimer(u32),
    Marker(String),
    Child(u32),
    UpdateAccept(String),
    UpdateComplete(String),
    SignalExternal(u32),
    CancelExternal(u32),
    Complete,
    Fail,
    CancelWorkflow,
    ContinueAsNew,
}

#[derive(Debug, Clone)]
pub(crate) struct PendingCommand {
    pub kind: CmdKind,
    pub command: Command,
}

#[derive(Debug, Default)]
pub(crate) struct ActivitySlot {
    pub activity_type: String,
    pub result: Option<Result<Option<Payloads>, ActivityError>>,
    pub scheduled_event_id: i64,
    pub cancellation: ActivityCancellation,
    /// Cancelled from code; later events for it are ignored.
    pub cancelled: bool,
}

#[derive(Debug, Default)]
pub(crate) struct TimerSlot {
    pub fired: Option<bool>,
}

type SignalHandler = Box<dyn FnMut(Option<Payloads>)>;
type QueryHandler = Box<dyn Fn(Option<Payloads>) -> Result<Payload, String>>;

/// Everything the workflow code and the executor share (single-threaded).
pub(crate) struct State {
    pub info: WorkflowInfo,
    pub now: SystemTime,
    pub replaying: bool,
    /// Bumped by anything that can let a blocked task move on.
    pub progress: u64,
    pub next_activity: u32,
    pub next_timer: u32,
    /// Commands issued during the current activation, in order.
    pub commands: Vec<PendingCommand>,
    pub activities: HashMap<u32, ActivitySlot>,
    pub timers: HashMap<u32, TimerSlot>,
    pub signal_handlers: HashMap<String, SignalHandler>,
    pub buffered_signals: HashMap<String, VecDeque<Option<Payloads>>>,
    pub query_handlers: HashMap<String, QueryHandler>,
    pub cancel_requested: bool,
    pub rng: u64,
    pub next_child: u32,
    pub children: HashMap<u32, ChildSlot>,
    /// Markers the history recorded for the task being replayed (side effects, patches).
    pub markers: VecDeque<(String, HashMap<String, Payloads>)>,
    /// Patch decisions, fixed for the rest of the run once made.
    pub patches: HashMap<String, bool>,
    pub update_handlers: HashMap<String, UpdateHandler>,
    /// Update ids already delivered (a redelivered request is ignored).
    pub updates_seen: std::collections::HashSet<String>,
    /// Protocol messages to send with the task's completion.
    pub messages: Vec<ProtocolMessage>,
    /// Tasks started by handlers, picked up by the executor.
    pub spawned: Vec<futures::future::LocalBoxFuture<'static, ()>>,
    pub next_external: u32,
    /// Signals and cancellation requests to other workflows: `None` until delivered or failed.
    pub externals: HashMap<u32, Option<Result<(), String>>>,
}

type UpdateValidator = Box<dyn Fn(Option<&Payloads>) -> Result<(), String>>;
type UpdateRun = Rc<
    dyn Fn(Option<Payloads>) -> futures::future::LocalBoxFuture<'static, Result<Payload, Failure>>,
>;

pub(crate) struct UpdateHandler {
    validate: UpdateValidator,
    run: UpdateRun,
}

#[derive(Debug, Default)]
pub(crate) struct ChildSlot {
    pub workflow_type: String,
    pub workflow_id: String,
    pub run_id: String,
    pub initiated_event_id: i64,
    pub result: Option<Result<Option<Payloads>, ActivityError>>,
}

/// Marker name of [`WfContext::side_effect`].
pub const SIDE_EFFECT_MARKER: &str = "SideEffect";
/// Marker name of [`WfContext::patched`].
pub const PATCH_MARKER: &str = "Patch";

/// Options of a child workflow.
#[derive(Debug, Clone, Default)]
pub struct ChildOptions {
    /// Its workflow id (default: `<parent id>-child-<n>`).
    pub workflow_id: Option<String>,
    /// Its task queue (default: the parent's).
    pub task_queue: Option<String>,
    pub execution_timeout: Option<Duration>,
    pub run_timeout: Option<Duration>,
    pub retry_policy: Option<RetryPolicy>,
    /// What happens to it when the parent closes (default: terminate).
    pub parent_close_policy: Option<temporalio_protos::temporal::api::enums::v1::ParentClosePolicy>,
}

/// The workflow's view of the world; cheap to clone, not `Send` (workflows are single-threaded).
#[derive(Clone)]
pub struct WfContext {
    pub(crate) state: Rc<RefCell<State>>,
    /// The cancellation scope that activities, timers and children started here belong to.
    scope: Option<CancellationScope>,
}

/// A cancellation scope: cancelling it cancels every activity, timer and child workflow started
/// through its context (and its nested scopes), like the TypeScript SDK's `CancellationScope`.
#[derive(Clone, Default)]
pub struct CancellationScope(Rc<ScopeInner>);

#[derive(Default)]
struct ScopeInner {
    cancelled: std::cell::Cell<bool>,
    members: RefCell<Vec<Member>>,
    parent: Option<CancellationScope>,
}

#[derive(Clone)]
enum Member {
    Activity(u32),
    Timer(u32),
    Scope(CancellationScope),
}

impl CancellationScope {
    /// Whether the scope (or an enclosing one) was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.get() || self.0.parent.as_ref().is_some_and(|p| p.is_cancelled())
    }
}

impl WfContext {
    pub(crate) fn new(info: WorkflowInfo, now: SystemTime) -> Self {
        let seed = info
            .first_execution_run_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x1000_0000_01b3)
            });
        WfContext {
            scope: None,
            state: Rc::new(RefCell::new(State {
                info,
                now,
                replaying: false,
                progress: 0,
                next_activity: 1,
                next_timer: 1,
                commands: Vec::new(),
                activities: HashMap::new(),
                timers: HashMap::new(),
                signal_handlers: HashMap::new(),
                buffered_signals: HashMap::new(),
                query_handlers: HashMap::new(),
                cancel_requested: false,
                rng: seed,
                next_child: 1,
                children: HashMap::new(),
                markers: VecDeque::new(),
                patches: HashMap::new(),
                update_handlers: HashMap::new(),
                updates_seen: Default::default(),
                messages: Vec::new(),
                spawned: Vec::new(),
                next_external: 1,
                externals: HashMap::new(),
            })),
        }
    }

    /// Facts about this workflow run.
    pub fn info(&self) -> WorkflowInfo {
        self.state.borrow().info.clone()
    }

    /// The workflow's clock: the time of the current workflow task, the same on every replay.
    pub fn now(&self) -> SystemTime {
        self.state.borrow().now
    }

    /// Whether the code is being replayed from history (for logging only; never branch on it).
    pub fn is_replaying(&self) -> bool {
        self.state.borrow().replaying
    }

    /// Whether cancellation of the workflow was requested.
    pub fn is_cancel_requested(&self) -> bool {
        self.state.borrow().cancel_requested
    }

    /// A deterministic random number (the same on every replay of this run).
    pub fn random_u64(&self) -> u64 {
        let mut s = self.state.borrow_mut();
        // splitmix64
        s.rng = s.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A deterministic UUID v4.
    pub fn uuid4(&self) -> uuid::Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.random_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.random_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(b).into_uuid()
    }

    pub(crate) fn push_command(&self, kind: CmdKind, attrs: CA) {
        let mut s = self.state.borrow_mut();
        s.commands.push(PendingCommand {
            kind,
            command: Command {
                command_type: command_type(&attrs) as i32,
                attributes: Some(attrs),
                ..Default::default()
            },
        });
        s.progress += 1;
    }

    /// Schedules an activity and returns a handle that resolves to its result.
    pub fn activity<O: DeserializeOwned>(
        &self,
        activity_type: &str,
        args: impl ToPayloads,
        options: ActivityOptions,
    ) -> ActivityHandle<O> {
        let seq = {
            let mut s = self.state.borrow_mut();
            let seq = s.next_activity;
            s.next_activity += 1;
            s.activities.insert(
                seq,
                ActivitySlot {
                    activity_type: activity_type.to_string(),
                    cancellation: options.cancellation,
                    ..Default::default()
                },
            );
            seq
        };
        let input = match args.to_payloads() {
            Ok(p) => Some(p).filter(|p| !p.payloads.is_empty()),
            Err(e) => {
                self.resolve_activity(seq, Err(e.into()));
                return ActivityHandle::new(self.clone(), seq);
            }
        };
        let task_queue = options
            .task_queue
            .clone()
            .unwrap_or_else(|| self.state.borrow().info.task_queue.clone());
        self.push_command(
            CmdKind::Activity(seq),
            CA::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                activity_id: seq.to_string(),
                activity_type: Some(ActivityType {
                    name: activity_type.to_string(),
                }),
                task_queue: Some(TaskQueue {
                    name: task_queue,
                    kind: TaskQueueKind::Normal as i32,
                    normal_name: String::new(),
                }),
                input,
                schedule_to_close_timeout: options.schedule_to_close_timeout.map(pdur),
                schedule_to_start_timeout: options.schedule_to_start_timeout.map(pdur),
                start_to_close_timeout: options.start_to_close_timeout.map(pdur),
                heartbeat_timeout: options.heartbeat_timeout.map(pdur),
                retry_policy: options.retry_policy.as_ref().map(RetryPolicy::to_proto),
                ..Default::default()
            }),
        );
        self.enlist(Member::Activity(seq));
        ActivityHandle::new(self.clone(), seq)
    }

    /// A context whose activities, timers and nested scopes are cancelled together by
    /// [`cancel_scope`](Self::cancel_scope): run a part of the workflow with it.
    pub fn cancellation_scope(&self) -> (WfContext, CancellationScope) {
        let scope = CancellationScope(Rc::new(ScopeInner {
            parent: self.scope.clone(),
            ..Default::default()
        }));
        self.enlist(Member::Scope(scope.clone()));
        let ctx = WfContext {
            state: self.state.clone(),
            scope: Some(scope.clone()),
        };
        (ctx, scope)
    }

    /// Cancels a scope: its pending activities and timers are cancelled (as with their handles),
    /// conditions awaited through its context fail with [`WorkflowError::Cancelled`], and work
    /// started in it later is cancelled at once.
    pub fn cancel_scope(&self, scope: &CancellationScope) {
        if scope.0.cancelled.replace(true) {
            return;
        }
        self.state.borrow_mut().progress += 1;
        let members = scope.0.members.borrow().clone();
        for m in members {
            match m {
                Member::Activity(seq) => self.cancel_activity(seq),
                Member::Timer(seq) => self.cancel_timer(seq),
                Member::Scope(s) => self.cancel_scope(&s),
            }
        }
    }

    /// Records work in the current scope; in a cancelled scope it is cancelled at once.
    fn enlist(&self, m: Member) {
        let Some(scope) = &self.scope else { return };
        if scope.is_cancelled() {
            match &m {
                Member::Activity(seq) => self.cancel_activity(*seq),
                Member::Timer(seq) => self.cancel_timer(*seq),
                Member::Scope(s) => self.cancel_scope(s),
            }
        }
        scope.0.members.borrow_mut().push(m);
    }

    fn scope_cancelled(&self) -> bool {
        self.scope.as_ref().is_some_and(|s| s.is_cancelled())
    }

    pub(crate) fn resolve_activity(&self, seq: u32, r: Result<Option<Payloads>, ActivityError>) {
        let mut s = self.state.borrow_mut();
        if let Some(slot) = s.activities.get_mut(&seq)
            && slot.result.is_none()
        {
            slot.result = Some(r);
            s.progress += 1;
        }
    }

    fn cancel_activity(&self, seq: u32) {
        let (wait, scheduled) = {
            let mut s = self.state.borrow_mut();
            let Some(slot) = s.activities.get_mut(&seq) else {
                return;
            };
            if slot.result.is_some() || slot.cancelled {
                return;
            }
            slot.cancelled = true;
            let wait = slot.cancellation == ActivityCancellation::WaitCancellationCompleted;
            (wait, slot.scheduled_event_id)
        };
        // Not sent yet: drop the schedule command instead of cancelling it.
        let unsent = {
            let mut s = self.state.borrow_mut();
            let before = s.commands.len();
            s.commands.retain(|c| c.kind != CmdKind::Activity(seq));
            s.commands.len() != before
        };
        if !unsent {
            self.push_command(
                CmdKind::CancelActivity(seq),
                CA::RequestCancelActivityTaskCommandAttributes(
                    RequestCancelActivityTaskCommandAttributes {
                        scheduled_event_id: scheduled,
                    },
                ),
            );
        }
        if unsent || !wait {
            let failure = cancelled_failure("activity cancelled");
            self.resolve_activity(
                seq,
                Err(ActivityError::Cancelled {
                    failure: Box::new(failure),
                }),
            );
        }
    }

    /// Starts a durable timer.
    pub fn timer(&self, duration: Duration) -> TimerHandle {
        let seq = {
            let mut s = self.state.borrow_mut();
            let seq = s.next_timer;
            s.next_timer += 1;
            s.timers.insert(seq, TimerSlot::default());
            seq
        };
        self.push_command(
            CmdKind::Timer(seq),
            CA::StartTimerCommandAttributes(StartTimerCommandAttributes {
                timer_id: seq.to_string(),
                start_to_fire_timeout: Some(pdur(duration.max(Duration::from_millis(1)))),
            }),
        );
        self.enlist(Member::Timer(seq));
        TimerHandle {
            ctx: self.clone(),
            seq,
            counted: false,
        }
    }

    pub(crate) fn resolve_timer(&self, seq: u32, fired: bool) {
        let mut s = self.state.borrow_mut();
        if let Some(t) = s.timers.get_mut(&seq)
            && t.fired.is_none()
        {
            t.fired = Some(fired);
            s.progress += 1;
        }
    }

    fn cancel_timer(&self, seq: u32) {
        if self
            .state
            .borrow()
            .timers
            .get(&seq)
            .is_none_or(|t| t.fired.is_some())
        {
            return;
        }
        let unsent = {
            let mut s = self.state.borrow_mut();
            let before = s.commands.len();
            s.commands.retain(|c| c.kind != CmdKind::Timer(seq));
            s.commands.len() != before
        };
        if !unsent {
            self.push_command(
                CmdKind::CancelTimer(seq),
                CA::CancelTimerCommandAttributes(CancelTimerCommandAttributes {
                    timer_id: seq.to_string(),
                }),
            );
        }
        self.resolve_timer(seq, false);
    }

    /// Sleeps (a durable timer). Fails with [`WorkflowError::Cancelled`] if the workflow is
    /// cancelled meanwhile.
    pub async fn sleep(&self, duration: Duration) -> WorkflowResult<()> {
        if self.timer(duration).await {
            Ok(())
        } else {
            Err(WorkflowError::Cancelled)
        }
    }

    /// Waits until `pred` holds (checked whenever workflow state may have changed).
    pub async fn condition(&self, pred: impl Fn() -> bool + Unpin) -> WorkflowResult<()> {
        Condition {
            ctx: self.clone(),
            pred,
            counted: false,
        }
        .await
    }

    /// Waits until `pred` holds or `timeout` passes; true if `pred` held. Like the TypeScript
    /// SDK's `condition(fn, timeout)`, it starts a timer and cancels it when `pred` wins.
    pub async fn condition_timeout(
        &self,
        pred: impl Fn() -> bool + Unpin,
        timeout: Duration,
    ) -> WorkflowResult<bool> {
        let timer = self.timer(timeout);
        let mut cond = std::pin::pin!(Condition {
            ctx: self.clone(),
            pred,
            counted: false,
        });
        let mut timer = std::pin::pin!(timer);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = cond.as_mut().poll(cx) {
                timer.as_ref().get_ref().cancel();
                return Poll::Ready(r.map(|_| true));
            }
            if let Poll::Ready(fired) = timer.as_mut().poll(cx) {
                return Poll::Ready(if fired {
                    Ok(false)
                } else {
                    Err(WorkflowError::Cancelled)
                });
            }
            Poll::Pending
        })
        .await
    }

    /// Handles the signal `name`: `handler` gets its first argument. Signals that arrived before
    /// the handler was set are delivered now, in order.
    pub fn on_signal<I: DeserializeOwned + 'static>(
        &self,
        name: &str,
        mut handler: impl FnMut(I) + 'static,
    ) {
        let boxed: SignalHandler = Box::new(
            move |p: Option<Payloads>| match payload::from_payloads::<I>(p.as_ref()) {
                Ok(v) => handler(v),
                Err(e) => tracing::warn!("signal argument could not be decoded: {e}"),
            },
        );
        let buffered = {
            let mut s = self.state.borrow_mut();
            s.signal_handlers.insert(name.to_string(), boxed);
            s.buffered_signals.remove(name).unwrap_or_default()
        };
        for p in buffered {
            self.deliver_signal(name, p);
        }
    }

    pub(crate) fn deliver_signal(&self, name: &str, input: Option<Payloads>) {
        // Take the handler out while it runs so that it may use the context.
        let handler = self.state.borrow_mut().signal_handlers.remove(name);
        match handler {
            Some(mut h) => {
                h(input);
                let mut s = self.state.borrow_mut();
                s.signal_handlers.entry(name.to_string()).or_insert(h);
                s.progress += 1;
            }
            None => {
                let mut s = self.state.borrow_mut();
                s.buffered_signals
                    .entry(name.to_string())
                    .or_default()
                    .push_back(input);
            }
        }
    }

    /// Answers the query `name` with `handler` (which must not change workflow state).
    pub fn on_query<I: DeserializeOwned + 'static, O: Serialize + 'static>(
        &self,
        name: &str,
        handler: impl Fn(I) -> O + 'static,
    ) {
        let boxed: QueryHandler = Box::new(move |p: Option<Payloads>| {
            let arg = payload::from_payloads::<I>(p.as_ref()).map_err(|e| e.to_string())?;
            payload::to_payload(&handler(arg)).map_err(|e| e.to_string())
        });
        self.state
            .borrow_mut()
            .query_handlers
            .insert(name.to_string(), boxed);
    }

    /// The error to return to continue as a new run of this workflow type with `args`.
    pub fn continue_as_new(&self, args: impl ToPayloads) -> WorkflowError {
        let info = self.info();
        match args.to_payloads() {
            Ok(input) => WorkflowError::ContinueAsNew(Box::new(
                ContinueAsNewWorkflowExecutionCommandAttributes {
                    workflow_type: Some(
                        temporalio_protos::temporal::api::common::v1::WorkflowType {
                            name: info.workflow_type,
                        },
                    ),
                    task_queue: Some(TaskQueue {
                        name: info.task_queue,
                        kind: TaskQueueKind::Normal as i32,
                        normal_name: String::new(),
                    }),
                    input: Some(input),
                    ..Default::default()
                },
            )),
            Err(e) => e.into(),
        }
    }

    /// Runs `f` once and records its value in history; replays return the recorded value
    /// without running `f` again. For non-deterministic reads (a random id, the wall clock).
    pub fn side_effect<T: Serialize + DeserializeOwned>(
        &self,
        f: impl FnOnce() -> T,
    ) -> WorkflowResult<T> {
        let recorded = {
            let mut s = self.state.borrow_mut();
            if s.replaying {
                let i = s.markers.iter().position(|(n, _)| n == SIDE_EFFECT_MARKER);
                i.and_then(|i| s.markers.remove(i))
            } else {
                None
            }
        };
        let (value, data) = match recorded.and_then(|(_, mut d)| d.remove("data")) {
            Some(data) => (payload::from_payloads::<T>(Some(&data))?, data),
            None => {
                let v = f();
                let data = Payloads {
                    payloads: vec![payload::to_payload(&v)?],
                };
                (v, data)
            }
        };
        self.push_marker(
            SIDE_EFFECT_MARKER,
            HashMap::from([("data".to_string(), data)]),
        );
        Ok(value)
    }

    fn push_marker(&self, name: &str, details: HashMap<String, Payloads>) {
        self.push_command(
            CmdKind::Marker(name.to_string()),
            CA::RecordMarkerCommandAttributes(RecordMarkerCommandAttributes {
                marker_name: name.to_string(),
                details,
                ..Default::default()
            }),
        );
    }

    fn patch_marker(
        &self,
        id: &str,
        deprecated: bool,
    ) -> WorkflowResult<HashMap<String, Payloads>> {
        Ok(HashMap::from([
            ("patch_id".to_string(), (id,).to_payloads()?),
            ("deprecated".to_string(), (deprecated,).to_payloads()?),
        ]))
    }

    fn take_patch_marker(&self, id: &str) -> bool {
        let mut s = self.state.borrow_mut();
        let i = s.markers.iter().position(|(n, d)| {
            n == PATCH_MARKER
                && d.get("patch_id")
                    .and_then(|p| payload::from_payloads::<String>(Some(p)).ok())
                    .as_deref()
                    == Some(id)
        });
        i.and_then(|i| s.markers.remove(i)).is_some()
    }

    /// Versioning: true when this run executes (or executed) the code after change `id`, false
    /// when it is being replayed from a history made before the change. Stable for the run.
    pub fn patched(&self, id: &str) -> bool {
        if let Some(&v) = self.state.borrow().patches.get(id) {
            return v;
        }
        let replaying = self.is_replaying();
        let v = !replaying || self.take_patch_marker(id);
        if v && let Ok(details) = self.patch_marker(id, false) {
            self.push_marker(PATCH_MARKER, details);
        }
        self.state.borrow_mut().patches.insert(id.to_string(), v);
        v
    }

    /// Marks change `id` as the only code path left (every run that could take the old path has
    /// finished); keeps histories made with [`patched`](Self::patched) replayable.
    pub fn deprecate_patch(&self, id: &str) {
        if self.state.borrow().patches.contains_key(id) {
            return;
        }
        let record = !self.is_replaying() || self.take_patch_marker(id);
        if record && let Ok(details) = self.patch_marker(id, true) {
            self.push_marker(PATCH_MARKER, details);
        }
        self.state.borrow_mut().patches.insert(id.to_string(), true);
    }

    /// Starts a child workflow; the handle resolves to its result.
    pub fn child_workflow<O: DeserializeOwned>(
        &self,
        workflow_type: &str,
        args: impl ToPayloads,
        options: ChildOptions,
    ) -> ChildHandle<O> {
        let info = self.info();
        let seq = {
            let mut s = self.state.borrow_mut();
            let seq = s.next_child;
            s.next_child += 1;
            seq
        };
        let workflow_id = options
            .workflow_id
            .clone()
            .unwrap_or_else(|| format!("{}-child-{seq}", info.workflow_id));
        self.state.borrow_mut().children.insert(
            seq,
            ChildSlot {
                workflow_type: workflow_type.to_string(),
                workflow_id: workflow_id.clone(),
                ..Default::default()
            },
        );
        let input = match args.to_payloads() {
            Ok(p) => Some(p).filter(|p| !p.payloads.is_empty()),
            Err(e) => {
                self.resolve_child(seq, Err(e.into()));
                return ChildHandle::new(self.clone(), seq);
            }
        };
        self.push_command(
            CmdKind::Child(seq),
            CA::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_id,
                    workflow_type: Some(
                        temporalio_protos::temporal::api::common::v1::WorkflowType {
                            name: workflow_type.to_string(),
                        },
                    ),
                    task_queue: Some(TaskQueue {
                        name: options.task_queue.clone().unwrap_or(info.task_queue),
                        kind: TaskQueueKind::Normal as i32,
                        normal_name: String::new(),
                    }),
                    input,
                    workflow_execution_timeout: options.execution_timeout.map(pdur),
                    workflow_run_timeout: options.run_timeout.map(pdur),
                    parent_close_policy: options.parent_close_policy.map(|p| p as i32).unwrap_or(0),
                    retry_policy: options.retry_policy.as_ref().map(RetryPolicy::to_proto),
                    ..Default::default()
                },
            ),
        );
        ChildHandle::new(self.clone(), seq)
    }

    pub(crate) fn resolve_child(&self, seq: u32, r: Result<Option<Payloads>, ActivityError>) {
        let mut s = self.state.borrow_mut();
        if let Some(c) = s.children.get_mut(&seq)
            && c.result.is_none()
        {
            c.result = Some(r);
            s.progress += 1;
        }
    }

    /// Handles the update `name`: `handler` gets its first argument; its result (or failure) is
    /// the update's outcome. Requests are accepted without validation.
    pub fn on_update<I, O, Fut>(&self, name: &str, handler: impl Fn(I) -> Fut + 'static)
    where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        Fut: Future<Output = Result<O, ApplicationFailure>> + 'static,
    {
        self.on_update_validated(name, |_: &I| Ok(()), handler)
    }

    /// Like [`on_update`](Self::on_update), with a validator that can reject a request before
    /// it is accepted (a rejected update leaves no trace in history).
    pub fn on_update_validated<I, O, Fut>(
        &self,
        name: &str,
        validator: impl Fn(&I) -> Result<(), String> + 'static,
        handler: impl Fn(I) -> Fut + 'static,
    ) where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        Fut: Future<Output = Result<O, ApplicationFailure>> + 'static,
    {
        let validate: UpdateValidator = Box::new(move |p: Option<&Payloads>| {
            let arg = payload::from_payloads::<I>(p).map_err(|e| e.to_string())?;
            validator(&arg)
        });
        let handler = Rc::new(handler);
        let run: UpdateRun = Rc::new(move |p: Option<Payloads>| {
            let handler = handler.clone();
            Box::pin(async move {
                let arg = payload::from_payloads::<I>(p.as_ref())
                    .map_err(|e| ApplicationFailure::non_retryable(e.to_string()).to_failure())?;
                let out = handler(arg).await.map_err(|f| f.to_failure())?;
                payload::to_payload(&out)
                    .map_err(|e| ApplicationFailure::non_retryable(e.to_string()).to_failure())
            }) as futures::future::LocalBoxFuture<'static, Result<Payload, Failure>>
        });
        self.state
            .borrow_mut()
            .update_handlers
            .insert(name.to_string(), UpdateHandler { validate, run });
    }

    fn push_message(
        &self,
        kind: Option<CmdKind>,
        id: String,
        instance: &str,
        type_name: &str,
        body: Vec<u8>,
    ) {
        self.state.borrow_mut().messages.push(ProtocolMessage {
            id: id.clone(),
            protocol_instance_id: instance.to_string(),
            body: Some(prost_wkt_types::Any {
                type_url: format!("type.googleapis.com/{type_name}"),
                value: body,
            }),
            sequencing_id: None,
        });
        if let Some(kind) = kind {
            self.push_command(
                kind,
                CA::ProtocolMessageCommandAttributes(ProtocolMessageCommandAttributes {
                    message_id: id,
                }),
            );
        }
    }

    /// Delivers an update request: validates it (not on replay), accepts it and runs its handler.
    pub(crate) fn deliver_update(
        &self,
        message_id: &str,
        sequencing_event_id: i64,
        instance: &str,
        request: update::Request,
        replaying: bool,
    ) {
        use prost::Message as _;
        let update_id = request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .unwrap_or_else(|| instance.to_string());
        if !self
            .state
            .borrow_mut()
            .updates_seen
            .insert(update_id.clone())
        {
            return;
        }
        let name = request
            .input
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let args = request.input.as_ref().and_then(|i| i.args.clone());
        let check = {
            let s = self.state.borrow();
            match s.update_handlers.get(&name) {
                None => Err(format!("No handler for update {name}")),
                Some(_) if replaying => Ok(()),
                Some(h) => (h.validate)(args.as_ref()),
            }
        };
        if let Err(msg) = check {
            let rejection = update::Rejection {
                rejected_request_message_id: message_id.to_string(),
                rejected_request_sequencing_event_id: sequencing_event_id,
                rejected_request: Some(request),
                failure: Some(ApplicationFailure::new(msg).to_failure()),
            };
            // A rejection is a message only: no command, no event.
            self.push_message(
                None,
                format!("{instance}/reject"),
                instance,
                "temporal.api.update.v1.Rejection",
                rejection.encode_to_vec(),
            );
            return;
        }
        let acceptance = update::Acceptance {
            accepted_request_message_id: message_id.to_string(),
            accepted_request_sequencing_event_id: sequencing_event_id,
            accepted_request: Some(request.clone()),
        };
        self.push_message(
            Some(CmdKind::UpdateAccept(instance.to_string())),
            format!("{instance}/accept"),
            instance,
            "temporal.api.update.v1.Acceptance",
            acceptance.encode_to_vec(),
        );
        let run = self
            .state
            .borrow()
            .update_handlers
            .get(&name)
            .map(|h| h.run.clone());
        let Some(run) = run else { return };
        let ctx = self.clone();
        let instance = instance.to_string();
        let meta = request.meta.clone();
        let task = Box::pin(async move {
            let outcome = match run(args).await {
                Ok(p) => update::outcome::Value::Success(Payloads { payloads: vec![p] }),
                Err(f) => update::outcome::Value::Failure(f),
            };
            let response = update::Response {
                meta,
                outcome: Some(update::Outcome {
                    value: Some(outcome),
                }),
            };
            ctx.push_message(
                Some(CmdKind::UpdateComplete(update_id)),
                format!("{instance}/complete"),
                &instance,
                "temporal.api.update.v1.Response",
                response.encode_to_vec(),
            );
        });
        let mut s = self.state.borrow_mut();
        s.spawned.push(task);
        s.progress += 1;
    }

    fn external_seq(&self) -> u32 {
        let mut s = self.state.borrow_mut();
        let seq = s.next_external;
        s.next_external += 1;
        s.externals.insert(seq, None);
        seq
    }

    pub(crate) fn resolve_external(&self, seq: u32, r: Result<(), String>) {
        let mut s = self.state.borrow_mut();
        if let Some(slot) = s.externals.get_mut(&seq)
            && slot.is_none()
        {
            *slot = Some(r);
            s.progress += 1;
        }
    }

    /// Signals another workflow (its latest run, or `run_id`); resolves once delivered.
    pub fn signal_external(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        signal: &str,
        args: impl ToPayloads,
    ) -> ExternalHandle {
        let seq = self.external_seq();
        match args.to_payloads() {
            Ok(input) => self.push_command(
                CmdKind::SignalExternal(seq),
                CA::SignalExternalWorkflowExecutionCommandAttributes(
                    SignalExternalWorkflowExecutionCommandAttributes {
                        execution: Some(
                            temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                                workflow_id: workflow_id.to_string(),
                                run_id: run_id.unwrap_or_default().to_string(),
                            },
                        ),
                        signal_name: signal.to_string(),
                        input: Some(input),
                        ..Default::default()
                    },
                ),
            ),
            Err(e) => self.resolve_external(seq, Err(e.to_string())),
        }
        ExternalHandle {
            ctx: self.clone(),
            seq,
            counted: false,
        }
    }

    /// Requests cancellation of another workflow; resolves once the request is delivered.
    pub fn cancel_external(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        reason: &str,
    ) -> ExternalHandle {
        let seq = self.external_seq();
        self.push_command(
            CmdKind::CancelExternal(seq),
            CA::RequestCancelExternalWorkflowExecutionCommandAttributes(
                RequestCancelExternalWorkflowExecutionCommandAttributes {
                    workflow_id: workflow_id.to_string(),
                    run_id: run_id.unwrap_or_default().to_string(),
                    reason: reason.to_string(),
                    ..Default::default()
                },
            ),
        );
        ExternalHandle {
            ctx: self.clone(),
            seq,
            counted: false,
        }
    }

    /// Marks every pending activity and timer cancelled (workflow cancellation).
    pub(crate) fn cancel_everything(&self) {
        let (acts, timers): (Vec<u32>, Vec<u32>) = {
            let mut s = self.state.borrow_mut();
            s.cancel_requested = true;
            s.progress += 1;
            (
                s.activities
                    .iter()
                    .filter(|(_, a)| a.result.is_none())
                    .map(|(k, _)| *k)
                    .collect(),
                s.timers
                    .iter()
                    .filter(|(_, t)| t.fired.is_none())
                    .map(|(k, _)| *k)
                    .collect(),
            )
        };
        let mut acts = acts;
        acts.sort();
        let mut timers = timers;
        timers.sort();
        for a in acts {
            self.cancel_activity(a);
        }
        for t in timers {
            self.cancel_timer(t);
        }
    }
}

fn command_type(a: &CA) -> temporalio_protos::temporal::api::enums::v1::CommandType {
    use temporalio_protos::temporal::api::enums::v1::CommandType as T;
    match a {
        CA::ScheduleActivityTaskCommandAttributes(_) => T::ScheduleActivityTask,
        CA::StartTimerCommandAttributes(_) => T::StartTimer,
        CA::CompleteWorkflowExecutionCommandAttributes(_) => T::CompleteWorkflowExecution,
        CA::FailWorkflowExecutionCommandAttributes(_) => T::FailWorkflowExecution,
        CA::RequestCancelActivityTaskCommandAttributes(_) => T::RequestCancelActivityTask,
        CA::CancelTimerCommandAttributes(_) => T::CancelTimer,
        CA::CancelWorkflowExecutionCommandAttributes(_) => T::CancelWorkflowExecution,
        CA::ContinueAsNewWorkflowExecutionCommandAttributes(_) => T::ContinueAsNewWorkflowExecution,
        CA::RecordMarkerCommandAttributes(_) => T::RecordMarker,
        CA::StartChildWorkflowExecutionCommandAttributes(_) => T::StartChildWorkflowExecution,
        CA::SignalExternalWorkflowExecutionCommandAttributes(_) => {
            T::SignalExternalWorkflowExecution
        }
        CA::RequestCancelExternalWorkflowExecutionCommandAttributes(_) => {
            T::RequestCancelExternalWorkflowExecution
        }
        CA::UpsertWorkflowSearchAttributesCommandAttributes(_) => T::UpsertWorkflowSearchAttributes,
        CA::ModifyWorkflowPropertiesCommandAttributes(_) => T::ModifyWorkflowProperties,
        CA::ProtocolMessageCommandAttributes(_) => T::ProtocolMessage,
        CA::ScheduleNexusOperationCommandAttributes(_) => T::ScheduleNexusOperation,
        CA::RequestCancelNexusOperationCommandAttributes(_) => T::RequestCancelNexusOperation,
    }
}

/// A scheduled activity: await it for the result, or [`cancel`](Self::cancel) it.
pub struct ActivityHandle<O> {
    ctx: WfContext,
    seq: u32,
    counted: bool,
    _out: PhantomData<fn() -> O>,
}

impl<O> ActivityHandle<O> {
    fn new(ctx: WfContext, seq: u32) -> Self {
        ActivityHandle {
            ctx,
            seq,
            counted: false,
            _out: PhantomData,
        }
    }

    /// Requests cancellation.
    pub fn cancel(&self) {
        self.ctx.cancel_activity(self.seq);
    }
}

impl<O: DeserializeOwned> Future for ActivityHandle<O> {
    type Output = Result<O, ActivityError>;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let seq = self.seq;
        let this = &mut *self;
        poll_result(&this.ctx, &mut this.counted, |s| {
            s.activities.get(&seq).and_then(|a| a.result.clone())
        })
    }
}

/// Polls a recorded result: counts the first poll as progress (a task reached a new await
/// point), then decodes the result once it is there.
fn poll_result<O: DeserializeOwned>(
    ctx: &WfContext,
    counted: &mut bool,
    get: impl Fn(&State) -> Option<Result<Option<Payloads>, ActivityError>>,
) -> Poll<Result<O, ActivityError>> {
    if !*counted {
        *counted = true;
        ctx.state.borrow_mut().progress += 1;
    }
    let r = get(&ctx.state.borrow());
    match r {
        Some(Ok(p)) => Poll::Ready(payload::from_payloads(p.as_ref()).map_err(Into::into)),
        Some(Err(e)) => Poll::Ready(Err(e)),
        None => Poll::Pending,
    }
}

/// A durable timer: resolves to `true` when it fires, `false` if cancelled.
pub struct TimerHandle {
    ctx: WfContext,
    seq: u32,
    counted: bool,
}

impl TimerHandle {
    /// Cancels the timer.
    pub fn cancel(&self) {
        self.ctx.cancel_timer(self.seq);
    }
}

impl Future for TimerHandle {
    type Output = bool;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<bool> {
        if !self.counted {
            self.counted = true;
            self.ctx.state.borrow_mut().progress += 1;
        }
        match self
            .ctx
            .state
            .borrow()
            .timers
            .get(&self.seq)
            .and_then(|t| t.fired)
        {
            Some(f) => Poll::Ready(f),
            None => Poll::Pending,
        }
    }
}

struct Condition<F> {
    ctx: WfContext,
    pred: F,
    counted: bool,
}

impl<F: Fn() -> bool + Unpin> Future for Condition<F> {
    type Output = WorkflowResult<()>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.counted {
            this.counted = true;
            this.ctx.state.borrow_mut().progress += 1;
        }
        if (this.pred)() {
            return Poll::Ready(Ok(()));
        }
        if this.ctx.is_cancel_requested() || this.ctx.scope_cancelled() {
            return Poll::Ready(Err(WorkflowError::Cancelled));
        }
        Poll::Pending
    }
}

/// A started child workflow: await it for its result.
pub struct ChildHandle<O> {
    ctx: WfContext,
    seq: u32,
    counted: bool,
    _out: PhantomData<fn() -> O>,
}

impl<O> ChildHandle<O> {
    fn new(ctx: WfContext, seq: u32) -> Self {
        ChildHandle {
            ctx,
            seq,
            counted: false,
            _out: PhantomData,
        }
    }

    /// The child's workflow id.
    pub fn workflow_id(&self) -> String {
        self.ctx
            .state
            .borrow()
            .children
            .get(&self.seq)
            .map(|c| c.workflow_id.clone())
            .unwrap_or_default()
    }
}

impl<O: DeserializeOwned> Future for ChildHandle<O> {
    type Output = Result<O, ActivityError>;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let seq = self.seq;
        let this = &mut *self;
        poll_result(&this.ctx, &mut this.counted, |s| {
            s.children.get(&seq).and_then(|c| c.result.clone())
        })
    }
}

/// A signal or cancellation request sent to another workflow: resolves to `Err(reason)` if it
/// could not be delivered (for example, no such workflow).
pub struct ExternalHandle {
    ctx: WfContext,
    seq: u32,
    counted: bool,
}

impl Future for ExternalHandle {
    type Output = Result<(), String>;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.counted {
            self.counted = true;
            self.ctx.state.borrow_mut().progress += 1;
        }
        match self.ctx.state.borrow().externals.get(&self.seq) {
            Some(Some(r)) => Poll::Ready(r.clone()),
            _ => Poll::Pending,
        }
    }
}
