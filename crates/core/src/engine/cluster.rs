//! The engine as a member of a cluster: which shards it owns, where a workflow id, a task token
//! or a task queue is served, tasks pushed to their queue's owner and started on their run's
//! owner, and the calls other engines make to this one ([`Engine::serve_peer`]).

use std::time::Duration;

use perdure_proto::api::deployment::v1::WorkerDeploymentOptions;
use perdure_proto::api::history::v1::{
    HistoryEvent, StartChildWorkflowExecutionInitiatedEventAttributes,
};
use perdure_proto::api::sdk::v1::UserMetadata;
use perdure_proto::api::workflowservice::v1::{
    PollActivityTaskQueueRequest, PollActivityTaskQueueResponse, PollWorkflowTaskQueueResponse,
    StartWorkflowExecutionRequest, StartWorkflowExecutionResponse,
};
use prost::Message;

use super::Engine;
use crate::cluster::{PEER_SERVICE, PeerAddr, Topology, wire};
use crate::error::{Error, Result};
use crate::matching::{QueueKind, Route, RunKey, Task};
use crate::state::{ExecutionState, ExternalRequestState};
use crate::token::TaskToken;

/// How long a call between engines may take (long polls carry their own deadline).
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

fn corrupt(what: &str, e: prost::DecodeError) -> Error {
    Error::InvalidArgument(format!("malformed {what}: {e}"))
}

/// Another process's answer as the error this engine would have given, for the callers that
/// tell errors apart (batch jobs, schedules, parent close policies).
fn localize(e: Error) -> Error {
    match e {
        // A namespace the other process does not know (yet) is not a workflow that is gone.
        Error::Peer {
            code: 5,
            ref details,
            ..
        } if details
            .windows(b"NamespaceNotFound".len())
            .any(|w| w == b"NamespaceNotFound") =>
        {
            e
        }
        Error::Peer { code, message, .. } => match code {
            3 => Error::InvalidArgument(message),
            4 => Error::DeadlineExceeded(message),
            5 => Error::NotFound(message),
            9 => Error::FailedPrecondition(message),
            14 => Error::Unavailable(message),
            _ => Error::Peer {
                code,
                message,
                details: Vec::new(),
            },
        },
        e => e,
    }
}

fn hint_of(task: &Task) -> wire::TaskHint {
    match task {
        Task::Workflow {
            run,
            shard,
            dispatch_seq,
        } => wire::TaskHint {
            kind: 1,
            namespace_id: run.namespace_id.clone(),
            run_id: run.run_id.clone(),
            shard: *shard,
            dispatch_seq: *dispatch_seq,
            ..Default::default()
        },
        Task::Query {
            run,
            shard,
            query_id,
        } => wire::TaskHint {
            kind: 2,
            namespace_id: run.namespace_id.clone(),
            run_id: run.run_id.clone(),
            shard: *shard,
            query_id: *query_id,
            ..Default::default()
        },
        Task::Activity {
            run,
            shard,
            scheduled_event_id,
            attempt,
        } => wire::TaskHint {
            kind: 3,
            namespace_id: run.namespace_id.clone(),
            run_id: run.run_id.clone(),
            shard: *shard,
            scheduled_event_id: *scheduled_event_id,
            attempt: *attempt,
            ..Default::default()
        },
    }
}

fn task_of(h: wire::TaskHint) -> Result<Task> {
    let run = RunKey {
        namespace_id: h.namespace_id,
        run_id: h.run_id,
    };
    Ok(match h.kind {
        1 => Task::Workflow {
            run,
            shard: h.shard,
            dispatch_seq: h.dispatch_seq,
        },
        2 => Task::Query {
            run,
            shard: h.shard,
            query_id: h.query_id,
        },
        3 => Task::Activity {
            run,
            shard: h.shard,
            scheduled_event_id: h.scheduled_event_id,
            attempt: h.attempt,
        },
        k => return Err(Error::InvalidArgument(format!("unknown task kind {k}"))),
    })
}

fn route_of(kind: i32, key: String) -> Route {
    match kind {
        1 => Route::Auto(key),
        2 => Route::Pinned(key),
        _ => Route::Any,
    }
}

fn route_wire(r: &Route) -> (i32, String) {
    match r {
        Route::Auto(k) => (1, k.clone()),
        Route::Pinned(k) => (2, k.clone()),
        Route::Any => (3, String::new()),
    }
}

