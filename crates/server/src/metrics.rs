//! Prometheus metrics: [`install`] puts a process-wide recorder behind the `metrics` facade
//! (which the engine and the storage backends record through), [`serve`] answers `GET /metrics`
//! in Prometheus' text exposition format (0.0.4) on a listener of its own, and [`Rpc`] wraps each
//! gRPC service to count and time its requests. The same listener answers CPU profiles at
//! `/debug/pprof/profile` (see [`crate::profile`]).
//!
//! The recorder is `metrics-exporter-prometheus` without its default features: only its registry
//! and `PrometheusHandle::render` (no HTTP listener, push gateway, TLS or hyper client of its
//! own); `/metrics` is served by axum, which the workspace already uses. Names follow Temporal's
//! server (`common/metrics/metric_defs.go`) where it has a counterpart, so its dashboards mostly
//! work; as in Temporal's Prometheus output, counters carry no added `_total` suffix (the one
//! counter whose name ends in `_total` is named so). Histograms are Prometheus histograms
//! (`_bucket{le=...}`, `_sum`, `_count`); latencies are in seconds.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `service_requests` | counter | `operation`, `status` | gRPC requests answered, by method (`operation`, the path's last segment, e.g. `StartWorkflowExecution`; `unknown` for a method the services do not declare) and gRPC status (`status`, Go's code names as Temporal logs them: `OK`, `NotFound`, `InvalidArgument`, ...). The status is the response's `grpc-status`: from the headers when the answer is trailers-only (errors), else from the trailers; `Canceled` when the client went away before the status was sent (a cancelled long poll), `Unknown` when a response ended without one. |
//! | `service_latency` | histogram (s) | `operation`, `status` | time from the request's arrival to its status being sent (the trailers, or the headers of a trailers-only answer). |
//! | `service_errors` | counter | `operation`, `status` | requests that ended with a server-side error code (`Unknown`, `DeadlineExceeded`, `ResourceExhausted`, `Aborted`, `Unimplemented`, `Internal`, `Unavailable`, `DataLoss`), the codes Temporal counts in `service_errors`; client errors such as `NotFound` or `InvalidArgument` are only in `service_requests`. |
//! | `task_schedule_to_start_latency` | histogram (s) | `namespace`, `taskqueue`, `task_type` (`Workflow`, `Activity`) | from a task's scheduled time to its start when a poll takes it: a workflow task's scheduled time (labelled with the run's normal queue, also when taken from a sticky queue; query tasks and eagerly started first tasks are not recorded), an activity attempt's own scheduled time. |
//! | `approximate_backlog_count` | gauge | `namespace_id`, `taskqueue`, `task_type` | tasks queued in memory waiting for a poller (references re-validated when started, so stale ones count until a poll drops them). Sticky queues appear under their own names. |
//! | `perdure_task_queue_waiting_pollers` | gauge | `namespace_id`, `taskqueue`, `task_type` | long polls waiting on the queue for a task. |
//! | `persistence_requests` | counter | `operation` (`CommitGroup`), `backend` (`sqlite`, `postgres`) | group commits: transactions of the storage writer, each folding every batch queued meanwhile. |
//! | `persistence_errors` | counter | `operation`, `backend` | group commits whose transaction failed as a whole (every batch in it was refused). A batch refused alone, such as a fenced-off one, does not fail its group. |
//! | `persistence_latency` | histogram (s) | `operation`, `backend` | one group commit, from its transaction's start to its commit. |
//! | `perdure_commit_group_batches` | histogram | `backend` | batches folded into one group commit (1 to 512). |
//! | `perdure_run_cache_runs` | gauge | none | workflow runs held in memory (at most `--run-cache-size` idle ones, plus runs in use). |
//! | `perdure_run_cache_evictions_total` | counter | none | idle runs dropped from memory because the run cache was full (read back from the store on their next use). |
//! | `perdure_tasks_spilled_total` | counter | none | workflow and activity tasks left out of memory because `--queued-task-limit` tasks were already queued; each is queued again from the database once the backlog has drained to half the limit. |
//! | `numshards_gauge` | gauge | none | shards this process owns (Temporal's name for a history host's shard count). |
//! | `perdure_cluster_shards` | gauge | none | the cluster's shard count this process's engine runs with. |
//! | `perdure_cluster_leader` | gauge | none | 1 while this process leads the cluster (runs schedules, batch jobs, worker deployments and namespace changes), else 0. |
//! | `perdure_shard_ownership_lost_total` | counter | none | write batches the store refused because this process no longer owns their shard (a newer owner bumped its `range_id`): stale writes rejected. |

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use perdure_proto::service::operatorservice::OPERATOR_SERVICE_METHODS;
use perdure_proto::service::workflowservice::WORKFLOW_SERVICE_METHODS;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Bytes, Service, http};
use tonic::server::NamedService;

