//! `perdure workflow show -o json` output replays cleanly: a Rust workflow's history in our SDK's
//! `Replayer` (and changed code is caught as nondeterministic), a Python workflow's history in the
//! official Python SDK's replayer.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{repo, server};
use perdure_sdk::{
    ActContext, ActivityOptions, ApplicationFailure, Client, ClientOptions, ReplayError, Replayer,
    WfContext, Worker, WorkerOptions, WorkflowResult,
};

async fn greet(ctx: WfContext, name: String) -> WorkflowResult<String> {
    let opts = ActivityOptions::start_to_close(Duration::from_secs(10));
    let greeting: String = ctx.activity("compose", (name,), opts).await?;
    ctx.sleep(Duration::from_millis(200)).await?;
    Ok(greeting)
}

/// `greet` with the timer first: a different command sequence.
async fn greet_changed(ctx: WfContext, name: String) -> WorkflowResult<String> {
    ctx.sleep(Duration::from_millis(200)).await?;
    let opts = ActivityOptions::start_to_close(Duration::from_secs(10));
    let greeting: String = ctx.activity("compose", (name,), opts).await?;
    Ok(greeting)
}

async fn compose(_ctx: ActContext, name: String) -> Result<String, ApplicationFailure> {
    Ok(format!("Hello, {name}!"))
}

#[test]
fn rust_workflow_history_replays_in_the_sdk_replayer() {
    let s = server();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (stop, running) = rt.block_on(async {
        let client = Client::connect(ClientOptions::new(&s.address))
            .await
            .unwrap();
        let mut worker = Worker::new(client, WorkerOptions::new("greetings"));
        worker
            .register_workflow("greet", greet)
            .register_activity("compose", compose);
        let stop = worker.shutdown_handle();
        (stop, tokio::spawn(worker.run()))
    });

    let out = s
        .perdure(&[
            "workflow",
            "execute",
            "-t",
            "greetings",
            "--type",
            "greet",
            "-w",
            "greet-1",
            "-i",
            "\"Ada\"",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(out["result"], "Hello, Ada!");
    let history = s
        .perdure(&["workflow", "show", "-w", "greet-1", "-o", "json"])
        .ok();

    let mut replayer = Replayer::new();
    replayer.register_workflow("greet", greet);
    replayer
        .replay_json(&history)
        .expect("the shown history replays cleanly");
    let mut changed = Replayer::new();
    changed.register_workflow("greet", greet_changed);
    match changed.replay_json(&history) {
        Err(ReplayError::Nondeterminism(m)) => assert!(!m.is_empty()),
        other => panic!("changed code must be nondeterministic, got {other:?}"),
    }

    stop.shutdown();
    rt.block_on(running).unwrap().unwrap();
}

#[test]
fn python_workflow_history_replays_in_the_official_replayer() {
    let s = server();
    let _worker = s.python_worker("py-tq");
    let out = s
        .perdure(&[
            "workflow", "execute", "-t", "py-tq", "--type", "counter", "-w", "count-1", "-i", "2",
            "-o", "json",
        ])
        .json();
    assert_eq!(out["result"], 3);
    // The latest run (the counter continued as new from n = 2) is what `show` prints.
    let dir = std::env::temp_dir().join(format!("perdure-cli-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(
        out["closeEvent"]["eventType"],
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    );
    let latest = s
        .perdure(&["workflow", "show", "-w", "count-1", "-o", "json"])
        .ok();
    let path = dir.join("counter.json");
    std::fs::write(&path, &latest).unwrap();

    let script = r#"
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from wf_features import WORKFLOWS

async def main():
    history = WorkflowHistory.from_json("count-1", open(sys.argv[1]).read())
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    print("replayed", len(history.events), "events", result.replay_failure)

asyncio.run(main())
"#;
    let python = repo().join(".venv/bin/python");
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(&path)
        .arg(repo().join("tests/python"))
        .output()
        .expect("run the Python replayer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("replayed "), "{stdout}");
    assert!(stdout.trim_end().ends_with("None"), "{stdout}");
}
