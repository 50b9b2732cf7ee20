//! Batch operations over gRPC: a terminate by visibility query touches exactly the matching
//! running executions and reports its progress through Describe and List; a signal by explicit
//! list and a cancel by query; job id reuse and missing parameters are refused as Temporal refuses
//! them. Run with `PERDURE_TEST_ADDRESS=127.0.0.1:7233` against Temporal's dev server to check the
//! expectations.

use std::time::Duration;

use perdure_proto::api::batch::v1::{
    BatchOperationCancellation, BatchOperationSignal, BatchOperationTermination,
};
use perdure_proto::api::common::v1::WorkflowExecution;
use perdure_proto::api::enums::v1::{
    BatchOperationState, BatchOperationType, EventType, WorkflowExecutionStatus as S,
};
use perdure_proto::api::workflowservice::v1::start_batch_operation_request::Operation;
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

async fn status(c: &mut Client, id: &str) -> i32 {
    c.describe_workflow_execution(DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
    })
    .await
    .unwrap()
    .into_inner()
    .workflow_execution_info
    .unwrap()
    .status
}

async fn last_event(c: &mut Client, id: &str) -> EventType {
    let h = c
        .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: id.into(),
                run_id: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .history
        .unwrap()
        .events;
    EventType::try_from(h.last().unwrap().event_type).unwrap()
}

