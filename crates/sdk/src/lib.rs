//! Perdure's Rust SDK: write durable workflows as ordinary async Rust functions, run them on a
//! [`Worker`], and drive them with a [`Client`]. It works against a Perdure server and against a
//! Temporal server alike.
//!
//! # Quick start
//!
//! Start a server (`perdure server start-dev`, or `temporal server start-dev`), then:
//!
//! ```no_run
//! use std::time::Duration;
//! use perdure_sdk::{
//!     ActContext, ActivityOptions, ApplicationFailure, Client, ClientOptions, StartOptions,
//!     WfContext, Worker, WorkerOptions, WorkflowResult,
//! };
//!
//! /// A workflow: deterministic code; everything that touches the world is an activity.
//! async fn greet(ctx: WfContext, name: String) -> WorkflowResult<String> {
//!     let opts = ActivityOptions::start_to_close(Duration::from_secs(10));
//!     let greeting: String = ctx.activity("compose", (name,), opts).await?;
//!     ctx.sleep(Duration::from_secs(1)).await?; // a durable timer
//!     Ok(greeting)
//! }
//!
//! /// An activity: any async code; failures are retried by the server.
//! async fn compose(_ctx: ActContext, name: String) -> Result<String, ApplicationFailure> {
//!     Ok(format!("Hello, {name}!"))
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect(ClientOptions::new("127.0.0.1:7233")).await?;
//! let mut worker = Worker::new(client.clone(), WorkerOptions::new("greetings"));
//! worker.register_workflow("greet", greet).register_activity("compose", compose);
//! let stop = worker.shutdown_handle();
//! let running = tokio::spawn(worker.run());
//!
//! let greeting: String = client
//!     .execute_workflow("greet", ("Ada",), StartOptions::new("greet-ada", "greetings"))
//!     .await?;
//! assert_eq!(greeting, "Hello, Ada!");
//! stop.shutdown();
//! running.await??;
//! # Ok(()) }
//! ```
//!
//! A complete program, the food-delivery order of Temporal's samples (an activity the server
//! retries, signals, a query, conditions with timeouts), is the `food_delivery` example:
//! `cargo run --release --example food_delivery -- --address 127.0.0.1:7233`.
//!
//! # Writing workflows
//!
//! A workflow function gets a [`WfContext`] and its first argument, and returns a
//! [`WorkflowResult`]. Through the context it runs activities ([`WfContext::activity`]), child
//! workflows, timers ([`WfContext::sleep`], [`WfContext::timer`]), waits on conditions
//! ([`WfContext::condition`], [`WfContext::condition_timeout`]), handles signals, queries and
//! updates ([`WfContext::on_signal`], [`WfContext::on_query`], [`WfContext::on_update`]), reads
//! time and randomness that replay identically ([`WfContext::now`], [`WfContext::random_u64`],
//! [`WfContext::uuid4`], [`WfContext::side_effect`]), versions code ([`WfContext::patched`]),
//! signals or cancels other workflows, and continues as new ([`WfContext::continue_as_new`]).
//! State shared with handlers lives in `Rc<RefCell<..>>`: a workflow runs on one thread.
//!
//! After a crash or a cache eviction the worker re-runs the function against the recorded
//! history; every recorded step resolves at once. Code that issues different commands than the
//! history recorded fails its workflow task (not the workflow) with a nondeterminism error naming
//! the event and the command.
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
pub mod common;
pub mod error;
pub mod failure;
pub mod history_json;
pub mod payload;
pub mod replayer;
pub mod worker;
pub mod workflow;

pub use activity::{ActContext, ActivityInfo};
pub use client::{
    Client, ClientIdentity, ClientOptions, Count, IdConflictPolicy, IdReusePolicy, RetryPolicy,
    StartOptions, Status, TlsOptions, WorkflowHandle,
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
    ActivityCancellation, ActivityHandle, ActivityOptions, ChildHandle, ChildOptions,
    ExternalHandle, TimerHandle, WfContext, WorkflowError, WorkflowInfo, WorkflowResult,
};
