//! Perdure's Rust SDK. Today it holds the **client**: connect to any Temporal-compatible server
//! (a Perdure server or a Temporal server) and start, signal, query, update, cancel, terminate,
//! describe, list, count and await workflow executions written with any SDK.
//!
//! ```no_run
//! use perdure_sdk::{Client, ClientOptions, StartOptions};
//!
//! # async fn demo() -> Result<(), perdure_sdk::ClientError> {
//! let client = Client::connect(ClientOptions::new("127.0.0.1:7233")).await?;
//! let order = client
//!     .start_workflow("order", (3,), StartOptions::new("order-3", "orders"))
//!     .await?;
//! let status: serde_json::Value = order.query("getStatus", ()).await?;
//! order.signal("pickedUp", ()).await?;
//! let result: serde_json::Value = order.result().await?;
//! # Ok(()) }
//! ```
//!
//! Payloads use the same default encoding as the TypeScript and Python SDKs ([`payload`]), so a
//! Rust client drives their workflows and theirs drive Rust ones.

pub mod activity;
pub mod client;
pub mod error;
pub mod failure;
pub mod payload;
pub mod worker;
pub mod workflow;

pub use activity::{ActContext, ActivityInfo};
pub use client::{
    Client, ClientOptions, Count, IdConflictPolicy, IdReusePolicy, RetryPolicy, StartOptions,
    Status, TlsOptions, WorkflowHandle,
};
pub use error::ClientError;
pub use failure::{ActivityError, ApplicationFailure};
pub use payload::ToPayloads;
/// The Temporal message types this SDK speaks.
pub use temporalio_protos::temporal::api as proto;
pub use worker::{ShutdownHandle, Worker, WorkerOptions};
pub use workflow::{
    ActivityCancellation, ActivityOptions, WfContext, WorkflowError, WorkflowInfo, WorkflowResult,
};