impl Engine {
    /// The cluster view this engine was started with; `None` for a process on its own.
    pub fn topology(&self) -> Option<&Topology> {
        self.inner.config.cluster.as_ref().map(|c| &c.topology)
    }

    /// Whether this engine runs the cluster-wide work (schedules, batch jobs, worker deployments,
    /// namespace changes). A process on its own always does.
    pub fn is_leader(&self) -> bool {
        self.topology().is_none_or(Topology::is_leader)
    }

    /// Shards this engine owns.
    pub fn owned_shards(&self) -> usize {
        self.inner.range_ids.iter().filter(|r| **r != 0).count()
    }

    pub(crate) fn owns_shard(&self, shard: i32) -> bool {
        self.inner
            .range_ids
            .get(shard as usize)
            .is_some_and(|r| *r != 0)
    }

    /// The member owning `shard`, when it is not this process.
    fn remote_shard(&self, shard: i32) -> Option<PeerAddr> {
        if self.owns_shard(shard) {
            return None;
        }
        self.topology().map(|t| t.shard_owner(shard).clone())
    }

    /// The member serving the runs of `workflow_id` in the namespace with id `namespace_id`,
    /// when it is not this process.
    pub(crate) fn remote_workflow(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Option<PeerAddr> {
        self.remote_shard(self.shard_of(namespace_id, workflow_id))
    }

    /// The member serving `workflow_id` of the namespace called `namespace`, when it is not this
    /// process. An unknown namespace is served here (and answered NOT_FOUND).
    pub fn workflow_owner(&self, namespace: &str, workflow_id: &str) -> Option<PeerAddr> {
        let ns = self.namespace(namespace).ok()?;
        self.remote_workflow(&ns.id, workflow_id)
    }

    /// The member serving the standalone activity `activity_id` of `namespace`, when it is not
    /// this process.
    pub fn activity_execution_owner(&self, namespace: &str, activity_id: &str) -> Option<PeerAddr> {
        let ns = self.namespace(namespace).ok()?;
        self.remote_workflow(&super::standalone::record_namespace_id(&ns.id), activity_id)
    }

    /// The member serving the run a task token names, when it is not this process. A token that
    /// does not decode is served here (and refused).
    pub fn token_owner(&self, token: &[u8]) -> Option<PeerAddr> {
        let t = TaskToken::decode(token).ok()?;
        self.remote_workflow(&t.namespace_id, &t.workflow_id)
    }

    /// The member matching the task queue `queue` of the namespace with id `namespace_id`, when
    /// it is not this process.
    pub(crate) fn remote_queue(&self, namespace_id: &str, queue: &str) -> Option<PeerAddr> {
        let t = self.topology()?;
        let owner = t.queue_owner(namespace_id, queue);
        (owner.node != t.me).then(|| owner.clone())
    }

    /// The member matching the task queue `queue` of the namespace called `namespace`, when it
    /// is not this process. An unknown namespace is served here (and answered NOT_FOUND).
    pub fn queue_owner(&self, namespace: &str, queue: &str) -> Option<PeerAddr> {
        let ns = self.namespace(namespace).ok()?;
        self.remote_queue(&ns.id, queue)
    }

    /// The leader, when it is not this process.
    pub fn leader_peer(&self) -> Option<PeerAddr> {
        let t = self.topology()?;
        if t.is_leader() {
            return None;
        }
        t.leader_addr().cloned()
    }

    async fn call_peer<A: Message + Default>(
        &self,
        to: &PeerAddr,
        path: &str,
        req: &impl Message,
        timeout: Duration,
    ) -> Result<A> {
        let Some(c) = &self.inner.config.cluster else {
            return Err(Error::Internal("no cluster to call".into()));
        };
        let bytes = c.peers.call(to, path, req.encode_to_vec(), timeout).await?;
        A::decode(bytes.as_slice())
            .map_err(|e| Error::Internal(format!("malformed answer from {}: {e}", to.node)))
    }

    async fn call_engine<A: Message + Default>(
        &self,
        to: &PeerAddr,
        method: &str,
        req: &impl Message,
    ) -> Result<A> {
        self.call_peer(to, &format!("/{PEER_SERVICE}/{method}"), req, PEER_TIMEOUT)
            .await
    }

    /// Sends a public WorkflowService request (`rpc`, e.g. "SignalWorkflowExecution") to the
    /// member that serves its workflow, for work this engine does on behalf of others (batch
    /// jobs, schedules, parent close policies).
    pub(crate) async fn forward<A: Message + Default>(
        &self,
        to: &PeerAddr,
        rpc: &str,
        req: &impl Message,
    ) -> Result<A> {
        self.call_peer(
            to,
            &format!("/temporal.api.workflowservice.v1.WorkflowService/{rpc}"),
            req,
            PEER_TIMEOUT,
        )
        .await
        .map_err(localize)
    }

    /// Queues a task where its task queue is matched: here, or pushed to the queue's owner,
    /// retrying until it takes it. A task lost on the way is queued again when the cluster view
    /// changes (every engine starts again and re-arms its runs).
    pub(crate) fn add_task(
        &self,
        namespace_id: &str,
        queue: &str,
        kind: QueueKind,
        task: Task,
        route: Route,
    ) {
        let Some(owner) = self.remote_queue(namespace_id, queue) else {
            self.inner
                .matching
                .add_routed(namespace_id, queue, kind, task, route);
            return;
        };
        let (route_kind, route_key) = route_wire(&route);
        let req = wire::AddTask {
            namespace_id: namespace_id.to_string(),
            queue: queue.to_string(),
            queue_kind: match kind {
                QueueKind::Workflow => 1,
                QueueKind::Activity => 2,
            },
            task: Some(hint_of(&task)),
            route_kind,
            route_key,
            front: false,
        };
        let me = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match me
                    .call_engine::<wire::Empty>(&owner, wire::ADD_TASK, &req)
                    .await
                {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::debug!(%e, owner = %owner.node, "pushing a task to its queue's owner failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        });
    }

    /// Whether a worker polled the (sticky) queue lately. Only the queue's owner sees its polls;
    /// elsewhere a sticky queue is assumed alive, and its schedule-to-start timeout moves a task
    /// nobody takes back to the normal queue.
    pub(crate) fn recently_polled(&self, namespace_id: &str, queue: &str) -> bool {
        if self.remote_queue(namespace_id, queue).is_some() {
            return true;
        }
        self.inner
            .matching
            .recently_polled(namespace_id, queue, Duration::from_secs(10))
    }

    /// Starts a workflow or query task matched here (on its queue's owner, from the queue
    /// `queue` of namespace `namespace_id`) on its run's owner. The call runs on a task of its
    /// own: if it fails, or the poll goes away meanwhile and it fails, the task goes back to the
    /// front of its queue (a copy that turns out stale is dropped when it is started).
    pub(crate) async fn start_remote_workflow_task(
        &self,
        task: Task,
        identity: &str,
        poller_key: Option<&str>,
        namespace_id: &str,
        queue: &str,
    ) -> Result<Option<PollWorkflowTaskQueueResponse>> {
        let req = wire::StartTask {
            task: Some(hint_of(&task)),
            identity: identity.to_string(),
            poller_key: poller_key.map(str::to_string),
            queue: queue.to_string(),
            poll: Vec::new(),
        };
        let started = self
            .start_remote(task, req, namespace_id, queue, QueueKind::Workflow)
            .await?;
        let Some(bytes) = started else {
            return Ok(None);
        };
        PollWorkflowTaskQueueResponse::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| Error::Internal(format!("malformed workflow task: {e}")))
    }

    /// Starts an activity attempt matched here (on its queue's owner) on its run's owner; as
    /// [`Engine::start_remote_workflow_task`].
    pub(crate) async fn start_remote_activity_task(
        &self,
        task: Task,
        poll: &PollActivityTaskQueueRequest,
        namespace_id: &str,
        queue: &str,
    ) -> Result<Option<PollActivityTaskQueueResponse>> {
        let req = wire::StartTask {
            task: Some(hint_of(&task)),
            identity: poll.identity.clone(),
            poller_key: None,
            queue: queue.to_string(),
            poll: poll.encode_to_vec(),
        };
        let started = self
            .start_remote(task, req, namespace_id, queue, QueueKind::Activity)
            .await?;
        let Some(bytes) = started else {
            return Ok(None);
        };
        PollActivityTaskQueueResponse::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| Error::Internal(format!("malformed activity task: {e}")))
    }

    /// `StartTask` on the run's owner, on a task of its own that puts `task` back at the front
    /// of its queue when the call fails. `None`: the task was stale.
    async fn start_remote(
        &self,
        task: Task,
        req: wire::StartTask,
        namespace_id: &str,
        queue: &str,
        kind: QueueKind,
    ) -> Result<Option<Vec<u8>>> {
        let Some(owner) = self.remote_shard(task.shard()) else {
            return Ok(None);
        };
        let me = self.clone();
        let (ns, q) = (namespace_id.to_string(), queue.to_string());
        tokio::spawn(async move {
            match me
                .call_engine::<wire::Started>(&owner, wire::START_TASK, &req)
                .await
            {
                Ok(s) => Ok(s.found.then_some(s.response)),
                Err(e) => {
                    me.inner.matching.push_front(&ns, &q, kind, task);
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| Error::Internal(format!("task start failed: {e}")))?
    }

    /// Starts a child on the member owning its workflow id; `Ok(run id)`, or the error a local
    /// start gives (AlreadyStarted, NamespaceNotFound).
    pub(crate) async fn start_child_remote(
        &self,
        owner: &PeerAddr,
        parent: &ExecutionState,
        initiated: i64,
        attrs: &StartChildWorkflowExecutionInitiatedEventAttributes,
        user_metadata: Option<&UserMetadata>,
    ) -> Result<String> {
        let req = wire::StartChild {
            parent_state: parent.encode_to_vec(),
            initiated,
            attributes: attrs.encode_to_vec(),
            user_metadata: user_metadata.map(Message::encode_to_vec),
        };
        let r: wire::ChildStarted = self.call_engine(owner, wire::START_CHILD, &req).await?;
        match r.outcome {
            1 => Ok(r.run_id),
            2 => Err(Error::AlreadyStarted {
                message: "child workflow already started".into(),
                start_request_id: String::new(),
                run_id: r.run_id,
            }),
            _ => Err(Error::NamespaceNotFound(attrs.namespace.clone())),
        }
    }

    /// Delivers a signal- or cancel-external request on the member owning its target; `Ok(false)`
    /// when the target does not exist.
    pub(crate) async fn deliver_external_remote(
        &self,
        owner: &PeerAddr,
        request: &ExternalRequestState,
        source: &ExecutionState,
        initiated: i64,
    ) -> Result<bool> {
        let req = wire::DeliverExternal {
            request: request.encode_to_vec(),
            initiated,
            source_workflow_id: source.workflow_id.clone(),
            source_run_id: source.run_id.clone(),
            identity: source.identity.clone(),
        };
        let r: wire::Delivered = self
            .call_engine(owner, wire::DELIVER_EXTERNAL, &req)
            .await?;
        Ok(r.ok)
    }

    /// Reports a closed child to its parent's owner.
    pub(crate) async fn notify_parent_remote(
        &self,
        owner: &PeerAddr,
        parent: &crate::state::ParentInfo,
        child_run_id: &str,
        close: &HistoryEvent,
    ) -> Result<()> {
        let req = wire::NotifyParent {
            parent_namespace_id: parent.namespace_id.clone(),
            parent_run_id: parent.run_id.clone(),
            initiated: parent.initiated_event_id,
            child_run_id: child_run_id.to_string(),
            close_event: close.encode_to_vec(),
        };
        let _: wire::Empty = self.call_engine(owner, wire::NOTIFY_PARENT, &req).await?;
        Ok(())
    }

    /// Asks every other member to re-arm its open runs (at this engine's start), retrying each
    /// until it answers: a member that still holds another view starts again itself, and
    /// re-arms then.
    pub(crate) async fn ask_members_to_rearm(&self) {
        self.tell_others(wire::REARM, None).await;
    }

    /// Sends `method` (an `Empty` call) to every other member at once, retrying each with a
    /// growing pause until it answers, or `attempts` times when given.
    async fn tell_others(&self, method: &str, attempts: Option<u32>) {
        let Some(t) = self.topology() else { return };
        let others: Vec<PeerAddr> = t
            .members
            .iter()
            .filter(|m| m.node != t.me)
            .cloned()
            .collect();
        let calls = others.iter().map(|m| async move {
            let mut backoff = Duration::from_millis(50);
            let mut tries = 0;
            while let Err(e) = self
                .call_engine::<wire::Empty>(m, method, &wire::Empty {})
                .await
            {
                tries += 1;
                if attempts.is_some_and(|n| tries >= n) {
                    tracing::warn!(%e, member = %m.node, "{method} to a member failed");
                    return;
                }
                tracing::debug!(%e, member = %m.node, "{method} to a member failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
        futures::future::join_all(calls).await;
    }

    /// Reports a versioned poller to the leader, which keeps the worker deployments.
    pub(crate) async fn note_poller_remote(
        &self,
        leader: &PeerAddr,
        namespace_id: &str,
        queue: &str,
        kind: QueueKind,
        opts: &WorkerDeploymentOptions,
    ) -> Result<()> {
        let req = wire::NotePoller {
            namespace_id: namespace_id.to_string(),
            queue: queue.to_string(),
            queue_kind: match kind {
                QueueKind::Workflow => 1,
                QueueKind::Activity => 2,
            },
            options: opts.encode_to_vec(),
        };
        let _: wire::Empty = self.call_engine(leader, wire::NOTE_POLLER, &req).await?;
        Ok(())
    }

    /// After the leader changed a worker deployment: every other member reads them again before
    /// the change is answered, so their queues route by it. A member that stays away for a few
    /// seconds holds another view by then and reads every deployment when it starts again;
    /// members also re-read them every few seconds.
    pub(crate) async fn deployments_changed(&self) {
        self.tell_others(wire::DEPLOYMENTS_CHANGED, Some(8)).await;
    }

    /// Starts a scheduled workflow on the member owning its id; returns the run id.
    pub(crate) async fn start_scheduled_remote(
        &self,
        to: &PeerAddr,
        req: &StartWorkflowExecutionRequest,
    ) -> Result<String> {
        let r: StartWorkflowExecutionResponse =
            self.call_engine(to, wire::START_SCHEDULED, req).await?;
        Ok(r.run_id)
    }

    /// Answers a call from another engine: `method` of [`PEER_SERVICE`] with its encoded
    /// request; returns the encoded answer.
    pub async fn serve_peer(&self, method: &str, body: &[u8]) -> Result<Vec<u8>> {
        match method {
            wire::ADD_TASK => {
                let r = wire::AddTask::decode(body).map_err(|e| corrupt("AddTask", e))?;
                if self.remote_queue(&r.namespace_id, &r.queue).is_some() {
                    return Err(Error::Unavailable(
                        "this process does not match that task queue; retry".into(),
                    ));
                }
                let task = task_of(r.task.unwrap_or_default())?;
                let kind = if r.queue_kind == 2 {
                    QueueKind::Activity
                } else {
                    QueueKind::Workflow
                };
                let route = route_of(r.route_kind, r.route_key);
                if r.front {
                    self.inner
                        .matching
                        .push_front(&r.namespace_id, &r.queue, kind, task);
                } else {
                    self.inner
                        .matching
                        .add_routed(&r.namespace_id, &r.queue, kind, task, route);
                }
                Ok(wire::Empty {}.encode_to_vec())
            }
            wire::START_TASK => {
                let r = wire::StartTask::decode(body).map_err(|e| corrupt("StartTask", e))?;
                let task = task_of(r.task.unwrap_or_default())?;
                if !self.owns_shard(task.shard()) {
                    return Err(Error::Unavailable(format!(
                        "shard {} is not owned by this process; retry",
                        task.shard()
                    )));
                }
                let started = match task {
                    Task::Workflow {
                        run, dispatch_seq, ..
                    } => self
                        .start_workflow_task(
                            run,
                            dispatch_seq,
                            &r.identity,
                            r.poller_key.as_deref(),
                        )
                        .await
                        .map(|o| o.map(|t| t.encode_to_vec())),
                    Task::Query { run, query_id, .. } => self
                        .query_task(run, query_id, &r.queue)
                        .await
                        .map(|o| o.map(|t| t.encode_to_vec())),
                    Task::Activity {
                        run,
                        scheduled_event_id,
                        attempt,
                        ..
                    } => {
                        let poll = PollActivityTaskQueueRequest::decode(r.poll.as_slice())
                            .map_err(|e| corrupt("poll request", e))?;
                        self.start_activity_task(run, scheduled_event_id, attempt, &poll, &r.queue)
                            .await
                            .map(|o| o.map(|t| t.encode_to_vec()))
                    }
                };
                let started = match started {
                    Ok(s) => s,
                    Err(Error::NotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                Ok(wire::Started {
                    found: started.is_some(),
                    response: started.unwrap_or_default(),
                }
                .encode_to_vec())
            }
            wire::START_CHILD => {
                let r = wire::StartChild::decode(body).map_err(|e| corrupt("StartChild", e))?;
                let parent = ExecutionState::decode(r.parent_state.as_slice())
                    .map_err(|e| corrupt("parent state", e))?;
                let attrs = StartChildWorkflowExecutionInitiatedEventAttributes::decode(
                    r.attributes.as_slice(),
                )
                .map_err(|e| corrupt("child attributes", e))?;
                let meta = match r.user_metadata {
                    Some(b) => Some(
                        UserMetadata::decode(b.as_slice())
                            .map_err(|e| corrupt("user metadata", e))?,
                    ),
                    None => None,
                };
                let (outcome, run_id) = match self
                    .start_child_here(attrs, &parent, r.initiated, meta)
                    .await
                {
                    Ok(run_id) => (1, run_id),
                    Err(Error::AlreadyStarted { run_id, .. }) => (2, run_id),
                    Err(Error::NamespaceNotFound(_)) => (3, String::new()),
                    Err(e) => return Err(e),
                };
                Ok(wire::ChildStarted { outcome, run_id }.encode_to_vec())
            }
            wire::DELIVER_EXTERNAL => {
                let r = wire::DeliverExternal::decode(body)
                    .map_err(|e| corrupt("DeliverExternal", e))?;
                let request = ExternalRequestState::decode(r.request.as_slice())
                    .map_err(|e| corrupt("external request", e))?;
                let ok = self
                    .deliver_here(
                        request,
                        r.initiated,
                        r.source_workflow_id,
                        r.source_run_id,
                        r.identity,
                    )
                    .await?;
                Ok(wire::Delivered { ok }.encode_to_vec())
            }
            wire::NOTIFY_PARENT => {
                let r = wire::NotifyParent::decode(body).map_err(|e| corrupt("NotifyParent", e))?;
                let close = HistoryEvent::decode(r.close_event.as_slice())
                    .map_err(|e| corrupt("close event", e))?;
                let Some(attrs) = close.attributes else {
                    return Err(Error::InvalidArgument(
                        "close event without attributes".into(),
                    ));
                };
                self.child_closed_here(
                    RunKey {
                        namespace_id: r.parent_namespace_id,
                        run_id: r.parent_run_id,
                    },
                    r.initiated,
                    r.child_run_id,
                    attrs,
                )
                .await?;
                Ok(wire::Empty {}.encode_to_vec())
            }
            wire::START_SCHEDULED => {
                let r = StartWorkflowExecutionRequest::decode(body)
                    .map_err(|e| corrupt("StartScheduled", e))?;
                if self.workflow_owner(&r.namespace, &r.workflow_id).is_some() {
                    return Err(Error::Unavailable(
                        "the workflow id is not owned by this process; retry".into(),
                    ));
                }
                let run_id = self.start_for_schedule(r).await?;
                Ok(StartWorkflowExecutionResponse {
                    run_id,
                    started: true,
                    ..Default::default()
                }
                .encode_to_vec())
            }
            wire::NOTE_POLLER => {
                let r = wire::NotePoller::decode(body).map_err(|e| corrupt("NotePoller", e))?;
                if !self.is_leader() {
                    return Err(Error::Unavailable(
                        "this process does not keep the worker deployments; retry".into(),
                    ));
                }
                let opts = WorkerDeploymentOptions::decode(r.options.as_slice())
                    .map_err(|e| corrupt("deployment options", e))?;
                let kind = if r.queue_kind == 2 {
                    QueueKind::Activity
                } else {
                    QueueKind::Workflow
                };
                self.note_poller(&r.namespace_id, &r.queue, kind, Some(&opts))
                    .await?;
                Ok(wire::Empty {}.encode_to_vec())
            }
            wire::REARM => {
                let me = self.clone();
                tokio::spawn(async move { me.requeue_open_tasks().await });
                Ok(wire::Empty {}.encode_to_vec())
            }
            wire::DEPLOYMENTS_CHANGED => {
                self.reload_deployments().await?;
                Ok(wire::Empty {}.encode_to_vec())
            }
            m => Err(Error::InvalidArgument(format!(
                "unknown method {PEER_SERVICE}/{m}"
            ))),
        }
    }
}
