//! The order book: the connection to the server and the orders both web apps show, read from the
//! server (a visibility query for the list, a `getStatus` query per order) by one background
//! loop and published to every page as a [`Snapshot`]. Nothing about orders is kept only in this
//! process, so a restarted app shows every order again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use perdure_sdk::proto::enums::v1::WorkflowExecutionStatus;
use perdure_sdk::proto::workflow::v1::WorkflowExecutionInfo;
use perdure_sdk::{Client, ClientError, ClientOptions};
use tokio::sync::{Mutex, Notify, watch};

use crate::order::{self, OrderStatus, Product};

/// The visibility query that lists the orders.
pub const ORDERS_QUERY: &str = "WorkflowType = 'order' AND WorkflowId STARTS_WITH 'order-'";
/// How many of the newest orders the apps show.
pub const SHOWN: i32 = 60;
/// How long a status query may take before the page says no worker answered.
pub const QUERY_WAIT: Duration = Duration::from_secs(5);
/// How long an action waits for the first connection before saying the server is unreachable.
pub const CONNECT_WAIT: Duration = Duration::from_secs(3);
/// How often an open order is asked for its status when its history did not grow.
const REASK_OPEN: Duration = Duration::from_millis(1500);
/// How often a closed order whose query failed is asked again.
const REASK_CLOSED: Duration = Duration::from_secs(30);
/// Pause between two refreshes of the list.
const TICK: Duration = Duration::from_millis(600);

/// Whether the server answers.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerHealth {
    Connecting,
    Up,
    Down(String),
}

/// One order as the pages show it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderView {
    pub id: String,
    pub run_id: String,
    pub product_id: Option<u32>,
    pub placed_at: Option<SystemTime>,
    pub closed_at: Option<SystemTime>,
    /// Whether the workflow is still running.
    pub open: bool,
    /// The execution status: Running, Completed, Failed, Terminated, ...
    pub execution_status: String,
    /// The `getStatus` answer, once there is one.
    pub status: Option<OrderStatus>,
    /// Why there is no fresh answer (no worker answered, the query failed).
    pub problem: Option<String>,
    /// While the card is being charged: the failed attempt the server is retrying.
    pub retrying: Option<String>,
    pub task_queue: String,
}

impl OrderView {
    pub fn product(&self) -> Option<&'static Product> {
        self.product_id.and_then(order::product)
    }

    /// The state to show: the workflow's own when known, else its execution status.
    pub fn state(&self) -> &str {
        match &self.status {
            Some(s) => &s.state,
            None if self.open => "Unknown",
            None => &self.execution_status,
        }
    }
}

/// What every page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub server: ServerHealth,
    pub orders: Vec<OrderView>,
}

/// The last status answer per order.
#[derive(Debug, Clone, Default)]
struct Answer {
    run_id: String,
    status: Option<OrderStatus>,
    problem: Option<String>,
    retrying: Option<String>,
    in_flight: bool,
    asked: Option<Instant>,
    /// The history length when last asked.
    length: i64,
    /// The run was closed when this answer came: it never changes again.
    settled: bool,
}

/// The connection to the server and the published snapshot.
#[derive(Clone)]
pub struct Book {
    client: watch::Receiver<Option<Client>>,
    snapshot: watch::Receiver<Snapshot>,
    address: String,
}

