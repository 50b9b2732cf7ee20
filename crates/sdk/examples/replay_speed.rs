//! Replay speed of [`perdure_sdk::Replayer`]: how many history events per second a full replay
//! gets through. It prints figures; it asserts nothing about time.
//!
//! ```sh
//! # a synthetic ~10,000-event history (1,818 steps: 909 activities and 909 timers), 9 runs:
//! cargo run --release -p perdure-sdk --example replay_speed
//! cargo run --release -p perdure-sdk --example replay_speed -- --steps 1818 --runs 9
//! # record the same workflow on a real server first, then replay what it recorded:
//! cargo run --release -p perdure-sdk --example replay_speed -- \
//!     --record 127.0.0.1:7233 --save /tmp/steps-history.json
//! # replay a history exported with `temporal workflow show --output json` (type "steps"):
//! cargo run --release -p perdure-sdk --example replay_speed -- --history /tmp/steps-history.json
//! ```
//!
//! The workflow `steps(n)` runs `n` steps one after the other: even steps call the activity
//! `step` (it returns its argument), odd steps sleep 1 ms. Each activity step is 6 events
//! (ActivityTaskScheduled/Started/Completed and the next workflow task's
//! Scheduled/Started/Completed), each timer step 5 (TimerStarted/Fired and a workflow task), so
//! 1,818 steps make 10,004 events with the start, the first task and the completion.
//!
//! The synthetic history is built here event by event, with the attributes a server records
//! (ids, event links, payloads, times). Every run replays it from the first event in a fresh
//! workflow instance through [`Replayer::replay`] (the proto is already decoded); the JSON line
//! also gives the speed of [`Replayer::replay_json`], which parses the proto3 JSON first.

use std::time::{Duration, Instant};

use perdure_sdk::payload::to_payload;
use perdure_sdk::proto::common::v1::{ActivityType, Payloads, WorkflowType};
use perdure_sdk::proto::enums::v1::EventType as T;
use perdure_sdk::proto::history::v1::history_event::Attributes as A;
use perdure_sdk::proto::history::v1::*;
use perdure_sdk::proto::taskqueue::v1::TaskQueue;
use perdure_sdk::{
    ActContext, ActivityOptions, ApplicationFailure, Client, ClientOptions, Replayer, StartOptions,
    ToPayloads, WfContext, Worker, WorkerOptions, WorkflowResult, history_to_json,
};

/// The replayed workflow: `n` steps, activities and timers in turn; returns the sum of the
/// activity results.
async fn steps(ctx: WfContext, n: u32) -> WorkflowResult<u64> {
    let opts = ActivityOptions::start_to_close(Duration::from_secs(10));
    let mut sum = 0u64;
    for i in 0..n {
        if i % 2 == 0 {
            sum += ctx.activity::<u64>("step", (i,), opts.clone()).await?;
        } else {
            ctx.sleep(Duration::from_millis(1)).await?;
        }
    }
    Ok(sum)
}

async fn step(_ctx: ActContext, i: u64) -> Result<u64, ApplicationFailure> {
    Ok(i)
}

/// Builds a history event by event, as a server would record it.
struct Builder {
    events: Vec<HistoryEvent>,
}

impl Builder {
    fn add(&mut self, t: T, a: A) -> i64 {
        let id = self.events.len() as i64 + 1;
        self.events.push(HistoryEvent {
            event_id: id,
            event_type: t as i32,
            event_time: Some(prost_wkt_types::Timestamp {
                seconds: 1_800_000_000 + id / 100,
                nanos: ((id % 100) * 10_000_000) as i32,
            }),
            version: 0,
            task_id: 1_048_576 + id,
            attributes: Some(a),
            ..Default::default()
        });
        id
    }

