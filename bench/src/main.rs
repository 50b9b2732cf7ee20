//! perdure-bench: a load generator that runs the food-delivery order workflow
//! (temporal-protocol.md §1.1 / §3.5) against any Temporal-compatible server, with an in-process
//! worker and client built on the official Temporal Rust SDK (`--sdk temporal`, the default) or on
//! Perdure's own Rust SDK (`--sdk perdure`, `crates/sdk`).

mod perdure_order;
mod workflow;

use std::{
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, ValueEnum};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowGetResultOptions,
    WorkflowQueryOptions, WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::task::JoinSet;
use workflow::{Order, OrderActivities, OrderResult};

/// Which Rust SDK runs the worker and the driver's client.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Sdk {
    /// The official SDK: temporalio-sdk / temporalio-client 1.1.x from crates.io.
    Temporal,
    /// Perdure's SDK: perdure-sdk (../crates/sdk), its Worker and Client.
    Perdure,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "perdure-bench",
    about = "Runs N food-delivery order workflows (at most C in flight) against a Temporal-compatible server and reports throughput and latency"
)]
struct Args {
    /// Server frontend address (host:port, or http://host:port).
    #[arg(long, default_value = "127.0.0.1:7233")]
    address: String,
    /// Namespace (must exist).
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Number of orders (workflows) to run.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// Maximum orders in flight at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Task queue for the workflows and the in-process worker (default: a fresh random one).
    #[arg(long)]
    task_queue: Option<String>,
    /// Don't poll the getStatus query before signalling: send pickedUp and delivered right after
    /// the start (the workflow keeps signals that arrive early).
    #[arg(long)]
    signals_only: bool,
    /// Interval between getStatus polls while waiting for "Paid", in ms.
    #[arg(long, default_value_t = 50)]
    query_interval_ms: u64,
    /// Give up on one order after this many seconds (counted as a failure).
    #[arg(long, default_value_t = 120)]
    order_timeout_secs: u64,
    /// Seconds to wait for the server connection and for the worker's shutdown.
    #[arg(long, default_value_t = 15)]
    connect_timeout_secs: u64,
    /// The SDK of the worker and of the driver's client.
    #[arg(long, value_enum, default_value_t = Sdk::Temporal)]
    sdk: Sdk,
    /// With --sdk perdure: concurrent workflow task polls, normal and sticky queue together
    /// (default: perdure-sdk's WorkerOptions default, 2).
    #[arg(long)]
    workflow_pollers: Option<usize>,
    /// With --sdk perdure: concurrent activity task polls (default: perdure-sdk's, 2).
    #[arg(long)]
    activity_pollers: Option<usize>,
    /// Write a CPU flame graph (SVG) of the server to this file: when the orders start, the
    /// bench asks the server's metrics listener (--profile-address) for
    /// /debug/pprof/profile?seconds=N.
    #[arg(long, value_name = "FILE.svg", requires = "profile_address")]
    profile: Option<PathBuf>,
    /// The server's metrics listener, host:port (its --metrics-port), for --profile.
    #[arg(long, value_name = "HOST:PORT", requires = "profile")]
    profile_address: Option<String>,
    /// How long the server samples its CPU for --profile, in seconds (1 to 300).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    profile_seconds: u64,
}

