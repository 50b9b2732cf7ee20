//! Standalone activities (StartActivityExecution and friends): the shell around
//! `mutable::standalone`. A standalone activity is stored as a run-like record under a namespace
//! id derived from its namespace's (`record_namespace_id`), with the activity id as its
//! "workflow id", so it has its own id space and its own visibility rows (never in workflow
//! lists), while everything else (commits, group commit, timers, dispatch, heartbeats, retries,
//! pause/reset/options, restart re-arming) is the workflow activity machinery. Its tasks go to
//! the namespace's own activity queues; its task tokens carry the derived id.

use std::time::{Duration, Instant};

use perdure_proto::api::activity::v1::{ActivityExecutionInfo, ActivityExecutionListInfo};
use perdure_proto::api::command::v1::ScheduleActivityTaskCommandAttributes;
use perdure_proto::api::common::v1::SearchAttributes;
use perdure_proto::api::enums::v1::{
    ActivityIdConflictPolicy, ActivityIdReusePolicy, IndexedValueType, PendingActivityState,
    WorkflowExecutionStatus as Status,
};
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;

use super::{Engine, Namespace};
use crate::clock::convert::{dur, from_ts, pdur, ts};
use crate::error::{Error, Result};
use crate::info::type_search_attributes;
use crate::matching::RunKey;
use crate::mutable::{StandaloneStart, activity_status, normalize_activity, start_standalone};
use crate::state::{ActivityState, ExecutionState};
use crate::store::VisibilityRow;

/// Appended to a namespace id to make the id space of its standalone activities.
const RECORD_SUFFIX: &str = "#activity";

/// The id standalone activity records of namespace `namespace_id` are stored under.
pub(crate) fn record_namespace_id(namespace_id: &str) -> String {
    format!("{namespace_id}{RECORD_SUFFIX}")
}

/// The namespace id a record id belongs to (itself for a workflow's).
pub(crate) fn namespace_id_of_record(id: &str) -> &str {
    id.strip_suffix(RECORD_SUFFIX).unwrap_or(id)
}

/// The namespace whose task queues a run's activities go to.
pub(crate) fn queue_namespace_id(state: &ExecutionState) -> &str {
    match &state.standalone {
        Some(s) => &s.namespace_id,
        None => &state.namespace_id,
    }
}

fn not_found(activity_id: &str) -> Error {
    Error::NotFound(format!("activity not found for ID: {activity_id}"))
}

/// The activity of a record: the pending one, or the last one once closed.
fn activity_of(state: &ExecutionState) -> ActivityState {
    state
        .activities
        .first()
        .cloned()
        .or_else(|| state.standalone.as_ref().and_then(|s| s.last.clone()))
        .unwrap_or_default()
}

/// What a write to a closed standalone activity is told (as Temporal's state machine words it).
pub(crate) fn closed_error(state: &ExecutionState) -> Error {
    Error::FailedPrecondition(format!("invalid transition from {}", status_name(state)))
}

fn status_name(state: &ExecutionState) -> &'static str {
    perdure_query::status_name(state.status).unwrap_or("Unspecified")
}

fn execution_duration(state: &ExecutionState) -> Option<perdure_proto::prost_types::Duration> {
    let close = state.close_time.as_ref()?;
    let start = state.start_time.as_ref()?;
    Some(pdur(
        from_ts(close)
            .duration_since(from_ts(start))
            .unwrap_or_default(),
    ))
}

/// The list form of a record, kept in its visibility row.
fn list_info(state: &ExecutionState) -> ActivityExecutionListInfo {
    let a = activity_of(state);
    ActivityExecutionListInfo {
        activity_id: state.workflow_id.clone(),
        run_id: state.run_id.clone(),
        activity_type: Some(crate::mutable::activity_type(&a)),
        schedule_time: state.start_time,
        close_time: state.close_time,
        status: activity_status(state) as i32,
        search_attributes: Some(state.search_attributes.clone().unwrap_or_default()),
        task_queue: a.task_queue.clone(),
        state_transition_count: state.state_transition_count,
        state_size_bytes: state.encoded_len() as i64,
        execution_duration: execution_duration(state),
        execution_time: state.execution_time,
    }
}

