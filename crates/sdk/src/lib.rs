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
//!
//! # Replaying histories
//!
//! A [`Replayer`] runs workflow code against recorded histories without a server, so a test can
//! check that changed code still matches the executions already running: register the workflow
//! functions as on a [`Worker`] and call [`Replayer::replay_json`] on a history exported with
//! `temporal workflow show --output json` (or [`Replayer::replay_many`] over several). A mismatch
//! is a [`ReplayError::Nondeterminism`] naming the event and the command. [`history_from_json`]
//! and [`history_to_json`] convert histories from and to that proto3 JSON form.

pub mod activity;
pub mod client;
pub mod error;
pub mod failure;
pub mod history_json;
pub mod payload;
pub mod replayer;
pub mod worker;
pub mod workflow;

pub use activity::{ActContext, ActivityInfo};
pub use client::{
    Client, ClientOptions, Count, IdConflictPolicy, IdReusePolicy, RetryPolicy, StartOptions,
    Status, TlsOptions, WorkflowHandle,
};
pub use error::ClientError;
pub use failure::{ActivityError, ApplicationFailure};
pub use history_json::{HistoryJsonError, history_from_json, history_to_json};
pub use payload::ToPayloads;
pub use replayer::{ReplayError, ReplayFailure, ReplayResults, Replayer};
/// The Temporal message types this SDK speaks.
pub use temporalio_protos::temporal::api as proto;
pub use worker::{ShutdownHandle, Worker, WorkerOptions};
pub use workflow::{
    ActivityCancellation, ActivityOptions, WfContext, WorkflowError, WorkflowInfo, WorkflowResult,
};
