//! Failures as Temporal encodes them (`temporal.api.failure.v1.Failure`): what workflows and
//! activities raise, and what they receive when an activity, child or timer fails.

use temporalio_protos::temporal::api::common::v1::Payloads;
use temporalio_protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_protos::temporal::api::failure::v1::{
    ApplicationFailureInfo, CanceledFailureInfo, Failure,
};

use crate::error::failure_chain;
use crate::payload::{PayloadError, ToPayloads};

/// The `source` recorded in failures this SDK creates.
pub const SOURCE: &str = "perdure-sdk";

/// An application error raised by workflow or activity code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplicationFailure {
    /// Human-readable message.
    pub message: String,
    /// Error type name (used by `non_retryable_error_types`).
    pub r#type: String,
    /// Never retried, whatever the retry policy says.
    pub non_retryable: bool,
    /// Extra data for the caller.
    pub details: Option<Payloads>,
    /// What caused it.
    pub cause: Option<Box<Failure>>,
}

impl ApplicationFailure {
    /// A retryable failure.
    pub fn new(message: impl Into<String>) -> Self {
        ApplicationFailure {
            message: message.into(),
            ..Default::default()
        }
    }

    /// A failure that is never retried.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        ApplicationFailure {
            message: message.into(),
            non_retryable: true,
            ..Default::default()
        }
    }

    /// Sets the error type name.
    pub fn with_type(mut self, t: impl Into<String>) -> Self {
        self.r#type = t.into();
        self
    }

    /// Attaches details.
    pub fn with_details(mut self, d: impl ToPayloads) -> Result<Self, PayloadError> {
        self.details = Some(d.to_payloads()?);
        Ok(self)
    }

    /// The wire form.
    pub fn to_failure(&self) -> Failure {
        Failure {
            message: self.message.clone(),
            source: SOURCE.into(),
            cause: self.cause.clone(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: self.r#type.clone(),
                    non_retryable: self.non_retryable,
                    details: self.details.clone(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }
}

impl std::fmt::Display for ApplicationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for ApplicationFailure {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cur = c.source();
        }
        ApplicationFailure::new(message).with_type(short_type_name::<E>())
    }
}

fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    full.rsplit("::").next().unwrap_or(full).to_string()
}

/// A failure with a cancellation cause.
pub fn cancelled_failure(message: &str) -> Failure {
    Failure {
        message: message.into(),
        source: SOURCE.into(),
        failure_info: Some(FailureInfo::CanceledFailureInfo(
            CanceledFailureInfo::default(),
        )),
        ..Default::default()
    }
}

/// How an activity (or child workflow) ended without a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActivityError {
    /// It failed (after the retries its policy allowed); `failure` is the ActivityFailure with
    /// the last attempt's failure as cause.
    #[error("activity failed: {}", failure_chain(.failure))]
    Failed { failure: Box<Failure> },
    /// One of its timeouts fired.
    #[error("activity timed out: {}", failure_chain(.failure))]
    TimedOut { failure: Box<Failure> },
    /// It was cancelled.
    #[error("activity cancelled")]
    Cancelled { failure: Box<Failure> },
    /// Its result could not be decoded.
    #[error(transparent)]
    Payload(#[from] PayloadErrorString),
}

/// A payload error in a form that can be cloned and compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PayloadErrorString(pub String);

impl From<PayloadError> for ActivityError {
    fn from(e: PayloadError) -> Self {
        ActivityError::Payload(PayloadErrorString(e.to_string()))
    }
}

impl ActivityError {
    /// The failure as recorded in history.
    pub fn failure(&self) -> Failure {
        match self {
            ActivityError::Failed { failure }
            | ActivityError::TimedOut { failure }
            | ActivityError::Cancelled { failure } => (**failure).clone(),
            ActivityError::Payload(p) => {
                ApplicationFailure::non_retryable(p.0.clone()).to_failure()
            }
        }
    }

    /// The innermost cause's message (e.g. the activity's own error message).
    pub fn root_message(&self) -> String {
        let mut f = self.failure();
        while let Some(c) = f.cause.take() {
            f = *c;
        }
        f.message
    }
}
