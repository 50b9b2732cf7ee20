//! Three `perdure server start` processes on one throwaway PostgreSQL cluster, with the order
//! workflow load going through all of them: the shards are spread over the three, every process
//! commits runs of its own, and workers and clients connect to different processes (each sends
//! on what another serves). The leader is SIGKILLed; then the next leader is SIGSTOPped for
//! longer than its lease while requests wait for it, and resumed. Every order completes as it
//! would on one process, no activity runs again after its completion was recorded, and the
//! resumed process's stale writes are refused by the shard fence (its
//! `perdure_shard_ownership_lost_total` counter moves). Perdure only; needs the `perdure` binary
//! and Debian's `postgresql` package.

mod common;
#[allow(dead_code)]
#[path = "../../../examples/food-delivery/src/order.rs"]
mod order;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use perdure_postgres::testing::TempCluster;
use perdure_sdk::proto::enums::v1::EventType;
use perdure_sdk::proto::history::v1::history_event::Attributes as A;
use perdure_sdk::{
    ActContext, ApplicationFailure, Client, ClientOptions, StartOptions, Worker, WorkerOptions,
    WorkflowHandle,
};

use order::{OrderRequest, OrderStatus};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const LEASE: &str = "2s";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Process {
    name: String,
    port: u16,
    metrics: u16,
    child: Child,
    log: std::path::PathBuf,
}

/// A process never outlives its test, even a failed one.
impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {}", self.name);
    }
}

fn start(name: &str, url: &str, dir: &std::path::Path) -> Process {
    start_with(name, url, dir, &[])
}

