//! The workflow API: what workflow code calls ([`WfContext`]) — activities, timers, conditions,
//! signal and query handlers, deterministic time and randomness, continue-as-new — and the errors
//! it returns. Workflow code runs on a single-threaded deterministic executor (`instance`).
//!
//! [`WfContext`] and its clock and randomness live here; the rest is split by what it is for:
//! `error`, `options`, `state` (what the code and the executor share), `commands`, `activity`,
//! `timer`, `condition`, `child`, `external` (signalling and cancelling other workflows),
//! `signals` (signal and query handlers), `update`, `markers` (side effects and patches) and
//! `cancellation` (scopes and workflow cancellation).

mod activity;
mod cancellation;
mod child;
mod commands;
mod condition;
mod error;
mod external;
pub(crate) mod instance;
mod markers;
mod options;
mod signals;
mod state;
#[cfg(test)]
mod tests;
mod timer;
mod update;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::SystemTime;

use temporalio_protos::temporal::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes;
use temporalio_protos::temporal::api::common::v1::WorkflowType;

use crate::common::normal_task_queue;
use crate::payload::ToPayloads;

pub use activity::ActivityHandle;
pub use cancellation::CancellationScope;
pub use child::ChildHandle;
pub(crate) use commands::{CommandKind, PendingCommand};
pub use error::{WorkflowError, WorkflowResult};
pub use external::ExternalHandle;
pub use markers::{PATCH_MARKER, SIDE_EFFECT_MARKER};
pub use options::{ActivityCancellation, ActivityOptions, ChildOptions, WorkflowInfo};
pub(crate) use state::State;
pub use timer::TimerHandle;

/// The workflow's view of the world; cheap to clone, not `Send` (workflows are single-threaded).
#[derive(Clone)]
pub struct WfContext {
    pub(crate) state: Rc<RefCell<State>>,
    /// The cancellation scope that activities, timers and children started here belong to.
    scope: Option<CancellationScope>,
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

    /// Counts a future's first poll as progress: a task reached a new await point.
    fn count_first_poll(&self, counted: &mut bool) {
        if !std::mem::replace(counted, true) {
            self.state.borrow_mut().progress += 1;
        }
    }

    /// A deterministic UUID v4.
    pub fn uuid4(&self) -> uuid::Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.random_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.random_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(b).into_uuid()
    }

    /// The error to return to continue as a new run of this workflow type with `args`.
    pub fn continue_as_new(&self, args: impl ToPayloads) -> WorkflowError {
        let info = self.info();
        match args.to_payloads() {
            Ok(input) => WorkflowError::ContinueAsNew(Box::new(
                ContinueAsNewWorkflowExecutionCommandAttributes {
                    workflow_type: Some(WorkflowType {
                        name: info.workflow_type,
                    }),
                    task_queue: Some(normal_task_queue(info.task_queue)),
                    input: Some(input),
                    ..Default::default()
                },
            )),
            Err(e) => e.into(),
        }
    }
}
