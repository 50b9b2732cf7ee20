//! The Perdure server: wires the SQLite store, the engine and the gRPC frontend together, and
//! exposes [`run`] so tests can start a real server on port 0 in-process.

pub mod dynamic_config;
pub mod grpc;
pub mod metrics;

pub use perdure_core::limits::Limits;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use perdure_core::clock::SystemClock;
use perdure_core::{Config, Engine};
use perdure_proto::service::operatorservice::operator_service_server::OperatorServiceServer;
use perdure_proto::service::workflowservice::workflow_service_server::WorkflowServiceServer;
use perdure_sqlite::{Location, SqliteStore};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

/// Server start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the database: {0}")]
    Store(#[from] perdure_core::store::StoreError),
    #[error("cannot start the engine: {0}")]
    Engine(#[from] perdure_core::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot read the listening address: {0}")]
    Listen(std::io::Error),
}

/// What `perdure server start-dev` configures.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// `None` = a throwaway database (`--in-memory`).
    pub db_path: Option<PathBuf>,
    pub namespaces: Vec<String>,
    /// Size and count limits (see [`dynamic_config`] for setting them by Temporal's key names).
    pub limits: Limits,
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
}

/// Opens the store, starts the engine, and serves gRPC on `listener` until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    run_with_web(config, listener, WebListeners::default(), shutdown).await
}

/// [`run`], plus the web UI and the HTTP API on the listeners given.
pub async fn run_with_web(
    config: ServerConfig,
    listener: TcpListener,
    web: WebListeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let location = match &config.db_path {
        Some(p) => Location::File(p.clone()),
        None => Location::Temporary,
    };
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(location))
        .await
        .expect("store open task")?;
    let mut namespaces = vec!["default".to_string()];
    for n in &config.namespaces {
        if !namespaces.contains(n) {
            namespaces.push(n.clone());
        }
    }
    let engine = Engine::start(
        Arc::new(store),
        Arc::new(SystemClock),
        Config {
            namespaces,
            limits: config.limits.clone(),
            ..Config::default()
        },
    )
    .await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let backend = perdure_web::Backend {
        grpc: listener.local_addr().map_err(Error::Listen)?,
        list_changes: engine.list_changes(),
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
    serve(engine, listener, until_stopped()).await
}

/// Serves the gRPC services of `engine` on `listener`.
pub async fn serve(
    engine: Engine,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(
            "temporal.api.workflowservice.v1.WorkflowService",
            tonic_health::ServingStatus::Serving,
        )
        .await;
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    // The address this frontend reports for itself (task queue partition owner, cluster).
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let wf = WorkflowServiceServer::new(grpc::WorkflowApi {
        engine: engine.clone(),
        address: address.clone(),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let op = OperatorServiceServer::new(grpc::operator::OperatorApi { engine, address })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE);
    // Small request/response messages must not wait for Nagle's algorithm.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(health)
        .add_service(metrics::Rpc(grpc::Guard(wf)))
        .add_service(metrics::Rpc(grpc::Guard(op)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// Binds `addr` (use port 0 for a free port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