fn start_with(name: &str, url: &str, dir: &std::path::Path, extra: &[&str]) -> Process {
    let bin = std::env::var("PERDURE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| common::repo().join("target/debug/perdure"));
    let (port, metrics) = (free_port(), free_port());
    let log = dir.join(format!("{name}-{port}.log"));
    let child = Command::new(&bin)
        .args(["server", "start", "--headless", "--log-level", "info"])
        .args([
            "--persistence-url",
            url,
            "--node-name",
            name,
            "--lease",
            LEASE,
        ])
        .args(["--port", &port.to_string()])
        .args(["--metrics-port", &metrics.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {} (cargo build -p perdure): {e}", bin.display()));
    Process {
        name: name.into(),
        port,
        metrics,
        child,
        log,
    }
}

/// `GET /metrics` of a process, or "" while it does not answer.
fn scrape(p: &Process) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", p.metrics)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The process that leads the cluster.
async fn leader<'a>(ps: &[&'a Process]) -> &'a Process {
    for _ in 0..200 {
        for p in ps {
            if metric(&scrape(p), "perdure_cluster_leader") == 1.0 {
                return p;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no leader among {:?}",
        ps.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
}

/// What each activity attempt did: (workflow id, activity id, attempt, started at).
type Log = Arc<Mutex<Vec<(String, String, i32, SystemTime)>>>;

fn register(w: &mut Worker, log: Log) {
    let payment = Arc::new(order::PaymentService::default());
    let record = move |ctx: &ActContext| {
        let i = ctx.info();
        log.lock().unwrap().push((
            i.workflow_id.clone(),
            i.activity_id.clone(),
            i.attempt,
            SystemTime::now(),
        ));
    };
    let (r1, r2, r3) = (record.clone(), record.clone(), record);
    w.register_workflow(order::WORKFLOW_TYPE, order::order)
        .register_activity("chargeCustomer", move |ctx: ActContext, id: u32| {
            r1(&ctx);
            let payment = payment.clone();
            async move {
                let p = order::product(id).ok_or_else(|| ApplicationFailure::non_retryable("?"))?;
                payment.charge(p, ctx.info().attempt)
            }
        })
        .register_activity("refundOrder", move |ctx: ActContext, id: u32| {
            r2(&ctx);
            order::refund_order(ctx, id)
        })
        .register_activity("sendPushNotification", move |ctx: ActContext, m: String| {
            r3(&ctx);
            order::send_push_notification(ctx, m)
        });
}

async fn health(address: &str) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = HealthClient::new(channel);
    let status = c
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(status).unwrap()
}

async fn connect(address: &str) -> Client {
    for _ in 0..200 {
        if let Ok(c) = Client::connect(ClientOptions::new(address)).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{address} did not come up");
}

async fn status(h: &WorkflowHandle) -> Option<String> {
    h.query::<OrderStatus>("getStatus", ())
        .await
        .ok()
        .map(|s| s.state)
}

/// Moves one order along: pick up once paid, deliver once picked up. Retries through failovers.
async fn drive(h: WorkflowHandle) -> OrderStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {} stuck",
            h.workflow_id()
        );
        match status(&h).await.as_deref() {
            Some(order::state::PAID) => {
                let _ = h.signal("pickedUp", ()).await;
            }
            Some(order::state::PICKED_UP) => {
                let _ = h.signal("delivered", ()).await;
            }
            Some(order::state::DELIVERED) => {
                if let Ok(r) = h.result::<OrderStatus>().await {
                    return r;
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_survive_a_kill_and_a_pause_with_no_lost_or_repeated_work() {
    if common::target() == "temporal" {
        return; // runs our own server processes
    }
    tokio::time::timeout(Duration::from_secs(240), scenario())
        .await
        .expect("the scenario ends within 4 minutes");
}

/// Progress on stderr (`--nocapture`), so a stuck step is easy to find.
fn step(what: &str) {
    eprintln!("[cluster test] {what}");
}

async fn scenario() {
    let pg = TempCluster::start().expect("a throwaway PostgreSQL cluster");
    pg.create_database("perdure").unwrap();
    let url = pg.url("perdure");
    let dir = std::env::temp_dir().join(common::uid("perdure-cluster"));
    std::fs::create_dir_all(&dir).unwrap();

    let mut a = start("a", &url, &dir);
    connect(&a.address()).await;
    step("a answers");
    let b = start("b", &url, &dir);
    let c = start("c", &url, &dir);
    // They answer once they have joined (and forward to a).
    connect(&b.address()).await;
    connect(&c.address()).await;
    assert_eq!(
        leader(&[&a, &b, &c]).await.name,
        "a",
        "the first process leads"
    );

    step("a leads");
    // The 16 shards are spread over the three processes, and each serves.
    let mut spread = Vec::new();
    for _ in 0..200 {
        spread = [&a, &b, &c]
            .iter()
            .map(|p| metric(&scrape(p), "numshards_gauge"))
            .collect();
        if spread.iter().all(|n| *n > 0.0) && spread.iter().sum::<f64>() == 16.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        spread.iter().all(|n| *n > 0.0) && spread.iter().sum::<f64>() == 16.0,
        "shards per process: {spread:?}"
    );
    step(&format!("shards per process: {spread:?}"));
    for p in [&a, &b, &c] {
        assert_eq!(
            health(&p.address()).await,
            ServingStatus::Serving,
            "{}",
            p.name
        );
    }
    // A second process with a taken node name is refused, with a one-line error.
    let mut dup = start("b", &url, &dir);
    let mut status = None;
    for _ in 0..300 {
        status = dup.child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!status.expect("the duplicate exits").success());
    let text = std::fs::read_to_string(&dup.log).unwrap();
    assert!(
        text.contains("another process named \"b\" is running"),
        "{text}"
    );

    step("a leads; a duplicate node name was refused");
    // Workers on the two followers; clients on all three processes.
    let log: Log = Default::default();
    let tq = common::uid("cluster");
    let mut workers = Vec::new();
    for p in [&b, &c] {
        let client = connect(&p.address()).await;
        let mut w = Worker::new(client, WorkerOptions::new(&tq));
        register(&mut w, log.clone());
        workers.push((w.shutdown_handle(), tokio::spawn(w.run())));
    }
    let clients = [
        connect(&a.address()).await,
        connect(&b.address()).await,
        connect(&c.address()).await,
    ];
    step("workers and clients connected");
    // Orders that only wait, for the stale writes below: with 24 of them, some are sure to be
    // owned by the process that gets paused, and their pickup timers (4 to 20 s) come due while
    // it is paused, so it fires them (and tries to commit) the moment it resumes.
    let mut idle = Vec::new();
    for i in 0..24 {
        let waiting = OrderRequest {
            pickup_timeout_ms: Some(4_000 + 700 * i as u64),
            ..OrderRequest::new(1)
        };
        idle.push(
            clients[i % 3]
                .start_workflow(
                    order::WORKFLOW_TYPE,
                    (waiting,),
                    StartOptions::new(common::uid(&format!("idle-{i}")), &tq),
                )
                .await
                .unwrap(),
        );
    }
    let mut orders = Vec::new();
    for i in 0..12 {
        let client = &clients[i % 3];
        let h = client
            .start_workflow(
                order::WORKFLOW_TYPE,
                (OrderRequest::new(1 + (i as u32 % 3)),),
                StartOptions::new(common::uid(&format!("order-{i}")), &tq),
            )
            .await
            .unwrap();
        orders.push(h);
    }
    // The orders of the last phase are driven through b and c only.
    let via = |h: &WorkflowHandle, i: usize| {
        clients[1 + i % 2].workflow_handle(h.workflow_id(), h.run_id().map(str::to_string))
    };
    let mut driving = Vec::new();
    for (i, h) in orders.iter().enumerate().take(4) {
        driving.push(tokio::spawn(drive(via(h, i))));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    step("12 orders started");
    // 1. The leader dies.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let next = leader(&[&b, &c]).await;
    step(&format!("a killed; {} leads", next.name));
    let other = if next.name == "b" { &c } else { &b };
    for (i, h) in orders.iter().enumerate().skip(4).take(4) {
        driving.push(tokio::spawn(drive(via(h, i))));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. The new leader is paused for longer than its lease while signals wait for it.
    let paused = connect(&next.address()).await;
    next.signal("-STOP");
    let mut stale = Vec::new();
    for h in orders.iter().skip(8).chain(&idle) {
        let h = paused.workflow_handle(h.workflow_id(), None);
        stale.push(tokio::spawn(async move { h.signal("nudge", ()).await }));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        leader(&[other]).await.name,
        other.name,
        "the third process took over"
    );
    next.signal("-CONT");
    step(&format!("{} resumed; {} leads", next.name, other.name));
    for (i, h) in orders.iter().enumerate().skip(8) {
        driving.push(tokio::spawn(drive(via(h, i))));
    }

    // 3. The shard count is raised from 16 to 32 while orders run: a new process asks for it;
    // the leader hands over and the next leader runs with 32 shards.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = start_with("d", &url, &dir, &["--shards", "32"]);
    let raised = std::time::Instant::now();
    let mut resharded = None;
    for _ in 0..300 {
        for p in [&b, &c, &d] {
            let m = scrape(p);
            if metric(&m, "perdure_cluster_shards") == 32.0
                && metric(&m, "perdure_cluster_leader") == 1.0
            {
                resharded = Some(p.name.clone());
            }
        }
        if resharded.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resharded = resharded.expect("a leader runs with 32 shards");
    step(&format!(
        "shard count raised to 32 in {:?}; {resharded} leads",
        raised.elapsed()
    ));

    // Every order completes exactly as on one process.
    step("driving every order to delivery");
    for d in driving {
        let r = tokio::time::timeout(Duration::from_secs(150), d)
            .await
            .expect("the order completes")
            .unwrap();
        assert_eq!(r.state, order::state::DELIVERED);
        assert!(r.delivered_at.is_some());
    }
    for s in stale {
        let _ = tokio::time::timeout(Duration::from_secs(30), s).await;
    }
    let reader = connect(&other.address()).await;
    for h in &orders {
        let history = reader
            .workflow_handle(h.workflow_id(), None)
            .fetch_history()
            .await
            .unwrap();
        let count = |t: EventType| history.iter().filter(|e| e.event_type == t as i32).count();
        assert_eq!(
            count(EventType::WorkflowExecutionCompleted),
            1,
            "{}",
            h.workflow_id()
        );
        assert_eq!(
            count(EventType::ActivityTaskCompleted),
            3,
            "{}",
            h.workflow_id()
        );
        // No attempt of an activity started after its completion was recorded.
        let scheduled: std::collections::HashMap<i64, String> = history
            .iter()
            .filter_map(|e| match &e.attributes {
                Some(A::ActivityTaskScheduledEventAttributes(a)) => {
                    Some((e.event_id, a.activity_id.clone()))
                }
                _ => None,
            })
            .collect();
        for e in &history {
            if let Some(A::ActivityTaskCompletedEventAttributes(done)) = &e.attributes {
                let id = &scheduled[&done.scheduled_event_id];
                let at = e.event_time.as_ref().unwrap();
                let done_at =
                    SystemTime::UNIX_EPOCH + Duration::new(at.seconds as u64, at.nanos as u32);
                let late: Vec<_> = log
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(w, a, _, t)| w == h.workflow_id() && a == id && *t > done_at)
                    .cloned()
                    .collect();
                assert!(
                    late.is_empty(),
                    "activity {id} ran after its completion: {late:?}"
                );
            }
        }
    }

    // The resumed process's stale writes were refused by the fence (the counter survives its
    // restart as a follower: it is per process).
    let refused = metric(&scrape(next), "perdure_shard_ownership_lost_total");
    let log_text = std::fs::read_to_string(&next.log).unwrap();
    assert!(
        refused > 0.0,
        "no stale write of {} was refused; its log:\n{log_text}",
        next.name
    );
    assert!(log_text.contains("stepped down"), "{log_text}");
    // The load was spread: each process that lived through the test committed runs of its own.
    for p in [&b, &c] {
        let m = scrape(p);
        let commits: f64 = m
            .lines()
            .filter(|l| l.starts_with("persistence_requests{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(commits > 0.0, "{} committed nothing:\n{m}", p.name);
    }

    for (stop, task) in workers {
        stop.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    drop((b, c, d));
    let _ = std::fs::remove_dir_all(dir);
}
