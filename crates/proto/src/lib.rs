//! Temporal wire types for Perdure: the message types of `temporalio-protos`, plus the
//! `WorkflowService` and `OperatorService` server traits generated at build time from that crate's
//! descriptor set (no `.proto` file lives in this repository).

pub use prost_types;
pub use temporalio_protos::temporal::api;
pub use temporalio_protos::{google, grpc};

/// Generated server traits.
pub mod service {
    /// `temporal.api.workflowservice.v1`: the `WorkflowService` server.
    pub mod workflowservice {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("temporal.api.workflowservice.v1");
    }
    /// `temporal.api.operatorservice.v1`: the `OperatorService` server.
    pub mod operatorservice {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("temporal.api.operatorservice.v1");
    }
}
