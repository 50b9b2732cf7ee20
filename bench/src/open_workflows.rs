//! perdure-open-workflows: fills a server with open workflows and times its first answer after a
//! restart, for the memory and restart figures of `bench/open-workflows.sh`.
//!
//! - `start` starts `--workflows` workflows (ids `<prefix><n>`) with a start delay, so each stays
//!   open waiting on a server timer with no worker needed, at most `--concurrency` at once, on
//!   perdure-sdk's client; it prints one JSON line with the starts per second and the start
//!   latency.
//! - `probe` connects and describes one workflow, again and again, until it is answered; it
//!   prints the milliseconds that took. Run it right after starting a server to time its first
//!   answered RPC.
//!
//! ```sh
//! bench/target/release/perdure-open-workflows start --address 127.0.0.1:7233 --workflows 100000
//! bench/target/release/perdure-open-workflows probe --address 127.0.0.1:7233 --workflow-id open-0
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use perdure_sdk::{Client, ClientOptions, StartOptions};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[derive(Parser, Debug)]
#[command(
    name = "perdure-open-workflows",
    about = "Starts many open workflows, or times a server's first answer"
)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Starts workflows that stay open, each waiting on its start delay (a server timer).
    Start {
        #[arg(long, default_value = "127.0.0.1:7233")]
        address: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Number of workflows to start.
        #[arg(long, default_value_t = 10_000)]
        workflows: usize,
        /// First workflow number (ids are `<prefix><n>`), to add to an earlier fill.
        #[arg(long, default_value_t = 0)]
        first: usize,
        #[arg(long, default_value = "open-")]
        prefix: String,
        /// Starts in flight at once.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        /// How long each workflow waits before its first workflow task.
        #[arg(long, default_value_t = 86_400)]
        start_delay_secs: u64,
        /// Task queue of the workflows (no worker needs to poll it).
        #[arg(long, default_value = "open-workflows")]
        task_queue: String,
    },
    /// Describes one workflow until the server answers; prints the milliseconds it took.
    Probe {
        #[arg(long, default_value = "127.0.0.1:7233")]
        address: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        #[arg(long, default_value = "open-0")]
        workflow_id: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::Start {
            address,
            namespace,
            workflows,
            first,
            prefix,
            concurrency,
            start_delay_secs,
            task_queue,
        } => {
            let client = Client::connect(ClientOptions {
                namespace,
                ..ClientOptions::new(&address)
            })
            .await
            .with_context(|| format!("connecting to {address}"))?;
            let limit = Arc::new(Semaphore::new(concurrency.max(1)));
            let mut set = JoinSet::new();
            let began = Instant::now();
            for n in first..first + workflows {
                let permit = limit.clone().acquire_owned().await?;
                let client = client.clone();
                let options = StartOptions {
                    start_delay: Some(Duration::from_secs(start_delay_secs)),
                    ..StartOptions::new(format!("{prefix}{n}"), &task_queue)
                };
                set.spawn(async move {
                    let t = Instant::now();
                    let r = client.start_workflow("open", (n,), options).await;
                    drop(permit);
                    r.map(|_| t.elapsed())
                });
                // Keep the set small: collect what has finished.
                while let Some(done) = set.try_join_next() {
                    done??;
                }
            }
            let mut latencies = Vec::with_capacity(workflows);
            while let Some(done) = set.join_next().await {
                latencies.push(done??);
            }
            let secs = began.elapsed().as_secs_f64();
            latencies.sort();
            let pct = |p: f64| {
                latencies
                    .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                    .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
            };
            println!(
                "{}",
                serde_json::json!({
                    "started": workflows,
                    "concurrency": concurrency,
                    "seconds": (secs * 1000.0).round() / 1000.0,
                    "starts_per_sec": (workflows as f64 / secs * 10.0).round() / 10.0,
                    "start_p50_ms": (pct(0.5) * 10.0).round() / 10.0,
                    "start_p99_ms": (pct(0.99) * 10.0).round() / 10.0,
                })
            );
        }
        Cmd::Probe {
            address,
            namespace,
            workflow_id,
            timeout_secs,
        } => {
            let began = Instant::now();
            let deadline = began + Duration::from_secs(timeout_secs);
            let mut last = String::new();
            loop {
                if Instant::now() > deadline {
                    bail!("no answer from {address} in {timeout_secs} s: {last}");
                }
                let attempt = async {
                    let client = Client::connect(ClientOptions {
                        namespace: namespace.clone(),
                        connect_timeout: Duration::from_millis(500),
                        ..ClientOptions::new(&address)
                    })
                    .await?;
                    client.workflow_handle(&workflow_id, None).describe().await
                };
                match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                    Ok(Ok(d)) => {
                        let status = d.workflow_execution_info.map_or(0, |i| i.status);
                        println!(
                            "{}",
                            serde_json::json!({
                                "first_answer_ms": (began.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
                                "status": status,
                            })
                        );
                        return Ok(());
                    }
                    Ok(Err(e)) => last = e.to_string(),
                    Err(_) => last = "timed out".into(),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    Ok(())
}
