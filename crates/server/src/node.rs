//! This process as a member of a cluster of server processes on one database. Every process
//! registers a membership row and heartbeats it, and runs an engine that owns its share of the
//! shards and matches its share of the task queues: the live members and the shard count decide,
//! by rendezvous hashing, which process owns which (see `perdure_core::cluster`). One of them, the
//! **leader**, holds a lease on the cluster and runs the cluster-wide work (schedules, batch jobs,
//! worker deployments, namespace changes). An engine's start bumps the fencing token of each shard
//! it takes, so a paused or partitioned former owner can never overwrite newer state: its commits
//! are refused. Requests may reach any process: the gRPC frontend sends each one on to the process
//! that serves it (`grpc::WorkflowApi`, `peers`). When the members, the leader or the shard count
//! change, every process stops its engine and starts again with the new view; calls between
//! processes that hold different views are refused as retryable until they agree. With SQLite
//! there is one process, which leads at once and owns every shard.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{Request, Response};
use perdure_core::clock::SystemClock;
use perdure_core::cluster::{Membership as EngineMembership, PeerAddr, Topology};
use perdure_core::store::{Member, SharedStore, StoreError};
use perdure_core::{Config, Engine};
use tokio::sync::watch;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint};

use crate::peers::{self, FORWARDED, GrpcPeers, status_response};
use crate::{Error, ServerConfig};

/// How the process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// Asked to stop.
    Stopped,
    /// Its engine must stop (the cluster changed, or it lost the leadership); start the process
    /// again to rejoin with a fresh engine.
    Demoted(String),
}

/// What this process does with an RPC right now.
#[derive(Clone)]
enum Role {
    /// No engine yet.
    Starting,
    /// Its engine serves; `leader` is the leader's channel when another process leads (the
    /// OperatorService is sent on to it).
    Serving {
        routes: Routes,
        engine: Engine,
        leader: Option<(PeerAddr, Channel)>,
    },
}

/// The gRPC service of every path but health: the calls between engines, the OperatorService
/// (sent on to the leader), and the WorkflowService (which sends on what others serve).
#[derive(Clone)]
pub(crate) struct Dispatch {
    role: watch::Receiver<Role>,
    node: String,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

const PEER_PREFIX: &str = "/perdure.peer.v1.Peer/";
const OPERATOR_PREFIX: &str = "/temporal.api.operatorservice.v1.OperatorService/";

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
            let Role::Serving {
                mut routes,
                engine,
                leader,
            } = role
            else {
                return Ok(status_response(Status::unavailable(format!(
                    "Perdure process {me} is joining its cluster; retry"
                ))));
            };
            let path = req.uri().path().to_string();
            if let Some(method) = path.strip_prefix(PEER_PREFIX) {
                return Ok(peers::serve(engine, method, req).await);
            }
            if let Err(s) = peers::same_view(&engine, &req) {
                return Ok(status_response(s));
            }
            match leader {
                Some((to, mut channel)) if path.starts_with(OPERATOR_PREFIX) => {
                    if let Some(from) = req.headers().get(FORWARDED) {
                        return Ok(status_response(Status::unavailable(format!(
                            "Perdure process {me} received a request sent on by {} but does \
                             not lead the cluster (leadership is moving); retry",
                            from.to_str().unwrap_or("?")
                        ))));
                    }
                    let mut req = req.map(Body::new);
                    peers::mark_forwarded(&mut req, &me);
                    if let Err(e) = futures::future::poll_fn(|cx| channel.poll_ready(cx)).await {
                        return Ok(status_response(unreachable(&to, &e)));
                    }
                    match channel.call(req).await {
                        Ok(resp) => {
                            // Search attributes and namespaces changed there: read them before
                            // answering, so the caller's next request here sees its change.
                            let _ = engine.reload_namespaces().await;
                            Ok(resp)
                        }
                        Err(e) => Ok(status_response(unreachable(&to, &e))),
                    }
                }
                _ => routes.call(req).await,
            }
        })
    }
}

