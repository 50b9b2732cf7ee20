//! The README's list of RPCs that answer UNIMPLEMENTED is the server's: every RPC of both services
//! (named by the list the proto build generates) is called with an empty request against an
//! in-process server on port 0; those answering UNIMPLEMENTED, with Perdure's message, must be
//! exactly the ones README.md lists, in the services' order.

use std::time::Duration;

mod common;

use perdure_proto::service::operatorservice::OPERATOR_SERVICE_METHODS;
use perdure_proto::service::workflowservice::WORKFLOW_SERVICE_METHODS;
use prost::bytes::Buf;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

const SERVICES: [(&str, &str, &[&str]); 2] = [
    (
        "WorkflowService",
        "temporal.api.workflowservice.v1",
        WORKFLOW_SERVICE_METHODS,
    ),
    (
        "OperatorService",
        "temporal.api.operatorservice.v1",
        OPERATOR_SERVICE_METHODS,
    ),
];

/// Sends an empty message (every field at its default) and ignores the answer's content.
#[derive(Clone, Copy)]
struct Empty;

impl Encoder for Empty {
    type Item = ();
    type Error = Status;
    fn encode(&mut self, _: (), _: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

impl Decoder for Empty {
    type Item = ();
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

impl Codec for Empty {
    type Encode = ();
    type Decode = ();
    type Encoder = Empty;
    type Decoder = Empty;
    fn encoder(&mut self) -> Empty {
        Empty
    }
    fn decoder(&mut self) -> Empty {
        Empty
    }
}

async fn call(channel: Channel, path: String) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(());
    req.set_timeout(Duration::from_secs(2));
    let path = PathAndQuery::try_from(path).unwrap();
    match tokio::time::timeout(Duration::from_secs(10), grpc.unary(req, path, Empty)).await {
        Ok(Ok(_)) | Err(_) => Status::ok(""),
        Ok(Err(s)) => s,
    }
}

/// `DeprecateNamespace` -> `deprecate_namespace`.
fn snake_case(rpc: &str) -> String {
    let mut s = String::new();
    for (i, c) in rpc.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

/// The README's bullets after "RPCs that answer `UNIMPLEMENTED`": (service, RPC names).
fn readme_list() -> Vec<(String, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme
        .find("RPCs that answer `UNIMPLEMENTED`")
        .expect("README lists the RPCs that answer UNIMPLEMENTED");
    let section = &readme[start..];
    let bullets = section
        .lines()
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    bullets
        .split("\n- ")
        .map(|b| {
            let b = b.trim_start_matches("- ");
            let (service, names) = b.split_once(':').expect("`- Service: A, B, ...`");
            let names = names
                .split(',')
                .map(|n| n.trim().trim_end_matches('.').to_string())
                .filter(|n| !n.is_empty())
                .collect();
            (service.trim().to_string(), names)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_lists_exactly_the_unimplemented_rpcs() {
    let channel = common::channel().await;
    let mut expected = Vec::new();
    for (service, package, methods) in SERVICES {
        let mut calls = tokio::task::JoinSet::new();
        for (i, rpc) in methods.iter().enumerate() {
            let path = format!("/{package}.{service}/{rpc}");
            let channel = channel.clone();
            calls.spawn(async move { (i, call(channel, path).await) });
        }
        let mut statuses = calls.join_all().await;
        statuses.sort_by_key(|(i, _)| *i);
        let mut unimplemented = Vec::new();
        for (i, st) in statuses {
            let rpc = methods[i];
            if st.code() == Code::Unimplemented {
                let message = format!(
                    "unknown method {} for service {service}: not implemented by Perdure",
                    snake_case(rpc)
                );
                assert_eq!(st.message(), message, "{rpc}");
                unimplemented.push(rpc.to_string());
            }
        }
        assert!(!unimplemented.is_empty(), "{service}");
        expected.push((service.to_string(), unimplemented));
    }
    let readme = readme_list();
    let as_bullets = |l: &[(String, Vec<String>)]| {
        l.iter()
            .map(|(s, n)| format!("- {s}: {}.", n.join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        as_bullets(&readme),
        as_bullets(&expected),
        "README.md (section \"What is supported\") must list exactly these RPCs"
    );
}