/// Waits until the visibility store counts `n` executions for `query`.
async fn wait_count(c: &mut Client, query: &str, n: i64) {
    for _ in 0..100 {
        let r = c
            .count_workflow_executions(CountWorkflowExecutionsRequest {
                namespace: "default".into(),
                query: query.into(),
            })
            .await
            .unwrap()
            .into_inner();
        if r.count == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{query} never counted {n}");
}

/// Polls Describe until the job is no longer running.
async fn finished(c: &mut Client, job_id: &str) -> DescribeBatchOperationResponse {
    for _ in 0..100 {
        let d = c
            .describe_batch_operation(DescribeBatchOperationRequest {
                namespace: "default".into(),
                job_id: job_id.into(),
            })
            .await
            .unwrap()
            .into_inner();
        if d.state != BatchOperationState::Running as i32 {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("batch job {job_id} never finished");
}

fn batch(job_id: &str, query: &str, op: Operation) -> StartBatchOperationRequest {
    StartBatchOperationRequest {
        namespace: "default".into(),
        job_id: job_id.into(),
        visibility_query: query.into(),
        reason: "batch-test".into(),
        operation: Some(op),
        ..Default::default()
    }
}

fn terminate() -> Operation {
    Operation::TerminationOperation(BatchOperationTermination {
        details: None,
        identity: "batch-tester".into(),
    })
}

#[tokio::test]
async fn terminate_by_query_touches_exactly_the_matching_runs() {
    let mut c = server().await;
    let (a, b) = (format!("A-{}", uid()), format!("B-{}", uid()));
    let mut ids_a = Vec::new();
    let mut ids_b = Vec::new();
    for i in 0..5 {
        let id = format!("{a}-{i}");
        c.start_workflow_execution(start(&id, &a, "batch-q"))
            .await
            .unwrap();
        ids_a.push(id);
    }
    for i in 0..2 {
        let id = format!("{b}-{i}");
        c.start_workflow_execution(start(&id, &b, "batch-q"))
            .await
            .unwrap();
        ids_b.push(id);
    }
    let query = format!("WorkflowType='{a}'");
    wait_count(&mut c, &query, 5).await;

    let job_id = uid();
    c.start_batch_operation(batch(&job_id, &query, terminate()))
        .await
        .unwrap();
    let d = finished(&mut c, &job_id).await;
    assert_eq!(d.state, BatchOperationState::Completed as i32);
    assert_eq!(
        d.operation_type,
        BatchOperationType::TerminateWorkflow as i32
    );
    assert_eq!(d.job_id, job_id);
    assert_eq!(
        (
            d.total_operation_count,
            d.complete_operation_count,
            d.failure_operation_count
        ),
        (5, 5, 0)
    );
    assert_eq!(d.reason, "batch-test");
    assert_eq!(d.query, query);
    assert!(d.start_time.is_some() && d.close_time.is_some());
    for id in &ids_a {
        assert_eq!(status(&mut c, id).await, S::Terminated as i32, "{id}");
        assert_eq!(
            last_event(&mut c, id).await,
            EventType::WorkflowExecutionTerminated
        );
    }
    for id in &ids_b {
        assert_eq!(status(&mut c, id).await, S::Running as i32, "{id}");
    }

    // The job is listed, and its id cannot be used again.
    let list = c
        .list_batch_operations(ListBatchOperationsRequest {
            namespace: "default".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let info = list
        .operation_info
        .iter()
        .find(|i| i.job_id == job_id)
        .expect("the job is listed");
    assert_eq!(info.state, BatchOperationState::Completed as i32);
    assert_eq!(
        info.operation_type,
        BatchOperationType::TerminateWorkflow as i32
    );
    let e = c
        .start_batch_operation(batch(&job_id, &query, terminate()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");

    // Signal the B runs by explicit list, then cancel them by query.
    let signal_job = uid();
    let mut req = batch(
        &signal_job,
        "",
        Operation::SignalOperation(BatchOperationSignal {
            signal: "poke".into(),
            identity: "batch-tester".into(),
            ..Default::default()
        }),
    );
    // The explicit list the `temporal` CLI still sends (deprecated for `target_executions`).
    #[allow(deprecated)]
    {
        req.executions = ids_b
            .iter()
            .map(|id| WorkflowExecution {
                workflow_id: id.clone(),
                run_id: String::new(),
            })
            .collect();
    }
    c.start_batch_operation(req).await.unwrap();
    let d = finished(&mut c, &signal_job).await;
    assert_eq!(
        (d.state, d.complete_operation_count),
        (BatchOperationState::Completed as i32, 2)
    );
    for id in &ids_b {
        assert_eq!(
            last_event(&mut c, id).await,
            EventType::WorkflowExecutionSignaled
        );
    }
    let cancel_job = uid();
    c.start_batch_operation(batch(
        &cancel_job,
        &format!("WorkflowType='{b}'"),
        Operation::CancellationOperation(BatchOperationCancellation {
            identity: "batch-tester".into(),
        }),
    ))
    .await
    .unwrap();
    let d = finished(&mut c, &cancel_job).await;
    assert_eq!(
        (d.state, d.complete_operation_count),
        (BatchOperationState::Completed as i32, 2)
    );
    for id in &ids_b {
        assert_eq!(
            last_event(&mut c, id).await,
            EventType::WorkflowExecutionCancelRequested
        );
    }
}

#[tokio::test]
async fn bad_batch_requests_are_refused_as_temporal_refuses_them() {
    let mut c = server().await;
    let required = "must provide required parameters: BatchType,Reason,Namespace, AND one of (Query OR Executions OR TargetExecutions)";
    let mut no_reason = batch(&uid(), "WorkflowType='x'", terminate());
    no_reason.reason.clear();
    let mut no_op = batch(&uid(), "WorkflowType='x'", terminate());
    no_op.operation = None;
    for (req, msg) in [
        (no_reason, required),
        (no_op, required),
        (batch(&uid(), "", terminate()), required),
        (
            batch("", "WorkflowType='x'", terminate()),
            "JobId is not set on request.",
        ),
    ] {
        let e = c.start_batch_operation(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert_eq!(e.message(), msg);
    }
    let missing = format!("missing-{}", uid());
    let e = c
        .describe_batch_operation(DescribeBatchOperationRequest {
            namespace: "default".into(),
            job_id: missing.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.message(), format!("workflow not found for ID: {missing}"));
}
