//! [`State`]: everything the workflow code and the executor share, on the workflow thread.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};
use temporalio_protos::temporal::api::protocol::v1::Message as ProtocolMessage;

use super::WorkflowInfo;
use super::activity::ActivitySlot;
use super::child::ChildSlot;
use super::commands::PendingCommand;
use super::timer::TimerSlot;
use super::update::UpdateHandler;

pub(crate) type SignalHandler = Box<dyn FnMut(Option<Payloads>)>;
pub(crate) type QueryHandler = Box<dyn Fn(Option<Payloads>) -> Result<Payload, String>>;

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
