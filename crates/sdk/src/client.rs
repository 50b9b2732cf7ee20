//! The client: connects to a Temporal-compatible server (Perdure or Temporal) and starts, signals,
//! queries, updates, cancels, terminates, describes, lists and awaits workflow executions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::common::v1::{
    Memo, Payload, Payloads, RetryPolicy as ProtoRetryPolicy, SearchAttributes, WorkflowExecution,
    WorkflowType,
};
use temporalio_protos::temporal::api::enums::v1::{
    EventType, HistoryEventFilterType, QueryRejectCondition, TaskQueueKind,
    UpdateWorkflowExecutionLifecycleStage, WorkflowExecutionStatus, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy,
};
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes as A;
use temporalio_protos::temporal::api::operatorservice::v1::operator_service_client::OperatorServiceClient;
use temporalio_protos::temporal::api::query::v1::WorkflowQuery;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::update::v1 as update;
use temporalio_protos::temporal::api::workflow::v1::WorkflowExecutionInfo;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::error::ClientError;
use crate::payload::{self, ToPayloads};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The channel every service client uses: adds the API key and custom headers to each call.
pub type Transport = InterceptedService<Channel, Headers>;

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

/// Adds fixed metadata to every request.
#[derive(Clone, Default)]
pub struct Headers(Arc<Vec<(AsciiMetadataKey, AsciiMetadataValue)>>);

impl Headers {
    /// The metadata every call carries: the API key, the namespace, the SDK's name and version,
    /// and the caller's own headers.
    fn for_options(options: &ClientOptions) -> Result<Headers> {
        let mut headers = Vec::new();
        let mut add = |k: &str, v: &str| -> Result<()> {
            let key = AsciiMetadataKey::from_bytes(k.as_bytes())
                .map_err(|_| ClientError::InvalidArgument(format!("bad header name {k:?}")))?;
            let value = AsciiMetadataValue::try_from(v)
                .map_err(|_| ClientError::InvalidArgument(format!("bad value for header {k}")))?;
            headers.push((key, value));
            Ok(())
        };
        if let Some(key) = &options.api_key {
            add("authorization", &format!("Bearer {key}"))?;
        }
        add("temporal-namespace", &options.namespace)?;
        add("client-name", "perdure-sdk")?;
        add("client-version", env!("CARGO_PKG_VERSION"))?;
        for (k, v) in &options.headers {
            add(k, v)?;
        }
        Ok(Headers(Arc::new(headers)))
    }
}

impl Interceptor for Headers {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        for (k, v) in self.0.iter() {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        Ok(req)
    }
}

/// A connected client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    workflow: WorkflowServiceClient<Transport>,
    operator: OperatorServiceClient<Transport>,
    namespace: String,
    identity: String,
    address: String,
}

/// A retry policy for workflows (and activities).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Wait before the first retry (server default 1 s).
    pub initial_interval: Option<Duration>,
    /// Growth of the wait per attempt (server default 2.0).
    pub backoff_coefficient: f64,
    /// Cap on the wait (server default 100 × the initial interval).
    pub maximum_interval: Option<Duration>,
    /// Attempts in all, 0 for unlimited.
    pub maximum_attempts: i32,
    /// Application failure types that are never retried.
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: None,
            backoff_coefficient: 0.0,
            maximum_interval: None,
            maximum_attempts: 0,
            non_retryable_error_types: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// The wire form.
    pub fn to_proto(&self) -> ProtoRetryPolicy {
        ProtoRetryPolicy {
            initial_interval: self.initial_interval.map(pdur),
            backoff_coefficient: self.backoff_coefficient,
            maximum_interval: self.maximum_interval.map(pdur),
            maximum_attempts: self.maximum_attempts,
            non_retryable_error_types: self.non_retryable_error_types.clone(),
        }
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

/// The count of executions matching a query, with `GROUP BY` groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    /// All matching executions.
    pub count: i64,
    /// `(group values, count)` per group when the query has `GROUP BY`.
    pub groups: Vec<(Vec<serde_json::Value>, i64)>,
}

pub(crate) fn pdur(d: Duration) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn json_payloads(m: &HashMap<String, serde_json::Value>) -> Result<HashMap<String, Payload>> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), payload::to_payload(v)?)))
        .collect()
}

/// Long polls are held by the server for up to a minute; give them a little more.
const LONG_POLL: Duration = Duration::from_secs(70);
/// Ordinary calls.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// How long transient failures (server restarting or overloaded) are retried.
const RETRY_FOR: Duration = Duration::from_secs(10);

