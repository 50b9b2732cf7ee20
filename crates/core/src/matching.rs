//! Matching: in-memory task queues that hand task references to waiting long polls without
//! touching disk. The durable truth lives in each run's mutable state; queues are rebuilt from it
//! after a restart, and a handed-out reference is re-validated when the poller starts it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// Identifies a run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey {
    pub namespace_id: String,
    pub run_id: String,
}

/// What sits in a queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// The run's workflow task, valid while its `dispatch_seq` is current.
    Workflow { run: RunKey, dispatch_seq: i64 },
    /// A query task for a run.
    Query { run: RunKey, query_id: u64 },
    /// An activity attempt.
    Activity {
        run: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
}

/// Workflow or activity queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueKind {
    Workflow,
    Activity,
}

type QueueKey = (String, String, QueueKind);

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    pollers: VecDeque<(u64, oneshot::Sender<Task>)>,
    last_poll: Option<Instant>,
}

/// All task queues of the process.
#[derive(Default)]
pub struct Matching {
    queues: Mutex<HashMap<QueueKey, Queue>>,
    next_poller: Mutex<u64>,
}

/// A long poll waiting on a queue; dropping it unregisters the poller.
pub struct PollTicket<'a> {
    matching: &'a Matching,
    key: QueueKey,
    id: u64,
    rx: Option<oneshot::Receiver<Task>>,
}

impl PollTicket<'_> {
    /// Waits up to `wait` for a task.
    pub async fn wait(mut self, wait: Duration) -> Option<Task> {
        let rx = self.rx.as_mut()?;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(t)) => {
                self.rx = None;
                Some(t)
            }
            // A task that raced with the timeout is put back by `Drop`.
            _ => None,
        }
    }
}

impl Drop for PollTicket<'_> {
    fn drop(&mut self) {
        let mut qs = self.matching.queues.lock();
        if let Some(q) = qs.get_mut(&self.key) {
            q.pollers.retain(|(id, _)| *id != self.id);
        }
        // A task sent to us but never received goes back to the front of the queue.
        if let Some(mut rx) = self.rx.take()
            && let Ok(t) = rx.try_recv()
        {
            qs.entry(self.key.clone()).or_default().tasks.push_front(t);
        }
    }
}

impl Matching {
    /// Offers a task: handed to the oldest waiting poller, or queued at the back.
    pub fn add(&self, namespace_id: &str, queue: &str, kind: QueueKind, task: Task) {
        self.offer(namespace_id, queue, kind, task, false)
    }

    fn offer(&self, namespace_id: &str, queue: &str, kind: QueueKind, task: Task, front: bool) {
        let mut qs = self.queues.lock();
        let q = qs
            .entry((namespace_id.to_string(), queue.to_string(), kind))
            .or_default();
        let mut task = task;
        while let Some((_, tx)) = q.pollers.pop_front() {
            match tx.send(task) {
                Ok(()) => return,
                Err(t) => task = t,
            }
        }
        if front {
            q.tasks.push_front(task);
        } else {
            q.tasks.push_back(task);
        }
    }

    /// Takes a queued task at once, or registers a poller.
    pub fn poll(
        &self,
        namespace_id: &str,
        queue: &str,
        kind: QueueKind,
    ) -> Result<Task, PollTicket<'_>> {
        let key = (namespace_id.to_string(), queue.to_string(), kind);
        let mut qs = self.queues.lock();
        let q = qs.entry(key.clone()).or_default();
        q.last_poll = Some(Instant::now());
        if let Some(t) = q.tasks.pop_front() {
            return Ok(t);
        }
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut n = self.next_poller.lock();
            *n += 1;
            *n
        };
        q.pollers.push_back((id, tx));
        Err(PollTicket {
            matching: self,
            key,
            id,
            rx: Some(rx),
        })
    }

    /// Puts a task back at the front (a poller could not use it after all).
    pub fn push_front(&self, namespace_id: &str, queue: &str, kind: QueueKind, task: Task) {
        self.offer(namespace_id, queue, kind, task, true)
    }

    /// Whether someone polled this queue within `within`, or is polling it now.
    pub fn recently_polled(&self, namespace_id: &str, queue: &str, within: Duration) -> bool {
        let qs = self.queues.lock();
        qs.get(&(
            namespace_id.to_string(),
            queue.to_string(),
            QueueKind::Workflow,
        ))
        .is_some_and(|q| !q.pollers.is_empty() || q.last_poll.is_some_and(|t| t.elapsed() < within))
    }

    /// Removes a queue, returning its tasks; its waiting pollers get nothing.
    pub fn drop_queue(&self, namespace_id: &str, queue: &str, kind: QueueKind) -> Vec<Task> {
        let mut qs = self.queues.lock();
        qs.remove(&(namespace_id.to_string(), queue.to_string(), kind))
            .map(|q| q.tasks.into_iter().collect())
            .unwrap_or_default()
    }

    /// Number of queued (not yet polled) tasks.
    pub fn backlog(&self, namespace_id: &str, queue: &str, kind: QueueKind) -> usize {
        let qs = self.queues.lock();
        qs.get(&(namespace_id.to_string(), queue.to_string(), kind))
            .map(|q| q.tasks.len())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(n: i64) -> Task {
        Task::Workflow {
            run: RunKey {
                namespace_id: "ns".into(),
                run_id: "r".into(),
            },
            dispatch_seq: n,
        }
    }

    #[tokio::test]
    async fn fifo_and_handoff_to_waiting_poller() {
        let m = Matching::default();
        m.add("ns", "q", QueueKind::Workflow, wf(1));
        m.add("ns", "q", QueueKind::Workflow, wf(2));
        assert_eq!(m.poll("ns", "q", QueueKind::Workflow).ok(), Some(wf(1)));
        assert_eq!(m.poll("ns", "q", QueueKind::Workflow).ok(), Some(wf(2)));
        let ticket = m.poll("ns", "q", QueueKind::Workflow).err().unwrap();
        m.add("ns", "q", QueueKind::Workflow, wf(3));
        assert_eq!(ticket.wait(Duration::from_secs(1)).await, Some(wf(3)));
        assert_eq!(m.backlog("ns", "q", QueueKind::Workflow), 0);
    }

    #[tokio::test]
    async fn dropped_poller_does_not_lose_a_task() {
        let m = Matching::default();
        let ticket = m.poll("ns", "q", QueueKind::Workflow).err().unwrap();
        m.add("ns", "q", QueueKind::Workflow, wf(7));
        drop(ticket); // the client went away after the task was handed over
        assert_eq!(m.poll("ns", "q", QueueKind::Workflow).ok(), Some(wf(7)));
    }

    #[tokio::test]
    async fn poll_times_out_empty() {
        let m = Matching::default();
        let ticket = m.poll("ns", "q", QueueKind::Activity).err().unwrap();
        assert_eq!(ticket.wait(Duration::from_millis(20)).await, None);
        m.add("ns", "q", QueueKind::Activity, wf(1));
        assert_eq!(m.backlog("ns", "q", QueueKind::Activity), 1);
    }
}
