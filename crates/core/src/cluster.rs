//! Where work is served in a cluster of server processes on one database: the [`Topology`]
//! (the live members, which of them leads, the shard count) decides which process owns each
//! shard and matches each task queue (rendezvous hashing, so a member that joins or leaves moves
//! only its share), and the [`Peers`] transport carries the calls between engines. Every process
//! runs an engine that owns its shards' runs and matches its task queues; the leader also runs
//! the cluster-wide work (schedules, batch jobs, worker deployments, namespace changes).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// A member process, as others reach it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddr {
    /// Its `--node-name`.
    pub node: String,
    /// Its gRPC address (`host:port`).
    pub address: String,
}

/// One view of the cluster. An engine is started with one and keeps it: when the members, the
/// leader or the shard count change, every process starts its engine again with the new view
/// (its [`epoch`](Topology::epoch) differs, and calls between views are refused as retryable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// This process's node name.
    pub me: String,
    /// The live members, sorted by node name; `me` is one of them.
    pub members: Vec<PeerAddr>,
    /// Node name of the leader: it runs the cluster-wide work.
    pub leader: String,
    pub shard_count: i32,
}

/// FNV-1a over the parts, then a 64-bit finaliser (splitmix64) so that nearby inputs spread.
pub(crate) fn mix_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^ (h >> 31)
}

impl Topology {
    /// A process alone: it owns every shard and leads.
    pub fn alone(me: &str, address: &str, shard_count: i32) -> Topology {
        Topology {
            me: me.to_string(),
            members: vec![PeerAddr {
                node: me.to_string(),
                address: address.to_string(),
            }],
            leader: me.to_string(),
            shard_count,
        }
    }

    /// Identifies this view; two processes agree on every owner exactly when their epochs match.
    pub fn epoch(&self) -> u64 {
        let mut parts: Vec<&str> = vec![&self.leader];
        let count = self.shard_count.to_string();
        parts.push(&count);
        for m in &self.members {
            parts.push(&m.node);
            parts.push(&m.address);
        }
        mix_hash(&parts)
    }

    /// The member owning `shard`: the one whose hash with the shard is highest.
    pub fn shard_owner(&self, shard: i32) -> &PeerAddr {
        let s = shard.to_string();
        self.members
            .iter()
            .max_by_key(|m| (mix_hash(&[&m.node, &s]), &m.node))
            .expect("a topology has at least one member")
    }

    /// The member matching the task queue `queue` of the namespace with id `namespace_id` (its
    /// workflow and activity queues, normal or sticky, by name).
    pub fn queue_owner(&self, namespace_id: &str, queue: &str) -> &PeerAddr {
        self.members
            .iter()
            .max_by_key(|m| (mix_hash(&[&m.node, namespace_id, queue]), &m.node))
            .expect("a topology has at least one member")
    }

    /// Shards this process owns.
    pub fn owned_shards(&self) -> Vec<i32> {
        (0..self.shard_count)
            .filter(|s| self.shard_owner(*s).node == self.me)
            .collect()
    }

    pub fn is_leader(&self) -> bool {
        self.leader == self.me
    }

    /// The leader's address, if it is a member.
    pub fn leader_addr(&self) -> Option<&PeerAddr> {
        self.members.iter().find(|m| m.node == self.leader)
    }
}

/// A call in flight to another engine.
pub type PeerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, Error>> + Send>>;

/// The transport between engines (gRPC in `perdure-server`). A call names a method of
/// [`PEER_SERVICE`] (or a public RPC's full path), carries an encoded protobuf message and
/// returns the encoded answer; the other side's error comes back as [`Error::Peer`], or
/// [`Error::Unavailable`] when it cannot be reached or holds another view of the cluster.
pub trait Peers: Send + Sync {
    fn call(&self, to: &PeerAddr, path: &str, body: Vec<u8>, timeout: Duration) -> PeerFuture;
}

/// A cluster member's engine settings: its view and its transport.
#[derive(Clone)]
pub struct Membership {
    pub topology: Topology,
    pub peers: Arc<dyn Peers>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("topology", &self.topology)
            .finish_non_exhaustive()
    }
}

/// The gRPC service name of the calls between engines.
pub const PEER_SERVICE: &str = "perdure.peer.v1.Peer";

/// The calls between engines (methods of [`PEER_SERVICE`]).
pub mod wire {
    /// A task for its queue's owner (from the engine owning the task's run).
    pub const ADD_TASK: &str = "AddTask";
    /// A queue's owner matched a task to a poller: start it on the run's owner.
    pub const START_TASK: &str = "StartTask";
    /// A parent's owner asks the child's owner to start the child.
    pub const START_CHILD: &str = "StartChild";
    /// A signal or cancel request to a run of another owner.
    pub const DELIVER_EXTERNAL: &str = "DeliverExternal";
    /// A closed child reports to its parent's owner.
    pub const NOTIFY_PARENT: &str = "NotifyParent";
    /// A queue owner reports a versioned poller to the leader, which keeps the worker
    /// deployments (`NotePoller`).
    pub const NOTE_POLLER: &str = "NotePoller";
    /// A member's engine (re)started: re-arm your open runs, so the tasks you had pushed to its
    /// queues are pushed again (`Empty` both ways).
    pub const REARM: &str = "Rearm";
    /// The leader changed a worker deployment: read them again (`Empty` both ways).
    pub const DEPLOYMENTS_CHANGED: &str = "DeploymentsChanged";
    /// The leader's scheduler starts a workflow on the owner of its id (a
    /// StartWorkflowExecutionRequest carrying the scheduler's own search attributes; the
    /// answer is a StartWorkflowExecutionResponse).
    pub const START_SCHEDULED: &str = "StartScheduled";

