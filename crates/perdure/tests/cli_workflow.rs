//! `perdure workflow ...` against a real `perdure server start-dev` with a Python-SDK worker:
//! every command in table and JSON form, `show --follow`, and the same executions seen through the
//! official `temporal` CLI; and `workflow reset` (both CLIs) replayed by the Python SDK.

mod common;

use common::{eventually, kv_value, server, server_with, table_rows, wait_output};
use serde_json::Value;

const TQ: &str = "cli-tq";

#[test]
fn order_workflow_through_every_command() {
    let s = server();
    let _worker = s.python_worker(TQ);

    // start: table form.
    let out = s
        .perdure(&[
            "workflow", "start", "-t", TQ, "--type", "order", "-w", "order-1", "-i", "7",
        ])
        .ok();
    assert!(out.starts_with("Running execution:\n"), "{out}");
    assert_eq!(kv_value(&out, "WorkflowId").as_deref(), Some("order-1"));
    assert_eq!(kv_value(&out, "Type").as_deref(), Some("order"));
    assert_eq!(kv_value(&out, "TaskQueue").as_deref(), Some(TQ));
    assert_eq!(kv_value(&out, "Namespace").as_deref(), Some("default"));
    let run_id = kv_value(&out, "RunId").unwrap();
    assert_eq!(run_id.len(), 36, "{out}");

    // start: JSON form (and a second execution, a waiter).
    let started = s
        .perdure(&[
            "workflow", "start", "-t", TQ, "--type", "waiter", "-w", "waiter-1", "-o", "json",
        ])
        .json();
    assert_eq!(started["workflowId"], "waiter-1");
    assert_eq!(started["type"], "waiter");
    assert_eq!(started["taskQueue"], TQ);
    assert_eq!(started["namespace"], "default");
    let waiter_run = started["runId"].as_str().unwrap().to_string();

    // The order waits for "pickedUp" after charging: wait until the query says so.
    eventually(20, "the order to be paid", || {
        let r = s.perdure(&["workflow", "query", "-w", "order-1", "--name", "getStatus"]);
        r.code == Some(0) && r.stdout.contains("\"Paid\"")
    });
    let out = s
        .perdure(&["workflow", "query", "-w", "order-1", "--name", "getStatus"])
        .ok();
    assert_eq!(out, "Query result:\n  QueryResult  \"Paid\"\n");
    let q = s
        .perdure(&[
            "workflow",
            "query",
            "-w",
            "order-1",
            "-r",
            &run_id,
            "--name",
            "getStatus",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(q, serde_json::json!({"queryResult": ["Paid"]}));

    // list: table, JSON, JSONL; --limit; --query.
    let out = s.perdure(&["workflow", "list"]).ok();
    let rows = table_rows(&out);
    assert_eq!(rows[0], ["Status", "WorkflowId", "Type", "StartTime"]);
    assert_eq!(rows.len(), 3, "{out}");
    for row in &rows[1..] {
        assert_eq!(row[0], "Running", "{out}");
        assert!(row[3] == "now" || row[3].ends_with("seconds ago") || row[3] == "1 second ago");
    }
    let mut ids: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["order-1", "waiter-1"]);
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let coloured = s.perdure(&["workflow", "list", "--color", "always"]).ok();
    assert!(coloured.contains("\x1b[34mRunning\x1b[0m"), "{coloured:?}");
    let list = s.perdure(&["workflow", "list", "-o", "json"]).json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for w in list {
        assert_eq!(w["status"], "WORKFLOW_EXECUTION_STATUS_RUNNING");
        assert_eq!(w["taskQueue"], TQ);
    }
    let jsonl = s.perdure(&["workflow", "list", "-o", "jsonl"]).ok();
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines, *list);
    let one = s
        .perdure(&["workflow", "list", "--limit", "1", "-o", "json"])
        .json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    let orders = s
        .perdure(&[
            "workflow",
            "list",
            "-q",
            "WorkflowType = 'order'",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(orders.as_array().unwrap().len(), 1);
    assert_eq!(orders[0]["execution"]["workflowId"], "order-1");
    assert_eq!(orders[0]["execution"]["runId"], run_id.as_str());

    // count.
    assert_eq!(s.perdure(&["workflow", "count"]).ok(), "Total: 2\n");
    let c = s
        .perdure(&[
            "workflow",
            "count",
            "-q",
            "WorkflowType = 'waiter'",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(c["count"], "1");

    // describe: table and JSON.
    let out = s.perdure(&["workflow", "describe", "-w", "order-1"]).ok();
    assert!(out.starts_with("Execution Info:\n"), "{out}");
    assert_eq!(kv_value(&out, "RunId").as_deref(), Some(run_id.as_str()));
    assert_eq!(kv_value(&out, "Status").as_deref(), Some("Running"));
    assert_eq!(kv_value(&out, "Type").as_deref(), Some("order"));
    assert!(out.contains("Pending Activities: 0"), "{out}");
    let d = s
        .perdure(&["workflow", "describe", "-w", "order-1", "-o", "json"])
        .json();
    let info = &d["workflowExecutionInfo"];
    assert_eq!(info["execution"]["runId"], run_id.as_str());
    assert_eq!(info["type"]["name"], "order");
    assert_eq!(info["status"], "WORKFLOW_EXECUTION_STATUS_RUNNING");
    assert_eq!(d["executionConfig"]["taskQueue"]["name"], TQ);
    let history_length: i64 = info["historyLength"].as_str().unwrap().parse().unwrap();
    assert!(history_length >= 10, "{d}");

    // show --follow streams until the order completes, while we signal it.
    let follower = s.spawn_perdure(&["workflow", "show", "-w", "order-1", "--follow"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = s
        .perdure(&["workflow", "signal", "-w", "order-1", "--name", "pickedUp"])
        .ok();
    assert_eq!(out, "Signal workflow succeeded\n");
    eventually(20, "the order to be picked up", || {
        s.perdure(&["workflow", "query", "-w", "order-1", "--name", "getStatus"])
            .stdout
            .contains("Picked up")
    });
    s.perdure(&["workflow", "signal", "-w", "order-1", "--name", "delivered"])
        .ok();
    let followed = wait_output(follower, 30).ok();
    let rows = table_rows(&followed);
    assert_eq!(rows[0], ["Progress:"]);
    assert_eq!(rows[1], ["ID", "Time", "Type"]);
    assert_eq!(rows[2][0], "1");
    assert_eq!(rows[2][2], "WorkflowExecutionStarted");
    let last = rows.last().unwrap();
    assert_eq!(last[2], "WorkflowExecutionCompleted", "{followed}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.get(2).map(String::as_str) == Some("WorkflowExecutionSignaled"))
            .count(),
        2,
        "{followed}"
    );
    // Event ids are 1..=n, each once.
    let ids: Vec<i64> = rows[2..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());

    // show without --follow prints the same events; JSON is the history JSON form.
    let shown = s.perdure(&["workflow", "show", "-w", "order-1"]).ok();
    assert_eq!(shown, followed);
    let text = s
        .perdure(&["workflow", "show", "-w", "order-1", "-o", "json"])
        .ok();
    let history = perdure_sdk::history_from_json(&text).expect("show -o json is a history");
    assert_eq!(history.events.len(), ids.len());
    assert_eq!(
        perdure_sdk::history_to_json(&history).unwrap() + "\n",
        text,
        "show -o json is exactly the SDK's history JSON"
    );
    let jsonl = s
        .perdure(&["workflow", "show", "-w", "order-1", "-o", "jsonl"])
        .ok();
    let events: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let whole: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(Value::Array(events), whole["events"]);

    // result: table and JSON.
    let out = s.perdure(&["workflow", "result", "-w", "order-1"]).ok();
    assert_eq!(
        out,
        "Results:\n  Status          COMPLETED\n  Result          {\"product_id\":7,\"state\":\"Delivered\"}\n  ResultEncoding  json/plain\n"
    );
    let r = s
        .perdure(&["workflow", "result", "-w", "order-1", "-o", "json"])
        .json();
    assert_eq!(r["status"], "COMPLETED");
    assert_eq!(
        r["result"],
        serde_json::json!({"product_id": 7, "state": "Delivered"})
    );
    assert_eq!(
        r["closeEvent"]["eventType"],
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    );

    // signal with input, then cancel the waiter; its result is an error exit.
    s.perdure(&[
        "workflow",
        "signal",
        "-w",
        "waiter-1",
        "-r",
        &waiter_run,
        "--name",
        "sig",
        "-i",
        "\"a\"",
    ])
    .ok();
    let out = s
        .perdure(&["workflow", "cancel", "-w", "waiter-1", "--reason", "test"])
        .ok();
    assert_eq!(out, "Canceled workflow\n");
    let r = s.perdure(&["workflow", "result", "-w", "waiter-1"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(kv_value(&r.stdout, "Status").as_deref(), Some("CANCELED"));
    assert_eq!(r.stderr, "Error: workflow was cancelled\n");

    // terminate a sleeper.
    s.perdure(&[
        "workflow",
        "start",
        "-t",
        TQ,
        "--type",
        "sleeper",
        "-w",
        "sleeper-1",
    ])
    .ok();
    let out = s
        .perdure(&[
            "workflow",
            "terminate",
            "-w",
            "sleeper-1",
            "--reason",
            "enough",
        ])
        .ok();
    assert_eq!(out, "Workflow terminated\n");
    let r = s.perdure(&["workflow", "result", "-w", "sleeper-1", "-o", "json"]);
    assert_eq!(r.code, Some(1));
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["status"], "TERMINATED");
    assert_eq!(
        v["closeEvent"]["workflowExecutionTerminatedEventAttributes"]["reason"],
        "enough"
    );
    assert_eq!(r.stderr, "Error: workflow was terminated: enough\n");

    // Statuses in list, grouped counts.
    let out = s.perdure(&["workflow", "list"]).ok();
    let statuses: std::collections::BTreeMap<String, String> = table_rows(&out)[1..]
        .iter()
        .map(|r| (r[1].clone(), r[0].clone()))
        .collect();
    assert_eq!(statuses["order-1"], "Completed");
    assert_eq!(statuses["waiter-1"], "Canceled");
    assert_eq!(statuses["sleeper-1"], "Terminated");
    let out = s
        .perdure(&["workflow", "count", "-q", "GROUP BY ExecutionStatus"])
        .ok();
    assert!(out.starts_with("Total: 3\n"), "{out}");
    assert!(out.contains("Group total: 1, values: Completed\n"), "{out}");

    // delete.
    let out = s.perdure(&["workflow", "delete", "-w", "sleeper-1"]).ok();
    assert_eq!(out, "Delete workflow succeeded\n");
    eventually(10, "the deleted workflow to disappear", || {
        s.perdure(&["workflow", "describe", "-w", "sleeper-1"]).code == Some(1)
    });
}

#[test]
fn execute_follows_continue_as_new_and_reports_failures() {
    let s = server();
    let _worker = s.python_worker(TQ);

    // counter continues as new until n == 3.
    let out = s
        .perdure(&[
            "workflow", "execute", "-t", TQ, "--type", "counter", "-w", "count-1", "-i", "0",
        ])
        .ok();
    assert!(out.starts_with("Running execution:\n"), "{out}");
    assert!(out.contains("\nProgress:\n"), "{out}");
    assert!(out.contains("WorkflowExecutionContinuedAsNew"), "{out}");
    assert!(out.contains("WorkflowExecutionCompleted"), "{out}");
    let results = &out[out.find("Results:").unwrap()..];
    assert_eq!(kv_value(results, "Status").as_deref(), Some("COMPLETED"));
    assert_eq!(kv_value(results, "Result").as_deref(), Some("3"));

    let v = s
        .perdure(&[
            "workflow", "execute", "-t", TQ, "--type", "counter", "-w", "count-2", "-i", "1", "-o",
            "json",
        ])
        .json();
    assert_eq!(v["workflowId"], "count-2");
    assert_eq!(v["status"], "COMPLETED");
    assert_eq!(v["result"], 3);

    // An input file, and a duplicate start is a clear error.
    let dir = std::env::temp_dir().join(format!("perdure-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("n.json");
    std::fs::write(&file, "2\n").unwrap();
    let v = s
        .perdure(&[
            "workflow",
            "execute",
            "-t",
            TQ,
            "--type",
            "counter",
            "-w",
            "count-3",
            "--input-file",
            file.to_str().unwrap(),
            "-o",
            "json",
        ])
        .json();
    assert_eq!(v["result"], 3);
    let r = s.perdure(&[
        "workflow", "start", "-t", TQ, "--type", "waiter", "-w", "dup",
    ]);
    assert_eq!(r.code, Some(0));
    let r = s.perdure(&[
        "workflow", "start", "-t", TQ, "--type", "waiter", "-w", "dup",
    ]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .starts_with("Error: workflow execution already started (workflow id dup"),
        "{r:#?}"
    );
    assert_eq!(r.stderr.lines().count(), 1);
    // An update-free query on a missing handler fails with the worker's message.
    let r = s.perdure(&["workflow", "query", "-w", "dup", "--name", "nope"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.starts_with("Error: query failed:"), "{r:#?}");
    assert!(r.stderr.contains("nope"), "{r:#?}");
}

#[test]
fn official_temporal_cli_sees_the_same_data() {
    let s = server();
    let _worker = s.python_worker(TQ);
    s.perdure(&[
        "workflow", "start", "-t", TQ, "--type", "order", "-w", "o", "-i", "3",
    ])
    .ok();
    s.perdure(&["workflow", "start", "-t", TQ, "--type", "waiter", "-w", "w"])
        .ok();
    s.perdure(&[
        "workflow", "start", "-t", TQ, "--type", "sleeper", "-w", "z",
    ])
    .ok();
    eventually(20, "the order to be paid", || {
        s.perdure(&["workflow", "query", "-w", "o", "--name", "getStatus"])
            .stdout
            .contains("Paid")
    });

    // list: same executions and statuses.
    let ours = s.perdure(&["workflow", "list", "-o", "json"]).json();
    let theirs = s.temporal(&["workflow", "list", "-o", "json"]).json();
    let key = |v: &Value| -> Vec<(String, String, String)> {
        let mut k: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["execution"]["workflowId"].as_str().unwrap().to_string(),
                    w["execution"]["runId"].as_str().unwrap().to_string(),
                    w["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        k.sort();
        k
    };
    assert_eq!(key(&ours), key(&theirs));
    assert_eq!(key(&ours).len(), 3);

    // query: the same answer.
    let ours = s
        .perdure(&[
            "workflow",
            "query",
            "-w",
            "o",
            "--name",
            "getStatus",
            "-o",
            "json",
        ])
        .json();
    let theirs = s
        .temporal(&[
            "workflow",
            "query",
            "-w",
            "o",
            "--name",
            "getStatus",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(ours, theirs);

    // signal with temporal, see it with perdure.
    let out = s
        .temporal(&["workflow", "signal", "-w", "o", "--name", "pickedUp"])
        .ok();
    assert!(out.contains("Signal workflow succeeded"), "{out}");
    eventually(20, "the order to be picked up", || {
        s.perdure(&["workflow", "query", "-w", "o", "--name", "getStatus"])
            .stdout
            .contains("Picked up")
    });

    // terminate and cancel with temporal.
    let out = s
        .temporal(&["workflow", "terminate", "-w", "z", "--reason", "bye"])
        .ok();
    assert!(out.contains("terminated"), "{out}");
    let out = s.temporal(&["workflow", "cancel", "-w", "w"]).ok();
    assert!(out.contains("Cancel"), "{out}");
    eventually(20, "the waiter to be cancelled", || {
        s.perdure(&["workflow", "describe", "-w", "w", "-o", "json"])
            .json()["workflowExecutionInfo"]["status"]
            == "WORKFLOW_EXECUTION_STATUS_CANCELED"
    });

    // describe: the same execution, status and history length.
    for id in ["o", "w", "z"] {
        let ours = s
            .perdure(&["workflow", "describe", "-w", id, "-o", "json"])
            .json();
        let theirs = s
            .temporal(&["workflow", "describe", "-w", id, "-o", "json"])
            .json();
        for field in ["execution", "type", "status", "historyLength", "taskQueue"] {
            assert_eq!(
                ours["workflowExecutionInfo"][field], theirs["workflowExecutionInfo"][field],
                "{id}: {field}"
            );
        }
        // show: byte-identical history JSON for closed executions.
        if id != "o" {
            let ours = s
                .perdure(&["workflow", "show", "-w", id, "-o", "json"])
                .ok();
            let theirs = s
                .temporal(&["workflow", "show", "-w", id, "-o", "json"])
                .ok();
            assert_eq!(ours, theirs, "{id}: show -o json");
        }
        // temporal's text describe names the same run.
        let text = s.temporal(&["workflow", "describe", "-w", id]).ok();
        let run = ours["workflowExecutionInfo"]["execution"]["runId"]
            .as_str()
            .unwrap();
        assert!(text.contains(run), "{text}");
    }
    let text = s.temporal(&["workflow", "show", "-w", "z"]).ok();
    assert!(text.contains("WorkflowExecutionTerminated"), "{text}");

    // namespaces: perdure creates, temporal lists and describes.
    s.perdure(&[
        "operator",
        "namespace",
        "create",
        "shop",
        "--description",
        "the shop",
    ])
    .ok();
    let theirs = s
        .temporal(&["operator", "namespace", "list", "-o", "json"])
        .json();
    let names: Vec<&str> = theirs
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespaceInfo"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"default") && names.contains(&"shop"),
        "{names:?}"
    );
    let theirs = s
        .temporal(&[
            "operator",
            "namespace",
            "describe",
            "-n",
            "shop",
            "-o",
            "json",
        ])
        .json();
    let ours = s
        .perdure(&["operator", "namespace", "describe", "shop", "-o", "json"])
        .json();
    assert_eq!(ours["namespaceInfo"], theirs["namespaceInfo"]);
    assert_eq!(theirs["namespaceInfo"]["description"], "the shop");
}

/// The event types of a run's history, from `perdure workflow show -o json`.
fn event_types(s: &common::Server, id: &str, run: &str) -> Vec<String> {
    let mut args = vec!["workflow", "show", "-w", id, "-o", "json"];
    if !run.is_empty() {
        args.extend(["-r", run]);
    }
    s.perdure(&args).json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_string())
        .collect()
}

fn status_of(s: &common::Server, id: &str) -> (String, String) {
    let d = s
        .perdure(&["workflow", "describe", "-w", id, "-o", "json"])
        .json();
    let info = &d["workflowExecutionInfo"];
    (
        info["execution"]["runId"].as_str().unwrap().to_string(),
        info["status"].as_str().unwrap().to_string(),
    )
}

#[test]
fn reset_replays_a_python_workflow_with_perdure_and_temporal_clis() {
    let s = server();
    let _worker = s.python_worker(TQ);
    s.perdure(&[
        "workflow", "start", "-t", TQ, "--type", "waiter", "-w", "rw",
    ])
    .ok();
    eventually(20, "the first workflow task to complete", || {
        event_types(&s, "rw", "").len() >= 3
            && event_types(&s, "rw", "").contains(&"EVENT_TYPE_WORKFLOW_TASK_COMPLETED".into())
    });
    for v in ["a", "done"] {
        s.perdure(&[
            "workflow",
            "signal",
            "-w",
            "rw",
            "--name",
            "sig",
            "-i",
            &format!("\"{v}\""),
        ])
        .ok();
    }
    eventually(20, "the waiter to complete", || {
        status_of(&s, "rw").1 == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    });
    let (base, _) = status_of(&s, "rw");

    // perdure: back to the first workflow task; the signals come again and it completes again.
    let out = s
        .perdure(&[
            "workflow",
            "reset",
            "-w",
            "rw",
            "--type",
            "FirstWorkflowTask",
            "--reason",
            "again",
        ])
        .ok();
    assert_eq!(out, "Resetting workflow rw to event ID 4\n");
    eventually(20, "the reset run to complete", || {
        let (run, status) = status_of(&s, "rw");
        run != base && status == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    });
    let types = event_types(&s, "rw", "");
    assert_eq!(
        types[..7],
        [
            "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
            "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
            "EVENT_TYPE_WORKFLOW_TASK_STARTED",
            "EVENT_TYPE_WORKFLOW_TASK_FAILED",
            "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
            "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
            "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
        ]
    );
    assert_eq!(
        types.last().unwrap(),
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    );
    let out = s
        .perdure(&["workflow", "result", "-w", "rw", "-o", "json"])
        .json();
    assert_eq!(out["result"], serde_json::json!(["a", "done"]), "{out}");

    // temporal: the last workflow task, by event id from the JSON form; the SDK replays the
    // whole history up to it and completes the run again.
    let (second, _) = status_of(&s, "rw");
    let last_completed = event_types(&s, "rw", "")
        .iter()
        .rposition(|t| t == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED")
        .unwrap()
        + 1;
    let out = s
        .temporal(&[
            "workflow",
            "reset",
            "-w",
            "rw",
            "--event-id",
            &last_completed.to_string(),
            "--reason",
            "once more",
            "-o",
            "json",
        ])
        .json();
    let third = out["runId"].as_str().unwrap().to_string();
    assert_ne!(third, second);
    eventually(20, "the second reset run to complete", || {
        status_of(&s, "rw") == (third.clone(), "WORKFLOW_EXECUTION_STATUS_COMPLETED".into())
    });

    // Without reapplied signals the run waits again; a bad event id is refused as Temporal does.
    let out = s
        .perdure(&[
            "workflow",
            "reset",
            "-w",
            "rw",
            "-r",
            &base,
            "-e",
            "4",
            "--reason",
            "quiet",
            "--reapply-exclude",
            "Signal",
            "-o",
            "json",
        ])
        .json();
    let quiet = out["runId"].as_str().unwrap().to_string();
    assert_eq!(status_of(&s, "rw").0, quiet);
    assert!(
        !event_types(&s, "rw", &quiet).contains(&"EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED".into())
    );
    let bad = s.perdure(&["workflow", "reset", "-w", "rw", "-e", "2", "--reason", "x"]);
    assert_ne!(bad.code, Some(0));
    assert!(
        bad.stderr.contains("this event must be at the boundary"),
        "{bad:?}"
    );
}

#[test]
fn temporal_cli_batch_terminate_and_cancel_by_query() {
    let s = server();
    for (id, t) in [
        ("ba1", "batchA"),
        ("ba2", "batchA"),
        ("ba3", "batchA"),
        ("bb1", "batchB"),
    ] {
        s.perdure(&["workflow", "start", "-t", TQ, "--type", t, "-w", id])
            .ok();
    }
    let status = |id: &str| {
        s.perdure(&["workflow", "describe", "-w", id, "-o", "json"])
            .json()["workflowExecutionInfo"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let out = s
        .temporal(&[
            "workflow",
            "terminate",
            "--query",
            "WorkflowType='batchA'",
            "--reason",
            "cleanup",
            "--yes",
        ])
        .ok();
    let job = out
        .split("Started batch for job ID: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_string();
    eventually(20, "the batch job to complete", || {
        s.temporal(&["batch", "describe", "--job-id", &job, "-o", "json"])
            .json()["state"]
            == "BATCH_OPERATION_STATE_COMPLETED"
    });
    let d = s
        .temporal(&["batch", "describe", "--job-id", &job, "-o", "json"])
        .json();
    assert_eq!(
        d["operationType"],
        "BATCH_OPERATION_TYPE_TERMINATE_WORKFLOW"
    );
    assert_eq!(d["totalOperationCount"], "3");
    assert_eq!(d["completeOperationCount"], "3");
    assert_eq!(d["reason"], "cleanup");
    for id in ["ba1", "ba2", "ba3"] {
        assert_eq!(status(id), "WORKFLOW_EXECUTION_STATUS_TERMINATED", "{id}");
    }
    assert_eq!(status("bb1"), "WORKFLOW_EXECUTION_STATUS_RUNNING");
    let list = s.temporal(&["batch", "list", "-o", "json"]).json();
    assert_eq!(list[0]["jobId"], job.as_str(), "{list}");

    let out = s
        .temporal(&[
            "workflow",
            "cancel",
            "--query",
            "WorkflowType='batchB'",
            "--reason",
            "stop",
            "--yes",
        ])
        .ok();
    assert!(out.contains("Started batch for job ID: "), "{out}");
    eventually(20, "the cancel request to land", || {
        s.perdure(&["workflow", "show", "-w", "bb1", "-o", "json"])
            .json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED")
    });
}

/// `workflow start` with `temporal`'s newer flags: memo, search attributes, a summary and
/// details, and payload metadata; connection flags before the command group. The official CLI
/// reads back what perdure wrote.
#[test]
fn start_with_memo_search_attributes_summary_and_input_meta() {
    let s = server_with(&[]);
    let r = s.perdure(&[
        "--namespace",
        "default",
        "workflow",
        "start",
        "-t",
        "q",
        "--type",
        "t",
        "-w",
        "flags",
        "--memo",
        r#"note={"a":1}"#,
        "--search-attribute",
        r#"CustomKeywordField="kw""#,
        "--static-summary",
        "the summary",
        "--static-details",
        "some details",
        "--input-meta",
        "encoding=binary/plain",
        "-i",
        "raw bytes",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let d = s
        .temporal(&["workflow", "describe", "-w", "flags", "-o", "json"])
        .json();
    let info = &d["workflowExecutionInfo"];
    // The official CLI prints JSON payloads in its shorthand (the value itself).
    assert_eq!(
        info["memo"]["fields"]["note"],
        serde_json::json!({"a": 1}),
        "{d}"
    );
    let sa = &info["searchAttributes"]["indexedFields"]["CustomKeywordField"];
    assert_eq!(sa["data"], "Imt3Ig==", "{d}"); // "kw"
    let md = &d["executionConfig"]["userMetadata"];
    assert_eq!(md["summary"], "the summary", "{d}");
    assert_eq!(md["details"], "some details", "{d}");
    let h = s
        .temporal(&["workflow", "show", "-w", "flags", "-o", "json"])
        .json();
    let input = &h["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0];
    assert_eq!(input["metadata"]["encoding"], "YmluYXJ5L3BsYWlu", "{h}");
    let bad = s.perdure(&[
        "workflow", "start", "-t", "q", "--type", "t", "--memo", "nope",
    ]);
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("--memo \"nope\" is not KEY=VALUE"),
        "{bad:?}"
    );
}

/// `perdure workflow signal|cancel|terminate|delete --query` start a batch job as `temporal`
/// does (a confirmation unless --yes, then the job id); `-w` and `-q` exclude each other.
#[test]
fn batch_forms_of_signal_cancel_terminate_and_delete() {
    let s = server_with(&[]);
    let kind = format!("batch{}", std::process::id());
    for i in 0..3 {
        let id = format!("{kind}-{i}");
        s.perdure(&["workflow", "start", "-t", "q", "--type", &kind, "-w", &id])
            .ok();
    }
    s.perdure(&[
        "workflow",
        "start",
        "-t",
        "q",
        "--type",
        "other",
        "-w",
        &format!("{kind}-x"),
    ])
    .ok();
    let query = format!("WorkflowType = '{kind}'");
    let count = |q: &str| {
        let c = s
            .perdure(&["workflow", "count", "-q", q, "-o", "json"])
            .json();
        c["count"].as_str().unwrap_or("0").parse::<u64>().unwrap()
    };
    eventually(20, "the three runs are listed", || count(&query) == 3);

    // No --yes and no answer on stdin: nothing starts.
    let refused = s.perdure(&["workflow", "terminate", "-q", &query, "--reason", "r"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("batch not started"), "{refused:?}");
    let both = s.perdure(&["workflow", "cancel", "-q", &query, "-w", "x", "--yes"]);
    assert_eq!(both.code, Some(2), "{both:?}");

    let job = |args: &[&str]| -> String {
        let out = s.perdure(args).ok();
        let id = out
            .trim()
            .strip_prefix("Started batch for job ID: ")
            .unwrap_or_else(|| panic!("{out}"))
            .to_string();
        eventually(20, "the batch job completes", || {
            let d = s
                .temporal(&["batch", "describe", "--job-id", &id, "-o", "json"])
                .json();
            d["state"] == "BATCH_OPERATION_STATE_COMPLETED"
        });
        id
    };
    job(&[
        "workflow", "signal", "-q", &query, "--name", "poke", "-i", "1", "--yes",
    ]);
    let last = |id: &str| {
        let h = s
            .temporal(&["workflow", "show", "-w", id, "-o", "json"])
            .json();
        h["events"].as_array().unwrap().last().unwrap()["eventType"].clone()
    };
    assert_eq!(
        last(&format!("{kind}-0")),
        "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"
    );
    job(&["workflow", "cancel", "-q", &query, "--yes"]);
    assert_eq!(
        last(&format!("{kind}-1")),
        "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED"
    );
    let out = s
        .perdure(&[
            "workflow",
            "terminate",
            "-q",
            &query,
            "--reason",
            "r",
            "--yes",
            "-o",
            "json",
        ])
        .json();
    assert!(out["batchJobId"].is_string(), "{out}");
    let terminated = format!("{query} AND ExecutionStatus = 'Terminated'");
    eventually(20, "the runs are terminated", || count(&terminated) == 3);
    job(&["workflow", "delete", "-q", &query, "--yes"]);
    eventually(20, "the runs are deleted", || count(&query) == 0);
    // The other workflow was never touched.
    assert_eq!(
        last(&format!("{kind}-x")),
        "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED"
    );
}
