//! Prometheus metrics of a real in-process server, read the way Prometheus reads them: a plain
//! `GET /metrics` on the metrics listener, before and after some RPCs. Every test here shares
//! the process-wide recorder, so each compares deltas or looks at series of its own task queues,
//! and they run one at a time (exact deltas of the RPC counters).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use perdure_core::clock::SystemClock;
use perdure_core::{Config, Engine};
use perdure_proto::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, command::Attributes as CA,
};
use perdure_proto::api::enums::v1::CommandType;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use perdure_sqlite::{Location, SqliteStore};
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::transport::Channel;

mod common;
use common::{server, start};

/// Held by each test for its whole run.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the metrics listener (installing the recorder first) and returns its address.
async fn metrics_listener() -> std::net::SocketAddr {
    perdure_server::metrics::install().expect("install the recorder");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(perdure_server::metrics::serve(
        listener,
        std::future::pending(),
    ));
    addr
}

/// `GET path` over HTTP/1.0 (the body ends when the server closes): (status line, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let (head, body) = get_raw(addr, path).await;
    (
        head.lines().next().unwrap().to_string(),
        String::from_utf8(body).unwrap(),
    )
}

/// `GET path` over HTTP/1.0: (the head, status line and headers; the body's bytes).
async fn get_raw(addr: std::net::SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("the metrics answer in time")
        .unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    (head, raw[end + 4..].to_vec())
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let (status, body) = get(addr, "/metrics").await;
    assert!(status.contains(" 200 "), "{status}");
    body
}

/// The sum of the samples of `name` whose labels include all of `labels` (0 if none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

fn poll_request(tq: &str, timeout: Duration) -> tonic::Request<PollWorkflowTaskQueueRequest> {
    let mut r = tonic::Request::new(PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: Some(TaskQueue {
            name: tq.into(),
            ..Default::default()
        }),
        identity: "metrics-test".into(),
        ..Default::default()
    });
    r.set_timeout(timeout);
    r
}

#[tokio::test]
async fn rpcs_tasks_commits_and_shards_are_measured() {
    if std::env::var("PERDURE_TEST_ADDRESS").is_ok() {
        return; // another server's metrics are not ours to read
    }
    let _serial = SERIAL.lock().await;
    let addr = metrics_listener().await;
    let (status, _) = get(addr, "/elsewhere").await;
    assert!(status.contains(" 404 "), "{status}");
    let before = scrape(addr).await;
    let mut c = server().await;

    // One client error (answered trailers-only, status in the headers) ...
    let missing = c
        .describe_namespace(DescribeNamespaceRequest {
            namespace: "no-such-namespace".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    // ... and successes (status in the trailers).
    let tq = format!("metrics-{}", uuid::Uuid::new_v4());
    c.start_workflow_execution(start(&format!("{tq}-wf"), "t", &tq))
        .await
        .unwrap();
    let task = c
        .poll_workflow_task_queue(poll_request(&tq, Duration::from_secs(30)))
        .await
        .unwrap()
        .into_inner();
    assert!(!task.task_token.is_empty(), "no workflow task");
    c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
        namespace: "default".into(),
        task_token: task.task_token,
        commands: vec![Command {
            command_type: CommandType::CompleteWorkflowExecution as i32,
            attributes: Some(CA::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes { result: None },
            )),
            ..Default::default()
        }],
        identity: "metrics-test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    // A task nobody polls stays in the backlog.
    let idle = format!("metrics-idle-{}", uuid::Uuid::new_v4());
    c.start_workflow_execution(start(&format!("{idle}-wf"), "t", &idle))
        .await
        .unwrap();

    let after = scrape(addr).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let start_ok = [("operation", "StartWorkflowExecution"), ("status", "OK")];
    assert_eq!(delta("service_requests", &start_ok), 2.0, "{after}");
    assert_eq!(delta("service_latency_count", &start_ok), 2.0, "{after}");
    assert!(delta("service_latency_sum", &start_ok) > 0.0, "{after}");
    assert_eq!(
        sample(
            &after,
            "service_latency_bucket",
            &[
                ("operation", "StartWorkflowExecution"),
                ("status", "OK"),
                ("le", "+Inf")
            ]
        ),
        sample(&after, "service_latency_count", &start_ok),
        "{after}"
    );
    for op in ["PollWorkflowTaskQueue", "RespondWorkflowTaskCompleted"] {
        assert_eq!(
            delta("service_requests", &[("operation", op), ("status", "OK")]),
            1.0,
            "{op}: {after}"
        );
    }
    let not_found = [("operation", "DescribeNamespace"), ("status", "NotFound")];
    assert_eq!(delta("service_requests", &not_found), 1.0, "{after}");
    // A client error is not a server failure.
    assert_eq!(delta("service_errors", &not_found), 0.0, "{after}");
    assert!(
        after.contains("# TYPE service_latency histogram"),
        "{after}"
    );

    let sqlite = [("backend", "sqlite")];
    assert!(
        delta("perdure_commit_group_batches_count", &sqlite) >= 1.0,
        "{after}"
    );
    assert!(
        delta("perdure_commit_group_batches_sum", &sqlite) >= 1.0,
        "{after}"
    );
    let commits = [("operation", "CommitGroup"), ("backend", "sqlite")];
    assert!(
        delta("persistence_latency_count", &commits) >= 1.0,
        "{after}"
    );
    assert!(delta("persistence_requests", &commits) >= 1.0, "{after}");
    assert!(sample(&after, "numshards_gauge", &[]) > 0.0, "{after}");
    // Every engine of this test process sets it (the gauge is process-wide): only its presence
    // is this test's to check.
    assert!(
        after.contains("\nperdure_run_cache_runs "),
        "the run cache gauge: {after}"
    );

    let wf_queue = [("taskqueue", tq.as_str()), ("task_type", "Workflow")];
    assert_eq!(
        sample(&after, "task_schedule_to_start_latency_count", &wf_queue),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "approximate_backlog_count", &wf_queue),
        0.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "approximate_backlog_count",
            &[("taskqueue", idle.as_str()), ("task_type", "Workflow")]
        ),
        1.0,
        "{after}"
    );
}

