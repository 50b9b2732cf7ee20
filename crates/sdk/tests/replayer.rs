//! The replayer and the history JSON mapping, on a history the Temporal dev server recorded for the
//! `food_delivery` example's `order` workflow (`tests/fixtures/order-history.json`, exported with
//! `temporal workflow show --output json`): it replays cleanly, changed code is reported as
//! nondeterministic naming the event, JSON round-trips, the older PascalCase enum form parses, and
//! bad input is a clear error.

#[allow(dead_code)]
#[path = "../../../examples/food-delivery/src/order.rs"]
mod order;

use std::time::Duration;

use order::{OrderRequest, OrderStatus};
use perdure_sdk::proto::enums::v1::EventType;
use perdure_sdk::proto::history::v1::History;
use perdure_sdk::proto::history::v1::history_event::Attributes as A;
use perdure_sdk::{
    ActivityOptions, ApplicationFailure, HistoryJsonError, ReplayError, Replayer, WfContext,
    WorkflowResult, history_from_json, history_to_json,
};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/order-history.json");

fn fixture() -> History {
    history_from_json(FIXTURE).expect("the fixture parses")
}

fn replayer_with<F, Fut>(f: F) -> Replayer
where
    F: Fn(WfContext, OrderRequest) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = WorkflowResult<OrderStatus>> + 'static,
{
    let mut r = Replayer::new();
    r.register_workflow("order", f);
    r
}

fn nondeterminism(r: Result<(), ReplayError>) -> String {
    match r {
        Err(ReplayError::Nondeterminism(m)) => m,
        other => panic!("expected a nondeterminism error, got {other:?}"),
    }
}

// --- Changed versions of `order` ---------------------------------------------------------------

/// Charges with another activity type.
async fn order_charge_card(ctx: WfContext, req: OrderRequest) -> WorkflowResult<OrderStatus> {
    let opts = ActivityOptions::start_to_close(Duration::from_secs(10));
    ctx.activity::<String>("chargeCard", (req.product_id,), opts)
        .await?;
    order::order(ctx, req).await
}

/// Waits a second before the original code.
async fn order_timer_first(ctx: WfContext, req: OrderRequest) -> WorkflowResult<OrderStatus> {
    ctx.sleep(Duration::from_secs(1)).await?;
    order::order(ctx, req).await
}

/// Also sends a notification, once charging has been scheduled.
async fn order_notify_too(ctx: WfContext, req: OrderRequest) -> WorkflowResult<OrderStatus> {
    let c = ctx.clone();
    let notify = async move {
        let opts = ActivityOptions::start_to_close(Duration::from_secs(10));
        c.activity::<()>("sendPushNotification", ("hi".to_string(),), opts)
            .await
    };
    let (out, _) = futures::join!(order::order(ctx, req), notify);
    out
}

/// Never finishes after the original code.
async fn order_then_wait(ctx: WfContext, req: OrderRequest) -> WorkflowResult<OrderStatus> {
    let out = order::order(ctx.clone(), req).await?;
    ctx.condition(|| false).await?;
    Ok(out)
}

/// Fails where the original completes.
async fn order_then_fail(ctx: WfContext, req: OrderRequest) -> WorkflowResult<OrderStatus> {
    order::order(ctx, req).await?;
    Err(ApplicationFailure::non_retryable("changed my mind").into())
}

// --- Replay ------------------------------------------------------------------------------------

#[test]
fn recorded_history_replays_against_order() {
    replayer_with(order::order)
        .replay_json(FIXTURE)
        .expect("the example's code matches its own history");
    // Also the history as parsed, and in a batch.
    let r = replayer_with(order::order);
    r.replay(&fixture()).unwrap();
    let results = r.replay_many([fixture(), fixture()]);
    assert_eq!(results.replayed, 2);
    assert!(results.is_ok(), "{results}");
}

#[test]
fn different_activity_is_nondeterministic() {
    let m = nondeterminism(replayer_with(order_charge_card).replay(&fixture()));
    assert!(
        m.contains("event 5 ACTIVITY_TASK_SCHEDULED (activity id 1, type chargeCustomer)"),
        "{m}"
    );
    assert!(
        m.contains("ScheduleActivityTask (activity id 1, type chargeCard)"),
        "{m}"
    );
}

#[test]
fn timer_instead_of_activity_is_nondeterministic() {
    let m = nondeterminism(replayer_with(order_timer_first).replay_json(FIXTURE));
    assert!(
        m.contains("event 5 ACTIVITY_TASK_SCHEDULED (activity id 1, type chargeCustomer)"),
        "{m}"
    );
    assert!(m.contains("StartTimer (timer id 1)"), "{m}");
}

