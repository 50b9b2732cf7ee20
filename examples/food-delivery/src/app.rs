//! Runs the app: an embedded Perdure server when asked, the Rust worker, and both web apps, and
//! stops them all cleanly and in order (worker first, so its sticky queue is released, then the
//! web apps, then the server).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use perdure_sdk::{Client, ClientOptions, Worker, WorkerOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::book::Book;
use crate::order::{self, PaymentService};
use crate::web::{self, Site};

/// Which worker runs the orders this app places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerKind {
    /// The Rust worker (`perdure-sdk`), run inside this process unless `--no-worker`.
    Rust,
    /// The TypeScript worker (official `@temporalio/*` packages) in `examples/food-delivery/ts`,
    /// started separately.
    Ts,
}

/// Everything the app is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's gRPC address (to listen on with `embedded`).
    pub address: String,
    pub namespace: String,
    /// Start a Perdure server in this process, with its database at `db`.
    pub embedded: Option<Embedded>,
    pub worker: WorkerKind,
    /// Run the Rust worker in this process (only with `WorkerKind::Rust`).
    pub run_worker: bool,
    pub task_queue: Option<String>,
    pub ip: std::net::IpAddr,
    pub menu_port: u16,
    pub driver_port: u16,
    /// Base URL of the web UI for links; derived from the embedded server or the address.
    pub ui_url: Option<String>,
    pub payment_outage: Duration,
    pub timeout: Option<Duration>,
}

/// The embedded server's settings.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub db: PathBuf,
    /// Web UI port (default: gRPC port + 1000).
    pub ui_port: Option<u16>,
}

impl Config {
    fn task_queue(&self) -> String {
        self.task_queue.clone().unwrap_or_else(|| {
            match self.worker {
                WorkerKind::Rust => order::TASK_QUEUE,
                WorkerKind::Ts => order::TS_TASK_QUEUE,
            }
            .to_string()
        })
    }
}

