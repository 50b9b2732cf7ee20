//! Hostile and careless requests against a real in-process server: each gets Temporal's status
//! and message, the server keeps serving, and every history stays intact (contiguous event ids,
//! nothing half-applied). `PERDURE_TEST_ADDRESS=127.0.0.1:7233` runs the same cases against
//! another server, such as Temporal's dev server, to check the expectations are Temporal's.

use perdure_proto::api::command::v1::{command::Attributes as CA, *};
use perdure_proto::api::common::v1::{
    ActivityType, Payload, Payloads, RetryPolicy, SearchAttributes, WorkflowExecution,
};
use perdure_proto::api::enums::v1::{CommandType, EventType};
use perdure_proto::api::failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo};
use perdure_proto::api::history::v1::HistoryEvent;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use perdure_proto::prost_types::Duration as PDuration;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::Code;
use tonic::transport::Channel;

mod common;
use common::{server, start, still_serving};

type Client = WorkflowServiceClient<Channel>;

/// A long poll with a deadline, as SDKs send it (Temporal refuses polls without one).
fn with_deadline<T>(m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.set_timeout(std::time::Duration::from_secs(30));
    r
}

fn secs(s: i64) -> Option<PDuration> {
    Some(PDuration {
        seconds: s,
        nanos: 0,
    })
}

fn uid(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn invalid(r: Result<impl std::fmt::Debug, tonic::Status>, message: &str) {
    let e = r.expect_err("the request must be refused");
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(
        e.message().contains(message),
        "expected {message:?} in {:?}",
        e.message()
    );
}

async fn history(c: &mut Client, id: &str) -> Vec<HistoryEvent> {
    let mut events = Vec::new();
    let mut token = Vec::new();
    loop {
        let page = c
            .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
                next_page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        events.extend(page.history.unwrap_or_default().events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    events
}

/// The event types, after checking the ids are 1, 2, 3, ...
async fn intact(c: &mut Client, id: &str) -> Vec<EventType> {
    let events = history(c, id).await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.event_id,
            i as i64 + 1,
            "{id}: event ids are not contiguous"
        );
    }
    events
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap())
        .collect()
}

/// Starts a workflow on a task queue of its own and polls its first workflow task; returns the
/// workflow id (also the name of the task queue, and with `-act` of its activities' queue).
async fn started_task(c: &mut Client, prefix: &str) -> (String, Vec<u8>) {
    let id = uid(prefix);
    let tq = id.as_str();
    c.start_workflow_execution(start(&id, "wf", tq))
        .await
        .unwrap();
    let t = c
        .poll_workflow_task_queue(with_deadline(PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: Some(TaskQueue {
                name: tq.into(),
                ..Default::default()
            }),
            identity: "test".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!t.task_token.is_empty(), "no workflow task for {id}");
    (id, t.task_token)
}

fn command(t: CommandType, a: CA) -> Command {
    Command {
        command_type: t as i32,
        attributes: Some(a),
        ..Default::default()
    }
}

fn timer(id: &str, s: i64) -> Command {
    command(
        CommandType::StartTimer,
        CA::StartTimerCommandAttributes(StartTimerCommandAttributes {
            timer_id: id.into(),
            start_to_fire_timeout: secs(s),
        }),
    )
}

fn activity(id: &str, tq: &str, retry: Option<RetryPolicy>) -> Command {
    command(
        CommandType::ScheduleActivityTask,
        CA::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
            activity_id: id.into(),
            activity_type: Some(ActivityType { name: "a".into() }),
            task_queue: Some(TaskQueue {
                name: tq.into(),
                ..Default::default()
            }),
            start_to_close_timeout: secs(10),
            retry_policy: retry,
            ..Default::default()
        }),
    )
}

fn complete(result: Option<Payloads>) -> Command {
    command(
        CommandType::CompleteWorkflowExecution,
        CA::CompleteWorkflowExecutionCommandAttributes(
            CompleteWorkflowExecutionCommandAttributes { result },
        ),
    )
}