#[derive(Default)]
struct Counters {
    queries: AtomicU64,
    /// Latency of each getStatus query RPC, in ms.
    query_ms: std::sync::Mutex<Vec<f64>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.orders == 0 || args.concurrency == 0 {
        bail!("--orders and --concurrency must be at least 1");
    }
    if let Some(path) = &args.profile {
        // Fail now rather than after the run if the flame graph cannot be written there.
        std::fs::File::create(path)
            .with_context(|| format!("cannot write the flame graph to {}", path.display()))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building tokio runtime")?;
    let fut = async move {
        match args.sdk {
            Sdk::Temporal => run(args).await,
            Sdk::Perdure => run_perdure(args).await,
        }
    };
    let failed = match rt.block_on(fut) {
        Ok(failed) => failed,
        Err(e) => {
            eprintln!("perdure-bench: {e:#}");
            true
        }
    };
    // Don't wait for any leftover background tasks of the SDK.
    rt.shutdown_timeout(Duration::from_secs(2));
    std::process::exit(if failed { 1 } else { 0 });
}

async fn connect(args: &Args) -> anyhow::Result<Client> {
    let target = if args.address.contains("://") {
        args.address.clone()
    } else {
        format!("http://{}", args.address)
    };
    let url = Url::from_str(&target).with_context(|| format!("bad --address {target}"))?;
    let opts = ConnectionOptions::new(url)
        .identity(format!("{}@perdure-bench", std::process::id()))
        .connect_timeout(Duration::from_secs(args.connect_timeout_secs))
        .build();
    let conn = tokio::time::timeout(
        Duration::from_secs(args.connect_timeout_secs + 1),
        Connection::connect(opts),
    )
    .await
    .map_err(|_| anyhow!("timed out connecting to {target}"))?
    .with_context(|| format!("connecting to {target}"))?;
    Client::new(conn, ClientOptions::new(args.namespace.clone()).build()).context("creating client")
}

/// Returns whether any order failed.
async fn run(args: Args) -> anyhow::Result<bool> {
    let task_queue = args
        .task_queue
        .clone()
        .unwrap_or_else(|| format!("perdure-bench-{}", uuid::Uuid::new_v4()));

    // Separate connections for the worker and for the driver, like separate processes would.
    let worker_client = connect(&args).await?;
    let driver_client = connect(&args).await?;

    let runtime = Runtime::from_current_tokio(Default::default())
        .map_err(|e| anyhow!("creating SDK runtime: {e}"))?;
    let worker_options = WorkerOptions::new(task_queue.clone())
        .register_workflow::<Order>()
        .map_err(|e| anyhow!("registering workflow: {e}"))?
        .register_activities(OrderActivities)
        .build();
    let mut worker = Worker::new(&runtime, worker_client, worker_options)
        .map_err(|e| anyhow!("creating worker: {e}"))?;
    let shutdown = worker.shutdown_handle();

    let cpu_start = cpu_times();
    let driver = tokio::spawn(drive(
        args.clone(),
        Driver::Temporal(driver_client),
        task_queue.clone(),
    ));

    // The worker's run future is not Send: drive it on this task, next to the driver.
    let worker_fut = worker.run();
    tokio::pin!(worker_fut);
    let driver_side = async {
        let report = driver.await;
        // Print before shutting the worker down, so a server that never answers the shutdown
        // still leaves a result behind.
        let failed = match &report {
            Ok(Ok(r)) => {
                r.print(&args, &task_queue, cpu_start);
                r.failed()
            }
            Ok(Err(e)) => {
                eprintln!("perdure-bench: driver error: {e:#}");
                true
            }
            Err(e) => {
                eprintln!("perdure-bench: driver panicked: {e}");
                true
            }
        };
        shutdown();
        failed
    };
    let failed = tokio::select! {
        r = &mut worker_fut => {
            match r {
                Ok(()) => eprintln!("perdure-bench: worker stopped before the orders finished"),
                Err(e) => eprintln!("perdure-bench: worker failed: {e}"),
            }
            return Ok(true);
        }
        failed = driver_side => failed,
    };
    // Once the orders are done, give the worker only a bounded time to shut down.
    match tokio::time::timeout(
        Duration::from_secs(args.connect_timeout_secs),
        &mut worker_fut,
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("perdure-bench: worker error at shutdown: {e}"),
        Err(_) => eprintln!("perdure-bench: worker did not shut down in time; exiting anyway"),
    }
    Ok(failed)
}

async fn connect_perdure(args: &Args) -> anyhow::Result<perdure_sdk::Client> {
    let opts = perdure_sdk::ClientOptions::new(args.address.clone())
        .namespace(args.namespace.clone())
        .identity(format!("{}@perdure-bench", std::process::id()));
    tokio::time::timeout(
        Duration::from_secs(args.connect_timeout_secs),
        perdure_sdk::Client::connect(opts),
    )
    .await
    .map_err(|_| anyhow!("timed out connecting to {}", args.address))?
    .with_context(|| format!("connecting to {}", args.address))
}

/// `--sdk perdure`: the same run on perdure-sdk. Its `Worker::run()` is `Send`, so the worker is
/// a spawned task like the driver.
async fn run_perdure(args: Args) -> anyhow::Result<bool> {
    let task_queue = args
        .task_queue
        .clone()
        .unwrap_or_else(|| format!("perdure-bench-{}", uuid::Uuid::new_v4()));
    // Separate connections for the worker and for the driver, like separate processes would.
    let worker_client = connect_perdure(&args).await?;
    let driver_client = connect_perdure(&args).await?;
    let mut options = perdure_sdk::WorkerOptions::new(task_queue.clone());
    if let Some(n) = args.workflow_pollers {
        options.workflow_pollers = n;
    }
    if let Some(n) = args.activity_pollers {
        options.activity_pollers = n;
    }
    let mut worker = perdure_sdk::Worker::new(worker_client, options);
    perdure_order::register(&mut worker);
    let shutdown = worker.shutdown_handle();

    let cpu_start = cpu_times();
    let mut worker_task = tokio::spawn(worker.run());
    let mut driver = tokio::spawn(drive(
        args.clone(),
        Driver::Perdure(driver_client),
        task_queue.clone(),
    ));
    let report = tokio::select! {
        r = &mut worker_task => {
            match r {
                Ok(Ok(())) => eprintln!("perdure-bench: worker stopped before the orders finished"),
                Ok(Err(e)) => eprintln!("perdure-bench: worker failed: {e}"),
                Err(e) => eprintln!("perdure-bench: worker panicked: {e}"),
            }
            driver.abort();
            return Ok(true);
        }
        r = &mut driver => r,
    };
    let failed = match &report {
        Ok(Ok(r)) => {
            r.print(&args, &task_queue, cpu_start);
            r.failed()
        }
        Ok(Err(e)) => {
            eprintln!("perdure-bench: driver error: {e:#}");
            true
        }
        Err(e) => {
            eprintln!("perdure-bench: driver panicked: {e}");
            true
        }
    };
    shutdown.shutdown();
    match tokio::time::timeout(Duration::from_secs(args.connect_timeout_secs), worker_task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("perdure-bench: worker error at shutdown: {e}"),
        Ok(Err(e)) => eprintln!("perdure-bench: worker panicked at shutdown: {e}"),
        Err(_) => eprintln!("perdure-bench: worker did not shut down in time; exiting anyway"),
    }
    Ok(failed)
}

/// The driver's client, from either SDK.
enum Driver {
    Temporal(Client),
    Perdure(perdure_sdk::Client),
}

/// A named phase of an order and how to read it from a [`Timing`].
type Phase = (&'static str, fn(&Timing) -> f64);

/// Where one order's time went, all in ms.
#[derive(Clone, Copy, Default)]
struct Timing {
    /// Start to result (the headline latency).
    total: f64,
    /// The StartWorkflowExecution RPC.
    start: f64,
    /// After the start RPC until a getStatus query answered "Paid" (0 with --signals-only).
    paid: f64,
    /// The two SignalWorkflowExecution RPCs.
    signals: f64,
    /// After the signals until the result arrived.
    result: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest-rank percentile.
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

struct Report {
    orders: usize,
    completed: usize,
    failures: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
    timings: Vec<Timing>,
    queries: u64,
    query_ms: Vec<f64>,
    /// With --profile: the flame graph's size in bytes once written, or why there is none.
    profile: Option<anyhow::Result<usize>>,
}

impl Report {
    /// Whether an order failed, or the flame graph asked for could not be had.
    fn failed(&self) -> bool {
        self.failures > 0 || matches!(self.profile, Some(Err(_)))
    }

    fn percentile(&self, p: f64) -> f64 {
        pct(&self.latencies_ms, p)
    }

    /// p50/p99 of one phase.
    fn phase(&self, f: fn(&Timing) -> f64) -> (f64, f64) {
        let mut v: Vec<f64> = self.timings.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        (pct(&v, 50.0), pct(&v, 99.0))
    }

    fn print(&self, args: &Args, task_queue: &str, cpu_start: (f64, f64)) {
        let (u0, s0) = cpu_start;
        let (u1, s1) = cpu_times();
        let (user, sys) = (u1 - u0, s1 - s0);
        let cpu = user + sys;
        let rate = if self.seconds > 0.0 {
            self.completed as f64 / self.seconds
        } else {
            0.0
        };
        let (p50, p99) = (self.percentile(50.0), self.percentile(99.0));
        let max = self.latencies_ms.last().copied().unwrap_or(0.0);
        let mean = if self.latencies_ms.is_empty() {
            0.0
        } else {
            self.latencies_ms.iter().sum::<f64>() / self.latencies_ms.len() as f64
        };
        println!(
            "perdure-bench: order workflow ({})",
            match args.sdk {
                Sdk::Temporal => "temporalio-sdk",
                Sdk::Perdure => "perdure-sdk",
            }
        );
        println!(
            "  server:            {} (namespace {})",
            args.address, args.namespace
        );
        println!("  task queue:        {task_queue}");
        println!(
            "  mode:              {}",
            if args.signals_only {
                "signals right after start"
            } else {
                "poll getStatus until Paid, then signal"
            }
        );
        println!("  concurrency:       {}", args.concurrency);
        println!("  orders completed:  {} / {}", self.completed, self.orders);
        println!("  failures:          {}", self.failures);
        println!("  wall time:         {:.3} s", self.seconds);
        println!("  throughput:        {rate:.2} orders/s");
        println!(
            "  latency (start to result): p50 {p50:.1} ms, p99 {p99:.1} ms, mean {mean:.1} ms, max {max:.1} ms"
        );
        let phases: [Phase; 4] = [
            ("start RPC", |t| t.start),
            ("start to Paid", |t| t.paid),
            ("2 signal RPCs", |t| t.signals),
            ("signals to result", |t| t.result),
        ];
        let parts: Vec<String> = phases
            .iter()
            .map(|(name, f)| {
                let (a, b) = self.phase(*f);
                format!("{name} {a:.0}/{b:.0}")
            })
            .collect();
        println!("  phases p50/p99 ms: {}", parts.join(", "));
        println!(
            "  getStatus queries: {} (RPC p50 {:.1} ms, p99 {:.1} ms)",
            self.queries,
            pct(&self.query_ms, 50.0),
            pct(&self.query_ms, 99.0)
        );
        println!(
            "  bench CPU time:    {cpu:.3} s (user {user:.3} s, sys {sys:.3} s) = {:.0}% of one core over the run",
            if self.seconds > 0.0 {
                100.0 * cpu / self.seconds
            } else {
                0.0
            }
        );
        if let (Some(path), Some(outcome)) = (&args.profile, &self.profile) {
            match outcome {
                Ok(bytes) => {
                    let idle = if self.seconds < args.profile_seconds as f64 {
                        format!(
                            "; the orders ended after {:.1} s, the rest is the server idle",
                            self.seconds
                        )
                    } else {
                        String::new()
                    };
                    println!(
                        "  flame graph:       {} (server CPU over {} s from the orders' start, {bytes} bytes{idle})",
                        path.display(),
                        args.profile_seconds
                    );
                }
                Err(e) => {
                    println!("  flame graph:       none, the profile failed");
                    eprintln!("perdure-bench: CPU profile for {}: {e:#}", path.display());
                }
            }
        }
        let r1 = |x: f64| (x * 10.0).round() / 10.0;
        let phase_p50 = |f: fn(&Timing) -> f64| r1(self.phase(f).0);
        let line = serde_json::json!({
            "sdk": match args.sdk {
                Sdk::Temporal => "temporalio-sdk",
                Sdk::Perdure => "perdure-sdk",
            },
            "orders": self.orders,
            "completed": self.completed,
            "failures": self.failures,
            "concurrency": args.concurrency,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "orders_per_sec": (rate * 100.0).round() / 100.0,
            "p50_ms": r1(p50),
            "p99_ms": r1(p99),
            "mean_ms": r1(mean),
            "max_ms": r1(max),
            "queries": self.queries,
            "query_p50_ms": r1(pct(&self.query_ms, 50.0)),
            "phase_p50_ms": {
                "start": phase_p50(|t| t.start),
                "paid": phase_p50(|t| t.paid),
                "signals": phase_p50(|t| t.signals),
                "result": phase_p50(|t| t.result),
            },
            "bench_cpu_seconds": (cpu * 1000.0).round() / 1000.0,
        });
        println!("{line}");
    }
}

async fn drive(args: Args, client: Driver, task_queue: String) -> anyhow::Result<Report> {
    let client = Arc::new(client);
    let counters = Arc::new(Counters::default());
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut set: JoinSet<(usize, anyhow::Result<Timing>)> = JoinSet::new();
    let mut timings = Vec::with_capacity(args.orders);
    let mut failures = 0usize;
    let mut first_errors = 0usize;
    let mut next = 0usize;

    let mut handle_done =
        |res: Result<(usize, anyhow::Result<Timing>), tokio::task::JoinError>| match res {
            Ok((_, Ok(t))) => timings.push(t),
            Ok((i, Err(e))) => {
                failures += 1;
                if first_errors < 10 {
                    first_errors += 1;
                    eprintln!("perdure-bench: order {i} failed: {e:#}");
                }
            }
            Err(e) => {
                failures += 1;
                eprintln!("perdure-bench: order task panicked: {e}");
            }
        };

    let started = Instant::now();
    // The server samples its CPU from the orders' start, meanwhile.
    let profiling = match (&args.profile, &args.profile_address) {
        (Some(path), Some(address)) => Some(tokio::spawn(profile(
            address.clone(),
            args.profile_seconds,
            path.clone(),
        ))),
        _ => None,
    };
    while next < args.orders || !set.is_empty() {
        while next < args.orders && set.len() < args.concurrency {
            let i = next;
            next += 1;
            let (client, counters, args, tq) = (
                client.clone(),
                counters.clone(),
                args.clone(),
                task_queue.clone(),
            );
            let wf_id = format!("order-{run_id}-{i}");
            set.spawn(async move {
                let limit = Duration::from_secs(args.order_timeout_secs);
                let order = async {
                    match &*client {
                        Driver::Temporal(c) => {
                            one_order(c, &args, &counters, tq, wf_id, i as i64).await
                        }
                        Driver::Perdure(c) => {
                            one_order_perdure(c, &args, &counters, tq, wf_id, i as i64).await
                        }
                    }
                };
                let res = match tokio::time::timeout(limit, order).await {
                    Ok(r) => r,
                    Err(_) => Err(anyhow!("order timed out after {}s", limit.as_secs())),
                };
                (i, res)
            });
        }
        if let Some(res) = set.join_next().await {
            handle_done(res);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let profile = match profiling {
        Some(task) => Some(
            task.await
                .unwrap_or_else(|e| Err(anyhow!("the profile task panicked: {e}"))),
        ),
        None => None,
    };
    let mut query_ms = std::mem::take(&mut *counters.query_ms.lock().unwrap());
    query_ms.sort_by(|a, b| a.total_cmp(b));
    let mut latencies_ms: Vec<f64> = timings.iter().map(|t| t.total).collect();
    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    Ok(Report {
        orders: args.orders,
        completed: latencies_ms.len(),
        failures,
        seconds,
        latencies_ms,
        timings,
        queries: counters.queries.load(Ordering::Relaxed),
        query_ms,
        profile,
    })
}

/// Asks the server at `address` (its metrics listener) for a CPU flame graph of `seconds` and
/// writes it to `path`; returns its size. On failure, removes the empty file made at start-up.
async fn profile(address: String, seconds: u64, path: PathBuf) -> anyhow::Result<usize> {
    let path_and_query = format!("/debug/pprof/profile?seconds={seconds}");
    let url = format!("http://{address}{path_and_query}");
    // The server answers once it has sampled for `seconds` and rendered the graph.
    let limit = Duration::from_secs(seconds + 60);
    let answer = match tokio::time::timeout(limit, http_get(&address, &path_and_query)).await {
        Ok(answer) => answer.with_context(|| format!("GET {url}")),
        Err(_) => Err(anyhow!("GET {url}: no answer within {} s", limit.as_secs())),
    };
    let display = path.display().to_string();
    tokio::task::spawn_blocking(move || match answer {
        Ok(svg) => std::fs::write(&path, &svg)
            .map(|()| svg.len())
            .with_context(|| format!("writing {display}")),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    })
    .await?
}

/// `GET path_and_query` over one HTTP/1.1 connection to `address` (hyper's client); the body if
/// the status is 200, else an error with the status and the server's message.
async fn http_get(address: &str, path_and_query: &str) -> anyhow::Result<Vec<u8>> {
    use http_body_util::BodyExt;

    let stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(path_and_query)
        .header(hyper::header::HOST, address)
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())?;
    let response = sender.send_request(request).await.with_context(|| {
        format!("no HTTP/1.1 answer: is {address} the server's --metrics-port?")
    })?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    connection.abort();
    if status != hyper::StatusCode::OK {
        bail!("{status}: {}", String::from_utf8_lossy(&body).trim());
    }
    Ok(body.to_vec())
}

/// One order: start, (poll getStatus until Paid,) signal pickedUp, signal delivered, wait for the
/// result. Returns the start-to-result latency.
async fn one_order(
    client: &Client,
    args: &Args,
    counters: &Counters,
    task_queue: String,
    workflow_id: String,
    product_id: i64,
) -> anyhow::Result<Timing> {
    let t0 = Instant::now();
    let handle = client
        .start_workflow(
            Order::run,
            product_id,
            WorkflowStartOptions::new(task_queue, workflow_id).build(),
        )
        .await
        .context("StartWorkflowExecution")?;
    let t_started = Instant::now();

    if !args.signals_only {
        let deadline = Instant::now() + workflow::SIGNAL_WAIT;
        loop {
            let tq = Instant::now();
            let state = handle
                .query(Order::get_status, (), WorkflowQueryOptions::default())
                .await
                .context("query getStatus")?;
            counters.queries.fetch_add(1, Ordering::Relaxed);
            counters.query_ms.lock().unwrap().push(ms(tq.elapsed()));
            if state == "Paid" {
                break;
            }
            if state != "Charging card" {
                bail!("unexpected state {state:?} while waiting for Paid");
            }
            if Instant::now() >= deadline {
                bail!("state never became Paid");
            }
            tokio::time::sleep(Duration::from_millis(args.query_interval_ms)).await;
        }
    }

    let t_paid = Instant::now();
    handle
        .signal(Order::picked_up, (), WorkflowSignalOptions::default())
        .await
        .context("signal pickedUp")?;
    handle
        .signal(Order::delivered, (), WorkflowSignalOptions::default())
        .await
        .context("signal delivered")?;
    let t_signalled = Instant::now();
    let result: OrderResult = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .context("workflow result")?;
    let t_done = Instant::now();
    let want = OrderResult {
        product_id,
        state: "Delivered".to_owned(),
    };
    if result != want {
        bail!("unexpected result {result:?}");
    }
    Ok(Timing {
        total: ms(t_done - t0),
        start: ms(t_started - t0),
        paid: ms(t_paid - t_started),
        signals: ms(t_signalled - t_paid),
        result: ms(t_done - t_signalled),
    })
}

/// [`one_order`] on perdure-sdk's client: the same RPCs in the same order.
async fn one_order_perdure(
    client: &perdure_sdk::Client,
    args: &Args,
    counters: &Counters,
    task_queue: String,
    workflow_id: String,
    product_id: i64,
) -> anyhow::Result<Timing> {
    let t0 = Instant::now();
    let handle = client
        .start_workflow(
            "order",
            (product_id,),
            perdure_sdk::StartOptions::new(workflow_id, task_queue),
        )
        .await
        .context("StartWorkflowExecution")?;
    let t_started = Instant::now();

    if !args.signals_only {
        let deadline = Instant::now() + perdure_order::SIGNAL_WAIT;
        loop {
            let tq = Instant::now();
            let state: String = handle
                .query("getStatus", ())
                .await
                .context("query getStatus")?;
            counters.queries.fetch_add(1, Ordering::Relaxed);
            counters.query_ms.lock().unwrap().push(ms(tq.elapsed()));
            if state == "Paid" {
                break;
            }
            if state != "Charging card" {
                bail!("unexpected state {state:?} while waiting for Paid");
            }
            if Instant::now() >= deadline {
                bail!("state never became Paid");
            }
            tokio::time::sleep(Duration::from_millis(args.query_interval_ms)).await;
        }
    }

    let t_paid = Instant::now();
    handle
        .signal("pickedUp", ())
        .await
        .context("signal pickedUp")?;
    handle
        .signal("delivered", ())
        .await
        .context("signal delivered")?;
    let t_signalled = Instant::now();
    let result: perdure_order::OrderResult = handle.result().await.context("workflow result")?;
    let t_done = Instant::now();
    let want = perdure_order::OrderResult {
        product_id,
        state: "Delivered".to_owned(),
    };
    if result != want {
        bail!("unexpected result {result:?}");
    }
    Ok(Timing {
        total: ms(t_done - t0),
        start: ms(t_started - t0),
        paid: ms(t_paid - t_started),
        signals: ms(t_signalled - t_paid),
        result: ms(t_done - t_signalled),
    })
}

/// This process's (user, system) CPU seconds so far.
fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return (0.0, 0.0);
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        (tv(ru.ru_utime), tv(ru.ru_stime))
    }
}
