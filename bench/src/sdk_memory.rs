//! perdure-sdk-memory: a perdure-sdk worker's memory per cached workflow.
//!
//! It starts a perdure-sdk worker (max_cached_workflows `--cache`) for the order workflow of
//! `perdure_order.rs`, runs `--warmup` orders to completion (connections, pools and caches warm
//! up), then reads its own VmRSS, starts `--workflows` orders and waits (getStatus polling) until
//! each is `Paid`, i.e. parked in `wait_flag` waiting for `pickedUp` with a 60 s timer, and reads
//! VmRSS again. RSS growth / workflows is the figure. Before each reading it calls glibc's
//! `malloc_trim(0)`, so freed heap is given back and does not count. Finally it signals every
//! parked order to completion (checking the results) and exits.
//!
//! The driver (the client starting and querying the orders) is in the same process; its own
//! memory is what a run with `--cache 0` (no instance kept between tasks, same RPCs) grows by, so
//! the cost of a cached instance is (growth with the big cache − growth with cache 0) / workflows.
//!
//! ```sh
//! bench/target/release/perdure-sdk-memory --address 127.0.0.1:7233 --workflows 1000 --cache 5000
//! bench/target/release/perdure-sdk-memory --address 127.0.0.1:7233 --workflows 1000 --cache 0
//! ```

mod perdure_order;

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use perdure_sdk::{Client, ClientOptions, StartOptions, Worker, WorkerOptions};
use tokio::task::JoinSet;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "perdure-sdk-memory",
    about = "RSS growth of a perdure-sdk worker per cached (parked) order workflow"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7233")]
    address: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Orders to park (measured).
    #[arg(long, default_value_t = 1000)]
    workflows: usize,
    /// The worker's max_cached_workflows (0: no cache, the control run).
    #[arg(long, default_value_t = 5000)]
    cache: usize,
    /// Orders run to completion before the first reading.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Orders started or completed at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
}

/// VmRSS of this process, in bytes, after giving freed heap back to the OS.
fn rss_bytes() -> u64 {
    // SAFETY: malloc_trim only releases free memory held by the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs `f(i)` for each i in `range`, at most `concurrency` at once.
async fn for_each<F, Fut>(
    range: std::ops::Range<usize>,
    concurrency: usize,
    f: F,
) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut first_error = None;
    for i in range {
        if set.len() >= concurrency
            && let Some(r) = set.join_next().await
            && let Err(e) = r.map_err(|e| anyhow!("task panicked: {e}")).and_then(|r| r)
        {
            first_error.get_or_insert(e);
        }
        set.spawn(f(i));
    }
    while let Some(r) = set.join_next().await {
        if let Err(e) = r.map_err(|e| anyhow!("task panicked: {e}")).and_then(|r| r) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn wait_paid(client: Client, id: String) -> anyhow::Result<()> {
    let h = client.workflow_handle(&id, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: String = h.query("getStatus", ()).await.context("getStatus")?;
        if state == "Paid" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{id} never became Paid (state {state:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finish(client: Client, id: String, product_id: i64) -> anyhow::Result<()> {
    let h = client.workflow_handle(&id, None);
    h.signal("pickedUp", ()).await?;
    h.signal("delivered", ()).await?;
    let r: perdure_order::OrderResult = h.result().await?;
    if r.product_id != product_id || r.state != "Delivered" {
        bail!("{id}: unexpected result {r:?}");
    }
    Ok(())
}

async fn start(client: Client, tq: String, id: String, product_id: i64) -> anyhow::Result<()> {
    client
        .start_workflow("order", (product_id,), StartOptions::new(id, tq))
        .await?;
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let connect = || {
        Client::connect(
            ClientOptions::new(args.address.clone())
                .namespace(args.namespace.clone())
                .identity(format!("{}@perdure-sdk-memory", std::process::id())),
        )
    };
    let worker_client = connect().await.context("connecting")?;
    let client = connect().await.context("connecting")?;
    let tq = format!("perdure-sdk-memory-{}", uuid::Uuid::new_v4().simple());
    let mut options = WorkerOptions::new(&tq);
    options.max_cached_workflows = args.cache;
    let mut worker = Worker::new(worker_client, options);
    perdure_order::register(&mut worker);
    let shutdown = worker.shutdown_handle();
    let running = tokio::spawn(worker.run());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let id = |i: usize| format!("mem-{tag}-{i}");

    // Warm-up: run orders to completion.
    let (w, c) = (args.warmup, args.concurrency);
    let (cl, t) = (client.clone(), tq.clone());
    for_each(0..w, c, |i| start(cl.clone(), t.clone(), id(i), i as i64)).await?;
    for_each(0..w, c, |i| wait_paid(cl.clone(), id(i))).await?;
    for_each(0..w, c, |i| finish(cl.clone(), id(i), i as i64)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes();

    // Park `workflows` orders waiting for pickedUp.
    let n = args.workflows;
    let t0 = Instant::now();
    for_each(w..w + n, c, |i| {
        start(cl.clone(), t.clone(), id(i), i as i64)
    })
    .await?;
    for_each(w..w + n, c, |i| wait_paid(cl.clone(), id(i))).await?;
    let parked_in = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();

    // Let them finish (this also checks that they were alive).
    for_each(w..w + n, c, |i| finish(cl.clone(), id(i), i as i64)).await?;
    let finished = rss_bytes();
    shutdown.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(15), running).await;

    let growth = after as i64 - before as i64;
    let per = growth as f64 / n as f64;
    println!(
        "perdure-sdk-memory: {n} parked order workflows, max_cached_workflows {}",
        args.cache
    );
    println!(
        "  VmRSS before:  {:.1} MiB (after {w} warm-up orders)",
        before as f64 / 1048576.0
    );
    println!(
        "  VmRSS parked:  {:.1} MiB ({n} orders parked in {parked_in:.1} s)",
        after as f64 / 1048576.0
    );
    println!(
        "  VmRSS after they completed: {:.1} MiB",
        finished as f64 / 1048576.0
    );
    println!(
        "  growth:        {:.1} MiB = {per:.0} bytes per workflow",
        growth as f64 / 1048576.0
    );
    println!(
        "{}",
        serde_json::json!({
            "workflows": n,
            "cache": args.cache,
            "warmup": w,
            "rss_before_bytes": before,
            "rss_parked_bytes": after,
            "rss_completed_bytes": finished,
            "growth_bytes": growth,
            "bytes_per_workflow": per.round(),
        })
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}
