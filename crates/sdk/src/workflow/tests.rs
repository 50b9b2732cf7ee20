//! Unit tests of the runtime on canned histories (built with [`HistoryBuilder`]), each scenario run both
//! incrementally (task by task, as with a sticky cache) and as one full replay.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;
use temporalio_protos::temporal::api::common::v1::{ActivityType, Payloads, WorkflowType};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes as EventAttributes;
use temporalio_protos::temporal::api::history::v1::*;

use super::instance::{Instance, ReplayError, WorkflowFn, erase};
use super::{ActivityOptions, WfContext, WorkflowResult};
use crate::payload::{ToPayloads, to_payload};

/// A small history builder.
struct HistoryBuilder {
    events: Vec<HistoryEvent>,
}

impl HistoryBuilder {
    fn new(workflow_type: &str) -> HistoryBuilder {
        let mut h = HistoryBuilder { events: Vec::new() };
        h.add(EventAttributes::WorkflowExecutionStartedEventAttributes(
            WorkflowExecutionStartedEventAttributes {
                workflow_type: Some(WorkflowType {
                    name: workflow_type.into(),
                }),
                first_execution_run_id: "run-1".into(),
                attempt: 1,
                ..Default::default()
            },
        ));
        h
    }

    fn add(&mut self, a: EventAttributes) -> i64 {
        use temporalio_protos::temporal::api::enums::v1::EventType as T;
        let t = match &a {
            EventAttributes::WorkflowExecutionStartedEventAttributes(_) => {
                T::WorkflowExecutionStarted
            }
            EventAttributes::WorkflowTaskScheduledEventAttributes(_) => T::WorkflowTaskScheduled,
            EventAttributes::WorkflowTaskStartedEventAttributes(_) => T::WorkflowTaskStarted,
            EventAttributes::WorkflowTaskCompletedEventAttributes(_) => T::WorkflowTaskCompleted,
            EventAttributes::ActivityTaskScheduledEventAttributes(_) => T::ActivityTaskScheduled,
            EventAttributes::ActivityTaskStartedEventAttributes(_) => T::ActivityTaskStarted,
            EventAttributes::ActivityTaskCompletedEventAttributes(_) => T::ActivityTaskCompleted,
            EventAttributes::TimerStartedEventAttributes(_) => T::TimerStarted,
            EventAttributes::TimerFiredEventAttributes(_) => T::TimerFired,
            EventAttributes::TimerCanceledEventAttributes(_) => T::TimerCanceled,
            EventAttributes::WorkflowExecutionSignaledEventAttributes(_) => {
                T::WorkflowExecutionSignaled
            }
            EventAttributes::WorkflowExecutionCompletedEventAttributes(_) => {
                T::WorkflowExecutionCompleted
            }
            other => panic!("builder does not know {other:?}"),
        };
        let id = self.events.len() as i64 + 1;
        self.events.push(HistoryEvent {
            event_id: id,
            event_type: t as i32,
            event_time: Some(prost_wkt_types::Timestamp {
                seconds: 1_800_000_000 + id,
                nanos: 0,
            }),
            attributes: Some(a),
            ..Default::default()
        });
        id
    }

    /// A workflow task that was started and completed.
    fn wft(&mut self) -> i64 {
        let s = self.wft_started();
        self.add(EventAttributes::WorkflowTaskCompletedEventAttributes(
            WorkflowTaskCompletedEventAttributes {
                scheduled_event_id: s - 1,
                started_event_id: s,
                ..Default::default()
            },
        ))
    }

    /// A workflow task that is started now (the current one).
    fn wft_started(&mut self) -> i64 {
        let sched = self.add(EventAttributes::WorkflowTaskScheduledEventAttributes(
            Default::default(),
        ));
        self.add(EventAttributes::WorkflowTaskStartedEventAttributes(
            WorkflowTaskStartedEventAttributes {
                scheduled_event_id: sched,
                ..Default::default()
            },
        ))
    }

    fn activity(&mut self, id: &str, ty: &str, wtc: i64) -> i64 {
        self.add(EventAttributes::ActivityTaskScheduledEventAttributes(
            ActivityTaskScheduledEventAttributes {
                activity_id: id.into(),
                activity_type: Some(ActivityType { name: ty.into() }),
                workflow_task_completed_event_id: wtc,
                ..Default::default()
            },
        ))
    }

    fn activity_done(&mut self, scheduled: i64, result: &str) {
        let started = self.add(EventAttributes::ActivityTaskStartedEventAttributes(
            ActivityTaskStartedEventAttributes {
                scheduled_event_id: scheduled,
                attempt: 1,
                ..Default::default()
            },
        ));
        self.add(EventAttributes::ActivityTaskCompletedEventAttributes(
            ActivityTaskCompletedEventAttributes {
                result: Some(Payloads {
                    payloads: vec![to_payload(result).unwrap()],
                }),
                scheduled_event_id: scheduled,
                started_event_id: started,
                ..Default::default()
            },
        ));
    }

