//! Worker-facing operations: long polls for workflow, query and activity tasks, and the
//! completions, failures and heartbeats that come back.

use std::time::{Duration, Instant};

use perdure_proto::api::common::v1::{Payloads, WorkflowExecution, WorkflowType};
use perdure_proto::api::enums::v1::{
    QueryResultType, WorkflowExecutionStatus as Status, WorkflowTaskFailedCause as Cause,
};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::{History, HistoryEvent};
use perdure_proto::api::query::v1::WorkflowQuery;
use perdure_proto::api::workflowservice::v1::*;

use super::history::HistoryToken;
use super::metrics;
use super::{Engine, QueryOutcome, RunData, outcome_of};
use crate::clock::convert::ts;
use crate::error::{Error, Result};
use crate::matching::{Poller, QueueKind, RunKey, Task};
use crate::mutable::{Rejected, StartedTask, normal_queue};
use crate::token::{TaskToken, TokenKind};
use prost::Message as _;

/// Leave this much of the caller's deadline unused, so an empty answer arrives in time.
const POLL_MARGIN: Duration = Duration::from_millis(1000);
/// Never hold a poll longer than this.
const MAX_POLL: Duration = Duration::from_secs(60);
/// Dispatch rate reported for a poller that sets no limit of its own (Temporal's default).
pub(crate) const DEFAULT_POLLER_RATE: f64 = 100_000.0;

/// How long a poll waits before trying a task again whose run's owner was briefly away.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

fn task_not_found() -> Error {
    Error::NotFound("Workflow task not found.".into())
}

fn activity_not_found() -> Error {
    Error::NotFound(
        "invalid activityID or activity already timed out or invoking workflow is completed".into(),
    )
}

/// Events in the first page of a workflow task's history (Temporal's default page size).
const WORKFLOW_TASK_HISTORY_PAGE: usize = 256;

fn poll_budget(deadline: Instant) -> Option<Instant> {
    let until = deadline.checked_sub(POLL_MARGIN)?;
    Some(until.min(Instant::now() + MAX_POLL))
}

/// How an activity is addressed: by token or by id.
enum ActivityRef {
    Token(TaskToken),
    Id { activity_id: String },
}

impl Engine {
    async fn next_task(
        &self,
        ns_id: &str,
        queue: &str,
        kind: QueueKind,
        poller: &Poller,
        until: Instant,
    ) -> Option<Task> {
        match self.inner.matching.poll(ns_id, queue, kind, poller) {
            Ok(t) => Some(t),
            Err(ticket) => {
                let wait = until.saturating_duration_since(Instant::now());
                ticket.wait(wait).await
            }
        }
    }

