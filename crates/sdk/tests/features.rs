//! Runtime features on a real server (Perdure in-process, or Temporal's dev server with
//! `PERDURE_TEST_TARGET=temporal`): child workflows, side effects, patches, heartbeats with details
//! across attempts, activity cancellation and workflow cancellation.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use perdure_sdk::proto::enums::v1::EventType;
use perdure_sdk::workflow::ChildOptions;
use perdure_sdk::{
    ActContext, ActivityCancellation, ActivityError, ActivityOptions, ApplicationFailure, Client,
    ClientError, ClientOptions, RetryPolicy, StartOptions, WfContext, Worker, WorkerOptions,
    WorkflowError, WorkflowResult,
};

fn run_worker(client: &Client, options: WorkerOptions, setup: impl FnOnce(&mut Worker)) -> Stop {
    let mut w = Worker::new(client.clone(), options);
    setup(&mut w);
    let h = w.shutdown_handle();
    Stop(h, tokio::spawn(w.run()))
}

struct Stop(
    perdure_sdk::ShutdownHandle,
    tokio::task::JoinHandle<Result<(), ClientError>>,
);

impl Stop {
    async fn stop(self) {
        self.0.shutdown();
        self.1.await.unwrap().unwrap();
    }
}

async fn double(_ctx: WfContext, x: i64) -> WorkflowResult<i64> {
    if x < 0 {
        return Err(ApplicationFailure::non_retryable("negative").into());
    }
    Ok(x * 2)
}

async fn parent(ctx: WfContext, x: i64) -> WorkflowResult<String> {
    let ok: i64 = ctx
        .child_workflow("double", (x,), ChildOptions::default())
        .await?;
    let failed = ctx
        .child_workflow::<i64>("double", (-1,), ChildOptions::default())
        .await;
    match failed {
        Err(e @ ActivityError::Failed { .. }) => Ok(format!("{ok} {}", e.root_message())),
        other => Err(ApplicationFailure::non_retryable(format!("unexpected {other:?}")).into()),
    }
}

static SIDE_EFFECT_RUNS: AtomicU64 = AtomicU64::new(0);

async fn side(ctx: WfContext, _: ()) -> WorkflowResult<u64> {
    let v = ctx.side_effect(|| SIDE_EFFECT_RUNS.fetch_add(1, Ordering::SeqCst) + 100)?;
    ctx.sleep(Duration::from_millis(200)).await?;
    ctx.sleep(Duration::from_millis(200)).await?;
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_and_side_effects() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-children");
    // No cache: every task replays, so a side effect re-run would show.
    let w = run_worker(
        &client,
        WorkerOptions {
            max_cached_workflows: 0,
            ..WorkerOptions::new(&tq)
        },
        |w| {
            w.register_workflow("parent", parent)
                .register_workflow("double", double)
                .register_workflow("side", side);
        },
    );
    let r: String = client
        .execute_workflow("parent", (21,), StartOptions::new(uid("parent"), &tq))
        .await
        .unwrap();
    assert_eq!(r, "42 negative");

    let before = SIDE_EFFECT_RUNS.load(Ordering::SeqCst);
    let h = client
        .start_workflow("side", (), StartOptions::new(uid("side"), &tq))
        .await
        .unwrap();
    let v: u64 = h.result().await.unwrap();
    assert_eq!(v, before + 100);
    assert_eq!(
        SIDE_EFFECT_RUNS.load(Ordering::SeqCst),
        before + 1,
        "replays used the recorded value"
    );
    let markers = h
        .fetch_history()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == EventType::MarkerRecorded as i32)
        .count();
    assert_eq!(markers, 1);
    w.stop().await;
}

async fn before_patch(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    let go = std::rc::Rc::new(std::cell::Cell::new(false));
    let g = go.clone();
    ctx.on_signal("go", move |_: ()| g.set(true));
    ctx.sleep(Duration::from_millis(10)).await?;
    ctx.condition(move || go.get()).await?;
    Ok("old".into())
}

