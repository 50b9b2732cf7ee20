//! This process as a member of a cluster of server processes on one database. Every process
//! registers a membership row and heartbeats it; one of them, the **leader**, holds a lease on the
//! cluster and runs the engine, which owns every shard (it bumps each shard's fencing token when
//! it takes over, so a paused or partitioned former leader can never overwrite newer state: its
//! commits are refused). The other processes answer every RPC by forwarding it, as is, to the
//! leader's gRPC port (long polls included), so clients and workers may connect to any process.
//! When the leader dies its lease runs out and another process takes over; when a process finds
//! it lost the lease (or the shard count was raised) it stops and is started again, fresh, as a
//! follower. With SQLite there is one process, which leads at once.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Request, Response};
use perdure_core::clock::SystemClock;
use perdure_core::store::{Member, SharedStore, StoreError};
use perdure_core::{Config, Engine};
use tokio::sync::watch;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint};

use crate::{Error, ServerConfig};

/// Header a follower adds to a request it forwards; a forwarded request is never forwarded again.
const FORWARDED: &str = "perdure-forwarded-by";

/// How the process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// Asked to stop.
    Stopped,
    /// It lost (or must give up) leadership; start it again to rejoin as a follower.
    Demoted(String),
}

/// What this process does with an RPC right now.
#[derive(Clone)]
enum Role {
    /// No leader is known yet.
    Starting,
    /// This process runs the engine.
    Leader(Routes),
    /// Another process leads: forward to it.
    Follower {
        node: String,
        address: String,
        channel: Channel,
    },
}

/// The gRPC service of every path but health: local, forwarded or refused, by role.
#[derive(Clone)]
pub(crate) struct Dispatch {
    role: watch::Receiver<Role>,
    node: String,
}

fn status_response(s: Status) -> Response<Body> {
    let (parts, ()) = s.into_http::<()>().into_parts();
    Response::from_parts(parts, Body::empty())
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl Service<Request<axum::body::Body>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<axum::body::Body>) -> Self::Future {
        let role = self.role.borrow().clone();
        let me = self.node.clone();
        Box::pin(async move {
            match role {
                Role::Leader(mut routes) => routes.call(req).await,
                Role::Follower {
                    node,
                    address,
                    mut channel,
                } => {
                    if let Some(from) = req.headers().get(FORWARDED) {
                        return Ok(status_response(Status::unavailable(format!(
                            "Perdure process {me} received a request forwarded by {} but does \
                             not lead the cluster (leadership is moving); retry",
                            from.to_str().unwrap_or("?")
                        ))));
                    }
                    let mut req = req.map(Body::new);
                    if let Ok(v) = HeaderValue::from_str(&me) {
                        req.headers_mut().insert(FORWARDED, v);
                    }
                    if let Err(e) = futures::future::poll_fn(|cx| channel.poll_ready(cx)).await {
                        return Ok(status_response(unreachable(&node, &address, &e)));
                    }
                    match channel.call(req).await {
                        Ok(resp) => Ok(resp),
                        Err(e) => Ok(status_response(unreachable(&node, &address, &e))),
                    }
                }
                Role::Starting => Ok(status_response(Status::unavailable(format!(
                    "Perdure process {me} has not found the cluster's leader yet; retry"
                )))),
            }
        })
    }
}

fn unreachable(node: &str, address: &str, e: &dyn std::fmt::Display) -> Status {
    Status::unavailable(format!(
        "cannot reach the cluster's leader {node} at {address}: {e}; retry"
    ))
}

/// This process's session id: one per process, so a process that steps down and joins again
/// keeps its membership row (its node name stays its own).
fn session() -> &'static str {
    static SESSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SESSION.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// The membership settings of a process.
pub(crate) struct Membership {
    pub member: Member,
    pub lease: Duration,
}

impl Membership {
    pub fn new(config: &ServerConfig, grpc: std::net::SocketAddr) -> Membership {
        let node = config
            .node_name
            .clone()
            .unwrap_or_else(|| format!("perdure-{}", std::process::id()));
        let address = config.advertise_address.clone().unwrap_or_else(|| {
            if grpc.ip().is_unspecified() {
                format!("127.0.0.1:{}", grpc.port())
            } else {
                grpc.to_string()
            }
        });
        Membership {
            member: Member {
                node,
                session: session().to_string(),
                address,
            },
            lease: config.lease.unwrap_or(Duration::from_secs(5)),
        }
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis().min(i64::MAX as u128) as i64
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Backend(e.to_string())))
}

/// What the role loop needs to start the engine when this process becomes the leader.
pub(crate) struct Leading {
    pub store: SharedStore,
    pub config: Config,
    pub local: Box<dyn Fn(Engine) -> Routes + Send + Sync>,
    pub on_engine: Box<dyn Fn(&Engine) + Send + Sync>,
}

