//! Replays recorded workflow histories against workflow code, without a server: the test that a
//! change to a workflow still produces the commands its running (or past) executions recorded.
//!
//! ```no_run
//! # async fn order(_: perdure_sdk::WfContext, _: u32) -> perdure_sdk::WorkflowResult<()> { Ok(()) }
//! use perdure_sdk::Replayer;
//!
//! let mut replayer = Replayer::new();
//! replayer.register_workflow("order", order);
//! let json = std::fs::read_to_string("order-history.json").unwrap();
//! replayer.replay_json(&json).expect("the new code replays the old history");
//! ```
//!
//! The history runs through the same executor and the same command/event matching as a worker's
//! full replay, so a mismatch is reported as the worker would report it, naming the event and the
//! command. A history that ends with the workflow open is followed by one more (in-memory)
//! workflow task, so commands the code issues beyond the end of the recorded ones are caught too.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;

use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes as EventAttributes;
use temporalio_protos::temporal::api::history::v1::{
    History, HistoryEvent, WorkflowTaskScheduledEventAttributes, WorkflowTaskStartedEventAttributes,
};

use crate::history_json::{HistoryJsonError, history_from_json};
use crate::workflow::instance::{self, Instance, WorkflowFn};
use crate::workflow::{WfContext, WorkflowResult};

/// Why a history did not replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The code issued different commands than the history recorded; the message names the event
    /// and the command.
    #[error("nondeterminism: {0}")]
    Nondeterminism(String),
    /// No workflow function is registered for the history's workflow type.
    #[error(
        "workflow type {workflow_type} is not registered on this replayer; registered: {registered:?}"
    )]
    UnknownWorkflowType {
        workflow_type: String,
        registered: Vec<String>,
    },
    /// The history JSON could not be read.
    #[error(transparent)]
    Json(#[from] HistoryJsonError),
    /// The history is malformed, or the code never settles.
    #[error("{0}")]
    Other(String),
}

impl ReplayError {
    /// Whether this is a nondeterminism error (the code does not match the history).
    pub fn is_nondeterminism(&self) -> bool {
        matches!(self, ReplayError::Nondeterminism(_))
    }
}

/// One history of [`Replayer::replay_many`] that did not replay.
#[derive(Debug)]
pub struct ReplayFailure {
    /// Its position in the input.
    pub index: usize,
    /// Its workflow id (empty if the history does not record it) and run id.
    pub workflow_id: String,
    pub run_id: String,
    pub error: ReplayError,
}

/// What [`Replayer::replay_many`] found.
#[derive(Debug, Default)]
pub struct ReplayResults {
    /// How many histories were replayed.
    pub replayed: usize,
    /// The ones that failed, in input order.
    pub failures: Vec<ReplayFailure>,
}