impl Book {
    /// Connects to `address` in the background (retrying until the server answers) and starts
    /// the refresh loop; both stop when `stop` resolves.
    pub fn start(
        address: &str,
        namespace: &str,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Book {
        let options = ClientOptions::new(address).namespace(namespace);
        let address = address.to_string();
        let (client_tx, client_rx) = watch::channel(None);
        let (snap_tx, snap_rx) = watch::channel(Snapshot {
            server: ServerHealth::Connecting,
            orders: Vec::new(),
        });
        let book = Book {
            client: client_rx,
            snapshot: snap_rx,
            address,
        };
        let runner = Refresher {
            answers: Arc::new(Mutex::new(HashMap::new())),
            answered: Arc::new(Notify::new()),
            out: snap_tx,
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = stop => {}
                _ = runner.run(options, client_tx) => {}
            }
        });
        book
    }

    /// The client, once connected.
    pub fn client(&self) -> Option<Client> {
        self.client.borrow().clone()
    }

    /// The client, waiting up to `wait` for the connection.
    pub async fn client_within(&self, wait: Duration) -> Option<Client> {
        tokio::time::timeout(wait, self.connected()).await.ok()
    }

    /// The client, or `Unreachable` when the first connection has not succeeded within
    /// [`CONNECT_WAIT`].
    pub async fn client_or_unreachable(&self) -> Result<Client, ClientError> {
        self.client_within(CONNECT_WAIT)
            .await
            .ok_or_else(|| ClientError::Unreachable {
                address: self.address.clone(),
                message: "no answer yet".into(),
            })
    }

    /// Waits until connected.
    pub async fn connected(&self) -> Client {
        let mut rx = self.client.clone();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                return c;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The server's address as given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// A receiver that sees every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }

    /// One page of every order, newest first (no status queries: the state shown is the one
    /// the live list knows, else the execution status). Returns the next page's token.
    pub async fn page(
        &self,
        size: i32,
        token: Vec<u8>,
    ) -> Result<(Vec<OrderView>, Vec<u8>), ClientError> {
        let client = self.client_or_unreachable().await?;
        let (infos, next) = client
            .list_workflows_page(ORDERS_QUERY, size, token)
            .await?;
        let snap = self.snapshot();
        let views = infos
            .iter()
            .map(|info| {
                let mut v = view_of(info);
                if let Some(known) = snap
                    .orders
                    .iter()
                    .find(|o| o.id == v.id && o.run_id == v.run_id)
                {
                    v = known.clone();
                }
                v
            })
            .collect();
        Ok((views, next))
    }

    /// One order: from the last snapshot, else read from the server (orders older than the list
    /// shows). `Ok(None)` when no such order exists.
    pub async fn load(&self, id: &str) -> Result<Option<OrderView>, ClientError> {
        if let Some(o) = self.snapshot().orders.into_iter().find(|o| o.id == id) {
            return Ok(Some(o));
        }
        self.load_fresh(id).await
    }

    /// One order, read from the server now. `Ok(None)` when no such order exists.
    pub async fn load_fresh(&self, id: &str) -> Result<Option<OrderView>, ClientError> {
        let client = self.client_or_unreachable().await?;
        let handle = client.workflow_handle(id, None);
        let info = match handle.describe().await {
            Ok(d) => d.workflow_execution_info.unwrap_or_default(),
            Err(ClientError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if info.r#type.as_ref().map(|t| t.name.as_str()) != Some(order::WORKFLOW_TYPE) {
            return Ok(None);
        }
        let mut view = view_of(&info);
        let answer = ask(&client, &view.id, &view.run_id, view.open).await;
        apply(&mut view, &answer);
        Ok(Some(view))
    }
}

/// Whether an error means the server cannot be reached.
pub fn unreachable(e: &ClientError) -> bool {
    match e {
        ClientError::Unreachable { .. } => true,
        ClientError::Rpc(s) => matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
        ),
        _ => false,
    }
}

struct Refresher {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    answered: Arc<Notify>,
    out: watch::Sender<Snapshot>,
}

