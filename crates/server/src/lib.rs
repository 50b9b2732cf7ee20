//! The Perdure server: wires a store (SQLite or PostgreSQL, see [`Persistence`]), the engine and
//! the gRPC frontend together, and exposes [`run`] so tests can start a real server on port 0
//! in-process.

pub mod dynamic_config;
pub mod grpc;
pub mod node;
mod peers;

pub use node::Exit;
pub mod metrics;
pub mod profile;

pub use perdure_core::limits::Limits;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use perdure_core::store::SharedStore;
use perdure_core::{Config, Engine};
use perdure_postgres::{PgOptions, PgStore};
use perdure_proto::service::operatorservice::operator_service_server::OperatorServiceServer;
use perdure_proto::service::workflowservice::workflow_service_server::WorkflowServiceServer;
use perdure_sqlite::{Location, SqliteStore};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;

/// Server start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] perdure_core::store::StoreError),
    #[error("cannot start the engine: {0}")]
    Engine(#[from] perdure_core::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot read the listening address: {0}")]
    Listen(std::io::Error),
    #[error("this process stepped down: {0}")]
    Demoted(String),
}

/// Where the server keeps its state.
#[derive(Debug, Clone, PartialEq)]
pub enum Persistence {
    /// An embedded SQLite file; `None` is a throwaway database (`--in-memory`).
    Sqlite(Option<PathBuf>),
    /// A PostgreSQL database shared by every server process of the cluster.
    Postgres {
        url: String,
        /// Reader connections per process.
        pool_size: usize,
    },
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence::Sqlite(None)
    }
}

impl Persistence {
    /// Parses `--persistence-url`: `sqlite:///abs/path.db`, `sqlite://relative.db`,
    /// `sqlite::memory:`, or `postgres://user:password@host:port/database` (`postgresql://` too).
    pub fn from_url(url: &str, pool_size: usize) -> Result<Persistence, String> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            if rest == ":memory:" {
                return Ok(Persistence::Sqlite(None));
            }
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(format!("persistence URL {url:?} names no file"));
            }
            return Ok(Persistence::Sqlite(Some(PathBuf::from(path))));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Persistence::Postgres {
                url: url.to_string(),
                pool_size: pool_size.max(1),
            });
        }
        Err(format!(
            "unsupported persistence URL {:?}: use sqlite:///path/to/file.db or \
             postgres://user:password@host:port/database",
            redact(url)
        ))
    }

    /// What start-up logs print: the file, or the database without its password.
    pub fn describe(&self) -> String {
        match self {
            Persistence::Sqlite(None) => "in memory".into(),
            Persistence::Sqlite(Some(p)) => p.display().to_string(),
            Persistence::Postgres { url, .. } => redact(url),
        }
    }
}

/// A URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// What `perdure server start` and `start-dev` configure.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub persistence: Persistence,
    pub namespaces: Vec<String>,
    /// Size and count limits (see [`dynamic_config`] for setting them by Temporal's key names).
    pub limits: Limits,
    /// This process's name in the cluster (default: `perdure-<pid>`).
    pub node_name: Option<String>,
    /// Executions are spread over this many shards (a new cluster's count; raising it on a live
    /// cluster re-shards it; default 16).
    pub shards: Option<i32>,
    /// The address other processes forward requests to (default: the gRPC listener's).
    pub advertise_address: Option<String>,
    /// How long a process's heartbeat and the leader's lease last (default 5 s).
    pub lease: Option<std::time::Duration>,
    /// Most workflow runs kept in memory (default [`perdure_core::engine::DEFAULT_RUN_CACHE_SIZE`]);
    /// idle runs beyond it are read from the store on their next use.
    pub run_cache_size: Option<usize>,
    /// Most workflow and activity tasks held in memory waiting for a poller (default
    /// [`perdure_core::engine::DEFAULT_QUEUED_TASK_LIMIT`]); beyond it they wait in the store.
    pub queued_task_limit: Option<usize>,
}

/// Largest gRPC message accepted (payload limits are enforced separately, with clear errors).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Listeners for the web side (see `perdure-web`); each is optional.
#[derive(Debug, Default)]
pub struct WebListeners {
    /// The web UI, with the HTTP API under `/api/v1` (`--ui-port`, 8233).
    pub ui: Option<TcpListener>,
    /// Only the HTTP API, at all of Temporal's bindings (`--http-port`).
    pub http_api: Option<TcpListener>,
    /// Prometheus metrics at `/metrics` (`--metrics-port`).
    pub metrics: Option<TcpListener>,
}

/// Opens the store, starts the engine, and serves gRPC on `listener` until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    run_with_web(config, listener, WebListeners::default(), shutdown).await
}

