//! The engine shell (not only the functional core) on the in-memory store and a hand-moved
//! clock: polls, completions, durable timers, activity retries, buffered signals, run timeouts
//! and recovery after a restart, with events found by what they are rather than by event id.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use perdure_core::clock::ManualClock;
use perdure_core::clock::convert::{from_ts, pdur};
use perdure_core::store::{MemoryStore, Store};
use perdure_core::{Config, Engine};
use perdure_proto::api::command::v1::command::Attributes as CA;
use perdure_proto::api::command::v1::*;
use perdure_proto::api::common::v1::{ActivityType, WorkflowExecution, WorkflowType};
use perdure_proto::api::enums::v1::EventType;
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::failure::v1::failure::FailureInfo;
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;

use EventType::*;

const TQ: &str = "q";

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// An engine on a fresh memory store, and the clock that drives it.
async fn engine() -> (Engine, ManualClock, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(t0());
    (start(&store, &clock).await, clock, store)
}

async fn start(store: &Arc<MemoryStore>, clock: &ManualClock) -> Engine {
    start_with_cache(store, clock, perdure_core::engine::DEFAULT_RUN_CACHE_SIZE).await
}

/// An engine that keeps at most `run_cache_size` runs in memory.
async fn start_with_cache(
    store: &Arc<MemoryStore>,
    clock: &ManualClock,
    run_cache_size: usize,
) -> Engine {
    Engine::start(
        store.clone(),
        Arc::new(clock.clone()),
        Config {
            owner: "test".into(),
            run_cache_size,
            ..Config::default()
        },
    )
    .await
    .unwrap()
}

fn queue() -> Option<TaskQueue> {
    Some(TaskQueue {
        name: TQ.into(),
        ..Default::default()
    })
}

fn exec(workflow_id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: workflow_id.into(),
        run_id: String::new(),
    })
}

fn start_req(workflow_id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType {
            name: "order".into(),
        }),
        task_queue: queue(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

async fn start_workflow(e: &Engine, workflow_id: &str) -> String {
    e.start_workflow(start_req(workflow_id))
        .await
        .unwrap()
        .run_id
}

/// The types of a history, in order.
fn types(history: &[HistoryEvent]) -> Vec<EventType> {
    history
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap_or(EventType::Unspecified))
        .collect()
}

/// Every event of type `ty`.
fn events(history: &[HistoryEvent], ty: EventType) -> Vec<&HistoryEvent> {
    history
        .iter()
        .filter(|e| e.event_type == ty as i32)
        .collect()
}

/// The one event of type `ty`; fails naming the history's types if there is not exactly one.
fn event(history: &[HistoryEvent], ty: EventType) -> &HistoryEvent {
    match events(history, ty).as_slice() {
        [e] => e,
        other => panic!("{} {ty:?} events in {:?}", other.len(), types(history)),
    }
}

/// Whether `history` has an event of type `ty`.
fn has(history: &[HistoryEvent], ty: EventType) -> bool {
    !events(history, ty).is_empty()
}

/// Event ids run 1, 2, 3, … with no gap.
fn assert_contiguous(history: &[HistoryEvent]) {
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.event_id, i as i64 + 1, "{:?}", types(history));
    }
}

/// The full history of the workflow's current run.
async fn history(e: &Engine, workflow_id: &str) -> Vec<HistoryEvent> {
    let r = e
        .get_history(
            GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: exec(workflow_id),
                ..Default::default()
            },
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    r.history.unwrap_or_default().events
}

/// Waits (in real time: timer firings run on their own tasks) until the history holds `ty`.
async fn wait_for(e: &Engine, workflow_id: &str, ty: EventType) -> Vec<HistoryEvent> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let h = history(e, workflow_id).await;
        if has(&h, ty) {
            return h;
        }
        assert!(Instant::now() < until, "no {ty:?} event in {:?}", types(&h));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls the workflow task queue until a task arrives (at most 4 s).
async fn poll_wft(e: &Engine) -> PollWorkflowTaskQueueResponse {
    let r = e
        .poll_workflow_task(wft_poll(), Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!r.task_token.is_empty(), "no workflow task arrived");
    r
}