    /// A completed workflow task; returns its WorkflowTaskCompleted event id.
    fn wft(&mut self) -> i64 {
        let tq = Some(TaskQueue {
            name: "replay-speed".into(),
            kind: 1,
            normal_name: String::new(),
        });
        let s = self.add(
            T::WorkflowTaskScheduled,
            A::WorkflowTaskScheduledEventAttributes(WorkflowTaskScheduledEventAttributes {
                task_queue: tq,
                start_to_close_timeout: Some(prost_wkt_types::Duration {
                    seconds: 10,
                    nanos: 0,
                }),
                attempt: 1,
            }),
        );
        let st = self.add(
            T::WorkflowTaskStarted,
            A::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
                scheduled_event_id: s,
                identity: "1234@replay-speed".into(),
                request_id: format!("req-{s}"),
                ..Default::default()
            }),
        );
        self.add(
            T::WorkflowTaskCompleted,
            A::WorkflowTaskCompletedEventAttributes(WorkflowTaskCompletedEventAttributes {
                scheduled_event_id: s,
                started_event_id: st,
                identity: "1234@replay-speed".into(),
                ..Default::default()
            }),
        )
    }
}

fn payloads(v: impl ToPayloads) -> Option<Payloads> {
    Some(v.to_payloads().expect("encodable"))
}