/// [`run`], plus the web UI, the HTTP API and the metrics on the listeners given.
pub async fn run_with_web(
    config: ServerConfig,
    listener: TcpListener,
    web: WebListeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    match run_member(config, listener, web, shutdown).await? {
        Exit::Stopped => Ok(()),
        Exit::Demoted(why) => Err(Error::Demoted(why)),
    }
}

/// Runs this process as a member of its cluster (see [`node`]) until `shutdown` resolves
/// ([`Exit::Stopped`]) or it must step down ([`Exit::Demoted`]: drop everything it started, e.g.
/// its runtime, and run it again to rejoin as a follower).
pub async fn run_member(
    config: ServerConfig,
    listener: TcpListener,
    web: WebListeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Exit, Error> {
    if let Err(e) = metrics::install() {
        tracing::warn!("metrics are off: {e}");
    }
    let store = open_store(&config.persistence).await?;
    let requested = config.shards;
    let s = store.clone();
    let shard_count = tokio::task::spawn_blocking(move || s.shard_count(requested))
        .await
        .expect("shard count task")?;
    let mut namespaces = vec!["default".to_string()];
    for n in &config.namespaces {
        if !namespaces.contains(n) {
            namespaces.push(n.clone());
        }
    }
    let grpc_addr = listener.local_addr().map_err(Error::Listen)?;
    let membership = node::Membership::new(&config, grpc_addr);
    let member = membership.member.clone();
    let engine_config = Config {
        namespaces,
        limits: config.limits.clone(),
        owner: member.node.clone(),
        shard_count,
        run_cache_size: config
            .run_cache_size
            .unwrap_or(perdure_core::engine::DEFAULT_RUN_CACHE_SIZE),
        queued_task_limit: config
            .queued_task_limit
            .unwrap_or(perdure_core::engine::DEFAULT_QUEUED_TASK_LIMIT),
        ..Config::default()
    };
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let list_changes = tokio::sync::watch::Sender::new(0u64);
    let relay = list_changes.clone();
    // The address this frontend reports for itself (task queue partition owner, cluster).
    let address = member.address.clone();
    let leading = node::Leading {
        store: store.clone(),
        config: engine_config,
        local: Box::new(move |engine, peers| local_routes(engine, address.clone(), peers)),
        on_engine: Box::new(move |engine| {
            // Live web lists follow the engine's counter. Other processes commit runs too: in a
            // cluster, lists also re-read their page every two seconds.
            let mut rx = engine.list_changes();
            let relay = relay.clone();
            let others = engine.topology().is_some_and(|t| t.members.len() > 1);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
                loop {
                    tokio::select! {
                        r = rx.changed() => {
                            if r.is_err() {
                                return;
                            }
                        }
                        _ = tick.tick(), if others => {}
                    }
                    relay.send_modify(|n| *n = n.wrapping_add(1));
                }
            });
        }),
    };
    let (dispatch, roles) = node::join(membership, leading, health_reporter).await?;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let backend = perdure_web::Backend {
        grpc: grpc_addr,
        list_changes: list_changes.subscribe(),
    };
    if let Some(ui) = web.ui {
        let (backend, stop) = (backend.clone(), until_stopped());
        tokio::spawn(async move {
            if let Err(e) = perdure_web::serve_ui(backend, ui, stop).await {
                tracing::error!("web UI stopped: {e}");
            }
        });
    }
    if let Some(api) = web.http_api {
        let (backend, stop) = (backend.clone(), until_stopped());
        tokio::spawn(async move {
            if let Err(e) = perdure_web::serve_http_api(backend, api, stop).await {
                tracing::error!("HTTP API stopped: {e}");
            }
        });
    }
    if let Some(m) = web.metrics {
        let stop = until_stopped();
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(m, stop).await {
                tracing::error!("metrics stopped: {e}");
            }
        });
    }
    let routes = Routes::from(
        axum::Router::new()
            .route_service("/grpc.health.v1.Health/{*rest}", health)
            .fallback_service(dispatch),
    );
    // Small request/response messages must not wait for Nagle's algorithm.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, until_stopped());
    let exit = tokio::select! {
        r = server => {
            r?;
            Exit::Stopped
        }
        exit = roles => exit,
        () = shutdown => Exit::Stopped,
    };
    let _ = stop.send(true);
    if exit == Exit::Stopped {
        node::leave(store, member).await;
    } else if let Exit::Demoted(why) = &exit {
        tracing::warn!("stepping down: {why}");
    }
    Ok(exit)
}

