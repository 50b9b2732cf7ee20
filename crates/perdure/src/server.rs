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
    /// Web UI port (reserved: the web UI is not part of this build yet).
    #[arg(long)]
    ui_port: Option<u16>,
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
            perdure_server::dynamic_config::apply(&mut limits, setting)
                .context("invalid --dynamic-config-value")?;
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
        let server = tokio::spawn(perdure_server::run(config, listener, shutdown));
        tracing::info!(
            "Perdure server listening on {addr} (storage: {storage}); ready in {:?}",
            started.elapsed()
        );
        eprintln!("Perdure server: gRPC on {addr}, database: {storage}");
        server.await?.context("server failed")?;
        Ok(())
    })
}