    /// A queued task, as matching holds it.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TaskHint {
        /// 1 workflow task, 2 query task, 3 activity attempt.
        #[prost(int32, tag = "1")]
        pub kind: i32,
        #[prost(string, tag = "2")]
        pub namespace_id: String,
        #[prost(string, tag = "3")]
        pub run_id: String,
        #[prost(int32, tag = "4")]
        pub shard: i32,
        #[prost(int64, tag = "5")]
        pub dispatch_seq: i64,
        #[prost(uint64, tag = "6")]
        pub query_id: u64,
        #[prost(int64, tag = "7")]
        pub scheduled_event_id: i64,
        #[prost(int32, tag = "8")]
        pub attempt: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AddTask {
        /// The namespace id the queue belongs to.
        #[prost(string, tag = "1")]
        pub namespace_id: String,
        #[prost(string, tag = "2")]
        pub queue: String,
        /// 1 workflow, 2 activity.
        #[prost(int32, tag = "3")]
        pub queue_kind: i32,
        #[prost(message, optional, tag = "4")]
        pub task: Option<TaskHint>,
        /// 1 auto (key), 2 pinned (key), 3 any.
        #[prost(int32, tag = "5")]
        pub route_kind: i32,
        #[prost(string, tag = "6")]
        pub route_key: String,
        /// Put it first in line (a task a poller could not take).
        #[prost(bool, tag = "7")]
        pub front: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NotePoller {
        #[prost(string, tag = "1")]
        pub namespace_id: String,
        #[prost(string, tag = "2")]
        pub queue: String,
        /// 1 workflow, 2 activity.
        #[prost(int32, tag = "3")]
        pub queue_kind: i32,
        /// The poll's WorkerDeploymentOptions, encoded.
        #[prost(bytes = "vec", tag = "4")]
        pub options: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StartTask {
        #[prost(message, optional, tag = "1")]
        pub task: Option<TaskHint>,
        #[prost(string, tag = "2")]
        pub identity: String,
        /// The poller's version key (worker versioning), when it gave one.
        #[prost(string, optional, tag = "3")]
        pub poller_key: Option<String>,
        /// The queue the poller polled (query tasks report it).
        #[prost(string, tag = "4")]
        pub queue: String,
        /// The poll request (an activity poll's response is built from it), encoded.
        #[prost(bytes = "vec", tag = "5")]
        pub poll: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Started {
        /// False: the task was stale (already started, or its run moved on).
        #[prost(bool, tag = "1")]
        pub found: bool,
        /// The poll response, encoded.
        #[prost(bytes = "vec", tag = "2")]
        pub response: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StartChild {
        /// The parent's state, encoded (the child's start reads its namespace, ids and
        /// inherited settings from it).
        #[prost(bytes = "vec", tag = "1")]
        pub parent_state: Vec<u8>,
        #[prost(int64, tag = "2")]
        pub initiated: i64,
        /// StartChildWorkflowExecutionInitiatedEventAttributes, encoded.
        #[prost(bytes = "vec", tag = "3")]
        pub attributes: Vec<u8>,
        /// The child's user metadata, encoded, if any.
        #[prost(bytes = "vec", optional, tag = "4")]
        pub user_metadata: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ChildStarted {
        /// 1 started, 2 already started, 3 namespace not found.
        #[prost(int32, tag = "1")]
        pub outcome: i32,
        #[prost(string, tag = "2")]
        pub run_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DeliverExternal {
        /// The request (`ExternalRequestState`), encoded.
        #[prost(bytes = "vec", tag = "1")]
        pub request: Vec<u8>,
        #[prost(int64, tag = "2")]
        pub initiated: i64,
        #[prost(string, tag = "3")]
        pub source_workflow_id: String,
        #[prost(string, tag = "4")]
        pub source_run_id: String,
        #[prost(string, tag = "5")]
        pub identity: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Delivered {
        /// False: the target does not exist (or refused it for good).
        #[prost(bool, tag = "1")]
        pub ok: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NotifyParent {
        #[prost(string, tag = "1")]
        pub parent_namespace_id: String,
        #[prost(string, tag = "2")]
        pub parent_run_id: String,
        #[prost(int64, tag = "3")]
        pub initiated: i64,
        #[prost(string, tag = "4")]
        pub child_run_id: String,
        /// The child's close event, encoded.
        #[prost(bytes = "vec", tag = "5")]
        pub close_event: Vec<u8>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<PeerAddr> {
        (0..n)
            .map(|i| PeerAddr {
                node: format!("n{i}"),
                address: format!("127.0.0.1:{}", 7000 + i),
            })
            .collect()
    }

    #[test]
    fn shards_spread_and_move_only_from_a_leaving_member() {
        let t = Topology {
            me: "n0".into(),
            members: members(3),
            leader: "n0".into(),
            shard_count: 64,
        };
        let mut counts = std::collections::HashMap::new();
        for s in 0..64 {
            *counts.entry(t.shard_owner(s).node.clone()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert!(counts.values().all(|c| *c >= 10), "{counts:?}");
        // n2 leaves: only its shards move.
        let mut two = t.clone();
        two.members.truncate(2);
        for s in 0..64 {
            if t.shard_owner(s).node != "n2" {
                assert_eq!(t.shard_owner(s), two.shard_owner(s));
            }
        }
        assert_ne!(t.epoch(), two.epoch());
        let queues: std::collections::HashSet<_> = (0..64)
            .map(|i| t.queue_owner("ns", &format!("q{i}")).node.clone())
            .collect();
        assert_eq!(queues.len(), 3, "task queues spread too");
        let alone = Topology::alone("n0", "127.0.0.1:7000", 16);
        assert_eq!(alone.owned_shards(), (0..16).collect::<Vec<_>>());
        assert!(alone.is_leader());
    }
}