/// The history of `steps(n)` run to completion.
fn synthetic_history(n: u32) -> History {
    let mut b = Builder { events: Vec::new() };
    b.add(
        T::WorkflowExecutionStarted,
        A::WorkflowExecutionStartedEventAttributes(WorkflowExecutionStartedEventAttributes {
            workflow_type: Some(WorkflowType {
                name: "steps".into(),
            }),
            task_queue: Some(TaskQueue {
                name: "replay-speed".into(),
                kind: 1,
                normal_name: String::new(),
            }),
            input: payloads((n,)),
            workflow_task_timeout: Some(prost_wkt_types::Duration {
                seconds: 10,
                nanos: 0,
            }),
            original_execution_run_id: "run-1".into(),
            first_execution_run_id: "run-1".into(),
            workflow_id: "steps-1".into(),
            attempt: 1,
            identity: "1234@replay-speed".into(),
            ..Default::default()
        }),
    );
    let mut wtc = b.wft();
    let (mut activity_seq, mut timer_seq, mut sum) = (1u32, 1u32, 0u64);
    for i in 0..n {
        if i % 2 == 0 {
            let s = b.add(
                T::ActivityTaskScheduled,
                A::ActivityTaskScheduledEventAttributes(ActivityTaskScheduledEventAttributes {
                    activity_id: activity_seq.to_string(),
                    activity_type: Some(ActivityType {
                        name: "step".into(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: "replay-speed".into(),
                        kind: 1,
                        normal_name: String::new(),
                    }),
                    input: payloads((i,)),
                    start_to_close_timeout: Some(prost_wkt_types::Duration {
                        seconds: 10,
                        nanos: 0,
                    }),
                    workflow_task_completed_event_id: wtc,
                    ..Default::default()
                }),
            );
            activity_seq += 1;
            let st = b.add(
                T::ActivityTaskStarted,
                A::ActivityTaskStartedEventAttributes(ActivityTaskStartedEventAttributes {
                    scheduled_event_id: s,
                    identity: "1234@replay-speed".into(),
                    request_id: format!("req-{s}"),
                    attempt: 1,
                    ..Default::default()
                }),
            );
            b.add(
                T::ActivityTaskCompleted,
                A::ActivityTaskCompletedEventAttributes(ActivityTaskCompletedEventAttributes {
                    result: Some(Payloads {
                        payloads: vec![to_payload(&u64::from(i)).expect("encodable")],
                    }),
                    scheduled_event_id: s,
                    started_event_id: st,
                    identity: "1234@replay-speed".into(),
                    ..Default::default()
                }),
            );
            sum += u64::from(i);
        } else {
            let s = b.add(
                T::TimerStarted,
                A::TimerStartedEventAttributes(TimerStartedEventAttributes {
                    timer_id: timer_seq.to_string(),
                    start_to_fire_timeout: Some(prost_wkt_types::Duration {
                        seconds: 0,
                        nanos: 1_000_000,
                    }),
                    workflow_task_completed_event_id: wtc,
                }),
            );
            b.add(
                T::TimerFired,
                A::TimerFiredEventAttributes(TimerFiredEventAttributes {
                    timer_id: timer_seq.to_string(),
                    started_event_id: s,
                }),
            );
            timer_seq += 1;
        }
        wtc = b.wft();
    }
    b.add(
        T::WorkflowExecutionCompleted,
        A::WorkflowExecutionCompletedEventAttributes(WorkflowExecutionCompletedEventAttributes {
            result: payloads((sum,)),
            workflow_task_completed_event_id: wtc,
            ..Default::default()
        }),
    );
    History { events: b.events }
}

/// Runs `steps(n)` on a worker against a real server and returns the history it recorded.
async fn record(address: &str, n: u32) -> Result<History, Box<dyn std::error::Error>> {
    let client = Client::connect(ClientOptions::new(address)).await?;
    let task_queue = format!("replay-speed-{}", uuid::Uuid::new_v4().simple());
    let mut worker = Worker::new(client.clone(), WorkerOptions::new(&task_queue));
    worker
        .register_workflow("steps", steps)
        .register_activity("step", step);
    let shutdown = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let id = format!("steps-{}", uuid::Uuid::new_v4().simple());
    let t0 = Instant::now();
    let handle = client
        .start_workflow("steps", (n,), StartOptions::new(&id, &task_queue))
        .await?;
    let sum: u64 = handle.result().await?;
    eprintln!(
        "recorded workflow {id} ({n} steps, result {sum}) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let events = handle.fetch_history().await?;
    shutdown.shutdown();
    running.await??;
    Ok(History { events })
}

fn usage() -> ! {
    eprintln!(
        "usage: replay_speed [--steps N] [--runs R] [--history FILE.json] \
         [--record HOST:PORT [--save FILE.json]]"
    );
    std::process::exit(2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut n, mut runs) = (1818u32, 9usize);
    let (mut history_file, mut record_at, mut save) = (None, None, None);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--steps" => n = val().parse().unwrap_or_else(|_| usage()),
            "--runs" => runs = val().parse().unwrap_or_else(|_| usage()),
            "--history" => history_file = Some(val()),
            "--record" => record_at = Some(val()),
            "--save" => save = Some(val()),
            _ => usage(),
        }
    }
    let runs = runs.max(1);

    let (history, source) = if let Some(path) = &history_file {
        let json = std::fs::read_to_string(path)?;
        (
            perdure_sdk::history_from_json(&json)?,
            format!("file {path}"),
        )
    } else if let Some(addr) = &record_at {
        let rt = tokio::runtime::Runtime::new()?;
        let h = rt.block_on(record(addr, n))?;
        (h, format!("recorded on {addr}, {n} steps"))
    } else {
        (synthetic_history(n), format!("synthetic, {n} steps"))
    };
    let json = history_to_json(&history)?;
    if let Some(path) = &save {
        std::fs::write(path, &json)?;
        eprintln!("saved the history to {path}");
    }
    let events = history.events.len();

    let mut replayer = Replayer::new();
    replayer.register_workflow("steps", steps);
    // One unmeasured run, which also checks that the history replays.
    replayer.replay(&history)?;

    let mut secs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        replayer.replay(&history)?;
        secs.push(t.elapsed().as_secs_f64());
    }
    let mut json_secs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        replayer.replay_json(&json)?;
        json_secs.push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (m, lo, hi) = {
        let m = median(&mut secs);
        (m, secs[0], secs[secs.len() - 1])
    };
    let mj = median(&mut json_secs);
    let rate = events as f64 / m;
    let rate_json = events as f64 / mj;
    println!("perdure-sdk replay speed ({source})");
    println!(
        "  history:       {events} events, {} bytes of JSON",
        json.len()
    );
    println!(
        "  replay:        median {:.2} ms over {runs} runs (min {:.2}, max {:.2}) = {:.0} events/s",
        m * 1e3,
        lo * 1e3,
        hi * 1e3,
        rate
    );
    println!(
        "  replay_json:   median {:.2} ms (JSON parse + replay) = {:.0} events/s",
        mj * 1e3,
        rate_json
    );
    println!(
        "{}",
        serde_json::json!({
            "source": source,
            "events": events,
            "runs": runs,
            "median_ms": (m * 1e5).round() / 100.0,
            "min_ms": (lo * 1e5).round() / 100.0,
            "max_ms": (hi * 1e5).round() / 100.0,
            "events_per_sec": rate.round(),
            "json_median_ms": (mj * 1e5).round() / 100.0,
            "json_events_per_sec": rate_json.round(),
        })
    );
    Ok(())
}