impl Refresher {
    async fn run(self, options: ClientOptions, client_tx: watch::Sender<Option<Client>>) {
        let client = loop {
            match Client::connect(options.clone()).await {
                Ok(c) => break c,
                Err(e) => {
                    self.publish(ServerHealth::Down(e.to_string()), None);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let _ = client_tx.send(Some(client.clone()));
        // List on every tick; between ticks, rebuild from the last list when answers arrive.
        let mut listed: Option<Vec<WorkflowExecutionInfo>> = None;
        let mut next_list = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_list {
                next_list = tokio::time::Instant::now() + TICK;
                match client
                    .list_workflows_page(ORDERS_QUERY, SHOWN, Vec::new())
                    .await
                {
                    Ok((infos, _)) => listed = Some(infos),
                    Err(e) => {
                        if !unreachable(&e) {
                            tracing::warn!("cannot list the orders: {e}");
                        }
                        listed = None;
                        self.publish(ServerHealth::Down(e.to_string()), None);
                    }
                }
            }
            if let Some(infos) = &listed {
                let orders = self.refresh(&client, infos).await;
                self.publish(ServerHealth::Up, Some(orders));
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next_list) => {}
                _ = self.answered.notified() => {
                    // Gather answers that arrive together.
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
        }
    }

    fn publish(&self, server: ServerHealth, orders: Option<Vec<OrderView>>) {
        self.out.send_if_modified(|s| {
            let next = Snapshot {
                server,
                orders: orders.unwrap_or_else(|| s.orders.clone()),
            };
            let changed = *s != next;
            *s = next;
            changed
        });
    }

    /// Builds the views from the list and the answers so far, and asks again where due.
    async fn refresh(&self, client: &Client, infos: &[WorkflowExecutionInfo]) -> Vec<OrderView> {
        let mut answers = self.answers.lock().await;
        let mut views = Vec::with_capacity(infos.len());
        for info in infos {
            let mut view = view_of(info);
            let a = answers.entry(view.id.clone()).or_default();
            if a.run_id != view.run_id {
                *a = Answer {
                    run_id: view.run_id.clone(),
                    ..Default::default()
                };
            }
            // Ask again when the history grew (Perdure's list shows it; Temporal's may not), and
            // at least every `REASK_OPEN` while open. A closed run whose query failed (no worker)
            // is asked again only every `REASK_CLOSED`.
            let every = if view.open { REASK_OPEN } else { REASK_CLOSED };
            let due = !a.in_flight
                && !a.settled
                && (a.length != info.history_length
                    || a.asked.is_none_or(|t| t.elapsed() >= every));
            if due {
                a.in_flight = true;
                a.asked = Some(Instant::now());
                a.length = info.history_length;
                let (client, answers, answered) =
                    (client.clone(), self.answers.clone(), self.answered.clone());
                let (id, run_id, open) = (view.id.clone(), view.run_id.clone(), view.open);
                tokio::spawn(async move {
                    let mut fresh = ask(&client, &id, &run_id, open).await;
                    let mut answers = answers.lock().await;
                    if let Some(a) = answers.get_mut(&id)
                        && a.run_id == run_id
                    {
                        // Keep the last known state while no worker answers.
                        if fresh.status.is_none() {
                            fresh.status = a.status.clone();
                        }
                        fresh.asked = a.asked;
                        fresh.length = a.length;
                        *a = fresh;
                    }
                    drop(answers);
                    answered.notify_one();
                });
            }
            apply(&mut view, a);
            views.push(view);
        }
        // Forget orders that fell off the list.
        let shown: std::collections::HashSet<&str> = views.iter().map(|v| v.id.as_str()).collect();
        answers.retain(|id, _| shown.contains(id.as_str()));
        views
    }
}

/// Asks one run for its status (and, while it charges the card, for the retried attempt).
async fn ask(client: &Client, id: &str, run_id: &str, open: bool) -> Answer {
    let handle = client.workflow_handle(id, Some(run_id.to_string()));
    let mut answer = Answer {
        run_id: run_id.to_string(),
        ..Default::default()
    };
    match tokio::time::timeout(QUERY_WAIT, handle.query::<OrderStatus>("getStatus", ())).await {
        Ok(Ok(s)) => {
            answer.settled = !open;
            answer.status = Some(s);
        }
        Ok(Err(e)) => answer.problem = Some(format!("The status query failed: {e}")),
        Err(_) => {
            answer.problem = Some(format!(
                "No worker answered the status query within {} s. Is the worker running?",
                QUERY_WAIT.as_secs()
            ))
        }
    }
    let charging = answer
        .status
        .as_ref()
        .is_some_and(|s| s.state == order::state::CHARGING);
    if open
        && charging
        && let Ok(d) = handle.describe().await
        && let Some(p) = d.pending_activities.iter().find(|p| {
            p.activity_type
                .as_ref()
                .is_some_and(|t| t.name == "chargeCustomer")
        })
        && p.attempt > 1
    {
        let why = p
            .last_failure
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_default();
        answer.retrying = Some(format!(
            "Charge failed ({why}); the server retries it (attempt {})",
            p.attempt
        ));
    }
    answer
}

fn apply(view: &mut OrderView, a: &Answer) {
    view.status = a.status.clone();
    view.problem = a.problem.clone();
    view.retrying = a.retrying.clone();
    if view.product_id.is_none() {
        view.product_id = a.status.as_ref().map(|s| s.product_id);
    }
}

fn view_of(info: &WorkflowExecutionInfo) -> OrderView {
    let exec = info.execution.clone().unwrap_or_default();
    let status = WorkflowExecutionStatus::try_from(info.status)
        .unwrap_or(WorkflowExecutionStatus::Unspecified);
    let product_id = info
        .memo
        .as_ref()
        .and_then(|m| m.fields.get("productId"))
        .and_then(|p| serde_json::from_slice::<u32>(&p.data).ok());
    OrderView {
        id: exec.workflow_id,
        run_id: exec.run_id,
        product_id,
        placed_at: info.start_time.and_then(time_of),
        closed_at: info.close_time.and_then(time_of),
        open: status == WorkflowExecutionStatus::Running,
        execution_status: status_name(status).to_string(),
        status: None,
        problem: None,
        retrying: None,
        task_queue: info.task_queue.clone(),
    }
}

fn status_name(s: WorkflowExecutionStatus) -> &'static str {
    use WorkflowExecutionStatus as S;
    match s {
        S::Running => "Running",
        S::Completed => "Completed",
        S::Failed => "Failed",
        S::Canceled => "Canceled",
        S::Terminated => "Terminated",
        S::ContinuedAsNew => "Continued as new",
        S::TimedOut => "Timed out",
        S::Paused => "Paused",
        S::Unspecified => "Unknown",
    }
}

fn time_of(t: prost_wkt_types::Timestamp) -> Option<SystemTime> {
    let secs = u64::try_from(t.seconds).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(
        secs,
        u32::try_from(t.nanos).unwrap_or(0).min(999_999_999),
    ))
}
