//! Schedules, the shell: the WorkflowService schedule RPCs and the scheduler task. A schedule is
//! a stored record (`schedule::ScheduleRecord`, the store is the truth) with the time the
//! scheduler must next look at it. Every change (a request, or the scheduler waking it) runs
//! under the schedule's lock: load the record, let `schedule::Machine` decide at the clock's
//! `now`, start the workflows it asks for through the engine's own start path (each start is
//! committed before it is recorded), store the record, and only then answer. Wake times are
//! kept in memory and rebuilt from the store at start-up, so times missed while the server was
//! down are taken (or counted as missed) on the first wake after a restart.
//!
//! A schedule learns that a workflow it started has closed when it next looks at it: before
//! every decision it checks the runs it counts as running (and, while a start waits in the
//! buffer for one of them, every second), as Temporal's scheduler refreshes its running list.

use std::collections::HashMap;
use std::time::SystemTime;

use perdure_proto::api::common::v1::{Payload, Payloads, SearchAttributes};
use perdure_proto::api::enums::v1::{WorkflowExecutionStatus as Status, WorkflowIdReusePolicy};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::history_event::Attributes;
use perdure_proto::api::schedule::v1::{Schedule, ScheduleListEntry, schedule_action};
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;

use super::start::{StartRequest, StartSpec};
use super::{Engine, Namespace};
use crate::clock::convert::{from_ts, ts, ts_nanos};
use crate::error::{Error, Result};
use crate::info::type_search_attributes;
use crate::matching::RunKey;
use crate::schedule::machine::with_defaults;
use crate::schedule::{BufferedStart, Machine, ScheduleRecord, spec};
use crate::store::{StoreError, StoredSchedule};

/// Most matching times ListScheduleMatchingTimes returns (as Temporal).
const MAX_MATCHING_TIMES: usize = 1000;
/// Default and largest ListSchedules page.
const PAGE: usize = 1000;

type Key = (String, String);

/// The scheduler's in-memory side: when each schedule must be looked at next, and a lock per
/// schedule (striped).
pub(crate) struct Schedules {
    wakes: parking_lot::Mutex<HashMap<Key, SystemTime>>,
    changed: tokio::sync::Notify,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl Default for Schedules {
    fn default() -> Self {
        Schedules {
            wakes: Default::default(),
            changed: Default::default(),
            locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "workflow not found for ID: temporal-sys-scheduler:{id}"
    ))
}

fn blocking_err(e: tokio::task::JoinError) -> Error {
    Error::Internal(e.to_string())
}

fn decode(s: &StoredSchedule) -> Result<Machine> {
    let rec = ScheduleRecord::decode(s.data.as_slice())
        .map_err(|e| Error::Internal(format!("corrupt schedule: {e}")))?;
    Machine::new(rec).map_err(|e| Error::Internal(format!("stored schedule is invalid: {e}")))
}

/// `Name = 'value'` terms joined by AND: the ListSchedules queries Perdure serves.
fn parse_query(q: &str) -> Result<Vec<(String, String)>> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let unsupported = || {
        Error::InvalidArgument(format!(
            "Perdure's ListSchedules query supports only `Name = 'value'` terms joined by AND \
             (ScheduleId, WorkflowType, TemporalSchedulePaused or a schedule search attribute): {q}"
        ))
    };
    let mut out = Vec::new();
    for term in split_and(q) {
        let (k, v) = term.split_once('=').ok_or_else(unsupported)?;
        let k = k.trim().trim_matches('`').to_string();
        let v = v.trim();
        if k.is_empty() || k.contains(|c: char| c.is_whitespace() || "<>!()".contains(c)) {
            return Err(unsupported());
        }
        let value = if let Some(s) = v
            .strip_prefix('\'')
            .and_then(|x| x.strip_suffix('\''))
            .or_else(|| v.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
        {
            serde_json::to_string(s).unwrap_or_default()
        } else if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
            v.to_ascii_lowercase()
        } else if v.parse::<f64>().is_ok() {
            v.to_string()
        } else {
            return Err(unsupported());
        };
        out.push((k, value));
    }
    Ok(out)
}

