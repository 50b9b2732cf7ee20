//! Schedules through the official `temporal schedule ...` CLI against a real `perdure server
//! start-dev`, and a schedule's catch-up after the server was SIGKILLed: the times that fell
//! while it was down are started after the restart, or counted as missed when they are older
//! than the catch-up window.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, Run, eventually, free_port, perdure_bin, server, temporal_bin};
use serde_json::Value;

/// Runs the `temporal` CLI against an address.
trait Cli {
    fn temporal(&self, args: &[&str]) -> Run;
}

impl Cli for common::Server {
    fn temporal(&self, args: &[&str]) -> Run {
        common::Server::temporal(self, args)
    }
}

/// A server this test starts and kills itself.
struct At(String);

impl Cli for At {
    fn temporal(&self, args: &[&str]) -> Run {
        Command::new(temporal_bin())
            .args(args)
            .args(["--address", &self.0])
            .env("NO_COLOR", "1")
            .output()
            .expect("run temporal")
            .into()
    }
}

fn describe(s: &impl Cli, id: &str) -> Value {
    s.temporal(&["schedule", "describe", "-s", id, "-o", "json"])
        .json()
}

fn num(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn temporal_schedule_commands() {
    let s = server();
    s.temporal(&[
        "schedule",
        "create",
        "-s",
        "nightly",
        "--cron",
        "30 2 * * *",
        "--time-zone",
        "Europe/Paris",
        "--paused",
        "--notes",
        "created",
        "-w",
        "nightly-wf",
        "--type",
        "report",
        "-t",
        "reports",
        "-i",
        "7",
        "--overlap-policy",
        "AllowAll",
        "--catchup-window",
        "1h",
    ])
    .ok();
    let d = describe(&s, "nightly");
    let spec = &d["schedule"]["spec"];
    assert_eq!(spec["timezoneName"], "Europe/Paris", "{d:#}");
    let cal = &spec["structuredCalendar"][0];
    assert_eq!(cal["hour"][0]["start"], 2, "{d:#}");
    assert_eq!(cal["minute"][0]["start"], 30, "{d:#}");
    assert_eq!(d["schedule"]["state"]["paused"], true);
    assert_eq!(d["schedule"]["state"]["notes"], "created");
    assert_eq!(
        d["schedule"]["policies"]["overlapPolicy"],
        "SCHEDULE_OVERLAP_POLICY_ALLOW_ALL"
    );
    assert_eq!(d["schedule"]["policies"]["catchupWindow"], "3600s");
    assert_eq!(
        d["schedule"]["action"]["startWorkflow"]["workflowType"]["name"],
        "report"
    );
    assert_eq!(d["info"]["futureActionTimes"].as_array().unwrap().len(), 10);

    // Trigger and backfill start workflows even while paused.
    s.temporal(&["schedule", "trigger", "-s", "nightly"]).ok();
    s.temporal(&[
        "schedule",
        "backfill",
        "-s",
        "nightly",
        "--start-time",
        "2026-01-01T00:00:00Z",
        "--end-time",
        "2026-01-03T00:00:00Z",
        "--overlap-policy",
        "AllowAll",
    ])
    .ok();
    let d = describe(&s, "nightly");
    assert_eq!(num(&d["info"]["actionCount"]), 3, "{d:#}");
    let ids: Vec<String> = d["info"]["recentActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["startWorkflowResult"]["workflowId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // 02:30 in Paris is 01:30Z in January.
    assert!(
        ids.contains(&"nightly-wf-2026-01-01T01:30:00Z".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"nightly-wf-2026-01-02T01:30:00Z".to_string()),
        "{ids:?}"
    );
    let started = s
        .temporal(&[
            "workflow",
            "describe",
            "-w",
            "nightly-wf-2026-01-01T01:30:00Z",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        started["workflowExecutionInfo"]["type"]["name"], "report",
        "{started:#}"
    );

    // Unpause, list, pause, delete.
    s.temporal(&[
        "schedule",
        "toggle",
        "-s",
        "nightly",
        "--unpause",
        "--reason",
        "go",
    ])
    .ok();
    assert_eq!(
        describe(&s, "nightly")["schedule"]["state"]["paused"],
        Value::Null
    );
    let list = s.temporal(&["schedule", "list"]).ok();
    assert!(list.contains("nightly"), "{list}");
    s.temporal(&[
        "schedule", "toggle", "-s", "nightly", "--pause", "--reason", "hold",
    ])
    .ok();
    assert_eq!(
        describe(&s, "nightly")["schedule"]["state"]["notes"],
        "hold"
    );
    s.temporal(&["schedule", "delete", "-s", "nightly"]).ok();
    let gone = s.temporal(&["schedule", "describe", "-s", "nightly"]);
    assert_ne!(gone.code, Some(0));
    assert!(gone.stderr.contains("not found"), "{gone:?}");
}

/// A `perdure server start-dev` on a database file that outlives the process.
fn start_on(db: &std::path::Path, port: u16) -> (At, Proc) {
    let child = Command::new(perdure_bin())
        .args(["server", "start-dev", "--headless", "--log-level", "error"])
        .args(["--port", &port.to_string()])
        .arg("--db-filename")
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start perdure server");
    let s = At(format!("127.0.0.1:{port}"));
    let end = Instant::now() + Duration::from_secs(30);
    while s.temporal(&["schedule", "list"]).code != Some(0) {
        assert!(Instant::now() < end, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (s, Proc(child))
}

#[test]
fn schedules_catch_up_after_a_sigkill() {
    let dir = std::env::temp_dir().join(format!("perdure-sched-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("perdure.db");
    let _ = std::fs::remove_file(&db);
    let port = free_port();
    let (s, proc) = start_on(&db, port);
    for (id, window) in [("keep", "1h"), ("short", "10s")] {
        s.temporal(&[
            "schedule",
            "create",
            "-s",
            id,
            "--interval",
            "1s",
            "--overlap-policy",
            "AllowAll",
            "--catchup-window",
            window,
            "-w",
            id,
            "--type",
            "t",
            "-t",
            "restart-tq",
        ])
        .ok();
    }
    // Killed at once, before much ran, and kept down longer than the short window.
    drop(proc);
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    let (s, _proc) = start_on(&db, port);
    let down = killed.elapsed().as_secs() as i64;
    // The long window takes every second that passed; the short one misses the older ones.
    eventually(10, "schedules caught up", || {
        let keep = describe(&s, "keep");
        num(&keep["info"]["actionCount"]) >= down
    });
    let short = describe(&s, "short");
    let missed = num(&short["info"]["missedCatchupWindow"]);
    assert!(missed >= 1, "{short:#}");
    let taken = num(&short["info"]["actionCount"]);
    assert!(taken >= 10, "{short:#}");
    let keep = describe(&s, "keep");
    assert_eq!(num(&keep["info"]["missedCatchupWindow"]), 0, "{keep:#}");
    // The runs of the downtime exist, started after the restart.
    let first = keep["info"]["recentActions"][0]["startWorkflowResult"]["workflowId"]
        .as_str()
        .unwrap()
        .to_string();
    s.temporal(&["workflow", "describe", "-w", &first]).ok();
    let _ = std::fs::remove_dir_all(&dir);
}
