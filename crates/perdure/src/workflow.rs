//! `perdure workflow ...`: start, execute, list, count, describe, show, signal, query, cancel,
//! terminate, reset, result and delete, with the `temporal` CLI's flags and output shapes.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use perdure_sdk::client::{ClosedRun, next_run};
use perdure_sdk::proto::batch::v1 as batch_v1;
use perdure_sdk::proto::common::v1::{Payloads, WorkflowExecution};
use perdure_sdk::proto::enums::v1::QueryRejectCondition;
use perdure_sdk::proto::failure::v1::Failure;
use perdure_sdk::proto::history::v1::history_event::Attributes as A;
use perdure_sdk::proto::history::v1::{History, HistoryEvent};
use perdure_sdk::proto::query::v1::WorkflowQuery;
use perdure_sdk::proto::workflowservice::v1 as ws;
use perdure_sdk::{IdConflictPolicy, IdReusePolicy, StartOptions};

use crate::cli::{Ctx, InputArgs, Output, Target, parse_duration};
use crate::output::{
    event_type_name, json_object, json_text, kv, message_json, payload_value, payloads_values,
    print_json, print_json_text, relative, rfc3339, status_cell, status_name, table,
};
use crate::output::{out, outln};

/// `perdure workflow` subcommands.
#[derive(Subcommand)]
pub enum WorkflowCommand {
    /// Start a workflow execution and print its ids.
    Start(StartArgs),
    /// Start a workflow execution, show its progress and wait for its result.
    Execute(StartArgs),
    /// List workflow executions (optionally matching a visibility query).
    List(ListArgs),
    /// Count workflow executions (optionally matching a visibility query, with GROUP BY).
    Count(CountArgs),
    /// Show the state of an execution: info, pending activities and children.
    Describe(ExecArgs),
    /// Show the event history of an execution.
    Show(ShowArgs),
    /// Send a signal to an execution.
    Signal(SignalArgs),
    /// Query an execution.
    Query(QueryArgs),
    /// Request cancellation of an execution.
    Cancel(ReasonArgs),
    /// Terminate an execution.
    Terminate(ReasonArgs),
    /// Reset an execution to a workflow task: a new run replays its history up to that point.
    Reset(ResetArgs),
    /// Wait for the result of an execution.
    Result(ExecArgs),
    /// Delete an execution and its history.
    Delete(DeleteArgs),
}

/// Which execution: a workflow id and, optionally, a run.
#[derive(Args)]
pub struct ExecArgs {
    /// Workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
    /// Run ID (default: the latest run).
    #[arg(long, short = 'r')]
    pub run_id: Option<String>,
}

impl ExecArgs {
    fn target(&self) -> Target<'_> {
        Target {
            workflow_id: &self.workflow_id,
            run_id: self.run_id.as_deref(),
        }
    }

    fn execution(&self) -> Option<WorkflowExecution> {
        Some(WorkflowExecution {
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone().unwrap_or_default(),
        })
    }
}

#[derive(Args)]
pub struct StartArgs {
    /// Workflow ID (default: a new UUID).
    #[arg(long, short = 'w')]
    workflow_id: Option<String>,
    /// Workflow type name.
    #[arg(long = "type")]
    workflow_type: String,
    /// Task queue.
    #[arg(long, short = 't')]
    task_queue: String,
    #[command(flatten)]
    input: InputArgs,
    /// Fail the execution (all runs) if it lasts longer than this (e.g. 10m).
    #[arg(long, value_parser = parse_duration)]
    execution_timeout: Option<Duration>,
    /// Fail a run if it lasts longer than this.
    #[arg(long, value_parser = parse_duration)]
    run_timeout: Option<Duration>,
    /// Fail a workflow task if it lasts longer than this.
    #[arg(long, value_parser = parse_duration)]
    task_timeout: Option<Duration>,
    /// Cron schedule (e.g. "*/5 * * * *" or "@hourly").
    #[arg(long)]
    cron: Option<String>,
    /// Delay before the first workflow task.
    #[arg(long, value_parser = parse_duration)]
    start_delay: Option<Duration>,
    /// AllowDuplicate, AllowDuplicateFailedOnly, RejectDuplicate or TerminateIfRunning.
    #[arg(long)]
    id_reuse_policy: Option<String>,
    /// Fail, UseExisting or TerminateExisting.
    #[arg(long)]
    id_conflict_policy: Option<String>,
    /// A memo field as KEY=VALUE, the value JSON (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    memo: Vec<String>,
    /// A search attribute as KEY=VALUE, the value JSON (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    search_attribute: Vec<String>,
    /// A one-line summary of the execution for people (shown by describe and the web UI).
    #[arg(long)]
    static_summary: Option<String>,
    /// Longer details of the execution for people.
    #[arg(long)]
    static_details: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// Visibility query, e.g. "WorkflowType = 'order' AND ExecutionStatus = 'Running'".
    #[arg(long, short = 'q')]
    query: Option<String>,
    /// At most this many executions.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Args)]
pub struct CountArgs {
    /// Visibility query (GROUP BY ExecutionStatus is supported).
    #[arg(long, short = 'q')]
    query: Option<String>,
}

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    exec: ExecArgs,
    /// Keep printing new events until the execution closes.
    #[arg(long, short = 'f')]
    follow: bool,
}