/// Splits on ` AND ` outside quotes (case-insensitive).
fn split_and(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(qc) if c == qc => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {
                let rest: String = chars[i..chars.len().min(i + 5)].iter().collect();
                if rest.eq_ignore_ascii_case(" and ") {
                    out.push(std::mem::take(&mut cur));
                    i += 5;
                    continue;
                }
            }
        }
        cur.push(c);
        i += 1;
    }
    out.push(cur);
    out
}

fn json_of(p: &Payload) -> String {
    serde_json::from_slice::<serde_json::Value>(&p.data)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

fn matches(m: &Machine, terms: &[(String, String)]) -> bool {
    terms.iter().all(|(k, v)| {
        let actual = match k.as_str() {
            "ScheduleId" => serde_json::to_string(&m.rec.schedule_id).unwrap_or_default(),
            "WorkflowType" => {
                let t = m
                    .list_info()
                    .workflow_type
                    .map(|t| t.name)
                    .unwrap_or_default();
                serde_json::to_string(&t).unwrap_or_default()
            }
            "TemporalSchedulePaused" => m.list_info().paused.to_string(),
            other => match m
                .rec
                .search_attributes
                .as_ref()
                .and_then(|s| s.indexed_fields.get(other))
            {
                Some(p) => json_of(p),
                None => return false,
            },
        };
        actual == *v
    })
}

impl Engine {
    fn schedule_lock(&self, key: &Key) -> &tokio::sync::Mutex<()> {
        let i = super::hash_str(&[&key.0, &key.1]) as usize % self.inner.schedules.locks.len();
        &self.inner.schedules.locks[i]
    }

    async fn load_schedule(&self, key: &Key) -> Result<Option<Machine>> {
        let s = self.inner.store.clone();
        let (ns, id) = key.clone();
        let stored = tokio::task::spawn_blocking(move || s.get_schedule(&ns, &id))
            .await
            .map_err(blocking_err)??;
        stored.as_ref().map(decode).transpose()
    }

    /// Stores the record with its next wake time, then arms that wake.
    async fn save_schedule(&self, m: &mut Machine, create: bool) -> Result<()> {
        let now = self.inner.clock.now();
        let wake = m.next_wakeup(now);
        let stored = StoredSchedule {
            namespace_id: m.rec.namespace_id.clone(),
            schedule_id: m.rec.schedule_id.clone(),
            next_wake: wake.map(|w| ts_nanos(&ts(w))),
            data: m.rec.encode_to_vec(),
        };
        let s = self.inner.store.clone();
        tokio::task::spawn_blocking(move || s.put_schedule(&stored, create))
            .await
            .map_err(blocking_err)?
            .map_err(|e| match e {
                StoreError::AlreadyExists(m) => Error::AlreadyExists(m),
                e => e.into(),
            })?;
        self.arm(
            (m.rec.namespace_id.clone(), m.rec.schedule_id.clone()),
            wake,
        );
        Ok(())
    }

    fn arm(&self, key: Key, wake: Option<SystemTime>) {
        let sched = &self.inner.schedules;
        match wake {
            Some(w) => sched.wakes.lock().insert(key, w),
            None => sched.wakes.lock().remove(&key),
        };
        sched.changed.notify_one();
    }

    /// Loads every schedule with a wake time and starts the scheduler task. Schedules whose
    /// time passed while the server was down are due at once.
    pub(crate) async fn start_scheduler(&self) -> Result<()> {
        let s = self.inner.store.clone();
        let stored = tokio::task::spawn_blocking(move || s.load_schedules())
            .await
            .map_err(blocking_err)??;
        let n = stored.len();
        {
            let mut wakes = self.inner.schedules.wakes.lock();
            for s in stored {
                let at = s
                    .next_wake
                    .map(|n| {
                        from_ts(&perdure_proto::prost_types::Timestamp {
                            seconds: n.div_euclid(1_000_000_000),
                            nanos: n.rem_euclid(1_000_000_000) as i32,
                        })
                    })
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                wakes.insert((s.namespace_id, s.schedule_id), at);
            }
        }
        if n > 0 {
            tracing::info!(schedules = n, "resumed schedules");
        }
        let me = self.clone();
        tokio::spawn(async move { me.scheduler_loop().await });
        Ok(())
    }

    async fn scheduler_loop(&self) {
        let sched = &self.inner.schedules;
        loop {
            let changed = sched.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = self.inner.clock.now();
            let (due, earliest) = {
                let mut wakes = sched.wakes.lock();
                let due: Vec<Key> = wakes
                    .iter()
                    .filter(|(_, w)| **w <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in &due {
                    wakes.remove(k);
                }
                (due, wakes.values().min().copied())
            };
            for key in due {
                let me = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.wake_schedule(key.clone()).await {
                        tracing::warn!(schedule_id = %key.1, %e, "schedule wake-up failed; retrying");
                        let retry = me.inner.clock.now() + std::time::Duration::from_secs(1);
                        me.arm(key, Some(retry));
                    }
                });
            }
            match earliest {
                Some(at) => {
                    let sleep = self.inner.clock.sleep_until(at);
                    tokio::select! {
                        _ = sleep => {}
                        _ = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// The scheduler's visit: take the due times and act on them.
    async fn wake_schedule(&self, key: Key) -> Result<()> {
        let _guard = self.schedule_lock(&key).lock().await;
        let Some(mut m) = self.load_schedule(&key).await? else {
            return Ok(());
        };
        self.act(&mut m).await;
        self.save_schedule(&mut m, false).await
    }

    /// Notes which runs closed, takes the due times, and starts (or cancels, terminates) what
    /// the overlap policies say.
    async fn act(&self, m: &mut Machine) {
        self.refresh_running(m).await;
        m.process_time(self.inner.clock.now());
        for _ in 0..3 {
            let d = m.decide();
            for s in &d.starts {
                self.start_scheduled(m, s).await;
            }
            let ns = m.rec.namespace.clone();
            let identity = format!("temporal-scheduler-{}-{}", ns, m.rec.schedule_id);
            for exec in &d.cancel {
                let r = self
                    .request_cancel(RequestCancelWorkflowExecutionRequest {
                        namespace: ns.clone(),
                        workflow_execution: Some(exec.clone()),
                        identity: identity.clone(),
                        request_id: uuid::Uuid::new_v4().to_string(),
                        reason: "cancelled by schedule overlap policy".into(),
                        ..Default::default()
                    })
                    .await;
                if let Err(e) = r {
                    tracing::debug!(%e, "schedule: cancel of a running workflow failed");
                }
            }
            for exec in &d.terminate {
                let r = self
                    .terminate(TerminateWorkflowExecutionRequest {
                        namespace: ns.clone(),
                        workflow_execution: Some(exec.clone()),
                        reason: "terminated by schedule overlap policy".into(),
                        identity: identity.clone(),
                        ..Default::default()
                    })
                    .await;
                if let Err(e) = r {
                    tracing::debug!(%e, "schedule: terminate of a running workflow failed");
                }
            }
            if d.terminate.is_empty() {
                break;
            }
            // Terminated now: the waiting start can be taken at once.
            self.refresh_running(m).await;
        }
    }

    /// Starts one buffered start through the engine's start path and records it.
    async fn start_scheduled(&self, m: &mut Machine, s: &BufferedStart) {
        let req = m.start_request(s);
        let workflow_id = req.workflow_id.clone();
        // The workflow id may live on another process that is briefly away (the cluster
        // changing): the start carries its request id, so trying again is safe.
        let mut backoff = std::time::Duration::from_millis(50);
        let mut attempt = 0;
        let started = loop {
            match self.start_for_schedule(req.clone()).await {
                Err(e) if e.is_retryable() && attempt < 20 => {
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
                }
                r => break r,
            }
        };
        match started {
            Ok(run_id) => m.started(s, run_id, self.inner.clock.now()),
            Err(e) => {
                tracing::warn!(schedule_id = %m.rec.schedule_id, %workflow_id, %e, "a scheduled start failed");
            }
        }
    }

    /// Like StartWorkflowExecution, plus what only the scheduler sets: the
    /// `TemporalScheduled*` search attributes, the last completion result and the continued
    /// failure.
    pub(crate) async fn start_for_schedule(
        &self,
        mut req: StartWorkflowExecutionRequest,
    ) -> Result<String> {
        if let Some(to) = self.workflow_owner(&req.namespace, &req.workflow_id) {
            return self.start_scheduled_remote(&to, &req).await;
        }
        let ns = self.namespace(&req.namespace)?;
        let mut system = SearchAttributes::default();
        if let Some(sa) = req.search_attributes.as_mut() {
            for k in ["TemporalScheduledStartTime", "TemporalScheduledById"] {
                if let Some(v) = sa.indexed_fields.remove(k) {
                    system.indexed_fields.insert(k.to_string(), v);
                }
            }
        }
        let last_completion_result = req.last_completion_result.take();
        let continued_failure = req.continued_failure.take();
        let reuse = WorkflowIdReusePolicy::try_from(req.workflow_id_reuse_policy)
            .unwrap_or(WorkflowIdReusePolicy::Unspecified);
        let mut p = self.start_params(&ns, StartRequest::from(req))?;
        p.search_attributes
            .get_or_insert_with(Default::default)
            .indexed_fields
            .extend(system.indexed_fields);
        p.last_completion_result = last_completion_result;
        p.continued_failure = continued_failure;
        let out = self
            .start_with_policies(StartSpec {
                params: p,
                reuse,
                conflict: perdure_proto::api::enums::v1::WorkflowIdConflictPolicy::Fail,
                eager: None,
            })
            .await?;
        Ok(out.run_id)
    }

    /// Marks the runs the schedule counts as running that have closed since.
    async fn refresh_running(&self, m: &mut Machine) {
        for exec in m.running().to_vec() {
            match self
                .closed_outcome(&m.rec.namespace_id, &exec.workflow_id)
                .await
            {
                Ok(Some((status, result, failure))) => {
                    m.workflow_closed(&exec.workflow_id, status, result, failure)
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(%e, "schedule: checking a started workflow failed"),
            }
        }
    }

    /// How the workflow id's current run closed (status, result, failure); `None` while it
    /// runs. A workflow that was deleted counts as closed.
    #[allow(clippy::type_complexity)]
    async fn closed_outcome(
        &self,
        namespace_id: &str,
        workflow_id: &str,
    ) -> Result<Option<(Status, Option<Payloads>, Option<Failure>)>> {
        let Some(run_id) = self.current_run(namespace_id, workflow_id).await? else {
            return Ok(Some((Status::Unspecified, None, None)));
        };
        let key = RunKey {
            namespace_id: namespace_id.to_string(),
            run_id,
        };
        let entry = match self.entry(&key).await {
            Ok(e) => e,
            Err(Error::NotFound(_)) => return Ok(Some((Status::Unspecified, None, None))),
            Err(e) => return Err(e),
        };
        let data = entry.data.lock().await;
        let status = Status::try_from(data.state.status).unwrap_or(Status::Unspecified);
        if status == Status::Running || data.state.close_event_id == 0 {
            return Ok(None);
        }
        let ev = self.history_event(&data, data.state.close_event_id).await?;
        let (result, failure) = match ev.and_then(|e| e.attributes) {
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                (Some(a.result.unwrap_or_default()), None)
            }
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => (None, a.failure),
            _ => (None, None),
        };
        Ok(Some((status, result, failure)))
    }

    fn schedule_key(ns: &Namespace, schedule_id: &str) -> Result<Key> {
        if schedule_id.is_empty() {
            return Err(Error::InvalidArgument(
                "ScheduleId is not set on request.".into(),
            ));
        }
        Ok((ns.id.clone(), schedule_id.to_string()))
    }

    /// Checks a schedule as Temporal's frontend does and returns it canonical, with defaults.
    fn check_schedule(&self, ns: &Namespace, schedule: Option<Schedule>) -> Result<Schedule> {
        let mut schedule = schedule.unwrap_or_default();
        let canonical = spec::CompiledSpec::new(&schedule.spec.clone().unwrap_or_default(), "")
            .map_err(|e| Error::InvalidArgument(format!("Invalid schedule spec: {e}")))?
            .canonical()
            .clone();
        if let Some(schedule_action::Action::StartWorkflow(w)) =
            schedule.action.as_mut().and_then(|a| a.action.as_mut())
        {
            if !w.cron_schedule.is_empty() {
                return Err(Error::InvalidArgument(
                    "Scheduled workflow must not contain CronSchedule".into(),
                ));
            }
            if w.workflow_id_reuse_policy != WorkflowIdReusePolicy::Unspecified as i32
                && w.workflow_id_reuse_policy != WorkflowIdReusePolicy::AllowDuplicate as i32
            {
                return Err(Error::InvalidArgument(
                    "Scheduled workflow must not contain WorkflowIDReusePolicy".into(),
                ));
            }
            // Everything a start checks (ids, type, queue, timeouts, sizes, search attributes),
            // on the longest id a start can get.
            let probe = StartWorkflowExecutionRequest {
                namespace: ns.name.clone(),
                workflow_id: format!("{}-2009-11-10T23:00:00Z", w.workflow_id),
                workflow_type: w.workflow_type.clone(),
                task_queue: w.task_queue.clone(),
                input: w.input.clone(),
                workflow_execution_timeout: w.workflow_execution_timeout,
                workflow_run_timeout: w.workflow_run_timeout,
                workflow_task_timeout: w.workflow_task_timeout,
                retry_policy: w.retry_policy.clone(),
                memo: w.memo.clone(),
                search_attributes: w.search_attributes.clone(),
                header: w.header.clone(),
                ..Default::default()
            };
            self.start_params(ns, StartRequest::from(probe))?;
            // Stored with their `type` metadata, as Temporal stores (and describes) them.
            if let Some(sa) = w.search_attributes.as_mut() {
                type_search_attributes(sa, &ns.name, &|n| ns.sa_type(n))
                    .map_err(Error::InvalidArgument)?;
            }
        }
        let notes = schedule.state.as_ref().map(|s| s.notes.len()).unwrap_or(0);
        if notes > self.limits().id_length {
            return Err(Error::InvalidArgument(
                "Schedule notes exceeds limit.".into(),
            ));
        }
        Ok(with_defaults(schedule, canonical))
    }

    /// Checks and types a schedule's own search attributes and memo.
    fn check_schedule_metadata(
        &self,
        ns: &Namespace,
        sa: &mut Option<SearchAttributes>,
        memo: &Option<perdure_proto::api::common::v1::Memo>,
    ) -> Result<()> {
        self.limits()
            .check_search_attributes(sa.as_ref())
            .map_err(Error::InvalidArgument)?;
        if let Some(sa) = sa.as_mut() {
            type_search_attributes(sa, &ns.name, &|n| ns.sa_type(n))
                .map_err(Error::InvalidArgument)?;
        }
        self.limits()
            .check_memo(memo.as_ref())
            .map_err(Error::InvalidArgument)
    }

    pub async fn create_schedule(
        &self,
        mut req: CreateScheduleRequest,
    ) -> Result<CreateScheduleResponse> {
        let ns = self.namespace(&req.namespace)?;
        let key = Self::schedule_key(&ns, &req.schedule_id)?;
        self.limits()
            .check_id("ScheduleId", &req.schedule_id)
            .map_err(Error::InvalidArgument)?;
        if req.request_id.is_empty() {
            return Err(Error::InvalidArgument(
                "RequestId is not set on request.".into(),
            ));
        }
        self.limits()
            .check_id("RequestId", &req.request_id)
            .map_err(Error::InvalidArgument)?;
        let schedule = self.check_schedule(&ns, req.schedule.take())?;
        self.check_schedule_metadata(&ns, &mut req.search_attributes, &req.memo)?;
        let me = self.clone();
        // The decision, the first starts and the commits run on their own task.
        tokio::spawn(async move {
            let _guard = me.schedule_lock(&key).lock().await;
            let rec = ScheduleRecord {
                namespace: ns.name.clone(),
                namespace_id: ns.id.clone(),
                schedule_id: req.schedule_id.clone(),
                schedule: Some(schedule),
                memo: req.memo,
                search_attributes: req.search_attributes,
                request_id: req.request_id.clone(),
                ..Default::default()
            };
            let mut m = Machine::create(rec, me.inner.clock.now())
                .map_err(|e| Error::InvalidArgument(format!("Invalid schedule spec: {e}")))?;
            match me.save_schedule(&mut m, true).await {
                Ok(()) => {}
                Err(Error::AlreadyExists(_)) => {
                    if let Some(old) = me.load_schedule(&key).await?
                        && old.rec.request_id == req.request_id
                    {
                        return Ok(CreateScheduleResponse {
                            conflict_token: old.rec.conflict_token.to_be_bytes().to_vec(),
                        });
                    }
                    // Temporal answers with a workflow-already-started detail, which the SDKs
                    // turn into their "schedule already running" error.
                    return Err(Error::AlreadyStarted {
                        message: format!("schedule {:?} is already registered", req.schedule_id),
                        start_request_id: String::new(),
                        run_id: String::new(),
                    });
                }
                Err(e) => return Err(e),
            }
            if let Some(p) = &req.initial_patch {
                m.patch(p, me.inner.clock.now());
            }
            me.act(&mut m).await;
            me.save_schedule(&mut m, false).await?;
            Ok(CreateScheduleResponse {
                conflict_token: m.rec.conflict_token.to_be_bytes().to_vec(),
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("schedule task failed: {e}")))?
    }

    pub async fn describe_schedule(
        &self,
        req: DescribeScheduleRequest,
    ) -> Result<DescribeScheduleResponse> {
        let ns = self.namespace(&req.namespace)?;
        let key = Self::schedule_key(&ns, &req.schedule_id)?;
        let m = self
            .load_schedule(&key)
            .await?
            .ok_or_else(|| not_found(&req.schedule_id))?;
        Ok(m.describe())
    }

    /// Runs `f` on a stored schedule under its lock, then acts and stores it, on a task of its
    /// own (a cancelled RPC cannot stop it half-way).
    async fn change_schedule<F>(&self, ns: &Namespace, schedule_id: &str, f: F) -> Result<()>
    where
        F: FnOnce(&mut Machine, SystemTime) -> Result<()> + Send + 'static,
    {
        let key = Self::schedule_key(ns, schedule_id)?;
        let me = self.clone();
        let id = schedule_id.to_string();
        tokio::spawn(async move {
            let _guard = me.schedule_lock(&key).lock().await;
            let mut m = me
                .load_schedule(&key)
                .await?
                .ok_or_else(|| not_found(&id))?;
            f(&mut m, me.inner.clock.now())?;
            me.act(&mut m).await;
            me.save_schedule(&mut m, false).await
        })
        .await
        .map_err(|e| Error::Internal(format!("schedule task failed: {e}")))?
    }

    pub async fn update_schedule(&self, mut req: UpdateScheduleRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        let schedule = self.check_schedule(&ns, req.schedule.take())?;
        self.check_schedule_metadata(&ns, &mut req.search_attributes, &req.memo)?;
        let token = if req.conflict_token.is_empty() {
            None
        } else {
            let bytes: [u8; 8] = req
                .conflict_token
                .as_slice()
                .try_into()
                .map_err(|_| Error::InvalidArgument("invalid conflict token".into()))?;
            Some(i64::from_be_bytes(bytes))
        };
        let (sa, memo) = (req.search_attributes, req.memo);
        self.change_schedule(&ns, &req.schedule_id, move |m, now| {
            if let Some(t) = token
                && t != m.rec.conflict_token
            {
                return Err(Error::FailedPrecondition(
                    "mismatched conflict token".into(),
                ));
            }
            m.update(schedule, now).map_err(Error::InvalidArgument)?;
            if sa.is_some() {
                m.rec.search_attributes = sa;
            }
            if memo.is_some() {
                m.rec.memo = memo;
            }
            Ok(())
        })
        .await
    }

    pub async fn patch_schedule(&self, req: PatchScheduleRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        let patch = req
            .patch
            .ok_or_else(|| Error::InvalidArgument("Patch is not set on request.".into()))?;
        for n in [&patch.pause, &patch.unpause] {
            if n.len() > self.limits().id_length {
                return Err(Error::InvalidArgument(
                    "Schedule notes exceeds limit.".into(),
                ));
            }
        }
        self.change_schedule(&ns, &req.schedule_id, move |m, now| {
            m.patch(&patch, now);
            Ok(())
        })
        .await
    }

    pub async fn list_schedule_matching_times(
        &self,
        req: ListScheduleMatchingTimesRequest,
    ) -> Result<ListScheduleMatchingTimesResponse> {
        let ns = self.namespace(&req.namespace)?;
        let key = Self::schedule_key(&ns, &req.schedule_id)?;
        let m = self
            .load_schedule(&key)
            .await?
            .ok_or_else(|| not_found(&req.schedule_id))?;
        let (Some(start), Some(end)) = (req.start_time, req.end_time) else {
            return Err(Error::InvalidArgument("missing or invalid query".into()));
        };
        let times = m
            .spec()
            .times_between(from_ts(&start), from_ts(&end), MAX_MATCHING_TIMES);
        Ok(ListScheduleMatchingTimesResponse {
            start_time: times.into_iter().map(ts).collect(),
        })
    }

    pub async fn delete_schedule(&self, req: DeleteScheduleRequest) -> Result<()> {
        let ns = self.namespace(&req.namespace)?;
        let key = Self::schedule_key(&ns, &req.schedule_id)?;
        let me = self.clone();
        tokio::spawn(async move {
            let _guard = me.schedule_lock(&key).lock().await;
            let s = me.inner.store.clone();
            let (n, i) = key.clone();
            let deleted = tokio::task::spawn_blocking(move || s.delete_schedule(&n, &i))
                .await
                .map_err(blocking_err)??;
            me.arm(key.clone(), None);
            if deleted {
                Ok(())
            } else {
                Err(not_found(&key.1))
            }
        })
        .await
        .map_err(|e| Error::Internal(format!("schedule task failed: {e}")))?
    }

    /// Schedules of the namespace in id order matching the query, from the `after` id, at
    /// most `limit`; and whether more may follow.
    async fn matching_schedules(
        &self,
        ns: &Namespace,
        query: &str,
        mut after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Machine>, bool)> {
        let terms = parse_query(query)?;
        let mut out = Vec::new();
        loop {
            let s = self.inner.store.clone();
            let (ns_id, a) = (ns.id.clone(), after.clone());
            let page = tokio::task::spawn_blocking(move || s.list_schedules(&ns_id, PAGE, a))
                .await
                .map_err(blocking_err)??;
            let full = page.len() == PAGE;
            after = page.last().map(|s| s.schedule_id.clone());
            for s in &page {
                let m = decode(s)?;
                if matches(&m, &terms) {
                    out.push(m);
                    if out.len() == limit {
                        return Ok((out, true));
                    }
                }
            }
            if !full {
                return Ok((out, false));
            }
        }
    }

    pub async fn list_schedules(&self, req: ListSchedulesRequest) -> Result<ListSchedulesResponse> {
        let ns = self.namespace(&req.namespace)?;
        let size = if req.maximum_page_size <= 0 {
            PAGE
        } else {
            (req.maximum_page_size as usize).min(PAGE)
        };
        let after = if req.next_page_token.is_empty() {
            None
        } else {
            Some(
                String::from_utf8(req.next_page_token)
                    .map_err(|_| Error::InvalidArgument("Invalid NextPageToken.".into()))?,
            )
        };
        let (found, more) = self
            .matching_schedules(&ns, &req.query, after, size)
            .await?;
        let next_page_token = match found.last() {
            Some(m) if more => m.rec.schedule_id.clone().into_bytes(),
            _ => Vec::new(),
        };
        let schedules = found
            .into_iter()
            .map(|m| ScheduleListEntry {
                schedule_id: m.rec.schedule_id.clone(),
                memo: Some(m.rec.memo.clone().unwrap_or_default()),
                search_attributes: m.rec.search_attributes.clone(),
                info: Some(m.list_info()),
            })
            .collect();
        Ok(ListSchedulesResponse {
            schedules,
            next_page_token,
        })
    }

    pub async fn count_schedules(
        &self,
        req: CountSchedulesRequest,
    ) -> Result<CountSchedulesResponse> {
        let ns = self.namespace(&req.namespace)?;
        let (found, _) = self
            .matching_schedules(&ns, &req.query, None, usize::MAX)
            .await?;
        Ok(CountSchedulesResponse {
            count: found.len() as i64,
            groups: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries() {
        assert_eq!(parse_query("").unwrap(), vec![]);
        assert_eq!(
            parse_query("ScheduleId = 'a b' AND TemporalSchedulePaused = true").unwrap(),
            vec![
                ("ScheduleId".to_string(), "\"a b\"".to_string()),
                ("TemporalSchedulePaused".to_string(), "true".to_string())
            ]
        );
        assert_eq!(
            parse_query("WorkflowType = 'x and y'").unwrap(),
            vec![("WorkflowType".to_string(), "\"x and y\"".to_string())]
        );
        assert!(parse_query("ScheduleId > 'a'").is_err());
        assert!(parse_query("ScheduleId = 'a' OR x = 1").is_err());
    }
}
