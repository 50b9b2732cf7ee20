//! Standalone activities with the official CLI against a real `perdure server start-dev`:
//! `temporal activity start | execute | describe | result | list | count | complete | fail |
//! cancel | terminate | delete`, with a Python-SDK worker running tests/python/sa_activities.py;
//! and a standalone activity whose attempt is running when the server is SIGKILLed, retried
//! and completed after the restart.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use common::{Proc, Server, eventually, file_server, free_port, repo, server};
use serde_json::Value;

const TQ: &str = "standalone-tq";

/// The Python worker of tests/python/run_standalone_worker.py on `task_queue`.
fn worker(s: &Server, task_queue: &str) -> Proc {
    let venv = repo().join(".venv/bin/python");
    let python = std::env::var("PERDURE_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.to_string_lossy().into_owned()
        } else {
            "python3".into()
        }
    });
    let mut child = Command::new(&python)
        .arg(repo().join("tests/python/run_standalone_worker.py"))
        .args([&s.address, task_queue])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {python}: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains("worker ready"),
        "python worker failed to start"
    );
    Proc(child)
}

fn describe(s: &Server, id: &str) -> Value {
    s.temporal(&["activity", "describe", "-a", id, "-o", "json"])
        .json()
}

fn info_field(s: &Server, id: &str, field: &str) -> String {
    describe(s, id)["info"][field]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn start(s: &Server, id: &str, activity_type: &str, extra: &[&str]) -> String {
    let out = s
        .temporal(
            &[
                &[
                    "activity",
                    "start",
                    "-a",
                    id,
                    "--type",
                    activity_type,
                    "-t",
                    TQ,
                    "--start-to-close-timeout",
                    "10s",
                ],
                extra,
            ]
            .concat(),
        )
        .ok();
    assert!(out.contains("Running execution:"), "{out}");
    common::kv_value(&out, "RunId").expect("run id")
}

#[test]
fn temporal_activity_commands() {
    let s = server();
    let _worker = worker(&s, TQ);

    // execute: start and wait for the result.
    let out = s
        .temporal(&[
            "activity",
            "execute",
            "-a",
            "cli-greet",
            "--type",
            "greet",
            "-t",
            TQ,
            "--start-to-close-timeout",
            "10s",
            "-i",
            "\"ann\"",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(out["status"], "COMPLETED", "{out}");
    assert_eq!(out["result"], "hello ann", "{out}");
    let d = describe(&s, "cli-greet");
    assert_eq!(
        d["info"]["status"], "ACTIVITY_EXECUTION_STATUS_COMPLETED",
        "{d}"
    );
    assert_eq!(d["info"]["activityType"]["name"], "greet");
    assert_eq!(d["info"]["taskQueue"], TQ);
    assert_eq!(d["info"]["startToCloseTimeout"], "10s");
    assert_eq!(d["info"]["attempt"], 1);

    // start, then complete by id (no workflow id), then result.
    let run_id = start(&s, "cli-manual", "manual", &[]);
    eventually(10, "the manual activity to start", || {
        info_field(&s, "cli-manual", "runState") == "PENDING_ACTIVITY_STATE_STARTED"
    });
    s.temporal(&[
        "activity",
        "complete",
        "-a",
        "cli-manual",
        "-r",
        &run_id,
        "--result",
        "\"by cli\"",
    ])
    .ok();
    let out = s
        .temporal(&["activity", "result", "-a", "cli-manual", "-o", "json"])
        .json();
    assert_eq!(out["status"], "COMPLETED", "{out}");
    assert_eq!(out["result"], "by cli", "{out}");

    // fail by id.
    start(&s, "cli-fail", "manual", &["--retry-maximum-attempts", "1"]);
    eventually(10, "the manual activity to start", || {
        info_field(&s, "cli-fail", "runState") == "PENDING_ACTIVITY_STATE_STARTED"
    });
    s.temporal(&["activity", "fail", "-a", "cli-fail", "--reason", "nope"])
        .ok();
    let r = s.temporal(&["activity", "result", "-a", "cli-fail"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stdout.contains("FAILED") && r.stdout.contains("nope"),
        "{r:#?}"
    );
    assert_eq!(
        info_field(&s, "cli-fail", "status"),
        "ACTIVITY_EXECUTION_STATUS_FAILED"
    );

    // cancel one no worker takes (canceled at once), terminate a running one.
    s.temporal(&[
        "activity",
        "start",
        "-a",
        "cli-cancel",
        "--type",
        "greet",
        "-t",
        "nobody-polls",
        "--start-to-close-timeout",
        "10s",
    ])
    .ok();
    s.temporal(&[
        "activity",
        "cancel",
        "-a",
        "cli-cancel",
        "--reason",
        "not needed",
    ])
    .ok();
    let d = describe(&s, "cli-cancel");
    assert_eq!(
        d["info"]["status"], "ACTIVITY_EXECUTION_STATUS_CANCELED",
        "{d}"
    );
    assert_eq!(d["info"]["canceledReason"], "not needed", "{d}");
    start(&s, "cli-term", "heartbeats", &["-i", "300"]);
    eventually(10, "the heartbeating activity to start", || {
        info_field(&s, "cli-term", "runState") == "PENDING_ACTIVITY_STATE_STARTED"
    });
    s.temporal(&[
        "activity",
        "terminate",
        "-a",
        "cli-term",
        "--reason",
        "enough",
    ])
    .ok();
    assert_eq!(
        info_field(&s, "cli-term", "status"),
        "ACTIVITY_EXECUTION_STATUS_TERMINATED"
    );
    let r = s.temporal(&["activity", "terminate", "-a", "cli-term"]);
    assert_ne!(r.code, Some(0));

    // list and count.
    let out = s
        .temporal(&["activity", "count", "-q", "ActivityType = 'manual'"])
        .ok();
    assert!(out.contains("Total: 2"), "{out}");
    let out = s
        .temporal(&["activity", "list", "-q", "ExecutionStatus = 'Terminated'"])
        .ok();
    let rows = common::table_rows(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        out.contains("cli-term") && out.contains("Terminated"),
        "{out}"
    );
    let out = s.temporal(&["activity", "list", "-o", "json"]).ok();
    assert_eq!(out.matches("\"activityId\"").count(), 5, "{out}");
    // Not workflows.
    let out = s.temporal(&["workflow", "count"]).ok();
    assert!(out.contains("Total: 0"), "{out}");

    // delete.
    s.temporal(&["activity", "delete", "-a", "cli-greet", "-y"])
        .ok();
    let r = s.temporal(&["activity", "describe", "-a", "cli-greet"]);
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("activity not found for ID: cli-greet"),
        "{r:#?}"
    );
}

#[test]
fn a_running_standalone_activity_is_retried_after_a_restart() {
    let dir = std::env::temp_dir().join(format!(
        "perdure-standalone-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("perdure.db");
    let port = free_port();
    {
        let s = file_server(port, &db);
        let _worker = worker(&s, TQ);
        s.temporal(&[
            "activity",
            "start",
            "-a",
            "durable",
            "--type",
            "sleeps",
            "-t",
            TQ,
            "-i",
            "1.5",
            "--start-to-close-timeout",
            "3s",
            "--retry-initial-interval",
            "100ms",
        ])
        .ok();
        eventually(10, "the attempt to start", || {
            info_field(&s, "durable", "runState") == "PENDING_ACTIVITY_STATE_STARTED"
        });
        // Dropping the server and the worker SIGKILLs both while the attempt runs.
    }
    let s = file_server(port, &db);
    let d = describe(&s, "durable");
    assert_eq!(
        d["info"]["status"], "ACTIVITY_EXECUTION_STATUS_RUNNING",
        "{d}"
    );
    let _worker = worker(&s, TQ);
    // The lost attempt times out (its timer was rebuilt at start-up) and the retry completes.
    let out = s
        .temporal(&["activity", "result", "-a", "durable", "-o", "json"])
        .json();
    assert_eq!(out["status"], "COMPLETED", "{out}");
    assert_eq!(out["result"], "woke", "{out}");
    let d = describe(&s, "durable");
    assert_eq!(d["info"]["attempt"], 2, "{d}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