#[derive(Args)]
pub struct SignalArgs {
    #[command(flatten)]
    target: OneOrQuery,
    /// Signal name.
    #[arg(long, alias = "type")]
    name: String,
    #[command(flatten)]
    input: InputArgs,
}

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    exec: ExecArgs,
    /// Query type name.
    #[arg(long, alias = "type")]
    name: String,
    #[command(flatten)]
    input: InputArgs,
}

#[derive(Args)]
pub struct ReasonArgs {
    #[command(flatten)]
    target: OneOrQuery,
    /// Why (recorded in the history).
    #[arg(long)]
    reason: Option<String>,
}

/// One execution (`-w`, `-r`), or every execution a visibility query matches (`-q`), acted on
/// by a batch job as `temporal` does.
#[derive(Args)]
pub struct OneOrQuery {
    /// Workflow ID (or --query).
    #[arg(
        long,
        short = 'w',
        required_unless_present = "query",
        conflicts_with = "query"
    )]
    workflow_id: Option<String>,
    /// Run ID (default: the latest run); only with --workflow-id.
    #[arg(long, short = 'r', requires = "workflow_id")]
    run_id: Option<String>,
    /// Act on every execution this visibility query matches, as a batch job.
    #[arg(long, short = 'q')]
    query: Option<String>,
    /// Start the batch without asking for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// The batch's limit of executions per second (the server's default when unset).
    #[arg(long, requires = "query")]
    rps: Option<f32>,
}

impl OneOrQuery {
    /// The one execution, when `-w` names it.
    fn one(&self) -> Option<ExecArgs> {
        self.workflow_id.as_ref().map(|w| ExecArgs {
            workflow_id: w.clone(),
            run_id: self.run_id.clone(),
        })
    }
}

#[derive(Args)]
pub struct ResetArgs {
    #[command(flatten)]
    exec: ExecArgs,
    /// Event to reset to: a WorkflowTaskCompleted, WorkflowTaskFailed, WorkflowTaskTimedOut or
    /// WorkflowTaskStarted event id.
    #[arg(long, short = 'e')]
    event_id: Option<i64>,
    /// Instead of --event-id: FirstWorkflowTask or LastWorkflowTask.
    #[arg(long = "type", short = 't')]
    reset_type: Option<String>,
    /// Why (recorded in the history). Required.
    #[arg(long)]
    reason: String,
    /// Do not reapply these events received after the point: All, Signal or Update.
    #[arg(long)]
    reapply_exclude: Vec<String>,
}

#[derive(Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    target: OneOrQuery,
    /// Why (recorded with a batch job).
    #[arg(long)]
    reason: Option<String>,
}

/// Long polls are held up to a minute by the server; give them a little more.
const LONG_POLL: Duration = Duration::from_secs(70);
/// Ordinary calls.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

fn req<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

/// Runs one `perdure workflow` command.
pub async fn run(ctx: Ctx, cmd: WorkflowCommand) -> anyhow::Result<()> {
    match cmd {
        WorkflowCommand::Start(a) => start(&ctx, a, false).await,
        WorkflowCommand::Execute(a) => start(&ctx, a, true).await,
        WorkflowCommand::List(a) => list(&ctx, a).await,
        WorkflowCommand::Count(a) => count(&ctx, a).await,
        WorkflowCommand::Describe(a) => describe(&ctx, a).await,
        WorkflowCommand::Show(a) => show(&ctx, a).await,
        WorkflowCommand::Signal(a) => signal(&ctx, a).await,
        WorkflowCommand::Query(a) => query(&ctx, a).await,
        WorkflowCommand::Cancel(a) => cancel(&ctx, a).await,
        WorkflowCommand::Terminate(a) => terminate(&ctx, a).await,
        WorkflowCommand::Reset(a) => reset(&ctx, a).await,
        WorkflowCommand::Result(a) => result(&ctx, a).await,
        WorkflowCommand::Delete(a) => delete(&ctx, a).await,
    }
}