async fn after_patch(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    let go = std::rc::Rc::new(std::cell::Cell::new(false));
    let g = go.clone();
    ctx.on_signal("go", move |_: ()| g.set(true));
    let new = ctx.patched("skip-sleep");
    if !new {
        ctx.sleep(Duration::from_millis(10)).await?;
    }
    ctx.condition(move || go.get()).await?;
    Ok(if new { "new" } else { "old" }.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patched_code_keeps_old_runs_on_the_old_path() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-patch");
    let old = run_worker(&client, WorkerOptions::new(&tq), |w| {
        w.register_workflow("patchy", before_patch);
    });
    let h_old = client
        .start_workflow("patchy", (), StartOptions::new(uid("patch-old"), &tq))
        .await
        .unwrap();
    eventually(30, "the old run past its timer", || async {
        h_old
            .fetch_history()
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event_type == EventType::WorkflowTaskCompleted as i32)
            .count()
            == 2
    })
    .await;
    old.stop().await;

    let new = run_worker(&client, WorkerOptions::new(&tq), |w| {
        w.register_workflow("patchy", after_patch);
    });
    h_old.signal("go", ()).await.unwrap();
    assert_eq!(h_old.result::<String>().await.unwrap(), "old");
    let h_new = client
        .start_workflow("patchy", (), StartOptions::new(uid("patch-new"), &tq))
        .await
        .unwrap();
    h_new.signal("go", ()).await.unwrap();
    assert_eq!(h_new.result::<String>().await.unwrap(), "new");
    let history = h_new.fetch_history().await.unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.event_type == EventType::MarkerRecorded as i32)
    );
    assert!(
        !history
            .iter()
            .any(|e| e.event_type == EventType::TimerStarted as i32)
    );
    new.stop().await;
}

async fn resumable(ctx: ActContext, n: u32) -> Result<String, ApplicationFailure> {
    let start: u32 = ctx.heartbeat_details().unwrap_or(0);
    for i in start..n {
        ctx.heartbeat((i + 1,));
        tokio::time::sleep(Duration::from_millis(50)).await;
        if ctx.info().attempt == 1 && i + 1 == 3 {
            // Give the throttled heartbeat time to reach the server, then fail.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            return Err(ApplicationFailure::new("crashed mid-way"));
        }
    }
    Ok(format!(
        "attempt {} resumed from {start}",
        ctx.info().attempt
    ))
}