fn unreachable(to: &PeerAddr, e: &dyn std::fmt::Display) -> Status {
    Status::unavailable(format!(
        "cannot reach the cluster's leader {} at {}: {e}; retry",
        to.node, to.address
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

/// What the role loop needs to start this process's engine.
pub(crate) struct Leading {
    pub store: SharedStore,
    pub config: Config,
    pub local: Box<dyn Fn(Engine, GrpcPeers) -> Routes + Send + Sync>,
    pub on_engine: Box<dyn Fn(&Engine) + Send + Sync>,
}

/// Joins the cluster (a live process with the same node name is an error), takes the first
/// decision (a process alone on its database leads and starts its engine before it answers its
/// first RPC) and returns the dispatch service plus the loop that keeps the role up to date until
/// it returns how the process must end. `health` reports SERVING while this process's engine
/// owns shards and reaches the database.
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
}

/// A short description of a view, for logs.
fn describe(t: &Topology) -> String {
    let members: Vec<&str> = t.members.iter().map(|m| m.node.as_str()).collect();
    format!(
        "members {}, leader {}, {} shards",
        members.join(", "),
        t.leader,
        t.shard_count
    )
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
        // Leadership: renewed by the leader, taken by anyone when it is free.
        let s = store.clone();
        let leading_engine = self.engine.as_ref().is_some_and(Engine::is_leader);
        if leading_engine {
            let (member, lease_ms) = (m.member.clone(), m.lease_ms());
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
        } else {
            let current = blocking(move || s.leader()).await;
            // A lease held under this process's own address by another name belongs to a
            // predecessor that was killed (two live processes cannot listen on one address):
            // end it now rather than wait it out, so a restarted process serves at once.
            if let Ok(Some(l)) = &current
                && l.expires_in_ms >= 0
                && l.address == m.member.address
                && l.node != m.member.node
            {
                let dead = Member {
                    node: l.node.clone(),
                    session: l.session.clone(),
                    address: l.address.clone(),
                };
                let s = store.clone();
                match blocking(move || s.resign(&dead)).await {
                    Ok(()) => {
                        tracing::info!(node = %l.node, "ended the lease of a killed predecessor on this address")
                    }
                    Err(e) => tracing::warn!(%e, "ending a killed predecessor's lease failed"),
                }
            }
            let s = store.clone();
            let current = blocking(move || s.leader()).await;
            let free = match &current {
                Ok(Some(l)) => l.expires_in_ms < 0 || l.session == m.member.session,
                Ok(None) => true,
                Err(_) => false,
            };
            if free {
                let (s, member, lease_ms) = (store.clone(), m.member.clone(), m.lease_ms());
                if let Ok(true) = blocking(move || s.try_lead(&member, lease_ms)).await {
                    self.last_renewed = Instant::now();
                    if !matches!(&current, Ok(Some(l)) if l.session == m.member.session) {
                        tracing::info!(node = %m.member.node, "leading the cluster");
                    }
                }
            }
        }
        let view = self.view().await;
        if let Some(e) = &self.engine {
            if e.fenced() {
                return Some(Exit::Demoted(
                    "another process took one of this process's shards".into(),
                ));
            }
            if let Some(v) = &view
                && e.topology() != Some(v)
            {
                return Some(Exit::Demoted(format!(
                    "the cluster changed: {}",
                    describe(v)
                )));
            }
            set_health(&self.health, db_ok && e.owned_shards() > 0).await;
            return None;
        }
        let Some(view) = view else {
            set_health(&self.health, false).await;
            return None;
        };
        let peers = GrpcPeers::new(&view.me, view.epoch());
        let mut config = self.leading.config.clone();
        config.shard_count = view.shard_count;
        config.cluster = Some(EngineMembership {
            topology: view.clone(),
            peers: Arc::new(peers.clone()),
        });
        let leader = if view.is_leader() {
            None
        } else {
            let l = view.leader_addr().cloned()?;
            match Endpoint::from_shared(format!("http://{}", l.address)) {
                Ok(ep) => {
                    let channel = ep.connect_timeout(Duration::from_secs(2)).connect_lazy();
                    Some((l, channel))
                }
                Err(e) => {
                    tracing::warn!(%e, address = %l.address, "bad leader address");
                    return None;
                }
            }
        };
        match Engine::start(self.leading.store.clone(), Arc::new(SystemClock), config).await {
            Ok(e) => {
                tracing::info!(
                    node = %view.me,
                    shards = e.owned_shards(),
                    leader = view.is_leader(),
                    "serving: {}",
                    describe(&view)
                );
                (self.leading.on_engine)(&e);
                let _ = self.role.send(Role::Serving {
                    routes: (self.leading.local)(e.clone(), peers),
                    engine: e.clone(),
                    leader,
                });
                set_health(&self.health, db_ok && e.owned_shards() > 0).await;
                self.engine = Some(e);
                None
            }
            Err(err) => Some(Exit::Demoted(format!("cannot start the engine: {err}"))),
        }
    }

    /// The cluster as the database shows it now: the live members, the leader (when its lease
    /// runs and it is one of them), the shard count. `None` while there is no such leader, this
    /// process is not among the members, or the database does not answer.
    async fn view(&self) -> Option<Topology> {
        let store = self.leading.store.clone();
        if store.exclusive() {
            // One process per store (an SQLite file): the rows a killed predecessor left do not
            // count, this process is the whole cluster.
            let s = store.clone();
            let count = blocking(move || s.shard_count(None)).await.ok()?;
            let me = &self.m.member;
            return Some(Topology::alone(&me.node, &me.address, count));
        }
        let lease_ms = self.m.lease_ms();
        let (members, leader, count) = blocking(move || {
            Ok((
                store.members(lease_ms)?,
                store.leader()?,
                store.shard_count(None)?,
            ))
        })
        .await
        .ok()?;
        let leader = leader.filter(|l| l.expires_in_ms >= 0)?;
        // A row with this process's own address but another name is a predecessor that was
        // killed (two live processes cannot listen on one address): it does not count, and a
        // lease it still holds is ended (see `step`).
        let mine = &self.m.member;
        let mut members: Vec<PeerAddr> = members
            .into_iter()
            .filter(|m| m.node == mine.node || m.address != mine.address)
            .map(|m| PeerAddr {
                node: m.node,
                address: m.address,
            })
            .collect();
        members.sort();
        members.dedup_by(|a, b| a.node == b.node);
        let me = &self.m.member.node;
        if !members.iter().any(|p| &p.node == me) || !members.iter().any(|p| p.node == leader.node)
        {
            return None;
        }
        Some(Topology {
            me: me.clone(),
            members,
            leader: leader.node,
            shard_count: count,
        })
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