/// `AllowDuplicateFailedOnly` → `ALLOW_DUPLICATE_FAILED_ONLY`.
fn screaming(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !out.ends_with('_') {
            out.push('_');
        }
        out.push(if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        });
    }
    out
}

fn reuse_policy(s: &str) -> anyhow::Result<IdReusePolicy> {
    IdReusePolicy::from_str_name(&format!("WORKFLOW_ID_REUSE_POLICY_{}", screaming(s)))
        .filter(|p| *p != IdReusePolicy::Unspecified)
        .ok_or_else(|| {
            anyhow!(
                "invalid --id-reuse-policy {s:?}: use AllowDuplicate, AllowDuplicateFailedOnly, \
                 RejectDuplicate or TerminateIfRunning"
            )
        })
}

fn conflict_policy(s: &str) -> anyhow::Result<IdConflictPolicy> {
    IdConflictPolicy::from_str_name(&format!("WORKFLOW_ID_CONFLICT_POLICY_{}", screaming(s)))
        .filter(|p| *p != IdConflictPolicy::Unspecified)
        .ok_or_else(|| {
            anyhow!(
                "invalid --id-conflict-policy {s:?}: use Fail, UseExisting or TerminateExisting"
            )
        })
}

async fn start(ctx: &Ctx, a: StartArgs, execute: bool) -> anyhow::Result<()> {
    let inputs = a.input.payloads()?;
    let id = a
        .workflow_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut o = StartOptions::new(id.clone(), a.task_queue.clone());
    o.execution_timeout = a.execution_timeout;
    o.run_timeout = a.run_timeout;
    o.task_timeout = a.task_timeout;
    o.cron_schedule = a.cron.clone().unwrap_or_default();
    o.start_delay = a.start_delay;
    o.memo = crate::cli::json_pairs(&a.memo, "--memo")?;
    o.search_attributes = crate::cli::json_pairs(&a.search_attribute, "--search-attribute")?;
    o.static_summary = a.static_summary.clone();
    o.static_details = a.static_details.clone();
    o.id_reuse_policy = a.id_reuse_policy.as_deref().map(reuse_policy).transpose()?;
    o.id_conflict_policy = a
        .id_conflict_policy
        .as_deref()
        .map(conflict_policy)
        .transpose()?;
    let began = Instant::now();
    let handle = ctx
        .client
        .start_workflow(&a.workflow_type, inputs, o)
        .await
        .map_err(|e| ctx.err(e, None))?;
    let run_id = handle.first_execution_run_id().unwrap_or("").to_string();
    let str_json = |s: &str| json_text(&s.into());
    let mut info = vec![
        ("workflowId", str_json(&id)),
        ("runId", str_json(&run_id)),
        ("type", str_json(&a.workflow_type)),
        ("namespace", str_json(&ctx.namespace)),
        ("taskQueue", str_json(&a.task_queue)),
    ];
    if ctx.output == Output::Table {
        outln!("Running execution:");
        out!(
            "{}",
            kv(&[
                ("WorkflowId", id.clone()),
                ("RunId", run_id.clone()),
                ("Type", a.workflow_type.clone()),
                ("Namespace", ctx.namespace.clone()),
                ("TaskQueue", a.task_queue.clone()),
            ])
        );
    } else if !execute {
        return print_json_text(&json_object(&info), ctx.output == Output::Json);
    }
    if !execute {
        return Ok(());
    }
    // Follow the history of the run (and of the runs it continues into) to the close event.
    let mut run = run_id;
    if ctx.output == Output::Table {
        outln!("\nProgress:");
        outln!("{}", progress_header());
    }
    let close = loop {
        let exec = ExecArgs {
            workflow_id: id.clone(),
            run_id: Some(run.clone()),
        };
        let mut last = None;
        stream_history(ctx, &exec, true, |e| {
            if ctx.output == Output::Table {
                outln!("{}", progress_row(e));
            }
            last = Some(e.clone());
            Ok(())
        })
        .await?;
        let close = last.ok_or_else(|| anyhow!("the history of run {run} is empty"))?;
        match next_run(&close) {
            Some(n) => run = n,
            None => break close,
        }
    };
    let outcome = Outcome::of(&close);
    if ctx.output == Output::Table {
        outln!("\nResults:");
        let mut pairs = vec![("RunTime", format!("{:.2?}", began.elapsed()))];
        pairs.extend(outcome.pairs());
        out!("{}", kv(&pairs));
    } else {
        info.push((
            "durationMillis",
            (began.elapsed().as_millis() as u64).to_string(),
        ));
        info.extend(outcome.json(&close)?);
        print_json_text(&json_object(&info), ctx.output == Output::Json)?;
    }
    outcome.into_result()
}

/// How a run ended, from its close event.
struct Outcome {
    status: &'static str,
    result: Option<Payloads>,
    failure: Option<Failure>,
    reason: Option<String>,
}

