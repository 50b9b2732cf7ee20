//! `food-delivery`: the menu (:3000), the driver portal (:3001) and the Rust worker in one
//! process, against a Perdure (or Temporal) server at `--address`, or an embedded Perdure server
//! with `--embedded-server`:
//!
//! ```sh
//! cargo run --release -p food-delivery -- --embedded-server
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use food_delivery::app::{self, Config, Embedded, WorkerKind};

#[derive(Parser)]
#[command(
    name = "food-delivery",
    about = "Perdure Eats: order food on :3000, deliver it on :3001; every order is a durable workflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Start a Perdure server in this process (gRPC on --address, web UI on its port + 1000,
    /// SQLite database at --db).
    #[arg(long)]
    embedded_server: bool,
    /// The server's gRPC address (where the embedded server listens with --embedded-server).
    #[arg(
        long,
        default_value = "127.0.0.1:7233",
        env = "PERDURE_ADDRESS",
        global = true
    )]
    address: String,
    #[arg(long, default_value = "default", global = true)]
    namespace: String,
    /// The embedded server's database file (kept between runs).
    #[arg(long, default_value = "food-delivery.db")]
    db: PathBuf,
    /// The embedded server's web UI port [default: gRPC port + 1000].
    #[arg(long)]
    ui_port: Option<u16>,
    /// Base URL of the web UI that order links point to [default: the embedded server's, or
    /// http://HOST:(PORT+1000) of --address].
    #[arg(long)]
    ui_url: Option<String>,
    /// Which worker runs new orders: the Rust one (in this process) or the TypeScript one (in
    /// examples/food-delivery/ts, started separately).
    #[arg(long, value_enum, default_value_t = WorkerKind::Rust)]
    worker: WorkerKind,
    /// Do not run the Rust worker in this process (run `food-delivery worker` instead).
    #[arg(long)]
    no_worker: bool,
    /// Task queue for new orders [default: food-delivery, or food-delivery-ts with --worker ts].
    #[arg(long, global = true)]
    task_queue: Option<String>,
    /// Address the web apps listen on.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    #[arg(long, default_value_t = 3000)]
    menu_port: u16,
    #[arg(long, default_value_t = 3001)]
    driver_port: u16,
    /// Make the payment service fail every charge for this many seconds after start-up (the
    /// server keeps retrying).
    #[arg(long, default_value_t = 0, value_name = "SECONDS", global = true)]
    payment_outage: u64,
    /// Seconds a new order waits for the pickup, then for the delivery, before it is refunded
    /// [default: the workflow's 60].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, default_value = "info", global = true)]
    log_level: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run only the Rust worker (for running the worker and the web apps as separate processes).
    Worker,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{},h2=warn,tower=warn,hyper=warn,perdure_core=warn,perdure_server=warn,perdure_web=warn,perdure_sqlite=warn",
        cli.log_level
    ))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outage = Duration::from_secs(cli.payment_outage);
    rt.block_on(async move {
        if let Some(Command::Worker) = cli.command {
            let tq = cli
                .task_queue
                .clone()
                .unwrap_or_else(|| food_delivery::order::TASK_QUEUE.to_string());
            return app::worker_only(&cli.address, &cli.namespace, &tq, outage, shutdown()).await;
        }
        let timeout = match cli.timeout {
            Some(s) => match Duration::try_from_secs_f64(s) {
                Ok(d) if !d.is_zero() && d <= Duration::from_secs(365 * 86_400) => Some(d),
                _ => anyhow::bail!(
                    "--timeout must be a number of seconds, more than 0 and at most a year"
                ),
            },
            None => None,
        };
        let config = Config {
            address: cli.address,
            namespace: cli.namespace,
            embedded: cli.embedded_server.then_some(Embedded {
                db: cli.db,
                ui_port: cli.ui_port,
            }),
            worker: cli.worker,
            run_worker: !cli.no_worker,
            task_queue: cli.task_queue,
            ip: cli.ip,
            menu_port: cli.menu_port,
            driver_port: cli.driver_port,
            ui_url: cli.ui_url.map(|u| u.trim_end_matches('/').to_string()),
            payment_outage: outage,
            timeout,
        };
        app::run(config, shutdown()).await
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