async fn respond(
    c: &mut Client,
    token: Vec<u8>,
    commands: Vec<Command>,
) -> Result<RespondWorkflowTaskCompletedResponse, tonic::Status> {
    c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
        namespace: "default".into(),
        task_token: token,
        commands,
        identity: "test".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

async fn poll_activity(c: &mut Client, tq: &str) -> Vec<u8> {
    let t = c
        .poll_activity_task_queue(with_deadline(PollActivityTaskQueueRequest {
            namespace: "default".into(),
            task_queue: Some(TaskQueue {
                name: tq.into(),
                ..Default::default()
            }),
            identity: "test".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!t.task_token.is_empty(), "no activity task on {tq}");
    t.task_token
}

fn big(n: usize) -> Option<Payloads> {
    Some(Payloads {
        payloads: vec![Payload {
            data: vec![b'r'; n],
            ..Default::default()
        }],
    })
}

async fn signal(c: &mut Client, id: &str) {
    c.signal_workflow_execution(SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
        signal_name: "poke".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn visibility_queries_deep_or_long_are_refused_without_harm() {
    let mut c = server().await;
    let count = |q: String| CountWorkflowExecutionsRequest {
        namespace: "default".into(),
        query: q,
    };
    let deep = format!("{}WorkflowId = 'a'{}", "(".repeat(4500), ")".repeat(4500));
    invalid(
        c.count_workflow_executions(count(deep)).await,
        "max nesting level reached",
    );
    let nots = format!("{}WorkflowId = 'a'", "NOT ".repeat(4500));
    invalid(
        c.list_workflow_executions(ListWorkflowExecutionsRequest {
            namespace: "default".into(),
            query: nots,
            ..Default::default()
        })
        .await,
        "max nesting level reached",
    );
    let ors: Vec<String> = (0..6000).map(|i| format!("WorkflowId = 'w{i}'")).collect();
    invalid(
        c.count_workflow_executions(count(ors.join(" OR "))).await,
        "max ast depth reached",
    );
    // The longest accepted chain runs.
    let n = c
        .count_workflow_executions(count(ors[..995].join(" OR ")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(n.count, 0);
    still_serving(&mut c).await;
}

#[tokio::test]
async fn start_requests_are_checked_and_capped_like_temporal() {
    let mut c = server().await;
    // Durations far beyond anything representable: accepted, capped at 100 years.
    let mut r = start(&uid("huge"), "wf", "q");
    r.workflow_execution_timeout = secs(i64::MAX);
    r.workflow_run_timeout = secs(1_000_000_000_000);
    r.workflow_task_timeout = secs(i64::MAX);
    r.workflow_start_delay = secs(i64::MAX);
    let id = r.workflow_id.clone();
    c.start_workflow_execution(r).await.unwrap();
    let d = c
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: id.clone(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let cfg = d.execution_config.unwrap();
    assert_eq!(cfg.workflow_execution_timeout, secs(3_153_600_000));
    assert_eq!(cfg.workflow_run_timeout, secs(3_153_600_000));
    assert!(cfg.default_workflow_task_timeout.unwrap().seconds <= 120);
    intact(&mut c, &id).await;

    for (retry, message) in [
        (
            RetryPolicy {
                initial_interval: secs(-1),
                ..Default::default()
            },
            "invalid InitialInterval set on retry policy: negative duration",
        ),
        (
            RetryPolicy {
                maximum_interval: secs(-1),
                ..Default::default()
            },
            "invalid MaximumInterval set on retry policy: negative duration",
        ),
        (
            RetryPolicy {
                initial_interval: secs(i64::MAX),
                ..Default::default()
            },
            "invalid MaximumInterval set on retry policy: negative duration",
        ),
    ] {
        let mut r = start(&uid("retry"), "wf", "q");
        r.retry_policy = Some(retry);
        invalid(c.start_workflow_execution(r).await, message);
    }

    let mut r = start(&uid("cron"), "wf", "q");
    r.cron_schedule = "@every 99999999999999999999h".into();
    invalid(c.start_workflow_execution(r).await, "CronSchedule");

    let long = "x".repeat(1001);
    invalid(
        c.start_workflow_execution(start(&long, "wf", "q")).await,
        "WorkflowId exceeds maximum allowed length (1001/1000)",
    );
    invalid(
        c.start_workflow_execution(start("a", &long, "q")).await,
        "WorkflowType length exceeds limit.",
    );
    invalid(
        c.start_workflow_execution(start("a", "wf", &long)).await,
        "taskQueue length exceeds limit",
    );
    let mut r = start("a", "wf", "q");
    r.request_id = long.clone();
    invalid(
        c.start_workflow_execution(r).await,
        "RequestId length exceeds limit.",
    );

    for name in ["WorkflowId", "ExecutionStatus"] {
        let mut r = start(&uid("sa"), "wf", "q");
        r.search_attributes = Some(SearchAttributes {
            indexed_fields: [(
                name.to_string(),
                Payload {
                    metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                    data: b"\"x\"".to_vec(),
                    ..Default::default()
                },
            )]
            .into(),
        });
        invalid(
            c.start_workflow_execution(r).await,
            &format!("{name} attribute can't be set in SearchAttributes"),
        );
    }

    // Metadata counts toward the blob limit.
    let mut r = start(&uid("meta"), "wf", "q");
    r.input = Some(Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_string(), vec![b'x'; 3 << 20])].into(),
            data: b"1".to_vec(),
            ..Default::default()
        }],
    });
    invalid(
        c.start_workflow_execution(r).await,
        "Blob data size exceeds limit.",
    );
    still_serving(&mut c).await;
}

#[tokio::test]
async fn huge_timer_and_retry_delays_never_corrupt_a_history() {
    let mut c = server().await;
    // An activity and a timer of i64::MAX seconds: accepted (Temporal does too); a later signal
    // commits normally and the history stays contiguous.
    let (id, token) = started_task(&mut c, "hard-timer").await;
    respond(
        &mut c,
        token,
        vec![
            activity("a1", &format!("{id}-act"), None),
            timer("t1", i64::MAX),
        ],
    )
    .await
    .unwrap();
    signal(&mut c, &id).await;
    let types = intact(&mut c, &id).await;
    assert!(types.len() > 4, "{types:?}");
    assert_eq!(
        &types[4..],
        [
            EventType::ActivityTaskScheduled,
            EventType::TimerStarted,
            EventType::WorkflowExecutionSignaled,
            EventType::WorkflowTaskScheduled,
        ]
    );

    // A retry delay of i64::MAX seconds: the activity waits at attempt 2, its state intact.
    let (id, token) = started_task(&mut c, "hard-retry").await;
    respond(
        &mut c,
        token,
        vec![activity("a2", &format!("{id}-act"), None)],
    )
    .await
    .unwrap();
    let at = poll_activity(&mut c, &format!("{id}-act")).await;
    c.respond_activity_task_failed(RespondActivityTaskFailedRequest {
        namespace: "default".into(),
        task_token: at,
        failure: Some(Failure {
            message: "later".into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    next_retry_delay: secs(i64::MAX),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        identity: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let d = c
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: id.clone(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.pending_activities.len(), 1);
    assert_eq!(d.pending_activities[0].attempt, 2);
    signal(&mut c, &id).await;
    intact(&mut c, &id).await;
    still_serving(&mut c).await;
}

#[tokio::test]
async fn bad_command_batches_are_refused_like_temporal() {
    let mut c = server().await;

    // A closing command that is not last: refused, the task left as it was.
    for extra in [timer("t", 5), complete(None)] {
        let (id, token) = started_task(&mut c, "seq").await;
        let before = intact(&mut c, &id).await;
        invalid(
            respond(&mut c, token, vec![complete(None), extra]).await,
            "command CompleteWorkflowExecution must be the last command.",
        );
        assert_eq!(intact(&mut c, &id).await, before, "the history changed");
    }

    // The type says StartTimer, the attributes complete the workflow: the task fails.
    let (id, token) = started_task(&mut c, "mismatch").await;
    let mut lying = complete(None);
    lying.command_type = CommandType::StartTimer as i32;
    invalid(
        respond(&mut c, token, vec![lying]).await,
        "BadStartTimerAttributes: StartTimerCommandAttributes is not set on StartTimerCommand.",
    );
    let types = intact(&mut c, &id).await;
    assert_eq!(types[3], EventType::WorkflowTaskFailed);
    assert!(!types.contains(&EventType::WorkflowExecutionCompleted));

    let (id, token) = started_task(&mut c, "cancel-timer").await;
    let cancel = command(
        CommandType::CancelTimer,
        CA::CancelTimerCommandAttributes(CancelTimerCommandAttributes {
            timer_id: "nope".into(),
        }),
    );
    invalid(
        respond(&mut c, token, vec![cancel]).await,
        "BadCancelTimerAttributes",
    );
    assert_eq!(intact(&mut c, &id).await[3], EventType::WorkflowTaskFailed);

    let (id, token) = started_task(&mut c, "timer-id").await;
    invalid(
        respond(&mut c, token, vec![timer(&"x".repeat(1001), 5)]).await,
        "TimerId on StartTimerCommand exceeds length limit.",
    );
    intact(&mut c, &id).await;

    let (id, token) = started_task(&mut c, "act-retry").await;
    let negative = RetryPolicy {
        initial_interval: secs(-1),
        ..Default::default()
    };
    invalid(
        respond(&mut c, token, vec![activity("a", "x", Some(negative))]).await,
        "BadScheduleActivityAttributes: invalid InitialInterval set on retry policy: negative duration",
    );
    intact(&mut c, &id).await;

    // Upserting a system search attribute fails the task.
    let (id, token) = started_task(&mut c, "upsert-system").await;
    let upsert = command(
        CommandType::UpsertWorkflowSearchAttributes,
        CA::UpsertWorkflowSearchAttributesCommandAttributes(
            UpsertWorkflowSearchAttributesCommandAttributes {
                search_attributes: Some(SearchAttributes {
                    indexed_fields: [(
                        "WorkflowId".to_string(),
                        Payload {
                            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                            data: b"\"x\"".to_vec(),
                            ..Default::default()
                        },
                    )]
                    .into(),
                }),
            },
        ),
    );
    invalid(
        respond(&mut c, token, vec![upsert]).await,
        "WorkflowId attribute can't be set in SearchAttributes",
    );
    assert_eq!(intact(&mut c, &id).await[3], EventType::WorkflowTaskFailed);

    // A workflow result over the blob limit fails the task and terminates the run.
    let (id, token) = started_task(&mut c, "big-result").await;
    invalid(
        respond(&mut c, token, vec![complete(big(3 << 20))]).await,
        "CompleteWorkflowExecutionCommandAttributes.Result exceeds size limit.",
    );
    let types = intact(&mut c, &id).await;
    assert_eq!(
        &types[3..],
        [
            EventType::WorkflowTaskFailed,
            EventType::WorkflowExecutionTerminated
        ]
    );
    still_serving(&mut c).await;
}

#[tokio::test]
async fn activity_outcomes_over_the_limits_are_stored_within_them() {
    let mut c = server().await;
    // A result over the blob limit fails the activity for good.
    let (id, token) = started_task(&mut c, "act-big").await;
    respond(
        &mut c,
        token,
        vec![activity("a", &format!("{id}-act"), None)],
    )
    .await
    .unwrap();
    let at = poll_activity(&mut c, &format!("{id}-act")).await;
    c.respond_activity_task_completed(RespondActivityTaskCompletedRequest {
        namespace: "default".into(),
        task_token: at,
        result: big(3 << 20),
        identity: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let events = history(&mut c, &id).await;
    let failed = events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(A::ActivityTaskFailedEventAttributes(a)) => Some(a.clone()),
            _ => None,
        })
        .expect("ActivityTaskFailed");
    assert_eq!(
        failed.failure.unwrap().message,
        "Complete result exceeds size limit."
    );
    intact(&mut c, &id).await;

    // Heartbeat details over the blob limit fail the activity for good.
    let (id, token) = started_task(&mut c, "hb-big").await;
    respond(
        &mut c,
        token,
        vec![activity("a", &format!("{id}-act"), None)],
    )
    .await
    .unwrap();
    let at = poll_activity(&mut c, &format!("{id}-act")).await;
    let _ = c
        .record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest {
            namespace: "default".into(),
            task_token: at,
            details: big(3 << 20),
            identity: "test".into(),
            ..Default::default()
        })
        .await;
    let events = history(&mut c, &id).await;
    let failure = events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(A::ActivityTaskFailedEventAttributes(a)) => a.failure.clone(),
            _ => None,
        })
        .expect("ActivityTaskFailed");
    assert_eq!(failure.message, "Heartbeat details exceed size limit.");
    intact(&mut c, &id).await;

    // A failure over the 2 MiB limit is cut down, so a history holding several stays readable
    // with the default 4 MiB message limit (3.5 MiB: Temporal's transport refuses 4 MiB).
    let (id, token) = started_task(&mut c, "fail-big").await;
    let once = RetryPolicy {
        maximum_attempts: 1,
        ..Default::default()
    };
    respond(
        &mut c,
        token,
        vec![activity("a", &format!("{id}-act"), Some(once))],
    )
    .await
    .unwrap();
    let at = poll_activity(&mut c, &format!("{id}-act")).await;
    c.respond_activity_task_failed(RespondActivityTaskFailedRequest {
        namespace: "default".into(),
        task_token: at,
        failure: Some(Failure {
            message: "m".repeat(7 << 19),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(Default::default())),
            ..Default::default()
        }),
        identity: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut small = c.clone().max_decoding_message_size(4 << 20);
    let events = history(&mut small, &id).await;
    let failure = events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(A::ActivityTaskFailedEventAttributes(a)) => a.failure.clone(),
            _ => None,
        })
        .expect("ActivityTaskFailed");
    assert_eq!(failure.message, "Failure exceeds size limit.");
    assert!(failure.cause.is_some());
    still_serving(&mut c).await;
}

#[tokio::test]
async fn task_tokens_are_bound_to_their_namespace() {
    let mut c = server().await;
    let _ = c
        .register_namespace(RegisterNamespaceRequest {
            namespace: "other".into(),
            workflow_execution_retention_period: secs(86400),
            ..Default::default()
        })
        .await;
    let id = uid("other");
    let mut r = start(&id, "wf", "other-q");
    r.namespace = "other".into();
    c.start_workflow_execution(r).await.unwrap();
    let t = c
        .poll_workflow_task_queue(with_deadline(PollWorkflowTaskQueueRequest {
            namespace: "other".into(),
            task_queue: Some(TaskQueue {
                name: "other-q".into(),
                ..Default::default()
            }),
            identity: "test".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    invalid(
        respond(&mut c, t.task_token, vec![complete(None)]).await,
        "Operation requested with a token from a different namespace.",
    );
    still_serving(&mut c).await;
}
