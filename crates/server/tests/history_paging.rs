//! A 50,000-event history read page by page, and workflow task polls on a long history: the poll
//! carries the first page and a token for the rest, whose last page ends with the task's
//! transient events, exactly the events the task saw.

use std::time::Duration;

use perdure_proto::api::command::v1::{
    Command, RecordMarkerCommandAttributes, command::Attributes as CA,
};
use perdure_proto::api::common::v1::WorkflowExecution;
use perdure_proto::api::enums::v1::{CommandType, EventType};
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::transport::Channel;

mod common;
use common::{server, start};

const EVENTS: usize = 50_000;

fn exec(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: String::new(),
    })
}

async fn page(
    c: &mut WorkflowServiceClient<Channel>,
    id: &str,
    size: i32,
    token: Vec<u8>,
) -> (Vec<HistoryEvent>, Vec<u8>) {
    let r = c
        .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
            namespace: "default".into(),
            execution: exec(id),
            maximum_page_size: size,
            next_page_token: token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (r.history.unwrap_or_default().events, r.next_page_token)
}

/// Every remaining page after `token`, `size` events at a time.
async fn rest(
    c: &mut WorkflowServiceClient<Channel>,
    id: &str,
    size: i32,
    mut token: Vec<u8>,
) -> Vec<HistoryEvent> {
    let mut out = Vec::new();
    while !token.is_empty() {
        let (events, next) = page(c, id, size, token).await;
        assert!(events.len() <= size as usize);
        out.extend(events);
        token = next;
    }
    out
}

fn types(events: &[HistoryEvent]) -> Vec<EventType> {
    events
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap())
        .collect()
}

async fn poll(c: &mut WorkflowServiceClient<Channel>, tq: &str) -> PollWorkflowTaskQueueResponse {
    let mut r = tonic::Request::new(PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: Some(TaskQueue {
            name: tq.into(),
            ..Default::default()
        }),
        identity: "test".into(),
        ..Default::default()
    });
    r.set_timeout(Duration::from_secs(30));
    c.poll_workflow_task_queue(r).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50000_event_history_reads_page_by_page_and_polls_are_paged() {
    let mut c = server().await;
    let id = format!("long-{}", uuid::Uuid::new_v4());
    let tq = id.clone();
    c.start_workflow_execution(start(&id, "wf", &tq))
        .await
        .unwrap();
    // A hand-driven worker completes workflow tasks with 1,000 markers each, asking for a new
    // task every time, until the history holds 50,000 events.
    let mut total = 2;
    while total < EVENTS {
        let t = poll(&mut c, &tq).await;
        let markers = (0..1000)
            .map(|_| Command {
                command_type: CommandType::RecordMarker as i32,
                attributes: Some(CA::RecordMarkerCommandAttributes(
                    RecordMarkerCommandAttributes {
                        marker_name: "m".into(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })
            .collect();
        c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
            namespace: "default".into(),
            task_token: t.task_token,
            commands: markers,
            identity: "test".into(),
            force_create_new_workflow_task: true,
            ..Default::default()
        })
        .await
        .unwrap();
        // WorkflowTaskStarted, then WorkflowTaskCompleted, the markers, WorkflowTaskScheduled.
        total = t.started_event_id as usize + 1 + 1000 + 1;
    }

    // Page size 1 at the start, 1,000 through the middle, 1 again at the end: every page holds
    // the next events, and the whole reads back contiguous.
    let mut all = Vec::new();
    let mut token = Vec::new();
    for _ in 0..50 {
        let (events, next) = page(&mut c, &id, 1, token).await;
        assert_eq!(events.len(), 1);
        all.extend(events);
        token = next;
    }
    while all.len() < total - 50 {
        let (events, next) = page(&mut c, &id, 1000, token).await;
        all.extend(events);
        token = next;
    }
    all.extend(rest(&mut c, &id, 1, token).await);
    assert_eq!(all.len(), total);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.event_id, i as i64 + 1);
    }

    // The workflow task: a first page of 256 events and a token for the rest, pinned to what the
    // task saw, ending with WorkflowTaskStarted.
    let t = poll(&mut c, &tq).await;
    let first = t.history.clone().unwrap().events;
    assert_eq!(first.len(), 256);
    assert!(!t.next_page_token.is_empty());
    let mut seen = first;
    seen.extend(rest(&mut c, &id, 1000, t.next_page_token.clone()).await);
    assert_eq!(seen.len(), total + 1);
    assert_eq!(seen.last().unwrap().event_id, t.started_event_id);
    assert_eq!(
        *types(&seen).last().unwrap(),
        EventType::WorkflowTaskStarted
    );

    // Failed, then polled again: the retry is transient (not persisted); its scheduled and
    // started events come at the end of the last page.
    c.respond_workflow_task_failed(RespondWorkflowTaskFailedRequest {
        namespace: "default".into(),
        task_token: t.task_token,
        identity: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = poll(&mut c, &tq).await;
    assert_eq!(t.attempt, 2);
    let mut seen = t.history.unwrap().events;
    seen.extend(rest(&mut c, &id, 1000, t.next_page_token).await);
    let tail = types(&seen[seen.len() - 3..]);
    assert_eq!(
        tail,
        [
            EventType::WorkflowTaskFailed,
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted
        ]
    );
    for (i, e) in seen.iter().enumerate() {
        assert_eq!(e.event_id, i as i64 + 1);
    }
    assert_eq!(seen.last().unwrap().event_id, t.started_event_id);
}
