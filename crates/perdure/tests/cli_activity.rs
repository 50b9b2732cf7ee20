//! `temporal activity pause | unpause | reset | update-options` (the official CLI) against a real
//! `perdure server start-dev`, with a Python-SDK worker running the activity-operation workflow
//! of tests/python/wf_activity_ops.py; and a paused activity that stays paused across a server
//! kill and restart.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proc, Server, eventually, file_server, free_port, repo, server};
use serde_json::Value;

const TQ: &str = "activity-ops-tq";

/// The Python worker of tests/python/run_activity_ops_worker.py on `task_queue`.
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
        .arg(repo().join("tests/python/run_activity_ops_worker.py"))
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

/// Starts RunActivity(`activity`, 30 s retry interval) and waits until its first attempt
/// failed and the second waits its 30 s.
fn start_waiting_activity(s: &Server, wid: &str, activity_type: &str) {
    let input = format!("\"{activity_type}\"");
    s.temporal(&[
        "workflow",
        "start",
        "--type",
        "RunActivity",
        "-t",
        TQ,
        "-w",
        wid,
        "-i",
        &input,
        "-i",
        "30000",
        "-i",
        "0",
    ])
    .ok();
    eventually(20, "the second attempt to wait", || {
        activity(s, wid).is_some_and(|a| a["attempt"] == 2)
    });
}

/// The workflow's pending activity as `temporal workflow describe -o json` shows it.
fn activity(s: &Server, wid: &str) -> Option<Value> {
    let d = s
        .temporal(&["workflow", "describe", "-w", wid, "-o", "json"])
        .json();
    d["pendingActivities"].get(0).cloned()
}

