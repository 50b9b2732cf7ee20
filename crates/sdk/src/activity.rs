//! Activities: ordinary async functions run by the worker, with an [`ActContext`] for their
//! attempt's facts, throttled heartbeats and cancellation delivered through heartbeat responses.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};
use tokio::sync::{Notify, watch};

use crate::failure::ApplicationFailure;
use crate::payload::{self, ToPayloads};

/// Facts about the running attempt.
#[derive(Debug, Clone, Default)]
pub struct ActivityInfo {
    pub activity_id: String,
    pub activity_type: String,
    pub attempt: i32,
    pub workflow_id: String,
    pub workflow_run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub heartbeat_timeout: Option<Duration>,
    pub start_to_close_timeout: Option<Duration>,
    pub task_token: Vec<u8>,
}

pub(crate) struct Heartbeats {
    /// The latest details not yet sent.
    pub details: std::sync::Mutex<Option<Payloads>>,
    pub notify: Notify,
}

/// The activity's view of its attempt.
#[derive(Clone)]
pub struct ActContext {
    info: Arc<ActivityInfo>,
    previous_details: Option<Payloads>,
    pub(crate) heartbeats: Arc<Heartbeats>,
    pub(crate) cancel: watch::Receiver<bool>,
}

impl ActContext {
    pub(crate) fn new(
        info: ActivityInfo,
        previous_details: Option<Payloads>,
        cancel: watch::Receiver<bool>,
    ) -> Self {
        ActContext {
            info: Arc::new(info),
            previous_details,
            heartbeats: Arc::new(Heartbeats {
                details: std::sync::Mutex::new(None),
                notify: Notify::new(),
            }),
            cancel,
        }
    }

    /// Facts about this attempt.
    pub fn info(&self) -> &ActivityInfo {
        &self.info
    }

    /// Records progress. Heartbeats are sent to the server at most every 80 % of the heartbeat
    /// timeout (30 s without one); the last details win.
    pub fn heartbeat(&self, details: impl ToPayloads) {
        let p = details.to_payloads().ok();
        *self
            .heartbeats
            .details
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(p.unwrap_or_default());
        self.heartbeats.notify.notify_one();
    }

    /// The details of the last heartbeat of an earlier attempt, if any.
    pub fn heartbeat_details<T: DeserializeOwned>(&self) -> Option<T> {
        let p = self.previous_details.as_ref()?;
        payload::from_payloads(Some(p)).ok()
    }

    /// Whether cancellation was requested (learned from a heartbeat response).
    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Resolves when cancellation is requested.
    pub async fn cancelled(&self) {
        let mut rx = self.cancel.clone();
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// A registered activity, type-erased.
pub type ActivityFn = Arc<
    dyn Fn(
            ActContext,
            Option<Payloads>,
        ) -> BoxFuture<'static, Result<Option<Payload>, ApplicationFailure>>
        + Send
        + Sync,
>;

/// Converts a typed activity function into an [`ActivityFn`].
pub fn erase<I, O, F, Fut>(f: F) -> ActivityFn
where
    I: DeserializeOwned + Send + 'static,
    O: serde::Serialize + Send + 'static,
    F: Fn(ActContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ApplicationFailure>> + Send + 'static,
{
    Arc::new(
        move |ctx, input| match payload::from_payloads::<I>(input.as_ref()) {
            Ok(arg) => {
                let fut = f(ctx, arg);
                Box::pin(async move {
                    let out = fut.await?;
                    payload::to_payload(&out)
                        .map(Some)
                        .map_err(|e| ApplicationFailure::non_retryable(e.to_string()))
                })
            }
            Err(e) => {
                let msg = format!("activity input could not be decoded: {e}");
                Box::pin(async move {
                    Err(ApplicationFailure::non_retryable(msg).with_type("PayloadError"))
                })
            }
        },
    )
}