#[test]
fn an_extra_command_is_nondeterministic() {
    // In the full history, the next workflow task shows the notification had no event.
    let m = nondeterminism(replayer_with(order_notify_too).replay(&fixture()));
    assert!(
        m.contains("ScheduleActivityTask (activity id 2, type sendPushNotification)"),
        "{m}"
    );
    assert!(m.contains("before event 9 WORKFLOW_TASK_STARTED"), "{m}");
    // In a history that ends right after the first task, the end of the history does.
    let mut open = fixture();
    open.events.truncate(5);
    let m = nondeterminism(replayer_with(order_notify_too).replay(&open));
    assert!(m.contains("by the end of the history (event 5)"), "{m}");
    assert!(m.contains("sendPushNotification"), "{m}");
}

#[test]
fn closed_history_needs_the_same_close() {
    let m = nondeterminism(replayer_with(order_then_wait).replay(&fixture()));
    assert!(
        m.contains("event 33 WORKFLOW_EXECUTION_COMPLETED but the workflow code issued no command"),
        "{m}"
    );
    let m = nondeterminism(replayer_with(order_then_fail).replay(&fixture()));
    assert!(
        m.contains("event 33 WORKFLOW_EXECUTION_COMPLETED but the workflow code issued FailWorkflowExecution"),
        "{m}"
    );
}

/// Every prefix of the history that a server could have recorded (command events are written
/// with their WorkflowTaskCompleted) is a history of a still-open run that the code matches.
#[test]
fn open_histories_replay() {
    let full = fixture();
    let is_command = |t: i32| {
        use EventType::*;
        matches!(
            EventType::try_from(t).unwrap(),
            ActivityTaskScheduled | TimerStarted | TimerCanceled | WorkflowExecutionCompleted
        )
    };
    let r = replayer_with(order::order);
    let mut checked = 0;
    for n in 1..full.events.len() {
        let last = full.events[n - 1].event_type;
        if last == EventType::WorkflowTaskCompleted as i32 || is_command(full.events[n].event_type)
        {
            continue;
        }
        let prefix = History {
            events: full.events[..n].to_vec(),
        };
        r.replay(&prefix)
            .unwrap_or_else(|e| panic!("prefix of {n} events: {e}"));
        checked += 1;
    }
    assert!(checked > 15, "{checked}");
}

#[test]
fn replay_many_says_which_failed() {
    let mut changed = fixture();
    match &mut changed.events[4].attributes {
        Some(A::ActivityTaskScheduledEventAttributes(a)) => {
            a.activity_type.as_mut().unwrap().name = "chargeCard".into();
        }
        other => panic!("event 5 is {other:?}"),
    }
    let histories = vec![fixture(), changed, fixture()];
    let results = replayer_with(order::order).replay_many(&histories);
    assert_eq!(results.replayed, 3);
    assert_eq!(results.failures.len(), 1, "{results}");
    let f = &results.failures[0];
    assert_eq!(f.index, 1);
    assert_eq!(f.workflow_id, "order-04425125-ea3f-479f-9a35-c64a12a3cbba");
    assert_eq!(f.run_id, "01a21217-2318-7e57-86a6-f2f08ca4dabb");
    assert!(f.error.is_nondeterminism(), "{:?}", f.error);
    let text = results.to_string();
    assert!(text.starts_with("1 of 3 histories failed"), "{text}");
    assert!(text.contains("type chargeCard"), "{text}");
    assert!(results.into_result().is_err());
}