    fn timer(&mut self, id: &str, wtc: i64) -> i64 {
        self.add(EventAttributes::TimerStartedEventAttributes(
            TimerStartedEventAttributes {
                timer_id: id.into(),
                workflow_task_completed_event_id: wtc,
                ..Default::default()
            },
        ))
    }

    fn timer_canceled(&mut self, id: &str, started: i64, wtc: i64) {
        self.add(EventAttributes::TimerCanceledEventAttributes(
            TimerCanceledEventAttributes {
                timer_id: id.into(),
                started_event_id: started,
                workflow_task_completed_event_id: wtc,
                ..Default::default()
            },
        ));
    }

    fn signal(&mut self, name: &str, arg: &str) {
        self.add(EventAttributes::WorkflowExecutionSignaledEventAttributes(
            WorkflowExecutionSignaledEventAttributes {
                signal_name: name.into(),
                input: Some((arg,).to_payloads().unwrap()),
                ..Default::default()
            },
        ));
    }

    fn complete(&mut self, result: &str, wtc: i64) {
        self.add(EventAttributes::WorkflowExecutionCompletedEventAttributes(
            WorkflowExecutionCompletedEventAttributes {
                result: Some(Payloads {
                    payloads: vec![to_payload(result).unwrap()],
                }),
                workflow_task_completed_event_id: wtc,
                ..Default::default()
            },
        ));
    }
}

fn instance(events: &[HistoryEvent], f: &WorkflowFn) -> Instance {
    Instance::new("default", "wf-1", "run-1", &events[0], f).unwrap()
}

/// Feeds a history task by task (each chunk ends at a WorkflowTaskStarted), checking that each
/// task's commands are what the history recorded right after it. Returns the final instance.
fn incremental(events: &[HistoryEvent], f: &WorkflowFn) -> Result<Instance, ReplayError> {
    let mut inst = instance(events, f);
    let mut start = 0;
    for (i, e) in events.iter().enumerate() {
        let is_started = e.event_type
            == temporalio_protos::temporal::api::enums::v1::EventType::WorkflowTaskStarted as i32;
        if is_started {
            let produced = inst.apply(&events[start..=i])?;
            assert!(produced.is_some(), "a live task yields commands");
            start = i + 1;
        }
    }
    inst.apply(&events[start..])?;
    Ok(inst)
}

fn full(events: &[HistoryEvent], f: &WorkflowFn) -> Result<Instance, ReplayError> {
    let mut inst = instance(events, f);
    inst.apply(events)?;
    Ok(inst)
}

/// activity "fetch" → condition on signal "go" with a 60 s timeout → complete with both.
async fn flow(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    let got = Rc::new(Cell::new(None::<String>));
    let g = got.clone();
    ctx.on_signal("go", move |v: String| g.set(Some(v)));
    let a: String = ctx
        .activity(
            "fetch",
            (),
            ActivityOptions::start_to_close(Duration::from_secs(5)),
        )
        .await?;
    let g = got.clone();
    let seen = ctx
        .condition_timeout(
            move || {
                let v = g.take();
                let some = v.is_some();
                g.set(v);
                some
            },
            Duration::from_secs(60),
        )
        .await?;
    let s = got.take().unwrap_or_default();
    ctx.on_query("q", move |_: ()| "answered".to_string());
    Ok(format!("{a}+{s}+{seen}"))
}

fn flow_history() -> HistoryBuilder {
    let mut h = HistoryBuilder::new("flow");
    let c1 = h.wft();
    let a = h.activity("1", "fetch", c1);
    h.activity_done(a, "data");
    let c2 = h.wft();
    let t = h.timer("1", c2);
    h.signal("go", "now");
    let c3 = h.wft();
    h.timer_canceled("1", t, c3);
    h.complete("data+now+true", c3);
    h
}

#[test]
fn completed_history_replays_both_ways() {
    let f = erase(flow);
    let h = flow_history();
    for mode in [incremental, full] {
        let inst = mode(&h.events, &f).expect("deterministic replay");
        assert_eq!(inst.last_event_id(), h.events.len() as i64);
        let answer = inst.query("q", None).unwrap();
        assert_eq!(answer.data, b"\"answered\"");
    }
}

#[test]
fn live_task_commands_follow_the_history() {
    let f = erase(flow);
    let mut h = HistoryBuilder::new("flow");
    h.wft_started();
    let mut inst = instance(&h.events, &f);
    let cmds = inst.apply(&h.events).unwrap().unwrap();
    assert_eq!(cmds.len(), 1);
    assert!(matches!(
        &cmds[0].attributes,
        Some(CommandAttributes::ScheduleActivityTaskCommandAttributes(a)) if a.activity_id == "1"
            && a.activity_type.as_ref().unwrap().name == "fetch"
    ));
    // The signal arrives in the same task as the activity result: no timer at all.
    let c1 = h.add(EventAttributes::WorkflowTaskCompletedEventAttributes(
        Default::default(),
    ));
    let a = h.activity("1", "fetch", c1);
    h.activity_done(a, "data");
    h.signal("go", "early");
    let from = inst.last_event_id() as usize;
    h.wft_started();
    let cmds = inst.apply(&h.events[from..]).unwrap().unwrap();
    assert_eq!(
        cmds.len(),
        1,
        "timer started and cancelled in one task is dropped: {cmds:?}"
    );
    match &cmds[0].attributes {
        Some(CommandAttributes::CompleteWorkflowExecutionCommandAttributes(c)) => {
            assert_eq!(
                c.result.as_ref().unwrap().payloads[0].data,
                b"\"data+early+true\""
            )
        }
        other => panic!("expected completion, got {other:?}"),
    }
}

