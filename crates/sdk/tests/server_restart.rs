//! The client and the worker ride out a server crash: the `perdure` server process is SIGKILLed
//! and restarted on the same port and database file; calls made while it is down are retried (as
//! the official SDKs do), pollers reconnect, and the workflow completes. Perdure only. Needs the
//! `perdure` binary (`cargo build -p perdure`; `PERDURE_BIN` overrides its path).

mod common;

use std::time::Duration;

use perdure_sdk::{
    Client, ClientOptions, StartOptions, WfContext, Worker, WorkerOptions, WorkflowResult,
};

async fn naps(ctx: WfContext, _: ()) -> WorkflowResult<String> {
    ctx.sleep(Duration::from_millis(1500)).await?;
    Ok("woke up".into())
}

fn start_server(port: u16, db: &std::path::Path) -> std::process::Child {
    let bin = std::env::var("PERDURE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| common::repo().join("target/debug/perdure"));
    std::process::Command::new(&bin)
        .args(["server", "start-dev", "--headless", "--log-level", "error"])
        .args(["--port", &port.to_string()])
        .arg("--db-filename")
        .arg(db)
        .spawn()
        .unwrap_or_else(|e| panic!("start {} (cargo build -p perdure): {e}", bin.display()))
}

async fn wait_up(address: &str) {
    for _ in 0..200 {
        if Client::connect(ClientOptions::new(address)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {address} did not come up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_pollers_survive_a_server_restart() {
    if common::target() == "temporal" {
        return; // restarts our own in-process server
    }
    let dir = std::env::temp_dir().join(common::uid("perdure-restart"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("perdure.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut first = start_server(port, &db);
    wait_up(&addr).await;

    let client = Client::connect(ClientOptions::new(addr.to_string()))
        .await
        .unwrap();
    let tq = common::uid("restart");
    let mut w = Worker::new(client.clone(), WorkerOptions::new(&tq));
    w.register_workflow("naps", naps);
    let stop = w.shutdown_handle();
    let worker = tokio::spawn(w.run());

    let h = client
        .start_workflow("naps", (), StartOptions::new(common::uid("nap"), &tq))
        .await
        .unwrap();
    common::eventually(20, "the timer", || async {
        h.fetch_history()
            .await
            .unwrap()
            .iter()
            .any(|e| e.event_type == perdure_sdk::proto::enums::v1::EventType::TimerStarted as i32)
    })
    .await;
    // The server dies; the result is awaited while it is down.
    first.kill().unwrap();
    first.wait().unwrap();
    let waiting = tokio::spawn({
        let h = h.clone();
        async move { h.result::<String>().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut second = start_server(port, &db);
    let r = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the result arrives after the restart")
        .unwrap()
        .unwrap();
    assert_eq!(r, "woke up");
    stop.shutdown();
    worker.await.unwrap().unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