#[tokio::test]
async fn waiting_pollers_and_cancelled_polls() {
    if std::env::var("PERDURE_TEST_ADDRESS").is_ok() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let addr = metrics_listener().await;
    let c = server().await;
    let tq = format!("metrics-empty-{}", uuid::Uuid::new_v4());
    let waiting = [("taskqueue", tq.as_str()), ("task_type", "Workflow")];
    let before = scrape(addr).await;

    // A poll on an empty queue waits there until the server gives up on it shortly before its
    // deadline (a second of margin), then answers an empty task.
    let mut poller = c.clone();
    let request = poll_request(&tq, Duration::from_millis(2500));
    let poll = tokio::spawn(async move { poller.poll_workflow_task_queue(request).await });
    let mut seen = 0.0;
    for _ in 0..100 {
        seen = sample(
            &scrape(addr).await,
            "perdure_task_queue_waiting_pollers",
            &waiting,
        );
        if seen == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 1.0, "the waiting poll is counted");
    let empty = poll.await.unwrap().unwrap().into_inner();
    assert!(empty.task_token.is_empty());
    let after = scrape(addr).await;
    assert_eq!(
        sample(&after, "perdure_task_queue_waiting_pollers", &waiting),
        0.0,
        "{after}"
    );
    let poll_ok = [("operation", "PollWorkflowTaskQueue"), ("status", "OK")];
    assert_eq!(
        sample(&after, "service_requests", &poll_ok)
            - sample(&before, "service_requests", &poll_ok),
        1.0,
        "{after}"
    );

    // A poll the client abandons is recorded as Canceled, and its poller goes away.
    let canceled = [
        ("operation", "PollWorkflowTaskQueue"),
        ("status", "Canceled"),
    ];
    let before = sample(&scrape(addr).await, "service_requests", &canceled);
    let mut poller = c.clone();
    let request = poll_request(&tq, Duration::from_secs(30));
    let poll = tokio::spawn(async move { poller.poll_workflow_task_queue(request).await });
    for _ in 0..100 {
        if sample(
            &scrape(addr).await,
            "perdure_task_queue_waiting_pollers",
            &waiting,
        ) == 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    poll.abort();
    let mut after = String::new();
    for _ in 0..100 {
        after = scrape(addr).await;
        if sample(&after, "service_requests", &canceled) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        sample(&after, "service_requests", &canceled) - before,
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "perdure_task_queue_waiting_pollers", &waiting),
        0.0,
        "{after}"
    );
}