/// Runs until `stop` resolves (Ctrl-C in the binary).
pub async fn run(
    config: Config,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stopping_tx, stopping) = watch::channel(false);
    let mut server = None;
    let mut ui_url = config.ui_url.clone();
    let mut address = config.address.clone();
    let (server_stop_tx, server_stop) = tokio::sync::oneshot::channel::<()>();
    if let Some(embedded) = &config.embedded {
        let addr: SocketAddr = config
            .address
            .parse()
            .with_context(|| format!("--address {} is not IP:PORT", config.address))?;
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!(
                "cannot listen on {addr} for the embedded server (is another server running \
                 there? then drop --embedded-server to use it)"
            )
        })?;
        let grpc = listener.local_addr()?;
        address = grpc.to_string();
        let ui_port = embedded
            .ui_port
            .unwrap_or_else(|| grpc.port().saturating_add(1000));
        let ui_addr = SocketAddr::new(grpc.ip(), ui_port);
        let ui = TcpListener::bind(ui_addr)
            .await
            .with_context(|| format!("cannot listen on {ui_addr} for the web UI"))?;
        let ui_at = ui.local_addr()?;
        ui_url.get_or_insert_with(|| format!("http://{ui_at}"));
        if let Some(dir) = embedded.db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let server_config = perdure_server::ServerConfig {
            persistence: perdure_server::Persistence::Sqlite(Some(embedded.db.clone())),
            ..Default::default()
        };
        let web = perdure_server::WebListeners {
            ui: Some(ui),
            http_api: None,
            metrics: None,
        };
        server = Some(tokio::spawn(perdure_server::run_with_web(
            server_config,
            listener,
            web,
            async move {
                let _ = server_stop.await;
            },
        )));
    }
    let ui_url = ui_url.or_else(|| {
        // A server started with `start-dev` serves its UI on the gRPC port + 1000.
        let (host, port) = address.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        Some(format!("http://{host}:{}", port.checked_add(1000)?))
    });

    let book_stop = {
        let mut s = stopping.clone();
        async move {
            let _ = s.wait_for(|s| *s).await;
        }
    };
    let book = Book::start(&address, &config.namespace, book_stop);
    let menu = TcpListener::bind(SocketAddr::new(config.ip, config.menu_port))
        .await
        .with_context(|| format!("cannot listen on port {} for the menu", config.menu_port))?;
    let driver = TcpListener::bind(SocketAddr::new(config.ip, config.driver_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on port {} for the driver portal",
                config.driver_port
            )
        })?;
    let menu_url = format!("http://{}", menu.local_addr()?);
    let driver_url = format!("http://{}", driver.local_addr()?);
    let task_queue = config.task_queue();
    let site = Arc::new(Site {
        book: book.clone(),
        namespace: config.namespace.clone(),
        task_queue: task_queue.clone(),
        worker_label: match config.worker {
            WorkerKind::Rust => "Rust",
            WorkerKind::Ts => "TypeScript",
        }
        .into(),
        ui_url: ui_url.clone(),
        menu_url: menu_url.clone(),
        driver_url: driver_url.clone(),
        timeout: config.timeout,
        stopping: stopping.clone(),
    });
    let menu_task = tokio::spawn(web::serve_menu(site.clone(), menu));
    let driver_task = tokio::spawn(web::serve_driver(site, driver));

    println!("Perdure Eats is running:");
    println!("  Menu:           {menu_url}");
    println!("  Driver portal:  {driver_url}");
    if let Some(u) = &ui_url {
        println!("  Web UI:         {u}");
    }
    match (&config.embedded, config.worker, config.run_worker) {
        (Some(e), _, _) => println!(
            "  Server:         {address} (embedded, database {})",
            e.db.display()
        ),
        _ => println!("  Server:         {address}"),
    }
    match (config.worker, config.run_worker) {
        (WorkerKind::Rust, true) => println!("  Worker:         Rust, task queue {task_queue}"),
        (WorkerKind::Rust, false) => println!(
            "  Worker:         none in this process; run `food-delivery worker --address {address}`"
        ),
        (WorkerKind::Ts, _) => println!(
            "  Worker:         TypeScript, task queue {task_queue}; start it with \
             `cd examples/food-delivery/ts && npm ci && npm start -- --address {address}`"
        ),
    }
    println!("Press Ctrl-C to stop.");

    let (worker_stop_tx, worker_stop) = watch::channel(false);
    let worker = (config.worker == WorkerKind::Rust && config.run_worker).then(|| {
        let (book, tq, outage) = (book.clone(), task_queue.clone(), config.payment_outage);
        tokio::spawn(async move {
            let client = tokio::select! {
                c = book.connected() => c,
                _ = wait_true(worker_stop.clone()) => return,
            };
            run_worker(client, &tq, outage, worker_stop).await;
        })
    });

    // Run until asked to stop, or until the embedded server stops on its own.
    let mut server = server;
    let server_died = async {
        match server.as_mut() {
            Some(s) => s.await,
            None => std::future::pending().await,
        }
    };
    let mut died = None;
    tokio::select! {
        _ = stop => {}
        r = server_died => died = Some(r),
    }
    if let Some(r) = died {
        let _ = worker_stop_tx.send(true);
        let _ = stopping_tx.send(true);
        return match r {
            Ok(Ok(())) => Err(anyhow::anyhow!("the embedded server stopped")),
            Ok(Err(e)) => Err(e).context("the embedded server failed"),
            Err(e) => Err(e).context("the embedded server panicked"),
        };
    }
    eprintln!("Stopping…");
    // In order: the worker (it finishes its tasks and releases its sticky queue), then the web
    // apps and their live streams, then the server.
    let mut clean = true;
    let _ = worker_stop_tx.send(true);
    if let Some(w) = worker {
        clean &= stage("the worker", Duration::from_secs(10), w).await;
    }
    let _ = stopping_tx.send(true);
    clean &= stage("the web apps", Duration::from_secs(5), async {
        let _ = menu_task.await;
        let _ = driver_task.await;
    })
    .await;
    let _ = server_stop_tx.send(());
    if let Some(s) = server {
        match tokio::time::timeout(Duration::from_secs(10), s).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e).context("the embedded server failed"),
            Ok(Err(e)) => return Err(e).context("the embedded server panicked"),
            Err(_) => clean = false,
        }
    }
    if !clean {
        anyhow::bail!("some parts did not stop in time");
    }
    Ok(())
}

/// Waits for one part to stop; false (and a message) when it takes longer than `limit`.
async fn stage<F: std::future::Future>(what: &str, limit: Duration, f: F) -> bool {
    match tokio::time::timeout(limit, f).await {
        Ok(_) => true,
        Err(_) => {
            eprintln!("{what} did not stop within {limit:?}");
            false
        }
    }
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Runs the Rust worker until `stopping` turns true, starting it again if it stops on an error.
pub async fn run_worker(
    client: Client,
    task_queue: &str,
    outage: Duration,
    stopping: watch::Receiver<bool>,
) {
    let payment = PaymentService::new(outage);
    loop {
        let mut worker = Worker::new(client.clone(), WorkerOptions::new(task_queue));
        order::register_with(&mut worker, payment.clone());
        let handle = worker.shutdown_handle();
        let mut running = tokio::spawn(worker.run());
        tokio::select! {
            r = &mut running => {
                match r {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => tracing::error!("the worker stopped: {e}; starting it again"),
                    Err(e) => tracing::error!("the worker panicked: {e}; starting it again"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ = wait_true(stopping.clone()) => {
                handle.shutdown();
                let _ = running.await;
                return;
            }
        }
    }
}

/// `food-delivery worker`: only the Rust worker, until `stop` resolves.
pub async fn worker_only(
    address: &str,
    namespace: &str,
    task_queue: &str,
    outage: Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = Client::connect(ClientOptions::new(address).namespace(namespace))
        .await
        .with_context(|| format!("cannot connect to {address}"))?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = tx.send(true);
    });
    println!("worker ready on task queue {task_queue}");
    run_worker(client, task_queue, outage, rx).await;
    Ok(())
}