    /// PollWorkflowTaskQueue: waits for a workflow or query task until shortly before `deadline`.
    pub async fn poll_workflow_task(
        &self,
        req: PollWorkflowTaskQueueRequest,
        deadline: Instant,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        let ns = self.namespace(&req.namespace)?;
        let queue = req
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        if queue.is_empty() {
            return Err(Error::InvalidArgument(
                "TaskQueue is not set on request.".into(),
            ));
        }
        let Some(until) = poll_budget(deadline) else {
            return Ok(Default::default());
        };
        let poller = Poller {
            identity: req.identity.clone(),
            rate_per_second: DEFAULT_POLLER_RATE,
            worker_version_capabilities: req.worker_version_capabilities.clone(),
            deployment_options: req.deployment_options.clone(),
        };
        let sticky_poll = req
            .task_queue
            .as_ref()
            .is_some_and(|q| q.kind == perdure_proto::api::enums::v1::TaskQueueKind::Sticky as i32);
        if !sticky_poll {
            self.note_poller(
                &ns.id,
                &queue,
                QueueKind::Workflow,
                req.deployment_options.as_ref(),
            )
            .await?;
        }
        let my_key = crate::matching::poller_key(&poller);
        loop {
            let Some(task) = self
                .next_task(&ns.id, &queue, QueueKind::Workflow, &poller, until)
                .await
            else {
                return Ok(Default::default());
            };
            if Instant::now() >= until {
                self.inner
                    .matching
                    .push_front(&ns.id, &queue, QueueKind::Workflow, task);
                return Ok(Default::default());
            }
            let r = match task {
                Task::Workflow { .. } | Task::Query { .. } if !self.owns_shard(task.shard()) => {
                    self.start_remote_workflow_task(
                        task,
                        &req.identity,
                        Some(&my_key),
                        &ns.id,
                        &queue,
                    )
                    .await
                }
                Task::Workflow {
                    run, dispatch_seq, ..
                } => {
                    self.start_workflow_task(run, dispatch_seq, &req.identity, Some(&my_key))
                        .await
                }
                Task::Query { run, query_id, .. } => self.query_task(run, query_id, &queue).await,
                Task::Activity { .. } => Ok(None),
            };
            match r {
                Ok(Some(resp)) => return Ok(metrics::workflow_task_started(&ns.name, resp)),
                Ok(None) | Err(Error::NotFound(_)) => continue,
                Err(e) if e.is_retryable() => {
                    // The run's owner is briefly away: the task went back to the queue.
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Eager workflow start: the poll response of the first workflow task of a run this client
    /// has just started, which the start's own commit marked started for it (so no poller can
    /// take it first).
    pub async fn eager_workflow_task(
        &self,
        namespace: &str,
        run_id: &str,
        started: StartedTask,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        let ns = self.namespace(namespace)?;
        let run = RunKey {
            namespace_id: ns.id.clone(),
            run_id: run_id.to_string(),
        };
        let entry = self.entry(&run).await?;
        let mut d = entry.data.lock().await;
        let seq = d
            .state
            .wft
            .as_ref()
            .map(|w| w.dispatch_seq)
            .unwrap_or_default();
        self.workflow_task_response(&mut d, started, seq).await
    }

    pub(crate) async fn start_workflow_task(
        &self,
        run: RunKey,
        dispatch_seq: i64,
        identity: &str,
        poller_key: Option<&str>,
    ) -> Result<Option<PollWorkflowTaskQueueResponse>> {
        let identity = identity.to_string();
        let poller_key = poller_key.map(str::to_string);
        let me = self.clone();
        let entry = self.entry(&run).await?;
        // Start the task in one transition, then build the response under the same lock.
        let h = tokio::spawn(async move {
            let mut d = entry.data.lock().await;
            let valid = d.state.status == Status::Running as i32
                && d.state
                    .wft
                    .as_ref()
                    .is_some_and(|w| w.dispatch_seq == dispatch_seq && w.started_event_id == 0);
            if !valid || d.extra.evicted {
                return Ok(None);
            }
            // A task that reached another version's poller (one put back without its route)
            // goes where it belongs.
            if let Some(k) = &poller_key
                && !d.state.wft.as_ref().is_some_and(|w| w.sticky)
                && !me.may_take_workflow_task(&d.state, k)
            {
                me.add_task(
                    &d.state.namespace_id,
                    &d.state.task_queue,
                    QueueKind::Workflow,
                    Task::Workflow {
                        shard: me.shard_of(&d.state.namespace_id, &d.state.workflow_id),
                        run: run.clone(),
                        dispatch_seq,
                    },
                    me.workflow_route(&d.state),
                );
                return Ok(None);
            }
            let request_id = uuid::Uuid::new_v4().to_string();
            let started = me
                .transition(&run, &entry, &mut d, |tx, _| {
                    Ok(tx.start_wft(&request_id, &identity))
                })
                .await?;
            me.workflow_task_response(&mut d, started, dispatch_seq)
                .await
                .map(Some)
        });
        h.await.map_err(|e| Error::Internal(e.to_string()))?
    }

    /// The poll response of a workflow task just started (`started`): its history's first
    /// page, the queries that ride along, and its token.
    async fn workflow_task_response(
        &self,
        d: &mut RunData,
        started: StartedTask,
        dispatch_seq: i64,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        let state = &d.state;
        let sticky = state.wft.as_ref().is_some_and(|w| w.sticky);
        let from = if sticky {
            state.last_completed_wft_started_id + 1
        } else {
            1
        };
        let (events, next_page_token) = self
            .history_first_page(d, from, &started.transient_events)
            .await?;
        // Queries waiting for this task ride along with it.
        let mut queries = std::collections::HashMap::new();
        for (id, q) in d.extra.queries.iter_mut() {
            if !q.dispatched && q.attached_to.is_none() {
                q.attached_to = Some(dispatch_seq);
                queries.insert(id.to_string(), q.query.clone());
            }
        }
        let state = &d.state;
        let w = state.wft.as_ref().unwrap();
        let mut token = TaskToken::new(
            TokenKind::Workflow,
            &state.namespace_id,
            &state.workflow_id,
            &state.run_id,
        );
        token.scheduled_event_id = started.scheduled_event_id;
        token.started_event_id = started.started_event_id;
        token.attempt = started.attempt;
        token.dispatch_seq = dispatch_seq;
        Ok(PollWorkflowTaskQueueResponse {
            task_token: token.encode(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: state.workflow_id.clone(),
                run_id: state.run_id.clone(),
            }),
            workflow_type: Some(WorkflowType {
                name: state.workflow_type.clone(),
            }),
            previous_started_event_id: state.last_completed_wft_started_id,
            started_event_id: started.started_event_id,
            attempt: started.attempt,
            history: Some(History { events }),
            next_page_token,
            workflow_execution_task_queue: Some(normal_queue(&state.task_queue)),
            scheduled_time: w.scheduled_time,
            started_time: w.started_time,
            queries,
            messages: started.messages,
            ..Default::default()
        })
    }

    /// The first page of the history a workflow or query task carries (from `from`); the rest
    /// is fetched with GetWorkflowExecutionHistory and the returned token, which pins the
    /// history to what the task saw and carries its transient events for the last page.
    async fn history_first_page(
        &self,
        d: &RunData,
        from: i64,
        transient: &[HistoryEvent],
    ) -> Result<(Vec<HistoryEvent>, Vec<u8>)> {
        let last = d.state.next_event_id - 1;
        let mut events = self
            .history_range(d, from, last, WORKFLOW_TASK_HISTORY_PAGE)
            .await?;
        let next = from.max(1) + events.len() as i64;
        if next > last {
            events.extend(transient.iter().cloned());
            return Ok((events, Vec::new()));
        }
        let token = HistoryToken {
            run_id: d.state.run_id.clone(),
            next_event_id: next,
            last_event_id: last,
            transient: History {
                events: transient.to_vec(),
            }
            .encode_to_vec(),
        };
        Ok((events, token.encode_to_vec()))
    }

    pub(crate) async fn query_task(
        &self,
        run: RunKey,
        query_id: u64,
        queue: &str,
    ) -> Result<Option<PollWorkflowTaskQueueResponse>> {
        let entry = self.entry(&run).await?;
        let d = entry.data.lock().await;
        let Some(q) = d.extra.queries.get(&query_id) else {
            return Ok(None);
        };
        if q.tx.is_none() {
            return Ok(None);
        }
        let query: WorkflowQuery = q.query.clone();
        let sticky = queue != d.state.task_queue;
        let (events, next_page_token) = if sticky {
            (vec![], vec![])
        } else {
            self.history_first_page(&d, 1, &[]).await?
        };
        let state = &d.state;
        let mut token = TaskToken::new(
            TokenKind::Query,
            &state.namespace_id,
            &state.workflow_id,
            &state.run_id,
        );
        token.query_id = query_id;
        Ok(Some(PollWorkflowTaskQueueResponse {
            task_token: token.encode(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: state.workflow_id.clone(),
                run_id: state.run_id.clone(),
            }),
            workflow_type: Some(WorkflowType {
                name: state.workflow_type.clone(),
            }),
            previous_started_event_id: state.last_completed_wft_started_id,
            started_event_id: 0,
            attempt: 1,
            history: Some(History { events }),
            next_page_token,
            query: Some(query),
            workflow_execution_task_queue: Some(normal_queue(&state.task_queue)),
            scheduled_time: Some(ts(self.inner.clock.now())),
            started_time: Some(ts(self.inner.clock.now())),
            ..Default::default()
        }))
    }

    /// Decodes a task token of `kind` and checks it belongs to the request's namespace.
    fn token_in(&self, namespace: &str, bytes: &[u8], kind: TokenKind) -> Result<TaskToken> {
        let token = TaskToken::decode_kind(bytes, kind)?;
        if !namespace.is_empty()
            && self.namespace(namespace)?.id
                != super::standalone::namespace_id_of_record(&token.namespace_id)
        {
            return Err(Error::InvalidArgument(
                "Operation requested with a token from a different namespace.".into(),
            ));
        }
        Ok(token)
    }

    fn wft_key(&self, token: &TaskToken) -> RunKey {
        RunKey {
            namespace_id: token.namespace_id.clone(),
            run_id: token.run_id.clone(),
        }
    }

    /// RespondWorkflowTaskCompleted.
    pub async fn complete_workflow_task(
        &self,
        req: RespondWorkflowTaskCompletedRequest,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let token = self.token_in(&req.namespace, &req.task_token, TokenKind::Workflow)?;
        let ns = self
            .namespace_by_id(&token.namespace_id)
            .ok_or_else(|| Error::NamespaceNotFound(req.namespace.clone()))?;
        // Temporal's frontend rejects these before the task is touched.
        if req.messages.iter().any(|m| m.body.is_none()) {
            return Err(Error::InvalidArgument("nil message body".into()));
        }
        let key = self.wft_key(&token);
        let rejected = self
            .mutate(key, move |tx, extra| {
                let valid = tx.is_running()
                    && tx.state.wft.as_ref().is_some_and(|w| {
                        w.dispatch_seq == token.dispatch_seq
                            && w.started_event_id == token.started_event_id
                            && w.started_event_id != 0
                    });
                if !valid {
                    return Err(task_not_found());
                }
                let seq = token.dispatch_seq;
                let r = tx.complete_wft(&req, &|n| ns.sa_type(n));
                // Attached queries: answered ones resolve, the rest go out as query tasks.
                for (id, q) in extra.queries.iter_mut() {
                    if q.attached_to != Some(seq) {
                        continue;
                    }
                    match req.query_results.get(&id.to_string()) {
                        Some(res) => q.resolve(outcome_of(res.clone())),
                        None => q.attached_to = None,
                    }
                }
                extra.queries.retain(|_, q| q.tx.is_some());
                Ok(r.err())
            })
            .await?;
        match rejected {
            Some(Rejected(msg)) => Err(Error::InvalidArgument(msg)),
            None => Ok(RespondWorkflowTaskCompletedResponse::default()),
        }
    }

    /// RespondWorkflowTaskFailed.
    pub async fn fail_workflow_task(&self, req: RespondWorkflowTaskFailedRequest) -> Result<()> {
        let token = self.token_in(&req.namespace, &req.task_token, TokenKind::Workflow)?;
        let key = self.wft_key(&token);
        self.mutate(key, move |tx, extra| {
            let valid = tx.is_running()
                && tx.state.wft.as_ref().is_some_and(|w| {
                    w.dispatch_seq == token.dispatch_seq
                        && w.started_event_id == token.started_event_id
                });
            if !valid {
                return Err(task_not_found());
            }
            let cause = Cause::try_from(req.cause).unwrap_or(Cause::WorkflowWorkerUnhandledFailure);
            tx.fail_wft(cause, req.failure, &req.identity);
            for q in extra.queries.values_mut() {
                if q.attached_to == Some(token.dispatch_seq) {
                    q.attached_to = None;
                }
            }
            Ok(())
        })
        .await
    }

    /// RespondQueryTaskCompleted.
    pub async fn complete_query_task(&self, req: RespondQueryTaskCompletedRequest) -> Result<()> {
        let token = self.token_in(&req.namespace, &req.task_token, TokenKind::Query)?;
        let outcome = if req.completed_type == QueryResultType::Answered as i32 {
            QueryOutcome::Answered(req.query_result)
        } else {
            QueryOutcome::Failed {
                message: req.error_message,
                failure: req.failure.map(Box::new),
            }
        };
        self.answer_query(self.wft_key(&token), token.query_id, outcome)
            .await
    }

    /// PollActivityTaskQueue.
    pub async fn poll_activity_task(
        &self,
        req: PollActivityTaskQueueRequest,
        deadline: Instant,
    ) -> Result<PollActivityTaskQueueResponse> {
        let ns = self.namespace(&req.namespace)?;
        let queue = req
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        if queue.is_empty() {
            return Err(Error::InvalidArgument(
                "TaskQueue is not set on request.".into(),
            ));
        }
        let Some(until) = poll_budget(deadline) else {
            return Ok(Default::default());
        };
        let poller = Poller {
            identity: req.identity.clone(),
            rate_per_second: req
                .task_queue_metadata
                .as_ref()
                .and_then(|m| m.max_tasks_per_second)
                .filter(|r| *r > 0.0)
                .unwrap_or(DEFAULT_POLLER_RATE),
            worker_version_capabilities: req.worker_version_capabilities.clone(),
            deployment_options: req.deployment_options.clone(),
        };
        self.note_poller(
            &ns.id,
            &queue,
            QueueKind::Activity,
            req.deployment_options.as_ref(),
        )
        .await?;
        loop {
            let Some(task) = self
                .next_task(&ns.id, &queue, QueueKind::Activity, &poller, until)
                .await
            else {
                return Ok(Default::default());
            };
            if Instant::now() >= until {
                self.inner
                    .matching
                    .push_front(&ns.id, &queue, QueueKind::Activity, task);
                return Ok(Default::default());
            }
            let r = if self.owns_shard(task.shard()) {
                let Task::Activity {
                    run,
                    scheduled_event_id,
                    attempt,
                    ..
                } = task
                else {
                    continue;
                };
                self.start_activity_task(run, scheduled_event_id, attempt, &req, &queue)
                    .await
            } else if matches!(task, Task::Activity { .. }) {
                self.start_remote_activity_task(task, &req, &ns.id, &queue)
                    .await
            } else {
                continue;
            };
            match r {
                Ok(Some(resp)) => {
                    return Ok(metrics::activity_task_started(&ns.name, &queue, resp));
                }
                Ok(None) | Err(Error::NotFound(_)) => continue,
                Err(e) if e.is_retryable() => {
                    // The run's owner is briefly away: the task went back to the queue.
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts an activity attempt matched to the poll `req` on queue `queue`, on this engine
    /// (which owns its run); `None` when the attempt is stale.
    pub(crate) async fn start_activity_task(
        &self,
        run: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
        req: &PollActivityTaskQueueRequest,
        queue: &str,
    ) -> Result<Option<PollActivityTaskQueueResponse>> {
        let identity = req.identity.clone();
        let namespace = req.namespace.clone();
        let polled = queue.to_string();
        self.mutate(run, move |tx, _| {
            let Some(i) = tx.activity_index(scheduled_event_id) else {
                return Ok(None);
            };
            // A task left on the queue an options update moved the activity away from
            // is stale.
            if !tx.is_running()
                || !tx.activity_dispatchable(i, attempt)
                || tx.state.activities[i].task_queue != polled
            {
                return Ok(None);
            }
            tx.start_activity(i, &uuid::Uuid::new_v4().to_string(), &identity);
            let state = &*tx.state;
            let a = &state.activities[i];
            let mut token = TaskToken::new(
                TokenKind::Activity,
                &state.namespace_id,
                &state.workflow_id,
                &state.run_id,
            );
            token.scheduled_event_id = scheduled_event_id;
            token.attempt = attempt;
            token.activity_id = a.activity_id.clone();
            let standalone = state.standalone.is_some();
            Ok(Some(PollActivityTaskQueueResponse {
                // A standalone activity has no workflow: an empty execution, its run id.
                activity_run_id: if standalone {
                    state.run_id.clone()
                } else {
                    String::new()
                },
                workflow_type: (!standalone).then(|| WorkflowType {
                    name: state.workflow_type.clone(),
                }),
                workflow_execution: Some(if standalone {
                    WorkflowExecution::default()
                } else {
                    WorkflowExecution {
                        workflow_id: state.workflow_id.clone(),
                        run_id: state.run_id.clone(),
                    }
                }),
                task_token: token.encode(),
                workflow_namespace: namespace,
                activity_type: Some(crate::mutable::activity_type(a)),
                activity_id: a.activity_id.clone(),
                header: a.header.clone(),
                input: a.input.clone(),
                heartbeat_details: a.heartbeat_details.clone(),
                scheduled_time: a.scheduled_time,
                current_attempt_scheduled_time: a.current_attempt_scheduled_time,
                started_time: a.started_time,
                attempt: a.attempt,
                schedule_to_close_timeout: a.schedule_to_close,
                start_to_close_timeout: a.start_to_close,
                heartbeat_timeout: a.heartbeat_timeout,
                retry_policy: a.retry_policy.clone(),
                priority: a.priority.clone(),
                ..Default::default()
            }))
        })
        .await
    }

    /// Finds the activity a completion refers to and applies `f` to it.
    async fn on_activity<R: Send + 'static>(
        &self,
        key: RunKey,
        r: ActivityRef,
        heartbeat: bool,
        f: impl FnOnce(&mut crate::mutable::Tx, usize) -> R + Send + 'static,
    ) -> Result<R> {
        self.mutate(key, move |tx, _| {
            if !tx.is_running() {
                // A closed standalone activity: Temporal refuses an outcome as an invalid
                // transition, and finds no activity for a heartbeat.
                return Err(match (&tx.state.standalone, heartbeat) {
                    (None, _) => activity_not_found(),
                    (Some(_), true) => Error::NotFound(format!(
                        "activity not found for ID: {}",
                        tx.state.workflow_id
                    )),
                    (Some(_), false) => super::standalone::closed_error(tx.state),
                });
            }
            let i = match &r {
                ActivityRef::Token(t) => {
                    let i = tx
                        .activity_index(t.scheduled_event_id)
                        .ok_or_else(activity_not_found)?;
                    let a = &tx.state.activities[i];
                    if a.attempt != t.attempt || a.started_time.is_none() {
                        return Err(activity_not_found());
                    }
                    i
                }
                ActivityRef::Id { activity_id } => tx
                    .state
                    .activities
                    .iter()
                    .position(|a| a.activity_id == *activity_id)
                    .ok_or_else(activity_not_found)?,
            };
            Ok(f(tx, i))
        })
        .await
    }

    async fn activity_target_by_token(
        &self,
        namespace: &str,
        token: &[u8],
    ) -> Result<(RunKey, ActivityRef)> {
        let t = self.token_in(namespace, token, TokenKind::Activity)?;
        Ok((self.wft_key(&t), ActivityRef::Token(t)))
    }

    async fn activity_target_by_id(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
    ) -> Result<(RunKey, ActivityRef)> {
        if activity_id.is_empty() {
            return Err(Error::InvalidArgument(
                "ActivityId is not set on request.".into(),
            ));
        }
        let ns = self.namespace(namespace)?;
        if workflow_id.is_empty() {
            // No workflow id: a standalone activity, by its activity id (and run id).
            let key = self.standalone_key(&ns, activity_id, run_id).await?;
            return Ok((
                key,
                ActivityRef::Id {
                    activity_id: activity_id.to_string(),
                },
            ));
        }
        let key = self
            .resolve(
                &ns.id,
                Some(&WorkflowExecution {
                    workflow_id: workflow_id.to_string(),
                    run_id: run_id.to_string(),
                }),
            )
            .await?;
        Ok((
            key,
            ActivityRef::Id {
                activity_id: activity_id.to_string(),
            },
        ))
    }

    pub async fn complete_activity(&self, req: RespondActivityTaskCompletedRequest) -> Result<()> {
        let (key, r) = self
            .activity_target_by_token(&req.namespace, &req.task_token)
            .await?;
        self.on_activity(key, r, false, move |tx, i| {
            tx.activity_completed_or_too_big(i, req.result, &req.identity)
        })
        .await
    }

    pub async fn complete_activity_by_id(
        &self,
        req: RespondActivityTaskCompletedByIdRequest,
    ) -> Result<()> {
        let (key, r) = self
            .activity_target_by_id(
                &req.namespace,
                &req.workflow_id,
                &req.run_id,
                &req.activity_id,
            )
            .await?;
        self.on_activity(key, r, false, move |tx, i| {
            tx.activity_completed_or_too_big(i, req.result, &req.identity)
        })
        .await
    }

    /// The activity a request names, by task token (namespace, token) or by id (namespace,
    /// workflow id, run id, activity id).
    async fn activity_target(
        &self,
        token: Option<(&str, &[u8])>,
        by_id: Option<(&str, &str, &str, &str)>,
    ) -> Result<(RunKey, ActivityRef)> {
        match (token, by_id) {
            (Some((ns, t)), _) => self.activity_target_by_token(ns, t).await,
            (None, Some((ns, wf, run, act))) => self.activity_target_by_id(ns, wf, run, act).await,
            _ => Err(Error::InvalidArgument(
                "TaskToken is not set on request.".into(),
            )),
        }
    }

    pub async fn fail_activity(
        &self,
        token: Option<(&str, &[u8])>,
        by_id: Option<(&str, &str, &str, &str)>,
        failure: Option<Failure>,
        details: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        let (key, r) = self.activity_target(token, by_id).await?;
        self.on_activity(key, r, false, move |tx, i| {
            tx.activity_failed(i, failure, details, &identity);
        })
        .await
    }

    pub async fn cancel_activity(
        &self,
        token: Option<(&str, &[u8])>,
        by_id: Option<(&str, &str, &str, &str)>,
        details: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        let (key, r) = self.activity_target(token, by_id).await?;
        self.on_activity(key, r, false, move |tx, i| {
            tx.activity_canceled(i, details, &identity);
        })
        .await
    }

    /// RecordActivityTaskHeartbeat[ById]; returns what the response tells the worker
    /// (cancel requested, paused, reset).
    pub async fn heartbeat_activity(
        &self,
        token: Option<(&str, &[u8])>,
        by_id: Option<(&str, &str, &str, &str)>,
        details: Option<Payloads>,
    ) -> Result<crate::mutable::HeartbeatReply> {
        let (key, r) = self.activity_target(token, by_id).await?;
        self.on_activity(key, r, true, move |tx, i| {
            tx.activity_heartbeat_or_too_big(i, details)
        })
        .await
    }

    /// ShutdownWorker: the sticky queue goes away; its pending tasks move to normal queues.
    pub async fn shutdown_worker(&self, req: ShutdownWorkerRequest) -> Result<()> {
        if req.sticky_task_queue.is_empty() {
            return Ok(());
        }
        let ns = self.namespace(&req.namespace)?;
        let tasks =
            self.inner
                .matching
                .drop_queue(&ns.id, &req.sticky_task_queue, QueueKind::Workflow);
        for t in tasks {
            let run = match t {
                Task::Workflow { run, .. } | Task::Query { run, .. } => run,
                Task::Activity { .. } => continue,
            };
            let _ = self
                .mutate(run, |tx, extra| {
                    tx.unstick();
                    for q in extra.queries.values_mut() {
                        q.dispatched = false;
                    }
                    Ok(())
                })
                .await;
        }
        Ok(())
    }

    /// ResetStickyTaskQueue.
    pub async fn reset_sticky(&self, req: ResetStickyTaskQueueRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        let key = self.resolve(&ns.id, req.execution.as_ref()).await?;
        self.mutate(key, |tx, _| {
            tx.unstick();
            tx.changed = true;
            Ok(())
        })
        .await
    }
}