/// The WorkflowService and OperatorService of `engine`, timed and guarded.
fn local_routes(engine: Engine, address: String, peers: peers::GrpcPeers) -> Routes {
    let wf = WorkflowServiceServer::new(grpc::WorkflowApi {
        engine: engine.clone(),
        address: address.clone(),
        peers,
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let op = OperatorServiceServer::new(grpc::operator::OperatorApi { engine, address })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE);
    Routes::new(metrics::Rpc(grpc::Guard(wf)))
        .add_service(metrics::Rpc(grpc::Guard(op)))
        .prepare()
}

/// Opens (creating and migrating if needed) the configured store.
pub async fn open_store(p: &Persistence) -> Result<SharedStore, Error> {
    let p = p.clone();
    tokio::task::spawn_blocking(move || -> Result<SharedStore, Error> {
        Ok(match p {
            Persistence::Sqlite(path) => Arc::new(SqliteStore::open(match path {
                Some(p) => Location::File(p),
                None => Location::Temporary,
            })?),
            Persistence::Postgres { url, pool_size } => {
                let mut opts = PgOptions::new(url);
                opts.pool_size = pool_size;
                Arc::new(PgStore::open(opts)?)
            }
        })
    })
    .await
    .expect("store open task")
}

/// Binds `addr` (use port 0 for a free port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_urls() {
        assert_eq!(
            Persistence::from_url("sqlite:///var/lib/perdure.db", 4),
            Ok(Persistence::Sqlite(Some("/var/lib/perdure.db".into())))
        );
        assert_eq!(
            Persistence::from_url("sqlite://perdure.db", 4),
            Ok(Persistence::Sqlite(Some("perdure.db".into())))
        );
        assert_eq!(
            Persistence::from_url("sqlite::memory:", 4),
            Ok(Persistence::Sqlite(None))
        );
        assert_eq!(
            Persistence::from_url("postgres://u:p@h:5432/db", 0),
            Ok(Persistence::Postgres {
                url: "postgres://u:p@h:5432/db".into(),
                pool_size: 1
            })
        );
        let err = Persistence::from_url("mysql://u:secret@h/db", 4).unwrap_err();
        assert!(err.contains("mysql://u:***@h/db"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        assert!(Persistence::from_url("sqlite://", 4).is_err());
        assert_eq!(
            Persistence::Postgres {
                url: "postgres://u:p@h:5432/db".into(),
                pool_size: 1
            }
            .describe(),
            "postgres://u:***@h:5432/db"
        );
    }

    /// Calls one WorkflowService method of `routes` as a client accepting gzip would, and
    /// returns the response's first gRPC message frame: (compressed flag, payload length).
    async fn call<M: prost::Message>(routes: &mut Routes, method: &str, m: M) -> (u8, usize) {
        use tonic::codegen::Service;
        let body = m.encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend((body.len() as u32).to_be_bytes());
        framed.extend(body);
        let req = axum::http::Request::post(format!(
            "/temporal.api.workflowservice.v1.WorkflowService/{method}"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-accept-encoding", "gzip")
        .body(axum::body::Body::from(framed))
        .unwrap();
        std::future::poll_fn(|cx| {
            <Routes as Service<axum::http::Request<axum::body::Body>>>::poll_ready(routes, cx)
        })
        .await
        .unwrap();
        let resp = routes.call(req).await.unwrap();
        let bytes = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), usize::MAX)
            .await
            .unwrap();
        assert!(bytes.len() >= 5, "{method}: no message in the response");
        let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
        (bytes[0], len)
    }

    #[tokio::test]
    async fn small_responses_go_uncompressed_and_large_ones_gzipped() {
        use perdure_proto::api::common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType};
        use perdure_proto::api::taskqueue::v1::TaskQueue;
        use perdure_proto::api::workflowservice::v1::*;
        let engine = Engine::start(
            Arc::new(perdure_core::store::MemoryStore::new()),
            Arc::new(perdure_core::clock::SystemClock),
            Config::default(),
        )
        .await
        .unwrap();
        let mut routes = local_routes(
            engine,
            "127.0.0.1:7233".into(),
            peers::GrpcPeers::new("test", 0),
        );
        let (flag, _) = call(
            &mut routes,
            "GetSystemInfo",
            GetSystemInfoRequest::default(),
        )
        .await;
        assert_eq!(flag, 0, "a small answer is sent as is");
        // A 200 KB input, highly compressible: the history carrying it is worth compressing.
        let input = Payloads {
            payloads: vec![Payload {
                metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                data: vec![b'7'; 200_000],
                ..Default::default()
            }],
        };
        let start = StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: "big".into(),
            workflow_type: Some(WorkflowType { name: "wf".into() }),
            task_queue: Some(TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            input: Some(input),
            request_id: "r".into(),
            ..Default::default()
        };
        let (flag, _) = call(&mut routes, "StartWorkflowExecution", start).await;
        assert_eq!(flag, 0);
        let history = GetWorkflowExecutionHistoryRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "big".into(),
                run_id: String::new(),
            }),
            ..Default::default()
        };
        let (flag, len) = call(&mut routes, "GetWorkflowExecutionHistory", history).await;
        assert_eq!(flag, 1, "a large answer is gzipped");
        assert!(len < 20_000, "{len} bytes compressed");
    }
}