/// Bucket bounds (seconds) of request and commit latencies; long polls last up to a minute.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];
/// Bucket bounds (seconds) of schedule-to-start latencies: a task may wait long for a worker.
const SCHEDULE_TO_START_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
];
/// Bucket bounds of batches per group commit (at most 512 are folded together).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Another `metrics` recorder was installed in this process before ours.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct InstallError(String);

static HANDLE: OnceLock<Result<PrometheusHandle, InstallError>> = OnceLock::new();

/// Installs the process-wide recorder (idempotent; in-process test servers share it). Install it
/// before starting the engine: what is recorded earlier is not kept.
pub fn install() -> Result<(), InstallError> {
    handle().map(|_| ())
}

fn handle() -> Result<&'static PrometheusHandle, InstallError> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_latency".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("task_schedule_to_start_latency".into()),
                        SCHEDULE_TO_START_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("perdure_commit_group_batches".into()),
                        BATCH_BUCKETS,
                    )
                })
                .map_err(|e| InstallError(e.to_string()))?;
            let handle = builder
                .install_recorder()
                .map_err(|e| InstallError(e.to_string()))?;
            describe();
            // Without upkeep, histogram samples pile up until the next scrape.
            let h = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP);
                        h.run_upkeep();
                    }
                })
                .map_err(|e| InstallError(e.to_string()))?;
            Ok(handle)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// HELP lines for the exposition.
fn describe() {
    describe_counter!(
        "service_requests",
        "gRPC requests answered, by method and status"
    );
    describe_histogram!(
        "service_latency",
        "seconds from a gRPC request's arrival to its status"
    );
    describe_counter!(
        "service_errors",
        "gRPC requests that ended with a server-side error code"
    );
    describe_histogram!(
        "task_schedule_to_start_latency",
        "seconds from a task's scheduling to its start by a poller"
    );
    describe_gauge!(
        "approximate_backlog_count",
        "tasks queued in memory waiting for a poller"
    );
    describe_gauge!(
        "perdure_task_queue_waiting_pollers",
        "long polls waiting on the queue for a task"
    );
    describe_counter!(
        "persistence_requests",
        "group commits of the storage writer"
    );
    describe_counter!(
        "persistence_errors",
        "group commits whose transaction failed"
    );
    describe_histogram!("persistence_latency", "seconds one group commit took");
    describe_histogram!(
        "perdure_commit_group_batches",
        "write batches folded into one group commit"
    );
    describe_gauge!("numshards_gauge", "shards this process owns");
    describe_gauge!("perdure_cluster_shards", "the cluster's shard count");
    describe_gauge!(
        "perdure_cluster_leader",
        "1 while this process leads the cluster"
    );
    describe_gauge!("perdure_run_cache_runs", "workflow runs held in memory");
    describe_counter!(
        "perdure_run_cache_evictions_total",
        "idle runs dropped from memory because the run cache was full"
    );
    describe_counter!(
        "perdure_tasks_spilled_total",
        "tasks left out of memory at the queued-task limit (queued again from the database)"
    );
    describe_counter!(
        "perdure_shard_ownership_lost_total",
        "write batches refused because this process no longer owns their shard"
    );
}

/// Serves GET /metrics, and CPU profiles at GET /debug/pprof/profile (see [`crate::profile`]),
/// on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = handle().map_err(std::io::Error::other)?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }),
        )
        .route(
            "/debug/pprof/profile",
            axum::routing::get(crate::profile::handle),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The method names label values may take (both services'), so a client cannot add series.
fn operation(path: &str) -> &'static str {
    static KNOWN: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        WORKFLOW_SERVICE_METHODS
            .iter()
            .chain(OPERATOR_SERVICE_METHODS)
            .copied()
            .collect()
    });
    let name = path.rsplit('/').next().unwrap_or_default();
    known.get(name).copied().unwrap_or("unknown")
}

/// gRPC status codes by Go's names (`codes.Code.String()`), as Temporal's server logs them.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("Unknown")
}

/// Whether Temporal counts `code` in `service_errors` (a server-side failure).
fn server_error(code: i32) -> bool {
    // Unknown, DeadlineExceeded, ResourceExhausted, Aborted, Unimplemented, Internal,
    // Unavailable, DataLoss.
    matches!(code, 2 | 4 | 8 | 10 | 12 | 13 | 14 | 15)
}