/// Two engines on one store: the second takes every shard, so the first one's writes are
/// refused, and each refusal is counted.
#[tokio::test]
async fn refused_stale_writes_are_counted() {
    let _serial = SERIAL.lock().await;
    let addr = metrics_listener().await;
    let lost = |text: &str| sample(text, "perdure_shard_ownership_lost_total", &[]);
    let before = lost(&scrape(addr).await);
    let store = Arc::new(
        tokio::task::spawn_blocking(|| SqliteStore::open(Location::Temporary))
            .await
            .unwrap()
            .unwrap(),
    );
    let config = |owner: &str| Config {
        owner: owner.into(),
        ..Config::default()
    };
    let stale = Engine::start(store.clone(), Arc::new(SystemClock), config("first"))
        .await
        .unwrap();
    let _owner = Engine::start(store.clone(), Arc::new(SystemClock), config("second"))
        .await
        .unwrap();
    for i in 0..3 {
        let refused = stale
            .start_workflow(start(&format!("stale-{i}"), "t", "q"))
            .await;
        assert!(refused.is_err(), "a stale owner's start must be refused");
    }
    let after = scrape(addr).await;
    assert_eq!(lost(&after) - before, 3.0, "{after}");
}

/// RPCs in a loop on `c` until the returned flag is set: CPU for a profile to sample.
fn load(mut c: WorkflowServiceClient<Channel>) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u32>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let tq = format!("profile-{}", uuid::Uuid::new_v4());
        let mut rpcs = 0;
        while !flag.load(Ordering::Relaxed) {
            c.start_workflow_execution(start(&format!("{tq}-{rpcs}"), "t", &tq))
                .await
                .unwrap();
            c.describe_namespace(DescribeNamespaceRequest {
                namespace: "default".into(),
                ..Default::default()
            })
            .await
            .unwrap();
            rpcs += 2;
        }
        rpcs
    });
    (stop, task)
}

/// `/debug/pprof/profile` samples this process while RPCs run and answers a flame graph of
/// our own frames; one profile at a time; bad arguments are refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_profile_is_a_flame_graph_one_at_a_time() {
    if std::env::var("PERDURE_TEST_ADDRESS").is_ok() {
        return; // the load would run in another process than the one profiled
    }
    let _serial = SERIAL.lock().await;
    let addr = metrics_listener().await;
    for bad in ["seconds=0", "seconds=abc", "seconds=301", "format=text"] {
        let (status, body) = get(addr, &format!("/debug/pprof/profile?{bad}")).await;
        assert!(status.contains(" 400 "), "{bad}: {status}");
        assert_eq!(body.lines().count(), 1, "{bad}: {body}");
    }

    let (stop, rpcs) = load(server().await);
    // Two requests at once: one samples for a second, the other is turned away meanwhile.
    let first = tokio::spawn(get_raw(addr, "/debug/pprof/profile?seconds=1"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = tokio::spawn(get_raw(addr, "/debug/pprof/profile?seconds=1"));
    let answers = [first.await.unwrap(), second.await.unwrap()];
    let status = |head: &str| head.lines().next().unwrap().to_string();
    let (profile, refused): (Vec<_>, Vec<_>) = answers
        .into_iter()
        .partition(|(head, _)| status(head).contains(" 200 "));
    assert_eq!((profile.len(), refused.len()), (1, 1), "{refused:?}");
    assert!(status(&refused[0].0).contains(" 409 "), "{}", refused[0].0);

    let (head, body) = &profile[0];
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/svg+xml"),
        "{head}"
    );
    let svg = String::from_utf8(body.clone()).unwrap();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{}",
        &svg[..svg.len().min(200)]
    );
    assert!(svg.contains("</svg>"), "an SVG to its end");
    // Frames of our own code and of the runtime, demangled.
    assert!(
        svg.contains("perdure_"),
        "no perdure frame in the flame graph"
    );
    assert!(svg.contains("tokio::"), "no tokio frame in the flame graph");

    // The sampler is free again once a profile ends: Go's pprof format, gzipped.
    let (head, body) = get_raw(addr, "/debug/pprof/profile?seconds=1&format=pb").await;
    assert!(status(&head).contains(" 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream");

    stop.store(true, Ordering::Relaxed);
    assert!(rpcs.await.unwrap() > 0);
}