impl Outcome {
    fn of(close: &HistoryEvent) -> Outcome {
        let mut o = Outcome {
            status: "UNKNOWN",
            result: None,
            failure: None,
            reason: None,
        };
        match close.attributes.as_ref() {
            Some(A::WorkflowExecutionCompletedEventAttributes(c)) => {
                o.status = "COMPLETED";
                o.result = c.result.clone();
            }
            Some(A::WorkflowExecutionFailedEventAttributes(f)) => {
                o.status = "FAILED";
                o.failure = f.failure.clone();
            }
            Some(A::WorkflowExecutionTimedOutEventAttributes(_)) => o.status = "TIMED_OUT",
            Some(A::WorkflowExecutionCanceledEventAttributes(_)) => o.status = "CANCELED",
            Some(A::WorkflowExecutionTerminatedEventAttributes(t)) => {
                o.status = "TERMINATED";
                o.reason = Some(t.reason.clone());
            }
            Some(A::WorkflowExecutionContinuedAsNewEventAttributes(_)) => {
                o.status = "CONTINUED_AS_NEW"
            }
            _ => {}
        }
        o
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("Status", self.status.to_string())];
        if let Some(r) = &self.result {
            let vals = payloads_values(Some(r));
            let text = match vals.as_slice() {
                [] => "null".to_string(),
                [one] => one.to_string(),
                many => serde_json::Value::Array(many.to_vec()).to_string(),
            };
            pairs.push(("Result", text));
            if let Some(p) = r.payloads.first() {
                pairs.push(("ResultEncoding", perdure_sdk::payload::encoding(p)));
            }
        }
        if let Some(f) = &self.failure {
            pairs.push(("Failure", perdure_sdk::error::failure_chain(f)));
        }
        if let Some(r) = self.reason.as_ref().filter(|r| !r.is_empty()) {
            pairs.push(("Reason", r.clone()));
        }
        pairs
    }

    /// `status`, `closeEvent` and `result` as compact JSON values.
    fn json(&self, close: &HistoryEvent) -> anyhow::Result<Vec<(&'static str, String)>> {
        let mut out = vec![
            ("status", json_text(&self.status.into())),
            (
                "closeEvent",
                message_json("temporal.api.history.v1.HistoryEvent", close)?,
            ),
        ];
        if let Some(r) = &self.result {
            let vals = payloads_values(Some(r));
            let v = if vals.len() == 1 {
                vals.into_iter().next().unwrap_or_default()
            } else {
                serde_json::Value::Array(vals)
            };
            out.push(("result", json_text(&v)));
        }
        Ok(out)
    }

    /// An error (non-zero exit) unless the workflow completed.
    fn into_result(self) -> anyhow::Result<()> {
        match self.status {
            "COMPLETED" => Ok(()),
            "FAILED" => bail!(
                "workflow failed: {}",
                self.failure
                    .as_ref()
                    .map(perdure_sdk::error::failure_chain)
                    .unwrap_or_default()
            ),
            "TERMINATED" => bail!(
                "workflow was terminated{}",
                self.reason
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            "CANCELED" => bail!("workflow was cancelled"),
            "TIMED_OUT" => bail!("workflow timed out"),
            other => bail!("workflow closed with status {other}"),
        }
    }
}

fn progress_header() -> String {
    format!("  {:>5}  {:<20}  {}", "ID", "Time", "Type")
}

fn progress_row(e: &HistoryEvent) -> String {
    format!(
        "  {:>5}  {:<20}  {}",
        e.event_id,
        rfc3339(e.event_time.as_ref()),
        event_type_name(e.event_type)
    )
}

/// Pages through a run's history, calling `f` on every event; with `follow`, long-polls for new
/// events until the run closes.
async fn stream_history(
    ctx: &Ctx,
    exec: &ExecArgs,
    follow: bool,
    mut f: impl FnMut(&HistoryEvent) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut token = Vec::new();
    loop {
        let r = ws::GetWorkflowExecutionHistoryRequest {
            namespace: ctx.namespace.clone(),
            execution: exec.execution(),
            maximum_page_size: 1000,
            next_page_token: token.clone(),
            wait_new_event: follow,
            skip_archival: true,
            ..Default::default()
        };
        let timeout = if follow { LONG_POLL } else { RPC_TIMEOUT };
        let resp = match ctx
            .client
            .workflow_service()
            .get_workflow_execution_history(req(r, timeout))
            .await
        {
            Ok(r) => r.into_inner(),
            // Our deadline passed while the server held the poll: poll again.
            Err(s) if follow && s.code() == tonic::Code::DeadlineExceeded => continue,
            Err(s) => return Err(ctx.status(s, Some(&exec.target()))),
        };
        for e in resp.history.map(|h| h.events).unwrap_or_default() {
            f(&e)?;
        }
        if resp.next_page_token.is_empty() {
            return Ok(());
        }
        token = resp.next_page_token;
    }
}

async fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    let query = a.query.unwrap_or_default();
    let limit = a.limit.unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    let mut token = Vec::new();
    while rows.len() < limit {
        let page = (limit - rows.len()).min(1000) as i32;
        let (execs, next) = ctx
            .client
            .list_workflows_page(&query, page, token)
            .await
            .map_err(|e| ctx.err(e, None))?;
        rows.extend(execs);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    rows.truncate(limit);
    const TYPE: &str = "temporal.api.workflow.v1.WorkflowExecutionInfo";
    match ctx.output {
        Output::Table => {
            let cells = rows
                .iter()
                .map(|w| {
                    vec![
                        status_cell(w.status),
                        w.execution
                            .as_ref()
                            .map(|e| e.workflow_id.clone())
                            .unwrap_or_default()
                            .into(),
                        w.r#type
                            .as_ref()
                            .map(|t| t.name.clone())
                            .unwrap_or_default()
                            .into(),
                        relative(w.start_time.as_ref()).into(),
                    ]
                })
                .collect();
            out!(
                "{}",
                table(
                    &["Status", "WorkflowId", "Type", "StartTime"],
                    cells,
                    ctx.color
                )
            );
        }
        Output::Json => {
            let vals = rows
                .iter()
                .map(|w| message_json(TYPE, w))
                .collect::<anyhow::Result<Vec<_>>>()?;
            print_json_text(&format!("[{}]", vals.join(",")), true)?;
        }
        Output::Jsonl => {
            for w in &rows {
                print_json_text(&message_json(TYPE, w)?, false)?;
            }
        }
    }
    Ok(())
}

async fn count(ctx: &Ctx, a: CountArgs) -> anyhow::Result<()> {
    let r = ws::CountWorkflowExecutionsRequest {
        namespace: ctx.namespace.clone(),
        query: a.query.unwrap_or_default(),
    };
    let resp = ctx
        .client
        .workflow_service()
        .count_workflow_executions(req(r, RPC_TIMEOUT))
        .await
        .map_err(|s| ctx.status(s, None))?
        .into_inner();
    if ctx.output != Output::Table {
        let v = message_json(
            "temporal.api.workflowservice.v1.CountWorkflowExecutionsResponse",
            &resp,
        )?;
        return print_json_text(&v, ctx.output == Output::Json);
    }
    outln!("Total: {}", resp.count);
    for g in &resp.groups {
        let vals: Vec<String> = g
            .group_values
            .iter()
            .map(|p| match payload_value(p) {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            })
            .collect();
        outln!("Group total: {}, values: {}", g.count, vals.join(", "));
    }
    Ok(())
}