/// Joins the cluster (a live process with the same node name is an error), takes the first
/// decision (a process alone on its database leads before it answers its first RPC) and returns
/// the dispatch service plus the loop that keeps the role up to date until it returns how the
/// process must end. `health` reports SERVING only while this process leads and reaches the
/// database.
pub(crate) async fn join(
    m: Membership,
    leading: Leading,
    health: tonic_health::server::HealthReporter,
) -> Result<(Dispatch, impl Future<Output = Exit>), Error> {
    let store = leading.store.clone();
    let member = m.member.clone();
    let lease_ms = m.lease_ms();
    blocking(move || store.join(&member, lease_ms)).await?;
    let (tx, rx) = watch::channel(Role::Starting);
    let dispatch = Dispatch {
        role: rx,
        node: m.member.node.clone(),
    };
    let mut node = Node {
        tick: (m.lease / 5).max(Duration::from_millis(50)),
        m,
        leading,
        role: tx,
        health,
        engine: None,
        last_renewed: Instant::now(),
        leader_seen: None,
    };
    let first = node.step().await;
    Ok((dispatch, async move {
        let exit = match first {
            Some(exit) => exit,
            None => loop {
                tokio::time::sleep(node.tick).await;
                if let Some(exit) = node.step().await {
                    break exit;
                }
            },
        };
        if node.engine.is_some() {
            // Requests already running finish (a stale one is refused by the shard fence);
            // new ones are refused as retryable until the process has started again.
            let _ = node.role.send(Role::Starting);
            set_health(&node.health, false).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        exit
    }))
}

async fn set_health(h: &tonic_health::server::HealthReporter, serving: bool) {
    let s = if serving {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    for name in ["", "temporal.api.workflowservice.v1.WorkflowService"] {
        h.set_service_status(name, s).await;
    }
}

/// The role loop's state.
struct Node {
    m: Membership,
    leading: Leading,
    role: watch::Sender<Role>,
    health: tonic_health::server::HealthReporter,
    tick: Duration,
    engine: Option<Engine>,
    last_renewed: Instant,
    /// The session of the leader this process forwards to.
    leader_seen: Option<String>,
}

impl Node {
    /// One heartbeat and role decision; `Some` when the process must end.
    async fn step(&mut self) -> Option<Exit> {
        let store = self.leading.store.clone();
        let m = &self.m;
        let member = m.member.clone();
        let s = store.clone();
        let db_ok = match blocking(move || s.heartbeat(&member)).await {
            Ok(true) => true,
            Ok(false) => {
                return Some(Exit::Demoted(format!(
                    "another process took the node name {:?}",
                    m.member.node
                )));
            }
            Err(e) => {
                tracing::warn!(%e, "cluster heartbeat failed");
                false
            }
        };
        if let Some(e) = &self.engine {
            let (s, member, lease_ms) = (store.clone(), m.member.clone(), m.lease_ms());
            match blocking(move || s.try_lead(&member, lease_ms)).await {
                Ok(true) => self.last_renewed = Instant::now(),
                Ok(false) => {
                    return Some(Exit::Demoted("another process took the leadership".into()));
                }
                Err(err) if self.last_renewed.elapsed() >= m.lease => {
                    return Some(Exit::Demoted(format!("cannot renew the leadership: {err}")));
                }
                Err(_) => {}
            }
            let s = store.clone();
            if let Ok(n) = blocking(move || s.shard_count(None)).await
                && n != e.shard_count()
            {
                return Some(Exit::Demoted(format!(
                    "the shard count was raised from {} to {n}",
                    e.shard_count()
                )));
            }
            set_health(&self.health, db_ok).await;
            return None;
        }
        let s = store.clone();
        let current = blocking(move || s.leader()).await;
        let live = match &current {
            Ok(Some(l)) if l.expires_in_ms >= 0 && l.session != m.member.session => Some(l.clone()),
            _ => None,
        };
        match live {
            Some(l) if self.leader_seen.as_deref() != Some(l.session.as_str()) => {
                match Endpoint::from_shared(format!("http://{}", l.address)) {
                    Ok(ep) => {
                        tracing::info!(leader = %l.node, address = %l.address, "following");
                        self.leader_seen = Some(l.session.clone());
                        let _ = self.role.send(Role::Follower {
                            node: l.node.clone(),
                            address: l.address.clone(),
                            channel: ep.connect_timeout(Duration::from_secs(2)).connect_lazy(),
                        });
                    }
                    Err(e) => tracing::warn!(%e, address = %l.address, "bad leader address"),
                }
            }
            Some(_) => {}
            None if current.is_ok() => {
                let (s, member, lease_ms) = (store.clone(), m.member.clone(), m.lease_ms());
                if let Ok(true) = blocking(move || s.try_lead(&member, lease_ms)).await {
                    self.last_renewed = Instant::now();
                    tracing::info!(node = %m.member.node, "leading the cluster");
                    match Engine::start(
                        self.leading.store.clone(),
                        Arc::new(SystemClock),
                        self.leading.config.clone(),
                    )
                    .await
                    {
                        Ok(e) => {
                            (self.leading.on_engine)(&e);
                            let _ = self
                                .role
                                .send(Role::Leader((self.leading.local)(e.clone())));
                            self.engine = Some(e);
                            set_health(&self.health, db_ok).await;
                            return None;
                        }
                        Err(err) => {
                            return Some(Exit::Demoted(format!("cannot start the engine: {err}")));
                        }
                    }
                }
            }
            None => {}
        }
        set_health(&self.health, false).await;
        None
    }
}

/// A clean stop: gives leadership up at once (so another process takes over without waiting for
/// the lease) and leaves the membership.
pub(crate) async fn leave(store: SharedStore, member: Member) {
    let _ = blocking(move || {
        store.resign(&member)?;
        store.leave(&member)
    })
    .await;
}