/// The visibility row of a record: the workflow columns (activity id and type in the workflow
/// id and type columns) with an `ActivityExecutionListInfo` as what List returns.
pub(crate) fn visibility_row(state: &ExecutionState) -> VisibilityRow {
    let mut row = crate::info::visibility_row(state);
    row.task_queue = activity_of(state).task_queue;
    row.info = list_info(state).encode_to_vec();
    row
}

/// Temporal's activity query names that Perdure's visibility columns hold under the workflow
/// names: `ActivityId` and `ActivityType` are rewritten (outside quotes) before compiling.
fn activity_query(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let flush = |word: &mut String, out: &mut String| {
        match word.as_str() {
            "ActivityId" => out.push_str("WorkflowId"),
            "ActivityType" => out.push_str("WorkflowType"),
            w => out.push_str(w),
        }
        word.clear();
    };
    let mut prev = '\0';
    for c in q.chars() {
        match quote {
            Some(qc) => {
                out.push(c);
                if c == qc && prev != '\\' {
                    quote = None;
                }
            }
            None if c.is_ascii_alphanumeric() || c == '_' => word.push(c),
            None => {
                flush(&mut word, &mut out);
                if c == '\'' || c == '"' || c == '`' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
        prev = c;
    }
    flush(&mut word, &mut out);
    out
}

/// Page token of ListActivityExecutions.
#[derive(Clone, PartialEq, prost::Message)]
struct ListToken {
    #[prost(int64, tag = "1")]
    sort_key: i64,
    #[prost(string, tag = "2")]
    run_id: String,
}

/// Long-poll token of DescribeActivityExecution: the state it answered.
#[derive(Clone, PartialEq, prost::Message)]
struct DescribeToken {
    #[prost(string, tag = "1")]
    run_id: String,
    #[prost(int64, tag = "2")]
    state_transition_count: i64,
}

/// Leave this much of a caller's deadline unused, so an empty answer arrives in time.
const POLL_MARGIN: Duration = Duration::from_millis(1000);

impl Engine {
    /// The record of a standalone activity (empty run id: the latest run).
    pub async fn standalone_key(
        &self,
        ns: &Namespace,
        activity_id: &str,
        run_id: &str,
    ) -> Result<RunKey> {
        if activity_id.is_empty() {
            return Err(Error::InvalidArgument("activity ID is required".into()));
        }
        if !run_id.is_empty() && uuid::Uuid::parse_str(run_id).is_err() {
            return Err(Error::InvalidArgument(
                "invalid run id: must be a valid UUID".into(),
            ));
        }
        let record_ns = record_namespace_id(&ns.id);
        let run_id = if run_id.is_empty() {
            self.current_run(&record_ns, activity_id)
                .await?
                .ok_or_else(|| not_found(activity_id))?
        } else {
            run_id.to_string()
        };
        let key = RunKey {
            namespace_id: record_ns,
            run_id,
        };
        let entry = self.entry(&key).await.map_err(|e| match e {
            Error::NotFound(_) => not_found(activity_id),
            e => e,
        })?;
        let data = entry.data.lock().await;
        if data.state.workflow_id != activity_id || data.state.standalone.is_none() {
            return Err(not_found(activity_id));
        }
        Ok(key)
    }

    /// The record of a standalone activity by namespace name.
    pub async fn standalone_run(
        &self,
        namespace: &str,
        activity_id: &str,
        run_id: &str,
    ) -> Result<RunKey> {
        let ns = self.namespace(namespace)?;
        self.standalone_key(&ns, activity_id, run_id).await
    }

    /// StartActivityExecution: validates, then decides and commits on a task of its own under
    /// the activity id's lock (id reuse and conflict policies, request id dedup).
    pub async fn start_activity_execution(
        &self,
        req: StartActivityExecutionRequest,
    ) -> Result<StartActivityExecutionResponse> {
        let ns = self.namespace(&req.namespace)?;
        if req.activity_id.is_empty() {
            return Err(Error::InvalidArgument("activityId is not set".into()));
        }
        let type_name = req
            .activity_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        if type_name.is_empty() {
            return Err(Error::InvalidArgument("activityType is not set".into()));
        }
        let queue = req
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        if queue.is_empty() {
            return Err(Error::InvalidArgument("taskQueue is not set".into()));
        }
        let limits = self.limits();
        limits
            .check_id("ActivityID", &req.activity_id)
            .map_err(Error::InvalidArgument)?;
        limits
            .check_id("ActivityType", &type_name)
            .map_err(Error::InvalidArgument)?;
        for (name, d) in [
            ("ScheduleToCloseTimeout", &req.schedule_to_close_timeout),
            ("ScheduleToStartTimeout", &req.schedule_to_start_timeout),
            ("StartToCloseTimeout", &req.start_to_close_timeout),
            ("HeartbeatTimeout", &req.heartbeat_timeout),
            ("StartDelay", &req.start_delay),
        ] {
            if crate::clock::convert::is_negative(d) {
                return Err(Error::InvalidArgument(format!("Invalid {name}.")));
            }
        }
        if dur(&req.start_to_close_timeout).is_zero()
            && dur(&req.schedule_to_close_timeout).is_zero()
        {
            return Err(Error::InvalidArgument(format!(
                "a valid StartToCloseTimeout or ScheduleToCloseTimeout must be set on the activity. ActivityId={} ActivityType={}",
                req.activity_id, type_name
            )));
        }
        self.check_blobs(req.input.as_ref())?;
        limits
            .check_search_attributes(req.search_attributes.as_ref())
            .map_err(Error::InvalidArgument)?;
        let mut sa: Option<SearchAttributes> = req.search_attributes.clone();
        if let Some(sa) = sa.as_mut() {
            type_search_attributes(sa, &ns.name, &|n| ns.sa_type(n))
                .map_err(Error::InvalidArgument)?;
        }
        let mut activity = ScheduleActivityTaskCommandAttributes {
            activity_id: req.activity_id.clone(),
            activity_type: req.activity_type.clone(),
            task_queue: Some(TaskQueue {
                name: queue,
                ..Default::default()
            }),
            header: req.header.clone(),
            input: req.input.clone(),
            schedule_to_close_timeout: req.schedule_to_close_timeout,
            schedule_to_start_timeout: req.schedule_to_start_timeout,
            start_to_close_timeout: req.start_to_close_timeout,
            heartbeat_timeout: req.heartbeat_timeout,
            retry_policy: req.retry_policy.clone(),
            priority: req.priority.clone(),
            ..Default::default()
        };
        normalize_activity(&mut activity, Duration::ZERO).map_err(Error::InvalidArgument)?;
        let start_delay = dur(&req.start_delay).min(Duration::from_secs(100 * 365 * 86_400));
        let request_id = if req.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            req.request_id.clone()
        };
        let start = StandaloneStart {
            namespace: ns.name.clone(),
            namespace_id: ns.id.clone(),
            record_namespace_id: record_namespace_id(&ns.id),
            run_id: uuid::Uuid::now_v7().to_string(),
            request_id,
            identity: req.identity.clone(),
            activity,
            start_delay,
            search_attributes: sa,
            user_metadata: req.user_metadata.clone(),
        };
        let reuse = ActivityIdReusePolicy::try_from(req.id_reuse_policy)
            .unwrap_or(ActivityIdReusePolicy::Unspecified);
        let conflict = ActivityIdConflictPolicy::try_from(req.id_conflict_policy)
            .unwrap_or(ActivityIdConflictPolicy::Unspecified);
        let me = self.clone();
        tokio::spawn(async move { me.start_standalone_locked(start, reuse, conflict).await })
            .await
            .map_err(|e| Error::Internal(format!("start task failed: {e}")))?
    }

    async fn start_standalone_locked(
        &self,
        start: StandaloneStart,
        reuse: ActivityIdReusePolicy,
        conflict: ActivityIdConflictPolicy,
    ) -> Result<StartActivityExecutionResponse> {
        let record_ns = start.record_namespace_id.clone();
        let activity_id = start.activity.activity_id.clone();
        let _guard = self.id_lock(&record_ns, &activity_id).lock().await;
        if let Some(run_id) = self.current_run(&record_ns, &activity_id).await? {
            let key = RunKey {
                namespace_id: record_ns.clone(),
                run_id: run_id.clone(),
            };
            let (running, status, start_request_id) = {
                let entry = self.entry(&key).await?;
                let d = entry.data.lock().await;
                (
                    d.state.status == Status::Running as i32,
                    d.state.status,
                    d.state.start_request_id.clone(),
                )
            };
            if start_request_id == start.request_id {
                // The same request again (a client's retry): its run.
                return Ok(StartActivityExecutionResponse {
                    run_id,
                    started: true,
                    link: None,
                });
            }
            let already = || Error::ActivityAlreadyStarted {
                message: "activity execution already started".into(),
                start_request_id: start_request_id.clone(),
                run_id: run_id.clone(),
            };
            if running {
                if conflict == ActivityIdConflictPolicy::UseExisting {
                    return Ok(StartActivityExecutionResponse {
                        run_id,
                        started: false,
                        link: None,
                    });
                }
                return Err(already());
            }
            match reuse {
                ActivityIdReusePolicy::RejectDuplicate => return Err(already()),
                ActivityIdReusePolicy::AllowDuplicateFailedOnly
                    if status == Status::Completed as i32 =>
                {
                    return Err(already());
                }
                _ => {}
            }
        }
        let run = start_standalone(start, self.inner.clock.now());
        let run_id = run.state.run_id.clone();
        self.create_run(run).await?;
        Ok(StartActivityExecutionResponse {
            run_id,
            started: true,
            link: None,
        })
    }

    /// DescribeActivityExecution; with a long-poll token, waits until the activity's state
    /// moves past the one the token describes (or shortly before `deadline`).
    pub async fn describe_activity_execution(
        &self,
        req: DescribeActivityExecutionRequest,
        deadline: Instant,
    ) -> Result<DescribeActivityExecutionResponse> {
        let ns = self.namespace(&req.namespace)?;
        let seen = if req.long_poll_token.is_empty() {
            None
        } else {
            if req.run_id.is_empty() {
                return Err(Error::InvalidArgument(
                    "run id is required when a long poll token is given".into(),
                ));
            }
            let t = DescribeToken::decode(req.long_poll_token.as_slice())
                .map_err(|_| Error::InvalidArgument("invalid long poll token".into()))?;
            if t.run_id != req.run_id {
                return Err(Error::InvalidArgument(
                    "long poll token does not match the run id".into(),
                ));
            }
            Some(t.state_transition_count)
        };
        let key = self
            .standalone_key(&ns, &req.activity_id, &req.run_id)
            .await?;
        let until = deadline
            .checked_sub(POLL_MARGIN)
            .unwrap_or_else(Instant::now)
            .min(Instant::now() + self.inner.config.long_poll);
        loop {
            let entry = self.entry(&key).await?;
            let version = {
                let d = entry.data.lock().await;
                let moved = seen.is_none_or(|s| s != d.state.state_transition_count);
                if moved || d.state.status != Status::Running as i32 || Instant::now() >= until {
                    return Ok(self.describe_response(&d.state, &req));
                }
                *entry.version.borrow()
            };
            Engine::wait_change(&entry, version, until).await;
        }
    }

    fn describe_response(
        &self,
        state: &ExecutionState,
        req: &DescribeActivityExecutionRequest,
    ) -> DescribeActivityExecutionResponse {
        let s = state.standalone.clone().unwrap_or_default();
        let a = activity_of(state);
        let running = state.status == Status::Running as i32;
        let run_state = if !running {
            PendingActivityState::Unspecified
        } else if a.paused {
            PendingActivityState::Paused
        } else if a.cancel_requested_event_id != 0 {
            PendingActivityState::CancelRequested
        } else if a.started_time.is_some() {
            PendingActivityState::Started
        } else {
            PendingActivityState::Scheduled
        };
        let now = self.inner.clock.now();
        let next_attempt = a
            .current_attempt_scheduled_time
            .filter(|t| running && a.started_time.is_none() && from_ts(t) > now);
        let s2c = dur(&a.schedule_to_close);
        let info = ActivityExecutionInfo {
            activity_id: state.workflow_id.clone(),
            run_id: state.run_id.clone(),
            activity_type: Some(crate::mutable::activity_type(&a)),
            status: activity_status(state) as i32,
            run_state: run_state as i32,
            task_queue: a.task_queue.clone(),
            schedule_to_close_timeout: a.schedule_to_close,
            schedule_to_start_timeout: a.schedule_to_start,
            start_to_close_timeout: a.start_to_close,
            heartbeat_timeout: a.heartbeat_timeout,
            retry_policy: a.retry_policy.clone(),
            heartbeat_details: if req.include_heartbeat_details {
                a.heartbeat_details.clone()
            } else {
                None
            },
            last_heartbeat_time: a.last_heartbeat_time,
            last_started_time: a.started_time,
            attempt: a.attempt,
            execution_duration: execution_duration(state),
            schedule_time: s.schedule_time,
            expiration_time: (!s2c.is_zero())
                .then(|| a.scheduled_time.as_ref().map(|t| ts(from_ts(t) + s2c)))
                .flatten(),
            close_time: state.close_time,
            last_failure: if req.include_last_failure {
                a.last_failure.clone()
            } else {
                None
            },
            last_worker_identity: a.last_worker_identity.clone(),
            last_attempt_complete_time: a.last_attempt_complete_time,
            next_attempt_schedule_time: next_attempt,
            priority: Some(a.priority.clone().unwrap_or_default()),
            state_transition_count: state.state_transition_count,
            state_size_bytes: state.encoded_len() as i64,
            search_attributes: Some(state.search_attributes.clone().unwrap_or_default()),
            header: a.header.clone(),
            user_metadata: state.user_metadata.clone(),
            canceled_reason: s.canceled_reason.clone(),
            total_heartbeat_count: s.total_heartbeat_count,
            start_delay: s.start_delay,
            execution_time: state.execution_time,
            ..Default::default()
        };
        DescribeActivityExecutionResponse {
            run_id: state.run_id.clone(),
            info: Some(info),
            input: if req.include_input {
                Some(state.input.clone().unwrap_or_default())
            } else {
                None
            },
            outcome: if req.include_outcome && !running {
                s.outcome.clone()
            } else {
                None
            },
            long_poll_token: DescribeToken {
                run_id: state.run_id.clone(),
                state_transition_count: state.state_transition_count,
            }
            .encode_to_vec(),
            callbacks: vec![],
        }
    }

    /// PollActivityExecution: waits for the outcome until shortly before `deadline`; an answer
    /// without an outcome tells the caller to poll again.
    pub async fn poll_activity_execution(
        &self,
        req: PollActivityExecutionRequest,
        deadline: Instant,
    ) -> Result<PollActivityExecutionResponse> {
        let ns = self.namespace(&req.namespace)?;
        let key = self
            .standalone_key(&ns, &req.activity_id, &req.run_id)
            .await?;
        let until = deadline
            .checked_sub(POLL_MARGIN)
            .unwrap_or_else(Instant::now)
            .min(Instant::now() + self.inner.config.long_poll);
        loop {
            let entry = self.entry(&key).await?;
            let version = {
                let d = entry.data.lock().await;
                if d.state.status != Status::Running as i32 {
                    return Ok(PollActivityExecutionResponse {
                        run_id: d.state.run_id.clone(),
                        outcome: d.state.standalone.as_ref().and_then(|s| s.outcome.clone()),
                    });
                }
                if Instant::now() >= until {
                    return Ok(PollActivityExecutionResponse {
                        run_id: d.state.run_id.clone(),
                        outcome: None,
                    });
                }
                *entry.version.borrow()
            };
            Engine::wait_change(&entry, version, until).await;
        }
    }

    fn compile_activity_query(
        &self,
        ns: &Namespace,
        q: &str,
    ) -> Result<perdure_query::VisibilityQuery> {
        let lookup = |name: &str| {
            ns.record
                .search_attributes
                .get(name)
                .and_then(|t| IndexedValueType::try_from(*t).ok())
                .map(crate::info::query_type)
        };
        perdure_query::parse(&activity_query(q), &lookup)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// ListActivityExecutions: the namespace's standalone activities matching a visibility
    /// query, newest first.
    pub async fn list_activity_executions(
        &self,
        req: ListActivityExecutionsRequest,
    ) -> Result<ListActivityExecutionsResponse> {
        let ns = self.namespace(&req.namespace)?;
        let compiled = self.compile_activity_query(&ns, &req.query)?;
        if compiled.group_by_status {
            return Err(Error::InvalidArgument(
                "invalid query: 'group by' clause is only supported for count query".into(),
            ));
        }
        let after = if req.next_page_token.is_empty() {
            None
        } else {
            let t = ListToken::decode(req.next_page_token.as_slice())
                .map_err(|_| Error::InvalidArgument("Invalid NextPageToken.".into()))?;
            Some((t.sort_key, t.run_id))
        };
        let page = if req.page_size <= 0 {
            1000
        } else {
            req.page_size as usize
        };
        let s = self.inner.store.clone();
        let record_ns = record_namespace_id(&ns.id);
        let rows = tokio::task::spawn_blocking(move || {
            s.list_visibility(&record_ns, &compiled, page, after)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let next_page_token = if rows.len() == page {
            rows.last()
                .map(|(_, (k, r))| {
                    ListToken {
                        sort_key: *k,
                        run_id: r.clone(),
                    }
                    .encode_to_vec()
                })
                .unwrap_or_default()
        } else {
            vec![]
        };
        let mut executions = Vec::with_capacity(rows.len());
        for (info, _) in rows {
            executions.push(
                ActivityExecutionListInfo::decode(info.as_slice())
                    .map_err(|e| Error::Internal(format!("corrupt visibility row: {e}")))?,
            );
        }
        Ok(ListActivityExecutionsResponse {
            executions,
            next_page_token,
        })
    }

    /// CountActivityExecutions, grouped by ExecutionStatus if the query asks.
    pub async fn count_activity_executions(
        &self,
        req: CountActivityExecutionsRequest,
    ) -> Result<CountActivityExecutionsResponse> {
        let ns = self.namespace(&req.namespace)?;
        let compiled = self.compile_activity_query(&ns, &req.query)?;
        let grouped = compiled.group_by_status;
        let s = self.inner.store.clone();
        let record_ns = record_namespace_id(&ns.id);
        let (count, groups) =
            tokio::task::spawn_blocking(move || s.count_visibility(&record_ns, &compiled))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        let groups = if grouped {
            groups
                .into_iter()
                .map(|(status, n)| {
                    let name = perdure_query::status_name(status).unwrap_or("Unspecified");
                    count_activity_executions_response::AggregationGroup {
                        group_values: vec![perdure_proto::api::common::v1::Payload {
                            metadata: [
                                ("encoding".to_string(), b"json/plain".to_vec()),
                                ("type".to_string(), b"Keyword".to_vec()),
                            ]
                            .into_iter()
                            .collect(),
                            data: serde_json::to_vec(name).unwrap_or_default(),
                            ..Default::default()
                        }],
                        count: n,
                    }
                })
                .collect()
        } else {
            vec![]
        };
        Ok(CountActivityExecutionsResponse { count, groups })
    }

    /// RequestCancelActivityExecution.
    pub async fn request_cancel_activity_execution(
        &self,
        req: RequestCancelActivityExecutionRequest,
    ) -> Result<()> {
        if let Some(to) = self.activity_execution_owner(&req.namespace, &req.activity_id) {
            let _r: RequestCancelActivityExecutionResponse = self
                .forward(&to, "RequestCancelActivityExecution", &req)
                .await?;
            return Ok(());
        }
        let key = self
            .standalone_run(&req.namespace, &req.activity_id, &req.run_id)
            .await?;
        self.mutate(key, move |tx, _| {
            if !tx.is_running() {
                return Err(Error::FailedPrecondition(format!(
                    "activity is in terminal state {}",
                    status_name(tx.state)
                )));
            }
            tx.cancel_standalone(&req.reason, &req.request_id, &req.identity);
            Ok(())
        })
        .await
    }

    /// TerminateActivityExecution.
    pub async fn terminate_activity_execution(
        &self,
        req: TerminateActivityExecutionRequest,
    ) -> Result<()> {
        if let Some(to) = self.activity_execution_owner(&req.namespace, &req.activity_id) {
            let _r: TerminateActivityExecutionResponse = self
                .forward(&to, "TerminateActivityExecution", &req)
                .await?;
            return Ok(());
        }
        let key = self
            .standalone_run(&req.namespace, &req.activity_id, &req.run_id)
            .await?;
        self.mutate(key, move |tx, _| {
            if !tx.is_running() {
                let by = tx
                    .state
                    .standalone
                    .as_ref()
                    .map(|s| s.terminate_request_id.clone())
                    .unwrap_or_default();
                if tx.state.status == Status::Terminated as i32 && !by.is_empty() {
                    if by == req.request_id {
                        return Ok(());
                    }
                    return Err(Error::FailedPrecondition(format!(
                        "already terminated with request ID {by}"
                    )));
                }
                return Err(closed_error(tx.state));
            }
            tx.terminate_standalone(&req.reason, &req.request_id, &req.identity);
            Ok(())
        })
        .await
    }

    /// DeleteActivityExecution: a running activity is terminated first; then the record, its
    /// history and its visibility row go.
    pub async fn delete_activity_execution(
        &self,
        req: DeleteActivityExecutionRequest,
    ) -> Result<()> {
        if let Some(to) = self.activity_execution_owner(&req.namespace, &req.activity_id) {
            let _r: DeleteActivityExecutionResponse =
                self.forward(&to, "DeleteActivityExecution", &req).await?;
            return Ok(());
        }
        let key = self
            .standalone_run(&req.namespace, &req.activity_id, &req.run_id)
            .await?;
        let workflow_id = self
            .mutate(key.clone(), |tx, _| {
                tx.terminate_standalone("Delete activity execution", "", "perdure-server");
                Ok(tx.state.workflow_id.clone())
            })
            .await?;
        self.delete_run(&key, &workflow_id).await?;
        if let Some(e) = self.remove_entry(&key)
            && let Ok(mut d) = e.data.try_lock()
        {
            d.extra.evicted = true;
        }
        self.inner.current.lock().retain(|_, r| *r != key.run_id);
        self.inner
            .list_changes
            .send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_names_are_rewritten_outside_quotes() {
        assert_eq!(
            activity_query("ActivityId = 'ActivityId' AND ActivityType=\"x\" or TaskQueue='q'"),
            "WorkflowId = 'ActivityId' AND WorkflowType=\"x\" or TaskQueue='q'"
        );
        assert_eq!(activity_query("MyActivityIdX = 'a'"), "MyActivityIdX = 'a'");
        assert_eq!(activity_query(""), "");
    }

    #[test]
    fn record_ids_map_back_to_their_namespace() {
        let id = record_namespace_id("ns-1");
        assert_ne!(id, "ns-1");
        assert_eq!(namespace_id_of_record(&id), "ns-1");
        assert_eq!(namespace_id_of_record("ns-1"), "ns-1");
    }
}