async fn describe(ctx: &Ctx, a: ExecArgs) -> anyhow::Result<()> {
    let d = ctx
        .client
        .workflow_handle(a.workflow_id.clone(), a.run_id.clone())
        .describe()
        .await
        .map_err(|e| ctx.err(e, Some(&a.target())))?;
    if ctx.output != Output::Table {
        let v = message_json(
            "temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse",
            &d,
        )?;
        return print_json_text(&v, ctx.output == Output::Json);
    }
    let info = d.workflow_execution_info.clone().unwrap_or_default();
    let exec = info.execution.clone().unwrap_or_default();
    let mut pairs = vec![
        ("WorkflowId", exec.workflow_id.clone()),
        ("RunId", exec.run_id.clone()),
        ("Type", info.r#type.clone().unwrap_or_default().name),
        ("Namespace", ctx.namespace.clone()),
        ("TaskQueue", info.task_queue.clone()),
        ("Status", colored_status(info.status, ctx.color)),
        ("StartTime", relative(info.start_time.as_ref())),
        ("ExecutionTime", relative(info.execution_time.as_ref())),
    ];
    if info.close_time.is_some() {
        pairs.push(("CloseTime", relative(info.close_time.as_ref())));
    }
    if let Some(p) = &info.parent_execution {
        pairs.push(("ParentWorkflowId", p.workflow_id.clone()));
        pairs.push(("ParentRunId", p.run_id.clone()));
    }
    pairs.push((
        "StateTransitionCount",
        info.state_transition_count.to_string(),
    ));
    pairs.push(("HistoryLength", info.history_length.to_string()));
    pairs.push(("HistorySize", info.history_size_bytes.to_string()));
    outln!("Execution Info:");
    out!("{}", kv(&pairs));
    outln!();
    outln!("Pending Activities: {}", d.pending_activities.len());
    if !d.pending_activities.is_empty() {
        let rows = d
            .pending_activities
            .iter()
            .map(|p| {
                vec![
                    p.activity_id.clone().into(),
                    p.activity_type.clone().unwrap_or_default().name.into(),
                    pascal_state(p.state).into(),
                    p.attempt.to_string().into(),
                    p.last_failure
                        .as_ref()
                        .map(|f| f.message.clone())
                        .unwrap_or_default()
                        .into(),
                ]
            })
            .collect();
        out!(
            "{}",
            table(
                &["ActivityId", "Type", "State", "Attempt", "LastFailure"],
                rows,
                ctx.color
            )
        );
    }
    outln!("Pending Child Workflows: {}", d.pending_children.len());
    if !d.pending_children.is_empty() {
        let rows = d
            .pending_children
            .iter()
            .map(|c| {
                vec![
                    c.workflow_id.clone().into(),
                    c.run_id.clone().into(),
                    c.workflow_type_name.clone().into(),
                ]
            })
            .collect();
        out!(
            "{}",
            table(&["WorkflowId", "RunId", "Type"], rows, ctx.color)
        );
    }
    Ok(())
}

/// A status name, in its colour when `color` (values are the last column: no padding to keep).
fn colored_status(status: i32, color: bool) -> String {
    let name = status_name(status);
    match crate::output::status_color(status) {
        Some(c) if color => format!("\x1b[{c}m{name}\x1b[0m"),
        _ => name,
    }
}

fn pascal_state(state: i32) -> String {
    use perdure_sdk::proto::enums::v1::PendingActivityState as S;
    S::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("PENDING_ACTIVITY_STATE_")
                .split('_')
                .map(|w| w[..1].to_string() + &w[1..].to_lowercase())
                .collect()
        })
        .unwrap_or_else(|_| state.to_string())
}

async fn show(ctx: &Ctx, a: ShowArgs) -> anyhow::Result<()> {
    match ctx.output {
        Output::Table => {
            // The header waits for the first answer, so an unknown workflow prints only the error.
            let mut header = false;
            let print_header = |header: &mut bool| {
                if !std::mem::replace(header, true) {
                    outln!("Progress:");
                    outln!("{}", progress_header());
                }
            };
            stream_history(ctx, &a.exec, a.follow, |e| {
                print_header(&mut header);
                outln!("{}", progress_row(e));
                Ok(())
            })
            .await?;
            print_header(&mut header);
            Ok(())
        }
        Output::Jsonl => {
            stream_history(ctx, &a.exec, a.follow, |e| {
                print_json_text(
                    &message_json("temporal.api.history.v1.HistoryEvent", e)?,
                    false,
                )
            })
            .await
        }
        Output::Json => {
            let mut events = Vec::new();
            stream_history(ctx, &a.exec, a.follow, |e| {
                events.push(e.clone());
                Ok(())
            })
            .await?;
            let text = perdure_sdk::history_to_json(&History { events })?;
            outln!("{text}");
            Ok(())
        }
    }
}

async fn signal(ctx: &Ctx, a: SignalArgs) -> anyhow::Result<()> {
    let inputs = a.input.payloads()?;
    let Some(exec) = a.target.one() else {
        let op = ws::start_batch_operation_request::Operation::SignalOperation(
            batch_v1::BatchOperationSignal {
                signal: a.name.clone(),
                input: Some(Payloads { payloads: inputs }),
                identity: ctx.client.identity().to_string(),
                ..Default::default()
            },
        );
        return start_batch(ctx, &a.target, "signal", "", op).await;
    };
    ctx.client
        .workflow_handle(exec.workflow_id.clone(), exec.run_id.clone())
        .signal(&a.name, inputs)
        .await
        .map_err(|e| ctx.err(e, Some(&exec.target())))?;
    done(ctx, "Signal workflow succeeded")
}

/// Starts a batch job over `--query` (after a confirmation unless `--yes`) and prints its id as
/// `temporal` does.
async fn start_batch(
    ctx: &Ctx,
    target: &OneOrQuery,
    verb: &str,
    reason: &str,
    op: ws::start_batch_operation_request::Operation,
) -> anyhow::Result<()> {
    let query = target.query.clone().unwrap_or_default();
    if !target.yes
        && !confirm(&format!(
            "Start batch to {verb} workflows matching query {query:?}?"
        ))?
    {
        bail!("batch not started (confirm with y, or pass --yes)");
    }
    let job_id = uuid::Uuid::new_v4().to_string();
    let r = ws::StartBatchOperationRequest {
        namespace: ctx.namespace.clone(),
        visibility_query: query,
        job_id: job_id.clone(),
        reason: if reason.is_empty() {
            format!("perdure workflow {verb}")
        } else {
            reason.to_string()
        },
        max_operations_per_second: target.rps.unwrap_or_default(),
        operation: Some(op),
        ..Default::default()
    };
    ctx.client
        .workflow_service()
        .start_batch_operation(req(r, RPC_TIMEOUT))
        .await
        .map_err(|s| ctx.status(s, None))?;
    match ctx.output {
        Output::Table => {
            outln!("Started batch for job ID: {job_id}");
            Ok(())
        }
        o => print_json(
            &serde_json::json!({ "batchJobId": job_id }),
            o == Output::Json,
        ),
    }
}

