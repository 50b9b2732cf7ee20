//! Schedules through the official `temporal schedule ...` CLI against a real `perdure server
//! start-dev`, and a schedule's catch-up after the server was SIGKILLed: the times that fell
//! while it was down are started after the restart, or counted as missed when they are older
//! than the catch-up window.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Proc, Run, eventually, free_port, kv_value, perdure_bin, server, table_rows, temporal_bin,
};
use serde_json::Value;

/// Runs the `temporal` CLI (or `perdure`) against an address.
trait Cli {
    fn temporal(&self, args: &[&str]) -> Run;
    fn perdure(&self, args: &[&str]) -> Run;
}

impl Cli for common::Server {
    fn temporal(&self, args: &[&str]) -> Run {
        common::Server::temporal(self, args)
    }
    fn perdure(&self, args: &[&str]) -> Run {
        common::Server::perdure(self, args)
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
    fn perdure(&self, args: &[&str]) -> Run {
        common::perdure_cmd()
            .env("PERDURE_ADDRESS", &self.0)
            .args(args)
            .output()
            .expect("run perdure")
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

/// `perdure schedule ...` against a Perdure server, each step checked through `describe -o json`;
/// the runs that trigger and backfill start are found by the search attributes the schedule
/// sets on them.
#[test]
fn perdure_schedule_commands() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let s = server();
    let create: &[&str] = &[
        "schedule",
        "create",
        "-s",
        "reports",
        "--cron",
        "30 2 * * *",
        "--calendar",
        r#"{"dayOfWeek":"Sat","hour":"9"}"#,
        "--interval",
        "1h/5m",
        "--time-zone",
        "Europe/Paris",
        "--start-time",
        "2026-01-01T00:00:00Z",
        "--end-time",
        "2036-01-01T00:00:00Z",
        "--jitter",
        "30s",
        "--overlap-policy",
        "BufferOne",
        "--catchup-window",
        "1h",
        "--pause-on-failure",
        "--paused",
        "--notes",
        "created",
        "--remaining-actions",
        "5",
        "-w",
        "report",
        "--type",
        "report",
        "-t",
        "reports",
        "-i",
        "7",
        "-i",
        r#"{"full":true}"#,
        "--execution-timeout",
        "1h",
        "--run-timeout",
        "30m",
        "--task-timeout",
        "20s",
        "--memo",
        r#"owner="ops""#,
        "--static-summary",
        "nightly report",
        "--schedule-memo",
        r#"team={"name":"ops"}"#,
    ];
    assert_eq!(s.perdure(create).ok(), "Schedule created\n");
    let again = s.perdure(create);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.starts_with("Error: "), "{again:?}");

    let d = describe(&s, "reports");
    let spec = &d["schedule"]["spec"];
    assert_eq!(spec["timezoneName"], "Europe/Paris", "{d:#}");
    let cals = spec["structuredCalendar"].as_array().unwrap();
    assert_eq!(cals.len(), 2, "{d:#}");
    assert_eq!(cals[0]["hour"][0]["start"], 2, "{d:#}");
    assert_eq!(cals[0]["minute"][0]["start"], 30, "{d:#}");
    assert_eq!(cals[1]["dayOfWeek"][0]["start"], 6, "{d:#}");
    assert_eq!(cals[1]["hour"][0]["start"], 9, "{d:#}");
    assert_eq!(spec["interval"][0]["interval"], "3600s", "{d:#}");
    assert_eq!(spec["interval"][0]["phase"], "300s", "{d:#}");
    assert_eq!(spec["startTime"], "2026-01-01T00:00:00Z");
    assert_eq!(spec["endTime"], "2036-01-01T00:00:00Z");
    assert_eq!(spec["jitter"], "30s");
    let policies = &d["schedule"]["policies"];
    assert_eq!(
        policies["overlapPolicy"],
        "SCHEDULE_OVERLAP_POLICY_BUFFER_ONE"
    );
    assert_eq!(policies["catchupWindow"], "3600s");
    assert_eq!(policies["pauseOnFailure"], true);
    let state = &d["schedule"]["state"];
    assert_eq!(state["notes"], "created");
    assert_eq!(state["paused"], true);
    assert_eq!(state["limitedActions"], true);
    assert_eq!(num(&state["remainingActions"]), 5);
    let w = &d["schedule"]["action"]["startWorkflow"];
    assert_eq!(w["workflowId"], "report", "{d:#}");
    assert_eq!(w["workflowType"]["name"], "report");
    assert_eq!(w["taskQueue"]["name"], "reports");
    assert_eq!(w["input"]["payloads"][0]["data"], b64("7"));
    assert_eq!(w["input"]["payloads"][1]["data"], b64(r#"{"full":true}"#));
    assert_eq!(w["workflowExecutionTimeout"], "3600s");
    assert_eq!(w["workflowRunTimeout"], "1800s");
    assert_eq!(w["workflowTaskTimeout"], "20s");
    assert_eq!(w["memo"]["fields"]["owner"]["data"], b64(r#""ops""#));
    assert_eq!(
        w["userMetadata"]["summary"]["data"],
        b64(r#""nightly report""#)
    );
    assert_eq!(
        d["memo"]["fields"]["team"]["data"],
        b64(r#"{"name":"ops"}"#)
    );

    // The table forms.
    let out = s.perdure(&["schedule", "describe", "-s", "reports"]).ok();
    assert_eq!(kv_value(&out, "Paused").as_deref(), Some("true"), "{out}");
    assert_eq!(
        kv_value(&out, "OverlapPolicy").as_deref(),
        Some("BufferOne")
    );
    assert_eq!(kv_value(&out, "CatchupWindow").as_deref(), Some("1h"));
    assert_eq!(kv_value(&out, "RemainingActions").as_deref(), Some("5"));
    assert_eq!(
        kv_value(&out, "Input").as_deref(),
        Some(r#"[7,{"full":true}]"#)
    );
    assert_eq!(
        kv_value(&out, "Memo").as_deref(),
        Some(r#"{"team":{"name":"ops"}}"#)
    );
    let spec_text = kv_value(&out, "Spec").unwrap();
    assert!(spec_text.contains("every 1h offset 5m"), "{out}");
    assert!(spec_text.contains("hour=9"), "{out}");
    let out = s.perdure(&["schedule", "list"]).ok();
    let rows = table_rows(&out);
    assert_eq!(
        rows[0],
        [
            "ScheduleId",
            "WorkflowType",
            "Paused",
            "NextRunTime",
            "LastRunTime"
        ]
    );
    assert_eq!(rows[1][..3], ["reports", "report", "true"], "{out}");
    let out = s.perdure(&["schedule", "list", "--long"]).ok();
    assert_eq!(table_rows(&out)[0][2..4], ["Spec", "Notes"], "{out}");
    assert!(out.contains("created"), "{out}");
    let list = s.perdure(&["schedule", "list", "-o", "json"]).json();
    assert_eq!(list[0]["scheduleId"], "reports", "{list:#}");
    assert_eq!(list[0]["info"]["workflowType"]["name"], "report");
    assert_eq!(list[0]["info"]["paused"], true);
    let ids = |q: &str| -> Vec<String> {
        s.perdure(&["schedule", "list", "-q", q, "-o", "jsonl"])
            .ok()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["scheduleId"].to_string())
            .collect()
    };
    assert_eq!(ids("TemporalSchedulePaused = true"), ["\"reports\""]);
    assert!(ids("TemporalSchedulePaused = false").is_empty());

    // Update replaces the whole schedule (the schedule's own memo stays).
    let token = d["conflictToken"].clone();
    let out = s
        .perdure(&[
            "schedule",
            "update",
            "-s",
            "reports",
            "--calendar",
            r#"{"month":"1","dayOfMonth":"1"}"#,
            "--overlap-policy",
            "AllowAll",
            "--paused",
            "--notes",
            "updated",
            "-w",
            "report",
            "--type",
            "report-v2",
            "-t",
            "reports-v2",
        ])
        .ok();
    assert_eq!(out, "Schedule updated\n");
    let d = describe(&s, "reports");
    assert_ne!(d["conflictToken"], token);
    let spec = &d["schedule"]["spec"];
    assert_eq!(
        spec["structuredCalendar"].as_array().unwrap().len(),
        1,
        "{d:#}"
    );
    assert_eq!(spec["structuredCalendar"][0]["month"][0]["start"], 1);
    assert_eq!(spec["interval"], Value::Null, "{d:#}");
    assert_eq!(spec["timezoneName"], Value::Null, "{d:#}");
    assert_eq!(
        d["schedule"]["policies"]["overlapPolicy"],
        "SCHEDULE_OVERLAP_POLICY_ALLOW_ALL"
    );
    assert_eq!(d["schedule"]["state"]["notes"], "updated");
    assert_eq!(d["schedule"]["state"]["limitedActions"], Value::Null);
    let w = &d["schedule"]["action"]["startWorkflow"];
    assert_eq!(w["workflowType"]["name"], "report-v2");
    assert_eq!(w["taskQueue"]["name"], "reports-v2");
    assert_eq!(w["input"], Value::Null);
    assert_eq!(
        d["memo"]["fields"]["team"]["data"],
        b64(r#"{"name":"ops"}"#)
    );

    // Toggle.
    let out = s
        .perdure(&[
            "schedule",
            "toggle",
            "-s",
            "reports",
            "--unpause",
            "--reason",
            "go",
        ])
        .ok();
    assert_eq!(out, "Schedule unpaused\n");
    let state = describe(&s, "reports")["schedule"]["state"].clone();
    assert_eq!(state["paused"], Value::Null, "{state}");
    assert_eq!(state["notes"], "go");
    let out = s
        .perdure(&[
            "schedule", "toggle", "-s", "reports", "--pause", "--reason", "hold",
        ])
        .ok();
    assert_eq!(out, "Schedule paused\n");
    let state = describe(&s, "reports")["schedule"]["state"].clone();
    assert_eq!(state["paused"], true, "{state}");
    assert_eq!(state["notes"], "hold");
    let neither = s.perdure(&["schedule", "toggle", "-s", "reports"]);
    assert_eq!(neither.code, Some(1));
    assert_eq!(
        neither.stderr,
        "Error: exactly one of --pause or --unpause is required\n"
    );
    let both = s.perdure(&[
        "schedule",
        "toggle",
        "-s",
        "reports",
        "--pause",
        "--unpause",
    ]);
    assert_eq!(both.code, Some(2), "{both:?}");

    // Trigger and backfill start workflows while paused; the runs carry the schedule's id and
    // their nominal time as search attributes.
    let out = s
        .perdure(&[
            "schedule",
            "trigger",
            "-s",
            "reports",
            "--overlap-policy",
            "AllowAll",
        ])
        .ok();
    assert_eq!(out, "Trigger request sent\n");
    eventually(20, "the trigger's start", || {
        num(&describe(&s, "reports")["info"]["actionCount"]) == 1
    });
    let out = s
        .perdure(&[
            "schedule",
            "backfill",
            "-s",
            "reports",
            "--start-time",
            "2023-12-31T12:00:00Z",
            "--end-time",
            "2026-01-01T12:00:00Z",
            "--overlap-policy",
            "AllowAll",
        ])
        .ok();
    assert_eq!(out, "Backfill request sent\n");
    eventually(20, "the backfill's starts", || {
        num(&describe(&s, "reports")["info"]["actionCount"]) == 4
    });
    let runs = s
        .perdure(&[
            "workflow",
            "list",
            "-q",
            "TemporalScheduledById = 'reports'",
            "-o",
            "json",
        ])
        .json();
    let mut ids: Vec<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["type"]["name"], "report-v2", "{r:#}");
            r["execution"]["workflowId"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(
        ids[..3],
        [
            "report-2024-01-01T00:00:00Z",
            "report-2025-01-01T00:00:00Z",
            "report-2026-01-01T00:00:00Z"
        ]
    );
    let count = |q: &str| s.perdure(&["workflow", "count", "-q", q]).ok();
    assert_eq!(
        count(
            "TemporalScheduledById = 'reports' AND TemporalScheduledStartTime < '2025-06-01T00:00:00Z'"
        ),
        "Total: 2\n"
    );
    assert_eq!(
        count("TemporalScheduledStartTime = '2026-01-01T00:00:00Z'"),
        "Total: 1\n"
    );
    assert_eq!(count("TemporalScheduledById = 'other'"), "Total: 0\n");

    // Delete: the schedule is gone, the runs it started are not.
    let out = s.perdure(&["schedule", "delete", "-s", "reports"]).ok();
    assert_eq!(out, "Schedule deleted\n");
    let gone = s.perdure(&["schedule", "describe", "-s", "reports"]);
    assert_eq!(gone.code, Some(1));
    assert_eq!(
        gone.stderr,
        "Error: schedule \"reports\" not found in namespace \"default\"\n"
    );
    assert_eq!(count("TemporalScheduledById = 'reports'"), "Total: 4\n");

    // Bad flags are refused before any call.
    for (flag, value, message) in [
        ("--overlap-policy", "Sometimes", "invalid --overlap-policy"),
        ("--calendar", r#"{"hours":"3"}"#, "unknown field \"hours\""),
        ("--interval", "1m/2m/3m", "invalid --interval"),
    ] {
        let r = s.perdure(&[
            "schedule", "create", "-s", "bad", "--type", "t", "-t", "q", flag, value,
        ]);
        assert_eq!(r.code, Some(1), "{r:?}");
        assert!(r.stderr.contains(message), "{r:?}");
    }
    assert_eq!(
        s.perdure(&["schedule", "list", "-o", "json"]).json(),
        serde_json::json!([])
    );
}

/// Temporal's dev server on free ports, killed on drop.
fn temporal_dev_server() -> (At, Proc) {
    let port = free_port();
    let child = Command::new(temporal_bin())
        .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
        .args(["--log-level", "error", "--port", &port.to_string()])
        .args(["--http-port", &free_port().to_string()])
        .args(["--metrics-port", &free_port().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start `temporal server start-dev`");
    let proc = Proc(child);
    let s = At(format!("127.0.0.1:{port}"));
    let end = Instant::now() + Duration::from_secs(60);
    while s.temporal(&["schedule", "list"]).code != Some(0) {
        assert!(
            Instant::now() < end,
            "Temporal's dev server did not come up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (s, proc)
}

/// What may differ between two servers taking the same steps: times of day, run ids, the
/// conflict token; a started workflow's id ends in the time it was triggered.
fn normalize(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for k in [
                "conflictToken",
                "createTime",
                "updateTime",
                "scheduleTime",
                "actualTime",
                "runId",
            ] {
                o.remove(k);
            }
            if let Some(Value::String(id)) = o.get_mut("workflowId")
                && let Some((base, time)) = id.rsplit_once("-20")
                && chrono::DateTime::parse_from_rfc3339(&format!("20{time}")).is_ok()
            {
                *id = format!("{base}-<time>");
            }
            o.values_mut().for_each(normalize);
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// The same `temporal schedule` steps on one server: what the schedule looks like after a
/// create and a trigger, through describe and list, and the runs it started.
fn schedule_steps(s: &impl Cli) -> Value {
    let flags: &[&str] = &[
        "--cron",
        "0 12 * * Mon-Fri",
        "--calendar",
        r#"{"dayOfMonth":"1","hour":"6"}"#,
        "--interval",
        "1h/5m",
        "--time-zone",
        "America/New_York",
        // In the future, so the next times do not depend on when the test runs.
        "--start-time",
        "2030-01-01T00:00:00Z",
        "--end-time",
        "2031-01-01T00:00:00Z",
        "--overlap-policy",
        "AllowAll",
        "--catchup-window",
        "10m",
        "--notes",
        "side by side",
        "--paused",
        "--remaining-actions",
        "3",
        "-w",
        "sbs-wf",
        "--type",
        "T",
        "-t",
        "sbs-q",
        "-i",
        r#""x""#,
        "--execution-timeout",
        "1h",
        "--memo",
        r#"k="v""#,
        "--schedule-memo",
        "sm=1",
        "--search-attribute",
        r#"SbsKeyword="kw""#,
    ];
    fn with<'a>(cmd: &[&'a str], flags: &[&'a str]) -> Vec<&'a str> {
        [cmd, flags].concat()
    }
    s.temporal(&[
        "operator",
        "search-attribute",
        "create",
        "--name",
        "SbsKeyword",
        "--type",
        "Keyword",
    ])
    .ok();
    s.temporal(&with(&["schedule", "create", "-s", "sbs"], flags))
        .ok();
    // perdure's CLI asks for the same schedule as temporal's.
    s.perdure(&with(&["schedule", "create", "-s", "sbs-p"], flags))
        .ok();
    s.temporal(&[
        "schedule",
        "trigger",
        "-s",
        "sbs",
        "--overlap-policy",
        "AllowAll",
    ])
    .ok();
    eventually(30, "the trigger's start", || {
        num(&describe(s, "sbs")["info"]["actionCount"]) == 1
    });
    let mut d = describe(s, "sbs");
    normalize(&mut d);
    let mut by_perdure = describe(s, "sbs-p");
    normalize(&mut by_perdure);
    assert_eq!(by_perdure["schedule"], d["schedule"]);
    assert_eq!(by_perdure["memo"], d["memo"]);
    let mut entry = Value::Null;
    eventually(30, "the schedule's list entry", || {
        let list = s.temporal(&["schedule", "list", "-o", "json"]).json();
        entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["scheduleId"] == "sbs")
            .cloned()
            .unwrap_or_default();
        entry["info"]["recentActions"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    normalize(&mut entry);
    let mut runs = Value::Null;
    eventually(30, "the started run in visibility", || {
        runs = s
            .temporal(&[
                "workflow",
                "list",
                "-q",
                "TemporalScheduledById = 'sbs' AND TemporalScheduledStartTime > '2020-01-01T00:00:00Z'",
                "-o",
                "json",
            ])
            .json();
        runs.as_array().is_some_and(|a| a.len() == 1)
    });
    let run_type = runs[0]["type"]["name"].clone();
    s.temporal(&["schedule", "delete", "-s", "sbs"]).ok();
    s.temporal(&["schedule", "delete", "-s", "sbs-p"]).ok();
    let gone = s.temporal(&["schedule", "describe", "-s", "sbs"]);
    assert_ne!(gone.code, Some(0), "{gone:?}");
    serde_json::json!({
        "describe": d,
        "list": entry,
        "runType": run_type,
    })
}

#[test]
fn temporal_schedule_commands_match_temporal_dev_server() {
    let perdure = schedule_steps(&server());
    // Checked on their own too, so equal-but-empty answers cannot pass.
    let d = &perdure["describe"];
    assert_eq!(num(&d["info"]["actionCount"]), 1, "{d:#}");
    assert_eq!(d["schedule"]["state"]["paused"], true, "{d:#}");
    assert_eq!(
        d["schedule"]["spec"]["structuredCalendar"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        d["info"]["futureActionTimes"][0], "2030-01-01T00:05:00Z",
        "{d:#}"
    );
    assert_eq!(
        d["info"]["recentActions"][0]["startWorkflowResult"]["workflowId"],
        "sbs-wf-<time>"
    );
    assert_eq!(perdure["list"]["info"]["notes"], "side by side");
    assert_eq!(perdure["runType"], "T");
    let (dev, _proc) = temporal_dev_server();
    let temporal = schedule_steps(&dev);
    assert_eq!(
        perdure, temporal,
        "perdure:\n{perdure:#}\ntemporal:\n{temporal:#}"
    );
}