impl ReplayResults {
    /// Whether every history replayed.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// `Ok` if every history replayed, else these results as the error.
    pub fn into_result(self) -> Result<(), ReplayResults> {
        if self.is_ok() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for ReplayResults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} histories failed to replay",
            self.failures.len(),
            self.replayed
        )?;
        for x in &self.failures {
            write!(
                f,
                "\n  #{} (workflow {}, run {}): {}",
                x.index, x.workflow_id, x.run_id, x.error
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ReplayResults {}

/// Replays histories against registered workflow functions.
#[derive(Default)]
pub struct Replayer {
    namespace: String,
    workflows: HashMap<String, WorkflowFn>,
}

impl Replayer {
    /// A replayer with no workflows yet, in namespace `default`.
    pub fn new() -> Self {
        Replayer {
            namespace: "default".into(),
            workflows: HashMap::new(),
        }
    }

    /// Sets the namespace the code sees in [`WfContext::info`].
    pub fn namespace(&mut self, namespace: impl Into<String>) -> &mut Self {
        self.namespace = namespace.into();
        self
    }

    /// Registers a workflow function under its workflow type name, exactly like
    /// [`Worker::register_workflow`](crate::Worker::register_workflow).
    pub fn register_workflow<I, O, F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        I: serde::de::DeserializeOwned + 'static,
        O: serde::Serialize + 'static,
        F: Fn(WfContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = WorkflowResult<O>> + 'static,
    {
        self.workflows.insert(name.to_string(), instance::erase(f));
        self
    }

    /// Replays one history: `Ok` if the code issues exactly the commands the history recorded (and,
    /// for a closed history, ends the same way).
    pub fn replay(&self, history: &History) -> Result<(), ReplayError> {
        let events = &history.events;
        let Some(first) = events.first() else {
            return Err(ReplayError::Other("the history has no events".into()));
        };
        let Some(EventAttributes::WorkflowExecutionStartedEventAttributes(a)) = &first.attributes
        else {
            return Err(ReplayError::Other(format!(
                "the history starts with event {} of type {}, not WorkflowExecutionStarted",
                first.event_id,
                type_name(first)
            )));
        };
        let workflow_type = a
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let Some(f) = self.workflows.get(&workflow_type) else {
            let mut registered: Vec<String> = self.workflows.keys().cloned().collect();
            registered.sort();
            return Err(ReplayError::UnknownWorkflowType {
                workflow_type,
                registered,
            });
        };
        let (workflow_id, run_id) = ids(history);
        let mut inst = Instance::new(&self.namespace, &workflow_id, &run_id, first, f)
            .map_err(from_instance)?;
        inst.apply(events).map_err(from_instance)?;
        let tail = closing_task(events);
        if let Some(started) = tail.last() {
            let end = format!(
                "before event {} {}",
                started.event_id,
                EventType::WorkflowTaskStarted
                    .as_str_name()
                    .trim_start_matches("EVENT_TYPE_")
            );
            let last = events.last().map_or(0, |e| e.event_id);
            inst.apply(&tail).map_err(|e| match from_instance(e) {
                ReplayError::Nondeterminism(m) => ReplayError::Nondeterminism(
                    m.replace(&end, &format!("by the end of the history (event {last})")),
                ),
                other => other,
            })?;
        }
        Ok(())
    }

    /// Replays one history given as JSON (see [`history_from_json`]).
    pub fn replay_json(&self, json: &str) -> Result<(), ReplayError> {
        self.replay(&history_from_json(json)?)
    }

    /// Replays several histories and reports each that failed.
    pub fn replay_many<H: Borrow<History>>(
        &self,
        histories: impl IntoIterator<Item = H>,
    ) -> ReplayResults {
        let mut results = ReplayResults::default();
        for (index, h) in histories.into_iter().enumerate() {
            let h = h.borrow();
            results.replayed += 1;
            if let Err(error) = self.replay(h) {
                let (workflow_id, run_id) = ids(h);
                results.failures.push(ReplayFailure {
                    index,
                    workflow_id,
                    run_id,
                    error,
                });
            }
        }
        results
    }
}

fn from_instance(e: instance::ReplayError) -> ReplayError {
    match e {
        instance::ReplayError::Nondeterminism(m) => ReplayError::Nondeterminism(m),
        instance::ReplayError::Other(m) => ReplayError::Other(m),
    }
}

fn type_name(e: &HistoryEvent) -> String {
    EventType::try_from(e.event_type)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| e.event_type.to_string())
}

/// The workflow and run ids the history records (its first event carries both on current servers).
fn ids(history: &History) -> (String, String) {
    match history.events.first().and_then(|e| e.attributes.as_ref()) {
        Some(EventAttributes::WorkflowExecutionStartedEventAttributes(a)) => {
            let run_id = if a.original_execution_run_id.is_empty() {
                a.first_execution_run_id.clone()
            } else {
                a.original_execution_run_id.clone()
            };
            (a.workflow_id.clone(), run_id)
        }
        _ => (String::new(), String::new()),
    }
}

/// For a history that ends with the workflow open (and no workflow task started), the events of
/// one more workflow task: applying them runs the code past the end of the history, and fails if
/// it issued commands the history has no events for.
fn closing_task(events: &[HistoryEvent]) -> Vec<HistoryEvent> {
    let Some(last) = events.last() else {
        return Vec::new();
    };
    let t = EventType::try_from(last.event_type).unwrap_or(EventType::Unspecified);
    let mut id = last.event_id;
    let mut next = |attributes: EventAttributes, event_type: EventType| {
        id += 1;
        HistoryEvent {
            event_id: id,
            event_time: last.event_time,
            event_type: event_type as i32,
            attributes: Some(attributes),
            ..Default::default()
        }
    };
    let scheduled = || {
        EventAttributes::WorkflowTaskScheduledEventAttributes(
            WorkflowTaskScheduledEventAttributes {
                attempt: 1,
                ..Default::default()
            },
        )
    };
    let started = || {
        EventAttributes::WorkflowTaskStartedEventAttributes(
            WorkflowTaskStartedEventAttributes::default(),
        )
    };
    use EventType::*;
    match t {
        // The code already ran this task (or the workflow closed with one of its commands).
        WorkflowTaskStarted
        | WorkflowExecutionCompleted
        | WorkflowExecutionFailed
        | WorkflowExecutionCanceled
        | WorkflowExecutionContinuedAsNew => Vec::new(),
        WorkflowTaskScheduled => vec![next(started(), WorkflowTaskStarted)],
        _ => vec![
            next(scheduled(), WorkflowTaskScheduled),
            next(started(), WorkflowTaskStarted),
        ],
    }
}
