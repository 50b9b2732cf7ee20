//! What every server test file needs: an in-process server on port 0 (or, with
//! `PERDURE_TEST_ADDRESS=host:port`, an already running server such as Temporal's dev server, to
//! check that the expected answers are Temporal's), a start request, and a liveness check.
#![allow(dead_code)]

use std::time::Duration;

use perdure_proto::api::common::v1::{WorkflowExecution, WorkflowType};
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use perdure_proto::google::rpc::Status as RpcStatus;
use prost::Message;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::transport::Channel;

/// A WorkflowService client on [`channel`].
pub async fn server() -> WorkflowServiceClient<Channel> {
    WorkflowServiceClient::new(channel().await)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

/// A connection to a fresh in-process server on port 0, or to `PERDURE_TEST_ADDRESS` if set.
pub async fn channel() -> Channel {
    let connect = |addr: String| async move {
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
    };
    if let Ok(addr) = std::env::var("PERDURE_TEST_ADDRESS") {
        return connect(addr).await.unwrap();
    }
    let listener = perdure_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config = perdure_server::ServerConfig {
        persistence: perdure_server::Persistence::Sqlite(None),
        namespaces: vec![],
        ..Default::default()
    };
    tokio::spawn(perdure_server::run(
        config,
        listener,
        std::future::pending(),
    ));
    for _ in 0..100 {
        if let Ok(c) = connect(addr.to_string()).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server did not start");
}

pub fn detail<M: Message + Default>(s: &tonic::Status) -> M {
    let st = RpcStatus::decode(s.details()).expect("grpc-status-details-bin");
    M::decode(st.details[0].value.as_slice()).expect("detail type")
}

pub fn start(id: &str, wf_type: &str, tq: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType {
            name: wf_type.into(),
        }),
        task_queue: Some(TaskQueue {
            name: tq.into(),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

/// Starts a workflow and checks the server still works and the run is intact.
pub async fn still_serving(c: &mut WorkflowServiceClient<Channel>) {
    let id = format!("healthy-{}", uuid::Uuid::new_v4());
    c.start_workflow_execution(start(&id, "t", "q"))
        .await
        .unwrap();
    let d = c
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: id,
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.workflow_execution_info.unwrap().history_length, 2);
}