/// Asks `question` on stderr and reads y/yes (anything else, or no terminal input, is no).
fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} y/N ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// A one-line confirmation (table) or `{"ok": true}`-style JSON.
fn done(ctx: &Ctx, message: &str) -> anyhow::Result<()> {
    match ctx.output {
        Output::Table => {
            outln!("{message}");
            Ok(())
        }
        o => print_json(
            &serde_json::json!({ "message": message }),
            o == Output::Json,
        ),
    }
}

async fn query(ctx: &Ctx, a: QueryArgs) -> anyhow::Result<()> {
    let inputs = a.input.payloads()?;
    let r = ws::QueryWorkflowRequest {
        namespace: ctx.namespace.clone(),
        execution: a.exec.execution(),
        query: Some(WorkflowQuery {
            query_type: a.name.clone(),
            query_args: Some(Payloads { payloads: inputs }).filter(|p| !p.payloads.is_empty()),
            header: None,
        }),
        query_reject_condition: QueryRejectCondition::None as i32,
    };
    let resp = ctx
        .client
        .workflow_service()
        .query_workflow(req(r, RPC_TIMEOUT))
        .await
        .map_err(|s| ctx.status(s, Some(&a.exec.target())))?
        .into_inner();
    if let Some(rej) = resp.query_rejected {
        bail!(
            "query rejected: workflow status is {}",
            status_name(rej.status)
        );
    }
    let vals = payloads_values(resp.query_result.as_ref());
    match ctx.output {
        Output::Table => {
            let text = match vals.as_slice() {
                [one] => one.to_string(),
                many => serde_json::Value::Array(many.to_vec()).to_string(),
            };
            outln!("Query result:");
            out!("{}", kv(&[("QueryResult", text)]));
            Ok(())
        }
        o => print_json(
            &serde_json::json!({ "queryResult": vals }),
            o == Output::Json,
        ),
    }
}

async fn cancel(ctx: &Ctx, a: ReasonArgs) -> anyhow::Result<()> {
    let reason = a.reason.as_deref().unwrap_or("");
    let Some(exec) = a.target.one() else {
        let op = ws::start_batch_operation_request::Operation::CancellationOperation(
            batch_v1::BatchOperationCancellation {
                identity: ctx.client.identity().to_string(),
            },
        );
        return start_batch(ctx, &a.target, "cancel", reason, op).await;
    };
    ctx.client
        .workflow_handle(exec.workflow_id.clone(), exec.run_id.clone())
        .cancel(reason)
        .await
        .map_err(|e| ctx.err(e, Some(&exec.target())))?;
    done(ctx, "Canceled workflow")
}

async fn terminate(ctx: &Ctx, a: ReasonArgs) -> anyhow::Result<()> {
    let reason = a.reason.as_deref().unwrap_or("");
    let Some(exec) = a.target.one() else {
        let op = ws::start_batch_operation_request::Operation::TerminationOperation(
            batch_v1::BatchOperationTermination {
                identity: ctx.client.identity().to_string(),
                ..Default::default()
            },
        );
        return start_batch(ctx, &a.target, "terminate", reason, op).await;
    };
    ctx.client
        .workflow_handle(exec.workflow_id.clone(), exec.run_id.clone())
        .terminate(reason)
        .await
        .map_err(|e| ctx.err(e, Some(&exec.target())))?;
    done(ctx, "Workflow terminated")
}

