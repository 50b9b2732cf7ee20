//! Bad input against a real in-process server on port 0: each request gets the right gRPC status
//! (and Temporal error detail), the server keeps serving, and the state stays intact.

use std::time::Duration;

use perdure_proto::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, command,
};
use perdure_proto::api::common::v1::{Payload, Payloads, WorkflowExecution};
use perdure_proto::api::enums::v1::{CommandType, EventType, WorkflowTaskFailedCause};
use perdure_proto::api::errordetails::v1 as details;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use tonic::Code;

mod common;
use common::{detail, server, start, still_serving};

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let mut c = server().await;

    // Unknown namespace: NOT_FOUND + NamespaceNotFoundFailure.
    let mut r = start("a", "t", "q");
    r.namespace = "nope".into();
    let e = c.start_workflow_execution(r).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let d: details::NamespaceNotFoundFailure = detail(&e);
    assert_eq!(d.namespace, "nope");
    still_serving(&mut c).await;

    // Empty id / type / task queue: INVALID_ARGUMENT naming the field.
    for (req, field) in [
        (start("", "t", "q"), "WorkflowId"),
        (start("a", "", "q"), "WorkflowType"),
        (start("a", "t", ""), "TaskQueue"),
    ] {
        let e = c.start_workflow_execution(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains(field), "{field}: {}", e.message());
    }
    still_serving(&mut c).await;

    // Garbage task tokens.
    let e = c
        .respond_activity_task_completed(RespondActivityTaskCompletedRequest {
            task_token: b"garbage".to_vec(),
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
            task_token: vec![0xff; 40],
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    still_serving(&mut c).await;

    // Duplicate workflow id while running: ALREADY_EXISTS + WorkflowExecutionAlreadyStartedFailure.
    let first = c
        .start_workflow_execution(start("dup", "t", "q"))
        .await
        .unwrap()
        .into_inner();
    let e = c
        .start_workflow_execution(start("dup", "t", "q"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let d: details::WorkflowExecutionAlreadyStartedFailure = detail(&e);
    assert_eq!(d.run_id, first.run_id);

    // A 3 MB payload is rejected with a message about the size.
    let mut r = start("big", "t", "q");
    r.input = Some(Payloads {
        payloads: vec![Payload {
            data: vec![b'x'; 3 * 1024 * 1024],
            ..Default::default()
        }],
    });
    let e = c.start_workflow_execution(r).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("size exceeds limit"),
        "{}",
        e.message()
    );
    still_serving(&mut c).await;
}

#[tokio::test]
async fn completing_while_a_signal_is_unhandled_is_rejected() {
    let mut c = server().await;
    let tq = format!("raw-{}", uuid::Uuid::new_v4());
    c.start_workflow_execution(start("unhandled", "t", &tq))
        .await
        .unwrap();
    let poll = || PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: Some(TaskQueue {
            name: tq.clone(),
            ..Default::default()
        }),
        identity: "test".into(),
        ..Default::default()
    };
    let task = c
        .poll_workflow_task_queue(poll())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(task.started_event_id, 3);
    c.signal_workflow_execution(SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: "unhandled".into(),
            run_id: String::new(),
        }),
        signal_name: "late".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let complete = |token: Vec<u8>| RespondWorkflowTaskCompletedRequest {
        task_token: token,
        namespace: "default".into(),
        identity: "test".into(),
        commands: vec![Command {
            command_type: CommandType::CompleteWorkflowExecution as i32,
            attributes: Some(
                command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                    CompleteWorkflowExecutionCommandAttributes::default(),
                ),
            ),
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = c
        .respond_workflow_task_completed(complete(task.task_token.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.message(), "UnhandledCommand");
    // The same token is now stale.
    let e = c
        .respond_workflow_task_completed(complete(task.task_token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // The retry carries the signal and may complete.
    let task = c
        .poll_workflow_task_queue(poll())
        .await
        .unwrap()
        .into_inner();
    let events = task.history.unwrap().events;
    let types: Vec<_> = events
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap())
        .collect();
    assert_eq!(
        types[3..],
        [
            EventType::WorkflowTaskFailed,
            EventType::WorkflowExecutionSignaled,
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted
        ]
    );
    let Some(A::WorkflowTaskFailedEventAttributes(f)) = &events[3].attributes else {
        panic!()
    };
    assert_eq!(f.cause, WorkflowTaskFailedCause::UnhandledCommand as i32);
    c.respond_workflow_task_completed(complete(task.task_token))
        .await
        .unwrap();
    let h = c
        .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "unhandled".into(),
                run_id: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let last = h.history.unwrap().events.last().unwrap().event_type;
    assert_eq!(last, EventType::WorkflowExecutionCompleted as i32);
}

#[tokio::test]
async fn describe_task_queue_shows_pollers_per_type_and_rejects_bad_input() {
    use perdure_proto::api::enums::v1::TaskQueueType;
    use perdure_proto::api::taskqueue::v1::TaskQueueMetadata;
    let mut c = server().await;
    let describe = |queue: Option<&str>, ns: &str, t: TaskQueueType| DescribeTaskQueueRequest {
        namespace: ns.into(),
        task_queue: queue.map(|q| TaskQueue {
            name: q.into(),
            ..Default::default()
        }),
        task_queue_type: t as i32,
        report_stats: true,
        ..Default::default()
    };
    let w = TaskQueueType::Workflow;
    for req in [
        describe(None, "default", w),
        describe(Some(""), "default", w),
    ] {
        let e = c.describe_task_queue(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    }
    let e = c
        .describe_task_queue(describe(Some("q"), "nope", w))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let d: details::NamespaceNotFoundFailure = detail(&e);
    assert_eq!(d.namespace, "nope");

    // An activity poll that times out empty still registers its worker as a poller.
    let mut poll = tonic::Request::new(PollActivityTaskQueueRequest {
        namespace: "default".into(),
        task_queue: Some(TaskQueue {
            name: "tq-pollers".into(),
            ..Default::default()
        }),
        identity: "rust-poller@host".into(),
        task_queue_metadata: Some(TaskQueueMetadata {
            max_tasks_per_second: Some(7.5),
        }),
        ..Default::default()
    });
    poll.set_timeout(Duration::from_millis(1500));
    let polled = c.poll_activity_task_queue(poll).await.unwrap().into_inner();
    assert!(polled.task_token.is_empty());
    let a = c
        .describe_task_queue(describe(
            Some("tq-pollers"),
            "default",
            TaskQueueType::Activity,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.pollers.len(), 1);
    assert_eq!(a.pollers[0].identity, "rust-poller@host");
    assert_eq!(a.pollers[0].rate_per_second, 7.5);
    assert!(a.pollers[0].last_access_time.is_some());
    assert_eq!(a.stats.unwrap().approximate_backlog_count, 0);
    let wf = c
        .describe_task_queue(describe(Some("tq-pollers"), "default", w))
        .await
        .unwrap()
        .into_inner();
    assert!(
        wf.pollers.is_empty(),
        "no workflow poller: {:?}",
        wf.pollers
    );

    let info = c
        .get_cluster_info(GetClusterInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let sys = c
        .get_system_info(GetSystemInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.server_version, sys.server_version);
    assert_eq!(info.cluster_name, "active");
    assert_eq!(info.history_shard_count, 16);
    assert!(uuid::Uuid::parse_str(&info.cluster_id).is_ok());
    assert_eq!(
        info.supported_clients
            .get("temporal-cli")
            .map(String::as_str),
        Some("<2.0.0")
    );
    still_serving(&mut c).await;
}