const CANCELED: i32 = 1;
const UNKNOWN: i32 = 2;

/// The `grpc-status` of a header or trailer map, if it has one (`Unknown` if unreadable).
fn status_in(map: &http::HeaderMap) -> Option<i32> {
    let v = map.get("grpc-status")?;
    Some(
        std::str::from_utf8(v.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(UNKNOWN),
    )
}

/// One request being answered: recorded once, when its status is known, or as `Canceled` if it
/// is dropped first (the client went away).
struct Call {
    operation: &'static str,
    started: Instant,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: i32) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        record_call(
            self.operation,
            code_name(code),
            server_error(code),
            self.started.elapsed().as_secs_f64(),
        );
    }
}

/// The registered series of one (operation, status) pair.
struct CallHandles {
    requests: metrics::Counter,
    latency: metrics::Histogram,
    errors: Option<metrics::Counter>,
}

/// Records one answered call. The series of an (operation, status) pair are registered on
/// first use and then kept, so a call records with a few atomic operations instead of a registry
/// look-up per metric. Both labels come from fixed sets, so the map is bounded. Before the
/// recorder is installed nothing is kept (the handles would be no-ops for good).
fn record_call(operation: &'static str, status: &'static str, error: bool, seconds: f64) {
    type Map = parking_lot::RwLock<HashMap<(&'static str, &'static str), &'static CallHandles>>;
    static HANDLES: OnceLock<Map> = OnceLock::new();
    let map = HANDLES.get_or_init(Default::default);
    let cached = map.read().get(&(operation, status)).copied();
    let h = match cached {
        Some(h) => h,
        None => {
            let labels = [("operation", operation), ("status", status)];
            let h = CallHandles {
                requests: counter!("service_requests", &labels),
                latency: histogram!("service_latency", &labels),
                errors: error.then(|| counter!("service_errors", &labels)),
            };
            if !HANDLE.get().is_some_and(|r| r.is_ok()) {
                h.record(seconds);
                return;
            }
            *map.write()
                .entry((operation, status))
                .or_insert_with(|| Box::leak(Box::new(h)))
        }
    };
    h.record(seconds);
}

impl CallHandles {
    fn record(&self, seconds: f64) {
        self.requests.increment(1);
        self.latency.record(seconds);
        if let Some(errors) = &self.errors {
            errors.increment(1);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(CANCELED);
    }
}

/// A response body that records its call when the trailers carrying its status go out.
struct Recorded {
    inner: Body,
    call: Call,
}

impl http_body::Body for Recorded {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    this.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => this.call.finish(status.code() as i32),
            // The end, and no status was seen (a no-op if one was).
            Poll::Ready(None) => this.call.finish(UNKNOWN),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A gRPC service whose requests are counted and timed (`service_requests`, `service_latency`,
/// `service_errors`), by method and gRPC status.
#[derive(Clone)]
pub struct Rpc<S>(pub S);

impl<S: NamedService> NamedService for Rpc<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Rpc<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let mut call = Call {
            operation: operation(req.uri().path()),
            started: Instant::now(),
            done: false,
        };
        let answer = self.0.call(req);
        Box::pin(async move {
            // Dropped while waiting (the client went away): `call` records `Canceled`.
            let res = match answer.await {
                Ok(res) => res,
                Err(e) => {
                    call.finish(UNKNOWN);
                    return Err(e);
                }
            };
            // A trailers-only answer (an error) carries its status in the headers.
            if let Some(code) = status_in(res.headers()) {
                call.finish(code);
                return Ok(res);
            }
            Ok(res.map(|inner| Body::new(Recorded { inner, call })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_declared_methods_only() {
        assert_eq!(
            operation("/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"),
            "StartWorkflowExecution"
        );
        assert_eq!(
            operation("/temporal.api.operatorservice.v1.OperatorService/AddSearchAttributes"),
            "AddSearchAttributes"
        );
        assert_eq!(
            operation("/temporal.api.workflowservice.v1.WorkflowService/NoSuchMethod"),
            "unknown"
        );
    }

    #[test]
    fn status_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(5), "NotFound");
        assert_eq!(code_name(16), "Unauthenticated");
        assert_eq!(code_name(17), "Unknown");
        assert_eq!(code_name(-1), "Unknown");
        assert!(server_error(13) && server_error(14) && !server_error(5) && !server_error(0));
    }
}