/// The event id a `--type` names, as the `temporal` CLI finds it: FirstWorkflowTask is the first
/// WorkflowTaskCompleted (or, before any, the event after the first WorkflowTaskScheduled);
/// LastWorkflowTask is the last WorkflowTaskCompleted (with the same fallback).
async fn reset_event_of_type(ctx: &Ctx, exec: &ExecArgs, t: &str) -> anyhow::Result<i64> {
    use perdure_sdk::proto::enums::v1::EventType;
    let last = match t {
        "FirstWorkflowTask" => false,
        "LastWorkflowTask" => true,
        other => bail!(
            "invalid --type {other:?}: perdure supports FirstWorkflowTask and LastWorkflowTask"
        ),
    };
    let (mut first_completed, mut last_completed, mut after_scheduled) = (0, 0, 0);
    stream_history(ctx, exec, false, |e| {
        if e.event_type == EventType::WorkflowTaskCompleted as i32 {
            if first_completed == 0 {
                first_completed = e.event_id;
            }
            last_completed = e.event_id;
        } else if e.event_type == EventType::WorkflowTaskScheduled as i32 && after_scheduled == 0 {
            after_scheduled = e.event_id + 1;
        }
        Ok(())
    })
    .await?;
    let found = if last {
        last_completed
    } else {
        first_completed
    };
    match if found != 0 { found } else { after_scheduled } {
        0 => bail!("unable to find any scheduled or completed task"),
        n => Ok(n),
    }
}

async fn reset(ctx: &Ctx, a: ResetArgs) -> anyhow::Result<()> {
    use perdure_sdk::proto::enums::v1::ResetReapplyExcludeType as Exclude;
    let event_id = match (a.event_id, &a.reset_type) {
        (Some(n), None) => n,
        (None, Some(t)) => reset_event_of_type(ctx, &a.exec, t).await?,
        (Some(_), Some(_)) => bail!("use either --event-id or --type, not both"),
        (None, None) => bail!("must specify either valid event id or reset type"),
    };
    let mut exclude = Vec::new();
    for x in &a.reapply_exclude {
        match x.as_str() {
            "All" => exclude.extend([Exclude::Signal as i32, Exclude::Update as i32]),
            "Signal" => exclude.push(Exclude::Signal as i32),
            "Update" => exclude.push(Exclude::Update as i32),
            other => bail!("invalid --reapply-exclude {other:?}: use All, Signal or Update"),
        }
    }
    if ctx.output == Output::Table {
        outln!(
            "Resetting workflow {} to event ID {event_id}",
            a.exec.workflow_id
        );
    }
    let r = ws::ResetWorkflowExecutionRequest {
        namespace: ctx.namespace.clone(),
        workflow_execution: a.exec.execution(),
        reason: a.reason.clone(),
        workflow_task_finish_event_id: event_id,
        request_id: uuid::Uuid::new_v4().to_string(),
        reset_reapply_exclude_types: exclude,
        ..Default::default()
    };
    let resp = ctx
        .client
        .workflow_service()
        .reset_workflow_execution(req(r, RPC_TIMEOUT))
        .await
        .map_err(|s| ctx.status(s, Some(&a.exec.target())))?
        .into_inner();
    match ctx.output {
        Output::Table => Ok(()),
        o => print_json(
            &serde_json::json!({ "runId": resp.run_id }),
            o == Output::Json,
        ),
    }
}

async fn result(ctx: &Ctx, a: ExecArgs) -> anyhow::Result<()> {
    // The close event of the run, following the runs it hands over to.
    let ClosedRun {
        run_id,
        close_event: close,
    } = ctx
        .client
        .workflow_handle(a.workflow_id.clone(), a.run_id.clone())
        .wait_for_close(true)
        .await
        .map_err(|e| ctx.err(e, Some(&a.target())))?;
    let outcome = Outcome::of(&close);
    if ctx.output == Output::Table {
        outln!("Results:");
        out!("{}", kv(&outcome.pairs()));
    } else {
        let mut fields = vec![("workflowId", json_text(&a.workflow_id.clone().into()))];
        if let Some(r) = &run_id {
            fields.push(("runId", json_text(&r.clone().into())));
        }
        fields.push(("namespace", json_text(&ctx.namespace.clone().into())));
        fields.extend(outcome.json(&close)?);
        print_json_text(&json_object(&fields), ctx.output == Output::Json)?;
    }
    outcome.into_result()
}

async fn delete(ctx: &Ctx, a: DeleteArgs) -> anyhow::Result<()> {
    let Some(exec) = a.target.one() else {
        let op = ws::start_batch_operation_request::Operation::DeletionOperation(
            batch_v1::BatchOperationDeletion {
                identity: ctx.client.identity().to_string(),
            },
        );
        let reason = a.reason.as_deref().unwrap_or("");
        return start_batch(ctx, &a.target, "delete", reason, op).await;
    };
    let r = ws::DeleteWorkflowExecutionRequest {
        namespace: ctx.namespace.clone(),
        workflow_execution: exec.execution(),
    };
    ctx.client
        .workflow_service()
        .delete_workflow_execution(req(r, RPC_TIMEOUT))
        .await
        .map_err(|s| ctx.status(s, Some(&exec.target())))?;
    done(ctx, "Delete workflow succeeded")
}