fn status(s: &Server, wid: &str) -> String {
    let d = s
        .temporal(&["workflow", "describe", "-w", wid, "-o", "json"])
        .json();
    d["workflowExecutionInfo"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn event_types(s: &Server, wid: &str) -> Vec<String> {
    let h = s
        .temporal(&["workflow", "show", "-w", wid, "-o", "json"])
        .json();
    h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn temporal_activity_commands() {
    let s = server();
    let _worker = worker(&s, TQ);
    let wid = "activity-ops-cli";
    start_waiting_activity(&s, wid, "fails_first");

    // pause
    s.temporal(&[
        "activity",
        "pause",
        "-w",
        wid,
        "-a",
        "a1",
        "--reason",
        "maintenance",
        "--identity",
        "ops",
    ])
    .ok();
    let a = activity(&s, wid).unwrap();
    assert_eq!(a["state"], "PENDING_ACTIVITY_STATE_PAUSED", "{a}");
    assert_eq!(a["paused"], true);
    assert_eq!(a["pauseInfo"]["manual"]["identity"], "ops");
    assert_eq!(a["pauseInfo"]["manual"]["reason"], "maintenance");
    assert!(a["pauseInfo"]["pauseTime"].is_string(), "{a}");
    assert!(a.get("nextAttemptScheduleTime").is_none(), "{a}");
    let again = s.temporal(&["activity", "pause", "-w", wid, "-a", "a1"]);
    assert_eq!(again.code, Some(1));
    assert_eq!(
        again.stderr.trim(),
        "Error: unable to pause Activity: activity is already paused"
    );
    let unknown = s.temporal(&["activity", "pause", "-w", wid, "-a", "nope"]);
    assert_eq!(unknown.code, Some(1));
    assert_eq!(
        unknown.stderr.trim(),
        "Error: unable to pause Activity: Can't find pending activity with such ID. Invalid activityID or activity already completed"
    );
    let no_workflow = s.temporal(&["activity", "pause", "-w", "no-such-workflow", "-a", "a1"]);
    assert_eq!(
        no_workflow.stderr.trim(),
        "Error: unable to pause Activity: workflow not found for ID: no-such-workflow"
    );

    // update-options: the result as the CLI prints it, and in describe.
    let out = s
        .temporal(&[
            "activity",
            "update-options",
            "-w",
            wid,
            "-a",
            "a1",
            "--start-to-close-timeout",
            "7s",
            "--retry-maximum-attempts",
            "4",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(out["TaskQueue"], TQ, "{out}");
    assert_eq!(out["StartToCloseTimeout"], 7_000_000_000u64, "{out}");
    assert_eq!(out["MaximumAttempts"], 4, "{out}");
    assert_eq!(out["InitialInterval"], 30_000_000_000u64, "{out}");
    let a = activity(&s, wid).unwrap();
    assert_eq!(a["activityOptions"]["startToCloseTimeout"], "7s", "{a}");
    assert_eq!(a["maximumAttempts"], 4, "{a}");

    // reset --keep-paused: attempt 1, still paused.
    s.temporal(&["activity", "reset", "-w", wid, "-a", "a1", "--keep-paused"])
        .ok();
    let a = activity(&s, wid).unwrap();
    assert_eq!(a["attempt"], 1, "{a}");
    assert_eq!(a["state"], "PENDING_ACTIVITY_STATE_PAUSED", "{a}");

    // unpause: it runs now (not in 30 s) and the workflow completes.
    s.temporal(&["activity", "unpause", "-w", wid, "-a", "a1"])
        .ok();
    eventually(15, "the workflow to complete", || {
        status(&s, wid) == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    });
    let result = s
        .perdure(&["workflow", "result", "-w", wid, "-o", "json"])
        .ok();
    assert!(result.contains("done attempt 1"), "{result}");
    let unpause_closed = s.temporal(&["activity", "unpause", "-w", wid, "-a", "a1"]);
    assert_eq!(
        unpause_closed.stderr.trim(),
        "Error: unable to unpause an Activity: workflow execution already completed"
    );
    // No operation wrote an event.
    assert_eq!(
        event_types(&s, wid),
        [
            "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
            "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
            "EVENT_TYPE_WORKFLOW_TASK_STARTED",
            "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
            "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
            "EVENT_TYPE_ACTIVITY_TASK_STARTED",
            "EVENT_TYPE_ACTIVITY_TASK_COMPLETED",
            "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
            "EVENT_TYPE_WORKFLOW_TASK_STARTED",
            "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
            "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
        ]
    );
}

#[test]
fn a_paused_activity_stays_paused_across_a_restart() {
    let dir = std::env::temp_dir().join(format!(
        "perdure-activity-ops-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("perdure.db");
    let port = free_port();
    let wid = "activity-ops-restart";
    {
        let s = file_server(port, &db);
        let _worker = worker(&s, TQ);
        // Attempt 1 fails in any worker process (the worker is replaced too).
        start_waiting_activity(&s, wid, "fails_attempt_one");
        s.temporal(&["activity", "pause", "-w", wid, "-a", "a1"])
            .ok();
        // Dropping the server and the worker SIGKILLs both.
    }
    let s = file_server(port, &db);
    let _worker = worker(&s, TQ);
    let a = activity(&s, wid).unwrap();
    assert_eq!(a["state"], "PENDING_ACTIVITY_STATE_PAUSED", "{a}");
    assert_eq!(a["paused"], true);
    // Nothing runs it while it is paused (its tasks and timers were rebuilt at start-up).
    std::thread::sleep(Duration::from_millis(1500));
    let a = activity(&s, wid).unwrap();
    assert_eq!(a["state"], "PENDING_ACTIVITY_STATE_PAUSED", "{a}");
    assert_eq!(a["attempt"], 2, "{a}");
    s.temporal(&["activity", "unpause", "-w", wid, "-a", "a1"])
        .ok();
    eventually(15, "the workflow to complete", || {
        status(&s, wid) == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    });
    let result = s
        .perdure(&["workflow", "result", "-w", wid, "-o", "json"])
        .ok();
    assert!(result.contains("done attempt 2"), "{result}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
