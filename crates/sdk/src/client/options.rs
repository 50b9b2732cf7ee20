//! How to reach the server and how to start a workflow: [`ClientOptions`], [`TlsOptions`],
//! [`StartOptions`] and the id policies.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use temporalio_protos::temporal::api::enums::v1::{
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};

use crate::common::RetryPolicy;

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `host:port` (or a full `http://`/`https://` URL).
    pub address: String,
    /// Namespace of every call (default `default`).
    pub namespace: String,
    /// Identity recorded in history events (default `<pid>@<hostname>`).
    pub identity: String,
    /// Sent as `authorization: Bearer <key>`; implies TLS unless `tls` is set explicitly.
    pub api_key: Option<String>,
    /// TLS with the system's root certificates (`Some(domain)` overrides the server name).
    pub tls: Option<TlsOptions>,
    /// Extra gRPC metadata on every call.
    pub headers: Vec<(String, String)>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

/// TLS settings.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// The name to check the server's certificate against (default: the address's host).
    pub domain: Option<String>,
    /// Extra PEM root certificate(s) to trust.
    pub ca_pem: Option<Vec<u8>>,
    /// The client's own PEM certificate and private key, for servers that require mutual TLS.
    pub client_identity: Option<ClientIdentity>,
}

/// A client certificate (PEM, with its chain) and its PEM private key.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl ClientOptions {
    /// Options for `address` in namespace `default`.
    pub fn new(address: impl Into<String>) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        ClientOptions {
            address: address.into(),
            namespace: "default".into(),
            identity: format!("{}@{host}", std::process::id()),
            api_key: None,
            tls: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Sets the identity.
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// Sets an API key (and turns TLS on unless it was configured).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        if self.tls.is_none() {
            self.tls = Some(TlsOptions::default());
        }
        self
    }

    /// Turns TLS on.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Adds a gRPC metadata header to every call.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }
}

/// A workflow's status.
pub use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus as Status;
/// What to do when the id is in use by a running workflow.
pub use temporalio_protos::temporal::api::enums::v1::WorkflowIdConflictPolicy as IdConflictPolicy;
/// Whether a new run may reuse the id of a closed one.
pub use temporalio_protos::temporal::api::enums::v1::WorkflowIdReusePolicy as IdReusePolicy;

/// How to start a workflow.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Workflow id (required).
    pub id: String,
    /// Task queue its worker polls (required).
    pub task_queue: String,
    /// Limit on the whole chain of runs.
    pub execution_timeout: Option<Duration>,
    /// Limit on one run.
    pub run_timeout: Option<Duration>,
    /// Limit on one workflow task (server default 10 s).
    pub task_timeout: Option<Duration>,
    /// Retries of the whole workflow (none by default).
    pub retry_policy: Option<RetryPolicy>,
    /// Id reuse policy (server default: allow duplicate).
    pub id_reuse_policy: Option<WorkflowIdReusePolicy>,
    /// Id conflict policy (server default: fail).
    pub id_conflict_policy: Option<WorkflowIdConflictPolicy>,
    /// Memo fields, JSON-encoded.
    pub memo: HashMap<String, serde_json::Value>,
    /// Search attributes, JSON-encoded (the server knows their types).
    pub search_attributes: HashMap<String, serde_json::Value>,
    /// Cron schedule (`* * * * *` or `@every 1m`).
    pub cron_schedule: String,
    /// Delay before the first workflow task.
    pub start_delay: Option<Duration>,
    /// Idempotency key; a fresh one by default.
    pub request_id: Option<String>,
    /// A one-line summary for people (shown by describe and UIs; the run's user metadata).
    pub static_summary: Option<String>,
    /// Longer details for people, shown with the summary.
    pub static_details: Option<String>,
}

impl StartOptions {
    /// Options with the two required fields.
    pub fn new(id: impl Into<String>, task_queue: impl Into<String>) -> Self {
        StartOptions {
            id: id.into(),
            task_queue: task_queue.into(),
            ..Default::default()
        }
    }
}

/// Convenience for building memo/search attribute maps.
pub fn json_map<K: Into<String>, V: Serialize>(
    entries: impl IntoIterator<Item = (K, V)>,
) -> HashMap<String, serde_json::Value> {
    entries
        .into_iter()
        .map(|(k, v)| (k.into(), serde_json::to_value(v).unwrap_or_default()))
        .collect()
}
