//! `temporal worker deployment describe | list | describe-version | set-current-version`
//! (the official CLI) against a real `perdure server start-dev`, with two versioned Python-SDK
//! workers (tests/python/run_versioned_worker.py) of one deployment: the versions their polls
//! registered, the current version a workflow then runs on, and the CLI's errors.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use common::{Proc, Server, eventually, repo, server};

const TQ: &str = "deployments-tq";
const DEP: &str = "cli-deployment";

fn worker(s: &Server, build: &str) -> Proc {
    let venv = repo().join(".venv/bin/python");
    let python = std::env::var("PERDURE_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.to_string_lossy().into_owned()
        } else {
            "python3".into()
        }
    });
    let mut child = Command::new(&python)
        .arg(repo().join("tests/python/run_versioned_worker.py"))
        .args([&s.address, TQ, DEP, build])
        .current_dir(repo().join("tests/python"))
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

#[test]
fn temporal_worker_deployment_commands() {
    let s = server();
    let none = s.temporal(&["worker", "deployment", "describe", "--name", DEP]);
    assert_eq!(none.code, Some(1), "{none:#?}");
    assert!(
        none.stderr.contains(&format!(
            "no Worker Deployment found with name '{DEP}'; does your Worker Deployment have pollers?"
        )),
        "{none:#?}"
    );
    let _v1 = worker(&s, "1.0");
    let _v2 = worker(&s, "2.0");
    let builds = |s: &Server| -> Vec<String> {
        let j = s
            .temporal(&[
                "worker",
                "deployment",
                "describe",
                "--name",
                DEP,
                "-o",
                "json",
            ])
            .json();
        let mut b: Vec<String> = j["versionSummaries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v["BuildID"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        b.sort();
        b
    };
    eventually(20, "both versions registered", || {
        s.temporal(&[
            "worker",
            "deployment",
            "describe",
            "--name",
            DEP,
            "-o",
            "json",
        ])
        .code
            == Some(0)
            && builds(&s) == ["1.0", "2.0"]
    });
    let list = s.temporal(&["worker", "deployment", "list"]).ok();
    assert!(list.contains(DEP), "{list}");

    let version = s
        .temporal(&[
            "worker",
            "deployment",
            "describe-version",
            "--deployment-name",
            DEP,
            "--build-id",
            "2.0",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(version["deploymentName"], DEP, "{version}");
    assert_eq!(version["BuildID"], "2.0", "{version}");
    let mut queues: Vec<String> = version["taskQueuesInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            format!(
                "{} {}",
                q["name"].as_str().unwrap(),
                q["type"].as_str().unwrap()
            )
        })
        .collect();
    queues.sort();
    assert_eq!(queues, [format!("{TQ} activity"), format!("{TQ} workflow")]);

    let bad = s.temporal(&[
        "worker",
        "deployment",
        "set-current-version",
        "--deployment-name",
        DEP,
        "--build-id",
        "9.9",
        "--yes",
    ]);
    assert_eq!(bad.code, Some(1), "{bad:#?}");
    assert!(
        bad.stderr.contains(&format!(
            "build ID '9.9' not found in Worker Deployment '{DEP}'"
        )),
        "{bad:#?}"
    );
    let out = s
        .temporal(&[
            "worker",
            "deployment",
            "set-current-version",
            "--deployment-name",
            DEP,
            "--build-id",
            "2.0",
            "--yes",
        ])
        .ok();
    assert!(
        out.contains("Successfully set the current worker deployment version"),
        "{out}"
    );
    let d = s
        .temporal(&[
            "worker",
            "deployment",
            "describe",
            "--name",
            DEP,
            "-o",
            "json",
        ])
        .json();
    let rc = &d["routingConfig"];
    assert_eq!(rc["currentVersionDeploymentName"], DEP, "{d}");
    assert_eq!(rc["currentVersionBuildID"], "2.0", "{d}");

    // New workflows of the queue now run on the current version.
    let result = s
        .temporal(&[
            "workflow",
            "execute",
            "--type",
            "Quick",
            "-t",
            TQ,
            "-w",
            "after-current",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(result["result"], "v2:2.0", "{result}");
}
