//! ResetWorkflowExecution, driven by a hand-written worker over gRPC: refused reset points, the
//! reset of a running run (terminated, signals after the point reapplied) and of a completed one,
//! the state rebuilt from the copied events (an activity pending at the point is pending again),
//! request-id idempotency, and the new run continuing on a worker. Run with
//! `PERDURE_TEST_ADDRESS=127.0.0.1:7233` against Temporal's dev server to check the expectations.

use perdure_proto::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
    command::Attributes as CA,
};
use perdure_proto::api::common::v1::{ActivityType, WorkflowExecution};
use perdure_proto::api::enums::v1::{
    CommandType, EventType, WorkflowExecutionStatus, WorkflowTaskFailedCause,
};
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::Code;
use tonic::transport::Channel;

mod common;
use common::{server, start};

type Client = WorkflowServiceClient<Channel>;

fn uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn exec(id: &str, run: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: run.into(),
    })
}

fn queue(tq: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: tq.into(),
        ..Default::default()
    })
}

/// A long poll with a deadline (Temporal refuses one without).
fn with_timeout<T>(m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.set_timeout(std::time::Duration::from_secs(10));
    r
}

/// Polls the next workflow task of `tq`.
async fn poll(c: &mut Client, tq: &str) -> PollWorkflowTaskQueueResponse {
    for _ in 0..10 {
        let r = c
            .poll_workflow_task_queue(with_timeout(PollWorkflowTaskQueueRequest {
                namespace: "default".into(),
                task_queue: queue(tq),
                identity: "reset-test".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        if !r.task_token.is_empty() {
            return r;
        }
    }
    panic!("no workflow task on {tq}");
}

async fn complete(c: &mut Client, token: Vec<u8>, commands: Vec<Command>) {
    c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
        namespace: "default".into(),
        task_token: token,
        commands,
        identity: "reset-test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn schedule_activity(id: &str, tq: &str) -> Command {
    Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(CA::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: id.into(),
                activity_type: Some(ActivityType { name: "act".into() }),
                task_queue: queue(tq),
                start_to_close_timeout: Some(perdure_proto::prost_types::Duration {
                    seconds: 30,
                    nanos: 0,
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn complete_workflow() -> Command {
    Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(CA::CompleteWorkflowExecutionCommandAttributes(
            CompleteWorkflowExecutionCommandAttributes { result: None },
        )),
        ..Default::default()
    }
}

async fn signal(c: &mut Client, id: &str, name: &str) {
    c.signal_workflow_execution(SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: exec(id, ""),
        signal_name: name.into(),
        identity: "reset-test".into(),
        request_id: uid(),
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn history(c: &mut Client, id: &str, run: &str) -> Vec<HistoryEvent> {
    c.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
        namespace: "default".into(),
        execution: exec(id, run),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .history
    .unwrap_or_default()
    .events
}

fn types(h: &[HistoryEvent]) -> Vec<EventType> {
    h.iter()
        .map(|e| EventType::try_from(e.event_type).unwrap())
        .collect()
}

async fn reset(
    c: &mut Client,
    id: &str,
    run: &str,
    event_id: i64,
    request_id: &str,
) -> Result<String, tonic::Status> {
    c.reset_workflow_execution(ResetWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: exec(id, run),
        reason: "reset-test".into(),
        workflow_task_finish_event_id: event_id,
        request_id: request_id.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().run_id)
}

async fn describe(c: &mut Client, id: &str) -> DescribeWorkflowExecutionResponse {
    c.describe_workflow_execution(DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: exec(id, ""),
    })
    .await
    .unwrap()
    .into_inner()
}

/// Starts a run and completes its first workflow task with one activity:
/// 1 Started, 2 WFT Scheduled, 3 WFT Started, 4 WFT Completed, 5 ActivityTaskScheduled.
async fn started_with_activity(c: &mut Client, tq: &str) -> (String, String) {
    let id = format!("reset-{}", uid());
    let run = c
        .start_workflow_execution(start(&id, "resettable", tq))
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let t = poll(c, tq).await;
    complete(c, t.task_token, vec![schedule_activity("a1", tq)]).await;
    (id, run)
}

#[tokio::test]
async fn reset_points_must_end_a_workflow_task() {
    let mut c = server().await;
    let tq = format!("reset-{}", uid());
    let (id, run) = started_with_activity(&mut c, &tq).await;
    for (n, msg) in [
        (5, "StateRebuilder unable to Rebuild mutable state to event ID: 4, version: 0, this event must be at the boundary".to_string()),
        (2, "StateRebuilder unable to Rebuild mutable state to event ID: 1, version: 0, this event must be at the boundary".to_string()),
        (1, "Workflow task finish ID must be > 1 && <= workflow last event ID.".to_string()),
        (0, "Workflow task finish ID must be > 1 && <= workflow last event ID.".to_string()),
        (99, "Workflow task finish ID must be > 1 && <= workflow last event ID.".to_string()),
    ] {
        let e = reset(&mut c, &id, &run, n, &uid()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "event {n}: {e:?}");
        assert_eq!(e.message(), msg, "event {n}");
    }
    let e = reset(&mut c, &format!("missing-{}", uid()), "", 4, &uid())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // Nothing changed.
    assert_eq!(history(&mut c, &id, "").await.len(), 5);
}

#[tokio::test]
async fn resetting_a_running_workflow_terminates_it_and_reapplies_later_signals() {
    let mut c = server().await;
    let tq = format!("reset-{}", uid());
    let (id, base) = started_with_activity(&mut c, &tq).await;
    signal(&mut c, &id, "after").await; // 6 Signaled, 7 WFT Scheduled
    let request_id = uid();
    let new_run = reset(&mut c, &id, "", 4, &request_id).await.unwrap();
    assert_ne!(new_run, base);
    // Like Temporal, the request id does not deduplicate: the same request resets again.
    let again = reset(&mut c, &id, &base, 4, &request_id).await.unwrap();
    assert_ne!(again, new_run);
    let new_run = again;

    let old = history(&mut c, &id, &base).await;
    let last = old.last().unwrap();
    assert_eq!(
        EventType::try_from(last.event_type).unwrap(),
        EventType::WorkflowExecutionTerminated
    );
    let Some(A::WorkflowExecutionTerminatedEventAttributes(t)) = &last.attributes else {
        panic!("{last:?}")
    };
    assert_eq!(t.reason, "reset-test");
    assert_eq!(t.identity, "history-resetter");

    let h = history(&mut c, &id, &new_run).await;
    assert_eq!(
        types(&h),
        [
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted,
            EventType::WorkflowTaskFailed,
            EventType::WorkflowExecutionSignaled,
            EventType::WorkflowTaskScheduled,
        ]
    );
    assert_eq!(h[0], old[0], "the copied events are the base run's");
    assert_eq!(h[2], old[2]);
    let Some(A::WorkflowTaskFailedEventAttributes(f)) = &h[3].attributes else {
        panic!("{:?}", h[3])
    };
    assert_eq!(f.cause, WorkflowTaskFailedCause::ResetWorkflow as i32);
    assert_eq!((f.scheduled_event_id, f.started_event_id), (2, 3));
    assert_eq!(f.base_run_id, base);
    assert_eq!(f.new_run_id, new_run);
    assert_eq!(f.identity, "history-service");
    assert_eq!(f.failure.as_ref().unwrap().message, "reset-test");
    let Some(A::WorkflowExecutionSignaledEventAttributes(s)) = &h[4].attributes else {
        panic!("{:?}", h[4])
    };
    assert_eq!(s.signal_name, "after");

    // The new run is current, runs, keeps the chain's first run, and has no pending activity
    // (it was scheduled after the point).
    let d = describe(&mut c, &id).await;
    let info = d.workflow_execution_info.unwrap();
    assert_eq!(info.execution.unwrap().run_id, new_run);
    assert_eq!(info.status, WorkflowExecutionStatus::Running as i32);
    assert_eq!(info.first_run_id, base);
    assert!(d.pending_activities.is_empty());

    // A worker picks it up with the whole new history and can finish it.
    let t = poll(&mut c, &tq).await;
    assert_eq!(t.workflow_execution.unwrap().run_id, new_run);
    assert_eq!(t.previous_started_event_id, 0);
    assert_eq!(
        t.history.unwrap().events.len(),
        7,
        "the six events and the task's started"
    );
    complete(&mut c, t.task_token, vec![complete_workflow()]).await;
    let info = describe(&mut c, &id).await.workflow_execution_info.unwrap();
    assert_eq!(info.status, WorkflowExecutionStatus::Completed as i32);
}

#[tokio::test]
async fn the_new_run_state_is_rebuilt_from_the_copied_events() {
    let mut c = server().await;
    let tq = format!("reset-{}", uid());
    let (id, base) = started_with_activity(&mut c, &tq).await;
    signal(&mut c, &id, "before").await; // 6 Signaled, 7 WFT Scheduled
    let t = poll(&mut c, &tq).await; // 8 WFT Started
    complete(&mut c, t.task_token, vec![]).await; // 9 WFT Completed
    let new_run = reset(&mut c, &id, &base, 9, &uid()).await.unwrap();
    let h = history(&mut c, &id, &new_run).await;
    assert_eq!(h.len(), 10, "{:?}", types(&h));
    assert_eq!(
        types(&h)[7..],
        [
            EventType::WorkflowTaskStarted,
            EventType::WorkflowTaskFailed,
            EventType::WorkflowTaskScheduled,
        ]
    );
    // The activity scheduled before the point is pending again and can be taken.
    let d = describe(&mut c, &id).await;
    assert_eq!(d.pending_activities.len(), 1);
    assert_eq!(d.pending_activities[0].activity_id, "a1");
    let a = c
        .poll_activity_task_queue(with_timeout(PollActivityTaskQueueRequest {
            namespace: "default".into(),
            task_queue: queue(&tq),
            identity: "reset-test".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.workflow_execution.unwrap().run_id, new_run);
    assert_eq!(a.activity_id, "a1");
    // The worker sees the last completed task before the point.
    let t = poll(&mut c, &tq).await;
    assert_eq!(t.workflow_execution.unwrap().run_id, new_run);
    assert_eq!(t.previous_started_event_id, 3);
}

#[tokio::test]
async fn resetting_a_completed_workflow_starts_a_new_current_run() {
    let mut c = server().await;
    let tq = format!("reset-{}", uid());
    let id = format!("reset-{}", uid());
    let base = c
        .start_workflow_execution(start(&id, "resettable", &tq))
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let t = poll(&mut c, &tq).await;
    complete(&mut c, t.task_token, vec![complete_workflow()]).await;
    let info = describe(&mut c, &id).await.workflow_execution_info.unwrap();
    assert_eq!(info.status, WorkflowExecutionStatus::Completed as i32);

    // Reset to the workflow task's started event: the task is failed right there.
    let new_run = reset(&mut c, &id, "", 3, &uid()).await.unwrap();
    let h = history(&mut c, &id, &new_run).await;
    assert_eq!(
        types(&h),
        [
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted,
            EventType::WorkflowTaskFailed,
            EventType::WorkflowTaskScheduled,
        ]
    );
    let Some(A::WorkflowTaskStartedEventAttributes(s)) = &h[2].attributes else {
        panic!("{:?}", h[2])
    };
    assert_eq!(s.scheduled_event_id, 2);
    assert_eq!(s.identity, "history-service");
    // The base run is untouched.
    let old = history(&mut c, &id, &base).await;
    assert_eq!(
        EventType::try_from(old.last().unwrap().event_type).unwrap(),
        EventType::WorkflowExecutionCompleted
    );
    let info = describe(&mut c, &id).await.workflow_execution_info.unwrap();
    assert_eq!(info.execution.unwrap().run_id, new_run);
    assert_eq!(info.status, WorkflowExecutionStatus::Running as i32);

    let t = poll(&mut c, &tq).await;
    complete(&mut c, t.task_token, vec![complete_workflow()]).await;
    let info = describe(&mut c, &id).await.workflow_execution_info.unwrap();
    assert_eq!(info.status, WorkflowExecutionStatus::Completed as i32);
}