async fn until_cancelled(ctx: ActContext, _: ()) -> Result<String, ApplicationFailure> {
    loop {
        ctx.heartbeat(());
        tokio::select! {
            _ = ctx.cancelled() => return Err(ApplicationFailure::new("cancelled")),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

async fn acts(ctx: WfContext, which: String) -> WorkflowResult<String> {
    let retry = RetryPolicy {
        initial_interval: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    match which.as_str() {
        "heartbeat" => {
            let o = ActivityOptions::start_to_close(Duration::from_secs(20))
                .heartbeat(Duration::from_secs(1))
                .retry(retry);
            Ok(ctx.activity::<String>("resumable", (6,), o).await?)
        }
        "cancel" => {
            let o = ActivityOptions {
                cancellation: ActivityCancellation::WaitCancellationCompleted,
                ..ActivityOptions::start_to_close(Duration::from_secs(30))
                    .heartbeat(Duration::from_secs(2))
            };
            let h = ctx.activity::<String>("untilCancelled", (), o);
            ctx.sleep(Duration::from_millis(500)).await?;
            h.cancel();
            match h.await {
                Err(ActivityError::Cancelled { .. }) => Ok("activity cancelled".into()),
                other => Ok(format!("unexpected {other:?}")),
            }
        }
        _ => {
            // Waits to be cancelled, then cleans up and ends as cancelled.
            let r = ctx.sleep(Duration::from_secs(60)).await;
            assert!(matches!(r, Err(WorkflowError::Cancelled)));
            Err(WorkflowError::Cancelled)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_cancellation() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-acts");
    let w = run_worker(&client, WorkerOptions::new(&tq), |w| {
        w.register_workflow("acts", acts)
            .register_activity("resumable", resumable)
            .register_activity("untilCancelled", until_cancelled);
    });
    let r: String = client
        .execute_workflow("acts", ("heartbeat",), StartOptions::new(uid("hb"), &tq))
        .await
        .unwrap();
    assert_eq!(r, "attempt 2 resumed from 3");

    let h = client
        .start_workflow(
            "acts",
            ("cancel",),
            StartOptions::new(uid("cancel-act"), &tq),
        )
        .await
        .unwrap();
    assert_eq!(h.result::<String>().await.unwrap(), "activity cancelled");
    let history = h.fetch_history().await.unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.event_type == EventType::ActivityTaskCanceled as i32),
        "the activity acknowledged the cancellation"
    );

    let h = client
        .start_workflow("acts", ("wait",), StartOptions::new(uid("cancel-wf"), &tq))
        .await
        .unwrap();
    eventually(30, "the timer", || async {
        h.fetch_history()
            .await
            .unwrap()
            .iter()
            .any(|e| e.event_type == EventType::TimerStarted as i32)
    })
    .await;
    h.cancel("stop").await.unwrap();
    assert!(matches!(
        h.result::<String>().await,
        Err(ClientError::WorkflowCanceled)
    ));
    w.stop().await;
}

async fn updatable(ctx: WfContext, _: ()) -> WorkflowResult<i64> {
    use std::cell::Cell;
    use std::rc::Rc;
    let total = Rc::new(Cell::new(0i64));
    let done = Rc::new(Cell::new(false));
    let t = total.clone();
    ctx.on_update_validated(
        "add",
        |n: &i64| {
            if *n < 0 {
                Err(format!("cannot add {n}"))
            } else {
                Ok(())
            }
        },
        move |n: i64| {
            let t = t.clone();
            async move {
                t.set(t.get() + n);
                Ok(t.get())
            }
        },
    );
    let c = ctx.clone();
    ctx.on_update("slow", move |ms: u64| {
        let c = c.clone();
        async move {
            c.sleep(Duration::from_millis(ms))
                .await
                .map_err(|e| ApplicationFailure::new(e.to_string()))?;
            Ok("slept".to_string())
        }
    });
    let d = done.clone();
    ctx.on_update("finish", move |_: ()| {
        d.set(true);
        async { Ok("bye".to_string()) }
    });
    ctx.condition(move || done.get()).await?;
    Ok(total.get())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_with_validation_and_async_handlers() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-updates");
    // No cache: every task replays accepted updates from their events.
    // No cache: every task replays the accepted updates from their events.
    let w = run_worker(
        &client,
        WorkerOptions {
            max_cached_workflows: 0,
            ..WorkerOptions::new(&tq)
        },
        |w| {
            w.register_workflow("updatable", updatable);
        },
    );
    let h = client
        .start_workflow("updatable", (), StartOptions::new(uid("upd"), &tq))
        .await
        .unwrap();
    assert_eq!(h.update::<i64>("add", (5,)).await.unwrap(), 5);
    assert_eq!(h.update::<i64>("add", (2,)).await.unwrap(), 7);
    match h.update::<i64>("add", (-1,)).await {
        Err(e @ ClientError::UpdateFailed { .. }) => {
            assert!(e.to_string().contains("cannot add -1"), "{e}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(h.update::<String>("slow", (100,)).await.unwrap(), "slept");
    match h.update::<i64>("nope", ()).await {
        Err(ClientError::UpdateFailed { .. }) => {}
        other => panic!("expected a rejection of an unknown update, got {other:?}"),
    }
    assert_eq!(h.update::<String>("finish", ()).await.unwrap(), "bye");
    assert_eq!(h.result::<i64>().await.unwrap(), 7);
    let history = h.fetch_history().await.unwrap();
    let accepted = history
        .iter()
        .filter(|e| e.event_type == EventType::WorkflowExecutionUpdateAccepted as i32)
        .count();
    assert_eq!(accepted, 4, "rejected updates leave no events");
    w.stop().await;
}

async fn waits_for_go(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    let got = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
    let g = got.clone();
    ctx.on_signal("go", move |who: String| *g.borrow_mut() = Some(who));
    let g = got.clone();
    ctx.condition(move || g.borrow().is_some()).await?;
    let who = got.borrow().clone().unwrap_or_default();
    Ok(format!("go from {who}"))
}

async fn sleeps(ctx: WfContext, _: ()) -> WorkflowResult<()> {
    ctx.sleep(Duration::from_secs(60)).await
}

async fn messenger(ctx: WfContext, (target, victim): (String, String)) -> WorkflowResult<String> {
    let missing = ctx
        .signal_external("no-such-workflow", None, "go", ("x",))
        .await;
    ctx.signal_external(&target, None, "go", ("messenger",))
        .await
        .map_err(ApplicationFailure::new)?;
    ctx.cancel_external(&victim, None, "not needed")
        .await
        .map_err(ApplicationFailure::new)?;
    Ok(format!("{missing:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_and_cancel_other_workflows() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-external");
    let w = run_worker(&client, WorkerOptions::new(&tq), |w| {
        w.register_workflow("waitsForGo", waits_for_go)
            .register_workflow("sleeps", sleeps)
            .register_workflow("messenger", messenger);
    });
    let target = client
        .start_workflow("waitsForGo", (), StartOptions::new(uid("target"), &tq))
        .await
        .unwrap();
    let victim = client
        .start_workflow("sleeps", (), StartOptions::new(uid("victim"), &tq))
        .await
        .unwrap();
    let r: String = client
        .execute_workflow(
            "messenger",
            ((
                target.workflow_id().to_string(),
                victim.workflow_id().to_string(),
            ),),
            StartOptions::new(uid("messenger"), &tq),
        )
        .await
        .unwrap();
    assert_eq!(r, "Err(\"the external workflow was not found\")");
    assert_eq!(
        target.result::<String>().await.unwrap(),
        "go from messenger"
    );
    assert!(matches!(
        victim.result::<()>().await,
        Err(ClientError::WorkflowCanceled)
    ));
    w.stop().await;
}

async fn panics_once(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    ctx.sleep(Duration::from_millis(10)).await?;
    if !PANICKED.swap(true, Ordering::SeqCst) {
        panic!("bug in workflow code");
    }
    Ok("recovered".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_workflow_fails_its_task_and_the_worker_survives() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-panic");
    let w = run_worker(&client, WorkerOptions::new(&tq), |w| {
        w.register_workflow("panicsOnce", panics_once);
    });
    let h = client
        .start_workflow("panicsOnce", (), StartOptions::new(uid("panic"), &tq))
        .await
        .unwrap();
    // The failed task is retried by the server (after its task timeout) and then succeeds.
    let r = tokio::time::timeout(Duration::from_secs(30), h.result::<String>())
        .await
        .expect("the workflow recovers")
        .unwrap();
    assert_eq!(r, "recovered");
    let failed = h
        .fetch_history()
        .await
        .unwrap()
        .into_iter()
        .find_map(|e| match e.attributes {
            Some(perdure_sdk::proto::history::v1::history_event::Attributes::WorkflowTaskFailedEventAttributes(f)) => f.failure,
            _ => None,
        })
        .expect("a failed workflow task");
    assert!(
        failed.message.contains("bug in workflow code"),
        "{}",
        failed.message
    );
    w.stop().await;
}

static SLOW_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn slow(_ctx: ActContext, ms: u64) -> Result<String, ApplicationFailure> {
    SLOW_STARTED.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok("finished".into())
}

async fn one_slow_activity(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    Ok(ctx
        .activity::<String>(
            "slow",
            (1500,),
            ActivityOptions::start_to_close(Duration::from_secs(30)),
        )
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_running_activities() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-shutdown");
    let setup = |w: &mut Worker| {
        w.register_workflow("oneSlowActivity", one_slow_activity)
            .register_activity("slow", slow);
    };
    let first = run_worker(&client, WorkerOptions::new(&tq), setup);
    let h = client
        .start_workflow(
            "oneSlowActivity",
            (),
            StartOptions::new(uid("shutdown"), &tq),
        )
        .await
        .unwrap();
    eventually(30, "the activity to run", || async {
        SLOW_STARTED.load(Ordering::SeqCst)
    })
    .await;
    first.stop().await; // returns only after the running activity reported its result
    let completed = h
        .fetch_history()
        .await
        .unwrap()
        .iter()
        .any(|e| e.event_type == EventType::ActivityTaskCompleted as i32);
    assert!(
        completed,
        "the in-flight activity completed before shutdown returned"
    );
    let second = run_worker(&client, WorkerOptions::new(&tq), setup);
    assert_eq!(h.result::<String>().await.unwrap(), "finished");
    second.stop().await;
}

async fn counts_up(ctx: WfContext, n: u32) -> WorkflowResult<String> {
    if n < 3 {
        ctx.sleep(Duration::from_millis(10)).await?;
        return Err(ctx.continue_as_new((n + 1,)));
    }
    let info = ctx.info();
    Ok(format!(
        "{n} continued from {}",
        !info.continued_run_id.is_empty()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_as_new_chains_runs() {
    let server = server().await;
    let client = Client::connect(ClientOptions::new(&server.address))
        .await
        .unwrap();
    let tq = uid("rust-can");
    let w = run_worker(&client, WorkerOptions::new(&tq), |w| {
        w.register_workflow("countsUp", counts_up);
    });
    let h = client
        .start_workflow("countsUp", (0,), StartOptions::new(uid("can"), &tq))
        .await
        .unwrap();
    assert_eq!(h.result::<String>().await.unwrap(), "3 continued from true");
    let first = client.workflow_handle(
        h.workflow_id(),
        h.first_execution_run_id().map(String::from),
    );
    let last = first.fetch_history().await.unwrap().pop().unwrap();
    assert_eq!(
        last.event_type,
        EventType::WorkflowExecutionContinuedAsNew as i32
    );
    eventually(20, "four runs in list()", || async {
        client
            .count_workflows(&format!("WorkflowId = '{}'", h.workflow_id()))
            .await
            .unwrap()
            .count
            == 4
    })
    .await;
    w.stop().await;
}
