//! `perdure server start`: bad configuration stops the process at once with a one-line error and
//! a non-zero exit, and writes nothing (an unknown config key, an unreachable database, a wrong
//! password, a schema newer than the binary, a lowered shard count); a good config file starts a
//! server on PostgreSQL that a client can use, with Prometheus metrics and health. Each test runs
//! its own throwaway PostgreSQL cluster.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use perdure_postgres::testing::TempCluster;

fn bin() -> String {
    env!("CARGO_BIN_EXE_perdure").to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `perdure server start ARGS` expecting it to stop by itself within 30 s.
fn start_fails(args: &[&str]) -> (Output, String) {
    let mut child = Command::new(bin())
        .args([
            "server",
            "start",
            "--headless",
            "--port",
            &free_port().to_string(),
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("perdure server start {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out, err)
}

/// The `Error:` line; there must be exactly one.
fn error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

/// The tables of a database's public schema.
fn tables(pg: &TempCluster, db: &str) -> String {
    let out = Command::new(
        perdure_postgres::testing::find_bin()
            .unwrap()
            .join("psql"),
    )
    .args([
        "-h",
        &pg.dir().to_string_lossy(),
        "-p",
        &pg.port().to_string(),
        "-U",
        perdure_postgres::testing::USER,
        "-d",
        db,
        "-tAc",
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
    ])
    .output()
    .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn bad_configuration_is_a_one_line_error_and_writes_nothing() {
    let pg = TempCluster::start().unwrap();
    pg.create_database("fresh").unwrap();
    let dir = tempfile::tempdir().unwrap();

    // An unknown key in the config file.
    let cfg = dir.path().join("perdure.toml");
    std::fs::write(
        &cfg,
        format!("persistence-url = \"{}\"\nshard = 8\n", pg.url("fresh")),
    )
    .unwrap();
    let (out, err) = start_fails(&["--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let line = error_line(&err);
    assert!(
        line.contains("unknown field `shard`") && line.contains("line 2"),
        "{line}"
    );

    // A wrong password.
    let wrong = pg
        .url("fresh")
        .replace(perdure_postgres::testing::PASSWORD, "wrong");
    let (out, err) = start_fails(&["--persistence-url", &wrong]);
    assert!(!out.status.success());
    let line = error_line(&err);
    assert!(line.contains("password authentication failed"), "{line}");
    assert!(
        !line.contains("wrong"),
        "the password is not printed: {line}"
    );

    // An unreachable database.
    let nowhere = format!("postgres://perdure:x@127.0.0.1:{}/perdure", free_port());
    let (out, err) = start_fails(&["--persistence-url", &nowhere]);
    assert!(!out.status.success());
    assert!(
        error_line(&err).contains("cannot connect to PostgreSQL"),
        "{err}"
    );
    assert_eq!(tables(&pg, "fresh"), "", "nothing was written");

    // A schema newer than the binary: the database is left as it was.
    pg.create_database("newer").unwrap();
    pg.psql(
        "newer",
        "CREATE TABLE perdure_schema (version BIGINT NOT NULL); INSERT INTO perdure_schema VALUES (99)",
    )
    .unwrap();
    let (out, err) = start_fails(&["--persistence-url", &pg.url("newer")]);
    assert!(!out.status.success());
    assert!(
        error_line(&err).contains("database schema version 99 is newer than this binary"),
        "{err}"
    );
    assert_eq!(tables(&pg, "newer"), "perdure_schema");

    // A shard count lower than the cluster's.
    pg.create_database("cluster").unwrap();
    let url = pg.url("cluster");
    let port = free_port();
    let mut first = Command::new(bin())
        .args([
            "server",
            "start",
            "--headless",
            "--shards",
            "32",
            "--persistence-url",
            &url,
        ])
        .args(["--port", &port.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It answers once it has set the cluster's shard count and leads.
    let up = Instant::now();
    while !Command::new(bin())
        .args(["--address", &format!("127.0.0.1:{port}")])
        .args(["operator", "namespace", "describe", "-n", "default"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "the first process did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (out, err) = start_fails(&["--persistence-url", &url, "--shards", "8"]);
    let _ = first.kill();
    let _ = first.wait();
    assert!(!out.status.success());
    assert!(
        error_line(&err)
            .contains("the cluster has 32 shards; the shard count cannot be lowered to 8"),
        "{err}"
    );
}

/// `GET path` on a port; the whole answer.
fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn counter(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_config_file_starts_a_server_on_postgresql_with_metrics() {
    let pg = TempCluster::start().unwrap();
    pg.create_database("perdure").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics) = (free_port(), free_port());
    let cfg = dir.path().join("perdure.toml");
    std::fs::write(
        &cfg,
        format!(
            "persistence-url = \"{}?schema=orders\"\nport = {port}\nmetrics-port = {metrics}\n\
             headless = true\nnode-name = \"one\"\nnamespaces = [\"orders\"]\nlog-format = \"json\"\n",
            pg.url("perdure")
        ),
    )
    .unwrap();
    let mut server = Command::new(bin())
        .args(["server", "start", "--config", cfg.to_str().unwrap()])
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let perdure = |args: &[&str]| {
        Command::new(bin())
            .args(["--address", &format!("127.0.0.1:{port}")])
            .args(args)
            .output()
            .unwrap()
    };
    let up = Instant::now();
    while !perdure(&["operator", "namespace", "describe", "-n", "orders"])
        .status
        .success()
    {
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = http_get(metrics, "/metrics");
    let started = perdure(&[
        "workflow",
        "start",
        "-n",
        "orders",
        "--type",
        "t",
        "--task-queue",
        "q",
        "--workflow-id",
        "w",
    ]);
    assert!(started.status.success(), "{started:?}");
    let after = http_get(metrics, "/metrics");
    let key = "service_requests{operation=\"StartWorkflowExecution\",status=\"OK\"}";
    assert_eq!(counter(&after, key) - counter(&before, key), 1.0, "{after}");
    assert_eq!(counter(&after, "numshards_gauge"), 16.0);
    assert!(counter(&after, "persistence_requests{") > 0.0, "{after}");
    let _ = server.kill();
    let _ = server.wait();
    // JSON logs: one object per line.
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with('{') && l.contains("\"leading the cluster\"")),
        "{log}"
    );
}

/// Health follows the database: SERVING while the process reaches it, NOT_SERVING while it does
/// not (the process keeps running), and SERVING again once the database is back.
#[test]
fn health_is_not_serving_while_the_database_is_away() {
    let pg = TempCluster::start().unwrap();
    pg.create_database("perdure").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Command::new(bin())
        .args(["server", "start", "--headless", "--lease", "10s"])
        .args(["--persistence-url", &pg.url("perdure")])
        .args(["--port", &port.to_string()])
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let health = || {
        Command::new(bin())
            .args(["--address", &format!("127.0.0.1:{port}")])
            .args(["operator", "cluster", "health"])
            .output()
            .unwrap()
    };
    let wait_for = |serving: bool, what: &str| {
        let since = Instant::now();
        loop {
            let o = health();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let ok = if serving {
                o.status.success() && text.trim() == "SERVING"
            } else {
                !o.status.success() && text.contains("NOT_SERVING")
            };
            if ok {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(40),
                "{what}: last answer {text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for(true, "the server starts serving");
    pg.stop_server().unwrap();
    let took = wait_for(false, "NOT_SERVING once the database is away");
    assert!(took < Duration::from_secs(9), "{took:?}");
    pg.start_server().unwrap();
    wait_for(true, "SERVING once the database is back");
    let _ = server.kill();
    let _ = server.wait();
}