/// Failures worth retrying: the request did not take effect, or repeating it is harmless.
fn retryable(s: &tonic::Status) -> bool {
    use std::error::Error as _;
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Aborted => true,
        // The connection broke under the call (not a cancellation by us).
        tonic::Code::Cancelled | tonic::Code::Unknown => s.source().is_some(),
        _ => false,
    }
}

/// Calls an RPC, retrying transient failures for up to [`RETRY_FOR`] with backoff, as the
/// official SDKs do. Every retried request is idempotent (request ids, update ids, reads).
macro_rules! call {
    ($svc:expr, $method:ident, $msg:expr, $timeout:expr) => {{
        let msg = $msg;
        let mut delay = Duration::from_millis(50);
        let started = tokio::time::Instant::now();
        loop {
            match $svc.$method(req(msg.clone(), $timeout)).await {
                Err(s) if retryable(&s) && started.elapsed() < RETRY_FOR => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                other => break other,
            }
        }
    }};
}

fn req<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

impl Client {
    /// Connects and checks that the server answers (`GetSystemInfo`).
    pub async fn connect(options: ClientOptions) -> Result<Client> {
        let unreachable = |message: String| ClientError::Unreachable {
            address: options.address.clone(),
            message,
        };
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let uri = if options.address.contains("://") {
            options.address.clone()
        } else {
            format!("{scheme}://{}", options.address)
        };
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(|e| ClientError::InvalidArgument(format!("bad address: {e}")))?
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(tls) = &options.tls {
            let mut cfg = ClientTlsConfig::new().with_native_roots();
            if let Some(d) = &tls.domain {
                cfg = cfg.domain_name(d.clone());
            }
            if let Some(pem) = &tls.ca_pem {
                cfg = cfg.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(cfg)
                .map_err(|e| ClientError::InvalidArgument(format!("TLS: {e}")))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| unreachable(source_chain(&e)))?;
        let headers = Headers::for_options(&options)?;
        let workflow = WorkflowServiceClient::with_interceptor(channel.clone(), headers.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(128 << 20)
            .max_encoding_message_size(128 << 20);
        let operator = OperatorServiceClient::with_interceptor(channel, headers)
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(128 << 20);
        let client = Client {
            inner: Arc::new(Inner {
                workflow,
                operator,
                namespace: options.namespace.clone(),
                identity: options.identity.clone(),
                address: options.address.clone(),
            }),
        };
        client
            .workflow_service()
            .get_system_info(req(ws::GetSystemInfoRequest {}, options.connect_timeout))
            .await
            .map_err(|s| match s.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
                    unreachable(s.message().to_string())
                }
                _ => ClientError::from(s),
            })?;
        Ok(client)
    }

    /// The namespace of this client.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The identity recorded in history.
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// The address it connected to.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// The raw `WorkflowService` client, for calls this API does not wrap.
    pub fn workflow_service(&self) -> WorkflowServiceClient<Transport> {
        self.inner.workflow.clone()
    }

    /// The raw `OperatorService` client (search attributes, namespaces).
    pub fn operator_service(&self) -> OperatorServiceClient<Transport> {
        self.inner.operator.clone()
    }

    /// A handle to an existing workflow: its latest run, or `run_id` if given.
    pub fn workflow_handle(
        &self,
        workflow_id: impl Into<String>,
        run_id: Option<String>,
    ) -> WorkflowHandle {
        WorkflowHandle {
            client: self.clone(),
            workflow_id: workflow_id.into(),
            run_id: run_id.filter(|r| !r.is_empty()),
            first_execution_run_id: None,
        }
    }