/// A poll that is held for about 200 ms and must come back empty.
async fn assert_no_wft(e: &Engine) {
    let r = e
        .poll_workflow_task(wft_poll(), Instant::now() + Duration::from_millis(1200))
        .await
        .unwrap();
    assert!(r.task_token.is_empty(), "unexpected workflow task");
}

fn wft_poll() -> PollWorkflowTaskQueueRequest {
    PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: queue(),
        identity: "worker".into(),
        ..Default::default()
    }
}

fn activity_poll() -> PollActivityTaskQueueRequest {
    PollActivityTaskQueueRequest {
        namespace: "default".into(),
        task_queue: queue(),
        identity: "worker".into(),
        ..Default::default()
    }
}

async fn poll_activity(e: &Engine, wait: Duration) -> PollActivityTaskQueueResponse {
    e.poll_activity_task(activity_poll(), Instant::now() + wait)
        .await
        .unwrap()
}

async fn complete(e: &Engine, task: &PollWorkflowTaskQueueResponse, commands: Vec<CA>) {
    e.complete_workflow_task(RespondWorkflowTaskCompletedRequest {
        namespace: "default".into(),
        task_token: task.task_token.clone(),
        commands: commands
            .into_iter()
            .map(|a| Command {
                attributes: Some(a),
                ..Default::default()
            })
            .collect(),
        identity: "worker".into(),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn timer(id: &str, after: Duration) -> CA {
    CA::StartTimerCommandAttributes(StartTimerCommandAttributes {
        timer_id: id.into(),
        start_to_fire_timeout: Some(pdur(after)),
    })
}

fn signal_req(workflow_id: &str, name: &str) -> SignalWorkflowExecutionRequest {
    SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: exec(workflow_id),
        signal_name: name.into(),
        identity: "client".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_timer_fires_when_the_clock_passes_it_and_schedules_a_workflow_task() {
    let (e, clock, _) = engine().await;
    start_workflow(&e, "order-1").await;
    let task = poll_wft(&e).await;
    assert_eq!(
        types(&task.history.clone().unwrap().events),
        [
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted
        ]
    );
    complete(&e, &task, vec![timer("t1", Duration::from_secs(60))]).await;
    let h = history(&e, "order-1").await;
    assert!(!has(&h, TimerFired));
    let Some(A::TimerStartedEventAttributes(started)) = &event(&h, TimerStarted).attributes else {
        panic!("TimerStarted without its attributes")
    };
    assert_eq!(started.timer_id, "t1");
    assert_eq!(
        started.workflow_task_completed_event_id,
        event(&h, WorkflowTaskCompleted).event_id
    );

    clock.advance(Duration::from_secs(59));
    assert_no_wft(&e).await;
    assert!(!has(&history(&e, "order-1").await, TimerFired), "not yet");

    clock.advance(Duration::from_secs(2));
    let h = wait_for(&e, "order-1", TimerFired).await;
    let fired = event(&h, TimerFired);
    let Some(A::TimerFiredEventAttributes(a)) = &fired.attributes else {
        panic!("TimerFired without its attributes")
    };
    assert_eq!(a.timer_id, "t1");
    assert_eq!(a.started_event_id, event(&h, TimerStarted).event_id);
    assert_eq!(
        from_ts(fired.event_time.as_ref().unwrap()),
        t0() + Duration::from_secs(61),
        "event times come from the injected clock"
    );
    assert_eq!(events(&h, WorkflowTaskScheduled).len(), 2);
    assert_eq!(types(&h).last(), Some(&WorkflowTaskScheduled));
    assert_contiguous(&h);

    // The new workflow task reaches a poller, with the firing in its history.
    let task = poll_wft(&e).await;
    assert!(has(&task.history.unwrap().events, TimerFired));
}

#[tokio::test]
async fn a_failed_activity_is_retried_by_the_server_after_its_backoff() {
    let (e, clock, _) = engine().await;
    start_workflow(&e, "pay-1").await;
    let task = poll_wft(&e).await;
    complete(
        &e,
        &task,
        vec![CA::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: "charge-1".into(),
                activity_type: Some(ActivityType {
                    name: "charge".into(),
                }),
                task_queue: queue(),
                start_to_close_timeout: Some(pdur(Duration::from_secs(10))),
                // No policy: the server's defaults (first retry after 1 s).
                ..Default::default()
            },
        )],
    )
    .await;

    let first = poll_activity(&e, Duration::from_secs(5)).await;
    assert!(!first.task_token.is_empty(), "no activity task");
    assert_eq!(first.attempt, 1);
    assert_eq!(first.activity_id, "charge-1");
    e.fail_activity(
        Some(("default", first.task_token.as_slice())),
        None,
        Some(Failure {
            message: "card declined".into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(Default::default())),
            ..Default::default()
        }),
        None,
        "worker".into(),
    )
    .await
    .unwrap();
    // A retried attempt writes no event.
    let h = history(&e, "pay-1").await;
    assert_eq!(types(&h).last(), Some(&ActivityTaskScheduled));
    assert!(!has(&h, ActivityTaskStarted) && !has(&h, ActivityTaskFailed));

    // Nothing is handed out before the backoff has passed on the injected clock.
    let early = poll_activity(&e, Duration::from_millis(1200)).await;
    assert!(early.task_token.is_empty(), "retried before its backoff");
    clock.advance(Duration::from_secs(1));
    let second = poll_activity(&e, Duration::from_secs(5)).await;
    assert!(!second.task_token.is_empty(), "no retry after the backoff");
    assert_eq!(second.attempt, 2);
    e.complete_activity(RespondActivityTaskCompletedRequest {
        namespace: "default".into(),
        task_token: second.task_token,
        identity: "worker".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    let h = history(&e, "pay-1").await;
    let Some(A::ActivityTaskStartedEventAttributes(started)) =
        &event(&h, ActivityTaskStarted).attributes
    else {
        panic!("ActivityTaskStarted without its attributes")
    };
    assert_eq!(started.attempt, 2);
    assert_eq!(
        started.last_failure.as_ref().map(|f| f.message.as_str()),
        Some("card declined")
    );
    let Some(A::ActivityTaskCompletedEventAttributes(done)) =
        &event(&h, ActivityTaskCompleted).attributes
    else {
        panic!("ActivityTaskCompleted without its attributes")
    };
    assert_eq!(
        done.scheduled_event_id,
        event(&h, ActivityTaskScheduled).event_id
    );
    assert_eq!(
        done.started_event_id,
        event(&h, ActivityTaskStarted).event_id
    );
    assert!(!has(&h, ActivityTaskFailed));
    assert_eq!(types(&h).last(), Some(&WorkflowTaskScheduled));
    assert_contiguous(&h);
}

#[tokio::test]
async fn a_signal_during_a_started_task_is_written_after_its_completion() {
    let (e, _, _) = engine().await;
    start_workflow(&e, "ship-1").await;
    let task = poll_wft(&e).await;
    e.signal_workflow(signal_req("ship-1", "pickedUp"))
        .await
        .unwrap();
    let h = history(&e, "ship-1").await;
    assert!(
        !has(&h, WorkflowExecutionSignaled),
        "buffered: {:?}",
        types(&h)
    );
    assert_eq!(types(&h).last(), Some(&WorkflowTaskStarted));

    complete(&e, &task, vec![timer("t", Duration::from_secs(60))]).await;
    let h = history(&e, "ship-1").await;
    let at = |ty| types(&h).iter().position(|t| *t == ty).unwrap();
    assert!(at(WorkflowTaskCompleted) < at(TimerStarted));
    assert!(at(TimerStarted) < at(WorkflowExecutionSignaled));
    assert_eq!(types(&h).last(), Some(&WorkflowTaskScheduled));
    let Some(A::WorkflowExecutionSignaledEventAttributes(s)) =
        &event(&h, WorkflowExecutionSignaled).attributes
    else {
        panic!("WorkflowExecutionSignaled without its attributes")
    };
    assert_eq!(s.signal_name, "pickedUp");
    assert_contiguous(&h);

    // The signal brings a new workflow task whose history carries it.
    let task = poll_wft(&e).await;
    assert!(has(
        &task.history.unwrap().events,
        WorkflowExecutionSignaled
    ));
}

#[tokio::test]
async fn a_run_times_out_when_the_clock_passes_its_run_timeout() {
    let (e, clock, _) = engine().await;
    e.start_workflow(StartWorkflowExecutionRequest {
        workflow_run_timeout: Some(pdur(Duration::from_secs(60))),
        ..start_req("slow-1")
    })
    .await
    .unwrap();
    clock.advance(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!has(
        &history(&e, "slow-1").await,
        WorkflowExecutionTimedOut
    ));

    clock.advance(Duration::from_secs(31));
    let h = wait_for(&e, "slow-1", WorkflowExecutionTimedOut).await;
    assert_eq!(types(&h).last(), Some(&WorkflowExecutionTimedOut));
    assert_contiguous(&h);
    let d = e
        .describe(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: exec("slow-1"),
        })
        .await
        .unwrap();
    assert_eq!(
        d.workflow_execution_info.unwrap().status,
        perdure_proto::api::enums::v1::WorkflowExecutionStatus::TimedOut as i32
    );
}

#[tokio::test]
async fn a_restarted_engine_recovers_open_runs_and_rearms_their_timers() {
    let (old, clock, store) = engine().await;
    let run = start_workflow(&old, "order-1").await;
    let task = poll_wft(&old).await;
    complete(&old, &task, vec![timer("t1", Duration::from_secs(60))]).await;
    // A second run whose first workflow task was never polled.
    start_workflow(&old, "order-2").await;
    let ns_id = old.namespace("default").unwrap().id.clone();
    let stale = old.clone();
    drop(old);

    // A new process on the same store takes every shard over.
    let e = start(&store, &clock).await;
    let h = history(&e, "order-1").await;
    assert_eq!(types(&h).last(), Some(&TimerStarted));

    // The old owner is fenced off: its writes are refused and leave no trace.
    let err = stale
        .signal_workflow(signal_req("order-1", "late"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ownership lost"), "{err}");
    assert!(!has(
        &history(&e, "order-1").await,
        WorkflowExecutionSignaled
    ));

    // The unpolled workflow task was queued again.
    let task = poll_wft(&e).await;
    assert_eq!(
        task.workflow_execution.as_ref().unwrap().workflow_id,
        "order-2"
    );
    complete(&e, &task, vec![]).await;
    assert_no_wft(&e).await;

    // The timer was armed again from the recovered state; it fires once, though both the old
    // and the new engine hold it.
    clock.advance(Duration::from_secs(61));
    let h = wait_for(&e, "order-1", TimerFired).await;
    assert_eq!(types(&h).last(), Some(&WorkflowTaskScheduled));
    assert_contiguous(&h);
    let task = poll_wft(&e).await;
    assert_eq!(task.workflow_execution.unwrap().workflow_id, "order-1");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stored: Vec<HistoryEvent> = store
        .read_events(&ns_id, &run, 1, usize::MAX)
        .unwrap()
        .iter()
        .map(|b| HistoryEvent::decode(b.as_slice()).unwrap())
        .collect();
    assert_eq!(events(&stored, TimerFired).len(), 1, "{:?}", types(&stored));
    assert_contiguous(&stored);
}

fn complete_workflow() -> CA {
    CA::CompleteWorkflowExecutionCommandAttributes(Default::default())
}

#[tokio::test]
async fn runs_beyond_the_cache_leave_memory_and_are_read_back_whole_for_their_next_task() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(t0());
    let e = start_with_cache(&store, &clock, 2).await;
    for i in 0..6 {
        start_workflow(&e, &format!("order-{i}")).await;
        let task = poll_wft(&e).await;
        complete(&e, &task, vec![timer("t1", Duration::from_secs(60))]).await;
    }
    assert!(e.cached_runs() <= 2, "{} runs in memory", e.cached_runs());
    assert!(e.evicted_runs() >= 4, "{} evicted", e.evicted_runs());

    // A signal to an evicted run reads it back from the store; its next task has the whole
    // history, in order.
    let reads = store.executions_read();
    e.signal_workflow(signal_req("order-0", "pickedUp"))
        .await
        .unwrap();
    assert!(store.executions_read() > reads, "order-0 was read back");
    let task = poll_wft(&e).await;
    assert_eq!(
        task.workflow_execution.as_ref().unwrap().workflow_id,
        "order-0"
    );
    let h = task.history.clone().unwrap().events;
    assert_eq!(
        types(&h),
        [
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskCompleted,
            TimerStarted,
            WorkflowExecutionSignaled,
            WorkflowTaskScheduled,
            WorkflowTaskStarted
        ]
    );
    assert_contiguous(&h);
    complete(&e, &task, vec![]).await;

    // Every timer fires although its run is not in memory, and each run completes.
    clock.advance(Duration::from_secs(61));
    let mut done = Vec::new();
    for _ in 0..6 {
        let task = poll_wft(&e).await;
        let h = task.history.clone().unwrap().events;
        assert_eq!(types(&h)[0], WorkflowExecutionStarted);
        assert!(has(&h, TimerFired), "{:?}", types(&h));
        assert_contiguous(&h);
        complete(&e, &task, vec![complete_workflow()]).await;
        done.push(task.workflow_execution.unwrap().workflow_id);
    }
    done.sort();
    assert_eq!(
        done,
        (0..6).map(|i| format!("order-{i}")).collect::<Vec<_>>()
    );
    assert_no_wft(&e).await;
    for i in 0..6 {
        let h = history(&e, &format!("order-{i}")).await;
        assert_eq!(types(&h).last(), Some(&WorkflowExecutionCompleted));
        assert_eq!(events(&h, TimerFired).len(), 1);
        assert_contiguous(&h);
    }
    assert!(e.cached_runs() <= 2, "{} runs in memory", e.cached_runs());
}

#[tokio::test]
async fn a_restart_serves_before_reading_the_runs_due_soon_then_rearms_them_all() {
    const DELAYED: usize = 1_200;
    let (old, clock, store) = engine().await;
    // Runs waiting on a timer: a start delay, before their first workflow task.
    for i in 0..DELAYED {
        old.start_workflow(StartWorkflowExecutionRequest {
            workflow_start_delay: Some(pdur(Duration::from_secs(60))),
            ..start_req(&format!("delayed-{i}"))
        })
        .await
        .unwrap();
    }
    // One run waiting on a user timer, one on its first workflow task.
    start_workflow(&old, "timer").await;
    let task = poll_wft(&old).await;
    complete(&old, &task, vec![timer("t1", Duration::from_secs(30))]).await;
    start_workflow(&old, "queued").await;
    drop(old);

    // Start-up reads open runs a page at a time; hold it after the first page.
    store.allow_open_pages(Some(1));
    let e = start_with_cache(&store, &clock, 100).await;
    // The new engine answers at once, for runs it has not read yet too.
    let h = history(&e, &format!("delayed-{}", DELAYED - 1)).await;
    assert_eq!(types(&h), [WorkflowExecutionStarted]);
    e.signal_workflow(signal_req("timer", "early"))
        .await
        .unwrap();
    let (rearmed, finished) = e.recovery_progress();
    assert!(!finished, "start-up went on past its first page");
    assert!(rearmed <= 512, "{rearmed} runs re-armed");
    assert!(
        store.open_rows_read() <= 512,
        "{} read",
        store.open_rows_read()
    );

    store.allow_open_pages(None);
    e.recovered().await;
    assert_eq!(store.open_rows_read(), DELAYED as u64 + 2);
    assert!(e.cached_runs() <= 100, "{} runs in memory", e.cached_runs());

    // The queued task and the signal's task are dispatched; then every timer fires.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..2 {
        let task = poll_wft(&e).await;
        seen.insert(task.workflow_execution.clone().unwrap().workflow_id);
        complete(&e, &task, vec![]).await;
    }
    assert_eq!(seen, ["queued", "timer"].map(String::from).into());
    clock.advance(Duration::from_secs(61));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..DELAYED + 1 {
        let task = poll_wft(&e).await;
        let h = task.history.clone().unwrap().events;
        assert_contiguous(&h);
        let id = task.workflow_execution.clone().unwrap().workflow_id;
        if id == "timer" {
            assert!(has(&h, TimerFired), "{:?}", types(&h));
        }
        complete(&e, &task, vec![complete_workflow()]).await;
        assert!(seen.insert(id), "one task per run");
    }
    assert_eq!(seen.len(), DELAYED + 1);
    assert_no_wft(&e).await;
    assert!(e.cached_runs() <= 100, "{} runs in memory", e.cached_runs());
}

#[tokio::test]
async fn a_restart_reads_only_the_runs_due_soon_and_the_others_as_their_time_nears() {
    const FAR: usize = 300;
    const WAITING: usize = 200;
    let (old, clock, store) = engine().await;
    // Runs whose start is delayed by an hour: beyond the wake horizon.
    for i in 0..FAR {
        old.start_workflow(StartWorkflowExecutionRequest {
            workflow_start_delay: Some(pdur(Duration::from_secs(3600))),
            ..start_req(&format!("far-{i}"))
        })
        .await
        .unwrap();
    }
    // Runs that wait only on a signal: nothing but a request can wake them.
    let mut waiting = std::collections::HashSet::new();
    for i in 0..WAITING {
        waiting.insert(start_workflow(&old, &format!("waiting-{i}")).await);
        let task = poll_wft(&old).await;
        complete(&old, &task, vec![]).await;
    }
    // One run with a timer due soon.
    start_workflow(&old, "soon").await;
    let task = poll_wft(&old).await;
    complete(&old, &task, vec![timer("t1", Duration::from_secs(30))]).await;
    drop(old);

    let before = store.open_rows_read();
    let e = start_with_cache(&store, &clock, 100).await;
    e.recovered().await;
    assert_eq!(
        store.open_rows_read() - before,
        1,
        "start-up read only the run due soon"
    );
    clock.advance(Duration::from_secs(31));
    let task = poll_wft(&e).await;
    assert_eq!(task.workflow_execution.clone().unwrap().workflow_id, "soon");
    assert!(has(&task.history.clone().unwrap().events, TimerFired));
    complete(&e, &task, vec![complete_workflow()]).await;

    // As the hour passes, the loader reads the delayed runs when their time nears; each starts
    // once. The runs waiting on a signal are never read.
    for _ in 0..60 {
        clock.advance(Duration::from_secs(61));
        tokio::task::yield_now().await;
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..FAR {
        let task = poll_wft(&e).await;
        let id = task.workflow_execution.clone().unwrap().workflow_id;
        assert!(id.starts_with("far-"), "{id}");
        complete(&e, &task, vec![complete_workflow()]).await;
        assert!(seen.insert(id), "one task per run");
    }
    assert_no_wft(&e).await;
    // (The dropped engine's tasks read them too: count runs, not reads.)
    let woken = store.woken_runs();
    let read: std::collections::HashSet<_> = woken
        [woken.len() - (store.open_rows_read() - before) as usize..]
        .iter()
        .cloned()
        .collect();
    assert_eq!(read.len(), 1 + FAR, "the delayed runs and the one due soon");
    assert!(
        read.is_disjoint(&waiting),
        "no run waiting on a signal was read"
    );
    assert!(e.cached_runs() <= 100, "{} runs in memory", e.cached_runs());

    // A waiting run still answers its signal.
    e.signal_workflow(signal_req("waiting-7", "go"))
        .await
        .unwrap();
    let task = poll_wft(&e).await;
    assert_eq!(task.workflow_execution.unwrap().workflow_id, "waiting-7");
}

#[tokio::test]
async fn tasks_beyond_the_queued_limit_wait_in_the_store_and_are_all_delivered_once() {
    const RUNS: usize = 60;
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(t0());
    let e = Engine::start(
        store.clone(),
        Arc::new(clock.clone()),
        Config {
            owner: "test".into(),
            queued_task_limit: 10,
            ..Config::default()
        },
    )
    .await
    .unwrap();
    e.recovered().await;
    // No worker polls: every first workflow task would wait in memory.
    for i in 0..RUNS {
        start_workflow(&e, &format!("backlog-{i}")).await;
    }
    assert_eq!(e.queued_tasks(), 10, "only the limit is held in memory");
    // A worker drains the backlog; the rest is queued again from the store as it drains.
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < RUNS {
        let task = poll_wft(&e).await;
        assert!(e.queued_tasks() <= 10, "{} queued", e.queued_tasks());
        let id = task.workflow_execution.clone().unwrap().workflow_id;
        complete(&e, &task, vec![complete_workflow()]).await;
        assert!(seen.insert(id.clone()), "{id} delivered twice");
    }
    assert_no_wft(&e).await;
    for i in [0, RUNS / 2, RUNS - 1] {
        let h = history(&e, &format!("backlog-{i}")).await;
        assert_eq!(types(&h).last(), Some(&WorkflowExecutionCompleted));
        assert_eq!(events(&h, WorkflowTaskStarted).len(), 1);
    }
}

/// A timer beyond the window is left to the store; if its run's earlier timer keeps the run out
/// of the loader's windows until the later one's window has passed, the earlier one's firing
/// arms it.
#[tokio::test]
async fn a_timer_left_to_the_store_fires_on_time() {
    let (e, clock, _store) = engine().await;
    e.recovered().await;
    start_workflow(&e, "two").await;
    let task = poll_wft(&e).await;
    complete(
        &e,
        &task,
        vec![
            timer("t1", Duration::from_secs(200)),
            timer("t2", Duration::from_secs(400)),
        ],
    )
    .await;
    // Minute by minute, as the loader moves its window.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(61));
        tokio::task::yield_now().await;
    }
    assert_no_wft(&e).await;
    clock.advance(Duration::from_secs(20));
    let task = poll_wft(&e).await;
    assert_eq!(
        events(&task.history.clone().unwrap().events, TimerFired).len(),
        1
    );
    complete(&e, &task, vec![]).await;
    // At 386 s t2 (400 s) is not due yet; at 447 s it has fired.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(61));
        tokio::task::yield_now().await;
    }
    assert_no_wft(&e).await;
    clock.advance(Duration::from_secs(61));
    let task = poll_wft(&e).await;
    let h = task.history.clone().unwrap().events;
    assert_eq!(events(&h, TimerFired).len(), 2, "{:?}", types(&h));
    complete(&e, &task, vec![complete_workflow()]).await;
    assert_no_wft(&e).await;
}

#[tokio::test]
async fn a_running_workflow_list_entry_is_written_only_when_it_changes() {
    let (e, _, store) = engine().await;
    let ns_id = e.namespace("default").unwrap().id.clone();
    let entry = |store: &MemoryStore| {
        let q = perdure_core::store::conformance::everything(false);
        store
            .list_visibility(&ns_id, &q, 10, None)
            .unwrap()
            .into_iter()
            .map(|(info, _)| {
                perdure_proto::api::workflow::v1::WorkflowExecutionInfo::decode(info.as_slice())
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    start_workflow(&e, "listed").await;
    let written = store.visibility_rows_written();
    let task = poll_wft(&e).await;
    complete(&e, &task, vec![timer("t1", Duration::from_secs(60))]).await;
    for i in 0..3 {
        e.signal_workflow(signal_req("listed", &format!("s{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        store.visibility_rows_written(),
        written,
        "polls, completions and signals leave a running workflow's entry as it was"
    );
    let rows = entry(&store);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].history_length, 0,
        "as Temporal: no length while running"
    );

    // Closing it writes the entry with its final figures.
    let task = poll_wft(&e).await;
    complete(&e, &task, vec![complete_workflow()]).await;
    assert_eq!(store.visibility_rows_written(), written + 1);
    let h = history(&e, "listed").await;
    let rows = entry(&store);
    assert_eq!(rows[0].history_length, h.len() as i64);
    assert!(rows[0].close_time.is_some());
}
