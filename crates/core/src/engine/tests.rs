//! Shell tests that need the engine's internals: a transition that panics or refuses half-way
//! leaves nothing behind, in memory or in the store.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use perdure_proto::api::common::v1::{WorkflowExecution, WorkflowType};
use perdure_proto::api::enums::v1::EventType;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;

use super::{Config, Engine};
use crate::clock::ManualClock;
use crate::error::Error;
use crate::matching::RunKey;
use crate::mutable::SignalParams;
use crate::store::MemoryStore;

async fn engine_with_run(id: &str) -> (Engine, RunKey) {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let e = Engine::start(
        Arc::new(MemoryStore::new()),
        Arc::new(clock),
        Config::default(),
    )
    .await
    .unwrap();
    let started = e
        .start_workflow(StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: id.into(),
            workflow_type: Some(WorkflowType { name: "wf".into() }),
            task_queue: Some(TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            request_id: "r".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ns = e.namespace("default").unwrap().id.clone();
    let key = RunKey {
        namespace_id: ns,
        run_id: started.run_id,
    };
    (e, key)
}

fn signal(name: &str) -> SignalParams {
    SignalParams {
        name: name.into(),
        ..Default::default()
    }
}

/// Signals `ok` through the public API, then checks the history holds exactly Started,
/// WorkflowTaskScheduled and that one signal, with ids 1, 2, 3.
async fn only_the_good_signal_is_kept(e: &Engine, id: &str) {
    e.signal_workflow(SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
        signal_name: "ok".into(),
        request_id: "ok".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let h = e
        .get_history(
            GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
                ..Default::default()
            },
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap()
        .history
        .unwrap()
        .events;
    let types: Vec<_> = h
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap())
        .collect();
    assert_eq!(
        types,
        [
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowExecutionSignaled
        ]
    );
    let Some(A::WorkflowExecutionSignaledEventAttributes(s)) = &h[2].attributes else {
        panic!("not a signal")
    };
    assert_eq!(s.signal_name, "ok");
    assert_eq!(h[2].event_id, 3);
}

#[tokio::test]
async fn a_transition_that_panics_half_way_leaves_nothing_behind() {
    let (e, key) = engine_with_run("panics").await;
    let r = e
        .mutate(key, |tx, _| -> crate::error::Result<()> {
            tx.signal(signal("half-applied"));
            panic!("boom in the middle of a transition");
        })
        .await;
    match r {
        Err(Error::Internal(m)) => assert!(m.contains("boom"), "{m}"),
        other => panic!("expected INTERNAL, got {other:?}"),
    }
    only_the_good_signal_is_kept(&e, "panics").await;
}

#[tokio::test]
async fn a_transition_that_refuses_half_way_leaves_nothing_behind() {
    let (e, key) = engine_with_run("refuses").await;
    let r = e
        .mutate(key, |tx, _| -> crate::error::Result<()> {
            tx.signal(signal("half-applied"));
            Err(Error::InvalidArgument("changed my mind".into()))
        })
        .await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    only_the_good_signal_is_kept(&e, "refuses").await;
}
