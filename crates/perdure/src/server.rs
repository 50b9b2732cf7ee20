//! `perdure server start-dev`: the whole server (gRPC, SQLite persistence, the default
//! namespace) in one process.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct StartDev {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// gRPC port.
    #[arg(long, short = 'p', default_value_t = 7233)]
    port: u16,
    /// SQLite database file (created if missing).
    #[arg(
        long,
        short = 'f',
        default_value = "perdure.db",
        conflicts_with = "in_memory"
    )]
    db_filename: PathBuf,
    /// Keep everything in a throwaway database instead of a file.
    #[arg(long)]
    in_memory: bool,
    /// Extra namespace to create at start-up (repeatable); `default` always exists.
    #[arg(long, short = 'n')]
    namespace: Vec<String>,
    /// Do not start the web UI.
    #[arg(long)]
    headless: bool,
    /// Web UI (and HTTP API under /api/v1) port [default: gRPC port + 1000, i.e. 8233].
    #[arg(long)]
    ui_port: Option<u16>,
    /// Address the web UI listens on [default: --ip].
    #[arg(long)]
    ui_ip: Option<IpAddr>,
    /// Also serve Temporal's HTTP API alone, at all its paths, on this port (like
    /// `temporal server start-dev --http-port`).
    #[arg(long)]
    http_port: Option<u16>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// A limit as KEY=VALUE with Temporal's dynamic config key, e.g.
    /// `limit.blobSize.error=4194304` (repeatable; `temporal server start-dev` takes the same).
    #[arg(long, value_name = "KEY=VALUE")]
    dynamic_config_value: Vec<String>,
}

pub fn start_dev(args: StartDev) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{lvl},h2=warn,tower=warn,hyper=warn",
        lvl = args.log_level
    ))
    .context("invalid --log-level")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr = SocketAddr::new(args.ip, args.port);
        let listener = perdure_server::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let mut limits = perdure_server::Limits::default();
        for setting in &args.dynamic_config_value {
            use perdure_server::dynamic_config::{apply, Outcome};
            match apply(&mut limits, setting).context("invalid --dynamic-config-value")? {
                Outcome::Applied | Outcome::AlwaysOn => {}
                Outcome::CannotDisable => tracing::warn!(
                    "--dynamic-config-value {setting}: Perdure cannot turn this feature off; it stays on"
                ),
                Outcome::Unknown => tracing::warn!(
                    "--dynamic-config-value {setting}: Perdure does not know this key; ignored"
                ),
            }
        }
        let config = perdure_server::ServerConfig {
            db_path: (!args.in_memory).then(|| args.db_filename.clone()),
            namespaces: args.namespace.clone(),
            limits,
        };
        let storage = if args.in_memory {
            "in memory".to_string()
        } else {
            args.db_filename.display().to_string()
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let web = web_listeners(&args, listener.local_addr()?).await?;
        let ui_addr = web.ui.as_ref().and_then(|l| l.local_addr().ok());
        let api_addr = web.http_api.as_ref().and_then(|l| l.local_addr().ok());
        let addr = listener.local_addr()?;
        let server = tokio::spawn(perdure_server::run_with_web(
            config, listener, web, shutdown,
        ));
        tracing::info!(
            "Perdure server listening on {addr} (storage: {storage}); ready in {:?}",
            started.elapsed()
        );
        eprintln!("Perdure server: gRPC on {addr}, database: {storage}");
        if let Some(ui) = ui_addr {
            eprintln!("Web UI: http://{ui}");
        }
        if let Some(api) = api_addr {
            eprintln!("HTTP API: http://{api}/api/v1/namespaces");
        }
        server.await?.context("server failed")?;
        Ok(())
    })
}

/// Binds the web UI (unless `--headless`) and the HTTP API port. An explicit `--ui-port` that
/// cannot be bound is an error; the default one (gRPC port + 1000) only a warning.
async fn web_listeners(
    args: &StartDev,
    grpc: SocketAddr,
) -> anyhow::Result<perdure_server::WebListeners> {
    let ip = args.ui_ip.unwrap_or(args.ip);
    let mut web = perdure_server::WebListeners::default();
    if !args.headless {
        let explicit = args.ui_port.is_some();
        let port = match args.ui_port {
            Some(p) => Some(p),
            None if grpc.port() == 0 => Some(0),
            None => grpc.port().checked_add(1000),
        };
        if let Some(port) = port {
            let addr = SocketAddr::new(ip, port);
            match perdure_server::bind(addr).await {
                Ok(l) => web.ui = Some(l),
                Err(e) if explicit => {
                    return Err(e)
                        .with_context(|| format!("cannot listen on {addr} for the web UI"));
                }
                Err(e) => tracing::warn!("no web UI: cannot listen on {addr}: {e}"),
            }
        }
    }
    if let Some(port) = args.http_port {
        let addr = SocketAddr::new(args.ip, port);
        web.http_api = Some(
            perdure_server::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the HTTP API"))?,
        );
    }
    Ok(web)
}