    fn start_request(
        &self,
        workflow_type: &str,
        args: &dyn ToPayloadsDyn,
        o: &StartOptions,
    ) -> Result<ws::StartWorkflowExecutionRequest> {
        if o.id.is_empty() {
            return Err(ClientError::InvalidArgument("workflow id is empty".into()));
        }
        if o.task_queue.is_empty() {
            return Err(ClientError::InvalidArgument("task queue is empty".into()));
        }
        Ok(ws::StartWorkflowExecutionRequest {
            namespace: self.inner.namespace.clone(),
            workflow_id: o.id.clone(),
            workflow_type: Some(WorkflowType {
                name: workflow_type.to_string(),
            }),
            task_queue: Some(TaskQueue {
                name: o.task_queue.clone(),
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            input: Some(args.payloads()?).filter(|p| !p.payloads.is_empty()),
            workflow_execution_timeout: o.execution_timeout.map(pdur),
            workflow_run_timeout: o.run_timeout.map(pdur),
            workflow_task_timeout: o.task_timeout.map(pdur),
            identity: self.inner.identity.clone(),
            request_id: o
                .request_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            workflow_id_reuse_policy: o.id_reuse_policy.map(|p| p as i32).unwrap_or(0),
            workflow_id_conflict_policy: o.id_conflict_policy.map(|p| p as i32).unwrap_or(0),
            retry_policy: o.retry_policy.as_ref().map(RetryPolicy::to_proto),
            cron_schedule: o.cron_schedule.clone(),
            memo: Some(Memo {
                fields: json_payloads(&o.memo)?,
            })
            .filter(|m| !m.fields.is_empty()),
            search_attributes: Some(SearchAttributes {
                indexed_fields: json_payloads(&o.search_attributes)?,
            })
            .filter(|s| !s.indexed_fields.is_empty()),
            workflow_start_delay: o.start_delay.map(pdur),
            ..Default::default()
        })
    }

    /// Starts a workflow of type `workflow_type` with `args` (`()`, or a tuple of arguments).
    pub async fn start_workflow(
        &self,
        workflow_type: &str,
        args: impl ToPayloads,
        options: StartOptions,
    ) -> Result<WorkflowHandle> {
        let r = self.start_request(workflow_type, &args, &options)?;
        let resp = call!(
            self.workflow_service(),
            start_workflow_execution,
            r,
            RPC_TIMEOUT
        )
        .map_err(|s| with_workflow_id(s.into(), &options.id))?
        .into_inner();
        Ok(WorkflowHandle {
            client: self.clone(),
            workflow_id: options.id,
            run_id: None,
            first_execution_run_id: Some(resp.run_id),
        })
    }

    /// Starts a workflow and waits for its result.
    pub async fn execute_workflow<T: DeserializeOwned>(
        &self,
        workflow_type: &str,
        args: impl ToPayloads,
        options: StartOptions,
    ) -> Result<T> {
        self.start_workflow(workflow_type, args, options)
            .await?
            .result()
            .await
    }

    /// Sends a signal, starting the workflow first if it is not running.
    pub async fn signal_with_start(
        &self,
        workflow_type: &str,
        args: impl ToPayloads,
        signal: &str,
        signal_args: impl ToPayloads,
        options: StartOptions,
    ) -> Result<WorkflowHandle> {
        let s = self.start_request(workflow_type, &args, &options)?;
        let r = ws::SignalWithStartWorkflowExecutionRequest {
            namespace: s.namespace,
            workflow_id: s.workflow_id,
            workflow_type: s.workflow_type,
            task_queue: s.task_queue,
            input: s.input,
            workflow_execution_timeout: s.workflow_execution_timeout,
            workflow_run_timeout: s.workflow_run_timeout,
            workflow_task_timeout: s.workflow_task_timeout,
            identity: s.identity,
            request_id: s.request_id,
            workflow_id_reuse_policy: s.workflow_id_reuse_policy,
            workflow_id_conflict_policy: s.workflow_id_conflict_policy,
            signal_name: signal.to_string(),
            signal_input: Some(signal_args.to_payloads()?),
            retry_policy: s.retry_policy,
            cron_schedule: s.cron_schedule,
            memo: s.memo,
            search_attributes: s.search_attributes,
            workflow_start_delay: s.workflow_start_delay,
            ..Default::default()
        };
        let resp = call!(
            self.workflow_service(),
            signal_with_start_workflow_execution,
            r,
            RPC_TIMEOUT
        )
        .map_err(|s| with_workflow_id(s.into(), &options.id))?
        .into_inner();
        Ok(WorkflowHandle {
            client: self.clone(),
            workflow_id: options.id,
            run_id: None,
            first_execution_run_id: Some(resp.run_id),
        })
    }

    /// Every execution matching a visibility query (`""` for all), newest first, page by page.
    pub async fn list_workflows(&self, query: &str) -> Result<Vec<WorkflowExecutionInfo>> {
        let mut out = Vec::new();
        let mut token = Vec::new();
        loop {
            let (page, next) = self.list_workflows_page(query, 1000, token).await?;
            out.extend(page);
            if next.is_empty() {
                return Ok(out);
            }
            token = next;
        }
    }

    /// One page of a list; returns the rows and the token of the next page (empty at the end).
    pub async fn list_workflows_page(
        &self,
        query: &str,
        page_size: i32,
        next_page_token: Vec<u8>,
    ) -> Result<(Vec<WorkflowExecutionInfo>, Vec<u8>)> {
        let r = ws::ListWorkflowExecutionsRequest {
            namespace: self.inner.namespace.clone(),
            page_size,
            next_page_token,
            query: query.to_string(),
        };
        let resp = call!(
            self.workflow_service(),
            list_workflow_executions,
            r,
            RPC_TIMEOUT
        )?
        .into_inner();
        Ok((resp.executions, resp.next_page_token))
    }

    /// Counts executions matching a visibility query, with groups for `GROUP BY`.
    pub async fn count_workflows(&self, query: &str) -> Result<Count> {
        let r = ws::CountWorkflowExecutionsRequest {
            namespace: self.inner.namespace.clone(),
            query: query.to_string(),
        };
        let resp = call!(
            self.workflow_service(),
            count_workflow_executions,
            r,
            RPC_TIMEOUT
        )?
        .into_inner();
        let groups = resp
            .groups
            .iter()
            .map(|g| {
                let vals = g
                    .group_values
                    .iter()
                    .map(payload::from_payload::<serde_json::Value>)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((vals, g.count))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Count {
            count: resp.count,
            groups,
        })
    }
}

/// Object-safe view of [`ToPayloads`] for internal helpers.
trait ToPayloadsDyn {
    fn payloads(&self) -> Result<Payloads, payload::PayloadError>;
}
impl<T: ToPayloads> ToPayloadsDyn for T {
    fn payloads(&self) -> Result<Payloads, payload::PayloadError> {
        self.to_payloads()
    }
}

fn with_workflow_id(e: ClientError, id: &str) -> ClientError {
    match e {
        ClientError::WorkflowAlreadyStarted { run_id, .. } => ClientError::WorkflowAlreadyStarted {
            workflow_id: id.to_string(),
            run_id,
        },
        other => other,
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A workflow execution: a workflow id, optionally pinned to one run.
#[derive(Clone)]
pub struct WorkflowHandle {
    client: Client,
    workflow_id: String,
    /// The run every call targets; `None` means the latest run.
    run_id: Option<String>,
    /// For handles from a start: the chain the calls must stay in.
    first_execution_run_id: Option<String>,
}

impl std::fmt::Debug for WorkflowHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowHandle")
            .field("workflow_id", &self.workflow_id)
            .field("run_id", &self.run_id)
            .field("first_execution_run_id", &self.first_execution_run_id)
            .finish()
    }
}

impl WorkflowHandle {
    /// The workflow id.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The run this handle is pinned to, if any.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The run id that a start returned (the first run of the chain this handle follows).
    pub fn first_execution_run_id(&self) -> Option<&str> {
        self.first_execution_run_id.as_deref()
    }

    fn execution(&self) -> Option<WorkflowExecution> {
        Some(WorkflowExecution {
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone().unwrap_or_default(),
        })
    }

    fn svc(&self) -> WorkflowServiceClient<Transport> {
        self.client.workflow_service()
    }

    fn ns(&self) -> String {
        self.client.inner.namespace.clone()
    }

    /// Sends a signal.
    pub async fn signal(&self, name: &str, args: impl ToPayloads) -> Result<()> {
        let r = ws::SignalWorkflowExecutionRequest {
            namespace: self.ns(),
            workflow_execution: self.execution(),
            signal_name: name.to_string(),
            input: Some(args.to_payloads()?),
            identity: self.client.inner.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        call!(self.svc(), signal_workflow_execution, r, RPC_TIMEOUT)?;
        Ok(())
    }

    /// Runs a query and decodes its answer.
    pub async fn query<T: DeserializeOwned>(&self, name: &str, args: impl ToPayloads) -> Result<T> {
        let r = ws::QueryWorkflowRequest {
            namespace: self.ns(),
            execution: self.execution(),
            query: Some(WorkflowQuery {
                query_type: name.to_string(),
                query_args: Some(args.to_payloads()?).filter(|p| !p.payloads.is_empty()),
                header: None,
            }),
            query_reject_condition: QueryRejectCondition::None as i32,
        };
        let resp = call!(self.svc(), query_workflow, r, RPC_TIMEOUT)?.into_inner();
        if let Some(rej) = resp.query_rejected {
            let status = WorkflowExecutionStatus::try_from(rej.status)
                .map(|s| s.as_str_name().to_string())
                .unwrap_or_else(|_| rej.status.to_string());
            return Err(ClientError::QueryRejected { status });
        }
        Ok(payload::from_payloads(resp.query_result.as_ref())?)
    }

    /// Runs an update and waits for its outcome.
    pub async fn update<T: DeserializeOwned>(
        &self,
        name: &str,
        args: impl ToPayloads,
    ) -> Result<T> {
        let update_id = uuid::Uuid::new_v4().to_string();
        let r = ws::UpdateWorkflowExecutionRequest {
            namespace: self.ns(),
            workflow_execution: self.execution(),
            first_execution_run_id: self.first_execution_run_id.clone().unwrap_or_default(),
            wait_policy: Some(update::WaitPolicy {
                lifecycle_stage: UpdateWorkflowExecutionLifecycleStage::Completed as i32,
            }),
            request: Some(update::Request {
                meta: Some(update::Meta {
                    update_id: update_id.clone(),
                    identity: self.client.inner.identity.clone(),
                }),
                input: Some(update::Input {
                    header: None,
                    name: name.to_string(),
                    args: Some(args.to_payloads()?),
                }),
                ..Default::default()
            }),
        };
        let mut resp = call!(self.svc(), update_workflow_execution, r, LONG_POLL)?.into_inner();
        // The server may answer before completion (its own deadline): poll for the outcome.
        while resp.outcome.is_none() {
            let p = ws::PollWorkflowExecutionUpdateRequest {
                namespace: self.ns(),
                update_ref: Some(update::UpdateRef {
                    workflow_execution: self.execution(),
                    update_id: update_id.clone(),
                }),
                identity: self.client.inner.identity.clone(),
                wait_policy: Some(update::WaitPolicy {
                    lifecycle_stage: UpdateWorkflowExecutionLifecycleStage::Completed as i32,
                }),
            };
            let polled =
                call!(self.svc(), poll_workflow_execution_update, p, LONG_POLL)?.into_inner();
            resp.outcome = polled.outcome;
        }
        match resp.outcome.and_then(|o| o.value) {
            Some(update::outcome::Value::Success(p)) => Ok(payload::from_payloads(Some(&p))?),
            Some(update::outcome::Value::Failure(f)) => Err(ClientError::UpdateFailed {
                failure: Box::new(f),
            }),
            None => Err(ClientError::Rpc(tonic::Status::internal(
                "update outcome missing",
            ))),
        }
    }

    /// Requests cancellation.
    pub async fn cancel(&self, reason: &str) -> Result<()> {
        let r = ws::RequestCancelWorkflowExecutionRequest {
            namespace: self.ns(),
            workflow_execution: self.execution(),
            identity: self.client.inner.identity.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            first_execution_run_id: self.first_execution_run_id.clone().unwrap_or_default(),
            reason: reason.to_string(),
            ..Default::default()
        };
        call!(
            self.svc(),
            request_cancel_workflow_execution,
            r,
            RPC_TIMEOUT
        )?;
        Ok(())
    }

    /// Terminates the workflow.
    pub async fn terminate(&self, reason: &str) -> Result<()> {
        let r = ws::TerminateWorkflowExecutionRequest {
            namespace: self.ns(),
            workflow_execution: self.execution(),
            reason: reason.to_string(),
            identity: self.client.inner.identity.clone(),
            first_execution_run_id: self.first_execution_run_id.clone().unwrap_or_default(),
            ..Default::default()
        };
        call!(self.svc(), terminate_workflow_execution, r, RPC_TIMEOUT)?;
        Ok(())
    }

    /// Describes the execution.
    pub async fn describe(&self) -> Result<ws::DescribeWorkflowExecutionResponse> {
        let r = ws::DescribeWorkflowExecutionRequest {
            namespace: self.ns(),
            execution: self.execution(),
        };
        Ok(call!(self.svc(), describe_workflow_execution, r, RPC_TIMEOUT)?.into_inner())
    }

    /// The whole event history of the run.
    pub async fn fetch_history(&self) -> Result<Vec<HistoryEvent>> {
        let mut events = Vec::new();
        let mut token = Vec::new();
        loop {
            let r = ws::GetWorkflowExecutionHistoryRequest {
                namespace: self.ns(),
                execution: self.execution(),
                maximum_page_size: 1000,
                next_page_token: token,
                ..Default::default()
            };
            let resp =
                call!(self.svc(), get_workflow_execution_history, r, RPC_TIMEOUT)?.into_inner();
            events.extend(resp.history.map(|h| h.events).unwrap_or_default());
            if resp.next_page_token.is_empty() {
                return Ok(events);
            }
            token = resp.next_page_token;
        }
    }

    /// Waits for the result, following continue-as-new, retries and cron runs to the last run.
    pub async fn result<T: DeserializeOwned>(&self) -> Result<T> {
        self.result_with(true).await
    }

    /// Waits for the result of this run only (`follow_runs = false`) or of the chain.
    pub async fn result_with<T: DeserializeOwned>(&self, follow_runs: bool) -> Result<T> {
        let mut run_id = self.run_id.clone().unwrap_or_default();
        loop {
            let close = self.close_event(&run_id).await?;
            let next = |new: &str| (follow_runs && !new.is_empty()).then(|| new.to_string());
            match close.attributes {
                Some(A::WorkflowExecutionCompletedEventAttributes(c)) => {
                    if let Some(n) = next(&c.new_execution_run_id) {
                        run_id = n;
                        continue;
                    }
                    return Ok(payload::from_payloads(c.result.as_ref())?);
                }
                Some(A::WorkflowExecutionFailedEventAttributes(f)) => {
                    if let Some(n) = next(&f.new_execution_run_id) {
                        run_id = n;
                        continue;
                    }
                    return Err(ClientError::WorkflowFailed {
                        failure: Box::new(f.failure.unwrap_or_default()),
                    });
                }
                Some(A::WorkflowExecutionTimedOutEventAttributes(t)) => {
                    if let Some(n) = next(&t.new_execution_run_id) {
                        run_id = n;
                        continue;
                    }
                    return Err(ClientError::WorkflowTimedOut);
                }
                Some(A::WorkflowExecutionContinuedAsNewEventAttributes(c)) => {
                    if follow_runs {
                        run_id = c.new_execution_run_id;
                        continue;
                    }
                    return Err(ClientError::WorkflowContinuedAsNew {
                        new_run_id: c.new_execution_run_id,
                    });
                }
                Some(A::WorkflowExecutionCanceledEventAttributes(_)) => {
                    return Err(ClientError::WorkflowCanceled);
                }
                Some(A::WorkflowExecutionTerminatedEventAttributes(t)) => {
                    return Err(ClientError::WorkflowTerminated { reason: t.reason });
                }
                _ => {
                    return Err(ClientError::Rpc(tonic::Status::internal(format!(
                        "unexpected close event {:?}",
                        EventType::try_from(close.event_type)
                    ))));
                }
            }
        }
    }

    /// Long-polls the close event of `run_id` (or of the latest run).
    async fn close_event(&self, run_id: &str) -> Result<HistoryEvent> {
        let mut token = Vec::new();
        loop {
            let r = ws::GetWorkflowExecutionHistoryRequest {
                namespace: self.ns(),
                execution: Some(WorkflowExecution {
                    workflow_id: self.workflow_id.clone(),
                    run_id: run_id.to_string(),
                }),
                wait_new_event: true,
                history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                next_page_token: token.clone(),
                skip_archival: true,
                ..Default::default()
            };
            match call!(self.svc(), get_workflow_execution_history, r, LONG_POLL) {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    if let Some(e) = resp.history.and_then(|h| h.events.into_iter().last()) {
                        return Ok(e);
                    }
                    token = resp.next_page_token;
                }
                // Our own deadline passed while the server held the poll: poll again.
                Err(s) if s.code() == tonic::Code::DeadlineExceeded => {}
                Err(s) => return Err(s.into()),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_is_a_bearer_header_and_turns_tls_on() {
        let o = ClientOptions::new("example.com:7233")
            .namespace("ns")
            .api_key("s3cret")
            .header("x-team", "orders");
        assert!(o.tls.is_some(), "an API key implies TLS");
        let mut h = Headers::for_options(&o).unwrap();
        let req = h.call(tonic::Request::new(())).unwrap();
        let md = req.metadata();
        assert_eq!(md.get("authorization").unwrap(), "Bearer s3cret");
        assert_eq!(md.get("temporal-namespace").unwrap(), "ns");
        assert_eq!(md.get("x-team").unwrap(), "orders");
        let bad = ClientOptions::new("x:1").header("bad header", "v");
        assert!(matches!(
            Headers::for_options(&bad),
            Err(ClientError::InvalidArgument(_))
        ));
    }
}