#[test]
fn unknown_workflow_type_and_bad_histories() {
    let mut r = Replayer::new();
    r.register_workflow("other", order::order);
    match r.replay(&fixture()) {
        Err(ReplayError::UnknownWorkflowType {
            workflow_type,
            registered,
        }) => {
            assert_eq!(workflow_type, "order");
            assert_eq!(registered, vec!["other".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    let r = replayer_with(order::order);
    assert!(matches!(
        r.replay(&History::default()),
        Err(ReplayError::Other(_))
    ));
    let mut headless = fixture();
    headless.events.remove(0);
    let e = r.replay(&headless).unwrap_err();
    assert!(
        e.to_string().contains("not WorkflowExecutionStarted"),
        "{e}"
    );
    assert!(matches!(
        r.replay_json("{\"events\": 3}"),
        Err(ReplayError::Json(HistoryJsonError::Invalid(_)))
    ));
}

// --- JSON --------------------------------------------------------------------------------------

#[test]
fn fixture_parses_into_the_temporal_history() {
    let h = fixture();
    assert_eq!(h.events.len(), 33);
    let first = &h.events[0];
    assert_eq!(first.event_id, 1);
    assert_eq!(first.event_type, EventType::WorkflowExecutionStarted as i32);
    let Some(A::WorkflowExecutionStartedEventAttributes(a)) = &first.attributes else {
        panic!("{first:?}");
    };
    assert_eq!(a.workflow_type.as_ref().unwrap().name, "order");
    assert_eq!(a.workflow_task_timeout.as_ref().unwrap().seconds, 10);
    let input = &a.input.as_ref().unwrap().payloads[0];
    assert_eq!(input.metadata["encoding"], b"json/plain");
    assert_eq!(
        serde_json::from_slice::<Value>(&input.data).unwrap(),
        serde_json::json!({"pickupTimeoutMs": null, "productId": 3})
    );
    let t = first.event_time.as_ref().unwrap();
    assert_eq!((t.seconds, t.nanos), (1_795_599_835, 928_941_330));
}

#[test]
fn json_round_trip() {
    let h = fixture();
    let json = history_to_json(&h).unwrap();
    assert_eq!(history_from_json(&json).unwrap(), h);
    // What we print is what Temporal's CLI printed, byte for byte.
    assert_eq!(json.trim_end(), FIXTURE.trim_end());
    assert!(json.contains("\"eventType\": \"EVENT_TYPE_WORKFLOW_EXECUTION_STARTED\""));
    assert_eq!(history_to_json(&History::default()).unwrap(), "{}");
    assert_eq!(history_from_json("{}").unwrap(), History::default());
}

/// `WORKFLOW_EXECUTION_STARTED` -> `WorkflowExecutionStarted`.
fn pascal(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_string() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

/// Rewrites the fixture's enums into the older form: event types without their prefix, other
/// enum values with it.
fn old_style(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match x {
                    Value::String(s) if k == "eventType" => {
                        *s = pascal(s.trim_start_matches("EVENT_TYPE_"));
                    }
                    Value::String(s) if s.starts_with("TASK_QUEUE_KIND_") => *s = pascal(s),
                    _ => old_style(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(old_style),
        _ => {}
    }
}

#[test]
fn pascal_case_enums_parse() {
    let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
    old_style(&mut v);
    let text = v.to_string();
    assert!(
        text.contains("\"eventType\":\"WorkflowExecutionStarted\""),
        "{text}"
    );
    assert!(text.contains("\"kind\":\"TaskQueueKindNormal\""), "{text}");
    assert!(!text.contains("EVENT_TYPE_"));
    assert_eq!(history_from_json(&text).unwrap(), fixture());
    replayer_with(order::order).replay_json(&text).unwrap();
    // The prefix-less form of other enums too.
    let short = text.replace("TaskQueueKindNormal", "Normal");
    assert_eq!(history_from_json(&short).unwrap(), fixture());
}

#[test]
fn garbage_json_is_a_clear_error() {
    let err = |s: &str| history_from_json(s).unwrap_err().to_string();

    let e = history_from_json("this is not json").unwrap_err();
    assert!(matches!(e, HistoryJsonError::Syntax(_)), "{e:?}");
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    let e = err("\"a string\"");
    assert!(
        e.contains("expected an object with an \"events\" array, not a string"),
        "{e}"
    );
    let e = err("{\"events\": {}}");
    assert!(
        e.contains("\"events\" must be an array, not an object"),
        "{e}"
    );
    let e = err("[1]");
    assert!(e.contains("event at index 0 is a number"), "{e}");
    let e = err(r#"{"events": [{"eventId": "1", "eventType": "EVENT_TYPE_NO_SUCH_THING"}]}"#);
    assert!(
        e.contains("event 1 (index 0) has no known event type"),
        "{e}"
    );
    assert!(e.contains("EVENT_TYPE_NO_SUCH_THING"), "{e}");
    let e = err(r#"{"events": [{"eventId": "one", "eventType": "EVENT_TYPE_TIMER_FIRED"}]}"#);
    assert!(e.contains("event one (index 0)"), "{e}");
    let e = err(
        r#"{"events": [{"eventId": "7", "eventType": "EVENT_TYPE_TIMER_FIRED", "eventTime": "yesterday"}]}"#,
    );
    assert!(e.contains("event 7 (index 0)"), "{e}");
    // A truncated file.
    let e = history_from_json(&FIXTURE[..FIXTURE.len() / 2]).unwrap_err();
    assert!(matches!(e, HistoryJsonError::Syntax(_)), "{e:?}");
    // Fields this SDK does not know (a newer server) are ignored.
    let h = history_from_json(
        r#"{"events": [{"eventId": "1", "eventType": "EVENT_TYPE_TIMER_FIRED", "fromTheFuture": 1}]}"#,
    )
    .unwrap();
    assert_eq!(h.events[0].event_type, EventType::TimerFired as i32);
}