#[test]
fn changed_code_is_nondeterministic_in_both_modes() {
    async fn changed(ctx: WfContext, _: ()) -> WorkflowResult<String> {
        // A timer where the history has the activity.
        ctx.sleep(Duration::from_secs(1)).await?;
        Ok(String::new())
    }
    let f = erase(changed);
    let h = flow_history();
    for mode in [incremental, full] {
        match mode(&h.events, &f) {
            Err(ReplayError::Nondeterminism(m)) => {
                assert!(m.contains("event 5 ACTIVITY_TASK_SCHEDULED"), "{m}");
                assert!(m.contains("StartTimer (timer id 1)"), "{m}");
            }
            other => panic!("expected nondeterminism, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn missing_command_is_nondeterministic() {
    async fn fewer(ctx: WfContext, _: ()) -> WorkflowResult<String> {
        let _: String = ctx
            .activity(
                "fetch",
                (),
                ActivityOptions::start_to_close(Duration::from_secs(5)),
            )
            .await?;
        // Never waits for the signal: completes where the history started a timer.
        Ok("x".into())
    }
    let f = erase(fewer);
    let h = flow_history();
    match full(&h.events, &f) {
        Err(ReplayError::Nondeterminism(m)) => assert!(m.contains("TIMER_STARTED"), "{m}"),
        other => panic!("expected nondeterminism, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn random_and_uuid_are_stable_across_replays() {
    async fn rnd(ctx: WfContext, _: ()) -> WorkflowResult<String> {
        Ok(format!("{}-{}", ctx.random_u64(), ctx.uuid4()))
    }
    let f = erase(rnd);
    let mut h = HistoryBuilder::new("rnd");
    h.wft_started();
    let a = instance(&h.events, &f).apply(&h.events).unwrap().unwrap();
    let b = instance(&h.events, &f).apply(&h.events).unwrap().unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_gap_in_the_history_is_an_error_not_a_panic() {
    let f = erase(flow);
    let h = flow_history();
    let mut inst = instance(&h.events, &f);
    let r = inst.apply(&h.events[4..]);
    assert!(matches!(r, Err(ReplayError::Other(m)) if m.contains("gap")));
}

async fn scoped(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    ctx.on_signal("stop", move |_: String| s.set(true));
    let (sctx, scope) = ctx.cancellation_scope();
    let act = sctx.activity::<String>(
        "a",
        (),
        ActivityOptions::start_to_close(Duration::from_secs(5)),
    );
    let timer = sctx.timer(Duration::from_secs(60));
    ctx.condition(move || stop.get()).await?;
    ctx.cancel_scope(&scope);
    let a = act.await;
    let fired = timer.await;
    let later = sctx.sleep(Duration::from_secs(1)).await;
    Ok(format!(
        "{} {fired} {}",
        matches!(a, Err(crate::failure::ActivityError::Cancelled { .. })),
        matches!(later, Err(super::WorkflowError::Cancelled))
    ))
}

#[test]
fn cancelling_a_scope_cancels_its_activities_and_timers() {
    let f = erase(scoped);
    let mut h = HistoryBuilder::new("scoped");
    h.wft_started();
    let mut inst = instance(&h.events, &f);
    let cmds = inst.apply(&h.events).unwrap().unwrap();
    assert_eq!(cmds.len(), 2, "activity and timer: {cmds:?}");
    let c1 = h.add(EventAttributes::WorkflowTaskCompletedEventAttributes(
        Default::default(),
    ));
    let a = h.activity("1", "a", c1);
    h.timer("1", c1);
    h.signal("stop", "now");
    let from = inst.last_event_id() as usize;
    h.wft_started();
    let cmds = inst.apply(&h.events[from..]).unwrap().unwrap();
    let kinds: Vec<_> = cmds
        .iter()
        .map(|c| match &c.attributes {
            Some(CommandAttributes::RequestCancelActivityTaskCommandAttributes(r)) => {
                assert_eq!(r.scheduled_event_id, a);
                "cancel activity".to_string()
            }
            Some(CommandAttributes::CancelTimerCommandAttributes(t)) => {
                format!("cancel timer {}", t.timer_id)
            }
            Some(CommandAttributes::CompleteWorkflowExecutionCommandAttributes(c)) => format!(
                "complete {}",
                String::from_utf8_lossy(&c.result.as_ref().unwrap().payloads[0].data)
            ),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "cancel activity".to_string(),
            "cancel timer 1".to_string(),
            "complete \"true false true\"".to_string()
        ]
    );
}
